"""The request layer: one ``requests.Session`` per client, retries with backoff,
timeouts long enough for 4K images, and typed errors. No IPython here.
"""

from __future__ import annotations

import http.client
import json
import math
import random
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from . import __version__
from .config import DEFAULT_BASE_URL, check_api_key, is_loopback, is_shared_emulator, load_settings, mask_key, normalise_base_url, shared_emulator_url
from .errors import (
    ConfigurationError,
    GatewayConnectionError,
    GatewayError,
    InputError,
    RateLimitError,
    RequestTimeoutError,
    ResponseError,
)
from .images import DEFAULT_INLINE_BUDGET, ImageInput, ImageLike, b64_size, fit_inline_budget, to_image_input
from .models import check_options
from .results import ImageResult
from .wire import (
    CHAT_PATH,
    MODELS_PATH,
    build_chat_body,
    build_google_body,
    error_from_body,
    google_path,
    inline_size,
    load_reply,
    parse_chat_reply,
    parse_google_reply,
    parse_model_ids,
)

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
#: Keys shorter than this are not searched for in messages (see ``Client._scrub``).
SCRUB_MIN_LENGTH = 8
ROUTES = ("chat", "google")
#: Header with which the built-in emulator marks its replies.
EMULATOR_HEADER = "X-Aigate-Emulator"


class GatewayRetry(Retry):
    """urllib3's ``Retry`` with the conventions of the official SDKs: the first
    retry waits too (0.5 s, doubling, at most 8 s, less up to a quarter of
    jitter), and ``retry-after-ms`` is honoured before ``Retry-After``.
    """

    def get_backoff_time(self) -> float:
        errors = len(self.history)
        if errors == 0:
            return 0.0
        delay = min(self.backoff_max, self.backoff_factor * 2 ** (errors - 1))
        return delay * (1 - 0.25 * random.random())

    def get_retry_after(self, response) -> float | None:
        millis = response.headers.get("retry-after-ms")
        if millis:
            try:
                seconds = float(millis) / 1000
            except ValueError:
                seconds = math.nan
            if math.isfinite(seconds):
                return max(0.0, seconds)
        try:
            return super().get_retry_after(response)
        except InvalidHeader:
            return None  # unreadable: as if there were no header, so the backoff applies

    def parse_retry_after(self, retry_after: str) -> float:
        """Seconds, fractions too (gateways send ``0.5``; urllib3 takes whole seconds only
        and raises on anything else), or an HTTP date."""
        try:
            seconds = float(retry_after)
        except ValueError:
            return super().parse_retry_after(retry_after)
        if not math.isfinite(seconds):
            raise InvalidHeader(f"Invalid Retry-After header: {retry_after}")
        return min(max(seconds, 0.0), self.retry_after_max)


