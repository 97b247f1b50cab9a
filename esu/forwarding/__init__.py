"""Per-client webhook forwarding: every stored event of a client's WABAs, signed, to that client's URLs.

From a stored event to a signed POST on the client's server:

- The webhook ingest stores ``WebhookEvent`` rows and calls ``enqueue(ids)`` in the same transaction
  (``outbox``): one ``ForwardDelivery`` per event and target that wants it, so nothing stored is ever
  left unforwarded, and Meta's endpoint pays for one ``INSERT … SELECT`` a batch (on PostgreSQL, part of
  the events' own INSERT: ``outbox_insert_sql``). An event goes to the targets of the page whose
  onboarding proved the customer granted its WABA, until the customer is offboarded.
- ``run_worker`` (``worker``; ``flask --app wsgi forward``) claims due deliveries with a lease, sends
  them without holding a transaction, and records the outcomes in short ones; between claims it does the
  chores it is given (the command gives it the webhook events' retention pass). Any number of workers may
  run on PostgreSQL (``FOR UPDATE SKIP LOCKED``); run a single one on SQLite, which has one writer at a
  time.
- Each attempt (``sending``) posts the body built from the stored event, the same bytes every time, with
  Standard Webhooks headers (``signing``): ``webhook-id`` (the same on every retry, so receivers can drop
  repeats), ``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256>``. It never follows
  redirects, has timeouts, and outside development may only reach public addresses over https, never
  esu itself (``destinations``: checked when a target is saved and again on every connection, after DNS).
- Its outcome moves the delivery on (``recording``): delivered; or retried on a schedule for three days
  (``Retry-After`` honoured), then given up as ``dead``; or failed. A 410 Gone disables the target.
  Delivery is at-least-once: a worker that dies between sending and recording leaves the lease to
  expire, and the delivery goes again with the same ``webhook-id``.

What the admin sees and does: a signup page's targets, each with a URL, the fields it wants and a
secret shown once (``targets``: add, edit, disable, enable, rotate the secret, delete); a test event
sent at once (``worker.send_test_event``); failed deliveries replayed, one or all (``outbox``); and to
read (``reads``), a page's targets with their counts and latest attempt, a target's deliveries with
their attempts, and on the dashboard the targets failing for a day.

A rotated secret keeps signing beside the new one for ``FORWARD_SECRET_OVERLAP_HOURS`` (both signatures in
``webhook-signature``, space separated, as Standard Webhooks has it). By hand (``manual``): a delivery
waiting for its next try is sent now, and what a target failed since a given time is replayed.

Each module imports only those before it: ``errors``, ``signing``, ``destinations``, ``sending``,
``targets``, ``outbox``, ``recording``, ``worker``, ``manual``, ``reads``. The names below are what the rest
of esu calls; the machinery stays in the modules.
"""

from .destinations import DestinationRefused
from .errors import ForwardingError
from .manual import replay_since, send_now
from .outbox import UNDELIVERED, enqueue, outbox_insert_sql, replay, replay_failed
from .reads import FAILING_FLAG_AFTER, deliveries, delivery_counts, failing_targets, page_targets
from .sending import DEFAULT_BATCH_SIZE
from .targets import (
    KNOWN_FIELDS,
    create_target,
    delete_target,
    disable_target,
    enable_target,
    rotate_secret,
    update_target,
)
from .worker import Chore, WorkerStats, run_worker, send_test_event, start_background_worker

__all__ = [
    "DEFAULT_BATCH_SIZE", "FAILING_FLAG_AFTER", "KNOWN_FIELDS", "UNDELIVERED",
    "Chore", "DestinationRefused", "ForwardingError", "WorkerStats",
    "create_target", "delete_target", "deliveries", "delivery_counts", "disable_target", "enable_target",
    "enqueue", "failing_targets", "outbox_insert_sql", "page_targets", "replay", "replay_failed",
    "replay_since", "rotate_secret", "run_worker", "send_now", "send_test_event", "start_background_worker",
    "update_target",
]
