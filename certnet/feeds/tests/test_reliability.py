"""Files as they really arrive: cut short, in other encodings and delimiters, with extra, missing or
too many columns, with a line longer than a block; and the parsers fuzzed. Whatever the input, a run
ends with its events, its quarantined lines (each with a reason) and notes or an error naming the
problem; it never raises."""

from __future__ import annotations

import contextlib
import csv
import io
import re
import tempfile
import threading
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certnet.feeds import convert, reader
from certnet.feeds.dedup import SqliteSeenKeys
from certnet.feeds.engine import Pipeline, Quarantined, RunSummary, SourceSettings, run_file
from certnet.feeds.mapping import Mapping, MappingError, apply_mapping, shipped_mappings
from certnet.feeds.store import EventStore

NAME = "2026-11-20-scan_rdp-x.csv"  # recognised as Shadowserver's scan_rdp by its name
SOURCE = SourceSettings(code="shadowserver", provider="Shadowserver")
COLUMNS = ["timestamp", "ip", "port", "hostname", "asn", "geo", "city"]
WIDTH = len(COLUMNS)
KiB, MiB = 1 << 10, 1 << 20

pytestmark = pytest.mark.django_db  # routing reads the registry (empty here: every event unrouted)


def rdp() -> Mapping:
    return shipped_mappings()["shadowserver/scan_rdp"]


def line(ip: str, *, city: str = "Lahore", port: str = "3389", delimiter: str = ",") -> str:
    cells = ["2026-11-20 10:00:00", ip, port, f"host-{ip}.example.pk", "64500", "PK", city]
    return delimiter.join(cells)


def report(ips: list[str], *, delimiter: str = ",", **cells: str) -> str:
    rows = [delimiter.join(COLUMNS)] + [line(ip, delimiter=delimiter, **cells) for ip in ips]
    return "\n".join(rows) + "\n"


def addresses(count: int, net: str = "198.51.100") -> list[str]:
    return [f"{net}.{i}" for i in range(1, count + 1)]


@dataclass
class Outcome:
    summary: RunSummary
    quarantined: list[Quarantined]
    events: list[dict[str, object]]

    def by_ip(self) -> dict[object, dict[str, object]]:
        return {event["source.ip"]: event for event in self.events}

    def reasons(self) -> list[str]:
        return [q.reason for q in self.quarantined]


def run(directory: Path, data: bytes | str, *, name: str = NAME, block_bytes: int = 4 * MiB) -> Outcome:
    path = directory / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    pipeline = Pipeline(store=EventStore(directory / "ev"), seen=SqliteSeenKeys(directory / "s.sqlite3"))
    quarantined: list[Quarantined] = []
    try:
        summary = run_file(path, SOURCE, pipeline, on_quarantine=quarantined.extend, block_bytes=block_bytes)
    finally:
        pipeline.close()
    files = sorted((directory / "ev").glob("day=*/feed=*/*.parquet"))
    tables = [pq.read_table(f, partitioning=None) for f in files]
    events = pa.concat_tables(tables, promote_options="default").to_pylist() if tables else []
    assert summary.quarantined == len(quarantined)
    assert summary.written == len(events)
    return Outcome(summary, quarantined, events)


# --- cut short --------------------------------------------------------------------------------------


def test_a_file_cut_in_the_middle_of_a_line_keeps_what_came_before(tmp_path):
    cut_line = line("203.0.113.77")[:30]  # the file ends inside the address
    outcome = run(tmp_path, report(addresses(200)) + cut_line, block_bytes=4 * KiB)

    assert outcome.summary.error == ""
    assert outcome.summary.batches > 1
    assert outcome.summary.written == 200
    assert "the file does not end with a line break: its last line may have been cut short" in (
        outcome.summary.notes
    )
    [cut] = outcome.quarantined
    assert cut.raw.startswith(cut_line)
    assert cut.reason == f"the file ends inside this line (2 of {WIDTH} columns): it was cut short"


