"""One batch in a process of its own: what a notebook's kernel does when it runs ``aigate_nb.batch``,
so that the benchmark can read this process's resident memory alone, or kill it halfway.

``python -m benchmarks.batchrun URL FOLDER PREFIX COUNT [--manifest PATH] [--memory]`` sends
the ``COUNT`` rows of ``batch_prompts(PREFIX, COUNT)`` at 512 px into the history ``batch`` in
``FOLDER`` and prints one JSON object: each row's status, the seconds the batch took and, with
``--memory``, the resident memory before and after (after a collection; before it, one row of
another batch is made, so that the threads, the connection and the codecs any batch loads are
not counted as growth).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

from .measure import guard_loopback, rss_mb

#: The size tier of every row: the emulator draws 512x512 pictures for it.
SIZE = "512"
CONCURRENCY = 4


def batch_prompts(prefix: str, count: int) -> list[str]:
    """The rows of a benchmark batch: ``count`` prompts, each its own picture."""
    return [f"{prefix} row {k}: a lighthouse on a cliff at dusk" for k in range(count)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.batchrun")
    parser.add_argument("url")
    parser.add_argument("folder", type=Path)
    parser.add_argument("prefix")
    parser.add_argument("count", type=int)
    parser.add_argument("--manifest", type=Path)
    parser.add_argument("--memory", action="store_true")
    args = parser.parse_args(argv)
    guard_loopback()

    from aigate_nb import Client
    from aigate_nb.records.store import History
    from aigate_nb.runs.batches import batch
    from aigate_nb.session.session import Session

    from .contenders import MODEL
    from .serve import KEY

    session = Session(Client(api_key=KEY, base_url=args.url, model=MODEL), History("batch", args.folder))
    quiet = {"session": session, "image_size": SIZE, "concurrency": CONCURRENCY, "progress": False,
             "display": False}
    before = None
    if args.memory:
        batch(batch_prompts(f"{args.prefix} warm-up", 1), manifest=args.folder / "warm-up.jsonl", **quiet)
        gc.collect()
        before = rss_mb()
    started = time.perf_counter()
    made = batch(batch_prompts(args.prefix, args.count), manifest=args.manifest, **quiet)
    seconds = time.perf_counter() - started
    after = None
    if args.memory:
        gc.collect()
        after = rss_mb()
    statuses = [row.status for row in made]
    files = [row.file for row in made]
    session.close()
    growth = None if before is None or after is None else after - before
    print(json.dumps({"statuses": statuses, "files": files, "seconds": seconds, "manifest": str(made.manifest),
                      "before_mb": before, "after_mb": after, "growth_mb": growth}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
