"""After onboarding: each lifecycle event Meta sends, signed, through ``/webhooks/whatsapp``, sets what the
admin sees: the account's state on the onboarding page and, when it needs a person, the dashboard under the
customer's business name. Shapes are the recorded payloads (``shared/webhook-payloads``); meanings are
Meta's (meta-docs/webhooks/reference/account-update-webhook-reference.md,
message-template-status-update-webhook-reference.md, phone-number-quality-update-webhook-reference.md;
VERIFIED_ACCOUNT: solution-providers/managing-webhooks.md)."""

from __future__ import annotations

import json
import time
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from esu.extensions import db
from esu.models import MessageTemplate, PhoneNumber, WhatsAppBusinessAccount

from ..admin_support import gen_onboarding, gen_page
from .conftest import envelope, events

pytest_plugins = ["tests.admin_fixtures"]

RECORDED = Path(__file__).resolve().parents[2].parent / "shared" / "webhook-payloads"
PARTNER_BUSINESS_ID = "2949482758682047"  # the partner's business entry of Meta's PARTNER_* examples
WABA_ID = "184943124712545"
NAME = "Warung Sari Rasa"

needs_recorded = pytest.mark.skipif(not RECORDED.is_dir(), reason=f"{RECORDED} is absent")


def recorded(name: str, time: int = 1750000000) -> dict:
    """A recorded payload, about our customer's WABA (its entry, or its waba_info), at ``time``."""
    body = json.loads((RECORDED / f"{name}.json").read_text())
    for entry in body["entry"]:
        entry["time"] = time
        for change in entry["changes"]:
            if isinstance(change["value"].get("waba_info"), dict):
                change["value"]["waba_info"]["waba_id"] = WABA_ID
            else:
                entry["id"] = WABA_ID
    return body


@pytest.fixture
def customer(app):
    app.config["META_PARTNER_BUSINESS_ID"] = PARTNER_BUSINESS_ID
    onboarding = gen_onboarding(
        gen_page("client"), business_name=NAME, waba_id=WABA_ID, display_phone_number="+1 555-078-3881"
    )
    db.session.commit()
    return onboarding


def signal_card(html: str, key: str) -> str | None:
    match = re.search(rf'<article class="card signal signal-{key}">(.*?)</article>', html, re.DOTALL)
    return match.group(1) if match else None


def waba() -> WhatsAppBusinessAccount:
    db.session.expire_all()
    return db.session.get(WhatsAppBusinessAccount, WABA_ID)


LIFECYCLE = [
    # (recorded payload, state, what the reason or page says, until)
    ("account_update__pywa-account-update-partner-app-uninstalled", "disconnected", "uninstalled the app", None),
    ("account_update__pywa-account-update-partner-removed", "offboarded", "removed the agency as partner", None),
    (
        "account_update__pywa-account-update-partner-removed-wa-app-disconnection",
        "offboarded",
        "PRIMARY_INACTIVITY by SYSTEM",
        None,
    ),
    ("account_update__pywa-account-update-account-offboarded", "paused", "device change or re-registration", None),
    ("account_update__pywa-account-update-account-deleted", "deleted", "was deleted", None),
    ("account_update__bindambc-accountbanned", "ban_scheduled", "January 31, 2021", datetime(2021, 1, 31, tzinfo=UTC)),
    (
        "account_update__pywa-account-update-account-restriction",
        "restricted",
        "RESTRICTED_BIZ_INITIATED_MESSAGING, RESTRICTED_ADD_PHONE_NUMBER_ACTION",
        datetime.fromtimestamp(1641330498, UTC),
    ),
    ("account_update__pywa-account-update-account-violation", "violation", "ADULT", None),
]


@needs_recorded
@pytest.mark.parametrize(
    ("name", "state", "said", "until"), LIFECYCLE, ids=[row[1] + ":" + row[0][16:] for row in LIFECYCLE]
)
def test_a_lifecycle_event_sets_the_state_the_admin_sees(deliver, admin, customer, name, state, said, until):
    assert deliver(recorded(name)).status_code == 200
    assert [event.status for event in events()] == ["applied"]

    account = waba()
    assert (account.state, account.state_until, account.state_at) == (
        state,
        until,
        datetime.fromtimestamp(1750000000, UTC),
    )
    page = admin.get(f"/admin/onboardings/{customer.id}").get_data(as_text=True)
    assert f"account-state state-{state}" in page and said in page
    card = signal_card(admin.get("/admin/").get_data(as_text=True), "account_state")
    if state == "restricted":  # this recorded restriction ended in 2022: nothing for a person any more
        assert card is None
    else:
        assert card is not None and NAME in card and f">{WABA_ID}<" not in card


