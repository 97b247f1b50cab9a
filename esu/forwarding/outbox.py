"""The outbox: one ``ForwardDelivery`` per stored event and target that wants it, queued in the
transaction that stores the event, so nothing stored is left unforwarded; and replays, which queue
failed deliveries again. Functions here flush and never commit.

One statement routes and queues a batch's events together (``INSERT … SELECT``, the message ids made by
the database): with forwarding on, about 15–20 % less CPU per stored delivery than a SELECT of the routes
and then an INSERT of rows made in Python. On PostgreSQL the webhook store puts it inside its events' own
INSERT (``outbox_insert_sql``): a batch of messages is one statement and one round trip instead of four
(with the pool's rarer pings, 2.4–2.7 ms → 1.4–1.7 ms of the storing thread). Where it runs on its own
(``enqueue``: on SQLite, and on PostgreSQL for a batch with an ``account_update`` to apply), the driver
gets SQL text built once per dialect, the batch's event ids one JSON parameter, instead of SQLAlchemy
rendering an ``IN`` list for every batch under SQLite's writer lock; the insert is then about 0.15 ms of
a batch's 1.8 ms under that lock.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from ..extensions import db
from ..models import WABA_PROOF_STEPS, Onboarding, OnboardingStep, StepStatus, WebhookEvent, now_utc
from ..models.assets import WABA, OnboardingAsset
from ..models.forwarding import DeliveryStatus, ForwardDelivery, ForwardingTarget
from .errors import ForwardingError

UNDELIVERED = (DeliveryStatus.FAILED, DeliveryStatus.DEAD)


def enqueue(event_ids: Iterable[int]) -> int:
    """Queue the stored events ``event_ids`` for every enabled target that wants them; answers how many
    deliveries were added. Called by the webhook ingest inside its transaction: flushes, never commits.

    An event goes to the targets of the pages whose onboarding owns its WABA (any of the onboarding's WABAs,
    its ``waba`` assets: several in a multi-WABA flow): one whose steps proved the customer granted its WABAs
    (``WABA_PROOF_STEPS``), or that Meta reported (``source='webhook'``), until it is offboarded. Queuing the
    same event twice adds nothing (unique target and event).
    """
    ids = sorted(set(event_ids))
    if not ids:
        return 0
    # One statement routing and queuing together, sent to the driver as SQL text with its parameters
    # ready: this runs for every batch of deliveries from Meta, on SQLite under the writer lock, where
    # SQLAlchemy rendering it anew each time (a list of ids in IN) was work done holding that lock.
    connection = db.session.connection()
    statement, names, constants, process_time = _outbox_insert(connection.dialect)
    values = {**constants, "event_ids": json.dumps(ids), "now": process_time(now_utc())}
    parameters = tuple(values[name] for name in names) if names is not None else values
    return len(connection.exec_driver_sql(statement, parameters).all())


@functools.cache
def _outbox_insert(dialect: sa.Dialect) -> tuple[str, tuple[str, ...] | None, dict[str, Any], Callable]:
    """``INSERT INTO forward_deliveries … SELECT`` the (target, event) routes of the stored events whose
    ids are in the JSON array ``event_ids``, each with a new ``message_id``; pairs already queued are
    skipped. Built once per dialect, as the driver's SQL: its text, the order of its parameters (when
    positional), the values of its constant ones, and how the driver takes a time."""
    events = WebhookEvent.__table__
    if dialect.name == "postgresql":
        listed = sa.func.jsonb_array_elements_text(sa.cast(sa.bindparam("event_ids"), JSONB)).table_valued("value")
        which = events.c.id.in_(sa.select(sa.cast(listed.c.value, sa.Integer)))
    else:
        listed = sa.func.json_each(sa.bindparam("event_ids")).table_valued("value")
        which = events.c.id.in_(sa.select(listed.c.value))
    time_type = ForwardDelivery.__table__.c.created_at.type
    compiled = _outbox_insert_from(dialect.name, events, which, sa.bindparam("now", type_=time_type)).compile(
        dialect=dialect)

    def processor(name: str) -> Callable[[Any], Any]:
        return compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) or (lambda value: value)

    names = tuple(compiled.positiontup) if compiled.positional else None
    constants = {name: processor(name)(value)
                 for name, value in compiled.construct_params({"event_ids": None, "now": None}).items()
                 if name not in ("event_ids", "now")}
    return str(compiled), names, constants, processor("now")


@functools.cache
def outbox_insert_sql(events: str) -> str:
    """PostgreSQL's ``INSERT INTO forward_deliveries … SELECT`` the routes of every event in ``events``, a
    table or ``WITH`` query of the new events' ``id``, ``waba_id``, ``field`` and ``received_at`` (as the
    webhook's insert returns them), as SQL text without parameters: to go in that same statement."""
    from sqlalchemy.dialects import postgresql

    new_events = sa.table(events, sa.column("id"), sa.column("waba_id"), sa.column("field"),
                          sa.column("received_at"))
    statement = _outbox_insert_from("postgresql", new_events, sa.true(), sa.func.now())
    return str(statement.compile(dialect=postgresql.psycopg.dialect(), compile_kwargs={"literal_binds": True}))


