"""The signup page and its widget as HTML, the funnel events endpoint, the page's weight, and the
simulator's SDK stand-in as served."""

from __future__ import annotations

import gzip
import json
import re
import time
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa
from flask import g, render_template_string
from jinja2 import ChoiceLoader, DictLoader

from esu import signup_cache
from esu.extensions import db
from esu.models import SignupEvent, SignupPage, now_utc
from esu.security import render_policy

from .conftest import META
from .helpers import new_ref

BUSINESS = {
    "name": "Wind & Wool",
    "email": "support@windandwool.com",
    "website": "https://windandwool.com/",
    "phone": {"code": "1", "number": "6505559999"},
    "address": {"streetAddress1": "1 Hacker Way", "streetAddress2": "", "city": "Menlo Park", "country": "US"},
    "timezone": "UTC-07:00",
}
#: A page's pre-fill is Meta's ``extras.setup`` (pre-filling-screens.md), stored and sent as it is.
PREFILL = {"business": BUSINESS}


class Markup(HTMLParser):
    """Every tag of a page with its attributes, and the text of each <script>."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs)
            self.scripts.append((self._script, ""))

    def handle_data(self, data):
        if self._script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None


def widget_settings(html: str) -> dict:
    scripts = [text for attrs, text in Markup(html).scripts if "data-esu-settings" in attrs]
    assert len(scripts) == 1, "the page carries one widget settings block"
    return json.loads(scripts[0])


def events(**where) -> list[SignupEvent]:
    query = sa.select(SignupEvent).filter_by(**where).order_by(SignupEvent.id)
    return list(db.session.scalars(query))


# -- the page and the widget ---------------------------------------------------------------------


def test_page_passes_its_settings_to_the_sdk_as_meta_documents(client, page):
    page.config_id = "5550001112223334"
    page.feature_type = "whatsapp_business_app_onboarding"
    page.prefill = PREFILL
    db.session.commit()

    response = client.get("/signup/demo")

    assert response.status_code == 200
    settings = widget_settings(response.get_data(as_text=True))
    assert settings["init"] == {"appId": META["META_APP_ID"], "autoLogAppEvents": True, "xfbml": True,
                                "version": "v25.0"}
    business = {**BUSINESS, "phone": {"code": 1, "number": "6505559999"},  # Meta wants an integer code
                "address": {"streetAddress1": "1 Hacker Way", "city": "Menlo Park", "country": "US"}}
    assert settings["login"] == {
        "config_id": "5550001112223334",
        "response_type": "code",
        "override_default_response_type": True,
        "extras": {"setup": {"business": business}, "featureType": "whatsapp_business_app_onboarding",
                   "sessionInfoVersion": "3"},
    }
    assert settings["sdk_url"] == "https://connect.facebook.net/en_US/sdk.js"
    assert settings["urls"] == {"callback": "/signup/demo/callback", "events": "/signup/demo/events",
                                "onboardings": "/signup/demo/onboardings/", "session": "/signup/demo/session",
                                "resume": "/signup/demo/resume"}
    assert settings["simulator_origin"] is None  # with the real Meta, only facebook.com is trusted


def test_page_without_prefill_or_override_uses_the_app_configuration(client, page):
    settings = widget_settings(client.get("/signup/demo").get_data(as_text=True))
    assert settings["login"]["config_id"] == META["META_CONFIG_ID"]
    assert settings["login"]["extras"] == {"setup": {}, "featureType": "", "sessionInfoVersion": "3"}


def test_macro_renders_its_options(app, page):
    page.prefill = PREFILL
    db.session.commit()
    with app.test_request_context("/"):
        html = render_template_string(
            '{% from "signup/_widget.html" import embedded_signup %}'
            '{{ embedded_signup(page, button_label="Start with WhatsApp", config_id="7770001112223334", '
            'feature_type="whatsapp_business_app_onboarding", prefill={"business": {"name": "Other Shop"}}, show_steps=False) }}',
            page=page,
        )
    settings = widget_settings(html)
    assert settings["login"]["config_id"] == "7770001112223334"
    assert settings["login"]["extras"]["featureType"] == "whatsapp_business_app_onboarding"
    assert settings["login"]["extras"]["setup"] == {"business": {"name": "Other Shop"}}
    assert settings["show_steps"] is False
    launch = re.search(r"<button[^>]*data-esu-launch[^>]*>([^<]*)</button>", html)
    assert launch and launch.group(1) == "Start with WhatsApp"


def test_macro_refuses_a_prefill_in_another_shape(app, page):
    """The business object alone is not extras.setup: said at once, not sent to Meta where nothing shows it."""
    with app.test_request_context("/"), pytest.raises(ValueError, match="extras.setup"):
        render_template_string('{% from "signup/_widget.html" import embedded_signup %}'
                               '{{ embedded_signup(page, prefill={"name": "Other Shop"}) }}', page=page)


def test_page_markup_runs_under_a_strict_content_security_policy(client, page):
    """script-src 'self'; style-src 'self': no inline code, handler or style anywhere on the page."""
    markup = Markup(client.get("/signup/demo").get_data(as_text=True))
    for attrs, text in markup.scripts:
        assert attrs.get("src") or attrs.get("type") == "application/json", f"inline script: {text[:60]}"
    for tag, attrs in markup.tags:
        assert "style" not in attrs, f"inline style on <{tag}>"
        assert not [name for name in attrs if name.startswith("on")], f"inline handler on <{tag}>"
    assert ("script", {"src": "/static/esu-signup.js", "defer": None}) in markup.tags


def test_page_get_writes_nothing_to_the_database(client, page):
    statements: list[str] = []

    def remember(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", remember)
    try:
        assert client.get("/signup/demo").status_code == 200
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", remember)
    assert statements, "the page was expected to read its record"
    assert all(statement.lstrip().upper().startswith("SELECT") for statement in statements), statements


def test_unknown_and_disabled_pages_answer_404(client, page):
    assert client.get("/signup/nope").status_code == 404
    page.enabled = False
    db.session.commit()
    assert client.get("/signup/demo").status_code == 404


@pytest.mark.parametrize("language", [None, "id", "pt_BR", "es"])
def test_page_weighs_under_15_kb_gzipped(client, page, language):
    """Our own HTML, scripts and styles as the browser fetches them, each gzipped (the SDK aside), with the
    widget's words in each language."""
    page.language = language
    page.prefill = PREFILL
    page.intro = "Connect your WhatsApp Business number in a few clicks."
    db.session.commit()
    html = client.get("/signup/demo").data
    markup = Markup(html.decode())
    assets = [attrs["src"] for tag, attrs in markup.tags if tag == "script" and attrs.get("src")]
    assets += [attrs["href"] for tag, attrs in markup.tags if tag == "link" and attrs.get("rel") == "stylesheet"]
    assert {"/static/esu-signup.js", "/static/esu-signup.css", "/static/esu.css"} <= set(assets)
    sizes = {"page": len(gzip.compress(html))}
    for url in assets:
        response = client.get(url)
        assert response.status_code == 200, url
        sizes[url] = len(gzip.compress(response.data))
        response.close()
    assert sum(sizes.values()) < 15 * 1024, sizes


