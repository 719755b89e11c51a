"""Comparison grids: one prompt through several models, ratios, sizes or prompts, side by side.

``compare(prompt, models=[...], aspect_ratios=[...])`` sends one request per combination,
all at once, through the session (which holds every rule: checks, replay, the budget),
and shows them as one labelled grid: the values of the first varying option down the left
edge, the others across the top. A combination a model cannot take (a ratio it refuses)
is marked on its tile and never sent; a failed one shows its one-line reason. Each image
is its own history entry. ``Grid.save("grid.png")`` writes the grid as one picture whose
PNG text chunks carry the axes and the values.
"""

from __future__ import annotations

import concurrent.futures
import html
import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.costs import TABLE, format_cost
from ..core.errors import AigateError, InputError
from ..core.images import b64encode, make_preview, open_image
from ..core.results import ImageResult
from ..core.text import one_line
from ..gateway.prepared import PreparedRequest
from ..session.session import Outcome, Request, Session, current_session, outcome
from . import runner
from .runner import Status
from .waiting import progress_bar

#: The options a grid can vary, as ``compare()`` names them, and the request field each sets.
AXES = {
    "models": "model",
    "aspect_ratios": "aspect_ratio",
    "image_sizes": "image_size",
    "prompts": "prompt",
}
#: How an axis is labelled on the grid's edges.
AXIS_LABELS = {"model": "model", "aspect_ratio": "ratio", "image_size": "size", "prompt": "prompt"}
#: The most combinations one grid sends: beyond it, a batch is the tool.
MAX_CELLS = 36
#: The long edge of a tile in the notebook's grid and in ``save()``, in pixels.
TILE_EDGE = 384
#: The side of the square box each tile is fitted into on screen, in CSS pixels.
TILE_BOX = TILE_EDGE // 2 + 64


@dataclass
class GridCell:
    """One combination: its values, and its image, its error, or why it was not sent."""

    values: dict[str, str]
    request: Request | None = None
    result: ImageResult | None = None
    error: str | None = None
    #: Not sent: the model cannot take this combination (the reason).
    refused: str | None = None

    @property
    def status(self) -> Status:
        if self.result is not None:
            return Status.REPLAYED if self.result.replayed else Status.DONE
        return Status.REFUSED if self.refused else (Status.FAILED if self.error else Status.PENDING)

    def short_caption(self) -> str:
        if self.result is not None:
            result = self.result
            width, height = result.size
            parts = [f"[{result.index}]" if result.index is not None else "", f"{width}x{height}"]
            parts.append("replayed" if result.replayed else f"in {result.elapsed:.1f} s")
            if result.replayed:
                parts.append("$0")
            elif result.cost is not None:
                parts.append(format_cost(result.cost, result.cost_source))
            return " · ".join(part for part in parts if part)
        if self.refused:
            return f"not sent: {self.refused}"
        return self.error or "not finished"


