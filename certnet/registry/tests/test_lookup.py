"""Tests of certnet.registry.lookup (pure: no Django, no database)."""

from __future__ import annotations

import ipaddress
import itertools
import pickle
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certnet.registry.lookup import (
    NO_MATCH,
    AsnIndex,
    DomainSuffixIndex,
    PrefixIndex,
    ipv4_to_uint32,
    ipv6_to_halves,
    normalize_domain,
)

V4 = 4
V6 = 6
V4_ZERO = str(ipaddress.IPv4Address(0))  # "0.0.0.0", spelled so that linters see no bind address


def v4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def v6_halves(text: str) -> tuple[int, int]:
    value = int(ipaddress.IPv6Address(text))
    return value >> 64, value & (2**64 - 1)


def lookup_all(index: PrefixIndex, addresses: list[str]) -> list[int | None]:
    """Every lookup path for text addresses must agree; returns lookup_one's answers."""
    singles = [index.lookup_one(a) for a in addresses]
    batch = index.lookup(addresses).tolist()
    assert batch == [NO_MATCH if s is None else s for s in singles]
    return singles


# --------------------------------------------------------------------------- IPv4


@pytest.fixture
def nested() -> PrefixIndex:
    return PrefixIndex.build(["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24"], [8, 16, 24])


def test_nested_ipv4_most_specific_wins(nested: PrefixIndex) -> None:
    addresses = ["10.0.0.1", "10.1.0.1", "10.1.2.3", "10.1.3.0", "10.2.0.0", "11.0.0.0"]
    assert lookup_all(nested, addresses) == [8, 16, 24, 16, 8, None]
    assert nested.size == 3
    assert nested.ipv4_count == 3
    assert nested.ipv6_count == 0


def test_nested_block_boundaries(nested: PrefixIndex) -> None:
    addresses = [
        "9.255.255.255",  # just before the /8
        "10.0.0.0",  # first of the /8
        "10.0.255.255",  # just before the /16
        "10.1.0.0",  # first of the /16
        "10.1.1.255",  # just before the /24
        "10.1.2.0",  # first of the /24
        "10.1.2.255",  # last of the /24
        "10.1.3.0",  # just after the /24
        "10.1.255.255",  # last of the /16
        "10.2.0.0",  # just after the /16
        "10.255.255.255",  # last of the /8
        "11.0.0.0",  # just after the /8
    ]
    assert lookup_all(nested, addresses) == [None, 8, 8, 16, 16, 24, 24, 16, 16, 8, 8, None]


def test_nesting_independent_of_input_order() -> None:
    nets = ["10.1.2.0/24", "10.0.0.0/8", "10.1.0.0/16"]
    index = PrefixIndex.build(nets, [24, 8, 16])
    assert lookup_all(index, ["10.1.2.9", "10.1.9.9", "10.9.9.9"]) == [24, 16, 8]


def test_child_sharing_start_and_end_with_parent() -> None:
    index = PrefixIndex.build(
        ["192.0.2.0/24", "192.0.2.0/25", "192.0.2.192/26", "192.0.2.255/32"], [1, 2, 3, 4]
    )
    addresses = ["192.0.2.0", "192.0.2.127", "192.0.2.128", "192.0.2.191", "192.0.2.192"]
    assert lookup_all(index, [*addresses, "192.0.2.254", "192.0.2.255", "192.0.3.0"]) == [
        2,
        2,
        1,
        1,
        3,
        3,
        4,
        None,
    ]


def test_adjacent_and_disjoint_blocks() -> None:
    index = PrefixIndex.build(["198.51.100.0/25", "198.51.100.128/25", "203.0.113.0/24"], [1, 2, 3])
    addresses = [
        "198.51.99.255",
        "198.51.100.0",
        "198.51.100.127",
        "198.51.100.128",
        "198.51.100.255",
        "198.51.101.0",
        "203.0.112.255",
        "203.0.113.0",
        "203.0.113.255",
        "203.0.114.0",
    ]
    assert lookup_all(index, addresses) == [None, 1, 1, 2, 2, None, None, 3, 3, None]


