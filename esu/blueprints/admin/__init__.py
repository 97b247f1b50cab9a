"""The admin: one person sees every onboarding's story, fixes what failed and runs the signup pages.

Everything under ``/admin`` needs the admin's login, checked once, here; only the login page is open.
One module per area: auth, dashboard, onboardings (and resume: an unfinished one's stuck run and resume
link; finishes: how a signup finished; registration: the number's own PIN; archive), webhooks, pages,
forwarding (and forwarding_manual: send now, replay since).
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, abort, g, redirect, request, url_for
from flask_babel import gettext

from ... import phones
from ...extensions import db
from ...models import Onboarding, SignupPage
from ...models.admin import AdminAction
from ...webhooks.appliers.waba import state_meaning
from .forms import EmptyForm
from .labels import status_label

bp = Blueprint("admin", __name__, url_prefix="/admin", cli_group="admin")

#: The only admin endpoints reachable without the login.
OPEN_ENDPOINTS = frozenset({"admin.login"})


@bp.before_request
def require_login():
    """The one access guard: anonymous GETs go to the login page, anything else is refused."""
    if request.endpoint in OPEN_ENDPOINTS:
        g.admin = None
        return None
    g.admin = auth.logged_in_admin()
    if g.admin is not None:
        return None
    if request.method in ("GET", "HEAD"):
        return redirect(url_for("admin.login", next=auth.requested_path()))
    abort(401, description=gettext("Log in to the admin first."))


@bp.before_request
def refuse_nul_characters():
    """No NUL in a query string or form: PostgreSQL refuses it in text, so a search, filter or field holding
    one would fail in the database instead of answering."""
    for values in (request.args, request.form):
        if any("\x00" in key or "\x00" in value for key, value in values.items(multi=True)):
            abort(400, description=gettext("The request holds a NUL character, which no field or search may contain."))


@bp.after_request
def never_cache(response):
    # Admin pages carry customer data (and, once, a PIN): no browser or proxy may keep a copy.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.context_processor
def admin_templates():
    return {"logout_form": EmptyForm()}  # every admin page has the logout button


#: Every number the admin shows, in international format (as the widget shows it too).
bp.add_app_template_filter(phones.international, "phone")
bp.add_app_template_filter(status_label, "status_label")
bp.add_app_template_global(state_meaning, "state_meaning")


@bp.app_template_filter("when")
def when(value: datetime | None) -> str:
    """A UTC time as people read it in a list: 2026-11-25 21:55 UTC."""
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def field_errors(label: str, errors: list) -> str:
    """A filter field's refusal for a 400: the field's label, then what is wrong with it."""
    return gettext("%(field)s: %(errors)s", field=label, errors=" ".join(map(str, errors)))


def record(action: str, *, detail: str | None = None, onboarding: Onboarding | None = None,
           page: SignupPage | None = None) -> AdminAction:
    """Add an entry to the admin action log (the caller commits)."""
    entry = AdminAction(
        admin_id=g.admin.id if g.get("admin") else None,
        action=action,
        detail=detail,
        onboarding_id=onboarding.id if onboarding is not None else None,
        page_id=page.id if page is not None else None,
        remote_addr=(request.remote_addr or "")[:64] or None,
    )
    db.session.add(entry)
    return entry


from . import (  # noqa: F401  (their routes join bp)
    archive, auth, dashboard, finishes, forwarding, forwarding_manual, onboardings, pages, registration, resume,
    webhooks,
)
