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


def test_meta_downgrades_the_number_and_the_dashboard_shows_it_under_the_customers_name(
        live_server, browser_page, customer_tab, screenshot):
    """Meta lowers the number's messaging limit (phone_number_quality_update DOWNGRADE: meta-docs/webhooks/
    reference/phone-number-quality-update-webhook-reference.md) and rates it RED, which no webhook says
    (Graph's quality_rating: reference/whatsapp-business-phone-number/…-phone-number-api.md); the health
    sweep reads it. The admin finds the customer by name on the dashboard, and the number's health on their
    onboarding's page."""
    import requests
    import sqlalchemy as sa

    from esu import sweep
    from esu.cli import create_page
    from esu.models import Onboarding

    with live_server.app.app_context():
        set_admin_password(PASSWORD)
        create_page("kopi", "Connect Kopi Kita")
        db.session.commit()
    open_signup(customer_tab, live_server, "kopi")
    dialog = launch(customer_tab)
    dialog.get_by_label("Business name").fill("Kopi Kita Nusantara")
    finish(dialog)
    expect_success(customer_tab, "Kopi Kita Nusantara")
    with live_server.app.app_context():
        onboarding = db.session.scalars(sa.select(Onboarding).where(Onboarding.status == "completed")).one()
        waba_id, phone_id, display = onboarding.waba_id, onboarding.phone_number_id, onboarding.display_phone_number

    sent = requests.post(f"{live_server.url}/_meta/webhooks/send", timeout=10, json={
        "field": "phone_number_quality_update", "waba_id": waba_id,
        "value": {"display_phone_number": "".join(filter(str.isdigit, display)), "event": "DOWNGRADE",
                  "max_daily_conversations_per_business": "TIER_250"}})
    assert sent.status_code == 200, sent.text
    changed = requests.post(f"{live_server.url}/_meta/phone_numbers/{phone_id}", json={"quality_rating": "RED"},
                            timeout=10)
    assert changed.status_code == 200, changed.text
    with live_server.app.app_context():
        assert sweep.sweep().checked == 1

    admin = browser_page
    log_in(admin, live_server, "/admin/")
    card = admin.locator("article.signal-quality")
    expect(card).to_contain_text("Kopi Kita Nusantara")
    expect(card).to_contain_text("quality RED")
    expect(card).to_contain_text("Meta: DOWNGRADE")
    screenshot(admin, "journey-downgraded-number-dashboard")
    card.get_by_role("link", name="Kopi Kita Nusantara").click()
    admin.locator("tbody tr", has_text="Kopi Kita Nusantara").get_by_role("link").first.click()
    lifecycle = admin.locator("section.lifecycle")
    expect(lifecycle).to_contain_text("RED")
    expect(lifecycle.locator(".messaging-limit")).to_have_text("TIER_250")
    expect(lifecycle.locator(".quality-event")).to_contain_text("DOWNGRADE")
