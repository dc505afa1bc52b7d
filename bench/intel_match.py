"""Benchmark of certnet.intel.matching: a million indicators against a million observed values.

Run from the repository root::

    .venv/bin/python bench/intel_match.py [--indicators 1000000] [--observed 1000000] [--hit-rate 0.05]
                                          [--repeat 5] [--seed 1]

The indicators are a realistic mix of kinds (IPv4, domains, URLs, SHA-256); the observed values are
drawn from the same kinds, `--hit-rate` of them being indicator values. Prints one ``name=value``
figure per line: the build time, the match rate (values/s, best and median of --repeat runs), the
rates of a bare Arrow hash join and a DuckDB semi-join of the same size for comparison, and the
campaign-signal pass. Exits
non-zero when the matches disagree with a Python set reference.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from certnet.intel.matching import IndicatorSet, shared_sightings

KINDS = ("ipv4", "domain", "url", "sha256")


def value_of(kind: str, rng: random.Random) -> str:
    if kind == "ipv4":
        return ".".join(str(rng.randrange(1, 255)) for _ in range(4))
    if kind == "domain":
        return f"{rng.getrandbits(40):x}.{rng.choice(['com', 'net', 'pk', 'org', 'info'])}"
    if kind == "url":
        return f"http://{rng.getrandbits(32):x}.example/{rng.getrandbits(48):x}.php"
    return f"{rng.getrandbits(256):064x}"


def make_data(indicators: int, observed: int, hit_rate: float, seed: int) -> tuple[pa.Table, pa.Table]:
    rng = random.Random(seed)
    kinds = [KINDS[i % len(KINDS)] for i in range(indicators)]
    values = [value_of(kind, rng) for kind in kinds]
    indicator_table = pa.table(
        {"kind": kinds, "value": values, "id": pa.array(range(1, indicators + 1), pa.int64())}
    )
    observed_kinds: list[str] = []
    observed_values: list[str] = []
    for _ in range(observed):
        if rng.random() < hit_rate:
            position = rng.randrange(indicators)
            observed_kinds.append(kinds[position])
            observed_values.append(values[position])
        else:
            kind = rng.choice(KINDS)
            observed_kinds.append(kind)
            observed_values.append(value_of(kind, rng))
    observations = pa.table(
        {
            "kind": observed_kinds,
            "value": observed_values,
            "organisation": pa.array([rng.randrange(1, 200) for _ in range(observed)], pa.int64()),
        }
    )
    return indicator_table, observations


def split_by_kind(observations: pa.Table) -> dict[str, pa.Array]:
    """What the pipeline hands over: one value column per kind (its parsers type every field)."""
    return {
        kind: observations.filter(pc.equal(observations["kind"], kind))["value"].combine_chunks()
        for kind in KINDS
    }


def match_all(indicators: IndicatorSet, by_kind: dict[str, pa.Array]) -> int:
    return sum(len(indicators.match(kind, values)[0]) for kind, values in by_kind.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--indicators", type=int, default=1_000_000)
    parser.add_argument("--observed", type=int, default=1_000_000)
    parser.add_argument("--hit-rate", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    indicator_table, observations = make_data(args.indicators, args.observed, args.hit_rate, args.seed)
    started = time.perf_counter()
    indicators = IndicatorSet.build(indicator_table)
    build_seconds = time.perf_counter() - started
    by_kind = split_by_kind(observations)

    rates: list[float] = []
    matched = 0
    for _ in range(args.repeat):
        started = time.perf_counter()
        matched = match_all(indicators, by_kind)
        rates.append(args.observed / (time.perf_counter() - started))

    # A bare hash join of the same size, all kinds in one column: the yardstick the goal refers to.
    all_values = indicator_table["value"].combine_chunks()
    observed_values = observations["value"].combine_chunks()
    bare: list[float] = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        pc.is_in(observed_values, value_set=all_values)
        bare.append(args.observed / (time.perf_counter() - started))

    # The same join in DuckDB (multi-threaded, its hash table also built per query).
    connection = duckdb.connect()
    connection.register("indicator_values", pa.table({"value": all_values}))
    connection.register("observed_values", pa.table({"value": observed_values}))
    joined: list[float] = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        connection.execute(
            "SELECT count(*) FROM observed_values o SEMI JOIN indicator_values i ON o.value = i.value"
        ).fetchone()
        joined.append(args.observed / (time.perf_counter() - started))

    started = time.perf_counter()
    spread = shared_sightings(indicators, observations, KINDS)
    campaign_seconds = time.perf_counter() - started

    reference = {
        (k, v)
        for k, v in zip(
            indicator_table["kind"].to_pylist(), indicator_table["value"].to_pylist(), strict=True
        )
    }
    expected = sum(
        (k, v) in reference
        for k, v in zip(observations["kind"].to_pylist(), observations["value"].to_pylist(), strict=True)
    )
    verified = expected == matched

    print(f"indicators={indicators.size}")
    print(f"observed={args.observed}")
    print(f"matched={matched}")
    print(f"build_seconds={build_seconds:.2f}")
    print(f"match_values_per_s_best={max(rates):,.0f}")
    print(f"match_values_per_s_median={statistics.median(rates):,.0f}")
    print(f"bare_hash_join_values_per_s_median={statistics.median(bare):,.0f}")
    print(f"duckdb_hash_join_values_per_s_median={statistics.median(joined):,.0f}")
    print(f"campaign_signal_seconds={campaign_seconds:.2f}")
    print(f"campaign_values_spread_over_2plus_organisations={spread.num_rows}")
    print(f"verified={str(verified).lower()}")
    return 0 if verified else 1


if __name__ == "__main__":
    sys.exit(main())
