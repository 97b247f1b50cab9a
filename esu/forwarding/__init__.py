"""Per-client webhook forwarding: every stored event of a client's WABAs, signed, to that client's URLs.

How it fits together:

- The webhook ingest stores ``WebhookEvent`` rows and calls ``enqueue(ids)`` in the same transaction:
  one ``ForwardDelivery`` (the outbox) per event and matching target, so nothing stored is ever left
  unforwarded and Meta's endpoint pays for one ``INSERT … SELECT`` a batch.
- ``run_worker`` (``flask --app wsgi forward``) claims due deliveries with a lease, sends them without
  holding a transaction, and records the outcomes in short ones. Any number of workers may run on
  PostgreSQL (``FOR UPDATE SKIP LOCKED``); run a single one on SQLite, which has one writer at a time.
- Sending follows Standard Webhooks: ``webhook-id`` (the same on every retry, so receivers can drop
  repeats), ``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256>``. Delivery is
  at-least-once: a worker that dies between sending and recording leaves the lease to expire, and the
  delivery goes again with the same ``webhook-id``.
- Outbound requests never follow redirects, have timeouts, and outside development may only reach
  public addresses over https, never esu itself (checked when a target is saved and again on every
  connection, after DNS).
"""

from __future__ import annotations

import email.utils
import functools
import json
import logging
import random
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import joinedload, selectinload

from ..extensions import db
from ..models import Onboarding, OnboardingStep, SignupPage, StepStatus, WebhookEvent, now_utc
from ..models.forwarding import DeliveryStatus, ForwardAttempt, ForwardDelivery, ForwardingTarget
from .destinations import DestinationPolicy, DestinationRefused  # noqa: F401 - the admin imports it from here
from .errors import ForwardingError
from .sending import DEFAULT_BATCH_SIZE, AttemptResult, Job, Outcome, Sender
from .signing import new_message_id, new_secret, payload

logger = logging.getLogger(__name__)

#: Waits after the 1st, 2nd… failed attempt; then every ``LATER_RETRY_EVERY`` until ``RETRY_WINDOW`` is over.
RETRY_SCHEDULE = (
    timedelta(seconds=10), timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
    timedelta(hours=1), timedelta(hours=2), timedelta(hours=4), timedelta(hours=8),
)
LATER_RETRY_EVERY = timedelta(hours=12)
#: A delivery still failing this long after its first attempt is given up (``dead``).
RETRY_WINDOW = timedelta(days=3)
#: Each wait is stretched or shrunk by up to this fraction, so failures of many deliveries spread out.
JITTER = 0.2
#: A receiver's ``Retry-After`` is honoured up to this long.
RETRY_AFTER_CAP = timedelta(hours=12)
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
#: Meta's WhatsApp webhook fields, offered when choosing what a target receives (others are accepted too).
KNOWN_FIELDS = (
    "messages", "account_update", "account_alerts", "account_review_update", "business_capability_update",
    "message_template_status_update", "message_template_quality_update", "message_template_components_update",
    "template_category_update", "phone_number_name_update", "phone_number_quality_update", "security",
    "history", "smb_app_state_sync", "smb_message_echoes", "partner_solutions", "user_preferences",
    "payment_configuration_update", "automatic_events",
)
UNDELIVERED = (DeliveryStatus.FAILED, DeliveryStatus.DEAD)
#: A target failing this long without a success is flagged on the admin's dashboard.
FAILING_FLAG_AFTER = timedelta(days=1)


# -- targets ---------------------------------------------------------------------------------------


def _normalise_fields(fields: Iterable[str] | None) -> list[str]:
    chosen = []
    for name in fields or ():
        name = str(name).strip()
        if not FIELD_NAME.match(name):
            raise ForwardingError(f"'{name}' is not a webhook field name (lowercase letters, digits and _)")
        if name not in chosen:
            chosen.append(name)
    return chosen


def create_target(page: SignupPage, url: str, fields: Iterable[str] | None = None) -> tuple[ForwardingTarget, str]:
    """Add a forwarding target to ``page``; answers it and its signing secret, which is shown only now.

    Raises ForwardingError (DestinationRefused) with a reason fit for the admin. Flushes, does not commit.
    """
    url = url.strip()
    DestinationPolicy.from_config(current_app.config).check_destination(url)
    secret = new_secret()
    target = ForwardingTarget(page_id=page.id, url=url, secret=secret, fields=_normalise_fields(fields),
                              enabled=True)
    db.session.add(target)
    db.session.flush()
    return target, secret


