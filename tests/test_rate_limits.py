"""Rate limits per client on the signup calls; never on Meta's webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta

import sqlalchemy as sa

from esu import rate_limits
from esu.extensions import db
from esu.models import now_utc
from esu.models.rate_limits import RateLimitCounter
from esu.rate_limits import DatabaseStorage

from .conftest import APP_SECRET


def test_the_callback_is_limited_per_client(app_config, request):
    app_config["SIGNUP_CALLBACK_LIMIT"] = "3 per minute"
    client, token = request.getfixturevalue("client"), request.getfixturevalue("csrf_token")
    statuses = [client.post("/signup/demo/callback", json={}, headers={"X-CSRFToken": token}).status_code
                for _ in range(4)]
    assert statuses == [400, 400, 400, 429]
    # Another client address has its own allowance.
    other = client.post("/signup/demo/callback", json={}, headers={"X-CSRFToken": token},
                        environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 400


def test_a_limited_customer_reads_plain_words_and_when_to_come_back(app_config, request):
    app_config["SIGNUP_CALLBACK_LIMIT"] = "1 per minute"
    client, token = request.getfixturevalue("client"), request.getfixturevalue("csrf_token")
    client.post("/signup/demo/callback", json={}, headers={"X-CSRFToken": token})

    limited = client.post("/signup/demo/onboardings/0123456789abcdef/verify-code", json={"code": "123456"},
                          headers={"X-CSRFToken": token})

    assert limited.status_code == 429
    # The widget shows "error" to the person: not the limiter's "1 per 1 minute".
    assert limited.get_json()["error"] == "Too many tries from your connection. Please wait a minute, then try again."
    assert int(limited.headers["Retry-After"]) > 0


def test_the_onboarding_calls_share_one_budget_per_client(app_config, request):
    """SIGNUP_CALLBACK_LIMIT is one allowance for the callback, retries and code requests and checks together,
    on every page: not one each."""
    app_config["SIGNUP_CALLBACK_LIMIT"] = "3 per minute"
    client, token = request.getfixturevalue("client"), request.getfixturevalue("csrf_token")
    headers = {"X-CSRFToken": token}
    ref = "0123456789abcdef"

    statuses = [
        client.post("/signup/demo/callback", json={}, headers=headers).status_code,
        client.post(f"/signup/demo/onboardings/{ref}/retry", headers=headers).status_code,
        client.post(f"/signup/demo/onboardings/{ref}/verify-code", json={"code": "123456"}, headers=headers).status_code,
        client.post(f"/signup/demo/onboardings/{ref}/request-code", json={}, headers=headers).status_code,
        client.post("/signup/demo/callback", json={}, headers=headers).status_code,
    ]

    assert statuses == [400, 404, 404, 429, 429]


def test_funnel_events_are_limited_per_client(app_config, request):
    app_config["SIGNUP_EVENTS_LIMIT"] = "2 per minute"
    client, token = request.getfixturevalue("client"), request.getfixturevalue("csrf_token")
    statuses = [client.post("/signup/demo/events", json={"kind": "view"}, headers={"X-CSRFToken": token}).status_code
                for _ in range(3)]
    assert statuses[-1] == 429 and 429 not in statuses[:2]


def test_the_webhook_is_never_limited(app_config, request):
    app_config["SIGNUP_CALLBACK_LIMIT"] = app_config["SIGNUP_EVENTS_LIMIT"] = "1 per minute"
    client = request.getfixturevalue("client")
    for n in range(30):
        body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "time": n, "changes": [
            {"field": "account_review_update", "value": {"decision": "APPROVED"}}]}]}).encode()
        signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        response = client.post("/webhooks/whatsapp", data=body, content_type="application/json",
                               headers={"X-Hub-Signature-256": signature})
        assert response.status_code == 200


def test_database_counters_count_fixed_windows(app):
    """esu.rate_limits: the storage Flask-Limiter uses without Redis."""
    storage = DatabaseStorage()
    assert [storage.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert storage.get("k") == 3 and storage.get("other") == 0
    assert time.time() + 55 < storage.get_expiry("k") <= time.time() + 60
    with db.engine.begin() as connection:  # the window has ended
        connection.execute(sa.update(RateLimitCounter).values(expires_at=now_utc() - timedelta(seconds=1)))
    assert storage.get("k") == 0
    assert storage.incr("k", 60, amount=2) == 2  # a new window
    storage.clear("k")
    assert storage.get("k") == 0 and storage.check()


def test_ended_windows_are_deleted_now_and_then(app, monkeypatch):
    storage = DatabaseStorage()
    storage.incr("old", 60)
    with db.engine.begin() as connection:
        connection.execute(sa.update(RateLimitCounter).values(expires_at=now_utc() - timedelta(seconds=1)))
    monkeypatch.setattr(rate_limits, "PURGE_EVERY", 0)
    storage.incr("new", 60)
    assert db.session.scalars(sa.select(RateLimitCounter.key)).all() == ["new"]
