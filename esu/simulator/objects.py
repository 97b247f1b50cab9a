"""The objects the simulator keeps: businesses, WABAs, numbers, templates, grants (codes and tokens),
faults. Each is a dataclass stored as its fields (:mod:`.store`)."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any

from .errors import SimError

#: ``debug_token``'s ``granular_scopes`` for Embedded Signup tokens: "current" is what Meta has answered
#: since June 2026 (no WABA ``target_ids``), "legacy" the documented shape with them.
SCOPE_SHAPES = ("current", "legacy")
#: A number's ``code_verification_status`` at signup, in each spelling Meta's docs show: VERIFIED and
#: UNVERIFIED (reference/whatsapp-business-phone-number/whatsapp-business-account-phone-number-api.md, the
#: field's values), NOT_VERIFIED (solution-providers/client-phone-numbers.md and the ``phone_numbers`` edge's
#: examples, what an unverified number reads by default here). EXPIRED is what recorded responses show on
#: numbers already CONNECTED on Cloud API (platform_type CLOUD_API): the simulator makes such a number connected.
CODE_VERIFICATION_STATUSES = ("VERIFIED", "NOT_VERIFIED", "UNVERIFIED", "EXPIRED")
#: ``quality_rating``: GREEN, YELLOW, RED, NA in the phone number reference; UNKNOWN in the ``phone_numbers``
#: edge's example for a PENDING number (reference/whatsapp-business-account/
#: whatsapp-business-api-phone-number-management-api.md), what a new number reads here.
QUALITY_RATINGS = ("GREEN", "YELLOW", "RED", "NA", "UNKNOWN")
#: ``data_localization_region`` values the register call takes (register-a-business-phone-number.md).
LOCAL_STORAGE_REGIONS = frozenset({"AU", "ID", "IN", "JP", "SG", "KR", "DE", "CH", "GB", "BR", "BH", "ZA", "AE", "CA"})



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
    #: Local storage: the country given at register (business-phone-numbers/register-a-business-phone-number.md).
    data_localization_region: str | None = None
    register_calls: list[float] = field(default_factory=list)
    #: How each verification code was asked for (SMS, VOICE), oldest first.
    code_requests: list[str] = field(default_factory=list)
    synced: list[str] = field(default_factory=list)
    #: A WhatsApp Business app number's owner shares the chat history at onboarding (false: the history
    #: sync's webhook carries error 2593109).
    shares_history: bool = True

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
                        headers=headers, plain=False)


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


def as_data(thing: Any) -> dict[str, Any]:
    """What is stored of an object: a dataclass's fields, or a plain dict as it is."""
    return asdict(thing) if is_dataclass(thing) else dict(thing)
