"""The panel's state and what its buttons do, with no widgets: testable in plain Python.

``PanelState`` holds what the panel shows (the gallery's page and search, the selected entry,
the source image, the status, whether a request runs, the results made here) and decides what
each action does; the views (``panel_prompt``, ``panel_gallery``, ``panel_detail``) only turn
widget values into calls here and show what changed. Every rule the magic shares lives in the
session; this module only arranges the session's answers for one panel.

Changes are announced to ``watch`` callbacks by name (``"status"``, ``"busy"``, ``"gallery"``,
...), on whichever thread made them: a click's requests finish on the session's workers.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from ..core.errors import AigateError, HistoryError, InputError
from ..core.images import ImageInput, b64encode, make_thumbnail, sniff_mime
from ..core.models import ALL_SIZES, BASE_RATIOS, EXTRA_RATIOS, spec_for
from ..core.region import region_label
from ..core.text import clip, one_line
from ..records.store import HistoryEntry
from ..session.session import Request, Session, outcome

if TYPE_CHECKING:
    from ..core.results import ImageResult

#: Thumbnails shown per gallery page; the widgets are made once and reused.
GALLERY_SLOTS = 12
#: Buttons for the selected entry's lineage: its chain back to the first picture, and its edits.
LINEAGE_SLOTS = 6
#: Long edge in pixels of each result's thumbnail in the cell's snapshot (shown at half that).
SNAPSHOT_EDGE = 160
#: How often the elapsed time of a running click is announced, in seconds.
TICK = 0.2

#: Dropdown value for "send no ratio/size: the model decides".
MODEL_DEFAULT = ""
#: Source dropdown values besides history indices.
NO_SOURCE = "none"
UPLOADED = "upload"
#: The routes offered, Google first: its replies keep what a multi-turn edit continues.
ROUTES = (("Google", "google"), ("Chat", "chat"))
#: The region modes offered (see region.py).
REGION_MODES = (("Crop", "crop"), ("Guide", "guide"))


@dataclass(frozen=True)
class Form:
    """What the panel's controls say when a button is pressed."""

    prompt: str
    model: str
    route: str = "google"
    aspect_ratio: str | None = None  # MODEL_DEFAULT or None: the model decides
    image_size: str | None = None
    variants: int = 1


@dataclass(frozen=True)
class Status:
    """The one line under the buttons."""

    text: str = ""
    error: bool = False


@dataclass(frozen=True)
class GalleryPage:
    """One page of the searched history, newest first, and the line above it."""

    entries: list[HistoryEntry]
    number: int = 0
    count: int = 1
    has_newer: bool = False
    has_older: bool = False
    summary: str = ""


@dataclass(frozen=True)
class Lineage:
    """The selected entry's lineage as shown: its chain back to the first picture (the first and
    the latest few where it is long) and the first few entries edited from it."""

    chain: list[HistoryEntry]
    cut: bool  # steps between the first and the latest few are left out
    children: list[HistoryEntry]
    more: int  # edits of it beyond those shown

    @property
    def shown(self) -> bool:
        return len(self.chain) > 1 or bool(self.children)


@dataclass(frozen=True)
class Selection:
    """The selected entry and what the detail shows of it."""

    entry: HistoryEntry
    lineage: Lineage
    facts: list[str]  # model, ratio, size, pixels, route, region
    origin: str  # where it came from, when no lineage row shows it
    continues: bool  # Multi-turn is offered
    why_not: str  # why Multi-turn is not offered, as text


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


