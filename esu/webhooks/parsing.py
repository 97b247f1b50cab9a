"""A signed delivery into the rows it stores: the signature check, then one row per change (per message
and per status of a ``messages`` change, and one for the rest of it: calls, echoes, errors), each under the
key that makes the same change one row however Meta batches or retries it.

The body is scanned for the escapes of strings no database can keep before the parsed body is walked to
replace them: nearly every delivery has none, and is not walked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import datetime
from typing import Any

from .values import APPLIED_FIELDS, IGNORED, STORED, UNPARSEABLE, UNSTORABLE, node_id, unix_time

SIGNATURE_HEADER = "X-Hub-Signature-256"
#: Meta's largest delivery.
MAX_BODY_BYTES = 3 * 1024 * 1024
ENVELOPE_OBJECT = "whatsapp_business_account"

_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_FIELD = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# The strings of values.UNSTORABLE can only come in JSON as \u escapes, so the bytes tell whether the
# parsed body needs a look. Paired surrogates (every escaped emoji) are fine.
_MAY_NEED_CLEANING = re.compile(
    rb"\\u0000"
    rb"|\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
_MAX_ID_KEY = 128
#: What each message's and status's row of a ``messages`` change carries of the change besides the item:
#: the number it came to, and the contact cards.
_IN_EVERY_ROW = frozenset({"messaging_product", "metadata", "contacts"})


def signature_is_valid(body: bytes, header: str | None, app_secret: str | None) -> bool:
    """Whether ``header`` is ``sha256=`` and the hex HMAC-SHA256 of exactly these bytes keyed with the app
    secret, compared in constant time. Anything else (missing, ``sha1=``, truncated, not hex) is not."""
    if not app_secret or not header:
        return False
    match = _SIGNATURE.fullmatch(header)
    if match is None:
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), match.group(1).lower().encode())


def parse_delivery(body: bytes, received_at: datetime) -> list[dict[str, Any]]:
    """The rows a signed delivery stores: one per change, except that a ``messages`` change gives one per
    message, one per status and one for anything else it holds. A body that is not Meta's envelope is a
    single ``unparseable`` row keeping the raw text, and so is each malformed entry or change (its siblings
    are kept as usual)."""
    try:
        envelope = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
        if _MAY_NEED_CLEANING.search(body):
            envelope = _clean(envelope)
    except (ValueError, RecursionError):
        envelope = None
    if (not isinstance(envelope, dict) or envelope.get("object") != ENVELOPE_OBJECT
            or not isinstance(envelope.get("entry"), list)):
        return [unparseable_row(body, received_at)]

    rows: dict[str, dict[str, Any]] = {}  # by dedupe key: the same change twice in one delivery is one row
    for entry in envelope["entry"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("changes"), list):
            row = _malformed_row(entry, received_at)
            rows.setdefault(row["dedupe_key"], row)
            continue
        for change in entry["changes"]:
            if not isinstance(change, dict) or not isinstance(change.get("field"), str) \
                    or not _FIELD.fullmatch(change["field"]):
                found = [_malformed_row({"entry_id": entry.get("id"), "change": change}, received_at)]
            else:
                found = _change_rows(change["field"], change.get("value"), entry.get("id"), entry.get("time"),
                                     received_at)
            for row in found:
                rows.setdefault(row["dedupe_key"], row)
    return list(rows.values())


def unparseable_row(body: bytes, received_at: datetime, error: str | None = None) -> dict[str, Any]:
    """A whole body kept as text, keyed by its digest so a retried one is kept once."""
    return _row(hashlib.sha256(body).hexdigest(), "delivery", None, None, status=UNPARSEABLE,
                raw=body.decode("utf-8", "backslashreplace").replace("\x00", "\\x00"), received_at=received_at,
                error=error)


def _malformed_row(item: Any, received_at: datetime) -> dict[str, Any]:
    return _row(_digest("malformed", item), "change", None, None, status=UNPARSEABLE, received_at=received_at,
                raw=json.dumps(item, ensure_ascii=False))


def _change_rows(field: str, value: Any, entry_id: Any, entry_time: Any, received_at: datetime) -> list[dict]:
    waba_id = node_id(entry_id)
    occurred_at = unix_time(entry_time)
    phone_number_id = None
    if field == "messages" and isinstance(value, dict):
        rows = _message_rows(value, entry_id, entry_time, waba_id, occurred_at, received_at)
        if rows:
            return rows
    if isinstance(value, dict) and isinstance(value.get("metadata"), dict):
        # Messages without a message or status (system-level errors), history, echoes: the number they are of.
        phone_number_id = node_id(value["metadata"].get("phone_number_id"))
    if field == "account_update" and isinstance(value, dict) and isinstance(value.get("waba_info"), dict):
        # PARTNER_* and a few others come in the partner's business entry; the WABA is named inside.
        waba_id = node_id(value["waba_info"].get("waba_id")) or waba_id
    status = STORED if field in APPLIED_FIELDS or field == "messages" else IGNORED
    return [_row(_digest(field, entry_id, entry_time, value), "change", field, value, entry_id=entry_id,
                 waba_id=waba_id, phone_number_id=phone_number_id, occurred_at=occurred_at, received_at=received_at,
                 status=status)]


def _message_rows(value: dict, entry_id: Any, entry_time: Any, waba_id: str | None,
                  entry_occurred_at: datetime | None, received_at: datetime) -> list[dict]:
    """One row per inbound message (keyed by its id), per status of a sent one (its id and status, and in a
    group the participant: each member's ``read`` is one), and one for whatever else the change holds
    (calls, echoes, errors), kept once rather than copied into every message's row."""
    messages = value.get("messages") if isinstance(value.get("messages"), list) else []
    statuses = value.get("statuses") if isinstance(value.get("statuses"), list) else []
    if not messages and not statuses:
        return []
    shared = {key: item for key, item in value.items() if key in _IN_EVERY_ROW}
    metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
    phone_number_id = node_id(metadata.get("phone_number_id"))
    contacts = value.get("contacts") if isinstance(value.get("contacts"), list) else None
    rows = []
    for kind, items in (("message", messages), ("status", statuses)):
        for item in items:
            one = dict(shared)
            key = None
            occurred_at = entry_occurred_at
            if isinstance(item, dict):
                occurred_at = unix_time(item.get("timestamp")) or entry_occurred_at
                if kind == "message":
                    key = item.get("id") if isinstance(item.get("id"), str) else None
                    if contacts is not None:  # only the sender's contact card, not the whole batch's
                        one["contacts"] = [c for c in contacts
                                           if isinstance(c, dict) and c.get("wa_id") == item.get("from")] or contacts
                elif isinstance(item.get("id"), str) and isinstance(item.get("status"), str):
                    key = f"{item['id']}:{item['status']}"
                    participant = item.get("recipient_participant_id") or item.get("recipient_participant_user_id")
                    if isinstance(participant, str) and participant:
                        key = f"{key}:{participant}"
            one["messages" if kind == "message" else "statuses"] = [item]
            if not key or len(key) > _MAX_ID_KEY:
                key = _digest("messages", entry_id, entry_time, one)
            rows.append(_row(key, kind, "messages", one, entry_id=entry_id, waba_id=waba_id,
                             phone_number_id=phone_number_id, occurred_at=occurred_at, received_at=received_at,
                             status=STORED))
    rest = {key: item for key, item in value.items() if key not in ("messages", "statuses")}
    if rest.keys() - _IN_EVERY_ROW:
        rows.append(_row(_digest("messages", entry_id, entry_time, rest), "change", "messages", rest,
                         entry_id=entry_id, waba_id=waba_id, phone_number_id=phone_number_id,
                         occurred_at=entry_occurred_at, received_at=received_at, status=STORED))
    return rows


def _row(dedupe_key: str, kind: str, field: str | None, value: Any, *, status: str, received_at: datetime,
         entry_id: Any = None, waba_id: str | None = None, phone_number_id: str | None = None,
         occurred_at: datetime | None = None, raw: str | None = None, error: str | None = None) -> dict[str, Any]:
    return {"dedupe_key": dedupe_key, "kind": kind, "field": field, "waba_id": waba_id,
            "phone_number_id": phone_number_id, "entry_id": node_id(entry_id), "occurred_at": occurred_at,
            "value": value, "raw": raw, "status": status, "error": error, "received_at": received_at}


def _digest(*parts: Any) -> str:
    """SHA-256 of a canonical serialisation: the same change, however it was batched or spaced, is the same key."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError("a number too large to keep")
    return number


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        return {_clean(key): _clean(item) for key, item in value.items()}
    return value
