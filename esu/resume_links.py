"""Coming back to an onboarding: a token, signed with Flask's secret key (itsdangerous, as Flask signs its
session), names the onboarding and its page for 7 days.

The widget keeps the token of the visitor's onboarding (never the reference it follows it by, nor anything
Meta gave) and, back on the page, trades it for the reference; the admin copies a link holding one for
any unfinished onboarding, which opens the signup page at that onboarding.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urljoin

from flask import current_app, request, url_for
from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from .extensions import db
from .i18n import N_
from .models import Onboarding, OnboardingStatus, SignupPage, now_utc

SALT = "esu.resume-onboarding"
MAX_AGE = timedelta(days=7)
#: What a customer can still go on with (a PARTNER_ADDED record waiting for its callback has no page, and
#: needs Meta's dialog again): a rate-limited one goes on by itself, and the page says until when.
UNFINISHED = (OnboardingStatus.RUNNING, OnboardingStatus.AWAITING_VERIFICATION, OnboardingStatus.AWAITING_PIN,
              OnboardingStatus.RATE_LIMITED, OnboardingStatus.FAILED)


class ResumeRefused(Exception):
    """A token that names no onboarding here: ``status`` is the HTTP status that fits, ``message`` plain words
    (in English: ``gettext`` it where shown)."""

    status = 400
    message = ""


class LinkExpired(ResumeRefused):
    status = 410
    message = N_(
        "This link to go on with your sign-up has expired (they last 7 days). Ask us for a new one, or "
        "start the sign-up again."
    )


class LinkNotValid(ResumeRefused):
    status = 400
    message = N_(
        "This link to go on with your sign-up is not valid. Check that it was copied whole, or ask us for a new one."
    )


class OnboardingGone(ResumeRefused):
    status = 404
    message = N_("The sign-up this link points to no longer exists. Please start the sign-up again.")


def _serializer() -> URLSafeTimedSerializer:
    app = current_app
    # Flask's own order for its session: the fallbacks verify, the current key (last) signs.
    keys = [*(app.config.get("SECRET_KEY_FALLBACKS") or []), app.secret_key]
    return URLSafeTimedSerializer(keys, salt=SALT)


def token_for(onboarding: Onboarding) -> str:
    return _serializer().dumps({"onboarding": onboarding.id, "page": onboarding.page_id})


def onboarding_for(token: str, page: SignupPage) -> Onboarding:
    """The onboarding ``token`` names, on ``page``; ResumeRefused when it is expired, forged, for another page
    or gone."""
    try:
        named = _serializer().loads(token, max_age=MAX_AGE.total_seconds())
    except SignatureExpired:
        raise LinkExpired from None
    except BadData:
        raise LinkNotValid from None
    if not isinstance(named, dict) or named.get("page") != page.id or not isinstance(named.get("onboarding"), int):
        raise LinkNotValid
    onboarding = db.session.get(Onboarding, named["onboarding"])
    if onboarding is None or onboarding.page_id != page.id:
        raise OnboardingGone
    return onboarding


def reference_of(onboarding: Onboarding) -> str:
    """The reference the widget follows the onboarding by; one is made for an onboarding that has none."""
    if not onboarding.client_ref:
        onboarding.client_ref = secrets.token_urlsafe(24)
        db.session.commit()
    return onboarding.client_ref


@dataclass
class ResumeLink:
    url: str
    expires_at: datetime


def link_for(onboarding: Onboarding) -> ResumeLink | None:
    """A link the admin can send the customer to go on with an unfinished onboarding; None for one that is done,
    or has no signup page."""
    page = onboarding.page
    if onboarding.status not in UNFINISHED or page is None or not page.enabled:
        return None
    path = url_for("signup.resume_link", slug=page.slug, token=token_for(onboarding))
    base = current_app.config.get("ESU_PUBLIC_URL") or request.host_url
    return ResumeLink(urljoin(base, path), now_utc() + MAX_AGE)
