"""`certnet ingest-mail FILE.eml` on the sample messages in tests/fixtures/mail: what it prints, what it
records, and its exit codes (1: the message is refused, 2: the file cannot be read)."""

from __future__ import annotations

import datetime as dt
import hashlib
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from certnet.core import clock
from certnet.core.audit import SystemActor
from certnet.incidents import storage
from certnet.incidents.models import Evidence, InboundMail, Report
from certnet.incidents.tests.test_mail_service import NOW, counts, use_evidence_dir
from certnet.registry import services as registry

SAMPLES = Path(django_settings.BASE_DIR) / "tests" / "fixtures" / "mail"
SYSTEM = SystemActor("test")


@pytest.fixture
def world(framework, settings, tmp_path):
    """The framework with the demo's intake addresses: punjab-cert's and sindh-cert's mailboxes, and a
    constituent under punjab-cert whose security team writes from security@eservices.punjab.example."""
    pitb = registry.create_organisation(
        actor=SYSTEM,
        data=registry.OrganisationInput(
            slug="pitb-services", name="PITB", kind="constituent", reports_to="punjab-cert"
        ),
    )
    for org, kind, email in [
        (framework["punjab-cert"], "incident", "incident@punjab-cert.example"),
        (framework["sindh-cert"], "incident", "incident@sindh-cert.example"),
        (pitb, "incident", "security@eservices.punjab.example"),
    ]:
        registry.add_contact(actor=SYSTEM, organisation=org, kind=kind, email=email)
    evidence_dir = use_evidence_dir(settings, tmp_path / "evidence")
    with clock.frozen_at(NOW):
        yield evidence_dir


def ingest(*args: str) -> str:
    out = StringIO()
    call_command("ingest_mail", *args, stdout=out)
    return out.getvalue().strip()


def test_a_known_sender_becomes_a_report(world):
    path = SAMPLES / "pitb-phishing.eml"
    printed = ingest(str(path))
    report = Report.objects.get()
    mail = InboundMail.objects.get()
    assert printed == (
        f"{path}: report R-{report.pk} created for pitb-services from mail {mail.pk} to punjab-cert, "
        "2 attachment(s) as evidence"
    )
    assert (report.channel, report.title, report.tlp) == (
        "email",
        "Phishing against e-services staff",
        "amber",
    )
    assert report.aware_at == dt.datetime(2026, 11, 2, 3, 15, tzinfo=dt.UTC)  # the Date header, 08:15 +0500
    assert mail.raw_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    files = {e.filename: e for e in Evidence.objects.filter(report=report)}
    assert sorted(files) == ["headers.txt", "sample.bin"]
    assert files["sample.bin"].sha256 == hashlib.sha256(bytes(range(32))).hexdigest()
    assert storage.hash_of(files["sample.bin"].storage_key) == files["sample.bin"].sha256


def test_importing_the_same_file_again_changes_nothing(world):
    path = str(SAMPLES / "pitb-phishing.eml")
    ingest(path)
    before = counts()
    mail = InboundMail.objects.get()
    assert ingest(path) == f"{path}: already received as mail {mail.pk} (reported); nothing changed"
    assert counts() == before


def test_an_unknown_sender_is_held_by_the_addressed_cert(world):
    path = str(SAMPLES / "unknown-sender.eml")
    printed = ingest(path, "--from", "bounces@mail.example")
    mail = InboundMail.objects.get()
    assert printed == (
        f"{path}: held for triage by sindh-cert as mail {mail.pk}: "
        "citizen@mail.example is not a contact of any organisation in the registry"
    )
    assert mail.envelope_from == "bounces@mail.example"


def test_envelope_recipients_choose_the_mailbox(world):
    ingest(str(SAMPLES / "unknown-sender.eml"), "--to", "incident@punjab-cert.example", "--to", "x@y.example")
    mail = InboundMail.objects.get()
    assert (mail.mailbox_cert.slug, mail.recipients) == (
        "punjab-cert",
        ["incident@punjab-cert.example", "x@y.example"],
    )


def test_a_refused_message_exits_1_with_the_reason(world, settings):
    before = counts()
    path = str(SAMPLES / "no-sender.eml")
    with pytest.raises(CommandError) as malformed:
        ingest(path)
    assert (malformed.value.returncode, str(malformed.value)) == (
        1,
        f"{path}: From: the message has no From header, so its sender is unknown",
    )
    settings.CERTNET_EVIDENCE_MAX_BYTES = 112
    with pytest.raises(CommandError) as too_large:
        ingest(str(SAMPLES / "pitb-phishing.eml"))
    assert too_large.value.returncode == 1
    assert "'headers.txt' is 113 bytes; the limit for one evidence file is 112 bytes" in str(too_large.value)
    settings.CERTNET_MAIL_MAX_BYTES = 100
    with pytest.raises(CommandError) as too_big:
        ingest(str(SAMPLES / "unknown-sender.eml"))
    assert "the limit is 100 bytes" in str(too_big.value)
    assert counts() == before
    assert sorted(world.rglob("*")) == []


def test_an_unreadable_file_exits_2(world, tmp_path):
    with pytest.raises(CommandError) as missing:
        ingest(str(tmp_path / "nope.eml"))
    assert missing.value.returncode == 2
    assert str(missing.value) == f"cannot read {tmp_path / 'nope.eml'}: No such file or directory"
    with pytest.raises(CommandError) as directory:
        ingest(str(tmp_path))
    assert directory.value.returncode == 2
