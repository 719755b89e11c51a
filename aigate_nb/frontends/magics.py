"""``%%gemini_image`` and ``%aigate``: IPython glue over the session and the command parser.

The magics keep no state of their own. The kernel's ``Session`` holds the
client, the history and the defaults; the traitlets here mirror those defaults
so that ``%config GeminiImageMagics.model = ...`` and ``ipython_config.py``
reach them, and a change made on either side shows on the other.
"""

from __future__ import annotations

import difflib
import inspect
import os
import shlex
import sys
import weakref
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import MagicArgumentParser
from traitlets import Unicode, observe

from ..core.errors import AigateError, StoppedWaiting
from ..core.results import ImageResult, names_a_folder
from ..core.text import one_line
from ..gateway.emulated import is_shared_emulator
from ..records.store import History
from ..runs.variants import Variants
from ..runs.waiting import StatusLine, status_label, wait_for
from ..session.notebook import NotebookTracker
from ..session.session import Defaults, Session, current_session
from .command import PARSER, ImageCommand, parse_command

#: The defaults mirrored as traitlets, named as in ``Defaults`` and ``%aigate config``.
SETTINGS = ("model", "aspect_ratio", "image_size", "route")

_announced = False
#: Sessions that the configured traitlet values (ipython_config.py, %config) were applied to.
_configured_sessions: weakref.WeakSet[Session] = weakref.WeakSet()


# -- errors ---------------------------------------------------------------------------------


def _usage_error(exc: BaseException) -> UsageError:
    """A user's mistake or a refusal, as IPython's one-line error without a traceback."""
    return UsageError(one_line(str(exc)))


# -- the magics -----------------------------------------------------------------------------


def _new_session(shell: Any) -> Session:
    return Session(notebook=NotebookTracker(shell.user_ns))


def _tell(lines: list[str]) -> None:
    for line in lines:
        print(line)


