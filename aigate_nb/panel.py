"""The ipywidgets panel: a thin skin over the notebook's ``Session``.

Widgets and callbacks only. Requests go through ``session.submit`` (off the
kernel's main thread, so other cells keep running); results join the session's
history there. Worker threads only set widget values or update outputs; every
widget is made on the thread that builds the panel.

Beside the widget, the panel's cell holds one small HTML output (``snapshot``): the
results made here as thumbnails, and a line saying to run the cell again. A live
panel hides it; a notebook reopened without its kernel, where the widget cannot
show, keeps it, a few kilobytes per result.
"""

from __future__ import annotations

import html
import io
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anywidget
import ipywidgets as w
import traitlets

from .boxwidget import BoxWidget
from .errors import AigateError, HistoryError, InputError
from .images import ImageInput, b64encode, make_thumbnail, sniff_mime
from .models import ALL_SIZES, BASE_RATIOS, EXTRA_RATIOS, spec_for
from .region import Region, region_label
from .session import MAX_VARIANTS, Request, Session, current_session, outcome
from .text import clip

#: The browser side's files, beside this one.
_HERE = Path(__file__).parent

#: Thumbnails shown per gallery page; the widgets are made once and reused.
GALLERY_SLOTS = 12
#: Buttons for the selected entry's lineage: its chain back to the first picture, and its edits.
LINEAGE_SLOTS = 6
#: Long edge in pixels of each result's thumbnail in the cell's snapshot (shown at half that).
SNAPSHOT_EDGE = 160

#: Dropdown value for "send no ratio/size: the model decides".
MODEL_DEFAULT = ""
#: Source dropdown values besides history indices.
NO_SOURCE = "none"
UPLOADED = "upload"
#: The routes offered, Google first: its replies keep what a multi-turn edit continues.
ROUTES = (("Google", "google"), ("Chat", "chat"))
#: The region modes offered (see region.py).
REGION_MODES = (("Crop", "crop"), ("Guide", "guide"))

_CSS = "<style>\n" + (_HERE / "panel.css").read_text(encoding="utf-8") + "</style>\n"


class PromptBox(anywidget.AnyWidget):
    """The prompt: a text box whose Ctrl+Enter (or Shift+Enter, Cmd+Enter) asks to generate.

    ipywidgets' Textarea tells the kernel of no key, so this small widget sends its
    text, then a ``{"event": "submit"}`` message, which ``on_submit`` callbacks receive.
    """

    _esm = _HERE / "prompt_box.js"
    _css = _HERE / "prompt_box.css"
    value = traitlets.Unicode("").tag(sync=True)
    placeholder = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._submit_callbacks: list = []
        self.on_msg(self._on_message)

    def on_submit(self, callback) -> None:
        """Call ``callback()`` when the user presses Ctrl+Enter (or Shift+Enter) in the box."""
        self._submit_callbacks.append(callback)

    def _on_message(self, _widget, content, _buffers) -> None:
        if isinstance(content, dict) and content.get("event") == "submit":
            for callback in list(self._submit_callbacks):
                callback()


@dataclass
class _Click:
    """The requests of one click: their futures, and what has come back so far."""

    futures: list[Future]
    started: float
    done: int = 0
    results: list = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    notes: list[str] = field(default_factory=list)  # the budget's warnings, shown with the status

    def note(self) -> str:
        return "".join(f" {note}" for note in self.notes)


class _Slot:
    """One gallery cell: a thumbnail and the button that selects its entry."""

    def __init__(self, on_click) -> None:
        self.index: int | None = None
        self.entry_id: str | None = None
        self.image = w.Image(format="jpeg", layout=w.Layout(width="96px", height="96px", object_fit="contain"))
        self.image.add_class("aigate-thumb")
        self.button = w.Button(description="", layout=w.Layout(width="96px", height="24px", margin="2px 0 0 0"))
        self.button.on_click(lambda _: on_click(self.index))
        self.box = w.VBox([self.image, self.button], layout=w.Layout(width="96px", display="none"))


