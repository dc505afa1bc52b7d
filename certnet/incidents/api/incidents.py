"""Incident endpoints. Thin: parse, call one selector or service, shape (stubs for TLP:RED not named)."""

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import LimitOffsetPagination, paginate
from pydantic import BaseModel

from certnet.accounts.models import User
from certnet.core import clock
from certnet.core.errors import invalid
from certnet.core.pagination import ShapedPage
from certnet.incidents import selectors, services
from certnet.incidents.api.evidence import AttachmentIn
from certnet.incidents.models import Incident, Report
from certnet.incidents.services import evidence

router = Router(tags=["incidents"])


# The report schemas are plain pydantic models: reports arrive in bulk, and they are built from dicts,
# so they need none of ninja's attribute resolution (which costs several times the validation).


class OrganisationRef(BaseModel):
    slug: str
    name: str


class ReportIn(BaseModel):
    reporting_organisation: str
    title: str
    description: str
    aware_at: dt.datetime
    affected_organisation: str | None = None
    cii_system: str | None = None
    detected_at: dt.datetime | None = None
    classification_taxonomy: str = ""
    classification_type: str = ""
    severity: int | None = None
    tlp: str = "amber"
    named_users: list[str] = []
    attachments: list[AttachmentIn] = []


class ReportOut(BaseModel):
    id: int
    channel: str
    status: str
    title: str
    description: str
    reporting_organisation: OrganisationRef
    affected_organisation: OrganisationRef
    classification_taxonomy: str
    classification_type: str
    severity: int | None
    tlp: str
    aware_at: dt.datetime
    received_at: dt.datetime
    incident: int | None


class TriageIn(Schema):
    decision: str  # open | merge | reject
    classification_taxonomy: str = ""
    classification_type: str = ""
    severity: int | None = None
    title: str | None = None
    tlp: str | None = None
    involved_organisations: list[str] = []
    incident: int | None = None
    reason: str = ""


class StageOut(Schema):
    stage: str
    name: str
    state: str
    due_at: dt.datetime | None
    met_at: dt.datetime | None


class IncidentOut(Schema):
    id: int
    reference: str
    redacted: bool
    status: str
    severity: int
    affected_organisation: OrganisationRef
    handling_cert: OrganisationRef
    escalated_to: OrganisationRef | None
    aware_at: dt.datetime
    created_at: dt.datetime
    next_deadline_at: dt.datetime | None
    tlp: str
    # Withheld from a stub:
    title: str | None = None
    description: str | None = None
    classification_taxonomy: str | None = None
    classification_type: str | None = None
    reporting_profile: str | None = None
    peca_sections: list[str] | None = None
    assignee: str | None = None


class IncidentDetailOut(IncidentOut):
    clocks: list[StageOut] = []
    escalations: list[dict[str, Any]] = []
    timeline: list[dict[str, Any]] = []


class IncidentFilters(Schema):
    status: str | None = None
    severity_at_least: int | None = None
    taxonomy: str | None = None
    organisation: str | None = None
    handling_cert: str | None = None
    tier: str | None = Field(None, description="national, provincial, sectoral or organisational")
    open_only: bool = False
    overdue: bool = False


class StatusIn(Schema):
    status: str
    note: str = ""


class ReasonIn(Schema):
    reason: str


class AssignIn(Schema):
    assignee: str | None


class StageReportIn(Schema):
    stage: str
    content: dict[str, Any] = {}


def _ref(org: Any) -> dict[str, str] | None:
    return {"slug": org.slug, "name": org.name} if org is not None else None


def _report_out(report: Report) -> dict[str, Any]:
    fields = {
        f: getattr(report, f)
        for f in ReportOut.model_fields
        if f not in {"reporting_organisation", "affected_organisation", "incident"}
    }
    return {
        **fields,
        "reporting_organisation": _ref(report.reporting_organisation),
        "affected_organisation": _ref(report.affected_organisation),
        "incident": report.incident_id,
    }


def _incident_out(incident: Incident, full: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": incident.pk,
        "reference": incident.reference,
        "redacted": not full,
        "status": incident.status,
        "severity": incident.severity,
        "affected_organisation": _ref(incident.affected_organisation),
        "handling_cert": _ref(incident.handling_cert),
        "escalated_to": _ref(incident.escalated_to),
        "aware_at": incident.aware_at,
        "created_at": incident.created_at,
        "next_deadline_at": incident.next_deadline_at,
        "tlp": incident.tlp,
    }
    if full:
        data.update(
            title=incident.title,
            description=incident.description,
            classification_taxonomy=incident.classification_taxonomy,
            classification_type=incident.classification_type,
            reporting_profile=incident.reporting_profile,
            peca_sections=incident.peca_sections,
            assignee=incident.assignee.username if incident.assignee else None,
        )
    return data


# --- reports --------------------------------------------------------------------------------------


@router.post(
    "/reports",
    response={201: ReportOut},
    summary="Report an incident (members of the reporting organisation), with files attached as base64",
)
def submit_report(request: HttpRequest, payload: ReportIn) -> Status[dict[str, Any]]:
    data = services.ReportInput(**payload.model_dump(exclude={"attachments"}))
    attachments = [evidence.AttachmentInput(**a.model_dump()) for a in payload.attachments]
    report = evidence.submit_report_with_attachments(actor=request.user, data=data, attachments=attachments)  # type: ignore[arg-type]
    return Status(201, _report_out(report))


