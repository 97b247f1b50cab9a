"""Each Graph operation failing during the callback, and the public retry that finishes the job.

The app runs as a Solution Partner here, so every step of the sequence has work to do.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from esu.extensions import db
from esu.models import Onboarding, OnboardingStep, PhoneNumber, WhatsAppBusinessAccount, now_utc
from esu.onboarding import LABELS

from ..conftest import CREDIT_LINE_ID
from ..helpers import STEP_OPERATIONS, browser_session, call_counts, new_ref, statuses, step
from .conftest import at_once

#: For each operation: the step it belongs to, and the steps that wait for that one.
FAILING = {
    "debug_token": ("confirm_ids", {"share_credit_line"}),
    "waba": ("read_waba", {"share_credit_line"}),
    "subscribed_apps": ("subscribe_webhooks", set()),
    "assigned_users": ("assign_system_user", {"share_credit_line"}),
    "credit_sharing": ("share_credit_line", set()),
    "phone_number": ("read_phone_number", {"register_phone"}),
    "register": ("register_phone", set()),
    "message_templates": ("fetch_templates", set()),
}
# Each operation with a different code: the Graph client's own tests classify every code, these follow
# one failure of each operation through the whole sequence and its retry.
# (Rate limits wait instead of retrying at once: test_rate_limits.py.)
TRANSIENT = [("oauth_access_token", 2), ("oauth_access_token", 4), ("debug_token", 1), ("waba", 1),
             ("subscribed_apps", 131000), ("assigned_users", 2), ("credit_sharing", 131016),
             ("phone_number", 2), ("register", 133004), ("message_templates", 1)]
# (A PIN mismatch waits for the number's PIN: test_registration.py.)
PERMANENT = [("debug_token", 190), ("waba", 100), ("subscribed_apps", 200), ("assigned_users", 100),
             ("credit_sharing", 200), ("phone_number", 190), ("register", 100), ("register", 200),
             ("message_templates", 190)]
#: The WhatsApp Business app syncs do not apply to a plain FINISH.
SKIPPED = {"sync_contacts", "sync_history"}


@pytest.fixture
def app_config(app_config):
    """A Solution Partner: the credit line is shared, so the system user steps run too."""
    app_config["META_CREDIT_LINE_ID"] = CREDIT_LINE_ID
    return app_config


def retry(client, csrf_token, ref: str):
    return client.post(f"/signup/demo/onboardings/{ref}/retry", headers={"X-CSRFToken": csrf_token})


def runs() -> dict[str, int]:
    return {record.name: record.runs for record in db.session.scalars(sa.select(OnboardingStep))}


@pytest.mark.parametrize(("operation", "error_code"), TRANSIENT)
def test_a_transient_error_is_retried_and_the_onboarding_completes(simulator, post_callback, operation, error_code):
    signup = simulator.signup()
    simulator.fault(operation, error_code, times=1)

    response = post_callback(signup)

    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "completed", body
    failing_step = next(name for name, op in STEP_OPERATIONS.items() if op == operation)
    assert step(body, failing_step)["status"] == "ok"
    assert step(body, failing_step)["attempts"] == 2
    assert step(body, failing_step)["error"] is None
    assert call_counts(simulator)[operation] == 2
    others = {name: step(body, name)["attempts"] for name in STEP_OPERATIONS if name != failing_step}
    assert set(others.values()) == {1}


@pytest.mark.parametrize(("operation", "error_code"), PERMANENT)
def test_a_permanent_error_fails_its_step_and_a_retry_finishes_only_what_is_left(
    simulator, client, csrf_token, post_callback, operation, error_code
):
    failing_step, waiting = FAILING[operation]
    signup = simulator.signup()
    simulator.fault(operation, error_code, times=1)
    ref = new_ref()

    body = post_callback(signup, client_ref=ref).get_json()

    assert body["status"] == "failed"
    # Permanent: the customer is not offered "try again"; the retry itself still runs (the admin's button).
    assert body["retryable"] is False
    assert LABELS[failing_step] in body["failure_reason"]
    failed = step(body, failing_step)
    assert failed["status"] == "failed" and failed["attempts"] == 1
    assert failed["error"]["code"] == error_code
    assert failed["error"]["type"] == "OAuthException"
    assert failed["error"]["fbtrace_id"]
    assert failed["error"]["message"] and failed["detail"] == failed["error"]["message"]
    record = db.session.scalar(sa.select(OnboardingStep).where(OnboardingStep.name == failing_step))
    assert (record.error_code, record.error_type, record.fbtrace_id, record.error_message) == (
        error_code, "OAuthException", failed["error"]["fbtrace_id"], failed["error"]["message"])
    for name in waiting:
        assert step(body, name)["status"] == "pending"
        assert step(body, name)["detail"] == f"waits for {failing_step}"
    expected_ok = set(STEP_OPERATIONS) - {failing_step} - waiting
    assert {name for name, status in statuses(body).items() if status == "ok"} == expected_ok
    # The syncs wait for the subscription and the number's read, which tells them it is not on the app.
    syncs_wait = failing_step in ("subscribe_webhooks", "read_phone_number")
    assert {name for name, status in statuses(body).items() if status == "skipped"} == (
        set() if syncs_wait else SKIPPED)
    # What succeeded is saved: the token, and each ok step's result.
    onboarding = db.session.get(Onboarding, body["id"])
    assert onboarding.business_token in simulator.state.tokens
    saved = {record.name for record in onboarding.steps if record.result is not None}
    assert saved == expected_ok
    before_runs, before_calls = runs(), call_counts(simulator)

    response = retry(client, csrf_token, ref)

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "completed", body
    assert body["failure_reason"] is None and body["retryable"] is False
    assert step(body, failing_step)["error"] is None
    after_runs = runs()
    for name in expected_ok:
        assert after_runs[name] == before_runs[name] == 1, name
    assert after_runs[failing_step] == 2
    for name in waiting:
        assert after_runs[name] == 1
    redone = {STEP_OPERATIONS[name] for name in {failing_step, *waiting}}
    assert {op for op, count in (call_counts(simulator) - before_calls).items() if count} == redone
    assert len(simulator.calls("subscribed_apps")) == (2 if operation == "subscribed_apps" else 1)
    assert len(simulator.calls("assigned_users")) == (2 if operation == "assigned_users" else 1)
    assert len(simulator.calls("oauth_access_token")) == 1
    waba = db.session.get(WhatsAppBusinessAccount, signup["waba_id"])
    assert waba.subscribed_at is not None and waba.credit_allocation_config_id is not None
    assert db.session.get(PhoneNumber, signup["phone_number_id"]).registered_at is not None


@pytest.mark.parametrize("error_code", [100, 190, 200])
def test_a_failed_code_exchange_cannot_be_retried(simulator, client, csrf_token, post_callback, error_code):
    signup = simulator.signup()
    simulator.fault("oauth_access_token", error_code, times=1)
    ref = new_ref()

    body = post_callback(signup, client_ref=ref).get_json()

    assert body["status"] == "failed" and body["retryable"] is False
    assert LABELS["exchange_code"] in body["failure_reason"]
    assert step(body, "exchange_code")["error"]["code"] == error_code
    for name in set(STEP_OPERATIONS) - {"exchange_code"}:
        assert step(body, name)["status"] == "pending", name
        assert step(body, name)["detail"].startswith("waits for "), name
    assert step(body, "read_waba")["detail"] == "waits for exchange_code"
    assert db.session.get(Onboarding, body["id"]).business_token is None

    response = retry(client, csrf_token, ref)

    assert response.status_code == 409
    assert "signup again" in response.get_json()["error"]
    assert len(simulator.calls("oauth_access_token")) == 1


def test_retries_are_bounded(app, simulator, post_callback):
    limit = app.config["GRAPH_MAX_ATTEMPTS"]
    signup = simulator.signup()
    simulator.fault("waba", 2, times=limit + 1)

    body = post_callback(signup).get_json()

    assert body["status"] == "failed"
    assert step(body, "read_waba")["status"] == "failed"
    assert step(body, "read_waba")["attempts"] == limit
    assert step(body, "read_waba")["error"]["code"] == 2
    assert len(simulator.calls("waba")) == limit


def test_a_completed_onboarding_has_nothing_to_retry(simulator, client, csrf_token, post_callback):
    ref = new_ref()
    assert post_callback(simulator.signup(), client_ref=ref).get_json()["status"] == "completed"
    calls = len(simulator.calls())

    response = retry(client, csrf_token, ref)

    assert response.status_code == 409
    assert "nothing to retry" in response.get_json()["error"]
    assert len(simulator.calls()) == calls


def test_a_retry_while_the_onboarding_runs_is_refused(simulator, client, csrf_token, post_callback):
    simulator.fault("waba", 200, times=1)
    ref = new_ref()
    post_callback(simulator.signup(), client_ref=ref)
    # What a retry finds while the callback, or another retry, is still working on the onboarding.
    db.session.execute(sa.update(Onboarding).values(status="running"))
    db.session.commit()
    calls = len(simulator.calls())

    response = retry(client, csrf_token, ref)

    assert response.status_code == 409
    assert response.get_json()["error"] == "this onboarding is running right now; follow its progress instead"
    assert len(simulator.calls()) == calls


def test_a_run_abandoned_by_a_dead_process_can_be_retried(simulator, client, csrf_token, post_callback):
    simulator.fault("waba", 200, times=1)
    ref = new_ref()
    post_callback(simulator.signup(), client_ref=ref)
    # What a worker killed in the middle of the callback leaves behind, eleven minutes later.
    db.session.execute(sa.update(OnboardingStep).where(OnboardingStep.name == "read_waba").values(status="running"))
    db.session.execute(sa.update(Onboarding).values(status="running", updated_at=now_utc() - timedelta(minutes=11)))
    db.session.commit()

    response = retry(client, csrf_token, ref)

    assert response.status_code == 200
    assert response.get_json()["status"] == "completed"
    assert len(simulator.calls("waba")) == 2 and len(simulator.calls("subscribed_apps")) == 1


def test_retry_of_an_unknown_onboarding_is_404(client, csrf_token):
    response = retry(client, csrf_token, new_ref())
    assert response.status_code == 404
    assert response.is_json


def test_two_racing_retries_run_the_failed_steps_once(simulator, served_app, page, post_callback):
    signup = simulator.signup()
    simulator.fault("subscribed_apps", 200, times=1)
    ref = new_ref()
    assert post_callback(signup, client_ref=ref).get_json()["status"] == "failed"
    browsers = [browser_session(served_app.url) for _ in range(2)]

    answers = at_once(browsers, lambda session, token: session.post(
        f"{served_app.url}/signup/demo/onboardings/{ref}/retry", headers={"X-CSRFToken": token},
        timeout=30).status_code)

    assert sorted(answers) == [200, 409]
    assert len(simulator.calls("subscribed_apps")) == 2  # the failed call, then one retry
    db.session.expire_all()
    assert db.session.scalar(sa.select(Onboarding.status)) == "completed"
