"""SQLite as a production database for one machine: WAL, and writers that queue instead of polling.

SQLite lets one writer in at a time. The others, on finding the database locked, sleep and try again
(1, 2, 5, 10 … 100 ms, SQLite's busy handler): under a burst of webhooks from several gunicorn workers a
writer can keep losing the race and wait hundreds of milliseconds while the lock is free most of that
time. So every connection takes an exclusive ``flock`` on a file beside the database before its first
write in a transaction and gives it back when the transaction ends: the kernel queues the writers and
wakes the next one the moment the lock is released. Threads of one process first queue on a process
lock with a timeout, so that a thread waiting on itself (a second connection writing while the first
holds the lock) fails after ``timeout`` seconds as SQLite would, instead of hanging.

Readers never take the lock: in WAL mode they read beside the writer.
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import threading
from pathlib import Path

#: Statements that make a transaction a writer (pysqlite begins the transaction before them).
_WRITE = re.compile(r"\s*(?:INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)

# One per lock file: the threads of this process wait here, with a timeout, before the flock.
_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def _process_lock(path: str) -> threading.Lock:
    with _process_locks_guard:
        return _process_locks.setdefault(path, threading.Lock())


class QueuedWritersConnection(sqlite3.Connection):
    """A pysqlite connection whose write transactions hold the database's writer lock file."""

    def __init__(self, database, timeout: float = 5.0, *args, **kwargs):
        super().__init__(database, timeout, *args, **kwargs)
        self._wait = timeout
        self._lock_path = writer_lock_path(database)
        self._process_lock = _process_lock(self._lock_path) if self._lock_path else None
        self._lock_fd: int | None = None  # open only while this connection holds the lock

    def cursor(self, factory=None):
        return super().cursor(factory or QueuedWritersCursor)

    def execute(self, sql, parameters=(), /):
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql, parameters, /):
        return self.cursor().executemany(sql, parameters)

    def take_writer_lock(self) -> None:
        if self._lock_fd is not None or self._lock_path is None:
            return
        if not self._process_lock.acquire(timeout=self._wait):
            raise sqlite3.OperationalError("database is locked (another thread of this process is writing)")
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
        except BaseException:
            self._process_lock.release()
            raise
        self._lock_fd = fd

    def give_writer_lock(self) -> None:
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            os.close(fd)  # closing the descriptor releases the flock
            self._process_lock.release()

    def commit(self):
        try:
            super().commit()
        finally:
            if not self.in_transaction:
                self.give_writer_lock()

    def rollback(self):
        try:
            super().rollback()
        finally:
            self.give_writer_lock()

    def close(self):
        try:
            super().close()
        finally:
            self.give_writer_lock()


class QueuedWritersCursor(sqlite3.Cursor):
    def execute(self, sql, parameters=(), /):
        if _WRITE.match(sql):
            self.connection.take_writer_lock()
        return super().execute(sql, parameters)

    def executemany(self, sql, parameters, /):
        if _WRITE.match(sql):
            self.connection.take_writer_lock()
        return super().executemany(sql, parameters)


def writer_lock_path(database) -> str | None:
    """``<database>-writer`` beside a database file; None for an in-memory database."""
    name = str(database)
    if name in ("", ":memory:") or name.startswith("file:") or "mode=memory" in name:
        return None
    return str(Path(name).resolve()) + "-writer"


def tune(engine) -> None:
    """WAL lets readers (progress polls, the admin) run beside the writer; foreign keys are off by default."""
    if engine.dialect.name != "sqlite":
        return
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def hold_writer_lock(connection) -> None:
    """Take the writer lock for ``connection``'s transaction now, ahead of its first write; it is given back
    when the transaction ends. Nothing to do on another database, or on SQLite in memory."""
    dbapi_connection = connection.connection.dbapi_connection
    if isinstance(dbapi_connection, QueuedWritersConnection):
        dbapi_connection.take_writer_lock()
