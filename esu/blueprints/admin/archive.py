"""Archiving onboardings: test data and duplicates leave the lists, the dashboard's signals, charts and
funnels, and come back when unarchived. Nothing is deleted; each archive and unarchive is logged."""

from __future__ import annotations

import sqlalchemy as sa
from flask import flash, redirect, url_for
from flask_babel import gettext

from ...extensions import db
from ...models import Onboarding, now_utc
from . import bp, record


def shown(choice: str | None):
    """Which onboardings a list shows for the filter's ``archived`` choice: '' the others, ``only`` the
    archived ones, ``all`` both."""
    if choice == "all":
        return sa.true()
    if choice == "only":
        return Onboarding.archived_at.is_not(None)
    return Onboarding.archived_at.is_(None)


def _onboarding_or_404(onboarding_id: int) -> Onboarding:
    return db.get_or_404(Onboarding, onboarding_id, description=gettext("There is no such onboarding."))


@bp.post("/onboardings/<int:onboarding_id>/archive")
def archive_onboarding(onboarding_id: int):
    """Leave the onboarding out of lists, charts and funnels (it stays, whole, and can be unarchived)."""
    onboarding = _onboarding_or_404(onboarding_id)
    if onboarding.archived_at is None:
        onboarding.archived_at = now_utc()
        record("archived_onboarding", onboarding=onboarding)
        db.session.commit()
    flash(gettext("Archived: this onboarding no longer shows in lists, charts or funnels. Unarchive it to bring it "
                  "back."), "ok")
    return redirect(url_for("admin.onboarding", onboarding_id=onboarding_id))


@bp.post("/onboardings/<int:onboarding_id>/unarchive")
def unarchive_onboarding(onboarding_id: int):
    """Show the onboarding in lists, charts and funnels again."""
    onboarding = _onboarding_or_404(onboarding_id)
    if onboarding.archived_at is not None:
        onboarding.archived_at = None
        record("unarchived_onboarding", onboarding=onboarding)
        db.session.commit()
    flash(gettext("Unarchived: this onboarding shows in lists, charts and funnels again."), "ok")
    return redirect(url_for("admin.onboarding", onboarding_id=onboarding_id))