def test_agency_template_without_the_csrf_meta_tag_still_works(app, client, page):
    """The one-line include works in a template that does not extend base.html: it reports without a token
    and fetches one from the page's session URL for the onboarding calls."""
    app.add_url_rule("/agency", "agency", lambda: render_template_string(
        '<!doctype html><title>Agency</title>{% from "signup/_widget.html" import embedded_signup %}'
        '{{ embedded_signup(page) }}', page=page))
    response = client.get("/agency")
    html = response.get_data(as_text=True)
    settings = widget_settings(html)
    assert "csrf_token" not in settings and "csrf" not in html.lower()
    assert "Set-Cookie" not in response.headers
    assert client.post(settings["urls"]["events"], json={"kind": "view"}).status_code == 204
    token = client.get(settings["urls"]["session"]).get_json()["csrf_token"]
    response = client.post(settings["urls"]["callback"], json={}, headers={"X-CSRFToken": token})
    assert response.status_code == 400 and "code" in response.get_json()["fields"]  # past the CSRF check


# -- the same page for every visitor, cached per process --------------------------------------------


def test_page_sets_no_cookie_and_carries_no_token(client, page):
    response = client.get("/signup/demo")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert "Cookie" not in response.headers.get("Vary", "")
    html = response.get_data(as_text=True)
    assert 'name="csrf-token"' not in html and "csrf" not in html.lower()


def test_two_visitors_get_the_same_bytes_and_headers(app, page):
    """The first answer is Flask's; the second comes from the cache, with the same headers but its own id."""
    first, second = app.test_client().get("/signup/demo"), app.test_client().get("/signup/demo")
    assert first.status_code == second.status_code == 200
    assert first.data == second.data
    assert first.mimetype == second.mimetype == "text/html"
    policy = render_policy(app.extensions["esu_csp"]["signup"])
    assert first.headers["Content-Security-Policy"] == policy
    assert first.headers["Cross-Origin-Opener-Policy"] == "same-origin-allow-popups"

    def replayed(response):
        return sorted((name, value) for name, value in response.headers if name != "X-Request-Id")

    assert replayed(first) == replayed(second)
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]


