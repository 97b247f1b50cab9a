"""What the webhook rooms share: the statuses of a stored change, the fields esu applies (by the
record each names), and pure converters of what Meta sends."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

# WebhookEvent.status
STORED = "stored"
APPLIED = "applied"
IGNORED = "ignored"
UNPARSEABLE = "unparseable"
FAILED = "failed"

#: The fields esu applies, by the record their change names: ``Records`` loads and locks that record for
#: them, and parsing stores any other field's change as ``ignored``. Each has its function in
#: ``appliers.APPLIERS`` (a test checks that the two agree).
WABA_FIELDS = frozenset({"account_update", "account_review_update", "business_capability_update"})
PHONE_FIELDS = frozenset({"phone_number_name_update", "phone_number_quality_update", "security", "history",
                          "smb_app_state_sync"})
TEMPLATE_FIELDS = frozenset({"message_template_status_update", "template_category_update",
                             "message_template_quality_update"})
APPLIED_FIELDS = WABA_FIELDS | PHONE_FIELDS | TEMPLATE_FIELDS
#: What the health sweep read from Graph, applied as events by ``appliers.graph_reads`` (never a webhook's
#: field: parsing does not apply a change named so), by the record each names.
GRAPH_WABA_READS = frozenset({"graph_token", "graph_waba"})
GRAPH_PHONE_READS = frozenset({"graph_phone_number"})

# No Graph id is 0 or has a leading 0: "0" is a placeholder (as "WABA_ID" or "<WABA_ID>" are).
_NODE_ID = re.compile(r"[1-9]\d{0,31}")
# Strings PostgreSQL cannot keep (NUL) or no database can encode (lone surrogates).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Unix times outside this range are not event times.
_EARLIEST, _LATEST = 946684800, 2**33


def node_id(value: Any) -> str | None:
    """A Graph node id (digits, as Meta sends them, in a string or a number), or None: a placeholder
    (``"<WABA_ID>"``, ``"WHATSAPP_BUSINESS_ACCOUNT_ID"``, ``"0"``) names no node."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and value.isascii() and _NODE_ID.fullmatch(value) else None


def unix_time(value: Any) -> datetime | None:
    """A Unix time Meta sent (a number, or digits in a string) as a UTC datetime, or None."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        value = int(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and _EARLIEST <= value < _LATEST:
        return datetime.fromtimestamp(value, UTC)
    return None


def meta_code(value: Any, name: str, longest: int) -> str:
    """One of Meta's codes (APPROVED, TIER_2K…): a short string, or the change is not one we can apply."""
    if not isinstance(value, str) or not value or len(value) > longest:
        raise ValueError(f"{name} is missing or not a code of at most {longest} characters")
    return value


def meta_reason(value: Any, name: str, longest: int) -> str | None:
    """The reason Meta gives for a decision (INVALID_FORMAT, SCAM…), or None when it gives none: absent,
    null, or ``NONE`` (how a template's status update and a display name's review say it), for every field
    alike."""
    return None if value is None or value in ("", "NONE") else meta_code(value, name, longest)


def short_text(value: Any, longest: int) -> str | None:
    return value[:longest] if isinstance(value, str) and value else None


def digits(value: Any) -> str:
    return re.sub(r"\D", "", value) if isinstance(value, str) else ""
