"""Tokens and PINs: encrypted at rest, absent from logs and answers, and the keys can be rotated."""

from __future__ import annotations

import logging
import re
import socket

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from esu import create_app
from esu.crypto import DecryptionError
from esu.extensions import db
from esu.graph import appsecret_proof
from esu.models import Onboarding, PhoneNumber

from .conftest import APP_SECRET, CREDIT_LINE_ID, SYSTEM_USER_TOKEN
from .helpers import database_text, new_ref

# A plaintext Meta token starts with "EAA". Ciphertexts and random ids are base64 and may hold those three
# letters by chance, so look for them only where a value can begin (not right after another base64 letter).
EAA_AT_THE_START_OF_A_VALUE = re.compile(r"(?<![A-Za-z0-9_-])EAA")


def pin_pattern(pin: str) -> re.Pattern:
    """The PIN as a value of its own; not six digits inside a longer number or a timestamp's fraction."""
    return re.compile(rf"(?<![\d.]){pin}(?!\d)")


@pytest.fixture
def app_config(app_config):
    app_config["META_CREDIT_LINE_ID"] = CREDIT_LINE_ID
    return app_config


def onboard_two_customers(simulator, post_callback, client, csrf_token) -> list:
    """One Solution Partner onboarding that completes, one whose template fetch fails; their answers."""
    first = simulator.signup(business_name="Done Co")
    done = post_callback(first, client_ref=new_ref())
    simulator.fault("message_templates", 200, times=1)
    ref = new_ref()
    failed = post_callback(simulator.signup(business_name="Failed Co"), client_ref=ref)
    assert [done.get_json()["status"], failed.get_json()["status"]] == ["completed", "failed"]
    progress = client.get(f"/signup/demo/onboardings/{ref}")
    again = post_callback(first)
    assert again.status_code == 409
    return [done, failed, progress, again]


def secrets_of(simulator) -> dict[str, str]:
    tokens = list(simulator.state.tokens)
    assert tokens, "no business token was issued"
    found = {f"business token {n}": token for n, token in enumerate(tokens)}
    found |= {f"appsecret_proof {n}": appsecret_proof(token, APP_SECRET) for n, token in enumerate(tokens)}
    found |= {f"signup code {n}": code for n, code in enumerate(simulator.state.codes)}
    found |= {"app secret": APP_SECRET, "system user token": SYSTEM_USER_TOKEN,
              "system user appsecret_proof": appsecret_proof(SYSTEM_USER_TOKEN, APP_SECRET)}
    return found


def pins_of(simulator) -> list[str]:
    pins = [phone.pin for phone in simulator.state.phones.values() if phone.pin]
    assert pins, "no number was registered"
    return pins


def test_the_database_holds_no_plaintext_token_or_pin(app, simulator, post_callback, client, csrf_token):
    onboard_two_customers(simulator, post_callback, client, csrf_token)
    db.session.remove()

    dump = database_text(db.engine)

    assert simulator.state.phones and all(phone_id in dump for phone_id in simulator.state.phones)  # rows are there
    for phone_id in simulator.state.phones:
        assert db.session.get(PhoneNumber, phone_id).pin == simulator.state.phones[phone_id].pin  # and readable
    for token in simulator.state.tokens:
        assert token not in dump
    assert not EAA_AT_THE_START_OF_A_VALUE.search(dump)
    for pin in pins_of(simulator):
        assert not pin_pattern(pin).search(dump)


def test_logs_and_answers_carry_no_token_or_secret(app, app_config, simulator, post_callback, client, csrf_token,
                                                    caplog):
    caplog.set_level(logging.DEBUG)
    answers = onboard_two_customers(simulator, post_callback, client, csrf_token)
    # Transient errors, then a network failure on a port where nobody listens.
    simulator.fault("waba", 2, times=5)
    answers.append(post_callback(simulator.signup(), client_ref=new_ref()))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{probe.getsockname()[1]}"
    offline = create_app({**app_config, "META_GRAPH_URL": nowhere})
    with offline.test_client() as browser:
        token = browser.get("/signup/demo/session").get_json()["csrf_token"]
        body = {"code": simulator.signup()["code"], "client_ref": new_ref()}
        lost = browser.post("/signup/demo/callback", json=body, headers={"X-CSRFToken": token})
    assert lost.get_json()["steps"][0]["detail"] == "network error talking to Graph (ConnectionError)"
    answers.append(lost)
    with offline.app_context():
        db.engine.dispose()

    secrets = secrets_of(simulator) | {"SECRET_KEY": app.config["SECRET_KEY"],
                                       "encryption key": app.config["ESU_ENCRYPTION_KEYS"]}
    # The standalone simulator's own access log (Meta's side of the wire) is not ours to judge.
    ours = [record for record in caplog.records
            if not (record.name == "werkzeug" and "/_meta/graph/" in record.getMessage())]
    assert any(record.name == "urllib3.connectionpool" for record in ours), "DEBUG logging was not captured"
    logged = "\n".join(record.getMessage() + "\n" + (record.exc_text or "") for record in ours)
    assert "client_secret=[redacted]" in logged and "input_token=[redacted]" in logged  # logged, but hidden
    answered = "\n".join(answer.get_data(as_text=True) for answer in answers)
    for name, value in secrets.items():
        assert value not in logged, f"the logs show the {name}"
        assert value not in answered, f"an answer shows the {name}"
    for pin in pins_of(simulator):
        assert not pin_pattern(pin).search(logged) and not pin_pattern(pin).search(answered)
    assert not EAA_AT_THE_START_OF_A_VALUE.search(logged + answered)


