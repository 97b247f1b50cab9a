"""The Graph client against small servers on 127.0.0.1 that answer what each test scripts."""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa
from requests.adapters import HTTPAdapter
from werkzeug.wrappers import Request, Response

from esu.extensions import db
from esu.graph import GraphClient, GraphError, appsecret_proof
from esu.models import MessageTemplate

from .conftest import APP_SECRET, ServerThread

APP_ID = "1234567890123456"
TOKEN = "EAAbusinesstoken" + "z" * 40
SYSTEM_TOKEN = "EAAsystemusertoken" + "y" * 30
TRANSIENT = [1, 2, 131000, 131016, 133004]
#: Meta's rate limits (meta-reference.md §9.2): transient, but a step waits as long as Meta says instead.
RATE_LIMITS = [4, 17, 32, 613, 80007, 130429, 131056]
PERMANENT = [100, 190, 200, 133005, 133016]


@dataclass
class Seen:
    method: str
    path: str
    query: str
    args: dict[str, str]
    headers: dict[str, str]
    json: object


@dataclass
class GraphStub:
    """A stand-in for graph.facebook.com: records each request and answers with ``answer(request)``."""

    answer: Callable[[Request], Response] = field(default=lambda request: Response("{}", 200,
                                                                                   mimetype="application/json"))
    seen: list[Seen] = field(default_factory=list)

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.seen.append(Seen(request.method, request.path, request.query_string.decode(), dict(request.args),
                              dict(request.headers), request.get_json(silent=True)))
        return self.answer(request)(environ, start_response)


def json_response(body, status: int = 200) -> Response:
    import json

    return Response(json.dumps(body), status, mimetype="application/json")


def envelope(code: int, status: int = 400, **extra) -> Response:
    return json_response({"error": {"message": f"(#{code}) scripted", "type": "OAuthException", "code": code,
                                    "fbtrace_id": "AtraceId", **extra}}, status)


@pytest.fixture(scope="module")
def stub_server():
    graph = GraphStub()
    server = ServerThread(graph)
    graph.url = server.url
    yield graph
    server.stop()


@pytest.fixture
def stub(stub_server):
    """The stub with no requests seen, answering ``{}`` until the test scripts otherwise."""
    stub_server.seen.clear()
    stub_server.answer = GraphStub().answer
    return stub_server


@pytest.fixture
def pauses():
    """The backoff pauses the client asked for; nothing actually waits."""
    return []


def make_client(url: str, pauses: list | None = None, **overrides) -> GraphClient:
    settings = {
        "base_url": url, "version": "v25.0", "app_id": APP_ID, "app_secret": APP_SECRET,
        "system_user_token": SYSTEM_TOKEN, "timeout": (2.0, 5.0), "max_attempts": 3, "backoff_seconds": 0.5,
        "sleep": (pauses.append if pauses is not None else lambda seconds: None),
    }
    return GraphClient(**(settings | overrides))


@pytest.fixture
def api(stub, pauses):
    return make_client(stub.url, pauses)


# -- how a token travels ----------------------------------------------------------------------------


OPERATIONS_WITH_A_TOKEN = {
    "get_waba": lambda api: api.get_waba("101", TOKEN),
    "subscribe_app": lambda api: api.subscribe_app("101", TOKEN),
    "get_phone_number": lambda api: api.get_phone_number("202", TOKEN),
    "list_phone_numbers": lambda api: api.list_phone_numbers("101", TOKEN),
    "register_phone": lambda api: api.register_phone("202", "123456", TOKEN),
    "request_code": lambda api: api.request_code("202", "SMS", "en", TOKEN),
    "verify_code": lambda api: api.verify_code("202", "123456", TOKEN),
    "sync_business_app": lambda api: api.sync_business_app("202", "history", TOKEN),
    "list_message_templates": lambda api: api.list_message_templates("101", TOKEN),
}


