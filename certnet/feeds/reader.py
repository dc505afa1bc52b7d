"""Reading feed files as text tables, in bounded batches, whatever state they arrive in.

`sniff_csv` looks at the head of a file once: its encoding (UTF-8, with or without a BOM, else
Latin-1), its delimiter, leading comment lines (abuse.ch puts its header in one) and the header.
`read_csv_batches` then streams the file through Arrow's multi-threaded CSV reader with every column as
text, so a value is never guessed at: the mapping decides what each column means. Lines that do not
have the header's number of columns are handed to `on_bad_line` with their text and never stop the run.
"""

from __future__ import annotations

import csv
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

SNIFF_BYTES = 1 << 16
DELIMITERS = (",", ";", "\t", "|")
DEFAULT_BLOCK_BYTES = 4 << 20


class UnreadableFile(ValueError):
    """The file cannot be read as a table at all; the message says why."""


@dataclass(frozen=True)
class BadLine:
    line: int | None  # 1-based line number in the file, when the reader knows it
    text: str
    reason: str


@dataclass
class CsvLayout:
    encoding: str
    delimiter: str
    columns: list[str]
    skip_lines: int  # lines before the data: comments and the header
    notes: list[str] = field(default_factory=list)


def _decode_head(head: bytes) -> tuple[str, str, list[str]]:
    notes: list[str] = []
    if head.startswith(b"\xef\xbb\xbf"):
        return (
            head[3:].decode("utf-8", errors="replace"),
            "utf-8",
            ["the file starts with a UTF-8 byte-order mark"],
        )
    try:
        # The sample may end inside a multi-byte character; only the end may be cut.
        return head.decode("utf-8"), "utf-8", notes
    except UnicodeDecodeError as error:
        if error.start >= len(head) - 3:
            return head[: error.start].decode("utf-8"), "utf-8", notes
    notes.append("the file is not UTF-8; it was read as Latin-1")
    return head.decode("latin-1"), "latin-1", notes


def _split(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter), [])


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for position, raw in enumerate(names):
        name = raw.strip() or f"column_{position + 1}"
        count = seen.get(name, 0)
        seen[name] = count + 1
        unique.append(name if count == 0 else f"{name}_{count + 1}")
    return unique


def sniff_csv(path: Path, *, delimiter: str | None = None) -> CsvLayout:
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head.strip():
        raise UnreadableFile(f"{path.name}: the file is empty")
    text, encoding, notes = _decode_head(head)
    lines = text.splitlines()
    skip = 0
    comment_header: str | None = None
    while skip < len(lines) and (lines[skip].startswith("#") or not lines[skip].strip()):
        if lines[skip].startswith("#") and any(d in lines[skip] for d in DELIMITERS):
            comment_header = lines[skip].lstrip("#").strip()
        skip += 1
    if skip >= len(lines):
        raise UnreadableFile(
            f"{path.name}: no header line in the first {SNIFF_BYTES // 1024} KiB (only comments)"
        )
    header = lines[skip]
    if delimiter is None:
        counts = {d: header.count(d) for d in DELIMITERS}
        delimiter = max(counts, key=lambda d: counts[d])
        if counts[delimiter] == 0 and comment_header:
            counts = {d: comment_header.count(d) for d in DELIMITERS}
            delimiter = max(counts, key=lambda d: counts[d])
    if delimiter != ",":
        notes.append(f"the delimiter is {delimiter!r}")
    first = _split(header, delimiter)
    looks_like_data = comment_header is not None and len(_split(comment_header, delimiter)) == len(first)
    if looks_like_data:
        # abuse.ch: the header is the last comment line and the data starts right after it.
        columns = _split(comment_header or "", delimiter)
        skip_lines = skip
    else:
        columns = first
        skip_lines = skip + 1
    return CsvLayout(
        encoding=encoding,
        delimiter=delimiter,
        columns=_unique_names(columns),
        skip_lines=skip_lines,
        notes=notes,
    )


def read_csv_batches(
    source: Path,
    layout: CsvLayout,
    *,
    on_bad_line: Callable[[BadLine], None],
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    use_threads: bool = False,
    position: list[int] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Record batches of text columns; empty cells are absent values. `position[0]` follows how far
    into the file the reader has got, for progress reports."""
    expected = len(layout.columns)

    def bad_row(row: pacsv.InvalidRow) -> str:
        reason = f"expected {expected} columns, found {row.actual_columns}"
        on_bad_line(BadLine(line=row.number, text=row.text, reason=reason))
        return "skip"

    read = pacsv.ReadOptions(
        column_names=layout.columns,
        skip_rows=layout.skip_lines,
        block_size=block_bytes,
        use_threads=use_threads,
        encoding="utf8" if layout.encoding == "utf-8" else layout.encoding,
    )
    parse = pacsv.ParseOptions(
        delimiter=layout.delimiter, invalid_row_handler=bad_row, newlines_in_values=False
    )
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in layout.columns},
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        null_values=[""],
    )
    # Through a Python file: Arrow then reads one block at a time. Given a path or an Arrow file it
    # reads many blocks ahead, which cost 150-250 MiB more (measured) and no speed once the pipeline
    # keeps both cores busy; `_read_ahead` parses the next block while this one is processed.
    with source.open("rb") as handle:
        reader = pacsv.open_csv(handle, read_options=read, parse_options=parse, convert_options=convert)
        try:
            for batch in _read_ahead(reader):
                if position is not None:
                    position[0] = handle.tell()
                yield batch
        finally:
            del reader


_END = object()


def _read_ahead(reader: pacsv.CSVStreamingReader, depth: int = 1) -> Iterator[pa.RecordBatch]:
    """Parse the next block in a thread while the caller works on this one (the reader releases the
    GIL); `depth` blocks at most wait, which bounds memory."""
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)

    def produce() -> None:
        try:
            for batch in reader:
                ready.put(batch)
        except BaseException as error:  # handed to the consumer, which raises it where it reads
            ready.put(error)
        ready.put(_END)

    thread = threading.Thread(target=produce, name="feed-reader", daemon=True)
    thread.start()
    while (item := ready.get()) is not _END:
        if isinstance(item, BaseException):
            raise item
        yield item
    thread.join()