# -- key rotation -------------------------------------------------------------------------------------


KEY_A, KEY_B, KEY_C = (Fernet.generate_key().decode() for _ in range(3))


@pytest.fixture
def keyed(app_config):
    """Apps on the same database with other ESU_ENCRYPTION_KEYS, as after a redeploy."""
    made = []

    def make(keys: str):
        made.append(create_app({**app_config, "ESU_ENCRYPTION_KEYS": keys}))
        return made[-1]

    yield make
    for other in made:
        with other.app_context():
            db.engine.dispose()


def stored_ciphertexts() -> list[str]:
    """The token and PIN columns as stored, without decrypting them."""
    with db.engine.connect() as connection:
        tokens = connection.execute(sa.text("SELECT business_token FROM onboardings")).scalars().all()
        pins = connection.execute(sa.text("SELECT pin FROM phone_numbers")).scalars().all()
    return [value for value in tokens + pins if value]


def read_secrets(signup) -> tuple[str, str]:
    onboarding = db.session.scalar(sa.select(Onboarding).where(Onboarding.waba_id == signup["waba_id"]))
    return onboarding.business_token, db.session.get(PhoneNumber, signup["phone_number_id"]).pin


def test_keys_can_be_rotated(app_config, simulator, request, keyed):
    app_config["ESU_ENCRYPTION_KEYS"] = KEY_A
    post_callback = request.getfixturevalue("post_callback")
    signup = simulator.signup()
    assert post_callback(signup).get_json()["status"] == "completed"
    token, pin = read_secrets(signup)
    assert token in simulator.state.tokens and pin == simulator.state.phones[signup["phone_number_id"]].pin
    under_a = stored_ciphertexts()
    assert len(under_a) == 2 and all(Fernet(KEY_A).decrypt(value.encode()) for value in under_a)

    # B first, A kept: everything still reads, and `keys rotate` moves it all to B (twice does no harm).
    both = keyed(f"{KEY_B},{KEY_A}")
    with both.app_context():
        assert read_secrets(signup) == (token, pin)
        first = both.test_cli_runner().invoke(args=["keys", "rotate"])
        again = both.test_cli_runner().invoke(args=["keys", "rotate"])
        assert first.exit_code == 0 and "Re-encrypted 2 stored secret(s)" in first.output
        assert again.exit_code == 0
        under_b = stored_ciphertexts()
        db.session.remove()
    assert all(Fernet(KEY_B).decrypt(value.encode()) for value in under_b)

    with keyed(KEY_B).app_context():
        assert read_secrets(signup) == (token, pin)
        db.session.remove()

    with keyed(KEY_C).app_context(), pytest.raises(DecryptionError) as unreadable:
        read_secrets(signup)
    assert "cannot be decrypted with ESU_ENCRYPTION_KEYS" in str(unreadable.value)
    assert KEY_C not in str(unreadable.value) and KEY_B not in str(unreadable.value)


def test_rotation_reports_what_no_key_opens_and_leaves_it_alone(app_config, simulator, request, keyed):
    app_config["ESU_ENCRYPTION_KEYS"] = KEY_A
    signup = simulator.signup()
    request.getfixturevalue("post_callback")(signup)
    before = stored_ciphertexts()

    stranger = keyed(KEY_C)
    with stranger.app_context():
        result = stranger.test_cli_runner().invoke(args=["keys", "rotate"])
        after = stored_ciphertexts()
        db.session.remove()

    assert result.exit_code == 1
    assert "Re-encrypted 0 stored secret(s)" in result.output
    assert "2 stored secret(s) cannot be decrypted with any key of ESU_ENCRYPTION_KEYS" in result.output
    assert f"phone_numbers.pin of id {signup['phone_number_id']}" in result.output
    assert "Traceback" not in result.output
    assert sorted(after) == sorted(before)
    assert read_secrets(signup)[1] == simulator.state.phones[signup["phone_number_id"]].pin
