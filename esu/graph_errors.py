"""Meta's error answers: the envelope a failed Graph call carries (:class:`GraphError`), which of its
codes are temporary or say we call too fast, and how long Meta's usage headers say a rate limit lasts.

Graph API "Rate limiting" (meta-reference.md §9.3): ``X-App-Usage`` holds percentages; ``X-Business-Use-Case-Usage``
holds, by business id, a list of usages each with ``estimated_time_to_regain_access`` in minutes.
"""

from __future__ import annotations

import json
from typing import Any

import requests

#: Codes Meta documents as temporary (downtime, throttling): worth another try after a pause. Only consulted
#: when the envelope does not say ``is_transient`` itself.
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 341, 613, 80007, 130429, 131000, 131016, 131056, 133004})
#: Codes that say Meta is limiting how fast we call it (Graph API "Rate limiting"; meta-reference.md §9.2).
#: Retrying at once only makes it worse: but for the code exchange (a code lives 30 s), the caller waits
#: as long as Meta says (``GraphError.regain_access_seconds``) instead.
RATE_LIMIT_CODES = frozenset({4, 17, 32, 341, 613, 80007, 130429, 131056})

class GraphError(Exception):
    """A failed Graph call: Meta's error envelope, or a network failure described the same way."""

    def __init__(
        self,
        message: str,
        *,
        operation: str = "",
        type: str | None = None,
        code: int | None = None,
        error_subcode: int | None = None,
        fbtrace_id: str | None = None,
        user_title: str | None = None,
        user_message: str | None = None,
        error_data: dict[str, Any] | None = None,
        http_status: int | None = None,
        transient: bool | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.operation = operation
        self.type = type
        self.code = code
        self.error_subcode = error_subcode
        self.fbtrace_id = fbtrace_id
        self.user_title = user_title
        self.user_message = user_message
        self.error_data = error_data
        self.http_status = http_status
        #: How long Meta says until access is regained, from a rate-limited answer's usage headers.
        self.regain_access_seconds: int | None = None
        #: What Meta's ``is_transient`` said, if it said it.
        self.is_transient = transient
        if transient is None:
            transient = code in TRANSIENT_CODES or (http_status is not None and http_status >= 500)
        self.transient = transient
        self.attempts = 0

    @classmethod
    def from_response(cls, operation: str, response: requests.Response) -> GraphError:
        """Read Meta's ``{"error": {...}}`` envelope; anything else becomes a generic error."""
        try:
            envelope = response.json()
        except ValueError:
            envelope = None
        error = envelope.get("error") if isinstance(envelope, dict) else None
        if not isinstance(error, dict):
            return cls(
                f"Graph answered HTTP {response.status_code} without an error envelope",
                operation=operation,
                http_status=response.status_code,
            )
        graph_error = cls(
            str(error.get("message") or "Graph error"),
            operation=operation,
            type=error.get("type"),
            code=_int_or_none(error.get("code")),
            error_subcode=_int_or_none(error.get("error_subcode")),
            fbtrace_id=error.get("fbtrace_id"),
            user_title=error.get("error_user_title"),
            user_message=error.get("error_user_msg"),
            error_data=_error_data(error.get("error_data")),
            http_status=response.status_code,
            # Meta's word first, true or false; only without it the code table decides.
            transient=error["is_transient"] if isinstance(error.get("is_transient"), bool) else None,
        )
        graph_error.regain_access_seconds = regain_access_seconds(response.headers)
        return graph_error

    @property
    def rate_limited(self) -> bool:
        return self.code in RATE_LIMIT_CODES

    @classmethod
    def network(cls, operation: str, exc: requests.RequestException) -> GraphError:
        # The exception text can carry the URL and its query (client_secret, appsecret_proof): keep
        # only the kind of failure.
        return cls(f"network error talking to Graph ({type(exc).__name__})", operation=operation, transient=True)

    def fields(self) -> dict[str, Any]:
        """What a step record keeps of the error."""
        return {
            "error_message": self.message,
            "error_type": self.type,
            "error_code": self.code,
            "error_subcode": self.error_subcode,
            "error_user_title": self.user_title,
            "error_user_message": self.user_message,
            "error_data": self.error_data,
            "error_transient": self.transient,
            "fbtrace_id": self.fbtrace_id,
        }

    def __str__(self) -> str:
        code = f" (code {self.code}" + (f"/{self.error_subcode}" if self.error_subcode else "") + ")"
        return f"{self.operation}: {self.message}{code if self.code is not None else ''}"


def _error_data(value: Any) -> dict[str, Any] | None:
    """``error_data`` as an object: Meta sends one (``{"details": …}``), older answers a JSON string."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {"details": value}
    return value if isinstance(value, dict) else None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def regain_access_seconds(headers) -> int | None:
    """The longest ``estimated_time_to_regain_access`` (minutes) in ``X-Business-Use-Case-Usage`` (each business
    id's list of usages) or ``X-App-Usage``, in seconds; None when no header says."""
    minutes = []
    for name in ("X-Business-Use-Case-Usage", "X-App-Usage"):
        try:
            usage = json.loads(headers.get(name) or "null")
        except ValueError:
            continue
        entries = [usage] if isinstance(usage, dict) else []
        for value in (usage.values() if isinstance(usage, dict) else ()):
            entries += [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
        minutes += [entry["estimated_time_to_regain_access"] for entry in entries
                    if isinstance(entry.get("estimated_time_to_regain_access"), (int, float))
                    and not isinstance(entry["estimated_time_to_regain_access"], bool)]
    return round(max(minutes) * 60) if minutes else None
