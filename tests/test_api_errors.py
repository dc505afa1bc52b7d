"""The API's error format: every error is application/problem+json with type, title, status and
detail; validation errors list `errors` entries with loc and msg; refused requests change nothing.

These tests need no framework: one AMBER constituent ("delta", reporting to nobody) and its people.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from certnet.accounts import services as accounts
from certnet.accounts.models import User
from certnet.core import clock
from certnet.core.audit import SystemActor
from certnet.core.models import AuditEntry
from certnet.core.roles import Role
from certnet.registry import services
from certnet.registry.models import Contact, Designation, Netblock, Organisation
from certnet.registry.services import DesignationInput, OrganisationInput

SYSTEM = SystemActor("test")
PROBLEM = "application/problem+json"
PROBLEM_KEYS = {"type", "title", "status", "detail"}


@dataclass
class People:
    delta: Organisation
    manager: User
    viewer: User
    admin: User
    as_manager: Any
    as_viewer: Any
    as_admin: Any
    anonymous: Any


@pytest.fixture
def people(db: Any, make_user: Any, api_as: Any) -> People:
    delta = services.create_organisation(
        actor=SYSTEM, data=OrganisationInput(slug="delta", name="Delta", kind="constituent", tlp="amber")
    )
    services.add_netblock(actor=SYSTEM, organisation=delta, cidr="192.0.2.0/24")
    manager = make_user(delta, Role.MANAGER, username="delta-manager")
    viewer = make_user(delta, Role.VIEWER, username="delta-viewer")
    admin = make_user(username="admin", platform_admin=True)
    return People(delta, manager, viewer, admin, api_as(manager), api_as(viewer), api_as(admin), api_as(None))


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_KEYS
    assert body["status"] == status
    for key in ("type", "title", "detail"):
        assert isinstance(body[key], str), key
        assert body[key], key
    return body


def snapshot() -> tuple[int, int, int, int]:
    """What a refused request must not change."""
    return (
        Organisation.objects.count(),
        Netblock.objects.count(),
        Contact.objects.count(),
        AuditEntry.objects.count(),
    )


def refused(send: Callable[[], Any], status: int) -> dict[str, Any]:
    before = snapshot()
    body = assert_problem(send(), status)
    assert snapshot() == before, "a refused request changed something"
    return body


# --- the format, across statuses ----------------------------------------------------------------


def test_every_error_status_is_problem_json(people: People, settings: Any) -> None:
    services.propose_designation(actor=SYSTEM, organisation=people.delta, data=DesignationInput(kind="cii"))
    cases: list[tuple[str, Callable[[], Any], int]] = [
        (
            "malformed JSON",
            lambda: people.as_manager.client.post(
                "/api/v1/organisations/delta/contacts",
                "{not json",
                content_type="application/json",
                headers=people.as_manager.headers,
            ),
            400,
        ),
        ("no credentials", lambda: people.anonymous.get("/me"), 401),
        (
            "viewer writes",
            lambda: people.as_viewer.post("/organisations/delta/netblocks", {"cidr": "198.51.100.0/24"}),
            403,
        ),
        ("unknown slug", lambda: people.as_manager.get("/organisations/no-such-org"), 404),
        (
            "duplicate netblock",
            lambda: people.as_manager.post("/organisations/delta/netblocks", {"cidr": "192.0.2.0/24"}),
            409,
        ),
        (
            "illegal transition",
            lambda: people.as_admin.post(
                "/organisations/delta/designations/cii/transitions", {"to_status": "operational"}
            ),
            409,
        ),
        (
            "invalid CIDR",
            lambda: people.as_manager.post("/organisations/delta/netblocks", {"cidr": "10.0.0.0/33"}),
            422,
        ),
        ("schema violation", lambda: people.as_manager.post("/organisations/delta/contacts", {}), 422),
    ]
    statuses = {}
    for label, send, status in cases:
        statuses[label] = refused(send, status)["status"]
    assert statuses == {label: status for label, _, status in cases}
    settings.CERTNET_MAX_REQUEST_BYTES = 64
    refused(
        lambda: people.as_manager.post(
            "/organisations/delta/contacts",
            {"kind": "abuse", "email": "a@delta.example.pk", "name": "x" * 64},
        ),
        413,
    )


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ("{not json", "Cannot parse request body"),
        ('{"kind": "abuse",}', "Cannot parse request body"),
        ("{'kind': 'abuse'}", "Cannot parse request body"),
        ("\x00\x01", "the request body contains a NUL character"),
        ('{"kind": "abuse", "name": "a\\u0000b"}', "the request body contains a NUL character"),
    ],
)
def test_malformed_json_is_400(people: People, body: str, detail: str) -> None:
    problem = refused(
        lambda: people.as_manager.client.post(
            "/api/v1/organisations/delta/contacts",
            body,
            content_type="application/json",
            headers=people.as_manager.headers,
        ),
        400,
    )
    assert problem["detail"] == detail


# --- 422: what is wrong, and where ---------------------------------------------------------------

INVALID: list[tuple[str, str, dict[str, Any], str, str]] = [
    # (path, method, body or query, loc, the bad value the detail must name)
    ("/organisations/delta/netblocks", "post", {"cidr": "10.0.0.0/33"}, "cidr", "10.0.0.0/33"),
    ("/organisations/delta/netblocks", "post", {"cidr": "10.0.0.1/24"}, "cidr", "10.0.0.1/24"),
    ("/organisations/delta/netblocks", "post", {"cidr": "not-a-network"}, "cidr", "not-a-network"),
    ("/organisations/delta/netblocks", "post", {"cidr": "10.9.0.0/16", "tlp": "purple"}, "tlp", "purple"),
    ("/organisations/delta/asns", "post", {"asn": "AS-1"}, "asn", "AS-1"),
    ("/organisations/delta/asns", "post", {"asn": 4294967296}, "asn", "4294967296"),
    ("/organisations/delta/domains", "post", {"name": "bad_domain!.pk"}, "domain", "bad_domain!.pk"),
    ("/organisations/delta/domains", "post", {"name": "a..pk"}, "domain", "a..pk"),
    (
        "/organisations/delta/contacts",
        "post",
        {"kind": "pigeon", "email": "a@delta.example.pk"},
        "kind",
        "pigeon",
    ),
    (
        "/organisations/delta/contacts",
        "post",
        {"kind": "abuse", "email": "not-an-address"},
        "email",
        "not-an-address",
    ),
    ("/organisations/delta/designations", "post", {"kind": "galaxy"}, "kind", "galaxy"),
    ("/organisations/delta", "patch", {"kind": "galaxy"}, "kind", "galaxy"),
    ("/organisations/delta", "patch", {"tlp": "purple"}, "tlp", "purple"),
    ("/lookup", "get", {"ip": "999.1.1.1"}, "ip", "999.1.1.1"),
    ("/lookup", "get", {"ip": "192.0.2.1", "asn": "AS1"}, "query", "exactly one"),
]


def test_invalid_values_are_422_naming_field_and_value(people: People) -> None:
    client = people.as_admin  # may do anything: only the values are wrong
    for path, method, payload, loc, value in INVALID:

        def send(path: str = path, method: str = method, payload: dict[str, Any] = payload) -> Any:
            return client.get(path, **payload) if method == "get" else getattr(client, method)(path, payload)

        body = refused(send, 422)
        assert body["title"] == "Invalid input", path
        assert all(set(entry) == {"loc", "msg"} for entry in body["errors"]), body
        assert loc in [entry["loc"] for entry in body["errors"]], body
        assert loc in body["detail"], body["detail"]
        assert value in body["detail"], body["detail"]


@pytest.mark.parametrize(
    ("send", "loc"),
    [
        (
            lambda c: c.post(
                "/organisations/delta/netblocks", {"cidr": "10.9.0.0/16", "valid_from": "2025-13-01"}
            ),
            "body.payload.valid_from",
        ),
        (
            lambda c: c.post("/organisations/delta/asns", {"asn": 64500, "valid_from": "yesterday"}),
            "body.payload.valid_from",
        ),
        (lambda c: c.get("/organisations/delta/hierarchy", at="2025-02-30"), "query.at"),
        (lambda c: c.get("/lookup", ip="192.0.2.1", at="not-a-date"), "query.at"),
    ],
    ids=["netblock-valid_from", "asn-valid_from", "hierarchy-at", "lookup-at"],
)
def test_invalid_dates_are_422_naming_the_field(people: People, send: Any, loc: str) -> None:
    body = refused(lambda: send(people.as_admin), 422)
    assert [entry["loc"] for entry in body["errors"]] == [loc]
    assert body["detail"].startswith(f"{loc}: ")
    assert all(isinstance(entry["msg"], str) and entry["msg"] for entry in body["errors"])


def test_invalid_date_detail_names_the_bad_value(people: People) -> None:
    response = people.as_admin.post(
        "/organisations/delta/netblocks", {"cidr": "10.9.0.0/16", "valid_from": "2025-13-01"}
    )
    assert "2025-13-01" in assert_problem(response, 422)["detail"]


def test_unknown_organisation_kind_is_422_with_the_field_in_errors(people: People) -> None:
    body = refused(
        lambda: people.as_admin.post(
            "/organisations", {"slug": "epsilon", "name": "Epsilon", "kind": "galaxy"}
        ),
        422,
    )
    assert len(body["errors"]) == 1
    assert body["errors"][0]["loc"] == "kind"
    assert body["errors"][0]["msg"].startswith("'galaxy' is not one of: national-cert, provincial-cert")


def test_unknown_organisation_kind_detail_names_field_and_value(people: People) -> None:
    response = people.as_admin.post(
        "/organisations", {"slug": "epsilon", "name": "Epsilon", "kind": "galaxy"}
    )
    detail = assert_problem(response, 422)["detail"]
    assert "kind" in detail
    assert "galaxy" in detail


LOOKUP_BUG = (
    "BUG: GET /lookup validates only ip= (certnet/registry/api.py lookup, parse_address, line ~576); "
    "a malformed asn= or domain= is swallowed by RegistryIndex.find_asn/find_domain "
    "(certnet/registry/index.py lines ~47-57, `except InvalidInput: return None`) and answered "
    "404 'no organisation you may see held ...' instead of 422 naming the field and value"
)


@pytest.mark.parametrize(("field", "value"), [("asn", "AS-1"), ("domain", "bad_domain!.pk")])
def test_malformed_lookup_query_is_422(people: People, field: str, value: str) -> None:
    body = assert_problem(people.as_admin.get("/lookup", **{field: value}), 422)
    assert body["errors"][0]["loc"] == field
    assert value in body["detail"]


# --- 401: who is calling? ------------------------------------------------------------------------


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token is not None else {}


def test_missing_unknown_and_malformed_credentials_are_401(people: People) -> None:
    client = Client()
    headers: list[dict[str, str]] = [
        {},
        bearer("cnt_" + "x" * 43),  # well-formed, unknown
        bearer("not-a-certnet-token"),
        bearer(""),
        {"Authorization": "Token " + "x" * 20},
        {"Authorization": "Basic ZGVsdGE6cGFzc3dvcmQ="},
    ]
    for header in headers:
        response = client.get("/api/v1/me", headers=header)
        body = assert_problem(response, 401)
        assert response["WWW-Authenticate"] == 'Bearer realm="certnet"'
        assert body["title"] == "Unauthorised"
        before = snapshot()
        response = client.post(
            "/api/v1/organisations/delta/netblocks",
            {"cidr": "198.51.100.0/24"},
            content_type="application/json",
            headers=header,
        )
        assert_problem(response, 401)
        assert snapshot() == before


def test_expired_token_is_401(people: People) -> None:
    issued = accounts.create_token(actor=SYSTEM, user=people.viewer, days=1)
    client = Client()
    issued_at = issued.token.created_at
    with clock.frozen_at(issued_at + dt.timedelta(hours=23)):
        assert client.get("/api/v1/me", headers=bearer(issued.secret)).status_code == 200
    with clock.frozen_at(issued_at + dt.timedelta(days=1, seconds=1)):
        assert_problem(client.get("/api/v1/me", headers=bearer(issued.secret)), 401)
        before = snapshot()
        response = client.post(
            "/api/v1/organisations/delta/contacts",
            {"kind": "abuse", "email": "a@delta.example.pk"},
            content_type="application/json",
            headers=bearer(issued.secret),
        )
        assert_problem(response, 401)
        assert snapshot() == before


def test_revoked_token_is_401(people: People) -> None:
    issued = accounts.create_token(actor=SYSTEM, user=people.manager)
    client = Client()
    assert client.get("/api/v1/me", headers=bearer(issued.secret)).json()["username"] == "delta-manager"
    accounts.revoke_token(actor=SYSTEM, user=people.manager, prefix=issued.token.prefix)
    assert_problem(client.get("/api/v1/me", headers=bearer(issued.secret)), 401)
    before = snapshot()
    response = client.post(
        "/api/v1/organisations/delta/netblocks",
        {"cidr": "198.51.100.0/24"},
        content_type="application/json",
        headers=bearer(issued.secret),
    )
    assert_problem(response, 401)
    assert snapshot() == before
    # The user's other tokens are untouched.
    assert people.as_manager.get("/me").status_code == 200


def test_token_of_a_deactivated_user_is_401(people: People) -> None:
    people.viewer.is_active = False
    people.viewer.save(update_fields=["is_active"])
    assert_problem(people.as_viewer.get("/me"), 401)


@pytest.mark.parametrize("token", [None, "cnt_" + "x" * 43], ids=["no-token", "unknown-token"])
def test_unsafe_request_with_bad_token_is_401_for_a_real_client(people: People, token: str | None) -> None:
    client = Client(enforce_csrf_checks=True)  # as every client outside the test suite behaves
    before = snapshot()
    response = client.post(
        "/api/v1/organisations/delta/netblocks",
        {"cidr": "198.51.100.0/24"},
        content_type="application/json",
        headers=bearer(token),
    )
    assert snapshot() == before
    assert_problem(response, 401)
    assert response["WWW-Authenticate"] == 'Bearer realm="certnet"'


def test_valid_bearer_token_needs_no_csrf_token(people: People) -> None:
    client = Client(enforce_csrf_checks=True)
    secret = accounts.create_token(actor=SYSTEM, user=people.manager).secret
    response = client.post(
        "/api/v1/organisations/delta/netblocks",
        {"cidr": "198.51.100.0/24"},
        content_type="application/json",
        headers=bearer(secret),
    )
    assert response.status_code == 201


# --- browser sessions -----------------------------------------------------------------------------


def test_session_may_read_but_unsafe_requests_need_the_csrf_token(people: People) -> None:
    client = Client(enforce_csrf_checks=True)
    assert_problem(client.get("/api/v1/me"), 401)
    client.force_login(people.manager)
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["username"] == "delta-manager"
    assert me.json()["memberships"] == [
        {"organisation": "delta", "organisation_name": "Delta", "role": "manager"}
    ]
    body = refused(
        lambda: client.post(
            "/api/v1/organisations/delta/contacts",
            {"kind": "abuse", "email": "a@delta.example.pk"},
            content_type="application/json",
        ),
        403,
    )
    assert body["detail"] == "CSRF check Failed"
    # The same request with the CSRF cookie and header goes through.
    csrf = "a" * 32
    client.cookies["csrftoken"] = csrf
    response = client.post(
        "/api/v1/organisations/delta/contacts",
        {"kind": "abuse", "email": "a@delta.example.pk"},
        content_type="application/json",
        headers={"X-CSRFToken": csrf},
    )
    assert response.status_code == 201
    client.logout()
    assert_problem(client.get("/api/v1/me"), 401)


# --- 404 and 409 ---------------------------------------------------------------------------------


def test_unknown_things_are_404(people: People) -> None:
    client = people.as_admin
    cases = [
        (lambda: client.get("/organisations/no-such-org"), "no organisation 'no-such-org'"),
        (lambda: client.get("/organisations/no-such-org/hierarchy"), "no organisation 'no-such-org'"),
        (lambda: client.patch("/organisations/no-such-org", {"name": "X"}), "no organisation 'no-such-org'"),
        (
            lambda: client.post("/organisations/no-such-org/netblocks", {"cidr": "198.51.100.0/24"}),
            "no organisation 'no-such-org'",
        ),
        (lambda: client.post("/netblocks/999999/retire", {}), "no netblock 999999"),
        (
            lambda: client.post(
                "/organisations/delta/designations/cii/transitions", {"to_status": "recommended"}
            ),
            "delta has no cii designation you may see",
        ),
        (
            lambda: client.get("/lookup", ip="203.0.113.9", at="2025-01-01"),
            "no organisation you may see held '203.0.113.9' on 2025-01-01",
        ),
    ]
    for send, detail in cases:
        body = refused(send, 404)
        assert (body["title"], body["detail"]) == ("Not found", detail)


def test_conflicts_are_409_and_change_nothing(people: People) -> None:
    client = people.as_admin
    netblock = Netblock.objects.get(cidr="192.0.2.0/24")
    assert client.post(f"/netblocks/{netblock.pk}/retire", {"valid_to": "2099-01-01"}).status_code == 200
    designation = client.post("/organisations/delta/designations", {"kind": "cii"})
    assert designation.status_code == 201
    cases = [
        (
            lambda: client.post(
                "/organisations", {"slug": "delta", "name": "Delta 2", "kind": "constituent"}
            ),
            "Conflict",
            "an organisation with slug 'delta' already exists",
        ),
        (
            lambda: client.post("/organisations/delta/netblocks", {"cidr": "192.0.2.0/24"}),
            "Conflict",
            "192.0.2.0/24 is already registered: 192.0.2.0/24 (delta)",
        ),
        (
            lambda: client.post("/organisations/delta/netblocks", {"cidr": "192.0.2.128/25"}),
            "Conflict",
            "192.0.2.128/25 overlaps 192.0.2.0/24, already registered to delta",
        ),
        (
            lambda: client.post(f"/netblocks/{netblock.pk}/retire", {"valid_to": "2099-02-01"}),
            "Conflict",
            "192.0.2.0/24 was already retired on 2099-01-01",
        ),
        (
            lambda: client.post("/organisations/delta/designations", {"kind": "cii"}),
            "Conflict",
            "delta already has a cii designation",
        ),
        (
            lambda: client.post(
                "/organisations/delta/designations/cii/transitions", {"to_status": "approved"}
            ),
            "Illegal transition",
            "a designation that is proposed cannot become approved; it can become: recommended, dissolved",
        ),
    ]
    for send, title, detail in cases:
        before_status = list(Designation.objects.values_list("status", flat=True))
        body = refused(send, 409)
        assert (body["title"], body["detail"]) == (title, detail)
        assert list(Designation.objects.values_list("status", flat=True)) == before_status


# --- 413 -----------------------------------------------------------------------------------------


def test_oversized_body_is_413_and_creates_nothing(people: People, settings: Any) -> None:
    settings.CERTNET_MAX_REQUEST_BYTES = 512
    small = {"kind": "abuse", "email": "a@delta.example.pk"}
    big = {**small, "pgp_key": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n" + "A" * 600}
    body = refused(lambda: people.as_manager.post("/organisations/delta/contacts", big), 413)
    assert body["title"] == "Request too large"
    assert body["detail"].endswith("; the limit is 512 bytes")
    # Anonymous callers are stopped by the size limit before authentication.
    refused(lambda: people.anonymous.post("/organisations/delta/contacts", big), 413)
    assert people.as_manager.post("/organisations/delta/contacts", small).status_code == 201


# --- the API description -------------------------------------------------------------------------


def test_openapi_document_and_docs_page(db: Any) -> None:
    client = Client()
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in [
        "/api/v1/me",
        "/api/v1/organisations",
        "/api/v1/organisations/{slug}",
        "/api/v1/organisations/{slug}/netblocks",
        "/api/v1/lookup",
        "/api/v1/netblocks",
    ]:
        assert path in paths, path
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    assert docs["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("params", "loc", "fragment"),
    [
        ({"asn": "²"}, "asn", "is not an AS number"),
        ({"asn": "9" * 5000}, "asn", "is not an AS number"),
        ({"ip": "fe80::1%eth0"}, "ip", "has a zone index"),
    ],
)
def test_odd_lookup_input_is_422_not_500(
    people: People, params: dict[str, str], loc: str, fragment: str
) -> None:
    problem = refused(lambda: people.as_manager.get("/lookup", **params), 422)
    assert problem["errors"][0]["loc"] == loc
    assert fragment in problem["errors"][0]["msg"]


def test_nul_in_a_query_string_is_400(people: People) -> None:
    problem = refused(lambda: people.as_manager.get("/organisations", q="a\x00b"), 400)
    assert problem["detail"] == "the query string contains a NUL character (%00)"
