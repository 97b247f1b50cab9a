"""A number added after signup: the customer finished without one (``FINISH_ONLY_WABA``, or any finish since
v3), so the onboarding is connected with a number to add. ``look_for_numbers`` reads the numbers of each of
its WABAs with the stored token and, when one is there, runs the number steps for it."""

from __future__ import annotations

from flask_babel import gettext

from .. import graph
from ..models import Onboarding, OnboardingStatus, StepStatus
from .assets import waba_ids_of
from .errors import OnboardingError
from .runner import claim, not_now, run, step_record
from .steps import STEPS


def number_steps() -> list[str]:
    """``read_phone_number`` and every step that waits for it, in the table's order."""
    found = ["read_phone_number"]
    for step in STEPS:
        if any(name in found for name in step.needs) and step.name not in found:
            found.append(step.name)
    return found


def needs_number(onboarding: Onboarding) -> bool:
    """Whether the onboarding is connected without a number: the admin sees "number to add"."""
    return onboarding.status == OnboardingStatus.COMPLETED and not onboarding.phone_number_id


def look_for_numbers(onboarding: Onboarding) -> str | None:
    """Read the numbers of the onboarding's WABAs, its own ``waba_id`` first, until one lists a number; onboard
    that number (the number steps run for it, with the stored token: ``read_phone_number`` also reads the
    numbers of the other WABAs, and ``register_phone`` registers them) and answer its id, or None when Meta
    lists none on any WABA yet. A GraphError goes to the caller."""
    if not needs_number(onboarding):
        raise OnboardingError(not_now(onboarding, gettext("there is no number to look for"))
                              if onboarding.status != OnboardingStatus.COMPLETED
                              else gettext("this onboarding already has its number"), status=409)
    if not onboarding.business_token or not onboarding.waba_id:
        raise OnboardingError(gettext("no business token or WABA is stored for this onboarding"), status=409)
    api = graph.client()
    listed = (api.list_phone_numbers(waba_id, onboarding.business_token) for waba_id in waba_ids_of(onboarding))
    found = next((str(numbers[0]["id"]) for numbers in listed if numbers), None)
    if found is None:
        return None
    if not claim(onboarding, OnboardingStatus.COMPLETED):
        raise OnboardingError(not_now(onboarding, gettext("not looked for numbers")), onboarding=onboarding, status=409)
    onboarding.phone_number_id = found
    for name in number_steps():
        record = step_record(onboarding, name)
        record.status, record.detail = StepStatus.PENDING, None
    run(onboarding, code=None)
    return found
