"""Pooled connections are pinged before use only after sitting idle, and one that fails is replaced."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from esu import pool


@pytest.fixture
def engine(app_config):
    """An engine of its own on the suite's database, as create_app makes it on PostgreSQL."""
    engine = sa.create_engine(app_config["SQLALCHEMY_DATABASE_URI"], pool_pre_ping=False)
    yield engine
    engine.dispose()


@pytest.fixture
def pings(engine, monkeypatch):
    made = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection):
        made.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return made


def select_one(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.text("SELECT 1"))


def test_a_connection_used_moments_ago_is_not_pinged(engine, pings):
    pool.ping_when_idle(engine, idle_seconds=3600)
    assert [select_one(engine) for _ in range(3)] == [1, 1, 1]
    assert pings == []


def test_an_idle_connection_is_pinged_before_use(engine, pings):
    pool.ping_when_idle(engine, idle_seconds=-1)  # every connection counts as idle
    assert select_one(engine) == 1
    assert select_one(engine) == 1
    assert len(pings) == 2


def test_an_idle_connection_that_went_away_is_replaced(engine, pings):
    pool.ping_when_idle(engine, idle_seconds=-1)
    with engine.connect() as connection:
        gone = connection.connection.dbapi_connection
    gone.close()  # as when the server restarted while it sat in the pool

    with engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT 1")) == 1
        assert connection.connection.dbapi_connection is not gone
    assert pings[0] is gone
