"""``python -m aigate_nb.emulator``: print the base URL on the first line, serve until stopped."""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
import threading

from .billing import STARTING_BALANCE
from .server import Emulator


def _balance(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount of USD (or none)") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost could point anywhere


def main(argv: list[str] | None = None) -> int:
    """Run the emulator in the foreground; exit 0 on SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m aigate_nb.emulator",
        description="Serve a local emulator of the aigate gateway (no key, no network needed).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default 0: any free port)")
    parser.add_argument("--latency", type=float, default=0.0, metavar="SECONDS",
                        help="delay added before every generation reply")
    parser.add_argument("--api-key", default=None, metavar="KEY",
                        help="require this key (default: accept any key or none)")
    parser.add_argument("--report-cost", action="store_true",
                        help="say in each reply what it cost (usage.cost), as the gateway may")
    parser.add_argument("--balance", type=_balance, default=STARTING_BALANCE, metavar="USD",
                        help=f"what GET /v1/balance starts from (default {STARTING_BALANCE:g}; "
                             "'none': that path answers 404)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a --host that other machines can reach")
    parser.add_argument("--rate-limit", default=None, metavar="N/UNIT",
                        help="answer 429 beyond N generation requests per s, min or h, e.g. 120/min")
    parser.add_argument("--daily-quota", type=int, default=None, metavar="N",
                        help="answer 429 (a used-up per-day quota) after N generation requests")
    parser.add_argument("--limit-style", choices=("google", "openai"), default=None,
                        help="shape of those 429s (default: each route's own)")
    args = parser.parse_args(argv)
    if not _is_loopback(args.host) and not args.allow_remote:
        print(
            f"refusing to listen on {args.host}: the emulator is meant for this machine only and "
            "has no real security; pass --allow-remote to serve other machines anyway.",
            file=sys.stderr,
        )
        return 2

    try:
        emulator = Emulator(
            args.host, args.port, api_key=args.api_key, latency=args.latency,
            rate_limit=args.rate_limit, style=args.limit_style, daily_quota=args.daily_quota,
            report_cost=args.report_cost, balance=args.balance,
        )
    except ValueError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    with emulator:
        print(emulator.url, flush=True)  # the first line: scripts and test fixtures read it
        print("aigate_nb emulator serving; stop it with Ctrl+C.", file=sys.stderr, flush=True)
        stopped.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
