"""The agency's own Meta app, as Graph describes it: its webhook subscription, its system user token and
its credit line. ``flask --app wsgi check --live`` reads them; ``POST /_meta/app`` sets what a person
would set (or break) in the App Dashboard and Business Settings.

Kept as one document; a reset forgets it, and the defaults are a sound app with no webhook subscription
yet (as a new Meta app has none until the callback URL is saved).

Shapes follow Meta's reference:
- ``GET /{app-id}/subscriptions``: https://developers.facebook.com/docs/graph-api/reference/app/subscriptions/
  (``{"data": [{"object", "callback_url", "active", "fields": [{"name", "version"}]}]}``; an app access token
  is required).
- ``GET /debug_token``: https://developers.facebook.com/docs/facebook-login/access-tokens/debugging-and-error-handling
  (an expired token: ``is_valid`` false and the error code 190, subcode 463).
- ``GET /{extended-credit-id}``: https://developers.facebook.com/docs/marketing-api/reference/extended-credit
  and its fields in meta-docs reference/whatsapp-business-account/whatsapp-cloud-api-extended-credits-api.md;
  reading it takes the system user token with ``business_management``
  (meta-docs solution-providers/managing-credit-lines.md, "Authentication and authorization").
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from flask import current_app, request

from ..config import SIMULATED_CREDIT_LINE_ID
from .errors import SimError, no_such_object
from .state import SimulatorState

KIND, KEY = "meta_app", "settings"
WHATSAPP_OBJECT = "whatsapp_business_account"
SYSTEM_USER_SCOPES = ["business_management", "whatsapp_business_management", "whatsapp_business_messaging"]
CURRENCIES = ("AUD", "EUR", "GBP", "IDR", "INR", "USD")
DEFAULTS: dict[str, Any] = {
    # None: the app has no webhook subscription; else {"callback_url", "active", "fields", "object"}.
    "subscription": None,
    # expires_at 0: never (a system user token made to never expire).
    "system_user_token": {"expires_at": 0, "scopes": SYSTEM_USER_SCOPES},
    "credit_line": {
        "readable": True,
        "currency": "USD",
        "legal_entity_name": "Simulated Agency LLC",
        "is_access_revoked": False,
    },
}
#: The fields Meta's reference lists for a credit line (the extendedcredits edge's "Available fields").
CREDIT_LINE_FIELDS = frozenset(
    {
        "id",
        "credit_type",
        "balance",
        "credit_available",
        "max_balance",
        "online_max_balance",
        "allocated_amount",
        "partition_from",
        "owner_business",
        "owner_business_name",
        "is_automated_experience",
        "legal_entity_name",
        "send_bill_to_biz_name",
        "liable_biz_name",
        "receiving_credit_allocation_config",
        "is_access_revoked",
        "is_shared_credit_line_enabled_for_mpa",
    }
)


def settings(sim: SimulatorState) -> dict[str, Any]:
    found = sim.documents.get(KIND, KEY)
    merged = copy.deepcopy(DEFAULTS)
    if found:
        merged.update(found[1])
    return merged


def configure(sim: SimulatorState, body: dict[str, Any]) -> dict[str, Any]:
    """Change the app's settings: any of ``subscription`` (``callback_url``, ``active``, ``fields``,
    ``object``; null removes it), ``system_user_token`` (``expires_at``, unix time, 0 for never; ``scopes``)
    and ``credit_line`` (``readable``, ``currency``, ``is_access_revoked``). Raises ValueError or TypeError in
    plain words."""
    current = settings(sim)
    if "subscription" in body:
        current["subscription"] = _subscription(body["subscription"], current["subscription"])
    if "system_user_token" in body:
        token = _section(body, "system_user_token")
        if "expires_at" in token and (not isinstance(token["expires_at"], int) or token["expires_at"] < 0):
            raise ValueError("system_user_token.expires_at must be a unix time (0: never expires)")
        if "scopes" in token and not _texts(token["scopes"]):
            raise ValueError("system_user_token.scopes must be a list of permission names")
        current["system_user_token"].update(token)
    if "credit_line" in body:
        line = _section(body, "credit_line")
        for flag in ("readable", "is_access_revoked"):
            if flag in line and not isinstance(line[flag], bool):
                raise ValueError(f"credit_line.{flag} must be true or false")
        if "currency" in line and line["currency"] not in CURRENCIES:
            raise ValueError(f"credit_line.currency must be one of {', '.join(CURRENCIES)}")
        current["credit_line"].update(line)
    sim.documents.put(KIND, KEY, current)
    return current


def _section(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body[name]
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be an object")
    return value


def _texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _subscription(value: Any, current: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError("subscription must be an object, or null for none")
    merged = {"object": WHATSAPP_OBJECT, "callback_url": "", "active": True, "fields": [], **(current or {}), **value}
    if not isinstance(merged["callback_url"], str) or not isinstance(merged["object"], str):
        raise TypeError("subscription.callback_url and subscription.object must be text")
    if not isinstance(merged["active"], bool):
        raise TypeError("subscription.active must be true or false")
    if not _texts(merged["fields"]):
        raise ValueError("subscription.fields must be a list of field names")
    return merged


# -- Graph ---------------------------------------------------------------------------------------------


def credit_line_id() -> str:
    """The partner's credit line the simulator knows (one, as a business portfolio usually has)."""
    return current_app.config.get("SIMULATOR_CREDIT_LINE_ID") or SIMULATED_CREDIT_LINE_ID


