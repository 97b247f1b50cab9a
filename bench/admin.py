"""The admin with years of records: 100,000 onboardings with their steps and WABAs (some several) and
1,000,000 webhook events.

Seeds a fresh database (SQLite file, or a new one on the PostgreSQL server --database-url names) in bulk
and times the seeding (COPY on PostgreSQL; on both, the secondary indexes are built after the load, then
ANALYZE), then serves the app under gunicorn, logs in, and times each admin view over repeated requests:
list, filtered list, search, detail, events list, dashboard. Prints p50/p95 per view.

    .venv/bin/python bench/admin.py [--onboardings 100000] [--events 1000000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
import sqlalchemy as sa
from psycopg.types.json import JsonbDumper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BIN, ROOT, AppServer, free_port, fresh_database

STEP_NAMES = ["exchange_code", "confirm_ids", "read_waba", "subscribe_webhooks", "assign_system_user",
              "share_credit_line", "read_phone_number", "register_phone", "sync_business_app", "fetch_templates"]
STATUSES = ["completed"] * 80 + ["failed"] * 10 + ["awaiting_verification"] * 5 + ["offboarded"] * 5
FIELDS = ["messages"] * 85 + ["account_update", "phone_number_quality_update", "message_template_status_update",
                              "account_review_update", "security"] * 3
PASSWORD = "bench-admin-password-123"


ONBOARDING_COLUMNS = ("id", "page_id", "code_digest", "client_ref", "event", "source", "status", "failure_reason",
                      "business_id", "waba_id", "phone_number_id", "business_name", "business_name_lower",
                      "display_phone_number",
                      "business_token", "token_expires_at", "created_at", "updated_at", "completed_at",
                      "offboarded_at")
WABA_COLUMNS = ("id", "business_id", "name", "details", "created_at", "updated_at")
PHONE_COLUMNS = ("id", "waba_id", "display_phone_number", "quality_rating", "registration_attempts", "details",
                 "created_at", "updated_at")
STEP_COLUMNS = ("onboarding_id", "name", "position", "status", "attempts", "runs", "started_at", "finished_at",
                "duration_ms", "error_code")
ASSET_COLUMNS = ("onboarding_id", "kind", "asset_id", "created_at")
#: One onboarding in this many shared a second WABA (a multi-WABA flow), with a number of its own.
MULTI_WABA_EVERY = 50
EVENT_COLUMNS = ("dedupe_key", "field", "waba_id", "phone_number_id", "entry_id", "occurred_at", "value", "raw",
                 "status", "error", "onboarding_id", "received_at", "applied_at")


def gen_onboardings(count: int, page_ids: list[int], rng: random.Random, start: datetime, span: float):
    """The onboardings, their WABAs, their numbers and their WABAs kept as assets (as the callback keeps
    them; every :data:`MULTI_WABA_EVERY`-th has a second), as rows (tuples in the *_COLUMNS order)."""
    onboardings, wabas, phones, assets = [], [], [], []
    for n in range(count):
        created = start + timedelta(seconds=span * n / count)
        waba_id, phone_id, business_id = str(600000000000000 + n), str(700000000000000 + n), str(800000000000000 + n)
        status = rng.choice(STATUSES)
        page_id = rng.choice(page_ids)
        business_name = f"Business {n} {rng.choice(['Shop', 'Café', 'Clinic', 'Studio'])}"
        onboardings.append((n + 1, page_id, f"{n:064x}", None, "FINISH", "callback", status,
                            "Register the phone number: (#133016) limit" if status == "failed" else None,
                            business_id, waba_id, phone_id, business_name, business_name.lower(), f"1555{n:07d}",
                            None, None,
                            created, created, created if status == "completed" else None, None))
        owned = [(waba_id, phone_id, f"1555{n:07d}")]
        if n % MULTI_WABA_EVERY == 0:
            owned.append((str(610000000000000 + n), str(710000000000000 + n), f"1556{n:07d}"))
        for position, (owned_waba, owned_phone, number) in enumerate(owned):
            wabas.append((owned_waba, business_id, f"Business {n}" + (f" {position + 1}" if position else ""), {},
                          created, created))
            phones.append((owned_phone, owned_waba, number, rng.choice(["GREEN"] * 18 + ["YELLOW", "RED"]), 1, {},
                           created, created))
            assets.append((n + 1, "waba", owned_waba, created))
    return onboardings, wabas, phones, assets


def gen_steps(onboardings: list[tuple]):
    """Ten steps per onboarding; a failed onboarding failed at register_phone."""
    for row in onboardings:
        onboarding_id, status, created = row[0], row[6], row[15]
        for position, name in enumerate(STEP_NAMES):
            failed = status == "failed" and name == "register_phone"
            yield (onboarding_id, name, position * 10, "failed" if failed else "ok", 1, 1, created, created, 200,
                   133016 if failed else None)


def gen_events(count: int, onboardings: int, rng: random.Random, start: datetime, span: float):
    """Webhook events spread evenly over the years, each about a random onboarding's WABA and number."""
    for n in range(count):
        owner = rng.randrange(onboardings)
        field = rng.choice(FIELDS)
        at = start + timedelta(seconds=span * n / count)
        yield (f"wamid.SEED{n:012d}", field, str(600000000000000 + owner), str(700000000000000 + owner),
               str(600000000000000 + owner), at, {"seed": n}, None, "applied", None, owner + 1, at, None)


