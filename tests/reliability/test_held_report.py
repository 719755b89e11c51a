"""Markup in a history cannot run in its HTML report: 38 payloads (script tags, event handlers,
``javascript:`` URLs, ``</style>``, SVG, ``<iframe srcdoc>``, CSS ``url()``, comment and
template-literal breaks, ``</script>`` inside JSON, look-alike and invisible characters), each
in every text field of an entry, make no element, no attribute and no event handler; the
page's script, style and Content-Security-Policy are exactly those of a harmless report, and
every payload shows as the text it is. The same report in Chromium: tests/browser/test_held_report_in_browser.py.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hostile_history import LOOP_PROMPTS, PAYLOADS, hostile_history, small_png

from aigate_nb.core.images import ReplyImage
from aigate_nb.core.results import ImageResult
from aigate_nb.records.report import _ASSETS
from aigate_nb.records.store import History

#: Attributes whose value a browser loads or runs.
URL_ATTRIBUTES = {"src", "href", "srcdoc", "action", "formaction", "xlink:href", "data", "poster", "background",
                  "style", "content"}


class Parsed(HTMLParser):
    """The report as a browser's tokenizer splits it: elements, attributes, text, script, style."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.comments: list[str] = []
        self._in: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in = tag if tag in ("script", "style") else None

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        {"script": self.scripts, "style": self.styles}.get(self._in, self.text).append(data)

    def handle_comment(self, data):
        self.comments.append(data)

    def policy(self) -> str:
        [policy] = [attrs["content"] for tag, attrs in self.tags
                    if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"]
        return policy


@pytest.fixture(scope="module")
def harmless(tmp_path_factory) -> Parsed:
    """The report of a history of an ordinary entry and its edit: the shape every report must keep."""
    history = History("harmless", tmp_path_factory.mktemp("harmless"))
    inputs = [{"name": "a.png"}, {"name": "b.png"}, {"name": "c.png"}]
    history.append(ImageResult([ReplyImage("image/png", small_png())], "an ordinary picture", "google/some-model",
                               parent_id="an-entry-elsewhere", finish_reason="SAFETY", text="a reply",
                               inputs=inputs, region={"box": [1, 2, 3, 4], "crop": [0, 0, 6, 7]}))
    history.append(ImageResult([ReplyImage("image/png", small_png())], "an edit of it", "google/some-model"),
                   parent=0)
    return Parsed(history.export_html(history.folder.parent / "harmless.html", full_size=True).read_text())


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[History, str]:
    history = hostile_history(tmp_path_factory.mktemp("hostile"))
    assert len(history) == len(PAYLOADS) + 1 + len(LOOP_PROMPTS), "every hostile line was read as an entry"
    report = history.export_html(history.folder.parent / "hostile.html", full_size=True)
    return history, report.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def parsed(hostile) -> Parsed:
    return Parsed(hostile[1])


def test_no_payload_makes_an_element_of_a_kind_a_report_does_not_have(parsed, harmless):
    kinds = {tag for tag, _ in parsed.tags}
    assert kinds <= {tag for tag, _ in harmless.tags}, kinds - {tag for tag, _ in harmless.tags}
    for tag in ("script", "style", "meta", "base", "link", "title"):
        assert sum(name == tag for name, _ in parsed.tags) == sum(name == tag for name, _ in harmless.tags), tag


def test_no_payload_makes_an_attribute_or_an_event_handler(parsed, harmless):
    names = {name for _, attrs in parsed.tags for name in attrs}
    assert names <= {name for _, attrs in harmless.tags for name in attrs}, names
    assert not [name for name in names if name.startswith("on")]


def test_nothing_a_browser_loads_or_runs_holds_a_payload(parsed):
    for tag, attrs in parsed.tags:
        for name, value in attrs.items():
            if name not in URL_ATTRIBUTES or value is None:
                continue
            if (tag, name) == ("img", "src"):
                # A full-size original's type comes from the index as written, so a payload can be
                # the type of its data: URL; an image's URL never runs, whatever its type says.
                assert value.startswith("data:") and ";base64," in value, value[:120]
                continue
            assert "pwned" not in value and "javascript:" not in value.lower(), (tag, name, value[:120])
            if name == "href":
                assert value.startswith("#"), (tag, name, value[:120])


def test_the_script_the_style_and_the_policy_are_exactly_a_harmless_reports(parsed, harmless):
    assert parsed.scripts == [(_ASSETS / "report.js").read_text(encoding="utf-8")] == harmless.scripts
    assert parsed.styles == [(_ASSETS / "report.css").read_text(encoding="utf-8")] == harmless.styles
    assert parsed.policy() == harmless.policy()
    assert "default-src 'none'" in parsed.policy() and "'unsafe-inline'" not in parsed.policy()
    assert parsed.comments == harmless.comments == []


@pytest.mark.parametrize("payload", PAYLOADS, ids=[f"payload{k}" for k in range(len(PAYLOADS))])
def test_each_payload_shows_as_the_text_it_is(hostile, parsed, payload):
    history, text = hostile
    entry = next(entry for entry in history if entry.prompt == payload)
    card = text[text.index(f'<figure class="card" id="e{entry.index}"'):]
    card = card[:card.index("</figure>") + len("</figure>")]
    shown = Parsed(card)
    assert [tag for tag, _ in shown.tags].count("figure") == 1
    # The prompt in its paragraph, and the model's reply in the record, each as typed.
    assert shown.text.count(payload) >= 2, shown.text
