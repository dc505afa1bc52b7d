"""Shadowserver's report schema translated into mappings, checked against real-format report files.

The schema snapshot and the sample reports live outside the repository (`shared/data/shadowserver`, next
to the checkout); the tests that need them skip when it is absent. The tests of the translator's rules
and of malformed rows use small documents and files of their own.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from certnet.feeds import reader, shadowserver
from certnet.feeds.mapping import (
    MAPPINGS_DIR,
    Mapping,
    apply_mapping,
    detect_mapping,
    load_mapping,
    mapping_from_dict,
)

# The project's shared data sits beside the checkout (../shared); CERTNET_SHARED_DIR points elsewhere.
SHARED_DIR = Path(os.environ.get("CERTNET_SHARED_DIR", Path(__file__).resolve().parents[4] / "shared"))
SHADOWSERVER_DATA = SHARED_DIR / "data" / "shadowserver"
SCHEMA_FILE = SHADOWSERVER_DATA / "intelmq.json"
SAMPLES = SHADOWSERVER_DATA / "samples"
SHIPPED = MAPPINGS_DIR / "shadowserver"
HEADER = (
    "# Generated from Shadowserver's published report schema of 2026-03-24 "
    "by `certnet feeds shadowserver-schema`."
)
SHIPPED_REPORTS = {
    "scan_rdp", "scan_smb", "scan_ssl", "scan_http", "scan_telnet", "scan_ntp", "scan_ntpmonitor",
    "scan_dns", "scan_snmp", "scan_memcached", "scan_elasticsearch", "scan_vnc", "scan_ssdp", "scan_mssql",
    "scan_redis", "scan_mysql", "scan_ftp", "scan_cwmp", "blocklist", "event4_sinkhole",
    "event4_sinkhole_http", "event4_honeypot_brute_force", "event4_honeypot_darknet", "scan6_telnet",
    "compromised_website", "device_id",
}  # fmt: skip
# Report types of the sample files that the 2026 schema no longer describes (retired or renamed since the
# samples were taken). Their headers match no current report, and detection must not guess one.
RETIRED = {
    "honeypot_brute_force", "outdated_dnssec_key", "phish_url", "scan_caida", "scan_ldap",
    "scan_log4shell_vulnerable", "scan_msrdpeudp", "scan_sinkholedns",
}  # fmt: skip
UTC = dt.UTC


@pytest.fixture(scope="module")
def schema_document() -> dict[str, Any]:
    if not SCHEMA_FILE.exists():
        pytest.skip(f"Shadowserver's schema snapshot is not at {SCHEMA_FILE} (shared data absent)")
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def translated(schema_document: dict[str, Any]) -> dict[str, Mapping]:
    return shadowserver.mappings_from_schema(SCHEMA_FILE)


def _entry(**overrides):
    entry = {
        "constant_fields": {
            "classification.taxonomy": "vulnerable",
            "classification.type": "vulnerable-system",
        },
        "feed_name": "Accessible-Thing",
        "file_name": "scan_thing",
        "url": "https://example.org/thing-report/",
        "required_fields": [
            ["time.source", "timestamp", "add_UTC_to_timestamp"],
            ["source.ip", "ip", "validate_ip"],
            ["source.port", "port", "convert_int"],
        ],
        "optional_fields": [],
    }
    return {**entry, **overrides}


def _rules(mapping: Mapping, column: str) -> list[Any]:
    return [rule for rule in mapping.rules if rule.column == column]


# --- the translation rules, on documents of our own -------------------------------------------------------


def test_helpers_become_rule_options_and_required_fields_stay_required():
    optional = [
        ["source.asn", "asn", "invalidate_zero"],
        ["extra.", "tag", "validate_to_none"],
        ["product.vulnerabilities", "tag", "extract_cve_from_tag"],
        ["extra.", "cert_length", "convert_int"],
        ["source.reverse_dns", "hostname"],
    ]
    translation = shadowserver.translate_schema(
        {"_meta": {"date_created": "2026-03-24T15:31:20Z"}, "scan_thing": _entry(optional_fields=optional)}
    )
    mapping = translation.mappings["scan_thing"]
    assert translation.schema_date == "2026-03-24"
    assert (mapping.report, mapping.provider, mapping.feed) == (
        "scan_thing",
        "Shadowserver",
        "Accessible-Thing",
    )
    assert mapping.documentation == "https://example.org/thing-report/"
    assert mapping.detect_file_name == "scan_thing"
    assert mapping.required_columns == ["ip", "timestamp"]
    assert _rules(mapping, "asn")[0].zero_is_empty
    assert [(r.field, r.extract) for r in _rules(mapping, "tag")] == [
        ("extra.tag", ""),
        ("product.vulnerabilities", "cve"),
    ]
    assert _rules(mapping, "cert_length")[0].field == "extra.cert_length"
    assert mapping.dedup == ("time.source", "source.ip", "source.port", "feed.name")
    assert "scan_thing" not in translation.notes


def test_a_port_the_schema_requires_may_be_empty():
    # Shadowserver's spoofer and `special` reports leave the required port empty; IntelMQ accepts that.
    mapping = shadowserver.mappings_from_schema({"scan_thing": _entry()})["scan_thing"]
    assert _rules(mapping, "port")[0].field == "source.port"
    assert not _rules(mapping, "port")[0].required


def test_unknown_fields_and_helpers_are_kept_and_noted():
    optional = [
        ["destination.geolocation.city", "dst_city"],
        ["source.fqdn", "host", "some_future_helper"],
        ["classification.taxonomy", "tag", "scan_exchange_taxonomy"],
        ["extra.", "tag", "validate_to_none"],
        ["extra.", "tag", "validate_to_none"],
        [False, "ignored"],
    ]
    translation = shadowserver.translate_schema({"scan_thing": _entry(optional_fields=optional)})
    mapping = translation.mappings["scan_thing"]
    assert _rules(mapping, "dst_city")[0].field == "extra.dst_city"
    assert _rules(mapping, "host")[0].field == "source.fqdn"
    assert [r.field for r in _rules(mapping, "tag")] == ["classification.taxonomy", "extra.tag"]
    assert not _rules(mapping, "ignored")
    notes = " | ".join(translation.notes["scan_thing"])
    assert "destination.geolocation.city" in notes
    assert "'some_future_helper' is unknown" in notes
    assert "scan_exchange_taxonomy" in notes


def test_a_column_holding_an_address_or_a_network_is_not_required():
    required = [["time.source", "timestamp", "add_UTC_to_timestamp"], ["source.ip", "ip", "validate_ip"]]
    optional = [["source.network", "ip", "validate_network"]]
    mapping = shadowserver.mappings_from_schema(
        {"blocklist": _entry(file_name="blocklist", required_fields=required, optional_fields=optional)}
    )["blocklist"]
    assert [(r.field, r.required) for r in _rules(mapping, "ip")] == [
        ("source.ip", False),
        ("source.network", False),
    ]
    assert "source.network" in mapping.dedup


def test_written_files_read_back_as_the_same_mappings(tmp_path):
    optional = [
        ["source.asn", "asn", "invalidate_zero"],
        ["product.vulnerabilities", "tag", "extract_cve_from_tag"],
        ["extra.", "tag"],
    ]
    translation = shadowserver.translate_schema(
        {"_meta": {"date_created": "2026-03-24T00:00:00Z"}, "scan_thing": _entry(optional_fields=optional)}
    )
    [path] = shadowserver.write_mapping_files(
        translation.mappings, tmp_path, schema_date=translation.schema_date, notes={"scan_thing": ["a note"]}
    )
    assert path == tmp_path / "scan_thing.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[:2] == [HEADER, "# Note: a note"]
    loaded = load_mapping(path)
    assert shadowserver.mapping_document(loaded) == shadowserver.mapping_document(
        translation.mappings["scan_thing"]
    )


@pytest.mark.parametrize(
    "document",
    [
        {"scan_thing": "not an object"},
        {"scan_thing": _entry(required_fields=[["time.source"]])},
        {"scan_thing": _entry(file_name="../../settings")},
        {"_meta": {}},
    ],
    ids=["entry", "fields", "name", "empty"],
)
def test_a_broken_schema_names_the_problem(document):
    with pytest.raises(shadowserver.ShadowserverSchemaError):
        shadowserver.mappings_from_schema(document)


# --- the published schema and the real-format samples -------------------------------------------------------


def test_every_report_type_of_the_schema_becomes_a_mapping(schema_document, translated):
    reports = {spec["file_name"] for name, spec in schema_document.items() if not name.startswith("_")}
    assert set(translated) == reports
    assert len(translated) == len(schema_document) - 1
    for report, mapping in translated.items():
        assert mapping.detect_file_name == report
        assert mapping.required_columns, report
        assert "feed.name" in mapping.dedup
        assert mapping_from_dict(shadowserver.mapping_document(mapping), mapping.origin) == mapping


def test_every_sample_is_detected_read_and_mapped(translated):
    samples = sorted(SAMPLES.glob("*.csv"))
    assert len(samples) >= 99
    problems: dict[str, Counter[str]] = {}
    failures: list[str] = []
    total = accepted = 0
    for path in samples:
        layout = reader.sniff_csv(path)
        mapping = detect_mapping(path.name, layout.columns, candidates=translated)
        if path.stem in RETIRED:
            assert mapping is None, (
                f"{path.stem}: the schema has no such report, yet {mapping.report} was guessed"
            )
            continue
        if mapping is None or mapping.report != path.stem:
            failures.append(f"{path.stem}: detected as {mapping.report if mapping else None}")
            continue
        bad_lines: list[reader.BadLine] = []
        batches = list(reader.read_csv_batches(path, layout, on_bad_line=bad_lines.append))
        text = (
            pa.Table.from_batches(batches)
            if batches
            else pa.table({c: pa.array([], pa.string()) for c in layout.columns})
        )
        try:
            mapped = apply_mapping(mapping, text)
        except Exception as error:
            failures.append(f"{path.stem}: {type(error).__name__}: {error}")
            continue
        reasons = Counter(mapped.reasons) + Counter(f"unreadable line: {line.reason}" for line in bad_lines)
        if reasons:
            problems[path.stem] = reasons
        total += text.num_rows + len(bad_lines)
        accepted += text.num_rows - int(mapped.malformed.sum())
    assert not failures, "\n".join(failures)
    assert {p.stem for p in samples} >= RETIRED
    listing = "\n".join(f"{report}: {dict(reasons)}" for report, reasons in sorted(problems.items()))
    assert accepted >= 0.95 * total, f"{accepted} of {total} rows accepted; refused:\n{listing}"


def test_header_detection_finds_a_current_report_without_its_file_name(translated):
    # A current file carries every column its schema entry names; a renamed upload is still recognised.
    mapping = translated["scan_smb"]
    assert detect_mapping(
        "upload.csv", [*mapping.detect_columns, "a_new_column"], candidates=translated
    ).report in {"scan_smb", "scan6_smb"}


# --- the mappings certnet ships ---------------------------------------------------------------------------


def _shipped() -> dict[str, Mapping]:
    return {path.stem: load_mapping(path) for path in sorted(SHIPPED.glob("*.yaml"))}


def test_shipped_mappings_load_and_are_detected_by_file_name():
    shipped = _shipped()
    assert set(shipped) >= SHIPPED_REPORTS
    candidates = {mapping.key: mapping for mapping in shipped.values()}
    for stem, mapping in shipped.items():
        assert mapping.report == stem
        assert (SHIPPED / f"{stem}.yaml").read_text(encoding="utf-8").splitlines()[0] == HEADER
        detected = detect_mapping(f"2026-11-23-{stem}-pakistan-geo.csv", [], candidates=candidates)
        assert detected is not None
        assert detected.report == stem


def _read_padded(path: Path) -> pa.Table:
    # The scan_rdp sample's rows lack the header's last column (jarm), which read_csv_batches refuses as
    # a short line; read it the way IntelMQ does, a missing trailing cell being an empty one.
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    cells = [[*row, *[""] * (len(header) - len(row))] for row in rows[1:]]
    return pa.table(
        {name: pa.array([row[i] or None for row in cells], pa.string()) for i, name in enumerate(header)}
    )


def test_the_shipped_scan_rdp_mapping_gives_the_expected_event():
    sample = SAMPLES / "scan_rdp.csv"
    if not sample.exists():
        pytest.skip(f"the scan_rdp sample is not at {sample} (shared data absent)")
    mapping = load_mapping(SHIPPED / "scan_rdp.yaml")
    mapped = apply_mapping(mapping, _read_padded(sample))
    assert not mapped.malformed.any()
    event = mapped.table.slice(0, 1).to_pylist()[0]
    assert event["time.source"] == dt.datetime(2019, 9, 4, 15, 45, 51, tzinfo=UTC)
    assert event["source.ip"] == "198.123.245.178"
    assert event["source.port"] == 5678
    assert event["source.asn"] == 5678
    assert event["source.reverse_dns"] is None
    assert (event["source.geolocation.cc"], event["source.geolocation.city"]) == ("AA", "LOCATION")
    assert event["classification.taxonomy"] == "vulnerable"
    assert event["classification.type"] == "vulnerable-system"
    assert event["classification.identifier"] == "open-rdp"
    assert (event["protocol.application"], event["protocol.transport"]) == ("rdp", "tcp")
    assert event["product.vulnerabilities"] is None
    assert event["extra.tag"] == "rdp"
    assert event["extra.rdp_protocol"] == "RDP"
    assert event["extra.subject_common_name"] == "KABESRV.KABE.local"
    assert event["extra.naics"] == "517311"
    assert event["extra.cve20190708_vulnerable"] == "N"  # a column the schema no longer names is kept


def test_malformed_rows_say_which_column(tmp_path):
    path = tmp_path / "2026-11-23-scan_rdp-testcert-geo.csv"
    path.write_text(
        '"timestamp","ip","port","hostname","tag","asn","geo","rdp_protocol"\n'
        '"2026-11-22 03:04:05","192.0.2.10",3389,"rdp.example.net","rdp",64500,"PK","RDP"\n'
        '"2026-11-22 03:04:06","192.0.2.300",3389,,"rdp",64500,"PK","RDP"\n'
        ',"192.0.2.12",3389,,"rdp",64500,"PK","RDP"\n'
        '"2026-11-22T03:04:08Z","2001:DB8::1",3389,,"rdp;cve-2019-0708",0,"pk","RDP"\n'
        '"2026-11-22 03:04:09","192.0.2.14",70000,,"rdp",64500,"PK","RDP"\n',
        encoding="utf-8",
    )
    shipped = {m.key: m for m in _shipped().values()}
    layout = reader.sniff_csv(path)
    mapping = detect_mapping(path.name, layout.columns, candidates=shipped)
    assert mapping is not None
    assert mapping.report == "scan_rdp"
    bad_lines: list[reader.BadLine] = []
    text = pa.Table.from_batches(list(reader.read_csv_batches(path, layout, on_bad_line=bad_lines.append)))
    mapped = apply_mapping(mapping, text)
    assert not bad_lines
    assert mapped.malformed.tolist() == [False, True, True, False, False]
    assert mapped.reasons == [
        "column 'ip': '192.0.2.300' is not a valid ip",
        "column 'timestamp' is empty; time.source is required",
    ]
    rows = mapped.table.to_pylist()
    assert rows[0]["source.reverse_dns"] == "rdp.example.net"
    assert rows[3]["time.source"] == dt.datetime(2026, 11, 22, 3, 4, 8, tzinfo=UTC)
    assert (rows[3]["source.ip"], rows[3]["source.asn"], rows[3]["source.geolocation.cc"]) == (
        "2001:db8::1",
        None,
        "PK",
    )
    assert rows[3]["product.vulnerabilities"] == "cve-2019-0708"
    # An optional value its type refuses leaves the field empty and keeps the text.
    assert (rows[4]["source.port"], rows[4]["extra.port"]) == (None, "70000")
    assert mapped.coerced == 1
