"""STIX 2.1: exports that the stix2 library parses, imports with a report on every object, the round
trip STIX -> certnet -> STIX, and the bad input a bundle can carry."""

from __future__ import annotations

import copy
import json
import uuid

import pytest
import stix2

from certnet.core.errors import InvalidInput
from certnet.core.models import AuditEntry
from certnet.core.tlp import TLP
from certnet.intel.models import Indicator, IntelImport, Sighting, StixObject
from certnet.intel.selectors import visible_indicators
from certnet.intel.selectors.exports import stix_bundle
from certnet.intel.services.stix_import import import_bundle

AMBER = TLP.AMBER.stix_marking_id
GREEN = TLP.GREEN.stix_marking_id
IDS = uuid.UUID("0f5c2a4e-7d1b-4c3a-9e8f-2b6d4a1c3e5f")
SOURCE = "identity--" + str(uuid.uuid5(IDS, "1"))
INDICATOR = "indicator--" + str(uuid.uuid5(IDS, "2"))
MALWARE = "malware--" + str(uuid.uuid5(IDS, "3"))
STAMP = "2026-10-01T08:00:00.000Z"
LATER = "2026-10-02T09:30:00.123Z"


def ident(number: int, kind: str = "indicator") -> str:
    return f"{kind}--{uuid.uuid5(IDS, str(number))}"


def indicator(number: int, pattern: str, **extra):
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": ident(number),
        "created": STAMP,
        "modified": LATER,
        "pattern": pattern,
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": STAMP,
        **extra,
    }


def feed_bundle():
    """A small feed as another platform would send it: the source, indicators of several kinds, a CVE,
    malware the first indicator indicates, a sighting and a report naming them."""
    return {
        "type": "bundle",
        "id": "bundle--" + str(uuid.uuid4()),
        "objects": [
            {
                "type": "identity",
                "spec_version": "2.1",
                "id": SOURCE,
                "created": STAMP,
                "modified": STAMP,
                "name": "Partner feed",
                "identity_class": "organization",
            },
            indicator(
                2,
                "[ipv4-addr:value = '45.9.148.10']",
                name="C2 of the October campaign",
                description="Beacons every 60 s",
                valid_until="2027-01-01T00:00:00.000Z",
                confidence=80,
                labels=["october", 'rsit:malicious-code="c2-server"'],  # a set: exported sorted
                indicator_types=["malicious-activity"],
                created_by_ref=SOURCE,
                object_marking_refs=[AMBER],
            ),
            indicator(
                10, "[domain-name:value = 'bad.example.net']", object_marking_refs=[GREEN], confidence=50
            ),
            indicator(11, "[file:hashes.'SHA-256' = '" + "ab" * 32 + "']", confidence=50),
            indicator(12, "[url:value = 'http://bad.example.net/x']", confidence=50),
            indicator(13, "[autonomous-system:number = 64501]", confidence=50),
            {
                "type": "vulnerability",
                "spec_version": "2.1",
                "id": ident(14, "vulnerability"),
                "created": STAMP,
                "modified": STAMP,
                "name": "CVE-2026-12345",
                "confidence": 50,
                "external_references": [{"source_name": "cve", "external_id": "CVE-2026-12345"}],
            },
            {
                "type": "malware",
                "spec_version": "2.1",
                "id": MALWARE,
                "created": STAMP,
                "modified": STAMP,
                "name": "Octoloader",
                "is_family": True,
                "object_marking_refs": [AMBER],
            },
            {
                "type": "relationship",
                "spec_version": "2.1",
                "id": ident(4, "relationship"),
                "created": STAMP,
                "modified": STAMP,
                "relationship_type": "indicates",
                "source_ref": INDICATOR,
                "target_ref": MALWARE,
                "object_marking_refs": [AMBER],
            },
            {
                "type": "sighting",
                "spec_version": "2.1",
                "id": ident(5, "sighting"),
                "created": STAMP,
                "modified": STAMP,
                "sighting_of_ref": INDICATOR,
                "count": 7,
                "first_seen": STAMP,
                "last_seen": LATER,
            },
            {
                "type": "report",
                "spec_version": "2.1",
                "id": ident(6, "report"),
                "created": STAMP,
                "modified": STAMP,
                "name": "October campaign",
                "published": STAMP,
                "report_types": ["campaign"],
                "object_refs": [INDICATOR, MALWARE],
                "object_marking_refs": [AMBER],
            },
        ],
    }


