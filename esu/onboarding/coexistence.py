"""WhatsApp Business app numbers (coexistence), decided by what Meta says of the number, and their one-shot
syncs of contacts and message history.

"Onboard WhatsApp Business app users" (meta-docs/embedded-signup/onboard-whatsapp-business-app-users.md):
such a number is already registered, so registration is skipped; Meta's ``is_on_biz_app`` on the number
says whether it is one, whatever event the browser reported (a code that arrived alone is taken as FINISH).
Once onboarded, and subscribed to the WABA's webhooks (the syncs' results arrive as ``smb_app_state_sync``
and ``history`` webhooks), contacts then history are synced, each once, within 24 hours of the signup.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..graph import GraphClient
from ..models import Onboarding, now_utc
from .context import Context
from .finishes import FINISH_COEXISTENCE
from .outcomes import Skip, StepFailed
from .records import phone_record, step_asked_at

#: How long after onboarding Meta lets the business app's data be synced.
SYNC_WINDOW = timedelta(hours=24)
#: The ``history`` webhook's error when the business chose not to share its message history.
HISTORY_DECLINED = 2593109


def on_business_app(ctx: Context) -> bool:
    """Whether the number is on the WhatsApp Business app: Meta's ``is_on_biz_app`` once the number was read
    with it; before that, or if Meta left it out, the browser's event."""
    phone = ctx.results.get("read_phone_number") or {}
    if isinstance(phone.get("is_on_biz_app"), bool):
        return phone["is_on_biz_app"]
    return ctx.event == FINISH_COEXISTENCE


def not_registered_reason(ctx: Context) -> str | None:
    """Why registration must not be asked of Meta for this number, or None."""
    if on_business_app(ctx) or ctx.event == FINISH_COEXISTENCE:
        return "WhatsApp Business app numbers stay registered on the app; their data is synced instead"
    return None


def before_sync(onboarding: Onboarding, ctx: Context) -> None:
    """Open the 24-hour window at the signup, and refuse a sync asked after it has closed."""
    if not on_business_app(ctx):
        return  # the run skips it
    phone = phone_record(ctx, ctx.phone_number_id)
    if phone.business_app_sync_until is None:
        phone.business_app_sync_until = onboarding.created_at + SYNC_WINDOW
    if now_utc() > phone.business_app_sync_until:
        raise StepFailed("Meta allows 24 hours after signup to sync a WhatsApp Business app's data; the customer "
                         "must disconnect the number in the app and go through signup again")


def _sync(ctx: Context, api: GraphClient, sync_type: str) -> dict[str, Any]:
    if not ctx.phone_number_id:
        raise Skip("the WhatsApp Business Account has no phone number yet: nothing to sync")
    if not on_business_app(ctx):
        raise Skip("only for WhatsApp Business app numbers (Meta reports is_on_biz_app false)")
    # "Check onboarding status": is_on_biz_app and platform_type CLOUD_API together mean the number works on
    # both; before that there is nothing to sync from yet.
    platform = str((ctx.results.get("read_phone_number") or {}).get("platform_type") or "").upper()
    if platform and platform != "CLOUD_API":
        raise StepFailed(f"Meta shows the WhatsApp Business app number on {platform}, not yet connected to Cloud "
                         "API: retry once the customer has finished connecting it in the app")
    answer = api.sync_business_app(ctx.phone_number_id, sync_type, ctx.token)
    # Meta asks to keep the request id, for support.
    return {"request_id": answer.get("request_id"), "sync_type": sync_type}


def run_sync_contacts(ctx: Context, api: GraphClient) -> dict[str, Any]:
    # Contacts first, then history, each only once: two steps, so that a retry after a failed history sync
    # does not ask for the contacts again.
    return _sync(ctx, api, "smb_app_state_sync")


def run_sync_history(ctx: Context, api: GraphClient) -> dict[str, Any]:
    return _sync(ctx, api, "history")


def save_sync_contacts(onboarding: Onboarding, ctx: Context, result: dict[str, Any]) -> None:
    phone_record(ctx, ctx.phone_number_id).contacts_sync_requested_at = step_asked_at(onboarding, "sync_contacts")


def save_sync_history(onboarding: Onboarding, ctx: Context, result: dict[str, Any]) -> None:
    phone_record(ctx, ctx.phone_number_id).history_sync_requested_at = step_asked_at(onboarding, "sync_history")
