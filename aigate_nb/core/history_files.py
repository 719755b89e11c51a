"""Files inside a history folder, read, written and deleted without following a symbolic link.

A history folder is input: it can be copied, unpacked or cloned (git keeps symbolic links),
so ``images/``, ``index.jsonl`` or one image may be a link to anywhere. Every path below
the folder is opened one component at a time from the folder's own descriptor with
``O_NOFOLLOW``, so a link is met, named and refused, never followed: nothing outside the
folder is read, written or deleted through it. The folder itself is where the user put it
(``AIGATE_HISTORY_DIR`` may well be a link to a larger disk) and is followed.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from .errors import LinkInHistoryError
from .files import FileRefused, read_open_file, require_regular

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_BINARY = getattr(os, "O_BINARY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
#: Where descriptors cannot stand for folders (Windows), each component is checked with
#: ``lstat`` before the path is opened: the same refusal, though not proof against a race.
_BY_DESCRIPTOR = bool(_NOFOLLOW and _DIRECTORY) and os.open in os.supports_dir_fd


def parts_of(relative: str | os.PathLike) -> list[str]:
    """``images/ab-1.png`` -> ``["images", "ab-1.png"]``; a path leaving the folder is refused."""
    parts = [part for part in PurePosixPath(os.fspath(relative).replace("\\", "/")).parts if part != "."]
    if not parts or any(part in ("..", "/") for part in parts):
        raise ValueError(f"{relative!r} is not a path inside a history folder")
    return parts


def relative_to(folder: Path, path: Path) -> str:
    """``path`` as it lies inside ``folder``."""
    return path.relative_to(folder).as_posix()


@contextmanager
def opened_folder(folder: Path, relative: str | os.PathLike = ".", create: bool = False) -> Iterator[int]:
    """A descriptor of the folder ``relative`` inside ``folder`` (``"."``: the folder itself),
    made first when ``create``. Raises ``FileNotFoundError`` when it is not there,
    ``LinkInHistoryError`` when a component is a link."""
    fd = _open_directory(folder, [] if os.fspath(relative) in (".", "") else parts_of(relative), create)
    try:
        yield fd
    finally:
        if fd >= 0:
            os.close(fd)


def open_file(folder: Path, relative: str | os.PathLike, flags: int, mode: int = 0o644) -> int:
    """A descriptor of the file ``relative`` inside ``folder``, opened with ``flags`` (``os.O_*``),
    never through a link. Its folders are made when ``flags`` has ``O_CREAT``."""
    *above, name = parts_of(relative)
    with opened_folder(folder, "/".join(above) or ".", create=bool(flags & os.O_CREAT)) as parent:
        # Without waiting (a FIFO with no writer would hold the open for ever), and a regular
        # file only: what else a folder holds in a file's place is refused, not read.
        fd = _open_in(folder, above, parent, name, flags | _BINARY | _NONBLOCK, mode)
    try:
        require_regular(fd, folder / relative)
    except FileRefused:
        os.close(fd)
        raise
    return fd


def read_file(folder: Path, relative: str | os.PathLike, limit: int | None = None) -> bytes:
    """The bytes of the file ``relative`` inside ``folder``, never through a link; ``FileRefused``
    past ``limit`` bytes."""
    fd = open_file(folder, relative, os.O_RDONLY)
    try:
        return read_open_file(fd, folder / relative, limit)
    finally:
        os.close(fd)


def is_file(folder: Path, relative: str | os.PathLike) -> bool:
    """True when ``relative`` inside ``folder`` is a regular file reached through no link.
    A link on the way raises ``LinkInHistoryError``."""
    *above, name = parts_of(relative)
    try:
        with opened_folder(folder, "/".join(above) or ".") as parent:
            status = _lstat_in(folder, above, parent, name)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if status is None:
        return False
    if stat.S_ISLNK(status.st_mode):
        raise LinkInHistoryError(folder, "/".join([*above, name]))
    return stat.S_ISREG(status.st_mode)


def write_atomically(folder: Path, relative: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a temporary name beside ``relative``, then rename it there: the file is
    whole or absent, and a link in its place is replaced, never written through.

    Not synced: a killed kernel loses nothing the OS has been given, and syncing eight 4K
    PNGs one after another made ``-n 8`` half again slower than one request. The index line
    that refers to the file is synced.
    """
    *above, name = parts_of(relative)
    temporary = f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
    with opened_folder(folder, "/".join(above) or ".", create=True) as parent:
        fd = _open_in(folder, above, parent, temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _BINARY, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        if _BY_DESCRIPTOR:
            os.replace(temporary, name, src_dir_fd=parent, dst_dir_fd=parent)
        else:
            where = folder.joinpath(*above)
            os.replace(where / temporary, where / name)


def remove_files(folder: Path, relative: str | os.PathLike, keep_folder: bool = False,
                 which: Callable[[str, os.stat_result], bool] | None = None) -> None:
    """Remove the folder ``relative`` inside ``folder`` and the files in it (a link among them is
    removed itself: its target is untouched); with ``keep_folder``, the files only; with
    ``which``, only the files for which ``which(name, lstat)`` is true. A file another kernel
    writes meanwhile stays, and so does the folder holding it. A link in the folder's place
    is refused, and nothing is removed."""
    try:
        with opened_folder(folder, relative) as fd:
            for name in os.listdir(fd) if _BY_DESCRIPTOR else os.listdir(folder / relative):
                if which is not None:
                    status = _lstat_in(folder, parts_of(relative), fd, name)
                    if status is None or not which(name, status):
                        continue
                try:
                    if _BY_DESCRIPTOR:
                        os.unlink(name, dir_fd=fd)
                    else:
                        os.unlink(folder / relative / name)
                except FileNotFoundError:
                    pass  # gone meanwhile
    except FileNotFoundError:
        return
    if keep_folder:
        return
    try:
        os.rmdir(folder / relative)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno != errno.ENOTEMPTY:
            raise


def refuse_links(folder: Path, names: tuple[str, ...]) -> None:
    """Raise ``LinkInHistoryError`` if any of ``names``, directly inside ``folder``, is a link."""
    for name in names:
        try:
            if stat.S_ISLNK(os.lstat(folder / name).st_mode):
                raise LinkInHistoryError(folder, name)
        except (FileNotFoundError, NotADirectoryError):
            continue


def _open_directory(folder: Path, parts: list[str], create: bool) -> int:
    """A descriptor of ``folder/parts``, reached through no link (-1 where descriptors cannot
    stand for folders: each component is then checked with ``lstat``)."""
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    if not _BY_DESCRIPTOR:
        for k, part in enumerate(parts):
            if create:
                _make_folder(folder, parts[:k], -1, part)
            status = _lstat_in(folder, parts[:k], -1, part)
            if status is None:
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(folder.joinpath(*parts[:k + 1])))
            if stat.S_ISLNK(status.st_mode):
                raise LinkInHistoryError(folder, "/".join(parts[:k + 1]))
        return -1
    fd = os.open(folder, os.O_RDONLY | _DIRECTORY | _BINARY)
    for k, part in enumerate(parts):
        try:
            if create:
                _make_folder(folder, parts[:k], fd, part)
            child = _open_in(folder, parts[:k], fd, part, os.O_RDONLY | _DIRECTORY, 0)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        fd = child
    return fd


