"""Extension singletons, attached to the app by ``create_app``."""

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    # Named constraints, so migrations can alter and drop them on every database.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
# No default or application limits: only views decorated with ``limiter.limit`` are ever limited (never
# the webhook, which must answer Meta every time). Storage: RATELIMIT_STORAGE_URI, set in config.
limiter = Limiter(key_func=get_remote_address, headers_enabled=True)


def is_database_unavailable(error: BaseException | None) -> bool:
    """The database could not be reached or refused to work (down, locked, connection lost): worth a 503,
    which says "try again", rather than an answer about the request."""
    if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError,
                          sa_exc.DisconnectionError)):
        return True
    return isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated


def render_migration_item(type_, obj, autogen_context):
    """Write our column types into migrations as the plain SQLAlchemy types they store, so migration
    files never import application code."""
    from sqlalchemy.types import JSON, TypeDecorator

    if type_ != "type":
        return False
    if isinstance(obj, TypeDecorator):
        impl = obj.impl_instance if hasattr(obj, "impl_instance") else obj.impl
        if getattr(impl, "timezone", False):
            return "sa.DateTime(timezone=True)"
        return f"sa.{type(impl).__name__}()"
    if isinstance(obj, JSON) and getattr(obj, "_variant_mapping", None):
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return "sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')"
    return False
