"""The panel's gallery: this notebook's history as thumbnails, searched, a page at a time.

It shows ``PanelState.gallery`` and turns clicks into ``PanelState`` calls; which entries
a page holds, and which is selected, is decided there.
"""

from __future__ import annotations

import html
import io

import ipywidgets as w

from ..core.errors import HistoryError
from ..core.text import one_line
from ..records.store import HistoryEntry
from .panel_layout import auto_width, row
from .panel_state import GALLERY_SLOTS, PanelState


class Slot:
    """One gallery cell: a thumbnail and the button that selects its entry."""

    def __init__(self, state: PanelState) -> None:
        self.index: int | None = None
        self.entry_id: str | None = None
        self.image = w.Image(format="jpeg", layout=w.Layout(width="96px", height="96px", object_fit="contain"))
        self.image.add_class("aigate-thumb")
        self.button = w.Button(description="", layout=w.Layout(width="96px", height="24px", margin="2px 0 0 0"))
        self.button.on_click(lambda _: self.index is not None and state.guarded(state.select, self.index))
        self.box = w.VBox([self.image, self.button], layout=w.Layout(width="96px", display="none"))

    @property
    def shown(self) -> bool:
        return self.box.layout.display != "none"


class Gallery:
    """The history column: its title, Newer and Older, the search box and Refresh, and the
    thumbnails (``slots``, reused from page to page); ``widget`` is its box."""

    def __init__(self, state: PanelState) -> None:
        self.state = state
        self.slots = [Slot(state) for _ in range(GALLERY_SLOTS)]
        self.grid = w.GridBox(
            [slot.box for slot in self.slots],
            layout=w.Layout(grid_template_columns="repeat(auto-fill, 96px)", grid_gap="10px 10px", width="100%"),
        )
        self.grid.add_class("aigate-gallery")
        self.search = w.Text(
            placeholder="Search prompts, models, [n]", continuous_update=True,
            tooltip='Every word must start a word of the prompt or the model, or be the number ([3]); '
            '"a quoted phrase" is one term',
            layout=w.Layout(flex="1 1 auto", width="auto", min_width="0"),
        )
        self.search.observe(lambda change: state.guarded(state.search, change.new), names="value")
        self.title = w.HTML("", layout=w.Layout(flex="1 1 auto", width="auto", min_width="0"))
        self.title.add_class("aigate-gallery-title")
        self.refresh_button = w.Button(
            description="Refresh", tooltip="Read the history again (the gallery also follows it after each cell)",
            layout=auto_width(),
        )
        self.newer_button = w.Button(description="Newer", layout=auto_width())
        self.older_button = w.Button(description="Older", layout=auto_width())
        self.refresh_button.on_click(lambda _: state.guarded(state.refresh))
        self.newer_button.on_click(lambda _: state.guarded(state.turn_page, -1))
        self.older_button.on_click(lambda _: state.guarded(state.turn_page, 1))
        self.widget = w.VBox(
            [
                row(self.title, self.newer_button, self.older_button, align="center", margin="0 0 6px 0"),
                row(self.search, self.refresh_button, wrap=False, align="center", margin="0 0 6px 0"),
                self.grid,
            ],
            layout=w.Layout(flex="1 1 300px", width="auto", min_width="0", margin="0 16px 12px 0"),
        )

    def shown(self) -> list[str]:
        """The labels of the thumbnails shown, as on screen: ``["[2]", "[1]"]``."""
        return [slot.button.description for slot in self.slots if slot.shown]

    def highlighted(self) -> list[str]:
        """The labels of the thumbnails shown as selected."""
        return [slot.button.description for slot in self.slots if slot.shown and slot.button.button_style == "info"]

    def show_page(self) -> None:
        page = self.state.gallery
        for slot, entry in zip(self.slots, page.entries + [None] * (GALLERY_SLOTS - len(page.entries))):
            self._fill(slot, entry)
        self.title.value = (
            f'<span class="aigate-title">History</span> '
            f'<span class="aigate-muted">{html.escape(page.summary)}</span>'
        )
        self.newer_button.disabled = not page.has_newer
        self.older_button.disabled = not page.has_older
        self.newer_button.layout.display = self.older_button.layout.display = "" if page.count > 1 else "none"

    def show_selection(self) -> None:
        selected = self.state.selection.entry.id if self.state.selection is not None else None
        for slot in self.slots:
            slot.button.button_style = "info" if slot.entry_id == selected and selected is not None else ""

    def show_query(self) -> None:
        if self.search.value != self.state.query:
            self.search.value = self.state.query

    def _fill(self, slot: Slot, entry: HistoryEntry | None) -> None:
        if entry is None:
            slot.index = slot.entry_id = None
            slot.box.layout.display = "none"
            return
        if slot.entry_id != entry.id:
            try:
                slot.image.value = self.state.session.history.thumbnail(entry)
            except HistoryError:  # its file was deleted while the kernel ran
                slot.image.value = _missing_thumbnail()
            slot.entry_id = entry.id
        slot.index = entry.index
        slot.button.description = f"[{entry.index}]"
        slot.button.tooltip = one_line(entry.prompt, 200)
        selected = self.state.selection
        slot.button.button_style = "info" if selected is not None and entry.id == selected.entry.id else ""
        slot.box.layout.display = ""


def _missing_thumbnail() -> bytes:
    """A grey square for an entry whose image file is gone."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (96, 96), (200, 200, 200)).save(buf, format="JPEG")
    return buf.getvalue()
