"""The words the admin shows for each status a badge or a chart names: onboardings', steps' and forwarded
deliveries' (one place, so that the list, the page, the chart and its legend say the same)."""

from __future__ import annotations

from ...i18n import lazy_gettext as _l
from ...models import OnboardingStatus, StepStatus
from ...models.forwarding import DeliveryStatus
from ...reports import REFUSED_CODE

STATUS_LABELS = {
    OnboardingStatus.COMPLETED: _l("completed"),
    OnboardingStatus.AWAITING_VERIFICATION: _l("awaiting verification"),
    OnboardingStatus.AWAITING_PIN: _l("awaiting the number's PIN"),
    OnboardingStatus.AWAITING_CALLBACK: _l("awaiting the customer's browser"),
    OnboardingStatus.RATE_LIMITED: _l("waiting for Meta (rate limit)"),
    OnboardingStatus.RUNNING: _l("running"),
    OnboardingStatus.FAILED: _l("failed"),
    OnboardingStatus.OFFBOARDED: _l("offboarded"),
    REFUSED_CODE: _l("code refused by Meta"),
    StepStatus.PENDING: _l("pending"),
    StepStatus.OK: _l("ok"),
    StepStatus.SKIPPED: _l("skipped"),
    StepStatus.WAITING: _l("waiting"),
    DeliveryStatus.DELIVERED: _l("delivered"),
    DeliveryStatus.DEAD: _l("dead"),
}


def status_label(value: str) -> str:
    """The admin's words for a status; one esu does not know yet, as stored."""
    label = STATUS_LABELS.get(value)
    return str(label) if label is not None else str(value).replace("_", " ")
