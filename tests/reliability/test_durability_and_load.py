"""Durability and load: writers killed with SIGKILL at random moments lose nothing they
committed; 200 requests at concurrency 16 through one Client and through Session.submit all
succeed and leave no sockets, threads or memory behind; the emulator stays quiet when
clients drop connections (in a notebook, its stderr is the cell's).
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from aigate_nb.core.results import ImageResult
from aigate_nb.emulator import Emulator
from aigate_nb.gateway.client import Client
from aigate_nb.records.store import History
from aigate_nb.session.session import Request, Session
from support import TEST_KEY, wait_for

REPO = Path(__file__).resolve().parents[2]
APPEND_LOOP = REPO / "tests" / "helpers" / "append_loop.py"
KILLS = 20
REQUESTS, CONCURRENCY = 200, 16


# -- killed writers ---------------------------------------------------------------------------


def complete_lines(index: Path) -> int:
    return index.read_bytes().count(b"\n") if index.exists() else 0


def reload_checked(root: Path, name: str) -> History:
    """The history as a new kernel would load it; only damaged (cut-off) lines may be reported."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = History(name, root=root)
    unexpected = [str(w.message) for w in caught if "damaged" not in str(w.message)]
    assert not unexpected, unexpected
    return history


def test_writers_killed_at_random_moments_lose_no_committed_entry(tmp_path):
    """Two writers append at once; each round both are killed at independent random moments,
    mid-image, mid-index-line or between appends. An append a writer reported as done is
    always there afterwards, whole, with an index no other entry has."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    index = tmp_path / "crash" / "index.jsonl"
    rng = random.Random(20260801)
    committed: dict[int, str] = {}  # index -> the prompt its writer reported appending
    kills = 0
    while kills < KILLS:
        before = complete_lines(index)
        writers = [
            subprocess.Popen([sys.executable, str(APPEND_LOOP), str(tmp_path), "crash"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            for _ in range(2)
        ]
        try:
            target = before + rng.randint(2, 6)
            wait_for(lambda: complete_lines(index) >= target, timeout=30)
            for writer in writers:
                deadline = time.monotonic() + rng.uniform(0, 0.03)
                while time.monotonic() < deadline:  # a random moment inside an append
                    pass
                writer.send_signal(signal.SIGKILL)
        finally:
            for writer in writers:
                writer.kill()
                writer.wait()
        kills += len(writers)
        for writer in writers:
            for line in writer.stdout.read().decode().splitlines():
                committed[int(line.split()[1])] = f"pid {writer.pid}"
            writer.stdout.close()

        history = reload_checked(tmp_path, "crash")
        indices = [entry.index for entry in history]
        assert len(indices) == len(set(indices)), "indices are unique"
        loaded = {entry.index: entry for entry in history}
        assert set(committed) <= set(loaded), f"lost: {sorted(set(committed) - set(loaded))}"
        for i in committed:
            entry = loaded[i]
            assert committed[i] in entry.prompt, "the entry is the one its writer reported"
            assert hashlib.sha256(entry.path.read_bytes()).hexdigest() == entry.sha256s[0], "its image is whole"
    assert kills == KILLS and len(committed) >= KILLS

    # After all that, a kernel appends as usual, numbered after everything there.
    history = reload_checked(tmp_path, "crash")
    last = max(entry.index for entry in history)
    entry = history.append(ImageResult(history[-1].result().originals, "after the kills", "test/model"))
    assert entry.index == last + 1
    assert reload_checked(tmp_path, "crash")[-1].prompt == "after the kills"


# -- load -------------------------------------------------------------------------------------


def open_fds() -> list[str]:
    names = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            names.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass  # the descriptor listdir itself used
    return names


def live_threads() -> int:
    """Threads alive now, leaving out the history's thumbnail thread: one a process, started by
    the first append, living as long as the process (a daemon); not a leak."""
    return sum(thread.name != "aigate-thumbnails" for thread in threading.enumerate())


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


class Baseline:
    """Descriptors, sockets, threads and memory before a load, to compare with after it."""

    def __init__(self) -> None:
        gc.collect()
        fds = open_fds()
        self.fds, self.sockets = len(fds), sum(name.startswith("socket:") for name in fds)
        self.threads = live_threads()
        self.rss = rss_bytes()

    def settled(self) -> bool:
        gc.collect()
        fds = open_fds()
        return (len(fds) <= self.fds and sum(name.startswith("socket:") for name in fds) <= self.sockets
                and live_threads() <= self.threads)

    def assert_back(self) -> None:
        wait_for(self.settled, timeout=15)
        growth = rss_bytes() - self.rss
        assert growth < 100_000_000, f"RSS grew by {growth / 1e6:.0f} MB"


@pytest.fixture
def load_emulator():
    """An emulator of its own, so that its connections and threads are counted from a clean start."""
    with Emulator(api_key=TEST_KEY) as emu:
        yield emu


@pytest.fixture
def pool_warnings(caplog):
    caplog.set_level(logging.WARNING, logger="urllib3")
    yield caplog
    assert not [r.getMessage() for r in caplog.records if "pool is full" in r.getMessage()]


def prompt_for(n: int) -> str:
    return f"load test picture {n % 8}"  # eight pictures, each drawn once by the emulator


def test_200_requests_at_concurrency_16_through_one_client(load_emulator, pool_warnings):
    with Client(api_key=TEST_KEY, base_url=load_emulator.url, retry_backoff=0.01) as warm:
        warm.generate(prompt_for(0), image_size="512")  # imports and first drawings, outside the count
    baseline = Baseline()
    with Client(api_key=TEST_KEY, base_url=load_emulator.url, retry_backoff=0.01) as client:
        with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
            results = list(pool.map(lambda n: client.generate(prompt_for(n), image_size="512"), range(REQUESTS)))
    assert len(results) == REQUESTS and all(result.size == (512, 512) for result in results)
    posts = [r for r in load_emulator.requests if r.method == "POST"]
    assert len(posts) == REQUESTS + 1 and all(r.status == 200 for r in posts), "no retries were needed"
    del results
    baseline.assert_back()


def test_200_requests_at_concurrency_16_through_session_submit(load_emulator, pool_warnings, tmp_path):
    with Client(api_key=TEST_KEY, base_url=load_emulator.url, retry_backoff=0.01) as warm:
        warm.generate(prompt_for(0), image_size="512")
    baseline = Baseline()
    session = Session(Client(api_key=TEST_KEY, base_url=load_emulator.url, retry_backoff=0.01),
                      History(name="load", root=tmp_path))
    futures = [future for n in range(REQUESTS)
               for future in session.submit(Request(prompt_for(n), image_size="512", new=True))]
    results = [future.result(timeout=120) for future in futures]
    assert sorted(result.index for result in results) == list(range(REQUESTS))
    assert len(History(name="load", root=tmp_path)) == REQUESTS
    session.close()
    del results, futures
    baseline.assert_back()


def test_the_emulator_says_nothing_when_a_client_drops_a_connection(emu, capfd):
    """In a notebook the emulator runs in the kernel: a traceback it printed would land in a cell."""
    baseline = Baseline()
    capfd.readouterr()
    for kind in ("500", "503", "html-502", "reset", "truncate"):
        emu.inject_fault(kind, count=1)
        with Client(api_key=TEST_KEY, base_url=emu.url, retry_backoff=0.01) as client:
            client.generate(f"dropped after {kind}", image_size="512")
    wait_for(baseline.settled, timeout=15)  # every handler has finished, its connection closed
    out, err = capfd.readouterr()
    assert out == "" and err == ""