@magics_class
class GeminiImageMagics(Magics):
    """``%%gemini_image`` and ``%aigate``, over the kernel's ``Session``."""

    model = Unicode(None, allow_none=True, config=True, help="Default model id, e.g. google/gemini-3-pro-image.")
    aspect_ratio = Unicode(
        None, allow_none=True, config=True, help="Default aspect ratio, e.g. 16:9; None: the model's."
    )
    image_size = Unicode(
        None, allow_none=True, config=True, help="Default image size: 512, 1K, 2K or 4K; None: the model's."
    )
    route = Unicode(None, allow_none=True, config=True, help="Default route: chat or google.")

    _ready = False  # the traitlets are loaded from the config before the session is consulted

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        session = self.session
        if session not in _configured_sessions:
            # Only once per session: after a %reload_ext the session's own defaults
            # (perhaps changed by %aigate config or the panel since) stay.
            _configured_sessions.add(session)
            self._apply_configuration(session)
        self._mirror(session.defaults)
        self.stop_watching = session.watch_defaults(self._mirror)
        self._ready = True

    def _apply_configuration(self, session: Session) -> None:
        configured = {name: getattr(self, name) for name in SETTINGS if getattr(self, name) is not None}
        if not configured:
            return
        try:
            session.set_defaults(**configured)
        except AigateError as exc:
            print(f"aigate_nb: the configured defaults were not applied: {one_line(str(exc))}", file=sys.stderr)

    @property
    def session(self) -> Session:
        return current_session(lambda: _new_session(self.shell))

    def _mirror(self, defaults: Defaults) -> None:
        """Show the session's defaults in the traitlets without sending them back."""
        ready, self._ready = self._ready, False
        try:
            for name in SETTINGS:
                setattr(self, name, getattr(defaults, name))
        finally:
            self._ready = ready

    @observe(*SETTINGS)
    def _defaults_changed(self, change: Any) -> None:
        if not self._ready:
            return
        try:
            self.session.set_defaults(**{change["name"]: change["new"]})
        except AigateError as exc:
            self._mirror(self.session.defaults)
            raise _usage_error(exc) from None

    # -- %%gemini_image ---------------------------------------------------------------------

    @no_var_expand
    @cell_magic
    def gemini_image(self, line: str, cell: str) -> ImageResult | Variants | None:
        """Generate an image from the prompt in the cell body, or edit one.

        ``{name}`` in the body takes the value of ``name`` from the notebook
        (``{cfg.style}`` and ``{items[0]}`` too); an unknown ``{...}`` stays as
        written and ``{{``/``}}`` are braces. The cell's value is the
        ``ImageResult`` (with ``-n``, the list of them), and each result joins
        this notebook's history (``%aigate history``). With ``--each ROWS`` the body is
        a template filled from each row of ``ROWS``, one image per row (a ``BatchResult``);
        comma lists in ``-m``, ``-a`` or ``-s`` (``-m a,b -a 1:1,16:9``) make one image per
        combination, shown as one labelled ``Grid``.
        """
        assert self.shell is not None  # IPython registers the magic with its shell
        namespace = self.shell.user_ns
        session = self.session
        _tell(session.notices())
        try:
            command = parse_command(line, cell, namespace)
            if command.each is not None:
                return self._batch(command, namespace)
            if command.grid:
                return self._grid(command, namespace)
            images = tuple(session.resolve_image(source, namespace) for source in command.sources)
            request = replace(command.request, images=images)
            futures, notes = session.submit_noting(request, count=command.count)
        except AigateError as exc:
            raise _usage_error(exc) from None
        for note in notes:
            print(f"aigate_nb: {note}", file=sys.stderr)
        label = status_label(session.with_defaults(request), command.count, session.emulated)
        try:
            outcomes = wait_for(futures, StatusLine(self.shell, label, len(futures)))
        except StoppedWaiting as exc:
            given = (("-o", command.out), ("--as", command.as_name))
            skipped = " and ".join(option for option, value in given if value)
            unapplied = f", but {skipped} will not be applied" if skipped else ""
            raise UsageError(f"{exc}{unapplied}.") from None
        results = [item.result for item in outcomes if item.result is not None]
        errors = [item.error for item in outcomes if item.error is not None]
        not_kept = [item.not_kept for item in outcomes if item.not_kept is not None]
        if not results:
            raise _usage_error(errors[0] if errors else StoppedWaiting(0, len(futures)))
        if errors:
            print(f"{len(errors)} of {len(futures)} variants failed: {one_line(str(errors[0]))}", file=sys.stderr)
        if not_kept:
            print(one_line(str(not_kept[0])), file=sys.stderr)
        value: ImageResult | Variants = (
            results[0] if command.count == 1 else Variants(sorted(results, key=_history_order))
        )
        if command.out:
            _save(results, command.out)
        if command.as_name:
            namespace[command.as_name] = value
        return value

    def _batch(self, command: ImageCommand, namespace: dict[str, Any]) -> Any:
        """``--each ROWS``: one image per row, through ``batches.batch``."""
        from ..runs.batches import DEFAULT_CONCURRENCY, batch

        if command.each not in namespace:
            raise UsageError(f"--each {command.each}: no variable {command.each!r} in this notebook; "
                             "make it first, e.g. shots = ['a red door', 'a blue door'].")
        request = command.request
        # The settings given, and the images: strings, and a list of the images after the first.
        options: dict[str, Any] = {key: value for key, value in (
            ("model", request.model), ("aspect_ratio", request.aspect_ratio), ("image_size", request.image_size),
            ("route", request.route)) if value is not None}
        if command.sources:
            options["edit"], options["images"] = command.sources[0], list(command.sources[1:]) or None
        try:
            result = batch(namespace[command.each], request.prompt or None, namespace=namespace, new=request.new,
                           concurrency=command.concurrency or DEFAULT_CONCURRENCY, rate=command.rate,
                           session=self.session,
                           **{k: v for k, v in options.items() if v is not None})
        except KeyboardInterrupt as exc:  # what finished is kept; one line says what is left
            raise UsageError(str(exc)) from None
        if command.as_name:
            namespace[command.as_name] = result
        return result

    def _grid(self, command: ImageCommand, namespace: dict[str, Any]) -> Any:
        """Comma lists in -m, -a or -s: a comparison grid, through ``grids.compare``."""
        from ..runs.grids import compare

        request, grid = command.request, command.grid or {}
        single = {"models": request.model, "aspect_ratios": request.aspect_ratio, "image_sizes": request.image_size}
        axes = {name: grid.get(name) or ([value] if value else None) for name, value in single.items()}
        try:
            result = compare(request.prompt, route=request.route, images=list(command.sources), new=request.new,
                             session=self.session, namespace=namespace, models=axes["models"],
                             aspect_ratios=axes["aspect_ratios"], image_sizes=axes["image_sizes"])
        except KeyboardInterrupt as exc:
            raise UsageError(str(exc)) from None
        if command.as_name:
            namespace[command.as_name] = result
        return result

    # -- %aigate ----------------------------------------------------------------------------

    @line_magic
    def aigate(self, line: str) -> Any:
        """Settings, models, history and the panel of aigate_nb.

        %aigate models                  the gateway's image models
        %aigate config                  this notebook's settings, the key masked
        %aigate config name=value ...   change model, aspect_ratio, image_size, route, replay,
                                        budget (USD, or off) or prices (a JSON price file)
        %aigate history [--name NAME]   the results as a gallery; --name switches history
        %aigate history --clear         remove this history's entries and images
        %aigate usage [--all]           what this notebook (--all: every history) used and cost,
                                        by model and by day, and the account's balance
        %aigate history --export FILE   the history as one HTML file (--full-size: with the originals)
        %aigate panel                   the panel: prompt, options, gallery, "edit this"
        %aigate use emulator|gateway    where requests go
        %aigate help                    this list
        %%gemini_image [options]        the cell body is the prompt; %%gemini_image? lists the options
        """
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%aigate: {exc}; close the quote.") from None
        command, rest = (words[0].lower(), words[1:]) if words else ("help", [])
        handlers: dict[str, Callable[[list[str]], Any]] = {
            "models": self._models,
            "config": self._config,
            "history": self._history,
            "usage": self._usage,
            "panel": self._panel,
            "use": self._use,
            "help": self._help,
        }
        if command not in handlers:
            close = difflib.get_close_matches(command, list(handlers), n=1)
            hint = f"did you mean %aigate {close[0]}?" if close else "%aigate help lists them."
            raise UsageError(f"%aigate has no subcommand {command!r}; {hint}")
        try:
            return handlers[command](rest)
        except AigateError as exc:
            raise _usage_error(exc) from None

    def _help(self, words: list[str]) -> None:
        print(inspect.cleandoc(GeminiImageMagics.aigate.__doc__ or "").partition("\n\n")[2])

    def _models(self, words: list[str]) -> None:
        _no_arguments("models", words)
        default = self.session.defaults.model
        for model in self.session.image_models():
            print(f"{model}  (default)" if model == default else model)

    def _config(self, words: list[str]) -> None:
        if words:
            changes: dict[str, str | None] = {}
            for word in words:
                name, sep, value = word.partition("=")
                if not sep or not name:
                    raise UsageError(
                        f"%aigate config: {word!r} is not name=value; "
                        "e.g. %aigate config aspect_ratio=16:9 image_size=2K."
                    )
                value = value.strip()
                changes[name.strip().replace("-", "_")] = None if value.lower() in ("", "none", "default") else value
            self.session.set_defaults(**changes)
        settings = self.session.settings()
        width = max(map(len, settings))
        for name, value in settings.items():
            print(f"{name:<{width}}  {value}")

    def _history(self, words: list[str]) -> History | None:
        options = HISTORY_PARSER.parse_args(words)
        name = options.name
        if name is not None and not name.strip():
            HISTORY_PARSER.error("--name needs the name of a history")
        if options.full_size and options.export is None:
            HISTORY_PARSER.error("--full-size goes with --export FILE")
        history = self.session.use_history(name) if name is not None else self.session.history
        _tell(self.session.notices())
        if options.clear:
            removed = history.clear()
            print(f"Cleared history '{history.name}': {removed} {'entry' if removed == 1 else 'entries'} removed.")
        if options.export is not None:
            from ..records.report import describe

            written = history.export_html(options.export, full_size=options.full_size)
            print(describe(history, written))
            return None
        return history

    def _usage(self, words: list[str]) -> None:
        if words not in ([], ["--all"]):
            raise UsageError(
                f"%aigate usage takes --all (every history, not only this notebook's), not {' '.join(words)!r}."
            )
        spending = self.session.usage(everywhere=bool(words))
        try:
            balance, unavailable = self.session.balance(), None
        except AigateError as exc:
            balance, unavailable = None, one_line(str(exc), 200)
        print(spending.with_balance(balance))
        if unavailable:
            print(f"balance: not available ({unavailable})")

    def _panel(self, words: list[str]) -> Any:
        _no_arguments("panel", words)
        try:
            from .panel import Panel
        except ModuleNotFoundError as exc:
            if exc.name == "aigate_nb.frontends.panel":
                raise UsageError(
                    "This installation of aigate_nb has no panel yet (aigate_nb.frontends.panel is missing); "
                    "use %%gemini_image and %aigate history meanwhile."
                ) from None
            wanted = {"ipywidgets": "'ipywidgets>=8'", "anywidget": "'anywidget>=0.9'"}.get(exc.name or "", exc.name)
            raise UsageError(
                f"The panel needs {exc.name}: pip install {wanted}, then restart the kernel."
            ) from None
        return Panel(self.session)

    def _use(self, words: list[str]) -> None:
        target = words[0].lower() if len(words) == 1 else None
        if target == "emulator":
            url = self.session.use_emulator()
            print(f"Requests now go to the built-in emulator at {url}; its images are placeholders.")
        elif target == "gateway":
            url = self.session.use_gateway()
            print(f"Requests now go to the gateway at {url}.")
        else:
            raise UsageError("Write %aigate use emulator or %aigate use gateway.")


