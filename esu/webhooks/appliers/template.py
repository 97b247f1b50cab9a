"""What a change about a message template does to it (``values.TEMPLATE_FIELDS``): its status, its
category (done or announced), its quality score. A template esu did not know is created."""

from __future__ import annotations

from ..records import Event, Records, set_if_newer, value_of
from ..values import meta_code, meta_reason, unix_time


def apply_message_template_status_update(event: Event, records: Records) -> None:
    """The template's status (and category, when given), created when we did not know the template."""
    value = value_of(event)
    status = meta_code(value.get("event"), "event", 32)
    reason = meta_reason(value.get("reason"), "reason", 64)
    category = value.get("message_template_category")
    category = None if category is None else meta_code(category, "message_template_category", 32)
    template = records.template(event)
    if event.newer_than(template.status_updated_at):
        template.status = status
        template.status_reason = reason
        template.status_info = {key: value[key] for key in ("rejection_info", "other_info", "disable_info")
                                if key in value} or None
        template.status_updated_at = event.occurred_at
    if category and event.newer_than(template.category_updated_at):
        template.category = category
        template.category_updated_at = event.occurred_at


def apply_template_category_update(event: Event, records: Records) -> None:
    """A recategorisation, done (``previous_category``) or announced (``correct_category`` with its time)."""
    value = value_of(event)
    category = meta_code(value.get("new_category"), "new_category", 32)
    coming = value.get("correct_category")
    coming = None if coming is None else meta_code(coming, "correct_category", 32)
    set_if_newer(event, records.template(event), "category_updated_at", category=category, pending_category=coming,
                 pending_category_at=unix_time(value.get("category_update_timestamp")) if coming else None)


def apply_message_template_quality_update(event: Event, records: Records) -> None:
    """The template's quality score: GREEN, YELLOW, RED, UNKNOWN."""
    score = meta_code(value_of(event).get("new_quality_score"), "new_quality_score", 16)
    set_if_newer(event, records.template(event), "quality_updated_at", quality_score=score)
