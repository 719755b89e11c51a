"""The notebook's state: its Client, its History and its defaults.

Both front ends (the magics and the panel) call these functions; neither talks
HTTP nor touches the history's files itself. Usable with no kernel at all.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from ..core.costs import Estimate, PlanEstimate, format_cost, load_prices
from ..core.errors import BudgetWarning, HistoryError, InputError, NoImageError, NotKeptError
from ..core.images import ImageLike, b64_size, source_shape, to_image_input
from ..core.models import keep_shape, normalise_options
from ..core.request import Defaults, Request, resolve
from ..core.results import ImageResult
from ..core.text import display_path, one_line
from ..gateway.client import Client
from ..gateway.config import DEFAULT_BASE_URL, load_settings
from ..gateway.prepared import PreparedRequest, estimate
from ..gateway.replay import kept_for, replayed
from ..records.spending import Spending, summarize
from ..records.store import INDEX_FILE, History, HistoryEntry
from .budget import Budget, Hold, dollars, parse_budget
from .conversation import continued_model, conversation_turns
from .notebook import NotebookTracker

#: The most copies of one request sent at once: a typo such as ``-n 100`` must not send
#: a hundred paid requests.
MAX_VARIANTS = 16


class Session:
    """One notebook's client, history and defaults.

    ``run`` sends one request and records the result in the history before
    returning it, so a result is never lost even if nobody displays it; if the
    history cannot keep it, ``NotKeptError`` hands it over instead. A request the
    history already answers is replayed from it instead of sent (``replay.py``).
    ``recent`` are the ids of what this kernel made or replayed, in order: a negative
    index counts back through them (so ``-e -1`` after a replayed cell is that cell's
    picture, as it was in the run that made it), then through the rest of the history.
    Unless a ``history`` is given, it is the notebook's (see ``NotebookTracker``) and
    follows it through renames, until a history is chosen by name.
    """

    def __init__(
        self,
        client: Client | None = None,
        history: History | None = None,
        defaults: Defaults | None = None,
        notebook: NotebookTracker | None = None,
    ) -> None:
        self.client = client or Client()
        if history is None:
            notebook = notebook or NotebookTracker()
            history = notebook.open()
        self._notebook = notebook
        self._chosen = False  # a history chosen by name stays, whatever the notebook is called
        self._history = history
        self.defaults = defaults or Defaults(model=self.client.model, budget=parse_budget(load_settings().budget))
        self._lock = threading.Lock()
        # What is spent and held against the budget, checked and held in one step.
        self._money = Budget(lambda: self.defaults.budget, self.spent)
        self._pool: ThreadPoolExecutor | None = None
        self._watchers: list[Callable[[Defaults], None]] = []
        self.recent: list[str] = []

    # -- where requests go -------------------------------------------------------------------

    @property
    def emulated(self) -> bool:
        return self.client.emulated

    def use_emulator(self) -> str:
        """Send requests to the built-in emulator from now on; returns its URL."""
        from ..gateway.emulated import shared_emulator_url

        self._swap_client(Client(api_key="", base_url=shared_emulator_url(), model=self.defaults.model))
        return self.client.base_url

    def use_gateway(self) -> str:
        """Send requests to the gateway of ``AIGATE_BASE_URL``/``AIGATE_API_KEY`` from now on."""
        settings = load_settings()
        if settings.api_key is None and settings.host_chosen_by is not None:
            raise InputError(
                f"AIGATE_BASE_URL in {settings.host_chosen_by} chooses {settings.base_url}, and a host a folder's "
                ".env chose gets only that file's key, which it does not hold; put AIGATE_API_KEY in that file or "
                "remove the line, then run %aigate use gateway again."
            )
        if settings.api_key is None:
            raise InputError(
                "No AIGATE_API_KEY is set; put it in the environment or a .env file before starting "
                "Jupyter (not in a cell), then run %aigate use gateway again."
            )
        # A host a .env chose is the client's to resolve, so that a 401 from it names the file.
        chosen = settings.host_chosen_by is not None
        self._swap_client(Client(model=self.defaults.model,
                                 base_url=None if chosen else settings.base_url or DEFAULT_BASE_URL))
        return self.client.base_url

    def _swap_client(self, client: Client) -> None:
        client.prices = self.client.prices  # the prices chosen stay whichever end serves
        with self._lock:
            old, self.client = self.client, client
        old.close()

    def settings(self) -> dict[str, str]:
        """Current settings for display; the key is masked."""
        return {
            "base_url": self.client.base_url + ("  (emulator)" if self.emulated else "") + (
                f"  (chosen by {self.client.host_chosen_by})" if self.client.host_chosen_by else ""),
            "api_key": self.client.masked_key,
            "model": self.defaults.model,
            "aspect_ratio": self.defaults.aspect_ratio or "(model default)",
            "image_size": self.defaults.image_size or "(model default)",
            "route": self.defaults.route,
            "replay": "on" if self.defaults.replay else "off (every request is sent)",
            "budget": self._budget_text(),
            "prices": display_path(self.client.prices.source) if self.client.prices.source else "built-in",
            "history": display_path(self.history.folder),
        }

    def _budget_text(self) -> str:
        if self.defaults.budget is None:
            return "off"
        return f"{dollars(self.defaults.budget)} (spent {format_cost(self.spent())})"

    def set_defaults(self, **changes: str | None) -> Defaults:
        """Change the defaults, checked against the model as a request would be."""
        unknown = set(changes) - {"model", "aspect_ratio", "image_size", "route", "replay", "budget", "prices"}
        if unknown:
            raise InputError(
                f"Unknown setting {sorted(unknown)[0]!r}; the settings are model, aspect_ratio, image_size, "
                "route, replay, budget and prices."
            )
        values: dict[str, Any] = dict(changes)  # the strings given, then what each setting holds
        prices = None
        if "prices" in values:  # read first: a file that cannot be used changes nothing
            prices = load_prices(values.pop("prices") or load_settings().prices)
        if "model" in values and not values["model"]:
            values["model"] = load_settings().model  # "default": AIGATE_MODEL, else the built-in default
        if "route" in values and not values["route"]:
            values["route"] = "chat"
        if "replay" in values:
            values["replay"] = _switch("replay", values["replay"])
        if "budget" in values:
            values["budget"] = parse_budget(values["budget"])
        merged = replace(self.defaults, **values)
        if merged.route not in ("chat", "google"):
            raise InputError(f"route {merged.route!r} is not one of 'chat' or 'google'.")
        ratio, size = normalise_options(merged.model, merged.aspect_ratio, merged.image_size, 0)
        self.defaults = replace(merged, aspect_ratio=ratio, image_size=size)
        if prices is not None:
            self.client.prices = prices
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

    @property
    def history(self) -> History:
        """This notebook's history: when the session follows a notebook, that of its current
        name (the server is asked at most every few seconds)."""
        if self._notebook is not None and not self._chosen:
            self._history = self._notebook.follow(self._history)
        return self._history

    @history.setter
    def history(self, history: History) -> None:
        self._history, self._chosen = history, True

    def use_history(self, name: str) -> History:
        """Switch to the history called ``name``, kept beside the current one; it stays when
        the notebook is renamed."""
        self.history = History(name=name, root=self.history.folder.parent)
        return self.history

    def notices(self, using_history: bool = True) -> list[str]:
        """One-line notices not shown yet about which history this notebook uses: one moved to
        follow a rename, another notebook's left alone; with ``using_history`` (a front end is
        about to use it), once per kernel, that it was chosen with nothing to say which
        notebook this is, and how to choose one."""
        if self._notebook is None:
            return []
        history = self.history  # a rename just made is followed, and told, now
        return self._notebook.notices(history, guess=using_history and not self._chosen)

    def image_models(self) -> list[str]:
        return self.client.models(image_only=True)

    # -- images from references ---------------------------------------------------------------

    def resolve_image(self, ref: Any, user_ns: Mapping[str, Any] | None = None) -> Any:
        """A history index (``3``, ``-1``, ``"3"``) or id, a variable name in
        ``user_ns``, or anything image-like, as an image to send."""
        if isinstance(ref, (int, ImageLike)) or not isinstance(ref, str):
            return self._counted_back(ref) if isinstance(ref, int) else ref
        text = ref.strip()
        if _is_int(text):
            if text in self.history.ids():
                return self.history.get(text)  # an id that is all digits
            return self._counted_back(int(text))
        if user_ns is not None and text.isidentifier() and text in user_ns:
            return user_ns[text]
        try:
            return self.history.get(text)  # an entry's id
        except HistoryError:
            if text.isidentifier() and not _looks_like_path(text):
                raise InputError(
                    f"{text!r} is neither a history index, a history id nor a variable in this notebook; "
                    "use an index such as -1 (see %aigate history) or the name of a variable holding an image."
                ) from None
        return text

    # -- requests ---------------------------------------------------------------------------

    def with_defaults(self, request: Request) -> Request:
        """``request`` with this notebook's defaults where it says nothing (see
        ``core.request.resolve``, which decides it from what is looked up here: the model a
        multi-turn edit continues, and the shape of the image an edit starts from)."""
        continued = None
        if not request.model and request.multi_turn and request.images:
            continued = continued_model(self.history, request.images[0])
        shape = None
        if request.images and request.region is None and not (request.aspect_ratio and request.image_size):
            shape = source_shape(self._image_of(request.images[0]))
        return resolve(request, self.defaults, continued_model=continued, source=shape)

    def kept_shape(self, source: Any, model: str) -> tuple[str | None, str | None]:
        """The ratio and size with which ``model`` edits ``source`` (a history index or id, or
        anything image-like) keeping its shape (``models.keep_shape``); (None, None) when its
        shape cannot be told or the model is not one we know."""
        shape = source_shape(self._image_of(source))
        return keep_shape(model, *shape) if shape is not None else (None, None)

    def _counted_back(self, index: int) -> Any:
        """History entry ``index``; a negative one counts back through what this kernel made or
        replayed, newest first, then through the rest of the history (see the class)."""
        if index >= 0 or not self.recent:
            return self.history.get(index)
        recent = set(self.recent)
        order = [entry.id for entry in self.history if entry.id not in recent]
        order += [entry_id for entry_id in self.recent if entry_id in self.history.ids()]
        if -index > len(order):
            return self.history.get(index)  # says what exists
        return self.history.get(order[index])

    def _image_of(self, ref: Any) -> Any:
        """A history index or id as its entry; anything else as it is."""
        if isinstance(ref, (int, str)) and not isinstance(ref, bool):
            try:
                return self.history.get(ref)
            except HistoryError:
                return ref
        return ref

    def can_continue(self, item: Any) -> bool:
        """Whether a multi-turn edit can continue ``item``'s conversation: it came by the
        Google route, whose replies keep the signed model turns a conversation needs."""
        return bool(getattr(item, "model_parts", None))

    def prepare_with_parent(self, request: Request, count: int = 1) -> tuple[PreparedRequest, str | None]:
        """Check ``request`` (with the defaults filled in) and build what is sent, before
        anything is sent; returns it with the id of the entry the result will be edited
        from (for a multi-turn edit, the one it continues)."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_VARIANTS:
            raise InputError(f"-n {count}: ask for 1 to {MAX_VARIANTS} variants.")
        request = self.with_defaults(request)
        images, parent = list(request.images), None
        turns: list[dict[str, Any]] = []
        if request.multi_turn and request.region is not None:
            raise InputError(
                "A region edit sends a crop of one image and continues no conversation; leave out --multi-turn."
            )
        if request.multi_turn:
            if not images:
                raise InputError(
                    "A multi-turn edit continues an earlier result: name it with -e, e.g. -e -1 --multi-turn."
                )
            if request.route != "google":
                raise InputError(
                    "A multi-turn edit goes by the Google route only (the chat route carries no thought "
                    "signatures); leave out --route chat."
                )
            target = images.pop(0)
            images = [to_image_input(item) for item in images]  # read once: their size shares the budget
            extra = sum(b64_size(item.data) for item in images if not item.is_url)
            turns, parent = conversation_turns(
                self.history, target, model=request.model, budget=self.client.inline_budget, reserve=extra
            )
        assert request.route is not None  # with_defaults always names one
        prepared = self.client.prepare(
            request.prompt,
            model=request.model,
            images=images,
            aspect_ratio=request.aspect_ratio,
            image_size=request.image_size,
            route=request.route,
            turns=turns,
            region=request.region,
            region_mode=request.region_mode,
        )
        return prepared, parent if request.multi_turn else prepared.parent_id

    def run(self, request: Request) -> ImageResult:
        """Send one request with the defaults filled in (or replay it, see ``submit``); the
        result joins the history."""
        prepared, parent, found, holds = self._plan(request, 1)
        for entry in found:
            self._remember(entry.id)
            return replayed(entry)
        try:
            return self._send_and_keep(prepared, parent)
        finally:
            self.settle(*holds)  # after the result joined the history: its cost is counted there now

    def submit(self, request: Request, count: int = 1, within: Hold | None = None) -> list[Future]:
        """Check ``request`` here and now, then send ``count`` copies of it off the calling
        thread; each result joins the history (see ``outcome``). Copy k is
        ``prepared.as_variant(k)``: the emulator draws each its own picture.

        Unless ``request.new`` or replay is off, what the history already holds for this
        request is replayed (no call, no cost) and only the missing copies are sent.
        With a budget set, those are checked against it first (see ``check_budget``) and their
        estimate held until each ends (see ``reserve``); ``within``, a hold a batch took for all
        its rows, pays for them instead, with no check of their own."""
        prepared, parent, found, holds = self._plan(request, count, within)
        futures: list[Future] = []
        for entry in found:
            futures.append(_done(replayed(entry)))
            self._remember(entry.id)
        try:
            with self._lock:
                sent: list[Future] = []
                if len(found) < count:
                    if self._pool is None:
                        self._pool = ThreadPoolExecutor(max_workers=MAX_VARIANTS, thread_name_prefix="aigate")
                    # The copies sent are numbered after those replayed, so each draws a picture of its own.
                    sent = [
                        self._pool.submit(self._send_and_keep, prepared.as_variant(number), parent)
                        for number in range(len(found), count)
                    ]
        except BaseException:
            self.settle(*holds)
            raise
        for future, hold in zip(sent, holds):
            # Done also when cancelled, and only after the result joined the history.
            future.add_done_callback(self._settling(hold))
        return futures + sent

    def submit_noting(
        self, request: Request, count: int = 1, within: Hold | None = None
    ) -> tuple[list[Future], list[str]]:
        """``submit``, for a front end that shows its own lines: the budget's warnings come
        back as one line each, to show, instead of as Python warnings."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", BudgetWarning)
            futures = self.submit(request, count, within)
        notes = []
        for item in caught:
            if issubclass(item.category, BudgetWarning):
                notes.append(one_line(str(item.message)))
            else:  # not ours to hold back
                warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
        return futures, notes

    def _plan(
        self, request: Request, count: int, within: Hold | None = None
    ) -> tuple[PreparedRequest, str | None, list[HistoryEntry], list[Hold]]:
        """Prepare ``request``, find what the history replays of it, check the copies left to
        send against the budget and hold their estimate, one hold per copy (paid from
        ``within`` if given): everything a front end's request goes through."""
        prepared, parent = self.prepare_with_parent(request, count)
        found = self.replays(request, prepared, count)
        planned = estimate(prepared, self.client.prices, count - len(found))
        return prepared, parent, found, self._money.hold_each(planned, within)

    def estimate(self, request: Request, count: int = 1) -> Estimate:
        """What ``request`` (``count`` copies) would cost now, by the price table: only the
        copies that would be sent count, not those the history would replay. Sends nothing."""
        prepared, _ = self.prepare_with_parent(request, count)
        return estimate(prepared, self.client.prices, count - len(self.replays(request, prepared, count)))

    def spent(self) -> float:
        """What this notebook's history has cost so far, requests charged without a picture
        included (USD; results of unknown cost count 0)."""
        return self.history.usage().cost

    def reserved(self) -> float:
        """What the requests accepted but not finished are estimated to cost (USD): held by the
        budget until each ends (see ``budget.Hold``)."""
        return self._money.reserved()

    def reserve(self, planned: Estimate | PlanEstimate) -> Hold:
        """Check ``planned`` against the budget and hold its estimate, in one step (see
        ``Budget.reserve``): a batch takes one for its rows before sending any."""
        return self._money.reserve(planned)

    def settle(self, *holds: Hold) -> None:
        """Let go of ``holds``: their requests ended, and what they cost is in the history."""
        self._money.settle(*holds)

    def _settling(self, hold: Hold) -> Callable[[Future], None]:
        """A done-callback that lets go of ``hold``."""
        return lambda _future: self.settle(hold)

    def check_budget(self, planned: Estimate | PlanEstimate) -> None:
        """Refuse ``planned`` with ``BudgetError`` if it would pass the budget, counting what
        requests in flight or queued hold; warn past 80 % (see ``Budget.check``)."""
        self._money.check(planned)

    def usage(self, everywhere: bool = False) -> Spending:
        """What this notebook's history used and cost (``History.usage``); with ``everywhere``,
        every history under the same folder."""
        if not everywhere:
            return self.history.usage()
        root = self.history.folder.parent
        names = sorted(p.name for p in root.iterdir() if (p / INDEX_FILE).is_file()) if root.is_dir() else []
        histories = [self.history if name == self.history.name else History(name, root=root) for name in names]
        return summarize([item for history in histories for item in (*history, *history.attempts())], names)

    def balance(self) -> float | None:
        """The account's balance (USD) where the gateway tells it (``Client.balance``)."""
        return self.client.balance()

    def replays(self, request: Request, prepared: PreparedRequest, count: int) -> list[Any]:
        """The entries that answer ``prepared`` without a call, unless a fresh one is asked for."""
        if request.new or not self.defaults.replay:
            return []
        return kept_for(self.history, prepared, count)

    def _send_and_keep(self, prepared: PreparedRequest, parent: str | None) -> ImageResult:
        try:
            result = self.client.send(prepared)
        except NoImageError as exc:
            if exc.attempt is not None:  # charged without a picture: the spending and the budget count it
                try:
                    self.history.record_attempt(exc.attempt)
                except HistoryError as unkept:  # the missing picture stays the error shown
                    warnings.warn(f"This request's charge is not counted: {unkept}", RuntimeWarning, stacklevel=2)
            raise
        result.parent_id = parent  # a multi-turn edit's: the result continued, whatever else went along
        history = self.history
        try:
            history.append(result)
            self._remember(result.id)
        except HistoryError as exc:
            reason = str(exc).rstrip(".")
            raise NotKeptError(
                f"The image was made but the history cannot keep it: {reason[:1].lower()}{reason[1:]}, "
                "and save this one with .save(path).",
                result,
            ) from None
        if self._notebook is not None and not self._chosen:
            self._notebook.claim(history)  # its folder exists now: it records whose it is
        return result

    def _remember(self, entry_id: str | None) -> None:
        """Note ``entry_id`` as the newest thing this kernel made or replayed."""
        if entry_id is None:
            return
        with self._lock:
            if entry_id in self.recent:
                self.recent.remove(entry_id)
            self.recent.append(entry_id)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()


