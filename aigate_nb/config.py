"""Where requests go and with which key: the environment, a ``.env`` file, or the
built-in emulator when neither a key nor a base URL is set.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigurationError
from .files import read_regular_file
from .models import DEFAULT_MODEL

DEFAULT_BASE_URL = "https://api.aigate.shop"
#: A .env file holds a few settings; one larger than this is not one to read.
MAX_DOTENV_BYTES = 1_000_000


@dataclass(frozen=True)
class Settings:
    """Resolved settings. ``api_key`` is left out of the repr."""

    api_key: str | None = field(repr=False)
    base_url: str | None
    model: str
    history_dir: str | None
    use_emulator: bool
    #: ``AIGATE_PRICES``: a JSON price file (see ``costs.load_prices``); ``AIGATE_BUDGET``: USD.
    prices: str | None = None
    budget: str | None = None


def mask_key(key: str | None) -> str:
    """``sk-abcdef123456`` -> ``sk-...3456``: enough to tell keys apart, useless to anyone else."""
    if not key:
        return "(none)"
    if len(key) < 12:
        return "***"
    prefix = key[:3] if key.startswith("sk-") else ""
    return f"{prefix}...{key[-4:]}"


def check_api_key(key: str | None) -> str | None:
    """``key`` without the whitespace around it (a key read from a file often ends in a
    newline); a key that still cannot go in an HTTP header is refused without showing it."""
    if key is None:
        return None
    if not isinstance(key, str):
        raise ConfigurationError(f"The API key must be text, not {type(key).__name__}.")
    key = key.strip()
    if not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
        raise ConfigurationError(
            "The API key holds a space, a line break or a character outside plain ASCII (often a dash or "
            "quote changed by copying); copy the key again from the gateway's dashboard."
        )
    return key or None


def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a ``.env`` file; comments, ``export`` and quotes allowed."""
    values: dict[str, str] = {}
    try:
        lines = read_regular_file(path, MAX_DOTENV_BYTES).decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):  # FileRefused too: a FIFO there is not waited on
        return values
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if value[:1] in ("'", '"') and value.find(value[0], 1) > 0:
            value = value[1:value.find(value[0], 1)]  # what follows the closing quote is a comment
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[name.strip()] = value
    return values


def normalise_base_url(url: str) -> str:
    """Check the scheme and drop a trailing ``/`` or ``/v1`` (the routes add it)."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"The base URL {text!r} has no http:// or https:// scheme; "
            f"write it like {DEFAULT_BASE_URL} (without /v1)."
        )
    text = text.rstrip("/")
    return text[:-3] if text.endswith("/v1") else text


def display_path(path: str | os.PathLike) -> str:
    """A path as shown in outputs that get shared: relative to the working directory (the
    notebook's folder) when inside it, else its last three parts, never the author's home."""
    path = Path(path)
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return Path(*path.parts[-3:]).as_posix()


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(environ: Mapping[str, str] | None = None, dotenv: Path | None = None) -> Settings:
    """Settings from the environment, then ``.env`` in the working directory, name by name.

    With neither a key nor a base URL, requests go to the built-in emulator. A base URL
    from the ``.env`` counts only together with a key from that same file, or when it is
    loopback or the default gateway: otherwise the key of the environment (or none) would go
    to a host that a folder chose, such as a cloned repository's. That is refused, in one
    line that names the file and the host.
    """
    path = dotenv if dotenv is not None else Path.cwd() / ".env"
    resolved = _resolve(read_dotenv(path), os.environ if environ is None else environ, path)
    if isinstance(resolved, str):
        # Raised here, where no local holds the key or the environment: a verbose traceback
        # (%xmode Verbose) shows the locals of every frame it passes through.
        raise ConfigurationError(resolved)
    return resolved


def _resolve(from_file: Mapping[str, str], from_env: Mapping[str, str], dotenv: Path) -> Settings | str:
    """The settings, or why they are refused."""
    env = {**from_file, **from_env}
    key = (env.get("AIGATE_API_KEY") or "").strip() or None  # a key from a secret file may end in a newline
    base = env.get("AIGATE_BASE_URL") or None
    try:
        base_url = normalise_base_url(base) if base else None
    except ConfigurationError as exc:
        return str(exc)
    if base_url and "AIGATE_BASE_URL" not in from_env:
        key_from_file = key is not None and "AIGATE_API_KEY" not in from_env
        if not key_from_file and not is_loopback(base_url) and not is_default_gateway(base_url):
            return _foreign_host_refusal(dotenv, base_url, environment_key=key is not None)
    return Settings(
        api_key=key,
        base_url=base_url,
        model=env.get("AIGATE_MODEL") or DEFAULT_MODEL,
        history_dir=env.get("AIGATE_HISTORY_DIR") or None,
        use_emulator=key is None and base is None,
        prices=env.get("AIGATE_PRICES") or None,
        budget=env.get("AIGATE_BUDGET") or None,
    )


def is_default_gateway(url: str) -> bool:
    """True for the gateway's own host, whatever the path: a key sent there goes where it belongs."""
    parts, default = urlsplit(url), urlsplit(DEFAULT_BASE_URL)
    try:
        port = parts.port
    except ValueError:  # not a number: not the gateway's URL either
        return False
    return (parts.scheme, parts.hostname, port) == (default.scheme, default.hostname, None)


def _foreign_host_refusal(dotenv: Path, base_url: str, environment_key: bool) -> str:
    parts = urlsplit(base_url)
    host = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"  # no user:password@ from the file
    sent = (
        "which would then receive the AIGATE_API_KEY of your environment"
        if environment_key
        else "with no AIGATE_API_KEY beside it"
    )
    return (
        f"The file {display_path(dotenv)} sets AIGATE_BASE_URL to {host}, {sent}; nothing was sent. "
        "A folder's .env may choose the host only together with the key for it: put AIGATE_API_KEY in "
        "that file too, set AIGATE_BASE_URL in the environment instead, or remove the line."
    )


_emulator_lock = threading.Lock()
_emulator = None


def shared_emulator_url() -> str:
    """Start the in-process emulator once per process (on a free loopback port) and return its URL."""
    global _emulator
    with _emulator_lock:
        if _emulator is None:
            from .emulator import Emulator

            _emulator = Emulator()
            _emulator.start()
            atexit.register(_emulator.stop)
        return _emulator.url


def is_shared_emulator(url: str) -> bool:
    """True for the URL of the emulator this process started."""
    return _emulator is not None and _emulator.url == url
