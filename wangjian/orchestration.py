"""The Prefect side of the house: which API the commands report to, and a local server to run.

Commands report their flow runs to `PREFECT_API_URL` when it is set. Otherwise, when a local
server started by `wangjian server start` (or the demo) is up, they use it — the UI then shows
everything; failing both, Prefect starts a temporary server for the one command (~10 s here).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlsplit
from urllib.request import urlopen

# Server settings measured on this 2-core machine (bench/prefect_recorder_bench.py): the task-run
# recorder's default batch of 1 lets the UI lag ~35 s behind 1,000 tasks; batches of 200 keep it
# within about a second.
SERVER_TUNING = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
}


@dataclass(frozen=True)
class LocalServer:
    url: str
    pid: int
    home: Path

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"


def state_file(home: Path) -> Path:
    return home / "server.json"


def _healthy(api_url: str, timeout: float = 1.0) -> bool:
    try:
        with urlopen(f"{api_url}/health", timeout=timeout) as response:
            return response.status == 200
    except (URLError, OSError):
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def running_server(home: Path) -> LocalServer | None:
    """The local server recorded under `home`, if it is up."""
    path = state_file(home)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        server = LocalServer(url=data["url"], pid=int(data["pid"]), home=home)
    except (ValueError, KeyError):
        return None
    return server if _healthy(server.api_url) else None


def start_server(
    home: Path,
    *,
    port: int | None = None,
    timeout: float = 120.0,
    tuning: dict[str, str] | None = None,
) -> LocalServer:
    """Start `prefect server start` in the background with our tuning; wait until healthy."""
    existing = running_server(home)
    if existing:
        return existing
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    settings = SERVER_TUNING if tuning is None else tuning
    env = {
        **os.environ,
        **settings,
        "PREFECT_HOME": str(home.resolve()),
        # The UI calls this API from the browser; without it, it looks for port 4200.
        "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",
    }
    env.pop("PREFECT_API_URL", None)
    log = (home / "server.log").open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = LocalServer(url=f"http://127.0.0.1:{port}", pid=process.pid, home=home)
    deadline = time.monotonic() + timeout
    while not _healthy(server.api_url):
        if process.poll() is not None:
            raise RuntimeError(f"the Prefect server exited; see {home / 'server.log'}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the Prefect server did not start in {timeout:.0f} s")
        time.sleep(0.3)
    state_file(home).write_text(json.dumps({"url": server.url, "pid": server.pid}))
    return server


def stop_server(home: Path) -> bool:
    """Stop the local server recorded under `home`; True if one was running."""
    path = state_file(home)
    if not path.exists():
        return False
    try:
        pid = int(json.loads(path.read_text())["pid"])
    except (ValueError, KeyError):
        path.unlink(missing_ok=True)
        return False
    path.unlink(missing_ok=True)
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    for _ in range(50):
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    os.killpg(pid, signal.SIGKILL)
    return True


def connect(home: Path) -> str | None:
    """Point this process's Prefect client at the local server, unless an API is already set.

    Must run before `prefect` reads its settings (i.e. before the first flow call)."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    server = running_server(home)
    if server is None:
        return None
    os.environ["PREFECT_API_URL"] = server.api_url
    return server.api_url


@contextmanager
def in_process_runs() -> Iterator[None]:
    """Flow runs made by this process (a command, the demo, the tests) skip run heartbeats.

    Heartbeats let a server notice a flow run whose *worker* died; a run made in-process ends
    with its process anyway. Prefect 3.8's heartbeat thread sleeps in one-second steps and is
    joined when a run ends, which costs every flow run up to a second (measured here: a flow of
    three tasks 1.07 s with heartbeats, 0.21 s without). Deployments run by workers keep them.
    Their clients of a plain-HTTP local API load a one-certificate CA file (`_loopback_ca`).
    """
    from prefect.context import SettingsContext
    from prefect.settings import get_current_settings

    current = SettingsContext.get()
    # Copying re-reads the environment: an API address set since the outer context counts.
    settings = get_current_settings().copy_with_update(updates={"flows.heartbeat_frequency": None})
    if _plain_loopback(settings.api.url):
        ca = _loopback_ca(settings.home)
        settings = settings.copy_with_update(updates={"api.ssl_cert_file": str(ca)})
    with SettingsContext(profile=current.profile if current else None, settings=settings):  # type: ignore[arg-type]
        yield


def _plain_loopback(api_url: str | None) -> bool:
    """An API on this machine over plain HTTP (the local server, the test harness)."""
    if not api_url:
        return False
    parts = urlsplit(api_url)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


def _loopback_ca(home: Path) -> Path:
    """A one-certificate CA file for clients of a plain-HTTP local API.

    Every Prefect client builds a TLS context from its CA file, even for an `http://` API that
    never uses it: a full CA bundle (certifi's, the system's) costs ~38 ms a client here, and a flow run makes several
    (a simulated campaign day, ~20). One certificate costs under 1 ms. TLS is never negotiated
    with a plain-HTTP API, so which certificate it holds does not matter.
    """
    import certifi

    path = Path(home).expanduser() / "loopback-ca.pem"
    if not path.exists():
        bundle = Path(certifi.where()).read_text(encoding="ascii")
        end = "-----END CERTIFICATE-----"
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(bundle[: bundle.index(end) + len(end)] + "\n", encoding="ascii")
        partial.replace(path)  # whole or not at all, whichever process gets there first
    return path


def flush_to_server(timeout: float = 15.0) -> None:
    """Send the logs and events still queued in this process, before its server goes away."""
    from prefect._internal.concurrency.services import QueueService

    QueueService.drain_all(timeout=timeout)


def dated_run_name(prefix: str) -> Callable[[], str]:
    """A flow-run namer: `<prefix>-<as_of>`, or `<prefix>-<now>` for a scheduled run without one."""

    def name() -> str:
        from datetime import UTC, datetime

        from prefect.runtime import flow_run

        as_of = flow_run.parameters.get("as_of")
        stamp = as_of or datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ")
        return f"{prefix}-{stamp}"

    return name
