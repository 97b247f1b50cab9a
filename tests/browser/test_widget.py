"""The signup widget in Chromium: the page, the simulator's Embedded Signup dialog in its popup, the
onboarding as the person watches it, and what the server records."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Request, Response

from esu.cli import create_page
from esu.extensions import db
from esu.models import Onboarding, OnboardingStep, PhoneNumber, SignupEvent

from ..conftest import META, ServerThread

SCREENS = ("BUSINESS_ACCOUNT_SELECTION", "WABA_PHONE_PROFILE_PICKER", "WHATSAPP_BUSINESS_PROFILE_SETUP",
           "PHONE_NUMBER_SETUP", "PHONE_NUMBER_VERIFICATION", "PERMISSIONS")
BUSINESS = {"name": "Wind & Wool", "email": "support@windandwool.com", "website": "https://windandwool.com/",
            "phone": {"code": 1, "number": "6505559999"}, "address": {"country": "US"}}
PREFILL = {"business": BUSINESS}  # Meta's extras.setup


# -- helpers --------------------------------------------------------------------------------------


def add_page(live_server, slug: str, title: str, **fields) -> None:
    with live_server.app.app_context():
        page = create_page(slug, title)
        for name, value in fields.items():
            setattr(page, name, value)
        db.session.commit()


def records(live_server, model, **where) -> list:
    """The rows of ``model`` in the served app's database, oldest first, with their page loaded."""
    with live_server.app.app_context():
        query = sa.select(model).filter_by(**where).order_by(model.id)
        if hasattr(model, "page"):
            query = query.options(selectinload(model.page))
        return list(db.session.scalars(query))


def posted(kind: str):
    """Matches the answer to the widget's funnel event of ``kind``."""

    def match(response) -> bool:
        if not response.url.endswith("/events") or response.request.method != "POST":
            return False
        return json.loads(response.request.post_data)["kind"] == kind

    return match


def is_callback(request) -> bool:
    return request.url.endswith("/callback") and request.method == "POST"


def open_signup(page, live_server, slug: str) -> None:
    with page.expect_response(posted("view")):
        page.goto(f"{live_server.url}/signup/{slug}")
    expect(launch_button(page)).to_be_enabled()


def launch_button(page):
    return page.locator("[data-esu-launch]")


def launch(page):
    """Click the widget's button; answers the simulator's dialog in its popup."""
    with page.expect_response(posted("launch")), page.expect_popup() as popup:
        launch_button(page).click()
    dialog = popup.value
    dialog.wait_for_load_state()
    expect(dialog.locator("[data-screen=BUSINESS_ACCOUNT_SELECTION] h1")).to_be_focused()
    return dialog


def walk_to(dialog, screen: str) -> None:
    """Continue from the screen shown to ``screen``."""
    shown = dialog.locator("[data-screen]:visible").get_attribute("data-screen")
    for _ in range(SCREENS.index(screen) - SCREENS.index(shown)):
        dialog.get_by_role("button", name="Continue").click()
    expect(dialog.locator(f"[data-screen={screen}]")).to_be_visible()


def finish(dialog, *, unverified=False, no_phone=False, order="session-first", no_session=False,
           two_step_pin: str | None = None, currency: str | None = None) -> None:
    walk_to(dialog, "PERMISSIONS")
    if currency:
        dialog.get_by_label("Currency").select_option(currency)
    if unverified:
        dialog.get_by_label("Finish with an unverified number").check()
    if two_step_pin:
        dialog.get_by_label("Two-step verification PIN").fill(two_step_pin)
    if no_phone:
        dialog.get_by_label("Finish without a phone number").check()
    dialog.locator(f"[name=order][value={order}]").check()
    if no_session:
        dialog.get_by_label("Send no session message").check()
    with dialog.expect_event("close"):  # the SDK closes its dialog once it has the answer
        dialog.get_by_role("button", name="Finish").click()


def result(page):
    return page.locator("[data-esu-result]")


def expect_success(page, business: str, number: str | None = None) -> None:
    expect(result(page)).to_be_visible()
    expect(result(page).get_by_role("heading")).to_have_text("You are connected")
    expect(result(page).get_by_role("heading")).to_be_focused()
    expect(result(page)).to_contain_text(business)
    if number:
        expect(result(page)).to_contain_text(number)


