"""The request layer: checks what is asked for, prepares the request (``PreparedRequest``),
hands it to a transport (``HTTPTransport``: the session, retries and timeouts) and turns the
reply into an ``ImageResult`` or a typed error. No IPython here.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..core.costs import GATEWAY, TABLE, PriceTable, load_prices, usage_from_reply
from ..core.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    InputError,
    NoImageError,
    ResponseError,
)
from ..core.images import (
    DEFAULT_INLINE_BUDGET,
    ImageInput,
    ImageLike,
    ReplyImage,
    StoredImage,
    b64_size,
    fit_inline_budget,
    to_image_input,
)
from ..core.models import ROUTES, normalise_options
from ..core.region import Region, RegionEdit, plan_region_edit
from ..core.results import Attempt, ImageResult
from .config import (
    DEFAULT_BASE_URL,
    Secret,
    Settings,
    check_api_key,
    is_loopback,
    load_settings,
)
from .emulated import shared_emulator_url
from .pacing import Pacer
from .prepared import PreparedRequest, endpoint_of, image_hash, input_record, request_hash
from .replay import ResultCache, kept_for, replayed
from .transport import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_RETRY_BACKOFF,
    DEFAULT_TIMEOUT,
    HTTPTransport,
    Transport,
    scrubbed,
)
from .wire import (
    BALANCE_PATH,
    CHAT_PATH,
    MODELS_PATH,
    build_chat_body,
    build_google_body,
    google_path,
    inline_size,
    load_reply,
    parse_balance,
    parse_chat_reply,
    parse_google_reply,
    parse_model_ids,
)

#: What ``Client(transport=)`` must have: the members ``transport.Transport`` declares.
_TRANSPORT_MEMBERS = sorted(
    {*Transport.__annotations__, *(name for name in vars(Transport) if not name.startswith("_"))}
)


class Client:
    """Talks to the aigate gateway (or the built-in emulator) over both routes.

    ``api_key`` and ``base_url`` default to ``AIGATE_API_KEY`` and
    ``AIGATE_BASE_URL`` (environment, then ``.env``); with neither set, the
    built-in emulator serves on loopback. ``timeout`` is seconds, or a
    ``(connect, read)`` pair; the read timeout is long because a 4K image can
    take minutes. ``max_retries`` counts retries after the first attempt, on
    408, 409, 429, 5xx and dropped connections, each after the wait the gateway
    asked for (headers, or a Google ``RetryInfo``), at most ``max_retry_after``
    seconds; a used-up daily quota is ``QuotaExhausted`` at once. ``headers`` are
    sent with every request (the emulator's fault injection uses them). ``pacer``
    (a ``pacing.Pacer``, shared by clients and threads) paces every attempt.

    ``transport`` sends the requests instead of an ``HTTPTransport`` made from
    those arguments: any ``transport.Transport`` (a recorder, a replayer, a double). The key, base URL,
    timeout, retries, headers and pacer are then the transport's own; passing
    ``api_key``, ``base_url``, ``headers`` or ``pacer`` as well is refused.

    ``cache`` (a ``History``, or any ``replay.ResultCache``; off by default) answers
    ``generate`` from the pictures it already holds for an identical request (the
    same ``request_hash``), with no call, and keeps every new result.

    ``prices`` (a ``PriceTable``, or the path of a JSON price file; default
    ``AIGATE_PRICES``, else the built-in prices) prices a result whose reply says
    nothing of its cost, and estimates requests (``costs.py``).
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        model: str | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_backoff: float = DEFAULT_RETRY_BACKOFF,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        inline_budget: int = DEFAULT_INLINE_BUDGET,
        headers: Mapping[str, str] | None = None,
        pacer: Pacer | None = None,
        transport: Transport | None = None,
        cache: ResultCache[Any] | None = None,
        prices: PriceTable | str | os.PathLike | None = None,
    ) -> None:
        given = Secret(api_key)
        del api_key  # from here on, a verbose traceback of a refused argument shows no key
        settings = load_settings()
        self._host_chosen_by = None
        if transport is None:
            if settings.host_chosen_by is not None and base_url is None and given:
                raise ConfigurationError(
                    f"The file {settings.host_chosen_by} chooses the host {settings.base_url}, and a host that a "
                    "folder's .env chose gets only that file's key; nothing was sent. Pass base_url= too, or "
                    "remove AIGATE_BASE_URL from that file."
                )
            if base_url is None:
                self._host_chosen_by = settings.host_chosen_by
            transport = _transport_for(given, settings, base_url, timeout=timeout, max_retries=max_retries,
                                       retry_backoff=retry_backoff, max_retry_after=max_retry_after,
                                       headers=headers, pacer=pacer)
        elif missing := [name for name in _TRANSPORT_MEMBERS if not hasattr(transport, name)]:
            raise ConfigurationError(
                f"transport must be an HTTPTransport or have what one has; {type(transport).__name__} lacks "
                f"{', '.join(missing)} (see aigate_nb.gateway.transport.Transport)."
            )
        elif given.given or base_url is not None or headers or pacer is not None:
            raise ConfigurationError(
                "A client with a transport sends with the transport's key, base URL, headers and pacer; "
                "give them to the transport: HTTPTransport(base_url, api_key, headers=..., pacer=...)."
            )
        self._transport = transport
        self.model = model or settings.model
        self.inline_budget = inline_budget
        self.cache = _as_cache(cache)
        self.prices = prices if isinstance(prices, PriceTable) else load_prices(prices or settings.prices)
        if self.has_key and self.base_url.startswith("http://") and not is_loopback(self.base_url):
            warnings.warn(
                f"The base URL {self.base_url} is plain http://: your key would travel unencrypted. "
                "Use https://.",
                stacklevel=2,
            )

    # -- public operations -------------------------------------------------------------------

    def generate(
        self,
        prompt: str,
        *,
        model: str | None = None,
        images: Iterable[Any] | Any = (),
        aspect_ratio: str | None = None,
        image_size: str | None = None,
        route: str = "chat",
        turns: Iterable[dict[str, Any]] = (),
        region: Region | str | Sequence[float] | None = None,
        region_mode: str | None = None,
    ) -> ImageResult:
        """Generate an image from ``prompt``, or edit ``images`` as it says.

        Everything is checked before anything is sent: the prompt, the ratio
        and size for this model, the images (paths, URLs, bytes, PIL images,
        results or history entries), and their total size.

        ``turns`` (Google route only) are the earlier contents of a conversation,
        ``wire.user_turn`` and ``wire.model_turn`` in alternation, sent as they
        are before this prompt: a multi-turn edit. ``Session`` builds them from a
        result's lineage (``%%gemini_image -e REF --multi-turn``).

        ``region`` (``(x, y, w, h)`` in the first image's pixels, or as fractions of its
        width and height, or ``"X,Y,W,H"``) edits only that box of the first image: the
        result is that image with the box changed and every pixel outside the box and its
        padding as it was (see ``region.py``); ``region_mode`` is ``"crop"`` (the default:
        only the padded box is sent) or ``"guide"`` (the whole image, the box outlined).
        The ratio and size are then chosen for the crop, and may not be given.

        The same as ``send(prepare(...))``, answered from ``cache`` where it has the picture.
        """
        prepared = self.prepare(
            prompt, model=model, images=images, aspect_ratio=aspect_ratio, image_size=image_size, route=route,
            turns=turns, region=region, region_mode=region_mode,
        )
        if self.cache is None:
            return self.send(prepared)
        for entry in kept_for(self.cache, prepared):
            return replayed(entry)
        result = self.send(prepared)
        self.cache.append(result)
        return result

    def prepare(
        self,
        prompt: str,
        *,
        model: str | None = None,
        images: Iterable[Any] | Any = (),
        aspect_ratio: str | None = None,
        image_size: str | None = None,
        route: str = "chat",
        turns: Iterable[dict[str, Any]] = (),
        region: Region | str | Sequence[float] | None = None,
        region_mode: str | None = None,
    ) -> PreparedRequest:
        """Check a request as ``generate`` does and build it, sending nothing.

        Raises ``InputError`` for anything ``generate`` would refuse before sending.
        """
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError("The prompt is empty; write what the image should show.")
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(
                "The prompt holds a broken character (half of a surrogate pair, often from pasting); retype it."
            ) from None
        if route not in ROUTES:
            raise InputError(f"route {route!r} is not one of 'chat' or 'google'.")
        if model is not None and not isinstance(model, str):
            raise InputError(f"model must be a model id (text), not {type(model).__name__}; see Client().models().")
        model = (model or self.model).strip()
        if not model:
            raise InputError("The model id is empty; see Client().models() for the ids.")
        turns = _check_turns(turns, route)
        asked = _check_region(region, region_mode, images, turns, aspect_ratio, image_size)
        inputs = [to_image_input(item) for item in _as_list(images)]
        ratio, size = normalise_options(model, aspect_ratio, image_size, len(inputs))
        image_hashes = tuple(image_hash(item) for item in inputs)  # as given: re-encoding below is ours
        records = tuple(input_record(item, digest) for item, digest in zip(inputs, image_hashes))
        edit, sent_prompt = None, prompt
        if asked is not None:  # the first image is sent as its crop, at the crop's ratio and size
            edit = plan_region_edit(inputs[0], asked, model, prompt)
            inputs[0], sent_prompt, ratio, size = edit.image, edit.prompt, edit.aspect_ratio, edit.image_size
        spent = inline_size(turns)
        if spent > self.inline_budget:
            raise InputError(
                f"The earlier turns hold {spent / 1e6:.1f} MB of images (as base64), more than the "
                f"{self.inline_budget / 1e6:g} MB a request may carry; edit this image without its earlier "
                "turns (no --multi-turn), which sends it re-encoded to fit."
            )
        inputs = fit_inline_budget(inputs, self.inline_budget - spent)
        if turns and spent + sum(b64_size(item.payload) for item in inputs if not item.is_url) > self.inline_budget:
            raise InputError(
                f"The earlier turns hold {spent / 1e6:.1f} MB of images and leave too little of the "
                f"{self.inline_budget / 1e6:g} MB a request may carry for the other images; pass fewer "
                "earlier turns or smaller images."
            )
        if route == "chat":
            body, path = build_chat_body(sent_prompt, model, inputs, ratio, size), CHAT_PATH
        else:
            body, path = build_google_body(sent_prompt, inputs, ratio, size, turns), google_path(model)
        endpoint = endpoint_of(self.base_url, self.emulated)
        return PreparedRequest(
            method="POST",
            path=path,
            body=body,
            route=route,
            model=model,
            prompt=prompt,
            aspect_ratio=ratio,
            image_size=size,
            parent_id=_parent_of(inputs),
            endpoint=endpoint,
            image_hashes=image_hashes,
            inputs=records,
            request_hash=request_hash(
                route=route, endpoint=endpoint, model=model, prompt=prompt, aspect_ratio=ratio, image_size=size,
                image_hashes=image_hashes, turns=turns, region=edit.record() if edit else None,
            ),
            region=edit,
        )

    def send(self, prepared: PreparedRequest) -> ImageResult:
        """Send a request made by ``prepare`` and return its result, or raise a typed error."""
        started = time.perf_counter()
        raw = self._exchange(prepared.method, prepared.path, prepared.body)
        data, payloads = self._load_reply(raw, prepared.route)
        try:
            reply = parse_chat_reply(data, payloads) if prepared.route == "chat" else parse_google_reply(data, payloads)
        except NoImageError as exc:
            refusal = self._scrubbed_refusal(exc)
            refusal.attempt = _attempt(prepared, refusal, self.prices, self.emulated)  # charged all the same
            raise refusal from None
        scrub = self._transport.scrub
        per_image = self.prices.tokens_per_image(prepared.model, prepared.image_size)
        usage = usage_from_reply(reply.usage, len(reply.images), per_image)
        cost, source = reply.cost, GATEWAY
        if cost is None:
            cost, source = self.prices.cost(prepared.model, usage, len(reply.images), prepared.image_size), TABLE
        edit = prepared.region
        ratio, size = (prepared.aspect_ratio, prepared.image_size) if edit is None else edit.source_shape
        originals: list[ReplyImage | StoredImage] = list(reply.images) if edit is None else [
            _composited(edit, item) for item in reply.images]
        return _readable(ImageResult(
            originals=originals,
            prompt=prepared.prompt,
            model=prepared.model,
            aspect_ratio=ratio,
            image_size=size,
            text=scrub(reply.text) if reply.text else reply.text,
            finish_reason=reply.finish_reason,
            usage=usage,
            route=prepared.route,
            elapsed=time.perf_counter() - started,
            emulated=self.emulated,
            # A region edit's reply is of the crop: no conversation goes on from it.
            model_parts=_scrubbed_parts(reply.model_parts, scrub) if edit is None else None,
            parent_id=prepared.parent_id,
            inputs=[dict(item) for item in prepared.inputs],
            request_hash=prepared.request_hash,
            cost=cost,
            cost_source=source if cost is not None else None,
            region=edit.record() if edit is not None else None,
        ))

    @property
    def pacer(self) -> Pacer | None:
        """The ``Pacer`` every request of this client waits on (None: none); settable, e.g. by a
        batch for its duration, so that single requests sent meanwhile keep to it too."""
        return self._transport.pacer

    @pacer.setter
    def pacer(self, pacer: Pacer | None) -> None:
        if pacer is not None and not isinstance(pacer, Pacer):
            raise ConfigurationError(f"pacer must be a Pacer, not {type(pacer).__name__}.")
        self._transport.pacer = pacer

    def models(self, image_only: bool = False) -> list[str]:
        """The model ids of ``GET /v1/models``; with ``image_only``, those that make images."""
        return parse_model_ids(self._parse_json(self._exchange("GET", MODELS_PATH)), image_only=image_only)

    def balance(self) -> float | None:
        """The account's balance in USD from ``GET /v1/balance``, or None where the gateway has no
        such endpoint (404, 405) or answers without a ``balance`` number."""
        try:
            raw = self._exchange("GET", BALANCE_PATH)
        except BadRequestError as exc:
            if exc.status in (404, 405):
                return None
            raise
        try:
            return parse_balance(json.loads(raw))
        except (ValueError, RecursionError):
            return None

    @property
    def emulated(self) -> bool:
        """True when the other end is the built-in emulator (it marks its replies)."""
        return self._transport.emulated

    # The connection settings are the transport's; the client shows them as it always has.

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    @property
    def host_chosen_by(self) -> str | None:
        """The ``.env`` (as shown) whose ``AIGATE_BASE_URL`` chose this client's host, if one did:
        that host gets only that file's key, or none."""
        return self._host_chosen_by

    @property
    def has_key(self) -> bool:
        """True when requests carry a key."""
        return self._transport.has_key

    @property
    def masked_key(self) -> str:
        """The key as it may be shown (``sk-...abcd``), or ``(none)``."""
        return self._transport.masked_key

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r}, model={self.model!r}, api_key={self.masked_key!r})"

    # -- sending and reading replies -----------------------------------------------------------

    def _exchange(self, method: str, path: str, body: dict | None = None) -> bytes:
        """The transport's answer; a 401 from a host that a folder's ``.env`` chose says so."""
        try:
            return self._transport.send(method, path, body)
        except AuthenticationError as exc:
            if self._host_chosen_by is not None and not self.has_key:
                exc.message = (
                    f"{exc.message.rstrip('. ')}. The host {self.base_url} was chosen by AIGATE_BASE_URL in "
                    f"{self._host_chosen_by}, which holds no AIGATE_API_KEY, so requests go to it without a key "
                    "(a folder's .env never gets the key of your environment): put the key for that host in "
                    "that file, or remove the line"
                )
            raise

    def _scrubbed_refusal(self, refusal: NoImageError) -> NoImageError:
        """A reply without an image, the key masked in what the model said, its message said anew
        from what is left (a key cut by the message's clipping could otherwise show a piece)."""
        scrubbed(refusal, self._transport.scrub)
        refusal.args = (refusal._message(),)
        return refusal


    def _parse_json(self, raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than json follows
            raise self._not_json(raw) from None

    def _load_reply(self, raw: bytes, route: str) -> tuple[Any, dict[str, bytes]]:
        """A generation reply's JSON, its large images decoded on the way (see ``load_reply``)."""
        try:
            return load_reply(raw, route)
        except (ValueError, RecursionError):
            raise self._not_json(raw) from None

    def _not_json(self, raw: bytes) -> ResponseError:
        head = raw[:80].decode("utf-8", "replace")
        return ResponseError(
            self._transport.scrub(
                f"The gateway's reply is not valid JSON ({len(raw)} bytes, starting {head!r}); "
                "it may have been cut off: run the request again."
            )
        )


def _transport_for(given: Secret, settings: Settings, base_url: str | None, **options: Any) -> HTTPTransport:
    """The transport for the key given (else the settings'); whatever it refuses (a base URL, a
    timeout, headers) is raised afresh from this frame, whose locals hold no key: the frames
    below take it as an argument, and a verbose traceback prints every frame's arguments."""
    try:
        return _new_transport(given, settings, base_url, **options)
    except Exception as exc:
        raise exc.with_traceback(None) from None


def _new_transport(given: Secret, settings: Settings, base_url: str | None, **options: Any) -> HTTPTransport:
    key = check_api_key(given.value if given.given else settings.api_key)
    return HTTPTransport(_base_url_for(key, base_url, settings.base_url), key, **options)


def _base_url_for(api_key: str | None, base_url: str | None, env_base_url: str | None) -> str:
    """The argument (the transport checks it), else ``AIGATE_BASE_URL``, else the built-in
    emulator when there is no key (started here, once per process), else the gateway."""
    if base_url is not None:
        return base_url
    if env_base_url is not None:
        return env_base_url
    if api_key is None:
        return shared_emulator_url()
    return DEFAULT_BASE_URL


def _as_cache(cache: ResultCache[Any] | None) -> ResultCache[Any] | None:
    if cache is None or callable(getattr(cache, "find", None)) and callable(getattr(cache, "append", None)):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        raise ConfigurationError(
            "cache is a History, not a folder: Client(cache=History('renders', root='cache')) keeps one in "
            "cache/renders (from aigate_nb import History)."
        )
    raise ConfigurationError(f"cache is a History (or has its find() and append()), not {type(cache).__name__}.")
def _check_turns(turns: Iterable[dict[str, Any]], route: str) -> list[dict[str, Any]]:
    turns = list(turns or ())
    if not turns:
        return turns
    if route != "google":
        raise InputError("Earlier turns (a multi-turn edit) go by the Google route only; pass route='google'.")
    roles = [turn.get("role") if isinstance(turn, dict) else None for turn in turns]
    if roles != ["user", "model"] * (len(turns) // 2) or not all(isinstance(t.get("parts"), list) for t in turns):
        raise InputError(
            "turns must alternate user and model contents, each with its parts, starting with a user turn "
            "and ending with a model turn (see aigate_nb.gateway.wire.user_turn and model_turn)."
        )
    return turns


def _check_region(
    region: Region | str | Sequence[float] | None,
    mode: str | None,
    images: Iterable[Any] | Any,
    turns: list[dict[str, Any]],
    aspect_ratio: str | None,
    image_size: str | None,
) -> Region | None:
    """The region asked for, read; refused where it cannot go with the rest of the request."""
    if region is None:
        if mode is not None:
            raise InputError("A region mode goes with a region; give the box too, e.g. --region 0.5,0.25,0.3,0.3.")
        return None
    asked = Region.parse(region, mode)
    if turns:
        raise InputError("A region edit sends a crop of one image and continues no conversation; pass no turns.")
    if not _as_list(images):
        raise InputError("A region is a box in the image to edit; name that image too, e.g. -e -1 --region ....")
    if aspect_ratio is not None or image_size is not None:
        raise InputError(
            "A region edit keeps the size and shape of the image it edits, and chooses the crop's ratio and size "
            "itself; leave out the aspect ratio and the image size."
        )
    return asked


def _scrubbed_parts(parts: list[dict[str, Any]] | None, scrub: Any) -> list[dict[str, Any]] | None:
    """The model's parts, as kept for a multi-turn edit, with the key masked in their text."""
    if not parts:
        return parts
    return [{**part, "text": scrub(part["text"])} if isinstance(part.get("text"), str) else part for part in parts]


def _composited(edit: RegionEdit, answer: ReplyImage) -> ReplyImage:
    """The region edit's source with ``answer`` pasted into its box (see ``RegionEdit.composite``)."""
    try:
        return edit.composite(answer)
    except Exception as exc:  # Pillow raises OSError, SyntaxError, DecompressionBombError, ...
        raise ResponseError(_unreadable(exc)) from None


def _as_list(images: Iterable[Any] | Any) -> list[Any]:
    if images is None:
        return []
    if isinstance(images, (str, bytes, bytearray, Path, ImageLike)) or hasattr(images, "getpixel"):
        return [images]
    try:
        return list(images)
    except TypeError:
        return [images]  # not a collection: to_image_input says what it cannot use


def _parent_of(inputs: list[ImageInput]) -> str | None:
    return next((item.parent_id for item in inputs if item.parent_id), None)


def _attempt(prepared: PreparedRequest, error: NoImageError, prices: PriceTable, emulated: bool) -> Attempt | None:
    """What a reply without an image used and cost, to be kept as an ``Attempt``; None when
    it reported neither usage nor cost (nothing was charged, as far as anyone can tell)."""
    usage = usage_from_reply(error.usage, 0)
    if not usage and error.cost is None:
        return None
    cost, source = error.cost, GATEWAY
    if cost is None:
        cost, source = prices.cost(prepared.model, usage, 0, prepared.image_size), TABLE
    return Attempt(
        prompt=prepared.prompt, model=prepared.model, route=prepared.route, aspect_ratio=prepared.aspect_ratio,
        image_size=prepared.image_size, finish_reason=error.finish_reason, block_reason=error.block_reason,
        text=error.text, usage=usage, cost=cost, cost_source=source if cost is not None else None,
        request_hash=prepared.request_hash, emulated=emulated,
    )


def _readable(result: ImageResult) -> ImageResult:
    """``result``, once every image's header has been read (no pixels are decoded): bytes
    that are not an image fail here, as one clear error, and not later in the history,
    the display or a save."""
    try:
        _ = result.sizes  # reads each header
    except Exception as exc:  # Pillow raises OSError, SyntaxError, DecompressionBombError, ...
        raise ResponseError(_unreadable(exc)) from None
    return result


def _unreadable(exc: BaseException) -> str:
    return f"The gateway sent an image that cannot be read ({type(exc).__name__}); run the request again."
