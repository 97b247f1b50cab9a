"""Webhook ingest under load, beside its natural limit.

The app under gunicorn with its production config (gunicorn.conf.py: 2 workers of 16 threads) on
127.0.0.1 is loaded by wrk at a fixed concurrency with correctly signed, realistic, all-different
deliveries, and, in the same run and under the same config, a bare Flask route that only answers 200
(the natural limit) and a minimal handler that only checks the HMAC and inserts one row through
Flask-SQLAlchemy (the yardstick the app must beat while doing its real work). The app and the bare route
are both kept up and loaded in turn, ``--rounds`` times (each round of the app with deliveries of its
own), since the machine's pace drifts from minute to minute: the ratio is taken within each round, and
the median of the rounds is the figure. Prints requests/s, ratio, p50 and p99 of every round, the count
stored versus sent, each gunicorn worker's peak RSS and, on SQLite, the WAL file's size after the run.

On PostgreSQL it then loads esu and the honest alternative a user could write instead (bench/handler_app.py:
about 30 lines of Flask, a pooled psycopg connection, the HMAC and one ``INSERT … ON CONFLICT DO NOTHING``
per delivery) in turns at 8, 32 and 128 connections, ``--rounds`` turns at each (which of the two goes
first alternating, each with new deliveries), and prints the median of esu's throughput over the
handler's, for the same reason as above.

A lopsided load, in which a gunicorn worker had fewer than half its share of the connections (wrk opens
them all at once, and the first worker awake can take them all), measures the race for connections, not
the app: any server's such load is loaded again with other new deliveries, up to four times, and the run
says how many were.

Every delivery wrk may have had in flight when it stopped is sent again afterwards, as Meta would
retry an unacknowledged one, so "stored == sent" means nothing was lost and nothing kept twice.

    .venv/bin/python bench/webhooks.py [--seconds 10] [--rounds 3] [--connections 16] [--database-url URL]
                                       [--forwarding] [--gunicorn "--workers 2 --threads 1"]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from esu.sqlite import wal_size  # noqa: E402

from bench.common import (  # noqa: E402
    META,
    ROOT,
    AppServer,
    BareServer,
    free_port,
    fresh_database,
    requests_per_second,
    run_wrk,
    worker_pids,
)

WABAS = [str(300000000000000 + n) for n in range(20)]
PHONES = [str(400000000000000 + n) for n in range(20)]
#: Loads of one server, at most, to get one that is not lopsided (see bench.common.run_wrk).
MAX_TRIES = 4
TEXTS = ["Hello, is my order ready?", "مرحبا، هل طلبي جاهز؟", "¿Dónde está mi pedido? 📦", "Thanks! 🙏🏽"]


def delivery(n: int, rng: random.Random) -> bytes:
    """One realistic delivery holding one change, unique by n."""
    waba = WABAS[n % len(WABAS)]
    phone = PHONES[n % len(PHONES)]
    now = 1764000000 + n
    roll = rng.random()
    metadata = {"display_phone_number": f"1555{n % 10000000:07d}", "phone_number_id": phone}
    if roll < 0.6:
        field = "messages"
        value = {"messaging_product": "whatsapp", "metadata": metadata,
                 "contacts": [{"profile": {"name": "Ana"}, "wa_id": "5511999990000"}],
                 "messages": [{"from": "5511999990000", "id": f"wamid.BENCH{n:012d}", "timestamp": str(now),
                               "type": "text", "text": {"body": TEXTS[n % len(TEXTS)]}}]}
    elif roll < 0.9:
        field = "messages"
        value = {"messaging_product": "whatsapp", "metadata": metadata,
                 "statuses": [{"id": f"wamid.OUT{n:012d}", "status": rng.choice(["sent", "delivered", "read"]),
                               "timestamp": str(now), "recipient_id": "5511999990000",
                               "pricing": {"billable": True, "pricing_model": "PMP", "type": "regular",
                                           "category": "utility"}}]}
    elif roll < 0.95:
        field = "phone_number_quality_update"
        value = {"display_phone_number": metadata["display_phone_number"], "event": "THROUGHPUT_UPGRADE",
                 "current_limit": "TIER_10K", "old_limit": "TIER_2K", "sequence": n}
    else:
        field = "message_template_status_update"
        value = {"event": "APPROVED", "message_template_id": 500000000000000 + n,
                 "message_template_name": f"bench_{n}", "message_template_language": "en_US", "reason": "NONE"}
    envelope = {"object": "whatsapp_business_account",
                "entry": [{"id": waba, "time": now, "changes": [{"field": field, "value": value}]}]}
    # Meta sends escaped unicode: ensure_ascii=True gives the same kind of bytes.
    return json.dumps(envelope, separators=(",", ":")).encode()


def sign(body: bytes) -> str:
    return "sha256=" + hmac.new(META["META_APP_SECRET"].encode(), body, hashlib.sha256).hexdigest()


class NewDeliveries:
    """Files of deliveries none of which was sent before, written when a load needs one (``take``)."""

    def __init__(self, scratch: str, count: int):
        self.scratch, self.count, self.taken = Path(scratch), count, 0
        self.rng = random.Random(7)

    def take(self) -> tuple[Path, list[bytes]]:
        path = self.scratch / f"bodies-{self.taken}.tsv"
        bodies = [delivery(self.taken * self.count + n, self.rng) for n in range(self.count)]
        with path.open("w") as out:
            for body in bodies:
                out.write(f"{sign(body)}\t{body.decode()}\n")
        self.taken += 1
        return path, bodies


def load(server, bodies_file: Path, args) -> dict:
    return run_wrk(server.url, "wrk_signed.lua", [str(bodies_file), str(args.threads)], args.seconds,
                   args.connections, args.threads, server=server.process)


def peak_rss_mb(master_pid: int) -> list[float]:
    peaks = []
    for pid in worker_pids(master_pid):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return peaks


def resend_in_flight(url: str, bodies: list[bytes], stats: dict, threads: int, connections: int) -> int:
    """Send again what wrk may have left unanswered: each thread's last requests, one per connection."""
    per_connection = max(1, connections // threads)
    resent = 0
    session = requests.Session()
    for thread, sent in enumerate(stats["per_thread"]):
        share = bodies[thread::threads]
        # wrk also calls request() once to check the script, and drops that first body unsent.
        for body in share[:1] + share[max(1, sent - per_connection):sent]:
            response = session.post(f"{url}/webhooks/whatsapp", data=body, timeout=10,
                                    headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body),
                                             "X-Forwarded-Proto": "https"})
            assert response.status_code == 200, response.status_code
            resent += 1
    return resent