class PanelState:
    """The panel's state over ``session``: gallery, search, selection, source, status, the
    request in flight, and the results made here. ``watch(callback)`` hears each change by name."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.status = Status()
        self.selection: Selection | None = None
        self.gallery = GalleryPage([])
        self.query = ""
        self.source: int | str = NO_SOURCE
        self.upload: ImageInput | None = None
        self.models: list[str] = [session.defaults.model]
        self.futures: list[Future] = []
        self.elapsed: float | None = None  # seconds since the running click began
        self.made: list[tuple[Any, str | None]] = []  # results made here, with their thumbnails' base64
        self._page = 0
        self._source_ids: dict[int, str] = {}  # the Source list's numbers, as shown, and their entries
        self._source_entries: list[HistoryEntry] = []
        self._shown_stamp: tuple | None = None
        self._click: _Click | None = None
        self._lock = threading.RLock()
        self._idle = threading.Event()
        self._idle.set()
        self._models_loaded = threading.Event()
        self._watchers: list[Callable[[str], None]] = []

    # -- announcing -------------------------------------------------------------------------

    def watch(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(what)`` after each change: ``"status"``, ``"busy"``, ``"elapsed"``,
        ``"gallery"``, ``"query"``, ``"selection"``, ``"sources"``, ``"models"`` or ``"made"``."""
        self._watchers.append(callback)

    def _changed(self, what: str) -> None:
        for callback in list(self._watchers):
            callback(what)

    def show_status(self, text: str, error: bool = False) -> None:
        """Say ``text`` in the status line (marked as an error where ``error``)."""
        self.status = Status(text, error)
        self._changed("status")

    def guarded(self, action: Callable[..., Any], *args: Any) -> None:
        """Run a button's action; any failure becomes one line in the status, never a traceback."""
        try:
            action(*args)
        except Exception as exc:  # noqa: BLE001
            self.show_status(error_line(exc), error=True)

    @property
    def lock(self) -> threading.RLock:
        """Held while the state changes; views take it to show several changes as one."""
        return self._lock

    # -- where requests go, and the models ----------------------------------------------------

    def where(self) -> tuple[str, str]:
        """Where requests go, as a short label (the emulator, or the gateway's host), and the base URL."""
        base_url = self.session.client.base_url
        return ("emulator" if self.session.emulated else urlsplit(base_url).netloc), base_url

    def load_models(self) -> None:
        """Ask the gateway for its image models, the default first; meant for its own thread, so
        that a slow or absent gateway never holds up the panel. Any failure leaves the default."""
        default = self.session.defaults.model
        try:
            models = self.session.image_models()
            if not models:
                self.show_status(f"The gateway lists no image models; using {default}.", error=True)
        except Exception as exc:  # noqa: BLE001 - any failure leaves the default model usable
            models = []
            self.show_status(f"Could not list the models ({error_line(exc)}); using {default}.", error=True)
        try:
            with self._lock:
                self.models = [default, *(m for m in models if m != default)]
                self._changed("models")
        except Exception as exc:  # noqa: BLE001 - never a traceback in the kernel's log
            self.show_status(error_line(exc), error=True)
        finally:
            self._models_loaded.set()

    def kept_shape(self, image: Any, model: str) -> tuple[str | None, str | None]:
        """The ratio and size an edit of ``image`` keeps with ``model`` (the session's rule)."""
        return self.session.kept_shape(image, model)

    # -- gallery and search -------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the history as it is now (cells may have added to it or cleared it), as far as
        the search lets through, a page at a time."""
        with self._lock:
            history = self.session.history
            self._shown_stamp = history.stamp()
            entries = list(history)
            found = self._found(entries)
            page = history.page(self._page, GALLERY_SLOTS, entries=found)
            self._page = page.number
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
            self.gallery = GalleryPage(
                list(page.entries), page.number, page.count, page.has_previous, page.has_next, count + span + empty
            )
            self._changed("gallery")
            self._refresh_sources(entries)
            if self.selection is not None and all(entry.id != self.selection.entry.id for entry in entries):
                self._deselect()  # cleared, here or by another kernel

    def refresh_if_changed(self) -> None:
        """After a cell ran: if the history changed (a ``%%gemini_image`` cell, a clear), read it
        again; entries added turn the gallery to the newest."""
        with self._lock:
            stamp = self.session.history.stamp()
            if stamp == self._shown_stamp:
                return
            if self._shown_stamp is None or stamp[1] > self._shown_stamp[1]:
                self._page = 0
            self.refresh()

    def turn_page(self, step: int) -> None:
        """Older (``step`` 1) or newer (-1) entries."""
        with self._lock:
            self._page = max(0, self._page + step)
            self.refresh()

    def search(self, query: str) -> None:
        """Show only the entries ``query`` finds (all for an empty one), from its first page."""
        with self._lock:
            if query == self.query:
                return  # the search box echoing a query set here
            self.query = query
            self._page = 0
            self.refresh()
            self._changed("query")

    def _found(self, entries: list) -> list:
        """The entries the search lets through (all of them when it is empty), oldest first."""
        query = self.query.strip()
        return self.session.history.filter(text=query) if query else entries

    def _reveal(self, index: int) -> None:
        """Clear a search that hides entry ``index``, so that a new result shows in the gallery."""
        query = self.query.strip()
        if query and all(entry.index != index for entry in self.session.history.search(query)):
            self.search("")

    # -- selection ------------------------------------------------------------------------------

    @property
    def selected(self) -> int | None:
        """The selected entry's number, or None."""
        return self.selection.entry.index if self.selection is not None else None

    def select(self, index: int | str) -> None:
        """Select history entry ``index`` (or id): the gallery turns to its page; its lineage and
        whether Multi-turn continues it are worked out for the detail to show."""
        history = self.session.history
        with self._lock:
            entry = history.get(index)
            newest_first = [e.id for e in self._found(list(history))][::-1]
            page = newest_first.index(entry.id) // GALLERY_SLOTS if entry.id in newest_first else self._page
            chain = history.lineage(entry)
            self.selection = _selection(entry, chain, history.children(entry), self.session.can_continue(entry))
            if page != self._page:
                self._page = page
                self.refresh()
            self._changed("selection")

    def selected_entry(self) -> HistoryEntry:
        """The selected history entry, found by its id (its number may have been reused after a clear)."""
        if self.selection is None:
            raise InputError("Select an image in the history first.")
        try:
            return self.session.history.get(self.selection.entry.id)
        except HistoryError:
            self._deselect()
            raise InputError(
                "The selected image is no longer in the history (it was cleared); select another."
            ) from None

    def _deselect(self) -> None:
        self.selection = None
        self._changed("selection")

    def save_selected(self, target: str) -> Path | list[Path]:
        """Save the selected entry's full-size image to ``target`` (each of its images, if several)."""
        entry = self.selected_entry()
        target = target.strip()
        if not target:
            raise InputError("Type a file name to save to, e.g. picture.png.")
        path = entry.result().save(target)
        self.show_status(f"Saved [{entry.index}] to {path}")
        return path

    def edit_cell_text(self, multi_turn: bool = False) -> str:
        """The ``%%gemini_image --edit N`` cell that edits the selected entry with its prompt."""
        return edit_cell_text(self.selected_entry(), multi_turn=multi_turn and self._continues())

    def _continues(self) -> bool:
        return self.selection is not None and self.selection.continues

    # -- sources ------------------------------------------------------------------------------

    def source_options(self) -> list[tuple[str, int | str]]:
        """The Source list: none, the uploaded file, then the history, newest first."""
        options: list[tuple[str, int | str]] = [("None: make a new image", NO_SOURCE)]
        if self.upload is not None:
            options.append((f"Uploaded: {self.upload.name}", UPLOADED))
        return options + [(f"[{e.index}] {one_line(e.prompt, 48)}", e.index) for e in reversed(self._source_entries)]

    def _refresh_sources(self, entries: list | None = None) -> None:
        entries = list(self.session.history) if entries is None else entries
        ids = {e.index: e.id for e in entries}
        if isinstance(self.source, int) and self._source_ids.get(self.source) != ids.get(self.source):
            self.source = NO_SOURCE  # that number is another image now (the history was cleared)
        self._source_ids, self._source_entries = ids, entries
        self._changed("sources")

    def choose_source(self, value: int | str | None) -> Any:
        """The Source list's choice; returns the image chosen (the upload, a history entry's id, or
        None for none), whose shape the ratio and size lists take, as its edit would."""
        with self._lock:
            self.source = NO_SOURCE if value is None else value
            if value in (None, NO_SOURCE):
                return None
            if value == UPLOADED:
                return self.upload
            return self._source_ids.get(value) if isinstance(value, int) else None

    def upload_file(self, name: str, data: bytes) -> ImageInput | None:
        """A file chosen with Upload becomes the source; one that is not an image is refused in the status."""
        mime = sniff_mime(data)
        if mime is None:
            self.show_status(f"{name} is not an image; upload a PNG, JPEG or WebP file.", error=True)
            return None
        with self._lock:
            # Named, so that the history records what the edit was made from.
            self.upload = ImageInput(mime, data, name=name)
            self.source = UPLOADED
            self._refresh_sources()
            return self.upload

    def _source_images(self) -> tuple:
        if self.source in (None, NO_SOURCE):
            return ()
        if self.source == UPLOADED:
            return (self.upload,)
        try:
            if not isinstance(self.source, int):
                raise LookupError(self.source)  # neither none, the upload nor a number of the list
            # By id: numbers are reused after a clear.
            return (self.session.history.get(self._source_ids[self.source]),)
        except HistoryError:
            self._refresh_sources()
            raise InputError(
                "The chosen source image is no longer in the history (it was cleared); choose another."
            ) from None

    # -- what the buttons send ---------------------------------------------------------------

    def generate(self, form: Form) -> None:
        """Generate (or Ctrl+Enter in the prompt): the prompt, with the chosen source image if any."""
        images = self._source_images()
        self._start(_request(form, images), form.variants, "Editing" if images else "Generating")

    def edit_selected(self, form: Form, multi_turn: bool = False) -> None:
        """Edit: the prompt, with the selected history entry as the source; ``multi_turn`` (where
        the entry continues a conversation) goes on with it."""
        entry = self.selected_entry()
        multi_turn = multi_turn and self._continues()
        request = _request(form, (entry,))
        if multi_turn:
            # The session goes on with the model that made it, by the Google route; the lists
            # were for the model chosen here.
            request = replace(request, multi_turn=True, model=None, route=None, options_for=form.model)
        self._start(request, form.variants, f"Editing [{entry.index}]" + (" (multi-turn)" if multi_turn else ""))

    def edit_region(self, form: Form, region: str, mode: str) -> None:
        """Edit region: the prompt, as an edit of only the box ``region`` (X,Y,W,H) of the
        selected entry, in ``mode``; the session says what is wrong with the box."""
        entry = self.selected_entry()
        request = replace(
            _request(form, (entry,)), aspect_ratio=None, image_size=None,  # a region edit keeps its source's
            region=region, region_mode=mode,
        )
        self._start(request, form.variants, f"Editing a region of [{entry.index}]")

    # -- the request in flight -----------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """A click's requests are being waited for; the buttons that send are disabled."""
        return self._click is not None

    def _start(self, request: Request, count: int, what: str) -> None:
        with self._lock:
            if self._click is not None:
                return
            futures, notes = self.session.submit_noting(request, count)
            click = _Click(futures, time.monotonic(), notes=notes)
            self._click, self.futures = click, futures
            self._idle.clear()
            self.elapsed = 0.0
            self._changed("busy")
            self.show_status(f"{what}{f' {count} variants' if count > 1 else ''}…{click.note()}")
        threading.Thread(target=self._tick, args=(click,), name="aigate-panel-clock", daemon=True).start()
        for future in futures:
            future.add_done_callback(self._when_done(click))

    def _tick(self, click: _Click) -> None:
        while not click.stop.wait(TICK):
            with self._lock:
                if click is not self._click:
                    return  # finished meanwhile: no time is shown once the buttons are back
                self.elapsed = time.monotonic() - click.started
                self._changed("elapsed")

    def _when_done(self, click: _Click) -> Callable[[Future], None]:
        return lambda future: self._on_done(click, future)

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
                        self._add_made(result)
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
            self.show_status(error_line(exc), error=True)
            with self._lock:
                if click is self._click:
                    self._finish(click)

    def _finish(self, click: _Click, stopped: bool = False) -> None:
        click.stop.set()
        took = time.monotonic() - click.started
        self._click = None
        self.elapsed = None
        self._changed("busy")
        if stopped:
            self.show_status(
                f"Stopped waiting after {took:.1f} s; a reply that still comes joins the history and the gallery."
            )
        elif click.errors:
            failed = len(click.errors)
            head = f"{failed} of {len(click.futures)} failed: " if len(click.futures) > 1 else ""
            self.show_status(head + error_line(click.errors[0]), error=True)
        else:
            made = ", ".join(f"[{r.index}]" for r in click.results)
            self.show_status(f"Made {made} in {took:.1f} s.{click.note()}")
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

    # -- what the panel's cell keeps -----------------------------------------------------------

    def _add_made(self, result: ImageResult) -> None:
        try:
            thumb = b64encode(make_thumbnail(result.data, SNAPSHOT_EDGE))
        except (AigateError, OSError, ValueError):
            thumb = None  # its file is already gone: the number and caption still say what it was
        with self._lock:
            self.made.append((result, thumb))
        self._changed("made")

    def snapshot(self) -> tuple[dict[str, str], dict[str, Any]]:
        """The output kept beside the widget: the results made here as small thumbnails with
        their numbers, and a line saying that the panel needs its kernel (run the cell again).
        A live panel hides it; where the widget cannot show (a notebook reopened without its
        kernel, a static viewer) it stands in. Each result adds a few kilobytes."""
        with self._lock:
            made = list(self.made)
        numbers = ", ".join(_number(result) for result, _ in made)
        line = "Gemini image panel: it needs its kernel; if it does not show above, run this cell again."
        text = line + (f" Made here: {numbers}." if made else "")
        figures = "".join(_snapshot_figure(result, thumb) for result, thumb in made)
        row = f'<div style="display:flex;flex-wrap:wrap;gap:6px;margin-top:4px">{figures}</div>' if made else ""
        caption = f" Made here: {html.escape(numbers)}." if made else ""
        block = f'<div class="aigate-snapshot" style="font-size:smaller">{html.escape(line)}{caption}{row}</div>'
        data = {"text/html": block, "text/plain": text}
        metadata = {"aigate_nb": {"panel": [result.display_metadata()["aigate_nb"] for result, _ in made]}}
        return data, metadata


