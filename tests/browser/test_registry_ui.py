"""Sign in, read the framework tree (and re-read it as of another date), open NCERT's page, filter
and sort the organisations table, and look up an address — in a real browser, HTMX included."""

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
from certnet.core.audit import SystemActor
from certnet.core.roles import Role
from certnet.registry import index, services
from certnet.registry.framework import load_framework_file
from certnet.registry.models import Organisation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ACTOR = SystemActor("browser-test")
USERNAME = "ncert.browser"
PASSWORD = "browser-test-password-2026"
# Screenshots for a person to look at (the system temporary directory: /tmp/certnet-*.png on Linux).
SHOTS = Path(os.environ.get("CERTNET_SCREENSHOT_DIR", tempfile.gettempdir()))
TREE_SHOT = SHOTS / "certnet-tree.png"
ORG_SHOT = SHOTS / "certnet-org.png"


@pytest.fixture
def registry() -> None:
    index.clear_cache()
    load_framework_file(settings.CERTNET_FRAMEWORK_FILE)
    ncert = Organisation.objects.get(slug="ncert")
    user = create_user(actor=ACTOR, username=USERNAME, password=PASSWORD, check_password_strength=False,
                       full_name="Ayesha Khan")  # fmt: skip
    set_membership(actor=ACTOR, user=user, organisation_id=ncert.pk, role=Role.HANDLER)
    safe_city = services.create_organisation(
        actor=ACTOR,
        data=services.OrganisationInput(
            slug="punjab-safe-city", name="Punjab Safe City Authority", kind="constituent",
            province="punjab", sector="government", reports_to="punjab-cert",
            reports_since=dt.date(2025, 2, 1),
        ),
    )  # fmt: skip
    services.add_netblock(actor=ACTOR, organisation=safe_city, cidr="198.51.100.0/24",
                          valid_from=dt.date(2025, 2, 1), description="camera network")  # fmt: skip


@pytest.mark.usefixtures("registry")
def test_sign_in_tree_organisation_table_and_lookup(live_server: Any, page: Any) -> None:
    from playwright.sync_api import expect

    base = live_server.url

    # Every page asks for a sign-in first, and comes back to where it was asked for.
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(base + "/")
    expect(page.get_by_test_id("current-user")).to_have_text("Ayesha Khan")
    expect(page.locator(".session-orgs")).to_contain_text("NCERT")

    # The tree: NCERT at the top of the CERT network, Punjab CERT below it, badges and functions.
    tree = page.locator("#tree")
    ncert_node = tree.locator('.node[data-org="ncert"]')
    expect(ncert_node).to_contain_text("NCERT")
    expect(ncert_node.locator(".fn-chip")).to_have_text(["CII CERT", "Government CERT"])
    punjab = tree.locator('.node[data-org="punjab-cert"]')
    expect(punjab).to_contain_text("Punjab CERT")
    expect(punjab.locator(".badge-amber")).to_contain_text("summary submitted")
    expect(tree.locator('.node[data-org="punjab-safe-city"]')).to_be_visible()
    expect(page.get_by_role("heading", name="Government and governance bodies")).to_be_visible()
    page.screenshot(path=TREE_SHOT, full_page=True)

    # As of mid-2024 (HTMX swaps the tree and pushes the URL): Punjab CERT did not report to NCERT yet.
    page.fill("#at", "2024-06-01")
    expect(page).to_have_url(re.compile(r"\?at=2024-06-01$"))
    expect(tree.locator(".stat-date")).to_contain_text("1 Jun 2024")
    expect(page.locator('#tree .tree > .tree-node > .node[data-org="punjab-cert"]')).to_be_visible()
    page.get_by_role("link", name="Today").click()
    expect(page).to_have_url(base + "/")

    # NCERT's page: its functions and its designation's history.
    ncert_node.locator("a.node-name").click()
    expect(page).to_have_url(base + "/organisations/ncert/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("National Computer Emergency Response Team")
    functions = page.locator("#functions")
    expect(functions).to_contain_text("Government CERT")
    expect(functions).to_contain_text("CII CERT")
    history = page.get_by_test_id("history-cert")
    expect(history.locator("tbody tr")).to_have_count(3)
    expect(history).to_contain_text("make-operational")
    expect(history).to_contain_text("soft launch July 2023")
    expect(page.locator("#constituents")).to_contain_text("Punjab CERT")
    page.screenshot(path=ORG_SHOT, full_page=True)

    # The organisations table: filter by kind, then sort by name descending, each an HTMX swap.
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Organisations").click()
    page.select_option("select[name=kind]", "provincial-cert")
    expect(page).to_have_url(re.compile(r"kind=provincial-cert"))
    rows = page.locator("#org-table tbody tr")
    expect(rows).to_have_count(6)
    page.locator("#org-table th a.sort", has_text="Name").click()
    expect(page).to_have_url(re.compile(r"sort=-name"))
    expect(rows.first).to_contain_text("Sindh CERT")
    page.fill("#q", "punjab")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Punjab CERT")

    # Lookup: an address in the netblock added above, its owner and the CERT chain that answers.
    nav.get_by_role("link", name="Lookup").click()
    page.fill("#lookup-q", "198.51.100.77")
    page.get_by_role("button", name="Look up").click()
    answer = page.get_by_test_id("lookup-answer")
    expect(answer).to_be_visible()
    expect(page).to_have_url(re.compile(r"/lookup/\?q=198\.51\.100\.77"))
    expect(page.get_by_test_id("lookup-owner")).to_contain_text("Punjab Safe City Authority")
    expect(answer).to_contain_text("198.51.100.0/24")
    chain = page.get_by_test_id("lookup-chain")
    expect(chain.locator("li a")).to_have_text(["Punjab CERT", "NCERT"])

    # An address nobody holds is a message, not an error page.
    page.fill("#lookup-q", "192.0.2.1")
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_test_id("lookup-error")).to_contain_text("No organisation you may see held")

    # Sign out.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login/$"))
