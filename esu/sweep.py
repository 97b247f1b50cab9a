"""The health sweep: ask Graph about every onboarded customer and bring the records up to what it says.

Meta tells esu what happens to a customer by webhooks, and never resends one after 7 days; a webhook lost
on the way leaves the records wrong for good. So, every ``ESU_HEALTH_SWEEP_HOURS`` (the forwarding worker)
or on demand (``flask --app wsgi health``), for each WhatsApp Business Account of each customer (every one
of a multi-WABA onboarding's):

1. ``debug_token`` with the business token: is it still valid, and still granted the WABA? Since June 2026
   Embedded Signup tokens list no granted WABAs (no ``target_ids``): then reading the WABA with the token,
   as ``read_waba`` does at onboarding, is the proof.
2. The WABA (review status, business verification, ownership) and each of its numbers (status, quality
   rating, messaging limit, display name's review).

What Graph answers is applied as a webhook event is, by the functions of ``webhooks.appliers.graph_reads``
through the same ``Records`` and the same ordering rule, with the time of the read: a read never overwrites
a newer webhook's fact, nor an older webhook delivered late the read. What needs a person (a token gone, a
quality drop) is then on the dashboard, under the customer's business name.

Politely: Graph is asked by ``ESU_HEALTH_SWEEP_CONCURRENCY`` threads at most, a handful of customers at a
time; a customer Graph refuses for its rate limits is asked again after as long as Meta's usage headers
say, or else a pause that doubles each time (:data:`BACKOFF`), a few times at most, and the others wait
with it. Only the calling thread touches the
database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from .extensions import db
from .graph import GraphClient, GraphError
from .graph import client as graph_client
from .models import Onboarding, OnboardingStatus, PhoneNumber, now_utc
from .models.assets import WABA, OnboardingAsset
from .onboarding.steps import granted_waba_ids
from .webhooks.appliers.graph_reads import GRAPH_READS
from .webhooks.records import Event, Records

log = logging.getLogger(__name__)

#: What the sweep reads of a number (reference/whatsapp-business-phone-number/…-phone-number-api.md).
PHONE_FIELDS = "id,display_phone_number,verified_name,status,quality_rating,messaging_limit_tier,name_status"
#: The first pause after a rate limit, its longest, and how many times one customer is asked again.
BACKOFF = timedelta(seconds=30)
LONGEST_BACKOFF = timedelta(minutes=10)
RATE_LIMITED_TRIES = 3
#: Onboardings whose customer the sweep asks about: those that got as far as a token and a WABA.
SWEPT_STATUSES = (OnboardingStatus.COMPLETED, OnboardingStatus.AWAITING_VERIFICATION)


@dataclass
class Customer:
    waba_id: str
    business_name: str
    token: str = field(repr=False)
    phone_ids: list[str]


@dataclass
class Reading:
    """What Graph said about one customer, at ``read_at``."""

    customer: Customer
    read_at: datetime
    #: Why the business token no longer reaches the WABA, or None when it does.
    problem: str | None = None
    waba: dict[str, Any] | None = None
    phones: list[dict[str, Any]] = field(default_factory=list)
    error: GraphError | None = None

    @property
    def rate_limited(self) -> bool:
        return self.error is not None and self.error.rate_limited


@dataclass
class SweepReport:
    checked: int = 0
    #: "Business name: what needs a person", one per finding.
    findings: list[str] = field(default_factory=list)
    #: "Business name: why it could not be checked".
    unchecked: list[str] = field(default_factory=list)
    pauses: list[float] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.checked} WABAs checked, {len(self.findings)} need a person, "
            f"{len(self.unchecked)} could not be checked"
        )


def customers() -> list[Customer]:
    """Each onboarded WABA once, every WABA of a multi-WABA onboarding among them, with the token of its
    latest onboarding and its numbers."""
    onboardings = list(db.session.scalars(
        sa.select(Onboarding)
        .where(Onboarding.status.in_(SWEPT_STATUSES), Onboarding.business_token.is_not(None))
        .order_by(Onboarding.created_at.desc(), Onboarding.id.desc())
    ))
    # One query for every onboarding's other WABAs, not one per onboarding.
    others: dict[int, list[str]] = {}
    if onboardings:
        for onboarding_id, waba_id in db.session.execute(
            sa.select(OnboardingAsset.onboarding_id, OnboardingAsset.asset_id)
            .join(Onboarding, Onboarding.id == OnboardingAsset.onboarding_id)
            .where(OnboardingAsset.kind == WABA, Onboarding.status.in_(SWEPT_STATUSES),
                   Onboarding.business_token.is_not(None))
            .order_by(OnboardingAsset.id)
        ):
            others.setdefault(onboarding_id, []).append(waba_id)
    latest: dict[str, tuple[Onboarding, bool]] = {}
    for onboarding in onboardings:
        first = [onboarding.waba_id] if onboarding.waba_id else []
        waba_ids = list(dict.fromkeys(first + others.get(onboarding.id, [])))
        for waba_id in waba_ids:
            latest.setdefault(waba_id, (onboarding, len(waba_ids) > 1))
    phones: dict[str, list[str]] = {}
    if latest:
        for phone_id, waba_id in db.session.execute(
            sa.select(PhoneNumber.id, PhoneNumber.waba_id)
            .where(PhoneNumber.waba_id.in_(list(latest)))
            .order_by(PhoneNumber.id)
        ):
            phones.setdefault(waba_id, []).append(phone_id)
    return [
        Customer(waba_id, _name(onboarding, waba_id, several), onboarding.business_token, phones.get(waba_id, []))
        for waba_id, (onboarding, several) in latest.items()
    ]


def _name(onboarding: Onboarding, waba_id: str, several: bool) -> str:
    """How the report names a customer's WABA: the business name, with the WABA when it has several."""
    name = onboarding.business_name or waba_id
    return f"{name} (WABA {waba_id})" if several and name != waba_id else name


