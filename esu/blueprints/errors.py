"""Error pages and JSON errors: JSON for API callers, HTML for people; never a stack trace or a secret."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from ..extensions import db, is_database_unavailable

bp = Blueprint("errors", __name__)
#: What a 500 says (the error itself is in the log).
INTERNAL_ERROR = "Something went wrong on our side. It has been logged; please try again in a moment."
#: What a 503 says while the database cannot be reached.
UNAVAILABLE = "We cannot save anything right now. Nothing was lost; please try again in a minute."
RETRY_AFTER_SECONDS = 30


def wants_json() -> bool:
    if request.is_json or request.path.startswith(("/webhooks/", "/_meta/")):
        return True
    if request.path.startswith("/signup/") and request.method != "GET":
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def error_response(status: int, title: str, message: str):
    if wants_json():
        return jsonify(error=message, status=status), status
    return render_template("errors/error.html", status=status, title=title, message=message), status


@bp.app_errorhandler(CSRFError)
def csrf_error(error: CSRFError):
    return error_response(400, "Session expired", f"The form's security token is missing or stale: {error.description} "
                          "Reload the page and try again.")


@bp.app_errorhandler(HTTPException)
def http_error(error: HTTPException):
    return error_response(error.code or 500, error.name, error.description or error.name)


@bp.app_errorhandler(InternalServerError)
def internal_error(error: InternalServerError):
    db.session.rollback()
    if is_database_unavailable(error.original_exception):
        response, status = error_response(503, "Try again in a minute", UNAVAILABLE)
        return response, status, {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return error_response(500, "Something went wrong", INTERNAL_ERROR)
