"""Incident reporting through the API: report → triage → routing → escalation → handling, with
visibility for every tier (a provincial CERT never sees another province's incidents; RED shows stubs)."""

from __future__ import annotations

import datetime as dt

import pytest

from certnet.core import clock
from certnet.core.audit import SystemActor
from certnet.core.models import AuditEntry
from certnet.core.roles import Role
from certnet.incidents.models import Escalation, Incident, Report
from certnet.registry import services as registry

ACTOR = SystemActor("test")
AWARE = "2026-11-01T08:00:00+00:00"


@pytest.fixture
def world(framework, make_user, api_as):
    def constituent(slug, parent, **extra):
        return registry.create_organisation(
            actor=ACTOR,
            data=registry.OrganisationInput(
                slug=slug,
                name=slug.title(),
                kind="constituent",
                reports_to=parent,
                reports_since=dt.date(2024, 1, 1),
                **extra,
            ),
        )

    orgs = {
        **framework,
        "lahore": constituent("lahore", "punjab-cert", tlp="amber"),
        "karachi": constituent("karachi", "sindh-cert"),
    }
    people = {
        "lahore": make_user(orgs["lahore"], Role.ANALYST, username="lahore.analyst"),
        "lahore-viewer": make_user(orgs["lahore"], Role.VIEWER, username="lahore.viewer"),
        "karachi": make_user(orgs["karachi"], Role.ANALYST, username="karachi.analyst"),
        "punjab": make_user(orgs["punjab-cert"], Role.HANDLER, username="punjab.handler"),
        "sindh": make_user(orgs["sindh-cert"], Role.HANDLER, username="sindh.handler"),
        "ncert": make_user(orgs["ncert"], Role.HANDLER, username="ncert.handler"),
        "nadra": make_user(orgs["nadra"], Role.ANALYST, username="nadra.analyst"),
    }
    clients = {name: api_as(user) for name, user in people.items()}
    clients["anonymous"] = api_as(None)
    return orgs, people, clients


def report(client, org, **extra):
    body = {
        "reporting_organisation": org,
        "title": "Ransomware on file servers",
        "description": "Files encrypted",
        "aware_at": AWARE,
        **extra,
    }
    return client.post("/reports", body)


def triage(client, report_id, **extra):
    body = {
        "decision": "open",
        "classification_taxonomy": "malicious-code",
        "classification_type": "infected-system",
        "severity": 2,
        **extra,
    }
    return client.post(f"/reports/{report_id}/triage", body)


@pytest.mark.django_db
def test_report_triage_and_routing_to_the_provincial_cert(world):
    _, _, c = world
    filed = report(c["lahore"], "lahore")
    assert filed.status_code == 201, filed.content
    report_id = filed.json()["id"]
    assert c["karachi"].get(f"/reports/{report_id}").status_code == 404
    assert c["sindh"].get(f"/reports/{report_id}").status_code == 404
    assert c["lahore"].post(f"/reports/{report_id}/triage", {"decision": "open"}).status_code in {403, 422}
    opened = triage(c["punjab"], report_id)
    assert opened.status_code == 200, opened.content
    assert opened.json()["status"] == "triaged"
    incident_id = opened.json()["incident"]
    detail = c["punjab"].get(f"/incidents/{incident_id}").json()
    assert (detail["handling_cert"]["slug"], detail["escalated_to"], detail["peca_sections"]) == (
        "punjab-cert",
        None,
        ["s. 3", "s. 4", "s. 5"],
    )
    assert detail["reporting_profile"] == "pk-provisional"
    assert [s["stage"] for s in detail["clocks"]] == ["early-warning", "notification", "final-report"]
    assert detail["clocks"][0]["due_at"].startswith("2026-11-02T08:00:00")
    # The chain sees it (reporting up is the framework's duty); another province does not.
    assert c["ncert"].get(f"/incidents/{incident_id}").status_code == 200
    assert c["sindh"].get(f"/incidents/{incident_id}").status_code == 404
    assert c["karachi"].get(f"/incidents/{incident_id}").status_code == 404
    assert c["anonymous"].get(f"/incidents/{incident_id}").status_code == 401


@pytest.mark.django_db
def test_significant_severity_escalates_to_the_national_cert(world):
    _, _, c = world
    report_id = report(c["lahore"], "lahore").json()["id"]
    incident_id = triage(c["punjab"], report_id, severity=4).json()["incident"]
    detail = c["ncert"].get(f"/incidents/{incident_id}").json()
    assert detail["escalated_to"]["slug"] == "ncert"
    assert [(e["from"], e["to"], e["rule"]) for e in detail["escalations"]] == [
        ("punjab-cert", "ncert", "severity")
    ]
    queue = c["ncert"].get("/incidents", handling_cert="ncert").json()
    assert [i["id"] for i in queue["items"]] == [incident_id]


