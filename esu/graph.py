"""The Graph API client: the only code in esu that speaks HTTP to Meta.

It knows URLs, tokens, ``appsecret_proof``, timeouts, Meta's error envelope and which errors are worth
another try. It knows nothing of the database or of Flask requests: callers pass what it needs.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests
from authlib.common.urls import add_params_to_uri
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from requests.adapters import HTTPAdapter

from .graph_errors import GraphError

#: A bound on cursor paging, so a misbehaving server cannot keep us looping.
MAX_PAGES = 100
#: Query parameters that carry a secret: Meta wants ``client_secret`` and ``code`` (the exchange) and
#: ``input_token`` (debug_token) in the URL, and ``appsecret_proof`` is derived from a token.
SECRET_QUERY_VALUE = re.compile(
    r"(?<=[?&])(client_secret|appsecret_proof|access_token|input_token|fb_exchange_token|code)=[^&\s\"'#]*"
)
#: Libraries under ``requests`` that log request URLs (urllib3 at DEBUG).
URL_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry")


class RedactSecrets(logging.Filter):
    """Rewrites a log record so no secret query value survives, whatever the level or the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = SECRET_QUERY_VALUE.sub(r"\1=[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


_redact_secrets = RedactSecrets()


def hide_secrets_from_url_logs() -> None:
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        if _redact_secrets not in logger.filters:
            logger.addFilter(_redact_secrets)


def appsecret_proof(token: str, app_secret: str) -> str:
    """HMAC-SHA256 of the token keyed with the app secret, as Meta's "Require App Secret" wants."""
    return hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()


class GraphClient:
    """Calls Graph with one pooled session. ``tracked()`` gives a copy that counts its HTTP attempts."""

    def __init__(
        self,
        *,
        base_url: str,
        version: str,
        app_id: str,
        app_secret: str,
        system_user_token: str | None = None,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (3.05, 20.0),
        max_attempts: int = 3,
        backoff_seconds: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = base_url.rstrip("/")
        self.version = version
        self.app_id = app_id
        self.app_secret = app_secret
        self.system_user_token = system_user_token
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep
        self.session = session or pooled_session()
        self.attempts = 0
        hide_secrets_from_url_logs()

    @classmethod
    def from_config(cls, config, session: requests.Session | None = None) -> GraphClient:
        return cls(
            base_url=config["META_GRAPH_URL"],
            version=config["META_GRAPH_VERSION"],
            app_id=config["META_APP_ID"],
            app_secret=config["META_APP_SECRET"],
            system_user_token=config.get("META_SYSTEM_USER_TOKEN"),
            session=session,
            timeout=tuple(config["GRAPH_TIMEOUT"]),
            max_attempts=config["GRAPH_MAX_ATTEMPTS"],
            backoff_seconds=config["GRAPH_BACKOFF_SECONDS"],
        )

    def tracked(self) -> GraphClient:
        """A client sharing this one's session whose ``attempts`` counts only its own calls."""
        clone = copy.copy(self)
        clone.attempts = 0
        return clone

    def url(self, path: str) -> str:
        return f"{self.base_url}/{self.version}/{path.lstrip('/')}"

    @property
    def app_token(self) -> str:
        return f"{self.app_id}|{self.app_secret}"

    # -- transport -------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        token: str | None = None,
        params: dict[str, Any] | None = None,
        json_body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One Graph call, retried while the error is transient, answered as the decoded JSON object."""
        params = dict(params or {})
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
            if token != self.app_token:
                params["appsecret_proof"] = appsecret_proof(token, self.app_secret)

        def send() -> dict[str, Any]:
            response = self.session.request(
                method,
                self.url(path),
                params=params,
                json=json_body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
            return self._decode(operation, response)

        return self._with_retries(operation, send)

    def _decode(self, operation: str, response: requests.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise GraphError.from_response(operation, response)
        try:
            body = response.json()
        except ValueError:
            raise GraphError("Graph answered with a body that is not JSON", operation=operation,
                             http_status=200, transient=True) from None
        if not isinstance(body, dict):
            raise GraphError("Graph answered with JSON that is not an object", operation=operation,
                             http_status=200)
        if isinstance(body.get("error"), dict):
            raise GraphError.from_response(operation, response)
        return body

    def _with_retries(self, operation: str, send: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        attempt = 0
        while True:
            attempt += 1
            self.attempts += 1
            try:
                return send()
            except requests.RequestException as exc:
                error = GraphError.network(operation, exc)
            except GraphError as exc:
                error = exc
            error.attempts = attempt
            if not error.transient or attempt >= self.max_attempts:
                raise error
            if error.rate_limited and operation != "oauth_access_token":
                raise error  # the token lasts: the caller waits as long as Meta says, then asks again
            # Capped exponential backoff with full jitter.
            delay = min(4.0, self.backoff_seconds * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            self.sleep(delay)

    def _pages(self, path: str, *, operation: str, token: str, params: dict[str, Any]) -> Iterator[dict]:
        """Every item of a cursor-paged edge. Follows ``cursors.after`` rather than ``next`` so the
        host never changes under us."""
        params = dict(params)
        for _ in range(MAX_PAGES):
            page = self.request("GET", path, operation=operation, token=token, params=params)
            yield from page.get("data", [])
            paging = page.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if not paging.get("next") or not after:
                return
            params["after"] = after

    # -- operations --------------------------------------------------------------------------------

    def exchange_code(self, code: str) -> dict[str, Any]:
        """Trade an Embedded Signup code (30 s, single use) for the customer's business token.

        The OAuth exchange goes through authlib's client. Meta's endpoint is a GET with the client
        credentials in the query string, an authentication method authlib lets us register. It shares
        this client's connection pool.
        """
        oauth = OAuth2Session(self.app_id, self.app_secret, token_endpoint_auth_method="client_secret_query")
        oauth.register_client_auth_method(("client_secret_query", _client_secret_query))
        oauth.adapters = self.session.adapters

        def raise_graph_error(response: requests.Response) -> requests.Response:
            # Before authlib reads it: an error envelope, or a body that is not JSON, becomes a GraphError
            # like any other call's (authlib would raise a bare ValueError for the latter).
            self._decode("oauth_access_token", response)
            return response

        oauth.register_compliance_hook("access_token_response", raise_graph_error)

        def send() -> dict[str, Any]:
            try:
                token = oauth.fetch_token(
                    self.url("oauth/access_token"),
                    method="GET",
                    grant_type="authorization_code",
                    code=code,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except OAuthError as exc:  # a 200 that still carried an error
                raise GraphError(f"the code exchange failed: {exc.error}", operation="oauth_access_token") from None
            return dict(token)

        result = self._with_retries("oauth_access_token", send)
        if not result.get("access_token"):
            raise GraphError("the code exchange returned no access token", operation="oauth_access_token")
        return result

    def debug_token(self, input_token: str) -> dict[str, Any]:
        """What Meta knows of a token: validity, app, and the assets it was granted."""
        body = self.request(
            "GET",
            "debug_token",
            operation="debug_token",
            token=self.system_user_token or self.app_token,
            params={"input_token": input_token},
        )
        return body.get("data") or {}

    def assigned_wabas(self, user_id: str, token: str) -> list[dict[str, Any]]:
        """The WABAs assigned to a system user: for a business token, to the one it acts as (``debug_token``'s
        ``user_id``), that is the WABAs the customer shared."""
        return list(self._pages(f"{user_id}/assigned_whatsapp_business_accounts",
                                operation="assigned_whatsapp_business_accounts", token=token,
                                params={"fields": "id,name", "limit": 100}))

    def get_waba(self, waba_id: str, token: str) -> dict[str, Any]:
        fields = (
            "id,name,currency,timezone_id,message_template_namespace,account_review_status,"
            "business_verification_status,country,ownership_type,owner_business_info"
        )
        return self.request("GET", waba_id, operation="waba", token=token, params={"fields": fields})

    def subscribe_app(self, waba_id: str, token: str) -> dict[str, Any]:
        return self.request("POST", f"{waba_id}/subscribed_apps", operation="subscribed_apps", token=token)

    def assign_system_user(self, waba_id: str, system_user_id: str) -> dict[str, Any]:
        """Give the partner's system user full control of the customer's WABA (system user token)."""
        return self.request(
            "POST",
            f"{waba_id}/assigned_users",
            operation="assigned_users",
            token=self._system_token(),
            params={"user": system_user_id, "tasks": json.dumps(["MANAGE"])},
        )

    def share_credit_line(self, credit_line_id: str, waba_id: str, currency: str) -> dict[str, Any]:
        """Share the partner's credit line with the WABA and attach it; answers the allocation config."""
        return self.request(
            "POST",
            f"{credit_line_id}/whatsapp_credit_sharing_and_attach",
            operation="credit_sharing",
            token=self._system_token(),
            params={"waba_currency": currency, "waba_id": waba_id},
        )

    def get_phone_number(self, phone_number_id: str, token: str, fields: str | None = None) -> dict[str, Any]:
        fields = fields or (
            "id,display_phone_number,verified_name,code_verification_status,status,quality_rating,"
            "name_status,platform_type,is_on_biz_app,account_mode"
        )
        return self.request(
            "GET", phone_number_id, operation="phone_number", token=token, params={"fields": fields}
        )

    def list_phone_numbers(self, waba_id: str, token: str) -> list[dict[str, Any]]:
        """The WABA's numbers, each with its id and display number (the edge's defaults are not documented;
        each number is read in full with ``get_phone_number``)."""
        return list(
            self._pages(f"{waba_id}/phone_numbers", operation="phone_numbers", token=token,
                        params={"fields": "id,display_phone_number"})
        )

    def register_phone(self, phone_number_id: str, pin: str, token: str,
                       data_localization_region: str | None = None) -> dict[str, Any]:
        """Register the number with its two-step verification PIN, with local storage in that country if
        ``data_localization_region`` is given (business-phone-numbers/register-a-business-phone-number.md)."""
        body = {"messaging_product": "whatsapp", "pin": pin}
        if data_localization_region:
            body["data_localization_region"] = data_localization_region
        return self.request("POST", f"{phone_number_id}/register", operation="register", token=token,
                            json_body=body)

    def request_code(self, phone_number_id: str, method: str, language: str, token: str) -> dict[str, Any]:
        return self.request(
            "POST",
            f"{phone_number_id}/request_code",
            operation="request_code",
            token=token,
            params={"code_method": method, "language": language},
        )

    def verify_code(self, phone_number_id: str, code: str, token: str) -> dict[str, Any]:
        return self.request(
            "POST", f"{phone_number_id}/verify_code", operation="verify_code", token=token,
            params={"code": code},
        )

    def sync_business_app(self, phone_number_id: str, sync_type: str, token: str) -> dict[str, Any]:
        """Start contacts (``smb_app_state_sync``) or history (``history``) sync for coexistence."""
        return self.request(
            "POST",
            f"{phone_number_id}/smb_app_data",
            operation="smb_app_data",
            token=token,
            json_body={"messaging_product": "whatsapp", "sync_type": sync_type},
        )

    def list_message_templates(self, waba_id: str, token: str, status: str = "APPROVED") -> list[dict[str, Any]]:
        return list(
            self._pages(
                f"{waba_id}/message_templates",
                operation="message_templates",
                token=token,
                params={"fields": "id,name,language,status,category,components", "status": status,
                        "limit": 100},
            )
        )

    def _system_token(self) -> str:
        if not self.system_user_token:
            raise GraphError("META_SYSTEM_USER_TOKEN is not set", operation="system_user", transient=False)
        return self.system_user_token


def _client_secret_query(client, method, uri, headers, body):
    """authlib client authentication the way Meta's token endpoint wants it: in the query string."""
    uri = add_params_to_uri(uri, [("client_id", client.client_id), ("client_secret", client.client_secret)])
    return uri, headers, body


def pooled_session(pool_size: int = 64) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def init_app(app, session: requests.Session) -> None:
    """One client per app, sending its calls through ``session`` (the factory chooses the transport)."""
    app.extensions["esu_graph"] = GraphClient.from_config(app.config, session)


def client() -> GraphClient:
    from flask import current_app

    return current_app.extensions["esu_graph"]
