"""Onboarding: a code from Embedded Signup becomes a fully onboarded customer, every step recorded.

The browser's callback brings the code (``start``). The code becomes a business token, and the token
unlocks the rest: confirm which WhatsApp Business Account the customer shared, read it, subscribe to its
webhooks, share our credit line (as a Solution Partner), read and register the phone number, sync a
WhatsApp Business app's data, fetch the templates. Steps that do not depend on each other run at the same
time, so a callback takes the critical path of dependent Graph round trips (exchange → read number →
register; exchange → confirm → credit line) rather than their sum. Each step's status, attempts, timing
and Graph error are saved as it starts and ends, for the browser and the admin to follow.

A number Meta has not verified makes the onboarding wait for the person, who asks for a code and enters
it (``request_verification_code``, ``verify_phone``); registration then goes on. What failed runs again,
with the stored token, on ``retry``. ``summary`` is the onboarding as the browser and the API see it.

The modules, each importing only those before it: ``errors`` (what a request is refused with),
``context`` (what the steps of one run share), ``assets`` (the WABAs and other assets the customer
shared), ``finishes`` (how the customer finished, and so which steps apply), ``records`` (the WABA, number
and template records the saves write), ``outcomes`` (what a step ends with besides success), ``coexistence``
(WhatsApp Business app numbers and their syncs), ``register_phone`` (the register step: which numbers, each
with its PIN, within Meta's limit), ``steps`` (each step, and the table of them), ``deadline``
(how long a live run can take: past it, a run still marked running is stuck), ``runner`` (claims,
concurrency, recording, concluding, retry), ``verification`` (the code flow), ``registration`` (a number's
own PIN, local storage), ``progress`` (``summary``), ``throttled`` (steps Meta rate-limited, run when due
by the worker), ``numbers`` (looking for a number added after signup).
"""

from __future__ import annotations

from .errors import DuplicateCode, OnboardingError
from .finishes import FINISH, FINISH_COEXISTENCE, FINISH_EVENTS, FINISH_ONLY_WABA
from .numbers import look_for_numbers
from .progress import can_retry, plain_words_of, summary
from .registration import LOCAL_STORAGE_REGIONS, awaits_pin, enter_existing_pin, number_awaiting_pin
from .runner import retry, start
from .steps import LABELS
from .verification import request_verification_code, verify_phone

__all__ = [
    "FINISH", "FINISH_COEXISTENCE", "FINISH_EVENTS", "FINISH_ONLY_WABA", "LABELS", "LOCAL_STORAGE_REGIONS",
    "DuplicateCode", "OnboardingError", "awaits_pin", "can_retry", "enter_existing_pin", "look_for_numbers",
    "number_awaiting_pin", "plain_words_of",
    "request_verification_code", "retry", "start", "summary", "verify_phone",
]
