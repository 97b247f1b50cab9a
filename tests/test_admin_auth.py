"""Who may use the admin: the login, its throttle, the session, CSRF on every form, the password."""

from __future__ import annotations

import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from cryptography.fernet import Fernet

from esu import create_app
from esu.blueprints.admin import auth
from esu.blueprints.admin.auth import LOGIN_FAILED, safe_next
from esu.extensions import db
from esu.models import Onboarding, SignupPage
from esu.models.admin import ADMIN_ID, AdminAccount, AdminAction, admin_account, authenticate
from esu.models.forwarding import ForwardDelivery, ForwardingTarget

from .admin_support import (
    CSRF_META,
    PASSWORD,
    gen_delivery,
    gen_onboarding,
    gen_page,
    gen_target,
    gen_webhook_event,
    log_in_session,
)

from .conftest import make_config

pytest_plugins = ["tests.admin_fixtures"]  # the admin fixtures: admin, stored_admin, count_queries…


def login_form_token(client, url: str = "/admin/login") -> str:
    html = client.get(url).get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def log_in(client, password: str = PASSWORD, next_url: str = "", **kwargs):
    token = login_form_token(client)
    return client.post("/admin/login", data={"csrf_token": token, "password": password, "next": next_url}, **kwargs)


@pytest.fixture
def records(app):
    """One of each record an admin URL can name, with data that must not leak to anonymous visitors."""
    page = gen_page("secret-shop", title="Secret Shop Page")
    onboarding = gen_onboarding(page, status="failed", business_name="Secret Business Ltd",
                                steps=(("exchange_code", "ok"), ("subscribe_webhooks", "failed")))
    event = gen_webhook_event(waba_id=onboarding.waba_id)
    target = gen_target(page)
    delivery = gen_delivery(target, event, status="failed")
    db.session.commit()
    return {"onboarding_id": onboarding.id, "page_id": page.id, "event_id": event.id, "target_id": target.id,
            "delivery_id": delivery.id}


def admin_urls(app, records, method: str) -> list[tuple[str, str]]:
    urls = []
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/admin") and method in rule.methods and rule.endpoint != "admin.login":
            urls.append((rule.endpoint, adapter.build(rule.endpoint, {name: records[name] for name in rule.arguments})))
    return urls


def assert_forwarding_untouched(records) -> None:
    db.session.expire_all()
    target = db.session.get(ForwardingTarget, records["target_id"])
    assert target.enabled and target.url == "http://127.0.0.1:9/hooks"
    assert db.session.get(ForwardDelivery, records["delivery_id"]).status == "failed"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ForwardDelivery)) == 1


# -- access -----------------------------------------------------------------------------------------


def test_every_admin_page_sends_anonymous_visitors_to_the_login(app, client, records):
    urls = admin_urls(app, records, "GET")
    assert {"admin.dashboard", "admin.onboardings", "admin.onboardings_csv", "admin.onboarding", "admin.webhooks",
            "admin.webhook", "admin.pages", "admin.page", "admin.new_page", "admin.target"} <= {
        endpoint for endpoint, _ in urls}
    for endpoint, url in urls:
        response = client.get(url)
        assert response.status_code == 302, endpoint
        assert response.headers["Location"].startswith("/admin/login?next="), endpoint
        assert "Secret" not in response.get_data(as_text=True), endpoint


def test_every_admin_action_refuses_anonymous_posts(app, client, records):
    token = login_form_token(client)  # a real token: the refusal must come from the login guard
    urls = admin_urls(app, records, "POST")
    assert {"admin.logout", "admin.retry", "admin.reveal_pin", "admin.disable_page", "admin.enable_page",
            "admin.page", "admin.new_page", "admin.new_target", "admin.target", "admin.disable_target",
            "admin.delete_target", "admin.rotate_secret", "admin.send_test_event", "admin.replay_failed",
            "admin.replay_delivery"} <= {endpoint for endpoint, _ in urls}
    for endpoint, url in urls:
        response = client.post(url, data={"csrf_token": token, "slug": "taken-over", "title": "Taken over"})
        assert response.status_code == 401, endpoint
        assert "Secret" not in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AdminAction)) == 0
    page = db.session.get(SignupPage, records["page_id"])
    assert page.enabled and page.slug == "secret-shop"
    assert db.session.get(Onboarding, records["onboarding_id"]).status == "failed"
    assert_forwarding_untouched(records)


def test_every_admin_form_needs_its_csrf_token(app, admin, records):
    for endpoint, url in admin_urls(app, records, "POST") + [("admin.login", "/admin/login")]:
        response = admin.client.post(url, data={"password": PASSWORD, "slug": "no-token", "title": "No token"})
        assert response.status_code == 400, endpoint
        assert "security token" in response.get_data(as_text=True)
    assert db.session.get(SignupPage, records["page_id"]).enabled
    assert_forwarding_untouched(records)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AdminAction)) == 0
    assert admin.get("/admin/").status_code == 200  # still logged in: logout without a token did nothing


def test_an_unknown_admin_path_is_a_plain_404(client):
    assert client.get("/admin/nothing-here").status_code == 404


