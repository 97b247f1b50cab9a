"""Registration in Chromium: a number that already has two-step verification, whose PIN the customer types
into the widget.

register-a-business-phone-number.md and two-step-verification.md: such a number registers only with its own
6-digit PIN; Meta answers any other with 133005.
"""

from __future__ import annotations

from playwright.sync_api import expect

from esu.models import Onboarding, PhoneNumber, WhatsAppBusinessAccount

from .test_widget import add_page, expect_success, finish, launch, open_signup, records

EXISTING_PIN = "246810"


def test_the_customer_types_the_numbers_pin_and_registration_completes(live_server, browser_page):
    add_page(live_server, "shop", "Connect the shop")
    page = browser_page
    open_signup(page, live_server, "shop")

    # The person's number has two-step verification, and their WABA bills in euros: chosen in the simulated
    # dialog, as POST /_meta/signup's ``two_step_pin`` and ``currency`` options.
    finish(launch(page), two_step_pin=EXISTING_PIN, currency="EUR")

    form = page.locator("[data-esu-pin]")
    expect(form).to_be_visible()
    expect(form.get_by_role("heading")).to_be_focused()
    expect(form).to_contain_text("already has two-step verification")
    expect(page.locator("[data-esu-steps] [data-step=register_phone]")).to_contain_text("Needs your PIN")
    [onboarding] = records(live_server, Onboarding)
    assert onboarding.status == "awaiting_pin"

    form.get_by_label("6-digit PIN").fill("111111")
    with page.expect_response(lambda response: response.url.endswith("/pin")):
        form.get_by_role("button", name="Continue").click()
    expect(form.get_by_role("alert")).to_have_text("That is not the PIN of this number. Check it and try again.")

    form.get_by_label("6-digit PIN").fill(EXISTING_PIN)
    form.get_by_role("button", name="Continue").click()

    expect_success(page, "Simulated Business")
    expect(form).to_be_hidden()
    [onboarding] = records(live_server, Onboarding)
    assert onboarding.status == "completed"
    [phone] = records(live_server, PhoneNumber)
    assert phone.registered_at is not None and phone.pin == EXISTING_PIN
    [waba] = records(live_server, WhatsAppBusinessAccount)
    assert waba.currency == "EUR"  # as Meta's WABA reads (esu shares no credit line here)
