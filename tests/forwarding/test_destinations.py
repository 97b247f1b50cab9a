"""Outside development, forwarding reaches only public https endpoints other than esu itself: refused
when a target is saved, and again when a connection is opened (after DNS, so rebinding fails too)."""

from __future__ import annotations

import ipaddress
import socket

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from esu import create_app, forwarding
from esu.cli import create_page
from esu.extensions import db
from esu.forwarding import DestinationRefused
from esu.forwarding.signing import new_secret
from esu.models.forwarding import ForwardAttempt, ForwardDelivery, ForwardingTarget

from ..conftest import empty_tables
from .conftest import onboard, store_events

PUBLIC = "93.184.216.34"


@pytest.fixture
def production(app_config, simulator):
    """The app as production runs it (ESU_ENV=production), with its own public URL."""
    config = {**app_config, "ESU_ENV": "production", "ESU_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
              "ESU_PUBLIC_URL": "https://esu.example.com"}
    app = create_app(config)
    with app.app_context():
        yield app
        empty_tables()


@pytest.fixture
def dns(monkeypatch):
    """Name resolution from a table the test fills; any other name fails (tests never ask real DNS)."""
    table: dict[str, str] = {}
    real = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        if host in table:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[host], port or 0))]
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if host != "localhost":
                raise socket.gaierror(socket.EAI_NONAME, f"{host} is not in the test's DNS table") from None
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return table


@pytest.fixture
def prod_page(production):
    return create_page("client", "Client")


@pytest.mark.parametrize(("url", "reason"), [
    ("http://hooks.example.net/x", "must start with https://"),
    ("https://127.0.0.1/hooks", "loopback"),
    ("https://localhost:8443/hooks", "loopback"),
    ("https://[::1]/hooks", "loopback"),
    ("https://[::ffff:127.0.0.1]/hooks", "loopback"),
    ("https://10.1.2.3/hooks", "private"),
    ("https://192.168.0.10/hooks", "private"),
    ("https://169.254.169.254/latest/meta-data", "link-local"),
    ("https://0.0.0.0/hooks", "unspecified"),
    ("https://224.0.0.1/hooks", "multicast"),
    ("https://100.64.0.1/hooks", "non-public"),
    ("https://internal.example.net/hooks", "resolves to 10.0.0.5, a private address"),
    ("https://esu.example.com/webhooks/whatsapp", "esu itself"),
    ("https://ESU.example.com./webhooks/whatsapp", "esu itself"),
    ("https://alias.example.net/webhooks/whatsapp", "an address of esu itself"),
    ("https://nowhere.example.net/hooks", "does not resolve"),
])
def test_targets_to_internal_addresses_or_esu_are_refused(prod_page, dns, url, reason):
    dns.update({"internal.example.net": "10.0.0.5", "esu.example.com": "93.184.216.80",
                "alias.example.net": "93.184.216.80"})
    with pytest.raises(DestinationRefused, match=reason):
        forwarding.create_target(prod_page, url)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ForwardingTarget)) == 0


def test_the_host_the_admin_is_using_is_refused(production, prod_page, dns):
    dns["admin.example.org"] = PUBLIC
    with production.test_request_context(base_url="https://admin.example.org"):
        with pytest.raises(DestinationRefused, match="esu itself"):
            forwarding.create_target(prod_page, "https://admin.example.org/hooks")


def test_a_public_https_target_is_accepted(prod_page, dns):
    dns["hooks.example.net"] = PUBLIC
    target, secret = forwarding.create_target(prod_page, "https://hooks.example.net/whatsapp")
    assert target.id and secret.startswith("whsec_")


def test_a_name_that_resolves_elsewhere_when_sending_is_refused(prod_page, dns, receiver, clock):
    """DNS rebinding: public when saved, loopback (where a receiver listens) when the worker connects."""
    port = receiver.url.split(":")[2].split("/")[0]
    dns["rebind.example.net"] = PUBLIC
    forwarding.create_target(prod_page, f"https://rebind.example.net:{port}/hooks")
    db.session.commit()
    (event_id,) = store_events(onboard(prod_page))
    dns["rebind.example.net"] = "127.0.0.1"

    forwarding.run_worker(4, once=True, clock=clock)

    assert receiver.received == []
    delivery = db.session.scalars(sa.select(ForwardDelivery).where(ForwardDelivery.event_id == event_id)).one()
    assert delivery.status == "failed"
    attempt = db.session.scalars(sa.select(ForwardAttempt)).one()
    assert attempt.error == "destination refused: rebind.example.net resolves to 127.0.0.1, a loopback address"


def test_an_http_target_saved_in_development_is_not_sent_in_production(prod_page, receiver, clock):
    db.session.add(ForwardingTarget(page_id=prod_page.id, url=receiver.url, secret=new_secret()))
    db.session.commit()
    store_events(onboard(prod_page))

    forwarding.run_worker(4, once=True, clock=clock)

    assert receiver.received == []
    assert db.session.scalar(sa.select(ForwardDelivery.last_error)) == (
        "destination refused: the URL must start with https://")
