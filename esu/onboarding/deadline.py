"""How long a live onboarding run can take, from the Graph client's timeouts and the calls each step makes;
past that, a run still marked ``running`` died with its process, is shown as stuck and may be retried.

One Graph call takes at most ``GRAPH_MAX_ATTEMPTS`` × (connect + read timeout) plus the backoff between
attempts (capped at 4 s each). A live run writes its onboarding (``updated_at``) each time a step starts or
ends, so between two writes no more than the slowest step passes, plus the database's own time: that is the
window after which the run is certainly dead. The whole run, for gunicorn's timeouts, is the longest chain
of steps that wait for each other.

(The read timeout bounds each wait for a byte, not a whole response: a server trickling bytes could take
longer; Graph does not. A list counts one page, and a callback with only the code one WABA announced by
PARTNER_ADDED: nearly every customer has one page of numbers and of approved templates, and one
announcement.)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa

from ..models import Onboarding, OnboardingStatus, now_utc
from .steps import STEPS, STEPS_BY_NAME

#: The Graph calls each step makes one after another, at most (see above for lists).
SEQUENTIAL_CALLS: dict[str, int] = {
    "exchange_code": 1,
    # debug_token; with only the code, the system user's assigned WABAs, then an announced WABA read.
    "confirm_ids": 3,
    "read_waba": 1,
    "subscribe_webhooks": 1,
    "assign_system_user": 1,
    "share_credit_line": 1,
    # The WABA's numbers when the browser did not say which, then the number.
    "read_phone_number": 2,
    "register_phone": 1,
    "sync_contacts": 1,
    "sync_history": 1,
    "fetch_templates": 1,
}
#: The database's part between two writes of a run: its commits and the steps' saves, lock waits included.
DATABASE_SECONDS = 30


def graph_call_seconds(config: Mapping[str, Any]) -> float:
    """The longest one Graph call can take with the client's settings: every attempt timing out."""
    connect, read = config["GRAPH_TIMEOUT"]
    attempts = config["GRAPH_MAX_ATTEMPTS"]
    backoff = sum(min(4.0, config["GRAPH_BACKOFF_SECONDS"] * 2**step) for step in range(attempts - 1))
    return attempts * (connect + read) + backoff


@cache
def longest_chain() -> int:
    """The most Graph calls of one run that wait for each other: along ``needs``, with ``confirm_ids`` before
    every step that uses the WABA (a callback that did not say which WABA)."""
    calls: dict[str, int] = {}
    for step in STEPS:  # in the table's order, each step after those it needs
        before = set(step.needs) | ({"confirm_ids"} if step.uses_waba else set())
        before.discard(step.name)
        calls[step.name] = SEQUENTIAL_CALLS[step.name] + max((calls[name] for name in before), default=0)
    return max(calls.values())


def slowest_run_seconds(config: Mapping[str, Any]) -> float:
    """The longest a whole run can take (gunicorn's timeouts must outlast it)."""
    return longest_chain() * graph_call_seconds(config)


def abandoned_after(config: Mapping[str, Any]) -> timedelta:
    """How long a live run can go without writing its onboarding: its slowest step, and the database's time."""
    slowest_step = max(SEQUENTIAL_CALLS[name] for name in STEPS_BY_NAME) * graph_call_seconds(config)
    return timedelta(seconds=slowest_step + DATABASE_SECONDS)


def stuck_condition(config: Mapping[str, Any]) -> sa.ColumnElement[bool]:
    """Onboardings left running by a process that died: marked running, and not written for longer than a
    live run can go without."""
    return sa.and_(
        Onboarding.status == OnboardingStatus.RUNNING, Onboarding.updated_at < now_utc() - abandoned_after(config)
    )


def is_stuck(onboarding: Onboarding, config: Mapping[str, Any]) -> bool:
    return (
        onboarding.status == OnboardingStatus.RUNNING
        and onboarding.updated_at is not None
        and onboarding.updated_at < now_utc() - abandoned_after(config)
    )
