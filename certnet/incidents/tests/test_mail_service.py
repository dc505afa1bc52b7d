"""E-mail intake as a service: a known sender's message becomes a report with its attachments as
evidence, anything else waits in the mailbox CERT's triage queue; refusals write nothing; the same
message twice is one record; a handler accepts or discards what waits.

The world: the real Pakistan framework, plus lahore (under punjab-cert) and karachi (under sindh-cert).
Contacts: punjab-cert's intake incident@punjab-cert.example, lahore's soc@lahore.example, and
it@shared.example on both lahore and karachi. Mail to any other address goes to ncert, the default.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from certnet.accounts.models import User
from certnet.core import clock
from certnet.core.audit import SystemActor
from certnet.core.errors import Forbidden, IllegalTransition, InvalidInput, NotFound, TooLarge
from certnet.core.models import AuditEntry
from certnet.core.roles import Role
from certnet.core.tlp import TLP
from certnet.incidents import storage
from certnet.incidents.models import (
    Channel,
    CustodyEntry,
    Evidence,
    InboundMail,
    InboundMailStatus,
    Report,
)
from certnet.incidents.selectors_mail import access_mail
from certnet.incidents.services import mail as intake
from certnet.incidents.services.evidence import open_evidence_for_download
from certnet.registry import services as registry
from certnet.registry.models import Organisation

SYSTEM = SystemActor("test")
NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
PUNJAB_DESK = "incident@punjab-cert.example"
LAHORE_SOC = "soc@lahore.example"
SHARED = "it@shared.example"
STRANGER = "someone@unknown.example"


def build_message(
    *,
    sender: str = LAHORE_SOC,
    to: str = PUNJAB_DESK,
    subject: str = "Ransomware on the file server",
    body: str = "Files on FS01 were encrypted at 07:40.",
    attachments: Iterable[tuple[str, str, bytes]] = (),
    message_id: str | None = "<m1@lahore.example>",
    sent_at: dt.datetime | None = NOW - dt.timedelta(hours=1),
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    if message_id:
        msg["Message-ID"] = message_id
    if sent_at is not None:
        msg["Date"] = format_datetime(sent_at)
    msg.set_content(body)
    for filename, content_type, content in attachments:
        maintype, subtype = content_type.split("/")
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes(policy=policy.SMTP)  # CRLF line ends, as on the wire


@dataclass
class MailWorld:
    orgs: dict[str, Organisation]
    people: dict[str, User]
    evidence_dir: Path

    def stored_files(self) -> list[Path]:
        return sorted(p for p in self.evidence_dir.rglob("*") if p.is_file())


def use_evidence_dir(settings: Any, path: Path) -> Path:
    """Evidence and raw messages go to a directory of the test's own (Django resets the storages)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "evidence": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(path)},
        },
    }
    return path


def build_mail_world(
    framework: dict[str, Organisation], make_user: Callable[..., User], settings: Any, tmp_path: Path
) -> MailWorld:
    def constituent(slug: str, parent: str) -> Organisation:
        return registry.create_organisation(
            actor=SYSTEM,
            data=registry.OrganisationInput(
                slug=slug,
                name=slug.title(),
                kind="constituent",
                reports_to=parent,
                reports_since=dt.date(2024, 1, 1),
                tlp="amber",
            ),
        )

    orgs = {**framework, "lahore": constituent("lahore", "punjab-cert")}
    orgs["karachi"] = constituent("karachi", "sindh-cert")
    for slug, kind, email in [
        ("punjab-cert", "incident", PUNJAB_DESK),
        ("lahore", "abuse", LAHORE_SOC),
        ("lahore", "general", SHARED),
        ("karachi", "general", SHARED.upper()),
    ]:
        registry.add_contact(actor=SYSTEM, organisation=orgs[slug], kind=kind, email=email)
    people = {
        "punjab": make_user(orgs["punjab-cert"], Role.HANDLER, username="punjab.handler"),
        "punjab-viewer": make_user(orgs["punjab-cert"], Role.VIEWER, username="punjab.viewer"),
        "sindh": make_user(orgs["sindh-cert"], Role.HANDLER, username="sindh.handler"),
        "ncert": make_user(orgs["ncert"], Role.HANDLER, username="ncert.handler"),
        "ncert-manager": make_user(orgs["ncert"], Role.MANAGER, username="ncert.manager"),
        "nadra": make_user(orgs["nadra"], Role.ANALYST, username="nadra.analyst"),
        "lahore": make_user(orgs["lahore"], Role.ANALYST, username="lahore.analyst"),
    }
    return MailWorld(orgs, people, use_evidence_dir(settings, tmp_path / "evidence"))


