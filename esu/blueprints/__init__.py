"""The blueprints: HTTP in, calls to the services, HTTP out. What their URLs share is here."""

from __future__ import annotations

from werkzeug.routing import IntegerConverter

#: The largest id a row can have: ids are SQLAlchemy's Integer, a 32-bit INTEGER on PostgreSQL.
MAX_ID = 2**31 - 1


class RowIdConverter(IntegerConverter):
    """``<int:…>`` in esu's URLs, which always names a row: ASCII digits up to :data:`MAX_ID`. A larger number
    matches no route (404) instead of overflowing the database driver (a 500)."""

    regex = r"[0-9]+"  # Werkzeug's \d+ also takes other scripts' digits

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)
