"""The clock sweep: statutory stages coming due and overdue, each alert once, who is told, and what the
sweep leaves alone (met stages, closed incidents, incidents not yet near a deadline). Time is frozen
with certnet.core.clock; nothing sleeps. Mail goes to a real SMTP server on loopback."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from certnet.core import clock
from certnet.core.models import AuditEntry
from certnet.incidents import selectors, services
from certnet.incidents.models import ClockAlert, Incident, TimelineEvent
from certnet.incidents.services import clocks_sweep
from certnet.incidents.services.clocks_sweep import sweep
from certnet.notifications.models import Notification
from certnet.notifications.tests.smtp import local_relay, use_smtp
from certnet.notifications.tests.world import AWARE, RECEIVED, World, address, build_world

EARLY_WARNING_DUE = AWARE + dt.timedelta(hours=24)  # pk-provisional: 24 h after awareness
NOTIFICATION_DUE = AWARE + dt.timedelta(hours=72)


@pytest.fixture
def world(db: Any) -> World:
    return build_world()


@pytest.fixture
def relay(settings: Any) -> Any:
    with local_relay() as server:
        use_smtp(settings, server.port)
        yield server


def taken_up(world: World, **report: Any) -> Incident:
    """An incident under Punjab CERT, taken up at once, so the CERT's own service levels are met and
    only the statutory stages are running."""
    incident = world.incident(world.report(**report))
    with clock.frozen_at(RECEIVED + dt.timedelta(minutes=45)):
        return services.change_status(
            actor=world["punjab.handler"], incident=incident, to_status="in-progress"
        )


def told(kind: str) -> list[str]:
    return sorted(Notification.objects.filter(kind=kind).values_list("recipient__username", flat=True))


def sweep_at(moment: dt.datetime) -> clocks_sweep.SweepSummary:
    with clock.frozen_at(moment):
        return sweep()


@pytest.mark.django_db
def test_a_stage_coming_due_is_announced_once_to_the_cert_managers_and_the_organisation(
    world: World, relay: Any, django_capture_on_commit_callbacks: Any
) -> None:
    incident = taken_up(world)
    assert sweep_at(EARLY_WARNING_DUE - dt.timedelta(hours=5)).due_soon == 0  # not yet within 4 h

    with django_capture_on_commit_callbacks(execute=True):
        summary = sweep_at(EARLY_WARNING_DUE - dt.timedelta(hours=3, minutes=30))
    assert (summary.incidents, summary.due_soon, summary.overdue) == (1, 1, 0)
    alert = ClockAlert.objects.get()
    assert (alert.subject, alert.clock, alert.kind, alert.due_at) == (
        f"incident:{incident.pk}",
        "early-warning",
        "due-soon",
        EARLY_WARNING_DUE,
    )
    # The handling CERT's managers and the people who file the stage; not its handlers, nor the tier above.
    assert told("stage-due") == ["lahore.analyst", "punjab.manager"]
    subject = (
        f"INC-{incident.pk} Early warning due at 2026-11-02 08:00 UTC: Ransomware on the billing servers"
    )
    assert Notification.objects.filter(kind="stage-due", subject=subject).count() == 2

    assert sorted(r for m in relay.received for r in m.rcpt_tos) == [
        address("lahore.analyst"),
        address("punjab.manager"),
    ]
    mail = relay.to(address("punjab.manager"))[0]
    assert mail.subject == f"[certnet] {subject}"
    assert f"http://127.0.0.1:8000/incidents/{incident.pk}/" in mail.body
    assert "Title: Ransomware on the billing servers" in mail.body
    assert "Invoices encrypted" not in mail.body  # descriptions never travel by e-mail

    with django_capture_on_commit_callbacks(execute=True):
        again = sweep_at(EARLY_WARNING_DUE - dt.timedelta(hours=1))
    assert (again.due_soon, again.overdue) == (0, 0)
    assert ClockAlert.objects.count() == 1
    assert Notification.objects.filter(kind="stage-due").count() == 2
    assert len(relay.received) == 2


@pytest.mark.django_db
def test_an_overdue_stage_is_marked_once_on_the_timeline_and_goes_to_the_next_cert_up(world: World) -> None:
    incident = taken_up(world)
    summary = sweep_at(EARLY_WARNING_DUE + dt.timedelta(hours=1))
    # Missed outright (the sweep never saw it coming due): the overdue alert only.
    assert (summary.due_soon, summary.overdue) == (0, 1)
    alert = ClockAlert.objects.get()
    assert (alert.clock, alert.kind, alert.due_at) == ("early-warning", "overdue", EARLY_WARNING_DUE)

    event = TimelineEvent.objects.get(incident=incident, kind="stage-overdue")
    assert event.summary == "Early warning overdue since 2026-11-02 08:00 UTC"
    assert event.actor_label == "system:clock-sweep"
    entry = AuditEntry.objects.get(action="incidents.clock.overdue")
    assert (entry.actor_label, entry.object_id) == ("system:clock-sweep", str(incident.pk))
    assert entry.data == {"clock": "early-warning", "due_at": "2026-11-02T08:00:00+00:00"}

    # Punjab CERT's managers, the managers of the National CERT above it, and the organisation.
    assert told("stage-overdue") == ["lahore.analyst", "ncert.deputy", "ncert.manager", "punjab.manager"]

    later = sweep_at(EARLY_WARNING_DUE + dt.timedelta(hours=6))
    assert (later.due_soon, later.overdue) == (0, 0)
    assert ClockAlert.objects.count() == 1
    assert TimelineEvent.objects.filter(kind="stage-overdue").count() == 1
    assert Notification.objects.filter(kind="stage-overdue").count() == 4


@pytest.mark.django_db
def test_a_met_stage_never_alerts_and_the_next_one_is_clocked(world: World) -> None:
    incident = taken_up(world)
    with clock.frozen_at(AWARE + dt.timedelta(hours=10)):
        services.submit_stage_report(
            actor=world["lahore.analyst"], incident=incident, stage="early-warning", content={}
        )
    incident.refresh_from_db()
    assert incident.next_deadline_at == NOTIFICATION_DUE

    for moment in (EARLY_WARNING_DUE - dt.timedelta(hours=1), EARLY_WARNING_DUE + dt.timedelta(hours=1)):
        assert sweep_at(moment).incidents == 0  # its next deadline is days away: not even read
    assert not ClockAlert.objects.exists()

    summary = sweep_at(NOTIFICATION_DUE - dt.timedelta(hours=2))
    assert summary.due_soon == 1
    assert list(ClockAlert.objects.values_list("clock", "kind")) == [("notification", "due-soon")]


@pytest.mark.django_db
def test_a_closed_incident_never_alerts(world: World) -> None:
    incident = taken_up(world)
    with clock.frozen_at(RECEIVED + dt.timedelta(hours=2)):
        for status in ("resolved", "closed"):
            services.change_status(actor=world["punjab.handler"], incident=incident, to_status=status)
    # Even with a deadline left on it, a closed incident is not a candidate.
    Incident.objects.filter(pk=incident.pk).update(next_deadline_at=EARLY_WARNING_DUE)
    summary = sweep_at(EARLY_WARNING_DUE + dt.timedelta(days=5))
    assert (summary.incidents, summary.due_soon, summary.overdue) == (0, 0, 0)
    assert not ClockAlert.objects.exists()
    assert not Notification.objects.filter(kind__startswith="stage-").exists()


@pytest.mark.django_db
def test_the_sweep_reads_only_incidents_near_a_deadline(world: World, django_assert_num_queries: Any) -> None:
    for _ in range(3):
        taken_up(world)
    with clock.frozen_at(RECEIVED + dt.timedelta(hours=2)), django_assert_num_queries(2):
        summary = sweep()  # one indexed query for incident candidates, one for reports: none qualify
    assert (summary.incidents, summary.reports) == (0, 0)


@pytest.mark.django_db
def test_a_red_incident_is_announced_only_to_its_named_readers_and_without_its_title(
    world: World, relay: Any, django_capture_on_commit_callbacks: Any
) -> None:
    incident = taken_up(world, tlp="red", named_users=["punjab.handler", "ncert.manager"])
    with django_capture_on_commit_callbacks(execute=True):
        sweep_at(EARLY_WARNING_DUE + dt.timedelta(minutes=5))
    # punjab.manager and ncert.deputy would see only a stub, so they are not told; the reporter is named.
    assert told("stage-overdue") == ["lahore.analyst", "ncert.manager"]
    assert sorted(r for m in relay.received for r in m.rcpt_tos) == [
        address("lahore.analyst"),
        address("ncert.manager"),
    ]
    mail = relay.to(address("ncert.manager"))[0]
    assert mail.subject == f"[certnet] INC-{incident.pk} Early warning overdue since 2026-11-02 08:00 UTC"
    assert "Ransomware" not in mail.body
    assert "Marked TLP:RED" in mail.body


@pytest.mark.django_db
def test_two_sweeps_raising_the_same_alert_leave_one(world: World) -> None:
    """What decides an overlap: the second writer of the same alert finds the row there and does
    nothing at all (no second timeline entry, audit entry or notification)."""
    incident = taken_up(world)
    now = EARLY_WARNING_DUE + dt.timedelta(minutes=1)
    (state,) = [s for s in selectors.incident_clocks(incident, now) if s.slug == "early-warning"]
    with clock.frozen_at(now):
        first = clocks_sweep._stage_alert(incident, state, "overdue", EARLY_WARNING_DUE, now)
        second = clocks_sweep._stage_alert(incident, state, "overdue", EARLY_WARNING_DUE, now)
    assert (first, second) == (True, False)
    assert ClockAlert.objects.count() == 1
    assert TimelineEvent.objects.filter(kind="stage-overdue").count() == 1
    assert AuditEntry.objects.filter(action="incidents.clock.overdue").count() == 1
    assert Notification.objects.filter(kind="stage-overdue").count() == 4


@pytest.mark.django_db
def test_the_cli_and_the_periodic_job_run_one_sweep(world: World) -> None:
    from certnet.incidents import tasks

    taken_up(world)
    out = StringIO()
    with clock.frozen_at(EARLY_WARNING_DUE + dt.timedelta(minutes=1)):
        call_command("clocks", "sweep", stdout=out)
    assert out.getvalue().strip() == (
        "clock sweep at 2026-11-02 08:01 UTC: looked at 1 incident(s) and 0 report(s); "
        "raised 0 coming-due and 1 overdue alert(s)"
    )
    with clock.frozen_at(NOTIFICATION_DUE - dt.timedelta(hours=1)):
        tasks.sweep_clocks.call_local()
    assert list(ClockAlert.objects.order_by("id").values_list("clock", "kind")) == [
        ("early-warning", "overdue"),
        ("notification", "due-soon"),
    ]
    # Scheduled every minute.
    schedule = tasks.sweep_clocks.task_class()
    assert all(schedule.validate_datetime(dt.datetime(2026, 11, 2, 8, m)) for m in range(60))  # noqa: DTZ001 - Huey's naive local time
