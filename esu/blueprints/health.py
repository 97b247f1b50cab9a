"""``/healthz`` for load balancers and monitors: no login, no rate limit, no HTTPS redirect."""

from __future__ import annotations

from flask import Blueprint, jsonify

from ..health import schema_state

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """200 when the database answers and its schema is at this code's migrations head; 503 otherwise."""
    state = schema_state()
    body = {"database": state.database, "migrations": state.migrations}
    if state.error:
        body["error"] = state.error
    response = jsonify(body)
    response.status_code = 200 if state.healthy else 503
    response.headers["Cache-Control"] = "no-store"
    return response
