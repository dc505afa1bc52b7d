"""Reads of indicators, sightings and correlation alerts: always through visibility."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.db.models import Q, QuerySet

from certnet.core.errors import NotFound, invalid
from certnet.core.roles import Role
from certnet.core.visibility import principal_for
from certnet.incidents.models import Incident, Report
from certnet.intel.index import warninglist_matcher
from certnet.intel.models import (
    AlertStatus,
    CorrelationAlert,
    Indicator,
    IntelImport,
    IntelReport,
    Sighting,
    Warninglist,
)
from certnet.intel.observables import KINDS, Kind, extract
from certnet.registry.models import Organisation
from certnet.registry.resources import address_key

if TYPE_CHECKING:
    from certnet.core.visibility import UserLike

MAX_SEARCH_VALUES = 500  # a pasted block of text is searched for at most this many observables
# A report's values pasted into a web form; a report larger than this is published through the API
# (up to services.reports.MAX_INDICATORS), where the ids are given.
MAX_PASTED_VALUES = 5_000
_CHUNK = 500


def visible_indicators(
    user: UserLike | None,
    *,
    kind: str | None = None,
    value: str | None = None,
    owner: str | None = None,
    tag: str | None = None,
    contains: str | None = None,
) -> QuerySet[Indicator]:
    queryset = Indicator.objects.restrict(user, "view").select_related("owner")
    if kind:
        if kind not in KINDS:
            raise invalid("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
        queryset = queryset.filter(kind=kind)
    if value:
        queryset = queryset.filter(value=value)
    if owner:
        queryset = queryset.filter(owner__slug=owner)
    if tag:
        queryset = queryset.filter(tags__name=tag)
    if contains:
        queryset = queryset.filter(value__icontains=contains)
    return queryset


def access_indicator(user: UserLike | None, indicator_id: int) -> Indicator:
    """The indicator, or NotFound alike for a missing one and one the user may not see."""
    found = visible_indicators(user).filter(pk=indicator_id).first()
    if found is None:
        raise NotFound(f"no indicator {indicator_id}")
    return found


def sightings_of(indicator: Indicator) -> list[Sighting]:
    """Who saw it: shown to whoever may see the indicator."""
    return list(indicator.sightings.select_related("organisation").order_by("-last_seen"))


def incidents_of(user: UserLike | None, indicator: Indicator) -> list[Incident]:
    return list(Incident.objects.restrict(user, "view").filter(indicators=indicator).order_by("-created_at"))


@dataclass
class SearchHit:
    kind: str
    value: str
    warninglist: str | None
    indicators: list[Indicator] = field(default_factory=list)


def search(user: UserLike | None, text: str) -> list[SearchHit]:
    """Every visible indicator matching each observable in the text: the value itself, the networks
    an address lies in, and for a URL its host. Text without an observable is searched as a fragment
    of indicator values."""
    observables = extract(text)[:MAX_SEARCH_VALUES]
    if not observables:
        fragment = text.strip()
        if len(fragment) < 3:
            return []
        found = list(visible_indicators(user, contains=fragment).prefetch_related("tags")[:100])
        return [SearchHit("text", fragment, None, found)] if found else [SearchHit("text", fragment, None)]
    matcher = warninglist_matcher()
    hits = [SearchHit(kind, value, matcher.listed(kind, value)) for kind, value in observables]
    conditions = Q(pk__in=[])
    for hit in hits:
        conditions |= _matching(hit.kind, hit.value)
    found = list(
        visible_indicators(user).filter(conditions).prefetch_related("tags")[: MAX_SEARCH_VALUES * 4]
    )
    for hit in hits:
        hit.indicators = [indicator for indicator in found if _matches(hit, indicator)]
    return hits


def _address_key(value: str) -> str | None:
    try:
        return address_key(ipaddress.ip_address(value))
    except ValueError:
        return None


def _matching(kind: str, value: str) -> Q:
    condition = Q(kind=kind, value=value)
    if kind in (Kind.IPV4, Kind.IPV6):
        key = _address_key(value)
        condition |= Q(kind=Kind.CIDR, range_start__lte=key, range_end__gte=key)
    elif kind == Kind.URL:
        host = urlsplit(value).hostname or ""
        condition |= Q(kind__in=[Kind.DOMAIN, Kind.IPV4, Kind.IPV6], value=host)
    return condition


def _matches(hit: SearchHit, indicator: Indicator) -> bool:
    if indicator.kind == hit.kind and indicator.value == hit.value:
        return True
    if hit.kind in (Kind.IPV4, Kind.IPV6) and indicator.kind == Kind.CIDR:
        key = _address_key(hit.value)
        return key is not None and indicator.range_start <= key <= indicator.range_end
    if hit.kind == Kind.URL:
        return indicator.value == (urlsplit(hit.value).hostname or "")
    return False


def visible_alerts(user: UserLike | None, *, status: str | None = None) -> QuerySet[CorrelationAlert]:
    queryset = CorrelationAlert.objects.restrict(user, "view").select_related("cert")
    if status:
        if status not in AlertStatus.values:
            raise invalid("status", f"{status!r} is not one of {', '.join(AlertStatus.values)}")
        queryset = queryset.filter(status=status)
    return queryset


def access_alert(user: UserLike | None, alert_id: int) -> CorrelationAlert:
    found = visible_alerts(user).filter(pk=alert_id).first()
    if found is None:
        raise NotFound(f"no correlation alert {alert_id}")
    return found


def alert_contents(
    user: UserLike | None, alert: CorrelationAlert
) -> tuple[list[Organisation], list[Indicator]]:
    """The organisations and indicators behind an alert, as far as this reader may see them."""
    organisations = list(
        Organisation.objects.restrict(user, "view").filter(pk__in=alert.organisations.values("pk"))
    )
    indicators = list(
        Indicator.objects.restrict(user, "view")
        .filter(correlations=alert)
        .select_related("owner")
        .prefetch_related("tags")
    )
    return organisations, indicators


def warninglists() -> QuerySet[Warninglist]:
    return Warninglist.objects.all()


def access_warninglist(slug: str) -> Warninglist:
    found = Warninglist.objects.filter(slug=slug).first()
    if found is None:
        raise NotFound(f"no warninglist {slug!r}")
    return found


def reports_of(user: UserLike | None, indicator: Indicator) -> set[int]:
    return set(
        Report.objects.restrict(user, "view").filter(indicators=indicator).values_list("pk", flat=True)
    )


def access_incident(user: UserLike | None, incident_id: int) -> Incident:
    found = Incident.objects.restrict(user, "view").filter(pk=incident_id).first()
    if found is None:
        raise NotFound(f"no incident {incident_id}")
    return found


def access_import(user: UserLike | None, import_id: int) -> IntelImport:
    found = IntelImport.objects.restrict(user, "view").select_related("owner").filter(pk=import_id).first()
    if found is None:
        raise NotFound(f"no import {import_id}")
    return found


def publishing_organisations(user: UserLike | None) -> list[Organisation]:
    """The organisations the user may publish intel reports for: those where they are an analyst or
    above, as services.indicators.organisation_acting_for requires."""
    ids = principal_for(user).orgs_with(Role.ANALYST)
    return list(Organisation.objects.filter(pk__in=ids).order_by("name"))


@dataclass
class PastedValue:
    """An observable found in pasted text and the indicator a report carries for it (None: the user
    may share no indicator of this value)."""

    kind: str
    value: str
    indicator: Indicator | None


def shareable_indicators_in(user: UserLike | None, text: str, *, owner: str) -> list[PastedValue]:
    """Each observable in the text, with the indicator a report published by `owner` (a slug) should
    carry for it: the owner's own indicator of that value, else the shareable one with the lowest id.
    The owner's own comes first because publishing it needs nobody else's consent to lower it; the
    lowest id otherwise, so that pasting the same text twice picks the same indicators. Only exact
    values count here: a network that contains a pasted address is a different indicator."""
    observables = extract(text)
    if len(observables) > MAX_PASTED_VALUES:
        raise invalid(
            "indicators",
            f"{len(observables)} values; a form takes at most {MAX_PASTED_VALUES} "
            "(publish larger reports through the API)",
        )
    values_of: dict[str, list[str]] = defaultdict(list)
    for kind, value in observables:
        values_of[kind].append(value)
    shareable = Indicator.objects.restrict(user, "share").select_related("owner").order_by("pk")
    chosen: dict[tuple[str, str], Indicator] = {}
    for kind, values in values_of.items():
        for start in range(0, len(values), _CHUNK):
            for indicator in shareable.filter(kind=kind, value__in=values[start : start + _CHUNK]):
                key = (indicator.kind, indicator.value)
                current = chosen.get(key)
                if current is None or (indicator.owner.slug == owner and current.owner.slug != owner):
                    chosen[key] = indicator
    return [PastedValue(kind, value, chosen.get((kind, value))) for kind, value in observables]


def indicator_ids_of(report: IntelReport) -> list[int]:
    """Every indicator id in the report, also those the reader may not see, in the order
    services.report_changes checks them: an error it places at `indicators[n]` is traced back through
    this list to the value it is about."""
    return list(report.indicators.order_by("pk").values_list("pk", flat=True))
