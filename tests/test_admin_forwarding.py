"""Forwarding in the admin: a signup page's targets (add, secret shown once, edit, disable, enable, new
secret, delete), a target's deliveries and attempts, replay, test events, and the dashboard's flag."""

from __future__ import annotations

import logging
import re
import socket
from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from esu import create_app, forwarding
from esu.extensions import db
from esu.models import now_utc
from esu.models.admin import AdminAction
from esu.models.forwarding import ForwardAttempt, ForwardDelivery, ForwardingTarget

from .admin_support import AdminClient, gen_delivery, gen_page, gen_target, gen_webhook_event, log_in_session
from .conftest import empty_tables
from .forwarding.conftest import clock, onboard, receiver, store_events  # noqa: F401 - fixtures

pytest_plugins = ["tests.admin_fixtures"]  # the admin fixtures: admin, stored_admin, count_queries…

SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]{40,}")


def html_of(response) -> str:
    return response.get_data(as_text=True)


def actions() -> list[tuple[str, str | None]]:
    return list(db.session.execute(sa.select(AdminAction.action, AdminAction.detail).order_by(AdminAction.id)))


def targets() -> list[ForwardingTarget]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(ForwardingTarget).order_by(ForwardingTarget.id)))


def statuses(target: ForwardingTarget) -> dict[int, str]:
    db.session.expire_all()
    return dict(db.session.execute(sa.select(ForwardDelivery.id, ForwardDelivery.status)
                                   .where(ForwardDelivery.target_id == target.id)).all())


def listed_deliveries(html: str) -> list[int]:
    return [int(ident) for ident in re.findall(r'<tr id="delivery-(\d+)"', html)]


def work(clock) -> forwarding.WorkerStats:
    return forwarding.run_worker(10, once=True, clock=clock, poll_interval=0.01)


# -- targets -----------------------------------------------------------------------------------------


def test_a_new_targets_secret_is_shown_once_and_never_again(admin, receiver, clock, caplog):
    caplog.set_level(logging.DEBUG)
    page = gen_page("client")
    db.session.commit()
    assert "No forwarding targets yet" in html_of(admin.get(f"/admin/pages/{page.id}"))

    response = admin.post(f"/admin/pages/{page.id}/forwarding",
                          data={"url": receiver.url, "fields": ["messages", "account_update"]})

    (target,) = targets()
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f"/admin/forwarding/{target.id}?shown=")
    assert target.secret not in response.headers["Location"]
    assert target.secret not in (response.headers.get("Set-Cookie") or "")
    with admin.client.session_transaction() as session:
        assert target.secret not in repr(dict(session))
    shown = admin.get(response.headers["Location"])
    html = html_of(shown)
    (secret,) = set(SECRET.findall(html))
    assert secret == target.secret
    assert (target.url, target.fields, target.enabled) == (receiver.url, ["messages", "account_update"], True)
    assert "Target added: its signing secret" in html
    assert "Shown once" in html and "Forwarding to clients&#39; own systems" in html
    assert shown.headers["Cache-Control"] == "no-store"
    assert actions() == [("created_forwarding_target", f"target {target.id} (127.0.0.1)")]
    reload = html_of(admin.get(response.headers["Location"]))  # the browser's reload of the secret's answer
    assert not SECRET.search(reload) and "not shown again on reload" in reload
    assert len(targets()) == 1 and len(actions()) == 1

    # What the admin copied is what signs: the receiver verifies a test event with it.
    receiver.secret = secret
    admin.post(f"/admin/forwarding/{target.id}/test")
    assert [request.verified for request in receiver.received] == [True]

    for url in (f"/admin/forwarding/{target.id}", f"/admin/pages/{page.id}", "/admin/"):
        later = html_of(admin.get(url))
        assert not SECRET.search(later), url
    assert f'href="/admin/forwarding/{target.id}"' in html_of(admin.get(f"/admin/pages/{page.id}"))
    assert secret not in caplog.text
    assert all(secret not in (detail or "") for _, detail in actions())


ONCE = re.compile(r'name="once" type="hidden" value="([^"]+)"')


