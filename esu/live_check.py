"""``flask --app wsgi check --live``: ask Graph whether the agency's Meta app is set up as esu needs.

Four things, each a line saying what to change when it is wrong: the app's webhook subscription (object,
callback URL, active, every field esu needs), the system user token (valid, its expiry, its permissions),
the credit line of a Solution Partner (readable, its currency), and the Graph API version configured (not
past the date Meta ends it). The last result is kept (:class:`~esu.models.checks.LiveCheck`) for the admin
dashboard. Every call goes through esu's Graph client; no secret is printed.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta

import click
import sqlalchemy as sa

from . import graph as graph_client
from .blueprints.webhooks import PATH as WEBHOOK_PATH
from .check import COEXISTENCE_WEBHOOK_FIELDS, webhook_fields
from .config import ENV_SETTINGS
from .extensions import db
from .graph import GraphClient, GraphError
from .models import SignupPage
from .models.checks import LAST_CHECK_ID, LiveCheck

OK, NOTE, FAIL = "ok", "note", "fail"

#: Meta's Graph API versions and the day each stops being available (None: not announced). From
#: https://developers.facebook.com/docs/graph-api/changelog/versions/ ("Graph API": version, release date,
#: expiration date), as listed after v26.0's release of July 29, 2026. A call to a version past its date
#: is answered by the oldest version still available, whose behaviour esu was not tested with.
GRAPH_VERSIONS: dict[str, date | None] = {
    "v26.0": None,
    "v25.0": date(2028, 7, 29),
    "v24.0": date(2028, 2, 18),
    "v23.0": date(2027, 10, 8),
    "v22.0": date(2027, 5, 20),
    "v21.0": date(2027, 1, 21),
    "v20.0": date(2026, 9, 24),
    "v19.0": date(2026, 5, 21),
    "v18.0": date(2026, 1, 26),
    "v17.0": date(2025, 9, 12),
    "v16.0": date(2025, 5, 14),
    "v15.0": date(2024, 11, 20),
}
VERSIONS_PAGE = "https://developers.facebook.com/docs/graph-api/changelog/versions/"
#: The permissions esu's system user token needs: managing the customers' WABAs, sending on their numbers,
#: and business_management for the credit line and the WABAs' users (managing-credit-lines.md).
SYSTEM_USER_SCOPES = ("business_management", "whatsapp_business_management", "whatsapp_business_messaging")
#: A token or a Graph version ending within this many days is said ahead.
SOON = timedelta(days=30)
#: The Embedded Signup featureType of WhatsApp Business app numbers (coexistence).
COEXISTENCE_FEATURE = "whatsapp_business_app_onboarding"
WEBHOOK_SETTINGS = "App Dashboard → WhatsApp → Configuration"
TOKEN_SETTINGS = "Business Settings → Users → System users → Generate new token"
CREDIT_LINE_FIELDS = "id,legal_entity_name,balance,is_access_revoked"


@dataclass
class Finding:
    level: str  # OK, NOTE or FAIL
    text: str


PREFIXES = {OK: "ok    ", NOTE: "note  ", FAIL: "FAIL  "}


def check_live(config) -> list[str]:
    """Run the live checks, print each finding and keep them for the dashboard; answers the failures."""
    checked_at = datetime.now(UTC)
    findings = run(config, graph_client.client(), checked_at)
    click.echo("\nThe Meta app, asked live:")
    for finding in findings:
        click.echo(PREFIXES[finding.level] + finding.text)
    try:
        save(findings, checked_at)
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        click.echo("note  this result could not be kept for the dashboard: the database is unreachable")
    return [finding.text for finding in findings if finding.level == FAIL]


def run(config, graph: GraphClient, now: datetime) -> list[Finding]:
    """Every live finding, in the order above."""
    findings: list[Finding] = []
    try:
        coexistence = uses_coexistence()
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        coexistence = False
        findings.append(
            Finding(
                NOTE,
                "the signup pages could not be read: the coexistence webhook fields "
                f"({', '.join(COEXISTENCE_WEBHOOK_FIELDS)}) are not checked",
            )
        )
    findings += check_webhook_subscription(config, graph, coexistence)
    findings += check_system_user_token(config, graph, now)
    findings += check_credit_line(config, graph)
    findings += check_graph_version(config["META_GRAPH_VERSION"], now.date())
    return findings


def uses_coexistence() -> bool:
    """Whether a signup page (enabled or not: its customers stay) onboards WhatsApp Business app numbers."""
    return bool(db.session.scalar(sa.select(sa.exists().where(SignupPage.feature_type == COEXISTENCE_FEATURE))))


def _meta_says(error: GraphError) -> str:
    return f"Meta: {error.message}" + (f", code {error.code}" if error.code is not None else "")


def check_webhook_subscription(config, graph: GraphClient, coexistence: bool) -> list[Finding]:
    """``GET /{app-id}/subscriptions`` with the app token: the ``whatsapp_business_account`` subscription."""
    needed = webhook_fields(coexistence)
    public_url = config.get("ESU_PUBLIC_URL")
    expected = public_url.rstrip("/") + WEBHOOK_PATH if public_url else None
    try:
        subscriptions = (
            graph.request(
                "GET", f"{graph.app_id}/subscriptions", operation="app_subscriptions", token=graph.app_token
            ).get("data")
            or []
        )
    except GraphError as error:
        return [
            Finding(
                FAIL,
                f"the app's webhook subscriptions cannot be read ({_meta_says(error)}): check "
                "META_APP_ID and META_APP_SECRET",
            )
        ]
    subscription = next(
        (
            entry
            for entry in subscriptions
            if isinstance(entry, dict) and entry.get("object") == "whatsapp_business_account"
        ),
        None,
    )
    if subscription is None:
        return [
            Finding(
                FAIL,
                f"the app has no webhook subscription for whatsapp_business_account: in "
                f"{WEBHOOK_SETTINGS}, set the callback URL {expected or '<ESU_PUBLIC_URL>' + WEBHOOK_PATH} "
                f"with META_WEBHOOK_VERIFY_TOKEN and subscribe the fields {', '.join(needed)}",
            )
        ]
    findings = []
    callback = subscription.get("callback_url")
    if expected is None:
        findings.append(
            Finding(FAIL, f"the webhook callback URL is {callback}: set ESU_PUBLIC_URL so that it can be compared")
        )
    elif callback != expected:
        findings.append(
            Finding(
                FAIL,
                f"the webhook callback URL is {callback or 'empty'}: set it to {expected} in "
                f"{WEBHOOK_SETTINGS} (Meta verifies it with META_WEBHOOK_VERIFY_TOKEN when "
                "you save, so esu must be running)",
            )
        )
    if subscription.get("active") is not True:
        findings.append(
            Finding(
                FAIL,
                "the webhook subscription is not active: Meta sends nothing. In "
                f"{WEBHOOK_SETTINGS}, verify and save the callback URL again",
            )
        )
    subscribed = {field.get("name") for field in subscription.get("fields") or [] if isinstance(field, dict)}
    missing = [name for name in needed if name not in subscribed]
    if missing:
        why = (
            " (the last ones because a signup page onboards WhatsApp Business app numbers)"
            if any(name in COEXISTENCE_WEBHOOK_FIELDS for name in missing)
            else ""
        )
        findings.append(
            Finding(
                FAIL,
                f"webhook fields not subscribed: {', '.join(missing)}: subscribe them in "
                f"{WEBHOOK_SETTINGS} → Webhook fields{why}",
            )
        )
    if not findings:
        findings.append(
            Finding(OK, f"webhook subscription: {callback}, active, the {len(needed)} fields esu needs subscribed")
        )
    return findings


def check_system_user_token(config, graph: GraphClient, now: datetime) -> list[Finding]:
    """``debug_token`` of META_SYSTEM_USER_TOKEN, asked with the app token (which still works when the
    system user token does not)."""
    token = config.get("META_SYSTEM_USER_TOKEN")
    if not token:
        return [
            Finding(
                NOTE,
                "META_SYSTEM_USER_TOKEN is not set: the customers' tokens are checked with the app "
                "token; a Solution Partner needs one to share its credit line",
            )
        ]
    try:
        described = (
            graph.request(
                "GET", "debug_token", operation="debug_token", token=graph.app_token, params={"input_token": token}
            ).get("data")
            or {}
        )
    except GraphError as error:
        return [
            Finding(
                FAIL,
                f"debug_token could not describe the system user token ({_meta_says(error)}): check "
                "META_APP_ID and META_APP_SECRET",
            )
        ]
    renew = (
        f"generate a new one ({TOKEN_SETTINGS}, with {', '.join(SYSTEM_USER_SCOPES)}) and set META_SYSTEM_USER_TOKEN"
    )
    if described.get("is_valid") is not True:
        reason = (described.get("error") or {}).get("message") or "no reason given"
        return [Finding(FAIL, f"the system user token is not valid (Meta: {reason}): {renew}")]
    findings = []
    if str(described.get("app_id")) != str(config["META_APP_ID"]):
        findings.append(
            Finding(
                FAIL,
                f"the system user token belongs to app {described.get('app_id')}, not "
                f"META_APP_ID {config['META_APP_ID']}: {renew}",
            )
        )
    scopes = described.get("scopes") or []
    missing = [scope for scope in SYSTEM_USER_SCOPES if scope not in scopes]
    if missing:
        findings.append(Finding(FAIL, f"the system user token lacks the permission(s) {', '.join(missing)}: {renew}"))
    expires_at = int(described.get("expires_at") or 0)
    if not expires_at:
        expiry = "never expires"
    else:
        ends = datetime.fromtimestamp(expires_at, UTC)
        expiry = f"expires {ends:%Y-%m-%d %H:%M} UTC"
        if ends - now < SOON:
            findings.append(
                Finding(
                    NOTE,
                    f"the system user token {expiry}: {renew} before then (a token that "
                    "never expires can be generated)",
                )
            )
    if not any(finding.level == FAIL for finding in findings):
        findings.insert(0, Finding(OK, f"system user token: valid, {expiry}, with {', '.join(SYSTEM_USER_SCOPES)}"))
    return findings


def check_credit_line(config, graph: GraphClient) -> list[Finding]:
    """``GET /{credit-line-id}`` with the system user token, for a Solution Partner."""
    credit_line_id = config.get("META_CREDIT_LINE_ID")
    if not credit_line_id:
        return [Finding(OK, "no credit line to check (Tech Provider: META_CREDIT_LINE_ID is not set)")]
    try:
        line = graph.request(
            "GET",
            str(credit_line_id),
            operation="credit_line",
            token=config.get("META_SYSTEM_USER_TOKEN"),
            params={"fields": CREDIT_LINE_FIELDS},
        )
    except GraphError as error:
        return [
            Finding(
                FAIL,
                f"the credit line {credit_line_id} cannot be read with the system user token "
                f"({_meta_says(error)}): check META_CREDIT_LINE_ID against GET "
                "/{business-id}/extendedcredits, and that the system user has the Admin or Financial "
                "Editor role on the business portfolio",
            )
        ]
    name = line.get("legal_entity_name") or "no legal entity name"
    if line.get("is_access_revoked"):
        return [
            Finding(
                FAIL,
                f"access to the credit line {credit_line_id} ({name}) is revoked: ask Meta to restore "
                "it, or set META_CREDIT_LINE_ID to a line of yours that is in use",
            )
        ]
    currency = (line.get("balance") or {}).get("currency") or "not given"
    return [Finding(OK, f"credit line {credit_line_id} ({name}): readable, currency {currency}")]


def _number(version: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"v(\d+)\.(\d+)", version or "")
    return (int(match[1]), int(match[2])) if match else None


def check_graph_version(version: str, today: date) -> list[Finding]:
    """META_GRAPH_VERSION against Meta's table of versions and end dates."""
    default = ENV_SETTINGS["META_GRAPH_VERSION"]
    newest = max(GRAPH_VERSIONS, key=_number)
    if version == default:  # esu's own version is ending: only a newer one helps
        advice = f"move to a newer version once esu works with it (the newest is {newest}; see {VERSIONS_PAGE})"
    else:
        advice = f"set META_GRAPH_VERSION={default}, the version esu is tested with"
    if version not in GRAPH_VERSIONS:
        number = _number(version)
        if number is not None and number > _number(newest):
            return [
                Finding(
                    NOTE,
                    f"Graph API {version} is newer than esu's table of Meta's versions (newest "
                    f"{newest}): esu is tested with {default}; see {VERSIONS_PAGE}",
                )
            ]
        return [Finding(FAIL, f"Graph API {version} is not a version Meta still serves: {advice}")]
    until = GRAPH_VERSIONS[version]
    if until is None:
        return [Finding(OK, f"Graph API {version}: no end date announced yet")]
    if until <= today:
        return [
            Finding(
                FAIL,
                f"Graph API {version} was available until {until:%Y-%m-%d}: Meta now answers its calls as "
                f"the oldest version it still serves; {advice}",
            )
        ]
    if until - today < SOON:
        return [Finding(NOTE, f"Graph API {version} is available until {until:%Y-%m-%d}: {advice}, before then")]
    return [Finding(OK, f"Graph API {version}: available until {until:%Y-%m-%d}")]


# -- the last result, for the dashboard -----------------------------------------------------------------


def save(findings: list[Finding], checked_at: datetime) -> None:
    """Keep this run's findings as the last live check (replacing the one before)."""
    record = db.session.get(LiveCheck, LAST_CHECK_ID) or LiveCheck(id=LAST_CHECK_ID)
    record.checked_at = checked_at
    record.findings = [asdict(finding) for finding in findings]
    db.session.add(record)
    db.session.commit()


def last() -> LiveCheck | None:
    """The last live check, if one ran."""
    return db.session.get(LiveCheck, LAST_CHECK_ID)
