"""The served app loads in Chromium."""


def test_signup_page_loads_in_chromium(live_server, browser_page):
    with live_server.app.app_context():
        from esu.cli import create_page

        create_page("smoke", "Connect your number")
    browser_page.goto(f"{live_server.url}/signup/smoke")
    assert browser_page.locator("h1").inner_text() == "Connect your number"
    assert browser_page.get_by_role("note").inner_text().startswith("Simulated Meta")
