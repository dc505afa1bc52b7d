"""Reading feed files as text tables, in bounded batches, whatever state they arrive in.

`sniff_csv` looks at the head of a file once: its encoding (UTF-8, with or without a BOM, else
Latin-1), its delimiter, leading comment lines (abuse.ch puts its header in one) and the header.
`read_csv_batches` then cuts the file into blocks of whole lines, a block ahead of the caller, and has
Arrow's CSV reader parse each with every column as text, so a value is never guessed at: the mapping
decides what each column means. Lines that do not have the header's number of columns, lines that are
not valid in the file's encoding and lines longer than a block are handed to `on_bad_line` with their
text (a long line's beginning) and never stop the run.

Line numbers, for bad lines and rows alike, are the file's physical lines counted from 1 as an editor
shows them: the header (and any comment or empty line before it) counts, so the first data line of a
file with a one-line header is line 2; every empty line counts; a line break is \r\n, \r or \n.
Feeds have no line breaks inside quoted values: a line that ends inside a quoted value (a quote not
closed) is handed to `on_bad_line` on its own, and the lines after it are read as usual, where Arrow
would take them into the value, up to the closing quote or the end of the block. Checking costs
nothing while a block's rows match its lines, and one regular expression for its last line.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import queue
import re
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

SNIFF_BYTES = 1 << 16
DELIMITERS = (",", ";", "\t", "|")
DEFAULT_BLOCK_BYTES = 4 << 20
LONG_LINE_KEEP_BYTES = 4096  # what is kept of a line too long to read, for the quarantine
# Line breaks as Arrow's reader knows them (str.splitlines also splits at \x0c, \x85, \u2028, …).
_LINE_BREAKS = re.compile(rb"\r\n|\r|\n")
_LINE_BREAKS_TEXT = re.compile(r"\r\n|\r|\n")
_LINE = re.compile(rb"([^\r\n]*)(\r\n|\r|\n|$)")
_UTF8_BOM = b"\xef\xbb\xbf"


class UnreadableFile(ValueError):
    """The file cannot be read as a table at all; the message says why."""


@dataclass(frozen=True)
class BadLine:
    line: int | None  # the line in the file (see the module's docstring), when the reader knows it
    text: str
    reason: str
    # For a line with another number of columns than the header, how many it has; None for a line
    # bad for another reason (not valid UTF-8, too long, cut short by the end of the file).
    columns: int | None = None


@dataclass
class CsvLayout:
    encoding: str
    delimiter: str
    columns: list[str]
    skip_lines: int  # lines before the data: comments and the header
    notes: list[str] = field(default_factory=list)
    data_offset: int = 0  # where the data starts in the file (bytes), after the skipped lines


def _decode_head(head: bytes) -> tuple[str, str, list[str]]:
    notes: list[str] = []
    if head.startswith(_UTF8_BOM):
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
    # UTF-8 with a few damaged lines (their lines are quarantined) rather than Latin-1, whose accented
    # letters almost never form valid UTF-8 sequences: decide by which kind of non-ASCII text dominates.
    text = head.decode("utf-8", errors="surrogateescape")
    invalid = sum(1 for c in text if "\udc80" <= c <= "\udcff")
    valid = sum(1 for c in text if c > "\x7f" and not "\udc80" <= c <= "\udcff")
    if valid > invalid:
        notes.append(
            f"the file is UTF-8 with {invalid} invalid byte(s) in its first {SNIFF_BYTES // 1024} KiB; "
            "lines that are not valid UTF-8 are quarantined"
        )
        return head.decode("utf-8", errors="replace"), "utf-8", notes
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
        size = handle.seek(0, io.SEEK_END)
        handle.seek(max(0, size - 1))
        last = handle.read(1)
    if not head.strip():
        raise UnreadableFile(f"{path.name}: the file is empty")
    text, encoding, notes = _decode_head(head)
    lines = _LINE_BREAKS_TEXT.split(text)
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
    if skip == len(lines) - 1 and size > len(head):
        raise UnreadableFile(f"{path.name}: no complete header line in the first {SNIFF_BYTES // 1024} KiB")
    if delimiter is None:
        counts = {d: header.count(d) for d in DELIMITERS}
        delimiter = max(counts, key=lambda d: counts[d])
        if counts[delimiter] == 0 and comment_header:
            counts = {d: comment_header.count(d) for d in DELIMITERS}
            delimiter = max(counts, key=lambda d: counts[d])
    if delimiter != ",":
        notes.append(f"the delimiter is {delimiter!r}")
    if last not in (b"\n", b"\r"):
        notes.append("the file does not end with a line break: its last line may have been cut short")
    first = _split(header, delimiter)
    looks_like_data = comment_header is not None and len(_split(comment_header, delimiter)) == len(first)
    if looks_like_data:
        # abuse.ch: the header is the last comment line and the data starts right after it.
        columns = _split(comment_header or "", delimiter)
        skip_lines = skip
    else:
        columns = first
        skip_lines = skip + 1
    ends = [match.end() for match in itertools.islice(_LINE_BREAKS.finditer(head), skip_lines)]
    data_offset = ends[-1] if skip_lines and len(ends) == skip_lines else len(head) if skip_lines else 0
    return CsvLayout(
        encoding=encoding,
        delimiter=delimiter,
        columns=_unique_names(columns),
        skip_lines=skip_lines,
        notes=notes,
        data_offset=data_offset,
    )


def read_csv_batches(
    source: Path,
    layout: CsvLayout,
    *,
    on_bad_line: Callable[[BadLine], None],
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    max_line_bytes: int | None = None,
    position: list[int] | None = None,
    lines: list[np.ndarray | None] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Record batches of text columns, one per block of about `block_bytes` of the file; empty cells
    are absent values. `position[0]` follows how far into the file the reader has got, for progress
    reports. `lines[0]` is set, just before each batch is yielded, to the line in the file of each of
    its rows (int64).

    A line longer than `max_line_bytes` (at most, and by default, `block_bytes`, half that for Latin-1,
    whose bytes Arrow turns into up to two before parsing) is not read: it is handed to `on_bad_line`
    with its beginning and its length, without ever being held in memory, and the lines after it are
    read as usual. In a UTF-8 file, a line that is not valid UTF-8 is handed over too (its bytes
    written as \\xNN), not left to fail its whole block. `on_bad_line` is called in the caller's
    thread, for a batch's lines just before the batch.

    The file is read, cut into blocks of whole lines and parsed in one thread, a block ahead of the
    caller. Each block goes to Arrow on its own: Arrow's streaming reader would read 32 blocks ahead
    in a thread of its own (128 MiB at 4 MiB blocks, most of a run's memory: measured), to no gain
    once the pipeline keeps both cores busy."""
    expected = len(layout.columns)
    growth = 1 if layout.encoding == "utf-8" else 2  # bytes Arrow parses per byte of the file, at most
    block_bytes = max(block_bytes, growth * (layout.data_offset + 1))
    pending: list[BadLine] = []  # filled in the thread that parses; handed over with each batch
    # Arrow numbers the lines of each block from 1, leaving out empty lines; `_LineNumbers` wants the
    # numbers a reader of the whole file would give: those of the blocks before are added.
    numbered_before = 0
    invalid_in_block = 0

    def bad_row(row: pacsv.InvalidRow) -> str:
        nonlocal invalid_in_block
        invalid_in_block += 1
        reason = f"expected {expected} columns, found {row.actual_columns}"
        line = numbered_before + row.number
        pending.append(BadLine(line=line, text=row.text, reason=reason, columns=row.actual_columns))
        return "skip"

    parse_options = pacsv.ParseOptions(
        delimiter=layout.delimiter, invalid_row_handler=bad_row, newlines_in_values=False
    )
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in layout.columns},
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        null_values=[""],
    )
    encoding = "utf8" if layout.encoding == "utf-8" else layout.encoding
    limit = max(min(max_line_bytes or block_bytes, block_bytes) // growth, layout.data_offset)

    def parse(data: bytearray, skip: int, first: bool) -> pa.Table:
        nonlocal invalid_in_block
        invalid_in_block = 0
        if not first and data.startswith(_UTF8_BOM) and encoding == "utf8":
            # Arrow drops a byte-order mark that begins what it is given: past the file's start the
            # mark is text, kept behind an empty line (which Arrow passes over without a number).
            data = bytearray(b"\n") + data
        read = pacsv.ReadOptions(
            column_names=layout.columns,
            skip_rows=skip,
            block_size=growth * len(data) + 1,  # one batch
            use_threads=False,
            encoding=encoding,
        )
        return pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(data)),
            read_options=read,
            parse_options=parse_options,
            convert_options=convert,
        )

    def parsed(blocks: Iterator[_Block]) -> Iterator[pa.RecordBatch]:
        nonlocal numbered_before
        skip = layout.skip_lines  # the first block holds the comments and the header whole
        for number, block in enumerate(blocks):
            mark = len(pending)
            table = parse(block.data, skip, number == 0)
            numbered = numbered_before + skip + table.num_rows + invalid_in_block
            if numbered < block.lines - block.not_counted or limited.ends_in_open_quote(block):
                # A quoted value ran on past its line's end, taking the lines after it into its row
                # (up to the end of the block, were it never closed; only its line break, on the
                # block's last line, which leaves the count of rows right).
                del pending[mark:]
                table = parse(limited.close_quotes(block), skip, number == 0)
            numbered_before += skip + table.num_rows + invalid_in_block
            skip = 0
            # A batch for every block, rows or none, so that the bad lines of a block without rows
            # are handed over with it, not held until a row comes.
            yield (
                table.combine_chunks().to_batches()[0]
                if table.num_rows
                else pa.RecordBatch.from_pylist([], schema=table.schema)
            )

    with source.open("rb") as handle:
        limited = _LineLimit(handle, limit, layout, pending.append)
        numbers = _LineNumbers(layout.skip_lines, limited.not_rows)
        batches = _read_ahead(parsed(limited.blocks()), pending)
        try:
            for batch, bad_lines in batches:
                rows = numbers.take(0 if batch is None else batch.num_rows, bad_lines)
                for bad in bad_lines:
                    on_bad_line(bad)
                if batch is None:
                    continue
                if position is not None:
                    position[0] = handle.tell()
                if lines is not None:
                    lines[0] = rows
                yield batch
        finally:
            batches.close()