def test_a_file_cut_inside_a_quoted_value_keeps_what_came_before(tmp_path):
    body = io.StringIO()
    writer = csv.writer(body, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(COLUMNS)
    for ip in addresses(200):
        writer.writerow(line(ip).split(","))
    writer.writerow(line("203.0.113.77", city="Karachi Cantonment").split(","))
    text = body.getvalue().rstrip("\n")[:-12]  # the file ends inside "Karachi Cantonment"
    outcome = run(tmp_path, text, block_bytes=4 * KiB)

    assert outcome.summary.error == ""
    assert outcome.summary.written == 200
    assert "203.0.113.77" not in outcome.by_ip()
    [cut] = outcome.quarantined
    assert cut.reason == "the file ends inside this line (a quoted value is not closed): it was cut short"
    assert cut.raw.endswith('"Karachi')


def test_the_reader_reports_a_last_line_cut_short_instead_of_reading_it(tmp_path):
    path = tmp_path / "cut.csv"
    path.write_text(report(addresses(3)) + ",".join(line("203.0.113.77").split(",")[:3]))
    layout = reader.sniff_csv(path)
    bad: list[reader.BadLine] = []
    rows = sum(b.num_rows for b in reader.read_csv_batches(path, layout, on_bad_line=bad.append))
    assert rows == 3
    assert [(b.reason, b.columns) for b in bad] == [
        (f"the file ends inside this line (3 of {WIDTH} columns): it was cut short", None)
    ]


def test_a_last_line_cut_short_between_columns_is_not_read_as_a_short_line(tmp_path):
    cut_line = ",".join(line("203.0.113.77").split(",")[:3])  # the file ends after the port
    outcome = run(tmp_path, report(addresses(3)) + cut_line)
    assert "203.0.113.77" not in outcome.by_ip()
    assert [q.reason for q in outcome.quarantined] == [
        f"the file ends inside this line (3 of {WIDTH} columns): it was cut short"
    ]


def test_a_file_without_a_last_line_break_but_complete_is_read_whole(tmp_path):
    outcome = run(tmp_path, report(addresses(3)).rstrip("\n"))
    assert outcome.summary.error == ""
    assert outcome.summary.written == 3
    assert outcome.quarantined == []


def test_a_header_only_file_is_an_empty_run(tmp_path):
    for text in (",".join(COLUMNS), ",".join(COLUMNS) + "\n"):
        outcome = run(tmp_path, text)
        assert outcome.summary.error == ""
        assert (outcome.summary.read, outcome.summary.written) == (0, 0)


# --- encodings --------------------------------------------------------------------------------------


def test_utf8_with_a_byte_order_mark(tmp_path):
    outcome = run(tmp_path, b"\xef\xbb\xbf" + report(addresses(2), city="Zürich").encode())
    assert outcome.summary.error == ""
    assert outcome.summary.mapping == "shadowserver/scan_rdp"
    assert "the file starts with a UTF-8 byte-order mark" in outcome.summary.notes
    event = outcome.by_ip()["198.51.100.1"]
    assert event["time.source"].isoformat() == "2026-11-20T10:00:00+00:00"
    assert event["source.geolocation.city"] == "Zürich"
    assert "extra.\ufefftimestamp" not in event


def test_latin1_is_decoded_and_noted(tmp_path):
    outcome = run(tmp_path, report(addresses(2), city="Besançon").encode("latin-1"))
    assert outcome.summary.error == ""
    assert "the file is not UTF-8; it was read as Latin-1" in outcome.summary.notes
    assert {e["source.geolocation.city"] for e in outcome.events} == {"Besançon"}


def test_a_utf8_file_with_one_damaged_line_quarantines_that_line(tmp_path):
    """Decided: a file whose non-ASCII text is mostly valid UTF-8 is UTF-8 (noted); a line with an
    invalid byte sequence is quarantined with its text (the bytes written as \\xNN) and the reason,
    and every other line is read."""
    lines = report(addresses(5), city="Zürich").encode().splitlines(keepends=True)
    lines[3] = lines[3].replace("Zürich".encode(), b"Z\xfcrich")  # a Latin-1 ü in a UTF-8 file
    outcome = run(tmp_path, b"".join(lines))

    assert outcome.summary.error == ""
    assert any(n.startswith("the file is UTF-8 with 1 invalid byte(s)") for n in outcome.summary.notes)
    assert sorted(outcome.by_ip()) == ["198.51.100.1", "198.51.100.2", "198.51.100.4", "198.51.100.5"]
    assert {e["source.geolocation.city"] for e in outcome.events} == {"Zürich"}
    [damaged] = outcome.quarantined
    assert damaged.reason == "the line is not valid UTF-8 (column 'city')"
    assert damaged.raw == line("198.51.100.3", city="Z\\xfcrich")


def test_a_damaged_line_far_into_a_utf8_file_loses_only_itself(tmp_path):
    ips = [ip for net in range(5) for ip in addresses(250, f"10.{net}.0")] + addresses(250, "203.0.113")
    text = report(ips).encode()  # all ASCII: the head says nothing about the damage far below
    cut = text.index(b"203.0.113.200,")
    assert cut > reader.SNIFF_BYTES
    text = text[:cut] + b"\xff\xfe" + text[cut:]
    outcome = run(tmp_path, text, block_bytes=16 * KiB)
    assert outcome.summary.error == ""
    assert outcome.summary.notes == []
    assert outcome.summary.written == len(ips) - 1
    assert [q.reason for q in outcome.quarantined] == ["the line is not valid UTF-8 (column 'ip')"]
    assert outcome.quarantined[0].raw.startswith("2026-11-20 10:00:00,\\xff\\xfe203.0.113.200,")


def test_a_line_with_a_wrong_number_of_columns_and_invalid_utf8_does_not_stop_the_reader(tmp_path):
    """Found by fuzzing: Arrow decodes a bad line's text as UTF-8 before handing it over, and failed
    the whole file when it could not."""
    path = tmp_path / "damaged.csv"
    path.write_bytes(
        report(addresses(2), city="Zürich").encode() + b"2026-11-20,\xff\n" + line("10.0.0.1").encode()
    )
    layout = reader.sniff_csv(path)
    bad: list[reader.BadLine] = []
    rows = sum(b.num_rows for b in reader.read_csv_batches(path, layout, on_bad_line=bad.append))
    assert rows == 3
    assert [(b.text, b.reason) for b in bad] == [
        ("2026-11-20,\\xff", "the line is not valid UTF-8 (column 'ip')")
    ]


# --- delimiters -------------------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_delimiters_are_recognised(tmp_path, delimiter):
    outcome = run(tmp_path, report(addresses(3), delimiter=delimiter, city="Lahore, Punjab"))
    assert outcome.summary.error == ""
    assert f"the delimiter is {delimiter!r}" in outcome.summary.notes
    assert outcome.quarantined == []
    event = outcome.by_ip()["198.51.100.2"]
    assert (event["source.port"], event["source.asn"], event["source.geolocation.city"]) == (
        3389,
        64500,
        "Lahore, Punjab",
    )


# --- columns ----------------------------------------------------------------------------------------


def test_an_unknown_column_is_kept_as_extra(tmp_path):
    text = "timestamp,ip,port,scanner_note\n2026-11-20 10:00:00,198.51.100.7,3389,seen twice\n"
    outcome = run(tmp_path, text)
    assert outcome.summary.error == ""
    assert outcome.events[0]["extra.scanner_note"] == "seen twice"


def test_missing_optional_columns_are_fine(tmp_path):
    outcome = run(tmp_path, "ip,timestamp\n198.51.100.7,2026-11-20 10:00:00\n")
    assert outcome.summary.error == ""
    assert outcome.quarantined == []
    assert outcome.events[0]["source.ip"] == "198.51.100.7"


def test_a_missing_required_column_fails_the_run_naming_it(tmp_path):
    outcome = run(tmp_path, "timestamp,port\n2026-11-20 10:00:00,3389\n")
    assert outcome.summary.error == (
        f"{NAME}: the input has no column 'ip', which shadowserver/scan_rdp requires"
    )
    assert outcome.summary.written == 0


def test_a_run_that_fails_leaves_no_reader_thread_behind(tmp_path):
    text = "timestamp,port\n" + "2026-11-20 10:00:00,3389\n" * 5000  # no ip: fails at the first batch
    outcome = run(tmp_path, text, block_bytes=4 * KiB)
    assert "the input has no column 'ip'" in outcome.summary.error
    # Before: the thread reading ahead waited forever to hand over its next block.
    assert [t for t in threading.enumerate() if t.name == "feed-reader"] == []


def test_rows_with_too_many_cells_are_quarantined_and_too_few_padded(tmp_path):
    text = report(addresses(3))
    text += line("203.0.113.1") + ",surplus\n"
    text += ",".join(line("203.0.113.2").split(",")[:4]) + "\n"  # ends after hostname
    outcome = run(tmp_path, text)

    assert outcome.summary.error == ""
    [surplus] = outcome.quarantined
    assert surplus.reason == f"expected {WIDTH} columns, found {WIDTH + 1}"
    assert surplus.raw == line("203.0.113.1") + ",surplus"
    assert surplus.line == 5
    assert "1 line(s) ended early; their missing last columns were read as empty" in outcome.summary.notes
    short = outcome.by_ip()["203.0.113.2"]
    assert (short["source.port"], short["source.asn"], short["source.geolocation.city"]) == (3389, None, None)


def test_a_report_whose_every_line_is_short_is_read_padded_not_quarantined(tmp_path):
    # Every row ends after the hostname: Arrow hands over no batch at all, only invalid rows.
    rows = [",".join(line(ip).split(",")[:4]) for ip in ("203.0.113.2", "203.0.113.3", "203.0.113.4")]
    outcome = run(tmp_path, report([]) + "\n".join(rows) + "\n")

    assert outcome.summary.error == ""
    assert outcome.quarantined == []
    assert outcome.summary.written == 3
    assert "3 line(s) ended early; their missing last columns were read as empty" in outcome.summary.notes
    assert outcome.by_ip()["203.0.113.3"]["source.port"] == 3389


# --- a line longer than a block -----------------------------------------------------------------


def test_a_line_longer_than_a_block_is_quarantined_and_the_rest_read(tmp_path):
    """A 2 GB line, scaled down: 3 MiB with 1 MiB blocks. The line is never held whole; what is kept
    is its beginning and its length."""
    huge = line("198.51.100.99", city="x" * (3 * MiB))
    text = report(addresses(50)) + huge + "\n" + report(addresses(50, "203.0.113")).split("\n", 1)[1]
    outcome = run(tmp_path, text, block_bytes=1 * MiB)

    assert outcome.summary.error == ""
    assert outcome.summary.written == 100
    [long] = outcome.quarantined
    offset = text.index(huge)
    assert long.reason == (
        f"the line at byte {offset} is {len(huge)} bytes long, longer than the {MiB} bytes a line may have"
    )
    kept = huge[: reader.LONG_LINE_KEEP_BYTES]
    assert long.raw == kept + f" [… {len(huge) - len(kept)} more bytes not read]"


def test_reading_past_a_long_line_holds_a_block_not_the_line(tmp_path):
    """The same at 20 MiB with 64 KiB blocks: what Python holds while reading past it stays near the
    block size (Arrow never sees the line)."""
    path = tmp_path / "long.csv"
    with path.open("wb") as out:
        out.write(report(addresses(10)).encode() + line("198.51.100.99", city="").encode())
        for _ in range(20):
            out.write(b"x" * MiB)
        out.write(b"\n" + line("203.0.113.1").encode() + b"\n")
    layout = reader.sniff_csv(path)
    bad: list[reader.BadLine] = []
    tracemalloc.start()
    try:
        read = sum(
            b.num_rows
            for b in reader.read_csv_batches(path, layout, on_bad_line=bad.append, block_bytes=64 * KiB)
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert read == 11
    start, length = len(report(addresses(10))), 20 * MiB + len(line("198.51.100.99", city=""))
    assert [b.reason.split(",")[0] for b in bad] == [f"the line at byte {start} is {length} bytes long"]
    assert peak < 1 * MiB, peak


def test_a_header_longer_than_a_block_is_still_read(tmp_path):
    path = tmp_path / "wide.csv"
    columns = [f"column_with_a_long_name_{i}" for i in range(40)]
    path.write_text(",".join(columns) + "\n" + ",".join("v" for _ in columns) + "\n")
    layout = reader.sniff_csv(path)
    bad: list[reader.BadLine] = []
    batches = list(reader.read_csv_batches(path, layout, on_bad_line=bad.append, block_bytes=64))
    assert (sum(b.num_rows for b in batches), bad) == (1, [])


def test_long_lines_anywhere_and_of_any_length_never_stop_the_reader(tmp_path):
    block = 256
    lengths = [block - 1, block, block + 1, 2 * block - 1, 2 * block + 3, 10 * block, 37 * block + 5]
    rows = []
    for n, length in enumerate(lengths):
        rows += [line(ip) for ip in addresses(n + 1, f"10.{n}.0")]
        rows.append(line(f"10.{n}.1.1", city="y" * length)[:length])
    path = tmp_path / "long.csv"
    path.write_text(",".join(COLUMNS) + "\n" + "\r\n".join(rows) + "\n")
    layout = reader.sniff_csv(path)
    bad: list[reader.BadLine] = []
    read = sum(
        b.num_rows for b in reader.read_csv_batches(path, layout, on_bad_line=bad.append, block_bytes=block)
    )
    too_long = [r for r in rows if len(r) > block]
    assert len(bad) == len(too_long)
    assert read == len(rows) - len(too_long)
    assert all(re.search(rf"longer than the {block} bytes a line may have$", b.reason) for b in bad)


def test_a_long_value_in_the_middle_of_a_line_is_not_read_as_a_short_line(tmp_path):
    huge = line("198.51.100.99", port="9" * (2 * MiB))
    outcome = run(tmp_path, report(addresses(5)) + huge + "\n", block_bytes=1 * MiB)
    assert outcome.summary.written == 5
    assert [q.reason.split(",")[0] for q in outcome.quarantined] == [
        f"the line at byte {len(report(addresses(5)))} is {len(huge)} bytes long"
    ]


def test_a_bad_line_with_a_cell_over_128_kib_does_not_crash_the_run(tmp_path):
    text = report(addresses(2)) + line("198.51.100.9", city="c" * 200_000) + ",surplus\n"
    outcome = run(tmp_path, text)
    assert outcome.reasons() == [f"expected {WIDTH} columns, found {WIDTH + 1}"]


# --- values no converter may raise on (found by the fuzzing below) ------------------------------


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("port", "+3389", 3389),  # Arrow's cast takes no '+': it raised
        ("integer", "+0", 0),
        ("port", "2147483648", None),  # refused, but cast to int32 first: it raised
        ("port", "99999999999", None),
        ("asn", "4294967296", None),
        ("datetime", "0001-01-01T00:00:00+01:00", None),  # before year 1 in UTC: OverflowError
        ("datetime", "9999-12-31T23:59:59-01:00", None),
    ],
)
def test_converters_refuse_or_accept_without_raising(kind, text, value):
    converted = convert.CONVERTERS[kind](pa.array([text]))
    assert converted.values.to_pylist() == [value]
    assert converted.refused.tolist() == [value is None]


