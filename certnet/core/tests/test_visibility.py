"""The visibility rules (shared/docs/domain.md §5), proven on a probe record that uses every feature.

Hierarchy used throughout:   ncert ← punjab-cert ← alpha, beta      ncert ← sindh-cert ← gamma
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import AnonymousUser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certnet.accounts.models import Membership, User
from certnet.core.audit import SystemActor
from certnet.core.roles import Role
from certnet.core.tests.probe.models import ProbeRecord
from certnet.core.tlp import TLP
from certnet.core.visibility import Access, can, decide, facts_of, may, principal_for, spec_of
from certnet.registry import services
from certnet.registry.models import Organisation

ACTOR = SystemActor("test")
ORGS = ["ncert", "punjab-cert", "sindh-cert", "alpha", "beta", "gamma"]
PARENT = {
    "punjab-cert": "ncert",
    "sindh-cert": "ncert",
    "alpha": "punjab-cert",
    "beta": "punjab-cert",
    "gamma": "sindh-cert",
}
KIND = {"ncert": "national-cert", "punjab-cert": "provincial-cert", "sindh-cert": "provincial-cert"}


@pytest.fixture
def orgs(db):
    created: dict[str, Organisation] = {}
    for slug in ORGS:
        created[slug] = services.create_organisation(
            actor=ACTOR,
            data=services.OrganisationInput(
                slug=slug,
                name=slug.title(),
                kind=KIND.get(slug, "constituent"),
                reports_to=PARENT.get(slug),
                reports_since=dt.date(2020, 1, 1),
            ),
        )
    return created


def _user(name: str, memberships: dict[Organisation, Role] | None = None, admin: bool = False) -> User:
    user = User.objects.create(username=name, is_platform_admin=admin)
    for org, role in (memberships or {}).items():
        Membership.objects.create(user=user, organisation=org, role=role)
    return user


@pytest.fixture
def people(orgs):
    o = orgs
    return {
        "anonymous": AnonymousUser(),
        "no-membership": _user("loner"),
        "alpha-viewer": _user("av", {o["alpha"]: Role.VIEWER}),
        "alpha-author": _user("aa", {o["alpha"]: Role.ANALYST}),
        "alpha-manager": _user("am", {o["alpha"]: Role.MANAGER}),
        "beta-named": _user("bn", {o["beta"]: Role.ANALYST}),
        "punjab-handler": _user("ph", {o["punjab-cert"]: Role.HANDLER}),
        "ncert-viewer": _user("nv", {o["ncert"]: Role.VIEWER}),
        "sindh-analyst": _user("sa", {o["sindh-cert"]: Role.ANALYST}),
        "gamma-analyst": _user("ga", {o["gamma"]: Role.ANALYST}),
        "platform-admin": _user("admin", admin=True),
    }


F, S, N = Access.FULL, Access.STUB, Access.NONE
PEOPLE = [
    "anonymous",
    "no-membership",
    "alpha-viewer",
    "alpha-author",
    "alpha-manager",
    "beta-named",
    "punjab-handler",
    "ncert-viewer",
    "sindh-analyst",
    "gamma-analyst",
    "platform-admin",
]
# Expected access to a record owned by alpha, written by alpha-author, naming beta-named for RED.
EXPECTED = {
    TLP.CLEAR: [F, F, F, F, F, F, F, F, F, F, F],
    TLP.GREEN: [N, N, F, F, F, F, F, F, F, F, F],
    TLP.AMBER: [N, N, F, F, F, N, F, F, N, N, F],
    TLP.AMBER_STRICT: [N, N, F, F, F, N, F, F, N, N, F],
    TLP.RED: [N, N, S, F, S, F, S, S, N, N, S],
}
# May change it (own analyst+, handler+ in a CERT above, platform admin; only with full sight).
MAY_CHANGE = {
    TLP.CLEAR: [0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1],
    TLP.AMBER: [0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1],
    TLP.RED: [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
}


def _record(orgs, people, tlp: TLP) -> ProbeRecord:
    record = ProbeRecord.objects.create(
        title=str(tlp), owner=orgs["alpha"], tlp=tlp, author=people["alpha-author"]
    )
    record.named_users.add(people["beta-named"])
    return record


@pytest.mark.django_db
@pytest.mark.parametrize("tlp", list(EXPECTED))
def test_access_matrix(orgs, people, tlp):
    record = _record(orgs, people, tlp)
    for person, expected in zip(PEOPLE, EXPECTED[tlp], strict=True):
        user = people[person]
        full = ProbeRecord.objects.restrict(user, "view").filter(pk=record.pk).exists()
        stub = ProbeRecord.objects.restrict(user, "view_stub").filter(pk=record.pk).exists()
        got = F if full else (S if stub else N)
        assert got == expected, f"{person} at {tlp}: expected {expected.name}, got {got.name}"
        assert decide(principal_for(user), facts_of(record)) == expected, person


@pytest.mark.django_db
@pytest.mark.parametrize("tlp", list(MAY_CHANGE))
def test_change_matrix(orgs, people, tlp):
    record = _record(orgs, people, tlp)
    for person, expected in zip(PEOPLE, MAY_CHANGE[tlp], strict=True):
        user = people[person]
        in_sql = ProbeRecord.objects.restrict(user, "change").filter(pk=record.pk).exists()
        assert in_sql == bool(expected), f"{person} change at {tlp}"
        assert can(user, "change", record) == bool(expected), person


@pytest.mark.django_db
def test_sharing_admits_the_recipient_only(orgs, people):
    record = _record(orgs, people, TLP.AMBER)
    record.shared_with.add(orgs["gamma"])
    assert ProbeRecord.objects.restrict(people["gamma-analyst"]).filter(pk=record.pk).exists()
    # The recipient's own CERT is not a recipient.
    assert not ProbeRecord.objects.restrict(people["sindh-analyst"]).filter(pk=record.pk).exists()
    # Sharing does not grant change rights.
    assert not can(people["gamma-analyst"], "change", record)


@pytest.mark.django_db
def test_lists_return_each_record_once(orgs, people):
    record = _record(orgs, people, TLP.RED)
    record.named_users.add(people["alpha-author"], people["gamma-analyst"])
    record.shared_with.add(orgs["alpha"], orgs["beta"])
    assert list(ProbeRecord.objects.restrict(people["alpha-author"], "view")) == [record]
    assert ProbeRecord.objects.restrict(people["beta-named"], "view_stub").count() == 1


@pytest.mark.django_db
def test_inactive_user_sees_only_clear(orgs, people):
    record = _record(orgs, people, TLP.GREEN)
    user = people["alpha-manager"]
    user.is_active = False
    user.save()
    user = User.objects.get(pk=user.pk)
    assert not ProbeRecord.objects.restrict(user).filter(pk=record.pk).exists()


@pytest.mark.django_db
def test_hierarchy_changes_move_visibility(orgs, people):
    """A constituent that moves to Sindh leaves Punjab CERT's sight from the day it moves."""
    record = _record(orgs, people, TLP.AMBER)
    services.set_reporting_line(
        actor=ACTOR, organisation=orgs["alpha"], parent=orgs["sindh-cert"], effective=dt.date(2021, 1, 1)
    )
    assert not ProbeRecord.objects.restrict(people["punjab-handler"]).filter(pk=record.pk).exists()
    assert ProbeRecord.objects.restrict(people["sindh-analyst"]).filter(pk=record.pk).exists()


