"""MISP events in and out: what is taken, refused (named by place) or kept as unsupported with a note;
all or nothing unless partial; TLP from tags; feed directories; re-import without duplicates; exports
PyMISP reads, keeping every field that came in; and visibility on export."""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from pymisp import MISPEvent

from certnet.core import audit
from certnet.core.errors import InvalidInput, NotFound
from certnet.core.models import AuditEntry
from certnet.intel.misp import parse_event
from certnet.intel.models import Indicator, IntelImport, IntelReport
from certnet.intel.selectors.misp_export import misp_event_for_indicators, misp_event_for_report
from certnet.intel.services.indicators import IndicatorInput, record_indicators
from certnet.intel.services.misp_import import import_misp_event, import_misp_feed
from certnet.intel.services.reports import ReportInput, publish_intel_report

FIXTURES = Path(__file__).parent / "fixtures" / "misp"
EVENT_UUID = "66cd7ffc-08a5-4913-8cd2-668427acffd1"
GREEN_EVENT = "e1704731-dbc1-4188-952f-bca945415df1"
AMBER_EVENT = "a53f2cb6-faef-49b6-902a-d54438774c6a"


def load_event():
    return json.loads((FIXTURES / "event.json").read_text(encoding="utf-8"))


def state():
    return (
        Indicator.objects.count(),
        IntelReport.objects.count(),
        IntelImport.objects.count(),
        AuditEntry.objects.count(),
    )


def tag_names(tags):
    return {tag["name"] for tag in tags}


# --- reading ---------------------------------------------------------------------------------------


def test_every_malformed_part_is_named_by_its_place():
    data = load_event()
    attributes = data["Event"]["Attribute"]
    attributes[0]["uuid"] = "not-a-uuid"
    del attributes[1]["type"]
    attributes[2]["value"] = ""
    attributes[3] = "ip-dst 45.9.148.3"
    attributes[4]["value"] = "45.9.148.4|https"
    attributes[5]["Tag"] = [{"name": 'rsit:nonsense="thing"'}]
    data["Event"]["Object"][0]["Attribute"][1]["value"] = "abc"
    data["Event"]["Object"].append({"name": "file", "uuid": "123"})
    event = parse_event(data)
    reasons = {refused.where: refused.reasons for refused in event.refused}
    assert reasons == {
        "Event.Attribute[0]": ["Event.Attribute[0].uuid: 'not-a-uuid' is not a UUID"],
        "Event.Attribute[1]": ["Event.Attribute[1].type: missing: every attribute has a type"],
        "Event.Attribute[2]": ["Event.Attribute[2].value: missing: every attribute has a value"],
        "Event.Attribute[3]": ["Event.Attribute[3]: not an object"],
        "Event.Attribute[4]": ["Event.Attribute[4].value: 'https' after '|' is not a port number"],
        "Event.Attribute[5]": [
            "Event.Attribute[5].Tag[0].name: 'rsit:nonsense=\"thing\"' is not an RSIT class "
            "(classification_taxonomy: 'nonsense' is not an RSIT taxonomy)"
        ],
        "Event.Object[0].Attribute[1]": [
            "Event.Object[0].Attribute[1].value: 'abc' is not an MD5 hash: 32 hexadecimal digits "
            "expected, got 3 characters"
        ],
        "Event.Object[1]": ["Event.Object[1].uuid: '123' is not a UUID"],
    }
    assert [a.where for a in event.attributes] == [
        "Event.Attribute[6]",
        "Event.Attribute[10]",
        "Event.Object[0].Attribute[2]",
    ]


def test_a_malformed_event_is_refused_whole_with_every_problem():
    with pytest.raises(InvalidInput) as raised:
        parse_event({"Event": {"uuid": "x", "date": "28/10/2026", "Tag": "tlp:amber", "Attribute": {}}})
    assert [(e.loc, e.msg) for e in raised.value.errors] == [
        ("Event.uuid", "'x' is not a UUID"),
        ("Event.info", "missing: an event needs its info (the title)"),
        ("Event.date", "'28/10/2026' is not a date in the form YYYY-MM-DD"),
        ("Event.Tag", "must be a list of tags"),
        ("Event.Attribute", "must be a list"),
    ]
    with pytest.raises(InvalidInput, match="holds 2 events"):
        parse_event({"response": [load_event(), load_event()]})
    with pytest.raises(InvalidInput, match="tlp:purple"):
        parse_event({"Event": {**load_event()["Event"], "Tag": [{"name": "tlp:purple"}]}})


