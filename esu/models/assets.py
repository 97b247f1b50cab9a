"""The assets a customer shared in Embedded Signup, kept with their onboarding: every WABA (one, or several
in a multi-WABA flow) and the v4 products' assets (ad accounts, Pages, datasets, catalogs, Instagram
accounts), each as Meta's id. One row per asset, whatever its kind."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from . import UTCDateTime, now_utc

#: Each kind of asset and the list that carries it in Meta's finish message
#: (embedded-signup/implementation.md, "Successful flow completion structure").
ASSET_FIELDS = {
    "waba": "waba_ids",
    "ad_account": "ad_account_ids",
    "page": "page_ids",
    "dataset": "dataset_ids",
    "catalog": "catalog_ids",
    "instagram_account": "instagram_account_ids",
}
WABA = "waba"


class OnboardingAsset(db.Model):
    """One asset the customer shared, of one onboarding. An onboarding's WABAs are its ``waba`` rows, the one
    on ``Onboarding.waba_id`` (the first the browser named, or the one ``confirm_ids`` found) among them."""

    __tablename__ = "onboarding_assets"
    __table_args__ = (sa.UniqueConstraint("onboarding_id", "kind", "asset_id"),
                      sa.Index("ix_onboarding_assets_kind_asset_id", "kind", "asset_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    onboarding_id: Mapped[int] = mapped_column(sa.ForeignKey("onboardings.id", ondelete="CASCADE"))
    #: One of ASSET_FIELDS' keys.
    kind: Mapped[str] = mapped_column(sa.String(32))
    asset_id: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    def __repr__(self) -> str:
        return f"<OnboardingAsset {self.kind} {self.asset_id}>"