class _Block(NamedTuple):
    """Whole lines for Arrow, and where they stand in the file."""

    data: bytearray
    first_line: int  # the line the block's first line is
    tail: bool  # the block begins with the \n of a \r\n that ends the block before it
    lines: int  # lines from the file's first to the block's last
    not_counted: int  # lines among those that Arrow does not count (`not_rows`)


class _LineLimit:
    """The file in blocks of whole lines for Arrow, with every line longer than `limit` bytes left out
    (its line break stays: Arrow skips the empty line) and reported. The line being read is held back
    until its end is seen, so at most about `limit` bytes are held; a long line's bytes beyond its
    first `LONG_LINE_KEEP_BYTES` are never kept. Reading in pieces of at most `limit` bytes means only
    a line that began in an earlier piece can be too long, so each piece costs a few searches for line
    breaks, not a scan of every line; a block is the lines a piece ends. A last data line that the
    file ends inside of (no line break after it, and a quoted value not closed or columns missing) is
    reported as cut short. In a UTF-8 file, lines that are not valid UTF-8 are left out and reported
    (Arrow would fail their block, or fail decoding the text of a line with a wrong number of
    columns); a piece of ASCII costs one `isascii`, any other one decoding.

    It also counts the lines (a numpy pass or two over each piece, cheap next to Arrow's) so that bad
    lines carry their number, and notes in `not_rows` the data lines Arrow will not count: the
    empty ones, which Arrow skips, and the ones left out. They are noted before their block goes to
    Arrow, so they are there by the time Arrow's batch with the rows after them is handed over."""

    def __init__(
        self, raw: io.BufferedIOBase, limit: int, layout: CsvLayout, on_bad_line: Callable[[BadLine], None]
    ):
        self._raw = raw
        self._limit = max(1, limit)
        self._layout = layout
        self._on_bad_line = on_bad_line
        self._ready = bytearray()  # complete lines, for Arrow
        self._line = bytearray()  # the beginning of the line being read (no line break yet)
        self._line_offset = 0  # where it starts in the file
        self._long: int | None = None  # while inside a long line: its length so far
        self._kept = b""  # and its beginning
        self._offset = 0  # bytes read from the file
        self._eof = False
        self._utf8 = layout.encoding == "utf-8"
        self._breaks = 0  # line breaks read so far
        self._line_number = 1  # of the line being read
        self._after_cr = False  # the last byte read is a \r: a \n next ends the same line
        self._after_break = True  # the last byte read ends a line: a line break next is an empty line
        self.not_rows: list[int] = []  # lines after the header that Arrow does not count, in no order
        self.not_counted = 0  # how many have been noted
        self._unbroken_last = 0  # 1 once a last line without a line break is handed over
        # A line whose last value opens a quote it does not close, a value as Arrow reads them: quoted
        # ("" inside is a quote; what follows the closing quote up to the delimiter belongs to it) or not.
        delimiter = re.escape(layout.delimiter)
        # Possessive: a "" inside quotes is a quote, never the end of the value and a quote after it.
        value = f'(?:"(?:[^"]|"")*+"[^{delimiter}]*|[^{delimiter}"][^{delimiter}]*|)'
        self._open_quote = re.compile(f'(?:{value}{delimiter})*"(?:[^"]|"")*+\\Z')

    def blocks(self) -> Iterator[_Block]:
        """Whole lines, those each piece of the file ends, until the end of the file. The first block
        holds every line before the data, for Arrow to skip."""
        before_data = self._layout.data_offset
        lines = 0
        ended_cr = False
        while not self._eof:
            self._fill()
            if self._ready and (len(self._ready) >= before_data or self._eof):
                before_data = 0
                tail = ended_cr and self._ready.startswith(b"\n")
                first, lines = lines + 1, self._breaks + self._unbroken_last
                yield _Block(self._ready, first, tail, lines, self.not_counted)
                ended_cr = self._ready.endswith(b"\r")
                self._ready = bytearray()

    def close_quotes(self, block: _Block) -> bytearray:
        """The block with every data line that ends inside a quoted value left out (its line break
        stays) and reported: feeds have no line breaks in values, and such a line would take the
        lines after it into its row."""
        out = bytearray(b"\n" if block.tail else b"")
        number = block.first_line
        for match in _LINE.finditer(block.data, 1 if block.tail else 0):
            line, end = match.group(1), match.group(2)
            if not line and not end:
                break
            if number > self._layout.skip_lines and self._opens_quote(line):
                text = line.decode(self._layout.encoding, errors="backslashreplace")
                reason = "a quoted value is not closed before the end of its line"
                self._on_bad_line(BadLine(line=number, text=text, reason=reason))
                self._leave_out([number])
                line = b""
            out += line + end
            number += 1
        return out

    def ends_in_open_quote(self, block: _Block) -> bool:
        """Whether the block's last line that is not empty ends inside a quoted value (which would take
        only empty lines, which Arrow does not count, into its row)."""
        data = block.data
        end = len(data)
        while end and data[end - 1] in (0x0A, 0x0D):
            end -= 1
        start = max(data.rfind(b"\n", 0, end), data.rfind(b"\r", 0, end)) + 1
        return block.lines > self._layout.skip_lines and self._opens_quote(data[start:end])

    def _opens_quote(self, line: bytes | bytearray) -> bool:
        """Whether the line (without its line break) ends inside a quoted value."""
        if b'"' not in line:
            return False
        text = line.decode(self._layout.encoding, errors="backslashreplace")
        return self._open_quote.match(text) is not None

    def _leave_out(self, numbers: list[int]) -> None:
        self.not_rows.extend(numbers)
        self.not_counted += len(numbers)

    def _fill(self) -> None:
        piece = self._raw.read(self._limit)
        if not piece:
            self._eof = True
            if self._long is not None:
                self._report_long_line()
                self._unbroken_last = 1
            elif self._line:
                self._last_line()
            self._line.clear()
            return
        at = self._offset
        self._offset += len(piece)
        number = self._line_number
        cr = piece.find(b"\r")
        # The \n of a \r\n split between two pieces, which begins this one, ends no line of its own.
        tail = self._after_cr and piece[0] == 0x0A
        self._count_lines(piece, has_cr=cr >= 0)
        first = min((i for i in (piece.find(b"\n"), cr) if i >= 0), default=-1)
        end = len(piece) if first < 0 else first  # how much of the piece the current line takes
        view = memoryview(piece)
        if self._long is None and len(self._line) + end > self._limit:
            self._kept = bytes(self._line[:LONG_LINE_KEEP_BYTES])
            self._long = len(self._line)
            self._line.clear()
        if self._long is not None:
            self._long += end
            self._kept += piece[: min(end, max(0, LONG_LINE_KEEP_BYTES - len(self._kept)))]
        if first < 0:  # the line goes on
            if self._long is None:
                self._line += piece
            return
        if self._long is not None:
            self._report_long_line()
        else:
            self._emit(bytes(self._line) + piece[:first], self._line_offset, number)
        last = max(piece.rfind(b"\n"), piece.rfind(b"\r"))
        # The first line these bytes end is the one just emitted (a `tail` ends the line before it).
        self._emit(piece[first : last + 1], at + first, number - 1 if tail else number)
        self._line[:] = view[last + 1 :]
        self._line_offset = at + last + 1
        self._line_number = self._breaks + 1

    def _count_lines(self, piece: bytes, *, has_cr: bool) -> None:
        """Count the line breaks in the next piece of the file and note its empty data lines. A line
        break is numbered by where it starts (the \r of a \r\n)."""
        data = np.frombuffer(piece, np.uint8)
        breaks = np.flatnonzero(data == 0x0A)
        if self._after_cr and len(breaks) and breaks[0] == 0:
            breaks = breaks[1:]  # the end of a \r\n counted with the last piece
        if has_cr:
            pair = data[breaks - 1] == 0x0D  # breaks[0] == 0 wraps around, to a byte after it
            if len(breaks) and breaks[0] == 0:
                pair[0] = False
            if np.count_nonzero(data == 0x0D) == np.count_nonzero(pair):  # every \r begins a \r\n
                breaks -= pair
            else:  # a \r ends a line whatever follows
                breaks = np.sort(np.concatenate([breaks[~pair], np.flatnonzero(data == 0x0D)]))
        if len(breaks):
            # A line break right after the end of a line (a \n, or a \r not followed by this \n)
            # ends an empty line.
            before = data[breaks - 1]
            empty = (before == 0x0A) | (before == 0x0D)
            if breaks[0] == 0:
                empty[0] = self._after_break
            if empty.any():
                numbers = self._breaks + 1 + np.flatnonzero(empty)
                self._leave_out(numbers[numbers > self._layout.skip_lines].tolist())
            self._breaks += len(breaks)
        self._after_cr = piece[-1] == 0x0D
        self._after_break = piece[-1] in (0x0A, 0x0D)

    def _emit(self, lines: bytes, at: int, number: int) -> None:
        """Complete lines (or a line without its break), from byte `at` of the file and line `number`
        on, for Arrow; in a UTF-8 file, without the data lines that are not valid UTF-8 (the header
        is Arrow's to skip)."""
        if not self._utf8 or lines.isascii():
            self._ready += lines
            return
        try:
            lines.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            self._ready += lines
            return
        for index, match in enumerate(_LINE.finditer(lines)):
            line, end = match.group(1), match.group(2)
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                if at + match.start() >= self._layout.data_offset:
                    self._on_bad_line(self._not_utf8(line, error.start, number + index))
                    self._leave_out([number + index])
                    line = b""  # its line break stays: Arrow skips the empty line
            self._ready += line + end

    def _not_utf8(self, line: bytes, start: int, number: int) -> BadLine:
        """The line as a bad line; the reason names the column where its first invalid byte is."""
        where = ""
        with contextlib.suppress(csv.Error):  # e.g. a cell over csv's field size limit
            cells = next(csv.reader([line[:start].decode("utf-8")], delimiter=self._layout.delimiter), [])
            at = max(len(cells) - 1, 0)
            where = f" (column {self._layout.columns[at]!r})" if at < len(self._layout.columns) else ""
        return BadLine(
            line=number,
            text=line.decode("utf-8", errors="backslashreplace"),
            reason=f"the line is not valid UTF-8{where}",
        )

    def _report_long_line(self) -> None:
        length, kept = self._long or 0, self._kept
        text = kept.decode(self._layout.encoding, errors="backslashreplace")
        if length > len(kept):
            text += f" [… {length - len(kept)} more bytes not read]"
        reason = (
            f"the line at byte {self._line_offset} is {length} bytes long, "
            f"longer than the {self._limit} bytes a line may have"
        )
        self._on_bad_line(BadLine(line=self._line_number, text=text, reason=reason))
        self._leave_out([self._line_number])
        self._long, self._kept = None, b""

    def _last_line(self) -> None:
        """The file ends without a line break: its last line goes to Arrow (ended by one, which a
        header-only file's header needs) unless it is a data line the end of the file cut short."""
        text = self._line.decode(self._layout.encoding, errors="backslashreplace")
        width = len(self._layout.columns)
        cut = ""
        if self._line_offset >= self._layout.data_offset and text.strip():
            if self._opens_quote(self._line):
                cut = "a quoted value is not closed"
            else:
                with contextlib.suppress(csv.Error):  # e.g. a cell over csv's field size limit
                    cells = len(next(csv.reader([text], delimiter=self._layout.delimiter), []))
                    if cells < width:
                        cut = f"{cells} of {width} columns"
        if cut:
            reason = f"the file ends inside this line ({cut}): it was cut short"
            self._on_bad_line(BadLine(line=self._line_number, text=text, reason=reason))
        else:
            self._emit(bytes(self._line) + b"\n", self._line_offset, self._line_number)
            self._unbroken_last = 1


