"""Which notebook this kernel serves, and keeping its history with it when it is renamed.

The kernel's environment only says where the notebook was when the kernel started; the
Jupyter server that runs the kernel knows where it is now. So the server is asked, on
loopback only: this kernel's id is in its connection file's name, the running servers are
described by ``jpserver-*.json`` files in Jupyter's runtime dir, and ``GET api/sessions``
pairs each kernel with its notebook's path. With no server to ask, the kernel's own hints
decide, as ``records.names.notebook_name`` reads them.

Each history folder records the notebook it belongs to in ``notebook.json``: its path, its
Jupyter session (which stays through renames and kernel restarts) and the file's identity
(device and inode, which a rename or a save keeps). So a renamed notebook finds its history
and takes it along, and a new notebook at an old name never opens another's.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from ..core import history_files
from ..core.errors import HistoryError
from ..core.files import parse_json, read_regular_file
from ..core.text import display_path, one_line
from ..gateway.config import is_loopback, load_settings
from ..records.names import DEFAULT_NAME, notebook_name, notebook_stem, safe_folder_name
from ..records.store import History

#: The server is asked again at most this often (seconds): a rename shows within that time.
CHECK_INTERVAL = 3.0
#: How long one question to a server may take (seconds) before the kernel's own hints decide.
SERVER_TIMEOUT = 1.0
#: The most servers asked when looking for the one that runs this kernel.
MAX_SERVERS = 8
#: The file in a history folder that says which notebook the history belongs to.
OWNER_FILE = "notebook.json"
#: A server's runtime file and an owner record are a few hundred bytes; larger is not ours.
MAX_RECORD_BYTES = 1_000_000

_SERVER_FILE = re.compile(r"(?:jp|nb)server-.+\.json")
_KERNEL_FILE = re.compile(r"kernel-(.+)\.json")


# -- the Jupyter servers on this machine --------------------------------------------------------


@dataclass(frozen=True)
class JupyterServer:
    """A running Jupyter server, as its runtime file describes it."""

    url: str  # on loopback, ending in "/"
    token: str
    root_dir: str | None
    pid: int | None


def loopback_url(info: Mapping[str, Any]) -> str | None:
    """The URL of a server's runtime file, moved to a loopback address (ending in ``/``), or
    None when it cannot be reached there: a Unix socket, or an address of another interface."""
    if info.get("sock"):
        return None
    parts = urlsplit(str(info.get("url") or ""))
    host = _loopback_host(str(info.get("hostname") or parts.hostname or ""))
    port = info.get("port") or parts.port
    scheme = parts.scheme or ("https" if info.get("secure") else "http")
    if host is None or not isinstance(port, int) or scheme not in ("http", "https"):
        return None
    base = "/" + str(info.get("base_url") or parts.path or "/").strip("/")
    url = f"{scheme}://{host}:{port}{base.rstrip('/')}/"
    return url if is_loopback(url) else None


def _loopback_host(listening: str) -> str | None:
    """Where on loopback a server listening on ``listening`` answers, if it does."""
    if listening in ("", "0.0.0.0", "localhost"):
        return "127.0.0.1"
    if listening == "::":
        return "[::1]"
    try:
        address = ipaddress.ip_address(listening.strip("[]"))
    except ValueError:
        return None  # a host name: it may not be this machine
    if not address.is_loopback:
        return None
    return f"[{address}]" if address.version == 6 else str(address)


def running_servers(runtime_dirs: Iterable[str | os.PathLike]) -> list[JupyterServer]:
    """The servers described in ``runtime_dirs`` that are still running and can be reached on
    loopback. Unlike ``jupyter_server.serverapp.list_running_servers``, this deletes nothing."""
    servers: list[JupyterServer] = []
    seen: set[str] = set()
    for folder in runtime_dirs:
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            if not _SERVER_FILE.fullmatch(name):
                continue
            try:
                info = parse_json(read_regular_file(Path(folder, name), MAX_RECORD_BYTES))
            except (OSError, ValueError):
                continue  # being written, or not ours to read
            url = loopback_url(info) if isinstance(info, dict) else None
            pid = info.get("pid") if url else None
            pid = pid if isinstance(pid, int) else None
            if url is None or url in seen or (pid is not None and not _alive(pid)):
                continue
            seen.add(url)
            root = info.get("root_dir") or info.get("notebook_dir")
            token = info.get("token")
            # A runtime file is input: a root or token of another type is none at all.
            servers.append(JupyterServer(url, token if isinstance(token, str) else "",
                                         root if isinstance(root, str) else None, pid))
    # The server that started this kernel is usually its parent: ask it first.
    return sorted(servers, key=lambda server: server.pid != os.getppid())


def _alive(pid: int) -> bool:
    if os.name == "nt":
        return True  # os.kill(pid, 0) would send Ctrl+C there; a dead server just does not answer
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):
        return False  # gone, or no process id at all (a runtime file is input)
    except OSError:
        return True  # alive, but another user's
    return True


def ask_sessions(server: JupyterServer, timeout: float = SERVER_TIMEOUT) -> list[dict] | None:
    """``GET api/sessions`` of ``server``: every open notebook with its kernel; None when the
    server does not answer in time or refuses."""
    http = requests.Session()
    http.trust_env = False  # no proxy from the environment: this question stays on loopback
    headers = {"Authorization": f"token {server.token}"} if server.token else {}
    try:
        reply = http.get(server.url + "api/sessions", headers=headers, timeout=timeout, allow_redirects=False)
        sessions = reply.json() if reply.status_code == 200 else None
    except (requests.RequestException, ValueError):
        return None
    finally:
        http.close()
    return [item for item in sessions if isinstance(item, dict)] if isinstance(sessions, list) else None


# -- this kernel ---------------------------------------------------------------------------------


def kernel_id_from(connection_file: str | os.PathLike) -> str | None:
    """``.../kernel-<id>.json`` -> ``<id>``: the name Jupyter gives a kernel's connection file."""
    match = _KERNEL_FILE.fullmatch(os.path.basename(os.fspath(connection_file)))
    return match.group(1) if match else None


