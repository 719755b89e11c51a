"""Fault injection: the failures a test can ask for, by request header, from Python or over HTTP.

``X-Emulator-Fault: KIND[;count=N][;retry-after=S][;retry-after-ms=MS][;delay=S]``. Without
``count`` every attempt fails; with it, only the first N attempts carrying the same header value
and the same body fail, so that a client's retries can be counted.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from .errors import ApiError

STATUS_KINDS = ("429", "500", "502", "503", "504")
NO_IMAGE_KINDS = ("no-image", "image-safety", "prompt-blocked")  # HTTP 200 replies without an image
KINDS = STATUS_KINDS + ("timeout", "reset", "truncate", "html-502", "bad-base64") + NO_IMAGE_KINDS
DEFAULT_TIMEOUT_DELAY = 30.0

# kind: (OpenAI-style message, OpenAI error code, Google-style message). Google wordings are the
# real API's (facts §5.3, §7.2); the OpenAI-side ones follow the OpenAI API's style.
_STATUS_REPLIES = {
    "429": (
        "Rate limit reached for this model: too many requests. Wait and retry.",
        "rate_limit_exceeded",
        "Resource has been exhausted (e.g. check quota).",
    ),
    "500": (
        "The server had an error while processing your request. Sorry about that!",
        None,
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    "502": (
        "Bad gateway: the upstream model provider returned an invalid response. Please retry.",
        "bad_gateway",
        "Bad gateway: the upstream model provider returned an invalid response. Please retry.",
    ),
    "503": (
        "The model is overloaded. Please try again later.",
        "service_unavailable",
        "The model is overloaded. Please try again later.",
    ),
    "504": (
        "The upstream model did not answer in time. Please try again later.",
        "gateway_timeout",
        "Deadline expired before operation could complete.",
    ),
}

HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class Fault:
    """One failure to simulate; ``count`` None means on every attempt (or until cleared)."""

    kind: str
    count: int | None = None
    retry_after: float | None = None
    retry_after_ms: float | None = None
    delay: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; kinds are {', '.join(KINDS)}")
        if self.count is not None and (not isinstance(self.count, int) or self.count < 1):
            raise ValueError(f"count must be a whole number of at least 1, not {self.count!r}")
        for name in ("retry_after", "retry_after_ms", "delay"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or value < 0):
                raise ValueError(f"{name} must be a number of at least 0, not {value!r}")

    @property
    def asked_wait(self) -> float | None:
        """The wait a status fault's headers ask for, as a client reads them (milliseconds first)."""
        if self.retry_after_ms is not None:
            return self.retry_after_ms / 1000
        return self.retry_after

    @property
    def sleep_seconds(self) -> float:
        """How long a ``timeout`` fault holds the reply back."""
        return DEFAULT_TIMEOUT_DELAY if self.delay is None else float(self.delay)

    def as_dict(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if value is not None}


def parse_fault_header(value: str) -> Fault:
    """Parse an ``X-Emulator-Fault`` value; raise ValueError saying what is wrong."""
    kind, *settings = (piece.strip() for piece in value.split(";"))
    options: dict[str, float] = {}
    for setting in settings:
        name, equals, number = (s.strip() for s in setting.partition("="))
        name = name.lower().replace("_", "-")
        if not equals or name not in ("count", "retry-after", "retry-after-ms", "delay"):
            raise ValueError(f"{setting!r} is not one of count=N, retry-after=S, retry-after-ms=MS, delay=S")
        try:
            options[name.replace("-", "_")] = int(number) if name == "count" else float(number)
        except ValueError:
            raise ValueError(f"{setting!r} does not hold a number") from None
    return Fault(kind.lower(), **options)  # type: ignore[arg-type]


def fault_from_json(body: Any) -> Fault:
    """The fault described by a ``POST /emulator/faults`` body."""
    if not isinstance(body, dict) or not isinstance(body.get("kind"), str):
        raise ValueError('send a JSON object such as {"kind": "503", "count": 2}')
    options = {key.replace("-", "_"): value for key, value in body.items()}
    unknown = set(options) - {"kind", "count", "retry_after", "retry_after_ms", "delay"}
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
    options.setdefault("count", 1)
    return Fault(**options)


class FaultBook:
    """Which fault, if any, the next generation request gets; safe to use from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: deque[list[Any]] = deque()  # [fault, attempts left or None]
        self._attempts: dict[tuple[str, str], int] = {}

    def take(self, header: str | None, body_digest: str) -> Fault | None:
        """The fault for this attempt: the header's while it lasts, else the first queued one."""
        with self._lock:
            if header is not None:
                fault = parse_fault_header(header)
                key = (header.strip(), body_digest)
                self._attempts[key] = attempt = self._attempts.get(key, 0) + 1
                if fault.count is None or attempt <= fault.count:
                    return fault
            if not self._queued:
                return None
            entry = self._queued[0]
            if entry[1] is not None:
                entry[1] -= 1
                if entry[1] == 0:
                    self._queued.popleft()
            return entry[0]

    def queue(self, fault: Fault) -> None:
        with self._lock:
            self._queued.append([fault, fault.count])

    def queued(self) -> list[dict[str, Any]]:
        """The faults still waiting, with the attempts each has left."""
        with self._lock:
            return [{**fault.as_dict(), "count": left} for fault, left in self._queued]

    def clear(self) -> None:
        with self._lock:
            self._queued.clear()
            self._attempts.clear()


def fault_error(fault: Fault, google: bool) -> ApiError:
    """The HTTP error a status fault answers with, Retry-After headers included when asked."""
    openai_message, code, google_message = _STATUS_REPLIES[fault.kind]
    headers = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = f"{fault.retry_after:g}"
    if fault.retry_after_ms is not None:
        headers["retry-after-ms"] = f"{fault.retry_after_ms:g}"
    return ApiError(
        int(fault.kind),
        google_message if google else openai_message,
        code=code,
        headers=headers,
    )
