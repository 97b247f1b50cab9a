"""A rotated signing secret keeps signing beside the new one for the overlap, then stops.

Standard Webhooks, "Webhook headers" (spec/standard-webhooks.md of github.com/standard-webhooks/standard-webhooks,
https://www.standardwebhooks.com/): "the webhook is signed both using the current key, and using an old key
(for a set period of time), and both signatures are sent, space delimited, in the `webhook-signature`
header. Webhook consumers can try to verify each signature until one matches."
"""

from __future__ import annotations

from datetime import timedelta

from esu import forwarding
from esu.extensions import db
from esu.forwarding import signing
from esu.models import SignupPage

from .conftest import add_target, onboard, store_events, verify_webhook

OVERLAP = timedelta(hours=24)


def make_page() -> SignupPage:
    page = SignupPage(slug="client", title="Client", prefill={}, feature_type="", enabled=True)
    db.session.add(page)
    db.session.commit()
    return page


def work(clock) -> forwarding.WorkerStats:
    return forwarding.run_worker(10, once=True, clock=clock, poll_interval=0.01)


def test_a_receiver_still_on_the_old_secret_verifies_during_the_overlap_and_not_after(app, receiver, clock):
    page = make_page()
    target = add_target(page, receiver)
    waba_id = onboard(page)
    old = target.secret

    new = forwarding.rotate_secret(target, OVERLAP, now=clock())
    db.session.commit()
    assert new != old

    store_events(waba_id)
    work(clock)
    (during,) = receiver.received
    signatures = during.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(signature.startswith("v1,") for signature in signatures)
    at = clock().timestamp()
    assert verify_webhook(old, during.headers, during.body, now=at)  # the receiver not yet switched
    assert verify_webhook(new, during.headers, during.body, now=at)  # the receiver already switched

    clock.advance(hours=23, minutes=59)
    store_events(waba_id)
    work(clock)
    assert verify_webhook(old, receiver.received[1].headers, receiver.received[1].body, now=clock().timestamp())

    clock.advance(minutes=1)  # the overlap is over
    store_events(waba_id)
    work(clock)
    after = receiver.received[2]
    assert " " not in after.headers["webhook-signature"]
    assert not verify_webhook(old, after.headers, after.body, now=clock().timestamp())
    assert verify_webhook(new, after.headers, after.body, now=clock().timestamp())


def test_a_retry_after_the_overlap_is_signed_with_the_new_secret_only(app, receiver, clock):
    """The overlap is judged at each attempt, not when the delivery was queued."""
    page = make_page()
    target = add_target(page, receiver)
    old = target.secret
    new = forwarding.rotate_secret(target, OVERLAP, now=clock())
    db.session.commit()
    store_events(onboard(page))
    receiver.answer((503, {}, b"busy"))
    work(clock)
    assert verify_webhook(old, receiver.received[0].headers, receiver.received[0].body, now=clock().timestamp())

    clock.advance(hours=25)
    work(clock)
    retried = receiver.received[1]
    assert retried.webhook_id == receiver.received[0].webhook_id
    assert not verify_webhook(old, retried.headers, retried.body, now=clock().timestamp())
    assert verify_webhook(new, retried.headers, retried.body, now=clock().timestamp())


def test_a_second_rotation_keeps_only_the_secret_it_replaces(app, receiver, clock):
    page = make_page()
    target = add_target(page, receiver)
    first = target.secret
    second = forwarding.rotate_secret(target, OVERLAP, now=clock())
    third = forwarding.rotate_secret(target, OVERLAP, now=clock())
    db.session.commit()
    assert (target.secret, target.previous_secret) == (third, second)

    store_events(onboard(page))
    work(clock)
    (request,) = receiver.received
    at = clock().timestamp()
    assert [verify_webhook(secret, request.headers, request.body, now=at) for secret in (first, second, third)] == [
        False,
        True,
        True,
    ]


def test_no_overlap_stops_the_old_secret_at_once(app, receiver, clock):
    page = make_page()
    target = add_target(page, receiver)
    old = target.secret
    new = forwarding.rotate_secret(target, timedelta(0), now=clock())
    db.session.commit()
    assert target.previous_secret is None

    store_events(onboard(page))
    work(clock)
    (request,) = receiver.received
    assert not verify_webhook(old, request.headers, request.body, now=clock().timestamp())
    assert verify_webhook(new, request.headers, request.body, now=clock().timestamp())


def test_both_signatures_sign_the_same_bytes_the_new_one_first():
    secret, previous = signing.new_secret(), signing.new_secret()
    headers = signing.signed_headers(secret, "msg_1", 1674087231, b"{}", previous)
    assert headers["webhook-signature"] == " ".join(
        (signing.sign(secret, "msg_1", 1674087231, b"{}"), signing.sign(previous, "msg_1", 1674087231, b"{}"))
    )
