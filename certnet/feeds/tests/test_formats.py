"""The abuse.ch mappings on sample files, and the readers and writer in certnet.feeds.formats."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from certnet.core.tlp import STIX_MARKING_IDS, TLP
from certnet.feeds import formats
from certnet.feeds.mapping import MAPPINGS_DIR, MappingError, apply_mapping, detect_mapping, load_mapping
from certnet.feeds.reader import BadLine, UnreadableFile, read_csv_batches, sniff_csv

DATA = Path(__file__).with_name("data")
UTC = dt.UTC


def read_csv(path: Path) -> tuple[list[str], pa.Table, list[BadLine]]:
    layout = sniff_csv(path)
    bad: list[BadLine] = []
    batches = list(read_csv_batches(path, layout, on_bad_line=bad.append))
    return layout.columns, pa.Table.from_batches(batches), bad


def abusech() -> dict[str, Any]:
    found = [load_mapping(MAPPINGS_DIR / "abusech" / f"{name}.yaml") for name in ("urlhaus", "feodotracker")]
    return {mapping.key: mapping for mapping in found}


# --- abuse.ch ------------------------------------------------------------------------------------


def test_urlhaus_sample_maps_to_malware_distribution_events():
    columns, table, bad = read_csv(DATA / "urlhaus.csv")
    assert columns[:4] == ["id", "dateadded", "url", "url_status"]
    assert columns[4:] == ["last_online", "threat", "tags", "urlhaus_link", "reporter"]
    assert bad == []
    mapping = detect_mapping("urlhaus.csv", columns, abusech())
    assert mapping is not None
    assert mapping.key == "abuse.ch/urlhaus"

    batch = apply_mapping(mapping, table)

    rows = batch.table.to_pylist()
    assert rows[0] == {
        "time.source": dt.datetime(2024, 5, 1, 11, 58, 7, tzinfo=UTC),
        "source.url": "http://198.51.100.23:40321/i",
        "source.fqdn": None,  # an address as host: nothing to route by domain
        "status": "online",
        "classification.identifier": "malware_download",
        "event_description.url": "https://urlhaus.abuse.ch/url/2800101/",
        "classification.taxonomy": "malicious-code",
        "classification.type": "malware-distribution",
        "extra.id": "2800101",
        "extra.last_online": "2024-05-01 11:58:07",
        "extra.tags": "32-bit,elf,mips,Mozi",
        "extra.reporter": "geenensp",
    }
    assert rows[1]["source.url"] == "https://files.example.com/update/setup.exe"  # host lower-cased
    assert rows[1]["source.fqdn"] == "files.example.com"
    assert rows[1]["extra.last_online"] is None
    assert batch.malformed.tolist() == [False, False, True]
    assert batch.reasons == ["column 'url': 'not a url' is not a valid url"]


def test_feodotracker_sample_maps_to_c2_server_events():
    columns, table, bad = read_csv(DATA / "feodotracker.csv")
    assert columns == ["first_seen_utc", "dst_ip", "dst_port", "c2_status", "last_online", "malware"]
    assert bad == []
    mapping = detect_mapping("ipblocklist.csv", columns, abusech())
    assert mapping is not None
    assert mapping.key == "abuse.ch/feodotracker"

    batch = apply_mapping(mapping, table)

    assert not batch.malformed.any()
    assert batch.coerced == 0
    assert batch.table.to_pylist()[0] == {
        "time.source": dt.datetime(2024, 4, 28, 9, 14, 55, tzinfo=UTC),
        "source.ip": "192.0.2.44",
        "source.port": 443,
        "status": "online",
        "malware.name": "qakbot",
        "classification.taxonomy": "malicious-code",
        "classification.type": "c2-server",
        "protocol.transport": "tcp",
        "extra.last_online": "2024-05-01",
    }
    assert mapping.dedup_fields(batch.table.column_names) == ["source.ip", "source.port", "malware.name"]


# --- generic CSV ---------------------------------------------------------------------------------


def test_generic_csv_mapping_maps_an_operators_columns():
    mapping = formats.generic_csv_mapping(
        "blocklist",
        "Partner CERT",
        {"when": {"field": "time.source", "required": True}, "addr": "source.ip", "note": "comment"},
        {"classification.taxonomy": "other", "classification.type": "blacklist", "tlp": "tlp:green"},
    )
    text = pa.table({"when": ["2024-05-01 10:00:00"], "addr": ["2001:DB8::1"], "note": ["seen"], "x": ["1"]})

    row = apply_mapping(mapping, text).table.to_pylist()[0]

    assert mapping.key == "partner cert/blocklist"
    assert row["source.ip"] == "2001:db8::1"
    assert row["tlp"] == "GREEN"
    assert row["classification.type"] == "blacklist"
    assert row["extra.x"] == "1"


def test_a_repetitive_column_converts_once_per_value_with_the_same_outcome_per_row():
    mapping = formats.generic_csv_mapping(
        "blocklist",
        "Partner CERT",
        {
            "when": {"field": "time.source", "required": True},
            "port": "source.port",
            "asn": {"field": "source.asn", "zero_is_empty": True},
        },
        {"classification.taxonomy": "other", "classification.type": "blacklist"},
    )
    # Two thousand rows of a few values each: converted through their distinct values.
    ports = ["3389", "443", "x", None, "70000"] * 400
    asns = ["AS64500", "0", "64501", "", "bogus"] * 400
    text = pa.table({"when": ["2024-05-01 10:00:00"] * 2000, "port": ports, "asn": asns})

    batch = apply_mapping(mapping, text)
    one_by_one = [apply_mapping(mapping, text.slice(i, 1)) for i in range(5)]

    assert not batch.malformed.any()
    assert batch.coerced == 3 * 400  # x, 70000 and bogus kept in extra.*; 0 is empty, not refused
    for i, single in enumerate(one_by_one):
        row, expected = batch.table.slice(i, 1).to_pylist()[0], single.table.to_pylist()[0]
        assert {k: row.get(k) for k in expected} == expected
        assert batch.table.slice(i + 1995, 1).to_pylist()[0] == row


@pytest.mark.parametrize(
    ("columns", "constants", "message"),
    [
        ({"ip": "source.ipp"}, {}, "column 'ip': unknown field 'source.ipp' (did you mean 'source.ip'?)"),
        (
            {"ip": {"field": "source.ip", "required": "no"}},
            {},
            "column 'ip': 'required' must be true or false",
        ),
        ({"ip": {"fields": "source.ip"}}, {}, "column 'ip' needs 'field'"),
        (
            {"ip": "source.ip"},
            {"classification.type": "nonsense"},
            "constant 'classification.type': 'nonsense'",
        ),
        ({"ip": "source.ip"}, {"source.cc": "NL"}, "constant 'source.cc': unknown field"),
        ({"ip": "source.ip"}, {"tlp": ["GREEN"]}, "constant 'tlp': expected one value"),
        ({"ip": "source.ip"}, {"source.ip": "192.0.2.1"}, "constant 'source.ip' is also column 'ip'"),
        ({}, {}, "'columns' must map at least one CSV column"),
    ],
)
def test_generic_csv_mapping_names_the_bad_entry(columns, constants, message):
    with pytest.raises(MappingError, match="source 'mine'") as raised:
        formats.generic_csv_mapping("mine", "Me", columns, constants)
    assert message in str(raised.value)


# --- IntelMQ JSON lines --------------------------------------------------------------------------

INTELMQ_EVENTS = [
    {
        "__type": "Event",
        "classification.taxonomy": "malicious-code",
        "classification.type": "infected-system",
        "classification.identifier": "mirai",
        "feed.accuracy": 100.0,
        "feed.name": "Drone",
        "feed.provider": "Shadowserver",
        "malware.name": "mirai",
        "protocol.transport": "tcp",
        "raw": base64.b64encode(b'"2024-05-01 10:00:00","192.0.2.5"').decode(),
        "source.asn": 64496,
        "source.geolocation.cc": "NL",
        "source.ip": "192.0.2.5",
        "source.port": 23,
        "time.observation": "2024-05-01T11:00:05+00:00",
        "time.source": "2024-05-01T10:00:00+00:00",
        "tlp": "AMBER",
        "extra.naics": "517311",
    },
    {
        "classification": {"taxonomy": "malicious-code", "type": "malware-distribution"},
        "source": {
            "url": "http://www.example.com/x.exe",
            "fqdn": "www.example.com",
            "geolocation": {"cc": "BE"},
        },
        "time": {"source": "2024-05-02T08:30:00+00:00"},
        "malware": {"hash": {"sha256": "ab" * 32}},
        "extra": {"reporter": "someone", "confidence": "high"},
    },
]


def flat(event: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in event.items():
        if key == "__type":
            continue
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_intelmq_json_round_trips(tmp_path):
    source = write_lines(tmp_path / "events.json", [json.dumps(event) for event in INTELMQ_EVENTS])
    bad: list[BadLine] = []
    out = io.StringIO()

    for text in formats.read_json_lines(source, bad.append):
        batch = apply_mapping(formats.intelmq_mapping_for(text.column_names), text)
        assert not batch.malformed.any()
        assert batch.coerced == 0
        assert batch.table.schema.field("source.port").type == pa.int32()
        assert formats.write_intelmq_json(batch.table, out) == 2

    assert bad == []
    written = [json.loads(line) for line in out.getvalue().splitlines()]
    assert written == [flat(event) for event in INTELMQ_EVENTS]


def test_read_json_lines_reports_bad_lines_and_goes_on(tmp_path):
    source = write_lines(
        tmp_path / "mixed.json",
        [
            '{"source.ip": "192.0.2.1", "extra": {"count": 3, "seen": true, "ports": [80, 443], "no": null}}',
            "not json at all",
            '["an", "array"]',
            "",
            "42",
            '{"source": {"ip": "192.0.2.2", "port": "8080"}, "extra.note": {"a": 1}}',
            '{"source.ip": "192.0.2.3", "raw": "plain, not base64"}',
        ],
    )
    bad: list[BadLine] = []

    tables = list(formats.read_json_lines(source, bad.append, batch_lines=2))

    assert [t.num_rows for t in tables] == [2, 1]
    assert all(t.schema.types == [pa.string()] * t.num_columns for t in tables)
    rows = [{k: v for k, v in row.items() if v is not None} for t in tables for row in t.to_pylist()]
    assert rows[0] == {
        "source.ip": "192.0.2.1",
        "extra.count": "3",
        "extra.seen": "true",
        "extra.ports": "[80, 443]",
    }
    assert rows[1] == {"source.ip": "192.0.2.2", "source.port": "8080", "extra.note": '{"a": 1}'}
    assert rows[2]["raw"] == "plain, not base64"
    assert [(b.line, b.text) for b in bad] == [(2, "not json at all"), (3, '["an", "array"]'), (5, "42")]
    assert bad[0].reason.startswith("not JSON")
    assert bad[1].reason == "a JSON array, not an object: one event per line"
    assert bad[2].reason == "a JSON int, not an object"


def test_intelmq_mapping_keeps_unknown_fields_in_extra():
    mapping = formats.intelmq_mapping_for(["source.ip", "extra.foo", "source.tor_node"])
    assert {rule.column: rule.field for rule in mapping.rules} == {
        "source.ip": "source.ip",
        "extra.foo": "extra.foo",
        "source.tor_node": "extra.source.tor_node",
    }


def test_write_intelmq_json_renames_route_fields_and_leaves_out_nulls():
    table = pa.table(
        {
            "time.source": pa.array(
                [dt.datetime(2024, 5, 1, 10, 0, tzinfo=UTC), None], pa.timestamp("us", tz="UTC")
            ),
            "source.ip": ["192.0.2.1", "192.0.2.2"],
            "route.organisation": ["acme", None],
            "route.cert": ["cert-nl", "cert-nl"],
            "route.cii": [True, None],
            "raw": ["a,b", None],
        }
    )
    out = io.StringIO()

    formats.write_intelmq_json(table, out)

    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first == {
        "time.source": "2024-05-01T10:00:00+00:00",
        "source.ip": "192.0.2.1",
        "extra.constituency": "acme",
        "extra.certnet_cert": "cert-nl",
        "extra.certnet_cii": True,
        "raw": base64.b64encode(b"a,b").decode(),
    }
    assert second == {"source.ip": "192.0.2.2", "extra.certnet_cert": "cert-nl"}


# --- MISP feeds ----------------------------------------------------------------------------------

EVENT_A = "5f0c2a6e-1b7e-4c43-9a3f-0d3e1c9a1a01"
EVENT_B = "5f0c2a6e-1b7e-4c43-9a3f-0d3e1c9a1a02"
MISSING = "5f0c2a6e-1b7e-4c43-9a3f-0d3e1c9a1a03"


def attribute(number: int, type_: str, value: str, **more: Any) -> dict[str, Any]:
    uid = f"7d1e0b52-3c6f-4e0a-8b7d-00000000{number:04d}"
    return {
        "uuid": uid,
        "type": type_,
        "value": value,
        "category": "Network activity",
        "timestamp": "1714557600",
        **more,
    }


def misp_feed(directory: Path) -> Path:
    event_a = {
        "uuid": EVENT_A,
        "info": "Botnet C2 servers",
        "timestamp": "1714557000",
        "Orgc": {"name": "Partner CERT"},
        "Tag": [{"name": "tlp:green"}, {"name": 'rsit:malicious-code="c2-server"'}, {"name": "botnet"}],
        "Attribute": [
            attribute(1, "ip-dst", "198.51.100.7", comment="seen on port 443"),
            attribute(2, "ip-dst|port", "203.0.113.9|8443"),
            attribute(3, "regkey", r"HKLM\Software\Bad"),
            attribute(4, "ip-dst", "not-an-ip"),
            attribute(5, "email-src", "sender@example.com"),
            attribute(
                6, "domain", "c2.Example.com", Tag=[{"name": 'rsit:malicious-code="malware-distribution"'}]
            ),
        ],
        "Object": [
            {
                "uuid": "9a1b2c3d-0000-4000-8000-000000000001",
                "name": "file",
                "Attribute": [
                    attribute(7, "sha256", "CD" * 32),
                    attribute(8, "filename|md5", "a.exe|" + "ef" * 16),
                ],
            }
        ],
    }
    event_b = {
        "uuid": EVENT_B,
        "info": "Phishing URLs",
        "Tag": [{"name": "tlp:amber"}],
        "Attribute": [
            attribute(9, "url", "https://login.example.net/a", first_seen="2024-04-30T08:00:00+00:00")
        ],
    }
    directory.mkdir()
    manifest = {EVENT_A: {"info": "a"}, EVENT_B: {"info": "b"}, MISSING: {"info": "c"}, "../etc": {}}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    (directory / f"{EVENT_A}.json").write_text(json.dumps({"Event": event_a}))
    (directory / f"{EVENT_B}.json").write_text(json.dumps({"Event": event_b}))
    (directory / "stray.json").write_text("{}")
    return directory


def test_misp_feed_rows_per_attribute_with_notes_for_the_rest(tmp_path):
    stream = formats.misp_feed_tables(misp_feed(tmp_path / "feed"), batch_rows=4)

    tables = list(stream)

    assert [t.num_rows for t in tables] == [4, 2]
    rows = [row for t in tables for row in t.to_pylist()]
    assert [
        r.get("source.ip")
        or r.get("source.fqdn")
        or r.get("source.url")
        or r.get("malware.hash.md5")
        or r.get("malware.hash.sha256")
        for r in rows
    ] == [
        "198.51.100.7",
        "203.0.113.9",
        "c2.Example.com",
        "CD" * 32,
        "ef" * 16,
        "https://login.example.net/a",
    ]
    first = {key: value for key, value in rows[0].items() if value is not None}
    assert first == {
        "comment": "Botnet C2 servers",
        "extra.misp_event_uuid": EVENT_A,
        "feed.name": "Partner CERT",
        "source.ip": "198.51.100.7",
        "classification.taxonomy": "malicious-code",
        "classification.type": "c2-server",
        "tlp": "GREEN",
        "time.source": "2024-05-01T10:00:00+00:00",
        "event_description.text": "seen on port 443",
        "extra.tags": "botnet",
        "extra.misp_type": "ip-dst",
        "extra.misp_category": "Network activity",
        "extra.misp_attribute_uuid": "7d1e0b52-3c6f-4e0a-8b7d-000000000001",
    }
    assert rows[1]["source.port"] == "8443"
    assert rows[2]["classification.type"] == "malware-distribution"  # the attribute's own tag wins
    assert rows[4]["extra.file_name"] == "a.exe"
    assert rows[5]["classification.type"] == "undetermined"
    assert rows[5]["time.source"] == "2024-04-30T08:00:00+00:00"
    assert rows[5]["tlp"] == "AMBER"

    kinds = {(note.kind, note.where) for note in stream.notes}
    assert ("regkey", f"{EVENT_A}.json:Event.Attribute[2]") in kinds
    assert ("ip-dst", f"{EVENT_A}.json:Event.Attribute[3]") in kinds
    assert ("email-src", f"{EVENT_A}.json:Event.Attribute[4]") in kinds
    assert ("event file", f"{MISSING}.json") in kinds
    assert ("event file", "stray.json") in kinds
    assert ("manifest entry", "manifest.json['../etc']") in kinds
    assert stream.counts["regkey"] == 1
    assert stream.rows == 6

    typed = pa.concat_tables(tables, promote_options="default")
    batch = apply_mapping(formats.intelmq_mapping_for(typed.column_names), typed)
    assert not batch.malformed.any()
    assert batch.coerced == 0
    assert batch.table.column("source.fqdn").to_pylist()[2] == "c2.example.com"


# --- STIX bundles --------------------------------------------------------------------------------


def stix_id(kind: str, number: int) -> str:
    return f"{kind}--6ba7b810-9dad-41d1-80b4-00c04fd4{number:04d}"


def test_stix_bundle_rows_from_indicators_and_observed_data(tmp_path):
    common = {
        "spec_version": "2.1",
        "created": "2024-05-01T00:00:00.000Z",
        "modified": "2024-05-01T00:00:00.000Z",
    }

    def indicator(number: int, pattern: str, **more: Any) -> dict[str, Any]:
        return {
            "type": "indicator",
            "id": stix_id("indicator", number),
            **common,
            "pattern": pattern,
            "pattern_type": "stix",
            "valid_from": "2024-05-01T09:00:00Z",
            **more,
        }

    objects = [
        {"type": "identity", "id": stix_id("identity", 1), **common, "name": "Partner CERT"},
        indicator(
            1,
            "[ipv4-addr:value = '192.0.2.77']",
            name="C2",
            object_marking_refs=[STIX_MARKING_IDS[TLP.GREEN]],
        ),
        indicator(2, "[domain-name:value = 'bad.example.org']"),
        indicator(3, "[file:hashes.'SHA-256' = '" + "12" * 32 + "']"),
        indicator(4, "[ipv4-addr:value = '192.0.2.1'] AND [domain-name:value = 'a.example.com']"),
        indicator(5, "[ipv4-addr:value = "),
        {"type": "malware", "id": stix_id("malware", 1), **common, "name": "Emotet", "is_family": True},
        {
            "type": "relationship",
            "id": stix_id("relationship", 1),
            **common,
            "relationship_type": "indicates",
            "source_ref": stix_id("indicator", 1),
            "target_ref": stix_id("malware", 1),
        },
        {
            "type": "observed-data",
            "id": stix_id("observed-data", 1),
            **common,
            "number_observed": 3,
            "first_observed": "2024-05-01T08:00:00Z",
            "last_observed": "2024-05-01T08:30:00Z",
            "object_refs": [stix_id("ipv4-addr", 1), stix_id("network-traffic", 1)],
        },
        {"type": "ipv4-addr", "id": stix_id("ipv4-addr", 1), "spec_version": "2.1", "value": "203.0.113.50"},
        {"type": "network-traffic", "id": stix_id("network-traffic", 1), "protocols": ["tcp"]},
        {"type": "domain-name", "id": stix_id("domain-name", 1), "value": "lonely.example.com"},
    ]
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps({"type": "bundle", "id": stix_id("bundle", 1), "objects": objects}))

    stream = formats.stix_bundle_tables(path)
    tables = list(stream)

    text = pa.concat_tables(tables, promote_options="default")
    batch = apply_mapping(formats.intelmq_mapping_for(text.column_names), text)
    assert not batch.malformed.any()
    rows = [{k: v for k, v in row.items() if v is not None} for row in batch.table.to_pylist()]
    assert rows[0] == {
        "extra.stix_id": stix_id("indicator", 1),
        "classification.taxonomy": "other",
        "classification.type": "undetermined",
        "tlp": "GREEN",
        "source.ip": "192.0.2.77",
        "time.source": dt.datetime(2024, 5, 1, 9, 0, tzinfo=UTC),
        "comment": "C2",
        "malware.name": "emotet",
    }
    assert rows[1]["source.fqdn"] == "bad.example.org"
    assert rows[2]["malware.hash.sha256"] == "12" * 32
    assert rows[3]["source.ip"] == "203.0.113.50"
    assert rows[3]["time.source"] == dt.datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert rows[3]["extra.number_observed"] == "3"
    assert len(rows) == 4

    notes = {(note.kind, note.where.removeprefix("bundle.json:")): note.reason for note in stream.notes}
    assert notes[("indicator", "objects[4]")] == formats.NO_FIELD
    assert notes[("indicator", "objects[5]")].startswith("not a valid STIX pattern")
    assert ("observable", f"objects[8].{stix_id('network-traffic', 1)}") in notes
    assert notes[("domain-name", "objects[11]")] == formats.NOT_AN_EVENT
    assert stream.counts == {
        "identity": 1,
        "indicator": 2,
        "malware": 1,
        "relationship": 1,
        "observable": 1,
        "domain-name": 1,
    }


def test_stix_file_that_is_not_a_bundle_is_unreadable(tmp_path):
    (tmp_path / "one.json").write_text(json.dumps({"type": "indicator", "pattern": "[url:value = 'x']"}))
    (tmp_path / "broken.json").write_text('{"type": "bundle", "objects": [{"type": ')
    for name in ("one.json", "broken.json"):
        with pytest.raises(UnreadableFile, match=name):
            list(formats.stix_bundle_tables(tmp_path / name))
