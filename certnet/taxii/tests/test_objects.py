"""Reading objects: paging with next and the date-added headers, added_after, every match[] filter,
versions, the manifest, and what visibility lets each reader see."""

from __future__ import annotations

import datetime as dt

import pytest

from certnet.core.tlp import TLP
from certnet.taxii import services
from certnet.taxii.models import TaxiiObject
from certnet.taxii.tests.conftest import ACTOR, indicator, stix_time

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def place(world, collection, objects, owner="bank-lahore", author="bank-lahore", **kwargs):
    orgs, people, _, collections = world
    return services.place_objects(
        actor=ACTOR,
        collection=collections[collection],
        objects=objects,
        owner=orgs[owner],
        author=people[author] if author else None,
        **kwargs,
    )


def objects_url(world, collection="finance"):
    return f"api/collections/{world[3][collection].pk}/objects/"


def ids(response):
    assert response.status_code == 200, response.content
    return [obj["id"] for obj in response.json().get("objects", [])]


@pytest.fixture
def green_25(world):
    """25 GREEN indicators in the finance collection, in the order they were added."""
    rows = place(world, "finance", [indicator(f"198.51.100.{n}") for n in range(25)], default_tlp=TLP.GREEN)
    return [row.stix_id for row in rows]


def test_pages_follow_next_until_more_is_false(world, taxii_as, green_25):
    client = taxii_as("bank-karachi")
    seen, params, pages = [], {"limit": "10"}, 0
    while True:
        response = client.get(objects_url(world), params)
        body = response.json()
        page_ids = ids(response)
        assert len(page_ids) <= 10
        seen += page_ids
        pages += 1
        # the headers name the first and last object's date added on this page
        added = dict(TaxiiObject.objects.filter(stix_id__in=page_ids).values_list("stix_id", "added_at"))
        first = min(added.values()).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        last = max(added.values()).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert response["X-TAXII-Date-Added-First"] == first
        assert response["X-TAXII-Date-Added-Last"] == last
        if not body["more"]:
            assert "next" not in body
            break
        params = {"limit": "10", "next": body["next"]}
    assert pages == 3
    assert seen == green_25  # in the order added, none twice, none missed


def test_added_after_is_strictly_after(world, taxii_as, green_25):
    client = taxii_as("bank-lahore")
    first_ten = client.get(objects_url(world), {"limit": "10"})
    rest = client.get(objects_url(world), {"added_after": first_ten["X-TAXII-Date-Added-Last"]})
    assert ids(rest) == green_25[10:]
    assert "X-TAXII-Date-Added-First" in rest
    empty = client.get(objects_url(world), {"added_after": rest["X-TAXII-Date-Added-Last"]})
    assert empty.json() == {"more": False}
    assert "X-TAXII-Date-Added-First" not in empty


def test_next_is_opaque_and_keeps_the_filters(world, taxii_as, green_25):
    client = taxii_as("bank-lahore")
    body = client.get(objects_url(world), {"limit": "3"}).json()
    assert body["more"] is True
    assert "." not in body["next"]
    assert ":" not in body["next"]
    following = client.get(objects_url(world), {"limit": "3", "next": body["next"]})
    assert ids(following) == green_25[3:6]


@pytest.fixture
def versioned(world):
    """One indicator in three versions, a second indicator, and a marking definition."""
    stix_id = "indicator--11111111-2222-4333-8444-555555555555"
    versions = [indicator("192.0.2.1", stix_id=stix_id, modified=T0 + dt.timedelta(days=n)) for n in range(3)]
    other = indicator("192.0.2.2")
    marking = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
        "created": "2022-10-01T00:00:00.000Z",
        "name": "TLP:CLEAR",
        "extensions": {},
    }
    place(world, "finance", [versions[1], versions[0], other, marking, versions[2]], default_tlp=TLP.GREEN)
    return stix_id, versions, other, marking


def test_match_version(world, taxii_as, versioned):
    stix_id, versions, _other, _marking = versioned
    client = taxii_as("bank-lahore")
    url = objects_url(world)

    def versions_of(params):
        response = client.get(url, {"match[id]": stix_id, **params})
        return sorted(obj["modified"] for obj in response.json().get("objects", []))

    modified = sorted(v["modified"] for v in versions)
    assert versions_of({}) == [modified[2]]  # last by default
    assert versions_of({"match[version]": "last"}) == [modified[2]]
    assert versions_of({"match[version]": "first"}) == [modified[0]]
    assert versions_of({"match[version]": "first,last"}) == [modified[0], modified[2]]
    assert versions_of({"match[version]": "all"}) == modified
    assert versions_of({"match[version]": modified[1]}) == [modified[1]]
    # the same instant written with a different precision still names that version
    assert versions_of({"match[version]": stix_time(T0 + dt.timedelta(days=1))[:-5] + "Z"}) == [modified[1]]
    assert versions_of({"match[version]": "2020-01-01T00:00:00Z"}) == []