@pytest.mark.django_db
def test_the_tier_filter_finds_incidents_where_they_sit(world):
    _, _, c = world
    provincial = triage(c["punjab"], report(c["lahore"], "lahore").json()["id"]).json()["incident"]
    national = triage(c["punjab"], report(c["lahore"], "lahore").json()["id"], severity=4).json()["incident"]

    def ids(tier):
        return sorted(i["id"] for i in c["ncert"].get("/incidents", tier=tier).json()["items"])

    # An escalated incident sits at both tiers: its provincial CERT still handles it.
    assert ids("provincial") == sorted([provincial, national])
    assert ids("national") == [national]
    assert ids("sectoral") == []
    refused = c["ncert"].get("/incidents", tier="global")
    assert refused.status_code == 422
    assert "'global' is not a tier; use one of national, provincial, sectoral, organisational" in refused.text


@pytest.mark.django_db
def test_a_cii_incident_is_handled_by_the_holder_of_the_cii_cert_function(world):
    _, _, c = world
    report_id = report(c["nadra"], "nadra").json()["id"]
    incident_id = triage(c["ncert"], report_id).json()["incident"]
    detail = c["ncert"].get(f"/incidents/{incident_id}").json()
    assert (detail["handling_cert"]["slug"], detail["peca_sections"]) == ("ncert", ["s. 6", "s. 7", "s. 8"])
    # When the CII-CERT function moves to another body, new CII incidents go there, and escalate.
    cii_cert = registry.create_organisation(
        actor=ACTOR,
        data=registry.OrganisationInput(
            slug="cii-cert-body",
            name="CII CERT",
            kind="sectoral-cert",
            reports_to="ncert",
            reports_since=dt.date(2026, 1, 1),
        ),
    )
    registry.assign_function(
        actor=ACTOR, function_slug="cii-cert", organisation=cii_cert, effective=dt.date(2026, 6, 1)
    )
    second = triage(c["ncert"], report(c["nadra"], "nadra").json()["id"]).json()["incident"]
    moved = c["ncert"].get(f"/incidents/{second}").json()
    assert (moved["handling_cert"]["slug"], moved["escalated_to"]["slug"]) == ("cii-cert-body", "ncert")
    assert [e["rule"] for e in moved["escalations"]] == ["cii"]


@pytest.mark.django_db
def test_an_incident_spanning_two_provinces_goes_to_the_lowest_common_cert(world):
    _, _, c = world
    report_id = report(c["lahore"], "lahore").json()["id"]
    incident_id = triage(c["punjab"], report_id, involved_organisations=["karachi"]).json()["incident"]
    detail = c["ncert"].get(f"/incidents/{incident_id}").json()
    assert (detail["escalated_to"]["slug"], detail["escalations"][0]["rule"]) == ("ncert", "cross-cert")
    # The other province's constituent and its CERT now see it.
    assert c["karachi"].get(f"/incidents/{incident_id}").status_code == 200
    assert c["sindh"].get(f"/incidents/{incident_id}").status_code == 200


@pytest.mark.django_db
def test_status_moves_assignment_and_stage_reports(world):
    _, _, c = world
    incident_id = triage(c["punjab"], report(c["lahore"], "lahore").json()["id"]).json()["incident"]
    before = AuditEntry.objects.count()
    refused = c["punjab"].post(f"/incidents/{incident_id}/status", {"status": "closed"})
    assert refused.status_code == 409
    assert "cannot become closed; it can become: in-progress, merged, rejected" in refused.json()["detail"]
    assert AuditEntry.objects.count() == before
    assert c["lahore"].post(f"/incidents/{incident_id}/status", {"status": "in-progress"}).status_code == 403
    assert c["punjab"].post(f"/incidents/{incident_id}/status", {"status": "in-progress"}).status_code == 200
    assert (
        c["punjab"].post(f"/incidents/{incident_id}/assign", {"assignee": "lahore.analyst"}).status_code
        == 422
    )
    assigned = c["punjab"].post(f"/incidents/{incident_id}/assign", {"assignee": "punjab.handler"})
    assert assigned.json()["assignee"] == "punjab.handler"
    assert (
        c["punjab"].post(f"/incidents/{incident_id}/stage-reports", {"stage": "early-warning"}).status_code
        == 403
    )
    filed = c["lahore"].post(
        f"/incidents/{incident_id}/stage-reports",
        {"stage": "early-warning", "content": {"summary": "contained to one site"}},
    )
    assert filed.status_code == 200, filed.content
    clocks = {s["stage"]: s["state"] for s in filed.json()["clocks"]}
    assert clocks["early-warning"] in {"met", "met-late"}
    again = c["lahore"].post(f"/incidents/{incident_id}/stage-reports", {"stage": "early-warning"})
    assert again.status_code == 409
    unknown = c["lahore"].post(f"/incidents/{incident_id}/stage-reports", {"stage": "postcard"})
    assert unknown.status_code == 422
    kinds = [t["kind"] for t in c["punjab"].get(f"/incidents/{incident_id}").json()["timeline"]]
    assert kinds == ["opened", "status", "assigned", "stage-report"]