def this_kernel() -> tuple[str | None, list[str]]:
    """This kernel's id and the runtime dirs to look for servers in (its connection file's
    folder, where the server that started it keeps its files, then Jupyter's runtime dir)."""
    folders: list[str] = []
    kernel_id = None
    if "ipykernel" in sys.modules:  # otherwise this is no kernel, and importing it would be slow
        try:
            from ipykernel.connect import get_connection_file

            connection_file = get_connection_file()
        except (ImportError, RuntimeError, OSError, AttributeError):
            connection_file = None
        if connection_file:
            kernel_id = kernel_id_from(connection_file)
            folders.append(os.path.dirname(os.path.abspath(connection_file)))
    try:
        from jupyter_core.paths import jupyter_runtime_dir

        folders.append(jupyter_runtime_dir())
    except ImportError:
        pass
    return kernel_id, list(dict.fromkeys(folders))


# -- which notebook --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notebook:
    """Which notebook this kernel serves, as well as it can be told."""

    name: str  # its history's folder name: the notebook's file name without ``.ipynb``
    path: str | None = None  # its absolute path, when a Jupyter server said it
    session: str | None = None  # the Jupyter session's id: it stays through renames and kernel restarts
    file: tuple[int, int] | None = None  # the notebook file's device and inode: a rename or a save keeps them
    guessed: bool = False  # nothing said which notebook: the name is the last resort


def history_name(path: str) -> str:
    """``/work/lab flow.ipynb`` -> ``lab_flow``: the history folder of the notebook at ``path``."""
    return safe_folder_name(notebook_stem(path)) or DEFAULT_NAME


def file_identity(path: str | None) -> tuple[int, int] | None:
    """The device and inode of the file at ``path``, or None where it is not there."""
    try:
        status = os.stat(path) if path else None
    except OSError:
        return None
    return (status.st_dev, status.st_ino) if status is not None and status.st_ino else None


def notebook_from_sessions(
    sessions: list[dict], kernel_id: str, root_dir: str | None
) -> tuple[Notebook | None, dict[str, str]]:
    """The notebook whose kernel is ``kernel_id`` among a server's ``sessions``, and where every
    open notebook is (session id -> absolute path)."""
    where: dict[str, str] = {}
    mine = None
    for item in sessions:
        api_path = item.get("path") or (item.get("notebook") or {}).get("path")
        if not isinstance(api_path, str) or not isinstance(item.get("id"), str):
            continue
        path = os.path.join(root_dir, *api_path.split("/")) if root_dir else api_path
        where[item["id"]] = path
        kernel = item.get("kernel") or {}
        if kernel.get("id") == kernel_id and (mine is None or item.get("type") == "notebook"):
            mine = Notebook(history_name(path), path, item["id"], file_identity(path))
    return mine, where


