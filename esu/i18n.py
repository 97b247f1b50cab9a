"""The customer's language: which one a request speaks, and the same language on Meta's side.

Customer-facing text (signup pages, the widget, its messages, the simulator's dialog) goes through gettext
with the catalogs in ``esu/translations/`` (``make translations`` extracts and updates them, see the README).
A signup page speaks the language chosen for it in the admin, or, when none is (``SignupPage.language`` is
None), the visitor's browser's (``Accept-Language``), English when it names none of :data:`LANGUAGES`. The
widget sends its page's language back as ``Accept-Language`` on its own calls, so their answers match the
page. The admin speaks English, through gettext too, ready for a translation.

Meta's dialog speaks it as well: the Facebook SDK is loaded for :data:`FACEBOOK_LOCALES` and the
verification code is asked for in :data:`META_LANGUAGES` (Graph's ``request_code`` ``language``).
"""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask, g, has_request_context, request
from flask_babel import Babel, get_locale, gettext, refresh
from flask_babel.speaklater import LazyString
from markupsafe import escape
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

#: The languages esu ships, each named in its own language (how a person finds theirs in a list).
LANGUAGES = {"en": "English", "id": "Bahasa Indonesia", "pt_BR": "Português (Brasil)", "es": "Español"}
DEFAULT = "en"
#: The Facebook SDK's locale for each (``connect.facebook.net/<locale>/sdk.js``): Meta's Spanish for Latin
#: America is ``es_LA``.
FACEBOOK_LOCALES = {"en": "en_US", "id": "id_ID", "pt_BR": "pt_BR", "es": "es_LA"}
#: The code Graph's ``request_code`` takes as ``language`` (Meta's supported-languages table).
META_LANGUAGES = {"en": "en", "id": "id", "pt_BR": "pt_BR", "es": "es"}
#: A locale segment of the SDK's address, as in ``https://connect.facebook.net/en_US/sdk.js``.
SDK_LOCALE = re.compile(r"/[a-z]{2}_[A-Z]{2}/")
TRANSLATIONS = Path(__file__).parent / "translations"


def N_(text: str) -> str:
    """Mark ``text`` for the catalogs (gettext's name for it); it is translated where it is shown
    (``gettext(text)``)."""
    return text


class LazyText(LazyString):
    """Text translated when it is used (a form's label, built before any request). Flask-Babel's own lazy
    string calls itself safe HTML; this one is escaped like any other text."""

    def __html__(self) -> str:
        return str(escape(str(self)))


def lazy_gettext(text: str, **variables) -> LazyText:
    """``gettext`` when the text is used; ``make translations`` extracts it as ``_l("…")``."""
    return LazyText(gettext, text, **variables)


def browser_language(header: str | None) -> str:
    """The shipped language that an ``Accept-Language`` header prefers; English when it names none."""
    return parse_accept_header(header, LanguageAccept).best_match(LANGUAGES, DEFAULT)


def from_facebook(locale: str | None) -> str | None:
    """Our language for a Facebook locale (``id_ID`` → ``id``), None for one we do not ship."""
    for language, facebook in FACEBOOK_LOCALES.items():
        if facebook == locale:
            return language
    return None


def select_locale() -> str:
    """Flask-Babel's choice, once per request: a signup page's own language (:func:`use_page_language`), the
    simulator dialog's ``locale`` (as the SDK opens it), English in the admin, else the browser's."""
    if not has_request_context():
        return DEFAULT
    chosen = g.get("esu_language")
    if chosen:
        return chosen
    if request.blueprint == "admin":
        return DEFAULT
    if request.path.startswith("/_meta/") and request.args.get("locale"):
        return from_facebook(request.args["locale"]) or DEFAULT
    return browser_language(request.headers.get("Accept-Language"))


def use_page_language(language: str | None) -> None:
    """Speak a signup page's language for the rest of the request; None leaves the browser's."""
    if language in LANGUAGES and g.get("esu_language") != language:
        g.esu_language = language
        refresh()  # a string already translated has cached the request's first choice


def current() -> str:
    """The language this request speaks, as :data:`LANGUAGES` names it (``pt_BR``)."""
    return str(get_locale() or DEFAULT)


def html_lang() -> str:
    """The language as HTML's ``lang`` writes it: ``pt-BR``."""
    return current().replace("_", "-")


def facebook_locale() -> str:
    return FACEBOOK_LOCALES.get(current(), FACEBOOK_LOCALES[DEFAULT])


def meta_language() -> str:
    return META_LANGUAGES.get(current(), META_LANGUAGES[DEFAULT])


def localized_sdk_url(url: str, locale: str) -> str:
    """The SDK's address for ``locale``: its locale segment replaced (an address without one is kept)."""
    return SDK_LOCALE.sub(f"/{locale}/", url, count=1)


def forget_choice(_error: BaseException | None = None) -> None:
    """End of a request: its choice goes with it. Flask-Babel keeps it on ``g``, which a request shares with
    an app context pushed around it (a test's, a command's)."""
    g.pop("esu_language", None)
    g.pop("_flask_babel", None)


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=select_locale, default_translation_directories=str(TRANSLATIONS))
    app.add_template_global(html_lang)
    app.teardown_request(forget_choice)