# -- finishing ------------------------------------------------------------------------------------


def test_finish_on_two_pages_gives_each_its_onboarding(live_server, browser_page, screenshot):
    add_page(live_server, "bakery", "Connect the bakery", prefill=PREFILL)
    add_page(live_server, "florist", "Connect the florist", config_id="9876543210987654",
             feature_type="whatsapp_business_app_onboarding")
    page = browser_page

    open_signup(page, live_server, "bakery")
    dialog = launch(page)
    login = {name: values[0] for name, values in parse_qs(urlsplit(dialog.url).query).items()}
    assert login["client_id"] == META["META_APP_ID"] and login["version"] == "v25.0"
    assert login["config_id"] == META["META_CONFIG_ID"]
    assert login["response_type"] == "code" and login["override_default_response_type"] == "true"
    assert json.loads(login["extras"]) == {"setup": PREFILL, "featureType": "",
                                           "sessionInfoVersion": "3"}
    expect(dialog.get_by_label("Business name")).to_have_value("Wind & Wool")  # pre-filled by the page
    with page.expect_response(posted("finish")):
        finish(dialog)
    expect_success(page, "Wind & Wool", "+1 650-555-9999")
    expect(page.locator("[data-esu-steps] [data-step=register_phone]")).to_contain_text("Done")
    screenshot(page, "signup-success")

    open_signup(page, live_server, "florist")
    dialog = launch(page)
    login = {name: values[0] for name, values in parse_qs(urlsplit(dialog.url).query).items()}
    assert login["config_id"] == "9876543210987654"
    assert json.loads(login["extras"])["featureType"] == "whatsapp_business_app_onboarding"
    dialog.get_by_label("Business name").fill("Fleur & Co")
    dialog.get_by_label("Finish with a WhatsApp Business app number").uncheck()
    with page.expect_response(posted("finish")):
        finish(dialog)
    expect_success(page, "Fleur & Co")

    onboardings = records(live_server, Onboarding)
    assert [(o.page.slug, o.status, o.business_name) for o in onboardings] == [
        ("bakery", "completed", "Wind & Wool"), ("florist", "completed", "Fleur & Co")]
    assert all(o.client_ref and len(o.client_ref) >= 16 for o in onboardings)
    funnel = [(e.page.slug, e.kind) for e in records(live_server, SignupEvent)]
    assert funnel == [("bakery", "view"), ("bakery", "launch"), ("bakery", "finish"),
                      ("florist", "view"), ("florist", "launch"), ("florist", "finish")]


def test_the_page_is_anonymous_until_the_person_clicks(live_server, browser_page):
    """The page sets no cookie and holds no token; the click opens the dialog and fetches the token beside it."""
    add_page(live_server, "bakery", "Connect the bakery", prefill=PREFILL)
    page = browser_page
    page.context.clear_cookies()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if request.url.endswith("/session") else None)

    open_signup(page, live_server, "bakery")
    page_url = f"{live_server.url}/signup/bakery"  # the visitor's cookie goes to the signup pages' URLs only
    assert asked == [] and page.context.cookies(page_url) == []
    with page.expect_response(lambda response: response.url.endswith("/signup/bakery/session")) as session:
        dialog = launch(page)
    assert session.value.status == 200
    assert page.context.cookies(page_url), "the session starts with the token"
    with page.expect_request(is_callback) as callback:
        finish(dialog)
    assert callback.value.headers["x-csrftoken"] == session.value.json()["csrf_token"]
    expect_success(page, "Wind & Wool")
    assert asked == [f"{live_server.url}/signup/bakery/session"]