def shape_choices(model: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The ratios and sizes ``model`` takes (all of them for a model we do not know)."""
    spec = spec_for(model or "")
    ratios = spec.ratios if spec else BASE_RATIOS + EXTRA_RATIOS
    sizes = spec.sizes if spec else ALL_SIZES
    return tuple(ratios), tuple(sizes)


class _Numbered(Protocol):
    """A result or history entry, as a cell or the snapshot names it: its number (None when not
    kept) and its prompt."""

    @property
    def index(self) -> int | None: ...
    @property
    def prompt(self) -> str: ...


def edit_cell_text(entry: _Numbered, multi_turn: bool = False) -> str:
    """A ``%%gemini_image`` cell that edits ``entry`` with its own prompt (braces kept literal)."""
    prompt = entry.prompt.replace("{", "{{").replace("}", "}}")
    return f"%%gemini_image --edit {entry.index}{' --multi-turn' if multi_turn else ''}\n{prompt}"


def error_line(exc: BaseException) -> str:
    """An error as one line of the status: the package's own as it says it, anything else
    with its type, since it is a bug."""
    return one_line(str(exc) if isinstance(exc, AigateError) else f"{type(exc).__name__}: {exc}")


def _request(form: Form, images: tuple) -> Request:
    return Request(
        prompt=form.prompt,
        model=form.model,
        aspect_ratio=form.aspect_ratio or None,
        image_size=form.image_size or None,
        route=form.route,
        images=images,
        new=True,  # a click asks for a new picture: never answered from the history
    )


def _selection(entry: HistoryEntry, chain: list, children: list, continues: bool) -> Selection:
    cut = len(chain) > LINEAGE_SLOTS
    shown = [chain[0], *chain[-(LINEAGE_SLOTS - 1):]] if cut else list(chain)
    lineage = Lineage(shown, cut, list(children[:LINEAGE_SLOTS]), max(0, len(children) - LINEAGE_SLOTS))
    facts = [entry.model.removeprefix("google/")]
    facts += [v for v in (entry.aspect_ratio, entry.image_size) if v]
    facts.append("{}×{}".format(*entry.size))
    facts.append(f"{entry.route} route")
    label = region_label(entry.region)
    if label:
        facts.append(label)
    if len(chain) > 1:
        origin = ""
    elif entry.parent or entry.inputs:
        origin = f"Edited from {entry.edited_from()}, outside this history"
    else:
        origin = "An original (not an edit)"
    if continues:
        why_not = ""
    elif entry.region:
        why_not = f"[{entry.index}] is a region edit, made from a crop: it continues no conversation."
    else:
        why_not = (f"Multi-turn continues pictures made by the Google route; [{entry.index}] came by "
                   f"the {entry.route} route.")
    return Selection(entry, lineage, facts, origin, continues, why_not)


def _number(result: _Numbered) -> str:
    return f"[{result.index}]" if result.index is not None else "(not kept)"


def _snapshot_figure(result: _Numbered, thumb: str | None) -> str:
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
