"""Meta's webhook endpoint: the verification handshake and signed deliveries. HTTP in and out only; what
a delivery means and how it is kept is ``esu.webhooks``.

A signed delivery is answered beneath Flask, by :class:`Deliveries`: Meta sends them by the thousand in
a burst, and Flask's work for a request (its contexts, the hooks of every extension, the session) cost
as much as storing the delivery, and held up the thread storing a batch for the others. Any other
request to the endpoint (unsigned, larger than Meta sends, of unknown length, over plain HTTP where HTTPS
is required, for a host we do not serve) goes on to the blueprint, which answers it as every other view.
"""

from __future__ import annotations

import hmac
import io
import json
import logging
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, request
from werkzeug.exceptions import SecurityError
from werkzeug.wsgi import get_content_length, get_host

from .. import logs, security, webhooks
from ..extensions import csrf, limiter
from .errors import INTERNAL_ERROR

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
#: Where Meta sends deliveries (the callback URL of the app's WhatsApp webhook configuration).
PATH = "/webhooks/whatsapp"
#: The signature header as the WSGI environ names it.
SIGNATURE_ENVIRON_KEY = "HTTP_" + webhooks.SIGNATURE_HEADER.upper().replace("-", "_")
# Meta cannot hold a CSRF token; it signs every delivery instead, and the signature is checked first.
csrf.exempt(bp)


@limiter.request_filter
def _from_meta() -> bool:
    """Meta's deliveries are never rate-limited: a 429 would only make Meta send them again later, and the
    signature already stops anyone else."""
    return request.blueprint == bp.name


@bp.get("/whatsapp")
def verify():
    """Meta's verification handshake: ``hub.challenge`` back as plain text for ``hub.mode=subscribe`` and
    our verify token, 403 for anything else."""
    expected = current_app.config.get("META_WEBHOOK_VERIFY_TOKEN") or ""
    token = request.args.get("hub.verify_token", "")
    challenge = request.args.get("hub.challenge")
    if (request.args.get("hub.mode") != "subscribe" or not expected or challenge is None
            or not hmac.compare_digest(token.encode(), expected.encode())):
        abort(403, description="Wrong or missing hub.mode or hub.verify_token.")
    return Response(challenge, mimetype="text/plain", headers={"X-Content-Type-Options": "nosniff"})


@bp.post("/whatsapp")
def receive():
    """A delivery :class:`Deliveries` left to Flask: 413 over Meta's 3 MB, 403 unless signed with the app
    secret; a signed one (sent in chunks, say) is answered as there."""
    # One byte past Meta's limit is read: a body of unknown length (chunked) is cut where the read stops,
    # and only that byte tells one over the limit (413) from one of exactly 3 MB. Longer declared: 413 at once.
    request.max_content_length = webhooks.MAX_BODY_BYTES + 1
    body = request.get_data()
    if len(body) > webhooks.MAX_BODY_BYTES:
        abort(413, description="The body is larger than the 3 MB Meta sends.")
    if not webhooks.signature_is_valid(body, request.headers.get(webhooks.SIGNATURE_HEADER),
                                       current_app.config.get("META_APP_SECRET")):
        log.warning("webhook delivery refused: signature missing or wrong (%d bytes from %s)", len(body),
                    request.remote_addr)
        abort(403, description="X-Hub-Signature-256 is missing or is not the signature of this body.")
    status, payload, headers = answer(body)
    return Response(json.dumps(payload), status, headers, mimetype="application/json")


def answer(body: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, JSON and headers for a signed delivery: 200 with its counts once every change is committed,
    or 503 (Meta retries) when the database is unavailable."""
    try:
        receipt = webhooks.ingest(body)
    except Exception as error:
        if not webhooks.is_database_unavailable(error):
            raise
        log.warning("webhook delivery not stored, the database is unavailable: %s", type(error).__name__)
        return 503, {"error": "the database is unavailable; send it again later", "status": 503}, \
            {"Retry-After": "30"}
    return 200, {"changes": receipt.changes, "stored": receipt.stored}, {}


class Deliveries:
    """WSGI middleware answering Meta's signed deliveries itself, with what Flask would answer: the same
    JSON, security headers and request id, logs under that id, a JSON 500 for an unexpected error."""

    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        # Every answer here is JSON, not a signup page: its headers depend on the scheme only.
        self.headers = {secure: list(security.security_headers(app, signup=False, secure=secure).items())
                        for secure in (False, True)}

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.wsgi_app(environ, start_response)
        body = self._signed_body(environ)
        if body is None:
            return self.wsgi_app(environ, start_response)
        request_id = logs.request_id_for(environ.get("HTTP_X_REQUEST_ID"))
        with self.app.app_context(), logs.request_id_bound(request_id):
            try:
                status, payload, headers = answer(body)
            except Exception:
                log.exception("Exception on %s [POST]", PATH)
                status, payload, headers = 500, {"error": INTERNAL_ERROR, "status": 500}, {}
        data = json.dumps(payload).encode()
        start_response(f"{status} {HTTPStatus(status).phrase}", [
            ("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers.items(),
            *self.headers[environ.get("wsgi.url_scheme") == "https"], (logs.REQUEST_ID_HEADER, request_id)])
        return [data]

    def _signed_body(self, environ) -> bytes | None:
        """The body, when this is a delivery to answer here: of a known length within Meta's limit, over
        HTTPS where required, for a host we serve, signed with the app secret. Otherwise None, and Flask
        gets the request as it came (the body, once read, put back)."""
        if security.requires_https(self.app, environ) or not self._serves_host(environ):
            return None
        length = get_content_length(environ)
        if length is None or length > webhooks.MAX_BODY_BYTES:
            return None
        body = environ["wsgi.input"].read(length)
        secret = self.app.config.get("META_APP_SECRET")
        if webhooks.signature_is_valid(body, environ.get(SIGNATURE_ENVIRON_KEY), secret):
            return body
        environ["wsgi.input"] = io.BytesIO(body)
        return None

    def _serves_host(self, environ) -> bool:
        trusted = self.app.config.get("TRUSTED_HOSTS")
        if not trusted:
            return True
        try:
            get_host(environ, trusted)
        except SecurityError:
            return False
        return True


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    security.beneath_proxies(app, lambda wsgi_app: Deliveries(app, wsgi_app))
