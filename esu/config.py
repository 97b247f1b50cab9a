"""Configuration: defaults, then the environment, then ``instance/config.py``, then a test mapping.

Every setting the README documents is read here and nowhere else. Production (``ESU_ENV=production``)
refuses to start while a secret is missing or still a placeholder; development fills the gaps with
generated secrets kept in the instance folder, so a fresh checkout runs with no set-up.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import click
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from . import rate_limits
from .sqlite import QueuedWritersConnection, writer_lock_path

#: The simulator's own Meta app, used when no real one is configured.
SIMULATED_APP_ID = "1000000000000001"
SIMULATED_SYSTEM_USER_ID = "1000000000000002"
SIMULATED_CREDIT_LINE_ID = "1000000000000003"
SIMULATED_PARTNER_BUSINESS_ID = "1000000000000004"
#: Not a secret: the simulator accepts it as the partner's system user token.
SIMULATED_SYSTEM_USER_TOKEN = "EAAsimulatedsystemusertoken"
#: Requests to this origin never leave the process: the Graph client hands them to the mounted simulator.
IN_PROCESS_SIMULATOR_ORIGIN = "http://meta-simulator.invalid"

#: Settings read from environment variables of the same name, with their defaults.
ENV_SETTINGS: dict[str, str | None] = {
    "ESU_ENV": "development",
    "SECRET_KEY": None,
    "DATABASE_URL": None,
    "ESU_ENCRYPTION_KEYS": None,
    "META_APP_ID": None,
    "META_APP_SECRET": None,
    "META_CONFIG_ID": None,
    "META_GRAPH_VERSION": "v25.0",
    "META_GRAPH_URL": None,
    "META_SDK_URL": None,
    "META_WEBHOOK_VERIFY_TOKEN": None,
    "META_SYSTEM_USER_TOKEN": None,
    "META_SYSTEM_USER_ID": None,
    "META_CREDIT_LINE_ID": None,
    "META_PARTNER_BUSINESS_ID": None,
    "ESU_SIMULATOR": None,
    "ESU_CREDIT_CURRENCY": "USD",
    "ESU_ADMIN_PASSWORD": None,
    "ESU_PUBLIC_URL": None,
    "ESU_PROXY_HOPS": "0",
    "ESU_FORCE_HTTPS": None,
    "ESU_TRUSTED_HOSTS": None,
    "REDIS_URL": None,
    # How long a process serves a signup page's cached HTML before checking the page's row again.
    "SIGNUP_PAGE_CACHE_SECONDS": "5",
    # Days messages and statuses are kept (then deleted by the forwarding worker); 0 keeps them for ever.
    "ESU_RETENTION_DAYS": "30",
    # Hours between the health sweeps the forwarding worker runs (0: none), and Graph calls in flight at once.
    "ESU_HEALTH_SWEEP_HOURS": "6",
    "ESU_HEALTH_SWEEP_CONCURRENCY": "4",
}

#: Secrets that production must have, and that must not be placeholders.
PRODUCTION_SECRETS = (
    "SECRET_KEY",
    "ESU_ENCRYPTION_KEYS",
    "META_APP_ID",
    "META_APP_SECRET",
    "META_CONFIG_ID",
    "META_WEBHOOK_VERIFY_TOKEN",
)
PLACEHOLDERS = {"", "change-me", "changeme", "secret", "dev", "test", "xxx", "todo", "placeholder"}


class ConfigError(click.ClickException, RuntimeError):
    """The configuration cannot run: the message names every setting at fault.

    A ClickException, so a ``flask`` command (``check`` above all) stops with the message, not a traceback.
    """


#: The currencies a shared credit line invoices in (solution-providers/managing-credit-lines.md, ``waba_currency``).
CREDIT_CURRENCIES = ("AUD", "EUR", "GBP", "IDR", "INR", "USD")


#: Each of a gunicorn worker's threads (gunicorn.conf.py) may hold a database connection at once, and the
#: webhook's storing thread one more: the pool opens up to 64 as they are needed and keeps 5 between bursts.
POOL = {"pool_size": 5, "max_overflow": 59}


def defaults() -> dict:
    """Settings that do not come from the environment."""
    return {
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        # The largest request we accept anywhere; the webhook allows Meta's 3 MB itself.
        "MAX_CONTENT_LENGTH": 3 * 1024 * 1024,
        "CALLBACK_MAX_BYTES": 16 * 1024,
        "GRAPH_TIMEOUT": (3.05, 20.0),
        "GRAPH_MAX_ATTEMPTS": 3,
        "GRAPH_BACKOFF_SECONDS": 0.25,
        "ONBOARDING_MAX_WORKERS": 6,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "ADMIN_LOGIN_LIMIT": "5 per minute",  # failed admin logins per client IP
        # Per client IP, one budget for all the onboarding calls it makes, on any page (callbacks, retries, code
        # requests and code checks together); the funnel events have a budget of their own.
        "SIGNUP_CALLBACK_LIMIT": "20 per minute",
        "SIGNUP_EVENTS_LIMIT": "120 per minute",
        "ADMIN_SESSION_HOURS": 12,  # an admin login lasts at most this long
        # Redis (or the database) down: count in each process rather than refuse every request.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        # Forwarding to clients' own URLs: (connect, read) seconds per attempt, and how long a worker owns a
        # claimed delivery (longer than any one attempt can take, or a second worker may send it too).
        "FORWARD_TIMEOUT": (3.05, 10.0),
        "FORWARD_LEASE_SECONDS": 120,
        # A rotated signing secret keeps signing beside the new one this long, so receivers switch without a gap.
        "FORWARD_SECRET_OVERLAP_HOURS": 24,
    }


def _is_on(value: str | None) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def load(app, test_config: dict | None = None) -> None:
    """Fill ``app.config`` in order: defaults, environment, ``instance/config.py``, ``test_config``."""
    app.config.update(defaults())
    for name, default in ENV_SETTINGS.items():
        app.config[name] = os.environ.get(name, default)
    app.config.from_pyfile("config.py", silent=True)
    if test_config:
        app.config.update(test_config)
    finish(app.config, Path(app.instance_path))


def finish(config, instance_path: Path) -> None:
    """Derive dependent settings, fill development gaps and validate production."""
    production = config["ESU_ENV"] == "production"
    simulator = config.get("ESU_SIMULATOR")
    config["ESU_SIMULATOR"] = _is_on(simulator) if simulator is not None else not config.get("META_APP_ID")

    if production:
        _check_production(config, simulator_asked=simulator is not None and config["ESU_SIMULATOR"])
    else:
        _fill_development_secrets(config, instance_path)

    if config["ESU_SIMULATOR"]:
        config["META_APP_ID"] = config.get("META_APP_ID") or SIMULATED_APP_ID
        config["META_CONFIG_ID"] = config.get("META_CONFIG_ID") or "2000000000000001"
        config["META_SYSTEM_USER_ID"] = config.get("META_SYSTEM_USER_ID") or SIMULATED_SYSTEM_USER_ID
        config["META_SYSTEM_USER_TOKEN"] = config.get("META_SYSTEM_USER_TOKEN") or SIMULATED_SYSTEM_USER_TOKEN
        config["META_PARTNER_BUSINESS_ID"] = (
            config.get("META_PARTNER_BUSINESS_ID") or SIMULATED_PARTNER_BUSINESS_ID
        )
        config["META_GRAPH_URL"] = config.get("META_GRAPH_URL") or f"{IN_PROCESS_SIMULATOR_ORIGIN}/_meta/graph"
        config["META_SDK_URL"] = config.get("META_SDK_URL") or "/_meta/en_US/sdk.js"
    else:
        config["META_GRAPH_URL"] = config.get("META_GRAPH_URL") or "https://graph.facebook.com"
        config["META_SDK_URL"] = config.get("META_SDK_URL") or "https://connect.facebook.net/en_US/sdk.js"

    if not config.get("SQLALCHEMY_DATABASE_URI"):
        config["SQLALCHEMY_DATABASE_URI"] = config.get("DATABASE_URL") or (
            f"sqlite:///{instance_path / 'esu.sqlite'}"
        )
    if config["SQLALCHEMY_DATABASE_URI"].startswith("postgres://"):
        config["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://" + config[
            "SQLALCHEMY_DATABASE_URI"
        ].removeprefix("postgres://")
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # Writers wait for each other instead of failing at once with "database is locked". No ping before
        # each checkout: a file has no server to go away, and the ping is a statement on every request.
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            **config["SQLALCHEMY_ENGINE_OPTIONS"],
            "pool_pre_ping": False,
            "connect_args": {"timeout": 15, "factory": QueuedWritersConnection},
        }
        if writer_lock_path(make_url(config["SQLALCHEMY_DATABASE_URI"]).database or "") is not None:  # a file
            config["SQLALCHEMY_ENGINE_OPTIONS"].update(POOL)

    if config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # An unreachable server fails in seconds (health checks, `check`) instead of the OS's minutes. The
        # ping before use is esu.pool's, for connections that sat idle, rather than one before every use.
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            **config["SQLALCHEMY_ENGINE_OPTIONS"],
            **POOL,
            "pool_pre_ping": False,
            "connect_args": {"connect_timeout": 5, **config["SQLALCHEMY_ENGINE_OPTIONS"].get("connect_args", {})},
        }

    try:
        config["SIGNUP_PAGE_CACHE_SECONDS"] = float(config.get("SIGNUP_PAGE_CACHE_SECONDS") or 0)
    except (TypeError, ValueError):
        raise ConfigError("SIGNUP_PAGE_CACHE_SECONDS must be a number of seconds (0: check every request).") from None
    if config["SIGNUP_PAGE_CACHE_SECONDS"] < 0:
        raise ConfigError("SIGNUP_PAGE_CACHE_SECONDS cannot be negative.")
    retention = config.get("ESU_RETENTION_DAYS")
    if retention is None or str(retention).strip() == "":
        retention = ENV_SETTINGS["ESU_RETENTION_DAYS"]
    try:
        config["ESU_RETENTION_DAYS"] = int(str(retention).strip())
    except (TypeError, ValueError):
        raise ConfigError("ESU_RETENTION_DAYS must be a whole number of days (0: keep messages for ever).") from None
    if config["ESU_RETENTION_DAYS"] < 0:
        raise ConfigError("ESU_RETENTION_DAYS cannot be negative (0: keep messages for ever).")
    for name, minimum in (("ESU_HEALTH_SWEEP_HOURS", 0), ("ESU_HEALTH_SWEEP_CONCURRENCY", 1)):
        setting = config.get(name)
        if setting is None or str(setting).strip() == "":
            setting = ENV_SETTINGS[name]
        try:
            config[name] = float(str(setting).strip())
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number (at least {minimum}).") from None
        if config[name] < minimum:
            raise ConfigError(f"{name} must be at least {minimum}.")
    config["ESU_HEALTH_SWEEP_CONCURRENCY"] = int(config["ESU_HEALTH_SWEEP_CONCURRENCY"])
    config["ESU_CREDIT_CURRENCY"] = str(config.get("ESU_CREDIT_CURRENCY") or "USD").strip().upper()
    if config["ESU_CREDIT_CURRENCY"] not in CREDIT_CURRENCIES:
        raise ConfigError("ESU_CREDIT_CURRENCY must be one of Meta's invoicing currencies: "
                          f"{', '.join(CREDIT_CURRENCIES)}.")
    config["ESU_ENCRYPTION_KEY_LIST"] = parse_keys(config["ESU_ENCRYPTION_KEYS"])
    # Rate-limit counters (admin logins, signup calls) are shared by every worker: in Redis when it is
    # configured, else in the database (esu.rate_limits).
    config.setdefault("RATELIMIT_STORAGE_URI", config.get("REDIS_URL") or rate_limits.URI)
    _finish_https(config, production)


def parse_keys(value: str | None) -> list[bytes]:
    """Split ``ESU_ENCRYPTION_KEYS`` into Fernet keys, failing on any that is not one."""
    keys = [part.strip() for part in (value or "").split(",") if part.strip()]
    if not keys:
        raise ConfigError("ESU_ENCRYPTION_KEYS is empty: set one or more Fernet keys, comma separated.")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError(
                f"ESU_ENCRYPTION_KEYS: key {position} is not a Fernet key "
                "(32 url-safe base64-encoded bytes; make one with `flask --app wsgi keys generate`)."
            ) from None
    return [key.encode() for key in keys]


def _check_production(config, simulator_asked: bool = False) -> None:
    missing = [name for name in PRODUCTION_SECRETS if not config.get(name)]
    placeholders = [
        name
        for name in PRODUCTION_SECRETS
        if config.get(name) and str(config[name]).strip().lower() in PLACEHOLDERS
    ]
    if config.get("SECRET_KEY") and len(str(config["SECRET_KEY"])) < 24:
        placeholders.append("SECRET_KEY (shorter than 24 characters)")
    if config.get("META_CREDIT_LINE_ID") and not config.get("META_SYSTEM_USER_TOKEN"):
        missing.append("META_SYSTEM_USER_TOKEN (needed to share the credit line)")
    if config.get("META_CREDIT_LINE_ID") and not config.get("META_SYSTEM_USER_ID"):
        missing.append("META_SYSTEM_USER_ID (needed to share the credit line)")
    problems = []
    if missing:
        problems.append("missing: " + ", ".join(missing))
    if placeholders:
        problems.append("placeholder values: " + ", ".join(placeholders))
    if simulator_asked:
        # The simulator answers as Meta, for anyone: codes, tokens, signed webhooks.
        problems.append("ESU_SIMULATOR on (the Meta simulator must never stand in for Meta there): unset it")
    if problems:
        raise ConfigError("esu will not start in production with " + "; ".join(problems) + ".")


def _fill_development_secrets(config, instance_path: Path) -> None:
    """Give development the secrets it lacks, kept in ``instance/dev-secrets.json`` across restarts."""
    wanted = {
        "SECRET_KEY": lambda: secrets.token_urlsafe(32),
        "ESU_ENCRYPTION_KEYS": lambda: Fernet.generate_key().decode(),
        "META_APP_SECRET": lambda: secrets.token_hex(16),
        "META_WEBHOOK_VERIFY_TOKEN": lambda: secrets.token_urlsafe(16),
    }
    if all(config.get(name) for name in wanted):
        return
    path = instance_path / "dev-secrets.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for name, make in wanted.items():
        if not config.get(name):
            if name not in stored:
                stored[name] = make()
                changed = True
            config[name] = stored[name]
    if changed:
        instance_path.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)


def _finish_https(config, production: bool) -> None:
    """Proxy hops, HTTPS and trusted hosts. Production always requires HTTPS; ESU_FORCE_HTTPS=1 asks for it
    in development too (a staging copy, say)."""
    try:
        config["ESU_PROXY_HOPS"] = int(config.get("ESU_PROXY_HOPS") or 0)
    except (TypeError, ValueError):
        raise ConfigError("ESU_PROXY_HOPS must be a whole number: how many proxies stand in front of esu.") from None
    if config["ESU_PROXY_HOPS"] < 0:
        raise ConfigError("ESU_PROXY_HOPS cannot be negative.")
    force = config.get("ESU_FORCE_HTTPS")
    config["ESU_FORCE_HTTPS"] = production or (force if isinstance(force, bool) else _is_on(force))
    if config["ESU_FORCE_HTTPS"] or config["ESU_ENV"] != "development":
        # Flask's default is False, so this only ever turns Secure on. The __Host- prefix makes browsers
        # refuse the cookie unless it is Secure, host-only and for the whole site (ASVS 3.3.3).
        config["SESSION_COOKIE_SECURE"] = True
        if config.get("SESSION_COOKIE_NAME", "session") == "session" and not config.get("SESSION_COOKIE_DOMAIN"):
            config["SESSION_COOKIE_NAME"] = "__Host-session"
    hosts = config.get("ESU_TRUSTED_HOSTS")
    if hosts and not config.get("TRUSTED_HOSTS"):
        config["TRUSTED_HOSTS"] = [host.strip() for host in str(hosts).split(",") if host.strip()]
    if config.get("ESU_PUBLIC_URL"):
        config["ESU_PUBLIC_URL"] = str(config["ESU_PUBLIC_URL"]).rstrip("/")
