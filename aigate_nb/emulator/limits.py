"""Rate limits and a daily quota, so that pacing can be tried against 429s of the real shapes.

``rate_limit="120/min"`` accepts at most 120 generation requests in any 60 seconds (a sliding
window, as per-minute quotas count) and refuses the others with the wait until the window frees;
``daily_quota=N`` accepts N in all, then refuses every other as a used-up per-day quota does.
``style`` is the shape of those 429s: ``"google"`` (a ``google.rpc.QuotaFailure`` and a
``google.rpc.RetryInfo`` in the body, no header, as Gemini sends), ``"openai"`` (``Retry-After``
and ``retry-after-ms`` headers and an OpenAI error body), or None: each route's own shape.
Refused requests count toward neither limit.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from .errors import ApiError

STYLES = ("google", "openai")
#: Seconds in each unit a rate may be given in, and the word Google's quota ids use for it.
_UNITS = {"s": (1, "Second"), "sec": (1, "Second"), "min": (60, "Minute"), "h": (3600, "Hour")}
_RATE = re.compile(r"\s*([0-9]+)\s*/\s*(s|sec|min|h)\s*", re.IGNORECASE)
_QUOTA_METRIC = "generativelanguage.googleapis.com/generate_content_requests"
#: The retryDelay Google sends even with a used-up daily quota: a client must read the QuotaFailure.
DAILY_RETRY_DELAY = "2s"


@dataclass(frozen=True)
class Limits:
    """What the emulator limits; every field None: nothing."""

    rate_limit: str | None = None
    style: str | None = None
    daily_quota: int | None = None

    def __post_init__(self) -> None:
        if self.rate_limit is not None:
            parse_rate_limit(self.rate_limit)
        if self.style is not None and self.style not in STYLES:
            raise ValueError(f"style must be 'google' or 'openai' (or None: each route's own), not {self.style!r}")
        quota = self.daily_quota
        if quota is not None and (isinstance(quota, bool) or not isinstance(quota, int) or quota < 0):
            raise ValueError(f"daily_quota must be a whole number, 0 or more, not {quota!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_rate_limit(text: str) -> tuple[int, float, str]:
    """``"120/min"`` as (120, 60.0, "Minute"); raise ValueError saying how to write it."""
    match = _RATE.fullmatch(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) < 1:
        raise ValueError(f"rate_limit {text!r} is not N/s, N/min or N/h with N a whole number, e.g. '120/min'")
    seconds, word = _UNITS[match.group(2).lower()]
    return int(match.group(1)), float(seconds), word


@dataclass(frozen=True)
class Refusal:
    """A 429 the limits answer with: which limit (``"rate-limit"``, ``"daily-quota"``), the wait
    it asks for (None: none), and the error to send."""

    limit: str
    wait: float | None
    error: ApiError


class Limiter:
    """Counts the generation requests it lets through; safe to use from many threads."""

    def __init__(self, limits: Limits) -> None:
        self._lock = threading.Lock()
        self._limits = limits
        self._window: deque[float] = deque()  # when each request of the current window was let through
        self._used = 0  # requests let through since the limits were set

    @property
    def limits(self) -> Limits:
        return self._limits

    def set(self, limits: Limits) -> None:
        """Limit by ``limits`` from now on, counting from zero."""
        with self._lock:
            self._limits, self._used = limits, 0
            self._window.clear()

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {**self._limits.as_dict(), "used": self._used}

    def admit(self, model: str, google_route: bool) -> Refusal | None:
        """Let one request through (and count it), or say how it is refused."""
        limits = self._limits
        google = limits.style == "google" or limits.style is None and google_route
        with self._lock:
            if limits.daily_quota is not None and self._used >= limits.daily_quota:
                return Refusal("daily-quota", None, _daily_error(limits.daily_quota, model, google))
            if limits.rate_limit is not None:
                count, period, word = parse_rate_limit(limits.rate_limit)
                now = time.monotonic()
                while self._window and self._window[0] <= now - period:
                    self._window.popleft()
                if len(self._window) >= count:
                    # Rounded up to the millisecond, so that a retry after this long is let through.
                    wait = math.ceil((self._window[0] + period - now) * 1000) / 1000
                    return Refusal("rate-limit", wait, _rate_error(count, word, wait, model, google))
                self._window.append(now)
            self._used += 1
        return None


def _rate_error(count: int, word: str, wait: float, model: str, google: bool) -> ApiError:
    unit = word.lower()
    if google:
        return ApiError(
            429,
            f"You exceeded your current quota: at most {count} requests per {unit} for this model. "
            f"Please retry in {_seconds(wait)}s.",
            details=[
                _quota_failure(f"GenerateRequestsPer{word}PerProjectPerModel", count, model),
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{_seconds(wait)}s"},
            ],
            shape="google",
        )
    return ApiError(
        429,
        f"Rate limit reached for requests per {unit}: limit {count}. Please try again in {_seconds(wait)}s.",
        code="rate_limit_exceeded",
        kind="requests",
        headers={"Retry-After": str(math.ceil(wait)), "retry-after-ms": str(math.ceil(wait * 1000))},
        shape="openai",
    )


def _daily_error(quota: int, model: str, google: bool) -> ApiError:
    message = (
        f"You exceeded your current quota: the {quota} requests a day for this model are used up; "
        "the quota resets at midnight Pacific time."
    )
    if google:
        return ApiError(
            429,
            message,
            details=[
                _quota_failure("GenerateRequestsPerDayPerProjectPerModel", quota, model),
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": DAILY_RETRY_DELAY},
            ],
            shape="google",
        )
    return ApiError(429, message, code="insufficient_quota", kind="insufficient_quota", shape="openai")


def _quota_failure(quota_id: str, value: int, model: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [{
            "quotaMetric": _QUOTA_METRIC,
            "quotaId": quota_id,
            "quotaDimensions": {"location": "global", "model": model.removeprefix("google/")},
            "quotaValue": str(value),
        }],
    }


def _seconds(wait: float) -> str:
    """``1.5``, ``58``, ``0.125``: to the millisecond, as Google writes a Duration."""
    return f"{wait:.3f}".rstrip("0").rstrip(".")
