"""The runner: it claims an onboarding, runs the steps that apply as soon as what they need is done,
records each one as it starts and ends, and concludes.

Graph calls run in worker threads; every database write happens on the calling thread, in its session,
and is committed as each step starts and ends so that progress can be followed from another request
while the callback still runs. Of two requests racing for one onboarding, the database lets one run it:
the unique code digest for callbacks, a conditional UPDATE (``claim``) for retries and verifications.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext
from sqlalchemy.exc import IntegrityError

from .. import graph
from ..extensions import db
from ..graph import GraphClient, GraphError
from ..logs import carrying_request_id
from ..models import Onboarding, OnboardingStatus, OnboardingStep, SignupPage, StepStatus, now_utc
from ..models.assets import WABA
from .assets import keep_assets, more_waba_ids
from .context import Context
from .deadline import stuck_condition
from .errors import DuplicateCode, OnboardingError
from .outcomes import Skip, StepFailed, Wait
from .steps import LABELS, PIN_MISMATCH, POSITIONS, STEPS, STEPS_BY_NAME, Step

# Logged under the package's name, which log filters and searches already know.
log = logging.getLogger(__package__)

DONE = (StepStatus.OK, StepStatus.SKIPPED)
#: How long a rate-limited step waits when Meta's answer does not say.
RATE_LIMIT_WAIT = timedelta(minutes=5)


def code_digest(code: str) -> str:
    """What is kept of a signup code: enough to know it again, nothing to use it with."""
    return hashlib.sha256(code.encode()).hexdigest()


def step_record(onboarding: Onboarding, name: str) -> OnboardingStep:
    """The onboarding's record of the step ``name``; a pending one, in its place in the story, if none yet."""
    record = onboarding.step(name)
    if record is None:
        record = OnboardingStep(name=name, position=POSITIONS[name], status=StepStatus.PENDING, attempts=0, runs=0)
        onboarding.steps.append(record)
    return record


def clear_error(record: OnboardingStep) -> None:
    """Forget the Graph error an earlier run of the step recorded."""
    for name in GraphError("").fields():
        setattr(record, name, None)


def start(page: SignupPage, *, code: str, event: str, waba_id: str | None, phone_number_id: str | None,
          business_id: str | None, client_ref: str | None = None,
          assets: dict[str, list[str]] | None = None) -> Onboarding:
    """Record a finished signup and run its whole onboarding. The same code twice: DuplicateCode.

    ``assets`` are the finish message's lists by kind (``esu.models.assets.ASSET_FIELDS``): kept with the
    onboarding, and its WABAs (``waba_id`` first) each onboarded.

    When PARTNER_ADDED came first and left an onboarding waiting for this callback, the run folds it into
    this one once it has proved the customer granted the WABA (``steps._absorb_placeholders_once_proved``),
    never before: a callback naming someone else's WABA must not take theirs over.
    """
    onboarding = Onboarding(page_id=page.id, code_digest=code_digest(code), client_ref=client_ref, event=event,
                            source="callback", status=OnboardingStatus.RUNNING, waba_id=waba_id,
                            phone_number_id=phone_number_id, business_id=business_id, steps=[])
    db.session.add(onboarding)
    try:
        # The unique code digest decides, in the database, who runs this code. ``run``'s first commit, before
        # Meta sees the code, saves the onboarding with its steps.
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        existing = db.session.scalar(sa.select(Onboarding).where(Onboarding.code_digest == code_digest(code)))
        raise DuplicateCode("this signup code was already received; its onboarding is under way or done",
                            onboarding=existing) from None
    assets = dict(assets or {})
    if waba_id:
        # Its own WABA is among its assets whatever the caller listed: forwarding finds an event's onboardings there.
        assets[WABA] = [waba_id, *assets.get(WABA, [])]
    keep_assets(onboarding, assets)
    return run(onboarding, code=code)


