"""Cheap checks of the committed tutorials that need no kernel: they are stored
executed, clean, small and free of anything personal.

nbval re-runs the same notebooks and compares their outputs (see pyproject.toml);
these checks catch what nbval does not look at: errors and widget state saved
with the file, keys and home paths in outputs, bloat, and ignored outputs
nobody explained.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
OUTPUT_BUDGET = 250_000
IGNORE_TAG = "nbval-ignore-output"
KEY = re.compile(r"\bsk-[A-Za-z0-9_-]{8,}")
HOME_PATH = re.compile(r"(?<![\w.])(/home/|/root/|/Users/|[A-Za-z]:\\\\?Users\\)")


def _code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def test_the_tutorials_are_there():
    names = [path.name for path in NOTEBOOKS]
    assert names == [
        "01-quickstart.ipynb", "02-editing.ipynb", "03-panel.ipynb", "04-python-api.ipynb", "05-many-images.ipynb",
        "06-sharing.ipynb",
    ]


@pytest.fixture(params=NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def notebook(request):
    return request.param


def test_notebook_is_valid_nbformat(notebook):
    nbformat.validate(_read(notebook))


def test_every_code_cell_is_stored_executed_in_order_with_outputs(notebook):
    cells = _code_cells(_read(notebook))
    counts = [cell.execution_count for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), "run the notebook top to bottom from a fresh kernel, then save"
    empty = [n for n, cell in enumerate(cells, 1) if not cell.outputs]
    assert not empty, f"code cells {empty} have no stored output; every tutorial cell should show something"


def test_no_error_outputs(notebook):
    errors = [
        (n, output.get("ename"))
        for n, cell in enumerate(_code_cells(_read(notebook)), 1)
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors


def test_no_widget_state_or_timing_metadata(notebook):
    nb = _read(notebook)
    assert "widgets" not in nb.metadata, "strip metadata.widgets: widget state is big and version-specific"
    timed = [n for n, cell in enumerate(nb.cells, 1) if "execution" in cell.metadata]
    assert not timed, f"cells {timed} carry execution timing metadata"


def test_no_keys_or_home_paths_in_outputs(notebook):
    for n, cell in enumerate(_code_cells(_read(notebook)), 1):
        for output in cell.outputs:
            text = json.dumps(output)
            assert not KEY.search(text), f"cell {n} shows something that looks like an API key"
            assert not HOME_PATH.search(text), f"cell {n} shows an absolute home path"


def test_each_output_fits_the_budget(notebook):
    for n, cell in enumerate(_code_cells(_read(notebook)), 1):
        for output in cell.outputs:
            size = len(json.dumps(output))
            assert size <= OUTPUT_BUDGET, f"cell {n} has a {size}-byte output"


def test_ignored_outputs_say_why(notebook):
    for n, cell in enumerate(_read(notebook).cells, 1):
        if IGNORE_TAG in cell.metadata.get("tags", []):
            assert cell.cell_type == "code"
            assert re.search(r"^\s*#\s*\S", cell.source, re.MULTILINE), (
                f"cell {n} is tagged {IGNORE_TAG} without a comment saying why its output is volatile"
            )
