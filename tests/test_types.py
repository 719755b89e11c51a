"""The types the package ships (``py.typed``) are checked: mypy, configured in pyproject.toml
(every function annotated, bodies checked), finds nothing in the package but in the modules
listed below, which wait for their turn and may only leave the list."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Modules mypy still finds errors in; remove a line once its module checks clean.
STILL_UNCHECKED = {
    "aigate_nb/records/store.py",
    "aigate_nb/runs/batches.py",
    "aigate_nb/runs/grids.py",
}


def test_mypy_finds_no_type_error_outside_the_modules_still_waiting():
    run = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", "/dev/null"],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    with_errors = set(re.findall(r"^(aigate_nb/\S+\.py):\d+: error", run.stdout, re.M))
    assert with_errors <= STILL_UNCHECKED, run.stdout[-4000:]
    assert STILL_UNCHECKED <= with_errors, f"now clean, drop from the list: {sorted(STILL_UNCHECKED - with_errors)}"
