"""The webhook endpoint: handshake, signatures over the raw bytes, sizes, storing each change once,
racing and repeated deliveries, and the database going away."""

from __future__ import annotations

import fcntl
import io
import json
import os
import sqlite3
import threading

import pytest
import requests
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from esu import create_app, webhooks
from esu.extensions import db
from esu.models import now_utc
from esu.sqlite import writer_lock_path
from esu.webhooks import storing
from esu.webhooks.appliers import APPLIERS
from esu.webhooks.parsing import parse_delivery

from ..conftest import APP_SECRET
from .conftest import URL, WABA_ID, count_events, encode, envelope, events, sign, text_message

# -- the verification handshake ------------------------------------------------------------------------


def test_handshake_echoes_the_challenge_as_plain_text(client):
    response = client.get(URL, query_string={"hub.mode": "subscribe", "hub.challenge": "1158201444",
                                             "hub.verify_token": "test-verify-token"})
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "1158201444"
    assert response.mimetype == "text/plain"


@pytest.mark.parametrize("query", [
    {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "wrong"},
    {"hub.mode": "subscribe", "hub.challenge": "1158201444"},
    {"hub.mode": "unsubscribe", "hub.challenge": "1158201444", "hub.verify_token": "test-verify-token"},
    {"hub.challenge": "1158201444", "hub.verify_token": "test-verify-token"},
    {"hub.mode": "subscribe", "hub.verify_token": "test-verify-token"},
    {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "tëst-verify-token"},
])
def test_handshake_refuses_anything_else(client, query):
    response = client.get(URL, query_string=query)
    assert response.status_code == 403
    assert "1158201444" not in response.get_data(as_text=True)


# -- signatures ------------------------------------------------------------------------------------------


def test_github_known_answer_vector():
    assert webhooks.signature_is_valid(
        b"Hello, World!", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "It's a Secret to Everybody")
    assert not webhooks.signature_is_valid(
        b"Hello, World!", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18",
        "It's a Secret to Everybody")


def test_github_vector_through_the_endpoint(app, client):
    app.config["META_APP_SECRET"] = "It's a Secret to Everybody"
    response = client.post(URL, data=b"Hello, World!", headers={
        "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"})
    assert response.status_code == 200
    [event] = events()
    assert (event.status, event.kind, event.raw) == ("unparseable", "delivery", "Hello, World!")


BODY = encode(envelope(("messages", text_message("wamid.SIGNED"))))
GOOD = sign(BODY)


@pytest.mark.parametrize("header", [
    None,
    "",
    "sha256=",
    "sha1=" + "0" * 40,
    sign(BODY, "another-secret"),
    GOOD[:-1],
    GOOD + "0",
    "sha256=" + "g" * 64,
    "sha256= " + GOOD.removeprefix("sha256="),
    " " + GOOD,
    GOOD.removeprefix("sha256="),
    "SHA256=" + GOOD.removeprefix("sha256="),
    sign(BODY + b" "),
    "sha256=" + "é" * 64,
], ids=["missing", "empty", "no-hex", "sha1", "other-secret", "truncated", "too-long", "not-hex", "inner-space",
        "leading-space", "no-prefix", "prefix-case", "other-body", "non-ascii"])
def test_bad_signatures_are_refused_and_nothing_is_stored(deliver, header):
    response = deliver(BODY, signature=header)
    assert response.status_code == 403
    assert count_events() == 0


