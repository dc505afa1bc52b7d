"""The TAXII server spoken to by a real TAXII 2.1 client (taxii2-client, over HTTP against the live
server), with the user name and an API token as password, as an operator would configure a peer tool."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import requests
from taxii2client.v21 import ApiRoot, Server, as_pages

from certnet.core.audit import SystemActor
from certnet.core.tlp import TLP
from certnet.taxii import services
from certnet.taxii.models import Audience, TaxiiCollection

ACTOR = SystemActor("test")
T0 = dt.datetime(2025, 4, 1, tzinfo=dt.UTC)
VERSIONED = "indicator--0b0c8a5e-5a52-4a8f-9d84-0c8f8e8f0a01"


def stamp(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def indicator(value, *, stix_id=None, modified=T0, marking=TLP.GREEN):
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": stix_id or f"indicator--{uuid.uuid4()}",
        "created": stamp(T0),
        "modified": stamp(modified),
        "name": f"Scanner {value}",
        "pattern": f"[ipv4-addr:value = '{value}']",
        "pattern_type": "stix",
        "valid_from": stamp(T0),
        "object_marking_refs": [marking.stix_marking_id],
    }


@pytest.fixture
def taxii_world(intel_world, live_server):
    """The community collection holding 23 GREEN indicators of Lahore's, one of them in three versions."""
    orgs, people, clients = intel_world
    tokens = {
        name: client.headers["Authorization"].removeprefix("Bearer ")
        for name, client in clients.items()
        if client.headers
    }
    services.ensure_collections()
    community = TaxiiCollection.objects.get(audience=Audience.COMMUNITY)
    objects = [indicator(f"198.51.100.{n}") for n in range(20)]
    objects += [
        indicator("198.51.100.200", stix_id=VERSIONED, modified=T0 + dt.timedelta(hours=n)) for n in range(3)
    ]
    services.place_objects(
        actor=ACTOR, collection=community, objects=objects, owner=orgs["lahore"], author=people["lahore"]
    )
    return {
        "url": f"{live_server.url}/taxii2/",
        "people": people,
        "tokens": tokens,
        "community": community,
        "objects": objects,
    }


@pytest.fixture
def connect(taxii_world):
    """A Server per person; every connection the client opened is closed before the live server stops
    (a keep-alive connection still open then ends its server thread with an error)."""
    opened = []

    def make(who):
        server = Server(
            taxii_world["url"], user=taxii_world["people"][who].username, password=taxii_world["tokens"][who]
        )
        opened.append(server)
        return server

    yield make
    for server in opened:
        for root in server._api_roots if server._loaded else ():
            root.close()
        server.close()


def community_of(server):
    [root] = server.api_roots
    assert isinstance(root, ApiRoot)
    return root, next(c for c in root.collections if c.title == "Community")


def test_discovery_and_collections(taxii_world, connect):
    server = connect("karachi")
    assert server.title == "certnet TAXII server"
    assert server.default.url == server.api_roots[0].url
    root, community = community_of(server)
    assert root.versions == ["application/taxii+json;version=2.1"]
    assert root.max_content_length > 0
    assert community.id == str(taxii_world["community"].pk)
    assert community.can_read is True
    assert community.can_write is True


def test_pages_of_objects_versions_and_manifest(taxii_world, connect):
    _root, community = community_of(connect("multan"))
    pages = list(as_pages(community.get_objects, per_request=7))
    assert [len(page["objects"]) for page in pages] == [7, 7, 7]  # 20 + the last version of the 21st
    seen = [obj["id"] for page in pages for obj in page.get("objects", [])]
    expected = [body["id"] for body in taxii_world["objects"][:20]] + [VERSIONED]
    assert seen == expected

    one = community.get_object(VERSIONED)
    assert [obj["modified"] for obj in one["objects"]] == [stamp(T0 + dt.timedelta(hours=2))]
    every = community.get_object(VERSIONED, version="all")
    assert len(every["objects"]) == 3
    versions = community.object_versions(VERSIONED)
    assert versions["versions"] == [stamp(T0 + dt.timedelta(hours=n)) for n in range(3)]

    manifest = [
        record
        for page in as_pages(community.get_manifest, per_request=10)
        for record in page.get("objects", [])
    ]
    assert [record["id"] for record in manifest] == expected
    assert {record["media_type"] for record in manifest} == {"application/stix+json;version=2.1"}
    newer = community.get_objects(added_after=manifest[9]["date_added"])
    assert [obj["id"] for obj in newer["objects"]] == expected[10:]


def test_add_objects_and_poll_the_status(taxii_world, connect):
    root, community = community_of(connect("karachi"))
    added = indicator("203.0.113.99")
    status = community.add_objects({"objects": [added]}, wait_for_completion=False)
    assert status.status == "complete"
    assert (status.total_count, status.success_count, status.failure_count) == (1, 1, 0)
    polled = root.get_status(status.id)
    assert polled.successes == [{"id": added["id"], "version": added["modified"], "message": "added"}]
    status.refresh()  # the client's own status URL, without the trailing slash
    assert status.success_count == 1
    # the other organisations of the community read it (GREEN)
    _, seen_by_lahore = community_of(connect("lahore"))
    assert seen_by_lahore.get_object(added["id"])["objects"] == [added]


def test_a_wrong_password_is_refused(taxii_world):
    server = Server(taxii_world["url"], user=taxii_world["people"]["lahore"].username, password="cnt_wrong")
    with server, pytest.raises(requests.HTTPError) as raised:
        _ = server.title
    assert raised.value.response.status_code == 401
    assert "Basic" in raised.value.response.headers["WWW-Authenticate"]
