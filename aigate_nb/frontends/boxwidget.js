// The browser side of BoxWidget (boxwidget.py): a box drawn on a preview with the pointer.
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
