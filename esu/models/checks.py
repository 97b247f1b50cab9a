"""The last live check of the agency's Meta app (``flask --app wsgi check --live``), for the dashboard."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from . import JSONType, UTCDateTime

#: Only the last check is kept: always this row.
LAST_CHECK_ID = 1


class LiveCheck(db.Model):
    """When the live check last ran and what it found: ``findings`` is a list of ``{"level", "text"}``,
    level ``ok``, ``note`` or ``fail``."""

    __tablename__ = "live_checks"
    __table_args__ = (sa.CheckConstraint(f"id = {LAST_CHECK_ID}", name="last_only"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
