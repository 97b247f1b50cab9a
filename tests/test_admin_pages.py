"""Signup pages in the admin: create, edit, disable, enable; the form's validation."""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

from esu.extensions import db
from esu.models import SignupPage
from esu.models.admin import AdminAction

from .admin_support import gen_page

pytest_plugins = ["tests.admin_fixtures"]  # the admin fixtures: admin, stored_admin, count_queries…

INCLUDE = ("{% from &#34;signup/_widget.html&#34; import embedded_signup %}"
           "{{ embedded_signup(page) }}")
VALID = {
    "slug": "spring-sale", "title": "Connect WhatsApp", "client_name": "Spring Co", "intro": "Hello",
    "config_id": "123456789", "feature_type": "", "business_name": "Spring Co", "email": "owner@spring.example",
    "website": "https://spring.example", "phone_code": "1", "phone_number": "6505559999", "country": "us",
    "timezone": "UTC-07:00",
}


def page_by_slug(slug: str) -> SignupPage | None:
    return db.session.scalar(sa.select(SignupPage).where(SignupPage.slug == slug))


def test_create_a_page_with_its_prefill(admin, client):
    response = admin.post("/admin/pages/new", data=VALID)
    assert response.status_code == 302
    page = page_by_slug("spring-sale")
    assert response.headers["Location"] == f"/admin/pages/{page.id}"
    assert (page.title, page.client_name, page.config_id, page.feature_type, page.enabled) == (
        "Connect WhatsApp", "Spring Co", "123456789", "", True)
    assert page.prefill == {"business": {
        "name": "Spring Co", "email": "owner@spring.example", "website": "https://spring.example",
        "phone": {"code": 1, "number": "6505559999"}, "address": {"country": "US"}, "timezone": "UTC-07:00"}}
    html = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "http://localhost/signup/spring-sale" in html
    assert INCLUDE in html
    page_html = client.get("/signup/spring-sale").get_data(as_text=True)
    # The widget hands Meta the stored extras.setup as it is: extras.setup.business.name, not business.business.
    settings = json.loads(re.search(r"<script [^>]*data-esu-settings>(.*?)</script>", page_html, re.S).group(1))
    assert settings["login"]["extras"]["setup"] == page.prefill
    action = db.session.scalar(sa.select(AdminAction))
    assert (action.action, action.page_id) == ("created_page", page.id)


def test_a_page_needs_only_a_slug_and_a_title(admin):
    assert admin.post("/admin/pages/new", data={"slug": "bare", "title": "Bare"}).status_code == 302
    page = page_by_slug("bare")
    assert page.prefill == {} and page.config_id is None and page.client_name is None


@pytest.mark.parametrize(("field", "value", "message"), [
    ("slug", "Spring Sale", "lowercase letters, digits and &#39;-&#39;"),
    ("slug", "-spring", "lowercase letters"),
    ("slug", "a" * 65, "at most 64"),
    ("slug", "", "This field is required"),
    ("title", "", "This field is required"),
    ("config_id", "12ab", "digits only"),
    ("feature_type", "only_waba_sharing", "Not a valid choice"),
    ("business_name", "x" * 101, "100"),
    ("email", "not-an-email", "Enter an email address"),
    ("website", "javascript://spring.example/%0aalert(1)", "https://"),
    ("website", "spring.example", "https://"),
    ("phone_code", "abc", "Not a valid integer"),
    ("phone_code", "1000", "1 to 3 digits"),
    ("phone_number", "650-555", "Digits only"),
    ("country", "XX", "ISO 3166"),
    ("country", "USA", "ISO 3166"),
    ("timezone", "PST", "UTC-07:00"),
    ("timezone", "UTC+15:00", "UTC-07:00"),
])
def test_the_form_refuses_bad_values(admin, field, value, message):
    response = admin.post("/admin/pages/new", data={**VALID, field: value})
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert page_by_slug(VALID["slug"]) is None


def test_phone_code_and_number_come_together(admin):
    response = admin.post("/admin/pages/new", data={**VALID, "phone_code": ""})
    assert "Give both the calling code and the number" in response.get_data(as_text=True)
    assert page_by_slug(VALID["slug"]) is None


def test_a_slug_is_unique(admin):
    gen_page("spring-sale")
    db.session.commit()
    response = admin.post("/admin/pages/new", data=VALID)
    assert "A signup page &#39;spring-sale&#39; already exists." in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SignupPage)) == 1


def test_edit_a_page(admin):
    admin.post("/admin/pages/new", data=VALID)
    page = page_by_slug("spring-sale")
    form = admin.get(f"/admin/pages/{page.id}").get_data(as_text=True)
    assert 'value="6505559999"' in form and 'value="US"' in form and 'value="UTC-07:00"' in form

    changed = {**VALID, "title": "Summer", "slug": "summer-sale", "phone_code": "", "phone_number": "",
               "feature_type": "whatsapp_business_app_onboarding"}
    assert admin.post(f"/admin/pages/{page.id}", data=changed).status_code == 302
    db.session.expire_all()
    assert (page.slug, page.title, page.feature_type) == ("summer-sale", "Summer", "whatsapp_business_app_onboarding")
    assert "phone" not in page.prefill["business"]


