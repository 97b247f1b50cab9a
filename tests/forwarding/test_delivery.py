"""Forwarding stored webhook events to clients' own URLs: queued with the event, signed, retried, logged,
replayable — against a real receiver on 127.0.0.1."""

from __future__ import annotations

import email.utils
import json
import logging
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from esu import forwarding
from esu.cli import create_page
from esu.extensions import db
from esu.forwarding import ForwardingError, outbox, recording, signing, worker
from esu.models import Onboarding, now_utc
from esu.models.forwarding import ForwardAttempt, ForwardDelivery, ForwardingTarget
from esu.onboarding.assets import add_waba

from .conftest import Receiver, add_target, onboard, store_events, verify_webhook


@pytest.fixture(autouse=True)
def _worker_logs_no_errors(caplog):
    """A worker that logs an error has lost track of something; a test expecting one clears the log."""
    yield
    errors = [record.getMessage() for record in caplog.get_records("call")
              if record.name.startswith("esu.forwarding.") and record.levelno >= logging.ERROR]
    assert errors == []


def work(clock, **options) -> forwarding.WorkerStats:
    """One worker pass over what is due at ``clock``'s time. The short poll makes the worker also go
    round its loop while requests are still in flight."""
    return forwarding.run_worker(options.pop("batch_size", 10), once=True, clock=clock, poll_interval=0.01,
                                 **options)


def delivery_of(event_id: int) -> ForwardDelivery:
    db.session.expire_all()
    return db.session.scalars(sa.select(ForwardDelivery).where(ForwardDelivery.event_id == event_id)).one()


def attempts_of(delivery: ForwardDelivery) -> list[ForwardAttempt]:
    return list(db.session.scalars(sa.select(ForwardAttempt).where(ForwardAttempt.delivery_id == delivery.id)
                                   .order_by(ForwardAttempt.id)))


# -- the outbox ------------------------------------------------------------------------------------


def test_enqueue_picks_the_owning_pages_targets_and_their_fields(page):
    other = create_page("other", "Other client")
    everything, _ = forwarding.create_target(page, "http://127.0.0.1:9/all")
    accounts, _ = forwarding.create_target(page, "http://127.0.0.1:9/accounts", ["account_update"])
    switched_off, _ = forwarding.create_target(page, "http://127.0.0.1:9/off")
    forwarding.disable_target(switched_off, "not now")
    others, _ = forwarding.create_target(other, "http://127.0.0.1:9/other")
    db.session.commit()
    reported = create_page("reported", "Found by Meta's PARTNER_ADDED")
    from_meta, _ = forwarding.create_target(reported, "http://127.0.0.1:9/reported")
    placeholder = Onboarding(page_id=reported.id, event="PARTNER_ADDED", source="webhook", status="completed",
                             waba_id="777")
    db.session.add(placeholder)
    db.session.flush()
    add_waba(placeholder, "777")  # as the PARTNER_ADDED applier keeps it
    db.session.commit()
    ours = onboard(page)
    theirs = onboard(other)
    onboard(other, ours, confirmed=False)  # someone on the other page claimed our WABA: not proven

    message, account, elsewhere, orphan = (store_events(ours)[0], store_events(ours, field="account_update")[0],
                                           store_events(theirs)[0], store_events("999")[0])
    (reported_event,) = store_events("777")

    def targets_of(event_id):
        return sorted(db.session.scalars(sa.select(ForwardDelivery.target_id)
                                         .where(ForwardDelivery.event_id == event_id)))

    assert targets_of(message) == [everything.id]
    assert targets_of(account) == sorted([everything.id, accounts.id])
    assert targets_of(elsewhere) == [others.id]
    assert targets_of(orphan) == []
    assert targets_of(reported_event) == [from_meta.id]

    # The ingest may queue the same events again (a retried transaction): nothing is added.
    assert forwarding.enqueue([message, account, elsewhere, orphan, reported_event]) == 0
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ForwardDelivery)) == 5
    # Each with its own webhook-id, made by the database as signing.new_message_id makes them.
    message_ids = db.session.scalars(sa.select(ForwardDelivery.message_id)).all()
    assert len(set(message_ids)) == 5
    assert all(re.fullmatch(r"msg_[0-9a-f]{32}", message_id) for message_id in message_ids), message_ids
    assert re.fullmatch(r"msg_[0-9a-f]{32}", signing.new_message_id())


