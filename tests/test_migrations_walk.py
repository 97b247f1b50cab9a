"""Every migration applies and reverts cleanly, one at a time, on SQLite and on PostgreSQL (when the run
has one), and the schema they build is the one the models describe.

The revisions come from the script directory, so revisions other branches add are walked too.
"""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from esu import create_app
from esu.extensions import db
from esu.health import database_revisions

from .conftest import META

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("DATABASE_URL", "").startswith("postgres") else [])


def applied(engine) -> set[str]:
    with engine.connect() as connection:
        return database_revisions(connection)


def tables(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def schema_differences(app) -> list:
    """What autogenerate would still write: a model without its migration shows up here."""
    migrate = app.extensions["migrate"]
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts=migrate.configure_args)
        return compare_metadata(context, db.metadata)


def test_there_is_one_head():
    """Two branches each adding a revision on the same parent leave two heads, and `flask db upgrade`
    refuses to run: the merge must chain them (or add a merge revision)."""
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", **META})
    with app.app_context():
        migrate = app.extensions["migrate"]
        heads = ScriptDirectory.from_config(migrate.migrate.get_config(migrate.directory)).get_heads()
    assert len(heads) == 1, f"migrations have several heads {heads}: set one's down_revision to the other"


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_migration_goes_up_and_down(backend, fresh_database):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": fresh_database(backend), **META})
    with app.app_context():
        migrate = app.extensions["migrate"]
        config = migrate.migrate.get_config(migrate.directory)
        scripts = ScriptDirectory.from_config(config)
        order = [revision.revision for revision in reversed(list(scripts.walk_revisions()))]  # base → heads
        assert order, "no migrations found"
        engine = db.engine
        model_tables = set(db.metadata.tables)

        for revision in order:
            command.upgrade(config, revision)
            assert revision in applied(engine), f"upgrade to {revision} did not record it"
        assert applied(engine) == set(scripts.get_heads())
        assert model_tables <= tables(engine)
        assert schema_differences(app) == []

        for position in range(len(order) - 1, -1, -1):
            target = order[position - 1] if position else "base"
            command.downgrade(config, target)
            if target == "base":
                assert applied(engine) == set()
            else:
                # Downgrading to a revision undoes everything built on it; a revision of a parallel
                # branch stays until the walk reaches their common parent.
                above = {rev.revision for rev in scripts.iterate_revisions("heads", target)} - {target}
                assert not applied(engine) & above, f"downgrade to {target} left {applied(engine) & above}"
        assert tables(engine) <= {"alembic_version"}, "a downgrade left tables behind"

        # Up again: a downgrade that forgets a type, index or constraint makes this fail.
        command.upgrade(config, "heads")
        assert applied(engine) == set(scripts.get_heads())
        assert schema_differences(app) == []
        engine.dispose()
