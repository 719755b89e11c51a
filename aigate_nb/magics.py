"""``%%gemini_image`` and ``%aigate``: parse the line, call the session, display.

The magics keep no state of their own. The kernel's ``Session`` holds the
client, the history and the defaults; the traitlets here mirror those defaults
so that ``%config GeminiImageMagics.model = ...`` and ``ipython_config.py``
reach them, and a change made on either side shows on the other.
"""

from __future__ import annotations

import concurrent.futures
import difflib
import inspect
import os
import shlex
import string
import sys
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Mapping

from IPython.core.displaypub import DisplayPublisher
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import display
from IPython.utils.process import arg_split
from traitlets import Unicode, observe

from .config import is_shared_emulator
from .errors import AigateError, NotKeptError
from .history import History
from .images import mime_for_suffix
from .results import ImageResult, names_a_folder
from .session import Defaults, Request, Session, current_session
from .text import one_line
from .variants import Variants

#: The defaults mirrored as traitlets, named as in ``Defaults`` and ``%aigate config``.
SETTINGS = ("model", "aspect_ratio", "image_size", "route")
#: Seconds between two updates of the status line.
STATUS_INTERVAL = 0.5
#: A typo such as ``-n 100`` must not send a hundred paid requests.
MAX_VARIANTS = 16

_announced = False
#: Sessions that the configured traitlet values (ipython_config.py, %config) were applied to.
_configured_sessions: weakref.WeakSet[Session] = weakref.WeakSet()


# -- prompt interpolation -------------------------------------------------------------------

_FORMATTER = string.Formatter()


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """Fill each ``{field}`` of ``text`` from ``namespace`` as ``str.format`` would
    (``{cfg.style}``, ``{items[0]}``, ``{x!r}``, ``{x:>10}``); ``{{`` and ``}}`` are braces.

    A field that cannot be filled (an unknown name, JSON, a bad format spec, an
    object whose ``__format__`` fails) keeps its braces and its text, and the
    fields inside it are still filled (``{"style": "{style}"}``); a stray brace
    stays too: a prompt is never refused for its braces.
    """
    out: list[str] = []
    try:
        _interpolate_span(text, 0, len(text), _matching_braces(text), namespace, out)
    except RecursionError:  # braces nested thousands deep: not a template
        return text
    return "".join(out)


def _interpolate_span(
    text: str, start: int, end: int, closing: dict[int, int], namespace: Mapping[str, Any], out: list[str]
) -> None:
    i = start
    while i < end:
        char = text[i]
        if char in "{}" and i + 1 < end and text[i + 1] == char:
            out.append(char)
            i += 2
        elif char == "{" and closing.get(i, end) < end:
            close = closing[i]
            value = _fill(text[i : close + 1], namespace)
            if value is None:
                out.append("{")
                _interpolate_span(text, i + 1, close, closing, namespace, out)
                out.append("}")
            else:
                out.append(value)
            i = close + 1
        else:
            out.append(char)
            i += 1


def _matching_braces(text: str) -> dict[int, int]:
    """Position of each ``{`` -> position of the ``}`` that closes it, nesting counted."""
    opened: list[int] = []
    closing: dict[int, int] = {}
    for i, char in enumerate(text):
        if char == "{":
            opened.append(i)
        elif char == "}" and opened:
            closing[opened.pop()] = i
    return closing


def _fill(field: str, namespace: Mapping[str, Any]) -> str | None:
    """One ``{...}`` field's value, or None if it has none."""
    try:
        [(_, name, spec, conversion)] = list(_FORMATTER.parse(field))
        value, _ = _FORMATTER.get_field(name, (), namespace)
        value = _FORMATTER.convert_field(value, conversion)
        return _FORMATTER.format_field(value, interpolate(spec, namespace) if spec else "")
    except Exception:  # whatever the field or the object does, the prompt keeps the text
        return None


# -- errors ---------------------------------------------------------------------------------


def _usage_error(exc: BaseException) -> UsageError:
    """A user's mistake or a refusal, as IPython's one-line error without a traceback."""
    return UsageError(one_line(str(exc)))


