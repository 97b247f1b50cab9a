"""Journeys across features, in Chromium: what the admin sets up is what the customer meets, and what the
customer does is what the admin sees."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from esu.extensions import db
from esu.models.admin import set_admin_password

from ..admin_support import PASSWORD
from .test_widget import expect_success, finish, launch, open_signup


@pytest.fixture
def customer_tab(chromium):
    """The customer's own browser (no admin cookie); console errors fail the test."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    context.on("page", lambda page: page.on("pageerror", lambda error: errors.append(str(error))))
    context.on("page", lambda page: page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None))
    yield context.new_page()
    context.close()
    assert errors == [], f"console errors: {errors}"


def log_in(tab, live_server, path: str) -> None:
    tab.goto(f"{live_server.url}{path}")
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_url(f"**{path}")


def test_the_admins_prefill_reaches_metas_dialog_and_the_onboarding_reaches_the_admin(
        live_server, browser_page, customer_tab, screenshot):
    with live_server.app.app_context():
        set_admin_password(PASSWORD)
        db.session.commit()
    admin = browser_page
    log_in(admin, live_server, "/admin/pages/new")
    admin.get_by_label("Slug").fill("wool")
    admin.get_by_label("Title").fill("Connect Wind & Wool")
    admin.get_by_label("Business name").fill("Wind & Wool")
    admin.get_by_label("Email").fill("support@windandwool.com")
    admin.get_by_label("Country calling code").fill("1")
    admin.get_by_label("Phone number").fill("6505559999")
    admin.get_by_label("Country", exact=True).fill("us")
    admin.get_by_role("button", name="Create page").click()
    expect(admin.get_by_role("status")).to_contain_text("Created the signup page wool.")

    open_signup(customer_tab, live_server, "wool")
    dialog = launch(customer_tab)
    expect(dialog.get_by_label("Business name")).to_have_value("Wind & Wool")
    expect(dialog.get_by_label("Email")).to_have_value("support@windandwool.com")
    expect(dialog.get_by_label("Country", exact=True)).to_have_value("US")
    expect(dialog.get_by_label("Business phone")).to_have_value("+1 6505559999")
    screenshot(dialog, "journey-prefilled-dialog")
    finish(dialog)
    expect_success(customer_tab, "Wind & Wool", "+1 6505559999")

    admin.goto(f"{live_server.url}/admin/onboardings")
    row = admin.locator("tbody tr", has_text="Wind & Wool")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("wool")
    expect(row).to_contain_text("completed")
