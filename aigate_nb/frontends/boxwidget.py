"""A picture on which one box is drawn with the mouse: the panel's way to mark a region to edit.

The browser gets a preview (``PREVIEW_EDGE`` pixels on its long side, not a 4K original) and
draws the box on it with pointer events; only the box, in the preview's pixels, comes back.
Python maps it to the source's pixels, clamped to the picture (``box``), and back again when
``box`` is set from Python (the panel's X,Y,W,H field). The browser side is a small ES module
run by anywidget, so it needs no front-end extension.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anywidget
import traitlets

from ..core.images import make_preview
from ..core.region import Box, clamp_box

#: Long edge in pixels of the picture drawn on (the original may be 4K).
PREVIEW_EDGE = 512


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

    _esm = """
    const EDGE = 8;  // CSS pixels around an edge that grab it for resizing
    const clamp = (value, low, high) => Math.min(Math.max(value, low), high);

    export default {
      render({ model, el }) {
        const frame = document.createElement("div");
        frame.className = "aigate-box-frame";
        frame.tabIndex = 0;
        frame.setAttribute("data-lm-suppress-shortcuts", "true");  // Esc clears the box, not the cell's mode
        frame.title = "Drag to mark a region to edit; drag inside it to move it, a corner or an edge to resize it; "
          + "Esc clears it";
        const img = document.createElement("img");
        img.className = "aigate-preview";
        img.alt = "the selected picture";
        img.draggable = false;
        const rect = document.createElement("div");
        rect.className = "aigate-box";
        for (const corner of ["nw", "ne", "sw", "se"]) {
          const handle = document.createElement("div");
          handle.className = `aigate-box-handle aigate-box-${corner}`;
          rect.appendChild(handle);
        }
        frame.append(img, rect);
        const bar = document.createElement("div");
        bar.className = "aigate-box-bar";
        const label = document.createElement("span");
        label.className = "aigate-box-size";
        const clear = document.createElement("button");
        clear.type = "button";
        clear.className = "jupyter-widgets jupyter-button widget-button aigate-box-clear";
        clear.textContent = "Clear box";
        bar.append(label, clear);
        el.append(frame, bar);

        let url = null;
        let box = null;   // [x, y, w, h] in the preview's pixels, or null
        let drag = null;

        const factor = () => img.clientWidth / (img.naturalWidth || 1);  // CSS pixels to a preview pixel
        const point = (event) => {
          const r = img.getBoundingClientRect();
          const f = r.width / (img.naturalWidth || 1);
          return [clamp((event.clientX - r.left) / f, 0, img.naturalWidth),
                  clamp((event.clientY - r.top) / f, 0, img.naturalHeight)];
        };
        const inSource = (b) => {
          const scale = model.get("scale");
          return b.map((value) => Math.round(value * scale));
        };
        const describe = () => {
          const [width, height] = model.get("source_size");
          const kept = model.get("box");
          const shown = drag && box ? inSource(box) : (kept && kept.length === 4 ? kept : null);
          label.textContent = shown
            ? `${shown[2]} × ${shown[3]} px at ${shown[0]}, ${shown[1]}`
            : `Drag on the picture (${width} × ${height} px) to mark a region`;
          clear.disabled = !box;
        };
        const draw = () => {
          const f = factor();
          if (!box || !img.naturalWidth || box[2] <= 0 || box[3] <= 0) {
            rect.style.display = "none";
          } else {
            rect.style.display = "block";
            rect.style.left = `${img.offsetLeft + box[0] * f}px`;
            rect.style.top = `${img.offsetTop + box[1] * f}px`;
            rect.style.width = `${box[2] * f}px`;
            rect.style.height = `${box[3] * f}px`;
          }
          describe();
        };
        const commit = () => {
          model.set("preview_box", box ? box.map((v) => Math.round(v * 100) / 100) : []);
          model.save_changes();
        };
        const follow = () => {
          if (drag) return;
          const kept = model.get("preview_box");
          box = kept && kept.length === 4 ? kept.slice() : null;
          draw();
        };
        const showImage = () => {
          if (url) URL.revokeObjectURL(url);
          const data = model.get("image");
          url = data && data.byteLength ? URL.createObjectURL(new Blob([data], { type: model.get("mime") })) : null;
          if (url) img.src = url; else img.removeAttribute("src");
          el.style.display = url ? "" : "none";
        };
        // Which part of the box a point (in preview pixels) is on: edges such as "nw", "move", or null.
        const part = (p) => {
          if (!box) return null;
          const tol = EDGE / factor();
          const [x, y, w, h] = box;
          if (p[0] < x - tol || p[0] > x + w + tol || p[1] < y - tol || p[1] > y + h + tol) return null;
          let edges = "";
          if (Math.abs(p[1] - y) <= tol) edges += "n"; else if (Math.abs(p[1] - y - h) <= tol) edges += "s";
          if (Math.abs(p[0] - x) <= tol) edges += "w"; else if (Math.abs(p[0] - x - w) <= tol) edges += "e";
          if (edges) return edges;
          return p[0] > x && p[0] < x + w && p[1] > y && p[1] < y + h ? "move" : null;
        };
        const CURSORS = { n: "ns-resize", s: "ns-resize", e: "ew-resize", w: "ew-resize", nw: "nwse-resize",
          se: "nwse-resize", ne: "nesw-resize", sw: "nesw-resize", move: "move" };

        frame.addEventListener("pointerdown", (event) => {
          if (event.button !== 0 || !img.naturalWidth) return;
          event.preventDefault();
          frame.focus();
          frame.setPointerCapture(event.pointerId);
          const p = point(event);
          const on = part(p);
          drag = on === "move" ? { kind: "move", from: p, box: box.slice() }
            : on ? { kind: "resize", edges: on, box: box.slice() }
            : { kind: "draw", from: p };
          if (drag.kind === "draw") box = [p[0], p[1], 0, 0];
          draw();
        });
        frame.addEventListener("pointermove", (event) => {
          const p = point(event);
          if (!drag) {
            frame.style.cursor = CURSORS[part(p)] || "crosshair";
            return;
          }
          const W = img.naturalWidth, H = img.naturalHeight;
          if (drag.kind === "move") {
            const [x, y, w, h] = drag.box;
            box = [clamp(x + p[0] - drag.from[0], 0, W - w), clamp(y + p[1] - drag.from[1], 0, H - h), w, h];
          } else {
            let left, top, right, bottom;
            if (drag.kind === "draw") {
              [left, top] = drag.from;
              [right, bottom] = p;
            } else {  // the edges grabbed follow the pointer, the others stay
              const [x, y, w, h] = drag.box;
              left = drag.edges.includes("w") ? p[0] : x;
              right = drag.edges.includes("e") ? p[0] : x + w;
              top = drag.edges.includes("n") ? p[1] : y;
              bottom = drag.edges.includes("s") ? p[1] : y + h;
            }
            box = [Math.min(left, right), Math.min(top, bottom), Math.abs(right - left), Math.abs(bottom - top)];
          }
          draw();
        });
        const release = () => {
          if (!drag) return;
          drag = null;
          if (box && (box[2] < 1 || box[3] < 1)) box = null;  // a click, not a drag: no box
          draw();
          commit();
        };
        frame.addEventListener("pointerup", release);
        frame.addEventListener("pointercancel", release);
        const clearBox = () => { box = null; draw(); commit(); };
        frame.addEventListener("keydown", (event) => {
          if (event.key === "Escape" && box) {
            event.preventDefault();
            event.stopPropagation();
            clearBox();
          }
        });
        clear.addEventListener("click", clearBox);
        img.addEventListener("load", draw);
        const resized = new ResizeObserver(draw);
        resized.observe(img);

        model.on("change:image", showImage);
        model.on("change:preview_box", follow);
        model.on("change:box", describe);
        model.on("change:source_size", describe);
        showImage();
        follow();
        return () => {
          resized.disconnect();
          model.off("change:image", showImage);
          model.off("change:preview_box", follow);
          model.off("change:box", describe);
          model.off("change:source_size", describe);
          if (url) URL.revokeObjectURL(url);
        };
      }
    };
    """
    _css = """
    .aigate-box-frame { position: relative; display: flex; justify-content: center; overflow: hidden; outline: none;
      touch-action: none; user-select: none; cursor: crosshair; background: var(--jp-layout-color2, #f3f3f3); }
    .aigate-box-frame:focus-visible { box-shadow: 0 0 0 2px var(--jp-brand-color1, #1976d2); }
    .aigate-box-frame img { display: block; max-width: 100%; max-height: 300px; pointer-events: none; }
    .aigate-box { position: absolute; box-sizing: border-box; border: 2px solid #ffeb3b;
      box-shadow: 0 0 0 1px rgba(0, 0, 0, 0.6), 0 0 0 9999px rgba(0, 0, 0, 0.25); pointer-events: none; }
    .aigate-box-handle { position: absolute; width: 8px; height: 8px; background: #ffeb3b;
      border: 1px solid rgba(0, 0, 0, 0.6); box-sizing: border-box; }
    .aigate-box-nw { left: -5px; top: -5px; } .aigate-box-ne { right: -5px; top: -5px; }
    .aigate-box-sw { left: -5px; bottom: -5px; } .aigate-box-se { right: -5px; bottom: -5px; }
    .aigate-box-bar { display: flex; align-items: center; gap: 8px; margin-top: 4px; min-height: 28px; }
    .aigate-box-size { flex: 1 1 auto; min-width: 0; color: var(--jp-ui-font-color2, #616161);
      font-size: var(--jp-ui-font-size1, 13px); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
    .aigate-box-clear { flex: 0 0 auto; width: auto; }
    """
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
    def _clamped(self, proposal) -> list[int]:
        value = proposal["value"]
        if len(value) != 4:
            return []
        box = _non_empty(clamp_box(tuple(value), *self.source_size))  # type: ignore[arg-type]
        return list(box) if box else []

    @traitlets.observe("preview_box")
    def _from_pointer(self, change) -> None:
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
    def _to_pointer(self, change) -> None:
        if self._mapping:
            return
        self._mapping = True
        try:
            self.preview_box = source_to_preview(change.new, self.scale)
        finally:
            self._mapping = False