def test_the_three_shapes_of_an_event_read_alike():
    wrapped = parse_event(load_event())
    bare = parse_event(load_event()["Event"])
    response = parse_event({"response": [load_event()]})
    for event in (bare, response):
        assert event.fields() == wrapped.fields()
        assert [(a.kind, a.observable) for a in event.attributes] == [
            (a.kind, a.observable) for a in wrapped.attributes
        ]
    kinds = {a.type: (a.kind, a.observable) for a in wrapped.attributes}
    assert kinds["ip-dst|port"] == ("ipv4", "45.9.148.4")
    assert kinds["AS"] == ("asn", "AS64511")
    assert kinds["vulnerability"] == ("cve", "CVE-2023-23397")
    assert kinds["sha1"] == ("sha1", "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12")
    assert wrapped.tags == [
        'misp-galaxy:threat-actor="Sidewinder"',
        'rsit:fraud="phishing"',
        "type:OSINT",
    ]
    assert wrapped.tlp == "amber"


# --- importing -------------------------------------------------------------------------------------


def test_an_event_becomes_indicators_and_an_unshared_report_and_nothing_is_dropped(intel_world):
    orgs, people, _ = intel_world
    outcome = import_misp_event(actor=people["lahore"], owner="lahore", data=load_event())
    rows = {i.value: i for i in Indicator.objects.filter(owner=orgs["lahore"])}
    assert set(rows) == {
        "45.9.148.3",
        "mail-pitb.example",
        "https://mail-pitb.example/owa/login.php",
        "hr-notices@mail-pitb.example",
        "45.9.148.4",
        "CVE-2023-23397",
        "AS64511",
        "45.9.148.9",
        "9e107d9d372bb6826bd81d3542a419d6",
        "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
    }
    c2 = rows["45.9.148.3"]
    assert str(c2.stix_id) == "8d221819-e9d4-42c4-919a-5408f87132db"
    assert c2.description == "C2 reached by the dropper"
    assert c2.first_seen == dt.datetime(2026, 10, 27, 22, 15, tzinfo=dt.UTC)
    assert c2.last_seen == dt.datetime(2026, 10, 28, 6, 40, tzinfo=dt.UTC)
    assert sorted(c2.tags.values_list("name", flat=True)) == ['rsit:malicious-code="c2-server"']
    kept = c2.extras["misp"]["events"][EVENT_UUID]
    assert kept["category"] == "Network activity"
    assert kept["to_ids"] is True
    md5 = rows["9e107d9d372bb6826bd81d3542a419d6"].extras["misp"]["events"][EVENT_UUID]
    assert md5["object"]["name"] == "file"
    assert md5["object"]["uuid"] == "3a46beaa-01ae-46e8-9171-4b9d86b17958"
    assert md5["object_relation"] == "md5"
    # An attribute without first_seen/last_seen is seen at MISP's timestamp for it.
    assert rows["mail-pitb.example"].first_seen == dt.datetime(2026, 10, 28, 9, 0, tzinfo=dt.UTC)

    report = IntelReport.objects.get(pk=outcome.report_id)
    assert str(report.stix_id) == EVENT_UUID
    assert report.title == "Spear-phishing of provincial finance staff with a fake salary revision notice"
    assert (report.tlp, report.audience) == ("amber", "owner")
    assert report.published_at == dt.datetime(2026, 10, 29, 12, 0, tzinfo=dt.UTC)
    assert report.extras["misp"]["threat_level_id"] == "2"
    assert report.extras["misp"]["Orgc"]["name"] == "PK-Partner-CSIRT"
    assert sorted(report.tags.values_list("name", flat=True)) == [
        'misp-galaxy:threat-actor="Sidewinder"',
        'rsit:fraud="phishing"',
        "type:OSINT",
    ]
    # The TLP:RED attribute is recorded, but publishing would lower it: it stays out of the report.
    assert rows["45.9.148.9"].tlp == "red"
    assert set(report.indicators.values_list("value", flat=True)) == set(rows) - {"45.9.148.9"}

    record = IntelImport.objects.get(pk=outcome.import_id)
    assert record.format == "misp"
    assert record.refused == []
    notes = {item["where"]: (item["type"], item["note"]) for item in record.unsupported}
    assert notes["Event.Attribute[7]"] == ("text", "free text, not an observable")
    assert notes["Event.Attribute[8]"][0] == "regkey"
    assert notes["Event.Attribute[9]"] == (
        "x-beacon-profile",
        "MISP type 'x-beacon-profile' has no certnet kind",
    )
    assert notes["Event.Object[0].Attribute[0]"][0] == "filename"
    assert "left out of the report" in notes["Event.Attribute[10]"][1]
    assert record.counts["attributes"] == 14
    assert record.counts["indicators_created"] == 10
    assert record.counts["reports_created"] == 1
    entry = AuditEntry.objects.filter(action="intel.import").get()
    assert entry.data["event_uuids"] == [EVENT_UUID]
    assert audit.verify().ok


