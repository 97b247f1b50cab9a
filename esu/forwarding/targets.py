"""A client's forwarding targets, as the admin manages them: a URL the destination policy allows, the
webhook fields it wants (none chosen: all), an enabled flag and a signing secret, shown once. Functions
here flush and never commit."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext

from ..extensions import db
from ..models import SignupPage, now_utc
from ..models.forwarding import DeliveryStatus, ForwardDelivery, ForwardingTarget
from .destinations import DestinationPolicy
from .errors import ForwardingError
from .signing import new_secret

FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
#: Meta's WhatsApp webhook fields, offered when choosing what a target receives (others are accepted too).
KNOWN_FIELDS = (
    "messages", "account_update", "account_alerts", "account_review_update", "business_capability_update",
    "message_template_status_update", "message_template_quality_update", "message_template_components_update",
    "template_category_update", "phone_number_name_update", "phone_number_quality_update", "security",
    "history", "smb_app_state_sync", "smb_message_echoes", "partner_solutions", "user_preferences",
    "payment_configuration_update", "automatic_events",
)


def _normalise_fields(fields: Iterable[str] | None) -> list[str]:
    chosen = []
    for name in fields or ():
        name = str(name).strip()
        if not FIELD_NAME.match(name):
            raise ForwardingError(gettext("'%(name)s' is not a webhook field name (lowercase letters, digits and _)",
                                              name=name))
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


def rotate_secret(target: ForwardingTarget, overlap: timedelta = timedelta(0), *,
                  now: datetime | None = None) -> str:
    """Give ``target`` a new signing secret and answer it (shown once). The one it replaces keeps signing
    beside it for ``overlap`` (none: it stops at once); a secret older than that one stops now. Flushes,
    does not commit."""
    if overlap > timedelta(0):
        target.previous_secret, target.previous_secret_until = target.secret, (now or now_utc()) + overlap
    else:
        target.previous_secret, target.previous_secret_until = None, None
    target.secret = new_secret()
    db.session.flush()
    return target.secret


def disable_target(target: ForwardingTarget, reason: str) -> int:
    """Stop forwarding to ``target``: its pending deliveries become failed (replayable once it is enabled
    again). Answers how many were stopped. Flushes, does not commit."""
    target.enabled = False
    target.disabled_reason = reason
    db.session.flush()
    return stop_pending(target.id, reason)


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
        raise ForwardingError(gettext("disable the target before deleting it"))
    sending = db.session.scalar(
        sa.select(ForwardDelivery.id)
        .where(ForwardDelivery.target_id == target.id, ForwardDelivery.lease_until > (now or now_utc()))
        .limit(1)
    )
    if sending is not None:
        raise ForwardingError(gettext("a worker is sending one of its deliveries right now; try again in a minute"))
    db.session.delete(target)  # the database deletes its deliveries and attempts (ON DELETE CASCADE)
    db.session.flush()


def stop_pending(target_id: int, reason: str) -> int:
    """Fail a target's pending deliveries as ``stopped: {reason}`` (the admin disabled it, or its receiver
    answered 410 Gone); answers how many."""
    result = db.session.execute(
        sa.update(ForwardDelivery)
        .where(ForwardDelivery.target_id == target_id, ForwardDelivery.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.FAILED, last_error=f"stopped: {reason}")
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