# --- property: the SQL filter and the Python rule agree, for any memberships and record ------------

ACTIONS = ["view", "view_stub", "change", "delete", "share"]


@pytest.mark.django_db
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    memberships=st.dictionaries(st.sampled_from(ORGS), st.sampled_from(list(Role)), max_size=3),
    admin=st.booleans(),
    active=st.booleans(),
    owner=st.sampled_from(ORGS),
    tlp=st.sampled_from(list(TLP)),
    is_author=st.booleans(),
    is_named=st.booleans(),
    shared=st.sets(st.sampled_from(ORGS), max_size=3),
)
def test_sql_and_python_agree(orgs, memberships, admin, active, owner, tlp, is_author, is_named, shared):
    user = User.objects.create(username="probe-user", is_platform_admin=admin, is_active=active)
    other = User.objects.create(username="probe-other")
    try:
        for slug, role in memberships.items():
            Membership.objects.create(user=user, organisation=orgs[slug], role=role)
        record = ProbeRecord.objects.create(
            title="p", owner=orgs[owner], tlp=tlp, author=user if is_author else other
        )
        if is_named:
            record.named_users.add(user)
        record.shared_with.add(*(orgs[s] for s in shared))
        principal = principal_for(user)
        facts = facts_of(record)
        for action in ACTIONS:
            in_sql = ProbeRecord.objects.restrict(user, action).filter(pk=record.pk).exists()
            in_python = may(principal, action, facts, spec_of(ProbeRecord))
            assert in_sql == in_python, f"{action}: sql={in_sql} python={in_python}"
    finally:
        ProbeRecord.objects.all().delete()
        User.objects.filter(username__startswith="probe-").delete()


@pytest.mark.django_db
def test_a_rule_can_exclude_platform_administrators(orgs, people):
    from certnet.core.visibility import ActionRule, VisibilitySpec

    record = _record(orgs, people, TLP.AMBER)
    own_duty = VisibilitySpec(
        owner="owner", actions={"file": ActionRule(own=Role.ANALYST, chain=None, platform_admins=False)}
    )
    facts = facts_of(record)
    assert not may(principal_for(people["platform-admin"]), "file", facts, own_duty)
    assert may(principal_for(people["alpha-author"]), "file", facts, own_duty)
    assert not may(principal_for(people["punjab-handler"]), "file", facts, own_duty)


@pytest.mark.django_db
@pytest.mark.parametrize("tlp", list(TLP))
def test_the_store_rule_agrees_with_the_record_rule_for_records_nobody_authored(orgs, people, tlp):
    from certnet.core.visibility import RecordFacts, readable_owners

    for person in PEOPLE:
        user = people[person]
        readable = readable_owners(user, tlp)
        for org in orgs.values():
            expected = decide(principal_for(user), RecordFacts(owner_id=org.pk, tlp=tlp)) == Access.FULL
            assert readable.admits(org.pk) == expected, f"{person} on {org.slug} at {tlp}"
