"""Meta's webhook: what becomes of a delivery, from the HTTP request to the records it changes.

Meta sends everything that happens to an onboarded customer to one endpoint, keeps no history, and
retries anything but a 200 for days. So:

1. ``esu.blueprints.webhooks`` takes the request (beneath Flask, when it is signed) and checks the
   signature, the HMAC-SHA256 of the raw bytes with the app secret (:func:`signature_is_valid`).
2. :func:`ingest` (``batching``): the thread that received the delivery parses it into rows
   (``parsing``: one per change, per message and per status, each under its unique key) and makes them
   ready for the database driver (``sql``), then joins the deliveries its worker is receiving at the same
   moment. One thread stores them together; on SQLite it first waits for the writer lock.
3. ``storing``: the batch in one transaction. Every change is inserted under its key in one statement
   (``INSERT … ON CONFLICT DO NOTHING``: the database decides what is new, even when two workers get the
   same delivery at once) and the new ones are queued for forwarding (``esu.forwarding``'s outbox). On
   PostgreSQL a batch with nothing to apply is that one statement, its own transaction.
4. ``applying``: the new changes of the fields esu acts on are applied, in the same transaction, by each
   field's function (``appliers``) to the records they concern (``records``: accounts, numbers,
   templates, onboardings, loaded and locked in a few queries). A record keeps Meta's time of the event
   that last set each fact, and an older event never overwrites a newer one. An apply that fails marks
   its event ``failed`` with the error; it never costs the stored event or the 200. A change that names no
   real account, template or number (a placeholder where Meta puts an id) is ``ignored``, saying so.
5. The commit, then the answer: 200 with the delivery's :class:`Receipt`, or 503 (which Meta retries)
   while the database is unavailable (:func:`is_database_unavailable`).

After a fix, :func:`reapply` applies the failed events again (``flask webhooks reapply``);
:func:`message_counts` (``reading``) is what the rest of esu reads back. :func:`prune` (``retention``)
deletes the messages and statuses older than ``ESU_RETENTION_DAYS`` (the forwarding worker's hourly pass,
``flask prune``).

The rooms, each importing only those before it: ``values`` (statuses, the fields esu applies, pure
converters), ``parsing``, ``sql``, ``records``, ``appliers``, ``applying``, ``storing``, ``batching``;
``reading`` and ``retention`` stand apart.
"""

from ..extensions import is_database_unavailable
from .applying import reapply
from .batching import ingest
from .parsing import MAX_BODY_BYTES, SIGNATURE_HEADER, signature_is_valid
from .reading import message_counts
from .retention import Pruned, oldest_received_at, prune
from .storing import Receipt

__all__ = [
    "MAX_BODY_BYTES",
    "SIGNATURE_HEADER",
    "Pruned",
    "Receipt",
    "ingest",
    "is_database_unavailable",
    "message_counts",
    "oldest_received_at",
    "prune",
    "reapply",
    "signature_is_valid",
]
