"""The onboardings list (filters, search, pages, CSV) and one onboarding's page: story, retry, PIN."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esu import phones
from esu.blueprints.admin import onboardings as onboardings_view
from esu.blueprints.admin import shown_once
from esu.extensions import db
from esu.models import MessageTemplate, Onboarding, OnboardingStep, PhoneNumber, WhatsAppBusinessAccount, now_utc
from esu.models.admin import AdminAction
from esu.webhooks.appliers.waba import STATES

from .admin_support import gen_digits, gen_more_waba, gen_onboarding, gen_page, gen_webhook_event

pytest_plugins = ["tests.admin_fixtures"]  # the admin fixtures: admin, stored_admin, count_queries…

ROW_LINK = re.compile(r'href="/admin/onboardings/(\d+)"')


def listed_ids(response) -> list[int]:
    """Onboarding ids in the order the list shows them (each row links twice)."""
    assert response.status_code == 200
    ids: list[int] = []
    for match in ROW_LINK.finditer(response.get_data(as_text=True)):
        if not ids or ids[-1] != int(match.group(1)):
            ids.append(int(match.group(1)))
    return ids


def row_html(response, onboarding_id: int) -> str:
    for row in response.get_data(as_text=True).split("<tr>"):
        if f'href="/admin/onboardings/{onboarding_id}"' in row:
            return row.split("</tr>")[0]
    raise AssertionError(f"onboarding {onboarding_id} is not listed")


def next_link(response) -> str | None:
    match = re.search(r'<a href="([^"]+)">Older »</a>', response.get_data(as_text=True))
    return match.group(1).replace("&amp;", "&") if match else None


@pytest.fixture
def shops(app):
    """Two pages and a handful of onboardings with distinct names, numbers and statuses."""
    north, south = gen_page("north"), gen_page("south")
    now = now_utc()
    rows = {
        "acme": gen_onboarding(north, business_name="Acme Shop", status="completed",
                               display_phone_number="+1 555-010-0001", created_at=now - timedelta(hours=5)),
        "bolt": gen_onboarding(north, business_name="Bolt & Nut", status="failed",
                               display_phone_number="+44 20 7946 0000", created_at=now - timedelta(hours=4)),
        "corner": gen_onboarding(south, business_name="corner café", status="awaiting_verification",
                                 display_phone_number="15550100222", created_at=now - timedelta(hours=3)),
        "dune": gen_onboarding(south, business_name="Dune 100% Organic", status="failed",
                               display_phone_number="+1 555-010-0999", created_at=now - timedelta(hours=2)),
    }
    db.session.commit()
    return {"north": north, "south": south, **rows}


# -- the list -----------------------------------------------------------------------------------------


def test_the_list_is_newest_first_with_page_business_number_status_and_time(admin, shops):
    response = admin.get("/admin/onboardings")
    assert listed_ids(response) == [shops[key].id for key in ("dune", "corner", "bolt", "acme")]
    row = row_html(response, shops["bolt"].id)
    assert "Bolt &amp; Nut" in row and "+44 20 7946 0000" in row and "status-failed" in row
    assert shops["bolt"].created_at.strftime("%Y-%m-%d %H:%M UTC") in row
    assert ">north<" in row


def test_each_status_reads_in_the_admins_words_the_chart_uses_too(admin, app):
    """A badge says what the status means, as the dashboard's chart and legend do, not the stored name."""
    waiting = gen_onboarding(gen_page("east"), status="awaiting_callback", steps=(("exchange_code", "ok"),))
    pin = gen_onboarding(gen_page("west"), status="awaiting_pin")
    db.session.commit()
    listed = admin.get("/admin/onboardings")
    assert "awaiting the customer&#39;s browser" in row_html(listed, waiting.id)
    assert "awaiting the number&#39;s PIN" in row_html(listed, pin.id)
    page = admin.get(f"/admin/onboardings/{waiting.id}").text
    assert re.search(r'<span class="badge status-ok">ok</span>', page)


