"""Graph API endpoints of the simulator, under ``/_meta/graph/<version>/…``, with Meta's shapes."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from . import business_app, meta_app
from .errors import SimError, no_such_object
from .fields import (
    ASSIGNED_WABA_FIELDS,
    PHONE_FIELDS,
    PHONE_LIST_FIELDS,
    TEMPLATE_FIELDS,
    WABA_FIELDS,
    listed_fields,
    select_fields,
)
from .objects import LOCAL_STORAGE_REGIONS, Grant, Phone, Waba
from .state import CODE_TTL_SECONDS, REGISTER_LIMIT, REGISTER_WINDOW_SECONDS, VERIFICATION_CODE, SimulatorState

bp = Blueprint("simulator_graph", __name__, url_prefix="/_meta/graph")

VERSION = re.compile(r"^v\d+\.\d+$")
NODE = re.compile(r"^\d{1,32}$")


def state() -> SimulatorState:
    return current_app.extensions["meta_simulator"]


@bp.errorhandler(SimError)
def sim_error(error: SimError):
    return jsonify(error.envelope()), error.http_status, error.headers


@bp.route("/<version>/<path:path>", methods=["GET", "POST", "DELETE"])
def graph(version: str, path: str):
    """Dispatch one Graph call to its handler, after the faults and latency asked for."""
    if not VERSION.match(version):
        raise SimError(2500, f"Unknown path components: /{version}", http_status=400)
    parts = path.strip("/").split("/")
    handler, operation = _route(parts)
    sim = state()
    with sim.serving():
        latency_ms, faults = sim.ahead(operation)
        if latency_ms:
            time.sleep(latency_ms / 1000)
        sim.record_call({"operation": operation, "method": request.method, "path": "/" + path,
                         "auth": _caller_kind(), "appsecret_proof": "appsecret_proof" in request.args})
        fault = sim.take_fault(operation, faults) if faults else None
        if fault:
            raise fault.error(_business_of(sim, parts))
        return jsonify(handler(sim, *parts))


def _route(parts: list[str]):
    method = request.method
    if parts == ["oauth", "access_token"] and method == "GET":
        return exchange_code, "oauth_access_token"
    if parts == ["debug_token"] and method == "GET":
        return debug_token, "debug_token"
    if not NODE.match(parts[0]):
        raise no_such_object(parts[0], method)
    if parts == [meta_app.credit_line_id()] and method == "GET":
        return meta_app.read_credit_line, "credit_line"
    if len(parts) == 1 and method == "GET":
        node = state().node(parts[0])  # read once, for the operation's name and for the answer
        return partial(read_node, node=node), _node_operation(node)
    edges = {
        ("subscribed_apps", "GET"): (list_subscribed_apps, "subscribed_apps"),
        ("subscribed_apps", "POST"): (subscribe_app, "subscribed_apps"),
        ("subscribed_apps", "DELETE"): (unsubscribe_app, "subscribed_apps"),
        ("assigned_users", "POST"): (assign_user, "assigned_users"),
        ("whatsapp_credit_sharing_and_attach", "POST"): (share_credit, "credit_sharing"),
        ("phone_numbers", "GET"): (list_phone_numbers, "phone_numbers"),
        ("register", "POST"): (register, "register"),
        ("request_code", "POST"): (request_code, "request_code"),
        ("verify_code", "POST"): (verify_code, "verify_code"),
        ("smb_app_data", "POST"): (smb_app_data, "smb_app_data"),
        ("message_templates", "GET"): (list_templates, "message_templates"),
        ("assigned_whatsapp_business_accounts", "GET"): (assigned_wabas, "assigned_whatsapp_business_accounts"),
        ("subscriptions", "GET"): (meta_app.list_subscriptions, "app_subscriptions"),
    }
    if len(parts) == 2 and (parts[1], method) in edges:
        return edges[(parts[1], method)]
    raise SimError(100, f"(#100) Unsupported {method} request on /{'/'.join(parts)}")


def _node_operation(node: tuple[str, Any] | None) -> str:
    kind = node[0] if node else "waba"
    return {"phone": "phone_number", "allocation": "credit_sharing"}.get(kind, "waba")


# -- authorisation -----------------------------------------------------------------------------------


def _presented_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip()
    return request.args.get("access_token")


def _caller_kind() -> str:
    token = _presented_token()
    config = current_app.config
    if not token:
        return "none"
    if token == f"{config['META_APP_ID']}|{config['META_APP_SECRET']}":
        return "app"
    if token == config.get("META_SYSTEM_USER_TOKEN"):
        return "system_user"
    return "business"


def _authorise(*, waba_id: str | None = None, system_user: bool = False) -> str:
    """Check the caller's token (and its appsecret_proof) and that it reaches the asset."""
    token = _presented_token()
    if not token:
        raise SimError(104, "An access token is required to request this resource.", http_status=400)
    config = current_app.config
    if token == f"{config['META_APP_ID']}|{config['META_APP_SECRET']}":
        raise SimError(200, "(#200) An app access token cannot be used for this call")
    proof = request.args.get("appsecret_proof")
    if proof is None:
        raise SimError(100, "API calls from the server require an appsecret_proof argument")
    expected = hmac.new(config["META_APP_SECRET"].encode(), token.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(proof, expected):
        raise SimError(100, "Invalid appsecret_proof provided in the API argument")
    if token == config.get("META_SYSTEM_USER_TOKEN"):
        meta_app.refuse_expired_system_user_token(state())
        return "system_user"
    if system_user:
        raise SimError(200, "(#200) This call requires the partner's system user token")
    grant = state().tokens.get(token)
    if grant is None:
        raise SimError(190, "Invalid OAuth access token - Cannot parse access token")
    if waba_id is not None and waba_id not in grant.waba_ids:
        raise SimError(200, "(#200) Permissions error: the token was not granted this WhatsApp Business Account")
    return "business"


def _no_such_node(node_id: str) -> SimError:
    return no_such_object(node_id, request.method)


def _business_of(sim: SimulatorState, parts: list[str]) -> str | None:
    """The business whose usage a rate limit's headers report: the WABA's, or its number's."""
    node = sim.node(parts[0]) if NODE.match(parts[0]) else None
    if node is None:
        return None
    kind, thing = node
    waba = sim.wabas.get(thing.waba_id) if kind == "phone" else thing if kind == "waba" else None
    return waba.business_id if waba is not None else None


def _phone(phone_id: str) -> Phone:
    phone = state().phones.get(phone_id)
    if phone is None:
        raise _no_such_node(phone_id)
    return phone


def _change(sim: SimulatorState, kind: str, node_id: str, change: Callable[[Any], Any]) -> Any:
    """``sim.change``, answering Meta's error for a node that is gone (the simulator was reset meanwhile)."""
    try:
        return sim.change(kind, node_id, change)
    except KeyError:
        raise _no_such_node(node_id) from None


# -- handlers ----------------------------------------------------------------------------------------


def exchange_code(sim: SimulatorState, *_):
    config = current_app.config
    if request.args.get("client_id") != config["META_APP_ID"]:
        raise SimError(101, "Error validating application. Invalid application ID.")
    if not hmac.compare_digest(request.args.get("client_secret", ""), config["META_APP_SECRET"]):
        raise SimError(1, "Error validating client secret.", http_status=400, error_type="OAuthException")
    now = sim.clock()

    def spend(grant: Grant) -> Grant:
        if grant.used:
            raise SimError(100, "This authorization code has been used.", subcode=36009)
        if now - grant.issued_at > CODE_TTL_SECONDS:
            raise SimError(100, "This authorization code has expired.", subcode=36007)
        grant.used = True
        return grant

    try:  # once: of two exchanges racing, in any workers, one spends the code and the other finds it used
        grant = sim.change("code", request.args.get("code", ""), spend)
    except KeyError:
        raise SimError(100, "Invalid verification code format.", subcode=36008) from None
    token = "EAA" + secrets.token_urlsafe(96).replace("-", "").replace("_", "")[:120]
    sim.add("token", token, Grant(grant.business_id, list(grant.waba_ids), sim.clock(), scopes=grant.scopes,
                                  user_id=sim.new_id(), expires_in=grant.expires_in))
    answer: dict[str, Any] = {"access_token": token, "token_type": "bearer"}
    if grant.expires_in:
        answer["expires_in"] = grant.expires_in
    return answer


def debug_token(sim: SimulatorState, *_):
    kind = _caller_kind()
    if kind not in ("app", "system_user"):
        raise SimError(190, "Invalid OAuth access token for debug_token")
    if kind == "system_user":
        _authorise()
    if request.args.get("input_token") == current_app.config.get("META_SYSTEM_USER_TOKEN"):
        return meta_app.debug_system_user_token(sim)
    grant = sim.tokens.get(request.args.get("input_token", ""))
    app_id = current_app.config["META_APP_ID"]
    if grant is None:
        return {"data": {"app_id": app_id, "is_valid": False,
                         "error": {"code": 190, "message": "Invalid OAuth access token."}}}
    waba_ids = list(reversed(grant.waba_ids))  # the most recently onboarded first
    if grant.scopes == "legacy":
        # The documented shape: the WABAs the customer granted, in the WhatsApp scopes' target_ids.
        granular = [{"scope": "whatsapp_business_management", "target_ids": waba_ids},
                    {"scope": "whatsapp_business_messaging", "target_ids": waba_ids}]
    else:
        # What Embedded Signup tokens have carried since June 2026 (logged in chatwoot/chatwoot#14690):
        # no WhatsApp entry and no target_ids, while ``scopes`` still lists the WhatsApp permissions.
        granular = [{"scope": "business_management"}, {"scope": "whatsapp_business_manage_events"}]
    return {"data": {
        "app_id": app_id,
        "type": "SYSTEM_USER",
        "application": "esu simulated app",
        "data_access_expires_at": 0,
        "expires_at": 0,
        "is_valid": True,
        "issued_at": int(grant.issued_at),
        "scopes": ["business_management", "whatsapp_business_management", "whatsapp_business_messaging",
                   "whatsapp_business_manage_events", "public_profile"],
        "granular_scopes": granular,
        "user_id": grant.user_id,
    }}


def assigned_wabas(sim: SimulatorState, user_id: str, _edge):
    """``GET /{user-id}/assigned_whatsapp_business_accounts``: the WABAs assigned to the token's own system
    user, most recently onboarded first (reference/webhooks/whatsapp-business-assigned-whatsapp-business-
    accounts-api.md: ``{"data": [{"id", "name"}]}``)."""
    _authorise()
    grant = sim.tokens.get(_presented_token() or "")
    if grant is None or grant.user_id != user_id:
        raise no_such_object(user_id)
    wabas = [{"id": waba_id, "name": sim.wabas[waba_id].name} for waba_id in reversed(grant.waba_ids)]
    return {"data": listed_fields(wabas, ASSIGNED_WABA_FIELDS, "WhatsAppBusinessAccount")}


def read_node(sim: SimulatorState, node_id: str, *, node: tuple[str, Any] | None):
    kind, node = node or (None, None)
    if kind == "phone":
        _authorise(waba_id=node.waba_id)
        return select_fields(node.fields(), PHONE_FIELDS, "WhatsAppBusinessPhoneNumber")
    if kind == "waba":
        _authorise(waba_id=node_id)
        return select_fields(node.fields(sim.businesses[node.business_id]), WABA_FIELDS, "WhatsAppBusinessAccount")
    if kind == "allocation":
        _authorise(system_user=True)
        return {"id": node_id, "receiving_credential": {"id": node["credential_id"]}}
    raise _no_such_node(node_id)


def _waba(sim: SimulatorState, waba_id: str):
    waba = sim.wabas.get(waba_id)
    if waba is None:
        raise no_such_object(waba_id, request.method)
    return waba


def list_subscribed_apps(sim: SimulatorState, waba_id: str, _edge):
    _authorise(waba_id=waba_id)
    waba = _waba(sim, waba_id)
    return {"data": [
        {"whatsapp_business_api_data": {"id": app_id, "name": "esu simulated app",
                                        "link": f"https://www.facebook.com/games/?app_id={app_id}"}}
        for app_id in waba.subscribed_apps
    ]}


def subscribe_app(sim: SimulatorState, waba_id: str, _edge):
    _authorise(waba_id=waba_id)
    _waba(sim, waba_id)
    app_id = current_app.config["META_APP_ID"]

    def subscribe(waba: Waba) -> None:
        if app_id not in waba.subscribed_apps:
            waba.subscribed_apps.append(app_id)

    _change(sim, "waba", waba_id, subscribe)
    return {"success": True}


def unsubscribe_app(sim: SimulatorState, waba_id: str, _edge):
    _authorise(waba_id=waba_id)
    _waba(sim, waba_id)
    app_id = current_app.config["META_APP_ID"]

    def unsubscribe(waba: Waba) -> None:
        if app_id in waba.subscribed_apps:
            waba.subscribed_apps.remove(app_id)

    _change(sim, "waba", waba_id, unsubscribe)
    return {"success": True}


def assign_user(sim: SimulatorState, waba_id: str, _edge):
    _authorise(system_user=True)
    waba = _waba(sim, waba_id)
    user = request.args.get("user", "")
    try:
        tasks = json.loads(request.args.get("tasks", "[]").replace("'", '"'))
    except ValueError:
        raise SimError(100, "(#100) Param tasks must be an array of task names") from None
    if not NODE.match(user) or not isinstance(tasks, list) or not tasks:
        raise SimError(100, "(#100) The parameters user and tasks are required")
    _change(sim, "waba", waba.id, lambda waba: waba.assigned_users.update({user: [str(task) for task in tasks]}))
    return {"success": True}


def share_credit(sim: SimulatorState, credit_line_id: str, _edge):
    _authorise(system_user=True)
    waba = _waba(sim, request.args.get("waba_id", ""))
    currency = request.args.get("waba_currency", "")
    if currency not in {"AUD", "EUR", "GBP", "IDR", "INR", "USD"}:
        raise SimError(100, "(#100) Param waba_currency must be one of {AUD, EUR, GBP, IDR, INR, USD}")
    system_user = current_app.config.get("META_SYSTEM_USER_ID")
    if system_user not in waba.assigned_users:
        raise SimError(200, "(#200) The system user must be assigned to the WhatsApp Business Account first")
    allocation_id = sim.new_id()
    credential_id = sim.new_id()
    sim.add("allocation", allocation_id, {"credit_line_id": credit_line_id, "waba_id": waba.id,
                                          "credential_id": credential_id})

    def fund(waba: Waba) -> None:
        waba.primary_funding_id = credential_id
        waba.currency = currency

    _change(sim, "waba", waba.id, fund)
    return {"allocation_config_id": allocation_id, "waba_id": waba.id}


def list_phone_numbers(sim: SimulatorState, waba_id: str, _edge):
    _authorise(waba_id=waba_id)
    _waba(sim, waba_id)
    # Without ``fields`` the edge answers "default fields" that its reference does not name (its example,
    # asked without ``fields``, shows most of a number's): every field of each number, here.
    return {"data": listed_fields([phone.fields() for phone in sim.listed("phone", waba_id)], PHONE_LIST_FIELDS,
                                   "WhatsAppBusinessPhoneNumber")}


def _phone_for_write(sim: SimulatorState, phone_id: str) -> Phone:
    phone = _phone(phone_id)
    _authorise(waba_id=phone.waba_id)
    return phone


def register(sim: SimulatorState, phone_id: str, _edge):
    _phone_for_write(sim, phone_id)
    body = request.get_json(silent=True) or {}
    pin = str(body.get("pin", ""))
    if body.get("messaging_product") != "whatsapp":
        raise SimError(100, "(#100) The parameter messaging_product is required.")
    if not re.fullmatch(r"\d{6}", pin):
        raise SimError(100, "(#100) Param pin must be a 6-digit number")
    region = body.get("data_localization_region")
    if region is not None and region not in LOCAL_STORAGE_REGIONS:
        raise SimError(100, "(#100) Param data_localization_region must be one of {"
                       + ", ".join(sorted(LOCAL_STORAGE_REGIONS)) + "}")
    now = sim.clock()

    def register_now(phone: Phone) -> SimError | None:
        # A refused attempt counts against the limit too: the refusal is answered once the count is stored.
        phone.register_calls = [t for t in phone.register_calls if now - t < REGISTER_WINDOW_SECONDS]
        if len(phone.register_calls) >= REGISTER_LIMIT:
            raise SimError(133016)
        phone.register_calls.append(now)
        if phone.is_on_biz_app:
            return SimError(100, "(#100) This phone number is already registered on the WhatsApp Business app",
                            user_title="Number Used in the WhatsApp Business App",
                            user_msg="This phone number is already connected through the WhatsApp Business app.")
        if phone.code_verification_status != "VERIFIED":
            return SimError(100, "(#100) The phone number must be verified before it can be registered",
                            subcode=2388001)
        if phone.pin is not None and phone.pin != pin:
            return SimError(133005)
        phone.pin = pin
        phone.data_localization_region = region
        phone.status = "CONNECTED"
        phone.platform_type = "CLOUD_API"
        return None

    refused = _change(sim, "phone", phone_id, register_now)
    if refused:
        raise refused
    return {"success": True}


def request_code(sim: SimulatorState, phone_id: str, _edge):
    phone = _phone_for_write(sim, phone_id)
    if request.args.get("code_method") not in ("SMS", "VOICE"):
        raise SimError(100, "(#100) Param code_method must be one of {SMS, VOICE}")
    if not request.args.get("language"):
        raise SimError(100, "(#100) The parameter language is required")
    if phone.code_verification_status == "VERIFIED":
        raise SimError(136024)
    _change(sim, "phone", phone_id, lambda phone: phone.code_requests.append(request.args["code_method"]))
    return {"success": True}


def verify_code(sim: SimulatorState, phone_id: str, _edge):
    phone = _phone_for_write(sim, phone_id)
    if not phone.code_requests:
        raise SimError(100, "(#100) Request a verification code first")
    if request.args.get("code") != VERIFICATION_CODE:
        raise SimError(136025, "(#136025) Verification code mismatch. Check the code and try again.",
                       http_status=400)

    def verified(phone: Phone) -> None:
        phone.code_verification_status = "VERIFIED"

    _change(sim, "phone", phone_id, verified)
    # ``{"success": true, "id": "<phone-number-id>"}``: reference/whatsapp-business-phone-number/
    # whatsapp-business-account-phone-number-verification-verify-code-api.md
    return {"success": True, "id": phone_id}


def smb_app_data(sim: SimulatorState, phone_id: str, _edge):
    phone = _phone_for_write(sim, phone_id)
    sync_type = (request.get_json(silent=True) or {}).get("sync_type")
    if sync_type not in ("smb_app_state_sync", "history"):
        raise SimError(100, "(#100) Param sync_type must be one of {smb_app_state_sync, history}")
    if not phone.is_on_biz_app:
        raise SimError(100, "(#100) This number is not on the WhatsApp Business app")

    def sync(phone: Phone) -> Phone:
        if sync_type in phone.synced:
            raise SimError(100, "(#100) Synchronization was already requested for this number")
        phone.synced.append(sync_type)
        return phone

    # What was synced comes afterwards, as webhooks (onboard-whatsapp-business-app-users.md).
    business_app.send_after_response(_change(sim, "phone", phone_id, sync), sync_type, sim.clock())
    return {"messaging_product": "whatsapp", "request_id": secrets.token_hex(8)}


def list_templates(sim: SimulatorState, waba_id: str, _edge):
    _authorise(waba_id=waba_id)
    _waba(sim, waba_id)
    status = (request.args.get("status") or "").upper()
    templates = [t for t in sim.listed("template", waba_id) if not status or t.status == status]
    limit = min(max(int(request.args.get("limit", 25) or 25), 1), 100)
    start = int(request.args.get("after") or 0) if (request.args.get("after") or "0").isdigit() else 0
    page = templates[start:start + limit]
    # Unknown fields fail the call (Graph; the node type as Graph names it in third-party logs).
    body: dict[str, Any] = {"data": listed_fields([t.fields() for t in page], TEMPLATE_FIELDS,
                                                   "WhatsAppMessageTemplate")}
    if page:
        body["paging"] = {"cursors": {"before": str(start), "after": str(start + len(page))}}
        if start + len(page) < len(templates):
            body["paging"]["next"] = (
                f"{request.base_url}?limit={limit}&after={start + len(page)}"
                + (f"&status={status}" if status else "")
            )
    return body
