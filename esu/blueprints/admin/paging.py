"""Keyset pagination for the admin's lists (newest first), and prefix search an index can serve.

A page is "the next N rows older than this (time, id)": the same cost on page 1 and page 5,000,
unlike OFFSET, which reads and drops every row before the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import abort, request
from flask_babel import gettext

from ...extensions import db
from ...i18n import N_
from .. import MAX_ID

PAGE_SIZE = 50
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR = re.compile(r"^([0-9]{1,20})-([0-9]{1,20})\Z")


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the time and id of its last row (microseconds, so it survives a URL exactly)."""

    at: datetime
    id: int

    def encode(self) -> str:
        return f"{(self.at - EPOCH) // timedelta(microseconds=1)}-{self.id}"

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        match = CURSOR.match(text or "")
        if not match or int(match.group(2)) > MAX_ID:
            return None
        try:
            return cls(EPOCH + timedelta(microseconds=int(match.group(1))), int(match.group(2)))
        except OverflowError:
            return None


#: What a page link esu did not make answers (a typo, an id past any row, another script's digits).
BAD_CURSOR = N_("This page link is not one esu made: open the list again from its first page.")


def requested_cursor() -> Cursor | None:
    """The ``after`` of this request's page link: None for the first page; 400 for one esu did not make."""
    after = request.args.get("after")
    if not after:
        return None
    cursor = Cursor.decode(after)
    if cursor is None:
        abort(400, description=gettext(BAD_CURSOR))
    return cursor


@dataclass
class Page:
    rows: list
    next_cursor: Cursor | None


def newest_first(statement: sa.Select, at_column, id_column, cursor: Cursor | None,
                 size: int = PAGE_SIZE) -> Page:
    """One page of ``statement`` ordered newest first, starting after ``cursor``."""
    if cursor is not None:
        statement = statement.where(sa.tuple_(at_column, id_column) < sa.tuple_(
            sa.literal(cursor.at, at_column.type), sa.literal(cursor.id, id_column.type)))
    rows = list(db.session.scalars(statement.order_by(at_column.desc(), id_column.desc()).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    last = rows[-1] if more else None
    return Page(rows, Cursor(getattr(last, at_column.key), getattr(last, id_column.key)) if last else None)


def starts_with(expression, prefix: str, *, ignore_case: bool = False):
    """``expression`` starts with ``prefix``, written so that an index on ``expression`` serves it.

    PostgreSQL: ``LIKE 'prefix%'``, which its pattern-operator indexes serve under any collation.
    SQLite: a range, ``prefix <= expression < prefix + U+10FFFF`` (its LIKE cannot use these indexes).
    """
    if ignore_case:
        expression = sa.func.lower(expression)
    if db.session.get_bind().dialect.name == "postgresql":
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        pattern = sa.literal(escaped, sa.String)
        return expression.like(sa.func.lower(pattern) if ignore_case else pattern, escape="\\")
    low = sa.literal(prefix, sa.String)
    if ignore_case:
        low = sa.func.lower(low, type_=sa.String)
    return sa.and_(expression >= low, expression < low.concat("\U0010ffff"))
