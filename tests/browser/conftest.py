"""Fixtures for the real-browser tests: a JupyterLab / Notebook 7 server and headless Chromium.

The recipe follows ``shared/docs/jupyter-notes.md``: a server on a free loopback port with its
own config, settings, workspace, runtime and IPython directories under a temporary root, no
token, and the fal key variables removed from its environment so that the panel runs on the
built-in emulator. The browser is Debian's ``chromium`` driven by Playwright (which cannot
download a browser of its own here).

With ``CI`` set, a missing Chromium or Playwright is a failure; on a developer's machine
without them the browser tests are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
ARTIFACTS_DIR = REPO_ROOT / "artifacts" / "browser"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEY_VARIABLES = ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET")
SERVER_START_TIMEOUT = 60.0

Flavour = Literal["lab", "notebook"]
JupyterServerFactory = Callable[..., "JupyterServer"]


def _unavailable(reason: str) -> None:
    """Fail under CI (the browser tests must run there), skip on a developer's machine."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the browser tests may not be skipped)")
    pytest.skip(reason)


def find_chromium() -> str | None:
    """The Chromium to drive: ``$FLUXWIDGET_CHROMIUM``, else Debian's ``/usr/bin/chromium``."""
    candidates = [os.environ.get("FLUXWIDGET_CHROMIUM", ""), "/usr/bin/chromium"]
    candidates += [shutil.which(name) or "" for name in ("chromium", "chromium-browser")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class JupyterServer:
    """A Jupyter server in its own process group, with everything it writes under ``root``."""

    flavour: Flavour
    root: Path
    port: int = field(default_factory=free_port)
    save_widget_state: bool = False
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
        home = self.root / ".home"
        dirs = {
            "JUPYTER_CONFIG_DIR": home / "config",
            "JUPYTERLAB_SETTINGS_DIR": home / "lab-settings",
            "JUPYTERLAB_WORKSPACES_DIR": home / "lab-workspaces",
            "JUPYTER_RUNTIME_DIR": home / "runtime",
            "JUPYTER_DATA_DIR": home / "data",
            "IPYTHONDIR": home / "ipython",
        }
        for name, path in dirs.items():
            path.mkdir(parents=True, exist_ok=True)
            env[name] = str(path)
        # No "get notified about Jupyter news?" toast over the panel in the screenshots.
        notification = dirs["JUPYTERLAB_SETTINGS_DIR"] / "@jupyterlab" / "apputils-extension"
        notification.mkdir(parents=True, exist_ok=True)
        (notification / "notification.jupyterlab-settings").write_text(
            '{"fetchNews": "false", "checkForUpdates": false}'
        )
        if self.save_widget_state:
            # What a user turns on with Settings → "Save Widget State Automatically".
            manager = dirs["JUPYTERLAB_SETTINGS_DIR"] / "@jupyter-widgets" / "jupyterlab-manager"
            manager.mkdir(parents=True, exist_ok=True)
            (manager / "plugin.jupyterlab-settings").write_text('{"saveState": true}')
        # Only the venv's own kernelspec (whose "python" is this interpreter) is visible.
        env.pop("JUPYTER_PATH", None)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
        return env

    def command(self) -> list[str]:
        app = "LabApp" if self.flavour == "lab" else "JupyterNotebookApp"
        return [
            sys.executable,
            "-m",
            "jupyter",
            self.flavour,
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.allow_root=True",
            "--ServerApp.open_browser=False",
            f"--{app}.expose_app_in_browser=True",
            "--LabServerApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]

    def start(self, attempt: int = 1) -> None:
        self.log_path = self.root / ".home" / f"jupyter-{self.flavour}.log"
        env = self.environment()
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_tail()
                if "already in use" in tail and attempt < 3:
                    # The free port was taken between picking it and the server binding it.
                    self.port = free_port()
                    self.start(attempt + 1)
                    return
                raise RuntimeError(f"jupyter {self.flavour} exited early:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(
            f"jupyter {self.flavour} did not answer within {SERVER_START_TIMEOUT:.0f} s:\n"
            f"{self.log_tail()}"
        )

    def stop(self) -> None:
        """Stop the whole process group (server and kernels), politely and then firmly."""
        process = self.process
        if process is None:
            return
        self.process = None
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            # The server is gone; make sure nothing of its group (a kernel) outlives it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            return

    def log_tail(self, chars: int = 4000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_text(errors="replace")[-chars:]


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    path = find_chromium()
    if path is None:
        _unavailable("Chromium not found (install Debian's chromium: apt-get install chromium)")
    assert path is not None
    return path


@pytest.fixture(scope="module")
def browser(chromium_executable: str) -> Iterator[Browser]:
    """Headless Chromium for one test module. Module scope on purpose: Playwright's sync API
    keeps an asyncio loop running in this thread while it is open, which would break every
    async test collected after the browser tests."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable('Playwright is not installed (pip install -e ".[browser]")')
        raise
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 1100}, device_scale_factor=1)
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def notebook_root(tmp_path: Path) -> Path:
    """A server root holding a copy of the quickstart notebook."""
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOKS_DIR / "quickstart.ipynb", root / "quickstart.ipynb")
    return root


@pytest.fixture
def jupyter_factory() -> Iterator[JupyterServerFactory]:
    servers: list[JupyterServer] = []

    def start(flavour: Flavour, root: Path, *, save_widget_state: bool = False) -> JupyterServer:
        server = JupyterServer(flavour=flavour, root=root, save_widget_state=save_widget_state)
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every browser test on one pytest-xdist worker: one Chromium and one Jupyter server at a
    time on a 2-core machine, while the other worker runs the rest of the suite."""
    for item in items:
        if "tests/browser/" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("browser"))
