"""Two deliveries about the same record applied at the same moment, by two workers: neither loses the
other's change, and an older event never wins because it read the record before a newer one landed.

The interleaving is forced, not hoped for: the first delivery stops right after loading its records
(before changing them) and goes on only once the second has either committed or is waiting for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask

from esu import create_app
from esu.extensions import db
from esu.models import MessageTemplate, PhoneNumber, WhatsAppBusinessAccount
from esu.sqlite import QueuedWritersConnection
from esu.webhooks.appliers import APPLIERS

from .conftest import URL, WABA_ID, encode, envelope, sign, text_message
from .test_apply import quality

TEMPLATE_ID = "8088"
#: Far longer than any of these deliveries takes; reaching it means a worker hung.
PATIENCE = 20


def account_update(event: str, at: int, **value) -> dict:
    return envelope(("account_update", {"event": event, **value}), time=at)


def template_status(event: str, at: int) -> dict:
    return envelope(("message_template_status_update", {
        "event": event, "message_template_id": int(TEMPLATE_ID), "message_template_name": "welcome",
        "message_template_language": "en_US", "reason": "NONE"}), time=at)


def waba() -> WhatsAppBusinessAccount:
    db.session.expire_all()
    return db.session.get(WhatsAppBusinessAccount, WABA_ID)


def two_kinds_of_account_update_both_kept() -> tuple[dict, dict, Callable[[], None]]:
    def check():
        assert set(waba().account_events or {}) == {"DISABLED_UPDATE", "ACCOUNT_VIOLATION"}

    return (account_update("DISABLED_UPDATE", 1750000100, ban_info={"waba_ban_state": "DISABLE"}),
            account_update("ACCOUNT_VIOLATION", 1750000200, violation_info={"violation_type": "SPAM"}),
            check)


def two_limits_merged() -> tuple[dict, dict, Callable[[], None]]:
    def check():
        assert waba().limits == {"max_daily_conversation_per_phone": 10000, "max_phone_numbers_per_waba": 25}

    # The newer adds its limit to what the older set (an older one coming last would be dropped whole).
    return (envelope(("business_capability_update", {"max_daily_conversation_per_phone": 10000}), time=1750000100),
            envelope(("business_capability_update", {"max_phone_numbers_per_waba": 25}), time=1750000200),
            check)


def an_older_review_does_not_win() -> tuple[dict, dict, Callable[[], None]]:
    def check():
        assert waba().account_review_status == "APPROVED"

    return (envelope(("account_review_update", {"decision": "REJECTED"}), time=1750000100),
            envelope(("account_review_update", {"decision": "APPROVED"}), time=1750000200),
            check)


def an_older_template_status_does_not_win() -> tuple[dict, dict, Callable[[], None]]:
    def check():
        db.session.expire_all()
        assert db.session.get(MessageTemplate, TEMPLATE_ID).status == "APPROVED"

    return template_status("PENDING", 1750000100), template_status("APPROVED", 1750000200), check


def an_older_quality_event_does_not_win() -> tuple[dict, dict, Callable[[], None]]:
    def check():
        db.session.expire_all()
        assert db.session.scalar(sa.select(PhoneNumber.messaging_limit)) == "TIER_10K"

    return quality("TIER_2K", 1750000100), quality("TIER_10K", 1750000200), check


CASES = {
    "two kinds of account_update": two_kinds_of_account_update_both_kept,
    "two limits": two_limits_merged,
    "an older review": an_older_review_does_not_win,
    "an older template status": an_older_template_status_does_not_win,
    "an older quality event": an_older_quality_event_does_not_win,
}


@pytest.fixture
def records(phone):
    """The WABA (with its number) and a template on record, as an onboarding leaves them: the race is
    over existing rows (creating one is already decided by the database's unique key)."""
    db.session.add(MessageTemplate(id=TEMPLATE_ID, waba_id=WABA_ID, name="welcome", language="en_US",
                                   status="APPROVED", components=[]))
    db.session.commit()


@pytest.fixture
def other_worker(app_config):
    """A second gunicorn worker: the same settings and database, its own app (a worker's threads store
    deliveries arriving together in one transaction; two workers race)."""
    worker = create_app(app_config)
    yield worker
    with worker.app_context():
        db.engine.dispose()


@pytest.mark.parametrize("case", CASES)
def test_two_deliveries_about_one_record_at_once_keep_both_changes(app, other_worker, records, monkeypatch, stuck,
                                                                   case):
    first, second, check = CASES[case]()
    assert race(app, other_worker, monkeypatch, stuck, first, second) == {"first": 200, "second": 200}
    check()


def test_two_deliveries_about_an_account_on_no_record_make_one_record_and_the_newer_wins(
        app, other_worker, monkeypatch, stuck, caplog):
    """The WABA is on no record: the first delivery creates it and stops before committing; the second,
    finding its id taken by the first, waits, then reads the account as the first left it (not by way of
    applying its changes again one by one)."""
    first, second, check = an_older_review_does_not_win()
    with caplog.at_level(logging.INFO, logger="esu.webhooks"):
        assert race(app, other_worker, monkeypatch, stuck, first, second) == {"first": 200, "second": 200}
    check()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WhatsAppBusinessAccount)) == 1
    assert not [record for record in caplog.records if "one by one" in record.getMessage()]


