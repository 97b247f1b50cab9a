"""The onboarding reads from Graph facts that webhooks report too (the account's review, the templates'
status): whichever is newer wins, even when the webhook lands while the read is on its way."""

from __future__ import annotations

import time

import sqlalchemy as sa

from esu.extensions import db
from esu.graph import GraphClient
from esu.models import MessageTemplate, WhatsAppBusinessAccount

from .conftest import URL, encode, envelope, sign


def template_status(template: dict, event: str, at: int) -> dict:
    return envelope(("message_template_status_update", {
        "event": event, "message_template_id": int(template["id"]), "message_template_name": template["name"],
        "message_template_language": template["language"], "reason": "NONE"}), entry_id=template["waba_id"], time=at)


def test_a_webhook_landing_while_the_onboarding_reads_graph_is_not_undone_by_the_read(
        app, simulator, post_callback, monkeypatch):
    signup = simulator.signup(templates=2)
    waba_id = signup["waba_id"]
    meanwhile = int(time.time()) + 60  # Meta's time of what happens while the reads are on their way
    answers: list[int] = []
    fetched: list[dict] = []

    def deliver(body: dict) -> None:
        raw = encode(body)
        answers.append(app.test_client().post(URL, data=raw, headers={
            "X-Hub-Signature-256": sign(raw), "Content-Type": "application/json"}).status_code)

    get_waba, list_templates = GraphClient.get_waba, GraphClient.list_message_templates

    def read_waba_then_rejected(self, *args, **kwargs):
        result = get_waba(self, *args, **kwargs)
        deliver(envelope(("account_review_update", {"decision": "REJECTED"}), entry_id=waba_id, time=meanwhile))
        return result

    def list_templates_then_paused(self, *args, **kwargs):
        templates = list_templates(self, *args, **kwargs)
        fetched.extend({**template, "waba_id": waba_id} for template in templates)
        deliver(template_status(fetched[0], "PAUSED", meanwhile))
        return templates

    monkeypatch.setattr(GraphClient, "get_waba", read_waba_then_rejected)
    monkeypatch.setattr(GraphClient, "list_message_templates", list_templates_then_paused)
    assert post_callback(signup).status_code == 201
    monkeypatch.undo()
    assert answers == [200, 200]

    db.session.expire_all()
    # Graph answered APPROVED for both: the events came after it was asked.
    assert db.session.get(WhatsAppBusinessAccount, waba_id).account_review_status == "REJECTED"
    first, second = (template["id"] for template in fetched)

    def statuses() -> dict[str, str]:
        db.session.expire_all()
        return dict(db.session.execute(sa.select(MessageTemplate.id, MessageTemplate.status)
                                       .where(MessageTemplate.waba_id == waba_id)).all())

    assert statuses() == {first: "PAUSED", second: "APPROVED"}
    # The webhook made the first template knowing only its name; the read filled in the rest.
    assert db.session.get(MessageTemplate, first).components == fetched[0]["components"] != []

    # An event from before the reads, delivered late, does not undo what they found either.
    deliver(template_status(fetched[1], "REJECTED", int(time.time()) - 3600))
    deliver(envelope(("account_review_update", {"decision": "PENDING"}), entry_id=waba_id,
                     time=int(time.time()) - 3600))
    assert answers[2:] == [200, 200]
    assert statuses() == {first: "PAUSED", second: "APPROVED"}
    db.session.expire_all()
    assert db.session.get(WhatsAppBusinessAccount, waba_id).account_review_status == "REJECTED"
