"""Pacing many requests: how many are sent at once and how often, shared by every thread that sends.

A ``Pacer`` given to a ``Client`` (or an ``HTTPTransport``) holds each attempt until it may go: no
more than ``limit`` at once, no sooner than its rate cap allows, and not while the wait a 429 asked
for runs. The transport tells it of every 429 (the limit halves) and every success (after a run of
them the limit grows by one again, up to where it started): additive increase, multiplicative decrease.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable

from ..core.errors import ConfigurationError

#: Seconds in each unit a rate may be given in.
RATE_UNITS = {"s": 1, "sec": 1, "second": 1, "min": 60, "minute": 60, "h": 3600, "hr": 3600, "hour": 3600}
#: Requests per second of the slowest rate taken: one a day.
SLOWEST_RATE = 1 / 86_400
DEFAULT_GROW_AFTER = 10
DEFAULT_COOLDOWN = 1.0
_RATE = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*/\s*([a-z]+)\s*", re.IGNORECASE)


def parse_rate(rate: str) -> float:
    """Requests per second of a rate written ``N/s``, ``N/min`` or ``N/h`` (``"60/min"`` is 1.0)."""
    match = _RATE.fullmatch(rate) if isinstance(rate, str) else None
    unit = match.group(2).lower() if match else ""
    count = float(match.group(1)) if match else 0.0
    if unit not in RATE_UNITS or not 0 < count < math.inf:
        raise ConfigurationError(
            f"rate {rate!r} is not a number of requests per s, min or h; write it as e.g. rate=\"60/min\"."
        )
    if count / RATE_UNITS[unit] < SLOWEST_RATE:  # a tiny rate is a wait of years, or an infinite one
        raise ConfigurationError(f"rate {rate!r} leaves more than a day between requests; give at least 0.05/h.")
    return count / RATE_UNITS[unit]


class Pacer:
    """How many requests go at once, and how often; one object shared by every sending thread.

    ``concurrency`` is how many attempts may be in flight at first; each 429 halves that limit
    (never below 1; at most once per ``cooldown`` seconds, so that a burst of 429s from requests
    sent together counts once), and each run of ``grow_after`` successes adds one, up to
    ``max_concurrency`` (default: ``concurrency``). ``rate`` (``"60/min"``, ``"2/s"``, ``"500/h"``)
    caps how often an attempt may start: one every ``1/rate`` seconds. A 429's asked wait
    (``on_rate_limited(wait)``) holds every attempt not yet started until it has passed.

    ``with pacer:`` is ``acquire()`` then ``release()``. ``clock`` is for tests.
    """

    def __init__(
        self,
        concurrency: int = 4,
        *,
        rate: str | None = None,
        max_concurrency: int | None = None,
        grow_after: int = DEFAULT_GROW_AFTER,
        cooldown: float = DEFAULT_COOLDOWN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        ceiling = concurrency if max_concurrency is None else max_concurrency
        for name, value in (("concurrency", concurrency), ("max_concurrency", ceiling), ("grow_after", grow_after)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be a whole number, 1 or more, not {value!r}.")
        if ceiling < concurrency:
            raise ConfigurationError(
                f"max_concurrency ({ceiling}) is less than concurrency ({concurrency}); raise it or leave it out."
            )
        if isinstance(cooldown, bool) or not isinstance(cooldown, (int, float)) or not 0 <= cooldown < math.inf:
            raise ConfigurationError(f"cooldown must be seconds (0 or more), not {cooldown!r}.")
        self.rate = parse_rate(rate) if rate is not None else None
        self.max_concurrency = ceiling
        self.grow_after = grow_after
        self.cooldown = float(cooldown)
        self._clock = clock
        self._interval = 1 / self.rate if self.rate else 0.0
        self._changed = threading.Condition()
        self._limit = concurrency
        self._in_flight = 0
        self._successes = 0  # in a row, since the limit last changed
        self._last_cut = -math.inf
        self._paused_until = -math.inf
        self._next_start = -math.inf

    @property
    def limit(self) -> int:
        """How many attempts may be in flight now."""
        return self._limit

    @property
    def in_flight(self) -> int:
        """How many attempts hold a place now (sent, or waiting for their start time)."""
        return self._in_flight

    def acquire(self) -> None:
        """Wait for a place among ``limit``, then for this attempt's start time (the rate cap, and
        any wait a 429 asked for); pair with ``release()``."""
        with self._changed:
            while self._in_flight >= self._limit:
                self._changed.wait()
            self._in_flight += 1
            start = max(self._clock(), self._paused_until, self._next_start)
            if self._interval:
                self._next_start = start + self._interval  # starts are handed out in order
        try:
            self._sleep_until(start)
            while (paused := self._pause_end()) > self._clock():  # a 429 meanwhile asked for more
                self._sleep_until(paused)
        except BaseException:
            self.release()  # an interrupted wait gives its place back
            raise

    def release(self) -> None:
        """Give back the place ``acquire()`` took."""
        with self._changed:
            self._in_flight -= 1
            self._changed.notify()

    def on_rate_limited(self, wait: float | None = None) -> None:
        """A 429 came back: halve the limit (unless one already did within ``cooldown`` seconds)
        and hold every attempt not yet started for ``wait`` seconds, when the server asked for one."""
        with self._changed:
            now = self._clock()
            if now - self._last_cut >= self.cooldown:
                self._limit = max(1, self._limit // 2)
                self._last_cut = now
            self._successes = 0
            if wait is not None and wait > 0:
                self._paused_until = max(self._paused_until, now + wait)

    def on_success(self) -> None:
        """An attempt succeeded: after ``grow_after`` in a row, one more may go at once."""
        with self._changed:
            self._successes += 1
            if self._successes >= self.grow_after and self._limit < self.max_concurrency:
                self._limit += 1
                self._successes = 0
                self._changed.notify()

    def __enter__(self) -> Pacer:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        rate = f", at most {self.rate:g}/s" if self.rate else ""
        return f"<Pacer {self._in_flight} in flight, {self._limit} at once (up to {self.max_concurrency}){rate}>"

    def _pause_end(self) -> float:
        with self._changed:
            return self._paused_until

    def _sleep_until(self, moment: float) -> None:
        delay = moment - self._clock()
        if delay > 0:
            time.sleep(delay)
