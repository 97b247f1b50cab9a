"""``flask --app wsgi check``: can this configuration run in production, and what must the Meta app have.

Secrets are checked before this runs: with ``ESU_ENV=production`` the app does not load while one is
missing or a placeholder, or while an encryption key is malformed (``esu.config``), and the command
stops with that list. Once it loads, this checks what only a running system can tell (the database,
its schema, the stored secrets against the keys) and the HTTPS settings, then prints the Meta app's
settings. Secrets are never printed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import click
import sqlalchemy as sa
from flask import current_app

from . import health
from .blueprints.webhooks import PATH as WEBHOOK_PATH
from .crypto import DecryptionError, vault
from .extensions import db

#: The webhook fields the Meta app subscribes to (App Dashboard → WhatsApp → Configuration).
META_WEBHOOK_FIELDS = (
    "account_update",
    "account_review_update",
    "phone_number_name_update",
    "phone_number_quality_update",
    "message_template_status_update",
    "template_category_update",
    "message_template_quality_update",
    "business_capability_update",
    "security",
    "messages",
)
#: Also needed when a signup page onboards WhatsApp Business app numbers (coexistence): meta-docs
#: embedded-signup/onboard-whatsapp-business-app-users.md, "Step 1: Subscribe to webhooks".
COEXISTENCE_WEBHOOK_FIELDS = ("history", "smb_app_state_sync", "smb_message_echoes")


def webhook_fields(coexistence: bool) -> tuple[str, ...]:
    """Every webhook field esu needs subscribed; the coexistence ones when a signup page uses that flow."""
    return META_WEBHOOK_FIELDS + (COEXISTENCE_WEBHOOK_FIELDS if coexistence else ())


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)


def check_settings(config, report: Report) -> None:
    """What the configuration alone tells."""
    if config["ESU_ENV"] != "production":
        report.problems.append(f"ESU_ENV is '{config['ESU_ENV']}': set ESU_ENV=production (it also makes esu "
                               "refuse missing or placeholder secrets at start)")
    else:
        report.passed.append("secrets present and not placeholders (ESU_ENV=production loaded)")
    if config.get("DEBUG"):
        report.problems.append("debug mode is on: never in production (FLASK_DEBUG)")
    if config["ESU_SIMULATOR"]:
        report.problems.append("the Meta simulator is on: set META_APP_ID and the other META_* settings, "
                               "and unset ESU_SIMULATOR")
    reused = [name for name in ("META_APP_SECRET", "META_WEBHOOK_VERIFY_TOKEN")
              if config.get(name) and config.get(name) == config.get("SECRET_KEY")]
    if config.get("SECRET_KEY") and config["SECRET_KEY"].encode() in config["ESU_ENCRYPTION_KEY_LIST"]:
        reused.append("ESU_ENCRYPTION_KEYS")
    if reused:
        report.problems.append(f"SECRET_KEY has the same value as {', '.join(reused)}: give each its own secret")
    keys = len(config["ESU_ENCRYPTION_KEY_LIST"])
    report.passed.append(f"ESU_ENCRYPTION_KEYS: {keys} valid Fernet key(s)")
    if keys > 1:
        report.notes.append("ESU_ENCRYPTION_KEYS lists old keys: once `flask --app wsgi keys rotate` has run, "
                            "remove them")
    check_https(config, report)


def check_https(config, report: Report) -> None:
    public_url = config.get("ESU_PUBLIC_URL")
    host = urlsplit(public_url).hostname if public_url else None
    if not public_url:
        report.problems.append("ESU_PUBLIC_URL is not set: the https:// address customers and Meta reach esu at")
    elif urlsplit(public_url).scheme != "https" or not host:
        report.problems.append(f"ESU_PUBLIC_URL must be an https:// address (it is '{public_url}')")
    else:
        report.passed.append(f"public address {public_url}")
    if not config["ESU_FORCE_HTTPS"]:
        report.problems.append("HTTPS is not required: plain HTTP would not be redirected (ESU_ENV=production "
                               "or ESU_FORCE_HTTPS=1)")
    if not config.get("SESSION_COOKIE_SECURE"):
        report.problems.append("the session cookie is not Secure")
    else:
        report.passed.append(f"session cookie {config['SESSION_COOKIE_NAME']} is Secure, HttpOnly, "
                             f"SameSite={config.get('SESSION_COOKIE_SAMESITE')}")
    hops = config["ESU_PROXY_HOPS"]
    if hops:
        report.passed.append(f"behind {hops} proxy(ies): client address and scheme from X-Forwarded-For/-Proto")
    else:
        report.notes.append("ESU_PROXY_HOPS=0: esu must receive HTTPS itself (gunicorn certfile/keyfile). Behind a "
                            "TLS proxy, set it to the number of proxies, or every request looks like plain HTTP "
                            "and is redirected forever")
    trusted = config.get("TRUSTED_HOSTS")
    if trusted and host and host not in trusted:
        report.problems.append(f"ESU_TRUSTED_HOSTS does not include {host}, the host of ESU_PUBLIC_URL: "
                               "every request to it would be refused")
    elif not trusted:
        report.notes.append("ESU_TRUSTED_HOSTS is not set: requests for any Host are served "
                            "(set it to the public host, plus what health checks send)")


def check_database(report: Report) -> None:
    state = health.schema_state()
    url = db.engine.url
    where = f"{url.get_backend_name()} database {url.database or ''}" + (f" on {url.host}" if url.host else "")
    if state.database != "ok":
        report.problems.append(f"the {where} is unreachable ({state.error})")
        return
    report.passed.append(f"{where} reachable")
    if url.get_backend_name() == "sqlite":
        report.notes.append("SQLite serves one machine only; more than one instance needs PostgreSQL")
    if state.migrations == health.CURRENT:
        report.passed.append("migrations current (" + ", ".join(sorted(state.head_revisions)) + ")")
    elif state.migrations == health.BEHIND:
        report.problems.append("the database schema is behind this code's migrations: run "
                               "`flask --app wsgi db upgrade` before starting")
    else:
        report.problems.append("the database has migrations this code does not know: it was migrated by a newer "
                               "release")
        return
    if state.migrations == health.CURRENT:
        check_stored_secrets(report)


def check_stored_secrets(report: Report) -> None:
    """Every stored token and PIN opens with the configured keys (a key dropped before rotating shows here)."""
    from .cli import encrypted_columns

    keys = vault()
    checked = unreadable = 0
    for _model, column in encrypted_columns():
        stored = sa.select(sa.type_coerce(column, sa.Text)).where(column.is_not(None))
        for ciphertext in db.session.scalars(stored):
            checked += 1
            try:
                keys.decrypt(ciphertext)
            except DecryptionError:
                unreadable += 1
    if unreadable:
        report.problems.append(f"{unreadable} of {checked} stored secret(s) do not decrypt with ESU_ENCRYPTION_KEYS: "
                               "put back the key they were encrypted with")
    else:
        report.passed.append(f"{checked} stored secret(s) decrypt with ESU_ENCRYPTION_KEYS")


def meta_app_settings(config) -> list[str]:
    """What the Meta app's dashboard must say, for this deployment."""
    public_url = config.get("ESU_PUBLIC_URL")
    host = urlsplit(public_url).hostname if public_url else None
    public_url, host = public_url or "https://<ESU_PUBLIC_URL>", host or "<host of ESU_PUBLIC_URL>"
    verify_token = "set in META_WEBHOOK_VERIFY_TOKEN" if config.get("META_WEBHOOK_VERIFY_TOKEN") else "NOT SET"
    return [
        f"App ID: {config.get('META_APP_ID')}",
        "Facebook Login for Business > Settings: Client OAuth login, Web OAuth login, Enforce HTTPS, "
        "Embedded Browser OAuth Login, Use Strict Mode for redirect URIs and Login with the JavaScript SDK on",
        f"  Allowed domains for the JavaScript SDK: {host}",
        f"  Valid OAuth redirect URIs: {public_url}/",
        "Facebook Login for Business > Configurations: the Embedded Signup configuration "
        f"{config.get('META_CONFIG_ID')}",
        "WhatsApp > Configuration > Webhook:",
        f"  Callback URL: {public_url}{WEBHOOK_PATH}",
        f"  Verify token: the value {verify_token} (not printed)",
        "  Webhook fields to subscribe: " + ", ".join(META_WEBHOOK_FIELDS),
        "  With a signup page for WhatsApp Business app numbers (coexistence), also: "
        + ", ".join(COEXISTENCE_WEBHOOK_FIELDS),
        "App settings > Advanced > Security > Require App Secret: on (esu sends appsecret_proof with every call)",
    ]


def run_checks(config) -> Report:
    report = Report()
    check_settings(config, report)
    check_database(report)
    return report


@click.command("check")
@click.option("--live", is_flag=True, help="Also ask Graph whether the Meta app is set up as esu needs (webhook "
              "subscription, system user token, credit line, Graph version); the admin dashboard shows the result.")
def check_command(live: bool) -> None:
    """Check this configuration for production and print the Meta app's settings; exits 1 on problems."""
    config = current_app.config
    report = run_checks(config)
    for line in report.passed:
        click.echo(f"ok    {line}")
    for line in report.notes:
        click.echo(f"note  {line}")
    for line in report.problems:
        click.echo(f"FAIL  {line}")
    click.echo("\nThe Meta app must have:")
    for line in meta_app_settings(config):
        click.echo(f"  {line}")
    if live:
        from .live_check import check_live

        report.problems += check_live(config)
    if report.problems:
        click.echo(f"\n{len(report.problems)} problem(s): esu is not ready for production.", err=True)
        sys.exit(1)
    click.echo("\nReady for production.")


def init_app(app) -> None:
    app.cli.add_command(check_command)
