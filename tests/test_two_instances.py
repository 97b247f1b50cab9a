"""Two app instances (gunicorn, each its own process) on different ports, one PostgreSQL database and one
simulator: what a load balancer in front of several instances does to the same signup, the same webhook,
and an admin retry while a webhook lands. Only the database keeps them from doing things twice or undoing
each other's writes, so this runs on PostgreSQL (CI's second run), the only database instances share."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from cryptography.fernet import Fernet

from esu.extensions import db
from esu.forwarding.signing import new_secret
from esu.models import (
    Onboarding,
    OnboardingStep,
    PhoneNumber,
    WebhookEvent,
    WhatsAppBusinessAccount,
)
from esu.models.admin import AdminAction
from esu.models.forwarding import ForwardDelivery, ForwardingTarget

from .admin_support import CSRF_META, PASSWORD
from .conftest import META
from .helpers import browser_session, call_counts, new_ref, statuses
from .webhooks.conftest import encode, envelope, sign, text_message

pytest_plugins = ["tests.admin_fixtures"]  # stored_admin: the admin account, with PASSWORD

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="two instances share one database only on PostgreSQL: set DATABASE_URL=postgresql+psycopg://…",
)

ROOT = Path(__file__).resolve().parents[1]
PARTNER_BUSINESS_ID = "2949482758682047"  # the entry Meta sends partner events in
STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Instance:
    """esu under gunicorn with the checked-in gunicorn.conf.py, on its own port, logging to a file."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
            cwd=ROOT, env={**env, "ESU_BIND": f"127.0.0.1:{self.port}"}, stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])

    def wait_until_healthy(self, deadline: float) -> None:
        """Poll /healthz until it answers 200 (database reached, schema current), the process dies, or time
        runs out."""
        while True:
            try:
                if requests.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or still starting its worker
                pass
            if self.process.poll() is not None:
                pytest.fail(f"instance {self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"instance {self.name} was not healthy within {STARTUP_SECONDS} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


@pytest.fixture
def app_config(app_config):
    """The suite's settings with an encryption key of their own, which the instances get too: the
    in-process app (which makes the page and the admin, and reads the results) reads what they encrypt."""
    return {**app_config, "ESU_ENCRYPTION_KEYS": Fernet.generate_key().decode()}


@pytest.fixture
def shared_settings(app_config) -> dict[str, str]:
    """What every instance behind the load balancer shares: the secrets (a session or token from one is
    good on the other), Meta's app, the database and Graph (the simulator)."""
    return {
        **META,
        "SECRET_KEY": app_config["SECRET_KEY"],
        "ESU_ENCRYPTION_KEYS": app_config["ESU_ENCRYPTION_KEYS"],
        "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"],
        "ESU_SIMULATOR": "0",
        "META_GRAPH_URL": app_config["META_GRAPH_URL"],
    }


@pytest.fixture
def instances(shared_settings, app, page, tmp_path):
    """Instances A and B, each one gunicorn worker with four threads, both healthy; always stopped."""
    # PostgreSQL's own variables (PGPASSWORD…) pass through; nothing else of the caller's environment does.
    env = {name: value for name, value in os.environ.items() if name.startswith("PG")}
    env |= {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "4",
            "GUNICORN_GRACEFUL_TIMEOUT": "10", **shared_settings}
    started: list[Instance] = []
    try:
        for name in ("a", "b"):
            started.append(Instance(name, env, tmp_path / f"instance-{name}.log"))
        deadline = time.monotonic() + STARTUP_SECONDS
        for instance in started:
            instance.wait_until_healthy(deadline)
        yield started
    finally:
        for instance in started:
            instance.stop()


def at_once(*calls: Callable[[], requests.Response]) -> list[requests.Response]:
    """Run the calls in threads released together by a barrier; answers their responses in call order."""
    barrier = threading.Barrier(len(calls))
    answers: list[requests.Response | None] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(position: int, call: Callable[[], requests.Response]) -> None:
        try:
            barrier.wait(timeout=10)
            answers[position] = call()
        except BaseException as exc:  # noqa: BLE001 -- reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert all(answer is not None for answer in answers), "a request never finished"
    return answers


def callback(instance: Instance, signup: dict, client_ref: str) -> Callable[[], requests.Response]:
    """The widget's callback to ``instance``, from a browser that opened the signup page there."""
    session, token = browser_session(instance.url)
    body = {key: signup[key] for key in ("code", "event", "waba_id", "phone_number_id", "business_id")}
    return lambda: session.post(f"{instance.url}/signup/demo/callback", json={**body, "client_ref": client_ref},
                                headers={"X-CSRFToken": token}, timeout=60)


