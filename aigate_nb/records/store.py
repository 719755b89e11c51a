"""The per-notebook history: every result, its prompt and settings, and what it
was edited from, kept on disk so that a kernel restart loses nothing.

One folder per notebook under the history dir, laid out as layout.py says: the index
(``index.jsonl``, one JSON object per line, appended to), the requests charged without a
picture (``attempts.jsonl``, likewise), each image's original bytes under ``images/``, and
the folders a clear empties with them. This module keeps the index, its locks and the entries
read from it; the previews are thumbnails.py's, the gallery gallery.py's.

Nothing in it is followed through a symbolic link (``history_files.py``): a folder that
holds one where its own files should be is refused, naming the link.

Images are written first (temporary name, then ``os.replace``), then the
index line with one ``write`` on an ``O_APPEND`` descriptor and an ``fsync``:
a kernel killed mid-write loses at most the entry being written. An appended
entry's thumbnail and previews are made just after, on a background thread
(``thumbnails.ThumbnailMaker``); an entry written before is given them on first use.
"""

from __future__ import annotations

import bisect
import errno
import json
import os
import re
import secrets
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, overload

from ..core import history_files
from ..core.errors import HistoryError
from ..core.images import ReplyImage, StoredImage, extension_for
from ..core.results import Attempt, ImageResult
from ..core.text import clip, counted
from . import browse, journal, thumbnails
from .browse import PAGE_SIZE, LineageTree, Page
from .entry import HistoryEntry
from .gallery import gallery_html
from .layout import ATTEMPTS_FILE, ENTRY_FOLDERS, INDEX_FILE, LAYOUT, THUMBNAIL_EDGE
from .names import notebook_name, notebook_stem, safe_folder_name
from .spending import Spending, summarize

#: How much of the index's start is kept to notice that it was cleared and written anew.
HEAD_BYTES = 64
#: A temporary file this old is what a killed writer left behind.
STALE_TEMPORARY_SECONDS = 3600


