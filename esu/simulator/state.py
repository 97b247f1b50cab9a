"""The simulator's memory: businesses, WABAs, numbers, templates, codes, tokens, faults.

It lives in a database (:mod:`.store`), so that every worker of a server, and every thread, sees the same
objects, codes and faults. Its clock can be replaced, so tests move time instead of sleeping.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from .objects import KINDS, Fault, as_data
from .store import Documents, Row, new_key

CODE_TTL_SECONDS = 30
REGISTER_LIMIT = 10
REGISTER_WINDOW_SECONDS = 72 * 3600
VERIFICATION_CODE = "123456"

OPERATIONS = (
    "oauth_access_token",
    "debug_token",
    "waba",
    "subscribed_apps",
    "assigned_users",
    "credit_sharing",
    "register",
    "phone_number",
    "phone_numbers",
    "request_code",
    "verify_code",
    "smb_app_data",
    "message_templates",
    "assigned_whatsapp_business_accounts",
)

#: The key of the document that holds the latency, and the parent it is under: every operation's.
LATENCY = "latency"
EVERY_OPERATION = "*"


def _fault(data: dict[str, Any]) -> Fault:
    return Fault(**{name: value for name, value in data.items() if name != "operation"})


class Objects(Mapping):
    """The objects of one kind, by id, as they are stored now: each read is a fresh copy, and writing to
    one changes nothing (see :meth:`SimulatorState.change`)."""

    def __init__(self, documents: Documents, kind: str):
        self.documents = documents
        self.kind = kind

    def __getitem__(self, key: str) -> Any:
        found = self.documents.get(self.kind, key)
        if found is None:
            raise KeyError(key)
        return KINDS[self.kind](**found[1])

    def __iter__(self) -> Iterator[str]:
        return iter(self.documents.keys(self.kind))

    def __len__(self) -> int:
        return self.documents.count(self.kind)


def _objects(kind: str) -> property:
    """The objects of ``kind``, read from the documents each time (``state.wabas[waba_id]``)."""
    return property(lambda state: Objects(state.documents, kind))


class SimulatorState:
    """What the simulator knows, kept in :class:`Documents` that every worker shares.

    ``in_flight`` and ``max_in_flight`` count the Graph calls this process is serving; the clock is this
    process's too, so a test can move time instead of sleeping.
    """

    def __init__(self, documents: Documents, clock=time.time):
        self.documents = documents
        self.clock = clock
        self._gauge = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    def reset(self) -> None:
        """Forget every object, code, token, fault and call."""
        self.documents.clear()
        with self._gauge:
            self.in_flight = self.max_in_flight = 0

    @staticmethod
    def new_id() -> str:
        """A fresh id, as long as Meta's."""
        return str(10**14 + secrets.randbelow(9 * 10**14))

    # -- objects ---------------------------------------------------------------------------------

    businesses = _objects("business")
    wabas = _objects("waba")
    phones = _objects("phone")
    templates = _objects("template")
    codes = _objects("code")
    tokens = _objects("token")
    allocations = _objects("allocation")

    def node(self, node_id: str) -> tuple[str, Any] | None:
        """The number, WABA or credit allocation with this id, and which of them it is."""
        found = self.documents.find(node_id, ("phone", "waba", "allocation"))
        return (found[0], KINDS[found[0]](**found[1])) if found else None

    def listed(self, kind: str, parent: str) -> list[Any]:
        """The objects of ``kind`` under ``parent`` (a WABA's numbers or templates), oldest first."""
        return [KINDS[kind](**data) for _key, _version, data in self.documents.rows(kind, (parent,))]

    def add(self, kind: str, key: str, thing: Any, parent: str | None = None) -> None:
        self.documents.add([(kind, key, parent, as_data(thing))])

    def change(self, kind: str, key: str, change: Callable[[Any], Any]) -> Any:
        """Apply ``change`` to the object and store it; if another worker changed the object meanwhile,
        again on what that one stored. Answers what ``change`` answers; an exception from it stores nothing."""

        def on_data(data: dict[str, Any]) -> Any:
            thing = KINDS[kind](**data)
            result = change(thing)
            data.clear()
            data.update(as_data(thing))
            return result

        return self.documents.change(kind, key, on_data)

    # -- the Graph calls served ------------------------------------------------------------------

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Every Graph call served, by any worker: operation, method, path, and how it was authorised."""
        return [data for _key, _version, data in self.documents.rows("call")]

    def record_call(self, call: dict[str, Any]) -> None:
        self.documents.add([("call", new_key(), None, call)])

    @contextmanager
    def serving(self) -> Iterator[None]:
        """Count a Graph call in ``in_flight`` while it is served: shows the app's calls overlap."""
        with self._gauge:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._gauge:
                self.in_flight -= 1

    # -- what a person finishing Embedded Signup produces ----------------------------------------

    # -- faults and latency ----------------------------------------------------------------------
    # Latency is stored as a fault every call meets (under LATENCY), so one read finds both.

    def ahead(self, operation: str) -> tuple[int, list[Row]]:
        """What a call of ``operation`` meets, in one read: the latency added to every call, in
        milliseconds, and the faults queued for the operation (for :meth:`take_fault`)."""
        latency_ms, queue = 0, []
        for key, version, data in self.documents.rows("fault", (operation, EVERY_OPERATION)):
            if key == LATENCY:
                latency_ms = data["latency_ms"]
            else:
                queue.append((key, version, data))
        return latency_ms, queue

    @property
    def latency_ms(self) -> int:
        """Milliseconds added to every Graph call."""
        found = self.documents.get("fault", LATENCY)
        return found[1]["latency_ms"] if found else 0

    @latency_ms.setter
    def latency_ms(self, value: int) -> None:
        self.documents.put("fault", LATENCY, {"latency_ms": value}, parent=EVERY_OPERATION)

    @property
    def faults(self) -> dict[str, list[Fault]]:
        """The faults still to come, by operation, in the order they were added."""
        pending: dict[str, list[Fault]] = {}
        for key, _version, data in self.documents.rows("fault"):
            if key != LATENCY:
                pending.setdefault(data["operation"], []).append(_fault(data))
        return pending

    def add_fault(self, operation: str, error_code: int, times: int, subcode: int | None = None,
                  after: int = 0, **envelope: Any) -> None:
        """Queue ``times`` failures of ``operation``; ``envelope`` holds Fault's other fields."""
        if times > 0:
            fault = {"operation": operation, **asdict(Fault(error_code, times, subcode, after, **envelope))}
            self.documents.add([("fault", new_key(), operation, fault)])

    def clear_faults(self) -> None:
        """Remove every fault, and the latency with them."""
        self.documents.clear("fault")

    def take_fault(self, operation: str, queue: list[Row] | None = None) -> Fault | None:
        """The fault this call of ``operation`` meets, if any: the oldest one still to come counts the call
        (a call let through first, or one more failure), and is gone after its last failure. ``queue`` is
        the operation's faults as :meth:`ahead` read them; they are read again if another call took one
        meanwhile."""
        if queue is None:
            queue = self.documents.rows("fault", (operation,))
        while queue:
            key, version, data = queue[0]
            fault = _fault(data)
            if fault.after > 0:
                fault.after -= 1
                met = None
            else:
                fault.remaining -= 1
                met = fault
            if fault.remaining > 0:
                stored = self.documents.swap("fault", key, version, {"operation": operation, **asdict(fault)})
            else:
                stored = self.documents.drop("fault", key, version)
            if stored:
                return met
            queue = self.documents.rows("fault", (operation,))
        return None
