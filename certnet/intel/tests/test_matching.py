"""The bulk matcher: exact hits per kind, every owner's indicator behind a value, and the campaign
signal (a matched value observed in two or more organisations)."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa

from certnet.intel import matching
from certnet.intel.matching import IndicatorSet, shared_sightings


def indicator_set() -> IndicatorSet:
    return IndicatorSet.build(
        pa.table(
            {
                "kind": ["ipv4", "ipv4", "domain", "ipv4"],
                "value": ["45.9.148.7", "45.9.148.8", "bad.example", "45.9.148.7"],
                "id": pa.array([1, 2, 3, 4], pa.int64()),
            }
        )
    )


def test_match_returns_positions_and_every_indicator_behind_a_value():
    indicators = indicator_set()
    observed = pa.array(["10.0.0.1", "45.9.148.7", "45.9.148.8", "45.9.148.7", "bad.example"])
    positions, slots = indicators.match("ipv4", observed)
    assert positions.to_pylist() == [1, 2, 3]
    assert [sorted(ids) for ids in indicators.indicator_ids("ipv4", slots).to_pylist()] == [
        [1, 4],
        [2],
        [1, 4],
    ]
    assert indicators.size == 4


def test_a_value_of_another_kind_or_an_unknown_kind_does_not_match():
    indicators = indicator_set()
    assert indicators.match("domain", pa.array(["45.9.148.7"]))[0].to_pylist() == []
    assert indicators.match("sha256", pa.array(["45.9.148.7"]))[0].to_pylist() == []
    assert indicators.match("ipv4", pa.array([], pa.string()))[0].to_pylist() == []


def test_shared_sightings_keep_values_seen_by_two_or_more_organisations():
    observations = pa.table(
        {
            "kind": ["ipv4", "ipv4", "ipv4", "ipv4", "domain", "domain", "ipv4"],
            "value": [
                "45.9.148.7",
                "45.9.148.7",
                "45.9.148.7",
                "45.9.148.8",
                "bad.example",
                "bad.example",
                "1.2.3.4",
            ],
            "organisation": pa.array([10, 11, 10, 10, 12, 12, 10], pa.int64()),
        }
    )
    spread = shared_sightings(indicator_set(), observations, ["ipv4", "domain"])
    assert spread.column_names == ["kind", "value", "organisations", "organisation_list"]
    rows = spread.to_pylist()
    assert len(rows) == 1
    assert rows[0]["value"] == "45.9.148.7"
    assert rows[0]["organisations"] == 2
    assert sorted(rows[0]["organisation_list"]) == [10, 11]


def test_no_match_gives_an_empty_table_of_the_same_shape():
    observations = pa.table(
        {"kind": ["ipv4"], "value": ["1.2.3.4"], "organisation": pa.array([1], pa.int64())}
    )
    spread = shared_sightings(indicator_set(), observations, ["ipv4"])
    assert spread.num_rows == 0
    assert spread.column_names == ["kind", "value", "organisations", "organisation_list"]


def reference_matches(indicators: dict[str, list[int]], observed: list[str | None]) -> list[list[int]]:
    return [sorted(indicators[value]) for value in observed if value is not None and value in indicators]


def matched_ids(indicators: IndicatorSet, observed: list[str | None]) -> tuple[list[int], list[list[int]]]:
    positions, slots = indicators.match("domain", pa.array(observed, pa.string()))
    ids = indicators.indicator_ids("domain", slots).to_pylist()
    return positions.to_pylist(), [sorted(each) for each in ids]


def test_many_values_match_exactly_what_a_set_would_including_nulls():
    rng = random.Random(7)
    values = [f"{rng.getrandbits(40):x}.example" for _ in range(5000)]
    table = pa.table(
        {
            "kind": ["domain"] * len(values),
            "value": values,
            "id": pa.array(range(1, len(values) + 1), pa.int64()),
        }
    )
    by_value = {value: [number] for number, value in enumerate(values, start=1)}
    observed: list[str | None] = [
        rng.choice(values) if rng.random() < 0.3 else (None if rng.random() < 0.1 else f"{rng.random()}")
        for _ in range(20_000)
    ]
    positions, ids = matched_ids(IndicatorSet.build(table), observed)
    assert positions == [i for i, value in enumerate(observed) if value in by_value]
    assert ids == reference_matches(by_value, observed)


def test_values_whose_hashes_collide_are_never_taken_for_each_other(monkeypatch):
    real = matching.value_hashes
    # Four distinct hashes for everything: every probe meets other values' hashes first.
    monkeypatch.setattr(matching, "value_hashes", lambda values: (real(values) & np.uint64(3)) | np.uint64(1))
    values = [f"host{number}.example" for number in range(200)]
    table = pa.table({"kind": ["domain"] * 200, "value": values, "id": pa.array(range(1, 201), pa.int64())})
    indicators = IndicatorSet.build(table)
    observed: list[str | None] = [
        "host7.example",
        "nothere.example",
        "host199.example",
        None,
        "host0.example",
    ]
    positions, ids = matched_ids(indicators, observed)
    assert positions == [0, 2, 4]
    assert ids == [[8], [200], [1]]
