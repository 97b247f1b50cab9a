"""Structured logs: one JSON object per line, each with the request id, and no secrets.

Named ``logs`` rather than ``logging``: a submodule called ``logging`` would replace the standard
library's module in ``esu/__init__.py``'s namespace the moment it is imported.

The request id comes from a sane ``X-Request-Id`` (set by the proxy in front, or by a caller that wants
to follow its request through), otherwise it is made here; it is echoed in the response, so gunicorn's
access line carries it too. It lives in a context variable, which worker threads do not inherit:
work handed to a thread pool is wrapped in :func:`carrying_request_id`.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import logging.config
import os
import re
import secrets
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from flask import Flask, g, request
from gunicorn.glogging import Logger as GunicornLogger

REQUEST_ID_HEADER = "X-Request-Id"
#: What we accept from outside as a request id: short, and nothing that could forge a log line.
SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("esu_request_id", default=None)

# -- secrets ------------------------------------------------------------------------------------------

MASK = "[masked]"
#: Meta's access tokens (user, business, system user) start with EAA; their length varies.
META_TOKEN = re.compile(r"\bEAA[A-Za-z0-9_-]{8,}")
#: ``name=value`` in a URL or form, ``"name": "value"`` in JSON, for parameters that carry credentials.
SECRET_PARAMETER = re.compile(
    r"""(?P<name>\b(?:access_token|input_token|client_secret|appsecret_proof|fb_exchange_token|password)"""
    r"""["']?\s*[=:]\s*["']?)(?P<value>(?!\[masked\])[^"'&\s,;})\]]+)""",
    re.IGNORECASE,
)
#: A forwarding target's signing secret (Standard Webhooks): shown to the admin once, never logged.
WEBHOOK_SECRET = re.compile(r"\bwhsec_[A-Za-z0-9+/]{16,}=*")
BEARER = re.compile(r"(?P<name>\bBearer\s+)(?P<value>[A-Za-z0-9._~+/=|-]+)", re.IGNORECASE)
#: What each pattern above needs to find in a text: most log lines have none of it, and one search tells.
COULD_HOLD_A_PATTERN = re.compile(
    r"access_token|input_token|client_secret|appsecret_proof|fb_exchange_token|password|bearer|whsec_|EAA",
    re.IGNORECASE,
)
#: Configured secrets shorter than this are not masked by value: they would mask ordinary words.
MIN_LITERAL_LENGTH = 8
#: Longest first, so a secret containing another is masked whole. Replaced, never changed in place, so
#: a thread logging while an app is created reads one consistent tuple.
_literal_secrets: tuple[str, ...] = ()


def register_secrets(values: Iterable[str | None]) -> None:
    """Mask these exact values (the app secret, the signing key…) wherever they appear in a log line."""
    global _literal_secrets
    wanted = {value for value in values if value and len(value) >= MIN_LITERAL_LENGTH}
    _literal_secrets = tuple(sorted(wanted.union(_literal_secrets), key=len, reverse=True))


def mask(text: str) -> str:
    """``text`` with every token, credential parameter and configured secret replaced by a mask."""
    for secret in _literal_secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    if not COULD_HOLD_A_PATTERN.search(text):
        return text
    text = SECRET_PARAMETER.sub(lambda match: match["name"] + MASK, text)
    text = BEARER.sub(lambda match: match["name"] + MASK, text)
    text = WEBHOOK_SECRET.sub("whsec_" + MASK, text)
    return META_TOKEN.sub("EAA" + MASK, text)


class MaskedAtoms(Mapping):
    """gunicorn's access atoms, each masked as it is read. An access line reads a handful of them, out of
    one per request header, response header and environ key: masking them all cost more than the rest of
    a cached page's answer."""

    def __init__(self, atoms: Mapping):
        self._atoms = atoms

    def __getitem__(self, key):
        value = self._atoms[key]  # gunicorn's own lookup: '-' for a header the request did not have
        return mask(value) if isinstance(value, str) else value

    def __iter__(self):
        return iter(self._atoms)

    def __len__(self) -> int:
        return len(self._atoms)