def test_one_bad_attribute_fails_the_event_unless_partial(intel_world):
    _, people, _ = intel_world
    data = load_event()
    data["Event"]["Attribute"][1]["value"] = "not a domain!"
    data["Event"]["Object"][0]["Attribute"][2]["first_seen"] = "2027-01-01T00:00:00+00:00"
    before = state()
    with pytest.raises(InvalidInput) as raised:
        import_misp_event(actor=people["lahore"], owner="lahore", data=data)
    assert "2 of 14 attribute(s) refused, nothing imported" in raised.value.detail
    assert [e.loc for e in raised.value.errors] == [
        "Event.Attribute[1].value",
        "Event.Object[0].Attribute[2].last_seen",
    ]
    assert state() == before

    outcome = import_misp_event(actor=people["lahore"], owner="lahore", data=data, partial=True)
    assert [r.where for r in outcome.refused] == ["Event.Attribute[1]", "Event.Object[0].Attribute[2]"]
    record = IntelImport.objects.get(pk=outcome.import_id)
    assert record.partial is True
    assert [r["where"] for r in record.refused] == ["Event.Attribute[1]", "Event.Object[0].Attribute[2]"]
    assert record.refused[0]["id"] == "f569d50d-8904-421c-91fc-11207aec6989"
    assert not Indicator.objects.filter(value__startswith="2fd4e1").exists()
    assert Indicator.objects.filter(value="45.9.148.3").exists()


def test_tlp_comes_from_the_attribute_then_the_event_then_amber(intel_world):
    orgs, people, _ = intel_world
    import_misp_event(actor=people["lahore"], owner="lahore", data=load_event())
    tlps = dict(Indicator.objects.filter(owner=orgs["lahore"]).values_list("value", "tlp"))
    assert tlps["hr-notices@mail-pitb.example"] == "clear"  # tlp:white, TLP 1.0's name
    assert tlps["45.9.148.9"] == "red"
    assert tlps["45.9.148.3"] == "amber"  # the event's

    untagged = load_event()
    untagged["Event"]["Tag"] = [{"name": "type:OSINT"}, {"name": "tlp:ex:chr"}]
    untagged["Event"]["uuid"] = "5e3789b5-388d-4da6-a3fb-c69594ecae28"
    outcome = import_misp_event(actor=people["multan"], owner="multan", data=untagged)
    assert set(
        Indicator.objects.filter(owner=orgs["multan"], kind="domain").values_list("tlp", flat=True)
    ) == {"amber"}
    report = IntelReport.objects.get(pk=outcome.report_id)
    assert report.tlp == "amber"
    assert "tlp:ex:chr" in report.tags.values_list("name", flat=True)

    strict = load_event()
    strict["Event"]["Tag"] = [{"name": "TLP:AMBER+STRICT"}, {"name": "tlp:amber"}]
    strict["Event"]["uuid"] = "2ee897e9-8171-4c3e-b4ee-e28863e71520"
    report = IntelReport.objects.get(
        pk=import_misp_event(actor=people["karachi"], owner="karachi", data=strict).report_id
    )
    assert (report.tlp, report.audience) == ("amber+strict", "owner")  # the stricter of two marks


