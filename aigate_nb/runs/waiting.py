"""Waiting for submitted requests in a front end that blocks (a cell): one status
line that counts the seconds, updated in place, and the outcomes at the end.
"""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

from ..core.errors import StoppedWaiting
from ..session.session import Outcome, Request, outcome

#: Seconds between two updates of the status line.
STATUS_INTERVAL = 0.5


def progress_bar(total: int, **options: Any) -> Any:
    """A ``tqdm`` bar of ``total`` steps: tqdm's ipywidgets bar in a Jupyter kernel, its text
    bar on stderr anywhere else.

    Chosen by the shell running this code, where ``tqdm.auto`` goes by the modules imported so
    far: once anything has imported ipykernel's shell module, it draws widgets in a terminal
    too, where they print as one line of text per update."""
    try:
        from IPython import get_ipython

        in_kernel = getattr(get_ipython(), "kernel", None) is not None
    except ImportError:
        in_kernel = False
    if in_kernel:
        from tqdm.notebook import IProgress
        from tqdm.notebook import tqdm as widget_bar

        if IProgress is not None:  # ipywidgets is there
            return widget_bar(total=total, **options)
    from tqdm.std import tqdm as text_bar

    return text_bar(total=total, **options)


def status_label(request: Request, count: int, emulated: bool) -> str:
    """``Generating 2 variants with google/gemini-3-pro-image | 16:9 | 2K (emulator)``, for a
    request whose defaults are filled in."""
    parts = [str(request.model)] + [value for value in (request.aspect_ratio, request.image_size) if value]
    verb = "Editing" if request.images else "Generating"
    what = f"{verb} {count} variants" if count > 1 else verb
    where = " (emulator)" if emulated else ""
    return f"{what} with {' | '.join(parts)}{where}"


class StatusLine:
    """One line of output that says how long the wait has been, updated in place.

    Only a front end that can update an output in place (a Jupyter kernel) gets
    it; a terminal would print a new line at every update, so it gets none.
    """

    def __init__(self, shell: Any, label: str, count: int) -> None:
        from IPython.core.displaypub import DisplayPublisher
        from IPython.display import display

        self.label = label
        self.count = count
        self.handle = None
        if type(shell.display_pub) is not DisplayPublisher:
            self.handle = display({"text/plain": self._text(0, 0.0)}, raw=True, display_id=True)

    def _text(self, done: int, elapsed: float) -> str:
        progress = f"{done} of {self.count} done, " if self.count > 1 else ""
        return f"{self.label}: {progress}{elapsed:.0f} s"

    def show(self, done: int, elapsed: float) -> None:
        if self.handle is not None:
            self.handle.update({"text/plain": self._text(done, elapsed)}, raw=True)

    def clear(self) -> None:
        if self.handle is not None:
            self.handle.update({"text/plain": ""}, raw=True)
            self.handle = None


def wait_for(futures: list[concurrent.futures.Future], status: StatusLine | None = None) -> list[Outcome]:
    """Wait for every future, showing the progress on ``status``, and return their outcomes
    in order; the status line is left empty for what is shown below it.

    Interrupting stops the waiting only (``StoppedWaiting``): the requests go on, and
    their results still join the history.
    """
    started = time.monotonic()
    try:
        while True:
            done, pending = concurrent.futures.wait(futures, timeout=STATUS_INTERVAL)
            if not pending:
                break
            if status is not None:
                status.show(len(done), time.monotonic() - started)
    except KeyboardInterrupt:
        raise StoppedWaiting(time.monotonic() - started, len(futures)) from None
    finally:
        if status is not None:
            status.clear()
    return [outcome(future) for future in futures]
