"""Indicators through the API: recording (normalised, all or nothing), visibility by TLP and tier,
sightings, TLP changes, search, warninglists, and correlation alerts for the lowest CERT above."""

from __future__ import annotations

from certnet.core import audit
from certnet.core.audit import SystemActor
from certnet.core.models import AuditEntry
from certnet.intel.models import CorrelationAlert, Indicator, Sighting
from certnet.notifications.models import Notification

ACTOR = SystemActor("test")
SEEN = "2026-11-01T08:00:00+00:00"


def record(client, owner, *indicators):
    return client.post("/indicators", {"owner": owner, "indicators": list(indicators)})


def ip(value, **extra):
    return {"kind": "ipv4", "value": value, "first_seen": SEEN, **extra}


def test_values_are_recorded_normalised_and_a_known_value_is_brought_up_to_date(intel_world):
    _, _, clients = intel_world
    response = record(
        clients["lahore"],
        "lahore",
        {
            "kind": "url",
            "value": "HXXP://Evil.Example:80/Login#top",
            "tags": ["rsit:malicious-code/c2-server"],
        },
        {"kind": "domain", "value": "Bücher.Example."},
        {"kind": "sha256", "value": "SHA256:" + "AB" * 32, "tlp": "green"},
    )
    assert response.status_code == 201, response.content
    ids = response.json()["created"]
    assert len(ids) == 3
    rows = {i.kind: i for i in Indicator.objects.filter(pk__in=ids)}
    assert rows["url"].value == "http://evil.example/Login"
    assert rows["domain"].value == "xn--bcher-kva.example"
    assert rows["sha256"].value == "ab" * 32
    assert rows["sha256"].tlp == "green"
    assert rows["url"].tlp == "amber"
    detail = clients["lahore"].get(f"/indicators/{rows['url'].pk}").json()
    assert detail["tags"] == ['rsit:malicious-code="c2-server"']
    again = record(
        clients["lahore"], "lahore", {"kind": "url", "value": "http://evil.example/Login", "tlp": "red"}
    )
    assert again.json() == {"created": [], "updated": [rows["url"].pk], "correlations": []}
    assert Indicator.objects.get(pk=rows["url"].pk).tlp == "red"  # raised by a re-record, never lowered


def test_a_batch_with_one_bad_value_records_nothing_and_names_every_problem(intel_world):
    _, _, clients = intel_world
    before = (Indicator.objects.count(), AuditEntry.objects.count())
    response = record(
        clients["lahore"],
        "lahore",
        ip("45.9.149.10"),
        ip("10.0.0.1/24"),
        {"kind": "md5", "value": "abc"},
        {"kind": "fqdn", "value": "x.example"},
        ip("45.9.149.11", tags=["rsit:nonsense/thing"]),
    )
    assert response.status_code == 422
    locs = [e["loc"] for e in response.json()["errors"]]
    assert locs == [
        "indicators[1].value",
        "indicators[2].value",
        "indicators[3].kind",
        "indicators[4].tags[0]",
    ]
    messages = [e["msg"] for e in response.json()["errors"]]
    assert messages[0] == "'10.0.0.1/24' is a network, not an address; use kind cidr"
    assert messages[1] == "'abc' is not an MD5 hash: 32 hexadecimal digits expected, got 3 characters"
    assert (Indicator.objects.count(), AuditEntry.objects.count()) == before


def test_only_analysts_of_the_owner_record_for_it(intel_world):
    _, _, clients = intel_world
    assert record(clients["lahore-viewer"], "lahore", ip("45.9.149.1")).status_code == 403
    assert record(clients["karachi"], "lahore", ip("45.9.149.1")).status_code == 403
    assert record(clients["anonymous"], "lahore", ip("45.9.149.1")).status_code == 401
    assert Indicator.objects.count() == 0


