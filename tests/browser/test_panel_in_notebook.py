"""The panel in Notebook 7, in headless Chromium: the same flow as in JupyterLab (region edit,
lineage, search and pages included), used in a 600-pixel window, then checked at 1280.
Notebook 7 folds a cell's outputs into a small scroll box once they grow past about 1800
pixels: the panel's cell must never get there."""

from __future__ import annotations

import pytest

from .test_panel_in_lab import (
    NARROW,
    PANEL_RESULTS,
    WIDE,
    check_layout,
    check_saved_and_reopened,
    edit_a_region_and_browse,
    use_the_panel,
)

pytestmark = pytest.mark.browser


def test_the_panel_flow_in_notebook_7(notebook_server, emulator_process, page, artifacts):
    name = "panel.ipynb"
    page.set_viewport_size({"width": NARROW, "height": 1100})
    unrun_size = use_the_panel(page, notebook_server, emulator_process, artifacts, name)
    panel = page.locator(".aigate-panel")
    edit_a_region_and_browse(page, notebook_server, name)

    check_layout(page, panel, NARROW)
    page.mouse.move(0, 0)
    page.screenshot(path=str(artifacts / "notebook7-600.png"), full_page=True)
    check_layout(page, panel, WIDE)
    page.screenshot(path=str(artifacts / "notebook7-1280.png"), full_page=True)

    check_saved_and_reopened(page, notebook_server, name, unrun_size, results=PANEL_RESULTS + 1)
    page.screenshot(path=str(artifacts / "notebook7-reopened.png"), full_page=True)
