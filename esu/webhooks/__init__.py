"""Meta's webhook: the signature, the changes a delivery holds, storing each once, applying them.

Meta sends everything that happens to an onboarded customer to one endpoint, keeps no history, and
retries anything but a 200 for days. So a delivery is checked (HMAC-SHA256 of the raw bytes with the
app secret), split into its changes, and every change is stored under a unique key in one statement
(``INSERT … ON CONFLICT DO NOTHING``: the database, not a check-then-insert, decides what is new, even
when two workers get the same delivery at once). The new changes are then applied to the records they
concern in the same transaction, which commits before the answer, 200. Deliveries a worker receives at
the same moment share that transaction (``GroupCommit``); on PostgreSQL, a batch with nothing to apply is
that one statement, which also queues the changes for forwarding, and its own transaction.

Applying is idempotent and order-proof: a record keeps Meta's time of the event that last set each
fact, and an older event never overwrites a newer one. An apply that fails marks its event ``failed``
with the error; it never costs the stored event or the 200.

Functions here flush and never commit (the caller owns the transaction), except ``ingest``,
``store_together`` and ``store_in_one_statement``, which are the endpoint's whole transaction.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite

from .. import forwarding
from ..extensions import db
from ..models import (
    MessageTemplate,
    Onboarding,
    OnboardingStatus,
    PhoneNumber,
    WebhookEvent,
    WhatsAppBusinessAccount,
    now_utc,
)
from ..sqlite import hold_writer_lock

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
#: Meta's largest delivery.
MAX_BODY_BYTES = 3 * 1024 * 1024
ENVELOPE_OBJECT = "whatsapp_business_account"

# WebhookEvent.status
STORED = "stored"
APPLIED = "applied"
IGNORED = "ignored"
UNPARSEABLE = "unparseable"
FAILED = "failed"

_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_NODE_ID = re.compile(r"\d{1,32}")
_FIELD = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Strings PostgreSQL cannot keep (NUL) or no database can encode (lone surrogates); in JSON they can only
# come as \u escapes, so the bytes tell whether the parsed body needs a look. Paired surrogates (every
# escaped emoji) are fine.
_MAY_NEED_CLEANING = re.compile(
    rb"\\u0000"
    rb"|\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_MAX_ID_KEY = 128
# Unix times outside this range are not event times.
_EARLIEST, _LATEST = 946684800, 2**33


# -- the signature --------------------------------------------------------------------------------------


def signature_is_valid(body: bytes, header: str | None, app_secret: str | None) -> bool:
    """Whether ``header`` is ``sha256=`` and the hex HMAC-SHA256 of exactly these bytes keyed with the app
    secret, compared in constant time. Anything else (missing, ``sha1=``, truncated, not hex) is not."""
    if not app_secret or not header:
        return False
    match = _SIGNATURE.fullmatch(header)
    if match is None:
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), match.group(1).lower().encode())


# -- a delivery into rows --------------------------------------------------------------------------------


def parse_delivery(body: bytes, received_at: datetime) -> list[dict[str, Any]]:
    """The rows a signed delivery stores: one per change, except that a ``messages`` change gives one per
    message and one per status. A body that is not Meta's envelope is a single ``unparseable`` row keeping
    the raw text, and so is each malformed entry or change (its siblings are kept as usual)."""
    try:
        envelope = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
        if _MAY_NEED_CLEANING.search(body):
            envelope = _clean(envelope)
    except (ValueError, RecursionError):
        envelope = None
    if (not isinstance(envelope, dict) or envelope.get("object") != ENVELOPE_OBJECT
            or not isinstance(envelope.get("entry"), list)):
        return [unparseable_row(body, received_at)]

    rows: dict[str, dict[str, Any]] = {}  # by dedupe key: the same change twice in one delivery is one row
    for entry in envelope["entry"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("changes"), list):
            row = _malformed_row(entry, received_at)
            rows.setdefault(row["dedupe_key"], row)
            continue
        for change in entry["changes"]:
            if not isinstance(change, dict) or not isinstance(change.get("field"), str) \
                    or not _FIELD.fullmatch(change["field"]):
                found = [_malformed_row({"entry_id": entry.get("id"), "change": change}, received_at)]
            else:
                found = _change_rows(change["field"], change.get("value"), entry.get("id"), entry.get("time"),
                                     received_at)
            for row in found:
                rows.setdefault(row["dedupe_key"], row)
    return list(rows.values())


def unparseable_row(body: bytes, received_at: datetime, error: str | None = None) -> dict[str, Any]:
    """A whole body kept as text, keyed by its digest so a retried one is kept once."""
    return _row(hashlib.sha256(body).hexdigest(), "delivery", None, None, status=UNPARSEABLE,
                raw=body.decode("utf-8", "backslashreplace").replace("\x00", "\\x00"), received_at=received_at,
                error=error)


def _malformed_row(item: Any, received_at: datetime) -> dict[str, Any]:
    return _row(_digest("malformed", item), "change", None, None, status=UNPARSEABLE, received_at=received_at,
                raw=json.dumps(item, ensure_ascii=False))


def _change_rows(field: str, value: Any, entry_id: Any, entry_time: Any, received_at: datetime) -> list[dict]:
    waba_id = _node_id(entry_id)
    occurred_at = _time(entry_time)
    phone_number_id = None
    if field == "messages" and isinstance(value, dict):
        rows = _message_rows(value, entry_id, entry_time, waba_id, occurred_at, received_at)
        if rows:
            return rows
        # No message or status: system-level errors of the number, kept (as messages are) for whoever reads them.
        metadata = value.get("metadata")
        phone_number_id = _node_id(metadata.get("phone_number_id")) if isinstance(metadata, dict) else None
    if field == "account_update" and isinstance(value, dict) and isinstance(value.get("waba_info"), dict):
        # PARTNER_* and a few others come in the partner's business entry; the WABA is named inside.
        waba_id = _node_id(value["waba_info"].get("waba_id")) or waba_id
    status = STORED if field in APPLIERS or field == "messages" else IGNORED
    return [_row(_digest(field, entry_id, entry_time, value), "change", field, value, entry_id=entry_id,
                 waba_id=waba_id, phone_number_id=phone_number_id, occurred_at=occurred_at, received_at=received_at,
                 status=status)]


def _message_rows(value: dict, entry_id: Any, entry_time: Any, waba_id: str | None,
                  entry_occurred_at: datetime | None, received_at: datetime) -> list[dict]:
    """One row per inbound message (keyed by its id) and per status of a sent one (id and status)."""
    messages = value.get("messages") if isinstance(value.get("messages"), list) else []
    statuses = value.get("statuses") if isinstance(value.get("statuses"), list) else []
    if not messages and not statuses:
        return []
    shared = {key: item for key, item in value.items() if key not in ("messages", "statuses")}
    metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
    phone_number_id = _node_id(metadata.get("phone_number_id"))
    contacts = value.get("contacts") if isinstance(value.get("contacts"), list) else None
    rows = []
    for kind, items in (("message", messages), ("status", statuses)):
        for item in items:
            one = dict(shared)
            key = None
            occurred_at = entry_occurred_at
            if isinstance(item, dict):
                occurred_at = _time(item.get("timestamp")) or entry_occurred_at
                if kind == "message":
                    key = item.get("id") if isinstance(item.get("id"), str) else None
                    if contacts is not None:  # only the sender's contact card, not the whole batch's
                        one["contacts"] = [c for c in contacts
                                           if isinstance(c, dict) and c.get("wa_id") == item.get("from")] or contacts
                elif isinstance(item.get("id"), str) and isinstance(item.get("status"), str):
                    key = f"{item['id']}:{item['status']}"
            one["messages" if kind == "message" else "statuses"] = [item]
            if not key or len(key) > _MAX_ID_KEY:
                key = _digest("messages", entry_id, entry_time, one)
            rows.append(_row(key, kind, "messages", one, entry_id=entry_id, waba_id=waba_id,
                             phone_number_id=phone_number_id, occurred_at=occurred_at, received_at=received_at,
                             status=STORED))
    return rows


def _row(dedupe_key: str, kind: str, field: str | None, value: Any, *, status: str, received_at: datetime,
         entry_id: Any = None, waba_id: str | None = None, phone_number_id: str | None = None,
         occurred_at: datetime | None = None, raw: str | None = None, error: str | None = None) -> dict[str, Any]:
    return {"dedupe_key": dedupe_key, "kind": kind, "field": field, "waba_id": waba_id,
            "phone_number_id": phone_number_id, "entry_id": _node_id(entry_id), "occurred_at": occurred_at,
            "value": value, "raw": raw, "status": status, "error": error, "received_at": received_at}


def _digest(*parts: Any) -> str:
    """SHA-256 of a canonical serialisation: the same change, however it was batched or spaced, is the same key."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _node_id(value: Any) -> str | None:
    """A Graph node id (digits, as Meta sends them, in a string or a number), or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and value.isascii() and _NODE_ID.fullmatch(value) else None


def _time(value: Any) -> datetime | None:
    """A Unix time Meta sent (a number, or digits in a string) as a UTC datetime, or None."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        value = int(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and _EARLIEST <= value < _LATEST:
        return datetime.fromtimestamp(value, UTC)
    return None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError("a number too large to keep")
    return number


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        return {_clean(key): _clean(item) for key, item in value.items()}
    return value


