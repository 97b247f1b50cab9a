"""The simulator as Meta's webhook sender: on demand, and by itself when a code is exchanged."""

from __future__ import annotations

import pytest
import requests
import sqlalchemy as sa

from esu.extensions import db
from esu.models import Onboarding, WhatsAppBusinessAccount
from esu.simulator.webhooks import sender

from ..conftest import META
from ..forwarding.conftest import clock, receiver  # noqa: F401 - fixtures
from .conftest import URL, events


@pytest.fixture
def mounted(app_config, request):
    """The app with the simulator mounted in it, as in `make demo`."""
    app_config["ESU_SIMULATOR"] = True
    app_config.pop("META_GRAPH_URL")
    return request.getfixturevalue("app")


@pytest.fixture
def standalone_sends_to(simulator_app):
    """Point the standalone simulator's webhooks at a URL for one test."""

    def point(url: str) -> None:
        simulator_app.config["SIMULATOR_WEBHOOK_URL"] = url

    yield point
    sender(simulator_app).flush()
    simulator_app.config.pop("SIMULATOR_WEBHOOK_URL", None)


def exchange(simulator, code: str) -> requests.Response:
    return requests.get(f"{simulator.url}/_meta/graph/v25.0/oauth/access_token", timeout=10, params={
        "client_id": META["META_APP_ID"], "client_secret": META["META_APP_SECRET"], "code": code})


def test_send_signs_and_delivers_in_process_when_mounted(mounted):
    client = mounted.test_client()
    response = client.post("/_meta/webhooks/send", json={
        "field": "account_review_update", "value": {"decision": "APPROVED"}, "waba_id": "555000111"})
    assert response.status_code == 200
    delivery = response.get_json()["delivery"]
    assert (delivery["status"], delivery["target"], delivery["fields"]) == (200, "in-process", ["account_review_update"])
    [event] = events()
    assert (event.field, event.status, event.waba_id) == ("account_review_update", "applied", "555000111")
    assert db.session.get(WhatsAppBusinessAccount, "555000111").account_review_status == "APPROVED"


def test_send_escapes_unicode_and_signs_those_bytes(mounted):
    value = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "106540352242922"},
             "messages": [{"from": "1", "id": "wamid.AR", "timestamp": "1750000000", "type": "text",
                           "text": {"body": "مرحبا 😀 ¿qué?"}}]}
    response = mounted.test_client().post("/_meta/webhooks/send", json={
        "field": "messages", "value": value, "waba_id": "102290129340398", "time": 1750000000})
    assert response.get_json()["delivery"]["status"] == 200
    assert events()[0].value["messages"][0]["text"]["body"] == "مرحبا 😀 ¿qué?"


@pytest.mark.parametrize("body", [{}, {"field": "messages", "value": [], "waba_id": "1"},
                                  {"field": "messages", "value": {}},
                                  {"field": "messages", "value": {}, "waba_id": "not digits"}])
def test_send_refuses_what_is_not_a_change(mounted, body):
    assert mounted.test_client().post("/_meta/webhooks/send", json=body).status_code == 400
    assert events() == []


def test_standalone_without_a_target_says_so(simulator):
    response = requests.post(f"{simulator.url}/_meta/webhooks/send", timeout=10, json={
        "field": "security", "value": {"event": "PIN_CHANGED"}, "waba_id": "1"})
    assert response.status_code == 409
    assert "SIMULATOR_WEBHOOK_URL" in response.json()["error"]


def test_standalone_sends_to_the_configured_url(simulator, live_app, standalone_sends_to):
    standalone_sends_to(live_app.url + URL)
    response = requests.post(f"{simulator.url}/_meta/webhooks/send", timeout=10, json={
        "field": "security", "value": {"event": "PIN_CHANGED", "display_phone_number": "1555"}, "waba_id": "7"})
    assert response.json()["delivery"]["status"] == 200
    [event] = events()
    assert (event.field, event.waba_id) == ("security", "7")