def test_the_outbox_goes_from_the_batchs_events_to_their_wabas_onboardings(app):
    """SQLite keeps no statistics: the routing must start from the batch's few events and find their WABA's
    onboardings by the assets' index (kind and asset id), not walk every WABA asset of every onboarding and
    look up each one's events (28 ms a batch instead of 0.05 with 20,000 onboardings)."""
    connection = db.session.connection()
    if connection.dialect.name != "sqlite":
        pytest.skip("PostgreSQL plans from the statistics it keeps")
    statement, names, constants, process_time = outbox._outbox_insert(connection.dialect)
    values = {**constants, "event_ids": "[1, 2]", "now": process_time(now_utc())}
    plan = [row[3] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                                         tuple(values[name] for name in names))]
    assert "SEARCH webhook_events USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
    assert "SEARCH onboarding_assets USING INDEX ix_onboarding_assets_kind_asset_id (kind=? AND asset_id=?)" in plan


def test_disabling_a_target_stops_its_pending_deliveries(page):
    target, _ = forwarding.create_target(page, "http://127.0.0.1:9/hooks")
    db.session.commit()
    store_events(onboard(page), count=2)
    assert forwarding.disable_target(target, "the client moved") == 2
    db.session.commit()
    assert forwarding.delivery_counts(target) == {"failed": 2}
    assert {d.last_error for d in forwarding.deliveries(target)} == {"stopped: the client moved"}
    with pytest.raises(ForwardingError, match="must start with"):
        forwarding.update_target(target, url="gopher://127.0.0.1/")
    forwarding.update_target(target, url="http://127.0.0.1:10/new", fields=["security"])
    assert (target.url, target.fields) == ("http://127.0.0.1:10/new", ["security"])


def test_events_after_offboarding_are_not_forwarded(page, clock):
    forwarding.create_target(page, "http://127.0.0.1:9/hooks")
    db.session.commit()
    waba_id = onboard(page)
    before = store_events(waba_id)[0]
    onboarding = db.session.scalars(sa.select(Onboarding).where(Onboarding.waba_id == waba_id)).one()
    onboarding.offboarded_at = now_utc()
    onboarding.status = "offboarded"
    db.session.commit()
    after = store_events(waba_id)[0]
    assert delivery_of(before).status == "pending"
    assert db.session.scalar(sa.select(ForwardDelivery).where(ForwardDelivery.event_id == after)) is None


def test_a_delivery_is_signed_so_the_receiver_can_verify_it(page, receiver, clock):
    target = add_target(page, receiver)
    (event_id,) = store_events(onboard(page))

    stats = work(clock)

    assert stats.counts == {"delivered": 1}
    (request,) = receiver.received
    assert request.verified
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-timestamp"] == str(int(clock().timestamp()))
    delivery = delivery_of(event_id)
    assert request.webhook_id == delivery.message_id and delivery.message_id.startswith("msg_")
    assert json.loads(request.body) == {
        "id": event_id, "field": "messages", "waba_id": delivery.event.waba_id, "phone_number_id": "555001",
        "occurred_at": "2026-05-01T12:00:00+00:00",
        "value": {"messaging_product": "whatsapp", "messages": [{"text": {"body": "Hola, ¿qué tal? 👋"}}]},
    }
    # The same check refuses another secret, a changed body, and a stale timestamp.
    now = clock().timestamp()
    assert not verify_webhook(signing.new_secret(), request.headers, request.body, now=now)
    assert not verify_webhook(receiver.secret, request.headers, request.body.replace(b"Hola", b"Hala"), now=now)
    assert not verify_webhook(receiver.secret, request.headers, request.body, now=now + 301)
    assert delivery.status == "delivered" and delivery.delivered_at == clock()
    (attempt,) = attempts_of(delivery)
    assert (attempt.status_code, attempt.response_excerpt, attempt.error) == (200, "ok", None)
    assert target.secret.startswith("whsec_")