@pytest.mark.parametrize(("query", "expected"), [
    ("status=failed", ["dune", "bolt"]),
    ("status=awaiting_verification", ["corner"]),
    ("page={north}", ["bolt", "acme"]),
    ("page={south}&status=failed", ["dune"]),
    ("q=acme", ["acme"]),              # the start of the name, any case
    ("q=CORNER", ["corner"]),
    ("q=shop", ["acme"]),              # any part of the name, any case
    ("q=%", ["dune"]),                 # LIKE's wildcards are plain characters
    ("q=Dune 100%", ["dune"]),
    ("q=_", []),
    ("q=+1 555-010", ["dune", "acme"]),  # the number as shown
    ("q=1555010", ["corner"]),
    ("q=44 20", ["bolt"]),             # typed without the +
])
def test_filters_and_search(admin, shops, query, expected):
    query = query.format(north=shops["north"].id, south=shops["south"].id)
    assert listed_ids(admin.get(f"/admin/onboardings?{query}")) == [shops[key].id for key in expected]


def test_search_by_waba_phone_number_or_business_id(admin, shops):
    bolt = shops["bolt"]
    for value in (bolt.waba_id, bolt.phone_number_id, bolt.business_id):
        assert listed_ids(admin.get(f"/admin/onboardings?q={value}")) == [bolt.id]
    assert listed_ids(admin.get(f"/admin/onboardings?q={bolt.waba_id[:-1]}")) == []  # ids match whole


def test_a_bad_filter_is_a_400_not_a_crash(admin, shops):
    assert admin.get("/admin/onboardings?status=bogus").status_code == 400
    assert admin.get("/admin/onboardings?page=999999").status_code == 400
    assert admin.get("/admin/onboardings?q=" + "x" * 101).status_code == 400
    assert admin.get("/admin/onboardings?after=not-a-cursor").status_code == 400


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(term=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=40))
def test_any_search_text_is_only_text(admin, shops, term):
    response = admin.get("/admin/onboardings", query_string={"q": term})
    assert response.status_code == 200
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Onboarding)) == 4


