"""The records esu keeps: signup pages, onboardings and their steps, the customers' WABAs, numbers and
templates. Times are UTC and end in ``_at``."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .. import phones
from ..crypto import EncryptedText
from ..extensions import db


def now_utc() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator):
    """A timestamp that always comes back timezone-aware in UTC, on SQLite as on PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


JSONType = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")


class SignupPage(db.Model):
    """One of the agency's signup pages (a client, a campaign), served at ``/signup/<slug>``."""

    __tablename__ = "signup_pages"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    client_name: Mapped[str | None] = mapped_column(sa.String(200))
    intro: Mapped[str | None] = mapped_column(sa.Text)
    #: Overrides META_CONFIG_ID for this page when set.
    config_id: Mapped[str | None] = mapped_column(sa.String(32))
    #: Embedded Signup featureType: '' or 'whatsapp_business_app_onboarding' (coexistence).
    feature_type: Mapped[str] = mapped_column(sa.String(64), default="")
    #: ``extras.setup`` pre-fill: business name, email, phone, website, address, timezone…
    prefill: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: What the page and Meta's dialog speak (``esu.i18n.LANGUAGES``); None: the visitor's browser's.
    language: Mapped[str | None] = mapped_column(sa.String(16))
    #: The origins (``https://host[:port]``) of the client sites that may show this page in an iframe: its
    #: ``frame-ancestors``. Empty: no site may (``esu.embedding`` checks and writes them).
    embed_origins: Mapped[list[str]] = mapped_column(JSONType, default=list, server_default="[]")
    #: Local storage: the country where Meta keeps the number's data at rest, sent at register; None: none.
    data_localization_region: Mapped[str | None] = mapped_column(sa.String(2))
    #: The invoicing currency of the shared credit line; None: ESU_CREDIT_CURRENCY.
    credit_currency: Mapped[str | None] = mapped_column(sa.String(3))
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)

    def __repr__(self) -> str:
        return f"<SignupPage {self.slug}>"


class FormerSlug(db.Model):
    """A slug a signup page had before its current one: links people were given still lead to the page
    (``/signup/<slug>`` answers 301 to its current address). A page that takes the slug ends the redirect."""

    __tablename__ = "signup_page_former_slugs"

    slug: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    page_id: Mapped[int] = mapped_column(sa.ForeignKey("signup_pages.id", ondelete="CASCADE"), index=True)
    retired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class OnboardingStatus(enum.StrEnum):
    RUNNING = "running"
    AWAITING_VERIFICATION = "awaiting_verification"
    COMPLETED = "completed"
    FAILED = "failed"
    OFFBOARDED = "offboarded"
    #: PARTNER_ADDED told us of the customer before their browser called back (the code is still to come).
    AWAITING_CALLBACK = "awaiting_callback"
    #: The number already has a two-step verification PIN: registration waits for the customer to give it.
    AWAITING_PIN = "awaiting_pin"
    #: Meta is limiting our calls: a step waits until the time Meta gave (``OnboardingStep.wait_until``).
    RATE_LIMITED = "rate_limited"


