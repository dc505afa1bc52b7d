"""Runs in distributed mode: a producer puts a file's batches on the Redis stream, workers process them
(`streams.Worker`), and whoever records a run's last batch writes the run's record.

The run in the database is the same `FeedRun` as in embedded mode; only who does the work differs.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import Counter
from pathlib import Path

import redis
from django.conf import settings

from certnet.core import audit
from certnet.feeds import streams
from certnet.feeds.engine import RUN_COUNTS, BatchResult, FileBatches, Pipeline, RunSummary, SourceSettings
from certnet.feeds.models import FeedRun, FeedSource, RunStatus
from certnet.feeds.services import (
    Actor,
    RunOutcome,
    begin_run,
    finish_run,
    keep_quarantined,
    settings_for,
)
from certnet.feeds.shared_window import RedisSeenKeys
from certnet.feeds.store import EventStore

WORKER_ACTOR = audit.SystemActor("feeds-worker")
FINISH_LOCK_SECONDS = 300
RESULTS_KEPT_SECONDS = 7 * 24 * 3600


def redis_client() -> redis.Redis:
    url = settings.REDIS_URL
    if not url:
        raise RuntimeError("distributed mode needs REDIS_URL (the Redis that carries the feed stream)")
    return redis.Redis.from_url(url, socket_timeout=30, health_check_interval=10)


def enqueue_source_file(
    actor: Actor,
    source: FeedSource,
    path: Path,
    client: redis.Redis,
    *,
    again: bool = False,
    in_flight: int | None = None,
) -> RunOutcome:
    """Put every batch of the file on the stream; returns the run, which the workers finish. At most
    `in_flight` batches wait on the stream (CERTNET_FEED_STREAM_MAX_BATCHES): the producer waits for
    the workers rather than filling Redis's memory with the whole file."""
    in_flight = in_flight or settings.CERTNET_FEED_STREAM_MAX_BATCHES
    begun = begin_run(actor, source, path, again=again)
    if isinstance(begun, RunOutcome):
        return begun
    run, sha256 = begun
    opened = FileBatches.open(path, settings_for(source), sha256)
    summary = RunSummary(file_name=path.name, sha256=sha256, mapping="", bytes=path.stat().st_size)
    if opened.layout is not None:
        summary.notes.extend(opened.layout.notes)
    if opened.mapping is None or opened.layout is None:
        summary.error = opened.error
        return RunOutcome(run=finish_run(actor, run, summary), summary=summary)
    streams.ensure_group(client)
    count, padded = 0, 0
    for batch in opened.batches(settings.CERTNET_FEED_BLOCK_BYTES):
        if batch.bad_lines:
            # The reader's rows are the producer's; the worker's batch key would replace them.
            for line in batch.bad_lines:
                line.batch = f"{batch.batch_id}-reader"
            keep_quarantined(run, batch.bad_lines, batch=f"{batch.batch_id}-reader")
        streams.wait_for_room(client, in_flight)
        streams.enqueue_batch(
            client,
            run.pk,
            batch.batch_id,
            source.code,
            opened.mapping.key,
            opened.layout.delimiter,
            batch.text,
            lines=batch.lines,
        )
        reader_counts = {"read": len(batch.bad_lines), "quarantined": len(batch.bad_lines)}
        client.hset(streams.run_key(run.pk) + ":reader", batch.batch_id, _json(reader_counts))
        count += 1
        padded += batch.padded
    notes = list(summary.notes)
    if padded:
        notes.append(f"{padded} line(s) ended early; their missing last columns were read as empty")
    client.hset(
        streams.run_key(run.pk) + ":meta",
        mapping={"total": count, "mapping": opened.mapping.key, "error": opened.error, "notes": _json(notes)},
    )
    finish_if_complete(client, run.pk)
    run.refresh_from_db()
    return RunOutcome(run=run, summary=None)


def _json(value: object) -> str:
    return json.dumps(value)


def finish_if_complete(client: redis.Redis, run_id: int) -> bool:
    """Write the run's record once every batch is in; only one process does it."""
    meta = {
        streams.as_text(k): streams.as_text(v)
        for k, v in client.hgetall(streams.run_key(run_id) + ":meta").items()
    }
    if "total" not in meta or client.hlen(streams.run_key(run_id)) < int(meta["total"]):
        return False
    # One finisher; the lock expires, so a finisher that dies leaves the run to the next batch's worker.
    if not client.set(streams.run_key(run_id) + ":final", "1", nx=True, ex=FINISH_LOCK_SECONDS):
        return False
    run = FeedRun.objects.get(pk=run_id)
    if run.status != RunStatus.RUNNING:
        return False
    counts, per_cert = streams.totals(streams.run_results(client, run_id))
    reader = [json.loads(v) for v in client.hgetall(streams.run_key(run_id) + ":reader").values()]
    for item in reader:
        counts["read"] = counts.get("read", 0) + int(item["read"])
        counts["quarantined"] = counts.get("quarantined", 0) + int(item["quarantined"])
    summary = RunSummary(
        file_name=run.file_name, sha256=run.sha256, mapping=meta.get("mapping", ""), bytes=run.bytes
    )
    for name in RUN_COUNTS:
        setattr(summary, name, int(counts.get(name, 0)))
    summary.per_cert = Counter(per_cert)
    summary.notes = json.loads(meta.get("notes") or "[]")
    summary.error = meta.get("error", "")
    finish_run(WORKER_ACTOR, run, summary)
    # The run's record is in the database now; Redis keeps its working state a while for inspection.
    for suffix in ("", ":meta", ":reader", ":final"):
        client.expire(streams.run_key(run_id) + suffix, RESULTS_KEPT_SECONDS)
    return True


class SourcePipelines:
    """A worker's pipelines, one per source, sharing the window in Redis and the events store."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._by_code: dict[str, tuple[Pipeline, SourceSettings]] = {}
        self._lock = threading.Lock()

    def __call__(self, code: str) -> tuple[Pipeline, SourceSettings]:
        with self._lock:
            if code not in self._by_code:
                source = FeedSource.objects.get(code=code)
                seen = RedisSeenKeys(
                    self.client, dt.timedelta(hours=source.dedup_window_hours), namespace=source.code
                )
                pipeline = Pipeline(store=EventStore.configured(), seen=seen, writes_in_flight=1)
                self._by_code[code] = (pipeline, settings_for(source))
            return self._by_code[code]

    def close(self) -> None:
        for pipeline, _ in self._by_code.values():
            pipeline.close()


def batch_done(client: redis.Redis, message: streams.BatchMessage, result: BatchResult) -> None:
    """What a worker records for a batch before acknowledging it: every part keyed by the batch."""
    run = FeedRun.objects.get(pk=message.run_id)
    keep_quarantined(run, result.quarantined, batch=message.batch_id)
    streams.record_result(client, message.run_id, result)
    finish_if_complete(client, message.run_id)


def make_worker(
    client: redis.Redis, name: str | None = None, reclaim_idle_ms: int = streams.RECLAIM_IDLE_MS
) -> tuple[streams.Worker, SourcePipelines]:
    pipelines = SourcePipelines(client)
    worker = streams.Worker(
        client,
        pipeline_for=pipelines,
        on_done=lambda message, result: batch_done(client, message, result),
        name=name,
        reclaim_idle_ms=reclaim_idle_ms,
    )
    return worker, pipelines
