"""The emulator the benchmarks talk to, in its own process so that serving never competes
with the measured client for the interpreter.

``python -m benchmarks.serve MANIFEST [--latency S]`` answers each prompt of the JSON manifest
(``{prompt: image path}``) with that image, sent as fixed bytes (``Emulator.serve_fixed``),
prints its URL as the first line, and serves until its standard input closes, so that it
never outlives the benchmark that started it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from aigate_nb.emulator import Emulator

#: The key the benchmark's emulator requires; every client under test sends it.
KEY = "sk-bench-0123456789abcdef"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve")
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args(argv)
    manifest = json.loads(args.manifest.read_text())
    with Emulator("127.0.0.1", 0, api_key=KEY, latency=args.latency) as emulator:
        for prompt, path in manifest.items():
            emulator.serve_fixed(prompt, Path(path).read_bytes())
        print(emulator.url, flush=True)
        sys.stdin.read()  # until the benchmark closes the pipe (or dies)
    return 0


@contextlib.contextmanager
def served(manifest: dict[str, Path], folder: Path, latency: float = 0.0) -> Iterator[str]:
    """Run the emulator process for ``manifest``; yields its base URL."""
    path = folder / f"manifest-{latency:g}.json"
    path.write_text(json.dumps({prompt: str(file) for prompt, file in manifest.items()}))
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.serve", str(path), "--latency", str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        url = process.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the benchmark emulator did not start (it said {url!r})")
        yield url
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    sys.exit(main())