def test_a_bundle_is_imported_with_a_report_on_every_object(intel_world):
    orgs, people, _ = intel_world
    outcome = import_bundle(actor=people["lahore"], owner="lahore", source=feed_bundle())
    assert outcome.refused == []
    assert outcome.counts["indicators_created"] == 6
    assert outcome.counts["kept"] == 5  # identity, malware, relationship, sighting, report
    assert outcome.counts["sightings"] == 1
    outcomes = {t.stix_id: t.outcome for t in outcome.taken}
    assert outcomes[INDICATOR].startswith("indicator ")
    assert outcomes[MALWARE] == "kept as STIX"
    c2 = Indicator.objects.get(owner=orgs["lahore"], value="45.9.148.10")
    assert str(c2.stix_id) == INDICATOR.split("--")[1]
    assert c2.tlp == "amber"
    assert c2.confidence == 80
    assert c2.name == "C2 of the October campaign"
    assert set(c2.tags.values_list("name", flat=True)) == {'rsit:malicious-code="c2-server"', "october"}
    assert Indicator.objects.get(owner=orgs["lahore"], kind="domain").tlp == "green"
    assert Indicator.objects.get(owner=orgs["lahore"], kind="cve").value == "CVE-2026-12345"
    assert Indicator.objects.get(owner=orgs["lahore"], kind="asn").value == "AS64501"
    assert Sighting.objects.get(indicator=c2).count == 7
    assert set(StixObject.objects.filter(stix_id=MALWARE).values_list("indicators", flat=True)) == {c2.pk}
    record = IntelImport.objects.get(pk=outcome.import_id)
    assert record.counts["objects"] == 11
    assert record.refused == []
    assert AuditEntry.objects.filter(action="intel.import").count() == 1


def test_the_export_parses_under_stix2_and_the_round_trip_keeps_every_supported_field(intel_world):
    _orgs, people, _ = intel_world
    original = feed_bundle()
    import_bundle(actor=people["lahore"], owner="lahore", source=copy.deepcopy(original))
    exported = stix_bundle(people["lahore"], visible_indicators(people["lahore"], owner="lahore"))
    parsed = stix2.parse(json.dumps(exported), allow_custom=False)
    assert len(parsed.objects) == len(exported["objects"])
    by_id = {body["id"]: body for body in exported["objects"]}
    for body in original["objects"]:
        assert body["id"] in by_id, body["id"]
        again = by_id[body["id"]]
        if body["type"] == "sighting":  # certnet counts sightings per organisation: its own object
            continue
        for key, value in body.items():
            assert again.get(key) == value, (body["id"], key, again.get(key), value)
    marking_ids = {b["id"] for b in exported["objects"] if b["type"] == "marking-definition"}
    assert {AMBER, GREEN} <= marking_ids
    sightings = [b for b in exported["objects"] if b["type"] == "sighting"]
    assert sightings[0]["sighting_of_ref"] == INDICATOR
    assert sightings[0]["count"] == 7


