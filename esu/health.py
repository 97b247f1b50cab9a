"""Is this instance fit to serve: the database answers, and its schema is the one this code expects.

The expected schema is the head of ``migrations/`` (read once per process: the files do not change
under a running instance); the database's is its ``alembic_version`` table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from .extensions import db

CURRENT = "current"
#: The database lacks revisions this code has: `flask db upgrade` has not run.
BEHIND = "behind"
#: The database has revisions this code does not know: a newer release migrated it (a rolling deploy).
AHEAD = "ahead"
UNKNOWN = "unknown"


@dataclass
class SchemaState:
    database: str  # "ok" or "unreachable"
    migrations: str  # CURRENT, BEHIND, AHEAD or UNKNOWN (database unreachable)
    database_revisions: set[str] = field(default_factory=set)
    head_revisions: set[str] = field(default_factory=set)
    error: str | None = None

    @property
    def healthy(self) -> bool:
        """Serving is safe: the database answers and holds every migration this code needs."""
        return self.database == "ok" and self.migrations in (CURRENT, AHEAD)


def migration_scripts() -> ScriptDirectory:
    """The app's migration scripts, read once per app."""
    scripts = current_app.extensions.get("esu_migration_scripts")
    if scripts is None:
        migrate = current_app.extensions["migrate"]
        scripts = ScriptDirectory.from_config(migrate.migrate.get_config(migrate.directory))
        current_app.extensions["esu_migration_scripts"] = scripts
    return scripts


def database_revisions(connection: sa.Connection) -> set[str]:
    """The revisions the database records; none when it was never migrated."""
    if not sa.inspect(connection).has_table("alembic_version"):
        return set()
    return set(connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def schema_state() -> SchemaState:
    """One connection, two small queries: cheap enough for a load balancer to call every few seconds."""
    scripts = migration_scripts()
    heads = set(scripts.get_heads())
    try:
        with db.engine.connect() as connection:
            revisions = database_revisions(connection)
    except SQLAlchemyError as exc:
        # The class only: the message of a connection error can carry the database URL.
        return SchemaState("unreachable", UNKNOWN, head_revisions=heads, error=type(exc).__name__)
    if revisions == heads:
        migrations = CURRENT
    elif any(_unknown(scripts, revision) for revision in revisions):
        migrations = AHEAD
    else:
        migrations = BEHIND
    return SchemaState("ok", migrations, revisions, heads)


def _unknown(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is None
    except CommandError:  # "Can't locate revision"
        return True
