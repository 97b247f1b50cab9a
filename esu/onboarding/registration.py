"""Registration with the customer's own PIN, and where a number may keep its data (local storage).

"Register a business phone number" (meta-docs/business-phone-numbers/register-a-business-phone-number.md): a
number that already has two-step verification registers only with its own 6-digit PIN, and Meta answers
any other with 133005 (the register step then waits, ``register_phone.run_register``). The customer, or the
admin, gives that PIN here for the number Meta refused (an onboarding of several WABAs registers several);
it is kept encrypted as every PIN is, and registration goes on with the numbers not registered yet.
"""

from __future__ import annotations

import re

from flask_babel import gettext

from ..extensions import db
from ..models import Onboarding, OnboardingStatus, PhoneNumber, StepStatus
from .errors import OnboardingError
from .register_phone import PIN_MISMATCH
from .runner import claim, not_now, run

#: The countries ``data_localization_region`` takes at register (the same page, "Parameters").
LOCAL_STORAGE_REGIONS = {
    "AU": "Australia", "ID": "Indonesia", "IN": "India", "JP": "Japan", "SG": "Singapore", "KR": "South Korea",
    "DE": "EU (Germany)", "CH": "Switzerland", "GB": "United Kingdom", "BR": "Brazil", "BH": "Bahrain",
    "ZA": "South Africa", "AE": "United Arab Emirates", "CA": "Canada",
}
PIN = re.compile(r"^[0-9]{6}\Z")
#: A PIN can be given while registration waits for it, also when another step has failed meanwhile.
PIN_ENTERABLE = (OnboardingStatus.AWAITING_PIN, OnboardingStatus.FAILED)


def awaits_pin(onboarding: Onboarding) -> bool:
    """Whether registration waits for a number's existing two-step verification PIN."""
    return onboarding.status in PIN_ENTERABLE and _number_id_awaiting_pin(onboarding) is not None


def number_awaiting_pin(onboarding: Onboarding) -> PhoneNumber | None:
    """The number whose own two-step verification PIN registration waits for, or None."""
    number_id = _number_id_awaiting_pin(onboarding)
    return db.session.get(PhoneNumber, number_id) if number_id else None


def _number_id_awaiting_pin(onboarding: Onboarding) -> str | None:
    """The number Meta refused esu's PIN for (the register step's record says which), while the step waits."""
    record = onboarding.step("register_phone")
    if record is None or record.status != StepStatus.WAITING or record.error_code != PIN_MISMATCH:
        return None
    # A step that waited before the record named the number waited for the onboarding's own.
    return (record.result or {}).get("awaiting_pin") or onboarding.phone_number_id


def enter_existing_pin(onboarding: Onboarding, pin: str) -> Onboarding:
    """Register the number that waits for it with the PIN it already has, then the other numbers not
    registered yet, and run what follows."""
    if not PIN.match(pin):
        raise OnboardingError(gettext("the PIN is the 6 digits of the number's two-step verification"))
    if not awaits_pin(onboarding):
        raise OnboardingError(not_now(onboarding, gettext("it does not wait for a two-step verification PIN")),
                              status=409)
    if not claim(onboarding, *PIN_ENTERABLE):
        raise OnboardingError(not_now(onboarding, gettext("it does not wait for a PIN")), onboarding=onboarding,
                              status=409)
    phone = number_awaiting_pin(onboarding)  # the claim won: the step still waits for it, as checked above
    phone.pin = pin  # kept before Meta sees it, as the PIN esu chooses is (register_phone.before_register)
    onboarding.step("register_phone").status = StepStatus.PENDING
    return run(onboarding, code=None)
