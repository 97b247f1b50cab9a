"""Registration as Meta's docs describe it: WhatsApp Business app numbers told apart by what Meta says of
them, the PIN a number already has, local storage and the credit line's currency per signup page.

Docs: meta-docs/embedded-signup/onboard-whatsapp-business-app-users.md (coexistence, the syncs, the ``history``
webhook), business-phone-numbers/register-a-business-phone-number.md (``pin``, ``data_localization_region``),
business-phone-numbers/two-step-verification.md, solution-providers/registering-business-phone-numbers.md,
solution-providers/managing-credit-lines.md (``waba_currency``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from esu import phones
from esu.extensions import db
from esu.models import Onboarding, PhoneNumber, SignupPage
from esu.simulator.errors import USER_TEXTS

from ..conftest import APP_SECRET, CREDIT_LINE_ID
from ..helpers import new_ref, statuses, step
from ..webhooks.conftest import encode, sign

pytest_plugins = ["tests.admin_fixtures"]

PAYLOADS = Path(__file__).resolve().parents[3] / "shared" / "webhook-payloads"
EXISTING_PIN = "246810"


def deliver_history(client, onboarding: Onboarding, value: dict, at: int):
    """A ``history`` change for the onboarding's number, signed as Meta signs it."""
    value = {**value, "metadata": {"display_phone_number": onboarding.display_phone_number.lstrip("+"),
                                   "phone_number_id": onboarding.phone_number_id}}
    envelope = {"object": "whatsapp_business_account", "entry": [
        {"id": onboarding.waba_id, "time": at, "changes": [{"field": "history", "value": value}]}]}
    body = encode(envelope)
    response = client.post("/webhooks/whatsapp", data=body, content_type="application/json",
                           headers={"X-Hub-Signature-256": sign(body, APP_SECRET)})
    assert response.status_code == 200, response.get_data(as_text=True)


def recorded_history() -> dict:
    """The first change of Meta's example payload of a shared history (history webhook reference)."""
    envelope = json.loads((PAYLOADS / "history__metadocs-1.json").read_text())
    return envelope["entry"][0]["changes"][0]["value"]


#: "Payload syntax — chat history sharing declined" (onboard-whatsapp-business-app-users.md, history).
DECLINED = {"messaging_product": "whatsapp", "history": [{"errors": [{
    "code": 2593109, "title": "History sync is turned off by the business from the WhatsApp Business App",
    "message": "History sync is turned off by the business from the WhatsApp Business App",
    "error_data": {"details": "History sharing is turned off by the business"}}]}]}


# -- WhatsApp Business app numbers, from Meta's data ---------------------------------------------------


@pytest.mark.parametrize("reported", ["FINISH", "code alone"])
def test_a_business_app_number_reported_as_finish_is_never_registered_and_syncs_after_the_subscription(
    simulator, post_callback, reported
):
    """onboard-whatsapp-business-app-users.md: a business app number is already registered ("skip the phone
    number registration step"); Meta's ``is_on_biz_app`` tells it, whatever event the browser reported.
    The syncs come once subscribed to the WABA's webhooks, contacts then history, within 24 hours."""
    signup = simulator.signup(coexistence=True)
    sent = {**signup, "event": "FINISH"} if reported == "FINISH" else {"code": signup["code"]}

    body = post_callback(sent).get_json()

    assert body["status"] == "completed", body
    assert body["event"] == "FINISH"
    register = step(body, "register_phone")
    assert register["status"] == "skipped" and "WhatsApp Business app" in register["detail"]
    assert simulator.calls("register") == []
    assert simulator.state.phones[signup["phone_number_id"]].synced == ["smb_app_state_sync", "history"]
    operations = [call["operation"] for call in simulator.calls()]
    assert operations.index("subscribed_apps") < operations.index("smb_app_data")
    onboarding = db.session.get(Onboarding, body["id"])
    phone = db.session.get(PhoneNumber, signup["phone_number_id"])
    assert phone.is_on_biz_app is True and phone.pin is None and phone.registered_at is None
    assert phone.contacts_sync_requested_at is not None and phone.history_sync_requested_at is not None
    assert phone.business_app_sync_until == onboarding.created_at + timedelta(hours=24)
    assert {step(body, name)["status"] for name in ("sync_contacts", "sync_history")} == {"ok"}


def test_the_syncs_wait_for_the_webhook_subscription(simulator, client, csrf_token, post_callback):
    """The syncs' results arrive only as webhooks (smb_app_state_sync, history): no sync before the
    subscription succeeded, and each is asked once it has."""
    signup = simulator.signup(coexistence=True)
    simulator.fault("subscribed_apps", 200)
    ref = new_ref()

    body = post_callback(signup, client_ref=ref).get_json()

    assert body["status"] == "failed"
    assert step(body, "sync_contacts")["status"] == "pending"
    assert step(body, "sync_contacts")["detail"] == "waits for subscribe_webhooks"
    assert simulator.calls("smb_app_data") == []

    body = client.post(f"/signup/demo/onboardings/{ref}/retry", headers={"X-CSRFToken": csrf_token}).get_json()

    assert body["status"] == "completed", body
    assert len(simulator.calls("smb_app_data")) == 2 and simulator.calls("register") == []


