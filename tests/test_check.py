"""``flask --app wsgi check``: passes a sound production configuration, names every problem otherwise,
and never prints a secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from esu import create_app
from esu.check import META_WEBHOOK_FIELDS
from esu.extensions import db
from esu.models import PhoneNumber

from .conftest import APP_SECRET, META, SYSTEM_USER_TOKEN

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_URL = "https://signup.agency.example"


@pytest.fixture
def production(app_config):
    """A sound production configuration behind one TLS proxy; ask for it before ``runner`` or ``app``."""
    app_config.update(
        ESU_ENV="production",
        ESU_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ESU_PUBLIC_URL=PUBLIC_URL + "/",
        ESU_PROXY_HOPS="1",
        ESU_TRUSTED_HOSTS="signup.agency.example",
    )
    return app_config


def check(runner):
    result = runner.invoke(args=["check"])
    secrets = [APP_SECRET, SYSTEM_USER_TOKEN, META["META_WEBHOOK_VERIFY_TOKEN"], runner.app.config["SECRET_KEY"],
               *(key.decode() for key in runner.app.config["ESU_ENCRYPTION_KEY_LIST"])]
    leaked = [secret for secret in secrets if secret in result.output]
    assert not leaked, "check printed a secret"
    return result


def check_with(config: dict):
    """Run check in an app of its own with ``config``."""
    app = create_app(config)
    with app.app_context():
        result = check(app.test_cli_runner())
        db.session.remove()
        db.engine.dispose()
    return result


def failures(result) -> list[str]:
    return [line[6:] for line in result.output.splitlines() if line.startswith("FAIL  ")]


def test_sound_production_configuration_passes(production, runner):
    result = check(runner)
    assert failures(result) == []
    assert result.exit_code == 0, result.output
    assert "Ready for production." in result.output
    assert "ok    migrations current" in result.output
    # What to type into Meta's dashboard.
    assert "Allowed domains for the JavaScript SDK: signup.agency.example" in result.output
    assert f"Callback URL: {PUBLIC_URL}/webhooks/whatsapp" in result.output
    assert "Verify token: the value set in META_WEBHOOK_VERIFY_TOKEN (not printed)" in result.output
    fields = next(line for line in result.output.splitlines() if "Webhook fields to subscribe:" in line)
    assert fields.split(": ", 1)[1].split(", ") == list(META_WEBHOOK_FIELDS)
    assert f"App ID: {META['META_APP_ID']}" in result.output


def test_development_configuration_fails_with_each_problem_named(runner):
    result = check(runner)
    assert result.exit_code == 1
    problems = failures(result)
    assert any(problem.startswith("ESU_ENV is 'development'") for problem in problems)
    assert any(problem.startswith("ESU_PUBLIC_URL is not set") for problem in problems)
    assert any(problem.startswith("HTTPS is not required") for problem in problems)
    assert any(problem.startswith("the session cookie is not Secure") for problem in problems)
    assert f"{len(problems)} problem(s): esu is not ready for production." in result.output


@pytest.mark.parametrize(
    ("setting", "value", "problem"),
    [
        ("ESU_PUBLIC_URL", "http://signup.agency.example", "ESU_PUBLIC_URL must be an https:// address"),
        ("ESU_TRUSTED_HOSTS", "other.example", "ESU_TRUSTED_HOSTS does not include signup.agency.example"),
        ("SECRET_KEY", APP_SECRET, "SECRET_KEY has the same value as META_APP_SECRET"),
    ],
)
def test_each_unsafe_setting_is_a_problem(production, setting, value, problem):
    result = check_with({**production, setting: value})
    assert result.exit_code == 1
    assert [line for line in failures(result) if line.startswith(problem)], result.output


def test_schema_behind_is_a_problem(production, fresh_database, simulator):
    result = check_with({**production, "SQLALCHEMY_DATABASE_URI": fresh_database()})
    assert result.exit_code == 1
    assert any("run `flask --app wsgi db upgrade`" in line for line in failures(result))


def test_unreachable_database_is_a_problem(production, simulator):
    url = "postgresql+psycopg://esu:db-password-42@127.0.0.1:1/esu"
    result = check_with({**production, "SQLALCHEMY_DATABASE_URI": url})
    assert result.exit_code == 1
    assert any(line.startswith("the postgresql database esu on 127.0.0.1 is unreachable") for line in failures(result))
    assert "db-password-42" not in result.output


def test_stored_secrets_under_a_missing_key_are_a_problem(production, app):
    """A key dropped from ESU_ENCRYPTION_KEYS before `keys rotate` leaves tokens no one can read."""
    db.session.add(PhoneNumber(id="15550001111", pin="123456", registration_attempts=0))
    db.session.commit()
    result = check_with({**production, "ESU_ENCRYPTION_KEYS": Fernet.generate_key().decode()})
    assert result.exit_code == 1
    assert "1 of 1 stored secret(s) do not decrypt with ESU_ENCRYPTION_KEYS" in " ".join(failures(result))
    # With the key back, second in line as during a rotation, they do.
    both = f"{Fernet.generate_key().decode()},{production['ESU_ENCRYPTION_KEYS']}"
    result = check_with({**production, "ESU_ENCRYPTION_KEYS": both})
    assert result.exit_code == 0, result.output
    assert "ok    1 stored secret(s) decrypt with ESU_ENCRYPTION_KEYS" in result.output
    assert "note  ESU_ENCRYPTION_KEYS lists old keys" in result.output


def test_missing_secrets_stop_the_command_with_their_list_and_no_traceback(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "ESU_ENV": "production",
           "META_APP_SECRET": "changeme", "SECRET_KEY": "x" * 40}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "Error: esu will not start in production with missing: ESU_ENCRYPTION_KEYS, META_APP_ID, META_CONFIG_ID, "
        "META_WEBHOOK_VERIFY_TOKEN; placeholder values: META_APP_SECRET."
    )
