"""Shared fixtures: one emulator on loopback for the whole run, and clients pointed at it.

The repository's root conftest.py has removed the AIGATE_* variables of the
developer's shell before this runs.
"""

from __future__ import annotations

import pytest

from aigate_nb.client import Client
from aigate_nb.emulator import Emulator
from support import TEST_KEY  # noqa: F401


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
def history_dir(tmp_path, monkeypatch):
    """A private history folder for this test."""
    path = tmp_path / "history"
    monkeypatch.setenv("AIGATE_HISTORY_DIR", str(path))
    return path