def test_sending_the_add_form_again_does_not_add_the_target_twice(admin):
    page = gen_page("client")
    db.session.commit()
    (once,) = ONCE.findall(html_of(admin.get(f"/admin/pages/{page.id}")))
    form = {"url": "http://127.0.0.1:9/hooks", "once": once}
    # A URL the policy refuses leaves the form usable: it is sent again, corrected, with the same token.
    refused = admin.post(f"/admin/pages/{page.id}/forwarding", data={**form, "url": "ftp://127.0.0.1/x"})
    assert refused.status_code == 200 and targets() == []
    assert ONCE.findall(html_of(refused)) == [once]

    assert admin.post(f"/admin/pages/{page.id}/forwarding", data=form).status_code == 302
    again = admin.post(f"/admin/pages/{page.id}/forwarding", data=form)  # sent again (back, then resubmit)

    assert again.status_code == 302 and again.headers["Location"].endswith(f"/admin/pages/{page.id}#forwarding")
    assert len(targets()) == 1
    assert "This form was sent already" in html_of(admin.get(f"/admin/pages/{page.id}"))
    # A fresh form adds another.
    (fresh,) = ONCE.findall(html_of(admin.get(f"/admin/pages/{page.id}")))
    assert fresh != once
    admin.post(f"/admin/pages/{page.id}/forwarding", data={**form, "once": fresh})
    assert len(targets()) == 2


def test_no_field_chosen_forwards_every_field(admin):
    page = gen_page("everything")
    db.session.commit()
    admin.post(f"/admin/pages/{page.id}/forwarding", data={"url": "http://127.0.0.1:9/all"})
    (target,) = targets()
    assert target.fields == []
    html = html_of(admin.get(f"/admin/pages/{page.id}"))
    assert '<td data-label="Fields">all</td>' in html
    # Offered: the webhook fields esu knows, none checked.
    assert all(f'value="{name}"' in html for name in forwarding.KNOWN_FIELDS)
    assert html.count('type="checkbox"') == len(forwarding.KNOWN_FIELDS)
    assert not re.search(r"<input[^>]*checked", html)


@pytest.mark.parametrize(("data", "message"), [
    ({"url": ""}, "This field is required."),
    ({"url": "ftp://127.0.0.1/hooks"}, "Not allowed: the URL must start with https:// or http://."),
    ({"url": "http://me:pw@127.0.0.1/hooks"}, "Not allowed: the URL must not carry a user name or password"),
    ({"url": "http://127.0.0.1/hooks", "fields": ["messages", "drop_tables"]},
     "&#39;drop_tables&#39; is not a valid choice for this field."),
])
def test_a_refused_target_is_a_form_error(admin, data, message):
    page = gen_page("client")
    db.session.commit()
    response = admin.post(f"/admin/pages/{page.id}/forwarding", data=data)
    assert response.status_code == 200
    assert message in html_of(response)
    assert targets() == [] and actions() == []


#: Production redirects plain HTTP, and over https CSRF checks the Referer.
HTTPS = {"base_url": "https://localhost", "headers": {"Referer": "https://localhost/admin/"}}


class HttpsAdminClient(AdminClient):
    """The admin over https, as production requires."""

    def get(self, url: str, **kwargs):
        return self.client.get(url, **HTTPS, **kwargs)

    def post(self, url: str, data: dict | None = None, **kwargs):
        return self.client.post(url, data={**(data or {}), "csrf_token": self.csrf_token()}, **HTTPS, **kwargs)


@pytest.fixture
def production(app_config, stored_admin, monkeypatch):
    """The app as production runs it, an admin logged in over https, and DNS from a table."""
    app = create_app({**app_config, "ESU_ENV": "production", "ESU_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                      "ESU_PUBLIC_URL": "https://esu.example.com"})
    names = {"hooks.example.net": "93.184.216.34", "internal.example.net": "10.0.0.5"}
    real = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], port or 0))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    # Read here, through the test app's session: inside the production app's context that session would
    # borrow (and keep) a connection of the production app's engine.
    account = SimpleNamespace(session_nonce=stored_admin.session_nonce)
    with app.app_context():
        client = app.test_client()
        log_in_session(client, account)
        yield HttpsAdminClient(client)
        empty_tables()


