"""The command line: signup pages and keys."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from werkzeug.serving import BaseWSGIServer

from esu.extensions import db
from esu.models import SignupPage
from esu.models.admin import AdminAccount


def test_pages_create_adds_an_enabled_page(runner, client):
    result = runner.invoke(args=["pages", "create", "spring-sale", "--title", "Connect your number",
                                 "--client-name", "Wind & Wool"])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Created /signup/spring-sale"
    page = db.session.scalar(sa.select(SignupPage).where(SignupPage.slug == "spring-sale"))
    assert (page.title, page.client_name, page.enabled) == ("Connect your number", "Wind & Wool", True)
    assert "Connect your number" in client.get("/signup/spring-sale").get_data(as_text=True)


def test_pages_create_refuses_a_slug_that_exists(runner):
    runner.invoke(args=["pages", "create", "demo", "--title", "First"])

    result = runner.invoke(args=["pages", "create", "demo", "--title", "Second"])

    assert result.exit_code == 1
    assert "a signup page 'demo' already exists" in result.output
    assert db.session.scalars(sa.select(SignupPage.title)).all() == ["First"]


def test_pages_create_refuses_a_bad_slug(runner):
    for slug in ("Spring Sale", "edge-", "under_score", "a" * 65, "ünï"):
        result = runner.invoke(args=["pages", "create", slug, "--title", "T"])

        assert result.exit_code == 1, slug
        assert f"'{slug}' is not a valid slug" in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SignupPage)) == 0


def test_pages_create_needs_a_title(runner):
    result = runner.invoke(args=["pages", "create", "demo"])

    assert result.exit_code == 2 and "--title" in result.output


def test_pages_list_shows_every_page_in_slug_order(runner):
    runner.invoke(args=["pages", "create", "zeta", "--title", "Last one"])
    runner.invoke(args=["pages", "create", "alpha", "--title", "First one"])
    db.session.execute(sa.update(SignupPage).where(SignupPage.slug == "zeta").values(enabled=False))
    db.session.commit()

    result = runner.invoke(args=["pages", "list"])

    assert result.exit_code == 0
    assert result.output.splitlines() == ["alpha\tenabled\tFirst one", "zeta\tdisabled\tLast one"]


def test_keys_generate_prints_a_fernet_key(runner):
    result = runner.invoke(args=["keys", "generate"])

    assert result.exit_code == 0
    Fernet(result.output.strip())


# -- the demo ------------------------------------------------------------------------------------------


@pytest.fixture
def demo_runner(app_config, request):
    """The CLI of an app in simulator mode, as `make demo` runs it."""
    app_config["ESU_SIMULATOR"] = True
    return request.getfixturevalue("runner")


def test_make_demo_passes_its_port_to_the_demo():
    makefile = Path(__file__).resolve().parents[1]
    dry_run = subprocess.run(["make", "-n", "-C", str(makefile), "demo", "PORT=5001", "VENV=/nonexistent-venv"],
                             capture_output=True, text=True, timeout=30, check=True)
    assert "/nonexistent-venv/bin/flask --app wsgi demo --port 5001" in dry_run.stdout.splitlines()


def test_demo_on_a_busy_port_says_so_before_any_password(demo_runner):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = demo_runner.invoke(args=["demo", "--port", str(port)])

    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is busy" in result.output
    assert f"make demo PORT={port + 1}" in result.output
    assert "password" not in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AdminAccount)) == 0  # nothing was set


def test_demo_serves_on_the_port_it_was_given(demo_runner, monkeypatch):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    served: list[tuple] = []

    def serve_once(server, poll_interval=0.5):
        served.append(server.socket.getsockname())
        server.server_close()

    monkeypatch.setattr(BaseWSGIServer, "serve_forever", serve_once)
    result = demo_runner.invoke(args=["demo"], env={"PORT": str(port)})

    assert result.exit_code == 0, result.output
    assert served == [("127.0.0.1", port)]
    assert f"http://127.0.0.1:{port}/signup/demo" in result.output
    assert f"http://127.0.0.1:{port}/admin/  password: " in result.output
