"""The simulator sends what Meta sends after a WhatsApp Business app number's syncs: the contacts as
``smb_app_state_sync`` webhooks, the chats as ``history`` webhooks, or the history webhook with error 2593109
when the business declined to share them.

Docs: meta-docs/embedded-signup/onboard-whatsapp-business-app-users.md ("Synchronizing WhatsApp Business app
data", "Webhooks": history, smb_app_state_sync), meta-docs/webhooks/reference/history-webhook-reference.md
(phases, chunks, ``progress``, media placeholders), meta-docs/webhooks/reference/
smb-app-state-sync-webhook-reference.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import requests

from esu.simulator.webhooks import sender

from ..conftest import META
from ..forwarding.conftest import Clock, Receiver
from ..test_simulator_errors import VERSION, business_token


def sync(simulator, phone_id: str, token: str, sync_type: str) -> requests.Response:
    proof = hmac.new(META["META_APP_SECRET"].encode(), token.encode(), hashlib.sha256).hexdigest()
    return requests.post(f"{simulator.url}/_meta/graph/{VERSION}/{phone_id}/smb_app_data",
                         params={"appsecret_proof": proof}, headers={"Authorization": f"Bearer {token}"},
                         json={"messaging_product": "whatsapp", "sync_type": sync_type}, timeout=5)


@pytest.fixture
def receiver():
    """An endpoint on 127.0.0.1 that keeps every request it gets."""
    receiver = Receiver(Clock())
    yield receiver
    receiver.stop()


@pytest.fixture
def business_app_number(simulator, simulator_app, receiver, standalone_sends_to):
    """A signup with a WhatsApp Business app number, its business token, and the simulator's webhooks going
    to ``receiver`` from then on (PARTNER_ADDED, sent at signup, went nowhere)."""

    def make(**options) -> tuple[dict, str]:
        signup, token = business_token(simulator, coexistence=True, **options)
        assert sender(simulator_app).flush()
        standalone_sends_to(receiver.url)
        return signup, token

    return make


def received(simulator_app, receiver) -> list[dict]:
    """Each webhook the receiver got, after checking Meta's signature of its bytes."""
    assert sender(simulator_app).flush()
    envelopes = []
    for request in receiver.received:
        expected = hmac.new(META["META_APP_SECRET"].encode(), request.body, hashlib.sha256).hexdigest()
        assert request.headers["x-hub-signature-256"] == f"sha256={expected}"
        envelopes.append(json.loads(request.body))
    return envelopes


def changes(envelopes: list[dict], signup: dict) -> list[tuple[str, dict]]:
    """The (field, value) of every change, each in an entry of the number's WABA."""
    assert {entry["id"] for envelope in envelopes for entry in envelope["entry"]} == {signup["waba_id"]}
    return [(change["field"], change["value"]) for envelope in envelopes for entry in envelope["entry"]
            for change in entry["changes"]]


def names_the_number(value: dict, simulator, signup: dict) -> bool:
    phone = simulator.state.phones[signup["phone_number_id"]]
    return value["messaging_product"] == "whatsapp" and value["metadata"] == {
        "display_phone_number": "".join(filter(str.isdigit, phone.display_phone_number)),
        "phone_number_id": signup["phone_number_id"]}


def test_the_contacts_sync_sends_the_contacts_as_smb_app_state_sync_webhooks(
        simulator, simulator_app, receiver, business_app_number):
    """"If the request is successful, WhatsApp sends a set of smb_app_state_sync webhooks describing the
    WhatsApp contacts in the business's WhatsApp Business app" (onboard-whatsapp-business-app-users.md,
    step 1), in the shape of the smb_app_state_sync payload syntax."""
    signup, token = business_app_number()

    answer = sync(simulator, signup["phone_number_id"], token, "smb_app_state_sync")

    assert answer.status_code == 200 and set(answer.json()) == {"messaging_product", "request_id"}
    [(field, value)] = changes(received(simulator_app, receiver), signup)
    assert field == "smb_app_state_sync" and names_the_number(value, simulator, signup)
    assert value["state_sync"]
    for contact in value["state_sync"]:
        assert (contact["type"], contact["action"]) == ("contact", "add")
        assert set(contact["contact"]) == {"full_name", "first_name", "phone_number"}
        assert contact["contact"]["phone_number"].isdigit() and contact["metadata"]["timestamp"].isdigit()