@pytest.mark.parametrize(("url", "message"), [
    ("http://hooks.example.net/whatsapp", "Not allowed: the URL must start with https://."),
    ("https://127.0.0.1/hooks", "Not allowed: 127.0.0.1 is a loopback address."),
    ("https://[::1]/hooks", "Not allowed: ::1 is a loopback address."),
    ("https://192.168.1.20/hooks", "Not allowed: 192.168.1.20 is a private address."),
    ("https://169.254.169.254/latest/meta-data", "Not allowed: 169.254.169.254 is a link-local address."),
    ("https://internal.example.net/hooks",
     "Not allowed: internal.example.net resolves to 10.0.0.5, a private address."),
    ("https://esu.example.com/webhooks/whatsapp", "Not allowed: esu.example.com is esu itself."),
])
def test_production_refuses_http_and_internal_addresses_on_the_form(production, url, message):
    page = gen_page("client")
    db.session.commit()
    response = production.post(f"/admin/pages/{page.id}/forwarding", data={"url": url})
    assert response.status_code == 200
    html = html_of(response)
    assert message in html and 'aria-invalid="true"' in html
    assert not SECRET.search(html)
    assert targets() == []


def test_production_accepts_a_public_https_target(production):
    page = gen_page("client")
    db.session.commit()
    response = production.post(f"/admin/pages/{page.id}/forwarding",
                               data={"url": "https://hooks.example.net/whatsapp"}, follow_redirects=True)
    assert response.status_code == 200 and SECRET.search(html_of(response))
    assert [target.url for target in targets()] == ["https://hooks.example.net/whatsapp"]


def test_only_the_admin_may_manage_targets(client, admin):
    page = gen_page("client")
    target = gen_target(page)
    db.session.commit()
    admin.post("/admin/logout")
    # A real token of this (anonymous) session: the refusal must come from the login guard.
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      html_of(client.get("/admin/login"))).group(1)
    assert client.get(f"/admin/forwarding/{target.id}").status_code == 302
    for url in (f"/admin/pages/{page.id}/forwarding", f"/admin/forwarding/{target.id}/rotate-secret",
                f"/admin/forwarding/{target.id}/disable"):
        response = client.post(url, data={"csrf_token": token, "url": "http://127.0.0.1:9/mine"})
        assert response.status_code == 401 and not SECRET.search(html_of(response))
    (unchanged,) = targets()
    assert unchanged.enabled and unchanged.secret == target.secret


def test_every_target_form_needs_its_csrf_token(admin):
    page = gen_page("client")
    target = gen_target(page)
    gen_delivery(target, status="failed")
    db.session.commit()
    for url in (f"/admin/pages/{page.id}/forwarding", f"/admin/forwarding/{target.id}",
                f"/admin/forwarding/{target.id}/replay-failed", f"/admin/forwarding/{target.id}/test"):
        response = admin.client.post(url, data={"url": "http://127.0.0.1:9/other"})
        assert response.status_code == 400 and "security token" in html_of(response)
    assert [(t.url, t.enabled) for t in targets()] == [("http://127.0.0.1:9/hooks", True)]
    assert list(statuses(target).values()) == ["failed"]


def test_edit_url_and_fields(admin):
    page = gen_page("client")
    target = gen_target(page, fields=["messages", "custom_field"])
    db.session.commit()
    form = html_of(admin.get(f"/admin/forwarding/{target.id}"))
    assert 'value="http://127.0.0.1:9/hooks"' in form
    assert re.search(r'<input checked[^>]*value="messages"', form)
    assert re.search(r'<input checked[^>]*value="custom_field"', form)

    refused = admin.post(f"/admin/forwarding/{target.id}", data={"url": "gopher://127.0.0.1/", "fields": ["security"]})
    assert refused.status_code == 200
    assert "Not allowed: the URL must start with https:// or http://." in html_of(refused)
    assert (targets()[0].url, targets()[0].fields) == ("http://127.0.0.1:9/hooks", ["messages", "custom_field"])

    saved = admin.post(f"/admin/forwarding/{target.id}",
                       data={"url": "http://127.0.0.1:10/new", "fields": ["security", "custom_field"]})
    assert saved.status_code == 302 and saved.headers["Location"] == f"/admin/forwarding/{target.id}"
    assert (targets()[0].url, targets()[0].fields) == ("http://127.0.0.1:10/new", ["security", "custom_field"])
    assert [action for action, _ in actions()] == ["updated_forwarding_target"]


