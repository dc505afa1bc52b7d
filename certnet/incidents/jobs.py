"""Work the incident services hand to the job consumer once their transaction commits, so that a
request pays only for what it changes. Registered with Huey through certnet.incidents.tasks."""

from __future__ import annotations

from django.db import transaction
from huey.contrib.djhuey import db_task

from certnet.accounts.models import User
from certnet.incidents.models import Report
from certnet.incidents.services import notices


@db_task(retries=3, retry_delay=30)  # type: ignore[untyped-decorator]
def announce_new_report(report_id: int, actor_id: int | None) -> int:
    """Tell the handling CERT about a new report: finding its handlers, checking each may read the
    report, and writing their notifications is a dozen queries the reporter should not wait for."""
    report = Report.objects.select_related("affected_organisation", "reporting_organisation").get(
        pk=report_id
    )
    actor = User.objects.filter(pk=actor_id).first() if actor_id is not None else None
    with transaction.atomic():
        return len(notices.report_received(report, actor))


def announce_after_commit(report: Report, actor: User | None) -> None:
    report_id, actor_id = int(report.pk), (int(actor.pk) if actor is not None else None)
    # robust: the change has committed; a queue that cannot take the job must not turn that into an error
    # (nor make a caller clean up what it stored). The failure is logged.
    transaction.on_commit(lambda: announce_new_report(report_id, actor_id), robust=True)