# -- login ------------------------------------------------------------------------------------------


def test_the_right_password_logs_in_and_the_session_is_new(client, stored_admin):
    client.get("/admin/login")
    with client.session_transaction() as session:
        token_before = session["csrf_token"]
    cookie_before = client.get_cookie("session").value

    response = log_in(client)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    assert client.get_cookie("session").value != cookie_before
    with client.session_transaction() as session:
        assert session.get("csrf_token") != token_before  # nothing from before the login survives
    assert client.get("/admin/").status_code == 200
    assert db.session.get(AdminAccount, ADMIN_ID).last_login_at is not None
    assert db.session.scalar(sa.select(AdminAction.action)) == "logged_in"


@pytest.mark.parametrize("password", ["wrong password!", "", PASSWORD.upper()])
def test_every_failed_login_says_the_same(client, stored_admin, password):
    response = log_in(client, password)
    assert response.status_code == 401
    body = response.get_data(as_text=True)
    assert LOGIN_FAILED in body and "This field is required" not in body
    assert client.get("/admin/").status_code == 302


def test_without_an_account_nobody_logs_in_and_the_page_says_how_to_set_one(client, strict_templates):
    response = log_in(client)
    body = response.get_data(as_text=True)
    assert response.status_code == 401 and LOGIN_FAILED in body
    assert "flask --app wsgi admin set-password" in body


def test_repeated_failures_from_one_address_get_429(client, stored_admin):
    for _ in range(5):
        assert log_in(client, "wrong password!").status_code == 401
    throttled = log_in(client, PASSWORD)  # even the right password waits
    assert throttled.status_code == 429
    assert "Retry-After" in throttled.headers
    assert client.get("/admin/").status_code == 302
    other = log_in(client, PASSWORD, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 302  # another client is not held back


def failed_logins(database_url: str, count: int) -> list[int]:
    """``count`` failed logins through a gunicorn worker of its own: a process with its own app, and no Redis."""
    os.environ.pop("REDIS_URL", None)
    app = create_app(make_config(database_url, "http://127.0.0.1:9", ADMIN_LOGIN_LIMIT="5 per minute"))
    statuses = [log_in(app.test_client(), "wrong password!").status_code for _ in range(count)]
    with app.app_context():
        db.engine.dispose()
    return statuses


def test_without_redis_two_workers_share_one_count_of_failures(app_config, stored_admin):
    """The counters live in the database: the limit is per client address, not per worker process."""
    database, spawn = app_config["SQLALCHEMY_DATABASE_URI"], multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as first, ProcessPoolExecutor(1, mp_context=spawn) as second:
        assert first.submit(failed_logins, database, 3).result(timeout=120) == [401, 401, 401]
        assert second.submit(failed_logins, database, 3).result(timeout=120) == [401, 401, 429]


def test_successful_logins_are_not_counted_as_failures(client, stored_admin):
    for _ in range(6):
        assert log_in(client).status_code == 302
        client.post("/admin/logout", data={"csrf_token": CSRF_META.search(
            client.get("/admin/pages").get_data(as_text=True)).group(1)})


def test_with_redis_down_logins_are_still_throttled_and_nothing_else_notices(app_config, request):
    app_config["RATELIMIT_STORAGE_URI"] = "redis://127.0.0.1:1"  # nothing listens there
    client = request.getfixturevalue("client")
    request.getfixturevalue("stored_admin")
    page = request.getfixturevalue("page")
    assert client.post(f"/signup/{page.slug}/callback", json={}).status_code == 400
    for _ in range(5):
        assert log_in(client, "wrong password!").status_code == 401
    assert log_in(client, PASSWORD).status_code == 429


def test_only_decorated_views_are_rate_limited(app, client, page):
    assert not app.config.get("RATELIMIT_DEFAULT") and not app.config.get("RATELIMIT_APPLICATION")
    for _ in range(30):  # a burst on an endpoint with no limit of its own is never refused
        assert client.get("/webhooks/whatsapp").status_code == 403


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example", "/\\evil.example", "\\\\evil.example", "javascript:alert(1)",
    "/\t/evil.example", "/\n/evil.example", "http:/evil.example", "evil.example", " //evil.example", "",
    "https:evil.example",
])
def test_next_never_leaves_the_site(target):
    assert safe_next(target) is None


@pytest.mark.parametrize("target", ["/admin/onboardings?status=failed", "/admin/", "/admin/onboardings/3"])
def test_next_keeps_paths_on_this_site(target):
    assert safe_next(target) == target


def test_login_goes_back_to_the_page_asked_for(client, stored_admin):
    asked = client.get("/admin/onboardings?status=failed")
    login_page = client.get(asked.headers["Location"]).get_data(as_text=True)
    assert 'name="next" type="hidden" value="/admin/onboardings?status=failed"' in login_page
    assert log_in(client, next_url="/admin/onboardings?status=failed").headers["Location"] == \
        "/admin/onboardings?status=failed"


def test_login_ignores_an_offsite_next(client, stored_admin):
    assert log_in(client, next_url="//evil.example/admin").headers["Location"] == "/admin/"


