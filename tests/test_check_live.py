"""``flask --app wsgi check --live``: asks Graph (here the simulator) about the agency's own Meta app, prints a
line for each finding with what to change, exits 1 when anything is wrong, and the dashboard shows the last run.

What the simulator answers follows Meta's reference:
- ``GET /{app-id}/subscriptions``: https://developers.facebook.com/docs/graph-api/reference/app/subscriptions/
  and https://developers.facebook.com/docs/graph-api/webhooks/subscriptions-edge (``object``, ``callback_url``,
  ``active``, ``fields`` of ``{name, version}``; app access token);
- ``debug_token``: https://developers.facebook.com/docs/graph-api/reference/debug_token and
  https://developers.facebook.com/docs/facebook-login/access-tokens/debugging-and-error-handling (an expired token:
  ``is_valid`` false, error 190 subcode 463);
- the credit line: https://developers.facebook.com/docs/marketing-api/reference/extended-credit, fields from
  ../shared/meta-docs/reference/whatsapp-business-account/whatsapp-cloud-api-extended-credits-api.md (currency in
  ``balance``), read with the system user token (../shared/meta-docs/solution-providers/managing-credit-lines.md);
- the coexistence fields: ../shared/meta-docs/embedded-signup/onboard-whatsapp-business-app-users.md, "Step 1";
- Graph versions and their end dates: https://developers.facebook.com/docs/graph-api/changelog/versions/.
"""

from __future__ import annotations

import re
import time
from datetime import date
from pathlib import Path

import pytest
import requests

from esu.check import COEXISTENCE_WEBHOOK_FIELDS, META_WEBHOOK_FIELDS
from esu.cli import create_page
from esu.config import SIMULATED_CREDIT_LINE_ID
from esu.live_check import FAIL, NOTE, OK, check_graph_version, last

from .conftest import APP_SECRET, META, SYSTEM_USER_TOKEN
from .test_check import PUBLIC_URL, production  # noqa: F401  (the sound production configuration)

pytest_plugins = ["tests.admin_fixtures"]  # the admin fixtures: admin, stored_admin…

ROOT = Path(__file__).resolve().parents[1]
CALLBACK_URL = PUBLIC_URL + "/webhooks/whatsapp"


def configure_meta_app(simulator, **settings) -> None:
    """Set the Meta app's settings in the simulator, as a person would in the App Dashboard."""
    response = requests.post(f"{simulator.url}/_meta/app", json=settings, timeout=5)
    assert response.status_code == 200, response.text


def sound_meta_app(simulator) -> None:
    configure_meta_app(
        simulator, subscription={"callback_url": CALLBACK_URL, "active": True, "fields": list(META_WEBHOOK_FIELDS)}
    )


@pytest.fixture
def solution_partner(production):  # noqa: F811
    """Production settings of a Solution Partner sharing the simulator's credit line."""
    production["META_CREDIT_LINE_ID"] = SIMULATED_CREDIT_LINE_ID
    return production


def check_live(runner):
    result = runner.invoke(args=["check", "--live"])
    assert APP_SECRET not in result.output and SYSTEM_USER_TOKEN not in result.output, "check printed a secret"
    section = result.output.split("The Meta app, asked live:", 1)
    assert len(section) == 2, result.output
    live = [line for line in section[1].splitlines() if re.match(r"^(ok|note|FAIL) ", line)]
    return result, live


def failures(lines: list[str]) -> list[str]:
    return [line[6:] for line in lines if line.startswith("FAIL  ")]


def test_a_sound_meta_app_passes_and_each_thing_checked_says_so(solution_partner, simulator, runner):
    sound_meta_app(simulator)

    result, live = check_live(runner)

    assert result.exit_code == 0, result.output
    assert failures(live) == []
    assert (
        f"ok    webhook subscription: {CALLBACK_URL}, active, the {len(META_WEBHOOK_FIELDS)} fields esu needs "
        "subscribed" in live
    )
    assert (
        "ok    system user token: valid, never expires, with business_management, whatsapp_business_management, "
        "whatsapp_business_messaging"
    ) in live
    assert f"ok    credit line {SIMULATED_CREDIT_LINE_ID} (Simulated Agency LLC): readable, currency USD" in live
    assert "ok    Graph API v25.0: available until 2028-07-29" in live
    assert "Ready for production." in result.output
    # What Graph was asked, with which token.
    asked = {call["operation"]: call["auth"] for call in simulator.calls()}
    assert asked == {"app_subscriptions": "app", "debug_token": "app", "credit_line": "system_user"}