def test_a_green_event_goes_to_the_community_and_a_red_one_is_no_report(intel_world):
    orgs, people, _ = intel_world
    green = load_event()
    green["Event"]["Tag"] = [{"name": "tlp:green"}]
    outcome = import_misp_event(actor=people["lahore"], owner="lahore", data=green)
    report = IntelReport.objects.get(pk=outcome.report_id)
    assert (report.tlp, report.audience) == ("green", "community")
    # Nothing stricter than GREEN is lowered to reach the community.
    assert not report.indicators.exclude(tlp__in=["green", "clear"]).exists()

    red = load_event()
    red["Event"]["Tag"] = [{"name": "tlp:red"}]
    red["Event"]["uuid"] = "9c2f83c4-f2a4-475f-9362-23e66b106d86"
    outcome = import_misp_event(actor=people["karachi"], owner="karachi", data=red)
    assert outcome.report_id is None
    assert outcome.report == "not a report: the event is TLP:RED"
    assert set(Indicator.objects.filter(owner=orgs["karachi"]).values_list("tlp", flat=True)) == {
        "red",
        "clear",
    }
    record = IntelImport.objects.get(pk=outcome.import_id)
    assert any(item["where"] == "Event" for item in record.unsupported)


def test_importing_the_same_event_again_updates_its_report(intel_world):
    orgs, people, _ = intel_world
    first = import_misp_event(actor=people["lahore"], owner="lahore", data=load_event())
    counted = Indicator.objects.count()
    again = load_event()
    again["Event"]["info"] = "Spear-phishing of finance staff (updated)"
    again["Event"]["Attribute"] = again["Event"]["Attribute"][:2]
    again["Event"]["Object"] = []
    second = import_misp_event(actor=people["lahore"], owner="lahore", data=again)
    assert second.report_id == first.report_id
    assert second.report == "updated"
    assert Indicator.objects.count() == counted
    assert IntelReport.objects.count() == 1
    report = IntelReport.objects.get(pk=first.report_id)
    assert report.title == "Spear-phishing of finance staff (updated)"
    assert set(report.indicators.values_list("value", flat=True)) == {"45.9.148.3", "mail-pitb.example"}
    assert AuditEntry.objects.filter(action="intel.report.update").count() == 1

    # Another organisation importing the same event gets its own report; the event uuid is kept.
    other = import_misp_event(actor=people["multan"], owner="multan", data=load_event())
    theirs = IntelReport.objects.get(pk=other.report_id)
    assert theirs.owner == orgs["multan"]
    assert str(theirs.stix_id) != EVENT_UUID
    assert misp_event_for_report(people["multan"], theirs.pk)["Event"]["uuid"] == EVENT_UUID


def test_the_same_value_in_two_events_keeps_both_events_fields(intel_world):
    orgs, people, _ = intel_world
    import_misp_event(actor=people["lahore"], owner="lahore", data=load_event())
    second = load_event()
    second["Event"]["uuid"] = "35aea797-6c04-4203-ab86-fdb3a8ccbe96"
    second["Event"]["Attribute"] = [
        {**second["Event"]["Attribute"][0], "uuid": "f3e51b6e-e329-48f3-8958-f57654bcaeee", "to_ids": False}
    ]
    second["Event"]["Object"] = []
    import_misp_event(actor=people["lahore"], owner="lahore", data=second)
    c2 = Indicator.objects.get(owner=orgs["lahore"], value="45.9.148.3")
    events = c2.extras["misp"]["events"]
    assert events[EVENT_UUID]["uuid"] == "8d221819-e9d4-42c4-919a-5408f87132db"
    assert events["35aea797-6c04-4203-ab86-fdb3a8ccbe96"]["to_ids"] is False


