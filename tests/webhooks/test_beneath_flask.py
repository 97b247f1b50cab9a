"""Signed deliveries are answered beneath Flask (esu.blueprints.webhooks.Deliveries): Meta and the
operator get what Flask would have answered (headers, request id, logs, errors), and whatever is not a
plain signed delivery still goes through Flask."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from flask import request, request_started
from sqlalchemy.exc import OperationalError

from esu import create_app
from esu.blueprints.errors import INTERNAL_ERROR
from esu.extensions import db
from esu.webhooks import storing

from .conftest import URL, count_events, encode, envelope, sign, text_message

PUBLIC = "esu.example.org"
TEMPLATE_APPROVED = ("message_template_status_update", {
    "event": "APPROVED", "message_template_id": 4343, "message_template_name": "welcome",
    "message_template_language": "en_US"})


@pytest.fixture
def production_app(app_config, app):  # app: empties the tables after
    production = create_app({**app_config, "ESU_ENV": "production", "ESU_PROXY_HOPS": 1,
                             "ESU_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                             "ESU_PUBLIC_URL": f"https://{PUBLIC}", "ESU_TRUSTED_HOSTS": PUBLIC})
    yield production
    with production.app_context():
        db.engine.dispose()


def post(client, body: dict, **kwargs):
    raw = encode(body)
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(raw), **kwargs.pop("headers", {})}
    return client.post(URL, data=raw, headers=headers, **kwargs)


def test_a_delivery_gets_the_headers_every_answer_gets(client):
    health = client.get("/healthz", base_url="https://localhost")
    response = post(client, envelope(("messages", text_message("wamid.HEADERS1"))), base_url="https://localhost",
                    headers={"X-Request-Id": "meta-delivery-0001"})

    assert response.status_code == 200
    assert response.json == {"changes": 1, "stored": 1}
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Request-Id"] == "meta-delivery-0001"
    for name in ("Content-Security-Policy", "Cross-Origin-Opener-Policy", "X-Content-Type-Options",
                 "Referrer-Policy", "X-Frame-Options", "Strict-Transport-Security"):
        assert response.headers[name] == health.headers[name], name
    plain = post(client, envelope(("messages", text_message("wamid.HEADERS2"))))
    assert plain.status_code == 200 and "Strict-Transport-Security" not in plain.headers  # never over HTTP
    assert len(plain.headers["X-Request-Id"]) == 32  # one of ours when none is offered


def test_what_is_logged_while_storing_carries_the_request_id(client, log_lines, monkeypatch):
    def unavailable(*args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("server closed the connection unexpectedly"))

    # A batch of messages is one statement on PostgreSQL, and goes with the general way on SQLite.
    monkeypatch.setattr(storing, "insert_and_queue_alone", unavailable)
    monkeypatch.setattr(storing, "insert_new_rows", unavailable)
    response = post(client, envelope(("messages", text_message("wamid.OUTAGE"))),
                    headers={"X-Request-Id": "meta-delivery-0503"})

    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    assert response.headers["X-Request-Id"] == "meta-delivery-0503"
    warning = next(line for line in log_lines() if "database is unavailable" in line["message"])
    assert warning["request_id"] == "meta-delivery-0503"


def test_an_unexpected_error_is_a_logged_json_500_and_keeps_nothing(client, monkeypatch, log_lines):
    def broken(events):
        raise RuntimeError("a bug in an applier")

    monkeypatch.setattr(storing, "apply", broken)
    body = envelope(("messages", text_message("wamid.BUG")), TEMPLATE_APPROVED)
    response = post(client, body, headers={"X-Request-Id": "meta-delivery-0500"})

    assert response.status_code == 500
    assert response.json == {"error": INTERNAL_ERROR, "status": 500}
    error = next(line for line in log_lines() if line["level"] == "error")
    assert error["request_id"] == "meta-delivery-0500" and "RuntimeError: a bug in an applier" in error["exception"]
    assert count_events() == 0
    monkeypatch.undo()
    assert post(client, body).status_code == 200  # Meta's retry, once fixed
    assert count_events() == 2


def test_a_signed_delivery_of_unknown_length_goes_through_flask_and_is_stored(client):
    raw = encode(envelope(("messages", text_message("wamid.CHUNKED"))))
    response = client.post(URL, input_stream=io.BytesIO(raw), environ_overrides={"wsgi.input_terminated": True},
                           headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked",
                                    "X-Hub-Signature-256": sign(raw)})
    assert response.status_code == 200 and response.json == {"changes": 1, "stored": 1}
    assert count_events() == 1


def test_production_answers_only_https_deliveries_for_its_own_host(production_app):
    client = production_app.test_client()
    body = envelope(("messages", text_message("wamid.PRODUCTION")))

    plain = post(client, body, base_url=f"http://{PUBLIC}")
    assert plain.status_code == 308 and plain.headers["Location"] == f"https://{PUBLIC}{URL}"
    elsewhere = post(client, body, base_url="http://evil.example", headers={"X-Forwarded-Proto": "https"})
    assert elsewhere.status_code == 400
    assert count_events() == 0

    stored = post(client, body, base_url=f"http://{PUBLIC}", headers={"X-Forwarded-Proto": "https"})
    assert stored.status_code == 200 and "Strict-Transport-Security" in stored.headers
    assert count_events() == 1


def test_an_unsigned_delivery_is_refused_by_flask_after_being_read(client, log_lines):
    raw = encode(envelope(("messages", text_message("wamid.FORGED"))))
    response = client.post(URL, data=raw, headers={"Content-Type": "application/json",
                                                    "X-Hub-Signature-256": sign(raw, "not-the-app-secret")})
    assert response.status_code == 403 and response.is_json
    refusal = next(line for line in log_lines() if "signature missing or wrong" in line["message"])
    assert f"({len(raw)} bytes" in refusal["message"]  # Flask got the whole body back
    assert count_events() == 0


def test_only_what_is_not_a_plain_signed_delivery_becomes_a_flask_request(app, client):
    requests_seen = []

    def seen(sender, **extra):
        requests_seen.append(request.path)

    request_started.connect(seen, app)
    try:
        assert post(client, envelope(("messages", text_message("wamid.BENEATH")))).status_code == 200
        assert requests_seen == []
        assert client.post(URL, data=b"{}", headers={"X-Hub-Signature-256": "sha256=" + "0" * 64}).status_code == 403
        assert requests_seen == [URL]
    finally:
        request_started.disconnect(seen, app)
