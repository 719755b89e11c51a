"""Replay: a request identical to one already made is answered from the history, with
no call and no cost, so that re-running a notebook shows the pictures it showed before.

"Identical" is the request hash (``prepared.request_hash``): route, endpoint kind
(emulator or gateway), model, prompt, ratio, size, every input image's content, the
conversation of a multi-turn edit and the region of a region edit; never the key or the headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from ..core.costs import REPLAY
from ..core.results import ImageResult
from .prepared import PreparedRequest


class KeptFile(Protocol):
    """A kept picture's file, which may have gone."""

    def exists(self) -> bool: ...


class KeptEntry(Protocol):
    """What replay needs of a kept result (a history entry is one): its pictures and its result."""

    @property
    def originals(self) -> Sequence[KeptFile]: ...

    def result(self) -> ImageResult: ...


Entry = TypeVar("Entry", bound=KeptEntry, covariant=True)


class ResultCache(Protocol[Entry]):
    """Where results are kept and found by request hash: a ``History`` is one. ``Client(cache=)``
    and the session replay from it; the request layer needs nothing else of storage."""

    def find(self, request_hash: str) -> Sequence[Entry]: ...

    def append(self, result: ImageResult) -> Any: ...


def kept_for(history: ResultCache[Entry], prepared: PreparedRequest, count: int = 1) -> list[Entry]:
    """Up to ``count`` entries of ``history`` that ``prepared`` already made, oldest first:
    the newest ``count`` of them, so that a re-run shows what the last run showed."""
    found = [entry for entry in history.find(prepared.request_hash) if _usable(entry)]
    return found[-count:] if count > 0 else []


def replayed(entry: KeptEntry) -> ImageResult:
    """``entry``'s result, marked as replayed: shown as it was, costing nothing now (the
    entry keeps what it cost when it was made)."""
    return replace(entry.result(), replayed=True, cost=0.0, cost_source=REPLAY)


def _usable(entry: KeptEntry) -> bool:
    """An entry whose files are all still there (a deleted file is made anew, not replayed)."""
    return all(item.exists() for item in entry.originals)