class Panel:
    """Prompt, model, route, ratio, size, variants and source image; Generate and Edit;
    a gallery of this notebook's history (searched, a page at a time) with a larger view of
    the selected entry: its lineage as buttons, and a box drawn on it for Edit region.

    ``Panel(session)`` (default: the kernel's session). Display it as any
    widget, or use ``.widget``. ``wait(timeout)`` blocks until the model list
    and the current request are done, without widgets; ``futures`` are the
    current (or last) request's futures. In a kernel the gallery follows the
    history after every cell run (``%%gemini_image`` cells add to it).
    """

    def __init__(self, session: Session | None = None) -> None:
        self.session = session if session is not None else current_session()
        self.selected: int | None = None
        self._selected_id: str | None = None  # indices are reused after a clear; ids are not
        self._source_ids: dict[int, str] = {}  # the Source list's numbers, as shown, and their entries
        self.futures: list[Future] = []
        self._lock = threading.RLock()
        self._click: _Click | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._upload: ImageInput | None = None
        self._page = 0
        self._shown_stamp: tuple | None = None
        self._filling_sources = False
        self._defaults = self.session.defaults
        self._cell_parent: dict | None = None
        self._snapshot_handle = None
        self._made: list[tuple[Any, str | None]] = []  # results made here, with their thumbnails' base64
        self.status_text, self.status_is_error = "", False
        self._build()
        self._set_model_options([self.session.defaults.model])
        self.refresh()
        self._models_loaded = threading.Event()
        threading.Thread(target=self._load_models, name="aigate-panel-models", daemon=True).start()
        self._stop_following = self.session.watch_defaults(self._follow_defaults)
        self._shell = _shell()
        if self._shell is not None:
            self._shell.events.register("post_run_cell", self._after_cell)

    # -- building -------------------------------------------------------------------------

    def _build(self) -> None:
        d = self.session.defaults
        self.header = w.HTML()
        self._show_where()
        self.prompt = PromptBox(
            placeholder="Describe the image to make, or the change to make to the source image "
            "(Ctrl+Enter generates)",
            layout=w.Layout(width="100%"),
        )
        self.prompt.on_submit(lambda: self._guarded(self.generate))
        self.model = w.Dropdown(options=[d.model], value=d.model, layout=w.Layout(width="280px", max_width="100%"))
        self.route = w.Dropdown(
            options=list(ROUTES), value="google", layout=w.Layout(width="110px"),
            tooltip="Google (generateContent) keeps the model's side of the conversation, which "
            "Multi-turn continues; Chat (chat/completions) does not",
        )
        self.aspect_ratio = w.Dropdown(layout=w.Layout(width="130px"))
        self.image_size = w.Dropdown(layout=w.Layout(width="130px"))
        self.variants = w.BoundedIntText(value=1, min=1, max=MAX_VARIANTS, layout=w.Layout(width="72px"))
        self.model.observe(lambda change: self._guarded(self._follow_model, change.new), names="value")
        self.source = w.Dropdown(layout=w.Layout(width="300px", max_width="100%"))
        self.source.observe(lambda change: self._guarded(self._follow_source, change.new), names="value")
        self.upload = w.FileUpload(
            accept="image/*", multiple=False, description="Upload image",
            layout=w.Layout(width="auto", flex="0 0 auto", margin="0 12px 8px 0"),
        )
        self.upload.observe(lambda change: self._guarded(self._on_upload, change), names="value")

        self.generate_button = w.Button(
            description="Generate", button_style="primary",
            tooltip="Send the prompt, with the source image if one is chosen (Ctrl+Enter in the prompt)",
            layout=_auto_width(min_width="120px"),
        )
        self.edit_button = w.Button(
            description="Edit", tooltip="Send the prompt above with this image as the source",
            disabled=True, layout=_auto_width(),
        )
        self.multi_turn = w.Checkbox(
            value=False, description="Multi-turn", indent=False, disabled=True,
            layout=w.Layout(width="auto", flex="0 0 auto", margin="0 12px 0 8px"),
        )
        # Why Multi-turn is greyed out, as text: a Checkbox shows its description as its tooltip.
        self.multi_turn_note = w.HTML("", layout=w.Layout(width="100%", margin="0 0 4px 0"))
        self.stop_button = w.Button(description="Stop waiting", button_style="warning", layout=_auto_width())
        self.stop_button.layout.display = "none"
        self.generate_button.on_click(lambda _: self._guarded(self.generate))
        self.edit_button.on_click(lambda _: self._guarded(self.edit_selected))
        self.stop_button.on_click(lambda _: self._guarded(self.stop_waiting))
        self.busy = w.HTML(
            '<div class="aigate-spinner"></div>',
            layout=w.Layout(width="22px", height="28px", overflow="hidden", display="none", flex="0 0 auto"),
        )
        self.elapsed = w.Label("", layout=w.Layout(display="none", flex="0 0 auto"))
        self.status = w.HTML("", layout=w.Layout(flex="1 1 auto", width="auto", min_width="0", margin="0 0 0 12px"))

        self._slots = [_Slot(self._guarded_select) for _ in range(GALLERY_SLOTS)]
        self.gallery = w.GridBox(
            [slot.box for slot in self._slots],
            layout=w.Layout(grid_template_columns="repeat(auto-fill, 96px)", grid_gap="10px 10px", width="100%"),
        )
        self.gallery.add_class("aigate-gallery")
        self.search = w.Text(
            placeholder="Search prompts, models, [n]", continuous_update=True,
            tooltip='Every word must start a word of the prompt or the model, or be the number ([3]); '
            '"a quoted phrase" is one term',
            layout=w.Layout(flex="1 1 auto", width="auto", min_width="0"),
        )
        self.search.observe(lambda _: self._guarded(self._follow_search), names="value")
        self.gallery_title = w.HTML("", layout=w.Layout(flex="1 1 auto", width="auto", min_width="0"))
        self.gallery_title.add_class("aigate-gallery-title")
        self.refresh_button = w.Button(
            description="Refresh", tooltip="Read the history again (the gallery also follows it after each cell)",
            layout=_auto_width(),
        )
        self.newer_button = w.Button(description="Newer", layout=_auto_width())
        self.older_button = w.Button(description="Older", layout=_auto_width())
        self.refresh_button.on_click(lambda _: self._guarded(self.refresh))
        self.newer_button.on_click(lambda _: self._guarded(self._turn_page, -1))
        self.older_button.on_click(lambda _: self._guarded(self._turn_page, 1))

        # The selected picture, on which a box for Edit region is drawn with the mouse.
        self.picture = BoxWidget(layout=w.Layout(width="100%"))
        self.picture.observe(lambda change: self._guarded(self._follow_box, change.new), names="box")
        self.details = w.HTML("", layout=w.Layout(width="100%"))
        self._chain_buttons = [self._lineage_button() for _ in range(LINEAGE_SLOTS)]
        self._child_buttons = [self._lineage_button() for _ in range(LINEAGE_SLOTS)]
        self._arrows = [w.HTML('<span class="aigate-arrow">→</span>') for _ in range(LINEAGE_SLOTS)]
        self._lineage_captions = (
            w.HTML('<span class="aigate-label">Lineage</span>', layout=w.Layout(margin="0 6px 0 0")),
            w.HTML('<span class="aigate-label">Edits of it</span>', layout=w.Layout(margin="0 6px 0 10px")),
        )
        self._gap, self._more = w.HTML('<span class="aigate-arrow">… →</span>'), w.HTML("")
        self.lineage = _row(align="center", margin="2px 0")
        self.lineage.add_class("aigate-lineage")
        # Keyboard users type the box; a box drawn on the picture shows here too.
        self.region_text = w.Text(
            placeholder="Region X,Y,W,H: drag on the picture, or type", continuous_update=False,
            tooltip="The box to edit, in the picture's pixels (120,80,400,300) or as fractions "
            "(0.5,0.25,0.3,0.3); Enter draws it",
            layout=w.Layout(flex="1 1 150px", width="auto", min_width="0"),
        )
        self.region_text.observe(lambda change: self._guarded(self._follow_region_text, change.new), names="value")
        self.region_mode = w.Dropdown(
            options=list(REGION_MODES), value="crop", layout=w.Layout(width="90px", flex="0 0 auto"),
            tooltip="Crop sends only the box and some context around it; Guide sends the whole picture "
            "with the box outlined. Either way only the box changes",
        )
        self.region_button = w.Button(
            description="Edit region", disabled=True, layout=_auto_width(),
            tooltip="Send the prompt above as an edit of the box only: every pixel outside the box "
            "and its padding stays as it is",
        )
        self.region_button.on_click(lambda _: self._guarded(self.edit_region))
        self._region_typed = False  # the box is being drawn from the text: leave the text as typed
        self.new_cell_button = w.Button(
            description="New cell (next run)",
            tooltip="A %%gemini_image --edit cell with this prompt: the kernel can add it only below "
            "the next cell you run",
            layout=_auto_width(),
        )
        self.cell_text = w.HTML("", layout=w.Layout(width="100%", display="none"))
        self.save_path = w.Text(
            placeholder="file to save to", layout=w.Layout(flex="1 1 120px", width="auto", min_width="0")
        )
        self.save_button = w.Button(description="Save", layout=_auto_width())
        self.new_cell_button.on_click(lambda _: self._guarded(self.new_cell))
        self.save_button.on_click(lambda _: self._guarded(self.save_selected))
        self.placeholder = w.HTML(
            '<div class="aigate-muted">Select an image in the history to see it larger, '
            "edit it, save it or copy it into a new cell.</div>"
        )
        self._detail_box = w.VBox(
            [
                self.picture,
                _row(self.region_text, self.region_mode, self.region_button, wrap=False, align="center",
                     margin="4px 0"),
                self.details,
                self.lineage,
                _row(self.edit_button, self.multi_turn, self.new_cell_button, align="center", margin="4px 0"),
                self.multi_turn_note,
                self.cell_text,
                _row(self.save_path, self.save_button, wrap=False, align="center"),
            ],
            layout=w.Layout(display="none", width="100%"),
        )

        controls = w.VBox(
            [
                self.header,
                _field("Prompt", self.prompt, width="100%", margin="0 0 8px 0"),
                _row(
                    _field("Model", self.model),
                    _field("Route", self.route),
                    _field("Aspect ratio", self.aspect_ratio),
                    _field("Size", self.image_size),
                    _field("Variants", self.variants),
                ),
                _row(_field("Source image", self.source), self.upload),
                _row(self.generate_button, self.stop_button, self.busy, self.elapsed, self.status,
                     wrap=False, align="center"),
            ],
            layout=w.Layout(width="100%"),
        )
        gallery_column = w.VBox(
            [
                _row(self.gallery_title, self.newer_button, self.older_button, align="center", margin="0 0 6px 0"),
                _row(self.search, self.refresh_button, wrap=False, align="center", margin="0 0 6px 0"),
                self.gallery,
            ],
            layout=w.Layout(flex="1 1 300px", width="auto", min_width="0", margin="0 16px 12px 0"),
        )
        detail_column = w.VBox(
            [self.placeholder, self._detail_box],
            layout=w.Layout(flex="1 1 300px", width="auto", min_width="0", max_width="480px"),
        )
        # Side by side where there is room, one above the other where there is not.
        body = w.HBox(
            [gallery_column, detail_column],
            layout=w.Layout(
                flex_flow="row wrap", width="100%", margin="12px 0 0 0", padding="12px 0 0 0",
                border_top="1px solid var(--jp-border-color2, #e0e0e0)",
            ),
        )
        self.widget = w.VBox(
            [controls, body],
            layout=w.Layout(
                width="100%", max_width="1000px", padding="12px 16px", margin="0 0 8px 0",
                border="1px solid var(--jp-border-color1, #bdbdbd)",
            ),
        )
        self.widget.add_class("aigate-panel")

    def _show_where(self) -> None:
        """The title, and where requests go: the emulator, or the gateway's host."""
        where = "emulator" if self.session.emulated else urlsplit(self.session.client.base_url).netloc
        self.header.value = (
            f'{_CSS}<span class="aigate-title">Gemini image</span>'
            f'<span class="aigate-badge" title="requests go to {html.escape(self.session.client.base_url)}">'
            f"{html.escape(where)}</span>"
        )

    # -- display ----------------------------------------------------------------------------

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
        shell = _shell()
        if shell is None:
            return
        if hasattr(shell, "set_thread_parent"):
            # The cell showing the panel: its snapshot is updated there when a result comes.
            self._cell_parent = shell.get_parent()
        data, metadata = self.snapshot()
        self._snapshot_handle = display(data, metadata=metadata, raw=True, display_id=True)

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)

    def snapshot(self) -> tuple[dict[str, str], dict[str, Any]]:
        """The output kept beside the widget: the results made here as small thumbnails with
        their numbers, and a line saying that the panel needs its kernel (run the cell again).
        A live panel hides it; where the widget cannot show (a notebook reopened without its
        kernel, a static viewer) it stands in. Each result adds a few kilobytes."""
        with self._lock:
            made = list(self._made)
        numbers = ", ".join(_number(result) for result, _ in made)
        line = (
            "Gemini image panel: it needs its kernel; if it does not show above, run this cell again."
        )
        text = line + (f" Made here: {numbers}." if made else "")
        figures = "".join(_snapshot_figure(result, thumb) for result, thumb in made)
        row = f'<div style="display:flex;flex-wrap:wrap;gap:6px;margin-top:4px">{figures}</div>' if made else ""
        caption = f" Made here: {html.escape(numbers)}." if made else ""
        block = f'<div class="aigate-snapshot" style="font-size:smaller">{html.escape(line)}{caption}{row}</div>'
        data = {"text/html": block, "text/plain": text}
        metadata = {"aigate_nb": {"panel": [result.display_metadata()["aigate_nb"] for result, _ in made]}}
        return data, metadata

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


    # -- models, ratios and sizes -----------------------------------------------------------

    def _load_models(self) -> None:
        """Runs on its own thread, so that a slow or absent gateway never holds up the panel."""
        default = self.session.defaults.model
        try:
            models = self.session.image_models()
            if not models:
                self._show_status(f"The gateway lists no image models; using {default}.", error=True)
        except Exception as exc:  # noqa: BLE001 - any failure leaves the default model usable
            models = []
            self._show_status(f"Could not list the models ({_one_line(exc)}); using {default}.", error=True)
        try:
            with self._lock:
                self._set_model_options([default, *(m for m in models if m != default)])
                self._show_where()
        except Exception as exc:  # noqa: BLE001 - never a traceback in the kernel's log
            self._show_status(_one_line(exc), error=True)
        finally:
            self._models_loaded.set()

    def _set_model_options(self, models: list[str]) -> None:
        current = self.model.value
        _set_options(self.model, models, keep=current)
        self._follow_model(self.model.value)

    def _follow_model(self, model: str | None) -> None:
        """Offer only the ratios and sizes ``model`` takes (all of them for a model we do not know)."""
        spec = spec_for(model or "")
        ratios = spec.ratios if spec else BASE_RATIOS + EXTRA_RATIOS
        sizes = spec.sizes if spec else ALL_SIZES
        d = self.session.defaults
        _set_options(
            self.aspect_ratio, [("model default", MODEL_DEFAULT)] + [(r, r) for r in ratios],
            keep=d.aspect_ratio if self.aspect_ratio.value is None else self.aspect_ratio.value,
        )
        _set_options(
            self.image_size, [("model default", MODEL_DEFAULT)] + [(s, s) for s in sizes],
            keep=d.image_size if self.image_size.value is None else self.image_size.value,
        )
        self.image_size.disabled = not sizes
        self.image_size.tooltip = "" if sizes else f"{model} takes no image size (about 1K)"

    def _follow_defaults(self, defaults) -> None:
        """``%aigate config`` changed the session's defaults: show the ones it changed here too."""
        with self._lock:
            before, self._defaults = self._defaults, defaults
            if defaults.model != before.model:
                if defaults.model not in self.model.options:
                    self._set_model_options([defaults.model, *self.model.options])
                self.model.value = defaults.model
            if defaults.route != before.route:
                self.route.value = defaults.route
            for dropdown, value, old in (
                (self.aspect_ratio, defaults.aspect_ratio, before.aspect_ratio),
                (self.image_size, defaults.image_size, before.image_size),
            ):
                if value != old or defaults.model != before.model:
                    _choose(dropdown, value, otherwise=MODEL_DEFAULT)

    # -- sources ----------------------------------------------------------------------------

    def _on_upload(self, change) -> None:
        files = change.new
        if not files:
            return
        item = files[-1]
        data = bytes(item["content"])
        mime = sniff_mime(data)
        if mime is None:
            self._show_status(f"{item['name']} is not an image; upload a PNG, JPEG or WebP file.", error=True)
            return
        with self._lock:
            # Named, so that the history records what the edit was made from.
            self._upload = ImageInput(mime, data, name=item["name"])
            self._refresh_sources()
            self.source.value = UPLOADED

    def _refresh_sources(self, entries: list | None = None) -> None:
        entries = list(self.session.history) if entries is None else entries
        options = [("None: make a new image", NO_SOURCE)]
        if self._upload is not None:
            options.append((f"Uploaded: {self._upload.name}", UPLOADED))
        options += [(f"[{e.index}] {_excerpt(e.prompt, 48)}", e.index) for e in reversed(entries)]
        ids = {e.index: e.id for e in entries}
        keep = self.source.value
        if isinstance(keep, int) and self._source_ids.get(keep) != ids.get(keep):
            keep = NO_SOURCE  # that number is another image now (the history was cleared)
        self._source_ids = ids
        self._filling_sources = True
        try:
            _set_options(self.source, options, keep=keep)
        finally:
            self._filling_sources = False

    def _follow_source(self, value) -> None:
        """A source chosen by hand: the ratio and size lists take its shape, as its edit would."""
        if self._filling_sources or value in (None, NO_SOURCE):
            return
        image = self._upload if value == UPLOADED else self._source_ids.get(value)
        if image is not None:
            self._preset_shape(image)

    def _preset_shape(self, image) -> None:
        """Choose in the ratio and size lists what an edit of ``image`` keeps (the session's rule)."""
        ratio, size = self.session.kept_shape(image, self.model.value)
        if ratio is not None:
            _choose(self.aspect_ratio, ratio)
        if size is not None:
            _choose(self.image_size, size)

    def _source_images(self) -> tuple:
        value = self.source.value
        if value in (None, NO_SOURCE):
            return ()
        if value == UPLOADED:
            return (self._upload,)
        try:
            return (self.session.history.get(self._source_ids[value]),)  # by id: numbers are reused after a clear
        except LookupError:
            self._refresh_sources()
            raise InputError(
                "The chosen source image is no longer in the history (it was cleared); choose another."
            ) from None

    # -- requests ---------------------------------------------------------------------------

    def _request(self, images: tuple) -> Request:
        return Request(
            prompt=self.prompt.value,
            model=self.model.value,
            aspect_ratio=self.aspect_ratio.value or None,
            image_size=self.image_size.value or None,
            route=self.route.value,
            images=images,
            new=True,  # a click asks for a new picture: never answered from the history
        )

    def generate(self) -> None:
        """What Generate (or Ctrl+Enter in the prompt) does: the prompt, with the chosen source image if any."""
        images = self._source_images()
        self._start(self._request(images), "Editing" if images else "Generating")

    def edit_selected(self) -> None:
        """What Edit does: the prompt, with the selected history entry as the source."""
        entry = self._selected_entry()
        multi_turn = self._multi_turn_chosen
        request = self._request((entry,))
        if multi_turn:
            # The session goes on with the model that made it, by the Google route; the lists
            # were for the model chosen here.
            request = replace(request, multi_turn=True, model=None, route=None, options_for=self.model.value)
        self._start(request, f"Editing [{entry.index}]" + (" (multi-turn)" if multi_turn else ""))

    def _start(self, request: Request, what: str) -> None:
        count = self.variants.value
        with self._lock:
            if self._click is not None:
                return
            futures, notes = self.session.submit_noting(request, count)
            click = _Click(futures, time.monotonic(), notes=notes)
            self._click, self.futures = click, futures
            self._idle.clear()
            self._set_busy(True)
            self.elapsed.value = "0.0 s"
            self._show_status(f"{what}{f' {count} variants' if count > 1 else ''}…{click.note()}")
        threading.Thread(target=self._tick, args=(click,), name="aigate-panel-clock", daemon=True).start()
        for future in futures:
            future.add_done_callback(lambda f, click=click: self._on_done(click, f))

    def _tick(self, click: _Click) -> None:
        while not click.stop.wait(0.2):
            self.elapsed.value = f"{time.monotonic() - click.started:.1f} s"

    def _on_done(self, click: _Click, future: Future) -> None:
        """Runs on the worker thread that finished ``future``."""
        try:
            settled = outcome(future)
            result, error = settled.result, settled.error or settled.not_kept  # not kept: shown, and said why
            with self._lock:
                current = click is self._click
                if result is not None:
                    self.refresh()
                    if current:
                        self._show_result(result)
                        if result.index is not None:
                            self._reveal(result.index)
                            self.select(result.index)  # turns the gallery to it, highlighted
                if not current:
                    return  # the panel stopped waiting; the result is in the history all the same
                click.done += 1
                if result is not None:
                    click.results.append(result)
                if error is not None:
                    click.errors.append(error)
                if click.done == len(click.futures):
                    self._finish(click)
        except Exception as exc:  # noqa: BLE001 - never a traceback in the kernel's log
            self._show_status(_one_line(exc), error=True)
            with self._lock:
                if click is self._click:
                    self._finish(click)

    def _finish(self, click: _Click, stopped: bool = False) -> None:
        click.stop.set()
        took = time.monotonic() - click.started
        self._click = None
        self._set_busy(False)
        self.elapsed.value = ""
        if stopped:
            self._show_status(
                f"Stopped waiting after {took:.1f} s; a reply that still comes joins the history and the gallery."
            )
        elif click.errors:
            failed = len(click.errors)
            head = f"{failed} of {len(click.futures)} failed: " if len(click.futures) > 1 else ""
            self._show_status(head + _one_line(click.errors[0]), error=True)
        else:
            made = ", ".join(f"[{r.index}]" for r in click.results)
            self._show_status(f"Made {made} in {took:.1f} s.{click.note()}")
        self._idle.set()

    def stop_waiting(self) -> None:
        """Give the buttons back now; requests already sent may still finish and join the history."""
        with self._lock:
            click = self._click
            if click is None:
                return
            for future in click.futures:
                future.cancel()
            self._finish(click, stopped=True)

    def wait(self, timeout: float = 60.0) -> None:
        """Block until the model list is in and no request is running; ``TimeoutError`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        if not self._models_loaded.wait(timeout) or not self._idle.wait(max(0.0, deadline - time.monotonic())):
            raise TimeoutError(f"The panel was still busy after {timeout:g} s.")

    def _set_busy(self, busy: bool) -> None:
        self.generate_button.disabled = busy
        self.edit_button.disabled = self.region_button.disabled = busy or self._selected_id is None
        for widget in (self.stop_button, self.busy, self.elapsed):
            widget.layout.display = "" if busy else "none"

    def _show_result(self, result) -> None:
        """Add ``result`` to the cell's snapshot (see ``snapshot``), updated in place in the
        panel's cell; the gallery and the larger view show the result itself."""
        try:
            thumb = b64encode(make_thumbnail(result.data, SNAPSHOT_EDGE))
        except (AigateError, OSError, ValueError):
            thumb = None  # its file is already gone: the number and caption still say what it was
        with self._lock:
            self._made.append((result, thumb))
        handle = self._snapshot_handle
        if handle is None:
            return
        from IPython.display import display

        data, metadata = self.snapshot()
        shell = _shell()
        tokens = None
        if self._cell_parent is not None and shell is not None:
            tokens = shell.set_thread_parent(self._cell_parent)
        try:
            handle.update(data, metadata=metadata, raw=True)
            if result.index is None:
                display(result)  # not in the history: shown whole, to be seen and saved from the page
        finally:
            if tokens is not None:
                shell.reset_thread_parent(tokens)

    # -- gallery and selection --------------------------------------------------------------

    def refresh(self) -> None:
        """Show the history as it is now (cells may have added to it or cleared it), as far as
        the search lets through, a page at a time."""
        with self._lock:
            history = self.session.history
            self._shown_stamp = history.stamp()
            entries = list(history)
            found = self._found(entries)
            page = history.page(self._page, GALLERY_SLOTS, entries=found)
            self._page = page.number
            for slot, entry in zip(self._slots, page.entries + [None] * (GALLERY_SLOTS - len(page.entries))):
                self._fill_slot(slot, entry)
            count = f"{len(entries)} image{'s' if len(entries) != 1 else ''}"
            if len(found) != len(entries):
                count = f"{len(found)} of {count} found"
            span = f" · page {page.number + 1} of {page.count}" if page.count > 1 else ""
            if not entries:
                empty = " · nothing yet: Generate makes the first"
            elif not found:
                empty = " · nothing matches the search"
            else:
                empty = ""
            self.gallery_title.value = (
                f'<span class="aigate-title">History</span> '
                f'<span class="aigate-muted">{count}{span}{html.escape(empty)}</span>'
            )
            self.newer_button.disabled = not page.has_previous
            self.older_button.disabled = not page.has_next
            self.newer_button.layout.display = self.older_button.layout.display = "" if page.count > 1 else "none"
            self._refresh_sources(entries)
            if self._selected_id is not None and all(entry.id != self._selected_id for entry in entries):
                self._deselect()  # cleared, here or by another kernel

    def _found(self, entries: list) -> list:
        """The entries the search box lets through (all of them when it is empty), oldest first."""
        query = self.search.value.strip()
        return self.session.history.filter(text=query) if query else entries

    def _follow_search(self) -> None:
        self._page = 0
        self.refresh()

    def _reveal(self, index: int) -> None:
        """Clear a search that hides entry ``index``, so that a new result shows in the gallery."""
        query = self.search.value.strip()
        if query and all(entry.index != index for entry in self.session.history.search(query)):
            self.search.value = ""

    def _after_cell(self, *_result) -> None:
        """After every cell the kernel runs: if the history changed (a ``%%gemini_image`` cell,
        a clear), show it; entries added turn the gallery to the newest."""
        try:
            with self._lock:
                stamp = self.session.history.stamp()
                if stamp == self._shown_stamp:
                    return
                if self._shown_stamp is None or stamp[1] > self._shown_stamp[1]:
                    self._page = 0
                self.refresh()
        except Exception as exc:  # noqa: BLE001 - a cell's run must never end in the panel's traceback
            self._show_status(_one_line(exc), error=True)

    def _fill_slot(self, slot: _Slot, entry) -> None:
        if entry is None:
            slot.index = slot.entry_id = None
            slot.box.layout.display = "none"
            return
        if slot.entry_id != entry.id:
            try:
                slot.image.value = self.session.history.thumbnail(entry)
            except HistoryError:  # its file was deleted while the kernel ran
                slot.image.value = _missing_thumbnail()
            slot.entry_id = entry.id
        slot.index = entry.index
        slot.button.description = f"[{entry.index}]"
        slot.button.tooltip = _excerpt(entry.prompt, 200)
        slot.button.button_style = "info" if entry.id == self._selected_id else ""
        slot.box.layout.display = ""

    def _turn_page(self, step: int) -> None:
        self._page = max(0, self._page + step)
        self.refresh()

    def _guarded_select(self, index: int | None) -> None:
        if index is not None:
            self._guarded(self.select, index)

    def select(self, index: int | str) -> None:
        """Show history entry ``index`` (or id) larger, with its prompt and lineage, ready for a
        box to be drawn on it; the gallery turns to its page, and the ratio and size lists take
        its shape, as an edit of it keeps. A region edit shows with the box it changed."""
        history = self.session.history
        with self._lock:
            entry = history.get(index)
            self.region_text.value = ""  # a box belongs to one picture
            self.picture.show(entry.data, entry.size)
            if entry.region:
                self.picture.box = list(entry.region["box"])
            self.selected, self._selected_id = entry.index, entry.id
            newest_first = [e.id for e in self._found(list(history))][::-1]
            page = newest_first.index(entry.id) // GALLERY_SLOTS if entry.id in newest_first else self._page
            if page != self._page:
                self._page = page
                self.refresh()
            lineage = history.lineage(entry)
            self.details.value = _details_html(entry, lineage)
            self._show_lineage(lineage, history.children(entry))
            self.save_path.value = f"image-{entry.index}{entry.path.suffix}"
            self.placeholder.layout.display = "none"
            self._detail_box.layout.display = ""
            self.cell_text.layout.display = "none"
            for slot in self._slots:
                slot.button.button_style = "info" if slot.entry_id == entry.id else ""
            self.edit_button.description = f"Edit [{entry.index}]"
            self.edit_button.disabled = self.region_button.disabled = self._click is not None
            continues = self.session.can_continue(entry)
            self.multi_turn.disabled = not continues
            if not continues:
                self.multi_turn.value = False
            if continues:
                why = ""
            elif entry.region:
                why = f"[{entry.index}] is a region edit, made from a crop: it continues no conversation."
            else:
                why = (f"Multi-turn continues pictures made by the Google route; [{entry.index}] came by "
                       f"the {entry.route} route.")
            note = f'<div class="aigate-note aigate-muted">{html.escape(why)}</div>'
            self.multi_turn_note.value = note if why else ""
            self._preset_shape(entry)

    def _lineage_button(self) -> w.Button:
        button = w.Button(layout=w.Layout(width="auto", height="24px", padding="0 6px"))
        button.entry_id = None
        button.on_click(lambda b: self._guarded(self.select, b.entry_id))
        return button

    def _show_lineage(self, chain: list, children: list) -> None:
        """The selected entry's chain back to its first picture (the first and the latest few
        where it is long) and the entries edited from it, each a button that selects it."""
        shown = chain if len(chain) <= LINEAGE_SLOTS else [chain[0], *chain[-(LINEAGE_SLOTS - 1):]]
        row: list[w.Widget] = [self._lineage_captions[0]]
        for k, (button, entry) in enumerate(zip(self._chain_buttons, shown)):
            if k:
                row.append(self._gap if k == 1 and len(chain) > len(shown) else self._arrows[k])
            row.append(_point_at(button, entry, current=entry is chain[-1]))
        if children:
            row.append(self._lineage_captions[1])
            for button, entry in zip(self._child_buttons, children):
                row.append(_point_at(button, entry))
            extra = len(children) - LINEAGE_SLOTS
            self._more.value = f'<span class="aigate-muted">and {extra} more</span>' if extra > 0 else ""
            row.append(self._more)
        self.lineage.children = tuple(row)
        self.lineage.layout.display = "" if len(chain) > 1 or children else "none"

    # -- region edits ------------------------------------------------------------------------

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

    def edit_region(self) -> None:
        """What Edit region does: the prompt, as an edit of only the box in the X,Y,W,H field
        (drawn on the picture, or typed) of the selected entry, in the chosen mode."""
        entry = self._selected_entry()
        request = replace(
            self._request((entry,)), aspect_ratio=None, image_size=None,  # a region edit keeps its source's
            region=self.region_text.value, region_mode=self.region_mode.value,
        )
        self._start(request, f"Editing a region of [{entry.index}]")

    @property
    def _multi_turn_chosen(self) -> bool:
        """Multi-turn is ticked, and offered for the selected image."""
        return self.multi_turn.value and not self.multi_turn.disabled

    def _selected_entry(self):
        """The selected history entry, found by its id (its number may have been reused after a clear)."""
        if self._selected_id is None:
            raise InputError("Select an image in the history first.")
        try:
            return self.session.history.get(self._selected_id)
        except LookupError:
            self._deselect()
            raise InputError(
                "The selected image is no longer in the history (it was cleared); select another."
            ) from None

    def _deselect(self) -> None:
        self.selected = self._selected_id = None
        self._detail_box.layout.display = "none"
        self.placeholder.layout.display = ""
        self.edit_button.disabled = self.region_button.disabled = True

    def save_selected(self) -> Path:
        """Save the selected entry's full-size image to the path in the box."""
        entry = self._selected_entry()
        target = self.save_path.value.strip()
        if not target:
            raise InputError("Type a file name to save to, e.g. picture.png.")
        path = entry.result().save(target)
        self._show_status(f"Saved [{entry.index}] to {path}")
        return path

    def new_cell(self) -> str:
        """Queue a ``%%gemini_image --edit N`` cell holding the selected entry's prompt, and show
        its text to copy: a kernel can add a cell only when the next cell runs."""
        entry = self._selected_entry()
        shell = _shell()
        text = edit_cell_text(entry, multi_turn=self._multi_turn_chosen)
        if shell is not None:
            shell.set_next_input(text)
            line = "It appears below the next cell you run (a kernel can add a cell only then), or copy it from here:"
            self._show_status(f"A %%gemini_image --edit {entry.index} cell appears below the next cell you run.")
        else:
            line = "No kernel can add it here: copy it into a new cell."
        self.cell_text.value = (
            f'<div class="aigate-note aigate-muted">{html.escape(line)}</div>'
            f'<pre class="aigate-cell-text">{html.escape(text)}</pre>'
        )
        self.cell_text.layout.display = ""
        return text

    # -- status -----------------------------------------------------------------------------

    def _guarded(self, action, *args) -> None:
        """Run a button's action; any failure becomes one line in the status, never a traceback."""
        try:
            action(*args)
        except Exception as exc:  # noqa: BLE001
            self._show_status(_one_line(exc), error=True)

    def _show_status(self, text: str, error: bool = False) -> None:
        self.status_text, self.status_is_error = text, error
        kind = "aigate-status aigate-error" if error else "aigate-status"
        mark = "⚠ " if error else ""
        self.status.value = f'<div class="{kind}" title="{html.escape(text)}">{mark}{html.escape(text)}</div>'


