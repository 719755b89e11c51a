"""The reliability suite's harness: the three front ends (the Python API, the magic in a
real InteractiveShell, the panel through its widgets) driven against an emulator, and the
search of everything a test touched for the key. Fixtures are in ``conftest.py``.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from IPython.core.displaypub import DisplayPublisher
from IPython.core.error import UsageError

from aigate_nb.core.errors import AigateError
from aigate_nb.gateway.client import Client
from aigate_nb.records.store import History
from aigate_nb.session.session import Session, set_current_session
from support import TEST_KEY

#: What counts as the key leaking: the whole key, the key without its prefix, or a run
#: of its middle (a truncated echo). The masked form ``sk-...8c0e`` is allowed.
LEAK_NEEDLES = (TEST_KEY, TEST_KEY.removeprefix("sk-"), TEST_KEY[8:20])
#: Loggers whose DEBUG records are searched for the key.
LOGGERS = ("urllib3", "requests", "aigate_nb")
#: The size the front ends ask for unless told otherwise: the smallest, so the suite stays fast.
SMALL = "512"


# -- the key guard ----------------------------------------------------------------------------


def texts_of(thing: Any, depth: int = 0) -> Iterator[str]:
    """Every string a user could get to see from ``thing``: str, repr, an exception's
    arguments and its chained causes, JSON of plain data."""
    if depth > 6:
        return
    if isinstance(thing, str):
        yield thing
    elif isinstance(thing, (bytes, bytearray)):
        yield bytes(thing).decode("latin-1")
    elif isinstance(thing, BaseException):
        yield str(thing)
        yield repr(thing)
        for arg in thing.args:
            yield from texts_of(arg, depth + 1)
        for linked in (thing.__cause__, thing.__context__):
            if linked is not None:
                yield from texts_of(linked, depth + 1)
    elif isinstance(thing, (dict, list, tuple)):
        yield json.dumps(thing, default=repr)
        yield repr(thing)
    elif thing is not None:
        yield str(thing)
        yield repr(thing)


class Evidence:
    """What a test saw (outputs, errors, objects), searched for the key at teardown."""

    def __init__(self) -> None:
        self.things: list[Any] = []

    def add(self, *things: Any) -> None:
        self.things.extend(things)


def leaks_in(label: str, text: str) -> list[str]:
    return [f"{label}: {needle!r}" for needle in LEAK_NEEDLES if needle in text]


def search_for_key(evidence: Evidence, records: list, root: Path, emulator_records: list) -> list[str]:
    """Where the key shows: in what a test added to the evidence, the log records, any file
    under ``root`` (the histories live there) or the emulator's records (whose auth header
    is stripped on arrival). Empty when it shows nowhere."""
    found: list[str] = []
    with warnings.catch_warnings():
        # A History's repr looks at its index again, and may report damaged lines a test wrote
        # on purpose; that is not what this search is about.
        warnings.simplefilter("ignore")
        for n, thing in enumerate(evidence.things):
            for text in texts_of(thing):
                found += leaks_in(f"evidence[{n}] ({type(thing).__name__})", text)
    for record in records:
        text = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        found += leaks_in(f"log record of {record.name}", text)
    for path in sorted(root.rglob("*")):
        try:
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            continue  # a folder, or a temporary file renamed since it was listed (a thumbnail being kept)
        found += leaks_in(f"file {path.relative_to(root)}", data.decode("latin-1"))
    for record in emulator_records:
        found += leaks_in(f"emulator record {record.method} {record.path}", repr(dataclasses.asdict(record)))
    return found


# -- the front ends ---------------------------------------------------------------------------


class RecordingPublisher(DisplayPublisher):
    """Keeps every display message (the status line, results), as a front end would get them."""

    def __init__(self, shell) -> None:
        super().__init__(shell=shell)
        self.messages: list[dict] = []

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs) -> None:
        self.messages.append({"data": data, "metadata": metadata or {}, "transient": transient or {}})


@dataclass
class Outcome:
    """What one request through a front end came to: a result, or the one line shown instead."""

    result: Any = None
    message: str | None = None
    extra: list[str] = field(default_factory=list)  # other lines shown besides the error or result


class FrontEnds:
    """Make sessions on the emulator and send one request through a chosen front end.

    ``run(front_end, session, prompt, route)`` returns an ``Outcome``. For the magic an
    error must be exactly one ``UsageError:`` line on stderr and nothing else, no
    traceback; for the panel, one line in its status. Everything shown is evidence.
    """

    def __init__(self, emu, shell, tmp_path: Path, capsys, evidence: Evidence) -> None:
        self.emu, self.shell, self.tmp_path, self.capsys, self.evidence = emu, shell, tmp_path, capsys, evidence
        self.sessions: list[Session] = []
        self.panels: dict[int, Any] = {}
        self._loaded: Session | None = None
        self._names_before = set(shell.user_ns)

    def session(self, name: str = "reliability", **client_options: Any) -> Session:
        options = {"api_key": TEST_KEY, "base_url": self.emu.url, "retry_backoff": 0.01, "timeout": (5, 30)}
        options.update(client_options)
        session = Session(Client(**options), History(name=name, root=self.tmp_path / "history"))
        session.set_defaults(image_size=SMALL)
        self.sessions.append(session)
        self.evidence.add(session, session.client, session.history, session.settings())
        return session

    def run(self, front_end: str, session: Session, prompt: str, route: str = "chat", line: str = "",
            **request: Any) -> Outcome:
        runner = {"api": self._api, "magic": self._magic, "panel": self._panel}[front_end]
        outcome = runner(session, prompt, route, line, request)
        self.evidence.add(outcome.result, outcome.message, outcome.extra)
        if outcome.result is not None:
            self.evidence.add(outcome.result._repr_mimebundle_())
        return outcome

    # -- the Python API: Client.generate, which raises

    def _api(self, session: Session, prompt: str, route: str, line: str, request: dict) -> Outcome:
        try:
            result = session.client.generate(prompt, route=route, **{"image_size": SMALL, **request})
        except Exception as exc:
            self.evidence.add(exc)
            assert isinstance(exc, AigateError), f"not a package error: {exc!r}"
            message = str(exc)
            assert "\n" not in message, message
            return Outcome(message=message)
        return Outcome(result=result)

    # -- the magic in a real shell

    def load(self, session: Session) -> None:
        if self._loaded is session:
            return
        self.unload()
        set_current_session(session)
        self.shell.run_line_magic("load_ext", "aigate_nb")
        self._loaded = session

    def unload(self) -> None:
        if "aigate_nb" in self.shell.extension_manager.loaded:
            self.shell.run_line_magic("unload_ext", "aigate_nb")
        set_current_session(None)
        self._loaded = None

    def cell(self, code: str) -> tuple[Any, str | None, list[str]]:
        """Run ``code`` as a cell: (its value, the UsageError line if it failed, other lines shown)."""
        self.capsys.readouterr()
        original, publisher = self.shell.display_pub, RecordingPublisher(self.shell)
        self.shell.display_pub = publisher
        try:
            executed = self.shell.run_cell(code, store_history=False)
        finally:
            self.shell.display_pub = original
        out, err = self.capsys.readouterr()
        value = executed.result
        shown = [out, err, publisher.messages]
        if value is not None:
            shown.append(self.shell.display_formatter.format(value))
        self.evidence.add(*shown, executed.error_in_exec, executed.error_before_exec)
        assert executed.error_before_exec is None, executed.error_before_exec
        assert "Traceback" not in out + err, out + err
        # Apart: a cell's value printed as "Out[n]: " would run into the next line of stderr.
        lines = [text for text in out.splitlines() + err.splitlines() if text.strip()]
        if executed.error_in_exec is None:
            return value, None, lines
        assert type(executed.error_in_exec) is UsageError, f"not a usage error: {executed.error_in_exec!r}\n{err}"
        errors = [text for text in err.splitlines() if text.startswith("UsageError: ")]
        assert len(errors) == 1 and err.strip() == errors[0], f"not one UsageError line: {err!r}"
        return None, errors[0].removeprefix("UsageError: "), [text for text in out.splitlines() if text.strip()]

    def _magic(self, session: Session, prompt: str, route: str, line: str, request: dict) -> Outcome:
        assert not request, "the magic takes options in its line"
        self.load(session)
        value, message, extra = self.cell(f"%%gemini_image --route {route} {line}\n{prompt}")
        return Outcome(result=value, message=message, extra=extra)

    # -- the panel through its widgets

    def panel(self, session: Session):
        if id(session) not in self.panels:
            from aigate_nb.frontends.panel import Panel

            panel = Panel(session)
            panel.wait(15)
            self.panels[id(session)] = panel
        return self.panels[id(session)]

    def _panel(self, session: Session, prompt: str, route: str, line: str, request: dict) -> Outcome:
        assert not line and not request, "the panel takes its options from its widgets"
        panel = self.panel(session)
        panel.route.value = route
        panel.prompt.value = prompt
        shown_before = len(panel.snapshot()[1]["aigate_nb"]["panel"])
        self.capsys.readouterr()
        panel.generate_button.click()
        panel.wait(30)
        out, err = self.capsys.readouterr()
        self.evidence.add(out, err)
        assert out == err == "", "the panel prints nothing: what it says is in its status"
        self.evidence.add(panel, panel.status_text, panel.status.value, panel.header.value, panel.details.value,
                          panel.snapshot(), panel.model.options)
        assert "\n" not in panel.status_text, panel.status_text
        assert "Traceback" not in panel.status_text
        if panel.status_is_error:
            return Outcome(result=None, message=panel.status_text)
        shown = panel.snapshot()[1]["aigate_nb"]["panel"][shown_before:]
        assert len(shown) == 1, "the result is shown once"
        return Outcome(result=session.history[-1].result())

    def close(self) -> None:
        for panel in self.panels.values():
            panel.close()
        self.unload()
        for name in set(self.shell.user_ns) - self._names_before:
            del self.shell.user_ns[name]
        for session in self.sessions:
            session.close()


def post_attempts(emu, prompt: str) -> int:
    """How many generation attempts with exactly this prompt reached the emulator."""
    return sum(1 for record in emu.requests if record.method == "POST" and record.prompt == prompt)


def history_state(session: Session) -> tuple[int, bytes | None]:
    """The history's length and its index file's bytes (None when there is none yet)."""
    path = session.history.index_path
    return len(session.history), (path.read_bytes() if path.exists() else None)


# -- replies the emulator cannot be asked for ---------------------------------------------------


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class ScriptedGateway:
    """A loopback server answering each POST with the next scripted reply (the last one
    repeats) and ``GET /v1/models`` with one model; ``attempts`` counts the POSTs.

    For replies the emulator has no fault for: odd Retry-After values, image data that is
    not an image, JSON nested deeper than a parser can follow. As "another host" it tells
    whether anything reached it at all: ``connections`` counts every connection accepted,
    ``received`` holds each request's method, path and Authorization header.
    """

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.attempts = 0
        self.connections = 0
        self.received: list[tuple[str, str, str | None]] = []
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                with gateway._lock:
                    gateway.connections += 1
                super().setup()

            def parse_request(self) -> bool:
                parsed = super().parse_request()
                if parsed:
                    with gateway._lock:
                        gateway.received.append((self.command, self.path, self.headers.get("Authorization")))
                return parsed

            def do_GET(self) -> None:
                self._answer(Reply(200, json.dumps({"object": "list", "data": [
                    {"id": "google/gemini-3.1-flash-image-preview", "object": "model"}]}).encode()))

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with gateway._lock:
                    gateway.attempts += 1
                    reply = gateway.replies.pop(0) if len(gateway.replies) > 1 else gateway.replies[0]
                self._answer(reply)

            def _answer(self, reply: Reply) -> None:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ScriptedGateway:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def chat_reply_with(data_url: str) -> bytes:
    """A well-formed chat completion whose one image is ``data_url``."""
    image = {"type": "image_url", "image_url": {"url": data_url}}
    return json.dumps({"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": None, "images": [image]}}]}).encode()
