"""Small helpers the onboarding tests share: reading a summary, calling the public endpoints, reading the
database as text."""

from __future__ import annotations

import secrets
import sqlite3
from collections import Counter

import requests
import sqlalchemy as sa

#: The Graph operation (as the simulator names it) each step calls.
STEP_OPERATIONS = {
    "exchange_code": "oauth_access_token",
    "confirm_ids": "debug_token",
    "read_waba": "waba",
    "subscribe_webhooks": "subscribed_apps",
    "assign_system_user": "assigned_users",
    "share_credit_line": "credit_sharing",
    "read_phone_number": "phone_number",
    "register_phone": "register",
    "fetch_templates": "message_templates",
}


def new_ref() -> str:
    """A client reference as the widget makes one (at least 16 url-safe characters)."""
    return secrets.token_hex(12)


def statuses(body: dict) -> dict[str, str]:
    return {step["name"]: step["status"] for step in body["steps"]}


def step(body: dict, name: str) -> dict:
    return next(item for item in body["steps"] if item["name"] == name)


def call_counts(simulator) -> Counter:
    """How many Graph calls of each operation the simulator has served."""
    return Counter(call["operation"] for call in simulator.calls())


def browser_session(base_url: str, slug: str = "demo") -> tuple[requests.Session, str]:
    """A requests session that opened the signup page and, as the widget does on a click, asked the page's
    session URL for its CSRF token."""
    session = requests.Session()
    session.get(f"{base_url}/signup/{slug}", timeout=10).raise_for_status()
    response = session.get(f"{base_url}/signup/{slug}/session", timeout=10)
    response.raise_for_status()
    return session, response.json()["csrf_token"]


def database_text(engine: sa.Engine) -> str:
    """Every row of every table, as text: what a stolen database file or dump would show."""
    if engine.dialect.name == "sqlite":
        connection = sqlite3.connect(engine.url.database)
        try:
            return "\n".join(connection.iterdump())
        finally:
            connection.close()
    lines = []
    with engine.connect() as connection:
        for table in sa.inspect(connection).get_table_names():
            quoted = connection.dialect.identifier_preparer.quote(table)
            lines += connection.execute(sa.text(f"SELECT t::text FROM {quoted} AS t")).scalars().all()
    return "\n".join(lines)
