"""The panel in a real JupyterLab, in headless Chromium: Generate (from the keyboard and by a
click), select, Edit while the kernel runs another cell, Multi-turn and Upload; the gallery
follows a magic cell; a box dragged with the mouse is edited alone (Edit region); the lineage
selects; the gallery's search narrows it and its pages turn; the layout fits at 1280 and at
600 pixels; the saved notebook keeps a small snapshot, which a reopened notebook shows where
the widget cannot be.

``use_the_panel`` and ``edit_a_region_and_browse`` are the flow itself, shared with Notebook 7's test.
"""

from __future__ import annotations

import io
import json
import re
import time

import nbformat
import pytest
import requests
from PIL import Image, ImageChops
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from aigate_nb.records.store import History
from support import wait_for

from .conftest import copy_to_docs

pytestmark = pytest.mark.browser

#: Generous: the first cell also starts the kernel, which is slow on two cores.
LONG = 60_000
#: The edit is held back this long, so that another cell can run while it is in flight.
SLOW_REPLY = 5.0
#: What one panel result may add to the saved notebook, as for a magic cell's result.
RESULT_BUDGET = 250_000
WIDE, NARROW = 1280, 600
#: Notebook 7 puts a cell's outputs in a scroll box when they grow past 100 lines of 1.3 x 14 px.
FOLD_HEIGHT = 100 * 1.3 * 14

PANEL_CELL = "%load_ext aigate_nb\n%aigate panel"
CELLS = [PANEL_CELL, "1 + 1", "%%gemini_image -s 512\na picture from a magic cell"]
PROMPT = "a lighthouse on a cliff at dusk, oil painting"
REGION_PROMPT = "put a red sailboat on the sea"
#: Results the panel makes in the whole flow (one more picture comes from a magic cell).
VARIANTS = 8
PANEL_RESULTS = 5 + 1 + VARIANTS


def write_notebook(server, name: str) -> int:
    """The panel's notebook, unrun; returns its size in bytes."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, server.root / name)
    return (server.root / name).stat().st_size


def open_notebook(page, server, name: str) -> None:
    page.goto(server.notebook_url(name))
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=LONG)
    # A cell run before the kernel is connected is dropped, not queued. (In a narrow window
    # Notebook 7 moves the indicator into the toolbar's overflow menu: it is there, unseen.)
    page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(state="attached", timeout=LONG)


def accept_kernel_choice(page) -> None:
    """JupyterLab and Notebook 7 sometimes ask which kernel to start although the notebook names
    one (when the list of kernels comes in late); the named one is preselected: accept it."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    if not dialog.count():
        return
    # The accept button is the dialog's default (its label differs between versions: "Select",
    # "Select Kernel"); a dialog that closes meanwhile by itself needs nothing more.
    try:
        dialog.locator("button.jp-mod-accept").first.click(timeout=5_000)
    except PlaywrightTimeoutError:
        if dialog.count():
            page.keyboard.press("Enter")
    dialog.wait_for(state="detached", timeout=LONG)


def run_cell(page, index: int) -> None:
    """Select cell ``index`` (command mode, by its prompt), run it with Shift+Enter and wait
    until it has run.

    Right after the page opens, JupyterLab sometimes drops a run although the kernel shows
    as idle: the prompt shows ``[*]`` and falls back to ``[ ]``. Such a run is tried again,
    as is one a kernel dialog got in the way of.
    """
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    prompt = cell.locator(".jp-InputArea-prompt")
    before = prompt.inner_text()
    for _ in range(3):
        accept_kernel_choice(page)
        try:
            cell.locator(".jp-InputPrompt").click(timeout=10_000)
        except PlaywrightTimeoutError:
            continue  # covered by a dialog that came meanwhile
        page.keyboard.press("Shift+Enter")
        started = time.monotonic()
        while time.monotonic() - started < LONG / 1000:
            text = prompt.inner_text()
            if re.fullmatch(r"\[\d+\]:", text) and text != before:
                return
            if "*" not in text and time.monotonic() - started > 5:
                break  # never started, or was dropped: try again
            page.wait_for_timeout(100)
    pytest.fail(f"cell {index} did not run")