def test_adjacent_blocks_with_the_same_value_merge_but_still_match() -> None:
    index = PrefixIndex.build(["10.0.0.0/25", "10.0.0.128/25", "10.0.0.0/24"], [5, 5, 5])
    starts, values = index.ipv4_intervals()
    assert starts.tolist() == [0, v4("10.0.0.0"), v4("10.0.1.0")]
    assert values.tolist() == [NO_MATCH, 5, NO_MATCH]
    assert lookup_all(index, ["10.0.0.0", "10.0.0.200", "10.0.1.0"]) == [5, 5, None]
    assert index.size == 3


def test_default_routes() -> None:
    index = PrefixIndex.build(["0.0.0.0/0", "::/0", "192.0.2.0/24", "2001:db8::/32"], [1, 2, 3, 4])
    addresses = [
        V4_ZERO,
        "255.255.255.255",
        "192.0.2.1",
        "::",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db8:ffff::1",
        "2001:db9::",
    ]
    assert lookup_all(index, addresses) == [1, 1, 3, 2, 2, 4, 2]
    assert index.ipv4_intervals()[0].tolist() == [0, v4("192.0.2.0"), v4("192.0.3.0")]


def test_host_routes_including_ends_of_the_address_space() -> None:
    index = PrefixIndex.build(
        [
            "0.0.0.0/32",
            "255.255.255.255/32",
            "192.0.2.7/32",
            "::/128",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
            "2001:db8::7/128",
        ],
        [1, 2, 3, 4, 5, 6],
    )
    addresses = [
        V4_ZERO,
        "0.0.0.1",
        "255.255.255.254",
        "255.255.255.255",
        "192.0.2.6",
        "192.0.2.7",
        "192.0.2.8",
        "::",
        "::1",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db8::6",
        "2001:db8::7",
        "2001:db8::8",
    ]
    v4_expected = [1, None, None, 2, None, 3, None]
    v6_expected = [4, None, None, 5, None, 6, None]
    assert lookup_all(index, addresses) == v4_expected + v6_expected


def test_lookup_ipv4_integer_arrays() -> None:
    index = PrefixIndex.build(["10.0.0.0/8", "10.1.0.0/16"], [1, 2])
    q = np.array([[v4("10.0.0.1"), v4("10.1.0.1")], [v4("11.0.0.0"), 0]], dtype=np.uint32)
    assert index.lookup_ipv4(q).tolist() == [[1, 2], [NO_MATCH, NO_MATCH]]
    assert index.lookup_ipv4(q).dtype == np.int64
    wide = np.array([v4("10.1.0.1"), -1, 2**32, 2**32 + v4("10.0.0.1")], dtype=np.int64)
    assert index.lookup_ipv4(wide).tolist() == [2, NO_MATCH, NO_MATCH, NO_MATCH]
    assert index.lookup_ipv4(np.array([], dtype=np.uint32)).tolist() == []
    with pytest.raises(TypeError):
        index.lookup_ipv4(np.array([1.5]))


# --------------------------------------------------------------------------- IPv6


def test_nested_ipv6_and_the_low_half() -> None:
    index = PrefixIndex.build(
        ["2001:db8::/32", "2001:db8:1::/48", "2001:db8:1:2::/64", "2001:db8:1:2::80/121"],
        [32, 48, 64, 121],
    )
    addresses = [
        "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db8::",
        "2001:db8:1::",
        "2001:db8:1:1:ffff:ffff:ffff:ffff",
        "2001:db8:1:2::",
        "2001:db8:1:2::7f",
        "2001:db8:1:2::80",
        "2001:db8:1:2::ff",
        "2001:db8:1:2::100",
        "2001:db8:1:2:ffff:ffff:ffff:ffff",
        "2001:db8:1:3::",
        "2001:db8:2::",
        "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db9::",
    ]
    assert lookup_all(index, addresses) == [
        None,
        32,
        48,
        48,
        64,
        64,
        121,
        121,
        64,
        64,
        48,
        32,
        32,
        None,
    ]
    hi, lo = ipv6_to_halves(addresses)
    assert index.lookup_ipv6(hi, lo).tolist() == [
        NO_MATCH if v is None else v for v in lookup_all(index, addresses)
    ]


