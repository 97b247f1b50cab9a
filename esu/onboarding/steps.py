"""The steps of an onboarding and their table (``STEPS``, at the end): what each step needs, when it applies,
and the functions the runner calls for it.

``run`` talks to Graph in a worker thread and may fill in the Context for the steps that wait for it; the
other functions run on the caller's thread, where the database is, and ``save`` writes what ``run``
returned. A new step is its functions here and a row in the table.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from ..extensions import db
from ..graph import GraphClient, GraphError
from ..i18n import N_
from ..models import WABA_PROOF_STEPS, Onboarding, OnboardingStatus, PhoneNumber, WebhookEvent, now_utc
from .assets import add_waba
from .coexistence import (
    before_sync,
    not_registered_reason,
    run_sync_contacts,
    run_sync_history,
    save_sync_contacts,
    save_sync_history,
)
from .context import Context
from .finishes import (
    FINISH_NUMBER_IN_USE,
    applies_always,
    has_phone,
    partner_only,
    registers,
    subscribes,
    syncs,
)
from .outcomes import Skip, StepFailed, Wait
from .records import phone_record, save_phone_read, save_read_fact, save_templates, step_asked_at, waba_record

# Logged under the package's name, which log filters and searches already know.
log = logging.getLogger(__package__)

#: How many unclaimed PARTNER_ADDED WABAs a code-only callback tries, newest first.
ANNOUNCED_WABAS_TRIED = 10
REGISTER_LIMIT = 10
#: Meta's answer once a number has been registered (or deregistered) too often.
REGISTER_LIMIT_CODE = 133016
REGISTER_WINDOW = timedelta(hours=72)
#: Meta's answer when the number already has another two-step verification PIN.
PIN_MISMATCH = 133005
#: Why the number steps did not run for a WABA that has no number yet (any finish: allowed since v3).
NO_NUMBER_YET = "the WhatsApp Business Account has no phone number yet: connected, with a number to add"


@dataclass(frozen=True)
class Step:
    """One row of ``STEPS``: a step of the sequence and the functions the runner calls for it."""

    name: str
    label: str
    #: Talks to Graph in a worker thread (no database); what it returns is the step's recorded result.
    run: Callable[[Context, GraphClient], dict[str, Any]]
    #: Writes what ``run`` returned to the records, on the caller's thread, once it succeeded.
    save: Callable[[Onboarding, Context, dict[str, Any]], None]
    #: The steps that must have succeeded, or been skipped, before this one starts.
    needs: tuple[str, ...] = ()
    #: A reason to skip the step for this onboarding, or None.
    applies: Callable[[Context], str | None] = applies_always
    #: Runs on the caller's thread just before ``run``; may raise StepFailed to stop the step.
    before: Callable[[Onboarding, Context], None] | None = None
    #: Runs on the caller's thread once the step has ended, however it ended (before ``save``), with how
    #: many calls it made to Graph and the Graph error it failed with, if any.
    after: Callable[[Context, int, GraphError | None], None] | None = None
    #: Also waits for ``confirm_ids`` when the browser did not say which WABA (or number) it was.
    uses_waba: bool = True

    def waits_for(self, onboarding: Onboarding) -> tuple[str, ...]:
        """The steps this one waits for: ``needs``, and ``confirm_ids`` where ``uses_waba`` asks for it."""
        unknown = onboarding.waba_id is None or (self.name == "read_phone_number" and not onboarding.phone_number_id)
        if self.uses_waba and unknown and "confirm_ids" not in self.needs:
            return (*self.needs, "confirm_ids")
        return self.needs


# -- the steps, in the order of the table --------------------------------------------------------------


def run_exchange(ctx: Context, api: GraphClient) -> dict[str, Any]:
    if not ctx.code:
        raise StepFailed("the signup code was already used; the customer needs to go through signup again")
    token = api.exchange_code(ctx.code)
    ctx.token = token["access_token"]
    return {"token_type": token.get("token_type"), "expires_in": token.get("expires_in")}


def save_exchange(onboarding: Onboarding, ctx: Context, result: dict[str, Any]) -> None:
    onboarding.business_token = ctx.token
    if result.get("expires_in"):
        onboarding.token_expires_at = now_utc() + timedelta(seconds=int(result["expires_in"]))


def before_confirm(onboarding: Onboarding, ctx: Context) -> None:
    if ctx.waba_id is None:
        # A code-only callback: the WABAs Meta's PARTNER_ADDED announced that no callback has claimed yet are
        # where to look last (run_confirm reads each with this customer's token: only theirs answers).
        ctx.announced_waba_ids = list(db.session.scalars(
            sa.select(Onboarding.waba_id)
            .where(Onboarding.code_digest.is_(None), Onboarding.status == OnboardingStatus.AWAITING_CALLBACK,
                   Onboarding.waba_id.is_not(None), Onboarding.id != onboarding.id)
            .order_by(Onboarding.id.desc()).limit(ANNOUNCED_WABAS_TRIED)))


def run_confirm(ctx: Context, api: GraphClient) -> dict[str, Any]:
    """The token is valid and ours; the WABA is the customer's.

    Meta's ``debug_token`` listed the granted WABAs in ``granular_scopes`` until June 2026; Embedded Signup
    tokens now carry no such entry (chatwoot/chatwoot#14690). The list is used when Meta sends it. Without
    it, the WABA the browser reported is proved by reading it with the customer's token (``read_waba``,
    which the credit line waits for), and a code-only callback finds it as described in ``_find_waba``."""
    data = api.debug_token(ctx.token)
    if not data.get("is_valid"):
        raise StepFailed("Meta reports the new business token as not valid")
    if str(data.get("app_id")) != str(ctx.app_id):
        raise StepFailed("the business token was issued to another app")
    granted = granted_waba_ids(data)
    if ctx.waba_id is None:
        ctx.waba_id, found_in = _find_waba(ctx, api, data, granted)
    elif granted is None:
        found_in = "the browser's report (read with the customer's token in read_waba)"
    elif ctx.waba_id in granted:
        found_in = "the browser's report, among debug_token's granted ones"
    else:
        raise StepFailed(f"WhatsApp Business Account {ctx.waba_id} is not among those the customer granted")
    not_granted = [waba_id for waba_id in ctx.more_waba_ids if granted is not None and waba_id not in granted]
    if not_granted:
        raise StepFailed(f"WhatsApp Business Account {', '.join(not_granted)} is not among those the customer granted")
    return {"waba_id": ctx.waba_id, "waba_ids": ctx.waba_ids, "found_in": found_in, "granted_waba_ids": granted,
            "token_type": data.get("type"), "expires_at": data.get("expires_at")}


def granted_waba_ids(debug: dict[str, Any]) -> list[str] | None:
    """The WABAs ``debug_token`` lists as granted, most recently onboarded first; None when it lists none."""
    for scope in debug.get("granular_scopes") or []:
        if scope.get("scope") == "whatsapp_business_management" and scope.get("target_ids"):
            return [str(target) for target in scope["target_ids"]]
    return None


def _find_waba(ctx: Context, api: GraphClient, debug: dict[str, Any], granted: list[str] | None) -> tuple[str, str]:
    """The WABA of a callback that brought only the code: the newest granted one when ``debug_token`` lists
    them; else the first assigned to the system user the token acts as; else one that Meta's PARTNER_ADDED
    announced and the token can read."""
    if granted:
        return granted[0], "debug_token's granted WABAs"
    if debug.get("user_id"):
        try:
            assigned = api.assigned_wabas(str(debug["user_id"]), ctx.token)
        except GraphError as error:
            if error.transient:
                raise
            log.info("the token's assigned WABAs could not be read: %s", error)
            assigned = []
        if assigned:
            return str(assigned[0]["id"]), "the WABAs assigned to the token's system user"
    for waba_id in ctx.announced_waba_ids:
        try:
            api.get_waba(waba_id, ctx.token)
        except GraphError as error:
            if error.transient:
                raise
            continue
        return waba_id, "Meta's PARTNER_ADDED webhook, read with the customer's token"
    raise StepFailed("Meta has not said yet which WhatsApp Business Account the customer shared; "
                     "retry once its partner webhook has arrived")


def save_confirm(onboarding: Onboarding, ctx: Context, result: dict[str, Any]) -> None:
    onboarding.waba_id = result["waba_id"]
    add_waba(onboarding, result["waba_id"])
    waba = waba_record(ctx, result["waba_id"])
    waba.business_id = waba.business_id or onboarding.business_id
    _absorb_placeholders_once_proved(onboarding, ctx, "confirm_ids")


def _absorb_placeholders_once_proved(onboarding: Onboarding, ctx: Context, saving: str) -> None:
    """PARTNER_ADDED may have come before the callback and left a record waiting for it: fold it into this
    onboarding, with its webhook events, once the run has proved the WABA the customer's (every step of
    ``WABA_PROOF_STEPS`` done, the one ``saving`` now included; forwarding asks the same). A callback that
    merely names someone else's WABA leaves their record waiting for their own callback."""
    if any(name != saving and name not in ctx.results for name in WABA_PROOF_STEPS):
        return
    # Every WABA of the onboarding: read_waba read each of them with the customer's token.
    placeholders = db.session.scalars(sa.select(Onboarding).where(
        Onboarding.waba_id.in_(ctx.waba_ids or [onboarding.waba_id]), Onboarding.id != onboarding.id,
        Onboarding.code_digest.is_(None), Onboarding.status == OnboardingStatus.AWAITING_CALLBACK)).all()
    if placeholders:
        # The run does not reload its onboarding after each commit; a webhook may have stamped it since.
        db.session.refresh(onboarding, ["partner_added_at"])
    for placeholder in placeholders:
        stamps = [stamp for stamp in (onboarding.partner_added_at, placeholder.partner_added_at) if stamp]
        onboarding.partner_added_at = max(stamps, default=None)
        db.session.execute(sa.update(WebhookEvent).where(WebhookEvent.onboarding_id == placeholder.id)
                           .values(onboarding_id=onboarding.id))
        db.session.delete(placeholder)