def test_the_legacy_sha1_header_alone_is_not_enough(deliver):
    import hashlib
    import hmac

    legacy = "sha1=" + hmac.new(APP_SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    assert deliver(BODY, signature=None, **{"X-Hub-Signature": legacy}).status_code == 403
    assert count_events() == 0


def test_signature_in_capital_hex_is_accepted(deliver):
    assert deliver(BODY, signature="sha256=" + GOOD.removeprefix("sha256=").upper()).status_code == 200


# Raw UTF-8 Arabic, \u-escaped Arabic, an emoji as a surrogate pair and as raw bytes, an accented word.
UNICODE_BODY = (
    b'{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages",'
    b'"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881",'
    b'"phone_number_id":"106540352242922"},"messages":[{"from":"16505551234","id":"wamid.UNICODE",'
    b'"timestamp":"1750000000","type":"text","text":{"body":"'
    + "مرحبا".encode() + b' \\u0645\\u0631\\u062d\\u0628\\u0627 \\ud83d\\ude00 ' + "🙏🏽 ¿Dónde?".encode()
    + b'"}}]}}]}]}'
)


def test_unicode_bodies_are_verified_over_their_exact_bytes(deliver):
    reserialized = json.dumps(json.loads(UNICODE_BODY)).encode()
    assert reserialized != UNICODE_BODY
    # Meta's signature of the bytes it sent does not fit the same JSON written another way.
    assert deliver(reserialized, signature=sign(UNICODE_BODY)).status_code == 403
    assert count_events() == 0

    assert deliver(UNICODE_BODY).status_code == 200
    [event] = events()
    assert event.value["messages"][0]["text"]["body"] == "مرحبا مرحبا 😀 🙏🏽 ¿Dónde?"


# -- sizes -----------------------------------------------------------------------------------------------


def padded_to(size: int) -> bytes:
    head = encode(envelope(("messages", text_message("wamid.BIG", body="")))).split(b'"body":""')
    filler = size - len(head[0]) - len(head[1]) - len(b'"body":""')
    body = head[0] + b'"body":"' + b"a" * filler + b'"' + head[1]
    assert len(body) == size
    return body


def test_a_delivery_of_3_mb_is_stored(deliver):
    body = padded_to(webhooks.MAX_BODY_BYTES)
    assert deliver(body).status_code == 200
    assert len(events()[0].value["messages"][0]["text"]["body"]) > 3_000_000


def test_a_byte_more_than_3_mb_is_refused_before_anything_else(deliver):
    body = padded_to(webhooks.MAX_BODY_BYTES + 1)
    assert deliver(body).status_code == 413
    assert deliver(body, signature="sha256=nonsense").status_code == 413  # the size is checked first
    assert count_events() == 0


def send_chunked(client, body: bytes, signature: str):
    """A body of unknown length, as a server hands on a chunked one (no Content-Length, the input ended)."""
    return client.post(URL, input_stream=io.BytesIO(body), environ_overrides={"wsgi.input_terminated": True},
                       headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked",
                                "X-Hub-Signature-256": signature})


@pytest.mark.parametrize("signed", [True, False])
def test_a_chunked_body_over_3_mb_is_too_large_not_wrongly_signed(client, signed):
    body = padded_to(webhooks.MAX_BODY_BYTES + 1)
    response = send_chunked(client, body, sign(body) if signed else "sha256=nonsense")
    assert response.status_code == 413
    assert count_events() == 0


def test_a_chunked_body_of_3_mb_is_stored(client):
    body = padded_to(webhooks.MAX_BODY_BYTES)
    assert send_chunked(client, body, sign(body)).status_code == 200
    assert count_events() == 1


# -- what is stored --------------------------------------------------------------------------------------


def test_accepted_deliveries_answer_exactly_200_after_the_commit(deliver, app):
    seen_at_answer = []
    response = deliver(envelope(("messages", text_message("wamid.ONE"))))
    seen_at_answer.append(count_events())
    assert response.status_code == 200
    assert response.get_json() == {"changes": 1, "stored": 1}
    assert seen_at_answer == [1]


