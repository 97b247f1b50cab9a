"""Browser tests: the app served on 127.0.0.1 with its simulator mounted, driven by Playwright in
Debian's Chromium (/usr/bin/chromium; `make test` installs it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from esu import create_app
from esu.simulator.webhooks import sender

from ..conftest import ServerThread, empty_tables, make_config, reset_rate_limits

CHROMIUM = os.environ.get("ESU_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Without these, Chromium keeps trying to reach Google's hosts, which this network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser


@pytest.fixture
def live_config(migrated_database):
    """Settings of the served app: simulator mounted in-process, like `make demo`."""
    config = make_config(migrated_database, "", ESU_SIMULATOR=True)
    config.pop("META_GRAPH_URL")  # the simulator's in-process default
    return config


@pytest.fixture
def live_app(live_config):
    app = create_app(live_config)
    with app.app_context():
        reset_rate_limits()
    yield app
    # The simulator sends PARTNER_ADDED after each finished signup in a thread: let it land before emptying tables.
    sender(app).flush()
    with app.app_context():
        empty_tables()


@pytest.fixture
def live_server(live_app):
    """The app on a real port; ``.url`` is its origin, ``.app`` the Flask app."""
    server = ServerThread(live_app)
    server.app = live_app
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test`, which installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_context(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    yield context
    context.close()


@pytest.fixture
def console_errors(browser_context):
    """Console errors and uncaught exceptions of every page in the context; a test with any fails."""
    errors: list[str] = []

    def watch(page):
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))

    browser_context.on("page", watch)
    yield errors
    assert errors == [], f"console errors: {errors}"


@pytest.fixture
def browser_page(browser_context, console_errors):
    """A fresh tab; console errors fail the test."""
    return browser_context.new_page()


@pytest.fixture
def screenshot():
    """Save a screenshot for people to look at, under test-artifacts/."""

    def save(page, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
