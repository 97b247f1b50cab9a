"""Whole onboardings in the customer's language, in Chromium: the page, Meta's simulated dialog, the progress
and the result, with no English left on screen (screenshots under test-artifacts/)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from esu.models import Onboarding

from .test_widget import add_page, launch, open_signup, posted, records, result

#: Words of esu's English copy; none may be left on a translated screen. Brand and product names (Meta,
#: WhatsApp Business, Facebook, SMS) are the same in every language and are not on the list.
ENGLISH = re.compile(r"\b(the|your|you|and|with|of|to|is|are|we|our|not|please|again|start|try|done|waiting|"
                     r"failed|connected|continue|finish|cancel|send|verify|code|number|phone|account|setting|"
                     r"step|steps|loading|simulated|options|message|report|problem|review|permissions|profile|"
                     r"portfolio|country|name|website|call|voice|first|then|without|unverified|connect)\b",
                     re.IGNORECASE)
#: Meta's finish events (FINISH, FINISH_ONLY_WABA…), which the simulator's options name as Meta does: names,
#: not words, the same in every language.
META_EVENT = re.compile(r"\bFINISH(_[A-Z0-9]+)*\b")


def english_left(tab) -> list[str]:
    """The English words among what the tab shows (hidden parts are not shown, so not read)."""
    shown = META_EVENT.sub("", tab.locator("body").inner_text())
    return sorted({word.lower() for word in ENGLISH.findall(shown)})


def walk_dialog(dialog, screenshot, name: str) -> None:
    """Through every screen of the dialog, each checked for English, to the last one."""
    while dialog.locator("[data-continue]").is_visible():
        assert english_left(dialog) == [], dialog.locator("[data-screen]:visible").get_attribute("data-screen")
        dialog.locator("[data-continue]").click()
    assert english_left(dialog) == []
    screenshot(dialog, f"{name}-dialog")


def test_a_whole_onboarding_in_indonesian(live_server, tab, screenshot):
    add_page(live_server, "jakarta", "Hubungkan WhatsApp Toko Anda", language="id",
             intro="Daftarkan nomor WhatsApp Business Anda dalam beberapa klik.")
    page = tab()
    open_signup(page, live_server, "jakarta")
    expect(page.locator("html")).to_have_attribute("lang", "id")
    expect(page.locator("[data-esu-launch]")).to_have_text("Hubungkan WhatsApp")
    assert english_left(page) == []
    screenshot(page, "i18n-id-page")

    dialog = launch(page)
    expect(dialog.locator("html")).to_have_attribute("lang", "id")
    expect(dialog.locator("[data-screen=BUSINESS_ACCOUNT_SELECTION] h1")).to_have_text("Portofolio bisnis Anda")
    walk_dialog(dialog, screenshot, "i18n-id")
    dialog.get_by_label("Selesai dengan nomor yang belum diverifikasi").check()
    with dialog.expect_event("close"):
        dialog.get_by_role("button", name="Selesai").click()

    form = page.locator("[data-esu-verify]")
    expect(form).to_be_visible(timeout=SERVER_MS)
    expect(form.get_by_role("heading")).to_have_text("Konfirmasi nomor telepon Anda")
    expect(page.locator("[data-esu-steps] [data-step=register_phone]")).to_contain_text("Perlu kode Anda")
    assert english_left(page) == []
    screenshot(page, "i18n-id-progress")

    form.get_by_label("Panggilan suara").check()
    with page.expect_response(lambda response: response.url.endswith("/request-code")):
        form.get_by_role("button", name="Kirim kode").click()
    expect(page.locator("[data-esu-countdown]")).to_contain_text("Meta sedang menelepon", timeout=SERVER_MS)
    form.get_by_label("Kode 6 digit").fill("123456")
    form.get_by_role("button", name="Verifikasi").click()

    expect(result(page).get_by_role("heading")).to_have_text("Anda sudah terhubung", timeout=SERVER_MS)
    expect(result(page)).to_contain_text("kini dapat mengirim dan menerima pesan WhatsApp")
    expect(page.locator("[data-esu-steps] [data-step=register_phone]")).to_contain_text("Selesai")
    assert english_left(page) == []
    screenshot(page, "i18n-id-result")
    assert [onboarding.status for onboarding in records(live_server, Onboarding)] == ["completed"]


#: What waits for the server's onboarding: the steps call the simulator, which a busy machine slows.
SERVER_MS = 30_000


@pytest.fixture
def tab(chromium):
    """A browser tab, its context made by ``tab(**options)``; console errors fail the test."""
    contexts, errors = [], []

    def watch(message):
        if message.type == "error":
            errors.append(message.text)

    def open_tab(**options):
        context = chromium.new_context(viewport={"width": 1280, "height": 900}, **options)
        context.on("page", lambda page: page.on("pageerror", lambda error: errors.append(str(error))))
        context.on("page", lambda page: page.on("console", watch))
        contexts.append(context)
        return context.new_page()

    yield open_tab
    for context in contexts:
        context.close()
    assert errors == [], f"console errors: {errors}"


def test_a_whole_onboarding_for_a_browser_asking_for_brazilian_portuguese(live_server, tab, screenshot):
    add_page(live_server, "loja", "Conecte o WhatsApp da sua loja")  # the visitor's language (the default)
    page = tab(extra_http_headers={"Accept-Language": "pt-BR"})
    open_signup(page, live_server, "loja")
    expect(page.locator("html")).to_have_attribute("lang", "pt-BR")
    expect(page.locator("[data-esu-launch]")).to_have_text("Conectar o WhatsApp")
    assert english_left(page) == []
    screenshot(page, "i18n-pt-BR-page")

    dialog = launch(page)
    assert "locale=pt_BR" in dialog.url
    expect(dialog.locator("[data-screen=BUSINESS_ACCOUNT_SELECTION] h1")).to_have_text("Seu portfólio empresarial")
    walk_dialog(dialog, screenshot, "i18n-pt-BR")
    with page.expect_response(posted("finish")), dialog.expect_event("close"):
        dialog.get_by_role("button", name="Concluir").click()

    expect(page.locator("[data-esu-message]")).to_have_text("Tudo pronto.", timeout=SERVER_MS)
    expect(result(page).get_by_role("heading")).to_have_text("Você está conectado")
    expect(result(page)).to_contain_text("já pode enviar e receber mensagens do WhatsApp")
    expect(page.locator("[data-esu-steps] [data-step=fetch_templates]")).to_contain_text("Concluído")
    assert english_left(page) == []
    screenshot(page, "i18n-pt-BR-result")
