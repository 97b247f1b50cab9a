"""The simulator mounted in esu under gunicorn's workers: whichever worker serves a request, it sees the
same businesses, codes, tokens and faults (the simulator keeps them in the database, not in the process)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from esu import create_app
from esu.cli import create_page
from esu.config import SIMULATED_APP_ID
from esu.extensions import db

from .conftest import META
from .helpers import browser_session

ROOT = Path(__file__).resolve().parents[1]
APP_SECRET = "s" * 32
WORKERS = 2
STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served(fresh_database, tmp_path):
    """esu in simulator mode under ``gunicorn -c gunicorn.conf.py wsgi:app`` with two workers, on a database
    of its own (migrated, with the 'demo' page); answers the base URL once every worker is ready."""
    database_url = fresh_database()
    setup = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, **META})
    with setup.app_context():
        from flask_migrate import upgrade

        upgrade()
        create_page("demo", "Connect WhatsApp")
        db.engine.dispose()

    port = free_port()
    env = {name: value for name, value in os.environ.items() if name.startswith("PG")}
    env |= {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path), "ESU_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(WORKERS), "GUNICORN_GRACEFUL_TIMEOUT": "10", "DATABASE_URL": database_url,
        "SECRET_KEY": "k" * 40, "ESU_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "META_APP_SECRET": APP_SECRET, "META_WEBHOOK_VERIFY_TOKEN": "v" * 24,
        # Each customer at an address of its own, as the proxy reports it: the callback's limit is per address.
        "ESU_PROXY_HOPS": "1",
    }
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("w") as log:
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                                  cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while log_path.read_text(errors="replace").count("Worker ready") < WORKERS:
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gunicorn's workers did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def onboard(url: str, customer: int) -> requests.Response:
    """One customer, as a browser does it: the page and its session token, the dialog's code (a request of
    its own, so any worker may issue it), then the widget's callback."""
    session, token = browser_session(url)
    session.headers["X-Forwarded-For"] = f"198.51.100.{customer}"
    signup = requests.post(f"{url}/_meta/signup", json={}, timeout=10).json()
    body = {key: signup[key] for key in ("code", "event", "waba_id", "phone_number_id", "business_id")}
    return session.post(f"{url}/signup/demo/callback", json={**body, "client_ref": os.urandom(12).hex()},
                        headers={"X-CSRFToken": token}, timeout=60)


def test_every_onboarding_completes_whichever_worker_issued_the_code(served):
    outcomes = []
    for customer in range(1, 21):
        response = onboard(served, customer)
        outcomes.append(response.json().get("status") if response.status_code == 201 else response.status_code)

    assert outcomes == ["completed"] * 20, Counter(outcomes)
    calls = requests.get(f"{served}/_meta/calls", timeout=10).json()["calls"]
    assert sum(call["operation"] == "oauth_access_token" for call in calls) == 20


def test_a_fault_posted_once_fails_the_next_call_whichever_worker_serves_it(served):
    debug_token = f"{served}/_meta/graph/v25.0/debug_token"
    app_token = {"access_token": f"{SIMULATED_APP_ID}|{APP_SECRET}", "input_token": "EAAnothing"}
    for _ in range(10):
        # Each request on a connection of its own: gunicorn hands it to either worker.
        requests.post(f"{served}/_meta/faults", json={"operation": "debug_token", "error_code": 200, "times": 1},
                      timeout=10).raise_for_status()
        failed = requests.get(debug_token, params=app_token, timeout=10)
        assert (failed.status_code, failed.json()["error"]["code"]) == (403, 200)
        assert requests.get(debug_token, params=app_token, timeout=10).status_code == 200

    calls = requests.get(f"{served}/_meta/calls", timeout=10).json()["calls"]
    assert [call["operation"] for call in calls] == ["debug_token"] * 20
