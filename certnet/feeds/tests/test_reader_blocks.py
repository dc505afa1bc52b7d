"""The CSV reader cuts a file into blocks of whole lines and has Arrow parse each on its own: how far
ahead it reads, and what parsing block by block must not change."""

from __future__ import annotations

import csv
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from certnet.feeds import reader
from certnet.feeds.tests.test_reliability import COLUMNS, addresses, line

BLOCK = 1024


def _write(path: Path, body: str) -> None:
    path.write_bytes(("\ufeff" + ",".join(COLUMNS) + "\n" + body).encode())


Numbered = list[tuple[int, tuple[str | None, ...]]]


def _read(path: Path, block_bytes: int) -> tuple[Numbered, list[reader.BadLine]]:
    bad: list[reader.BadLine] = []
    lines: list[np.ndarray | None] = [None]
    rows: Numbered = []
    batches = reader.read_csv_batches(
        path, reader.sniff_csv(path), on_bad_line=bad.append, block_bytes=block_bytes, lines=lines
    )
    for batch in batches:
        numbers = lines[0]
        assert numbers is not None
        rows += zip(numbers.tolist(), [tuple(r.values()) for r in batch.to_pylist()], strict=True)
    return rows, bad


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(lambda rows: "\n".join(rows) + "\n", id="rows"),
        pytest.param(lambda rows: "\n" * 3000 + "\n".join(rows) + "\n", id="empty-lines-first"),
        pytest.param(lambda rows: "x,y\n" * 2000 + "\n".join(rows) + "\n", id="bad-lines-first"),
        pytest.param(lambda rows: "\r\n".join(rows) + "\r\n", id="crlf"),
    ],
)
def test_the_reader_stays_a_block_or_two_ahead_of_a_slow_pipeline(tmp_path, body):
    path = tmp_path / "big.csv"
    _write(path, body([line(ip) for ip in addresses(250)] * 20))  # about 300 blocks
    position = [0]
    ahead = []
    batches = reader.read_csv_batches(
        path, reader.sniff_csv(path), on_bad_line=lambda bad: None, block_bytes=BLOCK, position=position
    )
    for taken, _ in enumerate(batches, 1):
        if taken > 30:
            break
        time.sleep(0.02)  # time enough to read dozens of blocks, were the reader let
        ahead.append(position[0] / BLOCK - taken)
    batches.close()
    # Read from the file besides the blocks of the batches taken: the block waiting to be taken, the
    # one parsed next, and the piece being cut into lines. Arrow's own streaming reader reads 32 blocks
    # ahead (and more past blocks without rows).
    assert max(ahead) <= 3, ahead


def test_a_block_without_rows_is_a_batch_without_rows(tmp_path):
    # Arrow's own streaming reader reads on until it finds a row before it hands over a first batch.
    rows = [line(ip) for ip in addresses(200)]
    path = tmp_path / "report.csv"
    _write(path, "x,y\n" * 500 + "\n" * 2000 + "\n".join(rows) + "\n")
    bad: list[reader.BadLine] = []
    lines: list = [None]
    numbered = []
    handed = []
    for _ in reader.read_csv_batches(
        path, reader.sniff_csv(path), on_bad_line=bad.append, block_bytes=BLOCK, lines=lines
    ):
        numbered += lines[0].tolist()
        handed.append(len(bad))
    # With the batch of their block, not all at once with the first row: a file of nothing but bad
    # lines is not held in memory whole.
    assert 0 < handed[0] < 300
    assert [b.line for b in bad] == list(range(2, 502))
    assert numbered == list(range(2502, 2702))


def test_a_byte_order_mark_beginning_a_later_block_is_text_as_anywhere_past_the_start(tmp_path):
    # Arrow drops a mark that begins what it is given; past the file's first bytes the mark is a
    # line's text, wherever the blocks fall.
    path = tmp_path / "marks.csv"
    path.write_bytes(b"a,b\n1,2\n3,4\n5,6\n\xef\xbb\xbf\nx\n7,8\n\xef\xbb\xbfa,b\n9,0\n")
    for block_bytes in (16, 4096):
        rows, bad = _read(path, block_bytes)
        assert [(b.line, b.text) for b in bad] == [(5, "\ufeff"), (6, "x")], block_bytes
        assert rows == [
            (2, ("1", "2")),
            (3, ("3", "4")),
            (4, ("5", "6")),
            (7, ("7", "8")),
            (8, ("\ufeffa", "b")),
            (9, ("9", "0")),
        ], block_bytes