def secondary_indexes(connection: sa.Connection, tables: list[str]) -> list[tuple[str, str]]:
    """Name and CREATE INDEX statement of each index of ``tables`` that backs no constraint, as the
    migrations made them (read from the catalog, so operator classes, expressions and partial WHERE
    clauses come back exactly: rebuilt from SQLAlchemy's reflection, PostgreSQL's searches once came out
    several times slower, and SQLite's reflection skips expression indexes)."""
    if connection.dialect.name == "postgresql":
        rows = connection.execute(sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = ANY(:tables) AND indexname NOT IN (SELECT conname FROM pg_constraint) "
            "ORDER BY indexname"), {"tables": tables})
    else:
        # Constraints' indexes (sqlite_autoindex_*) have no SQL of their own.
        rows = connection.execute(sa.text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name IN (SELECT value FROM json_each(:tables)) ORDER BY name"), {"tables": json.dumps(tables)})
    return [tuple(row) for row in rows]


def load(connection: sa.Connection, table: sa.Table, columns: tuple[str, ...], rows) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``.

    PostgreSQL: one COPY through psycopg, several times faster than executemany of INSERTs (no SQL to
    build or parse per row). SQLite: executemany in batches through SQLAlchemy, which converts the
    datetimes and JSON to SQLite's storage as the app's own writes do."""
    if connection.dialect.name == "postgresql":
        with connection.connection.driver_connection.cursor() as cursor:
            cursor.adapters.register_dumper(dict, JsonbDumper)  # our JSON columns are jsonb
            with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    statement = table.insert()
    batch = []
    for row in rows:
        batch.append(dict(zip(columns, row, strict=True)))
        if len(batch) == 50000:
            connection.execute(statement, batch)
            batch = []
    if batch:
        connection.execute(statement, batch)


def seed(database_url: str, onboardings: int, events: int) -> tuple[float, dict[str, float]]:
    """Insert the records in bulk, the way an agency's years would leave them. Answers seconds taken, and
    the seconds of each phase."""
    engine = sa.create_engine(database_url)
    postgresql = engine.dialect.name == "postgresql"
    if not postgresql:
        @sa.event.listens_for(engine, "connect")
        def big_cache(dbapi_connection, _record):
            # Building indexes of a million rows with SQLite's default 2 MB page cache reads and writes most
            # pages many times over.
            dbapi_connection.execute("PRAGMA cache_size = -524288")  # 512 MB
    names = ["signup_pages", "onboardings", "onboarding_steps", "webhook_events", "wabas", "phone_numbers",
             "onboarding_assets"]
    metadata = sa.MetaData()
    with warnings.catch_warnings():
        # SQLite's reflection skips the expression index, which is fine: only the columns are used here.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        metadata.reflect(engine, only=names)
    tables = metadata.tables
    rng = random.Random(11)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    span = (datetime(2026, 11, 1, tzinfo=UTC) - start).total_seconds()
    phases = {}
    began = time.perf_counter()
    with engine.begin() as connection:
        # As a bulk load is done: the secondary indexes are dropped first and built once at the end, instead
        # of being updated row by row at random keys. Unique and primary keys stay: they are constraints.
        indexes = secondary_indexes(connection, names)
        for name, _definition in indexes:
            connection.execute(sa.text(f"DROP INDEX {name}"))

        pages = [{"slug": f"client-{n}", "title": f"Client {n}", "client_name": f"Client {n}", "intro": None,
                  "config_id": None, "feature_type": "", "prefill": {}, "enabled": True,
                  "created_at": start, "updated_at": start} for n in range(20)]
        connection.execute(tables["signup_pages"].insert(), pages)
        page_ids = connection.execute(sa.select(tables["signup_pages"].c.id)).scalars().all()
        rows, wabas, phones, assets = gen_onboardings(onboardings, page_ids, rng, start, span)
        load(connection, tables["onboardings"], ONBOARDING_COLUMNS, rows)
        load(connection, tables["wabas"], WABA_COLUMNS, wabas)
        load(connection, tables["phone_numbers"], PHONE_COLUMNS, phones)
        load(connection, tables["onboarding_assets"], ASSET_COLUMNS, assets)
        phases["onboardings"] = time.perf_counter() - began
        mark = time.perf_counter()
        load(connection, tables["onboarding_steps"], STEP_COLUMNS, gen_steps(rows))
        phases["steps"] = time.perf_counter() - mark
        mark = time.perf_counter()
        load(connection, tables["webhook_events"], EVENT_COLUMNS, gen_events(events, onboardings, rng, start, span))
        phases["events"] = time.perf_counter() - mark

        mark = time.perf_counter()
        for _name, definition in indexes:
            connection.execute(sa.text(definition))
        assert secondary_indexes(connection, names) == indexes, "the indexes after seeding differ from the migrated"
        phases["indexes"] = time.perf_counter() - mark
        if postgresql:
            connection.execute(sa.text("SELECT setval(pg_get_serial_sequence('onboardings', 'id'), "
                                       "(SELECT max(id) FROM onboardings))"))
    mark = time.perf_counter()
    if postgresql:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("ANALYZE"))
    else:
        with engine.begin() as connection:
            connection.execute(sa.text("ANALYZE"))
    phases["analyze"] = time.perf_counter() - mark
    engine.dispose()
    return time.perf_counter() - began, phases


def login(url: str) -> requests.Session:
    session = requests.Session()
    html = session.get(f"{url}/admin/login", timeout=10).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'name="csrf-token" content="([^"]+)"', html)
    response = session.post(f"{url}/admin/login", data={"csrf_token": token.group(1), "password": PASSWORD},
                            timeout=10, allow_redirects=False)
    assert response.status_code in (302, 303), f"login failed: HTTP {response.status_code}"
    return session


def time_view(session: requests.Session, url: str, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = session.get(url, timeout=60)
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, f"{url}: HTTP {response.status_code}"
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--onboardings", type=int, default=100000)
    parser.add_argument("--events", type=int, default=1000000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch, fresh_database(args.database_url, scratch) as database_url:
        env = {"DATABASE_URL": database_url, "ESU_SIMULATOR": "0", "ESU_ADMIN_PASSWORD": PASSWORD}
        server = AppServer(env, port=free_port(), pages=["client-0"], prepare=False)
        server.flask("db", "upgrade")
        seconds, phases = seed(database_url, args.onboardings, args.events)
        subprocess.run([str(BIN / "flask"), "--app", "wsgi", "admin", "set-password"], cwd=ROOT,
                       env=server.env, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        with server as app:
            session = login(app.url)
            middle = args.onboardings // 2
            views = {
                "list": "/admin/onboardings",
                "filtered list": "/admin/onboardings?status=failed&page=3",
                "search name": f"/admin/onboardings?q=Business%20{middle}",
                "search WABA id": f"/admin/onboardings?q={600000000000000 + middle}",
                "search number": f"/admin/onboardings?q=1555{middle:07d}",
                "detail": f"/admin/onboardings/{middle}",
                "detail, 2 WABAs": f"/admin/onboardings/{middle // MULTI_WABA_EVERY * MULTI_WABA_EVERY + 1}",
                "events list": "/admin/webhooks",
                "events filtered": f"/admin/webhooks?field=account_update&waba={600000000000000 + middle}",
                "dashboard": "/admin/",
            }
            steps = args.onboardings * len(STEP_NAMES)
            print(f"Admin at scale: {args.onboardings:,} onboardings ({steps:,} steps), "
                  f"{args.events:,} webhook events, {database_url.split(':')[0]}; seeded in {seconds:.1f} s "
                  f"(target < 120 s)")
            print("  seeding: " + ", ".join(f"{phase} {spent:.1f} s" for phase, spent in phases.items()))
            for label, path in views.items():
                p50, p95 = time_view(session, app.url + path, args.repeat)
                target = 200 if label == "dashboard" else 50
                print(f"  {label:<16} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   (target p95 <= {target} ms)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
