"""Deliveries a worker receives at the same moment, stored together (:class:`GroupCommit`): one
transaction and one commit for a burst, each delivery answered only after that commit.

On SQLite, whose writers go one at a time, the thread about to store a batch first waits for the writer
lock, which the other worker may hold for its own batch, and only then takes every delivery that arrived
meanwhile (:func:`ready_to_write`). The lock is held 75–85 % of the time, the two workers taking turns;
waiting for it before taking the batch rather than after took SQLite from 1,400 to 1,850 req/s in
bench/webhooks.py. A waiting delivery's turn is a bare lock rather than an Event: one wake-up per
delivery instead of two.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app

from .storing import Delivery, Receipt, ready_to_write, store_together

#: The most deliveries one transaction stores (a gunicorn worker's threads bound it first).
MAX_TOGETHER = 64
_GROUP_COMMIT = "esu_webhook_group_commit"


def ingest(body: bytes) -> Receipt:
    """Store a signed delivery's changes, apply the new ones and commit, in one transaction with any other
    delivery this process is receiving at the same moment. Answers once its changes are committed.

    Raises what the database raises when it is unavailable (see :func:`is_database_unavailable`).
    """
    group = current_app.extensions.get(_GROUP_COMMIT) or current_app.extensions.setdefault(
        _GROUP_COMMIT, GroupCommit(store_together, prepare=ready_to_write))
    return group.submit(Delivery.received(body))




def _held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(eq=False)
class _Waiting:
    item: Any
    #: Released when the delivery is stored, or when it is this thread's turn to store the next batch: a
    #: bare lock rather than an Event, whose waking thread must also take the Event's own lock back from
    #: the thread that set it (two wake-ups for one, for every delivery of a batch).
    turn: threading.Lock = dataclasses.field(default_factory=_held_lock)
    receipt: Receipt | None = None
    error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.receipt is not None or self.error is not None


class GroupCommit:
    """Deliveries that arrive while another batch is being stored wait for it, then go in together: one
    transaction, one commit.

    Meta sends in bursts, and a gunicorn worker's threads each holding one delivery would each run their own
    transaction: on SQLite, one writer at a time, each waits its turn for the lock and writes every page it
    touched (the table and its indexes) to the WAL, which is most of what a delivery costs; on PostgreSQL
    each pays its own round trips and commit. Here the thread that finds nobody storing stores its delivery
    and every one waiting (up to ``limit``), then hands the next batch to the first thread still waiting,
    so no thread stores for others for long. No delivery is answered before its own commit. A sync worker,
    or a quiet moment, makes batches of one: one transaction per delivery, as without this.

    ``prepare``, when given, is what the thread that stores must wait for before it can write (another
    process's transaction): it runs before the batch is taken, so that what arrives meanwhile goes in too.
    Should it fail, the batch it was for fails with its error, and the next is handed on as usual.
    """

    def __init__(self, store: Callable[[list[Any]], list[Receipt | Exception]], limit: int = MAX_TOGETHER,
                 prepare: Callable[[], None] | None = None):
        self._store = store
        self._limit = limit
        self._prepare = prepare
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []  # not empty only while a batch is being stored
        self._storing = False

    @property
    def queued(self) -> int:
        """How many deliveries wait for the batch being stored to end."""
        with self._lock:
            return len(self._waiting)

    def submit(self, item: Any) -> Receipt:
        """Store ``item`` (a :class:`Delivery`) with whatever else is waiting; answers its receipt after the
        commit, or raises what refused it."""
        mine = _Waiting(item)
        with self._lock:
            self._waiting.append(mine)
            leading = not self._storing
            self._storing = True
        if not leading:
            mine.turn.acquire()
        if not mine.done:  # this thread's turn: its delivery is first in line
            self._store_next_batch()
        if mine.error is not None:
            raise mine.error
        assert mine.receipt is not None
        return mine.receipt

    def _store_next_batch(self) -> None:
        failed: BaseException | None = None
        try:
            if self._prepare is not None:
                self._prepare()
        except BaseException as error:  # noqa: BLE001 - every waiting thread must hear of it, whatever it is
            failed = error
        with self._lock:
            batch, self._waiting = self._waiting[:self._limit], self._waiting[self._limit:]
        outcomes: list[Receipt | BaseException]
        if failed is not None:
            outcomes = [failed] * len(batch)
        else:
            try:
                outcomes = list(self._store([waiting.item for waiting in batch]))
            except BaseException as error:  # noqa: BLE001 - as above
                outcomes = [error] * len(batch)
        for waiting, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                waiting.error = outcome
            else:
                waiting.receipt = outcome
        with self._lock:
            if self._waiting:
                self._waiting[0].turn.release()
            else:
                self._storing = False
        for waiting in batch:
            waiting.turn.release()
