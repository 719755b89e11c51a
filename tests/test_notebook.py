"""Which notebook a kernel serves, asked of a real Jupyter-like server on loopback, and the
history following the notebook through renames, with real histories on disk.

``FakeJupyter`` answers ``GET /api/sessions`` as Jupyter Server does, from a runtime file
in a temporary runtime dir; renaming a notebook is changing the path of its session there,
as JupyterLab's rename does with ``PATCH /api/sessions/<id>``."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from aigate_nb.core.images import ReplyImage
from aigate_nb.core.results import ImageResult
from aigate_nb.records.store import History
from aigate_nb.session.notebook import (
    OWNER_FILE,
    SERVER_TIMEOUT,
    NotebookTracker,
    kernel_id_from,
    loopback_url,
    read_owner,
    running_servers,
)
from aigate_nb.session.session import Request, Session

TOKEN = "jupyter-token-5e1f"


class FakeJupyter:
    """A real HTTP server on 127.0.0.1 that answers ``/api/sessions`` like Jupyter Server."""

    def __init__(self, root: Path, token: str = TOKEN) -> None:
        self.root, self.token = root, token
        self.sessions: list[dict] = []
        self.asked = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the name http.server calls
                fake.asked += 1
                if self.headers.get("Authorization") != f"token {fake.token}":
                    self._reply(403, {"message": "Forbidden"})
                elif self.path == "/api/sessions":
                    self._reply(200, fake.sessions)
                else:
                    self._reply(404, {"message": "Not Found"})

            def _reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def runtime_file(self, runtime_dir: Path, **changes) -> Path:
        return write_runtime_file(runtime_dir, self.port, self.root, **{"token": self.token, **changes})

    def open_notebook(self, session_id: str, kernel_id: str, path: str) -> None:
        """What opening a notebook in JupyterLab does; the file is made as JupyterLab makes it."""
        notebook = self.root / path
        if not notebook.exists():
            notebook.parent.mkdir(parents=True, exist_ok=True)
            notebook.write_text("{}")
        self.sessions.append({
            "id": session_id, "path": path, "name": Path(path).name, "type": "notebook",
            "kernel": {"id": kernel_id, "name": "python3"}, "notebook": {"path": path, "name": Path(path).name},
        })

    def rename(self, session_id: str, path: str) -> None:
        """What JupyterLab's rename does: the file moves, then the session's path changes."""
        for item in self.sessions:
            if item["id"] == session_id:
                os.rename(self.root / item["path"], self.root / path)
                item["path"] = item["notebook"]["path"] = path

    def close_notebook(self, session_id: str) -> None:
        self.sessions = [item for item in self.sessions if item["id"] != session_id]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_runtime_file(runtime_dir: Path, port: int, root: Path, **changes) -> Path:
    """The ``jpserver-<pid>.json`` a Jupyter server writes in its runtime dir."""
    info = {
        "url": f"http://127.0.0.1:{port}/", "hostname": "127.0.0.1", "port": port, "sock": "",
        "secure": False, "base_url": "/", "token": TOKEN, "root_dir": str(root),
        "password": False, "pid": os.getpid(), "version": "2.0.0",
    }
    info.update(changes)
    runtime_dir.mkdir(parents=True, exist_ok=True)
    path = runtime_dir / f"jpserver-{info['pid']}.json"
    path.write_text(json.dumps(info))
    return path


@pytest.fixture
def jupyter(tmp_path):
    server = FakeJupyter(tmp_path / "notebooks")
    server.root.mkdir()
    server.runtime_file(tmp_path / "runtime")
    yield server
    server.stop()


@pytest.fixture
def runtime(tmp_path, jupyter):
    return [tmp_path / "runtime"]


def tracker(runtime, kernel_id, **options) -> NotebookTracker:
    options.setdefault("interval", 0)
    return NotebookTracker({}, environ={}, kernel_id=kernel_id, runtime_dirs=runtime, **options)


def result_of(n: int = 0) -> ImageResult:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (n * 40 % 256, 7, 7)).save(buf, format="PNG")
    return ImageResult([ReplyImage("image/png", buf.getvalue())], prompt=f"fox number {n}",
                       model="google/gemini-3.1-flash-image-preview")


def keep(history: History, count: int, notebook: NotebookTracker) -> None:
    for n in range(count):
        history.append(result_of(n))
    notebook.claim(history)


# -- which notebook ---------------------------------------------------------------------------------

def test_the_kernel_id_is_in_the_connection_files_name():
    assert kernel_id_from("/run/user/1000/jupyter/runtime/kernel-5f2a-77.json") == "5f2a-77"
    assert kernel_id_from("/tmp/tmpab12.json") is None


def test_only_servers_on_loopback_are_asked():
    def url(**info):
        return loopback_url({"url": "http://127.0.0.1:8888/", "port": 8888, "base_url": "/", **info})

    assert url(hostname="127.0.0.1") == "http://127.0.0.1:8888/"
    assert url(hostname="localhost", url="http://localhost:8888/lab-base/", base_url="/lab-base/") == (
        "http://127.0.0.1:8888/lab-base/"
    )
    assert url(hostname="0.0.0.0", url="http://my-host:8888/") == "http://127.0.0.1:8888/"  # listens on loopback too
    assert url(hostname="::1", url="http://[::1]:8888/") == "http://[::1]:8888/"
    assert url(hostname="10.1.2.3", url="http://10.1.2.3:8888/") is None
    assert url(hostname="example.org", url="http://example.org:8888/") is None
    assert url(hostname="127.0.0.1", sock="/tmp/jupyter.sock") is None


def test_a_running_server_says_where_this_kernels_notebook_is_now(jupyter, runtime, history_dir):
    jupyter.open_notebook("s1", "k1", "studies/Fox studies.ipynb")
    notebook = tracker(runtime, "k1")
    history = notebook.open()
    assert notebook.notebook.path == str(jupyter.root / "studies" / "Fox studies.ipynb")
    assert notebook.notebook.session == "s1" and not notebook.notebook.guessed
    assert history.folder == history_dir / "Fox_studies"


def test_a_server_that_refuses_the_token_leaves_the_kernels_own_hints(tmp_path, jupyter, history_dir):
    jupyter.open_notebook("s1", "k1", "Fox.ipynb")
    jupyter.runtime_file(tmp_path / "other-runtime", token="not-the-token")
    notebook = NotebookTracker({}, environ={"JPY_SESSION_NAME": "/w/Started as.ipynb"}, kernel_id="k1",
                               runtime_dirs=[tmp_path / "other-runtime"])
    assert notebook.open().name == "Started_as"
    assert jupyter.asked == 1 and notebook.notebook.path is None and not notebook.notebook.guessed


def test_a_server_that_does_not_answer_is_given_up_after_its_timeout(tmp_path, history_dir):
    assert SERVER_TIMEOUT <= 1, "a kernel waits this long at most for a server that never answers"
    with socket.socket() as silent:  # accepts connections (the backlog does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        write_runtime_file(tmp_path / "runtime", silent.getsockname()[1], tmp_path)
        opened: list[History] = []
        looking = threading.Thread(target=lambda: opened.append(tracker([tmp_path / "runtime"], "k1").open()))
        looking.start()
        looking.join(60)  # a liveness bound, far beyond the timeout: the lookup must not hang
        assert not looking.is_alive(), "the lookup waited for a server that never answers"
    assert opened[0].name == "default"


def test_runtime_files_of_stopped_servers_are_skipped_and_left_alone(tmp_path, jupyter):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = jupyter.runtime_file(tmp_path / "stale", pid=int(gone.stdout))
    assert running_servers([tmp_path / "stale"]) == []
    assert stale.exists()


def test_with_nothing_to_tell_the_notebook_the_history_is_a_guess_said_once(tmp_path, client, history_dir):
    notebook = NotebookTracker({}, environ={}, kernel_id=None, runtime_dirs=[tmp_path / "no-runtime"])
    session = Session(client, notebook=notebook)
    assert session.history.name == "default"
    assert session.notices(using_history=False) == []  # loading the extension says nothing of it
    (line,) = session.notices()
    assert line.startswith("aigate_nb: ") and "'default'" in line and "%aigate history --name NAME" in line
    assert session.notices() == []  # once per kernel


def test_a_history_chosen_by_name_is_no_guess(tmp_path, client, history_dir):
    notebook = NotebookTracker({}, environ={}, kernel_id=None, runtime_dirs=[tmp_path / "no-runtime"])
    session = Session(client, notebook=notebook)
    session.use_history("mine")
    assert session.notices() == []


# -- following the notebook -------------------------------------------------------------------------

def test_a_notebook_renamed_while_its_kernel_runs_takes_its_history_along(jupyter, runtime, history_dir):
    jupyter.open_notebook("s1", "k1", "Untitled.ipynb")
    notebook = tracker(runtime, "k1")
    history = notebook.open()
    keep(history, 7, notebook)
    jupyter.rename("s1", "lab-flow.ipynb")
    followed = notebook.follow(history)
    assert followed is history  # the same object: a variable holding it follows too
    assert history.name == "lab-flow" and len(history) == 7 and history[6].image.size == (32, 24)
    assert not (history_dir / "Untitled").exists()
    assert read_owner(history.folder).path == str(jupyter.root / "lab-flow.ipynb")
    (line,) = notebook.notices(history)
    assert line.startswith("aigate_nb: history moved from ") and "lab-flow" in line


def test_a_kernel_restarted_after_a_rename_finds_its_history_by_its_session(jupyter, runtime, history_dir):
    jupyter.open_notebook("s1", "k1", "Untitled.ipynb")
    before = tracker(runtime, "k1")
    keep(before.open(), 7, before)
    jupyter.rename("s1", "lab-flow.ipynb")  # and the kernel restarts before it looks again
    after = tracker(runtime, "k1")
    history = after.open()
    assert history.name == "lab-flow" and len(history) == 7
    assert not (history_dir / "Untitled").exists()
    assert "following the notebook lab-flow.ipynb" in after.notices(history)[0]


def test_a_new_untitled_notebook_starts_empty_after_the_rename(jupyter, runtime, history_dir):
    jupyter.open_notebook("s1", "k1", "Untitled.ipynb")
    first = tracker(runtime, "k1")
    keep(first.open(), 7, first)
    jupyter.rename("s1", "lab-flow.ipynb")
    first.follow(first.open())
    jupyter.open_notebook("s2", "k2", "Untitled.ipynb")
    fresh = tracker(runtime, "k2")
    history = fresh.open()
    assert history.name == "Untitled" and len(history) == 0
    assert fresh.notices(history) == []


def test_a_new_notebook_never_opens_the_history_of_an_open_notebook_renamed_since(jupyter, runtime, history_dir):
    jupyter.open_notebook("s1", "k1", "Untitled.ipynb")
    first = tracker(runtime, "k1")
    first_history = first.open()
    keep(first_history, 7, first)
    jupyter.rename("s1", "lab-flow.ipynb")  # its kernel has not looked since
    jupyter.open_notebook("s2", "k2", "Untitled.ipynb")
    fresh = tracker(runtime, "k2")
    history = fresh.open()
    assert history.name == "Untitled-2" and len(history) == 0
    (line,) = fresh.notices(history)
    assert "'Untitled' belongs to another open notebook, now lab-flow.ipynb" in line
    assert "%aigate history --name Untitled" in line
    # The renamed notebook's kernel takes its history along when it next looks.
    assert first.follow(first_history).name == "lab-flow" and len(first_history) == 7


def test_a_notebook_reopened_later_opens_its_own_history(jupyter, runtime, history_dir):
    jupyter.open_notebook("s1", "k1", "Fox.ipynb")
    first = tracker(runtime, "k1")
    keep(first.open(), 3, first)
    jupyter.close_notebook("s1")
    jupyter.open_notebook("s9", "k9", "Fox.ipynb")
    again = tracker(runtime, "k9")
    history = again.open()
    assert history.name == "Fox" and len(history) == 3 and again.notices(history) == []
    assert read_owner(history.folder).session == "s9"


def test_a_notebook_renamed_while_no_kernel_ran_is_not_taken_for_the_new_one(jupyter, runtime, history_dir):
    jupyter.open_notebook("s1", "k1", "Untitled.ipynb")
    first = tracker(runtime, "k1")
    keep(first.open(), 7, first)
    jupyter.close_notebook("s1")
    os.rename(jupyter.root / "Untitled.ipynb", jupyter.root / "lab-flow.ipynb")  # the file browser's rename
    jupyter.open_notebook("s2", "k2", "Untitled.ipynb")  # a new file
    fresh = tracker(runtime, "k2")
    history = fresh.open()
    assert history.name == "Untitled-2" and len(history) == 0
    assert "'Untitled' belongs to another notebook, now lab-flow.ipynb" in fresh.notices(history)[0]
    # The renamed one is told where its history is.
    jupyter.open_notebook("s3", "k3", "lab-flow.ipynb")
    renamed = tracker(runtime, "k3")
    history = renamed.open()
    (line,) = renamed.notices(history)
    assert "kept history 'Untitled' when it was Untitled.ipynb; %aigate history --name Untitled opens it" in line


def test_a_history_kept_before_histories_recorded_their_notebook_is_opened_by_its_name(jupyter, runtime, history_dir):
    History("Fox", root=history_dir).append(result_of())
    jupyter.open_notebook("s1", "k1", "Fox.ipynb")
    notebook = tracker(runtime, "k1")
    history = notebook.open()
    assert len(history) == 1
    assert read_owner(history.folder).session == "s1"


def test_the_history_of_another_folders_notebook_of_the_same_name_is_left_alone(jupyter, runtime, history_dir):
    jupyter.open_notebook("s1", "k1", "a/Fox.ipynb")
    first = tracker(runtime, "k1")
    keep(first.open(), 2, first)
    jupyter.open_notebook("s2", "k2", "b/Fox.ipynb")
    other = tracker(runtime, "k2")
    history = other.open()
    assert history.name == "Fox-2" and len(history) == 0
    assert "another open notebook, now a/Fox.ipynb" in other.notices(history)[0]


def test_without_a_history_dir_the_history_is_beside_the_notebook_and_moves_with_it(jupyter, runtime, monkeypatch):
    monkeypatch.delenv("AIGATE_HISTORY_DIR", raising=False)
    (jupyter.root / "b").mkdir()
    jupyter.open_notebook("s1", "k1", "a/Fox.ipynb")
    notebook = tracker(runtime, "k1")
    history = notebook.open()
    keep(history, 2, notebook)
    assert history.folder == jupyter.root / "a" / ".aigate" / "Fox"
    jupyter.rename("s1", "b/Vixen.ipynb")
    assert notebook.follow(history).folder == jupyter.root / "b" / ".aigate" / "Vixen"
    assert len(history) == 2


def test_the_server_is_asked_at_most_once_per_interval(jupyter, runtime, history_dir):
    jupyter.open_notebook("s1", "k1", "Fox.ipynb")
    notebook = tracker(runtime, "k1", interval=60)
    history = notebook.open()
    asked = jupyter.asked
    jupyter.rename("s1", "Vixen.ipynb")
    for _ in range(1000):
        assert notebook.follow(history) is history
    assert jupyter.asked == asked and history.name == "Fox"


# -- in the session ---------------------------------------------------------------------------------

def test_the_sessions_history_follows_a_rename_and_the_first_result_records_its_notebook(
    jupyter, runtime, client, history_dir
):
    jupyter.open_notebook("s1", "k1", "Untitled.ipynb")
    session = Session(client, notebook=tracker(runtime, "k1"))
    session.run(Request("a fox"))
    owner = read_owner(history_dir / "Untitled")
    assert (owner.path, owner.session) == (str(jupyter.root / "Untitled.ipynb"), "s1")
    jupyter.rename("s1", "lab-flow.ipynb")
    assert session.history.name == "lab-flow" and len(session.history) == 1
    (line,) = session.notices()
    assert "history moved from" in line and (history_dir / "lab-flow" / OWNER_FILE).is_file()


def test_a_history_chosen_by_name_stays_when_the_notebook_is_renamed(jupyter, runtime, client, history_dir):
    jupyter.open_notebook("s1", "k1", "Untitled.ipynb")
    session = Session(client, notebook=tracker(runtime, "k1"))
    session.use_history("mine")
    session.run(Request("a fox"))
    jupyter.rename("s1", "lab-flow.ipynb")
    assert session.history.name == "mine" and len(session.history) == 1
    assert not (history_dir / "mine" / OWNER_FILE).exists()
