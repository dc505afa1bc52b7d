"""Matching observed values against indicators in bulk, in Arrow: the feed pipeline's hot path.

Pure pyarrow (no Django), so pipeline workers load it without the web stack. An `IndicatorSet` holds
the indicator values of each kind as one Arrow string array with their ids beside them; `match` is
one hash join per kind in Arrow's compute kernels (`index_in`), with no Python loop per value.
`bench/intel_match.py` measures it at a million indicators against a million observed values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class IndicatorSet:
    """kind → (values, indicator ids). Values are already normalised and distinct within a kind: an
    indicator recorded by several organisations appears once per organisation in the database, so
    `build` keeps the ids of every owner in a list per value."""

    values: dict[str, pa.Array] = field(default_factory=dict)
    ids: dict[str, pa.ListArray] = field(default_factory=dict)

    @classmethod
    def build(cls, rows: pa.Table) -> IndicatorSet:
        """From a table with columns kind, value, id (one row per indicator)."""
        values: dict[str, pa.Array] = {}
        ids: dict[str, pa.ListArray] = {}
        for kind in pc.unique(rows["kind"]).to_pylist():
            of_kind = rows.filter(pc.equal(rows["kind"], kind))
            grouped = of_kind.group_by("value").aggregate([("id", "list")])
            values[kind] = grouped["value"].combine_chunks()
            ids[kind] = grouped["id_list"].combine_chunks()
        return cls(values, ids)

    @property
    def size(self) -> int:
        return sum(len(ids.flatten()) for ids in self.ids.values())

    def match(self, kind: str, observed: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
        """(positions in `observed` that match an indicator value, the position of that value in this
        set's array for the kind). Unmatched values are left out."""
        known = self.values.get(kind)
        if known is None or len(observed) == 0:
            return pa.array([], pa.uint64()), pa.array([], pa.int32())
        found = pc.index_in(observed, value_set=known)
        matched = pc.is_valid(found)
        return pc.indices_nonzero(matched), pc.filter(found, matched)

    def indicator_ids(self, kind: str, slots: pa.Array) -> pa.ListArray:
        """The indicator ids behind each matched value slot (one list per match)."""
        return pc.take(self.ids[kind], slots)


def shared_sightings(indicators: IndicatorSet, observations: pa.Table, kinds: Iterable[str]) -> pa.Table:
    """Values that match an indicator and were observed in two or more organisations' networks: the
    campaign signal over feed events. `observations` has columns kind, value, organisation (int64).
    Returns kind, value, organisations (count) and organisation_list, largest spread first."""
    parts = []
    for kind in kinds:
        of_kind = observations.filter(pc.equal(observations["kind"], kind))
        positions, _ = indicators.match(kind, of_kind["value"])
        if len(positions):
            parts.append(of_kind.take(positions).select(["kind", "value", "organisation"]))
    if not parts:
        return pa.table(
            {
                "kind": pa.array([], pa.string()),
                "value": pa.array([], pa.string()),
                "organisations": pa.array([], pa.int64()),
                "organisation_list": pa.array([], pa.list_(pa.int64())),
            }
        )
    matched = pa.concat_tables(parts)
    grouped = matched.group_by(["kind", "value"]).aggregate(
        [("organisation", "count_distinct"), ("organisation", "distinct")]
    )
    spread = grouped.filter(pc.greater_equal(grouped["organisation_count_distinct"], 2))
    spread = pa.table(
        {
            "kind": spread["kind"],
            "value": spread["value"],
            "organisations": spread["organisation_count_distinct"],
            "organisation_list": spread["organisation_distinct"],
        }
    )
    return spread.sort_by([("organisations", "descending"), ("value", "ascending")])
