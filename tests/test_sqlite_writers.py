"""SQLite writers queue on a lock file instead of polling the database lock (esu/sqlite.py)."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from esu import sqlite as esu_sqlite
from esu.sqlite import CHECKPOINT_EVERY, QueuedWritersConnection, checkpointer, writer_lock_path


def connect(path, timeout: float = 5.0) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=timeout, factory=QueuedWritersConnection, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    return connection


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "queue.sqlite"
    connection = connect(path)
    connection.execute("CREATE TABLE rows (worker INTEGER, n INTEGER)")
    connection.close()
    return path


def insert_many(path: str, worker: int, count: int) -> None:
    # A busy timeout of 1 ms: without the queue, two processes writing this fast meet "database is locked".
    connection = connect(path, timeout=0.001)
    for n in range(count):
        connection.execute("INSERT INTO rows VALUES (?, ?)", (worker, n))
        connection.commit()
    connection.close()


def test_writers_in_two_processes_queue_instead_of_failing(database):
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=insert_many, args=(str(database), worker, 400)) for worker in (1, 2)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
    assert [process.exitcode for process in workers] == [0, 0]
    connection = connect(database)
    counts = dict(connection.execute("SELECT worker, count(*) FROM rows GROUP BY worker"))
    connection.close()
    assert counts == {1: 400, 2: 400}


def test_a_plain_connection_with_the_same_timeout_does_meet_the_lock(database):
    """The yardstick for the test above: the failure it prevents is real."""
    holder = connect(database)
    holder.execute("INSERT INTO rows VALUES (0, 0)")  # holds SQLite's write lock until it commits
    plain = sqlite3.connect(database, timeout=0.001)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        plain.execute("INSERT INTO rows VALUES (9, 9)")
    plain.close()
    holder.close()


@pytest.mark.parametrize("end", ["rollback", "close"])
def test_the_lock_is_given_back_when_the_transaction_ends_any_way(database, end):
    first, second = connect(database), connect(database, timeout=1)
    first.execute("INSERT INTO rows VALUES (1, 1)")
    getattr(first, end)()
    second.execute("INSERT INTO rows VALUES (2, 2)")
    second.commit()
    assert second.execute("SELECT worker FROM rows").fetchall() == [(2,)]
    first.close()
    second.close()


def test_a_thread_waiting_on_itself_fails_after_the_timeout_instead_of_hanging(database):
    first, second = connect(database), connect(database, timeout=0.2)
    first.execute("INSERT INTO rows VALUES (1, 1)")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        second.execute("INSERT INTO rows VALUES (2, 2)")
    first.close()
    second.close()


def hold_lock_file(path) -> int:
    """The writer lock as another process holds it: on a descriptor of its own."""
    fd = os.open(writer_lock_path(path), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def finishes(work) -> bool:
    """Whether ``work`` ends, on a thread of its own, within a generous bound (rather than hanging the test)."""
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout=30)
    return not thread.is_alive()


def test_a_bounded_wait_for_the_writer_lock_gives_up_and_leaves_the_lock_to_the_next_writer(database):
    held, waiting = hold_lock_file(database), connect(database)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        waiting.take_writer_lock(within=0.2)
    os.close(held)
    # The wait given up on holds nothing once the lock comes: the next writer gets it, with a bound or without.
    assert finishes(lambda: waiting.take_writer_lock(within=30))
    waiting.rollback()
    other = connect(database)
    assert finishes(lambda: other.execute("INSERT INTO rows VALUES (2, 2)"))
    other.commit()
    waiting.execute("INSERT INTO rows VALUES (3, 3)")
    waiting.commit()
    assert other.execute("SELECT worker FROM rows ORDER BY worker").fetchall() == [(2,), (3,)]
    other.close()
    waiting.close()


def test_a_bounded_wait_lowers_sqlites_busy_timeout_until_the_transaction_ends(database):
    connection = connect(database, timeout=15)

    def busy_timeout() -> int:
        return connection.execute("PRAGMA busy_timeout").fetchone()[0]

    connection.take_writer_lock(within=0.5)
    assert 0 < busy_timeout() <= 500  # another process writing without the lock file: SQLite waits no longer
    connection.execute("INSERT INTO rows VALUES (1, 1)")
    connection.commit()
    assert busy_timeout() == 15000
    connection.take_writer_lock(within=0.5)
    connection.rollback()
    assert busy_timeout() == 15000
    connection.close()


def test_readers_do_not_wait_for_the_writer(database):
    writer, reader = connect(database), connect(database, timeout=0.2)
    writer.execute("INSERT INTO rows VALUES (1, 1)")
    assert reader.execute("SELECT count(*) FROM rows").fetchone() == (0,)  # WAL: the last committed state
    writer.close()
    reader.close()


def wal_size(path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def write_and_checkpoint(path, rounds: int) -> list[int]:
    """``rounds`` times: CHECKPOINT_EVERY commits of a 20 KB row each, then wait for the checkpointer.
    Answers the WAL file's size after each round."""
    connection = connect(path)
    sizes = []
    for _round in range(rounds):
        for _commit in range(CHECKPOINT_EVERY):
            connection.execute("INSERT INTO rows VALUES (?, 0)", (b"x" * 20_000,))
            connection.commit()
        assert checkpointer().wait_until_idle(timeout=30)
        sizes.append(wal_size(path))
    connection.close()
    return sizes


