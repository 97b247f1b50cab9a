"""The dashboard: what needs attention first, onboardings day by day, each signup page's funnel, and the
database's size with what retention keeps."""

from __future__ import annotations

from flask import current_app, render_template, request

from ... import live_check, reports
from . import bp, charts

PERIODS = (7, 30, 90)


@bp.get("/")
def dashboard():
    """Needs attention (failures, unverified numbers, quality, restrictions, offboarding, bad webhooks),
    then onboardings per day by status and the funnel of every signup page over the chosen period, then
    storage: the database's size, the oldest webhook event kept and the retention setting."""
    days = request.args.get("days", type=int)
    days = days if days in PERIODS else 30
    funnels = reports.funnels(days)
    return render_template(
        "admin/dashboard.html",
        signals=reports.needs_attention(),
        chart=charts.day_chart(reports.onboardings_by_day(days)),
        funnels=[(funnel, charts.funnel_rows(funnel)) for funnel in funnels],
        days=days,
        periods=PERIODS,
        storage=reports.storage(current_app.config["ESU_RETENTION_DAYS"]),
        live_check=live_check.last(),
    )