@pytest.mark.parametrize("body", [
    b"",
    b"not json",
    b'{"object":"page","entry":[]}',
    b'{"object":"whatsapp_business_account"}',
    b'["whatsapp_business_account"]',
    b'{"object":"whatsapp_business_account","entry":[],"x":NaN}',
    b'{"object":"whatsapp_business_account","entry":[{"time":1e999}]}',
    b"\xff\xfe\x00garbage",
    b"[" * 5000 + b"]" * 5000,
], ids=["empty", "text", "other-object", "no-entry", "array", "nan", "infinite", "binary", "deep"])
def test_signed_but_unparseable_bodies_are_kept_raw_and_acknowledged(deliver, body):
    assert deliver(body).status_code == 200
    assert deliver(body).status_code == 200  # a retry of it is kept once
    [event] = events()
    assert (event.status, event.kind, event.field) == ("unparseable", "delivery", None)
    assert event.raw == body.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def test_a_malformed_change_does_not_drop_its_siblings(deliver):
    body = envelope(("messages", text_message("wamid.GOOD")))
    body["entry"][0]["changes"].insert(0, "not a change")
    body["entry"][0]["changes"].append({"field": {"not": "a name"}, "value": {}})
    body["entry"].append(["not an entry"])
    assert deliver(body).status_code == 200
    stored = events()
    assert sorted(event.status for event in stored) == ["stored", "unparseable", "unparseable", "unparseable"]
    assert [event.dedupe_key for event in stored if event.kind == "message"] == ["wamid.GOOD"]


def test_strings_no_database_keeps_are_stored_replaced(deliver):
    body = (b'{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":'
            b'"made_up_field","value":{"nul":"a\\u0000b","lone":"\\ud800x","ok":"\\ud83d\\ude00"}}]}]}')
    assert deliver(body).status_code == 200
    [event] = events()
    assert event.value == {"nul": "a\ufffdb", "lone": "\ufffdx", "ok": "😀"}
    assert event.status == "ignored"


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.characters(codec=None, categories=None, min_codepoint=0, max_codepoint=0x10FFFF)
                    | st.sampled_from(["\x00", "\ud83d", "\ude00", "😀"]), max_size=12))
def test_parsed_values_hold_only_strings_a_database_keeps(text):
    body = json.dumps(envelope(("made_up_field", {text: text}))).encode()
    [row] = parse_delivery(body, now_utc())
    [(key, value)] = row["value"].items()
    assert key == value
    value.encode("utf-8")  # raises on a lone surrogate
    assert "\x00" not in value
    if text.encode("utf-8", "surrogatepass").decode("utf-8", "replace") == text and "\x00" not in text:
        assert value == text  # what needed no cleaning is kept as it came


def test_unknown_fields_are_stored_as_ignored(deliver):
    assert deliver(envelope(("some_future_field", {"anything": [1, 2, 3]}))).status_code == 200
    [event] = events()
    assert (event.field, event.status, event.value, event.waba_id) == (
        "some_future_field", "ignored", {"anything": [1, 2, 3]}, WABA_ID)


def test_a_duplicate_delivery_is_stored_once(deliver):
    body = envelope(
        ("messages", text_message("wamid.DUP")),
        ("messages", {**text_message("x"), "messages": [], "statuses": [
            {"id": "wamid.OUT", "status": "sent", "timestamp": "1750000000", "recipient_id": "16505551234"},
            {"id": "wamid.OUT", "status": "delivered", "timestamp": "1750000001", "recipient_id": "16505551234"},
        ]}),
        ("account_review_update", {"decision": "APPROVED"}),
    )
    assert deliver(body).get_json() == {"changes": 4, "stored": 4}
    assert deliver(body).get_json() == {"changes": 4, "stored": 0}
    assert sorted(event.dedupe_key for event in events() if event.kind != "change") == [
        "wamid.DUP", "wamid.OUT:delivered", "wamid.OUT:sent"]
    assert count_events() == 4