class _LineNumbers:
    """The line of each row and of each line with a wrong number of columns, batch by batch.

    Arrow numbers the lines it counts: those it skips at the start (`skip_rows`, every one) and then
    only the lines that are not empty, so a line it blanked or found empty shifts its numbers. Rows
    are the lines Arrow counts and does not hand to `invalid_row_handler`, in order; both are mapped
    to the file's lines from the lines Arrow does not count (`not_rows`, noted by `_LineLimit`). The
    cursor is the last row handed over (Arrow's number and its line); what lies before it is dropped,
    so a batch costs a few numpy operations over its rows."""

    def __init__(self, skip_lines: int, not_rows: list[int]) -> None:
        self._not_rows = not_rows  # filled in the reading thread; emptied here as it is read
        self._skipped = np.empty(0, np.int64)  # lines after the cursor Arrow does not count, sorted
        self._invalid = np.empty(0, np.int64)  # Arrow's numbers after the cursor of the lines it skipped
        self._arrow = self._line = skip_lines  # the cursor

    def take(self, rows: int, bad_lines: list[BadLine]) -> np.ndarray:
        """The lines of a batch's `rows`; the lines Arrow skipped in `bad_lines` get theirs too."""
        noted = len(self._not_rows)  # another thread appends: take what is there once
        if noted:
            new = np.asarray(self._not_rows[:noted], np.int64)
            del self._not_rows[:noted]
            self._skipped = np.sort(np.concatenate([self._skipped, new]))
        invalid = [i for i, bad in enumerate(bad_lines) if bad.columns is not None]  # Arrow's
        numbers = np.asarray([bad_lines[i].line for i in invalid], np.int64)
        corrected = self._lines(numbers)
        # Only lines after an empty one or one left out differ: a file can have a bad line per row.
        for at in np.flatnonzero(corrected != numbers).tolist():
            bad = bad_lines[invalid[at]]
            line = int(corrected[at])
            bad_lines[invalid[at]] = BadLine(line=line, text=bad.text, reason=bad.reason, columns=bad.columns)
        self._invalid = np.sort(np.concatenate([self._invalid, numbers]))
        arrow = _nth_not_in(self._arrow, self._invalid, np.arange(rows, dtype=np.int64))
        lines = self._lines(arrow)
        self._advance(arrow, lines, numbers, corrected)
        return lines

    def _advance(self, arrow: np.ndarray, lines: np.ndarray, invalid: np.ndarray, at: np.ndarray) -> None:
        """Move the cursor to the last line numbered, a row or a skipped line, and past the lines
        right after it that Arrow does not count, so that what is kept stays as small as a batch
        however many blocks go by without a row."""
        if len(invalid) and (not len(arrow) or invalid.max() > arrow[-1]):
            last = int(np.argmax(invalid))
            self._arrow, self._line = int(invalid[last]), int(at[last])
        elif len(arrow):
            self._arrow, self._line = int(arrow[-1]), int(lines[-1])
        self._invalid = self._invalid[self._invalid > self._arrow]
        skipped = self._skipped[self._skipped > self._line]
        gaps = np.flatnonzero(skipped != self._line + 1 + np.arange(len(skipped)))
        after = int(gaps[0]) if len(gaps) else len(skipped)
        self._line += after
        self._skipped = skipped[after:]

    def _lines(self, arrow: np.ndarray) -> np.ndarray:
        """The lines of Arrow's line numbers after the cursor."""
        return _nth_not_in(self._line, self._skipped, arrow - self._arrow - 1)