def _shell():
    """The running IPython shell, or None."""
    from IPython import get_ipython

    return get_ipython()


def _missing_thumbnail() -> bytes:
    """A grey square for an entry whose image file is gone."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (96, 96), (200, 200, 200)).save(buf, format="JPEG")
    return buf.getvalue()


def edit_cell_text(entry, multi_turn: bool = False) -> str:
    """A ``%%gemini_image`` cell that edits ``entry`` with its own prompt (braces kept literal)."""
    prompt = entry.prompt.replace("{", "{{").replace("}", "}}")
    return f"%%gemini_image --edit {entry.index}{' --multi-turn' if multi_turn else ''}\n{prompt}"


def _details_html(entry, lineage: list) -> str:
    """The entry's number, settings and prompt; where it came from when no lineage row shows it."""
    facts = [entry.model.removeprefix("google/")]
    facts += [v for v in (entry.aspect_ratio, entry.image_size) if v]
    facts.append("{}×{}".format(*entry.size))
    facts.append(f"{entry.route} route")
    label = region_label(entry.region)
    if label:
        facts.append(label)
    if len(lineage) > 1:
        history_line = ""
    elif entry.parent or entry.inputs:
        history_line = f"Edited from {entry.edited_from()}, outside this history"
    else:
        history_line = "An original (not an edit)"
    return (
        f'<div><span class="aigate-title">[{entry.index}]</span> '
        f'<span class="aigate-muted">{html.escape(" · ".join(facts))}</span></div>'
        f'<div class="aigate-prompt">{html.escape(entry.prompt)}</div>'
        + (f'<div class="aigate-muted">{html.escape(history_line)}</div>' if history_line else "")
    )


