"""Distributed mode: batches on a Redis stream, `certnet worker` processes on any number of machines.

The producer reads a file in blocks, as the embedded runner does, and adds each block to the stream as
one message: its batch id, the run, the source and the block itself (Arrow IPC, compressed). Workers
in one consumer group claim messages, run them through the same `Pipeline`, and acknowledge a message
only after its files are in the events store and its results recorded. A message a worker took and
did not acknowledge (it died) is claimed by another after `RECLAIM_IDLE_MS` (XAUTOCLAIM). Everything a
batch writes is keyed by its id (its files, its keys in the window, its results, its quarantined
rows), so a batch processed twice leaves the same state as once: nothing lost, nothing doubled.

Keys: `certnet:feeds:batches` (the stream), `certnet:feeds:run:<id>` (a hash of per-batch results),
`certnet:feeds:run:<id>:meta` (total batches once known, file, source). The deduplication window's
log is described in `shared_window.py`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import redis

from certnet.feeds.engine import BatchResult, Pipeline, SourceSettings

log = logging.getLogger(__name__)

STREAM = "certnet:feeds:batches"
GROUP = "workers"
RECLAIM_IDLE_MS = 60_000
RETRY_PAUSE_SECONDS = 0.5


def encode_table(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema, options=ipc.IpcWriteOptions(compression="lz4")) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def decode_table(data: bytes) -> pa.Table:
    return ipc.open_stream(pa.py_buffer(data)).read_all()


@dataclass(frozen=True)
class BatchMessage:
    message_id: str
    batch_id: str
    run_id: int
    source: str
    mapping: str
    delimiter: str
    table: pa.Table
    lines: np.ndarray | None = None  # the line in the file of each row, to number quarantined rows


def as_text(value: Any) -> str:
    """A Redis reply's bytes as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_message(message_id: Any, fields: dict[Any, Any]) -> BatchMessage:
    get = {as_text(k): v for k, v in fields.items()}
    return BatchMessage(
        message_id=as_text(message_id),
        batch_id=as_text(get["batch"]),
        run_id=int(as_text(get["run"])),
        source=as_text(get["source"]),
        mapping=as_text(get["mapping"]),
        delimiter=as_text(get.get("delimiter", ",")),
        table=decode_table(get["data"]),
        lines=np.frombuffer(get["lines"], dtype=np.int64) if get.get("lines") else None,
    )


def ensure_group(client: redis.Redis) -> None:
    try:
        client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


def run_key(run_id: int) -> str:
    return f"certnet:feeds:run:{run_id}"


def enqueue_batch(
    client: redis.Redis,
    run_id: int,
    batch_id: str,
    source: str,
    mapping: str,
    delimiter: str,
    table: pa.Table,
    lines: np.ndarray | None = None,
) -> None:
    fields: dict[Any, Any] = {
        "batch": batch_id,
        "run": run_id,
        "source": source,
        "mapping": mapping,
        "delimiter": delimiter,
        "data": encode_table(table),
    }
    if lines is not None:
        fields["lines"] = np.asarray(lines, dtype=np.int64).tobytes()
    client.xadd(STREAM, fields)


def wait_for_room(client: redis.Redis, limit: int, pause: float = 0.05) -> None:
    """Hold the producer while `limit` batches wait: the stream, not the producer's memory, is the buffer,
    and Redis's memory is bounded too."""
    while True:
        waiting = client.xlen(STREAM)
        if waiting < limit:
            return
        time.sleep(pause)


def record_result(client: redis.Redis, run_id: int, result: BatchResult) -> None:
    summary = {
        "read": result.read,
        "parsed": result.parsed,
        "duplicates": result.duplicates,
        "routed": result.routed,
        "unrouted": result.unrouted,
        "quarantined": len(result.quarantined),
        "coerced": result.coerced,
        "written": result.written,
        "per_cert": dict(result.per_cert),
    }
    client.hset(run_key(run_id), result.batch_id, json.dumps(summary))


def run_results(client: redis.Redis, run_id: int) -> dict[str, dict[str, Any]]:
    return {as_text(k): json.loads(v) for k, v in client.hgetall(run_key(run_id)).items()}


def totals(results: dict[str, dict[str, Any]]) -> tuple[dict[str, int], Counter[str]]:
    counts: Counter[str] = Counter()
    per_cert: Counter[str] = Counter()
    for item in results.values():
        per_cert.update(item.pop("per_cert", {}))
        counts.update({k: int(v) for k, v in item.items()})
    counts["batches"] = len(results)
    return dict(counts), per_cert


@dataclass
class _Submitted:
    """A batch a worker has processed up to its output, which is still being written."""

    message: BatchMessage
    pipeline: Pipeline
    result: BatchResult