def test_a_duplicate_value_inside_one_event_is_listed(intel_world):
    _, people, _ = intel_world
    data = load_event()
    data["Event"]["Attribute"].append(
        {"uuid": "201a5dd8-2a01-4c3b-927f-94d867b32f40", "type": "ip-src", "value": "45.9.148.3"}
    )
    outcome = import_misp_event(actor=people["lahore"], owner="lahore", data=data)
    noted = {u.where: u.note for u in outcome.unsupported}
    assert noted["Event.Attribute[11]"].startswith("same value as Event.Attribute[0]")


def test_only_analysts_of_the_owner_import(intel_world):
    _, people, _ = intel_world
    before = state()
    for who, owner in (("lahore-viewer", "lahore"), ("karachi", "lahore")):
        with pytest.raises(Exception, match="analyst"):
            import_misp_event(actor=people[who], owner=owner, data=load_event())
    assert state() == before


# --- feeds -----------------------------------------------------------------------------------------


def test_a_feed_directory_is_imported_and_a_file_it_does_not_name_is_listed(intel_world, tmp_path):
    orgs, people, _ = intel_world
    feed = tmp_path / "partner-feed"
    shutil.copytree(FIXTURES / "feed", feed)
    stray = load_event()
    (feed / f"{EVENT_UUID}.json").write_text(json.dumps(stray), encoding="utf-8")
    outcome = import_misp_feed(actor=people["lahore"], owner="lahore", directory=feed)
    assert [e.event_uuid for e in outcome.events] == [GREEN_EVENT, AMBER_EVENT]
    assert outcome.not_in_manifest == [f"{EVENT_UUID}.json"]
    reports = {r.title: r for r in IntelReport.objects.filter(owner=orgs["lahore"])}
    assert (reports["Scanning of exposed VPN gateways"].audience) == "community"
    assert (reports["Loader hashes from a banking-sector intrusion"].audience) == "owner"
    assert set(Indicator.objects.filter(owner=orgs["lahore"]).values_list("kind", "value")) == {
        ("ipv4", "45.9.150.17"),
        ("cidr", "45.9.151.0/24"),
        ("sha256", "5c3f0b9e0d5a4c1e7b2f8a6d9e4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c"),
    }
    record = IntelImport.objects.get(pk=outcome.import_id)
    assert record.format == "misp-feed"
    assert record.counts["events"] == 2
    assert record.counts["reports_created"] == 2
    notes = {item["where"]: item["note"] for item in record.unsupported}
    assert (
        notes[f"{AMBER_EVENT}.json:Event.Attribute[1]"] == "certnet keeps MD5, SHA-1 and SHA-256 hashes only"
    )
    assert notes[f"{EVENT_UUID}.json"] == "not in manifest.json; not imported"


def test_a_manifest_naming_a_missing_file_imports_nothing(intel_world, tmp_path):
    _, people, _ = intel_world
    feed = tmp_path / "feed"
    shutil.copytree(FIXTURES / "feed", feed)
    (feed / f"{AMBER_EVENT}.json").unlink()
    before = state()
    with pytest.raises(InvalidInput) as raised:
        import_misp_feed(actor=people["lahore"], owner="lahore", directory=feed)
    assert [(e.loc, e.msg) for e in raised.value.errors] == [
        (f"manifest.json[{AMBER_EVENT}]", f"{AMBER_EVENT}.json is not in the feed directory")
    ]
    assert state() == before


