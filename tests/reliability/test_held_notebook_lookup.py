"""Crafted Jupyter runtime files against the notebook lookup (aigate_nb/session/notebook.py reads
``jpserver-*.json`` to ask the server which notebook the kernel serves): addresses off
loopback, host names, a redirect off loopback, a huge file, wrong types, missing fields, a
token for another server, invalid JSON, a folder, a symlink to an endless file, a FIFO,
nesting past the parser's depth, a pid past the OS's range. The lookup never connects to
or resolves anything off loopback and always ends with a history, never an error.

The files are looked up in three processes at once (tests/helpers/lookup_once.py; a file
that may never return has one of its own), with memory capped and every connect and name
lookup seen by an audit hook; the
server that answers is a real one on loopback (test_notebook.py's ``FakeJupyter``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_notebook import TOKEN, FakeJupyter, write_runtime_file

REPO = Path(__file__).resolve().parents[2]
LOOKUP_ONCE = REPO / "tests" / "helpers" / "lookup_once.py"
KERNEL = "kernel-under-test"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class RedirectingServer:
    """A real server on loopback that sends every request to an address off loopback."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the name http.server calls
                self.send_response(302)
                self.send_header("Location", "http://192.0.2.1/api/sessions")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_raw(folder: Path, content: bytes) -> None:
    folder.mkdir(parents=True)
    (folder / "jpserver-4242.json").write_bytes(content)


def craft(case: str, folder: Path, jupyter: FakeJupyter, redirecting: RedirectingServer) -> None:
    """The runtime dir ``folder`` holding the crafted file of ``case``."""
    port, root = jupyter.port, jupyter.root

    def server_file(**changes) -> None:
        write_runtime_file(folder, port, root, **changes)

    if case == "address-off-loopback":
        server_file(hostname="10.1.2.3", url=f"http://10.1.2.3:{port}/")
    elif case == "host-name":
        server_file(hostname="jupyter.example.org", url=f"http://jupyter.example.org:{port}/")
    elif case == "no-hostname-url-off-loopback":
        server_file(hostname="", url=f"http://192.0.2.7:{port}/")
    elif case == "ipv4-mapped-address":
        server_file(hostname="::ffff:10.1.2.3", url=f"http://[::ffff:10.1.2.3]:{port}/")
    elif case == "redirect-off-loopback":
        write_runtime_file(folder, redirecting.port, root)
    elif case == "sound":
        server_file()
    elif case == "huge":
        server_file(padding="a" * (32 << 20))
    elif case == "wrong-types":
        write_raw(folder, json.dumps({"port": str(port), "url": [f"http://10.1.2.3:{port}/"], "hostname": 127,
                                      "token": 12345, "pid": "1", "root_dir": 5, "base_url": {"a": 1},
                                      "sock": 0}).encode())
    elif case == "root-dir-a-list":
        server_file(root_dir=[str(root), "x"])
    elif case == "missing-fields":
        write_raw(folder, b"{}")
    elif case == "token-for-another-server":
        server_file(token="not-the-token")
    elif case == "invalid-json":
        write_raw(folder, b'{"url": "http://127.0.0.1:1/", "token": ')
    elif case == "folder":
        (folder / "jpserver-4242.json").mkdir(parents=True)
    elif case == "symlink-to-an-endless-file":
        folder.mkdir(parents=True)
        (folder / "jpserver-4242.json").symlink_to("/dev/zero")
    elif case == "fifo":
        folder.mkdir(parents=True)
        os.mkfifo(folder / "jpserver-4242.json")
    elif case == "nested-too-deep":
        write_raw(folder, b"[" * 200_000 + b"]" * 200_000)
    elif case == "pid-out-of-range":
        server_file(pid=10**30)
    else:
        raise AssertionError(case)


#: The case -> the history the lookup must end with: the notebook's where the file is sound
#: but odd, else the kernel's own guess.
FOUND, GUESSED = "history Found", "history default"
EXPECTED = {
    "address-off-loopback": GUESSED,
    "host-name": GUESSED,
    "no-hostname-url-off-loopback": GUESSED,
    "ipv4-mapped-address": GUESSED,
    "redirect-off-loopback": GUESSED,
    "sound": FOUND,
    "huge": GUESSED,  # 32 MB is no runtime file: read no further than 1 MB
    "wrong-types": GUESSED,
    "root-dir-a-list": FOUND,  # a root_dir that is no text is left out; the server still names the notebook
    "missing-fields": GUESSED,
    "token-for-another-server": GUESSED,
    "invalid-json": GUESSED,
    "folder": GUESSED,
    "symlink-to-an-endless-file": GUESSED,
    "fifo": GUESSED,
    "nested-too-deep": GUESSED,
    "pid-out-of-range": GUESSED,
}


CASES = list(EXPECTED)


#: The cases that may never return get a process each; the rest share one.
ALONE = ("fifo", "symlink-to-an-endless-file")


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, dict]:
    """Each case's runtime dir looked up, in three processes at once."""
    base = tmp_path_factory.mktemp("lookups")
    jupyter = FakeJupyter(base / "notebooks")
    jupyter.root.mkdir()
    jupyter.open_notebook("s1", KERNEL, "Found.ipynb")
    redirecting = RedirectingServer()
    groups = [[case] for case in ALONE] + [[case for case in EXPECTED if case not in ALONE]]
    env = {name: value for name, value in os.environ.items() if not name.startswith(("JUPYTER", "JPY_"))}
    env.update(PYTHONPATH=str(REPO), AIGATE_HISTORY_DIR=str(base / "history"))
    running = []
    try:
        for group in groups:
            for case in group:
                craft(case, base / case, jupyter, redirecting)
            running.append((group, subprocess.Popen(
                [sys.executable, str(LOOKUP_ONCE), KERNEL, *(str(base / case) for case in group)],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )))
        found = {}
        for group, process in running:
            out, err = process.communicate(timeout=300)
            reports = [json.loads(line) for line in out.splitlines()]
            for case, report in zip(group, reports + [{"outcome": f"not looked up: {err[-300:]}"}] * len(group)):
                found[case] = report
        return found
    finally:
        for _, process in running:
            if process.poll() is None:
                process.kill()
                process.wait()
        jupyter.stop()
        redirecting.stop()


def test_the_sound_file_beside_them_is_found(outcomes):
    """The server the crafted files point at does answer: a sound file beside them is found."""
    assert outcomes["sound"]["outcome"] == FOUND


@pytest.mark.parametrize("case", CASES)
def test_a_crafted_runtime_file_sends_nothing_off_loopback_and_ends_with_a_history(outcomes, case):
    seen = outcomes[case]
    assert seen["outcome"] == EXPECTED[case]
    assert all(address[0] in LOOPBACK for address in seen["connects"]), seen["connects"]
    assert set(seen["lookups"]) <= LOOPBACK, seen["lookups"]


def test_the_token_goes_only_to_the_server_on_loopback(outcomes):
    """The one server asked with the right token is the one on loopback."""
    assert TOKEN and outcomes["token-for-another-server"]["connects"]
    assert all(address[0] == "127.0.0.1" for address in outcomes["token-for-another-server"]["connects"])