def test_pages_walk_every_row_once_newest_first_even_with_equal_times(admin, app):
    page = gen_page("bulk")
    same_time = now_utc() - timedelta(days=1)
    expected = []
    for index in range(120):
        # Groups of 10 share a timestamp: the id orders rows within a group, and the pages must not
        # skip or repeat any of them.
        onboarding = gen_onboarding(page, business_name=f"Bulk {index}", waba=False, phone=False,
                                    created_at=same_time + timedelta(minutes=index // 10))
        expected.append(onboarding.id)
    db.session.commit()
    expected = sorted(expected, key=lambda ident: (db.session.get(Onboarding, ident).created_at, ident), reverse=True)

    seen, url, pages = [], "/admin/onboardings", 0
    while url:
        response = admin.get(url)
        ids = listed_ids(response)
        assert len(ids) == (50 if pages < 2 else 20)
        seen += ids
        url = next_link(response)
        pages += 1
    assert pages == 3 and seen == expected
    # the filter travels with the pages
    assert "status=completed" in next_link(admin.get("/admin/onboardings?status=completed"))


def test_list_queries_do_not_grow_with_rows(admin, count_queries):
    page = gen_page("counted")
    for _ in range(3):
        gen_onboarding(page)
    db.session.commit()
    admin.get("/admin/onboardings")  # warm up: the CSRF token, caches
    with count_queries() as few:
        assert len(listed_ids(admin.get("/admin/onboardings"))) == 3
    for index in range(60):
        gen_onboarding(gen_page(f"counted-{index}"))
    db.session.commit()
    with count_queries() as many:
        assert len(listed_ids(admin.get("/admin/onboardings"))) == 50
    assert len(many) == len(few) <= 4


# -- CSV ----------------------------------------------------------------------------------------------


def test_csv_export_has_the_filtered_rows_and_is_streamed(admin, shops):
    response = admin.get(f"/admin/onboardings.csv?status=failed&page={shops['north'].id}")
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv"
    assert re.match(r'attachment; filename="onboardings-\d{8}-\d{4}\.csv"', response.headers["Content-Disposition"])
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [row["id"] for row in rows] == [str(shops["bolt"].id)]
    assert rows[0]["business_name"] == "Bolt & Nut" and rows[0]["page"] == "north"
    assert rows[0]["display_phone_number"] == "+44 20 7946 0000"
    assert rows[0]["waba_id"] == shops["bolt"].waba_id and rows[0]["status"] == "failed"


def test_csv_export_covers_more_than_one_batch_and_defuses_formulas(admin, monkeypatch):
    monkeypatch.setattr(onboardings_view, "CSV_BATCH", 7)
    page = gen_page("many")
    for index in range(23):
        gen_onboarding(page, business_name=f"Row {index}", waba=False, phone=False)
    gen_onboarding(page, business_name='=HYPERLINK("https://evil.example")', waba=False, phone=False)
    db.session.commit()
    rows = list(csv.DictReader(io.StringIO(admin.get("/admin/onboardings.csv").get_data(as_text=True))))
    assert len(rows) == 24 and len({row["id"] for row in rows}) == 24
    assert rows[0]["business_name"] == '\'=HYPERLINK("https://evil.example")'
    assert [row["business_name"] for row in rows[1:]] == [f"Row {index}" for index in reversed(range(23))]


# -- one onboarding -----------------------------------------------------------------------------------


def test_an_onboarding_tells_its_whole_story_without_the_token(admin, app):
    page = gen_page("story")
    onboarding = gen_onboarding(page, business_name="Story Co", status="failed", business_token="EAAsecret-token-xyz",
                                failure_reason="Subscribe to the account's webhooks: (#200) Permissions error")
    onboarding.steps.append(OnboardingStep(
        name="exchange_code", position=0, status="ok", attempts=1, runs=1, duration_ms=120,
        started_at=now_utc(), finished_at=now_utc()))
    onboarding.steps.append(OnboardingStep(
        name="subscribe_webhooks", position=30, status="failed", attempts=3, runs=2, duration_ms=431,
        detail="(#200) Permissions error", error_message="(#200) Permissions error", error_type="OAuthException",
        error_code=200, error_subcode=2494049, error_user_title="No permission",
        error_user_message="Ask the customer again", fbtrace_id="AbCdEfTrace123"))
    db.session.get(PhoneNumber, onboarding.phone_number_id).pin = "864209"
    db.session.get(PhoneNumber, onboarding.phone_number_id).quality_rating = "GREEN"
    db.session.add(MessageTemplate(id="9001", waba_id=onboarding.waba_id, name="order_update", language="en_US",
                                   status="APPROVED", category="UTILITY", components=[]))
    base = now_utc() - timedelta(hours=1)
    by_waba = gen_webhook_event(field="account_update", waba_id=onboarding.waba_id,
                                value={"event": "PARTNER_ADDED"}, received_at=base)
    by_phone = gen_webhook_event(field="phone_number_quality_update", phone_number_id=onboarding.phone_number_id,
                                 value={"event": "FLAGGED"}, received_at=base + timedelta(minutes=2), status="stored")
    by_link = gen_webhook_event(field="account_review_update", onboarding_id=onboarding.id,
                                value={"decision": "APPROVED"}, received_at=base + timedelta(minutes=1))
    unrelated = gen_webhook_event(field="account_update", waba_id="999", value={"event": "OTHER_CUSTOMER"})
    db.session.commit()

    html = admin.get(f"/admin/onboardings/{onboarding.id}").get_data(as_text=True)
    for expected in ("Story Co", "Subscribe to the account", "AbCdEfTrace123", "2494049", "OAuthException",
                     "No permission", "Ask the customer again", "431 ms", "order_update", "UTILITY",
                     onboarding.waba_id, "GREEN", "stored, encrypted", "Retry failed steps", "Reveal PIN"):
        assert expected in html, expected
    positions = [html.index(f"/admin/webhooks/{event.id}\"") for event in (by_waba, by_link, by_phone)]
    assert positions == sorted(positions)  # in time order
    assert f"/admin/webhooks/{unrelated.id}\"" not in html
    assert "not applied · stored" in html
    assert "EAAsecret-token-xyz" not in html and "864209" not in html


def test_retry_from_the_admin_runs_the_failed_step_against_the_simulator(admin, simulator, post_callback):
    simulator.fault("subscribed_apps", 200)  # a permission error: not retried by the Graph client
    body = post_callback(simulator.signup(business_name="Retry Co")).get_json()
    assert body["status"] == "failed"
    onboarding_id = body["id"]
    detail = admin.get(f"/admin/onboardings/{onboarding_id}").get_data(as_text=True)
    assert "Retry failed steps" in detail and "status-failed" in detail
    exchanges = len(simulator.calls("oauth_access_token"))

    response = admin.post(f"/admin/onboardings/{onboarding_id}/retry", follow_redirects=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Retried the failed steps. The onboarding is now completed." in html
    db.session.expire_all()
    onboarding = db.session.get(Onboarding, onboarding_id)
    assert onboarding.status == "completed"
    assert onboarding.step("subscribe_webhooks").status == "ok" and onboarding.step("subscribe_webhooks").runs == 2
    assert onboarding.step("exchange_code").runs == 1
    assert len(simulator.calls("oauth_access_token")) == exchanges  # the stored token, not a new exchange
    assert "Retry failed steps" not in html
    action = db.session.scalar(sa.select(AdminAction).where(AdminAction.onboarding_id == onboarding_id))
    assert action.action == "retried_steps" and "completed" in action.detail and action.admin_id == 1


def test_a_retry_that_cannot_run_says_why(admin):
    onboarding = gen_onboarding(gen_page("gone"), status="failed", business_token=None,
                                steps=(("exchange_code", "failed"),))
    db.session.commit()
    html = admin.post(f"/admin/onboardings/{onboarding.id}/retry", follow_redirects=True).get_data(as_text=True)
    assert "Not retried: the signup code could not be exchanged" in html
    assert db.session.scalar(sa.select(AdminAction.action)) == "retry_refused"


def test_reveal_pin_shows_it_once_and_logs_it(admin, app):
    onboarding = gen_onboarding(gen_page("pin"), business_name="Pin Co")
    db.session.get(PhoneNumber, onboarding.phone_number_id).pin = "864209"
    db.session.commit()
    assert "864209" not in admin.get(f"/admin/onboardings/{onboarding.id}").get_data(as_text=True)

    response = admin.post(f"/admin/onboardings/{onboarding.id}/reveal-pin")
    # POST, redirect, GET: the PIN is in neither the redirect nor the session, only in the GET's answer.
    assert response.status_code == 302 and "864209" not in response.headers["Location"]
    assert response.headers["Location"].startswith(f"/admin/onboardings/{onboarding.id}?shown=")
    assert "864209" not in (response.headers.get("Set-Cookie") or "")
    with admin.client.session_transaction() as session:
        assert "864209" not in repr(dict(session))
    shown = admin.get(response.headers["Location"])
    assert "864209" in shown.get_data(as_text=True)
    assert shown.headers["Cache-Control"] == "no-store"
    action = db.session.scalar(sa.select(AdminAction))
    assert (action.action, action.onboarding_id, action.admin_id) == ("revealed_pin", onboarding.id, 1)
    assert action.remote_addr == "127.0.0.1"

    # The browser's reload of that answer: the PIN is not shown again, nor logged again, and the page says so.
    reload = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "864209" not in reload and "not shown again on reload" in reload
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AdminAction)) == 1
    again = admin.get(f"/admin/onboardings/{onboarding.id}").get_data(as_text=True)
    assert "864209" not in again and "revealed pin" in again  # the log shows on the page


def test_reveal_pin_of_a_second_wabas_number_shows_that_numbers_pin(admin, app):
    """Every number a multi-WABA onboarding registered has its own PIN: each is revealed from its row, named,
    and only a number of the onboarding's own WABAs can be asked for."""
    onboarding = gen_onboarding(gen_page("pins"), business_name="Two Pins Co")
    db.session.get(PhoneNumber, onboarding.phone_number_id).pin = "111999"
    _waba, second = gen_more_waba(onboarding)
    second.pin = "222888"
    stranger = gen_onboarding(gen_page("stranger"))
    db.session.get(PhoneNumber, stranger.phone_number_id).pin = "333777"
    db.session.commit()
    page = admin.get(f"/admin/onboardings/{onboarding.id}").get_data(as_text=True)
    card = page.split(f'id="waba-{second.waba_id}"')[1].split("</section>")[0]
    assert "Reveal PIN" in card and f'name="number" value="{second.id}"' in card

    revealed = admin.post(f"/admin/onboardings/{onboarding.id}/reveal-pin", data={"number": second.id})
    location = revealed.headers["Location"]
    shown = admin.get(location).get_data(as_text=True)
    assert "222888" in shown and "111999" not in shown
    assert f"Two-step verification PIN of {phones.international(second.display_phone_number)}" in shown
    assert db.session.scalar(sa.select(AdminAction.detail)) == f"number {second.display_phone_number}"

    refused = admin.post(f"/admin/onboardings/{onboarding.id}/reveal-pin", data={"number": stranger.phone_number_id},
                         follow_redirects=True).get_data(as_text=True)
    assert "333777" not in refused and "No PIN is stored" in refused


def test_a_view_of_the_pin_is_for_that_onboarding_only_and_lapses(admin, monkeypatch):
    first, second = (gen_onboarding(gen_page(slug)) for slug in ("pin-a", "pin-b"))
    for onboarding, pin in ((first, "111222"), (second, "333444")):
        db.session.get(PhoneNumber, onboarding.phone_number_id).pin = pin
    db.session.commit()
    location = admin.post(f"/admin/onboardings/{first.id}/reveal-pin").headers["Location"]
    nonce = location.split("shown=")[1]
    assert "333444" not in admin.get(f"/admin/onboardings/{second.id}?shown={nonce}").get_data(as_text=True)
    assert "111222" not in admin.get(f"/admin/onboardings/{first.id}?shown=made-up").get_data(as_text=True)

    location = admin.post(f"/admin/onboardings/{first.id}/reveal-pin").headers["Location"]
    monkeypatch.setattr(shown_once, "VIEW_SECONDS", 0)  # as if VIEW_SECONDS had passed
    assert "111222" not in admin.get(location).get_data(as_text=True)


def test_detail_queries_do_not_grow_with_steps_events_and_templates(admin, count_queries):
    def seeded(size: int) -> int:
        onboarding = gen_onboarding(gen_page(f"detail-{size}"),
                                    steps=tuple((f"step_{index}", "ok") for index in range(size)))
        for index in range(size):
            gen_webhook_event(waba_id=onboarding.waba_id)
            db.session.add(MessageTemplate(id=f"{size}{index:04d}", waba_id=onboarding.waba_id, name=f"t{index}",
                                           language="en", status="APPROVED", components=[]))
        db.session.commit()
        return onboarding.id

    small, large = seeded(2), seeded(40)
    admin.get(f"/admin/onboardings/{small}")
    with count_queries() as few:
        admin.get(f"/admin/onboardings/{small}")
    with count_queries() as many:
        admin.get(f"/admin/onboardings/{large}")
    assert len(many) == len(few)


def test_a_multi_waba_onboarding_shows_each_wabas_state_numbers_and_templates_first_first(admin, count_queries):
    def seeded(templates: int) -> tuple[Onboarding, list]:
        onboarding = gen_onboarding(gen_page(f"multi-{templates}"), business_name="Multi Co")
        db.session.get(WhatsAppBusinessAccount, onboarding.waba_id).state = "active"
        db.session.add(MessageTemplate(id=gen_digits(), waba_id=onboarding.waba_id, name="first_hello",
                                       language="en", status="APPROVED", components=[]))
        others = []
        for position in (2, 3):
            waba, phone = gen_more_waba(onboarding, name=f"Account {position}", currency="IDR",
                                        business_verification_status="VERIFIED", account_review_status="APPROVED",
                                        state="restricted", state_reason=f"spam {position}", state_at=now_utc())
            phone.quality_rating = "YELLOW"
            for index in range(templates):
                db.session.add(MessageTemplate(id=gen_digits(), waba_id=waba.id, name=f"offer_{position}_{index}",
                                               language="id", status="PAUSED" if index == 0 else "APPROVED",
                                               status_reason="low quality" if index == 0 else None,
                                               category="MARKETING", components=[]))
            others.append((waba, phone, gen_webhook_event(waba_id=waba.id, value={"event": "ACCOUNT_RESTRICTION"})))
        db.session.commit()
        return onboarding, others

    onboarding, others = seeded(2)
    html = admin.get(f"/admin/onboardings/{onboarding.id}").get_data(as_text=True)
    first = html.index(onboarding.waba_id)
    for position, (waba, phone, event) in enumerate(others, start=2):
        card = html.split(f'id="waba-{waba.id}"')[1].split("</section>")[0]
        for expected in (f"{position} of 3", f"Account {position}", "IDR", "VERIFIED", "APPROVED",
                         f"restricted: {STATES['restricted'][0]}", f"spam {position}", phone.id, "YELLOW",
                         f"offer_{position}_0 (id): PAUSED · low quality", f"offer_{position}_1", "MARKETING",
                         f"/admin/webhooks?waba={waba.id}"):
            assert expected in card, expected
        assert first < html.index(f'id="waba-{waba.id}"')
        assert f'/admin/webhooks/{event.id}"' in html  # among the onboarding's events too
    assert "first_hello" in html and "1 of 3" in html and "first_hello" not in card

    small, large = onboarding.id, seeded(40)[0].id
    with count_queries() as few:
        admin.get(f"/admin/onboardings/{small}")
    with count_queries() as many:
        admin.get(f"/admin/onboardings/{large}")
    assert len(many) == len(few)


def test_a_missing_onboarding_is_404(admin):
    assert admin.get("/admin/onboardings/424242").status_code == 404
