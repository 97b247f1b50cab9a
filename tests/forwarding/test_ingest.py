"""Meta's delivery in, the client's delivery out: the webhook endpoint queues forwarding in its own
transaction, and the worker sends it on."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import sqlalchemy as sa

from esu import forwarding
from esu.extensions import db
from esu.models import MessageTemplate, Onboarding
from esu.models.forwarding import ForwardDelivery
from esu.onboarding.assets import assets_of

from ..conftest import APP_SECRET
from .conftest import add_target, onboard


def test_a_webhook_meta_sends_reaches_the_clients_target(client, page, receiver, clock):
    waba_id = onboard(page)
    add_target(page, receiver, fields=["messages"])
    envelope = {"object": "whatsapp_business_account", "entry": [{"id": waba_id, "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
                                       "metadata": {"display_phone_number": "15550001", "phone_number_id": "555001"},
                                       "messages": [{"from": "5511", "id": "wamid.FORWARD1", "timestamp": "1764000000",
                                                     "type": "text", "text": {"body": "مرحبا 👋"}}]}}]}]}
    body = json.dumps(envelope).encode()
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()

    for _ in range(2):  # Meta's retry of the same delivery is stored, and so forwarded, once
        response = client.post("/webhooks/whatsapp", data=body, content_type="application/json",
                               headers={"X-Hub-Signature-256": signature})
        assert response.status_code == 200

    assert forwarding.run_worker(10, once=True, clock=clock, poll_interval=0.01).counts == {"delivered": 1}
    (request,) = receiver.received
    assert request.verified
    forwarded = json.loads(request.body)
    assert (forwarded["field"], forwarded["waba_id"]) == ("messages", waba_id)
    assert forwarded["value"]["messages"][0]["text"]["body"] == "مرحبا 👋"


def post_signed(client, envelope: dict) -> None:
    body = json.dumps(envelope).encode()
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = client.post("/webhooks/whatsapp", data=body, content_type="application/json",
                           headers={"X-Hub-Signature-256": signature})
    assert response.status_code == 200


def queued_fields() -> list[str]:
    return sorted(delivery.event.field for delivery in db.session.scalars(sa.select(ForwardDelivery)))


def message(waba_id: str, message_id: str) -> dict:
    return {"id": waba_id, "time": 1764000000, "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550001", "phone_number_id": "555001"},
        "messages": [{"from": "5511", "id": message_id, "timestamp": "1764000000", "type": "text",
                      "text": {"body": "hi"}}]}}]}


def test_a_change_that_is_applied_is_queued_with_the_messages_beside_it(client, page, receiver):
    waba_id = onboard(page)
    add_target(page, receiver)
    template = {"id": waba_id, "time": 1764000001, "changes": [{"field": "message_template_status_update", "value": {
        "event": "APPROVED", "message_template_id": 777001, "message_template_name": "welcome",
        "message_template_language": "en_US", "reason": "NONE"}}]}
    post_signed(client, {"object": "whatsapp_business_account", "entry": [message(waba_id, "wamid.BESIDE"), template]})

    assert queued_fields() == ["message_template_status_update", "messages"]
    assert db.session.get(MessageTemplate, "777001").status == "APPROVED"


def test_nothing_is_queued_from_a_delivery_that_says_the_customer_left_before_it(client, page, receiver):
    waba_id = onboard(page)
    add_target(page, receiver)
    removed = {"id": waba_id, "time": int(time.time()), "changes": [{"field": "account_update", "value": {
        "event": "PARTNER_REMOVED", "waba_info": {"waba_id": waba_id, "owner_business_id": "1000001"}}}]}
    post_signed(client, {"object": "whatsapp_business_account", "entry": [removed, message(waba_id, "wamid.AFTER")]})

    assert db.session.scalars(sa.select(Onboarding.status).where(Onboarding.waba_id == waba_id)).one() == "offboarded"
    assert queued_fields() == []


def test_a_callback_naming_someone_elses_waba_never_gets_its_events(client, page, receiver, simulator, post_callback):
    # Since June 2026 debug_token lists no granted WABA (chatwoot/chatwoot#14690): confirm_ids passes for any
    # WABA the browser names, and only reading it with the customer's token proves it theirs.
    victim = simulator.signup(business_name="Victim")
    intruder = simulator.signup(business_name="Intruder")
    add_target(page, receiver)
    body = post_callback({**intruder, "waba_id": victim["waba_id"], "phone_number_id": ""}).get_json()
    steps = {step["name"]: step["status"] for step in body["steps"]}
    assert (steps["confirm_ids"], steps["read_waba"]) == ("ok", "failed")

    post_signed(client, {"object": "whatsapp_business_account", "entry": [{"id": victim["waba_id"], "changes": [{
        "field": "account_review_update", "value": {"decision": "APPROVED"}}], "time": 1764000000}]})

    assert db.session.scalar(sa.select(sa.func.count()).select_from(ForwardDelivery)) == 0


def test_a_webhook_for_the_second_waba_of_a_multi_waba_signup_reaches_the_pages_target(
        client, page, receiver, clock, simulator, post_callback):
    """A multi-WABA flow (embedded-signup/implementation.md: ``waba_ids``, "only included for multi-WABA
    flows"): every WABA the customer shared is theirs, so each one's events reach the page's targets."""
    signup = simulator.signup(wabas=2)
    first, second = signup["data"]["waba_ids"]
    add_target(page, receiver, fields=["messages"])
    body = post_callback(signup, waba_ids=[first, second]).get_json()
    assert body["status"] == "completed" and body["waba_id"] == first

    post_signed(client, {"object": "whatsapp_business_account", "entry": [message(second, "wamid.SECOND")]})

    assert forwarding.run_worker(10, once=True, clock=clock, poll_interval=0.01).counts == {"delivered": 1}
    (request,) = receiver.received
    assert request.verified and json.loads(request.body)["waba_id"] == second


def partner_added(waba_id: str) -> dict:
    """Meta's PARTNER_ADDED, in the partner's business entry (account-update-webhook-reference.md)."""
    return {"id": "1715120619246906", "time": 1764000000, "changes": [{"field": "account_update", "value": {
        "event": "PARTNER_ADDED", "waba_info": {"waba_id": waba_id, "owner_business_id": "1000001"}}}]}


def test_the_onboarding_partner_added_made_is_found_by_its_waba(client, page, receiver):
    """The onboarding PARTNER_ADDED makes (``source='webhook'``) has its WABA among its assets, as every
    onboarding has, so forwarding, which finds an event's onboardings there, routes to it when it has a page."""
    waba_id = "100200300400500"
    post_signed(client, {"object": "whatsapp_business_account", "entry": [partner_added(waba_id)]})
    placeholder = db.session.scalars(sa.select(Onboarding).where(Onboarding.waba_id == waba_id)).one()
    assert placeholder.source == "webhook"
    assert assets_of(placeholder.id) == {"waba": [waba_id]}
    placeholder.page_id = page.id
    db.session.commit()
    add_target(page, receiver)

    post_signed(client, {"object": "whatsapp_business_account", "entry": [message(waba_id, "wamid.ANNOUNCED")]})

    assert queued_fields() == ["messages"]


def test_a_code_alone_that_finds_its_waba_through_partner_added_gets_its_events(
        client, page, receiver, simulator, post_callback):
    """The browser sent only the code; confirm_ids finds the WABA that PARTNER_ADDED announced and keeps it
    among the onboarding's assets, and the placeholder is folded in: the WABA's events reach the page."""
    signup = simulator.signup()
    post_signed(client, {"object": "whatsapp_business_account", "entry": [partner_added(signup["waba_id"])]})
    simulator.fault("assigned_whatsapp_business_accounts", 100)  # so the announcement is what finds it
    add_target(page, receiver)
    body = post_callback({"code": signup["code"]}).get_json()
    assert body["status"] == "completed" and body["waba_id"] == signup["waba_id"]

    post_signed(client, {"object": "whatsapp_business_account",
                         "entry": [message(signup["waba_id"], "wamid.CODE_ONLY")]})

    assert queued_fields() == ["messages"]
