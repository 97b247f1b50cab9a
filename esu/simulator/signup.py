"""What a person finishing Embedded Signup produces in the simulator: the customer's business, WABA,
number and templates, and a fresh code for them (``POST /_meta/signup``)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from .objects import CODE_VERIFICATION_STATUSES, SCOPE_SHAPES, Business, Grant, Phone, Template, Waba
from .objects import as_data as _data

if TYPE_CHECKING:
    from .state import SimulatorState


def sign_up(sim: SimulatorState, options: dict[str, Any]) -> dict[str, Any]:
    """Create the customer's business, WABA (and number) and issue a fresh code for them."""
    scopes = options.get("scopes") or "current"
    if scopes not in SCOPE_SHAPES:
        raise ValueError(f"scopes must be one of {', '.join(SCOPE_SHAPES)}")
    verification = options.get("code_verification_status")
    if verification is None:
        verification = "VERIFIED" if options.get("phone_verified", True) else "NOT_VERIFIED"
    if verification not in CODE_VERIFICATION_STATUSES:
        raise ValueError(f"code_verification_status must be one of {', '.join(CODE_VERIFICATION_STATUSES)}")
    expires_in = options.get("expires_in")
    if expires_in is not None and (not isinstance(expires_in, int) or expires_in <= 0):
        raise ValueError("expires_in must be a positive whole number of seconds")
    business_name = str(options.get("business_name") or "Simulated Business")[:100]
    business = Business(sim.new_id(), business_name)
    waba = Waba(sim.new_id(), business.id, name=business_name, currency=str(options.get("currency") or "USD"),
                business_verification_status=str(options.get("business_verification_status") or "NOT_VERIFIED"))
    made: list[tuple[str, str, str | None, dict[str, Any]]] = [
        ("business", business.id, None, _data(business)), ("waba", waba.id, None, _data(waba))]
    event = "FINISH"
    phone_id = ""
    if options.get("coexistence"):
        event = "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING"
    if options.get("phone", True) is False:
        event = "FINISH_ONLY_WABA"
    else:
        phone = Phone(
            sim.new_id(),
            waba.id,
            display_phone_number=str(options.get("display_phone_number") or f"1555{secrets.randbelow(10**7):07d}"),
            verified_name=business_name,
            code_verification_status=verification,
        )
        if verification == "EXPIRED":
            phone.platform_type = "CLOUD_API"
            phone.status = "CONNECTED"
        if options.get("coexistence"):
            phone.is_on_biz_app = True
            phone.platform_type = "CLOUD_API"
            phone.status = "CONNECTED"
        made.append(("phone", phone.id, waba.id, _data(phone)))
        phone_id = phone.id
    made += [("template", template.id, waba.id, _data(template))
             for template in _seed_templates(sim, waba, int(options.get("templates", 3)))]
    code = "AQ" + secrets.token_urlsafe(48)
    made.append(("code", code, None, _data(Grant(business.id, [waba.id], sim.clock(), scopes=scopes,
                                                 expires_in=expires_in))))
    sim.documents.add(made)
    return {
        "code": code,
        "event": event,
        "business_id": business.id,
        "waba_id": waba.id,
        "phone_number_id": phone_id,
    }

def _seed_templates(sim: SimulatorState, waba: Waba, approved: int) -> list[Template]:
    body = {"type": "BODY", "text": "Hello {{1}}, your order {{2}} is confirmed.",
            "example": {"body_text": [["Ana", "#1042"]]}}
    templates = [Template(sim.new_id(), waba.id, f"order_update_{number + 1}", "en_US", "APPROVED",
                          "UTILITY", [body]) for number in range(approved)]
    templates += [Template(sim.new_id(), waba.id, f"promo_{status.lower()}", "en_US", status, "MARKETING",
                           [body]) for status in ("PENDING", "REJECTED")]
    return templates