@dataclass(frozen=True)
class Owner:
    """What a history folder's ``notebook.json`` says about the notebook it belongs to."""

    path: str | None = None
    session: str | None = None
    file: tuple[int, int] | None = None
    since: str | None = None  # when the notebook first kept a result there

    @classmethod
    def of(cls, notebook: Notebook, since: str | None = None) -> Owner:
        return cls(notebook.path, notebook.session, notebook.file, since or _now())


def read_owner(folder: Path) -> Owner | None:
    """The owner recorded in ``folder``, or None (no record: a history from before records, or
    one kept with no server to say whose it is)."""
    try:
        record = parse_json(history_files.read_file(folder, OWNER_FILE, MAX_RECORD_BYTES))
        file = record.get("file")
        return Owner(
            record.get("path"), record.get("session"),
            (int(file[0]), int(file[1])) if file else None, record.get("since"),
        )
    except (OSError, ValueError, TypeError, AttributeError, IndexError, HistoryError):
        return None  # none, unreadable, damaged, or a link: no record to go by


def write_owner(folder: Path, owner: Owner) -> None:
    record = {"path": owner.path, "session": owner.session, "file": owner.file, "since": owner.since}
    if not folder.is_dir():
        return  # no history there yet: the record is written with its first result
    try:
        history_files.write_atomically(folder, OWNER_FILE, (json.dumps(record, indent=1) + "\n").encode("utf-8"))
    except OSError:
        pass  # a read-only history: it is used all the same, just not followed through a restart


def belongs(
    owner: Owner, notebook: Notebook, open_notebooks: Mapping[str, str], file_now: str | None = None
) -> bool:
    """Whether a history recorded as ``owner``'s is ``notebook``'s. ``open_notebooks`` maps the
    server's sessions to where their notebooks are now; ``file_now`` is where the owner's file
    is now, when it was found under another name (renamed while no kernel ran for it)."""
    if owner.session and owner.session == notebook.session:
        return True  # the same open notebook, whatever it is called now
    if owner.session is not None and owner.session in open_notebooks and open_notebooks[owner.session] != notebook.path:
        return False  # another open notebook's, renamed since it wrote here
    if file_now is not None and file_now != notebook.path:
        return False  # its notebook is another file, called otherwise now
    return owner.path is None or owner.path == notebook.path


def where_file_is(owner: Owner) -> str | None:
    """Where the notebook file recorded in ``owner`` is now, if it is still in the folder it
    was in (a rename in the file browser keeps it there); None if it is gone."""
    if owner.file is None or not owner.path:
        return None
    if file_identity(owner.path) == owner.file:
        return owner.path
    try:
        with os.scandir(os.path.dirname(owner.path) or ".") as entries:
            for entry in entries:
                if entry.name.endswith(".ipynb") and entry.inode() == owner.file[1]:
                    if file_identity(entry.path) == owner.file:
                        return entry.path
    except OSError:
        pass
    return None


# -- following the notebook ------------------------------------------------------------------------


