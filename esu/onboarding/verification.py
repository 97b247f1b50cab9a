"""The verification code flow: a number Meta has not verified waits for the person, who asks for a code
(by SMS or voice, at most once a minute) and enters it; the number is then read again and registered.

Each call is recorded as a step of its own (``request_code``, ``verify_code``) beside the sequence.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask_babel import format_number, gettext

from .. import graph
from ..extensions import db
from ..graph import GraphClient, GraphError
from ..models import Onboarding, OnboardingStatus, OnboardingStep, StepStatus, now_utc
from .errors import OnboardingError
from .records import dialect_insert
from .runner import claim, clear_error, not_now, run, waits_on_its_own
from .steps import POSITIONS

CODE_RESEND_COOLDOWN = timedelta(seconds=60)
#: An onboarding can wait for the code while another step has failed (and so be marked failed).
VERIFIABLE = (OnboardingStatus.AWAITING_VERIFICATION, OnboardingStatus.FAILED)


def _awaiting_phone(onboarding: Onboarding) -> None:
    record = onboarding.step("register_phone")
    if (onboarding.status not in VERIFIABLE or record is None or record.status != StepStatus.WAITING
            or waits_on_its_own(record)):  # for the number's PIN or Meta's time, not for a code
        raise OnboardingError(not_now(onboarding, gettext("it does not wait for a verification code")), status=409)


def _step_row(onboarding: Onboarding, name: str) -> OnboardingStep:
    """The onboarding's record of the verification step ``name``, made unless it exists, in one statement
    (two requests making it at once do not collide on the step's unique name) and committed."""
    db.session.execute(dialect_insert(OnboardingStep.__table__).values(
        onboarding_id=onboarding.id, name=name, position=POSITIONS[name], status=StepStatus.PENDING, attempts=0,
        runs=0).on_conflict_do_nothing(index_elements=["onboarding_id", "name"]))
    db.session.commit()
    return db.session.execute(sa.select(OnboardingStep).where(
        OnboardingStep.onboarding_id == onboarding.id, OnboardingStep.name == name)).scalar_one()


def _verification_step(record: OnboardingStep, call: Callable[[GraphClient], dict[str, Any]]) -> None:
    """Run a verification call as a recorded step of its own; GraphError propagates after recording."""
    client = graph.client().tracked()
    record.runs += 1
    record.started_at = now_utc()
    clear_error(record)
    # Saved before Meta hears of it, as the sequence's steps are: no transaction of ours stays open during the
    # call (with the simulator mounted on SQLite, its own writes would wait for ours).
    db.session.commit()
    began = time.perf_counter()
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
        raise OnboardingError(gettext("method must be SMS or VOICE"))
    record = _step_row(onboarding, "request_code")
    _claim_code_request(record)
    _verification_step(record, lambda client: client.request_code(
        onboarding.phone_number_id, method, language, onboarding.business_token))
    return CODE_RESEND_COOLDOWN


def _claim_code_request(record: OnboardingStep) -> None:
    """Mark the code request running, in one conditional UPDATE, unless a code was asked of Meta less than
    :data:`CODE_RESEND_COOLDOWN` ago (or is being asked for; a failed request may be made again at once):
    of requests racing, the database lets one through to Meta, and the others hear when to ask again."""
    now = now_utc()
    claimed = db.session.execute(
        sa.update(OnboardingStep)
        .where(OnboardingStep.id == record.id,
               sa.or_(OnboardingStep.started_at.is_(None), OnboardingStep.status == StepStatus.FAILED,
                      OnboardingStep.started_at <= now - CODE_RESEND_COOLDOWN))
        .values(status=StepStatus.RUNNING, started_at=now, finished_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    db.session.commit()  # also expires ``record``: read again as the winner left it
    if not claimed:
        seconds = max(1, math.ceil((record.started_at + CODE_RESEND_COOLDOWN - now_utc()).total_seconds()))
        raise OnboardingError(gettext("A code was just sent; ask again in %(seconds)s s.",
                                      seconds=format_number(seconds)), status=429, retry_after=seconds)


def verify_phone(onboarding: Onboarding, code: str) -> Onboarding:
    """Check the code the person entered; once verified, read the number again and register it."""
    _awaiting_phone(onboarding)
    _verification_step(_step_row(onboarding, "verify_code"), lambda client: client.verify_code(
        onboarding.phone_number_id, code, onboarding.business_token))
    if not claim(onboarding, *VERIFIABLE):
        raise OnboardingError(not_now(onboarding, gettext("the number is verified")), onboarding=onboarding, status=409)
    for name in ("read_phone_number", "register_phone"):
        onboarding.step(name).status = StepStatus.PENDING
    return run(onboarding, code=None)
