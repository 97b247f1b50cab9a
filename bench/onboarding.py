"""Onboarding latency: how long a customer waits after the popup, in units of Graph's round trip.

The simulator runs on its own with a fixed latency added to every Graph call; the app runs under
gunicorn against a fresh SQLite database (or --database-url). First N onboardings one after another,
then M at once. Prints the median and the maximum callback time divided by the latency: the dependent
round trips (exchange → read number → register, exchange → confirm → credit line) make 3.

    .venv/bin/python bench/onboarding.py [--latency-ms 200] [--sequential 20] [--concurrent 10]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import META, AppServer, csrf_session, free_port, fresh_database, serve_in_thread  # noqa: E402
from esu.simulator import create_simulator_app  # noqa: E402

#: Each onboarding is another customer, at an address of its own (documentation ranges), as the proxy in
#: front of the app reports it: the callback's rate limit is per address, and 31 callbacks in a minute from
#: one address would measure the limit, not the onboarding.
_CUSTOMER_ADDRESSES = (f"198.51.{n // 256}.{n % 256}" for n in itertools.count(1))


def one_onboarding(app_url: str, simulator_url: str) -> tuple[float, str]:
    session, token = csrf_session(app_url, "bench")
    session.headers["X-Forwarded-For"] = next(_CUSTOMER_ADDRESSES)
    signup = requests.post(f"{simulator_url}/_meta/signup", json={}, timeout=10).json()
    body = {key: signup[key] for key in ("code", "event", "waba_id", "phone_number_id", "business_id")}
    body["client_ref"] = os.urandom(12).hex()
    began = time.perf_counter()
    response = session.post(f"{app_url}/signup/bench/callback", json=body, headers={"X-CSRFToken": token},
                            timeout=120)
    elapsed = time.perf_counter() - began
    status = response.json().get("status") if response.status_code == 201 else f"HTTP {response.status_code}"
    return elapsed, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--sequential", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=10)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--solution-partner", action=argparse.BooleanOptionalAction, default=True,
                        help="share a credit line too (9 Graph calls in all)")
    args = parser.parse_args()

    simulator_app = create_simulator_app(META)
    simulator_url = serve_in_thread(simulator_app)
    state = simulator_app.extensions["meta_simulator"]

    with tempfile.TemporaryDirectory() as scratch, fresh_database(args.database_url, scratch) as database_url:
        env = {"DATABASE_URL": database_url, "META_GRAPH_URL": f"{simulator_url}/_meta/graph", "ESU_SIMULATOR": "0",
               "ESU_PROXY_HOPS": "1"}
        if args.solution_partner:
            env["META_CREDIT_LINE_ID"] = "4567890123456789"
        with AppServer(env, port=free_port(), pages=["bench"]) as app:
            one_onboarding(app.url, simulator_url)  # warm-up: connections, imports
            state.latency_ms = args.latency_ms
            unit = args.latency_ms / 1000

            sequential = [one_onboarding(app.url, simulator_url) for _ in range(args.sequential)]
            barrier = threading.Barrier(args.concurrent)

            def at_once(_):
                barrier.wait()
                return one_onboarding(app.url, simulator_url)

            with ThreadPoolExecutor(args.concurrent) as pool:
                concurrent = list(pool.map(at_once, range(args.concurrent)))

    def report(label: str, runs: list[tuple[float, str]]) -> None:
        times = [elapsed / unit for elapsed, _ in runs]
        statuses = {status: sum(1 for _, s in runs if s == status) for _, status in runs}
        print(f"{label:<14} n={len(runs):>3}  median {statistics.median(times):.2f}  max {max(times):.2f}  "
              f"(units of {args.latency_ms} ms)  outcomes {statuses}")

    print(f"Onboarding latency, simulator +{args.latency_ms} ms per Graph call, "
          f"{'Solution Partner' if args.solution_partner else 'Tech Provider'}, {database_url.split(':')[0]}")
    report("sequential", sequential)
    report("concurrent", concurrent)
    print("target: sequential median <= 3.3 units; every concurrent onboarding completed")


if __name__ == "__main__":
    main()
