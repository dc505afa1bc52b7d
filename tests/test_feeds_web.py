"""The feed pages: sources, a source and a run (with its quarantine), event search and the national
feed dashboard, each showing only what visibility lets the user see."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client

from certnet.core import clock
from certnet.core.audit import SystemActor
from certnet.core.roles import Role
from certnet.feeds.services import run_source_file
from certnet.registry.models import Organisation
from tests.feeds_support import event, scan_rdp, write

ACTOR = SystemActor("test")
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def frozen():
    with clock.frozen_at(NOW):
        yield


def browser(user):
    client = Client()
    client.force_login(user)
    return client


def _run(world, name, *rows):
    path = write(world, name, scan_rdp(list(rows)))
    return run_source_file(ACTOR, world["source"], path).run


@pytest.fixture
def fed(feed_world, make_user, frozen):
    """One report: two Lahore events (IPv4 on the 20th, IPv6 on the 21st), one Karachi event, one
    unrouted (Karachi's second block starts on the 21st) and one malformed row."""
    run = _run(
        feed_world,
        "2026-11-21-scan_rdp-pakistan-geo.csv",
        event("198.51.100.7"),
        event("203.0.113.5"),
        event("203.0.113.200"),
        event("2001:db8:10::5", at="2026-11-21 09:00:00"),
        event("<script>alert(1)</script>"),
    )
    people = {
        "ncert": make_user(Organisation.objects.get(slug="ncert"), Role.ANALYST),
        "punjab": make_user(Organisation.objects.get(slug="punjab-cert"), Role.ANALYST),
        "lahore": make_user(feed_world["lahore"], Role.VIEWER),
    }
    return {**feed_world, "run": run, "people": people}


def _text(response):
    return response.content.decode()


def _number(html, testid):
    found = re.search(rf'data-testid="{testid}">(\d+)', html)
    assert found, f"no {testid} in the page"
    return int(found.group(1))


def test_the_sources_page_lists_a_source_with_its_last_run(fed):
    html = _text(browser(fed["people"]["ncert"]).get("/feeds/"))
    assert 'data-code="shadowserver"' in html
    assert f'href="/feeds/runs/{fed["run"].pk}/"' in html
    assert "Shadowserver" in html
    assert "on demand" in html
    routed = re.search(r'data-code="shadowserver".*?<td class="num">(\d+)</td>', html, re.S)
    assert routed
    assert int(routed.group(1)) == 3  # two Lahore events and one Karachi event
    assert 'href="/feeds/"' in html  # the main navigation
    assert ">Feeds</a>" in html


def test_a_source_page_shows_its_runs_volumes_and_errors(fed):
    empty = write(fed, "2026-11-22-scan_rdp-pakistan-geo.csv", "")
    failed = run_source_file(ACTOR, fed["source"], empty).run
    assert failed.status == "failed"
    client = browser(fed["people"]["ncert"])
    page = client.get("/feeds/sources/shadowserver/")
    assert page.status_code == 200
    html = _text(page)
    assert f'data-run="{fed["run"].pk}"' in html
    assert "punjab-cert 2" in html
    assert "sindh-cert 1" in html
    assert 'data-testid="source-volumes"' in html
    assert "2026-11-23" in html  # the day the runs started
    errors = html[html.index('data-testid="source-errors"') :]
    assert f'href="/feeds/runs/{failed.pk}/"' in errors
    assert "the file is empty" in errors
    run_page = _text(client.get(f"/feeds/runs/{failed.pk}/"))
    assert 'data-testid="run-error"' in run_page
    assert "the file is empty" in run_page
    fragment = client.get("/feeds/sources/shadowserver/", headers={"HX-Request": "true"})
    assert _text(fragment).startswith('<section id="run-table"')


def test_a_run_page_shows_counts_routing_and_quarantined_rows_escaped(fed):
    page = browser(fed["people"]["ncert"]).get(f"/feeds/runs/{fed['run'].pk}/")
    assert page.status_code == 200
    html = _text(page)
    assert "Quarantined" in html
    assert 'data-testid="run-per-cert"' in html
    assert "punjab-cert" in html
    assert "sindh-cert" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; is not a valid ip" in html.replace("&#x27;", "")
    assert '<pre class="feed-raw">' in html
    assert "medium,&lt;script&gt;alert(1)&lt;/script&gt;,tcp" in html
    assert "<script>alert(1)" not in html


def test_a_national_analyst_searches_every_event_and_pages_through_them(fed):
    client = browser(fed["people"]["ncert"])
    html = _text(client.get("/feeds/events/"))
    assert _number(html, "event-total") == 4
    assert html.count('data-testid="feed-event"') == 4
    assert 'data-ip="2001:db8:10::5"' in html
    assert _number(_text(client.get("/feeds/events/", {"cert": "sindh-cert"})), "event-total") == 1
    assert _number(_text(client.get("/feeds/events/", {"prefix": "198.51.100.0/24"})), "event-total") == 1
    assert _number(_text(client.get("/feeds/events/", {"asn": "AS64500"})), "event-total") == 0
    assert _number(_text(client.get("/feeds/events/", {"since": "2026-11-21"})), "event-total") == 1
    first = _text(client.get("/feeds/events/", {"limit": 3}))
    assert first.count('data-testid="feed-event"') == 3
    assert "offset=3" in first
    second = client.get("/feeds/events/", {"limit": 3, "offset": 3}, headers={"HX-Request": "true"})
    assert _text(second).startswith('<section id="event-result"')
    assert _text(second).count('data-testid="feed-event"') == 1


def test_the_dashboard_counts_per_day_by_taxonomy_cert_and_unrouted_share(fed):
    html = _text(browser(fed["people"]["ncert"]).get("/feeds/dashboard/"))
    assert _number(html, "dashboard-total") == 4
    day = re.search(r'data-testid="by-cert".*?data-day="2026-11-20">(.*?)</tr>', html, re.S)
    assert day, "no row for the 20th"
    assert [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', day.group(1))] == [1, 1, 1, 3]
    assert "vulnerable" in html
    unrouted = re.search(r'data-testid="unrouted".*?data-day="2026-11-20">(.*?)</tr>', html, re.S)
    assert unrouted
    assert "33.3%" in unrouted.group(1)
    assert "No events yet" not in html
    client = browser(fed["people"]["ncert"])
    assert (
        _number(_text(client.get("/feeds/dashboard/", {"days": "3"})), "dashboard-total") == 1
    )  # the 21st to the 23rd
    assert 'data-testid="dashboard-none"' in _text(client.get("/feeds/dashboard/", {"days": "2"}))


def test_a_constituent_sees_only_its_own_events_and_no_source(fed):
    lahore = browser(fed["people"]["lahore"])
    html = _text(lahore.get("/feeds/events/"))
    assert _number(html, "event-total") == 2
    assert set(re.findall(r'data-ip="([^"]+)"', html)) == {"198.51.100.7", "2001:db8:10::5"}
    board = _text(lahore.get("/feeds/dashboard/"))
    assert _number(board, "dashboard-total") == 2
    assert "sindh-cert" not in board
    unrouted = re.search(r'data-testid="unrouted".*?data-day="2026-11-20">(.*?)</tr>', board, re.S)
    assert unrouted
    assert "0.0%" in unrouted.group(1)
    assert 'data-code="shadowserver"' not in _text(lahore.get("/feeds/"))
    assert lahore.get("/feeds/sources/shadowserver/").status_code == 404
    assert lahore.get(f"/feeds/runs/{fed['run'].pk}/").status_code == 404


def test_another_cert_sees_its_constituency_but_not_the_national_source(fed):
    punjab = browser(fed["people"]["punjab"])
    # The source is operated by the National CERT at AMBER: Punjab CERT is below it, not above.
    assert punjab.get("/feeds/sources/shadowserver/").status_code == 404
    assert punjab.get(f"/feeds/runs/{fed['run'].pk}/").status_code == 404
    assert _number(_text(punjab.get("/feeds/events/")), "event-total") == 2
    assert _number(_text(punjab.get("/feeds/dashboard/")), "dashboard-total") == 2


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"prefix": "10.0.0.0/33"}, "prefix", "is not a CIDR network"),
        ({"ip": "nope"}, "ip", "is not an IP address"),
        ({"asn": "ASX"}, "asn", "is not an AS number"),
        ({"since": "2026-13-01"}, "since", "is not a date"),
        ({"since": "2026-11-22", "until": "2026-11-21"}, "until", "is before since"),
        ({"limit": "0"}, "limit", "from 1 to"),
        ({"offset": "-1"}, "offset", "0 or more"),
    ],
)
def test_bad_search_input_shows_the_field_error(fed, params, field, message):
    response = browser(fed["people"]["ncert"]).get("/feeds/events/", params)
    assert response.status_code == 200
    html = _text(response)
    assert f'<li data-field="{field}">' in html
    assert message in html
    assert 'data-testid="feed-event"' not in html


def test_a_bad_period_on_the_dashboard_shows_the_error_and_the_default(fed):
    for days in ("0", "366", "many"):
        response = browser(fed["people"]["ncert"]).get("/feeds/dashboard/", {"days": days})
        assert response.status_code == 200
        html = _text(response)
        assert 'data-testid="dashboard-error"' in html
        assert "Showing the last 30 days" in html


def test_an_empty_store_says_no_events_yet(feed_world, make_user, frozen):
    client = browser(make_user(Organisation.objects.get(slug="ncert"), Role.ANALYST))
    assert 'data-testid="dashboard-empty"' in _text(client.get("/feeds/dashboard/"))
    html = _text(client.get("/feeds/events/"))
    assert _number(html, "event-total") == 0
    assert "never run" in _text(client.get("/feeds/"))


@pytest.mark.parametrize(
    "path",
    ["/feeds/", "/feeds/sources/shadowserver/", "/feeds/runs/1/", "/feeds/events/", "/feeds/dashboard/"],
)
def test_anonymous_users_are_sent_to_sign_in(db, path):
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
