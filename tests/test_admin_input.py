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


@pytest.mark.parametrize("after", ["²", "١٢٣", "x"])
def test_a_deliveries_cursor_that_is_not_ascii_digits_lists_the_first_page(admin, after):
    target = gen_target(gen_page())
    db.session.commit()

    response = admin.get(f"/admin/forwarding/{target.id}", query_string={"after": after})

    assert response.status_code == 200
