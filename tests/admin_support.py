"""Helpers for the admin's tests: the admin's client, record factories (`gen_*`). Fixtures: admin_fixtures."""

from __future__ import annotations

import re
import secrets
import time
from datetime import datetime, timedelta

from esu.extensions import db
from esu.forwarding.signing import new_message_id, new_secret
from esu.models import (
    Onboarding,
    OnboardingStep,
    PhoneNumber,
    SignupEvent,
    SignupPage,
    WebhookEvent,
    WhatsAppBusinessAccount,
    now_utc,
)
from esu.models.admin import AdminAccount
from esu.models.forwarding import ForwardAttempt, ForwardDelivery, ForwardingTarget
from esu.onboarding.assets import add_waba

PASSWORD = "correct horse battery staple"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


class AdminClient:
    """The test client of a logged-in admin; ``post`` adds the CSRF token as the forms do."""

    def __init__(self, client):
        self.client = client
        self._token: str | None = None

    def get(self, url: str, **kwargs):
        return self.client.get(url, **kwargs)

    def csrf_token(self) -> str:
        if self._token is None:
            html = self.get("/admin/pages").get_data(as_text=True)
            match = CSRF_META.search(html)
            assert match, "admin pages carry a CSRF token"
            self._token = match.group(1)
        return self._token

    def post(self, url: str, data: dict | None = None, **kwargs):
        return self.client.post(url, data={**(data or {}), "csrf_token": self.csrf_token()}, **kwargs)


def log_in_session(client, account: AdminAccount) -> None:
    """What a successful login leaves in the session (the login form itself is tested on its own)."""
    with client.session_transaction() as session:
        session["admin_nonce"] = account.session_nonce
        session["admin_since"] = int(time.time())


# -- record factories ----------------------------------------------------------------------------------


def gen_digits(length: int = 15) -> str:
    return str(secrets.randbelow(9 * 10 ** (length - 1)) + 10 ** (length - 1))


def gen_page(slug: str = "shop", **fields) -> SignupPage:
    page = SignupPage(slug=slug, title=fields.pop("title", f"Page {slug}"), prefill={}, feature_type="",
                      enabled=fields.pop("enabled", True), **fields)
    db.session.add(page)
    db.session.flush()
    return page


def gen_onboarding(page: SignupPage | None = None, *, status: str = "completed", business_name: str | None = None,
                   created_at: datetime | None = None, waba: bool = True, phone: bool = True,
                   steps: tuple[tuple[str, str], ...] = (), **fields) -> Onboarding:
    """An onboarding as the callback leaves it, with its WABA and number records."""
    waba_id = fields.pop("waba_id", gen_digits()) if waba else None
    phone_id = fields.pop("phone_number_id", gen_digits()) if phone else None
    display = fields.pop("display_phone_number", f"+1 555-{secrets.randbelow(900) + 100}-{secrets.randbelow(9000) + 1000}")
    onboarding = Onboarding(
        page_id=page.id if page else None, event="FINISH", source="callback", status=status,
        business_name=business_name, business_id=fields.pop("business_id", gen_digits()), waba_id=waba_id,
        phone_number_id=phone_id, display_phone_number=display if phone else None,
        created_at=created_at or now_utc(), **fields,
    )
    db.session.add(onboarding)
    if waba_id and db.session.get(WhatsAppBusinessAccount, waba_id) is None:
        db.session.add(WhatsAppBusinessAccount(id=waba_id, name=business_name, details={}))
    if phone_id and db.session.get(PhoneNumber, phone_id) is None:
        db.session.flush()
        db.session.add(PhoneNumber(id=phone_id, waba_id=waba_id, display_phone_number=display,
                                   registration_attempts=0, details={}))
    for position, (name, step_status) in enumerate(steps):
        onboarding.steps.append(OnboardingStep(name=name, position=position * 10, status=step_status, attempts=1,
                                               runs=1))
    db.session.flush()
    if waba_id:
        add_waba(onboarding, waba_id)
    return onboarding


def gen_more_waba(onboarding: Onboarding, **fields) -> tuple[WhatsAppBusinessAccount, PhoneNumber]:
    """Another WABA of a multi-WABA onboarding (``waba_ids``), kept among its assets as the callback keeps
    it, with a number of its own."""
    waba = WhatsAppBusinessAccount(id=gen_digits(), name=fields.pop("name", "Second account"), details={}, **fields)
    phone = PhoneNumber(id=gen_digits(), waba_id=waba.id, registration_attempts=0, details={},
                        display_phone_number=f"+1 555-{secrets.randbelow(900) + 100}-{secrets.randbelow(9000) + 1000}")
    db.session.add_all([waba, phone])
    db.session.flush()
    add_waba(onboarding, waba.id)
    db.session.flush()
    return waba, phone


def gen_webhook_event(*, field: str = "account_update", waba_id: str | None = None, status: str = "applied",
                      value: dict | None = None, received_at: datetime | None = None, **fields) -> WebhookEvent:
    event = WebhookEvent(dedupe_key=secrets.token_hex(20), field=field, waba_id=waba_id, status=status,
                         value=value if value is not None else {"event": "PARTNER_ADDED"},
                         received_at=received_at or now_utc(), **fields)
    db.session.add(event)
    db.session.flush()
    return event


def gen_signup_event(page: SignupPage, kind: str, *, current_step: str | None = None,
                     ago: timedelta = timedelta(hours=1), **fields) -> SignupEvent:
    event = SignupEvent(page_id=page.id, kind=kind, current_step=current_step, created_at=now_utc() - ago, **fields)
    db.session.add(event)
    db.session.flush()
    return event


def gen_target(page: SignupPage, url: str = "http://127.0.0.1:9/hooks", **fields) -> ForwardingTarget:
    """A forwarding target as ``create_target`` leaves it (development: any local URL is fine)."""
    target = ForwardingTarget(page_id=page.id, url=url, secret=new_secret(),
                              fields=fields.pop("fields", []), enabled=fields.pop("enabled", True), **fields)
    db.session.add(target)
    db.session.flush()
    return target


def gen_delivery(target: ForwardingTarget, event: WebhookEvent | None = None, *, status: str = "delivered",
                 attempts: tuple[tuple[int | None, str | None, str | None], ...] = (),
                 created_at: datetime | None = None) -> ForwardDelivery:
    """A delivery of ``event`` (a test event when None) and its attempts: (status code, excerpt, error)."""
    now = created_at or now_utc()
    delivery = ForwardDelivery(target_id=target.id, event_id=event.id if event else None,
                               message_id=new_message_id(), status=status, attempts=len(attempts),
                               next_attempt_at=now, created_at=now,
                               delivered_at=now if status == "delivered" else None,
                               last_status_code=attempts[-1][0] if attempts else None,
                               last_error=attempts[-1][2] if attempts else None)
    db.session.add(delivery)
    db.session.flush()
    for index, (code, excerpt, error) in enumerate(attempts):
        db.session.add(ForwardAttempt(delivery_id=delivery.id, attempted_at=now + timedelta(seconds=index),
                                      status_code=code, duration_ms=12, response_excerpt=excerpt, error=error))
    db.session.flush()
    return delivery
