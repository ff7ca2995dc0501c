"""Start and stop what the UI test drives: a JupyterLab server and Debian's chromium.

Both are real, separate processes, so the hard part is stopping them whatever happens. The server
runs in its own process group and is told to die with this process (Linux ``PR_SET_PDEATHSIG``);
its kernels run in sessions of their own (jupyter_client starts them that way), so stopping walks
the process tree recorded *before* the server dies, when the kernels still name it as their parent.
A watchdog thread bounds the total time: when it fires it kills every process this one started and
exits, even if the browser or the server hangs.

The browser is Debian's ``chromium`` driven by the Playwright client; Playwright's own browser
download (``playwright install``) is never used: it needs the internet and is not needed.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = (
    "--no-sandbox",  # CI runs as root, where chromium's sandbox refuses to start
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",  # no update, safe-browsing or metrics traffic
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",  # containers often have a 64 MB /dev/shm; use /tmp instead
)
"""Flags for a quiet, offline, headless chromium (see docs/ui_test.md)."""

LAB_SETTINGS = {
    # No news or update checks (network) and no "fetch news?" toast over the screenshots.
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    # Attach every cell to the page, so the checks see all outputs and one tall screenshot shows
    # the whole notebook (the default skips drawing cells outside the viewport).
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
"""JupyterLab user settings written into the test's private settings folder."""


class UICheckFailed(AssertionError):
    """One named check of the UI test failed; ``check`` says which (the self-check relies on it)."""

    def __init__(self, check: str, message: str):
        super().__init__(f"[{check}] {message}")
        self.check = check
        self.message = message


class Deadline:
    """A point in time every wait is bounded by, so the whole test has one time limit."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.end = time.monotonic() + self.seconds

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.end - time.monotonic())

    def ms(self, cap_seconds: float | None = None) -> float:
        """Milliseconds left (at most ``cap_seconds``), as Playwright's ``timeout=`` wants them."""
        left = self.remaining() if cap_seconds is None else min(self.remaining(), cap_seconds)
        return max(1.0, 1000.0 * left)

    def check(self, what: str) -> None:
        """Raise when the time is up, naming what was being waited for."""
        if self.remaining() <= 0:
            raise UICheckFailed("time-limit", f"{self.seconds:.0f} s limit reached while {what}")


# ----- processes ---------------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """All live processes below ``pid`` (children, grandchildren, ...), read from /proc or ps."""
    parents: dict[int, int] = {}
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # the process ended while we looked
            # The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":  # zombies are dead already; their parent only has to reap them
                parents[int(entry.name)] = int(fields[1])
    else:
        listing = subprocess.run(
            ["ps", "-A", "-o", "pid=", "-o", "ppid="], capture_output=True, text=True, check=True
        )
        for line in listing.stdout.splitlines():
            child, parent = (int(value) for value in line.split())
            parents[child] = parent
    found: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found.extend(children)
        frontier.extend(children)
    return found


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (Linux /proc; [] elsewhere).

    Chromium double-forks helpers (the crash handler) that leave the process tree; they still
    name the test's temporary folder on their command line, which is how they are found.
    """
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command and int(entry.name) != os.getpid() and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        pass  # no /proc here: ask the kernel instead
    else:
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_pids(pids: list[int], sig: int) -> None:
    """Send ``sig`` to each pid, ignoring those that are gone already."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_process_tree(process: subprocess.Popen, grace: float = 10.0) -> list[int]:
    """Stop ``process``, its process group and every descendant; return pids still alive (none).

    SIGTERM first (JupyterLab then shuts its kernels down cleanly), SIGKILL after ``grace``
    seconds for whatever is left. The tree is recorded first: once the parent is dead, orphans
    are re-parented and can no longer be found by walking down from it.
    """
    tree = descendants(process.pid)
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    tree = sorted(set(tree) | set(descendants(process.pid)))
    kill_pids(tree, signal.SIGTERM)
    end = time.monotonic() + grace
    while time.monotonic() < end and any(alive(pid) for pid in tree):
        time.sleep(0.1)
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            process.kill()
    kill_pids([pid for pid in tree if alive(pid)], signal.SIGKILL)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    time.sleep(0.2)
    return [pid for pid in tree if alive(pid)] + ([process.pid] if process.poll() is None else [])


