"""What the callback does with input it cannot use: a 4xx JSON answer that says what is wrong, and no
onboarding, no call to Meta."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from esu.extensions import db
from esu.models import Onboarding, SignupPage

from .conftest import ServerThread
from .helpers import browser_session, new_ref

GOOD = {"code": "AQcode", "event": "FINISH", "waba_id": "1001", "phone_number_id": "2002", "business_id": "3003"}


@pytest.fixture
def post_json(client, csrf_token, page):
    def post(body, slug: str = "demo", **kwargs):
        kwargs.setdefault("headers", {"X-CSRFToken": csrf_token})
        return client.post(f"/signup/{slug}/callback", json=body, **kwargs)

    return post


@pytest.fixture(autouse=True)
def nothing_happened(simulator, app):
    """After each of these tests: no onboarding was recorded and Meta was not called."""
    yield
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Onboarding)) == 0
    assert simulator.calls() == []


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"code": None}, "code", "is required"),
        ({"code": ""}, "code", "is required"),
        ({"code": "   "}, "code", "is required"),
        ({"code": 12345}, "code", "is required"),
        ({"code": "A" * 2049}, "code", "longer than any code Meta issues"),
        ({"waba_id": 1001}, "waba_id", "string of digits"),
        ({"waba_id": "12a"}, "waba_id", "string of digits"),
        ({"waba_id": ["1001"]}, "waba_id", "string of digits"),
        ({"waba_id": "1" * 33}, "waba_id", "string of digits"),
        ({"waba_id": "١٠٠١"}, "waba_id", "string of digits"),  # digits to Python's \d, not to Meta
        ({"waba_id": "1001\n"}, "waba_id", "string of digits"),
        ({"phone_number_id": {"id": "2002"}}, "phone_number_id", "string of digits"),
        ({"phone_number_id": "-2002"}, "phone_number_id", "string of digits"),
        ({"business_id": 3.5}, "business_id", "string of digits"),
        ({"business_id": True}, "business_id", "string of digits"),
        ({"event": "CANCEL"}, "event", "must be one of FINISH, FINISH_ONLY_WABA"),
        ({"event": ["FINISH"]}, "event", "must be one of"),
        ({"client_ref": "short"}, "client_ref", "16 to 64"),
        ({"client_ref": "x" * 16 + "/../"}, "client_ref", "16 to 64"),
        ({"waba_id": None}, "waba_id", "required when phone_number_id is given"),
    ],
)
def test_a_bad_field_is_named(post_json, change, field, says):
    response = post_json({**GOOD, "client_ref": new_ref(), **change})

    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid request"
    assert field in body["fields"] and says in body["fields"][field]


def test_every_bad_field_is_named_at_once(post_json):
    response = post_json({"waba_id": "x", "phone_number_id": 7, "event": "NOPE"})

    assert response.status_code == 400
    assert set(response.get_json()["fields"]) == {"code", "waba_id", "phone_number_id", "event"}


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("code=AQcode&waba_id=1001", "application/x-www-form-urlencoded"),
        ('{"code": "AQcode"}', "text/plain"),
        ('{"code": "AQcode"', "application/json"),
        ('["AQcode"]', "application/json"),
        ("", "application/json"),
    ],
)
def test_a_body_that_is_not_a_json_object(client, csrf_token, page, data, content_type):
    response = client.post("/signup/demo/callback", data=data, content_type=content_type,
                           headers={"X-CSRFToken": csrf_token})

    assert response.status_code == 400
    assert response.is_json
    assert response.get_json()["fields"]["body"] == "send a JSON object with Content-Type: application/json"


@pytest.mark.parametrize(("data", "says"), [
    # 5,000 levels in 10 KB, well under the body limit.
    ('{"code": "AQcode", "waba_id": ' + "[" * 5000 + "]" * 5000 + "}", "is nested too deeply"),
    ('{"code": "\\ud800"}', "not text"),  # a lone surrogate: no encoding has it
    ('{"code": "AQ\\u0000code"}', "not text"),  # PostgreSQL keeps no NUL
])
def test_a_body_no_database_could_keep_is_400_json(client, csrf_token, page, data, says):
    response = client.post("/signup/demo/callback", data=data, content_type="application/json",
                           headers={"X-CSRFToken": csrf_token})

    assert response.status_code == 400
    assert says in response.get_json()["fields"]["body"]


def test_an_unknown_page_is_404_json(post_json):
    response = post_json(GOOD, slug="no-such-page")

    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["error"] == "There is no signup page 'no-such-page'."


def test_a_disabled_page_is_404(post_json, client):
    db.session.execute(sa.update(SignupPage).values(enabled=False))
    db.session.commit()

    response = post_json(GOOD)

    assert response.status_code == 404 and response.is_json
    assert client.get("/signup/demo").status_code == 404


def test_an_oversized_body_is_413_json(app, post_json):
    limit = app.config["CALLBACK_MAX_BYTES"]
    body = {**GOOD, "padding": "x" * limit}

    response = post_json(body)

    assert response.status_code == 413
    assert response.is_json
    assert response.get_json()["error"] == f"The request body is larger than {limit} bytes."


def test_a_body_just_under_the_limit_is_read(app, post_json):
    limit = app.config["CALLBACK_MAX_BYTES"]
    body = {**GOOD, "code": None, "padding": ""}
    body["padding"] = "x" * (limit - len(json.dumps(body)) - 10)

    response = post_json(body)

    assert response.status_code == 400 and "code" in response.get_json()["fields"]


@pytest.fixture
def served_app(app):
    server = ServerThread(app)
    yield server
    server.stop()


def test_an_oversized_body_without_a_length_is_413_json(app, page, served_app):
    """A chunked upload gives no Content-Length up front: the limit still holds."""
    session, token = browser_session(served_app.url)
    limit = app.config["CALLBACK_MAX_BYTES"]
    payload = json.dumps({**GOOD, "padding": "x" * limit}).encode()

    def chunks():
        for start in range(0, len(payload), 4096):
            yield payload[start:start + 4096]

    response = session.post(f"{served_app.url}/signup/demo/callback", data=chunks(), timeout=10,
                            headers={"X-CSRFToken": token, "Content-Type": "application/json"})

    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("headers", [{}, {"X-CSRFToken": "not-the-token"}])
def test_a_missing_or_wrong_csrf_token_is_400_json(client, page, headers):
    client.get("/signup/demo")  # a session, as a browser that opened the page has

    response = client.post("/signup/demo/callback", json=GOOD, headers=headers)

    assert response.status_code == 400
    assert response.is_json
    assert "security token" in response.get_json()["error"]


def test_a_token_from_another_session_is_refused(served_app, page):
    _, token = browser_session(served_app.url)
    stranger, _ = browser_session(served_app.url)

    response = stranger.post(f"{served_app.url}/signup/demo/callback", json=GOOD, headers={"X-CSRFToken": token},
                             timeout=10)

    assert response.status_code == 400
    assert "security token" in response.json()["error"]


@pytest.mark.parametrize("action", ["request-code", "verify-code", "retry"])
def test_an_unknown_onboarding_is_404_json(client, csrf_token, action):
    response = client.post(f"/signup/demo/onboardings/{new_ref()}/{action}", json={"code": "123456"},
                           headers={"X-CSRFToken": csrf_token})

    assert response.status_code == 404 and response.is_json


def test_a_get_of_the_callback_is_405_json(client, page):
    response = client.get("/signup/demo/callback", headers={"Accept": "application/json"})

    assert response.status_code == 405
    assert response.is_json


def test_an_unavailable_database_answers_503_with_when_to_try_again(app, post_json, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from esu import onboarding

    def database_down(*args, **kwargs):
        raise OperationalError("INSERT INTO onboardings …", {}, Exception("database is locked"))

    monkeypatch.setattr(onboarding, "start", database_down)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: the error handler answers
    response = post_json(GOOD)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert "try again" in response.get_json()["error"]
    assert "INSERT" not in response.get_data(as_text=True)
