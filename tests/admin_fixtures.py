"""The admin's test fixtures (a pytest plugin: admin test modules name it in ``pytest_plugins``)."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from jinja2 import StrictUndefined

from esu.extensions import db
from esu.models import admin as admin_models
from esu.models.admin import ADMIN_ID, AdminAccount, new_session_nonce

from .admin_support import PASSWORD, AdminClient, log_in_session


@pytest.fixture
def fast_hashing(monkeypatch):
    """argon2id with tiny parameters: the real ones cost a tenth of a second or more per login, and these
    tests are about the flow. The real parameters are checked where they matter (set-password, rehash)."""
    monkeypatch.setattr(admin_models, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def strict_templates(app):
    """A template that names a missing variable fails the test instead of printing nothing."""
    app.jinja_env.undefined = StrictUndefined


@pytest.fixture
def stored_admin(app, fast_hashing, strict_templates) -> AdminAccount:
    """The admin account, with PASSWORD."""
    account = AdminAccount(id=ADMIN_ID, password_hash=admin_models._hasher.hash(PASSWORD),
                           session_nonce=new_session_nonce())
    db.session.add(account)
    db.session.commit()
    return account


@pytest.fixture
def admin(client, stored_admin) -> AdminClient:
    log_in_session(client, stored_admin)
    return AdminClient(client)


@pytest.fixture
def count_queries(app):
    """``with count_queries() as statements:`` collects every SQL statement sent inside the block.

    The block starts with an empty session, as a real request does: tests share one app context, so
    rows loaded earlier would otherwise come from the identity map for free.
    """

    @contextmanager
    def counting():
        db.session.remove()
        statements: list[str] = []

        def before(conn, cursor, statement, parameters, context, executemany):
            statements.append(statement)

        sa.event.listen(db.engine, "before_cursor_execute", before)
        try:
            yield statements
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", before)

    return counting


