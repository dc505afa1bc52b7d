"""Parsing and normalising constituency resources: CIDR, ASN, domain names. Errors say what and where."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from certnet.core.errors import DomainError, invalid

_IPV4_MAPPED_BASE = int(ipaddress.IPv6Address("::ffff:0:0"))
ASN_MAX = 4_294_967_295  # 32-bit AS numbers (RFC 6793)


@dataclass(frozen=True)
class ParsedNetwork:
    cidr: str
    family: int
    prefix_length: int
    start: str
    end: str

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.cidr)


def address_key(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """32 hex digits that sort like the address; IPv4 is placed in the IPv4-mapped IPv6 range."""
    value = int(address)
    if address.version == 4:
        value += _IPV4_MAPPED_BASE
    return f"{value:032x}"


def parse_network(text: str, *, loc: str = "cidr") -> ParsedNetwork:
    raw = (text or "").strip()
    try:
        network = ipaddress.ip_network(raw, strict=True)
    except ValueError as exc:
        reason = str(exc)
        if "has host bits set" in reason:
            reason = f"{raw!r} has host bits set; did you mean {ipaddress.ip_network(raw, strict=False)}?"
        else:
            reason = f"{raw!r} is not an IPv4 or IPv6 network in CIDR form ({reason})"
        raise invalid(loc, reason) from None
    return ParsedNetwork(
        cidr=str(network),
        family=network.version,
        prefix_length=network.prefixlen,
        start=address_key(network.network_address),
        end=address_key(network.broadcast_address),
    )


def parse_address(text: str, *, loc: str = "ip") -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    raw = (text or "").strip()
    if "%" in raw:
        raise invalid(loc, f"{text!r} has a zone index (%…), which has no meaning outside one host")
    try:
        return ipaddress.ip_address(raw)
    except ValueError:
        raise invalid(loc, f"{text!r} is not an IPv4 or IPv6 address") from None


def parse_asn(value: str | int, *, loc: str = "asn") -> int:
    text = str(value).strip().upper().removeprefix("AS")
    if not (text.isascii() and text.isdigit() and len(text) <= 10):
        raise invalid(loc, f"{value!r} is not an AS number (e.g. 'AS45773' or 45773)")
    number = int(text)
    if not 1 <= number <= ASN_MAX:
        raise invalid(loc, f"AS number {number} is outside 1-{ASN_MAX}")
    return number


def normalise_domain(text: str, *, loc: str = "domain") -> tuple[str, str]:
    """Return (ASCII/IDNA lower-case name, Unicode name) or raise a clear error."""
    raw = (text or "").strip().rstrip(".")
    if not raw:
        raise invalid(loc, "a domain name is required")
    try:
        ascii_name = raw.encode("idna").decode("ascii").lower()
        unicode_name = ascii_name.encode("ascii").decode("idna")
    except UnicodeError as exc:
        raise invalid(loc, f"{text!r} is not a valid domain name ({exc})") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or any(not label or len(label) > 63 for label in labels):
        raise invalid(loc, f"{text!r} is not a valid domain name (empty or over-long label)")
    for label in labels:
        if label.startswith("-") or label.endswith("-") or not all(ch.isalnum() or ch == "-" for ch in label):
            raise invalid(loc, f"{text!r} is not a valid domain name (bad label {label!r})")
    return ascii_name, unicode_name


def classify_query(query: str) -> str:
    """'ip', 'asn' or 'domain' for a lookup query. An AS number is digits with an optional 'AS'
    prefix, so a domain such as asus.example stays a domain."""
    text = query.strip()
    if re.fullmatch(r"(?i)(as)?\s*\d+", text):
        return "asn"
    try:
        parse_address(text)
    except DomainError:
        return "domain"
    return "ip"