def run_read_waba(ctx: Context, api: GraphClient) -> dict[str, Any]:
    # Each read is also the proof that the customer's token reaches that WABA (see run_confirm).
    result = api.get_waba(ctx.waba_id, ctx.token)
    if ctx.more_waba_ids:
        result["more_wabas"] = [{"id": waba_id, **api.get_waba(waba_id, ctx.token)} for waba_id in ctx.more_waba_ids]
    return result


def save_read_waba(onboarding: Onboarding, ctx: Context, result: dict[str, Any]) -> None:
    for more in result.get("more_wabas") or []:
        _save_waba_read(onboarding, ctx, str(more["id"]), more)
    waba = _save_waba_read(onboarding, ctx, ctx.waba_id, {key: value for key, value in result.items()
                                                          if key != "more_wabas"})
    owner = result.get("owner_business_info") or {}
    onboarding.business_id = onboarding.business_id or waba.business_id
    onboarding.business_name = owner.get("name") or result.get("name") or onboarding.business_name
    _absorb_placeholders_once_proved(onboarding, ctx, "read_waba")


def _save_waba_read(onboarding: Onboarding, ctx: Context, waba_id: str, result: dict[str, Any]):
    waba = waba_record(ctx, waba_id)
    owner = result.get("owner_business_info") or {}
    waba.business_id = owner.get("id") or waba.business_id or onboarding.business_id
    for name in ("name", "currency", "timezone_id", "message_template_namespace",
                 "business_verification_status", "ownership_type", "country"):
        if result.get(name) is not None:
            setattr(waba, name, str(result[name]))
    # Meta spells it either way (VERIFIED, not_verified): one spelling in our records.
    if waba.business_verification_status:
        waba.business_verification_status = waba.business_verification_status.upper()
    if result.get("account_review_status") is not None:
        save_read_fact(waba, "account_review_updated_at", step_asked_at(onboarding, "read_waba"),
                       account_review_status=str(result["account_review_status"]))
    waba.details = result
    return waba


