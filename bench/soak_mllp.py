"""A steady-rate MLLP soak: `dmp-ingest serve` receives messages at a fixed rate for a while;
every minute the service's memory (RSS of the listener and of its worker processes) and the
ledger backlog are recorded. At the end: every acknowledged message is in the ledger, none was
filed twice, and `check` finds the store consistent.

    .venv/bin/python bench/soak_mllp.py [--minutes 30] [--rate 20] [--sample-seconds 60]
        [--senders 2] [--seed 11] [--out var/soak/mllp.json]

Prints figures and writes them as JSON (bench/reliability_report.py turns them into
docs/reliability.md). Not a test: it asserts nothing, it measures. The service runs the code
of this tree (PYTHONPATH), on SQLite and a local archive in a temporary DMP_HOME.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VT, FS, CR = b"\x0b", b"\x1c", b"\r"


def prepare(seed: int, work: Path):  # noqa: ANN201
    """The generated traffic, with its patients.csv and mappings/ written in ``work``."""
    from samples.generate import Traffic, write_mappings, write_patients_csv

    traffic = Traffic(seed, patients=300, duplicates=0.0, corrections=0.0, eol="\r")
    write_patients_csv(work / "patients.csv", traffic.patients)
    write_mappings(work / "mappings")
    return traffic


def messages(traffic):  # noqa: ANN001, ANN201
    """An endless stream of fresh ORU^R01, MSH-10 unique over the run."""
    for n, data in enumerate(traffic):
        head, sep, rest = data.partition(b"\r")
        fields = head.split(b"|")
        fields[9] = b"SOAK%d" % n
        yield b"|".join(fields) + sep + rest


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def backlog(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute("SELECT count(*) FROM imports WHERE status IN "
                            "('received', 'processing')").fetchone()[0]


class Sender(threading.Thread):
    """One keep-alive connection sending at ``rate`` messages per second, ACK awaited."""

    def __init__(self, port: int, source, rate: float, stop: threading.Event,  # noqa: ANN001
                 lock: threading.Lock) -> None:
        super().__init__(daemon=True)
        self.port, self.source, self.rate, self.stop, self.lock = port, source, rate, stop, lock
        self.sent, self.acked, self.refused = 0, [], 0

    def run(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=120)
        buf = bytearray()
        interval, due = 1.0 / self.rate, time.monotonic()
        while not self.stop.is_set():
            with self.lock:
                data = next(self.source)
            sock.sendall(VT + data + FS + CR)
            self.sent += 1
            while (end := buf.find(FS + CR)) < 0:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buf += chunk
            ack = bytes(buf[:end])
            del buf[:end + 2]
            if b"|AA|" in ack or b"|CA|" in ack:
                import hashlib

                self.acked.append(hashlib.sha256(data).hexdigest())
            else:
                self.refused += 1
            due += interval
            self.stop.wait(max(0.0, due - time.monotonic()))
        sock.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--rate", type=float, default=20, help="messages per second, all senders")
    ap.add_argument("--senders", type=int, default=2)
    ap.add_argument("--sample-seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--out", default=str(ROOT / "var" / "soak" / "mllp.json"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="dmp-soak-"))
    home = work / "home"
    home.mkdir()
    (home / "dmp.toml").write_text('worker_id = "soak"\n[sources.labs]\n'
                                   'sending_application = "*"\n')
    source = messages(prepare(args.seed, work))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DMP_")}
    env.update(PYTHONPATH=str(ROOT), DMP_HOME=str(home), DMP_MLLP_PORT="0",
               DMP_MAPPINGS_DIR=str(work / "mappings"), DMP_LOG_LEVEL="WARNING")
    cli = [sys.executable, "-m", "cli"]
    subprocess.run([*cli, "dossier", "create", "--from-csv", str(work / "patients.csv")],
                   env=env, cwd=ROOT, check=True, capture_output=True)
    log = (work / "serve.log").open("wb")
    proc = subprocess.Popen([*cli, "serve", "--no-http"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=log, text=True)
    line = proc.stdout.readline()
    if "MLLP on" not in line:
        print(f"serve did not start: {line!r}", file=sys.stderr)
        return 1
    port = int(line.rsplit(":", 1)[1])
    stop, lock = threading.Event(), threading.Lock()
    senders = [Sender(port, source, args.rate / args.senders, stop, lock)
               for _ in range(args.senders)]
    start = time.monotonic()
    for s in senders:
        s.start()
    samples = []
    db = home / "dmp.sqlite3"
    end = start + args.minutes * 60
    while True:
        now = time.monotonic()
        pids = [proc.pid, *children(proc.pid)]
        samples.append({"minute": round((now - start) / 60, 2),
                        "rss_mib": round(sum(rss_kib(p) for p in pids) / 1024, 1),
                        "listener_rss_mib": round(rss_kib(proc.pid) / 1024, 1),
                        "backlog": backlog(db),
                        "acked": sum(len(s.acked) for s in senders)})
        print(json.dumps(samples[-1]), flush=True)
        if now >= end:
            break
        time.sleep(min(args.sample_seconds, max(0.0, end - now)))
    stop.set()
    for s in senders:
        s.join(120)
    drained_at = time.monotonic()
    while backlog(db) and time.monotonic() - drained_at < 600:
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    proc.wait(120)
    result = verify(home, db, [h for s in senders for h in s.acked])
    result.update(minutes=args.minutes, rate=args.rate, senders=args.senders,
                  sent=sum(s.sent for s in senders),
                  refused=sum(s.refused for s in senders), samples=samples,
                  exit_code=proc.returncode)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}))
    return 0


def verify(home: Path, db: Path, acked: list[str]) -> dict:
    """Lost: acknowledged but not in the ledger. Duplicated: a message deposited twice or an
    entry current twice. And `check` on the store."""
    from sqlalchemy import func, select

    from dossiers.db import make_engine
    from dossiers.schema import imports
    from pipelines.archive import open_archive
    from pipelines.check import check

    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = conn.execute(select(imports.c.sha256, imports.c.status)).all()
        twice = conn.execute(select(func.count()).select_from(
            select(imports.c.logical_id).where(imports.c.status == "deposited")
            .group_by(imports.c.logical_id).having(func.count() > 1).subquery())).scalar_one()
    stored = {r.sha256 for r in rows}
    report = check(engine, open_archive(str(home / "archive")))
    engine.dispose()
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    return {"acked": len(acked), "lost": len(set(acked) - stored), "duplicated": twice,
            "statuses": statuses, "consistent": report.consistent,
            "findings": [f.as_dict() for f in report.findings]}


if __name__ == "__main__":
    sys.exit(main())
