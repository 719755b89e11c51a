"""A picture on which one box is drawn with the mouse: the panel's way to mark a region to edit.

The browser gets a preview (``PREVIEW_EDGE`` pixels on its long side, not a 4K original) and
draws the box on it with pointer events; only the box, in the preview's pixels, comes back.
Python maps it to the source's pixels, clamped to the picture (``box``), and back again when
``box`` is set from Python (the panel's X,Y,W,H field). The browser side is a small ES module
run by anywidget (``boxwidget.js``, styled by ``boxwidget.css``), so it needs no front-end extension.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anywidget
import traitlets

from ..core.images import make_preview
from ..core.region import Box, clamp_box

#: The browser side's files, beside this one: anywidget reads a Path's contents when the class is defined.
_HERE = Path(__file__).parent

#: Long edge in pixels of the picture drawn on (the original may be 4K).
PREVIEW_EDGE = 512


_New = TypeVar("_New", covariant=True)


class _Change(Protocol[_New]):
    """What traitlets passes an observer: the trait's new value."""

    @property
    def new(self) -> _New: ...


def preview_to_source(box: Sequence[float], scale: float, size: tuple[int, int]) -> Box | None:
    """A box drawn in the preview's pixels as a box in the source's (``scale`` source pixels to
    a preview pixel), clamped to the source's ``size``; None for no box or one outside it.
    Corner and size are scaled each on its own, so a box moved keeps its size."""
    if len(box) != 4:
        return None
    x, y, w, h = (round(value * scale) for value in box)
    return _non_empty(clamp_box((x, y, w, h), *size))


def source_to_preview(box: Sequence[int], scale: float) -> list[float]:
    """A box in the source's pixels as drawn on the preview; [] for no box."""
    if len(box) != 4 or scale <= 0:
        return []
    return [round(value / scale, 2) for value in box]


def _non_empty(box: Box) -> Box | None:
    return box if box[2] > 0 and box[3] > 0 else None


class BoxWidget(anywidget.AnyWidget):
    """The selected picture, on which a box is drawn: drag to draw one, drag inside it to move
    it, drag a corner or an edge to resize it; Clear box or Esc removes it. Its size shows
    under the picture in the source's pixels.

    ``show(data, size)`` puts a picture (its bytes and its width and height) in and clears the
    box. ``box`` is ``[x, y, w, h]`` in the source's pixels, or ``[]``; setting it draws it
    (clamped to the picture), and drawing sets it.
    """

    _esm = _HERE / "boxwidget.js"
    _css = _HERE / "boxwidget.css"
    #: The preview's bytes and type; ``scale`` source pixels make one preview pixel.
    image = traitlets.Bytes(b"").tag(sync=True)
    mime = traitlets.Unicode("image/jpeg").tag(sync=True)
    scale = traitlets.Float(1.0).tag(sync=True)
    #: The source's width and height in pixels.
    source_size = traitlets.Tuple(traitlets.Int(), traitlets.Int(), default_value=(0, 0)).tag(sync=True)
    #: The box as the pointer drew it, in the preview's pixels (set by the browser).
    preview_box = traitlets.List(traitlets.Float()).tag(sync=True)
    #: The box in the source's pixels, ``[x, y, w, h]``, clamped to the picture; ``[]`` for none.
    box = traitlets.List(traitlets.Int()).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        self._mapping = False  # one of the two boxes is being set from the other
        super().__init__(**kwargs)

    def show(self, data: bytes, size: tuple[int, int], edge: int = PREVIEW_EDGE) -> None:
        """Draw on the picture ``data`` (``size`` its width and height), with no box yet."""
        mime, preview, (width, _) = make_preview(data, edge)
        with self.hold_sync():
            self.box, self.preview_box = [], []
            self.source_size = (int(size[0]), int(size[1]))
            self.scale = size[0] / width
            self.mime, self.image = mime, preview

    def clear(self) -> None:
        """Remove the box."""
        self.box = []

    @traitlets.validate("box")
    def _clamped(self, proposal: Mapping[str, Any]) -> list[int]:
        value = proposal["value"]
        if len(value) != 4:
            return []
        box = _non_empty(clamp_box(tuple(value), *self.source_size))
        return list(box) if box else []

    @traitlets.observe("preview_box")
    def _from_pointer(self, change: _Change[list[float]]) -> None:
        if self._mapping:
            return
        box = preview_to_source(change.new, self.scale, self.source_size)
        self._mapping = True
        try:
            self.box = list(box) if box else []
            if box is None:
                self.preview_box = []  # nothing of it was on the picture: none drawn either
        finally:
            self._mapping = False

    @traitlets.observe("box")
    def _to_pointer(self, change: _Change[list[int]]) -> None:
        if self._mapping:
            return
        self._mapping = True
        try:
            self.preview_box = source_to_preview(change.new, self.scale)
        finally:
            self._mapping = False