@pytest.mark.parametrize("order", ["session-first", "code-first"])
def test_code_and_session_message_in_either_order(live_server, browser_page, order):
    add_page(live_server, "shop", "Connect the shop")
    page = browser_page
    open_signup(page, live_server, "shop")
    # Watch what reaches the page, in arrival order: the login callback's code and the session message.
    page.evaluate("""() => {
        window.arrivals = [];
        const login = FB.login;
        FB.login = (callback, options) => login((response) => {
            if (response.authResponse) window.arrivals.push('code');
            callback(response);
        }, options);
        addEventListener('message', (event) => {
            if (String(event.data).includes('WA_EMBEDDED_SIGNUP')) window.arrivals.push('session');
        });
    }""")
    dialog = launch(page)
    with page.expect_request(is_callback) as callback:
        finish(dialog, order=order)
    expect_success(page, "Simulated Business")

    expected = ["session", "code"] if order == "session-first" else ["code", "session"]
    assert page.evaluate("window.arrivals") == expected
    body = callback.value.post_data_json
    [onboarding] = records(live_server, Onboarding)
    assert body["event"] == "FINISH"
    assert (body["waba_id"], body["phone_number_id"], body["business_id"]) == (
        onboarding.waba_id, onboarding.phone_number_id, onboarding.business_id)
    assert body["client_ref"] == onboarding.client_ref


def test_code_alone_is_posted_after_the_grace_period(live_server, browser_page):
    add_page(live_server, "shop", "Connect the shop")
    page = browser_page
    page.clock.install()  # the grace period passes when the test says so, not by waiting
    open_signup(page, live_server, "shop")
    dialog = launch(page)
    finish(dialog, no_session=True)
    expect(page.locator("[data-esu-message]")).to_have_text("Meta signed you up. Finishing…")
    with page.expect_request(is_callback) as callback:
        page.clock.run_for(3000)
    expect_success(page, "Simulated Business")
    body = callback.value.post_data_json
    assert body["event"] == "FINISH" and body["waba_id"] is None and body["phone_number_id"] is None
    [onboarding] = records(live_server, Onboarding)
    assert onboarding.status == "completed" and onboarding.waba_id  # the server found the WABA itself
    assert [e.kind for e in records(live_server, SignupEvent)] == ["view", "launch"]  # Meta sent no finish


# -- leaving, errors, failures ---------------------------------------------------------------------


def test_cancel_at_a_middle_screen_is_stored_with_that_screen(live_server, browser_page):
    add_page(live_server, "shop", "Connect the shop")
    page = browser_page
    open_signup(page, live_server, "shop")
    dialog = launch(page)
    walk_to(dialog, "WHATSAPP_BUSINESS_PROFILE_SETUP")
    with page.expect_response(posted("cancel")), dialog.expect_event("close"):
        dialog.get_by_role("button", name="Cancel").click()

    expect(page.locator("[data-esu-message]")).to_contain_text(
        "You stopped while creating your WhatsApp Business profile")
    expect(launch_button(page)).to_be_enabled()
    [cancel] = records(live_server, SignupEvent, kind="cancel")
    assert (cancel.page.slug, cancel.current_step) == ("shop", "WHATSAPP_BUSINESS_PROFILE_SETUP")
    assert records(live_server, Onboarding) == []


def test_closing_the_dialog_part_way_counts_as_leaving_that_screen(live_server, browser_page):
    add_page(live_server, "shop", "Connect the shop")
    page = browser_page
    open_signup(page, live_server, "shop")
    dialog = launch(page)
    walk_to(dialog, "PHONE_NUMBER_VERIFICATION")
    with page.expect_response(posted("cancel")):
        dialog.close()  # the window's own close button

    expect(page.locator("[data-esu-message]")).to_contain_text("You stopped while verifying your phone number")
    expect(launch_button(page)).to_be_enabled()
    [cancel] = records(live_server, SignupEvent, kind="cancel")
    assert cancel.current_step == "PHONE_NUMBER_VERIFICATION"


def test_reported_error_is_shown_and_stored(live_server, browser_page):
    add_page(live_server, "shop", "Connect the shop")
    page = browser_page
    open_signup(page, live_server, "shop")
    dialog = launch(page)
    walk_to(dialog, "PHONE_NUMBER_SETUP")
    dialog.get_by_role("button", name="Report a problem").click()
    dialog.get_by_label("What went wrong?").select_option("2494158")
    with page.expect_response(posted("error")), dialog.expect_event("close"):
        dialog.get_by_role("button", name="Send the report").click()

    [error] = records(live_server, SignupEvent, kind="error")
    assert error.error_message == "You have requested your code too many times."
    assert error.error_code == "2494158"
    assert error.session_id and len(error.session_id) == 15
    message = page.locator("[data-esu-message]")
    expect(message).to_contain_text("Meta reported a problem: You have requested your code too many times.")
    expect(message).to_contain_text(error.session_id)
    expect(launch_button(page)).to_be_enabled()
    assert records(live_server, SignupEvent, kind="cancel") == []


