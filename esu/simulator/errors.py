"""Meta's error envelope as the simulator answers it, and the codes it knows."""

from __future__ import annotations

import secrets
from typing import Any

# HTTP status and message Meta answers with for the error codes a fault can inject.
ERROR_TEXTS: dict[int, tuple[int, str, str]] = {
    1: (500, "OAuthException", "An unknown error occurred"),
    2: (503, "OAuthException", "An unexpected error has occurred. Please retry your request later."),
    4: (400, "OAuthException", "(#4) Application request limit reached"),
    10: (403, "OAuthException", "(#10) Application does not have permission for this action"),
    17: (400, "OAuthException", "(#17) User request limit reached"),
    32: (400, "OAuthException", "(#32) Page request limit reached"),
    100: (400, "OAuthException", "(#100) Invalid parameter"),
    190: (401, "OAuthException", "Error validating access token: The session has been invalidated."),
    200: (403, "OAuthException", "(#200) Permissions error"),
    613: (400, "OAuthException", "(#613) Calls to this api have exceeded the rate limit."),
    80007: (400, "OAuthException", "(#80007) Rate limit issues"),
    130429: (400, "OAuthException", "(#130429) Rate limit hit"),
    131000: (500, "OAuthException", "(#131000) Something went wrong"),
    131016: (503, "OAuthException", "(#131016) Service unavailable"),
    131056: (400, "OAuthException", "(#131056) (Business Account, Consumer Account) pair rate limit hit"),
    133004: (503, "OAuthException", "(#133004) Server Temporarily Unavailable"),
    133005: (400, "OAuthException", "(#133005) Two step verification PIN Mismatch"),
    133016: (400, "OAuthException", "(#133016) Account register deregister rate limit exceeded"),
    136024: (400, "OAuthException", "(#136024) Phone number already verified"),
}

#: The words for a person Meta's envelope carries (``error_user_title``, ``error_user_msg``) with the simulator's
#: own refusals, by code (and subcode). Graph API "Handling errors": the message to show the user, "based on the
#: locale of the API request"; the error codes page (support/error-codes, not in meta-docs) gives each code's
#: title and description, which these follow. English only: the simulator does not translate (a ``locale``
#: parameter changes nothing), so a caller that shows them to people must mind the language.
USER_TEXTS: dict[tuple[int, int | None], tuple[str, str]] = {
    (133005, None): ("Two-Step Verification PIN Mismatch",
                     "The PIN doesn't match the two-step verification PIN of this phone number. Enter the number's "
                     "current 6-digit PIN, or turn two-step verification off in WhatsApp Manager."),
    (133016, None): ("Too Many Registration Attempts",
                     "This phone number was registered or deregistered too many times in a short period. "
                     "Try again in 72 hours."),
    (136024, None): ("Phone Number Already Verified",
                     "This phone number is already verified, so no code was sent."),
    (136025, None): ("Verification Code Mismatch",
                     "The code you entered doesn't match the one sent to this phone number. Check it and try again."),
    (100, 2388001): ("Phone Number Not Verified",
                     "Verify this phone number with a code before registering it."),
}

#: The codes Meta's envelope marks ``is_transient: true`` (temporary downtime and throttling); every
#: other one answers ``false``. Graph errors page ("Error codes": API Unknown, API Service, rate limits).
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 341, 613, 80007, 130429, 131000, 131016, 131056, 133004})

#: Meta's ``type`` for a node that does not exist (or that the token cannot see).
MISSING_OBJECT_TYPE = "GraphMethodException"


class SimError(Exception):
    """An error the simulator answers in Meta's whole envelope (Graph API "Handling errors": ``message``,
    ``type``, ``code``, ``error_subcode``, ``error_user_title``, ``error_user_msg``, ``error_data``,
    ``is_transient``, ``fbtrace_id``)."""

    def __init__(self, code: int, message: str | None = None, *, subcode: int | None = None,
                 http_status: int | None = None, error_type: str | None = None, is_transient: bool | None = None,
                 user_title: str | None = None, user_msg: str | None = None, details: Any = None,
                 headers: dict[str, str] | None = None, plain: bool = True):
        default_status, default_type, default_message = ERROR_TEXTS.get(
            code, (400, "OAuthException", f"(#{code}) Simulated error")
        )
        super().__init__(message or default_message)
        self.code = code
        self.message = message or default_message
        self.subcode = subcode
        self.http_status = http_status or default_status
        self.error_type = error_type or default_type
        self.is_transient = code in TRANSIENT_CODES if is_transient is None else bool(is_transient)
        # A refusal of the simulator's own carries Meta's words for people; a fault carries what it was given.
        default_title, default_msg = (USER_TEXTS.get((code, subcode)) or (None, None)) if plain else (None, None)
        self.user_title = user_title or default_title
        self.user_msg = user_msg or default_msg
        self.details = details
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.error_type,
            "code": self.code,
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.user_title:
            error["error_user_title"] = self.user_title
        if self.user_msg:
            error["error_user_msg"] = self.user_msg
        # WhatsApp's errors carry ``error_data.details``: a dict given whole, a string as the details.
        details = self.details if self.details is not None else self.user_msg or self.message
        error["error_data"] = (details if isinstance(details, dict)
                               else {"messaging_product": "whatsapp", "details": str(details)})
        error["is_transient"] = self.is_transient
        error["fbtrace_id"] = "A" + secrets.token_urlsafe(15)
        return {"error": error}


def no_such_object(node_id: str, method: str = "GET") -> SimError:
    """Graph's answer for an id it does not know or the token cannot see (subcode 33)."""
    return SimError(100, f"Unsupported {method.lower()} request. Object with ID '{node_id}' does not exist, "
                         "cannot be loaded due to missing permissions, or does not support this operation. "
                         "Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
                    subcode=33, error_type=MISSING_OBJECT_TYPE)
