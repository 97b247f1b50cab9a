"""The onboarding sequence behind the callback, against the simulator over real HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from esu.extensions import db
from esu.graph import GraphClient, GraphError
from esu.models import MessageTemplate, Onboarding, OnboardingStep, PhoneNumber, WhatsAppBusinessAccount, now_utc
from esu.simulator.errors import USER_TEXTS

from ..conftest import CREDIT_LINE_ID
from ..helpers import browser_session, new_ref, statuses, step
from .conftest import at_once


def test_tech_provider_happy_path(simulator, post_callback):
    signup = simulator.signup(business_name="Wind & Wool")
    response = post_callback(signup)
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "completed"
    assert body["business_name"] == "Wind & Wool"
    assert statuses(body) == {
        "exchange_code": "ok", "confirm_ids": "ok", "read_waba": "ok", "subscribe_webhooks": "ok",
        "assign_system_user": "skipped", "share_credit_line": "skipped", "read_phone_number": "ok",
        "register_phone": "ok", "sync_contacts": "skipped", "sync_history": "skipped", "fetch_templates": "ok",
    }
    onboarding = db.session.get(Onboarding, body["id"])
    assert onboarding.page.slug == "demo"
    waba = db.session.get(WhatsAppBusinessAccount, signup["waba_id"])
    assert waba.message_template_namespace and waba.subscribed_at is not None
    assert simulator.state.wabas[signup["waba_id"]].subscribed_apps == ["1234567890123456"]
    phone = db.session.get(PhoneNumber, signup["phone_number_id"])
    assert phone.registered_at is not None and len(phone.pin) == 6
    assert simulator.state.phones[signup["phone_number_id"]].pin == phone.pin
    names = db.session.scalars(sa.select(MessageTemplate.name).where(MessageTemplate.waba_id == waba.id)).all()
    assert sorted(names) == ["order_update_1", "order_update_2", "order_update_3"]  # approved only


def test_solution_partner_shares_the_credit_line(app_config, simulator, request):
    app_config["META_CREDIT_LINE_ID"] = CREDIT_LINE_ID
    client = request.getfixturevalue("post_callback")
    signup = simulator.signup()
    body = client(signup).get_json()
    assert body["status"] == "completed"
    assert statuses(body)["assign_system_user"] == "ok" and statuses(body)["share_credit_line"] == "ok"
    waba = db.session.get(WhatsAppBusinessAccount, signup["waba_id"])
    allocation = simulator.state.allocations[waba.credit_allocation_config_id]
    assert allocation == {"credit_line_id": CREDIT_LINE_ID, "waba_id": signup["waba_id"],
                          "credential_id": simulator.state.wabas[signup["waba_id"]].primary_funding_id}


# -- steps run concurrently where they can ----------------------------------------------------------


def test_independent_steps_overlap_and_dependent_ones_wait(app_config, simulator, request):
    app_config["META_CREDIT_LINE_ID"] = CREDIT_LINE_ID
    post_callback = request.getfixturevalue("post_callback")
    signup = simulator.signup()
    simulator.latency(200)  # long enough for the six calls to meet even on a busy machine

    body = post_callback(signup).get_json()

    assert body["status"] == "completed"
    records = {record.name: record for record in db.session.get(Onboarding, body["id"]).steps}
    # Six steps need only the token; they run side by side, not one after another.
    assert simulator.state.max_in_flight >= 3
    independent = ["confirm_ids", "read_waba", "subscribe_webhooks", "assign_system_user", "read_phone_number",
                   "fetch_templates"]
    assert max(records[name].started_at for name in independent) < min(
        records[name].finished_at for name in independent)
    assert records["share_credit_line"].started_at >= records["confirm_ids"].finished_at
    assert records["share_credit_line"].started_at >= records["assign_system_user"].finished_at
    assert records["register_phone"].started_at >= records["read_phone_number"].finished_at
    assert records["confirm_ids"].started_at >= records["exchange_code"].finished_at


def test_each_step_is_saved_as_running_before_meta_hears_of_it(app_config, simulator, request, monkeypatch):
    from esu.simulator import graph as simulated_graph

    app_config["META_CREDIT_LINE_ID"] = CREDIT_LINE_ID
    post_callback = request.getfixturevalue("post_callback")
    steps = {"oauth_access_token": "exchange_code", "debug_token": "confirm_ids", "waba": "read_waba",
             "subscribed_apps": "subscribe_webhooks", "assigned_users": "assign_system_user",
             "credit_sharing": "share_credit_line", "phone_number": "read_phone_number", "register": "register_phone",
             "message_templates": "fetch_templates"}
    engine = db.engine  # another connection sees only what was committed
    seen: dict[str, str | None] = {}
    route = simulated_graph._route

    def route_and_look(parts):
        handler, operation = route(parts)
        with engine.connect() as connection:
            seen[steps[operation]] = connection.scalar(
                sa.select(OnboardingStep.status).where(OnboardingStep.name == steps[operation]))
        return handler, operation

    monkeypatch.setattr(simulated_graph, "_route", route_and_look)
    assert post_callback(simulator.signup()).get_json()["status"] == "completed"
    assert seen == {name: "running" for name in steps.values()}


# -- one code, one onboarding ------------------------------------------------------------------------


def test_the_same_code_twice_is_409_with_the_first_onboarding(simulator, post_callback):
    signup = simulator.signup()
    first = post_callback(signup)
    assert first.status_code == 201

    second = post_callback(signup)

    assert second.status_code == 409
    body = second.get_json()
    assert "already received" in body["error"]
    assert body["onboarding"] == {"id": first.get_json()["id"], "status": "completed"}
    assert len(simulator.calls("oauth_access_token")) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Onboarding)) == 1


def test_two_callbacks_racing_with_one_code_make_one_onboarding(simulator, served_app, page):
    signup = simulator.signup()
    simulator.latency(20)  # the winner is still working while the loser arrives
    browsers = [browser_session(served_app.url) for _ in range(2)]
    body = {key: signup[key] for key in ("code", "event", "waba_id", "phone_number_id", "business_id")}

    answers = at_once(browsers, lambda session, token: session.post(
        f"{served_app.url}/signup/demo/callback", timeout=30, json={**body, "client_ref": new_ref()},
        headers={"X-CSRFToken": token}))

    assert sorted(answer.status_code for answer in answers) == [201, 409]
    winner = next(answer for answer in answers if answer.status_code == 201).json()
    loser = next(answer for answer in answers if answer.status_code == 409).json()
    assert loser["onboarding"]["id"] == winner["id"]
    assert len(simulator.calls("oauth_access_token")) == 1
    assert len(simulator.calls("subscribed_apps")) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Onboarding)) == 1


def test_an_expired_code_fails_the_exchange(simulator, post_callback, monkeypatch):
    signup = simulator.signup()
    real_clock = simulator.state.clock
    monkeypatch.setattr(simulator.state, "clock", lambda: real_clock() + 31)  # the code lives 30 s

    body = post_callback(signup).get_json()

    assert body["status"] == "failed" and body["retryable"] is False
    exchange = step(body, "exchange_code")
    assert exchange["status"] == "failed"
    assert (exchange["error"]["code"], exchange["error"]["error_subcode"]) == (100, 36007)
    assert "expired" in exchange["detail"]


def test_meta_refuses_a_code_used_once_already(app, simulator):
    signup = simulator.signup()
    api = GraphClient.from_config(app.config)
    assert api.exchange_code(signup["code"])["access_token"].startswith("EAA")

    with pytest.raises(GraphError) as refused:
        api.exchange_code(signup["code"])

    assert (refused.value.code, refused.value.error_subcode) == (100, 36009)
    assert refused.value.transient is False and refused.value.attempts == 1


# -- the flows Embedded Signup can finish with ------------------------------------------------------


def test_finish_only_waba_has_no_number_steps(simulator, post_callback):
    signup = simulator.signup(phone=False)
    assert signup["event"] == "FINISH_ONLY_WABA" and signup["phone_number_id"] == ""

    body = post_callback(signup).get_json()

    assert body["status"] == "completed"
    assert {name for name, status in statuses(body).items() if status == "skipped"} == {
        "assign_system_user", "share_credit_line", "read_phone_number", "register_phone", "sync_contacts",
        "sync_history"}
    assert step(body, "read_phone_number")["detail"] == "the customer finished without a phone number"
    assert simulator.calls("phone_number") == [] and simulator.calls("register") == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PhoneNumber)) == 0
    assert db.session.get(WhatsAppBusinessAccount, signup["waba_id"]).subscribed_at is not None


def test_a_whatsapp_business_app_number_is_synced_not_registered(simulator, post_callback):
    signup = simulator.signup(coexistence=True)
    assert signup["event"] == "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING"

    body = post_callback(signup).get_json()

    assert body["status"] == "completed"
    assert statuses(body)["sync_contacts"] == "ok" and statuses(body)["sync_history"] == "ok"
    assert statuses(body)["register_phone"] == "skipped"
    assert "WhatsApp Business app" in step(body, "register_phone")["detail"]
    assert simulator.calls("register") == []
    assert simulator.state.phones[signup["phone_number_id"]].synced == ["smb_app_state_sync", "history"]
    assert db.session.get(PhoneNumber, signup["phone_number_id"]).platform_type == "CLOUD_API"


def test_a_failed_history_sync_is_retried_without_asking_for_the_contacts_again(
    simulator, client, csrf_token, post_callback
):
    signup = simulator.signup(coexistence=True)
    simulator.fault("smb_app_data", 200, times=1, after=1)  # the contacts sync passes, the history sync fails
    ref = new_ref()

    body = post_callback(signup, client_ref=ref).get_json()

    assert body["status"] == "failed", body
    assert statuses(body)["sync_contacts"] == "ok" and statuses(body)["sync_history"] == "failed"
    assert simulator.state.phones[signup["phone_number_id"]].synced == ["smb_app_state_sync"]

    body = client.post(f"/signup/demo/onboardings/{ref}/retry", headers={"X-CSRFToken": csrf_token}).get_json()

    assert body["status"] == "completed", body
    assert simulator.state.phones[signup["phone_number_id"]].synced == ["smb_app_state_sync", "history"]
    assert len(simulator.calls("smb_app_data")) == 3  # contacts once; history failed, then again


def test_a_code_alone_is_enough_the_waba_and_number_are_discovered(simulator, post_callback):
    signup = simulator.signup()

    body = post_callback({"code": signup["code"]}).get_json()

    assert body["status"] == "completed"
    assert body["waba_id"] == signup["waba_id"]
    assert body["phone_number_id"] == signup["phone_number_id"]
    onboarding = db.session.get(Onboarding, body["id"])
    assert (onboarding.waba_id, onboarding.phone_number_id) == (signup["waba_id"], signup["phone_number_id"])
    records = {record.name: record for record in onboarding.steps}
    # Without a WABA id from the browser, nothing touches a WABA before debug_token has named it.
    assert records["read_waba"].started_at >= records["confirm_ids"].finished_at
    assert records["subscribe_webhooks"].started_at >= records["confirm_ids"].finished_at
    assert simulator.state.phones[signup["phone_number_id"]].status == "CONNECTED"


def test_a_waba_the_customer_did_not_grant_is_refused_in_the_legacy_scopes(simulator, post_callback):
    # Before June 2026 debug_token listed the granted WABAs (meta-reference.md 3.2): esu checks the list.
    someone_else = simulator.signup(business_name="Someone else")
    signup = simulator.signup(scopes="legacy")

    body = post_callback({**signup, "waba_id": someone_else["waba_id"], "phone_number_id": ""}).get_json()

    assert body["status"] == "failed"
    assert "is not among those the customer granted" in step(body, "confirm_ids")["detail"]
    assert simulator.state.wabas[someone_else["waba_id"]].subscribed_apps == []


def test_a_waba_the_token_cannot_read_fails_and_gets_no_credit_line(app_config, simulator, request):
    # Today's debug_token names no WABA (chatwoot/chatwoot#14690): reading the WABA with the customer's token
    # is the proof, and the credit line, which bills us, waits for it.
    app_config["META_CREDIT_LINE_ID"] = CREDIT_LINE_ID
    post_callback = request.getfixturevalue("post_callback")
    someone_else = simulator.signup(business_name="Someone else")
    signup = simulator.signup()

    body = post_callback({**signup, "waba_id": someone_else["waba_id"], "phone_number_id": ""}).get_json()

    assert body["status"] == "failed"
    assert step(body, "confirm_ids")["status"] == "ok"
    assert step(body, "read_waba")["status"] == "failed"
    assert step(body, "read_waba")["error"]["code"] == 200
    assert step(body, "share_credit_line")["status"] == "pending"
    assert simulator.calls("credit_sharing") == []
    assert simulator.state.wabas[someone_else["waba_id"]].subscribed_apps == []


# -- an unverified number ---------------------------------------------------------------------------


def endpoint(ref: str, action: str) -> str:
    return f"/signup/demo/onboardings/{ref}/{action}"


def test_an_unverified_number_is_registered_once_the_code_is_entered(simulator, client, csrf_token, post_callback):
    signup = simulator.signup(phone_verified=False)
    ref = new_ref()
    headers = {"X-CSRFToken": csrf_token}

    body = post_callback(signup, client_ref=ref).get_json()

    assert body["status"] == "awaiting_verification"
    assert step(body, "register_phone")["status"] == "waiting"
    assert "not verified" in step(body, "register_phone")["detail"]
    assert simulator.calls("register") == []
    assert client.get(endpoint(ref, "")[:-1]).get_json()["status"] == "awaiting_verification"

    sent = client.post(endpoint(ref, "request-code"), json={"method": "SMS"}, headers=headers)
    assert sent.status_code == 200
    assert sent.get_json() == {"sent": True, "method": "SMS", "resend_after_seconds": 60}
    again = client.post(endpoint(ref, "request-code"), json={"method": "VOICE"}, headers=headers)
    assert again.status_code == 429
    assert "ask again in" in again.get_json()["error"]
    assert simulator.state.phones[signup["phone_number_id"]].code_requests == ["SMS"]

    wrong = client.post(endpoint(ref, "verify-code"), json={"code": "654321"}, headers=headers)
    assert wrong.status_code == 400
    # The person reads plain words (Meta's for people), never Meta's "(#136025) …"; the step keeps Meta's
    # whole error for the admin.
    assert wrong.get_json()["error"] == USER_TEXTS[(136025, None)][1]
    kept = db.session.scalar(sa.select(OnboardingStep).where(OnboardingStep.name == "verify_code"))
    assert (kept.error_code, kept.error_message) == (
        136025, "(#136025) Verification code mismatch. Check the code and try again.")
    assert client.get(endpoint(ref, "")[:-1]).get_json()["status"] == "awaiting_verification"

    right = client.post(endpoint(ref, "verify-code"), json={"code": "123456"}, headers=headers)

    assert right.status_code == 200
    body = right.get_json()
    assert body["status"] == "completed", body
    assert statuses(body)["register_phone"] == "ok" and statuses(body)["verify_code"] == "ok"
    phone = db.session.get(PhoneNumber, signup["phone_number_id"])
    assert phone.code_verification_status == "VERIFIED" and phone.registered_at is not None
    assert simulator.state.phones[signup["phone_number_id"]].pin == phone.pin
    assert len(simulator.calls("register")) == 1
    again = client.post(endpoint(ref, "verify-code"), json={"code": "123456"}, headers=headers)
    assert again.status_code == 409


def test_a_voice_code_can_be_asked_for_once_the_cooldown_has_passed(simulator, client, csrf_token, post_callback):
    signup = simulator.signup(phone_verified=False)
    ref = new_ref()
    headers = {"X-CSRFToken": csrf_token}
    post_callback(signup, client_ref=ref)
    assert client.post(endpoint(ref, "request-code"), json={"method": "SMS"}, headers=headers).status_code == 200
    sent = db.session.scalar(sa.select(OnboardingStep).where(OnboardingStep.name == "request_code"))
    sent.started_at = sent.finished_at = now_utc() - timedelta(seconds=61)  # the minute has passed
    db.session.commit()

    response = client.post(endpoint(ref, "request-code"), json={"method": "VOICE"}, headers=headers)

    assert response.status_code == 200 and response.get_json()["method"] == "VOICE"
    assert simulator.state.phones[signup["phone_number_id"]].code_requests == ["SMS", "VOICE"]


def test_code_requests_racing_ask_meta_once_and_the_others_hear_when_to_ask_again(
        simulator, served_app, page, post_callback):
    signup = simulator.signup(phone_verified=False)
    ref = new_ref()
    post_callback(signup, client_ref=ref)
    simulator.latency(20)  # the first is still with Meta while the others arrive
    browsers = [browser_session(served_app.url) for _ in range(10)]

    answers = at_once(browsers, lambda session, token: session.post(
        served_app.url + endpoint(ref, "request-code"), json={"method": "SMS"}, headers={"X-CSRFToken": token},
        timeout=30))

    assert sorted(answer.status_code for answer in answers) == [200] + [429] * 9, [a.text for a in answers]
    assert simulator.state.phones[signup["phone_number_id"]].code_requests == ["SMS"]
    for refused in (answer for answer in answers if answer.status_code == 429):
        assert "ask again in" in refused.json()["error"]
        assert 0 < int(refused.headers["Retry-After"]) <= 60


# Six digits of another script are digits to Python's \d, never to Meta: they must not be sent on.
@pytest.mark.parametrize("code", ["12ab56", "١٢٣٤٥٦", "１２３４５６", "12345"])
def test_a_verification_code_must_be_six_digits(simulator, client, csrf_token, post_callback, code):
    ref = new_ref()
    post_callback(simulator.signup(phone_verified=False), client_ref=ref)

    response = client.post(endpoint(ref, "verify-code"), json={"code": code}, headers={"X-CSRFToken": csrf_token})

    assert response.status_code == 400
    assert response.get_json()["fields"] == {"code": "is the 6-digit code Meta sent"}
    assert simulator.calls("verify_code") == []


def test_a_code_request_needs_a_known_method_and_a_waiting_number(simulator, client, csrf_token, post_callback):
    headers = {"X-CSRFToken": csrf_token}
    waiting, done = new_ref(), new_ref()
    post_callback(simulator.signup(phone_verified=False), client_ref=waiting)
    post_callback(simulator.signup(), client_ref=done)

    fax = client.post(endpoint(waiting, "request-code"), json={"method": "FAX"}, headers=headers)
    completed = client.post(endpoint(done, "request-code"), json={"method": "SMS"}, headers=headers)

    assert fax.status_code == 400 and "SMS or VOICE" in fax.get_json()["error"]
    assert completed.status_code == 409 and "does not wait for a verification code" in completed.get_json()["error"]
    assert simulator.calls("request_code") == []


# -- Meta's limit on registrations: 10 per number in 72 hours ------------------------------------------


def preset_registrations(phone_number_id: str, attempts: int, started_hours_ago: float) -> None:
    db.session.add(PhoneNumber(id=phone_number_id, registration_attempts=attempts,
                               registration_window_started_at=now_utc() - timedelta(hours=started_hours_ago)))
    db.session.commit()


def test_the_register_limit_fails_the_step_without_calling_meta(simulator, post_callback):
    signup = simulator.signup()
    preset_registrations(signup["phone_number_id"], attempts=10, started_hours_ago=1)

    body = post_callback(signup).get_json()

    assert body["status"] == "failed"
    register = step(body, "register_phone")
    assert register["status"] == "failed" and register["attempts"] == 0
    assert register["detail"] == ("Meta allows 10 registration attempts per number in 72 hours; "
                                  "try again after the window has passed")
    assert simulator.calls("register") == []


def test_a_window_that_has_passed_starts_a_new_count(simulator, post_callback):
    signup = simulator.signup()
    preset_registrations(signup["phone_number_id"], attempts=10, started_hours_ago=73)

    body = post_callback(signup).get_json()

    assert body["status"] == "completed"
    phone = db.session.get(PhoneNumber, signup["phone_number_id"])
    assert phone.registration_attempts == 1
    assert now_utc() - phone.registration_window_started_at < timedelta(minutes=1)


def test_graphs_retries_of_a_registration_each_count(simulator, post_callback):
    signup = simulator.signup()
    simulator.fault("register", 2, times=1)  # transient: the client sends it again

    assert post_callback(signup).get_json()["status"] == "completed"

    assert len(simulator.calls("register")) == 2
    assert db.session.get(PhoneNumber, signup["phone_number_id"]).registration_attempts == 2


class Killed(BaseException):
    """The worker process dying: nothing after it runs, nothing uncommitted is kept."""


def test_a_registration_meta_got_from_a_killed_worker_is_counted(simulator, client, csrf_token, post_callback,
                                                                monkeypatch):
    signup = simulator.signup()
    register = GraphClient.register_phone

    def register_then_die(self, *args, **kwargs):
        register(self, *args, **kwargs)  # Meta has it
        raise Killed

    monkeypatch.setattr(GraphClient, "register_phone", register_then_die)
    ref = new_ref()
    with pytest.raises(Killed):
        post_callback(signup, client_ref=ref)
    monkeypatch.undo()
    db.session.execute(sa.update(Onboarding).values(updated_at=now_utc() - timedelta(minutes=11)))  # abandoned
    db.session.commit()

    body = client.post(endpoint(ref, "retry"), headers={"X-CSRFToken": csrf_token}).get_json()

    assert body["status"] == "completed", body
    assert len(simulator.calls("register")) == 2
    db.session.expire_all()
    assert db.session.get(PhoneNumber, signup["phone_number_id"]).registration_attempts == 2


def test_meta_answering_133016_stops_further_registration_attempts(simulator, client, csrf_token, post_callback):
    signup = simulator.signup()
    simulator.fault("register", 133016, times=1)
    ref = new_ref()

    body = post_callback(signup, client_ref=ref).get_json()

    register = step(body, "register_phone")
    assert register["status"] == "failed" and register["error"]["code"] == 133016
    assert register["detail"] == "(#133016) Account register deregister rate limit exceeded"
    assert db.session.get(PhoneNumber, signup["phone_number_id"]).registration_attempts == 10

    body = client.post(endpoint(ref, "retry"), headers={"X-CSRFToken": csrf_token}).get_json()

    assert step(body, "register_phone")["status"] == "failed"
    assert "10 registration attempts" in step(body, "register_phone")["detail"]
    assert len(simulator.calls("register")) == 1


def test_progress_asked_while_the_callback_is_on_its_way_is_202_until_it_makes_the_onboarding(
        client, csrf_token, simulator):
    """The widget follows the steps from the moment it posts the callback (``?submitted=1``); a slow start
    that has not made the onboarding yet is "sent, not there yet", not a 404 (an error in the browser's
    console). Without the parameter an unknown reference stays 404: that is how the widget, back after a
    lost answer, knows to send its callback again."""
    ref = new_ref()

    waiting = client.get(f"/signup/demo/onboardings/{ref}?submitted=1")
    assert waiting.status_code == 202 and waiting.get_json() == {"status": "submitted"}
    assert client.get(f"/signup/demo/onboardings/{ref}").status_code == 404

    done = client.post("/signup/demo/callback", json={**simulator.signup(), "client_ref": ref},
                       headers={"X-CSRFToken": csrf_token})
    assert done.status_code == 201
    following = client.get(f"/signup/demo/onboardings/{ref}?submitted=1")
    assert following.status_code == 200 and following.get_json()["status"] == done.get_json()["status"]
