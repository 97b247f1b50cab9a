"""Fixtures: a fresh database per run (SQLite, or PostgreSQL when DATABASE_URL says so), the app, and
the Meta simulator served over real HTTP on 127.0.0.1."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import secrets
import socket
import threading
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
import sqlalchemy as sa
from flask import g
from werkzeug.serving import make_server

from esu import create_app, logs
from esu.extensions import db, limiter
from esu.simulator import create_simulator_app

APP_SECRET = "test-app-secret-" + "x" * 16
SYSTEM_USER_TOKEN = "EAAtestsystemusertoken"
META = {
    "META_APP_ID": "1234567890123456",
    "META_APP_SECRET": APP_SECRET,
    "META_SYSTEM_USER_ID": "2345678901234567",
    "META_SYSTEM_USER_TOKEN": SYSTEM_USER_TOKEN,
    "META_CONFIG_ID": "3456789012345678",
    "META_WEBHOOK_VERIFY_TOKEN": "test-verify-token",
}
CREDIT_LINE_ID = "4567890123456789"


@pytest.fixture(autouse=True)
def _no_network_beyond_loopback(monkeypatch):
    """Fail any test that tries to reach past 127.0.0.1 (never the real Meta)."""
    real_connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost") and not host.startswith("/"):
            raise RuntimeError(f"test tried to reach {host}: tests stay on 127.0.0.1")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def empty_tables() -> None:
    """End of a test: every table emptied (the schema stays for the next), connections closed."""
    db.session.remove()
    with db.engine.begin() as connection:
        for table in reversed(db.metadata.sorted_tables):
            connection.execute(table.delete())
    db.engine.dispose()


def reset_rate_limits() -> None:
    """Fresh rate-limit counters for a new app, also when they live in Redis; a test that points the
    limiter at an unreachable Redis has nothing to reset."""
    try:
        limiter.reset()
    except Exception:  # noqa: BLE001 - the storage's own connection errors
        pass


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """A database made for this run: a file for SQLite, a new database for PostgreSQL; dropped after."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'esu-test.sqlite'}"
        return
    base = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", base)
    name = f"esu_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    parts = urlsplit(base)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with admin.connect() as connection:
        connection.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"
        ), {"name": name})
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


class ServerThread:
    """A WSGI app served on 127.0.0.1 in a thread, for real HTTP in tests."""

    def __init__(self, wsgi_app):
        self.server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture(scope="session")
def simulator_app(tmp_path_factory):
    # One try per webhook, unless a test asks for Meta's retries. Its state in an SQLite file, where the
    # threads serving concurrent Graph calls each have a connection, as gunicorn's workers would.
    database = tmp_path_factory.mktemp("simulator") / "simulator.sqlite"
    return create_simulator_app({**META, "SIMULATOR_WEBHOOK_RETRY_SECONDS": (),
                                 "SIMULATOR_DATABASE_URL": f"sqlite:///{database}"})


@pytest.fixture(scope="session")
def simulator_server(simulator_app):
    server = ServerThread(simulator_app)
    yield server
    server.stop()


class Simulator:
    """The standalone simulator, driven the way a test or a person would: over HTTP."""

    def __init__(self, url: str, state):
        self.url = url
        self.state = state

    def signup(self, **options) -> dict:
        response = requests.post(f"{self.url}/_meta/signup", json=options, timeout=5)
        response.raise_for_status()
        return response.json()

    def fault(self, operation: str, error_code: int, times: int = 1, **extra) -> None:
        body = {"operation": operation, "error_code": error_code, "times": times, **extra}
        requests.post(f"{self.url}/_meta/faults", json=body, timeout=5).raise_for_status()

    def latency(self, ms: int) -> None:
        requests.post(f"{self.url}/_meta/faults", json={"latency_ms": ms}, timeout=5).raise_for_status()

    def calls(self, operation: str | None = None) -> list[dict]:
        calls = requests.get(f"{self.url}/_meta/calls", timeout=5).json()["calls"]
        return [call for call in calls if operation is None or call["operation"] == operation]


