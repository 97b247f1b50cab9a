"""The simulator's memory: businesses, WABAs, numbers, templates, codes, tokens, faults.

It lives in a database (:mod:`.store`), so that every worker of a server, and every thread, sees the same
objects, codes and faults. Its clock can be replaced, so tests move time instead of sleeping.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any

from .store import Documents, Row, new_key

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
#: A number's ``code_verification_status`` at signup. EXPIRED is what recorded responses show on numbers
#: already CONNECTED on Cloud API (platform_type CLOUD_API): the simulator makes such a number connected.
CODE_VERIFICATION_STATUSES = ("VERIFIED", "NOT_VERIFIED", "EXPIRED")


#: The codes Meta's envelope marks ``is_transient: true`` (temporary downtime and throttling); every
#: other one answers ``false``. Graph errors page ("Error codes": API Unknown, API Service, rate limits).
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 341, 613, 80007, 130429, 131000, 131016, 131056, 133004})

#: Meta's ``type`` for a node that does not exist (or that the token cannot see).
MISSING_OBJECT_TYPE = "GraphMethodException"


class SimError(Exception):
    """An error the simulator answers in Meta's whole envelope (Graph API "Handling errors": ``message``,
    ``type``, ``code``, ``error_subcode``, ``error_user_title``, ``error_user_msg``, ``error_data``,
    ``is_transient``, ``fbtrace_id``)."""

    def __init__(self, code: int, message: str | None = None, *, subcode: int | None = None,
                 http_status: int | None = None, error_type: str | None = None, is_transient: bool | None = None,
                 user_title: str | None = None, user_msg: str | None = None, details: Any = None,
                 headers: dict[str, str] | None = None):
        default_status, default_type, default_message = ERROR_TEXTS.get(
            code, (400, "OAuthException", f"(#{code}) Simulated error")
        )
        super().__init__(message or default_message)
        self.code = code
        self.message = message or default_message
        self.subcode = subcode
        self.http_status = http_status or default_status
        self.error_type = error_type or default_type
        self.is_transient = code in TRANSIENT_CODES if is_transient is None else bool(is_transient)
        # Meta's docs give no person's words for the simulated codes: only a fault adds them.
        self.user_title = user_title
        self.user_msg = user_msg
        self.details = details
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.error_type,
            "code": self.code,
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.user_title:
            error["error_user_title"] = self.user_title
        if self.user_msg:
            error["error_user_msg"] = self.user_msg
        # WhatsApp's errors carry ``error_data.details``: a dict given whole, a string as the details.
        details = self.details if self.details is not None else self.user_msg or self.message
        error["error_data"] = (details if isinstance(details, dict)
                               else {"messaging_product": "whatsapp", "details": str(details)})
        error["is_transient"] = self.is_transient
        error["fbtrace_id"] = "A" + secrets.token_urlsafe(15)
        return {"error": error}


def no_such_object(node_id: str, method: str = "GET") -> SimError:
    """Graph's answer for an id it does not know or the token cannot see (subcode 33)."""
    return SimError(100, f"Unsupported {method.lower()} request. Object with ID '{node_id}' does not exist, "
                         "cannot be loaded due to missing permissions, or does not support this operation. "
                         "Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
                    subcode=33, error_type=MISSING_OBJECT_TYPE)


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
    messaging_limit_tier: str = "TIER_250"
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
            "messaging_limit_tier": self.messaging_limit_tier,
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
    #: Seconds the exchanged token lives, when the code exchange says so (``expires_in``).
    expires_in: int | None = None


@dataclass
class Fault:
    error_code: int
    remaining: int
    subcode: int | None = None
    #: Calls of the operation let through before this fault starts failing them.
    after: int = 0
    #: What the envelope says besides the code; None keeps the code's own (see SimError).
    is_transient: bool | None = None
    user_title: str | None = None
    user_msg: str | None = None
    error_data: Any = None
    #: A rate limit: how long the usage headers say until access is regained.
    wait_minutes: int | None = None

    def error(self, business_id: str | None = None) -> SimError:
        headers = {}
        if self.wait_minutes is not None:
            # Graph API "Rate limiting": X-App-Usage in percentages, X-Business-Use-Case-Usage by business id
            # with estimated_time_to_regain_access in minutes.
            headers["X-App-Usage"] = json.dumps({"call_count": 100, "total_time": 100, "total_cputime": 100})
            headers["X-Business-Use-Case-Usage"] = json.dumps({business_id or "0": [{
                "type": "whatsapp_business_management", "call_count": 100, "total_cputime": 100,
                "total_time": 100, "estimated_time_to_regain_access": self.wait_minutes}]})
        return SimError(self.error_code, subcode=self.subcode, is_transient=self.is_transient,
                        user_title=self.user_title, user_msg=self.user_msg, details=self.error_data,
                        headers=headers)