def test_numbering_keeps_no_more_than_a_batch_however_long_a_stretch_without_rows():
    # A block without rows is a batch without rows: the cursor moves past its bad and empty lines, so
    # a file of millions of them is numbered in linear time and bounded memory.
    not_rows: list[int] = []
    numbers = reader._LineNumbers(1, not_rows)
    line = arrow = 1  # the header: Arrow numbers the lines it does not find empty
    for _ in range(1000):  # 3 bad lines and then 2 empty ones to a batch
        bad = []
        for _ in range(3):
            line, arrow = line + 1, arrow + 1
            bad.append(reader.BadLine(line=arrow, text="x", reason="", columns=1))
        not_rows += [line + 1, line + 2]
        line += 2
        assert numbers.take(0, bad).tolist() == []
        assert [b.line for b in bad] == [line - 4, line - 3, line - 2]
        assert (len(numbers._invalid), len(numbers._skipped), len(not_rows)) == (0, 0, 0)
    not_rows.append(line + 1)  # one more empty line, then a row
    assert numbers.take(1, []).tolist() == [line + 2]


# --- a quote not closed on its line -----------------------------------------------------------------


NOT_CLOSED = "a quoted value is not closed before the end of its line"


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_a_quote_not_closed_on_its_line_takes_no_line_after_it_into_its_row(tmp_path, ending):
    # Arrow would read the lines after it, up to the end of its block, as the rest of the value: a
    # last-column value of megabytes, the rows in it never seen.
    path = tmp_path / "report.csv"
    path.write_bytes(ending.join(["a,b", "1,2", '3,"x', "4,5", "6,7", '8,"', "9,0", ""]).encode())
    for block_bytes in (8, 16, 64, 4096):
        rows, bad = _read(path, block_bytes)
        assert rows == [(2, ("1", "2")), (4, ("4", "5")), (5, ("6", "7")), (7, ("9", "0"))], block_bytes
        assert [(b.line, b.text, b.reason) for b in bad] == [(3, '3,"x', NOT_CLOSED), (6, '8,"', NOT_CLOSED)]


def test_quotes_closed_on_their_line_are_values_as_arrow_reads_them(tmp_path):
    path = tmp_path / "report.csv"
    path.write_text('a,b\n"x, ""y""",1\n"p"q,"r"\nm"n,2\n3,""\n')
    for block_bytes in (16, 4096):
        rows, bad = _read(path, block_bytes)
        assert rows == [(2, ('x, "y"', "1")), (3, ("pq", "r")), (4, ('m"n', "2")), (5, ("3", None))]
        assert bad == []


def test_a_value_over_two_lines_is_two_bad_lines_not_one_row(tmp_path):
    # Feeds have no line breaks in values: each line is read, and kept, on its own.
    path = tmp_path / "report.csv"
    path.write_text('a,b,c\n1,2,3\n4,"two\nlines",6\n7,8,9\n')
    rows, bad = _read(path, 4096)
    assert rows == [(2, ("1", "2", "3")), (5, ("7", "8", "9"))]
    assert [(b.line, b.text) for b in bad] == [(3, '4,"two'), (4, 'lines",6')]
    assert bad[0].reason == NOT_CLOSED


def test_a_shadowserver_report_with_a_quote_not_closed_loses_only_that_line(tmp_path):
    header = '"timestamp","ip","port","hostname","asn","geo","city"'
    rows = [
        f'"2026-11-20 10:00:00","198.51.100.{i}","3389","h{i}.example.pk","64500","PK","Lahore"'
        for i in range(1, 301)
    ]
    rows[100] = rows[100].replace('"Lahore"', '"Lahore')
    path = tmp_path / "2026-11-20-scan_rdp-x.csv"
    path.write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode())
    for block_bytes in (1024, 4096, 1 << 22):
        read, bad = _read(path, block_bytes)
        assert [line for line, _ in read] == [n for n in range(2, 302) if n != 102], block_bytes
        assert [(b.line, b.reason) for b in bad] == [(102, NOT_CLOSED)]


