"""The health sweep (``flask --app wsgi health``, and the forwarding worker on a schedule) finds what no
webhook said: a token the customer revoked, a number Meta downgraded. The simulator changes them the way
Meta does, without a webhook: a revoked token answers ``debug_token`` with ``is_valid: false`` and error
190 elsewhere (meta-docs/access-tokens-guide.md; reference/…/debug_token); a number's ``quality_rating``
and ``messaging_limit_tier`` are what Graph reads of it
(reference/whatsapp-business-phone-number/whatsapp-business-account-phone-number-api.md)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from esu import cli, sweep
from esu.extensions import db
from esu.models import Onboarding, PhoneNumber, WhatsAppBusinessAccount

from .webhooks.conftest import encode as encode_delivery
from .webhooks.conftest import envelope, sign

pytest_plugins = ["tests.admin_fixtures"]

NAME = "Toko Maju Jaya"


@pytest.fixture
def onboarded(simulator, post_callback) -> Onboarding:
    signup = simulator.signup(business_name=NAME)
    response = post_callback(signup)
    assert response.status_code == 201, response.get_data(as_text=True)
    onboarding = db.session.get(Onboarding, response.get_json()["id"])
    assert onboarding.status == "completed" and onboarding.business_name == NAME
    return onboarding


def signal_card(html: str, key: str) -> str | None:
    match = re.search(rf'<article class="card signal signal-{key}">(.*?)</article>', html, re.DOTALL)
    return match.group(1) if match else None


def test_the_sweep_finds_a_revoked_token_no_webhook_reported(simulator, runner, admin, onboarded):
    assert signal_card(admin.get("/admin/").get_data(as_text=True), "account_state") is None
    revoked = requests.post(f"{simulator.url}/_meta/tokens/revoke", json={"waba_id": onboarded.waba_id}, timeout=5)
    assert revoked.json() == {"revoked": 1}

    result = runner.invoke(args=["health"])

    assert result.exit_code == 0, result.output
    assert f"needs a person: {NAME}: the business token is no longer valid" in result.output
    db.session.expire_all()
    waba = db.session.get(WhatsAppBusinessAccount, onboarded.waba_id)
    assert waba.state == "disconnected" and waba.health_checked_at is not None
    card = signal_card(admin.get("/admin/").get_data(as_text=True), "account_state")
    assert card is not None and NAME in card and "no longer valid" in card


def test_the_sweep_finds_a_downgraded_number_and_an_older_webhook_does_not_undo_it(
    simulator, runner, admin, client, onboarded
):
    changed = requests.post(
        f"{simulator.url}/_meta/phone_numbers/{onboarded.phone_number_id}",
        json={"quality_rating": "RED", "messaging_limit_tier": "TIER_50"},
        timeout=5,
    )
    assert changed.status_code == 200, changed.text

    result = runner.invoke(args=["health"])

    assert result.exit_code == 0, result.output
    assert "quality RED" in result.output and "1 WABAs checked" in result.output
    db.session.expire_all()
    phone = db.session.get(PhoneNumber, onboarded.phone_number_id)
    assert (phone.quality_rating, phone.messaging_limit) == ("RED", "TIER_50")
    card = signal_card(admin.get("/admin/").get_data(as_text=True), "quality")
    assert card is not None and NAME in card and "quality RED" in card and "TIER_50" in card
    page = admin.get(f"/admin/onboardings/{onboarded.id}").get_data(as_text=True)
    assert '<dd class="quality quality-RED">RED</dd>' in page and '<dd class="messaging-limit">TIER_50</dd>' in page

    # A quality webhook Meta sent before the read, delivered late, keeps its event but not its older limit.
    late = encode_delivery(
        envelope(
            (
                "phone_number_quality_update",
                {
                    "display_phone_number": phone.display_phone_number,
                    "event": "UPGRADE",
                    "max_daily_conversations_per_business": "TIER_10K",
                },
            ),
            entry_id=onboarded.waba_id,
            time=1750000000,
        )
    )
    response = client.post(
        "/webhooks/whatsapp", data=late, headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(late)}
    )
    assert response.status_code == 200
    db.session.expire_all()
    phone = db.session.get(PhoneNumber, onboarded.phone_number_id)
    assert (phone.messaging_limit, phone.quality_event) == ("TIER_50", "UPGRADE")


def test_the_sweep_reads_every_waba_of_a_multi_waba_onboarding(simulator, runner, admin, post_callback):
    """Multi-WABA flows (embedded-signup/implementation.md: ``waba_ids``): the second WABA's number, downgraded
    without a webhook, is read and applied as the first's would be."""
    signup = simulator.signup(business_name=NAME, wabas=2)
    first, second = signup["data"]["waba_ids"]
    body = post_callback(signup, waba_ids=[first, second]).get_json()
    assert body["status"] == "completed", body
    [number] = db.session.scalars(sa.select(PhoneNumber).where(PhoneNumber.waba_id == second)).all()
    changed = requests.post(f"{simulator.url}/_meta/phone_numbers/{number.id}", json={"quality_rating": "RED"},
                            timeout=5)
    assert changed.status_code == 200, changed.text
    read_before = len(simulator.calls("waba"))

    result = runner.invoke(args=["health"])

    assert result.exit_code == 0, result.output
    assert "2 WABAs checked" in result.output
    assert f"needs a person: {NAME} (WABA {second}): " in result.output and "quality RED" in result.output
    assert len(simulator.calls("waba")) == read_before + 2
    db.session.expire_all()
    assert db.session.get(PhoneNumber, number.id).quality_rating == "RED"
    assert all(db.session.get(WhatsAppBusinessAccount, waba_id).health_checked_at for waba_id in (first, second))
    card = signal_card(admin.get("/admin/").get_data(as_text=True), "quality")
    assert card is not None and NAME in card and "quality RED" in card


def test_the_sweep_backs_off_when_graph_rate_limits_it(simulator, app, onboarded):
    # Graph's client does not retry a rate limit itself (the token lasts: esu waits instead); refused twice,
    # the sweep pauses twice, the second time twice as long, and then reads the customer.
    simulator.fault("debug_token", 80007, times=2)
    pauses = []

    report = sweep.sweep(sleep=pauses.append)

    assert pauses == [sweep.BACKOFF.total_seconds(), 2 * sweep.BACKOFF.total_seconds()]
    assert (report.checked, report.unchecked) == (1, [])


def test_the_sweep_waits_as_long_as_metas_usage_headers_say(simulator, app, onboarded):
    """Graph API "Rate limiting": X-Business-Use-Case-Usage's ``estimated_time_to_regain_access`` (minutes)
    says when calls will be accepted again; the sweep pauses that long rather than guessing."""
    simulator.fault("debug_token", 80007, times=1, wait_minutes=7)
    pauses = []

    report = sweep.sweep(sleep=pauses.append)

    assert pauses == [7 * 60.0]
    assert (report.checked, report.unchecked) == (1, [])


def test_a_customer_graph_cannot_answer_is_reported_and_the_command_fails(simulator, runner, app, onboarded):
    simulator.fault("waba", 2, times=app.config["GRAPH_MAX_ATTEMPTS"])
    result = runner.invoke(args=["health"])
    assert result.exit_code == 1
    assert f"not checked: {NAME}:" in result.output


def test_the_forwarding_worker_sweeps_every_six_hours_unless_told_otherwise(app):
    assert app.config["ESU_HEALTH_SWEEP_HOURS"] == 6
    (chore,) = cli.sweep_chores(app.config["ESU_HEALTH_SWEEP_HOURS"])
    assert chore.every == timedelta(hours=6)
    assert cli.sweep_chores(0) == []