class SecretMaskFilter(logging.Filter):
    """Rewrites each record with its secrets masked: the message, the traceback and any extra field.

    The record is changed in place, so handlers that run after this one see the masked text too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
            # gunicorn's access record: a fixed format over the request's "atoms", kept as fields.
            if not isinstance(record.args, MaskedAtoms):
                record.args = MaskedAtoms(record.args)
        else:
            record.msg = mask(record.getMessage())
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        for name, value in _extra_fields(record).items():
            if isinstance(value, str):
                setattr(record, name, mask(value))
        return True


# -- request ids --------------------------------------------------------------------------------------


def current_request_id() -> str | None:
    return _request_id.get()


def request_id_for(offered: str | None) -> str:
    """The id a request goes by: the ``X-Request-Id`` it came with when that is sane, else a new one."""
    return offered if offered and SANE_REQUEST_ID.match(offered) else secrets.token_hex(16)


@contextlib.contextmanager
def request_id_bound(request_id: str) -> Iterator[None]:
    """Log under ``request_id`` inside the block (for requests answered beneath Flask)."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Gives every record a ``request_id`` (``None`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = _request_id.get()
        return True


Result = TypeVar("Result")


def carrying_request_id(function: Callable[..., Result]) -> Callable[..., Result]:
    """``function``, to be run on another thread, logging under the current request id."""
    request_id = _request_id.get()

    def run(*args: Any, **kwargs: Any) -> Result:
        token = _request_id.set(request_id)
        try:
            return function(*args, **kwargs)
        finally:
            _request_id.reset(token)

    return run


def _begin_request() -> None:
    request_id = request_id_for(request.headers.get(REQUEST_ID_HEADER))
    g.request_id = request_id
    g.request_id_token = _request_id.set(request_id)


def _echo_request_id(response):
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


def _end_request(_error: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        _request_id.reset(token)


# -- output -------------------------------------------------------------------------------------------

_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """What the caller added with ``extra=``."""
    return {name: value for name, value in vars(record).items() if name not in _RECORD_FIELDS}


#: gunicorn logs each request with its "atoms" as the record's arguments; these become fields.
GUNICORN_ACCESS_FIELDS = {
    "remote_addr": "h",
    "method": "m",
    "path": "U",
    "status": "s",
    "bytes": "B",
    "duration_ms": "M",
    "user_agent": "a",
    "referrer": "f",
}


#: The access line's message; its fields are GUNICORN_ACCESS_FIELDS and the request id.
ACCESS_LOG_FORMAT = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms'
RESPONSE_REQUEST_ID = "{x-request-id}o"


class AccessLogger(GunicornLogger):
    """gunicorn's logger, whose access line reads only the atoms esu's line uses.

    gunicorn makes one atom per request header, response header and environ key for every request, then
    copies them all: on a worker storing webhooks that was about a sixth of its CPU, for a line that reads
    ten of them. With any other ``access_log_format`` every atom is made, as gunicorn does."""

    def atoms(self, resp, req, environ, request_time):
        if self.cfg.access_log_format != ACCESS_LOG_FORMAT:
            return super().atoms(resp, req, environ, request_time)
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        request_id = next((value for name, value in resp.headers if name.lower() == "x-request-id"), "-")
        return {
            "h": environ.get("REMOTE_ADDR", "-"),
            "r": f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}",
            "s": status,
            "m": environ.get("REQUEST_METHOD"),
            "U": environ.get("PATH_INFO"),
            "B": getattr(resp, "sent", None),
            "f": environ.get("HTTP_REFERER", "-"),
            "a": environ.get("HTTP_USER_AGENT", "-"),
            "M": request_time.seconds * 1000 + request_time.microseconds // 1000,
            RESPONSE_REQUEST_ID: request_id,
        }


class JSONFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, request id, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(self.fields(record), ensure_ascii=False, default=str)

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
            atoms = record.args
            entry.update({name: atoms.get(atom) for name, atom in GUNICORN_ACCESS_FIELDS.items()})
            entry["request_id"] = atoms.get(RESPONSE_REQUEST_ID)
        for name, value in _extra_fields(record).items():
            entry.setdefault(name, value if isinstance(value, (str, int, float, bool, type(None))) else repr(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return entry


class TextFormatter(JSONFormatter):
    """A line for people at a terminal (the demo, development): time, level, logger, message, request id."""

    def format(self, record: logging.LogRecord) -> str:
        entry = self.fields(record)
        extras = " ".join(f"{name}={value}" for name, value in entry.items()
                          if name not in ("ts", "level", "logger", "message", "request_id", "exception", "stack")
                          and value not in (None, "-") and record.name != "gunicorn.access")
        line = f"{entry['ts'][11:23]} {entry['level']:<7} {entry['logger']}: {entry['message']}"
        if entry["request_id"] and entry["request_id"] != "-":
            line += f"  [{entry['request_id']}]"
        if extras:
            line += f"  {extras}"
        for trace in (entry.get("exception"), entry.get("stack")):
            if trace:
                line += "\n" + trace
        return line


def log_format() -> str:
    """``ESU_LOG_FORMAT``: ``json`` (a line per record for journald and log shippers) or ``text``; by default
    text when stdout is a terminal, JSON otherwise."""
    chosen = (os.environ.get("ESU_LOG_FORMAT") or "").strip().lower()
    if not chosen:
        return "text" if sys.stdout.isatty() else "json"
    if chosen not in ("json", "text"):
        raise ValueError(f"ESU_LOG_FORMAT must be json or text, not {chosen!r}")
    return chosen


def dict_config(level: str = "INFO") -> dict[str, Any]:
    """The logging set-up, as ``logging.config.dictConfig`` takes it; gunicorn.conf.py uses it too."""
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
        "formatter": log_format(),
        "filters": ["request_id", "secrets"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "esu.logs.RequestIdFilter"},
            "secrets": {"()": "esu.logs.SecretMaskFilter"},
        },
        "formatters": {"json": {"()": "esu.logs.JSONFormatter"}, "text": {"()": "esu.logs.TextFormatter"}},
        "handlers": {"stdout": handler},
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            # gunicorn does not let its loggers propagate: give them the same handler.
            "gunicorn.error": {"level": level, "handlers": ["stdout"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
            "alembic.runtime.plugins": {"level": "WARNING"},
        },
    }


def configured() -> bool:
    """Whether the root logger already writes through our formatter (gunicorn set it up, or we did)."""
    return any(isinstance(handler.formatter, JSONFormatter) for handler in logging.getLogger().handlers)


def handler(stream=None) -> logging.Handler:
    """A handler writing our lines to ``stream`` (stdout by default), with both filters."""
    result = logging.StreamHandler(stream or sys.stdout)
    result.setFormatter(JSONFormatter())
    result.addFilter(RequestIdFilter())
    result.addFilter(SecretMaskFilter())
    return result


def init_app(app: Flask) -> None:
    """Request ids on every request; JSON lines on stdout unless testing (pytest captures logs itself)."""
    register_secrets(
        str(app.config.get(name) or "")
        for name in ("SECRET_KEY", "META_APP_SECRET", "META_WEBHOOK_VERIFY_TOKEN", "META_SYSTEM_USER_TOKEN",
                     "ESU_ADMIN_PASSWORD")
    )
    register_secrets(key.decode() for key in app.config.get("ESU_ENCRYPTION_KEY_LIST") or [])
    app.before_request(_begin_request)
    app.after_request(_echo_request_id)
    app.teardown_request(_end_request)
    if not app.testing and not configured():
        logging.config.dictConfig(dict_config())
