"""Retention: messages and statuses older than ESU_RETENTION_DAYS go, with their finished forwarding
deliveries; everything else stays. Run by the forwarding worker on a schedule and by ``flask prune``."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from esu import forwarding, webhooks
from esu.cli import RETENTION_EVERY, retention_chores
from esu.extensions import db
from esu.models import WABA_PROOF_STEPS, Onboarding, OnboardingStep, WebhookEvent, now_utc
from esu.models.forwarding import ForwardAttempt, ForwardDelivery
from esu.onboarding.assets import add_waba

from .conftest import PHONE_ID, WABA_ID, envelope, text_message

OLD = timedelta(days=31)


def status_update(message_id: str, status: str = "delivered") -> dict:
    return {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881",
                                                          "phone_number_id": PHONE_ID},
            "statuses": [{"id": message_id, "status": status, "timestamp": "1750000000",
                          "recipient_id": "16505551234"}]}


def store(deliver, *changes: tuple[str, dict], ago: timedelta = timedelta(0)) -> list[int]:
    """Deliver the changes as Meta does, then date what they stored ``ago``; answers the new events' ids."""
    before = db.session.scalar(sa.select(sa.func.max(WebhookEvent.id))) or 0
    assert deliver(envelope(*changes)).status_code == 200
    db.session.execute(sa.update(WebhookEvent).where(WebhookEvent.id > before)
                       .values(received_at=now_utc() - ago))
    db.session.commit()
    return list(db.session.scalars(sa.select(WebhookEvent.id).where(WebhookEvent.id > before)
                                   .order_by(WebhookEvent.id)))


def kept() -> set[int]:
    db.session.expire_all()
    return set(db.session.scalars(sa.select(WebhookEvent.id)))


def deliveries_of(event_ids) -> dict[int, str]:
    return dict(db.session.execute(sa.select(ForwardDelivery.event_id, ForwardDelivery.status)
                                   .where(ForwardDelivery.event_id.in_(list(event_ids)))).all())


@pytest.fixture
def forwarded(page):
    """The customer onboarded on the page, whose target gets every event of the WABA."""
    onboarding = Onboarding(page_id=page.id, event="FINISH", status="completed", waba_id=WABA_ID)
    onboarding.steps += [OnboardingStep(name=name, status="ok") for name in WABA_PROOF_STEPS]
    db.session.add(onboarding)
    db.session.flush()
    add_waba(onboarding, WABA_ID)  # as the callback keeps it
    target, _secret = forwarding.create_target(page, "http://127.0.0.1:9/hooks", ())
    db.session.commit()
    return target


def finish(event_id: int, status: str) -> int:
    """Move the event's delivery to ``status`` as the worker would, with an attempt on record."""
    delivery = db.session.scalar(sa.select(ForwardDelivery).where(ForwardDelivery.event_id == event_id))
    delivery.status = status
    db.session.add(ForwardAttempt(delivery_id=delivery.id, status_code=200 if status == "delivered" else 500))
    db.session.commit()
    return delivery.id


def test_old_messages_and_statuses_go_with_their_finished_deliveries_and_the_rest_stays(deliver, forwarded):
    [old_message] = store(deliver, ("messages", text_message("wamid.OLD1")), ago=OLD)
    [old_status] = store(deliver, ("messages", status_update("wamid.OUT1")), ago=OLD)
    [old_failed] = store(deliver, ("messages", text_message("wamid.OLD2")), ago=OLD)
    [still_sending] = store(deliver, ("messages", text_message("wamid.OLD3")), ago=OLD)
    lifecycle = store(deliver, ("account_update", {"event": "ACCOUNT_VIOLATION"}),
                      ("phone_number_quality_update", {"display_phone_number": "15550783881", "event": "FLAGGED",
                                                       "current_limit": "TIER_1K"}),
                      ("messages", {"messaging_product": "whatsapp", "errors": [{"code": 131000}]}), ago=OLD)
    assert deliver(b"not Meta's envelope").status_code == 200  # kept raw, as unparseable
    db.session.execute(sa.update(WebhookEvent).where(WebhookEvent.kind == "delivery")
                       .values(received_at=now_utc() - OLD))
    db.session.commit()
    recent = store(deliver, ("messages", text_message("wamid.NEW1")), ("messages", status_update("wamid.OUT2")),
                   ago=timedelta(days=29))
    finished = [finish(old_message, "delivered"), finish(old_status, "dead"), finish(old_failed, "failed")]
    test_delivery = forwarding.send_test_event(forwarded).id  # of no event: never retention's
    everything = kept()

    pruned = webhooks.prune(30)

    assert (pruned.events, pruned.deliveries, pruned.more) == (3, 3, False)
    assert kept() == everything - {old_message, old_status, old_failed}
    assert still_sending in kept() and set(lifecycle) <= kept() and set(recent) <= kept()
    assert deliveries_of([still_sending]) == {still_sending: "pending"}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ForwardAttempt)
                             .where(ForwardAttempt.delivery_id.in_(finished))) == 0
    assert db.session.get(ForwardDelivery, test_delivery) is not None
    assert webhooks.prune(30).events == 0


