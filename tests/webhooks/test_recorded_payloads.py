"""Every webhook payload others have recorded (``shared/webhook-payloads``: public libraries' test
fixtures and Meta's docs, each named in its ``SOURCES.md``), delivered twice as Meta signs it: each is
answered 200 and kept exactly once, and none leaves esu a change it failed on or could not read.

The folder sits beside the repository (``../shared/`` from its root, as CI copies it): these are the
truth about the shapes Meta sends, not ours to edit.
"""

from __future__ import annotations

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
    assert first.get_json()["stored"] == kept > 0

    again = deliver(body)
    assert again.status_code == 200, again.get_data(as_text=True)
    assert again.get_json()["stored"] == 0
    assert count_events() == kept

    troubled = [(event.kind, event.field, event.status, event.error) for event in events()
                if event.status in ("failed", "unparseable")]
    assert troubled == []
