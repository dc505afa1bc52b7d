"""Reads of reports and incidents, always through visibility; routing facts from the registry."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.db.models import F, OuterRef, Q, QuerySet, Subquery

from certnet.core.errors import Forbidden, NotFound, invalid
from certnet.incidents.clocks import StageState, evaluate, load_profiles, next_deadline
from certnet.incidents.models import Comment, Escalation, Incident, IncidentStatus, Report, Task
from certnet.registry.models import Organisation, OrganisationKind, ReportingLine
from certnet.registry.selectors import holder_of_function

if TYPE_CHECKING:
    from certnet.core.visibility import UserLike

# The tiers of the CERT network, as the `tier` filter names them, and the organisation kind of each.
TIERS = {
    "national": OrganisationKind.NATIONAL_CERT,
    "provincial": OrganisationKind.PROVINCIAL_CERT,
    "sectoral": OrganisationKind.SECTORAL_CERT,
    "organisational": OrganisationKind.ORGANISATIONAL_CERT,
}
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


def lowest_common_cert(certs: list[Organisation], day: dt.date) -> Organisation | None:
    """The lowest CERT that is, or stands above, every one of the given CERTs on `day`."""
    if not certs:
        return None
    lines = [[cert, *certs_above(cert, day)] for cert in certs]
    for candidate in lines[0]:
        if all(candidate in line for line in lines[1:]):
            return candidate
    return None


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
        "affected_organisation", "handling_cert", "escalated_to", "assignee"
    )


def triageable_report_ids(user: UserLike | None, ids: list[int]) -> set[int]:
    """Which of these reports the user may triage, in one query."""
    return set(Report.objects.restrict(user, "triage").filter(pk__in=ids).values_list("pk", flat=True))


def fully_visible_ids(user: UserLike | None, ids: list[int]) -> set[int]:
    return set(Incident.objects.restrict(user, "view").filter(pk__in=ids).values_list("pk", flat=True))


def access_incident(user: UserLike | None, incident_id: int) -> tuple[Incident, bool]:
    """The incident and whether the user may see all of it (False: the stub only)."""
    incident = incidents_for(user).filter(pk=incident_id).first()
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    return incident, bool(fully_visible_ids(user, [incident.pk]))


def access_incident_in_full(user: UserLike | None, incident_id: int) -> Incident:
    """The incident, for reading its working records (tasks, comments): NotFound when the user sees
    not even a stub, Forbidden when they see the stub only."""
    incident, full = access_incident(user, incident_id)
    if not full:
        raise Forbidden(f"incident {incident_id} is TLP:RED and you are not among its named readers")
    return incident


def tasks_of(incident: Incident) -> QuerySet[Task]:
    """An incident's tasks; the caller has established that the reader sees the incident in full."""
    return incident.tasks.select_related("owner", "created_by").order_by("created_at", "id")


def comments_of(incident: Incident) -> QuerySet[Comment]:
    """An incident's comments, oldest first; the caller has checked as for tasks_of."""
    return incident.comments.select_related("author").order_by("created_at", "id")


def escalated_incidents(user: UserLike | None) -> QuerySet[Incident]:
    """Every escalated incident the user sees (as a stub at least), the latest escalation first; for
    the National CERT, every escalated incident. `escalated_at` is when it last went up."""

    latest = Escalation.objects.filter(incident=OuterRef("pk"), direction="up").order_by("-at", "-id")
    return (
        incidents_for(user)
        .filter(escalated_to__isnull=False)
        .annotate(escalated_at=Subquery(latest.values("at")[:1]))
        .order_by(F("escalated_at").desc(nulls_last=True), "-id")
    )


def filter_incidents(
    queryset: QuerySet[Incident],
    *,
    viewer: UserLike | None = None,
    status: str | None = None,
    severity_at_least: int | None = None,
    taxonomy: str | None = None,
    organisation: str | None = None,
    handling_cert: str | None = None,
    tier: str | None = None,
    open_only: bool = False,
    overdue_at: dt.datetime | None = None,
) -> QuerySet[Incident]:
    if tier:
        kind = TIERS.get(tier)
        if kind is None:
            raise invalid("tier", f"{tier!r} is not a tier; use one of {', '.join(TIERS)}")
        # An incident sits at a tier when the CERT handling it, or the one it was escalated to, is there.
        queryset = queryset.filter(Q(handling_cert__kind=kind) | Q(escalated_to__kind=kind))
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
