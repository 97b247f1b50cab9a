"""What the admin does by hand besides the worker's schedule: send a delivery waiting for its next try now,
and replay everything a target failed since a given time (Standard Webhooks recommends both: "manually
replay specific webhooks or failures within a range", the spec's "Visibility into failures and manual
retries")."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext

from ..extensions import db
from ..models import now_utc
from ..models.forwarding import DeliveryStatus, ForwardDelivery, ForwardingTarget
from .errors import ForwardingError
from .outbox import UNDELIVERED
from .worker import send_leased


def send_now(delivery: ForwardDelivery, *, clock: Callable[[], datetime] = now_utc) -> ForwardDelivery:
    """Send a pending delivery (one waiting for its next try) at once, and answer it with the outcome,
    recorded as the worker records any attempt: a failure goes back on the retry schedule.

    The delivery is leased to this request first, in its own commit, exactly as a worker claims it: a
    worker sending it right now, or one that claims it meanwhile, never sends it twice. Commits."""
    if delivery.status != DeliveryStatus.PENDING:
        raise ForwardingError(gettext("only a delivery waiting to be sent can be sent now; this one is %(status)s",
                                      status=delivery.status))
    if not delivery.target.enabled:
        raise ForwardingError(gettext("the target is disabled: enable it before sending its deliveries"))
    now = clock()
    lease = timedelta(seconds=current_app.config["FORWARD_LEASE_SECONDS"])
    leased = db.session.scalar(
        sa.update(ForwardDelivery)
        .where(
            ForwardDelivery.id == delivery.id,
            ForwardDelivery.status == DeliveryStatus.PENDING,
            sa.or_(ForwardDelivery.lease_until.is_(None), ForwardDelivery.lease_until < now),
        )
        .values(lease_until=now + lease)
        .returning(ForwardDelivery.id)
        .execution_options(synchronize_session=False)
    )
    if leased is None:
        db.session.rollback()
        raise ForwardingError(gettext("a worker is sending it right now; its outcome shows here in a moment"))
    return send_leased(delivery, clock)


def replay_since(target: ForwardingTarget, since: datetime, *, now: datetime | None = None) -> int:
    """Queue again every failed or dead delivery of ``target`` queued at or after ``since`` (an outage's
    start), each from a fresh retry window with its own ``webhook-id``; answers how many. Flushes, does not
    commit."""
    if not target.enabled:
        raise ForwardingError(gettext("the target is disabled: enable it before replaying its deliveries"))
    now = now or now_utc()
    if since > now:
        raise ForwardingError(gettext("that time is in the future: nothing has failed since then yet"))
    result = db.session.execute(
        sa.update(ForwardDelivery)
        .where(
            ForwardDelivery.target_id == target.id,
            ForwardDelivery.status.in_(UNDELIVERED),
            ForwardDelivery.created_at >= since,
        )
        .values(
            status=DeliveryStatus.PENDING, attempts=0, first_attempted_at=None, next_attempt_at=now, lease_until=None
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
