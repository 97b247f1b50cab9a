"""Onboardings: the list (filters, search, CSV), one onboarding's whole story, retry and PIN reveal."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Response, abort, flash, redirect, render_template, request, stream_with_context, url_for
from flask_babel import gettext
from sqlalchemy.orm import defer
from wtforms import SelectChoice

from ... import onboarding as onboarding_service
from ... import phones
from ...extensions import db
from ...models import (
    MessageTemplate,
    Onboarding,
    PhoneNumber,
    SignupPage,
    WebhookEvent,
    WhatsAppBusinessAccount,
    now_utc,
)
from ...models.admin import AdminAction
from ...onboarding.assets import more_waba_ids, waba_ids_of
from ...reports import TROUBLED_TEMPLATE_STATUSES
from ...webhooks.appliers.waba import STATES
from . import archive, bp, field_errors, record, shown_once
from .forms import EmptyForm, OnboardingFilterForm
from .paging import newest_first, requested_cursor
from .search import search_condition
from .webhooks import summarize

#: Webhook events shown on an onboarding's page (the latest ones; the webhook list has the rest).
EVENTS_SHOWN = 100
TEMPLATES_SHOWN = 200
CSV_BATCH = 500
CSV_COLUMNS = ("id", "created_at", "status", "page", "business_name", "business_id", "waba_id",
               "phone_number_id", "display_phone_number", "failure_reason", "completed_at", "offboarded_at")
# Cells a spreadsheet would run as a formula (OWASP "CSV injection"); a display number like +1 555… is data.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PHONE_LIKE = re.compile(r"^\+[0-9 ()-]+\Z")


def filter_form(pages: list[SignupPage]) -> OnboardingFilterForm:
    form = OnboardingFilterForm(formdata=request.args)
    form.page.choices = [SelectChoice("", gettext("Any page"))] + [
        SelectChoice(str(page.id), page.slug) for page in pages]
    if not form.validate():
        abort(400, description="; ".join(field_errors(form[name].label.text, errors)
                                         for name, errors in form.errors.items()))
    return form


def filtered(form: OnboardingFilterForm, pages: list[SignupPage]) -> sa.Select:
    # Lists never need the business token: leave it in the database (and undecrypted).
    statement = sa.select(Onboarding).options(defer(Onboarding.business_token, raiseload=True))
    if form.status.data:
        statement = statement.where(Onboarding.status == form.status.data)
    if form.page.data:
        statement = statement.where(Onboarding.page_id == int(form.page.data))
    if form.q.data:
        # The matching ids first, then newest first: SQLite otherwise walks the list's time index and tests
        # every row's OR of conditions as it goes (about 1.6 times the time at 100,000 onboardings).
        statement = statement.where(Onboarding.id.in_(sa.select(Onboarding.id).where(search_condition(form.q.data,
                                                                                                       pages))))
    return statement.where(archive.shown(form.archived.data))


def all_pages() -> list[SignupPage]:
    return list(db.session.scalars(sa.select(SignupPage).order_by(SignupPage.slug)))


@bp.get("/onboardings")
def onboardings():
    """Onboardings, newest first: filter by status and page, search by business, WABA or number."""
    pages = all_pages()
    form = filter_form(pages)
    page = newest_first(filtered(form, pages), Onboarding.created_at, Onboarding.id, requested_cursor())
    filters = {name: value for name, value in request.args.items() if name in ("q", "status", "page", "archived") and value}
    return render_template("admin/onboardings.html", form=form, rows=page.rows, filters=filters,
                           pages_by_id={page.id: page for page in pages},
                           next_url=url_for("admin.onboardings", **filters, after=page.next_cursor.encode())
                           if page.next_cursor else None,
                           paged=bool(request.args.get("after")))


def csv_cell(value) -> str:
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if text.startswith(FORMULA_START) and not PHONE_LIKE.match(text):
        return "'" + text
    return text


@bp.get("/onboardings.csv")
def onboardings_csv():
    """The filtered list as CSV, streamed in batches so any size downloads in constant memory."""
    pages = all_pages()
    form = filter_form(pages)
    statement = filtered(form, pages)
    slugs = {page.id: page.slug for page in pages}

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        cursor = None
        while True:
            batch = newest_first(statement, Onboarding.created_at, Onboarding.id, cursor, size=CSV_BATCH)
            for row in batch.rows:
                writer.writerow([csv_cell(value) for value in (
                    row.id, row.created_at, row.status, slugs.get(row.page_id), row.business_name, row.business_id,
                    row.waba_id, row.phone_number_id, phones.international(row.display_phone_number), row.failure_reason,
                    row.completed_at, row.offboarded_at)])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            db.session.expunge_all()  # keep memory flat over a long export
            if batch.next_cursor is None:
                return
            cursor = batch.next_cursor

    filename = f"onboardings-{now_utc():%Y%m%d-%H%M}.csv"
    return Response(stream_with_context(rows()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def outcome_of(onboarding: Onboarding) -> str:
    """Where an onboarding stands after an admin's action, in a few words (its failure's reason too)."""
    outcome = onboarding.status.replace("_", " ")
    return f"{outcome} ({onboarding.failure_reason})" if onboarding.failure_reason else outcome


def onboarding_or_404(onboarding_id: int) -> Onboarding:
    return db.get_or_404(Onboarding, onboarding_id, description=gettext("There is no such onboarding."))


def latest_events(onboarding: Onboarding, more_waba_ids: list[str]) -> list[WebhookEvent]:
    """The latest webhook events about the onboarding, its WABAs or its number, newest first.

    One indexed, limited scan per link, then merged: a busy number's millions of message statuses cost
    no more than a quiet one's handful (an OR over them would read and sort them all).
    """
    newest = (WebhookEvent.received_at.desc(), WebhookEvent.id.desc())
    concerns = [WebhookEvent.onboarding_id == onboarding.id]
    concerns += [WebhookEvent.waba_id == waba_id for waba_id in [onboarding.waba_id, *more_waba_ids] if waba_id]
    if onboarding.phone_number_id:
        concerns.append(WebhookEvent.phone_number_id == onboarding.phone_number_id)
    scans = [sa.select(sa.select(WebhookEvent.id).where(concern).order_by(*newest).limit(EVENTS_SHOWN + 1)
                       .subquery().c.id) for concern in concerns]
    ids = sa.union(*scans).subquery()
    return list(db.session.scalars(
        sa.select(WebhookEvent).where(WebhookEvent.id.in_(sa.select(ids.c.id))).order_by(*newest).limit(EVENTS_SHOWN + 1)
    ))


def templates_of(waba_id: str | None) -> list[MessageTemplate]:
    """The WABA's templates by name, as many as a page shows."""
    return list(db.session.scalars(
        sa.select(MessageTemplate).where(MessageTemplate.waba_id == waba_id)
        .order_by(MessageTemplate.name, MessageTemplate.language).limit(TEMPLATES_SHOWN)
    )) if waba_id else []


