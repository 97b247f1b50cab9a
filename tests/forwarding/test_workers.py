"""Workers side by side: every delivery is sent once, whoever claims it."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from esu import forwarding
from esu.extensions import db
from esu.models.forwarding import ForwardDelivery

from .conftest import add_target, onboard, store_events

DELIVERIES = 200


def statuses() -> dict[str, int]:
    db.session.expire_all()
    rows = db.session.execute(sa.select(ForwardDelivery.status, sa.func.count()).group_by(ForwardDelivery.status))
    return dict(rows.all())


def test_two_workers_never_send_the_same_delivery(app, page, receiver, clock):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("several workers need PostgreSQL (FOR UPDATE SKIP LOCKED); SQLite runs a single worker")
    add_target(page, receiver)
    store_events(onboard(page), count=DELIVERIES)
    start = threading.Barrier(2)
    results: list = []

    def worker() -> None:
        with app.app_context():
            start.wait()
            try:
                results.append(forwarding.run_worker(batch_size=8, once=True, clock=clock))
            except Exception as exc:  # reported below rather than lost in the thread
                results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert all(isinstance(result, forwarding.WorkerStats) for result in results), results
    ids = receiver.ids()
    assert len(ids) == DELIVERIES and len(set(ids)) == DELIVERIES
    assert sum(result.counts.get("delivered", 0) for result in results) == DELIVERIES
    assert statuses() == {"delivered": DELIVERIES}


def test_a_single_worker_sends_every_delivery_once(page, receiver, clock):
    add_target(page, receiver)
    store_events(onboard(page), count=DELIVERIES)

    stats = forwarding.run_worker(batch_size=8, once=True, clock=clock)

    ids = receiver.ids()
    assert len(ids) == DELIVERIES and len(set(ids)) == DELIVERIES
    assert stats.counts == {"delivered": DELIVERIES}
    assert statuses() == {"delivered": DELIVERIES}
