"""The signup page's HTML, rendered once per process and served as bytes.

The page is the same for every visitor (no CSRF token, no session: the widget fetches its token when the
person clicks), so each process keeps the rendered bytes of each page with the ``updated_at`` they were
rendered from. An entry younger than ``SIGNUP_PAGE_CACHE_SECONDS`` is served as it is; an older one is
checked against the page's row (``updated_at`` and ``enabled``, one indexed Core query) and kept, rendered
again, or dropped for a 404. 0 checks the row on every request.

A commit that touched a ``SignupPage`` (the admin, the CLI) empties the cache of the process that made it,
so that process shows the change on its next request; other processes see it within the TTL.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context
from sqlalchemy.orm import Session

from .models import SignupPage

#: Enough for every page an agency runs; past it the oldest entry goes (a flood of made-up Host headers
#: only evicts, it cannot grow the process).
MAX_ENTRIES = 256
EXTENSION = "esu_signup_pages"


@dataclass(frozen=True)
class Entry:
    body: bytes
    updated_at: datetime
    checked_at: float  # time.monotonic() of the last check against the row


class PageCache:
    """Rendered pages by (slug, scheme, host), thread-safe for gthread workers."""

    def __init__(self, ttl: float, max_entries: int = MAX_ENTRIES):
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[tuple[str, str, str], Entry] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> Entry | None:
        return self._entries.get(key)

    def is_fresh(self, entry: Entry) -> bool:
        return time.monotonic() - entry.checked_at < self.ttl

    def put(self, key: tuple[str, str, str], body: bytes, updated_at: datetime) -> None:
        with self._lock:
            self._entries.pop(key, None)
            while len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = Entry(body, updated_at, time.monotonic())

    def checked(self, key: tuple[str, str, str], entry: Entry) -> None:
        """The row still matches ``entry``: trust it for another TTL."""
        with self._lock:
            if self._entries.get(key) is entry:
                self._entries[key] = replace(entry, checked_at=time.monotonic())

    def forget(self, slug: str) -> None:
        with self._lock:
            for key in [key for key in self._entries if key[0] == slug]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_STATE = sa.select(SignupPage.updated_at, SignupPage.enabled).where(SignupPage.slug == sa.bindparam("slug"))


def page_state(connection: sa.Connection, slug: str) -> sa.Row | None:
    """``(updated_at, enabled)`` of the page, or None when there is no such page."""
    return connection.execute(_STATE, {"slug": slug}).first()


def cache() -> PageCache:
    return current_app.extensions[EXTENSION]


def _note_page_changes(session: Session, _flush_context) -> None:
    if any(isinstance(obj, SignupPage) for obj in (*session.new, *session.dirty, *session.deleted)):
        session.info["esu_pages_changed"] = True


def _drop_after_commit(session: Session) -> None:
    if session.info.pop("esu_pages_changed", False) and has_app_context():
        pages = current_app.extensions.get(EXTENSION)
        if pages is not None:
            pages.clear()


def _discard_on_rollback(session: Session) -> None:
    session.info.pop("esu_pages_changed", None)


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = PageCache(app.config["SIGNUP_PAGE_CACHE_SECONDS"])
    # Every session of every app: registered once per process, each commit empties its own app's cache.
    for name, listener in (("after_flush", _note_page_changes), ("after_commit", _drop_after_commit),
                           ("after_rollback", _discard_on_rollback)):
        if not sa.event.contains(Session, name, listener):
            sa.event.listen(Session, name, listener)
