"""``POST /_meta/signup`` answers as Meta's dialog ends: ``{code, event, data}``, ``data`` exactly as Meta's
``WA_EMBEDDED_SIGNUP`` message carries it (embedded-signup/implementation.md, "Successful flow completion
structure"; app-only-install.md for FINISH_GRANT_ONLY_API_ACCESS), and its dialog offers the same choices."""

from __future__ import annotations

import pytest
import requests


def sign_up(simulator, **options) -> requests.Response:
    return requests.post(f"{simulator.url}/_meta/signup", json=options, timeout=5)


def test_a_finish_answers_code_event_and_metas_data_with_the_old_ids_beside(simulator):
    signup = sign_up(simulator).json()
    assert signup["event"] == "FINISH" and signup["code"].startswith("AQ")
    data = signup["data"]
    assert set(data) == {"phone_number_id", "waba_id", "business_id"}
    assert (signup["waba_id"], signup["phone_number_id"], signup["business_id"]) == (
        data["waba_id"], data["phone_number_id"], data["business_id"])
    assert simulator.state.phones[data["phone_number_id"]].waba_id == data["waba_id"]


@pytest.mark.parametrize(("finish", "keys"), [
    # implementation.md, "Successful flow completion structure"
    ("FINISH", {"phone_number_id", "waba_id", "business_id"}),
    ("FINISH_OBO_MIGRATION", {"phone_number_id", "waba_id", "business_id"}),
    # app-only-install.md
    ("FINISH_GRANT_ONLY_API_ACCESS", {"phone_number_id", "waba_id", "business_id"}),
    # onboard-whatsapp-business-app-users.md, "Onboarding business customers": the WABA alone
    ("FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING", {"waba_id"}),
    # bypassing-the-phone-number-addition-screen.md: the number and the WABA, no business
    ("FINISH_ONLY_WABA", {"phone_number_id", "waba_id"}),
])
def test_each_finish_event_carries_what_its_page_shows(simulator, finish, keys):
    signup = sign_up(simulator, finish=finish).json()
    assert signup["event"] == finish
    assert set(signup["data"]) == keys
    assert signup["data"]["waba_id"] == signup["waba_id"]


def test_a_finish_only_waba_without_a_number_names_none(simulator):
    """bypassing-the-phone-number-addition-screen.md shows ``phone_number_id`` in FINISH_ONLY_WABA's data; the
    person added no number, so it names none."""
    signup = sign_up(simulator, finish="FINISH_ONLY_WABA").json()
    assert signup["data"] == {"phone_number_id": "", "waba_id": signup["waba_id"]}
    assert not simulator.state.listed("phone", signup["waba_id"])


def test_no_number_leaves_it_out_of_the_message(simulator):
    """versions.md: since v3 a person may finish with no phone number."""
    signup = sign_up(simulator, phone=False, finish="FINISH").json()
    assert signup["event"] == "FINISH" and "phone_number_id" not in signup["data"]
    assert signup["phone_number_id"] == ""
    assert sign_up(simulator, phone=False).json()["event"] == "FINISH_ONLY_WABA"  # as before: no number, no finish


def test_several_wabas_and_the_assets_picked(simulator):
    signup = sign_up(simulator, wabas=3, assets=["pages", "catalogs"]).json()
    data = signup["data"]
    assert set(data) == {"phone_number_id", "waba_id", "business_id", "page_ids", "catalog_ids", "waba_ids"}
    assert len(data["waba_ids"]) == 3 and data["waba_ids"][0] == data["waba_id"]
    assert all(simulator.state.wabas[waba_id].business_id == data["business_id"] for waba_id in data["waba_ids"])
    assert all(isinstance(ids, list) and ids[0].isdigit() for ids in (data["page_ids"], data["catalog_ids"]))
    assert "waba_ids" not in sign_up(simulator).json()["data"]  # only in multi-WABA flows


@pytest.mark.parametrize("options", [{"finish": "DONE"}, {"wabas": 0}, {"wabas": 11}, {"wabas": "2"},
                                     {"assets": ["friends"]}, {"assets": "pages"}, {"phone": "no"}])
def test_bad_options_are_a_400(simulator, options):
    response = sign_up(simulator, **options)
    assert response.status_code == 400 and response.json()["error"]


def test_the_dialog_offers_the_same_choices(simulator):
    html = requests.get(f"{simulator.url}/_meta/dialog/oauth", params={"origin": "http://127.0.0.1:5000"},
                        timeout=5).text
    for finish in ("FINISH", "FINISH_ONLY_WABA", "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING", "FINISH_OBO_MIGRATION",
                   "FINISH_GRANT_ONLY_API_ACCESS"):
        assert f'<option value="{finish}">' in html
    assert 'name="wabas"' in html and 'name="no_phone"' in html
    for asset in ("ad_accounts", "pages", "datasets", "catalogs", "instagram_accounts"):
        assert f'name="asset" value="{asset}"' in html
    assert 'name="two_step_pin"' in html and 'name="currency"' in html  # the options two_step_pin, currency
    assert 'name="as_event" value="ERROR"' in html  # implementation.md: the ERROR event


@pytest.mark.parametrize(("extras", "version"), [
    # Pages whose flows launch with sessionInfoVersion '3' show their messages with version: 3
    # (onboard-whatsapp-business-app-users.md, bypassing-the-phone-number-addition-screen.md,
    # embedded-signup-flow-errors.md)
    ('{"sessionInfoVersion": "3"}', 'data-session-info-version="3"'),
    # implementation.md's messages of a v4 flow (extras empty, versions.md) carry none
    ("{}", None),
])
def test_the_session_messages_version_follows_the_launch(simulator, extras, version):
    html = requests.get(f"{simulator.url}/_meta/dialog/oauth", params={"origin": "http://127.0.0.1:5000",
                                                                       "extras": extras}, timeout=5).text
    if version:
        assert version in html
    else:
        assert "data-session-info-version" not in html