def history_entries(server, notebook: str) -> list[dict]:
    """The entries of ``notebook``'s history (named after the notebook) on disk."""
    index = server.history_dir / notebook.removesuffix(".ipynb") / "index.jsonl"
    if not index.exists():
        return []
    return [json.loads(line) for line in index.read_text().splitlines() if line.strip()]


def saved_notebook(server, name: str) -> dict | None:
    try:
        return json.loads((server.root / name).read_text())
    except json.JSONDecodeError:
        return None  # caught mid-write


def sketch_file(folder) -> str:
    path = folder / "sketch.png"
    buf = io.BytesIO()
    Image.new("RGB", (96, 64), (40, 120, 200)).save(buf, format="PNG")
    path.write_bytes(buf.getvalue())
    return str(path)


def in_gallery(panel, index: int):
    """The gallery's button of entry ``index`` (the lineage row has buttons of the same names)."""
    return panel.locator(".aigate-gallery").get_by_role("button", name=f"[{index}]", exact=True)


def made(panel, entries: int):
    """Wait until the gallery's button of entry ``entries - 1`` shows, the request finished."""
    in_gallery(panel, entries - 1).wait_for(timeout=LONG)
    expect(panel.get_by_role("button", name="Stop waiting")).to_be_hidden(timeout=LONG)
    expect(panel.locator(".aigate-status")).to_contain_text(f"[{entries - 1}]")


def use_the_panel(page, server, emulator_process, artifacts, name: str) -> int:
    """What a new user does with the panel, checked step by step; returns the notebook's
    size before it ran."""
    unrun_size = write_notebook(server, name)
    open_notebook(page, server, name)
    run_cell(page, 0)
    panel = page.locator(".aigate-panel")
    panel.wait_for(timeout=LONG)
    generate = panel.get_by_role("button", name="Generate", exact=True)
    generate.wait_for()
    prompt = panel.locator("textarea.aigate-prompt-box")

    # Ctrl+Enter in the prompt generates; the new image is selected and highlighted.
    prompt.fill(PROMPT)
    prompt.press("Control+Enter")
    made(panel, 1)
    first = in_gallery(panel, 0)
    expect(first).to_have_class(re.compile("mod-info"))
    assert panel.locator(".aigate-preview img, img.aigate-preview").count() == 1
    assert page.locator(".jp-Notebook .jp-Cell").count() == len(CELLS), "the keys made no cell"

    # Generate again with the same prompt: a click always makes a new picture.
    generate.click()
    made(panel, 2)
    assert [e["prompt"] for e in history_entries(server, name)] == [PROMPT, PROMPT]

    # Select [0], ask for an edit that the emulator holds back, and run another cell meanwhile.
    first.click()
    prompt.fill("add a full moon over the sea")
    emulator_process.slow_down_next(SLOW_REPLY)
    panel.get_by_role("button", name="Edit [0]", exact=True).click()
    stop = panel.get_by_role("button", name="Stop waiting")
    stop.wait_for()
    assert generate.is_disabled()
    panel.screenshot(path=str(artifacts / f"panel-busy-{server.app}.png"))
    run_cell(page, 1)
    answer = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-OutputArea-output")
    answer.filter(has_text="2").wait_for(timeout=LONG)
    assert in_gallery(panel, 2).count() == 0, "the edit arrived before the other cell ran: the kernel was not free"
    made(panel, 3)
    lineage = panel.locator(".aigate-lineage")
    assert lineage.get_by_role("button").all_inner_texts() == ["[0]", "[2]"]

    # Multi-turn: the panel's own pictures (Google route by default) can be continued.
    multi_turn = panel.get_by_role("checkbox", name="Multi-turn")
    expect(multi_turn).to_be_enabled()
    multi_turn.check()
    prompt.fill("make it a stormy night")
    panel.get_by_role("button", name="Edit [2]", exact=True).click()
    made(panel, 4)

    # Upload: the file is the source of the next Generate, and its name is recorded.
    with page.expect_file_chooser() as chooser:
        panel.get_by_role("button", name=re.compile("Upload image")).click()
    chooser.value.set_files(sketch_file(artifacts))
    source = panel.locator("select", has=page.locator("option", has_text="Uploaded: sketch.png"))
    expect(source).to_have_value("Uploaded: sketch.png")
    prompt.fill("turn the sketch into a watercolour")
    generate.click()
    made(panel, 5)
    expect(panel).to_contain_text("Edited from sketch.png")

    entries = history_entries(server, name)
    assert entries[2]["parent"] == entries[0]["id"] and entries[2]["parent_index"] == 0
    assert entries[3]["parent"] == entries[2]["id"] and entries[3]["route"] == "google"
    assert entries[4]["inputs"][0]["name"] == "sketch.png" and entries[4]["parent"] is None

    # A magic cell's picture shows in the gallery with no click on Refresh.
    run_cell(page, 2)
    expect(panel).to_contain_text("6 images")
    in_gallery(panel, 5).wait_for()

    # New cell: its text shows at once, to copy; the cell itself comes with the next run.
    in_gallery(panel, 4).click()
    panel.get_by_role("button", name=re.compile("^New cell")).click()
    expect(panel.locator(".aigate-cell-text")).to_contain_text("%%gemini_image --edit 4")
    expect(panel).to_contain_text("appears below the next cell you run")
    return unrun_size


