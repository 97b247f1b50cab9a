"""The dashboard's charts and figures: onboardings by day, each signup page's funnel, what the database holds."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _

from .. import webhooks
from ..extensions import db
from ..i18n import lazy_gettext as _l
from ..models import Onboarding, OnboardingStatus, SignupEvent, SignupPage, now_utc
from .attention import REFUSED_CODE, code_refused

#: The screens of Meta's dialog a person can leave at (CANCEL's ``current_step``), in the dialog's order.
SCREENS = {
    "BUSINESS_ACCOUNT_SELECTION": _l("Business portfolio"),
    "WABA_PHONE_PROFILE_PICKER": _l("Choose a WhatsApp account"),
    "WHATSAPP_BUSINESS_PROFILE_SETUP": _l("Create a WhatsApp account"),
    "PHONE_NUMBER_SETUP": _l("Add a phone number"),
    "PHONE_NUMBER_VERIFICATION": _l("Verify the number"),
    "PERMISSIONS": _l("Review permissions"),
}



# -- onboardings by day -----------------------------------------------------------------------------


@dataclass
class Day:
    day: date
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _day_of(column):
    """The UTC calendar day of a timestamp column, on either database."""
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.func.date(sa.func.timezone("UTC", column))
    return sa.func.date(column)  # SQLite keeps UTC text


def onboardings_by_day(days: int, today: date | None = None) -> list[Day]:
    """Onboardings started on each of the last ``days`` days (oldest first), by their current status; failed
    ones whose code Meta did not recognise count as :data:`REFUSED_CODE`, apart from the real failures."""
    today = today or now_utc().date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=now_utc().tzinfo)
    day = _day_of(Onboarding.created_at).label("day")
    status = sa.case((sa.and_(Onboarding.status == OnboardingStatus.FAILED, code_refused()), REFUSED_CODE),
                     else_=Onboarding.status).label("status")
    rows = db.session.execute(
        sa.select(day, status, sa.func.count())
        .where(Onboarding.created_at >= since, Onboarding.archived_at.is_(None))
        .group_by(day, status)
    )
    counts: dict[date, dict[str, int]] = defaultdict(dict)
    for value, status, count in rows:
        when = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
        counts[when][status] = count
    return [Day(first + timedelta(days=offset), counts.get(first + timedelta(days=offset), {}))
            for offset in range(days)]


# -- the signup funnel ------------------------------------------------------------------------------


@dataclass
class Funnel:
    """How people went through one signup page: from seeing it to a fully onboarded number."""

    page: SignupPage
    views: int = 0
    launches: int = 0
    finished: int = 0
    onboarded: int = 0
    errors: int = 0
    #: (screen label, people who closed the dialog there), in the dialog's order.
    abandoned: list[tuple[str, int]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.views or self.launches or self.finished or self.onboarded or self.errors or self.abandoned)


def funnels(days: int) -> list[Funnel]:
    """Each signup page's funnel over the last ``days`` days: enabled pages, and any other with activity."""
    since = now_utc() - timedelta(days=days)
    # Two queries rather than one grouped by step too: the first reads only (page_id, kind, created_at),
    # which an index holds, and only cancels need their step.
    counts = db.session.execute(
        sa.select(SignupEvent.page_id, SignupEvent.kind, sa.func.count())
        .where(SignupEvent.created_at >= since)
        .group_by(SignupEvent.page_id, SignupEvent.kind)
    ).all()
    cancels = db.session.execute(
        sa.select(SignupEvent.page_id, SignupEvent.current_step, sa.func.count())
        .where(SignupEvent.kind == "cancel", SignupEvent.created_at >= since)
        .group_by(SignupEvent.page_id, SignupEvent.current_step)
    ).all()
    onboarded = dict(db.session.execute(
        sa.select(Onboarding.page_id, sa.func.count())
        .where(Onboarding.status == OnboardingStatus.COMPLETED, Onboarding.created_at >= since,
               Onboarding.archived_at.is_(None))
        .group_by(Onboarding.page_id)
    ).all())
    active = {page_id for page_id, _kind, _count in counts} | {page_id for page_id in onboarded if page_id is not None}
    pages = db.session.scalars(
        sa.select(SignupPage).where(sa.or_(SignupPage.enabled.is_(True), SignupPage.id.in_(active)))
        .order_by(SignupPage.slug)
    )
    result = {page.id: Funnel(page, onboarded=onboarded.get(page.id, 0)) for page in pages}
    stage = {"view": "views", "launch": "launches", "finish": "finished", "error": "errors"}
    for page_id, kind, count in counts:
        if page_id in result and kind in stage:
            setattr(result[page_id], stage[kind], getattr(result[page_id], stage[kind]) + count)
    abandoned: dict[int, dict[str | None, int]] = defaultdict(dict)
    for page_id, step, count in cancels:
        if page_id in result:
            abandoned[page_id][step] = count
    order = list(SCREENS)
    for page_id, steps in abandoned.items():
        ranked = sorted(steps.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order))
        result[page_id].abandoned = [(SCREENS.get(step or "", step or _("Unknown screen")), count)
                                     for step, count in ranked]
    return list(result.values())


# -- storage ----------------------------------------------------------------------------------------


@dataclass
class Storage:
    """How much the database holds, and what retention keeps of it."""

    #: On disk, in bytes: SQLite's file (without its WAL), or the whole PostgreSQL database.
    size_bytes: int
    #: When the oldest webhook event still kept was received; None before the first.
    oldest_event_at: datetime | None
    #: Days messages and statuses are kept (``ESU_RETENTION_DAYS``); 0 keeps them for ever.
    retention_days: int


def storage(retention_days: int) -> Storage:
    """The database's size and the oldest webhook event kept, with the retention setting."""
    return Storage(database_size(), webhooks.oldest_received_at(), retention_days)


def database_size() -> int:
    """The database's size on disk, in bytes."""
    if db.session.get_bind().dialect.name == "postgresql":
        return db.session.scalar(sa.text("SELECT pg_database_size(current_database())"))
    return db.session.scalar(sa.text("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"))
