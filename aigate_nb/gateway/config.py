"""Where requests go and with which key: the environment, a ``.env`` file, or the
built-in emulator when neither a key nor a base URL is set (``emulated.py`` starts it).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from ..core.errors import ConfigurationError
from ..core.files import read_regular_file
from ..core.models import DEFAULT_MODEL
from ..core.text import display_path

DEFAULT_HOST = "api.aigate.shop"
DEFAULT_BASE_URL = f"https://{DEFAULT_HOST}"
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
    #: The ``.env`` (as shown) that chose ``base_url``; its host gets that file's key or none.
    host_chosen_by: str | None = None


class Secret:
    """A key in transit between functions: its repr is masked, so a verbose traceback that
    prints the locals of the frames holding it shows ``sk-...abcd`` only."""

    __slots__ = ("value",)

    def __init__(self, value: str | None) -> None:
        self.value = value

    @property
    def given(self) -> bool:
        """True when there is a key (an empty one included: no key, on purpose)."""
        return self.value is not None

    def __bool__(self) -> bool:
        return bool(self.value)

    def __repr__(self) -> str:
        return f"Secret({mask_key(self.value) if isinstance(self.value, str) else type(self.value).__name__})"


def mask_key(key: str | None) -> str:
    """``sk-abcdef123456`` -> ``sk-...3456``: enough to tell keys apart, useless to anyone else."""
    if not key:
        return "(none)"
    if len(key) < 12:
        return "***"
    prefix = key[:3] if key.startswith("sk-") else ""
    return f"{prefix}...{key[-4:]}"


#: Keys shorter than this are not searched for (a key of a few letters, as tests use, is no
#: secret: masking it would garble every message); pieces of a key this long are.
SECRET_PIECE = 8
_ESCAPED = re.compile(r"\\u([0-9a-fA-F]{4})|%([0-9a-fA-F]{2})|\\x([0-9a-fA-F]{2})|\\(/)")


def mask_secret(text: str, secret: str | None) -> str:
    """``text`` with every piece of ``secret`` of ``SECRET_PIECE`` or more characters masked: the
    whole key, an echo cut short, or one written with escapes (``\\u0073k-...``, ``%73k-...``,
    which are decoded first where they hide a piece). For messages, stored replies and reports."""
    if not secret or len(secret) < SECRET_PIECE or not text:
        return text
    masked = _mask_pieces(text, secret)
    if masked is text and ("\\" in text or "%" in text):
        decoded = _ESCAPED.sub(_unescaped, text)
        if decoded != text:
            masked_decoded = _mask_pieces(decoded, secret)
            if masked_decoded is not decoded:
                return masked_decoded
    return masked


def _unescaped(match: re.Match[str]) -> str:
    code = next(group for group in match.groups() if group is not None)
    return code if code == "/" else chr(int(code, 16))


def _mask_pieces(text: str, secret: str) -> str:
    """``text`` itself when no piece of ``secret`` is in it, else a copy with each run masked."""
    spans: list[tuple[int, int]] = []
    for start in range(len(secret) - SECRET_PIECE + 1):
        piece = secret[start:start + SECRET_PIECE]
        found = text.find(piece)
        while found != -1:
            spans.append((found, found + SECRET_PIECE))
            found = text.find(piece, found + 1)
    if not spans:
        return text
    spans.sort()
    merged = [list(spans[0])]
    for begin, end in spans[1:]:
        if begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    out, last = [], 0
    for begin, end in merged:
        out += [text[last:begin], mask_key(secret)]
        last = end
    out.append(text[last:])
    return "".join(out)


def check_api_key(key: str | None) -> str | None:
    """``key`` without the whitespace around it (a key read from a file often ends in a
    newline); a key that still cannot go in an HTTP header is refused without showing it."""
    if key is None:
        return None
    if not isinstance(key, str):
        raise ConfigurationError(f"The API key must be text, not {type(key).__name__}.")
    key = key.strip()
    if not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
        del key  # a verbose traceback shows this frame's locals
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


def normalise_base_url(url: str, source: str | None = None) -> str:
    """The base URL as requests will send it, checked (see ``parse_base_url``), without a
    trailing ``/`` or ``/v1`` (the routes add it). ``source`` says where it was set, for messages."""
    return parse_base_url(url, source).url


@dataclass(frozen=True)
class BaseURL:
    """A base URL read once by urllib3's parser, the one requests sends with: ``host`` is the
    host a request connects to, and ``url`` is rebuilt from these parts alone."""

    scheme: str
    host: str
    port: int | None
    path: str

    @property
    def url(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}://{self.host}{port}{self.path}"

    @property
    def is_default_gateway(self) -> bool:
        """True for the gateway's own host, whatever the path: a key sent there goes where it belongs."""
        return (self.scheme, self.host, self.port or 443) == ("https", DEFAULT_HOST, 443)


#: Characters that no base URL needs and that parsers read differently (``\`` is a path to one
#: and the end of the host to another; ``@`` brings a user:password; ``?`` and ``#`` end the path).
_REFUSED_IN_URL = {"\\": "a backslash", "@": "a user name or password (@)", "?": "a query (?)", "#": "a fragment (#)"}