class Client:
    """Talks to the aigate gateway (or the built-in emulator) over both routes.

    ``api_key`` and ``base_url`` default to ``AIGATE_API_KEY`` and
    ``AIGATE_BASE_URL`` (environment, then ``.env``); with neither set, the
    built-in emulator serves on loopback. ``timeout`` is seconds, or a
    ``(connect, read)`` pair; the read timeout is long because a 4K image can
    take minutes. ``max_retries`` counts retries after the first attempt, on
    408, 409, 429, 5xx and dropped connections. ``headers`` are sent with every
    request (the emulator's fault injection uses them).
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        model: str | None = None,
        timeout: float | tuple[float, float] = (10.0, 600.0),
        max_retries: int = 2,
        retry_backoff: float = 0.5,
        max_retry_after: float = 60.0,
        inline_budget: int = DEFAULT_INLINE_BUDGET,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        settings = load_settings()
        self._api_key = check_api_key(api_key if api_key is not None else settings.api_key)
        if base_url is not None:
            self.base_url = normalise_base_url(base_url)
        elif settings.base_url is not None:
            self.base_url = settings.base_url
        elif self._api_key is None:
            self.base_url = shared_emulator_url()
        else:
            self.base_url = DEFAULT_BASE_URL
        self.model = model or settings.model
        self.timeout = _check_timeout(timeout)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(f"max_retries must be a whole number, 0 or more, not {max_retries!r}.")
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self.inline_budget = inline_budget
        self._retry = GatewayRetry(
            total=max_retries,
            connect=max_retries,
            read=max_retries,
            status=max_retries,
            other=0,
            redirect=0,
            allowed_methods=None,  # POST too: the SDKs retry generation requests
            status_forcelist=RETRY_STATUSES,
            backoff_factor=retry_backoff,
            backoff_max=8.0,
            raise_on_status=False,
        )
        self._session = requests.Session()
        self._session.trust_env = not is_loopback(self.base_url)  # never route loopback through a proxy
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update({"User-Agent": f"aigate_nb/{__version__}", "Accept": "application/json"})
        if headers:
            self._session.headers.update(headers)
        self._emulated_seen = is_shared_emulator(self.base_url)
        self._lock = threading.Lock()
        if self._api_key and self.base_url.startswith("http://") and not is_loopback(self.base_url):
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
    ) -> ImageResult:
        """Generate an image from ``prompt``, or edit ``images`` as it says.

        Everything is checked before anything is sent: the prompt, the ratio
        and size for this model, the images (paths, URLs, bytes, PIL images,
        results or history entries), and their total size.

        ``turns`` (Google route only) are the earlier contents of a conversation,
        ``wire.user_turn`` and ``wire.model_turn`` in alternation, sent as they
        are before this prompt: a multi-turn edit. ``Session`` builds them from a
        result's lineage (``%%gemini_image -e REF --multi-turn``).
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
        inputs = [to_image_input(item) for item in _as_list(images)]
        ratio, size = check_options(model, aspect_ratio, image_size, len(inputs))
        spent = inline_size(turns)
        if spent > self.inline_budget:
            raise InputError(
                f"The earlier turns hold {spent / 1e6:.1f} MB of images (as base64), more than the "
                f"{self.inline_budget / 1e6:g} MB a request may carry; edit this image without its earlier "
                "turns (no --multi-turn), which sends it re-encoded to fit."
            )
        inputs = fit_inline_budget(inputs, self.inline_budget - spent)
        if turns and spent + sum(b64_size(item.data) for item in inputs if not item.is_url) > self.inline_budget:
            raise InputError(
                f"The earlier turns hold {spent / 1e6:.1f} MB of images and leave too little of the "
                f"{self.inline_budget / 1e6:g} MB a request may carry for the other images; pass fewer "
                "earlier turns or smaller images."
            )
        if route == "chat":
            body, path = build_chat_body(prompt, model, inputs, ratio, size), CHAT_PATH
        else:
            body, path = build_google_body(prompt, inputs, ratio, size, turns), google_path(model)
        started = time.perf_counter()
        data, payloads = self._load_reply(self._request("POST", path, body), route)
        reply = parse_chat_reply(data, payloads) if route == "chat" else parse_google_reply(data, payloads)
        return _readable(ImageResult(
            originals=reply.images,
            prompt=prompt,
            model=model,
            aspect_ratio=ratio,
            image_size=size,
            text=reply.text,
            finish_reason=reply.finish_reason,
            usage=reply.usage,
            route=route,
            elapsed=time.perf_counter() - started,
            emulated=self.emulated,
            model_parts=reply.model_parts,
            parent_id=_parent_of(inputs),
        ))

    def models(self, image_only: bool = False) -> list[str]:
        """The model ids of ``GET /v1/models``; with ``image_only``, those that make images."""
        return parse_model_ids(self._parse_json(self._request("GET", MODELS_PATH)), image_only=image_only)

    @property
    def emulated(self) -> bool:
        """True when the other end is the built-in emulator (it marks its replies)."""
        return self._emulated_seen

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r}, model={self.model!r}, api_key={mask_key(self._api_key)!r})"

    # -- the one place that sends ---------------------------------------------------------

    def _request(self, method: str, path: str, body: dict | None = None) -> bytes:
        """``_send``, with an interrupt raised afresh here, where no local holds the key: a
        verbose traceback shows the locals of every frame, and those of ``_send`` and the
        libraries below it hold the Authorization header."""
        try:
            return self._send(method, path, body)
        except KeyboardInterrupt:
            raise KeyboardInterrupt("Interrupted while waiting for the gateway.") from None

    def _send(self, method: str, path: str, body: dict | None = None) -> bytes:
        """Send, retrying under one ``GatewayRetry`` budget, and return the reply's body.

        The loop is ours rather than the adapter's because a body that breaks
        off after the headers (a truncated 4K reply) must be retried under the
        same budget, and urllib3 has handed the response over by then.
        """
        url = self.base_url + path
        payload = json.dumps(body).encode("utf-8") if body is not None else None
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        retry = self._retry.new()
        attempts = 0
        while True:
            attempts += 1
            try:
                response = self._session.request(
                    method, url, data=payload, headers=headers, timeout=self.timeout, stream=True
                )
            except requests.exceptions.ConnectionError as exc:  # ConnectTimeout included: retried
                retry = self._next_or_raise(retry, method, url, exc, attempts)
                continue
            except requests.exceptions.Timeout:
                raise self._timeout_error() from None
            except requests.exceptions.RequestException as exc:
                raise GatewayConnectionError(self._scrub(f"The request to {url} failed: {exc}")) from None
            if response.headers.get(EMULATOR_HEADER):
                self._emulated_seen = True
            if response.status_code >= 400:
                if self._should_retry(retry, method, response):
                    _drain(response)
                    retry = retry.increment(method, url, response=response.raw)
                    retry.sleep(response.raw)
                    continue
                raise self._status_error(response, retry, attempts)
            try:
                raw = response.raw.read(decode_content=True)
            except urllib3.exceptions.ReadTimeoutError:
                response.close()
                raise self._timeout_error() from None
            except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
                response.close()
                retry = self._next_or_raise(retry, method, url, exc, attempts, mid_body=True)
                continue
            return raw

    def _should_retry(self, retry: GatewayRetry, method: str, response: requests.Response) -> bool:
        if response.status_code not in RETRY_STATUSES or retry.total is not None and retry.total <= 0:
            return False
        wait = retry.get_retry_after(response.raw)
        if wait is not None and wait > self.max_retry_after:
            return False  # the caller is told how long to wait instead of a silent long block
        return retry.is_retry(method, response.status_code, has_retry_after=wait is not None)

    def _next_or_raise(
        self, retry: GatewayRetry, method: str, url: str, exc: Exception, attempts: int, mid_body: bool = False
    ) -> GatewayRetry:
        reason = _urllib3_reason(exc)
        try:
            retry = retry.increment(method, url, error=reason)
        except (urllib3.exceptions.MaxRetryError, urllib3.exceptions.ProtocolError, type(reason)):
            where = "while the reply was arriving" if mid_body else f"to {self.base_url}"
            raise GatewayConnectionError(
                self._scrub(
                    f"The connection {where} failed after {attempts} attempt{'s' if attempts > 1 else ''} "
                    f"({_short_reason(reason)}); check AIGATE_BASE_URL and the network, then run it again."
                )
            ) from None
        retry.sleep()
        return retry

    def _status_error(self, response: requests.Response, retry: GatewayRetry, attempts: int) -> GatewayError:
        try:
            text = response.raw.read(decode_content=True, amt=1 << 20).decode("utf-8", "replace")
        except (urllib3.exceptions.HTTPError, OSError):
            text = ""
        finally:
            response.close()
        wait = retry.get_retry_after(response.raw)
        error = error_from_body(response.status_code, self._scrub(text), retry_after=wait, attempts=attempts)
        if isinstance(error, RateLimitError) and wait is not None and wait > self.max_retry_after:
            error.message = f"{error.message.rstrip('.; ')}; the gateway asks to wait {wait:.0f} s before trying again."
        return error

    def _timeout_error(self) -> RequestTimeoutError:
        read = self.timeout[1] if isinstance(self.timeout, tuple) else self.timeout
        return RequestTimeoutError(
            f"No complete answer within {read:g} s from {self.base_url}; large images (4K) can take "
            "minutes: raise the read timeout, e.g. Client(timeout=(10, 900)), or ask for a smaller size."
        )

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
            self._scrub(
                f"The gateway's reply is not valid JSON ({len(raw)} bytes, starting {head!r}); "
                "it may have been cut off: run the request again."
            )
        )

    def _scrub(self, text: str) -> str:
        """Never let the key out, even if an upstream message echoes it. (A key of a few
        letters, as tests use, is no secret: masking it would garble every message.)"""
        if self._api_key and len(self._api_key) >= SCRUB_MIN_LENGTH and self._api_key in text:
            text = text.replace(self._api_key, mask_key(self._api_key))
        return text