#: The key of the document that holds the latency, and the parent it is under: every operation's.
LATENCY = "latency"
EVERY_OPERATION = "*"

#: Each kind of object the simulator keeps, and the type it is read back as.
KINDS: dict[str, type] = {
    "business": Business,
    "waba": Waba,
    "phone": Phone,
    "template": Template,
    "code": Grant,
    "token": Grant,
    "allocation": dict,
}


def _data(thing: Any) -> dict[str, Any]:
    return asdict(thing) if is_dataclass(thing) else dict(thing)


def _fault(data: dict[str, Any]) -> Fault:
    return Fault(**{name: value for name, value in data.items() if name != "operation"})


class Objects(Mapping):
    """The objects of one kind, by id, as they are stored now: each read is a fresh copy, and writing to
    one changes nothing (see :meth:`SimulatorState.change`)."""

    def __init__(self, documents: Documents, kind: str):
        self.documents = documents
        self.kind = kind

    def __getitem__(self, key: str) -> Any:
        found = self.documents.get(self.kind, key)
        if found is None:
            raise KeyError(key)
        return KINDS[self.kind](**found[1])

    def __iter__(self) -> Iterator[str]:
        return iter(self.documents.keys(self.kind))

    def __len__(self) -> int:
        return self.documents.count(self.kind)


def _objects(kind: str) -> property:
    """The objects of ``kind``, read from the documents each time (``state.wabas[waba_id]``)."""
    return property(lambda state: Objects(state.documents, kind))


