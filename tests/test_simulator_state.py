"""The simulator's state in a database: two simulators on one database (as two gunicorn workers are) see the
same codes and faults, and racing calls change each thing once."""

from __future__ import annotations

import os
import threading

import pytest
import sqlalchemy as sa

from esu.extensions import db
from esu.simulator import create_simulator_app
from esu.simulator.store import documents

from .conftest import META
from .webhooks.conftest import URL, encode, envelope, sign, text_message

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("DATABASE_URL", "").startswith("postgres") else [])
APP_TOKEN = f"{META['META_APP_ID']}|{META['META_APP_SECRET']}"


@pytest.fixture(params=BACKENDS + ["memory"])
def workers(request, fresh_database):
    """Two simulators sharing one database (on SQLite in memory, the default, one simulator's threads)."""
    config = {**META, "SIMULATOR_WEBHOOK_RETRY_SECONDS": ()}
    if request.param == "memory":
        made = [create_simulator_app(config)]
        yield made * 2
    else:
        config["SIMULATOR_DATABASE_URL"] = fresh_database(request.param)
        made = [create_simulator_app(config) for _ in range(2)]
        yield made
    for app in made:
        app.extensions["meta_simulator"].documents.engine.dispose()


def at_once(count: int, call) -> list:
    """``call(n)`` in ``count`` threads released together; their answers in order."""
    barrier = threading.Barrier(count)
    answers: list = [None] * count

    def run(n: int) -> None:
        barrier.wait(timeout=10)
        answers[n] = call(n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def test_what_one_worker_issues_the_other_knows(workers):
    first, second = (app.test_client() for app in workers)
    signup = first.post("/_meta/signup", json={}).get_json()

    exchanged = second.get("/_meta/graph/v25.0/oauth/access_token", query_string={
        "client_id": META["META_APP_ID"], "client_secret": META["META_APP_SECRET"], "code": signup["code"]})

    assert exchanged.status_code == 200
    token = exchanged.get_json()["access_token"]
    assert token in workers[0].extensions["meta_simulator"].tokens
    assert [call["operation"] for call in first.get("/_meta/calls").get_json()["calls"]] == ["oauth_access_token"]


def test_a_code_exchanged_by_eight_racing_calls_gives_one_token(workers):
    signup = workers[0].test_client().post("/_meta/signup", json={}).get_json()
    query = {"client_id": META["META_APP_ID"], "client_secret": META["META_APP_SECRET"], "code": signup["code"]}

    answers = at_once(8, lambda n: workers[n % 2].test_client().get("/_meta/graph/v25.0/oauth/access_token",
                                                                    query_string=query))

    assert sorted(answer.status_code for answer in answers) == [200] + [400] * 7
    refusals = [answer.get_json()["error"] for answer in answers if answer.status_code == 400]
    assert {(error["code"], error["error_subcode"]) for error in refusals} == {(100, 36009)}
    assert len(workers[1].extensions["meta_simulator"].tokens) == 1


def test_a_fault_fails_as_many_racing_calls_as_asked(workers):
    workers[1].test_client().post("/_meta/faults", json={"operation": "debug_token", "error_code": 2, "times": 3,
                                                         "after": 2})

    answers = at_once(10, lambda n: workers[n % 2].test_client().get(
        "/_meta/graph/v25.0/debug_token", query_string={"access_token": APP_TOKEN, "input_token": "EAAnone"}))

    assert sorted(answer.status_code for answer in answers) == [200] * 7 + [503] * 3
    assert workers[0].extensions["meta_simulator"].faults == {}


def test_racing_changes_to_one_number_are_all_kept(workers):
    """Eight changes to one number at once, from either worker: each lands, none overwrites another."""
    states = [app.extensions["meta_simulator"] for app in workers]
    phone_id = workers[0].test_client().post("/_meta/signup", json={}).get_json()["phone_number_id"]

    at_once(8, lambda n: states[n % 2].change("phone", phone_id, lambda phone: phone.code_requests.append(str(n))))

    assert sorted(states[1].phones[phone_id].code_requests) == [str(n) for n in range(8)]


def test_the_signup_page_and_the_webhook_never_touch_the_simulators_table(app_config, request):
    """Mounted in esu the simulator's table is in the app's database; only the simulator's own paths use it."""
    app_config["ESU_SIMULATOR"] = True
    app_config.pop("META_GRAPH_URL")
    client = request.getfixturevalue("client")
    page = request.getfixturevalue("page")
    statements: list[str] = []

    def seen(connection, cursor, statement, *args) -> None:
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", seen)
    try:
        assert client.get(f"/signup/{page.slug}").status_code == 200
        assert client.get(f"/signup/{page.slug}/session").status_code == 200
        body = encode(envelope(("messages", text_message("wamid.simulator-apart"))))
        assert client.post(URL, data=body, headers={"Content-Type": "application/json",
                                                    "X-Hub-Signature-256": sign(body)}).status_code == 200
        app_paths = len(statements)
        assert client.post("/_meta/signup", json={}).status_code == 200
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", seen)

    assert app_paths and not [sql for sql in statements[:app_paths] if documents.name in sql]
    assert [sql for sql in statements[app_paths:] if documents.name in sql]  # the listener does see them
