"""aigate_nb: Gemini image models in Jupyter, through the aigate gateway.

``%load_ext aigate_nb`` registers ``%%gemini_image`` and ``%aigate``. From plain
Python, ``aigate_nb.Client().generate(prompt)`` returns an ``ImageResult``.
Heavy modules load on first use so that loading the extension stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from .core.errors import (
    AigateError,
    AuthenticationError,
    BadRequestError,
    BudgetError,
    BudgetWarning,
    ConfigurationError,
    GatewayConnectionError,
    GatewayError,
    HistoryError,
    InputError,
    NoImageError,
    NotKeptError,
    QuotaExhausted,
    RateLimitError,
    RequestTimeoutError,
    ResponseError,
    ServerError,
)
from .version import __version__ as __version__

_LAZY = {
    "BatchResult": "aigate_nb.runs.batches",
    "Client": "aigate_nb.gateway.client",
    "Grid": "aigate_nb.runs.grids",
    "batch": "aigate_nb.runs.batches",
    "compare": "aigate_nb.runs.grids",
    "History": "aigate_nb.records.store",
    "HistoryEntry": "aigate_nb.records.store",
    "ImageResult": "aigate_nb.core.results",
    "Pacer": "aigate_nb.gateway.pacing",
}

__all__ = [
    "AigateError",
    "AuthenticationError",
    "BadRequestError",
    "BatchResult",
    "BudgetError",
    "BudgetWarning",
    "Client",
    "ConfigurationError",
    "GatewayConnectionError",
    "GatewayError",
    "Grid",
    "History",
    "HistoryEntry",
    "HistoryError",
    "ImageResult",
    "InputError",
    "NoImageError",
    "NotKeptError",
    "Pacer",
    "QuotaExhausted",
    "RateLimitError",
    "RequestTimeoutError",
    "ResponseError",
    "ServerError",
    "batch",
    "compare",
]


def load_ipython_extension(ip: Any) -> None:
    """``%load_ext aigate_nb``: the kernel's session (made once) and the magics."""
    from .frontends.magics import register

    register(ip)


def unload_ipython_extension(ip: Any) -> None:
    """Remove the magics; the session and its history stay for a ``%reload_ext``."""
    from .frontends.magics import unregister

    unregister(ip)


def __getattr__(name: str) -> Any:
    if name == "history":  # the current notebook's History, looked up on each access
        from .session.session import current_session

        return current_session().history
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aigate_nb' has no attribute {name!r}")
