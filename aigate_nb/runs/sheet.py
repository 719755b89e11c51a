"""A batch's contact sheet: its rows as small captioned thumbnails, within a byte budget,
and the sheet that grows in place while the batch runs."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any, Protocol

from ..core.costs import format_cost
from ..core.text import clip

#: Bytes of thumbnails one contact sheet may add to the notebook (base64 included): a sheet of
#: a long batch shows as many rows as fit (the newest, while it grows) and says how many more.
SHEET_BUDGET = 250_000


class SheetRow(Protocol):
    """What a contact sheet shows of a row (a ``BatchRow``)."""

    number: int
    prompt: str
    error: str | None

    @property
    def status(self) -> str: ...

    @property
    def result(self) -> Any: ...

    @property
    def cost(self) -> float | None: ...

    @property
    def cost_source(self) -> str | None: ...

    def thumbnail(self) -> str | None: ...


def contact_sheet(rows: Sequence[SheetRow], summary: str, newest: bool = False) -> str:
    """The rows as a grid of small thumbnails, each with its row number and status; a failed
    row as a blank tile with its reason. As many rows as ``SHEET_BUDGET`` holds are shown (the
    first ones, or with ``newest`` the last ones) and a line says how many more there are."""
    tiles: list[tuple[int, str]] = []
    spent = 0
    for row in reversed(rows) if newest else rows:
        tile = _tile(row)
        spent += len(tile)
        if spent > SHEET_BUDGET and tiles:
            break
        tiles.append((row.number, tile))
    tiles.sort()
    more = len(rows) - len(tiles)
    note = ""
    if more:
        which = "newest" if newest else "first"
        note = (f"<div style=\"font-size:smaller\">The {which} {len(tiles)} of {len(rows)} rows; the others are in "
                ".rows, .to_pandas() and %aigate history.</div>")
    return ('<div class="aigate-batch"><div style="display:grid;grid-template-columns:repeat(auto-fill,'
            'minmax(110px,1fr));gap:6px;align-items:start">' + "".join(tile for _, tile in tiles) + '</div>'
            f'{note}<pre style="white-space:pre-wrap;font-size:smaller;margin:4px 0 0 0">{html.escape(summary)}'
            '</pre></div>')


def _tile(row: SheetRow) -> str:
    """One row: its thumbnail fitted into a square box (a 1:4 beside a 16:9 stays a tile), or
    a blank box with its reason (in full on hover); its number and status below."""
    title = html.escape(f"{row.number}: {row.prompt}", quote=True)
    box = "aspect-ratio:1;display:flex;align-items:center;justify-content:center;overflow:hidden"
    thumbnail = row.thumbnail()
    if thumbnail is not None:
        body = (f'<div style="{box}"><img src="data:image/jpeg;base64,{thumbnail}" alt="{title}" title="{title}" '
                'style="max-width:100%;max-height:100%;display:block"/></div>')
    else:
        reason = "(image unreadable)" if row.result is not None else (row.error or row.status)
        body = (f'<div title="{html.escape(reason, quote=True)}" style="aspect-ratio:1;overflow:hidden;'
                'border:1px dashed #999;padding:6px;box-sizing:border-box;font-size:smaller;overflow-wrap:anywhere">'
                f'{html.escape(clip(reason, 100))}</div>')
    label = f"{row.number} · {row.status}"
    if row.cost:
        label += f" · {format_cost(row.cost, row.cost_source)}"
    return (f'<figure style="margin:0;min-width:0">{body}'
            f'<figcaption style="font-size:smaller">{html.escape(label)}</figcaption></figure>')


def live_sheet(rows: Sequence[SheetRow], summary: str) -> str:
    """The contact sheet that grows while the batch runs: its newest rows."""
    return f'<div class="aigate-batch-live">{contact_sheet(rows, summary, newest=True)}</div>'



def redraws_in_place() -> bool:
    """Whether the front end can redraw an output in place (a Jupyter kernel): a terminal
    would print a new sheet at every redraw, so it gets none (as ``waiting.StatusLine``)."""
    try:
        from IPython import get_ipython
        from IPython.core.displaypub import DisplayPublisher
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell.display_pub) is not DisplayPublisher
