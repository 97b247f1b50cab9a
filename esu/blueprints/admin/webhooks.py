"""Webhook events as Meta delivered them: filter by field, WABA and whether they were applied."""

from __future__ import annotations

import json

import sqlalchemy as sa
from flask import abort, render_template, request, url_for
from flask_babel import gettext, ngettext

from ...extensions import db
from ...models import WebhookEvent
from . import bp, field_errors
from .forms import WebhookFilterForm
from .paging import newest_first, requested_cursor

#: Fields Meta sends to partners, offered as suggestions in the filter (any other may be typed).
KNOWN_FIELDS = ("account_alerts", "account_review_update", "account_update", "business_capability_update",
                "history", "message_template_components_update", "message_template_quality_update",
                "message_template_status_update", "messages", "partner_solutions", "phone_number_name_update",
                "phone_number_quality_update", "security", "smb_app_state_sync", "smb_message_echoes",
                "template_category_update", "user_preferences")


def summarize(event: WebhookEvent) -> str:
    """A few words on what the event says, for the list."""
    value = event.value if isinstance(event.value, dict) else {}
    if event.field == "messages":
        parts = []
        if value.get("messages"):
            parts.append(ngettext("%(num)d message in", "%(num)d messages in", len(value["messages"])))
        for status in value.get("statuses") or []:
            if isinstance(status, dict) and status.get("status"):
                parts.append(gettext("status %(status)s", status=status["status"]))
        return ", ".join(parts) or gettext("messages")
    for key in ("event", "decision", "new_category", "message_template_name"):
        if isinstance(value.get(key), str):
            return gettext("%(key)s: %(value)s", key=key.replace("_", " "), value=value[key])
    return ""


@bp.get("/webhooks")
def webhooks():
    """Webhook events, newest first, with whether each was applied to the records."""
    form = WebhookFilterForm(formdata=request.args)
    if not form.validate():
        abort(400, description="; ".join(field_errors(form[name].label.text, errors)
                                         for name, errors in form.errors.items()))
    statement = sa.select(WebhookEvent)
    if form.field.data:
        statement = statement.where(WebhookEvent.field == form.field.data)
    if form.waba.data:
        statement = statement.where(WebhookEvent.waba_id == form.waba.data)
    if form.status.data:
        statement = statement.where(WebhookEvent.status == form.status.data)
    page = newest_first(statement, WebhookEvent.received_at, WebhookEvent.id, requested_cursor())
    filters = {name: value for name, value in request.args.items() if name in ("field", "waba", "status") and value}
    return render_template("admin/webhooks.html", form=form, rows=page.rows, summarize=summarize,
                           known_fields=KNOWN_FIELDS, filters=filters, paged=bool(request.args.get("after")),
                           next_url=url_for("admin.webhooks", **filters, after=page.next_cursor.encode())
                           if page.next_cursor else None)


@bp.get("/webhooks/<int:event_id>")
def webhook(event_id: int):
    """One webhook event: what Meta sent (or the raw body when it could not be read) and what came of it."""
    event = db.get_or_404(WebhookEvent, event_id, description=gettext("There is no such webhook event."))
    value = json.dumps(event.value, indent=2, ensure_ascii=False, sort_keys=True) if event.value is not None else None
    return render_template("admin/webhook.html", event=event, value=value, summary=summarize(event))
