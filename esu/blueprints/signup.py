"""Signup pages and the onboarding callback: HTTP in, calls to ``esu.onboarding``, JSON out."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_wtf.csrf import generate_csrf
from werkzeug.exceptions import RequestEntityTooLarge

from .. import i18n, resume_links, security, signup_cache, signup_events, widget_text
from .. import onboarding as onboarding_service
from .. import prefill as prefill_setup
from ..cli import SLUG, page_of_former_slug
from ..extensions import csrf, db, limiter
from ..graph import GraphError
from ..i18n import N_
from ..models import Onboarding, SignupPage
from ..models.assets import ASSET_FIELDS, WABA

bp = Blueprint("signup", __name__, url_prefix="/signup")

# [0-9], never \d: Python's \d also takes other scripts' digits ("١٢٣"), which Meta's ids and codes never are;
# \Z, not $, which also matches before a final newline.
NUMERIC_ID = re.compile(r"^[0-9]{1,32}\Z")
VERIFICATION_CODE = re.compile(r"^[0-9]{6}\Z")
CLIENT_REF = re.compile(r"^[A-Za-z0-9_-]{16,64}\Z")
#: Meta's screen names are upper-case identifiers; new ones appear, so the shape is checked, not a list.
FLOW_SCREEN = re.compile(r"^[A-Z][A-Z0-9_]{0,63}\Z")
ERROR_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,32}\Z")
SESSION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}\Z")
#: Text no database keeps: NUL (PostgreSQL refuses it) and lone surrogates (no encoding has them; JSON's
#: "\ud800" escape gives one). Paired surrogates, as JSON escapes emoji, parse into one character.
UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")
EVENT_MAX_BYTES = 2048
#: A finish event esu does not know yet (Meta adds them) is kept as sent: its shape is checked, not a list.
FINISH_EVENT = re.compile(r"^FINISH(_[A-Z0-9]+){0,8}\Z")
#: The most ids of one kind a finish message may list (each list is one customer's selection in the dialog).
MAX_ASSET_IDS = 50
ERROR_MESSAGE_MAX_CHARS = 1000
SEND_JSON = N_("send a JSON object with Content-Type: application/json")


class BadInput(Exception):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{key}: {value}" for key, value in errors.items()))
        self.errors = errors


@bp.errorhandler(BadInput)
def bad_input(error: BadInput):
    return jsonify(error=gettext("invalid request"), fields=error.errors), 400


@bp.errorhandler(onboarding_service.OnboardingError)
def onboarding_error(error: onboarding_service.OnboardingError):
    body: dict[str, Any] = {"error": error.message}
    if error.onboarding is not None:
        body["onboarding"] = {"id": error.onboarding.id, "status": error.onboarding.status}
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else {}
    return jsonify(body), error.status, headers


#: What a person reads when their connection made too many onboarding calls (the limiter's own words are its
#: limit, "20 per 1 minute").
TOO_MANY_CALLS = N_("Too many tries from your connection. Please wait a minute, then try again.")


@bp.errorhandler(429)
def too_many_calls(_error):
    # The limiter's headers (Retry-After) are added to this answer after it, as to any other.
    return jsonify(error=gettext(TOO_MANY_CALLS)), 429


@bp.url_value_preprocessor
def refuse_unknown_shapes(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    """A slug or reference of a shape esu never makes names nothing: 404 before any query (PostgreSQL would
    fail on a NUL in it rather than find nothing)."""
    values = values or {}
    if "slug" in values and not SLUG.match(values["slug"]):
        abort(404, description=gettext("There is no such signup page."))
    if "ref" in values and not CLIENT_REF.match(values["ref"]):
        abort(404, description=gettext("No onboarding with that reference on this page."))


def enabled_page(slug: str) -> SignupPage:
    page = db.session.scalar(sa.select(SignupPage).where(SignupPage.slug == slug))
    if page is None or not page.enabled:
        abort(404, description=gettext("There is no signup page '%(slug)s'.", slug=slug))
    i18n.use_page_language(page.language)
    return page


def json_body(limit: int) -> dict[str, Any]:
    """The request's JSON object, refusing bodies over ``limit`` bytes."""
    # The CSRF check has already opened the body stream under the app-wide MAX_CONTENT_LENGTH, so a lower
    # limit set now would not apply to it: count the bytes instead (a chunked body has no length up front).
    too_large = RequestEntityTooLarge(gettext("The request body is larger than %(limit)s bytes.", limit=limit))
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    if len(request.get_data(cache=True)) > limit:
        raise too_large
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # past the parser's own depth limit (silent covers only ValueError)
        raise BadInput({"body": gettext("is nested too deeply")}) from None
    if not isinstance(body, dict):
        raise BadInput({"body": gettext(SEND_JSON)})
    if holds_unstorable_text(body):
        raise BadInput({"body": gettext("holds a character that is not text (a NUL, or half of a surrogate pair)")})
    return body


