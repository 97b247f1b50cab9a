"""Where the simulator keeps what it knows: one table of JSON documents, keyed by kind and key.

Every worker and thread of every process that reaches the database sees the same businesses, codes,
tokens and faults. Mounted in esu the table is in the app's database (a migration makes it; nothing of
esu's own reads it); on its own the simulator has a database of its own (:func:`standalone`).

A change is a compare-and-set: the document is written back only if its version is still the one read,
and read again otherwise. So when two workers exchange one code at once, or take a fault's last failure,
one of them wins and the other sees what the winner wrote.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import StaticPool

from ..extensions import db

documents = sa.Table(
    "meta_simulator_documents",
    db.metadata,
    # The order documents were made in: calls, faults, numbers and templates are listed in it.
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    # What a document is listed under: a number's or template's WABA, a fault's operation.
    sa.Column("parent", sa.String(64)),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.UniqueConstraint("kind", "key"),
    sa.Index("ix_meta_simulator_documents_kind_parent", "kind", "parent"),
)


_doc = documents.c
# Statements built once, not per call: on SQLite, building one costs about as much as running it. (UPDATE
# keeps the columns' own names for its SET, hence the other names of its parameters.)
_GET = sa.select(_doc.version, _doc.data).where(_doc.kind == sa.bindparam("kind"), _doc.key == sa.bindparam("key"))
_FIND = sa.select(_doc.kind, _doc.data).where(
    _doc.kind.in_(sa.bindparam("kinds", expanding=True)), _doc.key == sa.bindparam("key")).limit(1)
_ROWS = sa.select(_doc.key, _doc.version, _doc.data).where(_doc.kind == sa.bindparam("kind")).order_by(_doc.seq)
_ROWS_UNDER = _ROWS.where(_doc.parent.in_(sa.bindparam("parents", expanding=True)))
_SWAP = documents.update().where(
    _doc.kind == sa.bindparam("b_kind"), _doc.key == sa.bindparam("b_key"), _doc.version == sa.bindparam("read"),
).values(data=sa.bindparam("b_data"), version=sa.bindparam("read") + 1)
_ADD = documents.insert()
_DROP = documents.delete().where(_doc.kind == sa.bindparam("kind"), _doc.key == sa.bindparam("key"),
                                 _doc.version == sa.bindparam("read"))


#: A document as listed: its key, version and data.
Row = tuple[str, int, dict[str, Any]]


def new_key() -> str:
    """A key for a document nobody looks up by key (a call, a fault)."""
    return uuid.uuid4().hex


class Documents:
    """The documents in one database; ``create`` makes the table on first use, for a database of the
    simulator's own."""

    def __init__(self, engine: sa.Engine, *, create: bool = False):
        self.engine = engine
        self._missing = create
        self._creating = threading.Lock()

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """A transaction, for writing."""
        self._make_table()
        with self.engine.begin() as connection:
            yield connection

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        """A connection for one read. On PostgreSQL without a transaction around it: no BEGIN and COMMIT
        (SQLite's driver begins none before a read)."""
        self._make_table()
        with self.engine.connect() as connection:
            if self.engine.dialect.name == "postgresql":
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection

    def _make_table(self) -> None:
        if self._missing:
            with self._creating:
                if self._missing:
                    documents.create(self.engine, checkfirst=True)
                    self._missing = False

    # -- reading -----------------------------------------------------------------------------------------

    def get(self, kind: str, key: str) -> tuple[int, dict[str, Any]] | None:
        """A document's version and data, or None."""
        with self.reading() as connection:
            row = connection.execute(_GET, {"kind": kind, "key": key}).first()
        return (row.version, row.data) if row else None

    def find(self, key: str, kinds: Iterable[str]) -> tuple[str, dict[str, Any]] | None:
        """The document of one of ``kinds`` with this key, and its kind."""
        with self.reading() as connection:
            row = connection.execute(_FIND, {"kinds": list(kinds), "key": key}).first()
        return (row.kind, row.data) if row else None

    def rows(self, kind: str, parents: Iterable[str] | None = None) -> list[Row]:
        """Key, version and data of each document of a kind (under one of ``parents``, if given), oldest
        first."""
        with self.reading() as connection:
            if parents is None:
                return [tuple(row) for row in connection.execute(_ROWS, {"kind": kind})]
            under = {"kind": kind, "parents": list(parents)}
            return [tuple(row) for row in connection.execute(_ROWS_UNDER, under)]

    def keys(self, kind: str) -> list[str]:
        with self.reading() as connection:
            return list(connection.scalars(
                sa.select(documents.c.key).where(documents.c.kind == kind).order_by(documents.c.seq)))

    def count(self, kind: str) -> int:
        with self.reading() as connection:
            return connection.scalar(sa.select(sa.func.count()).where(documents.c.kind == kind))

    # -- writing -----------------------------------------------------------------------------------------

    def add(self, rows: Iterable[tuple[str, str, str | None, dict[str, Any]]]) -> None:
        """New documents, ``(kind, key, parent, data)`` each, in one transaction."""
        values = [{"kind": kind, "key": key, "parent": parent, "version": 1, "data": data}
                  for kind, key, parent, data in rows]
        with self.begin() as connection:
            connection.execute(_ADD, values)

    def put(self, kind: str, key: str, data: dict[str, Any], parent: str | None = None) -> None:
        """Write a document whatever it held before, making it if need be."""
        insert = (postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert)(documents)
        statement = insert.values(kind=kind, key=key, parent=parent, version=1, data=data).on_conflict_do_update(
            index_elements=[documents.c.kind, documents.c.key],
            set_={"data": data, "version": documents.c.version + 1})
        with self.begin() as connection:
            connection.execute(statement)

    def swap(self, kind: str, key: str, version: int, data: dict[str, Any]) -> bool:
        """Write ``data`` if the document is still at ``version``; False if another writer changed it."""
        with self.begin() as connection:
            return connection.execute(
                _SWAP, {"b_kind": kind, "b_key": key, "read": version, "b_data": data}).rowcount == 1

    def drop(self, kind: str, key: str, version: int) -> bool:
        """Remove the document if it is still at ``version``; False if another writer changed it."""
        with self.begin() as connection:
            return connection.execute(_DROP, {"kind": kind, "key": key, "read": version}).rowcount == 1

    def change(self, kind: str, key: str, change: Callable[[dict[str, Any]], Any]) -> Any:
        """Let ``change`` alter a document's data in place and write it back, again from what is stored
        if another writer got there first. Answers what ``change`` answers; KeyError when there is no such
        document. An exception from ``change`` leaves the document as it was."""
        while True:
            found = self.get(kind, key)
            if found is None:
                raise KeyError(key)
            version, data = found
            result = change(data)
            if self.swap(kind, key, version, data):
                return result

    def clear(self, *kinds: str) -> None:
        """Remove the documents of these kinds, or every document."""
        statement = documents.delete()
        if kinds:
            statement = statement.where(documents.c.kind.in_(kinds))
        with self.begin() as connection:
            connection.execute(statement)


class InMemoryDocuments(Documents):
    """Documents in SQLite in memory: one connection, kept open, that one thread at a time uses."""

    def __init__(self):
        super().__init__(sa.create_engine("sqlite://", poolclass=StaticPool,
                                          connect_args={"check_same_thread": False}))
        self._turn = threading.Lock()
        self._connection: sa.Connection | None = None

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        with self.reading() as connection, connection.begin():
            yield connection

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        with self._turn:
            if self._connection is None:
                self._connection = self.engine.connect()
                documents.create(self._connection)
                self._connection.commit()
            try:
                yield self._connection
            finally:
                self._connection.rollback()  # ends what a read began, so the next write can begin


def standalone(url: str | None) -> Documents:
    """The documents of a simulator running on its own: in the database at ``url``, its table made on
    first use, or else in SQLite in memory."""
    if not url:
        return InMemoryDocuments()
    if url.startswith("sqlite"):
        from ..sqlite import QueuedWritersConnection, tune

        engine = sa.create_engine(url, connect_args={"timeout": 15, "factory": QueuedWritersConnection})
        tune(engine)
        return Documents(engine, create=True)
    return Documents(sa.create_engine(url), create=True)
