"""What a change about a WhatsApp Business Account does to it (``values.WABA_FIELDS``): its event
history, its state (:data:`STATES`), its business verification, its review, its limits; and, for
PARTNER_ADDED and PARTNER_REMOVED, the customer's onboarding."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ...extensions import db
from ...i18n import N_
from ...models import Onboarding, OnboardingStatus
from ...models.assets import WABA, OnboardingAsset
from ..records import Event, Record, Records, set_if_newer, value_of
from ..values import meta_code, meta_reason, node_id, short_text, unix_time

#: What each state of an account means (in the admin, through gettext), and whether it needs a person (shown on
#: the dashboard).
STATES: dict[str, tuple[str, bool]] = {
    "active": (N_("connected and able to message"), False),
    "disconnected": (N_("esu's access is gone: the customer uninstalled the app or revoked its token"), True),
    "offboarded": (N_("the customer removed the agency as partner"), True),
    "paused": (N_("the WhatsApp Business app customer is offboarded (device change or re-registration)"), True),
    "deleted": (N_("the WhatsApp Business Account was deleted"), True),
    "banned": (N_("Meta disabled the account"), True),
    "ban_scheduled": (N_("Meta scheduled the account to be disabled"), True),
    "restricted": (N_("Meta restricted what the account can do"), True),
    "violation": (N_("Meta found a policy violation"), True),
}
NEEDS_A_PERSON = tuple(state for state, (_meaning, needs) in STATES.items() if needs)
#: A ban Meta scheduled whose date has passed: Meta sends no event when a scheduled ban takes effect.
BAN_DUE = N_("Meta scheduled the account to be disabled on a date that has passed: it is likely disabled now "
             "(no word from Meta since)")


def state_meaning(state: str | None, until: datetime | None, now: datetime | None = None) -> str | None:
    """What the account's state means at ``now`` (to be translated where it is shown), or None for a state esu
    does not know."""
    if state not in STATES:
        return None
    if state == "ban_scheduled" and until is not None and until <= (now or datetime.now(UTC)):
        return BAN_DUE
    return STATES[state][0]

#: Partner-led business verification's statuses, in the spelling of ``business_verification_status``.
CERTIFICATION_STATUS = {"APPROVED": "VERIFIED", "FAILED": "REJECTED", "PENDING": "PENDING",
                        "DISCARDED": "NOT_VERIFIED", "REVOKED": "NOT_VERIFIED"}


def apply_account_update(event: Event, records: Records) -> None:
    """Record the event on the WABA (the latest of each kind) and the state or verification it sets;
    PARTNER_ADDED (or PARTNER_APP_INSTALLED) links or creates the onboarding, PARTNER_REMOVED offboards it."""
    value = value_of(event)
    name = meta_code(value.get("event"), "event", 64)
    waba = records.waba(event)
    owner = node_id((value.get("waba_info") or {}).get("owner_business_id")) \
        if isinstance(value.get("waba_info"), dict) else None
    if owner and not waba.business_id:
        waba.business_id = owner
    history = dict(waba.account_events or {})
    latest = history.get(name)
    if latest is None or event.newer_than(_stamp(latest)):
        history[name] = {**{key: item for key, item in value.items() if key != "event"},
                         "occurred_at": event.occurred_at.isoformat()}
        waba.account_events = history
    state = _STATE_OF.get(name)
    if state is not None:
        set_state(event, waba, *state(value))
    verification = _verification(name, value)
    if verification is not None:
        set_if_newer(event, waba, "business_verification_updated_at", business_verification_status=verification)
    if name in ("PARTNER_ADDED", "PARTNER_APP_INSTALLED"):
        # App-Only Install announces its customer with PARTNER_APP_INSTALLED alone (app-only-install.md).
        _partner_added(event, waba, records)
    elif name == "PARTNER_REMOVED":
        _partner_removed(event, waba, records)


def set_state(event: Event, waba: Record, state: str, reason: str | None = None,
              until: datetime | None = None) -> None:
    """The ordering rule for the account's state: the newest fact about it wins, with its reason and time."""
    set_if_newer(event, waba, "state_at", state=state, state_reason=short_text(reason, 300), state_until=until)


def _ban(value: dict[str, Any]) -> tuple[str, str | None, datetime | None]:
    info = value.get("ban_info") if isinstance(value.get("ban_info"), dict) else {}
    ban_state = info.get("waba_ban_state")
    date = _ban_date(info.get("waba_ban_date"))
    if ban_state == "REINSTATE":
        return "active", "Meta reinstated the account", None
    if ban_state == "SCHEDULE_FOR_DISABLE":
        return "ban_scheduled", "Meta will disable the account" + (f" on {info['waba_ban_date']}" if date else ""), date
    return "banned", "Meta disabled the account" + (f" on {info['waba_ban_date']}" if date else ""), None


def _ban_date(text: Any) -> datetime | None:
    """Meta writes the ban's date in words ("April 17, 2025")."""
    try:
        return datetime.strptime(text, "%B %d, %Y").replace(tzinfo=UTC) if isinstance(text, str) else None
    except ValueError:
        return None


def _restriction(value: dict[str, Any]) -> tuple[str, str | None, datetime | None]:
    restrictions = [item for item in value.get("restriction_info") or [] if isinstance(item, dict)]
    kinds = [str(item.get("restriction_type")) for item in restrictions if item.get("restriction_type")]
    ends = [end for end in (unix_time(item.get("expiration")) for item in restrictions) if end]
    remedies = [str(item["remediation"]) for item in restrictions if isinstance(item.get("remediation"), str)]
    reason = ", ".join(kinds) or "restricted"
    return "restricted", reason + (f" · {remedies[0]}" if remedies else ""), max(ends, default=None)