def test_a_cached_answer_carries_the_offered_request_id_or_its_own(client, page):
    assert client.get("/signup/demo").status_code == 200
    offered = client.get("/signup/demo", headers={"X-Request-Id": "lb-1234abcd"})
    assert offered.headers["X-Request-Id"] == "lb-1234abcd"
    made = client.get("/signup/demo", headers={"X-Request-Id": "<bad>"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-Id"])


def test_the_session_url_gives_a_token_the_callback_accepts(client, page, simulator):
    assert client.get("/signup/demo").status_code == 200
    refused = client.post("/signup/demo/callback", json={**simulator.signup(), "client_ref": new_ref()})
    assert refused.status_code == 400 and "security token" in refused.get_json()["error"]

    response = client.get("/signup/demo/session")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" in response.headers  # the session the token belongs to
    token = response.get_json()["csrf_token"]
    accepted = client.post("/signup/demo/callback", json={**simulator.signup(), "client_ref": new_ref()},
                           headers={"X-CSRFToken": token})
    assert accepted.status_code == 201, accepted.get_json()


def test_the_session_url_of_unknown_or_disabled_pages_answers_404(client, page):
    assert client.get("/signup/nope/session").status_code == 404
    page.enabled = False
    db.session.commit()
    assert client.get("/signup/demo/session").status_code == 404


def test_changes_committed_in_this_process_show_on_the_next_get(client, page):
    assert b"Connect WhatsApp" in client.get("/signup/demo").data
    page.title = "Spring sale"
    db.session.commit()
    assert b"Spring sale" in client.get("/signup/demo").data
    page.enabled = False
    db.session.commit()
    assert client.get("/signup/demo").status_code == 404
    page.enabled = True
    db.session.commit()
    assert client.get("/signup/demo").status_code == 200


def change_row_as_another_process(page, **values) -> None:
    """Write the page's row on a connection of its own, as another worker would: no ORM session events."""
    table = SignupPage.__table__
    with db.engine.begin() as connection:
        connection.execute(sa.update(table).where(table.c.id == page.id).values(updated_at=now_utc(), **values))
    # The test's requests share its session; a real request would start with a fresh one.
    db.session.expire_all()


def test_changes_from_other_processes_show_within_the_cache_seconds(app_config, request, monkeypatch):
    app_config["SIGNUP_PAGE_CACHE_SECONDS"] = 5
    client, page = request.getfixturevalue("client"), request.getfixturevalue("page")
    assert client.get("/signup/demo").status_code == 200
    change_row_as_another_process(page, enabled=False)
    assert client.get("/signup/demo").status_code == 200  # within the TTL, as the README says
    later = time.monotonic() + 5
    monkeypatch.setattr(signup_cache.time, "monotonic", lambda: later)
    assert client.get("/signup/demo").status_code == 404
    change_row_as_another_process(page, enabled=True, title="Back again")
    later += 5
    assert b"Back again" in client.get("/signup/demo").data


def test_without_cache_seconds_the_row_is_checked_on_every_get(app_config, request):
    app_config["SIGNUP_PAGE_CACHE_SECONDS"] = 0
    client, page = request.getfixturevalue("client"), request.getfixturevalue("page")
    assert client.get("/signup/demo").status_code == 200
    change_row_as_another_process(page, title="Renamed elsewhere")
    assert b"Renamed elsewhere" in client.get("/signup/demo").data
    change_row_as_another_process(page, enabled=False)
    assert client.get("/signup/demo").status_code == 404


def test_an_unknown_page_is_not_remembered_as_missing(client):
    from esu.cli import create_page

    assert client.get("/signup/later").status_code == 404
    create_page("later", "Coming soon")
    assert client.get("/signup/later").status_code == 200


def test_a_page_that_uses_the_csp_nonce_is_never_cached(app, client, page):
    """Caching must not freeze one visitor's nonce into everyone's page."""
    app.jinja_env.loader = ChoiceLoader([DictLoader({"signup/page.html": (
        '{% extends "base.html" %}{% block csrf_meta %}{% endblock %}'
        '{% block content %}<script nonce="{{ csp_nonce() }}">1</script>{% endblock %}')}), app.jinja_env.loader])
    nonces = []
    for _ in range(2):
        g.pop("csp_nonce", None)  # the test's app context spans its requests; a real request has its own
        response = client.get("/signup/demo")
        nonce = re.search(r'nonce="([^"]+)"', response.get_data(as_text=True)).group(1)
        assert f"'nonce-{nonce}'" in response.headers["Content-Security-Policy"]
        nonces.append(nonce)
    assert nonces[0] != nonces[1]


def test_the_cache_keeps_each_host_apart_in_simulator_mode(app_config, request):
    """The widget trusts the stand-in SDK's origin, which is the request's own when its URL is relative."""
    app_config["ESU_SIMULATOR"] = True
    client = request.getfixturevalue("client")
    request.getfixturevalue("page")
    origins = [widget_settings(client.get("/signup/demo", base_url=base).get_data(as_text=True))["simulator_origin"]
               for base in ("http://localhost", "http://shop.example", "http://localhost")]
    assert origins == ["http://localhost", "http://shop.example", "http://localhost"]


# -- the funnel events endpoint ------------------------------------------------------------------


def post_event(client, body, slug="demo"):
    """The widget's beacon: JSON, no CSRF token, no session."""
    return client.post(f"/signup/{slug}/events", json=body)


def test_events_of_each_kind_are_stored_for_their_page(client, page):
    bodies = [
        {"kind": "view"},
        {"kind": "launch"},
        {"kind": "cancel", "current_step": "PHONE_NUMBER_SETUP"},
        {"kind": "error", "error_message": "You have requested your code too many times.", "error_code": 2494158,
         "session_id": "f34b51dab5e0498"},
        {"kind": "finish"},
    ]
    for body in bodies:
        assert post_event(client, body).status_code == 204

    stored = [(e.page_id, e.kind, e.current_step, e.error_message, e.error_code, e.session_id) for e in events()]
    assert stored == [
        (page.id, "view", None, None, None, None),
        (page.id, "launch", None, None, None, None),
        (page.id, "cancel", "PHONE_NUMBER_SETUP", None, None, None),
        (page.id, "error", None, "You have requested your code too many times.", "2494158", "f34b51dab5e0498"),
        (page.id, "finish", None, None, None, None),
    ]


@pytest.mark.parametrize(("body", "field"), [
    ({}, "kind"),
    ({"kind": "purchase"}, "kind"),
    ({"kind": "cancel", "current_step": "phone number setup"}, "current_step"),
    ({"kind": "view", "current_step": "PERMISSIONS"}, "current_step"),
    ({"kind": "launch", "error_message": "boom"}, "error_message"),
    ({"kind": "error", "session_id": "abc"}, "error_message"),
    ({"kind": "error", "error_message": "x" * 1001}, "error_message"),
    ({"kind": "error", "error_message": ["not", "text"]}, "error_message"),
    ({"kind": "error", "error_code": "12 34"}, "error_code"),
    ({"kind": "error", "error_code": "1", "session_id": "<script>"}, "session_id"),
])
def test_invalid_events_are_refused_and_not_stored(client, page, body, field):
    response = post_event(client, body)
    assert response.status_code == 400
    assert field in response.get_json()["fields"]
    assert events() == []


def test_events_need_a_json_object(client, page):
    response = client.post("/signup/demo/events", data="[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert events() == []


def test_events_need_no_csrf_token_nor_session(client, page):
    """The beacon is anonymous: the page reports its view before the visitor has any session."""
    response = client.post("/signup/demo/events", json={"kind": "view"})
    assert response.status_code == 204
    assert "Set-Cookie" not in response.headers
    assert [event.kind for event in events()] == ["view"]


@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain", None,
])
def test_events_a_cross_site_form_could_send_are_refused(client, page, content_type):
    """The content types a cross-site <form> (or a fetch without a CORS preflight) can send."""
    response = client.post("/signup/demo/events", data='{"kind": "view"}', content_type=content_type)
    assert response.status_code == 415
    assert "application/json" in response.get_json()["error"]
    assert events() == []


def test_events_of_unknown_or_disabled_pages_answer_404(client, page):
    assert post_event(client, {"kind": "view"}, slug="nope").status_code == 404
    page.enabled = False
    db.session.commit()
    assert post_event(client, {"kind": "view"}).status_code == 404
    assert events() == []


@pytest.mark.parametrize(("data", "says"), [
    # 1,010 levels in under 2 KB: past the JSON parser's own depth limit.
    ('{"kind": "view", "x": ' + "[" * 1010 + "]" * 1010 + "}", "is nested too deeply"),
    ('{"kind": "error", "error_message": "broken \\ud800 half"}', "not text"),
    ('{"kind": "error", "error_message": "a \\u0000 in it"}', "not text"),  # PostgreSQL keeps no NUL
    ('{"kind": "error", "error_message": "ok", "\\udfff": 1}', "not text"),
])
def test_events_that_no_database_could_keep_are_400_json(client, page, data, says):
    response = client.post("/signup/demo/events", data=data, content_type="application/json")

    assert response.status_code == 400
    assert says in response.get_json()["fields"]["body"]
    assert events() == []


def test_an_emoji_escaped_as_a_surrogate_pair_is_text(client, page):
    data = '{"kind": "error", "error_message": "stuck \\ud83d\\ude00"}'

    assert client.post("/signup/demo/events", data=data, content_type="application/json").status_code == 204
    assert [event.error_message for event in events()] == ["stuck \U0001f600"]


@pytest.mark.parametrize("url", ["/signup/de%00mo", "/signup/de%00mo/session", "/signup/DEMO",
                                 "/signup/demo/onboardings/0123456789abcdef%00"])
def test_a_slug_or_reference_esu_never_makes_is_404(client, page, url):
    assert client.get(url).status_code == 404
    assert client.post("/signup/de%00mo/events", json={"kind": "view"}).status_code == 404
    assert events() == []


def test_events_body_is_small(client, page):
    body = {"kind": "error", "error_message": "x" * 900, "padding": "y" * 2000}
    assert post_event(client, body).status_code == 413
    assert events() == []


# -- the simulator's SDK stand-in ----------------------------------------------------------------


def test_simulator_serves_the_sdk_and_the_dialog(simulator_app):
    client = simulator_app.test_client()
    sdk = client.get("/_meta/sdk.js")
    assert sdk.status_code == 200 and sdk.mimetype == "text/javascript"
    assert b"window.fbAsyncInit" in sdk.data
    sdk.close()

    extras = json.dumps({"setup": {"business": {"name": "Wind & Wool"}},
                         "featureType": "whatsapp_business_app_onboarding", "sessionInfoVersion": "3"})
    dialog = client.get("/_meta/dialog/oauth", query_string={"origin": "https://shop.example", "extras": extras,
                                                             "client_id": "1", "config_id": "2"})
    html = dialog.get_data(as_text=True)
    assert dialog.status_code == 200
    assert 'data-opener-origin="https://shop.example"' in html
    assert 'value="Wind &amp; Wool"' in html
    assert re.search(r'name="coexistence" checked', html)
    for screen in ("BUSINESS_ACCOUNT_SELECTION", "WABA_PHONE_PROFILE_PICKER", "WHATSAPP_BUSINESS_PROFILE_SETUP",
                   "PHONE_NUMBER_SETUP", "PHONE_NUMBER_VERIFICATION", "PERMISSIONS"):
        assert f'data-screen="{screen}"' in html


@pytest.mark.parametrize("origin", ["", "javascript:alert(1)", "https://shop.example/path", "shop.example"])
def test_simulator_dialog_needs_the_opener_origin(simulator_app, origin):
    response = simulator_app.test_client().get("/_meta/dialog/oauth", query_string={"origin": origin})
    assert response.status_code == 400


def test_sdk_stand_in_is_absent_with_the_real_meta(client):
    assert client.get("/_meta/sdk.js").status_code == 404


@pytest.mark.parametrize(("sdk_url", "origin"), [
    (None, "http://localhost"),
    ("http://127.0.0.1:5001/_meta/sdk.js", "http://127.0.0.1:5001"),
])
def test_simulator_mode_trusts_exactly_the_stand_in_origin(app_config, request, sdk_url, origin):
    app_config["ESU_SIMULATOR"] = True
    if sdk_url:
        app_config["META_SDK_URL"] = sdk_url
    client = request.getfixturevalue("client")
    request.getfixturevalue("page")
    settings = widget_settings(client.get("/signup/demo").get_data(as_text=True))
    assert settings["simulator_origin"] == origin
    assert settings["sdk_url"] == (sdk_url or "/_meta/en_US/sdk.js")


def test_callback_body_limit_holds_behind_the_csrf_check(app, client, csrf_token, page):
    """CSRFProtect reads the request before the view; the callback's own limit must still apply."""
    body = {"code": "AQ" + "x" * app.config["CALLBACK_MAX_BYTES"], "client_ref": "r" * 20}
    response = client.post("/signup/demo/callback", json=body, headers={"X-CSRFToken": csrf_token})
    assert response.status_code == 413