def read(customer: Customer, api: GraphClient) -> Reading:
    """Ask Graph about one customer (no database: this runs on the sweep's threads)."""
    reading = Reading(customer, now_utc())
    try:
        debug = api.debug_token(customer.token)
        if not debug.get("is_valid"):
            said = (debug.get("error") or {}).get("message") if isinstance(debug.get("error"), dict) else None
            reading.problem = "the business token is no longer valid" + (f" (Meta: {said})" if said else "")
            return reading
        granted = granted_waba_ids(debug)
        if granted is not None and customer.waba_id not in granted:
            reading.problem = "the business token is no longer granted this WhatsApp Business Account"
            return reading
        reading.waba = api.get_waba(customer.waba_id, customer.token)
        reading.phones = [
            api.get_phone_number(phone_id, customer.token, PHONE_FIELDS) for phone_id in customer.phone_ids
        ]
    except GraphError as error:
        if error.code == 190:
            reading.problem = f"the business token is no longer valid (Meta: {error.message})"
        elif error.code in (10, 200) or (error.code == 100 and error.error_subcode == 33):
            reading.problem = f"the business token no longer reaches this WhatsApp Business Account (Meta: {error})"
        else:
            reading.error = error
    return reading


def apply(reading: Reading) -> list[str]:
    """Apply one customer's reading to the records, as webhook events are, and commit; answers what needs a
    person."""
    customer = reading.customer
    events = [Event(0, "graph_token", customer.waba_id, reading.read_at, {"problem": reading.problem})]
    if reading.waba is not None:
        events.append(Event(0, "graph_waba", customer.waba_id, reading.read_at, reading.waba))
    events += [Event(0, "graph_phone_number", customer.waba_id, reading.read_at, phone) for phone in reading.phones]
    records = Records(events)
    for event in events:
        GRAPH_READS[event.field](event, records)
    records.write()
    db.session.commit()
    found = [reading.problem] if reading.problem else []
    for phone in reading.phones:
        if phone.get("quality_rating") in ("YELLOW", "RED"):
            found.append(f"{phone.get('display_phone_number')} quality {phone['quality_rating']}")
        if phone.get("status") in ("FLAGGED", "RESTRICTED", "RATE_LIMITED", "BANNED", "DISCONNECTED"):
            found.append(f"{phone.get('display_phone_number')} status {phone['status']}")
    if (reading.waba or {}).get("account_review_status") == "REJECTED":
        found.append("account review REJECTED")
    return [f"{customer.business_name}: {finding}" for finding in found]


def sweep(
    api: GraphClient | None = None, *, concurrency: int | None = None, sleep: Callable[[float], None] = time.sleep
) -> SweepReport:
    """Check every customer (see the module's doc). Needs an app context."""
    api = api or graph_client()
    concurrency = concurrency or current_app.config["ESU_HEALTH_SWEEP_CONCURRENCY"]
    report = SweepReport()
    queue = customers()
    db.session.commit()  # hold no transaction while Graph answers
    tries: dict[str, int] = {}
    backoff = BACKOFF.total_seconds()
    with ThreadPoolExecutor(concurrency, thread_name_prefix="esu-sweep") as pool:
        while queue:
            handful, queue = queue[:concurrency], queue[concurrency:]
            limited, told = [], []
            for reading in pool.map(lambda customer: read(customer, api), handful):
                name = reading.customer.business_name
                if reading.rate_limited:
                    tries[reading.customer.waba_id] = tries.get(reading.customer.waba_id, 0) + 1
                    if tries[reading.customer.waba_id] < RATE_LIMITED_TRIES:
                        limited.append(reading.customer)
                        told.append(reading.error.regain_access_seconds or 0)
                    else:
                        report.unchecked.append(f"{name}: Graph's rate limit ({reading.error})")
                elif reading.error is not None:
                    report.unchecked.append(f"{name}: {reading.error}")
                    log.warning(
                        "health sweep: %s (WABA %s) could not be checked: %s",
                        name,
                        reading.customer.waba_id,
                        reading.error,
                    )
                else:
                    try:
                        report.findings += apply(reading)
                    except Exception as error:
                        db.session.rollback()
                        log.exception(
                            "health sweep: what Graph said of WABA %s could not be applied", reading.customer.waba_id
                        )
                        report.unchecked.append(f"{name}: not applied ({type(error).__name__})")
                        continue
                    report.checked += 1
            if limited:
                queue = limited + queue
                # As long as Meta's usage headers say, when they say; else our own doubling pause.
                pause = float(max(told)) or backoff
                report.pauses.append(pause)
                log.info("health sweep: Graph's rate limit; pausing %.0f s", pause)
                sleep(pause)
                backoff = min(backoff * 2, LONGEST_BACKOFF.total_seconds())
            else:
                backoff = BACKOFF.total_seconds()
    return report
