"""The exported report opened from ``file://`` in headless Chromium, as a colleague would open
it from an e-mail: every entry shows, the search box narrows the list as Python's search
does, the tree's fork leads to the chain back to the first image, and markup in a prompt
stays text."""

from __future__ import annotations

import pytest
from PIL import Image

from aigate_nb.gateway.client import Client
from aigate_nb.records.store import History
from support import TEST_KEY, make_story, wait_for

from .conftest import copy_to_docs

pytestmark = pytest.mark.browser

HOSTILE = '</script><script>window.pwned=1</script><img src=x onerror="window.pwned=2"> a fox in the snow'


@pytest.fixture(scope="module")
def exported(emulator, tmp_path_factory):
    """An emulator-made history (a fork, a chain, another model, a prompt of markup) and its report."""
    folder = tmp_path_factory.mktemp("report-browser")
    history = History("client-review", folder)
    with Client(api_key=TEST_KEY, base_url=emulator.url, timeout=(5, 30)) as client:
        make_story(client, history)
        history.append(client.generate(HOSTILE))
    return history, history.export_html(folder / "report.html")


@pytest.fixture
def report_page(page, exported):
    """The report open in a fresh page, with every console error and page error collected."""
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(exported[1].as_uri())
    page.errors = errors
    return page


def visible_numbers(page) -> list[int]:
    return page.eval_on_selector_all("#grid .card:not([hidden])", "cards => cards.map(c => Number(c.dataset.i))")


def test_the_report_shows_one_figure_per_entry_with_its_picture(report_page, exported):
    history, _ = exported
    assert report_page.locator("#grid figure.card").count() == len(history)
    assert wait_for(lambda: report_page.evaluate(
        "() => Array.from(document.querySelectorAll('#grid .open img'))"
        ".every(img => img.complete && img.naturalWidth > 0)"
    ), timeout=15)
    assert report_page.locator("#count").inner_text() == f"{len(history)} entries"
    assert report_page.errors == []


def test_typing_in_the_search_box_narrows_the_list_as_python_does(report_page, exported):
    history, _ = exported
    report_page.keyboard.press("/")  # the search box's key
    assert report_page.evaluate("document.activeElement.id") == "q"
    report_page.keyboard.type("red door")
    expected = [entry.index for entry in history.search("red door")]
    assert len(expected) < len(history)
    wait_for(lambda: visible_numbers(report_page) == expected)
    assert report_page.locator("#count").inner_text() == f"{len(expected)} of {len(history)} entries"
    report_page.select_option("#model", "google/gemini-3-pro-image")
    assert visible_numbers(report_page) == []
    assert report_page.locator("#nothing").inner_text() == "No entry matches \u201cred door\u201d."
    report_page.focus("#q")
    report_page.keyboard.press("Escape")  # empties the search box
    assert report_page.input_value("#q") == ""
    assert visible_numbers(report_page) == [entry.index for entry in history.filter(model="gemini-3-pro-image")]


def test_following_a_fork_in_the_tree_shows_the_chain_back_to_the_first_image(report_page, exported, artifacts):
    history, _ = exported
    report_page.click("#show-tree")
    assert report_page.locator("#grid").is_hidden() and report_page.locator("#tree").is_visible()
    fork = report_page.locator('#tree li[data-i="1"] > .fork')
    assert fork.get_attribute("aria-label") == "3 branches"
    branches = fork.locator(":scope > .branch > li > .node .num")
    assert branches.all_inner_texts() == ["[2]", "[3]", "[4]"]
    report_page.screenshot(path=str(artifacts / "report-tree.png"))
    fork.locator(':scope > .branch > li[data-i="3"] > .node').click()
    dialog = report_page.locator("#detail")
    assert dialog.is_visible()
    chain = dialog.locator(".chain .node .num").all_inner_texts()
    assert chain == [f"[{entry.index}]" for entry in history.lineage(3)] == ["[0]", "[1]", "[3]"]
    assert dialog.locator('.chain .node[aria-current="true"] .num').inner_text() == "[3]"
    # and back up the chain: [1] shows its three edits, the fork
    dialog.locator('.chain .node[data-go="1"]').click()
    assert dialog.locator(".forks .node .num").all_inner_texts() == ["[2]", "[3]", "[4]"]
    report_page.keyboard.press("Escape")
    assert dialog.is_hidden()


def test_the_tree_keeps_the_ancestors_of_what_the_search_finds(report_page):
    report_page.click("#show-tree")
    report_page.fill("#q", "cat")
    shown = report_page.eval_on_selector_all("#tree li:not([hidden])", "items => items.map(i => i.dataset.i)")
    dimmed = report_page.eval_on_selector_all("#tree li.dim:not([hidden])", "items => items.map(i => i.dataset.i)")
    assert shown == ["0", "1", "3"] and dimmed == ["0", "1"]


def test_markup_in_a_prompt_shows_as_text_and_never_runs(report_page, exported):
    history, _ = exported
    hostile = history[-1]
    card = report_page.locator(f"#e{hostile.index}")
    assert card.locator(".prompt").inner_text() == HOSTILE
    card.locator(".open").click()
    assert report_page.locator("#detail-title").inner_text() == f"[{hostile.index}] {HOSTILE}"
    assert report_page.evaluate("typeof window.pwned") == "undefined"
    assert report_page.locator("img[src='x']").count() == 0
    assert report_page.errors == []


def test_the_report_as_a_client_sees_it(browser, exported, artifacts):
    """The README's picture: the grid in a window the size of a laptop's."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, color_scheme="light")
    page = context.new_page()
    try:
        page.goto(exported[1].as_uri())
        wait_for(lambda: page.evaluate(
            "() => Array.from(document.querySelectorAll('#grid .open img'))"
            ".every(img => img.complete && img.naturalWidth > 0)"))
        page.wait_for_timeout(200)  # let the decoded pictures paint
        screenshot = artifacts / "report.png"
        page.screenshot(path=str(screenshot))
        # What the picture must show: every card, side by side, with no sideways scrolling.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        tops = page.eval_on_selector_all("#grid .open img", "imgs => imgs.map(i => i.getBoundingClientRect().top)")
        assert len(tops) == len(exported[0]) and len(set(tops)) < len(tops), "the cards sit side by side"
        with Image.open(screenshot) as shot:
            assert shot.size == (1280, 860) and len(shot.convert("L").getcolors() or ()) > 50, "the page painted"
        copy_to_docs(screenshot)
    finally:
        context.close()
