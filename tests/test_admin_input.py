"""What the admin does with addresses and query strings it cannot use: 400 or 404, never a crash."""

from __future__ import annotations

import pytest

from esu.extensions import db

from .admin_support import gen_page, gen_target

pytest_plugins = ["tests.admin_fixtures"]  # the admin fixtures: admin, stored_admin, count_queries…


@pytest.mark.parametrize("waba", ["١٢٣", "１２３"])
def test_a_waba_filter_takes_ascii_digits_only(admin, waba):
    response = admin.get("/admin/webhooks", query_string={"waba": waba})

    assert response.status_code == 400
    assert "A WABA id is digits only." in response.get_data(as_text=True)


@pytest.mark.parametrize("after", ["²", "١٢٣", "x", "2147483648", "99999999999999999999"])
def test_a_deliveries_cursor_esu_did_not_make_is_a_400(admin, after):
    target = gen_target(gen_page())
    db.session.commit()

    response = admin.get(f"/admin/forwarding/{target.id}", query_string={"after": after})

    assert response.status_code == 400
    assert "first page" in response.get_data(as_text=True)


@pytest.mark.parametrize("path", [
    "/admin/onboardings/99999999999999999999",  # above 2^63
    "/admin/onboardings/2147483648",  # above 2^31 - 1: no row can have it (PostgreSQL's INTEGER)
    "/admin/onboardings/١٢",
    "/admin/webhooks/99999999999999999999",
    "/admin/pages/99999999999999999999",
    "/admin/forwarding/99999999999999999999",
])
def test_an_id_no_row_can_have_is_404(admin, path):
    response = admin.get(path)

    assert response.status_code == 404
    assert "text/html" in response.headers["Content-Type"]


def test_the_largest_id_a_row_can_have_is_looked_up(admin):
    assert admin.get("/admin/onboardings/2147483647").status_code == 404  # looked up, not there


@pytest.mark.parametrize("url", ["/admin/onboardings", "/admin/webhooks"])
def test_a_cursor_past_any_row_is_a_400_that_points_to_the_first_page(admin, url):
    for after in ("1-99999999999999999999", "1-2147483648", "not-a-cursor"):
        response = admin.get(url, query_string={"after": after})
        assert response.status_code == 400
        assert "first page" in response.get_data(as_text=True)


@pytest.mark.parametrize("url", [
    "/admin/onboardings?q=a%00", "/admin/onboardings.csv?q=%00", "/admin/webhooks?field=a%00",
    "/admin/webhooks?a%00=1",
])
def test_a_nul_in_a_search_or_filter_is_400(admin, url):
    """PostgreSQL refuses a NUL in text: the query is not made."""
    response = admin.get(url)

    assert response.status_code == 400
    assert "NUL character" in response.get_data(as_text=True)


def test_a_nul_in_a_form_is_400_and_changes_nothing(admin):
    page = gen_page()
    db.session.commit()

    response = admin.post(f"/admin/pages/{page.id}", data={"slug": "shop", "title": "Sh\x00p"})

    assert response.status_code == 400
    db.session.refresh(page)
    assert page.title == "Page shop"
