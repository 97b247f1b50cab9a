"""The fields Graph knows on each node the simulator answers, and how a call's ``fields`` picks among them.

Graph fails the whole call that asks for a field the node does not have (``(#100) Tried accessing nonexisting
field (…) on node type (…)``), on a node and on an edge alike, so a misspelt field in esu fails its tests."""

from __future__ import annotations

from typing import Any

from flask import request

from .errors import SimError

#: The fields Meta's reference documents for each node. Graph fails the whole call that asks for any other
#: one (``(#100) Tried accessing nonexisting field (…) on node type (…)``), so a misspelt field fails here too.
#: WABA: reference/whatsapp-business-account/whatsapp-business-account-api.md (with the sample app's list).
WABA_FIELDS = frozenset({
    "id", "name", "timezone_id", "message_template_namespace", "account_review_status",
    "business_verification_status", "country", "ownership_type", "primary_business_location", "currency",
    "owner_business_info", "primary_funding_id", "on_behalf_of_business_info", "phone_numbers", "subscribed_apps",
    "message_templates", "is_enabled_for_insights", "purchase_order_number", "schedules", "audiences",
})
#: Phone number: reference/whatsapp-business-phone-number/whatsapp-business-account-phone-number-api.md and
#: business-phone-numbers/business-phone-numbers.md.
PHONE_FIELDS = frozenset({
    "id", "display_phone_number", "verified_name", "quality_rating", "code_verification_status", "name_status",
    "new_name_status", "status", "platform_type", "throughput", "webhook_configuration", "is_on_biz_app",
    "account_mode", "certificate", "last_onboarded_time", "is_official_business_account",
    "messaging_limit_tier", "health_status", "new_certificate", "is_pin_enabled", "search_visibility",
})


#: ``GET /{waba-id}/phone_numbers`` lists these besides the number's own fields
#: (reference/whatsapp-business-account/whatsapp-business-api-phone-number-management-api.md, ``fields``).
PHONE_LIST_FIELDS = PHONE_FIELDS | {"country_code", "country_dial_code", "unified_cert_status", "host_platform"}
#: Templates: the fields templates/template-management.md reads by default or by ``fields=``, and
#: template-categorization.md's ``correct_category``; the rest of a template's fields as its pages name them.
TEMPLATE_FIELDS = frozenset({
    "id", "name", "language", "status", "category", "sub_category", "components", "parameter_format",
    "correct_category", "previous_category", "rejected_reason", "quality_score", "library_template_name",
    "message_send_ttl_seconds", "cta_url_link_tracking_opted_out",
})
#: reference/webhooks/whatsapp-business-assigned-whatsapp-business-accounts-api.md: "Available fields: id, name",
#: both by default.
ASSIGNED_WABA_FIELDS = frozenset({"id", "name"})


def wanted_fields(known: frozenset[str], node_type: str) -> set[str] | None:
    """The fields the call asks for (with ``id``), or None when it names none; Graph fails the whole call when
    one is unknown, also on an edge."""
    wanted = request.args.get("fields")
    if not wanted:
        return None
    names = {name.strip().split("{")[0] for name in wanted.split(",")} | {"id"}
    unknown = sorted(names - known)
    if unknown:
        raise SimError(100, f"(#100) Tried accessing nonexisting field ({unknown[0]}) on node type ({node_type})")
    return names


def select_fields(node: dict[str, Any], known: frozenset[str], node_type: str) -> dict[str, Any]:
    names = wanted_fields(known, node_type)
    if names is None:
        # A number's defaults (whatsapp-business-account-phone-number-api.md: "only default fields (id,
        # display_phone_number, verified_name, quality_rating)"); a WABA's are id and name.
        return {key: node[key] for key in ("id", "name", "display_phone_number", "verified_name",
                                           "quality_rating") if key in node}
    return {key: value for key, value in node.items() if key in names and value is not None}


def listed_fields(items: list[dict[str, Any]], known: frozenset[str], node_type: str,
                   default: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """An edge's items with the fields asked for; without ``fields``, ``default`` (None: every field)."""
    names = wanted_fields(known, node_type) or default
    if names is None:
        return items
    return [{key: value for key, value in item.items() if key in names and value is not None} for item in items]
