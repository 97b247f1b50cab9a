"""The stored changes being applied (:class:`Event`) and the records they change (:class:`Records`):
accounts, templates, numbers and onboardings, loaded, locked and written back in a few statements.

The ordering rule: a record keeps Meta's time of the event that last set each fact, and an event sets a
fact only when it is not older (:meth:`Event.newer_than`, :func:`set_if_newer`), so events may come in
any order, and twice.

What keeps a batch that changes records cheap: they are rows read and written through SQLAlchemy Core,
not ORM objects (about a quarter of such a batch's CPU; see :class:`Record`), written back with one
UPDATE per table and set of columns; secret and large columns are left unloaded (a number's PIN is not
decrypted to apply a change); a record the batch creates comes back from its INSERT rather than a second
read; every statement is built once.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from ..models import MessageTemplate, Onboarding, PhoneNumber, WebhookEvent, WhatsAppBusinessAccount
from ..models.assets import WABA, OnboardingAsset
from .sql import LOCK_WAIT_SECONDS
from .values import (
    APPLIED,
    GRAPH_PHONE_READS,
    GRAPH_WABA_READS,
    IGNORED,
    PHONE_FIELDS,
    TEMPLATE_FIELDS,
    WABA_FIELDS,
    digits,
    node_id,
    short_text,
)

#: The fields whose change names an account, and a number (by its display number): webhooks' and Graph reads'.
_WABA_NAMING = WABA_FIELDS | GRAPH_WABA_READS
_PHONE_NAMING = PHONE_FIELDS | GRAPH_PHONE_READS


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


def value_of(event: Event) -> dict[str, Any]:
    """The change's value, which for every field esu applies is an object."""
    if not isinstance(event.value, dict):
        raise TypeError(f"the value of a {event.field} change is not an object")
    return event.value


def set_if_newer(event: Event, record: Record, stamp: str, **facts: Any) -> None:
    """The ordering rule for facts set together: set ``facts`` on ``record``, and its ``stamp`` column to
    the event's time, unless ``stamp`` holds a newer event's time."""
    if event.newer_than(getattr(record, stamp)):
        for name, fact in facts.items():
            setattr(record, name, fact)
        setattr(record, stamp, event.occurred_at)


def unnamed(event: Event) -> str | None:
    """What a change must name for esu to apply it and does not (no id, or a placeholder such as
    ``"WABA_ID"`` where Meta puts one), or None. Such a change is ``ignored`` with this reason, not
    ``failed``: nothing in esu needs fixing, and ``flask webhooks reapply`` would gain nothing."""
    if event.waba_id is None:
        return "the change names no WhatsApp Business Account: its entry's id is not a Graph id"
    if event.waba_id == current_app.config.get("META_PARTNER_BUSINESS_ID"):
        # PARTNER_* events come in the partner's own entry with the WABA in waba_info; without it, the
        # entry's id is the partner's business, which is no customer's account.
        return "the change names no WhatsApp Business Account: its entry is the partner's own business, " \
               "and it has no waba_info"
    if event.field in TEMPLATE_FIELDS and _template_id(event) is None:
        return "the change names no message template: its message_template_id is missing or not a Graph id"
    if event.field in _PHONE_NAMING and isinstance(event.value, dict) and not display_number(event.value):
        return "the change names no phone number: its display_phone_number is missing or has no digits"
    return None


def display_number(value: dict[str, Any]) -> str:
    """The digits of the number a phone-level change names: its ``display_phone_number``, or its metadata's
    (``history`` names the number as messages do)."""
    metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
    return digits(value.get("display_phone_number")) or digits(metadata.get("display_phone_number"))


def _template_id(event: Event) -> str | None:
    return node_id(event.value.get("message_template_id")) if isinstance(event.value, dict) else None