def test_fractions_finer_than_microseconds_are_cut_to_microseconds():
    converted = convert.convert_datetime(pa.array(["2026-11-20T10:00:00.1234567Z", "2026-11-20 10:00:00.5"]))
    assert [v.microsecond for v in converted.values.to_pylist()] == [123456, 500000]  # was 0: dropped


def test_a_port_out_of_range_is_kept_as_extra_and_the_run_goes_on(tmp_path):
    text = "timestamp,ip,port\n"
    text += "2026-11-20 10:00:00,198.51.100.7,+3389\n2026-11-20 10:00:00,198.51.100.8,99999999999\n"
    outcome = run(tmp_path, text)  # raised ArrowInvalid out of run_file before
    assert outcome.summary.error == ""
    assert outcome.summary.coerced == 1
    events = outcome.by_ip()
    assert events["198.51.100.7"]["source.port"] == 3389
    assert (events["198.51.100.8"]["source.port"], events["198.51.100.8"]["extra.port"]) == (
        None,
        "99999999999",
    )


# --- fuzzing ------------------------------------------------------------------------------------


def _datetimes() -> st.SearchStrategy[str]:
    moments = st.datetimes(timezones=st.none() | st.timezones())
    return st.tuples(moments, st.sampled_from(["T", " "]), st.sampled_from(["auto", "microseconds"])).map(
        lambda t: t[0].isoformat(sep=t[1], timespec=t[2])
    )


