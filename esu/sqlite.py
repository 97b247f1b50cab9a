"""SQLite as a production database for one machine: WAL, and writers that queue instead of polling.

SQLite lets one writer in at a time. The others, on finding the database locked, sleep and try again
(1, 2, 5, 10 … 100 ms, SQLite's busy handler): under a burst of webhooks from several gunicorn workers a
writer can keep losing the race and wait hundreds of milliseconds while the lock is free most of that
time. So every connection takes an exclusive ``flock`` on a file beside the database before its first
write in a transaction and gives it back when the transaction ends: the kernel queues the writers and
wakes the next one the moment the lock is released. Threads of one process first queue on a process
lock with a timeout, so that a thread waiting on itself (a second connection writing while the first
holds the lock) fails after ``timeout`` seconds as SQLite would, instead of hanging.

A writer that may wait only so long (Meta's webhook, which answers 503 rather than keep Meta waiting)
gives :func:`hold_writer_lock` a bound: ``flock`` itself waits for ever, so a thread of the process waits
in the kernel's queue on its behalf (:class:`_FlockWaiter`), and the same bound lowers SQLite's busy
timeout for the rest of that transaction (another process may write without the lock file).

Readers never take the lock: in WAL mode they read beside the writer.

Nor do checkpoints run under it. SQLite copies the WAL back into the database (a checkpoint, with two
fsyncs) at the end of the commit that takes the WAL past 1,000 pages, in the committing connection: here,
while it still held the writer lock, so every other writer waited out those fsyncs (about 5 ms each on
the development machine's virtual disk, every few dozen webhook batches). These connections turn that off
and leave checkpoints to a thread of the process (:class:`Checkpointer`), which runs one beside the
writers every :data:`CHECKPOINT_EVERY` commits; the WAL stays about as small as SQLite keeps it. Under
bench/webhooks.py's load the two workers' CPUs had sat 18–28 % idle; now 11–14 %, and about a fifth more
deliveries are stored a second.

A checkpoint copies the WAL back but never shortens the file: SQLite writes the WAL again from its start
(and, with ``journal_size_limit``, cuts the file back) only when a writer begins after a checkpoint that
copied everything while no reader still used the WAL. Under a steady load some reader always does, so the
WAL grew without end (1.99 GB after 84,000 deliveries) and kept its size when the load stopped. So once the
file passes :data:`WAL_SIZE_LIMIT` the checkpointer takes the writer lock and runs a ``TRUNCATE`` checkpoint,
which waits a moment for the readers that still use the WAL and leaves it empty; should they not finish in
that moment, it tries again a second later, also when no commit comes (the writers have paused).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import sqlite3
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

#: Statements that make a transaction a writer (pysqlite begins the transaction before them).
_WRITE = re.compile(r"\s*(?:INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)

# One per lock file: the threads of this process wait here, with a timeout, before the flock.
_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def _process_lock(path: str) -> threading.Lock:
    with _process_locks_guard:
        return _process_locks.setdefault(path, threading.Lock())


#: Past this size (bytes) the checkpointer empties the WAL (a TRUNCATE checkpoint), and SQLite cuts it back to
#: this size whenever it starts writing it from the start again (``journal_size_limit``).
WAL_SIZE_LIMIT = 32 * 1024 * 1024
#: How long (ms) a TRUNCATE checkpoint waits for the readers still using the WAL, writers queued behind it.
TRUNCATE_WAIT_MS = 200
#: Seconds between two tries at emptying a WAL left over the limit (readers were using it).
TRUNCATE_RETRY_SECONDS = 1.0

def _open_lock_file(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


class _FlockWaiter:
    """This process's place in the kernel's queue for a lock file, for threads that may wait only so long:
    ``flock`` cannot be given a timeout, so a thread of its own blocks in it and hands the lock to the
    thread that asked. Should that one give up first, the lock is given back the moment it comes, unless
    another thread of the process has asked for it meanwhile. Only the thread holding the file's process
    lock calls :meth:`take`, so one thread at most is waiting."""

    def __init__(self, path: str):
        self.path = path
        self._changed = threading.Condition()
        self._wanted = False
        self._queued_fd: int | None = None  # waiting in flock, on this waiter's thread
        self._granted_fd: int | None = None  # holding the lock, for the thread that asked
        self._error: OSError | None = None
        threading.Thread(target=self._run, name="esu-sqlite-writer-lock", daemon=True).start()

    def take(self, timeout: float) -> int:
        """A descriptor of the lock file holding its lock, within ``timeout`` seconds; otherwise
        ``sqlite3.OperationalError``, as SQLite raises when its own lock does not come in time."""
        with self._changed:
            if self._queued_fd is None:  # not queued for a thread that gave up: try without the hand-over
                fd = _open_lock_file(self.path)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    os.close(fd)
            self._wanted = True
            self._changed.notify_all()
            came = self._changed.wait_for(lambda: self._granted_fd is not None or self._error is not None, timeout)
            self._wanted = False
            error, self._error = self._error, None
            if error is not None:
                raise error
            if not came:
                raise sqlite3.OperationalError(f"database is locked (no writer lock within {timeout:.2f} s)")
            fd, self._granted_fd = self._granted_fd, None
            return fd

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._wanted and self._granted_fd is None)
                fd = self._queued_fd = _open_lock_file(self.path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as error:
                os.close(fd)
                with self._changed:
                    self._queued_fd, self._error = None, error
                    self._changed.notify_all()
                continue
            with self._changed:
                self._queued_fd = None
                if self._wanted:
                    self._granted_fd, fd = fd, None
                    self._changed.notify_all()
            if fd is not None:
                os.close(fd)  # no one waits for it any more: give it straight back

    def forget_in_child(self) -> None:
        """In a forked child, which has none of this waiter's thread: close its copies of the descriptors,
        which would otherwise hold the lock with the parent's."""
        for fd in (self._queued_fd, self._granted_fd):
            if fd is not None:
                os.close(fd)


