"""Command-line tools: ``flask --app wsgi pages|keys|webhooks|forward|prune|demo …``."""

from __future__ import annotations

import errno
import logging
import re
import secrets
import signal
import socket
import threading
from datetime import timedelta

import click
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import current_app
from flask.cli import AppGroup
from werkzeug.serving import BaseWSGIServer, make_server

from . import forwarding
from .crypto import DecryptionError, EncryptedText, Vault
from .extensions import db
from .i18n import LANGUAGES
from .models import FormerSlug, SignupPage, now_utc
from .models.admin import set_admin_password

pages = AppGroup("pages", help="Manage signup pages.")
keys = AppGroup("keys", help="Encryption keys for tokens and PINs.")
webhooks = AppGroup("webhooks", help="Meta's webhook events.")

#: ``pages create --language``: the visitor's browser's language (the page's stays NULL).
BROWSER = "browser"
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
logger = logging.getLogger(__name__)


def init_app(app) -> None:
    app.cli.add_command(pages)
    app.cli.add_command(keys)
    app.cli.add_command(webhooks)
    app.cli.add_command(demo)
    app.cli.add_command(forward)
    app.cli.add_command(prune)
    app.cli.add_command(health)


def create_page(slug: str, title: str, **fields) -> SignupPage:
    """Add a signup page; raises ValueError with a readable reason when the slug is unusable."""
    if not SLUG.match(slug):
        raise ValueError(f"'{slug}' is not a valid slug: use lowercase letters, digits and '-' (at most 64)")
    if db.session.scalar(sa.select(SignupPage.id).where(SignupPage.slug == slug)) is not None:
        raise ValueError(f"a signup page '{slug}' already exists")
    page = SignupPage(slug=slug, title=title, **{"prefill": {}, "enabled": True, "feature_type": "", **fields})
    db.session.add(page)
    db.session.execute(sa.delete(FormerSlug).where(FormerSlug.slug == slug))  # the new page takes the address
    db.session.commit()
    return page


def change_slug(page: SignupPage, slug: str) -> str | None:
    """Give ``page`` the slug ``slug``; its old one then redirects to it. Answers the old slug, or None
    when it is the same. Flushes; the caller commits (and answers a slug taken meanwhile)."""
    old = page.slug
    if slug == old:
        return None
    # The new address is the page's own now (also when it was this page's, or another's, former slug), and
    # the old one points at the page, whichever slug it has later.
    db.session.execute(sa.delete(FormerSlug).where(FormerSlug.slug.in_((slug, old))))
    page.slug = slug
    db.session.add(FormerSlug(slug=old, page_id=page.id))
    db.session.flush()
    return old


def page_of_former_slug(slug: str) -> SignupPage | None:
    """The page that had ``slug`` before its current one (None when no page did)."""
    return db.session.scalar(sa.select(SignupPage).join(FormerSlug, FormerSlug.page_id == SignupPage.id)
                             .where(FormerSlug.slug == slug))


@pages.command("create")
@click.argument("slug")
@click.option("--title", required=True, help="The page's heading.")
@click.option("--client-name", help="The client this page is for.")
@click.option("--language", type=click.Choice([BROWSER, *LANGUAGES]), default=BROWSER, show_default=True,
              help="What the page and Meta's dialog speak; 'browser': each visitor's browser's language.")
def pages_create(slug: str, title: str, client_name: str | None, language: str) -> None:
    """Create the signup page SLUG, served at /signup/SLUG."""
    try:
        create_page(slug, title, client_name=client_name, language=None if language == BROWSER else language)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created /signup/{slug}")


@pages.command("list")
def pages_list() -> None:
    """List the signup pages."""
    for page in db.session.scalars(sa.select(SignupPage).order_by(SignupPage.slug)):
        click.echo(f"{page.slug}\t{'enabled' if page.enabled else 'disabled'}\t{page.title}")


@keys.command("generate")
def keys_generate() -> None:
    """Print a new Fernet key to put first in ESU_ENCRYPTION_KEYS."""
    click.echo(Fernet.generate_key().decode())


def encrypted_columns():
    for mapper in db.Model.registry.mappers:
        for column in mapper.columns:
            if isinstance(column.type, EncryptedText):
                yield mapper.class_, column


