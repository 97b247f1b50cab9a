"""PostgreSQL connections are checked before use only when they may have gone stale.

SQLAlchemy's ``pool_pre_ping`` asks the server before every checkout: a round trip for each request and
for each batch of webhook deliveries, where a batch of messages otherwise takes one (``esu.webhooks``),
and on a busy 2-core machine each round trip costs about a millisecond of waiting. A connection given
back to the pool moments ago is as good as pinged, so this pings only one that has been idle for longer
than ``idle_seconds``; one that fails the ping is replaced by the pool, which tries again with a fresh
connection (SQLAlchemy's "pessimistic" disconnect handling, with a checkout event).

What is left to chance: a server restarting within ``idle_seconds`` of a connection's last use. The
statement then fails as "unavailable" (a webhook answers 503, which Meta retries), and SQLAlchemy
replaces every connection of the pool.
"""

from __future__ import annotations

import time

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

#: A connection used this recently is not pinged before its next use.
IDLE_SECONDS = 1.0
_IDLE_SINCE = "esu_idle_since"


def ping_when_idle(engine: Engine, idle_seconds: float = IDLE_SECONDS) -> None:
    """Ping ``engine``'s connections at checkout when they were idle for longer than ``idle_seconds``
    (the engine's own ``pool_pre_ping`` is meant to be off)."""

    @event.listens_for(engine, "connect")
    def connected(_dbapi_connection, record) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def checked_in(_dbapi_connection, record) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection, record, _proxy) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is not None and time.monotonic() - idle_since <= idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool invalidates this connection and checks out another.
            raise exc.DisconnectionError(f"the idle connection failed its ping: {error}") from error
