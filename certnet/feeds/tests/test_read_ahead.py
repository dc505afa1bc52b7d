"""How far ahead of the pipeline the CSV reader reads: a block or two, whatever the file holds."""

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
