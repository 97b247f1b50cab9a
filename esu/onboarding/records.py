"""The WABA, number and template records the steps' saves write.

Webhooks write the same records at any moment, from other transactions: a record is inserted unless it
exists, and a fact a Graph read found is saved only where no newer webhook event has set it.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from ..models import MessageTemplate, Onboarding, PhoneNumber, WhatsAppBusinessAccount, now_utc
from .context import Context


def step_asked_at(onboarding: Onboarding, step_name: str) -> datetime:
    """When the step asked Graph: what it read is the state as of then, or later."""
    record = onboarding.step(step_name)
    return (record.started_at if record is not None else None) or now_utc()


def save_read_fact(record: Any, stamp: str, asked_at: datetime, **values: Any) -> None:
    """Save facts a Graph read found that webhooks set too (each stamped with Meta's time of the event that
    set it): unless an event newer than the read already did, as it may have while the read was on its way
    or since, in a transaction of its own. The read then stamps them with when it was asked, so that an
    event older than the read, delivered late, does not undo it either.

    One conditional UPDATE, so that the database compares with the row as it is now, not as this run loaded
    it; a record not yet in the database (this run made it) takes the values as they are."""
    if not sa.inspect(record).persistent:
        for name, value in {**values, stamp: asked_at}.items():
            setattr(record, name, value)
        return
    table = type(record).__table__
    db.session.execute(
        sa.update(table)
        .where(table.c.id == record.id, sa.or_(table.c[stamp].is_(None), table.c[stamp] <= asked_at))
        .values({**values, stamp: asked_at})
    )
    db.session.expire(record, [*values, stamp])  # read again from the row, whichever won


def waba_record(ctx: Context, waba_id: str) -> WhatsAppBusinessAccount:
    waba = ctx.records.get((WhatsAppBusinessAccount, waba_id)) or db.session.get(WhatsAppBusinessAccount, waba_id)
    if waba is None:
        # A webhook (PARTNER_ADDED, business_capability_update…) may be creating it at this very moment:
        # insert unless it exists, then read it, rather than fail this step on the primary key.
        db.session.execute(dialect_insert(WhatsAppBusinessAccount.__table__).values(id=waba_id, details={})
                           .on_conflict_do_nothing(index_elements=["id"]))
        waba = db.session.get(WhatsAppBusinessAccount, waba_id)
    ctx.records[WhatsAppBusinessAccount, waba_id] = waba
    return waba


def phone_record(ctx: Context, phone_id: str) -> PhoneNumber:
    phone = ctx.records.get((PhoneNumber, phone_id)) or db.session.get(PhoneNumber, phone_id)
    if phone is None:
        phone = PhoneNumber(id=phone_id, registration_attempts=0)
        db.session.add(phone)
    ctx.records[PhoneNumber, phone_id] = phone
    return phone


def save_phone_read(onboarding: Onboarding, ctx: Context, result: dict[str, Any]) -> PhoneNumber:
    """Save a number as ``read_phone_number`` read it (``result``: Graph's answer and the number's ``waba_id``)."""
    waba_id = str(result["waba_id"])
    waba_record(ctx, waba_id)
    phone = phone_record(ctx, str(result.get("id") or ctx.phone_number_id))
    phone.waba_id = waba_id
    result = {key: value for key, value in result.items() if key != "waba_id"}
    for name in ("display_phone_number", "code_verification_status", "status", "quality_rating", "platform_type"):
        if result.get(name) is not None:
            setattr(phone, name, str(result[name]))
    if isinstance(result.get("is_on_biz_app"), bool):
        phone.is_on_biz_app = result["is_on_biz_app"]
    naming = {key: str(result[key]) for key in ("verified_name", "name_status") if result.get(key) is not None}
    if naming:
        save_read_fact(phone, "name_updated_at", step_asked_at(onboarding, "read_phone_number"), **naming)
    phone.details = result
    return phone


def save_templates(waba_id: str, fetched: list[dict[str, Any]], asked_at: datetime) -> None:
    """Save the WABA's templates as a Graph read asked at ``asked_at`` found them."""
    templates = {str(data["id"]): {
        "waba_id": waba_id, "name": str(data.get("name", "")), "language": str(data.get("language", "")),
        "components": data.get("components") or [], "status": str(data.get("status", "APPROVED")),
        "category": data.get("category")} for data in fetched}
    # In statements, not loaded records: a webhook may create or change one of these templates at any moment
    # (its status update creates a template esu did not know), and the database decides what is new and
    # which fact is newer. New templates in one INSERT that skips any a webhook has just made.
    table = MessageTemplate.__table__
    new = set(db.session.scalars(
        dialect_insert(table).values([{"id": template_id, **facts, "status_updated_at": asked_at,
                                "category_updated_at": asked_at} for template_id, facts in templates.items()])
        .on_conflict_do_nothing(index_elements=["id"]).returning(table.c.id)))
    # Parameter names unlike the columns': an UPDATE given a parameter named after a column sets it.
    known = [{"template_id": template_id, "asked_at": asked_at,
              **{f"read_{key}": value for key, value in facts.items()}}
             for template_id, facts in templates.items() if template_id not in new]
    if known:
        for statement in _update_known_templates():
            db.session.execute(statement, known)


@functools.cache
def _update_known_templates() -> tuple[sa.Update, ...]:
    """What the read says of templates esu knew: their name, language and components; their status and
    category each unless a newer event set it (as ``save_read_fact`` does for one record)."""
    table = MessageTemplate.__table__
    by_id = table.c.id == sa.bindparam("template_id")
    asked_at = sa.bindparam("asked_at")
    return (
        sa.update(table).where(by_id).values(
            {key: sa.bindparam(f"read_{key}") for key in ("waba_id", "name", "language", "components")}),
        *(sa.update(table)
          .where(by_id, sa.or_(table.c[stamp].is_(None), table.c[stamp] <= asked_at))
          .values({fact: sa.bindparam(f"read_{fact}"), stamp: asked_at})
          for fact, stamp in (("status", "status_updated_at"), ("category", "category_updated_at"))),
    )


def dialect_insert(table: sa.Table) -> Any:
    """An INSERT in the database's own dialect, which can skip rows that exist (``on_conflict_do_nothing``)."""
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table)