def test_disable_and_enable_a_target(admin):
    page = gen_page("client")
    target = gen_target(page)
    pending = gen_delivery(target, status="pending")
    db.session.commit()

    response = admin.post(f"/admin/forwarding/{target.id}/disable", follow_redirects=True)
    assert "1 pending deliveries were stopped" in html_of(response)
    (disabled,) = targets()
    assert not disabled.enabled and disabled.disabled_reason.startswith("disabled in the admin on ")
    assert statuses(target) == {pending.id: "failed"}
    page_html = html_of(admin.get(f"/admin/pages/{page.id}"))
    assert "disabled in the admin on" in page_html
    assert '<span class="badge status-offboarded">disabled</span>' in page_html
    # No replay and no test event while disabled.
    assert f"/admin/forwarding/{target.id}/test" not in html_of(response)
    refused = admin.post(f"/admin/forwarding/{target.id}/test", follow_redirects=True)
    assert "No test event sent: the target is disabled" in html_of(refused)

    admin.post(f"/admin/forwarding/{target.id}/enable")
    (enabled,) = targets()
    assert enabled.enabled and enabled.disabled_reason is None
    assert [action for action, _ in actions()] == ["disabled_forwarding_target", "enabled_forwarding_target"]


def test_a_new_secret_is_shown_once_and_the_old_signs_beside_it_for_the_overlap(admin):
    page = gen_page("client")
    target = gen_target(page)
    db.session.commit()
    old = target.secret

    response = admin.post(f"/admin/forwarding/{target.id}/rotate-secret")

    assert response.status_code == 302
    shown = html_of(admin.get(response.headers["Location"]))
    (new,) = set(SECRET.findall(shown))
    assert new != old and targets()[0].secret == new
    until = targets()[0].previous_secret_until
    assert targets()[0].previous_secret == old
    assert timedelta(hours=23, minutes=59) < until - now_utc() <= timedelta(hours=24)
    assert re.search(rf"the previous secret keeps signing beside it until <time[^>]*>{until:%Y-%m-%d %H:%M} UTC<", shown)
    assert not SECRET.search(html_of(admin.get(response.headers["Location"])))  # the reload
    page_html = html_of(admin.get(f"/admin/forwarding/{target.id}"))
    assert not SECRET.search(page_html)
    assert re.search(rf"still signs beside the new one until <time[^>]*>{until:%Y-%m-%d %H:%M} UTC<", page_html)
    detail = f"target {target.id} (127.0.0.1), the old one signs too until {until:%Y-%m-%d %H:%M} UTC"
    assert actions() == [("rotated_forwarding_secret", detail)]


def test_a_target_is_deleted_only_once_disabled(admin):
    page = gen_page("client")
    target = gen_target(page)
    gen_delivery(target, attempts=((200, "ok", None),))
    db.session.commit()

    refused = admin.post(f"/admin/forwarding/{target.id}/delete", follow_redirects=True)
    assert "Not deleted: disable the target before deleting it." in html_of(refused)
    assert len(targets()) == 1

    admin.post(f"/admin/forwarding/{target.id}/disable")
    response = admin.post(f"/admin/forwarding/{target.id}/delete")
    assert response.headers["Location"] == f"/admin/pages/{page.id}#forwarding"
    assert targets() == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ForwardDelivery)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ForwardAttempt)) == 0
    assert actions()[-1] == ("deleted_forwarding_target", f"target {target.id} (127.0.0.1)")
    assert admin.get(f"/admin/forwarding/{target.id}").status_code == 404


def test_the_pages_forwarding_section_shows_counts_and_the_latest_attempt(admin, count_queries):
    page = gen_page("client")
    target = gen_target(page, fields=["messages"])
    gen_delivery(target, attempts=((200, "ok", None),))
    gen_delivery(target, status="failed", attempts=((500, "down", None), (422, "no such field", "HTTP 422")))
    db.session.commit()
    html = html_of(admin.get(f"/admin/pages/{page.id}"))
    row = html.split(f'href="/admin/forwarding/{target.id}"')[1].split("</tr>")[0]
    assert "messages" in row and "enabled" in row
    assert re.search(r"status-ok\">delivered</span> 1 · .*status-failed\">failed</span> 1", row)
    assert "HTTP 422 · HTTP 422" in row

    for index in range(5):
        more = gen_target(page, url=f"http://127.0.0.1:9/more-{index}")
        gen_delivery(more, attempts=((200, "ok", None),))
    db.session.commit()
    admin.get(f"/admin/pages/{page.id}")
    with count_queries() as one:
        admin.get(f"/admin/pages/{page.id}")
    for index in range(20):
        more = gen_target(page, url=f"http://127.0.0.1:9/many-{index}")
        gen_delivery(more, status="failed", attempts=((500, "down", "HTTP 500"),))
    db.session.commit()
    with count_queries() as many:
        html = html_of(admin.get(f"/admin/pages/{page.id}"))
    assert html.count('<td data-label="URL">') == 26
    assert len(many) == len(one)