def test_each_participant_of_a_group_reading_a_message_is_kept(deliver):
    """A message sent to a group has one status per participant: the second one's read is not a retry."""
    def read(participant: str) -> dict:
        return {"id": "wamid.GROUP", "status": "read", "timestamp": "1750000000", "recipient_id": "120363012345",
                "recipient_type": "group", "recipient_participant_id": participant}

    statuses = {**text_message("x"), "messages": [], "statuses": [read("16505551234"), read("16505555678")]}
    body = envelope(("messages", statuses))
    assert deliver(body).get_json() == {"changes": 2, "stored": 2}
    assert deliver(envelope(("messages", {**statuses, "statuses": statuses["statuses"][::-1]}))).get_json() == {
        "changes": 2, "stored": 0}
    assert [event.dedupe_key for event in events()] == [
        "wamid.GROUP:read:16505551234", "wamid.GROUP:read:16505555678"]


def test_calls_and_echoes_in_a_messages_change_are_kept_once_beside_its_messages(deliver):
    value = {**text_message("wamid.IN1"),
             "statuses": [{"id": "wamid.OUT", "status": "sent", "timestamp": "1750000001"}],
             "calls": [{"event": "CALL_STATUS", "wacid": "wacid.DEF", "status": "RINGING"}],
             "message_echoes": [{"from": "BUSINESS", "to": "222", "id": "wamid.ECHO", "type": "text"}]}
    value["messages"] = [*value["messages"], {**value["messages"][0], "id": "wamid.IN2"}]
    assert deliver(envelope(("messages", value))).get_json() == {"changes": 4, "stored": 4}
    assert deliver(envelope(("messages", value))).get_json() == {"changes": 4, "stored": 0}
    by_kind: dict[str, list] = {}
    for event in events():
        by_kind.setdefault(event.kind, []).append(event)
    assert [len(by_kind[kind]) for kind in ("message", "status", "change")] == [2, 1, 1]
    for event in by_kind["message"] + by_kind["status"]:
        assert "calls" not in event.value and "message_echoes" not in event.value
    [rest] = by_kind["change"]
    assert (rest.field, rest.status, rest.phone_number_id) == (
        "messages", "stored", value["metadata"]["phone_number_id"])
    assert rest.value == {key: value[key] for key in ("messaging_product", "metadata", "contacts", "calls",
                                                      "message_echoes")}
    assert webhooks.message_counts() == {value["metadata"]["phone_number_id"]: {"message": 2, "status": 1}}


def test_the_same_changes_batched_differently_are_stored_once(deliver):
    first = ("messages", text_message("wamid.A"))
    second = ("account_review_update", {"decision": "APPROVED"})
    assert deliver(envelope(first, second)).status_code == 200
    assert deliver(envelope(second)).get_json() == {"changes": 1, "stored": 0}
    assert deliver(envelope(first)).get_json() == {"changes": 1, "stored": 0}
    # Spacing and key order are not part of a change.
    spaced = json.dumps(envelope(second), indent=3, sort_keys=True).encode()
    assert deliver(spaced).get_json() == {"changes": 1, "stored": 0}
    assert count_events() == 2


def test_a_batch_of_1000_changes_is_1000_rows_in_a_few_statements(deliver, app):
    changes = [("messages", text_message(f"wamid.BATCH{n:04d}")) for n in range(700)]
    changes += [("message_template_status_update",
                 {"event": "APPROVED", "message_template_id": 900000 + n, "message_template_name": f"t{n}",
                  "message_template_language": "en_US", "reason": "NONE"}) for n in range(300)]
    body = {"object": "whatsapp_business_account",
            "entry": [envelope(*changes[start:start + 100])["entry"][0] for start in range(0, 1000, 100)]}
    statements = []

    def listener(connection, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", listener)
    try:
        response = deliver(body)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", listener)
    assert response.get_json() == {"changes": 1000, "stored": 1000}
    assert count_events() == 1000
    assert len(events(status="applied")) == 300
    # PostgreSQL adds one: SET LOCAL lock_timeout before the records are locked.
    assert len(statements) <= (13 if db.engine.dialect.name == "postgresql" else 12), statements


def test_two_workers_getting_the_same_delivery_at_once_keep_it_once(live_app):
    body = encode(envelope(
        *[("messages", text_message(f"wamid.RACE{n}")) for n in range(20)],
        ("account_update", {"event": "PARTNER_ADDED", "waba_info": {"waba_id": "555000111222333",
                                                                    "owner_business_id": "777"}}),
        ("message_template_status_update", {"event": "APPROVED", "message_template_id": 31337,
                                            "message_template_name": "race", "message_template_language": "en"}),
        entry_id="2949482758682047"))
    barrier = threading.Barrier(2)
    answers = []

    def post():
        barrier.wait(timeout=10)
        response = requests.post(live_app.url + URL, data=body, timeout=30,
                                 headers={"X-Hub-Signature-256": sign(body), "Content-Type": "application/json"})
        answers.append(response.status_code)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert answers == [200, 200]
    assert count_events() == 22
    from esu.models import MessageTemplate, Onboarding

    assert db.session.scalar(sa.select(sa.func.count()).select_from(Onboarding)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MessageTemplate)) == 1


