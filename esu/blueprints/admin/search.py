"""The onboardings list's search box: what one typed term finds.

- any part of the business name, whatever the case (in any script, on SQLite as on PostgreSQL);
- the number in any form: as shown (``+62 812-3456-7890``), its digits with the country code
  (``6281234567890``), or national (``081234567890``), read in the country of the onboarding's page;
- the reference the widget shows the customer (``onboarding 42``, ``#42``, ``42``), and the reference its
  browser chose (``client_ref``);
- an exact WABA, phone number or business id: any WABA of a multi-WABA onboarding, and any of their numbers.
"""

from __future__ import annotations

import re
from collections import defaultdict

import sqlalchemy as sa

from ... import phones
from ...extensions import db
from ...models import Onboarding, PhoneNumber, SignupPage
from ...models.assets import WABA, OnboardingAsset
from .. import MAX_ID
from .paging import starts_with

DIGITS = re.compile(r"^[0-9]{1,32}\Z")  # ASCII: Python's \d also takes other scripts' digits
#: The onboarding's reference as the widget shows it ("Reference: onboarding 42"), or as people retell it.
ONBOARDING_REFERENCE = re.compile(r"^(?:onboarding\s*|#)?([0-9]{1,10})\Z", re.IGNORECASE)
#: The reference a browser chooses for its onboarding (esu.blueprints.signup's CLIENT_REF).
CLIENT_REF = re.compile(r"^[A-Za-z0-9_-]{16,64}\Z")


def name_contains(term: str):
    """The business name holds ``term`` anywhere, whatever the case; ``%`` and ``_`` are plain characters."""
    escaped = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return Onboarding.business_name_lower.like(f"%{escaped}%", escape="\\")


def number_matches(term: str, pages: list[SignupPage]):
    """The onboardings whose number ``term`` is, in any form; None when it cannot be a number. A national
    form (leading 0) is read in each page's country and matches that page's onboardings."""
    international = phones.e164(term)
    if international is not None:
        return Onboarding.phone_e164 == international
    pages_by_number: dict[str, list[int]] = defaultdict(list)
    for page in pages:
        region = phones.page_region(page.prefill)
        number = phones.e164(term, region) if region else None
        if number is not None:
            pages_by_number[number].append(page.id)
    if not pages_by_number:
        return None
    return sa.or_(
        *(
            sa.and_(Onboarding.phone_e164 == number, Onboarding.page_id.in_(page_ids))
            for number, page_ids in pages_by_number.items()
        )
    )


def shared_waba_or_number(term: str) -> sa.Select:
    """The onboardings that have the WABA ``term``, or the WABA of the number ``term``, among their WABAs
    (the dashboard links a second WABA's trouble here by its id). Indexed: assets by kind and id."""
    of_number = sa.select(PhoneNumber.waba_id).where(PhoneNumber.id == term).scalar_subquery()
    return sa.select(OnboardingAsset.onboarding_id).where(
        OnboardingAsset.kind == WABA, OnboardingAsset.asset_id.in_([term, of_number]))


def search_condition(term: str, pages: list[SignupPage]):
    """Rows ``term`` finds (see the module's story)."""
    conditions = [
        name_contains(term),
        starts_with(Onboarding.display_phone_number, term),
    ]
    if DIGITS.match(term[:1]):
        conditions.append(starts_with(Onboarding.display_phone_number, "+" + term))
    if DIGITS.match(term):
        conditions += [Onboarding.waba_id == term, Onboarding.phone_number_id == term, Onboarding.business_id == term]
        # Looked up first: as a subquery, PostgreSQL would probe it for each row the name search reads.
        shared = db.session.scalars(shared_waba_or_number(term)).all()
        if shared:
            conditions.append(Onboarding.id.in_(shared))
    number = number_matches(term, pages)
    if number is not None:
        conditions.append(number)
    reference = ONBOARDING_REFERENCE.match(term)
    if reference and int(reference.group(1)) <= MAX_ID:
        conditions.append(Onboarding.id == int(reference.group(1)))
    if CLIENT_REF.match(term):
        conditions.append(Onboarding.client_ref == term)
    return sa.or_(*conditions)
