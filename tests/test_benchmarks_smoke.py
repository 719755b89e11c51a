"""A smoke run of the benchmarks: the command runs and writes well-formed results.

Timings are never judged here, only the shape of what is written.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIGURES = {"client overhead", "display time", "display size", "memory", "concurrency", "concurrency floor",
           "concurrency over floor", "machine", "edit upload", "report export", "report floor", "report size",
           "batch throughput", "batch memory", "batch resume"}


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # google.genai when google is not there at all
        return False


def test_a_quick_run_writes_a_table_and_well_formed_results(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    table = (tmp_path / "results.md").read_text()
    assert "| Figure | Case | Measured | Goal | Met | Details |" in table and table in done.stdout

    rows = results["figures"]
    peers = [peer for peer, module in (("openai", "openai"), ("google-genai", "google.genai")) if installed(module)]
    expected = FIGURES | {f"vs {peer}" for peer in peers}
    if Path("/usr/bin/chromium").exists() and installed("playwright"):
        expected.add("report in browser")
    assert {row["figure"] for row in rows} == expected
    for row in rows:
        assert isinstance(row["value"], (int, float)) and math.isfinite(row["value"]), row
        assert row["unit"] in ("x", "KB", "MB", "ms", "/min", "%", "rows")
        if row["goal"] is None:
            assert row["met"] is None
        elif row.get("at_least"):
            assert row["met"] is (row["value"] >= row["goal"])
        else:
            assert row["met"] is (row["value"] <= row["goal"])
        assert f"| {row['figure']} | {row['case']} |" in table
    assert results["environment"]["packages"]["aigate_nb"]
    if len(peers) < 2:
        assert any("Not installed" in note for note in results["notes"])
