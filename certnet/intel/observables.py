"""Threat-intelligence observables (addresses, names, URLs, hashes, ...) in one canonical form.

Indicators arrive from feeds, advisories and analysts' notes written every which way: upper- or
lower-case, defanged ("hxxp://evil[.]example"), with default ports, Unicode host names or "AS" prefixes.
Correlation and warninglist matching compare strings, so every value is normalised here first and two
spellings of the same thing become the same string. Errors say what is wrong with the value, because the
person reading them is usually fixing a pasted list by hand.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from certnet.core.errors import invalid


class Kind(enum.StrEnum):
    """The kinds of observable; the values are the names used on the wire and in the database.

    A StrEnum (a str and an Enum) rather than a plain (str, Enum) mix-in, so that f"{kind}" gives "ipv4"
    and not "Kind.IPV4" on Python 3.11, where keys such as "kind:value" are built that way.
    """

    IPV4 = "ipv4"
    IPV6 = "ipv6"
    CIDR = "cidr"
    DOMAIN = "domain"
    URL = "url"
    EMAIL = "email"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    CVE = "cve"
    ASN = "asn"


KINDS: tuple[str, ...] = tuple(kind.value for kind in Kind)

URL_MAX_LENGTH = 2048  # the width of the observable value column
URL_SCHEMES = ("http", "https", "ftp", "ftps", "sftp", "ws", "wss")
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443, "ftp": 21}
ASN_MAX = 4_294_967_295  # 32-bit AS numbers (RFC 6793)

_LABELS = {
    Kind.IPV4: "an IPv4 address",
    Kind.IPV6: "an IPv6 address",
    Kind.CIDR: "a network in CIDR form",
    Kind.DOMAIN: "a domain name",
    Kind.URL: "a URL",
    Kind.EMAIL: "an e-mail address",
    Kind.MD5: "an MD5 hash",
    Kind.SHA1: "a SHA-1 hash",
    Kind.SHA256: "a SHA-256 hash",
    Kind.CVE: "a CVE identifier",
    Kind.ASN: "an AS number",
}


class _Reject(Exception):
    """A value is not of its kind. `reason` follows the quoted value: "'x' <reason>"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- defanging --------------------------------------------------------------------------------------------

_DEFANGED = re.compile(
    r"\bhxxps?\b|\[://\]|\[:\]|\[\.\]|\(\.\)|\{\.\}|\[@\]|[ \t]*\[(?:dot|at)\][ \t]*",
    re.IGNORECASE,
)


def _refang_match(match: re.Match[str]) -> str:
    matched = match.group(0).strip().lower()
    if matched.startswith("hxxp"):
        return "http" + matched[4:]
    if matched == "[://]":
        return "://"
    if matched == "[:]":
        return ":"
    if matched in ("[@]", "[at]"):
        return "@"
    return "."


def refang(text: str) -> str:
    """Undo the usual defanging, which writers apply so that readers cannot click or resolve an indicator.

    "[dot]" and "[at]" take spaces around them with them, as in "user [at] example [dot] org".
    """
    return _DEFANGED.sub(_refang_match, text)


# --- helpers ----------------------------------------------------------------------------------------------


def _quote(value: str) -> str:
    # Error messages quote the value; a pasted megabyte should not come back in full.
    return repr(value) if len(value) <= 200 else repr(value[:200]) + "..."


def _odd_character(text: str) -> str | None:
    """Describe the first space or unprintable character, or None: they never belong in a URL or address,
    and a right-to-left override or a control character in a stored value is a trap for the reader."""
    for char in text:
        if char == " ":
            return "a space"
        if char.isspace() or not char.isprintable():
            return f"the character U+{ord(char):04X}"
    return None


def _is_ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


# --- addresses and networks -------------------------------------------------------------------------------


def _ipv4(text: str) -> str:
    if "/" in text:
        raise _Reject("is a network, not an address; use kind cidr")
    if ":" in text:
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            raise _Reject("is not an IPv4 address") from None
        raise _Reject("is an IPv6 address, not an IPv4 one; use kind ipv6")
    octets = text.split(".")
    if len(octets) != 4:
        raise _Reject(f"is not an IPv4 address: 4 dot-separated numbers expected, got {len(octets)}")
    for octet in octets:
        if not _is_ascii_digits(octet):
            raise _Reject(f"is not an IPv4 address: {octet!r} is not a decimal number")
        if len(octet) > 1 and octet.startswith("0"):
            # Python's ipaddress refuses these because inet_aton and others read them as octal.
            raise _Reject(
                f"is not an IPv4 address: {octet!r} has a leading zero, which some tools read as octal"
            )
        if int(octet) > 255:
            raise _Reject(f"is not an IPv4 address: {octet} is more than 255")
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError as exc:  # pragma: no cover - the checks above catch what ipaddress refuses
        raise _Reject(f"is not an IPv4 address ({exc})") from None


