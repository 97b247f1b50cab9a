"""The pre-fill of Meta's Embedded Signup dialog, in the one shape esu knows: FB.login's ``extras.setup``
(pre-filling-screens.md), e.g. ``{"business": {"name": …, "email": …, "phone": {"code": 1, "number": …}}}``.

A page stores it so (``SignupPage.prefill``), the admin's form reads and writes it so, the widget's macro
takes an override so, and the widget passes it to FB.login as it is, only cleaned by ``for_login``.
"""

from __future__ import annotations

from typing import Any

#: The objects Meta's ``extras.setup`` accepts; esu's admin writes ``business`` only.
SETUP_KEYS = ("business", "preVerifiedPhone", "phone", "whatsAppBusinessAccount")


def _drop_blanks(value: Any) -> Any:
    """The pre-fill without empty fields, which Meta would show as blanks or refuse."""
    if isinstance(value, dict):
        kept = {key: _drop_blanks(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item not in (None, "", {}, [])}
    return value


def from_business(business: dict[str, Any]) -> dict[str, Any]:
    """``extras.setup`` holding the business portfolio's details (empty when there are none)."""
    business = _drop_blanks(business)
    return {"business": business} if business else {}


def business_of(setup: dict[str, Any] | None) -> dict[str, Any]:
    """The business portfolio's details in a stored ``extras.setup``."""
    business = (setup or {}).get("business")
    return business if isinstance(business, dict) else {}


def for_login(setup: dict[str, Any] | None) -> dict[str, Any]:
    """``extras.setup`` as FB.login gets it: blanks dropped, the calling code an integer as Meta documents.
    Raises ValueError for a key Meta does not know (the flat business shape of old: ``{"name": …}``)."""
    setup = _drop_blanks(dict(setup or {}))
    unknown = sorted(set(setup) - set(SETUP_KEYS))
    if unknown:
        raise ValueError(f"pre-fill is Meta's extras.setup, e.g. {{'business': {{'name': …}}}}; "
                         f"unknown keys: {', '.join(unknown)}")
    phone = business_of(setup).get("phone")
    if isinstance(phone, dict) and isinstance(phone.get("code"), str):
        code = phone["code"].lstrip("+")
        if code.isascii() and code.isdigit():
            setup["business"] = {**setup["business"], "phone": {**phone, "code": int(code)}}
    return setup
