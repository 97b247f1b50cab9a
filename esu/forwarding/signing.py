"""What a receiver gets and checks, as Standard Webhooks has it: the signing secret (``whsec_…``), the
``webhook-id``, the ``webhook-signature`` over id, timestamp and body, and the JSON body itself, built
from the stored event so that every attempt sends the same bytes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime

from ..models import WebhookEvent

#: The ``field`` of the event ``send_test_event`` sends.
TEST_FIELD = "esu_test"


def new_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_message_id() -> str:
    # The outbox makes them in SQL, the same way (outbox._outbox_insert_from).
    return "msg_" + secrets.token_hex(16)


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: HMAC-SHA256 of ``{id}.{timestamp}.{body}`` with the decoded secret."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes,
                   previous_secret: str | None = None) -> dict[str, str]:
    """The request's headers. With ``previous_secret`` (a rotation's overlap) ``webhook-signature`` holds both
    signatures, the current one first, space separated: Standard Webhooks' zero-downtime rotation (the spec,
    "Webhook headers"), where a receiver tries each until one matches."""
    signatures = [sign(secret, message_id, timestamp, body)]
    if previous_secret:
        signatures.append(sign(previous_secret, message_id, timestamp, body))
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
        "Content-Type": "application/json",
        "User-Agent": "esu-forwarder/1",
    }


def payload(event: WebhookEvent | None, delivery_created_at: datetime) -> bytes:
    """The JSON body of a delivery, built from the stored event: the same bytes on every attempt."""
    if event is None:
        data = {"id": None, "field": TEST_FIELD, "waba_id": None, "phone_number_id": None,
                "occurred_at": _iso(delivery_created_at),
                "value": {"message": "A test event from esu: if its signature checks out, forwarding works."}}
    else:
        data = {"id": event.id, "field": event.field, "waba_id": event.waba_id,
                "phone_number_id": event.phone_number_id, "occurred_at": _iso(event.occurred_at),
                "value": event.value}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None
