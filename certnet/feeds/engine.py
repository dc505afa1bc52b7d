"""The feed pipeline over columnar batches: parse → deduplicate → enrich → write.

A run reads one file in bounded batches (Arrow's CSV reader, every column as text), applies the
report's mapping, sets aside malformed rows with their reason and text, drops events seen before within
the window, routes the rest to constituents and writes them to the events store. One batch is the unit
of work everywhere: in-process here, a stream message in distributed mode (`streams.py`). Its id is
derived from the file's digest and its position, so processing it again gives the same files.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from certnet.feeds import reader as feed_reader
from certnet.feeds.dedup import SeenKeys, first_in_batch
from certnet.feeds.keys import row_keys
from certnet.feeds.mapping import (
    Mapping,
    MappingError,
    apply_mapping,
    detect_mapping,
    shadowserver_report_from_file_name,
)
from certnet.feeds.routing import route_by_day
from certnet.feeds.store import EventStore

log = logging.getLogger(__name__)


class StoreWriteError(RuntimeError):
    """A batch's events could not be written to the events store."""


@dataclass(frozen=True)
class SourceSettings:
    """What the engine needs to know about where a file came from."""

    code: str  # the configured source's identifier (also the store's feed partition)
    provider: str = ""
    tlp: str = "AMBER"
    mapping: Mapping | None = None  # None: recognise the report from the file name or header
    candidates: dict[str, Mapping] | None = None  # the mappings to recognise it among (default: shipped)


@dataclass
class Quarantined:
    line: int | None  # the line in the file, counted from 1 with the header (see `reader`)
    reason: str
    raw: str
    batch: str = ""


@dataclass
class BatchResult:
    batch_id: str
    read: int
    parsed: int
    duplicates: int
    routed: int
    per_cert: Counter[str]
    unrouted: int
    quarantined: list[Quarantined]
    coerced: int
    written: int

    def include_bad_lines(self, lines: list[Quarantined]) -> None:
        """Lines the reader could not split count as read and quarantined in this batch."""
        for line in lines:
            line.batch = self.batch_id
        self.quarantined.extend(lines)
        self.read += len(lines)


# A run's counts, in the order the pipeline takes them (pages and the CLI list them so).
RUN_COUNTS = (
    "read",
    "parsed",
    "duplicates",
    "routed",
    "unrouted",
    "quarantined",
    "coerced",
    "written",
    "batches",
)


@dataclass
class RunSummary:
    file_name: str
    sha256: str
    mapping: str
    bytes: int
    read: int = 0
    parsed: int = 0
    duplicates: int = 0
    routed: int = 0
    unrouted: int = 0
    quarantined: int = 0
    coerced: int = 0
    written: int = 0
    batches: int = 0
    per_cert: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    error: str = ""

    def add(self, result: BatchResult) -> None:
        self.batches += 1
        self.read += result.read
        self.parsed += result.parsed
        self.duplicates += result.duplicates
        self.routed += result.routed
        self.unrouted += result.unrouted
        self.quarantined += len(result.quarantined)
        self.coerced += result.coerced
        self.written += result.written
        self.per_cert.update(result.per_cert)

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file_name,
            "sha256": self.sha256,
            "mapping": self.mapping,
            "bytes": self.bytes,
            "read": self.read,
            "parsed": self.parsed,
            "duplicates": self.duplicates,
            "routed": self.routed,
            "unrouted": self.unrouted,
            "quarantined": self.quarantined,
            "coerced": self.coerced,
            "written": self.written,
            "batches": self.batches,
            "per_cert": dict(sorted(self.per_cert.items())),
            "notes": self.notes,
            "error": self.error,
        }


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def batch_id_for(sha256: str, number: int) -> str:
    return f"{sha256[:24]}-{number:06d}"


def _csv_lines(table: pa.Table, rows: np.ndarray, delimiter: str) -> list[str]:
    """The quarantined rows as CSV lines again (values exactly as read)."""
    picked = table.take(pa.array(np.flatnonzero(rows))).to_pylist()
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    lines = []
    for row in picked:
        out.seek(0)
        out.truncate()
        writer.writerow(["" if v is None else v for v in row.values()])
        lines.append(out.getvalue().rstrip("\n"))
    return lines