def test_match_id_type_and_spec_version(world, taxii_as, versioned):
    stix_id, _, other, marking = versioned
    client = taxii_as("bank-lahore")
    url = objects_url(world)
    assert set(ids(client.get(url))) == {stix_id, other["id"], marking["id"]}
    assert set(ids(client.get(url, {"match[type]": "indicator"}))) == {stix_id, other["id"]}
    assert ids(client.get(url, {"match[type]": "marking-definition"})) == [marking["id"]]
    assert set(ids(client.get(url, {"match[id]": f"{stix_id},{marking['id']}"}))) == {stix_id, marking["id"]}
    assert set(ids(client.get(url, {"match[spec_version]": "2.1"}))) == {stix_id, other["id"], marking["id"]}
    assert ids(client.get(url, {"match[spec_version]": "2.0"})) == []


def test_get_one_object(world, taxii_as, versioned):
    stix_id, versions, _, _ = versioned
    client = taxii_as("bank-lahore")
    response = client.get(f"{objects_url(world)}{stix_id}/")
    assert response.json()["objects"] == [versions[2]]  # the stored JSON, byte for byte equal
    assert "X-TAXII-Date-Added-Last" in response
    every = client.get(f"{objects_url(world)}{stix_id}/", {"match[version]": "all"})
    assert len(ids(every)) == 3


def test_versions(world, taxii_as, versioned):
    stix_id, versions, _, _ = versioned
    client = taxii_as("bank-lahore")
    response = client.get(f"{objects_url(world)}{stix_id}/versions/")
    body = response.json()
    # in the order they were added (the second version arrived first)
    assert body == {
        "more": False,
        "versions": [versions[1]["modified"], versions[0]["modified"], versions[2]["modified"]],
    }
    assert response["X-TAXII-Date-Added-First"] < response["X-TAXII-Date-Added-Last"]
    paged = client.get(f"{objects_url(world)}{stix_id}/versions/", {"limit": "2"}).json()
    assert paged["more"] is True
    assert len(paged["versions"]) == 2
    rest = client.get(
        f"{objects_url(world)}{stix_id}/versions/", {"limit": "2", "next": paged["next"]}
    ).json()
    assert rest == {"more": False, "versions": [versions[2]["modified"]]}


def test_manifest(world, taxii_as, versioned):
    stix_id, versions, other, marking = versioned
    client = taxii_as("bank-lahore")
    response = client.get(f"api/collections/{world[3]['finance'].pk}/manifest/")
    records = response.json()["objects"]
    assert [r["id"] for r in records] == [other["id"], marking["id"], stix_id]
    by_id = {r["id"]: r for r in records}
    assert by_id[stix_id]["version"] == versions[2]["modified"]
    assert by_id[marking["id"]]["version"] == marking["created"]
    assert all(r["media_type"] == "application/stix+json;version=2.1" for r in records)
    assert response["X-TAXII-Date-Added-First"] == records[0]["date_added"]
    assert response["X-TAXII-Date-Added-Last"] == records[-1]["date_added"]
    filtered = client.get(
        f"api/collections/{world[3]['finance'].pk}/manifest/",
        {"match[version]": "all", "match[type]": "indicator"},
    ).json()["objects"]
    assert len(filtered) == 4


def test_an_observable_without_a_version_is_versioned_by_date_added_and_kept_once(world, taxii_as):
    sco = {
        "type": "ipv4-addr",
        "spec_version": "2.1",
        "id": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd",
        "value": "198.51.100.3",
    }
    first = place(world, "finance", [sco], default_tlp=TLP.GREEN)
    assert place(world, "finance", [sco], default_tlp=TLP.GREEN) == []
    record = (
        taxii_as("bank-lahore")
        .get(f"api/collections/{world[3]['finance'].pk}/manifest/")
        .json()["objects"][0]
    )
    assert record["version"] == record["date_added"] == first[0].version


def test_added_at_is_strictly_increasing_even_within_one_microsecond(world):
    from certnet.core import clock

    with clock.frozen_at(T0):
        place(world, "finance", [indicator(f"198.51.100.{n}") for n in range(5)])
        place(world, "finance", [indicator("198.51.100.99")])
    added = list(
        TaxiiObject.objects.filter(collection=world[3]["finance"]).values_list("added_at", flat=True)
    )
    assert added == sorted(added)
    assert len(set(added)) == 6
    assert added[-1] - added[0] == dt.timedelta(microseconds=5)


# --- visibility -----------------------------------------------------------------------------------