def run_in_app(env: dict[str, str], code: str) -> str:
    """Run ``code`` in an app context with the server's settings; answers its last line of output."""
    preamble = ("from esu import create_app; from esu.extensions import db; import sqlalchemy as sa; "
                "from esu.models import *; from esu.models.forwarding import *\napp = create_app()\n")
    output = subprocess.run([sys.executable, "-c", preamble + "with app.app_context():\n" + code], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=True).stdout
    return output.strip().splitlines()[-1]


def enable_forwarding(env: dict[str, str]) -> None:
    """Every bench WABA onboarded on the bench page, and that page forwarding every field to one target (no
    worker runs: the deliveries stay queued, so the outbox insert is all the ingest does more)."""
    run_in_app(env, f"""
    from esu.onboarding.assets import add_waba
    page = db.session.scalar(sa.select(SignupPage).where(SignupPage.slug == "bench"))
    for waba_id, phone_id in zip({WABAS!r}, {PHONES!r}):
        onboarding = Onboarding(page_id=page.id, event="FINISH", source="callback", status="completed",
                                waba_id=waba_id, phone_number_id=phone_id)
        onboarding.steps += [OnboardingStep(name=name, status="ok", attempts=1, runs=1) for name in WABA_PROOF_STEPS]
        db.session.add(onboarding)
        db.session.flush()
        add_waba(onboarding, waba_id)  # as the callback keeps it: forwarding routes by it
    db.session.add(ForwardingTarget(page_id=page.id, url="https://receiver.example/hooks", secret="whsec_" + "A" * 44,
                                    fields=[], enabled=True))
    db.session.commit()
    print("ok")
""")


