"""A history as it shows in a notebook (``History._repr_html_``): its thumbnails, newest
first, each with its number, prompt and parent, within a size a notebook keeps."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from ..core.errors import HistoryError, LinkInHistoryError
from ..core.images import b64encode
from ..core.text import clip, counted
from .layout import THUMBNAIL_EDGE
from .spending import summarize

if TYPE_CHECKING:  # the store shows itself with this; this module never makes a history
    from .store import History

#: The most HTML the gallery writes: the older entries past it are counted, not shown.
GALLERY_BUDGET = 250_000


def gallery_html(history: History) -> str:
    """A gallery of small thumbnails, newest first, each with its index, prompt and parent."""
    entries = list(history)[::-1]
    head = f"<div><b>History '{html.escape(history.name)}'</b>: {counted(len(entries))}{_attempts_note(history)}</div>"
    figures: list[str] = []
    used = len(head)
    for entry in entries:
        parent = f"<br/>from [{entry.parent_index}]" if entry.parent_index is not None else ""
        prompt = clip(entry.prompt, 60)
        try:
            picture = (
                f'<img src="data:image/jpeg;base64,{b64encode(history.thumbnail(entry))}" '
                f'style="max-width:{THUMBNAIL_EDGE}px;max-height:{THUMBNAIL_EDGE}px"/>'
            )
        except HistoryError as exc:  # its file is gone or damaged: the others still show
            what = ("not shown: its file is a symbolic link" if isinstance(exc, LinkInHistoryError)
                    else "image file gone" if " is gone " in str(exc) else "no picture: its file is damaged")
            picture = (
                '<div style="padding:8px;border:1px dashed #999;font-size:smaller" '
                f'title="{html.escape(str(exc))}">{what}</div>'
            )
        figure = (
            f'<figure style="margin:0;width:{THUMBNAIL_EDGE}px" title="{html.escape(entry.prompt)}">'
            f"{picture}"
            f'<figcaption style="font-size:smaller">[{entry.index}] {html.escape(prompt)}{parent}</figcaption>'
            "</figure>"
        )
        if used + len(figure) > GALLERY_BUDGET:
            rest = len(entries) - len(figures)
            older = counted(rest, "older entry", "older entries")
            figures.append(f"<div>... and {older}: history[i] shows one.</div>")
            break
        figures.append(figure)
        used += len(figure)
    row = '<div style="display:flex;flex-wrap:wrap;gap:8px">' + "".join(figures) + "</div>"
    return f'<div class="aigate-history">{head}{row}</div>'


def _attempts_note(history: History) -> str:
    """``; 2 requests made no picture but were charged (~$0.002): %aigate usage counts them``, or nothing."""
    try:
        attempts = history.attempts()
    except HistoryError:
        return ""
    if not attempts:
        return ""
    spent = summarize(attempts, [history.name]).total
    requests = counted(len(attempts), "request")
    verb = "was" if len(attempts) == 1 else "were"
    return (f"; {requests} made no picture but {verb} charged ({html.escape(spent.cost_text())}): "
            "%aigate usage counts them")
