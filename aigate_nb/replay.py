"""Replay: a request identical to one already made is answered from the history, with
no call and no cost, so that re-running a notebook shows the pictures it showed before.

"Identical" is the request hash (``prepared.request_hash``): route, endpoint kind
(emulator or gateway), model, prompt, ratio, size, every input image's content, the
conversation of a multi-turn edit and the region of a region edit; never the key or the headers.
"""

from __future__ import annotations

from dataclasses import replace

from .costs import REPLAY
from .prepared import PreparedRequest
from .results import ImageResult
from .store import History, HistoryEntry


def kept_for(history: History, prepared: PreparedRequest, count: int = 1) -> list[HistoryEntry]:
    """Up to ``count`` entries of ``history`` that ``prepared`` already made, oldest first:
    the newest ``count`` of them, so that a re-run shows what the last run showed."""
    found = [entry for entry in history.find(prepared.request_hash) if _usable(entry)]
    return found[-count:] if count > 0 else []


def replayed(entry: HistoryEntry) -> ImageResult:
    """``entry``'s result, marked as replayed: shown as it was, costing nothing now (the
    entry keeps what it cost when it was made)."""
    return replace(entry.result(), replayed=True, cost=0.0, cost_source=REPLAY)


def _usable(entry: HistoryEntry) -> bool:
    """An entry whose files are all still there (a deleted file is made anew, not replayed)."""
    return all(item.exists() for item in entry.originals)