def update_target(target: ForwardingTarget, *, url: str | None = None, fields: Iterable[str] | None = None) -> None:
    """Change a target's URL or fields (the secret stays). Flushes, does not commit."""
    if url is not None and url.strip() != target.url:
        DestinationPolicy.from_config(current_app.config).check_destination(url.strip())
        target.url = url.strip()
    if fields is not None:
        target.fields = _normalise_fields(fields)
    db.session.flush()


def rotate_secret(target: ForwardingTarget) -> str:
    """Give ``target`` a new signing secret and answer it (shown once). Flushes, does not commit."""
    target.secret = new_secret()
    db.session.flush()
    return target.secret


def disable_target(target: ForwardingTarget, reason: str) -> int:
    """Stop forwarding to ``target``: its pending deliveries become failed (replayable once it is enabled
    again). Answers how many were stopped. Flushes, does not commit."""
    target.enabled = False
    target.disabled_reason = reason
    db.session.flush()
    return _stop_pending(target.id, reason)


def enable_target(target: ForwardingTarget) -> None:
    """Forward to ``target`` again (its stopped deliveries stay failed until replayed). Flushes."""
    target.enabled = True
    target.disabled_reason = None
    target.failing_since = None
    db.session.flush()


def delete_target(target: ForwardingTarget, *, now: datetime | None = None) -> None:
    """Delete a disabled target with its deliveries and their attempts. Refused while it is enabled
    (disabling first is the confirmation) or while a worker holds one of its deliveries, whose outcome
    would then have nowhere to go. Flushes, does not commit."""
    if target.enabled:
        raise ForwardingError("disable the target before deleting it")
    sending = db.session.scalar(
        sa.select(ForwardDelivery.id)
        .where(ForwardDelivery.target_id == target.id, ForwardDelivery.lease_until > (now or now_utc()))
        .limit(1)
    )
    if sending is not None:
        raise ForwardingError("a worker is sending one of its deliveries right now; try again in a minute")
    db.session.delete(target)  # the database deletes its deliveries and attempts (ON DELETE CASCADE)
    db.session.flush()


