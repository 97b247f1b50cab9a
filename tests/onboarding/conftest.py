"""Fixtures for the onboarding tests: the app on a real server, and browsers that post at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import pytest
import requests

from ..conftest import ServerThread

Answer = TypeVar("Answer")


@pytest.fixture
def served_app(app):
    """The app on a real threaded server, for requests that must truly run at the same time."""
    server = ServerThread(app)
    yield server
    server.stop()


def at_once(browsers: list[tuple[requests.Session, str]],
            send: Callable[[requests.Session, str], Answer]) -> list[Answer]:
    """Call ``send`` with each browser's session and CSRF token, each on a thread of its own and all released
    together; what they returned, in the order they finished. An exception on a thread fails the test."""
    barrier = threading.Barrier(len(browsers))
    answers: list[Answer] = []
    errors: list[Exception] = []

    def in_step(session: requests.Session, token: str) -> None:
        try:
            barrier.wait(timeout=10)
            answers.append(send(session, token))
        except Exception as exc:  # noqa: BLE001 -- reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=in_step, args=browser) for browser in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    return answers
