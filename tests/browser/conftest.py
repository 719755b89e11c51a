"""Fixtures for tests in a real JupyterLab and Notebook 7: the emulator and ``jupyter lab`` (or
``jupyter notebook``) as subprocesses on loopback, and headless Debian Chromium driven by Playwright.

Everything lives in a temporary folder (notebooks, history, Jupyter's config, data, runtime
and settings dirs, IPython's dir), so the user's own setup is neither read nor touched.
Nothing is sent anywhere but 127.0.0.1. Without /usr/bin/chromium the tests are skipped,
except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from support import wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
#: Seconds JupyterLab may take to start; on two slow cores it can take 20.
SERVER_START_TIMEOUT = 90.0


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: runs JupyterLab in headless Chromium (needs /usr/bin/chromium)")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if CHROMIUM.exists():
        return str(CHROMIUM)
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing, and CI must run the browser tests: apt-get install chromium.")
    pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium to run the browser tests)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass(frozen=True)
class EmulatorProcess:
    url: str

    def slow_down_next(self, seconds: float) -> None:
        """Hold the next generation reply back for ``seconds`` (the emulator's ``timeout`` fault)."""
        fault = {"kind": "timeout", "delay": seconds, "count": 1}
        reply = requests.post(f"{self.url}/emulator/faults", json=fault, timeout=5)
        reply.raise_for_status()


@pytest.fixture(scope="session")
def emulator_process(chromium_path):
    """``python -m aigate_nb.emulator`` with some latency, so a request is visibly in flight."""
    process = subprocess.Popen(
        [sys.executable, "-m", "aigate_nb.emulator", "--port", "0", "--latency", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = process.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the emulator printed {url!r} instead of its URL")
        yield EmulatorProcess(url)
    finally:
        _stop(process)


@dataclass(frozen=True)
class LabServer:
    """A Jupyter server on loopback: JupyterLab's, or Notebook 7's (``app``)."""

    url: str
    token: str
    root: Path
    history_dir: Path
    app: str = "lab"

    def api(self, path: str) -> str:
        return f"{self.url}{path}?token={self.token}"

    def lab_url(self, notebook: str) -> str:
        # reset: each test starts from an empty workspace, not the tabs an earlier test left open.
        return f"{self.url}/lab/tree/{notebook}?reset&token={self.token}"

    def notebook_url(self, notebook: str) -> str:
        """The page a user opens ``notebook`` in: JupyterLab's, or Notebook 7's own."""
        if self.app == "notebook":
            return f"{self.url}/notebooks/{notebook}?token={self.token}"
        return self.lab_url(notebook)


def _jupyter_server(app: str, emulator_process, base: Path):
    """``jupyter lab`` or ``jupyter notebook`` on a free loopback port, its kernels pointed at the
    emulator; yields a ``LabServer`` and stops it afterwards."""
    root, history_dir = base / "notebooks", base / "history"
    root.mkdir()
    settings = base / "lab-settings"
    # No news or update checks in the page either: their toasts would cover the panel.
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AIGATE_", "JUPYTER", "JPY_"))}
    env.update(
        AIGATE_BASE_URL=emulator_process.url,
        AIGATE_HISTORY_DIR=str(history_dir),
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_DATA_DIR=str(base / "data"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
        IPYTHONDIR=str(base / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
        NO_PROXY="127.0.0.1,localhost",
    )
    port, token = _free_port(), secrets.token_hex(16)
    # Nothing that would look for updates or extensions on the internet.
    offline = ["--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly"] if app == "lab" else []
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"jupyter-{app}.log"
    log = open(log_path, "w")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "jupyter", app, "--no-browser",
            f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.root_dir={root}", "--allow-root", *offline,
        ],
        env=env,
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = LabServer(f"http://127.0.0.1:{port}", token, root, history_dir, app)
    try:
        wait_for(
            lambda: _still_running(process, app, log_path) and _answers(server.api("/api/status")),
            SERVER_START_TIMEOUT,
        )
        yield server
    finally:
        try:
            requests.post(server.api("/api/shutdown"), timeout=5)
            process.wait(timeout=15)
        except (requests.RequestException, subprocess.TimeoutExpired):
            pass
        _stop(process)
        log.close()


@pytest.fixture(scope="session")
def lab_server(emulator_process, tmp_path_factory):
    """``jupyter lab`` on a free loopback port, its kernels pointed at the emulator."""
    yield from _jupyter_server("lab", emulator_process, tmp_path_factory.mktemp("lab"))


@pytest.fixture(scope="module")
def notebook_server(emulator_process, tmp_path_factory):
    """``jupyter notebook`` (Notebook 7) on a free loopback port, for the module that uses it."""
    yield from _jupyter_server("notebook", emulator_process, tmp_path_factory.mktemp("notebook"))


def _still_running(process: subprocess.Popen, app: str, log: Path) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"jupyter {app} exited with {process.returncode}; see {log}")
    return True


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(browser, request):
    """A fresh browser page; when the test fails, a screenshot of it goes to the artifacts."""
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    page = context.new_page()
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"), full_page=True)
    context.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def copy_to_docs(screenshot: Path) -> Path | None:
    """The README's pictures are the ones the browser test takes; they are copied to
    ``docs/`` only when ``UPDATE_DOCS_SCREENSHOTS=1``, so a test run leaves the tree clean."""
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") != "1":
        return None
    docs = Path(__file__).resolve().parents[2] / "docs"
    docs.mkdir(exist_ok=True)
    return Path(shutil.copyfile(screenshot, docs / screenshot.name))
