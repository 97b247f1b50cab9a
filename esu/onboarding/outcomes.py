"""What a step's run can end with besides success: the exceptions the runner turns into a step's status."""

from __future__ import annotations

from typing import Any

from ..graph import GraphError


class Skip(Exception):
    """The step does not apply to this onboarding."""


class Wait(Exception):
    """The step waits for the person: a number to verify, or the PIN the number already has (``error`` then
    keeps Meta's answer, for the admin; ``result``, what the step did before it waited, for its next run)."""

    def __init__(self, message: str, *, error: GraphError | None = None, result: dict[str, Any] | None = None):
        super().__init__(message)
        self.error = error
        self.result = result


class StepFailed(Exception):
    """The step failed for a reason of ours, not Graph's."""
