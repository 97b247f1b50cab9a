"""What a WhatsApp Business app number's sync webhooks say: ``history``, that the message history is
arriving (and how far along) or that the business declined to share it (error 2593109);
``smb_app_state_sync``, that its contacts arrived.

"Onboard WhatsApp Business app users" (meta-docs/embedded-signup/onboard-whatsapp-business-app-users.md,
"history", "smb_app_state_sync"): history chunks carry ``metadata.progress`` (percent); a declined share is
one chunk with ``errors``; ``state_sync`` lists contacts, each added or removed. Meta names the number in the
change's ``metadata``.
"""

from __future__ import annotations

from ..records import Event, Records, set_if_newer, value_of
from .phone import named_phone

#: The history webhook's error when the business turned history sharing off in the app.
HISTORY_DECLINED = 2593109


def apply_history(event: Event, records: Records) -> None:
    value = value_of(event)
    chunks = [chunk for chunk in value.get("history") or [] if isinstance(chunk, dict)]
    codes = {error.get("code") for chunk in chunks for error in chunk.get("errors") or [] if isinstance(error, dict)}
    progress = [chunk["metadata"].get("progress") for chunk in chunks if isinstance(chunk.get("metadata"), dict)]
    progress = [value for value in progress if isinstance(value, int) and not isinstance(value, bool)]
    phone = named_phone(event, records)
    if phone is None:
        return
    if HISTORY_DECLINED in codes:
        set_if_newer(event, phone, "history_status_at", history_status="declined", history_progress=None)
    elif phone.history_status != "declined" or event.newer_than(phone.history_status_at):
        # Chunks come in any order: keep the furthest progress any of them reported.
        known = [*progress, *([phone.history_progress] if phone.history_progress is not None else [])]
        phone.history_status = "arrived"
        phone.history_progress = min(100, max(known)) if known else None
        if event.newer_than(phone.history_status_at):
            phone.history_status_at = event.occurred_at


def apply_smb_app_state_sync(event: Event, records: Records) -> None:
    """The contacts sync's contacts, and later each contact the business adds, edits or removes in the app:
    counted on the number, with the time of the latest."""
    changes = value_of(event).get("state_sync")
    contacts = [item for item in changes if isinstance(item, dict)] if isinstance(changes, list) else []
    phone = named_phone(event, records)
    if phone is None:
        return
    phone.contacts_received = (phone.contacts_received or 0) + len(contacts)
    if event.newer_than(phone.contacts_received_at):
        phone.contacts_received_at = event.occurred_at
