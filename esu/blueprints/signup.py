"""Signup pages and the onboarding callback: HTTP in, calls to ``esu.onboarding``, JSON out."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, jsonify, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge

from .. import onboarding as onboarding_service
from ..extensions import db
from ..graph import GraphError
from ..models import Onboarding, SignupPage

bp = Blueprint("signup", __name__, url_prefix="/signup")

NUMERIC_ID = re.compile(r"^\d{1,32}$")
CLIENT_REF = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class BadInput(Exception):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{key}: {value}" for key, value in errors.items()))
        self.errors = errors


@bp.errorhandler(BadInput)
def bad_input(error: BadInput):
    return jsonify(error="invalid request", fields=error.errors), 400


@bp.errorhandler(onboarding_service.OnboardingError)
def onboarding_error(error: onboarding_service.OnboardingError):
    body: dict[str, Any] = {"error": error.message}
    if error.onboarding is not None:
        body["onboarding"] = {"id": error.onboarding.id, "status": error.onboarding.status}
    return jsonify(body), error.status


def enabled_page(slug: str) -> SignupPage:
    page = db.session.scalar(sa.select(SignupPage).where(SignupPage.slug == slug))
    if page is None or not page.enabled:
        abort(404, description=f"There is no signup page '{slug}'.")
    return page


def json_body(limit: int) -> dict[str, Any]:
    """The request's JSON object, refusing bodies over ``limit`` bytes."""
    # The CSRF check has already opened the body stream under the app-wide MAX_CONTENT_LENGTH, so a lower
    # limit set now would not apply to it: count the bytes instead (a chunked body has no length up front).
    too_large = RequestEntityTooLarge(f"The request body is larger than {limit} bytes.")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    if len(request.get_data(cache=True)) > limit:
        raise too_large
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadInput({"body": "send a JSON object with Content-Type: application/json"})
    return body


def _optional_id(body: dict[str, Any], name: str, errors: dict[str, str]) -> str | None:
    value = body.get(name)
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not NUMERIC_ID.match(value):
        errors[name] = "must be a string of digits, as Meta sends it"
        return None
    return value


def parse_callback(body: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    code = body.get("code")
    if not isinstance(code, str) or not code.strip():
        errors["code"] = "is required: the code from FB.login's authResponse"
    elif len(code) > 2048:
        errors["code"] = "is longer than any code Meta issues"
    event = body.get("event") or onboarding_service.FINISH
    if event not in onboarding_service.FINISH_EVENTS:
        errors["event"] = f"must be one of {', '.join(onboarding_service.FINISH_EVENTS)}"
    parsed = {name: _optional_id(body, name, errors) for name in ("waba_id", "phone_number_id", "business_id")}
    client_ref = body.get("client_ref")
    if client_ref is not None and (not isinstance(client_ref, str) or not CLIENT_REF.match(client_ref)):
        errors["client_ref"] = "must be 16 to 64 letters, digits, '-' or '_'"
    if (event == onboarding_service.FINISH and not parsed["waba_id"] and parsed["phone_number_id"]
            and "waba_id" not in errors):
        errors["waba_id"] = "is required when phone_number_id is given"
    if errors:
        raise BadInput(errors)
    return {"code": code.strip(), "event": event, "client_ref": client_ref, **parsed}


@bp.errorhandler(GraphError)
def graph_error(error: GraphError):
    # Meta refused a verification call: say what Meta said, in its words for people when it has them.
    status = 502 if error.transient else 400
    return jsonify(error=error.user_message or error.message, code=error.code), status


@bp.get("/<slug>")
def page(slug: str):
    """The signup page: the client's text and the Embedded Signup widget."""
    signup_page = enabled_page(slug)
    return render_template("signup/page.html", page=signup_page)


@bp.post("/<slug>/callback")
def callback(slug: str):
    """Run the whole onboarding for a finished signup, inside this request, and answer its record."""
    signup_page = enabled_page(slug)
    fields = parse_callback(json_body(current_app.config["CALLBACK_MAX_BYTES"]))
    onboarding = onboarding_service.start(signup_page, **fields)
    return jsonify(onboarding_service.summary(onboarding)), 201


def owned_onboarding(slug: str, ref: str) -> Onboarding:
    """An onboarding of this page, found by the unguessable reference its browser chose."""
    signup_page = enabled_page(slug)
    if not CLIENT_REF.match(ref):
        abort(404)
    onboarding = db.session.scalar(
        sa.select(Onboarding).where(Onboarding.client_ref == ref, Onboarding.page_id == signup_page.id)
    )
    if onboarding is None:
        abort(404, description="No onboarding with that reference on this page (yet).")
    return onboarding


@bp.get("/<slug>/onboardings/<ref>")
def status(slug: str, ref: str):
    """Progress of an onboarding, step by step, for the page to show while the callback runs."""
    return jsonify(onboarding_service.summary(owned_onboarding(slug, ref)))


@bp.post("/<slug>/onboardings/<ref>/retry")
def retry(slug: str, ref: str):
    """Run the failed steps again."""
    onboarding = onboarding_service.retry(owned_onboarding(slug, ref))
    return jsonify(onboarding_service.summary(onboarding))


@bp.post("/<slug>/onboardings/<ref>/request-code")
def request_code(slug: str, ref: str):
    """Ask Meta to send the number's verification code by SMS or voice."""
    onboarding = owned_onboarding(slug, ref)
    body = json_body(1024)
    method = str(body.get("method", "SMS")).upper()
    language = str(body.get("language") or "en")[:8]
    cooldown = onboarding_service.request_verification_code(onboarding, method, language)
    return jsonify(sent=True, method=method, resend_after_seconds=int(cooldown.total_seconds()))


@bp.post("/<slug>/onboardings/<ref>/verify-code")
def verify_code(slug: str, ref: str):
    """Check the code the person typed; registration goes on when it is right."""
    onboarding = owned_onboarding(slug, ref)
    code = str(json_body(1024).get("code", "")).strip()
    if not re.fullmatch(r"\d{6}", code):
        raise BadInput({"code": "is the 6-digit code Meta sent"})
    onboarding = onboarding_service.verify_phone(onboarding, code)
    return jsonify(onboarding_service.summary(onboarding))
