"""Retention: the messages and statuses received more than ``ESU_RETENTION_DAYS`` ago are deleted, with
their finished forwarding deliveries and those deliveries' attempts; every other stored change is kept.

Messages and statuses are nearly all that Meta sends, and nearly all the size of ``webhook_events`` (the
README gives the size a million events take): once forwarded, nothing in esu needs them. Everything else
is kept for ever: the lifecycle events (every other field: account updates, reviews, quality, templates…),
anything linked to an onboarding, the bodies kept as unparseable, and a message whose forwarding is still
pending (it goes once delivered or given up).

Deleted a batch at a time, each batch its own short transaction (:func:`prune` commits), so that a
webhook waiting for SQLite's writer lock (at most half a second) never waits behind a long delete. The
batch is found through the index on (field, received_at): only the ``messages`` field's rows are read.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from ..extensions import db
from ..models import WebhookEvent, now_utc
from ..models.forwarding import DeliveryStatus, ForwardAttempt, ForwardDelivery

#: Events deleted in one transaction: a few milliseconds of the writer's time.
BATCH_SIZE = 500
#: The kinds of stored change that are deleted once older than the retention (``parsing``: one row per
#: message and per status of a ``messages`` change).
PRUNED_KINDS = ("message", "status")


@dataclass
class Pruned:
    """What a pass deleted, and whether it stopped at its ``max_batches`` with more left to delete."""

    events: int = 0
    deliveries: int = 0
    more: bool = False

    def __str__(self) -> str:
        return (f"{self.events} deleted, with {self.deliveries} forwarding deliveries"
                f"{' (more remain)' if self.more else ''}")


def prune(keep_days: int, *, batch_size: int = BATCH_SIZE, max_batches: int | None = None,
          now: datetime | None = None) -> Pruned:
    """Delete the messages and statuses received more than ``keep_days`` days before ``now``, with their
    finished forwarding deliveries and attempts, ``batch_size`` events a transaction, committing each; at
    most ``max_batches`` batches. ``keep_days`` 0 keeps everything."""
    pruned = Pruned()
    if keep_days <= 0:
        return pruned
    cutoff = (now or now_utc()) - timedelta(days=keep_days)
    batches = 0
    while max_batches is None or batches < max_batches:
        events, deliveries = _delete_batch(cutoff, batch_size)
        db.session.commit()
        pruned.events += events
        pruned.deliveries += deliveries
        batches += 1
        if events < batch_size:
            return pruned
    pruned.more = True
    return pruned


def _delete_batch(cutoff: datetime, batch_size: int) -> tuple[int, int]:
    """Delete one batch, oldest first; answers how many events and deliveries went."""
    ids = db.session.scalars(_prunable().where(WebhookEvent.received_at < cutoff).limit(batch_size)).all()
    if not ids:
        return 0, 0
    finished = sa.select(ForwardDelivery.id).where(ForwardDelivery.event_id.in_(ids),
                                                   ForwardDelivery.status != DeliveryStatus.PENDING)
    db.session.execute(sa.delete(ForwardAttempt).where(ForwardAttempt.delivery_id.in_(finished))
                       .execution_options(synchronize_session=False))
    deliveries = db.session.execute(sa.delete(ForwardDelivery).where(
        ForwardDelivery.event_id.in_(ids), ForwardDelivery.status != DeliveryStatus.PENDING)
        .execution_options(synchronize_session=False)).rowcount
    # Asked again: a delivery replayed since the batch was read keeps its event.
    events = db.session.execute(sa.delete(WebhookEvent).where(WebhookEvent.id.in_(ids), ~_pending_delivery())
                                .execution_options(synchronize_session=False)).rowcount
    return events, deliveries


def _pending_delivery() -> sa.Exists:
    return sa.exists().where(ForwardDelivery.event_id == WebhookEvent.id,
                             ForwardDelivery.status == DeliveryStatus.PENDING)


@functools.cache
def _prunable() -> sa.Select:
    """The ids of the stored changes retention may delete, oldest first."""
    return (sa.select(WebhookEvent.id)
            .where(WebhookEvent.field == "messages", WebhookEvent.kind.in_(PRUNED_KINDS),
                   WebhookEvent.onboarding_id.is_(None), ~_pending_delivery())
            .order_by(WebhookEvent.received_at))


def oldest_received_at() -> datetime | None:
    """When the oldest stored change still kept was received."""
    return db.session.scalar(sa.select(sa.func.min(WebhookEvent.received_at)))