# -- the database unavailable --------------------------------------------------------------------------


def unavailable(*args, **kwargs):
    raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))


BATCH = envelope(
    ("messages", text_message("wamid.OUTAGE1")),
    ("messages", text_message("wamid.OUTAGE2")),
    ("message_template_status_update", {"event": "APPROVED", "message_template_id": 4242,
                                        "message_template_name": "outage", "message_template_language": "en"}),
)


@pytest.mark.parametrize("where", ["commit", "apply"])
def test_database_unavailable_gives_503_and_no_partial_rows_then_the_retry_is_stored_once(
        deliver, monkeypatch, where):
    if where == "commit":
        monkeypatch.setattr(Session, "commit", unavailable)
    else:  # after the changes were inserted, while applying them
        monkeypatch.setattr(storing, "apply", unavailable)
    response = deliver(BATCH)
    monkeypatch.undo()
    assert response.status_code == 503
    assert count_events() == 0
    from esu.models import MessageTemplate

    assert db.session.scalar(sa.select(sa.func.count()).select_from(MessageTemplate)) == 0

    assert deliver(BATCH).status_code == 200  # Meta's retry
    assert deliver(BATCH).status_code == 200
    assert count_events() == 3
    assert [event.status for event in events(kind="change")] == ["applied"]


def test_a_locked_sqlite_database_gives_503(app, deliver, database_url):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's own lock")

    @sa.event.listens_for(db.engine, "connect")
    def impatient(connection, _record):
        connection.execute("PRAGMA busy_timeout = 50")

    db.session.remove()
    db.engine.dispose()
    holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        assert deliver(BATCH).status_code == 503
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert deliver(BATCH).status_code == 200
    assert count_events() == 3


