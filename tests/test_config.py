"""Configuration: production refuses to start without real secrets; simulator mode is on exactly when it
should be, and says so on every page."""

from __future__ import annotations

import ast
import json
import secrets
import stat
import threading
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from werkzeug.serving import make_server

from esu import create_app
from esu.cli import create_page
from esu.config import ENV_SETTINGS, PRODUCTION_SECRETS, ConfigError, defaults, finish

from .conftest import empty_tables

ROOT = Path(__file__).resolve().parents[1]

DEV_SECRETS = {
    "SECRET_KEY": secrets.token_hex(16),
    "ESU_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "META_APP_SECRET": secrets.token_hex(16),
    "META_WEBHOOK_VERIFY_TOKEN": secrets.token_hex(8),
}
PRODUCTION = {
    "ESU_ENV": "production",
    "SECRET_KEY": secrets.token_urlsafe(32),
    "ESU_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "META_APP_ID": "1234567890123456",
    "META_APP_SECRET": secrets.token_hex(16),
    "META_CONFIG_ID": "3456789012345678",
    "META_WEBHOOK_VERIFY_TOKEN": secrets.token_urlsafe(16),
}


@pytest.fixture(autouse=True)
def environment(monkeypatch):
    """No setting leaks in from the shell that runs the tests; ``environment.set`` sets some."""
    for name in ENV_SETTINGS:
        monkeypatch.delenv(name, raising=False)

    class Environment:
        @staticmethod
        def set(**values):
            for name, value in values.items():
                monkeypatch.setenv(name, value)

    return Environment


