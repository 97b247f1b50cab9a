"""The simulator's stand-in for Meta's JavaScript SDK and the Embedded Signup dialog.

``/_meta/sdk.js`` (and ``/_meta/<locale>/sdk.js``, as Meta serves one per locale) defines ``window.FB``
(``init``, ``login``, ``getLoginStatus``) and calls ``window.fbAsyncInit`` as the real SDK does. ``FB.login``
opens ``/_meta/dialog/oauth`` in a popup that walks through the screens of Meta's flow; on Finish it gets a
code from ``POST /_meta/signup`` (the same issuing tests use), posts the ``WA_EMBEDDED_SIGNUP`` session
message to the page from its own window, and hands the code to ``sdk.js``, which calls the login callback.
Options on the dialog reach every path: an unverified number, no number, a WhatsApp Business app number, each
finish event, several WABAs, the v4 assets, a number's existing two-step verification PIN, the WABA's
currency, a reported error (CANCEL) or an ERROR ending, either order of code and session message, or no
session message at all. The dialog speaks the SDK's locale (``locale``, which the SDK passes on), as Meta's
does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, render_template, request, send_from_directory
from flask_babel import gettext

from ..i18n import N_
from ..security import allow_any_opener
from .meta_app import CURRENCIES
from .signup import ASSET_LISTS, FINISH_EVENTS, MAX_WABAS

bp = Blueprint("simulator_sdk", __name__, url_prefix="/_meta", static_folder="static",
               static_url_path="/sdk-static", template_folder="templates")

STATIC = Path(__file__).parent / "static"

#: Errors a person can report from the dialog, as Meta's flow shows them (embedded-signup-flow-errors.md).
REPORTABLE_ERRORS = (
    ("524126", N_("Your verified name violates WhatsApp guidelines. Please edit your verified name and try again.")),
    ("2388098", N_("You can only create a limited number of WhatsApp Business Accounts before your business "
                   "verification and WhatsApp account checks are complete.")),
    ("2494158", N_("You have requested your code too many times.")),
    ("3441049", N_("This number is registered to an existing WhatsApp account. To use this number, disconnect it "
                   "from the existing account.")),
)
COEXISTENCE = "whatsapp_business_app_onboarding"
#: A Facebook locale, as in connect.facebook.net/en_US/sdk.js.
SDK_LOCALE = re.compile(r"^[a-z]{2}_[A-Z]{2}\Z")
#: The assets a person may pick in the dialog, as Meta's "Choose assets" step names them.
ASSETS = tuple(zip(ASSET_LISTS, (N_("Ad accounts"), N_("Facebook Pages"), N_("Datasets (Pixels)"), N_("Catalogs"),
                                 N_("Instagram accounts")), strict=True))


@bp.get("/sdk.js")
@bp.get("/<locale>/sdk.js")
def sdk_js(locale: str | None = None):
    """The stand-in SDK script, served where META_SDK_URL points in simulator mode; the script reads the
    locale from its own address, as the dialog's language."""
    if locale is not None and not SDK_LOCALE.match(locale):
        abort(404)
    return send_from_directory(STATIC, "sdk.js", mimetype="text/javascript", max_age=0)


def _opener_origin(value: str | None) -> str:
    parts = urlsplit(value or "")
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
        abort(400, description="origin must be the scheme, host and port of the page that opened the dialog")
    return f"{parts.scheme}://{parts.netloc}"


def _business(extras: dict[str, Any]) -> dict[str, Any]:
    setup = extras.get("setup") if isinstance(extras.get("setup"), dict) else {}
    business = setup.get("business") if isinstance(setup.get("business"), dict) else {}
    phone = business.get("phone") if isinstance(business.get("phone"), dict) else {}
    address = business.get("address") if isinstance(business.get("address"), dict) else {}
    return {
        "name": str(business.get("name") or "")[:100],
        "email": str(business.get("email") or ""),
        "website": str(business.get("website") or ""),
        "country": str(address.get("country") or ""),
        "phone_code": str(phone.get("code") or ""),
        "phone_number": str(phone.get("number") or ""),
    }


@bp.get("/dialog/oauth")
def dialog():
    """The Embedded Signup dialog as the popup shows it, one screen at a time."""
    try:
        extras = json.loads(request.args.get("extras") or "{}")
    except ValueError:
        abort(400, description="extras must be JSON, as FB.login's extras option")
    if not isinstance(extras, dict):
        abort(400, description="extras must be a JSON object")
    # Meta's dialog answers "the window that spawned the flow" (embedded-signup/implementation.md), also a
    # signup page in an iframe on a client's site. The popup such a frame opens starts without an opener
    # policy: a policy of its own here would put the dialog in a new browsing context group, without its opener.
    allow_any_opener()
    return render_template(
        "meta_simulator/dialog.html",
        opener_origin=_opener_origin(request.args.get("origin")),
        app_id=request.args.get("client_id", ""),
        config_id=request.args.get("config_id", ""),
        business=_business(extras),
        coexistence=extras.get("featureType") == COEXISTENCE,
        errors=[(code, gettext(message)) for code, message in REPORTABLE_ERRORS],
        finish_events=FINISH_EVENTS,
        max_wabas=MAX_WABAS,
        assets=[(asset, gettext(label)) for asset, label in ASSETS],
        currencies=CURRENCIES,
        session_info_version=_session_info_version(extras),
    )


def _session_info_version(extras: dict[str, Any]) -> int | None:
    """The ``version`` the session messages carry: 3 for a flow launched with ``sessionInfoVersion: '3'``, as
    the pages that launch so show their messages (onboard-whatsapp-business-app-users.md, bypassing-the-phone-
    number-addition-screen.md, embedded-signup-flow-errors.md); none otherwise, as implementation.md shows the
    messages of a v4 flow (extras empty, versions.md)."""
    return 3 if str(extras.get("sessionInfoVersion")) == "3" else None
