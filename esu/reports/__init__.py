"""What the admin's dashboard answers: what needs attention (``attention``: one function per signal), how
onboardings went day by day, how people moved through each signup page, and how much the database holds
(``activity``). Read-only queries, each served by an index and bounded, so the dashboard stays fast with
hundreds of thousands of onboardings and millions of webhook events.
"""

from .activity import Day, Funnel, Storage, database_size, funnels, onboardings_by_day, storage
from .attention import (
    REFUSED_CODE,
    TROUBLED_TEMPLATE_STATUSES,
    AttentionItem,
    Signal,
    needs_attention,
)

__all__ = [
    "REFUSED_CODE",
    "TROUBLED_TEMPLATE_STATUSES",
    "AttentionItem",
    "Day",
    "Funnel",
    "Signal",
    "Storage",
    "database_size",
    "funnels",
    "needs_attention",
    "onboardings_by_day",
    "storage",
]
