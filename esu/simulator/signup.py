"""What a person finishing Embedded Signup produces in the simulator: the customer's business, WABAs,
numbers and templates, a fresh code for them, and Meta's finish message (``POST /_meta/signup``).

Three parts, each its own function: ``signup_options`` reads and checks the options, ``make_customer``
builds the objects, ``finish_message`` says what Meta's ``WA_EMBEDDED_SIGNUP`` message carries."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .objects import CODE_VERIFICATION_STATUSES, QUALITY_RATINGS, SCOPE_SHAPES, Business, Grant, Phone, Template, Waba
from .objects import as_data as _data

if TYPE_CHECKING:
    from .state import SimulatorState

#: The events that end the flow successfully (embedded-signup/implementation.md, FLOW_FINISH_TYPE).
FINISH_EVENTS = ("FINISH", "FINISH_ONLY_WABA", "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING", "FINISH_OBO_MIGRATION",
                 "FINISH_GRANT_ONLY_API_ACCESS")
#: The assets a v4 configuration may let the customer pick (option name → the message's list), as in
#: implementation.md's "Successful flow completion structure".
ASSET_LISTS = {"ad_accounts": "ad_account_ids", "pages": "page_ids", "datasets": "dataset_ids",
               "catalogs": "catalog_ids", "instagram_accounts": "instagram_account_ids"}
MAX_WABAS = 10
#: Finishes that hand over an account already in use: its number is connected to Cloud API already (an
#: on-behalf-of migration; App-Only Install, app-only-install.md, grants access to existing assets).
NUMBER_IN_USE = ("FINISH_OBO_MIGRATION", "FINISH_GRANT_ONLY_API_ACCESS")


@dataclass
class SignupOptions:
    """``POST /_meta/signup``'s options, checked."""

    finish: str
    wabas: int
    phone: bool
    assets: list[str]
    scopes: str
    verification: str
    expires_in: int | None
    business_name: str
    currency: str
    business_verification_status: str
    display_phone_number: str | None
    templates: int
    coexistence: bool
    #: The PIN the number already has (two-step verification), or None.
    two_step_pin: str | None = None
    #: A WhatsApp Business app number's owner shares the chat history (false: they declined).
    share_history: bool = True
    #: The number's ``quality_rating``, one of QUALITY_RATINGS.
    quality_rating: str = "UNKNOWN"


def signup_options(options: dict[str, Any]) -> SignupOptions:
    """The options, checked; ValueError says what is wrong with one."""
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
    coexistence = bool(options.get("coexistence"))
    finish = options.get("finish")
    if finish is None:  # from the older options: no number, or a WhatsApp Business app number
        finish = ("FINISH_ONLY_WABA" if options.get("phone", True) is False
                  else "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING" if coexistence else "FINISH")
    if finish not in FINISH_EVENTS:
        raise ValueError(f"finish must be one of {', '.join(FINISH_EVENTS)}")
    wabas = options.get("wabas", 1)
    if not isinstance(wabas, int) or isinstance(wabas, bool) or not 1 <= wabas <= MAX_WABAS:
        raise ValueError(f"wabas must be a whole number from 1 to {MAX_WABAS}")
    phone = options.get("phone", finish != "FINISH_ONLY_WABA")
    if not isinstance(phone, bool):
        raise ValueError("phone must be true or false")
    share_history = options.get("share_history", True)
    if not isinstance(share_history, bool):
        raise ValueError("share_history must be true or false")
    quality_rating = options.get("quality_rating") or "UNKNOWN"
    if quality_rating not in QUALITY_RATINGS:
        raise ValueError(f"quality_rating must be one of {', '.join(QUALITY_RATINGS)}")
    assets = options.get("assets") or []
    if not isinstance(assets, list) or any(asset not in ASSET_LISTS for asset in assets):
        raise ValueError(f"assets must be a list of {', '.join(ASSET_LISTS)}")
    return SignupOptions(
        finish=finish, wabas=wabas, phone=phone, assets=list(dict.fromkeys(assets)), scopes=scopes,
        verification=verification, expires_in=expires_in,
        business_name=str(options.get("business_name") or "Simulated Business")[:100],
        currency=str(options.get("currency") or "USD"),
        business_verification_status=str(options.get("business_verification_status") or "NOT_VERIFIED"),
        display_phone_number=options.get("display_phone_number"), templates=int(options.get("templates", 3)),
        coexistence=coexistence or finish == "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING",
        two_step_pin=two_step_pin(options), share_history=share_history, quality_rating=quality_rating,
    )


def sign_up(sim: SimulatorState, options: dict[str, Any]) -> dict[str, Any]:
    """Create the customer's business, WABAs (and numbers) and a fresh code for them; answer the code, the
    finish event and Meta's message ``data``, with the first WABA's ids beside them as before."""
    chosen = signup_options(options)
    business, wabas, phones, assets = make_customer(sim, chosen)
    data = finish_message(chosen, business, wabas, phones, assets)
    code = "AQ" + secrets.token_urlsafe(48)
    sim.documents.add([("code", code, None, _data(Grant(business.id, [waba.id for waba in wabas], sim.clock(),
                                                        scopes=chosen.scopes, expires_in=chosen.expires_in)))])
    return {
        "code": code,
        "event": chosen.finish,
        "data": data,
        "business_id": business.id,
        "waba_id": wabas[0].id,
        "phone_number_id": phones[0].id if phones else "",
    }