def test_a_plain_number_is_registered_and_never_synced(simulator, post_callback):
    body = post_callback(simulator.signup()).get_json()

    assert body["status"] == "completed"
    assert statuses(body)["register_phone"] == "ok"
    assert {statuses(body)[name] for name in ("sync_contacts", "sync_history")} == {"skipped"}
    assert simulator.calls("smb_app_data") == []
    assert db.session.get(PhoneNumber, body["phone_number_id"]).is_on_biz_app is False


def test_history_that_arrives_is_recorded_on_the_number(simulator, client, post_callback, admin):
    """The history webhook's chunks (``metadata.progress``, in percent), as Meta's example sends them."""
    body = post_callback(simulator.signup(coexistence=True)).get_json()
    onboarding = db.session.get(Onboarding, body["id"])

    deliver_history(client, onboarding, recorded_history(), at=1739230955)

    db.session.expire_all()
    phone = db.session.get(PhoneNumber, onboarding.phone_number_id)
    assert (phone.history_status, phone.history_progress) == ("arrived", 55)
    assert "arriving: 55 %" in admin.get(f"/admin/onboardings/{onboarding.id}").get_data(as_text=True)


def test_history_the_business_declined_is_recorded_on_the_number(simulator, client, post_callback, admin):
    """A declined share is one history webhook with error 2593109."""
    body = post_callback(simulator.signup(coexistence=True)).get_json()
    onboarding = db.session.get(Onboarding, body["id"])

    deliver_history(client, onboarding, DECLINED, at=1739230955)

    db.session.expire_all()
    phone = db.session.get(PhoneNumber, onboarding.phone_number_id)
    assert phone.history_status == "declined" and phone.history_status_at is not None
    html = admin.get(f"/admin/onboardings/{onboarding.id}").get_data(as_text=True)
    assert "declined by the business (2593109)" in html


# -- the PIN a number already has ----------------------------------------------------------------------


def test_a_number_with_a_pin_waits_for_it_and_registers_with_it(simulator, client, csrf_token, post_callback):
    """two-step-verification.md / register-a-business-phone-number.md: "If your verified business phone number
    already has two-step verification enabled, set this value to your number's 6-digit two-step verification
    PIN": any other answers 133005, and the customer gives theirs."""
    signup = simulator.signup(two_step_pin=EXISTING_PIN)
    ref = new_ref()

    body = post_callback(signup, client_ref=ref).get_json()

    assert body["status"] == "awaiting_pin", body
    register = step(body, "register_phone")
    assert register["status"] == "waiting" and register["error"]["code"] == 133005
    assert register["error"]["plain"] == USER_TEXTS[(133005, None)][1]  # Meta's words for people, in English
    assert db.session.get(PhoneNumber, signup["phone_number_id"]).pin is None  # esu's PIN is not the number's
    url = f"/signup/demo/onboardings/{ref}/pin"

    wrong = client.post(url, json={"pin": "111111"}, headers={"X-CSRFToken": csrf_token})

    assert wrong.status_code == 200 and wrong.get_json()["status"] == "awaiting_pin"
    assert client.post(url, json={"pin": "12345"}, headers={"X-CSRFToken": csrf_token}).status_code == 400

    right = client.post(url, json={"pin": EXISTING_PIN}, headers={"X-CSRFToken": csrf_token})

    assert right.status_code == 200 and right.get_json()["status"] == "completed", right.get_json()
    assert simulator.state.phones[signup["phone_number_id"]].status == "CONNECTED"
    db.session.expire_all()
    assert db.session.get(PhoneNumber, signup["phone_number_id"]).pin == EXISTING_PIN
    stored = db.session.execute(sa.text("SELECT pin FROM phone_numbers WHERE id = :id"),
                                {"id": signup["phone_number_id"]}).scalar_one()
    assert EXISTING_PIN not in stored  # encrypted, as every PIN
    again = client.post(url, json={"pin": EXISTING_PIN}, headers={"X-CSRFToken": csrf_token})
    assert again.status_code == 409


