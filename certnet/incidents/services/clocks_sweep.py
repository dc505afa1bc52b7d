"""The clock sweep: the background job that notices deadlines coming due and deadlines missed.

Statutory stages of open incidents and the handling CERT's service levels on reports are evaluated with
the same machinery the pages use (certnet.incidents.clocks.evaluate). Each deadline raises at most one
"coming due" alert (within CERTNET_DUE_SOON_HOURS of it) and one "overdue" alert, however often the
sweep runs and even when two sweeps overlap: a ClockAlert row is unique on (subject, clock, kind,
due_at), and each alert is written in its own transaction with everything it causes (timeline,
audit entry, notifications), so either all of it happens once or none of it.

Only candidates are read: open incidents whose earliest unmet deadline (`next_deadline_at`, indexed)
falls within the window, and reports still waiting for a service level whose receipt is old enough for
one to come due (`status, received_at`, indexed).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from certnet.core import audit, clock
from certnet.core.audit import SystemActor
from certnet.core.errors import DomainError
from certnet.incidents import selectors
from certnet.incidents.clocks import StageSpec, StageState, load_profiles
from certnet.incidents.models import Incident, Report, ReportStatus, TimelineEvent
from certnet.incidents.models_handling import ClockAlert, ClockKind
from certnet.incidents.services import notices, service_levels
from certnet.registry.models import Organisation

log = logging.getLogger(__name__)

SWEEPER = SystemActor("clock-sweep")
BATCH = 200  # records loaded (with their filed stages and alerts) per round trip


@dataclass
class SweepSummary:
    at: dt.datetime
    incidents: int = 0
    reports: int = 0
    due_soon: int = 0
    overdue: int = 0

    def __str__(self) -> str:
        return (
            f"clock sweep at {notices.when(self.at)}: looked at {self.incidents} incident(s) and "
            f"{self.reports} report(s); raised {self.due_soon} coming-due and {self.overdue} overdue alert(s)"
        )


AlertKey = tuple[str, str, str, dt.datetime]


def sweep(now: dt.datetime | None = None) -> SweepSummary:
    """Raise every alert that is due at `now` (default: the platform's clock) and not yet raised."""
    moment = now or clock.now()
    window = dt.timedelta(hours=settings.CERTNET_DUE_SOON_HOURS)
    summary = SweepSummary(at=moment)
    _sweep_incidents(moment, window, summary)
    _sweep_reports(moment, window, summary)
    return summary


def _batches(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), BATCH):
        yield list(ids[start : start + BATCH])


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC)


def _raised(subjects: Iterable[str]) -> set[AlertKey]:
    rows = ClockAlert.objects.filter(subject__in=list(subjects)).values_list(
        "subject", "clock", "kind", "due_at"
    )
    return {(subject, name, kind, _utc(due)) for subject, name, kind, due in rows}


def _soonest(stage: StageSpec) -> dt.timedelta:
    """The least time after its anchor a stage can fall due (a month is at least 28 days)."""

    def span(hours: int, days: int, months: int) -> dt.timedelta:
        return dt.timedelta(hours=hours, days=days + 28 * months)

    least = span(stage.hours, stage.days, stage.months)
    if stage.latest is not None:
        least = min(least, span(stage.latest.hours, stage.latest.days, stage.latest.months))
    return least


def _kind_of(state: StageState, spec: StageSpec, now: dt.datetime, window: dt.timedelta) -> str | None:
    """Which alert a stage calls for now: overdue, coming due, or none (met, no deadline, not yet).
    A stage is coming due within the window, or within the last quarter of its own time when that is
    shorter, so a 4-hour clock is not announced as coming due the moment it starts."""
    if not state.open or state.due_at is None:
        return None
    if state.state == "overdue":
        return ClockKind.OVERDUE
    warn = min(window, _soonest(spec) / 4)
    return ClockKind.DUE_SOON if _utc(state.due_at) - _utc(now) <= warn else None


def _once(**fields: Any) -> bool:
    """Write the alert row unless it exists (also when another sweep wrote it a moment ago)."""
    try:
        with transaction.atomic():
            ClockAlert.objects.create(**fields)
    except IntegrityError:
        return False
    return True


def _count(summary: SweepSummary, kind: str) -> None:
    if kind == ClockKind.OVERDUE:
        summary.overdue += 1
    else:
        summary.due_soon += 1


# --- statutory stages of incidents ---------------------------------------------------------------