class NotebookTracker:
    """Knows which notebook this kernel serves and keeps the session's history with it.

    ``open()`` gives the notebook's history when the session starts; ``follow(history)``
    gives the history to use now, asking the server at most every ``interval`` seconds
    (and only the server that answered before); ``claim(history)`` records the notebook in a
    history folder once it exists. What was done to which folder is told once, in one line
    each, by ``notices()``.
    """

    def __init__(
        self,
        user_ns: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        kernel_id: str | None = None,
        runtime_dirs: Iterable[str | os.PathLike] | None = None,
        interval: float = CHECK_INTERVAL,
    ) -> None:
        self._user_ns = user_ns
        self._environ = environ
        if runtime_dirs is None:
            found_id, found_dirs = this_kernel()
            kernel_id, runtime_dirs = kernel_id or found_id, found_dirs
        self._kernel_id = kernel_id
        self._runtime_dirs = list(runtime_dirs)
        self.interval = interval
        self.notebook = Notebook(DEFAULT_NAME, guessed=True)
        self._server: JupyterServer | None = None  # the one that knows this kernel
        self._open_notebooks: dict[str, str] = {}
        self._checked = 0.0
        self._lock = threading.Lock()
        self._notices: list[str] = []
        self._told_guess = False
        self._claimed: Path | None = None

    # -- asking ---------------------------------------------------------------------------------

    def _ask(self, servers: Iterable[JupyterServer]) -> Notebook | None:
        """The notebook of this kernel according to the first of ``servers`` that knows it."""
        if self._kernel_id is None:
            return None  # asked only with a kernel id: a server is known only from an answer to one
        for server in itertools.islice(servers, MAX_SERVERS):
            sessions = ask_sessions(server)
            found, where = notebook_from_sessions(sessions or [], self._kernel_id, server.root_dir)
            if found is not None:
                self._server, self._open_notebooks = server, where
                return found
        return None

    def _from_kernel(self) -> Notebook:
        """The kernel's own hints, as before there were servers to ask."""
        name = notebook_name(self._user_ns, self._environ)
        return Notebook(name, guessed=name == DEFAULT_NAME)

    # -- the front ends' side --------------------------------------------------------------------

    def open(self) -> History:
        """The notebook's history when the session starts: after a rename, the folder of the
        old name moves to the new one."""
        with self._lock:
            found = self._ask(running_servers(self._runtime_dirs)) if self._kernel_id else None
            self.notebook = found or self._from_kernel()
            self._checked = time.monotonic()
            return self._adopt(None)

    def follow(self, history: History) -> History:
        """The history to use now: ``history``, or, when the notebook was renamed since the
        last look, its history under the new name. Cheap when nothing is due: at most one
        question to the server every ``interval`` seconds."""
        if self._server is None or time.monotonic() - self._checked < self.interval:
            return history
        if not self._lock.acquire(blocking=False):
            return history  # another thread is looking right now
        try:
            self._checked = time.monotonic()
            found = self._ask([self._server])
            if found is None or found.path == self.notebook.path:
                return history
            self.notebook = found
            return self._adopt(history)
        finally:
            self._lock.release()

    def claim(self, history: History) -> None:
        """Record this notebook in ``history``'s folder, once it exists (the first result kept)."""
        if history.folder == self._claimed or self.notebook.path is None:
            return
        with self._lock:
            self._claim(history.folder)

    def notices(self, history: History, guess: bool = True) -> list[str]:
        """The lines not told yet; with ``guess``, once per kernel, also that the history was
        chosen with nothing to say which notebook this is."""
        with self._lock:
            lines, self._notices = self._notices, []
        if guess and self.notebook.guessed and not self._told_guess:
            self._told_guess = True
            lines.append(
                f"aigate_nb: nothing tells which notebook this kernel serves, so results go to history "
                f"'{history.name}' in {display_path(history.folder)}/; %aigate history --name NAME picks one."
            )
        return lines

    # -- which folder --------------------------------------------------------------------------

    def _root(self) -> Path:
        configured = load_settings().history_dir
        if configured:
            return Path(os.path.abspath(os.path.expanduser(configured)))
        folder = os.path.dirname(self.notebook.path or "")
        return Path(folder if folder and os.path.isdir(folder) else os.getcwd(), ".aigate")

    def _adopt(self, current: History | None) -> History:
        """This notebook's history: the folder of its name if that is its own, else the first of
        ``name-2``, ``name-3``, ... that is, or is free; a new one takes in the history this
        notebook kept elsewhere (``current``, or a folder recorded with its session)."""
        notebook, root = self.notebook, self._root()
        if notebook.path is None:  # nothing to tell notebooks apart by: the folder of its name
            return History(notebook.name, root)
        taken: Path | None = None
        for name in _names(notebook.name):
            folder = root / name
            if (current is not None and folder == current.folder) or not folder.exists():
                break
            if self._owns(folder, unrecorded=name == notebook.name):
                break
            taken = taken or folder
        if taken is not None:
            self._tell(self._taken(taken, folder.name))
        if current is not None and folder == current.folder:
            history = current
        elif folder.exists():
            history = History(folder.name, root)
        else:
            history = self._moved_in(current, folder)
        self._claim(history.folder)
        return history

    def _owns(self, folder: Path, unrecorded: bool = True) -> bool:
        """Whether the history in ``folder`` is this notebook's; ``unrecorded`` if it records no owner."""
        owner = read_owner(folder)
        if owner is None:
            return unrecorded
        file_now = where_file_is(owner) if owner.file != self.notebook.file else None
        return belongs(owner, self.notebook, self._open_notebooks, file_now)

    def _moved_in(self, current: History | None, folder: Path) -> History:
        """A history for the free ``folder``: this notebook's own from elsewhere, moved there."""
        source: History | None
        if current is not None and current.folder.exists() and self._owns(current.folder):
            source = current
        else:
            found = self._recorded_with_session(folder.parent)
            source = History(found.name, found.parent) if found is not None else None
        if source is None:
            self._hint_at_earlier_name(folder.parent)
            return History(folder.name, folder.parent)
        old = source.folder
        try:
            source.move_to(folder)
        except HistoryError as exc:
            self._tell(f"aigate_nb: the notebook is now {self._shown(self.notebook.path)}, but {_lower(exc)}")
            return source
        self._tell(
            f"aigate_nb: history moved from {display_path(old)}/ to {display_path(folder)}/, "
            f"following the notebook {self._shown(self.notebook.path)}."
        )
        return source

    def _recorded_with_session(self, root: Path) -> Path | None:
        """The folder under ``root`` recorded with this notebook's session (a kernel restarted
        after a rename), the most recently written if there are several."""
        session = self.notebook.session
        found = [(_written(folder), folder) for folder in _subfolders(root)
                 if session and (read_owner(folder) or Owner()).session == session]
        return max(found)[1] if found else None

    def _hint_at_earlier_name(self, root: Path) -> None:
        """Say where this notebook's history is when it was renamed while no kernel ran for it:
        a folder recorded with this very file under its old name. Only said, not moved: a
        file's identity can be a deleted file's, reused."""
        if self.notebook.file is None:
            return
        for folder in _subfolders(root):
            owner = read_owner(folder)
            if owner and owner.file == self.notebook.file and owner.path != self.notebook.path \
                    and where_file_is(owner) == self.notebook.path:
                self._tell(
                    f"aigate_nb: this notebook kept history '{folder.name}' when it was "
                    f"{self._shown(owner.path)}; %aigate history --name {folder.name} opens it."
                )
                return

    def _claim(self, folder: Path) -> None:
        if self.notebook.path is None or not folder.is_dir():
            return
        owner = read_owner(folder)
        mine = Owner.of(self.notebook, owner.since if owner else None)
        if owner != mine:
            write_owner(folder, mine)
        self._claimed = folder

    def _taken(self, folder: Path, instead: str) -> str:
        owner = read_owner(folder) or Owner()
        moved = where_file_is(owner) if owner.file != self.notebook.file else None
        if owner.session in self._open_notebooks:
            whose = f"another open notebook, now {self._shown(self._open_notebooks[owner.session])}"
        elif moved is not None and moved != owner.path:
            whose = f"another notebook, now {self._shown(moved)}"
        elif owner.path:
            whose = f"another notebook, {self._shown(owner.path)}"
        else:
            whose = "no notebook it records"  # chosen by name, or kept before histories recorded theirs
        return (
            f"aigate_nb: history '{folder.name}' belongs to {whose}, so this notebook's history is "
            f"'{instead}'; %aigate history --name {folder.name} opens the other."
        )

    def _shown(self, path: str | None) -> str:
        """A notebook's path as JupyterLab shows it: from the server's root."""
        root = self._server.root_dir if self._server is not None else None
        if path and root:
            relative = os.path.relpath(path, root)
            if not relative.startswith(".."):
                return Path(relative).as_posix()
        return display_path(path) if path else ""

    def _tell(self, line: str) -> None:
        self._notices.append(line)


def _names(name: str) -> Iterator[str]:
    yield name
    for k in itertools.count(2):
        yield f"{name}-{k}"


def _subfolders(root: Path) -> list[Path]:
    try:
        return [Path(item.path) for item in os.scandir(root) if item.is_dir()]
    except OSError:
        return []


def _written(folder: Path) -> float:
    try:
        return os.stat(folder / "index.jsonl").st_mtime
    except OSError:
        return 0.0


def _lower(exc: Exception) -> str:
    text = one_line(str(exc))
    return text[:1].lower() + text[1:]


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")
