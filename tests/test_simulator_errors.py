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


# Edges too: reference/whatsapp-business-account/whatsapp-business-api-phone-number-management-api.md (``fields``
# of GET /{WABA-ID}/phone_numbers), templates/template-management.md (``message_templates?fields=…``),
# reference/webhooks/whatsapp-business-assigned-whatsapp-business-accounts-api.md ("Available fields: id, name").
@pytest.mark.parametrize(("edge", "node_type"), [
    ("{waba_id}/phone_numbers", "WhatsAppBusinessPhoneNumber"),
    ("{waba_id}/message_templates", "WhatsAppMessageTemplate"),
    ("{user_id}/assigned_whatsapp_business_accounts", "WhatsAppBusinessAccount"),
])
def test_an_unknown_field_fails_a_whole_edge_call(simulator, edge, node_type):
    signup, token = business_token(simulator)
    user_id = simulator.state.tokens[token].user_id
    path = edge.format(waba_id=signup["waba_id"], user_id=user_id)

    response = graph(simulator, "GET", path, token, fields="id,nmae")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        f"(#100) Tried accessing nonexisting field (nmae) on node type ({node_type})")
    assert graph(simulator, "GET", path, token, fields="id,name" if "phone" not in edge else "id,verified_name").ok


def test_an_edge_answers_the_fields_asked_for(simulator):
    signup, token = business_token(simulator)

    numbers = graph(simulator, "GET", f"{signup['waba_id']}/phone_numbers", token, fields="display_phone_number")
    templates = graph(simulator, "GET", f"{signup['waba_id']}/message_templates", token, fields="name,status")

    assert set(numbers.json()["data"][0]) == {"id", "display_phone_number"}
    assert {frozenset(item) for item in templates.json()["data"]} == {frozenset({"id", "name", "status"})}


def test_phone_numbers_without_fields_answers_each_numbers_fields(simulator):
    """The edge's reference says "If not specified, default fields will be returned" without naming them; its
    example, asked without ``fields``, shows status and code_verification_status among them."""
    signup, token = business_token(simulator)
    [number] = graph(simulator, "GET", f"{signup['waba_id']}/phone_numbers", token).json()["data"]
    assert {"id", "display_phone_number", "verified_name", "quality_rating", "status",
            "code_verification_status"} <= set(number)


def test_the_fields_esu_asks_for_exist(app, simulator):
    """esu's own requests name only documented fields (the simulator would refuse a misspelt one), on every node
    and edge esu reads."""
    from esu.graph import GraphClient

    signup, token = business_token(simulator)
    api = GraphClient.from_config(app.config)
    assert api.get_waba(signup["waba_id"], token)["id"] == signup["waba_id"]
    assert api.get_phone_number(signup["phone_number_id"], token)["id"] == signup["phone_number_id"]
    assert [number["id"] for number in api.list_phone_numbers(signup["waba_id"], token)] == [
        signup["phone_number_id"]]
    assert api.list_message_templates(signup["waba_id"], token)[0]["components"]
    user_id = simulator.state.tokens[token].user_id
    assert [waba["id"] for waba in api.assigned_wabas(user_id, token)] == [signup["waba_id"]]


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


# The simulator's own refusals carry the words Meta gives people (Graph API "Handling errors":
# error_user_title and error_user_msg, "the message to display to the user"; issue 17: Meta's envelopes carry
# them; the WhatsApp error codes page names each code).
def test_the_simulators_own_refusals_carry_words_for_people(simulator):
    signup, token = business_token(simulator, two_step_pin="246810", code_verification_status="VERIFIED")
    phone_id = signup["phone_number_id"]
    proof = hmac.new(META["META_APP_SECRET"].encode(), token.encode(), hashlib.sha256).hexdigest()

    mismatch = requests.post(f"{simulator.url}/_meta/graph/{VERSION}/{phone_id}/register",
                             params={"appsecret_proof": proof}, headers={"Authorization": f"Bearer {token}"},
                             json={"messaging_product": "whatsapp", "pin": "135790"}, timeout=5).json()["error"]
    verified = graph(simulator, "POST", f"{phone_id}/request_code", token, code_method="SMS",
                     language="en").json()["error"]

    assert mismatch["code"] == 133005 and mismatch["error_user_title"] == "Two-Step Verification PIN Mismatch"
    assert "6-digit PIN" in mismatch["error_user_msg"]
    assert verified["code"] == 136024 and verified["error_user_title"] == "Phone Number Already Verified"


