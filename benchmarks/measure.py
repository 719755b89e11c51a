"""Timing, memory readings, the rows of the report, and the guard that keeps every
connection of a benchmark process on loopback."""

from __future__ import annotations

import gc
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aigate_nb.gateway.config import is_loopback


@dataclass
class Row:
    """One figure of the report: a ratio or a size measured in this run, and its goal."""

    figure: str
    case: str
    value: float
    unit: str  # "x" for a ratio, else "KB", "MB", "ms", "/min" (a rate), "%" or "rows" (a count)
    goal: float | None  # at most (at least, with at_least); None: reported, no goal
    detail: str
    measures: dict[str, Any] = field(default_factory=dict)
    at_least: bool = False  # the goal is a floor (a rate to reach), not a ceiling

    @property
    def met(self) -> bool | None:
        if self.goal is None:
            return None
        return self.value >= self.goal if self.at_least else self.value <= self.goal


def sample_times(contenders: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Seconds of ``repeats`` runs of each contender, interleaved so that any drift of the
    machine touches all alike, after one untimed warm-up run each; a collection before each run."""
    for run in contenders.values():
        run()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, run in contenders.items():
            gc.collect()
            started = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - started)
    return samples


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def rss_mb() -> float | None:
    """This process's resident memory now, in MB (None where it cannot be read)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / 2**20


def _loopback(address: Any) -> bool:
    if not isinstance(address, tuple):
        return True  # a Unix socket: local by definition
    host = str(address[0])
    return is_loopback(f"http://[{host}]" if ":" in host else f"http://{host}")


def guard_loopback() -> None:
    """Refuse any connection (or name lookup) of this process that is not to loopback, and keep
    proxies out of the way: the SDKs under test must never reach the internet."""
    for name in [n for n in os.environ if n.lower() in ("http_proxy", "https_proxy", "all_proxy")]:
        del os.environ[name]
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"
    if getattr(socket.socket.connect, "_loopback_only", False):
        return
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def checked(method):
        def guarded(self, address):
            if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
                raise ConnectionRefusedError(f"benchmarks connect to loopback only, not {address!r}")
            return method(self, address)

        guarded._loopback_only = True
        return guarded

    socket.socket.connect = checked(connect)
    socket.socket.connect_ex = checked(connect_ex)
    getaddrinfo = socket.getaddrinfo

    def local_names_only(host, *args, **kwargs):  # no name lookups leave the machine either
        if host is not None and not _loopback((host.decode() if isinstance(host, bytes) else host, 0)):
            raise socket.gaierror(f"benchmarks look up loopback names only, not {host!r}")
        return getaddrinfo(host, *args, **kwargs)

    socket.getaddrinfo = local_names_only
