"""esu: onboard WhatsApp Business customers through Meta's Embedded Signup on your own pages."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask

from . import config as config_module

if TYPE_CHECKING:
    import requests


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app. Reads configuration only: no database, network or exit in here."""
    app = Flask(__name__, instance_relative_config=True)
    config_module.load(app, test_config)
    register_logging(app)
    register_security(app)
    register_extensions(app)
    register_blueprints(app)
    register_commands(app)
    register_template_globals(app)
    return app


def register_logging(app: Flask) -> None:
    from . import logs

    logs.init_app(app)


def register_security(app: Flask) -> None:
    from . import security

    security.init_app(app)


def register_extensions(app: Flask) -> None:
    from . import crypto, graph, i18n, pool, signup_cache, sqlite
    from .extensions import csrf, db, limiter, migrate, render_migration_item

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(app.root_path).parent / "migrations"),
                     render_item=render_migration_item, compare_type=True)
    csrf.init_app(app)
    limiter.init_app(app)
    i18n.init_app(app)
    crypto.init_app(app)
    graph.init_app(app, graph_transport(app))
    signup_cache.init_app(app)
    with app.app_context():
        sqlite.tune(db.engine)
        if db.engine.dialect.name == "postgresql":
            pool.ping_when_idle(db.engine)


def graph_transport(app: Flask) -> requests.Session:
    """The Graph client's pooled session; in simulator mode, calls to the simulator's in-process origin go
    straight to this app's WSGI callable, where the simulator is mounted (over a socket, a single-threaded
    server would wait on itself)."""
    from .config import IN_PROCESS_SIMULATOR_ORIGIN
    from .graph import pooled_session

    session = pooled_session()
    if app.config["META_GRAPH_URL"].startswith(IN_PROCESS_SIMULATOR_ORIGIN):
        from .simulator.transport import WSGIAdapter

        session.mount(IN_PROCESS_SIMULATOR_ORIGIN + "/", WSGIAdapter(app))
    return session


def register_blueprints(app: Flask) -> None:
    from .blueprints import RowIdConverter, admin, errors, health, signup, webhooks

    app.url_map.converters["int"] = RowIdConverter  # before the routes that use it
    app.register_blueprint(errors.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(signup.bp)
    app.register_blueprint(admin.bp)
    webhooks.init_app(app)
    if app.config["ESU_SIMULATOR"]:
        from . import simulator

        simulator.init_app(app)


def register_commands(app: Flask) -> None:
    from . import check, cli

    cli.init_app(app)
    check.init_app(app)


def register_template_globals(app: Flask) -> None:
    @app.context_processor
    def inject_mode():
        return {"simulated_meta": app.config["ESU_SIMULATOR"]}
