"""Log lines: JSON, each with the request id, never a secret."""

from __future__ import annotations

import io
import json
import logging

import pytest

from esu import logs

from .conftest import APP_SECRET, SYSTEM_USER_TOKEN

#: Shaped like a customer's business token; unlike the configured secrets, known to no setting.
BUSINESS_TOKEN = "EAAGm0PX4ZCpsBAbusinesstoken123"
#: A forwarding target's signing secret, as esu.forwarding.signing.new_secret makes them.
WEBHOOK_SECRET = "whsec_MfKQ9r7+xvHnYW2t/0pL3aD8cE1bF4gH5iJ6kK7lM8n="


def test_request_id_is_taken_from_a_sane_header_and_echoed(client):
    response = client.get("/healthz", headers={"X-Request-Id": "lb-7f3a9c21-0001"})
    assert response.headers["X-Request-Id"] == "lb-7f3a9c21-0001"


@pytest.mark.parametrize("offered", [None, "", "short", "has space in it", "x" * 129, '{"level":"error"}'])
def test_request_id_is_made_when_none_or_a_bad_one_is_offered(client, offered):
    headers = {"X-Request-Id": offered} if offered is not None else {}
    first = client.get("/healthz", headers=headers).headers["X-Request-Id"]
    second = client.get("/healthz", headers=headers).headers["X-Request-Id"]
    assert first != second
    assert len(first) == 32 and int(first, 16) >= 0


def test_error_responses_carry_the_request_id(client):
    response = client.get("/nowhere", headers={"X-Request-Id": "trace-404-abcdef"})
    assert response.status_code == 404
    assert response.headers["X-Request-Id"] == "trace-404-abcdef"


def test_a_failed_graph_step_logs_request_id_and_fbtrace_id_without_the_token(
    client, csrf_token, page, simulator, log_lines
):
    """The step runs on a worker thread: the request id must travel with it."""
    signup = simulator.signup()
    simulator.fault("waba", 100)
    response = client.post(
        f"/signup/{page.slug}/callback",
        json={"code": signup["code"], "event": signup["event"], "waba_id": signup["waba_id"],
              "phone_number_id": signup["phone_number_id"], "business_id": signup["business_id"]},
        headers={"X-CSRFToken": csrf_token, "X-Request-Id": "req-graph-failure-1"},
    )
    assert response.status_code == 201
    failure = [line for line in log_lines() if line.get("step") == "read_waba"]
    assert len(failure) == 1, log_lines()
    line = failure[0]
    assert line["request_id"] == "req-graph-failure-1"
    assert line["level"] == "warning" and line["logger"] == "esu.onboarding"
    assert line["graph_code"] == 100
    assert line["fbtrace_id"] and line["fbtrace_id"] in line["message"]
    step = next(step for step in response.json["steps"] if step["name"] == "read_waba")
    assert step["status"] == "failed"
    assert "EAA" not in json.dumps(log_lines()).replace("EAA[masked]", "")


def test_lines_outside_a_request_have_no_request_id(log_lines):
    logging.getLogger("esu.test").warning("starting up")
    assert log_lines()[-1]["request_id"] is None
    assert log_lines()[-1]["message"] == "starting up"


def test_secrets_are_masked(app, log_lines):
    """Whatever a message, an argument, an extra field or a traceback carries."""
    log = logging.getLogger("esu.test")
    log.warning("exchange failed: GET /oauth/access_token?client_id=1&client_secret=%s&code=abc", APP_SECRET)
    log.warning("call with access_token=EAAxyz0123456789abcdef&appsecret_proof=%s", "ab12" * 16)
    log.warning("Authorization: Bearer %s", BUSINESS_TOKEN)
    log.warning('body {"access_token": "not-an-EAA-token-but-still-secret", "token_type": "bearer"}')
    log.warning("app secret alone: %s", APP_SECRET, extra={"detail": f"secret {APP_SECRET}"})
    try:
        raise RuntimeError(f"boom with EAAinsidetraceback123 and {APP_SECRET}")
    except RuntimeError:
        log.exception("crashed")
    log.warning("configured token in text: %s", SYSTEM_USER_TOKEN)
    log.warning("forwarding secret %s", WEBHOOK_SECRET)
    output = json.dumps(log_lines())
    for secret in (WEBHOOK_SECRET, APP_SECRET, "EAAxyz0123456789abcdef", "ab12" * 16, BUSINESS_TOKEN, SYSTEM_USER_TOKEN,
                   "EAAinsidetraceback123", "not-an-EAA-token-but-still-secret"):
        assert secret not in output
    lines = log_lines()
    assert lines[0]["message"].endswith("client_secret=[masked]&code=abc")
    assert lines[1]["message"] == "call with access_token=[masked]&appsecret_proof=[masked]"
    assert lines[2]["message"] == "Authorization: Bearer [masked]"
    assert lines[4]["detail"] == "secret [masked]"
    assert "RuntimeError: boom with EAA[masked] and [masked]" in lines[5]["exception"]
    assert lines[-1]["message"] == "forwarding secret whsec_[masked]"