def die_with_parent() -> None:
    """In a child before exec: ask Linux to SIGTERM it when the process that started it dies."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@contextmanager
def watchdog(seconds: float, on_fire: str = "UI test") -> Iterator[None]:
    """Bound the wall time of the block: past ``seconds``, kill all our child processes and exit.

    The normal waits have their own deadlines; this is the backstop for a hang inside the browser
    or the server, where no Python exception can be raised. Exits with status 124 like timeout(1).
    """

    def fire() -> None:
        print(f"\n{on_fire}: hard time limit of {seconds:.0f} s reached; killing", file=sys.stderr)
        tree = descendants(os.getpid())
        kill_pids(tree, signal.SIGTERM)
        end = time.monotonic() + 3.0
        while time.monotonic() < end and any(alive(pid) for pid in tree):
            time.sleep(0.1)
        kill_pids([pid for pid in tree if alive(pid)], signal.SIGKILL)
        sys.stderr.flush()
        os._exit(124)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


# ----- JupyterLab --------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LabServer:
    """A running JupyterLab: where it listens, its token, and the files it serves."""

    process: subprocess.Popen
    port: int
    token: str
    root: Path
    log_path: Path
    config_dir: Path
    stopped: bool = False
    at_exit: Callable[[], object] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lab_url(self, notebook: str, workspace: str = "ui-test") -> str:
        """The address that opens ``notebook`` (relative to the root) in JupyterLab.

        Each notebook gets a workspace of its own, so JupyterLab does not reopen the tabs of a
        notebook checked before (and start its kernel again).
        """
        return f"{self.base_url}/lab/workspaces/{workspace}/tree/{notebook}?token={self.token}"

    def api(self, path: str, method: str = "GET", timeout: float = 5.0) -> object:
        """Call the server's REST API with the token; return the decoded JSON (None if empty)."""
        request = urllib.request.Request(
            f"{self.base_url}/api/{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    @contextmanager
    def without_extension(self, name: str) -> Iterator[None]:
        """Pages opened inside the block load JupyterLab without the front-end extension ``name``.

        The server reads ``labconfig/page_config.json`` on every page load, so this needs no
        restart; the self-check uses it to take the widget manager away, as a broken install would.
        """
        page_config = self.config_dir / "labconfig" / "page_config.json"
        page_config.parent.mkdir(parents=True, exist_ok=True)
        page_config.write_text(json.dumps({"disabledExtensions": {name: True}}))
        try:
            yield
        finally:
            page_config.unlink(missing_ok=True)

    def shutdown_kernels(self) -> None:
        """Ask the server to shut every kernel down (frees memory between notebooks)."""
        for kernel in self.api("kernels") or []:
            self.api(f"kernels/{kernel['id']}", method="DELETE", timeout=10.0)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])


def lab_environment(work: Path, serlib_home: Path, profile: str) -> dict[str, str]:
    """The server's environment: offline, the tiny profile, and Jupyter folders of its own.

    Private config, data, runtime and settings folders keep the user's own Jupyter setup (another
    ``python3`` kernel, extensions' settings, a saved workspace) out of the test; the kernels and
    lab extensions of the venv are still found because they live in the venv's prefix.
    """
    env = dict(os.environ)
    folders = {
        "JUPYTER_CONFIG_DIR": work / "jupyter-config",
        "JUPYTER_DATA_DIR": work / "jupyter-data",
        "JUPYTER_RUNTIME_DIR": work / "jupyter-runtime",
        "JUPYTERLAB_SETTINGS_DIR": work / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": work / "lab-workspaces",
        "IPYTHONDIR": work / "ipython",
        "MPLCONFIGDIR": work / "matplotlib",
    }
    for name, folder in folders.items():
        folder.mkdir(parents=True, exist_ok=True)
        env[name] = str(folder)
    for name, settings in LAB_SETTINGS.items():
        target = folders["JUPYTERLAB_SETTINGS_DIR"] / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(settings, indent=2))
    serlib_home.mkdir(parents=True, exist_ok=True)
    env.update(
        JUPYTER_PREFER_ENV_PATH="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        SERLIB_PROFILE=profile,
        SERLIB_HOME=str(serlib_home),
        SERLIB_FIGURES=str(work / "figures"),  # never the checkout's committed figures/
        PYTHONUNBUFFERED="1",
    )
    env.pop("JUPYTER_TOKEN", None)  # our token, not one inherited from the caller
    return env


