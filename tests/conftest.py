"""Shared fixtures: one emulator on loopback for the whole run, and clients pointed at it.

The repository's root conftest.py has removed the AIGATE_* variables of the
developer's shell before this runs.
"""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

import aigate_nb
from aigate_nb.emulator import Emulator
from aigate_nb.gateway.client import Client
from aigate_nb.records.store import History
from aigate_nb.session.session import Session, set_current_session
from support import TEST_KEY


@pytest.fixture(scope="session")
def emulator():
    """The emulator, shared by every test; it checks the key ``TEST_KEY``."""
    with Emulator(api_key=TEST_KEY) as emu:
        yield emu


@pytest.fixture
def emu(emulator):
    """The shared emulator with its records and fault counters cleared for this test."""
    emulator.clear()
    yield emulator
    emulator.clear()


@pytest.fixture
def client(emu):
    """A client of the emulator with fast retries, so fault tests take milliseconds."""
    with Client(api_key=TEST_KEY, base_url=emu.url, retry_backoff=0.01, timeout=(5, 30)) as c:
        yield c


@pytest.fixture
def session(client, tmp_path):
    """A session of the emulator (through ``client``) with a private history."""
    made = Session(client, History("test", root=tmp_path))
    yield made
    made.close()


@pytest.fixture
def history_dir(tmp_path, monkeypatch):
    """A private history folder for this test."""
    path = tmp_path / "history"
    monkeypatch.setenv("AIGATE_HISTORY_DIR", str(path))
    return path


@pytest.fixture
def session_on(tmp_path):
    """``session_on(url)``: a session of the emulator at ``url``, with fast retries and a
    private history; closed after the test."""
    sessions = []

    def make(url: str) -> Session:
        client = Client(api_key=TEST_KEY, base_url=url, retry_backoff=0.01, timeout=(5, 30))
        sessions.append(Session(client, History("test", root=tmp_path)))
        return sessions[-1]

    yield make
    for session in sessions:
        session.close()


@pytest.fixture(scope="session")
def shell():
    """The process's InteractiveShell (a singleton), without an on-disk command history."""
    config = Config()
    config.HistoryAccessor.enabled = False
    return InteractiveShell.instance(config=config)


@pytest.fixture
def magics_on(shell):
    """``magics_on(session)``: the shell with the extension loaded and ``session`` current
    (``aigate_nb`` imported in it too); the variables a test made are removed after."""
    names_before = set(shell.user_ns)
    loaded = []

    def load(session: Session) -> InteractiveShell:
        set_current_session(session)
        shell.user_ns["aigate_nb"] = aigate_nb
        shell.run_line_magic("load_ext", "aigate_nb")
        loaded.append(session)
        return shell

    yield load
    if loaded:
        shell.run_line_magic("unload_ext", "aigate_nb")
    set_current_session(None)
    for name in set(shell.user_ns) - names_before:
        del shell.user_ns[name]
