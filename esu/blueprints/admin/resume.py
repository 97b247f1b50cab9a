"""What an onboarding's page shows about going on with it: a run left stuck by a process that died, the
link that lets the customer come back to it, and the plain words the customer read of each error."""

from __future__ import annotations

from flask import current_app

from ... import resume_links
from ...models import Onboarding, OnboardingStep
from ...onboarding import deadline, progress
from . import bp


@bp.app_template_global("resume_link")
def resume_link(onboarding: Onboarding) -> resume_links.ResumeLink | None:
    return resume_links.link_for(onboarding)


@bp.app_template_global("run_stuck")
def run_stuck(onboarding: Onboarding) -> bool:
    return deadline.is_stuck(onboarding, current_app.config)


@bp.app_template_global("stuck_after_minutes")
def stuck_after_minutes() -> int:
    return round(deadline.abandoned_after(current_app.config).total_seconds() / 60)


@bp.app_template_filter("customer_words")
def customer_words(record: OnboardingStep) -> str | None:
    """What the customer read of the step's Graph error (Meta's words for people, else esu's)."""
    return progress.plain_words(record)
