"""The verification code flow: a number Meta has not verified waits for the person, who asks for a code
(by SMS or voice, at most once a minute) and enters it; the number is then read again and registered.

Each call is recorded as a step of its own (``request_code``, ``verify_code``) beside the sequence.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from .. import graph
from ..extensions import db
from ..graph import GraphClient, GraphError
from ..models import Onboarding, OnboardingStatus, StepStatus, now_utc
from .errors import OnboardingError
from .runner import claim, clear_error, not_now, run, step_record

CODE_RESEND_COOLDOWN = timedelta(seconds=60)
#: An onboarding can wait for the code while another step has failed (and so be marked failed).
VERIFIABLE = (OnboardingStatus.AWAITING_VERIFICATION, OnboardingStatus.FAILED)


def _awaiting_phone(onboarding: Onboarding) -> None:
    record = onboarding.step("register_phone")
    if onboarding.status not in VERIFIABLE or record is None or record.status != StepStatus.WAITING:
        raise OnboardingError(not_now(onboarding, "it does not wait for a verification code"), status=409)


def _verification_step(onboarding: Onboarding, name: str, call: Callable[[GraphClient], dict[str, Any]]) -> None:
    """Run a verification call as a recorded step of its own; GraphError propagates after recording."""
    client = graph.client().tracked()
    record = step_record(onboarding, name)
    record.runs += 1
    record.started_at = now_utc()
    began = time.perf_counter()
    clear_error(record)
    try:
        record.result = call(client)
        record.status, record.detail = StepStatus.OK, None
    except GraphError as error:
        record.status, record.detail = StepStatus.FAILED, error.user_message or error.message
        for key, value in error.fields().items():
            setattr(record, key, value)
        raise
    finally:
        record.attempts = client.attempts
        record.finished_at = now_utc()
        record.duration_ms = round((time.perf_counter() - began) * 1000)
        db.session.commit()


def request_verification_code(onboarding: Onboarding, method: str, language: str = "en") -> timedelta:
    """Have Meta send the verification code by SMS or VOICE. Answers how long until a resend."""
    _awaiting_phone(onboarding)
    if method not in ("SMS", "VOICE"):
        raise OnboardingError("method must be SMS or VOICE")
    previous = onboarding.step("request_code")
    if previous is not None and previous.status == StepStatus.OK and previous.finished_at:
        wait_left = previous.finished_at + CODE_RESEND_COOLDOWN - now_utc()
        if wait_left > timedelta(0):
            raise OnboardingError(f"a code was just sent; ask again in {int(wait_left.total_seconds()) + 1} s",
                                  status=429)
    _verification_step(onboarding, "request_code", lambda client: client.request_code(
        onboarding.phone_number_id, method, language, onboarding.business_token))
    return CODE_RESEND_COOLDOWN


def verify_phone(onboarding: Onboarding, code: str) -> Onboarding:
    """Check the code the person entered; once verified, read the number again and register it."""
    _awaiting_phone(onboarding)
    _verification_step(onboarding, "verify_code", lambda client: client.verify_code(
        onboarding.phone_number_id, code, onboarding.business_token))
    if not claim(onboarding, *VERIFIABLE):
        raise OnboardingError(not_now(onboarding, "the number is verified"), onboarding=onboarding, status=409)
    for name in ("read_phone_number", "register_phone"):
        onboarding.step(name).status = StepStatus.PENDING
    return run(onboarding, code=None)
