"""The mail intake API walked with people of every tier: /intake/mail (list, one message, accept,
discard). Held mail belongs to the mailbox CERT (punjab-cert here): its people and the CERTs above it
see it; its handlers (and managers above) triage it. Others get 404, as for a message that does not
exist; anonymous callers 401; a refused write changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from certnet.accounts.models import User
from certnet.incidents.models import InboundMail
from certnet.incidents.services import mail as intake
from certnet.incidents.tests.test_mail_service import (
    PUNJAB_DESK,
    STRANGER,
    MailWorld,
    build_mail_world,
    build_message,
    counts,
)

PROBLEM = "application/problem+json"
MISSING = 987_654

# person → (may see the mailbox CERT's mail, may triage it)
WALK: dict[str, tuple[int, int]] = {
    "anonymous": (401, 401),
    "punjab": (200, 200),  # handler of the mailbox CERT
    "punjab-viewer": (200, 403),
    "ncert": (200, 403),  # handler of the CERT above: sees, but triage from above needs a manager
    "ncert-manager": (200, 200),
    "admin": (200, 200),
    "sindh": (404, 404),  # another province
    "nadra": (404, 404),  # a CII operator's analyst
    "lahore": (404, 404),  # a constituent below the mailbox CERT: the mailbox is not its own
}


@pytest.fixture
def mail_world(framework, make_user, settings, tmp_path) -> MailWorld:
    return build_mail_world(framework, make_user, settings, tmp_path)


@pytest.fixture
def held(mail_world: MailWorld, make_user) -> tuple[MailWorld, InboundMail, dict[str, Any]]:
    mail_world.people["admin"] = make_user(None, username="platform.admin", platform_admin=True)
    result = intake.ingest(
        build_message(
            sender=STRANGER,
            message_id="<probe@unknown.example>",
            attachments=[("log.txt", "text/plain", b"GET /admin")],
        ),
        recipients=[PUNJAB_DESK],
    )
    return mail_world, result.mail, {}


@pytest.fixture
def client_of(api_as, held):
    world, _, cache = held

    def get(person: str) -> Any:
        if person not in cache:
            user: User | None = None if person == "anonymous" else world.people[person]
            cache[person] = api_as(user)
        return cache[person]

    return get


@pytest.mark.parametrize("person", list(WALK))
def test_reading_held_mail(held, client_of, person):
    _, mail, _ = held
    client = client_of(person)
    expected = WALK[person][0]
    one = client.get(f"/intake/mail/{mail.pk}")
    assert one.status_code == expected, one.content
    listed = client.get("/intake/mail", status="pending")
    if expected == 401:
        assert listed.status_code == 401
        return
    assert listed.status_code == 200
    ids = [row["id"] for row in listed.json()["items"]]
    assert ids == ([mail.pk] if expected == 200 else [])
    if expected == 404:
        missing = client.get(f"/intake/mail/{MISSING}")
        assert (one.headers["Content-Type"], one.json()["detail"]) == (PROBLEM, f"no mail {mail.pk}")
        assert missing.json()["detail"] == f"no mail {MISSING}"
        return
    body = one.json()
    assert (body["status"], body["mailbox_cert"]["slug"], body["header_from"]) == (
        "pending",
        "punjab-cert",
        STRANGER,
    )
    assert body["hold_reason"] == f"{STRANGER} is not a contact of any organisation in the registry"
    assert [(a["filename"], a["size"], a["report"]) for a in body["attachments"]] == [("log.txt", 10, None)]
    assert body["may_triage"] is (WALK[person][1] == 200)


@pytest.mark.parametrize("person", list(WALK))
def test_triaging_held_mail(held, client_of, person):
    _, mail, _ = held
    client = client_of(person)
    expected = WALK[person][1]
    before = counts()
    discard = client.post(f"/intake/mail/{mail.pk}/discard", {"reason": "spam"})
    assert discard.status_code == expected, discard.content
    if expected != 200:
        accept = client.post(f"/intake/mail/{mail.pk}/accept", {"organisation": "lahore"})
        assert accept.status_code == expected
        assert counts() == before
        if expected == 403:
            assert accept.json()["detail"] == f"you may not triage mail {mail.pk}"
        return
    body = discard.json()
    assert (body["status"], body["decision_note"], body["may_triage"]) == ("discarded", "spam", False)
    again = client.post(f"/intake/mail/{mail.pk}/accept", {"organisation": "lahore"})
    assert again.status_code == 409
    assert again.json()["title"] == "Illegal transition"


def test_accept_makes_a_report(held, client_of):
    _, mail, _ = held
    client = client_of("punjab")
    answer = client.post(
        f"/intake/mail/{mail.pk}/accept",
        {"organisation": "lahore", "title": "Admin page probed", "tlp": "amber+strict"},
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    report_id = body["report"]
    assert (body["status"], body["hold_reason"]) == ("reported", "")
    assert [a["report"] for a in body["attachments"]] == [report_id]
    report = client.get(f"/reports/{report_id}").json()
    assert (report["channel"], report["title"], report["tlp"], report["affected_organisation"]["slug"]) == (
        "email",
        "Admin page probed",
        "amber+strict",
        "lahore",
    )
    assert [m["id"] for m in client.get("/intake/mail", status="reported").json()["items"]] == [mail.pk]
    assert client.get("/intake/mail", status="pending").json()["items"] == []


def test_bad_input_is_422_and_changes_nothing(held, client_of):
    _, mail, _ = held
    client = client_of("punjab")
    before = counts()
    answer = client.post(
        f"/intake/mail/{mail.pk}/accept", {"organisation": "karachi", "tlp": "purple", "title": "x" * 201}
    )
    assert answer.status_code == 422
    assert sorted(e["loc"] for e in answer.json()["errors"]) == ["organisation", "title", "tlp"]
    assert client.post(f"/intake/mail/{mail.pk}/discard", {"reason": " "}).status_code == 422
    assert client.get("/intake/mail", status="unread").status_code == 422
    assert counts() == before


def test_listing_shows_every_status_without_a_filter(held, client_of):
    _, mail, _ = held
    known = intake.ingest(build_message(), recipients=[PUNJAB_DESK]).mail
    rows = client_of("punjab").get("/intake/mail").json()["items"]
    assert [(r["id"], r["status"], r["attachment_count"], r["report"]) for r in rows] == [
        (known.pk, "reported", 0, known.report_id),
        (mail.pk, "pending", 1, None),
    ]
    assert rows[0]["sender_organisation"]["slug"] == "lahore"
    assert rows[1]["sender_organisation"] is None
