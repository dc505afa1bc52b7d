"""The "Mail for triage" pages through Django's test client: the queue with its accept and discard
forms, one message's page, the forms' errors beside the fields, and 404 for what a user may not see."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from certnet.accounts.models import User
from certnet.incidents.models import InboundMail, Report
from certnet.incidents.services import mail as intake
from certnet.incidents.tests.test_mail_service import (
    PUNJAB_DESK,
    STRANGER,
    MailWorld,
    build_mail_world,
    build_message,
    counts,
)


@pytest.fixture
def held(framework, make_user, settings, tmp_path) -> tuple[MailWorld, InboundMail]:
    world = build_mail_world(framework, make_user, settings, tmp_path)
    raw = build_message(
        sender=STRANGER,
        subject="[TLP:GREEN] Defaced <b>page</b>",
        body="<script>alert(1)</script> The portal shows a defacement.",
        attachments=[("shot.png", "image/png", b"\x89PNG")],
    )
    return world, intake.ingest(raw, recipients=[PUNJAB_DESK]).mail


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response: Any) -> str:
    return response.content.decode()


def test_the_queue_lists_held_mail_with_forms_for_the_handler(held):
    world, mail = held
    page = signed_in(world.people["punjab"]).get("/incidents/mail/")
    assert page.status_code == 200
    html = text(page)
    assert 'data-testid="nav-mail"' in html
    assert f'data-mail="{mail.pk}"' in html
    assert "Defaced &lt;b&gt;page&lt;/b&gt;" in html  # the subject is escaped, never rendered
    assert f"{STRANGER} is not a contact of any organisation in the registry" in html
    assert f'action="/incidents/mail/{mail.pk}/accept/"' in html
    assert '<option value="lahore">Lahore</option>' in html
    assert '<option value="karachi">' not in html  # not under the mailbox CERT


def test_a_viewer_sees_the_queue_without_forms(held):
    world, mail = held
    html = text(signed_in(world.people["punjab-viewer"]).get("/incidents/mail/"))
    assert f'data-mail="{mail.pk}"' in html
    assert f'action="/incidents/mail/{mail.pk}/accept/"' not in html


def test_others_see_an_empty_queue_and_404_for_the_message(held):
    world, mail = held
    client = signed_in(world.people["sindh"])
    assert f'data-mail="{mail.pk}"' not in text(client.get("/incidents/mail/"))
    assert client.get(f"/incidents/mail/{mail.pk}/").status_code == 404
    before = counts()
    assert client.post(f"/incidents/mail/{mail.pk}/discard/", {"reason": "spam"}).status_code == 404
    assert counts() == before
    assert Client().get("/incidents/mail/").status_code == 302  # to the login page


def test_the_message_page_shows_body_attachments_and_triage(held):
    world, mail = held
    html = text(signed_in(world.people["punjab"]).get(f"/incidents/mail/{mail.pk}/"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt; The portal shows a defacement." in html
    assert "shot.png" in html
    assert mail.raw_sha256 in html
    assert 'data-testid="mail-accept"' in html
    assert '<option value="green" selected>' in html  # the sender's label, preselected


def test_accept_goes_to_the_new_report(held):
    world, mail = held
    client = signed_in(world.people["punjab"])
    answer = client.post(
        f"/incidents/mail/{mail.pk}/accept/",
        {"organisation": "lahore", "title": "Portal defaced", "tlp": "green"},
    )
    report = Report.objects.get()
    assert answer.status_code == 302
    assert answer["Location"] == f"/incidents/reports/{report.pk}/"
    assert (report.title, report.affected_organisation.slug, report.channel) == (
        "Portal defaced",
        "lahore",
        "email",
    )
    assert f"Mail {mail.pk} accepted as report R-{report.pk}." in text(client.get(answer["Location"]))


def test_form_errors_are_shown_beside_the_fields(held):
    world, mail = held
    client = signed_in(world.people["punjab"])
    answer = client.post(f"/incidents/mail/{mail.pk}/accept/", {"organisation": "karachi", "tlp": "clear"})
    assert answer.status_code == 422
    html = text(answer)
    assert "The mail was not triaged." in html
    assert "is not punjab-cert or an organisation that reports to it" in html
    assert "The sender marked the message TLP:GREEN; it cannot be lowered" in html
    discard = client.post(f"/incidents/mail/{mail.pk}/discard/", {"reason": ""})
    assert discard.status_code == 422
    assert "Say why the mail is discarded" in text(discard)
    assert client.post(f"/incidents/mail/{mail.pk}/forward/").status_code == 404
    mail.refresh_from_db()
    assert mail.status == "pending"


def test_discard_returns_to_the_queue(held):
    world, mail = held
    client = signed_in(world.people["punjab"])
    answer = client.post(f"/incidents/mail/{mail.pk}/discard/", {"reason": "a test message"})
    assert (answer.status_code, answer["Location"]) == (302, "/incidents/mail/")
    html = text(client.get("/incidents/mail/?status=discarded"))
    assert f"Mail {mail.pk} discarded." in html
    assert "a test message" in html
    assert f'action="/incidents/mail/{mail.pk}/accept/"' not in html
