"""Intel reports through the API: publishing to an audience shares the indicators with it (and only
with it), TLP rules on publishing, the report as STIX; imports and exports over the API."""

from __future__ import annotations

import json

import stix2

from certnet.core.models import AuditEntry
from certnet.intel.models import Indicator, IntelReport
from certnet.intel.signals import report_published
from certnet.registry.models import Organisation
from tests.test_intel_stix import INDICATOR, feed_bundle

SEEN = "2026-11-01T08:00:00+00:00"


def record(client, owner, *values, tlp="amber"):
    body = {
        "owner": owner,
        "indicators": [{"kind": "ipv4", "value": v, "first_seen": SEEN, "tlp": tlp} for v in values],
    }
    response = client.post("/indicators", body)
    assert response.status_code == 201, response.content
    return response.json()["created"]


def publish(client, **body):
    return client.post("/intel-reports", {"tlp": "amber", "title": "October campaign", **body})


def test_publishing_to_a_sector_shares_the_indicators_with_it_and_no_one_else(intel_world):
    _orgs, _, clients = intel_world
    Organisation.objects.filter(slug="karachi").update(sector="banking")
    ids = record(clients["lahore"], "lahore", "45.9.148.1", "45.9.148.2")
    assert clients["karachi"].get(f"/indicators/{ids[0]}").status_code == 404
    sent = []
    report_published.connect(lambda **kwargs: sent.append(kwargs), weak=False, dispatch_uid="t-sector")
    try:
        response = publish(
            clients["lahore"], owner="lahore", audience="sectors", sectors=["banking"], indicators=ids
        )
    finally:
        report_published.disconnect(dispatch_uid="t-sector")
    assert response.status_code == 201, response.content
    report = response.json()
    assert report["shared_with"] == ["karachi"]
    assert len(report["indicators"]) == 2
    assert clients["karachi"].get(f"/indicators/{ids[0]}").status_code == 200
    assert clients["karachi"].get(f"/intel-reports/{report['id']}").status_code == 200
    assert clients["multan"].get(f"/intel-reports/{report['id']}").status_code == 404
    assert clients["multan"].get(f"/indicators/{ids[0]}").status_code == 404
    assert AuditEntry.objects.filter(action="intel.report.publish").count() == 1
    # The TAXII server and anyone else listening get the report's STIX objects.
    types = {body["type"] for body in sent[0]["objects"]}
    assert {"report", "indicator", "identity", "marking-definition"} <= types
    bundle = clients["karachi"].get(f"/intel-reports/{report['id']}/stix").json()
    stix2.parse(json.dumps(bundle), allow_custom=False)
    reports = [body for body in bundle["objects"] if body["type"] == "report"]
    assert len(reports) == 1
    assert len(reports[0]["object_refs"]) == 2


def test_only_the_owner_lowers_an_indicator_by_publishing_it_to_the_community(intel_world):
    _orgs, _, clients = intel_world
    ids = record(clients["lahore"], "lahore", "45.9.148.3")
    # Punjab CERT may share its constituent's indicator, but not lower it to GREEN.
    refused = publish(
        clients["punjab"], owner="punjab-cert", audience="community", tlp="green", indicators=ids
    )
    assert refused.status_code == 403 or refused.status_code == 422, refused.content
    assert Indicator.objects.get(pk=ids[0]).tlp == "amber"
    assert IntelReport.objects.count() == 0
    accepted = publish(clients["lahore"], owner="lahore", audience="community", tlp="green", indicators=ids)
    assert accepted.status_code == 201, accepted.content
    assert Indicator.objects.get(pk=ids[0]).tlp == "green"
    assert clients["karachi"].get(f"/indicators/{ids[0]}").status_code == 200


def test_a_report_that_cannot_be_published_says_every_reason_and_changes_nothing(intel_world):
    _, _, clients = intel_world
    ids = record(clients["lahore"], "lahore", "45.9.148.4")
    response = publish(
        clients["lahore"],
        owner="lahore",
        title=" ",
        audience="sectors",
        sectors=["no-such-sector"],
        tlp="green",
        indicators=[*ids, 999999],
        tags=["rsit:nonsense/thing"],
    )
    assert response.status_code == 422, response.content
    where = {error["loc"] for error in response.json()["errors"]}
    assert {"title", "tlp", "sectors", "indicators[1]", "tags[0]"} <= where
    assert IntelReport.objects.count() == 0
    forbidden = publish(clients["karachi"], owner="lahore", audience="owner", indicators=ids)
    assert forbidden.status_code == 403


