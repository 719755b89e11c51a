"""Several kernels on one notebook: three processes append 1200 entries between them while
each clears the history now and then, and a writer killed with SIGKILL fifteen times, in
the middle of an append or of a clear. The index never holds a torn line, nothing appended
after the last clear is lost, numbering starts again at 0 and stays consistent, no image
outlives its entry, and the history opens after every kill. Real processes
(tests/helpers/append_and_clear.py) on a real folder; the kills of appends alone are
test_durability_and_load.py's.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

from aigate_nb.records.store import History
from support import wait_for

REPO = Path(__file__).resolve().parents[2]
APPEND_AND_CLEAR = REPO / "tests" / "helpers" / "append_and_clear.py"
WRITERS, APPENDS, CLEAR_EVERY = 3, 400, 130
KILL_ROUNDS, KILL_CLEAR_EVERY = 15, 3


def writer(root: Path, count: int, clear_every: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(APPEND_AND_CLEAR), str(root), "nb", str(count), str(clear_every)],
        env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def steps_of(output: str) -> list[tuple[str, str]]:
    """``("appended", id)`` and ``("cleared", count)`` as a writer reported them, in order."""
    steps = []
    for line in output.splitlines():
        word, *rest = line.split()
        steps.append((word, rest[-1]))
    return steps


def appended_since_last_clear(steps: list[tuple[str, str]]) -> list[str]:
    last = max((k for k, (word, _) in enumerate(steps) if word == "cleared"), default=-1)
    return [value for word, value in steps[last + 1:] if word == "appended"]


def opened(root: Path, killed: bool = False) -> History:
    """The history as a new kernel opens it. It must say nothing: a torn line would be
    reported; after a kill, a last line cut off is (the entry being written)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = History("nb", root)
    said = [str(w.message) for w in caught]
    assert said == [] or (killed and len(said) == 1 and "damaged" in said[0]), said
    return history


def assert_whole(history: History, killed: bool = False) -> None:
    """Every index line is a whole JSON record (but the last, after a kill); indices run from 0
    with no gap or repeat; each entry's image is whole; and, unless a writer was killed (an
    append killed before its index line leaves its image), no image or thumbnail is left of
    an entry that is gone."""
    data = history.index_path.read_bytes()
    lines = data.splitlines()
    if killed and lines and not data.endswith(b"\n"):
        lines = lines[:-1]
    assert data == b"" or data.endswith(b"\n") or killed
    records = [json.loads(line) for line in lines if line.strip()]
    assert [entry.index for entry in history] == list(range(len(records)))
    assert [entry.id for entry in history] == [record["id"] for record in sorted(records, key=lambda r: r["index"])]
    for entry in history:
        assert hashlib.sha256(entry.path.read_bytes()).hexdigest() == entry.sha256s[0]
    if killed:
        return
    images = {path.name for path in (history.folder / "images").glob("*")} if records else set()
    assert images == {entry.path.name for entry in history}
    thumbs = history.folder / "thumbs"
    ids = history.ids()
    left = [path.name for path in thumbs.glob("*") if not path.name.startswith(".")] if thumbs.exists() else []
    assert all(name.split("-")[0].split(".")[0] in ids for name in left), left


def test_three_processes_appending_and_clearing_keep_every_entry_after_the_last_clear(tmp_path):
    writers = [writer(tmp_path, APPENDS, CLEAR_EVERY) for _ in range(WRITERS)]
    outputs = []
    for process in writers:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0 and err == "", err
        outputs.append(steps_of(out))
    assert sum(word == "appended" for steps in outputs for word, _ in steps) == WRITERS * APPENDS
    assert sum(word == "cleared" for steps in outputs for word, _ in steps) == WRITERS * (APPENDS // CLEAR_EVERY)

    history = opened(tmp_path)
    assert_whole(history)
    kept = {entry.id: entry.index for entry in history}
    assert set(kept) <= {value for steps in outputs for word, value in steps if word == "appended"}
    for steps in outputs:
        mine = [value for word, value in steps if word == "appended"]
        survived = [entry_id for entry_id in mine if entry_id in kept]
        # A clear removes all that came before it: what survives of one writer is its last appends.
        assert survived == mine[len(mine) - len(survived):]
        assert [kept[entry_id] for entry_id in survived] == sorted(kept[entry_id] for entry_id in survived)
    # The writer of the last clear of all keeps every entry it appended after it.
    assert any([entry_id for entry_id in appended_since_last_clear(steps) if entry_id in kept]
               == appended_since_last_clear(steps) for steps in outputs)


class Reader:
    """The lines a process prints, collected as they come."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.lines.append(line)

    def finish(self) -> str:
        self._thread.join(timeout=30)
        return "".join(self.lines)


def test_a_writer_killed_fifteen_times_mid_append_or_mid_clear_loses_at_most_what_it_was_doing(tmp_path):
    rng = random.Random(20261208)
    killed_in = {"append": 0, "clear": 0}
    for _ in range(KILL_ROUNDS):
        before = opened(tmp_path, killed=True).ids()
        process = writer(tmp_path, 0, KILL_CLEAR_EVERY)
        reader = Reader(process)
        try:
            target = rng.randint(1, 7)
            wait_for(lambda: len(reader.lines) >= target, timeout=30)
            deadline = time.monotonic() + rng.uniform(0, 0.02)
            while time.monotonic() < deadline:  # a random moment inside the next step
                pass
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        steps = steps_of(reader.finish())
        process.stdout.close()
        process.stderr.close()

        history = opened(tmp_path, killed=True)
        assert_whole(history, killed=True)
        done = [value for word, value in steps if word == "appended"]
        since = appended_since_last_clear(steps)
        cleared = any(word == "cleared" for word, _ in steps)
        ids = history.ids()
        # What it was doing when killed: a clear after every KILL_CLEAR_EVERY appends, else an append.
        doing = "clear" if since and len(since) % KILL_CLEAR_EVERY == 0 else "append"
        killed_in[doing] += 1
        earlier = set() if cleared else before
        if doing == "append":
            assert earlier | set(since) <= ids, "an append that returned is kept"
            assert len(ids - earlier - set(since)) <= 1, "at most the append under way is added"
        else:
            assert ids in (earlier | set(since), set()), "a clear under way is done or not begun"
        assert not (ids & (set(done) - set(since))), "what a clear removed stays removed"
    assert killed_in["append"] and killed_in["clear"], killed_in
    # After all that, a kernel appends as usual, numbered after what is there.
    there = len(opened(tmp_path, killed=True))
    process = writer(tmp_path, 1, 0)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0 and err == ""
    assert out.split()[:2] == ["appended", str(there)]
    assert_whole(opened(tmp_path, killed=True), killed=True)
