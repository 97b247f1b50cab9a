"""A target's deliveries by hand in the admin: "Send now" for one waiting for its retry, and replay of what the
target failed since a given time (Standard Webhooks, "Visibility into failures and manual retries": "a way to
manually replay specific webhooks or failures within a range")."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from esu.extensions import db
from esu.models import now_utc
from esu.models.forwarding import ForwardDelivery

from .admin_support import gen_delivery, gen_page, gen_target, gen_webhook_event
from .forwarding.conftest import clock, onboard, receiver, store_events  # noqa: F401 - fixtures
from .test_admin_forwarding import actions, html_of, statuses, targets, work

pytest_plugins = ["tests.admin_fixtures"]


def delivery(delivery_id: int) -> ForwardDelivery:
    db.session.expire_all()
    return db.session.get(ForwardDelivery, delivery_id)


def test_send_now_sends_a_delivery_waiting_for_its_retry(admin, receiver, clock):
    page = gen_page("client")
    db.session.commit()
    admin.post(f"/admin/pages/{page.id}/forwarding", data={"url": receiver.url})
    (target,) = targets()
    receiver.secret = target.secret
    store_events(onboard(page))
    receiver.answer((503, {}, b"down for a minute"))
    work(clock)
    ((waiting, status),) = statuses(target).items()
    assert status == "pending" and delivery(waiting).next_attempt_at > now_utc()
    assert f"/deliveries/{waiting}/send-now" in html_of(admin.get(f"/admin/forwarding/{target.id}"))

    response = admin.post(f"/admin/forwarding/{target.id}/deliveries/{waiting}/send-now", follow_redirects=True)

    assert f"Delivery {waiting} delivered (HTTP 200)." in html_of(response)
    assert statuses(target) == {waiting: "delivered"}
    first, second = receiver.received
    assert second.webhook_id == first.webhook_id and second.verified
    assert f"/deliveries/{waiting}/send-now" not in html_of(admin.get(f"/admin/forwarding/{target.id}"))
    again = admin.post(f"/admin/forwarding/{target.id}/deliveries/{waiting}/send-now", follow_redirects=True)
    assert "Not sent: only a delivery waiting to be sent can be sent now; this one is delivered." in html_of(again)
    assert len(receiver.received) == 2
    assert [action for action, _ in actions()] == ["created_forwarding_target", "sent_delivery_now"]


def test_send_now_that_fails_again_goes_back_on_the_retry_schedule(admin, receiver, clock):
    page = gen_page("client")
    db.session.commit()
    admin.post(f"/admin/pages/{page.id}/forwarding", data={"url": receiver.url})
    (target,) = targets()
    store_events(onboard(page))
    receiver.answer((503, {}, b"down"), (503, {}, b"still down"))
    work(clock)
    ((waiting, _),) = statuses(target).items()

    response = admin.post(f"/admin/forwarding/{target.id}/deliveries/{waiting}/send-now", follow_redirects=True)

    assert f"Delivery {waiting} not delivered: HTTP 503; pending." in html_of(response)
    assert delivery(waiting).attempts == 2 and delivery(waiting).next_attempt_at > now_utc()


def test_send_now_leaves_a_delivery_a_worker_is_sending(admin, receiver):
    page = gen_page("client")
    target = gen_target(page, receiver.url)
    leased = gen_delivery(target, status="pending")
    leased.attempts, leased.lease_until = 1, now_utc() + timedelta(minutes=2)
    db.session.commit()

    response = admin.post(f"/admin/forwarding/{target.id}/deliveries/{leased.id}/send-now", follow_redirects=True)

    assert "Not sent: a worker is sending it right now" in html_of(response)
    assert receiver.received == []
    other = gen_target(gen_page("other"))
    db.session.commit()
    assert admin.post(f"/admin/forwarding/{other.id}/deliveries/{leased.id}/send-now").status_code == 404


def test_replay_since_queues_only_what_failed_since_then(admin):
    page = gen_page("client")
    target = gen_target(page)
    now = now_utc()
    old = gen_delivery(target, gen_webhook_event(), status="failed", created_at=now - timedelta(days=2))
    recent = [
        gen_delivery(target, gen_webhook_event(), status=status, created_at=now - timedelta(hours=hours))
        for status, hours in (("failed", 5), ("dead", 3))
    ]
    delivered = gen_delivery(target, gen_webhook_event(), status="delivered", created_at=now - timedelta(hours=1))
    db.session.commit()
    since = now - timedelta(days=1)
    page_html = html_of(admin.get(f"/admin/forwarding/{target.id}"))
    assert f'action="/admin/forwarding/{target.id}/replay-since"' in page_html and 'type="datetime-local"' in page_html

    response = admin.post(
        f"/admin/forwarding/{target.id}/replay-since",
        data={"since": f"{since:%Y-%m-%dT%H:%M}", "status": "undelivered"},
        follow_redirects=True,
    )

    assert f"Queued 2 failed deliveries since {since:%Y-%m-%d %H:%M} UTC to be sent again" in html_of(response)
    assert statuses(target) == {old.id: "failed", recent[0].id: "pending", recent[1].id: "pending",
                                delivered.id: "delivered"}
    assert delivery(recent[1].id).attempts == 0  # a fresh retry window
    ((action, detail),) = actions()
    assert action == "replayed_deliveries_since" and detail.endswith(f"since {since:%Y-%m-%d %H:%M} UTC, 2 queued")


@pytest.mark.parametrize(
    ("since", "message"),
    [
        ("", "Say since when to replay: a date and time in UTC, like 2026-12-07T09:30."),
        ("yesterday", "“yesterday” is not a date and time esu can read: write it like 2026-12-07T09:30 (UTC)."),
        ("2026-13-40T25:00", "is not a date and time esu can read"),
        ("2999-01-01T00:00", "2999-01-01 00:00 UTC is in the future: nothing has failed since then yet."),
    ],
)
def test_replay_since_refuses_a_time_it_cannot_use_in_plain_words(admin, since, message):
    target = gen_target(gen_page("client"))
    failed = gen_delivery(target, gen_webhook_event(), status="failed")
    db.session.commit()

    response = admin.post(f"/admin/forwarding/{target.id}/replay-since", data={"since": since})

    assert response.status_code == 400
    assert message in html_of(response)
    assert statuses(target) == {failed.id: "failed"} and actions() == []


def test_replay_since_needs_an_enabled_target_and_the_csrf_token(admin):
    target = gen_target(gen_page("client"), enabled=False)
    failed = gen_delivery(target, gen_webhook_event(), status="failed")
    db.session.commit()

    response = admin.post(f"/admin/forwarding/{target.id}/replay-since", data={"since": "2020-01-01T00:00"},
                          follow_redirects=True)

    assert "Nothing replayed: the target is disabled: enable it before replaying its deliveries." in html_of(response)
    assert statuses(target) == {failed.id: "failed"}
    forged = admin.client.post(f"/admin/forwarding/{target.id}/replay-since", data={"since": "2020-01-01T00:00"})
    assert forged.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ForwardDelivery)) == 1