def test_the_history_sync_sends_the_chats_as_history_webhooks_by_phase(
        simulator, simulator_app, receiver, business_app_number):
    """Shared history: "a series of history webhooks", by phase (0, 1, 2) and chunk, ``progress`` reaching
    100 when done; threads of messages with ``history_context``; a media message is a ``media_placeholder``
    whose contents follow in a history webhook of their own (history-webhook-reference.md)."""
    signup, token = business_app_number()

    assert sync(simulator, signup["phone_number_id"], token, "history").status_code == 200

    sent = changes(received(simulator_app, receiver), signup)
    assert {field for field, _ in sent} == {"history"}
    assert all(names_the_number(value, simulator, signup) for _, value in sent)
    chunks = [chunk for _, value in sent for chunk in value.get("history", [])]
    assert [chunk["metadata"]["phase"] for chunk in chunks] == [0, 1, 2]
    progress = [chunk["metadata"]["progress"] for chunk in chunks]
    assert progress == sorted(progress) and progress[-1] == 100
    business = simulator.state.phones[signup["phone_number_id"]].display_phone_number
    messages = [message for chunk in chunks for thread in chunk["threads"] for message in thread["messages"]]
    assert {message["from"] for message in messages} > {"".join(filter(str.isdigit, business))}
    assert all(message["history_context"]["status"] in {"DELIVERED", "ERROR", "PENDING", "PLAYED", "READ", "SENT"}
               for message in messages)
    [placeholder] = [message for message in messages if message["type"] == "media_placeholder"]
    [(_, media)] = [(field, value) for field, value in sent if "messages" in value]
    assert media["messages"][0]["id"] == placeholder["id"] and media["messages"][0]["image"]["id"].isdigit()


def test_a_declined_history_sends_the_history_webhook_with_error_2593109(
        simulator, simulator_app, receiver, business_app_number):
    """"If the business chose not to share their messaging history with you, a history webhook with error
    code 2593109 will be triggered instead" (onboard-whatsapp-business-app-users.md, step 2), exactly as the
    "chat history sharing declined" payload shows it."""
    signup, token = business_app_number(share_history=False)

    assert sync(simulator, signup["phone_number_id"], token, "history").status_code == 200

    [(field, value)] = changes(received(simulator_app, receiver), signup)
    assert field == "history" and names_the_number(value, simulator, signup)
    assert value["history"] == [{"errors": [{
        "code": 2593109, "title": "History sync is turned off by the business from the WhatsApp Business App",
        "message": "History sync is turned off by the business from the WhatsApp Business App",
        "error_data": {"details": "History sharing is turned off by the business"}}]}]


def test_a_sync_meta_refuses_sends_nothing(simulator, simulator_app, receiver, business_app_number):
    """Each sync works once ("You can only perform this step once"): the second is refused, and no webhook
    follows it; nor does one follow a failed call."""
    signup, token = business_app_number()
    assert sync(simulator, signup["phone_number_id"], token, "smb_app_state_sync").status_code == 200
    assert len(received(simulator_app, receiver)) == 1

    again = sync(simulator, signup["phone_number_id"], token, "smb_app_state_sync")
    simulator.fault("smb_app_data", 2)
    failed = sync(simulator, signup["phone_number_id"], token, "history")

    assert again.status_code == 400 and failed.status_code >= 400
    assert len(received(simulator_app, receiver)) == 1


def test_share_history_is_true_or_false(simulator):
    response = requests.post(f"{simulator.url}/_meta/signup", json={"coexistence": True, "share_history": "no"},
                             timeout=5)

    assert response.status_code == 400 and "share_history" in response.json()["error"]
