"""The simulator as Meta's webhook sender: on demand, and by itself when a person finishes signup."""

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


def test_a_finished_signup_sends_partner_added_to_the_mounted_app_before_any_exchange(mounted, request):
    """Meta sends PARTNER_ADDED when the person finishes the flow, whether or not the code is ever exchanged
    (embedded-signup/onboarding-business-customers-as-a-tech-provider-or-tech-partner.md;
    solution-providers/managing-webhooks.md: "triggered with event set to PARTNER_ADDED when a client
    successfully completes the Embedded Signup flow"); PARTNER_APP_INSTALLED belongs to App-Only Install."""
    client = mounted.test_client()
    answer = client.post("/_meta/signup", json={})
    signup = answer.get_json()
    answer.close()  # as a server does once the answer is out: the webhook goes then
    assert sender(mounted).flush()
    [delivery] = sender(mounted).deliveries
    assert (delivery["status"], delivery["events"]) == (200, ["PARTNER_ADDED"])
    assert delivery["entry_ids"] == [mounted.config["META_PARTNER_BUSINESS_ID"]]
    [waiting] = db.session.scalars(sa.select(Onboarding)).all()
    assert (waiting.status, waiting.waba_id) == ("awaiting_callback", signup["waba_id"])
    response = request.getfixturevalue("post_callback")(signup)
    assert response.status_code == 201 and response.get_json()["status"] == "completed"
    stored = events()
    assert [event.value["event"] for event in stored] == ["PARTNER_ADDED"]
    db.session.expire_all()
    [onboarding] = db.session.scalars(sa.select(Onboarding)).all()  # the waiting one folded into the callback's
    assert stored[0].onboarding_id == onboarding.id == response.get_json()["id"]


def test_an_app_only_install_sends_partner_app_installed_and_esu_waits_for_its_callback(mounted, request):
    """embedded-signup/app-only-install.md: when the customer completes the flow (FINISH_GRANT_ONLY_API_ACCESS)
    "you receive an account_update webhook with event set to PARTNER_APP_INSTALLED", with ``partner_app_id``
    (webhooks/reference/account-update-webhook-reference.md); it tells esu of the customer as PARTNER_ADDED
    does."""
    client = mounted.test_client()
    answer = client.post("/_meta/signup", json={"finish": "FINISH_GRANT_ONLY_API_ACCESS"})
    signup = answer.get_json()
    answer.close()
    assert sender(mounted).flush()
    [delivery] = sender(mounted).deliveries
    assert (delivery["status"], delivery["events"]) == (200, ["PARTNER_APP_INSTALLED"])
    [waiting] = db.session.scalars(sa.select(Onboarding)).all()
    assert (waiting.status, waiting.waba_id) == ("awaiting_callback", signup["waba_id"])
    response = request.getfixturevalue("post_callback")(signup)
    assert response.status_code == 201 and response.get_json()["status"] == "completed"
    db.session.expire_all()
    [onboarding] = db.session.scalars(sa.select(Onboarding)).all()  # the waiting one folded into the callback's
    assert onboarding.id == response.get_json()["id"]
    waba = db.session.get(WhatsAppBusinessAccount, signup["waba_id"])
    assert waba.account_events["PARTNER_APP_INSTALLED"]["waba_info"]["partner_app_id"] == mounted.config["META_APP_ID"]


def test_partner_added_at_signup_lets_a_code_only_callback_complete(simulator, simulator_app, live_app,
                                                                     standalone_sends_to, request):
    """The browser never sent the ids: PARTNER_ADDED, sent when the person finished and before any exchange,
    tells esu the WABA, and the callback that brings the code alone completes with it
    (embedded-signup/implementation.md: the code and the session message arrive separately)."""
    standalone_sends_to(live_app.url + URL)
    signup = simulator.signup()
    assert sender(simulator_app).flush()
    assert simulator.calls("oauth_access_token") == []  # no exchange yet: the webhook came from the finish
    [waiting] = db.session.scalars(sa.select(Onboarding)).all()  # no callback: PARTNER_ADDED alone made it
    assert (waiting.waba_id, waiting.source, waiting.status, waiting.business_id) == (
        signup["waba_id"], "webhook", "awaiting_callback", signup["business_id"])
    response = request.getfixturevalue("post_callback")({"code": signup["code"]})
    body = response.get_json()
    assert (response.status_code, body["status"], body["waba_id"]) == (201, "completed", signup["waba_id"])
    db.session.expire_all()
    [onboarding] = db.session.scalars(sa.select(Onboarding)).all()
    assert (onboarding.id, onboarding.source) == (body["id"], "callback")


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
        simulator.signup()  # a finished signup sends PARTNER_ADDED
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
        simulator.signup()  # a finished signup sends PARTNER_ADDED
        assert sender(simulator_app).flush()
    finally:
        simulator_app.config["SIMULATOR_WEBHOOK_RETRY_SECONDS"] = ()
    tries = [(delivery["attempt"], delivery["error"]) for delivery in sender(simulator_app).deliveries[before:]]
    assert tries == [(attempt, "could not reach the app (ConnectionError)") for attempt in (1, 2, 3)]


def test_partner_added_for_each_of_several_wabas_folds_into_the_one_callback(mounted, request):
    """A multi-WABA finish (implementation.md, ``waba_ids``): Meta announces each WABA; the callback that
    proves them all the customer's takes every waiting record in."""
    client = mounted.test_client()
    answer = client.post("/_meta/signup", json={"wabas": 2})
    signup = answer.get_json()
    answer.close()
    assert sender(mounted).flush()
    assert len(db.session.scalars(sa.select(Onboarding)).all()) == 2  # one waiting record per WABA
    response = request.getfixturevalue("post_callback")(signup, waba_ids=signup["data"]["waba_ids"])
    assert response.get_json()["status"] == "completed"
    db.session.expire_all()
    [onboarding] = db.session.scalars(sa.select(Onboarding)).all()
    added = [event for event in events() if event.value["event"] == "PARTNER_ADDED"]
    assert len(added) == 2 and {event.onboarding_id for event in added} == {onboarding.id}
