"""Reading what a user or a folder names: regular files only, up to a size, and JSON only as
deep as a person would write it. A FIFO, a device or a folder in a file's place is refused
instead of read (reading one can wait for ever or never end), and so is a file too large
for what it claims to be.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

#: Nesting deeper than this is no configuration or record of ours: a price file is three deep.
MAX_JSON_DEPTH = 64

_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class FileRefused(OSError):
    """A path names something that is not a regular file, or a file larger than allowed;
    ``reason`` says which in a few words (``it is a FIFO``)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(reason)
        self.path, self.reason = path, reason
        self.strerror = reason


def read_regular_file(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of the regular file at ``path``, if it holds at most ``limit`` of them.

    Opened without waiting (``O_NONBLOCK``: a FIFO with no writer would otherwise hold the
    open for ever) and checked with ``fstat`` on the open file, so what is read is what was
    checked. Raises ``FileRefused`` for anything else, and ``OSError`` as ``open`` does.
    """
    where = Path(path)
    fd = os.open(where, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        require_regular(fd, where)
        return read_open_file(fd, where, limit)
    finally:
        os.close(fd)


def require_regular(fd: int, where: Path) -> os.stat_result:
    """The ``fstat`` of the open file ``fd``, or ``FileRefused`` when it is not a regular file."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise FileRefused(where, f"it is {describe_kind(info.st_mode)}, not a regular file")
    return info


def read_open_file(fd: int, where: Path, limit: int | None = None) -> bytes:
    """The bytes of the open regular file ``fd``, ``FileRefused`` past ``limit`` of them (None:
    no limit); a file growing while it is read stops at the limit too."""
    size = os.fstat(fd).st_size
    if limit is not None and size > limit:
        raise FileRefused(where, f"it holds {size:,} bytes, more than the {limit:,} allowed")
    chunks, total = [], 0
    while limit is None or total <= limit:
        chunk = os.read(fd, 1 << 24 if limit is None else min(limit + 1 - total, 1 << 24))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if limit is not None and total > limit:
        raise FileRefused(where, f"it holds more than the {limit:,} bytes allowed")
    return b"".join(chunks)


def parse_json(text: str | bytes) -> Any:
    """``json.loads(text)``, refusing nesting deeper than ``MAX_JSON_DEPTH`` with ``ValueError``
    before parsing: deep nesting makes the parser, and whatever walks the result, recurse."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")
    depth = 0
    for match in _BRACKETS.finditer(text):
        token = match.group()  # a bracket, or a whole string (whose brackets are text)
        if token == "[" or token == "{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"it is nested more than {MAX_JSON_DEPTH} levels deep")
        elif token == "]" or token == "}":
            depth -= 1
    try:
        return json.loads(text)
    except RecursionError:  # not reached within the depth bound; kept so that no input can raise it
        raise ValueError("it is nested too deeply") from None


def describe_kind(mode: int) -> str:
    """What a file mode says a path is, in two words: ``a folder``, ``a FIFO``, ``a device``..."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return name
    return "not a file"