@pytest.mark.django_db
def test_red_incidents_show_the_chain_only_a_stub(world):
    _, _, c = world
    assert report(c["lahore"], "lahore", tlp="red").status_code == 422  # RED must name its readers
    report_id = report(c["lahore"], "lahore", tlp="red", named_users=["punjab.handler"]).json()["id"]
    assert c["ncert"].get(f"/reports/{report_id}").status_code == 404  # not named: not even the report
    incident_id = triage(c["punjab"], report_id).json()["incident"]
    # The reporter and the triaging handler are named; the national CERT sees a stub.
    assert c["lahore"].get(f"/incidents/{incident_id}").json()["redacted"] is False
    stub = c["ncert"].get(f"/incidents/{incident_id}").json()
    assert stub["redacted"] is True
    assert (stub["title"], stub["description"], stub["clocks"], stub["severity"]) == (None, None, [], 2)
    assert c["sindh"].get(f"/incidents/{incident_id}").status_code == 404
    listed = c["ncert"].get("/incidents").json()["items"]
    assert [(i["id"], i["redacted"], i["title"]) for i in listed] == [(incident_id, True, None)]


@pytest.mark.django_db
def test_bad_reports_are_refused_and_nothing_is_written(world):
    _, _, c = world
    before = (Report.objects.count(), AuditEntry.objects.count())
    cases = [
        (report(c["lahore"], "karachi"), 403),  # not a member
        (report(c["lahore-viewer"], "lahore"), 403),  # viewers do not file reports
        (
            report(
                c["lahore"], "lahore", classification_taxonomy="malicious-code", classification_type="goblins"
            ),
            422,
        ),
        (report(c["lahore"], "lahore", severity=9), 422),
        (report(c["lahore"], "lahore", aware_at="2999-01-01T00:00:00+00:00"), 422),
        (report(c["lahore"], "lahore", affected_organisation="karachi"), 422),
        (report(c["lahore"], "lahore", tlp="mauve"), 422),
    ]
    assert [response.status_code for response, _ in cases] == [status for _, status in cases]
    assert (Report.objects.count(), AuditEntry.objects.count()) == before
    detail = cases[2][0].json()
    assert detail["errors"][0]["loc"] == "classification_type"
    report_id = report(c["lahore"], "lahore").json()["id"]
    bad = triage(c["punjab"], report_id, classification_taxonomy="nonsense")
    assert bad.status_code == 422
    assert (Incident.objects.count(), Escalation.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_overdue_incidents_come_first(world):
    _, _, c = world
    with clock.frozen_at(dt.datetime(2026, 11, 20, tzinfo=dt.UTC)):
        old = triage(c["punjab"], report(c["lahore"], "lahore").json()["id"]).json()["incident"]
        fresh = triage(
            c["punjab"], report(c["lahore"], "lahore", aware_at="2026-11-19T23:00:00+00:00").json()["id"]
        ).json()["incident"]
        queue = c["punjab"].get("/incidents", open_only="true").json()["items"]
        assert [i["id"] for i in queue] == [old, fresh]
        overdue = c["punjab"].get("/incidents", overdue="true").json()["items"]
        assert [i["id"] for i in overdue] == [old]


@pytest.mark.django_db
def test_a_cert_triages_and_handles_an_incident_on_its_own_systems(world, make_user, api_as):
    orgs, _, c = world
    punjab_analyst = api_as(make_user(orgs["punjab-cert"], Role.ANALYST, username="punjab.analyst"))
    filed = report(c["punjab"], "punjab-cert")
    assert filed.status_code == 201, filed.content
    report_id = filed.json()["id"]
    # Its own queue, its own triage: an analyst is below the handler role, another province is out.
    assert punjab_analyst.post(f"/reports/{report_id}/triage", {"decision": "open"}).status_code == 403
    assert c["sindh"].post(f"/reports/{report_id}/triage", {"decision": "open"}).status_code == 404
    opened = triage(c["punjab"], report_id)
    assert opened.status_code == 200, opened.content
    incident_id = opened.json()["incident"]
    detail = c["punjab"].get(f"/incidents/{incident_id}").json()
    assert detail["handling_cert"]["slug"] == "punjab-cert"
    assert c["punjab"].post(f"/incidents/{incident_id}/status", {"status": "in-progress"}).status_code == 200
    assert punjab_analyst.post(f"/incidents/{incident_id}/status", {"status": "contained"}).status_code == 403
    # The National CERT, above it, may still step in.
    assert c["ncert"].post(f"/incidents/{incident_id}/status", {"status": "contained"}).status_code == 200


@pytest.mark.django_db
def test_the_national_cert_triages_an_incident_on_its_own_systems(world):
    _, _, c = world
    report_id = report(c["ncert"], "ncert").json()["id"]
    assert c["punjab"].get(f"/reports/{report_id}").status_code == 404
    opened = triage(c["ncert"], report_id, severity=4)
    assert opened.status_code == 200, opened.content
    detail = c["ncert"].get(f"/incidents/{opened.json()['incident']}").json()
    assert (detail["handling_cert"]["slug"], detail["escalated_to"]) == ("ncert", None)
