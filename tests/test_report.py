"""The HTML report of a history: one self-contained file with every entry, escaped text, small
previews (or the originals), and the ways to write it: ``History.export_html``,
``%aigate history --export`` and ``python -m aigate_nb report``."""

from __future__ import annotations

import base64
import hashlib
import io
import random
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from aigate_nb.core.errors import InputError
from aigate_nb.core.images import ReplyImage
from aigate_nb.core.results import ImageResult
from aigate_nb.gateway.client import Client
from aigate_nb.records.report import ENTRY_BUDGET, PREVIEW_EDGE, build_report
from aigate_nb.records.store import History
from support import TEST_KEY, make_story

REPO = Path(__file__).resolve().parent.parent
HOSTILE = '</script><script>window.pwned=1</script> <img src=x onerror="window.pwned=2"> a fox & "quotes"'


class Page(HTMLParser):
    """What the report holds, read as a browser's parser reads it."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._in: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in = tag if tag in ("script", "style") else None

    def handle_data(self, data):
        if self._in == "script":
            self.scripts.append(data)
        elif self._in == "style":
            self.styles.append(data)

    def handle_endtag(self, tag):
        self._in = None

    def all(self, tag: str, **wanted: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag and all(
            (attrs.get(key) or "").split().count(value) if key == "class" else attrs.get(key) == value
            for key, value in wanted.items()
        )]


@pytest.fixture(scope="module")
def story(emulator, tmp_path_factory) -> History:
    """The emulator-made story of test_browse, and [11], whose prompt is markup."""
    history = History("story", tmp_path_factory.mktemp("report"))
    with Client(api_key=TEST_KEY, base_url=emulator.url, timeout=(5, 30)) as client:
        make_story(client, history)
        history.append(client.generate(HOSTILE))
    return history


@pytest.fixture(scope="module")
def report(story) -> str:
    return build_report(story)


def photo(size=(1600, 1200), seed=1) -> bytes:
    """A noisy PNG that compresses as badly as a photo."""
    noise = Image.frombytes("RGB", size, random.Random(seed).randbytes(size[0] * size[1] * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG")
    return buffer.getvalue()


# -- what it holds --------------------------------------------------------------------------------


def test_every_entry_has_one_figure_with_its_preview_and_record(story, report):
    page = Page(report)
    figures = page.all("figure", **{"class": "card"})
    assert [figure["data-i"] for figure in figures] == [str(entry.index) for entry in story]
    previews = page.all("img", loading="lazy")
    assert len(previews) == len(story) and all(img["src"].startswith("data:image/jpeg;base64,") for img in previews)
    door = story[0]
    for text in (door.prompt, door.model, "3:2", "1K", "1376×" if door.size[0] == 1376 else f"{door.size[0]}×",
                 "chat (/v1/chat/completions)", "google (generateContent)", door.created, door.id, door.sha256,
                 "Lineage", "Edited from"):
        assert text in report
    assert '<a class="from" href="#e1" data-go="1">from [1]</a>' in report  # [2] was edited from [1]


def test_the_model_text_and_usage_are_in_the_record(story, report):
    assert "<dt>Model's text</dt>" in report and "Here is the image: a lighthouse at dusk" in report
    assert re.search(r"<dd>input [\d,]+ · image [\d,]+ · text [\d,]+( · thinking [\d,]+)? tokens</dd>", report)


def test_cost_shows_when_an_entry_has_one(emu, client, tmp_path):
    history = History("priced", tmp_path)
    result = client.generate("a priced teapot")
    result.cost, result.cost_source = 0.039, "table"
    history.append(result)
    unpriced = client.generate("an unpriced teapot")
    unpriced.cost, unpriced.cost_source = None, None  # a model no price table knows
    history.append(unpriced)
    text = build_report(history)
    assert "$0.039 (estimated from a price table)" in text
    assert "cost $0.04 (known for 1 of 2)" in text


def test_the_tree_nests_a_fork_as_branches_and_keeps_a_chain_in_one_line(report):
    tree = report[report.index('<section id="tree"'):report.index("</section>", report.index('<section id="tree"'))]
    fork = re.search(r'<li data-i="1">.*?<div class="fork" aria-label="3 branches">', tree)
    assert fork is not None
    branches = re.findall(r'<ul class="line branch"><li data-i="(\d+)">', tree)
    assert branches == ["2", "3", "4"]
    # the chain [5] -> [6] -> [7] is three items of one list, with no branches
    assert re.search(r'<ul class="line"><li data-i="5">.*?</li><li data-i="6">.*?</li><li data-i="7">', tree)


def test_the_search_box_and_the_model_list_are_there(story, report):
    page = Page(report)
    assert page.all("input", type="search", id="q")
    options = [attrs["value"] for attrs in page.all("option")]
    assert options == ["", "google/gemini-3-pro-image", "google/gemini-3.1-flash-image-preview"]


# -- self-contained and safe ----------------------------------------------------------------------------


def test_nothing_is_loaded_from_anywhere(report):
    page = Page(report)
    for tag, attrs in page.tags:
        for name in ("src", "href"):
            value = attrs.get(name)
            assert value is None or value.startswith(("data:", "#")), (tag, attrs)
    assert not page.all("link") and not [attrs for attrs in page.all("script") if "src" in attrs]
    assert "http://" not in "".join(page.scripts + page.styles) and "https://" not in report


def test_the_policy_lets_exactly_this_script_and_style_run(report):
    page = Page(report)
    [policy] = [attrs["content"] for attrs in page.all("meta") if attrs.get("http-equiv") == "Content-Security-Policy"]
    [script], [style] = page.scripts, page.styles

    def digest(text):
        return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()

    assert f"script-src '{digest(script)}'" in policy and f"style-src '{digest(style)}'" in policy
    assert "default-src 'none'" in policy and "img-src data:" in policy


def test_a_prompt_full_of_markup_is_shown_as_text(story, report):
    page = Page(report)
    assert len(page.scripts) == 1 and "pwned" not in page.scripts[0]
    assert report.count("<script") == 1 and report.count("</script>") == 1
    assert not [attrs for _, attrs in page.tags if any(name.startswith("on") for name in attrs)]
    assert not page.all("img", src="x")
    assert "&lt;/script&gt;&lt;script&gt;window.pwned=1&lt;/script&gt; &lt;img src=x onerror=" in report


# -- size ----------------------------------------------------------------------------------------------


def test_each_entry_stays_within_its_budget_and_full_size_embeds_the_originals(tmp_path):
    history = History("photos", tmp_path)
    originals = [photo(seed=seed) for seed in (1, 2)]
    history.append(ImageResult([ReplyImage("image/png", data) for data in originals], prompt="two noisy photos",
                               model="google/gemini-3-pro-image"))
    history.append(ImageResult([ReplyImage("image/png", photo((2400, 1000), 3))], prompt="a wide noisy photo",
                               model="google/gemini-3-pro-image"))
    empty = len(build_report(History("none", tmp_path)))
    small = build_report(history)
    assert len(small) - empty <= 2 * ENTRY_BUDGET
    for figure in re.findall(r'<figure class="card".*?</figure>', small, re.S):
        assert len(figure) <= ENTRY_BUDGET
    assert base64.b64encode(originals[0]).decode() not in small
    full = build_report(history, full_size=True)
    assert all(base64.b64encode(data).decode() in full for data in originals)
    assert '<template class="full"><img src="data:image/png;base64,' in full


def test_an_entry_with_a_million_character_prompt_stays_within_its_budget(tmp_path):
    history = History("long", tmp_path)
    worst = 'fox "&<' * 150_000  # over a million characters, most of them escaped to 4 to 6 bytes
    inputs = [{"sha256": "0" * 64}] + [{"sha256": "1" * 64, "name": worst} for _ in range(40)]
    history.append(ImageResult([ReplyImage("image/png", photo(seed=5))], prompt=worst, text=worst,
                               model="google/gemini-3-pro-image", inputs=inputs))
    report = build_report(history)
    figure = re.search(r'<figure class="card".*?</figure>', report, re.S).group()
    line = re.search(r'<section id="tree".*?</section>', report, re.S).group()
    assert len(figure.encode()) + len(line.encode()) <= ENTRY_BUDGET
    assert '<img src="data:image/jpeg;base64,' in figure and "(cut: 1,050,000 characters in all)" in figure


def test_a_second_export_reuses_the_previews_kept_in_the_history(story, report, tmp_path):
    kept = sorted(path.name for path in (story.folder / "thumbs").iterdir())
    assert kept == sorted(name for entry in story for name in (f"{entry.id}.jpg", f"{entry.id}-1-{PREVIEW_EDGE}.jpg"))
    first = (story.folder / "thumbs" / kept[0]).stat().st_mtime_ns
    story.export_html(tmp_path / "again.html")
    assert (story.folder / "thumbs" / kept[0]).stat().st_mtime_ns == first


def test_an_entry_whose_file_is_gone_still_shows_its_record(emu, client, tmp_path):
    history = History("gone", tmp_path)
    kept = history.append(client.generate("a sandcastle"))
    history.append(client.generate("a wave"))
    assert history.wait_for_thumbnails(timeout=30)
    kept.path.unlink()
    shutil.rmtree(history.folder / "thumbs")  # no preview was kept of it (a history written before)
    text = build_report(history)
    assert text.count('<figure class="card"') == 2 and "image file gone" in text and "a sandcastle" in text


def test_an_empty_history_makes_a_report_that_says_so(tmp_path):
    text = build_report(History("blank", tmp_path))
    assert "This history is empty" in text and "0 entries" in text


# -- writing it -----------------------------------------------------------------------------------------


def test_export_html_writes_the_file_and_a_folder_gets_the_history_name(story, tmp_path):
    (tmp_path / "sub").mkdir()
    written = story.export_html(tmp_path / "sub" / "report.html")
    assert written == tmp_path / "sub" / "report.html" and written.read_text().startswith("<!doctype html>")
    (tmp_path / "out").mkdir()
    assert story.export_html(tmp_path / "out") == tmp_path / "out" / "story.html"
    assert not list(tmp_path.glob("**/.*.tmp"))


def test_an_unwritable_path_says_so_in_one_line(story, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(InputError, match=r"Cannot write the report to .*a-file/report.html .*folder you can write to"):
        story.export_html(tmp_path / "a-file" / "report.html")
    with pytest.raises(InputError, match="takes the path of the file to write"):
        story.export_html("")


def test_the_command_line_writes_a_notebooks_report(story, tmp_path):
    copy = tmp_path / ".aigate" / "story"
    shutil.copytree(story.folder, copy)
    out = tmp_path / "report.html"
    done = subprocess.run([sys.executable, "-m", "aigate_nb", "report", str(copy), "-o", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Report of history 'story': {len(story)} entries, ")
    assert out.read_text().count('<figure class="card"') == len(story)


def test_the_command_line_names_the_histories_of_a_history_dir(story, tmp_path):
    shutil.copytree(story.folder, tmp_path / ".aigate" / "story")
    done = subprocess.run([sys.executable, "-m", "aigate_nb", "report", str(tmp_path / ".aigate")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"python -m aigate_nb report: {tmp_path / '.aigate'} holds the histories of several notebooks; "
        f"name one: {tmp_path / '.aigate' / 'story'}."
    )
    missing = subprocess.run([sys.executable, "-m", "aigate_nb", "report", str(tmp_path / "nowhere")],
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert missing.returncode == 2 and "is not a folder" in missing.stderr
