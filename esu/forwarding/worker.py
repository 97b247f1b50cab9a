"""The worker (``flask --app wsgi forward``, or a thread of the demo's process): it claims due deliveries
with a lease, sends them without holding a transaction, up to ``batch_size`` at once, each in a thread
of its own, and records what finished in short transactions. Any number of workers may run on
PostgreSQL (``FOR UPDATE SKIP LOCKED``); run a single one on SQLite, which has one writer at a time.
``send_test_event`` sends one delivery the same way, at once, for the admin. Between its claims the
worker also does the chores it is given (:class:`Chore`): ``flask forward`` gives it the retention pass.

A claim leases and loads its deliveries in one transaction, the worker claims in handfuls (a quarter of
the batch) rather than a free slot at a time, and what finishes together is recorded together: a few
transactions per handful of deliveries rather than per delivery. With all of it, to a receiver that
answers at once (``bench/forward.py``, a 2-core machine), one worker sends about 645 deliveries a second
on SQLite and 613 on PostgreSQL, two workers 868 on PostgreSQL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db
from ..models import WebhookEvent, now_utc
from ..models.forwarding import DeliveryStatus, ForwardDelivery, ForwardingTarget
from .errors import ForwardingError
from .recording import record_outcomes, record_target_disabled
from .sending import DEFAULT_BATCH_SIZE, Job, Sender
from .signing import new_message_id, payload

logger = logging.getLogger(__name__)


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
            target_failing=target.failing_since is not None, previous_secret=target.previous_secret,
            previous_secret_until=target.previous_secret_until)
        for delivery, target, event in rows
    ]
    return jobs


@dataclass
class Chore:
    """Work the worker does between its claims, on its own thread, every ``every`` (the first time at
    once). ``run`` answers whether it stopped with more left to do: then it runs again at the next turn
    rather than after ``every``, so that a long chore is done in pieces, between deliveries."""

    name: str
    run: Callable[[], bool]
    every: timedelta
    due_at: datetime | None = None

    def run_if_due(self, now: datetime) -> None:
        if self.due_at is not None and now < self.due_at:
            return
        try:
            more = self.run()
        except Exception:
            db.session.rollback()
            logger.exception("forwarding worker: the %s failed; it runs again in %s", self.name, self.every)
            more = False
        self.due_at = now if more else now + self.every


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
               *, poll_interval: float = 1.0, clock: Callable[[], datetime] = now_utc,
               chores: Sequence[Chore] = ()) -> WorkerStats:
    """Send due deliveries until ``stop_event`` is set (or, with ``once``, until none is due), doing the
    ``chores`` when they are due.

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
                for chore in chores:
                    chore.run_if_due(clock())
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
                            stats.add(record_target_disabled(job))
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
                            poll_interval: float = 1.0, chores: Sequence[Chore] = ()) -> Callable[[], None]:
    """Run the worker in a daemon thread of this process (the demo does); answers a function that stops
    it and waits for what is in flight."""
    stop_event = threading.Event()

    def work() -> None:
        with app.app_context():
            run_worker(batch_size, stop_event=stop_event, poll_interval=poll_interval, chores=chores)

    thread = threading.Thread(target=work, name="esu-forward-worker", daemon=True)
    thread.start()

    def stop() -> None:
        stop_event.set()
        thread.join(timeout=sum(app.config["FORWARD_TIMEOUT"]) + poll_interval + 5)

    return stop


def send_test_event(target: ForwardingTarget, *, clock: Callable[[], datetime] = now_utc) -> ForwardDelivery:
    """Send a test event to ``target`` now and answer its delivery, with the attempt's outcome.

    The delivery is committed (leased to us) before the request, so a crash mid-way leaves it to a
    worker. A test event is tried once: it reports, it does not retry.
    """
    if not target.enabled:
        raise ForwardingError(gettext("the target is disabled: enable it before sending a test event"))
    now = clock()
    lease = timedelta(seconds=current_app.config["FORWARD_LEASE_SECONDS"])
    delivery = ForwardDelivery(target_id=target.id, event_id=None, message_id=new_message_id(),
                               status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now,
                               lease_until=now + lease, created_at=now)
    db.session.add(delivery)
    db.session.flush()
    return send_leased(delivery, clock)


def send_leased(delivery: ForwardDelivery, clock: Callable[[], datetime] = now_utc) -> ForwardDelivery:
    """Send one delivery whose lease this process holds, at once, and record its outcome (the admin's test
    event and Send now): committed before the send, as a worker's claim is."""
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