CELLS = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.text(alphabet="0123456789+-.:eEaAsS TZ", max_size=24),
    st.integers().map(str),
    st.ip_addresses().map(str),
    _datetimes(),
    st.from_regex(r"(AS)?[0-9]{1,20}|[a-z]{1,5}://[^\s]{0,20}|CVE-[0-9]{4}-[0-9]{4,7}", fullmatch=True),
)


@pytest.mark.parametrize("kind", sorted(convert.CONVERTERS))
@settings(max_examples=60, deadline=None)
@given(texts=st.lists(CELLS, max_size=8))
def test_fuzz_converters_never_raise(kind, texts):
    converted = convert.CONVERTERS[kind](pa.array(texts, pa.string()))
    assert len(converted.values) == len(texts)
    assert converted.refused.dtype == bool
    assert converted.refused.shape == (len(texts),)
    converted.values.validate(full=True)
    for text, value, refused in zip(texts, converted.values.to_pylist(), converted.refused, strict=True):
        if refused:
            assert value is None
        if text is None or not text.strip():
            assert not refused


@settings(max_examples=150, deadline=None)
@given(
    columns=st.lists(
        st.sampled_from([*COLUMNS, "tag", "naics", "extra", "sector"]), min_size=1, max_size=9, unique=True
    ),
    rows=st.integers(min_value=0, max_value=6),
    data=st.data(),
)
def test_fuzz_apply_mapping_raises_only_mapping_errors(columns, rows, data):
    table = pa.table(
        {
            name: pa.array(data.draw(st.lists(CELLS, min_size=rows, max_size=rows)), pa.string())
            for name in columns
        }
    )
    if {"timestamp", "ip"} - set(columns):
        with pytest.raises(MappingError, match="the input has no column"):
            apply_mapping(rdp(), table)
        return
    mapped = apply_mapping(rdp(), table)
    assert mapped.table.num_rows == rows
    assert mapped.malformed.shape == (rows,)
    assert len(mapped.reasons) == int(mapped.malformed.sum())


