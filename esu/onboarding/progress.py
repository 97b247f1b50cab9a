"""An onboarding's progress as the browser and the API follow it: ``summary``."""

from __future__ import annotations

from typing import Any

from ..models import Onboarding, OnboardingStatus
from .steps import LABELS


def summary(onboarding: Onboarding) -> dict[str, Any]:
    """The onboarding as the browser and the API see it. Never a token or a PIN."""
    return {
        "id": onboarding.id,
        "status": onboarding.status,
        "event": onboarding.event,
        "failure_reason": onboarding.failure_reason,
        # A failed exchange cannot be retried: the code is gone. Anything else can.
        "retryable": onboarding.status == OnboardingStatus.FAILED and onboarding.business_token is not None,
        "business_name": onboarding.business_name,
        "waba_id": onboarding.waba_id,
        "phone_number_id": onboarding.phone_number_id,
        "display_phone_number": onboarding.display_phone_number,
        "steps": [
            {
                "name": record.name,
                "label": LABELS.get(record.name, record.name),
                "status": record.status,
                "attempts": record.attempts,
                "duration_ms": record.duration_ms,
                "detail": record.detail,
                "error": None if record.error_code is None and record.error_message is None else {
                    "message": record.error_message,
                    "type": record.error_type,
                    "code": record.error_code,
                    "error_subcode": record.error_subcode,
                    "fbtrace_id": record.fbtrace_id,
                    "user_message": record.error_user_message,
                },
            }
            for record in onboarding.steps
        ],
    }