@needs_recorded
def test_a_restriction_needs_a_person_until_it_ends(deliver, admin, customer):
    """ACCOUNT_RESTRICTION's ``restriction_info[].expiration`` (meta-docs/webhooks/reference/
    account-update-webhook-reference.md): the dashboard lists the customer while the restriction lasts."""
    body = recorded("account_update__pywa-account-update-account-restriction", int(time.time()))
    ends = int(time.time()) + 86400
    for restriction in body["entry"][0]["changes"][0]["value"]["restriction_info"]:
        restriction["expiration"] = ends
    assert deliver(body).status_code == 200

    card = signal_card(admin.get("/admin/").get_data(as_text=True), "account_state")
    assert card is not None and NAME in card and "until" in card
    assert waba().state_until == datetime.fromtimestamp(ends, UTC)


@needs_recorded
def test_back_again_reconnected_and_reinstated_leave_nothing_for_a_person(deliver, admin, customer):
    assert deliver(recorded("account_update__pywa-account-update-account-offboarded", 1750000000)).status_code == 200
    assert waba().state == "paused"
    assert deliver(recorded("account_update__pywa-account-update-account-reconnected", 1750000100)).status_code == 200
    assert waba().state == "active"
    assert deliver(recorded("account_update__bindambc-accountbanned", 1750000200)).status_code == 200
    assert deliver(recorded("account_update__pywa-account-update-account-disabled", 1750000300)).status_code == 200
    assert (waba().state, waba().state_reason) == ("active", "Meta reinstated the account")
    # The ban, delivered again late, does not undo the reinstatement.
    assert deliver(recorded("account_update__bindambc-accountbanned", 1750000150)).status_code == 200
    assert waba().state == "active"
    assert signal_card(admin.get("/admin/").get_data(as_text=True), "account_state") is None


@needs_recorded
@pytest.mark.parametrize(
    "name",
    [
        "account_update__bindambc-verifiedaccount",
        "account_update__pywa-account-update-partner-led-business-verification-status",
    ],
)
def test_business_verification_events_verify_the_account(deliver, admin, customer, name):
    assert deliver(recorded(name)).status_code == 200
    assert waba().business_verification_status == "VERIFIED"
    assert "VERIFIED" in admin.get(f"/admin/onboardings/{customer.id}").get_data(as_text=True)


def test_an_entry_of_the_partners_own_business_without_waba_info_creates_no_account(deliver, app):
    app.config["META_PARTNER_BUSINESS_ID"] = PARTNER_BUSINESS_ID
    body = envelope(
        ("account_update", {"event": "ACCOUNT_VIOLATION", "violation_info": {"violation_type": "SCAM"}}),
        entry_id=PARTNER_BUSINESS_ID,
    )
    assert deliver(body).status_code == 200
    (event,) = events()
    assert event.status == "ignored" and "partner's own business" in event.error
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WhatsAppBusinessAccount)) == 0


def template_event(event: str, time: int, reason: str = "NONE", **more) -> dict:
    return envelope(
        (
            "message_template_status_update",
            {
                "event": event,
                "message_template_id": 806312974732579,
                "message_template_name": "order_ready",
                "message_template_language": "en_US",
                "reason": reason,
                **more,
            },
        ),
        entry_id=WABA_ID,
        time=time,
    )


def template() -> MessageTemplate:
    db.session.expire_all()
    return db.session.get(MessageTemplate, "806312974732579")


@pytest.mark.parametrize(
    ("away", "back"), [("PAUSED", "REINSTATED"), ("DISABLED", "REINSTATED"), ("ARCHIVED", "UNARCHIVED")]
)
def test_reinstated_and_unarchived_restore_the_status_the_template_had(deliver, customer, away, back):
    for number, event in enumerate(("PENDING", "REJECTED", "APPROVED", away, back)):
        assert deliver(template_event(event, 1750000000 + number)).status_code == 200
    assert template().status == "APPROVED"


def test_unarchived_restores_a_rejected_template_to_rejected(deliver, customer):
    for number, event in enumerate(("REJECTED", "ARCHIVED", "UNARCHIVED")):
        assert deliver(template_event(event, 1750000000 + number, "INVALID_FORMAT")).status_code == 200
    assert template().status == "REJECTED"


