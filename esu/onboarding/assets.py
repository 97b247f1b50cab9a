"""The assets a customer shared, kept with their onboarding (``OnboardingAsset``): what the finish message
listed, and the WABA ``confirm_ids`` found when it listed none. An onboarding's WABAs are read from here,
its own ``waba_id`` first; and which WABAs and numbers only archived onboardings know (the dashboard leaves
them out)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import Onboarding, PhoneNumber
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


# -- what the dashboard leaves out with archived onboardings ----------------------------------------

KEPT = Onboarding.archived_at.is_(None)


def _archived_only(candidates: sa.Subquery, known: Callable[..., sa.ColumnElement]) -> sa.Select:
    """The ids among ``candidates`` (records of archived onboardings) no kept onboarding knows."""
    return sa.select(candidates.c.id).where(~known(candidates, KEPT))


def _archived() -> sa.CTE:
    """The archived onboardings (a CTE: one scan, however often the query refers to it)."""
    return (sa.select(Onboarding.id, Onboarding.waba_id, Onboarding.phone_number_id)
            .where(Onboarding.archived_at.is_not(None)).cte("archived_onboardings"))


def _archived_wabas(archived: sa.CTE) -> sa.Subquery:
    """The WABAs of archived onboardings, their own or among several (``has_waba``)."""
    return sa.union(
        sa.select(archived.c.waba_id.label("id")).where(archived.c.waba_id.is_not(None)),
        sa.select(OnboardingAsset.asset_id).join(archived, archived.c.id == OnboardingAsset.onboarding_id)
        .where(OnboardingAsset.kind == WABA)).subquery()


@dataclass(frozen=True)
class ArchivedOnly:
    """The ids of the WABAs and numbers only archived onboardings know (few: archived onboardings are test
    data), for the dashboard to leave out with them."""

    wabas: frozenset[str]
    numbers: frozenset[str]

    def waba_kept(self, waba_id) -> sa.ColumnElement:
        return waba_id.not_in(self.wabas) if self.wabas else sa.true()

    def number_kept(self, phone_id) -> sa.ColumnElement:
        return phone_id.not_in(self.numbers) if self.numbers else sa.true()


def archived_only() -> ArchivedOnly:
    """Read in one query: the archived onboardings once (no index serves ``archived_at``), then their WABAs
    (own or among several) and numbers (own, or by their WABA) by index, less those a kept one knows."""
    archived, phone = _archived(), aliased(PhoneNumber)
    wabas = _archived_only(_archived_wabas(archived), lambda found, *kept: has_waba(found.c.id, *kept))
    candidates = sa.union(
        sa.select(phone.id, phone.waba_id).where(phone.id.in_(sa.select(archived.c.phone_number_id))),
        sa.select(phone.id, phone.waba_id).where(phone.waba_id.in_(sa.select(_archived_wabas(archived).c.id)))
    ).subquery()
    numbers = _archived_only(candidates, lambda found, *kept: sa.or_(
        sa.exists().where(Onboarding.phone_number_id == found.c.id, *kept), has_waba(found.c.waba_id, *kept)))
    rows = db.session.execute(sa.union_all(wabas.add_columns(sa.literal(WABA, sa.String).label("kind")),
                                           numbers.add_columns(sa.literal("number", sa.String)))).all()
    return ArchivedOnly(frozenset(id_ for id_, kind in rows if kind == WABA),
                        frozenset(id_ for id_, kind in rows if kind != WABA))
