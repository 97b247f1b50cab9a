"""Forwarding throughput: deliveries per second from `flask --app wsgi forward` to a local receiver.

Seeds N stored events of one client with one forwarding target, starts the worker process(es) (one on
SQLite; one, then two on PostgreSQL), makes every delivery due at once and times until the receiver
(its own process, keep-alive, checks nothing) has answered them all. Also prints what queuing costs
the webhook ingest: the time of `enqueue` for a one-event delivery inside its transaction.

    .venv/bin/python bench/forward.py [--deliveries 2000] [--batch-size 20] [--latency-ms 0]
                                      [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BIN, META, ROOT, QuietKeepAliveHandler, free_port, fresh_database  # noqa: E402


def receiver(port: int, latency_ms: int) -> None:
    """The client's endpoint: counts requests and distinct webhook-ids; GET answers the counts, DELETE
    answers and resets them."""
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Request, Response

    lock = threading.Lock()
    seen: set[str] = set()
    total = [0]

    @Request.application
    def app(request: Request) -> Response:
        if request.method in ("GET", "DELETE"):
            with lock:
                body = json.dumps({"total": total[0], "distinct": len(seen)})
                if request.method == "DELETE":
                    seen.clear()
                    total[0] = 0
                return Response(body, content_type="application/json")
        request.get_data()
        if latency_ms:
            time.sleep(latency_ms / 1000)  # a receiver that takes its time, as real ones do
        with lock:
            total[0] += 1
            seen.add(request.headers.get("webhook-id", ""))
        return Response(status=204)

    make_server("127.0.0.1", port, app, threaded=True, request_handler=QuietKeepAliveHandler).serve_forever()


def counts(url: str) -> dict[str, int]:
    return requests.get(url, timeout=5).json()


def seed(app, receiver_url: str, deliveries: int) -> None:
    """One client page, an onboarding that proved its WABA, a target, and the events (not yet due)."""
    import sqlalchemy as sa

    from esu import forwarding
    from esu.cli import create_page
    from esu.extensions import db
    from esu.models import WABA_PROOF_STEPS, Onboarding, OnboardingStep, WebhookEvent, now_utc
    from esu.models.forwarding import ForwardDelivery
    from esu.onboarding.assets import add_waba

    with app.app_context():
        page = create_page("bench", "Bench client")
        onboarding = Onboarding(page_id=page.id, event="FINISH", status="completed", waba_id="100000000000001")
        onboarding.steps += [OnboardingStep(name=name, status="ok") for name in WABA_PROOF_STEPS]
        db.session.add(onboarding)
        db.session.flush()
        add_waba(onboarding, onboarding.waba_id)  # as the callback keeps it: forwarding routes by it
        forwarding.create_target(page, receiver_url)
        db.session.commit()
        value = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "555001"},
                 "messages": [{"from": "34600000000", "id": "wamid.X", "type": "text", "text": {"body": "Hola 👋"}}]}
        for start in range(0, deliveries, 500):
            events = [WebhookEvent(dedupe_key=f"bench-{n}", field="messages", waba_id="100000000000001",
                                   phone_number_id="555001", value=value, status="stored")
                      for n in range(start, min(start + 500, deliveries))]
            db.session.add_all(events)
            db.session.flush()
            forwarding.enqueue([event.id for event in events])
            db.session.commit()
        # Not due until the workers are up, so their start-up is not timed.
        db.session.execute(sa.update(ForwardDelivery).values(next_attempt_at=now_utc() + timedelta(days=1)))
        db.session.commit()


def enqueue_cost(app, samples: int = 200) -> float:
    """Median milliseconds `enqueue` adds to storing one event (one target), inside the transaction."""
    from esu import forwarding
    from esu.extensions import db
    from esu.models import WebhookEvent

    timings = []
    with app.app_context():
        for n in range(samples):
            event = WebhookEvent(dedupe_key=f"cost-{n}", field="messages", waba_id="100000000000001",
                                 value={"n": n}, status="stored")
            db.session.add(event)
            db.session.flush()
            began = time.perf_counter()
            forwarding.enqueue([event.id])
            timings.append(time.perf_counter() - began)
            db.session.rollback()  # leave the seeded deliveries as they are
    return statistics.median(timings) * 1000


def make_due(app, deliveries: int) -> None:
    import sqlalchemy as sa

    from esu.extensions import db
    from esu.models import now_utc
    from esu.models.forwarding import ForwardDelivery

    with app.app_context():
        db.session.execute(sa.update(ForwardDelivery).values(
            status="pending", attempts=0, first_attempted_at=None, lease_until=None, delivered_at=None,
            next_attempt_at=now_utc()))
        db.session.commit()


def park(app) -> None:
    import sqlalchemy as sa

    from esu.extensions import db
    from esu.models import now_utc
    from esu.models.forwarding import ForwardDelivery

    with app.app_context():
        db.session.execute(sa.update(ForwardDelivery).values(status="pending",
                                                             next_attempt_at=now_utc() + timedelta(days=1)))
        db.session.commit()


def run(app, env: dict[str, str], workers: int, batch_size: int, deliveries: int, receiver_url: str) -> tuple[float, dict]:
    park(app)
    requests.delete(receiver_url, timeout=5)
    processes = [
        subprocess.Popen([str(BIN / "flask"), "--app", "wsgi", "forward", "--batch-size", str(batch_size),
                          "--poll-interval", "0.05"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    try:
        time.sleep(3)  # imports and first polls; nothing is due yet
        make_due(app, deliveries)
        began = time.perf_counter()
        deadline = began + 600
        while counts(receiver_url)["total"] < deliveries and time.perf_counter() < deadline:
            time.sleep(0.02)
        elapsed = time.perf_counter() - began
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)
    after = counts(receiver_url)
    return elapsed, {"requests": after["total"], "distinct webhook-ids": after["distinct"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--latency-ms", type=int, default=0, help="time the receiver takes per request")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()

    port = free_port()
    multiprocessing.Process(target=receiver, args=(port, args.latency_ms), daemon=True).start()
    receiver_url = f"http://127.0.0.1:{port}/hooks"

    with tempfile.TemporaryDirectory() as scratch, fresh_database(args.database_url, scratch) as database_url:
        env = {**os.environ, **META, "SECRET_KEY": "bench-" + "s" * 32, "DATABASE_URL": database_url,
               "ESU_SIMULATOR": "0", "ESU_ENCRYPTION_KEYS": "Pq2Pq1pYbxWxv4nYkqRlmx1Fd9LkBUc9mmKwM6j3vHo="}
        os.environ.update(env)
        subprocess.run([str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        from esu import create_app

        app = create_app()
        seed(app, receiver_url, args.deliveries)
        cost = enqueue_cost(app)
        postgres = database_url.startswith("postgres")
        print(f"Forwarding to a local receiver (+{args.latency_ms} ms per request), {args.deliveries} deliveries, "
              f"batch size {args.batch_size}, {database_url.split(':')[0]}")
        for workers in (1, 2) if postgres else (1,):
            elapsed, outcome = run(app, env, workers, args.batch_size, args.deliveries, receiver_url)
            print(f"{workers} worker{'s' if workers > 1 else ' '}  {args.deliveries / elapsed:8.0f} deliveries/s  "
                  f"({elapsed:.2f} s; receiver: {outcome})")
        print(f"enqueue on the ingest path: {cost:.2f} ms median for a one-event delivery")


if __name__ == "__main__":
    main()