def holds_unstorable_text(value: Any) -> bool:
    """Whether any string in ``value`` (keys too, at any depth) holds :data:`UNSTORABLE_TEXT`. A loop, not a
    recursion: a body may nest as deep as the parser allowed."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if UNSTORABLE_TEXT.search(item):
                return True
        elif isinstance(item, dict):
            pending += item.keys()
            pending += item.values()
        elif isinstance(item, list):
            pending += item
    return False


def _optional_id(body: dict[str, Any], name: str, errors: dict[str, str]) -> str | None:
    value = body.get(name)
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not NUMERIC_ID.match(value):
        errors[name] = gettext("must be a string of digits, as Meta sends it")
        return None
    return value


def _asset_ids(body: dict[str, Any], name: str, errors: dict[str, str]) -> list[str]:
    """One of the finish message's lists of ids (``waba_ids``, ``page_ids``…): absent, or Meta's ids."""
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ASSET_IDS:
        errors[name] = gettext("must be a list of at most %(count)s ids, as Meta sends it", count=MAX_ASSET_IDS)
        return []
    if not all(isinstance(item, str) and NUMERIC_ID.match(item) for item in value):
        errors[name] = gettext("must hold only strings of digits, as Meta sends them")
        return []
    return list(dict.fromkeys(value))


def parse_callback(body: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    code = body.get("code")
    if not isinstance(code, str) or not code.strip():
        errors["code"] = gettext("is required: the code from FB.login's authResponse")
    elif len(code) > 2048:
        errors["code"] = gettext("is longer than any code Meta issues")
    event = body.get("event") or onboarding_service.FINISH
    if event not in onboarding_service.FINISH_EVENTS and not (
            isinstance(event, str) and len(event) <= 64 and FINISH_EVENT.match(event)):
        errors["event"] = gettext("must be one of %(events)s, or another FINISH_… event",
                                  events=", ".join(onboarding_service.FINISH_EVENTS))
    parsed = {name: _optional_id(body, name, errors) for name in ("waba_id", "phone_number_id", "business_id")}
    assets = {kind: _asset_ids(body, name, errors) for kind, name in ASSET_FIELDS.items()}
    # The WABA the browser named comes first among the onboarding's WABAs; a multi-WABA message may name
    # them only in ``waba_ids``.
    parsed["waba_id"] = parsed["waba_id"] or next(iter(assets[WABA]), None)
    if parsed["waba_id"]:
        assets[WABA] = list(dict.fromkeys([parsed["waba_id"], *assets[WABA]]))
    client_ref = body.get("client_ref")
    if client_ref is not None and (not isinstance(client_ref, str) or not CLIENT_REF.match(client_ref)):
        errors["client_ref"] = gettext("must be 16 to 64 letters, digits, '-' or '_'")
    if (event == onboarding_service.FINISH and not parsed["waba_id"] and parsed["phone_number_id"]
            and "waba_id" not in errors):
        errors["waba_id"] = gettext("is required when phone_number_id is given")
    if errors:
        raise BadInput(errors)
    return {"code": code.strip(), "event": event, "client_ref": client_ref, **parsed,
            "assets": {kind: ids for kind, ids in assets.items() if ids}}


@bp.errorhandler(GraphError)
def graph_error(error: GraphError):
    # Meta refused a verification call: plain words for the person (Meta's own for people when it sent them),
    # never Meta's message for developers; the step's record keeps all of it for the admin.
    status = 502 if error.transient else 400
    return jsonify(error=onboarding_service.plain_words_of(error), code=error.code), status


@bp.get("/<slug>")
def page(slug: str):
    """The signup page: the client's text and the Embedded Signup widget. The same bytes for every visitor
    (no token, no session cookie): ``esu.signup_cache`` answers it while fresh, and here it is checked
    against the page's row, or rendered. A page's former slug answers 301 to its current address."""
    pages = signup_cache.cache()
    key = signup_cache.page_key(request.environ, slug)
    entry = pages.get(key)
    with db.engine.connect() as connection:
        state = signup_cache.page_state(connection, slug)
    if state is None:
        moved = page_of_former_slug(slug)
        if moved is not None and moved.enabled:  # a link given out before the slug changed
            query = request.query_string.decode("ascii", "replace")
            response = redirect(url_for("signup.page", slug=moved.slug) + (f"?{query}" if query else ""), 301)
            # Permanent for links and search engines, but browsers ask again: another page may take the slug.
            response.headers["Cache-Control"] = "no-cache"
            return response
    if state is None or not state.enabled:
        pages.forget(slug)
        abort(404, description=gettext("There is no signup page '%(slug)s'.", slug=slug))
    if entry is not None and entry.updated_at == state.updated_at:
        body, updated_at = entry.body, entry.updated_at
    else:
        signup_page = enabled_page(slug)
        body, updated_at = render_template("signup/page.html", page=signup_page).encode(), signup_page.updated_at
    security.allow_framing_by(state.embed_origins or ())  # the client sites that may show it (esu.embedding)
    # A template that asked for the CSP nonce made this answer one visitor's own: never keep it.
    if "csp_nonce" not in g:
        request.environ[signup_cache.CACHEABLE] = (key, updated_at)
    # A page without a language of its own speaks each visitor's: caches on the way keep one per language.
    return Response(body, mimetype="text/html", headers={"Vary": "Accept-Language"})


@bp.get("/<slug>/session")
def session(slug: str):
    """The CSRF token the widget sends with its onboarding calls; starts the visitor's session (its cookie).
    The widget asks when the person clicks, so the page itself stays the same for everyone."""
    if enabled_page(slug).embed_origins:  # in an iframe on a client's site, the cookie must be kept there too
        security.partition_session()
    response = jsonify(csrf_token=generate_csrf())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_template_global("signup_widget_settings")
def widget_settings(signup_page: SignupPage, *, config_id: str | None = None, feature_type: str | None = None,
                    prefill: dict[str, Any] | None = None, show_steps: bool = True) -> dict[str, Any]:
    """What the widget's script needs, as it passes it to the Facebook SDK: ``init`` is FB.init's
    argument and ``login`` FB.login's options (see meta-reference §1.2–1.5)."""
    config = current_app.config
    i18n.use_page_language(signup_page.language)
    setup = prefill_setup.for_login(prefill if prefill is not None else signup_page.prefill)
    base = url_for("signup.page", slug=signup_page.slug)
    settings: dict[str, Any] = {
        "sdk_url": i18n.localized_sdk_url(config["META_SDK_URL"], i18n.facebook_locale()),
        "init": {"appId": config["META_APP_ID"], "autoLogAppEvents": True, "xfbml": True,
                 "version": config["META_GRAPH_VERSION"]},
        "login": {
            "config_id": config_id or signup_page.config_id or config["META_CONFIG_ID"],
            "response_type": "code",
            "override_default_response_type": True,
            "extras": {
                "setup": setup,
                "featureType": signup_page.feature_type if feature_type is None else feature_type,
                "sessionInfoVersion": "3",
            },
        },
        "urls": {"callback": f"{base}/callback", "events": f"{base}/events", "onboardings": f"{base}/onboardings/",
                 "session": f"{base}/session", "resume": f"{base}/resume"},
        "show_steps": bool(show_steps),
        "simulator_origin": None,
        # The script's words, in the page's language; sent back as Accept-Language on its calls.
        "language": i18n.html_lang(),
        "text": widget_text.texts(),
    }
    if config["ESU_SIMULATOR"]:
        # The stand-in dialog posts from wherever the stand-in SDK is served; the widget trusts that
        # origin exactly, besides Meta's.
        sdk = urlsplit(urljoin(request.url_root, config["META_SDK_URL"]))
        settings["simulator_origin"] = f"{sdk.scheme}://{sdk.netloc}"
    return settings


