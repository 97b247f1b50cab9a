"""Applying stored events to the records: in any order, once, and never at the cost of the delivery."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from esu import webhooks
from esu.extensions import db
from esu.models import MessageTemplate, Onboarding, PhoneNumber, WebhookEvent, WhatsAppBusinessAccount
from esu.webhooks.appliers import APPLIERS
from esu.webhooks.values import APPLIED_FIELDS

from .conftest import PHONE_ID, WABA_ID, envelope, events, text_message

PARTNER_ID = "2949482758682047"


def quality(limit: str, time: int) -> dict:
    return envelope(("phone_number_quality_update", {"display_phone_number": "15550783881", "event": "UPGRADE",
                                                     "max_daily_conversations_per_business": limit}),
                    time=time)


def partner(event: str, waba_id: str, time: int, owner: str = "2329417887457253") -> dict:
    return envelope(("account_update", {"event": event, "waba_info": {"waba_id": waba_id, "owner_business_id": owner}}),
                    entry_id=PARTNER_ID, time=time)


def onboardings(waba_id: str) -> list[Onboarding]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Onboarding).where(Onboarding.waba_id == waba_id).order_by(Onboarding.id)))


def test_every_field_with_an_applier_is_kept_for_applying_and_loads_the_record_it_names():
    """Parsing keeps a change for applying, and Records loads its record, by the set of values.py that
    names the field: a field in APPLIERS but in none of those would never be applied."""
    assert set(APPLIERS) == APPLIED_FIELDS


# -- order -----------------------------------------------------------------------------------------------


def test_an_older_quality_event_arriving_late_keeps_the_newer_state(deliver, phone):
    assert deliver(quality("TIER_10K", 1750000200)).status_code == 200
    assert deliver(quality("TIER_2K", 1750000100)).status_code == 200
    db.session.expire_all()
    assert db.session.get(PhoneNumber, PHONE_ID).messaging_limit == "TIER_10K"
    assert len(events()) == 2  # both kept all the same
    assert deliver(quality("TIER_100K", 1750000300)).status_code == 200
    db.session.expire_all()
    assert db.session.get(PhoneNumber, PHONE_ID).messaging_limit == "TIER_100K"


def test_template_and_account_events_out_of_order(deliver):
    def status(event: str, time: int) -> dict:
        return envelope(("message_template_status_update", {
            "event": event, "message_template_id": 77, "message_template_name": "welcome",
            "message_template_language": "en_US", "reason": "NONE"}), time=time)

    def ban(state: str, time: int) -> dict:
        return envelope(("account_update", {"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": state}}),
                        time=time)

    for body in (status("APPROVED", 1750000200), status("PENDING", 1750000100), ban("DISABLE", 1750000200),
                 ban("REINSTATE", 1750000100)):
        assert deliver(body).status_code == 200
    db.session.expire_all()
    assert db.session.get(MessageTemplate, "77").status == "APPROVED"
    recorded = db.session.get(WhatsAppBusinessAccount, WABA_ID).account_events["DISABLED_UPDATE"]
    assert recorded["ban_info"] == {"waba_ban_state": "DISABLE"}


def test_the_same_state_reported_again_later_is_stored_and_applied(deliver):
    """A change identical to an earlier one but at a later time is a new event (a template approved again
    after an edit), not a retry of the first."""
    review = ("account_review_update", {"decision": "APPROVED"})
    assert deliver(envelope(review, time=1750000100)).status_code == 200
    assert deliver(envelope(("account_review_update", {"decision": "REJECTED"}), time=1750000200)).status_code == 200
    assert deliver(envelope(review, time=1750000300)).get_json()["stored"] == 1
    db.session.expire_all()
    assert db.session.get(WhatsAppBusinessAccount, WABA_ID).account_review_status == "APPROVED"


# -- PARTNER_ADDED and PARTNER_REMOVED --------------------------------------------------------------------


def test_partner_added_links_the_onboarding_the_callback_made(deliver, simulator, post_callback):
    signup = simulator.signup()
    body = post_callback(signup).get_json()
    assert deliver(partner("PARTNER_ADDED", signup["waba_id"], 1750000000, owner=signup["business_id"])
                   ).status_code == 200
    [onboarding] = onboardings(signup["waba_id"])
    assert (onboarding.id, onboarding.source, onboarding.status) == (body["id"], "callback", "completed")
    [event] = events()
    assert (event.entry_id, event.waba_id, event.onboarding_id) == (PARTNER_ID, signup["waba_id"], onboarding.id)


def test_the_callback_adopts_the_onboarding_partner_added_made(deliver, simulator, post_callback):
    signup = simulator.signup(business_name="Early Webhook Ltd")
    deliver(partner("PARTNER_ADDED", signup["waba_id"], 1750000000, owner=signup["business_id"]))
    [waiting] = onboardings(signup["waba_id"])
    assert (waiting.status, waiting.source, waiting.page_id) == ("awaiting_callback", "webhook", None)

    response = post_callback(signup)
    assert response.status_code == 201
    # Folded into the callback's own onboarding once the customer's token proved the WABA theirs.
    [onboarding] = onboardings(signup["waba_id"])
    assert onboarding.id == response.get_json()["id"]
    assert (onboarding.status, onboarding.source, onboarding.business_name) == (
        "completed", "callback", "Early Webhook Ltd")
    assert onboarding.page is not None and onboarding.business_token.startswith("EAA")
    assert onboarding.partner_added_at.timestamp() == 1750000000
    assert events()[0].onboarding_id == onboarding.id

    assert post_callback(signup).status_code == 409  # the same code again is still refused
    assert len(onboardings(signup["waba_id"])) == 1


@pytest.mark.parametrize("scopes", ["current", "legacy"])
def test_a_callback_naming_someone_elses_waba_leaves_their_waiting_onboarding_alone(
        deliver, simulator, post_callback, scopes):
    victim = simulator.signup(business_name="Victim Ltd", scopes=scopes)
    deliver(partner("PARTNER_ADDED", victim["waba_id"], 1750000000, owner=victim["business_id"]))
    [waiting] = onboardings(victim["waba_id"])
    intruder = simulator.signup(business_name="Intruder", scopes=scopes)

    # A valid code of their own, with the victim's WABA (and number) ids.
    body = post_callback({**intruder, "waba_id": victim["waba_id"],
                          "phone_number_id": victim["phone_number_id"]}).get_json()

    assert body["status"] == "failed" and body["id"] != waiting.id
    db.session.expire_all()
    untouched = db.session.get(Onboarding, waiting.id)
    assert (untouched.status, untouched.source, untouched.page_id, untouched.code_digest) == (
        "awaiting_callback", "webhook", None, None)
    assert events()[0].onboarding_id == waiting.id

    # The victim's own callback then takes it over, with its PARTNER_ADDED.
    mine = post_callback(victim).get_json()

    assert mine["status"] == "completed", mine
    assert db.session.get(Onboarding, waiting.id) is None
    onboarding = db.session.get(Onboarding, mine["id"])
    assert onboarding.partner_added_at is not None and onboarding.page is not None
    assert events()[0].onboarding_id == mine["id"]
    assert [item.status for item in onboardings(victim["waba_id"])] == ["failed", "completed"]


def test_partner_added_for_another_waba_of_a_multi_waba_signup_links_its_onboarding(
        deliver, simulator, post_callback):
    """Meta sends PARTNER_ADDED for each WABA shared (account-update-webhook-reference.md); in a multi-WABA
    flow (embedded-signup/implementation.md, ``waba_ids``) the second one's belongs to the onboarding that
    counts it among its WABAs: no second onboarding waits for a callback that never comes. Its removal
    leaves the onboarding, whose own WABA stays, onboarded."""
    signup = simulator.signup(wabas=2)
    first, second = signup["data"]["waba_ids"]
    body = post_callback(signup, waba_ids=[first, second]).get_json()
    assert body["status"] == "completed", body

    deliver(partner("PARTNER_ADDED", second, 1750000000, owner=signup["business_id"]))

    db.session.expire_all()
    [onboarding] = db.session.scalars(sa.select(Onboarding)).all()
    assert (onboarding.id, onboarding.status, onboarding.waba_id) == (body["id"], "completed", first)
    assert onboarding.partner_added_at.timestamp() == 1750000000
    assert [event.onboarding_id for event in events()] == [body["id"]]

    deliver(partner("PARTNER_REMOVED", second, 1750000500, owner=signup["business_id"]))

    db.session.expire_all()
    assert db.session.get(Onboarding, body["id"]).status == "completed"
    assert db.session.get(WhatsAppBusinessAccount, second).state == "offboarded"


def test_partner_removed_offboards_the_customer(deliver, simulator, post_callback):
    signup = simulator.signup()
    post_callback(signup)
    deliver(partner("PARTNER_ADDED", signup["waba_id"], 1750000000))
    assert deliver(partner("PARTNER_REMOVED", signup["waba_id"], 1750000500)).status_code == 200
    [onboarding] = onboardings(signup["waba_id"])
    assert onboarding.status == "offboarded"
    assert onboarding.offboarded_at.timestamp() == 1750000500
    assert [event.onboarding_id for event in events()] == [onboarding.id, onboarding.id]


def test_a_late_partner_removed_does_not_offboard_a_later_signup(deliver):
    waba_id = "980198427658004"
    deliver(partner("PARTNER_ADDED", waba_id, 1750000300))  # re-added after the removal below
    deliver(partner("PARTNER_REMOVED", waba_id, 1750000200))
    [onboarding] = onboardings(waba_id)
    assert onboarding.status == "awaiting_callback"


def test_a_late_partner_added_after_the_removal_creates_nothing(deliver):
    waba_id = "980198427658004"
    deliver(partner("PARTNER_REMOVED", waba_id, 1750000200))
    deliver(partner("PARTNER_ADDED", waba_id, 1750000100))
    assert onboardings(waba_id) == []
    assert [event.status for event in events()] == ["applied", "applied"]
    # Signing up again later is a new onboarding.
    deliver(partner("PARTNER_ADDED", waba_id, 1750000900))
    assert [onboarding.status for onboarding in onboardings(waba_id)] == ["awaiting_callback"]


# -- failures never cost the delivery ------------------------------------------------------------------


def test_a_failing_apply_marks_the_event_failed_and_keeps_the_others(deliver, monkeypatch, runner):
    def broken(event, records):
        raise RuntimeError("a bug in applying")

    monkeypatch.setitem(APPLIERS, "account_review_update", broken)
    body = envelope(("account_review_update", {"decision": "APPROVED"}),
                    ("business_capability_update", {"max_phone_numbers_per_waba": 25}),
                    ("messages", text_message("wamid.SIBLING")))
    response = deliver(body)
    assert response.status_code == 200
    by_field = {event.field: event for event in events()}
    assert (by_field["account_review_update"].status, by_field["account_review_update"].error) == (
        "failed", "RuntimeError: a bug in applying")
    assert by_field["business_capability_update"].status == "applied"
    assert by_field["messages"].status == "stored"
    db.session.expire_all()
    waba = db.session.get(WhatsAppBusinessAccount, WABA_ID)
    assert (waba.limits, waba.account_review_status) == ({"max_phone_numbers_per_waba": 25}, None)

    monkeypatch.undo()  # the fix is deployed
    result = runner.invoke(args=["webhooks", "reapply"])
    assert result.output == "Applied 1 webhook event(s) again; 0 failed again.\n"
    assert events(field="account_review_update")[0].status == "applied"
    assert db.session.get(WhatsAppBusinessAccount, WABA_ID).account_review_status == "APPROVED"


def test_a_batch_that_applies_cleanly_takes_no_savepoint_and_one_that_fails_is_stored_once(deliver):
    """Savepoints only when needed: the failing batch is rolled back and stored again, each change
    applied in its own."""
    statements: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement.split()[0].upper())

    clean = envelope(("account_review_update", {"decision": "APPROVED"}), ("messages", text_message("wamid.CLEAN")))
    failing = envelope(("business_capability_update", {"max_phone_numbers_per_waba": 25}),
                       ("account_review_update", {"decision": 42}), time=1750000100)
    sa.event.listen(db.engine, "before_cursor_execute", listener)
    try:
        assert deliver(clean).status_code == 200
        clean_statements, statements[:] = list(statements), []
        assert deliver(failing).status_code == 200
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", listener)

    assert "SAVEPOINT" not in clean_statements
    assert "SAVEPOINT" in statements
    assert sorted((event.field, event.status) for event in events()) == [
        ("account_review_update", "applied"), ("account_review_update", "failed"),
        ("business_capability_update", "applied"), ("messages", "stored")]
    db.session.expire_all()
    waba = db.session.get(WhatsAppBusinessAccount, WABA_ID)
    assert (waba.account_review_status, waba.limits) == ("APPROVED", {"max_phone_numbers_per_waba": 25})


def test_values_that_do_not_fit_fail_alone(deliver):
    body = envelope(("account_review_update", {"decision": 42}),
                    ("message_template_quality_update", {"message_template_id": "806312974732579",
                                                         "new_quality_score": ["GREEN"]}),
                    ("security", "not an object"),
                    ("account_review_update", {"decision": "X" * 100}),
                    ("business_capability_update", {"max_daily_conversations_per_business": "TIER_2K"}))
    assert deliver(body).status_code == 200
    statuses = [(event.field, event.status) for event in events()]
    assert sorted(statuses) == [("account_review_update", "failed"), ("account_review_update", "failed"),
                                ("business_capability_update", "applied"),
                                ("message_template_quality_update", "failed"), ("security", "failed")]
    assert all(event.error for event in events(status="failed"))


@pytest.mark.parametrize(("entry_id", "change", "missing"), [
    ("WABA_ID", ("account_update", {"event": "ACCOUNT_DELETED"}), "WhatsApp Business Account"),
    ("<WHATSAPP_BUSINESS_ACCOUNT_ID>", ("account_review_update", {"decision": "APPROVED"}),
     "WhatsApp Business Account"),
    ("0", ("business_capability_update", {"max_phone_numbers_per_waba": 25}), "WhatsApp Business Account"),
    ("whatsapp-business-account-id", ("message_template_status_update", {"event": "FLAGGED",
                                                                         "message_template_id": 1234567}),
     "WhatsApp Business Account"),
    ("WABA_ID", ("security", {"display_phone_number": "15550783881", "event": "PIN_CHANGED"}),
     "WhatsApp Business Account"),
    (WABA_ID, ("message_template_quality_update", {"new_quality_score": "YELLOW"}), "message_template_id"),
    (WABA_ID, ("template_category_update", {"message_template_id": "not an id", "new_category": "MARKETING"}),
     "message_template_id"),
    (WABA_ID, ("message_template_status_update", {"event": "APPROVED", "message_template_id": 0}),
     "message_template_id"),
    (WABA_ID, ("phone_number_quality_update", {"display_phone_number": "PHONE_NUMBER", "event": "UPGRADE"}),
     "display_phone_number"),
])
def test_a_change_naming_no_real_record_is_ignored_with_what_is_missing(deliver, runner, entry_id, change, missing):
    """Placeholders where Meta puts ids (as libraries' fixtures have them): nothing in esu needs fixing, so
    the change is ignored with the reason, not failed, and reapplying leaves it alone."""
    assert deliver(envelope(change, entry_id=entry_id)).status_code == 200
    [event] = events()
    assert event.status == "ignored"
    assert missing in event.error
    assert runner.invoke(args=["webhooks", "reapply"]).output.startswith("Applied 0 ")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MessageTemplate)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WhatsAppBusinessAccount)) == 0


def test_a_placeholder_that_failed_before_is_ignored_when_reapplied(deliver, runner):
    deliver(envelope(("account_review_update", {"decision": "APPROVED"}), entry_id="WABA_ID"))
    db.session.execute(sa.update(WebhookEvent).values(status="failed", error="ValueError: the change names no "
                                                                             "WhatsApp Business Account"))
    db.session.commit()
    result = runner.invoke(args=["webhooks", "reapply"])
    assert result.output == "Applied 1 webhook event(s) again; 0 failed again.\n"
    [event] = events()
    assert (event.status, event.error) == (
        "ignored", "the change names no WhatsApp Business Account: its entry's id is not a Graph id")


@pytest.mark.parametrize("none", ["NONE", None, ""])
def test_a_reason_of_none_is_stored_empty_for_every_field(deliver, phone, none):
    deliver(envelope(("message_template_status_update", {
        "event": "APPROVED", "message_template_id": 1689556908129832, "message_template_name": "seasonal_promotion",
        "message_template_language": "en_US", "reason": none}),
        ("phone_number_name_update", {"display_phone_number": "15550783881", "decision": "APPROVED",
                                      "requested_verified_name": "New Name", "rejection_reason": none})))
    assert [(event.field, event.status) for event in events()] == [
        ("message_template_status_update", "applied"), ("phone_number_name_update", "applied")]
    db.session.expire_all()
    assert db.session.get(MessageTemplate, "1689556908129832").status_reason is None
    assert db.session.get(PhoneNumber, PHONE_ID).name_rejection_reason is None


def test_a_number_we_do_not_know_is_ignored_with_the_reason(deliver):
    assert deliver(quality("TIER_2K", 1750000000)).status_code == 200
    [event] = events()
    assert event.status == "ignored"
    assert "15550783881" in event.error


# -- messages are counted per number ----------------------------------------------------------------------


def test_messages_and_statuses_are_counted_per_number(deliver):
    other = "106540352242999"
    status = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": PHONE_ID},
              "statuses": [{"id": "wamid.OUT1", "status": "sent", "timestamp": "1750000000"},
                           {"id": "wamid.OUT1", "status": "delivered", "timestamp": "1750000001"},
                           {"id": "wamid.OUT1", "status": "read", "timestamp": "1750000002"}]}
    deliver(envelope(("messages", text_message("wamid.IN1")), ("messages", text_message("wamid.IN2")),
                     ("messages", text_message("wamid.IN3", phone_id=other)), ("messages", status)))
    deliver(envelope(("messages", text_message("wamid.IN1")), ("messages", status)))  # a retry
    assert webhooks.message_counts() == {PHONE_ID: {"message": 2, "status": 3}, other: {"message": 1, "status": 0}}
    assert webhooks.message_counts([other]) == {other: {"message": 1, "status": 0}}