class Pipeline:
    """Runs batches through the stages. Writing a batch's files overlaps with parsing the next one
    (Arrow and Parquet release the GIL); a batch counts as done only once its files are in place and
    its keys are durable, and at most `writes_in_flight` batches wait for that, which bounds memory."""

    def __init__(
        self,
        *,
        store: EventStore,
        seen: SeenKeys,
        observed_at: Callable[[], dt.datetime] | None = None,
        writes_in_flight: int = 2,
    ) -> None:
        self.store = store
        self.seen = seen
        self.observed_at = observed_at or (lambda: dt.datetime.now(dt.UTC))
        self._writer = ThreadPoolExecutor(
            max_workers=max(1, writes_in_flight), thread_name_prefix="feed-writer"
        )
        self._in_flight: deque[tuple[BatchResult, Future[int]]] = deque()
        self._limit = max(1, writes_in_flight)

    def process(
        self,
        batch_id: str,
        text: pa.Table,
        mapping: Mapping,
        source: SourceSettings,
        delimiter: str = ",",
        lines: np.ndarray | None = None,
    ) -> BatchResult:
        """Process one batch to the end, output included."""
        result = self.submit(batch_id, text, mapping, source, delimiter, lines)
        self.drain()
        return result

    def submit(
        self,
        batch_id: str,
        text: pa.Table,
        mapping: Mapping,
        source: SourceSettings,
        delimiter: str = ",",
        lines: np.ndarray | None = None,
    ) -> BatchResult:
        """Process one batch up to its output, which is written in the background; `drain` (or the
        next `submit` beyond the limit) waits for it. `lines`, the line in the file of each row of
        `text`, numbers its malformed rows; without it (a batch from a stream) they have none."""
        mapped = apply_mapping(mapping, text)
        quarantined = []
        if mapped.malformed.any():
            raws = _csv_lines(text, mapped.malformed, delimiter)
            numbers: list[int | None] = (
                [None] * len(raws) if lines is None else lines[mapped.malformed].tolist()
            )
            quarantined = [
                Quarantined(line=line, reason=r, raw=raw, batch=batch_id)
                for line, r, raw in zip(numbers, mapped.reasons, raws, strict=True)
            ]
        table = mapped.table.filter(pa.array(~mapped.malformed)) if mapped.malformed.any() else mapped.table
        table = self._stamp(table, mapping, source)
        keys = row_keys(table, mapping.dedup_fields(table.column_names))
        keep = first_in_batch(keys)
        keep[keep] = self.seen.claim(batch_id, keys[keep])
        duplicates = int((~keep).sum())
        if duplicates:
            table = table.filter(pa.array(keep))
        table = route_by_day(table)
        routed = table.num_rows - table.column("route.organisation").null_count
        per_cert: Counter[str] = Counter()
        if routed:
            counts = pc.value_counts(pc.drop_null(table.column("route.cert")))
            per_cert.update({str(v["values"]): int(v["counts"]) for v in counts.to_pylist()})
        result = BatchResult(
            batch_id=batch_id,
            read=text.num_rows,
            parsed=mapped.table.num_rows - len(quarantined),
            duplicates=duplicates,
            routed=routed,
            per_cert=per_cert,
            unrouted=table.num_rows - routed,
            quarantined=quarantined,
            coerced=mapped.coerced,
            written=0,
        )
        while len(self._in_flight) >= self._limit:
            self._finish(*self._in_flight.popleft())
        future = self._writer.submit(self._write, batch_id, table, source.code)
        self._in_flight.append((result, future))
        return result

    def _write(self, batch_id: str, table: pa.Table, feed: str) -> int:
        try:
            return sum(f.rows for f in self.store.write_batch(batch_id, table, feed))
        except OSError as error:
            # The batch's keys stay unclaimed (its claim is committed only after this returns), so
            # running the file again writes it: nothing accepted is lost to an unreachable store.
            raise StoreWriteError(
                f"the events store ({self.store}) could not take batch {batch_id}: {error}"
            ) from error

    def _finish(self, result: BatchResult, future: Future[int]) -> BatchResult:
        result.written = future.result()
        self.seen.commit(result.batch_id)
        return result

    def wait_for(self, result: BatchResult) -> BatchResult:
        """Wait until the batch of `result` (a `submit`'s) is done, and those submitted before it."""
        while any(entry is result for entry, _ in self._in_flight):
            self._finish(*self._in_flight.popleft())
        return result

    def drain(self) -> list[BatchResult]:
        """Wait for every batch in flight; returns them, oldest first. A batch whose write failed is
        not committed; the first such failure is raised once every other batch has finished."""
        done: list[BatchResult] = []
        failure: Exception | None = None
        while self._in_flight:
            try:
                done.append(self._finish(*self._in_flight.popleft()))
            except Exception as error:
                failure = failure or error
        if failure is not None:
            raise failure
        return done

    def close(self) -> None:
        self.drain()
        self._writer.shutdown()
        self.seen.close()

    def _stamp(self, table: pa.Table, mapping: Mapping, source: SourceSettings) -> pa.Table:
        """Fields every event gets from its source, unless the feed itself said otherwise."""
        rows = table.num_rows
        constants = {
            "feed.name": mapping.feed,
            "feed.provider": source.provider or mapping.provider,
            "feed.code": source.code,
            "tlp": source.tlp,
        }
        for name, value in constants.items():
            filler = pa.repeat(pa.scalar(value, pa.string()), rows)
            if name in table.column_names:
                table = table.set_column(
                    table.column_names.index(name), name, pc.coalesce(table.column(name), filler)
                )
            else:
                table = table.append_column(name, filler)
        observed = pa.repeat(pa.scalar(self.observed_at(), pa.timestamp("us", tz="UTC")), rows)
        if "time.observation" not in table.column_names:
            table = table.append_column("time.observation", observed)
        return table


