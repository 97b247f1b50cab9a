"""The Meta simulator: Graph endpoints, test helpers and faults.

Mounted at ``/_meta`` in simulator mode (the default with no Meta app configured), or run on its own
with :func:`create_simulator_app` so tests reach it over real HTTP. Its state is in a database
(:mod:`.store`), so every worker of a server answers alike.
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify, request

from . import graph, meta_app, sdk, store, webhooks
from .objects import QUALITY_RATINGS
from .signup import sign_up
from .state import OPERATIONS, SimulatorState

bp = Blueprint("simulator", __name__, url_prefix="/_meta")


def init_app(app: Flask, state: SimulatorState | None = None) -> None:
    """Mount the simulator; without ``state``, it keeps its own in a table of the app's database."""
    if state is None:
        from ..extensions import db

        with app.app_context():
            state = SimulatorState(store.Documents(db.engine))
    app.extensions["meta_simulator"] = state
    app.register_blueprint(bp)
    app.register_blueprint(graph.bp)
    app.register_blueprint(sdk.bp)
    webhooks.init_app(app)
    csrf = app.extensions.get("csrf")
    if csrf is not None:  # a fake of an outside service: no browser session, no CSRF tokens
        csrf.exempt(bp)
        csrf.exempt(graph.bp)
        csrf.exempt(webhooks.bp)


def create_simulator_app(config: dict) -> Flask:
    """The simulator alone, for a test or a separate process; ``config`` needs META_APP_ID,
    META_APP_SECRET, META_SYSTEM_USER_TOKEN and META_SYSTEM_USER_ID, and SIMULATOR_WEBHOOK_URL (the app's
    ``…/webhooks/whatsapp``) for it to send webhooks. It keeps its state in SIMULATOR_DATABASE_URL (its
    table made on first use: give several processes one database), else in SQLite in memory."""
    from .. import i18n

    app = Flask(__name__)
    app.config.update(config)
    i18n.init_app(app)  # the dialog speaks the SDK's locale
    init_app(app, SimulatorState(store.standalone(config.get("SIMULATOR_DATABASE_URL"))))
    return app


def state() -> SimulatorState:
    return current_app.extensions["meta_simulator"]


def _body() -> dict:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


@bp.post("/signup")
def signup():
    """What a person finishing the Embedded Signup dialog produces: ``{code, event, data}``, ``data`` as Meta's
    ``WA_EMBEDDED_SIGNUP`` message carries it, and the first WABA's ``waba_id``, ``phone_number_id`` and
    ``business_id`` beside them. As Meta does when the person finishes, before any code exchange, it sends
    ``PARTNER_ADDED`` (``PARTNER_APP_INSTALLED`` for App-Only Install) for each WABA, once this answer is out.

    Options: ``finish`` (one of the five FINISH events; default FINISH), ``wabas`` (how many, default 1),
    ``phone`` (false: no number), ``assets`` (any of ad_accounts, pages, datasets, catalogs,
    instagram_accounts), ``phone_verified`` (false: the number waits for the code 123456),
    ``code_verification_status`` (VERIFIED, NOT_VERIFIED or UNVERIFIED, or EXPIRED: a number already CONNECTED
    on Cloud API), ``quality_rating`` (as Meta's docs spell it; default UNKNOWN),
    ``business_verification_status`` (as Meta spells it, in either case), ``expires_in`` (the exchanged
    token's lifetime), ``coexistence`` (its syncs then send Meta's ``smb_app_state_sync`` and ``history``
    webhooks; ``share_history`` false: the business declined, error 2593109), ``business_name``, ``currency``,
    ``templates`` (approved count),
    ``scopes`` ("legacy": ``debug_token`` lists the WABA in ``granular_scopes``, as Meta did before June 2026).
    Registration: ``two_step_pin`` (six digits: the number already has this PIN, and ``register`` with another
    answers 133005), ``currency`` (the WABA's).
    """
    sim = state()
    try:
        signed_up = sign_up(sim, _body())
    except ValueError as error:
        return jsonify(error=str(error)), 400
    wabas = signed_up["data"].get("waba_ids") or [signed_up["waba_id"]]
    webhooks.send_partner_added_after_response(signed_up["business_id"], wabas, int(sim.clock()), signed_up["event"])
    return jsonify(signed_up)