def run_subscribe(ctx: Context, api: GraphClient) -> dict[str, Any]:
    answers = [api.subscribe_app(waba_id, ctx.token) for waba_id in ctx.waba_ids]
    return {**answers[0], "waba_ids": ctx.waba_ids}


def save_subscribe(onboarding: Onboarding, ctx: Context, result: dict[str, Any]) -> None:
    for waba_id in result.get("waba_ids") or [ctx.waba_id]:
        waba_record(ctx, waba_id).subscribed_at = now_utc()


def run_assign_system_user(ctx: Context, api: GraphClient) -> dict[str, Any]:
    # This only gives our own system user access to a WABA already shared with our business, so it
    # may run beside the confirmation; the credit line, which bills us, waits for it.
    answers = [api.assign_system_user(waba_id, ctx.system_user_id) for waba_id in ctx.waba_ids]
    return {**answers[0], "waba_ids": ctx.waba_ids}


def run_share_credit_line(ctx: Context, api: GraphClient) -> dict[str, Any]:
    shared = []
    for waba_id in ctx.waba_ids:
        result = api.share_credit_line(ctx.credit_line_id, waba_id, ctx.credit_currency)
        if not result.get("allocation_config_id"):
            raise StepFailed("Meta shared the credit line but returned no allocation config id")
        shared.append({**result, "waba_id": waba_id})
    return {**shared[0], "more_wabas": shared[1:]} if len(shared) > 1 else shared[0]


