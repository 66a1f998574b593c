"""A throwaway PostgreSQL cluster for benchmarks (initdb in a temporary folder, loopback port),
as tests/conftest.py starts one for the tests; and the server's CPU time, to put a price on
each message filed through it."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    path = found[-1] if found else shutil.which(name)
    if not path:
        raise SystemExit(f"{name} not found: install PostgreSQL or pass --database-url")
    return path


@contextmanager
def throwaway_postgres(durable: bool = False) -> Iterator[tuple[str, Path]]:
    """Yields (server URL without a database name, data folder). ``durable``: fsync and
    synchronous commit on, as a production server runs (the tests' cluster has them off)."""
    base = Path(tempfile.mkdtemp(prefix="dmp-bench-pg-"))
    data = base / "data"
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = dict(check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    subprocess.run([*prefix, _pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U",
                    "postgres", "-E", "UTF8", "--no-sync"], **run)
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c max_connections=200"
    if not durable:
        opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    subprocess.run([*prefix, _pg_bin("pg_ctl"), "-D", str(data), "-o", opts, "-l",
                    str(base / "log"), "-w", "-t", "60", "start"], **run)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}", data
    finally:
        subprocess.run([*prefix, _pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(base, ignore_errors=True)


def server_cpu_seconds(data: Path) -> float:
    """CPU time used so far by the cluster: the postmaster, the backends it has reaped
    (cutime/cstime) and those alive now."""
    try:
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError):
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.split("/")[2]), int(fields[1])
        if pid == postmaster:
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        elif ppid == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / tick
