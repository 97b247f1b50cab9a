"""One attempt at a delivery: a signed POST on one pooled session, and what it came to (``AttemptResult``).

No redirects followed, timeouts on connecting and reading, no proxies from the environment, no cookies
kept, and every connection opened to the address the destination policy vetted after DNS. The answer's
body is read only for an excerpt, bounded in bytes and in time (a receiver can trickle). Nothing here
touches the database: a ``Job`` carries all a send needs, read before the claiming transaction ended.
"""

from __future__ import annotations

import http.cookiejar
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError

from ..models import now_utc
from .destinations import DestinationPolicy, DestinationRefused
from .signing import signed_headers

#: Statuses worth another try besides 5xx: too many requests, and the receiver's own timeout.
RETRYABLE_STATUSES = frozenset({408, 429})
EXCERPT_CHARS = 500
EXCERPT_BYTES = 4 * EXCERPT_CHARS
#: Requests a worker has in flight at once, and so the connections its sender pools.
DEFAULT_BATCH_SIZE = 20


class _VettedConnection:
    """Connects to the address the policy vetted after resolving the name itself, so a name that
    resolves elsewhere by the time we connect (DNS rebinding) is refused too. TLS still checks the name."""

    policy: DestinationPolicy

    def _new_conn(self):
        name = self._dns_host
        try:
            address = self.policy.vetted_address(name, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        self._dns_host = address
        try:
            return super()._new_conn()
        finally:
            self._dns_host = name


class _VettingAdapter(HTTPAdapter):
    def __init__(self, policy: DestinationPolicy, pool_maxsize: int):
        self.policy = policy
        super().__init__(pool_connections=pool_maxsize, pool_maxsize=pool_maxsize, max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        vetted = {"policy": self.policy}
        http_connection = type("VettedHTTPConnection", (_VettedConnection, HTTPConnection), vetted)
        https_connection = type("VettedHTTPSConnection", (_VettedConnection, HTTPSConnection), vetted)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("VettedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_connection}),
            "https": type("VettedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_connection}),
        }


class Outcome:
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    GONE = "gone"


@dataclass
class AttemptResult:
    """What one HTTP attempt came to, before it is recorded."""

    outcome: str
    attempted_at: datetime
    duration_ms: int
    status_code: int | None = None
    error: str | None = None
    excerpt: str | None = None
    retry_after: str | None = None


@dataclass(frozen=True)
class Job:
    """A claimed delivery with everything needed to send it, read before the transaction ends."""

    delivery_id: int
    target_id: int
    message_id: str
    url: str
    secret: str
    body: bytes
    attempts: int
    first_attempted_at: datetime | None
    lease_until: datetime | None
    is_test: bool
    target_enabled: bool
    target_failing: bool
    #: The secret before the latest rotation, which signs beside ``secret`` until ``previous_secret_until``.
    previous_secret: str | None = None
    previous_secret_until: datetime | None = None

    def secrets_at(self, moment: datetime) -> tuple[str, str | None]:
        """The secret and, while the rotation's overlap lasts at ``moment``, the previous one."""
        overlapping = self.previous_secret_until is not None and moment < self.previous_secret_until
        return self.secret, self.previous_secret if overlapping else None


class Sender:
    """Posts signed deliveries with one pooled session: timeouts, no redirects, no proxies from the
    environment, no cookies kept, every connection vetted by the destination policy. Thread-safe."""

    def __init__(self, policy: DestinationPolicy, timeout: tuple[float, float], pool_size: int = DEFAULT_BATCH_SIZE):
        self.policy = policy
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        adapter = _VettingAdapter(policy, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    @classmethod
    def from_config(cls, config, pool_size: int = DEFAULT_BATCH_SIZE) -> Sender:
        return cls(DestinationPolicy.from_config(config), tuple(config["FORWARD_TIMEOUT"]), pool_size)

    def close(self) -> None:
        self.session.close()

    def send(self, job: Job, clock: Callable[[], datetime] = now_utc) -> AttemptResult:
        """One attempt. Never raises for the receiver's or the network's failures: they are the result."""
        attempted_at = clock()
        started = time.monotonic()

        def result(outcome: str, **fields) -> AttemptResult:
            return AttemptResult(outcome, attempted_at, round((time.monotonic() - started) * 1000), **fields)

        secret, previous_secret = job.secrets_at(attempted_at)
        headers = signed_headers(secret, job.message_id, int(attempted_at.timestamp()), job.body, previous_secret)
        try:
            self.policy.check_url(job.url)
            response = self.session.post(job.url, data=job.body, headers=headers, timeout=self.timeout,
                                         allow_redirects=False, stream=True)
        except DestinationRefused as exc:
            return result(Outcome.FAILED, error=f"destination refused: {exc}")
        # The exceptions' own text can carry the URL, and receivers put tokens in URLs: keep the kind only.
        except requests.exceptions.ConnectTimeout:
            return result(Outcome.RETRY, error="timed out connecting")
        except requests.exceptions.ReadTimeout:
            return result(Outcome.RETRY, error="timed out waiting for the response")
        except requests.exceptions.SSLError:
            return result(Outcome.RETRY, error="TLS failed (certificate or handshake)")
        except requests.exceptions.ConnectionError:
            return result(Outcome.RETRY, error="could not connect")
        except requests.RequestException as exc:
            return result(Outcome.RETRY, error=f"request failed ({type(exc).__name__})")
        try:
            excerpt = _read_excerpt(response, started + sum(self.timeout))
        finally:
            response.close()
        code = response.status_code
        fields = {"status_code": code, "excerpt": excerpt}
        if 200 <= code < 300:
            return result(Outcome.DELIVERED, **fields)
        if code == 410:
            return result(Outcome.GONE, error="HTTP 410 Gone: the receiver asked to stop", **fields)
        if code >= 500 or code in RETRYABLE_STATUSES:
            return result(Outcome.RETRY, error=f"HTTP {code}", retry_after=response.headers.get("Retry-After"),
                          **fields)
        if 300 <= code < 400:
            return result(Outcome.FAILED, error=f"HTTP {code}: redirects are not followed", **fields)
        return result(Outcome.FAILED, error=f"HTTP {code}", **fields)


def _read_excerpt(response: requests.Response, deadline: float) -> str | None:
    """The start of the body, read for a bounded number of bytes and time (a receiver can trickle)."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=512):
            chunks.append(chunk)
            size += len(chunk)
            if size >= EXCERPT_BYTES or time.monotonic() > deadline:
                break
    except (requests.RequestException, OSError):
        pass  # the status is the answer; the body is only a hint
    text = b"".join(chunks)[:EXCERPT_BYTES].decode("utf-8", "replace").replace("\x00", "")[:EXCERPT_CHARS]
    return text or None  # (PostgreSQL text cannot hold NUL: a receiver's answer must not stop the recording)
