"""The panel in a real JupyterLab, in headless Chromium: generate, select, edit, with the
kernel free for other cells meanwhile; the history on disk links the edit to its source."""

from __future__ import annotations

import json
import re
import time

import nbformat
import pytest
from playwright.sync_api import expect

from support import wait_for

from .conftest import copy_to_docs

pytestmark = pytest.mark.browser

#: Generous: the first cell also starts the kernel, which is slow on two cores.
LONG = 60_000
#: The edit is held back this long, so that another cell can run while it is in flight.
SLOW_REPLY = 5.0

PANEL_CELL = "%load_ext aigate_nb\n%aigate panel"


def write_notebook(lab_server, name: str) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(PANEL_CELL), nbformat.v4.new_code_cell("1 + 1")]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, lab_server.root / name)


def run_cell(page, index: int) -> None:
    """Select cell ``index`` (command mode, by its prompt), run it with Shift+Enter and wait
    until it has run.

    Right after the page opens, JupyterLab sometimes drops a run although the kernel shows
    as idle: the prompt shows ``[*]`` and falls back to ``[ ]``. Such a run is tried again.
    """
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    prompt = cell.locator(".jp-InputArea-prompt")
    before = prompt.inner_text()
    for _ in range(3):
        cell.locator(".jp-InputPrompt").click()
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


def history_entries(lab_server, notebook: str) -> list[dict]:
    """The entries of ``notebook``'s history (named after the notebook) on disk."""
    index = lab_server.history_dir / notebook.removesuffix(".ipynb") / "index.jsonl"
    if not index.exists():
        return []
    return [json.loads(line) for line in index.read_text().splitlines() if line.strip()]


def saved_result_outputs(lab_server, name: str) -> list[dict]:
    try:
        notebook = json.loads((lab_server.root / name).read_text())
    except json.JSONDecodeError:
        return []  # caught mid-write
    return [o for o in notebook["cells"][0].get("outputs", []) if "aigate_nb" in o.get("metadata", {})]


def test_generate_select_and_edit_in_jupyterlab(lab_server, emulator_process, page, artifacts):
    name = "panel.ipynb"
    write_notebook(lab_server, name)
    page.goto(lab_server.lab_url(name))
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=LONG)
    # A cell run before the kernel is connected is dropped, not queued.
    page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(timeout=LONG)

    run_cell(page, 0)
    panel = page.locator(".aigate-panel")
    panel.wait_for(timeout=LONG)
    generate = panel.get_by_role("button", name="Generate", exact=True)
    generate.wait_for()
    cell_images = page.locator(".jp-Notebook .jp-Cell").nth(0).locator(".jp-RenderedImage img")

    # Generate: the image joins the gallery, is selected, and is also a plain output of the cell.
    panel.locator("textarea").fill("a lighthouse on a cliff at dusk, oil painting")
    generate.click()
    first = panel.get_by_role("button", name="[0]", exact=True)
    first.wait_for(timeout=LONG)
    cell_images.first.wait_for(timeout=LONG)
    assert panel.locator(".aigate-preview img, img.aigate-preview").count() == 1

    # Select it, ask for an edit that the emulator holds back, and run another cell meanwhile.
    first.click()
    panel.locator("textarea").fill("add a full moon over the sea")
    emulator_process.slow_down_next(SLOW_REPLY)
    panel.get_by_role("button", name="Edit [0]", exact=True).click()
    stop = panel.get_by_role("button", name="Stop waiting")
    stop.wait_for()
    assert generate.is_disabled()
    panel.screenshot(path=str(artifacts / "panel-busy.png"))

    run_cell(page, 1)
    answer = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-OutputArea-output")
    answer.filter(has_text="2").wait_for(timeout=LONG)
    second = panel.get_by_role("button", name="[1]", exact=True)
    assert second.count() == 0, "the edit arrived before the other cell ran: the kernel was not free"
    assert stop.is_visible()

    second.wait_for(timeout=LONG)
    stop.wait_for(state="hidden")
    assert generate.is_enabled()
    assert "[0] → [1]" in panel.inner_text()
    wait_for(lambda: cell_images.count() == 2)

    entries = history_entries(lab_server, name)
    prompts = [e["prompt"] for e in entries]
    assert prompts == ["a lighthouse on a cliff at dusk, oil painting", "add a full moon over the sea"]
    assert entries[0]["parent"] is None and entries[1]["parent"] == entries[0]["id"]
    assert entries[1]["parent_index"] == 0

    # The picture for the README: the panel with the edit selected.
    page.mouse.move(0, 0)
    shot = artifacts / "panel.png"
    panel.screenshot(path=str(shot))
    copy_to_docs(shot)
    page.screenshot(path=str(artifacts / "lab.png"), full_page=True)

    # Saved, the notebook keeps both results as ordinary outputs (widget state is not saved).
    page.locator(".jp-Notebook .jp-Cell").nth(0).locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+s")
    outputs = wait_for(
        lambda: len(saved_result_outputs(lab_server, name)) == 2 and saved_result_outputs(lab_server, name), 20
    )
    assert all({"image/jpeg", "image/png"} & set(o["data"]) for o in outputs)

    # "New cell": the next cell that runs gets a %%gemini_image --edit cell below it.
    panel.get_by_role("button", name="New cell").click()
    run_cell(page, 1)
    new_cell = page.locator(".jp-Notebook .jp-Cell").nth(2).locator(".jp-InputArea-editor")
    expect(new_cell).to_contain_text("%%gemini_image --edit 1", timeout=LONG)
    expect(new_cell).to_contain_text("add a full moon over the sea")
