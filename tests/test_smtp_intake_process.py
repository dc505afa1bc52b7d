"""`certnet smtpd` and `certnet ingest-mail` run as an operator runs them: real processes against a
demo instance in a database file of its own, a real SMTP delivery, a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

CERTNET = [sys.executable, "-m", "certnet.cli"]
SAMPLES = Path(__file__).parent / "fixtures" / "mail"


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command
        [*CERTNET, *args], env=env, input=stdin, capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def instance(tmp_path_factory) -> dict[str, str]:
    var = tmp_path_factory.mktemp("var")
    env = {
        **os.environ,
        "CERTNET_VAR_DIR": str(var),
        "DATABASE_URL": f"sqlite:///{var / 'mail.sqlite3'}",
        "CERTNET_SMTPD_PORT": str(free_port()),
    }
    setup = run(env, "setup", "--demo")
    assert setup.returncode == 0, setup.stderr
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rows(env: dict[str, str], sql: str) -> list[tuple[object, ...]]:
    path = env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def test_smtpd_receives_and_stops_cleanly(instance):
    port = int(instance["CERTNET_SMTPD_PORT"])
    server = subprocess.Popen(  # noqa: S603 - our own command
        [*CERTNET, "smtpd"], env=instance, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # The first line is printed once the server accepts connections.
        banner = server.stdout.readline() if server.stdout else ""
        assert banner.startswith(f"certnet smtpd listening on 127.0.0.1:{port}")
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.ehlo("mx.eservices.punjab.example")
            assert client.mail("bounces@eservices.punjab.example")[0] == 250
            assert client.rcpt("incident@punjab-cert.example")[0] == 250
            raw = (SAMPLES / "pitb-phishing.eml").read_bytes().replace(b"\n", b"\r\n")
            code, reply = client.data(raw)
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=60)
    # The demo instance holds reports already (the feed's CII reports): this one is the next.
    assert code == 250
    [(newest,)] = rows(instance, "SELECT max(id) FROM incidents_report")
    assert reply.decode() == f"2.0.0 received as report R-{newest}"
    assert server.returncode == 0, err
    assert out.strip().endswith("certnet smtpd stopped")
    assert rows(instance, "SELECT channel, title FROM incidents_report WHERE channel = 'email'") == [
        ("email", "Phishing against e-services staff")
    ]
    assert rows(instance, "SELECT status, envelope_from FROM incidents_inboundmail") == [
        ("reported", "bounces@eservices.punjab.example")
    ]


def test_ingest_mail_from_a_file_and_from_stdin(instance):
    held = run(instance, "ingest-mail", str(SAMPLES / "unknown-sender.eml"))
    assert held.returncode == 0, held.stderr
    assert "held for triage by sindh-cert as mail" in held.stdout
    piped = run(instance, "ingest-mail", "-", stdin=(SAMPLES / "no-sender.eml").read_text())
    assert piped.returncode == 1
    assert "-: From: the message has no From header, so its sender is unknown" in piped.stderr
    missing = run(instance, "ingest-mail", "no-such.eml")
    assert missing.returncode == 2
    assert "cannot read no-such.eml: No such file or directory" in missing.stderr
    verified = run(instance, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