@pytest.mark.parametrize(
    ("settings", "config", "expected"),
    [
        pytest.param(
            {"subscription": {"callback_url": "https://old.agency.example/webhooks/whatsapp"}},
            {},
            [
                (
                    "the webhook callback URL is https://old.agency.example/webhooks/whatsapp: set it to "
                    f"{CALLBACK_URL} in App Dashboard → WhatsApp → Configuration"
                )
            ],
            id="wrong callback URL",
        ),
        pytest.param(
            {"subscription": {"active": False}},
            {},
            [
                (
                    "the webhook subscription is not active: Meta sends nothing. In App Dashboard → WhatsApp → "
                    "Configuration, verify and save the callback URL again"
                )
            ],
            id="inactive",
        ),
        pytest.param(
            {"subscription": {"fields": [f for f in META_WEBHOOK_FIELDS if f != "account_update"]}},
            {},
            [
                (
                    "webhook fields not subscribed: account_update: subscribe them in App Dashboard → WhatsApp → "
                    "Configuration → Webhook fields"
                )
            ],
            id="missing field",
        ),
        pytest.param(
            {"subscription": None},
            {},
            [
                (
                    "the app has no webhook subscription for whatsapp_business_account: in App Dashboard → "
                    f"WhatsApp → Configuration, set the callback URL {CALLBACK_URL}"
                )
            ],
            id="no subscription",
        ),
        pytest.param(
            {"system_user_token": {"expires_at": int(time.time()) - 3600}},
            {},
            [
                "the system user token is not valid (Meta: Error validating access token: Session has expired",
                # Every call made with it fails too.
                (
                    f"the credit line {SIMULATED_CREDIT_LINE_ID} cannot be read with the system user token "
                    "(Meta: Error validating access token: Session has expired"
                ),
            ],
            id="token expired",
        ),
        pytest.param(
            {"system_user_token": {"scopes": ["business_management", "whatsapp_business_management"]}},
            {},
            [
                (
                    "the system user token lacks the permission(s) whatsapp_business_messaging: generate a new one "
                    "(Business Settings → Users → System users → Generate new token"
                )
            ],
            id="token missing scope",
        ),
        pytest.param(
            {"credit_line": {"readable": False}},
            {},
            [
                (
                    f"the credit line {SIMULATED_CREDIT_LINE_ID} cannot be read with the system user token (Meta: "
                    "Unsupported get request. Object with ID"
                )
            ],
            id="credit line unreadable",
        ),
        pytest.param(
            {},
            {"META_CREDIT_LINE_ID": "1999999999999999"},
            [
                (
                    "the credit line 1999999999999999 cannot be read with the system user token (Meta: "
                    "Unsupported get request. Object with ID '1999999999999999' does not exist"
                )
            ],
            id="wrong credit line id",
        ),
        pytest.param(
            {},
            {"META_GRAPH_VERSION": "v20.0"},
            [
                (
                    "Graph API v20.0 was available until 2026-09-24: Meta now answers its calls as the oldest "
                    "version it still serves; set META_GRAPH_VERSION=v25.0"
                )
            ],
            id="old version",
        ),
    ],
)
def test_each_misconfiguration_fails_with_what_to_change(
    solution_partner, simulator, settings, config, expected, request
):
    sound_meta_app(simulator)
    configure_meta_app(simulator, **settings)
    solution_partner.update(config)
    result, live = check_live(request.getfixturevalue("runner"))
    stored = last()
    assert result.exit_code == 1, result.output
    found = failures(live)
    assert len(found) == len(expected), live
    for line, start in zip(found, expected, strict=True):
        assert line.startswith(start), (line, start)
    assert f"{len(expected)} problem(s): esu is not ready for production." in result.output
    assert [finding["text"] for finding in stored.findings if finding["level"] == FAIL] == found


def test_coexistence_pages_need_the_coexistence_fields(production, simulator, runner):  # noqa: F811
    sound_meta_app(simulator)
    _, live = check_live(runner)
    assert failures(live) == [], "without a coexistence page, the base fields are enough"

    create_page("biz-app", "Bring your WhatsApp Business app number", feature_type="whatsapp_business_app_onboarding")
    result, live = check_live(runner)
    assert result.exit_code == 1
    assert failures(live) == [
        (
            f"webhook fields not subscribed: {', '.join(COEXISTENCE_WEBHOOK_FIELDS)}: subscribe them in App Dashboard → "
            "WhatsApp → Configuration → Webhook fields (the last ones because a signup page onboards WhatsApp Business "
            "app numbers)"
        )
    ]

    configure_meta_app(simulator, subscription={"fields": [*META_WEBHOOK_FIELDS, *COEXISTENCE_WEBHOOK_FIELDS]})
    result, live = check_live(runner)
    assert result.exit_code == 0, result.output


def test_a_token_expiring_soon_is_said_ahead_without_failing(production, simulator, runner):  # noqa: F811
    sound_meta_app(simulator)
    configure_meta_app(simulator, system_user_token={"expires_at": int(time.time()) + 5 * 86400})
    result, live = check_live(runner)
    assert result.exit_code == 0, result.output
    assert [line for line in live if line.startswith("note  the system user token expires ")], live