def list_subscriptions(sim: SimulatorState, app_id: str, _edge):
    """``GET /{app-id}/subscriptions``, with the app access token."""
    from .graph import _caller_kind

    if _caller_kind() != "app":
        raise SimError(15, "(#15) This method must be called with an app access_token.")
    if app_id != current_app.config["META_APP_ID"]:
        raise no_such_object(app_id)
    subscription = settings(sim)["subscription"]
    if subscription is None:
        return {"data": []}
    version = request.view_args.get("version") if request.view_args else None
    return {
        "data": [
            {
                "object": subscription["object"],
                "callback_url": subscription["callback_url"],
                "active": subscription["active"],
                "fields": [{"name": name, "version": version} for name in subscription["fields"]],
            }
        ]
    }


def debug_system_user_token(sim: SimulatorState) -> dict[str, Any]:
    """``debug_token`` of the partner's own system user token."""
    token = settings(sim)["system_user_token"]
    config = current_app.config
    data: dict[str, Any] = {
        "app_id": config["META_APP_ID"],
        "type": "SYSTEM_USER",
        "application": "esu simulated app",
        "data_access_expires_at": 0,
        "expires_at": token["expires_at"],
        "is_valid": True,
        "scopes": list(token["scopes"]),
        "granular_scopes": [{"scope": scope} for scope in token["scopes"]],
        "user_id": config.get("META_SYSTEM_USER_ID") or "",
    }
    expired = _expired(token, sim.clock())
    if expired:
        data["is_valid"] = False
        data["error"] = {"code": expired.code, "message": expired.message, "subcode": expired.subcode}
    return {"data": data}


def refuse_expired_system_user_token(sim: SimulatorState) -> None:
    """Every call made with the system user token fails once it has expired."""
    expired = _expired(settings(sim)["system_user_token"], sim.clock())
    if expired:
        raise expired


def _expired(token: dict[str, Any], now: float) -> SimError | None:
    expires_at = token["expires_at"]
    if not expires_at or expires_at > now:
        return None
    at = datetime.fromtimestamp(expires_at, UTC).strftime("%A, %d-%b-%y %H:%M:%S UTC")
    current = datetime.fromtimestamp(now, UTC).strftime("%A, %d-%b-%y %H:%M:%S UTC")
    return SimError(
        190, f"Error validating access token: Session has expired on {at}. The current time is {current}.", subcode=463
    )


def read_credit_line(sim: SimulatorState, node_id: str):
    """``GET /{extended-credit-id}`` with the system user token."""
    from .graph import _authorise

    _authorise(system_user=True)
    current = settings(sim)
    if "business_management" not in current["system_user_token"]["scopes"]:
        raise SimError(
            200, "(#200) The system user token needs the business_management permission to read this credit line"
        )
    line = current["credit_line"]
    if not line["readable"]:
        raise no_such_object(node_id)
    amount = {"amount": "0.00", "amount_in_hundredths": "0", "currency": line["currency"], "offsetted_amount": "0"}
    node = {
        "id": node_id,
        "credit_type": "WHATSAPP_BUSINESS",
        "legal_entity_name": line["legal_entity_name"],
        "balance": amount,
        "credit_available": {**amount, "amount": "1000.00", "amount_in_hundredths": "100000"},
        "owner_business": {
            "id": current_app.config.get("META_PARTNER_BUSINESS_ID") or "",
            "name": line["legal_entity_name"],
        },
        "is_access_revoked": line["is_access_revoked"],
        "is_shared_credit_line_enabled_for_mpa": False,
    }
    wanted = {name.strip() for name in (request.args.get("fields") or "id").split(",")} | {"id"}
    unknown = sorted(wanted - CREDIT_LINE_FIELDS)
    if unknown:
        raise SimError(100, f"(#100) Tried accessing nonexisting field ({unknown[0]}) on node type (ExtendedCredit)")
    return {key: value for key, value in node.items() if key in wanted}
