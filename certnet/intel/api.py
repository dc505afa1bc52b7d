"""Indicator, correlation and warninglist endpoints. Thin: parse, call one selector or service, shape."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema, Status
from ninja.pagination import LimitOffsetPagination, paginate

from certnet.accounts.models import User
from certnet.core.pagination import ShapedPage
from certnet.intel import selectors
from certnet.intel.models import CorrelationAlert, Indicator, Sighting, Warninglist
from certnet.intel.services import correlation, warninglists
from certnet.intel.services.indicators import (
    IndicatorChange,
    IndicatorInput,
    change_indicator,
    record_indicators,
    record_sighting,
)

router = Router(tags=["intel"])


class OrganisationRef(Schema):
    slug: str
    name: str


class IndicatorIn(Schema):
    kind: str
    value: str
    tlp: str | None = None
    confidence: int | None = None
    description: str = ""
    source: str = ""
    first_seen: dt.datetime | None = None
    last_seen: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    tags: list[str] = []
    named_users: list[str] = []
    incidents: list[int] = []
    reports: list[int] = []


class RecordIn(Schema):
    owner: str
    indicators: list[IndicatorIn]


class SightingOut(Schema):
    organisation: OrganisationRef
    first_seen: dt.datetime
    last_seen: dt.datetime
    count: int
    source: str


class IndicatorOut(Schema):
    id: int
    kind: str
    value: str
    owner: OrganisationRef
    tlp: str
    confidence: int
    description: str
    source: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    expires_at: dt.datetime | None
    warninglist: str | None
    tags: list[str]


class IndicatorDetailOut(IndicatorOut):
    sightings: list[SightingOut]
    incidents: list[int]
    reports: list[int]
    shared_with: list[str]


class RecordOut(Schema):
    created: list[int]
    updated: list[int]
    correlations: list[int]


class ChangeIn(Schema):
    tlp: str | None = None
    confidence: int | None = None
    description: str | None = None
    expires_at: dt.datetime | None = None
    clear_expiry: bool = False
    tags: list[str] | None = None
    shared_with: list[str] | None = None
    incidents: list[int] | None = None
    reports: list[int] | None = None


class SightingIn(Schema):
    organisation: str
    seen_at: dt.datetime | None = None
    count: int = 1
    source: str = ""


class SightingResultOut(Schema):
    sighting: SightingOut
    correlations: list[int]


class SearchIn(Schema):
    text: str


class SearchHitOut(Schema):
    kind: str
    value: str
    warninglist: str | None
    indicators: list[IndicatorOut]


class AlertOut(Schema):
    id: int
    kind: str
    value: str
    cert: OrganisationRef
    status: str
    tlp: str
    note: str
    created_at: dt.datetime
    updated_at: dt.datetime


class AlertDetailOut(AlertOut):
    organisations: list[OrganisationRef]
    indicators: list[IndicatorOut]


class AlertStatusIn(Schema):
    status: str
    note: str = ""


class WarninglistOut(Schema):
    slug: str
    name: str
    description: str
    kind: str
    source: str
    enabled: bool
    entries: int


class WarninglistDetailOut(WarninglistOut):
    values: list[str]


class WarninglistChangeIn(Schema):
    add: list[str] = []
    remove: list[str] = []
    enabled: bool | None = None


def _ref(org: Any) -> dict[str, str]:
    return {"slug": org.slug, "name": org.name}


def _indicator_out(indicator: Indicator) -> dict[str, Any]:
    return {
        "id": indicator.pk,
        "kind": indicator.kind,
        "value": indicator.value,
        "owner": _ref(indicator.owner),
        "tlp": indicator.tlp,
        "confidence": indicator.confidence,
        "description": indicator.description,
        "source": indicator.source,
        "first_seen": indicator.first_seen,
        "last_seen": indicator.last_seen,
        "expires_at": indicator.expires_at,
        "warninglist": indicator.warninglist or None,
        "tags": sorted(tag.name for tag in indicator.tags.all()),
    }


def _sighting_out(sighting: Sighting) -> dict[str, Any]:
    return {
        "organisation": _ref(sighting.organisation),
        "first_seen": sighting.first_seen,
        "last_seen": sighting.last_seen,
        "count": sighting.count,
        "source": sighting.source,
    }


def _indicator_detail(user: Any, indicator: Indicator) -> dict[str, Any]:
    return {
        **_indicator_out(indicator),
        "sightings": [_sighting_out(s) for s in selectors.sightings_of(indicator)],
        "incidents": [i.pk for i in selectors.incidents_of(user, indicator)],
        "reports": sorted(selectors.reports_of(user, indicator)),
        "shared_with": sorted(indicator.shared_with.values_list("slug", flat=True)),
    }


def _alert_out(alert: CorrelationAlert) -> dict[str, Any]:
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "value": alert.value,
        "cert": _ref(alert.cert),
        "status": alert.status,
        "tlp": alert.tlp,
        "note": alert.note,
        "created_at": alert.created_at,
        "updated_at": alert.updated_at,
    }


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # noqa: S101 - the API authenticates every request first
    return user


# --- indicators -----------------------------------------------------------------------------------


@router.get(
    "/indicators", response=list[IndicatorOut], summary="Indicators you may see, newest sighting first"
)
@paginate(LimitOffsetPagination)
def list_indicators(
    request: HttpRequest,
    kind: str | None = None,
    value: str | None = None,
    owner: str | None = None,
    tag: str | None = None,
) -> Any:
    queryset = selectors.visible_indicators(request.user, kind=kind, value=value, owner=owner, tag=tag)
    return ShapedPage(queryset.prefetch_related("tags"), lambda page: [_indicator_out(i) for i in page])


@router.post(
    "/indicators",
    response={201: RecordOut},
    summary="Record indicators for your organisation (all or nothing); known values are brought up to date",
)
def create_indicators(request: HttpRequest, payload: RecordIn) -> Status[dict[str, Any]]:
    items = [IndicatorInput(**item.model_dump()) for item in payload.indicators]
    result = record_indicators(actor=_user(request), owner=payload.owner, items=items)
    return Status(
        201,
        {
            "created": [i.pk for i in result.created],
            "updated": [i.pk for i in result.updated],
            "correlations": [a.pk for a in result.alerts],
        },
    )


@router.post(
    "/indicators/search", response=list[SearchHitOut], summary="Paste values or text; get every match"
)
def search_indicators(request: HttpRequest, payload: SearchIn) -> list[dict[str, Any]]:
    return [
        {
            "kind": hit.kind,
            "value": hit.value,
            "warninglist": hit.warninglist,
            "indicators": [_indicator_out(i) for i in hit.indicators],
        }
        for hit in selectors.search(request.user, payload.text)
    ]


@router.get("/indicators/{indicator_id}", response=IndicatorDetailOut)
def get_indicator(request: HttpRequest, indicator_id: int) -> dict[str, Any]:
    return _indicator_detail(request.user, selectors.access_indicator(request.user, indicator_id))


@router.patch("/indicators/{indicator_id}", response=IndicatorDetailOut)
def update_indicator(request: HttpRequest, indicator_id: int, payload: ChangeIn) -> dict[str, Any]:
    indicator = change_indicator(
        actor=_user(request), indicator_id=indicator_id, change=IndicatorChange(**payload.model_dump())
    )
    return _indicator_detail(request.user, indicator)


@router.post(
    "/indicators/{indicator_id}/sightings",
    response={201: SightingResultOut},
    summary="Say that your organisation saw this value",
)
def add_sighting(request: HttpRequest, indicator_id: int, payload: SightingIn) -> Status[dict[str, Any]]:
    sighting, alerts = record_sighting(
        actor=_user(request), indicator_id=indicator_id, **payload.model_dump()
    )
    return Status(201, {"sighting": _sighting_out(sighting), "correlations": [a.pk for a in alerts]})


# --- correlations ---------------------------------------------------------------------------------


@router.get("/correlations", response=list[AlertOut], summary="Correlation alerts for the CERTs you may see")
@paginate(LimitOffsetPagination)
def list_correlations(request: HttpRequest, status: str | None = None) -> Any:
    return ShapedPage(
        selectors.visible_alerts(request.user, status=status), lambda page: [_alert_out(a) for a in page]
    )


def _alert_detail(user: Any, alert: CorrelationAlert) -> dict[str, Any]:
    organisations, indicators = selectors.alert_contents(user, alert)
    return {
        **_alert_out(alert),
        "organisations": [_ref(o) for o in organisations],
        "indicators": [_indicator_out(i) for i in indicators],
    }


@router.get("/correlations/{alert_id}", response=AlertDetailOut)
def get_correlation(request: HttpRequest, alert_id: int) -> dict[str, Any]:
    return _alert_detail(request.user, selectors.access_alert(request.user, alert_id))


@router.post(
    "/correlations/{alert_id}/status", response=AlertDetailOut, summary="Acknowledge, close or reopen"
)
def set_correlation_status(request: HttpRequest, alert_id: int, payload: AlertStatusIn) -> dict[str, Any]:
    alert = correlation.set_alert_status(actor=_user(request), alert_id=alert_id, **payload.model_dump())
    return _alert_detail(request.user, alert)


# --- warninglists ---------------------------------------------------------------------------------


def _warninglist_out(warninglist: Warninglist) -> dict[str, Any]:
    return {
        "slug": warninglist.slug,
        "name": warninglist.name,
        "description": warninglist.description,
        "kind": warninglist.kind,
        "source": warninglist.source,
        "enabled": warninglist.enabled,
        "entries": warninglist.entries.count(),
    }


@router.get("/warninglists", response=list[WarninglistOut], summary="Values that never raise a correlation")
def list_warninglists(request: HttpRequest) -> list[dict[str, Any]]:
    return [_warninglist_out(w) for w in selectors.warninglists()]


@router.get("/warninglists/{slug}", response=WarninglistDetailOut)
def get_warninglist(request: HttpRequest, slug: str) -> dict[str, Any]:
    warninglist = selectors.access_warninglist(slug)
    values = list(warninglist.entries.values_list("value", flat=True))
    return {**_warninglist_out(warninglist), "values": values}


@router.patch(
    "/warninglists/{slug}",
    response=WarninglistDetailOut,
    summary="Add or remove entries (platform administrators)",
)
def change_warninglist(request: HttpRequest, slug: str, payload: WarninglistChangeIn) -> dict[str, Any]:
    warninglists.edit_warninglist(actor=_user(request), slug=slug, **payload.model_dump())
    return get_warninglist(request, slug)
