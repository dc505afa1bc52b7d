"""Changing a published intel report through the API: the publishing rules hold for the report as it
will stand, TLP is lowered only by the owner, what was shared stays shared, every change is audited,
and a shared report's new version reaches its audience's TAXII collection."""

from __future__ import annotations

from certnet.core.models import AuditEntry
from certnet.intel.models import Indicator, IntelReport
from certnet.taxii.models import TaxiiObject
from tests.test_intel_sharing import publish, record


def published(clients, **body):
    response = publish(clients["lahore"], owner="lahore", **body)
    assert response.status_code == 201, response.content
    return response.json()


def test_the_owner_rewords_adds_and_removes_indicators_and_every_change_is_audited(intel_world):
    _orgs, _, clients = intel_world
    first, second = record(clients["lahore"], "lahore", "45.9.150.1", "45.9.150.2")
    report = published(clients, audience="organisations", organisations=["karachi"], indicators=[first])
    assert clients["karachi"].get(f"/indicators/{second}").status_code == 404
    response = clients["lahore"].patch(
        f"/intel-reports/{report['id']}",
        {
            "title": "October campaign, second wave",
            "summary": "Now with the second server.",
            "tags": ["rsit:malicious-code/c2-server"],
            "add_indicators": [second],
            "remove_indicators": [first],
        },
    )
    assert response.status_code == 200, response.content
    changed = response.json()
    assert changed["title"] == "October campaign, second wave"
    assert changed["tags"] == ['rsit:malicious-code="c2-server"']
    assert [i["id"] for i in changed["indicators"]] == [second]
    # The new indicator reaches the audience; the removed one stays shared (it was already seen).
    assert clients["karachi"].get(f"/indicators/{second}").status_code == 200
    assert clients["karachi"].get(f"/indicators/{first}").status_code == 200
    entry = AuditEntry.objects.filter(action="intel.report.change").get()
    assert entry.data["added"] == [second]
    assert entry.data["removed"] == [first]
    assert entry.data["before"]["title"] == "October campaign"


def test_a_shared_reports_new_version_reaches_its_taxii_collection(intel_world):
    _orgs, _, clients = intel_world
    ids = record(clients["lahore"], "lahore", "45.9.150.3", "45.9.150.4")
    report = published(clients, audience="community", tlp="green", indicators=ids[:1])
    stix_id = report["stix_id"]
    assert TaxiiObject.objects.filter(stix_id=stix_id).count() == 1
    response = clients["lahore"].patch(f"/intel-reports/{report['id']}", {"add_indicators": ids[1:]})
    assert response.status_code == 200, response.content
    versions = list(TaxiiObject.objects.filter(stix_id=stix_id).order_by("added_at"))
    assert len(versions) == 2
    assert len(versions[-1].body["object_refs"]) == 2
    assert len(versions[0].body["object_refs"]) == 1


def test_tlp_is_raised_by_the_chain_but_lowered_only_by_the_owner(intel_world):
    _orgs, _, clients = intel_world
    ids = record(clients["lahore"], "lahore", "45.9.150.5")
    report = published(clients, audience="organisations", organisations=["multan"], indicators=ids)
    path = f"/intel-reports/{report['id']}"
    raised = clients["punjab-handler"].patch(path, {"tlp": "amber+strict"})
    assert raised.status_code == 200, raised.content
    assert raised.json()["tlp"] == "amber+strict"
    refused = clients["punjab-handler"].patch(path, {"tlp": "amber"})
    assert refused.status_code == 403, refused.content
    assert IntelReport.objects.get(pk=report["id"]).tlp == "amber+strict"
    lowered = clients["lahore"].patch(path, {"tlp": "amber"})
    assert lowered.status_code == 200, lowered.content
    assert clients["karachi"].patch(path, {"title": "mine now"}).status_code == 404
    assert clients["multan"].patch(path, {"title": "mine now"}).status_code == 403


def test_lowering_to_the_community_lowers_the_indicators_as_publishing_would(intel_world):
    _orgs, _, clients = intel_world
    ids = record(clients["lahore"], "lahore", "45.9.150.6")
    report = published(clients, audience="owner", indicators=ids)
    response = clients["lahore"].patch(
        f"/intel-reports/{report['id']}", {"tlp": "green", "audience": "community"}
    )
    assert response.status_code == 200, response.content
    assert Indicator.objects.get(pk=ids[0]).tlp == "green"
    assert clients["karachi"].get(f"/intel-reports/{report['id']}").status_code == 200
    assert AuditEntry.objects.filter(action="intel.report.change").get().data["lowered"] == ids


def test_a_change_that_cannot_be_made_names_every_problem_and_changes_nothing(intel_world):
    _orgs, _, clients = intel_world
    ids = record(clients["lahore"], "lahore", "45.9.150.7")
    others = record(clients["multan"], "multan", "45.9.150.8")
    report = published(clients, audience="owner", indicators=ids)
    response = clients["lahore"].patch(
        f"/intel-reports/{report['id']}",
        {
            "title": " ",
            "audience": "sectors",
            "sectors": ["no-such-sector"],
            "add_indicators": [999999, others[0]],
            "remove_indicators": [123456],
            "tags": ["rsit:nonsense/thing"],
        },
    )
    assert response.status_code == 422, response.content
    where = {error["loc"] for error in response.json()["errors"]}
    assert {"title", "sectors", "remove_indicators", "indicators[1]", "indicators[2]", "tags[0]"} <= where
    unchanged = IntelReport.objects.get(pk=report["id"])
    assert (unchanged.title, unchanged.audience) == ("October campaign", "owner")
    assert list(unchanged.indicators.values_list("pk", flat=True)) == ids
    assert not AuditEntry.objects.filter(action="intel.report.change").exists()
    empty = clients["lahore"].patch(f"/intel-reports/{report['id']}", {})
    assert empty.status_code == 422
    assert clients["lahore"].patch("/intel-reports/424242", {"title": "x"}).status_code == 404


def test_an_empty_list_of_tags_clears_them_but_an_empty_list_of_indicators_names_nothing(intel_world):
    _orgs, _, clients = intel_world
    ids = record(clients["lahore"], "lahore", "45.9.150.9")
    report = published(clients, audience="owner", indicators=ids, tags=["phishing"])
    assert report["tags"] == ["phishing"]
    cleared = clients["lahore"].patch(f"/intel-reports/{report['id']}", {"tags": []})
    assert cleared.status_code == 200, cleared.content
    assert cleared.json()["tags"] == []
    assert (
        clients["lahore"].patch(f"/intel-reports/{report['id']}", {"add_indicators": []}).status_code == 422
    )
