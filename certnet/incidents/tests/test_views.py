"""The incident pages through Django's test client: the report form, the confirmation, the queue (with
its HTMX fragment, filters and overdue rows), a report's triage, one incident's page (clocks,
escalations, timeline, action forms), TLP:RED stubs, and 404 for what a user may not see.

The data is made through the services, as tests/test_incidents_flow.py does through the API."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from certnet.accounts.models import User
from certnet.accounts.services import create_user, set_membership
from certnet.core import clock, pagination
from certnet.core.audit import SystemActor
from certnet.core.roles import Role
from certnet.incidents import services
from certnet.incidents import views as incident_views
from certnet.incidents.models import Channel, Incident, Report, ReportStatus
from certnet.registry import index
from certnet.registry import services as registry
from certnet.registry.framework import load_framework_file
from certnet.registry.models import Organisation

ACTOR = SystemActor("test")
PASSWORD = "incident-views-password-2026"
AWARE = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
# Two hours after awareness: every clock of the Pakistan profile is still running.
SOON = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC)


# --- data ---------------------------------------------------------------------------------------


@pytest.fixture
def world(db: Any) -> tuple[dict[str, Organisation], dict[str, User]]:
    """The Pakistan framework, a constituent under Punjab CERT and one under Sindh CERT, and people."""
    index.clear_cache()
    load_framework_file(settings.CERTNET_FRAMEWORK_FILE)
    for slug, parent in (("lahore", "punjab-cert"), ("karachi", "sindh-cert")):
        registry.create_organisation(
            actor=ACTOR,
            data=registry.OrganisationInput(
                slug=slug,
                name=f"{slug.title()} Water Board",
                kind="constituent",
                reports_to=parent,
                reports_since=dt.date(2024, 1, 1),
            ),
        )
    orgs = {o.slug: o for o in Organisation.objects.all()}
    people = {
        "lahore": ("lahore", Role.ANALYST, "lahore.analyst"),
        "lahore-viewer": ("lahore", Role.VIEWER, "lahore.viewer"),
        "karachi": ("karachi", Role.ANALYST, "karachi.analyst"),
        "punjab": ("punjab-cert", Role.HANDLER, "punjab.handler"),
        "sindh": ("sindh-cert", Role.HANDLER, "sindh.handler"),
        "ncert": ("ncert", Role.HANDLER, "ncert.handler"),
    }
    users = {}
    for key, (slug, role, username) in people.items():
        user = create_user(actor=ACTOR, username=username, password=PASSWORD, check_password_strength=False)
        set_membership(actor=ACTOR, user=user, organisation_id=orgs[slug].pk, role=role)
        users[key] = user
    return orgs, users


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response: Any) -> str:
    return response.content.decode()


def file_report(user: User, **extra: Any) -> Report:
    data = {
        "reporting_organisation": "lahore",
        "title": "Ransomware on file servers",
        "description": "Files encrypted on two servers.",
        "aware_at": AWARE,
        **extra,
    }
    return services.submit_report(actor=user, data=services.ReportInput(**data))


def open_incident(user: User, report: Report, severity: int = 2, **extra: Any) -> Incident:
    return services.triage_report(
        actor=user,
        report=report,
        data=services.TriageInput(
            classification_taxonomy="malicious-code",
            classification_type="infected-system",
            severity=severity,
            **extra,
        ),
    )


FORM = {
    "reporting_organisation": "lahore",
    "affected_organisation": "",
    "cii_system": "",
    "title": "Phishing wave against billing staff",
    "description": "Twelve staff received a fake payroll mail; two entered passwords.",
    "aware_at": "2026-11-01T08:00",
    "detected_at": "2026-11-01T07:30",
    "classification_taxonomy": "fraud",
    "classification_type": "phishing",
    "severity": "2",
    "tlp": "amber",
    "named_users": "",
}


# --- sign-in ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_incident_page_asks_for_a_sign_in_first(world: Any) -> None:
    client = Client()
    for url in ("/incidents/", "/incidents/report/", "/incidents/1/", "/incidents/reports/1/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == f"/login/?next={url}"


@pytest.mark.django_db
def test_the_nav_bar_links_to_incidents_and_the_report_form(world: Any) -> None:
    _, users = world
    page = text(signed_in(users["lahore"]).get("/incidents/"))
    assert '<a href="/incidents/" class="active" aria-current="page">Incidents</a>' in page
    assert '<a href="/incidents/report/">Report an incident</a>' in page


# --- the report form ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_report_form_offers_the_users_organisations_rsit_severities_and_tlp(world: Any) -> None:
    _, users = world
    with clock.frozen_at(SOON):
        response = signed_in(users["lahore"]).get("/incidents/report/")
    assert response.status_code == 200
    page = text(response)
    assert 'name="csrfmiddlewaretoken"' in page
    # The one organisation where the user is an analyst is chosen already.
    reporters = re.search(r'<select name="reporting_organisation".*?</select>', page, re.S)
    assert reporters is not None
    assert re.findall(r'<option value="([^"]*)"', reporters.group(0)) == ["lahore"]
    assert '<option value="lahore" selected>Lahore Water Board</option>' in page
    assert "No organisation reports to yours, so it is your own." in page
    # Awareness defaults to now, in UTC, and says so.
    assert 'name="aware_at" id="id_aware_at" value="2026-11-01T10:00"' in page
    assert "In UTC. The statutory reporting clocks start here." in page
    assert '<option value="availability">availability</option>' in page
    assert '<optgroup label="malicious-code">' in page
    assert '<option value="infected-system">infected-system</option>' in page
    severity = re.search(r'<select name="severity".*?</select>', page, re.S)
    assert severity is not None
    assert re.findall(r">([^<]+)</option>", severity.group(0)) == [
        "Not assessed",
        "0 · Baseline",
        "1 · Low",
        "2 · Medium",
        "3 · High",
        "4 · Severe",
        "5 · Emergency",
    ]
    assert '<option value="amber" selected>TLP:AMBER</option>' in page
    assert '<option value="red">TLP:RED</option>' in page
    assert 'name="named_users"' in page


@pytest.mark.django_db
def test_a_viewer_sees_that_they_cannot_report(world: Any) -> None:
    _, users = world
    page = text(signed_in(users["lahore-viewer"]).get("/incidents/report/"))
    assert 'data-testid="no-reporter"' in page
    assert "Reports are filed for an organisation in which you hold the analyst role or above" in page


@pytest.mark.django_db
def test_the_type_select_follows_the_taxonomy(world: Any) -> None:
    _, users = world
    client = signed_in(users["lahore"])
    page = text(client.get("/incidents/report/types/", {"classification_taxonomy": "availability"}))
    assert page.startswith('<select name="classification_type" id="id_classification_type">')
    assert re.findall(r'<option value="([^"]*)"', page) == [
        "",
        "dos",
        "ddos",
        "misconfiguration",
        "sabotage",
        "outage",
    ]
    assert "optgroup" not in page
    everything = text(client.get("/incidents/report/types/", {"classification_taxonomy": "nonsense"}))
    assert everything.count("<optgroup") == 11


@pytest.mark.django_db
def test_filing_a_report_shows_its_id_and_that_the_cert_was_told(world: Any) -> None:
    _, users = world
    client = signed_in(users["lahore"])
    with clock.frozen_at(SOON):
        response = client.post("/incidents/report/", FORM)
    report = Report.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/incidents/reports/{report.pk}/filed/"
    assert (report.channel, report.status, report.submitted_by, report.affected_organisation.slug) == (
        Channel.WEB,
        ReportStatus.NEW,
        users["lahore"],
        "lahore",
    )
    assert (report.aware_at, report.detected_at) == (AWARE, dt.datetime(2026, 11, 1, 7, 30, tzinfo=dt.UTC))
    assert (report.classification_taxonomy, report.classification_type, report.severity) == (
        "fraud",
        "phishing",
        2,
    )
    page = text(client.get(response["Location"]))
    assert f'<span class="ref" data-testid="report-ref">R-{report.pk}</span> is filed' in page
    assert "<strong>Your CERT has been told.</strong>" in page
    assert "Punjab CERT has the report in its queue of new reports and will triage it." in page
    assert "<dd>2026-11-01 08:00 UTC</dd>" in page
    # Nobody else's confirmation.
    assert signed_in(users["karachi"]).get(response["Location"]).status_code == 404


@pytest.mark.django_db
def test_a_bad_report_is_shown_again_with_the_errors_beside_the_fields(world: Any) -> None:
    _, users = world
    bad = {
        **FORM,
        "title": "  ",
        "aware_at": "2026-12-24T08:00",
        "classification_taxonomy": "malicious-code",
        "classification_type": "goblins",
        "tlp": "red",
    }
    with clock.frozen_at(SOON):
        response = signed_in(users["lahore"]).post("/incidents/report/", bad)
    assert response.status_code == 422
    page = text(response)
    assert "<strong>The report was not filed.</strong> The report is not valid:" in page
    assert '<small class="field-error" role="alert">Must not be empty</small>' in page
    assert '<small class="field-error" role="alert">Is in the future</small>' in page
    assert (
        '<small class="field-error" role="alert">Expected one of: infected-system, c2-server, '
        "malware-distribution, malware-configuration</small>"
    ) in page
    assert "A TLP:RED report must name who may read it" in page
    # What was typed is kept.
    assert "Twelve staff received a fake payroll mail; two entered passwords.</textarea>" in page
    assert '<option value="red" selected>TLP:RED</option>' in page
    assert Report.objects.count() == 0


@pytest.mark.django_db
def test_an_unreadable_time_and_someone_elses_organisation_are_refused(world: Any) -> None:
    _, users = world
    client = signed_in(users["lahore"])
    unreadable = client.post("/incidents/report/", {**FORM, "aware_at": "yesterday"})
    assert unreadable.status_code == 422
    assert "&#x27;yesterday&#x27; is not a date and time (YYYY-MM-DD HH:MM, UTC)" in text(unreadable)
    elsewhere = client.post("/incidents/report/", {**FORM, "reporting_organisation": "karachi"})
    assert elsewhere.status_code == 403
    assert "You may only report for an organisation you belong to" in text(elsewhere)
    assert Report.objects.count() == 0


# --- the queue and triage -----------------------------------------------------------------------


@pytest.mark.django_db
def test_new_reports_are_listed_for_the_cert_with_a_triage_link(world: Any) -> None:
    _, users = world
    report = file_report(users["lahore"])
    punjab = text(signed_in(users["punjab"]).get("/incidents/"))
    assert 'data-testid="new-reports"' in punjab
    assert f'<a class="btn btn-sm btn-primary" href="/incidents/reports/{report.pk}/#triage">Triage</a>' in (
        punjab
    )
    # The reporter sees its own report waiting, without a triage link; another province sees nothing.
    lahore = text(signed_in(users["lahore"]).get("/incidents/"))
    assert f'<a class="btn btn-sm" href="/incidents/reports/{report.pk}/">View</a>' in lahore
    assert "No new report is waiting." in text(signed_in(users["sindh"]).get("/incidents/"))
    assert signed_in(users["sindh"]).get(f"/incidents/reports/{report.pk}/").status_code == 404


@pytest.mark.django_db
def test_triage_with_severity_4_opens_an_incident_escalated_to_ncert(world: Any) -> None:
    _, users = world
    report = file_report(users["lahore"])
    client = signed_in(users["punjab"])
    page = text(client.get(f"/incidents/reports/{report.pk}/"))
    assert 'data-testid="triage-open"' in page
    assert '<option value="malicious-code">malicious-code</option>' in page
    assert "<dt>Routed to</dt><dd>Punjab CERT</dd>" in page
    # The reporter sees the report, but no triage form.
    assert 'data-testid="triage-open"' not in text(
        signed_in(users["lahore"]).get(f"/incidents/reports/{report.pk}/")
    )

    response = client.post(
        f"/incidents/reports/{report.pk}/",
        {
            "decision": "open",
            "title": "Ransomware at Lahore Water Board",
            "classification_taxonomy": "malicious-code",
            "classification_type": "infected-system",
            "severity": "4",
            "tlp": "amber",
            "involved_organisations": "",
        },
    )
    incident = Incident.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/incidents/{incident.pk}/"
    page = text(client.get(response["Location"]))
    assert f"Incident {incident.reference} opened from report R-{report.pk}." in page
    assert "<h1>Ransomware at Lahore Water Board</h1>" in page
    assert "4 · Severe</span>" in page
    assert '<dd data-testid="handling-cert"><a href="/organisations/punjab-cert/">Punjab CERT</a>' in page
    assert '<dd data-testid="escalated-to"><a href="/organisations/ncert/">NCERT</a>' in page
    assert "severity 4 is significant (3 or above)" in page
    assert re.findall(r'<tr class="clock-(\S+)" data-stage="([^"]+)">', page) == [
        ("overdue", "early-warning"),
        ("overdue", "notification"),
        ("due", "final-report"),
    ]
    assert '<span class="kind">s. 3</span>' in page
    assert "a hint for referral, not a legal finding" in page
    # The national CERT has it in its queue, under "escalated to".
    queue = text(signed_in(users["ncert"]).get("/incidents/", {"cert": "ncert"}))
    assert f'<a class="ref" href="/incidents/{incident.pk}/">{incident.reference}</a>' in queue
    assert '<span class="escalated">NCERT</span>' in queue


@pytest.mark.django_db
def test_a_sindh_handler_gets_404_for_a_punjab_incident(world: Any) -> None:
    _, users = world
    incident = open_incident(users["punjab"], file_report(users["lahore"]))
    sindh = signed_in(users["sindh"])
    assert sindh.get(f"/incidents/{incident.pk}/").status_code == 404
    assert sindh.post(f"/incidents/{incident.pk}/status/", {"status": "in-progress"}).status_code == 404
    assert sindh.get("/incidents/999999/").status_code == 404
    assert "No incident you may see matches these filters." in text(sindh.get("/incidents/"))
    incident.refresh_from_db()
    assert incident.status == "triaged"


@pytest.mark.django_db
def test_triage_errors_are_shown_in_the_triage_form(world: Any) -> None:
    _, users = world
    report = file_report(users["lahore"])
    client = signed_in(users["punjab"])
    missing = client.post(
        f"/incidents/reports/{report.pk}/",
        {"decision": "open", "classification_taxonomy": "nonsense", "classification_type": "x"},
    )
    assert missing.status_code == 422
    assert '<small class="field-error" role="alert">Choose a severity level</small>' in text(missing)
    wrong = client.post(
        f"/incidents/reports/{report.pk}/",
        {
            "decision": "open",
            "classification_taxonomy": "nonsense",
            "classification_type": "x",
            "severity": "1",
        },
    )
    assert wrong.status_code == 422
    assert "<strong>The report was not triaged.</strong> Classification_taxonomy: &#x27;nonsense&#x27;" in (
        text(wrong)
    )
    no_reason = client.post(f"/incidents/reports/{report.pk}/", {"decision": "reject", "reason": " "})
    assert no_reason.status_code == 422
    assert '<small class="field-error" role="alert">Say why the report is rejected</small>' in text(no_reason)
    unknown = client.post(f"/incidents/reports/{report.pk}/", {"decision": "merge", "incident": "INC-424242"})
    assert unknown.status_code == 422
    assert '<small class="field-error" role="alert">No incident 424242</small>' in text(unknown)
    assert Incident.objects.count() == 0


@pytest.mark.django_db
def test_merge_and_reject(world: Any) -> None:
    _, users = world
    incident = open_incident(users["punjab"], file_report(users["lahore"]))
    second, third = file_report(users["lahore"]), file_report(users["lahore"])
    client = signed_in(users["punjab"])
    merged = client.post(
        f"/incidents/reports/{second.pk}/", {"decision": "merge", "incident": incident.reference}
    )
    assert merged["Location"] == f"/incidents/{incident.pk}/"
    page = text(client.get(merged["Location"]))
    assert f"Report R-{second.pk} merged into {incident.reference}." in page
    assert f'<a class="ref" href="/incidents/reports/{second.pk}/">R-{second.pk}</a>' in page
    rejected = client.post(f"/incidents/reports/{third.pk}/", {"decision": "reject", "reason": "duplicate"})
    assert rejected["Location"] == f"/incidents/reports/{third.pk}/"
    page = text(client.get(rejected["Location"]))
    assert f"Report R-{third.pk} rejected." in page
    assert '<span class="badge badge-dark">rejected</span>' in page
    assert 'data-testid="triage-open"' not in page
    third.refresh_from_db()
    assert third.status == ReportStatus.REJECTED


@pytest.mark.django_db
def test_the_queue_puts_overdue_incidents_first_in_red(world: Any) -> None:
    _, users = world
    with clock.frozen_at(dt.datetime(2026, 11, 20, tzinfo=dt.UTC)):
        old = open_incident(users["punjab"], file_report(users["lahore"], title="Old worm"))
        fresh = open_incident(
            users["punjab"],
            file_report(
                users["lahore"], title="Fresh scan", aware_at=dt.datetime(2026, 11, 19, 23, tzinfo=dt.UTC)
            ),
            severity=1,
        )
        client = signed_in(users["punjab"])
        page = text(client.get("/incidents/"))
        rows = re.findall(r'<tr class="([^"]*)" data-incident="(\d+)">', page)
        assert rows == [("row-overdue", str(old.pk)), ("", str(fresh.pk))]
        assert '<span class="overdue">overdue since 2026-11-02 08:00 UTC</span>' in page
        assert "2026-11-20 23:00 <span" in page
        assert '<span class="stat-value" data-testid="overdue-count">1</span>' in page
        # Filters come back as the table alone for HTMX, the whole page otherwise.
        fragment = client.get("/incidents/", {"overdue": "1"}, headers={"HX-Request": "true"})
        assert text(fragment).startswith('<section id="incident-table"')
        assert "<html" not in text(fragment)
        assert re.findall(r'data-incident="(\d+)"', text(fragment)) == [str(old.pk)]
        assert "HX-Request" in fragment["Vary"]
        severe = text(client.get("/incidents/", {"severity": "2"}))
        assert re.findall(r'data-incident="(\d+)"', severe) == [str(old.pk)]
        assert '<option value="2" selected>2 · Medium</option>' in severe


@pytest.mark.django_db
def test_the_queue_counters_stop_at_the_cap_and_the_pages_go_on(world: Any, monkeypatch: Any) -> None:
    _, users = world
    with clock.frozen_at(dt.datetime(2026, 11, 20, tzinfo=dt.UTC)):
        opened = [
            open_incident(users["punjab"], file_report(users["lahore"], title=f"Worm {n}")) for n in range(3)
        ]
        monkeypatch.setattr(pagination, "COUNT_CAP", 1)
        monkeypatch.setattr(incident_views, "COUNT_CAP", 1)
        monkeypatch.setattr(incident_views, "PAGE_SIZE", 2)
        client = signed_in(users["punjab"])
        page = text(client.get("/incidents/"))
        assert '<span class="stat-value" data-testid="overdue-count">1+</span>' in page
        assert "of more than 1" in page
        last = text(client.get("/incidents/", {"page": "2"}))
        assert re.findall(r'data-incident="(\d+)"', last) == [str(opened[0].pk)]


@pytest.mark.django_db
def test_red_incidents_show_a_stub_to_the_chain(world: Any) -> None:
    _, users = world
    report = file_report(users["lahore"], tlp="red", named_users=["punjab.handler"], title="Secret leak")
    incident = open_incident(users["punjab"], report)
    ncert = signed_in(users["ncert"])
    queue = text(ncert.get("/incidents/"))
    assert '<span class="restricted">restricted (TLP:RED)</span>' in queue
    assert "Secret leak" not in queue
    page = text(ncert.get(f"/incidents/{incident.pk}/"))
    assert 'data-testid="incident-stub"' in page
    assert '<h1 class="restricted-title">Restricted</h1>' in page
    assert "2 · Medium</span>" in page
    assert "Secret leak" not in page
    assert "Files encrypted" not in page
    assert 'data-testid="clocks"' not in page
    # It knows the incident exists, so a refusal says so (403) rather than pretending it does not.
    refused = ncert.post(f"/incidents/{incident.pk}/status/", {"status": "in-progress"})
    assert refused.status_code == 403
    assert "<strong>Refused.</strong> You may not handle incident" in text(refused)
    assert "Secret leak" not in text(refused)
    assert "Secret leak" in text(signed_in(users["punjab"]).get(f"/incidents/{incident.pk}/"))


# --- handling an incident -----------------------------------------------------------------------


@pytest.mark.django_db
def test_status_select_offers_only_the_legal_moves_and_illegal_ones_are_explained(world: Any) -> None:
    _, users = world
    incident = open_incident(users["punjab"], file_report(users["lahore"]))
    client = signed_in(users["punjab"])
    page = text(client.get(f"/incidents/{incident.pk}/"))
    select = re.search(r'<select name="status" id="id_status">.*?</select>', page, re.S)
    assert select is not None
    assert re.findall(r'<option value="([^"]+)"', select.group(0)) == ["in-progress", "rejected"]
    refused = client.post(f"/incidents/{incident.pk}/status/", {"status": "closed"})
    assert refused.status_code == 409
    assert (
        "<strong>Status not changed.</strong> An incident that is triaged cannot become closed; "
        "it can become: in-progress, merged, rejected"
    ) in text(refused)
    moved = client.post(f"/incidents/{incident.pk}/status/", {"status": "in-progress", "note": "on it"})
    assert moved["Location"] == f"/incidents/{incident.pk}/#status"
    page = text(client.get(moved["Location"]))
    assert "Status changed." in page
    assert "triaged → in-progress: on it" in page
    assert re.findall(
        r'<option value="([^"]+)"',
        re.search(r'<select name="status" id="id_status">.*?</select>', page, re.S).group(0),  # type: ignore[union-attr]
    ) == ["contained", "resolved"]


@pytest.mark.django_db
def test_assign_escalate_and_de_escalate(world: Any) -> None:
    _, users = world
    incident = open_incident(users["punjab"], file_report(users["lahore"]))
    client = signed_in(users["punjab"])
    wrong = client.post(f"/incidents/{incident.pk}/assign/", {"assignee": "lahore.analyst"})
    assert wrong.status_code == 422
    assert "lahore.analyst is not a handler of the CERT handling this incident" in text(wrong)
    assert client.post(f"/incidents/{incident.pk}/assign/", {"assignee": "nobody"}).status_code == 422
    client.post(f"/incidents/{incident.pk}/assign/", {"assignee": "punjab.handler"})
    page = text(client.get(f"/incidents/{incident.pk}/"))
    assert '<dd data-testid="assignee">punjab.handler</dd>' in page
    assert 'id="de-escalate"' not in page
    assert client.post(f"/incidents/{incident.pk}/escalate/", {"reason": ""}).status_code == 422
    client.post(f"/incidents/{incident.pk}/escalate/", {"reason": "needs national coordination"})
    page = text(client.get(f"/incidents/{incident.pk}/"))
    assert '<dd data-testid="escalated-to"><a href="/organisations/ncert/">NCERT</a>' in page
    assert "needs national coordination" in page
    client.post(f"/incidents/{incident.pk}/de-escalate/", {"reason": "handled locally"})
    page = text(client.get(f"/incidents/{incident.pk}/"))
    assert '<dd data-testid="escalated-to"><span class="muted">not escalated</span></dd>' in page
    assert "↓ de-escalated" in page
    assert client.post(f"/incidents/{incident.pk}/teleport/", {}).status_code == 404
    assert client.get(f"/incidents/{incident.pk}/status/").status_code == 405


@pytest.mark.django_db
def test_the_affected_organisation_files_stage_reports(world: Any) -> None:
    _, users = world
    with clock.frozen_at(SOON):
        incident = open_incident(users["punjab"], file_report(users["lahore"]))
        handler_page = text(signed_in(users["punjab"]).get(f"/incidents/{incident.pk}/"))
        assert 'id="stage-report"' not in handler_page
        assert 'id="handle"' in handler_page
        lahore = signed_in(users["lahore"])
        page = text(lahore.get(f"/incidents/{incident.pk}/"))
        assert 'id="handle"' not in page
        stages = re.search(r'<select name="stage" id="id_stage">.*?</select>', page, re.S)
        assert stages is not None
        assert re.findall(r'<option value="([^"]+)"', stages.group(0)) == [
            "early-warning",
            "notification",
            "final-report",
        ]
        assert re.findall(r'<tr class="clock-(\S+)" data-stage="([^"]+)">', page) == [
            ("due", "early-warning"),
            ("due", "notification"),
            ("due", "final-report"),
        ]
        filed = lahore.post(
            f"/incidents/{incident.pk}/stage-report/",
            {"stage": "early-warning", "summary": "contained to one site"},
        )
        assert filed["Location"] == f"/incidents/{incident.pk}/#stage-report"
        page = text(lahore.get(filed["Location"]))
        assert re.findall(r'<tr class="clock-(\S+)" data-stage="early-warning">', page) == ["met"]
        assert '<div class="muted small">contained to one site</div>' in page
        assert "Early warning filed" in page
        again = lahore.post(f"/incidents/{incident.pk}/stage-report/", {"stage": "early-warning"})
        assert again.status_code == 409
        refusal = "<strong>The stage report was not filed.</strong> The Early warning was already filed"
        assert refusal in text(again)