@pytest.fixture
def mail_world(framework, make_user, settings, tmp_path) -> MailWorld:
    return build_mail_world(framework, make_user, settings, tmp_path)


@pytest.fixture
def at_now():
    with clock.frozen_at(NOW):
        yield NOW


def counts() -> dict[str, int]:
    return {
        "mail": InboundMail.objects.count(),
        "reports": Report.objects.count(),
        "evidence": Evidence.objects.count(),
        "custody": CustodyEntry.objects.count(),
        "audit": AuditEntry.objects.count(),
    }


# --- intake -----------------------------------------------------------------------------------------


def test_known_sender_becomes_a_report_with_evidence(mail_world, at_now):
    pdf = b"%PDF-1.7 ransom note \x00\xff"
    raw = build_message(subject="[TLP:GREEN] Ransomware", attachments=[("note.pdf", "application/pdf", pdf)])
    result = intake.ingest(raw, envelope_from="bounce@lahore.example", recipients=[PUNJAB_DESK])

    assert result.created
    report, mail = result.report, result.mail
    assert report is not None
    assert (report.channel, report.status, report.title, report.tlp) == (
        Channel.EMAIL,
        "new",
        "Ransomware",
        "green",
    )
    assert report.reporting_organisation == report.affected_organisation == mail_world.orgs["lahore"]
    assert report.submitted_by is None
    assert report.description == "Files on FS01 were encrypted at 07:40."
    assert report.aware_at == NOW - dt.timedelta(hours=1)
    assert report.received_at == NOW
    assert mail.status == InboundMailStatus.REPORTED
    assert mail.report == report
    assert mail.mailbox_cert == mail_world.orgs["punjab-cert"]
    assert mail.sender_organisation == mail_world.orgs["lahore"]
    assert (mail.header_from, mail.envelope_from, mail.recipients) == (
        LAHORE_SOC,
        "bounce@lahore.example",
        [PUNJAB_DESK],
    )
    # The raw message is kept whole; the attachment is evidence of the report, hashed on receipt.
    with storage.open_stored(mail.raw_storage_key) as handle:
        assert handle.read() == raw
    assert (mail.raw_sha256, mail.raw_size) == (hashlib.sha256(raw).hexdigest(), len(raw))
    (evidence,) = result.evidence
    assert (evidence.report, evidence.inbound_mail, evidence.source) == (report, mail, "email")
    assert (evidence.filename, evidence.content_type, evidence.size) == (
        "note.pdf",
        "application/pdf",
        len(pdf),
    )
    assert evidence.sha256 == hashlib.sha256(pdf).hexdigest() == storage.hash_of(evidence.storage_key)
    assert [c.action for c in evidence.custody.all()] == ["received"]
    actions = list(AuditEntry.objects.order_by("seq").values_list("action", "actor_label"))[-3:]
    assert actions == [
        ("incidents.evidence.received", "system:mail-intake"),
        ("incidents.mail.receive", "system:mail-intake"),
        ("incidents.report.submit", "system:mail-intake"),
    ]
    assert result.describe().startswith(f"report R-{report.pk} created for lahore")


def test_sender_matches_case_insensitively_and_defaults_apply(mail_world, at_now):
    raw = build_message(sender="SOC@Lahore.Example", subject="", body="", sent_at=None)
    result = intake.ingest(raw, recipients=[PUNJAB_DESK.upper()])
    assert result.report is not None
    assert (result.report.title, result.report.description) == ("(no subject)", "(the message has no text)")
    assert result.report.tlp == TLP.AMBER
    assert result.report.aware_at == NOW
    assert result.mail.mailbox_cert == mail_world.orgs["punjab-cert"]


