"""Every webhook payload others have recorded (``shared/webhook-payloads``: public libraries' test
fixtures and Meta's docs, each named in its ``SOURCES.md``), delivered twice as Meta signs it: each is
answered 200 and kept exactly once, and none leaves esu a change it failed on or could not read.

The folder sits beside the repository (``../shared/`` from its root, as CI copies it): these are the
truth about the shapes Meta sends, not ours to edit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import count_events, events

RECORDED = Path(__file__).resolve().parents[2].parent / "shared" / "webhook-payloads"
FILES = sorted(RECORDED.glob("*.json")) if RECORDED.is_dir() else []


@pytest.mark.skipif(not RECORDED.is_dir(), reason=f"the recorded payloads are not beside the repository: "
                                                  f"{RECORDED} is absent")
@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_recorded_payload_is_kept_once_and_understood(deliver, path):
    body = path.read_bytes()
    first = deliver(body)
    assert first.status_code == 200, first.get_data(as_text=True)
    kept = count_events()
    assert first.get_json()["stored"] == kept == len(said(json.loads(body)))

    again = deliver(body)
    assert again.status_code == 200, again.get_data(as_text=True)
    assert again.get_json()["stored"] == 0
    assert count_events() == kept

    troubled = [(event.kind, event.field, event.status, event.error) for event in events()
                if event.status in ("failed", "unparseable")]
    assert troubled == []
    copied = [event.dedupe_key for event in events() if event.kind in ("message", "status")
              and event.value.keys() - {"messaging_product", "metadata", "contacts", "messages", "statuses"}]
    assert copied == []


def said(envelope: dict) -> set[tuple]:
    """What Meta says in a delivery, each thing once: every message (by its id), every status of a sent
    message (by its id and status, and in a group by participant), every other change (and what a
    ``messages`` change holds besides messages and statuses: calls, echoes, errors)."""
    things: set[tuple] = set()
    for entry in envelope["entry"]:
        for change in entry["changes"]:
            value = change["value"]
            if change["field"] == "messages" and (value.get("messages") or value.get("statuses")):
                things.update(("message", message["id"]) for message in value.get("messages", []))
                things.update(("status", status["id"], status["status"], status.get("recipient_participant_id"))
                              for status in value.get("statuses", []))
                value = {key: item for key, item in value.items()
                         if key not in ("messaging_product", "metadata", "contacts", "messages", "statuses")}
                if not value:
                    continue
            things.add((change["field"], entry.get("id"), entry.get("time"), json.dumps(value, sort_keys=True)))
    return things