@pytest.fixture
def simulator(simulator_server, simulator_app):
    state = simulator_app.extensions["meta_simulator"]
    state.reset()
    yield Simulator(simulator_server.url, state)
    state.reset()


@pytest.fixture(scope="session")
def migrated_database(database_url):
    """Build the schema once per run, through the migrations, as `flask db upgrade` does."""
    from flask_migrate import upgrade

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, **META})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return database_url


def make_config(database_url: str, simulator_url: str, **overrides) -> dict:
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": secrets.token_hex(16),
        "ESU_SIMULATOR": False,
        "META_GRAPH_URL": f"{simulator_url}/_meta/graph",
        "GRAPH_BACKOFF_SECONDS": 0.01,
        "SIMULATOR_WEBHOOK_RETRY_SECONDS": (),
        # With REDIS_URL, test processes (pytest-xdist's workers, other runs on the machine) share one Redis:
        # each keeps its rate-limit counters under a prefix of its own, which only its own tests reset.
        "RATELIMIT_STORAGE_OPTIONS": {"key_prefix": f"esu-test-{os.getpid()}"},
        **META,
        **overrides,
    }


@pytest.fixture
def log_lines():
    """The lines esu's handler writes while the test runs, parsed."""
    stream = io.StringIO()
    handler = logs.handler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


@pytest.fixture
def app_config(migrated_database, simulator_server):
    """The app's test settings; a test may change them before asking for ``app``."""
    return make_config(migrated_database, simulator_server.url)


@pytest.fixture
def app(app_config, simulator):
    app = create_app(app_config)
    with app.app_context():
        # Each test starts with fresh rate-limit counters, also when they live in Redis (REDIS_URL).
        reset_rate_limits()
        yield app
        empty_tables()


@pytest.fixture
def mounted(app_config, request):
    """The app with the simulator mounted in it, as in `make demo`: Graph calls and Meta's webhooks stay
    in the process."""
    app_config["ESU_SIMULATOR"] = True
    app_config.pop("META_GRAPH_URL")
    return request.getfixturevalue("app")


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def page(app):
    """The signup page 'demo', as the demo command creates it."""
    from esu.cli import create_page

    return create_page("demo", "Connect WhatsApp", client_name="Demo client")


@pytest.fixture
def csrf_token(client, page):
    """The CSRF token the widget fetches from the page's session URL when the person clicks."""
    response = client.get(f"/signup/{page.slug}/session")
    assert response.status_code == 200, response.status_code
    # Flask-WTF keeps a request's token in g, which the test's app context keeps across requests: the admin's
    # session (another cookie) must make its own, as it does in a server.
    g.pop("csrf_token", None)
    return response.get_json()["csrf_token"]


@pytest.fixture
def post_callback(client, csrf_token, page):
    """POST a finished signup to the page's callback as the widget does."""

    def post(signup: dict, slug: str | None = None, **extra):
        body = {key: signup.get(key) for key in ("code", "event", "waba_id", "phone_number_id", "business_id")}
        body["client_ref"] = secrets.token_urlsafe(16)
        body.update(extra)
        return client.post(f"/signup/{slug or page.slug}/callback", json=body, headers={"X-CSRFToken": csrf_token})

    return post


@pytest.fixture
def fresh_database(tmp_path):
    """Make new, empty databases: ``fresh_database()`` on this run's backend (PostgreSQL when DATABASE_URL
    names one), ``fresh_database("sqlite")`` always a file. PostgreSQL ones are dropped after the test."""
    base = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", os.environ.get("DATABASE_URL", ""))
    made: list[str] = []

    def make(backend: str | None = None) -> str:
        backend = backend or ("postgresql" if base.startswith("postgresql") else "sqlite")
        name = f"esu_fresh_{uuid.uuid4().hex[:12]}"
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / name}.sqlite"
        admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        made.append(name)
        return urlunsplit(urlsplit(base)._replace(path=f"/{name}"))

    yield make
    if made:
        admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for name in made:
                connection.execute(sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"
                ), {"name": name})
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
