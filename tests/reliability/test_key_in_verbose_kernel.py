"""Every way a request can fail, run by a real kernel under ``%xmode Verbose``, which prints the
locals of every frame of a traceback: the saved notebook, the history and the report hold the key
in no form, plain, JSON-escaped (``\\u0073k-...``) or cut short. Echoes of the key by the gateway,
in an error or in a successful reply's text, are masked the same way."""

from __future__ import annotations

import base64
import io
import json
import secrets
import select
import socket

import nbformat
from nbclient import NotebookClient
from PIL import Image

from aigate_nb.emulator import Emulator
from harness import Reply, ScriptedGateway

FAULTS = {
    "connect timeout": "{stalled}",
    "read timeout": "{emu}",
    "connection reset": "{emu}",
    "truncated body": "{emu}",
    "TLS error": "{emu_tls}",
    "redirect loop": "{redirects}",
    "key echoed JSON-escaped": "{escaped}",
    "key echoed cut short": "{cut}",
}
HEADERS = {"read timeout": "timeout;delay=5", "connection reset": "reset", "truncated body": "truncate"}


def needles(key: str) -> list[str]:
    escaped = "".join(f"\\u{ord(c):04x}" for c in key)
    return [key, key.removeprefix("sk-"), key[:-3], key[3:], key[8:20], key[-12:], escaped, escaped[:60],
            json.dumps(key)[1:-1]]


def error_reply(text: str) -> Reply:
    return Reply(401, json.dumps({"error": {"message": text, "type": "authentication_error"}}).encode())


def image_reply(text: str) -> Reply:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (40, 120, 200)).save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return Reply(200, json.dumps({"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": text, "images": [{"type": "image_url", "image_url": {"url": url}}]}}]
    }).encode())


def stalled_listener() -> tuple[socket.socket, list[socket.socket]]:
    """A loopback port whose accept queue is full, so that a new connection is never set up."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(server.getsockname())
        fillers.append(filler)
    # The first filler's handshake completes in the kernel: once it is connected, the queue is full.
    _, connected, _ = select.select([], fillers[:1], [], 10)
    assert connected, "the accept queue did not fill"
    return server, fillers


def test_every_fault_under_verbose_tracebacks_leaves_no_key_in_the_notebook_history_or_report(tmp_path, monkeypatch):
    key = "sk-verbose-" + secrets.token_hex(14)
    escaped = json.dumps({"error": {"message": f"Invalid key {key}"}}, ensure_ascii=True)
    escaped = escaped.replace(key, "".join(f"\\u{ord(c):04x}" for c in key))
    server, fillers = stalled_listener()
    stalled = f"http://127.0.0.1:{server.getsockname()[1]}"
    with Emulator(api_key=key) as emu, \
            ScriptedGateway(Reply(307, b"{}", {"Location": "/v1/chat/completions"})) as redirects, \
            ScriptedGateway(Reply(401, escaped.encode())) as escaped_gateway, \
            ScriptedGateway(error_reply(f"Invalid key {key[:-3]}")) as cut, \
            ScriptedGateway(image_reply(f"Here is your picture, made with the key {key}.")) as echoing:
        urls = {"stalled": stalled, "emu": emu.url, "emu_tls": emu.url.replace("http://", "https://"),
                "redirects": redirects.url, "escaped": escaped_gateway.url, "cut": cut.url}
        monkeypatch.setenv("AIGATE_API_KEY", key)
        monkeypatch.setenv("AIGATE_BASE_URL", echoing.url)
        monkeypatch.setenv("AIGATE_HISTORY_DIR", str(tmp_path / "history"))
        cells = ["%load_ext aigate_nb", "%xmode Verbose", "from aigate_nb import Client"]
        for fault, where in FAULTS.items():
            headers = {"X-Emulator-Fault": HEADERS[fault]} if fault in HEADERS else None
            cells.append(
                f"# {fault}\nclient = Client(base_url={where.format(**urls)!r}, max_retries=1, retry_backoff=0.01, "
                f"timeout=(0.5, 1.5), headers={headers!r})\nclient.generate('a picture through a fault')"
            )
        cells += [
            "%%gemini_image -s 512\na picture whose reply echoes the key",
            "import aigate_nb\nprint(aigate_nb.history[-1].text)",
            f"aigate_nb.history.export_html({str(tmp_path / 'report.html')!r}, full_size=True)",
            "%aigate history",
        ]
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
        NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
        echoed = echoing.received
    server.close()
    for filler in fillers:
        filler.close()

    errors = {cell.source.splitlines()[0][2:]: [o for o in cell.outputs if o.output_type == "error"]
              for cell in nb.cells if cell.source.startswith("# ")}
    assert set(errors) == set(FAULTS)
    for fault, [error] in errors.items():
        assert len(error.traceback) > 1, f"{fault}: a verbose traceback was shown"
        assert error.ename in ("RequestTimeoutError", "GatewayConnectionError", "AuthenticationError"), fault
    assert echoed and all(auth == f"Bearer {key}" for _, _, auth in echoed), "the reply that echoes was made"
    printed = "".join(o.get("text", "") for o in nb.cells[-3].outputs)
    assert "Here is your picture, made with the key sk-..." in printed

    text = nbformat.writes(nb)
    files = {path.name: path.read_bytes().decode("latin-1") for path in tmp_path.rglob("*") if path.is_file()}
    assert "report.html" in files and "index.jsonl" in files
    for needle in needles(key):
        assert needle not in text, f"the saved notebook holds {needle!r}"
        assert not [name for name, content in files.items() if needle in content], f"a file holds {needle!r}"