def _nth_not_in(start: int, excluded: np.ndarray, nth: np.ndarray) -> np.ndarray:
    """The `nth` (from 0) numbers after `start` that are not in `excluded` (sorted, all after `start`)."""
    # Below excluded[i] lie `excluded[i] - start - 1 - i` numbers that are not excluded.
    free_below = excluded - start - 1 - np.arange(len(excluded))
    return start + 1 + nth + np.searchsorted(free_below, nth, side="right")


_END = object()


def _read_ahead(
    reader: Iterator[pa.RecordBatch], pending: list[BadLine], depth: int = 1
) -> Generator[tuple[pa.RecordBatch | None, list[BadLine]], None, None]:
    """Read and parse the next block in a thread while the caller works on this one (Arrow releases the
    GIL); `depth` blocks at most wait, which bounds memory. Each batch comes with the bad lines met
    while reading it (`pending`, filled in the reading thread); the last ones with no batch. When the
    caller stops early, the thread stops too."""
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def taken() -> list[BadLine]:
        lines = pending[:]
        del pending[: len(lines)]
        return lines

    def produce() -> None:
        try:
            for batch in reader:
                ready.put((batch, taken()))
                if stop.is_set():
                    return
            ready.put((None, taken()))
        except BaseException as error:  # handed to the consumer, which raises it where it reads
            ready.put(error)
        ready.put(_END)

    thread = threading.Thread(target=produce, name="feed-reader", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while thread.is_alive():  # let a producer waiting to hand over a batch finish
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.05)
        thread.join()