_GIVE_UP_ON_LOCKS = sa.text(f"SET LOCAL lock_timeout = '{round(LOCK_WAIT_SECONDS * 1000)}ms'")


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
        # A change that names no record creates none (``applying`` ignores it).
        events = [event for event in events if unnamed(event) is None]
        connection = db.session.connection()
        if connection.dialect.name == "postgresql":
            # An onboarding run writes the same onboarding, account and number rows, in its own order; should
            # the two wait on each other, this delivery gives up (a 503, which Meta retries) before
            # PostgreSQL's deadlock check (deadlock_timeout, 1 s by default) could pick the customer's
            # callback instead.
            connection.execute(_GIVE_UP_ON_LOCKS)
        waba_ids = {event.waba_id for event in events if event.waba_id and event.field in _WABA_NAMING}
        templates: dict[str, dict[str, Any]] = {}
        for event in events:
            template_id = _template_id(event) if event.field in TEMPLATE_FIELDS else None
            if template_id and event.waba_id:
                waba_ids.add(event.waba_id)
                templates.setdefault(template_id, {
                    "id": template_id, "waba_id": event.waba_id, "status": "UNKNOWN", "components": [],
                    "name": short_text(event.value.get("message_template_name"), 512) or "",
                    "language": short_text(event.value.get("message_template_language"), 16) or "",
                })
        self.wabas = _ensure(WhatsAppBusinessAccount, [{"id": waba_id, "details": {}} for waba_id in waba_ids])
        self.templates = _ensure(MessageTemplate, list(templates.values()))

        phone_wabas = {event.waba_id for event in events if event.waba_id and event.field in _PHONE_NAMING}
        self.phones: dict[tuple[str, str], Record] = {}
        if phone_wabas:
            for phone in _load(PhoneNumber, "waba_id", sorted(phone_wabas)):
                self.phones[(phone.waba_id, digits(phone.display_phone_number))] = phone

        partner_wabas = {event.waba_id for event in events if event.waba_id and event.field == "account_update"}
        self.onboardings: dict[str, list[Onboarding]] = {}
        if partner_wabas:
            # Every onboarding that counts the WABA among its own (its ``waba`` assets: a multi-WABA signup's
            # other WABAs too), newest first.
            held = (sa.select(OnboardingAsset.asset_id, Onboarding)
                    .join(Onboarding, Onboarding.id == OnboardingAsset.onboarding_id)
                    .where(OnboardingAsset.kind == WABA, OnboardingAsset.asset_id.in_(partner_wabas))
                    .order_by(Onboarding.created_at.desc(), Onboarding.id.desc()))
            for waba_id, onboarding in db.session.execute(_locked(held, of=Onboarding)):
                self.onboardings.setdefault(waba_id, []).append(onboarding)

    def write(self) -> None:
        """Write back what the appliers changed: one UPDATE per table and set of columns."""
        _write([*self.wabas.values(), *self.templates.values(), *self.phones.values()])

    def waba(self, event: Event) -> Record:
        """The account the change is about (one :func:`unnamed` let through names one)."""
        return self.wabas[event.waba_id]

    def template(self, event: Event) -> Record:
        """The template the change is about (one :func:`unnamed` let through names one)."""
        return self.templates[_template_id(event)]

    def phone(self, event: Event) -> Record | None:
        """The number a phone-level change is about: Meta names it by its display number only."""
        display = display_number(value_of(event))
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


def _locked(query: sa.Select, of: Any = None) -> sa.Select:
    """``query`` locking the rows it reads (of ``of`` only, when given) until the transaction ends, and reading
    them as they are then (not as this session may have loaded them before). ``FOR NO KEY UPDATE`` on
    PostgreSQL: the lock an UPDATE of these rows takes anyway, which still lets others insert rows referring
    to them. SQLite has no row locks and needs none: its writers are already one at a time."""
    return query.with_for_update(key_share=True, of=of).execution_options(populate_existing=True)


@functools.cache
def _insert_unless_exists(dialect: str, table: sa.Table, key: str):
    """``INSERT … ON CONFLICT (key) DO NOTHING RETURNING`` the columns records load, which PostgreSQL and
    SQLite spell alike; built once (building it costs more than running it)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=[key]).returning(*_loaded_columns(table))
