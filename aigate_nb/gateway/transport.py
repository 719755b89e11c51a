"""Sending one request and getting its reply's bytes: the ``requests.Session``, retries with
backoff or the wait the server asked for, pacing (``pacing.Pacer``), timeouts and the errors of
a failed exchange. The one object that holds the key.

``Client`` prepares requests and reads replies; a transport is where a replay cache or a
recorder can sit between the two (subclass ``HTTPTransport`` and override ``send``).
"""

from __future__ import annotations

import http.client
import json
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from ..core.errors import (
    ConfigurationError,
    GatewayConnectionError,
    QuotaExhausted,
    RateLimitError,
    RequestTimeoutError,
)
from ..version import __version__
from .config import check_api_key, is_loopback, mask_key, mask_secret, normalise_base_url
from .emulated import is_shared_emulator
from .pacing import Pacer
from .wire import error_from_body, retry_delay

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
#: Header with which the built-in emulator marks its replies.
EMULATOR_HEADER = "X-Aigate-Emulator"
#: ``(connect, read)`` seconds: a 4K image can take minutes.
DEFAULT_TIMEOUT = (10.0, 600.0)
DEFAULT_MAX_RETRIES = 2
DEFAULT_RETRY_BACKOFF = 0.5
DEFAULT_MAX_RETRY_AFTER = 60.0
#: The most of an error body that is read: enough for any message, not a page of megabytes.
ERROR_BODY_LIMIT = 1 << 20


class GatewayRetry(Retry):
    """urllib3's ``Retry`` with the conventions of the official SDKs: the first
    retry waits too (0.5 s, doubling, at most 8 s, less up to a quarter of
    jitter), and ``retry-after-ms`` is honoured before ``Retry-After``, then a
    ``google.rpc.RetryInfo`` in the body (Google's 429 carries no header).
    """

    def asked_wait(self, response: urllib3.BaseHTTPResponse, body: str) -> float | None:
        """Seconds the server asked to wait before the next attempt: ``retry-after-ms``,
        ``Retry-After`` (seconds or an HTTP date), else the body's ``retryDelay``; None if none."""
        wait = self.get_retry_after(response)
        return retry_delay(body) if wait is None else wait

    def sleep_before_retry(self, wait: float | None) -> None:
        """Sleep the asked ``wait``; without one (or a zero one), the backoff."""
        if wait:
            time.sleep(wait)
        else:
            self._sleep_backoff()

    def get_backoff_time(self) -> float:
        errors = len(self.history)
        if errors == 0:
            return 0.0
        delay = min(self.backoff_max, self.backoff_factor * 2 ** (errors - 1))
        return delay * (1 - 0.25 * random.random())

    def get_retry_after(self, response: urllib3.BaseHTTPResponse) -> float | None:
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


class Transport(Protocol):
    """What a ``Client`` needs of whatever sends its requests: ``HTTPTransport`` over requests,
    or any object with these members, such as a recorder, a replayer or a test double."""

    base_url: str
    #: Paces every attempt (see ``pacing.Pacer``); settable, e.g. by a batch for its duration.
    pacer: Pacer | None

    @property
    def emulated(self) -> bool:
        """True when the other end is the built-in emulator."""
        ...

    @property
    def has_key(self) -> bool:
        """True when requests carry a key."""
        ...

    @property
    def masked_key(self) -> str:
        """The key as it may be shown (``sk-...abcd``), or ``(none)``."""
        ...

    def send(self, method: str, path: str, body: dict[str, Any] | None = None) -> bytes:
        """Send ``body`` (as JSON) to ``base_url + path`` and return the reply's body, or raise
        the package's typed error (``GatewayError``, ``RequestTimeoutError``, ...)."""
        ...

    def scrub(self, text: str) -> str:
        """``text`` with the key masked, for any string built from what the other end said."""
        ...

    def close(self) -> None: ...