# Each line on its own, as the module's docstring has it: a quote opened at a value's start and not
# closed by the line's end makes the line bad, whatever is around it; any other line is read as csv
# reads it alone. Lines stay under the smallest block drawn, or they would be reported as too long.
_MAX_LINE = 28
_VALUE = st.text(alphabet='",ab1', max_size=3)
_QUOTE_ALL = st.booleans()  # csv.QUOTE_ALL, else csv.QUOTE_MINIMAL


def _csv_line(values: list[str], quote_all: bool) -> str:
    out = io.StringIO()
    if quote_all:
        csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="").writerow(values)
    else:
        csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="").writerow(values)
    return out.getvalue()


def _ends_inside_quotes(line: str) -> bool:
    """Whether the line ends inside a quoted value: one that starts with a quote, where "" is a quote
    and a quote followed by anything else closes it (what follows, up to the delimiter, is text)."""
    quoted, at_start, i = False, True, 0
    while i < len(line):
        c = line[i]
        if quoted:
            if c == '"' and line[i + 1 : i + 2] == '"':
                i += 1  # an escaped quote
            elif c == '"':
                quoted = False
        elif at_start and c == '"':
            quoted = True
        at_start = not quoted and c == ","
        i += 1
    return quoted


@st.composite
def _data_line(draw: st.DrawFn, width: int) -> str:
    kind = draw(st.sampled_from(["row", "columns", "empty", "open", "text"]))
    if kind == "empty":
        return ""
    if kind == "text":  # anything: quotes closed or not, text after a closing quote, any columns
        return draw(st.text(alphabet='",a1', min_size=1, max_size=_MAX_LINE))
    if kind == "columns":
        count = draw(st.integers(min_value=1, max_value=width + 2).filter(lambda n: n != width))
        return _csv_line(draw(st.lists(_VALUE, min_size=count, max_size=count)), draw(_QUOTE_ALL))
    values = draw(st.lists(_VALUE, min_size=width, max_size=width))
    line = _csv_line(values, draw(_QUOTE_ALL))
    if kind == "open":  # the last value quoted, its closing quote left out
        line = _csv_line(values[:-1], draw(_QUOTE_ALL)) + ',"' + values[-1].replace('"', '""')
        assert _ends_inside_quotes(line), line
    return line


@st.composite
def _lines_alone(draw: st.DrawFn) -> tuple[int, list[str], str]:
    width = draw(st.integers(min_value=2, max_value=4))
    line = _data_line(width).filter(lambda text: len(text) <= _MAX_LINE)
    lines = draw(st.lists(line, min_size=1, max_size=30))
    return width, lines, draw(st.sampled_from(["\n", "\r\n", "\r"]))


# Pinned: a "" escape is not the end of a quoted value (the row ['', '",'] as csv writes it), and a
# line that opens a quote followed only by empty lines to its block's end (whose row count is right).
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_lines_alone(), block_bytes=st.sampled_from([32, 64, 128, 4096]))
@example(case=(2, [',""","'], "\n"), block_bytes=4096)
@example(case=(2, ['1,"x', ""], "\n"), block_bytes=4096)
def test_fuzz_lines_with_a_quote_not_closed_are_bad_lines_alone(
    case: tuple[int, list[str], str], block_bytes: int
) -> None:
    width, data_lines, ending = case
    header = ",".join(f"c{i}" for i in range(width))
    expected_rows: Numbered = []
    expected_bad: list[tuple[int, str]] = []
    for number, text in enumerate(data_lines, 2):  # the header is line 1
        if not text:
            continue  # skipped, but counted
        if _ends_inside_quotes(text):
            expected_bad.append((number, NOT_CLOSED))
            continue
        values = next(csv.reader([text]))
        if len(values) == width:
            expected_rows.append((number, tuple(value or None for value in values)))
        else:
            expected_bad.append((number, f"expected {width} columns"))
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "lines.csv"
        path.write_bytes("".join(text + ending for text in [header, *data_lines]).encode())
        rows, bad = _read(path, block_bytes)
    assert rows == expected_rows
    columns = f"expected {width} columns"
    kinds = sorted((b.line or 0, columns if b.reason.startswith(columns) else b.reason) for b in bad)
    assert kinds == expected_bad
