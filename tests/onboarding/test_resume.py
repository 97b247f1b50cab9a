"""Coming back to an onboarding: the token the widget keeps, the admin's resume link (signed, 7 days), and
what an expired, forged or misplaced one answers: a plain 4xx, never a 500."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from esu import resume_links
from esu.cli import create_page
from esu.extensions import db
from esu.models import Onboarding

from ..helpers import new_ref


@pytest.fixture
def unverified(simulator, post_callback):
    """An onboarding waiting for its verification code, as the widget's callback left it."""
    ref = new_ref()
    body = post_callback(simulator.signup(phone_verified=False), client_ref=ref).get_json()
    assert body["status"] == "awaiting_verification"
    return body, ref


def resume(client, csrf_token, token, slug="demo"):
    return client.post(f"/signup/{slug}/resume", json={"token": token}, headers={"X-CSRFToken": csrf_token})


def test_the_widget_trades_the_token_it_kept_for_the_onboarding(client, csrf_token, unverified):
    body, ref = unverified
    # Every answer about the onboarding brings the token; the progress the widget polls too.
    polled = client.get(f"/signup/demo/onboardings/{ref}").get_json()
    assert polled["resume_token"] and ref not in polled["resume_token"]

    answer = resume(client, csrf_token, body["resume_token"])

    assert answer.status_code == 200
    resumed = answer.get_json()
    assert resumed["client_ref"] == ref
    assert (resumed["id"], resumed["status"]) == (body["id"], "awaiting_verification")
    assert resumed["resume_token"]


def test_an_onboarding_without_a_reference_is_given_one(client, csrf_token, unverified):
    body, _ref = unverified
    db.session.execute(sa.update(Onboarding).values(client_ref=None))
    db.session.commit()

    resumed = resume(client, csrf_token, body["resume_token"]).get_json()

    assert resumed["client_ref"] == db.session.scalar(sa.select(Onboarding.client_ref))
    assert client.get(f"/signup/demo/onboardings/{resumed['client_ref']}").status_code == 200


def test_the_admins_link_opens_the_signup_page_at_the_onboarding(app, client, unverified):
    body, _ref = unverified
    onboarding = db.session.get(Onboarding, body["id"])
    with app.test_request_context():
        link = resume_links.link_for(onboarding)
    url = urlsplit(link.url)
    assert url.path == "/signup/demo/resume"

    response = client.get(f"{url.path}?{url.query}")

    assert response.status_code == 303
    token = url.query.removeprefix("token=")
    # The token goes on in the fragment, which the browser keeps and no server or log sees.
    assert response.headers["Location"] == f"/signup/demo#resume={token}"
    assert response.headers["Cache-Control"] == "no-store"


def test_a_link_expires_after_seven_days(client, csrf_token, unverified, monkeypatch):
    body, _ref = unverified
    onboarding = db.session.get(Onboarding, body["id"])
    now = time.time()
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda _signer: int(now) - 7 * 24 * 3600 - 60)
    with client.application.test_request_context():
        old = resume_links.token_for(onboarding)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda _signer: int(now) - 7 * 24 * 3600 + 60)
    with client.application.test_request_context():
        almost = resume_links.token_for(onboarding)
    monkeypatch.undo()

    expired = client.get(f"/signup/demo/resume?token={old}", headers={"Accept": "text/html"})
    assert expired.status_code == 410
    assert expired.mimetype == "text/html"
    assert "has expired (they last 7 days)" in expired.get_data(as_text=True)
    assert resume(client, csrf_token, old).status_code == 410
    assert client.get(f"/signup/demo/resume?token={almost}").status_code == 303


@pytest.mark.parametrize("forge", ["other key", "tampered", "garbage", "empty", "other page"])
def test_a_forged_or_misplaced_link_answers_a_plain_page(client, csrf_token, unverified, forge):
    body, _ref = unverified
    token = body["resume_token"]
    slug = "demo"
    if forge == "other key":
        token = URLSafeTimedSerializer("not our secret key", salt=resume_links.SALT).dumps(
            {"onboarding": body["id"], "page": db.session.scalar(sa.select(Onboarding.page_id))}
        )
    elif forge == "tampered":
        token = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    elif forge == "garbage":
        token = "not-a-token.at.all"
    elif forge == "empty":
        token = ""
    else:
        create_page("other", "Another page")
        slug = "other"

    page = client.get(f"/signup/{slug}/resume?token={token}", headers={"Accept": "text/html"})

    assert page.status_code == 400
    assert page.mimetype == "text/html"
    assert "is not valid" in page.get_data(as_text=True)
    api = resume(client, csrf_token, token, slug)
    assert api.status_code == 400
    assert api.is_json and "error" in api.get_json()
    assert "client_ref" not in api.get_json()


def test_a_link_to_an_onboarding_that_is_gone_says_so(client, csrf_token, unverified):
    body, _ref = unverified
    db.session.delete(db.session.get(Onboarding, body["id"]))
    db.session.commit()

    page = client.get(f"/signup/demo/resume?token={body['resume_token']}", headers={"Accept": "text/html"})

    assert page.status_code == 404
    assert "no longer exists" in page.get_data(as_text=True)
    assert resume(client, csrf_token, body["resume_token"]).status_code == 404


def test_finished_onboardings_get_no_link(app, unverified):
    body, _ref = unverified
    onboarding = db.session.get(Onboarding, body["id"])
    with app.test_request_context():
        assert resume_links.link_for(onboarding) is not None
        for waiting in ("awaiting_pin", "rate_limited"):  # the customer has something to do, or to wait for
            onboarding.status = waiting
            assert resume_links.link_for(onboarding) is not None
        onboarding.status = "completed"
        assert resume_links.link_for(onboarding) is None
