"""The simulator's memory: businesses, WABAs, numbers, templates, codes, tokens, faults.

It lives in the process, apart from the app's database, and is guarded by one lock so a threaded
server can serve concurrent calls. Its clock can be replaced, so tests move time instead of sleeping.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

CODE_TTL_SECONDS = 30
REGISTER_LIMIT = 10
REGISTER_WINDOW_SECONDS = 72 * 3600
VERIFICATION_CODE = "123456"

# HTTP status and message Meta answers with for the error codes a fault can inject.
ERROR_TEXTS: dict[int, tuple[int, str, str]] = {
    1: (500, "OAuthException", "An unknown error occurred"),
    2: (503, "OAuthException", "An unexpected error has occurred. Please retry your request later."),
    4: (400, "OAuthException", "(#4) Application request limit reached"),
    10: (403, "OAuthException", "(#10) Application does not have permission for this action"),
    17: (400, "OAuthException", "(#17) User request limit reached"),
    32: (400, "OAuthException", "(#32) Page request limit reached"),
    100: (400, "OAuthException", "(#100) Invalid parameter"),
    190: (401, "OAuthException", "Error validating access token: The session has been invalidated."),
    200: (403, "OAuthException", "(#200) Permissions error"),
    613: (400, "OAuthException", "(#613) Calls to this api have exceeded the rate limit."),
    80007: (400, "OAuthException", "(#80007) Rate limit issues"),
    130429: (400, "OAuthException", "(#130429) Rate limit hit"),
    131000: (500, "OAuthException", "(#131000) Something went wrong"),
    131016: (503, "OAuthException", "(#131016) Service unavailable"),
    131056: (400, "OAuthException", "(#131056) (Business Account, Consumer Account) pair rate limit hit"),
    133004: (503, "OAuthException", "(#133004) Server Temporarily Unavailable"),
    133005: (400, "OAuthException", "(#133005) Two step verification PIN Mismatch"),
    133016: (400, "OAuthException", "(#133016) Account register deregister rate limit exceeded"),
    136024: (400, "OAuthException", "(#136024) Phone number already verified"),
}

OPERATIONS = (
    "oauth_access_token",
    "debug_token",
    "waba",
    "subscribed_apps",
    "assigned_users",
    "credit_sharing",
    "register",
    "phone_number",
    "phone_numbers",
    "request_code",
    "verify_code",
    "smb_app_data",
    "message_templates",
    "assigned_whatsapp_business_accounts",
)

#: ``debug_token``'s ``granular_scopes`` for Embedded Signup tokens: "current" is what Meta has answered
#: since June 2026 (no WABA ``target_ids``), "legacy" the documented shape with them.
SCOPE_SHAPES = ("current", "legacy")


class SimError(Exception):
    """An error the simulator answers in Meta's envelope."""

    def __init__(self, code: int, message: str | None = None, *, subcode: int | None = None,
                 http_status: int | None = None, error_type: str | None = None):
        default_status, default_type, default_message = ERROR_TEXTS.get(
            code, (400, "OAuthException", f"(#{code}) Simulated error")
        )
        super().__init__(message or default_message)
        self.code = code
        self.message = message or default_message
        self.subcode = subcode
        self.http_status = http_status or default_status
        self.error_type = error_type or default_type

    def envelope(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.error_type,
            "code": self.code,
            "fbtrace_id": "A" + secrets.token_urlsafe(15),
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.code in (1, 2, 4, 17, 32, 613, 80007, 130429, 131000, 131016, 131056, 133004):
            error["is_transient"] = True
        return {"error": error}


@dataclass
class Business:
    id: str
    name: str


@dataclass
class Waba:
    id: str
    business_id: str
    name: str
    currency: str = "USD"
    timezone_id: str = "1"
    namespace: str = field(default_factory=lambda: str(uuid.uuid4()).replace("-", "_"))
    account_review_status: str = "APPROVED"
    business_verification_status: str = "NOT_VERIFIED"
    country: str = "US"
    subscribed_apps: list[str] = field(default_factory=list)
    assigned_users: dict[str, list[str]] = field(default_factory=dict)
    primary_funding_id: str | None = None

    def fields(self, business: Business) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "currency": self.currency,
            "timezone_id": self.timezone_id,
            "message_template_namespace": self.namespace,
            "account_review_status": self.account_review_status,
            "business_verification_status": self.business_verification_status,
            "country": self.country,
            "ownership_type": "CLIENT_OWNED",
            "primary_funding_id": self.primary_funding_id,
            "owner_business_info": {"id": business.id, "name": business.name},
        }


@dataclass
class Phone:
    id: str
    waba_id: str
    display_phone_number: str
    verified_name: str
    code_verification_status: str = "VERIFIED"
    status: str = "PENDING"
    quality_rating: str = "UNKNOWN"
    name_status: str = "APPROVED"
    platform_type: str = "NOT_APPLICABLE"
    is_on_biz_app: bool = False
    pin: str | None = None
    register_calls: list[float] = field(default_factory=list)
    #: How each verification code was asked for (SMS, VOICE), oldest first.
    code_requests: list[str] = field(default_factory=list)
    synced: list[str] = field(default_factory=list)

    def fields(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "display_phone_number": self.display_phone_number,
            "verified_name": self.verified_name,
            "code_verification_status": self.code_verification_status,
            "status": self.status,
            "quality_rating": self.quality_rating,
            "name_status": self.name_status,
            "platform_type": self.platform_type,
            "is_on_biz_app": self.is_on_biz_app,
            "account_mode": "LIVE",
            "throughput": {"level": "STANDARD"},
        }


