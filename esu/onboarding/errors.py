"""The requests onboarding cannot honour, each with the HTTP status that fits."""

from __future__ import annotations

from ..models import Onboarding


class OnboardingError(Exception):
    """A request the onboarding cannot honour; ``status`` is the HTTP status that fits."""

    status = 400

    def __init__(self, message: str, *, onboarding: Onboarding | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.onboarding = onboarding
        if status is not None:
            self.status = status


class DuplicateCode(OnboardingError):
    status = 409
