"""Short text for captions, reprs and one-line messages."""

from __future__ import annotations


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``...`` when cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(text: str, limit: int | None = None) -> str:
    """``text`` with its runs of white space (newlines too) folded to single spaces, then clipped."""
    folded = " ".join(text.split())
    return folded if limit is None else clip(folded, limit)
