"""What an attempt comes to: the delivery delivered, tried again later on the retry schedule, failed,
or given up (``dead``) once the retry window is over; the attempt logged; the target's failing streak
begun or ended, and a target whose receiver answers 410 Gone disabled.

Attempts that finish together are recorded together, in the same few statements however many there
are, and those statements only write, so on SQLite they queue for the write lock instead of failing. A
delivery changes only while the recording worker's lease on it holds.
"""

from __future__ import annotations

import email.utils
import logging
import random
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from ..extensions import db
from ..models.forwarding import DeliveryStatus, ForwardAttempt, ForwardDelivery, ForwardingTarget
from .sending import AttemptResult, Job, Outcome
from .targets import stop_pending

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
    if value.isascii() and value.isdigit():
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
        stop_pending(target_id, "target disabled: " + reason)
        logger.warning("forwarding target %s disabled: its receiver answered 410 Gone", target_id)
    return statuses


def record_target_disabled(job: Job) -> str:
    """A delivery claimed after its target was disabled: failed without an attempt; commits."""
    db.session.execute(
        sa.update(ForwardDelivery)
        .where(ForwardDelivery.id == job.delivery_id, ForwardDelivery.lease_until == job.lease_until)
        .values(status=DeliveryStatus.FAILED, lease_until=None, last_error="stopped: target disabled")
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return DeliveryStatus.FAILED
