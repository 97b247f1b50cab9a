"""What a change about a WhatsApp Business Account does to it (``values.WABA_FIELDS``): its event
history, its review, its limits; and, for PARTNER_ADDED and PARTNER_REMOVED, the customer's onboarding."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...extensions import db
from ...models import Onboarding, OnboardingStatus
from ..records import Event, Record, Records, set_if_newer, value_of
from ..values import meta_code, node_id


def apply_account_update(event: Event, records: Records) -> None:
    """Record the event on the WABA (the latest of each kind); PARTNER_ADDED links or creates the
    onboarding, PARTNER_REMOVED offboards it."""
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
    if name == "PARTNER_ADDED":
        _partner_added(event, waba, records)
    elif name == "PARTNER_REMOVED":
        _partner_removed(event, waba, records)


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
        onboardings.insert(0, onboarding)
    if onboarding.partner_added_at is None or event.occurred_at > onboarding.partner_added_at:
        onboarding.partner_added_at = event.occurred_at
    event.onboarding_id = onboarding.id


def _partner_removed(event: Event, waba: Record, records: Records) -> None:
    onboardings = records.onboardings.get(waba.id) or []
    for onboarding in onboardings:
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
