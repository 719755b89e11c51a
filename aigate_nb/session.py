"""The notebook's state: its Client, its History and its defaults.

Both front ends (the magics and the panel) call these functions; neither talks
HTTP nor touches the history's files itself. Usable with no kernel at all.
"""

from __future__ import annotations

import threading
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Mapping

from .client import Client
from .config import DEFAULT_BASE_URL, display_path, load_settings, mask_key
from .errors import HistoryError, InputError, NotKeptError
from .history import History, HistoryEntry
from .images import ImageLike, b64_size, b64encode, to_image_input
from .models import check_options, same_model
from .results import ImageResult
from .wire import StoredImage, inline_size, model_turn, user_turn


@dataclass(frozen=True)
class Defaults:
    """What a request uses where it says nothing; changed by ``%aigate config``."""

    model: str
    aspect_ratio: str | None = None
    image_size: str | None = None
    route: str = "chat"


@dataclass(frozen=True)
class Request:
    """One request as the front ends describe it, before defaults are applied."""

    prompt: str
    model: str | None = None
    aspect_ratio: str | None = None
    image_size: str | None = None
    route: str | None = None
    images: tuple[Any, ...] = ()
    #: Continue the conversation of ``images[0]`` (an earlier Google-route result): its
    #: lineage's prompts and the model's replies go before this prompt.
    multi_turn: bool = False