def visible_ids(taxii_as, world, who, collection="finance"):
    response = taxii_as(who).get(objects_url(world, collection), {"match[version]": "all"})
    if response.status_code == 403:
        return None
    return set(ids(response))


def test_red_object_shows_to_its_author_and_named_users_only(world, taxii_as):
    _, people, _, _ = world
    red = indicator("192.0.2.66", marking=TLP.RED.stix_marking_id)
    place(world, "finance", [red], named_users=[people["bank-karachi"].pk])
    assert visible_ids(taxii_as, world, "bank-lahore") == {red["id"]}  # the author
    assert visible_ids(taxii_as, world, "bank-karachi") == {red["id"]}  # named
    for unnamed in ("bank-lahore-viewer", "punjab", "ncert", "admin"):
        assert visible_ids(taxii_as, world, unnamed) == set(), unnamed
    # not as a stub either: the object endpoint answers as if it were not there
    response = taxii_as("bank-lahore-viewer").get(f"{objects_url(world)}{red['id']}/")
    assert response.status_code == 404


def test_amber_in_a_sector_collection(world, taxii_as):
    orgs = world[0]
    amber = indicator("192.0.2.77", marking=TLP.AMBER.stix_marking_id)
    # shared with the sector's organisations, as a report to the sector is
    place(world, "finance", [amber], shared_with=[orgs["bank-lahore"].pk, orgs["bank-karachi"].pk])
    for reader in ("bank-lahore", "bank-lahore-viewer", "bank-karachi", "punjab", "ncert", "admin"):
        assert visible_ids(taxii_as, world, reader) == {amber["id"]}, reader
    # Sindh's CERT reads the finance collection (its bank is in the sector) but the object was neither
    # its constituent's nor shared with it; the mill may not read the collection at all
    assert visible_ids(taxii_as, world, "sindh") == set()
    assert visible_ids(taxii_as, world, "mill") is None


def test_amber_in_the_community_collection_stays_with_the_owners_chain(world, taxii_as):
    amber = indicator("192.0.2.78")  # unmarked: AMBER by default
    place(world, "community", [amber])
    assert visible_ids(taxii_as, world, "bank-lahore", "community") == {amber["id"]}
    assert visible_ids(taxii_as, world, "punjab", "community") == {amber["id"]}
    assert visible_ids(taxii_as, world, "mill", "community") == set()
    assert visible_ids(taxii_as, world, "bank-karachi", "community") == set()


def test_last_version_is_the_last_the_reader_may_see(world, taxii_as):
    stix_id = "indicator--99999999-2222-4333-8444-555555555555"
    older = indicator("192.0.2.9", stix_id=stix_id, modified=T0)
    newer = indicator(
        "192.0.2.9", stix_id=stix_id, modified=T0 + dt.timedelta(days=1), marking=TLP.RED.stix_marking_id
    )
    place(world, "finance", [older], default_tlp=TLP.GREEN)
    place(world, "finance", [newer])
    mine = taxii_as("bank-lahore").get(objects_url(world)).json()["objects"]
    theirs = taxii_as("bank-karachi").get(objects_url(world)).json()["objects"]
    assert [o["modified"] for o in mine] == [newer["modified"]]
    assert [o["modified"] for o in theirs] == [older["modified"]]
    versions = taxii_as("bank-karachi").get(f"{objects_url(world)}{stix_id}/versions/").json()
    assert versions["versions"] == [older["modified"]]


def test_last_versions_page_past_superseded_rows(world, taxii_as):
    """Older versions added first: a page of last versions is filled from several slices of rows."""
    stix_ids = [f"indicator--{n:08d}-2222-4333-8444-555555555555" for n in range(10)]
    for day in range(3):
        place(
            world,
            "finance",
            [
                indicator(f"192.0.2.{n}", stix_id=stix_ids[n], modified=T0 + dt.timedelta(days=day))
                for n in range(10)
            ],
            default_tlp=TLP.GREEN,
        )
    client = taxii_as("bank-karachi")
    seen, params, sizes = [], {"limit": "4"}, []
    while True:
        body = client.get(objects_url(world), params).json()
        page = body.get("objects", [])
        sizes.append(len(page))
        seen += [(obj["id"], obj["modified"]) for obj in page]
        if not body["more"]:
            break
        params = {"limit": "4", "next": body["next"]}
    assert sizes == [4, 4, 2]
    last = stix_time(T0 + dt.timedelta(days=2))
    assert seen == [(stix_id, last) for stix_id in stix_ids]
    firsts = client.get(objects_url(world), {"match[version]": "first", "limit": "3"}).json()
    assert [obj["modified"] for obj in firsts["objects"]] == [stix_time(T0)] * 3
    assert firsts["more"] is True
