"""The signup page's answer, rendered once per process and served as bytes.

The page is the same for every visitor (no CSRF token, no session: the widget fetches its token when the
person clicks), so each process keeps each page's answer — body and headers, as Flask and its
``after_request`` hooks (the security headers) made it — with the ``updated_at`` it was rendered from.

An entry younger than ``SIGNUP_PAGE_CACHE_SECONDS`` is answered by ``PageCacheMiddleware``, beneath ProxyFix
and before Flask: Flask's request machinery (contexts, session, hooks) costs several times what the page
itself does, and is what kept the page under the required share of a bare route's throughput. Nothing it
skips applies to a fresh entry: the key holds the scheme and the Host (an entry exists only for a scheme and
host Flask answered 200: HTTPS redirects and refused hosts never get one), the page has no rate limit, a
GET needs no CSRF check, and the request id is made and echoed as ``esu.logs`` does. An older entry goes
through Flask, where the view checks it against the page's row (``updated_at`` and ``enabled``, one small
Core query) and keeps it, renders again, or answers 404. 0 seconds checks the row on every request.

A commit that touched a ``SignupPage`` (the admin, the CLI) empties the cache of the process that made it,
so that process shows the change on its next request; other processes see it within the TTL.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context
from sqlalchemy.orm import Session

from .i18n import browser_language
from .logs import REQUEST_ID_HEADER, request_id_for
from .models import SignupPage
from .security import beneath_proxies

#: Enough for every page an agency runs; past it the oldest entry goes (a flood of made-up Host headers
#: only evicts, it cannot grow the process).
MAX_ENTRIES = 256
EXTENSION = "esu_signup_pages"
#: The view puts ``(key, updated_at)`` here when its answer may be kept; the middleware keeps it.
CACHEABLE = "esu.signup_page"
PAGE_PATH = re.compile(r"^/signup/([^/]+)$")
#: Headers of one answer only, never replayed.
PER_REQUEST_HEADERS = frozenset({REQUEST_ID_HEADER.lower(), "set-cookie", "date", "server"})

Key = tuple[str, str, str, str]


def page_key(environ: dict, slug: str) -> Key:
    """(slug, scheme, Host, the browser's language): in simulator mode the widget trusts the SDK's origin,
    which may be the request's own; an answer for one scheme or host is never replayed for another; and a
    page that speaks its visitor's language is kept once per language."""
    return (slug, environ.get("wsgi.url_scheme", "http"), environ.get("HTTP_HOST", ""),
            browser_language(environ.get("HTTP_ACCEPT_LANGUAGE")))


@dataclass(frozen=True)
class Entry:
    body: bytes
    updated_at: datetime
    checked_at: float  # time.monotonic() of the last check against the row
    status: str = "200 OK"
    headers: tuple[tuple[str, str], ...] = ()


class PageCache:
    """Answers by ``page_key``, thread-safe for gthread workers."""

    def __init__(self, ttl: float, max_entries: int = MAX_ENTRIES):
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[Key, Entry] = {}
        self._lock = threading.Lock()

    def get(self, key: Key) -> Entry | None:
        return self._entries.get(key)

    def is_fresh(self, entry: Entry) -> bool:
        return time.monotonic() - entry.checked_at < self.ttl

    def put(self, key: Key, body: bytes, updated_at: datetime, status: str,
            headers: tuple[tuple[str, str], ...]) -> None:
        with self._lock:
            self._entries.pop(key, None)
            while len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = Entry(body, updated_at, time.monotonic(), status, headers)

    def forget(self, slug: str) -> None:
        with self._lock:
            for key in [key for key in self._entries if key[0] == slug]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_STATE = sa.select(SignupPage.updated_at, SignupPage.enabled, SignupPage.embed_origins).where(
    SignupPage.slug == sa.bindparam("slug"))


def page_state(connection: sa.Connection, slug: str) -> sa.Row | None:
    """``(updated_at, enabled, embed_origins)`` of the page, or None when there is no such page."""
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


class PageCacheMiddleware:
    """Answers GET /signup/<slug> from a fresh entry; keeps the answers the view marks cacheable."""

    def __init__(self, wsgi_app, pages: PageCache):
        self.wsgi_app = wsgi_app
        self.pages = pages

    def __call__(self, environ, start_response):
        match = PAGE_PATH.match(environ.get("PATH_INFO", "")) if environ.get("REQUEST_METHOD") == "GET" else None
        if match is None:
            return self.wsgi_app(environ, start_response)
        entry = self.pages.get(page_key(environ, match.group(1)))
        if entry is not None and self.pages.is_fresh(entry):
            request_id = request_id_for(environ.get("HTTP_X_REQUEST_ID"))
            start_response(entry.status, [*entry.headers, (REQUEST_ID_HEADER, request_id)])
            return [entry.body]
        return self._through_flask(environ, start_response)

    def _through_flask(self, environ, start_response):
        answer: dict = {}

        def remember(status, headers, exc_info=None):
            answer["status"], answer["headers"] = status, headers
            return start_response(status, headers, exc_info)

        body = self.wsgi_app(environ, remember)
        cacheable = environ.get(CACHEABLE)
        if cacheable is None or not answer.get("status", "").startswith("200"):
            return body
        try:
            data = b"".join(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        key, updated_at = cacheable
        kept = tuple((name, value) for name, value in answer["headers"] if name.lower() not in PER_REQUEST_HEADERS)
        self.pages.put(key, data, updated_at, answer["status"], kept)
        return [data]


def init_app(app: Flask) -> None:
    pages = app.extensions[EXTENSION] = PageCache(app.config["SIGNUP_PAGE_CACHE_SECONDS"])
    # Beneath ProxyFix, so that the scheme in the key is the one the visitor used.
    beneath_proxies(app, lambda wsgi_app: PageCacheMiddleware(wsgi_app, pages))
    # Every session of every app: registered once per process, each commit empties its own app's cache.
    for name, listener in (("after_flush", _note_page_changes), ("after_commit", _drop_after_commit),
                           ("after_rollback", _discard_on_rollback)):
        if not sa.event.contains(Session, name, listener):
            sa.event.listen(Session, name, listener)
