"""The dashboard's charts, laid out here and drawn by the templates as inline SVG (no script, no build).

Geometry only: positions and sizes in the SVG's own units; colours come from CSS classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from flask_babel import format_date, gettext

from ...models import OnboardingStatus
from ...reports import REFUSED_CODE, Day, Funnel
from .labels import STATUS_LABELS

#: Bottom to top in the stacked columns: the outcomes people hope for first, codes Meta refused last.
STATUS_ORDER = (OnboardingStatus.COMPLETED, OnboardingStatus.AWAITING_VERIFICATION, OnboardingStatus.AWAITING_PIN,
                OnboardingStatus.RATE_LIMITED, OnboardingStatus.RUNNING, OnboardingStatus.FAILED,
                OnboardingStatus.OFFBOARDED, REFUSED_CODE)


@dataclass
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass
class Tick:
    position: float
    label: str


@dataclass
class DayChart:
    width: int
    height: int
    plot_left: int
    plot_bottom: int
    rects: list[Rect]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    total: int
    legend: list[tuple[str, str, int]]  # css class, label, count over the period


def _tick_step(largest: int) -> int:
    """A round step (1, 2 or 5 × 10^n) such that four steps reach ``largest``."""
    wanted = max(largest, 1) / 4
    magnitude = 10 ** math.floor(math.log10(wanted)) if wanted >= 1 else 1
    for step in (1, 2, 5, 10):
        if step * magnitude >= wanted:
            return step * magnitude
    return 10 * magnitude


def day_chart(days: list[Day]) -> DayChart:
    """Stacked columns: one per day, one band per status."""
    width, height, left, right, top, bottom = 720, 240, 36, 8, 10, 24
    plot_width, plot_height = width - left - right, height - top - bottom
    step = _tick_step(max((day.total for day in days), default=0))
    ceiling = 4 * step
    slot = plot_width / max(len(days), 1)
    bar = max(slot * 0.72, 1.0)
    rects: list[Rect] = []
    for index, day in enumerate(days):
        y = float(top + plot_height)
        for status in STATUS_ORDER:
            count = day.counts.get(status, 0)
            if not count:
                continue
            band = plot_height * count / ceiling
            y -= band
            rects.append(Rect(round(left + index * slot + (slot - bar) / 2, 2), round(y, 2), round(bar, 2),
                              round(band, 2), f"status-{status}",
                              gettext("%(day)s: %(count)s %(status)s", day=day.day.isoformat(), count=count,
                                      status=STATUS_LABELS[status])))
    y_ticks = [Tick(round(top + plot_height - plot_height * index / 4, 2), str(step * index)) for index in range(5)]
    label_every = max(1, math.ceil(len(days) / 6))
    x_ticks = [Tick(round(left + index * slot + slot / 2, 2), format_date(day.day, "MMM dd"))
               for index, day in enumerate(days) if (len(days) - 1 - index) % label_every == 0]
    legend = [(f"status-{status}", STATUS_LABELS[status], sum(day.counts.get(status, 0) for day in days))
              for status in STATUS_ORDER]
    return DayChart(width, height, left, top + plot_height, rects, y_ticks, x_ticks,
                    sum(day.total for day in days), legend)


@dataclass
class FunnelRow:
    label: str
    count: int
    #: Bar length, 0–100, relative to the page's largest stage.
    length: float
    css: str
    #: Share of the page's views, when there were views.
    share: str | None


def funnel_rows(funnel: Funnel) -> list[FunnelRow]:
    """The funnel's stages in order, then where people left the dialog and the errors they reported."""
    stages = [
        (gettext("Page views"), funnel.views, "stage"),
        (gettext("Opened Meta's dialog"), funnel.launches, "stage"),
        *[(gettext("Left at: %(screen)s", screen=screen), count, "abandoned") for screen, count in funnel.abandoned],
        (gettext("Reported an error"), funnel.errors, "error"),
        (gettext("Finished in Meta's dialog"), funnel.finished, "stage"),
        (gettext("Fully onboarded"), funnel.onboarded, "done"),
    ]
    largest = max((count for _, count, _ in stages), default=0) or 1
    return [FunnelRow(label, count, round(100 * count / largest, 2), css,
                      f"{100 * count / funnel.views:.0f}%" if funnel.views else None)
            for label, count, css in stages]
