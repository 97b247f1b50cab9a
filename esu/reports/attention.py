"""What needs the admin's attention: each check a :class:`Signal` with a capped count and a few rows, every
one served by an index and bounded, so the dashboard stays fast with hundreds of thousands of onboardings
and millions of webhook events.

To add a signal (a new webhook-fed column, say), write a function returning a :class:`Signal` and decorate
it with ``@signal``: the dashboard lists every signal that has rows.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.orm import aliased, defer

from .. import forwarding, phones
from ..extensions import db
from ..models import (
    MessageTemplate,
    Onboarding,
    OnboardingStatus,
    OnboardingStep,
    PhoneNumber,
    WebhookEvent,
    WhatsAppBusinessAccount,
    now_utc,
)
from ..models.assets import WABA, OnboardingAsset
from ..onboarding import deadline
from ..onboarding.assets import ArchivedOnly, archived_only
from ..webhooks.appliers.waba import NEEDS_A_PERSON, state_meaning

#: Counts stop here ("1000+"): enough to know it is a lot, cheap on any table size.
COUNT_CAP = 1000
#: Rows shown under each signal; the rest are a click away.
SAMPLE = 5
#: Point-in-time events (Meta's notices) count when they are this recent…
RECENT = timedelta(days=30)
#: …and among this many of the latest account updates.
RECENT_NOTICES = 1000

#: Meta's answer to a code it never issued ("Invalid verification code format."): code 100, subcode 36008.
INVALID_CODE = (100, 36008)
#: What the chart of onboardings by day (``activity.onboardings_by_day``) counts those as, apart from the failed ones.
REFUSED_CODE = "refused_code"

DROPPED_QUALITY = ("YELLOW", "RED")
#: phone_number_quality_update events that say the number's quality or limit dropped.
DROPPED_QUALITY_EVENTS = ("FLAGGED", "DOWNGRADE")
#: Template statuses that keep a template from being sent, shown with Meta's reason.
TROUBLED_TEMPLATE_STATUSES = ("REJECTED", "PAUSED", "DISABLED")
#: Phone number statuses that stop or limit messaging.
TROUBLED_PHONE_STATUSES = ("FLAGGED", "RESTRICTED", "RATE_LIMITED", "BANNED", "DISCONNECTED")
#: account_update events that restrict, ban or warn about a customer's account.
RESTRICTING_EVENTS = ("ACCOUNT_RESTRICTION", "ACCOUNT_VIOLATION", "DISABLED_UPDATE")

# -- what needs attention ----------------------------------------------------------------------------


@dataclass
class AttentionItem:
    """One row under a signal, and where to look at it."""

    label: str
    detail: str | None
    at: datetime | None
    onboarding_id: int | None = None
    #: Open the onboardings list searched for this (a WABA or phone number id).
    search: str | None = None
    webhook_event_id: int | None = None
    forwarding_target_id: int | None = None


@dataclass
class Signal:
    key: str
    title: str
    advice: str
    count: int
    items: list[AttentionItem] = field(default_factory=list)

    @property
    def count_label(self) -> str:
        return f"{COUNT_CAP}+" if self.count > COUNT_CAP else str(self.count)


SIGNALS: list[Callable[[], Signal]] = []


def signal(check: Callable[[], Signal]) -> Callable[[], Signal]:
    """Register a check for the dashboard's "needs attention" list (shown in registration order)."""
    SIGNALS.append(check)
    return check


#: What only archived onboardings know, read once for all the signals of one ``needs_attention``.
_archived_only: ContextVar[ArchivedOnly | None] = ContextVar("archived_only", default=None)


def needs_attention() -> list[Signal]:
    """Every signal that has something to show."""
    token = _archived_only.set(archived_only())
    try:
        return [found for found in (check() for check in SIGNALS) if found.count]
    finally:
        _archived_only.reset(token)


def kept() -> ArchivedOnly:
    """The WABAs and numbers to leave out: test data stays off the dashboard with its archived onboardings."""
    return _archived_only.get() or archived_only()


def capped_count(statement: sa.Select) -> int:
    """How many rows ``statement`` has, counting no further than COUNT_CAP + 1."""
    bounded = statement.with_only_columns(sa.literal(1)).order_by(None).limit(COUNT_CAP + 1).subquery()
    return db.session.scalar(sa.select(sa.func.count()).select_from(bounded)) or 0