class SimulatorState:
    """What the simulator knows, kept in :class:`Documents` that every worker shares.

    ``in_flight`` and ``max_in_flight`` count the Graph calls this process is serving; the clock is this
    process's too, so a test can move time instead of sleeping.
    """

    def __init__(self, documents: Documents, clock=time.time):
        self.documents = documents
        self.clock = clock
        self._gauge = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    def reset(self) -> None:
        """Forget every object, code, token, fault and call."""
        self.documents.clear()
        with self._gauge:
            self.in_flight = self.max_in_flight = 0

    @staticmethod
    def new_id() -> str:
        """A fresh id, as long as Meta's."""
        return str(10**14 + secrets.randbelow(9 * 10**14))

    # -- objects ---------------------------------------------------------------------------------

    businesses = _objects("business")
    wabas = _objects("waba")
    phones = _objects("phone")
    templates = _objects("template")
    codes = _objects("code")
    tokens = _objects("token")
    allocations = _objects("allocation")

    def node(self, node_id: str) -> tuple[str, Any] | None:
        """The number, WABA or credit allocation with this id, and which of them it is."""
        found = self.documents.find(node_id, ("phone", "waba", "allocation"))
        return (found[0], KINDS[found[0]](**found[1])) if found else None

    def listed(self, kind: str, parent: str) -> list[Any]:
        """The objects of ``kind`` under ``parent`` (a WABA's numbers or templates), oldest first."""
        return [KINDS[kind](**data) for _key, _version, data in self.documents.rows(kind, (parent,))]

    def add(self, kind: str, key: str, thing: Any, parent: str | None = None) -> None:
        self.documents.add([(kind, key, parent, _data(thing))])

    def change(self, kind: str, key: str, change: Callable[[Any], Any]) -> Any:
        """Apply ``change`` to the object and store it; if another worker changed the object meanwhile,
        again on what that one stored. Answers what ``change`` answers; an exception from it stores nothing."""

        def on_data(data: dict[str, Any]) -> Any:
            thing = KINDS[kind](**data)
            result = change(thing)
            data.clear()
            data.update(_data(thing))
            return result

        return self.documents.change(kind, key, on_data)

    # -- the Graph calls served ------------------------------------------------------------------

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Every Graph call served, by any worker: operation, method, path, and how it was authorised."""
        return [data for _key, _version, data in self.documents.rows("call")]

    def record_call(self, call: dict[str, Any]) -> None:
        self.documents.add([("call", new_key(), None, call)])

    @contextmanager
    def serving(self) -> Iterator[None]:
        """Count a Graph call in ``in_flight`` while it is served: shows the app's calls overlap."""
        with self._gauge:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._gauge:
                self.in_flight -= 1

    # -- what a person finishing Embedded Signup produces ----------------------------------------

    def signup(self, options: dict[str, Any]) -> dict[str, Any]:
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
        business = Business(self.new_id(), business_name)
        waba = Waba(self.new_id(), business.id, name=business_name, currency=str(options.get("currency") or "USD"),
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
                self.new_id(),
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
                 for template in self._seed_templates(waba, int(options.get("templates", 3)))]
        code = "AQ" + secrets.token_urlsafe(48)
        made.append(("code", code, None, _data(Grant(business.id, [waba.id], self.clock(), scopes=scopes,
                                                     expires_in=expires_in))))
        self.documents.add(made)
        return {
            "code": code,
            "event": event,
            "business_id": business.id,
            "waba_id": waba.id,
            "phone_number_id": phone_id,
        }

    def _seed_templates(self, waba: Waba, approved: int) -> list[Template]:
        body = {"type": "BODY", "text": "Hello {{1}}, your order {{2}} is confirmed.",
                "example": {"body_text": [["Ana", "#1042"]]}}
        templates = [Template(self.new_id(), waba.id, f"order_update_{number + 1}", "en_US", "APPROVED",
                              "UTILITY", [body]) for number in range(approved)]
        templates += [Template(self.new_id(), waba.id, f"promo_{status.lower()}", "en_US", status, "MARKETING",
                               [body]) for status in ("PENDING", "REJECTED")]
        return templates

    # -- faults and latency ----------------------------------------------------------------------
    # Latency is stored as a fault every call meets (under LATENCY), so one read finds both.

    def ahead(self, operation: str) -> tuple[int, list[Row]]:
        """What a call of ``operation`` meets, in one read: the latency added to every call, in
        milliseconds, and the faults queued for the operation (for :meth:`take_fault`)."""
        latency_ms, queue = 0, []
        for key, version, data in self.documents.rows("fault", (operation, EVERY_OPERATION)):
            if key == LATENCY:
                latency_ms = data["latency_ms"]
            else:
                queue.append((key, version, data))
        return latency_ms, queue

    @property
    def latency_ms(self) -> int:
        """Milliseconds added to every Graph call."""
        found = self.documents.get("fault", LATENCY)
        return found[1]["latency_ms"] if found else 0

    @latency_ms.setter
    def latency_ms(self, value: int) -> None:
        self.documents.put("fault", LATENCY, {"latency_ms": value}, parent=EVERY_OPERATION)

    @property
    def faults(self) -> dict[str, list[Fault]]:
        """The faults still to come, by operation, in the order they were added."""
        pending: dict[str, list[Fault]] = {}
        for key, _version, data in self.documents.rows("fault"):
            if key != LATENCY:
                pending.setdefault(data["operation"], []).append(_fault(data))
        return pending

    def add_fault(self, operation: str, error_code: int, times: int, subcode: int | None = None,
                  after: int = 0, **envelope: Any) -> None:
        """Queue ``times`` failures of ``operation``; ``envelope`` holds Fault's other fields."""
        if times > 0:
            fault = {"operation": operation, **asdict(Fault(error_code, times, subcode, after, **envelope))}
            self.documents.add([("fault", new_key(), operation, fault)])

    def clear_faults(self) -> None:
        """Remove every fault, and the latency with them."""
        self.documents.clear("fault")

    def take_fault(self, operation: str, queue: list[Row] | None = None) -> Fault | None:
        """The fault this call of ``operation`` meets, if any: the oldest one still to come counts the call
        (a call let through first, or one more failure), and is gone after its last failure. ``queue`` is
        the operation's faults as :meth:`ahead` read them; they are read again if another call took one
        meanwhile."""
        if queue is None:
            queue = self.documents.rows("fault", (operation,))
        while queue:
            key, version, data = queue[0]
            fault = _fault(data)
            if fault.after > 0:
                fault.after -= 1
                met = None
            else:
                fault.remaining -= 1
                met = fault
            if fault.remaining > 0:
                stored = self.documents.swap("fault", key, version, {"operation": operation, **asdict(fault)})
            else:
                stored = self.documents.drop("fault", key, version)
            if stored:
                return met
            queue = self.documents.rows("fault", (operation,))
        return None
