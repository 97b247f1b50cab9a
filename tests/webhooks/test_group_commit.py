"""Deliveries a worker receives at the same moment are stored together: one transaction, one commit, and
still each answered with its own receipt, only after its own commit."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DataError, OperationalError

from esu.extensions import db
from esu.webhooks import Receipt, storing
from esu.webhooks.batching import GroupCommit, ready_to_write
from esu.webhooks.storing import Delivery, store_together

from .conftest import encode, envelope, events, text_message

PATIENCE = 20


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.001)


class HeldStore:
    """A store that records each batch and holds the first until released."""

    def __init__(self, fail_first: BaseException | None = None):
        self.batches: list[list[bytes]] = []
        self.storing, self.release = threading.Event(), threading.Event()
        self.fail_first = fail_first

    def __call__(self, bodies: list[bytes]) -> list[Receipt | Exception]:
        self.batches.append(bodies)
        if len(self.batches) == 1:
            self.storing.set()
            assert self.release.wait(PATIENCE)
            if self.fail_first:
                raise self.fail_first
        return [Receipt(changes=1, stored=len(body), failed=0) for body in bodies]


def submit_in_threads(group: GroupCommit, bodies: list[bytes], answers: dict) -> list[threading.Thread]:
    def one(body):
        try:
            answers[body] = group.submit(body)
        except BaseException as error:  # noqa: BLE001 - the answer this delivery got
            answers[body] = error

    threads = [threading.Thread(target=one, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    return threads


def test_deliveries_arriving_while_one_is_stored_go_in_together_each_with_its_own_receipt():
    store = HeldStore()
    group = GroupCommit(store)
    answers: dict = {}
    first = submit_in_threads(group, [b"a"], answers)
    assert store.storing.wait(PATIENCE)
    later = submit_in_threads(group, [b"bb", b"ccc"], answers)
    wait_until(lambda: group.queued == 2, "queued")
    assert answers == {}  # nobody is answered before their commit
    store.release.set()
    for thread in first + later:
        thread.join(PATIENCE)

    assert store.batches[0] == [b"a"]
    assert sorted(store.batches[1]) == [b"bb", b"ccc"]
    assert {body: receipt.stored for body, receipt in answers.items()} == {b"a": 1, b"bb": 2, b"ccc": 3}
    assert group.queued == 0


def test_a_batch_that_fails_fails_each_of_its_deliveries_and_the_next_batch_is_still_stored():
    unavailable = OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))
    store = HeldStore(fail_first=unavailable)
    group = GroupCommit(store)
    answers: dict = {}
    first = submit_in_threads(group, [b"a"], answers)
    assert store.storing.wait(PATIENCE)
    later = submit_in_threads(group, [b"b"], answers)
    wait_until(lambda: group.queued == 1, "queued")
    store.release.set()
    for thread in first + later:
        thread.join(PATIENCE)

    assert answers[b"a"] is unavailable
    assert answers[b"b"].stored == 1
    assert len(store.batches) == 2


def test_at_most_the_limit_goes_in_one_batch():
    store = HeldStore()
    group = GroupCommit(store, limit=2)
    answers: dict = {}
    first = submit_in_threads(group, [b"a"], answers)
    assert store.storing.wait(PATIENCE)
    later = submit_in_threads(group, [b"b", b"c", b"d"], answers)
    wait_until(lambda: group.queued == 3, "queued")
    store.release.set()
    for thread in first + later:
        thread.join(PATIENCE)

    assert [len(batch) for batch in store.batches] == [1, 2, 1]
    assert len(answers) == 4 and all(isinstance(receipt, Receipt) for receipt in answers.values())


def test_deliveries_arriving_while_the_storing_thread_waits_its_turn_to_write_go_in_its_batch():
    # The other gunicorn worker holds SQLite's writer lock: what arrives meanwhile joins the waiting batch.
    waiting_to_write, may_write = threading.Event(), threading.Event()

    def prepare():
        waiting_to_write.set()
        assert may_write.wait(PATIENCE)

    store = HeldStore()
    store.release.set()
    group = GroupCommit(store, prepare=prepare)
    answers: dict = {}
    first = submit_in_threads(group, [b"a"], answers)
    assert waiting_to_write.wait(PATIENCE)
    later = submit_in_threads(group, [b"bb", b"ccc"], answers)
    wait_until(lambda: group.queued == 3, "queued")
    may_write.set()
    for thread in first + later:
        thread.join(PATIENCE)

    assert [sorted(batch) for batch in store.batches] == [[b"a", b"bb", b"ccc"]]
    assert {body: receipt.stored for body, receipt in answers.items()} == {b"a": 1, b"bb": 2, b"ccc": 3}


def test_a_turn_to_write_that_never_comes_fails_its_batch_and_the_next_is_still_stored():
    locked = OperationalError("BEGIN", {}, Exception("database is locked"))
    turns = []

    def prepare():
        turns.append(1)
        if len(turns) == 1:
            wait_until(lambda: group.queued == 2, "queued")
            raise locked

    store = HeldStore()
    store.release.set()
    group = GroupCommit(store, prepare=prepare)
    answers: dict = {}
    threads = submit_in_threads(group, [b"a"], answers)
    wait_until(lambda: turns, "waiting to write")
    threads += submit_in_threads(group, [b"b"], answers)
    for thread in threads:
        thread.join(PATIENCE)
    # "a" and "b" were both waiting when the turn failed: both hear of it, and nothing was stored for them.
    assert answers == {b"a": locked, b"b": locked}
    assert store.batches == []
    assert group.submit(b"c").stored == 1  # the group still stores


def test_the_thread_about_to_store_holds_sqlites_writer_lock_until_its_transaction_ends(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL has row locks: nothing to wait for before a batch")
    from esu.sqlite import QueuedWritersConnection

    other = QueuedWritersConnection(db.engine.url.database, timeout=0.05)
    try:
        ready_to_write()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.take_writer_lock()
        db.session.rollback()
        other.take_writer_lock()  # given back with the transaction
    finally:
        other.close()


# -- storing a batch ---------------------------------------------------------------------------------------


def test_a_batch_is_one_transaction_and_a_change_in_two_deliveries_is_stored_once(app, monkeypatch):
    one = encode(envelope(("messages", text_message("wamid.TOGETHER1")), ("messages", text_message("wamid.SHARED"))))
    two = encode(envelope(("messages", text_message("wamid.SHARED")), ("messages", text_message("wamid.TOGETHER2"))))
    commits, inserts, alone = [], [], []
    insert_and_queue_alone = storing.insert_and_queue_alone
    monkeypatch.setattr(storing, "insert_and_queue_alone",
                        lambda rows, parameters: alone.append(len(rows)) or insert_and_queue_alone(rows, parameters))
    listeners = [("commit", lambda connection: commits.append(connection)),
                 ("before_cursor_execute", lambda connection, cursor, statement, *rest:
                  inserts.append(statement) if statement.startswith(("INSERT", "WITH")) else None)]
    for name, listener in listeners:
        sa.event.listen(db.engine, name, listener)
    try:
        receipts = store_together([Delivery.received(one), Delivery.received(two)])
    finally:
        for name, listener in listeners:
            sa.event.remove(db.engine, name, listener)
    assert [(receipt.changes, receipt.stored) for receipt in receipts] == [(2, 2), (2, 1)]
    if db.engine.dialect.name == "postgresql":
        # Messages only: one statement stores them and queues them for forwarding, a transaction of its own
        # on the driver's connection (nothing through the session).
        assert alone == [3] and inserts == [] and commits == []
    else:
        assert len(commits) == 1
    assert sorted(event.dedupe_key for event in events()) == ["wamid.SHARED", "wamid.TOGETHER1", "wamid.TOGETHER2"]


@pytest.fixture
def refusing(app, monkeypatch):
    """Makes the database refuse any statement with one of the values of the list this answers among its
    parameters, as PostgreSQL refuses what it cannot encode: through the session, and as the one statement
    that stores messages on PostgreSQL."""
    refused: list[str] = []

    def refuse(connection, cursor, statement, parameters, *rest):
        if any(value in refused for value in parameters or ()):
            raise DataError(statement, parameters, Exception("invalid byte sequence for encoding UTF8"))

    insert_and_queue_alone = storing.insert_and_queue_alone

    def refuse_alone(rows, parameters):
        for row in parameters:
            refuse(None, None, "INSERT", row)
        return insert_and_queue_alone(rows, parameters)

    monkeypatch.setattr(storing, "insert_and_queue_alone", refuse_alone)
    sa.event.listen(db.engine, "before_cursor_execute", refuse)
    yield refused
    sa.event.remove(db.engine, "before_cursor_execute", refuse)


def test_a_delivery_the_database_refuses_costs_only_itself(refusing):
    good = encode(envelope(("messages", text_message("wamid.GOOD"))))
    poisoned = encode(envelope(("messages", text_message("wamid.POISON"))))
    refusing.append("wamid.POISON")
    receipts = store_together([Delivery.received(good), Delivery.received(poisoned)])

    assert [(receipt.changes, receipt.stored) for receipt in receipts] == [(1, 1), (1, 1)]
    kept = {event.dedupe_key: event for event in events()}
    assert kept["wamid.GOOD"].status == "stored"
    raw = next(event for key, event in kept.items() if key != "wamid.GOOD")
    assert raw.status == "unparseable" and "wamid.POISON" in raw.raw
    assert raw.error.startswith("not stored as changes: DataError")


def test_an_unavailable_database_fails_the_whole_batch_and_keeps_nothing(app, monkeypatch):
    def unavailable(*args, **kwargs):
        raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(storing, "apply", unavailable)
    quality = envelope(("phone_number_quality_update", {"display_phone_number": "15550783881",
                                                         "event": "FLAGGED", "current_limit": "TIER_1K"}))
    with pytest.raises(OperationalError):
        store_together([Delivery.received(encode(envelope(("messages", text_message("wamid.LOST"))))),
                                 Delivery.received(encode(quality))])
    assert events() == []
