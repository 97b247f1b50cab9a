"""What the rest of esu reads from the stored changes."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from ..extensions import db
from ..models import WebhookEvent


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