@pytest.mark.parametrize(
    ("sent_at", "aware_at"),
    [
        (NOW - dt.timedelta(days=6), NOW - dt.timedelta(days=6)),
        (NOW - dt.timedelta(days=30), NOW),  # not believable as the moment of awareness
        (NOW + dt.timedelta(minutes=10), NOW),  # in the future
    ],
)
def test_awareness_from_the_date_header_only_when_believable(mail_world, at_now, sent_at, aware_at):
    result = intake.ingest(build_message(sent_at=sent_at), recipients=[PUNJAB_DESK])
    assert result.report is not None
    assert result.report.aware_at == aware_at
    assert result.mail.sent_at == sent_at


def test_unknown_sender_waits_in_the_default_cert_queue(mail_world, at_now):
    raw = build_message(
        sender=STRANGER, to="nobody@nowhere.example", attachments=[("a.txt", "text/plain", b"hi")]
    )
    before = Report.objects.count()
    result = intake.ingest(raw, recipients=["nobody@nowhere.example"])
    mail = result.mail
    assert result.report is None
    assert Report.objects.count() == before
    assert (mail.status, mail.mailbox_cert.slug, mail.sender_organisation) == ("pending", "ncert", None)
    assert result.hold_reason == f"{STRANGER} is not a contact of any organisation in the registry"
    (evidence,) = mail.attachments.all()
    assert (evidence.report, evidence.inbound_mail) == (None, mail)
    assert mail.tlp == TLP.AMBER
    assert "held for triage by ncert" in result.describe()


def test_recipients_default_to_the_to_and_cc_headers(mail_world, at_now):
    result = intake.ingest(build_message(sender=STRANGER, to=f"x@y.example, {PUNJAB_DESK}"))
    assert result.mail.mailbox_cert.slug == "punjab-cert"
    assert result.mail.recipients == ["x@y.example", PUNJAB_DESK]


def test_an_address_shared_by_two_organisations_waits(mail_world, at_now):
    result = intake.ingest(build_message(sender=SHARED), recipients=[PUNJAB_DESK])
    assert result.report is None
    assert result.mail.status == "pending"
    assert result.mail.sender_organisation is None
    assert result.hold_reason == f"{SHARED} is a contact of 2 organisations"


def test_tlp_red_from_a_known_sender_waits_for_a_person(mail_world, at_now):
    raw = build_message(subject="[TLP:RED] Breach of HR data", attachments=[("hr.csv", "text/csv", b"a,b")])
    result = intake.ingest(raw, recipients=[PUNJAB_DESK])
    mail = result.mail
    assert result.report is None
    assert mail.status == "pending"
    assert mail.sender_organisation == mail_world.orgs["lahore"]
    # The intake record stays readable by the mailbox CERT, which must triage it.
    assert mail.tlp == TLP.AMBER_STRICT
    assert result.hold_reason == "marked TLP:RED: a handler decides who may read it"

    handler = mail_world.people["punjab"]
    attachment = mail.attachments.get()
    assert open_evidence_for_download(actor=mail_world.people["punjab-viewer"], evidence_id=attachment.pk)
    with pytest.raises(InvalidInput) as lowered:
        intake.accept_mail(actor=handler, mail=mail, data=intake.AcceptInput("lahore", tlp="amber"))
    assert "marked the message TLP:RED; it cannot be lowered" in lowered.value.detail
    report = intake.accept_mail(actor=handler, mail=mail, data=intake.AcceptInput("lahore"))
    assert report.tlp == TLP.RED
    assert report.title == "Breach of HR data"
    assert list(report.named_users.all()) == [handler]
    # Before triage the mailbox CERT's viewer could read the attachment; now only the report's
    # named readers may.
    assert open_evidence_for_download(actor=handler, evidence_id=attachment.pk)
    with pytest.raises((Forbidden, NotFound)):
        open_evidence_for_download(actor=mail_world.people["punjab-viewer"], evidence_id=attachment.pk)
    # Nor is the message's text left readable on the intake record: it took the report's label.
    mail.refresh_from_db()
    assert mail.tlp == TLP.RED
    with pytest.raises(NotFound):
        access_mail(mail_world.people["punjab-viewer"], mail.pk)


