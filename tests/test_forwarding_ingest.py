"""Meta's delivery in, the client's delivery out: the webhook endpoint queues forwarding in its own
transaction, and the worker sends it on."""

from __future__ import annotations

import hashlib
import hmac
import json

from esu import forwarding

from .conftest import APP_SECRET
from .forwarding_support import add_target, clock, onboard, receiver  # noqa: F401 - fixtures


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
