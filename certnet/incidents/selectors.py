"""Reads of reports and incidents, always through visibility; routing facts from the registry."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.db.models import QuerySet

from certnet.core.errors import NotFound
from certnet.incidents.clocks import StageState, evaluate, load_profiles, next_deadline
from certnet.incidents.models import Incident, IncidentStatus, Report
from certnet.registry.models import Organisation, ReportingLine
from certnet.registry.selectors import holder_of_function

if TYPE_CHECKING:
    from certnet.core.visibility import UserLike

OPEN_STATUSES = (IncidentStatus.TRIAGED, IncidentStatus.IN_PROGRESS, IncidentStatus.CONTAINED)


def _next_up(organisation: Organisation, day: dt.date) -> Organisation | None:
    """Whom `organisation` reports to on `day`. A line that runs through a function (e.g. a CII
    reporting to the CII-CERT function) leads to whoever holds that function on that day, so moving
    the function moves the work."""
    line = (
        ReportingLine.objects.filter(ReportingLine.in_force_on(day), organisation=organisation)
        .select_related("parent", "via_function")
        .first()
    )
    if line is None:
        return None
    holder = holder_of_function(line.via_function.slug, day) if line.via_function else None
    return holder or line.parent


def handling_cert_for(organisation: Organisation, day: dt.date) -> Organisation | None:
    """The CERT that handles `organisation`'s incidents on `day`: the organisation itself if it is a
    CERT, else the first CERT up its reporting lines."""
    current: Organisation | None = organisation
    seen: set[int] = set()
    while current is not None and current.pk not in seen:
        if current.is_cert:
            return current
        seen.add(current.pk)
        current = _next_up(current, day)
    return None


def certs_above(cert: Organisation, day: dt.date) -> list[Organisation]:
    """The CERTs above a CERT, nearest first."""
    chain: list[Organisation] = []
    current = _next_up(cert, day)
    while current is not None and current not in chain and current != cert:
        if current.is_cert:
            chain.append(current)
        current = _next_up(current, day)
    return chain


def visible_reports(user: UserLike | None) -> QuerySet[Report]:
    return (
        Report.objects.restrict(user, "view")
        .select_related("reporting_organisation", "affected_organisation")
        .order_by("-received_at", "-id")
    )


def access_report(user: UserLike | None, report_id: int) -> Report:
    report = visible_reports(user).filter(pk=report_id).first()
    if report is None:
        raise NotFound(f"no report {report_id}")
    return report


def incidents_for(user: UserLike | None) -> QuerySet[Incident]:
    """Every incident the user may see at least as a stub (TLP:RED not named)."""
    return Incident.objects.restrict(user, "view_stub").select_related(
        "affected_organisation", "handling_cert", "escalated_to"
    )


def fully_visible_ids(user: UserLike | None, ids: list[int]) -> set[int]:
    return set(Incident.objects.restrict(user, "view").filter(pk__in=ids).values_list("pk", flat=True))


def access_incident(user: UserLike | None, incident_id: int) -> tuple[Incident, bool]:
    """The incident and whether the user may see all of it (False: the stub only)."""
    incident = incidents_for(user).filter(pk=incident_id).first()
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    return incident, bool(fully_visible_ids(user, [incident.pk]))


def filter_incidents(
    queryset: QuerySet[Incident],
    *,
    viewer: UserLike | None = None,
    status: str | None = None,
    severity_at_least: int | None = None,
    taxonomy: str | None = None,
    organisation: str | None = None,
    handling_cert: str | None = None,
    open_only: bool = False,
    overdue_at: dt.datetime | None = None,
) -> QuerySet[Incident]:
    if status:
        queryset = queryset.filter(status=status)
    if severity_at_least is not None:
        queryset = queryset.filter(severity__gte=severity_at_least)
    if taxonomy:
        # A stub withholds its classification, so filtering on it must not reveal it either: only
        # incidents the viewer sees in full can match.
        full = Incident.objects.restrict(viewer, "view").filter(classification_taxonomy=taxonomy)
        queryset = queryset.filter(pk__in=full.values("pk"))
    if organisation:
        queryset = queryset.filter(affected_organisation__slug=organisation)
    if handling_cert:
        queryset = queryset.filter(handling_cert__slug=handling_cert) | queryset.filter(
            escalated_to__slug=handling_cert
        )
    if open_only:
        queryset = queryset.filter(status__in=OPEN_STATUSES)
    if overdue_at is not None:
        queryset = queryset.filter(status__in=OPEN_STATUSES, next_deadline_at__lt=overdue_at)
    return queryset


def queue_order(queryset: QuerySet[Incident]) -> QuerySet[Incident]:
    """Most urgent first: the earliest unmet deadline (overdue ones are the earliest), then severity."""
    from django.db.models import F

    return queryset.order_by(F("next_deadline_at").asc(nulls_last=True), "-severity", "-created_at", "-id")


def incident_clocks(incident: Incident, now: dt.datetime) -> list[StageState]:
    profile = load_profiles().get(incident.reporting_profile)
    events = {"awareness": incident.aware_at, "classification": incident.classified_at}
    if incident.detected_at:
        events["detection"] = incident.detected_at
    met = {stage.stage: stage.submitted_at for stage in incident.stage_reports.all()}
    return evaluate(profile, events=events, met=met, now=now)


def next_deadline_of(incident: Incident, now: dt.datetime) -> dt.datetime | None:
    state = next_deadline(incident_clocks(incident, now))
    return state.due_at if state else None