@pytest.mark.parametrize("operation", OPERATIONS_WITH_A_TOKEN)
def test_the_token_travels_in_the_header_with_its_appsecret_proof(stub, api, operation):
    OPERATIONS_WITH_A_TOKEN[operation](api)

    [request] = stub.seen
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    expected = hmac.new(APP_SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
    assert request.args["appsecret_proof"] == expected == appsecret_proof(TOKEN, APP_SECRET)
    assert TOKEN not in request.path + request.query
    assert "access_token" not in request.args
    assert request.path.startswith("/v25.0/")


@pytest.mark.parametrize("operation", ["assign_system_user", "share_credit_line"])
def test_partner_calls_carry_the_system_user_token(stub, api, operation):
    stub.answer = lambda request: json_response({"success": True, "allocation_config_id": "77"})
    if operation == "assign_system_user":
        api.assign_system_user("101", "555")
    else:
        api.share_credit_line("888", "101", "USD")

    [request] = stub.seen
    assert request.headers["Authorization"] == f"Bearer {SYSTEM_TOKEN}"
    assert request.args["appsecret_proof"] == appsecret_proof(SYSTEM_TOKEN, APP_SECRET)
    assert SYSTEM_TOKEN not in request.query


def test_debug_token_asks_about_the_business_token_with_the_system_user_token(stub, api):
    stub.answer = lambda request: json_response({"data": {"is_valid": True, "app_id": APP_ID}})

    assert api.debug_token(TOKEN) == {"is_valid": True, "app_id": APP_ID}

    [request] = stub.seen
    assert request.headers["Authorization"] == f"Bearer {SYSTEM_TOKEN}"
    # Meta's debug_token takes the token it inspects as a query parameter; that is the only place a
    # business token appears in a URL, and the one the log filter must hide.
    assert request.args["input_token"] == TOKEN


def test_without_a_system_user_token_debug_token_uses_the_app_token(stub, pauses):
    stub.answer = lambda request: json_response({"data": {"is_valid": True}})
    make_client(stub.url, pauses, system_user_token=None).debug_token(TOKEN)

    [request] = stub.seen
    assert request.headers["Authorization"] == f"Bearer {APP_ID}|{APP_SECRET}"
    assert "appsecret_proof" not in request.args


def test_the_code_exchange_sends_the_app_credentials_and_answers_the_token(stub, api):
    stub.answer = lambda request: json_response({"access_token": TOKEN, "token_type": "bearer"})

    token = api.exchange_code("AQthecode")

    assert token["access_token"] == TOKEN
    [request] = stub.seen
    assert (request.method, request.path) == ("GET", "/v25.0/oauth/access_token")
    assert request.args["client_id"] == APP_ID and request.args["client_secret"] == APP_SECRET
    assert request.args["code"] == "AQthecode"


@pytest.mark.parametrize(
    ("body", "status"),
    [("<html>Bad gateway</html>", 200), ('{"error": {"message": "bad code", "code": 100, "type": "OAuthException"}}',
                                          200), ("{}", 200)],
)
def test_a_code_exchange_answer_without_a_token_is_a_graph_error(stub, api, body, status):
    stub.answer = lambda request: Response(body, status, mimetype="application/json")

    with pytest.raises(GraphError) as failed:
        api.exchange_code("AQthecode")

    assert failed.value.operation == "oauth_access_token"


def test_every_call_has_a_timeout(stub, pauses):
    timeouts = []

    class Recording(HTTPAdapter):
        def send(self, request, **kwargs):
            timeouts.append(kwargs.get("timeout"))
            return super().send(request, **kwargs)

    api = make_client(stub.url, pauses, timeout=(1.5, 4.0))
    api.session.mount("http://", Recording())
    stub.answer = lambda request: json_response({"access_token": TOKEN, "data": [], "allocation_config_id": "1"})
    api.exchange_code("AQcode")
    api.debug_token(TOKEN)
    api.assign_system_user("101", "555")
    api.share_credit_line("888", "101", "USD")
    for call in OPERATIONS_WITH_A_TOKEN.values():
        call(api)

    assert len(timeouts) == 4 + len(OPERATIONS_WITH_A_TOKEN)
    assert set(timeouts) == {(1.5, 4.0)}


# -- what is worth another try ----------------------------------------------------------------------


@pytest.mark.parametrize("code", TRANSIENT)
def test_transient_codes_are_retried_up_to_the_limit_then_raised(stub, api, pauses, code):
    stub.answer = lambda request: envelope(code)

    with pytest.raises(GraphError) as failed:
        api.get_waba("101", TOKEN)

    assert len(stub.seen) == 3
    assert failed.value.transient is True and failed.value.code == code and failed.value.attempts == 3
    assert len(pauses) == 2 and all(0 < pause <= 4.0 for pause in pauses)


@pytest.mark.parametrize("code", RATE_LIMITS)
def test_a_rate_limit_is_raised_at_once_with_the_wait_meta_gives(stub, api, pauses, code):
    """Graph API "Rate limiting" (meta-reference.md §9.3): ``X-Business-Use-Case-Usage`` holds, by business
    id, each usage type's ``estimated_time_to_regain_access`` in minutes. The token lasts, so no quick
    retries: the caller waits that long."""
    usage = '{"1234": [{"type": "whatsapp_business_management", "call_count": 100, "total_cputime": 20, ' \
            '"total_time": 30, "estimated_time_to_regain_access": 12}]}'

    def limited(request):
        response = envelope(code, is_transient=True)
        response.headers["X-Business-Use-Case-Usage"] = usage
        response.headers["X-App-Usage"] = '{"call_count": 100, "total_time": 20, "total_cputime": 10}'
        return response

    stub.answer = limited

    with pytest.raises(GraphError) as failed:
        api.get_waba("101", TOKEN)

    assert len(stub.seen) == 1 and pauses == []
    assert failed.value.rate_limited and failed.value.regain_access_seconds == 12 * 60


def test_a_rate_limited_code_exchange_is_still_retried_at_once(stub, api, pauses):
    """A code lives 30 seconds ("Implementation", response callback): waiting is not an option there."""
    answers = iter([envelope(4), json_response({"access_token": TOKEN, "token_type": "bearer"})])
    stub.answer = lambda request: next(answers)

    assert api.exchange_code("AQthecode")["access_token"] == TOKEN
    assert len(stub.seen) == 2 and len(pauses) == 1


def test_a_transient_error_then_success_answers_the_success(stub, api):
    answers = iter([envelope(2, 503), envelope(1), json_response({"id": "101", "name": "Wind & Wool"})])
    stub.answer = lambda request: next(answers)

    assert api.get_waba("101", TOKEN)["name"] == "Wind & Wool"
    assert len(stub.seen) == 3 and api.attempts == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_without_an_envelope_are_retried(stub, api, status):
    stub.answer = lambda request: Response("<html>upstream trouble</html>", status, mimetype="text/html")

    with pytest.raises(GraphError) as failed:
        api.subscribe_app("101", TOKEN)

    assert len(stub.seen) == 3
    assert failed.value.transient is True and failed.value.http_status == status


@pytest.mark.parametrize("code", PERMANENT)
def test_permanent_codes_are_raised_after_one_attempt(stub, api, pauses, code):
    stub.answer = lambda request: envelope(code, 401 if code == 190 else 400)

    with pytest.raises(GraphError) as failed:
        api.register_phone("202", "123456", TOKEN)

    assert len(stub.seen) == 1 and pauses == []
    assert failed.value.transient is False and failed.value.code == code and failed.value.attempts == 1


def test_meta_saying_an_error_is_transient_is_believed(stub, api):
    stub.answer = lambda request: envelope(100, is_transient=True)

    with pytest.raises(GraphError):
        api.get_waba("101", TOKEN)

    assert len(stub.seen) == 3


def test_meta_saying_an_error_is_not_transient_is_believed_over_the_code_table(stub, api):
    # A throttling code is transient by the table; Meta's own ``is_transient: false`` decides first.
    stub.answer = lambda request: envelope(4, is_transient=False)

    with pytest.raises(GraphError) as failed:
        api.get_waba("101", TOKEN)

    assert len(stub.seen) == 1
    assert failed.value.transient is False and failed.value.is_transient is False


@pytest.mark.parametrize(("sent", "kept"), [
    ('{"details": "as a string"}', {"details": "as a string"}),
    ("plain words", {"details": "plain words"}),
    (["not", "an", "object"], None),
])
def test_error_data_is_kept_as_an_object(stub, api, sent, kept):
    stub.answer = lambda request: envelope(100, error_data=sent)

    with pytest.raises(GraphError) as failed:
        api.get_waba("101", TOKEN)

    assert failed.value.error_data == kept


class DroppingServer:
    """Accepts each connection and closes it at once: the network failing under the client."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            connection.close()

    def stop(self):
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() above
        self.sock.close()
        self.thread.join(timeout=5)


def test_connection_errors_are_retried_then_raised_without_the_url(pauses):
    server = DroppingServer()
    try:
        api = make_client(server.url, pauses)
        with pytest.raises(GraphError) as failed:
            api.exchange_code("AQthecode")
    finally:
        server.stop()

    assert server.accepted == 3
    assert failed.value.transient is True and failed.value.attempts == 3
    assert failed.value.message == "network error talking to Graph (ConnectionError)"
    assert_says_nothing_secret(failed.value)


def test_a_refused_connection_is_a_transient_graph_error(pauses):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(GraphError) as failed:
        make_client(url, pauses).get_waba("101", TOKEN)

    assert failed.value.transient is True and failed.value.attempts == 3
    assert_says_nothing_secret(failed.value)


def assert_says_nothing_secret(error: GraphError) -> None:
    said = " ".join([str(error), repr(error), error.message, str(error.__cause__), str(error.__context__)])
    for secret in (APP_SECRET, TOKEN, SYSTEM_TOKEN, "client_secret", "appsecret_proof", "http://", "127.0.0.1",
                   "AQthecode"):
        assert secret not in said


@pytest.mark.parametrize("call", ["exchange_code", "get_waba"])
def test_a_read_timeout_is_a_transient_error_that_names_no_url(stub, pauses, call):
    released = threading.Event()

    def hang(request):
        released.wait(timeout=10)  # until the client has given up
        return json_response({})

    stub.answer = hang
    api = make_client(stub.url, pauses, timeout=(2.0, 0.2), max_attempts=2)
    try:
        with pytest.raises(GraphError) as failed:
            api.exchange_code("AQthecode") if call == "exchange_code" else api.get_waba("101", TOKEN)
    finally:
        released.set()

    assert failed.value.transient is True and failed.value.attempts == 2
    assert failed.value.message == "network error talking to Graph (ReadTimeout)"
    assert len(stub.seen) == 2
    assert_says_nothing_secret(failed.value)


def test_the_error_envelope_is_read_field_by_field(stub, api):
    stub.answer = lambda request: json_response({"error": {
        "message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100, "error_subcode": 2388024,
        "error_user_title": "Name taken", "error_user_msg": "A template with that name exists.",
        "error_data": {"messaging_product": "whatsapp", "details": "Name already used in en_US"},
        "is_transient": False, "fbtrace_id": "A_yVQZZWD7NvqeVMHbShI0u"}}, 400)

    with pytest.raises(GraphError) as failed:
        api.get_waba("101", TOKEN)

    error = failed.value
    assert error.fields() == {
        "error_message": "(#100) Invalid parameter", "error_type": "OAuthException", "error_code": 100,
        "error_subcode": 2388024, "error_user_title": "Name taken",
        "error_user_message": "A template with that name exists.",
        "error_data": {"messaging_product": "whatsapp", "details": "Name already used in en_US"},
        "error_transient": False, "fbtrace_id": "A_yVQZZWD7NvqeVMHbShI0u",
    }
    assert (error.operation, error.http_status, error.transient) == ("waba", 400, False)
    assert str(error) == "waba: (#100) Invalid parameter (code 100/2388024)"


def test_an_error_envelope_in_a_200_is_still_an_error(stub, api):
    stub.answer = lambda request: json_response({"error": {"message": "odd", "code": 190, "type": "OAuthException"}})

    with pytest.raises(GraphError) as failed:
        api.get_waba("101", TOKEN)

    assert failed.value.code == 190 and len(stub.seen) == 1


def test_redirects_are_not_followed(stub, api):
    stub.answer = lambda request: Response("", 302, headers={"Location": "http://127.0.0.1:9/elsewhere"})

    with pytest.raises(GraphError) as failed:
        api.get_waba("101", TOKEN)

    assert failed.value.http_status == 302 and len(stub.seen) == 1


# -- paging -------------------------------------------------------------------------------------------


def test_paging_follows_the_cursors_on_our_own_host(stub, api):
    pages = {"": (["t1", "t2"], "c1"), "c1": (["t3", "t4"], "c2"), "c2": (["t5"], None)}

    def page(request):
        items, after = pages[request.args.get("after", "")]
        body = {"data": [{"id": item} for item in items], "paging": {"cursors": {"after": after or "end"}}}
        if after:
            body["paging"]["next"] = f"https://elsewhere.example/next?after={after}"
        return json_response(body)

    stub.answer = page

    templates = api.list_message_templates("101", TOKEN)

    assert [template["id"] for template in templates] == ["t1", "t2", "t3", "t4", "t5"]
    assert [request.args.get("after") for request in stub.seen] == [None, "c1", "c2"]
    assert {request.args["status"] for request in stub.seen} == {"APPROVED"}


def test_all_150_approved_templates_are_stored(simulator, post_callback):
    signup = simulator.signup(templates=150)

    body = post_callback(signup).get_json()

    assert body["status"] == "completed"
    stored = db.session.scalars(sa.select(MessageTemplate.name).where(MessageTemplate.waba_id == signup["waba_id"]))
    assert sorted(stored) == sorted(f"order_update_{number}" for number in range(1, 151))
    assert len(simulator.calls("message_templates")) == 2
