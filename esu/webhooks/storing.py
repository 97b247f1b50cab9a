"""A batch of signed deliveries in one transaction: every change stored once, the new ones applied and
queued for forwarding (the outbox: stored means forwarded), then one commit before any is answered.

The database, not a check-then-insert, decides what is new (``INSERT … ON CONFLICT DO NOTHING`` on each
change's unique key), even when two workers get the same delivery at once. Should it refuse a batch, each
delivery is stored again alone, so that it costs only itself. :func:`store_together` and
:func:`store_in_one_statement` commit (they are the endpoint's whole transaction); :func:`receive_together`
flushes and leaves the commit to its caller. On SQLite each transaction first waits for the writer lock,
half a second at most (:func:`ready_to_write`): past that, the delivery is answered 503.

On PostgreSQL a batch with nothing to apply (messages and statuses: nearly all that Meta sends) is one
statement, its own transaction, which inserts the changes and their outbox rows
(:func:`store_in_one_statement`). Under load each round trip costs about a millisecond of waiting (for
the server, then for the worker's GIL), far more than the server's work: with pool pings only after a
second idle (``esu.pool``), a batch of messages went from five round trips to one, and from 2.4–2.7 ms to
1.4–1.7 ms of the storing thread's time. That statement runs on a pooled connection used as the driver's own
(``sql.insert_and_queue_alone``), which says what leaving SQLAlchemy's ``Connection`` out of it buys.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exc as sa_exc

from .. import forwarding
from ..extensions import db, is_database_unavailable
from ..models import now_utc
from ..sqlite import hold_writer_lock
from .appliers import APPLIERS
from .applying import ApplyFailed, apply, apply_one_by_one
from .parsing import parse_delivery, unparseable_row
from .records import Event
from .sql import LOCK_WAIT_SECONDS, describe, driver_parameters, insert_and_queue_alone, insert_new_rows
from .values import FAILED, STORED

log = logging.getLogger(__name__)


@dataclass
class Receipt:
    """What became of a delivery: its changes, how many were new, how many of those failed to apply."""

    changes: int
    stored: int
    failed: int


@dataclass(frozen=True)
class Delivery:
    """A signed delivery as it came, when it came, the rows it stores, and those rows as the database
    driver takes them (see :func:`driver_parameters`)."""

    body: bytes
    received_at: datetime
    rows: list[dict[str, Any]]
    parameters: list[tuple]

    @classmethod
    def received(cls, body: bytes) -> Delivery:
        """Parsed and made ready to insert by the thread that received it, in the app's context: the
        batch it joins is stored without waiting for that."""
        received_at = now_utc()
        rows = parse_delivery(body, received_at)
        return cls(body, received_at, rows, driver_parameters(rows, db.engine.dialect))


def ready_to_write() -> None:
    """Wait for our turn to write: on SQLite, the database's writer lock (see ``esu.sqlite``), which the
    other gunicorn worker may hold for its own batch (the lock is then held until the transaction ends).
    Nothing to wait for on PostgreSQL.

    At most :data:`LOCK_WAIT_SECONDS` in all, for this lock and then for SQLite's own (a process writing
    without the lock file): past that the database counts as unavailable, and the batch is answered 503."""
    if db.engine.dialect.name != "sqlite":
        return
    try:
        hold_writer_lock(db.session.connection(), within=LOCK_WAIT_SECONDS)
    except sqlite3.OperationalError as error:
        db.session.rollback()
        raise sa_exc.OperationalError("(taking the writer lock)", None, error) from error
    except Exception:
        db.session.rollback()
        raise


def receive_together(deliveries: list[Delivery], *, one_by_one: bool = False) -> list[Receipt]:
    """Store every change of these signed deliveries once and apply the new ones, in the session's
    transaction; answers each delivery's receipt. A change that two of them hold is counted in the first.

    Raises what the database raises when it is unavailable (see :func:`is_database_unavailable`). Anything
    else the database refuses to keep stores a lone delivery's body raw, as unparseable, rather than
    refusing it for ever; with several deliveries it raises, and :func:`store_together` stores them one by one.

    The new changes are applied all at once; should that fail, the transaction is rolled back and the
    deliveries stored again, their changes applied ``one_by_one`` (see :func:`apply`).
    """
    ready_to_write()  # held already when the batch began; taken again after a rollback
    rows, parameters, owners, changes = _unique_rows(deliveries)
    # Queued for the clients' own endpoints in this same transaction (the outbox): stored means forwarded.
    # On PostgreSQL by the INSERT itself, unless an account_update is to be applied: it may link or
    # offboard the onboarding that says where the batch's events go.
    queued = db.engine.dialect.name == "postgresql" and not any(
        row["field"] == "account_update" and _to_apply(row) for row in rows)
    try:
        new = insert_new_rows(rows, parameters, queue=queued)
    except (sa_exc.SQLAlchemyError, ValueError, TypeError, RecursionError) as error:
        if is_database_unavailable(error) or len(deliveries) > 1:
            raise
        log.warning("webhook delivery kept raw: the database refused its changes (%s)", type(error).__name__)
        db.session.rollback()
        ready_to_write()
        lone = deliveries[0]
        fallback = unparseable_row(lone.body, lone.received_at, error=f"not stored as changes: {describe(error)}")
        owners, changes = {fallback["dedupe_key"]: 0}, [1]
        new = insert_new_rows([fallback], queue=queued)
    applied = [(owners[row["dedupe_key"]], Event.from_row(event_id, row)) for event_id, row in new
               if _to_apply(row)]
    if applied:
        events = [event for _owner, event in applied]
        if one_by_one:
            apply_one_by_one(events)
        else:
            try:
                apply(events)
            except ApplyFailed as error:
                log.info("webhook changes applied one by one: applying them at once failed (%s)", error)
                db.session.rollback()
                return receive_together(deliveries, one_by_one=True)
    if not queued:
        forwarding.enqueue([event_id for event_id, row in new if row["waba_id"]])
    return _receipts(changes, owners, new, applied)


def _unique_rows(deliveries: list[Delivery]) -> tuple[list[dict[str, Any]], list[tuple], dict[str, int], list[int]]:
    """The rows of these deliveries, each key once, with their parameters; the index of the delivery that
    brought each key first; how many changes each delivery holds."""
    rows: dict[str, tuple[dict[str, Any], tuple]] = {}  # dedupe key -> the row and its parameters
    owners: dict[str, int] = {}
    changes = []
    for index, delivery in enumerate(deliveries):
        changes.append(len(delivery.rows))
        for row, parameters in zip(delivery.rows, delivery.parameters, strict=True):
            owners.setdefault(row["dedupe_key"], index)
            rows.setdefault(row["dedupe_key"], (row, parameters))
    return ([row for row, _parameters in rows.values()], [parameters for _row, parameters in rows.values()],
            owners, changes)


def _receipts(changes: list[int], owners: dict[str, int], new: list[tuple[int, dict[str, Any]]],
              applied: list[tuple[int, Event]]) -> list[Receipt]:
    stored, failed = [0] * len(changes), [0] * len(changes)
    for _event_id, row in new:
        stored[owners[row["dedupe_key"]]] += 1
    for owner, event in applied:
        failed[owner] += event.status == FAILED
    return [Receipt(changes=changes[n], stored=stored[n], failed=failed[n]) for n in range(len(changes))]


def _to_apply(row: dict[str, Any]) -> bool:
    return row["status"] == STORED and row["field"] in APPLIERS


def store_in_one_statement(deliveries: list[Delivery]) -> list[Receipt] | None:
    """Store these deliveries and queue their new changes for forwarding in a single statement, a
    transaction of its own, when the database can (PostgreSQL inserts into both tables in one statement)
    and nothing needs applying: messages and statuses, nearly all that Meta sends. Answers their receipts,
    or None when the batch is not such a one.

    One round trip to the database, where the general way takes three more (BEGIN, the outbox's INSERT,
    COMMIT): a batch's time is mostly spent waiting on those. (Over 500 changes, one statement stores
    each 500 with their outbox rows: should a later one fail, Meta's retry stores the rest.)

    Raises what the database raises when it is unavailable; anything else it refuses answers None too, and
    the general way finds out which delivery it was.
    """
    if db.engine.dialect.name != "postgresql" or any(_to_apply(row) for delivery in deliveries
                                                      for row in delivery.rows):
        return None
    rows, parameters, owners, changes = _unique_rows(deliveries)
    try:
        new = insert_and_queue_alone(rows, parameters)
    except (sa_exc.SQLAlchemyError, ValueError, TypeError) as error:
        if is_database_unavailable(error):
            raise
        return None
    return _receipts(changes, owners, new, [])


def store_together(deliveries: list[Delivery]) -> list[Receipt | Exception]:
    """Store these deliveries in one transaction and commit; answers each one's receipt, or the error that
    refused it. Raises (for all of them) when the database is unavailable."""
    try:
        receipts = store_in_one_statement(deliveries)
        if receipts is None:
            receipts = receive_together(deliveries)
            db.session.commit()
        return receipts
    except Exception as error:
        db.session.rollback()
        if is_database_unavailable(error) or len(deliveries) == 1:
            raise
        log.warning("%d webhook deliveries stored one by one: the database refused them together (%s)",
                    len(deliveries), type(error).__name__)
    # One of them holds what the database will not keep: each alone, so that it costs only itself.
    outcomes: list[Receipt | Exception] = []
    for delivery in deliveries:
        try:
            outcomes.append(receive_together([delivery])[0])
            db.session.commit()
        except Exception as error:  # noqa: BLE001 - its own request answers it, as if it had come alone
            db.session.rollback()
            outcomes.append(error)
    return outcomes