@dataclass
class MoreWaba:
    """One of a multi-WABA onboarding's WABAs after its first, as ``admin/_more_wabas.html`` shows it."""

    id: str
    waba: WhatsAppBusinessAccount | None
    phones: list[PhoneNumber]
    templates: list[MessageTemplate]
    attention_templates: list[MessageTemplate]
    flagged_templates: list[MessageTemplate]


def more_wabas(waba_ids: list[str]) -> list[MoreWaba]:
    """The other WABAs' records, numbers and templates: one query for the WABAs, one for their numbers,
    three for each one's templates (whatever the number of templates)."""
    if not waba_ids:
        return []
    wabas = {waba.id: waba for waba in db.session.scalars(
        sa.select(WhatsAppBusinessAccount).where(WhatsAppBusinessAccount.id.in_(waba_ids)))}
    phones: dict[str, list[PhoneNumber]] = {}
    for phone in db.session.scalars(sa.select(PhoneNumber).where(PhoneNumber.waba_id.in_(waba_ids))
                                    .order_by(PhoneNumber.display_phone_number, PhoneNumber.id)):
        phones.setdefault(phone.waba_id, []).append(phone)
    shown = []
    for waba_id in waba_ids:
        facts = lifecycle_facts(waba_id)
        shown.append(MoreWaba(waba_id, wabas.get(waba_id), phones.get(waba_id, []), templates_of(waba_id),
                              facts["attention_templates"], facts["flagged_templates"]))
    return shown


def number_of(onboarding: Onboarding, number_id: str | None) -> PhoneNumber | None:
    """One of the onboarding's numbers: its own (``number_id`` None), or a number of any of its WABAs."""
    number_id = number_id or onboarding.phone_number_id
    phone = db.session.get(PhoneNumber, number_id) if number_id else None
    if phone is None or (phone.id != onboarding.phone_number_id and phone.waba_id not in waba_ids_of(onboarding)):
        return None
    return phone