# -- storing -------------------------------------------------------------------------------------------


def is_database_unavailable(error: BaseException) -> bool:
    """The database could not be reached or refused to work (down, locked, connection lost): worth a
    503, which Meta retries, rather than an answer about the delivery."""
    if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError,
                          sa_exc.DisconnectionError)):
        return True
    return isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated


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


def receive_together(deliveries: list[Delivery], *, one_by_one: bool = False) -> list[Receipt]:
    """Store every change of these signed deliveries once and apply the new ones, in the session's
    transaction; answers each delivery's receipt. A change that two of them hold is counted in the first.

    Raises what the database raises when it is unavailable (see :func:`is_database_unavailable`). Anything
    else the database refuses to keep stores a lone delivery's body raw, as unparseable, rather than
    refusing it for ever; with several deliveries it raises, and :func:`store_together` stores them one by one.

    The new changes are applied all at once; should that fail, the transaction is rolled back and the
    deliveries stored again, their changes applied ``one_by_one`` (see :func:`apply`).
    """
    rows, parameters, owners, changes = _unique_rows(deliveries)
    # Queued for the clients' own endpoints in this same transaction (the outbox): stored means forwarded.
    # On PostgreSQL by the INSERT itself, unless an account_update is to be applied: it may link or
    # offboard the onboarding that says where the batch's events go.
    queued = db.engine.dialect.name == "postgresql" and not any(
        row["field"] == "account_update" and _to_apply(row) for row in rows)
    try:
        new = _insert(rows, parameters, queue=queued)
    except (sa_exc.SQLAlchemyError, ValueError, TypeError, RecursionError) as error:
        if is_database_unavailable(error) or len(deliveries) > 1:
            raise
        log.warning("webhook delivery kept raw: the database refused its changes (%s)", type(error).__name__)
        db.session.rollback()
        lone = deliveries[0]
        fallback = unparseable_row(lone.body, lone.received_at, error=f"not stored as changes: {_describe(error)}")
        owners, changes = {fallback["dedupe_key"]: 0}, [1]
        new = _insert([fallback], queue=queued)
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
        with db.engine.connect() as connection:
            new = _insert(rows, parameters, queue=True,
                          connection=connection.execution_options(isolation_level="AUTOCOMMIT"))
    except (sa_exc.SQLAlchemyError, ValueError, TypeError) as error:
        if is_database_unavailable(error):
            raise
        return None
    return _receipts(changes, owners, new, [])


