"""The ``register_phone`` step: the onboarding's number, and every verified number of its other WABAs, each
registered with a PIN of its own, within Meta's limit on registrations.

"Register a business phone number" (meta-docs/business-phone-numbers/register-a-business-phone-number.md):
the PIN becomes the number's two-step verification PIN, unless the number already has one; then only that
PIN registers it, and Meta answers any other with 133005. The numbers are registered one after the other;
at a mismatch the step waits for that number's PIN (``registration.enter_existing_pin``) and keeps which
numbers it registered, so its next run registers only the others.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from ..graph import GraphClient, GraphError
from ..models import Onboarding, PhoneNumber, now_utc
from .coexistence import not_registered_reason
from .context import Context
from .finishes import FINISH_NUMBER_IN_USE, NO_NUMBER_YET
from .outcomes import Skip, StepFailed, Wait
from .records import phone_record

REGISTER_LIMIT = 10
#: Meta's answer once a number has been registered (or deregistered) too often.
REGISTER_LIMIT_CODE = 133016
REGISTER_WINDOW = timedelta(hours=72)
#: Meta's answer when the number already has another two-step verification PIN.
PIN_MISMATCH = 133005


def before_register(onboarding: Onboarding, ctx: Context) -> None:
    """Choose (and keep) the PIN of each number this run registers, within Meta's limit, and count the calls."""
    if "read_phone_number" not in ctx.results or _not_registered(ctx):
        return  # run_register skips: no PIN of ours is set on a number, so none is kept
    # The numbers an earlier run registered before another one waited for its PIN: not registered again.
    ctx.registered = list((onboarding.step("register_phone").result or {}).get("registered_numbers") or [])
    for number_id in _numbers(ctx):
        if number_id in ctx.registered:
            continue
        phone = phone_record(ctx, number_id)
        window_open = (phone.registration_window_started_at is not None
                       and now_utc() - phone.registration_window_started_at < REGISTER_WINDOW)
        if window_open and phone.registration_attempts >= REGISTER_LIMIT:
            which = "" if number_id == ctx.phone_number_id else f"number {_display(ctx, number_id)}: "
            raise StepFailed(f"{which}Meta allows {REGISTER_LIMIT} registration attempts per number in 72 hours; "
                             "try again after the window has passed")
        # The PIN is kept before Meta sees it: a crash after registering must not lose it. A number that waited
        # for its own PIN has it now (enter_existing_pin).
        if not phone.pin:
            phone.pin = ctx.pin if number_id == ctx.phone_number_id else f"{secrets.randbelow(10**6):06d}"
        ctx.pins[number_id] = phone.pin
    if _verified(ctx):
        # Each call is counted before Meta hears of it, in the same commit: a worker killed during the call
        # must not leave a registration Meta counted and we did not.
        for number_id in ctx.pins:
            _count_registration_calls(phone_record(ctx, number_id), 1)


def run_register(ctx: Context, api: GraphClient) -> dict[str, Any]:
    if ctx.results.get("read_phone_number") is None:
        raise Skip(NO_NUMBER_YET)
    reason = _not_registered(ctx)
    if reason:
        raise Skip(reason)
    if not _verified(ctx):
        raise Wait("the number is not verified yet: the customer must enter the code Meta sends")
    for number_id, pin in ctx.pins.items():
        ctx.register_calls.append(number_id)
        try:
            api.register_phone(number_id, pin, ctx.token, ctx.data_localization_region)
        except GraphError as error:
            if error.code == PIN_MISMATCH:
                # The customer (or the admin) gives this number's PIN, and registration goes on with it.
                raise Wait(f"number {_display(ctx, number_id)} already has a two-step verification PIN: "
                           "the customer must enter it", error=error,
                           result={"registered_numbers": list(ctx.registered), "awaiting_pin": number_id}) from None
            raise
        ctx.registered.append(number_id)
    return {"registered": True, "data_localization_region": ctx.data_localization_region,
            "registered_numbers": list(ctx.registered)}