def test_the_same_message_twice_is_one_record(mail_world, at_now):
    raw = build_message(attachments=[("a.bin", "application/octet-stream", b"\x01\x02")])
    first = intake.ingest(raw, recipients=[PUNJAB_DESK])
    before, files = counts(), mail_world.stored_files()
    again = intake.ingest(raw, recipients=[PUNJAB_DESK])
    # A resend with other bytes but the same Message-ID is the same message.
    resent = intake.ingest(raw.replace(b"encrypted", b"ENCRYPTED"), recipients=[PUNJAB_DESK])
    assert not again.created
    assert not resent.created
    assert again.mail == resent.mail == first.mail
    assert again.report == first.report
    assert counts() == before
    assert mail_world.stored_files() == files
    assert again.describe() == f"already received as mail {first.mail.pk} (reported); nothing changed"


def test_another_sender_reusing_a_message_id_is_another_message(mail_world, at_now):
    first = intake.ingest(build_message(), recipients=[PUNJAB_DESK])
    # Same Message-ID, other sender: not taken for a repeat, so it cannot suppress a real report.
    other = intake.ingest(build_message(sender=STRANGER, body="other text"), recipients=[PUNJAB_DESK])
    assert other.created
    assert other.mail != first.mail
    # The sender's address is compared without regard to case, as when matching contacts.
    again = intake.ingest(build_message(sender=LAHORE_SOC.upper()), recipients=[PUNJAB_DESK])
    assert not again.created


def test_without_a_message_id_the_bytes_identify_the_message(mail_world, at_now):
    raw = build_message(message_id=None, sender=STRANGER)
    assert intake.ingest(raw).created
    assert not intake.ingest(raw).created
    assert intake.ingest(build_message(message_id=None, sender=STRANGER, body="other")).created


def test_refusals_write_nothing(mail_world, at_now, settings):
    before = counts()
    settings.CERTNET_MAIL_MAX_BYTES = 2000
    with pytest.raises(TooLarge) as too_large:
        intake.ingest(build_message(body="x" * 3000), recipients=[PUNJAB_DESK])
    assert "the limit is 2000 bytes" in too_large.value.detail
    settings.CERTNET_MAIL_MAX_BYTES = 1_000_000
    settings.CERTNET_EVIDENCE_MAX_BYTES = 100
    big = build_message(
        attachments=[("small.txt", "text/plain", b"ok"), ("dump.bin", "application/octet-stream", b"x" * 101)]
    )
    with pytest.raises(TooLarge) as big_file:
        intake.ingest(big, recipients=[PUNJAB_DESK])
    assert "'dump.bin' is 101 bytes; the limit for one evidence file is 100 bytes" in big_file.value.detail
    with pytest.raises(InvalidInput):
        intake.ingest(b"Subject: no sender\r\n\r\nhello", recipients=[PUNJAB_DESK])
    assert counts() == before
    assert mail_world.stored_files() == []


def test_a_failure_after_storing_removes_what_was_stored(mail_world, at_now, settings):
    # Mail to no CERT's address with the default CERT misconfigured fails inside the transaction,
    # after the raw message was stored: the file goes with the rolled-back rows.
    settings.CERTNET_MAIL_DEFAULT_CERT = "no-such-cert"
    before = counts()
    with pytest.raises(Exception, match="CERTNET_MAIL_DEFAULT_CERT is 'no-such-cert'"):
        intake.ingest(build_message(sender=STRANGER), recipients=["x@y.example"])
    assert counts() == before
    assert mail_world.stored_files() == []


# --- triage -------------------------------------------------------------------------------------------


def held(world: MailWorld, **overrides: Any) -> InboundMail:
    defaults: dict[str, Any] = {
        "sender": STRANGER,
        "attachments": [("log.txt", "text/plain", b"10.0.0.1 - - GET /admin")],
    }
    result = intake.ingest(build_message(**{**defaults, **overrides}), recipients=[PUNJAB_DESK])
    assert result.mail.status == "pending"
    return result.mail


