"""Is this instance fit to serve: the database answers and takes writes, and its schema is the one this
code expects.

The expected schema is the head of ``migrations/`` (read once per process: the files do not change
under a running instance); the database's is its ``alembic_version`` table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask import current_app
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from .extensions import db

CURRENT = "current"
#: The database lacks revisions this code has: `flask db upgrade` has not run.
BEHIND = "behind"
#: The database has revisions this code does not know: a newer release migrated it (a rolling deploy).
AHEAD = "ahead"
UNKNOWN = "unknown"


#: SchemaState.database: the database answers, but refuses to write (a read-only file or server).
READ_ONLY = "read-only"


@dataclass
class SchemaState:
    database: str  # "ok", "unreachable" or READ_ONLY
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
            refused = revisions and write_refused(connection)
    except SQLAlchemyError as exc:
        # The class only: the message of a connection error can carry the database URL.
        return SchemaState("unreachable", UNKNOWN, head_revisions=heads, error=type(exc).__name__)
    if refused:
        return SchemaState(READ_ONLY, UNKNOWN, revisions, heads, error=refused)
    if revisions == heads:
        migrations = CURRENT
    elif any(_unknown(scripts, revision) for revision in revisions):
        migrations = AHEAD
    else:
        migrations = BEHIND
    return SchemaState("ok", migrations, revisions, heads)


def write_refused(connection: sa.Connection) -> str | None:
    """A write that changes nothing, rolled back: None when the database takes it, else the error's class.
    On SQLite it queues for the writer lock as any writer does (esu.sqlite)."""
    try:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = version_num WHERE 1 = 0"))
    except DBAPIError as exc:
        read_only = "readonly database" in str(exc.orig) or getattr(exc.orig, "sqlstate", None) == "25006"
        if not read_only:  # gone, not read-only: the caller says unreachable
            raise
        return type(exc).__name__
    finally:
        connection.rollback()
    return None


def _unknown(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is None
    except CommandError:  # "Can't locate revision"
        return True