def test_the_admin_can_enter_the_numbers_pin(simulator, post_callback, admin):
    signup = simulator.signup(two_step_pin=EXISTING_PIN)
    body = post_callback(signup).get_json()
    assert body["status"] == "awaiting_pin"
    page_url = f"/admin/onboardings/{body['id']}"
    assert "Register with this PIN" in admin.get(page_url).get_data(as_text=True)
    # The dashboard says a person must act, and leads to the onboarding.
    dashboard = admin.get("/admin/").get_data(as_text=True)
    assert "Numbers waiting for their PIN" in dashboard and page_url in dashboard

    response = admin.post(f"{page_url}/existing-pin", data={"pin": EXISTING_PIN}, follow_redirects=True)

    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Registration went on with the number&#39;s PIN" in html
    assert EXISTING_PIN not in html
    onboarding = db.session.get(Onboarding, body["id"])
    db.session.refresh(onboarding)
    assert onboarding.status == "completed"
    assert simulator.state.phones[signup["phone_number_id"]].status == "CONNECTED"
    assert "Numbers waiting for their PIN" not in admin.get("/admin/").get_data(as_text=True)


def registered_numbers(simulator) -> list[str]:
    """The numbers esu asked Meta to register, in order, one per call."""
    return [call["path"].rstrip("/").split("/")[-2] for call in simulator.calls("register")]


def test_another_wabas_number_with_a_pin_waits_for_it_and_the_first_keeps_its_own(
        simulator, client, csrf_token, post_callback, admin):
    """A multi-WABA flow (embedded-signup/implementation.md, ``waba_ids``) registers every WABA's number, each
    with its own PIN (register-a-business-phone-number.md, ``pin``). The second WABA's number already has
    two-step verification (two-step-verification.md): Meta answers 133005, and the onboarding waits for that
    number's PIN, naming it to the customer and the admin. The first number, registered meanwhile, keeps the
    PIN it was registered with and is not registered again once the PIN is given."""
    signup = simulator.signup(wabas=2)
    first_id = signup["phone_number_id"]
    [second] = simulator.state.listed("phone", signup["data"]["waba_ids"][1])
    simulator.state.change("phone", second.id, lambda number: setattr(number, "pin", EXISTING_PIN))
    ref = new_ref()

    body = post_callback(signup, client_ref=ref, waba_ids=signup["data"]["waba_ids"]).get_json()

    assert body["status"] == "awaiting_pin", body
    second_shown = phones.international(second.display_phone_number)
    assert body["pin_display_phone_number"] == second_shown != body["display_phone_number"]
    register = step(body, "register_phone")
    assert register["status"] == "waiting" and register["error"]["code"] == 133005
    assert second.display_phone_number in register["detail"]
    first = db.session.get(PhoneNumber, first_id)
    first_pin = first.pin
    assert first.registered_at is not None and first_pin == simulator.state.phones[first_id].pin
    assert db.session.get(PhoneNumber, second.id).pin is None  # esu's PIN is not that number's
    html = admin.get(f"/admin/onboardings/{body['id']}").get_data(as_text=True)
    assert f"The 6-digit PIN of {second_shown}" in html

    right = client.post(f"/signup/demo/onboardings/{ref}/pin", json={"pin": EXISTING_PIN},
                        headers={"X-CSRFToken": csrf_token})

    assert right.status_code == 200 and right.get_json()["status"] == "completed", right.get_json()
    assert right.get_json()["pin_display_phone_number"] is None
    assert registered_numbers(simulator) == [first_id, second.id, second.id]
    db.session.expire_all()
    first, saved_second = db.session.get(PhoneNumber, first_id), db.session.get(PhoneNumber, second.id)
    assert first.pin == first_pin == simulator.state.phones[first_id].pin
    assert saved_second.pin == EXISTING_PIN and saved_second.registered_at is not None
    assert simulator.state.phones[second.id].status == "CONNECTED"
    # Counted as Meta counts them (10 per number in 72 hours).
    assert (first.registration_attempts, saved_second.registration_attempts) == (1, 2)
    assert [len(simulator.state.phones[number].register_calls) for number in (first_id, second.id)] == [1, 2]


