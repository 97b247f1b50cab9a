"""Every example payload of Meta's webhook reference, delivered as Meta signs it, and what it changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from esu import webhooks
from esu.extensions import db
from esu.models import MessageTemplate, Onboarding, PhoneNumber, WhatsAppBusinessAccount
from esu.webhooks.appliers import APPLIERS

from .conftest import PAYLOADS, PHONE_ID, events

FILES = sorted(PAYLOADS.glob("*.json"))


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_every_reference_page_gave_its_examples():
    fields = {path.name.split("--")[0].removesuffix(".json").rstrip("-0123456789") for path in FILES}
    assert set(APPLIERS) | {"messages"} <= fields
    assert len(FILES) == 63


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_example_payload_is_stored_and_applied(deliver, phone, path):
    body = path.read_bytes()
    payload = json.loads(body)
    response = deliver(body)
    assert response.status_code == 200

    expected_rows = 0
    for entry in payload["entry"]:
        for change in entry["changes"]:
            value = change["value"]
            if change["field"] == "messages" and (value.get("messages") or value.get("statuses")):
                expected_rows += len(value.get("messages", [])) + len(value.get("statuses", []))
            else:
                expected_rows += 1
    stored = events()
    assert len(stored) == expected_rows == response.get_json()["stored"]

    [entry] = payload["entry"]
    for change in entry["changes"]:
        CHECKS.get(change["field"], check_ignored)(change["value"], entry, stored)

    assert deliver(body).get_json()["stored"] == 0  # Meta's retry changes nothing


def check_ignored(value, entry, stored):
    assert [event.status for event in stored] == ["ignored"]
    assert stored[0].value == value


def check_messages(value, entry, stored):
    messages, statuses = value.get("messages", []), value.get("statuses", [])
    if not messages and not statuses:  # system-level errors only: one change, kept as it came
        assert [(event.kind, event.status, event.value, event.phone_number_id) for event in stored] == [
            ("change", "stored", value, value["metadata"]["phone_number_id"])]
        return
    assert sorted(event.dedupe_key for event in stored) == sorted(
        [message["id"] for message in messages] + [f"{status['id']}:{status['status']}" for status in statuses])
    for event in stored:
        assert event.status == "stored" and event.phone_number_id == value["metadata"]["phone_number_id"]
        item = (event.value.get("messages") or event.value["statuses"])[0]
        assert event.occurred_at == at(int(item["timestamp"]))
        assert event.value["metadata"] == value["metadata"]
    counts = webhooks.message_counts([value["metadata"]["phone_number_id"]])
    assert counts == {value["metadata"]["phone_number_id"]: {"message": len(messages), "status": len(statuses)}}


def applied(stored):
    [event] = stored
    assert (event.status, event.error) == ("applied", None)
    return event


def check_account_update(value, entry, stored):
    event = applied(stored)
    waba_id = (value.get("waba_info") or {}).get("waba_id") or entry["id"]
    assert event.waba_id == waba_id
    waba = db.session.get(WhatsAppBusinessAccount, waba_id)
    recorded = waba.account_events[value["event"]]
    assert recorded["occurred_at"] == at(entry["time"]).isoformat()
    assert {key: item for key, item in recorded.items() if key != "occurred_at"} == {
        key: item for key, item in value.items() if key != "event"}
    onboardings = db.session.scalars(sa.select(Onboarding).where(Onboarding.waba_id == waba_id)).all()
    if value["event"] in ("PARTNER_ADDED", "PARTNER_APP_INSTALLED"):  # the latter: App-Only Install's announcement
        [onboarding] = onboardings
        assert (onboarding.source, onboarding.status, onboarding.business_token) == (
            "webhook", "awaiting_callback", None)
        assert onboarding.business_id == value["waba_info"]["owner_business_id"]
        assert event.onboarding_id == onboarding.id
    else:
        assert onboardings == []


def check_account_review_update(value, entry, stored):
    applied(stored)
    waba = db.session.get(WhatsAppBusinessAccount, entry["id"])
    assert (waba.account_review_status, waba.account_review_updated_at) == (value["decision"], at(entry["time"]))


def check_business_capability_update(value, entry, stored):
    applied(stored)
    waba = db.session.get(WhatsAppBusinessAccount, entry["id"])
    assert (waba.limits, waba.limits_updated_at) == (value, at(entry["time"]))


def check_phone_number_name_update(value, entry, stored):
    assert applied(stored).phone_number_id == PHONE_ID
    phone = db.session.get(PhoneNumber, PHONE_ID)
    assert phone.name_status == value["decision"]
    assert phone.requested_verified_name == value["requested_verified_name"]
    assert phone.verified_name == (value["requested_verified_name"] if value["decision"] == "APPROVED" else "Old Name")
    assert phone.name_updated_at == at(entry["time"])


def check_phone_number_quality_update(value, entry, stored):
    assert applied(stored).phone_number_id == PHONE_ID
    phone = db.session.get(PhoneNumber, PHONE_ID)
    # current_limit is the throughput tier; the daily messaging limit is max_daily_conversations_per_business.
    assert (phone.quality_event, phone.throughput_tier, phone.messaging_limit, phone.quality_updated_at) == (
        value["event"], value["current_limit"], value.get("max_daily_conversations_per_business"), at(entry["time"]))


def check_security(value, entry, stored):
    assert applied(stored).phone_number_id == PHONE_ID
    phone = db.session.get(PhoneNumber, PHONE_ID)
    assert (phone.security_event, phone.security_event_at) == (value["event"], at(entry["time"]))


def template(value) -> MessageTemplate:
    found = db.session.get(MessageTemplate, str(value["message_template_id"]))
    assert (found.name, found.language, found.waba_id) == (
        value["message_template_name"], value["message_template_language"], "102290129340398")
    return found


def check_message_template_status_update(value, entry, stored):
    applied(stored)
    found = template(value)
    assert (found.status, found.status_reason, found.category) == (
        value["event"], None if value["reason"] == "NONE" else value["reason"], value["message_template_category"])
    assert found.status_info == ({"rejection_info": value["rejection_info"]} if "rejection_info" in value else None)
    assert found.status_updated_at == found.category_updated_at == at(entry["time"])


def check_template_category_update(value, entry, stored):
    applied(stored)
    found = template(value)
    assert (found.category, found.category_updated_at) == (value["new_category"], at(entry["time"]))
    if "correct_category" in value:
        assert (found.pending_category, found.pending_category_at) == (
            value["correct_category"], at(value["category_update_timestamp"]))
    else:
        assert (found.pending_category, found.pending_category_at) == (None, None)


def check_message_template_quality_update(value, entry, stored):
    applied(stored)
    found = template(value)
    assert (found.quality_score, found.quality_updated_at) == (value["new_quality_score"], at(entry["time"]))


def check_history(value, entry, stored):
    """onboard-whatsapp-business-app-users.md, "history": a shared history's chunks (``metadata.progress``) or
    a media message's contents; either way the history sync is arriving for the number in ``metadata``."""
    assert applied(stored).phone_number_id == PHONE_ID == value["metadata"]["phone_number_id"]
    phone = db.session.get(PhoneNumber, PHONE_ID)
    progress = [chunk["metadata"]["progress"] for chunk in value.get("history", [])]
    assert (phone.history_status, phone.history_progress) == ("arrived", max(progress, default=None))
    assert phone.history_status_at is not None


def check_smb_app_state_sync(value, entry, stored):
    """onboard-whatsapp-business-app-users.md, "smb_app_state_sync": the contacts the sync (or a later change
    in the app) brought, counted on the number named in ``metadata``."""
    assert applied(stored).phone_number_id == PHONE_ID == value["metadata"]["phone_number_id"]
    phone = db.session.get(PhoneNumber, PHONE_ID)
    assert phone.contacts_received == len(value["state_sync"])
    assert phone.contacts_received_at == stored[0].received_at  # the entry carries no time


CHECKS = {
    "messages": check_messages,
    "account_update": check_account_update,
    "account_review_update": check_account_review_update,
    "business_capability_update": check_business_capability_update,
    "phone_number_name_update": check_phone_number_name_update,
    "phone_number_quality_update": check_phone_number_quality_update,
    "security": check_security,
    "history": check_history,
    "smb_app_state_sync": check_smb_app_state_sync,
    "message_template_status_update": check_message_template_status_update,
    "template_category_update": check_template_category_update,
    "message_template_quality_update": check_message_template_quality_update,
}