def race(app: Flask, other_worker: Flask, monkeypatch, stuck, first: dict, second: dict) -> dict:
    """Post ``first`` to ``app``, stop it with its records loaded, post ``second`` to ``other_worker``, let
    the first go on once the second has committed or waits for it; answers each one's status."""
    first_field = first["entry"][0]["changes"][0]["field"]
    loaded, go_on = threading.Event(), threading.Event()
    answers: dict[str, int | BaseException] = {}
    threads: dict[str, threading.Thread] = {}
    applier = APPLIERS[first_field]

    def pausing(event, records):
        # Only the first delivery's worker stops, its records loaded and not yet changed.
        if threading.current_thread() is threads["first"]:
            loaded.set()
            assert go_on.wait(PATIENCE), "never told to go on"
        return applier(event, records)

    monkeypatch.setitem(APPLIERS, first_field, pausing)

    def post(name: str, worker: Flask, body: dict) -> None:
        raw = encode(body)
        try:  # a thread of its own is a request of its own: its own app context, session, connection
            answers[name] = worker.test_client().post(URL, data=raw, headers={
                "X-Hub-Signature-256": sign(raw), "Content-Type": "application/json"}).status_code
        except BaseException as error:  # noqa: BLE001 - reported below rather than lost in the thread
            answers[name] = error

    threads["first"] = threading.Thread(target=post, args=("first", app, first))
    threads["second"] = threading.Thread(target=post, args=("second", other_worker, second))
    threads["first"].start()
    assert loaded.wait(PATIENCE), answers
    threads["second"].start()
    # The second commits (nothing stops it) or waits for the first (it must not read what the first is
    # about to change): either way, now the first goes on.
    deadline = time.monotonic() + PATIENCE
    while threads["second"].is_alive() and not stuck(threads["second"]):
        assert time.monotonic() < deadline, "the second delivery neither finished nor waited"
        threads["second"].join(0.01)
    go_on.set()
    for thread in threads.values():
        thread.join(PATIENCE)
    return answers


def test_messages_and_statuses_lock_no_record(deliver, records):
    """Most of what Meta sends: stored and forwarded, never waiting behind an account's events."""
    status = {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881",
                                                            "phone_number_id": "106540352242922"},
              "statuses": [{"id": "wamid.SENT1", "status": "delivered", "timestamp": "1750000000",
                            "recipient_id": "16505551234"}]}
    statements: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", listener)
    try:
        response = deliver(envelope(("messages", text_message("wamid.LOCKLESS")), ("messages", status)))
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", listener)
    assert response.get_json() == {"changes": 2, "stored": 2}
    assert not [statement for statement in statements if " FOR " in statement.upper()]


@pytest.fixture
def stuck(app, monkeypatch):
    """``stuck(thread)``: whether that thread's request waits for another's transaction to end."""
    if db.engine.dialect.name == "sqlite":
        # The first request holds SQLite's writer lock since it began to store its event: a second request
        # that has asked for the lock cannot go on before the first commits.
        writers: set[threading.Thread] = set()
        take_writer_lock = QueuedWritersConnection.take_writer_lock

        def asking(connection, *args, **kwargs):
            writers.add(threading.current_thread())
            return take_writer_lock(connection, *args, **kwargs)

        monkeypatch.setattr(QueuedWritersConnection, "take_writer_lock", asking)
        yield writers.__contains__
        return

    def waiting(thread: threading.Thread) -> bool:
        # Only the two requests use this database while the test runs: any backend blocked is the second.
        with db.engine.connect() as connection:
            return bool(connection.scalar(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND cardinality(pg_blocking_pids(pid)) > 0")))

    yield waiting
