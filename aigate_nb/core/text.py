"""Short text for captions, reprs and one-line messages."""

from __future__ import annotations

import os
from pathlib import Path


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``...`` when cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(text: str, limit: int | None = None) -> str:
    """``text`` with its runs of white space (newlines too) folded to single spaces, then clipped."""
    folded = " ".join(text.split())
    return folded if limit is None else clip(folded, limit)


def counted(n: int, one: str = "entry", many: str | None = None) -> str:
    """``1 entry``, ``3 entries``; ``many`` defaults to ``one`` with an ``s`` (``2 rows``)."""
    if many is None:
        many = "entries" if one == "entry" else one + "s"
    return f"{n} {one if n == 1 else many}"


def display_path(path: str | os.PathLike) -> str:
    """A path as shown in outputs that get shared: relative to the working directory (the
    notebook's folder) when inside it, else its last three parts, never the author's home."""
    path = Path(path)
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return Path(*path.parts[-3:]).as_posix()