def _onboarding_items(statement: sa.Select, detail: Callable[[Onboarding], str | None],
                      at: Callable[[Onboarding], datetime | None]) -> list[AttentionItem]:
    rows = db.session.scalars(statement.order_by(Onboarding.created_at.desc(), Onboarding.id.desc()).limit(SAMPLE))
    return [AttentionItem(row.business_name or phones.international(row.display_phone_number)
                          or _("Onboarding %(id)s", id=row.id),
                          detail(row),
                          at(row), onboarding_id=row.id) for row in rows]


def _onboardings_with_status(status: str) -> sa.Select:
    return sa.select(Onboarding).options(defer(Onboarding.business_token, raiseload=True)).where(
        Onboarding.status == status, Onboarding.archived_at.is_(None))


def code_refused():
    """The onboarding's code was one Meta never issued: its exchange failed with :data:`INVALID_CODE`, so it
    never had a token. Junk, or a forged callback, rather than a customer to help (one row by the unique
    (onboarding, step) index)."""
    return sa.exists().where(OnboardingStep.onboarding_id == Onboarding.id, OnboardingStep.name == "exchange_code",
                             OnboardingStep.error_code == INVALID_CODE[0],
                             OnboardingStep.error_subcode == INVALID_CODE[1])


@signal
def failed_onboardings() -> Signal:
    query = _onboardings_with_status(OnboardingStatus.FAILED).where(~code_refused())
    return Signal("failed", _("Failed onboardings"),
                  _("Open one to see the step that failed and Meta's error; retry once the cause is fixed."),
                  capped_count(query),
                  _onboarding_items(query, lambda row: row.failure_reason, lambda row: row.updated_at))


@signal
def stuck_onboardings() -> Signal:
    query = sa.select(Onboarding).options(defer(Onboarding.business_token, raiseload=True)).where(
        deadline.stuck_condition(current_app.config))
    return Signal("stuck", _("Stuck onboardings"),
                  _("Marked running, but the process running them died (nothing written for longer than a live run "
                    "can go): open one and retry it."),
                  capped_count(query),
                  _onboarding_items(query, lambda row: _("running, no sign of life since"),
                                    lambda row: row.updated_at))


@signal
def awaiting_verification() -> Signal:
    query = _onboardings_with_status(OnboardingStatus.AWAITING_VERIFICATION)
    return Signal("awaiting_verification", _("Numbers waiting for verification"),
                  _("The customer has not entered the code Meta sends yet; registration finishes when they do."),
                  capped_count(query),
                  _onboarding_items(query, lambda row: phones.international(row.display_phone_number),
                                    lambda row: row.created_at))


@signal
def awaiting_pin() -> Signal:
    query = _onboardings_with_status(OnboardingStatus.AWAITING_PIN)
    return Signal("awaiting_pin", _("Numbers waiting for their PIN"),
                  _("The number already has two-step verification: registration goes on once the customer enters its "
                    "6-digit PIN, or you do on the onboarding's page."),
                  capped_count(query),
                  _onboarding_items(query, lambda row: phones.international(row.display_phone_number),
                                    lambda row: row.updated_at))


def business_name_of(waba_id) -> sa.ColumnElement:
    """The customer's business name as its latest onboarding of this WABA knows it: one whose own WABA it is,
    else one that shared it among several."""
    named, latest = Onboarding.business_name.is_not(None), Onboarding.created_at.desc()
    own = sa.select(Onboarding.business_name).where(Onboarding.waba_id == waba_id, named)
    shared = (sa.select(Onboarding.business_name).join(OnboardingAsset, OnboardingAsset.onboarding_id == Onboarding.id)
              .where(OnboardingAsset.kind == WABA, OnboardingAsset.asset_id == waba_id, named))
    return sa.func.coalesce(*(query.order_by(latest).limit(1).scalar_subquery() for query in (own, shared)))


def _phone_items(statement: sa.Select, detail: Callable[[PhoneNumber], str]) -> list[AttentionItem]:
    # The business name of the rows shown only: beside the sort, SQLite would look it up for every number.
    shown = aliased(PhoneNumber, statement.order_by(PhoneNumber.updated_at.desc()).limit(SAMPLE).subquery())
    rows = db.session.execute(sa.select(shown, business_name_of(shown.waba_id)).order_by(shown.updated_at.desc()))
    return [AttentionItem(business or row.verified_name or phones.international(row.display_phone_number) or row.id,
                          " · ".join(part for part in (phones.international(row.display_phone_number), detail(row))
                                     if part),
                          row.updated_at, search=row.id) for row, business in rows]


