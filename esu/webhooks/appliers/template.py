"""What a change about a message template does to it (``values.TEMPLATE_FIELDS``): its status, its
category (done or announced), its quality score. A template esu did not know is created."""

from __future__ import annotations

from ..records import Event, Records, set_if_newer, value_of
from ..values import meta_code, meta_reason, unix_time

#: Status events that are not a status (Meta's reference: the template keeps its status), and what each
#: implies.
NOT_STATUSES = {
    "FLAGGED": "negative feedback: the template is at risk of being paused or disabled",
    "LIMIT_EXCEEDED": "the WhatsApp Business Account is at its template limit: no new template until one goes",
    "LOCKED": "the template is locked and cannot be edited",
}
#: Status events that restore the status the template had before the one they end, but never one of these
#: (REINSTATED means it can be sent again), and the status when esu never knew the one before.
RESTORING = {"REINSTATED": ("PAUSED", "DISABLED", "ARCHIVED", "PENDING_DELETION", "DELETED"),
             "UNARCHIVED": ("ARCHIVED",)}
RESTORED_WHEN_UNKNOWN = "APPROVED"


def apply_message_template_status_update(event: Event, records: Records) -> None:
    """The template's status (and category, when given), created when we did not know the template.
    REINSTATED and UNARCHIVED restore the status it had before; FLAGGED, LIMIT_EXCEEDED and LOCKED are
    kept as its latest event, with what they imply, and leave its status as it is."""
    value = value_of(event)
    name = meta_code(value.get("event"), "event", 32)
    reason = meta_reason(value.get("reason"), "reason", 64)
    category = value.get("message_template_category")
    category = None if category is None else meta_code(category, "message_template_category", 32)
    template = records.template(event)
    info = {key: value[key] for key in ("rejection_info", "other_info", "disable_info") if key in value} or None
    if name in NOT_STATUSES:
        if event.newer_than(template.last_event_at):
            template.last_event, template.last_event_at = name, event.occurred_at
            template.last_event_meaning = NOT_STATUSES[name] + (f" ({reason})" if reason else "")
    elif event.newer_than(template.status_updated_at):
        if name in RESTORING:
            before = template.previous_status
            status = before if before and before not in ("UNKNOWN", *RESTORING[name]) else RESTORED_WHEN_UNKNOWN
            previous = None
        else:
            status, previous = name, template.status
        if status != template.status:
            template.previous_status = previous if previous != "UNKNOWN" else None
        template.status = status
        template.status_reason = reason
        template.status_info = info
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
