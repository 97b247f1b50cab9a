"""Fixtures for the webhook tests: signing as Meta does (computed here, independently of esu), posting
deliveries, reading what was stored."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from esu.extensions import db
from esu.models import PhoneNumber, WebhookEvent, WhatsAppBusinessAccount
from esu.simulator.webhooks import sender

from ..conftest import APP_SECRET, ServerThread

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads"
URL = "/webhooks/whatsapp"
WABA_ID = "102290129340398"  # the WABA of Meta's examples
PHONE_ID = "106540352242922"


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode(envelope: dict) -> bytes:
    """As Meta sends it: escaped unicode."""
    return json.dumps(envelope, separators=(",", ":")).encode()


def envelope(*changes: tuple[str, dict], entry_id: str = WABA_ID, time: int | None = 1750000000) -> dict:
    entry = {"id": entry_id, "changes": [{"field": field, "value": value} for field, value in changes]}
    if time is not None:
        entry["time"] = time
    return {"object": "whatsapp_business_account", "entry": [entry]}


def text_message(message_id: str, body: str = "Hello", phone_id: str = PHONE_ID) -> dict:
    return {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_id},
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
            "messages": [{"from": "16505551234", "id": message_id, "timestamp": "1750000000", "type": "text",
                          "text": {"body": body}}]}


def events(**where) -> list[WebhookEvent]:
    """Every stored event (as committed), oldest first."""
    db.session.expire_all()
    query = sa.select(WebhookEvent).order_by(WebhookEvent.id)
    for name, value in where.items():
        query = query.where(getattr(WebhookEvent, name) == value)
    return list(db.session.scalars(query))


def count_events() -> int:
    """Rows in webhook_events, counted on a connection of its own (what another worker would see)."""
    with db.engine.connect() as connection:
        return connection.scalar(sa.select(sa.func.count()).select_from(WebhookEvent))


@pytest.fixture
def deliver(client):
    """POST a delivery as Meta does: the body (bytes as given, or a dict encoded as Meta would) signed with
    the app secret, unless ``signature`` says otherwise (None: no header)."""

    def post(body: bytes | dict, signature: str | None | bool = True, **headers):
        raw = body if isinstance(body, bytes) else encode(body)
        if signature is True:
            signature = sign(raw)
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        return client.post(URL, data=raw, headers={"Content-Type": "application/json", **headers})

    return post


@pytest.fixture
def phone(app):
    """The number of Meta's examples (display 15550783881), on record as Graph describes it."""
    db.session.add(WhatsAppBusinessAccount(id=WABA_ID, details={}))
    db.session.flush()
    number = PhoneNumber(id=PHONE_ID, waba_id=WABA_ID, display_phone_number="+1 555-078-3881",
                         verified_name="Old Name", quality_rating="GREEN", registration_attempts=0, details={})
    db.session.add(number)
    db.session.commit()
    return number


@pytest.fixture
def live_app(app):
    """The same app served on 127.0.0.1 by a threaded server: real concurrent requests."""
    server = ServerThread(app)
    yield server
    server.stop()


@pytest.fixture
def standalone_sends_to(simulator_app):
    """Point the standalone simulator's webhooks at a URL for one test."""

    def point(url: str) -> None:
        simulator_app.config["SIMULATOR_WEBHOOK_URL"] = url

    yield point
    sender(simulator_app).flush()
    simulator_app.config.pop("SIMULATOR_WEBHOOK_URL", None)
