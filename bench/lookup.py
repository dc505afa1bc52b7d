"""Benchmark of certnet.registry.lookup.PrefixIndex.

Run from the repository root::

    .venv/bin/python bench/lookup.py [--networks 100000] [--addresses 1000000] [--seed 1]
                                     [--compare-ipv6]

Prints one ``name=value`` figure per line.  Exits non-zero when the index disagrees
with a naive reference built on Python's ``ipaddress`` module.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from certnet.registry.lookup import NO_MATCH, PrefixIndex

Net = tuple[int, int, int]  # (version, first address, prefix length)


# --------------------------------------------------------------------------- data


def make_networks(count: int, rng: random.Random) -> list[Net]:
    """Random distinct networks, ~60 % IPv4, ~40 % of them nested inside an earlier one."""
    seen: set[Net] = set()
    nets: list[Net] = []
    while len(nets) < count:
        version = 4 if rng.random() < 0.6 else 6
        bits = 32 if version == 4 else 128
        same_family = [n for n in nets[-64:] if n[0] == version]
        if same_family and rng.random() < 0.4:
            # A sub-prefix of an existing network (possibly of a sub-prefix itself).
            _, parent, parent_len = rng.choice(same_family)
            if parent_len >= bits:
                continue
            if version == 4:
                plen = rng.randint(parent_len + 1, min(bits, parent_len + 12))
            else:
                plen = rng.choice([rng.randint(parent_len + 1, min(bits, parent_len + 24)), bits])
            sub = rng.getrandbits(bits) & ((1 << (bits - parent_len)) - 1)
            start = parent | sub
        else:
            if version == 4:
                plen = (
                    8
                    if rng.random() < 0.0005
                    else rng.choice([16, 16, 18, 19, 20, 21, 22, 22, 23, 24, 24, 24, 24, 24, 26, 28, 29, 32])
                )
            else:
                plen = rng.choice([24, 29, 32, 32, 40, 48, 48, 56, 64, 64, 96, 128])
            start = rng.getrandbits(bits)
        start &= ~((1 << (bits - plen)) - 1) & ((1 << bits) - 1)
        net = (version, start, plen)
        if net not in seen:
            seen.add(net)
            nets.append(net)
    rng.shuffle(nets)
    return nets


def net_text(net: Net) -> str:
    version, start, plen = net
    if version == 4:
        return f"{ipaddress.IPv4Address(start)}/{plen}"
    return f"{ipaddress.IPv6Address(start)}/{plen}"


def make_addresses(
    nets: list[Net], version: int, count: int, inside_share: float, gen: np.random.Generator
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """(high, low) 64-bit halves of ``count`` addresses; ``inside_share`` drawn inside networks.

    For IPv4 ``high`` is zero and ``low`` holds the address.
    """
    bits = 32 if version == 4 else 128
    family = [n for n in nets if n[0] == version]
    n_inside = int(count * inside_share)
    starts = [n[1] for n in family]
    hostmasks = [(1 << (bits - n[2])) - 1 for n in family]
    s_hi = np.array([s >> 64 for s in starts], dtype=np.uint64)
    s_lo = np.array([s & (2**64 - 1) for s in starts], dtype=np.uint64)
    m_hi = np.array([m >> 64 for m in hostmasks], dtype=np.uint64)
    m_lo = np.array([m & (2**64 - 1) for m in hostmasks], dtype=np.uint64)
    pick = gen.integers(0, len(family), n_inside)
    r_hi = gen.integers(0, 2**64, n_inside, dtype=np.uint64, endpoint=False)
    r_lo = gen.integers(0, 2**64, n_inside, dtype=np.uint64, endpoint=False)
    hi = np.concatenate(
        [s_hi[pick] | (r_hi & m_hi[pick]), gen.integers(0, 2**64, count - n_inside, np.uint64)]
    )
    lo = np.concatenate(
        [s_lo[pick] | (r_lo & m_lo[pick]), gen.integers(0, 2**64, count - n_inside, np.uint64)]
    )
    if version == 4:
        hi[:] = 0
        lo &= np.uint64(2**32 - 1)
    order = gen.permutation(count)
    return hi[order], lo[order]


# --------------------------------------------------------------------------- reference


class NaiveReference:
    """Longest-prefix match straight from ``ipaddress``: try every prefix length, longest first."""

    def __init__(self, networks: list[str], values: list[int]) -> None:
        self.table: dict[tuple[int, int, int], int] = {}
        self.lengths: dict[int, list[int]] = {4: [], 6: []}
        for text, value in zip(networks, values, strict=True):
            net = ipaddress.ip_network(text, strict=True)
            self.table[(net.version, net.prefixlen, int(net.network_address))] = value
        for version in (4, 6):
            self.lengths[version] = sorted({plen for v, plen, _ in self.table if v == version}, reverse=True)

    def lookup(self, address: str) -> int:
        try:
            addr = ipaddress.ip_address(address)
        except ValueError:
            return NO_MATCH
        bits = addr.max_prefixlen
        value = int(addr)
        for plen in self.lengths[addr.version]:
            key = (addr.version, plen, value & ~((1 << (bits - plen)) - 1))
            found = self.table.get(key)
            if found is not None:
                return found
        return NO_MATCH


# --------------------------------------------------------------------------- IPv6 alternatives


def ipv6_alternatives(index: PrefixIndex) -> dict[str, Callable[[Any, Any], Any]]:
    """Alternative IPv6 search schemes over the same flattened intervals (for comparison)."""
    hi, lo, values = index.ipv6_intervals()

    def keys16(h: npt.NDArray[np.uint64], low: npt.NDArray[np.uint64]) -> npt.NDArray[Any]:
        pairs = np.empty((len(h), 2), dtype=">u8")
        pairs[:, 0] = h
        pairs[:, 1] = low
        return pairs.view("S16").ravel()

    s16 = keys16(hi, lo)
    v16 = s16.view("V16")
    rec = np.dtype([("hi", ">u8"), ("lo", ">u8")])
    structured = s16.view(rec)

    def with_s16(qh: Any, ql: Any) -> Any:
        return values[np.searchsorted(s16, keys16(qh, ql), side="right") - 1]

    def with_v16(qh: Any, ql: Any) -> Any:
        return values[np.searchsorted(v16, keys16(qh, ql).view("V16"), side="right") - 1]

    def with_structured(qh: Any, ql: Any) -> Any:
        return values[np.searchsorted(structured, keys16(qh, ql).view(rec), side="right") - 1]

    def two_level_unsorted(qh: Any, ql: Any) -> Any:
        return index._search_v6(qh, ql)  # the shipped scheme minus the pre-sort

    return {
        "ipv6_two_level_unsorted": two_level_unsorted,
        "ipv6_s16_searchsorted": with_s16,
        "ipv6_v16_searchsorted": with_v16,
        "ipv6_structured_searchsorted": with_structured,
    }


# --------------------------------------------------------------------------- timing


def best_of(repeat: int, func: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=100_000)
    parser.add_argument("--addresses", type=int, default=1_000_000, help="per family")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--inside-share", type=float, default=0.7)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sample", type=int, default=10_000)
    parser.add_argument("--compare-ipv6", action="store_true", help="also time alternative IPv6 schemes")
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    gen = np.random.default_rng(args.seed)
    nets = make_networks(args.networks, rng)
    texts = [net_text(n) for n in nets]
    values = list(range(1, len(texts) + 1))

    t0 = time.perf_counter()
    index = PrefixIndex.build(texts, values)
    build_seconds = time.perf_counter() - t0

    m = args.addresses
    _, v4 = make_addresses(nets, 4, m, args.inside_share, gen)
    v4 = v4.astype(np.uint32)
    v6_hi, v6_lo = make_addresses(nets, 6, m, args.inside_share, gen)

    v4_result = index.lookup_ipv4(v4)
    v6_result = index.lookup_ipv6(v6_hi, v6_lo)
    t_v4 = best_of(args.repeat, lambda: index.lookup_ipv4(v4))
    t_v6 = best_of(args.repeat, lambda: index.lookup_ipv6(v6_hi, v6_lo))

    # Text path: up to 100,000 addresses of each family, shuffled together.
    n_text = min(m, 100_000)
    text_addrs = [str(ipaddress.IPv4Address(int(a))) for a in v4[:n_text]] + [
        str(ipaddress.IPv6Address((int(h) << 64) | int(low)))
        for h, low in zip(v6_hi[:n_text], v6_lo[:n_text], strict=True)
    ]
    rng.shuffle(text_addrs)
    t_text = best_of(max(1, args.repeat // 2), lambda: index.lookup(text_addrs))

    # Single lookups on random text addresses.
    singles = rng.sample(text_addrs, min(10_000, len(text_addrs)))
    lookup_one = index.lookup_one
    timings: list[float] = []
    clock = time.perf_counter_ns
    for address in singles:
        t0n = clock()
        lookup_one(address)
        timings.append((clock() - t0n) / 1000.0)
    timings.sort()
    p50 = statistics.median(timings)
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]

    print(f"networks={index.size}")
    print(f"ipv4_networks={index.ipv4_count}")
    print(f"ipv6_networks={index.ipv6_count}")
    print(f"ipv4_intervals={len(index.ipv4_intervals()[0])}")
    print(f"ipv6_intervals={len(index.ipv6_intervals()[0])}")
    print(f"addresses_per_family={m}")
    print(f"build_seconds={build_seconds:.3f}")
    print(f"ipv4_lookups_per_s={m / t_v4:.0f}")
    print(f"ipv6_lookups_per_s={m / t_v6:.0f}")
    print(f"text_lookups_per_s={len(text_addrs) / t_text:.0f}")
    print(f"single_lookup_p50_us={p50:.2f}")
    print(f"single_lookup_p99_us={p99:.2f}")
    print(f"ipv4_match_share={np.count_nonzero(v4_result != NO_MATCH) / m:.4f}")
    print(f"ipv6_match_share={np.count_nonzero(v6_result != NO_MATCH) / m:.4f}")
    # Share of IPv6 queries whose upper half equals an interval start's (resolved on the
    # lower half by the second level of the search).
    print(f"ipv6_tied_share={np.count_nonzero(np.isin(v6_hi, index.ipv6_intervals()[0])) / m:.4f}")

    ok = True
    if args.compare_ipv6:
        for name, func in ipv6_alternatives(index).items():
            got = func(v6_hi, v6_lo)
            if not np.array_equal(got, v6_result):
                print(f"{name}_disagrees=true")
                ok = False
            seconds = best_of(max(1, args.repeat // 2), partial(func, v6_hi, v6_lo))
            print(f"{name}_lookups_per_s={m / seconds:.0f}")
        starts4, values4 = index.ipv4_intervals()
        t_direct = best_of(args.repeat, lambda: values4[np.searchsorted(starts4, v4, side="right") - 1])
        print(f"ipv4_unsorted_searchsorted_lookups_per_s={m / t_direct:.0f}")

    # Correctness against the naive reference on a sample of both families.
    reference = NaiveReference(texts, values)
    half = max(1, args.sample // 2)
    pos4 = gen.choice(m, size=min(half, m), replace=False)
    pos6 = gen.choice(m, size=min(half, m), replace=False)
    sample_text = [str(ipaddress.IPv4Address(int(v4[i]))) for i in pos4] + [
        str(ipaddress.IPv6Address((int(v6_hi[i]) << 64) | int(v6_lo[i]))) for i in pos6
    ]
    expected = np.array([reference.lookup(a) for a in sample_text], dtype=np.int64)
    batch = np.concatenate([v4_result[pos4], v6_result[pos6]])
    text_batch = index.lookup(sample_text)
    one = np.array(
        [NO_MATCH if (v := index.lookup_one(a)) is None else v for a in sample_text],
        dtype=np.int64,
    )
    mismatches = 0
    for name, got in (("batch", batch), ("text", text_batch), ("single", one)):
        bad = np.flatnonzero(got != expected)
        mismatches += bad.size
        for i in bad[:5]:
            print(
                f"mismatch_{name}={sample_text[i]} got={got[i]} expected={expected[i]}",
                file=sys.stderr,
            )
    ok = ok and mismatches == 0
    print(f"verified_sample={len(sample_text)}")
    reference_share = np.count_nonzero(expected != NO_MATCH) / len(expected)
    print(f"verified_sample_match_share={reference_share:.4f}")
    print(f"verified={'true' if ok else 'false'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
