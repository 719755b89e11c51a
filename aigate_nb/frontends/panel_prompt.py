"""The panel's prompt area: the prompt, model, route, ratio, size, variants and source image,
Generate, and the status line with the spinner and the clock while a click's requests run.

It shows ``PanelState`` and turns its widgets' values into a ``Form``; what a click does is
decided there. ``PromptBox`` is the prompt's text box, an anywidget (``prompt_box.js``).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as w
import traitlets

from ..session.session import MAX_VARIANTS, Defaults
from .panel_layout import auto_width, choose, field, row, set_options
from .panel_state import MODEL_DEFAULT, ROUTES, Form, PanelState, shape_choices

#: The browser side's files, beside this one: anywidget reads a Path's contents when the class is defined.
_HERE = Path(__file__).parent
#: The panel's own look, sent once in its header.
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
        self._submit_callbacks: list[Callable[[], object]] = []
        self.on_msg(self._on_message)

    def on_submit(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` when the user presses Ctrl+Enter (or Shift+Enter) in the box."""
        self._submit_callbacks.append(callback)

    def _on_message(self, _widget: object, content: object, _buffers: object) -> None:
        if isinstance(content, dict) and content.get("event") == "submit":
            for callback in list(self._submit_callbacks):
                callback()


class PromptArea:
    """The panel's upper part; ``widget`` is its box. ``form()`` is what its controls say."""

    def __init__(self, state: PanelState) -> None:
        self.state = state
        self._defaults = state.session.defaults
        self._filling_sources = False
        d = self._defaults
        self.header = w.HTML()
        self.prompt = PromptBox(
            placeholder="Describe the image to make, or the change to make to the source image "
            "(Ctrl+Enter generates)",
            layout=w.Layout(width="100%"),
        )
        self.prompt.on_submit(lambda: state.guarded(self.generate))
        self.model = w.Dropdown(options=[d.model], value=d.model, layout=w.Layout(width="280px", max_width="100%"))
        self.route = w.Dropdown(
            options=list(ROUTES), value="google", layout=w.Layout(width="110px"),
            tooltip="Google (generateContent) keeps the model's side of the conversation, which "
            "Multi-turn continues; Chat (chat/completions) does not",
        )
        self.aspect_ratio = w.Dropdown(layout=w.Layout(width="130px"))
        self.image_size = w.Dropdown(layout=w.Layout(width="130px"))
        self.variants = w.BoundedIntText(value=1, min=1, max=MAX_VARIANTS, layout=w.Layout(width="72px"))
        self.model.observe(lambda change: state.guarded(self._follow_model, change.new), names="value")
        self.source = w.Dropdown(layout=w.Layout(width="300px", max_width="100%"))
        self.source.observe(lambda change: state.guarded(self._follow_source, change.new), names="value")
        self.upload = w.FileUpload(
            accept="image/*", multiple=False, description="Upload image",
            layout=w.Layout(width="auto", flex="0 0 auto", margin="0 12px 8px 0"),
        )
        self.upload.observe(lambda change: state.guarded(self._on_upload, change.new), names="value")
        self.generate_button = w.Button(
            description="Generate", button_style="primary",
            tooltip="Send the prompt, with the source image if one is chosen (Ctrl+Enter in the prompt)",
            layout=auto_width(min_width="120px"),
        )
        self.stop_button = w.Button(description="Stop waiting", button_style="warning", layout=auto_width())
        self.stop_button.layout.display = "none"
        self.generate_button.on_click(lambda _: state.guarded(self.generate))
        self.stop_button.on_click(lambda _: state.guarded(state.stop_waiting))
        self.busy = w.HTML(
            '<div class="aigate-spinner"></div>',
            layout=w.Layout(width="22px", height="28px", overflow="hidden", display="none", flex="0 0 auto"),
        )
        self.elapsed = w.Label("", layout=w.Layout(display="none", flex="0 0 auto"))
        self.status = w.HTML("", layout=w.Layout(flex="1 1 auto", width="auto", min_width="0", margin="0 0 0 12px"))
        self.widget = w.VBox(
            [
                self.header,
                field("Prompt", self.prompt, width="100%", margin="0 0 8px 0"),
                row(
                    field("Model", self.model),
                    field("Route", self.route),
                    field("Aspect ratio", self.aspect_ratio),
                    field("Size", self.image_size),
                    field("Variants", self.variants),
                ),
                row(field("Source image", self.source), self.upload),
                row(self.generate_button, self.stop_button, self.busy, self.elapsed, self.status,
                    wrap=False, align="center"),
            ],
            layout=w.Layout(width="100%"),
        )
        self.show_where()
        self.show_models()

    def form(self) -> Form:
        """What the controls say now."""
        return Form(
            prompt=self.prompt.value, model=self.model.value, route=self.route.value,
            aspect_ratio=self.aspect_ratio.value, image_size=self.image_size.value, variants=self.variants.value,
        )

    def generate(self) -> None:
        self.state.generate(self.form())

    # -- showing the state ----------------------------------------------------------------------

    def show_where(self) -> None:
        """The title, and where requests go: the emulator, or the gateway's host."""
        where, base_url = self.state.where()
        self.header.value = (
            f'{_CSS}<span class="aigate-title">Gemini image</span>'
            f'<span class="aigate-badge" title="requests go to {html.escape(base_url)}">'
            f"{html.escape(where)}</span>"
        )

    def show_models(self) -> None:
        current = self.model.value
        set_options(self.model, list(self.state.models), keep=current)
        self._follow_model(self.model.value)

    def show_sources(self) -> None:
        self._filling_sources = True  # the list being refilled is no choice of a source
        try:
            set_options(self.source, self.state.source_options(), keep=self.state.source)
        finally:
            self._filling_sources = False

    def show_busy(self) -> None:
        busy = self.state.busy
        self.generate_button.disabled = busy
        for widget in (self.stop_button, self.busy, self.elapsed):
            widget.layout.display = "" if busy else "none"
        self.show_elapsed()

    def show_elapsed(self) -> None:
        elapsed = self.state.elapsed
        self.elapsed.value = "" if elapsed is None else f"{elapsed:.1f} s"

    def show_status(self) -> None:
        text, error = self.state.status.text, self.state.status.error
        kind = "aigate-status aigate-error" if error else "aigate-status"
        mark = "⚠ " if error else ""
        self.status.value = f'<div class="{kind}" title="{html.escape(text)}">{mark}{html.escape(text)}</div>'

    def preset_shape(self, image: Any) -> None:
        """Choose in the ratio and size lists what an edit of ``image`` keeps."""
        ratio, size = self.state.kept_shape(image, self.model.value)
        if ratio is not None:
            choose(self.aspect_ratio, ratio)
        if size is not None:
            choose(self.image_size, size)

    # -- following the controls and the session ---------------------------------------------------

    def _follow_model(self, model: str | None) -> None:
        """Offer only the ratios and sizes ``model`` takes."""
        ratios, sizes = shape_choices(model)
        d = self.state.session.defaults
        set_options(
            self.aspect_ratio, [("model default", MODEL_DEFAULT)] + [(r, r) for r in ratios],
            keep=d.aspect_ratio if self.aspect_ratio.value is None else self.aspect_ratio.value,
        )
        set_options(
            self.image_size, [("model default", MODEL_DEFAULT)] + [(s, s) for s in sizes],
            keep=d.image_size if self.image_size.value is None else self.image_size.value,
        )
        self.image_size.disabled = not sizes
        self.image_size.tooltip = "" if sizes else f"{model} takes no image size (about 1K)"

    def follow_defaults(self, defaults: Defaults) -> None:
        """``%aigate config`` changed the session's defaults: show the ones it changed here too."""
        with self.state.lock:
            before, self._defaults = self._defaults, defaults
            if defaults.model != before.model:
                if defaults.model not in self.model.options:
                    set_options(self.model, [defaults.model, *self.model.options], keep=self.model.value)
                    self._follow_model(self.model.value)
                self.model.value = defaults.model
            if defaults.route != before.route:
                self.route.value = defaults.route
            for dropdown, value, old in (
                (self.aspect_ratio, defaults.aspect_ratio, before.aspect_ratio),
                (self.image_size, defaults.image_size, before.image_size),
            ):
                if value != old or defaults.model != before.model:
                    choose(dropdown, value, otherwise=MODEL_DEFAULT)

    def _follow_source(self, value: int | str | None) -> None:
        """A source chosen by hand: the ratio and size lists take its shape, as its edit would."""
        if self._filling_sources:
            return
        image = self.state.choose_source(value)
        if image is not None:
            self.preset_shape(image)

    def _on_upload(self, files: Sequence[Mapping[str, Any]]) -> None:
        if not files:
            return
        item = files[-1]
        image = self.state.upload_file(item["name"], bytes(item["content"]))
        if image is not None:
            self.preset_shape(image)
