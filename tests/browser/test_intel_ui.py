"""Lahore's analyst publishes an intel report from the reports page in a real browser: pastes a mail
with a value nobody may share yet, is told which one beside the box with everything typed kept, drops
it and lands on the published report, which Karachi's analyst then reads."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.browser.support import PASSWORD, sign_in
from tests.test_intel_sharing import record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("CERTNET_SCREENSHOT_DIR", tempfile.gettempdir()))
FORM_SHOT = SHOTS / "certnet-intel-report-form.png"
REPORT_SHOT = SHOTS / "certnet-intel-report.png"


@pytest.fixture
def world(intel_world: Any) -> Any:
    _, people, clients = intel_world
    for user in (people["lahore"], people["karachi"]):
        user.set_password(PASSWORD)
        user.save()
    record(clients["lahore"], "lahore", "45.9.148.5")
    return intel_world


@pytest.mark.usefixtures("world")
def test_an_analyst_publishes_pasted_values_and_lands_on_the_report(live_server: Any, page: Any) -> None:
    from playwright.sync_api import expect

    base = live_server.url
    sign_in(page, base, "lahore.analyst")
    page.goto(base + "/intel/reports/")
    page.get_by_role("link", name="Publish a report").click()
    expect(page).to_have_url(base + "/intel/reports/new/")
    expect(page.locator("#id_owner")).to_have_value("lahore")
    page.fill("#id_title", "Beacons from the billing servers")
    page.fill("#id_summary", "Two servers called out every ten minutes.")
    page.select_option("#id_audience", "organisations")
    page.fill("#id_organisations", "karachi")
    page.fill("#id_tags", "rsit:malicious-code/c2-server")
    page.fill("#id_indicators", "Proxy log:\n10:02 to 45.9.148[.]5\n10:12 to 45.9.148[.]77 port 22\n")
    page.get_by_role("button", name="Publish report").click()

    # The value nobody recorded is named beside the box; what was typed is all still there.
    expect(page.get_by_test_id("form-error")).to_contain_text("The report was not published.")
    expect(page.locator(".field-error")).to_have_text(
        ["45.9.148.77: no indicator you may share has this value; record it first"]
    )
    expect(page.locator("#id_title")).to_have_value("Beacons from the billing servers")
    expect(page.locator("#id_audience")).to_have_value("organisations")
    expect(page.locator("#id_organisations")).to_have_value("karachi")
    page.screenshot(path=FORM_SHOT, full_page=True)
    page.fill("#id_indicators", "Proxy log:\n10:02 to 45.9.148[.]5\n")
    page.get_by_role("button", name="Publish report").click()

    expect(page).to_have_url(re.compile(r"/intel/reports/\d+/$"))
    report_url = page.url
    expect(page.get_by_test_id("flash")).to_have_text("Published to Listed organisations: Karachi.")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Beacons from the billing servers")
    expect(page.get_by_test_id("indicators").locator("tbody tr")).to_have_count(1)
    expect(page.get_by_test_id("indicators")).to_contain_text("45.9.148.5")
    expect(page.get_by_role("link", name="Change this report")).to_be_visible()
    page.screenshot(path=REPORT_SHOT, full_page=True)

    # Karachi's analyst, its audience, reads it but is offered no change.
    sign_in(page, base, "karachi.analyst")
    page.goto(report_url)
    expect(page.get_by_test_id("indicators")).to_contain_text("45.9.148.5")
    expect(page.get_by_role("link", name="Change this report")).to_have_count(0)
