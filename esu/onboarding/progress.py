"""An onboarding's progress as the browser and the API follow it: ``summary``, with each error in plain words."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_babel import gettext

from .. import i18n, phones
from ..graph_errors import RATE_LIMIT_CODES, TRANSIENT_CODES, GraphError
from ..i18n import N_
from ..models import Onboarding, OnboardingStatus, OnboardingStep, StepStatus
from .deadline import is_stuck
from .registration import number_awaiting_pin
from .steps import LABELS, STEPS_BY_NAME

#: Plain words for the person, by Graph error code, when Meta sends none of its own (``error_user_msg``); in
#: English here, in the person's language where shown.
PLAIN_WORDS: dict[int, str] = {
    0: N_("Meta no longer accepts the access you gave us. Please go through the sign-up again."),
    102: N_("Meta no longer accepts the access you gave us. Please go through the sign-up again."),
    190: N_("Meta no longer accepts the access you gave us. Please go through the sign-up again."),
    3: N_("Meta does not allow us to do this for your account."),
    10: N_("Meta does not allow us to do this for your account. Check that you shared it with us during sign-up."),
    200: N_("Meta does not allow us to do this for your account. Check that you shared it with us during sign-up."),
    100: N_("Meta refused one of the requests about your account."),
    368: N_("Meta has temporarily blocked this account for a policy reason."),
    133005: N_("The two-step verification PIN of this number does not match. Turn two-step verification off in "
               "WhatsApp Manager, or tell us the number's PIN."),
    133016: N_("This number has been registered too many times recently. Meta allows another try after 72 hours."),
    136025: N_("The code does not match. Check it and try again."),
}
MISSING_OBJECT = N_("Meta could not find your account or number; it may have been removed.")
RATE_LIMITED = N_("Meta is limiting how fast we can set up accounts right now. Please try again in a few minutes.")
UNAVAILABLE = N_("Meta is briefly unavailable. Please try again in a few minutes.")
OTHER = N_("Meta refused one of the setup steps.")


def plain_words(record: OnboardingStep) -> str | None:
    """What the person reads of a step's Graph error: Meta's own words for them, else ours for the code."""
    if record.error_code is None and record.error_message is None:
        return None
    return _plain(record.error_user_message, record.error_code, record.error_subcode, transient(record))


def plain_words_of(error: GraphError) -> str:
    """What the person reads of a Graph error esu answers at once (a verification call): as for a step."""
    return _plain(error.user_message, error.code, error.error_subcode, error.transient)


def _plain(user_message: str | None, code: int | None, subcode: int | None, is_transient: bool) -> str:
    """In the request's language: Meta's words for people (``error_user_msg``) when the person reads the
    language Meta wrote them in, else ours for the code. Graph writes them in "the locale of the API request";
    esu's calls name none, so they come in English: another reader gets ours, Meta's only for a code we
    have no words for."""
    if user_message and (i18n.current().startswith("en") or not _ours(code, subcode)):
        return user_message
    return _ours(code, subcode) or gettext(UNAVAILABLE if is_transient else OTHER)


def _ours(code: int | None, subcode: int | None) -> str | None:
    """esu's own words for the error, when it has some for this code."""
    if subcode == 33:
        return gettext(MISSING_OBJECT)
    if code in RATE_LIMIT_CODES:
        return gettext(RATE_LIMITED)
    if code in PLAIN_WORDS:
        return gettext(PLAIN_WORDS[code])
    return None


def transient(record: OnboardingStep) -> bool:
    """Whether the step's Graph error may pass if tried again: Meta's ``is_transient`` as recorded, else the
    code table (steps recorded before esu kept ``is_transient``)."""
    if record.error_transient is not None:
        return record.error_transient
    return record.error_code in TRANSIENT_CODES


def can_retry(onboarding: Onboarding) -> bool:
    """Whether the failed steps can be run again at all: the onboarding failed, or its run died with its
    process (``deadline``), with its token in hand (a failed exchange cannot be redone, the code is gone).
    The admin may, once the cause is fixed."""
    ended = onboarding.status == OnboardingStatus.FAILED or is_stuck(onboarding, current_app.config)
    return ended and onboarding.business_token is not None


def retryable(onboarding: Onboarding) -> bool:
    """Whether the customer is offered "try again": the steps can be run again and none failed with a
    permanent Graph error (a PIN mismatch, a refused permission, a revoked token, an invalid parameter stay
    so however often tried)."""
    if not can_retry(onboarding):
        return False
    failed = [record for record in onboarding.steps
              if record.name in STEPS_BY_NAME and record.status == StepStatus.FAILED]
    return all(transient(record) for record in failed if record.error_message is not None)


def summary(onboarding: Onboarding) -> dict[str, Any]:
    """The onboarding as the browser and the API see it. Never a token or a PIN."""
    pin_number = number_awaiting_pin(onboarding)
    return {
        "id": onboarding.id,
        "status": onboarding.status,
        # Marked running by a process that died: nothing will change unless it is retried.
        "stuck": is_stuck(onboarding, current_app.config),
        "event": onboarding.event,
        "failure_reason": onboarding.failure_reason,
        "retryable": retryable(onboarding),
        "business_name": onboarding.business_name,
        "waba_id": onboarding.waba_id,
        "phone_number_id": onboarding.phone_number_id,
        "display_phone_number": phones.international(onboarding.display_phone_number),
        # The number registration waits for the PIN of: the onboarding's own, or another WABA's.
        "pin_display_phone_number": phones.international(pin_number.display_phone_number) if pin_number else None,
        # Meta rate-limited a step: it goes on by itself then (UTC, ISO 8601).
        "waiting_until": _iso(min((record.wait_until for record in onboarding.steps if record.wait_until),
                                  default=None)),
        "steps": [
            {
                "name": record.name,
                "label": gettext(LABELS[record.name]) if record.name in LABELS else record.name,
                "status": record.status,
                "attempts": record.attempts,
                "duration_ms": record.duration_ms,
                "detail": record.detail,
                "wait_until": _iso(record.wait_until),
                "error": None if record.error_code is None and record.error_message is None else {
                    "message": record.error_message,
                    "type": record.error_type,
                    "code": record.error_code,
                    "error_subcode": record.error_subcode,
                    "fbtrace_id": record.fbtrace_id,
                    "user_title": record.error_user_title,
                    "user_message": record.error_user_message,
                    "is_transient": transient(record),
                    "plain": plain_words(record),
                },
            }
            for record in onboarding.steps
        ],
    }


def _iso(moment) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None