def test_lookup_ipv6_halves_shape_and_validation() -> None:
    index = PrefixIndex.build(["2001:db8::/32"], [7])
    hi, lo = v6_halves("2001:db8::1")
    high = np.array([[hi, hi]], dtype=np.uint64)
    low = np.array([[lo, lo]], dtype=np.uint64)
    assert index.lookup_ipv6(high, low).tolist() == [[7, 7]]
    assert index.lookup_ipv6(np.array([hi, -1]), np.array([0, 0])).tolist() == [7, NO_MATCH]
    with pytest.raises(ValueError, match="shape"):
        index.lookup_ipv6(high, low[:, :1])


def test_ipv4_and_ipv6_are_separate() -> None:
    index = PrefixIndex.build(["192.0.2.0/24", "2001:db8::/32"], [4, 6])
    # An IPv4-mapped IPv6 address is IPv6: it does not match the IPv4 network ...
    assert lookup_all(index, ["::ffff:192.0.2.1", "::ffff:c000:201", "::192.0.2.1"]) == [
        None,
        None,
        None,
    ]
    # ... and the integer value of an IPv4 network means nothing to the IPv6 side.
    assert index.lookup_ipv6(np.array([0], np.uint64), np.array([v4("192.0.2.1")], np.uint64))[0] == (
        NO_MATCH
    )
    mapped = PrefixIndex.build(["::ffff:0:0/96", "0.0.0.0/0"], [96, 0])
    assert lookup_all(mapped, ["::ffff:192.0.2.1", "192.0.2.1", "2001:db8::1"]) == [96, 0, None]
    v6_default = PrefixIndex.build(["::/0"], [1])
    assert lookup_all(v6_default, ["192.0.2.1", "::1"]) == [None, 1]


def test_many_host_routes_in_one_slash_64_large_batch() -> None:
    """Exercise the second (lower-half) level and the sorted batch path."""
    rng = random.Random(7)
    base = int(ipaddress.IPv6Address("2001:db8:aa:bb::"))
    hosts = sorted(rng.sample(range(2**16), 300))
    nets = ["2001:db8:aa:bb::/64", "2001:db8:aa::/48"]
    nets += [f"{ipaddress.IPv6Address(base + h)}/128" for h in hosts]
    nets += [f"{ipaddress.IPv6Address(base + (1 << 20))}/108"]
    index = PrefixIndex.build(nets, list(range(1, len(nets) + 1)))
    queries = [base + h for h in hosts] + [base + rng.randrange(2**21) for _ in range(4000)]
    queries += [base - 1, base + 2**64, base - 2**64]
    rng.shuffle(queries)
    hi = np.array([q >> 64 for q in queries], dtype=np.uint64)
    lo = np.array([q & (2**64 - 1) for q in queries], dtype=np.uint64)
    expected = [NO_MATCH if (v := index.lookup_int(q, 6)) is None else v for q in queries]
    assert index.lookup_ipv6(hi, lo).tolist() == expected
    reference = Reference(nets, list(range(1, len(nets) + 1)))
    assert expected[:400] == [reference.lookup_int(q, 6) for q in queries[:400]]
    assert index.lookup([str(ipaddress.IPv6Address(q)) for q in queries]).tolist() == expected


def test_large_ipv4_batch_uses_the_same_answers() -> None:
    rng = random.Random(3)
    nets = sorted({f"{ipaddress.IPv4Address(rng.getrandbits(16) << 16)}/16" for _ in range(50)})
    nets += [f"{n.split('/')[0][:-3]}{rng.randrange(256)}.0/24" for n in nets[:20]]
    nets = list(dict.fromkeys(nets))
    index = PrefixIndex.build(nets, list(range(1, len(nets) + 1)))
    q = np.array(
        [rng.getrandbits(32) for _ in range(3000)]
        + [int(ipaddress.IPv4Network(n).network_address) + 5 for n in nets] * 20,
        dtype=np.uint32,
    )
    q = q[np.random.default_rng(3).permutation(len(q))]
    expected = [NO_MATCH if (v := index.lookup_int(int(a), 4)) is None else v for a in q]
    assert index.lookup_ipv4(q).tolist() == expected
    reference = Reference(nets, list(range(1, len(nets) + 1)))
    assert expected == [reference.lookup_int(int(a), 4) for a in q]


