"""Every quarantined line and row says where it is in the file: its physical line, counted from 1 with
the header, as an editor shows it, whatever came before it (comments, empty lines, lines too long to
read, lines of another width, lines read again because they stop early) and whichever batch it is in.
The expected numbers are found here by splitting the file's own bytes at its line breaks."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certnet.feeds import reader
from certnet.feeds.dedup import SqliteSeenKeys
from certnet.feeds.engine import Pipeline
from certnet.feeds.store import EventStore
from certnet.feeds.tests.test_reliability import (
    COLUMNS,
    SOURCE,
    KiB,
    _csvish,
    addresses,
    line,
    rdp,
    report,
    run,
)

pytestmark = pytest.mark.django_db


def file_lines(data: bytes) -> list[bytes]:
    """The file's lines, the first at index 0 (line 1)."""
    return re.split(rb"\r\n|\r|\n", data)


def line_of(data: bytes, text: str, encoding: str = "utf-8") -> int:
    """The number of the one line of the file that is `text`."""
    [number] = [n for n, raw in enumerate(file_lines(data), 1) if raw == text.encode(encoding)]
    return number


def messy_report() -> tuple[bytes, dict[str, str]]:
    """A report of several 4 KiB batches: rows with a bad value, and before and between them every kind
    of line that is not read as a row in its place. With it, for each entry the run quarantines (by
    its raw text), the line of the file it comes from."""
    expected: dict[str, str] = {}  # raw as quarantined -> the line as written in the file

    def bad_value(text: str) -> str:
        expected[text] = text
        return text

    rows = [line(ip) for ip in addresses(30)]
    rows.append(bad_value(line("not-an-address")))
    rows += ["", ""]  # empty lines: Arrow skips them without counting them
    rows += [line(ip) for ip in addresses(30, "198.51.101")]
    long = line("198.51.102.1", city="x" * (5 * KiB))  # longer than a block: never read
    expected[long[: reader.LONG_LINE_KEEP_BYTES]] = long
    rows.append(long)
    rows.append(bad_value(",".join(["", *line("198.51.102.2").split(",")[1:]])))  # no timestamp
    surplus = line("198.51.102.3") + ",surplus"
    expected[surplus] = surplus
    rows += [line(ip) for ip in addresses(40, "198.51.103")] + [surplus, ""]
    short = ",".join(line("not-an-address-either").split(",")[:4])  # read again, after the batch
    expected[short + ",,,"] = short
    rows += [short] + [line(ip) for ip in addresses(40, "198.51.104")]
    rows += [bad_value(line("not-an-address-3")), bad_value(line("not-an-address-4"))]
    text = ",".join(COLUMNS) + "\n" + "\n".join(rows) + "\n"
    return text.encode(), expected


def test_every_quarantined_entry_carries_its_line_in_the_file(tmp_path):
    data, expected = messy_report()
    outcome = run(tmp_path, data, block_bytes=4 * KiB)

    assert outcome.summary.error == ""
    assert outcome.summary.batches > 2
    assert len(outcome.quarantined) == len(expected) == 7
    for quarantined in outcome.quarantined:
        key = quarantined.raw.split(" [… ")[0]  # a long line's beginning
        assert quarantined.line == line_of(data, expected[key]), quarantined


def test_a_bad_value_after_an_empty_line_is_numbered_past_it(tmp_path):
    text = report(addresses(2)) + "\n" + line("not-an-address") + "\n"
    outcome = run(tmp_path, text)
    [bad] = outcome.quarantined
    assert (bad.line, bad.raw) == (5, line("not-an-address"))  # header, 2 rows, an empty line


def test_a_line_of_another_width_after_empty_lines_is_numbered_as_in_the_file(tmp_path):
    """Arrow's own numbers leave empty lines out (this one would be 5): the reader corrects them."""
    surplus = line("203.0.113.1") + ",surplus"
    text = report(addresses(3)) + "\n\n" + surplus + "\n"
    outcome = run(tmp_path, text)
    [bad] = outcome.quarantined
    assert (bad.line, bad.raw) == (7, surplus)


def test_lines_the_reader_leaves_out_carry_their_line(tmp_path):
    long = line("198.51.100.9", city="x" * 200)
    damaged = line("198.51.100.10", city="Z\udcfcrich")  # a Latin-1 ü in a UTF-8 file
    cut = line("198.51.100.11")[:30]  # the file ends inside it
    rows = [long, damaged, line("198.51.100.12"), cut]
    text = report(addresses(3), city="Zürich") + "\n".join(rows)
    path = tmp_path / "damaged.csv"
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    layout = reader.sniff_csv(path)
    bad: list[reader.BadLine] = []
    read = list(reader.read_csv_batches(path, layout, on_bad_line=bad.append, max_line_bytes=150))
    assert sum(batch.num_rows for batch in read) == 4
    assert [(b.line, b.reason.split(" ")[:3]) for b in bad] == [
        (5, ["the", "line", "at"]),  # … is 218 bytes long
        (6, ["the", "line", "is"]),  # … not valid UTF-8
        (8, ["the", "file", "ends"]),  # … inside this line
    ]