@pytest.fixture
def make_app(migrated_database):
    """Apps built from the environment, on the test database; their rows are removed afterwards."""
    made = []

    def make(**test_config):
        made.append(create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": migrated_database, **test_config}))
        return made[-1]

    yield make
    for app in made:
        with app.app_context():
            empty_tables()


# -- production ---------------------------------------------------------------------------------------


def test_production_with_no_secrets_names_every_missing_one(environment):
    environment.set(ESU_ENV="production")

    with pytest.raises(ConfigError) as refused:
        create_app()

    message = str(refused.value)
    assert message.startswith("esu will not start in production with missing: ")
    for name in PRODUCTION_SECRETS:
        assert name in message


def test_production_names_placeholders_without_echoing_them(environment):
    environment.set(**{**PRODUCTION, "SECRET_KEY": "change-me", "META_APP_SECRET": "secret",
                       "META_WEBHOOK_VERIFY_TOKEN": "TODO"})

    with pytest.raises(ConfigError) as refused:
        create_app()

    message = str(refused.value)
    assert "placeholder values: SECRET_KEY, META_APP_SECRET, META_WEBHOOK_VERIFY_TOKEN" in message
    assert "missing" not in message
    assert "change-me" not in message and "TODO" not in message


def test_production_wants_a_long_secret_key(environment):
    environment.set(**{**PRODUCTION, "SECRET_KEY": "x7" * 8})

    with pytest.raises(ConfigError, match=r"SECRET_KEY \(shorter than 24 characters\)"):
        create_app()


def test_a_production_solution_partner_needs_its_system_user(environment):
    environment.set(**PRODUCTION, META_CREDIT_LINE_ID="4567890123456789")

    with pytest.raises(ConfigError) as refused:
        create_app()

    assert "META_SYSTEM_USER_TOKEN (needed to share the credit line)" in str(refused.value)
    assert "META_SYSTEM_USER_ID (needed to share the credit line)" in str(refused.value)


@pytest.mark.parametrize("value", ["1", "true"])
def test_production_refuses_to_start_with_the_simulator_on(environment, value):
    # The simulator answers as Meta to anyone (codes, tokens, signed webhooks): not only a `check` problem.
    environment.set(**PRODUCTION, ESU_SIMULATOR=value)

    with pytest.raises(ConfigError) as refused:
        create_app()

    assert str(refused.value).startswith("esu will not start in production with ESU_SIMULATOR on")


def test_production_with_every_secret_starts_without_the_simulator(environment, make_app):
    environment.set(**PRODUCTION)

    app = make_app()

    assert app.config["ESU_SIMULATOR"] is False
    assert app.config["META_GRAPH_URL"] == "https://graph.facebook.com"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    # Over HTTPS, as production is served: plain HTTP would only be redirected.
    assert app.test_client().post("/_meta/signup", json={}, base_url="https://localhost").status_code == 404


@pytest.mark.parametrize("env", ["production", "development"])
def test_a_malformed_encryption_key_is_named_not_shown(environment, env):
    good = Fernet.generate_key().decode()
    environment.set(**{**PRODUCTION, "ESU_ENV": env, "ESU_ENCRYPTION_KEYS": f"{good}, not-a-fernet-key"})

    with pytest.raises(ConfigError) as refused:
        create_app()

    assert str(refused.value).startswith("ESU_ENCRYPTION_KEYS: key 2 is not a Fernet key")
    assert "not-a-fernet-key" not in str(refused.value) and good not in str(refused.value)


# -- simulator mode -----------------------------------------------------------------------------------


def test_without_a_meta_app_the_simulator_is_mounted_and_every_page_says_so(make_app):
    app = make_app(**DEV_SECRETS)
    with app.app_context():
        create_page("demo", "Connect WhatsApp")
    client = app.test_client()

    assert app.config["ESU_SIMULATOR"] is True
    assert app.config["META_GRAPH_URL"].endswith("/_meta/graph")
    assert client.get("/_meta/calls").get_json() == {"calls": []}
    page = client.get("/signup/demo").get_data(as_text=True)
    assert "Simulated Meta" in page
    not_found = client.get("/signup/nothing-here").get_data(as_text=True)
    assert "Simulated Meta" in not_found


def test_with_a_meta_app_the_simulator_is_not_mounted(make_app):
    app = make_app(**DEV_SECRETS, META_APP_ID="1234567890123456")
    with app.app_context():
        create_page("demo", "Connect WhatsApp")
    client = app.test_client()

    assert app.config["ESU_SIMULATOR"] is False
    assert app.config["META_GRAPH_URL"] == "https://graph.facebook.com"
    for path in ("/_meta/calls", "/_meta/graph/v25.0/debug_token"):
        assert client.get(path).status_code == 404
    assert client.post("/_meta/signup", json={}).status_code == 404
    assert "Simulated Meta" not in client.get("/signup/demo").get_data(as_text=True)


def test_esu_simulator_turns_it_on_even_with_a_meta_app(environment, make_app):
    environment.set(ESU_SIMULATOR="1", META_APP_ID="1234567890123456")

    app = make_app(**DEV_SECRETS)

    assert app.config["ESU_SIMULATOR"] is True
    assert app.test_client().get("/_meta/calls").status_code == 200


def test_one_single_threaded_server_onboards_through_its_own_simulator(make_app):
    """The callback's Graph calls reach the mounted simulator in-process: no deadlock with one thread."""
    app = make_app(**DEV_SECRETS)
    with app.app_context():
        create_page("demo", "Connect WhatsApp")
    server = make_server("127.0.0.1", 0, app, threaded=False)
    url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        browser = requests.Session()
        signup = browser.post(f"{url}/_meta/signup", json={}, timeout=10).json()
        token = browser.get(f"{url}/signup/demo/session", timeout=10).json()["csrf_token"]
        response = browser.post(f"{url}/signup/demo/callback", json=signup, timeout=20,
                                headers={"X-CSRFToken": token})
    finally:
        server.shutdown()
        thread.join(timeout=5)

    assert response.status_code == 201
    assert response.json()["status"] == "completed"


def test_only_the_factory_imports_the_simulator():
    """The simulator may import esu's code, not the other way round: the factory mounts it and hands the
    Graph client its in-process transport."""
    package = ROOT / "esu"
    importers = []
    for path in package.rglob("*.py"):
        if path.is_relative_to(package / "simulator") or path == package / "__init__.py":
            continue
        here = ["esu", *path.relative_to(package).parent.parts]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(here[:len(here) - node.level + 1]) if node.level else ""
                module = ".".join(part for part in (base, node.module) if part)
                modules = [module] + [f"{module}.{alias.name}" for alias in node.names]
            else:
                continue
            if any(name == "esu.simulator" or name.startswith("esu.simulator.") for name in modules):
                importers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert importers == []


def test_every_module_reads_in_one_sitting():
    """A module past 500 lines holds more than one concern: it becomes a package of rooms, as webhooks,
    forwarding, onboarding and reports are."""
    long = {str(path.relative_to(ROOT)): lines for path in (ROOT / "esu").rglob("*.py")
            if (lines := len(path.read_text().splitlines())) > 500}
    assert long == {}


# -- settings derived from others ---------------------------------------------------------------------


def test_development_secrets_are_made_once_and_kept_private(tmp_path):
    first, second = defaults() | ENV_SETTINGS, defaults() | ENV_SETTINGS
    finish(first, tmp_path)
    finish(second, tmp_path)

    stored = json.loads((tmp_path / "dev-secrets.json").read_text())
    for name in ("SECRET_KEY", "ESU_ENCRYPTION_KEYS", "META_APP_SECRET", "META_WEBHOOK_VERIFY_TOKEN"):
        assert first[name] == second[name] == stored[name]
    assert stat.S_IMODE((tmp_path / "dev-secrets.json").stat().st_mode) == 0o600
    Fernet(first["ESU_ENCRYPTION_KEYS"])


def test_a_heroku_style_postgres_url_gets_the_psycopg_driver(tmp_path):
    config = defaults() | ENV_SETTINGS | DEV_SECRETS | {"DATABASE_URL": "postgres://user@db.example/esu"}

    finish(config, tmp_path)

    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://user@db.example/esu"


def test_the_graph_version_defaults_to_v25(tmp_path):
    config = defaults() | ENV_SETTINGS | DEV_SECRETS

    finish(config, tmp_path)

    assert config["META_GRAPH_VERSION"] == "v25.0"


@pytest.mark.parametrize(("name", "value", "number"), [
    ("SIGNUP_PAGE_CACHE_SECONDS", None, 5.0), ("SIGNUP_PAGE_CACHE_SECONDS", "0", 0.0),
    ("SIGNUP_PAGE_CACHE_SECONDS", "2.5", 2.5),
    ("ESU_RETENTION_DAYS", None, 30), ("ESU_RETENTION_DAYS", "", 30), ("ESU_RETENTION_DAYS", "0", 0),
    ("ESU_RETENTION_DAYS", "365", 365),
])
def test_settings_that_are_numbers(tmp_path, name, value, number):
    config = defaults() | ENV_SETTINGS | DEV_SECRETS
    if value is not None:
        config[name] = value
    finish(config, tmp_path)
    assert config[name] == number


@pytest.mark.parametrize(("name", "value"), [
    ("SIGNUP_PAGE_CACHE_SECONDS", "soon"), ("SIGNUP_PAGE_CACHE_SECONDS", "-1"),
    ("ESU_RETENTION_DAYS", "a month"), ("ESU_RETENTION_DAYS", "-1"), ("ESU_RETENTION_DAYS", "1.5"),
])
def test_settings_that_are_numbers_refuse_words_and_negatives(tmp_path, name, value):
    config = defaults() | ENV_SETTINGS | DEV_SECRETS | {name: value}
    with pytest.raises(ConfigError, match=name):
        finish(config, tmp_path)

