"""The ipywidgets panel: a thin skin over the notebook's ``Session``.

``Panel`` puts three views side by side (``panel_prompt.PromptArea``, ``panel_gallery.Gallery``
and ``panel_detail.Detail``) over one ``panel_state.PanelState``, which holds the panel's
state and decides what each button does, with no widgets. Requests go through
``session.submit`` (off the kernel's main thread, so other cells keep running); results join
the session's history there. Worker threads only set widget values or update outputs; every
widget is made on the thread that builds the panel.

Beside the widget, the panel's cell holds one small HTML output (``snapshot``): the
results made here as thumbnails, and a line saying to run the cell again. A live
panel hides it; a notebook reopened without its kernel, where the widget cannot
show, keeps it, a few kilobytes per result.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import ipywidgets as w

from ..session.session import Session, current_session
from .panel_detail import Detail
from .panel_gallery import Gallery
from .panel_prompt import PromptArea, PromptBox
from .panel_state import (
    GALLERY_SLOTS,
    LINEAGE_SLOTS,
    MODEL_DEFAULT,
    NO_SOURCE,
    REGION_MODES,
    ROUTES,
    SNAPSHOT_EDGE,
    UPLOADED,
    PanelState,
    edit_cell_text,
)

if TYPE_CHECKING:
    from IPython.core.display_functions import DisplayHandle
    from IPython.core.interactiveshell import InteractiveShell

    from ..core.results import ImageResult



class _KernelShell(Protocol):
    """What ipykernel's shell adds to IPython's: the message a cell runs under, kept for a thread."""

    def get_parent(self) -> dict[str, Any]: ...
    def set_thread_parent(self, parent: dict[str, Any]) -> object: ...
    def reset_thread_parent(self, tokens: object) -> None: ...


__all__ = [
    "GALLERY_SLOTS", "LINEAGE_SLOTS", "MODEL_DEFAULT", "NO_SOURCE", "REGION_MODES", "ROUTES", "SNAPSHOT_EDGE",
    "UPLOADED", "Panel", "PanelState", "PromptBox", "edit_cell_text",
]


class Panel:
    """Prompt, model, route, ratio, size, variants and source image; Generate and Edit;
    a gallery of this notebook's history (searched, a page at a time) with a larger view of
    the selected entry: its lineage as buttons, and a box drawn on it for Edit region.

    ``Panel(session)`` (default: the kernel's session). Display it as any
    widget, or use ``.widget``. ``wait(timeout)`` blocks until the model list
    and the current request are done, without widgets; ``futures`` are the
    current (or last) request's futures. In a kernel the gallery follows the
    history after every cell run (``%%gemini_image`` cells add to it). ``state``
    is what the panel shows, ``prompt_area``, ``gallery`` and ``detail`` its views;
    their controls are also attributes of the panel (``panel.prompt``, ``panel.edit_button``).
    """

    def __init__(self, session: Session | None = None) -> None:
        self.session = session if session is not None else current_session()
        self.state = PanelState(self.session)
        self._cell_parent: dict[str, Any] | None = None
        self._snapshot_handle: DisplayHandle | None = None
        self.prompt_area = PromptArea(self.state)
        self.gallery = Gallery(self.state)
        self.detail = Detail(self.state, self.prompt_area.form)
        self._expose_controls()
        self.widget = self._assemble()
        self.state.watch(self._show)
        self.state.refresh()
        threading.Thread(target=self.state.load_models, name="aigate-panel-models", daemon=True).start()
        self._stop_following = self.session.watch_defaults(self.prompt_area.follow_defaults)
        self._shell = _shell()
        if self._shell is not None:
            self._shell.events.register("post_run_cell", self._after_cell)

    # -- building -------------------------------------------------------------------------

    def _expose_controls(self) -> None:
        """The views' controls as the panel's own attributes, as a user (or a test) clicks them."""
        p, g, d = self.prompt_area, self.gallery, self.detail
        self.header, self.prompt, self.model, self.route = p.header, p.prompt, p.model, p.route
        self.aspect_ratio, self.image_size, self.variants = p.aspect_ratio, p.image_size, p.variants
        self.source, self.upload = p.source, p.upload
        self.generate_button, self.stop_button, self.busy, self.elapsed, self.status = (
            p.generate_button, p.stop_button, p.busy, p.elapsed, p.status)
        self.search, self.gallery_title = g.search, g.title
        self.refresh_button, self.newer_button, self.older_button = g.refresh_button, g.newer_button, g.older_button
        self.picture, self.details, self.lineage = d.picture, d.details, d.lineage
        self.region_text, self.region_mode, self.region_button = d.region_text, d.region_mode, d.region_button
        self.edit_button, self.multi_turn, self.multi_turn_note = d.edit_button, d.multi_turn, d.multi_turn_note
        self.new_cell_button, self.cell_text = d.new_cell_button, d.cell_text
        self.save_path, self.save_button, self.placeholder = d.save_path, d.save_button, d.placeholder

    def _assemble(self) -> w.VBox:
        # Side by side where there is room, one above the other where there is not.
        body = w.HBox(
            [self.gallery.widget, self.detail.widget],
            layout=w.Layout(
                flex_flow="row wrap", width="100%", margin="12px 0 0 0", padding="12px 0 0 0",
                border_top="1px solid var(--jp-border-color2, #e0e0e0)",
            ),
        )
        widget = w.VBox(
            [self.prompt_area.widget, body],
            layout=w.Layout(
                width="100%", max_width="1000px", padding="12px 16px", margin="0 0 8px 0",
                border="1px solid var(--jp-border-color1, #bdbdbd)",
            ),
        )
        widget.add_class("aigate-panel")
        return widget

    def _show(self, what: str) -> None:
        """A change of the state, shown by the views that show it."""
        p, g, d = self.prompt_area, self.gallery, self.detail
        if what == "status":
            p.show_status()
        elif what == "busy":
            p.show_busy()
            d.show_busy()
        elif what == "elapsed":
            p.show_elapsed()
        elif what == "gallery":
            g.show_page()
        elif what == "query":
            g.show_query()
        elif what == "selection":
            d.show_selection()
            g.show_selection()
            if self.state.selection is not None:
                p.preset_shape(self.state.selection.entry)  # the ratio and size its edit keeps
        elif what == "sources":
            p.show_sources()
        elif what == "models":
            p.show_models()
            p.show_where()
        elif what == "made":
            self._show_result(self.state.made[-1][0])

    # -- what the panel does, as its buttons do it ------------------------------------------------

    @property
    def selected(self) -> int | None:
        """The selected history entry's number, or None."""
        return self.state.selected

    @property
    def futures(self) -> list[Future]:
        """The current (or last) click's futures."""
        return self.state.futures

    @property
    def status_text(self) -> str:
        return self.state.status.text

    @property
    def status_is_error(self) -> bool:
        return self.state.status.error

    def generate(self) -> None:
        """What Generate (or Ctrl+Enter in the prompt) does: the prompt, with the chosen source image if any."""
        self.prompt_area.generate()

    def edit_selected(self) -> None:
        """What Edit does: the prompt, with the selected history entry as the source."""
        self.detail.edit_selected()

    def edit_region(self) -> None:
        """What Edit region does: the prompt, as an edit of only the box in the X,Y,W,H field
        (drawn on the picture, or typed) of the selected entry, in the chosen mode."""
        self.detail.edit_region()

    def save_selected(self) -> Path | list[Path]:
        """Save the selected entry's full-size image to the path in the box."""
        return self.detail.save_selected()

    def new_cell(self) -> str:
        """Queue a ``%%gemini_image --edit N`` cell holding the selected entry's prompt, and show its text to copy."""
        return self.detail.new_cell()

    def select(self, index: int | str) -> None:
        """Show history entry ``index`` (or id) larger, with its prompt and lineage, ready for a
        box to be drawn on it; the gallery turns to its page, and the ratio and size lists take
        its shape, as an edit of it keeps. A region edit shows with the box it changed."""
        self.state.select(index)

    def refresh(self) -> None:
        """Show the history as it is now (cells may have added to it or cleared it)."""
        self.state.refresh()

    def stop_waiting(self) -> None:
        """Give the buttons back now; requests already sent may still finish and join the history."""
        self.state.stop_waiting()

    def wait(self, timeout: float = 60.0) -> None:
        """Block until the model list is in and no request is running; ``TimeoutError`` after ``timeout`` s."""
        self.state.wait(timeout)

    def snapshot(self) -> tuple[dict[str, str], dict[str, Any]]:
        """The output kept beside the widget (see ``PanelState.snapshot``)."""
        return self.state.snapshot()

    # -- display ----------------------------------------------------------------------------

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
        shell = _shell()
        if shell is None:
            return
        if hasattr(shell, "set_thread_parent"):
            # The cell showing the panel: its snapshot is updated there when a result comes.
            self._cell_parent = cast("_KernelShell", shell).get_parent()
        data, metadata = self.snapshot()
        self._snapshot_handle = display(data, metadata=metadata, raw=True, display_id=True)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        return self.widget._repr_mimebundle_(**kwargs)

    def _show_result(self, result: ImageResult) -> None:
        """A result made here: the cell's snapshot (see ``snapshot``) is updated in place in the
        panel's cell; the gallery and the larger view show the result itself."""
        handle = self._snapshot_handle
        if handle is None:
            return
        from IPython.display import display

        data, metadata = self.snapshot()
        # A cell's parent is kept only under a kernel's shell (see ``_ipython_display_``).
        shell = cast("_KernelShell | None", _shell())
        tokens = None
        if self._cell_parent is not None and shell is not None:
            tokens = shell.set_thread_parent(self._cell_parent)
        try:
            handle.update(data, metadata=metadata, raw=True)
            if result.index is None:
                display(result)  # not in the history: shown whole, to be seen and saved from the page
        finally:
            if tokens is not None and shell is not None:
                shell.reset_thread_parent(tokens)

    def _after_cell(self, *_result: object) -> None:
        """After every cell the kernel runs: if the history changed, show it. A cell's run must
        never end in the panel's traceback, so any failure is the status line."""
        self.state.guarded(self.state.refresh_if_changed)

    def close(self) -> None:
        """Stop following the session's defaults and the history, and close the panel's widgets."""
        self._stop_following()
        if self._shell is not None:
            try:
                self._shell.events.unregister("post_run_cell", self._after_cell)
            except ValueError:
                pass  # already unregistered
        self.stop_waiting()
        pending = [self.widget]
        while pending:
            widget = pending.pop()
            pending.extend(getattr(widget, "children", ()))
            widget.layout.close()
            widget.close()


def _shell() -> InteractiveShell | None:
    """The running IPython shell, or None."""
    from IPython import get_ipython

    return get_ipython()
