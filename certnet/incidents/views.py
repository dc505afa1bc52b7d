"""Incident pages: the report form, the handling CERT's queue, a report with its triage, one incident.

Thin, like the API: parse the form or query string, call one service (to change something) or read
through the selectors (every read starts from visibility), shape rows for the templates, render. A
DomainError is shown next to the form it came from (its detail on top, its field errors beside the
fields); NotFound is a 404, alike for a record that does not exist and one the user may not see. The
services decide who may do what; the pages only hide forms a user could not use.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from certnet.accounts.models import User
from certnet.accounts.selectors import memberships_of
from certnet.core import clock
from certnet.core.errors import DomainError, FieldError, NotFound, invalid
from certnet.core.pagination import COUNT_CAP, CappedPaginator, capped_count
from certnet.core.roles import Role
from certnet.core.tlp import TLP
from certnet.core.visibility import can
from certnet.incidents import selectors, services
from certnet.incidents.clocks import StageState, load_profiles
from certnet.incidents.models import Channel, Incident, IncidentStatus, Report, ReportStatus, StageReport
from certnet.incidents.services import service_levels
from certnet.incidents.taxonomy import rsit
from certnet.incidents.webforms import (
    FormErrors,
    form_text,
    form_words,
    parse_moment,
    parse_severity,
    reject_if,
    signed_in_user,
)
from certnet.registry import selectors as registry
from certnet.registry.models import CERT_KINDS, CIISystem, Organisation
from certnet.web.rendering import render_page_or_fragment, wants_fragment

# The national cyber incident severity scale (NCISS levels), as the badges and selects name it.
SEVERITIES: list[tuple[int, str]] = [
    (0, "Baseline"),
    (1, "Low"),
    (2, "Medium"),
    (3, "High"),
    (4, "Severe"),
    (5, "Emergency"),
]
PAGE_SIZE = 50
NEW_REPORTS_SHOWN = 50

# The action forms of the incident page: URL part → the form's heading (for messages).
ACTIONS = {
    "status": "Status changed",
    "escalate": "Escalated",
    "de-escalate": "De-escalated",
    "assign": "Assignment saved",
    "stage-report": "Stage report filed",
}
ACTION_FIELDS = ("status", "note", "reason", "assignee", "stage", "summary")


def _local(moment: dt.datetime | None) -> str:
    """The value a datetime-local input shows for `moment` (UTC, to the minute)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M") if moment else ""


def _taxonomy_context(taxonomy: str) -> dict[str, Any]:
    """What the taxonomy and type selects show: every taxonomy, and the types of the chosen one
    (grouped under every taxonomy when none is chosen, so the form works without HTMX)."""
    types = rsit().types
    chosen = taxonomy if taxonomy in types else ""
    return {
        "taxonomies": list(types),
        "type_groups": [(chosen, types[chosen])] if chosen else list(types.items()),
    }


# --- the report form ----------------------------------------------------------------------------

REPORT_FIELDS = (
    "reporting_organisation",
    "affected_organisation",
    "cii_system",
    "title",
    "description",
    "aware_at",
    "detected_at",
    "classification_taxonomy",
    "classification_type",
    "severity",
    "tlp",
    "named_users",
)


def _reporting_organisations(user: User) -> list[Organisation]:
    """The organisations the user may report for: those where they are analyst or above."""
    return [m.organisation for m in memberships_of(user) if Role(m.role).includes(Role.ANALYST)]


def _report_form_context(
    request: HttpRequest, values: dict[str, str], errors: FormErrors | None
) -> dict[str, Any]:
    user = signed_in_user(request)
    reporters = sorted(_reporting_organisations(user), key=lambda o: o.display_name.lower())
    reporter_ids = [o.pk for o in reporters]
    below = list(
        registry.visible_organisations(user)
        .filter(pk__in=registry.descendants_of(reporter_ids))
        .order_by("name")
    )
    systems = (
        CIISystem.objects.restrict(user)
        .filter(organisation_id__in=[*reporter_ids, *(o.pk for o in below)])
        .select_related("organisation")
        .order_by("name")
    )
    return {
        "values": values,
        "errors": errors or FormErrors(),
        "reporters": reporters,
        "below": below,
        "cii_systems": list(systems),
        "severities": SEVERITIES,
        "tlps": TLP.choices,
        **_taxonomy_context(values.get("classification_taxonomy", "")),
    }


