"""Every finish event its own route, the v4 assets and several WABAs, a number added after signup.

Meta's docs: embedded-signup/implementation.md ("Successful flow completion structure", FLOW_FINISH_TYPE);
embedded-signup/versions.md (v3 and v4: "Users can finish with a verified, unverified, or no phone number");
embedded-signup/app-only-install.md (FINISH_GRANT_ONLY_API_ACCESS: business tokens only);
embedded-signup/onboarding-business-customers-as-a-solution-partner.md (the credit line needs our system user).
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from esu.extensions import db
from esu.models import MessageTemplate, Onboarding, PhoneNumber, WhatsAppBusinessAccount
from esu.models.admin import AdminAction
from esu.models.assets import OnboardingAsset
from esu.simulator.objects import Phone

from ..conftest import CREDIT_LINE_ID
from ..helpers import call_counts, new_ref, statuses, step

pytest_plugins = ["tests.admin_fixtures"]

NUMBER_STEPS = ("read_phone_number", "register_phone")


@pytest.fixture
def partner(app_config):
    """esu set up as a Solution Partner (a credit line to share); named before ``admin``, which makes the app."""
    app_config["META_CREDIT_LINE_ID"] = CREDIT_LINE_ID


def widget_body(signup: dict, **extra) -> dict:
    """The callback's body as the widget sends it: the code, the event and Meta's message data as it came."""
    return {"code": signup["code"], "event": signup["event"], **signup["data"], "client_ref": new_ref(), **extra}


def finish(client, csrf_token, page, signup: dict, **extra):
    return client.post(f"/signup/{page.slug}/callback", json=widget_body(signup, **extra),
                       headers={"X-CSRFToken": csrf_token})


def test_finish_runs_every_step(partner, simulator, admin, csrf_token, page):
    """FINISH (implementation.md): the Cloud API flow, the whole sequence."""
    signup = simulator.signup(finish="FINISH")
    body = finish(admin.client, csrf_token, page, signup).get_json()
    assert body["status"] == "completed"
    assert {name: status for name, status in statuses(body).items() if status != "skipped"} == {
        name: "ok" for name in ("exchange_code", "confirm_ids", "read_waba", "subscribe_webhooks",
                                "assign_system_user", "share_credit_line", "read_phone_number", "register_phone",
                                "fetch_templates")}
    assert db.session.get(PhoneNumber, signup["phone_number_id"]).registered_at is not None
    assert "number to add" not in admin.get(f"/admin/onboardings/{body['id']}").text


def test_finish_only_waba_ends_connected_with_a_number_to_add(simulator, admin, csrf_token, page):
    """FINISH_ONLY_WABA (implementation.md; bypassing-the-phone-number-addition-screen.md: data
    ``{phone_number_id, waba_id}``): the customer finished without a number; never failed."""
    signup = simulator.signup(finish="FINISH_ONLY_WABA")
    assert signup["data"] == {"phone_number_id": "", "waba_id": signup["waba_id"]}
    body = finish(admin.client, csrf_token, page, signup).get_json()
    assert body["status"] == "completed" and body["phone_number_id"] is None
    assert statuses(body)["read_phone_number"] == statuses(body)["register_phone"] == "skipped"
    assert step(body, "read_phone_number")["detail"] == "the customer finished without a phone number"
    assert statuses(body)["subscribe_webhooks"] == statuses(body)["fetch_templates"] == "ok"
    page_text = admin.get(f"/admin/onboardings/{body['id']}").text
    assert "number to add" in page_text and "Look for numbers" in page_text


def test_any_finish_without_a_number_ends_connected_with_a_number_to_add(simulator, admin, csrf_token, page):
    """versions.md: since v3 a person may finish with no phone number, and the event may still be FINISH."""
    signup = simulator.signup(finish="FINISH", phone=False)
    body = finish(admin.client, csrf_token, page, signup).get_json()
    assert body["status"] == "completed"
    assert statuses(body)["read_phone_number"] == statuses(body)["register_phone"] == "skipped"
    assert "no phone number yet" in step(body, "read_phone_number")["detail"]
    assert "number to add" in admin.get(f"/admin/onboardings/{body['id']}").text


def test_obo_migration_shares_the_credit_line_and_does_not_register_a_connected_number(
        partner, simulator, admin, csrf_token, page):
    """FINISH_OBO_MIGRATION (implementation.md): an account already in use changes hands; its number, connected
    to Cloud API, is not registered again (registration is asked again only after a deregistration)."""
    signup = simulator.signup(finish="FINISH_OBO_MIGRATION")
    body = finish(admin.client, csrf_token, page, signup).get_json()
    assert body["status"] == "completed"
    assert statuses(body)["share_credit_line"] == statuses(body)["read_phone_number"] == "ok"
    assert statuses(body)["register_phone"] == "skipped"
    assert "already connected to Cloud API" in step(body, "register_phone")["detail"]
    assert call_counts(simulator)["register"] == 0
    assert "FINISH_OBO_MIGRATION" in admin.get(f"/admin/onboardings/{body['id']}").text


def test_grant_only_api_access_neither_adds_our_system_user_nor_shares_the_credit_line(
        partner, simulator, admin, csrf_token, page):
    """FINISH_GRANT_ONLY_API_ACCESS (app-only-install.md): only the business token reaches the customer's assets,
    so no system user is added and no credit line shared (which needs that system user)."""
    signup = simulator.signup(finish="FINISH_GRANT_ONLY_API_ACCESS")
    assert set(signup["data"]) == {"phone_number_id", "waba_id", "business_id"}
    body = finish(admin.client, csrf_token, page, signup).get_json()
    assert body["status"] == "completed"
    assert statuses(body)["assign_system_user"] == statuses(body)["share_credit_line"] == "skipped"
    assert "App-Only Install" in step(body, "share_credit_line")["detail"]
    assert statuses(body)["subscribe_webhooks"] == statuses(body)["read_phone_number"] == "ok"
    assert statuses(body)["register_phone"] == "skipped"
    counts = call_counts(simulator)
    assert counts["assigned_users"] == counts["credit_sharing"] == counts["register"] == 0


def test_an_unknown_finish_is_kept_runs_the_safe_steps_and_the_admin_is_told(
        partner, simulator, admin, csrf_token, page):
    """A FINISH_* Meta adds later: kept as sent; only the exchange, the confirmation and the reads run."""
    signup = simulator.signup()
    body = finish(admin.client, csrf_token, page, signup, event="FINISH_SOMETHING_NEW").get_json()
    assert (body["status"], body["event"]) == ("completed", "FINISH_SOMETHING_NEW")
    ran = {name for name, status in statuses(body).items() if status == "ok"}
    assert ran == {"exchange_code", "confirm_ids", "read_waba", "read_phone_number", "fetch_templates"}
    counts = call_counts(simulator)
    assert counts["subscribed_apps"] == counts["credit_sharing"] == counts["register"] == 0
    text = admin.get(f"/admin/onboardings/{body['id']}").text
    assert "Meta reported a finish esu does not know" in text and "FINISH_SOMETHING_NEW" in text


def test_an_unknown_finish_of_a_business_app_number_asks_meta_for_no_sync(partner, simulator, admin, csrf_token, page):
    """The syncs make Meta send the app's contacts and history as webhooks
    (embedded-signup/onboard-whatsapp-business-app-users.md, "Synchronizing WhatsApp Business app data"),
    which needs the subscription an unknown finish does not make: its business-app number is read, not
    synced."""
    signup = simulator.signup(coexistence=True)
    body = finish(admin.client, csrf_token, page, signup, event="FINISH_SOMETHING_NEW").get_json()
    assert body["status"] == "completed", body
    assert statuses(body)["sync_contacts"] == statuses(body)["sync_history"] == "skipped"
    counts = call_counts(simulator)
    assert counts["subscribed_apps"] == counts["smb_app_data"] == counts["register"] == 0


def test_an_event_that_is_no_finish_is_refused(simulator, client, csrf_token, page):
    signup = simulator.signup()
    for event in ("DONE", "FINISH-ish", "finish", "FINISH_" + "X" * 70):
        response = finish(client, csrf_token, page, signup, event=event)
        assert response.status_code == 400 and "event" in response.get_json()["fields"]


def test_several_wabas_are_each_confirmed_subscribed_read_and_onboarded(
        partner, simulator, admin, csrf_token, page):
    """Multi-WABA flows (implementation.md: ``waba_ids``, "only included for multi-WABA flows")."""
    signup = simulator.signup(wabas=3)
    waba_ids = signup["data"]["waba_ids"]
    assert len(waba_ids) == 3 and waba_ids[0] == signup["data"]["waba_id"]
    body = finish(admin.client, csrf_token, page, signup).get_json()
    assert body["status"] == "completed", body
    counts = call_counts(simulator)
    assert counts["waba"] == counts["subscribed_apps"] == counts["credit_sharing"] == counts["register"] == 3
    for waba_id in waba_ids:
        waba = db.session.get(WhatsAppBusinessAccount, waba_id)
        assert waba.subscribed_at is not None and waba.credit_allocation_config_id and waba.name
        assert len(db.session.scalars(sa.select(MessageTemplate).where(MessageTemplate.waba_id == waba_id)).all()) == 3
        [number] = db.session.scalars(sa.select(PhoneNumber).where(PhoneNumber.waba_id == waba_id)).all()
        assert number.registered_at is not None and len(number.pin) == 6
    kept = db.session.scalars(sa.select(OnboardingAsset.asset_id).where(
        OnboardingAsset.onboarding_id == body["id"], OnboardingAsset.kind == "waba").order_by(OnboardingAsset.id))
    assert list(kept) == waba_ids
    text = admin.get(f"/admin/onboardings/{body['id']}").text
    assert all(waba_id in text for waba_id in waba_ids)


def test_a_waba_the_token_was_not_granted_fails_confirmation(simulator, client, csrf_token, page):
    """With the legacy debug_token shape, every WABA the browser lists must be among the granted ones."""
    other = simulator.signup()
    signup = simulator.signup(scopes="legacy")
    body = finish(client, csrf_token, page, signup, waba_ids=[signup["waba_id"], other["waba_id"]]).get_json()
    assert body["status"] == "failed" and statuses(body)["confirm_ids"] == "failed"
    assert other["waba_id"] in step(body, "confirm_ids")["detail"]


def test_the_assets_are_kept_and_shown_to_the_admin(simulator, admin, csrf_token, page):
    """The v4 assets (implementation.md): ad accounts, Pages, datasets, catalogs, Instagram accounts."""
    signup = simulator.signup(assets=["ad_accounts", "pages", "datasets", "catalogs", "instagram_accounts"])
    data = signup["data"]
    for name in ("ad_account_ids", "page_ids", "dataset_ids", "catalog_ids", "instagram_account_ids"):
        assert len(data[name]) == 1 and data[name][0].isdigit()
    body = finish(admin.client, csrf_token, page, signup).get_json()
    assert body["status"] == "completed"
    kept = db.session.execute(sa.select(OnboardingAsset.kind, OnboardingAsset.asset_id)
                              .where(OnboardingAsset.onboarding_id == body["id"])).all()
    assert sorted(kept) == sorted([("waba", data["waba_id"]), ("ad_account", data["ad_account_ids"][0]),
                                   ("page", data["page_ids"][0]), ("dataset", data["dataset_ids"][0]),
                                   ("catalog", data["catalog_ids"][0]),
                                   ("instagram_account", data["instagram_account_ids"][0])])
    text = admin.get(f"/admin/onboardings/{body['id']}").text
    for label, name in (("Ad accounts", "ad_account_ids"), ("Facebook Pages", "page_ids"), ("Datasets", "dataset_ids"),
                        ("Catalogs", "catalog_ids"), ("Instagram accounts", "instagram_account_ids")):
        assert label in text and data[name][0] in text


def test_bad_asset_ids_are_a_400_in_plain_words(simulator, client, csrf_token, page):
    signup = simulator.signup()
    for name, value in (("page_ids", ["not an id"]), ("waba_ids", ["1"] * 51), ("ad_account_ids", "123"),
                        ("catalog_ids", [123]), ("dataset_ids", {"id": "1"}), ("instagram_account_ids", ["١٢٣"])):
        response = finish(client, csrf_token, page, signup, **{name: value})
        assert response.status_code == 400, name
        assert "ids" in response.get_json()["fields"][name] or "digits" in response.get_json()["fields"][name]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Onboarding)) == 0


def test_look_for_numbers_onboards_a_number_added_since(simulator, admin, csrf_token, page):
    """A customer who finished without a number adds one in WhatsApp Manager; the admin's "Look for numbers"
    reads the WABA's numbers and runs the number steps for it."""
    signup = simulator.signup(finish="FINISH_ONLY_WABA")
    body = finish(admin.client, csrf_token, page, signup).get_json()
    url = f"/admin/onboardings/{body['id']}/look-for-numbers"

    nothing = admin.post(url, follow_redirects=True)
    assert "Meta lists no phone number" in nothing.text and "number to add" in nothing.text

    added = Phone(simulator.state.new_id(), signup["waba_id"], display_phone_number="+1 555-010-2030",
                  verified_name="Simulated Business")
    simulator.state.add("phone", added.id, added, parent=signup["waba_id"])
    found = admin.post(url, follow_redirects=True)
    assert "Found number +1 555-010-2030. The onboarding is now completed." in found.text
    assert "number to add" not in found.text
    onboarding = db.session.get(Onboarding, body["id"])
    assert (onboarding.status, onboarding.phone_number_id) == ("completed", added.id)
    assert {onboarding.step(name).status for name in NUMBER_STEPS} == {"ok"}
    assert db.session.get(PhoneNumber, added.id).registered_at is not None
    assert simulator.state.phones[added.id].pin == db.session.get(PhoneNumber, added.id).pin
    actions = db.session.scalars(sa.select(AdminAction.detail).where(AdminAction.action == "looked_for_numbers")
                                 .order_by(AdminAction.id)).all()
    assert actions == ["Meta lists no number yet", f"number {added.id}: completed"]
    again = admin.post(url, follow_redirects=True)
    assert "Not looked for: this onboarding already has its number" in again.text


