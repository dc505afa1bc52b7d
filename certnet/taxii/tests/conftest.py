"""A small network for the TAXII tests: two banks of the finance sector under two provincial CERTs, a
textile mill, people at each, and a TAXII client per person speaking through the Django test client."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import Any

import pytest
from django.test import Client

from certnet.accounts import services as accounts
from certnet.core.audit import SystemActor
from certnet.core.roles import Role
from certnet.registry import services as registry
from certnet.taxii import services
from certnet.taxii.models import Audience, TaxiiCollection

ACTOR = SystemActor("test")
TAXII = "application/taxii+json;version=2.1"


class TaxiiClient:
    """GET and POST under /taxii2/ as one user: HTTP Basic with the user name and an API token (as
    taxii2-client sends it), or a bearer token."""

    def __init__(self, username: str | None, token: str | None, *, bearer: bool = False) -> None:
        self.client = Client()
        self.headers: dict[str, str] = {"Accept": TAXII}
        if token and bearer:
            self.headers["Authorization"] = f"Bearer {token}"
        elif token:
            pair = base64.b64encode(f"{username}:{token}".encode()).decode()
            self.headers["Authorization"] = f"Basic {pair}"

    def get(self, path: str, params: dict[str, Any] | None = None, **headers: str) -> Any:
        return self.client.get("/taxii2/" + path, params or {}, headers={**self.headers, **headers})

    def post(self, path: str, body: Any, *, content_type: str = TAXII, **headers: str) -> Any:
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        return self.client.post(
            "/taxii2/" + path, data, content_type=content_type, headers={**self.headers, **headers}
        )


def stix_time(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def indicator(
    value: str = "203.0.113.7",
    *,
    stix_id: str | None = None,
    modified: dt.datetime | None = None,
    marking: str | None = None,
) -> dict[str, Any]:
    created = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    body: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": stix_id or f"indicator--{uuid.uuid4()}",
        "created": stix_time(created),
        "modified": stix_time(modified or created),
        "name": f"C2 {value}",
        "pattern": f"[ipv4-addr:value = '{value}']",
        "pattern_type": "stix",
        "valid_from": stix_time(created),
        "indicator_types": ["malicious-activity"],
    }
    if marking:
        body["object_marking_refs"] = [marking]
    return body


@pytest.fixture
def world(framework, make_user):
    """Organisations, people (with tokens) and the collections made from the registry."""

    def body(slug, parent, sector, province):
        return registry.create_organisation(
            actor=ACTOR,
            data=registry.OrganisationInput(
                slug=slug,
                name=slug.replace("-", " ").title(),
                kind="constituent",
                sector=sector,
                province=province,
                reports_to=parent,
                reports_since=dt.date(2024, 1, 1),
            ),
        )

    orgs = {
        **framework,
        "bank-lahore": body("bank-lahore", "punjab-cert", "finance", "punjab"),
        "bank-karachi": body("bank-karachi", "sindh-cert", "finance", "sindh"),
        "mill-multan": body("mill-multan", "punjab-cert", "textile", "punjab"),
    }
    people = {
        "bank-lahore": make_user(orgs["bank-lahore"], Role.ANALYST, username="bank-lahore.analyst"),
        "bank-lahore-viewer": make_user(orgs["bank-lahore"], Role.VIEWER, username="bank-lahore.viewer"),
        "bank-karachi": make_user(orgs["bank-karachi"], Role.ANALYST, username="bank-karachi.analyst"),
        "mill": make_user(orgs["mill-multan"], Role.ANALYST, username="mill.analyst"),
        "punjab": make_user(orgs["punjab-cert"], Role.ANALYST, username="punjab.analyst"),
        "sindh": make_user(orgs["sindh-cert"], Role.HANDLER, username="sindh.handler"),
        "ncert": make_user(orgs["ncert"], Role.ANALYST, username="ncert.analyst"),
        "admin": make_user(None, platform_admin=True, username="platform.admin"),
        "nobody": make_user(None, username="no.membership"),
    }
    tokens = {name: accounts.create_token(actor=ACTOR, user=user).secret for name, user in people.items()}
    services.ensure_collections()
    collections = {
        "community": TaxiiCollection.objects.get(audience=Audience.COMMUNITY),
        "finance": TaxiiCollection.objects.get(audience=Audience.SECTOR, target="finance"),
        "textile": TaxiiCollection.objects.get(audience=Audience.SECTOR, target="textile"),
        "punjab": TaxiiCollection.objects.get(audience=Audience.PROVINCE, target="punjab"),
    }
    return orgs, people, tokens, collections


@pytest.fixture
def taxii_as(world):
    _, people, tokens, _ = world

    def make(name: str | None, *, bearer: bool = False) -> TaxiiClient:
        if name is None:
            return TaxiiClient(None, None)
        return TaxiiClient(people[name].username, tokens[name], bearer=bearer)

    return make
