"""Journeys across features, in Chromium: what the admin sets up is what the customer meets, and what the
customer does is what the admin sees."""

from __future__ import annotations

import secrets
import time

import pytest
import requests
import sqlalchemy as sa
from playwright.sync_api import expect

from esu import forwarding
from esu.cli import create_page
from esu.extensions import db
from esu.models import Onboarding
from esu.models.admin import set_admin_password

from ..admin_support import PASSWORD
from ..forwarding.conftest import Clock, Receiver, verify_webhook
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
    expect_success(customer_tab, "Wind & Wool", "+1 650-555-9999")

    admin.goto(f"{live_server.url}/admin/onboardings")
    row = admin.locator("tbody tr", has_text="Wind & Wool")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("wool")
    expect(row).to_contain_text("completed")

    # Meta's webhook about the new customer (PARTNER_ADDED, sent when the person finished: meta-docs/
    # embedded-signup/implementation.md, "Webhooks") reaches the onboarding's page, and the dashboard's funnel
    # for the page counts the customer from the view to fully onboarded.
    row.get_by_role("link").first.click()
    events = admin.locator("section[aria-labelledby='events-title']")
    expect(events).to_contain_text("event: PARTNER_ADDED")
    expect(events).to_contain_text("applied")
    screenshot(admin, "journey-prefill-onboarding-page")
    admin.goto(f"{live_server.url}/admin/")
    funnel = admin.locator("article.funnel", has_text="Connect Wind & Wool")
    expect(funnel.locator(".funnel-done")).to_contain_text("Fully onboarded")
    expect(funnel.locator(".funnel-done .n")).to_have_text("1")


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


def test_a_forwarding_secret_is_rotated_and_a_receiver_still_on_the_old_secret_verifies_during_the_overlap(
        live_server, browser_page, customer_tab, screenshot):
    """Standard Webhooks, "Webhook headers" (spec/standard-webhooks.md, github.com/standard-webhooks/standard-webhooks):
    during a rotation the webhook is signed with the current and the old key, both signatures space delimited
    in ``webhook-signature``; the consumer tries each. The receiver here checks with the README's code."""
    receiver = Receiver(Clock())
    try:
        with live_server.app.app_context():
            page_id = create_page("relay", "Connect WhatsApp", client_name="Relay Co").id
            set_admin_password(PASSWORD)
            db.session.commit()
        open_signup(customer_tab, live_server, "relay")
        finish(launch(customer_tab))
        expect_success(customer_tab, "Simulated Business")
        with live_server.app.app_context():
            onboarding = db.session.scalar(sa.select(Onboarding).where(Onboarding.page_id == page_id))
            waba_id, phone_number_id = onboarding.waba_id, onboarding.phone_number_id

        admin = browser_page
        log_in(admin, live_server, f"/admin/pages/{page_id}")
        admin.locator("#forwarding").get_by_label("URL").fill(receiver.url)
        admin.locator("#forwarding").get_by_role("button", name="Add target").click()
        old_secret = admin.locator(".secret-value code").inner_text()
        receiver.secret = old_secret  # the client's receiver is set up with it, and stays so

        admin.get_by_role("button", name="New signing secret").click()
        new_secret = admin.locator(".secret-value code").inner_text()
        assert new_secret.startswith("whsec_") and new_secret != old_secret
        expect(admin.locator(".secret")).to_contain_text("the previous secret keeps signing beside it until")
        screenshot(admin, "journey-rotated-secret")

        def meta_sends_a_message(text: str) -> None:
            value = {"messaging_product": "whatsapp",
                     "metadata": {"display_phone_number": "15550000000", "phone_number_id": phone_number_id},
                     "messages": [{"from": "15551234567", "id": f"wamid.{secrets.token_hex(8)}",
                                   "timestamp": str(int(time.time())), "type": "text", "text": {"body": text}}]}
            response = requests.post(f"{live_server.url}/_meta/webhooks/send", timeout=10,
                                     json={"field": "messages", "value": value, "waba_id": waba_id})
            assert response.json()["delivery"]["status"] == 200
            with live_server.app.app_context():
                forwarding.run_worker(5, once=True, clock=receiver.clock, poll_interval=0.01)

        meta_sends_a_message("during the overlap")
        (during,) = receiver.received
        assert b"during the overlap" in during.body
        assert during.verified  # checked with the old secret, the receiver's
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        assert verify_webhook(new_secret, during.headers, during.body, now=receiver.clock().timestamp())

        receiver.clock.advance(hours=24, minutes=1)  # the overlap (FORWARD_SECRET_OVERLAP_HOURS, 24) is over
        meta_sends_a_message("after the overlap")
        after = receiver.received[1]
        assert b"after the overlap" in after.body and not after.verified
        assert verify_webhook(new_secret, after.headers, after.body, now=receiver.clock().timestamp())

        admin.goto(admin.url.split("?")[0])  # the target's page, without the secret's one-time view
        expect(admin.locator("tr.delivery-delivered")).to_have_count(2)
        screenshot(admin, "journey-rotated-secret-deliveries")
    finally:
        receiver.stop()
