"""What a change about a phone number does to it (``values.PHONE_FIELDS``): its display name's review,
its throughput tier and messaging limit, its PIN events. Meta names the number by its display number only."""

from __future__ import annotations

from ..records import Event, Record, Records, display_number, set_if_newer, value_of
from ..values import meta_code, meta_reason, short_text


def apply_phone_number_name_update(event: Event, records: Records) -> None:
    """The display name's review: its status, and the verified name once APPROVED."""
    value = value_of(event)
    decision = meta_code(value.get("decision"), "decision", 32)
    requested = short_text(value.get("requested_verified_name"), 200)
    reason = meta_reason(value.get("rejection_reason"), "rejection_reason", 64)
    phone = named_phone(event, records)
    if phone is not None and event.newer_than(phone.name_updated_at):
        phone.name_status = decision
        phone.requested_verified_name = requested
        phone.name_rejection_reason = reason
        if decision == "APPROVED" and requested:
            phone.verified_name = requested
        phone.name_updated_at = event.occurred_at


def apply_phone_number_quality_update(event: Event, records: Records) -> None:
    """The number's throughput tier (``current_limit``), its daily messaging limit
    (``max_daily_conversations_per_business``) and the event that reported them (THROUGHPUT_UPGRADE,
    FLAGGED, DOWNGRADE…). The limit is also what a Graph read says (``health_updated_at``): the newer wins."""
    value = value_of(event)
    name = meta_code(value.get("event"), "event", 32)
    tier, limit = (_tier(value, key) for key in ("current_limit", "max_daily_conversations_per_business"))
    phone = named_phone(event, records)
    if phone is not None and event.newer_than(phone.quality_updated_at):
        phone.quality_event = name
        phone.throughput_tier = tier or phone.throughput_tier
        if limit and event.newer_than(phone.health_updated_at):
            phone.messaging_limit = limit
        phone.quality_updated_at = event.occurred_at


def _tier(value: dict, key: str) -> str | None:
    return None if value.get(key) is None else meta_code(str(value[key]), key, 32)


def apply_security(event: Event, records: Records) -> None:
    """A PIN event on the number: PIN_CHANGED, PIN_RESET_REQUEST, PIN_REQUEST_SUCCESS."""
    name = meta_code(value_of(event).get("event"), "event", 32)
    phone = named_phone(event, records)
    if phone is not None:
        set_if_newer(event, phone, "security_event_at", security_event=name)


def named_phone(event: Event, records: Records) -> Record | None:
    phone = records.phone(event)
    if phone is None:
        event.ignore(f"no phone number {display_number(value_of(event))!r} on record for "
                     f"WhatsApp Business Account {event.waba_id}")
        return None
    event.phone_number_id = phone.id
    return phone
