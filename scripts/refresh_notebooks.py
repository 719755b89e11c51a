"""Re-run the tutorials in notebooks/ and store their outputs, as nbval will compare them.

Run from anywhere: ``python scripts/refresh_notebooks.py [NAME ...]``. Each notebook runs
in its own kernel in notebooks/, with no AIGATE_* variable set, so the built-in emulator
answers (its pictures are deterministic). Widget state and timing metadata are dropped.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def refresh(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    resources = {"metadata": {"path": str(NOTEBOOKS)}}
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources=resources).execute()
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(notebook, path)
    print(f"refreshed {path.name}")


def main(names: list[str]) -> None:
    for name in [n for n in os.environ if n.startswith("AIGATE_")]:
        del os.environ[name]
    paths = [NOTEBOOKS / n for n in names] if names else sorted(NOTEBOOKS.glob("*.ipynb"))
    for path in paths:
        refresh(path)


if __name__ == "__main__":
    main(sys.argv[1:])
