"""What the feed tests share: a small registry with netblocks, a Shadowserver-style report writer,
and the events store read back through DuckDB."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import duckdb
import pytest
import redis

from certnet.core.audit import SystemActor
from certnet.feeds.services import SourceInput, create_source
from certnet.registry import services as registry
from certnet.registry.services import resources

ACTOR = SystemActor("test")
COLUMNS = [
    "timestamp",
    "severity",
    "ip",
    "protocol",
    "port",
    "hostname",
    "tag",
    "asn",
    "geo",
    "region",
    "city",
]


def scan_rdp(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {"severity": "medium", "protocol": "tcp", "port": "3389", "tag": "rdp", "geo": "PK", **row}
        )
    return out.getvalue()


def event(ip: str, at: str = "2026-11-20 10:00:00", **extra: str) -> dict[str, str]:
    return {"timestamp": at, "ip": ip, **extra}


@pytest.fixture
def feed_world(framework, settings, tmp_path):
    settings.CERTNET_EVENTS_DIR = tmp_path / "events"
    settings.CERTNET_FEEDS_STATE_DIR = tmp_path / "state"

    def constituent(slug: str, parent: str):
        return registry.create_organisation(
            actor=ACTOR,
            data=registry.OrganisationInput(
                slug=slug,
                name=slug.title(),
                kind="constituent",
                reports_to=parent,
                reports_since=dt.date(2024, 1, 1),
            ),
        )

    lahore, karachi = constituent("lahore", "punjab-cert"), constituent("karachi", "sindh-cert")
    since = dt.date(2026, 1, 1)
    resources.add_netblock(actor=ACTOR, organisation=lahore, cidr="198.51.100.0/24", valid_from=since)
    resources.add_netblock(actor=ACTOR, organisation=lahore, cidr="2001:db8:10::/48", valid_from=since)
    resources.add_netblock(actor=ACTOR, organisation=karachi, cidr="203.0.113.0/25", valid_from=since)
    # Karachi's second block is registered only from 2026-11-21: an event of the 20th there is unrouted.
    resources.add_netblock(
        actor=ACTOR, organisation=karachi, cidr="203.0.113.128/25", valid_from=dt.date(2026, 11, 21)
    )
    resources.add_asn(actor=ACTOR, organisation=karachi, asn=64500, valid_from=since)
    source = create_source(
        ACTOR,
        SourceInput(
            code="shadowserver",
            name="Shadowserver reports",
            provider="Shadowserver",
            owner="ncert",
            tlp="amber",
        ),
    )
    return {
        "lahore": lahore,
        "karachi": karachi,
        "source": source,
        "events": tmp_path / "events",
        "dir": tmp_path,
    }


def stored(events_dir: Path) -> list[dict]:
    glob = str(events_dir / "day=*" / "feed=*" / "*.parquet")
    files = duckdb.read_parquet(glob, hive_partitioning=True, union_by_name=True)
    relation = files.order('"source.ip", "time.source"')
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def write(world, name: str, text: str) -> Path:
    path = world["dir"] / name
    path.write_text(text, encoding="utf-8")
    return path


REDIS = shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A throwaway redis-server on loopback whose stream survives a restart (append-only file)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            REDIS or "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
            str(self.directory),
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)


@pytest.fixture
def redis_server(tmp_path):
    if REDIS is None:
        if os.environ.get("CERTNET_REQUIRE_REDIS") == "1":
            pytest.fail("redis-server is not installed (CERTNET_REQUIRE_REDIS=1)")
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
