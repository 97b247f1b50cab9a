"""What both yardstick handlers do first: the body of a request Meta signed, or 403."""

import hashlib
import hmac
import os

from flask import abort, request

SECRET = os.environ["META_APP_SECRET"].encode()


def signed_body() -> bytes:
    body = request.get_data()
    expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
        abort(403)
    return body