class Session:
    """One notebook's client, history and defaults.

    ``run`` sends one request and records the result in the history before
    returning it, so a result is never lost even if nobody displays it; if the
    history cannot keep it, ``NotKeptError`` hands it over instead.
    """

    def __init__(
        self,
        client: Client | None = None,
        history: History | None = None,
        defaults: Defaults | None = None,
    ) -> None:
        self.client = client or Client()
        self.history = history if history is not None else History()
        self.defaults = defaults or Defaults(model=self.client.model)
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._watchers: list[Callable[[Defaults], None]] = []

    # -- where requests go -------------------------------------------------------------------

    @property
    def emulated(self) -> bool:
        return self.client.emulated

    def use_emulator(self) -> str:
        """Send requests to the built-in emulator from now on; returns its URL."""
        from .config import shared_emulator_url

        self._swap_client(Client(api_key="", base_url=shared_emulator_url(), model=self.defaults.model))
        return self.client.base_url

    def use_gateway(self) -> str:
        """Send requests to the gateway of ``AIGATE_BASE_URL``/``AIGATE_API_KEY`` from now on."""
        settings = load_settings()
        if settings.api_key is None:
            raise InputError(
                "No AIGATE_API_KEY is set; put it in the environment or a .env file before starting "
                "Jupyter (not in a cell), then run %aigate use gateway again."
            )
        self._swap_client(Client(model=self.defaults.model, base_url=settings.base_url or DEFAULT_BASE_URL))
        return self.client.base_url

    def _swap_client(self, client: Client) -> None:
        with self._lock:
            old, self.client = self.client, client
        old.close()

    def describe(self) -> dict[str, str]:
        """Current settings for display; the key is masked."""
        return {
            "base_url": self.client.base_url + ("  (emulator)" if self.emulated else ""),
            "api_key": mask_key(self.client._api_key),
            "model": self.defaults.model,
            "aspect_ratio": self.defaults.aspect_ratio or "(model default)",
            "image_size": self.defaults.image_size or "(model default)",
            "route": self.defaults.route,
            "history": display_path(self.history.folder),
        }

    def set_defaults(self, **changes: str | None) -> Defaults:
        """Change the defaults, checked against the model as a request would be."""
        unknown = set(changes) - {"model", "aspect_ratio", "image_size", "route"}
        if unknown:
            raise InputError(f"Unknown setting {sorted(unknown)[0]!r}; the settings are model, aspect_ratio, image_size and route.")
        if "model" in changes and not changes["model"]:
            changes["model"] = load_settings().model  # "default": AIGATE_MODEL, else the built-in default
        if "route" in changes and not changes["route"]:
            changes["route"] = "chat"
        merged = replace(self.defaults, **changes)
        if merged.route not in ("chat", "google"):
            raise InputError(f"route {merged.route!r} is not one of 'chat' or 'google'.")
        ratio, size = check_options(merged.model, merged.aspect_ratio, merged.image_size, 0)
        self.defaults = replace(merged, aspect_ratio=ratio, image_size=size)
        for watcher in list(self._watchers):
            watcher(self.defaults)
        return self.defaults

    def watch_defaults(self, callback: Callable[[Defaults], None]) -> Callable[[], None]:
        """Call ``callback(defaults)`` after every change of the defaults, so that
        each front end shows what the other set; returns a function that stops it."""
        self._watchers.append(callback)

        def stop() -> None:
            if callback in self._watchers:
                self._watchers.remove(callback)

        return stop

    def use_history(self, name: str) -> History:
        """Switch to the history called ``name``, kept beside the current one."""
        self.history = History(name=name, root=self.history.folder.parent)
        return self.history

    def image_models(self) -> list[str]:
        return self.client.models(image_only=True)

    # -- images from references ---------------------------------------------------------------

    def resolve_image(self, ref: Any, user_ns: Mapping[str, Any] | None = None) -> Any:
        """A history index (``3``, ``-1``, ``"3"``) or id, a variable name in
        ``user_ns``, or anything image-like, as an image to send."""
        if isinstance(ref, (int, ImageLike)) or not isinstance(ref, str):
            return self.history.get(ref) if isinstance(ref, int) else ref
        text = ref.strip()
        if _is_int(text):
            return self.history.get(text)  # an index, or an id that is all digits
        if user_ns is not None and text.isidentifier() and text in user_ns:
            return user_ns[text]
        if text.isidentifier() and not _looks_like_path(text):
            try:
                return self.history.get(text)
            except LookupError:
                raise InputError(
                    f"{text!r} is neither a history index, a history id nor a variable in this notebook; "
                    "use an index such as -1 (see %aigate history) or the name of a variable holding an image."
                ) from None
        return text

    # -- requests ---------------------------------------------------------------------------

    def complete(self, request: Request) -> Request:
        """``request`` with this notebook's defaults where it says nothing.

        A multi-turn edit with no model goes on with the model that made the result it
        continues. The default ratio and size were chosen for the default model: for another
        model each is used only where that model takes it, and otherwise the model decides.
        """
        d = self.defaults
        model = request.model
        if not model and request.multi_turn and request.images:
            model = self._continued_model(request.images[0])
        model = model or d.model
        ratio, size = d.aspect_ratio, d.image_size
        if not same_model(model, d.model):
            ratio, size = _if_taken(model, ratio=ratio), _if_taken(model, size=size)
        return replace(
            request,
            model=model,
            aspect_ratio=request.aspect_ratio or ratio,
            image_size=request.image_size or size,
            route=request.route or ("google" if request.multi_turn else d.route),
        )

    def _continued_model(self, ref: Any) -> str | None:
        if isinstance(ref, (int, str)) and not isinstance(ref, bool):
            try:
                ref = self.history.get(ref)
            except LookupError:
                return None  # a path or URL: conversation() says why it cannot be continued
        return getattr(ref, "model", None)

    def run(self, request: Request) -> ImageResult:
        """Send one request with the defaults filled in; the result joins the history."""
        request = self.complete(request)
        images, turns, parent = list(request.images), [], None
        if request.multi_turn:
            if request.route != "google":
                raise InputError(
                    "A multi-turn edit goes by the Google route only (the chat route carries no thought "
                    "signatures); use --route google or leave the route out."
                )
            if not images:
                raise InputError("A multi-turn edit continues an earlier result: name it with -e (an index such as -1).")
            target = images.pop(0)
            images = [to_image_input(item) for item in images]  # read once: their size shares the budget
            extra = sum(b64_size(item.data) for item in images if not item.is_url)
            turns, parent = self.conversation(target, model=request.model, reserve=extra)
        result = self.client.generate(
            request.prompt,
            model=request.model,
            images=images,
            aspect_ratio=request.aspect_ratio,
            image_size=request.image_size,
            route=request.route,
            turns=turns,
        )
        if request.multi_turn:
            result.parent_id = parent  # the result continued, not whatever the other images came from
        try:
            self.history.append(result)
        except HistoryError as exc:
            reason = str(exc).rstrip(".")
            raise NotKeptError(
                f"The image was made but the history cannot keep it: {reason[:1].lower()}{reason[1:]}, "
                "and save this one with .save(path).",
                result,
            ) from None
        return result

    def conversation(self, ref: Any, model: str | None = None, reserve: int = 0) -> tuple[list[dict[str, Any]], str | None]:
        """The earlier turns of a multi-turn edit of ``ref`` (a history entry or a result), and
        the id of the entry it continues.

        The turns are the prompts and the model's replies (with their thought signatures) along
        ``ref``'s lineage, as far back as each step came by the Google route from the same
        model; the first step's user turn also holds the image it edited, where that is in this
        history. Where the images would pass the inline budget, less ``reserve`` (base64
        characters of other input images; up to half the budget is kept for them), the image
        of the first step and then the first steps are left out, with a warning.
        """
        chain = self._lineage_of(ref)
        last = chain[-1]
        where = f"[{last.index}]" if getattr(last, "index", None) is not None else "That result"
        if not last.model_parts:
            raise InputError(
                f"{where} came by the chat route, which keeps no model turn to continue; edit it "
                "without --multi-turn, or make it with --route google first."
            )
        if model and not same_model(last.model, model):
            raise InputError(
                f"{where} was made by {last.model}, and a conversation goes on with the model that made it "
                "(another model cannot read its signed turns); leave out -m, or edit without --multi-turn."
            )
        budget = self.client.inline_budget
        available = budget - min(reserve, budget // 2)
        # Newest first, so that a long chain of large images is read only as far as it is sent.
        steps: list[Any] = []
        replies: list[dict[str, Any]] = []
        size = 0
        left_out = 0
        tail = []
        for item in reversed(chain):
            if not item.model_parts or not same_model(item.model, last.model):
                break
            tail.append(item)
        for position, item in enumerate(tail):
            reply = model_turn(item.model_parts, _images_of(item))
            if steps and size + inline_size([reply]) > available:
                left_out = len(tail) - position
                break
            steps.insert(0, item)
            replies.insert(0, reply)
            size += inline_size([reply])
        if size > budget:
            raise InputError(
                f"The image to continue from is {size / 1e6:.1f} MB as base64, more than the "
                f"{budget / 1e6:.3g} MB a request may carry; edit it without --multi-turn, which sends it "
                "re-encoded to fit."
            )
        if size > available:
            raise InputError(
                f"The image to continue from and the other input images together pass the {budget / 1e6:.3g} MB "
                "a request may carry; pass fewer or smaller images with -i, or edit without --multi-turn."
            )
        turns: list[dict[str, Any]] = []
        for item, reply in zip(steps, replies):
            turns += [user_turn(item.prompt), reply]
        source = None if left_out else self._edited_image_part(steps[0])
        if source is not None and size + inline_size([{"parts": [source]}]) <= available:
            turns[0]["parts"].append(source)
            source = None
        if left_out or source is not None:
            if left_out:
                steps_word = "step was" if left_out == 1 else f"{left_out} steps were"
                what = f"The conversation's first {steps_word} left out"
            else:
                what = "The image the conversation's first step edited was left out"
            warnings.warn(
                f"{what}: with them its images would pass the {budget / 1e6:.3g} MB a request may carry.",
                RuntimeWarning,
                stacklevel=3,
            )
        return turns, getattr(last, "id", None)

    def _edited_image_part(self, item: Any) -> dict[str, Any] | None:
        """The image ``item`` was made from, as a user part, if that is an entry of this history."""
        parent = getattr(item, "parent", None) if isinstance(item, HistoryEntry) else item.parent_id
        if not parent:
            return None
        try:
            entry = self.history.get(parent)
            data = entry.data
        except (LookupError, HistoryError):
            return None  # not in this history, or its file is gone: the step goes without it
        return {"inlineData": {"mimeType": entry.mimes[0], "data": b64encode(data)}}

    def _lineage_of(self, ref: Any) -> list[Any]:
        """``ref``'s chain of edits, first ancestor first: from this history where it is kept here."""
        if isinstance(ref, int) and not isinstance(ref, bool):
            return self.history.lineage(ref)
        if isinstance(ref, str):
            try:
                return self.history.lineage(ref.strip())
            except LookupError:
                pass  # a path or URL: said below
        elif isinstance(ref, HistoryEntry) or (isinstance(ref, ImageResult) and ref.id is not None):
            try:
                entry = self.history.get(ref.id)
            except LookupError:
                return [ref]  # from another history: its own turn only
            return self.history.lineage(entry)
        elif isinstance(ref, ImageResult):
            return [ref]
        what = repr(ref) if isinstance(ref, str) else f"a {type(ref).__name__}"
        raise InputError(
            f"A multi-turn edit continues an earlier result, not {what}; pass -e with a history index "
            "such as -1 or a variable holding a result (an ordinary edit takes any image)."
        )

    def submit(self, request: Request, count: int = 1) -> list[Future]:
        """Start ``count`` copies of ``request`` off the calling thread; each result joins the history."""
        if count < 1:
            raise InputError(f"The number of variants must be 1 or more, not {count}.")
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="aigate")
            return [self._pool.submit(self.run, request) for _ in range(count)]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()


def _if_taken(model: str, ratio: str | None = None, size: str | None = None) -> str | None:
    """``ratio`` or ``size`` if ``model`` takes it, else None."""
    try:
        check_options(model, ratio, size, 0)
    except InputError:
        return None
    return ratio or size


def _images_of(item: Any) -> list[tuple[str, bytes]]:
    """The original images of a result or history entry, as (mime, bytes)."""
    if isinstance(item, HistoryEntry):
        return [(mime, StoredImage(mime, path).data) for mime, path in zip(item.mimes, item.files)]
    return [(original.mime, original.data) for original in item.originals]


def _is_int(text: str) -> bool:
    return text.lstrip("+-").isdigit()


def _looks_like_path(text: str) -> bool:
    return "/" in text or "." in text


_current: Session | None = None
_current_lock = threading.Lock()


def current_session(factory: Callable[[], Session] | None = None) -> Session:
    """The session of this kernel, made on first use."""
    global _current
    with _current_lock:
        if _current is None:
            _current = (factory or Session)()
        return _current


def set_current_session(session: Session | None) -> None:
    global _current
    with _current_lock:
        _current = session
