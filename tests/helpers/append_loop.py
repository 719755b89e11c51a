"""Append synthetic results to a History in a loop, for the crash and multi-process tests.

    python append_loop.py ROOT NAME [COUNT]

Appends COUNT entries (forever without COUNT), each with a noisy PNG large
enough that a kill often lands while an image or the index line is written.
Prints "appended <index>" after each append.
"""

from __future__ import annotations

import io
import os
import sys

from PIL import Image

from aigate_nb.core.images import ReplyImage
from aigate_nb.core.results import ImageResult
from aigate_nb.records.store import History


def noisy_png(side: int) -> bytes:
    buf = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buf, format="PNG", compress_level=0)
    return buf.getvalue()


def main() -> None:
    root, name = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else None
    history = History(name, root=root)
    done = 0
    while count is None or done < count:
        image = ReplyImage("image/png", noisy_png(256))
        result = ImageResult([image], f"entry from pid {os.getpid()} #{done}", "test/model")
        entry = history.append(result)
        print(f"appended {entry.index}", flush=True)
        done += 1


if __name__ == "__main__":
    main()
