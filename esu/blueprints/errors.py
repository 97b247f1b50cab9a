"""Error pages and JSON errors: JSON for API callers, HTML for people; never a stack trace or a secret."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from ..extensions import db, is_database_unavailable
from ..i18n import N_

bp = Blueprint("errors", __name__)
#: What a 500 says (the error itself is in the log).
INTERNAL_ERROR = N_("Something went wrong on our side. It has been logged; please try again in a moment.")
#: What a 503 says while the database cannot be reached.
UNAVAILABLE = N_("We cannot save anything right now. Nothing was lost; please try again in a minute.")
#: Werkzeug's names of the errors a customer may meet, for the catalogs (shown in the request's language).
ERROR_NAMES = (N_("Bad Request"), N_("Not Found"), N_("Method Not Allowed"), N_("Request Entity Too Large"),
               N_("Too Many Requests"))
#: Flask-WTF's reasons for refusing a form's security token, in its own (English) words: for the catalogs, and
#: said in the request's language inside the CSRF error.
CSRF_REASONS = (N_("The CSRF token is missing."), N_("The CSRF session token is missing."),
                N_("The CSRF token has expired."), N_("The CSRF token is invalid."),
                N_("The CSRF tokens do not match."), N_("The referrer header is missing."),
                N_("The referrer does not match the host."))
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
    return error_response(400, gettext("Session expired"), gettext(
        "The form's security token is missing or stale: %(reason)s Reload the page and try again.",
        reason=gettext(error.description) if error.description in CSRF_REASONS else error.description))


@bp.app_errorhandler(HTTPException)
def http_error(error: HTTPException):
    return error_response(error.code or 500, gettext(error.name), error.description or gettext(error.name))


@bp.app_errorhandler(InternalServerError)
def internal_error(error: InternalServerError):
    db.session.rollback()
    if is_database_unavailable(error.original_exception):
        response, status = error_response(503, gettext("Try again in a minute"), gettext(UNAVAILABLE))
        return response, status, {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return error_response(500, gettext("Something went wrong"), gettext(INTERNAL_ERROR))