@bp.post("/faults")
def add_fault():
    """Make the next ``times`` calls of ``operation`` (after the first ``after`` ones) fail with
    ``error_code``, or add latency. The envelope may be shaped with ``error_subcode``, ``is_transient``,
    ``error_user_title``, ``error_user_msg`` and ``error_data`` (a dict, or the text of its ``details``);
    ``wait_minutes`` adds the rate-limit usage headers that say when access comes back."""
    body = _body()
    sim = state()
    if "latency_ms" in body:
        try:
            sim.latency_ms = max(0, int(body["latency_ms"]))
        except (TypeError, ValueError):
            return jsonify(error="latency_ms must be a whole number of milliseconds"), 400
    if "operation" in body:
        if body["operation"] not in OPERATIONS:
            return jsonify(error=f"operation must be one of {', '.join(OPERATIONS)}"), 400
        try:
            code = int(body.get("error_code", 2))
            times = int(body.get("times", 1))
            subcode = int(body["error_subcode"]) if body.get("error_subcode") is not None else None
            after = int(body.get("after", 0))
            wait = int(body["wait_minutes"]) if body.get("wait_minutes") is not None else None
        except (TypeError, ValueError):
            return jsonify(error="error_code, error_subcode, times, after and wait_minutes must be whole numbers"), 400
        transient = body.get("is_transient")
        if transient is not None and not isinstance(transient, bool):
            return jsonify(error="is_transient must be true or false"), 400
        texts = {name: body.get(name) for name in ("error_user_title", "error_user_msg")}
        if any(text is not None and not isinstance(text, str) for text in texts.values()):
            return jsonify(error="error_user_title and error_user_msg must be text"), 400
        data = body.get("error_data")
        if data is not None and not isinstance(data, (dict, str)):
            return jsonify(error="error_data must be an object or the text of its details"), 400
        sim.add_fault(body["operation"], code, times, subcode, after, is_transient=transient,
                      user_title=texts["error_user_title"], user_msg=texts["error_user_msg"], error_data=data,
                      wait_minutes=wait)
    return jsonify(faults={op: [vars(f) for f in queue] for op, queue in sim.faults.items()},
                   latency_ms=sim.latency_ms)


@bp.delete("/faults")
def clear_faults():
    """Remove every injected fault and the added latency."""
    state().clear_faults()
    return jsonify(faults={}, latency_ms=0)


@bp.get("/app")
def app_settings():
    """The agency's Meta app as Graph describes it: webhook subscription, system user token, credit line."""
    return jsonify(meta_app.settings(state()))


@bp.post("/app")
def configure_app():
    """Set (or break) the Meta app's settings; see :func:`meta_app.configure` for the options."""
    try:
        return jsonify(meta_app.configure(state(), _body()))
    except (ValueError, TypeError) as error:
        return jsonify(error=str(error)), 400


@bp.get("/calls")
def calls():
    """The Graph calls served so far (operation, method, path, kind of token): for tests and curiosity."""
    return jsonify(calls=state().calls)


#: What Meta may change about a number without any webhook: reference/whatsapp-business-phone-number/
#: whatsapp-business-account-phone-number-api.md (quality_rating as objects.QUALITY_RATINGS; status;
#: name_status) and business-phone-numbers (messaging_limit_tier TIER_50 … TIER_UNLIMITED).
PHONE_CHANGES = ("quality_rating", "messaging_limit_tier", "status", "name_status")


@bp.post("/phone_numbers/<phone_id>")
def change_phone(phone_id: str):
    """Meta changes a number as it does on its own (a quality downgrade, a lower limit, a ban), and sends
    no webhook: ``{"quality_rating": "RED", "messaging_limit_tier": "TIER_50", "status", "name_status"}``."""
    body = _body()
    changes = {name: body[name] for name in PHONE_CHANGES if isinstance(body.get(name), str) and body[name]}
    if not changes or set(body) - set(PHONE_CHANGES):
        return jsonify(error=f"give one or more of {', '.join(PHONE_CHANGES)}, each a string"), 400
    if changes.get("quality_rating", "NA") not in QUALITY_RATINGS:
        return jsonify(error=f"quality_rating must be one of {', '.join(QUALITY_RATINGS)}"), 400

    def change(phone) -> dict:
        for name, value in changes.items():
            setattr(phone, name, value)
        return phone.fields()

    try:
        return jsonify(phone=state().change("phone", phone_id, change))
    except KeyError:
        return jsonify(error=f"no phone number {phone_id}"), 404


@bp.post("/tokens/revoke")
def revoke_tokens():
    """The customer removes the app's access to a WABA (``{"waba_id"}``): every business token granted it
    stops working, as a revoked token does (``debug_token`` then answers ``is_valid: false``, and calls with
    it error 190). No webhook is sent: what a lost PARTNER_APP_UNINSTALLED leaves."""
    waba_id = _body().get("waba_id")
    if not isinstance(waba_id, str) or not waba_id:
        return jsonify(error="waba_id is required"), 400
    documents = state().documents
    revoked = 0
    for key, version, data in documents.rows("token"):
        if waba_id in data.get("waba_ids", []) and documents.drop("token", key, version):
            revoked += 1
    return jsonify(revoked=revoked)


@bp.post("/reset")
def reset():
    """Forget every business, code, token and fault."""
    state().reset()
    return jsonify(reset=True)
