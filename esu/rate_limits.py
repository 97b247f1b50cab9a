"""Flask-Limiter's counters in esu's own database, for when no Redis is configured.

The limits library keeps counters in memory, Redis, Memcached or MongoDB: in memory each gunicorn worker
counts alone (with two workers the login limit let eight failures through before the first 429), and the
others are a service more to run. This storage keeps them in the ``rate_limit_counters`` table, shared by
every worker and instance on the database, one ``INSERT … ON CONFLICT`` per hit (on SQLite and PostgreSQL
alike), on a connection of its own: a hit is counted even when the request's own transaction rolls back.

Fixed windows only (Flask-Limiter's default strategy): a key's window starts at its first hit and ends
``expiry`` seconds later; the next hit after that starts a new one. Ended windows are deleted now and then.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import sqlalchemy as sa
from limits.storage import Storage
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from .extensions import db
from .models.rate_limits import RateLimitCounter

#: RATELIMIT_STORAGE_URI for this storage.
URI = "esu+database://"
#: At most this often, in seconds, a process deletes the windows that have ended.
PURGE_EVERY = 60.0

_counters = RateLimitCounter.__table__


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class DatabaseStorage(Storage):
    """A :class:`limits.storage.Storage` on the app's SQLAlchemy engine (needs an app context, as every
    rate-limited request has)."""

    STORAGE_SCHEME = ["esu+database"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **_options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        self._purged_at = 0.0
        self._purge_lock = threading.Lock()

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        insert = (postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert)(_counters)
        ended = _counters.c.expires_at <= _at(now)
        statement = insert.values(key=key, count=amount, expires_at=_at(now + expiry)).on_conflict_do_update(
            index_elements=[_counters.c.key],
            set_={"count": sa.case((ended, insert.excluded.count), else_=_counters.c.count + insert.excluded.count),
                  "expires_at": sa.case((ended, insert.excluded.expires_at), else_=_counters.c.expires_at)},
        ).returning(_counters.c.count)
        with db.engine.begin() as connection:
            count = connection.execute(statement).scalar_one()
            if self._purge_due(now):
                connection.execute(sa.delete(_counters).where(ended))
        return count

    def _purge_due(self, now: float) -> bool:
        with self._purge_lock:
            if now - self._purged_at < PURGE_EVERY:
                return False
            self._purged_at = now
            return True

    def _window(self, key: str) -> sa.Row | None:
        with db.engine.connect() as connection:
            return connection.execute(sa.select(_counters.c.count, _counters.c.expires_at).where(
                _counters.c.key == key, _counters.c.expires_at > _at(time.time()))).first()

    def get(self, key: str) -> int:
        window = self._window(key)
        return window.count if window else 0

    def get_expiry(self, key: str) -> float:
        window = self._window(key)
        return window.expires_at.timestamp() if window else time.time()

    def check(self) -> bool:
        try:
            with db.engine.connect() as connection:
                connection.execute(sa.select(1))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with db.engine.begin() as connection:
            return connection.execute(sa.delete(_counters)).rowcount

    def clear(self, key: str) -> None:
        with db.engine.begin() as connection:
            connection.execute(sa.delete(_counters).where(_counters.c.key == key))