def test_connections_the_server_dropped_never_cost_a_delivery(app, deliver):
    """PostgreSQL restarted, or an operator ended our sessions: the pooled connection a batch of messages
    is stored on (as the driver's own, beneath SQLAlchemy) is gone. Meta hears a 503 and sends it again,
    or the pool's ping finds it first; the pool replaces the connection either way, never a 500."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's sessions")
    messages = envelope(("messages", text_message("wamid.DROPPED1")), ("messages", text_message("wamid.DROPPED2")))
    assert deliver(envelope(("messages", text_message("wamid.BEFORE")))).status_code == 200
    pooled = db.engine.raw_connection()
    try:  # given back as the pool's other users expect it: in a transaction of their own
        assert pooled.driver_connection.autocommit is False
    finally:
        pooled.close()

    operator = sa.create_engine(db.engine.url, poolclass=sa.NullPool)
    with operator.connect() as connection:
        ended = connection.scalar(sa.text(
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    operator.dispose()
    assert ended >= 1
    answers = [deliver(messages).status_code]
    if answers[0] != 200:
        answers.append(deliver(messages).status_code)  # Meta's retry

    assert answers in ([200], [503, 200])
    assert count_events() == 3


def test_a_session_ended_while_changing_records_gives_503_and_the_retry_applies_once(app, deliver):
    """The server ends our session in the middle of a batch that changes records (after its INSERT, before
    the records are locked): Meta hears a 503, never a 500, the pool drops the connection, and Meta's retry
    stores and applies the change once."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's sessions")
    ended: list[int] = []

    def end_the_session(connection, cursor, statement, *rest):
        if statement.startswith("SET LOCAL lock_timeout") and not ended:
            ended.append(connection.connection.driver_connection.info.backend_pid)
            with sa.create_engine(db.engine.url, poolclass=sa.NullPool).connect() as operator:
                operator.scalar(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": ended[0]})

    review = envelope(("account_review_update", {"decision": "APPROVED"}))
    sa.event.listen(db.engine, "before_cursor_execute", end_the_session)
    try:
        answers = [deliver(review).status_code, deliver(review).status_code]
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", end_the_session)

    assert answers == [503, 200] and ended
    assert [(event.field, event.status) for event in events()] == [("account_review_update", "applied")]
    with db.engine.connect() as connection:  # the pool no longer holds the ended session
        assert connection.connection.driver_connection.info.backend_pid != ended[0]


def test_a_database_that_cannot_be_reached_gives_503(app, app_config):
    """PostgreSQL is down (nothing listens where it should): a batch of messages, stored on a connection taken
    from the pool as the driver's own, is answered 503, which Meta retries, never 500."""
    unreachable = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://esu@127.0.0.1:9/esu"})
    raw = encode(envelope(("messages", text_message("wamid.UNREACHABLE"))))
    response = unreachable.test_client().post(URL, data=raw, headers={"Content-Type": "application/json",
                                                                      "X-Hub-Signature-256": sign(raw)})
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"


def deliver_in_thread(deliver, body: dict) -> tuple[threading.Thread, list[int]]:
    """Deliver on a thread of its own, so that a test can hold a lock while it waits; answers the thread
    and the list its status code lands in."""
    answers: list[int] = []
    thread = threading.Thread(target=lambda: answers.append(deliver(body).status_code))
    thread.start()
    return thread, answers


def test_the_writer_lock_held_by_another_process_gives_503_instead_of_a_wait(app, deliver, database_url):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's writer lock")
    # The other gunicorn worker writing: the lock file locked on a descriptor of its own.
    held = os.open(writer_lock_path(database_url.removeprefix("sqlite:///")), os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        thread, answers = deliver_in_thread(deliver, BATCH)
        thread.join(timeout=10)  # generous: the delivery waits half a second, then answers
        assert answers == [503]
    finally:
        os.close(held)
        thread.join(timeout=30)
    assert deliver(BATCH).status_code == 200  # Meta's retry
    assert count_events() == 3


def test_a_batch_stored_again_after_a_rollback_waits_no_longer_for_the_writer_lock(app, deliver, database_url,
                                                                                    monkeypatch):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's writer lock")
    from esu.sqlite import QueuedWritersConnection

    lock_file = writer_lock_path(database_url.removeprefix("sqlite:///"))
    taken: list[int] = []  # by the other worker, the moment the rollback gives the lock back
    apply, give_writer_lock = storing.apply, QueuedWritersConnection.give_writer_lock

    def failing_once(events):
        if not taken:
            taken.append(-1)  # the rollback that follows gives the lock to the other worker
            raise storing.ApplyFailed("one event could not be applied")
        return apply(events)

    def giving_it_to_the_other_worker(connection):
        give_writer_lock(connection)
        if taken == [-1]:
            taken[0] = os.open(lock_file, os.O_RDWR | os.O_CREAT)
            fcntl.flock(taken[0], fcntl.LOCK_EX | fcntl.LOCK_NB)

    monkeypatch.setattr(storing, "apply", failing_once)
    monkeypatch.setattr(QueuedWritersConnection, "give_writer_lock", giving_it_to_the_other_worker)
    try:
        thread, answers = deliver_in_thread(deliver, BATCH)
        thread.join(timeout=10)  # generous: stored again one by one, it waits half a second, then answers
        assert answers == [503]
    finally:
        if taken and taken[0] >= 0:
            os.close(taken[0])
        thread.join(timeout=30)
    assert deliver(BATCH).status_code == 200
    assert count_events() == 3


def test_sqlites_own_lock_held_by_another_process_gives_503_instead_of_a_wait(app, deliver, database_url):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's own lock")
    holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a process writing without esu's lock file
    try:
        thread, answers = deliver_in_thread(deliver, BATCH)
        thread.join(timeout=10)  # generous: the delivery waits half a second (its connection's timeout is 15)
        assert answers == [503]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        thread.join(timeout=30)
    assert deliver(BATCH).status_code == 200
    assert count_events() == 3


# -- fuzzing ---------------------------------------------------------------------------------------------

header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=80)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=2000),
       headers=st.dictionaries(st.sampled_from(["X-Hub-Signature-256", "X-Hub-Signature", "Content-Type",
                                                "Content-Encoding", "X-Forwarded-For"]), header_text),
       forged=st.none() | st.text("0123456789abcdef", min_size=64, max_size=64))