def _optional_text(body: dict[str, Any], name: str, pattern: re.Pattern, errors: dict[str, str],
                   message: str) -> str | None:
    value = body.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # some integrations send error codes as numbers
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not pattern.match(value):
        errors[name] = message
        return None
    return value


def parse_event(body: dict[str, Any]) -> dict[str, Any]:
    """A funnel event as the widget sends it: ``kind`` and the fields that kind may carry."""
    errors: dict[str, str] = {}
    kind = body.get("kind")
    if kind not in signup_events.KINDS:
        errors["kind"] = gettext("must be one of %(kinds)s", kinds=", ".join(signup_events.KINDS))
    fields: dict[str, Any] = {
        "current_step": _optional_text(body, "current_step", FLOW_SCREEN, errors,
                                       gettext("must be the screen name Meta sent, e.g. PHONE_NUMBER_SETUP")),
        "error_code": _optional_text(body, "error_code", ERROR_CODE, errors,
                                     gettext("must be up to 32 letters, digits, '.', '-' or '_'")),
        "session_id": _optional_text(body, "session_id", SESSION_ID, errors,
                                     gettext("must be up to 64 letters, digits, '.', ':', '-' or '_'")),
    }
    message = body.get("error_message")
    if message not in (None, "") and (not isinstance(message, str) or len(message) > ERROR_MESSAGE_MAX_CHARS):
        errors["error_message"] = gettext("must be text of at most %(count)s characters", count=ERROR_MESSAGE_MAX_CHARS)
    fields["error_message"] = message.strip() if isinstance(message, str) and message.strip() else None
    allowed = {signup_events.CANCEL: {"current_step"},
               signup_events.ERROR: {"error_message", "error_code", "session_id"}}.get(kind, set())
    for name, value in fields.items():
        if value is not None and name not in allowed and name not in errors and "kind" not in errors:
            errors[name] = gettext("does not belong to a '%(kind)s' event", kind=kind)
    if kind == signup_events.ERROR and not (fields["error_message"] or fields["error_code"]):
        errors["error_message"] = gettext("an error event needs error_message or error_code")
    if errors:
        raise BadInput(errors)
    return {"kind": kind, **fields}


