"""The CSV reader cuts a file into blocks of whole lines and has Arrow parse each on its own: how far
ahead it reads, and what parsing block by block must not change."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

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