# --------------------------------------------------------------------------- building


@pytest.mark.parametrize(
    ("network", "reason"),
    [
        ("10.0.0.1/8", "host bits"),
        ("2001:db8::1/32", "host bits"),
        ("10.0.0.0/33", "prefix length"),
        ("2001:db8::/129", "prefix length"),
        ("not-a-network", ""),
        ("10.0.0.0/", ""),
        ("10.0.0.0/-1", ""),
        ("10.0.0/24", ""),
        ("010.0.0.0/8", ""),
        ("", ""),
        (" 10.0.0.0/8", ""),
        ("2001:db8::/32/1", ""),
        ("2001:db8:::/32", ""),
    ],
)
def test_invalid_networks_raise_naming_the_entry(network: str, reason: str) -> None:
    with pytest.raises(ValueError, match="invalid network") as info:
        PrefixIndex.build(["192.0.2.0/24", network], [1, 2])
    assert repr(network) in str(info.value)
    assert "position 1" in str(info.value)
    assert reason in str(info.value)


def test_non_string_network_raises() -> None:
    with pytest.raises(ValueError, match="not a string"):
        PrefixIndex.build([42], [1])  # type: ignore[list-item]


def test_duplicate_network_with_different_values_raises() -> None:
    with pytest.raises(ValueError, match="listed twice") as info:
        PrefixIndex.build(["10.0.0.0/8", "192.0.2.0/24", "10.0.0.0/8"], [1, 2, 3])
    assert "'10.0.0.0/8'" in str(info.value)
    # The same network spelled differently is still the same network.
    with pytest.raises(ValueError, match="listed twice"):
        PrefixIndex.build(["2001:DB8::/32", "2001:db8:0::/32"], [1, 2])


def test_duplicate_network_with_the_same_value_is_harmless() -> None:
    index = PrefixIndex.build(["10.0.0.0/8", "10.0.0.0/8", "::/0", "::/0"], [1, 1, 2, 2])
    assert index.size == 2
    assert lookup_all(index, ["10.1.1.1", "::1"]) == [1, 2]


def test_other_accepted_network_forms() -> None:
    index = PrefixIndex.build(
        [
            "10.0.0.0/255.0.0.0",
            "192.0.2.7",
            ipaddress.ip_network("2001:db8::/32"),
            "2001:DB8:1::/48",
            "172.16.0.0/012",
        ],
        np.array([1, 2, 3, 4, 5], dtype=np.int32),
    )
    addresses = ["10.9.9.9", "192.0.2.7", "192.0.2.8", "2001:db8::1", "2001:db8:1::1", "172.20.0.1"]
    assert lookup_all(index, addresses) == [1, 2, None, 3, 4, 5]


def test_value_validation() -> None:
    with pytest.raises(ValueError, match="reserved"):
        PrefixIndex.build(["10.0.0.0/8"], [NO_MATCH])
    with pytest.raises(ValueError, match="1 keys but 2 values"):
        PrefixIndex.build(["10.0.0.0/8"], [1, 2])
    with pytest.raises(ValueError, match="integers"):
        PrefixIndex.build(["10.0.0.0/8"], [1.5])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="int64"):
        PrefixIndex.build(["10.0.0.0/8"], np.array([2**63], dtype=np.uint64))
    big = PrefixIndex.build(["10.0.0.0/8", "::/0"], [2**62, -5])
    assert lookup_all(big, ["10.0.0.1", "::"]) == [2**62, -5]


def test_empty_index() -> None:
    for index in (PrefixIndex.build([], []), PrefixIndex()):
        assert index.size == 0
        assert len(index) == 0
        assert lookup_all(index, ["10.0.0.1", "::1", "garbage"]) == [None, None, None]
        assert index.lookup_ipv4(np.arange(5000, dtype=np.uint32)).tolist() == [NO_MATCH] * 5000
        hi = np.zeros(3000, dtype=np.uint64)
        assert (index.lookup_ipv6(hi, hi) == NO_MATCH).all()
        assert index.lookup([]).tolist() == []


