"""What the steps of one run share: the identifiers as they become known, the app's Meta settings, what
the finished steps answered."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Context:
    """What the steps of one run share. Worker threads only read it, except for the fields the step
    they depend on filled in before they started, and what ``run_register`` did, for its ``after``."""

    event: str
    code: str | None
    token: str | None
    waba_id: str | None
    phone_number_id: str | None
    business_id: str | None
    pin: str | None
    app_id: str
    credit_line_id: str | None
    system_user_id: str | None
    credit_currency: str
    #: The signup page's local storage country, sent at register (None: no local storage).
    data_localization_region: str | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: For a code-only callback: WABAs announced by PARTNER_ADDED and not yet claimed (``before_confirm``).
    announced_waba_ids: list[str] = field(default_factory=list)
    #: A multi-WABA flow's other WABAs (``waba_ids`` in the finish message), each onboarded as ``waba_id`` is.
    more_waba_ids: list[str] = field(default_factory=list)
    #: The PIN of each number this run registers, by number id, in the order registered (``before_register``).
    pins: dict[str, str] = field(default_factory=dict)
    #: The numbers the register step has registered, in this run or before one waited for its PIN.
    registered: list[str] = field(default_factory=list)
    #: The numbers this run asked Meta to register, in order (the last may have been refused).
    register_calls: list[str] = field(default_factory=list)
    #: The WABA and number records the saves wrote, for the calling thread only: held here because the
    #: session forgets an unchanged record once nothing refers to it, and each save would read it again.
    records: dict[tuple[type, str], Any] = field(default_factory=dict)

    @property
    def waba_ids(self) -> list[str]:
        """Every WABA of the onboarding, ``waba_id`` first."""
        first = [self.waba_id] if self.waba_id else []
        return first + [waba_id for waba_id in self.more_waba_ids if waba_id != self.waba_id]

    @property
    def solution_partner(self) -> bool:
        return bool(self.credit_line_id)
