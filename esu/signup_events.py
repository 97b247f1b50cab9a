"""The signup funnel: what people do on a signup page, as the widget reports it.

The widget posts one event per moment that matters — the page shown, the dialog opened, the person
leaving at a screen, an error reported in Meta's dialog, Meta's success message — and the admin reads
them as a funnel per page.
"""

from __future__ import annotations

from .extensions import db
from .models import SignupEvent, SignupPage

VIEW, LAUNCH, CANCEL, ERROR, FINISH = "view", "launch", "cancel", "error", "finish"
KINDS = (VIEW, LAUNCH, CANCEL, ERROR, FINISH)

#: The screens of Meta's dialog, in the order a person meets them (``data.current_step`` of CANCEL).
FLOW_SCREENS = (
    "BUSINESS_ACCOUNT_SELECTION",
    "WABA_PHONE_PROFILE_PICKER",
    "WHATSAPP_BUSINESS_PROFILE_SETUP",
    "PHONE_NUMBER_SETUP",
    "PHONE_NUMBER_VERIFICATION",
    "PERMISSIONS",
)


def record(page: SignupPage, kind: str, *, current_step: str | None = None, error_message: str | None = None,
           error_code: str | None = None, session_id: str | None = None) -> SignupEvent:
    """Add one funnel event of ``page``; the caller commits."""
    if kind not in KINDS:
        raise ValueError(f"unknown signup event kind {kind!r}")
    event = SignupEvent(page_id=page.id, kind=kind, current_step=current_step, error_message=error_message,
                        error_code=error_code, session_id=session_id)
    db.session.add(event)
    db.session.flush()
    return event