def save_share_credit_line(onboarding: Onboarding, ctx: Context, result: dict[str, Any]) -> None:
    for shared in [result, *(result.get("more_wabas") or [])]:
        waba_record(ctx, str(shared.get("waba_id") or ctx.waba_id)).credit_allocation_config_id = str(
            shared["allocation_config_id"])


def run_read_phone(ctx: Context, api: GraphClient) -> dict[str, Any]:
    """The onboarding's number, and every number of its other WABAs (a multi-WABA flow's), each with its WABA.

    The onboarding's own number is the one the browser reported (or "Look for numbers" found), else the first
    Meta lists on the first of its WABAs that has one. So a customer whose first WABA has no number yet while
    another has is onboarded with that number as theirs: the admin sees the number, never "number to add"
    beside numbers that were onboarded. With no number on any WABA the step skips (NO_NUMBER_YET)."""
    listed = {waba_id: api.list_phone_numbers(waba_id, ctx.token) for waba_id in ctx.more_waba_ids}
    if not ctx.phone_number_id:
        first = api.list_phone_numbers(ctx.waba_id, ctx.token)
        found = next((numbers[0] for numbers in (first, *listed.values()) if numbers), None)
        if found is None:
            raise Skip(NO_NUMBER_YET)
        ctx.phone_number_id = str(found["id"])
    # The number's WABA: the other one that lists it, else the first (whose list is not read for a number
    # the browser reported).
    its_waba = next((waba_id for waba_id, numbers in listed.items()
                     if any(str(number["id"]) == ctx.phone_number_id for number in numbers)), ctx.waba_id)
    result = {**api.get_phone_number(ctx.phone_number_id, ctx.token), "waba_id": its_waba}
    more = [{**api.get_phone_number(str(number["id"]), ctx.token), "waba_id": waba_id}
            for waba_id, numbers in listed.items() for number in numbers if str(number["id"]) != ctx.phone_number_id]
    return {**result, "more_numbers": more} if more else result


def save_read_phone(onboarding: Onboarding, ctx: Context, result: dict[str, Any]) -> None:
    for more in result.get("more_numbers") or []:
        save_phone_read(onboarding, ctx, more)
    phone = save_phone_read(onboarding, ctx, {key: value for key, value in result.items() if key != "more_numbers"})
    onboarding.phone_number_id = phone.id
    onboarding.display_phone_number = phone.display_phone_number


def before_register(onboarding: Onboarding, ctx: Context) -> None:
    if "read_phone_number" not in ctx.results:
        return  # no number yet: run_register skips
    for number in _more_to_register(ctx):
        more = phone_record(ctx, str(number["id"]))
        more.pin = more.pin or f"{secrets.randbelow(10**6):06d}"
        ctx.more_pins[more.id] = more.pin
        _count_registration_calls(more, 1)
    if _connected_unverified(ctx.results.get("read_phone_number") or {}) or not_registered_reason(ctx):
        return  # run_register skips it: no PIN of ours is set on the number, so none is kept
    phone = phone_record(ctx, ctx.phone_number_id)
    window_open = (phone.registration_window_started_at is not None
                   and now_utc() - phone.registration_window_started_at < REGISTER_WINDOW)
    if window_open and phone.registration_attempts >= REGISTER_LIMIT:
        raise StepFailed(f"Meta allows {REGISTER_LIMIT} registration attempts per number in 72 hours; "
                         "try again after the window has passed")
    # The PIN is kept before Meta sees it: a crash after registering must not lose it.
    if not phone.pin:
        phone.pin = ctx.pin
    ctx.pin = phone.pin
    if _verified(ctx):
        # The call is counted before Meta hears of it, in the same commit: a worker killed during the call
        # must not leave a registration Meta counted and we did not.
        _count_registration_calls(phone, 1)