def test_invalid_addresses_in_batch_are_no_match() -> None:
    index = PrefixIndex.build(["0.0.0.0/0", "::/0"], [4, 6])
    addresses = [
        "192.0.2.1",
        "",
        "1.2.3",
        "1.2.3.4 ",
        " 1.2.3.4",
        "01.2.3.4",
        "256.0.0.1",
        "1.2.3.4/32",
        "::g",
        "1::2::3",
        "fe80::1%eth0",
        "2001:db8::1",
        "\u0661.\u0662.\u0663.\u0664",  # Arabic-Indic digits
        "1.2.3.4\x00",
        "localhost",
    ]
    expected = [4] + [None] * 10 + [6] + [None] * 3
    assert lookup_all(index, addresses) == expected
    # Non-string entries do not break the batch either.
    mixed = index.lookup(["192.0.2.1", None, 5, b"1.2.3.4", "::1"])  # type: ignore[list-item]
    assert mixed.tolist() == [4, NO_MATCH, NO_MATCH, NO_MATCH, 6]
    assert index.lookup_one(None) is None  # type: ignore[arg-type]


def test_invalid_entries_only_affect_themselves_in_large_text_batches() -> None:
    index = PrefixIndex.build(["10.0.0.0/8", "2001:db8::/32"], [1, 2])
    addresses = ["10.0.0.1", "2001:db8::1"] * 5000
    addresses[1234] = "10.0.0.256"
    addresses[7777] = "2001:db8::x"
    result = index.lookup(addresses)
    expected = np.array([1, 2] * 5000)
    expected[[1234, 7777]] = NO_MATCH
    assert result.tolist() == expected.tolist()


def test_parse_helpers() -> None:
    assert ipv4_to_uint32([V4_ZERO, "10.1.2.3", "255.255.255.255"]).tolist() == [
        0,
        v4("10.1.2.3"),
        2**32 - 1,
    ]
    assert ipv4_to_uint32([]).dtype == np.uint32
    hi, lo = ipv6_to_halves(["::", "2001:db8::1", "::ffff:1.2.3.4"])
    assert hi.dtype == np.uint64
    assert lo.dtype == np.uint64
    assert hi.tolist() == [0, 0x20010DB800000000, 0]
    assert lo.tolist() == [0, 1, 0xFFFF01020304]
    with pytest.raises(ValueError, match=r"invalid IPv4 address '1\.2\.3' at position 1"):
        ipv4_to_uint32(["1.2.3.4", "1.2.3"])
    with pytest.raises(ValueError, match=r"'::1' at position 0 \(and 1 more\)"):
        ipv4_to_uint32(["::1", "x", "1.2.3.4"])
    with pytest.raises(ValueError, match=r"invalid IPv6 address '1\.2\.3\.4'"):
        ipv6_to_halves(["1.2.3.4"])


def test_intervals_partition_the_address_space() -> None:
    index = PrefixIndex.build(["10.0.0.0/8", "2001:db8::/32"], [1, 2])
    starts, values = index.ipv4_intervals()
    assert starts.tolist() == [0, v4("10.0.0.0"), v4("11.0.0.0")]
    assert values.tolist() == [NO_MATCH, 1, NO_MATCH]
    hi, lo, values6 = index.ipv6_intervals()
    assert hi.tolist() == [0, 0x20010DB800000000, 0x20010DB900000000]
    assert lo.tolist() == [0, 0, 0]
    assert values6.tolist() == [NO_MATCH, 2, NO_MATCH]
    assert "ipv4=1" in repr(index)


# --------------------------------------------------------------------------- property tests


class Reference:
    """Naive longest-prefix match over ``ipaddress`` networks."""

    def __init__(self, networks: list[str], values: list[int]) -> None:
        self.nets = [(ipaddress.ip_network(n), v) for n, v in zip(networks, values, strict=True)]

    def lookup_int(self, address: int, version: int) -> int:
        addr = ipaddress.IPv4Address(address) if version == V4 else ipaddress.IPv6Address(address)
        best: tuple[int, int] | None = None
        for net, value in self.nets:
            if net.version == version and addr in net and (best is None or net.prefixlen > best[0]):
                best = (net.prefixlen, value)
        return NO_MATCH if best is None else best[1]


Drawn = tuple[list[int], list[tuple[int, int, int]]]
Networks = tuple[list[int], list[tuple[int, int]]]


