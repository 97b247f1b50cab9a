"""A signup page inside a client's own site, in Chromium: the admin lists the site and copies the snippet, the
site (another origin: ``localhost`` against esu on ``127.0.0.1``) pastes it, and a customer finishes Meta's
dialog, opened from inside the iframe, through to a completed onboarding, while the iframe keeps the height of
the page in it.

Meta returns the code and ids "to the window that spawned the flow" (``embedded-signup/implementation.md``,
Step 1): here the framed signup page, which must stay the dialog's opener."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from werkzeug.wrappers import Request, Response

from esu.extensions import db
from esu.models import Onboarding
from esu.models.admin import set_admin_password

from ..admin_support import PASSWORD
from ..conftest import ServerThread
from . import test_journeys
from .test_journeys import log_in
from .test_widget import add_page, finish, posted, records

customer_tab = test_journeys.customer_tab  # the customer's own browser: a fixture


class ClientSite:
    """The agency's client's site: one page holding whatever snippet the test gives it, on its own port."""

    def __init__(self):
        self.snippet = ""
        self.server = ServerThread(self.app)
        # The same machine under another name: another origin, and another site, for the browser.
        self.url = self.server.url.replace("127.0.0.1", "localhost")

    @Request.application
    def app(self, request):
        if request.path != "/":
            return Response(status=204)  # the browser's favicon.ico: nothing, but no error in the console
        return Response(
            f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Wind &amp; Wool</title></head>
<body><h1>Wind &amp; Wool</h1><p>Connect your shop's WhatsApp number below.</p>
{self.snippet}
<footer>Wind &amp; Wool, since 1998</footer></body></html>""",
            mimetype="text/html",
        )


@pytest.fixture
def client_site():
    site = ClientSite()
    yield site
    site.server.stop()


def frame_height(page) -> int:
    return page.locator("iframe").evaluate("(frame) => frame.getBoundingClientRect().height")


def content_height(frame) -> int:
    return frame.evaluate("Math.ceil(document.documentElement.getBoundingClientRect().height)")


def expect_frame_fits(page, frame) -> int:
    """The iframe is as tall as the page in it says (once its message arrived), and the page has no scroll bar."""
    height = content_height(frame)
    expect(page.locator("iframe")).to_have_css("height", f"{height}px")
    assert frame.evaluate("document.documentElement.scrollHeight") <= frame_height(page)
    return height


def test_a_customer_finishes_through_the_widget_embedded_on_a_client_site(
    live_server, client_site, browser_page, customer_tab, screenshot
):
    add_page(live_server, "wool", "Connect Wind & Wool")
    with live_server.app.app_context():
        set_admin_password(PASSWORD)
        db.session.commit()
    admin = browser_page
    log_in(admin, live_server, "/admin/pages")
    admin.get_by_role("link", name="Connect Wind & Wool").click()
    admin.get_by_label("Sites that may embed this page").fill(f"{client_site.url}/")
    admin.get_by_role("button", name="Save").click()
    expect(admin.get_by_role("status")).to_contain_text("Saved the signup page wool.")
    expect(admin.get_by_label("Sites that may embed this page")).to_have_value(client_site.url)
    client_site.snippet = admin.locator("[data-embed-snippet]").inner_text()
    assert f'data-esu-signup-embed="{live_server.url}/signup/wool"' in client_site.snippet

    customer = customer_tab
    with customer.expect_response(posted("view")):
        customer.goto(f"{client_site.url}/")
    frame = customer.frame_locator("iframe")
    expect(frame.locator("[data-esu-launch]")).to_be_enabled()
    framed = customer.frames[1]
    assert framed.url == f"{live_server.url}/signup/wool"
    first_height = expect_frame_fits(customer, framed)
    screenshot(customer, "embedded-widget")

    with customer.expect_response(posted("launch")), customer.expect_popup() as popup:
        frame.locator("[data-esu-launch]").click()
    dialog = popup.value
    dialog.wait_for_load_state()
    expect(dialog.locator("[data-no-opener]")).to_be_hidden()  # the framed page is its opener
    finish(dialog)

    result = frame.locator("[data-esu-result]")
    expect(result.get_by_role("heading")).to_have_text("You are connected")
    expect(result).to_contain_text("Simulated Business")
    expect(frame.locator("[data-esu-steps] [data-step=register_phone]")).to_contain_text("Done")
    final_height = expect_frame_fits(customer, framed)
    assert final_height > first_height  # the steps and the result made the page taller, and the frame followed
    screenshot(customer, "embedded-widget-done")

    [onboarding] = records(live_server, Onboarding)
    assert (onboarding.page.slug, onboarding.status, onboarding.business_name) == (
        "wool",
        "completed",
        "Simulated Business",
    )
