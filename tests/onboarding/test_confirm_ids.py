"""Which WABA a signup shared, with ``debug_token`` in the shape Meta answers today and in the older one.

Since June 2026 Embedded Signup tokens come with ``granular_scopes`` like
``[{"scope": "business_management"}, {"scope": "whatsapp_business_manage_events"}]``: no
``whatsapp_business_management`` entry, no ``target_ids`` (meta-reference.md 3.2, logged in
chatwoot/chatwoot#14690). Before, the entry listed the granted WABAs, most recent first (the same section,
Meta's docs). The simulator answers today's shape by default and the older one for ``scopes: "legacy"``.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from esu.extensions import db
from esu.models import MessageTemplate, Onboarding, OnboardingStep, PhoneNumber, WebhookEvent, WhatsAppBusinessAccount
from esu.models.assets import OnboardingAsset

from ..admin_support import gen_onboarding
from ..conftest import CREDIT_LINE_ID
from ..helpers import new_ref, step
from ..webhooks.conftest import encode, envelope, sign

PARTNER_ID = "1715120619246906"


def confirmed(onboarding_id: int) -> dict:
    """What confirm_ids recorded: where the WABA came from, and what debug_token listed as granted."""
    db.session.expire_all()
    return db.session.scalar(sa.select(OnboardingStep.result).where(
        OnboardingStep.onboarding_id == onboarding_id, OnboardingStep.name == "confirm_ids"))


def partner_added(client, waba_id: str, owner: str, at: int = 1750000000):
    """Meta's PARTNER_ADDED for a WABA, in the partner's business entry (account-update-webhook-reference.md)."""
    value = {"event": "PARTNER_ADDED", "waba_info": {"waba_id": waba_id, "owner_business_id": owner}}
    body = encode(envelope(("account_update", value), entry_id=PARTNER_ID, time=at))
    response = client.post("/webhooks/whatsapp", data=body,
                           headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)})
    assert response.status_code == 200


@pytest.mark.parametrize("scopes", ["current", "legacy"])
def test_the_ids_from_the_browser_onboard_in_either_shape(simulator, post_callback, scopes):
    signup = simulator.signup(scopes=scopes)

    body = post_callback(signup).get_json()

    assert body["status"] == "completed", body
    result = confirmed(body["id"])
    assert result["waba_id"] == signup["waba_id"]
    if scopes == "legacy":
        assert result["granted_waba_ids"] == [signup["waba_id"]]
    else:
        assert result["granted_waba_ids"] is None
        assert "browser" in result["found_in"]
        assert step(body, "read_waba")["status"] == "ok"  # the customer's token read it: the proof


@pytest.mark.parametrize("scopes", ["current", "legacy"])
def test_a_code_alone_finds_its_waba_in_either_shape(simulator, post_callback, scopes):
    simulator.signup(business_name="Someone else", scopes=scopes)  # another customer's grant, not ours
    signup = simulator.signup(business_name="Code Only Co", scopes=scopes)

    body = post_callback({"code": signup["code"]}).get_json()

    assert body["status"] == "completed", body
    assert (body["waba_id"], body["phone_number_id"]) == (signup["waba_id"], signup["phone_number_id"])
    assert body["business_name"] == "Code Only Co"
    result = confirmed(body["id"])
    if scopes == "legacy":
        assert result["found_in"] == "debug_token's granted WABAs"
        assert simulator.calls("assigned_whatsapp_business_accounts") == []
    else:
        assert result["found_in"] == "the WABAs assigned to the token's system user"
        [call] = simulator.calls("assigned_whatsapp_business_accounts")
        assert call["auth"] == "business"


def test_a_code_alone_finds_its_waba_through_partner_added_when_the_assigned_list_is_refused(
        client, simulator, post_callback):
    theirs = simulator.signup(business_name="Someone else")
    signup = simulator.signup(business_name="Announced Ltd")
    # Both announced by Meta and unclaimed; the other customer's the newer. Only ours answers our token.
    partner_added(client, signup["waba_id"], signup["business_id"], at=1750000000)
    partner_added(client, theirs["waba_id"], theirs["business_id"], at=1750000100)
    simulator.fault("assigned_whatsapp_business_accounts", 100)

    body = post_callback({"code": signup["code"]}).get_json()

    assert body["status"] == "completed", body
    assert body["waba_id"] == signup["waba_id"]
    assert "PARTNER_ADDED" in confirmed(body["id"])["found_in"]
    # Our announcement was folded into the callback's onboarding; the other customer's still waits for theirs.
    db.session.expire_all()
    waiting = db.session.scalars(sa.select(Onboarding.waba_id).where(Onboarding.status == "awaiting_callback")).all()
    assert waiting == [theirs["waba_id"]]
    assert simulator.state.wabas[theirs["waba_id"]].subscribed_apps == []


def test_a_code_alone_with_nothing_to_find_it_by_fails_retryably_and_the_retry_finds_it(
        client, csrf_token, simulator, post_callback):
    signup = simulator.signup()
    simulator.fault("assigned_whatsapp_business_accounts", 100, times=2)
    ref = new_ref()

    body = post_callback({"code": signup["code"]}, client_ref=ref).get_json()

    assert body["status"] == "failed" and body["retryable"] is True
    assert "has not said yet which WhatsApp Business Account" in step(body, "confirm_ids")["detail"]
    assert simulator.state.wabas[signup["waba_id"]].subscribed_apps == []

    partner_added(client, signup["waba_id"], signup["business_id"])
    retried = client.post(f"/signup/demo/onboardings/{ref}/retry", headers={"X-CSRFToken": csrf_token})

    assert retried.get_json()["status"] == "completed", retried.get_json()
    assert retried.get_json()["waba_id"] == signup["waba_id"]


@pytest.fixture
def partner(app_config):
    """esu set up as a Solution Partner (a credit line to share); named before the fixtures that make the app."""
    app_config["META_CREDIT_LINE_ID"] = CREDIT_LINE_ID


def onboarded_wabas(onboarding_id: int) -> list[str]:
    """The WABAs kept as the onboarding's assets, in the order kept."""
    db.session.expire_all()
    return list(db.session.scalars(sa.select(OnboardingAsset.asset_id).where(
        OnboardingAsset.onboarding_id == onboarding_id, OnboardingAsset.kind == "waba").order_by(OnboardingAsset.id)))