def test_who_sees_an_indicator_follows_tlp_and_the_reporting_chain(intel_world):
    _, _, clients = intel_world
    amber = record(clients["lahore"], "lahore", ip("45.9.149.20")).json()["created"][0]
    green = record(clients["lahore"], "lahore", ip("45.9.149.21", tlp="green")).json()["created"][0]
    for name, amber_status in [
        ("lahore-viewer", 200),
        ("punjab", 200),
        ("ncert", 200),
        ("karachi", 404),
        ("sindh", 404),
    ]:
        assert clients[name].get(f"/indicators/{amber}").status_code == amber_status, name
        assert clients[name].get(f"/indicators/{green}").status_code == 200, name
    assert clients["anonymous"].get(f"/indicators/{green}").status_code == 401
    listed = clients["karachi"].get("/indicators").json()
    assert [item["id"] for item in listed["items"]] == [green]


def test_two_punjab_constituents_with_the_same_value_alert_punjab_cert_only(intel_world):
    orgs, _people, clients = intel_world
    record(clients["lahore"], "lahore", ip("45.9.148.7"))
    response = record(clients["multan"], "multan", ip("45.9.148.7"))
    alert_ids = response.json()["correlations"]
    assert len(alert_ids) == 1
    alert = CorrelationAlert.objects.get(pk=alert_ids[0])
    assert alert.cert == orgs["punjab-cert"]
    assert {o.slug for o in alert.organisations.all()} == {"lahore", "multan"}
    told = set(Notification.objects.filter(kind="correlation").values_list("recipient__username", flat=True))
    assert told == {"punjab.analyst", "punjab.handler"}
    detail = clients["punjab"].get(f"/correlations/{alert.pk}").json()
    assert {i["owner"]["slug"] for i in detail["indicators"]} == {"lahore", "multan"}
    assert clients["ncert"].get(f"/correlations/{alert.pk}").status_code == 200  # the chain above
    assert clients["sindh"].get(f"/correlations/{alert.pk}").status_code == 404
    assert clients["lahore"].get(f"/correlations/{alert.pk}").status_code == 404


def test_constituents_of_two_provinces_alert_the_national_cert_and_a_third_widens_it(intel_world):
    orgs, _, clients = intel_world
    record(clients["lahore"], "lahore", ip("45.9.148.8"))
    first = record(clients["karachi"], "karachi", ip("45.9.148.8")).json()["correlations"]
    alert = CorrelationAlert.objects.get(pk=first[0])
    assert alert.cert == orgs["ncert"]
    assert clients["ncert"].post(f"/correlations/{alert.pk}/status", {"status": "closed"}).status_code == 200
    record(clients["multan"], "multan", ip("45.9.148.8"))
    alert.refresh_from_db()
    assert alert.status == "open"  # a new organisation reopens it
    assert alert.organisations.count() == 3
    # lahore + multan share a CERT below: Punjab CERT gets its own alert
    assert CorrelationAlert.objects.filter(kind="ipv4", value="45.9.148.8").count() == 1
    assert AuditEntry.objects.filter(action="intel.correlation.widen").count() == 1


def test_a_sighting_by_another_constituency_raises_the_alert(intel_world):
    orgs, _, clients = intel_world
    green = record(clients["lahore"], "lahore", ip("45.9.148.9", tlp="green")).json()["created"][0]
    response = clients["karachi"].post(
        f"/indicators/{green}/sightings", {"organisation": "karachi", "count": 3}
    )
    assert response.status_code == 201, response.content
    assert response.json()["sighting"]["count"] == 3
    alert = CorrelationAlert.objects.get(pk=response.json()["correlations"][0])
    assert alert.cert == orgs["ncert"]
    again = clients["karachi"].post(f"/indicators/{green}/sightings", {"organisation": "karachi"})
    assert again.json()["sighting"]["count"] == 4
    assert again.json()["correlations"] == []  # nothing new to tell
    assert Sighting.objects.get().count == 4
    # Who may not see the indicator may not say they saw it.
    amber = record(clients["lahore"], "lahore", ip("45.9.148.10")).json()["created"][0]
    assert (
        clients["karachi"].post(f"/indicators/{amber}/sightings", {"organisation": "karachi"}).status_code
        == 404
    )


