"""A least-recently-used cache of rendered pictures, bounded by their total size."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from .render import Rendered

DEFAULT_BUDGET = 256 * 1024 * 1024


class RenderCache:
    """Rendered pictures by request content, so that repeating a request costs no drawing."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self._budget = budget
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, Rendered] = OrderedDict()
        self._size = 0

    def get_or_render(self, key: Hashable, make: Callable[[], Rendered]) -> Rendered:
        """The cached picture for ``key``, or ``make()``'s, kept if it fits the budget."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        # Drawn outside the lock: two threads asking for the same new picture both draw it,
        # which is cheaper than making every other request wait.
        rendered = make()
        with self._lock:
            if key not in self._entries and rendered.nbytes <= self._budget:
                self._entries[key] = rendered
                self._size += rendered.nbytes
                while self._size > self._budget:
                    _, evicted = self._entries.popitem(last=False)
                    self._size -= evicted.nbytes
        return rendered