@dataclass
class PreparedBatch:
    number: int
    batch_id: str
    text: pa.Table
    bad_lines: list[Quarantined]  # lines the reader could not split, met while reading this block
    padded: int  # short lines read with their missing last columns empty
    lines: np.ndarray | None = None  # the line in the file of each row of `text`


@dataclass
class FileBatches:
    """A file opened for the pipeline: its layout, the mapping that recognises it, and its batches.
    `error` is set (and there are no batches) when the file cannot be read at all; a problem met
    halfway sets it when the iteration ends, after the batches read before it."""

    path: Path
    sha256: str
    layout: feed_reader.CsvLayout | None = None
    mapping: Mapping | None = None
    error: str = ""
    position: list[int] = field(default_factory=lambda: [0])

    @classmethod
    def open(cls, path: Path, source: SourceSettings, sha256: str | None = None) -> FileBatches:
        opened = cls(path=path, sha256=sha256 or file_digest(path))
        try:
            opened.layout = feed_reader.sniff_csv(path)
        except feed_reader.UnreadableFile as error:
            opened.error = str(error)
            return opened
        opened.mapping = source.mapping or detect_mapping(path.name, opened.layout.columns, source.candidates)
        if opened.mapping is None:
            report = shadowserver_report_from_file_name(path.name) or "none"
            opened.error = (
                f"{path.name}: no mapping recognises this file (report type from the name: {report}; "
                f"columns: {', '.join(opened.layout.columns[:12])})"
            )
        return opened

    def batches(self, block_bytes: int = feed_reader.DEFAULT_BLOCK_BYTES) -> Iterator[PreparedBatch]:
        if self.layout is None or self.mapping is None:
            return
        bad_lines: list[feed_reader.BadLine] = []
        number = -1
        try:
            for number, (text, lines) in enumerate(
                _batches(self.path, self.layout, bad_lines.append, block_bytes, self.position)
            ):
                text, lines, padded = _with_short_lines(text, lines, bad_lines, self.layout)
                batch_id = batch_id_for(self.sha256, number)
                yield PreparedBatch(number, batch_id, text, self._take(bad_lines), padded, lines)
        except (pa.ArrowInvalid, UnicodeDecodeError) as error:
            self.error = f"{self.path.name}: the file could not be read past batch {number + 1}: {error}"
        if bad_lines:  # met after the last block (all of a file's lines, if all are short): a batch
            empty = pa.table({name: pa.array([], pa.string()) for name in self.layout.columns})
            text, lines, padded = _with_short_lines(empty, np.zeros(0, np.int64), bad_lines, self.layout)
            number += 1
            batch_id = batch_id_for(self.sha256, number)
            yield PreparedBatch(number, batch_id, text, self._take(bad_lines), padded, lines)

    @staticmethod
    def _take(bad_lines: list[feed_reader.BadLine]) -> list[Quarantined]:
        taken = [Quarantined(line=b.line, reason=b.reason, raw=b.text) for b in bad_lines]
        bad_lines.clear()
        return taken


