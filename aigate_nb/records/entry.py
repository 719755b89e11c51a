"""A history's entry: one result as the history keeps it, read-only, its pixels read from
its files on each access."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import HistoryError
from ..core.images import open_image
from ..core.region import region_label
from ..core.results import ImageResult
from ..core.text import clip

if TYPE_CHECKING:
    from PIL.Image import Image

    from ..core.costs import Usage
    from ..core.images import StoredImage


class HistoryEntry:
    """One result as the history keeps it: metadata in memory, pixels on disk.

    Every field of the result it wraps reads through (``entry.prompt``,
    ``entry.model``, ``entry.usage``, ...; see ``ImageResult``), read-only;
    ``parent`` is ``parent_id``, the id of the entry this one was edited from.
    ``files`` are the full-size images in their original format;
    ``model_parts`` are the reply's model parts (with any ``thoughtSignature``)
    for continuing a conversation. Pixels are decoded on each access: an entry
    holds no image in memory.
    """

    __slots__ = ("_kept",)

    if TYPE_CHECKING:  # read through __getattr__ from the result; declared so that they are typed
        # An entry is kept: its pictures are files, and the history gave it its id and number.
        originals: list[StoredImage]
        prompt: str
        model: str
        aspect_ratio: str | None
        image_size: str | None
        text: str | None
        finish_reason: str | None
        usage: Usage
        route: str
        elapsed: float
        emulated: bool
        model_parts: list[dict[str, Any]] | None
        parent_id: str | None
        id: str
        index: int
        parent_index: int | None
        created: str | None
        inputs: list[dict[str, str]]
        request_hash: str | None
        cost: float | None
        cost_source: str | None
        region: dict[str, Any] | None
        files: list[Path]
        mime: str
        data: bytes
        sha256: str
        sizes: list[tuple[int, int]]
        size: tuple[int, int]

    def __init__(self, result: ImageResult) -> None:
        object.__setattr__(self, "_kept", result)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._kept, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"A history entry is read-only; {name!r} cannot be set.")

    @property
    def parent(self) -> str | None:
        """The id of the entry this one was edited from (``parent_id``)."""
        return self._kept.parent_id

    @property
    def path(self) -> Path:
        """The first image's full-size file."""
        return self._kept.files[0]

    @property
    def image(self) -> Image:
        """The first image, decoded from its file on each access (nothing is kept in memory)."""
        return open_image(self.data)

    @property
    def images(self) -> list[Image]:
        return [open_image(item.data) for item in self._kept.originals]

    def _aigate_image_bytes(self) -> tuple[str, bytes]:
        """The first image's original full-size bytes, as stored."""
        return self._kept.mime, self._kept.data

    def result(self) -> ImageResult:
        """An ``ImageResult`` of its own, read from the files, displayed as the original was."""
        kept = self._kept
        return replace(
            kept, originals=list(kept.originals), files=list(kept.files), _pixels=None, _previews=None,
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        problem = self._problem()
        if problem:
            return {"text/plain": problem}, {}
        return self.result()._repr_mimebundle_(include, exclude)

    def _ipython_display_(self) -> None:
        problem = self._problem()
        if problem:
            print(problem)
            return
        self.result()._ipython_display_()

    def _problem(self) -> str | None:
        """Why the entry cannot be shown (its file gone, or a link in its place), or None."""
        try:
            if self._kept.originals[0].exists():
                return None
        except HistoryError as exc:
            return f"[{self.index}] {clip(self.prompt, 60)}: {exc}"
        return f"[{self.index}] {clip(self.prompt, 60)}: its image file {self.path} is gone (deleted or moved)."

    def __repr__(self) -> str:
        width, height = self.size
        more = f" +{len(self.files) - 1} more" if len(self.files) > 1 else ""
        parent = f" from [{self.parent_index}]" if self.parent_index is not None else ""
        if self.region:
            parent += f" {region_label(self.region)}"
        prompt = clip(self.prompt, 40)
        return (
            f"<HistoryEntry [{self.index}] {width}x{height} {self.mimes[0]} sha256={self.sha256s[0][:12]}{more}"
            f"{parent} model={self.model} prompt={prompt!r}>"
        )