def _drain(response: requests.Response) -> None:
    """Read a small error body so that the connection goes back to the pool, not closed."""
    try:
        response.content
    except requests.exceptions.RequestException:
        pass
    response.close()


def _check_timeout(timeout: float | tuple[float, float]) -> float | tuple[float, float]:
    values = timeout if isinstance(timeout, tuple) else (timeout,)
    if not all(isinstance(v, (int, float)) and v > 0 for v in values) or len(values) not in (1, 2):
        raise ConfigurationError("timeout must be seconds (> 0) or a (connect, read) pair of them.")
    return timeout


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
            "and ending with a model turn (see aigate_nb.wire.user_turn and model_turn)."
        )
    return turns


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


def _readable(result: ImageResult) -> ImageResult:
    """``result``, once every image's header has been read (no pixels are decoded): bytes
    that are not an image fail here, as one clear error, and not later in the history,
    the display or a save."""
    try:
        result.sizes
    except Exception as exc:  # Pillow raises OSError, SyntaxError, DecompressionBombError, ...
        raise ResponseError(
            f"The gateway sent an image that cannot be read ({type(exc).__name__}); run the request again."
        ) from None
    return result


def _urllib3_reason(exc: Exception) -> Exception:
    """The urllib3 error inside a requests exception, which ``Retry`` classifies."""
    inner = exc.args[0] if exc.args and isinstance(exc.args[0], Exception) else exc
    return getattr(inner, "reason", None) or inner


def _short_reason(reason: Exception) -> str:
    text = str(reason)
    if "Connection refused" in text:
        return "connection refused"
    if "reset" in text.lower():
        return "connection reset"
    if "IncompleteRead" in text or "incomplete" in text.lower():
        return "the reply was cut off"
    return text.split(": ", 1)[-1][:120]