# -- deliveries --------------------------------------------------------------------------------------


def test_deliveries_newest_first_with_their_attempts_and_a_failed_filter(admin):
    page = gen_page("client")
    target = gen_target(page)
    other = gen_target(page, url="http://127.0.0.1:9/other")
    event = gen_webhook_event(field="messages")
    base = now_utc() - timedelta(hours=1)
    delivered = gen_delivery(target, event, attempts=((503, "busy", "HTTP 503"), (200, "thanks", None)),
                             created_at=base)
    failed = gen_delivery(target, status="failed", attempts=((400, '{"error": "bad field"}', "HTTP 400"),),
                          created_at=base + timedelta(minutes=1))
    dead = gen_delivery(target, status="dead", attempts=((None, None, "could not connect"),),
                        created_at=base + timedelta(minutes=2))
    pending = gen_delivery(target, status="pending", created_at=base + timedelta(minutes=3))
    gen_delivery(other, status="failed")
    db.session.commit()

    html = html_of(admin.get(f"/admin/forwarding/{target.id}"))
    assert listed_deliveries(html) == [pending.id, dead.id, failed.id, delivered.id]
    row = html.split(f'id="delivery-{delivered.id}"')[1].split("</tr>")[0]
    assert f'href="/admin/webhooks/{event.id}">messages {event.id}</a>' in row
    assert "2 attempts" in row and "HTTP 503 · 12 ms" in row and "<pre>busy</pre>" in row and "HTTP 200" in row
    row = html.split(f'id="delivery-{failed.id}"')[1].split("</tr>")[0]
    assert "<pre>{&#34;error&#34;: &#34;bad field&#34;}</pre>" in row and "Replay" in row
    row = html.split(f'id="delivery-{dead.id}"')[1].split("</tr>")[0]
    assert "no answer" in row and "could not connect" in row
    row = html.split(f'id="delivery-{pending.id}"')[1].split("</tr>")[0]
    assert "none yet" in row and "Replay" not in row
    assert "Replay all failed (2)" in html

    assert listed_deliveries(html_of(admin.get(f"/admin/forwarding/{target.id}?status=undelivered"))) == [
        dead.id, failed.id]
    assert listed_deliveries(html_of(admin.get(f"/admin/forwarding/{target.id}?status=failed"))) == [failed.id]
    assert listed_deliveries(html_of(admin.get(f"/admin/forwarding/{target.id}?status=delivered"))) == [delivered.id]
    assert admin.get(f"/admin/forwarding/{target.id}?status=lost").status_code == 400
    assert admin.get("/admin/forwarding/987654").status_code == 404


def test_deliveries_page_through_with_constant_queries(admin, count_queries):
    page = gen_page("client")
    target = gen_target(page)
    ids = [gen_delivery(target, status="failed", attempts=((500, "x", "HTTP 500"),) * (index % 3 + 1)).id
           for index in range(60)]
    db.session.commit()
    admin.get(f"/admin/forwarding/{target.id}?status=undelivered")
    with count_queries() as first_page:
        first = html_of(admin.get(f"/admin/forwarding/{target.id}?status=undelivered"))
    older = re.search(r'<a href="([^"]+)">Older »</a>', first).group(1).replace("&amp;", "&")
    assert "status=undelivered" in older
    with count_queries() as second_page:
        second = html_of(admin.get(older))
    assert listed_deliveries(first) + listed_deliveries(second) == sorted(ids, reverse=True)
    assert "Older »" not in second and "« Newest" in second
    assert len(second_page) == len(first_page)