def test_handlers_after_ours_see_the_masked_record(app, log_lines, caplog):
    """pytest's capture handler joins the root logger after ours (at the start of the test's call)."""
    caplog.set_level(logging.WARNING)
    logging.getLogger("esu.test").warning("token %s", BUSINESS_TOKEN)
    assert log_lines()[-1]["message"] == "token EAA[masked]"
    assert caplog.records[-1].getMessage() == "token EAA[masked]"
    assert BUSINESS_TOKEN not in caplog.text


# -- the format -------------------------------------------------------------------------------------------


def test_a_terminal_gets_readable_lines_with_secrets_masked_and_a_pipe_gets_json(app, monkeypatch):
    monkeypatch.delenv("ESU_LOG_FORMAT", raising=False)
    monkeypatch.setattr("sys.stdout.isatty", lambda: False, raising=False)
    assert logs.dict_config()["handlers"]["stdout"]["formatter"] == "json"
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    assert logs.dict_config()["handlers"]["stdout"]["formatter"] == "text"
    monkeypatch.setenv("ESU_LOG_FORMAT", "JSON")  # the setting wins
    assert logs.dict_config()["handlers"]["stdout"]["formatter"] == "json"

    stream = io.StringIO()
    handler = logs.handler(stream)
    handler.setFormatter(logs.TextFormatter())
    log = logging.getLogger("esu.test")
    log.addHandler(handler)
    try:
        log.warning("exchange failed with %s", APP_SECRET, extra={"step": "exchange_code", "graph_code": 190})
        try:
            raise RuntimeError(f"boom {BUSINESS_TOKEN}")
        except RuntimeError:
            log.exception("crashed")
    finally:
        log.removeHandler(handler)
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith("warning esu.test: exchange failed with [masked]  step=exchange_code graph_code=190")
    assert rest[0].endswith("error   esu.test: crashed")
    assert rest[-1] == "RuntimeError: boom EAA[masked]"
    assert APP_SECRET not in stream.getvalue() and BUSINESS_TOKEN not in stream.getvalue()


def test_an_unknown_log_format_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("ESU_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="ESU_LOG_FORMAT must be json or text, not 'xml'"):
        logs.dict_config()


def test_the_access_line_reads_the_same_from_esus_few_atoms_as_from_all_of_gunicorns():
    from datetime import timedelta
    from types import SimpleNamespace

    from gunicorn.config import Config
    from gunicorn.glogging import Logger, SafeAtoms

    config = Config()
    config.set("access_log_format", logs.ACCESS_LOG_FORMAT)
    environ = {"REMOTE_ADDR": "203.0.113.9", "REQUEST_METHOD": "GET", "RAW_URI": "/healthz?access_token=EAAquery123",
               "PATH_INFO": "/healthz", "QUERY_STRING": "access_token=EAAquery123", "SERVER_PROTOCOL": "HTTP/1.1",
               "HTTP_USER_AGENT": "curl/8", "HTTP_REFERER": f"https://example.com/?client_secret={APP_SECRET}"}
    request = SimpleNamespace(headers=[("USER-AGENT", "curl/8")])
    response = SimpleNamespace(status="200 OK", sent=17, headers=[("X-Request-Id", "probe-0123456789")])
    took = timedelta(milliseconds=12)

    def line(logger_class) -> dict:
        atoms = SafeAtoms(logger_class(config).atoms(response, request, environ, took))
        record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, logs.ACCESS_LOG_FORMAT, (), None)
        record.args = atoms  # as gunicorn passes them: one mapping
        logs.SecretMaskFilter().filter(record)
        return logs.JSONFormatter().fields(record) | {"ts": None}

    esu_line = line(logs.AccessLogger)
    assert esu_line == line(Logger)
    assert esu_line["message"] == '203.0.113.9 "GET /healthz?access_token=[masked] HTTP/1.1" 200 17 12ms'
    assert esu_line["request_id"] == "probe-0123456789"
    assert APP_SECRET not in json.dumps(esu_line)
