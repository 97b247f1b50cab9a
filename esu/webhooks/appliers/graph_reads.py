"""What the health sweep (``esu.sweep``) read from Graph does to the records, applied as a webhook event
is: one function per read, in :data:`GRAPH_READS`, each under the ordering rule with the time of the read,
so a read never overwrites a newer webhook's fact and an older webhook arriving late never undoes a read.

These are not Meta's webhook fields: parsing never applies a change named so (``values.GRAPH_WABA_READS``
and ``GRAPH_PHONE_READS`` tell ``Records`` what to load for them)."""

from __future__ import annotations

from ..records import Event, Records, set_if_newer, value_of
from ..values import meta_code, short_text
from .phone import named_phone
from .waba import set_state


def apply_token_check(event: Event, records: Records) -> None:
    """``{"problem": text or None}``: the business token no longer valid or no longer granted the WABA
    disconnects the account; a token that works again ends a disconnection (and only that state)."""
    problem = short_text(value_of(event).get("problem"), 300)
    waba = records.waba(event)
    waba.health_checked_at = event.occurred_at
    if problem:
        set_state(event, waba, "disconnected", problem)
    elif waba.state == "disconnected":
        set_state(event, waba, "active", "the health sweep read the account with the customer's token")


def apply_waba_read(event: Event, records: Records) -> None:
    """Graph's answer for the WABA: its review status, business verification and ownership."""
    value = value_of(event)
    waba = records.waba(event)
    if value.get("account_review_status"):
        set_if_newer(
            event,
            waba,
            "account_review_updated_at",
            account_review_status=meta_code(value["account_review_status"], "account_review_status", 32),
        )
    if value.get("business_verification_status"):
        status = meta_code(value["business_verification_status"], "business_verification_status", 32).upper()
        set_if_newer(event, waba, "business_verification_updated_at", business_verification_status=status)
    if value.get("ownership_type"):
        waba.ownership_type = meta_code(value["ownership_type"], "ownership_type", 32)


def apply_phone_number_read(event: Event, records: Records) -> None:
    """Graph's answer for a number: its status, quality rating and messaging limit (newer than any quality
    webhook's limit), and its display name's review."""
    value = value_of(event)
    phone = named_phone(event, records)
    if phone is None:
        return
    facts = {
        column: meta_code(str(value[key]), key, 32)
        for column, key in (
            ("status", "status"),
            ("quality_rating", "quality_rating"),
            ("messaging_limit", "messaging_limit_tier"),
        )
        if value.get(key)
    }
    if "messaging_limit" in facts and not event.newer_than(phone.quality_updated_at):
        del facts["messaging_limit"]
    set_if_newer(event, phone, "health_updated_at", **facts)
    naming = {
        column: short_text(str(value[column]), 200) for column in ("name_status", "verified_name") if value.get(column)
    }
    if naming:
        set_if_newer(event, phone, "name_updated_at", **naming)


GRAPH_READS = {
    "graph_token": apply_token_check,
    "graph_waba": apply_waba_read,
    "graph_phone_number": apply_phone_number_read,
}