def drag(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=6)
    page.mouse.up()


def box_in_field(panel, before: list[int] | None = None) -> list[int]:
    """The box in the panel's X,Y,W,H field, once the kernel has put one there other than ``before``."""
    field = panel.get_by_placeholder(re.compile("^Region X,Y,W,H"))
    expect(field).to_have_value(re.compile(r"^\d+,\d+,\d+,\d+$"))
    if before is not None:
        expect(field).not_to_have_value(",".join(map(str, before)))
    return [int(value) for value in field.input_value().split(",")]


def edit_a_region_and_browse(page, server, name: str) -> None:
    """After ``use_the_panel``: drag a box on [0] with the mouse, move it, clear and draw it
    again, and Edit region; only the padded box changes. The lineage selects; the gallery's
    search narrows it and its pages turn."""
    panel = page.locator(".aigate-panel")
    in_gallery(panel, 0).click()
    picture = panel.locator(".aigate-box-frame img")
    expect(panel.locator(".aigate-box-size")).to_contain_text("Drag on the picture (1024 × 1024 px)")
    picture.evaluate("img => img.decode()")  # the new picture laid out, not the one before it
    frame = picture.bounding_box()
    at = lambda fx, fy: (frame["x"] + fx * frame["width"], frame["y"] + fy * frame["height"])  # noqa: E731

    drag(page, at(0.2, 0.55), at(0.6, 0.85))
    drawn = box_in_field(panel)
    assert len(drawn) == 4 and min(drawn[2:]) > 64, drawn
    expect(panel.locator(".aigate-box-size")).to_contain_text(f"{drawn[2]} × {drawn[3]} px")
    drag(page, at(0.4, 0.7), at(0.3, 0.6))  # inside the box: it moves, keeping its size
    moved = box_in_field(panel, before=drawn)
    assert moved[2:] == drawn[2:] and moved[0] < drawn[0] and moved[1] < drawn[1], (drawn, moved)
    panel.locator(".aigate-box-frame").press("Escape")
    expect(panel.locator(".aigate-box")).to_be_hidden()
    expect(panel.get_by_placeholder(re.compile("^Region X,Y,W,H"))).to_have_value("")
    drag(page, at(0.15, 0.5), at(0.55, 0.8))
    box = box_in_field(panel)

    panel.locator("textarea.aigate-prompt-box").fill(REGION_PROMPT)
    panel.get_by_role("button", name="Edit region", exact=True).click()
    made(panel, 7)
    history = History(name.removesuffix(".ipynb"), root=server.history_dir)
    source, edit = history[0], history[6]
    assert edit.parent == source.id and edit.region["box"] == box and edit.prompt == REGION_PROMPT
    x, y, w, h = edit.region["box"]
    pad = edit.region["padding"]
    left, top = max(0, x - pad), max(0, y - pad)
    right, bottom = min(source.size[0], x + w + pad), min(source.size[1], y + h + pad)
    before, after = source.image.convert("RGB"), edit.image.convert("RGB")
    hole = Image.new("L", before.size, 255)
    hole.paste(0, (left, top, right, bottom))
    blank = Image.new("RGB", before.size)
    outside = ImageChops.difference(Image.composite(before, blank, hole), Image.composite(after, blank, hole))
    assert outside.getbbox() is None, "a pixel outside the padded box changed"
    inside = ImageChops.difference(before.crop((x, y, x + w, y + h)), after.crop((x, y, x + w, y + h)))
    assert inside.getbbox() is not None, "nothing changed inside the box"
    # The new entry is selected with the box it changed; its lineage selects the source.
    expect(panel.locator(".aigate-box")).to_be_visible()
    lineage = panel.locator(".aigate-lineage")
    assert lineage.get_by_role("button").all_inner_texts() == ["[0]", "[6]"]
    lineage.get_by_role("button", name="[0]", exact=True).click()
    expect(panel.get_by_role("button", name="Edit [0]", exact=True)).to_be_visible()
    expect(lineage).to_contain_text("Edits of it")
    assert lineage.get_by_role("button").all_inner_texts() == ["[0]", "[2]", "[6]"]

    # A long history pages: more than a page of pictures, then to the oldest and back.
    variants = panel.get_by_role("spinbutton")
    variants.fill(str(VARIANTS))
    variants.press("Enter")
    panel.locator("textarea.aigate-prompt-box").fill("a windmill in a tulip field")
    panel.get_by_role("button", name="Generate", exact=True).click()
    made(panel, 7 + VARIANTS)
    title = panel.locator(".aigate-gallery-title")
    expect(title).to_contain_text(f"{7 + VARIANTS} images · page 1 of 2")
    expect(in_gallery(panel, 0)).to_have_count(0)
    panel.get_by_role("button", name="Older", exact=True).click()
    expect(title).to_contain_text("page 2 of 2")
    expect(in_gallery(panel, 0)).to_be_visible()
    panel.get_by_role("button", name="Newer", exact=True).click()
    expect(title).to_contain_text("page 1 of 2")

    # The search box narrows the gallery as it is typed, and its pages with it.
    search = panel.get_by_placeholder(re.compile("^Search"))
    search.fill("lighthouse")
    expect(title).to_contain_text(f"2 of {7 + VARIANTS} images found")
    expect(panel.locator(".aigate-gallery").get_by_role("button")).to_have_text(["[1]", "[0]"])
    search.fill("")
    expect(title).to_contain_text("page 1 of 2")
    variants.fill("1")
    variants.press("Enter")