class _HistoryParser(MagicArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(
            f"%aigate history: {message}. It takes --name NAME (the history to switch to), --clear "
            "(remove its entries and images) and --export FILE [--full-size] (write it as one HTML file), "
            "e.g. %aigate history --export report.html."
        )


def _history_parser() -> MagicArgumentParser:
    parser = _HistoryParser(prog="%aigate history")
    parser.add_argument("--name", help="the history to switch to")
    parser.add_argument("--clear", action="store_true", help="remove this history's entries and images")
    parser.add_argument("--export", metavar="FILE", help="write the history as one self-contained HTML file")
    parser.add_argument("--full-size", action="store_true", help="with --export: embed the original images")
    return parser


HISTORY_PARSER = _history_parser()


def _no_arguments(command: str, words: list[str]) -> None:
    if words:
        raise UsageError(f"%aigate {command} takes no arguments, not {' '.join(words)!r}.")


def _history_order(result: ImageResult) -> int:
    return result.index if result.index is not None else sys.maxsize


def _save(results: list[ImageResult], out: str) -> None:
    """``-o PATH``: each result's full-size file, numbered when there are several."""
    path = Path(out).expanduser()
    if names_a_folder(out):  # each result names its own file in it
        targets: list[str | Path] = [os.path.join(path, "")] * len(results)  # the trailing separator says: a folder
    else:
        targets = [path] if len(results) == 1 else [
            path.with_name(f"{path.stem}-{k}{path.suffix}") for k in range(1, len(results) + 1)
        ]
    for result, target in zip(results, targets):
        where = f" It is in the history as [{result.index}]." if result.index is not None else ""
        try:
            result.save(target)
        except AigateError as exc:
            raise UsageError(f"{one_line(str(exc))}{where}") from None
        except OSError as exc:
            raise UsageError(f"Cannot save to {target}: {exc.strerror or exc}.{where}") from None


# -- the extension --------------------------------------------------------------------------


def register(ip: Any) -> None:
    """Make the kernel's session once (a reload keeps it) and register the magics."""
    try:
        session = current_session(lambda: _new_session(ip))
    except AigateError as exc:
        raise _usage_error(exc) from None
    ip.register_magics(GeminiImageMagics(shell=ip))
    _announce_emulator(session)
    _announce_chosen_host(session)
    _tell(session.notices(using_history=False))


def unregister(ip: Any) -> None:
    """Remove the magics; the session, its history and its defaults stay."""
    magics = ip.magics_manager.registry.pop(GeminiImageMagics.__name__, None)
    if magics is None:
        return
    magics.stop_watching()
    ip.magics_manager.magics["cell"].pop("gemini_image", None)
    ip.magics_manager.magics["line"].pop("aigate", None)
    if magics in ip.configurables:
        ip.configurables.remove(magics)


def _announce_emulator(session: Session) -> None:
    """Say once per kernel, in one line, that the built-in emulator serves."""
    global _announced
    if _announced or not is_shared_emulator(session.client.base_url):
        return
    _announced = True
    print(
        f"aigate_nb: no AIGATE_API_KEY or AIGATE_BASE_URL is set, so the built-in emulator at "
        f"{session.client.base_url} answers; its images are placeholders, labelled (emulator)."
    )


def _announce_chosen_host(session: Session) -> None:
    """Say, in one line, that a folder's ``.env`` chose the host and what key goes there."""
    client = session.client
    if client.host_chosen_by is None:
        return
    key = "with that file's key" if client.has_key else "without a key (that file holds none)"
    print(
        f"aigate_nb: requests go to {client.base_url}, chosen by AIGATE_BASE_URL in {client.host_chosen_by}, "
        f"{key}; a folder's .env never gets the key of your environment."
    )


# ``%%gemini_image?`` shows the options, as IPython's magic_arguments would.
GeminiImageMagics.gemini_image.__doc__ = (
    inspect.cleandoc(GeminiImageMagics.gemini_image.__doc__ or "") + "\n\n::\n\n  "
    + PARSER.format_usage().removeprefix("usage: ").strip() + "\n\n" + PARSER.format_help().split("\n\n", 1)[-1]
)