def network_sets(bits: int) -> st.SearchStrategy[Networks]:
    """A few random "anchor" addresses and networks around them (so they nest and touch)."""
    anchors = st.lists(st.integers(0, 2**bits - 1), min_size=1, max_size=4, unique=True)

    def nets_for(anchor_list: list[int]) -> st.SearchStrategy[Drawn]:
        lengths = st.one_of(
            st.integers(0, bits),
            st.integers(max(0, bits // 2 - 4), min(bits, bits // 2 + 4)),
            st.integers(bits - 8, bits),
        )
        net = st.tuples(st.sampled_from(anchor_list), lengths, st.integers(0, 2**bits - 1))
        return st.tuples(st.just(anchor_list), st.lists(net, max_size=25))

    def masked(drawn: Drawn) -> Networks:
        anchor_list, raw = drawn
        nets: set[tuple[int, int]] = set()
        for anchor, plen, noise in raw:
            # Either the anchor's own prefix, or a nearby one (flip a bit just above the mask).
            start = anchor
            if noise % 3 == 0 and plen > 0:
                start ^= 1 << (bits - plen)
            start &= ~((1 << (bits - plen)) - 1) & (2**bits - 1)
            nets.add((start, plen))
        return anchor_list, sorted(nets)

    return anchors.flatmap(nets_for).map(masked)


def addresses_near(bits: int, anchors: list[int], nets: list[tuple[int, int]]) -> st.SearchStrategy[int]:
    edges = [0, 2**bits - 1, *anchors]
    for start, plen in nets:
        end = start | ((1 << (bits - plen)) - 1)
        edges += [start, end, max(0, start - 1), min(2**bits - 1, end + 1)]
    return st.one_of(
        st.sampled_from(edges),
        st.builds(
            lambda a, d: min(max(a + d, 0), 2**bits - 1),
            st.sampled_from(anchors),
            st.integers(-300, 300),
        ),
        st.integers(0, 2**bits - 1),
    )


def check_family(bits: int, data: st.DataObject) -> None:
    version = V4 if bits == 32 else V6
    anchors, nets = data.draw(network_sets(bits))
    addr_type = ipaddress.IPv4Address if version == V4 else ipaddress.IPv6Address
    net_type = ipaddress.IPv4Network if version == V4 else ipaddress.IPv6Network
    texts = [str(net_type((start, plen))) for start, plen in nets]
    values = data.draw(
        st.lists(
            st.integers(-(2**63), 2**63 - 1).filter(lambda v: v != NO_MATCH),
            min_size=len(texts),
            max_size=len(texts),
        )
    )
    # A few shared values so that neighbouring intervals get merged.
    values = [values[i] if i % 4 else values[0] for i in range(len(values))] if values else []
    index = PrefixIndex.build(texts, values)
    reference = Reference(texts, values)
    addresses = data.draw(st.lists(addresses_near(bits, anchors, nets), min_size=1, max_size=40))
    expected = [reference.lookup_int(a, version) for a in addresses]

    assert index.size == len(texts)
    assert [index.lookup_int(a, version) for a in addresses] == [
        None if e == NO_MATCH else e for e in expected
    ]
    text = [str(addr_type(a)) for a in addresses]
    assert index.lookup(text).tolist() == expected
    assert [index.lookup_one(t) for t in text] == [None if e == NO_MATCH else e for e in expected]
    # Batch integer paths, small (direct search) and large (sorted search).
    large = np.resize(np.arange(len(addresses)), 2500)
    if version == V4:
        q = np.array(addresses, dtype=np.uint32)
        assert index.lookup_ipv4(q).tolist() == expected
        assert index.lookup_ipv4(q[large]).tolist() == np.array(expected)[large].tolist()
    else:
        hi = np.array([a >> 64 for a in addresses], dtype=np.uint64)
        lo = np.array([a & (2**64 - 1) for a in addresses], dtype=np.uint64)
        assert index.lookup_ipv6(hi, lo).tolist() == expected
        assert index.lookup_ipv6(hi[large], lo[large]).tolist() == np.array(expected)[large].tolist()
    # The flattened intervals are a sorted partition with merged neighbours.
    if version == V4:
        starts = index.ipv4_intervals()[0].tolist()
        flat_values = index.ipv4_intervals()[1].tolist()
    else:
        h, lw, flat = index.ipv6_intervals()
        starts = [(int(a) << 64) | int(b) for a, b in zip(h, lw, strict=True)]
        flat_values = flat.tolist()
    assert starts[0] == 0
    assert all(a < b for a, b in itertools.pairwise(starts))
    assert all(a != b for a, b in itertools.pairwise(flat_values))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_ipv4_matches_naive_reference(data: st.DataObject) -> None:
    check_family(32, data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_ipv6_matches_naive_reference(data: st.DataObject) -> None:
    check_family(128, data)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_mixed_families_match_naive_reference(data: st.DataObject) -> None:
    _, nets4 = data.draw(network_sets(32))
    _, nets6 = data.draw(network_sets(128))
    texts = [str(ipaddress.IPv4Network(n)) for n in nets4]
    texts += [str(ipaddress.IPv6Network(n)) for n in nets6]
    values = list(range(1, len(texts) + 1))
    random.Random(len(texts)).shuffle(values)
    index = PrefixIndex.build(texts, values)
    reference = Reference(texts, values)
    addresses = data.draw(
        st.lists(
            st.one_of(
                st.builds(lambda a: (V4, a), st.integers(0, 2**32 - 1)),
                st.builds(lambda a: (V6, a), st.integers(0, 2**128 - 1)),
                st.sampled_from([(V4, s) for s, _ in nets4] + [(V6, s) for s, _ in nets6] or [(4, 0)]),
            ),
            max_size=30,
        )
    )
    text = [str(ipaddress.IPv4Address(a) if v == V4 else ipaddress.IPv6Address(a)) for v, a in addresses]
    assert index.lookup(text).tolist() == [reference.lookup_int(a, v) for v, a in addresses]
    assert index.ipv4_count == len(nets4)
    assert index.ipv6_count == len(nets6)


# --------------------------------------------------------------------------- domains


@pytest.fixture
def domains() -> DomainSuffixIndex:
    return DomainSuffixIndex.build(
        ["gov.pk", "nadra.gov.pk", "pk", "Bank.COM.", "münchen.de", "xn--bcher-kva.example"],
        [1, 2, 3, 4, 5, 6],
    )


def test_domain_most_specific_suffix_wins(domains: DomainSuffixIndex) -> None:
    assert domains.lookup_one("nadra.gov.pk") == 2
    assert domains.lookup_one("mail.nadra.gov.pk") == 2
    assert domains.lookup_one("a.b.c.mail.nadra.gov.pk") == 2
    assert domains.lookup_one("gov.pk") == 1
    assert domains.lookup_one("fbr.gov.pk") == 1
    assert domains.lookup_one("example.pk") == 3
    assert domains.lookup_one("pk") == 3
    assert domains.lookup_one("example.com") is None
    assert domains.lookup_one("com") is None
    assert domains.size == 6
    assert len(domains) == 6


def test_domain_label_boundary(domains: DomainSuffixIndex) -> None:
    assert domains.lookup_one("evilnadra.gov.pk") == 1  # gov.pk, never nadra.gov.pk
    assert domains.lookup_one("nadra.gov.pk.evil.com") is None
    assert domains.lookup_one("xnadra.gov.pkx") is None
    assert domains.lookup_one("notbank.com") is None
    assert domains.lookup_one("bank.com") == 4


def test_domain_case_and_trailing_dot(domains: DomainSuffixIndex) -> None:
    assert domains.lookup_one("MAIL.NADRA.GOV.PK") == 2
    assert domains.lookup_one("mail.nadra.gov.pk.") == 2
    assert domains.lookup_one("WWW.Bank.Com.") == 4


def test_domain_idna(domains: DomainSuffixIndex) -> None:
    assert domains.lookup_one("münchen.de") == 5
    assert domains.lookup_one("www.MÜNCHEN.de") == 5
    assert domains.lookup_one("www.xn--mnchen-3ya.de") == 5
    assert domains.lookup_one("bücher.example") == 6
    assert domains.lookup_one("Shop.Bücher.Example.") == 6
    assert domains.lookup_one("muenchen.de") is None
    assert normalize_domain("Straße.DE") == "strasse.de"  # IDNA 2003, as Python's codec does
    assert normalize_domain("www.münchen.de") == "www.xn--mnchen-3ya.de"


def test_domain_invalid_queries(domains: DomainSuffixIndex) -> None:
    for bad in ["", ".", "..", "a..gov.pk", ".gov.pk", "x" * 64 + ".münchen.de"]:
        assert domains.lookup_one(bad) is None, bad
    assert domains.lookup_one(None) is None  # type: ignore[arg-type]


def test_domain_batch(domains: DomainSuffixIndex) -> None:
    names = ["mail.nadra.gov.pk", "evilnadra.gov.pk", "example.org", "WWW.münchen.DE.", ""]
    result = domains.lookup(names)
    assert result.dtype == np.int64
    assert result.tolist() == [2, 1, NO_MATCH, 5, NO_MATCH]
    assert domains.lookup([]).tolist() == []


@pytest.mark.parametrize(
    "domain", ["", ".", "a..b", "*.gov.pk", "-bad.pk", "bad-.pk", "sp ace.pk", "a/b.pk", "x" * 64]
)
def test_domain_build_rejects_malformed(domain: str) -> None:
    with pytest.raises(ValueError, match="invalid domain") as info:
        DomainSuffixIndex.build(["gov.pk", domain], [1, 2])
    assert repr(domain) in str(info.value)


def test_domain_duplicates() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        DomainSuffixIndex.build(["gov.pk", "GOV.PK."], [1, 2])
    with pytest.raises(ValueError, match="listed twice"):
        DomainSuffixIndex.build(["münchen.de", "xn--mnchen-3ya.de"], [1, 2])
    same = DomainSuffixIndex.build(["gov.pk", "GOV.PK."], [1, 1])
    assert same.size == 1
    empty = DomainSuffixIndex.build([], [])
    assert empty.lookup_one("gov.pk") is None
    assert empty.lookup(["gov.pk"]).tolist() == [NO_MATCH]


# --------------------------------------------------------------------------- ASNs


def test_asn_index() -> None:
    index = AsnIndex.build([64500, 4_200_000_000, 0, 64500], [1, 2, 3, 1])
    assert index.size == 3
    assert index.lookup_one(64500) == 1
    assert index.lookup_one(4_200_000_000) == 2
    assert index.lookup_one(0) == 3
    assert index.lookup_one(64501) is None
    q = np.array([64500, 64501, 4_200_000_000, -1, 2**40, 0, 2**32 + 64500], dtype=np.int64)
    assert index.lookup(q).tolist() == [1, NO_MATCH, 2, NO_MATCH, NO_MATCH, 3, NO_MATCH]
    assert index.lookup(np.array([2**64 - 1, 64500], dtype=np.uint64)).tolist() == [NO_MATCH, 1]
    assert index.lookup(np.array([[0, 1]])).tolist() == [[3, NO_MATCH]]
    assert AsnIndex.build([], []).lookup(np.array([1, 2])).tolist() == [NO_MATCH, NO_MATCH]
    with pytest.raises(ValueError, match="invalid ASN"):
        AsnIndex.build([2**32], [1])
    with pytest.raises(ValueError, match="invalid ASN"):
        AsnIndex.build([-1], [1])
    with pytest.raises(ValueError, match="listed twice"):
        AsnIndex.build([64500, 64500], [1, 2])
    with pytest.raises(TypeError):
        index.lookup(np.array([1.0]))


def test_indexes_pickle() -> None:
    index = PrefixIndex.build(["10.0.0.0/8", "2001:db8::/32"], [1, 2])
    clone = pickle.loads(pickle.dumps(index))  # noqa: S301 - our own data
    assert lookup_all(clone, ["10.0.0.1", "2001:db8::1", "::1"]) == [1, 2, None]
    domains = pickle.loads(pickle.dumps(DomainSuffixIndex.build(["gov.pk"], [1])))  # noqa: S301
    assert domains.lookup_one("x.gov.pk") == 1
    asns = pickle.loads(pickle.dumps(AsnIndex.build([64500], [1])))  # noqa: S301
    assert asns.lookup_one(64500) == 1