@dataclass
class Template:
    id: str
    waba_id: str
    name: str
    language: str
    status: str
    category: str
    components: list[dict[str, Any]]

    def fields(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "components": self.components,
            "parameter_format": "POSITIONAL",
        }


@dataclass
class Grant:
    """What a code, then the token it was exchanged for, gives access to."""

    business_id: str
    waba_ids: list[str]
    issued_at: float
    used: bool = False
    #: How ``debug_token`` describes the token: one of SCOPE_SHAPES.
    scopes: str = "current"
    #: The business integration system user the token acts as (``debug_token``'s ``user_id``).
    user_id: str = ""


@dataclass
class Fault:
    error_code: int
    remaining: int
    subcode: int | None = None
    #: Calls of the operation let through before this fault starts failing them.
    after: int = 0


class SimulatorState:
    def __init__(self, clock=time.time):
        self.lock = threading.RLock()
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.businesses: dict[str, Business] = {}
            self.wabas: dict[str, Waba] = {}
            self.phones: dict[str, Phone] = {}
            self.templates: dict[str, Template] = {}
            self.codes: dict[str, Grant] = {}
            self.tokens: dict[str, Grant] = {}
            self.allocations: dict[str, dict[str, str]] = {}
            self.faults: dict[str, list[Fault]] = {}
            self.latency_ms = 0
            #: Every Graph call served: operation, method, path, and how it was authorised.
            self.calls: list[dict[str, Any]] = []
            #: Graph calls being served right now, and the most at once: shows the app's calls overlap.
            self.in_flight = 0
            self.max_in_flight = 0
            self._next_id = 100000000000000 + secrets.randbelow(10**12)

    def new_id(self) -> str:
        with self.lock:
            self._next_id += 1 + secrets.randbelow(97)
            return str(self._next_id)

    # -- what a person finishing Embedded Signup produces ----------------------------------------

    def signup(self, options: dict[str, Any]) -> dict[str, Any]:
        """Create the customer's business, WABA (and number) and issue a fresh code for them."""
        scopes = options.get("scopes") or "current"
        if scopes not in SCOPE_SHAPES:
            raise ValueError(f"scopes must be one of {', '.join(SCOPE_SHAPES)}")
        with self.lock:
            business_name = str(options.get("business_name") or "Simulated Business")[:100]
            business = Business(self.new_id(), business_name)
            self.businesses[business.id] = business
            waba = Waba(self.new_id(), business.id, name=business_name,
                        currency=str(options.get("currency") or "USD"))
            self.wabas[waba.id] = waba
            event = "FINISH"
            phone_id = ""
            if options.get("coexistence"):
                event = "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING"
            if options.get("phone", True) is False:
                event = "FINISH_ONLY_WABA"
            else:
                phone = Phone(
                    self.new_id(),
                    waba.id,
                    display_phone_number=str(options.get("display_phone_number") or f"1555{secrets.randbelow(10**7):07d}"),
                    verified_name=business_name,
                    code_verification_status="VERIFIED" if options.get("phone_verified", True) else "NOT_VERIFIED",
                )
                if options.get("coexistence"):
                    phone.is_on_biz_app = True
                    phone.platform_type = "CLOUD_API"
                    phone.status = "CONNECTED"
                self.phones[phone.id] = phone
                phone_id = phone.id
            self._seed_templates(waba, int(options.get("templates", 3)))
            code = "AQ" + secrets.token_urlsafe(48)
            self.codes[code] = Grant(business.id, [waba.id], self.clock(), scopes=scopes)
            return {
                "code": code,
                "event": event,
                "business_id": business.id,
                "waba_id": waba.id,
                "phone_number_id": phone_id,
            }

    def _seed_templates(self, waba: Waba, approved: int) -> None:
        body = {"type": "BODY", "text": "Hello {{1}}, your order {{2}} is confirmed.",
                "example": {"body_text": [["Ana", "#1042"]]}}
        for number in range(approved):
            template = Template(self.new_id(), waba.id, f"order_update_{number + 1}", "en_US", "APPROVED",
                                "UTILITY", [body])
            self.templates[template.id] = template
        for status in ("PENDING", "REJECTED"):
            template = Template(self.new_id(), waba.id, f"promo_{status.lower()}", "en_US", status,
                                "MARKETING", [body])
            self.templates[template.id] = template

    # -- faults ----------------------------------------------------------------------------------

    def add_fault(self, operation: str, error_code: int, times: int, subcode: int | None = None,
                  after: int = 0) -> None:
        with self.lock:
            self.faults.setdefault(operation, []).append(Fault(error_code, times, subcode, after))

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()
            self.latency_ms = 0

    def take_fault(self, operation: str) -> Fault | None:
        with self.lock:
            queue = self.faults.get(operation) or []
            while queue and queue[0].remaining <= 0:
                queue.pop(0)
            if not queue:
                return None
            if queue[0].after > 0:
                queue[0].after -= 1
                return None
            queue[0].remaining -= 1
            return queue[0]
