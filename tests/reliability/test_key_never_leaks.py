"""The key never shows: not in a notebook executed by a real kernel (outputs, tracebacks,
``%aigate config``), not in reprs, not in verbose tracebacks, not in logs, files or the
emulator's records. The fault matrix and the bad-input catalogue run under the same guard
(``key_guard``); these are the places they do not reach. Plain http:// to another host
with a key set is warned about, from Python and from ``%aigate use gateway``. A folder's
``.env`` that names another host without the key for it is refused before anything is sent.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import signal
import threading
import warnings

import nbformat
import pytest
from IPython.core.ultratb import VerboseTB
from nbclient import NotebookClient

from aigate_nb.core.errors import AigateError, AuthenticationError, ConfigurationError
from aigate_nb.emulator import Emulator
from aigate_nb.gateway.client import Client
from aigate_nb.gateway.config import load_settings, mask_key
from aigate_nb.records.store import History
from aigate_nb.session.session import Request, Session, set_current_session
from harness import LEAK_NEEDLES, Evidence, Reply, ScriptedGateway, search_for_key, texts_of
from support import TEST_KEY

NOTEBOOK_CELLS = [
    "%load_ext aigate_nb",
    "%%gemini_image -s 512\na lighthouse through a flaky gateway",
    "%%gemini_image -m google/gemini-9-imaginary\nrefused by the gateway",
    "%%gemini_image -a 7:3\nrefused before sending",
    "from aigate_nb import Client\nclient = Client(max_retries=0)\nclient",
    "client.generate('a cat', model='google/gemini-9-imaginary')",
    "%xmode Verbose",
    "client.generate('a dog', model='google/gemini-9-imaginary', route='google')",
    "%aigate config",
    "%aigate history",
    "import aigate_nb.session.session as s\n"
    "print(repr(s.current_session().history[-1]), s.current_session().describe())",
]


def key_like(key: str) -> tuple[str, ...]:
    return (key, key.removeprefix("sk-"), key[8:20])


def test_a_notebook_run_by_a_real_kernel_never_shows_the_key(tmp_path, monkeypatch):
    key = "sk-nbrun-" + secrets.token_hex(12)
    with Emulator(api_key=key) as emu:
        monkeypatch.setenv("AIGATE_API_KEY", key)
        monkeypatch.setenv("AIGATE_BASE_URL", emu.url)
        monkeypatch.setenv("AIGATE_HISTORY_DIR", str(tmp_path / "history"))
        emu.inject_fault("503", count=2)  # the first generation is retried, the kernel logs nothing of it
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS])
        NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
        records = emu.requests
    outputs = [cell.outputs for cell in nb.cells]
    assert any(o.get("data", {}).get("image/png") or o.get("data", {}).get("image/jpeg")
               for o in outputs[1]), "the generation worked, with the key"
    for refused in (outputs[2], outputs[3]):  # the kernel shows a usage error as one stderr line
        [line] = [o.text for o in refused if o.output_type == "stream"]
        assert line.startswith("UsageError: ") and line.count("\n") == 1
    assert [o.get("ename") for o in outputs[5]] == ["BadRequestError"]
    assert [o.get("ename") for o in outputs[7]] == ["BadRequestError"]
    config = "".join(o.get("text", "") for o in outputs[8])
    assert f"sk-...{key[-4:]}" in config
    assert len([r for r in records if r.prompt == "a lighthouse through a flaky gateway"]) == 3

    text = nbformat.writes(nb)
    files = [path.read_bytes().decode("latin-1") for path in tmp_path.rglob("*") if path.is_file()]
    emulated = [repr(dataclasses.asdict(record)) for record in records]
    for needle in key_like(key):
        assert needle not in text, "the executed notebook shows the key"
        assert not any(needle in content for content in files), "a file under the history dir holds the key"
        assert not any(needle in record for record in emulated), "the emulator kept the key"


def test_no_object_a_user_can_print_shows_the_key(emu, tmp_path):
    from aigate_nb.frontends.panel import Panel

    client = Client(api_key=TEST_KEY, base_url=emu.url, retry_backoff=0.01)
    session = Session(client, History(name="reprs", root=tmp_path))
    result = session.run(Request("a printable result", image_size="512"))
    entry = session.history[-1]
    panel = Panel(session)
    panel.wait(10)
    errors = []
    for call in (lambda: client.generate("x", model="google/gemini-9-imaginary"),
                 lambda: Client(api_key=TEST_KEY, base_url="http://127.0.0.1:9", max_retries=0).generate("x"),
                 lambda: Client(api_key=TEST_KEY, base_url="nonsense"),
                 lambda: session.history[99]):
        with pytest.raises(AigateError) as info:
            call()
        errors.append(info.value)
    things = [client, session, session.defaults, session.settings(), result, result._repr_mimebundle_(),
              result.caption(), entry, entry._repr_mimebundle_(), session.history, session.history._repr_html_(),
              panel, panel.header.value, panel.details.value, panel.status.value, load_settings(), emu, *errors]
    shown = [(type(thing).__name__, text) for thing in things for text in texts_of(thing)]
    leaks = [name for name, text in shown for needle in LEAK_NEEDLES if needle in text]
    assert not leaks
    assert mask_key(TEST_KEY) in repr(client) and mask_key(TEST_KEY) in session.settings()["api_key"]
    panel.close()
    session.close()


def test_a_verbose_traceback_of_a_failed_call_does_not_show_the_key(shell, emu, capsys):
    shell.user_ns.update(url=emu.url, key=TEST_KEY)
    shell.run_cell("from aigate_nb import Client\nc = Client(api_key=key, base_url=url, retry_backoff=0.01, "
                   "headers={'X-Emulator-Fault': '503'})\ndel key")
    try:
        for mode in ("Verbose", "Context"):
            shell.run_line_magic("xmode", mode)
            capsys.readouterr()
            shell.run_cell("c.generate('a verbose failure')")
            out, err = capsys.readouterr()
            assert "ServerError" in out + err and "HTTP 503" in out + err
            assert not [needle for needle in LEAK_NEEDLES if needle in out + err]
    finally:
        shell.run_line_magic("xmode", "Context")
        shell.user_ns.pop("url")
        shell.user_ns.pop("c").close()


def test_interrupting_a_slow_call_under_a_verbose_traceback_does_not_show_the_key(shell, capsys):
    # Verbose tracebacks show the locals of every frame; those of the request's frames hold the
    # Authorization header, so the interrupt is raised afresh where none does.
    with Emulator(api_key=TEST_KEY, latency=5) as slow:
        shell.user_ns.update(url=slow.url, key=TEST_KEY)
        shell.run_cell("from aigate_nb import Client\nc = Client(api_key=key, base_url=url)\ndel key")
        shell.run_line_magic("xmode", "Verbose")
        capsys.readouterr()
        timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
        try:
            timer.start()
            shell.run_cell("c.generate('a slow picture')")
        finally:
            timer.cancel()
            shell.run_line_magic("xmode", "Context")
            shell.user_ns.pop("url")
            shell.user_ns.pop("c").close()
        out, err = capsys.readouterr()
    assert "KeyboardInterrupt" in out + err and "Interrupted while waiting for the gateway" in out + err
    assert not [needle for needle in LEAK_NEEDLES if needle in out + err]


@pytest.mark.parametrize("key", ["sk-ab\u2013cdefghijkl", "sk-abc defghijkl", "sk-abc\tdefghijkl"])
def test_a_key_that_cannot_go_in_a_header_is_refused_without_showing_it(key, emu):
    with pytest.raises(ConfigurationError) as info:
        Client(api_key=key, base_url=emu.url)
    assert "copy the key again" in str(info.value) and key[3:] not in str(info.value)
    assert emu.requests == []


def test_a_key_read_from_a_file_with_its_newline_works(emu, tmp_path, monkeypatch):
    monkeypatch.setenv("AIGATE_API_KEY", TEST_KEY + "\n")
    client = Client(base_url=emu.url)
    assert client.generate("a key with a newline", image_size="512").data
    client.close()
    (tmp_path / ".env").write_text(f'AIGATE_API_KEY="{TEST_KEY}"   # my key\n')
    monkeypatch.delenv("AIGATE_API_KEY")
    monkeypatch.chdir(tmp_path)
    assert load_settings().api_key == TEST_KEY


# -- plain http:// ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url,key,warns",
    [
        ("http://gateway.example.org", TEST_KEY, True),
        ("http://10.1.2.3:8080/v1", TEST_KEY, True),
        ("http://127.0.0.1:9", TEST_KEY, False),
        ("http://localhost:9", TEST_KEY, False),
        ("https://gateway.example.org", TEST_KEY, False),
        ("http://gateway.example.org", None, False),
    ],
)
def test_plain_http_to_another_host_with_a_key_warns_without_the_key(base_url, key, warns):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Client(api_key=key, base_url=base_url).close()  # constructed only: nothing is sent
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert bool(messages) == warns
    for message in messages:
        assert "unencrypted" in message and "Use https://" in message and TEST_KEY not in message


def test_aigate_use_gateway_warns_about_plain_http_too(frontends, monkeypatch):
    frontends.load(frontends.session())
    monkeypatch.setenv("AIGATE_API_KEY", TEST_KEY)
    monkeypatch.setenv("AIGATE_BASE_URL", "http://gateway.example.org")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, error, lines = frontends.cell("%aigate use gateway")  # switches only: nothing is sent
    assert error is None
    assert lines == ["Requests now go to the gateway at http://gateway.example.org."]
    [warning] = [w for w in caught if issubclass(w.category, UserWarning)]
    assert "plain http://" in str(warning.message) and TEST_KEY not in str(warning.message)
    frontends.evidence.add(str(warning.message), json.dumps(frontends.cell("%aigate config")[2]))


# -- a folder's .env and another host ------------------------------------------------------------


AUTH_REFUSED = Reply(401, json.dumps({"error": {"message": "Missing API key.",
                                        "type": "authentication_error"}}).encode())


@pytest.mark.parametrize("spelling", ["another host", "loopback"])
def test_a_host_that_a_folders_env_chose_never_gets_the_environments_key(frontends, key_guard, tmp_path,
                                                                        monkeypatch, spelling):
    with ScriptedGateway(AUTH_REFUSED) as elsewhere:
        # On loopback, so that nothing leaves the machine; "another host" is not loopback by name,
        # as a cloned repository's .env would name one. Loopback gets no key either: on a shared
        # machine another user can listen on a loopback port.
        url = elsewhere.url.replace("127.0.0.1", "127.1") if spelling == "another host" else elsewhere.url
        folder = tmp_path / "cloned"
        folder.mkdir()
        (folder / ".env").write_text(f"AIGATE_BASE_URL={url}\n")
        monkeypatch.chdir(folder)
        monkeypatch.setenv("AIGATE_API_KEY", TEST_KEY)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # plain http:// to a host that is not loopback by name
            client = Client(max_retries=0)
        assert client.base_url == url and "(none)" in repr(client)
        with pytest.raises(AuthenticationError) as info:
            client.generate("sent without a key")
        client.close()
        line = str(info.value)
        assert "chosen by AIGATE_BASE_URL in .env, which holds no AIGATE_API_KEY" in line and "\n" not in line
        assert elsewhere.received == [("POST", "/v1/chat/completions", None)]

        # A key given in code does not go to the host a folder chose either: refused, nothing sent.
        with pytest.raises(ConfigurationError, match="gets only that file's key; nothing was sent") as info:
            Client(api_key=TEST_KEY)
        # The package's frames (this test's own shows the argument it wrote, as a user's cell would).
        verbose = VerboseTB(theme_name="nocolor").text(info.type, info.value, info.tb.tb_next)
        assert "Client.__init__" in verbose and not [needle for needle in LEAK_NEEDLES if needle in verbose]
        assert len(elsewhere.received) == 1
        key_guard.add(line, verbose, repr(client))

        # Loading the extension there says where requests go, and with which key, in one line.
        set_current_session(None)
        _, error, shown = frontends.cell("%load_ext aigate_nb")
        assert error is None and shown == [
            f"aigate_nb: requests go to {url}, chosen by AIGATE_BASE_URL in .env, without a key (that file holds "
            "none); a folder's .env never gets the key of your environment."]
        config = frontends.cell("%aigate config")[2]
        assert any(f"{url}  (chosen by .env)" in text for text in config) and len(elsewhere.received) == 1
        frontends.unload()
        set_current_session(None)

        # Switching to the gateway there says why the environment's key is not sent.
        frontends.load(frontends.session("switching"))
        _, line, _ = frontends.cell("%aigate use gateway")
        assert line is not None and line.startswith("AIGATE_BASE_URL in .env chooses ") and "\n" not in line
        assert len(elsewhere.received) == 1

        # The same host gets the folder's own key once the .env brings one.
        folder_key = "sk-the-folders-own-" + secrets.token_hex(8)
        (folder / ".env").write_text(f"AIGATE_BASE_URL={url}\nAIGATE_API_KEY={folder_key}\n")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Client(max_retries=0) as client:
                client.models()
        assert elsewhere.received[-1] == ("GET", "/v1/models", f"Bearer {folder_key}")


@pytest.mark.parametrize("template", [
    "http://127.1:{port}\\@127.0.0.1:{port}",   # urllib.parse sees loopback, urllib3 connects to 127.1
    "http://127.1:{port}\\@api.aigate.shop",     # ... or the default gateway
    "http://user:pass@127.1:{port}",
    "http://127.1:{port}/?@127.0.0.1",
    "http://127.1:{port}#@127.0.0.1",
    "http://127.1\t:{port}",
])
def test_a_base_url_two_parsers_read_differently_is_refused_before_anything_is_sent(frontends, key_guard, tmp_path,
                                                                                   monkeypatch, template):
    with ScriptedGateway(AUTH_REFUSED) as elsewhere:
        port = elsewhere.url.rpartition(":")[2]
        url = template.format(port=port)
        folder = tmp_path / "cloned"
        folder.mkdir()
        (folder / ".env").write_text(f"AIGATE_BASE_URL={url}\n")
        monkeypatch.chdir(folder)
        monkeypatch.setenv("AIGATE_API_KEY", TEST_KEY)
        refusals = []
        for attempt in (Client, load_settings, lambda: Client(base_url=url), lambda: Client(api_key=TEST_KEY)):
            with pytest.raises(ConfigurationError) as info:
                attempt()
            refusals.append(str(info.value))
        set_current_session(None)
        _, line, shown = frontends.cell("%load_ext aigate_nb")  # one UsageError line, no traceback
        assert line is not None and "\n" not in line and shown == []
        assert elsewhere.connections == 0, "a refused base URL was connected to"
        for text in (*refusals, line):
            assert text.startswith("The base URL ") and "pass" not in text.replace("password", "")
        key_guard.add(*refusals, line)


def test_batches_and_grids_never_show_the_key(frontends, key_guard, tmp_path, capsys):
    """A batch and a grid with rows the gateway refuses: their results, reprs, sheets, tables,
    the manifest and the saved grid (files under ``tmp_path``, searched by the guard)."""
    import aigate_nb

    session = frontends.session("batches")
    rows = [{"subject": "cat"}, {"subject": "dog", "model": "google/gemini-9-imaginary"}]
    made = aigate_nb.batch(rows, "a {subject}", session=session, manifest=tmp_path / "shots.jsonl")
    assert [row.status for row in made] == ["done", "failed"]
    grid = aigate_nb.compare("a kite", models=["google/gemini-3.1-flash-image-preview", "google/gemini-9-imaginary"],
                             session=session)
    assert len(grid.failed) == 1
    grid.save(tmp_path / "grid.png")
    out, err = capsys.readouterr()
    key_guard.add(made, made.rows, made.summary(), made._repr_mimebundle_(), made.to_pandas().to_string(),
                  grid, grid.cells, grid._repr_html_(), out, err)


# -- the search itself ----------------------------------------------------------------------------


def test_the_key_search_finds_a_key_wherever_it_is_planted(emu, tmp_path):
    """The guard that every fault and bad-input test runs under would notice a leak."""
    def planted(**where) -> list[str]:
        evidence = Evidence()
        evidence.add(*where.get("evidence", ()))
        return search_for_key(evidence, where.get("records", []), where.get("root", tmp_path / "empty"),
                              where.get("emulated", []))

    (tmp_path / "empty").mkdir()
    hidden = RuntimeError("wrapper")
    hidden.__context__ = ValueError(f"Authorization: Bearer {TEST_KEY}")
    record = logging.LogRecord("urllib3", logging.DEBUG, __file__, 1, "sent %s", (TEST_KEY[8:20],), None)
    (tmp_path / "files" / "images").mkdir(parents=True)
    (tmp_path / "files" / "images" / "x.json").write_text(json.dumps({"k": TEST_KEY.removeprefix("sk-")}))
    with Client(api_key=TEST_KEY, base_url=emu.url, headers={"X-Debug": TEST_KEY}) as client:
        client.generate("a header that is not stripped", image_size="512")

    assert planted(evidence=[hidden])
    assert planted(evidence=[{"nested": [f"...{TEST_KEY}..."]}])
    assert planted(records=[record])
    assert planted(root=tmp_path / "files")
    assert planted(emulated=emu.requests)
    assert not planted(evidence=[mask_key(TEST_KEY), repr(Client(api_key=TEST_KEY, base_url=emu.url))])
