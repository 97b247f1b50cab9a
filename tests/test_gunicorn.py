"""gunicorn.conf.py: the settings it derives, and a real gunicorn serving esu with JSON access lines."""

from __future__ import annotations

import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from esu.config import defaults
from esu.extensions import db

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "gunicorn.conf.py"


def settings(monkeypatch, **env) -> dict:
    for name in ("ESU_BIND", "PORT", "WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


def test_defaults_suit_two_cores_behind_a_proxy(monkeypatch):
    conf = settings(monkeypatch)
    assert conf["bind"] == "127.0.0.1:8000"
    assert (conf["worker_class"], conf["workers"], conf["threads"]) == ("gthread", 2, 16)
    assert conf["accesslog"] == "-"
    assert conf["worker_tmp_dir"] == ("/dev/shm" if os.path.isdir("/dev/shm") else None)
    # gunicorn must not read X-Forwarded-* itself: ProxyFix (ESU_PROXY_HOPS) does.
    assert conf["forwarded_allow_ips"] == "" and conf["secure_scheme_headers"] == {}


def test_every_thread_of_a_worker_can_hold_a_database_connection_at_once(app, monkeypatch):
    """As many admin pages or callbacks at once in one worker as it has threads, while a batch of webhooks
    is stored: none waits for a connection another thread holds (the pool's wait is 30 s)."""
    threads = settings(monkeypatch)["threads"]
    held = []
    try:
        for _ in range(threads + 1):
            held.append(db.engine.raw_connection())
    finally:
        for connection in held:
            connection.close()
    assert len(held) == threads + 1


def test_environment_sets_bind_and_concurrency(monkeypatch):
    assert settings(monkeypatch, PORT="9000")["bind"] == "0.0.0.0:9000"
    conf = settings(monkeypatch, PORT="9000", ESU_BIND="unix:/run/esu/esu.sock", WEB_CONCURRENCY="5",
                    GUNICORN_THREADS="12")
    assert (conf["bind"], conf["workers"], conf["threads"]) == ("unix:/run/esu/esu.sock", 5, 12)


def test_timeouts_outlast_an_onboarding_whose_every_graph_call_times_out(monkeypatch):
    conf = settings(monkeypatch)
    graph = defaults()
    every_attempt_times_out = graph["GRAPH_MAX_ATTEMPTS"] * sum(graph["GRAPH_TIMEOUT"])
    assert conf["SLOWEST_ONBOARDING_SECONDS"] >= conf["SEQUENTIAL_GRAPH_CALLS"] * every_attempt_times_out
    assert conf["timeout"] > conf["SLOWEST_ONBOARDING_SECONDS"]
    assert conf["graceful_timeout"] >= conf["SLOWEST_ONBOARDING_SECONDS"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_gunicorn_serves_esu_with_json_lines_carrying_the_request_id(migrated_database, tmp_path):
    port = free_port()
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path), "ESU_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "2", "DATABASE_URL": migrated_database, "SECRET_KEY": "k" * 40,
        "ESU_ENCRYPTION_KEYS": Fernet.generate_key().decode(), "META_APP_SECRET": "s" * 32,
        "META_WEBHOOK_VERIFY_TOKEN": "v" * 24,
    }
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(CONF), "wsgi:app"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/healthz?access_token=EAAleakyquerytoken1",
                                        headers={"X-Request-Id": "probe-0123456789"}, timeout=5)
                break
            except requests.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not start: {server.communicate(timeout=5)}")
                time.sleep(0.1)
    finally:
        server.send_signal(signal.SIGTERM)
        stdout, stderr = server.communicate(timeout=30)
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] == "probe-0123456789"
    assert server.returncode == 0, stderr
    lines = [json.loads(line) for line in stdout.splitlines()]  # every line is JSON
    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert len(access) == 1
    assert access[0]["request_id"] == "probe-0123456789"
    assert (access[0]["method"], access[0]["path"], access[0]["status"]) == ("GET", "/healthz", "200")
    assert "EAAleakyquerytoken1" not in stdout
    assert any(line["message"].startswith("Booting worker") for line in lines)
    # … and once it has imported the app and serves, which a deploy or a benchmark waits for.
    ready = [line for line in lines if line["message"].startswith("Worker ready")]
    assert len(ready) == 1 and ready[0]["level"] == "info"
