"""A local stand-in for the aigate gateway, so that everything works offline and without a key.

``with Emulator() as emu:`` serves ``GET /v1/models``, ``POST /v1/chat/completions`` and
``POST /v1beta/models/{model}:generateContent`` on a loopback port, in the gateway's shapes,
with its validation, and draws deterministic pictures of the documented pixel sizes (one per
seed). Faults (``faults.py``) and rate limits or a daily quota (``limits.py``) make it fail on
purpose. From a shell: ``python -m aigate_nb.emulator`` prints its base URL and serves until stopped.
It shares no code with the client, so that a bug in one is not mirrored in the other.
"""

from __future__ import annotations

from .faults import KINDS as FAULT_KINDS
from .inputs import ImageSummary
from .records import RecordedRequest
from .server import Emulator

__all__ = ["FAULT_KINDS", "Emulator", "ImageSummary", "RecordedRequest"]
