"""The panel in a real JupyterLab, in headless Chromium: Generate (from the keyboard and by a
click), select, Edit while the kernel runs another cell, Multi-turn and Upload; the gallery
follows a magic cell; the layout fits at 1280 and at 600 pixels; the saved notebook keeps a
small snapshot, which a reopened notebook shows where the widget cannot be.

``use_the_panel`` is the flow itself, shared with Notebook 7's test.
"""

from __future__ import annotations

import io
import json
import re
import time

import nbformat
import pytest
import requests
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

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
    if dialog.count():
        dialog.get_by_role("button", name="Select", exact=True).click()
        dialog.wait_for(state="detached")


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


def made(panel, entries: int):
    """Wait until the gallery's button of entry ``entries - 1`` shows, the request finished."""
    panel.get_by_role("button", name=f"[{entries - 1}]", exact=True).wait_for(timeout=LONG)
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
    first = panel.get_by_role("button", name="[0]", exact=True)
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
    assert panel.get_by_role("button", name="[2]", exact=True).count() == 0, (
        "the edit arrived before the other cell ran: the kernel was not free")
    made(panel, 3)
    assert "[0] → [2]" in panel.inner_text()

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
    panel.get_by_role("button", name="[5]", exact=True).wait_for()

    # New cell: its text shows at once, to copy; the cell itself comes with the next run.
    panel.get_by_role("button", name="[4]", exact=True).click()
    panel.get_by_role("button", name=re.compile("^New cell")).click()
    expect(panel.locator(".aigate-cell-text")).to_contain_text("%%gemini_image --edit 4")
    expect(panel).to_contain_text("appears below the next cell you run")
    return unrun_size


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
    for label in ("Generate", "Save", re.compile("^New cell"), re.compile("^Edit")):
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
        return shown and len(shown[0]["metadata"]["aigate_nb"]["panel"]) == 5 and shown[0]

    snapshot = wait_for(snapshot_saved, 20)
    assert "run this cell again" in "".join(snapshot["data"]["text/html"])
    grown = (server.root / name).stat().st_size - unrun_size
    assert grown <= RESULT_BUDGET * results, f"{grown} bytes for {results} results"

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
    assert note.locator("img").count() == 5


def test_the_panel_flow_in_jupyterlab(lab_server, emulator_process, page, artifacts):
    name = "panel.ipynb"
    unrun_size = use_the_panel(page, lab_server, emulator_process, artifacts, name)
    panel = page.locator(".aigate-panel")

    # "New cell": the next cell that runs gets a %%gemini_image --edit cell below it.
    run_cell(page, 1)
    new_cell = page.locator(".jp-Notebook .jp-Cell").nth(2).locator(".jp-InputArea-editor")
    expect(new_cell).to_contain_text("%%gemini_image --edit 4", timeout=LONG)
    expect(new_cell).to_contain_text("turn the sketch into a watercolour")

    # The picture for the README: the multi-turn edit selected, with its lineage; tall
    # enough a window that the whole panel shows.
    panel.get_by_role("button", name="[3]", exact=True).click()
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

    check_saved_and_reopened(page, lab_server, name, unrun_size, results=6)
    page.screenshot(path=str(artifacts / "lab-reopened.png"), full_page=True)