def _ipv6(text: str) -> str:
    if "%" in text:
        raise _Reject("has a zone index (%...), which means nothing outside one host")
    if "/" in text:
        raise _Reject("is a network, not an address; use kind cidr")
    if ":" not in text:
        try:
            _ipv4(text)
        except _Reject:
            raise _Reject("is not an IPv6 address") from None
        raise _Reject("is an IPv4 address, not an IPv6 one; use kind ipv4")
    try:
        return ipaddress.IPv6Address(text).compressed
    except ValueError as exc:
        raise _Reject(f"is not an IPv6 address ({exc})") from None


def _cidr(text: str) -> str:
    if "%" in text:
        raise _Reject("has a zone index (%...), which means nothing outside one host")
    if "/" not in text:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise _Reject("is not a network in CIDR form (e.g. 192.0.2.0/24)") from None
        single = f"{address}/{address.max_prefixlen}"
        raise _Reject(f"is an address, not a network; use kind ipv{address.version} (or write {single})")
    try:
        return str(ipaddress.ip_network(text, strict=True))
    except ValueError as exc:
        if "has host bits set" in str(exc):
            raise _Reject(
                f"has host bits set; did you mean {ipaddress.ip_network(text, strict=False)}?"
            ) from None
        raise _Reject(f"is not a network in CIDR form ({exc})") from None


# --- names ------------------------------------------------------------------------------------------------

# The idna codec treats the ideographic and full-width full stops as dots too; so do we.
_DOTS = re.compile("[.\u3002\uff0e\uff61]")
_LABEL_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


def _domain(text: str) -> str:
    """The ASCII (punycode), lower-case form. Labels are encoded one by one so that an error can name the
    label at fault; "_" is allowed because real names (_dmarc, _domainkey) carry it."""
    name = text[:-1] if _DOTS.fullmatch(text[-1:]) else text
    if not name:
        raise _Reject("is not a domain name")
    labels: list[str] = []
    for position, label in enumerate(_DOTS.split(name), start=1):
        if not label:
            raise _Reject(f"is not a domain name: label {position} is empty (a leading dot or two in a row)")
        if label.isascii():
            ascii_label = label.lower()
        else:
            try:
                ascii_label = label.encode("idna").decode("ascii").lower()
            except UnicodeError as exc:
                raise _Reject(f"is not a domain name: the label {label!r} has no IDNA form ({exc})") from None
        if len(ascii_label) > 63:
            raise _Reject(
                f"is not a domain name: the label {label!r} is {len(ascii_label)} characters long; at most 63"
            )
        odd = next((char for char in ascii_label if char not in _LABEL_CHARACTERS), None)
        if odd is not None:
            raise _Reject(
                f"is not a domain name: the label {label!r} contains {odd!r}; "
                "only letters, digits, '-' and '_' are allowed"
            )
        if ascii_label.startswith("-") or ascii_label.endswith("-"):
            raise _Reject(f"is not a domain name: the label {label!r} starts or ends with '-'")
        labels.append(ascii_label)
    if len(labels) < 2:
        raise _Reject(
            "is not a domain name: it has a single label; at least two are expected (e.g. example.org)"
        )
    if _is_ascii_digits(labels[-1]):
        raise _Reject(
            f"is not a domain name: the last label {labels[-1]!r} is all digits, as no top-level one is"
        )
    result = ".".join(labels)
    if len(result) > 253:
        raise _Reject(f"is not a domain name: it is {len(result)} characters long; at most 253")
    return result


def _domain_kind(text: str) -> str:
    for check, version in ((_ipv4, 4), (_ipv6, 6)):
        try:
            check(text)
        except _Reject:
            continue
        raise _Reject(f"is an IPv{version} address, not a domain name; use kind ipv{version}")
    return _domain(text)


# --- URLs -------------------------------------------------------------------------------------------------

_PERCENT_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")