@bp.post("/<slug>/events")
@csrf.exempt
@limiter.limit(lambda: current_app.config["SIGNUP_EVENTS_LIMIT"], scope="signup-events")
def events(slug: str):
    """Record one funnel event the widget reports: view, launch, cancel (with the screen), error, finish."""
    # No CSRF token: the page reports its view before the visitor has a session, and an anonymous beacon
    # has no session a forged request could act for; the worst a forger can do is add funnel counts, which
    # anyone can do from their own browser. Only application/json is accepted: a cross-site <form> cannot
    # send it, and a cross-site fetch with it needs a CORS preflight, which we never grant. Validation, the
    # size limit and the rate limit still hold.
    if request.mimetype != "application/json":
        return jsonify(error=gettext(SEND_JSON)), 415
    signup_page = enabled_page(slug)
    fields = parse_event(json_body(EVENT_MAX_BYTES))
    signup_events.record(signup_page, **fields)
    db.session.commit()
    return "", 204


#: One budget per client address for every onboarding call, on any page: the callback, retries, code requests
#: and code checks together (``limit`` would give each its own).
onboarding_calls = limiter.shared_limit(lambda: current_app.config["SIGNUP_CALLBACK_LIMIT"], scope="signup-onboarding")


@bp.post("/<slug>/callback")
@onboarding_calls
def callback(slug: str):
    """Run the whole onboarding for a finished signup, inside this request, and answer its record."""
    signup_page = enabled_page(slug)
    fields = parse_callback(json_body(current_app.config["CALLBACK_MAX_BYTES"]))
    onboarding = onboarding_service.start(signup_page, **fields)
    return jsonify(onboarding_answer(onboarding)), 201


