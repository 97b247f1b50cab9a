"""The simulator's errors as Meta sends them: the whole envelope, faults that shape it, unknown fields refused,
and the answers the docs give for ``verify_code`` and the code exchange."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import requests

from .conftest import META

VERSION = "v25.0"


def graph(simulator, method: str, path: str, token: str | None = None, **params) -> requests.Response:
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
        params["appsecret_proof"] = hmac.new(META["META_APP_SECRET"].encode(), token.encode(),
                                             hashlib.sha256).hexdigest()
    return requests.request(method, f"{simulator.url}/_meta/graph/{VERSION}/{path}", params=params,
                            headers=headers, timeout=5)


def exchange(simulator, code: str) -> requests.Response:
    return graph(simulator, "GET", "oauth/access_token", client_id=META["META_APP_ID"],
                 client_secret=META["META_APP_SECRET"], code=code)


def business_token(simulator, **options) -> tuple[dict, str]:
    signup = simulator.signup(**options)
    return signup, exchange(simulator, signup["code"]).json()["access_token"]


# Graph API "Handling errors" (meta-reference.md §9.1): message, type, code, error_subcode, error_user_title,
# error_user_msg, error_data {messaging_product, details}, is_transient, fbtrace_id.
def test_an_injected_fault_answers_metas_whole_envelope(simulator):
    signup, token = business_token(simulator)
    simulator.fault("waba", 100, error_subcode=2388024, is_transient=False, error_user_title="Name taken",
                    error_user_msg="Choose another name.", error_data="A template with this name exists.")

    response = graph(simulator, "GET", signup["waba_id"], token, fields="id,name")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("(#100)")
    assert (error["type"], error["code"], error["error_subcode"]) == ("OAuthException", 100, 2388024)
    assert (error["error_user_title"], error["error_user_msg"]) == ("Name taken", "Choose another name.")
    assert error["error_data"] == {"messaging_product": "whatsapp", "details": "A template with this name exists."}
    assert error["is_transient"] is False
    assert error["fbtrace_id"]


@pytest.mark.parametrize(("code", "transient"), [(2, True), (4, True), (100, False), (190, False), (133005, False)])
def test_is_transient_is_always_present(simulator, code, transient):
    signup, token = business_token(simulator)
    simulator.fault("waba", code)

    error = graph(simulator, "GET", signup["waba_id"], token).json()["error"]

    assert error["is_transient"] is transient
    assert error["error_data"]["details"]


def test_a_fault_may_say_a_permanent_code_is_transient(simulator):
    signup, token = business_token(simulator)
    simulator.fault("waba", 100, is_transient=True, error_data={"messaging_product": "whatsapp", "details": "x"})

    error = graph(simulator, "GET", signup["waba_id"], token).json()["error"]

    assert error["is_transient"] is True
    assert error["error_data"] == {"messaging_product": "whatsapp", "details": "x"}


# Graph API "Rate limiting": X-App-Usage (percentages) and X-Business-Use-Case-Usage, by business id, with
# estimated_time_to_regain_access in minutes.
def test_a_rate_limit_fault_says_how_long_in_the_usage_headers(simulator):
    signup, token = business_token(simulator)
    simulator.fault("waba", 80007, wait_minutes=17)

    response = graph(simulator, "GET", signup["waba_id"], token)

    assert response.json()["error"]["code"] == 80007
    usage = json.loads(response.headers["X-Business-Use-Case-Usage"])
    assert usage[signup["business_id"]][0]["estimated_time_to_regain_access"] == 17
    assert json.loads(response.headers["X-App-Usage"])["call_count"] == 100


@pytest.mark.parametrize("body", [{"is_transient": "no"}, {"error_user_msg": 3}, {"error_data": [1]},
                                  {"wait_minutes": "soon"}])
def test_a_malformed_fault_is_refused(simulator, body):
    response = requests.post(f"{simulator.url}/_meta/faults", json={"operation": "waba", **body}, timeout=5)
    assert response.status_code == 400


def test_an_unknown_object_is_a_graph_method_exception(simulator):
    _signup, token = business_token(simulator)

    error = graph(simulator, "GET", "999999999999999", token).json()["error"]

    assert error["type"] == "GraphMethodException"
    assert (error["code"], error["error_subcode"]) == (100, 33)
    assert error["message"].startswith("Unsupported get request. Object with ID '999999999999999' does not exist")
    assert error["is_transient"] is False


# WABA fields: reference/whatsapp-business-account/whatsapp-business-account-api.md; phone number fields:
# reference/whatsapp-business-phone-number/whatsapp-business-account-phone-number-api.md. Graph fails the whole
# call that asks for a field the node does not have.
@pytest.mark.parametrize(("node", "node_type"), [("waba_id", "WhatsAppBusinessAccount"),
                                                 ("phone_number_id", "WhatsAppBusinessPhoneNumber")])
def test_an_unknown_field_fails_the_whole_call(simulator, node, node_type):
    signup, token = business_token(simulator)

    response = graph(simulator, "GET", signup[node], token, fields="id,verified_nmae")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == f"(#100) Tried accessing nonexisting field (verified_nmae) on node type ({node_type})"
    assert error["code"] == 100


def test_the_fields_esu_asks_for_exist(app, simulator):
    """esu's own requests name only documented fields (the simulator would refuse a misspelt one)."""
    from esu.graph import GraphClient

    signup, token = business_token(simulator)
    api = GraphClient.from_config(app.config)
    assert api.get_waba(signup["waba_id"], token)["id"] == signup["waba_id"]
    assert api.get_phone_number(signup["phone_number_id"], token)["id"] == signup["phone_number_id"]


# reference/whatsapp-business-phone-number/whatsapp-business-account-phone-number-verification-verify-code-api.md
def test_verify_code_answers_success_and_the_number_id(simulator):
    signup, token = business_token(simulator, code_verification_status="NOT_VERIFIED")
    phone_id = signup["phone_number_id"]
    graph(simulator, "POST", f"{phone_id}/request_code", token, code_method="SMS", language="en").raise_for_status()

    response = graph(simulator, "POST", f"{phone_id}/verify_code", token, code="123456")

    assert response.json() == {"success": True, "id": phone_id}


def test_the_code_exchange_may_carry_expires_in(simulator):
    assert "expires_in" not in exchange(simulator, simulator.signup()["code"]).json()
    answer = exchange(simulator, simulator.signup(expires_in=5184000)["code"]).json()
    assert answer["expires_in"] == 5184000 and answer["token_type"] == "bearer"


def test_an_expired_number_is_already_connected_on_cloud_api(simulator):
    signup, token = business_token(simulator, code_verification_status="EXPIRED")

    phone = graph(simulator, "GET", signup["phone_number_id"], token,
                  fields="code_verification_status,status,platform_type").json()

    assert phone == {"id": signup["phone_number_id"], "code_verification_status": "EXPIRED",
                     "status": "CONNECTED", "platform_type": "CLOUD_API"}


def test_a_signup_refuses_an_unknown_code_verification_status(simulator):
    response = requests.post(f"{simulator.url}/_meta/signup", json={"code_verification_status": "MAYBE"}, timeout=5)
    assert response.status_code == 400


def test_business_verification_status_as_meta_may_spell_it(simulator):
    signup, token = business_token(simulator, business_verification_status="not_verified")
    waba = graph(simulator, "GET", signup["waba_id"], token, fields="business_verification_status").json()
    assert waba["business_verification_status"] == "not_verified"