def _make_folder(folder: Path, above: list[str], parent: int, name: str) -> None:
    try:
        if _BY_DESCRIPTOR:
            os.mkdir(name, 0o755, dir_fd=parent)
        else:
            folder.joinpath(*above, name).mkdir()
    except FileExistsError:
        pass  # a folder already, or a link: opening it tells which


def _open_in(folder: Path, above: list[str], parent: int, name: str, flags: int, mode: int) -> int:
    """``name`` in the folder open as ``parent`` (``folder/above``), opened with ``flags`` unless it is a link."""
    if not _BY_DESCRIPTOR:
        status = _lstat_in(folder, above, parent, name)
        if status is not None and stat.S_ISLNK(status.st_mode):
            raise LinkInHistoryError(folder, "/".join([*above, name]))
        return os.open(folder.joinpath(*above, name), flags, mode)
    try:
        return os.open(name, flags | _NOFOLLOW, mode, dir_fd=parent)
    except OSError as exc:
        # A link opened with O_NOFOLLOW fails with ELOOP (ENOTDIR or EMLINK on some systems).
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK, errno.EEXIST):
            status = _lstat_in(folder, above, parent, name)
            if status is not None and stat.S_ISLNK(status.st_mode):
                raise LinkInHistoryError(folder, "/".join([*above, name])) from None
        raise


def _lstat_in(folder: Path, above: list[str], parent: int, name: str) -> os.stat_result | None:
    try:
        if _BY_DESCRIPTOR:
            return os.stat(name, dir_fd=parent, follow_symlinks=False)
        return os.lstat(folder.joinpath(*above, name))
    except FileNotFoundError:
        return None