def test_a_feed_event_problem_names_its_file_and_imports_nothing(intel_world, tmp_path):
    _, people, _ = intel_world
    feed = tmp_path / "feed"
    shutil.copytree(FIXTURES / "feed", feed)
    path = feed / f"{GREEN_EVENT}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["Event"]["Attribute"][0]["value"] = "045.9.150.17"
    path.write_text(json.dumps(data), encoding="utf-8")
    manifest = json.loads((feed / "manifest.json").read_text(encoding="utf-8"))
    manifest["../../etc/passwd"] = {}
    (feed / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    before = state()
    with pytest.raises(InvalidInput, match="not an event uuid"):
        import_misp_feed(actor=people["lahore"], owner="lahore", directory=feed)
    del manifest["../../etc/passwd"]
    (feed / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(InvalidInput) as raised:
        import_misp_feed(actor=people["lahore"], owner="lahore", directory=feed)
    assert [e.loc for e in raised.value.errors] == [f"{GREEN_EVENT}.json:Event.Attribute[0].value"]
    assert state() == before


# --- exporting -------------------------------------------------------------------------------------


def by_uuid(attributes):
    return {a["uuid"]: a for a in attributes}


def test_an_imported_event_comes_back_with_every_supported_field(intel_world):
    _, people, _ = intel_world
    original = load_event()["Event"]
    outcome = import_misp_event(actor=people["lahore"], owner="lahore", data=load_event())
    exported = misp_event_for_report(people["lahore"], outcome.report_id)["Event"]
    for name in (
        "uuid",
        "info",
        "date",
        "threat_level_id",
        "analysis",
        "distribution",
        "published",
        "timestamp",
    ):
        assert exported[name] == original[name], name
    assert exported["Orgc"] == {"name": "PK-Partner-CSIRT", "uuid": "5e3789b5-388d-4da6-a3fb-c69594ecae28"}
    assert tag_names(exported["Tag"]) == tag_names(original["Tag"])

    taken_types = {"ip-dst", "domain", "url", "email-src", "ip-dst|port", "vulnerability", "AS"}
    wanted = {a["uuid"]: a for a in original["Attribute"] if a["type"] in taken_types}
    got = by_uuid(exported["Attribute"])
    assert set(got) == set(wanted)  # the RED attribute stayed out of the report, so out of the event
    for key, attribute in wanted.items():
        back = got[key]
        for name in ("type", "category", "to_ids", "value", "comment", "timestamp", "distribution"):
            assert back[name] == attribute[name], (key, name)
        # TLP 1.0's WHITE comes back as TLP 2.0's CLEAR; an untagged attribute carries the event's.
        own_tags = {"tlp:clear" if t == "tlp:white" else t for t in tag_names(attribute.get("Tag", []))}
        assert own_tags <= tag_names(back["Tag"]), key
        assert tag_names(back["Tag"]) & {"tlp:amber", "tlp:clear"}, key
        for name in ("first_seen", "last_seen"):
            if name in attribute:
                assert dt.datetime.fromisoformat(back[name]) == dt.datetime.fromisoformat(attribute[name])
            else:
                assert name not in back
    assert tag_names(got["7cdb1295-10f9-4335-97de-2f0695d98f01"]["Tag"]) == {"tlp:clear"}

    [obj] = exported["Object"]
    source = original["Object"][0]
    for name in (
        "uuid",
        "name",
        "meta-category",
        "template_uuid",
        "template_version",
        "description",
        "comment",
    ):
        assert obj[name] == source[name], name
    inside = by_uuid(obj["Attribute"])
    assert set(inside) == {"cac2cdbf-2123-4e2c-82e4-e6c3700d64c8", "54871e47-f998-4808-800b-3fa6fb76b7a5"}
    sha1 = inside["54871e47-f998-4808-800b-3fa6fb76b7a5"]
    assert (sha1["object_relation"], sha1["type"], sha1["value"]) == (
        "sha1",
        "sha1",
        "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
    )
    assert 'rsit:malicious-code="malware-distribution"' in tag_names(sha1["Tag"])


def test_pymisp_reads_the_export(intel_world):
    _, people, _ = intel_world
    outcome = import_misp_event(actor=people["lahore"], owner="lahore", data=load_event())
    exported = misp_event_for_report(people["lahore"], outcome.report_id)
    event = MISPEvent()
    event.load(copy.deepcopy(exported))
    assert str(event.uuid) == EVENT_UUID
    assert event.info == exported["Event"]["info"]
    assert event.threat_level_id == 2
    assert {tag.name for tag in event.tags} >= {"tlp:amber", 'rsit:fraud="phishing"'}
    assert {(a.type, a.value) for a in event.attributes} >= {
        ("ip-dst", "45.9.148.3"),
        ("ip-dst|port", "45.9.148.4|8443"),
        ("AS", "AS64511"),
    }
    c2 = next(a for a in event.attributes if a.value == "45.9.148.3")
    assert c2.first_seen == dt.datetime(2026, 10, 27, 22, 15, tzinfo=dt.UTC)
    assert c2.to_ids is True
    [obj] = event.objects
    assert obj.name == "file"
    assert {a.object_relation: a.value for a in obj.attributes} == {
        "md5": "9e107d9d372bb6826bd81d3542a419d6",
        "sha1": "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
    }
    # And PyMISP's own JSON goes back in.
    again = parse_event(json.loads(event.to_json()))
    assert {a.observable for a in again.attributes} >= {"45.9.148.3", "9e107d9d372bb6826bd81d3542a419d6"}


def test_a_report_made_in_certnet_exports_with_misp_defaults(intel_world):
    orgs, people, _ = intel_world
    recorded = record_indicators(
        actor=people["lahore"],
        owner="lahore",
        items=[
            IndicatorInput(kind="cidr", value="45.9.152.0/24", description="scanner range"),
            IndicatorInput(kind="email", value="payroll@lure.example"),
            IndicatorInput(kind="cve", value="CVE-2024-3094"),
            IndicatorInput(kind="sha256", value="ab" * 32, tags=["rsit:malicious-code/c2-server"]),
        ],
    )
    ids = [i.pk for i in recorded.created]
    report = publish_intel_report(
        actor=people["lahore"],
        spec=ReportInput(
            owner="lahore", title="Weekly digest", tlp="amber", audience="owner", indicators=ids
        ),
    )
    exported = misp_event_for_report(people["lahore"], report.pk)["Event"]
    assert exported["uuid"] == str(report.stix_id)
    assert (exported["threat_level_id"], exported["analysis"], exported["distribution"]) == ("4", "2", "0")
    assert exported["Orgc"]["name"] == orgs["lahore"].name
    assert tag_names(exported["Tag"]) == {"tlp:amber"}
    got = {a["value"]: a for a in exported["Attribute"]}
    assert (got["45.9.152.0/24"]["type"], got["45.9.152.0/24"]["category"]) == ("ip-dst", "Network activity")
    assert got["45.9.152.0/24"]["comment"] == "scanner range"
    assert (got["payroll@lure.example"]["type"], got["payroll@lure.example"]["to_ids"]) == ("email", True)
    assert (got["CVE-2024-3094"]["type"], got["CVE-2024-3094"]["to_ids"]) == ("vulnerability", False)
    sha = got["ab" * 32]
    assert sha["uuid"] == str(Indicator.objects.get(value="ab" * 32).stix_id)
    assert tag_names(sha["Tag"]) == {"tlp:amber", 'rsit:malicious-code="c2-server"'}
    assert "first_seen" in sha
    event = MISPEvent()
    event.load(exported)
    assert len(event.attributes) == 4


def test_exports_hold_only_what_the_reader_may_see(intel_world):
    orgs, people, _ = intel_world
    outcome = import_misp_event(actor=people["lahore"], owner="lahore", data=load_event())
    with pytest.raises(NotFound):
        misp_event_for_report(people["karachi"], outcome.report_id)
    with pytest.raises(NotFound):
        misp_event_for_report(people["sindh"], outcome.report_id)
    assert misp_event_for_report(people["punjab"], outcome.report_id)["Event"]["uuid"] == EVENT_UUID

    everything = Indicator.objects.all()
    theirs = misp_event_for_indicators(people["karachi"], everything, info="What karachi sees")["Event"]
    # Only the TLP:CLEAR sender address reaches karachi; the AMBER and RED values do not.
    assert [a["value"] for a in theirs["Attribute"]] == ["hr-notices@mail-pitb.example"]
    assert tag_names(theirs["Tag"]) == {"tlp:clear"}
    ours = misp_event_for_indicators(people["lahore"], everything, info="All of lahore's")["Event"]
    assert len(ours["Attribute"]) == 10
    assert ours["Orgc"]["name"] == orgs["lahore"].name
    assert tag_names(ours["Tag"]) == {"tlp:red"}
    # Attributes from a MISP event get uuids of their own in a new event: MISP's are unique.
    assert "8d221819-e9d4-42c4-919a-5408f87132db" not in {a["uuid"] for a in ours["Attribute"]}
    event = MISPEvent()
    event.load(ours)
    assert len(event.attributes) == 10