def _outbox_insert_from(dialect: str, events: sa.FromClause, which: sa.ColumnElement, now: sa.ColumnElement):
    """The outbox's insert for the ``events`` that ``which`` selects, queued at ``now``."""
    confirmed = sa.select(sa.func.count()).where(
        OnboardingStep.onboarding_id == Onboarding.id,
        sa.or_(*(OnboardingStep.name == name for name in WABA_PROOF_STEPS)),  # no IN: its list would expand per call
        OnboardingStep.status == StepStatus.OK,
    ).scalar_subquery() == len(WABA_PROOF_STEPS)
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert

        # An empty list means every field.
        wanted = sa.or_(sa.func.jsonb_array_length(ForwardingTarget.fields) == 0,
                        sa.type_coerce(ForwardingTarget.fields, JSONB).has_key(events.c.field))
        message_id = sa.literal("msg_") + sa.func.replace(sa.cast(sa.func.gen_random_uuid(), sa.Text), "-", "")
    else:
        from sqlalchemy.dialects.sqlite import insert

        listed = sa.func.json_each(ForwardingTarget.fields).table_valued("value")
        wanted = sa.or_(sa.func.json_array_length(ForwardingTarget.fields) == 0,
                        sa.exists().where(listed.c.value == events.c.field))
        message_id = sa.literal("msg_") + sa.func.lower(sa.func.hex(sa.func.randomblob(16)))
    waba_id = events.c.waba_id
    if dialect != "postgresql":
        # SQLite, without statistics, would rather walk every WABA asset (the index's ``kind``) and look each
        # one's events up than go from the batch's few events to their WABA: 28 ms a batch instead of 0.05
        # with 20,000 onboardings. The unary "+" keeps it from using an index for the events' side
        # (sqlite.org/optoverview.html, "Disqualifying WHERE clause terms using unary-+").
        waba_id = UnaryExpression(waba_id, operator=custom_op("+"), type_=waba_id.type)
    routes = (
        sa.select(ForwardingTarget.id.label("target_id"), events.c.id.label("event_id"))
        .select_from(events)
        # Each of an onboarding's WABAs, several in a multi-WABA flow, is one of its assets (by the index
        # on kind and asset id); every onboarding with a ``waba_id`` has that WABA among them.
        .join(OnboardingAsset, sa.and_(OnboardingAsset.kind == WABA, OnboardingAsset.asset_id == waba_id))
        .join(Onboarding, Onboarding.id == OnboardingAsset.onboarding_id)
        .join(ForwardingTarget, ForwardingTarget.page_id == Onboarding.page_id)
        .where(
            which,
            ForwardingTarget.enabled.is_(True),
            wanted,
            sa.or_(Onboarding.source == "webhook", confirmed),
            sa.or_(Onboarding.offboarded_at.is_(None), Onboarding.offboarded_at >= events.c.received_at),
        )
        .distinct()
        .subquery()
    )
    table = ForwardDelivery.__table__
    queued = (
        sa.select(routes.c.target_id, routes.c.event_id, message_id, sa.literal(DeliveryStatus.PENDING.value),
                  sa.literal(0), now, now)
        # SQLite reads "SELECT … ON CONFLICT" as a join's ON unless the SELECT has a WHERE.
        .where(sa.true())
    )
    columns = ["target_id", "event_id", "message_id", "status", "attempts", "next_attempt_at", "created_at"]
    return (insert(table).from_select(columns, queued)
            .on_conflict_do_nothing(index_elements=["target_id", "event_id"]).returning(table.c.id))


def replay(delivery: ForwardDelivery) -> None:
    """Send a failed or dead delivery again, from a fresh retry window, with the same ``webhook-id``
    (the receiver never acknowledged it). Flushes, does not commit."""
    if delivery.status not in UNDELIVERED:
        raise ForwardingError(gettext("only failed deliveries can be replayed; this one is %(status)s",
                                      status=delivery.status))
    if not delivery.target.enabled:
        raise ForwardingError(gettext("the target is disabled: enable it before replaying its deliveries"))
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.first_attempted_at = None
    delivery.next_attempt_at = now_utc()
    delivery.lease_until = None
    db.session.flush()


def replay_failed(target: ForwardingTarget) -> int:
    """``replay`` every failed or dead delivery of ``target``; answers how many. Flushes, does not commit."""
    if not target.enabled:
        raise ForwardingError(gettext("the target is disabled: enable it before replaying its deliveries"))
    result = db.session.execute(
        sa.update(ForwardDelivery)
        .where(ForwardDelivery.target_id == target.id, ForwardDelivery.status.in_(UNDELIVERED))
        .values(status=DeliveryStatus.PENDING, attempts=0, first_attempted_at=None, next_attempt_at=now_utc(),
                lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