def _stop_pending(target_id: int, reason: str) -> int:
    result = db.session.execute(
        sa.update(ForwardDelivery)
        .where(ForwardDelivery.target_id == target_id, ForwardDelivery.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.FAILED, last_error=f"stopped: {reason}")
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


# -- the outbox ------------------------------------------------------------------------------------


def enqueue(event_ids: Iterable[int]) -> int:
    """Queue the stored events ``event_ids`` for every enabled target that wants them; answers how many
    deliveries were added. Called by the webhook ingest inside its transaction: flushes, never commits.

    An event goes to the targets of the pages whose onboarding owns its WABA: one whose ``confirm_ids``
    step proved the customer granted that WABA (or that Meta reported, ``source='webhook'``), until it
    is offboarded. Queuing the same event twice adds nothing (unique target and event).
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
    confirmed = sa.exists().where(
        OnboardingStep.onboarding_id == Onboarding.id,
        OnboardingStep.name == "confirm_ids",
        OnboardingStep.status == StepStatus.OK,
    )
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
    routes = (
        sa.select(ForwardingTarget.id.label("target_id"), events.c.id.label("event_id"))
        .join(Onboarding, Onboarding.waba_id == events.c.waba_id)
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
        raise ForwardingError(f"only failed deliveries can be replayed; this one is {delivery.status}")
    if not delivery.target.enabled:
        raise ForwardingError("the target is disabled: enable it before replaying its deliveries")
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.first_attempted_at = None
    delivery.next_attempt_at = now_utc()
    delivery.lease_until = None
    db.session.flush()


def replay_failed(target: ForwardingTarget) -> int:
    """``replay`` every failed or dead delivery of ``target``; answers how many. Flushes, does not commit."""
    if not target.enabled:
        raise ForwardingError("the target is disabled: enable it before replaying its deliveries")
    result = db.session.execute(
        sa.update(ForwardDelivery)
        .where(ForwardDelivery.target_id == target.id, ForwardDelivery.status.in_(UNDELIVERED))
        .values(status=DeliveryStatus.PENDING, attempts=0, first_attempted_at=None, next_attempt_at=now_utc(),
                lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def send_test_event(target: ForwardingTarget, *, clock: Callable[[], datetime] = now_utc) -> ForwardDelivery:
    """Send a test event to ``target`` now and answer its delivery, with the attempt's outcome.

    The delivery is committed (leased to us) before the request, so a crash mid-way leaves it to a
    worker. A test event is tried once: it reports, it does not retry.
    """
    if not target.enabled:
        raise ForwardingError("the target is disabled: enable it before sending a test event")
    now = clock()
    lease = timedelta(seconds=current_app.config["FORWARD_LEASE_SECONDS"])
    delivery = ForwardDelivery(target_id=target.id, event_id=None, message_id=new_message_id(),
                               status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now,
                               lease_until=now + lease, created_at=now)
    db.session.add(delivery)
    db.session.flush()
    (job,) = _load_jobs([delivery.id])
    db.session.commit()
    sender = Sender.from_config(current_app.config, pool_size=1)
    try:
        result = sender.send(job, clock)
    finally:
        sender.close()
    record_outcomes([(job, result)], clock())
    db.session.commit()
    db.session.refresh(delivery)
    return delivery


# -- recording -------------------------------------------------------------------------------------


def retry_delay(attempts: int, retry_after: timedelta | None = None) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt: the schedule with jitter, and never
    less than the receiver's ``Retry-After`` (capped)."""
    base = RETRY_SCHEDULE[attempts - 1] if attempts <= len(RETRY_SCHEDULE) else LATER_RETRY_EVERY
    delay = base * random.uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None:
        delay = max(delay, min(retry_after, RETRY_AFTER_CAP))
    return delay


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """``Retry-After`` as a wait: delay-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=min(int(value), RETRY_AFTER_CAP.total_seconds()))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))


def next_state(job: Job, result: AttemptResult, now: datetime) -> tuple[str, datetime | None]:
    """The status a delivery moves to after ``result``, and when to try again if it stays pending."""
    if result.outcome == Outcome.DELIVERED:
        return DeliveryStatus.DELIVERED, None
    if result.outcome != Outcome.RETRY or job.is_test:
        return DeliveryStatus.FAILED, None
    if now - (job.first_attempted_at or result.attempted_at) >= RETRY_WINDOW:
        return DeliveryStatus.DEAD, None
    return DeliveryStatus.PENDING, now + retry_delay(job.attempts + 1, parse_retry_after(result.retry_after, now))


def record_outcomes(finished: list[tuple[Job, AttemptResult]], now: datetime) -> list[str]:
    """Log the attempts and move their deliveries on; answers their new statuses. The caller commits.

    The same few statements whatever the number of deliveries (a worker records what finished
    together at once), and writes only, so on SQLite they queue for the write lock instead of failing.
    A delivery changes only while our lease on it holds: a worker that lost it just logs the attempt.
    """
    table = ForwardDelivery.__table__
    deliveries, attempts, statuses = [], [], []
    failing_from: dict[int, datetime] = {}
    recovered: set[int] = set()
    gone: set[int] = set()
    for job, result in finished:
        status, next_attempt_at = next_state(job, result, now)
        statuses.append(status)
        deliveries.append({
            "b_id": job.delivery_id, "b_lease": job.lease_until, "b_status": status, "b_next": next_attempt_at,
            "b_first": result.attempted_at, "b_code": result.status_code, "b_error": result.error,
            "b_delivered": now if status == DeliveryStatus.DELIVERED else None,
        })
        attempts.append({
            "delivery_id": job.delivery_id, "attempted_at": result.attempted_at, "status_code": result.status_code,
            "duration_ms": result.duration_ms, "response_excerpt": result.excerpt, "error": result.error,
        })
        # A target's failing streak starts at its first failure after a success and ends at a success;
        # left alone when the target already was in that state as the job was loaded (the common case).
        if status == DeliveryStatus.DELIVERED and job.target_failing:
            recovered.add(job.target_id)
        elif status != DeliveryStatus.DELIVERED and not job.target_failing:
            failing_from[job.target_id] = min(result.attempted_at, failing_from.get(job.target_id, result.attempted_at))
        if result.outcome == Outcome.GONE:
            gone.add(job.target_id)
        if status != DeliveryStatus.DELIVERED:
            logger.info("forward delivery %s to target %s: %s (%s)", job.delivery_id, job.target_id, status,
                        result.error)

    moved = db.session.execute(
        sa.update(table)
        .where(table.c.id == sa.bindparam("b_id"), table.c.lease_until == sa.bindparam("b_lease"))
        .values(
            status=sa.bindparam("b_status"),
            attempts=table.c.attempts + 1,
            next_attempt_at=sa.func.coalesce(sa.bindparam("b_next", type_=table.c.next_attempt_at.type),
                                             table.c.next_attempt_at),
            lease_until=None,
            first_attempted_at=sa.func.coalesce(table.c.first_attempted_at,
                                                sa.bindparam("b_first", type_=table.c.first_attempted_at.type)),
            last_status_code=sa.bindparam("b_code"),
            last_error=sa.bindparam("b_error"),
            delivered_at=sa.bindparam("b_delivered"),
        ),
        deliveries,
    ).rowcount
    if 0 <= moved < len(deliveries):
        logger.warning("forwarding: the lease of %d delivery(ies) ended before their outcome was recorded; "
                       "another worker owns them now, so only the attempts are logged", len(deliveries) - moved)
    db.session.execute(sa.insert(ForwardAttempt.__table__), attempts)

    targets = ForwardingTarget.__table__
    if recovered:
        db.session.execute(sa.update(targets)
                           .where(targets.c.id.in_(sorted(recovered)), targets.c.failing_since.is_not(None))
                           .values(failing_since=None))
    for target_id, since in failing_from.items():
        db.session.execute(sa.update(targets).where(targets.c.id == target_id, targets.c.failing_since.is_(None))
                           .values(failing_since=since))
    for target_id in gone:
        reason = f"the receiver answered 410 Gone on {now:%Y-%m-%d %H:%M} UTC"
        db.session.execute(sa.update(targets).where(targets.c.id == target_id, targets.c.enabled.is_(True))
                           .values(enabled=False, disabled_reason=reason))
        _stop_pending(target_id, "target disabled: " + reason)
        logger.warning("forwarding target %s disabled: its receiver answered 410 Gone", target_id)
    return statuses


def _record_target_disabled(job: Job) -> str:
    """A delivery claimed after its target was disabled: failed without an attempt; commits."""
    db.session.execute(
        sa.update(ForwardDelivery)
        .where(ForwardDelivery.id == job.delivery_id, ForwardDelivery.lease_until == job.lease_until)
        .values(status=DeliveryStatus.FAILED, lease_until=None, last_error="stopped: target disabled")
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return DeliveryStatus.FAILED


# -- the worker ------------------------------------------------------------------------------------


def claim(limit: int, now: datetime, lease: timedelta) -> list[Job]:
    """Lease up to ``limit`` due deliveries to this worker and answer them ready to send; commits.

    PostgreSQL skips rows another worker is claiming at this moment (``FOR UPDATE SKIP LOCKED``), and a
    claimed row stays out of every claim until its lease ends. SQLite runs one writer at a time.
    """
    due = (
        sa.select(ForwardDelivery.id)
        .where(
            ForwardDelivery.status == DeliveryStatus.PENDING,
            ForwardDelivery.next_attempt_at <= now,
            sa.or_(ForwardDelivery.lease_until.is_(None), ForwardDelivery.lease_until < now),
        )
        .order_by(ForwardDelivery.next_attempt_at)
        .limit(limit)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = db.session.scalars(
        sa.update(ForwardDelivery)
        .where(ForwardDelivery.id.in_(due))
        .values(lease_until=now + lease)
        .returning(ForwardDelivery.id)
        .execution_options(synchronize_session=False)
    ).all()
    jobs = _load_jobs(ids) if ids else []
    db.session.commit()  # nothing is held open while we send
    return jobs


def _load_jobs(ids: list[int]) -> list[Job]:
    rows = db.session.execute(
        sa.select(ForwardDelivery, ForwardingTarget, WebhookEvent)
        .join(ForwardingTarget, ForwardDelivery.target_id == ForwardingTarget.id)
        .outerjoin(WebhookEvent, ForwardDelivery.event_id == WebhookEvent.id)
        .where(ForwardDelivery.id.in_(ids))
        .order_by(ForwardDelivery.next_attempt_at)
        # The rows as the claim just left them (their lease), even if this session had them loaded.
        .execution_options(populate_existing=True)
    ).all()
    jobs = [
        Job(delivery_id=delivery.id, target_id=target.id, message_id=delivery.message_id, url=target.url,
            secret=target.secret, body=payload(event, delivery.created_at), attempts=delivery.attempts,
            first_attempted_at=delivery.first_attempted_at, lease_until=delivery.lease_until,
            is_test=delivery.event_id is None, target_enabled=target.enabled,
            target_failing=target.failing_since is not None)
        for delivery, target, event in rows
    ]
    return jobs


@dataclass
class WorkerStats:
    """What a worker run did, by the status each delivery ended the attempt in."""

    counts: dict[str, int] = field(default_factory=dict)
    #: Deliveries whose outcome could not be recorded: they go again once their lease ends.
    errors: int = 0

    def add(self, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1

    @property
    def attempted(self) -> int:
        return sum(self.counts.values())

    def __str__(self) -> str:
        parts = ", ".join(f"{count} {status}" for status, count in sorted(self.counts.items())) or "nothing sent"
        return parts + (f", {self.errors} not recorded" if self.errors else "")


def run_worker(batch_size: int = DEFAULT_BATCH_SIZE, once: bool = False, stop_event: threading.Event | None = None,
               *, poll_interval: float = 1.0, clock: Callable[[], datetime] = now_utc) -> WorkerStats:
    """Send due deliveries until ``stop_event`` is set (or, with ``once``, until none is due).

    Up to ``batch_size`` requests are in flight at once, each in a thread of its own; a slow receiver
    holds one of them, not the others. Only this thread touches the database. Needs an app context.
    """
    stop_event = stop_event or threading.Event()
    lease = timedelta(seconds=current_app.config["FORWARD_LEASE_SECONDS"])
    sender = Sender.from_config(current_app.config, pool_size=batch_size)
    stats = WorkerStats()
    in_flight: dict[Future, Job] = {}
    claim_at_least = max(1, batch_size // 4)
    drained = False  # with ``once``: a claim found nothing due, so finish what is in flight and stop
    with ThreadPoolExecutor(batch_size, thread_name_prefix="esu-forward") as pool:
        try:
            while True:
                # Claim in handfuls rather than one slot at a time: fewer transactions per delivery.
                if not (drained or stop_event.is_set()) and (batch_size - len(in_flight) >= claim_at_least
                                                             or not in_flight):
                    try:
                        jobs = claim(batch_size - len(in_flight), clock(), lease)
                    except SQLAlchemyError:
                        db.session.rollback()
                        if once:
                            raise
                        logger.exception("forwarding: could not claim deliveries; trying again shortly")
                        stop_event.wait(poll_interval)
                        continue
                    drained = once and not jobs
                    for job in jobs:
                        if job.target_enabled:
                            in_flight[pool.submit(sender.send, job, clock)] = job
                        else:
                            stats.add(_record_target_disabled(job))
                if not in_flight:
                    if drained or stop_event.is_set():
                        break
                    if not once:
                        stop_event.wait(poll_interval)
                    continue
                done, _ = wait(in_flight, timeout=poll_interval, return_when=FIRST_COMPLETED)
                _record_finished([(in_flight.pop(future), future) for future in done], clock(), stats)
        finally:
            sender.close()
    return stats


def _record_finished(finished: list[tuple[Job, Future]], now: datetime, stats: WorkerStats) -> None:
    """Record the attempts that just finished, in one transaction. If that fails, their leases still
    hold: they are sent again, with the same ``webhook-id``, once the leases end (at-least-once)."""
    if not finished:
        return
    try:
        statuses = record_outcomes([(job, future.result()) for job, future in finished], now)
        db.session.commit()
    except Exception:
        db.session.rollback()
        stats.errors += len(finished)
        logger.exception("forwarding: the outcome of deliveries %s was not recorded; they will be sent again "
                         "once their leases end", [job.delivery_id for job, _ in finished])
        return
    for status in statuses:
        stats.add(status)


def start_background_worker(app, *, batch_size: int = DEFAULT_BATCH_SIZE,
                            poll_interval: float = 1.0) -> Callable[[], None]:
    """Run the worker in a daemon thread of this process (the demo does); answers a function that stops
    it and waits for what is in flight."""
    stop_event = threading.Event()

    def work() -> None:
        with app.app_context():
            run_worker(batch_size, stop_event=stop_event, poll_interval=poll_interval)

    thread = threading.Thread(target=work, name="esu-forward-worker", daemon=True)
    thread.start()

    def stop() -> None:
        stop_event.set()
        thread.join(timeout=sum(app.config["FORWARD_TIMEOUT"]) + poll_interval + 5)

    return stop


# -- what the admin reads --------------------------------------------------------------------------


def failing_targets(since: timedelta = FAILING_FLAG_AFTER, *, now: datetime | None = None) -> list[ForwardingTarget]:
    """Enabled targets whose deliveries have failed, with no success, for at least ``since``."""
    cutoff = (now or now_utc()) - since
    return list(db.session.scalars(
        sa.select(ForwardingTarget)
        .options(joinedload(ForwardingTarget.page))  # the dashboard names each one's page
        .where(ForwardingTarget.enabled.is_(True), ForwardingTarget.failing_since <= cutoff)
        .order_by(ForwardingTarget.failing_since)
    ))


def deliveries(target: ForwardingTarget, *, status: str | Iterable[str] | None = None, limit: int = 50,
               before_id: int | None = None, with_attempts: bool = False) -> list[ForwardDelivery]:
    """A target's deliveries, newest first; ``status`` one or several (``UNDELIVERED`` for the failed).
    ``with_attempts`` loads each one's attempts and its event's field too, in two more queries in all."""
    query = sa.select(ForwardDelivery).where(ForwardDelivery.target_id == target.id)
    if with_attempts:
        query = query.options(selectinload(ForwardDelivery.attempt_log),
                              selectinload(ForwardDelivery.event).load_only(WebhookEvent.field))
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        query = query.where(ForwardDelivery.status.in_(statuses))
    if before_id is not None:
        query = query.where(ForwardDelivery.id < before_id)
    return list(db.session.scalars(query.order_by(ForwardDelivery.id.desc()).limit(limit)))


def delivery_counts(target: ForwardingTarget) -> dict[str, int]:
    """How many of a target's deliveries are in each status."""
    rows = db.session.execute(
        sa.select(ForwardDelivery.status, sa.func.count())
        .where(ForwardDelivery.target_id == target.id)
        .group_by(ForwardDelivery.status)
    )
    return {status: count for status, count in rows}


@dataclass
class TargetSummary:
    """A target as a signup page's admin lists it: deliveries per status and the latest attempt."""

    target: ForwardingTarget
    counts: dict[str, int]
    last_attempt: ForwardAttempt | None


def page_targets(page: SignupPage) -> list[TargetSummary]:
    """``page``'s targets, oldest first, each with its delivery counts and latest attempt: three queries
    however many targets there are."""
    attempts, outbox = ForwardAttempt.__table__, ForwardDelivery.__table__
    # Ordered by id and limited, so the database can stop at the newest attempt instead of reading all.
    latest = (
        sa.select(attempts.c.id)
        .join(outbox, outbox.c.id == attempts.c.delivery_id)
        .where(outbox.c.target_id == ForwardingTarget.id)
        .order_by(attempts.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = db.session.execute(
        sa.select(ForwardingTarget, latest).where(ForwardingTarget.page_id == page.id).order_by(ForwardingTarget.id)
    ).all()
    if not rows:
        return []
    counts: dict[int, dict[str, int]] = {target.id: {} for target, _ in rows}
    for target_id, status, count in db.session.execute(
        sa.select(ForwardDelivery.target_id, ForwardDelivery.status, sa.func.count())
        .where(ForwardDelivery.target_id.in_(list(counts)))
        .group_by(ForwardDelivery.target_id, ForwardDelivery.status)
    ):
        counts[target_id][status] = count
    attempt_ids = [attempt_id for _, attempt_id in rows if attempt_id is not None]
    last = {attempt.id: attempt for attempt in db.session.scalars(
        sa.select(ForwardAttempt).where(ForwardAttempt.id.in_(attempt_ids)))} if attempt_ids else {}
    return [TargetSummary(target, counts[target.id], last.get(attempt_id)) for target, attempt_id in rows]
