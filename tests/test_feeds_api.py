"""The feeds API: sources, runs, quarantine, running a source now, and event search, each through
visibility."""

from __future__ import annotations

from certnet.core.audit import SystemActor
from certnet.core.roles import Role
from certnet.feeds.services import run_source_file
from certnet.registry.models import Organisation
from tests.feeds_support import event, scan_rdp, write

ACTOR = SystemActor("test")


def _run(world, *rows):
    path = write(world, "2026-11-20-scan_rdp-pakistan-geo.csv", scan_rdp(list(rows)))
    return run_source_file(ACTOR, world["source"], path).run


def test_a_national_analyst_reads_sources_runs_quarantine_and_events(feed_world, make_user, api_as):
    run = _run(feed_world, event("198.51.100.7"), event("203.0.113.5"), event("<script>"))
    analyst = api_as(make_user(Organisation.objects.get(slug="ncert"), Role.ANALYST))

    sources = analyst.get("/feeds/sources").json()
    assert [s["code"] for s in sources["items"]] == ["shadowserver"]
    assert analyst.get("/feeds/sources/shadowserver").json()["owner"] == "ncert"
    runs = analyst.get("/feeds/runs", source="shadowserver").json()
    assert runs["count"] == 1
    assert runs["items"][0]["id"] == run.pk
    assert runs["items"][0]["source"] == "shadowserver"
    detail = analyst.get(f"/feeds/runs/{run.pk}").json()
    assert detail["counts"]["written"] == 2
    assert detail["per_cert"] == {"punjab-cert": 1, "sindh-cert": 1}
    quarantine = analyst.get(f"/feeds/runs/{run.pk}/quarantine").json()["items"]
    assert quarantine[0]["reason"] == "column 'ip': '<script>' is not a valid ip"
    events = analyst.get("/feeds/events", cert="sindh-cert").json()
    assert events["total"] == 1
    assert events["events"][0]["source.ip"] == "203.0.113.5"
    assert events["events"][0]["route.organisation"] == "karachi"


def test_a_constituent_reads_only_its_own_events_and_no_source(feed_world, make_user, api_as):
    _run(feed_world, event("198.51.100.7"), event("203.0.113.5"))
    lahore = api_as(make_user(feed_world["lahore"], Role.VIEWER))
    events = lahore.get("/feeds/events").json()
    assert [e["source.ip"] for e in events["events"]] == ["198.51.100.7"]
    assert lahore.get("/feeds/sources").json()["count"] == 0
    assert lahore.get("/feeds/sources/shadowserver").status_code == 404
    assert lahore.get("/feeds/runs").json()["count"] == 0
    assert api_as(None).get("/feeds/events").status_code == 401


def test_bad_search_input_is_a_422_naming_the_field(feed_world, make_user, api_as):
    analyst = api_as(make_user(Organisation.objects.get(slug="ncert"), Role.ANALYST))
    _run(feed_world, event("198.51.100.7"))
    bad = (({"prefix": "10.0.0.0/33"}, "prefix"), ({"ip": "nope"}, "ip"), ({"limit": 0}, "limit"))
    for params, field in bad:
        response = analyst.get("/feeds/events", **params)
        assert response.status_code == 422, params
        assert field in response.content.decode()


def test_running_a_source_now_needs_the_run_right(feed_world, make_user, api_as, settings):
    folder = feed_world["dir"] / "drop"
    folder.mkdir()
    write(feed_world, "drop/2026-11-20-scan_rdp-pakistan-geo.csv", scan_rdp([event("198.51.100.7")]))
    source = feed_world["source"]
    source.location = str(folder)
    source.save()
    viewer = api_as(make_user(Organisation.objects.get(slug="ncert"), Role.VIEWER))
    assert viewer.post("/feeds/sources/shadowserver/run", {}).status_code == 403
    analyst = api_as(make_user(Organisation.objects.get(slug="ncert"), Role.ANALYST))
    runs = analyst.post("/feeds/sources/shadowserver/run", {}).json()
    assert [r["status"] for r in runs] == ["done"]
    assert runs[0]["counts"]["written"] == 1