# -- deliveries arriving together, stored together -----------------------------------------------------

#: The most deliveries one transaction stores (a gunicorn worker's threads bound it first).
MAX_TOGETHER = 64
_GROUP_COMMIT = "esu_webhook_group_commit"


def ingest(body: bytes) -> Receipt:
    """Store a signed delivery's changes, apply the new ones and commit, in one transaction with any other
    delivery this process is receiving at the same moment. Answers once its changes are committed.

    Raises what the database raises when it is unavailable (see :func:`is_database_unavailable`).
    """
    group = current_app.extensions.get(_GROUP_COMMIT) or current_app.extensions.setdefault(
        _GROUP_COMMIT, GroupCommit(store_together, prepare=ready_to_write))
    return group.submit(Delivery.received(body))


def ready_to_write() -> None:
    """Wait for our turn to write before taking a batch: on SQLite, the database's writer lock (see
    ``esu.sqlite``), which the other gunicorn worker may hold for its own batch. Every delivery that
    arrives while we wait joins ours, instead of waiting for the next. Nothing to wait for on PostgreSQL."""
    if db.engine.dialect.name != "sqlite":
        return
    try:
        hold_writer_lock(db.session.connection())
    except Exception:
        db.session.rollback()
        raise


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


def _held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(eq=False)
class _Waiting:
    item: Any
    #: Released when the delivery is stored, or when it is this thread's turn to store the next batch: a
    #: bare lock rather than an Event, whose waking thread must also take the Event's own lock back from
    #: the thread that set it (two wake-ups for one, for every delivery of a batch).
    turn: threading.Lock = dataclasses.field(default_factory=_held_lock)
    receipt: Receipt | None = None
    error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.receipt is not None or self.error is not None


class GroupCommit:
    """Deliveries that arrive while another batch is being stored wait for it, then go in together: one
    transaction, one commit.

    Meta sends in bursts, and a gunicorn worker's threads each holding one delivery would each run their own
    transaction: on SQLite, one writer at a time, each waits its turn for the lock and writes every page it
    touched (the table and its indexes) to the WAL, which is most of what a delivery costs; on PostgreSQL
    each pays its own round trips and commit. Here the thread that finds nobody storing stores its delivery
    and every one waiting (up to ``limit``), then hands the next batch to the first thread still waiting,
    so no thread stores for others for long. No delivery is answered before its own commit. A sync worker,
    or a quiet moment, makes batches of one: one transaction per delivery, as without this.

    ``prepare``, when given, is what the thread that stores must wait for before it can write (another
    process's transaction): it runs before the batch is taken, so that what arrives meanwhile goes in too.
    Should it fail, the batch it was for fails with its error, and the next is handed on as usual.
    """

    def __init__(self, store: Callable[[list[Any]], list[Receipt | Exception]], limit: int = MAX_TOGETHER,
                 prepare: Callable[[], None] | None = None):
        self._store = store
        self._limit = limit
        self._prepare = prepare
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []  # not empty only while a batch is being stored
        self._storing = False

    @property
    def queued(self) -> int:
        """How many deliveries wait for the batch being stored to end."""
        with self._lock:
            return len(self._waiting)

    def submit(self, item: Any) -> Receipt:
        """Store ``item`` (a :class:`Delivery`) with whatever else is waiting; answers its receipt after the
        commit, or raises what refused it."""
        mine = _Waiting(item)
        with self._lock:
            self._waiting.append(mine)
            leading = not self._storing
            self._storing = True
        if not leading:
            mine.turn.acquire()
        if not mine.done:  # this thread's turn: its delivery is first in line
            self._store_next_batch()
        if mine.error is not None:
            raise mine.error
        assert mine.receipt is not None
        return mine.receipt

    def _store_next_batch(self) -> None:
        failed: BaseException | None = None
        try:
            if self._prepare is not None:
                self._prepare()
        except BaseException as error:  # noqa: BLE001 - every waiting thread must hear of it, whatever it is
            failed = error
        with self._lock:
            batch, self._waiting = self._waiting[:self._limit], self._waiting[self._limit:]
        outcomes: list[Receipt | BaseException]
        if failed is not None:
            outcomes = [failed] * len(batch)
        else:
            try:
                outcomes = list(self._store([waiting.item for waiting in batch]))
            except BaseException as error:  # noqa: BLE001 - as above
                outcomes = [error] * len(batch)
        for waiting, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                waiting.error = outcome
            else:
                waiting.receipt = outcome
        with self._lock:
            if self._waiting:
                self._waiting[0].turn.release()
            else:
                self._storing = False
        for waiting in batch:
            waiting.turn.release()