def _read_all(
    path: Path, block_bytes: int
) -> tuple[reader.CsvLayout, list[pa.RecordBatch], list[reader.BadLine]]:
    layout = reader.sniff_csv(path)
    bad: list[reader.BadLine] = []
    batches = list(reader.read_csv_batches(path, layout, on_bad_line=bad.append, block_bytes=block_bytes))
    for batch in batches:
        assert batch.schema.names == layout.columns
        assert all(t == pa.string() for t in batch.schema.types)
        batch.validate(full=True)  # valid UTF-8 whatever the bytes were
    return layout, batches, bad


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=600), block_bytes=st.sampled_from([64, 256, 4096]))
def test_fuzz_the_reader_on_arbitrary_bytes(data, block_bytes):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fuzz.csv"
        path.write_bytes(data)
        with contextlib.suppress(reader.UnreadableFile):  # the only exception the reader may raise
            _read_all(path, block_bytes)


_CELL_TEXT = st.text(
    alphabet=st.sampled_from([*"ab ,;|\t\"'#xyzé€0123456789.:-", "\x00", "\x85", "\u2028", "\x0c"]),
    max_size=10,
)


@st.composite
def _csvish(draw: st.DrawFn) -> tuple[bytes, str, list[list[str]], bool]:
    """A delimited file as csv writes it (quotes where needed), its delimiter, its rows, and whether
    it was cut short inside its last line."""
    delimiter = draw(st.sampled_from(reader.DELIMITERS))
    width = draw(st.integers(min_value=2, max_value=5))
    header = [f"c{i}" for i in range(width)]
    rows = draw(
        st.lists(
            st.lists(_CELL_TEXT, min_size=1, max_size=width + 2).filter(lambda r: any(r)),
            max_size=12,
        )
    )
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    data = "".join(_csv_line(row, delimiter) + ending for row in [header, *rows]).encode()
    cut = False
    if draw(st.booleans()):
        data = data.removesuffix(ending.encode())
        last = len(_csv_line(rows[-1], delimiter).encode()) if rows else 0
        if last > 1 and draw(st.booleans()):
            data = data[: -draw(st.integers(min_value=1, max_value=last - 1))]  # maybe inside a character
            cut = True
    return data, delimiter, rows, cut


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_csvish(), block_bytes=st.sampled_from([48, 128, 4096]))
def test_fuzz_the_reader_on_csv_every_line_is_read_or_reported(case, block_bytes):
    data, delimiter, rows, cut = case
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fuzz.csv"
        path.write_bytes(data)
        layout, batches, bad = _read_all(path, block_bytes)
    assert layout.delimiter == delimiter
    width = len(layout.columns)
    read = [list(row.values()) for batch in batches for row in batch.to_pylist()]
    assert len(read) + len(bad) == len(rows)
    assert all(line_.reason for line_ in bad)
    expected = [
        [cell or None for cell in row]
        for row in (rows[:-1] if cut else rows)
        if len(row) == width and len(_csv_line(row, delimiter).encode()) <= block_bytes
    ]
    if cut:  # the last line is reported, or read with what is left of its last cell
        assert read[: len(expected)] == expected
        assert len(read) - len(expected) in (0, 1)
    else:
        assert read == expected


def _csv_line(row: list[str], delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(row)
    return out.getvalue()


_SCAN_VALUES = [b"2026-11-20 10:00:00", b"198.51.100.7", b"::1", b"+1", b"99999999999", b"AS0", b"CVE-2026-1"]
_SCAN_PARTS = st.sampled_from(
    [*_SCAN_VALUES, b",", b";", b'"', b"\n", b"\r", b"\xff", b"\xc3\xa9", b"x" * 40]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(max_size=400)
    | _csvish().map(lambda case: case[0])
    | st.lists(_SCAN_PARTS, max_size=60).map(lambda parts: report([]).encode() + b"".join(parts)),
    block_bytes=st.sampled_from([64, 256, 4096]),
)
def test_fuzz_a_run_never_raises(data, block_bytes):
    with tempfile.TemporaryDirectory() as directory:
        outcome = run(Path(directory), data, block_bytes=block_bytes)
    assert outcome.summary.read >= outcome.summary.quarantined
    assert all(q.reason for q in outcome.quarantined)
    assert "could not be read past" not in outcome.summary.error  # no block lost to Arrow
