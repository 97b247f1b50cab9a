"""What the admin reads about forwarding: the targets failing for a day (the dashboard), a page's targets
with their delivery counts and latest attempt, a target's deliveries and their counts. Each answers in
a set number of queries, however many targets or deliveries there are."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from ..extensions import db
from ..models import SignupPage, WebhookEvent, now_utc
from ..models.forwarding import ForwardAttempt, ForwardDelivery, ForwardingTarget

#: A target failing this long without a success is flagged on the admin's dashboard.
FAILING_FLAG_AFTER = timedelta(days=1)


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