def retry(onboarding: Onboarding) -> Onboarding:
    """Run again every step that did not succeed, with the stored token."""
    if onboarding.status == OnboardingStatus.OFFBOARDED:
        raise OnboardingError(gettext("the customer was offboarded; they need to sign up again"), status=409)
    if not onboarding.business_token:
        raise OnboardingError(gettext("the signup code could not be exchanged and cannot be reused; the customer "
                                      "needs to go through signup again"), status=409)
    if not claim(onboarding, OnboardingStatus.FAILED, abandoned=True):
        raise OnboardingError(not_now(onboarding, gettext("nothing to retry")), onboarding=onboarding, status=409)
    return run(onboarding, code=None)


def claim(onboarding: Onboarding, *statuses: OnboardingStatus, abandoned: bool = False) -> bool:
    """Mark the onboarding running if it is in one of ``statuses`` (or, with ``abandoned``, was left running
    by a process that died), in one conditional UPDATE, so that of two requests racing (two retries, a
    retry during the callback) only one runs steps and calls Meta."""
    claimable = Onboarding.status.in_([str(status) for status in statuses])
    if abandoned:
        claimable = sa.or_(claimable, stuck_condition(current_app.config))
    claimed = db.session.execute(
        sa.update(Onboarding)
        .where(Onboarding.id == onboarding.id, claimable)
        .values(status=OnboardingStatus.RUNNING, updated_at=now_utc())
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    db.session.commit()  # also expires ``onboarding``, so it is read again as the winner left it
    return claimed


def not_now(onboarding: Onboarding, what: str) -> str:
    """Why the onboarding cannot do ``what`` now, for the person who asked."""
    if onboarding.status == OnboardingStatus.RUNNING:
        return gettext("this onboarding is running right now; follow its progress instead")
    return gettext("%(what)s: this onboarding is %(status)s", what=what, status=onboarding.status)


def _context(onboarding: Onboarding, code: str | None) -> Context:
    config = current_app.config
    page = onboarding.page
    ctx = Context(
        event=onboarding.event,
        code=code,
        token=onboarding.business_token,
        waba_id=onboarding.waba_id,
        phone_number_id=onboarding.phone_number_id,
        business_id=onboarding.business_id,
        pin=f"{secrets.randbelow(10**6):06d}",
        app_id=config["META_APP_ID"],
        credit_line_id=config.get("META_CREDIT_LINE_ID"),
        system_user_id=config.get("META_SYSTEM_USER_ID"),
        credit_currency=(page.credit_currency if page is not None else None) or config["ESU_CREDIT_CURRENCY"],
        data_localization_region=page.data_localization_region if page is not None else None,
        more_waba_ids=more_waba_ids(onboarding),
    )
    for record in onboarding.steps:
        if record.status == StepStatus.OK and record.result is not None:
            ctx.results[record.name] = record.result
    return ctx


def run(onboarding: Onboarding, code: str | None) -> Onboarding:
    # The run owns its onboarding and step records (whoever called claimed them), so what it loaded stays
    # true between its commits: no reloading everything after each one, which would stand between a step
    # finishing and its dependents starting. The last commit expires as usual, so the caller reads what
    # the database holds (an offboarding that landed meanwhile, the outcome _conclude wrote).
    session = db.session()
    expiring, session.expire_on_commit = session.expire_on_commit, False
    try:
        _run_steps(onboarding, code)
    finally:
        session.expire_on_commit = expiring
    _conclude(onboarding)
    db.session.commit()
    return onboarding


def _run_steps(onboarding: Onboarding, code: str | None) -> None:
    ctx = _context(onboarding, code)
    # The status is already ``running``: whoever called claimed it in the database (start, claim).
    # Writing it again from here could undo an offboarding that landed since.
    onboarding.failure_reason = None
    todo: list[Step] = []
    for step in STEPS:
        record = step_record(onboarding, step.name)
        skip = step.applies(ctx)
        if skip:
            record.status, record.detail = StepStatus.SKIPPED, skip
        elif waits_on_its_own(record):
            pass  # for Meta's time (the worker runs it then) or the number's PIN (enter_existing_pin runs it)
        elif record.status not in DONE:
            record.status, record.detail = StepStatus.PENDING, None
            todo.append(step)

    pending = {step.name: step for step in todo}  # in STEPS order: a step comes after what it needs
    blocked: set[str] = set()  # failed, waiting, or (still pending) behind one of those
    futures: dict[Future, Step] = {}
    # Finished steps no pending step waits for: recorded once the steps that became ready have started.
    unawaited: list[tuple[Step, Outcome]] = []
    client = graph.client()
    workers = current_app.config["ONBOARDING_MAX_WORKERS"]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"onboarding-{onboarding.id}") as pool:
        while pending or futures:
            ready: list[Step] = []
            for step in list(pending.values()):
                states = {name: onboarding.step(name).status for name in step.waits_for(onboarding)}
                blockers = [name for name, status in states.items()
                            if name in blocked or status in (StepStatus.FAILED, StepStatus.WAITING)]
                if blockers:
                    del pending[step.name]
                    blocked.add(step.name)
                    onboarding.step(step.name).detail = "waits for " + ", ".join(blockers)
                elif all(status in DONE for status in states.values()):
                    del pending[step.name]
                    record = onboarding.step(step.name)
                    record.status, record.started_at, record.finished_at = StepStatus.RUNNING, now_utc(), None
                    record.runs += 1
                    try:
                        if step.before:
                            step.before(onboarding, ctx)
                    except StepFailed as reason:
                        _finish(onboarding, step, Outcome(StepStatus.FAILED, None, 0, 0, str(reason)), ctx)
                        blocked.add(step.name)
                        continue
                    ready.append(step)
            # Saved before Meta hears of it: that a step started, and what ``before`` chose (the PIN);
            # the same commit saves the outcomes of the steps that just finished (the first time round,
            # the records of every step). The onboarding's time says the run is alive (``deadline``).
            onboarding.updated_at = now_utc()
            db.session.commit()
            # What the pending steps wait for: started first (a worker thread may have to be made for each
            # step), and recorded first when it finishes.
            awaited = {name for step in pending.values() for name in step.waits_for(onboarding)}
            ready.sort(key=lambda step: step.name not in awaited)
            for step in ready:
                # Carrying the request id lets the step's log lines be found with the request's.
                futures[pool.submit(carrying_request_id(_execute), step, client.tracked(), ctx)] = step
            if unawaited:
                # While the steps just started talk to Graph.
                for step, outcome in unawaited:
                    _finish(onboarding, step, outcome, ctx)
                unawaited.clear()
                db.session.commit()
            if not futures:
                break
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in done:
                step = futures.pop(future)
                if step.name not in awaited:
                    unawaited.append((step, future.result()))
                    continue
                _finish(onboarding, step, future.result(), ctx)
                if onboarding.step(step.name).status in (StepStatus.FAILED, StepStatus.WAITING):
                    blocked.add(step.name)
    for step, outcome in unawaited:  # the last to finish: ``run``'s closing commit saves them
        _finish(onboarding, step, outcome, ctx)


