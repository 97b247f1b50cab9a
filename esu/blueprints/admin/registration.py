"""Registration from the admin: the two-step verification PIN a number already has, given by the customer."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext

from ... import onboarding as onboarding_service
from ...extensions import db
from . import bp, record
from .forms import EmptyForm
from .onboardings import onboarding_or_404


@bp.post("/onboardings/<int:onboarding_id>/existing-pin")
def existing_pin(onboarding_id: int):
    """Register the number with the PIN it already has (Meta answered 133005), and show what came of it.
    The PIN is kept encrypted, never logged."""
    onboarding = onboarding_or_404(onboarding_id)
    if not EmptyForm().validate_on_submit():
        flash(gettext("The form expired; enter the PIN again."), "error")
        return redirect(url_for("admin.onboarding", onboarding_id=onboarding_id))
    try:
        onboarding = onboarding_service.enter_existing_pin(onboarding, request.form.get("pin", "").strip())
    except onboarding_service.OnboardingError as error:
        db.session.rollback()
        flash(gettext("Not registered: %(reason)s", reason=error.message), "error")
        return redirect(url_for("admin.onboarding", onboarding_id=onboarding_id))
    outcome = onboarding.status.replace("_", " ")
    record("entered_existing_pin", detail=f"outcome: {outcome}", onboarding=onboarding)
    db.session.commit()
    if onboarding.status == "awaiting_pin":
        flash(gettext("Meta did not accept that PIN: it is not the number's two-step verification PIN."), "error")
    else:
        flash(gettext("Registration went on with the number's PIN. The onboarding is now %(outcome)s.",
                      outcome=outcome), "ok")
    return redirect(url_for("admin.onboarding", onboarding_id=onboarding_id))