class Worker:
    """One consumer of the group: claims batches, processes them, acknowledges them. While one
    batch's files are written, the next one is claimed and processed (as the embedded runner
    overlaps them); a batch is acknowledged only once its files are in place and its results
    recorded, so a worker that dies holds at most two batches, both claimed again."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        pipeline_for: Callable[[str], tuple[Pipeline, SourceSettings]],
        on_done: Callable[[BatchMessage, BatchResult], None],
        name: str | None = None,
        reclaim_idle_ms: int = RECLAIM_IDLE_MS,
    ) -> None:
        self.client = client
        self.pipeline_for = pipeline_for
        self.on_done = on_done
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.reclaim_idle_ms = reclaim_idle_ms
        self.processed = 0
        self._stopping = False
        self._pipelines: list[Pipeline] = []

    def stop(self) -> None:
        self._stopping = True

    def messages(self, block_ms: int | None, skip: str | None = None) -> Iterator[tuple[Any, dict[Any, Any]]]:
        """This worker's own unfinished message first (one it failed on), then a dead worker's
        (XAUTOCLAIM), then a new one; never `skip`, the one being written. Without `block_ms`, only
        what is there already."""
        own: Any = self.client.xreadgroup(GROUP, self.name, {STREAM: "0"}, count=2)
        for _stream, entries in own or []:
            for message_id, fields in entries:
                if fields and as_text(message_id) != skip:
                    yield message_id, fields
                    return
        reply: Any = self.client.xautoclaim(STREAM, GROUP, self.name, self.reclaim_idle_ms, "0-0", count=1)
        claimed = [(mid, fields) for mid, fields in reply[1] if fields and as_text(mid) != skip]
        if claimed:
            yield from claimed
            return
        replies: Any = self.client.xreadgroup(GROUP, self.name, {STREAM: ">"}, count=1, block=block_ms)
        for _stream, entries in replies or []:
            yield from entries

    def handle(self, message_id: Any, fields: dict[Any, Any]) -> None:
        """Process one batch to the end and acknowledge it."""
        self._complete(self._submit(message_id, fields))

    def _submit(self, message_id: Any, fields: dict[Any, Any]) -> _Submitted:
        message = parse_message(message_id, fields)
        pipeline, source = self.pipeline_for(message.source)
        if pipeline not in self._pipelines:
            self._pipelines.append(pipeline)
        from certnet.feeds.services import mappings

        mapping = mappings()[message.mapping]
        result = pipeline.submit(
            message.batch_id, message.table, mapping, source, message.delimiter, lines=message.lines
        )
        return _Submitted(message, pipeline, result)

    def _complete(self, batch: _Submitted) -> None:
        batch.pipeline.wait_for(batch.result)
        self.on_done(batch.message, batch.result)
        # Only now is the batch done: its files are in place and its results recorded.
        self.client.xack(STREAM, GROUP, batch.message.message_id)
        self.client.xdel(STREAM, batch.message.message_id)
        self.processed += 1

    def _let_go(self) -> None:
        """After a failure: let every write in flight end. The batches stay unacknowledged and are
        this worker's own unfinished messages, taken again first."""
        for pipeline in self._pipelines:
            with contextlib.suppress(Exception):
                pipeline.drain()

    def run(
        self, *, stop_when_idle: bool = False, block_ms: int = 2000, max_batches: int | None = None
    ) -> int:
        ensure_group(self.client)
        writing: _Submitted | None = None
        while not self._stopping:
            try:
                room = max_batches is None or self.processed + (writing is not None) < max_batches
                got = False
                if room:
                    skip = writing.message.message_id if writing else None
                    for message_id, fields in self.messages(block_ms if writing is None else None, skip):
                        got = True
                        submitted = self._submit(message_id, fields)
                        previous, writing = writing, submitted
                        if previous is not None:
                            self._complete(previous)
                if not got:
                    if writing is not None:
                        previous, writing = writing, None
                        self._complete(previous)
                    elif not room or (stop_when_idle and self._idle()):
                        break
            except redis.ConnectionError as error:
                # Redis restarting: wait and go on; unacknowledged work is redelivered.
                log.warning("redis unavailable (%s); retrying", error)
                writing = None
                self._let_go()
                time.sleep(0.5)
            except Exception:  # e.g. the database busy: the batch stays unacknowledged and is tried again
                log.exception("worker %s: a batch failed; it will be tried again", self.name)
                writing = None
                self._let_go()
                time.sleep(RETRY_PAUSE_SECONDS)
        if writing is not None:  # stopping: finish the batch in hand
            try:
                self._complete(writing)
            except Exception:
                log.exception("worker %s: the last batch failed; it will be tried again", self.name)
                self._let_go()
        return self.processed

    def _idle(self) -> bool:
        pending = self.client.xpending(STREAM, GROUP)
        return self.client.xlen(STREAM) == 0 and not pending.get("pending")