def test_server_errors_are_retried_with_backoff_until_success(page, receiver, clock):
    target = add_target(page, receiver)
    (event_id,) = store_events(onboard(page))
    receiver.answer((500, {}, b"database down"), (503, {}, b"maintenance"))

    work(clock)
    delivery = delivery_of(event_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert timedelta(seconds=8) <= delivery.next_attempt_at - clock() <= timedelta(seconds=12)
    assert db.session.get(ForwardingTarget, target.id).failing_since == clock()

    assert work(clock).attempted == 0  # not due yet
    clock.advance(seconds=12)
    work(clock)
    delivery = delivery_of(event_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 2, 503)
    assert timedelta(seconds=48) <= delivery.next_attempt_at - clock() <= timedelta(seconds=72)

    clock.advance(seconds=72)
    work(clock)
    delivery = delivery_of(event_id)
    assert (delivery.status, delivery.attempts) == ("delivered", 3)
    assert len({request.webhook_id for request in receiver.received}) == 1
    assert len({request.body for request in receiver.received}) == 1  # the same bytes every time
    assert len({request.headers["webhook-timestamp"] for request in receiver.received}) == 3
    assert all(request.verified for request in receiver.received)
    assert [(a.status_code, a.response_excerpt) for a in attempts_of(delivery)] == [
        (500, "database down"), (503, "maintenance"), (200, "ok")]
    assert db.session.get(ForwardingTarget, target.id).failing_since is None


def test_retry_after_is_honoured_in_seconds_and_as_a_date(page, receiver, clock):
    add_target(page, receiver)
    (event_id,) = store_events(onboard(page))
    receiver.answer((429, {"Retry-After": "120"}, b"slow down"))

    work(clock)
    assert delivery_of(event_id).next_attempt_at == clock() + timedelta(seconds=120)
    clock.advance(seconds=100)
    assert work(clock).attempted == 0

    in_an_hour = email.utils.format_datetime(clock() + timedelta(hours=1), usegmt=True)
    receiver.answer((503, {"Retry-After": in_an_hour}, b""))
    clock.advance(seconds=21)
    work(clock)
    assert len(receiver.received) == 2
    assert delivery_of(event_id).next_attempt_at == clock() + timedelta(seconds=3600 - 21)


def test_a_hostile_answer_cannot_stop_the_recording(page, receiver, clock):
    """NUL bytes (which PostgreSQL text refuses) and an absurd Retry-After are recorded sanely, not retried
    for ever as unrecordable."""
    add_target(page, receiver)
    (event_id,) = store_events(onboard(page))
    receiver.answer((503, {"Retry-After": "9" * 40}, b"\x00\x00down\x00"))

    stats = work(clock)

    assert stats.counts == {"pending": 1} and stats.errors == 0
    delivery = delivery_of(event_id)
    assert delivery.next_attempt_at == clock() + recording.RETRY_AFTER_CAP
    assert attempts_of(delivery)[0].response_excerpt == "down"


def test_a_retry_after_in_other_digits_is_unreadable_and_the_schedule_decides():
    now = datetime(2026, 12, 7, tzinfo=UTC)
    assert recording.parse_retry_after("²", now) is None  # str.isdigit says yes; int() refuses
    assert recording.parse_retry_after("١٢٠", now) is None
    assert recording.parse_retry_after("120", now) == timedelta(seconds=120)


def test_410_gone_disables_the_target_and_stops_its_pending_deliveries(page, receiver, clock):
    target = add_target(page, receiver)
    waba_id = onboard(page)
    first, second = store_events(waba_id, count=2)
    receiver.answer((410, {}, b"this endpoint was removed"))

    work(clock, batch_size=1)

    assert len(receiver.received) == 1
    target = db.session.get(ForwardingTarget, target.id)
    assert not target.enabled and "410" in target.disabled_reason
    assert delivery_of(first).status == delivery_of(second).status == "failed"
    store_events(waba_id)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ForwardDelivery)) == 2  # none queued
    clock.advance(days=1)
    assert work(clock).attempted == 0

    with pytest.raises(ForwardingError, match="disabled"):
        forwarding.replay_failed(target)
    forwarding.enable_target(target)
    assert forwarding.replay_failed(target) == 2
    db.session.commit()
    work(clock)
    assert delivery_of(first).status == delivery_of(second).status == "delivered"


