"""What stored webhook events take on disk, per million, and how fast retention deletes them.

``--events`` realistic changes (bench/webhooks.py's deliveries, all different: 60 % messages, 30 % statuses,
10 % quality and template events) are stored through esu's own storing code (``storing.store_together``,
in batches of 16 deliveries, as the endpoint stores a burst) in a fresh database, with forwarding off. Then
the size is read and scaled to a million events:

- SQLite: the database file after a checkpoint (``wal_checkpoint(TRUNCATE)``), and, of that, the pages of
  ``webhook_events`` and its indexes (the ``dbstat`` table);
- PostgreSQL: ``pg_total_relation_size('webhook_events')`` (the table, its TOAST and its indexes) after
  ``VACUUM ANALYZE``, and the whole database's size.

Then one retention pass deletes the messages and statuses (``webhooks.prune``, a batch of 500 at a time, as
the forwarding worker does), timed.

    .venv/bin/python bench/storage.py [--events 100000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import logging
import random
import secrets
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import META, fresh_database  # noqa: E402
from bench.webhooks import delivery  # noqa: E402

#: Deliveries stored in one transaction: what a worker's threads bring together in a burst.
TOGETHER = 16
MILLION = 1_000_000


def store(count: int) -> float:
    """Store ``count`` deliveries of one change each; answers the seconds it took."""
    from esu.webhooks.storing import Delivery, store_together

    rng = random.Random(7)
    began = time.perf_counter()
    for start in range(0, count, TOGETHER):
        deliveries = [Delivery.received(delivery(n, rng)) for n in range(start, min(start + TOGETHER, count))]
        for outcome in store_together(deliveries):
            if isinstance(outcome, Exception):
                raise outcome
    return time.perf_counter() - began


def sizes(database_url: str) -> dict[str, int]:
    """The sizes to report, in bytes, by what they measure."""
    from esu.extensions import db

    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE webhook_events")
            return {
                "webhook_events (table, TOAST, indexes)":
                    connection.scalar(sa.text("SELECT pg_total_relation_size('webhook_events')")),
                "the whole database": connection.scalar(sa.text("SELECT pg_database_size(current_database())")),
            }
    with db.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        names = [row[0] for row in connection.exec_driver_sql(
            "SELECT name FROM sqlite_schema WHERE tbl_name = 'webhook_events'")]
        own = connection.scalar(sa.text("SELECT sum(pgsize) FROM dbstat WHERE name IN ("
                                        + ", ".join(f"'{name}'" for name in names) + ")"))
    return {"the database file": Path(database_url.removeprefix("sqlite:///")).stat().st_size,
            "of which webhook_events and its indexes": own}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--database-url", help="a PostgreSQL server (a database of this run's own is made)")
    args = parser.parse_args()

    from flask_migrate import upgrade

    from esu import create_app, webhooks
    from esu.extensions import db
    from esu.models import WebhookEvent, now_utc

    with tempfile.TemporaryDirectory() as scratch, fresh_database(args.database_url, scratch) as url:
        app = create_app({**META, "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": secrets.token_hex(16),
                          "ESU_ENCRYPTION_KEYS": Fernet.generate_key().decode()})
        with app.app_context():
            logging.getLogger("alembic").setLevel(logging.WARNING)  # one line a migration otherwise
            upgrade()
            seconds = store(args.events)
            kinds = dict(db.session.execute(sa.select(WebhookEvent.kind, sa.func.count())
                                            .group_by(WebhookEvent.kind)).all())
            stored = sum(kinds.values())
            print(f"Webhook events on {db.engine.dialect.name}: {stored} stored in {seconds:.1f} s "
                  f"({', '.join(f'{count} {kind}' for kind, count in sorted(kinds.items()))})")
            for what, size in sizes(url).items():
                print(f"  {what}: {size / 2**20:.1f} MB, {size / stored * MILLION / 2**30:.2f} GB a million events")

            began = time.perf_counter()
            pruned = webhooks.prune(1, now=now_utc() + timedelta(days=2))
            took = time.perf_counter() - began
            batches = -(-pruned.events // webhooks.retention.BATCH_SIZE)
            print(f"  retention: {pruned.events} messages and statuses deleted in {took:.1f} s, "
                  f"{took / max(batches, 1) * 1000:.0f} ms a batch of {webhooks.retention.BATCH_SIZE}")
            db.session.remove()
            db.engine.dispose()


if __name__ == "__main__":
    main()