def webhook(instance: Instance, body: bytes) -> Callable[[], requests.Response]:
    """Meta's delivery of ``body`` to ``instance``, signed."""
    return lambda: requests.post(f"{instance.url}/webhooks/whatsapp", data=body, timeout=60,
                                 headers={"X-Hub-Signature-256": sign(body), "Content-Type": "application/json"})


def onboarded(instance: Instance, simulator, **options) -> dict:
    """A customer onboarded through ``instance``: the summary the callback answered."""
    signup = simulator.signup(**options)
    response = callback(instance, signup, new_ref())()
    assert response.status_code == 201, response.text
    return response.json()


def fresh(model, *where):
    """Rows as the database holds them now (another process wrote them)."""
    db.session.expire_all()
    return list(db.session.scalars(sa.select(model).where(*where)))


def count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


# -- the same code posted to both ----------------------------------------------------------------------


def test_the_same_code_posted_to_both_instances_makes_one_onboarding(instances, simulator):
    a, b = instances
    signup = simulator.signup()
    ref = new_ref()
    simulator.latency(20)  # slower steps: the loser typically arrives while the winner is still running them

    answers = at_once(callback(a, signup, ref), callback(b, signup, ref))

    assert sorted(answer.status_code for answer in answers) == [201, 409]
    winner = next(answer for answer in answers if answer.status_code == 201).json()
    loser = next(answer for answer in answers if answer.status_code == 409).json()
    assert "already received" in loser["error"]
    assert loser["onboarding"]["id"] == winner["id"]
    assert winner["status"] == "completed"
    [onboarding] = fresh(Onboarding)
    assert (onboarding.id, onboarding.status) == (winner["id"], "completed")
    steps = fresh(OnboardingStep)
    assert {step.name for step in steps} == set(statuses(winner))
    # Each step ran at most once; a step can be skipped before it runs (how the customer finished) or when it
    # runs (the syncs, once Meta's read of the number says it is no WhatsApp Business app number).
    assert all(step.runs == 1 if step.status != "skipped" else step.runs <= 1 for step in steps), \
        [(step.name, step.status, step.runs) for step in steps]
    # Meta heard every call once: one exchange of the code, one subscription, one registration.
    calls = call_counts(simulator)
    assert calls["oauth_access_token"] == 1
    assert {calls[operation] for operation in ("debug_token", "waba", "subscribed_apps", "phone_number",
                                               "register", "message_templates")} == {1}


# -- the same webhook delivered to both ----------------------------------------------------------------


def test_the_same_deliveries_to_both_instances_are_stored_and_applied_once(instances, simulator, page):
    a, b = instances
    customer = onboarded(a, simulator)
    waba_id, phone_id = customer["waba_id"], customer["phone_number_id"]
    display = customer["display_phone_number"]
    db.session.add(ForwardingTarget(page_id=page.id, url="https://hooks.example.com/esu",
                                    secret=new_secret(), fields=[]))
    db.session.commit()
    start = int(time.time())
    limits = ["TIER_1K", "TIER_10K", "TIER_100K", "TIER_UNLIMITED"]
    new_wabas = [str(980000000000000 + round_) for round_ in range(20)]

    for round_ in range(20):
        # One inbound message and one quality change for the customer, and a PARTNER_ADDED for a WABA we do
        # not know yet, which makes an onboarding waiting for its callback: applied twice, it would make two.
        customer_entry = envelope(
            ("messages", text_message(f"wamid.TWO{round_}", phone_id=phone_id)),
            ("phone_number_quality_update", {"display_phone_number": display, "event": "THROUGHPUT_UPGRADE",
                                             "current_limit": limits[round_ % len(limits)]}),
            entry_id=waba_id, time=start + round_)["entry"][0]
        partner_entry = envelope(
            ("account_update", {"event": "PARTNER_ADDED",
                                "waba_info": {"waba_id": new_wabas[round_], "owner_business_id": "777"}}),
            entry_id=PARTNER_BUSINESS_ID, time=start + round_)["entry"][0]
        body = encode({"object": "whatsapp_business_account", "entry": [customer_entry, partner_entry]})

        answers = at_once(webhook(a, body), webhook(b, body))

        assert [answer.status_code for answer in answers] == [200, 200], [answer.text for answer in answers]
        receipts = [answer.json() for answer in answers]
        assert [receipt["changes"] for receipt in receipts] == [3, 3]
        assert sum(receipt["stored"] for receipt in receipts) == 3, receipts  # each change by one instance

    events = fresh(WebhookEvent)
    assert len(events) == 60
    applied = [event for event in events if event.field != "messages"]
    assert {event.status for event in applied} == {"applied"}, [(e.field, e.status, e.error) for e in applied]
    # Every PARTNER_ADDED made exactly one onboarding for its WABA.
    for new_waba in new_wabas:
        [waiting] = fresh(Onboarding, Onboarding.waba_id == new_waba)
        assert (waiting.status, waiting.source) == ("awaiting_callback", "webhook")
    assert count(Onboarding) == 21
    phone = db.session.get(PhoneNumber, phone_id)
    assert (phone.throughput_tier, phone.quality_event) == (limits[19 % len(limits)], "THROUGHPUT_UPGRADE")
    assert int(phone.quality_updated_at.timestamp()) == start + 19
    # The customer's 40 events are each queued once for the client's endpoint; the others go nowhere.
    customer_events = {event.id for event in events if event.waba_id == waba_id}
    assert len(customer_events) == 40
    queued = db.session.execute(sa.select(ForwardDelivery.event_id, sa.func.count())
                                .group_by(ForwardDelivery.event_id)).all()
    assert dict(queued) == dict.fromkeys(customer_events, 1)


