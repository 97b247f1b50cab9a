"""The simulator as Meta's webhook sender: envelopes signed with the app secret, posted to the app.

Mounted in the app, deliveries go straight to the app's WSGI callable through :class:`WSGIAdapter` (no
socket: a single-threaded server would otherwise wait on itself). Run on its own, they go to
``SIMULATOR_WEBHOOK_URL`` when that is set, and nowhere otherwise.

A finished signup (``POST /_meta/signup``) makes it send PARTNER_ADDED (PARTNER_APP_INSTALLED for App-Only
Install) itself, from a background thread once the signup has been answered, before any code exchange, as Meta does;
:meth:`WebhookSender.flush` waits for them (tests, scripts). As Meta does, a background delivery the app
does not answer with 200 is sent again (``SIMULATOR_WEBHOOK_RETRY_SECONDS``, the waits between tries; Meta
keeps trying for days, the simulator for under a minute). ``/_meta/webhooks/send`` sends once and answers
what the app said.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import time
from collections import deque
from typing import Any

import requests
from flask import Blueprint, Flask, after_this_request, current_app, jsonify, request

from ..blueprints.webhooks import PATH as WEBHOOK_PATH
from ..config import SIMULATED_PARTNER_BUSINESS_ID
from .transport import WSGIAdapter

log = logging.getLogger(__name__)

bp = Blueprint("simulator_webhooks", __name__, url_prefix="/_meta/webhooks")

#: Deliveries to the app the simulator is mounted in never leave the process.
IN_PROCESS_ORIGIN = "http://esu-app.invalid"
TIMEOUT = (3.05, 30.0)
#: The waits before each new try of a background delivery the app did not answer with 200.
RETRY_SECONDS = (1.0, 5.0, 20.0)
NODE = re.compile(r"^\d{1,32}$")
FIELD = re.compile(r"^[a-z_]{1,64}$")


class WebhookSender:
    """Signs and posts envelopes; keeps what became of each in ``deliveries``."""

    def __init__(self, app: Flask):
        self.app = app
        self.deliveries: list[dict[str, Any]] = []
        self._condition = threading.Condition()
        self._queue: deque[dict[str, Any]] = deque()
        self._pending = 0  # announced, queued or being delivered
        self._worker: threading.Thread | None = None

    def target(self) -> str | None:
        """Where deliveries go: the configured URL, else the app this simulator is mounted in, else nowhere."""
        url = self.app.config.get("SIMULATOR_WEBHOOK_URL")
        if url:
            return url
        if "webhooks" in self.app.blueprints:
            return IN_PROCESS_ORIGIN + WEBHOOK_PATH
        return None

    def deliver(self, envelope: dict[str, Any], attempt: int = 1) -> dict[str, Any]:
        """Sign and post one envelope now; answers what happened (``status`` is the app's HTTP status)."""
        # Meta sends escaped unicode (json.dumps' default) and signs exactly the bytes it sends.
        body = json.dumps(envelope, separators=(",", ":")).encode()
        secret = self.app.config["META_APP_SECRET"].encode()
        changes = [change for entry in envelope["entry"] for change in entry["changes"]]
        record: dict[str, Any] = {
            "fields": [change["field"] for change in changes],
            "events": [change["value"].get("event") for change in changes if isinstance(change["value"], dict)],
            "entry_ids": [entry["id"] for entry in envelope["entry"]],
            "target": None, "status": None, "response": None, "error": None, "sent_at": time.time(),
            "attempt": attempt,
        }
        target = self.target()
        if target is None:
            record["error"] = "no webhook target: set SIMULATOR_WEBHOOK_URL, or mount the simulator in the app"
        else:
            record["target"] = "in-process" if target.startswith(IN_PROCESS_ORIGIN) else target
            headers = {"Content-Type": "application/json",
                       "X-Hub-Signature-256": "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()}
            try:
                with requests.Session() as session:
                    session.mount(IN_PROCESS_ORIGIN + "/", WSGIAdapter(self.app))
                    response = session.post(target, data=body, headers=headers, timeout=TIMEOUT)
                record["status"] = response.status_code
                record["response"] = response.text[:1000]
            except requests.RequestException as error:
                record["error"] = f"could not reach the app ({type(error).__name__})"
        with self._condition:
            self.deliveries.append(record)
        return record

    def send_after_response(self, envelope: dict[str, Any]) -> None:
        """Deliver ``envelope`` from a background thread once the current response is closed."""
        if self.target() is None:
            return
        with self._condition:
            self._pending += 1  # before the response leaves, so a flush right after it waits for this

        @after_this_request
        def queue(response):
            response.call_on_close(lambda: self._enqueue(envelope))
            return response

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every delivery queued so far is done; False when ``timeout`` seconds were not enough."""
        with self._condition:
            return self._condition.wait_for(lambda: self._pending == 0, timeout)

    def _enqueue(self, envelope: dict[str, Any]) -> None:
        with self._condition:
            self._queue.append(envelope)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="meta-simulator-webhooks", daemon=True)
                self._worker.start()

    def _work(self) -> None:
        # One thread at a time, in order; it ends when idle.
        while True:
            with self._condition:
                if not self._queue:
                    self._worker = None
                    return
                envelope = self._queue.popleft()
            try:
                self._deliver_until_answered(envelope)
            except Exception:
                log.exception("the simulator could not deliver a webhook")
            finally:
                with self._condition:
                    self._pending -= 1
                    self._condition.notify_all()


    def _deliver_until_answered(self, envelope: dict[str, Any]) -> None:
        waits = self.app.config.get("SIMULATOR_WEBHOOK_RETRY_SECONDS", RETRY_SECONDS)
        for attempt, wait in enumerate((0.0, *waits), start=1):
            time.sleep(wait)
            record = self.deliver(envelope, attempt)
            if record["status"] == 200 or record["target"] is None:
                return
            log.info("the app answered a simulated webhook with %s: %s", record["status"] or record["error"],
                     f"trying again in {waits[attempt - 1]} s" if attempt <= len(waits) else "giving up")


def init_app(app: Flask) -> None:
    app.extensions["meta_simulator_webhooks"] = WebhookSender(app)
    app.register_blueprint(bp)


def sender(app: Flask | None = None) -> WebhookSender:
    return (app or current_app).extensions["meta_simulator_webhooks"]


def envelope(entry_id: str, changes: list[dict[str, Any]], at: int) -> dict[str, Any]:
    return {"object": "whatsapp_business_account", "entry": [{"id": entry_id, "time": at, "changes": changes}]}


def partner_business_id() -> str:
    return current_app.config.get("META_PARTNER_BUSINESS_ID") or SIMULATED_PARTNER_BUSINESS_ID


def send_partner_added_after_response(business_id: str, waba_ids: list[str], at: int,
                                      finish: str = "FINISH") -> None:
    """What Meta sends when a customer finishes Embedded Signup, in the partner's business entry, for each
    WABA shared: PARTNER_ADDED (solution-providers/managing-webhooks.md, "triggered … when a client
    successfully completes the Embedded Signup flow"); for App-Only Install (FINISH_GRANT_ONLY_API_ACCESS)
    PARTNER_APP_INSTALLED instead, with the app's id (embedded-signup/app-only-install.md;
    webhooks/reference/account-update-webhook-reference.md: ``partner_app_id`` only in that event)."""
    app_id = current_app.config["META_APP_ID"]
    for waba_id in waba_ids:
        info = {"waba_id": waba_id, "owner_business_id": business_id}
        value = ({"event": "PARTNER_APP_INSTALLED", "waba_info": {**info, "partner_app_id": app_id}}
                 if finish == "FINISH_GRANT_ONLY_API_ACCESS" else {"event": "PARTNER_ADDED", "waba_info": info})
        sender().send_after_response(envelope(partner_business_id(), [{"field": "account_update", "value": value}],
                                              at))


@bp.post("/send")
def send():
    """Sign and deliver one change to the app now, as Meta would: ``{"field", "value", "waba_id"}``, with
    optional ``entry_id`` (default: the WABA, or the partner's business for a value with ``waba_info``)
    and ``time`` (default: now). Answers the app's status and body."""
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    errors = {}
    if not isinstance(body.get("field"), str) or not FIELD.match(body["field"]):
        errors["field"] = "is required: a webhook field such as account_update or messages"
    if not isinstance(body.get("value"), dict):
        errors["value"] = "is required: the change's value, an object"
    for name in ("waba_id", "entry_id"):
        if body.get(name) is not None and (not isinstance(body[name], str) or not NODE.match(body[name])):
            errors[name] = "must be a string of digits"
    if body.get("waba_id") is None and body.get("entry_id") is None:
        errors["waba_id"] = "is required (or entry_id)"
    if body.get("time") is not None and (not isinstance(body["time"], int) or isinstance(body["time"], bool)):
        errors["time"] = "must be a Unix time in seconds"
    if errors:
        return jsonify(error="invalid request", fields=errors), 400
    value = body["value"]
    entry_id = body.get("entry_id") or (partner_business_id() if "waba_info" in value else body["waba_id"])
    at = body.get("time") or int(current_app.extensions["meta_simulator"].clock())
    record = sender().deliver(envelope(entry_id, [{"field": body["field"], "value": value}], at))
    if record["status"] is None:
        return jsonify(error=record["error"], delivery=record), 409 if record["target"] is None else 502
    return jsonify(delivery=record)


@bp.get("")
def deliveries():
    """Every delivery sent so far, automatic or asked for, and the app's answer to each."""
    return jsonify(deliveries=list(sender().deliveries))