def test_an_error_ending_in_metas_dialog_is_shown_in_plain_words(live_server, browser_page):
    """implementation.md lists ERROR among the events ("the user encountered an error during the flow"); the
    person ends the simulated dialog with one, and the customer reads plain words."""
    add_page(live_server, "shop", "Connect the shop")
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    open_signup(page, live_server, "shop")
    page.evaluate("window.received = []; addEventListener('message', (event) => received.push(event.data))")
    dialog = launch(page)
    walk_to(dialog, "WABA_PHONE_PROFILE_PICKER")
    dialog.get_by_role("button", name="Report a problem").click()
    dialog.get_by_label("What went wrong?").select_option("2388098")
    with page.expect_response(posted("error")), dialog.expect_event("close"):
        dialog.get_by_role("button", name="End with this error (ERROR)").click()

    sessions = [json.loads(data) for data in page.evaluate("received") if "WA_EMBEDDED_SIGNUP" in data]
    assert [(message["event"], message["data"]["error_code"]) for message in sessions] == [("ERROR", "2388098")]
    [error] = records(live_server, SignupEvent, kind="error")
    assert error.error_code == "2388098" and error.error_message.startswith("You can only create a limited number")
    message = page.locator("[data-esu-message]")
    expect(message).to_contain_text("Meta reported a problem: You can only create a limited number")
    expect(launch_button(page)).to_be_enabled()
    assert records(live_server, SignupEvent, kind="cancel") == [] and errors == []


@pytest.mark.parametrize(("event", "data", "stored"), [
    ("CANCEL", {"error_message": "The name provided is not valid.", "error_id": 1690091, "session_id": "9a8b7c"},
     ("The name provided is not valid.", "1690091", "9a8b7c")),  # older docs' error_id, as a number
    ("ERROR", {}, ("An error occurred in the signup window.", None, None)),
])
def test_other_error_report_shapes_are_stored(live_server, browser_page, event, data, stored):
    add_page(live_server, "shop", "Connect the shop")
    page = browser_page
    open_signup(page, live_server, "shop")
    launch(page)
    with page.expect_response(posted("error")):
        page.evaluate("""([event, data]) => dispatchEvent(new MessageEvent('message', {
            origin: 'https://www.facebook.com',
            data: JSON.stringify({data, type: 'WA_EMBEDDED_SIGNUP', event})}))""", [event, data])
    [error] = records(live_server, SignupEvent, kind="error")
    assert (error.error_message, error.error_code, error.session_id) == stored
    expect(page.locator("[data-esu-message]")).to_contain_text(f"Meta reported a problem: {stored[0]}")


def test_failing_graph_step_is_explained_and_retry_succeeds(live_server, browser_page):
    add_page(live_server, "shop", "Connect the shop")
    page = browser_page
    requests.post(f"{live_server.url}/_meta/faults", json={"operation": "register", "error_code": 2, "times": 5},
                  timeout=5).raise_for_status()
    open_signup(page, live_server, "shop")
    finish(launch(page))

    expect(result(page)).to_be_visible()
    heading = result(page).get_by_role("heading")
    expect(heading).to_have_text("We could not finish setting up your account")
    expect(heading).to_be_focused()
    expect(result(page)).to_contain_text("We could not switch on WhatsApp for your phone number.")
    expect(result(page)).to_contain_text("try again in a moment")
    expect(page.locator("[data-esu-steps] [data-step=register_phone]")).to_contain_text("Failed")
    expect(page.get_by_role("button", name="Start again")).to_be_hidden()
    [onboarding] = records(live_server, Onboarding)
    assert onboarding.status == "failed"

    requests.delete(f"{live_server.url}/_meta/faults", timeout=5).raise_for_status()
    page.get_by_role("button", name="Try again").click()
    expect_success(page, "Simulated Business")
    [onboarding] = records(live_server, Onboarding)
    assert onboarding.status == "completed"