def test_a_malformed_bundle_lists_every_violation_and_imports_nothing(intel_world):
    _, people, _ = intel_world
    bad = feed_bundle()
    bad["objects"] += [
        indicator(20, "[ipv4-addr:value = '45.9.149.1'"),  # unbalanced bracket
        indicator(21, "[ipv4-addr:value = '999.1.1.1']"),  # not an address
        {"type": "x-unknown-thing", "id": ident(22, "x-unknown-thing"), "spec_version": "2.1"},
        copy.deepcopy(bad["objects"][1]),  # the same id and version again
        {**indicator(23, "[domain-name:value = 'ok.example.org']"), "confidence": 300},
        {"type": "malware", "spec_version": "2.1", "id": ident(24, "malware")},  # no created, name ...
        "not an object",
    ]
    with pytest.raises(InvalidInput) as raised:
        import_bundle(actor=people["lahore"], owner="lahore", source=bad)
    where = {error.loc for error in raised.value.errors}
    assert where == {f"objects[{n}]" for n in range(11, 18)}
    text = " ".join(error.msg for error in raised.value.errors)
    assert "pattern" in text
    assert "x-unknown-thing" in text
    assert "duplicate of objects[1]" in text
    assert "confidence 300" in text
    assert Indicator.objects.count() == 0
    assert StixObject.objects.count() == 0
    assert IntelImport.objects.count() == 0


def test_a_partial_import_takes_the_valid_objects_and_reports_the_rest(intel_world):
    _, people, _ = intel_world
    bad = feed_bundle()
    bad["objects"].append(indicator(21, "[ipv4-addr:value = '999.1.1.1']"))
    outcome = import_bundle(actor=people["lahore"], owner="lahore", source=bad, partial=True)
    assert [r.index for r in outcome.refused] == [11]
    assert "999.1.1.1" in " ".join(outcome.refused[0].reasons)
    assert outcome.counts["indicators_created"] == 6
    assert IntelImport.objects.get().refused[0]["index"] == 11


def test_complex_patterns_are_kept_as_stix_and_not_matched(intel_world):
    _, people, _ = intel_world
    body = {
        "type": "bundle",
        "id": "bundle--" + str(uuid.uuid4()),
        "objects": [
            indicator(30, "[ipv4-addr:value = '45.9.150.1'] OR [ipv4-addr:value = '45.9.150.2']"),
            indicator(31, "[process:name = 'evil.exe']"),
            {**indicator(32, "rule x { condition: true }"), "pattern_type": "yara"},
        ],
    }
    outcome = import_bundle(actor=people["lahore"], owner="lahore", source=json.dumps(body).encode())
    assert outcome.counts["kept"] == 3
    assert outcome.counts["indicators_created"] == 0
    assert {t.outcome for t in outcome.taken} == {
        "kept as STIX (its pattern is more than one value)",
        "kept as STIX (a yara pattern is kept, not matched)",
    }


def test_exports_hold_only_what_the_reader_may_see(intel_world):
    _, people, _ = intel_world
    import_bundle(actor=people["lahore"], owner="lahore", source=feed_bundle())
    exported = stix_bundle(people["karachi"], visible_indicators(people["karachi"]))
    ids = {body["id"] for body in exported["objects"]}
    assert INDICATOR not in ids
    assert MALWARE not in ids
    assert ident(10) in ids  # the GREEN domain reaches the whole community
    above = stix_bundle(people["punjab"], visible_indicators(people["punjab"]))
    assert INDICATOR in {body["id"] for body in above["objects"]}


def test_an_import_is_made_only_by_an_analyst_of_the_owner(intel_world):
    _, people, _ = intel_world
    from certnet.core.errors import Forbidden

    with pytest.raises(Forbidden):
        import_bundle(actor=people["karachi"], owner="lahore", source=feed_bundle())
    with pytest.raises(Forbidden):
        import_bundle(actor=people["lahore-viewer"], owner="lahore", source=feed_bundle())


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"type": "report", "id": "bundle--x", "objects": []}', "bundle.type"),
        (b"[1, 2]", "JSON object"),
    ],
)
def test_a_file_that_is_not_a_bundle_is_refused_clearly(intel_world, source, expected):
    _, people, _ = intel_world
    with pytest.raises(InvalidInput) as raised:
        import_bundle(actor=people["lahore"], owner="lahore", source=source)
    assert expected in str(raised.value.detail) + " ".join(e.loc for e in raised.value.errors)
