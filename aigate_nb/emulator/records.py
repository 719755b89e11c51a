"""What the emulator received, kept for tests: one record per request, with no credentials."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .inputs import ImageSummary

CREDENTIAL_HEADERS = ("authorization", "x-goog-api-key")
_SUMMARISE_ABOVE = 256  # characters; shorter strings (thought signatures, prompts) stay as sent


@dataclass
class RecordedRequest:
    """One request as received, and how the emulator answered it.

    A generation attempt is recorded as soon as it is understood, before any latency or
    ``timeout`` fault holds it back, so that a test can count attempts still in flight; its
    ``status`` is filled in just before the reply is written.

    A 429 of the emulator's limits has ``status`` 429 and names its ``limit``; ``retry_after`` is
    the wait a 429 or a status fault asked for, so that a test can check a retry came after it.

    ``started`` and ``finished`` are ``time.monotonic()`` readings of when the emulator began
    handling the request and when it settled the outcome, so that a test can tell which requests
    it was handling at the same time without timing anything itself (a loaded machine makes every
    request slower, but cannot make requests sent one after another overlap).
    """

    method: str
    path: str
    query: dict[str, list[str]]  # without any ``key`` parameter
    headers: dict[str, str]  # lower-cased names, without Authorization or x-goog-api-key
    body: Any  # the parsed JSON, each base64 image replaced by a short summary; None if not JSON
    prompt: str | None  # the prompt, once the request was understood
    model: str | None
    images: tuple[ImageSummary, ...]  # the input images used, as decoded
    fault: str | None  # the fault kind applied, if any
    status: int | None = None  # None: no reply sent (yet; or ever, after a reset or a stop)
    limit: str | None = None  # "rate-limit" or "daily-quota": the limit that answered it with a 429
    retry_after: float | None = None  # seconds the reply asked the client to wait (a limit's or a fault's)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None  # None: still being handled (or it broke off before an outcome)


def summarize_body(value: Any, key: str | None = None) -> Any:
    """The JSON body with long base64 payloads (data URLs, inlineData.data) replaced by summaries."""
    if isinstance(value, dict):
        return {name: summarize_body(inner, name) for name, inner in value.items()}
    if isinstance(value, list):
        return [summarize_body(inner, key) for inner in value]
    if isinstance(value, str) and len(value) > _SUMMARISE_ABOVE:
        if value.startswith("data:"):
            head = value.partition(",")[0]
            return f"{head},<{len(value) - len(head) - 1} base64 characters>"
        if key == "data":
            return f"<{len(value)} base64 characters>"
    return value


class RequestLog:
    """A list of records that many handler threads append to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RecordedRequest] = []

    def append(self, record: RecordedRequest) -> None:
        with self._lock:
            self._records.append(record)

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