def check_layout(page, panel, width: int) -> None:
    """At ``width``: nothing of the panel overflows or is cut short, no nested output scroll,
    and the cell's snapshot hidden beside the live panel."""
    page.set_viewport_size({"width": width, "height": 1100})
    page.wait_for_timeout(300)  # one layout pass
    panel_box = panel.bounding_box()
    assert panel.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), f"the panel overflows at {width} px"
    cut = panel.evaluate(
        """el => [...el.querySelectorAll('button, .widget-dropdown, .widget-upload')]
             .filter(b => b.offsetParent !== null && b.scrollWidth > b.clientWidth + 1)
             .map(b => b.innerText || b.className)"""
    )
    assert cut == [], f"cut short at {width} px: {cut}"
    for label in ("Generate", "Save", re.compile("^New cell"), re.compile(r"^Edit \["), "Edit region", "Clear box"):
        box = panel.get_by_role("button", name=label, exact=isinstance(label, str)).bounding_box()
        assert box["x"] >= panel_box["x"] and box["x"] + box["width"] <= panel_box["x"] + panel_box["width"] + 1
        assert box["x"] + box["width"] <= width, f"{label} is off the page at {width} px"
    cell = page.locator(".jp-Notebook .jp-Cell").first
    assert "jp-mod-outputsScrolled" not in (cell.get_attribute("class") or ""), (
        f"the notebook folded the panel into a scroll box at {width} px")
    outputs = cell.locator(".jp-OutputArea").first
    assert outputs.evaluate("el => el.scrollHeight <= el.clientHeight + 1 && el.scrollWidth <= el.clientWidth + 1")
    height = outputs.evaluate("el => el.scrollHeight")
    assert height < FOLD_HEIGHT, f"the panel's cell is {height} px tall at {width} px: Notebook 7 would fold it"
    expect(cell.locator(".aigate-snapshot")).to_be_hidden()


