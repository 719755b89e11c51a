"""A batch's manifest: a JSONL line per finished row, and the claims of the rows in hand.

Each line is appended whole under an OS file lock, so that a killed kernel leaves every
finished row and two runs of the same batch (another kernel, a script) never send one row
twice. A manifest in a history folder is opened through ``core.history_files`` (no link
followed), as every file there is.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..core import history_files
from ..core.errors import InputError
from ..core.text import display_path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: claims then keep threads apart, not processes
    fcntl = None  # type: ignore[assignment]

#: A claim from another machine (a shared folder), whose process cannot be asked whether it
#: lives, is taken for abandoned after this many seconds.
CLAIM_TIMEOUT = 900


class Manifest:
    """The batch's JSONL manifest: a line per finished row and, before a row is sent, a claim
    line (``"status": "claimed"``, with the batch's key, the process and a token), each
    appended whole under an OS file lock.

    A row is in another run's hand while its newest line is a claim from a process that still
    lives (this process: a claim it has not finished; another on this machine: its pid answers;
    another machine: for ``CLAIM_TIMEOUT`` seconds). A claim by a killed process is taken over.
    Opened when the batch starts, so that a manifest that cannot be written is refused before
    anything is sent."""

    def __init__(self, path: Path, key: str, inside: Path | None = None) -> None:
        self.path, self.key, self.inside = path, key, inside
        self.claims: dict[int, str] = {}  # row -> this run's token, until its outcome is written
        # The newest line of each row read so far, and how far: each claim reads only what was added.
        self.newest: dict[int, dict[str, Any]] = {}
        self.read_up_to = 0
        shown = display_path(path)
        if path.is_dir():
            raise InputError(f"manifest={shown!r} is a folder; name a file in it, e.g. {shown}/shots.jsonl.")
        if inside is None and not path.parent.is_dir():
            raise InputError(
                f"manifest={shown!r}: the folder {display_path(path.parent)} does not exist; create it or name "
                "a file in a folder that exists. Nothing was sent."
            )
        try:
            with Locked(path, inside):
                pass
        except OSError as exc:
            raise InputError(
                f"manifest={shown!r} cannot be written ({exc.strerror or exc}); name a file you can write to. "
                "Nothing was sent."
            ) from None

    def claim(self, row: int) -> bool:
        """Claim ``row`` for this run, unless another run has it in hand (then False)."""
        if row in self.claims:
            return True  # a row back in the queue after a rate limit: still ours
        with Locked(self.path, self.inside) as fd:
            self._read_new_lines(fd)
            newest = self.newest.get(row)
            if newest is not None and newest.get("status") == "claimed" and _held(newest):
                return False
            token = os.urandom(8).hex()
            os.write(fd, _encoded({
                "row": row, "status": "claimed", "batch": self.key, "pid": os.getpid(),
                "host": socket.gethostname(), "token": token, "claimed": time.time(),
            }))
        self.claims[row] = token
        with _CLAIMS_LOCK:
            _CLAIMS.add(token)
        return True

    def _read_new_lines(self, fd: int) -> None:
        size = os.fstat(fd).st_size
        if size < self.read_up_to:  # written anew (its history was cleared): read from the start
            self.newest, self.read_up_to = {}, 0
        os.lseek(fd, self.read_up_to, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        added = b"".join(chunks)
        whole = added[: added.rfind(b"\n") + 1]  # a line still being written is read next time
        self.read_up_to += len(whole)
        for line in _lines(whole):
            # Another batch's claims in a manifest named by hand are not this batch's rows.
            if isinstance(line.get("row"), int) and (line.get("status") != "claimed" or line.get("batch") == self.key):
                self.newest[line["row"]] = line

    def finished(self, row: int, record: dict[str, Any]) -> None:
        """Write ``row``'s outcome, which ends this run's claim of it."""
        with Locked(self.path, self.inside) as fd:
            os.write(fd, _encoded(record))
        self.forget([row])

    def forget(self, rows: Iterable[int]) -> None:
        """Let go of the claims of ``rows``, not sent after all."""
        for row in list(rows):
            token = self.claims.pop(row, None)
            with _CLAIMS_LOCK:
                _CLAIMS.discard(token)


#: The tokens of the claims this process holds: its own claims are known without asking the OS.
_CLAIMS: set[str] = set()
_CLAIMS_LOCK = threading.Lock()


def _held(claim: dict[str, Any]) -> bool:
    """Whether the run that wrote ``claim`` still has the row in hand."""
    if claim.get("host") != socket.gethostname():
        return time.time() - float(claim.get("claimed") or 0) < CLAIM_TIMEOUT
    pid: Any = claim.get("pid")
    if pid == os.getpid():
        with _CLAIMS_LOCK:
            return claim.get("token") in _CLAIMS
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False  # killed before it wrote the row's outcome: the row is free again
    except (PermissionError, TypeError, ValueError, OverflowError):
        return isinstance(pid, int)  # another user's process lives; a claim with no pid holds nothing
    return True


class Locked:
    """The manifest open for appending, locked against other processes until closed."""

    def __init__(self, path: Path, inside: Path | None = None) -> None:
        self.path, self.inside = path, inside

    def __enter__(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND
        if self.inside is None:
            self.fd = os.open(self.path, flags, 0o644)
        else:  # its folders are made as needed, and no link is followed
            self.fd = history_files.open_file(self.inside, history_files.relative_to(self.inside, self.path), flags)
        if fcntl is not None:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self.fd

    def __exit__(self, *exc_info: object) -> None:
        os.close(self.fd)  # closing releases the lock


def _encoded(record: dict[str, Any]) -> bytes:
    """One JSON line, written whole by one append, so that a killed kernel leaves every finished row."""
    return (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def _lines(raw: bytes) -> list[dict[str, Any]]:
    """The manifest's lines that can be read; a torn last line is skipped."""
    lines = []
    for text in raw.decode("utf-8", errors="replace").splitlines():
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(line, dict):
            lines.append(line)
    return lines


def read_manifest(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The manifest's outcome lines, newest outcome of each row last (claims left out); a torn
    last line is skipped."""
    return [line for line in _lines(Path(path).read_bytes()) if line.get("status") != "claimed"]
