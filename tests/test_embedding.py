"""A signup page inside the agency's client sites: which sites may frame which page, as the browser reads the
headers; the admin's list of sites and its snippet; the visitor's cookie inside such a frame."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from esu import create_app
from esu.embedding import parse_origins
from esu.extensions import db
from esu.models import SignupPage

from .admin_support import gen_page, log_in_session
from .test_security import policy

pytest_plugins = ["tests.admin_fixtures"]  # the admin fixtures: admin, stored_admin…

SITES = (
    "https://www.wool.example\nHTTPS://Shop.Wool.Example:443/\nhttps://shop.wool.example:8443, http://localhost:3000"
)
STORED = [
    "https://www.wool.example",
    "https://shop.wool.example",
    "https://shop.wool.example:8443",
    "http://localhost:3000",
]


def page_by_slug(slug: str) -> SignupPage | None:
    return db.session.scalar(sa.select(SignupPage).where(SignupPage.slug == slug))


def assert_never_framed(response) -> None:
    assert policy(response)["frame-ancestors"] == ["'none'"]
    assert response.headers["X-Frame-Options"] == "DENY"


def cookie_flags(response) -> tuple[str, set[str]]:
    name, _, rest = response.headers["Set-Cookie"].partition("=")
    return name, {flag.strip().lower() for flag in rest.split(";")[1:]}


def test_a_page_is_framed_by_the_sites_it_lists_and_by_no_other(admin, client):
    response = admin.post(
        "/admin/pages/new", data={"slug": "wool", "title": "Connect Wind & Wool", "embed_origins": SITES}
    )
    assert response.status_code == 302
    assert page_by_slug("wool").embed_origins == STORED  # as browsers compare them: lowercase, no :443, once each
    gen_page("bakery")
    db.session.commit()

    for _ in range(2):  # rendered, then answered from the process's cache with the headers it was given
        page = client.get("/signup/wool")
        assert page.status_code == 200
        assert policy(page)["frame-ancestors"] == STORED
        # X-Frame-Options has no "these sites": a page some sites may frame goes without it.
        assert "X-Frame-Options" not in page.headers
        assert page.headers["Cross-Origin-Opener-Policy"] == "same-origin-allow-popups"  # keeps Meta's popup

    assert_never_framed(client.get("/signup/bakery"))  # another page lists no site
    assert_never_framed(client.get("/signup/wool/session"))  # the page's JSON is no page to frame
    assert_never_framed(client.get("/signup/nowhere"))
    assert_never_framed(admin.get(f"/admin/pages/{page_by_slug('wool').id}"))
    assert_never_framed(admin.get("/admin/"))


def test_a_change_to_the_sites_shows_on_the_next_answer(admin, client):
    page = gen_page("wool", title="Connect Wind & Wool")
    db.session.commit()
    assert_never_framed(client.get("/signup/wool"))  # now cached in this process
    form = {"slug": "wool", "title": "Connect Wind & Wool"}
    assert (
        admin.post(f"/admin/pages/{page.id}", data={**form, "embed_origins": "https://www.wool.example"}).status_code
        == 302
    )
    assert policy(client.get("/signup/wool"))["frame-ancestors"] == ["https://www.wool.example"]
    assert "https://www.wool.example" in admin.get(f"/admin/pages/{page.id}").get_data(as_text=True)  # shown to edit

    assert admin.post(f"/admin/pages/{page.id}", data={**form, "embed_origins": ""}).status_code == 302
    assert_never_framed(client.get("/signup/wool"))


@pytest.mark.parametrize(
    ("written", "says"),
    [
        ("www.wool.example", "write its origin, as in https://www.client-site.com"),
        ("http://www.wool.example", "only https:// sites may embed"),
        ("https://www.wool.example/shop/whatsapp", "has a path"),
        ("https://www.wool.example/?ref=1", "has a path"),
        ("https://*.wool.example", "Wildcards are not accepted"),
        ("ftp://www.wool.example", "is not a site&#39;s address"),
        ("https://owner:secret@www.wool.example", "is not a site&#39;s address"),
        ("https://www.wool.example:99999", "is not a site&#39;s address"),
        ("https://www.wool.example;script-src", "is not a site&#39;s address"),  # no way into the policy's text
        ("https://www.wool.example'", "is not a site&#39;s address"),
        ("javascript:alert(1)", "is not a site&#39;s address"),
        ("https://[2001:db8::1]", "is not a site&#39;s address"),
        ("\n".join(f"https://shop{n}.wool.example" for n in range(21)), "At most 20 sites"),
    ],
)
def test_the_form_refuses_what_is_not_a_sites_origin(admin, written, says):
    response = admin.post("/admin/pages/new", data={"slug": "wool", "title": "Wool", "embed_origins": written})
    assert response.status_code == 200
    assert says in response.get_data(as_text=True)
    assert page_by_slug("wool") is None


def test_origins_are_written_as_browsers_send_them():
    assert parse_origins(
        "https://Bücher.example https://[::1]:8443 http://app.localhost:5173 https://x.example:443/"
    ) == ["https://xn--bcher-kva.example", "https://[::1]:8443", "http://app.localhost:5173", "https://x.example"]
    assert parse_origins("  \n ") == []


def test_the_admin_shows_the_snippet_a_client_site_pastes(admin, client):
    page = gen_page("wool", title="Connect Wind & Wool")
    db.session.commit()
    html = admin.get(f"/admin/pages/{page.id}").get_data(as_text=True)
    snippet = (
        "&lt;div data-esu-signup-embed=&#34;http://localhost/signup/wool&#34;&gt;"
        "&lt;a href=&#34;http://localhost/signup/wool&#34;&gt;Connect Wind &amp;amp; Wool&lt;/a&gt;&lt;/div&gt;\n"
        "&lt;script src=&#34;http://localhost/static/esu-embed.js&#34; async&gt;&lt;/script&gt;"
    )
    assert snippet in html
    assert "until then browsers refuse to show the page inside another site" in html  # no site listed yet
    with client.get("/static/esu-embed.js") as script:
        assert script.status_code == 200 and script.mimetype == "text/javascript"


@pytest.fixture
def own_app(app_config, app):  # app: empties the tables after
    """An app of its own on the test database, with no app context pushed: each request gets its own ``g``,
    as in a server (Flask-WTF keeps a request's CSRF token there)."""
    made = create_app(app_config)
    yield made
    with made.app_context():
        db.engine.dispose()


def test_the_visitor_of_a_framable_page_gets_a_partitioned_cookie_apart_from_the_admins(own_app, stored_admin):
    """Inside an iframe on another site a browser keeps only a SameSite=None cookie, and, where it blocks
    third-party cookies, only a partitioned one (CHIPS); Secure is required for both."""
    gen_page("wool", embed_origins=["https://www.wool.example"])
    gen_page("bakery")
    db.session.commit()
    browser = own_app.test_client()
    log_in_session(browser, stored_admin)
    name, flags = cookie_flags(browser.get("/signup/wool/session"))
    assert name == "esu_signup"
    assert {"samesite=none", "secure", "partitioned", "httponly", "path=/signup/"} <= flags
    # The visitor's session is not the admin's: the admin is still logged in.
    assert browser.get("/admin/").status_code == 200

    name, flags = cookie_flags(own_app.test_client().get("/signup/bakery/session"))
    assert name == "esu_signup" and "samesite=lax" in flags and "partitioned" not in flags
    # Over HTTPS the name has the __Secure- prefix, which browsers take only with Secure.
    name, flags = cookie_flags(own_app.test_client().get("/signup/bakery/session", base_url="https://esu.lan"))
    assert name == "__Secure-esu_signup" and {"secure", "samesite=lax"} <= flags

    # Over plain HTTP away from loopback a browser drops a Secure cookie: an ordinary one, the page unframed.
    name, flags = cookie_flags(own_app.test_client().get("/signup/wool/session", base_url="http://esu.lan:5000"))
    assert name == "esu_signup" and "samesite=lax" in flags and "secure" not in flags


def test_the_simulators_dialog_keeps_the_framed_page_as_its_opener(app_config, simulator):
    """Meta's dialog answers "the window that spawned the flow" (meta-docs embedded-signup/implementation.md,
    Step 1), which may be a page in an iframe on another site. A popup opened from such a frame starts
    without an opener policy; a dialog with one of its own would be put in a new browsing context group,
    cut off from its opener (HTML, "check if COOP values require a browsing context group switch")."""
    app = create_app({**app_config, "ESU_SIMULATOR": True, "META_GRAPH_URL": None, "META_SDK_URL": None})
    try:
        response = app.test_client().get("/_meta/dialog/oauth?origin=http://127.0.0.1:5000&extras={}")
        assert response.status_code == 200
        assert response.headers["Cross-Origin-Opener-Policy"] == "unsafe-none"
        assert_never_framed(response)
    finally:
        with app.app_context():
            db.engine.dispose()
