"""In Chromium: a customer finishes Meta's dialog without a phone number (embedded-signup/versions.md: since
v3 "Users can finish with a verified, unverified, or no phone number"; implementation.md: FINISH_ONLY_WABA
and the assets the message lists), reads so in plain words, and the admin sees the number to add."""

from __future__ import annotations

from playwright.sync_api import expect

from esu.extensions import db
from esu.models import Onboarding
from esu.models.admin import set_admin_password

from ..admin_support import PASSWORD
from .test_journeys import customer_tab, log_in  # noqa: F401 - customer_tab is a fixture
from .test_widget import add_page, finish, launch, open_signup, records, result


def test_a_finish_without_a_number_reads_so_and_the_admin_sees_a_number_to_add(
        live_server, browser_page, customer_tab, screenshot):  # noqa: F811 - the fixture
    with live_server.app.app_context():
        set_admin_password(PASSWORD)
        db.session.commit()
    add_page(live_server, "bakery", "Connect the bakery")
    open_signup(customer_tab, live_server, "bakery")
    dialog = launch(customer_tab)
    dialog.get_by_label("Business name").fill("No Number Bakery")
    dialog.get_by_label("Facebook Pages").check()
    finish(dialog, no_phone=True)

    expect(result(customer_tab).get_by_role("heading")).to_have_text("You are connected")
    expect(result(customer_tab)).to_contain_text(
        "The WhatsApp Business account of No Number Bakery is connected, without a phone number yet.")
    expect(result(customer_tab)).to_contain_text("Add one in WhatsApp Manager whenever you are ready")
    screenshot(customer_tab, "finish-without-a-number")

    [onboarding] = records(live_server, Onboarding)
    assert (onboarding.event, onboarding.status, onboarding.phone_number_id) == ("FINISH_ONLY_WABA", "completed", None)
    admin = browser_page
    log_in(admin, live_server, f"/admin/onboardings/{onboarding.id}")
    finished = admin.locator("#finish")
    expect(finished).to_contain_text("number to add")
    expect(finished).to_contain_text("Facebook Pages")
    expect(finished.get_by_role("button", name="Look for numbers")).to_be_visible()
    screenshot(admin, "admin-number-to-add")
