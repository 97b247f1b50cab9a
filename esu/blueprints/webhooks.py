"""Meta's webhook endpoint: the verification handshake and signed deliveries. HTTP in and out only; what
a delivery means and how it is kept is ``esu.webhooks``."""

from __future__ import annotations

import hmac
import json
import logging

from flask import Blueprint, Response, abort, current_app, jsonify, request

from .. import webhooks
from ..extensions import csrf, limiter

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
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
    """A delivery from Meta: 413 over Meta's 3 MB, 403 unless signed with the app secret, then exactly
    200 once every change is committed, or 503 (Meta retries) when the database is unavailable."""
    request.max_content_length = webhooks.MAX_BODY_BYTES  # the read below answers 413 above it
    body = request.get_data()
    if not webhooks.signature_is_valid(body, request.headers.get(webhooks.SIGNATURE_HEADER),
                                       current_app.config.get("META_APP_SECRET")):
        log.warning("webhook delivery refused: signature missing or wrong (%d bytes from %s)", len(body),
                    request.remote_addr)
        abort(403, description="X-Hub-Signature-256 is missing or is not the signature of this body.")
    try:
        receipt = webhooks.ingest(body)
    except Exception as error:
        if not webhooks.is_database_unavailable(error):
            raise
        log.warning("webhook delivery not stored, the database is unavailable: %s", type(error).__name__)
        return jsonify(error="the database is unavailable; send it again later", status=503), 503, \
            {"Retry-After": "30"}
    return Response(json.dumps({"changes": receipt.changes, "stored": receipt.stored}), 200,
                    mimetype="application/json")