def test_a_mistyped_code_and_an_unverified_number_carry_words_for_people(simulator):
    signup, token = business_token(simulator, code_verification_status="NOT_VERIFIED")
    phone_id = signup["phone_number_id"]
    graph(simulator, "POST", f"{phone_id}/request_code", token, code_method="SMS", language="en").raise_for_status()
    proof = hmac.new(META["META_APP_SECRET"].encode(), token.encode(), hashlib.sha256).hexdigest()

    unverified = requests.post(f"{simulator.url}/_meta/graph/{VERSION}/{phone_id}/register",
                               params={"appsecret_proof": proof}, headers={"Authorization": f"Bearer {token}"},
                               json={"messaging_product": "whatsapp", "pin": "135790"}, timeout=5).json()["error"]
    mistyped = graph(simulator, "POST", f"{phone_id}/verify_code", token, code="000000").json()["error"]

    assert (unverified["code"], unverified["error_subcode"]) == (100, 2388001)
    assert unverified["error_user_title"] == "Phone Number Not Verified" and unverified["error_user_msg"]
    assert mistyped["code"] == 136025 and mistyped["error_user_title"] == "Verification Code Mismatch"
    assert mistyped["error_user_msg"].endswith("Check it and try again.")


def test_a_fault_carries_only_the_words_it_was_given(simulator):
    signup, token = business_token(simulator)
    simulator.fault("waba", 133016)
    error = graph(simulator, "GET", signup["waba_id"], token).json()["error"]
    assert "error_user_title" not in error and "error_user_msg" not in error


# code_verification_status in each spelling the docs show: VERIFIED/UNVERIFIED (the phone number reference's
# values), NOT_VERIFIED (solution-providers/client-phone-numbers.md); quality_rating GREEN, YELLOW, RED, NA
# (the reference) and UNKNOWN (the phone_numbers edge's example for a pending number).
@pytest.mark.parametrize("status", ["VERIFIED", "NOT_VERIFIED", "UNVERIFIED", "EXPIRED"])
def test_each_documented_code_verification_status(simulator, status):
    signup, token = business_token(simulator, code_verification_status=status)
    phone = graph(simulator, "GET", signup["phone_number_id"], token, fields="code_verification_status").json()
    assert phone["code_verification_status"] == status


@pytest.mark.parametrize("rating", ["GREEN", "YELLOW", "RED", "NA", "UNKNOWN"])
def test_each_documented_quality_rating(simulator, rating):
    signup, token = business_token(simulator, quality_rating=rating)
    assert graph(simulator, "GET", signup["phone_number_id"], token).json()["quality_rating"] == rating


def test_an_undocumented_quality_rating_is_refused(simulator):
    response = requests.post(f"{simulator.url}/_meta/signup", json={"quality_rating": "BLUE"}, timeout=5)
    assert response.status_code == 400


def test_meta_changing_a_number_keeps_to_the_documented_quality_ratings(simulator):
    signup = simulator.signup()
    url = f"{simulator.url}/_meta/phone_numbers/{signup['phone_number_id']}"
    assert requests.post(url, json={"quality_rating": "BLUE"}, timeout=5).status_code == 400
    assert requests.post(url, json={"quality_rating": "NA"}, timeout=5).json()["phone"]["quality_rating"] == "NA"
