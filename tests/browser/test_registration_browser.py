"""Registration in Chromium: a number that already has two-step verification, whose PIN the customer types
into the widget (the second WABA's number, with several, named by the widget).

register-a-business-phone-number.md and two-step-verification.md: such a number registers only with its own
6-digit PIN; Meta answers any other with 133005.
"""

from __future__ import annotations

import json

from playwright.sync_api import expect

from esu import phones
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


def test_the_widget_asks_for_the_pin_of_the_second_wabas_number_by_its_number(
        live_server, browser_context, browser_page):
    """A multi-WABA flow (embedded-signup/implementation.md, ``waba_ids``) whose second WABA's number already has
    two-step verification: the widget names that number, not the onboarding's own, and registration completes
    with its PIN (register-a-business-phone-number.md)."""
    add_page(live_server, "shop", "Connect the shop")
    simulator = live_server.app.extensions["meta_simulator"]
    second: dict[str, str] = {}

    def two_wabas_the_second_with_a_pin(route) -> None:
        options = json.loads(route.request.post_data or "{}")
        response = route.fetch(post_data=json.dumps({**options, "wabas": 2}))
        [number] = simulator.listed("phone", response.json()["data"]["waba_ids"][1])
        simulator.change("phone", number.id, lambda phone: setattr(phone, "pin", EXISTING_PIN))
        second.update(id=number.id, shown=phones.international(number.display_phone_number))
        route.fulfill(response=response)

    browser_context.route("**/_meta/signup", two_wabas_the_second_with_a_pin)
    page = browser_page
    open_signup(page, live_server, "shop")

    finish(launch(page))

    form = page.locator("[data-esu-pin]")
    expect(form).to_be_visible()
    expect(form).to_contain_text(f"{second['shown']} already has two-step verification")
    [onboarding] = records(live_server, Onboarding)
    assert onboarding.status == "awaiting_pin" and onboarding.phone_number_id != second["id"]

    form.get_by_label("6-digit PIN").fill(EXISTING_PIN)
    form.get_by_role("button", name="Continue").click()

    expect_success(page, "Simulated Business")
    [onboarding] = records(live_server, Onboarding)
    assert onboarding.status == "completed"
    [phone] = records(live_server, PhoneNumber, id=second["id"])
    assert phone.registered_at is not None and phone.pin == EXISTING_PIN
