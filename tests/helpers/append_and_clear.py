"""Append small results to a History and clear it every so often, for the tests of
processes that append and clear at once, or are killed doing either.

    python append_and_clear.py ROOT NAME COUNT CLEAR_EVERY

Appends COUNT entries (forever when COUNT is 0), calling ``clear()`` after every
CLEAR_EVERY appends (never when it is 0). Prints ``appended <index> <id>`` after each
append and ``cleared <count>`` after each clear, flushed, so a test knows what returned.
"""

from __future__ import annotations

import io
import os
import sys

from PIL import Image

from aigate_nb.core.images import ReplyImage
from aigate_nb.core.results import ImageResult
from aigate_nb.records.store import History


def small_noisy_png() -> bytes:
    buffer = io.BytesIO()
    Image.frombytes("RGB", (16, 16), os.urandom(16 * 16 * 3)).save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    root, name, count, clear_every = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    history = History(name, root=root)
    done = 0
    while not count or done < count:
        result = ImageResult([ReplyImage("image/png", small_noisy_png())], f"pid {os.getpid()} #{done}", "test/model")
        entry = history.append(result)
        print(f"appended {entry.index} {entry.id}", flush=True)
        done += 1
        if clear_every and done % clear_every == 0:
            print(f"cleared {history.clear()}", flush=True)


if __name__ == "__main__":
    main()