def _quality_detail(row: PhoneNumber) -> str:
    parts = [_("quality %(rating)s", rating=row.quality_rating) if row.quality_rating in DROPPED_QUALITY else None,
             _("Meta: %(event)s", event=row.quality_event) if row.quality_event in DROPPED_QUALITY_EVENTS else None,
             _("messaging limit %(limit)s", limit=row.messaging_limit) if row.messaging_limit else None]
    return " · ".join(part for part in parts if part)


@signal
def quality_dropped() -> Signal:
    query = sa.select(PhoneNumber).where(sa.or_(PhoneNumber.quality_rating.in_(DROPPED_QUALITY),
                                                PhoneNumber.quality_event.in_(DROPPED_QUALITY_EVENTS)),
                                         kept().number_kept(PhoneNumber.id))
    return Signal("quality", _("Quality dropped"),
                  _("Meta rates these numbers' recent messages YELLOW or RED, flagged them or lowered their messaging"
                    " limit; RED numbers risk a lower messaging limit."),
                  capped_count(query),
                  _phone_items(query, _quality_detail))


@signal
def troubled_numbers() -> Signal:
    query = sa.select(PhoneNumber).where(PhoneNumber.status.in_(TROUBLED_PHONE_STATUSES),
                                         kept().number_kept(PhoneNumber.id))
    return Signal("phone_status", _("Restricted, flagged or banned numbers"),
                  _("Meta reports these numbers as not fully able to message."),
                  capped_count(query),
                  _phone_items(query, lambda row: _("status %(status)s", status=row.status)))


@signal
def accounts_needing_a_person() -> Signal:
    # A restriction Meta set until a time is over at that time: the account needs no one after it.
    lifted = sa.and_(WhatsAppBusinessAccount.state == "restricted", WhatsAppBusinessAccount.state_until < now_utc())
    query = sa.select(WhatsAppBusinessAccount).where(WhatsAppBusinessAccount.state.in_(NEEDS_A_PERSON), ~lifted,
                                                     kept().waba_kept(WhatsAppBusinessAccount.id))
    rows = db.session.execute(query.add_columns(business_name_of(WhatsAppBusinessAccount.id))
                              .order_by(WhatsAppBusinessAccount.state_at.desc()).limit(SAMPLE))
    items = [AttentionItem(business or row.name or row.id,
                           " · ".join(part for part in (_(state_meaning(row.state, row.state_until)), row.state_reason,
                                                        _("until %(when)s UTC",
                                                          when=row.state_until.strftime("%Y-%m-%d %H:%M"))
                                                        if row.state_until else None) if part),
                           row.state_at, search=row.id) for row, business in rows]
    return Signal("account_state", _("Customers whose account needs a person"),
                  _("Meta disconnected, offboarded, restricted, banned or deleted these customers' WhatsApp accounts "
                    "(its webhooks, or the health sweep). Open one to see why; most need the customer to act."),
                  capped_count(query),
                  items)


@signal
def troubled_templates() -> Signal:
    query = sa.select(MessageTemplate).where(MessageTemplate.status.in_(TROUBLED_TEMPLATE_STATUSES),
                                             kept().waba_kept(MessageTemplate.waba_id))
    rows = db.session.execute(query.add_columns(business_name_of(MessageTemplate.waba_id))
                              .order_by(MessageTemplate.status_updated_at.desc()).limit(SAMPLE))
    items = [AttentionItem(business or row.waba_id,
                           _("template %(name)s (%(language)s) %(status)s: %(reason)s", name=row.name,
                             language=row.language, status=row.status, reason=row.status_reason)
                           if row.status_reason else _("template %(name)s (%(language)s) %(status)s",
                                                       name=row.name, language=row.language, status=row.status),
                           row.status_updated_at or row.updated_at, search=row.waba_id) for row, business in rows]
    return Signal("templates", _("Rejected, paused or disabled templates"),
                  _("These templates cannot be sent. Edit a rejected one and submit it again (or appeal); a paused or"
                    " disabled one had poor feedback."),
                  capped_count(query),
                  items)