def assert_each_waba_onboarded(simulator, waba_ids: list[str]) -> None:
    """Each WABA subscribed, read, its credit line shared, its number registered, its templates saved."""
    for waba_id in waba_ids:
        waba = db.session.get(WhatsAppBusinessAccount, waba_id)
        assert waba.subscribed_at is not None and waba.name and waba.credit_allocation_config_id, waba_id
        assert simulator.state.wabas[waba_id].subscribed_apps != []
        assert db.session.scalars(sa.select(MessageTemplate.id).where(MessageTemplate.waba_id == waba_id)).all()
        [number] = db.session.scalars(sa.select(PhoneNumber).where(PhoneNumber.waba_id == waba_id)).all()
        assert number.registered_at is not None and simulator.state.phones[number.id].pin == number.pin


@pytest.mark.parametrize("scopes", ["current", "legacy"])
def test_a_code_alone_of_a_multi_waba_signup_onboards_every_waba(partner, simulator, post_callback, scopes):
    """implementation.md: a multi-WABA flow's message lists ``waba_ids``; with the code alone, Meta's
    ``debug_token`` (legacy: ``target_ids``, most recent first) or the token's system user's
    ``assigned_whatsapp_business_accounts``
    (reference/webhooks/whatsapp-business-assigned-whatsapp-business-accounts-api.md) names them all, and
    each is onboarded as the browser's ``waba_ids`` would have it."""
    other = simulator.signup(business_name="Someone else", scopes=scopes)
    signup = simulator.signup(business_name="Three Wabas Co", wabas=3, scopes=scopes)
    waba_ids = signup["data"]["waba_ids"]

    body = post_callback({"code": signup["code"]}).get_json()

    assert body["status"] == "completed", body
    assert sorted(onboarded_wabas(body["id"])) == sorted(waba_ids)
    assert body["waba_id"] in waba_ids
    assert_each_waba_onboarded(simulator, waba_ids)
    assert simulator.state.wabas[other["waba_id"]].subscribed_apps == []
    assert len(simulator.calls("register")) == len(simulator.calls("credit_sharing")) == 3