def test_an_edit_shows_on_the_next_get_of_the_page(admin, client):
    page = gen_page("autumn", title="Autumn sale")
    db.session.commit()
    assert b"Autumn sale" in client.get("/signup/autumn").data  # now cached in this process
    assert admin.post(f"/admin/pages/{page.id}", data={"slug": "autumn", "title": "Winter sale"}).status_code == 302
    assert b"Winter sale" in client.get("/signup/autumn").data
    assert admin.post(f"/admin/pages/{page.id}", data={"slug": "winter", "title": "Winter sale"}).status_code == 302
    assert client.get("/signup/autumn").headers["Location"] == "/signup/winter"  # the cached answer is gone
    assert b"Winter sale" in client.get("/signup/winter").data


def test_a_changed_slug_redirects_its_old_links_and_the_admin_says_so(admin, client):
    page = gen_page("spring", title="Spring sale")
    db.session.commit()
    response = admin.post(f"/admin/pages/{page.id}", data={"slug": "summer", "title": "Spring sale"},
                          follow_redirects=True)
    assert "/signup/spring now redirects to /signup/summer" in response.get_data(as_text=True)

    moved = client.get("/signup/spring?utm_source=mail&ref=a%20b")
    assert moved.status_code == 301
    assert moved.headers["Location"] == "/signup/summer?utm_source=mail&ref=a%20b"
    assert moved.headers["Cache-Control"] == "no-cache"  # a page that takes the slug later must be reached
    assert b"Spring sale" in client.get("/signup/spring", follow_redirects=True).data
    action = db.session.scalar(sa.select(AdminAction).order_by(AdminAction.id.desc()))
    assert (action.action, action.detail) == ("updated_page", "summer (was spring)")

    # Saved without a change of slug: nothing said about addresses.
    response = admin.post(f"/admin/pages/{page.id}", data={"slug": "summer", "title": "Summer sale"},
                          follow_redirects=True)
    assert "redirects" not in response.get_data(as_text=True)


def test_former_slugs_follow_the_page_and_give_way_to_a_page_that_takes_them(admin, client):
    page = gen_page("one", title="The page")
    db.session.commit()
    for slug in ("two", "three"):
        assert admin.post(f"/admin/pages/{page.id}", data={"slug": slug, "title": "The page"}).status_code == 302
    assert client.get("/signup/one").headers["Location"] == "/signup/three"  # one hop, not a chain
    assert client.get("/signup/two").headers["Location"] == "/signup/three"

    # Back to a former slug: it is the page's own again, no loop.
    assert admin.post(f"/admin/pages/{page.id}", data={"slug": "one", "title": "The page"}).status_code == 302
    assert client.get("/signup/one").status_code == 200
    assert client.get("/signup/three").headers["Location"] == "/signup/one"

    # Another page may take a former slug: the address is then that page's.
    assert admin.post("/admin/pages/new", data={"slug": "two", "title": "Another page"}).status_code == 302
    assert b"Another page" in client.get("/signup/two").data
    other = db.session.scalar(sa.select(SignupPage).where(SignupPage.slug == "two"))
    assert admin.post(f"/admin/pages/{other.id}", data={"slug": "four", "title": "Another page"}).status_code == 302
    assert client.get("/signup/two").headers["Location"] == "/signup/four"
    assert client.get("/signup/three").headers["Location"] == "/signup/one"

    # A disabled page's old links answer 404, as its address does.
    admin.post(f"/admin/pages/{page.id}/disable")
    assert client.get("/signup/three").status_code == 404
    assert client.get("/signup/nowhere").status_code == 404


def test_editing_keeps_the_own_slug_but_not_another_pages(admin):
    gen_page("taken")
    page = gen_page("mine")
    db.session.commit()
    assert admin.post(f"/admin/pages/{page.id}", data={"slug": "mine", "title": "Still mine"}).status_code == 302
    response = admin.post(f"/admin/pages/{page.id}", data={"slug": "taken", "title": "Grab"})
    assert "already exists" in response.get_data(as_text=True)
    db.session.expire_all()
    assert page.slug == "mine"


def test_disable_and_enable_a_page(admin, client):
    page = gen_page("seasonal")
    db.session.commit()
    assert client.get("/signup/seasonal").status_code == 200  # now cached in this process
    response = admin.post(f"/admin/pages/{page.id}/disable", data={"back": "list"})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/pages"
    assert client.get("/signup/seasonal").status_code == 404
    html = admin.get("/admin/pages").get_data(as_text=True)
    assert "disabled" in html and f"/admin/pages/{page.id}/enable" in html
    assert admin.post(f"/admin/pages/{page.id}/enable").headers["Location"] == f"/admin/pages/{page.id}"
    assert client.get("/signup/seasonal").status_code == 200
    assert [action for (action,) in db.session.execute(sa.select(AdminAction.action).order_by(AdminAction.id))] == [
        "disabled_page", "enabled_page"]


def test_pages_list_queries_do_not_grow_with_pages(admin, count_queries):
    for index in range(3):
        gen_page(f"few-{index}")
    db.session.commit()
    with count_queries() as few:
        admin.get("/admin/pages")
    for index in range(40):
        gen_page(f"many-{index}")
    db.session.commit()
    with count_queries() as many:
        html = admin.get("/admin/pages").get_data(as_text=True)
    assert html.count("/signup/many-") == 40 * 2
    assert len(many) == len(few)