def make_customer(sim: SimulatorState, chosen: SignupOptions) -> tuple[Business, list[Waba], list[Phone],
                                                                        dict[str, list[str]]]:
    """The customer's business, its WABAs (each with its number, unless none, and its templates) and the
    other assets picked, stored in the simulator."""
    business = Business(sim.new_id(), chosen.business_name)
    made: list[tuple[str, str, str | None, dict[str, Any]]] = [("business", business.id, None, _data(business))]
    wabas: list[Waba] = []
    phones: list[Phone] = []
    for index in range(chosen.wabas):
        name = chosen.business_name if index == 0 else f"{chosen.business_name} {index + 1}"
        waba = Waba(sim.new_id(), business.id, name=name, currency=chosen.currency,
                    business_verification_status=chosen.business_verification_status)
        made.append(("waba", waba.id, None, _data(waba)))
        wabas.append(waba)
        if chosen.phone:
            phone = _make_phone(sim, chosen, waba, first=index == 0)
            made.append(("phone", phone.id, waba.id, _data(phone)))
            phones.append(phone)
        made += [("template", template.id, waba.id, _data(template))
                 for template in _seed_templates(sim, waba, chosen.templates)]
    sim.documents.add(made)
    assets = {ASSET_LISTS[kind]: [sim.new_id()] for kind in chosen.assets}
    return business, wabas, phones, assets


def _make_phone(sim: SimulatorState, chosen: SignupOptions, waba: Waba, *, first: bool) -> Phone:
    display = chosen.display_phone_number if first and chosen.display_phone_number else None
    phone = Phone(sim.new_id(), waba.id,
                  display_phone_number=str(display or f"1555{secrets.randbelow(10**7):07d}"),
                  verified_name=waba.name, code_verification_status=chosen.verification,
                  quality_rating=chosen.quality_rating)
    if chosen.verification == "EXPIRED" or chosen.finish in NUMBER_IN_USE:
        phone.platform_type = "CLOUD_API"
        phone.status = "CONNECTED"
    if chosen.coexistence:
        phone.is_on_biz_app = True
        phone.platform_type = "CLOUD_API"
        phone.status = "CONNECTED"
        phone.shares_history = chosen.share_history
    phone.pin = chosen.two_step_pin
    return phone


def finish_message(chosen: SignupOptions, business: Business, wabas: list[Waba], phones: list[Phone],
                   assets: dict[str, list[str]]) -> dict[str, Any]:
    """The ``data`` of Meta's ``WA_EMBEDDED_SIGNUP`` message (implementation.md, "Successful flow completion
    structure"): the number (absent without one), the WABA and the business; each picked asset's list;
    ``waba_ids`` only for a multi-WABA flow. Two finishes carry less, as their own pages show them:
    coexistence only the WABA (onboard-whatsapp-business-app-users.md, "Onboarding business customers"), so
    the partner lists the WABA's numbers to find it; FINISH_ONLY_WABA the number and the WABA, no business
    (bypassing-the-phone-number-addition-screen.md), the number's id empty when the person added none (the
    page names the key without saying what it holds then)."""
    data: dict[str, Any] = {}
    if chosen.finish == "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING":
        data["waba_id"] = wabas[0].id
    elif chosen.finish == "FINISH_ONLY_WABA":
        data["phone_number_id"] = phones[0].id if phones else ""
        data["waba_id"] = wabas[0].id
    else:
        if phones:
            data["phone_number_id"] = phones[0].id
        data["waba_id"] = wabas[0].id
        data["business_id"] = business.id
    data.update(assets)
    if len(wabas) > 1:
        data["waba_ids"] = [waba.id for waba in wabas]
    return data


def two_step_pin(options: dict[str, Any]) -> str | None:
    """``two_step_pin``: the number already has two-step verification with this PIN, so registering it with
    any other answers 133005 (business-phone-numbers/two-step-verification.md, register-a-business-phone-number.md)."""
    pin = options.get("two_step_pin")
    if pin is None:
        return None
    if not isinstance(pin, str) or not pin.isascii() or not pin.isdigit() or len(pin) != 6:
        raise ValueError("two_step_pin must be six digits, as a string")
    return pin


def _seed_templates(sim: SimulatorState, waba: Waba, approved: int) -> list[Template]:
    body = {"type": "BODY", "text": "Hello {{1}}, your order {{2}} is confirmed.",
            "example": {"body_text": [["Ana", "#1042"]]}}
    templates = [Template(sim.new_id(), waba.id, f"order_update_{number + 1}", "en_US", "APPROVED",
                          "UTILITY", [body]) for number in range(approved)]
    templates += [Template(sim.new_id(), waba.id, f"promo_{status.lower()}", "en_US", status, "MARKETING",
                           [body]) for status in ("PENDING", "REJECTED")]
    return templates
