"""Steps Meta rate-limited: each waits until the time Meta gave (``OnboardingStep.wait_until``, from the
usage headers' ``estimated_time_to_regain_access``), then a worker runs it and what waited for it.

The code exchange is the one step that cannot wait (a code lives 30 s); every later step uses the business
token, which lasts, so waiting costs the customer nothing but time, where quick retries would only extend
the limit ("Rate limiting", meta-reference.md §9.3).
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa

from ..extensions import db
from ..models import Onboarding, OnboardingStatus, OnboardingStep, StepStatus, now_utc
from .runner import claim, run

log = logging.getLogger(__package__)

#: Onboardings run at one turn of the worker, so that forwarding is not held up long.
RUN_A_TURN = 5


def due(now: datetime, limit: int = RUN_A_TURN) -> list[int]:
    """The rate-limited onboardings with a step whose wait is over, longest waiting first."""
    return list(db.session.scalars(
        sa.select(OnboardingStep.onboarding_id)
        .join(Onboarding, Onboarding.id == OnboardingStep.onboarding_id)
        .where(Onboarding.status == OnboardingStatus.RATE_LIMITED, OnboardingStep.status == StepStatus.WAITING,
               OnboardingStep.wait_until <= now)
        .group_by(OnboardingStep.onboarding_id)
        .order_by(sa.func.min(OnboardingStep.wait_until))
        .limit(limit)))


def run_due(now: datetime | None = None, limit: int = RUN_A_TURN) -> bool:
    """Run the steps whose wait is over (and what waited for them); answers whether more may be due."""
    now = now or now_utc()
    ids = due(now, limit)
    for onboarding_id in ids:
        onboarding = db.session.get(Onboarding, onboarding_id)
        if onboarding is None or not claim(onboarding, OnboardingStatus.RATE_LIMITED):
            continue  # another worker took it, or it changed meanwhile
        for record in onboarding.steps:
            if record.status == StepStatus.WAITING and record.wait_until is not None and record.wait_until <= now:
                record.status, record.wait_until = StepStatus.PENDING, None
        run(onboarding, code=None)
        log.info("rate-limited onboarding %s ran again: %s", onboarding.id, onboarding.status)
    return len(ids) == limit