def _point_at(button: w.Button, entry, current: bool = False) -> w.Button:
    """A lineage button, made to select ``entry``."""
    button.entry_id = entry.id
    button.description = f"[{entry.index}]"
    button.tooltip = f"[{entry.index}] {_excerpt(entry.prompt, 200)}"
    button.button_style = "info" if current else ""
    button.layout.display = ""
    return button


def _number(result) -> str:
    return f"[{result.index}]" if result.index is not None else "(not kept)"


def _snapshot_figure(result, thumb: str | None) -> str:
    """One result in the cell's snapshot: its thumbnail, its number, its prompt as the tooltip."""
    picture = (
        f'<img src="data:image/jpeg;base64,{thumb}" alt="{html.escape(_number(result))}" '
        'style="max-width:80px;max-height:80px;display:block"/>'
        if thumb else '<div style="width:80px;height:80px;border:1px dashed #999"></div>'
    )
    return (
        f'<figure style="margin:0;width:80px" title="{html.escape(clip(result.prompt, 300))}">{picture}'
        f'<figcaption style="font-size:smaller">{html.escape(_number(result))}</figcaption></figure>'
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, AigateError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


def _excerpt(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _set_options(dropdown: w.Dropdown, options: list, keep: Any = None) -> None:
    """Replace a dropdown's options, keeping ``keep`` selected when it is still offered."""
    values = [o[1] if isinstance(o, tuple) else o for o in options]
    if list(dropdown.options) == list(options) and dropdown.value in values:
        return
    dropdown.options = options  # selects the first option, then ours below
    dropdown.value = keep if keep in values else values[0]


def _choose(dropdown: w.Dropdown, value: Any, otherwise: Any = None) -> None:
    """Select ``value`` in ``dropdown`` if it is offered, else ``otherwise`` (None: leave it)."""
    offered = [o[1] if isinstance(o, tuple) else o for o in dropdown.options]
    if value in offered:
        dropdown.value = value
    elif otherwise is not None:
        dropdown.value = otherwise


def _field(label: str, control: w.Widget, width: str = "auto", margin: str = "0 12px 8px 0") -> w.VBox:
    caption = w.HTML(f'<span class="aigate-label">{html.escape(label) or "&nbsp;"}</span>')
    return w.VBox([caption, control], layout=w.Layout(width=width, max_width="100%", margin=margin))


def _row(*children: w.Widget, wrap: bool = True, align: str = "flex-end", margin: str = "0") -> w.HBox:
    return w.HBox(
        list(children),
        layout=w.Layout(
            flex_flow="row wrap" if wrap else "row nowrap", align_items=align, width="100%", margin=margin
        ),
    )


def _auto_width(min_width: str = "0") -> w.Layout:
    """A button as wide as its label, never squeezed below it."""
    return w.Layout(width="auto", flex="0 0 auto", min_width=min_width)