def start_lab(
    root: Path,
    work: Path,
    log_path: Path,
    *,
    python: str = sys.executable,
    profile: str = "tiny",
    serlib_home: Path | None = None,
    timeout: float = 90.0,
) -> LabServer:
    """Start JupyterLab on 127.0.0.1 with a random free port and token; wait until it answers.

    ``root`` is the folder it serves (a copy of the notebooks, never the repository), ``work`` a
    scratch folder for its private settings, ``log_path`` receives its output.
    """
    port = free_port()
    token = secrets.token_hex(24)
    env = lab_environment(work, serlib_home or work / "serlib-home", profile)
    command = [
        python,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.terminals_enabled=False",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: read cell state, not pixels
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",  # no PyPI queries from the extension manager
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--ServerApp.allow_root=True")  # CI containers run as root
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    server = LabServer(process, port, token, root, log_path, Path(env["JUPYTER_CONFIG_DIR"]))
    server.at_exit = functools.partial(stop_lab, server)  # if the caller forgets, or crashes
    atexit.register(server.at_exit)
    try:
        wait_for_lab(server, Deadline(timeout))
    except BaseException:
        stop_lab(server)
        raise
    return server


def wait_for_lab(server: LabServer, deadline: Deadline) -> None:
    """Poll ``/api/status`` with the token until the server answers, exits or time runs out."""
    while True:
        if server.process.poll() is not None:
            raise UICheckFailed(
                "lab-starts",
                f"JupyterLab exited with status {server.process.returncode} before answering; "
                f"its log ends with:\n{server.log_tail()}",
            )
        try:
            server.api("status", timeout=2.0)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if deadline.remaining() <= 0:
            raise UICheckFailed(
                "lab-starts",
                f"JupyterLab did not answer on port {server.port} within {deadline.seconds:.0f} s; "
                f"its log ends with:\n{server.log_tail()}",
            )
        time.sleep(0.25)


def stop_lab(server: LabServer) -> list[int]:
    """Shut the kernels down through the API, then stop the server's whole tree; idempotent."""
    if server.stopped:
        return []
    server.stopped = True
    if server.at_exit is not None:
        atexit.unregister(server.at_exit)
    if server.process.poll() is None:
        try:
            server.shutdown_kernels()
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError):
            pass  # the tree is stopped below in any case
    return stop_process_tree(server.process)


@contextmanager
def running_lab(root: Path, work: Path, log_path: Path, **options) -> Iterator[LabServer]:
    """``start_lab`` as a context manager that always stops the server and its kernels."""
    server = start_lab(root, work, log_path, **options)
    try:
        yield server
    finally:
        leftover = stop_lab(server)
        if leftover:
            print(f"warning: JupyterLab processes still alive: {leftover}", file=sys.stderr)


# ----- chromium ----------------------------------------------------------------------------------


def find_chromium(explicit: str | None = None) -> Path:
    """The chromium to drive: ``explicit``, else ``$SERLIB_CHROMIUM``, else ``chromium`` on PATH."""
    wanted = explicit or os.environ.get("SERLIB_CHROMIUM", "").strip()
    if wanted:
        path = Path(wanted).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise FileNotFoundError(f"chromium {wanted!r} is not an executable file")
        return path
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return Path(found)
    raise FileNotFoundError(
        "chromium not found; run scripts/install_ui_deps.sh (Debian: apt-get install chromium) "
        "or set SERLIB_CHROMIUM=/path/to/chromium"
    )


@dataclass
class BrowserPage:
    """A Playwright page plus what the browser reported while the test used it."""

    page: Any
    console_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def close(self) -> None:
        """Close the tab without running the notebook's "leave page?" prompt."""
        self.page.close(run_before_unload=False)


@dataclass
class Browser:
    """A headless chromium with one fresh profile; ``new_page`` opens a watched tab."""

    context: Any

    def new_page(self) -> BrowserPage:
        """A new tab whose console errors and refused outside requests are recorded."""
        browser_page = BrowserPage(self.context.new_page())

        def on_console(message) -> None:
            if message.type == "error":
                browser_page.console_errors.append(message.text)

        def only_local(route) -> None:
            url = route.request.url
            if url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:")):
                route.continue_()
            else:
                browser_page.blocked.append(url)
                route.abort()

        browser_page.page.route("**/*", only_local)
        browser_page.page.on("console", on_console)
        browser_page.page.on(
            "pageerror", lambda error: browser_page.console_errors.append(str(error))
        )
        return browser_page


@contextmanager
def chromium(chromium_path: Path, profile_dir: Path, *, width: int = 1280, height: int = 900):
    """Start headless chromium with a new user-data dir; always closed on exit.

    Pages may reach 127.0.0.1 only: other requests are refused and listed, since the course must
    work offline. Yields a ``Browser``.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        raise ImportError(
            "the Playwright client is missing; run scripts/install_ui_deps.sh "
            "(never `playwright install`: the test drives the system chromium)"
        ) from error
    if profile_dir.exists() and any(profile_dir.iterdir()):
        raise ValueError(f"{profile_dir} is not empty; chromium needs a fresh user-data dir")
    profile_dir.mkdir(parents=True, exist_ok=True)
    # Debian's chromium keeps crash reports and caches under ~/.config and ~/.cache: point those
    # into the fresh profile too, so the test leaves nothing in the user's home.
    env = dict(os.environ)
    env.update(
        XDG_CONFIG_HOME=str(profile_dir / "xdg-config"),
        XDG_CACHE_HOME=str(profile_dir / "xdg-cache"),
    )
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir / "user-data"),
            executable_path=str(chromium_path),
            headless=True,
            args=list(CHROMIUM_ARGS),
            env=env,
            viewport={"width": width, "height": height},
            accept_downloads=False,
        )
        try:
            for blank in context.pages:  # the window chromium opens on start
                blank.close()
            yield Browser(context)
        finally:
            context.close()