class Onboarding(db.Model):
    """One customer finishing Embedded Signup on one page, and everything done for them since."""

    __tablename__ = "onboardings"
    __table_args__ = (
        sa.Index("ix_onboardings_created_at_id", "created_at", "id"),
        sa.Index("ix_onboardings_status_created_at", "status", "created_at"),
        sa.Index("ix_onboardings_page_id_created_at", "page_id", "created_at"),
        sa.Index("ix_onboardings_page_id_status_created_at", "page_id", "status", "created_at"),  # admin: both filters
        sa.Index("ix_onboardings_created_at_status", "created_at", "status"),  # admin: onboardings per day
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int | None] = mapped_column(sa.ForeignKey("signup_pages.id", ondelete="SET NULL"))
    #: SHA-256 of the Embedded Signup code: the same code can start only one onboarding.
    code_digest: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    #: A random reference the browser chose, to follow progress before the callback answers.
    client_ref: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    #: How the signup finished: FINISH, FINISH_ONLY_WABA, FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING…
    event: Mapped[str] = mapped_column(sa.String(64))
    #: 'callback' when the browser reported it, 'webhook' when only PARTNER_ADDED told us.
    source: Mapped[str] = mapped_column(sa.String(16), default="callback")
    status: Mapped[str] = mapped_column(sa.String(32), default=OnboardingStatus.RUNNING)
    failure_reason: Mapped[str | None] = mapped_column(sa.Text)
    business_id: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    waba_id: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    phone_number_id: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    #: Denormalised for search and lists: the business name and the number as people know them.
    business_name: Mapped[str | None] = mapped_column(sa.String(200), index=True)
    #: The name lower-cased when it is written (``_keep_business_name_lower``): the admin searches any part of it.
    business_name_lower: Mapped[str | None] = mapped_column(sa.String(200))
    display_phone_number: Mapped[str | None] = mapped_column(sa.String(32))
    #: The number in E.164 (``+6281234567890``), kept from ``display_phone_number``: search by any form of it.
    phone_e164: Mapped[str | None] = mapped_column(sa.String(16), index=True)
    business_token: Mapped[str | None] = mapped_column(EncryptedText)
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    offboarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Meta's time of the PARTNER_ADDED linked to it: a PARTNER_REMOVED older than this is not for this onboarding.
    partner_added_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Set by the admin (test data, a duplicate): left out of lists, charts and funnels until unarchived.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    page: Mapped[SignupPage | None] = relationship()
    steps: Mapped[list[OnboardingStep]] = relationship(
        back_populates="onboarding",
        order_by="OnboardingStep.position",
        cascade="all, delete-orphan",
    )
    waba: Mapped[WhatsAppBusinessAccount | None] = relationship(
        primaryjoin="foreign(Onboarding.waba_id) == WhatsAppBusinessAccount.id", viewonly=True
    )
    phone_number: Mapped[PhoneNumber | None] = relationship(
        primaryjoin="foreign(Onboarding.phone_number_id) == PhoneNumber.id", viewonly=True
    )

    def step(self, name: str) -> OnboardingStep | None:
        return next((step for step in self.steps if step.name == name), None)

    def __repr__(self) -> str:
        return f"<Onboarding {self.id} {self.status}>"


@sa.event.listens_for(Onboarding.display_phone_number, "set")
def _keep_phone_e164(onboarding: Onboarding, value: str | None, _old, _initiator) -> None:
    onboarding.phone_e164 = phones.e164(value)


@sa.event.listens_for(Onboarding.business_name, "set")
def _keep_business_name_lower(onboarding: Onboarding, value: str | None, _old, _initiator) -> None:
    onboarding.business_name_lower = value.lower() if value is not None else None


# The admin's search: any part of a business name in any case, prefixes of display numbers. On PostgreSQL
# the name's index holds trigrams (pg_trgm, migration b6d8f0a2c4e6), which serve LIKE '%part%' (SQLite
# scans the lower-cased column, a C loop, its B-tree of no use there); the number's pattern operator class serves LIKE 'prefix%' (and
# equality) whatever the collation, and SQLite reads it through range conditions
# (esu.blueprints.admin.paging.starts_with).
sa.Index("ix_onboardings_business_name_lower", Onboarding.business_name_lower,
         postgresql_using="gin", postgresql_ops={"business_name_lower": "gin_trgm_ops"})
sa.Index("ix_onboardings_display_phone_number_pattern", Onboarding.display_phone_number,
         postgresql_ops={"display_phone_number": "varchar_pattern_ops"})


class StepStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    WAITING = "waiting"


#: The steps that, both done, prove the customer's token was granted the onboarding's WABA: ``debug_token``
#: found it valid and ours (and listed the WABA, when Meta lists any), and the token read the WABA. Only then
#: do the WABA's events go to the page's forwarding targets.
WABA_PROOF_STEPS = ("confirm_ids", "read_waba")


