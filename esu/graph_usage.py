"""What Meta's usage headers say of a rate limit: how long until calls go through again.

Graph API "Rate limiting" (meta-reference.md §9.3): ``X-App-Usage`` holds percentages; ``X-Business-Use-Case-Usage``
holds, by business id, a list of usages each with ``estimated_time_to_regain_access`` in minutes.
"""

from __future__ import annotations

import json


def regain_access_seconds(headers) -> int | None:
    """The longest ``estimated_time_to_regain_access`` (minutes) in ``X-Business-Use-Case-Usage`` (each business
    id's list of usages) or ``X-App-Usage``, in seconds; None when no header says."""
    minutes = []
    for name in ("X-Business-Use-Case-Usage", "X-App-Usage"):
        try:
            usage = json.loads(headers.get(name) or "null")
        except ValueError:
            continue
        entries = [usage] if isinstance(usage, dict) else []
        for value in (usage.values() if isinstance(usage, dict) else ()):
            entries += [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
        minutes += [entry["estimated_time_to_regain_access"] for entry in entries
                    if isinstance(entry.get("estimated_time_to_regain_access"), (int, float))
                    and not isinstance(entry["estimated_time_to_regain_access"], bool)]
    return round(max(minutes) * 60) if minutes else None
