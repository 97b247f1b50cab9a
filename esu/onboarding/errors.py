"""The requests onboarding cannot honour, each with the HTTP status that fits."""

from __future__ import annotations

from ..models import Onboarding


class OnboardingError(Exception):
    """A request the onboarding cannot honour; ``status`` is the HTTP status that fits."""

    status = 400

    def __init__(self, message: str, *, onboarding: Onboarding | None = None, status: int | None = None,
                 retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        self.onboarding = onboarding
        #: Seconds until the request may succeed (a 429's ``Retry-After``).
        self.retry_after = retry_after
        if status is not None:
            self.status = status


class DuplicateCode(OnboardingError):
    status = 409