def test_other_client_errors_fail_the_delivery_without_retry(page, receiver, clock):
    target = add_target(page, receiver)
    (event_id,) = store_events(onboard(page))
    receiver.answer((400, {}, b'{"error": "unknown field"}'))

    work(clock)
    clock.advance(days=4)
    work(clock)

    assert len(receiver.received) == 1
    delivery = delivery_of(event_id)
    assert (delivery.status, delivery.last_status_code, delivery.last_error) == ("failed", 400, "HTTP 400")
    assert attempts_of(delivery)[0].response_excerpt == '{"error": "unknown field"}'
    target = db.session.get(ForwardingTarget, target.id)
    assert target.enabled and target.failing_since is not None


def test_redirects_are_not_followed(page, receiver, clock):
    elsewhere = Receiver(clock)
    try:
        add_target(page, receiver)
        (event_id,) = store_events(onboard(page))
        receiver.answer((307, {"Location": elsewhere.url}, b""))
        work(clock)
        assert elsewhere.received == []
    finally:
        elsewhere.stop()
    delivery = delivery_of(event_id)
    assert delivery.status == "failed" and "redirects are not followed" in delivery.last_error


def test_a_receiver_that_does_not_answer_in_time_is_retried(app_config, request, clock):
    app_config["FORWARD_TIMEOUT"] = (2.0, 0.2)
    page, receiver = request.getfixturevalue("page"), request.getfixturevalue("receiver")
    add_target(page, receiver)
    (event_id,) = store_events(onboard(page))
    gave_up = threading.Event()
    receiver.answer(lambda: (gave_up.wait(10), (200, {}, b"too late"))[1])

    try:
        work(clock)
    finally:
        gave_up.set()

    delivery = delivery_of(event_id)
    assert (delivery.status, delivery.last_error) == ("pending", "timed out waiting for the response")
    clock.advance(seconds=12)
    work(clock)
    assert delivery_of(event_id).status == "delivered"
    assert receiver.ids() == [delivery.message_id] * 2


def test_a_crash_between_sending_and_recording_sends_again_with_the_same_id(page, receiver, clock,
                                                                             monkeypatch, caplog):
    add_target(page, receiver)
    (event_id,) = store_events(onboard(page))
    real_record = worker.record_outcomes
    crashes = []

    def crash_once(*args, **kwargs):
        if not crashes:
            crashes.append(1)
            raise RuntimeError("worker died here")
        return real_record(*args, **kwargs)

    monkeypatch.setattr(worker, "record_outcomes", crash_once)

    assert work(clock).errors == 1
    assert "will be sent again once their leases end" in caplog.text
    caplog.clear()
    delivery = delivery_of(event_id)
    assert delivery.status == "pending" and delivery.lease_until > clock()
    assert work(clock).attempted == 0  # still leased to the worker that died

    clock.advance(seconds=121)  # the lease ends
    work(clock)
    assert delivery_of(event_id).status == "delivered"
    assert receiver.ids() == [delivery.message_id] * 2
    assert all(request.verified for request in receiver.received)


def test_failed_deliveries_can_be_replayed_one_or_all(page, receiver, clock):
    target = add_target(page, receiver)
    events = store_events(onboard(page), count=3)
    receiver.answer(*[(422, {}, b"no")] * 3)
    work(clock)
    message_ids = [delivery_of(e).message_id for e in events]
    assert [delivery_of(e).status for e in events] == ["failed"] * 3

    forwarding.replay(delivery_of(events[0]))
    db.session.commit()
    work(clock)
    assert [delivery_of(e).status for e in events] == ["delivered", "failed", "failed"]

    assert forwarding.replay_failed(target) == 2
    db.session.commit()
    work(clock)
    assert [delivery_of(e).status for e in events] == ["delivered"] * 3
    assert sorted(receiver.ids()) == sorted(message_ids * 2)  # each sent again with the same webhook-id
    with pytest.raises(ForwardingError, match="only failed"):
        forwarding.replay(delivery_of(events[0]))
    assert [len(attempts_of(delivery_of(e))) for e in events] == [2, 2, 2]