def waits_on_its_own(record: OnboardingStep) -> bool:
    """A waiting step only its own trigger runs again: the time Meta gave a rate-limited call (``wait_until``),
    or the PIN a number with two-step verification already has."""
    return record.status == StepStatus.WAITING and (record.wait_until is not None
                                                    or record.error_code == PIN_MISMATCH)


@dataclass
class Outcome:
    """How a step's run ended, as the worker thread saw it; ``_finish`` records it on the caller's."""

    status: StepStatus
    result: dict[str, Any] | None
    attempts: int
    duration_ms: int
    detail: str | None = None
    error: GraphError | None = None
    #: A rate-limited step waits until then.
    wait_until: Any = None


def _execute(step: Step, client: GraphClient, ctx: Context) -> Outcome:
    """Run one step in a worker thread: Graph calls only, no database."""
    began = time.perf_counter()

    def outcome(status: StepStatus, **kwargs) -> Outcome:
        return Outcome(status, attempts=client.attempts, duration_ms=round((time.perf_counter() - began) * 1000),
                       **kwargs)

    try:
        return outcome(StepStatus.OK, result=step.run(ctx, client))
    except Skip as reason:
        return outcome(StepStatus.SKIPPED, result=None, detail=str(reason))
    except Wait as reason:
        return outcome(StepStatus.WAITING, result=None, detail=str(reason), error=reason.error)
    except StepFailed as reason:
        return outcome(StepStatus.FAILED, result=None, detail=str(reason))
    except GraphError as error:
        if error.rate_limited and step.name != "exchange_code":
            # The token lasts (a code does not): wait as long as Meta says rather than hammer it.
            until = now_utc() + (timedelta(seconds=error.regain_access_seconds) if error.regain_access_seconds
                                 else RATE_LIMIT_WAIT)
            log.info("onboarding step %s rate-limited by Meta until %s: %s", step.name, until.isoformat(), error,
                     extra={"step": step.name, "graph_code": error.code, "fbtrace_id": error.fbtrace_id})
            return outcome(StepStatus.WAITING, result=None, error=error, wait_until=until,
                           detail=f"Meta is limiting our calls: waiting until {until:%Y-%m-%d %H:%M} UTC")
        log.warning("onboarding step %s failed: %s (fbtrace_id %s)", step.name, error, error.fbtrace_id,
                    extra={"step": step.name, "graph_code": error.code, "fbtrace_id": error.fbtrace_id})
        return outcome(StepStatus.FAILED, result=None, detail=error.user_message or error.message, error=error)
    except Exception:
        log.exception("onboarding step %s crashed", step.name)
        return outcome(StepStatus.FAILED, result=None, detail="an unexpected error occurred in esu")