def test_a_bundle_is_imported_over_the_api_and_the_import_is_kept(intel_world):
    _, _, clients = intel_world
    bundle = feed_bundle()
    bundle["objects"].append({"type": "x-thing", "id": "x-thing--" + INDICATOR.split("--")[1]})
    refused = clients["lahore"].post("/intel/imports?owner=lahore", bundle)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == "objects[11]"
    assert Indicator.objects.count() == 0
    response = clients["lahore"].post("/intel/imports?owner=lahore&partial=true", bundle)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["counts"]["indicators_created"] == 6
    assert body["refused"][0]["index"] == 11
    record_ = clients["lahore"].get(f"/intel/imports/{body['import_id']}").json()
    assert record_["counts"] == body["counts"]
    assert record_["refused"][0]["id"].startswith("x-thing--")
    assert clients["karachi"].get(f"/intel/imports/{body['import_id']}").status_code == 404
    exported = clients["punjab"].get("/indicators/export", owner="lahore").json()
    stix2.parse(json.dumps(exported), allow_custom=False)
    assert INDICATOR in {obj["id"] for obj in exported["objects"]}
    csv_text = b"".join(clients["punjab"].get("/indicators/export", format="csv").streaming_content)
    assert b"45.9.148.10" in csv_text
    assert clients["lahore"].get("/indicators/export", format="xml").status_code == 422


def test_an_empty_or_broken_import_body_is_refused(intel_world):
    _, _, clients = intel_world
    empty = clients["lahore"].client.post(
        "/api/v1/intel/imports?owner=lahore",
        b"",
        content_type="application/json",
        headers=clients["lahore"].headers,
    )
    assert empty.status_code == 422
    assert "empty" in empty.content.decode()
    broken = clients["lahore"].client.post(
        "/api/v1/intel/imports?owner=lahore",
        b'{"type": "bundle", ',
        content_type="application/json",
        headers=clients["lahore"].headers,
    )
    assert broken.status_code == 422
    assert "not valid JSON" in broken.content.decode()


def test_a_misp_event_is_imported_over_the_api_and_its_report_exported_as_misp(intel_world):
    from pathlib import Path

    from pymisp import MISPEvent

    _, _, clients = intel_world
    event = json.loads((Path(__file__).parent / "fixtures" / "misp" / "event.json").read_text())
    response = clients["lahore"].post("/intel/imports/misp?owner=lahore&partial=true", event)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["report_id"] is not None
    assert body["unsupported"]
    exported = clients["lahore"].get(f"/intel-reports/{body['report_id']}/misp").json()
    loaded = MISPEvent()
    loaded.load(exported)
    assert loaded.attributes or loaded.objects
    assert clients["karachi"].get(f"/intel-reports/{body['report_id']}/misp").status_code == 404
    adhoc = clients["lahore"].get("/indicators/export", format="misp").json()
    assert adhoc["Event"]["Attribute"]


def test_the_set_rule_for_lowering_tlp_agrees_with_the_record_rule(intel_world):
    from certnet.core.visibility import LOWER_TLP, may_lower_tlp

    _, people, clients = intel_world
    ids = record(clients["lahore"], "lahore", "45.9.148.5", "45.9.148.6", tlp="amber+strict")
    for name, user in people.items():
        in_sql = set(
            Indicator.objects.restrict(user, LOWER_TLP).filter(pk__in=ids).values_list("pk", flat=True)
        )
        one_by_one = {pk for pk in ids if may_lower_tlp(user, Indicator.objects.get(pk=pk))}
        assert in_sql == one_by_one, name
    assert set(Indicator.objects.restrict(people["lahore"], LOWER_TLP).values_list("pk", flat=True)) == set(
        ids
    )
    assert not Indicator.objects.restrict(people["punjab-handler"], LOWER_TLP).exists()