def _upper_escapes(text: str) -> str:
    return _PERCENT_ESCAPE.sub(lambda match: match.group(0).upper(), text)


def _split_host_port(hostport: str) -> tuple[str, str | None]:
    """(host, port or None) from the part of a URL's authority after any userinfo."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise _Reject("is not a URL: its host has an unclosed '['")
        host, rest = hostport[: end + 1], hostport[end + 1 :]
        if rest and not rest.startswith(":"):
            raise _Reject(f"is not a URL: {rest!r} follows the bracketed host")
        return host, rest[1:] if rest else None
    if hostport.count(":") > 1:
        raise _Reject(
            "is not a URL: an IPv6 address in a URL must be in brackets, as in http://[2001:db8::1]/"
        )
    host, colon, port = hostport.partition(":")
    return host, port if colon else None


def _url_host(host: str) -> str:
    if not host:
        raise _Reject("is not a URL: it has no host")
    try:
        if host.startswith("["):
            return f"[{_ipv6(host[1:-1])}]"
        if all(char.isdigit() or char == "." for char in host):
            return _ipv4(host)
        return _domain(host)
    except _Reject as reject:
        raise _Reject(f"is not a URL: its host {_quote(host)} {reject.reason}") from None


def _url_port(port: str | None, scheme: str) -> str:
    """The port to keep ("" for none): the scheme's default says nothing, so it is dropped."""
    if not port:  # "http://host:/" is the same as no port (RFC 3986, 6.2.3)
        return ""
    if not _is_ascii_digits(port):
        raise _Reject(f"is not a URL: its port {port!r} is not a number")
    digits = port.lstrip("0")
    number = int(digits or "0") if len(digits) <= 5 else 0
    if not 1 <= number <= 65535:
        raise _Reject(f"is not a URL: its port {port} is outside 1-65535")
    return "" if _DEFAULT_PORTS.get(scheme) == number else str(number)


def _looks_like_host_and_path(text: str) -> bool:
    head = re.split(r"[/?#]", text, maxsplit=1)[0]
    try:
        host, port = _split_host_port(head)
        _url_host(host)
        _url_port(port, "")
    except _Reject:
        return False
    return True


_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")


def _unkept_scheme(scheme: str) -> str:
    return f"is not a URL of a kind kept here: scheme {scheme!r} is not one of {', '.join(URL_SCHEMES)}"


def _url(text: str) -> str:
    odd = _odd_character(text)
    if odd is not None:
        hint = "; spaces must be written %20" if odd == "a space" else ""
        raise _Reject(f"is not a URL: it contains {odd}{hint}")
    if "://" not in text:
        if _looks_like_host_and_path(text):
            raise _Reject('is not a URL: it has no scheme; add "http://" in front if it is a web address')
        prefix = _SCHEME.match(text)
        if prefix is not None and prefix.group(1).lower() not in URL_SCHEMES:
            raise _Reject(_unkept_scheme(prefix.group(1).lower()))
        raise _Reject("is not a URL: a scheme and a host are expected, as in https://example.org/path")
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise _Reject(f"is not a URL ({exc})") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise _Reject("is not a URL: it has no scheme, as in https://")
    if scheme not in URL_SCHEMES:
        raise _Reject(_unkept_scheme(scheme))
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host, port = _split_host_port(hostport)
    netloc = (userinfo + at) + _url_host(host)
    kept_port = _url_port(port, scheme)
    if kept_port:
        netloc += f":{kept_port}"
    path = _upper_escapes(parts.path) or "/"
    result = urlunsplit((scheme, netloc, path, _upper_escapes(parts.query), ""))
    if len(result) > URL_MAX_LENGTH:
        raise _Reject(
            f"is not a URL kept here: it is {len(result)} characters long; at most {URL_MAX_LENGTH}"
        )
    return result


# --- e-mail -----------------------------------------------------------------------------------------------


