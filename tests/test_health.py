"""``/healthz``: what a load balancer sees when the database is fine, gone, or not migrated."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from esu import create_app
from esu.extensions import db

from .conftest import make_config

#: Port 1 on loopback: nothing listens, so connecting is refused at once.
UNREACHABLE = {
    "postgresql": "postgresql+psycopg://esu@127.0.0.1:1/esu",
    "sqlite": "sqlite:////nonexistent-directory/esu.sqlite",
}


@pytest.fixture
def health_of():
    """GET /healthz of an app on the given database; its connections are closed after."""
    apps = []

    def get(database_url: str):
        app = create_app(make_config(database_url, "http://127.0.0.1:9"))
        apps.append(app)
        return app.test_client().get("/healthz")

    yield get
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def test_healthy_when_database_answers_and_schema_is_current(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"database": "ok", "migrations": "current"}
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("backend", sorted(UNREACHABLE))
def test_unreachable_database_is_503(health_of, backend):
    response = health_of(UNREACHABLE[backend])
    assert response.status_code == 503
    assert response.json["database"] == "unreachable"
    assert response.json["migrations"] == "unknown"
    # The kind of failure, never the driver's message (it can carry the URL and its password).
    assert response.json["error"] == "OperationalError"
    assert "127.0.0.1" not in response.get_data(as_text=True)


def test_never_migrated_database_is_behind(health_of, fresh_database):
    response = health_of(fresh_database())
    assert response.status_code == 503
    assert response.json == {"database": "ok", "migrations": "behind"}


def test_database_at_base_revision_is_behind(health_of, fresh_database):
    url = fresh_database()
    app = create_app(make_config(url, "http://127.0.0.1:9"))
    with app.app_context():
        config = app.extensions["migrate"].migrate.get_config(app.extensions["migrate"].directory)
        command.upgrade(config, "heads")
        command.downgrade(config, "base")
        db.engine.dispose()
    response = health_of(url)
    assert response.status_code == 503
    assert response.json == {"database": "ok", "migrations": "behind"}


def test_database_migrated_by_a_newer_release_still_serves(health_of, fresh_database):
    """During a rolling deploy the new release migrates first; the old instances keep serving."""
    url = fresh_database()
    app = create_app(make_config(url, "http://127.0.0.1:9"))
    with app.app_context():
        config = app.extensions["migrate"].migrate.get_config(app.extensions["migrate"].directory)
        command.upgrade(config, "heads")
        with db.engine.begin() as connection:
            connection.execute(sa.text("UPDATE alembic_version SET version_num = 'ffffffffffff'"))
        db.engine.dispose()
    response = health_of(url)
    assert response.status_code == 200
    assert response.json == {"database": "ok", "migrations": "ahead"}


def test_needs_no_session_or_token(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
