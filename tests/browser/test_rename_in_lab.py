"""Renaming a notebook in a real JupyterLab, in headless Chromium: its history goes with it,
whether the kernel is running or restarted after the rename, and a new Untitled notebook
starts with an empty history."""

from __future__ import annotations

import re
import time

import nbformat
import pytest
import requests

from support import wait_for

from .test_panel_in_lab import LONG, run_cell

pytestmark = pytest.mark.browser

SHOW_HISTORY = 'import aigate_nb\nh = aigate_nb.history\nprint(f"history {h.name}: {len(h)}")'
CELLS = [
    "%load_ext aigate_nb",
    "%%gemini_image\na lighthouse on a cliff at dusk",
    SHOW_HISTORY,
    "%aigate history",
]


def write_notebook(lab_server, name: str, cells: list[str]) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, lab_server.root / name)


def open_notebook(lab_server, page, name: str) -> None:
    page.goto(lab_server.lab_url(name))
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=LONG)
    # A cell run before the kernel is connected is dropped, not queued.
    page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(timeout=LONG)


def output_of(page, index: int) -> str:
    return page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea").inner_text()


def session_of(lab_server, path: str) -> dict | None:
    sessions = requests.get(lab_server.api("/api/sessions"), timeout=5).json()
    return next((item for item in sessions if item["path"] == path), None)


def rename_in_lab(page, new_name: str) -> None:
    """What a user does: File, Rename Notebook..., type the new name, Enter."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^File$")).click()
    page.locator(".lm-Menu-itemLabel", has_text="Rename Notebook").click()
    field = page.locator(".jp-Dialog input")
    field.wait_for(timeout=LONG)
    field.fill(new_name)
    page.keyboard.press("Enter")


def make_an_image(lab_server, page, name: str) -> None:
    write_notebook(lab_server, name, CELLS)
    open_notebook(lab_server, page, name)
    for index in range(3):
        run_cell(page, index)
    page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-RenderedImage img").wait_for(timeout=LONG)
    assert f"history {name.removesuffix('.ipynb')}: 1" in output_of(page, 2)


def test_a_notebook_renamed_then_restarted_keeps_its_history(lab_server, page):
    make_an_image(lab_server, page, "Untitled.ipynb")
    rename_in_lab(page, "lab-flow.ipynb")
    session = wait_for(lambda: session_of(lab_server, "lab-flow.ipynb"), 20)

    reply = requests.post(lab_server.api(f"/api/kernels/{session['kernel']['id']}/restart"), timeout=30)
    reply.raise_for_status()
    # The new kernel numbers its cells from [1] again: a cell whose prompt was [1] would look
    # as if it had not run, so the cell shown as [3] runs first.
    run_cell(page, 2)
    assert "history lab-flow: 1" in output_of(page, 2)
    run_cell(page, 0)
    assert "history moved from" in output_of(page, 0) and "following the notebook lab-flow.ipynb" in output_of(page, 0)
    run_cell(page, 3)
    assert "History 'lab-flow': 1 entry" in output_of(page, 3)
    assert not (lab_server.history_dir / "Untitled").exists()

    # A brand-new Untitled notebook has a history of its own: empty.
    made = requests.post(lab_server.api("/api/contents"), json={"type": "notebook"}, timeout=5).json()
    assert made["path"] == "Untitled.ipynb"
    write_notebook(lab_server, made["path"], [CELLS[0], SHOW_HISTORY])
    open_notebook(lab_server, page, made["path"])
    run_cell(page, 0)
    run_cell(page, 1)
    assert "history Untitled: 0" in output_of(page, 1)


def test_a_notebook_renamed_while_its_kernel_runs_takes_its_history_along(lab_server, page):
    make_an_image(lab_server, page, "sketch.ipynb")
    rename_in_lab(page, "sketch-final.ipynb")
    wait_for(lambda: session_of(lab_server, "sketch-final.ipynb"), 20)

    # The kernel asks the server again a few seconds after it last did: run the cell until it has.
    deadline = time.monotonic() + 30
    while "history sketch-final: 1" not in output_of(page, 2):
        assert time.monotonic() < deadline, output_of(page, 2)
        run_cell(page, 2)
    run_cell(page, 3)
    shown = output_of(page, 3)
    assert "history moved from" in shown and "History 'sketch-final': 1 entry" in shown
    assert (lab_server.history_dir / "sketch-final" / "index.jsonl").is_file()
    assert not (lab_server.history_dir / "sketch").exists()
