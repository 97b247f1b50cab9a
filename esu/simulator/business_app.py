"""What Meta sends after a WhatsApp Business app number's one-shot syncs (coexistence): the
``smb_app_state_sync`` webhooks with the app's contacts, and the ``history`` webhooks with its chats, or the
one that says the business declined to share them (error 2593109).

"Onboard WhatsApp Business app users" (meta-docs/embedded-signup/onboard-whatsapp-business-app-users.md,
"Synchronizing WhatsApp Business app data" and "Webhooks"), and the history webhook reference
(meta-docs/webhooks/reference/history-webhook-reference.md): the ``smb_app_data`` answer only says the request
was accepted; what was synced comes afterwards, as webhooks on the number's WABA, naming the number in the
change's ``metadata``. History comes in phases (0: day 0–1, 1: day 1–90, 2: day 90–180 before onboarding),
each in chunks with the overall ``progress`` in percent (100: done); a message with media is a
``media_placeholder`` in its thread, its contents in a later history webhook of their own. The docs' examples
carry no ``time`` on these entries, so neither does the simulator.
"""

from __future__ import annotations

import secrets
from typing import Any

from .objects import Phone
from .webhooks import sender

DAY = 86400
#: The WhatsApp users in the simulated business app: (full name, first name, number).
CONTACTS = (("Pablo Morales", "Pablo", "16505551234"), ("Ana Souza", "Ana", "5511955550123"),
            ("Budi Santoso", "Budi", "6281255550199"))
#: The history phases the simulator fills, with the ``progress`` reached once each is sent and how many days
#: before onboarding its messages are.
PHASES = ((0, 40, 0), (1, 80, 30), (2, 100, 120))
#: The ``history`` webhook when the business turned history sharing off (the docs' payload, verbatim).
DECLINED_ERROR = {
    "code": 2593109,
    "title": "History sync is turned off by the business from the WhatsApp Business App",
    "message": "History sync is turned off by the business from the WhatsApp Business App",
    "error_data": {"details": "History sharing is turned off by the business"},
}


def send_after_response(phone: Phone, sync_type: str, now: float) -> None:
    """Queue what Meta sends after the ``sync_type`` sync of ``phone``, to go once this answer is out."""
    values = contacts(phone, now) if sync_type == "smb_app_state_sync" else history(phone, now)
    for value in values:
        sender().send_after_response(_envelope(phone, sync_type, value))


def contacts(phone: Phone, now: float) -> list[dict[str, Any]]:
    """One ``smb_app_state_sync`` webhook listing the app's contacts, each ``add``."""
    return [{**_header(phone), "state_sync": [
        {"type": "contact", "contact": {"full_name": full, "first_name": first, "phone_number": number},
         "action": "add", "metadata": {"timestamp": str(int(now))}}
        for full, first, number in CONTACTS]}]


def history(phone: Phone, now: float) -> list[dict[str, Any]]:
    """The ``history`` webhooks: one chunk per phase, then the media placeholder's contents; or, when the
    business declined, the one webhook with error 2593109."""
    if not phone.shares_history:
        return [{**_header(phone), "history": [{"errors": [DECLINED_ERROR]}]}]
    business = _digits(phone.display_phone_number)
    values = []
    media = None
    for phase, progress, days_before in PHASES:
        at = int(now) - days_before * DAY - 3600
        threads = []
        for index, (_full, first, number) in enumerate(CONTACTS):
            messages = [
                _message(number, at + index * 60, "READ", text=f"Hi, is my order ready? ({first})"),
                _message(business, at + index * 60 + 30, "DELIVERED", text="Yes, you can pick it up today."),
            ]
            if phase == 0 and index == 0:
                # Within the 14 days Meta sends media for: its contents follow in a webhook of their own.
                media = _message(number, at + 90, "READ")
                messages.append({**media, "type": "media_placeholder"})
            threads.append({"id": number, "messages": messages})
        values.append({**_header(phone), "history": [
            {"metadata": {"phase": phase, "chunk_order": 1, "progress": progress}, "threads": threads}]})
    if media is not None:
        values.append({**_header(phone), "messages": [{
            key: media[key] for key in ("from", "id", "timestamp")} | {"type": "image", "image": {
                "caption": "The one I ordered", "mime_type": "image/jpeg",
                "sha256": secrets.token_hex(32), "id": str(10**15 + secrets.randbelow(9 * 10**15))}}]})
    return values


def _message(sender_number: str, at: int, status: str, *, text: str | None = None) -> dict[str, Any]:
    """A message in a thread; one from the business carries no ``to``, as in the docs' example."""
    message: dict[str, Any] = {"from": sender_number, "id": "wamid." + secrets.token_urlsafe(30),
                               "timestamp": str(at)}
    if text is not None:
        message |= {"type": "text", "text": {"body": text}}
    message["history_context"] = {"status": status}
    return message


def _header(phone: Phone) -> dict[str, Any]:
    return {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": _digits(phone.display_phone_number), "phone_number_id": phone.id}}


def _envelope(phone: Phone, field: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"object": "whatsapp_business_account",
            "entry": [{"id": phone.waba_id, "changes": [{"value": value, "field": field}]}]}


def _digits(number: str) -> str:
    return "".join(character for character in number if character.isdigit())
