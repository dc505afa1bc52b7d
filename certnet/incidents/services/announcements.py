"""Telling each handling CERT about its new reports, in batches.

A report is not announced by the request that files it: the request queues (at most once a second per
web worker, see certnet.incidents.jobs) a job that takes every report not yet announced and tells each
one's handling CERT. However many reports arrive in that second, the job reads the recipients and
their memberships once, writes all the notifications in one statement and queues one mail job, which
sends each person one message. A report whose job was lost is picked up by the next one, or by the
minute's sweep (certnet.incidents.tasks)."""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction

from certnet.accounts.models import User
from certnet.accounts.selectors import members_by_organisation, roles_of_users
from certnet.core import clock
from certnet.core.roles import Role
from certnet.core.visibility import principal_with_roles
from certnet.incidents import selectors
from certnet.incidents.models import Report
from certnet.incidents.models_handling import InboundMail
from certnet.incidents.services.notices import compose_tell, new_report_event
from certnet.notifications.models import Notification
from certnet.notifications.services import deliver
from certnet.registry.models import Organisation

BATCH = 500


def announce_pending_reports(*, batch: int = BATCH) -> int:
    """Announce every report still waiting, `batch` at a time; returns the notifications written."""
    written = 0
    while True:
        with transaction.atomic():
            reports = _claim(batch)
            written += _announce(reports)
        if len(reports) < batch:
            return written


def _claim(batch: int) -> list[Report]:
    """The oldest waiting reports, locked so that two jobs running at once never tell twice (on
    PostgreSQL the second skips what the first holds; SQLite runs one writer at a time)."""
    waiting = (
        Report.objects.filter(announced_at__isnull=True)
        .select_related("affected_organisation", "reporting_organisation", "submitted_by")
        .order_by("id")
    )
    if connection.features.has_select_for_update_skip_locked:
        waiting = waiting.select_for_update(skip_locked=True, of=("self",))
    return list(waiting[:batch])


def _announce(reports: list[Report]) -> int:
    if not reports:
        return 0
    certs: dict[tuple[int, dt.date], Organisation | None] = {}  # one derivation per organisation and day
    cert_of: dict[int, Organisation | None] = {}
    for report in reports:
        key = (report.affected_organisation_id, report.aware_at.date())
        if key not in certs:
            certs[key] = selectors.handling_cert_for(report.affected_organisation, key[1])
        cert_of[report.pk] = certs[key]
    people = members_by_organisation({c.pk for c in certs.values() if c is not None}, Role.HANDLER)
    everyone = {user.pk: user for members in people.values() for user in members}
    for user_id, roles in roles_of_users(everyone).items():
        principal_with_roles(everyone[user_id], roles)
    actors = _who_filed(reports)
    notifications: list[Notification] = []
    for report in reports:
        cert = cert_of[report.pk]
        if cert is None:
            continue
        notifications += compose_tell(
            report,
            people.get(cert.pk, []),
            kind="new-report",
            event=new_report_event(report, cert),
            actor=actors.get(report.pk),
        )
    deliver(notifications)
    Report.objects.filter(pk__in=[r.pk for r in reports]).update(announced_at=clock.now())
    return len(notifications)


def _who_filed(reports: list[Report]) -> dict[int, User]:
    """The person whose action made each report (nobody is told about their own): its submitter, or
    for mail the analyst who accepted it from the triage queue."""
    actors: dict[int, User] = {r.pk: r.submitted_by for r in reports if r.submitted_by is not None}
    by_mail = [r.pk for r in reports if r.submitted_by is None]
    if by_mail:
        accepted = InboundMail.objects.filter(report_id__in=by_mail, decided_by__isnull=False)
        for mail in accepted.select_related("decided_by"):
            if mail.report_id is not None and mail.decided_by is not None:
                actors[mail.report_id] = mail.decided_by
    return actors