def test_random_unsigned_bodies_are_refused_and_never_stored(client, body, headers, forged):
    if forged is not None:
        headers["X-Hub-Signature-256"] = "sha256=" + forged
    response = client.post(URL, data=body, headers=headers)
    assert response.status_code == 403
    assert count_events() == 0


strings = st.text(max_size=20) | st.sampled_from(["\x00", "\ud800", "a\udfffb", "😀", "مرحبا", "wamid.X"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | strings,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(strings, children, max_size=4),
    max_leaves=25,
)
fields = st.sampled_from([*APPLIERS, "messages", "some_new_field"]) | strings
ids = st.from_regex(r"\A[0-9]{1,20}\Z") | json_values
changes = st.fixed_dictionaries({"field": fields, "value": json_values | st.fixed_dictionaries({
    "event": strings | st.sampled_from(["PARTNER_ADDED", "PARTNER_REMOVED", "APPROVED"]),
    "message_template_id": ids, "waba_info": st.fixed_dictionaries({"waba_id": ids}),
    "display_phone_number": strings, "decision": strings,
    "messages": st.lists(st.fixed_dictionaries({"id": strings, "timestamp": json_values})),
    "statuses": st.lists(st.fixed_dictionaries({"id": strings, "status": strings})),
})})
envelopes = st.fixed_dictionaries({
    "object": st.just("whatsapp_business_account"),
    "entry": st.lists(st.fixed_dictionaries({"id": ids, "time": json_values, "changes": st.lists(changes, max_size=4)}),
                      max_size=3),
})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=json_values | envelopes, escaped=st.booleans())
def test_random_signed_json_is_always_acknowledged(deliver, document, escaped):
    body = json.dumps(document, ensure_ascii=escaped).encode("utf-8", "surrogatepass")
    response = deliver(body)
    assert response.status_code == 200, response.get_data(as_text=True)
    no_changes = isinstance(document, dict) and document.get("object") == "whatsapp_business_account" and all(
        entry["changes"] == [] for entry in document["entry"])
    assert count_events() >= 1 or no_changes


# -- CSRF applies everywhere but here ------------------------------------------------------------------


def test_only_the_webhook_and_the_funnel_beacon_are_exempt_from_csrf(client, page):
    assert client.post(URL, data=b"{}").status_code == 403  # the signature, not CSRF, guards it
    # The anonymous beacon: its JSON content type keeps cross-site forms out (tests/test_signup_page.py).
    assert client.post(f"/signup/{page.slug}/events", json={"kind": "view"}).status_code == 204
    assert client.post(f"/signup/{page.slug}/callback", json={"code": "x"}).status_code == 400