def after_register(ctx: Context, attempts: int, error: GraphError | None) -> None:
    """However the step ended: each number Meta registered in this run is marked so (also when a later one
    waits for its PIN), a PIN Meta refused is not kept, and the calls are counted against Meta's limit
    (``before_register`` keeps to it) as they were made: Graph's retries of a transient failure besides the
    one call counted for each number, less the numbers never asked once an earlier one stopped the run. (A
    call that crashed before it was sent stays counted: a count too high only stops us a call early.)"""
    for number_id in ctx.register_calls:
        if number_id in ctx.registered:
            phone = phone_record(ctx, number_id)
            phone.registered_at = now_utc()
            phone.status = "CONNECTED"
            phone.data_localization_region = ctx.data_localization_region
    if not attempts or not ctx.register_calls:
        return  # none sent, or ``before_register`` refused: its calls were not counted either
    for number_id in ctx.pins:
        if number_id not in ctx.register_calls:
            unasked = phone_record(ctx, number_id)
            unasked.registration_attempts = max(0, (unasked.registration_attempts or 0) - 1)
    last = phone_record(ctx, ctx.register_calls[-1])
    if error is not None and error.code == PIN_MISMATCH:
        last.pin = None  # the PIN esu chose is not the number's: keep none until the customer gives theirs
    if error is not None and error.code == REGISTER_LIMIT_CODE:
        # Meta counts calls we may not know of (another app, the number's owner) and now blocks the number
        # for 72 hours: stop asking until then.
        last.registration_window_started_at = now_utc()
        last.registration_attempts = max(REGISTER_LIMIT, last.registration_attempts or 0)
        return
    if attempts > len(ctx.register_calls):
        _count_registration_calls(last, attempts - len(ctx.register_calls))


def already_on_cloud_api(phone: dict[str, Any]) -> bool:
    """A number Meta shows CONNECTED on Cloud API. Its ``code_verification_status`` may read EXPIRED (recorded
    responses; meta-reference.md §5.2): the code proved ownership once, and the number is in use. Registration
    ("Register a business phone number") is what makes a number usable with Cloud API; the docs ask for it
    again only after a deregistration, a display name change or to change local storage, none of which an
    onboarding does, and a refused or repeated call counts against the 10 per 72 hours. So: nothing to do."""
    return (str(phone.get("status") or "").upper() == "CONNECTED"
            and str(phone.get("platform_type") or "").upper() == "CLOUD_API")


def _not_registered(ctx: Context) -> str | None:
    """Why the onboarding's number is not registered (and so no number is), or None."""
    phone = ctx.results["read_phone_number"]
    business_app = not_registered_reason(ctx)
    if business_app:
        return business_app  # Meta's is_on_biz_app, even when the browser reported a plain FINISH
    if ctx.event in FINISH_NUMBER_IN_USE and already_on_cloud_api(phone):
        # An on-behalf-of migration or an App-Only Install (app-only-install.md) hands over an account already
        # in use; the docs ask to register again only after a deregistration (see already_on_cloud_api).
        return f"{ctx.event}: the number is already connected to Cloud API, so it is not registered again"
    if _connected_unverified(phone):
        status = str(phone.get("code_verification_status") or "").upper()
        return (f"already connected to Cloud API (code verification {status or 'not given'}): "
                "registered before, so not registered again and no code asked for")
    return None


def _verified(ctx: Context) -> bool:
    """Whether the number read showed it verified: only then does ``run_register`` call Meta."""
    return str(ctx.results["read_phone_number"].get("code_verification_status") or "").upper() == "VERIFIED"


def _connected_unverified(phone: dict[str, Any]) -> bool:
    return str(phone.get("code_verification_status") or "").upper() != "VERIFIED" and already_on_cloud_api(phone)


def _numbers(ctx: Context) -> list[str]:
    """The numbers to register, in order: the onboarding's own, then the other WABAs' that are verified, not
    already on Cloud API and not on the WhatsApp Business app."""
    more = [str(number["id"]) for number in ctx.results["read_phone_number"].get("more_numbers") or []
            if str(number.get("code_verification_status") or "").upper() == "VERIFIED"
            and not already_on_cloud_api(number) and not number.get("is_on_biz_app")]
    return [ctx.phone_number_id, *more]


def _display(ctx: Context, number_id: str) -> str:
    """The number as Meta displays it (its id when the read did not say)."""
    read = ctx.results["read_phone_number"]
    for number in [read, *(read.get("more_numbers") or [])]:
        if str(number.get("id") or ctx.phone_number_id) == number_id and number.get("display_phone_number"):
            return str(number["display_phone_number"])
    return number_id


def _count_registration_calls(phone: PhoneNumber, calls: int) -> None:
    """Add ``calls`` to the number's registrations in Meta's 72-hour window, which starts anew once passed."""
    now = now_utc()
    if phone.registration_window_started_at is None or now - phone.registration_window_started_at > REGISTER_WINDOW:
        phone.registration_window_started_at = now
        phone.registration_attempts = 0
    phone.registration_attempts = (phone.registration_attempts or 0) + calls
