"""Notifications on events (a new report, assignment, escalation up and down) in the app and by e-mail
through a real SMTP server on loopback, the TLP rule for who is told and what the message says, a
relay that is down, and the notifications API and page (each person sees only their own)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client

from certnet.core import clock
from certnet.incidents import services
from certnet.incidents.models import Report
from certnet.notifications.models import Notification
from certnet.notifications.tests.smtp import free_port, local_relay, use_smtp
from certnet.notifications.tests.world import PASSWORD, RECEIVED, World, address, build_world

LATER = RECEIVED + dt.timedelta(hours=1)
TITLE = "Ransomware on the billing servers"


@pytest.fixture
def world(db: Any) -> World:
    return build_world()


@pytest.fixture
def relay(settings: Any) -> Any:
    with local_relay() as server:
        use_smtp(settings, server.port)
        yield server


def told(kind: str) -> list[str]:
    return sorted(Notification.objects.filter(kind=kind).values_list("recipient__username", flat=True))


def recipients(relay: Any) -> list[str]:
    return sorted(r for message in relay.received for r in message.rcpt_tos)


# --- events -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_new_report_tells_the_handlers_and_managers_of_its_cert_in_the_app_and_by_mail(
    world: World, relay: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        report = world.report()
    # Punjab CERT triages Lahore's reports; its viewers, other provinces and the tier above are not told.
    assert told("new-report") == ["punjab.handler", "punjab.manager"]
    assert recipients(relay) == [address("punjab.handler"), address("punjab.manager")]
    lahore = world.orgs["lahore"].display_name
    subject = f"R-{report.pk} reported by {lahore} for Punjab CERT to triage: {TITLE}"
    mail = relay.to(address("punjab.manager"))[0]
    assert mail.subject == f"[certnet] {subject}"
    assert mail.mail_from == "certnet@localhost"
    assert mail.body.splitlines() == [
        f"R-{report.pk} reported by {lahore} for Punjab CERT to triage.",
        f"Title: {TITLE}",
        "",
        f"http://127.0.0.1:8000/incidents/reports/{report.pk}/",
    ]
    assert all(n.emailed_at is not None and not n.email_error for n in Notification.objects.all())


@pytest.mark.django_db
def test_an_assignee_is_told_unless_they_took_it_themselves(
    world: World, relay: Any, django_capture_on_commit_callbacks: Any
) -> None:
    incident = world.incident(world.report())
    with clock.frozen_at(LATER), django_capture_on_commit_callbacks(execute=True):
        services.assign_incident(
            actor=world["punjab.manager"], incident=incident, assignee_username="punjab.handler"
        )
        services.assign_incident(
            actor=world["punjab.manager"], incident=incident, assignee_username="punjab.manager"
        )
    assert told("assignment") == ["punjab.handler"]
    notice = Notification.objects.get(kind="assignment")
    assert notice.subject == f"INC-{incident.pk} assigned to you by punjab.manager: {TITLE}"
    assert notice.link == f"/incidents/{incident.pk}/"
    assert recipients(relay) == [address("punjab.handler")]


@pytest.mark.django_db
def test_escalations_tell_the_managers_of_the_cert_that_takes_the_incident(world: World) -> None:
    incident = world.incident(world.report(), severity=4)  # significant: up to the National CERT
    assert told("escalation") == ["ncert.deputy", "ncert.manager"]
    notice = Notification.objects.filter(kind="escalation").first()
    assert notice is not None
    assert notice.subject == f"INC-{incident.pk} escalated to NCERT automatically (severity): {TITLE}"
    assert "Reason: severity 4 is significant (3 or above)" in notice.body

    with clock.frozen_at(LATER):
        services.assign_incident(
            actor=world["punjab.manager"], incident=incident, assignee_username="punjab.handler"
        )
        services.de_escalate_incident(
            actor=world["ncert.handler"], incident=incident, reason="contained locally"
        )
    # Back with Punjab CERT: its managers, and the assignee.
    assert told("de-escalation") == ["punjab.handler", "punjab.manager"]
    assert "Reason: contained locally" in Notification.objects.filter(kind="de-escalation").first().body  # type: ignore[union-attr]

    with clock.frozen_at(LATER + dt.timedelta(hours=1)):
        services.escalate_incident(actor=world["punjab.handler"], incident=incident, reason="spreading")
    by_hand = Notification.objects.filter(kind="escalation", subject__contains="by hand")
    assert sorted(n.recipient.username for n in by_hand) == ["ncert.deputy", "ncert.manager"]


@pytest.mark.django_db
def test_a_red_record_tells_only_its_named_readers_and_never_mails_its_title(
    world: World, relay: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        report = world.report(tlp="red", named_users=["punjab.handler", "ncert.manager"])
        incident = world.incident(report, severity=4)
    # punjab.manager and ncert.deputy would see only the stub: they hear nothing.
    assert told("new-report") == ["punjab.handler"]
    assert told("escalation") == ["ncert.manager"]
    assert recipients(relay) == [address("ncert.manager"), address("punjab.handler")]
    for message in relay.received:
        assert "Ransomware" not in message.subject
        assert "Ransomware" not in message.body
        assert "Marked TLP:RED: open the link to read the details." in message.body
    mail = relay.to(address("ncert.manager"))[0]
    assert mail.subject == f"[certnet] INC-{incident.pk} escalated to NCERT automatically (severity)"
    # The reason is free text of the handler's: withheld like the title.
    assert "significant" not in mail.body


@pytest.mark.django_db
def test_an_amber_strict_incident_keeps_its_title_out_of_the_message(world: World) -> None:
    incident = world.incident(world.report(tlp="amber+strict"), severity=4)
    notice = Notification.objects.get(kind="escalation", recipient=world["ncert.manager"])
    assert notice.subject == f"INC-{incident.pk} escalated to NCERT automatically (severity)"
    assert "Marked TLP:AMBER+STRICT" in notice.body


@pytest.mark.django_db
def test_a_relay_that_is_down_leaves_the_notification_in_the_app_with_the_error(
    world: World, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    use_smtp(settings, free_port())  # nothing listens there
    with django_capture_on_commit_callbacks(execute=True):
        report = world.report()
    assert Report.objects.filter(pk=report.pk).exists()  # filed regardless of the mail
    notices = list(Notification.objects.order_by("recipient__username"))
    assert [n.recipient.username for n in notices] == ["punjab.handler", "punjab.manager"]
    for notice in notices:
        assert notice.emailed_at is None
        assert notice.email_error.startswith("ConnectionRefusedError")
        assert notice.read_at is None


@pytest.mark.django_db
def test_a_title_with_a_line_break_still_makes_a_valid_mail(
    world: World, relay: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        report = world.report(title="Ransomware\r\non the billing servers")
    lahore = world.orgs["lahore"].display_name
    assert {m.subject for m in relay.received} == {
        f"[certnet] R-{report.pk} reported by {lahore} for Punjab CERT to triage: {TITLE}"
    }
    assert not Notification.objects.exclude(email_error="").exists()


# --- the API ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_api_lists_only_the_callers_own_notifications(
    world: World, api_as: Any, django_capture_on_commit_callbacks: Any
) -> None:
    # A new report is announced by a job queued when its transaction commits.
    with django_capture_on_commit_callbacks(execute=True):
        world.report()
        world.incident(world.report(), severity=4)
    anonymous = api_as(None)
    assert anonymous.get("/notifications").status_code == 401
    assert anonymous.post("/notifications/read", {}).status_code == 401

    handler = api_as(world["punjab.handler"])
    listed = handler.get("/notifications").json()
    assert listed["count"] == 2
    assert {item["kind"] for item in listed["items"]} == {"new-report"}
    assert all(item["read_at"] is None for item in listed["items"])
    assert api_as(world["lahore.analyst"]).get("/notifications").json() == {"items": [], "count": 0}
    assert api_as(world["ncert.manager"]).get("/notifications").json()["count"] == 1

    # Marking someone else's notification read changes nothing.
    theirs = Notification.objects.get(recipient=world["ncert.manager"]).pk
    assert handler.post("/notifications/read", {"ids": [theirs]}).json() == {"marked": 0, "unread": 2}
    assert Notification.objects.get(pk=theirs).read_at is None

    first = listed["items"][0]["id"]
    with clock.frozen_at(LATER):
        assert handler.post("/notifications/read", {"ids": [first]}).json() == {"marked": 1, "unread": 1}
    unread = handler.get("/notifications", unread="true").json()
    assert [item["id"] for item in unread["items"]] == [listed["items"][1]["id"]]
    assert handler.post("/notifications/read", {}).json() == {"marked": 1, "unread": 0}
    assert handler.get("/notifications", unread="true").json()["count"] == 0
    page = handler.get("/notifications", limit=1, offset=1).json()
    assert (page["count"], len(page["items"])) == (2, 1)


# --- the page ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_lists_ones_own_notifications_and_marks_them_read(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        report = world.report()
    assert Client().get("/notifications/").status_code == 302  # sign in first

    client = Client()
    assert client.login(username="punjab.handler", password=PASSWORD)
    html = client.get("/notifications/").content.decode()
    assert f"R-{report.pk} reported by" in html
    assert f'href="/incidents/reports/{report.pk}/"' in html
    assert 'data-testid="nav-notifications"' in html
    assert 'title="1 unread"' in html  # the count beside the nav link

    other = Client()
    assert other.login(username="ncert.manager", password=PASSWORD)
    assert f"R-{report.pk} reported by" not in other.get("/notifications/").content.decode()

    mine = Notification.objects.get(recipient=world["punjab.handler"])
    theirs = Notification.objects.get(recipient=world["punjab.manager"])
    response = client.post("/notifications/read/", {"id": [str(theirs.pk)]})
    assert response.status_code == 302
    theirs.refresh_from_db()
    assert theirs.read_at is None
    client.post("/notifications/read/", {"id": [str(mine.pk)]})
    mine.refresh_from_db()
    assert mine.read_at is not None
    html = client.get("/notifications/?unread=1").content.decode()
    assert "Nothing unread." in html
    assert 'title="1 unread"' not in html
