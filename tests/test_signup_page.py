"""The signup page and its widget as HTML, the funnel events endpoint, the page's weight, and the
simulator's SDK stand-in as served."""

from __future__ import annotations

import gzip
import json
import re
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa
from flask import render_template_string

from esu.extensions import db
from esu.models import SignupEvent

from .conftest import META

PREFILL = {
    "name": "Wind & Wool",
    "email": "support@windandwool.com",
    "website": "https://windandwool.com/",
    "phone": {"code": "1", "number": "6505559999"},
    "address": {"streetAddress1": "1 Hacker Way", "streetAddress2": "", "city": "Menlo Park", "country": "US"},
    "timezone": "UTC-07:00",
}


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
    business = {**PREFILL, "phone": {"code": 1, "number": "6505559999"},  # Meta wants an integer code
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
                                "onboardings": "/signup/demo/onboardings/"}
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
            'feature_type="whatsapp_business_app_onboarding", prefill={"name": "Other Shop"}, show_steps=False) }}',
            page=page,
        )
    settings = widget_settings(html)
    assert settings["login"]["config_id"] == "7770001112223334"
    assert settings["login"]["extras"]["featureType"] == "whatsapp_business_app_onboarding"
    assert settings["login"]["extras"]["setup"] == {"business": {"name": "Other Shop"}}
    assert settings["show_steps"] is False
    launch = re.search(r"<button[^>]*data-esu-launch[^>]*>([^<]*)</button>", html)
    assert launch and launch.group(1) == "Start with WhatsApp"


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


def test_page_weighs_under_15_kb_gzipped(client, page):
    """Our own HTML, scripts and styles as the browser fetches them, each gzipped (the SDK aside)."""
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


def test_agency_template_without_the_csrf_meta_tag_still_reports(app, client, page):
    """The one-line include works in a template that does not extend base.html."""
    app.add_url_rule("/agency", "agency", lambda: render_template_string(
        '<!doctype html><title>Agency</title>{% from "signup/_widget.html" import embedded_signup %}'
        '{{ embedded_signup(page) }}', page=page))
    html = client.get("/agency").get_data(as_text=True)
    assert 'name="csrf-token"' not in html
    token = widget_settings(html)["csrf_token"]
    response = client.post("/signup/demo/events", json={"kind": "view"}, headers={"X-CSRFToken": token})
    assert response.status_code == 204


# -- the funnel events endpoint ------------------------------------------------------------------


def post_event(client, csrf_token, body, slug="demo"):
    return client.post(f"/signup/{slug}/events", json=body, headers={"X-CSRFToken": csrf_token})


def test_events_of_each_kind_are_stored_for_their_page(client, csrf_token, page):
    bodies = [
        {"kind": "view"},
        {"kind": "launch"},
        {"kind": "cancel", "current_step": "PHONE_NUMBER_SETUP"},
        {"kind": "error", "error_message": "You have requested your code too many times.", "error_code": 2494158,
         "session_id": "f34b51dab5e0498"},
        {"kind": "finish"},
    ]
    for body in bodies:
        assert post_event(client, csrf_token, body).status_code == 204

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
def test_invalid_events_are_refused_and_not_stored(client, csrf_token, page, body, field):
    response = post_event(client, csrf_token, body)
    assert response.status_code == 400
    assert field in response.get_json()["fields"]
    assert events() == []


def test_events_need_a_json_object(client, csrf_token, page):
    response = client.post("/signup/demo/events", data="kind=view", headers={"X-CSRFToken": csrf_token})
    assert response.status_code == 400
    assert events() == []


def test_events_without_the_csrf_token_are_refused(client, csrf_token, page):
    response = client.post("/signup/demo/events", json={"kind": "view"})
    assert response.status_code == 400
    assert "security token" in response.get_json()["error"]
    response = client.post("/signup/demo/events", json={"kind": "view"}, headers={"X-CSRFToken": "forged"})
    assert response.status_code == 400
    assert events() == []


def test_events_of_unknown_or_disabled_pages_answer_404(client, csrf_token, page):
    assert post_event(client, csrf_token, {"kind": "view"}, slug="nope").status_code == 404
    page.enabled = False
    db.session.commit()
    assert post_event(client, csrf_token, {"kind": "view"}).status_code == 404
    assert events() == []


def test_events_body_is_small(client, csrf_token, page):
    body = {"kind": "error", "error_message": "x" * 900, "padding": "y" * 2000}
    assert post_event(client, csrf_token, body).status_code == 413
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
    assert settings["sdk_url"] == (sdk_url or "/_meta/sdk.js")


def test_callback_body_limit_holds_behind_the_csrf_check(app, client, csrf_token, page):
    """CSRFProtect reads the request before the view; the callback's own limit must still apply."""
    body = {"code": "AQ" + "x" * app.config["CALLBACK_MAX_BYTES"], "client_ref": "r" * 20}
    response = client.post("/signup/demo/callback", json=body, headers={"X-CSRFToken": csrf_token})
    assert response.status_code == 413
