"""Observables: each kind's canonical form, the errors a person fixing a pasted list reads, detection, and
extraction from free text. Pure functions: no database."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certnet.core.errors import DomainError, InvalidInput
from certnet.intel.observables import KINDS, Kind, detect, extract, normalise, refang


def error_of(kind: str, value: str, *, loc: str = "value") -> str:
    """The message of the single field error that normalising `value` raises, checked to be at `loc`."""
    with pytest.raises(DomainError) as caught:
        normalise(kind, value, loc=loc)
    error = caught.value
    assert isinstance(error, InvalidInput)
    assert error.status == 422
    [field] = error.errors
    assert field.loc == loc
    assert error.detail == f"{loc}: {field.msg}"
    return field.msg


def test_kinds_are_the_wire_names_in_order() -> None:
    assert KINDS == ("ipv4", "ipv6", "cidr", "domain", "url", "email", "md5", "sha1", "sha256", "cve", "asn")
    assert Kind("sha256") is Kind.SHA256
    assert isinstance(Kind.SHA256, str)
    assert f"{Kind.IPV4}:10.0.0.1" == "ipv4:10.0.0.1"
    assert normalise(Kind.IPV4, "10.0.0.1") == "10.0.0.1"


def test_unknown_kind_is_reported_at_kind_with_the_choices() -> None:
    message = error_of("ip", "10.0.0.1", loc="kind")
    assert message == (
        "'ip' is not a kind of observable; expected one of "
        "ipv4, ipv6, cidr, domain, url, email, md5, sha1, sha256, cve, asn"
    )


def test_the_location_is_the_callers() -> None:
    assert error_of("ipv4", "nope", loc="observables[3].value").startswith("'nope' is not an IPv4 address")


def test_empty_value() -> None:
    assert error_of("md5", "   ") == "'' is not an MD5 hash: the value is empty"


# --- defanging ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("defanged", "plain"),
    [
        ("hxxp://evil[.]example/a", "http://evil.example/a"),
        ("HXXPS[://]evil(.)example", "https://evil.example"),
        ("hxxps[:]//evil{.}example", "https://evil.example"),
        ("user[@]evil[.]example", "user@evil.example"),
        ("user[at]evil[DOT]example", "user@evil.example"),
        ("user [AT] evil [dot] example", "user@evil.example"),
        ("10[.]0[.]0[.]1", "10.0.0.1"),
        ("nothing to undo", "nothing to undo"),
    ],
)
def test_refang(defanged: str, plain: str) -> None:
    assert refang(defanged) == plain


def test_defanged_values_are_accepted_by_every_kind_that_can_hold_them() -> None:
    assert normalise("ipv4", " 198.51.100[.]7 ") == "198.51.100.7"
    assert normalise("ipv6", "2001:db8[:]:1") == "2001:db8::1"
    assert normalise("cidr", "192.0.2[.]0/24") == "192.0.2.0/24"
    assert normalise("domain", "evil[dot]example") == "evil.example"
    assert normalise("url", "hXXps://evil(.)example/x") == "https://evil.example/x"
    assert normalise("email", "billing[at]evil[.]example") == "billing@evil.example"


def test_an_error_quotes_the_value_as_given_not_as_refanged() -> None:
    assert error_of("ipv4", "10[.]0.0.300") == "'10[.]0.0.300' is not an IPv4 address: 300 is more than 255"


# --- IPv4 and IPv6 ------------------------------------------------------------------------------------------


def test_ipv4() -> None:
    assert normalise("ipv4", "\t192.0.2.1\n") == "192.0.2.1"
    assert normalise("ipv4", "255.255.255.255") == "255.255.255.255"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "010.0.0.1",
            "'010.0.0.1' is not an IPv4 address: '010' has a leading zero, which some tools read as octal",
        ),
        ("192.0.2", "'192.0.2' is not an IPv4 address: 4 dot-separated numbers expected, got 3"),
        ("192.0.2.x", "'192.0.2.x' is not an IPv4 address: 'x' is not a decimal number"),
        ("192.0.2.256", "'192.0.2.256' is not an IPv4 address: 256 is more than 255"),
        ("2001:db8::1", "'2001:db8::1' is an IPv6 address, not an IPv4 one; use kind ipv6"),
        ("192.0.2.0/24", "'192.0.2.0/24' is a network, not an address; use kind cidr"),
        ("a:b", "'a:b' is not an IPv4 address"),
    ],
)
def test_ipv4_errors(value: str, message: str) -> None:
    assert error_of("ipv4", value) == message


def test_ipv6_is_compressed_and_lower_case() -> None:
    assert normalise("ipv6", "2001:0DB8:0000:0000:0000:0000:0000:0001") == "2001:db8::1"
    assert normalise("ipv6", "::") == "::"
    # IPv4-mapped addresses are kept in whatever form ipaddress gives them.
    assert normalise("ipv6", "::FFFF:192.0.2.1") == ipaddress.IPv6Address("::ffff:192.0.2.1").compressed


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("fe80::1%eth0", "'fe80::1%eth0' has a zone index (%...), which means nothing outside one host"),
        ("192.0.2.1", "'192.0.2.1' is an IPv4 address, not an IPv6 one; use kind ipv4"),
        ("2001:db8::/32", "'2001:db8::/32' is a network, not an address; use kind cidr"),
        ("hello", "'hello' is not an IPv6 address"),
    ],
)
def test_ipv6_errors(value: str, message: str) -> None:
    assert error_of("ipv6", value) == message


def test_ipv6_syntax_error_says_what_ipaddress_found() -> None:
    assert error_of("ipv6", "12345::1").startswith("'12345::1' is not an IPv6 address (At most 4 characters")


# --- CIDR ---------------------------------------------------------------------------------------------------


def test_cidr() -> None:
    assert normalise("cidr", "192.0.2.0/24") == "192.0.2.0/24"
    assert normalise("cidr", "10.0.0.0/255.0.0.0") == "10.0.0.0/8"
    assert normalise("cidr", "2001:DB8:0::/32") == "2001:db8::/32"
    assert normalise("cidr", "192.0.2.7/32") == "192.0.2.7/32"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10.0.0.1/24", "'10.0.0.1/24' has host bits set; did you mean 10.0.0.0/24?"),
        ("2001:DB8::1/32", "'2001:DB8::1/32' has host bits set; did you mean 2001:db8::/32?"),
        ("10.0.0.1", "'10.0.0.1' is an address, not a network; use kind ipv4 (or write 10.0.0.1/32)"),
        (
            "2001:db8::1",
            "'2001:db8::1' is an address, not a network; use kind ipv6 (or write 2001:db8::1/128)",
        ),
        ("fe80::%eth0/64", "'fe80::%eth0/64' has a zone index (%...), which means nothing outside one host"),
        ("example.org", "'example.org' is not a network in CIDR form (e.g. 192.0.2.0/24)"),
    ],
)
def test_cidr_errors(value: str, message: str) -> None:
    assert error_of("cidr", value) == message


def test_cidr_with_a_bad_prefix_passes_on_ipaddress_reason() -> None:
    assert error_of("cidr", "10.0.0.0/33").startswith("'10.0.0.0/33' is not a network in CIDR form (")


# --- domains ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Example.ORG", "example.org"),
        ("example.org.", "example.org"),
        ("Bücher.Example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("_dmarc.Example.org", "_dmarc.example.org"),
        ("a-b.c0.example", "a-b.c0.example"),
        ("例え\u3002テスト", "xn--r8jz45g.xn--zckzah"),
    ],
)
def test_domain(value: str, expected: str) -> None:
    assert normalise("domain", value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "localhost",
            "'localhost' is not a domain name: "
            "it has a single label; at least two are expected (e.g. example.org)",
        ),
        ("a..example", "'a..example' is not a domain name: label 2 is empty (a leading dot or two in a row)"),
        (
            ".example.org",
            "'.example.org' is not a domain name: label 1 is empty (a leading dot or two in a row)",
        ),
        ("-bad.example", "'-bad.example' is not a domain name: the label '-bad' starts or ends with '-'"),
        ("bad-.example", "'bad-.example' is not a domain name: the label 'bad-' starts or ends with '-'"),
        (
            "ex ample.org",
            "'ex ample.org' is not a domain name: the label 'ex ample' contains ' '; "
            "only letters, digits, '-' and '_' are allowed",
        ),
        ("1.2.3", "'1.2.3' is not a domain name: the last label '3' is all digits, as no top-level one is"),
        ("192.0.2.1", "'192.0.2.1' is an IPv4 address, not a domain name; use kind ipv4"),
        ("2001:db8::1", "'2001:db8::1' is an IPv6 address, not a domain name; use kind ipv6"),
        (".", "'.' is not a domain name"),
    ],
)
def test_domain_errors(value: str, message: str) -> None:
    assert error_of("domain", value) == message


def test_domain_label_and_total_lengths() -> None:
    label = "a" * 64
    assert error_of("domain", f"{label}.example") == (
        f"'{label}.example' is not a domain name: the label '{label}' is 64 characters long; at most 63"
    )
    longest = ".".join(["a" * 63] * 3 + ["b" * 61])
    assert normalise("domain", longest) == longest
    assert error_of("domain", longest + "b").endswith(
        "is not a domain name: it is 254 characters long; at most 253"
    )


def test_domain_label_without_an_idna_form() -> None:
    # U+00AD (soft hyphen) is mapped to nothing by nameprep, leaving an empty label.
    message = error_of("domain", "\xad.example")
    assert message.startswith("'\\xad.example' is not a domain name: the label '\\xad' has no IDNA form (")


# --- URLs ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("HTTP://Evil.Example", "http://evil.example/"),
        ("http://evil.example:80/a", "http://evil.example/a"),
        ("https://evil.example:443/a", "https://evil.example/a"),
        ("ws://evil.example:80/a", "ws://evil.example/a"),
        ("wss://evil.example:443/a", "wss://evil.example/a"),
        ("ftp://evil.example:21/pub", "ftp://evil.example/pub"),
        ("http://evil.example:443/a", "http://evil.example:443/a"),
        ("https://evil.example:8443/a", "https://evil.example:8443/a"),
        ("http://evil.example:08080/a", "http://evil.example:8080/a"),
        ("http://evil.example:/a", "http://evil.example/a"),
        ("https://evil.example/a#section-2", "https://evil.example/a"),
        ("https://evil.example?q=1", "https://evil.example/?q=1"),
        ("https://evil.example/a%2fb%c3%a9?x=%7e&y=Z", "https://evil.example/a%2Fb%C3%A9?x=%7E&y=Z"),
        ("https://evil.example/Case/Kept?Q=Kept", "https://evil.example/Case/Kept?Q=Kept"),
        ("https://User:P%2fss@Evil.Example/", "https://User:P%2fss@evil.example/"),
        ("https://Bücher.Example/über", "https://xn--bcher-kva.example/über"),
        ("http://192.0.2.1:8080/gate.php", "http://192.0.2.1:8080/gate.php"),
        ("http://[2001:DB8::1]:80/x", "http://[2001:db8::1]/x"),
        ("sftp://files.example.org/drop", "sftp://files.example.org/drop"),
        ("hxxps://evil[.]example/payload.bin", "https://evil.example/payload.bin"),
    ],
)
def test_url(value: str, expected: str) -> None:
    assert normalise("url", value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "evil.example/payload",
            "'evil.example/payload' is not a URL: "
            'it has no scheme; add "http://" in front if it is a web address',
        ),
        (
            "192.0.2.1:8080/x",
            "'192.0.2.1:8080/x' is not a URL: "
            'it has no scheme; add "http://" in front if it is a web address',
        ),
        ("not a url", "'not a url' is not a URL: it contains a space; spaces must be written %20"),
        (
            "nothing",
            "'nothing' is not a URL: a scheme and a host are expected, as in https://example.org/path",
        ),
        (
            "javascript:alert(1)",
            "'javascript:alert(1)' is not a URL of a kind kept here: "
            "scheme 'javascript' is not one of http, https, ftp, ftps, sftp, ws, wss",
        ),
        (
            "gopher://evil.example/",
            "'gopher://evil.example/' is not a URL of a kind kept here: "
            "scheme 'gopher' is not one of http, https, ftp, ftps, sftp, ws, wss",
        ),
        ("http:///path", "'http:///path' is not a URL: it has no host"),
        (
            "http://evil.example/a b",
            "'http://evil.example/a b' is not a URL: it contains a space; spaces must be written %20",
        ),
        (
            "http://evil\u202e.example/",
            "'http://evil\\u202e.example/' is not a URL: it contains the character U+202E",
        ),
        ("http://evil.example:0/", "'http://evil.example:0/' is not a URL: its port 0 is outside 1-65535"),
        (
            "http://evil.example:65536/",
            "'http://evil.example:65536/' is not a URL: its port 65536 is outside 1-65535",
        ),
        (
            "http://evil.example:http/",
            "'http://evil.example:http/' is not a URL: its port 'http' is not a number",
        ),
        (
            "http://2001:db8::1/",
            "'http://2001:db8::1/' is not a URL: an IPv6 address in a URL must be in brackets, "
            "as in http://[2001:db8::1]/",
        ),
        (
            "http://[fe80::1%25eth0]/",
            "'http://[fe80::1%25eth0]/' is not a URL: its host '[fe80::1%25eth0]' "
            "has a zone index (%...), which means nothing outside one host",
        ),
        (
            "http://bad-.example/",
            "'http://bad-.example/' is not a URL: its host 'bad-.example' "
            "is not a domain name: the label 'bad-' starts or ends with '-'",
        ),
        (
            "http://192.0.2.300/",
            "'http://192.0.2.300/' is not a URL: "
            "its host '192.0.2.300' is not an IPv4 address: 300 is more than 255",
        ),
    ],
)
def test_url_errors(value: str, message: str) -> None:
    assert error_of("url", value) == message


def test_url_length_is_bounded_by_the_column() -> None:
    url = "https://evil.example/" + "a" * 2100
    assert error_of("url", url).endswith("is not a URL kept here: it is 2121 characters long; at most 2048")


# --- e-mail -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Billing@Evil.Example", "billing@evil.example"),
        ("first.last+tag@example.org", "first.last+tag@example.org"),
        ("mailto:Someone@Example.org", "someone@example.org"),
        ("info@Bücher.example", "info@xn--bcher-kva.example"),
        ("billing [at] evil [dot] example", "billing@evil.example"),
    ],
)
def test_email(value: str, expected: str) -> None:
    assert normalise("email", value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("evil.example", "'evil.example' is not an e-mail address: it has no '@'"),
        ("a@b@evil.example", "'a@b@evil.example' is not an e-mail address: it has 2 '@'s"),
        ("@evil.example", "'@evil.example' is not an e-mail address: nothing comes before the '@'"),
        ("someone@", "'someone@' is not an e-mail address: nothing comes after the '@'"),
        (
            "so meone@evil.example",
            "'so meone@evil.example' is not an e-mail address: the part before '@' contains a space",
        ),
        (
            "someone@localhost",
            "'someone@localhost' is not an e-mail address: its domain 'localhost' "
            "is not a domain name: it has a single label; at least two are expected (e.g. example.org)",
        ),
    ],
)
def test_email_errors(value: str, message: str) -> None:
    assert error_of("email", value) == message


def test_email_local_part_is_at_most_64_characters() -> None:
    assert normalise("email", "a" * 64 + "@example.org") == "a" * 64 + "@example.org"
    assert error_of("email", "a" * 65 + "@example.org").endswith(
        "is not an e-mail address: the part before '@' is 65 characters long; at most 64"
    )


# --- hashes -------------------------------------------------------------------------------------------------

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("md5", MD5.upper(), MD5),
        ("md5", f"MD5:{MD5}", MD5),
        ("sha1", f"sha1:{SHA1.upper()}", SHA1),
        ("sha1", f"SHA-1: {SHA1}", SHA1),
        ("sha256", f"sha256:{SHA256}", SHA256),
        ("sha256", f"SHA-256:{SHA256.upper()}", SHA256),
    ],
)
def test_hashes(kind: str, value: str, expected: str) -> None:
    assert normalise(kind, value) == expected


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("md5", "abc", "'abc' is not an MD5 hash: 32 hexadecimal digits expected, got 3 characters"),
        (
            "md5",
            SHA256,
            f"'{SHA256}' is not an MD5 hash: 32 hexadecimal digits expected, got 64 characters "
            "(64 is a SHA-256 hash; use kind sha256)",
        ),
        (
            "sha256",
            MD5,
            f"'{MD5}' is not a SHA-256 hash: 64 hexadecimal digits expected, got 32 characters "
            "(32 is an MD5 hash; use kind md5)",
        ),
        ("sha1", "g" + SHA1[1:], f"'g{SHA1[1:]}' is not a SHA-1 hash: 'g' is not a hexadecimal digit"),
        ("sha1", f"md5:{MD5}", f"'md5:{MD5}' is labelled md5, so it is not a SHA-1 hash; use kind md5"),
    ],
)
def test_hash_errors(kind: str, value: str, message: str) -> None:
    assert error_of(kind, value) == message


# --- CVE identifiers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("CVE-2024-3094", "CVE-2024-3094"),
        ("cve-2024-3094", "CVE-2024-3094"),
        ("CVE-2021-44228", "CVE-2021-44228"),
        ("CVE-2014-0160", "CVE-2014-0160"),
        ("CVE-2024-03094", "CVE-2024-3094"),
        ("CVE\u20112021\u201144228", "CVE-2021-44228"),
        ("CVE-1999-0001", "CVE-1999-0001"),
    ],
)
def test_cve(value: str, expected: str) -> None:
    assert normalise("cve", value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("CVE-2024", "'CVE-2024' is not a CVE identifier: CVE-YYYY-NNNN expected, as in CVE-2024-3094"),
        ("CVE-24-3094", "'CVE-24-3094' is not a CVE identifier: CVE-YYYY-NNNN expected, as in CVE-2024-3094"),
        (
            "CVE-2024-309",
            "'CVE-2024-309' is not a CVE identifier: the sequence number '309' has fewer than 4 digits",
        ),
        ("CVE-1998-0001", "'CVE-1998-0001' is not a CVE identifier: the year 1998 is outside 1999-2100"),
        ("CVE-2101-0001", "'CVE-2101-0001' is not a CVE identifier: the year 2101 is outside 1999-2100"),
    ],
)
def test_cve_errors(value: str, message: str) -> None:
    assert error_of("cve", value) == message


# --- AS numbers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("AS64500", "AS64500"),
        ("as64500", "AS64500"),
        ("ASN64500", "AS64500"),
        ("64500", "AS64500"),
        ("AS 64500", "AS64500"),
        ("AS1.10", "AS65546"),
        ("AS4294967295", "AS4294967295"),
    ],
)
def test_asn(value: str, expected: str) -> None:
    assert normalise("asn", value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("AS0", "'AS0' is not an AS number: it is outside 1-4294967295"),
        ("AS4294967296", "'AS4294967296' is not an AS number: it is outside 1-4294967295"),
        ("AS" + "9" * 30, f"'AS{'9' * 30}' is not an AS number: it is outside 1-4294967295"),
        ("AS65536.1", "'AS65536.1' is not an AS number: each half of the asdot form is at most 65535"),
        ("AS-64500", "'AS-64500' is not an AS number: AS64500, ASN64500 or 64500 expected"),
    ],
)
def test_asn_errors(value: str, message: str) -> None:
    assert error_of("asn", value) == message


# --- detect -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "kind"),
    [
        ("192.0.2.1", "ipv4"),
        ("198.51.100[.]7", "ipv4"),
        ("2001:db8::1", "ipv6"),
        ("192.0.2.0/24", "cidr"),
        ("2001:db8::/32", "cidr"),
        ("hxxps://evil[.]example/x", "url"),
        ("http://192.0.2.1/", "url"),
        ("billing@evil.example", "email"),
        ("billing[at]evil[.]example", "email"),
        ("cve-2024-3094", "cve"),
        ("AS64500", "asn"),
        ("asn64500", "asn"),
        (MD5, "md5"),
        (SHA1.upper(), "sha1"),
        (SHA256, "sha256"),
        (f"sha256:{SHA256}", "sha256"),
        ("evil.example", "domain"),
        ("Bücher.example", "domain"),
        ("evil[.]xn--p1ai", "domain"),
    ],
)
def test_detect(token: str, kind: str) -> None:
    assert detect(token) == kind


@pytest.mark.parametrize(
    "token",
    [
        "",
        "   ",
        "hello",
        "64500",  # a bare number is not taken for an AS number
        "e.g",
        "i.e",
        "v1.2b",
        "1.2.3",
        "10.0.0.1/24",  # host bits set: not a network, and not an address either
        "evil.example/path",  # a URL needs its scheme to be recognised
        "abc123",
        "CVE-2024-1",
        "AS0",
        "://",
    ],
)
def test_detect_junk(token: str) -> None:
    assert detect(token) is None


# --- extract ------------------------------------------------------------------------------------------------

ADVISORY = f"""
Summary (TLP:CLEAR). Since 3 March the actor has served the loader from hxxps://cdn-update[.]example/dl/setup.exe
and hxxp://198.51.100[.]7:80/gate.php?id=%2f7#top. Beacons went to 198.51.100.7, 203.0.113.9;
and 2001:DB8::BEEF.
Phishing mail came from billing[at]cdn-update[.]example (also seen as <Billing@CDN-Update.example>).
The dropper (MD5: {MD5.upper()}) exploits CVE-2024-3094, e.g. on hosts in 192.0.2.0/24 announced by AS64500.
Block cdn-update(.)example and "203.0.113.9". Again: cve-2024-3094, 198.51.100.7.
"""


def test_extract_from_an_advisory() -> None:
    assert extract(ADVISORY) == [
        ("url", "https://cdn-update.example/dl/setup.exe"),
        ("url", "http://198.51.100.7/gate.php?id=%2F7"),
        ("ipv4", "198.51.100.7"),
        ("ipv4", "203.0.113.9"),
        ("ipv6", "2001:db8::beef"),
        ("email", "billing@cdn-update.example"),
        ("md5", MD5),
        ("cve", "CVE-2024-3094"),
        ("cidr", "192.0.2.0/24"),
        ("asn", "AS64500"),
        ("domain", "cdn-update.example"),
    ]


def test_extract_keeps_what_trailing_punctuation_would_break() -> None:
    text = "Scanned from 2001:db8:: and [2001:db8::2], then (192.0.2.1); see example.org!"
    assert extract(text) == [
        ("ipv6", "2001:db8::"),
        ("ipv6", "2001:db8::2"),
        ("ipv4", "192.0.2.1"),
        ("domain", "example.org"),
    ]


def test_extract_of_nothing() -> None:
    assert extract("") == []
    assert extract("No indicators here, e.g. none at all; version 1.2.3 only.") == []


# --- properties ---------------------------------------------------------------------------------------------

networks = st.tuples(st.ip_addresses(), st.integers(min_value=0, max_value=128)).map(
    lambda pair: str(ipaddress.ip_network(f"{pair[0]}/{min(pair[1], pair[0].max_prefixlen)}", strict=False))
)
hashes = st.sampled_from([("md5", 16), ("sha1", 20), ("sha256", 32)]).flatmap(
    lambda choice: st.tuples(
        st.just(choice[0]),
        st.binary(min_size=choice[1], max_size=choice[1]).map(bytes.hex),
        st.booleans(),
    ).map(lambda drawn: (drawn[0], drawn[1].upper() if drawn[2] else drawn[1]))
)
observables = st.one_of(
    st.ip_addresses(v=4).map(lambda address: ("ipv4", str(address))),
    st.ip_addresses(v=6).map(lambda address: ("ipv6", address.exploded.upper())),
    networks.map(lambda network: ("cidr", network)),
    hashes,
)


@settings(max_examples=200, deadline=None)
@given(observables)
def test_normalise_is_idempotent(observable: tuple[str, str]) -> None:
    kind, value = observable
    once = normalise(kind, value)
    assert normalise(kind, once) == once
    assert detect(once) == kind


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=80)
    | st.text(alphabet="hxp[.]():/@a1-%AS ", max_size=80)
)
def test_extract_never_raises_and_yields_normal_forms(text: str) -> None:
    for kind, value in extract(text):
        assert normalise(kind, value) == value
