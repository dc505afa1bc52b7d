"""Matching observed values against indicators in bulk: the feed pipeline's hot path.

Pure pyarrow, numpy and DuckDB (no Django), so pipeline workers load it without the web stack. An
`IndicatorSet` keeps, for each kind, the distinct indicator values with their ids and an
open-addressing hash table over the values' 64-bit hashes, built once. `match` then hashes the
observed values (DuckDB's string hash, all cores) and probes the table with numpy gathers: no hash
table is rebuilt per call, which is what made a plain Arrow join (`index_in`) slow here, and there is
no Python loop per value. A probe hit is confirmed by comparing the text itself, so two values that
share a 64-bit hash can never be taken for each other. `bench/intel_match.py` measures it at a
million indicators against a million observed values.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_EMPTY = np.uint64(0)  # marks a free table slot; a value hashing to 0 is stored as 1
_connections = threading.local()


def value_hashes(values: pa.Array) -> np.ndarray:
    """64-bit hash of each value's text (never 0). Stable within one process, which is all a table
    built and probed in memory needs; nulls hash like any value but are never looked up."""
    connection = getattr(_connections, "duckdb", None)
    if connection is None:
        connection = _connections.duckdb = duckdb.connect()
    batch = pa.table({"v": values})  # noqa: F841 - scanned by name by the query below
    hashed = connection.execute("SELECT hash(v) AS h FROM batch").fetchnumpy()["h"]
    hashed = np.asarray(hashed, dtype=np.uint64)
    hashed[hashed == _EMPTY] = 1
    return hashed


@dataclass(frozen=True)
class _ValueIndex:
    """The distinct values of one kind, the ids behind each, and a linear-probing table from a value's
    hash to its position (slot). The table has at least twice as many places as values, so most
    probes end at the first place they look."""

    values: pa.Array
    ids: pa.ListArray
    keys: np.ndarray  # uint64 hash per place, _EMPTY where free
    slots: np.ndarray  # int32 value position per place

    @classmethod
    def build(cls, values: pa.Array, ids: pa.ListArray) -> _ValueIndex:
        hashed = value_hashes(values)
        places = 1 << max(4, (2 * len(values) - 1).bit_length())
        mask = np.uint64(places - 1)
        keys = np.zeros(places, dtype=np.uint64)
        slots = np.full(places, -1, dtype=np.int32)
        pending = np.arange(len(values), dtype=np.int64)
        step = np.uint64(0)
        while pending.size:
            # Every pending value tries its place `step` beyond its home; of several that want the
            # same free place, the first wins and the rest try the next place in the next round.
            wanted = ((hashed[pending] + step) & mask).astype(np.intp)
            free = keys[wanted] == _EMPTY
            places_taken, first = np.unique(wanted[free], return_index=True)
            winners = pending[free][first]
            keys[places_taken] = hashed[winners]
            slots[places_taken] = winners
            placed = np.zeros(len(values), dtype=bool)
            placed[winners] = True
            pending = pending[~placed[pending]]
            step += np.uint64(1)
        return cls(values, ids, keys, slots)

    def lookup(self, observed: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """(positions in `observed` whose text is one of the values, the slot of that value)."""
        hashed = value_hashes(observed)
        mask = len(self.keys) - 1
        place = (hashed & np.uint64(mask)).astype(np.intp)
        found = self.keys[place]
        hit = found == hashed
        searching = np.flatnonzero(~hit & (found != _EMPTY))
        while searching.size:  # the few values whose home place holds another hash
            place[searching] = (place[searching] + 1) & mask
            found = self.keys[place[searching]]
            matched = found == hashed[searching]
            hit[searching[matched]] = True
            searching = searching[~matched & (found != _EMPTY)]
        if observed.null_count:
            hit &= np.asarray(pc.is_valid(observed).to_numpy(zero_copy_only=False), dtype=bool)
        positions = np.flatnonzero(hit)
        slots = self.slots[place[positions]]
        confirmed = np.asarray(
            pc.equal(observed.take(positions), self.values.take(slots)).to_numpy(zero_copy_only=False),
            dtype=bool,
        )
        if confirmed.all():
            return positions, slots
        return self._resolve_collisions(observed, positions, slots, confirmed)

    def _resolve_collisions(
        self, observed: pa.Array, positions: np.ndarray, slots: np.ndarray, confirmed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """A hash shared by two different texts: look the unconfirmed rows up exactly (a 2^-64
        event per pair, so this handles a handful of rows at most)."""
        doubtful = positions[~confirmed]
        exact = pc.index_in(observed.take(doubtful), value_set=self.values)
        known = np.asarray(pc.is_valid(exact).to_numpy(zero_copy_only=False), dtype=bool)
        exact_slots = np.asarray(pc.fill_null(exact, 0).to_numpy(zero_copy_only=False), dtype=np.int32)
        positions = np.concatenate([positions[confirmed], doubtful[known]])
        slots = np.concatenate([slots[confirmed], exact_slots[known]])
        order = np.argsort(positions, kind="stable")
        return positions[order], slots[order]


@dataclass(frozen=True)
class IndicatorSet:
    """kind → index of its values. Values are already normalised; an indicator recorded by several
    organisations appears once per organisation in the database, so `build` keeps the ids of every
    owner in a list per distinct value."""

    indexes: dict[str, _ValueIndex] = field(default_factory=dict)

    @classmethod
    def build(cls, rows: pa.Table) -> IndicatorSet:
        """From a table with columns kind, value, id (one row per indicator)."""
        indexes: dict[str, _ValueIndex] = {}
        for kind in pc.unique(rows["kind"]).to_pylist():
            of_kind = rows.filter(pc.equal(rows["kind"], kind))
            grouped = of_kind.group_by("value").aggregate([("id", "list")])
            indexes[kind] = _ValueIndex.build(
                grouped["value"].combine_chunks(), grouped["id_list"].combine_chunks()
            )
        return cls(indexes)

    @property
    def size(self) -> int:
        return sum(len(index.ids.flatten()) for index in self.indexes.values())

    def match(self, kind: str, observed: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
        """(positions in `observed` that match an indicator value, ascending; the slot of that value
        in this set for the kind). Unmatched values are left out."""
        index = self.indexes.get(kind)
        if index is None or len(observed) == 0:
            return pa.array([], pa.int64()), pa.array([], pa.int32())
        if isinstance(observed, pa.ChunkedArray):
            observed = observed.combine_chunks()
        if pa.types.is_dictionary(observed.type):
            observed = observed.cast(pa.string())
        positions, slots = index.lookup(observed)
        return pa.array(positions, pa.int64()), pa.array(slots, pa.int32())

    def indicator_ids(self, kind: str, slots: pa.Array) -> pa.ListArray:
        """The indicator ids behind each matched value slot (one list per match)."""
        return pc.take(self.indexes[kind].ids, slots)


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