def parse_base_url(url: str, source: str | None = None) -> BaseURL:
    """``url`` read once, with the parser the transport uses, or ``ConfigurationError`` in one line.

    Refused: anything but printable ASCII (whitespace and control characters included; the
    whitespace around it, as a file's line ending, is dropped), a backslash, user:password, a
    query, a fragment, a scheme other than http or https, no host, a port that is not a number.
    What is left cannot be read two ways, so the host checked is the host connected to.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"The base URL must be text such as {DEFAULT_BASE_URL}, not {type(url).__name__}.")
    text = url.strip()
    shown = _shown_url(text) + (f" ({source})" if source else "")
    if not text.isascii() or not text.isprintable() or any(c.isspace() for c in text):
        raise ConfigurationError(
            f"The base URL {shown} holds a space, a control character or a character outside plain ASCII; "
            f"write it like {DEFAULT_BASE_URL} (a host name in Unicode goes in its xn-- form)."
        )
    for char, what in _REFUSED_IN_URL.items():
        if char in text:
            raise ConfigurationError(
                f"The base URL {shown} holds {what}, which no gateway URL needs; write only the scheme, host, "
                f"port and path, like {DEFAULT_BASE_URL} (the key goes in AIGATE_API_KEY)."
            )
    scheme = text.partition("://")[0].lower() if "://" in text else ""
    if scheme not in ("http", "https"):
        raise ConfigurationError(
            f"The base URL {shown} has no http:// or https:// scheme; write it like {DEFAULT_BASE_URL} (without /v1)."
        )
    try:
        parts = parse_url(text)
    except LocationParseError:
        parts = None
    if parts is None or not parts.host or not _is_host(parts.host):
        raise ConfigurationError(
            f"The base URL {shown} has no host name, or a port that is not a number from 1 to 65535; "
            f"write it like {DEFAULT_BASE_URL} or http://127.0.0.1:8000."
        )
    path = (parts.path or "").rstrip("/")
    path = path[:-3] if path.endswith("/v1") else path
    return BaseURL(scheme=scheme, host=parts.host.lower(), port=parts.port, path=path.rstrip("/"))


_HOST_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?", re.IGNORECASE)


def _is_host(host: str) -> bool:
    """A host name of letters, digits and hyphens in dotted labels, or an IP address."""
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return host.endswith("]")
    return all(_HOST_LABEL.fullmatch(label) for label in host.removesuffix(".").split("."))


def _shown_url(text: str) -> str:
    """``text`` fit for a one-line message: no user:password, no control characters, not too long."""
    scheme, sep, rest = text.partition("://")
    authority, slash, path = rest.partition("/")
    if "@" in authority or "\\" in authority:
        authority = "..." + authority.rpartition("@")[2].rpartition("\\")[2]
    shown = f"{scheme}{sep}{authority}{slash}{path}" if sep else text
    shown = "".join(c if c.isprintable() and not c.isspace() or c == " " else "?" for c in shown)
    return repr(shown[:100] + ("..." if len(shown) > 100 else ""))


def is_loopback(url: str) -> bool:
    """True when ``url``'s host, as the transport reads it, is this machine by name or address."""
    try:
        host = parse_url(url).host or ""
    except LocationParseError:
        return False
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(environ: Mapping[str, str] | None = None, dotenv: Path | None = None) -> Settings:
    """Settings from the environment, then ``.env`` in the working directory, name by name.

    With neither a key nor a base URL, requests go to the built-in emulator. The environment
    is the user's; a folder's ``.env`` may be anyone's (a cloned repository's). So a host that
    the ``.env`` chose (``AIGATE_BASE_URL`` there and not in the environment, other than the
    default gateway) receives a key only from that same file, never the environment's, loopback
    included: on a shared machine another user may listen on a loopback port. With no key in
    the file, requests go to it without one (``Settings.host_chosen_by`` names the file).
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
    base = env.get("AIGATE_BASE_URL") or None
    from_the_file = "AIGATE_BASE_URL" not in from_env
    parsed = None
    if base:
        where = display_path(dotenv) if from_the_file else "the environment"
        try:
            parsed = parse_base_url(base, f"AIGATE_BASE_URL in {where}")  # read once, checked on what was read
        except ConfigurationError as exc:
            return str(exc)
    base_url = parsed.url if parsed else None
    chosen_by = None
    if parsed and from_the_file and not parsed.is_default_gateway:
        chosen_by = display_path(dotenv)
        key_source: Mapping[str, str] = from_file  # the file's own key, or none
    else:
        key_source = env
    key = (key_source.get("AIGATE_API_KEY") or "").strip() or None  # a key from a secret file may end in a newline
    return Settings(
        api_key=key,
        base_url=base_url,
        model=env.get("AIGATE_MODEL") or DEFAULT_MODEL,
        history_dir=env.get("AIGATE_HISTORY_DIR") or None,
        use_emulator=key is None and base is None,
        prices=env.get("AIGATE_PRICES") or None,
        budget=env.get("AIGATE_BUDGET") or None,
        host_chosen_by=chosen_by,
    )


def is_default_gateway(url: str) -> bool:
    """True for the gateway's own host, whatever the path: a key sent there goes where it belongs."""
    try:
        return parse_base_url(url).is_default_gateway
    except ConfigurationError:
        return False
