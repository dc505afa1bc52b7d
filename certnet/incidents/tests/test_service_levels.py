"""The handling CERT's own service levels on reports (acknowledge in 4 h, first response in 24 h, from
receipt): which actions meet them, how they read (met / due at / overdue since), their alerts in the
clock sweep, and where the pages show them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client

from certnet.core import clock
from certnet.core.models import AuditEntry
from certnet.incidents import services
from certnet.incidents.models import ClockAlert, Report
from certnet.incidents.services.clocks_sweep import sweep
from certnet.incidents.services.service_levels import report_service_levels
from certnet.notifications.models import Notification
from certnet.notifications.tests.world import PASSWORD, RECEIVED, World, build_world

ACKNOWLEDGE_DUE = RECEIVED + dt.timedelta(hours=4)
RESPONSE_DUE = RECEIVED + dt.timedelta(hours=24)


@pytest.fixture
def world(db: Any) -> World:
    return build_world()


def states(report: Report, at: dt.datetime) -> list[tuple[str, str, dt.datetime | None]]:
    report.refresh_from_db()
    return [(s.slug, s.state, s.met_at or s.due_at) for s in report_service_levels(report, at)]


def sla_alerts(report: Report) -> list[tuple[str, str]]:
    return list(
        ClockAlert.objects.filter(subject=f"report:{report.pk}").order_by("id").values_list("clock", "kind")
    )


def sweep_at(moment: dt.datetime) -> Any:
    with clock.frozen_at(moment):
        return sweep()


@pytest.mark.django_db
def test_a_new_report_runs_both_clocks_from_receipt(world: World) -> None:
    report = world.report()
    assert states(report, RECEIVED + dt.timedelta(hours=1)) == [
        ("acknowledge", "due", ACKNOWLEDGE_DUE),
        ("first-response", "due", RESPONSE_DUE),
    ]
    assert states(report, RECEIVED + dt.timedelta(hours=5)) == [
        ("acknowledge", "overdue", ACKNOWLEDGE_DUE),
        ("first-response", "due", RESPONSE_DUE),
    ]


@pytest.mark.django_db
def test_triage_acknowledges_and_taking_the_incident_up_is_the_first_response(world: World) -> None:
    report = world.report()
    incident = world.incident(report)  # at RECEIVED + 30 min
    triaged = RECEIVED + dt.timedelta(minutes=30)
    assert states(report, RECEIVED + dt.timedelta(hours=2)) == [
        ("acknowledge", "met", triaged),
        ("first-response", "due", RESPONSE_DUE),
    ]
    # Handling steps that are not a response leave the clock running.
    with clock.frozen_at(RECEIVED + dt.timedelta(hours=25)):
        services.assign_incident(
            actor=world["punjab.handler"], incident=incident, assignee_username="punjab.handler"
        )
    assert states(report, RECEIVED + dt.timedelta(hours=25))[1] == ("first-response", "overdue", RESPONSE_DUE)
    late = RECEIVED + dt.timedelta(hours=26)
    with clock.frozen_at(late):
        services.change_status(actor=world["punjab.handler"], incident=incident, to_status="in-progress")
    assert states(report, late + dt.timedelta(hours=1)) == [
        ("acknowledge", "met", triaged),
        ("first-response", "met-late", late),
    ]


@pytest.mark.django_db
def test_merging_acknowledges_and_rejecting_answers_both(world: World) -> None:
    first = world.report()
    incident = world.incident(first)
    second, third = world.report(), world.report()
    merged_at, rejected_at = RECEIVED + dt.timedelta(hours=1), RECEIVED + dt.timedelta(hours=2)
    with clock.frozen_at(merged_at):
        services.merge_report(actor=world["punjab.handler"], report=second, incident_id=incident.pk)
    with clock.frozen_at(rejected_at):
        services.reject_report(actor=world["punjab.handler"], report=third, reason="a duplicate of R-1")
    assert states(second, rejected_at) == [
        ("acknowledge", "met", merged_at),
        ("first-response", "due", RESPONSE_DUE),
    ]
    assert states(third, rejected_at) == [
        ("acknowledge", "met", rejected_at),
        ("first-response", "met", rejected_at),
    ]


@pytest.mark.django_db
def test_service_level_alerts_go_to_the_cert_handlers_and_managers_once(world: World) -> None:
    report = world.report()
    Notification.objects.all().delete()  # the new-report notices are another test's subject
    # The 4-hour clock is announced in its last hour, not the moment it starts.
    assert sweep_at(RECEIVED + dt.timedelta(hours=2, minutes=30)).due_soon == 0
    summary = sweep_at(ACKNOWLEDGE_DUE - dt.timedelta(minutes=45))
    assert (summary.reports, summary.due_soon, summary.overdue) == (1, 1, 0)
    assert sla_alerts(report) == [("sla:acknowledge", "due-soon")]
    notices = Notification.objects.filter(kind="sla-due")
    assert sorted(n.recipient.username for n in notices) == ["punjab.handler", "punjab.manager"]
    assert {n.subject for n in notices} == {
        f"R-{report.pk} Acknowledge the report: due at 2026-11-01 13:00 UTC (Punjab CERT): "
        "Ransomware on the billing servers"
    }
    assert {n.link for n in notices} == {f"/incidents/reports/{report.pk}/"}

    summary = sweep_at(ACKNOWLEDGE_DUE + dt.timedelta(minutes=10))
    assert (summary.due_soon, summary.overdue) == (0, 1)
    assert sweep_at(ACKNOWLEDGE_DUE + dt.timedelta(minutes=20)).overdue == 0
    assert sla_alerts(report) == [("sla:acknowledge", "due-soon"), ("sla:acknowledge", "overdue")]
    entry = AuditEntry.objects.get(action="incidents.service_level.overdue")
    assert entry.data == {
        "clock": "acknowledge",
        "due_at": "2026-11-01T13:00:00+00:00",
        "cert": "punjab-cert",
    }
    assert Notification.objects.filter(kind="sla-overdue").count() == 2

    # Triaged late: the first response is still to come and is announced before it is due.
    with clock.frozen_at(ACKNOWLEDGE_DUE + dt.timedelta(hours=1)):
        incident = services.triage_report(
            actor=world["punjab.handler"],
            report=report,
            data=services.TriageInput("malicious-code", "infected-system", severity=2),
        )
    sweep_at(RESPONSE_DUE - dt.timedelta(hours=3))
    assert sla_alerts(report)[-1] == ("sla:first-response", "due-soon")
    with clock.frozen_at(RESPONSE_DUE - dt.timedelta(hours=2)):
        services.change_status(actor=world["punjab.handler"], incident=incident, to_status="in-progress")
    sweep_at(RESPONSE_DUE + dt.timedelta(hours=1))
    assert len(sla_alerts(report)) == 3  # answered in time: no overdue alert


@pytest.mark.django_db
def test_a_rejected_report_and_one_of_a_closed_incident_are_no_longer_clocked(world: World) -> None:
    rejected = world.report()
    with clock.frozen_at(RECEIVED + dt.timedelta(hours=1)):
        services.reject_report(actor=world["punjab.handler"], report=rejected, reason="not an incident")
    report = world.report()
    incident = world.incident(report)
    with clock.frozen_at(RECEIVED + dt.timedelta(hours=1)):
        services.change_status(actor=world["punjab.handler"], incident=incident, to_status="rejected")
    report.refresh_from_db()
    assert report.first_response_at is None
    summary = sweep_at(RECEIVED + dt.timedelta(days=3))
    assert (summary.reports, summary.due_soon, summary.overdue) == (0, 0, 0)
    assert not ClockAlert.objects.exists()


@pytest.mark.django_db
def test_the_report_page_and_the_incident_page_show_the_service_levels(world: World) -> None:
    report = world.report()
    incident = world.incident(report)
    client = Client()
    assert client.login(username="punjab.handler", password=PASSWORD)
    with clock.frozen_at(RECEIVED + dt.timedelta(hours=30)):
        page = client.get(f"/incidents/reports/{report.pk}/").content.decode()
        detail = client.get(f"/incidents/{incident.pk}/").content.decode()
    for html in (page, detail):
        assert 'data-testid="service-levels"' in html
        assert "met 2026-11-01 09:30 UTC" in html
        assert "overdue since 2026-11-02 09:00 UTC" in html
    assert f'data-report="{report.pk}"' in detail
    with clock.frozen_at(RECEIVED + dt.timedelta(hours=2)):
        reporter = Client()
        assert reporter.login(username="lahore.analyst", password=PASSWORD)
        html = reporter.get(f"/incidents/reports/{report.pk}/").content.decode()
    assert "due at 2026-11-02 09:00 UTC" in html
