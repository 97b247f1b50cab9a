"""HTTPS and security headers: what a browser, a proxy and an attacker see."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from flask import render_template_string, request

from esu import create_app
from esu.cli import create_page
from esu.config import ConfigError

PUBLIC = "esu.example"


def policy(response) -> dict[str, list[str]]:
    """The Content-Security-Policy as {directive: [sources]}."""
    header = response.headers["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        assert name not in directives, f"{name} given twice"
        directives[name] = sources
    return directives


def assert_common_headers(response) -> dict[str, list[str]]:
    csp = policy(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["img-src"][:2] == ["'self'", "data:"]
    assert csp["style-src"] == ["'self'"]
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    return csp


@pytest.fixture
def production(app_config):
    """Turn the test app into a production one behind one proxy; ask for it before ``app``."""
    app_config.update(ESU_ENV="production", ESU_ENCRYPTION_KEYS=Fernet.generate_key().decode(), ESU_PROXY_HOPS=1,
                      ESU_PUBLIC_URL=f"https://{PUBLIC}")
    return app_config


@pytest.fixture
def production_client(production, app):
    return app.test_client()


@pytest.fixture
def make_app(app_config, simulator):
    """Apps with settings of their own on the test database; their connections are closed after."""
    made = []

    def make(**overrides):
        app = create_app({**app_config, **overrides})
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            from esu.extensions import db

            db.engine.dispose()


@pytest.fixture
def sdk_elsewhere(app_config):
    app_config["META_SDK_URL"] = "https://sdk.example.net/v1/sdk.js"


def test_signup_page_may_load_the_facebook_sdk_and_nothing_else(client, page):
    response = client.get(f"/signup/{page.slug}")
    assert response.status_code == 200
    csp = assert_common_headers(response)
    assert csp["script-src"] == ["'self'", "https://connect.facebook.net"]
    assert set(csp["connect-src"]) == {"'self'", "https://connect.facebook.net", "https://graph.facebook.com",
                                       "https://www.facebook.com"}
    assert csp["frame-src"] == ["https://www.facebook.com", "https://web.facebook.com"]
    # The login dialog is a popup the page must keep talking to: same-origin would cut it off.
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin-allow-popups"


def test_sdk_origin_follows_meta_sdk_url(sdk_elsewhere, client, page):
    csp = policy(client.get(f"/signup/{page.slug}"))
    assert csp["script-src"] == ["'self'", "https://sdk.example.net"]


@pytest.mark.parametrize("path", ["/admin/", "/admin/login", "/nowhere"])
def test_other_pages_allow_only_their_own_origin_and_are_never_framed(client, path):
    response = client.get(path, headers={"Accept": "text/html"})
    assert response.mimetype == "text/html"
    csp = assert_common_headers(response)
    assert "facebook" not in response.headers["Content-Security-Policy"]
    assert csp["script-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'"]
    assert "frame-src" not in csp  # falls back to default-src 'self'
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"


def test_json_answers_carry_the_headers_too(client, page):
    health = client.get("/healthz")
    assert health.is_json
    assert_common_headers(health)
    assert health.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    refused = client.post(f"/signup/{page.slug}/callback", json={})  # no CSRF token
    assert refused.status_code == 400 and refused.is_json
    assert_common_headers(refused)


def test_simulator_pages_are_same_origin_only_and_keep_their_opener(make_app):
    client = make_app(ESU_SIMULATOR=True, META_GRAPH_URL=None, META_SDK_URL=None).test_client()
    response = client.get("/_meta/calls")
    assert response.status_code == 200
    csp = assert_common_headers(response)
    assert "facebook" not in response.headers["Content-Security-Policy"]
    assert csp["script-src"] == ["'self'"]
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin-allow-popups"


def test_a_template_asking_for_a_nonce_gets_it_in_the_policy(make_app):
    app = make_app()

    @app.get("/_test/nonce")
    def nonce_page():
        return render_template_string('<script nonce="{{ csp_nonce() }}">1</script>{{ csp_nonce() }}')

    client = app.test_client()
    first, second = client.get("/_test/nonce"), client.get("/_test/nonce")
    nonce = first.get_data(as_text=True).rsplit(">", 1)[1]
    assert f'nonce="{nonce}"' in first.get_data(as_text=True)
    assert f"'nonce-{nonce}'" in policy(first)["script-src"]
    assert f"'nonce-{nonce}'" not in policy(second)["script-src"]
    assert "'nonce-" not in " ".join(policy(client.get("/healthz"))["script-src"])


def test_production_redirects_plain_http_to_https(production_client, page):
    response = production_client.get(f"/signup/{page.slug}?ref=ad", base_url=f"http://{PUBLIC}")
    assert response.status_code == 308
    assert response.headers["Location"] == f"https://{PUBLIC}/signup/{page.slug}?ref=ad"
    assert "Strict-Transport-Security" not in response.headers  # never over plain HTTP
    posted = production_client.post(f"/signup/{page.slug}/callback", json={}, base_url=f"http://{PUBLIC}")
    assert posted.status_code == 308  # 308 keeps the method: the retry is a POST again


def test_health_check_answers_over_plain_http(production_client):
    response = production_client.get("/healthz", base_url="http://10.0.0.5:8000")
    assert response.status_code == 200


def test_behind_one_proxy_https_gives_secure_cookie_and_hsts(production_client, page):
    # The session (and its cookie) starts when the widget asks for its token; the page itself sets none.
    response = production_client.get(
        f"/signup/{page.slug}/session",
        base_url=f"http://{PUBLIC}",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"},
    )
    assert response.status_code == 200
    hsts = response.headers["Strict-Transport-Security"]
    assert int(hsts.split("max-age=")[1].split(";")[0]) >= 365 * 24 * 3600
    # The visitor's session is a cookie of its own, apart from the admin's.
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Secure-esu_signup=")
    flags = {flag.strip().lower() for flag in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite=lax", "path=/signup/"} <= flags
    assert "partitioned" not in flags
    assert not any(flag.startswith("domain=") for flag in flags)


def test_behind_one_proxy_the_admins_cookie_stays_host_only_and_lax(production_client):
    response = production_client.get("/admin/login", base_url=f"http://{PUBLIC}",
                                     headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"})
    assert response.status_code == 200
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-session=")
    flags = {flag.strip().lower() for flag in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite=lax", "path=/"} <= flags
    assert "partitioned" not in flags
    assert not any(flag.startswith("domain=") for flag in flags)


def test_proxy_fix_trusts_only_the_hop_it_is_told_of(production, app):
    @app.get("/_test/client")
    def client_address():
        return {"remote_addr": request.remote_addr, "scheme": request.scheme}

    client = app.test_client()
    # The client wrote its own X-Forwarded-For; the proxy appended the address it saw.
    response = client.get("/_test/client", base_url=f"http://{PUBLIC}",
                          headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.7", "X-Forwarded-Proto": "https"},
                          environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert response.json == {"remote_addr": "203.0.113.7", "scheme": "https"}


def test_without_proxy_forwarded_headers_are_ignored(make_app):
    app = make_app(ESU_FORCE_HTTPS=True, ESU_PROXY_HOPS=0)

    @app.get("/_test/client")
    def client_address():
        return {"remote_addr": request.remote_addr}

    client = app.test_client()
    spoofed = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"}
    assert client.get("/_test/client", headers=spoofed).status_code == 308  # still plain HTTP to us
    response = client.get("/_test/client", base_url="https://localhost", headers=spoofed)
    assert response.json == {"remote_addr": "127.0.0.1"}


def test_force_https_outside_production(make_app):
    app = make_app(ESU_FORCE_HTTPS="1")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.test_client().get("/healthz").status_code == 200
    assert app.test_client().get("/signup/x").status_code == 308


def test_any_environment_but_development_has_secure_cookies(make_app):
    app = make_app(ESU_ENV="staging")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_NAME"] == "__Host-session"
    assert app.test_client().get("/signup/x").status_code == 404  # HTTPS is only required in production


def test_development_keeps_plain_http_and_ordinary_cookies(client, page):
    response = client.get(f"/signup/{page.slug}/session")
    assert response.status_code == 200
    assert "Secure" not in response.headers["Set-Cookie"]
    assert "Strict-Transport-Security" not in response.headers


def test_https_answers_are_kept_apart_from_plain_http(production_client, page):
    """In production plain HTTP is redirected, also once the HTTPS page is cached."""
    secure = {"X-Forwarded-Proto": "https"}
    for _ in range(2):
        response = production_client.get("/signup/demo", base_url=f"http://{PUBLIC}", headers=secure)
        assert response.status_code == 200 and "Strict-Transport-Security" in response.headers
    plain = production_client.get("/signup/demo", base_url=f"http://{PUBLIC}")
    assert plain.status_code == 308


def test_a_cached_page_is_not_replayed_for_an_untrusted_host(make_app, app):  # app: empties the tables after
    app = make_app(ESU_TRUSTED_HOSTS=PUBLIC)
    with app.app_context():
        create_page("shop", "Shop")
    client = app.test_client()
    for _ in range(2):
        assert client.get("/signup/shop", base_url=f"http://{PUBLIC}").status_code == 200
    assert client.get("/signup/shop", base_url="http://evil.example").status_code == 400



def test_unexpected_host_is_refused(make_app):
    client = make_app(ESU_TRUSTED_HOSTS=f"{PUBLIC}, www.{PUBLIC}").test_client()
    assert client.get("/healthz", base_url=f"http://{PUBLIC}").status_code == 200
    refused = client.get("/healthz", base_url="http://evil.example")
    assert refused.status_code == 400
    assert refused.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("hops", ["two", "-1"])
def test_proxy_hops_must_be_a_count(app_config, hops):
    app_config["ESU_PROXY_HOPS"] = hops
    with pytest.raises(ConfigError, match="ESU_PROXY_HOPS"):
        create_app(app_config)
