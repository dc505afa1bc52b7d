"""Incident reporting and handling. Each function is one transaction: it checks the actor's right
through certnet.core.visibility, validates completely before writing, appends to the audit log and
to the incident's timeline."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from certnet.accounts.models import User
from certnet.accounts.selectors import get_user_by_username
from certnet.core import audit, clock, statements
from certnet.core.errors import FieldError, Forbidden, IllegalTransition, InvalidInput, invalid
from certnet.core.roles import Role
from certnet.core.tlp import TLP
from certnet.core.visibility import may_lower_tlp, principal_for, require
from certnet.incidents import jobs, selectors
from certnet.incidents.clocks import load_profiles
from certnet.incidents.models import (
    Channel,
    Escalation,
    Incident,
    IncidentStatus,
    Report,
    ReportStatus,
    StageReport,
)
from certnet.incidents.models_handling import CustodyAction
from certnet.incidents.services import notices, service_levels
from certnet.incidents.services.trail import custody, timeline_event
from certnet.incidents.taxonomy import rsit
from certnet.registry.models import Organisation
from certnet.registry.selectors import chain_ids, cii_system_named, descendants_of, is_cii_operator

SIGNIFICANT_SEVERITY = 3  # NCISS "High" and above escalate to the National CERT tier
CII_SECTIONS = ["s. 6", "s. 7", "s. 8"]  # PECA-2016: offences against critical infrastructure
ORDINARY_SECTIONS = ["s. 3", "s. 4", "s. 5"]


def _require(actor: User, action: str, record: Any, what: str) -> None:
    require(actor, action, record, label=f"{what} {record.pk}")


def _tlp(value: str | None, default: TLP) -> TLP:
    try:
        return TLP.parse(value) if value else default
    except ValueError as exc:
        raise invalid("tlp", str(exc)) from None


def _severity(value: int | None, loc: str = "severity") -> int:
    if value is None or not 0 <= value <= 5:
        raise invalid(loc, f"{value!r} is not a national severity level (0 Baseline … 5 Emergency)")
    return value


# --- intake ---------------------------------------------------------------------------------------


@dataclass
class ReportInput:
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
    channel: str = Channel.API
    named_users: Sequence[str] = field(default_factory=list)


@transaction.atomic
def submit_report(*, actor: User, data: ReportInput) -> Report:
    """A member (analyst or above) of the reporting organisation reports an incident affecting it or
    an organisation below it."""
    return create_report(actor=actor, data=data)


def create_report(*, actor: User, data: ReportInput) -> Report:
    """`submit_report` inside the caller's transaction, for a caller that stores more with the report
    (its attachments) and would otherwise pay for a savepoint on every report."""
    principal = principal_for(actor)
    reporter = statements.get_by(Organisation, slug=data.reporting_organisation)
    if reporter is None or reporter.pk not in principal.orgs_with(Role.VIEWER):
        raise Forbidden(
            f"you may only report for an organisation you belong to, not {data.reporting_organisation!r}"
        )
    if reporter.pk not in principal.orgs_with(Role.ANALYST):
        raise Forbidden(f"reporting for {reporter.slug} needs the analyst role or above")
    errors: list[FieldError] = []
    affected = reporter
    if data.affected_organisation and data.affected_organisation != reporter.slug:
        found = Organisation.objects.filter(slug=data.affected_organisation).first()
        if found is None or found.pk not in descendants_of([reporter.pk]):
            errors.append(
                FieldError(
                    "affected_organisation",
                    f"{data.affected_organisation!r} is not {reporter.slug} "
                    "or an organisation that reports to it",
                )
            )
        else:
            affected = found
    system = None
    if data.cii_system:
        try:
            system = cii_system_named(affected, data.cii_system)
        except InvalidInput as error:
            errors.extend(error.errors)
    if not data.title.strip():
        errors.append(FieldError("title", "must not be empty"))
    if len(data.title) > 200:
        errors.append(FieldError("title", f"is {len(data.title)} characters long; the limit is 200"))
    if not data.description.strip():
        errors.append(FieldError("description", "must not be empty"))
    now = clock.now()
    if data.aware_at > now:
        errors.append(FieldError("aware_at", "is in the future"))
    if data.detected_at and data.detected_at > now:
        errors.append(FieldError("detected_at", "is in the future"))
    taxonomy, kind = data.classification_taxonomy, data.classification_type
    if taxonomy or kind:
        try:
            taxonomy, kind = rsit().classify(taxonomy, kind)
        except InvalidInput as exc:
            errors.extend(exc.errors)
    if data.severity is not None and not 0 <= data.severity <= 5:
        errors.append(FieldError("severity", f"{data.severity} is not a national severity level (0-5)"))
    if data.channel not in Channel.values:
        errors.append(FieldError("channel", f"{data.channel!r} is not one of {', '.join(Channel.values)}"))
    tlp = TLP.AMBER
    try:
        tlp = _tlp(data.tlp, TLP.AMBER)
    except InvalidInput as exc:
        errors.extend(exc.errors)
    named = named_recipients(affected, data.named_users, errors)
    if tlp == TLP.RED and not named:
        errors.append(
            FieldError("named_users", "a TLP:RED report must name who may read it (e.g. your CERT's handler)")
        )
    if errors:
        raise InvalidInput("the report is not valid: " + "; ".join(str(e) for e in errors), errors=errors)
    report = Report(
        channel=data.channel,
        reporting_organisation=reporter,
        affected_organisation=affected,
        cii_system=system,
        submitted_by=actor,
        title=data.title.strip(),
        description=data.description,
        classification_taxonomy=taxonomy,
        classification_type=kind,
        severity=data.severity,
        aware_at=data.aware_at,
        detected_at=data.detected_at,
        received_at=now,
        tlp=tlp,
    )
    statements.insert(report)
    if named:  # a new report has none to clear
        report.named_users.set(named)
    audit.record(
        actor=actor,
        action="incidents.report.submit",
        target=report,
        organisation_id=affected.pk,
        data={
            "title": report.title,
            "channel": report.channel,
            "tlp": str(tlp),
            "named_users": [u.username for u in named],
        },
    )
    jobs.announce_after_commit()
    return report


def named_recipients(
    affected: Organisation, usernames: Sequence[str], errors: list[FieldError]
) -> list[User]:
    """TLP:RED recipients: people of the affected organisation or of a CERT on its reporting chain."""
    if not usernames:
        return []
    allowed_orgs = {affected.pk, *chain_ids(affected.pk)}
    users = list(
        User.objects.filter(
            username__in=list(usernames), is_active=True, memberships__organisation_id__in=allowed_orgs
        ).distinct()
    )
    unknown = sorted(set(usernames) - {u.username for u in users})
    if unknown:
        errors.append(
            FieldError(
                "named_users", f"not people of {affected.slug} or its CERT chain: {', '.join(unknown)}"
            )
        )
    return users


def _incident_tlp(actor: User, report: Report, requested: str | None) -> TLP:
    """The incident keeps the report's TLP unless raised; lowering it is the owner's decision alone."""
    current = TLP(report.tlp)
    tlp = _tlp(requested, current)
    if current.is_stricter_than(tlp) and not may_lower_tlp(actor, report):
        raise Forbidden(
            f"only {report.affected_organisation.slug} may lower the report's TLP from {current.label}"
        )
    return tlp


# --- triage ---------------------------------------------------------------------------------------


@dataclass
class TriageInput:
    classification_taxonomy: str
    classification_type: str
    severity: int
    title: str | None = None
    tlp: str | None = None
    involved_organisations: Sequence[str] = field(default_factory=list)


@transaction.atomic
def triage_report(*, actor: User, report: Report, data: TriageInput) -> Incident:
    """Open an incident from a new report (a handler of a CERT above the affected organisation)."""
    report = Report.objects.select_for_update().get(pk=report.pk)
    _require(actor, "triage", report, "report")
    if report.status != ReportStatus.NEW:
        raise IllegalTransition(f"report {report.pk} is already {report.status}")
    taxonomy, kind = rsit().classify(data.classification_taxonomy, data.classification_type)
    severity = _severity(data.severity)
    involved = _involved(actor, data.involved_organisations)
    day = report.aware_at.date()
    affected = report.affected_organisation
    handler = selectors.handling_cert_for(affected, day)
    if handler is None:
        raise invalid("affected_organisation", f"{affected.slug} has no CERT above it on {day}")
    profile = load_profiles().profile_for(kind=affected.kind, sector=affected.sector)
    cii = report.cii_system_id is not None or is_cii_operator(affected, day)
    now = clock.now()
    incident = Incident.objects.create(
        title=(data.title or report.title).strip()[:200],
        description=report.description,
        classification_taxonomy=taxonomy,
        classification_type=kind,
        severity=severity,
        tlp=_incident_tlp(actor, report, data.tlp),
        affected_organisation=affected,
        cii_system=report.cii_system,
        handling_cert=handler,
        created_by=actor,
        reporting_profile=profile.slug,
        peca_sections=CII_SECTIONS if cii else ORDINARY_SECTIONS,
        aware_at=report.aware_at,
        detected_at=report.detected_at,
        classified_at=now,
        created_at=now,
    )
    incident.named_users.set(report.named_users.all())
    if report.submitted_by_id:
        incident.named_users.add(report.submitted_by_id)
    _involve(incident, involved, day)
    report.status, report.incident = ReportStatus.TRIAGED, incident
    report.save(update_fields=["status", "incident"])
    _evidence_follows(actor, report, incident)
    service_levels.mark_acknowledged(report)
    audit.record(
        actor=actor,
        action="incidents.incident.open",
        target=incident,
        organisation_id=affected.pk,
        data={
            "report": report.pk,
            "severity": severity,
            "classification": f"{taxonomy}/{kind}",
            "handling_cert": handler.slug,
            "profile": profile.slug,
        },
    )
    timeline_event(
        incident, actor, "opened", f"opened from report R-{report.pk}; handled by {handler.display_name}"
    )
    _auto_escalate(actor, incident, day)
    _refresh_deadline(incident)
    return incident


def _evidence_follows(actor: User, report: Report, incident: Incident) -> None:
    """The report's files are now read through the incident too: say so in each file's custody."""
    for evidence in report.evidence.all():
        custody(
            evidence, actor, CustodyAction.ATTACHED, f"report R-{report.pk} is part of {incident.reference}"
        )


def _involved(actor: User, slugs: Sequence[str]) -> list[Organisation]:
    found = list(Organisation.objects.restrict(actor, "view").filter(slug__in=list(slugs)))
    missing = sorted(set(slugs) - {o.slug for o in found})
    if missing:
        raise invalid("involved_organisations", f"no organisation {', '.join(repr(m) for m in missing)}")
    return found


def _involve(incident: Incident, organisations: list[Organisation], day: dt.date) -> None:
    """Other affected organisations see the incident, and so do their handling CERTs."""
    for organisation in organisations:
        incident.involved_organisations.add(organisation)
        handler = selectors.handling_cert_for(organisation, day)
        if handler is not None:
            incident.involved_organisations.add(handler)


@transaction.atomic
def merge_report(*, actor: User, report: Report, incident_id: int) -> Incident:
    report = Report.objects.select_for_update().get(pk=report.pk)
    _require(actor, "triage", report, "report")
    # The target is a reference in the request: one the actor cannot see answers like a missing one.
    incident = selectors.incidents_for(actor).filter(pk=incident_id).first()
    if incident is None:
        raise invalid("incident", f"no incident {incident_id}")
    _require(actor, "handle", incident, "incident")
    if report.status != ReportStatus.NEW:
        raise IllegalTransition(f"report {report.pk} is already {report.status}")
    if incident.status not in selectors.OPEN_STATUSES:
        raise IllegalTransition(f"incident {incident.pk} is {incident.status}; merge into an open incident")
    report.status, report.incident = ReportStatus.MERGED, incident
    report.save(update_fields=["status", "incident"])
    _evidence_follows(actor, report, incident)
    service_levels.mark_acknowledged(report)
    if report.affected_organisation_id != incident.affected_organisation_id:
        _involve(incident, [report.affected_organisation], report.aware_at.date())
        _auto_escalate(actor, incident, report.aware_at.date())
    audit.record(
        actor=actor,
        action="incidents.report.merge",
        target=report,
        organisation_id=report.affected_organisation_id,
        data={"incident": incident.pk},
    )
    timeline_event(
        incident,
        actor,
        "report-merged",
        f"report R-{report.pk} from {report.reporting_organisation.slug} added",
    )
    return incident


@transaction.atomic
def reject_report(*, actor: User, report: Report, reason: str) -> Report:
    report = Report.objects.select_for_update().get(pk=report.pk)
    _require(actor, "triage", report, "report")
    if report.status != ReportStatus.NEW:
        raise IllegalTransition(f"report {report.pk} is already {report.status}")
    if not reason.strip():
        raise invalid("reason", "say why the report is rejected")
    report.status = ReportStatus.REJECTED
    report.save(update_fields=["status"])
    service_levels.mark_report_answered(report)
    audit.record(
        actor=actor,
        action="incidents.report.reject",
        target=report,
        organisation_id=report.affected_organisation_id,
        data={"reason": reason},
    )
    return report


# --- escalation -----------------------------------------------------------------------------------


def _top(incident: Incident) -> Organisation:
    return incident.escalated_to or incident.handling_cert


def _auto_escalate(actor: User, incident: Incident, day: dt.date) -> None:
    """Escalate one tier up when the incident is significant or touches CII, and to the lowest CERT
    above every handling CERT when it spans organisations under different CERTs."""
    handlers = {incident.handling_cert}
    for organisation in incident.involved_organisations.all():
        if organisation.is_cert:
            handlers.add(organisation)
    rules: list[tuple[str, str, Organisation]] = []
    if len(handlers) > 1:
        common = selectors.lowest_common_cert(list(handlers), day)
        if common is not None:
            names = ", ".join(sorted(h.display_name for h in handlers))
            rules.append(("cross-cert", f"spans organisations under different CERTs ({names})", common))
    above = selectors.certs_above(incident.handling_cert, day)
    if above:
        if incident.severity >= SIGNIFICANT_SEVERITY:
            rules.append(("severity", f"severity {incident.severity} is significant (3 or above)", above[0]))
        if incident.peca_sections == CII_SECTIONS:
            rules.append(("cii", "a designated Critical Information Infrastructure is affected", above[0]))
    for rule, reason, target in rules:
        current = _top(incident)
        if target == current or not _is_above(target, current, day):
            continue  # already there, or already escalated beyond it
        _escalate(actor, incident, target, rule, reason)


def _is_above(candidate: Organisation, cert: Organisation, day: dt.date) -> bool:
    return candidate in selectors.certs_above(cert, day)


def _escalate(actor: User, incident: Incident, target: Organisation, rule: str, reason: str) -> None:
    source = _top(incident)
    Escalation.objects.create(
        incident=incident,
        direction="up",
        from_cert=source,
        to_cert=target,
        rule=rule,
        reason=reason,
        actor_label=actor.get_username(),
        at=clock.now(),
    )
    incident.escalated_to = target
    incident.save(update_fields=["escalated_to"])
    audit.record(
        actor=actor,
        action="incidents.incident.escalate",
        target=incident,
        organisation_id=incident.affected_organisation_id,
        data={"from": source.slug, "to": target.slug, "rule": rule, "reason": reason},
    )
    timeline_event(incident, actor, "escalated", f"escalated to {target.display_name}: {reason}", rule=rule)
    notices.incident_escalated(incident, target, rule, reason, actor)


@transaction.atomic
def escalate_incident(*, actor: User, incident: Incident, reason: str) -> Incident:
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    _require(actor, "handle", incident, "incident")
    if not reason.strip():
        raise invalid("reason", "say why the incident is escalated")
    above = selectors.certs_above(_top(incident), clock.today())
    if not above:
        raise IllegalTransition(f"{_top(incident).display_name} has no CERT above it")
    _escalate(actor, incident, above[0], "manual", reason)
    return incident


@transaction.atomic
def de_escalate_incident(*, actor: User, incident: Incident, reason: str) -> Incident:
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    _require(actor, "handle", incident, "incident")
    if incident.escalated_to is None:
        raise IllegalTransition(f"incident {incident.pk} is not escalated")
    if not reason.strip():
        raise invalid("reason", "say why the incident is de-escalated")
    source = incident.escalated_to
    below = [
        c
        for c in selectors.certs_above(incident.handling_cert, clock.today())
        if _is_above(source, c, clock.today())
    ]
    target = below[-1] if below else incident.handling_cert
    Escalation.objects.create(
        incident=incident,
        direction="down",
        from_cert=source,
        to_cert=target,
        rule="manual",
        reason=reason,
        actor_label=actor.get_username(),
        at=clock.now(),
    )
    incident.escalated_to = None if target == incident.handling_cert else target
    incident.save(update_fields=["escalated_to"])
    audit.record(
        actor=actor,
        action="incidents.incident.de_escalate",
        target=incident,
        organisation_id=incident.affected_organisation_id,
        data={"from": source.slug, "to": target.slug, "reason": reason},
    )
    timeline_event(incident, actor, "de-escalated", f"returned to {target.display_name}: {reason}")
    notices.incident_de_escalated(incident, source, target, reason, actor)
    return incident


# --- handling -------------------------------------------------------------------------------------

S = IncidentStatus
STATUS_MOVES: dict[str, set[str]] = {
    S.TRIAGED: {S.IN_PROGRESS, S.REJECTED, S.MERGED},
    S.IN_PROGRESS: {S.CONTAINED, S.RESOLVED},
    S.CONTAINED: {S.IN_PROGRESS, S.RESOLVED},
    S.RESOLVED: {S.CLOSED, S.IN_PROGRESS},
    S.CLOSED: set(),
    S.MERGED: set(),
    S.REJECTED: set(),
}


@transaction.atomic
def change_status(*, actor: User, incident: Incident, to_status: str, note: str = "") -> Incident:
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    _require(actor, "handle", incident, "incident")
    if to_status not in S.values:
        raise invalid("status", f"{to_status!r} is not an incident status ({', '.join(S.values)})")
    allowed = STATUS_MOVES[incident.status]
    if to_status not in allowed:
        options = ", ".join(sorted(allowed)) or "none: it is final"
        raise IllegalTransition(
            f"an incident that is {incident.status} cannot become {to_status}; it can become: {options}"
        )
    if to_status == S.MERGED:
        raise invalid("status", "merge an incident by merging its reports into the other incident")
    previous = incident.status
    incident.status = to_status
    incident.save(update_fields=["status"])
    _refresh_deadline(incident)
    audit.record(
        actor=actor,
        action="incidents.incident.status",
        target=incident,
        organisation_id=incident.affected_organisation_id,
        data={"from": previous, "to": to_status, "note": note},
    )
    timeline_event(incident, actor, "status", f"{previous} → {to_status}" + (f": {note}" if note else ""))
    if to_status == S.IN_PROGRESS:  # taking the incident up answers the reports that opened it
        service_levels.mark_first_response(incident, actor)
    return incident


@transaction.atomic
def assign_incident(*, actor: User, incident: Incident, assignee_username: str | None) -> Incident:
    """Give the incident to a handler of the handling CERT (or of the CERT it is escalated to)."""
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    _require(actor, "handle", incident, "incident")
    # Only now, with the right established, is the name resolved: nobody probes for usernames.
    assignee = get_user_by_username(assignee_username) if assignee_username else None
    if assignee_username and (assignee is None or not assignee.is_active):
        raise invalid("assignee", f"no user {assignee_username!r}")
    if assignee is not None:
        teams = {incident.handling_cert_id, incident.escalated_to_id} - {None}
        if not set(principal_for(assignee).orgs_with(Role.HANDLER)) & teams:
            raise invalid(
                "assignee", f"{assignee.username} is not a handler of the CERT handling this incident"
            )
    incident.assignee = assignee
    incident.save(update_fields=["assignee"])
    who = assignee.username if assignee else None
    audit.record(
        actor=actor,
        action="incidents.incident.assign",
        target=incident,
        organisation_id=incident.affected_organisation_id,
        data={"assignee": who},
    )
    timeline_event(incident, actor, "assigned", f"assigned to {who}" if who else "unassigned")
    notices.incident_assigned(incident, actor)
    return incident


@transaction.atomic
def submit_stage_report(
    *, actor: User, incident: Incident, stage: str, content: dict[str, Any]
) -> StageReport:
    """The affected organisation files a statutory stage (early warning, notification, final report)."""
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    _require(actor, "file_stage", incident, "incident")
    profile = load_profiles().get(incident.reporting_profile)
    stages = {spec.slug: spec for spec in profile.stages}
    if stage not in stages:
        raise invalid("stage", f"{stage!r} is not a stage of {profile.name}: {', '.join(stages)}")
    if incident.stage_reports.filter(stage=stage).exists():
        raise IllegalTransition(f"the {stages[stage].name} was already filed")
    filed = StageReport.objects.create(
        incident=incident,
        stage=stage,
        submitted_at=clock.now(),
        submitted_by=actor,
        content=audit.without_floats(content),
    )
    _refresh_deadline(incident)
    audit.record(
        actor=actor,
        action="incidents.stage_report.submit",
        target=filed,
        organisation_id=incident.affected_organisation_id,
        data={"incident": incident.pk, "stage": stage},
    )
    timeline_event(incident, actor, "stage-report", f"{stages[stage].name} filed")
    return filed


def _refresh_deadline(incident: Incident) -> None:
    due = (
        selectors.next_deadline_of(incident, clock.now())
        if incident.status in selectors.OPEN_STATUSES
        else None
    )
    if due != incident.next_deadline_at:
        incident.next_deadline_at = due
        incident.save(update_fields=["next_deadline_at"])
