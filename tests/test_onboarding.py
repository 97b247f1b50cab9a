"""The onboarding sequence behind the callback, against the simulator over real HTTP."""

from __future__ import annotations

import sqlalchemy as sa

from esu.extensions import db
from esu.models import MessageTemplate, Onboarding, PhoneNumber, WhatsAppBusinessAccount

from .conftest import CREDIT_LINE_ID


def steps(body: dict) -> dict[str, str]:
    return {step["name"]: step["status"] for step in body["steps"]}


def test_tech_provider_happy_path(simulator, post_callback):
    signup = simulator.signup(business_name="Wind & Wool")
    response = post_callback(signup)
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "completed"
    assert body["business_name"] == "Wind & Wool"
    assert steps(body) == {
        "exchange_code": "ok", "confirm_ids": "ok", "read_waba": "ok", "subscribe_webhooks": "ok",
        "assign_system_user": "skipped", "share_credit_line": "skipped", "read_phone_number": "ok",
        "register_phone": "ok", "sync_business_app": "skipped", "fetch_templates": "ok",
    }
    onboarding = db.session.get(Onboarding, body["id"])
    assert onboarding.page.slug == "demo"
    waba = db.session.get(WhatsAppBusinessAccount, signup["waba_id"])
    assert waba.message_template_namespace and waba.subscribed_at is not None
    assert simulator.state.wabas[signup["waba_id"]].subscribed_apps == ["1234567890123456"]
    phone = db.session.get(PhoneNumber, signup["phone_number_id"])
    assert phone.registered_at is not None and len(phone.pin) == 6
    assert simulator.state.phones[signup["phone_number_id"]].pin == phone.pin
    names = db.session.scalars(sa.select(MessageTemplate.name).where(MessageTemplate.waba_id == waba.id)).all()
    assert sorted(names) == ["order_update_1", "order_update_2", "order_update_3"]  # approved only


def test_solution_partner_shares_the_credit_line(app_config, simulator, request):
    app_config["META_CREDIT_LINE_ID"] = CREDIT_LINE_ID
    client = request.getfixturevalue("post_callback")
    signup = simulator.signup()
    body = client(signup).get_json()
    assert body["status"] == "completed"
    assert steps(body)["assign_system_user"] == "ok" and steps(body)["share_credit_line"] == "ok"
    waba = db.session.get(WhatsAppBusinessAccount, signup["waba_id"])
    allocation = simulator.state.allocations[waba.credit_allocation_config_id]
    assert allocation == {"credit_line_id": CREDIT_LINE_ID, "waba_id": signup["waba_id"],
                          "credential_id": simulator.state.wabas[signup["waba_id"]].primary_funding_id}
