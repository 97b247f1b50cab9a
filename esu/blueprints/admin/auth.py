"""Logging in and out of the admin, and ``flask --app wsgi admin set-password``.

The session is Flask's signed cookie. It carries the account's session nonce, and the guard compares
it with the one stored: logging out (or a new password) changes the stored nonce, so an old cookie,
even replayed, no longer opens anything.
"""

from __future__ import annotations

import hmac
import sys
import time
from urllib.parse import urlsplit

import click
from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext

from ...extensions import db, limiter
from ...i18n import N_
from ...models import now_utc
from ...models.admin import (
    MIN_PASSWORD_LENGTH,
    AdminAccount,
    PasswordTooShort,
    admin_account,
    authenticate,
    new_session_nonce,
    set_admin_password,
)
from . import bp, record
from .forms import LoginForm

#: Whatever went wrong, a failed login says only this.
LOGIN_FAILED = N_("That password is not right.")


def logged_in_admin() -> AdminAccount | None:
    """The admin account when this request's session is a current admin login, else None."""
    nonce, since = session.get("admin_nonce"), session.get("admin_since")
    if not isinstance(nonce, str) or not isinstance(since, int):
        return None
    if time.time() - since > current_app.config["ADMIN_SESSION_HOURS"] * 3600:
        return None
    account = admin_account()
    if account is None or not hmac.compare_digest(account.session_nonce.encode(), nonce.encode()):
        return None
    return account


def requested_path() -> str:
    """This request's path and query, to come back to after logging in."""
    return request.full_path.removesuffix("?")


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a path on this site, else None: never a redirect off the site.

    Refuses absolute and scheme-relative URLs (``//host``), backslashes (browsers read ``/\\host`` as
    ``//host``) and whitespace or control characters (browsers drop tabs and newlines from URLs).
    """
    if not target or len(target) > 2048:
        return None
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 or char == "\\" for char in target):
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def _count_failure(response) -> bool:
    return response.status_code == 401  # failed logins only: the form answers them 401


def empty_session() -> None:
    """Start an empty session; the CSRF token this request may have cached belonged to the old one."""
    session.clear()
    g.pop("csrf_token", None)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["ADMIN_LOGIN_LIMIT"], methods=["POST"], deduct_when=_count_failure)
def login():
    """The login form. Failed attempts (answered 401) are counted per client address; past the limit,
    every attempt from that address is answered 429 until the window passes."""
    form = LoginForm()
    if request.method == "GET":
        if logged_in_admin() is not None:
            return redirect(safe_next(request.args.get("next")) or url_for("admin.dashboard"))
        form.next.data = request.args.get("next", "")
    if form.validate_on_submit():
        account = authenticate(form.password.data)
        if account is not None:
            # A new session: nothing set before the login (by anyone) survives it.
            empty_session()
            session["admin_nonce"] = account.session_nonce
            session["admin_since"] = int(time.time())
            account.last_login_at = now_utc()
            g.admin = account
            record("logged_in")
            db.session.commit()
            return redirect(safe_next(form.next.data) or url_for("admin.dashboard"))
    failed = request.method == "POST"
    if failed:
        form.password.errors = []  # one message for every failure
    return render_template("admin/login.html", form=form, error=gettext(LOGIN_FAILED) if failed else None,
                           configured=admin_account() is not None), 401 if failed else 200


@bp.post("/logout")
def logout():
    """End this session and every other one: the account gets a new session nonce."""
    g.admin.session_nonce = new_session_nonce()
    record("logged_out")
    db.session.commit()
    empty_session()
    flash(gettext("You are logged out."))
    return redirect(url_for("admin.login"))


@bp.cli.command("set-password")
def set_password_command() -> None:
    """Set the admin password (at least 12 characters); every admin session ends.

    In a terminal it asks twice, hidden. Otherwise (a script, a container) it reads the
    ESU_ADMIN_PASSWORD environment variable.
    """
    if sys.stdin.isatty():
        password = click.prompt(f"New admin password (at least {MIN_PASSWORD_LENGTH} characters)",
                                hide_input=True, confirmation_prompt=True)
    else:
        password = current_app.config.get("ESU_ADMIN_PASSWORD")
        if not password:
            raise click.ClickException("Not a terminal: put the password in ESU_ADMIN_PASSWORD, or run this in a "
                                       "terminal to be asked for it.")
    try:
        set_admin_password(password)
    except PasswordTooShort as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo("The admin password is set; any admin session has ended. Log in at /admin/login.")
