"""Meta's errors through the whole callback: the step keeps the whole envelope, retryable follows
``is_transient`` first and then the code table, the person reads plain words, and a number already connected
to Cloud API (code verification EXPIRED) is not sent into the code flow."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from esu.extensions import db
from esu.models import Onboarding, OnboardingStep, PhoneNumber, WhatsAppBusinessAccount
from esu.onboarding.progress import OTHER, PLAIN_WORDS, UNAVAILABLE

from ..helpers import new_ref, step

pytest_plugins = ["tests.admin_fixtures"]


def record(name: str) -> OnboardingStep:
    return db.session.scalar(sa.select(OnboardingStep).where(OnboardingStep.name == name))


def test_the_step_keeps_metas_whole_envelope_and_the_person_reads_metas_words(simulator, post_callback):
    signup = simulator.signup()
    simulator.fault("subscribed_apps", 200, error_subcode=2494049, error_user_title="No permission",
                    error_user_msg="Share the account with the app again.",
                    error_data={"messaging_product": "whatsapp", "details": "The app is not installed."})

    body = post_callback(signup).get_json()

    assert body["status"] == "failed" and body["retryable"] is False
    error = step(body, "subscribe_webhooks")["error"]
    assert (error["code"], error["error_subcode"], error["user_title"]) == (200, 2494049, "No permission")
    assert error["plain"] == "Share the account with the app again."
    assert error["is_transient"] is False
    kept = record("subscribe_webhooks")
    assert kept.error_data == {"messaging_product": "whatsapp", "details": "The app is not installed."}
    assert kept.error_transient is False
    assert kept.error_user_title == "No permission"
    assert kept.error_user_message == "Share the account with the app again."
    assert kept.fbtrace_id and kept.error_type == "OAuthException"


@pytest.mark.parametrize(("language", "plain"), [
    ("en", "Share the account with the app again."),  # Meta's words, in the English Meta wrote them in
    ("es", "Meta no nos permite hacer esto en tu cuenta. Comprueba que la compartiste con nosotros durante el "
           "registro."),
])
def test_a_person_reading_another_language_gets_our_words_for_a_code_we_know(app, language, plain):
    """Graph writes ``error_user_msg`` in "the locale of the API request"; esu's calls name none, so a Spanish
    reader gets esu's translated words for a code it knows, not Meta's English."""
    from esu import i18n
    from esu.graph import GraphError
    from esu.onboarding.progress import plain_words_of

    error = GraphError("(#200) Permissions error", operation="subscribed_apps", code=200,
                       user_message="Share the account with the app again.")
    with app.test_request_context("/"):
        i18n.use_page_language(language)
        assert plain_words_of(error) == plain


def test_metas_words_are_kept_for_a_code_we_have_none_for(app):
    from esu import i18n
    from esu.graph import GraphError
    from esu.onboarding.progress import plain_words_of

    error = GraphError("(#131009) Parameter value is not valid", operation="waba", code=131009,
                       user_message="Check the value.")
    with app.test_request_context("/"):
        i18n.use_page_language("es")
        assert plain_words_of(error) == "Check the value."


@pytest.mark.parametrize(("operation", "code", "failing"), [
    ("register", 133016, "register_phone"), ("waba", 100, "read_waba"), ("phone_number", 190, "read_phone_number"),
    ("subscribed_apps", 200, "subscribe_webhooks"), ("subscribed_apps", 10, "subscribe_webhooks"),
])
def test_a_permanent_error_is_never_offered_as_try_again(simulator, post_callback, operation, code, failing):
    signup = simulator.signup()
    simulator.fault(operation, code)

    body = post_callback(signup).get_json()

    assert body["status"] == "failed" and body["retryable"] is False
    error = step(body, failing)["error"]
    assert error["is_transient"] is False
    assert error["plain"] == PLAIN_WORDS[code]
    assert record(failing).error_transient is False


def test_meta_saying_not_transient_wins_over_the_code_table(simulator, post_callback):
    signup = simulator.signup()
    simulator.fault("waba", 2, is_transient=False)  # code 2 is transient by the table

    body = post_callback(signup).get_json()

    assert step(body, "read_waba")["attempts"] == 1
    assert body["status"] == "failed" and body["retryable"] is False
    assert step(body, "read_waba")["error"]["plain"] == OTHER


def test_meta_saying_transient_is_retried_even_for_a_permanent_code(simulator, post_callback):
    signup = simulator.signup()
    simulator.fault("waba", 100, is_transient=True)

    body = post_callback(signup).get_json()

    assert body["status"] == "completed"
    assert step(body, "read_waba")["attempts"] == 2


def test_a_transient_error_that_outlasts_the_retries_is_offered_again(simulator, post_callback):
    signup = simulator.signup()
    simulator.fault("message_templates", 131000, times=3)

    body = post_callback(signup).get_json()

    assert body["status"] == "failed" and body["retryable"] is True
    error = step(body, "fetch_templates")["error"]
    assert error["is_transient"] is True and error["plain"] == UNAVAILABLE
    assert record("fetch_templates").error_transient is True


def test_the_admin_reads_everything_and_may_still_retry_a_permanent_error(simulator, post_callback, admin):
    signup = simulator.signup()
    simulator.fault("register", 200, error_data={"messaging_product": "whatsapp", "details": "no messaging permission"})
    body = post_callback(signup).get_json()
    assert body["retryable"] is False

    html = admin.get(f"/admin/onboardings/{body['id']}").get_data(as_text=True)

    for expected in ("200", "no messaging permission", "no: retrying will not help", "Retry failed steps",
                     step(body, "register_phone")["error"]["fbtrace_id"]):
        assert expected in html, expected


def test_a_number_already_connected_with_an_expired_code_is_not_asked_for_a_code(simulator, post_callback):
    signup = simulator.signup(code_verification_status="EXPIRED")

    body = post_callback(signup, client_ref=new_ref()).get_json()

    assert body["status"] == "completed", body
    register = step(body, "register_phone")
    assert register["status"] == "skipped"
    assert "already connected to Cloud API" in register["detail"] and "EXPIRED" in register["detail"]
    assert simulator.calls("register") == [] and simulator.calls("request_code") == []
    phone = db.session.get(PhoneNumber, signup["phone_number_id"])
    assert (phone.code_verification_status, phone.status, phone.platform_type) == ("EXPIRED", "CONNECTED",
                                                                                   "CLOUD_API")
    assert phone.pin is None and phone.registration_attempts == 0


def test_a_number_not_verified_still_waits_for_the_code(simulator, post_callback):
    signup = simulator.signup(code_verification_status="NOT_VERIFIED")

    body = post_callback(signup).get_json()

    assert body["status"] == "awaiting_verification"
    assert step(body, "register_phone")["status"] == "waiting"


def test_business_verification_status_in_lower_case_is_kept_in_one_spelling(simulator, post_callback):
    signup = simulator.signup(business_verification_status="not_verified")

    body = post_callback(signup).get_json()

    assert body["status"] == "completed"
    assert db.session.get(WhatsAppBusinessAccount, signup["waba_id"]).business_verification_status == "NOT_VERIFIED"


def test_the_exchange_may_say_when_the_token_expires(simulator, post_callback):
    body = post_callback(simulator.signup(expires_in=5184000)).get_json()

    onboarding = db.session.get(Onboarding, body["id"])
    assert onboarding.token_expires_at is not None
    assert step(body, "exchange_code")["status"] == "ok"
