"""A run left ``running`` by a process that died: the window after which it is certainly dead comes from the
Graph client's timeouts and the steps' calls; then the dashboard shows it, the admin and the customer may
retry it."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from esu.config import defaults
from esu.extensions import db
from esu.models import Onboarding, OnboardingStep, now_utc
from esu.onboarding import deadline
from esu.onboarding.runner import _execute

from ..admin_support import gen_onboarding, gen_page
from ..helpers import new_ref

pytest_plugins = ["tests.admin_fixtures"]


def test_the_window_is_the_slowest_step_with_every_graph_attempt_timing_out():
    settings = {"GRAPH_TIMEOUT": (1.0, 2.0), "GRAPH_MAX_ATTEMPTS": 3, "GRAPH_BACKOFF_SECONDS": 0.5}
    one_call = 3 * (1.0 + 2.0) + 0.5 + 1.0  # three attempts, two backoffs
    assert deadline.graph_call_seconds(settings) == one_call
    slowest_step = max(deadline.SEQUENTIAL_CALLS.values()) * one_call
    assert deadline.abandoned_after(settings) == timedelta(seconds=slowest_step + deadline.DATABASE_SECONDS)
    # Longer timeouts, a longer window: nothing fixed.
    slower = settings | {"GRAPH_TIMEOUT": (2.0, 10.0)}
    assert deadline.abandoned_after(slower) > deadline.abandoned_after(settings)
    # With esu's own settings, well under the ten minutes a fixed window used to take.
    assert deadline.abandoned_after(defaults()) < timedelta(minutes=5)


def test_every_step_has_its_calls_counted():
    from esu.onboarding.steps import STEPS

    assert {step.name for step in STEPS} == set(deadline.SEQUENTIAL_CALLS)


def leave_running(ref: str, ago: timedelta) -> None:
    """What a worker killed in the middle of the run leaves behind, ``ago`` later."""
    db.session.execute(sa.update(OnboardingStep).where(OnboardingStep.name == "read_waba").values(status="running"))
    db.session.execute(
        sa.update(Onboarding).where(Onboarding.client_ref == ref).values(status="running", updated_at=now_utc() - ago)
    )
    db.session.commit()


@pytest.mark.parametrize(("past_the_window", "answer"), [(False, 409), (True, 200)])
def test_the_customer_may_retry_once_the_run_is_certainly_dead(
    app, simulator, client, csrf_token, post_callback, past_the_window, answer
):
    simulator.fault("waba", 200, times=1)
    ref = new_ref()
    post_callback(simulator.signup(), client_ref=ref)
    window = deadline.abandoned_after(app.config)
    leave_running(ref, window + timedelta(seconds=5) if past_the_window else window - timedelta(seconds=5))

    progress = client.get(f"/signup/demo/onboardings/{ref}").get_json()
    assert (progress["stuck"], progress["retryable"]) == (past_the_window, past_the_window)
    response = client.post(f"/signup/demo/onboardings/{ref}/retry", headers={"X-CSRFToken": csrf_token})

    assert response.status_code == answer
    if past_the_window:
        assert response.get_json()["status"] == "completed"
        assert len(simulator.calls("waba")) == 2


def test_the_dashboard_and_the_onboarding_page_show_a_stuck_run_and_its_retry(app, admin):
    page = gen_page("shop")
    window = deadline.abandoned_after(app.config)
    stuck = gen_onboarding(
        page,
        status="running",
        business_name="Stuck Shop",
        business_token="EAAstuck",
        updated_at=now_utc() - window - timedelta(minutes=1),
    )
    live = gen_onboarding(
        page,
        status="running",
        business_name="Live Shop",
        business_token="EAAlive",
        updated_at=now_utc() - timedelta(seconds=30),
    )
    db.session.commit()

    dashboard = admin.get("/admin/").get_data(as_text=True)
    section = dashboard.split("signal-stuck")[1].split("</article>")[0]
    assert "Stuck onboardings" in section and "Stuck Shop" in section and "Live Shop" not in section

    shown = admin.get(f"/admin/onboardings/{stuck.id}").get_data(as_text=True)
    assert "Stuck" in shown and "Retry failed steps" in shown
    running = admin.get(f"/admin/onboardings/{live.id}").get_data(as_text=True)
    assert 'id="stuck-title"' not in running and "Retry failed steps" not in running


def test_a_live_run_writes_its_onboarding_as_each_step_starts(app, simulator, post_callback, monkeypatch):
    """What makes the window the slowest step rather than the whole run: when a step starts, the onboarding's
    time is no older than that start (sync_history starts after sync_contacts, whose save writes nothing)."""
    engine = db.engine
    seen: dict[str, object] = {}

    def watching(step, client, ctx):
        with engine.connect() as connection:
            seen[step.name] = connection.scalar(sa.select(Onboarding.updated_at))
        return _execute(step, client, ctx)

    monkeypatch.setattr("esu.onboarding.runner._execute", watching)
    app.config["ONBOARDING_MAX_WORKERS"] = 1  # one step at a time: no other step's save writes meanwhile
    body = post_callback(simulator.signup(coexistence=True)).get_json()
    assert body["status"] == "completed", body

    started = db.session.scalar(sa.select(OnboardingStep.started_at).where(OnboardingStep.name == "sync_history"))
    assert seen["sync_history"] >= started