def _verified(ctx: Context) -> bool:
    """Whether the number read showed it verified: only then does ``run_register`` call Meta."""
    return str(ctx.results["read_phone_number"].get("code_verification_status") or "").upper() == "VERIFIED"


def already_on_cloud_api(phone: dict[str, Any]) -> bool:
    """A number Meta shows CONNECTED on Cloud API. Its ``code_verification_status`` may read EXPIRED (recorded
    responses; meta-reference.md §5.2): the code proved ownership once, and the number is in use. Registration
    ("Register a business phone number") is what makes a number usable with Cloud API; the docs ask for it
    again only after a deregistration, a display name change or to change local storage, none of which an
    onboarding does, and a refused or repeated call counts against the 10 per 72 hours. So: nothing to do."""
    return (str(phone.get("status") or "").upper() == "CONNECTED"
            and str(phone.get("platform_type") or "").upper() == "CLOUD_API")


def _connected_unverified(phone: dict[str, Any]) -> bool:
    return str(phone.get("code_verification_status") or "").upper() != "VERIFIED" and already_on_cloud_api(phone)


def _more_to_register(ctx: Context) -> list[dict[str, Any]]:
    """The other WABAs' numbers to register: verified, and not already on Cloud API."""
    return [number for number in ctx.results["read_phone_number"].get("more_numbers") or []
            if str(number.get("code_verification_status") or "").upper() == "VERIFIED"
            and not already_on_cloud_api(number) and not number.get("is_on_biz_app")]


def run_register(ctx: Context, api: GraphClient) -> dict[str, Any]:
    phone = ctx.results.get("read_phone_number")
    if phone is None:
        raise Skip(NO_NUMBER_YET)
    business_app = not_registered_reason(ctx)
    if business_app:
        raise Skip(business_app)  # Meta's is_on_biz_app, even when the browser reported a plain FINISH
    if ctx.event in FINISH_NUMBER_IN_USE and already_on_cloud_api(phone):
        # An on-behalf-of migration or an App-Only Install (app-only-install.md) hands over an account already
        # in use; the docs ask to register again only after a deregistration (see already_on_cloud_api).
        raise Skip(f"{ctx.event}: the number is already connected to Cloud API, so it is not registered again")
    if _connected_unverified(phone):
        status = str(phone.get("code_verification_status") or "").upper()
        raise Skip(f"already connected to Cloud API (code verification {status or 'not given'}): "
                   "registered before, so not registered again and no code asked for")
    if not _verified(ctx):
        raise Wait("the number is not verified yet: the customer must enter the code Meta sends")
    try:
        api.register_phone(ctx.phone_number_id, ctx.pin, ctx.token, ctx.data_localization_region)
    except GraphError as error:
        if error.code == PIN_MISMATCH:
            # "Register a business phone number": a number with two-step verification on registers only with
            # its own PIN. The customer (or the admin) gives it, and registration goes on with it.
            raise Wait("the number already has a two-step verification PIN: the customer must enter it",
                       error=error) from None
        raise
    for number_id, pin in ctx.more_pins.items():
        api.register_phone(number_id, pin, ctx.token, ctx.data_localization_region)
    return {"registered": True, "data_localization_region": ctx.data_localization_region,
            **({"more_registered": list(ctx.more_pins)} if ctx.more_pins else {})}


def save_register(onboarding: Onboarding, ctx: Context, result: dict[str, Any]) -> None:
    for number_id in [ctx.phone_number_id, *(result.get("more_registered") or [])]:
        phone = phone_record(ctx, number_id)
        phone.registered_at = now_utc()
        phone.status = "CONNECTED"
        phone.data_localization_region = result.get("data_localization_region")


def count_registrations(ctx: Context, attempts: int, error: GraphError | None) -> None:
    """Count the registration calls against Meta's limit (``before_register`` keeps to it) beyond the one
    ``before_register`` counted: Graph's retries of a transient failure. (A call that crashed before it was
    sent stays counted: a count too high only stops us a call early.)"""
    if not attempts:
        return  # none sent, or ``before_register`` refused: its one call was not counted either
    phone = phone_record(ctx, ctx.phone_number_id)
    if error is not None and error.code == PIN_MISMATCH:
        phone.pin = None  # the PIN esu chose is not the number's: keep none until the customer gives theirs
    if error is not None and error.code == REGISTER_LIMIT_CODE:
        # Meta counts calls we may not know of (another app, the number's owner) and now blocks the number
        # for 72 hours: stop asking until then.
        phone.registration_window_started_at = now_utc()
        phone.registration_attempts = max(REGISTER_LIMIT, phone.registration_attempts or 0)
        return
    if attempts > 1:
        _count_registration_calls(phone, attempts - 1)


