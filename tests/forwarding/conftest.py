"""Fixtures for the forwarding tests: a real webhook receiver on 127.0.0.1, a clock to move by hand, and
helpers that store events the way the webhook ingest does (rows, then ``enqueue``, then commit)."""

from __future__ import annotations

import itertools
import re
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from esu import forwarding
from esu.extensions import db
from esu.models import Onboarding, OnboardingStep, WebhookEvent
from esu.onboarding.assets import add_waba

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_verifier():
    """The receiver's verification function exactly as the README prints it."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    source = next(block for block in blocks if "def verify_webhook" in block)
    namespace: dict = {}
    exec(source, namespace)  # noqa: S102 - our own README, the lines receivers copy
    return namespace["verify_webhook"]


verify_webhook = readme_verifier()


class Clock:
    """Time for the worker: moves only when a test says so. It starts a minute ahead of the wall clock,
    which stamps the deliveries that ``enqueue`` queues, so those are due."""

    def __init__(self):
        self.now = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    #: The README's check passed: signed with the target's secret, within 5 minutes of the clock.
    verified: bool

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a worker opens many connections at once; the default backlog is 5


class Receiver:
    """A client's webhook endpoint: records every request and answers from a script (then 200)."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self.secret: str | None = None
        self.received: list[Received] = []
        self.script: deque = deque()
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                verified = receiver.secret is not None and verify_webhook(
                    receiver.secret, headers, body, now=receiver.clock().timestamp())
                with receiver.lock:
                    receiver.received.append(Received(headers, body, verified))
                    receiver.arrived.notify_all()
                    answer = receiver.script.popleft() if receiver.script else (200, {}, b"ok")
                if callable(answer):
                    answer = answer()
                status, extra_headers, payload = answer
                try:
                    self.send_response(status)
                    for name, value in extra_headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the sender gave up waiting: that is what the timeout test wants

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def answer(self, *answers) -> None:
        """Queue answers for the next requests: ``(status, headers, body)`` or a callable giving one."""
        with self.lock:
            self.script.extend(answers)

    def wait_for(self, count: int, timeout: float = 10) -> bool:
        """Block until ``count`` requests have arrived (for a worker running in another thread)."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.received) >= count, timeout=timeout)

    def ids(self) -> list[str]:
        with self.lock:
            return [request.webhook_id for request in self.received]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def receiver(clock):
    receiver = Receiver(clock)
    yield receiver
    receiver.stop()


_waba_ids = itertools.count(100000000000001)


def onboard(page, waba_id: str | None = None, *, confirmed: bool = True) -> str:
    """An onboarding of ``page`` whose steps proved (or failed to prove) the WABA the customer's."""
    waba_id = waba_id or str(next(_waba_ids))
    onboarding = Onboarding(page_id=page.id, event="FINISH", status="completed", waba_id=waba_id)
    onboarding.steps.append(OnboardingStep(name="confirm_ids", status="ok" if confirmed else "failed"))
    onboarding.steps.append(OnboardingStep(name="read_waba", status="ok"))
    db.session.add(onboarding)
    db.session.flush()
    add_waba(onboarding, waba_id)  # as the callback keeps it
    db.session.commit()
    return waba_id


_keys = itertools.count(1)


def store_events(waba_id: str | None, count: int = 1, field: str = "messages") -> list[int]:
    """Store ``count`` events as the ingest does, queue their deliveries in the same transaction, commit."""
    events = [
        WebhookEvent(dedupe_key=f"test-{next(_keys)}", field=field, waba_id=waba_id, phone_number_id="555001",
                     occurred_at=datetime(2026, 5, 1, 12, 0, tzinfo=UTC),
                     value={"messaging_product": "whatsapp", "messages": [{"text": {"body": "Hola, ¿qué tal? 👋"}}]},
                     status="stored")
        for _ in range(count)
    ]
    db.session.add_all(events)
    db.session.flush()
    ids = [event.id for event in events]
    forwarding.enqueue(ids)
    db.session.commit()
    return ids


def add_target(page, receiver: Receiver, fields=()):
    target, secret = forwarding.create_target(page, receiver.url, fields)
    db.session.commit()
    receiver.secret = secret
    return target
