"""The %%gemini_image magic in a real JupyterLab, in headless Chromium: a generation and an
edit of it render inline as plain image outputs with their captions."""

from __future__ import annotations

import json

import nbformat
import pytest

from .conftest import copy_to_docs
from .test_panel_in_lab import LONG, run_cell

pytestmark = pytest.mark.browser

CELLS = [
    "%load_ext aigate_nb",
    "%%gemini_image -a 16:9 -s 2K\na lighthouse on a cliff at dusk, oil painting",
    "%%gemini_image --edit -1\nadd a full moon over the sea",
]


def test_magic_cells_render_a_result_and_its_edit(lab_server, page, artifacts):
    name = "magic.ipynb"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, lab_server.root / name)
    page.goto(lab_server.lab_url(name))
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=LONG)
    page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(timeout=LONG)

    cells = page.locator(".jp-Notebook .jp-Cell")
    for index in range(len(CELLS)):
        run_cell(page, index)

    first, edit = cells.nth(1), cells.nth(2)
    first.locator(".jp-RenderedImage img").wait_for(timeout=LONG)
    edit.locator(".jp-RenderedImage img").wait_for(timeout=LONG)
    assert "[0] google/gemini-3.1-flash-image-preview | 16:9 | 2K | 2752x1536" in first.inner_text()
    assert "edited from [0]" in edit.inner_text()
    # The preview is shown at its own size, not the 2752-pixel original.
    width = first.locator(".jp-RenderedImage img").evaluate("img => img.naturalWidth")
    assert width == 1024

    page.mouse.move(0, 0)
    page.locator(".jp-NotebookPanel").first.evaluate(
        "el => el.querySelector('.jp-WindowedPanel-outer, .jp-Notebook').scrollTo(0, 0)"
    )
    shot = artifacts / "result.png"
    page.locator(".jp-NotebookPanel").first.screenshot(path=str(shot))
    copy_to_docs(shot)

    # Saved, the notebook holds small plain outputs with the provenance metadata.
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")
    page.wait_for_function(
        "() => !document.querySelector('.jp-mod-dirty')", timeout=LONG
    )
    saved = json.loads((lab_server.root / name).read_text())
    results = [o for c in saved["cells"] for o in c.get("outputs", []) if "aigate_nb" in o.get("metadata", {})]
    assert [o["metadata"]["aigate_nb"]["index"] for o in results] == [0, 1]
    assert all(len(json.dumps(o)) < 250_000 for o in results)
