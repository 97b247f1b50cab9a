"""SQLite's files misbehaving under a running esu: the database read-only for a while, the ``-shm`` index
cut short or removed. esu keeps serving, or says it cannot, and recovers by itself once the fault clears."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from esu import create_app
from esu.extensions import db
from esu.models import SignupEvent
from esu.sqlite import QueuedWritersConnection, tune

from .conftest import empty_tables, make_config


@pytest.fixture
def sqlite_app(fresh_database, simulator_server):
    """The app on a migrated SQLite file of its own (also when the suite runs on PostgreSQL)."""
    app = create_app(make_config(fresh_database("sqlite"), simulator_server.url))
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer a 500 as in production, instead of raising in the test
    with app.app_context():
        migrate = app.extensions["migrate"]
        command.upgrade(migrate.migrate.get_config(migrate.directory), "heads")
        from esu.cli import create_page

        create_page("demo", "Connect WhatsApp")
        db.session.commit()
        yield app
        empty_tables()


@pytest.fixture
def read_only(sqlite_app):
    """``read_only(True)``: connections opened from now on open the file read-only, as SQLite does when the
    file is not writable (it falls back to reading; as root a chmod would not stop this process writing, so
    the connection is asked for ``mode=ro`` instead). ``read_only(False)``: the file is writable again;
    connections already open stay as they were opened."""
    state = {"on": False}

    @sa.event.listens_for(db.engine, "do_connect")
    def open_read_only(_dialect, _record, cargs, cparams):
        if state["on"]:
            cargs[0] = Path(cargs[0]).resolve().as_uri() + "?mode=ro"
            cparams["uri"] = True

    def turn(on: bool) -> None:
        state["on"] = on
        if on:
            db.engine.dispose()  # the workers' connections reopen during the fault

    yield turn
    sa.event.remove(db.engine, "do_connect", open_read_only)


def test_writes_recover_once_the_file_is_writable_and_health_says_so(sqlite_app, read_only):
    client = sqlite_app.test_client()
    assert client.get("/healthz").status_code == 200

    read_only(True)
    assert client.post("/signup/demo/events", json={"kind": "view"}).status_code == 503  # try again: nothing was kept
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.json == {"database": "read-only", "migrations": "unknown", "error": "OperationalError"}

    read_only(False)  # no restart: the same pool, the same process
    assert client.post("/signup/demo/events", json={"kind": "view"}).status_code == 204
    assert client.get("/healthz").status_code == 200
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SignupEvent)) == 1


def write_through_a_fault(path: str, fault: str) -> None:
    """In a process of its own (a gunicorn worker): write, let ``fault`` happen to the -shm file under the
    open pool, then write again through the same pool."""
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"factory": QueuedWritersConnection})
    tune(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO rows VALUES (1)"))
    shm = f"{path}-shm"
    if fault == "cut":
        os.truncate(shm, 0)
    else:  # removed, and another process makes its own index and writes
        os.remove(shm)
        other = multiprocessing.get_context("spawn").Process(target=insert_one, args=(path,))
        other.start()
        other.join(timeout=60)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO rows VALUES (3)"))
    engine.dispose()


def insert_one(path: str) -> None:
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"factory": QueuedWritersConnection})
    tune(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO rows VALUES (2)"))
    engine.dispose()


# Cut short, the index is given its length back and nothing is lost. Removed, two processes used two
# indexes of one WAL for a moment and SQLite may lose a write of that moment (row 1 or 2); the worker then
# opens the index that is there, so what it writes next (row 3) is kept: before, it went on writing where
# no other process looked, and that was lost.
@pytest.mark.parametrize(("fault", "kept"), [("cut", {1, 3}), ("removed", {3})])
def test_a_cut_or_removed_shm_does_not_kill_the_worker_or_lose_later_writes(tmp_path, fault, kept):
    path = tmp_path / "faults.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"factory": QueuedWritersConnection})
    tune(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE rows (n INTEGER)"))
    engine.dispose()
    worker = multiprocessing.get_context("spawn").Process(target=write_through_a_fault, args=(str(path), fault))
    worker.start()
    worker.join(timeout=120)
    assert worker.exitcode == 0  # a cut index killed it with SIGBUS (-7)
    connection = sqlite3.connect(path)
    assert {n for (n,) in connection.execute("SELECT n FROM rows")} >= kept
    connection.close()