# One per lock file, made when a thread first takes its lock with a bound.
_flock_waiters: dict[str, _FlockWaiter] = {}


def _flock_waiter(path: str) -> _FlockWaiter:
    with _process_locks_guard:
        waiter = _flock_waiters.get(path)
        if waiter is None:
            waiter = _flock_waiters[path] = _FlockWaiter(path)
        return waiter


def _forget_flock_waiters() -> None:
    for waiter in _flock_waiters.values():
        waiter.forget_in_child()
    _flock_waiters.clear()


os.register_at_fork(after_in_child=_forget_flock_waiters)


#: Commits to a database, by this process's connections, between two checkpoints of it. A webhook batch
#: writes 20–40 pages and each gunicorn worker counts its own: with two, a checkpoint comes every 600–1,300
#: pages, about SQLite's own threshold of 1,000.
CHECKPOINT_EVERY = 16


class Checkpointer:
    """A thread of this process that checkpoints a database's WAL (``PASSIVE``: what is committed, without
    waiting for anyone) every ``every`` commits its connections report, on a connection of its own."""

    def __init__(self, every: int = CHECKPOINT_EVERY):
        self.every = every
        self.pid = os.getpid()
        self._commits: dict[str, int] = {}  # by database file
        self._due: set[str] = set()
        self._over_limit: set[str] = set()  # WALs still over WAL_SIZE_LIMIT after their checkpoint
        self._running = 0
        self._changed = threading.Condition()
        threading.Thread(target=self._run, name="esu-sqlite-checkpoints", daemon=True).start()

    def committed(self, database: str) -> None:
        """One more commit to ``database``: every ``every``-th makes a checkpoint of it due."""
        with self._changed:
            count = self._commits[database] = self._commits.get(database, 0) + 1
            if count % self.every == 0:
                self._due.add(database)
                self._changed.notify_all()

    def wait_until_idle(self, timeout: float | None = None) -> bool:
        """Until every due checkpoint has run; False if ``timeout`` passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._due and not self._running, timeout)

    def wait_for(self, predicate, timeout: float | None = None) -> bool:
        """Until ``predicate()`` holds, checked after each round of checkpoints; False if ``timeout`` passed
        first."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                # With a WAL left over the limit, try again after a while even if no commit comes.
                self._changed.wait_for(lambda: self._due, TRUNCATE_RETRY_SECONDS if self._over_limit else None)
                due, self._due = self._due | self._over_limit, set()
                self._over_limit = set()
                self._running = len(due)
            over = {database for database in due if not checkpoint(database)}
            with self._changed:
                self._over_limit |= over
                self._running = 0
                self._changed.notify_all()


def wal_size(database: str) -> int:
    """The size in bytes of ``database``'s WAL file (0 when there is none)."""
    try:
        return os.stat(f"{Path(database).resolve()}-wal").st_size
    except FileNotFoundError:
        return 0


