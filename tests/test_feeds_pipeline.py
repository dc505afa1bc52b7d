"""The feed pipeline end to end: a Shadowserver report through parsing, deduplication, routing by the
registry as of the event's day, the events store and the run's record."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from pathlib import Path

import pytest
from django.core.management import call_command

from certnet.core import audit
from certnet.core.audit import SystemActor
from certnet.core.errors import InvalidInput
from certnet.feeds.models import FeedRun, QuarantinedRow, RunStatus
from certnet.feeds.services import run_source_file
from certnet.registry.models import Organisation
from tests.feeds_support import event, scan_rdp, stored, write

ACTOR = SystemActor("test")


def test_a_report_is_parsed_deduplicated_routed_and_stored_with_its_run(feed_world):
    rows = [
        event("198.51.100.7", hostname="Host.Example.PK.", tag="rdp;cve-2019-0708"),
        event("198.51.100.7", hostname="Host.Example.PK.", tag="rdp;cve-2019-0708"),  # exact duplicate
        event("198.51.100.7", at="2026-11-20 11:00:00"),  # same host, another scan: a new event
        event("203.0.113.5"),
        event("203.0.113.200"),  # in a block registered only from the 21st
        event("192.0.2.9", asn="64500"),  # no netblock, routed by its AS number
        event("192.0.2.10"),  # nobody's
        event("2001:DB8:10::1"),
        event("not-an-address"),
        event("198.51.100.8", at=""),
    ]
    path = write(feed_world, "2026-11-20-scan_rdp-pakistan-geo.csv", scan_rdp(rows))
    outcome = run_source_file(ACTOR, feed_world["source"], path)

    run = outcome.run
    assert run.status == RunStatus.DONE
    assert run.mapping == "shadowserver/scan_rdp"
    assert not run.error
    assert run.counts["read"] == 10
    assert run.counts["parsed"] == 8
    assert run.counts["quarantined"] == 2
    assert run.counts["duplicates"] == 1
    assert run.counts["routed"] == 5
    assert run.counts["unrouted"] == 2
    assert run.per_cert == {"punjab-cert": 3, "sindh-cert": 2}

    events = stored(feed_world["events"])
    assert len(events) == 7
    by_ip = {}
    for item in events:
        by_ip.setdefault(item["source.ip"], []).append(item)
    first = by_ip["198.51.100.7"][0]
    assert first["time.source"] == dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
    assert first["source.port"] == 3389
    assert first["source.reverse_dns"] == "host.example.pk"
    assert first["classification.taxonomy"] == "vulnerable"
    assert first["classification.type"] == "vulnerable-system"
    assert first["product.vulnerabilities"] == "cve-2019-0708"
    assert first["extra.tag"] == "rdp;cve-2019-0708"
    assert first["route.organisation"] == "lahore"
    assert first["route.cert"] == "punjab-cert"
    assert first["route.chain"].split() == ["ncert"]
    assert first["route.matched"] == "ip"
    assert first["route.resource"] == "198.51.100.0/24"
    assert first["feed.code"] == "shadowserver"
    assert first["tlp"] == "AMBER"
    assert first["day"] == dt.date(2026, 11, 20)
    assert len(by_ip["198.51.100.7"]) == 2
    assert by_ip["2001:db8:10::1"][0]["route.organisation"] == "lahore"
    assert by_ip["192.0.2.9"][0]["route.organisation"] == "karachi"
    assert by_ip["192.0.2.9"][0]["route.matched"] == "asn"
    assert by_ip["203.0.113.200"][0]["route.organisation"] is None
    assert by_ip["192.0.2.10"][0]["route.organisation"] is None

    quarantined = {q.reason: q.raw for q in QuarantinedRow.objects.filter(run=run)}
    assert "column 'ip': 'not-an-address' is not a valid ip" in quarantined
    assert '"not-an-address"' not in quarantined["column 'ip': 'not-an-address' is not a valid ip"]
    assert "not-an-address" in quarantined["column 'ip': 'not-an-address' is not a valid ip"]
    assert any(reason.startswith("column 'timestamp' is empty") for reason in quarantined)
    assert audit.verify().ok


def test_the_same_file_again_changes_nothing_and_a_later_report_drops_what_was_seen(feed_world):
    rows = [event("198.51.100.7"), event("203.0.113.5")]
    path = write(feed_world, "2026-11-20-scan_rdp-pakistan-geo.csv", scan_rdp(rows))
    first = run_source_file(ACTOR, feed_world["source"], path)
    repeated = run_source_file(ACTOR, feed_world["source"], path)
    assert repeated.repeated
    assert repeated.run.pk == first.run.pk

    # Processed again on purpose (as after a crash): its batches replace their own output.
    again = run_source_file(ACTOR, feed_world["source"], path, again=True)
    assert again.run.pk != first.run.pk
    assert again.run.counts["duplicates"] == 0
    assert len(stored(feed_world["events"])) == 2

    later = write(
        feed_world, "2026-11-20-scan_rdp-pakistan-geo-v2.csv", scan_rdp([*rows, event("198.51.100.9")])
    )
    outcome = run_source_file(ACTOR, feed_world["source"], later)
    assert outcome.run.counts["duplicates"] == 2
    assert outcome.run.counts["written"] == 1
    assert sorted(e["source.ip"] for e in stored(feed_world["events"])) == [
        "198.51.100.7",
        "198.51.100.9",
        "203.0.113.5",
    ]


def test_files_the_pipeline_cannot_read_fail_their_run_with_a_reason_and_nothing_stored(feed_world):
    empty = write(feed_world, "2026-11-20-scan_rdp-empty.csv", "")
    run = run_source_file(ACTOR, feed_world["source"], empty).run
    assert run.status == RunStatus.FAILED
    assert "the file is empty" in run.error

    unknown = write(feed_world, "inventory.csv", "name,colour\nwidget,blue\n")
    run = run_source_file(ACTOR, feed_world["source"], unknown).run
    assert run.status == RunStatus.FAILED
    assert "no mapping recognises this file" in run.error
    assert "name, colour" in run.error
    assert not list(feed_world["events"].glob("**/*.parquet"))


def test_lines_with_too_many_columns_are_quarantined_short_ones_read_and_the_run_goes_on(feed_world):
    text = (
        scan_rdp([event("198.51.100.7")])
        + '"2026-11-20 10:00:00","medium","198.51.100.8","tcp","3389","","","","","","","x"\n'
    )
    text += '"2026-11-20 10:00:00","medium","198.51.100.9"\n'  # the last columns missing: read as empty
    text += scan_rdp([event("203.0.113.5")]).split("\n", 1)[1]
    path = write(feed_world, "2026-11-20-scan_rdp-pakistan-geo.csv", text)
    run = run_source_file(ACTOR, feed_world["source"], path).run
    assert run.status == RunStatus.DONE
    assert run.counts["read"] == 4
    assert run.counts["quarantined"] == 1
    assert run.counts["written"] == 3
    assert run.notes == ["1 line(s) ended early; their missing last columns were read as empty"]
    row = QuarantinedRow.objects.get(run=run)
    assert row.reason == "expected 11 columns, found 12"
    assert "198.51.100.8" in row.raw
    assert {e["source.ip"]: e["source.port"] for e in stored(feed_world["events"])}["198.51.100.9"] is None


def test_the_cli_runs_a_file_and_prints_its_summary(feed_world):
    path = write(
        feed_world,
        "2026-11-20-scan_rdp-pakistan-geo.csv",
        scan_rdp([event("198.51.100.7"), event("192.0.2.1")]),
    )
    out = io.StringIO()
    call_command("feeds", "run", str(path), "--json", stdout=out)
    summary = json.loads(out.getvalue())
    assert summary["status"] == "done"
    assert summary["routed"] == 1
    assert summary["unrouted"] == 1
    assert summary["per_cert"] == {"punjab-cert": 1}
    assert FeedRun.objects.get(pk=summary["run"]).source.code == "shadowserver"


def test_events_are_searched_with_visibility_by_constituent_and_cert(feed_world, make_user):
    from certnet.core.roles import Role
    from certnet.feeds.selectors import EventQuery, search_events

    rows = [
        event("198.51.100.7"),
        event("198.51.100.9"),
        event("203.0.113.5"),
        event("192.0.2.10"),
        event("2001:db8:10::5"),
    ]
    path = write(feed_world, "2026-11-20-scan_rdp-pakistan-geo.csv", scan_rdp(rows))
    run_source_file(ACTOR, feed_world["source"], path)
    orgs = Organisation.objects.in_bulk(field_name="slug")
    lahore = make_user(orgs["lahore"], Role.VIEWER)
    punjab = make_user(orgs["punjab-cert"], Role.ANALYST)
    sindh = make_user(orgs["sindh-cert"], Role.ANALYST)
    national = make_user(orgs["ncert"], Role.ANALYST)

    def ips(user, **filters):
        events, total = search_events(user, EventQuery(**filters))
        assert total == len(events)
        return sorted(e["source.ip"] for e in events)

    assert ips(lahore) == ["198.51.100.7", "198.51.100.9", "2001:db8:10::5"]
    assert ips(punjab) == ["198.51.100.7", "198.51.100.9", "2001:db8:10::5"]
    assert ips(sindh) == ["203.0.113.5"]
    # The national CERT sees its whole constituency and the unrouted events of the source it operates.
    assert ips(national) == ["192.0.2.10", "198.51.100.7", "198.51.100.9", "2001:db8:10::5", "203.0.113.5"]
    assert ips(None) == []
    assert ips(national, prefix="198.51.100.8/29") == ["198.51.100.9"]
    assert ips(national, prefix="2001:db8::/32") == ["2001:db8:10::5"]
    assert ips(national, ip="198.51.100.7") == ["198.51.100.7"]
    assert ips(national, cert="sindh-cert") == ["203.0.113.5"]
    assert ips(national, since=dt.date(2026, 11, 21)) == []
    events, total = search_events(national, EventQuery(limit=2))
    assert total == 5
    assert len(events) == 2
    with pytest.raises(InvalidInput) as refused:
        search_events(national, EventQuery(prefix="198.51.100.0/33"))
    assert refused.value.errors[0].loc == "prefix"


def test_a_downloaded_shadowserver_schema_installs_mappings_the_pipeline_then_uses(feed_world, settings):
    shared = Path(os.environ.get("CERTNET_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
    schema = shared / "data" / "shadowserver" / "intelmq.json"
    if not schema.exists():
        pytest.skip(f"Shadowserver's schema snapshot is not at {schema}")
    settings.CERTNET_FEED_MAPPINGS_DIR = feed_world["dir"] / "mappings"
    out = io.StringIO()
    call_command("feeds", "shadowserver-schema", str(schema), stdout=out)
    assert "Shadowserver report mappings installed" in out.getvalue()
    # scan_quic is not shipped; once the schema is installed its reports are recognised.
    sample = (shared / "data" / "shadowserver" / "samples" / "scan_quic.csv").read_text(encoding="utf-8")
    path = write(feed_world, "2026-11-20-scan_quic-pakistan-geo.csv", sample)
    run = run_source_file(ACTOR, feed_world["source"], path).run
    assert run.status == RunStatus.DONE
    assert run.mapping == "shadowserver/scan_quic"
    assert audit.verify().ok


def test_an_indicator_of_one_constituency_met_in_anothers_feed_events_alerts_the_cert_above_both(feed_world):
    from certnet.intel.models import CorrelationAlert, Indicator, Sighting
    from certnet.intel.services.warninglists import load_warninglists

    load_warninglists(actor=ACTOR)
    seen_everywhere = Indicator.objects.create(
        owner=feed_world["karachi"],
        kind="ipv4",
        value="198.51.100.7",
        tlp="amber",
        first_seen=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        last_seen=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        created_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        updated_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    )
    # Karachi recorded the address; a report finds it twice in Lahore's network.
    rows = [event("198.51.100.7"), event("198.51.100.7", at="2026-11-20 12:00:00"), event("203.0.113.9")]
    path = write(feed_world, "2026-11-20-scan_rdp-pakistan-geo.csv", scan_rdp(rows))
    run = run_source_file(ACTOR, feed_world["source"], path).run
    assert run.counts["indicator_hits"] == 2
    assert run.counts["sightings"] == 1
    sighting = Sighting.objects.get(indicator=seen_everywhere)
    assert sighting.organisation.slug == "lahore"
    assert sighting.count == 2
    assert sighting.source == f"feed shadowserver, run {run.pk}"
    # Karachi (Sindh) and Lahore (Punjab): the alert goes to the lowest CERT above both.
    alert = CorrelationAlert.objects.get(kind="ipv4", value="198.51.100.7")
    assert alert.cert.slug == "ncert"
    assert sorted(alert.organisations.values_list("slug", flat=True)) == ["karachi", "lahore"]
    assert run.counts["correlation_alerts"] == 1
    assert audit.verify().ok


def test_a_source_on_an_http_url_is_fetched_and_run_by_its_code(feed_world):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from certnet.feeds.services import SourceInput, create_source

    body = scan_rdp([event("198.51.100.7"), event("203.0.113.5")]).encode()

    class Report(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header(
                "Content-Disposition", 'attachment; filename="2026-11-20-scan_rdp-pakistan-geo.csv"'
            )
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Report)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        create_source(
            ACTOR,
            SourceInput(
                code="partner-http",
                name="A partner's daily report",
                provider="Shadowserver",
                owner="ncert",
                collector="http",
                location=f"http://127.0.0.1:{httpd.server_address[1]}/daily",
            ),
        )
        out = io.StringIO()
        call_command("feeds", "run", "partner-http", "--json", stdout=out)
    finally:
        httpd.shutdown()
        httpd.server_close()
    summary = json.loads(out.getvalue())
    assert summary["status"] == "done"
    assert summary["mapping"] == "shadowserver/scan_rdp"
    assert summary["per_cert"] == {"punjab-cert": 1, "sindh-cert": 1}
    assert FeedRun.objects.get(pk=summary["run"]).source.code == "partner-http"


def test_scheduled_sources_run_when_due_and_an_unreachable_one_fails_with_its_reason(feed_world):
    from certnet.feeds.models import FeedSource
    from certnet.feeds.services import SourceInput, create_source, due_sources, run_due_sources

    folder = feed_world["dir"] / "drop"
    folder.mkdir()
    write(feed_world, "drop/2026-11-20-scan_rdp-pakistan-geo.csv", scan_rdp([event("198.51.100.7")]))
    create_source(
        ACTOR,
        SourceInput(
            code="drop",
            name="Drop folder",
            provider="Shadowserver",
            owner="ncert",
            location=str(folder),
            schedule_minutes=60,
        ),
    )
    create_source(
        ACTOR,
        SourceInput(
            code="gone",
            name="Gone",
            provider="x",
            owner="ncert",
            collector="http",
            location="http://127.0.0.1:9/none",
            schedule_minutes=60,
        ),
    )
    assert sorted(s.code for s in due_sources()) == ["drop", "gone"]
    outcomes = {o.run.source.code: o.run for o in run_due_sources(ACTOR)}
    assert outcomes["drop"].status == RunStatus.DONE
    assert outcomes["drop"].counts["written"] == 1
    assert outcomes["gone"].status == RunStatus.FAILED
    assert "http://127.0.0.1:9/none" in outcomes["gone"].error
    assert due_sources() == []  # both ran within the hour
    assert FeedSource.objects.get(code="shadowserver").schedule_minutes is None


def test_each_constituent_is_mailed_its_own_events_once_per_period(feed_world, settings):
    from certnet.core import clock
    from certnet.feeds.digests import period_ending, send_digests
    from certnet.feeds.models import FeedDigest
    from certnet.notifications.tests.smtp import local_relay, use_smtp
    from certnet.registry.models import Contact

    Contact.objects.create(organisation=feed_world["lahore"], kind="abuse", email="abuse@lahore.example.pk")
    rows = [event("198.51.100.7"), event("198.51.100.9", tag="rdp;cve-2019-0708"), event("203.0.113.5")]
    run_source_file(
        ACTOR, feed_world["source"], write(feed_world, "2026-11-20-scan_rdp-pakistan-geo.csv", scan_rdp(rows))
    )
    period = period_ending(clock.now() + dt.timedelta(minutes=1), 24)
    with local_relay() as relay:
        use_smtp(settings, relay.port)
        digests = {d.organisation.slug: d for d in send_digests(period)}
        again = send_digests(period)
    assert digests["lahore"].events == 2
    assert digests["lahore"].sent_at is not None
    assert digests["karachi"].sent_at is None
    assert "no abuse" in digests["karachi"].error  # Karachi has no contact with an address
    [message] = relay.to("abuse@lahore.example.pk")
    attachments = {part.get_filename(): part.get_content() for part in message.message.iter_attachments()}
    csv_text = next(v for k, v in attachments.items() if k.endswith(".csv"))
    csv_text = csv_text.decode() if isinstance(csv_text, bytes) else csv_text
    assert "198.51.100.7" in csv_text
    assert "198.51.100.9" in csv_text
    assert "203.0.113.5" not in csv_text  # Karachi's event is not in Lahore's digest
    jsonl = next(v for k, v in attachments.items() if k.endswith(".jsonl"))
    lines = [
        json.loads(line) for line in (jsonl.decode() if isinstance(jsonl, bytes) else jsonl).splitlines()
    ]
    assert {line["extra.constituency"] for line in lines} == {"lahore"}
    # Sent once: the second pass retries only Karachi's, which still has nowhere to go.
    assert [d.organisation.slug for d in again] == ["karachi"]
    assert FeedDigest.objects.filter(sent_at__isnull=False).count() == 1
    assert audit.verify().ok


def test_a_cii_operators_network_in_a_report_files_a_report_for_its_handling_cert(feed_world):
    from certnet.incidents.models import Channel, Report
    from certnet.registry.selectors import is_cii_operator
    from certnet.registry.services import resources

    nadra = Organisation.objects.get(slug="nadra")
    assert is_cii_operator(nadra, dt.date(2026, 11, 20))
    resources.add_netblock(
        actor=ACTOR, organisation=nadra, cidr="192.0.2.128/25", valid_from=dt.date(2026, 1, 1)
    )
    rows = [event("192.0.2.130"), event("192.0.2.131"), event("198.51.100.7")]
    run = run_source_file(
        ACTOR, feed_world["source"], write(feed_world, "2026-11-20-scan_rdp-pakistan-geo.csv", scan_rdp(rows))
    ).run
    assert run.counts["cii_reports"] == 1
    report = Report.objects.get(channel=Channel.FEED)
    assert report.affected_organisation == nadra
    assert report.reporting_organisation.slug == "ncert"
    assert report.severity == 2  # an exposed RDP service: vulnerable-system
    assert (report.classification_taxonomy, report.classification_type) == ("vulnerable", "vulnerable-system")
    assert "192.0.2.130" in report.description
    assert "198.51.100.7" not in report.description
    assert report.aware_at == dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)
    assert audit.verify().ok


def test_findings_in_a_cii_systems_netblock_name_the_system_in_the_event_and_the_report(feed_world):
    from certnet.incidents.models import Channel, Report
    from certnet.registry.services import resources

    nadra = Organisation.objects.get(slug="nadra")
    system = resources.add_cii_system(actor=ACTOR, organisation=nadra, name="Citizen identity database")
    since = dt.date(2026, 1, 1)
    resources.add_netblock(
        actor=ACTOR, organisation=nadra, cidr="192.0.2.128/26", valid_from=since, cii_system=system.name
    )
    resources.add_netblock(actor=ACTOR, organisation=nadra, cidr="192.0.2.192/26", valid_from=since)
    rows = [event("192.0.2.130"), event("192.0.2.131"), event("192.0.2.200"), event("198.51.100.7")]
    run = run_source_file(
        ACTOR, feed_world["source"], write(feed_world, "2026-11-20-scan_rdp-pakistan-geo.csv", scan_rdp(rows))
    ).run

    systems = {item["source.ip"]: item["route.cii_system"] for item in stored(feed_world["events"])}
    assert systems == {
        "192.0.2.130": "Citizen identity database",
        "192.0.2.131": "Citizen identity database",
        "192.0.2.200": None,
        "198.51.100.7": None,
    }
    # One report for the system's findings, one for the operator's other networks.
    assert run.counts["cii_reports"] == 2
    reports = {r.cii_system: r for r in Report.objects.filter(channel=Channel.FEED)}
    named = reports[system]
    assert (
        named.title == f"{nadra.name} (CII: Citizen identity database): 2 open-rdp event(s) in Accessible-RDP"
    )
    assert "192.0.2.130" in named.description
    assert "192.0.2.200" not in named.description
    assert "192.0.2.200" in reports[None].description
    assert audit.verify().ok