def test_flagged_and_limit_exceeded_are_events_not_statuses(deliver, admin, customer):
    assert deliver(template_event("APPROVED", 1750000000)).status_code == 200
    assert deliver(template_event("FLAGGED", 1750000100)).status_code == 200
    kept = template()
    assert (kept.status, kept.last_event) == ("APPROVED", "FLAGGED")
    assert "at risk of being paused or disabled" in kept.last_event_meaning
    assert deliver(template_event("LIMIT_EXCEEDED", 1750000200)).status_code == 200
    assert (template().status, template().last_event) == ("APPROVED", "LIMIT_EXCEEDED")
    page = admin.get(f"/admin/onboardings/{customer.id}").get_data(as_text=True)
    assert "LIMIT_EXCEEDED" in page and "template limit" in page


@pytest.mark.parametrize(
    ("status", "reason"), [("REJECTED", "INVALID_FORMAT"), ("PAUSED", "NONE"), ("DISABLED", "NONE")]
)
def test_templates_that_cannot_be_sent_are_on_the_dashboard_with_their_reason(deliver, admin, customer, status, reason):
    assert deliver(template_event(status, 1750000000, reason)).status_code == 200
    card = signal_card(admin.get("/admin/").get_data(as_text=True), "templates")
    assert card is not None and NAME in card and f"order_ready (en_US) {status}" in card
    assert (f": {reason}" in card) == (reason != "NONE")
    page = admin.get(f"/admin/onboardings/{customer.id}").get_data(as_text=True)
    assert f"order_ready (en_US): {status}" in page


def quality(time: int, **value) -> dict:
    return envelope(
        ("phone_number_quality_update", {"display_phone_number": "15550783881", **value}), entry_id=WABA_ID, time=time
    )


def test_throughput_tier_and_messaging_limit_are_kept_apart(deliver, admin, customer):
    assert deliver(quality(1750000000, event="THROUGHPUT_UPGRADE", current_limit="TIER_UNLIMITED")).status_code == 200
    assert (
        deliver(quality(1750000100, event="UPGRADE", max_daily_conversations_per_business="TIER_10K")).status_code
        == 200
    )
    db.session.expire_all()
    phone = db.session.get(PhoneNumber, customer.phone_number_id)
    assert (phone.throughput_tier, phone.messaging_limit, phone.quality_event) == (
        "TIER_UNLIMITED",
        "TIER_10K",
        "UPGRADE",
    )
    page = admin.get(f"/admin/onboardings/{customer.id}").get_data(as_text=True)
    assert '<dd class="throughput-tier">TIER_UNLIMITED</dd>' in page
    assert '<dd class="messaging-limit">TIER_10K</dd>' in page


@needs_recorded
def test_a_flagged_number_is_on_the_dashboard_under_the_business_name(deliver, admin, customer):
    body = json.loads((RECORDED / "phone_number_quality_update__bindambc-qualityupdate.json").read_text())
    body["entry"][0]["id"] = WABA_ID
    body["entry"][0]["changes"][0]["value"]["display_phone_number"] = "15550783881"
    assert deliver(body).status_code == 200
    card = signal_card(admin.get("/admin/").get_data(as_text=True), "quality")
    assert card is not None and NAME in card and "Meta: FLAGGED" in card
    page = admin.get(f"/admin/onboardings/{customer.id}").get_data(as_text=True)
    assert re.search(r'<dd class="quality-event">FLAGGED <time', page)


@needs_recorded
@pytest.mark.parametrize(("date", "reads"), [
    ("January 31, 2021", "likely disabled now (no word from Meta since)"),
    ("January 31, 2099", "Meta scheduled the account to be disabled"),
])
def test_a_scheduled_ban_reads_as_likely_done_once_its_date_has_passed(deliver, admin, customer, date, reads):
    """DISABLED_UPDATE with ``SCHEDULE_FOR_DISABLE`` names the day the account goes
    (webhooks/reference/account-update-webhook-reference.md, ``ban_info.waba_ban_date``); Meta sends nothing
    when that day comes: after it, the page and the dashboard say the account is likely disabled."""
    body = recorded("account_update__bindambc-accountbanned")
    body["entry"][0]["changes"][0]["value"]["ban_info"]["waba_ban_date"] = date
    assert deliver(body).status_code == 200
    assert waba().state == "ban_scheduled"
    page = admin.get(f"/admin/onboardings/{customer.id}").get_data(as_text=True)
    card = signal_card(admin.get("/admin/").get_data(as_text=True), "account_state")
    assert reads in page and reads in card
    if date.endswith("2099"):
        assert "likely disabled" not in page and "likely disabled" not in card
