"""The report: ``results.json`` for machines and ``results.md``, a table for people."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .measure import Row

PACKAGES = ("aigate_nb", "requests", "urllib3", "pybase64", "Pillow", "openai", "google-genai", "httpx")


def environment(settings: dict[str, Any]) -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "packages": versions,
        "settings": settings,
    }


def _value(row: Row) -> str:
    return _amount(row.value, row.unit, ".2f" if row.unit == "x" else ",.1f")


def _goal(row: Row) -> str:
    if row.goal is None:
        return "(reported)"
    return f"{'>=' if row.at_least else '<='} {_amount(row.goal, row.unit, 'g')}"


def _amount(value: float, unit: str, spec: str) -> str:
    """``1.27x``, ``23.3 KB``, ``174.1/min``, ``0.0%``, ``0 rows``."""
    if unit == "rows":
        return f"{value:g} rows"
    if unit in ("x", "/min", "%"):
        return f"{value:{spec}}{unit}"
    return f"{value:{spec}} {unit}"


def _cell(text: str) -> str:
    """A table cell's text: a ``|`` in it would end the cell."""
    return text.replace("|", "\\|")


def _met(row: Row) -> str:
    return {True: "yes", False: "**NO**", None: ""}[row.met]


def markdown(rows: list[Row], env: dict[str, Any], notes: list[str]) -> str:
    packages = ", ".join(f"{name} {v}" for name, v in env["packages"].items() if v)
    settings = env["settings"]
    lines = [
        "# aigate_nb benchmarks",
        "",
        f"`{settings['command']}` on {env['date']}: Python {env['python']}, {env['platform']}, "
        f"{env['cpus']} CPUs; {packages}.",
        "",
        f"Every time is the fastest of {settings['repeats']} interleaved runs "
        f"({settings['concurrency_repeats']} for concurrency, five times as many for replies under 4 MB), "
        "and every ratio compares "
        "times measured in the same run, against the emulator on loopback serving fixed replies "
        "(photo-like noise, so PNGs weigh what photos do). A ratio below 1 means aigate_nb takes less time.",
        "",
        "| Figure | Case | Measured | Goal | Met | Details |",
        "| --- | --- | ---: | ---: | :---: | --- |",
    ]
    lines += [f"| {r.figure} | {r.case} | {_value(r)} | {_goal(r)} | {_met(r)} | {_cell(r.detail)} |" for r in rows]
    missed = [r for r in rows if r.met is False]
    lines += ["", f"{sum(r.met is True for r in rows)} of {sum(r.met is not None for r in rows)} goals met"
              + (f"; missed: {', '.join(f'{r.figure} ({r.case})' for r in missed)}." if missed else ".")]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def write(rows: list[Row], env: dict[str, Any], notes: list[str], folder: Path) -> tuple[Path, Path, str]:
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "environment": env,
        "figures": [
            {"figure": r.figure, "case": r.case, "value": round(r.value, 4), "unit": r.unit, "goal": r.goal,
             "met": r.met, "detail": r.detail, "measures": r.measures, **({"at_least": True} if r.at_least else {})}
            for r in rows
        ],
        "notes": notes,
    }
    json_path, md_path = folder / "results.json", folder / "results.md"
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    text = markdown(rows, env, notes)
    md_path.write_text(text)
    return json_path, md_path, text