def add_number(simulator, waba_id: str, display: str) -> Phone:
    """A number the customer has on ``waba_id`` at Meta (added in WhatsApp Manager, or before signup)."""
    number = Phone(simulator.state.new_id(), waba_id, display_phone_number=display, verified_name="Simulated Business")
    simulator.state.add("phone", number.id, number, parent=waba_id)
    return number


def test_several_wabas_where_only_the_second_has_a_number(partner, simulator, admin, csrf_token, page):
    """A multi-WABA flow (implementation.md: ``waba_ids``) finished with no number on the first WABA
    (versions.md: a finish without a number) while the second has one: that number is the onboarding's,
    read, saved under its own WABA and registered; nothing is left "to add"."""
    signup = simulator.signup(wabas=2, finish="FINISH", phone=False)
    first, second = signup["data"]["waba_ids"]
    number = add_number(simulator, second, "+1 555-010-4040")

    body = finish(admin.client, csrf_token, page, signup).get_json()

    assert body["status"] == "completed", body
    assert statuses(body)["read_phone_number"] == statuses(body)["register_phone"] == "ok"
    onboarding = db.session.get(Onboarding, body["id"])
    assert (onboarding.waba_id, onboarding.phone_number_id) == (first, number.id)
    saved = db.session.get(PhoneNumber, number.id)
    assert saved.waba_id == second and saved.registered_at is not None
    assert simulator.state.phones[number.id].pin == saved.pin
    assert db.session.scalars(sa.select(PhoneNumber.id).where(PhoneNumber.waba_id == first)).all() == []
    page_text = admin.get(f"/admin/onboardings/{body['id']}").text
    assert "number to add" not in page_text and "+1 555-010-4040" in page_text