@login_required
@require_http_methods(["GET", "POST"])
def report_form(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    if request.method == "GET":
        reporters = _reporting_organisations(user)
        values = {
            "reporting_organisation": reporters[0].slug if len(reporters) == 1 else "",
            "aware_at": _local(clock.now()),
            "tlp": TLP.AMBER.value,
        }
        return render(request, "incidents/report_form.html", _report_form_context(request, values, None))

    values = {name: form_text(request.POST, name) for name in REPORT_FIELDS}
    try:
        problems: list[FieldError] = []
        aware_at = parse_moment(values["aware_at"], "aware_at", problems)
        if aware_at is None and not problems:
            problems.append(FieldError("aware_at", "say when you became aware of the incident"))
        detected_at = parse_moment(values["detected_at"], "detected_at", problems)
        severity = parse_severity(values["severity"], problems, required=False)
        reject_if(problems, "the report")
        report = services.submit_report(
            actor=user,
            data=services.ReportInput(
                reporting_organisation=values["reporting_organisation"],
                title=values["title"],
                description=values["description"],
                aware_at=cast(dt.datetime, aware_at),
                affected_organisation=values["affected_organisation"] or None,
                cii_system=values["cii_system"] or None,
                detected_at=detected_at,
                classification_taxonomy=values["classification_taxonomy"],
                classification_type=values["classification_type"],
                severity=severity,
                tlp=values["tlp"] or TLP.AMBER.value,
                channel=Channel.WEB,
                named_users=form_words(values["named_users"]),
            ),
        )
    except DomainError as exc:
        context = _report_form_context(request, values, FormErrors.of(exc, REPORT_FIELDS))
        return render(request, "incidents/report_form.html", context, status=exc.status)
    return redirect("report-filed", report_id=report.pk)


@login_required
def report_types(request: HttpRequest) -> HttpResponse:
    """The type select for a taxonomy (HTMX swaps it in when the taxonomy changes)."""
    taxonomy = request.GET.get("classification_taxonomy", "").strip()
    context = {**_taxonomy_context(taxonomy), "selected": request.GET.get("classification_type", "")}
    return render(request, "incidents/_type_select.html", context)


@login_required
def report_filed(request: HttpRequest, report_id: int) -> HttpResponse:
    try:
        report = selectors.access_report(request.user, report_id)
    except NotFound as exc:
        raise Http404(exc.detail) from None
    handler = selectors.handling_cert_for(report.affected_organisation, report.aware_at.date())
    return render(request, "incidents/report_filed.html", {"report": report, "handler": handler})


# --- the queue ----------------------------------------------------------------------------------


@dataclass
class QueueRow:
    """One incident in a table: whether the viewer sees it in full (else the stub), and whether its
    earliest deadline has passed."""

    incident: Incident
    full: bool
    overdue: bool


def queue_rows(user: User, incidents: list[Incident], now: dt.datetime) -> list[QueueRow]:
    full = selectors.fully_visible_ids(user, [i.pk for i in incidents])
    return [
        QueueRow(
            incident=i,
            full=i.pk in full,
            overdue=i.next_deadline_at is not None and i.next_deadline_at < now,
        )
        for i in incidents
    ]


@login_required
def incident_queue(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    params = request.GET
    status, cert = params.get("status", "").strip(), params.get("cert", "").strip()
    severity = params.get("severity", "").strip()
    open_only, overdue = params.get("open", "") == "1", params.get("overdue", "") == "1"
    filters = {"status": status, "severity": severity, "cert": cert, "open": open_only, "overdue": overdue}
    now = clock.now()
    queryset = selectors.queue_order(
        selectors.filter_incidents(
            selectors.incidents_for(user),
            viewer=user,
            status=status or None,
            severity_at_least=int(severity) if severity.isdigit() else None,
            handling_cert=cert or None,
            open_only=open_only,
            overdue_at=now if overdue else None,
        )
    )
    page = CappedPaginator(queryset, PAGE_SIZE).get_page(params.get("page"))
    rows = queue_rows(user, list(page.object_list), now)
    context: dict[str, Any] = {
        "rows": rows,
        "page": page,
        "now": now,
        "filters": filters,
        "active_filters": any(filters.values()),
        "statuses": IncidentStatus.choices,
        "severities": SEVERITIES,
        "certs": list(
            registry.visible_organisations(user).filter(kind__in=list(CERT_KINDS)).order_by("name")
        ),
    }
    if not wants_fragment(request):
        visible = selectors.incidents_for(user)
        reports = list(selectors.visible_reports(user).filter(status=ReportStatus.NEW)[:NEW_REPORTS_SHOWN])
        triageable = selectors.triageable_report_ids(user, [r.pk for r in reports])
        context.update(
            new_reports=[(r, r.pk in triageable) for r in reports],
            # Counted only up to the cap, like the lists: an exact count of a national queue's open
            # work is a scan of all of it on every page load.
            count_cap=COUNT_CAP,
            open_count=capped_count(selectors.filter_incidents(visible, open_only=True)),
            overdue_count=capped_count(selectors.filter_incidents(visible, overdue_at=now)),
            significant_count=capped_count(
                selectors.filter_incidents(
                    visible, open_only=True, severity_at_least=services.SIGNIFICANT_SEVERITY
                )
            ),
        )
    return render_page_or_fragment(request, "incidents/queue.html", "incidents/_queue_table.html", context)


# --- a report and its triage --------------------------------------------------------------------

TRIAGE_FIELDS = (
    "decision",
    "classification_taxonomy",
    "classification_type",
    "severity",
    "title",
    "tlp",
    "involved_organisations",
    "incident",
    "reason",
)


def _incident_number(raw: str) -> int | None:
    """'INC-12', 'inc-12' or '12' → 12."""
    match = re.fullmatch(r"(?i:inc-?)?\s*(\d+)", raw.strip())
    return int(match.group(1)) if match else None


def _report_context(
    request: HttpRequest, report: Report, values: dict[str, str] | None, errors: FormErrors | None
) -> dict[str, Any]:
    user = signed_in_user(request)
    if values is None:
        values = {
            "classification_taxonomy": report.classification_taxonomy,
            "classification_type": report.classification_type,
            "severity": "" if report.severity is None else str(report.severity),
            "title": report.title,
            "tlp": report.tlp,
        }
    incident_visible = (
        report.incident_id is not None
        and selectors.incidents_for(user).filter(pk=report.incident_id).exists()
    )
    return {
        "report": report,
        "values": values,
        "errors": errors or FormErrors(),
        "decision": values.get("decision", ""),
        "may_triage": report.status == ReportStatus.NEW and can(user, "triage", report),
        "incident_visible": incident_visible,
        "named": list(report.named_users.order_by("username")),
        "severities": SEVERITIES,
        "tlps": TLP.choices,
        "handler": selectors.handling_cert_for(report.affected_organisation, report.aware_at.date()),
        "service_levels": service_levels.report_service_levels(report, clock.now()),
        **_taxonomy_context(values.get("classification_taxonomy", "")),
    }


@login_required
@require_http_methods(["GET", "POST"])
def report_detail(request: HttpRequest, report_id: int) -> HttpResponse:
    user = signed_in_user(request)
    try:
        report = selectors.access_report(user, report_id)
    except NotFound as exc:
        raise Http404(exc.detail) from None
    if request.method == "GET":
        return render(request, "incidents/report_detail.html", _report_context(request, report, None, None))

    values = {name: form_text(request.POST, name) for name in TRIAGE_FIELDS}
    decision = values["decision"]
    try:
        if decision == "open":
            problems: list[FieldError] = []
            severity = parse_severity(values["severity"], problems, required=True)
            reject_if(problems, "the triage")
            incident = services.triage_report(
                actor=user,
                report=report,
                data=services.TriageInput(
                    classification_taxonomy=values["classification_taxonomy"],
                    classification_type=values["classification_type"],
                    severity=cast(int, severity),
                    title=values["title"] or None,
                    tlp=values["tlp"] or None,
                    involved_organisations=form_words(values["involved_organisations"]),
                ),
            )
            messages.success(request, f"Incident {incident.reference} opened from report R-{report.pk}.")
            return redirect("incident-detail", incident_id=incident.pk)
        if decision == "merge":
            number = _incident_number(values["incident"])
            if number is None:
                raise invalid("incident", "give the incident's reference, e.g. INC-12")
            target = services.merge_report(actor=user, report=report, incident_id=number)
            messages.success(request, f"Report R-{report.pk} merged into {target.reference}.")
            return redirect("incident-detail", incident_id=target.pk)
        if decision == "reject":
            services.reject_report(actor=user, report=report, reason=values["reason"])
            messages.success(request, f"Report R-{report.pk} rejected.")
            return redirect("report-detail", report_id=report.pk)
        raise invalid("decision", f"{decision!r} is not one of: open, merge, reject")
    except DomainError as exc:
        report.refresh_from_db()
        context = _report_context(request, report, values, FormErrors.of(exc, TRIAGE_FIELDS))
        return render(request, "incidents/report_detail.html", context, status=exc.status)


# --- one incident -------------------------------------------------------------------------------


@dataclass
class ClockRow:
    stage: StageState
    summary: str

    @property
    def late(self) -> str:
        """How late the stage is (overdue) or was (met late): '2 d 4 h', '3 h 20 min'."""
        delta = self.stage.overdue_by
        if delta is None:
            return ""
        minutes = int(delta.total_seconds()) // 60
        days, rest = divmod(minutes, 24 * 60)
        hours, minutes = divmod(rest, 60)
        if days:
            return f"{days} d {hours} h"
        return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _summary(filed: StageReport | None) -> str:
    return str(filed.content.get("summary", "")) if filed is not None else ""


def incident_context(
    request: HttpRequest, incident: Incident, full: bool, failed: tuple[str, FormErrors] | None = None
) -> dict[str, Any]:
    user = signed_in_user(request)
    context: dict[str, Any] = {
        "incident": incident,
        "full": full,
        "now": clock.now(),
        "severities": SEVERITIES,
        "failed_action": failed[0] if failed else "",
        "errors": failed[1] if failed else FormErrors(),
        "values": {name: form_text(request.POST, name) for name in ACTION_FIELDS},
    }
    if not full:
        return context
    now = clock.now()
    stages = selectors.incident_clocks(incident, now)
    filed = {s.stage: s for s in incident.stage_reports.select_related("submitted_by")}
    related = [
        incident.affected_organisation,
        incident.handling_cert,
        incident.escalated_to,
        *incident.involved_organisations.all(),
    ]
    ids = {o.pk for o in related if o is not None}
    order = {status: i for i, status in enumerate(IncidentStatus.values)}
    moves = services.STATUS_MOVES.get(incident.status, set()) - {IncidentStatus.MERGED}
    context.update(
        clocks=[ClockRow(stage=s, summary=_summary(filed.get(s.slug))) for s in stages],
        profile=load_profiles().get(incident.reporting_profile),
        escalations=list(incident.escalations.select_related("from_cert", "to_cert")),
        timeline=list(incident.timeline.all()),
        involved=[o for o in related[3:] if o is not None],
        reports=list(selectors.visible_reports(user).filter(incident=incident).order_by("received_at")),
        visible_ids=set(registry.visible_organisations(user).filter(pk__in=ids).values_list("pk", flat=True)),
        may_handle=can(user, "handle", incident),
        next_statuses=[
            (status, IncidentStatus(status).label) for status in sorted(moves, key=lambda s: order[s])
        ],
        may_file_stages=can(user, "file_stage", incident),
        open_stages=[s for s in stages if s.met_at is None],
    )
    context["report_service_levels"] = [
        (r, service_levels.report_service_levels(r, now)) for r in context["reports"]
    ]
    return context


@login_required
def incident_detail(request: HttpRequest, incident_id: int) -> HttpResponse:
    try:
        incident, full = selectors.access_incident(request.user, incident_id)
    except NotFound as exc:
        raise Http404(exc.detail) from None
    return render(request, "incidents/incident_detail.html", incident_context(request, incident, full))


@login_required
@require_POST
def incident_action(request: HttpRequest, incident_id: int, action: str) -> HttpResponse:
    user = signed_in_user(request)
    if action not in ACTIONS:
        raise Http404(f"no action {action!r}")
    try:
        incident, full = selectors.access_incident(user, incident_id)
    except NotFound as exc:
        raise Http404(exc.detail) from None
    post = request.POST
    try:
        if action == "status":
            services.change_status(
                actor=user,
                incident=incident,
                to_status=form_text(post, "status"),
                note=form_text(post, "note"),
            )
        elif action == "escalate":
            services.escalate_incident(actor=user, incident=incident, reason=form_text(post, "reason"))
        elif action == "de-escalate":
            services.de_escalate_incident(actor=user, incident=incident, reason=form_text(post, "reason"))
        elif action == "assign":
            services.assign_incident(
                actor=user, incident=incident, assignee_username=form_text(post, "assignee") or None
            )
        else:
            summary = form_text(post, "summary")
            services.submit_stage_report(
                actor=user,
                incident=incident,
                stage=form_text(post, "stage"),
                content={"summary": summary} if summary else {},
            )
    except NotFound as exc:
        raise Http404(exc.detail) from None
    except DomainError as exc:
        incident.refresh_from_db()
        context = incident_context(request, incident, full, (action, FormErrors.of(exc, ACTION_FIELDS)))
        return render(request, "incidents/incident_detail.html", context, status=exc.status)
    messages.success(request, ACTIONS[action] + ".")
    return redirect(reverse("incident-detail", kwargs={"incident_id": incident_id}) + f"#{action}")