def _count_registration_calls(phone: PhoneNumber, calls: int) -> None:
    """Add ``calls`` to the number's registrations in Meta's 72-hour window, which starts anew once passed."""
    now = now_utc()
    if phone.registration_window_started_at is None or now - phone.registration_window_started_at > REGISTER_WINDOW:
        phone.registration_window_started_at = now
        phone.registration_attempts = 0
    phone.registration_attempts = (phone.registration_attempts or 0) + calls


def run_fetch_templates(ctx: Context, api: GraphClient) -> dict[str, Any]:
    by_waba = {waba_id: api.list_message_templates(waba_id, ctx.token) for waba_id in ctx.waba_ids}
    return {"count": sum(len(templates) for templates in by_waba.values()), "templates": by_waba}


def save_fetch_templates(onboarding: Onboarding, ctx: Context, result: dict[str, Any]) -> None:
    for waba_id, fetched in result.pop("templates").items():
        waba = waba_record(ctx, waba_id)
        if fetched:
            save_templates(waba.id, fetched, step_asked_at(onboarding, "fetch_templates"))


def nothing_to_save(onboarding: Onboarding, ctx: Context, result: dict[str, Any]) -> None:
    pass


# -- the table, in the order of the story: each step after those it needs ------------------------------

STEPS: tuple[Step, ...] = (
    Step("exchange_code", N_("Exchange the signup code for a business token"),
         run=run_exchange, save=save_exchange, uses_waba=False),
    Step("confirm_ids", N_("Confirm the shared WhatsApp Business Account"), needs=("exchange_code",),
         before=before_confirm, run=run_confirm, save=save_confirm, uses_waba=False),
    Step("read_waba", N_("Read the WhatsApp Business Account"), needs=("exchange_code",),
         run=run_read_waba, save=save_read_waba),
    Step("subscribe_webhooks", N_("Subscribe to the account's webhooks"), needs=("exchange_code",),
         applies=subscribes, run=run_subscribe, save=save_subscribe),
    Step("assign_system_user", N_("Add our system user to the account"), needs=("exchange_code",),
         applies=partner_only, run=run_assign_system_user, save=nothing_to_save),
    # The credit line bills us: it waits until the customer's token has read the WABA, the proof of access
    # when debug_token lists no granted WABAs.
    Step("share_credit_line", N_("Share our credit line"), needs=("confirm_ids", "assign_system_user", "read_waba"),
         applies=partner_only, run=run_share_credit_line, save=save_share_credit_line),
    Step("read_phone_number", N_("Read the phone number"), needs=("exchange_code",),
         applies=has_phone, run=run_read_phone, save=save_read_phone),
    Step("register_phone", N_("Register the phone number"), needs=("read_phone_number",),
         applies=registers, before=before_register, run=run_register, save=save_register,
         after=count_registrations),
    # The syncs' results arrive as webhooks: only once the subscription to them succeeded.
    Step("sync_contacts", N_("Sync the WhatsApp Business app's contacts"),
         needs=("read_phone_number", "subscribe_webhooks"),
         applies=syncs, before=before_sync, run=run_sync_contacts, save=save_sync_contacts),
    Step("sync_history", N_("Sync the WhatsApp Business app's message history"), needs=("sync_contacts",),
         applies=syncs, before=before_sync, run=run_sync_history, save=save_sync_history),
    Step("fetch_templates", N_("Fetch the approved message templates"), needs=("exchange_code",),
         run=run_fetch_templates, save=save_fetch_templates),
)
STEPS_BY_NAME = {step.name: step for step in STEPS}
LABELS = {step.name: step.label for step in STEPS} | {
    "request_code": N_("Send the verification code"),
    "verify_code": N_("Check the verification code"),
}
# Where each step stands in the story; the verification calls come just before registration.
POSITIONS = {step.name: index * 10 for index, step in enumerate(STEPS)}
POSITIONS |= {"request_code": POSITIONS["register_phone"] - 2, "verify_code": POSITIONS["register_phone"] - 1}
