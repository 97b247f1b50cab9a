"""The rate limiters' counters, when no Redis holds them (``esu.rate_limits``)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from . import UTCDateTime


class RateLimitCounter(db.Model):
    """One fixed window of one limit for one client: how many hits it has had, and when it ends."""

    __tablename__ = "rate_limit_counters"

    #: Flask-Limiter's key: the limit, the client address, the scope.
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    def __repr__(self) -> str:
        return f"<RateLimitCounter {self.key} {self.count}>"