class History:
    """One notebook's results, in the order they were made, kept on disk.

    ``History()`` finds the notebook from the environment (see
    ``notebook_name``) and the folder from ``AIGATE_HISTORY_DIR`` (default
    ``.aigate`` in the working directory), and loads what is already there.
    ``h[3]``, ``h[-1]``, ``h.get("3")`` or ``h.get(entry_id)`` find an entry;
    ``h.append(result)`` adds one. Safe to use from several threads; several
    processes on the same notebook are serialised by a file lock where the
    platform has one.
    """

    def __init__(self, name: str | None = None, root: str | os.PathLike | None = None) -> None:
        if name and name.lower().endswith(".ipynb"):
            name = notebook_stem(name)
        self.name = (safe_folder_name(name) if name else None) or notebook_name()
        if root is None:
            from ..gateway.config import load_settings

            root = load_settings().history_dir or ".aigate"
        self.folder = Path(os.path.abspath(os.path.expanduser(os.fspath(root)))) / self.name
        self._lock = threading.RLock()
        self._forget()
        history_files.refuse_links(self.folder, LAYOUT)
        self._read_index()
        self._sweep_temporary_files()

    def _sweep_temporary_files(self) -> None:
        """Remove the temporary files of writes that never finished (a kernel killed
        mid-write). A write takes well under a second, so one left for an hour is dead."""
        cutoff = time.time() - STALE_TEMPORARY_SECONDS
        for folder in ("images", "thumbs"):
            try:
                history_files.remove_files(
                    self.folder, folder, keep_folder=True,
                    which=lambda name, status: name.startswith(".") and name.endswith(".tmp")
                    and status.st_mtime < cutoff,
                )
            except (OSError, HistoryError):
                continue  # nothing there, unreadable or read-only: leftovers do no harm

    def _forget(self) -> None:
        """Hold no entries, as before the index was first read."""
        self._entries: list[HistoryEntry] = []
        self._by_id: dict[str, HistoryEntry] = {}
        self._by_hash: dict[str, list[HistoryEntry]] = {}  # request hash -> its entries, oldest first
        self._by_index: dict[int, HistoryEntry] = {}
        self._missing: dict[int, Path] = {}  # index -> the file that is gone
        self._known_ids: set[str] = set()
        self._next_index = 0
        self._offset = 0  # bytes of the index consumed so far
        self._line = 0  # complete lines consumed so far
        self._head = b""  # the index's first bytes when it was read from the start
        self._stamp: tuple[int, int, int] | None = None  # the index's inode, size and mtime when last read
        self._warned: set[Any] = set()  # damaged lines already reported: index offsets, attempts' (number, line)

    @classmethod
    def for_notebook(cls, user_ns: Mapping[str, Any] | None, root: str | os.PathLike | None = None) -> History:
        """The history of the notebook whose kernel namespace is ``user_ns`` (see ``notebook_name``)."""
        return cls(notebook_name(user_ns), root)

    @property
    def index_path(self) -> Path:
        return self.folder / INDEX_FILE

    # -- lookups ----------------------------------------------------------------------------

    def __len__(self) -> int:
        self._catch_up()
        return len(self._entries)

    def __iter__(self) -> Iterator[HistoryEntry]:
        self._catch_up()
        with self._lock:
            return iter(list(self._entries))

    @overload
    def __getitem__(self, i: int) -> HistoryEntry: ...
    @overload
    def __getitem__(self, i: slice) -> list[HistoryEntry]: ...

    def __getitem__(self, i: int | slice) -> HistoryEntry | list[HistoryEntry]:
        """Entry ``i`` as numbered in captions (``[3]``); negative counts back from the newest.
        A slice gives a list of entries, by position (``h[-3:]``: the newest three)."""
        self._catch_up()
        if isinstance(i, slice):
            with self._lock:
                return self._entries[i]
        return self._numbered(i)

    def _numbered(self, i: object) -> HistoryEntry:
        """Entry ``i`` as numbered in captions, or negative from the newest (``__getitem__``)."""
        if not isinstance(i, int) or isinstance(i, bool):
            raise HistoryError(
                f"history[...] takes an index (0, 3, -1) or a slice, not a {type(i).__name__}; "
                "history.get(...) also takes an entry's id."
            )
        with self._lock:
            if i < 0:
                if -i <= len(self._entries):
                    return self._entries[i]
            elif i in self._by_index:
                return self._by_index[i]
            elif i in self._missing:
                raise HistoryError(
                    f"History entry {i} cannot be used: its image file {self._missing[i]} is missing; "
                    f"{self._what_exists()}"
                )
            raise HistoryError(f"No history entry {i}; {self._what_exists()}")

    def get(self, ref: int | str | HistoryEntry) -> HistoryEntry:
        """An entry from an index (``3``, ``-1``, ``"3"``, ``"-1"``) or an entry id."""
        self._catch_up()
        if isinstance(ref, (HistoryEntry, ImageResult)) and ref.id is not None:
            ref = ref.id
        if isinstance(ref, str):
            text = ref.strip()
            with self._lock:
                if text in self._by_id:  # first: an id may be all digits (secrets.token_hex)
                    return self._by_id[text]
            if re.fullmatch(r"[+-]?\d{1,18}", text):  # longer is no index (nor readable as one)
                return self._numbered(int(text))
            raise HistoryError(f"No history entry with id {text!r}; {self._what_exists()}")
        return self._numbered(ref)

    def lineage(self, ref: int | str | HistoryEntry) -> list[HistoryEntry]:
        """The chain of edits that led to ``ref``: its first ancestor first, ``ref`` last."""
        entry = self.get(ref)
        chain = [entry]
        seen = {entry.id}
        with self._lock:
            while chain[-1].parent in self._by_id and chain[-1].parent not in seen:
                seen.add(chain[-1].parent)
                chain.append(self._by_id[chain[-1].parent])
        return chain[::-1]

    def children(self, ref: int | str | HistoryEntry) -> list[HistoryEntry]:
        """The entries edited from ``ref``, oldest first: two or more make a fork. With
        ``entry.parent`` (the id of what it was edited from) it walks the lineage both ways."""
        entry = self.get(ref)
        with self._lock:
            return browse.children_of(self._entries, entry)

    def tree(self) -> LineageTree:
        """The lineage of every entry as a tree: each first picture a root, each edit under the
        entry it was edited from. Iterate it for the roots (``node.entry``, ``node.children``),
        ``walk()`` it for every node with its depth; its repr draws it."""
        return browse.build_tree(list(self))

    def search(self, text: str) -> list[HistoryEntry]:
        """The entries whose prompt, model or number hold every word of ``text``, oldest first:
        ``h.search("red door")``, ``h.search('"red door" flash')`` (a quoted phrase is one
        term). Case and accents are ignored; a word must start a word of the prompt."""
        return self.filter(text=text)

    def filter(
        self,
        *,
        text: str | None = None,
        model: str | None = None,
        since: datetime | date | timedelta | str | None = None,
        until: datetime | date | str | None = None,
        route: str | None = None,
    ) -> list[HistoryEntry]:
        """The entries that pass every filter given, oldest first.

        ``text``: words of the prompt, as ``search``; ``model``: a model id or a part of one
        (``"flash"``, ``"gemini-3-pro-image"``); ``since`` and ``until``: a datetime (naive ones
        are local time), a date (from its start, until its end), an ISO string, or for ``since``
        a timedelta back from now (``timedelta(hours=1)``); ``route``: ``"chat"`` or ``"google"``.
        """
        return browse.filter_entries(list(self), text=text, model=model, since=since, until=until, route=route)

    def page(
        self,
        number: int = 0,
        size: int = PAGE_SIZE,
        *,
        entries: list[HistoryEntry] | None = None,
        newest_first: bool = True,
    ) -> Page:
        """Page ``number`` (from 0; -1 is the last) of a gallery of ``size`` entries a page,
        newest first unless ``newest_first=False``: of the whole history, or of ``entries``
        (what ``search`` or ``filter`` found). A number past the end gives the last page."""
        return browse.page_of(list(self) if entries is None else entries, number, size, newest_first)

    def export_html(self, path: str | os.PathLike, full_size: bool = False) -> Path:
        """Write the whole history as one self-contained HTML file and return its path: every
        entry with its preview, prompt, settings and lineage, a search box and the lineage as a
        tree; it opens from disk in any browser, with no server and no network. Previews keep
        it small (at most 300 KB an entry); ``full_size=True`` embeds the original images too."""
        from .report import write_report

        return write_report(self, path, full_size=full_size)

    def ids(self) -> set[str]:
        """The ids of the entries held now."""
        self._catch_up()
        with self._lock:
            return set(self._by_id)

    def stamp(self) -> tuple[str, int, str | None]:
        """A value that changes when the entries do (an append or a clear, by any kernel on this
        notebook): compare two to tell whether to look again. One ``stat`` when nothing changed."""
        self._catch_up()
        with self._lock:
            return str(self.folder), len(self._entries), self._entries[-1].id if self._entries else None

    def find(self, request_hash: str) -> list[HistoryEntry]:
        """The entries made by requests with this ``request_hash`` (see ``prepared.request_hash``),
        oldest first: the pictures this notebook already has for that request."""
        self._catch_up()
        with self._lock:
            return list(self._by_hash.get(request_hash, ()))

    def usage(self) -> Spending:
        """What this history's results, and its requests charged without a picture (``attempts``),
        used and cost: by model, by day and in all (``spending.py``)."""
        return summarize([*self, *self.attempts()], [self.name])

    @property
    def attempts_path(self) -> Path:
        return self.folder / ATTEMPTS_FILE

    def attempts(self) -> list[Attempt]:
        """The requests that were charged but made no picture, oldest first (``record_attempt``).
        A damaged line is skipped with one warning."""
        try:
            data = history_files.read_file(self.folder, ATTEMPTS_FILE)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise HistoryError(
                f"Cannot read {self.attempts_path} ({exc.strerror or exc}); "
                "check the file and its folder's permissions."
            ) from None
        found = []
        for number, raw in enumerate(data.split(b"\n"), start=1):
            if not raw.strip():
                continue
            try:
                found.append(Attempt.from_record(json.loads(raw)))
            except (ValueError, RecursionError) as exc:
                why = str(exc) if not isinstance(exc, json.JSONDecodeError) and str(exc) else "it is damaged"
                self._skip((number, raw), number, why, self.attempts_path)
        return found

    def record_attempt(self, attempt: Attempt) -> Attempt:
        """Keep ``attempt``, a request charged without making a picture, in ``attempts.jsonl``:
        counted in what this history spent, never shown or replayed as a picture. Returns it
        as kept (with the time it was made)."""
        kept = replace(attempt, created=datetime.now().astimezone().isoformat(timespec="seconds"))
        with self._lock, self._locked_index():  # a clear, by any kernel, waits for it
            try:
                fd = history_files.open_file(self.folder, ATTEMPTS_FILE, os.O_RDWR | os.O_APPEND | os.O_CREAT)
                try:
                    journal.append_record(fd, kept.to_record())
                finally:
                    os.close(fd)
            except OSError as exc:
                raise HistoryError(
                    f"Cannot write {self.attempts_path} ({exc.strerror or exc}); "
                    "set AIGATE_HISTORY_DIR to a folder you can write to."
                ) from None
        return kept

    def _what_exists(self) -> str:
        indices = sorted(self._by_index)
        if not indices:
            return "this notebook's history is empty; generate an image first."
        runs: list[list[int]] = []
        for i in indices:
            if runs and i == runs[-1][1] + 1:
                runs[-1][1] = i
            else:
                runs.append([i, i])
        spans = [f"{a}" if a == b else f"{a} to {b}" for a, b in runs]
        word = "entry" if len(indices) == 1 else "entries"
        return f"this notebook's history has {word} {' and '.join(spans)}."

    # -- appending --------------------------------------------------------------------------

    def append(self, result: ImageResult, parent: int | str | HistoryEntry | ImageResult | None = None) -> HistoryEntry:
        """Keep ``result``: its images under ``images/``, then one index line.

        ``parent`` (an entry, a result from this history, an index or an id)
        overrides ``result.parent_id``. Sets ``result.id``, ``.index``,
        ``.files`` and ``.parent_index``, so its caption shows ``[n]``.
        Appending a result that is already here returns its entry.
        """
        if not result.originals:
            raise HistoryError("This result holds no image, so there is nothing to keep in the history.")
        with self._lock:
            if result.id is not None and result.id in self._by_id:
                return self._by_id[result.id]
        parent_id = self._parent_id(parent) if parent is not None else result.parent_id
        entry_id = secrets.token_hex(6)
        try:
            names = self._write_images(entry_id, result.originals)
        except FileNotFoundError:
            names = []  # the folder went away mid-write (a clear): written again under the lock below
        except OSError as exc:
            raise self._unwritable(exc) from None
        kept = replace(result, id=entry_id, parent_id=parent_id, index=None, parent_index=None,
                       created=datetime.now().astimezone().isoformat(timespec="seconds"))
        record = kept.to_record(names)
        with self._lock, self._locked_index() as fd:
            if not names or not all(history_files.is_file(self.folder, name) for name in names):
                # A clear() ran between writing the images and taking the lock: the images are
                # still in memory, so they are written again and the entry stays whole.
                try:
                    names = self._write_images(entry_id, result.originals)
                except OSError as exc:
                    raise self._unwritable(exc) from None
                record["files"] = names
            self._read_new_lines(fd)
            record["index"] = self._next_index
            parent_entry = self._by_id.get(parent_id) if parent_id else None
            record["parent_index"] = parent_entry.index if parent_entry else None
            try:
                journal.append_record(fd, record)
            except OSError as exc:
                raise HistoryError(
                    f"Cannot write the history index {self.index_path} ({exc.strerror or exc}); "
                    "set AIGATE_HISTORY_DIR to a folder you can write to."
                ) from None
            self._read_new_lines(fd)
            entry = self._by_id.get(entry_id)
        if entry is None:
            raise HistoryError(
                f"The entry just written to {self.index_path} cannot be read back; its image files are gone."
            )
        thumbnails.MAKER.add(self, entry.id)
        stored = entry._kept
        result.id, result.index, result.parent_id = entry.id, entry.index, entry.parent_id
        result.created = entry.created
        result.parent_index, result.files = entry.parent_index, list(stored.files)
        result.originals = list(stored.originals)
        return entry

    def _unwritable(self, exc: OSError) -> HistoryError:
        return HistoryError(
            f"Cannot write the history's images in {self.folder} ({exc.strerror or exc}); "
            "set AIGATE_HISTORY_DIR to a folder you can write to."
        )

    def _parent_id(self, parent: int | str | HistoryEntry | ImageResult) -> str:
        if isinstance(parent, ImageResult):
            if parent.id is None:
                raise HistoryError("The parent result is not in a history; append it first, then its edits.")
            return parent.id
        if isinstance(parent, HistoryEntry):
            return parent.id
        return self.get(parent).id

    def _write_images(self, entry_id: str, originals: Sequence[ReplyImage | StoredImage]) -> list[str]:
        names = []
        for k, item in enumerate(originals, start=1):
            name = f"images/{entry_id}-{k}{extension_for(item.mime)}"
            history_files.write_atomically(self.folder, name, item.data)
            names.append(name)
        return names

    @contextmanager
    def _locked_index(self) -> Iterator[int]:
        """The index file open for appending, locked against other processes."""
        try:
            fd = history_files.open_file(self.folder, INDEX_FILE, os.O_RDWR | os.O_APPEND | os.O_CREAT)
        except OSError as exc:
            raise HistoryError(
                f"Cannot open the history index {self.index_path} ({exc.strerror or exc}); "
                "set AIGATE_HISTORY_DIR to a folder you can write to."
            ) from None
        try:
            journal.lock(fd)
            yield fd
        finally:
            os.close(fd)  # closing releases the lock

    # -- loading ----------------------------------------------------------------------------

    def _read_index(self) -> None:
        # self._lock first, then the file lock, in the order append and clear take them:
        # the other order deadlocks a lookup against an append in this process.
        with self._lock:
            try:
                fd = history_files.open_file(self.folder, INDEX_FILE, os.O_RDONLY)
            except FileNotFoundError:
                return
            except OSError as exc:
                raise self._unreadable(exc) from None
            try:
                journal.lock(fd, shared=True)  # no half-written line from a writer mid-append
                self._read_new_lines(fd)
            except OSError as exc:  # opened but not readable: a folder where the index should be
                raise self._unreadable(exc) from None
            finally:
                os.close(fd)

    def _unreadable(self, exc: OSError) -> HistoryError:
        return HistoryError(
            f"Cannot read the history index {self.index_path} ({exc.strerror or exc}); "
            "set AIGATE_HISTORY_DIR to a folder you can write to."
        )

    def reload(self) -> None:
        """Read now what another process (a second kernel on this notebook) appended; lookups
        also do it by themselves."""
        self._read_index()

    def move_to(self, folder: str | os.PathLike) -> None:
        """Rename this history's folder to ``folder``, which must not exist yet, and go on
        there: entries keep their numbers and ids and are read from the new place. Results
        made before and still held in variables point at the old files."""
        target = Path(os.path.abspath(os.path.expanduser(os.fspath(folder))))
        with self._lock:
            try:
                if target.exists():
                    raise FileExistsError(errno.EEXIST, "something is already there")
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(self.folder, target)
            except OSError as exc:
                raise HistoryError(
                    f"Cannot move the history {self.folder} to {target} ({exc.strerror or exc}); "
                    "it stays where it is."
                ) from None
            self.folder, self.name = target, target.name
            self._forget()
            self._read_index()

    def _catch_up(self) -> None:
        """Before a lookup: take in what another kernel on this notebook appended or cleared
        since the last read. One ``stat`` when nothing changed."""
        try:
            stamp = journal.stamp(os.lstat(self.index_path))
        except FileNotFoundError:
            stamp = None
        except OSError:
            return
        if stamp == self._stamp:
            return
        if stamp is None:  # the index is gone (the folder deleted by hand): so are its entries
            with self._lock:
                if not self.index_path.exists():  # still gone: no append made it since the stat
                    self._forget()
            return
        try:
            self._read_index()
        except HistoryError:
            pass  # unreadable just now: the entries read before stay, and append says why

    def clear(self) -> int:
        """Remove every entry of this history and the folders of what they made (``ENTRY_FOLDERS``
        in layout.py: their images, previews and batch manifests); returns how many entries there
        were. Numbering starts again at 0. Other histories are left alone, and so are files saved
        elsewhere (``.save(path)``, ``-o``, a manifest named by hand); results still held in
        variables lose their full-size images (their ``.data`` then says so)."""
        if not self.folder.exists():
            with self._lock:
                self._forget()
            return 0
        history_files.refuse_links(self.folder, LAYOUT)  # before anything is removed
        with self._lock, self._locked_index() as fd:
            self._read_new_lines(fd)
            count = len(self._entries) + len(self._missing)
            try:
                os.ftruncate(fd, 0)
                os.fsync(fd)
                journal.truncate(self.folder, ATTEMPTS_FILE)
            except OSError as exc:
                raise HistoryError(
                    f"Cannot clear the history index {self.index_path} ({exc.strerror or exc}); "
                    "nothing was removed. Check that you may write there."
                ) from None
            self._forget()
            for folder in ENTRY_FOLDERS:
                try:
                    history_files.remove_files(self.folder, folder)
                except OSError as exc:
                    raise HistoryError(
                        f"The history is empty now, but some of its files in {self.folder / folder} "
                        f"could not be removed ({exc.strerror or exc}); delete that folder yourself."
                    ) from None
        return count

    def _read_new_lines(self, fd: int) -> None:
        """Read the index from where the last read stopped and take in each complete line.

        A last line without its newline is read too (and read again once a
        later append closes it); damaged lines are reported once and skipped.
        """
        if self._offset and self._index_replaced(fd):
            self._forget()  # cleared (here or by another kernel) since the last read: start over
        data = journal.read_from(fd, self._offset)
        pos = 0
        while pos < len(data):
            end = data.find(b"\n", pos)
            complete = end != -1
            raw = data[pos:end] if complete else data[pos:]
            offset, number = self._offset + pos, self._line + 1
            if raw.strip():
                self._take_line(raw, offset, number)
            if not complete:
                break
            pos = end + 1
            self._line += 1
        if not self._offset and pos:
            self._head = journal.read_at(fd, 0, HEAD_BYTES)
        self._offset += pos
        self._stamp = journal.stamp(os.fstat(fd))

    def _index_replaced(self, fd: int) -> bool:
        """True when the index is no longer the one read so far: shorter than what was read,
        or starting otherwise (its first line holds the first entry's random id)."""
        return os.fstat(fd).st_size < self._offset or journal.read_at(fd, 0, len(self._head)) != self._head

    def _take_line(self, raw: bytes, offset: int, number: int) -> None:
        try:
            record = json.loads(raw)
        except (ValueError, RecursionError):
            self._skip(offset, number, "it is damaged (probably cut off when a kernel stopped mid-write)")
            return
        try:
            entry = self._entry_from(record)
        except ValueError as exc:  # it parses, but is not an entry: edited by hand, or tampered with
            self._skip(offset, number, str(exc))
            return
        if entry.id in self._known_ids:
            return
        self._known_ids.add(entry.id)
        self._next_index = max(self._next_index, entry.index + 1)
        missing = next((path for path in entry.files
                        if not history_files.is_file(self.folder, history_files.relative_to(self.folder, path))),
                       None)
        if missing is not None:
            self._missing[entry.index] = missing
            warnings.warn(
                f"Skipped history entry {entry.index} of {self.index_path}: its image file {missing} is missing.",
                RuntimeWarning,
                stacklevel=4,
            )
            return
        if entry.index in self._by_index:
            warnings.warn(
                f"Two history entries are numbered {entry.index} in {self.index_path} "
                "(two kernels wrote at once without a file lock); the second is reachable by its id only.",
                RuntimeWarning,
                stacklevel=4,
            )
        else:
            self._by_index[entry.index] = entry
        self._by_id[entry.id] = entry
        bisect.insort(self._entries, entry, key=lambda e: e.index)
        if entry.request_hash:
            bisect.insort(self._by_hash.setdefault(entry.request_hash, []), entry, key=lambda e: e.index)

    def _skip(self, key: Any, number: int, why: str, path: Path | None = None) -> None:
        """Warn, once for each ``key``, that line ``number`` of the index (or of ``path``) was skipped, and why."""
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(
                f"Skipped line {number} of {path or self.index_path}: {why}; the other entries are fine.",
                RuntimeWarning,
                stacklevel=5,
            )

    def _entry_from(self, record: Any) -> HistoryEntry:
        return HistoryEntry(ImageResult.from_record(record, self.folder))

    def _entry_with_id(self, entry_id: str) -> HistoryEntry | None:
        """The entry ``entry_id`` as held now, without reading the index again (for the
        thumbnail thread: a damaged line is for the kernel's own thread to report)."""
        with self._lock:
            return self._by_id.get(entry_id)

    def _write_for_entry(self, entry_id: str, files: Mapping[str, bytes]) -> bool:
        """Write ``files`` (path in the folder -> bytes) if entry ``entry_id`` is still in the
        history, with the index locked shared so that no clear, by any kernel, runs meanwhile;
        False if it is not (cleared while they were made) or they cannot be written."""
        with self._lock:
            try:
                fd = history_files.open_file(self.folder, INDEX_FILE, os.O_RDONLY)
            except (OSError, HistoryError):
                return False  # the index is gone (so is the entry), or a link: nothing is written
            try:
                journal.lock(fd, shared=True)  # a clear takes it exclusively: none runs until this is done
                # No lines are read here: a damaged one is for the kernel's own thread to report.
                if entry_id not in self._by_id or self._index_replaced(fd):
                    return False
                for relative, data in files.items():
                    history_files.write_atomically(self.folder, relative, data)
            except (OSError, HistoryError):
                return False
            finally:
                os.close(fd)
        return True

    # -- display ----------------------------------------------------------------------------

    def thumbnail(self, entry: HistoryEntry, long_edge: int = THUMBNAIL_EDGE, image: int = 0) -> bytes:
        """A small JPEG of the entry's image ``image`` (from 0), ``long_edge`` pixels on its
        long side at most, kept in ``thumbs/``: the gallery's, and the report's larger
        previews. Made when the entry is appended (see ``wait_for_thumbnails``), or here on
        first use, with the image's other kept sizes from the same decode (thumbnails.py)."""
        return thumbnails.thumbnail(self, entry, long_edge, image)

    def wait_for_thumbnails(self, timeout: float | None = None) -> bool:
        """Wait until the thumbnails and previews of every entry appended in this process are
        made (they are made on a background thread); False if ``timeout`` seconds passed first."""
        return thumbnails.MAKER.wait(timeout)

    def _repr_html_(self) -> str:
        """A gallery of small thumbnails, newest first, each with its index, prompt and parent."""
        return gallery_html(self)

    def __repr__(self) -> str:
        with self._lock:
            newest = self._entries[-1] if self._entries else None
        tail = ""
        if newest is not None:
            prompt = clip(newest.prompt, 40)
            tail = f", newest [{newest.index}] {prompt!r}"
        return f"<History {self.name!r}: {counted(len(self))}{tail}>"