def _sweep_incidents(now: dt.datetime, window: dt.timedelta, summary: SweepSummary) -> None:
    candidates = list(
        Incident.objects.filter(status__in=selectors.OPEN_STATUSES, next_deadline_at__lte=now + window)
        .order_by("next_deadline_at", "pk")
        .values_list("pk", flat=True)
    )
    for ids in _batches(candidates):
        incidents = (
            Incident.objects.filter(pk__in=ids)
            .select_related("affected_organisation", "handling_cert", "escalated_to")
            .prefetch_related("stage_reports")
            .order_by("next_deadline_at", "pk")
        )
        raised = _raised(f"incident:{pk}" for pk in ids)
        for incident in incidents:
            summary.incidents += 1
            try:
                profile = load_profiles().get(incident.reporting_profile)
                states = selectors.incident_clocks(incident, now)
            except DomainError as exc:  # its reporting profile was removed from the data file
                log.warning("clock sweep skips %s: %s", incident.reference, exc.detail)
                continue
            for state in states:
                kind = _kind_of(state, profile.stage(state.slug), now, window)
                if kind is None or state.due_at is None:
                    continue
                key = (f"incident:{incident.pk}", state.slug, kind, _utc(state.due_at))
                if key not in raised and _stage_alert(incident, state, kind, state.due_at, now):
                    _count(summary, kind)


def _stage_alert(
    incident: Incident, state: StageState, kind: str, due_at: dt.datetime, now: dt.datetime
) -> bool:
    with transaction.atomic():
        fresh = _once(
            subject=f"incident:{incident.pk}",
            incident=incident,
            clock=state.slug,
            kind=kind,
            due_at=due_at,
            raised_at=now,
        )
        if not fresh:
            return False
        if kind == ClockKind.OVERDUE:
            TimelineEvent.objects.create(
                incident=incident,
                at=now,
                actor_label=SWEEPER.get_username(),
                kind="stage-overdue",
                summary=f"{state.name} overdue since {notices.when(due_at)}",
                data={"stage": state.slug, "due_at": _utc(due_at).isoformat()},
            )
        audit.record(
            actor=SWEEPER,
            action=f"incidents.clock.{kind.replace('-', '_')}",
            target=incident,
            organisation_id=incident.affected_organisation_id,
            data={"clock": state.slug, "due_at": _utc(due_at).isoformat()},
        )
        notices.stage_alert(incident, stage=state.name, due_at=due_at, kind=kind, day=now.date())
    return True


# --- the CERT's service levels on reports ----------------------------------------------------------


def _sweep_reports(now: dt.datetime, window: dt.timedelta, summary: SweepSummary) -> None:
    clocked = {
        stage.slug: stage
        for stage in load_profiles().service_levels.stages
        if stage.slug in service_levels.MARKS and not stage.optional
    }
    if not clocked:
        return
    waiting = Q()
    for slug in clocked:
        waiting |= Q(**{f"{service_levels.MARKS[slug]}__isnull": True})
    # A report stops being clocked once it is rejected or its incident is no longer open.
    still_open = Q(status=ReportStatus.NEW) | Q(
        status__in=[ReportStatus.TRIAGED, ReportStatus.MERGED], incident__status__in=selectors.OPEN_STATUSES
    )
    # No service level runs from earlier than the receipt, so none can fall due before this.
    old_enough = now + window - min(_soonest(stage) for stage in clocked.values())
    candidates = list(
        Report.objects.filter(still_open, waiting, received_at__lte=old_enough)
        .order_by("received_at", "pk")
        .values_list("pk", flat=True)
    )
    certs: dict[tuple[int, dt.date], Organisation | None] = {}
    for ids in _batches(candidates):
        reports = Report.objects.filter(pk__in=ids).select_related(
            "affected_organisation", "reporting_organisation"
        )
        raised = _raised(f"report:{pk}" for pk in ids)
        for report in reports.order_by("received_at", "pk"):
            summary.reports += 1
            for state in service_levels.report_service_levels(report, now):
                spec = clocked.get(state.slug)
                kind = _kind_of(state, spec, now, window) if spec is not None else None
                if kind is None or state.due_at is None:
                    continue
                key = (f"report:{report.pk}", f"sla:{state.slug}", kind, _utc(state.due_at))
                if key in raised:
                    continue
                where = (report.affected_organisation_id, report.aware_at.date())
                if where not in certs:
                    certs[where] = selectors.handling_cert_for(report.affected_organisation, where[1])
                if _service_level_alert(report, certs[where], state, kind, state.due_at, now):
                    _count(summary, kind)


def _service_level_alert(
    report: Report,
    cert: Organisation | None,
    state: StageState,
    kind: str,
    due_at: dt.datetime,
    now: dt.datetime,
) -> bool:
    with transaction.atomic():
        fresh = _once(
            subject=f"report:{report.pk}",
            report=report,
            incident_id=report.incident_id,
            clock=f"sla:{state.slug}",
            kind=kind,
            due_at=due_at,
            raised_at=now,
        )
        if not fresh:
            return False
        audit.record(
            actor=SWEEPER,
            action=f"incidents.service_level.{kind.replace('-', '_')}",
            target=report,
            organisation_id=report.affected_organisation_id,
            data={
                "clock": state.slug,
                "due_at": _utc(due_at).isoformat(),
                "cert": cert.slug if cert else None,
            },
        )
        notices.service_level_alert(report, cert, clock=state.name, due_at=due_at, kind=kind)
    return True
