"""How an onboarding's signup finished, on its page: the assets the customer shared, a finish esu does not
know, a number still to add, and **Look for numbers**, which onboards a number added since."""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask_babel import gettext

from ... import onboarding as onboarding_service
from ...extensions import db
from ...graph import GraphError
from ...i18n import lazy_gettext as _l
from ...models.assets import ASSET_FIELDS
from ...onboarding.assets import assets_of
from ...onboarding.finishes import FINISH_EVENTS
from ...onboarding.numbers import needs_number
from . import bp, record
from .onboardings import onboarding_or_404, outcome_of

#: What the admin reads for each kind of asset.
ASSET_LABELS = {"waba": _l("WhatsApp Business Accounts"), "ad_account": _l("Ad accounts"), "page": _l("Facebook Pages"),
                "dataset": _l("Datasets"), "catalog": _l("Catalogs"), "instagram_account": _l("Instagram accounts")}
assert set(ASSET_LABELS) == set(ASSET_FIELDS)


@bp.app_template_global("onboarding_finish")
def onboarding_finish(onboarding) -> dict:
    """What ``admin/_onboarding_finish.html`` shows of one onboarding."""
    return {
        "assets": [(ASSET_LABELS.get(kind, kind), ids) for kind, ids in assets_of(onboarding.id).items()],
        "unknown_event": onboarding.source == "callback" and onboarding.event not in FINISH_EVENTS,
        "number_to_add": needs_number(onboarding),
        "can_look": needs_number(onboarding) and onboarding.business_token is not None,
    }


@bp.post("/onboardings/<int:onboarding_id>/look-for-numbers")
def look_for_numbers(onboarding_id: int):
    """Read the WABA's numbers with the stored token and onboard one the customer added since signup."""
    onboarding = onboarding_or_404(onboarding_id)
    try:
        found = onboarding_service.look_for_numbers(onboarding)
    except onboarding_service.OnboardingError as error:
        record("looked_for_numbers", detail=f"refused: {error.message}", onboarding=onboarding)
        db.session.commit()
        flash(gettext("Not looked for: %(reason)s", reason=error.message), "error")
        return redirect(url_for("admin.onboarding", onboarding_id=onboarding_id))
    except GraphError as error:
        db.session.rollback()
        record("looked_for_numbers", detail=f"Meta refused: {error}", onboarding=onboarding)
        db.session.commit()
        flash(gettext("Meta did not list the numbers: %(error)s", error=error), "error")
        return redirect(url_for("admin.onboarding", onboarding_id=onboarding_id))
    if found is None:
        record("looked_for_numbers", detail="Meta lists no number yet", onboarding=onboarding)
        db.session.commit()
        flash(gettext("Meta lists no phone number on any of this onboarding's WhatsApp Business Accounts "
                      "yet."), "error")
        return redirect(url_for("admin.onboarding", onboarding_id=onboarding_id))
    outcome = outcome_of(onboarding)
    record("looked_for_numbers", detail=f"number {found}: {outcome}", onboarding=onboarding)
    db.session.commit()
    flash(gettext("Found number %(number)s. The onboarding is now %(outcome)s.",
                  number=onboarding.display_phone_number or found, outcome=outcome),
          "error" if onboarding.failure_reason else "ok")
    return redirect(url_for("admin.onboarding", onboarding_id=onboarding_id))
