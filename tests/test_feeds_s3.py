"""The events store in an S3-compatible bucket: an S3 server runs as its own process on loopback
(moto's server, spoken to over HTTP by the AWS SDK inside pyarrow), and the pipeline, the event
search, the dashboard and the run's follow-ups (CII reports, sightings) work on the bucket as they do
on a directory."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import time

import pyarrow.fs as pafs
import pytest

from certnet.core.audit import SystemActor
from certnet.core.roles import Role
from certnet.feeds.correlation import observations_of_run
from certnet.feeds.models import RunStatus
from certnet.feeds.selectors import EventQuery, search_events
from certnet.feeds.selectors_dashboard import feed_dashboard
from certnet.feeds.services import run_source_file
from certnet.feeds.store import EventStore
from certnet.registry.models import Organisation
from tests.feeds_support import _free_port, event, scan_rdp, write

ACTOR = SystemActor("test")
BUCKET = "certnet-events"


@pytest.fixture
def s3_server(monkeypatch):
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - an S3 server from our own virtualenv
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("the S3 server did not start")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "certnet-test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "certnet-test-secret")
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        endpoint = f"127.0.0.1:{port}"
        filesystem = pafs.S3FileSystem(
            endpoint_override=endpoint, scheme="http", region="us-east-1", allow_bucket_creation=True
        )
        filesystem.create_dir(BUCKET)
        yield endpoint, filesystem
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def bucket_store(feed_world, s3_server, settings):
    endpoint, filesystem = s3_server
    settings.CERTNET_EVENTS_URL = (
        f"s3://{BUCKET}/events?endpoint_override={endpoint}&scheme=http&region=us-east-1"
    )
    return filesystem


def objects(filesystem) -> list[str]:
    listing = filesystem.get_file_info(pafs.FileSelector(BUCKET, recursive=True))
    return sorted(info.path for info in listing if info.is_file)


def test_a_run_writes_to_the_bucket_and_everything_reads_its_events_from_there(
    feed_world, bucket_store, make_user
):
    rows = [event("198.51.100.7"), event("198.51.100.9"), event("203.0.113.5"), event("192.0.2.10")]
    path = write(feed_world, "2026-11-20-scan_rdp-pakistan-geo.csv", scan_rdp(rows))
    run = run_source_file(ACTOR, feed_world["source"], path).run
    assert run.status == RunStatus.DONE, run.error
    assert run.counts["written"] == 4

    stored = objects(bucket_store)
    assert len(stored) == 1
    assert stored[0].startswith(f"{BUCKET}/events/day=2026-11-20/feed=shadowserver/")
    assert not feed_world["events"].exists()  # nothing went to the local directory

    orgs = Organisation.objects.in_bulk(field_name="slug")
    punjab = make_user(orgs["punjab-cert"], Role.ANALYST)
    national = make_user(orgs["ncert"], Role.ANALYST)
    found, total = search_events(punjab, EventQuery())
    assert sorted(e["source.ip"] for e in found) == ["198.51.100.7", "198.51.100.9"]
    assert total == 2
    assert search_events(national, EventQuery(since=dt.date(2026, 11, 20)))[1] == 4
    assert search_events(national, EventQuery(since=dt.date(2026, 11, 21)))[1] == 0
    dashboard = feed_dashboard(national)
    assert dashboard.total == 4
    assert not dashboard.store_empty
    seen = observations_of_run(run)
    assert sorted(seen["value"].to_pylist()) == ["198.51.100.7", "198.51.100.9", "203.0.113.5"]

    # Processed again on purpose: its batch replaces its own object, the bucket never holds it twice.
    again = run_source_file(ACTOR, feed_world["source"], path, again=True).run
    assert again.status == RunStatus.DONE
    assert objects(bucket_store) == stored
    assert search_events(national, EventQuery())[1] == 4


def test_files_of_different_feeds_are_read_together_with_their_own_columns(feed_world, bucket_store):
    import pyarrow as pa

    store = EventStore.configured()
    at = pa.array([dt.datetime(2026, 11, 20, tzinfo=dt.UTC)], pa.timestamp("us", tz="UTC"))
    store.write_batch("one", pa.table({"time.source": at, "source.ip": ["192.0.2.1"], "extra.a": ["x"]}), "a")
    store.write_batch("two", pa.table({"time.source": at, "source.ip": ["192.0.2.2"], "extra.b": [7]}), "b")
    import duckdb

    connection = duckdb.connect()
    events = store.events(connection)
    assert events is not None
    rows = events.order('"source.ip"').project('"source.ip", "extra.a", "extra.b", feed, day').fetchall()
    assert rows == [("192.0.2.1", "x", None, "a", "2026-11-20"), ("192.0.2.2", None, 7, "b", "2026-11-20")]
    assert store.events(connection, "day=*/feed=c/*.parquet") is None
    assert str(store).startswith("s3://")


def test_a_bucket_that_cannot_be_reached_fails_the_run_with_the_reason(feed_world, settings, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "certnet-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "certnet-test-secret")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    settings.CERTNET_EVENTS_URL = (
        f"s3://{BUCKET}/events?endpoint_override=127.0.0.1:{_free_port()}&scheme=http&region=us-east-1"
    )
    path = write(feed_world, "2026-11-20-scan_rdp-pakistan-geo.csv", scan_rdp([event("198.51.100.7")]))
    run = run_source_file(ACTOR, feed_world["source"], path).run
    assert run.status == RunStatus.FAILED
    assert "events store" in run.error or "127.0.0.1" in run.error, run.error
