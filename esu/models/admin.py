"""The admin: the one account that may use ``/admin``, and the record of what it did."""

from __future__ import annotations

import secrets
from datetime import datetime
from functools import cache

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from . import UTCDateTime, now_utc

#: Long enough to resist guessing without composition rules (ASVS 6.2: at least 8, 15 recommended).
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
#: The single admin account always has this id.
ADMIN_ID = 1

# argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile: t=3, 64 MiB, p=4), above OWASP's
# minimum; werkzeug's default scrypt (n=2^15) is weaker. check_needs_rehash upgrades old hashes on login.
_hasher = PasswordHasher()


@cache
def _unusable_hash() -> str:
    """Verified when no account exists, so such a login costs the same time as a wrong password."""
    return _hasher.hash(secrets.token_urlsafe(16))


class PasswordTooShort(ValueError):
    """The password is shorter than MIN_PASSWORD_LENGTH (or longer than MAX_PASSWORD_LENGTH)."""


def new_session_nonce() -> str:
    return secrets.token_urlsafe(32)


class AdminAccount(db.Model):
    """The agency's admin. One row (id 1): its password hash and the nonce every login session carries.

    Changing ``session_nonce`` ends every session: logout and a new password do so.
    """

    __tablename__ = "admin_accounts"
    __table_args__ = (sa.CheckConstraint(f"id = {ADMIN_ID}", name="single_account"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    session_nonce: Mapped[str] = mapped_column(sa.String(64))
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    def check_password(self, password: str) -> bool:
        """True when ``password`` matches; re-hashes it when the hashing parameters have changed."""
        try:
            _hasher.verify(self.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        if _hasher.check_needs_rehash(self.password_hash):
            self.password_hash = _hasher.hash(password)
        return True

    def __repr__(self) -> str:
        return "<AdminAccount>"


def admin_account() -> AdminAccount | None:
    return db.session.get(AdminAccount, ADMIN_ID)


def set_admin_password(password: str) -> AdminAccount:
    """Create the admin account or change its password; every existing admin session ends. Flushes."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise PasswordTooShort(f"the admin password needs at least {MIN_PASSWORD_LENGTH} characters "
                               f"(and at most {MAX_PASSWORD_LENGTH})")
    account = admin_account()
    if account is None:
        account = AdminAccount(id=ADMIN_ID)
        db.session.add(account)
    account.password_hash = _hasher.hash(password)
    account.session_nonce = new_session_nonce()
    account.password_changed_at = now_utc()
    db.session.flush()
    return account


def authenticate(password: str) -> AdminAccount | None:
    """The admin account when ``password`` is its password, else None (also when there is no account)."""
    account = admin_account()
    if account is None:
        try:
            _hasher.verify(_unusable_hash(), password)
        except VerificationError:
            pass
        return None
    return account if account.check_password(password) else None


class AdminAction(db.Model):
    """Something the admin did: who (the account, from which address), what, when, and to which record."""

    __tablename__ = "admin_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    admin_id: Mapped[int | None] = mapped_column(sa.ForeignKey("admin_accounts.id", ondelete="SET NULL"))
    #: What was done, e.g. ``revealed_pin``, ``retried_steps``, ``created_page``, ``logged_in``.
    action: Mapped[str] = mapped_column(sa.String(32))
    detail: Mapped[str | None] = mapped_column(sa.Text)
    onboarding_id: Mapped[int | None] = mapped_column(sa.ForeignKey("onboardings.id", ondelete="SET NULL"),
                                                      index=True)
    page_id: Mapped[int | None] = mapped_column(sa.ForeignKey("signup_pages.id", ondelete="SET NULL"),
                                                index=True)
    remote_addr: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, index=True)

    def __repr__(self) -> str:
        return f"<AdminAction {self.action}>"
