"""Fixtures of the reliability suite; the harness they use is ``harness.py``."""

from __future__ import annotations

import logging

import pytest

from harness import LOGGERS, Evidence, FrontEnds, search_for_key


@pytest.fixture
def key_guard(emu, tmp_path, caplog):
    """Evidence to search for the key when the test ends, DEBUG logging of ``LOGGERS`` on.

    Fails the test if the key shows in the evidence, a log record, a file under
    ``tmp_path`` or the emulator's records.
    """
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    evidence = Evidence()
    yield evidence
    found = search_for_key(evidence, caplog.records, tmp_path, emu.requests)
    assert not found, "the key leaked: " + "; ".join(found)


@pytest.fixture
def frontends(emu, shell, tmp_path, capsys, key_guard):
    """``frontends.session(...)`` and ``frontends.run(front_end, session, prompt, route)``."""
    fe = FrontEnds(emu, shell, tmp_path, capsys, key_guard)
    yield fe
    fe.close()