# -- the admin retrying while a webhook lands ------------------------------------------------------------


class HeldGraphCalls:
    """WSGI middleware for the simulator: calls to ``path_suffix`` wait until ``release`` (Meta being slow
    on exactly that call), and ``arrived`` says one is waiting. Lets a test put a webhook inside a retry."""

    def __init__(self, wsgi_app, method: str, path_suffix: str):
        self.wsgi_app = wsgi_app
        self.method = method
        self.path_suffix = path_suffix
        self.arrived = threading.Event()
        self.release = threading.Event()

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] == self.method and environ["PATH_INFO"].endswith(self.path_suffix):
            self.arrived.set()
            self.release.wait(timeout=60)
        return self.wsgi_app(environ, start_response)


@pytest.fixture
def hold_graph_calls(simulator_app, monkeypatch):
    """``hold_graph_calls(method, path_suffix)`` makes the simulator hold those calls from now on."""
    held: list[HeldGraphCalls] = []

    def hold(method: str, path_suffix: str) -> HeldGraphCalls:
        held.append(HeldGraphCalls(simulator_app.wsgi_app, method, path_suffix))
        monkeypatch.setattr(simulator_app, "wsgi_app", held[-1])
        return held[-1]

    yield hold
    for middleware in held:
        middleware.release.set()  # never leave a simulator thread waiting


def admin_session(instance: Instance) -> requests.Session:
    """A browser logged in to the admin on ``instance`` through the login form."""
    session = requests.Session()
    token = CSRF_META.search(session.get(f"{instance.url}/admin/login", timeout=10).text).group(1)
    response = session.post(f"{instance.url}/admin/login", data={"csrf_token": token, "password": PASSWORD},
                            allow_redirects=False, timeout=30)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/", response.text
    return session


def failed_subscription(instance: Instance, simulator) -> Onboarding:
    """An onboarding through ``instance`` whose webhook subscription Meta refused once (permission error,
    not retried), so it stopped as failed; the fault is used up, so a retry will succeed."""
    simulator.fault("subscribed_apps", 200, times=1)
    signup = simulator.signup()
    response = callback(instance, signup, new_ref())()
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "failed" and statuses(body)["subscribe_webhooks"] == "failed"
    return db.session.get(Onboarding, body["id"])


def retry_while_a_webhook_lands(admin: Instance, meta: Instance, onboarding_id: int, body: bytes,
                                hold_graph_calls) -> tuple[requests.Response, requests.Response]:
    """The admin presses Retry on ``admin``; while the retry waits on Meta for the subscription, ``meta``
    receives ``body`` and commits it. Answers (the retry's answer, the webhook's answer)."""
    held = hold_graph_calls("POST", "/subscribed_apps")
    browser = admin_session(admin)
    page = browser.get(f"{admin.url}/admin/onboardings/{onboarding_id}", timeout=10)
    token = CSRF_META.search(page.text).group(1)
    answers: list[requests.Response] = []
    errors: list[BaseException] = []

    def press_retry() -> None:
        try:
            answers.append(browser.post(f"{admin.url}/admin/onboardings/{onboarding_id}/retry",
                                        data={"csrf_token": token}, allow_redirects=False, timeout=60))
        except BaseException as exc:  # noqa: BLE001 -- reported below, on the test's thread
            errors.append(exc)

    retrying = threading.Thread(target=press_retry)
    retrying.start()
    try:
        assert held.arrived.wait(timeout=30), "the retry never called Meta"
        delivered = webhook(meta, body)()
    finally:
        held.release.set()
        retrying.join(timeout=60)
    assert not errors, errors
    assert answers, "the retry never answered"
    return answers[0], delivered


