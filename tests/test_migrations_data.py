"""Migrations that rewrite stored data: what a database made by an older esu holds after `flask db upgrade`."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from sqlalchemy.dialects import postgresql

from esu import create_app
from esu.extensions import db
from esu.models import now_utc

from .conftest import META

BEFORE_PREFILL = "f7bc0ea24b18"
PREFILL = "b3d5e7f90a12"


def migrated_to(fresh_database, revision: str):
    """An app whose fresh database (this run's backend) is migrated up to ``revision``; its alembic config."""
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": fresh_database(), **META})
    context = app.app_context()
    context.push()
    migrate = app.extensions["migrate"]
    config = migrate.migrate.get_config(migrate.directory)
    command.upgrade(config, revision)
    return context, config


#: The table as the older revisions left it (not the model, which may have moved on).
PAGES = sa.table("signup_pages", sa.column("slug", sa.String()), sa.column("title", sa.String()),
                 sa.column("prefill", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
                 sa.column("enabled", sa.Boolean()), sa.column("feature_type", sa.String()),
                 sa.column("created_at", sa.DateTime(timezone=True)),
                 sa.column("updated_at", sa.DateTime(timezone=True)))


def insert_page(slug: str, prefill: dict) -> None:
    with db.engine.begin() as connection:
        connection.execute(PAGES.insert().values(slug=slug, title=slug, prefill=prefill, enabled=True,
                                                 feature_type="", created_at=now_utc(), updated_at=now_utc()))


def stored_prefill() -> dict[str, dict]:
    with db.engine.connect() as connection:
        return dict(connection.execute(sa.select(PAGES.c.slug, PAGES.c.prefill)).all())


def test_stored_prefill_becomes_metas_extras_setup(fresh_database):
    context, config = migrated_to(fresh_database, BEFORE_PREFILL)
    try:
        flat = {"name": "Wind & Wool", "phone": {"code": "1", "number": "6505559999"}}
        insert_page("from-the-shell", flat)
        insert_page("phone-only", {"phone": {"code": 44, "number": "2071234567"}})
        insert_page("from-the-admin", {"business": {"name": "Spring Co"}})
        insert_page("wrapped-twice", {"business": {"business": {"name": "Twice"}}})
        insert_page("profile", {"phone": {"displayName": "Wind & Wool", "category": "APPAREL"}})
        insert_page("empty", {})

        command.upgrade(config, PREFILL)
        assert stored_prefill() == {
            "from-the-shell": {"business": flat},
            "phone-only": {"business": {"phone": {"code": 44, "number": "2071234567"}}},
            "from-the-admin": {"business": {"name": "Spring Co"}},
            "wrapped-twice": {"business": {"name": "Twice"}},
            "profile": {"phone": {"displayName": "Wind & Wool", "category": "APPAREL"}},
            "empty": {},
        }

        command.downgrade(config, BEFORE_PREFILL)
        assert stored_prefill()["from-the-shell"] == flat
    finally:
        db.engine.dispose()
        context.pop()


BEFORE_WABA_ASSETS = "b3e5a7c9d1f2"
WABA_ASSETS = "e5b7d9f1a3c6"
ONBOARDINGS = sa.table("onboardings", sa.column("id", sa.Integer()), sa.column("event", sa.String()),
                       sa.column("source", sa.String()), sa.column("status", sa.String()),
                       sa.column("waba_id", sa.String()), sa.column("created_at", sa.DateTime(timezone=True)),
                       sa.column("updated_at", sa.DateTime(timezone=True)))
ASSETS = sa.table("onboarding_assets", sa.column("onboarding_id", sa.Integer()), sa.column("kind", sa.String()),
                  sa.column("asset_id", sa.String()), sa.column("created_at", sa.DateTime(timezone=True)))


def test_every_onboardings_waba_becomes_one_of_its_assets(fresh_database):
    """Forwarding finds an event's onboardings among their ``waba`` assets: those PARTNER_ADDED made before
    it kept one (none) get theirs; one that has it already keeps a single row; no WABA, no row."""
    context, config = migrated_to(fresh_database, BEFORE_WABA_ASSETS)
    try:
        with db.engine.begin() as connection:
            for id_, source, waba_id in ((1, "webhook", "111"), (2, "callback", "222"), (3, "callback", None)):
                connection.execute(ONBOARDINGS.insert().values(
                    id=id_, event="FINISH", source=source, status="completed", waba_id=waba_id,
                    created_at=now_utc(), updated_at=now_utc()))
            connection.execute(ASSETS.insert().values(onboarding_id=2, kind="waba", asset_id="222",
                                                      created_at=now_utc()))

        command.upgrade(config, WABA_ASSETS)

        with db.engine.connect() as connection:
            rows = connection.execute(sa.select(ASSETS.c.onboarding_id, ASSETS.c.kind, ASSETS.c.asset_id)
                                      .order_by(ASSETS.c.onboarding_id)).all()
        assert [tuple(row) for row in rows] == [(1, "waba", "111"), (2, "waba", "222")]
    finally:
        db.engine.dispose()
        context.pop()


BEFORE_NAME_SEARCH = "a4c6e8f0b2d4"
NAME_SEARCH = "b6d8f0a2c4e6"


def test_business_names_are_kept_lower_cased_for_the_admins_search(fresh_database):
    """The admin searches any part of a name in any case and script through ``business_name_lower``: the names
    stored before it are lower-cased as the model's listener does (not only their ASCII letters), and the
    search finds them."""
    context, config = migrated_to(fresh_database, BEFORE_NAME_SEARCH)
    try:
        with db.engine.begin() as connection:
            named = sa.table("onboardings", *(sa.column(column.name, column.type) for column in ONBOARDINGS.c),
                             sa.column("business_name", sa.String()))
            for id_, name in ((1, "ÇAFÉ Ñandú"), (2, "Toko BUDI"), (3, None)):
                connection.execute(named.insert().values(
                    id=id_, event="FINISH", source="callback", status="completed", business_name=name,
                    created_at=now_utc(), updated_at=now_utc()))

        command.upgrade(config, NAME_SEARCH)

        lowered = sa.table("onboardings", sa.column("id", sa.Integer()), sa.column("business_name_lower", sa.String()))
        with db.engine.connect() as connection:
            rows = dict(connection.execute(sa.select(lowered.c.id, lowered.c.business_name_lower)).all())
        assert rows == {1: "çafé ñandú", 2: "toko budi", 3: None}

        from esu.blueprints.admin.search import name_contains
        from esu.models import Onboarding
        assert db.session.scalars(sa.select(Onboarding.id).where(name_contains("aFÉ Ñ"))).all() == [1]
    finally:
        db.session.remove()
        db.engine.dispose()
        context.pop()