def test_failure_that_cannot_be_retried_offers_to_start_again(live_server, browser_page):
    add_page(live_server, "shop", "Connect the shop")
    page = browser_page
    # Meta refuses the code itself: without a business token nothing can be retried.
    requests.post(f"{live_server.url}/_meta/faults", json={"operation": "oauth_access_token", "error_code": 100},
                  timeout=5).raise_for_status()
    open_signup(page, live_server, "shop")
    finish(launch(page))

    expect(result(page).get_by_role("heading")).to_have_text("We could not finish setting up your account")
    expect(result(page)).to_contain_text("You will need to go through the sign-up again.")
    expect(page.get_by_role("button", name="Try again")).to_be_hidden()
    page.get_by_role("button", name="Start again").click()
    expect(result(page)).to_be_hidden()
    expect(launch_button(page)).to_be_enabled()
    expect(launch_button(page)).to_be_focused()
    # Meta's PARTNER_ADDED, sent when the person finished, left a record waiting for a callback that proves it.
    [onboarding] = records(live_server, Onboarding, source="callback")
    assert onboarding.status == "failed" and onboarding.business_token is None


# -- an unverified number --------------------------------------------------------------------------


def test_unverified_number_is_verified_with_its_code(live_server, browser_page):
    add_page(live_server, "shop", "Connect the shop")
    page = browser_page
    open_signup(page, live_server, "shop")
    finish(launch(page), unverified=True)

    form = page.locator("[data-esu-verify]")
    expect(form).to_be_visible()
    expect(form.get_by_role("heading")).to_be_focused()
    expect(page.locator("[data-esu-steps] [data-step=register_phone]")).to_contain_text("Needs your code")
    form.get_by_label("Voice call").check()
    with page.expect_request(lambda r: r.url.endswith("/request-code")) as request_code:
        form.get_by_role("button", name="Send the code").click()
    assert request_code.value.post_data_json == {"method": "VOICE"}
    countdown = page.locator("[data-esu-countdown]")
    expect(countdown).to_have_text(
        re.compile(r"Meta is calling \+[\d -]+\. You can ask for a new code in \d+ s\."))
    expect(form.get_by_role("button", name="Send a new code")).to_be_disabled()
    expect(form.get_by_label("6-digit code")).to_be_focused()
    form.get_by_label("6-digit code").fill("123456")
    form.get_by_role("button", name="Verify").click()

    expect_success(page, "Simulated Business")
    [onboarding] = records(live_server, Onboarding)
    assert onboarding.status == "completed"
    [phone] = records(live_server, PhoneNumber)
    assert phone.registered_at is not None and phone.code_verification_status == "VERIFIED"
    steps = {step.name: step.status for step in records(live_server, OnboardingStep, onboarding_id=onboarding.id)}
    assert (steps["request_code"], steps["verify_code"], steps["register_phone"]) == ("ok", "ok", "ok")


# -- who may talk to the widget --------------------------------------------------------------------


@Request.application
def forger(request):
    """Another site, on another port, posting a real-looking FINISH to the page that frames it."""
    return Response("""<!doctype html><title>elsewhere</title><script>
      (window.opener || parent).postMessage(JSON.stringify({data: {phone_number_id: '106540352242922', waba_id: '524126980791429',
        business_id: '2729063490586005'}, type: 'WA_EMBEDDED_SIGNUP', event: 'FINISH', version: 3}), '*');
    </script>""", mimetype="text/html")


@pytest.fixture
def other_origin():
    server = ServerThread(forger)
    yield server
    server.stop()


def test_session_message_from_another_origin_is_ignored(live_server, browser_page, other_origin):
    add_page(live_server, "shop", "Connect the shop")
    page = browser_page
    open_signup(page, live_server, "shop")
    events_posted = []
    page.on("request", lambda r: events_posted.append(r.post_data_json["kind"]) if r.url.endswith("/events") else None)
    dialog = launch(page)
    # While the dialog is open, a window from another origin posts its FINISH; wait until it arrived. (A
    # window, not a frame: the signup page's policy lets only Facebook's origins be framed.)
    page.evaluate("""(url) => new Promise((resolve) => {
        addEventListener('message', (event) => { if (event.origin === new URL(url).origin) resolve(); });
        window.open(url, 'elsewhere');
    })""", f"{other_origin.url}/")
    # The code comes first: had the forged ids been taken, they would be posted with it at once.
    with page.expect_request(is_callback) as callback:
        finish(dialog, order="code-first")
    expect_success(page, "Simulated Business")

    [onboarding] = records(live_server, Onboarding)
    body = callback.value.post_data_json
    assert body["waba_id"] == onboarding.waba_id != "524126980791429"
    assert body["phone_number_id"] == onboarding.phone_number_id
    assert events_posted.count("finish") == 1  # the dialog's own, not the forged one