def run_file(
    path: Path,
    source: SourceSettings,
    pipeline: Pipeline,
    *,
    on_quarantine: Callable[[list[Quarantined]], None],
    on_batch: Callable[[BatchResult, int], None] | None = None,  # the result, bytes read so far
    block_bytes: int = feed_reader.DEFAULT_BLOCK_BYTES,
    sha256: str | None = None,
) -> RunSummary:
    """Run one CSV file through the pipeline in this process. File-level problems end the run with
    `error` set; they never raise, and every batch processed before them is kept."""
    opened = FileBatches.open(path, source, sha256)
    summary = RunSummary(file_name=path.name, sha256=opened.sha256, mapping="", bytes=path.stat().st_size)
    if opened.layout is not None:
        summary.notes.extend(opened.layout.notes)
    if opened.mapping is None:
        summary.error = opened.error
        return summary
    summary.mapping = opened.mapping.key
    delimiter = opened.layout.delimiter if opened.layout else ","
    results: list[BatchResult] = []
    padded = 0
    try:
        for batch in opened.batches(block_bytes):
            result = pipeline.submit(
                batch.batch_id, batch.text, opened.mapping, source, delimiter, lines=batch.lines
            )
            result.include_bad_lines(batch.bad_lines)
            padded += batch.padded
            on_quarantine(result.quarantined)
            results.append(result)
            if on_batch:
                on_batch(result, opened.position[0])
    except MappingError as error:
        summary.error = f"{path.name}: {error}"
    except Exception as error:  # a defect must end the run with its reason, not lose the batches before
        log.exception("feed run of %s stopped", path.name)
        summary.error = (
            f"{path.name}: the run stopped at batch {len(results)}: {type(error).__name__}: {error}"
        )
    finally:
        try:
            pipeline.drain()
        except Exception as error:
            log.exception("feed run of %s: a batch was not written", path.name)
            summary.error = summary.error or f"{path.name}: {error}"
    summary.error = summary.error or opened.error
    for result in results:
        summary.add(result)
    if padded:
        summary.notes.append(f"{padded} line(s) ended early; their missing last columns were read as empty")
    return summary


# A short line's cells are split again in Python; its cells may be as long as a line may be.
csv.field_size_limit(2**31 - 1)


def _with_short_lines(
    text: pa.Table,
    lines: np.ndarray | None,
    bad_lines: list[feed_reader.BadLine],
    layout: feed_reader.CsvLayout,
) -> tuple[pa.Table, np.ndarray | None, int]:
    """Lines that stop before the last columns (Shadowserver adds columns at the end, and older
    rows lack them) are read with those columns empty, after the batch's other rows (`lines` gets
    their lines); only they leave `bad_lines`."""
    width = len(layout.columns)
    short_rows, short_lines, rest = [], [], []
    for bad in bad_lines:
        # Only lines the reader counted as having too few cells; a line cut short at the end of the
        # file or too long to read is quarantined whatever its beginning looks like.
        if bad.columns is None or not 1 < bad.columns < width:
            rest.append(bad)
            continue
        cells = next(csv.reader([bad.text], delimiter=layout.delimiter), [])
        if len(cells) == bad.columns:
            short_rows.append([cell or None for cell in cells] + [None] * (width - len(cells)))
            short_lines.append(bad.line)
        else:
            rest.append(bad)
    if not short_rows:
        return text, lines, 0
    bad_lines[:] = rest
    extra = pa.table(
        {name: pa.array([row[i] for row in short_rows], pa.string()) for i, name in enumerate(layout.columns)}
    )
    if lines is not None and None not in short_lines:
        lines = np.concatenate([lines, np.asarray(short_lines, np.int64)])
    else:
        lines = None
    return pa.concat_tables([text, extra.select(text.column_names)]), lines, len(short_rows)


def _batches(
    path: Path,
    layout: feed_reader.CsvLayout,
    on_bad_line: Callable[[feed_reader.BadLine], None],
    block_bytes: int,
    position: list[int],
) -> Iterator[tuple[pa.Table, np.ndarray | None]]:
    lines: list[np.ndarray | None] = [None]
    batches = feed_reader.read_csv_batches(
        path, layout, on_bad_line=on_bad_line, block_bytes=block_bytes, position=position, lines=lines
    )
    for batch in batches:
        yield pa.Table.from_batches([batch]), lines[0]
