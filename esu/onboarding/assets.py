"""The assets a customer shared, kept with their onboarding (``OnboardingAsset``): what the finish message
listed, and the WABA ``confirm_ids`` found when it listed none. An onboarding's WABAs are read from here,
its own ``waba_id`` first."""

from __future__ import annotations

import sqlalchemy as sa

from ..extensions import db
from ..models import Onboarding
from ..models.assets import ASSET_FIELDS, WABA, OnboardingAsset


def keep_assets(onboarding: Onboarding, assets: dict[str, list[str]]) -> None:
    """Add the assets the finish message listed, by kind (ASSET_FIELDS' keys), each once."""
    for kind, ids in assets.items():
        for asset_id in dict.fromkeys(ids):
            db.session.add(OnboardingAsset(onboarding_id=onboarding.id, kind=kind, asset_id=asset_id))


def add_waba(onboarding: Onboarding, waba_id: str) -> None:
    """Count ``waba_id`` among the onboarding's WABAs, unless it is already."""
    known = db.session.scalar(sa.select(OnboardingAsset.id).where(
        OnboardingAsset.onboarding_id == onboarding.id, OnboardingAsset.kind == WABA,
        OnboardingAsset.asset_id == waba_id))
    if known is None:
        db.session.add(OnboardingAsset(onboarding_id=onboarding.id, kind=WABA, asset_id=waba_id))


def assets_of(onboarding_id: int) -> dict[str, list[str]]:
    """The onboarding's assets by kind, in ASSET_FIELDS' order, each list in the order they were kept."""
    rows = db.session.execute(sa.select(OnboardingAsset.kind, OnboardingAsset.asset_id)
                              .where(OnboardingAsset.onboarding_id == onboarding_id)
                              .order_by(OnboardingAsset.id)).all()
    found: dict[str, list[str]] = {kind: [] for kind in ASSET_FIELDS}
    for kind, asset_id in rows:
        found.setdefault(kind, []).append(asset_id)
    return {kind: ids for kind, ids in found.items() if ids}


def waba_ids_of(onboarding: Onboarding) -> list[str]:
    """Every WABA of the onboarding, its own ``waba_id`` first, then the others in the order kept."""
    return ([onboarding.waba_id] if onboarding.waba_id else []) + more_waba_ids(onboarding)


def has_waba(waba_id, *conditions) -> sa.ColumnElement:
    """SQL: an onboarding meeting ``conditions`` has the WABA ``waba_id`` (a column or a value), as its own
    ``waba_id`` or among its assets (a multi-WABA onboarding's others); an indexed lookup each way."""
    return sa.or_(sa.exists().where(Onboarding.waba_id == waba_id, *conditions),
                  sa.exists().where(OnboardingAsset.kind == WABA, OnboardingAsset.asset_id == waba_id,
                                    Onboarding.id == OnboardingAsset.onboarding_id, *conditions))


def more_waba_ids(onboarding: Onboarding) -> list[str]:
    """The onboarding's WABAs other than its own ``waba_id`` (a multi-WABA flow's), in the order kept."""
    if onboarding.id is None:
        return []
    return [waba_id for waba_id in assets_of(onboarding.id).get(WABA, []) if waba_id != onboarding.waba_id]
