"""Rate limits per client on the signup calls; never on Meta's webhook."""

from __future__ import annotations

import hashlib
import hmac
import json

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