def rotate_keys() -> tuple[int, list[str]]:
    """Re-encrypt every stored secret under the first key. Answers how many values were rewritten, and
    where the values are that no configured key opens (left as they are)."""
    vault: Vault = current_app.extensions["esu_vault"]
    rewritten, unreadable = 0, []
    for model, column in encrypted_columns():
        table = model.__table__
        raw = sa.type_coerce(column, sa.Text)  # the ciphertext as stored, not decrypted
        primary_key = table.primary_key.columns.values()[0]
        rows = db.session.execute(sa.select(primary_key, raw.label("value")).where(column.is_not(None))).all()
        for key, value in rows:
            try:
                rotated = vault.rotate(value)
            except DecryptionError:
                unreadable.append(f"{table.name}.{column.name} of {primary_key.name} {key}")
                continue
            db.session.execute(
                sa.update(table).where(primary_key == key).values({column.name: sa.type_coerce(rotated, sa.Text)})
            )
            rewritten += 1
    db.session.commit()
    return rewritten, unreadable


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every token and PIN with the first key of ESU_ENCRYPTION_KEYS.

    Put the new key first, keep the old ones after it, run this, then remove the old keys.
    """
    count, unreadable = rotate_keys()
    click.echo(f"Re-encrypted {count} stored secret(s) under the first key.")
    if unreadable:
        raise click.ClickException(
            f"{len(unreadable)} stored secret(s) cannot be decrypted with any key of ESU_ENCRYPTION_KEYS and were "
            "left as they are (was a key removed too early?): " + "; ".join(unreadable)
        )


@webhooks.command("reapply")
@click.option("--limit", default=1000, show_default=True, help="At most this many events, oldest first.")
def webhooks_reapply(limit: int) -> None:
    """Apply again the stored webhook events that failed (after a fix), oldest first."""
    from . import webhooks as webhook_events

    tried, failed = webhook_events.reapply(limit)
    db.session.commit()
    click.echo(f"Applied {tried} webhook event(s) again; {failed} failed again.")


def listen(host: str, port: int, app) -> BaseWSGIServer:
    """The demo's server, bound to ``host:port`` now, so that a busy port is said before anything changes;
    raises ClickException in plain words when it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"port {port} on {host} is busy: another program (another `make demo`?) is listening there. "
                f"Stop it, or pick another port: make demo PORT={port + 1}") from None
        raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    try:
        # Werkzeug's server takes the bound socket (it duplicates the descriptor) instead of binding again,
        # which on a busy port would print its own message and exit.
        return make_server(host, port, app, threaded=True, fd=sock.fileno())
    finally:
        sock.close()


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535), envvar="PORT",
              help="Also read from PORT (make demo PORT=5001).")
def demo(host: str, port: int) -> None:
    """Create or update the database, seed the 'demo' page, set a new random admin password (printed) and
    serve the app with the simulator."""
    from flask_migrate import upgrade

    if not current_app.config["ESU_SIMULATOR"]:
        raise click.ClickException("demo runs against the Meta simulator: unset META_APP_ID or set ESU_SIMULATOR=1")
    # The port first: a second demo must not change the password of the one already serving.
    server = listen(host, port, current_app._get_current_object())
    try:
        upgrade()
        if db.session.scalar(sa.select(SignupPage.id).where(SignupPage.slug == "demo")) is None:
            create_page("demo", "Connect your WhatsApp Business number", client_name="Demo client",
                        intro="Click the button, walk through the (simulated) Meta dialog, and watch your number "
                              "get onboarded.")
        admin_password = secrets.token_urlsafe(12)  # a new one each run: the demo has no other way to tell it
        set_admin_password(admin_password)
        db.session.commit()
    except BaseException:
        server.server_close()
        raise
    click.echo(f"\n  esu is running with the Meta simulator: http://{host}:{port}/signup/demo")
    click.echo(f"  Admin: http://{host}:{port}/admin/  password: {admin_password}\n")
    stop_forwarding = forwarding.start_background_worker(current_app._get_current_object(),
                                                         chores=onboarding_chores())
    try:
        server.serve_forever()  # closes the server when it ends, also on Ctrl-C
    finally:
        stop_forwarding()