class BearerAuth(AuthBase):
    """Puts ``Authorization: Bearer KEY`` on a request as it is sent, and shows only the masked
    key: the key then sits in no local or argument of the send path's frames, which a verbose
    traceback (``%xmode Verbose``) prints, only in this object and the prepared request inside
    requests. Dropped on a redirect to another host by requests, as a header would be."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = "Bearer " + self._api_key
        return request

    def __repr__(self) -> str:
        return f"BearerAuth({mask_key(self._api_key)})"


class HTTPTransport:
    """Sends requests to ``base_url`` (the gateway or an emulator) and returns the replies' bytes.

    ``timeout`` is seconds, or a ``(connect, read)`` pair. ``max_retries`` counts
    retries after the first attempt, on 408, 409, 429, 5xx and dropped connections;
    a retry waits as long as the server asked (``retry-after-ms``, ``Retry-After``, or
    a Google ``RetryInfo`` in the body), else backs off. An asked wait longer than
    ``max_retry_after`` seconds is reported instead of waited; a 429 for a daily quota
    (``QuotaExhausted``) is never retried. ``headers`` are sent with every request (the
    emulator's fault injection uses them). ``pacer``, shared by the threads that send,
    paces every attempt and hears of each 429 and success (see ``pacing.Pacer``).
    The key goes in the Authorization header and nowhere else.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_backoff: float = DEFAULT_RETRY_BACKOFF,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        headers: Mapping[str, str] | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self._api_key = check_api_key(api_key)
        del api_key  # from here on, a refused argument's verbose traceback shows no key
        self._auth = BearerAuth(self._api_key) if self._api_key else None
        self.base_url = normalise_base_url(base_url)
        self.timeout = _check_timeout(timeout)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(f"max_retries must be a whole number, 0 or more, not {max_retries!r}.")
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        if pacer is not None and not isinstance(pacer, Pacer):
            raise ConfigurationError(f"pacer must be a Pacer, not {type(pacer).__name__}.")
        self.pacer = pacer
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

    @property
    def emulated(self) -> bool:
        """True when the other end is the built-in emulator: the one this process started,
        or any that has marked a reply so far."""
        return self._emulated_seen

    @property
    def has_key(self) -> bool:
        return bool(self._api_key)

    @property
    def masked_key(self) -> str:
        return mask_key(self._api_key)

    def send(self, method: str, path: str, body: dict[str, Any] | None = None) -> bytes:
        """Send ``body`` (as JSON) to ``base_url + path`` and return the reply's body.

        An interrupt is raised afresh here, where no local holds the key: a verbose
        traceback shows the locals of every frame, and those of ``_send`` and the
        libraries below it hold the Authorization header.
        """
        try:
            return self._send(method, path, body)
        except KeyboardInterrupt:
            raise KeyboardInterrupt("Interrupted while waiting for the gateway.") from None

    def scrub(self, text: str) -> str:
        """``text`` with any piece of the key masked, plain or escaped (see ``config.mask_secret``),
        for every string that may echo it: an error body, a model's reply, a message."""
        return mask_secret(text, self._api_key)

    def close(self) -> None:
        self._session.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={mask_key(self._api_key)!r})"

    # -- the loop ---------------------------------------------------------------------------

    def _send(self, method: str, path: str, body: dict | None = None) -> bytes:
        """Send, retrying under one ``GatewayRetry`` budget, and return the reply's body.

        The loop is ours rather than the adapter's because a body that breaks
        off after the headers (a truncated 4K reply) must be retried under the
        same budget, and urllib3 has handed the response over by then; and
        because the wait a Google 429 asks for is in its body.
        """
        url = self.base_url + path
        payload = json.dumps(body).encode("utf-8") if body is not None else None
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        retry = self._retry.new()
        attempts = 0
        while True:
            attempts += 1
            try:
                with self._paced():
                    response, data = self._exchange(method, url, payload, headers)
            except _Dropped as dropped:
                retry = self._next_or_raise(retry, method, url, dropped.reason, attempts, dropped.mid_body)
                continue
            if response.status_code < 400:
                if self.pacer is not None:
                    self.pacer.on_success()
                return data
            text = data.decode("utf-8", "replace")
            wait = retry.asked_wait(response.raw, text)
            # Masked in the words as decoded from the body: a gateway may echo the key JSON-escaped.
            error = scrubbed(error_from_body(response.status_code, text, retry_after=wait, attempts=attempts),
                             self.scrub)
            if self.pacer is not None and response.status_code == 429 and not isinstance(error, QuotaExhausted):
                # A wait beyond the cap is reported, not waited: nobody else is held for it either.
                self.pacer.on_rate_limited(wait if wait is not None and wait <= self.max_retry_after else None)
            if not isinstance(error, QuotaExhausted) and self._should_retry(retry, method, response, wait):
                retry = retry.increment(method, url, response=response.raw)
                retry.sleep_before_retry(wait)
                continue
            if isinstance(error, RateLimitError) and wait is not None and wait > self.max_retry_after:
                error.message = (
                    f"{error.message.rstrip('.; ')}; the gateway asks to wait {wait:.0f} s before trying again."
                )
            raise error

    @contextmanager
    def _paced(self) -> Iterator[None]:
        """One attempt's place among those the pacer lets go, if there is a pacer."""
        if self.pacer is None:
            yield
            return
        with self.pacer:
            yield

    def _exchange(
        self, method: str, url: str, payload: bytes | None, headers: dict[str, str]
    ) -> tuple[requests.Response, bytes]:
        """One attempt: the response and its whole body (an error's first MB); ``_Dropped``
        when the connection failed or the body broke off, which a retry may mend."""
        try:
            response = self._session.request(method, url, data=payload, headers=headers, auth=self._auth,
                                             timeout=self.timeout, stream=True, allow_redirects=False)
        except requests.exceptions.ConnectionError as exc:  # ConnectTimeout included: retried
            raise _Dropped(_urllib3_reason(exc)) from None
        except requests.exceptions.Timeout:
            raise self._timeout_error() from None
        except Exception as exc:  # anything else from below: one line, and none of their frames' locals
            raise GatewayConnectionError(self.scrub(f"The request to {url} failed: {_short_reason(exc)}")) from None
        if response.headers.get(EMULATOR_HEADER):
            self._emulated_seen = True
        if response.is_redirect:
            response.close()
            raise GatewayConnectionError(
                f"The gateway at {self.base_url} answered HTTP {response.status_code}, a redirect, which is not "
                "followed (it could carry the key elsewhere); set AIGATE_BASE_URL to the address it should be."
            )
        if response.status_code >= 400:
            return response, _error_body(response)
        try:
            return response, response.raw.read(decode_content=True)
        except urllib3.exceptions.ReadTimeoutError:
            response.close()
            raise self._timeout_error() from None
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            response.close()
            raise _Dropped(_urllib3_reason(exc), mid_body=True) from None

    def _should_retry(
        self, retry: GatewayRetry, method: str, response: requests.Response, wait: float | None
    ) -> bool:
        if response.status_code not in RETRY_STATUSES or retry.total is not None and retry.total <= 0:
            return False
        if wait is not None and wait > self.max_retry_after:
            return False  # the caller is told how long to wait instead of a silent long block
        return retry.is_retry(method, response.status_code, has_retry_after=wait is not None)

    def _next_or_raise(
        self, retry: GatewayRetry, method: str, url: str, reason: Exception, attempts: int, mid_body: bool = False
    ) -> GatewayRetry:
        try:
            retry = retry.increment(method, url, error=reason)
        except (urllib3.exceptions.MaxRetryError, urllib3.exceptions.ProtocolError, type(reason)):
            where = "while the reply was arriving" if mid_body else f"to {self.base_url}"
            raise GatewayConnectionError(
                self.scrub(
                    f"The connection {where} failed after {attempts} attempt{'s' if attempts > 1 else ''} "
                    f"({_short_reason(reason)}); check AIGATE_BASE_URL and the network, then run it again."
                )
            ) from None
        retry.sleep()
        return retry

    def _timeout_error(self) -> RequestTimeoutError:
        read = self.timeout[1] if isinstance(self.timeout, tuple) else self.timeout
        return RequestTimeoutError(
            f"No complete answer within {read:g} s from {self.base_url}; large images (4K) can take "
            "minutes: raise the read timeout, e.g. Client(timeout=(10, 900)), or ask for a smaller size."
        )


