"""Registration in Chromium: a number that already has two-step verification, whose PIN the customer types
into the widget.

register-a-business-phone-number.md and two-step-verification.md: such a number registers only with its own
6-digit PIN; Meta answers any other with 133005.
"""

from __future__ import annotations

import json

from playwright.sync_api import expect

from esu.models import Onboarding, PhoneNumber

from .test_widget import add_page, expect_success, finish, launch, open_signup, records

EXISTING_PIN = "246810"


def with_two_step_pin(route) -> None:
    """The person's number has two-step verification: the dialog's signup makes the number with this PIN."""
    options = json.loads(route.request.post_data or "{}")
    route.continue_(post_data=json.dumps({**options, "two_step_pin": EXISTING_PIN}))


def test_the_customer_types_the_numbers_pin_and_registration_completes(live_server, browser_context, browser_page):
    add_page(live_server, "shop", "Connect the shop")
    browser_context.route("**/_meta/signup", with_two_step_pin)
    page = browser_page
    open_signup(page, live_server, "shop")

    finish(launch(page))

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