def render_onboarding(onboarding: Onboarding, revealed_pin: PhoneNumber | None = None):
    waba = db.session.get(WhatsAppBusinessAccount, onboarding.waba_id) if onboarding.waba_id else None
    phone = db.session.get(PhoneNumber, onboarding.phone_number_id) if onboarding.phone_number_id else None
    others = more_waba_ids(onboarding)
    latest = latest_events(onboarding, others)
    actions = list(db.session.scalars(
        sa.select(AdminAction).where(AdminAction.onboarding_id == onboarding.id)
        .order_by(AdminAction.created_at.desc()).limit(50)
    ))
    return render_template(
        "admin/onboarding.html", onboarding=onboarding, steps=onboarding.steps, labels=onboarding_service.LABELS,
        waba=waba, phone=phone, templates=templates_of(onboarding.waba_id), more_wabas=more_wabas(others),
        events=list(reversed(latest[:EVENTS_SHOWN])),
        more_events=len(latest) > EVENTS_SHOWN, actions=actions, retryable=onboarding_service.can_retry(onboarding),
        revealed_pin=revealed_pin, button=EmptyForm(), summarize=summarize,
        token_stored=onboarding.business_token is not None, pin_stored=bool(phone is not None and phone.pin),
        pin_number=onboarding_service.number_awaiting_pin(onboarding), **lifecycle_facts(onboarding.waba_id),
    )


def lifecycle_facts(waba_id: str | None) -> dict:
    """What ``admin/_lifecycle.html`` shows besides the WABA and the number: the states' meanings, the
    templates that cannot be sent and those with a recent event that is not a status."""
    if not waba_id:
        return {"states": STATES, "attention_templates": [], "flagged_templates": []}
    templates = sa.select(MessageTemplate).where(MessageTemplate.waba_id == waba_id)
    return {
        "states": STATES,
        "attention_templates": list(db.session.scalars(
            templates.where(MessageTemplate.status.in_(TROUBLED_TEMPLATE_STATUSES))
            .order_by(MessageTemplate.name).limit(TEMPLATES_SHOWN))),
        "flagged_templates": list(db.session.scalars(
            templates.where(MessageTemplate.last_event.is_not(None))
            .order_by(MessageTemplate.last_event_at.desc()).limit(TEMPLATES_SHOWN))),
    }


@bp.get("/onboardings/<int:onboarding_id>")
def onboarding(onboarding_id: int):
    """One onboarding's story: every step with Graph's errors, each WABA (the first first) with its numbers
    and templates, and the webhook events about them, in time order. Never a token; the PIN only on request,
    in the one view of it that Reveal PIN granted (``?shown=``)."""
    onboarding = onboarding_or_404(onboarding_id)
    revealed_pin = None
    if shown_once.PARAM in request.args:
        view = shown_once.take(f"pin:{onboarding.id}", request.args[shown_once.PARAM])
        phone = number_of(onboarding, view.get("number")) if view else None
        if phone is not None and phone.pin:
            revealed_pin = phone
        else:
            flash(gettext("The PIN was shown once and is not shown again on reload. Reveal it again to see it "
                          "(that is logged too)."), "error")
    return render_onboarding(onboarding, revealed_pin=revealed_pin)


@bp.post("/onboardings/<int:onboarding_id>/retry")
def retry(onboarding_id: int):
    """Run again, with the stored token, every step that did not succeed, and show what came of it."""
    onboarding = onboarding_or_404(onboarding_id)
    try:
        onboarding = onboarding_service.retry(onboarding)
    except onboarding_service.OnboardingError as error:
        record("retry_refused", detail=error.message, onboarding=onboarding)
        db.session.commit()
        flash(gettext("Not retried: %(reason)s", reason=error.message), "error")
        return redirect(url_for("admin.onboarding", onboarding_id=onboarding_id))
    outcome = outcome_of(onboarding)
    record("retried_steps", detail=f"outcome: {outcome}", onboarding=onboarding)
    db.session.commit()
    flash(gettext("Retried the failed steps. The onboarding is now %(outcome)s.", outcome=outcome),
          "error" if onboarding.failure_reason else "ok")
    return redirect(url_for("admin.onboarding", onboarding_id=onboarding_id))


@bp.post("/onboardings/<int:onboarding_id>/reveal-pin")
def reveal_pin(onboarding_id: int):
    """Log that a number's two-step verification PIN is shown (the onboarding's own, or ``number``, one of its
    other WABAs'), and show it once: the redirect's GET reads it (the PIN is never in the session or a URL),
    and a reload of that GET neither shows nor logs it."""
    onboarding = onboarding_or_404(onboarding_id)
    phone = number_of(onboarding, request.form.get("number"))
    if phone is None or not phone.pin:
        flash(gettext("No PIN is stored for this onboarding's number."), "error")
        return redirect(url_for("admin.onboarding", onboarding_id=onboarding_id))
    record("revealed_pin", detail=f"number {phone.display_phone_number or phone.id}", onboarding=onboarding)
    db.session.commit()
    return redirect(url_for("admin.onboarding", onboarding_id=onboarding_id,
                            **{shown_once.PARAM: shown_once.grant(f"pin:{onboarding.id}", number=phone.id)}))
