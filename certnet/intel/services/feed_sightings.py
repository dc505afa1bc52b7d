"""Feed events as sightings: an indicator's value met in a constituent's feed events is a sighting by
that constituent, and the usual correlation then tells the lowest CERT above everyone who recorded or
saw it. An indicator seen in the networks of several constituencies is a campaign signal.

Set-based: the run's observed values are matched against every eligible indicator in bulk, per kind
(`matching.IndicatorSet`); only the matches are looked at further.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from django.db import transaction
from django.db.models import Q

from certnet.core import audit, clock
from certnet.core.audit import SystemActor
from certnet.core.errors import InvalidInput
from certnet.core.tlp import TLP
from certnet.intel.matching import IndicatorSet
from certnet.intel.models import CorrelationAlert, Indicator, Sighting
from certnet.intel.observables import normalise
from certnet.intel.services.correlation import correlate
from certnet.registry.models import Organisation

FEED_SIGHTER = SystemActor("feed-sightings")
# Kinds whose feed text is already in the indicator's canonical form; others are normalised per value.
CANONICAL_KINDS = frozenset({"ipv4", "ipv6", "md5", "sha1", "sha256"})


@dataclass(frozen=True)
class FeedSightings:
    matched_events: int
    sightings: int  # (indicator, organisation) pairs recorded or brought up to date
    alerts: list[CorrelationAlert]


def _eligible_indicators(kinds: list[str]) -> IndicatorSet:
    """Indicators a feed can sight: not expired, not warninglisted, not TLP:RED (as for correlation)."""
    now = clock.now()
    rows = (
        Indicator.objects.filter(kind__in=kinds, warninglist="")
        .exclude(tlp=TLP.RED)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .values_list("kind", "value", "pk")
    )
    kinds_, values, ids = [], [], []
    for kind, value, pk in rows.iterator(chunk_size=10_000):
        kinds_.append(kind)
        values.append(value)
        ids.append(pk)
    table = pa.table(
        {
            "kind": pa.array(kinds_, pa.string()),
            "value": pa.array(values, pa.string()),
            "id": pa.array(ids, pa.int64()),
        }
    )
    return IndicatorSet.build(table)


def _normalised(kind: str, values: pa.Array) -> pa.Array:
    if kind in CANONICAL_KINDS:
        return values
    encoded = pc.dictionary_encode(values)
    fixed: list[str | None] = []
    for value in encoded.dictionary.to_pylist():
        try:
            fixed.append(normalise(kind, value))
        except InvalidInput:
            fixed.append(None)
    return pc.take(pa.array(fixed, pa.string()), encoded.indices)


def record_feed_sightings(observations: pa.Table, source: str) -> FeedSightings:
    """`observations`: kind, value, organisation (id), seen (timestamp) — one row per event value."""
    if observations.num_rows == 0:
        return FeedSightings(0, 0, [])
    kinds = sorted(set(observations.column("kind").to_pylist()))
    indicators = _eligible_indicators(kinds)
    matched_parts = []
    for kind in kinds:
        rows = observations.filter(pc.equal(observations["kind"], kind))
        values = _normalised(kind, rows["value"].combine_chunks())
        positions, slots = indicators.match(kind, values)
        if not len(positions):
            continue
        hits = rows.take(positions)
        ids = indicators.indicator_ids(kind, slots)
        matched_parts.append(
            pa.table(
                {
                    "indicator": pc.list_flatten(ids),
                    "organisation": pc.take(hits["organisation"], pc.list_parent_indices(ids)),
                    "seen": pc.take(hits["seen"], pc.list_parent_indices(ids)),
                }
            )
        )
    if not matched_parts:
        return FeedSightings(0, 0, [])
    matched = pa.concat_tables(matched_parts)
    grouped = matched.group_by(["indicator", "organisation"]).aggregate(
        [("seen", "min"), ("seen", "max"), ("seen", "count")]
    )
    with transaction.atomic():
        alerts = _record(grouped, source)
    return FeedSightings(matched_events=matched.num_rows, sightings=grouped.num_rows, alerts=alerts)


def _record(grouped: pa.Table, source: str) -> list[CorrelationAlert]:
    now = clock.now()
    pairs = {
        (int(i), int(o)): (first or now, last or now, int(count))
        for i, o, first, last, count in zip(
            grouped["indicator"].to_pylist(),
            grouped["organisation"].to_pylist(),
            grouped["seen_min"].to_pylist(),
            grouped["seen_max"].to_pylist(),
            grouped["seen_count"].to_pylist(),
            strict=True,
        )
    }
    indicator_ids = sorted({i for i, _ in pairs})
    known = {
        (s.indicator_id, s.organisation_id): s
        for start in range(0, len(indicator_ids), 2000)
        for s in Sighting.objects.select_for_update().filter(
            indicator_id__in=indicator_ids[start : start + 2000]
        )
    }
    new, changed = [], []
    for (indicator_id, organisation_id), (first, last, count) in pairs.items():
        sighting = known.get((indicator_id, organisation_id))
        first, last = _aware(first), _aware(last)
        if sighting is None:
            new.append(
                Sighting(
                    indicator_id=indicator_id,
                    organisation_id=organisation_id,
                    first_seen=first,
                    last_seen=last,
                    count=count,
                    source=source[:200],
                )
            )
            continue
        sighting.first_seen = min(sighting.first_seen, first)
        sighting.last_seen = max(sighting.last_seen, last)
        sighting.count += count
        changed.append(sighting)
    Sighting.objects.bulk_create(new, batch_size=1000)
    Sighting.objects.bulk_update(changed, ["first_seen", "last_seen", "count"], batch_size=1000)
    by_organisation: dict[int, list[int]] = {}
    for indicator_id, organisation_id in pairs:
        by_organisation.setdefault(organisation_id, []).append(indicator_id)
    for organisation in Organisation.objects.filter(pk__in=by_organisation):
        audit.record(
            actor=FEED_SIGHTER,
            action="intel.indicators.feed_sightings",
            target=organisation,
            organisation_id=organisation.pk,
            data={"source": source, "indicators": sorted(by_organisation[organisation.pk])[:1000]},
        )
    keys = [
        key
        for start in range(0, len(indicator_ids), 2000)
        for key in Indicator.objects.filter(pk__in=indicator_ids[start : start + 2000]).values_list(
            "kind", "value"
        )
    ]
    return correlate(keys)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