def test_a_delivery_that_keeps_failing_is_given_up_after_three_days(page, receiver, clock):
    add_target(page, receiver)
    (event_id,) = store_events(onboard(page))
    receiver.answer(*[(500, {}, b"")] * 30)
    started = clock()
    waits = []
    while delivery_of(event_id).status == "pending":
        due = delivery_of(event_id).next_attempt_at
        waits.append(due - clock())
        clock.now = max(due, clock())
        work(clock)
    delivery = delivery_of(event_id)
    assert delivery.status == "dead"
    assert clock() - started >= timedelta(days=3)
    assert clock() - started < timedelta(days=3, hours=15)
    schedule = list(recording.RETRY_SCHEDULE) + [recording.LATER_RETRY_EVERY] * 10
    for waited, planned in zip(waits[1:], schedule):
        assert planned * 0.8 <= waited <= planned * 1.2
    assert len(receiver.received) == delivery.attempts == len(waits)


def test_a_target_failing_for_a_day_is_flagged(page, receiver, clock):
    target = add_target(page, receiver)
    waba_id = onboard(page)
    receiver.answer(*[(502, {}, b"")] * 5)
    store_events(waba_id, count=2)
    work(clock)
    assert forwarding.failing_targets(now=clock() + timedelta(hours=23)) == []
    assert [t.id for t in forwarding.failing_targets(now=clock() + timedelta(hours=25))] == [target.id]

    clock.advance(minutes=5)
    receiver.script.clear()
    work(clock)  # both retries succeed
    assert forwarding.failing_targets(now=clock() + timedelta(days=2)) == []


def test_a_test_event_is_sent_at_once_and_reported(page, receiver, clock):
    target = add_target(page, receiver)
    delivery = forwarding.send_test_event(target, clock=clock)
    assert (delivery.status, delivery.last_status_code, delivery.event_id) == ("delivered", 200, None)
    (request,) = receiver.received
    assert request.verified and json.loads(request.body)["field"] == "esu_test"

    receiver.answer((500, {}, b"broken"))
    failed = forwarding.send_test_event(target, clock=clock)
    assert (failed.status, failed.last_error) == ("failed", "HTTP 500")  # reported, not retried
    assert attempts_of(failed)[0].response_excerpt == "broken"
    assert forwarding.deliveries(target, status=forwarding.UNDELIVERED) == [failed]
    assert forwarding.delivery_counts(target) == {"delivered": 1, "failed": 1}


def test_the_forward_command_sends_what_is_due(page, receiver, runner):
    add_target(page, receiver)
    store_events(onboard(page), count=3)
    result = runner.invoke(args=["forward", "--once", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert "3 delivered" in result.output
    assert len(set(receiver.ids())) == 3 and all(request.verified for request in receiver.received)


def test_the_background_worker_forwards_while_the_app_runs(app, page, receiver):
    add_target(page, receiver)
    stop = forwarding.start_background_worker(app, poll_interval=0.05)
    try:
        (event_id,) = store_events(onboard(page))
        assert receiver.wait_for(1)
    finally:
        stop()
    assert delivery_of(event_id).status == "delivered"


def test_create_target_refuses_unusable_urls_and_fields(page):
    with pytest.raises(ForwardingError, match="https:// or http://"):
        forwarding.create_target(page, "ftp://127.0.0.1/hooks")
    with pytest.raises(ForwardingError, match="user name or password"):
        forwarding.create_target(page, "http://me:secret@127.0.0.1/hooks")
    with pytest.raises(ForwardingError, match="not a webhook field"):
        forwarding.create_target(page, "http://127.0.0.1/hooks", ["messages; drop table"])
    target, secret = forwarding.create_target(page, " http://127.0.0.1:8080/hooks ", ["messages", "messages"])
    assert (target.url, target.fields) == ("http://127.0.0.1:8080/hooks", ["messages"])
    stored = db.session.scalar(sa.select(sa.type_coerce(ForwardingTarget.secret, sa.Text)))
    assert secret not in stored  # encrypted at rest
    assert forwarding.rotate_secret(target) != secret
