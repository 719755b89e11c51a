"""A history's folder name: which notebook this kernel serves, as the kernel's own hints say
(session/notebook.py asks the Jupyter server first), made safe for any file system."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

DEFAULT_NAME = "default"

_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def safe_folder_name(text: str) -> str | None:
    """``text`` as a folder name any file system takes (letters, digits, ``_ . -``), or None if nothing is left."""
    name = re.sub(r"[^\w.-]+", "_", text.strip()).strip("._")[:80].rstrip("._")
    if not name:
        return None
    return name + "_" if name.lower() in _WINDOWS_RESERVED else name


def notebook_name(
    user_ns: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    fallback: str | None = None,
) -> str:
    """Which notebook this kernel serves, as a safe folder name.

    In order: ``JPY_SESSION_NAME`` (Jupyter Server gives kernels the
    notebook's path), VS Code's ``__vsc_ipynb_file__`` or ipykernel's
    ``__session__`` in the user namespace (the notebook's stem is used), then
    ``fallback`` (a name the user chose), then ``"default"``.
    """
    env = os.environ if environ is None else environ
    ns = user_ns or {}
    for path in (env.get("JPY_SESSION_NAME"), ns.get("__vsc_ipynb_file__"), ns.get("__session__")):
        if isinstance(path, str) and path.strip():
            name = safe_folder_name(notebook_stem(path))
            if name:
                return name
    if fallback:
        return safe_folder_name(fallback) or DEFAULT_NAME
    return DEFAULT_NAME


def notebook_stem(path: str) -> str:
    """``/work/My Notebook.ipynb`` (or a Windows path) -> ``My Notebook``."""
    base = re.split(r"[\\/]", path.strip())[-1]
    return base.rsplit(".", 1)[0] if "." in base[1:] else base
