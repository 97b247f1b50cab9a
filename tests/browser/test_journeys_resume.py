"""Journeys of a customer who leaves in the middle and comes back, in Chromium: by reloading the page or
reopening it, and by the resume link the admin copies for them."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from esu.extensions import db
from esu.models import Onboarding, OnboardingStep
from esu.models.admin import set_admin_password
from esu.simulator.errors import USER_TEXTS

from ..admin_support import PASSWORD
from .test_journeys import log_in
from .test_widget import add_page, expect_success, finish, launch, open_signup, records, result


def ask_for_the_code(page) -> None:
    form = page.locator("[data-esu-verify]")
    expect(form).to_be_visible()
    with page.expect_response(lambda response: response.url.endswith("/request-code")) as sent:
        form.get_by_role("button", name="Send the code").click()
    assert sent.value.status == 200
    expect(form.get_by_label("6-digit code")).to_be_visible()


def expect_where_it_stopped(page) -> None:
    """The widget, back on the page, shows the verification where it stopped: the code was asked for."""
    form = page.locator("[data-esu-verify]")
    expect(form).to_be_visible()
    expect(page.locator("[data-esu-steps] [data-step=register_phone]")).to_contain_text("Needs your code")
    expect(page.locator("[data-esu-countdown]")).to_have_text(
        "We already asked Meta for a code. Enter it below, or ask for a new one."
    )
    expect(form.get_by_role("button", name="Send a new code")).to_be_enabled()
    expect(form.get_by_label("6-digit code")).to_be_visible()
    expect(page.locator("[data-esu-launch]")).to_be_hidden()


def enter_the_code(page) -> None:
    form = page.locator("[data-esu-verify]")
    form.get_by_label("6-digit code").fill("123456")
    form.get_by_role("button", name="Verify").click()


def test_the_customer_reloads_during_verification_comes_back_and_enters_the_code(
    live_server, browser_context, browser_page, screenshot
):
    add_page(live_server, "shop", "Connect the shop")
    page = browser_page
    open_signup(page, live_server, "shop")
    finish(launch(page), unverified=True)
    ask_for_the_code(page)

    page.reload()
    expect_where_it_stopped(page)
    screenshot(page, "journey-resumed-after-reload")

    # The tab closed altogether: a new one, on the same page, picks the sign-up up too.
    page.close()
    again = browser_context.new_page()
    again.goto(f"{live_server.url}/signup/shop")
    expect_where_it_stopped(again)
    enter_the_code(again)

    expect_success(again, "Simulated Business")
    [onboarding] = records(live_server, Onboarding)
    assert onboarding.status == "completed"
    steps = {step.name: step for step in records(live_server, OnboardingStep, onboarding_id=onboarding.id)}
    assert steps["register_phone"].status == "ok" and steps["verify_code"].status == "ok"
    assert steps["request_code"].runs == 1  # no second code was asked for by coming back
    # Done: the next visit starts afresh.
    again.reload()
    expect(again.locator("[data-esu-launch]")).to_be_enabled()
    expect(again.locator("[data-esu-verify]")).to_be_hidden()


def test_the_admin_copies_a_resume_link_and_the_customer_finishes_through_it(
    live_server, chromium, browser_context, browser_page, screenshot
):
    add_page(live_server, "shop", "Connect the shop")
    with live_server.app.app_context():
        set_admin_password(PASSWORD)
        db.session.commit()
    first_visit = chromium.new_context(viewport={"width": 1280, "height": 900})  # the customer's, not the admin's
    try:
        customer_tab = first_visit.new_page()
        open_signup(customer_tab, live_server, "shop")
        finish(launch(customer_tab), unverified=True)
        expect(customer_tab.locator("[data-esu-verify]")).to_be_visible()
    finally:
        first_visit.close()  # and the customer leaves without asking for the code
    [onboarding] = records(live_server, Onboarding)
    assert onboarding.status == "awaiting_verification"

    admin = browser_page
    browser_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    log_in(admin, live_server, f"/admin/onboardings/{onboarding.id}")
    expect(admin.get_by_role("heading", name="Resume link")).to_be_visible()
    admin.get_by_role("button", name="Copy resume link").click()
    expect(admin.locator("[data-copied]")).to_have_text("Copied.")
    link = admin.evaluate("navigator.clipboard.readText()")
    assert re.fullmatch(rf"{re.escape(live_server.url)}/signup/shop/resume\?token=[\w.-]+", link)
    screenshot(admin, "journey-admin-resume-link")

    # The customer opens it in a browser that has never seen the page.
    fresh = chromium.new_context(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    fresh.on("page", lambda tab: tab.on("pageerror", lambda error: errors.append(str(error))))
    try:
        tab = fresh.new_page()
        tab.goto(link)
        expect(tab).to_have_url(f"{live_server.url}/signup/shop")  # the token left the address bar
        form = tab.locator("[data-esu-verify]")
        expect(form).to_be_visible()
        expect(tab.locator("[data-esu-message]")).to_have_text("One more thing: confirm your phone number.")
        ask_for_the_code(tab)
        # A mistyped code reads plain words, never Meta's "(#136025) Verification code mismatch…" (this
        # context watches for page errors only: Chromium logs the 400 to its console).
        form.get_by_label("6-digit code").fill("654321")
        form.get_by_role("button", name="Verify").click()
        expect(tab.locator("[data-esu-verify-error]")).to_have_text(
            f"That code did not work: {USER_TEXTS[(136025, None)][1]}"  # Meta's words for people
        )
        enter_the_code(tab)
        expect_success(tab, "Simulated Business")
    finally:
        fresh.close()
    assert errors == []

    [onboarding] = records(live_server, Onboarding)
    assert onboarding.status == "completed"
    admin.reload()
    expect(admin.get_by_role("heading", name="Resume link")).to_be_hidden()


def test_after_a_dropped_connection_try_again_picks_up_what_the_server_did(live_server, browser_context):
    """The callback reached esu and ran, but its answer never reached the browser: "Try again" (not "Start
    again") shows the onboarding as the server has it, without signing up twice."""
    add_page(live_server, "shop", "Connect the shop")
    # Not browser_page: Chromium logs the lost answer as a console error, which is the point here.
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def lose_the_answer(route):
        route.fetch()  # esu gets the callback and runs the whole onboarding…
        route.abort("connectionreset")  # …and the browser never hears back

    page.route("**/signup/shop/callback", lose_the_answer)
    open_signup(page, live_server, "shop")
    finish(launch(page))

    expect(result(page).get_by_role("heading")).to_have_text("We could not reach our server")
    expect(page.get_by_role("button", name="Start again")).to_be_hidden()
    [onboarding] = records(live_server, Onboarding)
    assert onboarding.status == "completed"
    page.unroute("**/signup/shop/callback")
    with page.expect_request(lambda request: request.url.endswith(f"/onboardings/{onboarding.client_ref}")):
        page.get_by_role("button", name="Try again").click()
    expect_success(page, "Simulated Business")
    assert len(records(live_server, Onboarding)) == 1
    assert errors == []


def test_a_callback_sent_again_after_the_first_won_follows_that_onboarding(live_server, browser_context):
    """The answer to the callback is lost, and "Try again" asks too early: the onboarding is not there yet
    (404), so the widget sends the callback again, and esu answers 409 (it already has this code). The
    customer sees their onboarding finish, not "already received… start again"."""
    add_page(live_server, "shop", "Connect the shop")
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def lose_the_answer(route):
        route.fetch()
        route.abort("connectionreset")

    page.route("**/signup/shop/callback", lose_the_answer)
    open_signup(page, live_server, "shop")
    finish(launch(page))
    expect(result(page).get_by_role("heading")).to_have_text("We could not reach our server")
    page.unroute("**/signup/shop/callback")
    [onboarding] = records(live_server, Onboarding)

    # The first look finds nothing yet, as if the first callback had not been stored when it asked.
    page.route(f"**/onboardings/{onboarding.client_ref}",
               lambda route: route.fulfill(status=404, json={"error": "not yet", "status": 404}), times=1)
    with page.expect_response(lambda response: response.url.endswith("/signup/shop/callback")) as again:
        page.get_by_role("button", name="Try again").click()
    assert again.value.status == 409
    expect_success(page, "Simulated Business")
    expect(page.get_by_text("This sign-up was already received")).to_be_hidden()
    assert len(records(live_server, Onboarding)) == 1
    assert errors == []