def onboarding_answer(onboarding: Onboarding) -> dict[str, Any]:
    """The onboarding's summary, and the token the widget keeps to come back to it (``esu.resume_links``)."""
    return {**onboarding_service.summary(onboarding), "resume_token": resume_links.token_for(onboarding)}


def found_onboarding(slug: str, ref: str) -> Onboarding | None:
    """The onboarding of this page with the unguessable reference its browser chose, if there is one yet."""
    signup_page = enabled_page(slug)
    return db.session.scalar(
        sa.select(Onboarding).where(Onboarding.client_ref == ref, Onboarding.page_id == signup_page.id)
    )


def owned_onboarding(slug: str, ref: str) -> Onboarding:
    """An onboarding of this page, found by the unguessable reference its browser chose; 404 without one."""
    onboarding = found_onboarding(slug, ref)
    if onboarding is None:
        abort(404, description=gettext("No onboarding with that reference on this page (yet)."))
    return onboarding


@bp.get("/<slug>/onboardings/<ref>")
def status(slug: str, ref: str):
    """Progress of an onboarding, step by step, for the page to show while the callback runs.

    The widget asks from the moment it posts the callback (``?submitted=1``), and a slow start may not have
    made the onboarding yet: that answers 202 (sent, not there yet) rather than a 404, which the browser
    would report as an error. Without the parameter, an unknown reference is 404 (the widget, coming back
    after a lost answer, then sends its callback again)."""
    onboarding = found_onboarding(slug, ref)
    if onboarding is None and request.args.get("submitted") == "1":
        return jsonify(status="submitted"), 202
    if onboarding is None:
        abort(404, description=gettext("No onboarding with that reference on this page (yet)."))
    return jsonify(onboarding_answer(onboarding))


@bp.post("/<slug>/onboardings/<ref>/retry")
@onboarding_calls
def retry(slug: str, ref: str):
    """Run the failed steps again."""
    onboarding = onboarding_service.retry(owned_onboarding(slug, ref))
    return jsonify(onboarding_answer(onboarding))


@bp.post("/<slug>/onboardings/<ref>/request-code")
@onboarding_calls
def request_code(slug: str, ref: str):
    """Ask Meta to send the number's verification code by SMS or voice."""
    onboarding = owned_onboarding(slug, ref)
    body = json_body(1024)
    method = str(body.get("method", "SMS")).upper()
    cooldown = onboarding_service.request_verification_code(onboarding, method, i18n.meta_language())
    return jsonify(sent=True, method=method, resend_after_seconds=int(cooldown.total_seconds()))


@bp.post("/<slug>/onboardings/<ref>/pin")
@onboarding_calls
def existing_pin(slug: str, ref: str):
    """Register the number with the two-step verification PIN it already has (Meta answered 133005)."""
    onboarding = owned_onboarding(slug, ref)
    pin = json_body(1024).get("pin")
    if not isinstance(pin, str) or not VERIFICATION_CODE.match(pin.strip()):
        raise BadInput({"pin": gettext("is the 6-digit two-step verification PIN of the number")})
    onboarding = onboarding_service.enter_existing_pin(onboarding, pin.strip())
    return jsonify(onboarding_service.summary(onboarding))


@bp.post("/<slug>/onboardings/<ref>/verify-code")
@onboarding_calls
def verify_code(slug: str, ref: str):
    """Check the code the person typed; registration goes on when it is right."""
    onboarding = owned_onboarding(slug, ref)
    code = str(json_body(1024).get("code", "")).strip()
    if not VERIFICATION_CODE.match(code):
        raise BadInput({"code": gettext("is the 6-digit code Meta sent")})
    onboarding = onboarding_service.verify_phone(onboarding, code)
    return jsonify(onboarding_answer(onboarding))


from . import signup_resume  # noqa: F401  (its routes join bp)
