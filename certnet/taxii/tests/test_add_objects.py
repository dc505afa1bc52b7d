"""Adding objects: imported by the intel app for the caller's organisation, added to the collection,
answered with a status resource that the same caller (and only they) can fetch again."""

from __future__ import annotations

import pytest

from certnet.accounts import services as accounts
from certnet.core.models import AuditEntry
from certnet.core.roles import Role
from certnet.core.tlp import TLP
from certnet.intel.models import Indicator
from certnet.taxii.models import TaxiiObject, TaxiiStatus
from certnet.taxii.tests.conftest import ACTOR, TAXII, indicator

pytestmark = pytest.mark.django_db


def url(world, collection="finance"):
    return f"api/collections/{world[3][collection].pk}/objects/"


def test_add_objects_imports_them_and_answers_a_status(world, taxii_as):
    orgs, people, _, collections = world
    good = indicator("203.0.113.60")
    green = indicator("203.0.113.61", marking=TLP.GREEN.stix_marking_id)
    bad = {"type": "x-unknown-thing", "spec_version": "2.1", "id": "x-unknown-thing--1"}
    response = taxii_as("bank-lahore").post(url(world), {"objects": [good, bad, green]})
    assert response.status_code == 202, response.content
    assert response["Content-Type"] == TAXII
    status = response.json()
    assert status["status"] == "complete"
    assert (
        status["total_count"],
        status["success_count"],
        status["failure_count"],
        status["pending_count"],
    ) == (
        3,
        2,
        1,
        0,
    )
    assert {s["id"] for s in status["successes"]} == {good["id"], green["id"]}
    assert {s["version"] for s in status["successes"]} == {good["modified"], green["modified"]}
    [failure] = status["failures"]
    assert failure["id"] == bad["id"]
    assert "custom types are not taken" in failure["message"]

    # the intel app took the indicators for the caller's organisation
    assert set(Indicator.objects.filter(owner=orgs["bank-lahore"]).values_list("value", flat=True)) == {
        "203.0.113.60",
        "203.0.113.61",
    }
    rows = {row.stix_id: row for row in TaxiiObject.objects.filter(collection=collections["finance"])}
    assert set(rows) == {good["id"], green["id"]}
    assert rows[good["id"]].tlp == TLP.AMBER  # unmarked
    assert rows[green["id"]].tlp == TLP.GREEN
    assert rows[good["id"]].owner == orgs["bank-lahore"]
    assert rows[good["id"]].created_by == people["bank-lahore"]
    # AMBER is shared with the sector, so the collection's readers see it
    assert set(rows[good["id"]].shared_with.values_list("slug", flat=True)) == {"bank-lahore", "bank-karachi"}
    seen = taxii_as("bank-karachi").get(url(world)).json()["objects"]
    assert {obj["id"] for obj in seen} == {good["id"], green["id"]}

    # audited, naming the collection and the counts
    entry = AuditEntry.objects.filter(action="taxii.objects.add").get()
    assert entry.object_id == str(collections["finance"].pk)
    assert entry.organisation_id == orgs["bank-lahore"].pk
    assert (entry.data["total"], entry.data["successes"], entry.data["failures"]) == (3, 2, 1)
    assert entry.data["status"] == status["id"]

    # the status, again, for its caller only
    again = taxii_as("bank-lahore").get(f"api/status/{status['id']}/")
    assert again.status_code == 200
    assert again.json() == status
    assert taxii_as("bank-lahore").get(f"api/status/{status['id']}").status_code == 200  # no slash
    assert taxii_as("bank-karachi").get(f"api/status/{status['id']}/").status_code == 404
    assert TaxiiStatus.objects.get().user == people["bank-lahore"]


def test_adding_the_same_version_again_stores_it_once(world, taxii_as):
    body = {"objects": [indicator("203.0.113.62")]}
    for _ in range(2):
        assert taxii_as("bank-lahore").post(url(world), body).json()["success_count"] == 1
    assert TaxiiObject.objects.count() == 1


def test_a_red_object_added_is_for_its_author(world, taxii_as):
    red = indicator("203.0.113.63", marking=TLP.RED.stix_marking_id)
    assert taxii_as("bank-lahore").post(url(world), {"objects": [red]}).json()["success_count"] == 1
    assert [o["id"] for o in taxii_as("bank-lahore").get(url(world)).json()["objects"]] == [red["id"]]
    for other in ("bank-lahore-viewer", "bank-karachi", "punjab"):
        assert taxii_as(other).get(url(world)).json() == {"more": False}, other


def test_the_caller_names_the_organisation_when_several_may_write(world, taxii_as):
    orgs, people, _, collections = world
    accounts.set_membership(
        actor=ACTOR, user=people["bank-lahore"], organisation_id=orgs["mill-multan"].pk, role=Role.ANALYST
    )
    client = taxii_as("bank-lahore")
    body = {"objects": [indicator("203.0.113.64", marking=TLP.GREEN.stix_marking_id)]}
    refused = client.post(url(world, "community"), body)
    assert refused.status_code == 422
    assert "X-Certnet-Organisation" in refused.json()["description"]
    assert "mill-multan" in refused.json()["description"]
    wrong = client.post(url(world, "community"), body, **{"X-Certnet-Organisation": "ncert"})
    assert wrong.status_code == 422
    chosen = client.post(url(world, "community"), body, **{"X-Certnet-Organisation": "mill-multan"})
    assert chosen.status_code == 202
    assert TaxiiObject.objects.get().owner == orgs["mill-multan"]
    # where only one of them may write, that one is taken
    alone = client.post(url(world, "textile"), {"objects": [indicator("203.0.113.65")]})
    assert alone.status_code == 202
    assert TaxiiObject.objects.get(collection=collections["textile"]).owner == orgs["mill-multan"]


def test_a_cert_adds_to_a_collection_of_its_constituents(world, taxii_as):
    response = taxii_as("punjab").post(url(world), {"objects": [indicator("203.0.113.66")]})
    assert response.status_code == 202
    assert TaxiiObject.objects.get().owner == world[0]["punjab-cert"]


def test_an_object_the_collection_cannot_hold_is_refused_before_the_import(world, taxii_as):
    mislabelled = indicator("203.0.113.67")
    mislabelled["type"] = "malware"
    response = taxii_as("bank-lahore").post(url(world), {"objects": [mislabelled]})
    assert response.status_code == 202
    status = response.json()
    assert (status["success_count"], status["failure_count"]) == (0, 1)
    assert "does not name the object's type" in status["failures"][0]["message"]
    assert "successes" not in status
    assert not Indicator.objects.filter(value="203.0.113.67").exists()
    assert TaxiiObject.objects.count() == 0