def checkpoint(database: str) -> bool:
    """A ``PASSIVE`` checkpoint of ``database``'s WAL; then, should the WAL file be larger than
    :data:`WAL_SIZE_LIMIT`, a ``TRUNCATE`` one under the writer lock. False when the WAL is still over the
    limit (readers kept using it). A failure is only logged: the next checkpoint copies what this one did not."""
    try:
        # Read-write, not create: a database removed since (a test's) is not made again, empty.
        connection = sqlite3.connect(Path(database).resolve().as_uri() + "?mode=rw", timeout=0, uri=True)
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            if wal_size(database) <= WAL_SIZE_LIMIT:
                return True
            lock_path = writer_lock_path(database)
            fd = _take_writer_lock(lock_path, _process_lock(lock_path), 5.0)
            try:
                # Writers wait behind the lock; readers that still use the WAL get a moment to finish.
                connection.execute(f"PRAGMA busy_timeout={TRUNCATE_WAIT_MS}")
                busy, _frames, _copied = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                _give_writer_lock(fd, _process_lock(lock_path))
            return not busy
        finally:
            connection.close()
    except sqlite3.Error as error:
        log.warning("SQLite checkpoint of %s failed: %s", database, error)
        return True


_checkpointer: Checkpointer | None = None


def checkpointer() -> Checkpointer:
    """This process's checkpointer (a forked child starts its own: threads do not survive ``fork``)."""
    global _checkpointer
    with _process_locks_guard:
        if _checkpointer is None or _checkpointer.pid != os.getpid():
            _checkpointer = Checkpointer()
        return _checkpointer


class QueuedWritersConnection(sqlite3.Connection):
    """A pysqlite connection whose write transactions hold the database's writer lock file."""

    def __init__(self, database, timeout: float = 5.0, *args, **kwargs):
        super().__init__(database, timeout, *args, **kwargs)
        self._wait = timeout
        self._busy_timeout_ms = round(timeout * 1000)  # SQLite's, as connected
        self._busy_timeout_lowered = False  # for this transaction, by a bounded take_writer_lock
        self._lock_path = writer_lock_path(database)
        self._process_lock = _process_lock(self._lock_path) if self._lock_path else None
        self._lock_fd: int | None = None  # open only while this connection holds the lock
        self._database = str(database)
        if self._lock_path is not None:
            super().execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's job, outside the writer lock
            super().execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")

    def cursor(self, factory=None):
        return super().cursor(factory or QueuedWritersCursor)

    def execute(self, sql, parameters=(), /):
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql, parameters, /):
        return self.cursor().executemany(sql, parameters)

    def take_writer_lock(self, within: float | None = None) -> None:
        """Hold the writer lock until the transaction ends. With ``within``, the transaction waits at most
        that many seconds for the database in all, or raises ``sqlite3.OperationalError``: for this lock
        now, then for SQLite's own (its busy timeout lowered to what is left, until the transaction ends)."""
        if self._lock_fd is not None or self._lock_path is None:
            return
        if within is None:
            self._lock_fd = _take_writer_lock(self._lock_path, self._process_lock, self._wait)
            return
        deadline = time.monotonic() + within
        if not self._process_lock.acquire(timeout=within):
            raise sqlite3.OperationalError("database is locked (another thread of this process is writing)")
        try:
            self._lock_fd = _flock_waiter(self._lock_path).take(max(0.0, deadline - time.monotonic()))
        except BaseException:
            self._process_lock.release()
            raise
        left_ms = max(1, round((deadline - time.monotonic()) * 1000))
        super().execute(f"PRAGMA busy_timeout = {left_ms}")
        self._busy_timeout_lowered = True

    def _restore_busy_timeout(self) -> None:
        if self._busy_timeout_lowered:
            self._busy_timeout_lowered = False
            try:
                super().execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            except sqlite3.ProgrammingError:  # closed: no transaction will follow on it
                pass

    def give_writer_lock(self) -> None:
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            _give_writer_lock(fd, self._process_lock)

    def commit(self):
        wrote = self._lock_fd is not None
        try:
            super().commit()
        finally:
            if not self.in_transaction:
                self.give_writer_lock()
                self._restore_busy_timeout()
        if wrote:
            checkpointer().committed(self._database)

    def rollback(self):
        try:
            super().rollback()
        finally:
            self.give_writer_lock()
            self._restore_busy_timeout()

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