def _finish(onboarding: Onboarding, step: Step, outcome: Outcome, ctx: Context) -> None:
    record = onboarding.step(step.name)
    record.status = outcome.status
    record.attempts = outcome.attempts
    record.duration_ms = outcome.duration_ms
    record.finished_at = now_utc()
    record.detail = outcome.detail
    record.wait_until = outcome.wait_until
    clear_error(record)
    if outcome.error is not None:
        for name, value in outcome.error.fields().items():
            setattr(record, name, value)
    if step.after is not None:
        step.after(ctx, outcome.attempts, outcome.error)
    if outcome.status == StepStatus.OK:
        result = outcome.result or {}
        # What the save writes goes out with the next commit, the record's result with it, rather than
        # before each of the save's reads (none of which looks for it).
        with db.session.no_autoflush:
            step.save(onboarding, ctx, result)
        record.result = result
        ctx.results[step.name] = result


def _conclude(onboarding: Onboarding) -> None:
    # The sequence decides; a verification call that failed once (a mistyped code) is the person's to redo.
    sequence = [record for record in onboarding.steps if record.name in STEPS_BY_NAME]
    failed = [record for record in sequence if record.status == StepStatus.FAILED]
    waiting = [record for record in sequence if record.status == StepStatus.WAITING]
    if failed:
        first = failed[0]
        outcome = {"status": OnboardingStatus.FAILED,
                   "failure_reason": f"{LABELS.get(first.name, first.name)}: {first.detail or first.error_message}"}
    elif any(record.wait_until is not None for record in waiting):
        outcome = {"status": OnboardingStatus.RATE_LIMITED}
    elif any(record.error_code == PIN_MISMATCH for record in waiting):
        outcome = {"status": OnboardingStatus.AWAITING_PIN}
    elif waiting:
        outcome = {"status": OnboardingStatus.AWAITING_VERIFICATION}
    elif all(record.status in DONE for record in sequence):
        outcome = {"status": OnboardingStatus.COMPLETED, "completed_at": onboarding.completed_at or now_utc()}
    else:
        return
    # Only onto an onboarding still running: the steps ran without a transaction open, and meanwhile a
    # webhook, in this process or another, may have offboarded the customer (PARTNER_REMOVED); this run's
    # outcome must not write "completed" over that. The caller's commit reloads ``onboarding``.
    db.session.execute(
        sa.update(Onboarding)
        .where(Onboarding.id == onboarding.id, Onboarding.status == OnboardingStatus.RUNNING)
        .values(outcome)
        .execution_options(synchronize_session=False)
    )