def test_each_number_with_a_pin_is_asked_for_in_turn(simulator, client, csrf_token, post_callback, admin):
    """Both WABAs' numbers already have two-step verification (``two_step_pin``; two-step-verification.md):
    registration stops at the first refusal (register-a-business-phone-number.md, 133005) and waits for that
    number's PIN; given, it registers that number and then meets the second's, and waits for it, which the
    admin enters. No number is asked to register with a PIN already refused."""
    signup = simulator.signup(wabas=2, two_step_pin=EXISTING_PIN)
    first_id = signup["phone_number_id"]
    [second] = simulator.state.listed("phone", signup["data"]["waba_ids"][1])
    ref = new_ref()

    body = post_callback(signup, client_ref=ref, waba_ids=signup["data"]["waba_ids"]).get_json()

    assert body["status"] == "awaiting_pin", body
    assert body["pin_display_phone_number"] == body["display_phone_number"]
    assert registered_numbers(simulator) == [first_id]

    body = client.post(f"/signup/demo/onboardings/{ref}/pin", json={"pin": EXISTING_PIN},
                       headers={"X-CSRFToken": csrf_token}).get_json()

    assert body["status"] == "awaiting_pin", body
    second_shown = phones.international(second.display_phone_number)
    assert body["pin_display_phone_number"] == second_shown
    assert registered_numbers(simulator) == [first_id, first_id, second.id]
    page_url = f"/admin/onboardings/{body['id']}"
    assert f"The 6-digit PIN of {second_shown}" in admin.get(page_url).get_data(as_text=True)

    response = admin.post(f"{page_url}/existing-pin", data={"pin": EXISTING_PIN}, follow_redirects=True)

    assert "Registration went on with the number&#39;s PIN" in response.get_data(as_text=True)
    onboarding = db.session.get(Onboarding, body["id"])
    db.session.refresh(onboarding)
    assert onboarding.status == "completed"
    assert registered_numbers(simulator) == [first_id, first_id, second.id, second.id]
    db.session.expire_all()
    assert {db.session.get(PhoneNumber, number).pin for number in (first_id, second.id)} == {EXISTING_PIN}
    assert [db.session.get(PhoneNumber, number).registration_attempts for number in (first_id, second.id)] == [2, 2]


# -- local storage and the credit line's currency, per page ------------------------------------------


def test_the_pages_local_storage_region_is_sent_at_register(simulator, post_callback, page):
    """register-a-business-phone-number.md: ``data_localization_region``, a country of Meta's list."""
    page.data_localization_region = "CH"
    db.session.commit()
    signup = simulator.signup()

    body = post_callback(signup).get_json()

    assert body["status"] == "completed", body
    assert simulator.state.phones[signup["phone_number_id"]].data_localization_region == "CH"
    assert db.session.get(PhoneNumber, signup["phone_number_id"]).data_localization_region == "CH"


def test_without_local_storage_no_region_is_sent(simulator, post_callback):
    signup = simulator.signup()

    assert post_callback(signup).get_json()["status"] == "completed"
    assert simulator.state.phones[signup["phone_number_id"]].data_localization_region is None


def test_the_page_form_takes_only_meta_regions_and_currencies(admin, page):
    form = {"slug": "demo", "title": "Connect WhatsApp", "feature_type": ""}

    refused = admin.post(f"/admin/pages/{page.id}", data={**form, "data_localization_region": "US",
                                                          "credit_currency": "BRL"})

    assert refused.status_code == 200 and "Not a valid choice" in refused.get_data(as_text=True)
    saved = admin.post(f"/admin/pages/{page.id}", data={**form, "data_localization_region": "IN",
                                                        "credit_currency": "INR"})
    assert saved.status_code == 302
    db.session.expire_all()
    assert (db.session.get(SignupPage, page.id).data_localization_region,
            db.session.get(SignupPage, page.id).credit_currency) == ("IN", "INR")


@pytest.fixture
def app_config(app_config):
    """A Solution Partner invoicing in GBP by default."""
    app_config["META_CREDIT_LINE_ID"] = CREDIT_LINE_ID
    app_config["ESU_CREDIT_CURRENCY"] = "GBP"
    return app_config


@pytest.mark.parametrize(("page_currency", "shared"), [("EUR", "EUR"), (None, "GBP")])
def test_the_credit_line_is_shared_in_the_pages_currency(simulator, post_callback, page, admin, page_currency,
                                                         shared):
    """managing-credit-lines.md: ``waba_currency`` is one of AUD, EUR, GBP, IDR, INR, USD; a page's own, else
    the configured one. The WABA's own currency is shown beside it."""
    page.credit_currency = page_currency
    db.session.commit()
    signup = simulator.signup(currency="USD")

    body = post_callback(signup).get_json()

    assert body["status"] == "completed", body
    assert simulator.state.wabas[signup["waba_id"]].currency == shared  # what Meta invoices in now
    html = admin.get(f"/admin/onboardings/{body['id']}").get_data(as_text=True)
    assert f"{shared} ({'this page' if page_currency else 'the default'})" in html
    assert "the WABA's own currency: USD" in html


@pytest.mark.parametrize("status", ["NOT_VERIFIED", "UNVERIFIED"])
def test_every_documented_spelling_of_an_unverified_number_asks_for_the_code(simulator, post_callback, status):
    """code_verification_status: VERIFIED or UNVERIFIED in the phone number reference
    (reference/whatsapp-business-phone-number/whatsapp-business-account-phone-number-api.md), NOT_VERIFIED in
    solution-providers/client-phone-numbers.md: either unverified spelling sends the number into the code flow."""
    signup = simulator.signup(code_verification_status=status)

    body = post_callback(signup).get_json()

    assert body["status"] == "awaiting_verification", body
    assert simulator.calls("register") == []
