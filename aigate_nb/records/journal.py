"""The append-only JSON-lines files of a history folder (the index, the attempts), as files:
a record appended as one whole line, with one ``write`` on an ``O_APPEND`` descriptor and an
``fsync``, after closing a line that a killed writer cut off; the lock that serialises
processes where the platform has one; reading on from where the last read stopped."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core import history_files

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: threads are still serialised, processes are not
    fcntl = None  # type: ignore[assignment]


def lock(fd: int, *, shared: bool = False) -> None:
    """Lock the open file ``fd`` against other processes until it is closed: ``shared`` with
    other readers, or else alone. Nothing where the platform has no ``flock``."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)


def append_record(fd: int, record: Mapping[str, Any]) -> None:
    """Append ``record`` as one JSON line to ``fd`` (opened with ``O_APPEND``) and ``fsync`` it."""
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
    if _ends_mid_line(fd):
        line = b"\n" + line  # close a line cut off by a killed writer, so ours stays whole
    view = memoryview(line)
    while view:  # one ``write`` in practice; the loop only matters if the OS takes part of it
        view = view[os.write(fd, view):]
    os.fsync(fd)


def read_from(fd: int, offset: int) -> bytes:
    """Everything in ``fd`` from ``offset`` on."""
    os.lseek(fd, offset, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def read_at(fd: int, offset: int, size: int) -> bytes:
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, size) if size else b""


def stamp(status: os.stat_result) -> tuple[int, int, int]:
    """What changes when a file is written or replaced: its inode, size and mtime."""
    return status.st_ino, status.st_size, status.st_mtime_ns


def truncate(folder: Path, relative: str) -> None:
    """Empty the file ``relative`` in ``folder``, if it is there."""
    try:
        os.close(history_files.open_file(folder, relative, os.O_WRONLY | os.O_TRUNC))
    except FileNotFoundError:
        pass


def _ends_mid_line(fd: int) -> bool:
    size = os.fstat(fd).st_size
    if size == 0:
        return False
    os.lseek(fd, size - 1, os.SEEK_SET)
    return os.read(fd, 1) != b"\n"
