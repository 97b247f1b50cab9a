"""A signup page shown in an iframe on the agency's client sites.

- Each page lists the origins allowed to frame it (``SignupPage.embed_origins``); :func:`parse_origins` is
  the one place that reads what the admin typed. The page's answer carries them as its CSP
  ``frame-ancestors`` (``esu.security``); every other answer, and a page with none, still forbids framing.
- A client site puts :func:`embed_snippet` in its HTML: ``static/esu-embed.js`` replaces the placeholder
  with an iframe of the page and keeps it as tall as the page says it is (``esu-signup.js`` posts its
  height to the frame's parent).
- Inside the iframe the page is a third party: the visitor's session cookie (the CSRF token of the
  widget's calls) is partitioned by the embedding site (``esu.security.CookieSessionInterface``), and Meta's
  login popup keeps the frame as its opener as long as the client site does not send
  ``Cross-Origin-Opener-Policy: same-origin``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import url_for
from flask_babel import gettext
from markupsafe import escape

from .models import SignupPage

#: More than any agency's client has sites; a long list is more likely a paste gone wrong.
MAX_ORIGINS = 20
MAX_ORIGIN_LENGTH = 300
#: An ASCII host name or IPv4 address: labels of letters, digits and '-' (not first or last).
HOST = re.compile(r"^(?=.{1,253}\Z)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\Z")
#: Hosts a browser reaches only on its own machine: plain http is allowed for them, to try embedding out.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
DEFAULT_PORTS = {"https": 443, "http": 80}
EXAMPLE = "https://www.client-site.com"


def parse_origins(text: str | None) -> list[str]:
    """The origins in ``text`` (one a line, or separated by spaces or commas), written as browsers compare
    them (lowercase, no default port), without repeats. Raises ValueError saying which one is wrong and why."""
    origins: list[str] = []
    for written in re.split(r"[\s,]+", text or ""):
        if written:
            origin = parse_origin(written)
            if origin not in origins:
                origins.append(origin)
    if len(origins) > MAX_ORIGINS:
        raise ValueError(gettext("At most %(count)s sites may embed one page.", count=MAX_ORIGINS))
    return origins


def parse_origin(written: str) -> str:
    """One site's origin, ``https://host[:port]`` (``http://`` for localhost only)."""
    shape = gettext("“%(site)s” is not a site's address: write its origin, as in %(example)s (with :port if it has "
                    "one).", site=written[:80], example=EXAMPLE)
    if len(written) > MAX_ORIGIN_LENGTH or "*" in written:
        wildcard = " " + gettext("Wildcards are not accepted: list each site.") if "*" in written else ""
        raise ValueError(shape + wildcard)
    try:
        parts = urlsplit(written)
        port = parts.port
    except ValueError:
        raise ValueError(shape) from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in DEFAULT_PORTS or parts.username is not None or parts.password is not None:
        raise ValueError(shape)
    if parts.path not in ("", "/") or parts.query or parts.fragment or written.endswith(("?", "#")):
        raise ValueError(gettext("“%(site)s” has a path: give only the site's origin, as in %(example)s.",
                                 site=written[:80], example=EXAMPLE))
    if ":" in host:  # an IPv6 literal; only the loopback one is of use (while testing)
        host = f"[{host}]"
    else:
        try:
            host = host.encode("idna").decode("ascii")  # an international name as browsers send it
        except UnicodeError:
            raise ValueError(shape) from None
        if not HOST.match(host):
            raise ValueError(shape)
    local = host in LOCAL_HOSTS or host.endswith(".localhost")
    if scheme == "http" and not local:
        raise ValueError(gettext("“%(site)s” is plain http: only https:// sites may embed a signup page (http:// "
                                 "only for localhost, to try it out).", site=written[:80]))
    if host.startswith("[") and not local:
        raise ValueError(shape)
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != DEFAULT_PORTS[scheme] else "")


def embed_snippet(page: SignupPage) -> str:
    """The HTML a client site pastes where the signup should appear: a link to the page (what people without
    JavaScript get), which esu-embed.js replaces with the page in an iframe."""
    address = url_for("signup.page", slug=page.slug, _external=True)
    script = url_for("static", filename="esu-embed.js", _external=True)
    return (
        f'<div data-esu-signup-embed="{address}"><a href="{address}">{escape(page.title)}</a></div>\n'
        f'<script src="{script}" async></script>'
    )
