"""The CSV reader cuts a file into blocks of whole lines and has Arrow parse each on its own: how far
ahead it reads, and what parsing block by block must not change."""

from __future__ import annotations

import time

import pytest

from certnet.feeds import reader
from certnet.feeds.tests.test_reliability import COLUMNS, addresses, line

BLOCK = 1024


def _write(path, body: str) -> None:
    path.write_bytes(("\ufeff" + ",".join(COLUMNS) + "\n" + body).encode())


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
        bad: list[reader.BadLine] = []
        lines: list = [None]
        rows = []
        batches = reader.read_csv_batches(
            path, reader.sniff_csv(path), on_bad_line=bad.append, block_bytes=block_bytes, lines=lines
        )
        for batch in batches:
            rows += zip(lines[0].tolist(), [tuple(r.values()) for r in batch.to_pylist()], strict=True)
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