def test_a_finished_signup_sends_partner_added_to_the_mounted_app(mounted, request):
    client = mounted.test_client()
    signup = client.post("/_meta/signup", json={}).get_json()
    response = request.getfixturevalue("post_callback")(signup)
    assert response.status_code == 201
    assert sender(mounted).flush()
    [delivery] = sender(mounted).deliveries
    assert (delivery["status"], delivery["events"]) == (200, ["PARTNER_ADDED", "PARTNER_APP_INSTALLED"])
    assert delivery["entry_ids"] == [mounted.config["META_PARTNER_BUSINESS_ID"]]
    stored = events()
    assert [event.value["event"] for event in stored] == ["PARTNER_ADDED", "PARTNER_APP_INSTALLED"]
    [onboarding] = db.session.scalars(sa.select(Onboarding)).all()  # linked to the callback's, not a second one
    assert stored[0].onboarding_id == onboarding.id == response.get_json()["id"]
    waba = db.session.get(WhatsAppBusinessAccount, signup["waba_id"])
    assert waba.account_events["PARTNER_APP_INSTALLED"]["waba_info"]["partner_app_id"] == mounted.config["META_APP_ID"]


def test_a_code_exchange_sends_partner_added_to_the_configured_url(simulator, simulator_app, live_app,
                                                                    standalone_sends_to):
    standalone_sends_to(live_app.url + URL)
    signup = simulator.signup()
    assert exchange(simulator, signup["code"]).status_code == 200
    assert sender(simulator_app).flush()
    [onboarding] = db.session.scalars(sa.select(Onboarding)).all()  # no callback: PARTNER_ADDED alone made it
    assert (onboarding.waba_id, onboarding.source, onboarding.status, onboarding.business_id) == (
        signup["waba_id"], "webhook", "awaiting_callback", signup["business_id"])


def test_the_exchange_never_waits_for_or_fails_with_the_webhook(simulator, simulator_app, standalone_sends_to):
    standalone_sends_to("http://127.0.0.1:9/webhooks/whatsapp")  # nothing listens there
    signup = simulator.signup()
    assert exchange(simulator, signup["code"]).json()["access_token"].startswith("EAA")
    assert sender(simulator_app).flush()
    assert sender(simulator_app).deliveries[-1]["error"] == "could not reach the app (ConnectionError)"
    assert exchange(simulator, signup["code"]).status_code == 400  # used: and nothing is sent for a failure
    assert sender(simulator_app).flush()
    nowhere = [delivery for delivery in sender(simulator_app).deliveries
               if delivery["target"] == "http://127.0.0.1:9/webhooks/whatsapp"]
    assert len(nowhere) == 1


def test_a_background_delivery_not_answered_200_is_sent_again_as_meta_does(simulator, simulator_app, receiver,
                                                                          standalone_sends_to):
    receiver.answer((503, {}, b"database unavailable"), (500, {}, b"oops"))  # then 200
    simulator_app.config["SIMULATOR_WEBHOOK_RETRY_SECONDS"] = (0, 0, 0)
    before = len(sender(simulator_app).deliveries)
    try:
        standalone_sends_to(receiver.url)
        assert exchange(simulator, simulator.signup()["code"]).status_code == 200
        assert sender(simulator_app).flush()
    finally:
        simulator_app.config["SIMULATOR_WEBHOOK_RETRY_SECONDS"] = ()
    tries = [(delivery["attempt"], delivery["status"]) for delivery in sender(simulator_app).deliveries[before:]]
    assert tries == [(1, 503), (2, 500), (3, 200)]
    assert len(receiver.received) == 3 and len({request.body for request in receiver.received}) == 1


def test_the_retries_stop_after_the_last_wait(simulator, simulator_app, standalone_sends_to):
    simulator_app.config["SIMULATOR_WEBHOOK_RETRY_SECONDS"] = (0, 0)
    before = len(sender(simulator_app).deliveries)
    try:
        standalone_sends_to("http://127.0.0.1:9/webhooks/whatsapp")  # nothing listens there
        assert exchange(simulator, simulator.signup()["code"]).status_code == 200
        assert sender(simulator_app).flush()
    finally:
        simulator_app.config["SIMULATOR_WEBHOOK_RETRY_SECONDS"] = ()
    tries = [(delivery["attempt"], delivery["error"]) for delivery in sender(simulator_app).deliveries[before:]]
    assert tries == [(attempt, "could not reach the app (ConnectionError)") for attempt in (1, 2, 3)]
