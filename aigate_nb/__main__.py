"""``python -m aigate_nb report FOLDER [-o FILE] [--full-size]``: the package's commands for a shell."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from .core.errors import AigateError
from .core.text import one_line
from .records.layout import INDEX_FILE
from .records.report import describe, write_report
from .records.store import History

COMMANDS = ("report",)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in COMMANDS:
        print("usage: python -m aigate_nb report FOLDER [-o FILE] [--full-size]  (e.g. python -m aigate_nb report "
              ".aigate/<notebook> -o report.html)", file=sys.stderr)
        return 2
    return report(args[1:])


def report(argv: Iterable[str] | None = None) -> int:
    """``python -m aigate_nb report FOLDER [-o FILE] [--full-size]``: write a history's report."""
    parser = argparse.ArgumentParser(
        prog="python -m aigate_nb report",
        description="Write a notebook's history as one self-contained HTML file that opens in any browser.",
    )
    parser.add_argument("folder", type=Path, help="the history's folder, e.g. .aigate/lab-flow")
    parser.add_argument("-o", "--out", type=Path, help="the file to write (default: <history name>.html here)")
    parser.add_argument("--full-size", action="store_true", help="embed the original images, not only previews")
    args = parser.parse_args(None if argv is None else list(argv))
    folder = args.folder.expanduser()
    problem = _not_a_history(folder)
    if problem:
        print(f"python -m aigate_nb report: {problem}", file=sys.stderr)
        return 2
    try:
        history = History(folder.name, folder.parent)
        written = write_report(history, args.out or Path(f"{history.name}.html"), full_size=args.full_size)
    except AigateError as exc:
        print(f"python -m aigate_nb report: {one_line(str(exc))}", file=sys.stderr)
        return 1
    print(describe(history, written))
    return 0




def _not_a_history(folder: Path) -> str | None:
    """Why ``folder`` is not a history's folder, saying which it holds if it is a history dir."""
    if (folder / INDEX_FILE).is_file():
        return None
    if not folder.is_dir():
        return f"{folder} is not a folder; give a history's folder, e.g. .aigate/<notebook>."
    inside = sorted(child.name for child in folder.iterdir() if (child / INDEX_FILE).is_file())
    if inside:
        examples = ", ".join(str(folder / name) for name in inside[:3])
        more = f" and {len(inside) - 3} more" if len(inside) > 3 else ""
        return f"{folder} holds the histories of several notebooks; name one: {examples}{more}."
    return f"{folder} holds no history (no {INDEX_FILE}); give a history's folder, e.g. .aigate/<notebook>."


if __name__ == "__main__":
    sys.exit(main())