def _removed(value: dict[str, Any]) -> tuple[str, str | None, datetime | None]:
    info = value.get("disconnection_info") if isinstance(value.get("disconnection_info"), dict) else {}
    reason = " by ".join(str(info[key]) for key in ("reason", "initiated_by") if info.get(key))
    return "offboarded", reason or "the customer removed the agency as partner", None


def _violation(value: dict[str, Any]) -> tuple[str, str | None, datetime | None]:
    info = value.get("violation_info") if isinstance(value.get("violation_info"), dict) else {}
    return "violation", str(info.get("violation_type") or "policy violation"), None


#: account_update events that set the account's state: (state, reason, until) from the change's value.
_STATE_OF: dict[str, Callable[[dict[str, Any]], tuple[str, str | None, datetime | None]]] = {
    "PARTNER_ADDED": lambda value: ("active", None, None),
    "PARTNER_APP_INSTALLED": lambda value: ("active", None, None),
    "PARTNER_APP_UNINSTALLED": lambda value: ("disconnected", "the customer uninstalled the app", None),
    "PARTNER_REMOVED": _removed,
    "ACCOUNT_OFFBOARDED": lambda value: ("paused", "offboarded after a device change or re-registration", None),
    "ACCOUNT_RECONNECTED": lambda value: ("active", "reconnected", None),
    "ACCOUNT_DELETED": lambda value: ("deleted", None, None),
    "DISABLED_UPDATE": _ban,
    "ACCOUNT_RESTRICTION": _restriction,
    "ACCOUNT_VIOLATION": _violation,
}


def _verification(name: str, value: dict[str, Any]) -> str | None:
    """The business verification an event reports: VERIFIED_ACCOUNT, or partner-led verification's status."""
    if name == "VERIFIED_ACCOUNT":
        return "VERIFIED"
    info = value.get("partner_client_certification_info")
    if name == "PARTNER_CLIENT_CERTIFICATION_STATUS_UPDATE" and isinstance(info, dict):
        status = meta_reason(info.get("status"), "status", 32)
        return CERTIFICATION_STATUS.get(status, status) if status else None
    return None


def _partner_added(event: Event, waba: Record, records: Records) -> None:
    onboardings = records.onboardings.setdefault(waba.id, [])
    removed_at = _stamp((waba.account_events or {}).get("PARTNER_REMOVED"))
    if removed_at is not None and removed_at > event.occurred_at:
        # The customer left after this: nothing to link to or create but the record of it.
        if onboardings:
            event.onboarding_id = onboardings[0].id
        return
    onboarding = next((item for item in onboardings if item.status != OnboardingStatus.OFFBOARDED), None)
    if onboarding is None:
        # The browser never called back (or not yet): the customer exists all the same. The callback,
        # when it comes, folds this record into its own once it has proved the customer granted the WABA.
        onboarding = Onboarding(source="webhook", status=OnboardingStatus.AWAITING_CALLBACK, event="PARTNER_ADDED",
                                waba_id=waba.id, business_id=waba.business_id)
        db.session.add(onboarding)
        db.session.flush()
        # Its WABA among its assets, as every onboarding's: forwarding finds an event's onboardings there.
        db.session.add(OnboardingAsset(onboarding_id=onboarding.id, kind=WABA, asset_id=waba.id))
        onboardings.insert(0, onboarding)
    if onboarding.partner_added_at is None or event.occurred_at > onboarding.partner_added_at:
        onboarding.partner_added_at = event.occurred_at
    event.onboarding_id = onboarding.id


def _partner_removed(event: Event, waba: Record, records: Records) -> None:
    onboardings = records.onboardings.get(waba.id) or []
    for onboarding in onboardings:
        if onboarding.waba_id != waba.id:
            continue  # another WABA of a multi-WABA onboarding left: the onboarding's own stays
        # Meta's times are whole seconds: compare ours at the same grain.
        began = (onboarding.partner_added_at or onboarding.created_at).replace(microsecond=0)
        if onboarding.status != OnboardingStatus.OFFBOARDED and began <= event.occurred_at:
            onboarding.status = OnboardingStatus.OFFBOARDED
            onboarding.offboarded_at = event.occurred_at
            event.onboarding_id = event.onboarding_id or onboarding.id
    if event.onboarding_id is None and onboardings:
        event.onboarding_id = onboardings[0].id


def apply_account_review_update(event: Event, records: Records) -> None:
    """The WABA's review decision: APPROVED, REJECTED, PENDING, DEFERRED."""
    decision = meta_code(value_of(event).get("decision"), "decision", 32)
    set_if_newer(event, records.waba(event), "account_review_updated_at", account_review_status=decision)


def apply_business_capability_update(event: Event, records: Records) -> None:
    """The WABA's limits: messaging tier, numbers per WABA or per business."""
    value = value_of(event)
    waba = records.waba(event)
    if event.newer_than(waba.limits_updated_at):
        waba.limits = {**(waba.limits or {}), **value}
        waba.limits_updated_at = event.occurred_at


def _stamp(record: Any) -> datetime | None:
    """The ``occurred_at`` kept in an ``account_events`` entry."""
    if isinstance(record, dict) and isinstance(record.get("occurred_at"), str):
        try:
            return datetime.fromisoformat(record["occurred_at"])
        except ValueError:
            return None
    return None
