"""Distributed mode against a real Redis (Debian's redis-server, started on loopback by the test):
batches on a stream, workers in a consumer group, a dead worker's batch reclaimed, Redis restarted
mid-run, and the events store ending with every event exactly once."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import duckdb

from certnet.core.audit import SystemActor
from certnet.feeds import streams
from certnet.feeds.distributed import enqueue_source_file, make_worker
from certnet.feeds.models import FeedRun, QuarantinedRow, RunStatus
from certnet.feeds.services import run_source_file
from tests.feeds_support import event, scan_rdp

ACTOR = SystemActor("test")


def stored_ips(events_dir: Path) -> list[str]:
    files = duckdb.read_parquet(
        str(events_dir / "day=*" / "feed=*" / "*.parquet"), hive_partitioning=True, union_by_name=True
    )
    return sorted(row[0] for row in files.project('"source.ip"').fetchall())


def report(count: int, **extra) -> str:
    rows = [event(f"198.51.100.{i % 250}", at=f"2026-11-20 10:{i // 250:02d}:00") for i in range(count)]
    rows += [event("198.51.100.1", at="2026-11-20 10:00:00")] * 3  # duplicates of the first event
    rows.append(event("not-an-address"))
    return scan_rdp(rows)


def run_workers(client, count: int, **options) -> list[int]:
    processed = []

    def work(number: int) -> None:
        worker, pipelines = make_worker(client, name=f"w{number}", **options)
        try:
            processed.append(worker.run(stop_when_idle=True, block_ms=200))
        finally:
            pipelines.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return processed


def test_two_workers_process_a_queued_report_exactly_as_one_process_would(
    feed_world, redis_server, settings, transactional_db
):
    settings.CERTNET_FEED_BLOCK_BYTES = 4096  # many small batches
    path = feed_world["dir"] / "2026-11-20-scan_rdp-pakistan-geo.csv"
    path.write_text(report(600), encoding="utf-8")
    client = redis_server.client()

    outcome = enqueue_source_file(ACTOR, feed_world["source"], path, client, in_flight=10_000)
    assert outcome.run.status == RunStatus.RUNNING
    assert client.xlen(streams.STREAM) > 1
    processed = run_workers(client, 2)
    assert sum(processed) > 1

    run = FeedRun.objects.get(pk=outcome.run.pk)
    assert run.status == RunStatus.DONE
    assert run.counts["read"] == 604
    assert run.counts["duplicates"] == 3
    assert run.counts["quarantined"] == 1
    assert run.counts["written"] == 600
    assert run.per_cert == {"punjab-cert": 600}
    # The bad address is the report's last line (a header, then 604 rows): the worker numbers it.
    assert list(QuarantinedRow.objects.filter(run=run).values_list("line", flat=True)) == [605]
    distributed = stored_ips(feed_world["events"])
    assert len(distributed) == 600

    # The same file in one process, into a fresh store, gives the same events.
    shutil.rmtree(feed_world["events"])
    settings.CERTNET_FEEDS_STATE_DIR = feed_world["dir"] / "state-embedded"
    embedded = run_source_file(ACTOR, feed_world["source"], path, again=True).run
    assert embedded.counts == run.counts
    assert stored_ips(feed_world["events"]) == distributed


def test_a_batch_whose_worker_died_is_reclaimed_and_stored_once(
    feed_world, redis_server, settings, transactional_db
):
    settings.CERTNET_FEED_BLOCK_BYTES = 4096
    path = feed_world["dir"] / "2026-11-20-scan_rdp-pakistan-geo.csv"
    path.write_text(report(300), encoding="utf-8")
    client = redis_server.client()
    run = enqueue_source_file(ACTOR, feed_world["source"], path, client, in_flight=10_000).run

    # A worker takes a batch, writes its events, and dies before acknowledging it.
    doomed, pipelines = make_worker(client, name="doomed")
    streams.ensure_group(client)
    message_id, fields = next(doomed.messages(block_ms=100))
    message = streams.parse_message(message_id, fields)
    pipeline, source = pipelines(message.source)
    from certnet.feeds.services import mappings

    pipeline.process(message.batch_id, message.table, mappings()[message.mapping], source, message.delimiter)
    pipelines.close()
    assert client.xpending(streams.STREAM, streams.GROUP)["pending"] == 1

    # The others take it over once it has been idle long enough; it is processed again, once.
    run_workers(client, 2, reclaim_idle_ms=100)
    run.refresh_from_db()
    assert run.status == RunStatus.DONE
    assert run.counts["written"] == 300
    assert len(stored_ips(feed_world["events"])) == 300
    assert client.xpending(streams.STREAM, streams.GROUP)["pending"] == 0


def test_workers_wait_out_a_redis_restart_and_lose_nothing(
    feed_world, redis_server, settings, transactional_db
):
    settings.CERTNET_FEED_BLOCK_BYTES = 4096
    path = feed_world["dir"] / "2026-11-20-scan_rdp-pakistan-geo.csv"
    path.write_text(report(600), encoding="utf-8")
    client = redis_server.client()
    run = enqueue_source_file(ACTOR, feed_world["source"], path, client, in_flight=10_000).run
    queued = client.xlen(streams.STREAM)

    worker, pipelines = make_worker(client, name="steady")
    done = []
    thread = threading.Thread(target=lambda: done.append(worker.run(stop_when_idle=True, block_ms=200)))
    worker.handle(*next(worker.messages(block_ms=100)))  # one batch before the restart
    redis_server.stop()
    thread.start()
    time.sleep(1.0)  # the worker meets a closed port and keeps retrying
    redis_server.start()
    thread.join(timeout=120)
    pipelines.close()
    assert not thread.is_alive()
    assert done[0] == queued  # the one before the restart included
    run.refresh_from_db()
    assert run.status == RunStatus.DONE
    assert run.counts["written"] == 600
    assert len(stored_ips(feed_world["events"])) == 600


def _queued_report(feed_world, redis_server, settings, rows: int = 600):
    settings.CERTNET_FEED_BLOCK_BYTES = 4096
    path = feed_world["dir"] / "2026-11-20-scan_rdp-pakistan-geo.csv"
    path.write_text(report(rows), encoding="utf-8")
    client = redis_server.client()
    run = enqueue_source_file(ACTOR, feed_world["source"], path, client, in_flight=10_000).run
    return client, run, client.xlen(streams.STREAM)


def _until_idle(worker, pipelines) -> int:
    try:
        return worker.run(stop_when_idle=True, block_ms=200)
    finally:
        pipelines.close()


def _done_with_every_event_once(run, feed_world) -> None:
    run.refresh_from_db()
    assert (run.status, run.counts["written"]) == (RunStatus.DONE, 600)
    assert len(stored_ips(feed_world["events"])) == 600


def test_a_worker_takes_the_next_batch_while_the_last_is_written_and_acknowledges_each_once(
    feed_world, redis_server, settings, transactional_db
):
    client, run, queued = _queued_report(feed_world, redis_server, settings)
    worker, pipelines = make_worker(client, name="overlapping")
    in_hand = []
    done = worker.on_done

    def recording(message, result):
        in_hand.append(client.xpending(streams.STREAM, streams.GROUP)["pending"])
        done(message, result)

    worker.on_done = recording
    processed = _until_idle(worker, pipelines)
    # When a batch is recorded, the next one has been taken and processed already.
    assert in_hand == [2] * (queued - 1) + [1]
    assert processed == queued
    _done_with_every_event_once(run, feed_world)


def test_a_failure_with_two_batches_in_hand_leaves_both_to_be_taken_again(
    feed_world, redis_server, settings, transactional_db
):
    client, run, queued = _queued_report(feed_world, redis_server, settings)
    worker, pipelines = make_worker(client, name="stumbling")
    done = worker.on_done
    calls = []

    def failing_once(message, result):
        calls.append(message.batch_id)
        if len(calls) == 3:
            raise RuntimeError("the database is busy")
        done(message, result)

    worker.on_done = failing_once
    processed = _until_idle(worker, pipelines)
    assert calls[3] == calls[2]  # the batch that failed is taken again first
    assert processed == queued
    _done_with_every_event_once(run, feed_world)
    assert client.xpending(streams.STREAM, streams.GROUP)["pending"] == 0


def test_a_worker_asked_for_some_batches_leaves_none_in_hand(
    feed_world, redis_server, settings, transactional_db
):
    client, _, queued = _queued_report(feed_world, redis_server, settings)
    worker, pipelines = make_worker(client, name="brief")
    try:
        assert worker.run(max_batches=3, block_ms=200) == 3
    finally:
        pipelines.close()
    assert client.xpending(streams.STREAM, streams.GROUP)["pending"] == 0
    assert client.xlen(streams.STREAM) == queued - 3
