"""E-mail intake over a real SMTP exchange: the intake server (aiosmtpd, with certnet's handler) listens
on 127.0.0.1 and smtplib delivers to it, so the replies a sending server would see are checked along
with what was recorded.

The handler runs the ORM in a worker thread of its own, on its own database connection, so these tests
use a transactional database (committed rows, which the in-memory shared-cache SQLite test database
shows to every connection of the process).
"""

from __future__ import annotations

import hashlib
import smtplib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from certnet.incidents import storage
from certnet.incidents.management.commands.smtpd import controller
from certnet.incidents.models import Evidence, InboundMail, Report
from certnet.incidents.tests.test_mail_service import (
    LAHORE_SOC,
    PUNJAB_DESK,
    STRANGER,
    MailWorld,
    build_mail_world,
    build_message,
    counts,
)

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def world(framework, make_user, settings, tmp_path) -> MailWorld:
    return build_mail_world(framework, make_user, settings, tmp_path)


@pytest.fixture
def start_server() -> Iterator[Callable[[], tuple[str, int]]]:
    """Start the intake server (after the test has set its limits); stopped at the end of the test."""
    running: list[Any] = []

    def start() -> tuple[str, int]:
        server = controller("127.0.0.1", free_port())
        server.start()
        running.append(server)
        return server.hostname, server.port

    yield start
    for server in running:
        server.stop()


def send(address: tuple[str, int], raw: bytes, *, sender: str = "bounce@lahore.example") -> tuple[int, str]:
    """One SMTP transaction; the server's reply to the message data."""
    with smtplib.SMTP(*address, timeout=30) as client:
        client.ehlo("sender.example")
        assert client.mail(sender)[0] == 250
        assert client.rcpt(PUNJAB_DESK)[0] == 250
        code, reply = client.data(raw)
    return code, reply.decode()


def test_known_sender_with_an_attachment_becomes_a_report(world, start_server):
    address = start_server()
    dump = bytes(range(256)) * 40
    raw = build_message(attachments=[("capture.pcap", "application/vnd.tcpdump.pcap", dump)])
    code, reply = send(address, raw)
    report = Report.objects.get()
    assert (code, reply) == (250, f"2.0.0 received as report R-{report.pk}")
    assert (report.channel, report.affected_organisation.slug) == ("email", "lahore")
    mail = InboundMail.objects.get()
    assert (mail.status, mail.report, mail.envelope_from, mail.recipients) == (
        "reported",
        report,
        "bounce@lahore.example",
        [PUNJAB_DESK],
    )
    (evidence,) = Evidence.objects.all()
    assert (evidence.report, evidence.filename) == (report, "capture.pcap")
    assert evidence.sha256 == hashlib.sha256(dump).hexdigest() == storage.hash_of(evidence.storage_key)
    # What was sent is what was kept, byte for byte.
    assert mail.raw_sha256 == hashlib.sha256(raw).hexdigest() == storage.hash_of(mail.raw_storage_key)
    with storage.open_stored(mail.raw_storage_key) as handle:
        assert handle.read() == raw


def test_unknown_sender_is_held_for_triage(world, start_server):
    address = start_server()
    code, reply = send(address, build_message(sender=STRANGER, attachments=[("a.txt", "text/plain", b"x")]))
    mail = InboundMail.objects.get()
    assert (code, reply) == (250, f"2.0.0 received as mail {mail.pk}, held for triage")
    assert (mail.status, mail.mailbox_cert.slug, mail.report) == ("pending", "punjab-cert", None)
    assert Report.objects.count() == 0
    assert list(Evidence.objects.values_list("inbound_mail", "report")) == [(mail.pk, None)]


def test_a_second_delivery_of_the_same_message_is_one_record(world, start_server):
    address = start_server()
    raw = build_message(sender=LAHORE_SOC, attachments=[("a.bin", "application/octet-stream", b"\x00")])
    first = send(address, raw)
    before = counts()
    files = world.stored_files()
    again = send(address, raw)
    report = Report.objects.get()
    assert first == (250, f"2.0.0 received as report R-{report.pk}")
    assert again == (250, f"2.0.0 already received as report R-{report.pk}")
    assert counts() == before
    assert world.stored_files() == files


def test_an_oversized_message_is_refused_and_nothing_is_stored(world, start_server, settings):
    settings.CERTNET_MAIL_MAX_BYTES = 4096
    address = start_server()
    before = counts()
    code, reply = send(address, build_message(body="x" * 8000))
    assert code == 552
    assert "Too much mail data" in reply
    assert counts() == before
    assert world.stored_files() == []


def test_an_oversized_attachment_refuses_the_whole_message(world, start_server, settings):
    settings.CERTNET_EVIDENCE_MAX_BYTES = 1000
    address = start_server()
    before = counts()
    raw = build_message(
        attachments=[("ok.txt", "text/plain", b"ok"), ("big.bin", "application/zip", b"z" * 1001)]
    )
    code, reply = send(address, raw)
    assert code == 552
    assert reply.startswith("5.3.4 the attachment 'big.bin' is 1001 bytes; the limit for one evidence file")
    assert counts() == before
    assert world.stored_files() == []


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"Subject: who sent this?\r\n\r\nno sender here\r\n", "From: the message has no From header"),
        (b"this is not an e-mail message at all\r\n", "this is not an e-mail message"),
    ],
)
def test_malformed_data_is_refused_with_the_reason(world, start_server, raw, reason):
    address = start_server()
    before = counts()
    code, reply = send(address, raw)
    assert code == 554
    assert reply.startswith(f"5.6.0 message refused: {reason}")
    assert counts() == before
    assert world.stored_files() == []


def test_replies_stay_ascii_for_non_ascii_details(world, start_server, settings):
    settings.CERTNET_EVIDENCE_MAX_BYTES = 10
    address = start_server()
    code, reply = send(address, build_message(attachments=[("تصویر.png", "image/png", b"p" * 11)]))
    assert code == 552
    assert reply.startswith("5.3.4 the attachment '?????.png' is 11 bytes")
