"""The warm local Prefect API server, the commands' side: start it, find it, stop it.

No Prefect import here: ``dmp-ingest prefect status`` and ``prefect stop`` need none of it
(importing flows.py, hence Prefect, took about 2 s of each). The server process itself is
``python -m flows local-server`` (flows.py), which imports Prefect's server.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from parsers.process_lifetime import process_alive

# -- the warm local Prefect API server -------------------------------------------------------
# Where the CLI's flows run when no PREFECT_API_URL is configured: a local Prefect API server
# kept warm between commands.
#
# Without ``PREFECT_API_URL`` Prefect 3 runs each command's flows against an ephemeral server:
# a subprocess that imports the server, migrates its database and starts uvicorn (about 5 s
# on two cores), then is stopped when the command ends. A one-file ``dmp-ingest ingest``
# spent most of its 8 s there. Instead the first command starts ``python -m flows
# local-server``, detached, on a free loopback port, records it in
# ``$PREFECT_HOME/local-server.json``, and the next commands use it: the same database
# Prefect's ephemeral mode uses, so nothing changes for the flow runs but the wait.
#
# The server must not outlive its use, nor die under a command: every command using it holds
# a shared ``flock`` on ``local-server.lease`` for its whole life; the server leaves only when
# it has answered nothing for ``idle_seconds`` *and* it can take that lock exclusively (no
# command alive holds it, whatever it is doing). A command arriving while the server leaves
# waits for its exit, then starts a new one. The kernel drops a dead command's lock, so a
# killed command never keeps the server forever.

STATE_FILE = "local-server.json"
LEASE_FILE = "local-server.lease"
START_LOCK_FILE = "local-server.start"
LOG_FILE = "local-server.log"
DEFAULT_IDLE_SECONDS = 600.0
START_TIMEOUT_SECONDS = 90.0
# How long a recorded server that is alive gets to answer its health check before a command
# gives up on it: a bound, not its usual delay (milliseconds). It was 2 s: a server slowed by
# a loaded machine answered later, and the command started a second server, its state file
# replacing the first one's, which went on running beside it.
ANSWER_TIMEOUT_SECONDS = 30.0

_leases: dict[Path, IO[str]] = {}  # per Prefect home, held locked for this process's life


class LocalServerError(Exception):
    """The local server could not be started; the message says where its log is."""


@dataclass(frozen=True)
class LocalServer:
    pid: int
    port: int

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"


def use_local_server(prefect_home: Path, idle_seconds: float = DEFAULT_IDLE_SECONDS) -> str:
    """The API URL of the warm local server, started first when there is none.

    Takes this process's lease first, so a server found healthy stays up until we exit."""
    prefect_home.mkdir(parents=True, exist_ok=True)
    if prefect_home not in _leases:
        lease = open(prefect_home / LEASE_FILE, "a+")  # noqa: SIM115 (held until exit)
        fcntl.flock(lease, fcntl.LOCK_SH)  # waits only while a server is leaving
        _leases[prefect_home] = lease
    with open(prefect_home / START_LOCK_FILE, "a+") as start_lock:
        fcntl.flock(start_lock, fcntl.LOCK_EX)  # two cold commands start one server
        server = read_local_server(prefect_home)
        if server is not None and _healthy(server, timeout=ANSWER_TIMEOUT_SECONDS):
            return server.api_url
        server = _start(prefect_home, idle_seconds)
        _write_state(prefect_home, server)
        return server.api_url


def read_local_server(prefect_home: Path) -> LocalServer | None:
    try:
        data = json.loads((prefect_home / STATE_FILE).read_text())
        return LocalServer(pid=int(data["pid"]), port=int(data["port"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def stop_local_server(prefect_home: Path, timeout: float = 10.0) -> bool:
    """Stop the recorded server (SIGTERM: it finishes the requests in hand). True when one
    was running."""
    server = read_local_server(prefect_home)
    if server is None or not process_alive(server.pid):
        (prefect_home / STATE_FILE).unlink(missing_ok=True)
        return False
    os.kill(server.pid, 15)
    deadline = time.monotonic() + timeout
    while process_alive(server.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    (prefect_home / STATE_FILE).unlink(missing_ok=True)
    return True


def local_server_answers(server: LocalServer) -> bool:
    """The recorded process is alive and answers its health check."""
    return _healthy(server, timeout=ANSWER_TIMEOUT_SECONDS)


def _healthy(server: LocalServer, timeout: float = 2.0) -> bool:
    if not process_alive(server.pid):
        return False
    try:
        with urllib.request.urlopen(f"{server.api_url}/health", timeout=timeout) as answer:
            return answer.status == 200
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(prefect_home: Path, idle_seconds: float) -> LocalServer:
    """Start the server detached (own session, no inherited descriptors, output to its log
    file) and wait until it answers."""
    port = _free_port()
    log_path = prefect_home / LOG_FILE
    env = {**os.environ, "PREFECT_HOME": str(prefect_home), "PREFECT_UI_ENABLED": "false",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    root = str(Path(__file__).resolve().parents[1])  # where flows.py is
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flows", "local-server", "--port", str(port),
             "--idle-seconds", str(idle_seconds), "--prefect-home", str(prefect_home)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, cwd=root,
            start_new_session=True, close_fds=True)
    server = LocalServer(pid=proc.pid, port=port)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LocalServerError(f"the local Prefect server exited with status "
                                   f"{proc.returncode} at start; its log: {log_path}")
        if _healthy(server, timeout=1.0):
            return server
        time.sleep(0.05)
    proc.terminate()
    raise LocalServerError(f"the local Prefect server did not answer within "
                           f"{START_TIMEOUT_SECONDS:.0f} s; its log: {log_path}")


def _write_state(prefect_home: Path, server: LocalServer) -> None:
    tmp = prefect_home / f"{STATE_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps({"pid": server.pid, "port": server.port}))
    os.replace(tmp, prefect_home / STATE_FILE)
