"""The built-in emulator as this process's gateway when no key or base URL is set: started
once, on a free loopback port, the first time a client needs it, and stopped at exit."""

from __future__ import annotations

import atexit
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..emulator import Emulator

_emulator_lock = threading.Lock()
_emulator: Emulator | None = None


def shared_emulator_url() -> str:
    """Start the in-process emulator once per process (on a free loopback port) and return its URL."""
    global _emulator
    with _emulator_lock:
        if _emulator is None:
            from ..emulator import Emulator  # loaded on first use: a client with a key never needs it

            _emulator = Emulator()
            _emulator.start()
            atexit.register(_emulator.stop)
        return _emulator.url


def is_shared_emulator(url: str) -> bool:
    """True for the URL of the emulator this process started."""
    return _emulator is not None and _emulator.url == url