@router.get("/reports", response=list[ReportOut])
@paginate(LimitOffsetPagination)
def list_reports(request: HttpRequest, status: str | None = None) -> Any:
    queryset = selectors.visible_reports(request.user)
    if status:
        queryset = queryset.filter(status=status)
    return ShapedPage(queryset, lambda page: [_report_out(r) for r in page])


@router.get("/reports/{report_id}", response=ReportOut)
def get_report(request: HttpRequest, report_id: int) -> dict[str, Any]:
    return _report_out(selectors.access_report(request.user, report_id))


@router.post(
    "/reports/{report_id}/triage", response={200: ReportOut}, summary="Open an incident, merge, or reject"
)
def triage(request: HttpRequest, report_id: int, payload: TriageIn) -> dict[str, Any]:
    report = selectors.access_report(request.user, report_id)
    user: User = request.user  # type: ignore[assignment]
    if payload.decision == "open":
        services.triage_report(
            actor=user,
            report=report,
            data=services.TriageInput(
                classification_taxonomy=payload.classification_taxonomy,
                classification_type=payload.classification_type,
                severity=payload.severity,  # type: ignore[arg-type]
                title=payload.title,
                tlp=payload.tlp,
                involved_organisations=payload.involved_organisations,
            ),
        )
    elif payload.decision == "merge":
        if payload.incident is None:
            raise invalid("incident", "name the incident to merge into")
        services.merge_report(actor=user, report=report, incident_id=payload.incident)
    elif payload.decision == "reject":
        services.reject_report(actor=user, report=report, reason=payload.reason)
    else:
        raise invalid("decision", f"{payload.decision!r} is not one of: open, merge, reject")
    report.refresh_from_db()
    return _report_out(report)


# --- incidents ------------------------------------------------------------------------------------


@router.get("/incidents", response=list[IncidentOut], summary="Incidents you may see, most urgent first")
@paginate(LimitOffsetPagination)
def list_incidents(request: HttpRequest, filters: Query[IncidentFilters]) -> Any:
    values = filters.model_dump()
    overdue = values.pop("overdue")
    queryset = selectors.filter_incidents(
        selectors.incidents_for(request.user),
        viewer=request.user,
        overdue_at=clock.now() if overdue else None,
        **values,
    )

    def shape(page: list[Incident]) -> list[dict[str, Any]]:
        full = selectors.fully_visible_ids(request.user, [i.pk for i in page])
        return [_incident_out(i, i.pk in full) for i in page]

    return ShapedPage(selectors.queue_order(queryset), shape)


@router.get("/incidents/{incident_id}", response=IncidentDetailOut)
def get_incident(request: HttpRequest, incident_id: int) -> dict[str, Any]:
    incident, full = selectors.access_incident(request.user, incident_id)
    data = _incident_out(incident, full)
    if full:
        data["clocks"] = [
            {"stage": s.slug, "name": s.name, "state": s.state, "due_at": s.due_at, "met_at": s.met_at}
            for s in selectors.incident_clocks(incident, clock.now())
        ]
        data["escalations"] = [
            {
                "direction": e.direction,
                "from": e.from_cert.slug,
                "to": e.to_cert.slug,
                "rule": e.rule,
                "reason": e.reason,
                "at": e.at.isoformat(),
            }
            for e in incident.escalations.select_related("from_cert", "to_cert")
        ]
        data["timeline"] = [
            {"at": t.at.isoformat(), "actor": t.actor_label, "kind": t.kind, "summary": t.summary}
            for t in incident.timeline.all()
        ]
    return data


def _handle(request: HttpRequest, incident_id: int, act: Callable[[User, Incident], Any]) -> dict[str, Any]:
    incident, _ = selectors.access_incident(request.user, incident_id)
    act(request.user, incident)  # type: ignore[arg-type]
    return get_incident(request, incident_id)


@router.post("/incidents/{incident_id}/status", response=IncidentDetailOut)
def change_status(request: HttpRequest, incident_id: int, payload: StatusIn) -> dict[str, Any]:
    return _handle(
        request,
        incident_id,
        lambda user, incident: services.change_status(
            actor=user, incident=incident, to_status=payload.status, note=payload.note
        ),
    )


@router.post("/incidents/{incident_id}/escalate", response=IncidentDetailOut)
def escalate(request: HttpRequest, incident_id: int, payload: ReasonIn) -> dict[str, Any]:
    return _handle(
        request,
        incident_id,
        lambda user, incident: services.escalate_incident(
            actor=user, incident=incident, reason=payload.reason
        ),
    )


@router.post("/incidents/{incident_id}/de-escalate", response=IncidentDetailOut)
def de_escalate(request: HttpRequest, incident_id: int, payload: ReasonIn) -> dict[str, Any]:
    return _handle(
        request,
        incident_id,
        lambda user, incident: services.de_escalate_incident(
            actor=user, incident=incident, reason=payload.reason
        ),
    )


@router.post("/incidents/{incident_id}/assign", response=IncidentDetailOut)
def assign(request: HttpRequest, incident_id: int, payload: AssignIn) -> dict[str, Any]:
    return _handle(
        request,
        incident_id,
        lambda user, incident: services.assign_incident(
            actor=user, incident=incident, assignee_username=payload.assignee
        ),
    )


@router.post(
    "/incidents/{incident_id}/stage-reports",
    response=IncidentDetailOut,
    summary="File a statutory stage report (the affected organisation)",
)
def stage_report(request: HttpRequest, incident_id: int, payload: StageReportIn) -> dict[str, Any]:
    return _handle(
        request,
        incident_id,
        lambda user, incident: services.submit_stage_report(
            actor=user, incident=incident, stage=payload.stage, content=payload.content
        ),
    )