def _take_writer_lock(lock_path: str, process_lock: threading.Lock, wait: float) -> int:
    """Queue for the writer lock: this process's threads first (for at most ``wait`` seconds), then the
    processes, on the lock file. Answers the descriptor that holds it."""
    if not process_lock.acquire(timeout=wait):
        raise sqlite3.OperationalError("database is locked (another thread of this process is writing)")
    try:
        fd = _open_lock_file(lock_path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
    except BaseException:
        process_lock.release()
        raise
    return fd


def _give_writer_lock(fd: int, process_lock: threading.Lock) -> None:
    os.close(fd)  # closing the descriptor releases the flock
    process_lock.release()


def writer_lock_path(database) -> str | None:
    """``<database>-writer`` beside a database file; None for an in-memory database."""
    name = str(database)
    if name in ("", ":memory:") or name.startswith("file:") or "mode=memory" in name:
        return None
    return str(Path(name).resolve()) + "-writer"


def tune(engine) -> None:
    """WAL lets readers (progress polls, the admin) run beside the writer; foreign keys are off by default.

    And two faults of the files are survived:

    - A connection opened while the database file was read-only stays read-only, SQLite's way, after the file
      is writable again: every write through it failed until a restart ("attempt to write a readonly
      database"). Such an error now throws it away, with every connection of the pool opened before it
      (SQLAlchemy's disconnect handling); the next ones open the file read-write as soon as it is.
    - The ``-shm`` file (the WAL's index, which SQLite maps into memory) cut short under a running process
      killed it at the next read of the mapping (SIGBUS), with its requests in flight; removed, the process
      went on with an index no other process saw. Before each checkout the file is looked at: one cut short
      is given its length back (zeros, which SQLite rebuilds the index from the WAL over), and one removed or
      replaced makes the pool open its connections again, on the file that is there now.
    """
    if engine.dialect.name != "sqlite":
        return
    from sqlalchemy import event, exc

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        record.info[_SHM] = _shm_seen(dbapi_connection)

    @event.listens_for(engine, "handle_error")
    def read_only_is_a_disconnect(context):
        if isinstance(context.original_exception, sqlite3.OperationalError) \
                and "readonly database" in str(context.original_exception):
            context.is_disconnect = True

    @event.listens_for(engine, "checkout")
    def shm_still_there(dbapi_connection, record, _proxy):
        path = record.info.get(_SHM)
        if path is None:
            return
        with _process_locks_guard:
            if path not in _shm_files:  # another checkout found it replaced: this connection is opened again
                return
            inode, size = _shm_files[path]
            try:
                now = os.stat(path)
            except FileNotFoundError:
                now = None
            if now is None or now.st_ino != inode:
                del _shm_files[path]  # the connections opened again record the file that is there
                log.warning("the SQLite index %s was removed or replaced: opening the connections again", path)
                raise exc.InvalidatePoolError(f"{path} was removed or replaced")
            if now.st_size < size:
                log.warning("the SQLite index %s was cut short (%d of %d bytes): giving it its length back",
                            path, now.st_size, size)
                os.truncate(path, size)
            else:
                _shm_files[path] = (inode, now.st_size)


_SHM = "esu_sqlite_shm"
#: The ``-shm`` files this process has mapped: (inode, the largest size seen), by path.
_shm_files: dict[str, tuple[int, int]] = {}


def _shm_seen(dbapi_connection) -> str | None:
    """Note the ``-shm`` file of a new connection; its path (None in memory, or before there is one)."""
    lock_path = getattr(dbapi_connection, "_lock_path", None)
    if lock_path is None:
        return None
    path = lock_path.removesuffix("-writer") + "-shm"
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    with _process_locks_guard:
        inode, size = _shm_files.get(path, (stat.st_ino, 0))
        _shm_files[path] = (stat.st_ino, max(size, stat.st_size) if inode == stat.st_ino else stat.st_size)
    return path


def hold_writer_lock(connection, within: float | None = None) -> None:
    """Take the writer lock for ``connection``'s transaction now, ahead of its first write; it is given back
    when the transaction ends. With ``within``, the transaction waits at most that many seconds for the
    database (``QueuedWritersConnection.take_writer_lock``). Nothing to do on another database, or on SQLite
    in memory."""
    dbapi_connection = connection.connection.dbapi_connection
    if isinstance(dbapi_connection, QueuedWritersConnection):
        dbapi_connection.take_writer_lock(within)