def test_replay_one_then_all_failed_and_the_worker_delivers_them(admin, receiver, clock):
    page = gen_page("client")
    db.session.commit()
    admin.post(f"/admin/pages/{page.id}/forwarding", data={"url": receiver.url})
    (target,) = targets()
    receiver.secret = target.secret
    store_events(onboard(page), count=3)
    receiver.answer(*[(422, {}, b"not now")] * 3)
    work(clock)
    assert sorted(statuses(target).values()) == ["failed"] * 3
    one, *rest = sorted(statuses(target))

    response = admin.post(f"/admin/forwarding/{target.id}/deliveries/{one}/replay", data={"status": "undelivered"})
    assert response.headers["Location"] == f"/admin/forwarding/{target.id}?status=undelivered"
    assert statuses(target) == {one: "pending", **{ident: "failed" for ident in rest}}
    work(clock)
    assert statuses(target) == {one: "delivered", **{ident: "failed" for ident in rest}}
    again = admin.post(f"/admin/forwarding/{target.id}/deliveries/{one}/replay", follow_redirects=True)
    assert "Not replayed: only failed deliveries can be replayed; this one is delivered." in html_of(again)

    response = admin.post(f"/admin/forwarding/{target.id}/replay-failed", follow_redirects=True)
    assert "Queued 2 failed deliveries to be sent again" in html_of(response)
    assert sorted(statuses(target).values()) == ["delivered", "pending", "pending"]
    work(clock)
    assert sorted(statuses(target).values()) == ["delivered"] * 3
    assert len(receiver.received) == 6 and all(request.verified for request in receiver.received)
    assert [action for action, _ in actions()] == ["created_forwarding_target", "replayed_delivery",
                                                   "replayed_failed_deliveries"]
    other = gen_target(gen_page("other"))
    db.session.commit()
    assert admin.post(f"/admin/forwarding/{other.id}/deliveries/{one}/replay").status_code == 404


def test_a_test_event_reaches_the_receiver_and_its_outcome_is_shown(admin, receiver, clock):
    page = gen_page("client")
    db.session.commit()
    admin.post(f"/admin/pages/{page.id}/forwarding", data={"url": receiver.url})
    (target,) = targets()
    receiver.secret = target.secret

    response = admin.post(f"/admin/forwarding/{target.id}/test", follow_redirects=True)

    assert "Test event delivered (HTTP 200)." in html_of(response)
    (request,) = receiver.received
    assert request.verified and b'"field":"esu_test"' in request.body
    (delivery,) = db.session.scalars(sa.select(ForwardDelivery).where(ForwardDelivery.target_id == target.id))
    assert (delivery.status, delivery.event_id, request.webhook_id) == ("delivered", None, delivery.message_id)
    assert "test event" in html_of(response)

    receiver.answer((500, {}, b"receiver broken"))
    response = admin.post(f"/admin/forwarding/{target.id}/test", follow_redirects=True)
    assert "Test event failed: HTTP 500." in html_of(response)
    assert "<pre>receiver broken</pre>" in html_of(response)
    assert [detail.split(", ", 1)[1] for action, detail in actions() if action == "sent_forwarding_test"] == [
        "delivered (HTTP 200)", "failed: HTTP 500"]


# -- the dashboard -----------------------------------------------------------------------------------


def test_a_target_failing_for_over_a_day_is_flagged_on_the_dashboard(admin):
    page = gen_page("client", title="Client Co")
    failing = gen_target(page, url="https://hooks.client.example/whatsapp",
                         failing_since=now_utc() - timedelta(hours=25))
    gen_target(page, url="https://recent.client.example/", failing_since=now_utc() - timedelta(hours=2))
    gen_target(page, url="https://healthy.client.example/")
    gen_target(page, url="https://off.client.example/", enabled=False, failing_since=now_utc() - timedelta(days=3))
    db.session.commit()

    html = html_of(admin.get("/admin/"))
    card = re.search(r'<article class="card signal signal-forwarding">(.*?)</article>', html, re.DOTALL).group(1)
    assert '<span class="count">1</span>' in card
    assert f'<a href="/admin/forwarding/{failing.id}">hooks.client.example</a>' in card and "Client Co" in card
    for host in ("recent.client.example", "healthy.client.example", "off.client.example"):
        assert host not in card


def test_healthy_targets_raise_no_flag(admin):
    page = gen_page("client")
    gen_target(page, failing_since=None)
    gen_target(page, url="http://127.0.0.1:9/new", failing_since=now_utc() - timedelta(hours=23))
    db.session.commit()
    html = html_of(admin.get("/admin/"))
    assert "signal-forwarding" not in html and "Nothing needs attention" in html
