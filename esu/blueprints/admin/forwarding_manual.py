"""A target's deliveries sent by hand: "Send now" for one waiting for its next try, and replay of every
delivery the target failed since a given time (after an outage at the client's end)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, flash, request
from flask_babel import gettext, ngettext

from ... import forwarding as forwarding_service
from ...extensions import db
from ...forwarding import ForwardingError
from ...models import now_utc
from ...models.forwarding import DeliveryStatus
from . import bp, record
from .forwarding import back_to_list, delivery_of_target, describe, target_or_404

#: What the replay form's time looks like (a browser's datetime-local), in words for a refusal.
SINCE_EXAMPLE = "2026-12-07T09:30"


def parse_since(text: str | None) -> datetime:
    """The replay form's time: ISO 8601, in UTC unless it names its offset. 400 in plain words otherwise."""
    text = (text or "").strip()
    if not text:
        abort(400, description=gettext("Say since when to replay: a date and time in UTC, like %(example)s.",
                                        example=SINCE_EXAMPLE))
    try:
        since = datetime.fromisoformat(text)
    except ValueError:
        abort(400, description=gettext(
            "“%(text)s” is not a date and time esu can read: write it like %(example)s (UTC).", text=text[:40],
            example=SINCE_EXAMPLE))
    return since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)


@bp.post("/forwarding/<int:target_id>/replay-since")
def replay_since(target_id: int):
    """Queue again every failed or dead delivery of the target queued since the time given (UTC)."""
    forwarding_target = target_or_404(target_id)
    since = parse_since(request.form.get("since"))
    if since > now_utc():
        abort(400, description=gettext("%(since)s UTC is in the future: nothing has failed since then yet.",
                                        since=since.strftime("%Y-%m-%d %H:%M")))
    try:
        queued = forwarding_service.replay_since(forwarding_target, since)
    except ForwardingError as error:
        flash(gettext("Nothing replayed: %(error)s.", error=error), "error")
        return back_to_list(target_id)
    record(
        "replayed_deliveries_since",
        detail=f"{describe(forwarding_target)}, since {since:%Y-%m-%d %H:%M} UTC, {queued} queued",
        page=forwarding_target.page,
    )
    db.session.commit()
    flash(
        ngettext("Queued %(num)d failed delivery since %(since)s UTC to be sent again; the forwarding worker sends "
                 "it shortly.",
                 "Queued %(num)d failed deliveries since %(since)s UTC to be sent again; the forwarding worker sends "
                 "them shortly.", queued, since=since.strftime("%Y-%m-%d %H:%M")),
        "ok",
    )
    return back_to_list(target_id)


@bp.post("/forwarding/<int:target_id>/deliveries/<int:delivery_id>/send-now")
def send_delivery_now(target_id: int, delivery_id: int):
    """Send a delivery waiting for its next try now, and say how the receiver answered."""
    delivery = delivery_of_target(target_id, delivery_id)
    target = delivery.target
    try:
        delivery = forwarding_service.send_now(delivery)
    except ForwardingError as error:
        flash(gettext("Not sent: %(error)s.", error=error), "error")
        return back_to_list(target_id)
    delivered = delivery.status == DeliveryStatus.DELIVERED
    outcome = (
        f"delivered (HTTP {delivery.last_status_code})"
        if delivered
        else f"not delivered: {delivery.last_error}; {delivery.status}"
    )  # for the log; the admin reads it in words below
    record("sent_delivery_now", detail=f"delivery {delivery.id} to {describe(target)}, {outcome}", page=target.page)
    db.session.commit()
    flash(gettext("Delivery %(id)s delivered (HTTP %(status)s).", id=delivery.id, status=delivery.last_status_code)
          if delivered else gettext("Delivery %(id)s not delivered: %(error)s; %(status)s.", id=delivery.id,
                                    error=delivery.last_error, status=delivery.status),
          "ok" if delivered else "error")
    return back_to_list(target_id)