@click.command("forward")
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@click.option("--batch-size", default=forwarding.DEFAULT_BATCH_SIZE, show_default=True, type=click.IntRange(1, 200),
              help="Deliveries claimed and in flight at once.")
@click.option("--poll-interval", default=1.0, show_default=True, type=click.FloatRange(0.05),
              help="Seconds between looks for due deliveries when there is nothing to do.")
def forward(once: bool, batch_size: int, poll_interval: float) -> None:
    """Send queued deliveries to the clients' forwarding targets, until stopped (SIGTERM or Ctrl-C).

    Run it beside the web server. Any number may run on PostgreSQL; run one on SQLite.
    """
    stop_event = threading.Event()
    chores = []
    if not once:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop_event.set())
        click.echo(f"Forwarding worker started (batch size {batch_size}); stop with Ctrl-C or SIGTERM.")
        chores = (retention_chores(current_app.config["ESU_RETENTION_DAYS"]) + onboarding_chores()
                  + sweep_chores(current_app.config["ESU_HEALTH_SWEEP_HOURS"]))
    stats = forwarding.run_worker(batch_size, once=once, stop_event=stop_event, poll_interval=poll_interval,
                                  chores=chores)
    click.echo(f"Forwarding: {stats}.")


#: How often the forwarding worker deletes what retention no longer keeps…
RETENTION_EVERY = timedelta(hours=1)
#: …and how many batches it deletes at a turn before sending what is due (then it goes on at the next).
RETENTION_BATCHES_A_TURN = 10


def retention_chores(keep_days: int) -> list[forwarding.Chore]:
    """The forwarding worker's retention pass, hourly, unless ``keep_days`` is 0 (keep for ever)."""
    from . import webhooks as webhook_events

    def retention_pass() -> bool:
        pruned = webhook_events.prune(keep_days, max_batches=RETENTION_BATCHES_A_TURN)
        if pruned.events:
            logger.info("retention: messages and statuses older than %d days: %s", keep_days, pruned)
        return pruned.more

    return [forwarding.Chore("retention pass", retention_pass, RETENTION_EVERY)] if keep_days else []


def sweep_chores(hours: float) -> list[forwarding.Chore]:
    """The health sweep (``esu.sweep``) every ``hours``, unless 0."""
    from . import sweep

    def health_sweep() -> bool:
        logger.info("health sweep: %s", sweep.sweep())
        return False

    return [forwarding.Chore("health sweep", health_sweep, timedelta(hours=hours))] if hours else []


@click.command("health")
def health() -> None:
    """Ask Graph about every onboarded customer (token, account, numbers), apply what changed as a webhook
    would, and print what needs a person. Exit 1 when a customer could not be checked."""
    from . import sweep

    report = sweep.sweep()
    for line in report.findings:
        click.echo(f"needs a person: {line}")
    for line in report.unchecked:
        click.echo(f"not checked: {line}")
    click.echo(f"Health sweep: {report}.")
    if report.unchecked:
        raise SystemExit(1)


#: How often the forwarding worker looks for onboarding steps whose rate-limit wait is over.
RATE_LIMITED_EVERY = timedelta(seconds=15)


def onboarding_chores(clock=None) -> list[forwarding.Chore]:
    """The forwarding worker runs the onboarding steps Meta rate-limited, once their wait is over."""
    from .onboarding.throttled import run_due

    clock = clock or now_utc
    return [forwarding.Chore("rate-limited onboarding steps", lambda: run_due(clock()), RATE_LIMITED_EVERY)]


@click.command("prune")
@click.option("--days", type=click.IntRange(0), default=None,
              help="Keep this many days instead of ESU_RETENTION_DAYS (0: keep everything).")
def prune(days: int | None) -> None:
    """Delete the messages and statuses older than ESU_RETENTION_DAYS, with their finished forwarding
    deliveries, now (the forwarding worker does it every hour). Lifecycle events are kept."""
    from . import webhooks as webhook_events

    keep_days = current_app.config["ESU_RETENTION_DAYS"] if days is None else days
    if not keep_days:
        click.echo("Retention is off (0 days: everything is kept): nothing deleted.")
        return
    click.echo(f"Messages and statuses older than {keep_days} days: {webhook_events.prune(keep_days)}.")
