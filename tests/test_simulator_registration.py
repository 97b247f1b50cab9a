"""The simulator's numbers as Meta registers them: an existing two-step verification PIN, local storage,
WhatsApp Business app numbers, unverified numbers, the WABA's currency.

Docs: business-phone-numbers/register-a-business-phone-number.md (``pin``, ``data_localization_region`` and its
countries), business-phone-numbers/two-step-verification.md, embedded-signup/onboard-whatsapp-business-app-
users.md (``is_on_biz_app``, ``platform_type``), solution-providers/managing-credit-lines.md.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest
import requests

from .conftest import META
from .test_simulator_errors import VERSION, business_token


def register(simulator, phone_id: str, token: str, **body) -> requests.Response:
    proof = hmac.new(META["META_APP_SECRET"].encode(), token.encode(), hashlib.sha256).hexdigest()
    return requests.post(f"{simulator.url}/_meta/graph/{VERSION}/{phone_id}/register",
                         params={"appsecret_proof": proof}, headers={"Authorization": f"Bearer {token}"},
                         json={"messaging_product": "whatsapp", **body}, timeout=5)


def read_number(simulator, phone_id: str, token: str) -> dict:
    proof = hmac.new(META["META_APP_SECRET"].encode(), token.encode(), hashlib.sha256).hexdigest()
    fields = "is_on_biz_app,platform_type,status,code_verification_status"
    return requests.get(f"{simulator.url}/_meta/graph/{VERSION}/{phone_id}",
                        headers={"Authorization": f"Bearer {token}"},
                        params={"appsecret_proof": proof, "fields": fields}, timeout=5).json()


def test_a_number_with_two_step_verification_registers_only_with_its_pin(simulator):
    signup, token = business_token(simulator, two_step_pin="246810")

    refused = register(simulator, signup["phone_number_id"], token, pin="135790")

    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == 133005 and refused.json()["error"]["is_transient"] is False
    assert register(simulator, signup["phone_number_id"], token, pin="246810").json() == {"success": True}


@pytest.mark.parametrize("pin", ["12345", "abcdef", 246810])
def test_two_step_pin_is_six_digits(simulator, pin):
    response = requests.post(f"{simulator.url}/_meta/signup", json={"two_step_pin": pin}, timeout=5)

    assert response.status_code == 400 and "two_step_pin" in response.json()["error"]


def test_local_storage_takes_the_countries_meta_lists(simulator):
    signup, token = business_token(simulator)

    refused = register(simulator, signup["phone_number_id"], token, pin="123456", data_localization_region="US")

    assert refused.status_code == 400 and refused.json()["error"]["code"] == 100
    assert register(simulator, signup["phone_number_id"], token, pin="123456",
                    data_localization_region="DE").json() == {"success": True}
    assert simulator.state.phones[signup["phone_number_id"]].data_localization_region == "DE"


def test_a_business_app_number_reads_as_meta_shows_it_and_is_not_registered(simulator):
    """"If ``is_on_biz_app`` is true and ``platform_type`` is CLOUD_API, the business phone number is able to use
    Cloud API and the WhatsApp Business app"."""
    signup, token = business_token(simulator, coexistence=True)

    assert read_number(simulator, signup["phone_number_id"], token)["is_on_biz_app"] is True
    assert read_number(simulator, signup["phone_number_id"], token)["platform_type"] == "CLOUD_API"
    assert register(simulator, signup["phone_number_id"], token, pin="123456").status_code == 400


def test_an_unverified_number_cannot_be_registered(simulator):
    signup, token = business_token(simulator, phone_verified=False)

    number = read_number(simulator, signup["phone_number_id"], token)

    assert number["code_verification_status"] == "NOT_VERIFIED" and number["is_on_biz_app"] is False
    assert register(simulator, signup["phone_number_id"], token, pin="123456").status_code == 400


def test_the_wabas_currency_is_the_one_asked_for(simulator):
    signup = simulator.signup(currency="EUR")

    assert simulator.state.wabas[signup["waba_id"]].currency == "EUR"