Failure = TypeVar("Failure", bound=BaseException)


def scrubbed(error: Failure, scrub: Callable[[str], str]) -> Failure:
    """``error`` with ``scrub`` (a transport's) applied to every text it carries: each text
    attribute and argument, for an error built from what the other end said."""
    for name, value in vars(error).items():
        if isinstance(value, str):
            setattr(error, name, scrub(value))
    error.args = tuple(scrub(arg) if isinstance(arg, str) else arg for arg in error.args)
    return error


class _Dropped(Exception):
    """An attempt lost its connection, or its reply broke off (``mid_body``): retried if the budget allows."""

    def __init__(self, reason: Exception, mid_body: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.mid_body = mid_body


def _error_body(response: requests.Response) -> bytes:
    """The first MB of an error body; read to its end when shorter, so that the connection
    goes back to the pool rather than being closed."""
    data = bytearray()
    try:
        for chunk in response.iter_content(1 << 16):
            data += chunk
            if len(data) >= ERROR_BODY_LIMIT:
                break
    except (requests.exceptions.RequestException, OSError):
        pass  # what arrived is what there is to read
    finally:
        response.close()
    return bytes(data[:ERROR_BODY_LIMIT])


def _check_timeout(timeout: float | tuple[float, float]) -> float | tuple[float, float]:
    values = timeout if isinstance(timeout, tuple) else (timeout,)
    if not all(isinstance(v, (int, float)) and v > 0 for v in values) or len(values) not in (1, 2):
        raise ConfigurationError("timeout must be seconds (> 0) or a (connect, read) pair of them.")
    return timeout


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