@dataclass(frozen=True)
class Outcome:
    """How one submitted request ended: its result, or the error that stopped it.

    A result the history could not keep is still a result (shown like any other);
    ``not_kept`` then holds the one line that says why and what to do.
    """

    result: ImageResult | None = None
    error: BaseException | None = None
    not_kept: NotKeptError | None = None


def outcome(future: Future) -> Outcome:
    """The outcome of a finished future of ``Session.submit`` (a cancelled one has neither)."""
    try:
        return Outcome(result=future.result())
    except CancelledError:
        return Outcome()
    except NotKeptError as exc:
        return Outcome(result=exc.result, not_kept=exc)
    except Exception as exc:  # noqa: BLE001 - handed to the front end, which shows it as one line
        return Outcome(error=exc)


def _done(result: ImageResult) -> Future:
    """A future that already holds ``result``: a replay takes its place beside the requests sent."""
    future: Future = Future()
    future.set_result(result)
    return future


def _switch(name: str, value: Any) -> bool:
    """``on``/``off`` (``true``/``false``, ``yes``/``no``, ``1``/``0``, a bool) as a bool; None: the default, on."""
    if value is None or isinstance(value, bool):
        return True if value is None else value
    text = str(value).strip().lower()
    if text in ("on", "true", "yes", "1"):
        return True
    if text in ("off", "false", "no", "0"):
        return False
    raise InputError(f"{name} is on or off, not {value!r}; e.g. %aigate config {name}=off.")


def _is_int(text: str) -> bool:
    """A history index as written: digits, signed or not; 18 at most (more is no index, and
    Python refuses to read a number of thousands of digits)."""
    digits = text.lstrip("+-")
    return digits.isdigit() and len(digits) <= 18


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