def test_warninglisted_and_red_values_never_correlate(intel_world):
    _, _, clients = intel_world
    record(clients["lahore"], "lahore", ip("8.8.8.8"), ip("45.9.148.11", tlp="red"))
    response = record(clients["karachi"], "karachi", ip("8.8.8.8"), ip("45.9.148.11", tlp="red"))
    assert response.json()["correlations"] == []
    flagged = Indicator.objects.filter(value="8.8.8.8").values_list("warninglist", flat=True)
    assert set(flagged) == {"public-dns-resolvers"}
    assert CorrelationAlert.objects.count() == 0


def test_tlp_is_raised_by_the_chain_and_lowered_only_by_the_owner(intel_world):
    _, _, clients = intel_world
    indicator = record(clients["lahore"], "lahore", ip("45.9.149.30")).json()["created"][0]
    raised = clients["punjab-handler"].patch(f"/indicators/{indicator}", {"tlp": "amber+strict"})
    assert raised.status_code == 200
    assert raised.json()["tlp"] == "amber+strict"
    before = AuditEntry.objects.count()
    lowered = clients["punjab-handler"].patch(f"/indicators/{indicator}", {"tlp": "green"})
    assert lowered.status_code == 403
    assert AuditEntry.objects.count() == before
    assert clients["lahore"].patch(f"/indicators/{indicator}", {"tlp": "green"}).json()["tlp"] == "green"
    assert clients["karachi"].patch(f"/indicators/{indicator}", {"confidence": 90}).status_code == 403


def test_search_finds_values_networks_and_hosts_in_pasted_text(intel_world):
    _, _, clients = intel_world
    record(
        clients["lahore"],
        "lahore",
        {"kind": "cidr", "value": "45.9.150.0/25", "tlp": "green"},
        {"kind": "domain", "value": "bad.example", "tlp": "green"},
    )
    text = "Beacon to 45.9.150.77 and hxxps://bad[.]example/x.php; resolver 8.8.8.8."
    hits = clients["karachi"].post("/indicators/search", {"text": text}).json()
    by_value = {hit["value"]: hit for hit in hits}
    assert [i["value"] for i in by_value["45.9.150.77"]["indicators"]] == ["45.9.150.0/25"]
    assert [i["value"] for i in by_value["https://bad.example/x.php"]["indicators"]] == ["bad.example"]
    assert by_value["8.8.8.8"]["warninglist"] == "public-dns-resolvers"
    assert by_value["8.8.8.8"]["indicators"] == []


def test_warninglists_are_edited_by_platform_administrators_and_indicators_reflagged(intel_world):
    _, _, clients = intel_world
    indicator = record(clients["lahore"], "lahore", ip("45.9.149.40")).json()["created"][0]
    assert Indicator.objects.get(pk=indicator).warninglist == ""
    change = {"add": ["45.9.149.0/24"]}
    assert clients["ncert"].patch("/warninglists/public-dns-resolvers", change).status_code == 403
    response = clients["admin"].patch("/warninglists/public-dns-resolvers", change)
    assert response.status_code == 200
    assert "45.9.149.0/24" in response.json()["values"]
    assert Indicator.objects.get(pk=indicator).warninglist == "public-dns-resolvers"
    bad = clients["admin"].patch("/warninglists/public-dns-resolvers", {"add": ["45.9.149.1/24"]})
    assert bad.status_code == 422
    assert "45.9.149.1/24" in bad.json()["detail"]
    assert (
        clients["admin"]
        .patch("/warninglists/public-dns-resolvers", {"remove": ["45.9.149.0/24"]})
        .status_code
        == 200
    )
    assert Indicator.objects.get(pk=indicator).warninglist == ""
    assert audit.verify().ok
