"""The signup page under the security headers, in Chromium: everything it loads is allowed, nothing
inline runs, and a popup it opens on the simulator keeps talking to it, as Embedded Signup's dialog must.

Whatever the page loads (the widget's script, the SDK stand-in from /_meta) is covered by the first test:
a resource the policy blocks is a console error, and the ``console_errors`` fixture fails on any."""

from __future__ import annotations

import pytest

from esu.cli import create_page

# Collects every CSP violation a page reports, from before its first script runs.
WATCH_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture
def signup_url(live_server):
    with live_server.app.app_context():
        create_page("headers", "Connect your number")
    return f"{live_server.url}/signup/headers"


def test_signup_page_loads_under_its_policy_without_violations(browser_context, browser_page, signup_url):
    browser_context.add_init_script(WATCH_VIOLATIONS)
    response = browser_page.goto(signup_url)
    assert response.status == 200
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["cross-origin-opener-policy"] == "same-origin-allow-popups"
    browser_page.wait_for_load_state("load")
    assert browser_page.locator("h1").inner_text() == "Connect your number"
    # The stylesheet is ours, so style-src 'self' lets it apply.
    assert browser_page.evaluate("() => [...document.styleSheets].filter((s) => s.cssRules.length).length") >= 1
    # A JSON data block (the widget's settings) is never executed, so the policy does not apply to it.
    scripts = browser_page.evaluate(
        "() => [...document.scripts].filter((s) => s.type !== 'application/json').map((s) => s.src || 'inline')")
    assert "inline" not in scripts, "an inline script would be blocked by the policy"
    assert browser_page.evaluate("() => window.__cspViolations") == []


@pytest.fixture
def popups(browser_context):
    """The context, for popups showing JSON: such a tab asks for /favicon.ico, which esu does not serve (its
    pages link an SVG icon), and the 404 would count as a console error."""
    browser_context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    return browser_context


def test_a_simulator_popup_keeps_its_opener(popups, browser_page, signup_url, live_server):
    """Embedded Signup posts its result from the dialog to the page: COOP must not sever the two."""
    browser_page.goto(signup_url)
    browser_page.evaluate("""() => {
      window.__messages = [];
      window.addEventListener("message", (event) => window.__messages.push([event.origin, event.data]));
    }""")
    with popups.expect_page() as opened:
        browser_page.evaluate("() => { window.__dialog = window.open('/_meta/calls', 'dialog', 'popup'); }")
    dialog = opened.value
    dialog.wait_for_load_state("load")
    assert dialog.evaluate("() => window.opener !== null")
    dialog.evaluate("() => window.opener.postMessage({type: 'WA_EMBEDDED_SIGNUP', event: 'FINISH'}, '*')")
    browser_page.wait_for_function("() => window.__messages.length === 1")
    assert browser_page.evaluate("() => window.__messages") == [
        [live_server.url, {"type": "WA_EMBEDDED_SIGNUP", "event": "FINISH"}]
    ]
    assert browser_page.evaluate("() => window.__dialog.closed") is False


def test_a_same_origin_coop_page_would_sever_the_popup(popups, browser_page, signup_url):
    """The control for the test above: a popup answered with plain same-origin loses its opener."""
    browser_page.goto(signup_url)
    with popups.expect_page() as opened:
        browser_page.evaluate("() => { window.__dialog = window.open('/healthz', 'dialog', 'popup'); }")
    dialog = opened.value
    dialog.wait_for_load_state("load")
    assert dialog.evaluate("() => window.opener") is None


def test_the_policy_blocks_inline_script(chromium, signup_url):
    """The control for the first test: the policy is enforced, so an injected inline script never runs."""
    context = chromium.new_context()
    try:
        context.add_init_script(WATCH_VIOLATIONS)
        page = context.new_page()
        page.goto(signup_url)
        page.evaluate("""() => {
          const script = document.createElement("script");
          script.textContent = "window.__inlineRan = true";
          document.body.append(script);
        }""")
        page.wait_for_function("() => window.__cspViolations.length > 0")
        assert page.evaluate("() => window.__inlineRan") is None
        assert page.evaluate("() => window.__cspViolations")[0].startswith("script-src")
    finally:
        context.close()
