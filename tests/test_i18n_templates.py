"""No template shows words that do not go through gettext: a customer-facing one would stay English in every
language (the catalog tests only see what is marked), and the admin, which speaks English, is ready for a
translation.

A template's words are found the way a reader meets them, not from a list: the text between its tags and
the visible attributes (``title``, ``placeholder``, ``aria-label``, ``alt``, ``data-label``) once Jinja's own
lexer has taken out what is computed (``{{ … }}``, ``{% … %}``) and what is translated (``{% trans %}``
blocks); and the string literals a template hands to be shown (``{{ "text" }}``, ``{{ x or "text" }}``, a
macro's arguments such as ``dl_row("Label", …)``, ``{% set title = "text" %}``). Code (``<code>``, ``<pre>``)
is not words.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from jinja2 import Environment, nodes

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = sorted((ROOT / "esu").glob("**/templates/**/*.html"))
#: Stands for whatever Jinja computes there; not a letter, so it is never taken for a word.
COMPUTED = "\ue000"
WORD = re.compile(r"[^\W\d_]")
VISIBLE_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "data-label"}
NOT_WORDS = {"code", "pre", "script", "style", "kbd", "samp"}
#: Calls whose string arguments are names, not words: translation itself, addresses, lookups.
NAME_CALLS = {"_", "gettext", "ngettext", "url_for", "get", "step", "resume_link", "get_flashed_messages"}
#: A macro's keyword arguments that are shown as they are.
SHOWN_KEYWORDS = {"label", "placeholder", "title", "text"}

ENVIRONMENT = Environment(extensions=["jinja2.ext.i18n"])


def skeleton(source: str) -> str:
    """The template's HTML with every Jinja construct, and every {% trans %} block whole, replaced by
    :data:`COMPUTED`."""
    parts: list[str] = []
    in_trans = False
    tokens = list(ENVIRONMENT.lex(source))
    for index, (_line, kind, value) in enumerate(tokens):
        if kind == "block_begin":
            name = next((v for _l, k, v in tokens[index + 1:] if k == "name"), None)
            if name == "trans":
                in_trans = True
            elif name == "endtrans":
                in_trans = False
                parts.append(COMPUTED)
        if kind == "data" and not in_trans:
            parts.append(value)
        elif not parts or parts[-1] != COMPUTED:
            parts.append(COMPUTED)
    return "".join(parts)


class Words(HTMLParser):
    """Words a reader sees: text outside code, and the visible attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.open_code: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in VISIBLE_ATTRIBUTES and value and WORD.search(value):
                self.found.append(f'{name}="{value}"')
        if tag in NOT_WORDS:
            self.open_code.append(tag)

    def handle_endtag(self, tag):
        if tag in self.open_code:
            del self.open_code[len(self.open_code) - 1 - self.open_code[::-1].index(tag):]

    def handle_data(self, data):
        if not self.open_code and WORD.search(data):
            self.found.append(" ".join(data.replace(COMPUTED, "…").split()))


def shown_literals(node: nodes.Node, shown: bool = False) -> list[str]:
    """The string literals in ``node`` that end up on the page, as Jinja parsed them."""
    if isinstance(node, nodes.Const):
        return [node.value] if shown and isinstance(node.value, str) and WORD.search(node.value) else []
    if isinstance(node, nodes.Output):
        return [text for child in node.nodes for text in shown_literals(child, not isinstance(
            child, nodes.TemplateData))]
    if isinstance(node, nodes.Call):
        callee = node.node
        name = callee.name if isinstance(callee, nodes.Name) else getattr(callee, "attr", None)
        if name in NAME_CALLS:
            return []
        found = [text for arg in node.args for text in shown_literals(arg, True)]
        found += [text for kw in node.kwargs if kw.key in SHOWN_KEYWORDS for text in shown_literals(kw.value, True)]
        return found + shown_literals(callee)
    if isinstance(node, nodes.Assign):  # {% set title = "…" %}, shown wherever {{ title }} is
        return shown_literals(node.node, True)
    if isinstance(node, nodes.CondExpr):
        return shown_literals(node.test) + shown_literals(node.expr1, shown) + (
            shown_literals(node.expr2, shown) if node.expr2 else [])
    if isinstance(node, (nodes.Or, nodes.And, nodes.Concat, nodes.Add)):
        return [text for child in node.iter_child_nodes() for text in shown_literals(child, shown)]
    if isinstance(node, (nodes.Compare, nodes.Test, nodes.Getitem, nodes.Getattr)):
        return []
    if isinstance(node, nodes.Filter):  # what a filter is given is its setting; what it filters is shown
        return shown_literals(node.node, shown) if node.node is not None else []
    return [text for child in node.iter_child_nodes() for text in shown_literals(child)]


def untranslated(path: Path) -> list[str]:
    source = path.read_text()
    words = Words()
    words.feed(skeleton(source))
    words.close()
    return words.found + [f'"{text}"' for text in shown_literals(ENVIRONMENT.parse(source))]


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: str(path.relative_to(ROOT / "esu")))
def test_every_word_of_a_template_goes_through_gettext(path):
    assert untranslated(path) == [], "wrap these in {{ _(\"…\") }} or {% trans %}…{% endtrans %}"


def test_the_scan_finds_words_outside_gettext(tmp_path):
    """The scan itself: it sees plain text, visible attributes and shown literals, and lets translated text,
    computed values, names and code be."""
    template = tmp_path / "sample.html"
    template.write_text(
        '<h1 title="Plain title">Plain heading {{ x }}</h1>\n'
        '<p>{{ _("Translated") }} {% trans n=1 %}Also translated {{ n }}{% endtrans %} {{ value }} ·</p>\n'
        '{{ dl_row("Plain label", v) }} {{ dl_row(_("Label"), v) }} {{ x or "Plain fallback" }}\n'
        '<a href="{{ url_for(\'admin.page\', page_id=1) }}" class="status-{{ s }}">{{ s|replace("_", " ") }}</a>\n'
        '{% if status == "applied" %}<code>flask --app wsgi check</code>{% endif %}\n'
        '{{ field(form.q, placeholder="Plain example", autocomplete="off") }}\n'
        '{% set heading = "Plain set" if x else _("Translated") %}{% set css = x|default("plain-css") %}\n')
    assert untranslated(template) == ['title="Plain title"', "Plain heading …", '"Plain label"',
                                      '"Plain fallback"', '"Plain example"', '"Plain set"']