def stored_count(env: dict[str, str]) -> tuple[int, int]:
    """Events stored and deliveries queued, counted by the app's own code with the server's settings."""
    events, deliveries = run_in_app(env, "    print(db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)),"
                                         " db.session.scalar(sa.select(sa.func.count()).select_from(ForwardDelivery)))"
                                    ).split()
    return int(events), int(deliveries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="turns of the app and the bare route")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--bodies", type=int, default=40000, help="distinct deliveries prepared for each round")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--gunicorn", default="", help="gunicorn flags over gunicorn.conf.py, for all three servers")
    parser.add_argument("--handler-connections", default="8,32,128",
                        help="PostgreSQL: the connection counts at which esu is loaded against bench/handler_app.py "
                             "('' to skip)")
    parser.add_argument("--forwarding", action="store_true",
                        help="the WABAs onboarded on a page with a forwarding target: every event is queued too")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk (make bench does)")

    gunicorn_args = args.gunicorn.split()
    rounds = []  # (app stats, bare stats)
    against_handler = []  # (connections, app stats, handler stats)
    tally = {"sent": 0, "resent": 0, "loads": 0, "lopsided": 0}
    postgresql = (args.database_url or "").startswith("postgresql")
    handler_connections = [int(count) for count in args.handler_connections.split(",") if count] if postgresql else []
    with tempfile.TemporaryDirectory() as scratch:
        new_deliveries = NewDeliveries(scratch, args.bodies)

        def load_evenly(server, at, reused: Path | None = None) -> tuple[dict, Path]:
            """``server`` loaded with new deliveries (or, for the bare route, which keeps nothing, those of
            the file ``reused``); a lopsided load (see ``run_wrk``) is loaded again, with other new deliveries,
            up to MAX_TRIES times. Every delivery sent to esu is counted, and those wrk may have left
            unanswered sent again."""
            for _attempt in range(MAX_TRIES):
                bodies_file, bodies = (reused, None) if reused else new_deliveries.take()
                stats = load(server, bodies_file, at)
                if server is app:
                    tally["resent"] += resend_in_flight(app.url, bodies, stats, args.threads, at.connections)
                    tally["sent"] += len(bodies) if stats["wrapped"] else min(stats["sent"], len(bodies))
                tally["loads"] += 1
                if not stats["lopsided"]:
                    break
                tally["lopsided"] += 1
            return stats, bodies_file

        with fresh_database(args.database_url, scratch) as database_url:
            # Production settings behind one TLS proxy, as deployed (wrk sends X-Forwarded-Proto: https).
            env = {"DATABASE_URL": database_url, "ESU_SIMULATOR": "0", "ESU_ENV": "production", "ESU_PROXY_HOPS": "1",
                   "ESU_ENCRYPTION_KEYS": "Pq2Pq1pYbxWxv4nYkqRlmx1Fd9LkBUc9mmKwM6j3vHo="}

            with AppServer(env, port=free_port(), pages=["bench"], gunicorn_args=gunicorn_args) as app, \
                    BareServer("bare_app", {}, gunicorn_args) as bare:
                if args.forwarding:
                    enable_forwarding(app.env)
                for _round in range(args.rounds):
                    app_stats, bodies_file = load_evenly(app, args)
                    rounds.append((app_stats, load_evenly(bare, args, bodies_file)[0]))
                rss = peak_rss_mb(app.process.pid)
                if handler_connections:
                    with BareServer("handler_app", {"DATABASE_URL": database_url}, gunicorn_args) as handler:
                        for connections in handler_connections:
                            at = argparse.Namespace(**{**vars(args), "connections": connections})
                            for turn in range(args.rounds):
                                handler_stats = load_evenly(handler, at)[0] if turn % 2 else None
                                app_stats = load_evenly(app, at)[0]
                                handler_stats = handler_stats or load_evenly(handler, at)[0]
                                against_handler.append((connections, app_stats, handler_stats))
                stored, queued = stored_count(app.env)
                # Read while the app still has the database open (the last connection to close deletes it).
                wal_mb = wal_size(database_url.removeprefix("sqlite:///")) / 2**20 if not postgresql else None

            with BareServer("minimal_app", {"DATABASE_URL": database_url}, gunicorn_args) as minimal:
                minimal_stats = load_evenly(minimal, args)[0]
    sent, resent = tally["sent"], tally["resent"]

    print(f"Webhook ingest: {args.rounds} rounds of {args.seconds} s at {args.connections} connections, "
          f"gunicorn.conf.py {args.gunicorn}, {database_url.split(':')[0]}, "
          f"forwarding {'on' if args.forwarding else 'off'}")
    ratios = []
    for number, (app_stats, bare_stats) in enumerate(rounds, 1):
        ratio = requests_per_second(app_stats) / requests_per_second(bare_stats)
        ratios.append(ratio)
        print(f"  round {number}: app {requests_per_second(app_stats):6.0f} req/s, bare route "
              f"{requests_per_second(bare_stats):6.0f} req/s, ratio {ratio:.2f}   app p50 "
              f"{app_stats['p50_us'] / 1000:5.1f} ms, p99 {app_stats['p99_us'] / 1000:5.1f} ms   non-2xx "
              f"{app_stats['non_2xx']}, socket errors {app_stats['socket_errors']}")
    bare_rate = statistics.median(requests_per_second(bare_stats) for _app_stats, bare_stats in rounds)
    yardstick = requests_per_second(minimal_stats) / bare_rate
    print(f"  minimal handler {requests_per_second(minimal_stats):6.0f} req/s: {yardstick:.2f} of the bare route's "
          f"median; p99 {minimal_stats['p99_us'] / 1000:.1f} ms")
    worst_p99 = max(app_stats["p99_us"] for app_stats, _bare_stats in rounds) / 1000
    print(f"  ratio app/bare, median of the rounds: {statistics.median(ratios):.2f} "
          f"({min(ratios):.2f}–{max(ratios):.2f})   (target >= 0.30)   worst p99 {worst_p99:.1f} ms (target <= 50 ms)")
    print(f"  lopsided loads (a worker with under half its share of the connections), measured again: "
          f"{tally['lopsided']} of {tally['loads']}")
    print(f"  stored {stored} / sent {sent} distinct changes ({resent} re-sent after the rounds, as Meta retries)"
          f"   {'OK' if stored == sent else 'MISMATCH'}")
    if args.forwarding:
        print(f"  forwarding deliveries queued: {queued} (one per stored event)   "
              f"{'OK' if queued == stored else 'MISMATCH'}")
    print(f"  peak RSS per worker: {', '.join(f'{mb:.0f} MB' for mb in rss)}   (target <= 150 MB)")
    if wal_mb is not None:
        print(f"  SQLite WAL after the run: {wal_mb:.1f} MB   (target < 64 MB)")
    for connections in handler_connections:
        turns = [(app_stats, handler_stats) for at, app_stats, handler_stats in against_handler if at == connections]
        ratios = [requests_per_second(app_stats) / requests_per_second(handler_stats)
                  for app_stats, handler_stats in turns]
        esu_rates = [requests_per_second(app_stats) for app_stats, _handler_stats in turns]
        handler_rates = [requests_per_second(handler_stats) for _app_stats, handler_stats in turns]
        print(f"  at {connections:3d} connections: esu {min(esu_rates):.0f}–{max(esu_rates):.0f} req/s (worst p99 "
              f"{max(app_stats['p99_us'] for app_stats, _ in turns) / 1000:.1f} ms), the 30-line handler "
              f"{min(handler_rates):.0f}–{max(handler_rates):.0f} req/s (worst p99 "
              f"{max(handler_stats['p99_us'] for _, handler_stats in turns) / 1000:.1f} ms): esu/handler, median of "
              f"{len(turns)} turns, {statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})   "
              f"(target >= 1.00)")


if __name__ == "__main__":
    main()
