"""The admin in Chromium: log in, open a failed onboarding, retry it; the dashboard on a laptop and a phone;
add a forwarding target and send it a test event."""

from __future__ import annotations

import secrets
from datetime import timedelta

import requests

from esu.cli import create_page
from esu.extensions import db
from esu.models import now_utc
from esu.models.admin import set_admin_password

from ..admin_support import PASSWORD, gen_onboarding, gen_signup_event
from ..forwarding.conftest import Clock, Receiver
from ..helpers import browser_session


def seed_history(page) -> None:
    """A month of signups, so the dashboard has something to draw."""
    statuses = ["completed"] * 6 + ["failed", "awaiting_verification", "offboarded"]
    for day in range(1, 28):
        for index in range(day % 3 + 1):
            gen_onboarding(page, business_name=f"Customer {day}-{index}", status=statuses[(day + index) % len(statuses)],
                           created_at=now_utc() - timedelta(days=day, hours=index))
    for kind, count in (("view", 160), ("launch", 90), ("finish", 48)):
        for _ in range(count):
            gen_signup_event(page, kind)
    for step, count in (("BUSINESS_ACCOUNT_SELECTION", 14), ("PHONE_NUMBER_SETUP", 11), ("PHONE_NUMBER_VERIFICATION", 9)):
        for _ in range(count):
            gen_signup_event(page, "cancel", current_step=step)
    gen_signup_event(page, "error", error_message="Your verified name violates WhatsApp guidelines.")


def failed_signup(base_url: str, slug: str) -> dict:
    """A customer finishes signup while Meta refuses the webhook subscription: the onboarding fails."""
    requests.post(f"{base_url}/_meta/faults", json={"operation": "subscribed_apps", "error_code": 200},
                  timeout=5).raise_for_status()
    signup = requests.post(f"{base_url}/_meta/signup", json={"business_name": "Retry Bakery"}, timeout=5).json()
    browser, token = browser_session(base_url, slug)
    body = {key: signup[key] for key in ("code", "event", "waba_id", "phone_number_id", "business_id")}
    response = browser.post(f"{base_url}/signup/{slug}/callback", json={**body, "client_ref": secrets.token_urlsafe(16)},
                            headers={"X-CSRFToken": token}, timeout=30)
    assert response.status_code == 201
    return response.json()


def test_admin_logs_in_and_retries_a_failed_onboarding(live_server, browser_page, screenshot):
    with live_server.app.app_context():
        page = create_page("bakery", "Connect your WhatsApp number", client_name="Bakeries Inc")
        seed_history(page)
        set_admin_password(PASSWORD)
        db.session.commit()
    onboarding = failed_signup(live_server.url, "bakery")
    assert onboarding["status"] == "failed"

    tab = browser_page
    tab.goto(f"{live_server.url}/admin/onboardings/{onboarding['id']}")
    assert "/admin/login?next=" in tab.url
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_url(f"**/admin/onboardings/{onboarding['id']}")

    assert tab.locator("h1").inner_text().startswith("Retry Bakery")
    failed_row = tab.locator("tr.step-failed")
    assert "Subscribe to the account" in failed_row.inner_text()
    assert "fbtrace_id" in failed_row.inner_text()

    tab.get_by_role("button", name="Retry failed steps").click()
    tab.wait_for_load_state()
    assert "The onboarding is now completed." in tab.get_by_role("status").inner_text()
    assert tab.locator("h1 .badge").inner_text() == "completed"
    assert tab.locator("tr.step-failed").count() == 0
    assert tab.get_by_role("button", name="Retry failed steps").count() == 0
    screenshot(tab, "admin-onboarding")

    tab.get_by_role("link", name="Dashboard").click()
    tab.wait_for_load_state()
    assert tab.locator(".signal-failed").count() == 1  # the seeded history has failures of its own
    assert tab.locator(".day-chart rect").count() > 20
    assert tab.locator(".funnel-row").count() >= 7
    screenshot(tab, "admin-dashboard")

    tab.set_viewport_size({"width": 390, "height": 844})
    for path in ("/admin/", "/admin/onboardings", f"/admin/onboardings/{onboarding['id']}", "/admin/pages/new"):
        tab.goto(f"{live_server.url}{path}")
        overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways on a phone by {overflow}px"
    tab.goto(f"{live_server.url}/admin/")
    screenshot(tab, "admin-dashboard-phone")


def test_admin_adds_a_forwarding_target_and_sends_a_test_event(live_server, browser_page, screenshot):
    receiver = Receiver(Clock())
    try:
        with live_server.app.app_context():
            page_id = create_page("relay", "Connect WhatsApp", client_name="Relay Co").id
            set_admin_password(PASSWORD)
            db.session.commit()

        tab = browser_page
        tab.goto(f"{live_server.url}/admin/pages/{page_id}")
        tab.get_by_label("Password").fill(PASSWORD)
        tab.get_by_role("button", name="Log in").click()
        tab.wait_for_url(f"**/admin/pages/{page_id}")

        forwarding = tab.locator("#forwarding")
        assert "No forwarding targets yet" in forwarding.inner_text()
        forwarding.get_by_label("URL").fill(receiver.url)
        forwarding.get_by_label("messages", exact=True).check()
        forwarding.get_by_role("button", name="Add target").click()
        tab.wait_for_load_state()

        secret = tab.locator(".secret-value code").inner_text()
        assert secret.startswith("whsec_")
        receiver.secret = secret
        screenshot(tab, "admin-forwarding-secret")
        tab.reload()  # shown once: a reload neither shows the secret nor adds the target again
        assert tab.locator(".secret").count() == 0 and secret not in tab.content()
        assert "not shown again on reload" in tab.get_by_role("status").inner_text()

        tab.get_by_role("button", name="Send a test event").click()
        tab.wait_for_load_state()
        assert "Test event delivered (HTTP 200)." in tab.get_by_role("status").inner_text()
        assert tab.locator(".secret").count() == 0  # the redirect after the test shows no secret
        assert [request.verified for request in receiver.received] == [True]
        tab.locator("tr.delivery-delivered summary").click()
        assert "HTTP 200" in tab.locator("ol.attempts").inner_text()
        screenshot(tab, "admin-forwarding-target")

        tab.goto(f"{live_server.url}/admin/pages/{page_id}")
        row = tab.locator("table.targets tbody tr")
        assert receiver.url in row.inner_text() and "messages" in row.inner_text()
        assert secret not in tab.content()
        tab.locator("#forwarding").scroll_into_view_if_needed()
        screenshot(tab, "admin-forwarding-page")

        tab.set_viewport_size({"width": 390, "height": 844})
        for path in (f"/admin/pages/{page_id}", tab.locator("table.targets a").first.get_attribute("href")):
            tab.goto(f"{live_server.url}{path}")
            overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} scrolls sideways on a phone by {overflow}px"
    finally:
        receiver.stop()
