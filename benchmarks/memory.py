"""How much memory a long session holds: a fresh process makes results through a Session
into a fresh History in a temporary folder, and reads its own resident memory before and
after (after a collection), so that nothing else the benchmark did is counted.

``python -m benchmarks.memory URL PROMPT TIER COUNT [--display] [--keep]`` prints one JSON
object. ``--display`` builds each result's inline bundle, as a notebook shows it;
``--keep`` keeps every result alive, as IPython's ``Out`` does for a cell's value.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import sys
import tempfile
import time

from .measure import guard_loopback, rss_mb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory")
    parser.add_argument("url")
    parser.add_argument("prompt")
    parser.add_argument("tier")
    parser.add_argument("count", type=int)
    parser.add_argument("--display", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    guard_loopback()

    from PIL import Image

    from aigate_nb import Client
    from aigate_nb.records.store import History
    from aigate_nb.session.session import Request, Session

    from .contenders import MODEL, RATIO
    from .serve import KEY

    with tempfile.TemporaryDirectory() as folder:
        session = Session(Client(api_key=KEY, base_url=args.url, model=MODEL), History("memory", folder))
        request = Request(args.prompt, model=MODEL, aspect_ratio=RATIO, image_size=args.tier)
        # Everything a first result would load, except a result: the connection and both codecs.
        session.client.models()
        for format in ("PNG", "JPEG"):
            buffer = io.BytesIO()
            Image.new("RGB", (64, 64)).save(buffer, format)
            Image.open(buffer).load()
        gc.collect()
        before = rss_mb()
        started = time.perf_counter()
        kept = []
        for _ in range(args.count):
            result = session.run(request)
            if args.display:
                result._repr_mimebundle_()
            if args.keep:
                kept.append(result)
            del result
        seconds = time.perf_counter() - started
        gc.collect()
        after = rss_mb()
        entries = len(session.history)
        session.close()
        session.history.wait_for_thumbnails(timeout=120)  # made on a background thread: before the folder goes
    growth = None if before is None or after is None else after - before
    print(json.dumps({"before_mb": before, "after_mb": after, "growth_mb": growth, "entries": entries,
                      "seconds": seconds, "kept": len(kept)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