# -- the session ------------------------------------------------------------------------------------


def test_logout_ends_the_session_even_for_a_replayed_cookie(client, stored_admin):
    log_in(client)
    old_cookie = client.get_cookie("session").value
    token = CSRF_META.search(client.get("/admin/").get_data(as_text=True)).group(1)
    response = client.post("/admin/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/login"
    assert client.get("/admin/").status_code == 302

    client.set_cookie("session", old_cookie)  # someone kept the cookie
    replayed = client.get("/admin/onboardings")
    assert replayed.status_code == 302 and replayed.headers["Location"].startswith("/admin/login")


def test_an_admin_session_expires(app, client, stored_admin):
    log_in_session(client, stored_admin)
    assert client.get("/admin/").status_code == 200
    with client.session_transaction() as session:
        session["admin_since"] -= app.config["ADMIN_SESSION_HOURS"] * 3600 + 1
    assert client.get("/admin/").status_code == 302


def test_session_cookie_is_httponly_and_lax_in_development(client, stored_admin):
    cookie = log_in(client).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_session_cookie_is_secure_and_host_only_in_production(app, app_config, stored_admin):
    production = create_app({**app_config, "ESU_ENV": "production",
                             "ESU_ENCRYPTION_KEYS": Fernet.generate_key().decode()})
    assert production.config["SESSION_COOKIE_SECURE"] is True
    client = production.test_client()
    https = {"base_url": "https://localhost", "headers": {"Referer": "https://localhost/admin/login"}}
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      client.get("/admin/login", **https).get_data(as_text=True)).group(1)
    response = client.post("/admin/login", data={"csrf_token": token, "password": PASSWORD}, **https)
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-session=")
    assert all(flag in cookie for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"))
    assert "Domain" not in cookie
    with production.app_context():
        db.engine.dispose()


# -- the password -----------------------------------------------------------------------------------


@pytest.fixture
def password_from_environment(monkeypatch, request):
    def run(value: str | None):
        if value is None:
            monkeypatch.delenv("ESU_ADMIN_PASSWORD", raising=False)
        else:
            monkeypatch.setenv("ESU_ADMIN_PASSWORD", value)
        runner = request.getfixturevalue("runner")  # the app reads the environment when it is made
        return runner.invoke(args=["admin", "set-password"])

    return run


def test_set_password_reads_the_environment_and_stores_argon2id(password_from_environment):
    result = password_from_environment(PASSWORD)
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    stored = admin_account().password_hash
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PASSWORD not in stored


def test_set_password_refuses_a_short_password(password_from_environment):
    result = password_from_environment("short pass")
    assert result.exit_code == 1 and "at least 12 characters" in result.output
    assert admin_account() is None


def test_set_password_without_a_terminal_or_the_variable_says_what_to_do(password_from_environment):
    result = password_from_environment(None)
    assert result.exit_code == 1 and "ESU_ADMIN_PASSWORD" in result.output


def test_set_password_in_a_terminal_asks_twice_without_echoing(runner, monkeypatch):
    monkeypatch.setattr(auth, "sys", SimpleNamespace(stdin=SimpleNamespace(isatty=lambda: True)))
    result = runner.invoke(args=["admin", "set-password"], input=f"{PASSWORD}\nsomething else\n{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output.lower()
    assert PASSWORD not in result.output
    assert admin_account().check_password(PASSWORD)


def test_a_new_password_ends_existing_sessions(app, client, runner, stored_admin):
    log_in_session(client, stored_admin)
    assert client.get("/admin/").status_code == 200
    app.config["ESU_ADMIN_PASSWORD"] = "another long password"
    assert runner.invoke(args=["admin", "set-password"]).exit_code == 0
    assert client.get("/admin/").status_code == 302


def test_an_old_hash_is_upgraded_at_login(client, strict_templates):
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    db.session.add(AdminAccount(id=ADMIN_ID, password_hash=weak, session_nonce="n" * 32))
    db.session.commit()
    assert log_in(client).status_code == 302
    db.session.expire_all()
    assert admin_account().password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_demo_sets_a_random_admin_password_and_prints_it(app_config, request, monkeypatch):
    app_config["ESU_SIMULATOR"] = True
    app = request.getfixturevalue("app")
    class NoServer:  # serve nothing: the set-up is checked
        def serve_forever(self):
            pass

        def server_close(self):
            pass

    monkeypatch.setattr("esu.cli.listen", lambda *args: NoServer())
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    password = re.search(r"/admin/ {2}password: (\S+)", result.output).group(1)
    assert len(password) >= 12
    assert authenticate(password) is not None and authenticate(password + "x") is None


def test_admin_pages_work_under_a_strict_csp(app, admin, records):
    """No inline script, style attribute or event handler anywhere: a strict Content-Security-Policy
    (no 'unsafe-inline') will not break a single admin page. A script of esu's own file (src) is allowed."""
    for endpoint, url in admin_urls(app, records, "GET") + [("admin.login", "/admin/login")]:
        html = admin.get(url).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\ssrc=\"/static/)|\sstyle=|\son[a-z]+=", html, re.IGNORECASE), endpoint