def test_a_code_alone_leaves_a_waba_another_onboarding_has_to_it(partner, simulator, post_callback, page):
    """The system user a customer's token acts as keeps every WABA it was given
    (reference/webhooks/whatsapp-business-assigned-whatsapp-business-accounts-api.md), an earlier signup's
    too: a WABA another onboarding (called back, not offboarded) has stays its own, and is not forwarded to
    this page's client too. The rest of the list is this signup's."""
    signup = simulator.signup(business_name="Two Wabas Co", wabas=2)
    earlier, new = signup["data"]["waba_ids"][1], signup["data"]["waba_ids"][0]
    before = gen_onboarding(page, waba_id=earlier, code_digest="e" * 64)
    db.session.commit()

    body = post_callback({"code": signup["code"]}).get_json()

    assert body["status"] == "completed", body
    assert onboarded_wabas(body["id"]) == [new] and body["waba_id"] == new
    assert confirmed(body["id"])["left_to_other_onboardings"] == [earlier]
    assert onboarded_wabas(before.id) == [earlier]


def test_a_code_alone_for_the_waba_it_already_has_takes_it_again(partner, simulator, post_callback, page):
    """Signing up again for the only WABA the customer has: it is this signup's too."""
    signup = simulator.signup(business_name="Again Co")
    gen_onboarding(page, waba_id=signup["data"]["waba_id"], code_digest="a" * 64)
    db.session.commit()

    body = post_callback({"code": signup["code"]}).get_json()

    assert body["status"] == "completed", body
    assert onboarded_wabas(body["id"]) == [signup["data"]["waba_id"]]


@pytest.mark.parametrize("scopes", ["current", "legacy"])
def test_a_code_alone_absorbs_the_partner_added_records_of_each_of_its_wabas(
        partner, client, simulator, post_callback, scopes):
    """account-update-webhook-reference.md: Meta's PARTNER_ADDED announces each WABA shared with the partner,
    possibly before the callback; every one of this customer's is folded into the callback's onboarding,
    with its webhook events, once proved theirs (read with their token). Another customer's stays waiting."""
    theirs = simulator.signup(business_name="Someone else", scopes=scopes)
    signup = simulator.signup(business_name="Announced Twice Ltd", wabas=2, scopes=scopes)
    first, second = signup["data"]["waba_ids"]
    partner_added(client, first, signup["business_id"], at=1750000000)
    partner_added(client, second, signup["business_id"], at=1750000050)
    partner_added(client, theirs["waba_id"], theirs["business_id"], at=1750000100)

    body = post_callback({"code": signup["code"]}).get_json()

    assert body["status"] == "completed", body
    assert sorted(onboarded_wabas(body["id"])) == sorted([first, second])
    assert_each_waba_onboarded(simulator, [first, second])
    waiting = db.session.scalars(sa.select(Onboarding.waba_id).where(Onboarding.status == "awaiting_callback")).all()
    assert waiting == [theirs["waba_id"]]
    assert simulator.state.wabas[theirs["waba_id"]].subscribed_apps == []
    events = db.session.scalars(sa.select(WebhookEvent.onboarding_id).where(WebhookEvent.waba_id.in_([first, second])))
    assert set(events) == {body["id"]}


def test_a_code_alone_finds_every_announced_waba_when_the_assigned_list_is_refused(
        partner, client, simulator, post_callback):
    """Without ``target_ids`` and with the assigned list refused, the WABAs PARTNER_ADDED announced
    (account-update-webhook-reference.md) that the customer's token can read are theirs: both are onboarded;
    another customer's, which the token cannot read, is left alone."""
    theirs = simulator.signup(business_name="Someone else")
    signup = simulator.signup(business_name="Announced Ltd", wabas=2)
    first, second = signup["data"]["waba_ids"]
    for at, (waba_id, owner) in enumerate([(first, signup["business_id"]), (theirs["waba_id"], theirs["business_id"]),
                                           (second, signup["business_id"])]):
        partner_added(client, waba_id, owner, at=1750000000 + at)
    simulator.fault("assigned_whatsapp_business_accounts", 100)

    body = post_callback({"code": signup["code"]}).get_json()

    assert body["status"] == "completed", body
    assert "PARTNER_ADDED" in confirmed(body["id"])["found_in"]
    assert sorted(onboarded_wabas(body["id"])) == sorted([first, second])
    assert_each_waba_onboarded(simulator, [first, second])
    waiting = db.session.scalars(sa.select(Onboarding.waba_id).where(Onboarding.status == "awaiting_callback")).all()
    assert waiting == [theirs["waba_id"]]
    assert simulator.state.wabas[theirs["waba_id"]].subscribed_apps == []


def test_the_simulator_refuses_an_unknown_scope_shape(simulator):
    import requests

    response = requests.post(f"{simulator.url}/_meta/signup", json={"scopes": "newest"}, timeout=5)
    assert response.status_code == 400
    assert "current, legacy" in response.json()["error"]
