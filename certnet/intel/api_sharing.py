"""Intel reports, imports and exports over the API. Thin: parse, call one selector or service, shape."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from typing import Any

from django.conf import settings
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Router, Schema, Status
from ninja.pagination import LimitOffsetPagination, paginate

from certnet.core.errors import InvalidInput, invalid
from certnet.core.pagination import ShapedPage
from certnet.intel import csvfile, selectors
from certnet.intel.api import IndicatorOut, OrganisationRef, _indicator_out, _ref, _user
from certnet.intel.models import IntelReport
from certnet.intel.selectors import exports, misp_export
from certnet.intel.services.misp_import import import_misp_event
from certnet.intel.services.report_changes import ReportChange, change_intel_report
from certnet.intel.services.reports import ReportInput, publish_intel_report
from certnet.intel.services.stix_import import import_bundle

router = Router(tags=["intel sharing"])

EXPORT_FORMATS = ("stix", "misp", "csv")


class ReportIn(Schema):
    owner: str
    title: str
    tlp: str
    audience: str
    summary: str = ""
    sectors: list[str] = []
    provinces: list[str] = []
    organisations: list[str] = []
    indicators: list[int] = []
    tags: list[str] = []


class ReportChangeIn(Schema):
    """Only the fields sent change. `sectors`, `provinces` or `organisations` go with `audience`."""

    title: str | None = None
    summary: str | None = None
    tags: list[str] | None = None
    tlp: str | None = None
    audience: str | None = None
    sectors: list[str] = []
    provinces: list[str] = []
    organisations: list[str] = []
    add_indicators: list[int] = []
    remove_indicators: list[int] = []


class ReportOut(Schema):
    id: int
    stix_id: str
    title: str
    summary: str
    owner: OrganisationRef
    tlp: str
    audience: str
    sectors: list[str]
    provinces: list[str]
    shared_with: list[str]
    tags: list[str]
    published_at: dt.datetime


class ReportDetailOut(ReportOut):
    indicators: list[IndicatorOut]


class ImportTakenOut(Schema):
    index: int
    id: str
    type: str
    outcome: str


class ImportRefusedOut(Schema):
    index: int
    id: str
    type: str
    reasons: list[str]


class ImportOut(Schema):
    import_id: int | None
    counts: dict[str, int]
    taken: list[ImportTakenOut]
    refused: list[ImportRefusedOut]
    correlations: int


class MispRefusedOut(Schema):
    where: str
    uuid: str
    type: str
    reasons: list[str]


class MispUnsupportedOut(Schema):
    where: str
    type: str
    value: str
    note: str


class MispImportOut(Schema):
    import_id: int | None
    report_id: int | None
    report: str
    indicators: list[int]
    counts: dict[str, int]
    refused: list[MispRefusedOut]
    unsupported: list[MispUnsupportedOut]
    correlations: int


class ImportRecordOut(Schema):
    id: int
    owner: OrganisationRef
    format: str
    source: str
    sha256: str
    partial: bool
    counts: dict[str, int]
    refused: list[dict[str, Any]]
    unsupported: list[dict[str, Any]]
    created_at: dt.datetime


def _report_out(report: IntelReport) -> dict[str, Any]:
    return {
        "id": report.pk,
        "stix_id": f"report--{report.stix_id}",
        "title": report.title,
        "summary": report.summary,
        "owner": _ref(report.owner),
        "tlp": report.tlp,
        "audience": report.audience,
        "sectors": report.sectors,
        "provinces": report.provinces,
        "shared_with": sorted(org.slug for org in report.shared_with.all()),
        "tags": sorted(tag.name for tag in report.tags.all()),
        "published_at": report.published_at,
    }


def _report_detail(user: Any, report: IntelReport) -> dict[str, Any]:
    indicators = exports.report_indicators(user, report).prefetch_related("tags")
    return {**_report_out(report), "indicators": [_indicator_out(i) for i in indicators]}


# --- intel reports --------------------------------------------------------------------------------


@router.get("/intel-reports", response=list[ReportOut], summary="Intel reports you may see, newest first")
@paginate(LimitOffsetPagination)
def list_reports(request: HttpRequest) -> Any:
    queryset = exports.visible_reports(request.user).prefetch_related("shared_with", "tags")
    return ShapedPage(queryset, lambda page: [_report_out(r) for r in page])


@router.post(
    "/intel-reports",
    response={201: ReportDetailOut},
    summary="Publish indicators to an audience (community, sectors, provinces or organisations)",
)
def create_report(request: HttpRequest, payload: ReportIn) -> Status[dict[str, Any]]:
    report = publish_intel_report(actor=_user(request), spec=ReportInput(**payload.model_dump()))
    return Status(201, _report_detail(request.user, report))


@router.get("/intel-reports/{report_id}", response=ReportDetailOut)
def get_report(request: HttpRequest, report_id: int) -> dict[str, Any]:
    return _report_detail(request.user, exports.access_report(request.user, report_id))


@router.patch(
    "/intel-reports/{report_id}",
    response=ReportDetailOut,
    summary="Change a report: wording, tags, TLP (lowered only by its owner), audience, indicators",
)
def change_report(request: HttpRequest, report_id: int, payload: ReportChangeIn) -> dict[str, Any]:
    change = ReportChange(**payload.model_dump())
    report = change_intel_report(actor=_user(request), report_id=report_id, change=change)
    return _report_detail(request.user, report)


@router.get(
    "/intel-reports/{report_id}/stix",
    response=dict[str, Any],
    summary="The report as a STIX 2.1 bundle: its indicators, identities, markings, sightings, kept objects",
)
def report_stix(request: HttpRequest, report_id: int) -> dict[str, Any]:
    report = exports.access_report(request.user, report_id)
    return exports.stix_bundle(request.user, exports.report_indicators(request.user, report), report=report)


@router.get(
    "/intel-reports/{report_id}/misp",
    response=dict[str, Any],
    summary="The report as a MISP event (attributes, objects, tags) that PyMISP loads",
)
def report_misp(request: HttpRequest, report_id: int) -> dict[str, Any]:
    return misp_export.misp_event_for_report(request.user, report_id)


# --- export and import ----------------------------------------------------------------------------


@router.get(
    "/indicators/export",
    response=dict[str, Any],
    summary="The indicators you may see (filtered like the list) as a STIX 2.1 bundle, a MISP event or CSV",
)
def export_indicators(
    request: HttpRequest,
    format: str = "stix",  # noqa: A002 - the name callers use
    kind: str | None = None,
    owner: str | None = None,
    tag: str | None = None,
    incident: int | None = None,
) -> Any:
    if format not in EXPORT_FORMATS:
        raise invalid("format", f"{format!r} is not one of {', '.join(EXPORT_FORMATS)}")
    queryset = selectors.visible_indicators(request.user, kind=kind, owner=owner, tag=tag)
    if incident is not None:
        queryset = queryset.filter(incidents=selectors.access_incident(request.user, incident))
    if format == "csv":
        rows = csvfile.write_csv(queryset.prefetch_related("tags").iterator(chunk_size=2000))
        response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="indicators.csv"'
        return response
    if format == "misp":
        return misp_export.misp_event_for_indicators(request.user, queryset, info="certnet indicator export")
    return exports.stix_bundle(request.user, queryset)


@router.post(
    "/intel/imports",
    response={201: ImportOut},
    summary="Import a STIX 2.1 bundle (the request body) for your organisation; every object is reported on",
)
def create_import(
    request: HttpRequest, owner: str, partial: bool = False, default_tlp: str | None = None
) -> Status[dict[str, Any]]:
    with tempfile.SpooledTemporaryFile(max_size=8 << 20) as body:
        _copy_body(request, body)
        outcome = import_bundle(
            actor=_user(request),
            owner=owner,
            source=body,
            partial=partial,
            default_tlp=default_tlp,
            source_name="api",
        )
    return Status(
        201,
        {
            "import_id": outcome.import_id,
            "counts": outcome.counts,
            "taken": [
                {"index": t.index, "id": t.stix_id, "type": t.type, "outcome": t.outcome}
                for t in outcome.taken
            ],
            "refused": [
                {"index": r.index, "id": r.stix_id, "type": r.type, "reasons": r.reasons}
                for r in outcome.refused
            ],
            "correlations": outcome.alerts,
        },
    )


@router.post(
    "/intel/imports/misp",
    response={201: MispImportOut},
    summary="Import a MISP event (the request body) for your organisation as indicators and an intel report",
)
def create_misp_import(request: HttpRequest, owner: str, partial: bool = False) -> Status[dict[str, Any]]:
    with tempfile.SpooledTemporaryFile(max_size=8 << 20) as body:
        _copy_body(request, body)
        body.seek(0)
        try:
            data = json.load(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise invalid("body", f"is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise invalid("body", "a MISP event is a JSON object")
    outcome = import_misp_event(actor=_user(request), owner=owner, data=data, partial=partial)
    return Status(
        201,
        {
            "import_id": outcome.import_id,
            "report_id": outcome.report_id,
            "report": outcome.report,
            "indicators": outcome.indicators,
            "counts": outcome.counts,
            "refused": [
                {"where": r.where, "uuid": r.uuid, "type": r.type, "reasons": [str(e) for e in r.errors]}
                for r in outcome.refused
            ],
            "unsupported": [u.as_dict() for u in outcome.unsupported],
            "correlations": outcome.alerts,
        },
    )


def _copy_body(request: HttpRequest, target: Any) -> None:
    """The request body to a spooled file, read as a stream (a bundle may be far larger than the
    limit for bodies read into memory), refused past CERTNET_MAX_IMPORT_BYTES."""
    limit = settings.CERTNET_MAX_IMPORT_BYTES
    copied = 0
    while block := request.read(1 << 20):
        copied += len(block)
        if copied > limit:
            raise InvalidInput(
                f"the body is over the import limit of {limit} bytes; import larger files with "
                "`certnet intel import`",
                errors=[invalid("body", f"larger than {limit} bytes").errors[0]],
            )
        target.write(block)
    if not copied:
        raise invalid("body", "is empty; send the bundle as the request body (application/json)")


@router.get(
    "/intel/imports/{import_id}", response=ImportRecordOut, summary="One import: what was taken and refused"
)
def get_import(request: HttpRequest, import_id: int) -> dict[str, Any]:
    record = selectors.access_import(request.user, import_id)
    return {
        "id": record.pk,
        "owner": _ref(record.owner),
        "format": record.format,
        "source": record.source,
        "sha256": record.sha256,
        "partial": record.partial,
        "counts": record.counts,
        "refused": record.refused,
        "unsupported": record.unsupported,
        "created_at": record.created_at,
    }
