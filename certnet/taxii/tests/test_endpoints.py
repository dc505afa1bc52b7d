"""Discovery, the API root, collections, and every error the server answers, each as a TAXII error
message with the TAXII media type."""

from __future__ import annotations

import pytest

from certnet.taxii.models import Audience, TaxiiCollection
from certnet.taxii.tests.conftest import TAXII, indicator

pytestmark = pytest.mark.django_db


def assert_taxii_error(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == TAXII
    body = response.json()
    assert body["http_status"] == str(status)
    assert body["title"]
    assert body["description"]
    return body


def test_discovery_names_the_one_api_root(taxii_as):
    response = taxii_as("bank-lahore").get("")
    assert response.status_code == 200
    assert response["Content-Type"] == TAXII
    body = response.json()
    assert body["title"]
    assert body["api_roots"] == ["http://testserver/taxii2/api/"]
    assert body["default"] == "http://testserver/taxii2/api/"


def test_api_root_advertises_the_version_and_the_size_limit(taxii_as, settings):
    settings.CERTNET_TAXII_MAX_CONTENT_LENGTH = 12345
    body = taxii_as("bank-lahore").get("api/").json()
    assert body["versions"] == [TAXII]
    assert body["max_content_length"] == 12345


def _collections(client):
    response = client.get("api/collections/")
    assert response.status_code == 200
    return {(c["title"], c["can_read"], c["can_write"]) for c in response.json().get("collections", [])}


def test_collections_follow_the_audience(taxii_as):
    assert _collections(taxii_as("bank-lahore")) == {
        ("Community", True, True),
        ("Finance sector", True, True),
        ("Punjab province", True, True),
    }
    # a viewer reads what the organisation reads, and writes nothing
    assert _collections(taxii_as("bank-lahore-viewer")) == {
        ("Community", True, False),
        ("Finance sector", True, False),
        ("Punjab province", True, False),
    }
    # the CERT above reads its constituents' sectors and province, and writes where it stands above them
    punjab = {title for title, _, _ in _collections(taxii_as("punjab"))}
    assert {"Community", "Finance sector", "Textile sector", "Punjab province"} <= punjab
    assert "Sindh province" not in punjab
    sindh = {title for title, _, _ in _collections(taxii_as("sindh"))}
    assert "Finance sector" in sindh
    assert "Textile sector" not in sindh
    # a person with no membership sees no collection; a platform administrator reads every one
    assert _collections(taxii_as("nobody")) == set()
    admin = _collections(taxii_as("admin"))
    assert len(admin) == TaxiiCollection.objects.count()
    assert all(can_read and not can_write for _, can_read, can_write in admin)


def test_ensure_collections_is_idempotent_and_data_driven(world):
    from certnet.taxii import services

    before = TaxiiCollection.objects.count()
    assert services.ensure_collections() == []
    assert TaxiiCollection.objects.count() == before
    sectors = set(TaxiiCollection.objects.filter(audience=Audience.SECTOR).values_list("target", flat=True))
    assert {"finance", "textile", "telecom", "defence"} <= sectors
    provinces = set(
        TaxiiCollection.objects.filter(audience=Audience.PROVINCE).values_list("target", flat=True)
    )
    assert {"punjab", "sindh"} <= provinces


def test_one_collection(taxii_as, world):
    finance = world[3]["finance"]
    body = taxii_as("bank-karachi").get(f"api/collections/{finance.pk}/").json()
    assert body["id"] == str(finance.pk)
    assert body["can_read"] is True
    assert body["can_write"] is True
    assert body["media_types"] == ["application/stix+json;version=2.1"]


def test_401_without_or_with_bad_credentials(taxii_as, world):
    _, _people, tokens, _ = world
    from certnet.taxii.tests.conftest import TaxiiClient

    for client in (
        taxii_as(None),
        TaxiiClient("bank-lahore.analyst", "cnt_not-a-token"),
        TaxiiClient("bank-lahore.analyst", "cnt_not-a-token", bearer=True),
        # a real token under someone else's name
        TaxiiClient("mill.analyst", tokens["bank-lahore"]),
    ):
        response = client.get("api/collections/")
        assert_taxii_error(response, 401)
        assert "Basic" in response["WWW-Authenticate"]
        assert "Bearer" in response["WWW-Authenticate"]


def test_bearer_tokens_work_too(taxii_as):
    assert taxii_as("bank-lahore", bearer=True).get("api/").status_code == 200


def test_403_when_the_collection_is_not_for_the_caller(taxii_as, world):
    finance = world[3]["finance"]
    assert_taxii_error(taxii_as("mill").get(f"api/collections/{finance.pk}/"), 403)
    assert_taxii_error(taxii_as("mill").get(f"api/collections/{finance.pk}/objects/"), 403)
    assert_taxii_error(taxii_as("mill").get(f"api/collections/{finance.pk}/manifest/"), 403)
    assert_taxii_error(taxii_as("nobody").get(f"api/collections/{world[3]['community'].pk}/objects/"), 403)
    # readable but not writable
    response = taxii_as("bank-lahore-viewer").post(
        f"api/collections/{finance.pk}/objects/", {"objects": [indicator()]}
    )
    assert_taxii_error(response, 403)


def test_404_for_what_does_not_exist(taxii_as, world):
    client = taxii_as("bank-lahore")
    finance = world[3]["finance"]
    assert_taxii_error(client.get("api/collections/7d1b2f5e-7d8e-4a8e-9a51-1f0d7b7f0a11/"), 404)
    assert_taxii_error(client.get("api/collections/not-a-uuid/objects/"), 404)
    assert_taxii_error(
        client.get(f"api/collections/{finance.pk}/objects/indicator--{'0' * 8}-0000-4000-8000-{'0' * 12}/"),
        404,
    )
    assert_taxii_error(client.get(f"api/collections/{finance.pk}/objects/indicator--x/versions/"), 404)
    assert_taxii_error(client.get("api/status/7d1b2f5e-7d8e-4a8e-9a51-1f0d7b7f0a11/"), 404)
    assert_taxii_error(client.get("api/nothing-here/"), 404)


@pytest.mark.parametrize(
    "accept",
    ["application/json", "application/taxii+json;version=2.0", "text/html", "application/taxii+json;q=0"],
)
def test_406_when_taxii_is_not_acceptable(taxii_as, accept):
    assert_taxii_error(taxii_as("bank-lahore").get("api/", Accept=accept), 406)


@pytest.mark.parametrize(
    "accept", ["application/taxii+json", "*/*", "text/html, application/taxii+json;version=2.1;q=0.5"]
)
def test_acceptable_media_ranges(taxii_as, accept):
    assert taxii_as("bank-lahore").get("api/", Accept=accept).status_code == 200


def test_405_for_other_methods(taxii_as, world):
    client = taxii_as("bank-lahore")
    response = client.client.delete("/taxii2/api/", headers=client.headers)
    assert_taxii_error(response, 405)
    assert response["Allow"] == "GET"


def test_413_for_an_envelope_over_max_content_length(taxii_as, world, settings):
    settings.CERTNET_TAXII_MAX_CONTENT_LENGTH = 2000
    finance = world[3]["finance"]
    big = {"objects": [indicator(f"203.0.113.{n}") for n in range(10)]}
    body = assert_taxii_error(
        taxii_as("bank-lahore").post(f"api/collections/{finance.pk}/objects/", big), 413
    )
    assert "2000" in body["description"]


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/taxii+json;version=2.0", "application/stix+json;version=2.1"],
)
def test_415_for_another_media_type(taxii_as, world, content_type):
    finance = world[3]["finance"]
    response = taxii_as("bank-lahore").post(
        f"api/collections/{finance.pk}/objects/", {"objects": [indicator()]}, content_type=content_type
    )
    assert_taxii_error(response, 415)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "not JSON"),
        ([], "envelope"),
        ({"objects": []}, "one or more"),
        ({"more": False}, "one or more"),
        ({"objects": ["indicator--x"]}, "objects[0]"),
        ({"objects": [{"type": "indicator"}]}, "objects[0]"),
        (b'{"objects": [{"type": "note", "id": "note--1", "content": "\\u0000"}]}', "NUL"),
    ],
)
def test_422_for_a_malformed_envelope(taxii_as, world, body, says):
    finance = world[3]["finance"]
    response = taxii_as("bank-lahore").post(f"api/collections/{finance.pk}/objects/", body)
    assert says in assert_taxii_error(response, 422)["description"]


def test_400_for_unreadable_query_parameters(taxii_as, world):
    finance = world[3]["finance"]
    client = taxii_as("bank-lahore")
    for params in (
        {"limit": "0"},
        {"limit": "ten"},
        {"added_after": "yesterday"},
        {"next": "%%%"},
        {"match[version]": "newest"},
    ):
        assert_taxii_error(client.get(f"api/collections/{finance.pk}/objects/", params), 400)
