"""The handling CERT's own service levels (data/reporting_profiles.yaml, `service_levels`): a report is
acknowledged when the CERT first acts on it, and answered when the CERT first responds on the report or
on the incident it became part of. Only the first moment counts; later actions change nothing."""

from __future__ import annotations

import datetime as dt

from certnet.accounts.models import User
from certnet.core import clock
from certnet.core.roles import Role
from certnet.core.visibility import principal_for
from certnet.incidents.clocks import StageState, evaluate, load_profiles
from certnet.incidents.models import Incident, Report

# The service levels the platform can tell are met, by their slug in the profiles file, and the report
# field that records the moment. A service level with another slug has no such moment: it is shown as
# data but never clocked.
MARKS = {"acknowledge": "acknowledged_at", "first-response": "first_response_at"}


def acts_for_handling_side(actor: User, incident: Incident) -> bool:
    """True when the actor speaks for a CERT handling or above the incident, not for the organisation
    that is affected (whose own comments do not answer its own report)."""
    principal = principal_for(actor)
    if principal.is_platform_admin:
        return True
    certs = {incident.handling_cert_id, incident.escalated_to_id} - {None}
    return bool(certs & principal.orgs_with(Role.VIEWER)) or (
        incident.affected_organisation_id not in principal.orgs_with(Role.VIEWER)
        and incident.affected_organisation_id in principal.below(Role.VIEWER)
    )


def mark_acknowledged(report: Report, at: dt.datetime | None = None) -> None:
    if report.acknowledged_at is None:
        report.acknowledged_at = at or clock.now()
        Report.objects.filter(pk=report.pk, acknowledged_at__isnull=True).update(
            acknowledged_at=report.acknowledged_at
        )


def mark_first_response(incident: Incident, actor: User, at: dt.datetime | None = None) -> int:
    """Record the first response on every report of the incident still waiting for one, when the
    actor responds for the handling side. Returns how many reports it answered."""
    if not acts_for_handling_side(actor, incident):
        return 0
    moment = at or clock.now()
    waiting = Report.objects.filter(incident=incident, first_response_at__isnull=True)
    waiting.filter(acknowledged_at__isnull=True).update(acknowledged_at=moment)
    return waiting.update(first_response_at=moment)


def mark_report_answered(report: Report, at: dt.datetime | None = None) -> None:
    """A rejection with its reason is a response too."""
    moment = at or clock.now()
    mark_acknowledged(report, moment)
    if report.first_response_at is None:
        report.first_response_at = moment
        Report.objects.filter(pk=report.pk, first_response_at__isnull=True).update(first_response_at=moment)


def report_service_levels(report: Report, now: dt.datetime) -> list[StageState]:
    """Where the handling CERT stands on each service level of one report (met, met late, due at T,
    overdue since T), from the moment the report was received."""
    profile = load_profiles().service_levels
    met = {slug: getattr(report, field) for slug, field in MARKS.items()}
    states = evaluate(profile, events={"received": report.received_at}, met=met, now=now)
    return [state for state in states if state.slug in MARKS]