def _email(text: str) -> str:
    """Lower-cased whole: a case-sensitive local part is allowed by RFC 5321 but practically unheard of,
    and matching the same sender across sources matters more."""
    address = text[7:] if text[:7].lower() == "mailto:" else text
    count = address.count("@")
    if count != 1:
        raise _Reject(
            "is not an e-mail address: " + ("it has no '@'" if count == 0 else f"it has {count} '@'s")
        )
    local, _, domain = address.partition("@")
    if not local:
        raise _Reject("is not an e-mail address: nothing comes before the '@'")
    if len(local) > 64:
        raise _Reject(
            f"is not an e-mail address: the part before '@' is {len(local)} characters long; at most 64"
        )
    odd = _odd_character(local)
    if odd is not None:
        raise _Reject(f"is not an e-mail address: the part before '@' contains {odd}")
    if not domain:
        raise _Reject("is not an e-mail address: nothing comes after the '@'")
    try:
        normalised_domain = _domain(domain)
    except _Reject as reject:
        raise _Reject(f"is not an e-mail address: its domain {_quote(domain)} {reject.reason}") from None
    return f"{local.lower()}@{normalised_domain}"


# --- hashes, CVEs, AS numbers -----------------------------------------------------------------------------

_HASH_LENGTHS = {Kind.MD5: 32, Kind.SHA1: 40, Kind.SHA256: 64}
_HASH_BY_LENGTH = {length: kind for kind, length in _HASH_LENGTHS.items()}
_HASH_PREFIX = re.compile(r"(md5|sha-?1|sha-?256)\s*:\s*", re.IGNORECASE)
_HEX_DIGITS = frozenset("0123456789abcdef")


def _hash(kind: Kind) -> Callable[[str], str]:
    length = _HASH_LENGTHS[kind]

    def normalise_hash(text: str) -> str:
        digest = text
        prefix = _HASH_PREFIX.match(text)
        if prefix is not None:
            named = Kind(prefix.group(1).lower().replace("-", ""))
            if named != kind:
                raise _Reject(
                    f"is labelled {named.value}, so it is not {_LABELS[kind]}; use kind {named.value}"
                )
            digest = text[prefix.end() :]
        digest = digest.lower()
        is_hex = all(char in _HEX_DIGITS for char in digest)
        if len(digest) != length:
            hint = ""
            other = _HASH_BY_LENGTH.get(len(digest))
            if is_hex and other is not None:
                hint = f" ({len(digest)} is {_LABELS[other]}; use kind {other.value})"
            expected = f"{length} hexadecimal digits expected, got {len(digest)} characters"
            raise _Reject(f"is not {_LABELS[kind]}: {expected}{hint}")
        if not is_hex:
            odd = next(char for char in digest if char not in _HEX_DIGITS)
            raise _Reject(f"is not {_LABELS[kind]}: {odd!r} is not a hexadecimal digit")
        return digest

    return normalise_hash


# Advisories pasted from word processors carry typographic hyphens in CVE identifiers.
_DASHES = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2212", "-"))
_CVE = re.compile(r"cve-([0-9]{4})-([0-9]+)", re.IGNORECASE)


def _cve(text: str) -> str:
    """Upper case, and the sequence number without the leading zeros that the CVE syntax forbids beyond its
    four-digit minimum, so CVE-2024-03094 and CVE-2024-3094 are the same."""
    match = _CVE.fullmatch(text.translate(_DASHES))
    if match is None:
        raise _Reject("is not a CVE identifier: CVE-YYYY-NNNN expected, as in CVE-2024-3094")
    year, sequence = match.groups()
    if not 1999 <= int(year) <= 2100:
        raise _Reject(f"is not a CVE identifier: the year {year} is outside 1999-2100")
    if len(sequence) < 4:
        raise _Reject(f"is not a CVE identifier: the sequence number {sequence!r} has fewer than 4 digits")
    return f"CVE-{year}-{sequence.lstrip('0').zfill(4)}"


_ASN = re.compile(r"(?:asn?\s*)?([0-9]+)(?:\.([0-9]+))?", re.IGNORECASE)


def _asn_number(digits: str) -> int:
    # int() refuses very long digit strings, and anything past ten digits is out of range anyway.
    stripped = digits.lstrip("0")
    return int(stripped or "0") if len(stripped) <= 10 else ASN_MAX + 1


def _asn(text: str) -> str:
    """ "AS64500" for any of AS64500, as64500, ASN 64500, 64500, and asdot AS0.64500 (RFC 5396)."""
    match = _ASN.fullmatch(text)
    if match is None:
        raise _Reject("is not an AS number: AS64500, ASN64500 or 64500 expected")
    high, low = _asn_number(match.group(1)), match.group(2)
    if low is None:
        number = high
    else:
        low_number = _asn_number(low)
        if high > 65535 or low_number > 65535:
            raise _Reject("is not an AS number: each half of the asdot form is at most 65535")
        number = high * 65536 + low_number
    if not 1 <= number <= ASN_MAX:
        raise _Reject(f"is not an AS number: it is outside 1-{ASN_MAX}")
    return f"AS{number}"


