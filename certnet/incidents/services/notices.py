"""Who is told what about incidents and reports, and how much a notification may say.

The rule (docs/incidents.md, "Notifications and service-level clocks"):

* Only people who may see the record in full are told (certnet.core.visibility decides), so a TLP:RED
  incident reaches its named readers and nobody who would see only its stub.
* A notification names the record by reference (INC-12, R-7), says what happened and links to it. The
  record's title, and any free-text reason, are added only when the record is TLP:CLEAR, GREEN or
  AMBER; AMBER+STRICT and RED carry the reference and the link alone, because the same text goes out by
  e-mail, which leaves the platform. A description is never included.
* Nobody is told about their own action.

The callers are the services that change incidents and the clock sweep; each calls one function here
inside its own transaction, and the e-mail leaves only after that transaction commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.urls import reverse

from certnet.accounts.models import User
from certnet.accounts.selectors import members_by_organisation
from certnet.core.roles import Role
from certnet.core.tlp import TLP
from certnet.core.visibility import facts_of, may, principal_for, spec_of
from certnet.incidents import selectors
from certnet.incidents.models import Incident, Report
from certnet.incidents.models_handling import ClockKind
from certnet.notifications.models import Notification
from certnet.notifications.services import compose, deliver
from certnet.registry.models import Organisation

# Records at these labels may have their title in a notification (and so in an e-mail).
TITLE_ALLOWED = frozenset({TLP.CLEAR, TLP.GREEN, TLP.AMBER})


def new_report_event(report: Report, cert: Organisation) -> str:
    return f"reported by {report.reporting_organisation.display_name} for {cert.display_name} to triage"


def people_of(organisation_ids: Iterable[int | None], least: Role) -> list[User]:
    """The active members holding at least `least` in any of the organisations."""
    ids = {pk for pk in organisation_ids if pk is not None}
    if not ids:
        return []
    members = members_by_organisation(ids, least)
    return list({user.pk: user for people in members.values() for user in people}.values())


def when(moment: dt.datetime) -> str:
    return f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"


def incident_link(incident: Incident) -> str:
    return reverse("incident-detail", kwargs={"incident_id": incident.pk})


def report_link(report: Report) -> str:
    return reverse("report-detail", kwargs={"report_id": report.pk})


def _reference(record: Incident | Report) -> str:
    return record.reference if isinstance(record, Incident) else f"R-{record.pk}"


def tell(
    record: Incident | Report,
    recipients: Iterable[User],
    *,
    kind: str,
    event: str,
    detail: str = "",
    actor: User | None = None,
) -> list[Notification]:
    """Notify those of `recipients` who may see `record` in full. `event` says what happened without
    any of the record's content ("escalated to National CERT"); `detail` is free text from the record
    or the actor (a reason) and, like the title, goes out only below AMBER+STRICT."""
    return deliver(compose_tell(record, recipients, kind=kind, event=event, detail=detail, actor=actor))


def compose_tell(
    record: Incident | Report,
    recipients: Iterable[User],
    *,
    kind: str,
    event: str,
    detail: str = "",
    actor: User | None = None,
) -> list[Notification]:
    """What `tell` would write, unsaved, for a caller that delivers many records' notices at once."""
    facts = facts_of(record)
    spec = spec_of(type(record))
    allowed = [
        user
        for user in {user.pk: user for user in recipients}.values()
        if (actor is None or user.pk != actor.pk) and may(principal_for(user), "view", facts, spec)
    ]
    if not allowed:
        return []
    reference = _reference(record)
    tlp = TLP(record.tlp)
    subject = f"{reference} {event}"
    lines = [f"{reference} {event}."]
    if tlp in TITLE_ALLOWED:
        subject += f": {record.title}"
        lines.append(f"Title: {record.title}")
        if detail:
            lines.append(detail)
    else:
        lines.append(f"Marked {tlp.label}: open the link to read the details.")
    link = incident_link(record) if isinstance(record, Incident) else report_link(record)
    return compose(allowed, kind=kind, subject=subject, body="\n".join(lines), link=link)


def _display(organisation: Organisation | None) -> str:
    return organisation.display_name if organisation is not None else "no CERT"


# --- events of the handling services ----------------------------------------------------------------


def incident_assigned(incident: Incident, actor: User) -> list[Notification]:
    if incident.assignee is None:
        return []
    return tell(
        incident,
        [incident.assignee],
        kind="assignment",
        event=f"assigned to you by {actor.get_username()}",
        actor=actor,
    )


def incident_escalated(
    incident: Incident, target: Organisation, rule: str, reason: str, actor: User
) -> list[Notification]:
    """Escalated (by a rule or by hand): the managers of the CERT that now has it."""
    how = "by hand" if rule == "manual" else f"automatically ({rule})"
    return tell(
        incident,
        people_of([target.pk], Role.MANAGER),
        kind="escalation",
        event=f"escalated to {target.display_name} {how}",
        detail=f"Reason: {reason}",
        actor=actor,
    )


def incident_de_escalated(
    incident: Incident, source: Organisation, target: Organisation, reason: str, actor: User
) -> list[Notification]:
    """Returned one tier down: the managers of the CERT that takes it back, which must now act on it,
    and the assignee. The CERT giving it up decided so itself."""
    recipients = people_of([target.pk], Role.MANAGER)
    if incident.assignee is not None:
        recipients.append(incident.assignee)
    return tell(
        incident,
        recipients,
        kind="de-escalation",
        event=f"returned from {source.display_name} to {target.display_name}",
        detail=f"Reason: {reason}",
        actor=actor,
    )


# --- the clock sweep ------------------------------------------------------------------------------


def stage_alert(
    incident: Incident, *, stage: str, due_at: dt.datetime, kind: str, day: dt.date
) -> list[Notification]:
    """A statutory stage coming due: the handling CERT's managers and the affected organisation's
    analysts (who file it). Overdue: also the managers of the CERT it is escalated to and of the next
    CERT up from the handling CERT."""
    certs: list[int | None] = [incident.handling_cert_id]
    if kind == ClockKind.OVERDUE:
        above = selectors.certs_above(incident.handling_cert, day)
        certs += [incident.escalated_to_id, *(cert.pk for cert in above[:1])]
        event = f"{stage} overdue since {when(due_at)}"
    else:
        event = f"{stage} due at {when(due_at)}"
    recipients = people_of(certs, Role.MANAGER) + people_of([incident.affected_organisation_id], Role.ANALYST)
    notice = "stage-overdue" if kind == ClockKind.OVERDUE else "stage-due"
    return tell(incident, recipients, kind=notice, event=event)


def service_level_alert(
    report: Report, cert: Organisation | None, *, clock: str, due_at: dt.datetime, kind: str
) -> list[Notification]:
    """The CERT's own service level on a report: its handlers and managers."""
    if cert is None:
        return []
    late = kind == ClockKind.OVERDUE
    event = f"{clock}: {'overdue since' if late else 'due at'} {when(due_at)} ({_display(cert)})"
    return tell(
        report,
        people_of([cert.pk], Role.HANDLER),
        kind="sla-overdue" if late else "sla-due",
        event=event,
    )
