"""The HTTP side of the emulator: a threaded loopback server and the ``Emulator`` that runs it."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .billing import STARTING_BALANCE, Billing
from .cache import RenderCache
from .chat import chat_reply, parse_chat
from .errors import ApiError, google_error_body, openai_error_body
from .faults import HTML_502, NO_IMAGE_KINDS, STATUS_KINDS, Fault, FaultBook, fault_error, fault_from_json
from .generation import Plan
from .google import google_reply, parse_generate
from .limits import Limiter, Limits
from .models import CATALOG
from .records import CREDENTIAL_HEADERS, RecordedRequest, RequestLog, summarize_body
from .render import Rendered, prerendered, render

MODELS_CREATED = 1764547200  # a fixed date (2025-12-01), so that /v1/models never changes
_GOOGLE_PATH = "/v1beta/models/"
_GOOGLE_METHOD = ":generateContent"
_IMAGES_ADVICE = (
    "Gemini image models work as chat models that can return images. Use /v1/chat/completions "
    'with "modalities": ["image", "text"] for both generation and editing, not '
    "/v1/images/generations and not /v1/images/edits."
)


@dataclass
class _Context:
    """What every request handler shares with the ``Emulator``."""

    api_key: str | None = field(repr=False)
    latency: float
    faults: FaultBook
    limiter: Limiter
    log: RequestLog
    cache: RenderCache
    stopping: threading.Event
    billing: Billing = field(default_factory=Billing)
    # Prompts answered with a given picture, and their encoded replies by (route, plan).
    fixed: dict[str, Rendered] = field(default_factory=dict)
    fixed_replies: dict[tuple[bool, tuple[str, bool]], bytes] = field(default_factory=dict)


class _Abort(Exception):
    """Drop the connection without a reply (the emulator is stopping)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], context: _Context) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.context = context
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client dropping an idle keep-alive connection is normal, not worth a traceback.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would look the host up with getfqdn: a DNS query, and slow.
        socketserver.TCPServer.server_bind(self)
        host, self.server_port = self.server_address[:2]
        self.server_name = host.decode() if isinstance(host, (bytes, bytearray)) else str(host)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            (self._connections.add if open_ else self._connections.discard)(connection)

    def close_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections, so they end."""
        with self._connections_lock:
            for connection in self._connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so one client session reuses its connection
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: notebooks and tests read the process's output."""

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = do_HEAD = do_GET

    # -- plumbing ---------------------------------------------------------------------------

    def _serve(self) -> None:
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        self._context = self.server.context
        self._google = False  # error bodies in Google's shape (set on the /v1beta route)
        # Filled in as the request is understood; None for requests that are not recorded.
        self._record: RecordedRequest | None = RecordedRequest(
            method=self.command,
            path=split.path,
            query={name: values for name, values in query.items() if name != "key"},
            headers={
                name.lower(): value
                for name, value in self.headers.items()
                if name.lower() not in CREDENTIAL_HEADERS
            },
            body=None,
            prompt=None,
            model=None,
            images=(),
            fault=None,
        )
        self._logged = False
        try:
            body = self._read_body()
            self._route(split.path, query, body)
        except ApiError as error:
            self._send_error(error)
        except _Abort:
            self._finish_record(None)
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            traceback.print_exc()
            message = "The emulator failed on this request; this is a bug in aigate_nb.emulator."
            self._send_error(ApiError(500, message))

    def _read_body(self) -> bytes:
        # Exactly Content-Length bytes in one read: a 30 MB body must not be parsed line by line.
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True  # the unread chunks make the connection unusable
            raise ApiError(
                411, "Send the body with a Content-Length header; chunked uploads are not supported."
            )
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise ApiError(400, "The Content-Length header is not a number.") from None
        return self.rfile.read(length) if length > 0 else b""

    def _log_record(self) -> None:
        """Make this request's record visible to tests, once."""
        if self._record is not None and not self._logged:
            self._context.log.append(self._record)
            self._logged = True

    def _finish_record(self, status: int | None) -> None:
        # Done before the reply is written, so a test that has its reply also sees the record.
        if self._record is not None:
            self._record.status = status
            self._record.finished = time.monotonic()
            self._log_record()
            self._record = None

    def _send(
        self,
        status: int,
        payload: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
        truncate: bool = False,
    ) -> None:
        self._finish_record(status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        # Lets a client label its results as coming from the emulator, wherever it runs.
        self.send_header("X-Aigate-Emulator", "1")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        if truncate:
            self.wfile.write(payload[: len(payload) // 2])
            self.close_connection = True
        else:
            self.wfile.write(payload)

    def _send_json(
        self, status: int, body: Any, headers: dict[str, str] | None = None, truncate: bool = False
    ) -> None:
        self._send(status, json.dumps(body).encode("utf-8"), "application/json", headers, truncate)

    def _send_error(self, error: ApiError) -> None:
        google = self._google if error.shape is None else error.shape == "google"
        body = google_error_body(error) if google else openai_error_body(error)
        self._send_json(error.status, body, error.headers)

    def _pause(self, seconds: float) -> None:
        """Wait, unless the emulator stops meanwhile: then drop the request."""
        if seconds > 0 and self._context.stopping.wait(seconds):
            raise _Abort

    def _reset(self) -> None:
        """Close abruptly: SO_LINGER 0 makes close() send a TCP reset instead of a reply."""
        self._finish_record(None)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # the socket only really closes once its file objects are closed
        self.connection.close()
        self.close_connection = True

    # -- routes -----------------------------------------------------------------------------

    def _route(self, path: str, query: dict[str, list[str]], body: bytes) -> None:
        method = self.command
        if path == "/v1/models" and method == "GET":
            self._authorize(query)
            self._models(query)
        elif path == "/v1/balance" and method == "GET" and self._context.billing.balance is not None:
            self._authorize(query)
            self._send_json(200, {"balance": self._context.billing.balance, "currency": "USD"})
        elif path == "/v1/chat/completions" and method == "POST":
            self._generate(query, body, None)
        elif path in ("/v1/images/generations", "/v1/images/edits") and method == "POST":
            self._authorize(query)
            raise ApiError(400, _IMAGES_ADVICE, code="unsupported_endpoint")
        elif path.startswith(_GOOGLE_PATH) and path.endswith(_GOOGLE_METHOD) and method == "POST":
            self._google = True
            # The model id keeps its slash (google/gemini-3-pro-image), or arrives as %2F.
            self._generate(query, body, unquote(path[len(_GOOGLE_PATH): -len(_GOOGLE_METHOD)]))
        elif path in ("/emulator/faults", "/emulator/requests", "/emulator/limits", "/emulator/billing"):
            self._record = None  # control requests are not part of what tests count
            self._authorize(query)
            self._control(path, method, body)
        else:
            raise ApiError(
                404,
                f"Unknown path: {method} {path}. The emulator serves GET /v1/models, "
                "POST /v1/chat/completions and POST /v1beta/models/{model}:generateContent.",
                code="not_found",
            )

    def _authorize(self, query: dict[str, list[str]]) -> None:
        """With a key set, require it: Bearer everywhere, x-goog-api-key or ?key= on /v1beta too."""
        expected = self._context.api_key
        if expected is None:
            return
        offered = []
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            offered.append(token.strip())
        if self._google:
            offered += [self.headers["x-goog-api-key"]] if self.headers.get("x-goog-api-key") else []
            offered += query.get("key", [])
        # The key itself never appears in a message, a record or an exception.
        if not offered:
            if self._google:
                raise ApiError(
                    401,
                    "Missing API key: send it as 'Authorization: Bearer <key>', an 'x-goog-api-key' "
                    "header or a 'key' query parameter.",
                )
            raise ApiError(
                401, "Missing API key: send it as 'Authorization: Bearer <key>'.", code="missing_api_key"
            )
        if not any(hmac.compare_digest(key.encode(), expected.encode()) for key in offered):
            if self._google:
                raise ApiError(
                    401,
                    "API key not valid. Please pass a valid API key.",
                    details=[{
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                    }],
                )
            raise ApiError(
                401,
                "Incorrect API key provided: the key in the Authorization header was not accepted.",
                code="invalid_api_key",
            )

    def _models(self, query: dict[str, list[str]]) -> None:
        wanted = {
            modality.strip()
            for value in query.get("output_modalities", [])
            for modality in value.split(",")
            if modality.strip()
        }
        data = [
            {
                "id": model.id,
                "object": "model",
                "created": MODELS_CREATED,
                "owned_by": model.owner,
                "name": model.name,
                "architecture": {
                    "input_modalities": list(model.input_modalities),
                    "output_modalities": list(model.output_modalities),
                },
            }
            for model in CATALOG
            if wanted <= set(model.output_modalities)
        ]
        self._send_json(200, {"object": "list", "data": data})

    def _generate(self, query: dict[str, list[str]], raw: bytes, google_model: str | None) -> None:
        """Both generation routes: check, record the attempt, apply any fault, draw, reply."""
        self._authorize(query)
        record = self._record
        assert record is not None, "a generation request is recorded from its start"
        body = self._parse_json(raw)
        record.body = summarize_body(body)
        plan = parse_chat(body) if google_model is None else parse_generate(google_model, body)
        record.prompt, record.model = plan.prompt, plan.model.id
        record.images = tuple(source.summary for source in plan.sources)
        refusal = self._context.limiter.admit(plan.model.id, google_model is not None)
        if refusal is not None:
            record.limit, record.retry_after = refusal.limit, refusal.wait
            raise refusal.error
        header = self.headers.get("X-Emulator-Fault")
        try:
            # Header faults count attempts per body, so only they need its hash.
            fault = self._context.faults.take(header, hashlib.sha256(raw).hexdigest() if header else "")
        except ValueError as exc:
            raise ApiError(400, f"Bad X-Emulator-Fault header: {exc}.", code="invalid_fault") from None
        kind = fault.kind if fault else None
        record.fault = kind
        if kind in STATUS_KINDS and fault is not None:
            record.retry_after = fault.asked_wait
        self._log_record()  # the attempt counts from here, even while latency or a timeout holds it
        self._pause(self._context.latency)
        if kind == "reset":
            self._reset()
            return
        if kind == "html-502":
            self._send(502, HTML_502, "text/html; charset=utf-8")
            return
        if kind in STATUS_KINDS and fault is not None:
            raise fault_error(fault, self._google)
        if kind == "timeout" and fault is not None:
            self._pause(fault.sleep_seconds)
        outcome = kind if kind in NO_IMAGE_KINDS else None
        if kind is None and plan.image and plan.prompt in self._context.fixed:
            self._send(200, self._fixed_reply(plan, google_model is None), "application/json")
            return
        rendered = self._render(plan) if plan.image and outcome is None else None
        if kind == "bad-base64" and rendered is not None:
            rendered = dataclasses.replace(rendered, data=_corrupt(rendered.data))
        bill = self._context.billing.bill
        if google_model is None:
            reply = chat_reply(plan, rendered, outcome, int(time.time()), bill)
        else:
            reply = google_reply(plan, rendered, outcome, bill)
        self._send_json(200, reply, truncate=kind == "truncate")

    def _parse_json(self, raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "the body is not UTF-8"
            if self._google:
                raise ApiError(400, f"Invalid JSON payload received. {reason}.") from None
            raise ApiError(
                400,
                f"We could not parse the JSON body of your request ({reason}). Send a JSON object "
                "with Content-Type: application/json.",
                code="invalid_json",
            ) from None

    def _render(self, plan: Plan) -> Rendered:
        fixed = self._context.fixed.get(plan.prompt)
        if fixed is not None:
            return fixed
        return self._context.cache.get_or_render(plan.render_key(), lambda: render(plan.artwork()))

    def _fixed_reply(self, plan: Plan, chat: bool) -> bytes:
        """The reply to a fixed prompt, encoded on first use and then sent as the same bytes."""
        key = (chat, plan.render_key())
        body = self._context.fixed_replies.get(key)
        if body is None:
            picture = self._context.fixed[plan.prompt]
            reply = chat_reply(plan, picture, None, int(time.time())) if chat else google_reply(plan, picture, None)
            body = self._context.fixed_replies[key] = json.dumps(reply).encode("utf-8")
        return body

    def _control(self, path: str, method: str, raw: bytes) -> None:
        """The test-control endpoints of an out-of-process emulator."""
        faults = self._context.faults
        if path == "/emulator/faults" and method == "POST":
            try:
                fault = fault_from_json(self._parse_json(raw))
            except (ValueError, TypeError) as exc:
                raise ApiError(400, f"Bad fault: {exc}.", code="invalid_fault") from None
            faults.queue(fault)
            self._send_json(200, {"queued": faults.queued()})
        elif path == "/emulator/faults" and method == "DELETE":
            faults.clear()
            self._send_json(200, {"queued": []})
        elif path == "/emulator/requests" and method == "GET":
            records = [dataclasses.asdict(record) for record in self._context.log.snapshot()]
            self._send_json(200, {"requests": records})
        elif path == "/emulator/requests" and method == "DELETE":
            self._context.log.clear()
            self._send_json(200, {"requests": []})
        elif path == "/emulator/limits" and method in ("POST", "DELETE"):
            body = self._parse_json(raw) if method == "POST" else {}
            try:
                limits = Limits(**body)
            except ValueError as exc:
                raise ApiError(400, f"Bad limits: {exc}.", code="invalid_limits") from None
            except TypeError:  # not an object, or a field that is not one of the three
                raise ApiError(
                    400, "Bad limits: send a JSON object of rate_limit, style, daily_quota.", code="invalid_limits"
                ) from None
            self._context.limiter.set(limits)
            self._send_json(200, {"limits": self._context.limiter.state()})
        elif path == "/emulator/limits" and method == "GET":
            self._send_json(200, {"limits": self._context.limiter.state()})
        elif path == "/emulator/billing" and method == "GET":
            self._send_json(200, self._context.billing.settings())
        elif path == "/emulator/billing" and method == "POST":
            self._context.billing.change(**_billing_change(self._parse_json(raw)))
            self._send_json(200, self._context.billing.settings())
        else:
            raise ApiError(404, f"Unknown path: {method} {path}.", code="not_found")


def _billing_change(body: Any) -> dict[str, Any]:
    """The changes a ``POST /emulator/billing`` body asks for: ``report_cost`` (true or false)
    and ``balance`` (USD, or null for no balance endpoint)."""
    if not isinstance(body, dict) or set(body) - {"report_cost", "balance"}:
        raise ApiError(400, 'Send {"report_cost": true|false, "balance": USD|null}.', code="invalid_billing")
    change: dict[str, Any] = {}
    if "report_cost" in body:
        if not isinstance(body["report_cost"], bool):
            raise ApiError(400, "report_cost must be true or false.", code="invalid_billing")
        change["report_cost"] = body["report_cost"]
    if "balance" in body:
        balance = body["balance"]
        if balance is not None and (isinstance(balance, bool) or not isinstance(balance, (int, float))):
            raise ApiError(400, "balance must be a number of USD, or null.", code="invalid_billing")
        change["balance"] = None if balance is None else float(balance)
    return change


def _corrupt(data: str) -> str:
    """Base64 no decoder accepts: a count of data characters one more than a multiple of 4."""
    keep = (len(data) // 2) // 4 * 4 + 1
    return data[:keep] + "%%"


class Emulator:
    """The local gateway emulator, serving on a loopback port from a background thread.

    ``with Emulator() as emu: requests.get(emu.url + "/v1/models")``. With ``api_key`` set,
    requests must carry it; ``latency`` seconds are added before every generation reply.
    ``rate_limit`` (``"120/min"``), ``daily_quota`` and ``style`` (``"google"``, ``"openai"``)
    limit the generation requests with 429s of the real shapes (see ``limits.py``, ``set_limits``).
    Every generation reply is charged (its tokens at the model's rates) from ``balance``
    (USD), which ``GET /v1/balance`` reports (None: that path answers 404); with
    ``report_cost`` each reply says what it cost, as the gateway's ``usage.cost``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        latency: float = 0.0,
        rate_limit: str | None = None,
        style: str | None = None,
        daily_quota: int | None = None,
        report_cost: bool = False,
        balance: float | None = STARTING_BALANCE,
    ) -> None:
        self._address = (host, port)
        self._limits = Limits(rate_limit, style, daily_quota)
        self._context = _Context(
            api_key=api_key,
            latency=latency,
            faults=FaultBook(),
            limiter=Limiter(self._limits),
            log=RequestLog(),
            cache=RenderCache(),
            stopping=threading.Event(),
            billing=Billing(report_cost, balance),
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Emulator:
        """Bind and start serving; returns the emulator itself."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._context.stopping = threading.Event()
        self._server = _Server(self._address, self._context)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits at most this long for the loop
            name=f"aigate_nb emulator {self.url}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port, promptly even if a handler is sleeping."""
        if self._server is None:
            return
        self._context.stopping.set()  # wakes latency and timeout waits
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        key = "key required" if self._context.api_key is not None else "no key"
        return f"<Emulator {where}, {key}>"

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``: no trailing slash, no /v1."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() or use it in a with block")
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, (bytes, bytearray)) else str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (control requests aside), oldest first."""
        return self._context.log.snapshot()

    def attempts(self, prompt_substring: str) -> list[RecordedRequest]:
        """The generation requests whose prompt contains ``prompt_substring``."""
        return [r for r in self.requests if r.prompt is not None and prompt_substring in r.prompt]

    def inject_fault(
        self,
        kind: str,
        count: int | None = 1,
        *,
        retry_after: float | None = None,
        retry_after_ms: float | None = None,
        delay: float | None = None,
    ) -> None:
        """Make the next ``count`` generation requests fail with ``kind`` (None: until clear())."""
        self._context.faults.queue(Fault(kind, count, retry_after, retry_after_ms, delay))

    def serve_fixed(self, prompt: str, image: bytes) -> None:
        """Answer generation requests for exactly ``prompt`` with ``image`` (PNG, JPEG or WebP
        bytes, sent as they are) instead of a drawn picture, whatever size they ask for.

        Each route's reply is encoded once, then sent as the same bytes (its ``created`` time
        included), so that a benchmark measures the client and not the emulator. Faults still apply.
        """
        self._context.fixed[prompt] = prerendered(image)
        self._context.fixed_replies.clear()

    def set_limits(
        self, rate_limit: str | None = None, style: str | None = None, daily_quota: int | None = None
    ) -> None:
        """Limit generation requests from now on, counting from zero (no arguments: no limits).

        ``rate_limit`` (``"N/s"``, ``"N/min"``, ``"N/h"``) lets at most N through in any such
        window; ``daily_quota`` lets N through in all; ``style`` is the shape of their 429s,
        ``"google"`` or ``"openai"`` (None: each route's own). ``POST /emulator/limits`` does the same.
        """
        self._context.limiter.set(Limits(rate_limit, style, daily_quota))

    @property
    def limits(self) -> dict[str, Any]:
        """The limits in force and how many requests they let through so far (``used``)."""
        return self._context.limiter.state()

    @property
    def report_cost(self) -> bool:
        """Whether each generation reply says what it cost (``usage.cost``); settable."""
        return self._context.billing.report_cost

    @report_cost.setter
    def report_cost(self, value: bool) -> None:
        self._context.billing.change(report_cost=bool(value))

    @property
    def balance(self) -> float | None:
        """What ``GET /v1/balance`` reports now (USD): the starting balance less every charge."""
        return self._context.billing.balance

    def set_balance(self, balance: float | None) -> None:
        """Start again from ``balance`` USD (None: ``GET /v1/balance`` answers 404)."""
        self._context.billing.change(balance=balance)

    def clear(self) -> None:
        """Forget the records, the queued faults and the header faults' attempt counts; the
        limits are those given to the constructor again, counting from zero, and the billing
        is set back as it was started (cost reporting, balance)."""
        self._context.log.clear()
        self._context.faults.clear()
        self._context.limiter.set(self._limits)
        self._context.billing.reset()