#: The columns of a stored change, in the order of :func:`driver_parameters`' tuples.
_COLUMNS = ("dedupe_key", "kind", "field", "waba_id", "phone_number_id", "entry_id", "occurred_at", "value", "raw",
            "status", "error", "received_at")
#: Rows in one INSERT: well within SQLite's and PostgreSQL's limits on a statement's parameters.
_ROWS_PER_INSERT = 500


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


def _insert(rows: list[dict[str, Any]], parameters: list[tuple] | None = None, *, queue: bool = False,
            connection: sa.Connection | None = None) -> list[tuple[int, dict[str, Any]]]:
    """Insert the rows whose key is new, on ``connection`` (by default the session's); answers those
    (id, row), in Meta's order. ``parameters`` are the rows' :func:`driver_parameters`, when already made;
    with ``queue`` (PostgreSQL), the same statement queues the new ones for forwarding.

    The statement goes to the driver as it is, with its parameters ready: every delivery from Meta runs
    it, and SQLAlchemy's rendering and processing of it, per execution, cost about as much as SQLite's
    work of inserting, on the thread that holds the writer lock.
    """
    if not rows:
        return []
    connection = connection or db.session.connection()
    dialect = connection.dialect
    if parameters is None:
        parameters = driver_parameters(rows, dialect)
    ids: dict[str, int] = {}
    for start in range(0, len(parameters), _ROWS_PER_INSERT):
        chunk = parameters[start:start + _ROWS_PER_INSERT]
        statement = (_insert_new_rows_and_queue if queue else _insert_new_rows)(dialect.paramstyle, len(chunk))
        ids.update(connection.exec_driver_sql(statement, tuple(value for row in chunk for value in row)).all())
    return [(ids[row["dedupe_key"]], row) for row in rows if row["dedupe_key"] in ids]


@functools.cache
def _insert_new_rows(paramstyle: str, count: int, returning: str = "dedupe_key, id") -> str:
    """``INSERT … VALUES`` ``count`` rows ``ON CONFLICT (dedupe_key) DO NOTHING RETURNING …``, which SQLite
    and PostgreSQL spell alike, with positional parameters of the driver's style."""
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}[paramstyle]
    row = "(" + ", ".join([mark] * len(_COLUMNS)) + ")"
    return (f"INSERT INTO {WebhookEvent.__tablename__} ({', '.join(_COLUMNS)}) VALUES {', '.join([row] * count)} "
            f"ON CONFLICT (dedupe_key) DO NOTHING RETURNING {returning}")


@functools.cache
def _insert_new_rows_and_queue(paramstyle: str, count: int) -> str:
    """PostgreSQL: :func:`_insert_new_rows` and the outbox's insert of those that are new, in one statement;
    answers (dedupe_key, id) of the new rows."""
    insert = _insert_new_rows(paramstyle, count, returning="dedupe_key, id, waba_id, field, received_at")
    return (f"WITH new_events AS ({insert}), queued AS ({forwarding.outbox_insert_sql('new_events')}) "
            "SELECT dedupe_key, id FROM new_events")


