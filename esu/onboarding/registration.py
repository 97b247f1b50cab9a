"""Registration with the customer's own PIN, and where a number may keep its data (local storage).

"Register a business phone number" (meta-docs/business-phone-numbers/register-a-business-phone-number.md): a
number that already has two-step verification registers only with its own 6-digit PIN, and Meta answers
any other with 133005 (the register step then waits, ``steps.run_register``). The customer, or the admin,
gives that PIN here; it is kept encrypted as every PIN is, and registration goes on with it.
"""

from __future__ import annotations

import re

from flask_babel import gettext

from ..extensions import db
from ..models import Onboarding, OnboardingStatus, PhoneNumber, StepStatus
from .errors import OnboardingError
from .runner import claim, not_now, run
from .steps import PIN_MISMATCH

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
    """Whether registration waits for the number's existing two-step verification PIN."""
    record = onboarding.step("register_phone")
    return (onboarding.status in PIN_ENTERABLE and record is not None and record.status == StepStatus.WAITING
            and record.error_code == PIN_MISMATCH)


def enter_existing_pin(onboarding: Onboarding, pin: str) -> Onboarding:
    """Register the number with the PIN it already has, and run what follows."""
    if not PIN.match(pin):
        raise OnboardingError(gettext("the PIN is the 6 digits of the number's two-step verification"))
    if not awaits_pin(onboarding):
        raise OnboardingError(not_now(onboarding, gettext("it does not wait for a two-step verification PIN")),
                              status=409)
    if not claim(onboarding, *PIN_ENTERABLE):
        raise OnboardingError(not_now(onboarding, gettext("it does not wait for a PIN")), onboarding=onboarding,
                              status=409)
    phone = db.session.get(PhoneNumber, onboarding.phone_number_id)
    phone.pin = pin  # kept before Meta sees it, as the PIN esu chooses is (steps.before_register)
    onboarding.step("register_phone").status = StepStatus.PENDING
    return run(onboarding, code=None)