def test_a_message_linked_to_an_onboarding_is_kept(deliver):
    [event_id] = store(deliver, ("messages", text_message("wamid.STORY")), ago=OLD)
    onboarding = Onboarding(event="FINISH", status="completed", waba_id=WABA_ID)
    db.session.add(onboarding)
    db.session.flush()
    db.session.execute(sa.update(WebhookEvent).values(onboarding_id=onboarding.id))
    db.session.commit()

    assert webhooks.prune(30).events == 0
    assert kept() == {event_id}


def test_a_pass_goes_a_batch_at_a_time_and_says_when_more_remain(deliver):
    for n in range(5):
        store(deliver, ("messages", text_message(f"wamid.BATCH{n}")), ago=OLD)

    first = webhooks.prune(30, batch_size=2, max_batches=2)
    assert (first.events, first.more) == (4, True)
    rest = webhooks.prune(30, batch_size=2, max_batches=2)
    assert (rest.events, rest.more) == (1, False)
    assert kept() == set()


def test_zero_days_keeps_everything(deliver):
    store(deliver, ("messages", text_message("wamid.KEEP")), ago=timedelta(days=3650))
    assert webhooks.prune(0).events == 0
    assert len(kept()) == 1


# -- when it runs ----------------------------------------------------------------------------------------


def test_the_forwarding_worker_runs_the_retention_pass_then_again_an_hour_later(deliver):
    [old] = store(deliver, ("messages", text_message("wamid.WORKER")), ago=OLD)
    chores = retention_chores(30)
    start = now_utc()

    forwarding.run_worker(once=True, chores=chores, clock=lambda: start)

    assert old not in kept()
    assert [chore.due_at for chore in chores] == [start + RETENTION_EVERY]
    assert retention_chores(0) == []  # 0: kept for ever, no pass at all


def test_a_chore_with_more_to_do_runs_again_at_the_next_turn_and_a_failing_one_an_interval_later(app):
    answers = iter([True, False])
    turns = []

    def run() -> bool:
        turns.append(1)
        return next(answers)

    chore = forwarding.Chore("test", run, timedelta(hours=1))
    start = now_utc()
    chore.run_if_due(start)
    assert chore.due_at == start  # more to do
    chore.run_if_due(start)
    assert chore.due_at == start + timedelta(hours=1)
    chore.run_if_due(start + timedelta(minutes=59))
    assert len(turns) == 2  # not due yet

    def broken() -> bool:
        raise RuntimeError("the database went away")

    failing = forwarding.Chore("broken", broken, timedelta(hours=1))
    failing.run_if_due(start)
    assert failing.due_at == start + timedelta(hours=1)


def test_flask_prune_deletes_now_and_says_what_it_did(runner, deliver):
    store(deliver, ("messages", text_message("wamid.CLI")), ago=OLD)
    [recent] = store(deliver, ("messages", text_message("wamid.CLI2")))

    result = runner.invoke(args=["prune"])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "Messages and statuses older than 30 days: 1 deleted, with 0 forwarding deliveries.")
    assert kept() == {recent}
    off = runner.invoke(args=["prune", "--days", "0"])
    assert off.exit_code == 0 and "nothing deleted" in off.output
