"""The panel's detail: the selected entry larger, with its settings, prompt and lineage, a box
drawn on it for Edit region, and Edit, Multi-turn, New cell and Save.

It shows ``PanelState.selection`` and turns clicks into ``PanelState`` calls; what the
selection is and what each button sends is decided there.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import ipywidgets as w

from ..core.errors import InputError
from ..core.region import Region
from ..core.text import one_line
from ..records.store import HistoryEntry
from .boxwidget import BoxWidget
from .panel_layout import auto_width, row
from .panel_state import LINEAGE_SLOTS, REGION_MODES, Form, PanelState, Selection

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell


class Detail:
    """The detail column: a placeholder until an entry is selected, then ``body``; ``widget`` is its box.
    ``form`` gives what the prompt area's controls say, which Edit and Edit region send."""

    def __init__(self, state: PanelState, form: Callable[[], Form]) -> None:
        self.state = state
        self.form = form
        self._region_typed = False  # the box is being drawn from the text: leave the text as typed
        guarded = state.guarded
        self.edit_button = w.Button(
            description="Edit", tooltip="Send the prompt above with this image as the source",
            disabled=True, layout=auto_width(),
        )
        self.multi_turn = w.Checkbox(
            value=False, description="Multi-turn", indent=False, disabled=True,
            layout=w.Layout(width="auto", flex="0 0 auto", margin="0 12px 0 8px"),
        )
        # Why Multi-turn is greyed out, as text: a Checkbox shows its description as its tooltip.
        self.multi_turn_note = w.HTML("", layout=w.Layout(width="100%", margin="0 0 4px 0"))
        self.edit_button.on_click(lambda _: guarded(self.edit_selected))
        # The selected picture, on which a box for Edit region is drawn with the mouse.
        self.picture = BoxWidget(layout=w.Layout(width="100%"))
        self.picture.observe(lambda change: guarded(self._follow_box, change.new), names="box")
        self.details = w.HTML("", layout=w.Layout(width="100%"))
        self._chain_buttons = [self._lineage_button() for _ in range(LINEAGE_SLOTS)]
        self._child_buttons = [self._lineage_button() for _ in range(LINEAGE_SLOTS)]
        self._arrows = [w.HTML('<span class="aigate-arrow">→</span>') for _ in range(LINEAGE_SLOTS)]
        self._lineage_captions = (
            w.HTML('<span class="aigate-label">Lineage</span>', layout=w.Layout(margin="0 6px 0 0")),
            w.HTML('<span class="aigate-label">Edits of it</span>', layout=w.Layout(margin="0 6px 0 10px")),
        )
        self._gap, self._more = w.HTML('<span class="aigate-arrow">… →</span>'), w.HTML("")
        self.lineage = row(align="center", margin="2px 0")
        self.lineage.add_class("aigate-lineage")
        # Keyboard users type the box; a box drawn on the picture shows here too.
        self.region_text = w.Text(
            placeholder="Region X,Y,W,H: drag on the picture, or type", continuous_update=False,
            tooltip="The box to edit, in the picture's pixels (120,80,400,300) or as fractions "
            "(0.5,0.25,0.3,0.3); Enter draws it",
            layout=w.Layout(flex="1 1 150px", width="auto", min_width="0"),
        )
        self.region_text.observe(lambda change: guarded(self._follow_region_text, change.new), names="value")
        self.region_mode = w.Dropdown(
            options=list(REGION_MODES), value="crop", layout=w.Layout(width="90px", flex="0 0 auto"),
            tooltip="Crop sends only the box and some context around it; Guide sends the whole picture "
            "with the box outlined. Either way only the box changes",
        )
        self.region_button = w.Button(
            description="Edit region", disabled=True, layout=auto_width(),
            tooltip="Send the prompt above as an edit of the box only: every pixel outside the box "
            "and its padding stays as it is",
        )
        self.region_button.on_click(lambda _: guarded(self.edit_region))
        self.new_cell_button = w.Button(
            description="New cell (next run)",
            tooltip="A %%gemini_image --edit cell with this prompt: the kernel can add it only below "
            "the next cell you run",
            layout=auto_width(),
        )
        self.cell_text = w.HTML("", layout=w.Layout(width="100%", display="none"))
        self.save_path = w.Text(
            placeholder="file to save to", layout=w.Layout(flex="1 1 120px", width="auto", min_width="0")
        )
        self.save_button = w.Button(description="Save", layout=auto_width())
        self.new_cell_button.on_click(lambda _: guarded(self.new_cell))
        self.save_button.on_click(lambda _: guarded(self.save_selected))
        self.placeholder = w.HTML(
            '<div class="aigate-muted">Select an image in the history to see it larger, '
            "edit it, save it or copy it into a new cell.</div>"
        )
        self.body = w.VBox(
            [
                self.picture,
                row(self.region_text, self.region_mode, self.region_button, wrap=False, align="center",
                    margin="4px 0"),
                self.details,
                self.lineage,
                row(self.edit_button, self.multi_turn, self.new_cell_button, align="center", margin="4px 0"),
                self.multi_turn_note,
                self.cell_text,
                row(self.save_path, self.save_button, wrap=False, align="center"),
            ],
            layout=w.Layout(display="none", width="100%"),
        )
        self.widget = w.VBox(
            [self.placeholder, self.body],
            layout=w.Layout(flex="1 1 300px", width="auto", min_width="0", max_width="480px"),
        )

    # -- what the buttons do --------------------------------------------------------------------

    @property
    def multi_turn_chosen(self) -> bool:
        """Multi-turn is ticked, and offered for the selected image."""
        return self.multi_turn.value and not self.multi_turn.disabled

    def edit_selected(self) -> None:
        self.state.edit_selected(self.form(), multi_turn=self.multi_turn_chosen)

    def edit_region(self) -> None:
        self.state.edit_region(self.form(), self.region_text.value, self.region_mode.value)

    def save_selected(self) -> Path | list[Path]:
        return self.state.save_selected(self.save_path.value)

    def new_cell(self) -> str:
        """Queue a ``%%gemini_image --edit N`` cell holding the selected entry's prompt, and show
        its text to copy: a kernel can add a cell only when the next cell runs."""
        text = self.state.edit_cell_text(multi_turn=self.multi_turn_chosen)
        index = self.state.selected
        shell = _shell()
        if shell is not None:
            shell.set_next_input(text)
            line = "It appears below the next cell you run (a kernel can add a cell only then), or copy it from here:"
            self.state.show_status(f"A %%gemini_image --edit {index} cell appears below the next cell you run.")
        else:
            line = "No kernel can add it here: copy it into a new cell."
        self.cell_text.value = (
            f'<div class="aigate-note aigate-muted">{html.escape(line)}</div>'
            f'<pre class="aigate-cell-text">{html.escape(text)}</pre>'
        )
        self.cell_text.layout.display = ""
        return text

    # -- showing the state ----------------------------------------------------------------------

    def show_selection(self) -> None:
        """The selected entry larger, ready for a box to be drawn on it; a region edit shows with
        the box it changed. With nothing selected, the placeholder."""
        selection = self.state.selection
        if selection is None:
            self.body.layout.display = "none"
            self.placeholder.layout.display = ""
            self.edit_button.disabled = self.region_button.disabled = True
            return
        entry = selection.entry
        self.region_text.value = ""  # a box belongs to one picture
        self.picture.show(entry.data, entry.size)
        if entry.region:
            self.picture.box = list(entry.region["box"])
        self.details.value = _details_html(selection)
        self._show_lineage(selection)
        self.save_path.value = f"image-{entry.index}{entry.path.suffix}"
        self.placeholder.layout.display = "none"
        self.body.layout.display = ""
        self.cell_text.layout.display = "none"
        self.edit_button.description = f"Edit [{entry.index}]"
        self.edit_button.disabled = self.region_button.disabled = self.state.busy
        self.multi_turn.disabled = not selection.continues
        if not selection.continues:
            self.multi_turn.value = False
        note = f'<div class="aigate-note aigate-muted">{html.escape(selection.why_not)}</div>'
        self.multi_turn_note.value = note if selection.why_not else ""

    def show_busy(self) -> None:
        self.edit_button.disabled = self.region_button.disabled = self.state.busy or self.state.selection is None

    def _lineage_button(self) -> w.Button:
        button = w.Button(layout=w.Layout(width="auto", height="24px", padding="0 6px"))
        button.entry_id = None
        button.on_click(lambda b: self.state.guarded(self.state.select, b.entry_id))
        return button

    def _show_lineage(self, selection: Selection) -> None:
        """The chain back to the first picture and the entries edited from it, each a button that selects it."""
        lineage, current = selection.lineage, selection.entry
        shown: list[w.Widget] = [self._lineage_captions[0]]
        for k, (button, entry) in enumerate(zip(self._chain_buttons, lineage.chain)):
            if k:
                shown.append(self._gap if k == 1 and lineage.cut else self._arrows[k])
            shown.append(_point_at(button, entry, current=entry.id == current.id))
        if lineage.children:
            shown.append(self._lineage_captions[1])
            for button, entry in zip(self._child_buttons, lineage.children):
                shown.append(_point_at(button, entry))
            self._more.value = f'<span class="aigate-muted">and {lineage.more} more</span>' if lineage.more else ""
            shown.append(self._more)
        self.lineage.children = tuple(shown)
        self.lineage.layout.display = "" if lineage.shown else "none"

    # -- region edits ---------------------------------------------------------------------------

    def _follow_box(self, box: list[int]) -> None:
        """A box drawn (or cleared) on the picture: the X,Y,W,H field shows it."""
        if not self._region_typed:
            self.region_text.value = ",".join(str(value) for value in box)

    def _follow_region_text(self, text: str) -> None:
        """X,Y,W,H typed (Enter): the box is drawn there, clamped to the picture; the text stays
        as typed, and what is wrong with it is said when Edit region sends it."""
        if not text.strip():
            self.picture.clear()
            return
        try:
            left, top, right, bottom = Region.parse(text).edges_in(*self.picture.source_size)
        except InputError:
            return
        self._region_typed = True
        try:
            self.picture.box = [left, top, right - left, bottom - top]
        finally:
            self._region_typed = False


def _shell() -> InteractiveShell | None:
    """The running IPython shell, or None."""
    from IPython import get_ipython

    return get_ipython()


def _details_html(selection: Selection) -> str:
    """The entry's number, settings and prompt; where it came from when no lineage row shows it."""
    entry = selection.entry
    return (
        f'<div><span class="aigate-title">[{entry.index}]</span> '
        f'<span class="aigate-muted">{html.escape(" · ".join(selection.facts))}</span></div>'
        f'<div class="aigate-prompt">{html.escape(entry.prompt)}</div>'
        + (f'<div class="aigate-muted">{html.escape(selection.origin)}</div>' if selection.origin else "")
    )


def _point_at(button: w.Button, entry: HistoryEntry, current: bool = False) -> w.Button:
    """A lineage button, made to select ``entry``."""
    button.entry_id = entry.id
    button.description = f"[{entry.index}]"
    button.tooltip = f"[{entry.index}] {one_line(entry.prompt, 200)}"
    button.button_style = "info" if current else ""
    button.layout.display = ""
    return button
