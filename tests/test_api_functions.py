"""Framework functions through the API: who held Government CERT / CII CERT when, and moving one."""

from __future__ import annotations

import pytest

from certnet.core.models import AuditEntry
from certnet.core.roles import Role
from certnet.registry.models import FunctionHolding


@pytest.mark.django_db
def test_functions_as_of_a_date(framework, make_user, api_as):
    client = api_as(make_user(framework["punjab-cert"], Role.VIEWER))
    today = client.get("/functions").json()
    assert sorted((h["function"], h["organisation"]["slug"], h["valid_from"]) for h in today) == [
        ("cii-cert", "ncert", "2023-07-01"),
        ("government-cert", "ncert", "2023-07-01"),
    ]
    assert client.get("/functions", at="2023-06-30").json() == []
    assert api_as(None).get("/functions").status_code == 401


@pytest.mark.django_db
def test_moving_a_function_through_the_api(framework, make_user, api_as):
    admin = api_as(make_user(platform_admin=True))
    manager = api_as(make_user(framework["ncert"], Role.ADMIN))
    body = {"organisation": "telecom-cert", "effective": "2027-01-01", "reference": "cabinet decision 12"}
    before = (FunctionHolding.objects.count(), AuditEntry.objects.count())
    refused = manager.post("/functions/cii-cert/assign", body)
    assert refused.status_code == 403
    assert (FunctionHolding.objects.count(), AuditEntry.objects.count()) == before
    moved = admin.post("/functions/cii-cert/assign", body)
    assert moved.status_code == 200, moved.content
    assert (moved.json()["organisation"]["slug"], moved.json()["valid_from"]) == (
        "telecom-cert",
        "2027-01-01",
    )
    holders = {
        h["function"]: h["organisation"]["slug"] for h in admin.get("/functions", at="2027-01-01").json()
    }
    assert holders == {"cii-cert": "telecom-cert", "government-cert": "ncert"}
    assert AuditEntry.objects.filter(action="registry.function.assign").count() == 3  # 2 from the load
    early = admin.post(
        "/functions/cii-cert/assign", {**body, "organisation": "ncert", "effective": "2026-12-01"}
    )
    assert early.status_code == 422
    assert "choose a later date" in early.json()["detail"]
    unknown = admin.post("/functions/no-such/assign", body)
    assert (unknown.status_code, unknown.json()["detail"]) == (422, "function: no function 'no-such'")


@pytest.mark.django_db
def test_organisation_list_queries_do_not_grow_with_the_page(
    framework, make_user, api_as, django_assert_max_num_queries
):
    client = api_as(make_user(framework["ncert"], Role.VIEWER))
    client.get("/organisations", limit=2)  # warm the hierarchy snapshot
    with django_assert_max_num_queries(12) as small:
        assert len(client.get("/organisations", limit=2).json()["items"]) == 2
    with django_assert_max_num_queries(12) as large:
        assert len(client.get("/organisations", limit=100).json()["items"]) == len(framework)
    assert len(large.captured_queries) == len(small.captured_queries)


@pytest.mark.django_db
def test_an_overlong_reference_is_422_naming_the_field(framework, make_user, api_as):
    admin = api_as(make_user(platform_admin=True))
    body = {"organisation": "telecom-cert", "effective": "2027-01-01", "reference": "r" * 301}
    response = admin.post("/functions/cii-cert/assign", body)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"loc": "reference", "msg": "is 301 characters long; the limit is 300"}
    ]