@signal
def rejected_accounts() -> Signal:
    query = sa.select(WhatsAppBusinessAccount).where(WhatsAppBusinessAccount.account_review_status == "REJECTED",
                                                     kept().waba_kept(WhatsAppBusinessAccount.id))
    rows = db.session.scalars(query.order_by(WhatsAppBusinessAccount.updated_at.desc()).limit(SAMPLE))
    items = [AttentionItem(row.name or row.id, _("account review REJECTED"), row.updated_at, search=row.id)
             for row in rows]
    return Signal("waba_review", _("WhatsApp accounts rejected in review"),
                  _("Meta rejected the account; the customer must fix it in WhatsApp Manager."),
                  capped_count(query),
                  items)


def _webhook_items(statement: sa.Select, detail: Callable[[WebhookEvent], str | None]) -> list[AttentionItem]:
    rows = db.session.scalars(statement.order_by(WebhookEvent.received_at.desc(), WebhookEvent.id.desc()).limit(SAMPLE))
    return [AttentionItem(f"{row.field or _('webhook')} {row.waba_id or ''}".strip(), detail(row), row.received_at,
                          webhook_event_id=row.id) for row in rows]


@signal
def restriction_notices() -> Signal:
    # The event name sits inside the JSON value, which no index covers: look only at the latest
    # RECENT_NOTICES account updates of the period (read newest first from the field index).
    latest = (
        sa.select(WebhookEvent.id)
        .where(WebhookEvent.field == "account_update", WebhookEvent.received_at >= now_utc() - RECENT)
        .order_by(WebhookEvent.received_at.desc())
        .limit(RECENT_NOTICES)
        .subquery()
    )
    query = sa.select(WebhookEvent).where(
        WebhookEvent.id.in_(sa.select(latest.c.id)),
        WebhookEvent.value["event"].as_string().in_(RESTRICTING_EVENTS),
    )
    return Signal("restrictions", _("Restrictions and bans Meta reported (30 days)"),
                  _("account_update notices: restrictions, policy violations, disabled accounts."),
                  capped_count(query),
                  _webhook_items(query, lambda row: (row.value or {}).get("event")))


@signal
def offboarded_customers() -> Signal:
    query = _onboardings_with_status(OnboardingStatus.OFFBOARDED)
    return Signal("offboarded", _("Offboarded customers"),
                  _("They removed the app or left; they need to sign up again."),
                  capped_count(query),
                  _onboarding_items(query, lambda row: phones.international(row.display_phone_number),
                                    lambda row: row.offboarded_at or row.updated_at))


@signal
def refused_codes() -> Signal:
    query = _onboardings_with_status(OnboardingStatus.FAILED).where(code_refused())
    return Signal("refused_codes", _("Codes Meta did not recognise"),
                  _("Callbacks with a code Meta never issued (junk, or someone probing the callback): kept for the "
                    "record, nothing to retry. Many at once come from one source the rate limit slows down."),
                  capped_count(query),
                  _onboarding_items(query, lambda row: row.failure_reason, lambda row: row.created_at))


@signal
def unparseable_webhooks() -> Signal:
    query = sa.select(WebhookEvent).where(WebhookEvent.status == "unparseable")
    return Signal("unparseable", _("Unparseable webhooks"),
                  _("Signed by Meta but not in the shape esu knows; the raw body is kept."),
                  capped_count(query),
                  _webhook_items(query, lambda row: row.error))


@signal
def failed_webhooks() -> Signal:
    query = sa.select(WebhookEvent).where(WebhookEvent.status == "failed")
    return Signal("webhook_failed", _("Webhooks that could not be applied"),
                  _("Stored, but applying them to the records failed."),
                  capped_count(query),
                  _webhook_items(query, lambda row: row.error))


@signal
def failing_forwarding_targets() -> Signal:
    # Few rows (a client has a target or two), so the list itself is counted.
    failing = forwarding.failing_targets(forwarding.FAILING_FLAG_AFTER)
    items = [AttentionItem(urlsplit(target.url).hostname or target.url,
                           _("%(page)s · failing since", page=target.page.title),
                           target.failing_since, forwarding_target_id=target.id) for target in failing[:SAMPLE]]
    return Signal("forwarding", _("Forwarding targets failing for a day"),
                  _("Their receivers have refused or missed every delivery for over a day. Open one to see the "
                    "receiver's answers; fix it with the client, then replay the failed deliveries."),
                  len(failing),
                  items)
