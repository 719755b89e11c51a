"""The previews a history keeps in ``thumbs/``: the gallery's thumbnail of each entry and the
report's larger previews, each image decoded once for all its sizes. An appended entry's are
made just after, by one background thread a process (``ThumbnailMaker``); an entry written
before is given them on first use (``thumbnail``)."""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING

from ..core import history_files
from ..core.errors import HistoryError
from ..core.images import make_thumbnails
from ..core.text import one_line
from .layout import PREVIEW_EDGE, THUMBNAIL_EDGE

if TYPE_CHECKING:  # the store hands its entries here; this module never makes a history
    from .store import History, HistoryEntry


def thumbnail(history: History, entry: HistoryEntry, long_edge: int = THUMBNAIL_EDGE, image: int = 0) -> bytes:
    """A JPEG of ``entry``'s image ``image``, ``long_edge`` pixels on its long side at most:
    read from ``thumbs/``, or made now with the image's other kept sizes from the same decode."""
    try:
        return history_files.read_file(history.folder, thumbnail_path(entry.id, long_edge, image))
    except FileNotFoundError:
        pass
    edges = [long_edge] + [edge for edge in _kept_edges(image) if edge != long_edge
                           and not _has_thumbnail(history, entry.id, edge, image)]
    original = entry.originals[image]
    try:
        made = dict(zip(edges, make_thumbnails(original.data, edges)))
    except HistoryError:
        raise
    except Exception as exc:  # Pillow raises OSError, ValueError, SyntaxError, DecompressionBombError...
        raise HistoryError(
            f"The image file {original.path} cannot be decoded ({one_line(str(exc), 120) or type(exc).__name__}); "
            "it is cut off or not an image: run the request again to make it anew."
        ) from None
    _keep_thumbnails(history, entry.id, image, made)
    return made[long_edge]


def thumbnail_path(entry_id: str, long_edge: int, image: int) -> str:
    """Where the thumbnail is, inside the history folder."""
    gallery = (long_edge, image) == (THUMBNAIL_EDGE, 0)
    return "thumbs/" + (f"{entry_id}.jpg" if gallery else f"{entry_id}-{image + 1}-{long_edge}.jpg")


def _has_thumbnail(history: History, entry_id: str, long_edge: int, image: int) -> bool:
    return history_files.is_file(history.folder, thumbnail_path(entry_id, long_edge, image))


def _kept_edges(image: int) -> tuple[int, ...]:
    """The long edges ``thumbs/`` keeps of an entry's image ``image``: the report's preview of
    each, and the gallery's thumbnail of the first."""
    return (PREVIEW_EDGE, THUMBNAIL_EDGE) if image == 0 else (PREVIEW_EDGE,)


def _make_kept_thumbnails(history: History, entry_id: str) -> None:
    """Make the sizes ``thumbs/`` keeps of each image of entry ``entry_id`` that are not there
    yet, one decode an image (the thumbnail thread's work)."""
    entry = history._entry_with_id(entry_id)
    if entry is None:
        return  # cleared meanwhile
    for k, original in enumerate(entry.originals):
        edges = [edge for edge in _kept_edges(k) if not _has_thumbnail(history, entry_id, edge, k)]
        if not edges:
            continue
        made = dict(zip(edges, make_thumbnails(original.data, edges)))
        if not _keep_thumbnails(history, entry_id, k, made):
            return


def _keep_thumbnails(history: History, entry_id: str, image: int, made: dict[int, bytes]) -> bool:
    """Write ``made`` (long edge -> JPEG) to ``thumbs/`` if the entry is still in the history;
    False if it is not (a clear, by any kernel, ran while they were made), or the folder
    is read-only (the gallery still shows, just without the cache)."""
    return history._write_for_entry(entry_id, {thumbnail_path(entry_id, edge, image): data
                                               for edge, data in made.items()})


class ThumbnailMaker:
    """One daemon thread a process that makes each appended entry's thumbnail and previews
    once, so that neither the gallery nor the report decodes the original again. ``add``
    returns at once; the thread starts on the first entry and works one entry at a time.

    It keeps the kernel's CPU priority on purpose: its work is Pillow's, done without the
    interpreter's lock, but it takes that lock between steps, and a thread with a lower
    ``nice`` value that the OS sets aside while holding it stalls the kernel's own thread
    (appends on a loaded machine waited up to 0.4 s with ``nice`` +5, 0.04 s without)."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[History, str]] = queue.Queue()
        self._start = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, history: History, entry_id: str) -> None:
        self._jobs.put((history, entry_id))
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="aigate-thumbnails", daemon=True)
                self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """True once every entry added so far has been worked on; False after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._jobs.all_tasks_done:
            while self._jobs.unfinished_tasks:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._jobs.all_tasks_done.wait(left)
        return True

    def _run(self) -> None:
        while True:
            history, entry_id = self._jobs.get()
            try:
                _make_kept_thumbnails(history, entry_id)
            except Exception:  # a cache: whatever fails here is made again on first use
                pass
            finally:
                self._jobs.task_done()


#: The process's thumbnail thread, shared by every history.
MAKER = ThumbnailMaker()
