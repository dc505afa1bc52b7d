"""Fixtures shared by the cross-app tests."""

from __future__ import annotations

import datetime as dt

import pytest

from certnet.core.audit import SystemActor
from certnet.core.roles import Role
from certnet.intel.services.warninglists import load_warninglists
from certnet.registry import services as registry
from tests.feeds_support import feed_world, redis_server  # noqa: F401 (fixtures of the feed tests)

ACTOR = SystemActor("test")


@pytest.fixture
def intel_world(framework, make_user, api_as):
    """Punjab's lahore and multan, Sindh's karachi, people at every tier, and the shipped warninglists."""
    load_warninglists(actor=ACTOR)

    def constituent(slug, parent):
        return registry.create_organisation(
            actor=ACTOR,
            data=registry.OrganisationInput(
                slug=slug,
                name=slug.title(),
                kind="constituent",
                reports_to=parent,
                reports_since=dt.date(2024, 1, 1),
            ),
        )

    orgs = {
        **framework,
        "lahore": constituent("lahore", "punjab-cert"),
        "multan": constituent("multan", "punjab-cert"),
        "karachi": constituent("karachi", "sindh-cert"),
    }
    people = {
        "lahore": make_user(orgs["lahore"], Role.ANALYST, username="lahore.analyst"),
        "lahore-viewer": make_user(orgs["lahore"], Role.VIEWER, username="lahore.viewer"),
        "multan": make_user(orgs["multan"], Role.ANALYST, username="multan.analyst"),
        "karachi": make_user(orgs["karachi"], Role.ANALYST, username="karachi.analyst"),
        "punjab": make_user(orgs["punjab-cert"], Role.ANALYST, username="punjab.analyst"),
        "punjab-handler": make_user(orgs["punjab-cert"], Role.HANDLER, username="punjab.handler"),
        "sindh": make_user(orgs["sindh-cert"], Role.HANDLER, username="sindh.handler"),
        "ncert": make_user(orgs["ncert"], Role.ANALYST, username="ncert.analyst"),
        "admin": make_user(None, platform_admin=True, username="platform.admin"),
    }
    clients = {name: api_as(user) for name, user in people.items()}
    clients["anonymous"] = api_as(None)
    return orgs, people, clients