# --- the public functions ---------------------------------------------------------------------------------

_NORMALISERS: dict[Kind, Callable[[str], str]] = {
    Kind.IPV4: _ipv4,
    Kind.IPV6: _ipv6,
    Kind.CIDR: _cidr,
    Kind.DOMAIN: _domain_kind,
    Kind.URL: _url,
    Kind.EMAIL: _email,
    Kind.MD5: _hash(Kind.MD5),
    Kind.SHA1: _hash(Kind.SHA1),
    Kind.SHA256: _hash(Kind.SHA256),
    Kind.CVE: _cve,
    Kind.ASN: _asn,
}


def normalise(kind: str, value: str, *, loc: str = "value") -> str:
    """The canonical form of `value` as an observable of `kind`, so that equal things compare equal.

    Surrounding whitespace and defanging are undone first. Raises InvalidInput (a DomainError) at `loc`
    whose message quotes the value and says what is wrong with it; an unknown kind is reported at "kind".
    """
    try:
        known = Kind(kind)
    except ValueError:
        raise invalid(
            "kind", f"{kind!r} is not a kind of observable; expected one of {', '.join(KINDS)}"
        ) from None
    shown = value.strip()
    text = refang(shown)
    if not text:
        raise invalid(loc, f"{shown!r} is not {_LABELS[known]}: the value is empty")
    try:
        return _NORMALISERS[known](text)
    except _Reject as reject:
        raise invalid(loc, f"{_quote(shown)} {reject.reason}") from None


_DETECTION_ORDER = (
    Kind.IPV4,
    Kind.IPV6,
    Kind.CIDR,
    Kind.URL,
    Kind.EMAIL,
    Kind.CVE,
    Kind.ASN,
    Kind.MD5,
    Kind.SHA1,
    Kind.SHA256,
    Kind.DOMAIN,
)
_AS_PREFIX = re.compile(r"asn?\s*[0-9]", re.IGNORECASE)


def _classify(token: str) -> tuple[str, str] | None:
    text = refang(token.strip())
    if not text:
        return None
    for kind in _DETECTION_ORDER:
        if kind is Kind.URL and "://" not in text:
            continue
        # A bare number is far more often a count, a port or a year than an AS number.
        if kind is Kind.ASN and not _AS_PREFIX.match(text):
            continue
        try:
            value = _NORMALISERS[kind](text)
        except _Reject:
            continue
        if kind is Kind.DOMAIN and not _plausible_top_level(value):
            return None
        return kind.value, value
    return None


def _plausible_top_level(domain: str) -> bool:
    # Free text is full of "e.g", "i.e" and "v1.2b"; no top-level domain is one letter or has digits
    # (except the punycode ones).
    top = domain.rsplit(".", 1)[-1]
    return len(top) >= 2 and (top.isalpha() or top.startswith("xn--"))


def detect(value: str) -> str | None:
    """The best guess of the kind of one bare token (defanging allowed), or None.

    Tried from the most to the least specific, so that an address is not taken for a domain name or a
    hash for a number. Only a URL with a scheme and an AS number with its "AS" prefix count; a domain name
    needs a top-level label of two or more letters.
    """
    found = _classify(value)
    return found[0] if found is not None else None


_SEPARATORS = re.compile(r"[\s,;|\"'<>()]+")
_TRAILING = ".,;:!?)]}"
_TRAILING_BUT_COLON = ".,;!?)]}"


def extract(text: str) -> list[tuple[str, str]]:
    """Every observable in a block of free text, as (kind, normalised value), each once, in order of first
    appearance. Never raises: whatever does not look like an observable is passed over.

    Defanging is undone before the text is split, since "(.)" would otherwise be split apart. Trailing
    punctuation is dropped, except that a trailing ':' is kept when the token only makes sense with it
    (an IPv6 address ending in '::').
    """
    found: dict[tuple[str, str], None] = {}
    for token in _SEPARATORS.split(refang(text)):
        token = token.lstrip("[{")
        if not token:
            continue
        for candidate in dict.fromkeys((token.rstrip(_TRAILING), token.rstrip(_TRAILING_BUT_COLON), token)):
            hit = _classify(candidate)
            if hit is not None:
                found.setdefault(hit, None)
                break
    return list(found)
