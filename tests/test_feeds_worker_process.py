"""`certnet worker` as operators run it: real processes, a real Redis, a worker killed with SIGKILL in
the middle of a run and started again; the events store ends with every event exactly once."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time

import duckdb
import pytest

CERTNET = [sys.executable, "-m", "certnet.cli"]
ROWS = 20_000


@pytest.fixture
def instance(redis_server, tmp_path):
    server = redis_server
    var = tmp_path / "var"
    env = {
        **os.environ,
        "CERTNET_VAR_DIR": str(var),
        "DATABASE_URL": f"sqlite:///{var / 'worker.sqlite3'}",
        "REDIS_URL": f"redis://127.0.0.1:{server.port}/0",
        "CERTNET_FEED_BLOCK_BYTES": "65536",
    }
    setup = subprocess.run(
        [*CERTNET, "setup", "--demo"], env=env, capture_output=True, text=True, check=False
    )
    assert setup.returncode == 0, setup.stderr
    return env, var


def _report(path) -> None:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(["timestamp", "ip", "port", "protocol", "tag"])
    for i in range(ROWS):
        writer.writerow(
            [
                f"2026-11-20 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}",
                f"203.0.113.{i % 256}",
                "3389",
                "tcp",
                "rdp",
            ]
        )
    path.write_text(out.getvalue(), encoding="utf-8")


def _stored(var, feed) -> tuple[int, int]:
    # This file's batches only (they are named by its digest): the demo instance has events of its own.
    prefix = hashlib.sha256(feed.read_bytes()).hexdigest()[:24]
    glob = str(var / "events" / "day=*" / "feed=*" / f"{prefix}-*.parquet")
    files = duckdb.read_parquet(glob, hive_partitioning=True, union_by_name=True)
    return files.aggregate('count(*), count(DISTINCT ("time.source", "source.ip"))').fetchall()[0]


def test_a_worker_killed_mid_run_and_restarted_leaves_every_event_exactly_once(instance, tmp_path):
    env, var = instance
    feed = tmp_path / "2026-11-20-scan_rdp-pakistan-geo.csv"
    _report(feed)
    queued = subprocess.run(
        [*CERTNET, "feeds", "run", str(feed), "--distributed"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert queued.returncode == 0, queued.stderr

    worker = subprocess.Popen(
        [*CERTNET, "worker", "--reclaim-seconds", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not list((var / "events").glob("day=*/feed=*/*.parquet")):
        assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
        assert time.monotonic() < deadline, "the worker wrote nothing"
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    if worker.stderr is not None:
        worker.stderr.close()

    with sqlite3.connect(var / "worker.sqlite3") as db:
        assert db.execute("SELECT status FROM feeds_feedrun WHERE file_name = ?", [feed.name]).fetchall() == [
            ("running",)
        ]

    again = subprocess.run(
        [*CERTNET, "worker", "--until-idle", "--reclaim-seconds", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert _stored(var, feed) == (ROWS, ROWS)
    with sqlite3.connect(var / "worker.sqlite3") as db:
        status, counts = db.execute(
            "SELECT status, counts FROM feeds_feedrun WHERE file_name = ?", [feed.name]
        ).fetchone()
    assert status == "done"
    assert '"written": 20000' in counts
    assert '"routed": 20000' in counts  # the demo registry holds all of 203.0.113.0/24
