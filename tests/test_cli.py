"""The command line: signup pages and keys."""

from __future__ import annotations

import sqlalchemy as sa
from cryptography.fernet import Fernet

from esu.extensions import db
from esu.models import SignupPage


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
