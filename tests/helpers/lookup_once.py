"""Ask which notebook this kernel serves, once from each of some runtime dirs, and say what
happened: for the tests of crafted Jupyter runtime files.

    python lookup_once.py KERNEL_ID RUNTIME_DIR [RUNTIME_DIR ...]

Prints one JSON object a runtime dir, in order: ``outcome`` (``history <name>``,
``raised <type>: <message>``, or ``stuck`` when the lookup had not returned after
``STUCK_AFTER`` seconds, which ends the process), ``connects`` (the address of every socket
connect it made) and ``lookups`` (every host name it asked the resolver for), both seen by
an audit hook, so nothing is stubbed. Memory is capped, so that a runtime file that never
ends fails this process instead of the machine.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading

#: Far beyond the lookup's own limits (one second a server), even on a loaded machine.
STUCK_AFTER = 12.0
MEMORY_CAP = 1 << 30

connects: list[list] = []
lookups: list[str] = []


def audit(event: str, args: tuple) -> None:
    if event == "socket.connect":
        address = args[1]
        connects.append(list(address) if isinstance(address, tuple) else [str(address)])
    elif event == "socket.getaddrinfo":
        lookups.append(str(args[0]))


def look_once(kernel_id: str, runtime_dir: str) -> str:
    from aigate_nb.session.notebook import NotebookTracker

    outcome: list[str] = []

    def look() -> None:
        try:
            history = NotebookTracker({}, environ={}, kernel_id=kernel_id, runtime_dirs=[runtime_dir]).open()
            outcome.append(f"history {history.name}")
        except BaseException as exc:  # noqa: BLE001 - what escapes is what the test is about
            outcome.append(f"raised {type(exc).__name__}: {exc}"[:300])

    thread = threading.Thread(target=look, daemon=True)
    thread.start()
    thread.join(STUCK_AFTER)
    return outcome[0] if outcome else "stuck"


def main() -> None:
    kernel_id, runtime_dirs = sys.argv[1], sys.argv[2:]
    import aigate_nb.session.notebook  # noqa: F401 - imported before the cap and the hook

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    sys.addaudithook(audit)
    for runtime_dir in runtime_dirs:
        connects.clear()
        lookups.clear()
        outcome = look_once(kernel_id, runtime_dir)
        print(json.dumps({"outcome": outcome, "connects": connects, "lookups": lookups}), flush=True)
        if outcome == "stuck":
            break
    os._exit(0)  # a stuck lookup's thread would keep the process from ending


if __name__ == "__main__":
    main()
