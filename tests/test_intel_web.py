"""The intel pages: one-box search, an indicator, and correlation alerts (only for whom may see them)."""

from __future__ import annotations

from django.test import Client

from certnet.intel.models import CorrelationAlert


def browser(user):
    client = Client()
    client.force_login(user)
    return client


def test_the_search_box_finds_values_in_pasted_text_and_flags_warninglisted_ones(intel_world):
    _, people, clients = intel_world
    clients["lahore"].post(
        "/indicators",
        {"owner": "lahore", "indicators": [{"kind": "domain", "value": "bad.example", "tlp": "green"}]},
    )
    page = browser(people["karachi"]).get("/intel/", {"q": "Clicked hxxp://bad[.]example/a then 8.8.8.8"})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-value="http://bad.example/a"' in html
    assert ">bad.example</code></a>" in html
    assert "on warninglist public-dns-resolvers" in html
    fragment = browser(people["karachi"]).get("/intel/", {"q": "bad.example"}, headers={"HX-Request": "true"})
    assert fragment.content.decode().startswith('<section id="search-result"')


def test_an_indicator_page_shows_its_sightings_to_those_who_may_see_it(intel_world):
    _, people, clients = intel_world
    created = clients["lahore"].post(
        "/indicators", {"owner": "lahore", "indicators": [{"kind": "ipv4", "value": "45.9.151.3"}]}
    )
    indicator = created.json()["created"][0]
    clients["punjab"].post(f"/indicators/{indicator}/sightings", {"organisation": "punjab-cert", "count": 2})
    page = browser(people["punjab"]).get(f"/intel/indicators/{indicator}/")
    assert page.status_code == 200
    assert "Punjab CERT: 2 times" in page.content.decode()
    assert browser(people["karachi"]).get(f"/intel/indicators/{indicator}/").status_code == 404


def test_a_cert_analyst_works_a_correlation_alert_from_its_page(intel_world):
    _, people, clients = intel_world
    for org in ("lahore", "multan"):
        clients[org].post(
            "/indicators", {"owner": org, "indicators": [{"kind": "ipv4", "value": "45.9.151.4"}]}
        )
    alert = CorrelationAlert.objects.get()
    listing = browser(people["punjab"]).get("/intel/correlations/")
    assert f'href="/intel/correlations/{alert.pk}/"' in listing.content.decode()
    detail = browser(people["punjab"]).get(f"/intel/correlations/{alert.pk}/")
    html = detail.content.decode()
    assert "Lahore" in html
    assert "Multan" in html
    assert browser(people["sindh"]).get(f"/intel/correlations/{alert.pk}/").status_code == 404
    done = browser(people["punjab"]).post(
        f"/intel/correlations/{alert.pk}/status/", {"status": "acknowledged", "note": "blocked at the edge"}
    )
    assert done.status_code == 302
    alert.refresh_from_db()
    assert (alert.status, alert.note) == ("acknowledged", "blocked at the edge")
    refused = browser(people["sindh"]).post(f"/intel/correlations/{alert.pk}/status/", {"status": "closed"})
    assert refused.status_code == 404
    alert.refresh_from_db()
    assert alert.status == "acknowledged"


def test_an_intel_report_page_shows_its_audience_and_indicators_and_offers_stix(intel_world):
    import json

    import stix2

    _, people, clients = intel_world
    created = clients["lahore"].post(
        "/indicators", {"owner": "lahore", "indicators": [{"kind": "ipv4", "value": "45.9.151.9"}]}
    )
    ids = created.json()["created"]
    report = clients["lahore"].post(
        "/intel-reports",
        {
            "owner": "lahore",
            "title": "Phishing wave",
            "tlp": "amber",
            "audience": "organisations",
            "organisations": ["karachi"],
            "indicators": ids,
        },
    )
    assert report.status_code == 201, report.content
    report_id = report.json()["id"]
    listing = browser(people["karachi"]).get("/intel/reports/").content.decode()
    assert "Phishing wave" in listing
    page = browser(people["karachi"]).get(f"/intel/reports/{report_id}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Listed organisations: Karachi" in html
    assert "45.9.151.9" in html
    download = browser(people["karachi"]).get(f"/intel/reports/{report_id}/stix/")
    assert download["Content-Type"].startswith("application/stix+json")
    stix2.parse(json.dumps(json.loads(download.content)), allow_custom=False)
    assert browser(people["multan"]).get(f"/intel/reports/{report_id}/").status_code == 404
    assert "Phishing wave" not in browser(people["multan"]).get("/intel/reports/").content.decode()
