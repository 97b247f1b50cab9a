"""Finding an onboarding from what a customer says (a piece of the business name, the number in any form, the
reference the widget showed them), numbers shown one way everywhere, and archiving test data out of lists,
charts and funnels."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from esu import reports
from esu.extensions import db
from esu.models import now_utc

from .admin_support import gen_onboarding, gen_page, gen_signup_event
from .test_admin_onboardings import listed_ids, row_html

pytest_plugins = ["tests.admin_fixtures"]

JAKARTA_NUMBER = "+62 812-3456-7890"


@pytest.fixture
def customers(app):
    """A page for Indonesia (its pre-fill's address), one with no country, and a customer on each with the
    same Indonesian number as Meta writes it (digits with the country code)."""
    jakarta = gen_page("jakarta")
    jakarta.prefill = {"business": {"address": {"country": "ID"}}}
    anywhere = gen_page("anywhere")
    now = now_utc()
    toko = gen_onboarding(jakarta, business_name="Toko ÉCOLE Sejahtera", display_phone_number="6281234567890",
                          client_ref="ref_0123456789abcdef", created_at=now - timedelta(hours=2))
    other = gen_onboarding(anywhere, business_name="Warung Dua", display_phone_number="6281234567890",
                           created_at=now - timedelta(hours=1))
    acme = gen_onboarding(anywhere, business_name="Acme", display_phone_number="+1 555-010-0001",
                          created_at=now - timedelta(hours=3))
    db.session.commit()
    return {"jakarta": jakarta, "toko": toko, "other": other, "acme": acme}


def search(admin, term: str) -> list[int]:
    return listed_ids(admin.get("/admin/onboardings", query_string={"q": term}))


@pytest.mark.parametrize("term", ["sejahtera", "SEJAHTERA", "ko éc", "école", "Toko ÉCOLE Sejahtera"])
def test_any_part_of_the_name_in_any_case_and_script(admin, customers, term):
    assert search(admin, term) == [customers["toko"].id]


@pytest.mark.parametrize("term", ["+62 812-3456-7890", "6281234567890", "+6281234567890", "62 812 3456 7890",
                                  "(+62) 812.3456.7890"])
def test_the_number_in_any_international_form(admin, customers, term):
    assert search(admin, term) == [customers["other"].id, customers["toko"].id]


def test_a_national_number_is_read_in_the_country_of_the_onboardings_page(admin, customers):
    # Only the Indonesian page's customer: on the page with no country, 0812… names no number.
    assert search(admin, "081234567890") == [customers["toko"].id]
    assert search(admin, "0812-3456-7890") == [customers["toko"].id]
    assert search(admin, "081234567899") == []


def test_a_pages_country_may_come_from_its_phones_calling_code(admin, customers):
    customers["jakarta"].prefill = {"business": {"phone": {"code": 62, "number": "81200000000"}}}
    db.session.commit()
    assert search(admin, "081234567890") == [customers["toko"].id]


@pytest.mark.parametrize("form", ["onboarding {id}", "Onboarding {id}", "onboarding{id}", "#{id}"])
def test_the_reference_the_widget_shows_and_the_onboarding_id(admin, customers, form):
    toko = customers["toko"]
    assert search(admin, form.format(id=toko.id)) == [toko.id]
    # The bare id finds it too, beside numbers that start with those digits.
    assert toko.id in search(admin, str(toko.id))


def test_the_browsers_reference(admin, customers):
    assert search(admin, "ref_0123456789abcdef") == [customers["toko"].id]
    assert search(admin, "ref_0123456789abcde") == []  # whole, not a piece


def test_the_onboardings_page_shows_its_references(admin, customers):
    toko = customers["toko"]
    html = admin.get(f"/admin/onboardings/{toko.id}").get_data(as_text=True)
    assert f"<code>onboarding {toko.id}</code>" in html
    assert "<code>ref_0123456789abcdef</code>" in html


def test_every_number_is_shown_in_international_format(admin, customers, client):
    toko = customers["toko"]
    assert JAKARTA_NUMBER in row_html(admin.get("/admin/onboardings"), toko.id)
    assert "6281234567890" not in admin.get("/admin/onboardings").get_data(as_text=True)
    page = admin.get(f"/admin/onboardings/{toko.id}").get_data(as_text=True)
    assert f"<dt>Number</dt><dd>{JAKARTA_NUMBER}</dd>" in page
    rows = list(csv.DictReader(io.StringIO(admin.get("/admin/onboardings.csv").get_data(as_text=True))))
    assert {row["display_phone_number"] for row in rows} == {JAKARTA_NUMBER, "+1 555-010-0001"}
    # What the widget shows the customer: the onboarding's progress, as the page polls it.
    summary = client.get(f"/signup/jakarta/onboardings/{toko.client_ref}").get_json()
    assert summary["display_phone_number"] == JAKARTA_NUMBER


def test_the_dashboard_shows_numbers_in_international_format(admin):
    gen_onboarding(gen_page("wait"), status="awaiting_verification", business_name=None,
                   display_phone_number="6281234567890")
    db.session.commit()
    assert JAKARTA_NUMBER in admin.get("/admin/").get_data(as_text=True)


# -- archiving ----------------------------------------------------------------------------------------


def test_archive_hides_from_the_list_the_signals_the_chart_and_the_funnel_and_unarchive_restores(admin):
    page = gen_page("tests", title="Test Page")
    kept = gen_onboarding(page, business_name="Real Customer", status="completed")
    junk = gen_onboarding(page, business_name="Test Junk", status="failed")
    junk_done = gen_onboarding(page, business_name="Test Done", status="completed")
    gen_signup_event(page, "view")
    db.session.commit()

    def seen():
        days = reports.onboardings_by_day(7)
        funnel = next(f for f in reports.funnels(7) if f.page.id == page.id)
        signals = {signal.key: signal.count for signal in reports.needs_attention()}
        return (listed_ids(admin.get("/admin/onboardings")), sum(day.total for day in days), funnel.onboarded,
                signals.get("failed", 0))

    assert seen() == ([junk_done.id, junk.id, kept.id], 3, 2, 1)

    for onboarding in (junk, junk_done):
        response = admin.post(f"/admin/onboardings/{onboarding.id}/archive", follow_redirects=True)
        assert "Archived: this onboarding no longer shows in lists, charts or funnels." in response.get_data(
            as_text=True)

    assert seen() == ([kept.id], 1, 1, 0)
    dashboard = admin.get("/admin/").get_data(as_text=True)
    assert "Test Junk" not in dashboard and "1 in all" in dashboard
    assert listed_ids(admin.get("/admin/onboardings?archived=only")) == [junk_done.id, junk.id]
    assert listed_ids(admin.get("/admin/onboardings?archived=all")) == [junk_done.id, junk.id, kept.id]
    assert listed_ids(admin.get("/admin/onboardings?q=junk")) == []
    assert listed_ids(admin.get("/admin/onboardings?q=junk&archived=only")) == [junk.id]
    assert "Test Junk" not in admin.get("/admin/onboardings.csv").get_data(as_text=True)
    page_html = admin.get(f"/admin/onboardings/{junk.id}").get_data(as_text=True)  # still there, whole
    assert "<dt>Archived</dt>" in page_html and f"/admin/onboardings/{junk.id}/unarchive" in page_html

    admin.post(f"/admin/onboardings/{junk.id}/unarchive")
    admin.post(f"/admin/onboardings/{junk_done.id}/unarchive")

    assert seen() == ([junk_done.id, junk.id, kept.id], 3, 2, 1)
    page_html = admin.get(f"/admin/onboardings/{junk.id}").get_data(as_text=True)
    assert "archived onboarding" in page_html and "unarchived onboarding" in page_html  # the admin actions


def test_an_archived_onboardings_number_leaves_the_dashboard_with_it(admin):
    onboarding = gen_onboarding(gen_page("q"), business_name="Test Number")
    onboarding.phone_number.quality_rating = "RED"
    db.session.commit()
    assert {signal.key for signal in reports.needs_attention()} == {"quality"}

    admin.post(f"/admin/onboardings/{onboarding.id}/archive")

    assert reports.needs_attention() == []


def test_archive_is_a_post_with_the_csrf_token(admin, customers):
    toko = customers["toko"]
    assert admin.get(f"/admin/onboardings/{toko.id}/archive").status_code == 405
    assert admin.client.post(f"/admin/onboardings/{toko.id}/archive").status_code == 400
    assert admin.post("/admin/onboardings/999999/archive").status_code == 404
    assert toko.id in search(admin, "sejahtera")
