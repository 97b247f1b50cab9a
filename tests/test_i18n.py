"""The customer's language: every customer-facing string translated in every shipped language with its
placeholders, the compiled catalogs matching their sources, a page's language (its own, or the visitor's
browser's) on the page, in the widget's words, in the answers of its calls, in Meta's SDK and dialog and in the
verification code Meta is asked to send."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from esu.extensions import db
from esu.graph import GraphClient
from esu.i18n import LANGUAGES, TRANSLATIONS
from esu.models import SignupPage

from .helpers import new_ref
from .test_admin_pages import VALID
from .test_signup_page import widget_settings

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = [language for language in LANGUAGES if language != "en"]
#: The admin speaks English: its strings (its blueprint and templates, the dashboard's reports, the refusals of a
#: page's embedding settings) go through gettext, but no shipped language has to translate them.
ADMIN_SOURCES = ("esu/blueprints/admin/", "esu/templates/admin/", "esu/reports/", "esu/embedding.py",
                 "esu/forwarding/", "esu/onboarding/numbers.py", "esu/webhooks/appliers/waba.py")
PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[sd]")


def extracted() -> dict[str, set[str]]:
    """Every marked string in the sources now, as `make translations` extracts it, with the files it is in."""
    with open(ROOT / "babel.cfg") as config:
        method_map, options_map = parse_mapping_cfg(config)
    found: dict[str, set[str]] = {}
    for filename, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords={"_": None, "gettext": None, "ngettext": (1, 2),
                                                          "N_": None, "_l": None}):
        singular = message[0] if isinstance(message, tuple) else message  # a plural is known by its singular
        found.setdefault(singular, set()).add(filename.replace("\\", "/"))
    return found


def catalog(language: str):
    with open(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", "rb") as source:
        return read_po(source, locale=language)


def singular(message_id: str | tuple[str, ...]) -> str:
    return message_id[0] if isinstance(message_id, tuple) else message_id


def texts(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else (value,)


def customer_facing(files: set[str]) -> bool:
    return any(not name.startswith(ADMIN_SOURCES) for name in files)


@pytest.mark.parametrize("language", SHIPPED)
def test_every_customer_facing_string_is_translated(language):
    """A string added to a page, the widget, an error or the simulator's dialog fails this until `make
    translations` has put it in the catalogs and someone has translated it (fuzzy guesses do not count)."""
    messages = {singular(message.id): message for message in catalog(language) if message.id}
    untranslated = [text for text, files in extracted().items() if customer_facing(files) and (
        text not in messages or not all(texts(messages[text].string)) or messages[text].fuzzy)]
    assert untranslated == [], f"{language}: translate these (make translations, then edit the .po)"


@pytest.mark.parametrize("language", SHIPPED)
def test_every_marked_string_is_in_the_catalogs(language):
    """Admin strings too: the catalogs hold every string the code marks, ready for a translation."""
    messages = {singular(message.id) for message in catalog(language)}
    assert sorted(set(extracted()) - messages) == []


@pytest.mark.parametrize("language", SHIPPED)
def test_translations_keep_every_placeholder(language):
    broken = {}
    for message in catalog(language):
        wanted = sorted(PLACEHOLDER.findall(singular(message.id))) if message.id else []
        for translated in texts(message.string) if message.id else ():
            if translated and sorted(PLACEHOLDER.findall(translated)) != wanted:
                broken[singular(message.id)] = translated
    assert broken == {}


@pytest.mark.parametrize("language", SHIPPED)
def test_compiled_catalog_matches_its_source(language):
    """The .mo is what esu reads: committed, so a fresh clone needs no build step, and compiled from the .po
    as it is now (`make compile-translations`). Compared by content: git does not keep file times."""
    compiled_now = io.BytesIO()
    write_mo(compiled_now, catalog(language))
    compiled_now.seek(0)
    with open(TRANSLATIONS / language / "LC_MESSAGES" / "messages.mo", "rb") as committed:
        assert mo_content(committed) == mo_content(compiled_now), "run make compile-translations and commit the .mo"


def mo_content(file) -> dict:
    return {texts(tuple(message.id) if isinstance(message.id, list) else message.id):
            texts(tuple(message.string) if isinstance(message.string, list) else message.string)
            for message in read_mo(file)}


# -- a page's language -----------------------------------------------------------------------------


def set_language(page: SignupPage, language: str | None) -> None:
    page.language = language
    db.session.commit()


def test_a_page_speaks_its_own_language_whatever_the_browser_asks(client, page):
    set_language(page, "id")
    response = client.get("/signup/demo", headers={"Accept-Language": "es-MX,es;q=0.9"})
    html = response.get_data(as_text=True)

    assert '<html lang="id">' in html
    assert "Hubungkan WhatsApp" in html and "Connect WhatsApp</button>" not in html
    settings = widget_settings(html)
    assert settings["language"] == "id"
    assert settings["text"]["connected_title"] == "Anda sudah terhubung"
    assert settings["text"]["states"]["ok"] == "Selesai"
    assert settings["sdk_url"] == "https://connect.facebook.net/id_ID/sdk.js"


@pytest.mark.parametrize(("header", "lang", "button", "sdk_locale"), [
    ("pt-BR,pt;q=0.9,en;q=0.5", "pt-BR", "Conectar o WhatsApp", "pt_BR"),
    ("es-AR", "es", "Conectar WhatsApp", "es_LA"),
    ("id-ID,id;q=0.9", "id", "Hubungkan WhatsApp", "id_ID"),
    ("de-DE,fr;q=0.8", "en", "Connect WhatsApp", "en_US"),
    (None, "en", "Connect WhatsApp", "en_US"),
])
def test_a_page_without_a_language_speaks_the_browsers(client, page, header, lang, button, sdk_locale):
    headers = {"Accept-Language": header} if header else {}
    response = client.get("/signup/demo", headers=headers)
    html = response.get_data(as_text=True)

    assert f'<html lang="{lang}">' in html
    assert f">{button}</button>" in html
    assert widget_settings(html)["sdk_url"] == f"https://connect.facebook.net/{sdk_locale}/sdk.js"
    assert response.headers["Vary"] == "Accept-Language"


def test_each_language_of_a_cached_page_is_kept_apart(client, page):
    """The page is cached per process: a visitor in Jakarta after one in São Paulo still reads Indonesian."""
    portuguese = client.get("/signup/demo", headers={"Accept-Language": "pt-BR"}).get_data(as_text=True)
    indonesian = client.get("/signup/demo", headers={"Accept-Language": "id"}).get_data(as_text=True)
    again = client.get("/signup/demo", headers={"Accept-Language": "pt-BR"}).get_data(as_text=True)

    assert "Conectar o WhatsApp" in portuguese and "Hubungkan WhatsApp" in indonesian
    assert again == portuguese


def test_a_missing_page_is_explained_in_the_browsers_language(client):
    response = client.get("/signup/nowhere", headers={"Accept-Language": "es"})
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "No existe la página de registro" in html and "Volver" in html


def test_the_admin_stays_english(client, page):
    response = client.get("/admin/login", headers={"Accept-Language": "id"})
    assert '<html lang="en">' in response.get_data(as_text=True)


# -- the onboarding's answers and Meta ----------------------------------------------------------------


@pytest.fixture
def code_requests(monkeypatch):
    """The ``language`` of every request_code call esu makes to Graph."""
    languages: list[str] = []
    original = GraphClient.request_code

    def spy(self, phone_number_id, method, language, token):
        languages.append(language)
        return original(self, phone_number_id, method, language, token)

    monkeypatch.setattr(GraphClient, "request_code", spy)
    return languages


def test_the_code_is_asked_for_and_explained_in_the_pages_language(simulator, client, csrf_token, page,
                                                                    post_callback, code_requests):
    """Graph's request_code takes the language of the SMS or call (business-phone-numbers.md, "Verify phone
    numbers": a language code from templates/supported-languages.md, e.g. pt_BR)."""
    set_language(page, "pt_BR")
    ref = new_ref()
    body = post_callback(simulator.signup(phone_verified=False), client_ref=ref).get_json()
    assert body["status"] == "awaiting_verification"
    labels = {step["name"]: step["label"] for step in body["steps"]}
    assert labels["register_phone"] == "Registrar o número de telefone"

    headers = {"X-CSRFToken": csrf_token, "Accept-Language": "en"}  # the page's own language wins
    url = f"/signup/demo/onboardings/{ref}/request-code"
    assert client.post(url, json={"method": "SMS"}, headers=headers).status_code == 200
    again = client.post(url, json={"method": "SMS"}, headers=headers)

    assert code_requests == ["pt_BR"]
    assert again.status_code == 429
    assert again.get_json()["error"].startswith("Um código acabou de ser enviado; peça de novo em ")
    wrong = client.post(f"/signup/demo/onboardings/{ref}/verify-code", json={"code": "654321"}, headers=headers)
    assert wrong.status_code == 400
    assert wrong.get_json()["error"] == "O código não confere. Verifique e tente de novo."
    short = client.post(f"/signup/demo/onboardings/{ref}/verify-code", json={"code": "12"}, headers=headers)
    assert short.status_code == 400
    assert short.get_json()["fields"] == {"code": "deve ser o código de 6 dígitos enviado pela Meta"}


def test_what_is_wrong_with_a_callback_is_said_in_the_pages_language(client, csrf_token, page):
    """Field by field, as the widget or an integration reads it: the page speaks Spanish, so do its refusals."""
    set_language(page, "es")
    response = client.post("/signup/demo/callback", json={"code": "", "waba_id": "12a", "client_ref": "short"},
                           headers={"X-CSRFToken": csrf_token, "Accept-Language": "id"})

    assert response.status_code == 400
    assert response.get_json() == {"error": "solicitud no válida", "fields": {
        "code": "es obligatorio: el código del authResponse de FB.login",
        "waba_id": "debe ser una cadena de dígitos, como la envía Meta",
        "client_ref": "debe tener de 16 a 64 letras, dígitos, '-' o '_'"}}


def test_a_refused_security_token_is_explained_in_the_widgets_language(client, page):
    """Flask-WTF's own reason, inside esu's sentence, in the language the widget sends."""
    response = client.post("/signup/demo/callback", json={"code": "AQ"}, headers={"Accept-Language": "es"})
    assert response.status_code == 400
    assert response.get_json()["error"] == ("Falta el token de seguridad del formulario o caducó: Falta el "
                                            "token de seguridad. Vuelve a cargar la página e inténtalo de nuevo.")


def test_a_browser_language_page_asks_for_the_code_in_the_widgets_language(simulator, client, csrf_token, page,
                                                                             post_callback, code_requests):
    """The widget sends its page's language as Accept-Language on its calls."""
    ref = new_ref()
    post_callback(simulator.signup(phone_verified=False), client_ref=ref)
    response = client.post(f"/signup/demo/onboardings/{ref}/request-code", json={"method": "VOICE"},
                           headers={"X-CSRFToken": csrf_token, "Accept-Language": "id"})
    assert response.status_code == 200
    assert code_requests == ["id"]


# -- the admin and the command line ---------------------------------------------------------------------

pytest_plugins = ["tests.admin_fixtures"]  # the admin fixtures: admin, stored_admin, count_queries…


def test_the_admin_chooses_a_pages_language_and_the_customer_reads_it(admin, client):
    created = admin.post("/admin/pages/new", data={**VALID, "language": "es"})
    assert created.status_code == 302
    edit = admin.get(created.headers["Location"]).get_data(as_text=True)
    assert '<option selected value="es">Español</option>' in edit
    assert "Conectar WhatsApp" in client.get("/signup/spring-sale", headers={"Accept-Language": "id"}).get_data(
        as_text=True)

    assert admin.post(created.headers["Location"], data={**VALID, "language": ""}).status_code == 302
    assert db.session.scalar(sa.select(SignupPage.language)) is None
    assert "Hubungkan WhatsApp" in client.get("/signup/spring-sale", headers={"Accept-Language": "id"}).get_data(
        as_text=True)


def test_a_language_esu_does_not_ship_is_refused(admin):
    response = admin.post("/admin/pages/new", data={**VALID, "language": "fr"})
    assert response.status_code == 200
    assert "Not a valid choice" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(SignupPage.id)) is None



def test_pages_create_takes_a_language_and_defaults_to_the_browsers(runner):
    assert runner.invoke(args=["pages", "create", "jakarta", "--title", "Hubungkan", "--language", "id"]).exit_code == 0
    assert runner.invoke(args=["pages", "create", "anywhere", "--title", "Connect"]).exit_code == 0
    refused = runner.invoke(args=["pages", "create", "paris", "--title", "Connecter", "--language", "fr"])

    assert refused.exit_code == 2
    languages = dict(db.session.execute(sa.select(SignupPage.slug, SignupPage.language)).all())
    assert languages == {"jakarta": "id", "anywhere": None}


# -- the simulator's SDK and dialog ---------------------------------------------------------------------


def test_the_stand_in_sdk_is_served_per_locale_and_its_dialog_speaks_it(simulator_app):
    client = simulator_app.test_client()
    sdk = client.get("/_meta/es_LA/sdk.js")
    assert sdk.status_code == 200 and b"searchParams.set('locale', locale)" in sdk.data
    sdk.close()
    assert client.get("/_meta/spanish/sdk.js").status_code == 404

    dialog = client.get("/_meta/dialog/oauth", query_string={
        "origin": "https://shop.example", "locale": "es_LA", "extras": json.dumps({})})
    html = dialog.get_data(as_text=True)
    assert '<html lang="es">' in html
    assert "Tu portafolio comercial" in html and ">Continuar</button>" in html and ">Finalizar</button>" in html
    assert "Informar un problema" in html
