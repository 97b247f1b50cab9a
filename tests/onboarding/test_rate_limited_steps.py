"""A step Meta rate-limits waits as long as Meta says, then the worker runs it: no quick retries.

Graph API "Rate limiting" (meta-reference.md §9.2–9.3): codes 4, 17, 32, 613, 80007, 130429, 131056, and the
usage headers ``X-Business-Use-Case-Usage`` / ``X-App-Usage`` whose ``estimated_time_to_regain_access`` says,
in minutes, when calls go through again. The simulator's fault ``wait_minutes`` sends those headers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from esu import forwarding
from esu.cli import onboarding_chores
from esu.extensions import db
from esu.models import Onboarding, now_utc
from esu.onboarding.throttled import run_due

from ..conftest import CREDIT_LINE_ID
from ..helpers import new_ref, step

pytest_plugins = ["tests.admin_fixtures"]


@pytest.fixture
def app_config(app_config):
    app_config["META_CREDIT_LINE_ID"] = CREDIT_LINE_ID  # every step has work to do
    return app_config


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def worker_pass(at: datetime) -> None:
    """One pass of the forwarding worker, its clock at ``at``, with the onboarding chore it runs."""
    clock = lambda: at  # noqa: E731
    forwarding.run_worker(once=True, clock=clock, chores=onboarding_chores(clock))


@pytest.mark.parametrize(("operation", "code", "name"), [
    ("message_templates", 80007, "fetch_templates"),
    ("credit_sharing", 4, "share_credit_line"),
    ("phone_number", 613, "read_phone_number"),
])
def test_a_rate_limited_step_waits_as_long_as_meta_says_then_the_worker_completes_it(
    simulator, client, post_callback, admin, operation, code, name
):
    signup = simulator.signup()
    simulator.fault(operation, code, times=1, wait_minutes=30)
    asked = now_utc()

    body = post_callback(signup, client_ref=new_ref()).get_json()

    assert body["status"] == "rate_limited", body
    waiting = step(body, name)
    assert waiting["status"] == "waiting" and waiting["error"]["code"] == code
    until = when(waiting["wait_until"])
    assert asked + timedelta(minutes=30) <= until <= now_utc() + timedelta(minutes=30)
    assert body["waiting_until"] == waiting["wait_until"]
    assert "waiting until" in waiting["detail"]
    assert len(simulator.calls(operation)) == 1  # no quick retries
    html = admin.get(f"/admin/onboardings/{body['id']}").get_data(as_text=True)
    assert "is waiting until" in html

    worker_pass(until - timedelta(seconds=1))  # not yet

    onboarding = db.session.get(Onboarding, body["id"])
    db.session.refresh(onboarding)
    assert onboarding.status == "rate_limited" and len(simulator.calls(operation)) == 1

    worker_pass(until)

    db.session.refresh(onboarding)
    assert onboarding.status == "completed", [(s.name, s.status, s.detail) for s in onboarding.steps]
    assert len(simulator.calls(operation)) == 2
    assert onboarding.step(name).wait_until is None and onboarding.step(name).error_code is None


def test_without_a_wait_from_meta_a_rate_limited_step_waits_five_minutes(simulator, post_callback):
    signup = simulator.signup()
    simulator.fault("message_templates", 17, times=1)

    body = post_callback(signup).get_json()

    until = when(step(body, "fetch_templates")["wait_until"])
    assert now_utc() + timedelta(minutes=4) < until <= now_utc() + timedelta(minutes=5)
    assert run_due(until) is False
    db.session.expire_all()
    assert db.session.get(Onboarding, body["id"]).status == "completed"


def test_the_customer_cannot_hurry_a_rate_limited_step(simulator, client, csrf_token, post_callback):
    signup = simulator.signup()
    simulator.fault("waba", 80007, times=1, wait_minutes=10)
    ref = new_ref()
    post_callback(signup, client_ref=ref)

    response = client.post(f"/signup/demo/onboardings/{ref}/retry", headers={"X-CSRFToken": csrf_token})

    assert response.status_code == 409
    assert len(simulator.calls("waba")) == 1
