"""The stored changes' INSERT as the database driver takes it, and what an error from the database means.

Every delivery from Meta runs the INSERT, so it goes to the driver as SQL text, built once per driver
and number of rows, with its parameters ready: SQLAlchemy's rendering and processing of it, per
execution, cost about as much as SQLite's work of inserting, on the thread that holds the writer lock.
The parameters are made by the thread that received the delivery (:func:`driver_parameters`), not by the
thread storing the whole batch while the others wait. The two took about 5 % off the time under SQLite's
writer lock. On PostgreSQL the same statement can also queue the new changes for forwarding (the outbox;
``storing.store_in_one_statement`` says what that buys).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from .. import forwarding
from ..extensions import db
from ..models import WebhookEvent
from .values import UNSTORABLE

#: The columns of a stored change, in the order of :func:`driver_parameters`' tuples.
_COLUMNS = ("dedupe_key", "kind", "field", "waba_id", "phone_number_id", "entry_id", "occurred_at", "value", "raw",
            "status", "error", "received_at")
#: Rows in one INSERT: well within SQLite's and PostgreSQL's limits on a statement's parameters.
_ROWS_PER_INSERT = 500
#: The longest a delivery waits for a lock another transaction holds (PostgreSQL's row locks, SQLite's writer
#: lock and its own) before it is answered 503, which Meta sends again later.
LOCK_WAIT_SECONDS = 0.5


def describe(error: BaseException) -> str:
    """The error's kind and first line (a database error's own message, not the SQL and its parameters)."""
    text = str(getattr(error, "orig", None) or error)
    first = text.splitlines()[0] if text else ""
    return UNSTORABLE.sub("\ufffd", f"{type(error).__name__}: {first}"[:500])


def driver_parameters(rows: list[dict[str, Any]], dialect: sa.Dialect) -> list[tuple]:
    """Each row's values in :data:`_COLUMNS` order, as SQLAlchemy's column types would hand them to the
    driver (JSON serialised, times converted): done once per delivery by the thread that received it,
    rather than by the thread storing a whole batch while the others wait."""
    processors = _bind_processors(dialect)
    return [tuple(value if process is None else process(value)
                  for process, value in zip(processors, (row[name] for name in _COLUMNS), strict=True))
            for row in rows]


@functools.cache
def _bind_processors(dialect: sa.Dialect) -> tuple[Callable[[Any], Any] | None, ...]:
    table = WebhookEvent.__table__
    return tuple(table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in _COLUMNS)


def insert_new_rows(rows: list[dict[str, Any]], parameters: list[tuple] | None = None, *,
                    queue: bool = False) -> list[tuple[int, dict[str, Any]]]:
    """Insert the rows whose key is new, in the session's transaction; answers those (id, row), in Meta's
    order. ``parameters`` are the rows' :func:`driver_parameters`, when already made; with ``queue``
    (PostgreSQL), the same statement queues the new ones for forwarding.

    The statement goes to the driver as it is, with its parameters ready: every delivery from Meta runs
    it, and SQLAlchemy's rendering and processing of it, per execution, cost about as much as SQLite's
    work of inserting, on the thread that holds the writer lock.
    """
    if not rows:
        return []
    connection = db.session.connection()
    dialect = connection.dialect
    if parameters is None:
        parameters = driver_parameters(rows, dialect)
    ids: dict[str, int] = {}
    for statement, values in _statements(dialect.paramstyle, parameters, queue):
        ids.update(connection.exec_driver_sql(statement, values).all())
    return [(ids[row["dedupe_key"]], row) for row in rows if row["dedupe_key"] in ids]


def insert_and_queue_alone(rows: list[dict[str, Any]], parameters: list[tuple]) -> list[tuple[int, dict[str, Any]]]:
    """PostgreSQL: :func:`insert_new_rows` with ``queue``, each statement its own transaction, on a
    connection of the pool used as the driver's own: in autocommit, with no SQLAlchemy ``Connection``
    around it. That wrapping (checking out, switching isolation levels and back, the execution context,
    the result) cost more CPU than the driver's work for a batch of messages: without it, esu took 4 %
    more deliveries a second at 32 connections and 10 % more at 8 (bench/webhooks.py, esu loaded in
    turns with and without). A driver's error comes out as SQLAlchemy's would (an ``OperationalError``
    when the database is unavailable), and a connection found lost is dropped from the pool."""
    if not rows:
        return []
    dialect = db.engine.dialect
    try:
        pooled = db.engine.raw_connection()
    except dialect.loaded_dbapi.Error as error:  # the server cannot be reached
        raise sa_exc.DBAPIError.instance(None, None, error, dialect.loaded_dbapi.Error, dialect=dialect) from error
    driver = pooled.driver_connection
    ids: dict[str, int] = {}
    statement = None
    try:
        driver.autocommit = True
        try:
            with pooled.cursor() as cursor:
                for statement, values in _statements(dialect.paramstyle, parameters, queue=True):
                    cursor.execute(statement, values)
                    ids.update(cursor.fetchall())
        finally:
            if not driver.closed:  # as the pool's other users expect it
                driver.autocommit = False
    except dialect.loaded_dbapi.Error as error:
        lost = dialect.is_disconnect(error, pooled.dbapi_connection, None)
        if lost:
            pooled.invalidate(error)
        raise sa_exc.DBAPIError.instance(statement, None, error, dialect.loaded_dbapi.Error, hide_parameters=True,
                                         connection_invalidated=lost, dialect=dialect) from error
    finally:
        pooled.close()
    return [(ids[row["dedupe_key"]], row) for row in rows if row["dedupe_key"] in ids]


def _statements(paramstyle: str, parameters: list[tuple], queue: bool) -> Iterator[tuple[str, tuple]]:
    """The INSERT for each :data:`_ROWS_PER_INSERT` rows, with its parameters flattened."""
    for start in range(0, len(parameters), _ROWS_PER_INSERT):
        chunk = parameters[start:start + _ROWS_PER_INSERT]
        statement = (_insert_new_rows_and_queue_sql if queue else _insert_new_rows_sql)(paramstyle, len(chunk))
        yield statement, tuple(value for row in chunk for value in row)


@functools.cache
def _insert_new_rows_sql(paramstyle: str, count: int, returning: str = "dedupe_key, id") -> str:
    """``INSERT … VALUES`` ``count`` rows ``ON CONFLICT (dedupe_key) DO NOTHING RETURNING …``, which SQLite
    and PostgreSQL spell alike, with positional parameters of the driver's style."""
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}[paramstyle]
    row = "(" + ", ".join([mark] * len(_COLUMNS)) + ")"
    return (f"INSERT INTO {WebhookEvent.__tablename__} ({', '.join(_COLUMNS)}) VALUES {', '.join([row] * count)} "
            f"ON CONFLICT (dedupe_key) DO NOTHING RETURNING {returning}")


@functools.cache
def _insert_new_rows_and_queue_sql(paramstyle: str, count: int) -> str:
    """PostgreSQL: :func:`_insert_new_rows_sql` and the outbox's insert of those that are new, in one
    statement; answers (dedupe_key, id) of the new rows."""
    insert = _insert_new_rows_sql(paramstyle, count, returning="dedupe_key, id, waba_id, field, received_at")
    return (f"WITH new_events AS ({insert}), queued AS ({forwarding.outbox_insert_sql('new_events')}) "
            "SELECT dedupe_key, id FROM new_events")