@dataclass
class Grid:
    """The combinations of one ``compare()``: ``rows`` and ``columns`` are the edge labels,
    ``cells[r][c]`` the tiles."""

    prompt: str
    row_axis: str | None
    column_axes: list[str]
    rows: list[str]
    columns: list[tuple[str, ...]]
    cells: list[list[GridCell]] = field(default_factory=list)

    @property
    def results(self) -> list[ImageResult]:
        return [cell.result for row in self.cells for cell in row if cell.result is not None]

    @property
    def failed(self) -> list[GridCell]:
        return [cell for row in self.cells for cell in row if cell.status is Status.FAILED]

    @property
    def refused(self) -> list[GridCell]:
        return [cell for row in self.cells for cell in row if cell.status is Status.REFUSED]

    def __iter__(self) -> Iterator[GridCell]:
        return (cell for row in self.cells for cell in row)

    def __len__(self) -> int:
        return sum(len(row) for row in self.cells)

    def column_label(self, column: tuple[str, ...]) -> str:
        return " · ".join(column)

    def corner_label(self) -> str:
        """What the edges hold, ``model / ratio``: the left edge's option, then the top's."""
        return " / ".join(AXIS_LABELS[a] for a in ([self.row_axis] if self.row_axis else []) + self.column_axes)

    def axes(self) -> dict[str, list[str]]:
        """The varying options and their values, as the PNG's text chunks keep them."""
        axes: dict[str, list[str]] = {}
        if self.row_axis:
            axes[self.row_axis] = list(self.rows)
        for k, name in enumerate(self.column_axes):
            axes[name] = list(dict.fromkeys(column[k] for column in self.columns))
        return axes

    def summary(self) -> str:
        counts = {s.value: sum(1 for cell in self if cell.status is s)
                  for s in (Status.DONE, Status.REPLAYED, Status.FAILED, Status.REFUSED)}
        parts = [f"{counts['done'] + counts['replayed']} images"]
        if counts["replayed"]:
            parts[0] += f" ({counts['replayed']} replayed)"
        parts += [f"{counts[s]} {s}" for s in ("failed", "refused") if counts[s]]
        sent = [cell.result for cell in self if cell.result is not None and not cell.result.replayed]
        known = [result for result in sent if result.cost is not None]
        line = f"{len(self)} combinations: " + ", ".join(parts)
        if known:
            estimated = any(result.cost_source == TABLE for result in known)
            line += f" | {format_cost(sum(result.cost or 0.0 for result in known), TABLE if estimated else None)}"
        return f"{line} | prompt: {one_line(self.prompt)[:120]}"

    # -- display ------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<Grid {self.summary()}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        lines = [self.summary()]
        for r, row in enumerate(self.cells):
            for c, cell in enumerate(row):
                where = " | ".join(filter(None, [self.rows[r], self.column_label(self.columns[c])]))
                lines.append(f"  {where}: {cell.short_caption()}")
        printer.text("\n".join(lines))

    def _repr_html_(self) -> str:
        """A table: column values across the top, row values down the left, a captioned tile each."""
        budget = max(20_000, 240_000 // max(1, len(self.results)))
        head = "".join(
            f'<th style="padding:4px;font-weight:600">{html.escape(self.column_label(column))}</th>'
            for column in self.columns
        )
        corner = html.escape(self.corner_label())
        body = []
        for r, row in enumerate(self.cells):
            label = f'<th style="padding:4px;text-align:right;font-weight:600;max-width:12em;overflow-wrap:anywhere">' \
                    f"{html.escape(self.rows[r])}</th>" if self.row_axis else ""
            tiles = "".join(f'<td style="padding:4px;vertical-align:top">{_tile_html(cell, budget)}</td>'
                            for cell in row)
            body.append(f"<tr>{label}{tiles}</tr>")
        corner_cell = f'<th style="font-size:smaller;font-weight:400">{corner}</th>' if self.row_axis else ""
        return (
            '<div class="aigate-grid" style="overflow-x:auto"><table style="border-collapse:collapse;'
            'table-layout:fixed">'
            f"<thead><tr>{corner_cell}{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f'<pre style="white-space:pre-wrap;font-size:smaller;margin:4px 0 0 0">{html.escape(self.summary())}'
            "</pre></div>"
        )

    # -- one picture ----------------------------------------------------------------------------

    def save(self, path: str | Path, tile: int = TILE_EDGE) -> Path:
        """Write the grid as one PNG: labelled edges, each tile captioned, a refused or failed
        combination as a blank tile with its reason; the axes and values, and each tile's
        history id, go in the PNG's text chunks."""
        from PIL import Image, ImageDraw
        from PIL.PngImagePlugin import PngInfo

        target = Path(path).expanduser()
        if target.suffix.lower() != ".png":
            raise InputError(f"grid.save({str(path)!r}): a grid is saved as PNG (its text chunks hold the axes); "
                             "name it e.g. grid.png.")
        if not isinstance(tile, int) or not 64 <= tile <= 2048:
            raise InputError(f"tile={tile!r}: a tile is 64 to 2048 pixels on its long edge.")
        font = _font(14)
        small = _font(12)
        left = 160 if self.row_axis else 8
        top, pad, caption_h = 32, 8, 20
        columns, rows = len(self.columns), len(self.cells)
        width = left + columns * (tile + pad) + pad
        height = top + rows * (tile + caption_h + pad) + pad
        sheet = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(sheet)
        if self.row_axis:
            draw.text((8, 8), _fit(draw, self.corner_label(), small, left - 16), fill=(90, 90, 90), font=small)
        for c, column in enumerate(self.columns):
            x = left + pad + c * (tile + pad)
            draw.text((x, 8), _fit(draw, self.column_label(column), font, tile), fill="black", font=font)
        for r, row in enumerate(self.cells):
            y = top + r * (tile + caption_h + pad)
            if self.row_axis:
                for k, line in enumerate(_wrap(draw, self.rows[r], font, left - 16)[:6]):
                    draw.text((8, y + 4 + k * 18), line, fill="black", font=font)
            for c, cell in enumerate(row):
                x = left + pad + c * (tile + pad)
                if cell.result is not None:
                    with open_image(cell.result.data) as image:
                        picture = image.convert("RGB")
                    picture.thumbnail((tile, tile), Image.Resampling.LANCZOS)
                    sheet.paste(picture, (x + (tile - picture.width) // 2, y + (tile - picture.height) // 2))
                else:
                    draw.rectangle((x, y, x + tile - 1, y + tile - 1), outline=(153, 153, 153), width=1)
                    for k, line in enumerate(_wrap(draw, cell.short_caption(), small, tile - 16)[:8]):
                        draw.text((x + 8, y + 8 + k * 16), line, fill=(90, 90, 90), font=small)
                if cell.result is not None:
                    draw.text((x, y + tile + 2), _fit(draw, cell.short_caption(), small, tile), fill=(60, 60, 60),
                              font=small)
        info = PngInfo()
        info.add_itxt("aigate_nb:prompt", self.prompt)
        info.add_itxt("aigate_nb:axes", json.dumps(self.axes(), ensure_ascii=False))
        info.add_itxt("aigate_nb:cells", json.dumps([
            {**cell.values, "status": cell.status.value, "history_id": cell.result.id if cell.result else None,
             "reason": cell.refused or cell.error}
            for cell in self
        ], ensure_ascii=False))
        info.add_text("Software", "aigate_nb")
        target.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(target, format="PNG", pnginfo=info)
        return target


def _tile_html(cell: GridCell, budget: int) -> str:
    """One tile: the picture fitted into a square box (a 1:4 beside a 16:9 stays a tile), its
    caption below; a refused or failed combination as a blank box with its reason."""
    caption = html.escape(cell.short_caption())
    box = f"width:{TILE_BOX}px;max-width:100%;aspect-ratio:1;display:flex;align-items:center;justify-content:center"
    if cell.result is not None:
        mime, data, _ = make_preview(cell.result.data, TILE_EDGE, max_bytes=budget * 3 // 4)
        title = html.escape(cell.result.prompt, quote=True)
        return (f'<figure style="margin:0;width:{TILE_BOX}px;max-width:100%"><div style="{box}">'
                f'<img src="data:{mime};base64,{b64encode(data)}" alt="{title}" title="{title}" '
                'style="max-width:100%;max-height:100%;display:block"/></div>'
                f'<figcaption style="font-size:smaller">{caption}</figcaption></figure>')
    style = "opacity:.8" if cell.refused else "color:#b00"
    return (f'<div style="{box};border:1px dashed #999;padding:8px;box-sizing:border-box;'
            f'font-size:smaller;overflow-wrap:anywhere;{style}">{caption}</div>')


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # an older Pillow: one size only
        return ImageFont.load_default()


def _fit(draw: Any, text: str, font: Any, width: int) -> str:
    """``text`` cut with an ellipsis to ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _wrap(draw: Any, text: str, font: Any, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` pixels; a word too long for one (a model id)
    is broken after a ``/`` or ``-``, else anywhere."""
    words = []
    for word in text.split():
        while draw.textlength(word, font=font) > width and len(word) > 1:
            cut = len(word) - 1
            while cut > 1 and draw.textlength(word[:cut], font=font) > width:
                cut -= 1
            soft = max(word.rfind("/", 0, cut), word.rfind("-", 0, cut))
            cut = soft + 1 if soft > 0 else cut
            words.append(word[:cut])
            word = word[cut:]
        words.append(word)
    lines, line = [], ""
    for word in words:
        candidate = f"{line} {word}".strip()
        if draw.textlength(candidate, font=font) <= width or not line:
            line = candidate
        else:
            lines.append(line)
            line = word
    return lines + ([line] if line else [])


# -- building and sending ---------------------------------------------------------------------


def _values(name: str, value: Any) -> list[str] | None:
    """An axis's values: a list, or one comma-separated string (``"1:1,16:9"``), or None."""
    if value is None:
        return None
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")] if name != "prompts" else [value]
    elif isinstance(value, Sequence):
        items = [str(part).strip() for part in value]
    else:
        raise InputError(f"{name}= takes a list of values, e.g. {name}=['1:1', '16:9'].")
    items = [item for item in items if item]
    if not items:
        raise InputError(f"{name}= is empty; give at least one value or leave it out.")
    if len(set(items)) != len(items):
        raise InputError(f"{name}= names {sorted({i for i in items if items.count(i) > 1})[0]!r} twice.")
    return items


def plan_grid(
    prompt: str | None = None,
    *,
    models: Any = None,
    aspect_ratios: Any = None,
    image_sizes: Any = None,
    prompts: Any = None,
    route: str | None = None,
    images: Sequence[Any] = (),
    new: bool = False,
    session: Session | None = None,
) -> Grid:
    """The grid's combinations, each checked by the session as a request would be; a
    combination the model cannot take is marked refused (never sent). Raises ``InputError``
    before anything is sent when nothing could be sent."""
    session = session or current_session()
    given = {name: _values(name, value) for name, value in
             (("models", models), ("aspect_ratios", aspect_ratios), ("image_sizes", image_sizes),
              ("prompts", prompts))}
    if prompt is not None and given["prompts"]:
        raise InputError("Give either prompt or prompts=[...] (one prompt per row of the grid), not both.")
    if prompt is None and not given["prompts"]:
        raise InputError("compare() needs a prompt, or prompts=[...] to compare prompts.")
    if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
        raise InputError("The prompt is empty; write what to draw.")
    varying = [AXES[name] for name, values in given.items() if values and len(values) > 1]
    if not varying:
        raise InputError(
            "A grid compares at least two values of one option: e.g. models=[a, b] or aspect_ratios='1:1,16:9' "
            "(in a cell: -m a,b or -a 1:1,16:9)."
        )
    fixed = {AXES[name]: values[0] for name, values in given.items() if values and len(values) == 1}
    axis_values = {AXES[name]: values for name, values in given.items() if values and len(values) > 1}
    row_axis, column_axes = (varying[0], varying[1:]) if len(varying) > 1 else (None, varying)
    rows = axis_values[row_axis] if row_axis else [""]
    columns = list(itertools.product(*(axis_values[a] for a in column_axes)))
    if len(rows) * len(columns) > MAX_CELLS:
        raise InputError(
            f"{len(rows) * len(columns)} combinations is more than a grid shows ({MAX_CELLS}); use fewer values, "
            "or aigate_nb.batch() for many images."
        )
    grid = Grid(prompt=prompt or " | ".join(given["prompts"] or []), row_axis=row_axis, column_axes=column_axes,
                rows=rows, columns=columns)
    to_send: list[PreparedRequest] = []  # the combinations the history does not already answer
    for row_value in rows:
        line = []
        for column in columns:
            values = dict(fixed)
            if row_axis:
                values[row_axis] = row_value
            values.update(zip(column_axes, column))
            request = Request(
                prompt=str(values.get("prompt", prompt)).strip(),
                model=values.get("model"),
                aspect_ratio=values.get("aspect_ratio"),
                image_size=values.get("image_size"),
                route=route,
                images=tuple(images),
                new=new,
            )
            cell = GridCell(values={k: v for k, v in values.items() if k != "prompt" or prompts is not None},
                            request=request)
            try:
                prepared, replayed = runner.prepare(session, request)
            except AigateError as exc:
                cell.refused = one_line(str(exc)).rstrip(".")
            else:
                if not replayed:
                    to_send.append(prepared)
            line.append(cell)
        grid.cells.append(line)
    cells = list(grid)
    if all(cell.refused for cell in cells):
        raise InputError(f"No combination can be sent: {cells[0].refused}.")
    _hold_to_budget(session, to_send)
    return grid


def _hold_to_budget(session: Session, to_send: list[PreparedRequest]) -> None:
    """The combinations the history does not replay, estimated together and held against the
    budget, so that a grid over it is refused before anything is sent."""
    planned = runner.estimate_all(session, to_send, "this grid")
    if planned is not None:
        session.check_budget(planned)


def run_grid(grid: Grid, session: Session | None = None, progress: bool = True) -> Grid:
    """Send every combination not refused, all at once, and wait for them all, with a
    ``tqdm`` bar of what has come back (a widget in Jupyter, text on stderr elsewhere).

    An interrupt stops the waiting, not the requests: they go on and their images still join
    the history; ``KeyboardInterrupt`` is raised again saying so."""
    session = session or current_session()
    pending: dict[concurrent.futures.Future, GridCell] = {}
    for cell in grid:
        if cell.refused or cell.request is None:
            continue
        submitted = runner.submit(session, cell.request)  # held against the budget as a whole already
        if isinstance(submitted, Outcome):
            cell.error = runner.ended(submitted).error
            continue
        pending[submitted] = cell
    bar = None
    if progress and pending:
        bar = progress_bar(len(pending), desc="combinations", unit="image", leave=False)
    try:
        for future in concurrent.futures.as_completed(pending):
            ended = runner.ended(outcome(future))
            cell = pending[future]
            if ended.result is not None:
                cell.result = ended.result
            else:
                cell.error = ended.error
            if bar is not None:
                bar.update(1)
    except KeyboardInterrupt:
        waiting = sum(1 for future in pending if not future.done())
        raise KeyboardInterrupt(
            f"Grid interrupted: {len(pending) - waiting} of {len(pending)} images back; the other {waiting} "
            "requests go on and their images still join the history (%aigate history)."
        ) from None
    finally:
        if bar is not None:
            bar.close()
    return grid


def compare(
    prompt: str | None = None,
    *,
    models: Any = None,
    aspect_ratios: Any = None,
    image_sizes: Any = None,
    prompts: Any = None,
    route: str | None = None,
    images: Sequence[Any] = (),
    edit: Any = None,
    new: bool = False,
    progress: bool = True,
    session: Session | None = None,
    namespace: Mapping[str, Any] | None = None,
) -> Grid:
    """One request per combination of the values given, sent at once, shown as one labelled grid.

    ``models``, ``aspect_ratios``, ``image_sizes`` and ``prompts`` each take a list (or a
    comma-separated string); an option with one value applies to every tile. ``edit`` (a
    history index or id, or an image) makes every tile an edit of it. Each image joins the
    history; what the history already holds is replayed (``new=True`` sends all).
    """
    session = session or current_session()
    inputs = list(images) if isinstance(images, (list, tuple)) else [images]
    if edit is not None:
        inputs.insert(0, edit)
    resolved = tuple(session.resolve_image(item, namespace) for item in inputs)
    grid = plan_grid(prompt, models=models, aspect_ratios=aspect_ratios, image_sizes=image_sizes, prompts=prompts,
                     route=route, images=resolved, new=new, session=session)
    return run_grid(grid, session, progress=progress)


__all__ = ["Grid", "GridCell", "compare", "plan_grid", "run_grid"]