def test_accept_makes_a_report_and_moves_the_attachments(mail_world, at_now):
    mail = held(mail_world)
    handler = mail_world.people["punjab"]
    report = intake.accept_mail(
        actor=handler,
        mail=mail,
        data=intake.AcceptInput("lahore", title="Web shell on the portal", note="called them"),
    )
    mail.refresh_from_db()
    assert (report.channel, report.affected_organisation.slug, report.title) == (
        Channel.EMAIL,
        "lahore",
        "Web shell on the portal",
    )
    assert report.received_at == mail.received_at
    assert report.tlp == TLP.AMBER
    assert (mail.status, mail.report, mail.decided_by, mail.decision_note) == (
        "reported",
        report,
        handler,
        "called them",
    )
    (evidence,) = Evidence.objects.filter(inbound_mail=mail)
    assert evidence.report == report
    assert [c.action for c in evidence.custody.all()] == ["received", "attached"]
    assert f"moved to report R-{report.pk}" in evidence.custody.last().detail
    assert AuditEntry.objects.filter(action="incidents.mail.accept", object_id=str(mail.pk)).exists()


def test_accept_for_the_mailbox_cert_itself_or_below_only(mail_world, at_now):
    mail = held(mail_world)
    handler = mail_world.people["punjab"]
    before = counts()
    for outside in ["karachi", "ncert", "no-such-org"]:
        with pytest.raises(InvalidInput) as caught:
            intake.accept_mail(actor=handler, mail=mail, data=intake.AcceptInput(outside))
        assert caught.value.errors[0].loc == "organisation"
        assert "is not punjab-cert or an organisation that reports to it" in caught.value.detail
    assert counts() == before
    report = intake.accept_mail(actor=handler, mail=mail, data=intake.AcceptInput("punjab-cert"))
    assert report.affected_organisation.slug == "punjab-cert"


def test_a_manager_of_the_cert_above_may_triage(mail_world, at_now):
    mail = held(mail_world)
    report = intake.accept_mail(
        actor=mail_world.people["ncert-manager"], mail=mail, data=intake.AcceptInput("lahore")
    )
    assert report.affected_organisation.slug == "lahore"


def test_who_may_triage(mail_world, at_now):
    mail = held(mail_world)
    before = counts()
    with pytest.raises(Forbidden):
        intake.discard_mail(actor=mail_world.people["punjab-viewer"], mail=mail, reason="spam")
    with pytest.raises(Forbidden):  # a handler of the CERT above needs the manager role
        intake.discard_mail(actor=mail_world.people["ncert"], mail=mail, reason="spam")
    for outsider in ["sindh", "nadra", "lahore"]:
        with pytest.raises(NotFound):
            intake.accept_mail(
                actor=mail_world.people[outsider], mail=mail, data=intake.AcceptInput("lahore")
            )
    assert counts() == before


def test_discard_keeps_the_mail_and_illegal_moves_change_nothing(mail_world, at_now):
    mail = held(mail_world)
    handler = mail_world.people["punjab"]
    with pytest.raises(InvalidInput, match="say why"):
        intake.discard_mail(actor=handler, mail=mail, reason="  ")
    intake.discard_mail(actor=handler, mail=mail, reason="spam")
    mail.refresh_from_db()
    assert (mail.status, mail.decision_note, mail.decided_at) == ("discarded", "spam", NOW)
    assert mail.attachments.count() == 1
    before = counts()
    with pytest.raises(IllegalTransition, match="already discarded; only pending mail can be accepted"):
        intake.accept_mail(actor=handler, mail=mail, data=intake.AcceptInput("lahore"))
    with pytest.raises(IllegalTransition):
        intake.discard_mail(actor=handler, mail=mail, reason="again")
    reported = intake.ingest(
        build_message(message_id="<other@lahore.example>"), recipients=[PUNJAB_DESK]
    ).mail
    with pytest.raises(IllegalTransition, match="already reported"):
        intake.discard_mail(actor=handler, mail=reported, reason="oops")
    assert counts()["reports"] == before["reports"] + 1  # only the new message's own report