@pytest.mark.parametrize(
    ("version", "today", "level", "text"),
    [
        ("v25.0", date(2026, 12, 7), OK, "Graph API v25.0: available until 2028-07-29"),
        (
            "v25.0",
            date(2028, 7, 10),
            NOTE,
            (
                "Graph API v25.0 is available until 2028-07-29: move to a newer "
                "version once esu works with it (the newest is v26.0"
            ),
        ),
        (
            "v24.0",
            date(2028, 2, 1),
            NOTE,
            (
                "Graph API v24.0 is available until 2028-02-18: set "
                "META_GRAPH_VERSION=v25.0, the version esu is tested with, before then"
            ),
        ),
        ("v21.0", date(2027, 1, 21), FAIL, "Graph API v21.0 was available until 2027-01-21"),
        ("v26.0", date(2026, 12, 7), OK, "Graph API v26.0: no end date announced yet"),
        ("v27.0", date(2027, 3, 1), NOTE, "Graph API v27.0 is newer than esu's table of Meta's versions"),
        ("v12.0", date(2026, 12, 7), FAIL, "Graph API v12.0 is not a version Meta still serves"),
        ("25.0", date(2026, 12, 7), FAIL, "Graph API 25.0 is not a version Meta still serves"),
    ],
)
def test_graph_version_against_metas_dates(version, today, level, text):
    [finding] = check_graph_version(version, today)
    assert finding.level == level
    assert finding.text.startswith(text), finding.text


@pytest.fixture
def public_url(app_config):
    """The address Meta reaches esu at, in the development settings; ask for it before ``app``."""
    app_config["ESU_PUBLIC_URL"] = PUBLIC_URL


def test_the_dashboard_shows_the_last_live_check(public_url, admin, app, simulator):
    html = admin.get("/admin/").get_data(as_text=True)
    assert "Not checked yet: run <code>flask --app wsgi check --live</code>." in html

    sound_meta_app(simulator)
    configure_meta_app(simulator, subscription={"active": False})
    app.test_cli_runner().invoke(args=["check", "--live"])

    html = admin.get("/admin/").get_data(as_text=True)
    card = re.search(r'<section class="card live-check[^"]*".*?</section>', html, re.DOTALL).group(0)
    assert "<strong>1 problem</strong>" in card
    assert "<strong>Fix:</strong> the webhook subscription is not active" in card
    assert "system user token: valid, never expires" in card
    assert "<time datetime=" in card

    configure_meta_app(simulator, subscription={"active": True})
    app.test_cli_runner().invoke(args=["check", "--live"])
    card = re.search(
        r'<section class="card live-check[^"]*".*?</section>', admin.get("/admin/").get_data(as_text=True), re.DOTALL
    ).group(0)
    assert "all clear" in card and "not active" not in card


def test_the_deploy_guide_lists_the_webhook_fields_the_code_checks():
    guide = (ROOT / "docs" / "deploy.md").read_text()
    section = guide.split("## 6. The Meta app", 1)[1].split("\n## ", 1)[0]
    listed = re.search(r"subscribe to the fields (.*?)\. ", section.replace("\n", " "), re.DOTALL).group(1)
    assert re.findall(r"`(\w+)`", listed) == list(META_WEBHOOK_FIELDS)
    coexistence = re.search(r"also subscribe (.*?)\.", section.replace("\n", " ")).group(1)
    assert re.findall(r"`(\w+)`", coexistence) == list(COEXISTENCE_WEBHOOK_FIELDS)


def test_the_simulator_answers_subscriptions_only_to_the_app_token(simulator):
    """The reference: "An app access token is required to return subscriptions for that app"."""
    sound_meta_app(simulator)
    url = f"{simulator.url}/_meta/graph/v25.0/{META['META_APP_ID']}/subscriptions"
    answer = requests.get(url, headers={"Authorization": f"Bearer {META['META_APP_ID']}|{APP_SECRET}"}, timeout=5)
    assert answer.status_code == 200
    [subscription] = answer.json()["data"]
    assert subscription["object"] == "whatsapp_business_account"
    assert subscription["fields"][0] == {"name": META_WEBHOOK_FIELDS[0], "version": "v25.0"}
    refused = requests.get(url, headers={"Authorization": f"Bearer {SYSTEM_USER_TOKEN}"}, timeout=5)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == 15


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"subscription": {"active": "yes"}}, "subscription.active must be true or false"),
        ({"subscription": {"fields": "messages"}}, "subscription.fields must be a list of field names"),
        ({"system_user_token": {"expires_at": "tomorrow"}}, "system_user_token.expires_at must be a unix time"),
        ({"credit_line": {"currency": "XYZ"}}, "credit_line.currency must be one of AUD, EUR, GBP, IDR, INR, USD"),
        ({"credit_line": []}, "credit_line must be an object"),
    ],
)
def test_the_simulators_app_settings_refuse_bad_input_in_plain_words(simulator, settings, words):
    answer = requests.post(f"{simulator.url}/_meta/app", json=settings, timeout=5)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(words)
