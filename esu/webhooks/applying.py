"""Applying stored events to their records, and recording each one's outcome on the event.

A batch is applied all at once, its records loaded in a few queries, without a savepoint: nearly every
batch applies cleanly, and pays for none. Should one event fail, the caller rolls the batch back and
stores it again, applying its events one by one, each in its own savepoint, so that only the failing one
is ``failed``; it never costs the stored event or the 200. Functions here flush and never commit.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from ..extensions import db, is_database_unavailable
from ..models import WebhookEvent, now_utc
from .appliers import APPLIERS
from .records import Event, Records, unnamed
from .sql import describe
from .values import FAILED, STORED

log = logging.getLogger(__name__)

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
            _apply_to(event, records)
        records.write()
        db.session.flush()
    except Exception as error:
        if is_database_unavailable(error):
            raise
        raise ApplyFailed(describe(error)) from error
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
                _apply_to(event, records)
                records.write()
        except Exception as error:
            if is_database_unavailable(error):
                raise
            log.warning("webhook event %s (%s) could not be applied: %s", event.id, event.field,
                        describe(error))
            event.reset()
            event.status, event.error = FAILED, describe(error)
    _record_outcomes(events)


def _apply_to(event: Event, records: Records) -> None:
    """The field's applier, unless the change names no record to apply it to: then it is ignored."""
    reason = unnamed(event)
    if reason is None:
        APPLIERS[event.field](event, records)
    else:
        event.ignore(reason)


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
