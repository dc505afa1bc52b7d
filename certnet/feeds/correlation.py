"""A finished run's events meet the indicators: every value an indicator can name (addresses, host
names, URLs, hashes) in an event routed to a constituent is offered to intel as that constituent's
sighting, and intel's correlation does the rest (docs/intel.md)."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from certnet.feeds.models import FeedRun
from certnet.feeds.store import EventStore, partition_value
from certnet.intel.services.feed_sightings import FeedSightings, record_feed_sightings
from certnet.registry.models import Organisation

# Event field → the indicator kind its values are (addresses split by family below).
FIELD_KINDS = {
    "source.ip": "ip",
    "destination.ip": "ip",
    "source.fqdn": "domain",
    "destination.fqdn": "domain",
    "source.url": "url",
    "destination.url": "url",
    "malware.hash.md5": "md5",
    "malware.hash.sha1": "sha1",
    "malware.hash.sha256": "sha256",
}


def run_files(run: FeedRun) -> str:
    """The run's files in the store, as a pattern relative to its root: its batches are named by the
    file's digest."""
    return f"day=*/feed={partition_value(run.source.code)}/{partition_value(run.sha256[:24])}-*.parquet"


def observations_of_run(run: FeedRun) -> pa.Table:
    """kind, value, organisation, seen: one row per indicator-like value of each routed event."""
    connection = duckdb.connect()
    try:
        events = EventStore.configured().events(connection, run_files(run))
        if events is None:
            return _empty()
        present = [name for name in FIELD_KINDS if name in events.columns]
        if not present or "route.organisation" not in events.columns:
            return _empty()
        selected = ", ".join(f'"{name}"' for name in ["route.organisation", "time.source", *present])
        table = events.filter('"route.organisation" IS NOT NULL').project(selected).to_arrow_table()
    finally:
        connection.close()
    # Slug → id for every event at once (a hash join), not a Python lookup per event.
    known = list(Organisation.objects.values_list("slug", "pk"))
    slugs = pa.array([slug for slug, _ in known], pa.string())
    ids = pa.array([pk for _, pk in known], pa.int64())
    organisation = pc.take(ids, pc.index_in(table["route.organisation"].combine_chunks(), value_set=slugs))
    parts = []
    for name in present:
        values = table[name].combine_chunks()
        kinds = pa.array([FIELD_KINDS[name]] * len(values), pa.string())
        if FIELD_KINDS[name] == "ip":
            is_v6 = pc.fill_null(pc.match_substring(values, ":"), False)
            kinds = pc.if_else(is_v6, "ipv6", "ipv4")
        part = pa.table(
            {"kind": kinds, "value": values, "organisation": organisation, "seen": table["time.source"]}
        )
        parts.append(part.filter(pc.and_(pc.is_valid(part["value"]), pc.is_valid(part["organisation"]))))
    return pa.concat_tables(parts) if parts else _empty()


def _empty() -> pa.Table:
    return pa.table(
        {
            "kind": pa.array([], pa.string()),
            "value": pa.array([], pa.string()),
            "organisation": pa.array([], pa.int64()),
            "seen": pa.array([], pa.timestamp("us", tz="UTC")),
        }
    )


def correlate_run(run: FeedRun) -> FeedSightings:
    return record_feed_sightings(observations_of_run(run), source=f"feed {run.source.code}, run {run.pk}")
