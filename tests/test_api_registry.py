"""The registry HTTP API walked with people of every role and tier.

The organisations are the real Pakistan framework's, plus two constituents:

- alpha: a constituent (TLP:AMBER) reporting to punjab-cert since 2024-01-01; punjab-cert reports
  to ncert since 2025-01-01 (framework), so ncert is two levels above alpha.
- gamma: an unrelated constituent (TLP:AMBER) under sindh-cert since 2024-01-01.
- nadra: a CII operator (TLP:CLEAR, framework) reporting to ncert.

People: anonymous, gamma's manager (unrelated), alpha's viewer and manager, punjab-cert's handler
and manager (the CERT above alpha), ncert's handler and manager (two levels above alpha, directly
above nadra), nadra's viewer and manager, and a platform admin.

Reads of another organisation's AMBER records answer 404, never 403. Refused writes change nothing,
not even the audit log; successful writes append audit entries naming the action and the actor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db.models import Max

from certnet.accounts.models import User
from certnet.core.audit import SystemActor
from certnet.core.models import AuditEntry
from certnet.core.roles import Role
from certnet.registry import services
from certnet.registry.models import (
    AutonomousSystem,
    Contact,
    Designation,
    Domain,
    Netblock,
    Organisation,
    ReportingLine,
)
from certnet.registry.services import DesignationInput, OrganisationInput

SYSTEM = SystemActor("test")
PROBLEM = "application/problem+json"

ANON = "anonymous"
GAMMA = "gamma-manager"  # a manager, but of an unrelated constituent (gamma, under sindh-cert)
ALPHA_VIEWER = "alpha-viewer"
ALPHA_MANAGER = "alpha-manager"
PUNJAB_HANDLER = "punjab-handler"  # the CERT directly above alpha
PUNJAB_MANAGER = "punjab-manager"
NCERT_HANDLER = "ncert-handler"  # the national CERT: two levels above alpha, directly above nadra
NCERT_MANAGER = "ncert-manager"
NADRA_VIEWER = "nadra-viewer"
NADRA_MANAGER = "nadra-manager"
ADMIN = "platform-admin"

# person → (organisation slug, role); the platform admin has no membership.
PEOPLE: dict[str, tuple[str, Role] | None] = {
    GAMMA: ("gamma", Role.MANAGER),
    ALPHA_VIEWER: ("alpha", Role.VIEWER),
    ALPHA_MANAGER: ("alpha", Role.MANAGER),
    PUNJAB_HANDLER: ("punjab-cert", Role.HANDLER),
    PUNJAB_MANAGER: ("punjab-cert", Role.MANAGER),
    NCERT_HANDLER: ("ncert", Role.HANDLER),
    NCERT_MANAGER: ("ncert", Role.MANAGER),
    NADRA_VIEWER: ("nadra", Role.VIEWER),
    NADRA_MANAGER: ("nadra", Role.MANAGER),
    ADMIN: None,
}

D = dt.date


@dataclass
class World:
    orgs: dict[str, Organisation]
    users: dict[str, User]
    clients: dict[str, Any]
    records: dict[str, Any]

    def __call__(self, person: str) -> Any:
        return self.clients[person]

    def org(self, slug: str) -> Organisation:
        return Organisation.objects.get(slug=slug)


@pytest.fixture
def world(framework: dict[str, Organisation], make_user: Any, api_as: Any) -> World:
    alpha = services.create_organisation(
        actor=SYSTEM,
        data=OrganisationInput(
            slug="alpha",
            name="Alpha",
            kind="constituent",
            province="punjab",
            description="A constituent of Punjab CERT",
            reports_to="punjab-cert",
            reports_since=D(2024, 1, 1),
            tlp="amber",
        ),
    )
    gamma = services.create_organisation(
        actor=SYSTEM,
        data=OrganisationInput(
            slug="gamma",
            name="Gamma",
            kind="constituent",
            reports_to="sindh-cert",
            reports_since=D(2024, 1, 1),
            tlp="amber",
        ),
    )
    orgs = {**framework, "alpha": alpha, "gamma": gamma}
    records = {
        "alpha_netblock": services.add_netblock(
            actor=SYSTEM,
            organisation=alpha,
            cidr="10.20.0.0/16",
            valid_from=D(2024, 1, 1),
            description="alpha core",
        ).record,
        "gamma_netblock": services.add_netblock(
            actor=SYSTEM,
            organisation=gamma,
            cidr="10.30.0.0/16",
            valid_from=D(2024, 1, 1),
        ).record,
        "alpha_contact": services.add_contact(
            actor=SYSTEM,
            organisation=alpha,
            kind="abuse",
            name="Alpha abuse desk",
            email="abuse@alpha.example.pk",
        ),
        "alpha_asn": services.add_asn(
            actor=SYSTEM, organisation=alpha, asn=64500, name="ALPHA-AS", valid_from=D(2024, 1, 1)
        ).record,
        "alpha_domain": services.add_domain(
            actor=SYSTEM, organisation=alpha, name="alpha.example.pk", valid_from=D(2024, 1, 1)
        ).record,
    }
    users: dict[str, User] = {}
    for person, membership in PEOPLE.items():
        if membership is None:
            users[person] = make_user(username=person, platform_admin=True)
        else:
            slug, role = membership
            users[person] = make_user(orgs[slug], role, username=person)
    # Tokens are issued (and audited) here, before any test counts audit entries.
    clients = {person: api_as(user) for person, user in users.items()}
    clients[ANON] = api_as(None)
    return World(orgs, users, clients, records)


# --- helpers ------------------------------------------------------------------------------------


def last_seq() -> int:
    return AuditEntry.objects.aggregate(m=Max("seq"))["m"] or 0


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= body.keys()
    if status == 401:
        assert response["WWW-Authenticate"] == 'Bearer realm="certnet"'
    return body


def walk_writes(
    rows: list[tuple[str, int]],
    send: Callable[[str, int], Any],
    *,
    state: Callable[[], Any],
    actions: list[str] | dict[str, list[str]],
) -> dict[str, Any]:
    """Each person in turn: the status must be exactly as listed. A refused write must leave `state()`
    and the audit log as they were; a successful one appends exactly `actions`, by that person."""
    bodies = {}
    for i, (person, expected) in enumerate(rows):
        before_state, before_count, before_seq = state(), AuditEntry.objects.count(), last_seq()
        response = send(person, i)
        assert (person, response.status_code) == (person, expected), response.content
        if expected >= 400:
            assert_problem(response, expected)
            assert state() == before_state, f"{person}: a refused write changed the registry"
            assert AuditEntry.objects.count() == before_count, f"{person}: a refused write was audited"
        else:
            want = actions[person] if isinstance(actions, dict) else actions
            new = list(AuditEntry.objects.filter(seq__gt=before_seq).values_list("action", "actor_label"))
            assert new == [(action, person) for action in want]
            bodies[person] = response.json()
    return bodies


def ref(slug: str, name: str, kind: str) -> dict[str, str]:
    return {"slug": slug, "name": name, "kind": kind}


NCERT = ref("ncert", "National Computer Emergency Response Team", "national-cert")
PUNJAB = ref("punjab-cert", "Punjab CERT", "provincial-cert")
SINDH = ref("sindh-cert", "Sindh CERT", "provincial-cert")
KP = ref("kp-cert", "Khyber Pakhtunkhwa CERT", "provincial-cert")
ALPHA = ref("alpha", "Alpha", "constituent")
GAMMA_REF = ref("gamma", "Gamma", "constituent")


# --- reads: the status table --------------------------------------------------------------------

EVERYONE = [ALPHA_VIEWER, ALPHA_MANAGER, PUNJAB_HANDLER, PUNJAB_MANAGER, NCERT_MANAGER, GAMMA, ADMIN]


def table(default: int, **overrides: int) -> dict[str, int]:
    result = {ANON: 401, **dict.fromkeys(EVERYONE, default)}
    result.update({key.replace("_", "-"): value for key, value in overrides.items()})
    return result


ALPHA_AMBER = table(200, gamma_manager=404)  # owner and chain see it; gamma is told nothing
GAMMA_AMBER = table(
    404, gamma_manager=200, ncert_manager=200, platform_admin=200
)  # only gamma, its chain (sindh-cert, ncert) and the platform admin
CLEAR = table(200)
MISSING = table(404)


READS: list[tuple[str, dict[str, str], dict[str, int]]] = [
    ("/me", {}, CLEAR),
    ("/organisations/alpha", {}, ALPHA_AMBER),
    ("/organisations/alpha/hierarchy", {}, ALPHA_AMBER),
    ("/organisations/alpha/designations", {}, ALPHA_AMBER),
    ("/organisations/alpha/netblocks", {}, ALPHA_AMBER),
    ("/organisations/alpha/contacts", {}, ALPHA_AMBER),
    ("/organisations/gamma", {}, GAMMA_AMBER),
    ("/organisations/gamma/netblocks", {}, GAMMA_AMBER),
    ("/organisations/punjab-cert", {}, CLEAR),
    ("/organisations/punjab-cert/hierarchy", {}, CLEAR),
    ("/organisations/nadra/designations", {}, CLEAR),
    ("/organisations/no-such-org", {}, MISSING),
    ("/organisations/no-such-org/contacts", {}, MISSING),
    ("/organisations", {}, CLEAR),
    ("/netblocks", {}, CLEAR),
    ("/netblocks", {"organisation": "alpha"}, ALPHA_AMBER),
    ("/asns", {"organisation": "alpha"}, ALPHA_AMBER),
    ("/domains", {"organisation": "gamma"}, GAMMA_AMBER),
    ("/lookup", {"ip": "10.20.1.1"}, ALPHA_AMBER),  # alpha's AMBER netblock
    ("/lookup", {"ip": "10.30.1.1"}, GAMMA_AMBER),
    # ASNs and domains are GREEN, but the answer names their owner: only those who may see the
    # owner (alpha is AMBER) get it, so a lookup never reveals an organisation its TLP hides.
    ("/lookup", {"asn": "AS64500"}, ALPHA_AMBER),
    ("/lookup", {"domain": "www.alpha.example.pk"}, ALPHA_AMBER),
]


def test_read_status_by_person(world: World) -> None:
    """Every read endpoint, every person: the exact status; every refusal is problem+json."""
    actual, expected = {}, {}
    for path, params, statuses in READS:
        row = path + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")
        expected[row] = statuses
        actual[row] = {}
        for person in statuses:
            response = world(person).get(path, **params)
            actual[row][person] = response.status_code
            if response.status_code >= 400:
                assert_problem(response, response.status_code)
    assert actual == expected


def test_me_lists_exactly_the_callers_memberships(world: World) -> None:
    me = world(PUNJAB_MANAGER).get("/me").json()
    assert me == {
        "username": PUNJAB_MANAGER,
        "full_name": "",
        "email": "",
        "is_platform_admin": False,
        "memberships": [
            {"organisation": "punjab-cert", "organisation_name": "Punjab CERT", "role": "manager"}
        ],
    }
    admin = world(ADMIN).get("/me").json()
    assert (admin["is_platform_admin"], admin["memberships"]) == (True, [])


def test_owner_and_chain_see_alpha_exactly(world: World) -> None:
    netblock, contact = world.records["alpha_netblock"], world.records["alpha_contact"]
    expected_org = {
        "slug": "alpha",
        "name": "Alpha",
        "short_name": "",
        "kind": "constituent",
        "sector": "",
        "province": "punjab",
        "lead_department": "",
        "description": "A constituent of Punjab CERT",
        "website": "",
        "tlp": "amber",
        "reports_to": PUNJAB,
        "statuses": {},
    }
    expected_netblocks = [
        {
            "id": netblock.pk,
            "organisation": "alpha",
            "cidr": "10.20.0.0/16",
            "family": 4,
            "prefix_length": 16,
            "description": "alpha core",
            "valid_from": "2024-01-01",
            "valid_to": None,
            "tlp": "amber",
            "cii_system": None,
        }
    ]
    expected_contacts = [
        {
            "id": contact.pk,
            "kind": "abuse",
            "name": "Alpha abuse desk",
            "email": "abuse@alpha.example.pk",
            "phone": "",
            "pgp_fingerprint": "",
            "available_24_7": False,
            "tlp": "amber",
        }
    ]
    for person in [ALPHA_VIEWER, PUNJAB_HANDLER, NCERT_MANAGER, ADMIN]:
        client = world(person)
        assert client.get("/organisations/alpha").json() == expected_org, person
        assert client.get("/organisations/alpha/netblocks").json() == expected_netblocks, person
        assert client.get("/organisations/alpha/contacts").json() == expected_contacts, person
        assert client.get("/organisations/alpha/designations").json() == [], person


def test_contacts_list_hides_amber_contacts_from_outsiders(world: World) -> None:
    nadra = world.orgs["nadra"]  # TLP:CLEAR itself, so everyone may open it
    green = services.add_contact(
        actor=SYSTEM, organisation=nadra, kind="abuse", email="abuse@nadra.example.pk", tlp="green"
    )
    services.add_contact(
        actor=SYSTEM, organisation=nadra, kind="incident", email="soc@nadra.example.pk"
    )  # AMBER by default
    seen = {
        person: [c["email"] for c in world(person).get("/organisations/nadra/contacts").json()]
        for person in [GAMMA, PUNJAB_MANAGER, NADRA_VIEWER, NCERT_HANDLER, ADMIN]
    }
    both = ["abuse@nadra.example.pk", "soc@nadra.example.pk"]
    assert seen == {
        GAMMA: [green.email],
        PUNJAB_MANAGER: [green.email],  # not in nadra's chain
        NADRA_VIEWER: both,
        NCERT_HANDLER: both,
        ADMIN: both,
    }


# --- the paginated lists -----------------------------------------------------------------------


def test_organisation_list_by_person(world: World) -> None:
    # The 24 framework bodies are TLP:CLEAR; alpha and gamma are AMBER.
    assert len(world.orgs) == 26
    counts = {
        person: world(person).get("/organisations", limit=100).json()["count"]
        for person in [GAMMA, ALPHA_VIEWER, PUNJAB_HANDLER, NCERT_MANAGER, ADMIN]
    }
    assert counts == {GAMMA: 25, ALPHA_VIEWER: 25, PUNJAB_HANDLER: 25, NCERT_MANAGER: 26, ADMIN: 26}
    assert world(ANON).get("/organisations").status_code == 401
    slugs = [o["slug"] for o in world(GAMMA).get("/organisations", limit=100).json()["items"]]
    assert "alpha" not in slugs
    assert "gamma" in slugs


FILTERS: list[tuple[dict[str, Any], int, list[str]]] = [
    (
        {"kind": "provincial-cert"},
        6,
        ["ajk-cert", "balochistan-cert", "gb-cert", "kp-cert", "punjab-cert", "sindh-cert"],
    ),
    ({"kind": "constituent"}, 2, ["alpha", "gamma"]),
    ({"sector": "telecom"}, 2, ["pta", "telecom-cert"]),
    ({"province": "punjab"}, 2, ["alpha", "punjab-cert"]),
    # 6 provincial + 3 sectoral CERTs, and PTA's CII designation (pakistan.yaml) = 10
    (
        {"status": "summary-submitted"},
        10,
        [
            "ajk-cert",
            "balochistan-cert",
            "community-cert",
            "defence-cert",
            "gb-cert",
            "kp-cert",
            "pta",
            "punjab-cert",
            "sindh-cert",
            "telecom-cert",
        ],
    ),
    ({"status": "notified"}, 3, ["immpass", "fbr", "nadra"]),
    ({"status": "operational"}, 1, ["ncert"]),
    (
        {"q": "cert"},
        11,
        [
            "ajk-cert",
            "balochistan-cert",
            "cert-council",
            "community-cert",
            "defence-cert",
            "gb-cert",
            "kp-cert",
            "ncert",
            "punjab-cert",
            "sindh-cert",
            "telecom-cert",
        ],
    ),
    ({"q": "NADRA"}, 1, ["nadra"]),
    ({"kind": "provincial-cert", "limit": 2, "offset": 1}, 6, ["balochistan-cert", "gb-cert"]),
    ({"limit": 5, "offset": 24}, 26, ["sindh-cert", "telecom-cert"]),
]


def test_organisation_list_filters(world: World) -> None:
    """Counts and pages as the framework file has them (seen by ncert's manager, who sees all 26)."""
    actual, expected = {}, {}
    for params, count, slugs in FILTERS:
        row = "&".join(f"{k}={v}" for k, v in params.items())
        body = world(NCERT_MANAGER).get("/organisations", **params).json()
        actual[row] = (body["count"], [o["slug"] for o in body["items"]])
        expected[row] = (count, slugs)
    assert actual == expected


def test_netblock_list_shows_each_person_only_what_they_may_see(world: World) -> None:
    seen = {
        person: [n["cidr"] for n in world(person).get("/netblocks").json()["items"]]
        for person in [GAMMA, ALPHA_VIEWER, PUNJAB_MANAGER, NCERT_MANAGER, ADMIN]
    }
    assert seen == {
        GAMMA: ["10.30.0.0/16"],
        ALPHA_VIEWER: ["10.20.0.0/16"],
        PUNJAB_MANAGER: ["10.20.0.0/16"],
        NCERT_MANAGER: ["10.20.0.0/16", "10.30.0.0/16"],
        ADMIN: ["10.20.0.0/16", "10.30.0.0/16"],
    }
    assert world(GAMMA).get("/netblocks", organisation="alpha").status_code == 404
    contains = world(NCERT_MANAGER).get("/netblocks", contains="10.20.3.4").json()
    assert [n["cidr"] for n in contains["items"]] == ["10.20.0.0/16"]


def test_asn_and_domain_lists(world: World) -> None:
    # alpha's ASN is GREEN, but alpha itself is AMBER: a list never names an owner the caller cannot see.
    assert world(GAMMA).get("/asns").json() == {"items": [], "count": 0}
    asns = world(PUNJAB_HANDLER).get("/asns").json()
    assert [(a["asn"], a["organisation"]) for a in asns["items"]] == [(64500, "alpha")]
    domains = world(NCERT_MANAGER).get("/domains", at="2023-06-01").json()
    assert domains == {"items": [], "count": 0}
    assert world(GAMMA).get("/domains", organisation="alpha").status_code == 404


# --- writes: the status table -------------------------------------------------------------------

# Change needs a manager in the organisation itself or in a CERT above it (REGISTRY_ACTIONS).
WRITE_ALPHA = [
    (ANON, 401),
    (GAMMA, 404),  # may not even see alpha
    (ALPHA_VIEWER, 403),
    (PUNJAB_HANDLER, 403),  # the CERT above, but only a handler
    (ALPHA_MANAGER, 201),
    (PUNJAB_MANAGER, 201),
    (NCERT_MANAGER, 201),  # two levels up
    (ADMIN, 201),
]


@pytest.mark.parametrize(
    ("path", "payload", "model", "action"),
    [
        (
            "/organisations/alpha/netblocks",
            lambda i: {"cidr": f"10.{40 + i}.0.0/16"},
            Netblock,
            "registry.netblock.add",
        ),
        (
            "/organisations/alpha/asns",
            lambda i: {"asn": f"AS{64600 + i}"},
            AutonomousSystem,
            "registry.asn.add",
        ),
        (
            "/organisations/alpha/domains",
            lambda i: {"name": f"alpha{i}.example.pk"},
            Domain,
            "registry.domain.add",
        ),
        (
            "/organisations/alpha/contacts",
            lambda i: {"kind": "incident", "email": f"soc{i}@alpha.example.pk"},
            Contact,
            "registry.contact.add",
        ),
    ],
    ids=["netblock", "asn", "domain", "contact"],
)
def test_add_resource_by_person(
    world: World, path: str, payload: Callable[[int], dict[str, Any]], model: Any, action: str
) -> None:
    alpha = world.orgs["alpha"]
    before = model.objects.filter(organisation=alpha).count()
    bodies = walk_writes(
        WRITE_ALPHA,
        lambda person, i: world(person).post(path, payload(i)),
        state=lambda: model.objects.count(),
        actions=[action],
    )
    assert model.objects.filter(organisation=alpha).count() == before + 4
    for person, body in bodies.items():
        record = model.objects.get(pk=body["id"])
        assert record.organisation_id == alpha.pk, person
        if model is not Contact:
            assert body["overlaps"] == [], person


def test_added_netblocks_are_amber_and_listed_for_the_owner(world: World) -> None:
    for person, cidr in [(ALPHA_MANAGER, "10.21.0.0/16"), (NCERT_MANAGER, "2001:db8:21::/48")]:
        response = world(person).post("/organisations/alpha/netblocks", {"cidr": cidr})
        assert response.status_code == 201
    listed = world(ALPHA_VIEWER).get("/organisations/alpha/netblocks").json()
    assert [(n["cidr"], n["family"], n["tlp"]) for n in listed] == [
        ("10.20.0.0/16", 4, "amber"),
        ("10.21.0.0/16", 4, "amber"),
        ("2001:db8:21::/48", 6, "amber"),
    ]


def test_update_organisation_by_person(world: World) -> None:
    def state() -> dict[str, Any]:
        return Organisation.objects.filter(slug="alpha").values().get()

    walk_writes(
        [(person, 200 if status == 201 else status) for person, status in WRITE_ALPHA],
        lambda person, i: world(person).patch("/organisations/alpha", {"description": f"edit {i}"}),
        state=state,
        actions=["registry.organisation.update"],
    )
    assert world.org("alpha").description == "edit 7"  # the platform admin's, the last one allowed
    entry = AuditEntry.objects.filter(action="registry.organisation.update").last()
    assert entry.data == {"before": {"description": "edit 6"}, "after": {"description": "edit 7"}}


def test_only_the_owner_may_lower_tlp(world: World) -> None:
    # The CERT above may change alpha, and raise its TLP, but not lower it.
    walk_writes(
        [(PUNJAB_MANAGER, 403), (NCERT_MANAGER, 403), (ALPHA_MANAGER, 200)],
        lambda person, i: world(person).patch("/organisations/alpha", {"tlp": "green"}),
        state=lambda: world.org("alpha").tlp,
        actions=["registry.organisation.update"],
    )
    # GREEN: now every member of any organisation sees alpha, gamma included.
    assert world(GAMMA).get("/organisations/alpha").json()["tlp"] == "green"
    response = world(PUNJAB_MANAGER).patch("/organisations/alpha", {"tlp": "amber+strict"})
    assert (response.status_code, response.json()["tlp"]) == (200, "amber+strict")
    assert world(GAMMA).get("/organisations/alpha").status_code == 404


def create_unit(world: World, person: str, i: int, tlp: str = "amber", parent: str = "alpha") -> Any:
    return world(person).post(
        "/organisations",
        {
            "slug": f"unit-{i}",
            "name": f"Unit {i}",
            "kind": "constituent",
            "reports_to": parent,
            "tlp": tlp,
        },
    )


def organisations_and_lines() -> tuple[int, int]:
    return Organisation.objects.count(), ReportingLine.objects.count()


def test_create_organisation_refusals_and_admin(world: World) -> None:
    bodies = walk_writes(
        # gamma may not see alpha: its parent is "no organisation", exactly as a missing one (422).
        [(ANON, 401), (GAMMA, 422), (ALPHA_VIEWER, 403), (PUNJAB_HANDLER, 403), (ADMIN, 201)],
        lambda person, i: create_unit(world, person, i),
        state=organisations_and_lines,
        actions=["registry.organisation.create", "registry.reporting_line.set"],
    )
    assert {k: bodies[ADMIN][k] for k in ("slug", "kind", "tlp", "reports_to")} == {
        "slug": "unit-4",
        "kind": "constituent",
        "tlp": "amber",
        "reports_to": ALPHA,
    }
    hierarchy = world(PUNJAB_HANDLER).get("/organisations/alpha/hierarchy").json()
    assert (hierarchy["chain"], hierarchy["constituents"]) == (
        [PUNJAB, NCERT],
        [ref("unit-4", "Unit 4", "constituent")],
    )


CREATE_BUG = (
    "BUG: certnet/registry/services.py create_organisation (line ~165) calls "
    "set_reporting_line(actor=<the user>), which re-checks _require(actor, 'change', organisation) "
    "(line ~227) on the organisation it has just saved; nobody but a platform admin can hold that "
    "right before the new body's reporting line exists (for an AMBER one they cannot even see it), so "
    "every manager of the parent or of a CERT above gets 404 (AMBER) or 403 (CLEAR/GREEN) and nothing "
    "is created; they should get 201 (_require_manager_above already allowed them; docs/api.md: "
    "'register one (platform admins; managers of the CERT it reports to)')"
)


@pytest.mark.parametrize("tlp", ["amber", "green"])
def test_managers_of_the_cert_above_may_create_organisations(world: World, tlp: str) -> None:
    walk_writes(
        [(PUNJAB_MANAGER, 201), (NCERT_MANAGER, 201)],  # the CERT it reports to, and the one above
        lambda person, i: create_unit(world, person, i, tlp, parent="punjab-cert"),
        state=organisations_and_lines,
        actions=["registry.organisation.create", "registry.reporting_line.set"],
    )


def test_top_level_organisations_are_for_platform_admins(world: World) -> None:
    walk_writes(
        [(NCERT_MANAGER, 403), (ADMIN, 201)],
        lambda person, i: world(person).post(
            "/organisations", {"slug": f"top-{i}", "name": "Top", "kind": "ministry"}
        ),
        state=lambda: Organisation.objects.count(),
        actions=["registry.organisation.create"],
    )
    assert world(ADMIN).get("/organisations/top-1/hierarchy").json()["chain"] == []


def test_slug_conflict_does_not_reveal_invisible_organisations(world: World) -> None:
    # alpha's viewer may not create anything under sindh-cert; gamma is invisible to them.
    def attempt(slug: str) -> int:
        return (
            world(ALPHA_VIEWER)
            .post(
                "/organisations",
                {"slug": slug, "name": "X", "kind": "constituent", "reports_to": "sindh-cert"},
            )
            .status_code
        )

    assert attempt("gamma") == attempt("free-slug") == 403


def test_invisible_parent_answers_like_a_missing_one(world: World) -> None:
    def attempt(parent: str) -> int:
        return (
            world(GAMMA)
            .post(
                "/organisations",
                {"slug": "gamma-unit", "name": "X", "kind": "constituent", "reports_to": parent},
            )
            .status_code
        )

    assert attempt("alpha") == attempt("no-such-org")


def test_retire_netblock_by_person(world: World) -> None:
    alpha = world.orgs["alpha"]
    ids = [
        services.add_netblock(
            actor=SYSTEM, organisation=alpha, cidr=f"10.{60 + i}.0.0/16", valid_from=D(2024, 1, 1)
        ).record.pk
        for i in range(len(WRITE_ALPHA))
    ]
    bodies = walk_writes(
        [(person, 200 if status == 201 else status) for person, status in WRITE_ALPHA],
        lambda person, i: world(person).post(f"/netblocks/{ids[i]}/retire", {"valid_to": "2025-01-01"}),
        state=lambda: Netblock.objects.filter(valid_to__isnull=False).count(),
        actions=["registry.netblock.retire"],
    )
    assert [(b["cidr"], b["valid_to"]) for b in bodies.values()] == [
        (f"10.{60 + i}.0.0/16", "2025-01-01") for i in range(4, 8)
    ]
    again = world(ADMIN).post(f"/netblocks/{ids[7]}/retire", {"valid_to": "2025-02-01"})
    assert_problem(again, 409)


def test_reporting_line_change_by_person(world: World) -> None:
    def state() -> list[tuple[Any, ...]]:
        return list(ReportingLine.objects.values_list("organisation", "parent", "valid_from", "valid_to"))

    moves = {NCERT_MANAGER: ("sindh-cert", "2025-03-01"), ADMIN: ("kp-cert", "2025-04-01")}

    def send(person: str, i: int) -> Any:
        parent, effective = moves.get(person, ("sindh-cert", "2025-03-01"))
        return world(person).post(
            "/organisations/alpha/reporting-line",
            {"parent": parent, "effective": effective, "reference": f"move {i}"},
        )

    bodies = walk_writes(
        [
            (ANON, 401),
            (GAMMA, 404),
            (ALPHA_VIEWER, 403),
            (ALPHA_MANAGER, 403),  # may change alpha, not sindh-cert
            (PUNJAB_HANDLER, 403),
            (PUNJAB_MANAGER, 403),  # may not hand alpha over to a CERT it does not manage
            (NCERT_MANAGER, 200),
            (ADMIN, 200),
        ],
        send,
        state=state,
        actions=["registry.reporting_line.set"],
    )
    assert bodies[NCERT_MANAGER] == {
        "organisation": ALPHA,
        "at": "2025-03-01",
        "chain": [SINDH, NCERT],
        "constituents": [],
    }
    assert bodies[ADMIN]["chain"] == [KP, NCERT]
    lines = list(
        ReportingLine.objects.filter(organisation__slug="alpha")
        .order_by("valid_from")
        .values_list("parent__slug", "valid_from", "valid_to")
    )
    assert lines == [
        ("punjab-cert", D(2024, 1, 1), D(2025, 3, 1)),
        ("sindh-cert", D(2025, 3, 1), D(2025, 4, 1)),
        ("kp-cert", D(2025, 4, 1), None),
    ]
    # Moved away: the punjab-cert people no longer see alpha at all.
    assert world(PUNJAB_MANAGER).get("/organisations/alpha").status_code == 404


def test_reporting_cycles_and_self_reporting_are_refused(world: World) -> None:
    cases = [
        ("ncert", "punjab-cert", "this would make a reporting cycle: ncert → punjab-cert → ncert"),
        ("ncert", "alpha", "this would make a reporting cycle: ncert → alpha → punjab-cert → ncert"),
        ("alpha", "alpha", "alpha cannot report to itself"),
    ]
    for slug, parent, message in cases:
        before = (ReportingLine.objects.count(), AuditEntry.objects.count())
        response = world(ADMIN).post(
            f"/organisations/{slug}/reporting-line", {"parent": parent, "effective": "2025-02-01"}
        )
        body = assert_problem(response, 422)
        assert body["detail"] == f"reports_to: {message}"
        assert body["errors"] == [{"loc": "reports_to", "msg": message}]
        assert (ReportingLine.objects.count(), AuditEntry.objects.count()) == before, slug


# --- hierarchy ----------------------------------------------------------------------------------


def test_hierarchy_now_and_before_the_reporting_lines(world: World) -> None:
    client = world(ADMIN)
    national = client.get("/organisations/ncert/hierarchy").json()
    assert national["chain"] == []
    assert [o["slug"] for o in national["constituents"]] == [  # by name
        "ajk-cert",
        "balochistan-cert",
        "community-cert",
        "defence-cert",
        "immpass",
        "fbr",
        "gb-cert",
        "kp-cert",
        "nadra",
        "punjab-cert",
        "sindh-cert",
        "telecom-cert",
    ]
    # Every framework reporting line starts on 2025-01-01.
    assert client.get("/organisations/ncert/hierarchy", at="2024-12-31").json() == {
        "organisation": NCERT,
        "at": "2024-12-31",
        "chain": [],
        "constituents": [],
    }
    assert client.get("/organisations/alpha/hierarchy", at="2024-06-01").json() == {
        "organisation": ALPHA,
        "at": "2024-06-01",
        "chain": [PUNJAB],
        "constituents": [],
    }
    assert client.get("/organisations/alpha/hierarchy", at="2025-01-01").json()["chain"] == [PUNJAB, NCERT]
    # Before alpha's own line existed (2024-01-01) it reported to nobody.
    assert client.get("/organisations/alpha/hierarchy", at="2023-06-01").json()["chain"] == []
    assert client.get("/organisations/punjab-cert/hierarchy", at="2023-06-01").json()["constituents"] == []
    assert client.get("/organisations/pta/hierarchy").json()["chain"] == [
        ref("telecom-cert", "Telecom CERT", "sectoral-cert"),
        NCERT,
    ]


def test_hierarchy_constituents_respect_visibility(world: World) -> None:
    def constituents(person: str) -> list[str]:
        body = world(person).get("/organisations/punjab-cert/hierarchy").json()
        return [o["slug"] for o in body["constituents"]]

    assert constituents(PUNJAB_HANDLER) == ["alpha"]
    assert constituents(GAMMA) == []  # alpha is AMBER and not gamma's


# --- designations -------------------------------------------------------------------------------


def test_propose_designation_by_person(world: World) -> None:
    target = {NCERT_MANAGER: "gamma", ADMIN: "moitt"}  # one designation per organisation and kind
    bodies = walk_writes(
        [
            (ANON, 401),
            (GAMMA, 404),
            (ALPHA_VIEWER, 403),
            (ALPHA_MANAGER, 403),  # never the body itself
            (PUNJAB_HANDLER, 403),
            (PUNJAB_MANAGER, 201),
            (NCERT_MANAGER, 201),
            (ADMIN, 201),  # moitt reports to nobody: only a platform admin
        ],
        lambda person, i: world(person).post(
            f"/organisations/{target.get(person, 'alpha')}/designations",
            {"kind": "cii", "scope": f"systems {i}", "proposed_on": "2025-02-01"},
        ),
        state=lambda: (Designation.objects.count(), AuditEntry.objects.count()),
        actions=["registry.designation.propose"],
    )
    for person, body in bodies.items():
        assert (body["kind"], body["status"]) == ("cii", "proposed"), person
        assert [(e["event"], e["to_status"], e["actor"]) for e in body["events"]] == [
            ("propose", "proposed", person)
        ]
    # A body never proposes its own designation; that refusal comes before any existence check.
    assert world(GAMMA).post("/organisations/gamma/designations", {"kind": "cii"}).status_code == 403


def test_transition_designation_by_person(world: World) -> None:
    designation = services.propose_designation(
        actor=SYSTEM, organisation=world.orgs["alpha"], data=DesignationInput(kind="cii")
    )
    following = {
        "proposed": "recommended",
        "recommended": "summary-submitted",
        "summary-submitted": "approved",
    }

    def send(person: str, i: int) -> Any:
        current = Designation.objects.get(pk=designation.pk).status
        return world(person).post(
            "/organisations/alpha/designations/cii/transitions",
            {
                "to_status": following[current],
                "reference": "CC-2025/7",
            },
        )

    def state() -> tuple[str, int]:
        current = Designation.objects.get(pk=designation.pk)
        return current.status, current.events.count()

    walk_writes(
        [
            (ANON, 401),
            (GAMMA, 404),
            (ALPHA_VIEWER, 403),
            (ALPHA_MANAGER, 403),  # the body's own manager: never
            (PUNJAB_HANDLER, 403),
            (PUNJAB_MANAGER, 200),
            (NCERT_MANAGER, 200),
            (ADMIN, 200),
        ],
        send,
        state=state,
        actions={
            PUNJAB_MANAGER: ["registry.designation.recommend"],
            NCERT_MANAGER: ["registry.designation.submit-summary"],
            ADMIN: ["registry.designation.approve"],
        },
    )
    assert state() == ("approved", 4)


def test_designation_lifecycle_of_a_new_provincial_cert(world: World, make_user: Any, api_as: Any) -> None:
    national = world(NCERT_MANAGER)
    # Created by the system: a manager of ncert cannot create it through the API (CREATE_BUG).
    services.create_organisation(
        actor=SYSTEM,
        data=OrganisationInput(
            slug="ict-cert",
            name="Islamabad Capital Territory CERT",
            kind="provincial-cert",
            province="islamabad",
            reports_to="ncert",
            reports_since=D(2025, 1, 1),
            tlp="clear",
        ),
    )
    own = api_as(make_user(world.org("ict-cert"), Role.MANAGER, username="ict-manager"))
    path = "/organisations/ict-cert/designations"

    def designation() -> Designation:
        return Designation.objects.get(organisation__slug="ict-cert", kind="cert")

    assert_problem(own.post(path, {"kind": "cert"}), 403)
    assert not Designation.objects.filter(organisation__slug="ict-cert").exists()
    proposed = national.post(
        path,
        {
            "kind": "cert",
            "scope": "Provincial CERT",
            "designating_authority": "moitt",
            "legal_basis": "CERT Rules 2023, rule 4(2)",
            "proposed_on": "2025-02-01",
        },
    )
    assert proposed.status_code == 201
    assert {k: proposed.json()[k] for k in ("kind", "status", "designating_authority")} == {
        "kind": "cert",
        "status": "proposed",
        "designating_authority": "moitt",
    }
    assert_problem(national.post(path, {"kind": "cert"}), 409)  # one per kind

    step = path + "/cert/transitions"

    def refused(status: int, body: dict[str, Any], by: Any = national) -> dict[str, Any]:
        before = (designation().status, designation().events.count(), AuditEntry.objects.count())
        problem = assert_problem(by.post(step, body), status)
        assert (designation().status, designation().events.count(), AuditEntry.objects.count()) == before
        return problem

    def moves(body: dict[str, Any], action: str) -> dict[str, Any]:
        seq = last_seq()
        response = national.post(step, body)
        assert response.status_code == 200, response.content
        assert list(AuditEntry.objects.filter(seq__gt=seq).values_list("action", flat=True)) == [action]
        return response.json()

    for jump in ["summary-submitted", "approved", "notified", "operational", "suspended"]:
        problem = refused(409, {"to_status": jump, "reference": "x", "gazette_reference": "y"})
        assert problem["title"] == "Illegal transition"
        assert problem["detail"] == (
            f"a designation that is proposed cannot become {jump}; it can become: recommended, dissolved"
        )
    assert refused(422, {"to_status": "recommended"})["errors"] == [
        {
            "loc": "reference",
            "msg": "becoming recommended must cite the CERT Council's recommendation "
            "(meeting or minute reference)",
        }
    ]
    assert refused(422, {"to_status": "promoted"})["errors"][0]["loc"] == "status"
    refused(403, {"to_status": "recommended", "reference": "CC-12"}, by=own)  # never the body itself
    moves(
        {"to_status": "recommended", "reference": "CC-12", "effective_on": "2025-03-01"},
        "registry.designation.recommend",
    )
    refused(409, {"to_status": "approved"})
    refused(422, {"to_status": "summary-submitted", "effective_on": "2025-02-28"})  # before last step
    moves(
        {"to_status": "summary-submitted", "effective_on": "2025-04-01"},
        "registry.designation.submit-summary",
    )
    moves({"to_status": "approved", "effective_on": "2025-05-01"}, "registry.designation.approve")
    refused(409, {"to_status": "operational"})
    assert refused(422, {"to_status": "notified"})["errors"][0]["loc"] == "gazette_reference"
    notified = moves(
        {"to_status": "notified", "gazette_reference": "S.R.O. 1234(I)/2025", "effective_on": "2025-06-01"},
        "registry.designation.notify",
    )
    assert (notified["gazette_reference"], notified["notified_on"]) == ("S.R.O. 1234(I)/2025", "2025-06-01")
    final = moves(
        {"to_status": "operational", "effective_on": "2025-07-01"}, "registry.designation.make-operational"
    )
    assert [(e["event"], e["from_status"], e["to_status"], e["effective_on"]) for e in final["events"]] == [
        ("propose", "", "proposed", "2025-02-01"),
        ("recommend", "proposed", "recommended", "2025-03-01"),
        ("submit-summary", "recommended", "summary-submitted", "2025-04-01"),
        ("approve", "summary-submitted", "approved", "2025-05-01"),
        ("notify", "approved", "notified", "2025-06-01"),
        ("make-operational", "notified", "operational", "2025-07-01"),
    ]
    refused(409, {"to_status": "proposed"})
    assert national.get("/organisations/ict-cert").json()["statuses"] == {"cert": "operational"}
    listed = own.get("/organisations/ict-cert/designations").json()
    assert [(d["kind"], d["status"]) for d in listed] == [("cert", "operational")]


def test_cert_designation_needs_a_cert(world: World) -> None:
    before = (Designation.objects.count(), AuditEntry.objects.count())
    response = world(PUNJAB_MANAGER).post("/organisations/alpha/designations", {"kind": "cert"})
    assert assert_problem(response, 422)["errors"] == [
        {"loc": "kind", "msg": "alpha is a Constituent, not a CERT"}
    ]
    assert (Designation.objects.count(), AuditEntry.objects.count()) == before


def test_cii_review_by_person(world: World) -> None:
    def state() -> tuple[Any, ...]:
        d = Designation.objects.get(organisation__slug="nadra", kind="cii")
        return d.review_due, d.grade, d.status, d.events.count()

    assert state() == (D(2026, 1, 1), "", "notified", 2)  # proposed, then recorded as notified
    reviews = {
        NCERT_MANAGER: {"reviewed_on": "2025-12-15", "reference": "review 2025"},
        ADMIN: {"reviewed_on": "2026-01-10", "grade": "A", "next_review_due": "2026-07-01"},
    }
    bodies = walk_writes(
        [
            (ANON, 401),
            (GAMMA, 403),  # nadra is TLP:CLEAR: visible, so 403 rather than 404
            (NADRA_VIEWER, 403),
            (NADRA_MANAGER, 403),  # never the body itself
            (NCERT_HANDLER, 403),
            (PUNJAB_MANAGER, 403),  # a CERT, but not above nadra
            (NCERT_MANAGER, 200),
            (ADMIN, 200),
        ],
        lambda person, i: world(person).post(
            "/organisations/nadra/designations/cii/reviews",
            reviews.get(person, {"reviewed_on": "2025-12-01"}),
        ),
        state=state,
        actions=["registry.designation.review"],
    )
    assert (bodies[NCERT_MANAGER]["review_due"], bodies[NCERT_MANAGER]["status"]) == (
        "2026-12-15",
        "notified",
    )
    assert (bodies[ADMIN]["review_due"], bodies[ADMIN]["grade"]) == ("2026-07-01", "A")
    assert state() == (D(2026, 7, 1), "A", "notified", 4)
    assert [e["event"] for e in bodies[ADMIN]["events"]] == ["propose", "record", "review", "review"]


def test_cii_review_refusals(world: World) -> None:
    cases = [
        # PTA's CII designation is only summary-submitted: not in force, nothing to review.
        ("/organisations/pta/designations/cii/reviews", {"reviewed_on": "2025-12-01"}, 409),
        # Only CII designations are reviewed annually.
        ("/organisations/punjab-cert/designations/cert/reviews", {"reviewed_on": "2025-12-01"}, 422),
        (
            "/organisations/nadra/designations/cii/reviews",
            {"reviewed_on": "2025-12-01", "next_review_due": "2025-11-01"},
            422,
        ),
        ("/organisations/nadra/designations/cert/reviews", {"reviewed_on": "2025-12-01"}, 404),
    ]
    for path, body, status in cases:
        before = (
            list(Designation.objects.values_list("review_due", "grade", "status")),
            AuditEntry.objects.count(),
        )
        assert_problem(world(NCERT_MANAGER).post(path, body), status)
        after = (
            list(Designation.objects.values_list("review_due", "grade", "status")),
            AuditEntry.objects.count(),
        )
        assert after == before, path


# --- netblock overlaps --------------------------------------------------------------------------


def test_netblock_overlap_duplicate_and_same_org_overlap(world: World) -> None:
    client = world(NCERT_MANAGER)
    inside = client.post("/organisations/gamma/netblocks", {"cidr": "10.20.5.0/24"})
    assert inside.status_code == 201
    assert inside.json()["overlaps"] == ["10.20.0.0/16 (alpha)"]
    assert Netblock.objects.get(pk=inside.json()["id"]).organisation.slug == "gamma"

    def refused(cidr: str, slug: str) -> str:
        before = (Netblock.objects.count(), AuditEntry.objects.count())
        body = assert_problem(client.post(f"/organisations/{slug}/netblocks", {"cidr": cidr}), 409)
        assert (Netblock.objects.count(), AuditEntry.objects.count()) == before
        return str(body["detail"])

    # Overlapping another organisation is allowed; overlapping one's own blocks is not.
    assert refused("10.0.0.0/8", "gamma") == (
        "10.0.0.0/8 overlaps 10.20.5.0/24, 10.30.0.0/16, already registered to gamma"
    )

    assert refused("10.20.0.0/16", "gamma") == "10.20.0.0/16 is already registered: 10.20.0.0/16 (alpha)"
    assert refused("10.20.0.0/16", "alpha") == "10.20.0.0/16 is already registered: 10.20.0.0/16 (alpha)"
    assert refused("10.20.7.0/24", "alpha") == (
        "10.20.7.0/24 overlaps 10.20.0.0/16, already registered to alpha"
    )
    assert refused("10.30.0.0/17", "gamma") == (
        "10.30.0.0/17 overlaps 10.30.0.0/16, already registered to gamma"
    )
    # Retired resources do not conflict: the block may pass to another owner from its end date.
    retired = world(ADMIN).post(
        f"/netblocks/{world.records['alpha_netblock'].pk}/retire", {"valid_to": "2025-06-01"}
    )
    assert retired.status_code == 200
    moved = client.post(
        "/organisations/sindh-cert/netblocks", {"cidr": "10.20.0.0/16", "valid_from": "2025-06-01"}
    )
    assert (moved.status_code, moved.json()["overlaps"]) == (201, ["10.20.5.0/24 (gamma)"])


# --- lookup -------------------------------------------------------------------------------------


def test_lookup_follows_a_netblock_that_changed_owner(world: World) -> None:
    alpha, gamma = world.orgs["alpha"], world.orgs["gamma"]
    first = services.add_netblock(
        actor=SYSTEM, organisation=alpha, cidr="198.51.100.0/24", valid_from=D(2024, 1, 1)
    ).record
    services.retire_resource(actor=SYSTEM, record=first, valid_to=D(2025, 6, 1))
    services.add_netblock(actor=SYSTEM, organisation=gamma, cidr="198.51.100.0/24", valid_from=D(2025, 6, 1))

    def answer(person: str, at: str) -> Any:
        return world(person).get("/lookup", ip="198.51.100.7", at=at)

    def result(at: str, owner: dict[str, str], chain: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "query": "198.51.100.7",
            "kind": "ip",
            "at": at,
            "matched": "198.51.100.0/24",
            "organisation": owner,
            "chain": chain,
        }

    assert answer(ADMIN, "2025-01-01").json() == result("2025-01-01", ALPHA, [PUNJAB, NCERT])
    assert answer(ADMIN, "2024-06-01").json() == result("2024-06-01", ALPHA, [PUNJAB])  # before punjab→ncert
    assert answer(ADMIN, "2025-06-01").json() == result("2025-06-01", GAMMA_REF, [SINDH, NCERT])
    assert answer(ADMIN, "2025-07-01").json() == result("2025-07-01", GAMMA_REF, [SINDH, NCERT])
    assert_problem(answer(ADMIN, "2023-12-31"), 404)
    # Each owner's people see their own period only.
    statuses = {
        (person, at): answer(person, at).status_code
        for person in [ALPHA_VIEWER, GAMMA, NCERT_MANAGER]
        for at in ["2025-01-01", "2025-07-01"]
    }
    assert statuses == {
        (ALPHA_VIEWER, "2025-01-01"): 200,
        (ALPHA_VIEWER, "2025-07-01"): 404,
        (GAMMA, "2025-01-01"): 404,
        (GAMMA, "2025-07-01"): 200,
        (NCERT_MANAGER, "2025-01-01"): 200,
        (NCERT_MANAGER, "2025-07-01"): 200,
    }


def test_lookup_of_an_amber_netblock_is_404_like_an_unregistered_address(world: World) -> None:
    hidden = assert_problem(world(GAMMA).get("/lookup", ip="10.20.1.1", at="2025-01-01"), 404)
    unknown = assert_problem(world(GAMMA).get("/lookup", ip="192.0.2.1", at="2025-01-01"), 404)
    assert hidden["detail"] == "no organisation you may see held '10.20.1.1' on 2025-01-01"
    assert unknown["detail"] == "no organisation you may see held '192.0.2.1' on 2025-01-01"
    # The most specific match decides: a visible, less specific owner is not offered instead.
    services.add_netblock(
        actor=SYSTEM,
        organisation=world.orgs["sindh-cert"],
        cidr="10.0.0.0/8",
        valid_from=D(2024, 1, 1),
        tlp="green",
    )
    assert world(GAMMA).get("/lookup", ip="10.30.1.1").json()["matched"] == "10.30.0.0/16"
    assert world(GAMMA).get("/lookup", ip="10.99.1.1").json()["matched"] == "10.0.0.0/8"
    assert_problem(world(GAMMA).get("/lookup", ip="10.20.1.1"), 404)


def test_lookup_ipv6(world: World) -> None:
    services.add_netblock(
        actor=SYSTEM, organisation=world.orgs["alpha"], cidr="2001:db8:20::/48", valid_from=D(2024, 1, 1)
    )
    body = world(PUNJAB_HANDLER).get("/lookup", ip="2001:db8:20::1").json()
    assert (body["matched"], body["organisation"], body["chain"]) == (
        "2001:db8:20::/48",
        ALPHA,
        [PUNJAB, NCERT],
    )
    assert_problem(world(PUNJAB_HANDLER).get("/lookup", ip="2001:db8:21::1"), 404)


def test_lookup_asn(world: World) -> None:
    for query in ["AS64500", "64500", "as64500"]:
        body = world(NCERT_MANAGER).get("/lookup", asn=query, at="2025-01-01").json()
        assert body == {
            "query": query,
            "kind": "asn",
            "at": "2025-01-01",
            "matched": "AS64500",
            "organisation": ALPHA,
            "chain": [PUNJAB, NCERT],
        }
        assert_problem(world(NCERT_MANAGER).get("/lookup", asn=query, at="2023-12-31"), 404)
    assert_problem(world(NCERT_MANAGER).get("/lookup", asn="AS64501"), 404)


def test_lookup_domain_matches_whole_labels_most_specific_first(world: World) -> None:
    services.add_domain(
        actor=SYSTEM, organisation=world.orgs["gamma"], name="dept.alpha.example.pk", valid_from=D(2024, 1, 1)
    )
    expected = {
        "alpha.example.pk": ("alpha", "alpha.example.pk"),
        "mail.alpha.example.pk": ("alpha", "alpha.example.pk"),
        "MAIL.Alpha.Example.PK.": ("alpha", "alpha.example.pk"),
        "a.b.c.alpha.example.pk": ("alpha", "alpha.example.pk"),
        "x.dept.alpha.example.pk": ("gamma", "dept.alpha.example.pk"),  # most specific suffix wins
        "dept.alpha.example.pk": ("gamma", "dept.alpha.example.pk"),
        "evilalpha.example.pk": 404,  # whole labels only
        "alpha.example.pk.evil.pk": 404,
        "example.pk": 404,  # a parent is not covered by its child
    }
    actual: dict[str, Any] = {}
    for query in expected:
        response = world(NCERT_MANAGER).get("/lookup", domain=query)
        if response.status_code == 200:
            body = response.json()
            assert body["kind"] == "domain"
            actual[query] = (body["organisation"]["slug"], body["matched"])
        else:
            actual[query] = assert_problem(response, 404)["status"]
    assert actual == expected


def test_a_netblock_or_domain_names_the_cii_system_it_serves(world: World) -> None:
    nadra = world.org("nadra")
    services.add_cii_system(actor=SYSTEM, organisation=nadra, name="Citizen identity database")
    services.add_cii_system(actor=SYSTEM, organisation=world.org("alpha"), name="Alpha billing")

    # Only the organisation's own systems may be named; a refusal names what it has and changes nothing.
    before = (Netblock.objects.count(), last_seq())
    refused = world(NADRA_MANAGER).post(
        "/organisations/nadra/netblocks", {"cidr": "10.60.0.0/16", "cii_system": "Alpha billing"}
    )
    problem = assert_problem(refused, 422)
    assert "nadra has no CII system named 'Alpha billing'" in str(problem)
    assert "'Citizen identity database'" in str(problem)
    assert (Netblock.objects.count(), last_seq()) == before

    added = world(NADRA_MANAGER).post(
        "/organisations/nadra/netblocks", {"cidr": "10.60.0.0/16", "cii_system": "Citizen identity database"}
    )
    assert added.status_code == 201, added.content
    entry = AuditEntry.objects.filter(action="registry.netblock.add").last()
    assert entry.data["cii_system"] == "Citizen identity database"
    other = world(NADRA_MANAGER).post("/organisations/nadra/netblocks", {"cidr": "10.61.0.0/16"})
    listed = {
        n["cidr"]: n["cii_system"] for n in world(NADRA_VIEWER).get("/organisations/nadra/netblocks").json()
    }
    assert listed["10.60.0.0/16"] == "Citizen identity database"
    assert listed["10.61.0.0/16"] is None

    # Linking an existing netblock, then unlinking it: each change audited once, a repeat is no change.
    netblock_id = other.json()["id"]
    path = f"/netblocks/{netblock_id}/cii-system"
    walk_writes(
        [(GAMMA, 404), (ALPHA_MANAGER, 404), (NADRA_VIEWER, 403), (NADRA_MANAGER, 200)],
        lambda person, i: world(person).post(path, {"cii_system": "Citizen identity database"}),
        state=lambda: Netblock.objects.filter(pk=netblock_id).values("cii_system").get(),
        actions=["registry.netblock.cii_system"],
    )
    assert world(NADRA_MANAGER).post(path, {"cii_system": "Citizen identity database"}).status_code == 200
    assert AuditEntry.objects.filter(action="registry.netblock.cii_system").count() == 1
    unlinked = world(NADRA_MANAGER).post(path, {"cii_system": ""})
    assert unlinked.json()["cii_system"] is None
    last = AuditEntry.objects.filter(action="registry.netblock.cii_system").last()
    assert last.data["from"] == "Citizen identity database"
    assert last.data["to"] is None
    assert_problem(world(NADRA_MANAGER).post(path, {"cii_system": "Nonesuch"}), 422)

    domain = world(NADRA_MANAGER).post(
        "/organisations/nadra/domains",
        {"name": "id.nadra.example", "cii_system": "Citizen identity database"},
    )
    assert domain.status_code == 201, domain.content
    domains = world(NADRA_VIEWER).get("/domains?organisation=nadra").json()["items"]
    assert {d["name"]: d["cii_system"] for d in domains}["id.nadra.example"] == "Citizen identity database"
