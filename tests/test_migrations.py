"""The migrations build, on a fresh database, exactly the schema the models describe."""

from __future__ import annotations

import os
import re
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from esu import create_app
from esu.extensions import db, render_migration_item

from .conftest import make_config


@pytest.fixture
def fresh_database(tmp_path):
    """An empty database of the kind the suite runs on; dropped afterwards."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        yield f"sqlite:///{tmp_path / 'fresh.sqlite'}"
        return
    base = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", base)
    name = f"esu_migrations_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def fresh_app(fresh_database):
    app = create_app(make_config(fresh_database, "http://127.0.0.1:9"))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def differences(app) -> list:
    """What `flask db check` compares: the live schema against the models."""
    migrate_options = app.extensions["migrate"].configure_args
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "compare_type": migrate_options.get("compare_type", True),
            "render_item": render_migration_item,
        })
        return compare_metadata(context, db.metadata)


def test_upgrade_builds_the_schema_the_models_describe(fresh_app):
    result = fresh_app.test_cli_runner().invoke(args=["db", "upgrade"])

    assert result.exit_code == 0, result.output
    tables = set(sa.inspect(db.engine).get_table_names())
    assert set(db.metadata.tables) <= tables and "alembic_version" in tables
    assert differences(fresh_app) == []


def test_the_migrations_go_down_and_up_again(fresh_app):
    runner = fresh_app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0

    down = runner.invoke(args=["db", "downgrade", "base"])

    assert down.exit_code == 0, down.output
    assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    assert differences(fresh_app) == []