class OnboardingStep(db.Model):
    """One step of an onboarding: its outcome, attempts, timing and, on failure, Graph's error."""

    __tablename__ = "onboarding_steps"
    __table_args__ = (
        sa.UniqueConstraint("onboarding_id", "name"),
        # The dashboard's failed and refused-code signals look failed steps up by Meta's error; only those
        # carry one, so the index stays small (migration a4c6e8f0b2d4).
        sa.Index("ix_onboarding_steps_error_code_error_subcode", "error_code", "error_subcode",
                 sqlite_where=sa.text("error_code IS NOT NULL"), postgresql_where=sa.text("error_code IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    onboarding_id: Mapped[int] = mapped_column(sa.ForeignKey("onboardings.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(64))
    position: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(sa.String(16), default=StepStatus.PENDING)
    #: HTTP attempts made the last time the step ran (Graph retries transient errors).
    attempts: Mapped[int] = mapped_column(default=0)
    #: How many times the step has been run (the callback, then each retry).
    runs: Mapped[int] = mapped_column(default=0)
    detail: Mapped[str | None] = mapped_column(sa.Text)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int | None]
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    error_type: Mapped[str | None] = mapped_column(sa.String(64))
    error_code: Mapped[int | None]
    error_subcode: Mapped[int | None]
    error_user_title: Mapped[str | None] = mapped_column(sa.Text)
    error_user_message: Mapped[str | None] = mapped_column(sa.Text)
    #: Meta's ``error_data`` (``{"details": …}``), whole.
    error_data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    #: Whether the error was worth another try: Meta's ``is_transient``, else esu's table of codes.
    error_transient: Mapped[bool | None]
    fbtrace_id: Mapped[str | None] = mapped_column(sa.String(64))
    #: A step Meta rate-limited waits until then; the worker runs it once that time has come.
    wait_until: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    onboarding: Mapped[Onboarding] = relationship(back_populates="steps")

    def __repr__(self) -> str:
        return f"<OnboardingStep {self.name} {self.status}>"


class WhatsAppBusinessAccount(db.Model):
    """A customer's WhatsApp Business Account, keyed by Meta's id."""

    __tablename__ = "wabas"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    business_id: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    name: Mapped[str | None] = mapped_column(sa.String(200))
    currency: Mapped[str | None] = mapped_column(sa.String(8))
    timezone_id: Mapped[str | None] = mapped_column(sa.String(16))
    message_template_namespace: Mapped[str | None] = mapped_column(sa.String(64))
    account_review_status: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    business_verification_status: Mapped[str | None] = mapped_column(sa.String(32))
    ownership_type: Mapped[str | None] = mapped_column(sa.String(32))
    country: Mapped[str | None] = mapped_column(sa.String(8))
    subscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    credit_allocation_config_id: Mapped[str | None] = mapped_column(sa.String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: Meta's time of the account_review_update that set ``account_review_status``.
    account_review_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The latest account_update of each kind (violations, restrictions, bans, partner changes…), by
    #: event name: ``{"DISABLED_UPDATE": {"occurred_at": iso, "ban_info": {...}}, ...}``. Every one is
    #: also kept in ``webhook_events``.
    account_events: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    #: business_capability_update: messaging limit and phone number caps, as Meta names them.
    limits: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    limits_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Where the customer stands with Meta, as the latest lifecycle fact says (``esu.webhooks.appliers.waba``): ``active``,
    #: ``disconnected``, ``offboarded``, ``paused``, ``deleted``, ``banned``, ``ban_scheduled``, ``restricted``,
    #: ``violation``; why, until when, and Meta's time of the fact (the ordering rule's stamp).
    state: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    state_reason: Mapped[str | None] = mapped_column(sa.String(300))
    state_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    state_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Meta's time of the fact that set ``business_verification_status`` (a webhook, or a Graph read).
    business_verification_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When the health sweep last asked Graph about this account.
    health_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)

    phone_numbers: Mapped[list[PhoneNumber]] = relationship(back_populates="waba")
    templates: Mapped[list[MessageTemplate]] = relationship(
        back_populates="waba", order_by="MessageTemplate.name", cascade="all, delete-orphan"
    )


class PhoneNumber(db.Model):
    """A customer's business phone number, keyed by Meta's phone number id."""

    __tablename__ = "phone_numbers"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    waba_id: Mapped[str | None] = mapped_column(sa.ForeignKey("wabas.id"), index=True)
    display_phone_number: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    verified_name: Mapped[str | None] = mapped_column(sa.String(200))
    code_verification_status: Mapped[str | None] = mapped_column(sa.String(32))
    status: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    quality_rating: Mapped[str | None] = mapped_column(sa.String(16), index=True)
    name_status: Mapped[str | None] = mapped_column(sa.String(32))
    platform_type: Mapped[str | None] = mapped_column(sa.String(32))
    #: Meta's ``is_on_biz_app``: a WhatsApp Business app number (coexistence), never sent to register.
    is_on_biz_app: Mapped[bool | None]
    #: The local storage region sent when registering it, if any.
    data_localization_region: Mapped[str | None] = mapped_column(sa.String(2))
    #: Coexistence: when the one-shot syncs were asked of Meta, and the end of the 24 hours Meta allows.
    contacts_sync_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    history_sync_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    business_app_sync_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The ``history`` webhook: ``arriving`` (chunks come, ``history_progress`` %) or ``declined`` (2593109),
    #: with Meta's time of the event that said so.
    history_status: Mapped[str | None] = mapped_column(sa.String(16))
    history_progress: Mapped[int | None]
    history_status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The ``smb_app_state_sync`` webhooks: how many contact changes arrived (the sync's contacts, then each
    #: one the business adds or removes in the app), and the time of the latest (when it was received:
    #: these webhooks carry no time).
    contacts_received: Mapped[int | None]
    contacts_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The two-step verification PIN set when registering.
    pin: Mapped[str | None] = mapped_column(EncryptedText)
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Register calls made in the current 72-hour window (Meta allows 10).
    registration_attempts: Mapped[int] = mapped_column(default=0)
    registration_window_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: phone_number_name_update: the display name asked for, why it was rejected, Meta's time of the decision.
    requested_verified_name: Mapped[str | None] = mapped_column(sa.String(200))
    name_rejection_reason: Mapped[str | None] = mapped_column(sa.String(64))
    name_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: phone_number_quality_update: the daily messaging limit (``max_daily_conversations_per_business``, or
    #: Graph's ``messaging_limit_tier``), the throughput tier (``current_limit``) and the event that reported them.
    messaging_limit: Mapped[str | None] = mapped_column(sa.String(32))
    throughput_tier: Mapped[str | None] = mapped_column(sa.String(32))
    quality_event: Mapped[str | None] = mapped_column(sa.String(32))
    quality_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The time of the Graph read that last set ``status``, ``quality_rating`` and ``messaging_limit``.
    health_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: security: the latest PIN event (PIN_CHANGED means the PIN we keep may no longer be the number's).
    security_event: Mapped[str | None] = mapped_column(sa.String(32))
    security_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)

    waba: Mapped[WhatsAppBusinessAccount | None] = relationship(back_populates="phone_numbers")


class MessageTemplate(db.Model):
    """An approved message template of a customer's WABA, as last fetched or reported."""

    __tablename__ = "message_templates"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    waba_id: Mapped[str] = mapped_column(sa.ForeignKey("wabas.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(512))
    language: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(32), index=True)
    category: Mapped[str | None] = mapped_column(sa.String(32))
    components: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)
    # What the template webhooks report, each with Meta's time of the event that set it, so an older
    # event arriving late never overwrites a newer one.
    status_reason: Mapped[str | None] = mapped_column(sa.String(64))
    #: rejection_info, other_info (pauses), disable_info of the latest status event.
    status_info: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    status_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    category_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: An announced recategorisation: the category Meta will switch to, and when.
    pending_category: Mapped[str | None] = mapped_column(sa.String(32))
    pending_category_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    quality_score: Mapped[str | None] = mapped_column(sa.String(16))
    quality_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The status before the current one: what REINSTATED and UNARCHIVED restore.
    previous_status: Mapped[str | None] = mapped_column(sa.String(32))
    #: The latest status event that is not a status (FLAGGED, LIMIT_EXCEEDED…), what it means, Meta's time.
    last_event: Mapped[str | None] = mapped_column(sa.String(32))
    last_event_meaning: Mapped[str | None] = mapped_column(sa.String(300))
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    waba: Mapped[WhatsAppBusinessAccount] = relationship(back_populates="templates")


class SignupEvent(db.Model):
    """Something a person did on a signup page: the funnel the admin reads.

    ``kind`` is one of ``view`` (page shown), ``launch`` (popup opened), ``cancel`` (left at
    ``current_step``), ``error`` (an error reported in the flow), ``finish`` (Meta reported success).
    """

    __tablename__ = "signup_events"
    __table_args__ = (sa.Index("ix_signup_events_page_id_kind_created_at", "page_id", "kind", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(sa.ForeignKey("signup_pages.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    current_step: Mapped[str | None] = mapped_column(sa.String(64))
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    error_code: Mapped[str | None] = mapped_column(sa.String(32))
    session_id: Mapped[str | None] = mapped_column(sa.String(64))
    onboarding_id: Mapped[int | None] = mapped_column(sa.ForeignKey("onboardings.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, index=True)

    page: Mapped[SignupPage] = relationship()


class WebhookEvent(db.Model):
    """One change Meta delivered to the webhook, stored once whatever the batching or retries.

    ``dedupe_key`` is the message id (messages), the message id, status and, in a group, participant
    (statuses), or a digest of the change otherwise (its field, entry id, entry time and value). ``status``: ``stored`` (not applied:
    messages and statuses, which are kept and counted only), ``applied``, ``ignored`` (nothing to apply),
    ``unparseable`` (signed but not Meta's envelope; ``raw`` keeps the body), ``failed``. ``error`` says
    why an event failed or was ignored.
    """

    __tablename__ = "webhook_events"
    __table_args__ = (
        sa.Index("ix_webhook_events_field_received_at", "field", "received_at"),
        sa.Index("ix_webhook_events_waba_id_received_at", "waba_id", "received_at"),
        sa.Index("ix_webhook_events_status_received_at", "status", "received_at"),
        # The admin: the latest events of one onboarding or number; one WABA's events of one field
        # (its message statuses would swamp the rest).
        # Only the events linked to an onboarding: messages and statuses (nearly all of them) never are, and
        # skipping them keeps this index off the webhook's write path.
        sa.Index("ix_webhook_events_onboarding_id_received_at", "onboarding_id", "received_at",
                 sqlite_where=sa.text("onboarding_id IS NOT NULL"),
                 postgresql_where=sa.text("onboarding_id IS NOT NULL")),
        sa.Index("ix_webhook_events_phone_number_id_received_at", "phone_number_id", "received_at"),
        sa.Index("ix_webhook_events_waba_id_field_received_at", "waba_id", "field", "received_at"),
        # Messages and statuses are counted per number with this index alone.
        sa.Index("ix_webhook_events_phone_number_id_kind", "phone_number_id", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(sa.String(160), unique=True)
    field: Mapped[str | None] = mapped_column(sa.String(64))
    waba_id: Mapped[str | None] = mapped_column(sa.String(32))
    phone_number_id: Mapped[str | None] = mapped_column(sa.String(32))
    entry_id: Mapped[str | None] = mapped_column(sa.String(32))
    #: ``message`` (one inbound message), ``status`` (one status of one sent message), ``change`` (any other
    #: change), ``delivery`` (a whole body that is not Meta's envelope).
    kind: Mapped[str | None] = mapped_column(sa.String(16))
    #: ``entry[].time`` (or the event's own timestamp): orders events about the same record.
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    value: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    raw: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), default="stored")
    error: Mapped[str | None] = mapped_column(sa.Text)
    onboarding_id: Mapped[int | None] = mapped_column(sa.ForeignKey("onboardings.id", ondelete="SET NULL"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, index=True)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


from . import admin  # noqa: F401  (the admin's tables, after the models they refer to)
from . import forwarding  # noqa: E402,F401
from . import rate_limits  # noqa: E402,F401
from . import assets, checks  # noqa: E402,F401
