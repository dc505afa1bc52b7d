"""Converters, keys and the deduplication window, without a database."""

from __future__ import annotations

import datetime as dt
import ipaddress

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certnet.feeds import convert
from certnet.feeds.dedup import SqliteSeenKeys, first_in_batch
from certnet.feeds.keys import column_hash, row_keys
from certnet.feeds.schema import event_schema, field_reference


def _python_ip(text: str) -> str | None:
    if ":" not in text and text.count(".") != 3:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.ip_addresses().map(str), st.text(alphabet="0123456789.:abcdefx ", max_size=20)),
        max_size=40,
    )
)
def test_address_conversion_agrees_with_pythons_parser(texts):
    converted = convert.convert_ip(pa.array(texts, pa.string()))
    for text, value, refused in zip(texts, converted.values.to_pylist(), converted.refused, strict=True):
        expected = _python_ip(text.strip())
        if not text.strip():
            assert value is None
            assert not refused
        elif expected is None or (":" not in text and text.strip() != expected):
            # Python accepts nothing we refuse; we refuse IPv4 text that is not a plain dotted quad.
            assert value is None, text
            assert refused, text
        else:
            assert value == expected, text
            assert not refused, text


def test_ipv4_numbers_are_the_addresses_as_integers():
    numbers, is_v4 = convert.ipv4_numbers(pa.array(["1.2.3.4", "255.255.255.255", "::1", None, "1.2.3.04"]))
    assert list(is_v4) == [True, True, False, False, False]
    assert int(numbers[0]) == int(ipaddress.ip_address("1.2.3.4"))
    assert int(numbers[1]) == 2**32 - 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="0123456789.", max_size=16), max_size=40))
def test_ipv4_numbers_agree_with_pythons_parser(texts):
    numbers, is_v4 = convert.ipv4_numbers(pa.array(texts, pa.string()))
    for text, number, ok in zip(texts, numbers, is_v4, strict=True):
        expected = _python_ip(text)
        assert bool(ok) == (expected is not None and expected == text), text
        if ok:
            assert int(number) == int(ipaddress.ip_address(text))


def test_shadowserver_times_take_the_cast_and_a_bad_one_still_says_which():
    good = convert.convert_datetime(pa.array(["2024-05-01 06:32:31", "2024-05-01T23:59:59", None]))
    assert good.values.to_pylist()[:2] == [
        dt.datetime(2024, 5, 1, 6, 32, 31, tzinfo=dt.UTC),
        dt.datetime(2024, 5, 1, 23, 59, 59, tzinfo=dt.UTC),
    ]
    assert str(good.values.type) == "timestamp[us, tz=UTC]"
    # Nineteen characters that are not an instant: the general path refuses that one row only.
    mixed = convert.convert_datetime(pa.array(["2024-05-01 06:32:31", "2024-02-30 00:00:00", "x" * 19]))
    assert mixed.refused.tolist() == [False, True, True]
    assert mixed.values.to_pylist()[0] == dt.datetime(2024, 5, 1, 6, 32, 31, tzinfo=dt.UTC)


def test_host_names_lose_a_trailing_dot_and_fold_case_beyond_ascii():
    converted = convert.convert_fqdn(pa.array(["WWW.Example.PK.", "\u212aarachi.example", "bad_.-x", None]))
    assert converted.values.to_pylist() == ["www.example.pk", "karachi.example", None, None]
    assert converted.refused.tolist() == [False, False, True, False]


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("datetime", "2026-11-20 10:00:00", dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)),
        ("datetime", "2026-11-20T10:00:00Z", dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)),
        ("datetime", "2026-11-20T15:00:00+05:00", dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)),
        (
            "datetime",
            "2026-11-20 10:00:00.123 UTC",
            dt.datetime(2026, 11, 20, 10, 0, 0, 123000, tzinfo=dt.UTC),
        ),
        ("asn", "AS64500", 64500),
        ("port", "443", 443),
        ("url", "HTTP://Example.COM/Path?q=A", "http://example.com/Path?q=A"),
        ("fqdn", "Bücher.Example.", "xn--bcher-kva.example"),
        ("hash", "AB:CD:" * 7 + "AB:CD", "abcd" * 8),
        (
            "datetime",
            "2026-11-20T10:00:00.123456+00:00",
            dt.datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=dt.UTC),
        ),
        ("url", "ftp://User:PassWord@Files.Example.com/X", "ftp://User:PassWord@files.example.com/X"),
        ("tlp", "tlp:white", "CLEAR"),
        ("type", "botnet drone", "infected-system"),
        ("boolean", "Y", True),
        ("cc", "pk", "PK"),
    ],
)
def test_converters_normalise_what_they_accept(kind, text, value):
    converted = convert.CONVERTERS[kind](pa.array([text]))
    assert converted.values.to_pylist() == [value]
    assert not converted.refused.any()


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("datetime", "yesterday"),
        ("asn", "0"),
        ("asn", "AS-x"),
        ("port", "70000"),
        ("url", "example.com/x"),
        ("fqdn", "-bad-.example"),
        ("hash", "xyz"),
        ("tlp", "purple"),
        ("taxonomy", "nonsense"),
        ("cc", "PAK"),
    ],
)
def test_converters_refuse_what_is_not_of_their_type(kind, text):
    converted = convert.CONVERTERS[kind](pa.array([text]))
    assert converted.values.to_pylist() == [None]
    assert converted.refused.tolist() == [True]


