"""A batch's contact sheet: its rows as small captioned thumbnails, within a byte budget;
and its progress: a bar, and the sheet that grows in place while the batch runs."""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..core.costs import format_cost
from ..core.text import clip
from .runner import Status
from .waiting import progress_bar

#: Bytes of thumbnails one contact sheet may add to the notebook (base64 included): a sheet of
#: a long batch shows as many rows as fit (the newest, while it grows) and says how many more.
SHEET_BUDGET = 250_000
#: Seconds between two redraws of the growing contact sheet.
SHEET_INTERVAL = 1.0


class SheetRow(Protocol):
    """What a contact sheet shows of a row (a ``BatchRow``)."""

    number: int
    prompt: str
    error: str | None
    #: The history held its picture when the run was planned: counted from the start.
    planned_replay: bool

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


class Progress:
    """The batch's progress: a ``tqdm`` bar (a widget in Jupyter, text on stderr in a terminal:
    ``waiting.progress_bar``) with done, failed, replayed and spent so far and the time left,
    and where the front end can redraw an output in place, a contact sheet that grows as
    images arrive.

    The rows the history answers are counted from the start (the bar's ``initial``), so
    that the time left is reckoned from the rows actually sent."""

    def __init__(
        self, rows: Sequence[SheetRow], headline: str, summary: Callable[[Any, str | None], str],
        progress: bool, display: bool,
    ) -> None:
        self.rows = rows
        self.summary = summary
        self.lock = threading.Lock()
        self.counts = {"done": 0, "replayed": 0, "failed": 0}
        self.spent: float | None = None
        self.stopped: str | None = None
        self.bar: Any = None
        self.sheet: Any = None
        self.drawn = 0.0
        self.dirty = False
        if progress or display:
            print(headline)
        if progress:
            precounted = sum(1 for row in self.rows if row.planned_replay)
            self.bar = progress_bar(len(self.rows), initial=precounted, desc="images", unit="row", smoothing=0.1)
        if display and redraws_in_place():
            from IPython.display import HTML
            from IPython.display import display as show

            self.sheet = show(HTML(live_sheet([], "waiting for the first image")), display_id=True)

    def finished(self, row: SheetRow) -> None:
        with self.lock:
            self.counts[str(row.status) if str(row.status) in self.counts else str(Status.FAILED)] += 1
            if row.cost is not None and not row.planned_replay:
                self.spent = (self.spent or 0.0) + row.cost
            if self.bar is not None:
                shown: dict[str, Any] = {"done": self.counts["done"], "failed": self.counts["failed"],
                         "replayed": self.counts["replayed"]}
                if self.spent is not None:
                    shown["spent"] = f"${self.spent:.3f}"
                self.bar.set_postfix(shown, refresh=False)
                self.bar.update(0 if row.planned_replay else 1)  # a planned replay is in the bar's start
            self.dirty = True

    def tick(self, force: bool = False) -> None:
        """Redraw the growing sheet, at most every ``SHEET_INTERVAL`` seconds unless ``force``."""
        if self.sheet is None or not self.dirty:
            return
        now = time.monotonic()
        if force or now - self.drawn >= SHEET_INTERVAL:
            from IPython.display import HTML

            finished = [row for row in self.rows if row.status != Status.PENDING]
            summary = self.summary(self.rows, self.stopped)
            self.sheet.update(HTML(live_sheet(finished, summary)))
            self.drawn, self.dirty = now, False

    def close(self) -> None:
        self.dirty = True
        self.tick(force=True)
        if self.bar is not None:
            self.bar.close()