def test_a_damaged_line_after_a_line_break_split_between_two_reads_has_its_line(tmp_path):
    """The reader reads the file in pieces of a block: here the first ends inside a \\r\\n."""
    block = 128
    head = ",".join(COLUMNS) + "\r\n"
    first = line("198.51.100.1", city="Zürich")
    first += "h" * (block - 1 - len((head + first).encode()))  # its \r is the last byte of the piece
    damaged = line("198.51.100.2", city="Z\udcfcrich")
    text = head + first + "\r\n" + damaged + "\r\n" + line("198.51.100.3", city="Zürich") + "\r\n"
    data = text.encode("utf-8", errors="surrogateescape")
    assert data[block - 1 : block + 1] == b"\r\n"
    path = tmp_path / "split.csv"
    path.write_bytes(data)
    rows, bad = _numbered(path, block)
    assert [number for number, _ in rows] == [2, 4]
    assert [(b.line, b.reason) for b in bad] == [(3, "the line is not valid UTF-8 (column 'city')")]


@pytest.mark.parametrize(
    ("head", "encoding"),
    [
        (b"\xef\xbb\xbf", "utf-8"),  # the byte-order mark is part of line 1
        (b"", "latin-1"),
        (b"# a comment\n# another, with a delimiter\n\n", "utf-8"),  # before the header: counted
    ],
)
def test_line_numbers_count_what_comes_before_the_data(tmp_path, head, encoding):
    bad_line = line("not-an-address", city="Besançon")
    text = report(addresses(3), city="Besançon") + "\n" + bad_line + "\n"
    data = head + text.encode(encoding)
    outcome = run(tmp_path, data)
    [bad] = outcome.quarantined
    assert bad.raw == bad_line
    assert bad.line == line_of(data, bad_line, encoding) == 6 + head.count(b"\n")


@pytest.mark.parametrize("ending", ["\r\n", "\r"])
def test_line_numbers_with_other_line_breaks(tmp_path, ending):
    rows = [line(ip) for ip in addresses(60)] + ["", line("not-an-address"), ""]
    rows += [line(ip) for ip in addresses(60, "198.51.101")] + [line("not-an-address-2")]
    data = ending.join([",".join(COLUMNS), *rows, ""]).encode()
    outcome = run(tmp_path, data, block_bytes=1 * KiB)
    assert outcome.summary.batches > 2
    assert [(q.line, q.raw) for q in outcome.quarantined] == [
        (63, line("not-an-address")),
        (125, line("not-an-address-2")),
    ]


def test_a_batch_given_without_line_numbers_quarantines_rows_without_a_line(tmp_path):
    """As in distributed mode, where a batch comes from a stream message without its lines."""
    text = pa.table({name: pa.array(["x"], pa.string()) for name in COLUMNS})  # "x": no address
    pipeline = Pipeline(store=EventStore(tmp_path / "ev"), seen=SqliteSeenKeys(tmp_path / "s.sqlite3"))
    try:
        without = pipeline.process("b-1", text, rdp(), SOURCE)
        given_lines = pipeline.process("b-2", text, rdp(), SOURCE, lines=np.array([41]))
    finally:
        pipeline.close()
    assert [q.line for q in without.quarantined] == [None]
    assert [q.line for q in given_lines.quarantined] == [41]


# --- every row, whatever the file ------------------------------------------------------------------


Numbered = list[tuple[int, list[str | None]]]


def _numbered(path: Path, block_bytes: int) -> tuple[Numbered, list[reader.BadLine]]:
    """Each row read, with the line the reader says it is on; and the bad lines."""
    layout = reader.sniff_csv(path)
    bad: list[reader.BadLine] = []
    lines: list[np.ndarray | None] = [None]
    rows: Numbered = []
    for batch in reader.read_csv_batches(
        path, layout, on_bad_line=bad.append, block_bytes=block_bytes, lines=lines
    ):
        numbers = lines[0]
        assert numbers is not None
        assert len(numbers) == batch.num_rows
        rows += zip(numbers.tolist(), [list(row.values()) for row in batch.to_pylist()], strict=True)
    return rows, bad


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=_csvish(),
    empty=st.lists(st.integers(min_value=1, max_value=14), max_size=4),
    block_bytes=st.sampled_from([48, 128, 4096]),
)
def test_fuzz_every_row_and_bad_line_is_numbered_with_its_line(case, empty, block_bytes):
    content, _, written, cut = case
    ending = re.search(rb"\r\n|\r|\n", content)
    lines = file_lines(content)
    rows_at: list[int | None] = list(range(-1, len(lines) - 1))  # which written row each line is
    for at in sorted(empty, reverse=True):  # empty lines after the header, between the rows
        position = max(1, min(at, len(lines) - 1))
        lines.insert(position, b"")
        rows_at.insert(position, None)
    content = (ending.group() if ending else b"\n").join(lines)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fuzz.csv"
        path.write_bytes(content)
        rows, bad = _numbered(path, block_bytes)

    for number, values in rows:
        row = rows_at[number - 1]
        assert row is not None, (number, values)  # not an empty line
        assert row >= 0, (number, values)  # nor the header
        if not (cut and row == len(written) - 1):  # read with what is left of its last cell
            assert values == [cell or None for cell in written[row]]
    assert len(rows) + len(bad) == len(written)
    for bad_line in bad:
        assert bad_line.line is not None
        row = rows_at[bad_line.line - 1]
        assert row is not None, bad_line
        assert row >= 0, bad_line
        in_file = lines[bad_line.line - 1].decode("utf-8", errors="backslashreplace")
        assert in_file.startswith(bad_line.text.split(" [… ")[0])
