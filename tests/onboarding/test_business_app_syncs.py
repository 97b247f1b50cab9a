"""A WhatsApp Business app number onboarded end to end with the simulator mounted in the app, as in `make
demo`: the syncs run, Meta's webhooks that follow them arrive signed at esu, and the admin's onboarding page
shows what they brought.

Docs: meta-docs/embedded-signup/onboard-whatsapp-business-app-users.md ("Synchronizing WhatsApp Business app
data": contacts then history, each answered by webhooks; a declined history is one history webhook with error
2593109), meta-docs/webhooks/reference/history-webhook-reference.md (``progress`` 100: synchronization complete).
"""

from __future__ import annotations

from esu.extensions import db
from esu.models import PhoneNumber
from esu.simulator.business_app import CONTACTS
from esu.simulator.webhooks import sender

from ..helpers import statuses
from ..webhooks.conftest import events

pytest_plugins = ["tests.admin_fixtures"]


def onboard_business_app_number(mounted, post_callback, **options) -> dict:
    """The person finishes signup with a business app number; the browser's callback onboards it; every
    webhook Meta sends meanwhile (PARTNER_ADDED, then the syncs') is delivered. The callback's answer."""
    answer = mounted.test_client().post("/_meta/signup", json={"coexistence": True, **options})
    signup = answer.get_json()
    answer.close()  # as a server does once the answer is out: PARTNER_ADDED goes then
    assert sender(mounted).flush()

    body = post_callback(signup).get_json()

    assert sender(mounted).flush()
    assert body["status"] == "completed", body
    assert statuses(body)["sync_contacts"] == statuses(body)["sync_history"] == "ok"
    assert {delivery["status"] for delivery in sender(mounted).deliveries} == {200}
    return body


def test_a_business_app_number_ends_with_its_contacts_and_history_on_the_admin_page(mounted, post_callback, admin):
    body = onboard_business_app_number(mounted, post_callback)

    db.session.expire_all()
    phone = db.session.get(PhoneNumber, body["phone_number_id"])
    assert (phone.history_status, phone.history_progress) == ("arrived", 100)
    assert phone.contacts_received == len(CONTACTS)
    assert {event.status for event in events(field="history")} == {"applied"}
    html = admin.get(f"/admin/onboardings/{body['id']}").get_data(as_text=True)
    assert "arrived in full (100 %)" in html
    assert f"{len(CONTACTS)} received" in html


def test_a_business_app_number_whose_owner_declined_shows_the_history_declined(mounted, post_callback, admin):
    body = onboard_business_app_number(mounted, post_callback, share_history=False)

    db.session.expire_all()
    phone = db.session.get(PhoneNumber, body["phone_number_id"])
    assert (phone.history_status, phone.history_progress) == ("declined", None)
    assert phone.contacts_received == len(CONTACTS)
    html = admin.get(f"/admin/onboardings/{body['id']}").get_data(as_text=True)
    assert "declined by the business (2593109)" in html
    assert f"{len(CONTACTS)} received" in html