def test_a_webhook_landing_during_the_admin_retry_keeps_both_writes(instances, simulator, stored_admin,
                                                                     hold_graph_calls):
    a, b = instances
    onboarding = failed_subscription(a, simulator)
    waba_id, business_id = onboarding.waba_id, onboarding.business_id
    at = int(time.time())
    # Meta's news about the very rows the retry writes: the onboarding (PARTNER_ADDED links it), the WABA
    # (its account events and limits) and the number (its quality).
    display = onboarding.display_phone_number
    body = encode({"object": "whatsapp_business_account", "entry": [
        envelope(("account_update", {"event": "PARTNER_ADDED",
                                     "waba_info": {"waba_id": waba_id, "owner_business_id": business_id}}),
                 entry_id=PARTNER_BUSINESS_ID, time=at)["entry"][0],
        envelope(("phone_number_quality_update", {"display_phone_number": display, "event": "FLAGGED",
                                                  "current_limit": "TIER_1K"}),
                 ("business_capability_update", {"max_daily_conversation_per_phone": 1000,
                                                 "max_phone_numbers_per_business": 2}),
                 entry_id=waba_id, time=at)["entry"][0],
    ]})

    retried, delivered = retry_while_a_webhook_lands(a, b, onboarding.id, body, hold_graph_calls)

    assert retried.status_code == 302
    assert delivered.status_code == 200 and delivered.json() == {"changes": 3, "stored": 3}
    # The retry's writes.
    [onboarding] = fresh(Onboarding)
    assert onboarding.status == "completed" and onboarding.failure_reason is None
    [subscribe] = fresh(OnboardingStep, OnboardingStep.name == "subscribe_webhooks")
    assert (subscribe.status, subscribe.runs) == ("ok", 2)
    waba = db.session.get(WhatsAppBusinessAccount, waba_id)
    assert waba.subscribed_at is not None
    assert call_counts(simulator)["subscribed_apps"] == 2  # the refused call, then the retry's
    # The webhook's writes, to the same rows.
    assert int(onboarding.partner_added_at.timestamp()) == at
    assert "PARTNER_ADDED" in waba.account_events
    assert waba.limits == {"max_daily_conversation_per_phone": 1000, "max_phone_numbers_per_business": 2}
    phone = db.session.get(PhoneNumber, onboarding.phone_number_id)
    assert (phone.quality_event, phone.throughput_tier) == ("FLAGGED", "TIER_1K")
    # One event per change, each applied, the partner event linked to this onboarding.
    events = fresh(WebhookEvent)
    assert sorted(event.field for event in events) == ["account_update", "business_capability_update",
                                                       "phone_number_quality_update"]
    assert {event.status for event in events} == {"applied"}
    assert next(event for event in events if event.field == "account_update").onboarding_id == onboarding.id
    [action] = fresh(AdminAction, AdminAction.action == "retried_steps")
    assert action.detail == "outcome: completed"


def test_a_customer_offboarded_during_the_admin_retry_stays_offboarded(instances, simulator, stored_admin,
                                                                        hold_graph_calls):
    """PARTNER_REMOVED sets the status the retry also sets when it concludes: the later writer must not
    put back "completed" over a customer who has left."""
    a, b = instances
    onboarding = failed_subscription(a, simulator)
    at = int(time.time())
    body = encode(envelope(("account_update", {"event": "PARTNER_REMOVED",
                                               "waba_info": {"waba_id": onboarding.waba_id,
                                                             "owner_business_id": onboarding.business_id}}),
                           entry_id=PARTNER_BUSINESS_ID, time=at))

    retried, delivered = retry_while_a_webhook_lands(a, b, onboarding.id, body, hold_graph_calls)

    assert retried.status_code == 302
    assert delivered.status_code == 200 and delivered.json() == {"changes": 1, "stored": 1}
    [onboarding] = fresh(Onboarding)
    assert onboarding.status == "offboarded"
    assert int(onboarding.offboarded_at.timestamp()) == at
    [subscribe] = fresh(OnboardingStep, OnboardingStep.name == "subscribe_webhooks")
    assert (subscribe.status, subscribe.runs) == ("ok", 2)  # the retry's step still ran and is recorded
    [event] = fresh(WebhookEvent)
    assert (event.status, event.onboarding_id) == ("applied", onboarding.id)
    [action] = fresh(AdminAction, AdminAction.action == "retried_steps")
    assert action.detail == "outcome: offboarded"
