"""Correlation: the same value recorded by two or more organisations raises an alert for the lowest
CERT above all of them.

Set-based: one query finds who recorded each of the values in question (as owner of an indicator or
by a sighting), Arrow groups them by value and counts distinct organisations; only the values that
two or more organisations share are looked at one by one, to find their CERT and file the alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from django.db import transaction
from django.db.models import Q

from certnet.accounts.models import User
from certnet.accounts.selectors import members_by_organisation
from certnet.core import audit, clock
from certnet.core.audit import SystemActor
from certnet.core.errors import NotFound, invalid
from certnet.core.roles import Role
from certnet.core.tlp import TLP
from certnet.core.visibility import require
from certnet.incidents.selectors import handling_cert_for, lowest_common_cert
from certnet.intel.models import AlertStatus, CorrelationAlert, Indicator, Sighting
from certnet.notifications.services import compose, deliver
from certnet.registry.models import Organisation

CORRELATOR = SystemActor("correlation")
_KEY_SEPARATOR = "\x1f"  # cannot occur in a normalised value
_CHUNK = 2000  # values per IN (...) list: well under SQLite's bound-parameter limit


@dataclass(frozen=True)
class SharedValue:
    kind: str
    value: str
    organisation_ids: frozenset[int]
    indicator_ids: frozenset[int]


def key_chunks(keys: Iterable[tuple[str, str]]) -> Iterator[Q]:
    """(kind, value) pairs as filters of at most _CHUNK values each, one kind per filter."""
    by_kind: dict[str, list[str]] = {}
    for kind, value in keys:
        by_kind.setdefault(kind, []).append(value)
    for kind, values in by_kind.items():
        for start in range(0, len(values), _CHUNK):
            yield Q(kind=kind, value__in=values[start : start + _CHUNK])


def shared_values(keys: Iterable[tuple[str, str]]) -> list[SharedValue]:
    """Of the given (kind, value) pairs, those that two or more organisations have recorded.

    Counted: indicators that are not TLP:RED (a RED value is for named people only, and an alert
    would tell a CERT's analysts what it is), not on a warninglist, not expired; and sightings of them.
    """
    now = clock.now()
    kinds: list[str] = []
    values: list[str] = []
    organisations: list[int] = []
    indicators: list[int] = []
    for chunk in key_chunks(set(keys)):
        eligible = (
            Indicator.objects.filter(chunk, warninglist="")
            .exclude(tlp=TLP.RED)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        )
        rows = list(eligible.values_list("kind", "value", "owner_id", "pk"))
        sightings = Sighting.objects.filter(indicator__in=eligible.values("pk")).values_list(
            "indicator__kind", "indicator__value", "organisation_id", "indicator_id"
        )
        for kind, value, organisation_id, indicator_id in [*rows, *sightings]:
            kinds.append(kind)
            values.append(value)
            organisations.append(organisation_id)
            indicators.append(indicator_id)
    if not kinds:
        return []
    table = pa.table(
        {
            "key": pc.binary_join_element_wise(pa.array(kinds), pa.array(values), _KEY_SEPARATOR),
            "organisation": pa.array(organisations, pa.int64()),
            "indicator": pa.array(indicators, pa.int64()),
        }
    )
    grouped = table.group_by("key").aggregate(
        [("organisation", "count_distinct"), ("organisation", "distinct"), ("indicator", "distinct")]
    )
    shared = grouped.filter(pc.greater_equal(grouped["organisation_count_distinct"], 2))
    found = []
    for key, orgs, ids in zip(
        shared["key"].to_pylist(),
        shared["organisation_distinct"].to_pylist(),
        shared["indicator_distinct"].to_pylist(),
        strict=True,
    ):
        kind, value = key.split(_KEY_SEPARATOR, 1)
        found.append(SharedValue(kind, value, frozenset(orgs), frozenset(ids)))
    return sorted(found, key=lambda item: (item.kind, item.value))


def correlate(keys: Iterable[tuple[str, str]]) -> list[CorrelationAlert]:
    """Raise or widen the correlation alerts for these values; return the alerts raised or widened.
    Runs inside the caller's transaction (an indicator and the alert it causes commit together)."""
    shared = shared_values(keys)
    if not shared:
        return []
    certs: dict[frozenset[int], int | None] = {}
    for item in shared:
        if item.organisation_ids not in certs:
            certs[item.organisation_ids] = _cert_above_all(item.organisation_ids)
    existing = {
        (alert.cert_id, alert.kind, alert.value): alert
        for chunk in key_chunks((item.kind, item.value) for item in shared)
        for alert in CorrelationAlert.objects.filter(chunk)
    }
    names = dict(
        Organisation.objects.filter(pk__in=set().union(*(i.organisation_ids for i in shared))).values_list(
            "pk", "slug"
        )
    )
    changed: list[CorrelationAlert] = []
    for item in shared:
        cert_id = certs[item.organisation_ids]
        if cert_id is None:
            continue  # no CERT above all of them: nobody to tell (recorded in the docs, not an error)
        alert = existing.get((cert_id, item.kind, item.value))
        if alert is None:
            alert = _raise(cert_id, item, names)
        elif not _widen(alert, item, names):
            continue
        changed.append(alert)
    _tell_analysts(changed)
    return changed


def _cert_above_all(organisation_ids: frozenset[int]) -> int | None:
    """The lowest CERT above every organisation, following the same routing as incidents: each
    organisation's handling CERT as of today (through function holders), then the lowest CERT above
    them all. None when one of them has no CERT above it."""
    day = clock.today()
    handlers = [handling_cert_for(org, day) for org in Organisation.objects.filter(pk__in=organisation_ids)]
    if any(cert is None for cert in handlers):
        return None
    common = lowest_common_cert([cert for cert in handlers if cert is not None], day)
    return common.pk if common is not None else None


def _raise(cert_id: int, item: SharedValue, names: dict[int, str]) -> CorrelationAlert:
    now = clock.now()
    alert = CorrelationAlert.objects.create(
        cert_id=cert_id, kind=item.kind, value=item.value, created_at=now, updated_at=now
    )
    alert.organisations.set(item.organisation_ids)
    alert.indicators.set(item.indicator_ids)
    audit.record(
        actor=CORRELATOR,
        action="intel.correlation.raise",
        target=alert,
        organisation_id=cert_id,
        data={"kind": item.kind, "value": item.value, "organisations": _slugs(item.organisation_ids, names)},
    )
    return alert


def _widen(alert: CorrelationAlert, item: SharedValue, names: dict[int, str]) -> bool:
    """Add organisations and indicators that recorded the value since; reopen a closed alert when a
    new organisation is among them. False when nothing is new."""
    known_orgs = set(alert.organisations.values_list("pk", flat=True))
    known_indicators = set(alert.indicators.values_list("pk", flat=True))
    new_orgs = item.organisation_ids - known_orgs
    new_indicators = item.indicator_ids - known_indicators
    if not new_orgs and not new_indicators:
        return False
    alert.organisations.add(*new_orgs)
    alert.indicators.add(*new_indicators)
    alert.updated_at = clock.now()
    reopened = bool(new_orgs) and alert.status != AlertStatus.OPEN
    if reopened:
        alert.status = AlertStatus.OPEN
    alert.save(update_fields=["updated_at", "status"])
    audit.record(
        actor=CORRELATOR,
        action="intel.correlation.widen",
        target=alert,
        organisation_id=alert.cert_id,
        data={"added_organisations": _slugs(new_orgs, names), "reopened": reopened},
    )
    return bool(new_orgs)


def _slugs(ids: Iterable[int], names: dict[int, str]) -> list[str]:
    return sorted(names.get(i, str(i)) for i in ids)


def _tell_analysts(alerts: list[CorrelationAlert]) -> None:
    if not alerts:
        return
    people = members_by_organisation({alert.cert_id for alert in alerts}, Role.ANALYST)
    notes = []
    for alert in alerts:
        count = alert.organisations.count()
        notes.extend(
            compose(
                people.get(alert.cert_id, []),
                kind="correlation",
                subject=f"{alert.kind} {alert.value} recorded by {count} organisations",
                body=(
                    f"The same {alert.kind} value was recorded by {count} organisations that your CERT "
                    "stands above. Open the alert to see which, and their indicators and sightings."
                ),
                link=f"/intel/correlations/{alert.pk}/",
            )
        )
    deliver(notes)


@transaction.atomic
def set_alert_status(*, actor: User, alert_id: int, status: str, note: str = "") -> CorrelationAlert:
    """An analyst of the alert's CERT (or a CERT above it) acknowledges or closes it, or reopens it."""
    alert = CorrelationAlert.objects.select_for_update().filter(pk=alert_id).first()
    if alert is None:
        raise NotFound(f"no correlation alert {alert_id}")
    require(actor, "change", alert, label=f"correlation alert {alert_id}")
    if status not in AlertStatus.values:
        raise invalid("status", f"{status!r} is not one of {', '.join(AlertStatus.values)}")
    before = alert.status
    alert.status = status
    if note:
        alert.note = note
    alert.updated_at = clock.now()
    alert.save(update_fields=["status", "note", "updated_at"])
    audit.record(
        actor=actor,
        action="intel.correlation.status",
        target=alert,
        organisation_id=alert.cert_id,
        data={"from": before, "to": status, "note": note},
    )
    return alert
