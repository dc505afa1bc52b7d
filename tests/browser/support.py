"""What the browser tests share: one password for their users and signing in."""

from __future__ import annotations

from typing import Any

PASSWORD = "browser-test-password-2026"


def sign_in(page: Any, base: str, username: str) -> None:
    from playwright.sync_api import expect

    # Leave the current page first: a fragment it is still loading (the evidence panel loads after
    # the page) would otherwise come back without a session, set a fresh CSRF cookie and race the
    # login form's token.
    page.wait_for_load_state("networkidle")
    page.goto("about:blank")
    page.context.clear_cookies()
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