@functools.cache
def _insert_unless_exists(dialect: str, table: sa.Table, key: str):
    """``INSERT … ON CONFLICT (key) DO NOTHING RETURNING`` the columns records load, which PostgreSQL and
    SQLite spell alike; built once (building it costs more than running it)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=[key]).returning(*_loaded_columns(table))


def _describe(error: BaseException) -> str:
    """The error's kind and first line (a database error's own message, not the SQL and its parameters)."""
    text = str(getattr(error, "orig", None) or error)
    first = text.splitlines()[0] if text else ""
    return _UNSTORABLE.sub("\ufffd", f"{type(error).__name__}: {first}"[:500])


# -- applying -------------------------------------------------------------------------------------------


@dataclass
class Event:
    """A stored change being applied, and what came of it."""

    id: int
    field: str
    waba_id: str | None
    #: Meta's time of the event, or when we received it when Meta gave none.
    occurred_at: datetime
    value: Any
    status: str = APPLIED
    error: str | None = None
    onboarding_id: int | None = None
    phone_number_id: str | None = None

    @classmethod
    def from_row(cls, event_id: int, row: dict[str, Any]) -> Event:
        return cls(event_id, row["field"], row["waba_id"], row["occurred_at"] or row["received_at"], row["value"])

    @classmethod
    def from_record(cls, record: WebhookEvent) -> Event:
        return cls(record.id, record.field, record.waba_id, record.occurred_at or record.received_at, record.value)

    def newer_than(self, stamp: datetime | None) -> bool:
        """Whether this event may set a fact last set at ``stamp`` (an older one must not)."""
        return stamp is None or self.occurred_at >= stamp

    def ignore(self, reason: str) -> None:
        self.status, self.error = IGNORED, reason

    def reset(self) -> None:
        self.status, self.error, self.onboarding_id, self.phone_number_id = APPLIED, None, None, None

    def outcome(self, now: datetime) -> dict[str, Any]:
        return {"event_id": self.id, "status": self.status, "error": self.error,
                "onboarding_id": self.onboarding_id, "phone_number_id": self.phone_number_id,
                "applied_at": now if self.status == APPLIED else None}


_events = WebhookEvent.__table__
_RECORD_OUTCOME = sa.update(_events).where(_events.c.id == sa.bindparam("event_id")).values(
    {name: sa.bindparam(name) for name in ("status", "error", "onboarding_id", "phone_number_id", "applied_at")})


class ApplyFailed(Exception):
    """Applying a batch at once failed: the transaction holds part of its changes and must be rolled back."""


def apply(events: list[Event]) -> None:
    """Apply stored events to their records and record each outcome, all at once, loading their records
    in a few queries.

    Raises :class:`ApplyFailed` should any of them fail (what the database raises when it is unavailable
    passes as it is): the caller rolls the transaction back and stores the batch again with
    :func:`apply_one_by_one`. Nearly every batch applies cleanly, and pays for no savepoint.
    """
    try:
        records = Records(events)
        for event in events:
            APPLIERS[event.field](event, records)
        records.write()
        db.session.flush()
    except Exception as error:
        if is_database_unavailable(error):
            raise
        raise ApplyFailed(_describe(error)) from error
    _record_outcomes(events)


def apply_one_by_one(events: list[Event]) -> None:
    """Apply stored events to their records, each in its own savepoint, so that only a failing one is
    marked ``failed`` (with its error); record each outcome."""
    # Take every record's lock first, in their order, before each event takes its own in the events' order
    # (which another batch could take the other way round).
    try:
        with db.session.begin_nested():
            Records(events)
    except Exception as error:
        if is_database_unavailable(error):
            raise
    for event in events:
        event.reset()
        try:
            with db.session.begin_nested():
                records = Records([event])
                APPLIERS[event.field](event, records)
                records.write()
        except Exception as error:
            if is_database_unavailable(error):
                raise
            log.warning("webhook event %s (%s) could not be applied: %s", event.id, event.field,
                        _describe(error))
            event.reset()
            event.status, event.error = FAILED, _describe(error)
    _record_outcomes(events)


def _record_outcomes(events: list[Event]) -> None:
    now = now_utc()
    db.session.connection().execute(_RECORD_OUTCOME, [event.outcome(now) for event in events])


def reapply(limit: int = 1000) -> tuple[int, int]:
    """Apply again, oldest first, the events that failed (or were never applied): after a fix. Answers
    how many were tried and how many failed again."""
    records = db.session.scalars(
        sa.select(WebhookEvent)
        .where(WebhookEvent.status.in_((FAILED, STORED)), WebhookEvent.field.in_(list(APPLIERS)))
        .order_by(WebhookEvent.id).limit(limit)
    ).all()
    events = [Event.from_record(record) for record in records]
    if events:
        apply_one_by_one(events)
    return len(events), sum(event.status == FAILED for event in events)


_GIVE_UP_ON_LOCKS = sa.text("SET LOCAL lock_timeout = '500ms'")


class Records:
    """The records a batch of events concerns, loaded (or created) in a few queries up front.

    Each is locked until the transaction ends: the appliers read, compare Meta's times and write back
    (the account's event history, its limits…), and another worker applying another event to the same
    record must wait for this one rather than read it as it was and write over its change. Locks are
    taken in one order (accounts, templates, numbers, onboardings; each in a fixed order) so that two
    batches wait for each other instead of deadlocking. Messages and statuses load nothing and lock
    nothing.
    """

    def __init__(self, events: Iterable[Event]):
        events = list(events)
        connection = db.session.connection()
        if connection.dialect.name == "postgresql":
            # An onboarding run writes the same onboarding, account and number rows, in its own order; should
            # the two wait on each other, this delivery gives up (a 503, which Meta retries) before
            # PostgreSQL's deadlock check (deadlock_timeout, 1 s by default) could pick the customer's
            # callback instead.
            connection.execute(_GIVE_UP_ON_LOCKS)
        waba_ids = {event.waba_id for event in events if event.waba_id and event.field in WABA_FIELDS}
        templates: dict[str, dict[str, Any]] = {}
        for event in events:
            template_id = _template_id(event) if event.field in TEMPLATE_FIELDS else None
            if template_id and event.waba_id:
                waba_ids.add(event.waba_id)
                templates.setdefault(template_id, {
                    "id": template_id, "waba_id": event.waba_id, "status": "UNKNOWN", "components": [],
                    "name": _short_text(event.value.get("message_template_name"), 512) or "",
                    "language": _short_text(event.value.get("message_template_language"), 16) or "",
                })
        self.wabas = _ensure(WhatsAppBusinessAccount, [{"id": waba_id, "details": {}} for waba_id in waba_ids])
        self.templates = _ensure(MessageTemplate, list(templates.values()))

        phone_wabas = {event.waba_id for event in events if event.waba_id and event.field in PHONE_FIELDS}
        self.phones: dict[tuple[str, str], Record] = {}
        if phone_wabas:
            for phone in _load(PhoneNumber, "waba_id", sorted(phone_wabas)):
                self.phones[(phone.waba_id, _digits(phone.display_phone_number))] = phone

        partner_wabas = {event.waba_id for event in events if event.waba_id and event.field == "account_update"}
        self.onboardings: dict[str, list[Onboarding]] = {}
        if partner_wabas:
            for onboarding in db.session.scalars(_locked(
                sa.select(Onboarding).where(Onboarding.waba_id.in_(partner_wabas))
                .order_by(Onboarding.created_at.desc(), Onboarding.id.desc())
            )):
                self.onboardings.setdefault(onboarding.waba_id, []).append(onboarding)

    def write(self) -> None:
        """Write back what the appliers changed: one UPDATE per table and set of columns."""
        _write([*self.wabas.values(), *self.templates.values(), *self.phones.values()])

    def waba(self, event: Event) -> Record:
        if event.waba_id is None:
            raise ValueError("the change names no WhatsApp Business Account")
        return self.wabas[event.waba_id]

    def template(self, event: Event) -> Record:
        template_id = _template_id(event)
        if template_id is None or event.waba_id is None:
            raise ValueError("the change names no message_template_id")
        return self.templates[template_id]

    def phone(self, event: Event) -> Record | None:
        """The number a phone-level change is about: Meta names it by its display number only."""
        display = _digits(_value(event).get("display_phone_number"))
        return self.phones.get((event.waba_id, display)) if event.waba_id and display else None


def _ensure(model, rows: list[dict[str, Any]]) -> dict[str, Record]:
    """The records with these ids, locked, inserting the missing ones (``ON CONFLICT DO NOTHING``, so two
    deliveries creating the same one at once do not collide)."""
    if not rows:
        return {}
    found = {record.id: record for record in _load(model, "id", [row["id"] for row in rows])}
    missing = [row for row in rows if row["id"] not in found]
    if missing:
        connection = db.session.connection()
        table = model.__table__
        inserted = connection.execute(_insert_unless_exists(connection.dialect.name, table, "id"), missing)
        found.update((row["id"], Record(table, dict(row))) for row in inserted.mappings())
        # One that another worker inserted meanwhile is read with the lock: theirs until they commit.
        others = [row["id"] for row in missing if row["id"] not in found]
        if others:
            found.update((record.id, record) for record in _load(model, "id", others))
    return found


class Record:
    """An account's, template's or number's row as the appliers see it: its columns as attributes; what
    they set is kept to be written back (:func:`_write`). Core rather than the ORM: loading, tracking and
    flushing ORM objects was about a quarter of the CPU of a batch that changes records (bench/webhooks.py on
    PostgreSQL, timed around the storing thread: 2.1–2.4 ms a batch before, 1.5–1.9 ms after)."""

    __slots__ = ("changed", "table", "values")

    def __init__(self, table: sa.Table, values: dict[str, Any]):
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "changed", {})

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(f"{self.table.name}.{name} is not loaded for applying") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self.values:
            raise AttributeError(f"{self.table.name}.{name} is not loaded for applying")
        self.values[name] = value
        self.changed[name] = value


#: Columns the appliers never read or write, left unloaded: secrets (decrypting costs) and large JSON.
_NOT_LOADED = frozenset({"pin", "details", "components"})


def _load(model, column: str, ids: list[str]) -> list[Record]:
    """The rows of ``model`` whose ``column`` is one of ``ids``, locked (see :func:`_locked`), as records."""
    table = model.__table__
    rows = db.session.connection().execute(_locked_by_ids(table, column), {"ids": ids}).mappings()
    return [Record(table, dict(row)) for row in rows]


def _write(records: list[Record]) -> None:
    by_statement: dict[tuple[sa.Table, tuple[str, ...]], list[dict[str, Any]]] = {}
    for record in records:
        if record.changed:
            columns = tuple(sorted(record.changed))
            by_statement.setdefault((record.table, columns), []).append(
                {"record_id": record.values["id"], **{f"new_{name}": record.changed[name] for name in columns}})
            record.changed.clear()
    connection = db.session.connection()
    for (table, columns), parameters in by_statement.items():
        connection.execute(_update_columns(table, columns), parameters)


@functools.cache
def _update_columns(table: sa.Table, columns: tuple[str, ...]) -> sa.Update:
    return sa.update(table).where(table.c.id == sa.bindparam("record_id")).values(
        {name: sa.bindparam(f"new_{name}", type_=table.c[name].type) for name in columns})


@functools.cache
def _locked_by_ids(table: sa.Table, column: str) -> sa.Select:
    """``_locked`` rows of ``table`` whose ``column`` is in the parameter ``ids``, in id order (the order
    every worker locks them in): built once, as this runs for every delivery that changes records."""
    return _locked(sa.select(*_loaded_columns(table)).where(table.c[column].in_(sa.bindparam("ids", expanding=True)))
                   .order_by(table.c.id))


def _loaded_columns(table: sa.Table) -> list[sa.Column]:
    return [column for column in table.c if column.name not in _NOT_LOADED]


def _locked(query: sa.Select) -> sa.Select:
    """``query`` locking the rows it reads until the transaction ends, and reading them as they are then
    (not as this session may have loaded them before). ``FOR NO KEY UPDATE`` on PostgreSQL: the lock an
    UPDATE of these rows takes anyway, which still lets others insert rows referring to them. SQLite has
    no row locks and needs none: its writers are already one at a time."""
    return query.with_for_update(key_share=True).execution_options(populate_existing=True)


# -- what each field changes ----------------------------------------------------------------------------


def apply_account_update(event: Event, records: Records) -> None:
    """Record the event on the WABA (the latest of each kind); PARTNER_ADDED links or creates the
    onboarding, PARTNER_REMOVED offboards it."""
    value = _value(event)
    name = _code(value.get("event"), "event", 64)
    waba = records.waba(event)
    owner = _node_id((value.get("waba_info") or {}).get("owner_business_id")) \
        if isinstance(value.get("waba_info"), dict) else None
    if owner and not waba.business_id:
        waba.business_id = owner
    history = dict(waba.account_events or {})
    latest = history.get(name)
    if latest is None or event.newer_than(_stamp(latest)):
        history[name] = {**{key: item for key, item in value.items() if key != "event"},
                         "occurred_at": event.occurred_at.isoformat()}
        waba.account_events = history
    if name == "PARTNER_ADDED":
        _partner_added(event, waba, records)
    elif name == "PARTNER_REMOVED":
        _partner_removed(event, waba, records)


def _partner_added(event: Event, waba: Record, records: Records) -> None:
    onboardings = records.onboardings.setdefault(waba.id, [])
    removed_at = _stamp((waba.account_events or {}).get("PARTNER_REMOVED"))
    if removed_at is not None and removed_at > event.occurred_at:
        # The customer left after this: nothing to link to or create but the record of it.
        if onboardings:
            event.onboarding_id = onboardings[0].id
        return
    onboarding = next((item for item in onboardings if item.status != OnboardingStatus.OFFBOARDED), None)
    if onboarding is None:
        # The browser never called back (or not yet): the customer exists all the same. The callback,
        # when it comes, adopts this record (esu.onboarding.start).
        onboarding = Onboarding(source="webhook", status=OnboardingStatus.AWAITING_CALLBACK, event="PARTNER_ADDED",
                                waba_id=waba.id, business_id=waba.business_id)
        db.session.add(onboarding)
        db.session.flush()
        onboardings.insert(0, onboarding)
    if onboarding.partner_added_at is None or event.occurred_at > onboarding.partner_added_at:
        onboarding.partner_added_at = event.occurred_at
    event.onboarding_id = onboarding.id


def _partner_removed(event: Event, waba: Record, records: Records) -> None:
    onboardings = records.onboardings.get(waba.id) or []
    for onboarding in onboardings:
        # Meta's times are whole seconds: compare ours at the same grain.
        began = (onboarding.partner_added_at or onboarding.created_at).replace(microsecond=0)
        if onboarding.status != OnboardingStatus.OFFBOARDED and began <= event.occurred_at:
            onboarding.status = OnboardingStatus.OFFBOARDED
            onboarding.offboarded_at = event.occurred_at
            event.onboarding_id = event.onboarding_id or onboarding.id
    if event.onboarding_id is None and onboardings:
        event.onboarding_id = onboardings[0].id


def apply_account_review_update(event: Event, records: Records) -> None:
    """The WABA's review decision: APPROVED, REJECTED, PENDING, DEFERRED."""
    decision = _code(_value(event).get("decision"), "decision", 32)
    waba = records.waba(event)
    if event.newer_than(waba.account_review_updated_at):
        waba.account_review_status = decision
        waba.account_review_updated_at = event.occurred_at


def apply_business_capability_update(event: Event, records: Records) -> None:
    """The WABA's limits: messaging tier, numbers per WABA or per business."""
    value = _value(event)
    waba = records.waba(event)
    if event.newer_than(waba.limits_updated_at):
        waba.limits = {**(waba.limits or {}), **value}
        waba.limits_updated_at = event.occurred_at


def apply_phone_number_name_update(event: Event, records: Records) -> None:
    """The display name's review: its status, and the verified name once APPROVED."""
    value = _value(event)
    decision = _code(value.get("decision"), "decision", 32)
    requested = _short_text(value.get("requested_verified_name"), 200)
    reason = value.get("rejection_reason")
    reason = None if reason in (None, "NONE") else _code(reason, "rejection_reason", 64)
    phone = _phone(event, records)
    if phone is not None and event.newer_than(phone.name_updated_at):
        phone.name_status = decision
        phone.requested_verified_name = requested
        phone.name_rejection_reason = reason
        if decision == "APPROVED" and requested:
            phone.verified_name = requested
        phone.name_updated_at = event.occurred_at


def apply_phone_number_quality_update(event: Event, records: Records) -> None:
    """The number's messaging limit and the event that reported it (THROUGHPUT_UPGRADE, FLAGGED…)."""
    value = _value(event)
    name = _code(value.get("event"), "event", 32)
    limit = value.get("max_daily_conversations_per_business") or value.get("current_limit")
    limit = None if limit is None else _code(str(limit), "max_daily_conversations_per_business", 32)
    phone = _phone(event, records)
    if phone is not None and event.newer_than(phone.quality_updated_at):
        phone.quality_event = name
        phone.messaging_limit = limit or phone.messaging_limit
        phone.quality_updated_at = event.occurred_at


def apply_security(event: Event, records: Records) -> None:
    """A PIN event on the number: PIN_CHANGED, PIN_RESET_REQUEST, PIN_REQUEST_SUCCESS."""
    name = _code(_value(event).get("event"), "event", 32)
    phone = _phone(event, records)
    if phone is not None and event.newer_than(phone.security_event_at):
        phone.security_event = name
        phone.security_event_at = event.occurred_at


def apply_message_template_status_update(event: Event, records: Records) -> None:
    """The template's status (and category, when given), created when we did not know the template."""
    value = _value(event)
    status = _code(value.get("event"), "event", 32)
    reason = value.get("reason")
    reason = None if reason is None else _code(reason, "reason", 64)
    category = value.get("message_template_category")
    category = None if category is None else _code(category, "message_template_category", 32)
    template = records.template(event)
    if event.newer_than(template.status_updated_at):
        template.status = status
        template.status_reason = reason
        template.status_info = {key: value[key] for key in ("rejection_info", "other_info", "disable_info")
                                if key in value} or None
        template.status_updated_at = event.occurred_at
    if category and event.newer_than(template.category_updated_at):
        template.category = category
        template.category_updated_at = event.occurred_at


def apply_template_category_update(event: Event, records: Records) -> None:
    """A recategorisation, done (``previous_category``) or announced (``correct_category`` with its time)."""
    value = _value(event)
    category = _code(value.get("new_category"), "new_category", 32)
    coming = value.get("correct_category")
    coming = None if coming is None else _code(coming, "correct_category", 32)
    template = records.template(event)
    if event.newer_than(template.category_updated_at):
        template.category = category
        template.pending_category = coming
        template.pending_category_at = _time(value.get("category_update_timestamp")) if coming else None
        template.category_updated_at = event.occurred_at


def apply_message_template_quality_update(event: Event, records: Records) -> None:
    """The template's quality score: GREEN, YELLOW, RED, UNKNOWN."""
    score = _code(_value(event).get("new_quality_score"), "new_quality_score", 16)
    template = records.template(event)
    if event.newer_than(template.quality_updated_at):
        template.quality_score = score
        template.quality_updated_at = event.occurred_at


APPLIERS: dict[str, Callable[[Event, Records], None]] = {
    "account_update": apply_account_update,
    "account_review_update": apply_account_review_update,
    "business_capability_update": apply_business_capability_update,
    "phone_number_name_update": apply_phone_number_name_update,
    "phone_number_quality_update": apply_phone_number_quality_update,
    "security": apply_security,
    "message_template_status_update": apply_message_template_status_update,
    "template_category_update": apply_template_category_update,
    "message_template_quality_update": apply_message_template_quality_update,
}
WABA_FIELDS = frozenset({"account_update", "account_review_update", "business_capability_update"})
PHONE_FIELDS = frozenset({"phone_number_name_update", "phone_number_quality_update", "security"})
TEMPLATE_FIELDS = frozenset({"message_template_status_update", "template_category_update",
                             "message_template_quality_update"})


def _value(event: Event) -> dict[str, Any]:
    if not isinstance(event.value, dict):
        raise TypeError(f"the value of a {event.field} change is not an object")
    return event.value


def _phone(event: Event, records: Records) -> PhoneNumber | None:
    phone = records.phone(event)
    if phone is None:
        event.ignore(f"no phone number {_digits(_value(event).get('display_phone_number'))!r} on record for "
                     f"WhatsApp Business Account {event.waba_id}")
        return None
    event.phone_number_id = phone.id
    return phone


def _template_id(event: Event) -> str | None:
    return _node_id(event.value.get("message_template_id")) if isinstance(event.value, dict) else None


def _code(value: Any, name: str, longest: int) -> str:
    """One of Meta's codes (APPROVED, TIER_2K…): a short string, or the change is not one we can apply."""
    if not isinstance(value, str) or not value or len(value) > longest:
        raise ValueError(f"{name} is missing or not a code of at most {longest} characters")
    return value


def _short_text(value: Any, longest: int) -> str | None:
    return value[:longest] if isinstance(value, str) and value else None


def _digits(value: Any) -> str:
    return re.sub(r"\D", "", value) if isinstance(value, str) else ""


def _stamp(record: Any) -> datetime | None:
    """The ``occurred_at`` kept in an ``account_events`` entry."""
    if isinstance(record, dict) and isinstance(record.get("occurred_at"), str):
        try:
            return datetime.fromisoformat(record["occurred_at"])
        except ValueError:
            return None
    return None


# -- reading ---------------------------------------------------------------------------------------------


def message_counts(phone_number_ids: Iterable[str] | None = None) -> dict[str, dict[str, int]]:
    """Messages and statuses received per number: ``{phone_number_id: {"message": n, "status": n}}``."""
    query = (
        sa.select(WebhookEvent.phone_number_id, WebhookEvent.kind, sa.func.count())
        .where(WebhookEvent.phone_number_id.is_not(None), WebhookEvent.kind.in_(("message", "status")))
        .group_by(WebhookEvent.phone_number_id, WebhookEvent.kind)
    )
    if phone_number_ids is not None:
        query = query.where(WebhookEvent.phone_number_id.in_(list(phone_number_ids)))
    counts: dict[str, dict[str, int]] = {}
    for phone_number_id, kind, count in db.session.execute(query):
        counts.setdefault(phone_number_id, {"message": 0, "status": 0})[kind] = count
    return counts