def test_look_for_numbers_finds_a_number_added_to_the_second_waba(simulator, admin, csrf_token, page):
    """A multi-WABA customer who finished without a number adds one to their second WABA: "Look for numbers"
    reads every WABA of the onboarding, not only the first, and onboards it."""
    signup = simulator.signup(wabas=2, finish="FINISH_ONLY_WABA")
    first, second = signup["data"]["waba_ids"]
    body = finish(admin.client, csrf_token, page, signup).get_json()
    assert body["status"] == "completed" and body["phone_number_id"] is None
    number = add_number(simulator, second, "+1 555-010-5050")

    found = admin.post(f"/admin/onboardings/{body['id']}/look-for-numbers", follow_redirects=True)

    assert "Found number +1 555-010-5050. The onboarding is now completed." in found.text
    assert "number to add" not in found.text
    onboarding = db.session.get(Onboarding, body["id"])
    assert (onboarding.waba_id, onboarding.phone_number_id) == (first, number.id)
    saved = db.session.get(PhoneNumber, number.id)
    assert saved.waba_id == second and saved.registered_at is not None
    assert {onboarding.step(name).status for name in NUMBER_STEPS} == {"ok"}


def test_a_coexistence_finish_names_the_waba_alone_and_esu_finds_the_number_among_its_numbers(
        simulator, admin, csrf_token, page):
    """onboard-whatsapp-business-app-users.md, "Onboarding business customers": the session message of
    FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING carries ``data: {waba_id}`` alone. esu lists the WABA's numbers to
    find the business app number, syncs it and never registers it ("skip the phone number registration
    step")."""
    signup = simulator.signup(finish="FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING")
    assert signup["data"] == {"waba_id": signup["waba_id"]}
    body = finish(admin.client, csrf_token, page, signup).get_json()
    assert body["status"] == "completed", body
    assert body["phone_number_id"] == signup["phone_number_id"]
    assert simulator.calls("phone_numbers")  # found by listing the WABA's numbers
    assert statuses(body)["register_phone"] == "skipped"
    assert statuses(body)["sync_contacts"] == statuses(body)["sync_history"] == "ok"
    assert simulator.calls("register") == []
    assert simulator.state.phones[signup["phone_number_id"]].synced == ["smb_app_state_sync", "history"]