def test_only_https_facebook_origins_are_trusted(live_server, browser_page):
    add_page(live_server, "shop", "Connect the shop")
    page = browser_page
    open_signup(page, live_server, "shop")
    events_posted = []
    page.on("request", lambda r: events_posted.append(r.post_data_json) if r.url.endswith("/events") else None)
    launch(page)
    untrusted = ["https://evilfacebook.com", "http://www.facebook.com", "https://www.facebook.com.evil.example",
                 "https://www.facebook.com:8443", "null", "https://facebook.co"]
    with page.expect_response(posted("cancel")):
        page.evaluate("""(untrusted) => {
            const cancel = (step) => JSON.stringify({data: {current_step: step}, type: 'WA_EMBEDDED_SIGNUP',
                                                     event: 'CANCEL', version: 3});
            for (const origin of untrusted) {
                dispatchEvent(new MessageEvent('message', {origin, data: cancel('PHONE_NUMBER_SETUP')}));
            }
            const origin = 'https://business.facebook.com';
            dispatchEvent(new MessageEvent('message', {origin, data: cancel('PERMISSIONS')}));
        }""", untrusted)
    assert [body for body in events_posted if body["kind"] == "cancel"] == [
        {"kind": "cancel", "current_step": "PERMISSIONS"}]


# -- phones, keyboards and a strict Content-Security-Policy ---------------------------------------


def test_phone_sized_screen_and_keyboard_only(live_server, browser_page, screenshot):
    add_page(live_server, "shop", "Connect your WhatsApp Business number",
             intro="Click the button, finish the steps in the Facebook window, and watch your number get connected.")
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    open_signup(page, live_server, "shop")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    for _ in range(10):  # reach the button with the keyboard alone
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.hasAttribute('data-esu-launch')"):
            break
    expect(launch_button(page)).to_be_focused()
    with page.expect_popup() as popup:
        page.keyboard.press("Enter")
    dialog = popup.value
    dialog.wait_for_load_state()
    for _ in SCREENS[:-1]:
        dialog.get_by_role("button", name="Continue").focus()
        dialog.keyboard.press("Enter")
    dialog.get_by_role("button", name="Finish").focus()
    with dialog.expect_event("close"):
        # Enter activates a button on key down; the dialog may be gone before a key up could be sent.
        dialog.keyboard.down("Enter")

    expect_success(page, "Simulated Business")
    box = result(page).bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "signup-success-phone")



def test_widget_works_under_a_strict_content_security_policy(live_server, browser_page):
    """The app's own policy (esu/security.py), not a stand-in: the whole flow runs without a violation."""
    add_page(live_server, "shop", "Connect the shop")
    page = browser_page
    page.context.add_init_script("""
        window.violations = [];
        document.addEventListener('securitypolicyviolation', (e) => window.violations.push(e.violatedDirective));
    """)
    with page.expect_response(lambda r: r.url.endswith("/signup/shop")) as response:
        open_signup(page, live_server, "shop")
    policy = response.value.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert response.value.headers["cross-origin-opener-policy"] == "same-origin-allow-popups"
    dialog = launch(page)
    walk_to(dialog, "PHONE_NUMBER_SETUP")
    assert dialog.evaluate("window.violations") == []
    finish(dialog, unverified=True)
    form = page.locator("[data-esu-verify]")
    form.get_by_role("button", name="Send the code").click()
    form.get_by_label("6-digit code").fill("123456")
    form.get_by_role("button", name="Verify").click()
    expect_success(page, "Simulated Business")
    assert page.evaluate("window.violations") == []
