"""Every incidents endpoint walked with people of every role and tier.

The organisations are the real Pakistan framework's (ncert at the top; punjab-cert and sindh-cert report
to it), plus three constituents created here, all reporting since 2024-01-01:

- lahore (TLP:AMBER) under punjab-cert: the affected organisation of most incidents below;
- multan, a sibling of lahore under punjab-cert;
- karachi (TLP:GREEN, so other provinces may name it as involved), under sindh-cert (another province).

People: anonymous; lahore's viewer, analyst and manager; multan's and karachi's analysts; punjab-cert's
viewer, handler and a second handler (never named on TLP:RED); sindh-cert's handler; ncert's viewer and
handler; a platform administrator without memberships.

Expected answers: 401 anonymous; 404 for whoever may not see the record, with the same problem (and the
same detail format) as a record that does not exist; 403 for whoever sees it but may not act; 200/201
otherwise. A refused write changes no row of reports, incidents, escalations, stage reports, timeline
events or the audit log. Time is frozen an hour after the incidents' awareness (2026-11-01 08:00 UTC).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from certnet.accounts.models import User
from certnet.core import clock
from certnet.core.audit import SystemActor
from certnet.core.models import AuditEntry
from certnet.core.roles import Role
from certnet.incidents.models import Escalation, Incident, Report, StageReport, TimelineEvent
from certnet.registry import services as registry
from certnet.registry.models import Organisation

SYSTEM = SystemActor("test")
PROBLEM = "application/problem+json"
AWARE = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
NOW = AWARE + dt.timedelta(hours=1)
MISSING = 987_654

ANON = "anonymous"
L_VIEWER = "lahore.viewer"
L_ANALYST = "lahore.analyst"
L_MANAGER = "lahore.manager"
MULTAN = "multan.analyst"  # a sibling constituent under punjab-cert
KARACHI = "karachi.analyst"  # a constituent under sindh-cert
P_VIEWER = "punjab.viewer"
P_HANDLER = "punjab.handler"  # named on the TLP:RED report
P_OTHER = "punjab.other"  # a handler of the same CERT, never named
S_HANDLER = "sindh.handler"
N_VIEWER = "ncert.viewer"
N_HANDLER = "ncert.handler"
ADMIN = "platform.admin"

PEOPLE: dict[str, tuple[str, Role] | None] = {
    L_VIEWER: ("lahore", Role.VIEWER),
    L_ANALYST: ("lahore", Role.ANALYST),
    L_MANAGER: ("lahore", Role.MANAGER),
    MULTAN: ("multan", Role.ANALYST),
    KARACHI: ("karachi", Role.ANALYST),
    P_VIEWER: ("punjab-cert", Role.VIEWER),
    P_HANDLER: ("punjab-cert", Role.HANDLER),
    P_OTHER: ("punjab-cert", Role.HANDLER),
    S_HANDLER: ("sindh-cert", Role.HANDLER),
    N_VIEWER: ("ncert", Role.VIEWER),
    N_HANDLER: ("ncert", Role.HANDLER),
    ADMIN: None,
}
EVERYONE = [ANON, *PEOPLE]

# The answer to a handling write (status, escalate, de-escalate, assign) on lahore's AMBER incident:
# only handlers of a CERT above lahore, and platform administrators, may; lahore itself never handles.
HANDLE_AMBER: dict[str, int] = {
    ANON: 401,
    L_VIEWER: 403,
    L_ANALYST: 403,
    L_MANAGER: 403,
    MULTAN: 404,
    KARACHI: 404,
    P_VIEWER: 403,
    P_HANDLER: 200,
    P_OTHER: 200,
    S_HANDLER: 404,
    N_VIEWER: 403,
    N_HANDLER: 200,
    ADMIN: 200,
}
HANDLERS = [p for p, status in HANDLE_AMBER.items() if status == 200]
REFUSED_HANDLE = {p: s for p, s in HANDLE_AMBER.items() if s != 200}

IN_PROGRESS = {"status": "in-progress"}
REJECT = {"decision": "reject", "reason": "a test message, not an incident"}
# Every handling write on an incident, with a body that would be valid for someone allowed.
WRITES: list[tuple[str, dict[str, Any]]] = [
    ("status", IN_PROGRESS),
    ("escalate", {"reason": "r"}),
    ("de-escalate", {"reason": "r"}),
    ("assign", {"assignee": P_HANDLER}),
    ("stage-reports", {"stage": "early-warning"}),
]


@pytest.fixture(autouse=True)
def _frozen_now() -> Iterator[None]:
    with clock.frozen_at(NOW):
        yield


@dataclass
class World:
    orgs: dict[str, Organisation]
    users: dict[str, User]
    clients: dict[str, Any]

    def __call__(self, person: str) -> Any:
        return self.clients[person]

    def report(self, person: str, org: str = "lahore", **extra: Any) -> int:
        response = file_report(self(person), org, **extra)
        assert response.status_code == 201, response.content
        return int(response.json()["id"])

    def incident(self, person: str, org: str = "lahore", triager: str = P_HANDLER, **extra: Any) -> int:
        """File a report as `person` and open an incident from it as `triager`."""
        report_extra = {k: extra.pop(k) for k in ("tlp", "named_users") if k in extra}
        response = triage(self(triager), self.report(person, org, **report_extra), **extra)
        assert response.status_code == 200, response.content
        return int(response.json()["incident"])


@pytest.fixture
def world(framework: dict[str, Organisation], make_user: Any, api_as: Any) -> World:
    def constituent(slug: str, parent: str, tlp: str = "amber") -> Organisation:
        return registry.create_organisation(
            actor=SYSTEM,
            data=registry.OrganisationInput(
                slug=slug,
                name=slug.title(),
                kind="constituent",
                reports_to=parent,
                reports_since=dt.date(2024, 1, 1),
                tlp=tlp,
            ),
        )

    orgs = {
        **framework,
        "lahore": constituent("lahore", "punjab-cert"),
        "multan": constituent("multan", "punjab-cert"),
        "karachi": constituent("karachi", "sindh-cert", tlp="green"),
    }
    users: dict[str, User] = {}
    for person, membership in PEOPLE.items():
        if membership is None:
            users[person] = make_user(username=person, platform_admin=True)
        else:
            users[person] = make_user(orgs[membership[0]], membership[1], username=person)
    # Tokens are issued (and audited) here, before any test counts audit entries.
    clients = {person: api_as(user) for person, user in users.items()}
    clients[ANON] = api_as(None)
    return World(orgs, users, clients)


# --- helpers ------------------------------------------------------------------------------------


def file_report(client: Any, org: str, **extra: Any) -> Any:
    body = {
        "reporting_organisation": org,
        "title": f"Ransomware at {org}",
        "description": "Files encrypted",
        "aware_at": AWARE.isoformat(),
        **extra,
    }
    return client.post("/reports", body)


def triage(client: Any, report_id: int, **extra: Any) -> Any:
    body = {
        "decision": "open",
        "classification_taxonomy": "malicious-code",
        "classification_type": "infected-system",
        "severity": 2,
        **extra,
    }
    return client.post(f"/reports/{report_id}/triage", body)


def snapshot() -> tuple[Any, ...]:
    """Row counts of everything an incidents write touches, and the state of every report/incident."""
    return (
        Report.objects.count(),
        Incident.objects.count(),
        Escalation.objects.count(),
        StageReport.objects.count(),
        TimelineEvent.objects.count(),
        AuditEntry.objects.count(),
        list(Report.objects.order_by("pk").values_list("pk", "status", "incident")),
        list(
            Incident.objects.order_by("pk").values_list(
                "pk", "status", "tlp", "escalated_to", "assignee", "next_deadline_at"
            )
        ),
        sorted(Incident.involved_organisations.through.objects.values_list("incident_id", "organisation_id")),
    )


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if status == 401:
        assert response["WWW-Authenticate"] == 'Bearer realm="certnet"'
    return body


def shape(body: dict[str, Any]) -> dict[str, Any]:
    """A problem with every number in its detail blanked: 'no incident 7' and 'no incident 987654' match."""
    blank = {**body, "detail": re.sub(r"\d+", "N", body["detail"])}
    if "errors" in body:
        blank["errors"] = [{**e, "msg": re.sub(r"\d+", "N", e["msg"])} for e in body["errors"]]
    return blank


def refused(world: World, table: dict[str, int], send: Callable[[Any], Any]) -> None:
    """Every person in `table` gets exactly the listed 4xx, and nothing changes."""
    before = snapshot()
    got: dict[str, int] = {}
    for person in table:
        response = send(world(person))
        got[person] = response.status_code
        if response.status_code == table[person]:
            problem(response, table[person])
    assert got == table
    assert snapshot() == before


def same_as_missing(world: World, person: str, path: str, visible_id: int, body: Any = None) -> None:
    """An invisible record answers exactly like a missing one (status, title, type, detail format)."""
    client = world(person)
    send: Callable[[str], Any] = client.get if body is None else (lambda p: client.post(p, body))
    invisible = problem(send(path.format(id=visible_id)), 404)
    missing = problem(send(path.format(id=MISSING)), 404)
    assert shape(invisible) == shape(missing)
    assert str(visible_id) in invisible["detail"]
    assert str(MISSING) in missing["detail"]


def _incident(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == len(body["items"])
    return [item["id"] for item in body["items"]]


# --- anonymous ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_callers_get_401_from_every_endpoint_and_change_nothing(world: World) -> None:
    incident_id = world.incident(L_ANALYST)
    report_id = world.report(L_ANALYST)
    anonymous = world(ANON)
    before = snapshot()
    gets = ["/reports", "/incidents", "/incidents?overdue=true&open_only=true"]
    posts: list[tuple[str, Any]] = [
        ("/reports", {"reporting_organisation": "lahore", "title": "x", "description": "y"}),
    ]
    for target in (report_id, MISSING):
        gets.append(f"/reports/{target}")
        for decision in ("open", "merge", "reject"):
            posts.append((f"/reports/{target}/triage", {"decision": decision, "incident": incident_id}))
    for target in (incident_id, MISSING):
        gets.append(f"/incidents/{target}")
        posts += [
            (f"/incidents/{target}/status", {"status": "in-progress"}),
            (f"/incidents/{target}/escalate", {"reason": "r"}),
            (f"/incidents/{target}/de-escalate", {"reason": "r"}),
            (f"/incidents/{target}/assign", {"assignee": P_HANDLER}),
            (f"/incidents/{target}/assign", {"assignee": "nobody-at-all"}),
            (f"/incidents/{target}/stage-reports", {"stage": "early-warning"}),
        ]
    answers = [anonymous.get(path) for path in gets] + [anonymous.post(path, body) for path, body in posts]
    assert [a.status_code for a in answers] == [401] * len(answers)
    for answer in answers:
        problem(answer, 401)
    assert snapshot() == before


# --- reports ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_filing_a_report_needs_analyst_or_above_in_the_reporting_organisation(world: World) -> None:
    table = {
        ANON: 401,
        L_VIEWER: 403,
        MULTAN: 403,
        KARACHI: 403,
        P_VIEWER: 403,
        P_HANDLER: 403,  # not a member of lahore (it may report as punjab-cert, below)
        P_OTHER: 403,
        S_HANDLER: 403,
        N_VIEWER: 403,
        N_HANDLER: 403,
        ADMIN: 403,  # platform administrators file for no organisation
    }
    refused(world, table, lambda c: file_report(c, "lahore"))
    for person in (L_ANALYST, L_MANAGER):
        before = Report.objects.count()
        filed = file_report(world(person), "lahore")
        assert filed.status_code == 201, filed.content
        assert (filed.json()["affected_organisation"]["slug"], filed.json()["status"]) == ("lahore", "new")
        assert Report.objects.count() == before + 1
    # A CERT reports on behalf of an organisation below it.
    on_behalf = file_report(world(P_HANDLER), "punjab-cert", affected_organisation="lahore")
    assert on_behalf.status_code == 201, on_behalf.content
    assert on_behalf.json()["affected_organisation"]["slug"] == "lahore"
    # Rights before existence: an organisation that does not exist is refused like one you are not in.
    before = snapshot()
    other = problem(file_report(world(L_ANALYST), "karachi"), 403)
    ghost = problem(file_report(world(L_ANALYST), "no-such-org"), 403)
    assert other["detail"].replace("'karachi'", "X") == ghost["detail"].replace("'no-such-org'", "X")
    assert snapshot() == before


@pytest.mark.django_db
def test_report_reads_show_exactly_the_visible_reports(world: World) -> None:
    lahore = world.report(L_ANALYST)
    red = world.report(L_ANALYST, tlp="red", named_users=[P_HANDLER])
    multan = world.report(MULTAN, "multan")
    karachi = world.report(KARACHI, "karachi")
    green = world.report(KARACHI, "karachi", tlp="green")
    chain_n = {lahore, multan, karachi, green}
    visible = {
        L_VIEWER: {lahore, green},
        L_ANALYST: {lahore, red, green},  # the author of the RED report
        L_MANAGER: {lahore, green},  # RED reports have no stubs: not named, not seen
        MULTAN: {multan, green},
        KARACHI: {karachi, green},
        P_VIEWER: {lahore, multan, green},
        P_HANDLER: {lahore, red, multan, green},  # named
        P_OTHER: {lahore, multan, green},
        S_HANDLER: {karachi, green},
        N_VIEWER: chain_n,
        N_HANDLER: chain_n,
        ADMIN: chain_n,
    }
    everything = [lahore, red, multan, karachi, green]
    for person, expected in visible.items():
        listed = ids(world(person).get("/reports"))
        assert (person, sorted(listed)) == (person, sorted(expected))
        assert sorted(ids(world(person).get("/reports", status="new"))) == sorted(listed)
        assert ids(world(person).get("/reports", status="triaged")) == []
        got = {rid: world(person).get(f"/reports/{rid}").status_code for rid in everything}
        assert got == {rid: 200 if rid in expected else 404 for rid in everything}, person
    for person in EVERYONE:
        client = world(person)
        assert client.get(f"/reports/{MISSING}").status_code == (401 if person == ANON else 404)
    same_as_missing(world, KARACHI, "/reports/{id}", lahore)
    same_as_missing(world, L_MANAGER, "/reports/{id}", red)
    same_as_missing(world, N_HANDLER, "/reports/{id}", red)


# --- triage: open, reject, merge ---------------------------------------------------------------

# Triage needs a handler of a CERT above the affected organisation (or a platform administrator).
TRIAGE_AMBER_REFUSED = {
    ANON: 401,
    L_VIEWER: 403,
    L_ANALYST: 403,  # the author; the affected organisation never triages
    L_MANAGER: 403,
    MULTAN: 404,
    KARACHI: 404,
    P_VIEWER: 403,
    S_HANDLER: 404,
    N_VIEWER: 403,
}
TRIAGERS = [P_HANDLER, P_OTHER, N_HANDLER, ADMIN]


@pytest.mark.django_db
def test_opening_an_incident_from_a_report(world: World) -> None:
    report_id = world.report(L_ANALYST)
    assert set(TRIAGE_AMBER_REFUSED) | set(TRIAGERS) == set(EVERYONE)
    refused(world, TRIAGE_AMBER_REFUSED, lambda c: triage(c, report_id))
    for invisible_to in (MULTAN, KARACHI, S_HANDLER):
        same_as_missing(world, invisible_to, "/reports/{id}/triage", report_id, {"decision": "open"})
    for person in TRIAGERS:
        fresh = world.report(L_ANALYST)
        before = Incident.objects.count()
        opened = triage(world(person), fresh)
        assert opened.status_code == 200, (person, opened.content)
        assert opened.json()["status"] == "triaged"
        incident = Incident.objects.get(pk=opened.json()["incident"])
        assert (incident.handling_cert.slug, incident.escalated_to, incident.created_by.username) == (
            "punjab-cert",
            None,
            person,
        )
        assert Incident.objects.count() == before + 1
    # Organisations named as involved are references: one the triager cannot see answers like a missing
    # one (422), and nothing is written.
    karachi_report = world.report(KARACHI, "karachi")
    before = snapshot()
    hidden = problem(triage(world(S_HANDLER), karachi_report, involved_organisations=["multan"]), 422)
    ghost = problem(triage(world(S_HANDLER), karachi_report, involved_organisations=["atlantis"]), 422)
    assert hidden["detail"].replace("multan", "X") == ghost["detail"].replace("atlantis", "X")
    assert snapshot() == before
    # A report is triaged once.
    before = snapshot()
    assert problem(triage(world(P_HANDLER), fresh), 409)["detail"] == f"report {fresh} is already triaged"
    assert snapshot() == before


@pytest.mark.django_db
def test_triage_of_a_red_report_is_for_the_named_handler_only(world: World) -> None:
    report_id = world.report(L_ANALYST, tlp="red", named_users=[P_HANDLER])
    table = {
        ANON: 401,
        L_VIEWER: 404,
        L_ANALYST: 403,  # the author sees it but never triages
        L_MANAGER: 404,
        MULTAN: 404,
        KARACHI: 404,
        P_VIEWER: 404,
        P_OTHER: 404,  # a handler of the right CERT, but not named
        S_HANDLER: 404,
        N_VIEWER: 404,
        N_HANDLER: 404,
        ADMIN: 404,  # platform administrators do not see RED unless named
    }
    refused(world, table, lambda c: triage(c, report_id))
    same_as_missing(world, P_OTHER, "/reports/{id}/triage", report_id, {"decision": "open"})
    opened = triage(world(P_HANDLER), report_id)
    assert opened.status_code == 200, opened.content
    assert Incident.objects.get(pk=opened.json()["incident"]).tlp == "red"


@pytest.mark.django_db
def test_rejecting_a_report(world: World) -> None:
    report_id = world.report(L_ANALYST)
    refused(world, TRIAGE_AMBER_REFUSED, lambda c: c.post(f"/reports/{report_id}/triage", REJECT))
    before = snapshot()
    no_reason = world(P_HANDLER).post(f"/reports/{report_id}/triage", {"decision": "reject"})
    assert problem(no_reason, 422)["errors"] == [{"loc": "reason", "msg": "say why the report is rejected"}]
    bogus = world(P_HANDLER).post(f"/reports/{report_id}/triage", {"decision": "shred"})
    assert problem(bogus, 422)["errors"][0]["loc"] == "decision"
    assert snapshot() == before
    for person in TRIAGERS:
        fresh = world.report(L_ANALYST)
        audits = AuditEntry.objects.count()
        rejected = world(person).post(f"/reports/{fresh}/triage", REJECT)
        assert rejected.status_code == 200, (person, rejected.content)
        assert (rejected.json()["status"], rejected.json()["incident"]) == ("rejected", None)
        assert AuditEntry.objects.count() == audits + 1
        assert AuditEntry.objects.order_by("-seq").first().action == "incidents.report.reject"  # type: ignore[union-attr]
    before = snapshot()
    assert problem(triage(world(P_HANDLER), fresh), 409)["detail"] == f"report {fresh} is already rejected"
    assert snapshot() == before
    assert Incident.objects.count() == 0


@pytest.mark.django_db
def test_merging_reports_into_incidents(world: World) -> None:
    lahore_incident = world.incident(L_ANALYST)
    # An incident that involves karachi: sindh-cert sees it (shared) but may not handle it.
    shared_incident = world.incident(L_ANALYST, involved_organisations=["karachi"])
    karachi_report = world.report(KARACHI, "karachi")
    lahore_report = world.report(L_ANALYST)

    def merge(report_id: int, incident_id: int) -> Callable[[Any], Any]:
        body = {"decision": "merge", "incident": incident_id}
        return lambda c: c.post(f"/reports/{report_id}/triage", body)

    # Who may merge lahore's report into lahore's incident.
    refused(world, TRIAGE_AMBER_REFUSED, merge(lahore_report, lahore_incident))
    # sindh-cert may triage karachi's report but cannot see lahore's incident: the incident is a
    # reference in the request body, so it answers like a missing one (422, docs/visibility.md).
    # punjab-cert may not even see karachi's report: 404.
    refused(world, {S_HANDLER: 422, P_HANDLER: 404}, merge(karachi_report, lahore_incident))
    invisible = problem(merge(karachi_report, lahore_incident)(world(S_HANDLER)), 422)
    missing = problem(merge(karachi_report, MISSING)(world(S_HANDLER)), 422)
    assert shape(invisible) == shape(missing)
    assert invisible["detail"] == f"incident: no incident {lahore_incident}"
    # ... and sees the shared incident but may not handle it: 403.
    refused(world, {S_HANDLER: 403}, merge(karachi_report, shared_incident))
    # Naming no incident is invalid.
    refused(
        world, {P_HANDLER: 422}, lambda c: c.post(f"/reports/{lahore_report}/triage", {"decision": "merge"})
    )

    # punjab-cert merges multan's report (a sibling of lahore) into lahore's incident: multan, and its
    # CERT (punjab-cert, already handling) become involved; multan now sees the incident.
    multan_report = world.report(MULTAN, "multan")
    assert world(MULTAN).get(f"/incidents/{lahore_incident}").status_code == 404
    merged = merge(multan_report, lahore_incident)(world(P_HANDLER))
    assert merged.status_code == 200, merged.content
    assert (merged.json()["status"], merged.json()["incident"]) == ("merged", lahore_incident)
    incident = Incident.objects.get(pk=lahore_incident)
    assert sorted(o.slug for o in incident.involved_organisations.all()) == ["multan", "punjab-cert"]
    assert world(MULTAN).get(f"/incidents/{lahore_incident}").json()["redacted"] is False
    assert incident.escalated_to is None  # one handling CERT only

    # Only ncert sees both karachi's report and lahore's incident: merging involves karachi and
    # sindh-cert, who then see it, and escalates to the lowest CERT above both provinces.
    assert world(S_HANDLER).get(f"/incidents/{lahore_incident}").status_code == 404
    merged = merge(karachi_report, lahore_incident)(world(N_HANDLER))
    assert merged.status_code == 200, merged.content
    involved = sorted(o.slug for o in Incident.objects.get(pk=lahore_incident).involved_organisations.all())
    assert involved == ["karachi", "multan", "punjab-cert", "sindh-cert"]
    for person in (KARACHI, S_HANDLER):
        assert world(person).get(f"/incidents/{lahore_incident}").json()["redacted"] is False
        assert lahore_incident in ids(world(person).get("/incidents"))
        # They see it, but may not handle it or file its stage reports.
        refused(world, {person: 403}, lambda c: c.post(f"/incidents/{lahore_incident}/status", IN_PROGRESS))
        refused(
            world,
            {person: 403},
            lambda c: c.post(f"/incidents/{lahore_incident}/stage-reports", {"stage": "early-warning"}),
        )
    detail = world(N_HANDLER).get(f"/incidents/{lahore_incident}").json()
    assert detail["escalated_to"]["slug"] == "ncert"
    assert [(e["from"], e["to"], e["rule"]) for e in detail["escalations"]] == [
        ("punjab-cert", "ncert", "cross-cert")
    ]
    assert [t["kind"] for t in detail["timeline"]] == [
        "opened",
        "report-merged",
        "escalated",
        "report-merged",
    ]

    # A merged report cannot be merged again; a report cannot be merged into a closed incident.
    before = snapshot()
    again = problem(merge(multan_report, shared_incident)(world(N_HANDLER)), 409)
    assert again["detail"] == f"report {multan_report} is already merged"
    assert snapshot() == before
    for move in ("in-progress", "resolved", "closed"):
        _incident(world(P_HANDLER).post(f"/incidents/{shared_incident}/status", {"status": move}))
    late = world.report(L_ANALYST)
    before = snapshot()
    closed = problem(merge(late, shared_incident)(world(P_HANDLER)), 409)
    assert closed["detail"] == f"incident {shared_incident} is closed; merge into an open incident"
    assert snapshot() == before


# --- incident reads -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_incident_reads_show_the_visible_set_and_red_stubs(world: World) -> None:
    lahore = world.incident(L_ANALYST)
    red = world.incident(L_ANALYST, tlp="red", named_users=[P_HANDLER])
    multan = world.incident(MULTAN, "multan")
    karachi = world.incident(KARACHI, "karachi", triager=S_HANDLER)
    green = world.incident(KARACHI, "karachi", triager=S_HANDLER, tlp="green")
    national = {lahore, multan, karachi, green}
    full = {
        L_VIEWER: {lahore, green},
        L_ANALYST: {lahore, red, green},  # reported the RED one: named on the incident
        L_MANAGER: {lahore, green},
        MULTAN: {multan, green},
        KARACHI: {karachi, green},
        P_VIEWER: {lahore, multan, green},
        P_HANDLER: {lahore, red, multan, green},  # named, and opened it
        P_OTHER: {lahore, multan, green},
        S_HANDLER: {karachi, green},
        N_VIEWER: national,
        N_HANDLER: national,
        ADMIN: national,
    }
    # Whoever would see the RED incident at AMBER+STRICT, but is not named, sees a stub.
    stub = {
        person: {red}
        if person in {L_VIEWER, L_MANAGER, P_VIEWER, P_OTHER, N_VIEWER, N_HANDLER, ADMIN}
        else set()
        for person in PEOPLE
    }
    everything = [lahore, red, multan, karachi, green]
    for person in PEOPLE:
        client = world(person)
        listed = client.get("/incidents").json()["items"]
        assert sorted(i["id"] for i in listed) == sorted(full[person] | stub[person]), person
        for item in listed:
            redacted = item["id"] in stub[person]
            assert (person, item["id"], item["redacted"], item["title"] is None) == (
                person,
                item["id"],
                redacted,
                redacted,
            )
        for incident_id in everything:
            response = client.get(f"/incidents/{incident_id}")
            if incident_id in full[person] | stub[person]:
                assert response.status_code == 200, (person, incident_id)
                body = response.json()
                assert body["redacted"] is (incident_id in stub[person]), (person, incident_id)
            else:
                problem(response, 404)
    # A stub: who, when, how bad, how urgent; nothing of the content.
    body = world(N_HANDLER).get(f"/incidents/{red}").json()
    assert (body["affected_organisation"]["slug"], body["handling_cert"]["slug"], body["severity"]) == (
        "lahore",
        "punjab-cert",
        2,
    )
    withheld = ("title", "description", "classification_taxonomy", "classification_type", "peca_sections")
    assert [body[field] for field in withheld] == [None] * len(withheld)
    assert (body["clocks"], body["escalations"], body["timeline"], body["assignee"]) == ([], [], [], None)
    named = world(P_HANDLER).get(f"/incidents/{red}").json()
    assert (named["title"], named["classification_type"]) == ("Ransomware at lahore", "infected-system")
    # Invisible and missing incidents answer alike.
    for person, incident_id in ((KARACHI, lahore), (MULTAN, red), (S_HANDLER, red), (L_VIEWER, karachi)):
        same_as_missing(world, person, "/incidents/{id}", incident_id)


@pytest.mark.django_db
def test_incident_list_filters_give_exact_counts(world: World) -> None:
    a = world.incident(L_ANALYST)  # malicious-code, severity 2, punjab-cert
    b = world.incident(  # severity 4: escalated to ncert
        L_ANALYST, classification_taxonomy="fraud", classification_type="phishing", severity=4
    )
    c = world.incident(
        MULTAN, "multan", classification_taxonomy="availability", classification_type="ddos", severity=1
    )
    for move in ("in-progress", "resolved"):
        assert world(P_HANDLER).post(f"/incidents/{c}/status", {"status": move}).status_code == 200
    d = world.incident(KARACHI, "karachi", triager=S_HANDLER, severity=3)  # escalated to ncert
    cases: list[tuple[dict[str, Any], dict[str, list[int]]]] = [
        ({}, {N_HANDLER: [a, b, c, d], P_HANDLER: [a, b, c], S_HANDLER: [d], L_VIEWER: [a, b], KARACHI: [d]}),
        ({"status": "triaged"}, {N_HANDLER: [a, b, d], P_HANDLER: [a, b], S_HANDLER: [d]}),
        ({"status": "resolved"}, {N_HANDLER: [c], P_HANDLER: [c], S_HANDLER: [], MULTAN: [c]}),
        ({"status": "no-such-status"}, {N_HANDLER: []}),
        ({"severity_at_least": 3}, {N_HANDLER: [b, d], P_HANDLER: [b], S_HANDLER: [d], L_VIEWER: [b]}),
        ({"severity_at_least": 0}, {N_HANDLER: [a, b, c, d], P_HANDLER: [a, b, c]}),
        ({"severity_at_least": 5}, {N_HANDLER: []}),
        ({"taxonomy": "malicious-code"}, {N_HANDLER: [a, d], P_HANDLER: [a], S_HANDLER: [d], MULTAN: []}),
        ({"taxonomy": "fraud"}, {N_HANDLER: [b], P_HANDLER: [b], S_HANDLER: []}),
        ({"organisation": "lahore"}, {N_HANDLER: [a, b], P_HANDLER: [a, b], S_HANDLER: [], KARACHI: []}),
        ({"organisation": "karachi"}, {N_HANDLER: [d], P_HANDLER: [], S_HANDLER: [d]}),
        ({"handling_cert": "punjab-cert"}, {N_HANDLER: [a, b, c], P_HANDLER: [a, b, c], S_HANDLER: []}),
        ({"handling_cert": "sindh-cert"}, {N_HANDLER: [d], P_HANDLER: [], S_HANDLER: [d]}),
        ({"handling_cert": "ncert"}, {N_HANDLER: [b, d], P_HANDLER: [b], S_HANDLER: [d], N_VIEWER: [b, d]}),
        ({"open_only": "true"}, {N_HANDLER: [a, b, d], P_HANDLER: [a, b], MULTAN: []}),
        ({"overdue": "true"}, {N_HANDLER: [], P_HANDLER: []}),
        ({"open_only": "true", "severity_at_least": 3, "organisation": "lahore"}, {N_HANDLER: [b]}),
        ({"status": "triaged", "handling_cert": "ncert", "taxonomy": "malicious-code"}, {N_HANDLER: [d]}),
    ]
    for params, expected in cases:
        for person, wanted in expected.items():
            response = world(person).get("/incidents", **params)
            assert (params, person, sorted(ids(response))) == (params, person, sorted(wanted))
    # Past the 24 h early warning, every open incident is overdue (c is resolved: no clock).
    with clock.frozen_at(AWARE + dt.timedelta(hours=25)):
        assert sorted(ids(world(N_HANDLER).get("/incidents", overdue="true"))) == [a, b, d]
        assert sorted(ids(world(P_HANDLER).get("/incidents", overdue="true"))) == [a, b]
        assert ids(world(KARACHI).get("/incidents", overdue="true", severity_at_least=4)) == []
    # Pagination keeps the count of the whole filtered set.
    page = world(N_HANDLER).get("/incidents", limit=1, offset=1).json()
    assert (page["count"], len(page["items"])) == (4, 1)
    assert problem(world(N_HANDLER).get("/incidents", severity_at_least="high"), 422)


# --- incident writes ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_status_changes_are_for_the_handlers_above(world: World) -> None:
    incident_id = world.incident(L_ANALYST)
    path = f"/incidents/{incident_id}/status"
    refused(world, REFUSED_HANDLE, lambda c: c.post(path, IN_PROGRESS))
    for invisible_to in (MULTAN, KARACHI, S_HANDLER):
        same_as_missing(world, invisible_to, "/incidents/{id}/status", incident_id, IN_PROGRESS)
    moves = dict(zip(HANDLERS, ["in-progress", "contained", "resolved", "in-progress"], strict=True))
    for person, move in moves.items():
        audits = AuditEntry.objects.count()
        body = _incident(world(person).post(path, {"status": move, "note": person}))
        assert body["status"] == move
        assert body["timeline"][-1]["actor"] == person
        assert AuditEntry.objects.count() == audits + 1
    # Validation and the state machine only after the right: a viewer learns nothing from a bad body.
    refused(world, {P_VIEWER: 403, P_HANDLER: 422}, lambda c: c.post(path, {"status": "vanished"}))
    refused(world, {L_MANAGER: 403, P_HANDLER: 409}, lambda c: c.post(path, {"status": "closed"}))
    refused(world, {P_HANDLER: 422}, lambda c: c.post(path, {"status": 7}))


@pytest.mark.django_db
def test_escalation_and_de_escalation_are_for_the_handlers_above(world: World) -> None:
    incident_id = world.incident(L_ANALYST)
    up, down = f"/incidents/{incident_id}/escalate", f"/incidents/{incident_id}/de-escalate"
    reason = {"reason": "needs national coordination"}
    refused(world, REFUSED_HANDLE, lambda c: c.post(up, reason))
    for invisible_to in (MULTAN, KARACHI, S_HANDLER):
        same_as_missing(world, invisible_to, "/incidents/{id}/escalate", incident_id, reason)
        same_as_missing(world, invisible_to, "/incidents/{id}/de-escalate", incident_id, reason)
    # Not escalated: nothing to de-escalate (409) for those who may; the others as always.
    refused(world, {**REFUSED_HANDLE, P_HANDLER: 409, N_HANDLER: 409}, lambda c: c.post(down, reason))
    for person in HANDLERS:
        body = _incident(world(person).post(up, reason))
        assert body["escalated_to"]["slug"] == "ncert"
        # Escalation beyond the top of the chain is a conflict, and changes nothing.
        refused(world, {person: 409}, lambda c: c.post(up, reason))
        assert problem(world(person).post(up, reason), 409)["detail"] == ("NCERT has no CERT above it")
        body = _incident(world(person).post(down, {"reason": "back to the province"}))
        assert (body["handling_cert"]["slug"], body["escalated_to"]) == ("punjab-cert", None)
        assert body["escalations"][-1] == {
            **body["escalations"][-1],
            "direction": "down",
            "from": "ncert",
            "to": "punjab-cert",
            "rule": "manual",
        }
    assert Escalation.objects.filter(incident_id=incident_id).count() == 2 * len(HANDLERS)
    # Escalated: the same people are refused de-escalation, the viewers by 403, the others by 404.
    _incident(world(P_HANDLER).post(up, reason))
    refused(world, REFUSED_HANDLE, lambda c: c.post(down, reason))
    refused(world, {N_HANDLER: 422}, lambda c: c.post(down, {"reason": "  "}))
    refused(world, {N_HANDLER: 422}, lambda c: c.post(down, {}))
    # ncert handles what is escalated to it: the escalated incident is in its queue; de-escalated, not.
    assert ids(world(N_HANDLER).get("/incidents", handling_cert="ncert")) == [incident_id]
    _incident(world(N_HANDLER).post(down, reason))
    assert ids(world(N_HANDLER).get("/incidents", handling_cert="ncert")) == []
    kinds = [t["kind"] for t in world(P_HANDLER).get(f"/incidents/{incident_id}").json()["timeline"]]
    assert kinds == ["opened"] + ["escalated", "de-escalated"] * (len(HANDLERS) + 1)


@pytest.mark.django_db
def test_assignment_is_for_the_handlers_above(world: World) -> None:
    incident_id = world.incident(L_ANALYST)
    path = f"/incidents/{incident_id}/assign"
    refused(world, REFUSED_HANDLE, lambda c: c.post(path, {"assignee": P_HANDLER}))
    for invisible_to in (MULTAN, KARACHI, S_HANDLER):
        same_as_missing(world, invisible_to, "/incidents/{id}/assign", incident_id, {"assignee": P_HANDLER})
    assignees = dict(zip(HANDLERS, [P_OTHER, P_HANDLER, None, P_HANDLER], strict=True))
    for person, assignee in assignees.items():
        body = _incident(world(person).post(path, {"assignee": assignee}))
        assert body["assignee"] == assignee
        assert Incident.objects.get(pk=incident_id).assignee_id == (
            world.users[assignee].pk if assignee else None
        )
    # Only handlers of the handling CERT (or of the CERT it is escalated to) can be given it.
    for assignee in (P_VIEWER, L_MANAGER, S_HANDLER, N_HANDLER, ADMIN):
        refused(world, {P_HANDLER: 422}, lambda c, a=assignee: c.post(path, {"assignee": a}))
    _incident(world(P_HANDLER).post(f"/incidents/{incident_id}/escalate", {"reason": "national"}))
    assert _incident(world(P_HANDLER).post(path, {"assignee": N_HANDLER}))["assignee"] == N_HANDLER


@pytest.mark.django_db
def test_stage_reports_are_for_the_affected_organisation(world: World) -> None:
    incident_id = world.incident(L_ANALYST)
    path = f"/incidents/{incident_id}/stage-reports"
    early = {"stage": "early-warning", "content": {"summary": "one site"}}
    table = {
        ANON: 401,
        L_VIEWER: 403,
        MULTAN: 404,
        KARACHI: 404,
        P_VIEWER: 403,
        P_HANDLER: 403,
        P_OTHER: 403,
        S_HANDLER: 404,
        N_VIEWER: 403,
        N_HANDLER: 403,
        ADMIN: 403,
    }
    refused(world, table, lambda c: c.post(path, early))
    for invisible_to in (MULTAN, KARACHI, S_HANDLER):
        same_as_missing(world, invisible_to, "/incidents/{id}/stage-reports", incident_id, early)
    body = _incident(world(L_ANALYST).post(path, early))
    assert {s["stage"]: s["state"] for s in body["clocks"]}["early-warning"] == "met"
    body = _incident(world(L_MANAGER).post(path, {"stage": "notification"}))
    assert [s["state"] for s in body["clocks"]] == ["met", "met", "due"]
    assert StageReport.objects.filter(incident_id=incident_id).count() == 2
    refused(world, {L_ANALYST: 409, L_VIEWER: 403}, lambda c: c.post(path, early))
    refused(world, {L_ANALYST: 422, P_HANDLER: 403}, lambda c: c.post(path, {"stage": "postcard"}))


@pytest.mark.django_db
def test_red_incidents_are_written_by_named_people_only(world: World) -> None:
    red = world.incident(L_ANALYST, tlp="red", named_users=[P_HANDLER])
    # Those who see not even a stub: 404, like a missing incident, on every endpoint.
    invisible = {ANON: 401, MULTAN: 404, KARACHI: 404, S_HANDLER: 404}
    for suffix, body in WRITES:
        refused(world, invisible, lambda c, s=suffix, b=body: c.post(f"/incidents/{red}/{s}", b))
    same_as_missing(world, S_HANDLER, "/incidents/{id}/status", red, IN_PROGRESS)
    # The named handler handles; the author (lahore's analyst) files the stage reports.
    assert (
        _incident(world(P_HANDLER).post(f"/incidents/{red}/status", IN_PROGRESS))["status"] == "in-progress"
    )
    assert _incident(world(P_HANDLER).post(f"/incidents/{red}/assign", {"assignee": P_HANDLER}))
    refused(world, {L_ANALYST: 403}, lambda c: c.post(f"/incidents/{red}/status", {"status": "contained"}))
    refused(
        world,
        {P_HANDLER: 403},
        lambda c: c.post(f"/incidents/{red}/stage-reports", {"stage": "notification"}),
    )
    body = _incident(world(L_ANALYST).post(f"/incidents/{red}/stage-reports", {"stage": "notification"}))
    assert body["redacted"] is False
    assert {s["stage"]: s["state"] for s in body["clocks"]}["notification"] == "met"
    escalated = _incident(world(P_HANDLER).post(f"/incidents/{red}/escalate", {"reason": "national"}))
    assert escalated["escalated_to"]["slug"] == "ncert"
    # ncert now handles it, yet is not named: it still sees the stub only, in its queue too.
    queue = world(N_HANDLER).get("/incidents", handling_cert="ncert").json()["items"]
    assert [(i["id"], i["redacted"], i["title"]) for i in queue] == [(red, True, None)]


# --- clocks ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_stage_report_clocks_move_and_overdue_incidents_are_listed(world: World) -> None:
    incident_id = world.incident(L_ANALYST)
    other = world.incident(MULTAN, "multan")
    path = f"/incidents/{incident_id}"

    def states(person: str = P_HANDLER) -> dict[str, str]:
        return {s["stage"]: s["state"] for s in world(person).get(path).json()["clocks"]}

    def overdue(person: str) -> list[int]:
        return ids(world(person).get("/incidents", overdue="true"))

    assert states() == {"early-warning": "due", "notification": "due", "final-report": "due"}
    assert overdue(P_HANDLER) == []
    with clock.frozen_at(AWARE + dt.timedelta(hours=23)):
        assert states()["early-warning"] == "due"
        assert overdue(N_HANDLER) == []
    with clock.frozen_at(AWARE + dt.timedelta(hours=25)):
        assert states() == {"early-warning": "overdue", "notification": "due", "final-report": "due"}
        assert sorted(overdue(N_HANDLER)) == sorted([incident_id, other])
        assert overdue(L_VIEWER) == [incident_id]  # the affected organisation sees its own
        assert overdue(MULTAN) == [other]
        assert overdue(KARACHI) == []
        assert overdue(S_HANDLER) == []
    # The early warning, late: met-late; the next deadline (72 h after awareness) is not overdue yet.
    with clock.frozen_at(AWARE + dt.timedelta(hours=26)):
        body = _incident(world(L_ANALYST).post(f"{path}/stage-reports", {"stage": "early-warning"}))
        assert {s["stage"]: s["state"] for s in body["clocks"]}["early-warning"] == "met-late"
        assert overdue(N_HANDLER) == [other]
        assert body["next_deadline_at"].startswith("2026-11-04T08:00:00")
    with clock.frozen_at(AWARE + dt.timedelta(hours=73)):
        assert states() == {"early-warning": "met-late", "notification": "overdue", "final-report": "due"}
        assert sorted(overdue(P_HANDLER)) == sorted([incident_id, other])
        # Closing the books stops the clock: a resolved incident is never overdue.
        for move in ("in-progress", "resolved"):
            _incident(world(P_HANDLER).post(f"{path}/status", {"status": move}))
        assert overdue(P_HANDLER) == [other]
        assert Incident.objects.get(pk=incident_id).next_deadline_at is None


# --- known bugs -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_stub_viewers_are_refused_writes_with_403_not_404(world: World) -> None:
    red = world.incident(L_ANALYST, tlp="red", named_users=[P_HANDLER])
    stub_viewers = [L_VIEWER, L_MANAGER, P_VIEWER, P_OTHER, N_VIEWER, N_HANDLER, ADMIN]
    for person in stub_viewers:
        assert world(person).get(f"/incidents/{red}").json()["redacted"] is True
    before = snapshot()
    got = {
        (person, suffix): world(person).post(f"/incidents/{red}/{suffix}", body).status_code
        for person in stub_viewers
        for suffix, body in WRITES
    }
    assert snapshot() == before  # refused, whatever the status
    assert got == dict.fromkeys(got, 403)


@pytest.mark.django_db
def test_assign_checks_the_incident_and_the_right_before_the_assignee(world: World) -> None:
    incident_id = world.incident(L_ANALYST)
    ghost = {"assignee": "no-such-user"}
    before = snapshot()
    got = {
        (KARACHI, "invisible"): world(KARACHI).post(f"/incidents/{incident_id}/assign", ghost).status_code,
        (KARACHI, "missing"): world(KARACHI).post(f"/incidents/{MISSING}/assign", ghost).status_code,
        (L_VIEWER, "visible"): world(L_VIEWER).post(f"/incidents/{incident_id}/assign", ghost).status_code,
    }
    assert snapshot() == before
    assert got == {(KARACHI, "invisible"): 404, (KARACHI, "missing"): 404, (L_VIEWER, "visible"): 403}


@pytest.mark.django_db
def test_filters_do_not_reveal_what_a_stub_withholds(world: World) -> None:
    red = world.incident(L_ANALYST, tlp="red", named_users=[P_HANDLER])
    assert world(N_HANDLER).get(f"/incidents/{red}").json()["classification_taxonomy"] is None
    matched = {
        taxonomy: red in ids(world(N_HANDLER).get("/incidents", taxonomy=taxonomy))
        for taxonomy in ("malicious-code", "fraud", "availability")
    }
    # Whatever the stub shows, it must not depend on the withheld classification.
    assert len(set(matched.values())) == 1, matched


@pytest.mark.django_db
def test_triage_cannot_lower_the_tlp_of_a_red_report(world: World) -> None:
    report_id = world.report(L_ANALYST, tlp="red", named_users=[P_HANDLER])
    before = snapshot()
    lowered = triage(world(P_HANDLER), report_id, tlp="clear")
    opened = Incident.objects.order_by("-pk").first()
    leaked = opened is not None and world(KARACHI).get(f"/incidents/{opened.pk}").status_code == 200
    assert (lowered.status_code, leaked) == (403, False)
    assert snapshot() == before


@pytest.mark.django_db
def test_merge_refuses_a_person_who_may_not_triage_before_looking_up_the_incident(world: World) -> None:
    lahore_incident = world.incident(L_ANALYST)
    karachi_report = world.report(KARACHI, "karachi")
    before = snapshot()
    got = {
        target: world(KARACHI)
        .post(f"/reports/{karachi_report}/triage", {"decision": "merge", "incident": target})
        .status_code
        for target in (lahore_incident, MISSING)
    }
    assert snapshot() == before
    assert got == {lahore_incident: 403, MISSING: 403}
