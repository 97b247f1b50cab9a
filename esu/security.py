"""HTTPS and the security headers every response carries.

- Behind ``ESU_PROXY_HOPS`` proxies, ProxyFix takes the client address and the scheme from the
  ``X-Forwarded-For`` / ``X-Forwarded-Proto`` entries those proxies added, and only those: an entry the
  client wrote itself sits further left and is ignored. The Host header is not taken from
  ``X-Forwarded-Host``: the proxy passes ``Host`` through (see docs/deploy.md).
- When HTTPS is required (production, or ``ESU_FORCE_HTTPS``), plain HTTP is redirected, except the
  health check, which load balancers call on the instance's own address. HSTS goes on every HTTPS answer.
- Signup pages (and the simulator's stand-in for Facebook's dialog under ``/_meta``) may load Facebook's
  SDK, talk to Facebook and frame its dialogs, and keep the login popup they open
  (``same-origin-allow-popups``: plain ``same-origin`` cuts the popup off from the page). Everything else
  is ``'self'`` only. No inline script runs anywhere; a template that needs one uses ``csp_nonce()``, which
  adds that request's nonce to the policy.
- No page is framed, except a signup page by the client sites it lists (``esu.embedding``): its view calls
  ``allow_framing_by``, and they become its ``frame-ancestors`` (its answer has no X-Frame-Options, which
  knows no list of sites). A view that must keep any opener (the simulator's dialog, opened from inside such
  a frame) calls ``allow_any_opener``.
- The signup visitor's session (only the CSRF token of the widget's calls) is a cookie of its own, apart
  from the admin's; for a page client sites may frame it is partitioned (CHIPS: ``SameSite=None; Secure;
  Partitioned``), so that the browser keeps it inside an iframe on such a site, for that site only.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, has_request_context, redirect, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import SecurityError
from werkzeug.middleware.proxy_fix import ProxyFix

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

#: Paths served over plain HTTP even when HTTPS is required.
PLAIN_HTTP_PATHS = frozenset({"/healthz"})
#: Two years: above the one year ASVS 3.4.1 asks for.
HSTS = "max-age=63072000; includeSubDomains"
#: Blueprints whose pages run Embedded Signup.
SIGNUP_BLUEPRINTS = frozenset({"signup"})
SIMULATOR_PREFIX = "/_meta/"
#: The signup visitor's session cookie, sent to the signup pages' URLs only.
SIGNUP_COOKIE = "esu_signup"
SIGNUP_COOKIE_PATH = "/signup/"
#: Hosts on which browsers take a ``Secure`` cookie over plain HTTP (development, tests).
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
# What a view decides about its own answer's headers, kept in the request's WSGI environ: that request's
# alone (``g`` lives as long as the app context, which a test keeps across its requests).
FRAMED_BY = "esu.framed_by"
OPENER_POLICY = "esu.opener_policy"
PARTITIONED_SESSION = "esu.partitioned_session"

# Facebook's side of Embedded Signup: the SDK calls Graph and www, and frames its dialogs from www/web.
FACEBOOK_CONNECT = ("https://graph.facebook.com", "https://www.facebook.com")
FACEBOOK_FRAMES = ("https://www.facebook.com", "https://web.facebook.com")
FACEBOOK_IMAGES = ("https://www.facebook.com",)

BASE_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "connect-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "style-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def origin_of(url: str | None) -> str | None:
    """``https://host[:port]`` of an absolute (or scheme-relative) URL; None for a path on our own site."""
    if not url:
        return None
    parts = urlsplit(url if not url.startswith("//") else "https:" + url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def signup_policy(config) -> dict[str, list[str]]:
    """The base policy plus what the Facebook SDK needs; the simulator's stand-in needs nothing more."""
    policy = {name: list(values) for name, values in BASE_POLICY.items()}
    if config["ESU_SIMULATOR"]:
        return policy
    sdk_origin = origin_of(config.get("META_SDK_URL"))
    if sdk_origin:
        policy["script-src"].append(sdk_origin)
        policy["connect-src"].append(sdk_origin)
    policy["connect-src"].extend(origin for origin in FACEBOOK_CONNECT if origin not in policy["connect-src"])
    policy["frame-src"] = list(FACEBOOK_FRAMES)
    policy["img-src"].extend(FACEBOOK_IMAGES)
    return policy


def render_policy(policy: dict[str, list[str]], nonce: str | None = None) -> str:
    directives = []
    for name, values in policy.items():
        if nonce and name == "script-src":
            values = [*values, f"'nonce-{nonce}'"]
        directives.append(f"{name} {' '.join(values)}")
    return "; ".join(directives)


def csp_nonce() -> str:
    """This request's nonce for an inline ``<script nonce="…">``; asking for it puts it in the policy."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def allow_framing_by(origins) -> None:
    """Let these origins (``https://host[:port]``) frame this request's answer; none: no one may."""
    request.environ[FRAMED_BY] = tuple(origins)


def allow_any_opener() -> None:
    """Send this answer with ``Cross-Origin-Opener-Policy: unsafe-none``: it keeps whichever window opened it."""
    request.environ[OPENER_POLICY] = "unsafe-none"


def partition_session() -> None:
    """Keep this signup visitor's session in a cookie browsers keep inside iframes on other sites too."""
    request.environ[PARTITIONED_SESSION] = True


def is_signup_page() -> bool:
    return request.blueprint in SIGNUP_BLUEPRINTS or request.path.startswith(SIMULATOR_PREFIX)


def require_https():
    """Send plain HTTP to the same URL over HTTPS (308 keeps the method and body)."""
    if requires_https(current_app, request.environ):
        return redirect(request.url.replace("http://", "https://", 1), code=308)
    return None


def add_headers(response):
    response.headers.update(security_headers(current_app, signup=is_signup_page(), secure=request.is_secure,
                                             nonce=g.get("csp_nonce"), framed_by=request.environ.get(FRAMED_BY, ()),
                                             opener_policy=request.environ.get(OPENER_POLICY)))
    return response


def security_headers(app: Flask, *, signup: bool, secure: bool, nonce: str | None = None,
                     framed_by: tuple[str, ...] | list[str] = (), opener_policy: str | None = None) -> dict[str, str]:
    """The security headers of an answer: a signup page's or any other, over HTTPS or not; ``framed_by``
    the origins that may frame it (none: no one)."""
    policies = app.extensions["esu_csp"]
    policy = policies["signup"] if signup else policies["default"]
    if framed_by:
        policy = {**policy, "frame-ancestors": list(framed_by)}
    # Without a nonce or framing sites the header is always the same text: rendered once, at start-up.
    headers = {
        "Content-Security-Policy": render_policy(policy, nonce) if nonce or framed_by else policies["rendered"][signup],
        "Cross-Origin-Opener-Policy": opener_policy or ("same-origin-allow-popups" if signup else "same-origin"),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
    }
    if not framed_by:
        # Old browsers only know X-Frame-Options; frame-ancestors above is what current ones obey. It has no
        # value for "these sites", so a page some sites may frame goes without it.
        headers["X-Frame-Options"] = "DENY"
    if secure:
        headers["Strict-Transport-Security"] = HSTS
    return headers


def requires_https(app: Flask, environ: dict) -> bool:
    """Whether plain HTTP must go to HTTPS for this request (its WSGI environ, beneath ProxyFix): HTTPS is
    required, and this is neither HTTPS nor the health check."""
    return (app.config["ESU_FORCE_HTTPS"] and environ.get("wsgi.url_scheme") != "https"
            and environ.get("PATH_INFO") not in PLAIN_HTTP_PATHS)


def beneath_proxies(app: Flask, middleware: Callable[[WSGIApplication], WSGIApplication]) -> None:
    """Wrap Flask in ``middleware`` beneath ProxyFix, so that it sees the client's scheme and address."""
    if isinstance(app.wsgi_app, ProxyFix):
        app.wsgi_app.app = middleware(app.wsgi_app.app)
    else:
        app.wsgi_app = middleware(app.wsgi_app)


def untrusted_host(_error: SecurityError):
    # Plain text: the error page template builds URLs, which cannot be done for a host we refuse.
    return Response("Unknown host.\n", status=400, mimetype="text/plain")


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, minus the work of building the signer for a request without a cookie
    (most signup page visitors): nothing to verify, so an empty session, as Flask itself answers."""

    def open_session(self, app: Flask, request):
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)

    # The signup visitor's cookie: its own name and path, so that it never mixes with the admin's session.
    # For a page client sites may frame (its session view calls ``partition_session``): SameSite=None and
    # Partitioned, so that it works in an iframe on those sites. Both need Secure, which browsers accept over
    # plain HTTP from loopback hosts only: elsewhere, without HTTPS, it stays an ordinary Lax cookie (and the
    # page works only when not framed).

    @staticmethod
    def _for_signup() -> bool:
        # By path, as the browser sends the cookie: Flask opens the session before it matches the URL.
        return has_request_context() and request.path.startswith(SIGNUP_COOKIE_PATH)

    @classmethod
    def _framable(cls) -> bool:
        if not (cls._for_signup() and request.environ.get(PARTITIONED_SESSION)):
            return False
        host = request.headers.get("Host", "")  # the raw header: request.host raises for an untrusted one
        return request.is_secure or host in LOOPBACK_HOSTS or host.rpartition(":")[0] in LOOPBACK_HOSTS

    def get_cookie_name(self, app: Flask) -> str:
        if not self._for_signup():
            return super().get_cookie_name(app)
        # Over HTTPS the prefix makes browsers refuse the cookie from plain HTTP (it cannot be overwritten there).
        return f"__Secure-{SIGNUP_COOKIE}" if request.is_secure else SIGNUP_COOKIE

    def get_cookie_path(self, app: Flask) -> str:
        return SIGNUP_COOKIE_PATH if self._for_signup() else super().get_cookie_path(app)

    def get_cookie_domain(self, app: Flask) -> str | None:
        return None if self._for_signup() else super().get_cookie_domain(app)

    def get_cookie_samesite(self, app: Flask) -> str | None:
        return "None" if self._framable() else super().get_cookie_samesite(app)

    def get_cookie_secure(self, app: Flask) -> bool:
        # Over HTTPS always: the name's __Secure- prefix requires it.
        return self._framable() or (self._for_signup() and request.is_secure) or super().get_cookie_secure(app)

    def get_cookie_partitioned(self, app: Flask) -> bool:
        return True if self._framable() else super().get_cookie_partitioned(app)


def init_app(app: Flask) -> None:
    hops = app.config["ESU_PROXY_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    signup = signup_policy(app.config)
    app.extensions["esu_csp"] = {"default": BASE_POLICY, "signup": signup,
                                 "rendered": {False: render_policy(BASE_POLICY), True: render_policy(signup)}}
    app.session_interface = CookieSessionInterface()
    app.before_request(require_https)
    app.after_request(add_headers)
    app.add_template_global(csp_nonce)
    app.register_error_handler(SecurityError, untrusted_host)