def test_commits_leave_checkpoints_to_a_thread_and_the_wal_stays_small(database):
    # A commit never copies the WAL back itself, under the writer lock: SQLite's automatic checkpoint is off.
    connection = connect(database)
    assert connection.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    connection.close()
    sizes = write_and_checkpoint(database, rounds=20)
    # Checkpointed after each round, the WAL is written again from its start: one round's size, not twenty.
    assert sizes[-1] <= 2 * sizes[0], sizes
    # The row count shows every commit went to the database, checkpoints or not.
    connection = connect(database)
    assert connection.execute("SELECT count(*) FROM rows").fetchone() == (20 * CHECKPOINT_EVERY,)
    connection.close()


def test_a_wal_grown_while_readers_used_it_is_emptied_once_they_let_go(database, monkeypatch):
    """Under a steady load some reader always uses the WAL, so no checkpoint lets SQLite write it again from
    its start and it only grows (1.99 GB after 84,000 deliveries, in a run), keeping its size after."""
    limit = 1024 * 1024
    monkeypatch.setattr(esu_sqlite, "WAL_SIZE_LIMIT", limit, raising=False)
    monkeypatch.setattr(esu_sqlite, "TRUNCATE_WAIT_MS", 10, raising=False)
    pooled = connect(database)  # an idle connection of the pool: the WAL is not deleted when the others close
    reader = sqlite3.connect(database)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM rows").fetchall()  # a read in progress for the whole load
    grown = write_and_checkpoint(database, rounds=12)  # 16 commits of 20 KB a round: 3.8 MB
    assert grown[-1] > 3 * limit, grown  # nothing could empty it while the reader used it
    reader.rollback()  # the load stops: the last reader lets go
    reader.close()

    # The checkpointer's next try (the writers have paused: no commit comes) empties it.
    esu_sqlite.checkpoint(str(database))
    assert wal_size(database) == 0
    # And under the writers it stays within the limit.
    sizes = write_and_checkpoint(database, rounds=12)
    assert max(sizes) <= limit + CHECKPOINT_EVERY * 25_000, sizes
    connection = connect(database)
    assert connection.execute("SELECT count(*) FROM rows").fetchone() == (24 * CHECKPOINT_EVERY,)
    connection.close()
    pooled.close()


def test_the_checkpointer_tries_again_when_writers_pause(database, monkeypatch):
    """A WAL still over the limit after its checkpoint (a reader was using it) is not left so until the next
    commits: the checkpointer comes back to it by itself."""
    monkeypatch.setattr(esu_sqlite, "WAL_SIZE_LIMIT", 64 * 1024)
    monkeypatch.setattr(esu_sqlite, "TRUNCATE_WAIT_MS", 10)
    monkeypatch.setattr(esu_sqlite, "TRUNCATE_RETRY_SECONDS", 0.01)
    pooled = connect(database)
    reader = sqlite3.connect(database)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM rows").fetchall()
    write_and_checkpoint(database, rounds=1)
    assert wal_size(database) > 64 * 1024
    reader.rollback()
    reader.close()
    # No commit comes now; each round of the checkpointer is awaited, not slept on.
    assert checkpointer().wait_for(lambda: wal_size(database) == 0, timeout=30)
    pooled.close()


def checkpoint_in_child(path: str) -> None:
    sizes = write_and_checkpoint(Path(path), rounds=3)
    assert sizes[-1] <= 2 * sizes[0], sizes


def test_a_forked_process_checkpoints_with_a_thread_of_its_own(database):
    # gunicorn forks its workers: a thread the parent started is not in the child.
    parent = checkpointer()
    child = multiprocessing.get_context("fork").Process(target=checkpoint_in_child, args=(str(database),))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert checkpointer() is parent


def test_the_lock_file_sits_beside_the_database_and_memory_has_none(tmp_path):
    assert writer_lock_path(tmp_path / "esu.sqlite") == str(tmp_path / "esu.sqlite") + "-writer"
    assert writer_lock_path(":memory:") is None