def check_saved_and_reopened(page, server, name: str, unrun_size: int, results: int) -> None:
    """Saved, the notebook grows by at most ``RESULT_BUDGET`` per result and keeps the panel's
    snapshot; reopened without the kernel, that snapshot says to run the cell again."""
    page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+s")

    def snapshot_saved():
        notebook = saved_notebook(server, name)
        outputs = notebook["cells"][0].get("outputs", []) if notebook else []
        shown = [o for o in outputs if "panel" in o.get("metadata", {}).get("aigate_nb", {})]
        return shown and len(shown[0]["metadata"]["aigate_nb"]["panel"]) == PANEL_RESULTS and shown[0]

    snapshot = wait_for(snapshot_saved, 20)
    assert "run this cell again" in "".join(snapshot["data"]["text/html"])
    grown = (server.root / name).stat().st_size - unrun_size
    assert grown <= RESULT_BUDGET * results, f"{grown} bytes for {results} results"

    # Reloaded while its kernel runs, the panel comes back and a box is drawn as before.
    page.reload()
    panel = page.locator(".aigate-panel")
    panel.wait_for(timeout=LONG)
    in_gallery(panel, 7).click()
    expect(panel.get_by_role("button", name="Edit [7]", exact=True)).to_be_visible()
    picture = panel.locator(".aigate-box-frame img")
    picture.evaluate("img => img.decode()")
    label = panel.locator(".aigate-box-size")
    expect(label).to_contain_text("Drag on the picture")
    width, height = map(int, re.search(r"\((\d+) × (\d+) px\)", label.inner_text()).groups())
    frame = picture.bounding_box()
    left, top = frame["x"] + 0.25 * frame["width"], frame["y"] + 0.25 * frame["height"]
    drag(page, (left, top), (left + 0.5 * frame["width"], top + 0.5 * frame["height"]))
    box = box_in_field(panel)
    expected = [width / 4, height / 4, width / 2, height / 2]
    assert all(abs(value - wanted) <= width / 100 for value, wanted in zip(box, expected)), (box, expected)
    expect(panel.locator(".aigate-box-size")).to_contain_text(f"{box[2]} × {box[3]} px")

    sessions = requests.get(server.api("/api/sessions"), timeout=5).json()
    for item in sessions:
        if item["path"].endswith(name):
            requests.delete(server.api(f"/api/sessions/{item['id']}"), timeout=10).raise_for_status()
    page.reload()
    cell = page.locator(".jp-Notebook .jp-Cell").first
    cell.wait_for(timeout=LONG)
    note = cell.locator(".aigate-snapshot")
    expect(note).to_be_visible(timeout=LONG)
    expect(note).to_contain_text("run this cell again")
    assert note.locator("img").count() == PANEL_RESULTS


def test_the_panel_flow_in_jupyterlab(lab_server, emulator_process, page, artifacts):
    name = "panel.ipynb"
    unrun_size = use_the_panel(page, lab_server, emulator_process, artifacts, name)
    panel = page.locator(".aigate-panel")

    # "New cell": the next cell that runs gets a %%gemini_image --edit cell below it.
    run_cell(page, 1)
    new_cell = page.locator(".jp-Notebook .jp-Cell").nth(2).locator(".jp-InputArea-editor")
    expect(new_cell).to_contain_text("%%gemini_image --edit 4", timeout=LONG)
    expect(new_cell).to_contain_text("turn the sketch into a watercolour")

    edit_a_region_and_browse(page, lab_server, name)

    # The picture for the README: the region edit selected, with its box and lineage; tall
    # enough a window that the whole panel shows.
    in_gallery(panel, 6).click()
    page.set_viewport_size({"width": WIDE, "height": 1600})
    page.mouse.move(0, 0)
    shot = artifacts / "panel.png"
    panel.screenshot(path=str(shot))
    copy_to_docs(shot)
    check_layout(page, panel, WIDE)
    page.screenshot(path=str(artifacts / "lab-1280.png"), full_page=True)
    # In a 600-pixel window a user closes the file browser (Ctrl+B) to make room.
    page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+b")
    check_layout(page, panel, NARROW)
    page.screenshot(path=str(artifacts / "lab-600.png"), full_page=True)
    check_layout(page, panel, WIDE)

    check_saved_and_reopened(page, lab_server, name, unrun_size, results=PANEL_RESULTS + 1)
    page.screenshot(path=str(artifacts / "lab-reopened.png"), full_page=True)
