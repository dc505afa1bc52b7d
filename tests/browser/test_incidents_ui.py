"""A constituent analyst files an incident report through the form; a Punjab CERT handler finds it
among the new reports, triages it at severity 4 and lands on the incident, escalated to NCERT, with
its reporting clocks; an NCERT handler finds it in the national queue and on the escalated view; the
Punjab handler gives an NCERT handler a task and comments on the incident, and the task shows as
overdue once its time has passed — in a real browser, HTMX included.

The platform's clock is frozen (the live server runs in this process, so it reads the same clock):
four days after the incident, both early deadlines are overdue."""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from certnet.accounts.services import create_user, set_membership
from certnet.core import clock
from certnet.core.audit import SystemActor
from certnet.core.roles import Role
from certnet.registry import index, services
from certnet.registry.framework import load_framework_file
from certnet.registry.models import Organisation
from tests.browser.support import PASSWORD, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ACTOR = SystemActor("browser-test")
SHOTS = Path(os.environ.get("CERTNET_SCREENSHOT_DIR", tempfile.gettempdir()))
FORM_SHOT = SHOTS / "certnet-incident-form.png"
QUEUE_SHOT = SHOTS / "certnet-queue.png"
INCIDENT_SHOT = SHOTS / "certnet-incident.png"
FILED_SHOT = SHOTS / "certnet-report-filed.png"
TRIAGE_SHOT = SHOTS / "certnet-triage.png"
ESCALATED_SHOT = SHOTS / "certnet-escalated.png"
WORK_SHOT = SHOTS / "certnet-incident-work.png"
NOW = dt.datetime(2026, 11, 5, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def frozen_clock() -> Any:
    with clock.frozen_at(NOW):
        yield


@pytest.fixture
def people() -> None:
    index.clear_cache()
    load_framework_file(settings.CERTNET_FRAMEWORK_FILE)
    services.create_organisation(
        actor=ACTOR,
        data=services.OrganisationInput(
            slug="punjab-safe-city", name="Punjab Safe City Authority", short_name="PSCA",
            kind="constituent", province="punjab", sector="government", reports_to="punjab-cert",
            reports_since=dt.date(2025, 2, 1),
        ),
    )  # fmt: skip
    for username, full_name, slug, role in (
        ("psca.analyst", "Bilal Ahmed", "punjab-safe-city", Role.ANALYST),
        ("punjab.handler", "Sana Malik", "punjab-cert", Role.HANDLER),
        ("ncert.handler", "Ayesha Khan", "ncert", Role.HANDLER),
        ("ncert.responder", "Omar Farooq", "ncert", Role.HANDLER),
    ):
        user = create_user(actor=ACTOR, username=username, password=PASSWORD, full_name=full_name,
                           check_password_strength=False)  # fmt: skip
        organisation = Organisation.objects.get(slug=slug)
        set_membership(actor=ACTOR, user=user, organisation_id=organisation.pk, role=role)


@pytest.mark.usefixtures("people", "frozen_clock")
def test_report_triage_escalation_and_the_national_queue(live_server: Any, page: Any) -> None:
    from playwright.sync_api import expect

    base = live_server.url

    # The constituent's analyst files a report from the nav bar.
    sign_in(page, base, "psca.analyst")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Report an incident").click()
    expect(page).to_have_url(base + "/incidents/report/")
    expect(page.locator("#id_reporting_organisation")).to_have_value("punjab-safe-city")
    page.fill("#id_title", "Ransomware on the camera control servers")
    page.fill(
        "#id_description",
        "Video management servers show a ransom note; recordings of two districts are encrypted.",
    )
    page.fill("#id_aware_at", "2026-11-01T08:00")
    # HTMX narrows the type list to the chosen taxonomy.
    page.select_option("#id_classification_taxonomy", "malicious-code")
    expect(page.locator("#id_classification_type optgroup")).to_have_count(0)
    expect(page.locator("#id_classification_type option")).to_have_count(5)
    page.select_option("#id_classification_type", "infected-system")
    page.select_option("#id_severity", "3")
    page.screenshot(path=FORM_SHOT, full_page=True)
    page.get_by_role("button", name="Submit report").click()
    filed = page.get_by_test_id("report-filed")
    expect(filed).to_contain_text("Your CERT has been told.")
    expect(filed).to_contain_text("Punjab CERT has the report in its queue")
    reference = page.get_by_test_id("report-ref").inner_text()
    assert re.fullmatch(r"R-\d+", reference)
    page.screenshot(path=FILED_SHOT, full_page=True)

    # Punjab CERT's handler sees it among the new reports and triages it at severity 4.
    sign_in(page, base, "punjab.handler")
    page.goto(base + "/incidents/")
    new_reports = page.get_by_test_id("new-reports")
    row = new_reports.locator("tr", has_text=reference)
    expect(row).to_contain_text("Ransomware on the camera control servers")
    expect(row).to_contain_text("PSCA")
    row.get_by_role("link", name="Triage").click()
    expect(page).to_have_url(re.compile(r"/incidents/reports/\d+/#triage$"))
    triage = page.get_by_test_id("triage-open")
    expect(triage.locator("#id_classification_taxonomy")).to_have_value("malicious-code")
    expect(triage.locator("#id_classification_type")).to_have_value("infected-system")
    triage.locator("#id_severity").select_option("4")
    page.screenshot(path=TRIAGE_SHOT, full_page=True)
    triage.get_by_role("button", name="Open incident").click()

    # The incident page: escalated to NCERT by the severity rule, with its clocks.
    expect(page).to_have_url(re.compile(r"/incidents/\d+/$"))
    incident_ref = page.get_by_test_id("incident-ref").inner_text()
    assert re.fullmatch(r"INC-\d+", incident_ref)
    flash = page.get_by_test_id("flash")
    expect(flash).to_contain_text(f"Incident {incident_ref} opened from report {reference}")
    expect(page.get_by_test_id("handling-cert")).to_have_text("Punjab CERT")
    expect(page.get_by_test_id("escalated-to")).to_have_text("NCERT")
    expect(page.get_by_test_id("escalations")).to_contain_text("severity 4 is significant")
    clocks = page.get_by_test_id("clocks")
    expect(clocks.locator("tbody tr")).to_have_count(3)
    expect(clocks).to_contain_text("Early warning")
    expect(clocks).to_contain_text("Incident notification")
    expect(clocks).to_contain_text("Final report")
    expect(clocks.locator(".state-overdue")).to_have_count(2)
    expect(page.locator("#id_status option")).to_have_text(["In progress", "Rejected"])
    page.screenshot(path=INCIDENT_SHOT, full_page=True)

    # NCERT's handler has it in the national queue; the CERT filter swaps the table through HTMX.
    sign_in(page, base, "ncert.handler")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Incidents").click()
    expect(page).to_have_url(base + "/incidents/")
    page.select_option("select[name=cert]", "ncert")
    expect(page).to_have_url(re.compile(r"cert=ncert"))
    rows = page.locator("#incident-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(incident_ref)
    expect(rows.first).to_contain_text("Ransomware on the camera control servers")
    expect(rows.first).to_contain_text("4 · Severe")
    expect(rows.first.locator(".escalated")).to_have_text("NCERT")
    expect(rows.first).to_have_class(re.compile("row-overdue"))
    expect(rows.first).to_contain_text("overdue since 2026-11-02 08:00 UTC")
    page.screenshot(path=QUEUE_SHOT, full_page=True)

    # The escalated view, from the nav bar: every escalated incident, for NCERT every one in the country.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Escalated").click()
    expect(page).to_have_url(base + "/incidents/escalated/")
    rows = page.locator("#escalated-table tbody tr")
    expect(rows).to_have_count(1)
    row = rows.first
    expect(row).to_contain_text(incident_ref)
    expect(row).to_contain_text("Ransomware on the camera control servers")
    expect(row).to_contain_text("4 · Severe")
    expect(row).to_contain_text("PSCA")
    expect(row).to_contain_text("Punjab CERT")
    expect(row.locator(".escalated")).to_have_text("NCERT")
    expect(row).to_contain_text("overdue since 2026-11-02 08:00 UTC")
    # The severity filter swaps the table through HTMX: nothing at 5, the incident again from 3.
    page.select_option("#id_escalated_severity", "5")
    expect(page).to_have_url(re.compile(r"severity=5"))
    expect(page.locator("#escalated-table")).to_contain_text("No escalated incident you may see matches")
    page.select_option("#id_escalated_severity", "3")
    expect(page.locator("#escalated-table tbody tr")).to_have_count(1)
    page.screenshot(path=ESCALATED_SHOT, full_page=True)
    page.locator("#escalated-table").get_by_role("link", name=incident_ref).click()
    expect(page.get_by_test_id("incident-ref")).to_have_text(incident_ref)
    incident_url = page.url

    # Punjab's handler gives a second NCERT handler a task due tomorrow and comments on the incident.
    sign_in(page, base, "punjab.handler")
    page.goto(incident_url)
    adding = page.get_by_test_id("task-add")
    expect(adding.locator("#id_task_owner option")).to_have_text(
        [
            "Nobody yet",
            "ncert.handler · Ayesha Khan",
            "ncert.responder · Omar Farooq",
            "punjab.handler · Sana Malik",
        ]
    )
    adding.locator("#id_task_title").fill("Image the video management servers")
    adding.locator("#id_task_owner").select_option("ncert.responder")
    adding.locator("#id_task_due_at").fill("2026-11-06T09:00")
    adding.get_by_role("button", name="Add task").click()
    expect(page).to_have_url(re.compile(r"/incidents/\d+/#tasks$"))
    expect(page.get_by_test_id("flash")).to_contain_text("Task added: Image the video management servers.")
    task_row = page.get_by_test_id("tasks").locator("tbody tr[data-task]")
    expect(task_row).to_have_count(1)
    expect(task_row).to_contain_text("Image the video management servers")
    expect(task_row).to_contain_text("ncert.responder")
    expect(task_row).to_contain_text("2026-11-06 09:00")
    expect(task_row).not_to_have_class(re.compile("row-overdue"))
    # A due time already past is refused, beside the field, keeping what was typed.
    adding = page.get_by_test_id("task-add")
    adding.locator("#id_task_title").fill("Too late")
    adding.locator("#id_task_due_at").fill("2026-11-04T09:00")
    adding.get_by_role("button", name="Add task").click()
    expect(page.get_by_test_id("form-error")).to_contain_text("The task was not added.")
    expect(page.locator(".field-error")).to_contain_text("2026-11-04 09:00 UTC is in the past")
    expect(page.locator("#id_task_title")).to_have_value("Too late")
    page.goto(incident_url)
    commenting = page.get_by_test_id("comment-add")
    commenting.locator("#id_comment_body").fill("Isolated the recorders; imaging starts tonight.")
    commenting.get_by_role("button", name="Add comment").click()
    expect(page).to_have_url(re.compile(r"/incidents/\d+/#comment-\d+$"))
    expect(page.get_by_test_id("flash")).to_contain_text("Comment added.")
    comments = page.get_by_test_id("comments")
    expect(comments).to_contain_text("punjab.handler")
    expect(comments).to_contain_text("Isolated the recorders; imaging starts tonight.")
    timeline = page.get_by_test_id("timeline")
    expect(timeline).to_contain_text("task added: Image the video management servers (for ncert.responder")
    expect(timeline).to_contain_text("commented: Isolated the recorders; imaging starts tonight.")

    # A day later the open task is overdue and highlighted; marked done, it is not.
    with clock.frozen_at(NOW + dt.timedelta(days=2)):
        page.goto(incident_url)
        task_row = page.get_by_test_id("tasks").locator("tbody tr[data-task]")
        expect(task_row).to_have_class(re.compile("row-overdue"))
        expect(task_row).to_contain_text("overdue since 2026-11-06 09:00 UTC")
        page.screenshot(path=WORK_SHOT, full_page=True)
        task_row.get_by_role("button", name="Done").click()
        expect(page.get_by_test_id("flash")).to_contain_text("Task done.")
        task_row = page.get_by_test_id("tasks").locator("tbody tr[data-task]")
        expect(task_row).not_to_have_class(re.compile("row-overdue"))
        expect(task_row).to_contain_text("done")
        expect(task_row.get_by_role("button", name="Reopen")).to_be_visible()
