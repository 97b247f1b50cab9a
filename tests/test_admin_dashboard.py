"""The dashboard: what needs attention, onboardings per day, each page's funnel; and the webhook list."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from esu import reports
from esu.extensions import db
from esu.models import MessageTemplate, PhoneNumber, WebhookEvent, WhatsAppBusinessAccount, now_utc
from esu.onboarding.assets import add_waba

from .admin_support import (
    gen_digits,
    gen_more_waba,
    gen_onboarding,
    gen_page,
    gen_signup_event,
    gen_target,
    gen_webhook_event,
)
from .helpers import new_ref
from .test_admin_onboardings import listed_ids

pytest_plugins = ["tests.admin_fixtures"]  # the admin fixtures: admin, stored_admin, count_queries…


def signal_card(html: str, key: str) -> str:
    match = re.search(rf'<article class="card signal signal-{key}">(.*?)</article>', html, re.DOTALL)
    assert match, f"no '{key}' signal on the dashboard"
    return match.group(1)


def test_an_empty_dashboard_says_all_is_well(admin):
    html = admin.get("/admin/").get_data(as_text=True)
    assert "Nothing needs attention" in html
    assert "No signup pages yet" in html


def test_the_dashboard_shows_the_database_size_the_oldest_event_kept_and_the_retention(admin, app):
    gen_webhook_event(received_at=now_utc() - timedelta(days=12))
    db.session.commit()
    oldest = db.session.scalar(sa.select(sa.func.min(WebhookEvent.received_at)))

    html = admin.get("/admin/").get_data(as_text=True)

    storage = re.search(r'<section class="card storage".*?</section>', html, re.DOTALL).group(0)
    size = re.search(r"<dt>Database</dt><dd>([\d.]+ [kMG]B)</dd>", storage)
    assert size and reports.database_size() > 0
    assert f'datetime="{oldest.isoformat()}"' in storage
    assert "messages and statuses 30 days" in storage and "ESU_RETENTION_DAYS=30" in storage
    app.config["ESU_RETENTION_DAYS"] = 0
    assert "everything, for ever" in admin.get("/admin/").get_data(as_text=True)


def test_needs_attention_lists_each_kind_of_trouble_with_links(admin):
    page = gen_page("trouble")
    failed = gen_onboarding(page, business_name="Broken Ltd", status="failed",
                            failure_reason="Register the phone number: (#133005) PIN mismatch")
    waiting = gen_onboarding(page, business_name="Waiting Co", status="awaiting_verification")
    offboarded = gen_onboarding(page, business_name="Gone Inc", status="offboarded", offboarded_at=now_utc())
    fine = gen_onboarding(page, business_name="Fine & Dandy", status="completed")
    yellow = db.session.get(PhoneNumber, fine.phone_number_id)
    yellow.quality_rating, yellow.verified_name = "YELLOW", "Fine & Dandy"
    db.session.get(PhoneNumber, failed.phone_number_id).status = "FLAGGED"
    db.session.get(WhatsAppBusinessAccount, waiting.waba_id).account_review_status = "REJECTED"
    restriction = gen_webhook_event(waba_id=fine.waba_id, value={
        "event": "ACCOUNT_RESTRICTION", "restriction_info": [{"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING"}]})
    gen_webhook_event(waba_id=fine.waba_id, value={"event": "ACCOUNT_RESTRICTION"},
                      received_at=now_utc() - timedelta(days=40))  # old news
    gen_webhook_event(waba_id=fine.waba_id, value={"event": "PARTNER_ADDED"})  # not trouble
    garbled = gen_webhook_event(field=None, status="unparseable", value=None, raw="{not json", error="not JSON")
    unapplied = gen_webhook_event(status="failed", error="no such WABA")
    db.session.commit()

    html = admin.get("/admin/").get_data(as_text=True)
    assert "Nothing needs attention" not in html
    card = signal_card(html, "failed")
    assert "Broken Ltd" in card and "PIN mismatch" in card and f"/admin/onboardings/{failed.id}" in card
    assert '<span class="count">1</span>' in card
    assert f"/admin/onboardings/{waiting.id}" in signal_card(html, "awaiting_verification")
    assert "quality YELLOW" in signal_card(html, "quality")
    assert f"/admin/onboardings?q={yellow.id}" in signal_card(html, "quality")
    assert "status FLAGGED" in signal_card(html, "phone_status")
    assert "REJECTED" in signal_card(html, "waba_review")
    card = signal_card(html, "restrictions")
    assert f"/admin/webhooks/{restriction.id}" in card and '<span class="count">1</span>' in card
    assert f"/admin/onboardings/{offboarded.id}" in signal_card(html, "offboarded")
    assert f"/admin/webhooks/{garbled.id}" in signal_card(html, "unparseable")
    assert f"/admin/webhooks/{unapplied.id}" in signal_card(html, "webhook_failed")
    assert "Fine &amp; Dandy</a>" not in signal_card(html, "failed")


def test_codes_meta_never_issued_are_kept_apart_from_real_failures(admin, simulator, post_callback):
    """A flood of junk codes (each an onboarding whose exchange Meta refused) must not bury the customers
    whose onboarding really failed."""
    for _ in range(3):
        post_callback({"code": "junk-" + new_ref(), "event": "FINISH"})
    real = gen_onboarding(gen_page("real"), business_name="Broken Ltd", status="failed",
                          failure_reason="Register the phone number: (#133005) PIN mismatch",
                          steps=(("exchange_code", "ok"), ("register_phone", "failed")))
    db.session.commit()
    assert len(simulator.calls("oauth_access_token")) == 3  # each junk code was tried once, and refused

    html = admin.get("/admin/").get_data(as_text=True)

    failed = signal_card(html, "failed")
    assert '<span class="count">1</span>' in failed and f"/admin/onboardings/{real.id}" in failed
    assert '<span class="count">3</span>' in signal_card(html, "refused_codes")
    today = reports.onboardings_by_day(1)[0]
    assert today.counts == {"failed": 1, reports.REFUSED_CODE: 3}
    assert f"{today.day.isoformat()}: 3 code refused by Meta</title>" in html


def test_counts_stop_at_the_cap(admin, monkeypatch):
    monkeypatch.setattr(reports.attention, "COUNT_CAP", 3)
    page = gen_page("many")
    for _ in range(5):
        gen_onboarding(page, status="failed", waba=False, phone=False)
    db.session.commit()
    assert '<span class="count">3+</span>' in signal_card(admin.get("/admin/").get_data(as_text=True), "failed")


def test_onboardings_per_day_are_stacked_by_status(admin):
    page = gen_page("days")
    today = now_utc().replace(hour=12, minute=0, second=0, microsecond=0)
    for status in ("completed", "completed", "failed"):
        gen_onboarding(page, status=status, created_at=today - timedelta(days=2), waba=False, phone=False)
    gen_onboarding(page, status="completed", created_at=today - timedelta(days=45), waba=False, phone=False)
    db.session.commit()

    days = reports.onboardings_by_day(30, today=today.date())
    assert len(days) == 30 and days[-1].day == today.date()
    assert days[-3].counts == {"completed": 2, "failed": 1}
    assert sum(day.total for day in days) == 3

    html = admin.get("/admin/").get_data(as_text=True)
    label = (today - timedelta(days=2)).date().isoformat()
    assert f"<title>{label}: 2 completed</title>" in html and f"<title>{label}: 1 failed</title>" in html
    assert "3 in all" in html
    assert "4 in all" in admin.get("/admin/?days=90").get_data(as_text=True)


def test_the_funnel_shows_each_stage_and_where_people_left(admin):
    page = gen_page("funnel", title="Funnel Page")
    quiet = gen_page("quiet", title="Quiet Page")
    for _ in range(10):
        gen_signup_event(page, "view")
    for _ in range(6):
        gen_signup_event(page, "launch")
    gen_signup_event(page, "cancel", current_step="PHONE_NUMBER_VERIFICATION")
    gen_signup_event(page, "cancel", current_step="PHONE_NUMBER_VERIFICATION")
    gen_signup_event(page, "cancel", current_step="BUSINESS_ACCOUNT_SELECTION")
    gen_signup_event(page, "error", error_message="name violates guidelines", error_code="524126")
    gen_signup_event(page, "finish")
    gen_signup_event(page, "finish")
    gen_signup_event(page, "view", ago=timedelta(days=45))  # outside the period
    gen_onboarding(page, status="completed")
    gen_onboarding(page, status="failed")
    db.session.commit()

    funnel = next(f for f in reports.funnels(30) if f.page.slug == "funnel")
    assert (funnel.views, funnel.launches, funnel.errors, funnel.finished, funnel.onboarded) == (10, 6, 1, 2, 1)
    assert funnel.abandoned == [("Business portfolio", 1), ("Verify the number", 2)]  # the dialog's order

    html = admin.get("/admin/").get_data(as_text=True)
    card = html.split("Funnel Page")[1].split("</article>")[0]
    rows = re.findall(r"<dt>(.*?)</dt>.*?<rect class=\"fill\" width=\"([\d.]+)\".*?<span class=\"n\">(\d+)</span>", card, re.DOTALL)
    assert rows == [
        ("Page views", "100.0", "10"), ("Opened Meta&#39;s dialog", "60.0", "6"),
        ("Left at: Business portfolio", "10.0", "1"), ("Left at: Verify the number", "20.0", "2"),
        ("Reported an error", "10.0", "1"), ("Finished in Meta&#39;s dialog", "20.0", "2"),
        ("Fully onboarded", "10.0", "1"),
    ]
    assert "No visits in this period" in html.split("Quiet Page")[1].split("</article>")[0]
    assert quiet.enabled


def test_a_second_wabas_trouble_is_the_customers_and_leaves_with_an_archived_onboarding(admin):
    onboarding = gen_onboarding(gen_page("duo"), business_name="Duo Shop")
    waba, phone = gen_more_waba(onboarding, state="disconnected", state_reason="token revoked", state_at=now_utc(),
                                account_review_status="REJECTED")
    phone.quality_rating = "RED"
    db.session.add(MessageTemplate(id=gen_digits(), waba_id=waba.id, name="second_offer", language="en",
                                   status="REJECTED", status_reason="PROMOTIONAL", components=[]))
    db.session.commit()

    html = admin.get("/admin/").get_data(as_text=True)
    for key in ("account_state", "quality", "templates"):
        card = signal_card(html, key)
        assert "Duo Shop" in card and "Second account" not in card, key
    assert "second_offer" in signal_card(html, "templates") and "REJECTED" in signal_card(html, "waba_review")
    for record in (waba, phone):  # each card's link finds the onboarding
        assert f"/admin/onboardings?q={record.id}" in html
        assert listed_ids(admin.get(f"/admin/onboardings?q={record.id}")) == [onboarding.id]

    admin.post(f"/admin/onboardings/{onboarding.id}/archive")

    assert reports.needs_attention() == []
    again = gen_onboarding(gen_page("duo-again"), business_name="Duo Again")  # the customer signs up again
    add_waba(again, waba.id)
    db.session.commit()
    assert {signal.key for signal in reports.needs_attention()} == {"account_state", "quality", "templates",
                                                                    "waba_review"}


def test_dashboard_queries_do_not_grow_with_records(admin, count_queries):
    def seed(size: int):
        for index in range(size):
            page = gen_page(f"p{size}-{index}")
            gen_onboarding(page, status="failed")
            gen_signup_event(page, "view")
            gen_webhook_event(status="unparseable")
            gen_target(page, failing_since=now_utc() - timedelta(days=2))
        db.session.commit()

    seed(2)
    admin.get("/admin/")
    with count_queries() as few:
        admin.get("/admin/")
    seed(30)
    with count_queries() as many:
        admin.get("/admin/")
    assert len(many) == len(few)


# -- webhook events -----------------------------------------------------------------------------------


@pytest.fixture
def deliveries(app):
    now = now_utc()
    events = {
        "added": gen_webhook_event(field="account_update", waba_id="111", value={"event": "PARTNER_ADDED"},
                                   received_at=now - timedelta(minutes=5)),
        "quality": gen_webhook_event(field="phone_number_quality_update", waba_id="111", status="stored",
                                     value={"event": "FLAGGED"}, received_at=now - timedelta(minutes=4)),
        "other": gen_webhook_event(field="account_update", waba_id="222", status="ignored",
                                   value={"event": "VERIFIED_ACCOUNT"}, received_at=now - timedelta(minutes=3)),
        "message": gen_webhook_event(field="messages", waba_id="222", value={
            "statuses": [{"id": "wamid.1", "status": "delivered"}]}, received_at=now - timedelta(minutes=2)),
    }
    db.session.commit()
    return events


def listed_events(response) -> list[int]:
    assert response.status_code == 200
    return [int(ident) for ident in re.findall(r'<td data-label="Received"><a href="/admin/webhooks/(\d+)"',
                                               response.get_data(as_text=True))]


@pytest.mark.parametrize(("query", "expected"), [
    ("", ["message", "other", "quality", "added"]),
    ("field=account_update", ["other", "added"]),
    ("waba=111", ["quality", "added"]),
    ("field=account_update&waba=222", ["other"]),
    ("status=applied", ["message", "added"]),
    ("status=stored", ["quality"]),
])
def test_webhook_events_filter_by_field_waba_and_status(admin, deliveries, query, expected):
    assert listed_events(admin.get(f"/admin/webhooks?{query}")) == [deliveries[key].id for key in expected]


def test_webhook_list_shows_what_each_said_and_whether_it_was_applied(admin, deliveries):
    html = admin.get("/admin/webhooks").get_data(as_text=True)
    assert "event: FLAGGED" in html and "status delivered" in html
    assert "not applied · stored" in html and "not applied · ignored" in html
    assert html.count('<span class="badge status-ok">applied</span>') == 2
    assert admin.get("/admin/webhooks?waba=abc").status_code == 400


def test_webhook_list_pages_through_events(admin, count_queries):
    base = now_utc() - timedelta(hours=2)
    ids = [gen_webhook_event(received_at=base + timedelta(seconds=index // 3)).id for index in range(75)]
    db.session.commit()
    first = admin.get("/admin/webhooks")
    older = re.search(r'<a href="([^"]+)">Older »</a>', first.get_data(as_text=True)).group(1).replace("&amp;", "&")
    with count_queries() as statements:
        second = admin.get(older)
    assert listed_events(first) + listed_events(second) == sorted(ids, reverse=True)
    assert "Older »" not in second.get_data(as_text=True)
    assert len(statements) <= 2


def test_one_webhook_event_shows_its_value_or_raw_body(admin, deliveries):
    html = admin.get(f"/admin/webhooks/{deliveries['quality'].id}").get_data(as_text=True)
    assert "&#34;event&#34;: &#34;FLAGGED&#34;" in html and "not applied · stored" in html
    garbled = gen_webhook_event(field=None, status="unparseable", value=None, raw="{<script>", error="not JSON")
    db.session.commit()
    html = admin.get(f"/admin/webhooks/{garbled.id}").get_data(as_text=True)
    assert "{&lt;script&gt;" in html and "not JSON" in html
    assert admin.get("/admin/webhooks/987654").status_code == 404