def test_keys_are_the_same_in_every_release_and_independent_of_position():
    table = pa.table(
        {"ip": ["198.51.100.7", "198.51.100.7", None], "port": pa.array([3389, 3389, 22], pa.int32())}
    )
    keys = row_keys(table, ["ip", "port"])
    assert keys[0] == keys[1] != keys[2]
    # Pinned: a deduplication window written by one release is read by the next.
    assert int(column_hash(pa.array(["abc"]))[0]) == 2255025502993025896
    assert column_hash(pa.array(["x", "abc"]).slice(1))[0] == column_hash(pa.array(["abc"]))[0]


def test_the_window_keeps_keys_across_restarts_and_a_batch_may_reclaim_its_own(tmp_path):
    path = tmp_path / "seen.sqlite3"
    seen = SqliteSeenKeys(path)
    first = np.array([5, 3, 9, 3], dtype=np.uint64)
    unique = first[first_in_batch(first)]
    assert seen.claim("b1", unique).all()
    seen.commit("b1")
    assert seen.claim("b2", np.array([9, 10], dtype=np.uint64)).tolist() == [False, True]
    # b2 never committed (its writer died): after a restart its key 10 is free again.
    restarted = SqliteSeenKeys(path)
    assert restarted.claim("b1", unique).all()  # a batch processed again finds its own keys new
    assert restarted.claim("b3", np.array([3, 10], dtype=np.uint64)).tolist() == [False, True]


def test_keys_older_than_the_window_are_forgotten(tmp_path):
    path = tmp_path / "seen.sqlite3"
    seen = SqliteSeenKeys(path, window=dt.timedelta(seconds=-1))
    seen.claim("old", np.array([1], dtype=np.uint64))
    seen.commit("old")
    assert SqliteSeenKeys(path).claim("new", np.array([1], dtype=np.uint64)).tolist() == [True]


def test_the_field_reference_is_generated_from_the_schema_file():
    schema = event_schema()
    assert schema.field("source.ip").type == "ip"
    assert schema.field("extra.anything").type == "string"
    reference = field_reference(schema)
    assert "| `source.ip` | ip | string |" in reference
    assert "| `route.cii` | boolean | bool |" in reference


def test_a_long_running_window_forgets_expired_keys_without_a_restart(tmp_path, monkeypatch):
    from certnet.feeds import dedup

    clock = [1_000_000.0]
    monkeypatch.setattr(dedup.time, "time", lambda: clock[0])
    seen = SqliteSeenKeys(tmp_path / "seen.sqlite3", window=dt.timedelta(hours=1))
    keys = np.array([1, 2, 3], dtype=np.uint64)
    seen.claim("a", keys)
    seen.commit("a")
    clock[0] += 1800
    assert not seen.claim("b", keys).any()
    clock[0] += 3600
    assert seen.claim("c", keys).all()
    assert len(seen) == 3


def test_the_field_reference_in_docs_is_the_generated_one():
    from pathlib import Path

    docs = Path(__file__).resolve().parents[3] / "docs" / "feeds-fields.md"
    assert docs.read_text(encoding="utf-8") == field_reference(), (
        "docs/feeds-fields.md is stale: run `certnet feeds fields --write docs/feeds-fields.md`"
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 400), max_size=60), max_size=25), st.sampled_from([4, 16, 1 << 20]))
def test_the_window_in_runs_answers_as_a_dictionary_does(batches, max_run):
    from certnet.feeds.dedup import SortedRuns

    runs, expected = SortedRuns(), {}
    runs.MAX_RUN = max_run
    for number, batch in enumerate(batches):
        keys = np.unique(np.array(batch, dtype=np.uint64))
        found, _ = runs.find(keys)
        runs.add(keys[~found], np.full(int((~found).sum()), number))
        for key in keys.tolist():
            expected.setdefault(key, number)
        probe = np.arange(0, 402, dtype=np.uint64)
        found, owner = runs.find(probe)
        assert found.tolist() == [int(k) in expected for k in probe]
        assert owner[found].tolist() == [expected[int(k)] for k in probe[found]]
    assert len(runs) == len(expected)
    every = np.concatenate(runs.keys) if runs.keys else np.zeros(0, np.uint64)
    assert len(np.unique(every)) == len(every)  # the runs are disjoint
    assert all((np.diff(run.astype(np.int64)) > 0).all() for run in runs.keys)
    live = np.array([n % 2 == 0 for n in range(len(batches) + 1)])
    runs.keep(live)
    assert len(runs) == sum(1 for owner in expected.values() if owner % 2 == 0)
