"""Constants and helpers shared by the test modules (import as ``from support import ...``)."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: The key the shared emulator checks; distinctive so a leak is easy to find.
TEST_KEY = "sk-test-7f3a9c1e5b2d4f6a8c0e"
#: The model ids the tests name most: the default, the pro model, and an older one.
FLASH = "google/gemini-3.1-flash-image-preview"
PRO = "google/gemini-3-pro-image"
OLD = "google/gemini-2.5-flash-image"
REPO = Path(__file__).resolve().parents[1]


def wait_for(condition: Callable[[], T], timeout: float = 10.0, interval: float = 0.02) -> T:
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def max_in_flight(records: Iterable[Any]) -> int:
    """The most of these emulator records that the emulator was handling at one moment.

    Read from the emulator's own ``started``/``finished`` stamps: load slows every request but
    cannot make requests sent one after another overlap, as it can break a wall-clock ratio.
    A record with no ``finished`` yet counts as still in flight.
    """
    edges = sorted(
        edge
        for record in records
        for edge in ((record.started, 1), (math.inf if record.finished is None else record.finished, -1))
    )
    in_flight = most = 0
    for _, step in edges:  # at a tie an end (-1) sorts first: one ending as another starts is no overlap
        in_flight += step
        most = max(most, in_flight)
    return most


@contextmanager
def emulator_command(*args: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """``python -m aigate_nb.emulator ARGS`` run from the repository: the process and the base
    URL its first line printed; killed at the end if it is still running."""
    process = subprocess.Popen(
        [sys.executable, "-m", "aigate_nb.emulator", *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines = []
        reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=20)
        assert lines and lines[0].startswith("http://127.0.0.1:"), lines
        yield process, lines[0].strip()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def make_story(client: Any, history: Any) -> None:
    """[0] a door, [1] its night edit, [2] [3] [4] three edits of [1] (a fork), [5] [6] [7] a
    chain on the Google route, [8] [9] [10] others, one by another model."""

    def add(prompt, source=None, **options):
        images = [history[source]] if source is not None else None
        return history.append(client.generate(prompt, images=images, **options))

    add("a red door in a white wall, morning light", aspect_ratio="3:2", image_size="1K")
    add("make it night", 0)
    add("add falling snow", 1)
    add("add a black cat on the step", 1)
    add("paint the door blue", 1)
    add("a lighthouse at dusk, oil painting", route="google", aspect_ratio="16:9", image_size="1K")
    add("add a full moon", 5, route="google")
    add("now add a small boat", 6, route="google")
    add("an indoor garden with a Café sign", model="google/gemini-3-pro-image")
    add("红色的门 in the snow")
    add("the doors of a red barn")