def _explain_parse_error(message: str, option_strings: list[str]) -> str:
    if message.startswith("unrecognized arguments:"):
        extra = message.split(":", 1)[1].split()
        flag = next((word.split("=", 1)[0] for word in extra if word.startswith("-")), None)
        if flag is None:
            hint = "; the prompt goes in the cell body, below the %%gemini_image line."
        else:
            close = difflib.get_close_matches(flag, option_strings, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else "; %%gemini_image? lists the options."
    else:
        hint = "; %%gemini_image? lists the options."
    return f"%%gemini_image: {message}{hint}"


# -- the magics -----------------------------------------------------------------------------


def _new_session(shell: Any) -> Session:
    return Session(history=History.for_notebook(shell.user_ns))


@magics_class
class GeminiImageMagics(Magics):
    """``%%gemini_image`` and ``%aigate``, over the kernel's ``Session``."""

    model = Unicode(None, allow_none=True, config=True, help="Default model id, e.g. google/gemini-3-pro-image.")
    aspect_ratio = Unicode(None, allow_none=True, config=True, help="Default aspect ratio, e.g. 16:9; None: the model's.")
    image_size = Unicode(None, allow_none=True, config=True, help="Default image size: 512, 1K, 2K or 4K; None: the model's.")
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
    @magic_arguments(name="%gemini_image")
    @argument("-m", "--model", metavar="ID", help="model id, e.g. google/gemini-3-pro-image (default: %%aigate config)")
    @argument("-a", "--aspect-ratio", metavar="R", help="aspect ratio, e.g. 16:9, 1:1, 21:9")
    @argument("-s", "--image-size", metavar="S", help="image size: 512, 1K, 2K or 4K (as the model allows)")
    @argument(
        "-e", "--edit", metavar="REF",
        help="edit an earlier result: a history index (3, -1), a history id, or a variable holding an image",
    )
    @argument(
        "-i", "--image", metavar="SRC", action="append", default=[],
        help="another input image: a path, an http(s) URL or a variable; repeatable",
    )
    @argument("-n", type=int, default=1, metavar="N", help=f"make N variants, requested concurrently (at most {MAX_VARIANTS})")
    @argument("--route", choices=("chat", "google"), help="chat (/v1/chat/completions) or google (generateContent)")
    @argument(
        "--multi-turn", action="store_true",
        help="with -e: continue that result's conversation, sending its lineage's prompts and the model's "
        "replies too (Google route)",
    )
    @argument("-o", "--out", metavar="PATH", help="also save the full-size image there (PATH-1, PATH-2, ... with -n)")
    @argument("--as", dest="as_name", metavar="NAME", help="also bind the result to the variable NAME")
    @argument("--no-interpolate", action="store_true", help="send {name} in the prompt as written")
    @cell_magic
    def gemini_image(self, line: str, cell: str) -> ImageResult | Variants | None:
        """Generate an image from the prompt in the cell body, or edit one.

        ``{name}`` in the body takes the value of ``name`` from the notebook
        (``{cfg.style}`` and ``{items[0]}`` too); an unknown ``{...}`` stays as
        written and ``{{``/``}}`` are braces. The cell's value is the
        ``ImageResult`` (with ``-n``, the list of them), and each result joins
        this notebook's history (``%aigate history``).
        """
        args = self._parse(line)
        namespace = self.shell.user_ns
        prompt = (cell if args.no_interpolate else interpolate(cell, namespace)).strip()
        if not prompt:
            raise UsageError("The cell is empty: write the prompt in the cell body, below the %%gemini_image line.")
        if args.as_name is not None and not args.as_name.isidentifier():
            raise UsageError(f"--as {args.as_name!r} is not a variable name; use letters, digits and _.")
        if not 1 <= args.n <= MAX_VARIANTS:
            raise UsageError(f"-n {args.n}: ask for 1 to {MAX_VARIANTS} variants.")
        if args.out:
            _check_out(args.out)
        if args.multi_turn and args.edit is None:
            raise UsageError("--multi-turn continues an earlier result: name it with -e, e.g. -e -1 --multi-turn.")
        if args.multi_turn and args.route == "chat":
            raise UsageError("--multi-turn goes by the Google route only; leave out --route chat.")
        session = self.session
        try:
            sources = ([args.edit] if args.edit is not None else []) + args.image
            request = Request(
                prompt=prompt,
                model=args.model,
                aspect_ratio=args.aspect_ratio,
                image_size=args.image_size,
                route=args.route,
                images=tuple(session.resolve_image(source, namespace) for source in sources),
                multi_turn=args.multi_turn,
            )
            futures = session.submit(request, count=args.n)
        except (AigateError, LookupError) as exc:
            raise _usage_error(exc) from None
        skipped = " and ".join(option for option, given in (("-o", args.out), ("--as", args.as_name)) if given)
        results = self._wait(futures, _status_label(request, session, args.n),
                             f", but {skipped} will not be applied" if skipped else "")
        value: ImageResult | Variants = results[0] if args.n == 1 else Variants(sorted(results, key=_history_order))
        if args.out:
            _save(results, args.out)
        if args.as_name:
            namespace[args.as_name] = value
        return value

    def _parse(self, line: str) -> Any:
        try:
            # Quotes group words as in a shell and are not part of the value: -i 'my photo.png'.
            words = [_unquote(word) for word in arg_split(line, strict=True)]
            return self.gemini_image.parser.parse_args(words)
        except ValueError as exc:  # an unclosed quote
            raise UsageError(f"%%gemini_image: {exc} in the options line; close the quote.") from None
        except UsageError as exc:
            options = list(self.gemini_image.parser._option_string_actions)
            raise UsageError(_explain_parse_error(str(exc), options)) from None

    def _wait(self, futures: list[concurrent.futures.Future], label: str, unapplied: str = "") -> list[ImageResult]:
        """Wait for the requests with one status line updating in place, then
        return the results; the status line is left empty for the result below it.

        Interrupting stops the waiting only: the requests go on, and their
        results still join the history.
        """
        started = time.monotonic()
        status = _StatusLine(self.shell, label, len(futures))
        try:
            while True:
                done, pending = concurrent.futures.wait(futures, timeout=STATUS_INTERVAL)
                if not pending:
                    break
                status.show(len(done), time.monotonic() - started)
        except KeyboardInterrupt:
            which = "the request goes on in the background and its result" if len(futures) == 1 else (
                f"the {len(futures)} requests go on in the background and their results"
            )
            raise UsageError(
                f"Stopped waiting after {time.monotonic() - started:.0f} s; {which} will still join "
                f"the history (%aigate history){unapplied}."
            ) from None
        finally:
            status.clear()
        results, errors, not_kept = [], [], []
        for future in futures:
            try:
                results.append(future.result())
            except NotKeptError as exc:  # shown all the same, with one line saying why it is not kept
                results.append(exc.result)
                not_kept.append(exc)
            except (AigateError, LookupError) as exc:
                errors.append(exc)
        if not results:
            raise _usage_error(errors[0])
        if errors:
            print(f"{len(errors)} of {len(futures)} variants failed: {one_line(str(errors[0]))}", file=sys.stderr)
        if not_kept:
            print(one_line(str(not_kept[0])), file=sys.stderr)
        return results

    # -- %aigate ----------------------------------------------------------------------------

    @line_magic
    def aigate(self, line: str) -> Any:
        """Settings, models, history and the panel of aigate_nb.

        %aigate models                  the gateway's image models
        %aigate config                  this notebook's settings, the key masked
        %aigate config name=value ...   change model, aspect_ratio, image_size or route
        %aigate history [--name NAME]   the results as a gallery; --name switches history
        %aigate history --clear         remove this history's entries and images
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
        except (AigateError, LookupError) as exc:
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
                        f"%aigate config: {word!r} is not name=value; e.g. %aigate config aspect_ratio=16:9 image_size=2K."
                    )
                changes[name.strip().replace("-", "_")] = None if value.strip().lower() in ("", "none", "default") else value.strip()
            self.session.set_defaults(**changes)
        settings = self.session.describe()
        width = max(map(len, settings))
        for name, value in settings.items():
            print(f"{name:<{width}}  {value}")

    def _history(self, words: list[str]) -> History:
        name, clear, rest = None, False, list(words)
        while rest:
            word = rest.pop(0)
            if word == "--clear":
                clear = True
            elif word == "--name" and rest and not rest[0].startswith("--"):
                name = rest.pop(0)
            elif word.startswith("--name="):
                name = word.partition("=")[2]
            else:
                name = ""
                break
        if name == "" or (name is not None and not name.strip()):
            raise UsageError(
                "%aigate history takes --name NAME (the history to switch to) and --clear "
                "(remove its entries and images), e.g. %aigate history --name mine --clear."
            )
        history = self.session.use_history(name) if name is not None else self.session.history
        if clear:
            removed = history.clear()
            print(f"Cleared history '{history.name}': {removed} {'entry' if removed == 1 else 'entries'} removed.")
        return history

    def _panel(self, words: list[str]) -> Any:
        _no_arguments("panel", words)
        try:
            from .panel import Panel
        except ModuleNotFoundError as exc:
            if exc.name == "aigate_nb.panel":
                raise UsageError(
                    "This installation of aigate_nb has no panel yet (aigate_nb.panel is missing); "
                    "use %%gemini_image and %aigate history meanwhile."
                ) from None
            raise UsageError(f"The panel needs {exc.name}: pip install 'ipywidgets>=8', then restart the kernel.") from None
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


def _no_arguments(command: str, words: list[str]) -> None:
    if words:
        raise UsageError(f"%aigate {command} takes no arguments, not {' '.join(words)!r}.")


def _unquote(word: str) -> str:
    """``word`` without one pair of matching quotes around it."""
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
        return word[1:-1]
    return word


def _status_label(request: Request, session: Session, count: int) -> str:
    request = session.complete(request)
    parts = [request.model] + [value for value in (request.aspect_ratio, request.image_size) if value]
    verb = "Editing" if request.images else "Generating"
    what = f"{verb} {count} variants" if count > 1 else verb
    where = " (emulator)" if session.emulated else ""
    return f"{what} with {' | '.join(parts)}{where}"


class _StatusLine:
    """One line of output that says how long the wait has been, updated in place.

    Only a front end that can update an output in place (a Jupyter kernel) gets
    it; a terminal would print a new line at every update, so it gets none.
    """

    def __init__(self, shell: Any, label: str, count: int) -> None:
        self.label = label
        self.count = count
        self.handle = None
        if type(shell.display_pub) is not DisplayPublisher:
            self.handle = display({"text/plain": self._text(0, 0.0)}, raw=True, display_id=True)

    def _text(self, done: int, elapsed: float) -> str:
        progress = f"{done} of {self.count} done, " if self.count > 1 else ""
        return f"{self.label}: {progress}{elapsed:.0f} s"

    def show(self, done: int, elapsed: float) -> None:
        if self.handle is not None:
            self.handle.update({"text/plain": self._text(done, elapsed)}, raw=True)

    def clear(self) -> None:
        if self.handle is not None:
            self.handle.update({"text/plain": ""}, raw=True)
            self.handle = None


def _history_order(result: ImageResult) -> int:
    return result.index if result.index is not None else sys.maxsize


def _save(results: list[ImageResult], out: str) -> None:
    """``-o PATH``: each result's full-size file, numbered when there are several."""
    path = Path(out).expanduser()
    if names_a_folder(out):  # each result names its own file in it
        targets = [os.path.join(path, "")] * len(results)  # the trailing separator says: a folder
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


def _check_out(out: str) -> None:
    """``-o PATH`` is checked before anything is sent: a result is not made to be lost."""
    suffix = Path(out).suffix
    if not names_a_folder(out) and suffix and mime_for_suffix(suffix) is None:
        raise UsageError(
            f"-o {out}: cannot tell which format '{suffix}' is; use .png, .jpg or .webp, or leave the "
            "suffix out to keep the original format."
        )


# -- the extension --------------------------------------------------------------------------


def register(ip: Any) -> None:
    """Make the kernel's session once (a reload keeps it) and register the magics."""
    try:
        session = current_session(lambda: _new_session(ip))
    except AigateError as exc:
        raise _usage_error(exc) from None
    ip.register_magics(GeminiImageMagics(shell=ip))
    _announce_emulator(session)


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
