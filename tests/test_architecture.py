"""The architecture as a contract: the layers (``aigate_nb/<layer>/``) import only downwards and
the emulator nothing of the package (import-linter, configured in pyproject.toml); no module
imports the package's face; no import circle at run time; no module outside the emulator over
700 lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "aigate_nb"
MAX_LINES = 700


def test_the_layers_import_only_downwards_and_the_emulator_nothing_of_the_package():
    run = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "0 broken" in run.stdout


def test_no_module_imports_the_packages_face():
    graph = grimp.build_graph("aigate_nb", cache_dir=None)
    assert graph.find_modules_that_directly_import("aigate_nb") == set()


def test_no_import_circle_at_run_time():
    graph = grimp.build_graph("aigate_nb", exclude_type_checking_imports=True, cache_dir=None)
    circles = {
        tuple(sorted((importer, imported)))
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if graph.find_shortest_chain(importer=imported, imported=importer)
    }
    assert circles == set()


def test_no_module_outside_the_emulator_is_over_700_lines():
    sizes = {
        path.relative_to(PACKAGE).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] != "emulator"
    }
    over = {name for name, lines in sizes.items() if lines > MAX_LINES}
    assert not over, f"over {MAX_LINES} lines: {sorted(over)}"


def test_every_layer_says_why_it_exists():
    for init in PACKAGE.glob("*/__init__.py"):
        assert init.read_text(encoding="utf-8").startswith('"""'), f"{init.parent.name} has no docstring"
