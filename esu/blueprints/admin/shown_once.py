"""One-time views: an answer the admin sees once (a PIN, a new signing secret) goes POST, redirect, GET.

The POST does the work and logs it, then grants a view of its subject (``pin:12``, ``secret:5``): a nonce in
the redirect's URL, kept in the admin's session until the GET that shows it. The GET takes the nonce and reads
what it shows from the database (encrypted there); the session and the URL never hold the value itself. A
reload of that GET finds the nonce taken and shows nothing, logs nothing: to see it again, ask again (and be
logged again). A view not taken within ``VIEW_SECONDS`` lapses.
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

from flask import session

_VIEWS = "admin_shown_once"
VIEW_SECONDS = 300
#: Views open at once (tabs); past that the oldest goes.
_MAX_VIEWS = 20
#: The query parameter of the GET that shows a view.
PARAM = "shown"


def grant(subject: str, **details: Any) -> str:
    """A view of ``subject`` (a later grant of the same subject replaces an earlier one); answers its nonce.
    ``details`` come back with it (small, never the secret value)."""
    now = int(time.time())
    views = {key: view for key, view in session.get(_VIEWS, {}).items()
             if key != subject and now - view["at"] < VIEW_SECONDS}
    nonce = secrets.token_urlsafe(16)
    views[subject] = {"nonce": nonce, "at": now, **details}
    session[_VIEWS] = dict(list(views.items())[-_MAX_VIEWS:])
    return nonce


def take(subject: str, nonce: str | None) -> dict[str, Any] | None:
    """The view of ``subject`` that ``nonce`` names, taken (gone from the session); None when there is none:
    taken already, lapsed, or never granted here."""
    views = dict(session.get(_VIEWS, {}))
    view = views.get(subject)
    if view is None or not nonce or not hmac.compare_digest(view["nonce"], nonce):
        return None
    del views[subject]
    session[_VIEWS] = views
    return view if time.time() - view["at"] < VIEW_SECONDS else None
