"""The MLLP listener under load: ACK throughput and latency, and whether processing keeps pace.

Prints figures; asserts nothing (performance is measured here, never in tests).

    .venv/bin/python bench/bench_mllp.py [--messages 2000] [--senders 1,8,32]
        [--ack-mode accept|application] [--ack-request enhanced|original] [--no-process]
        [--seed 7] [--warm-archive] [--keep]

Generates realistic ORU^R01 messages with samples/generate.py (French lab traffic, 10 to 20 OBX
each, segments ended by CR, each lab's own charset; no duplicates, no corrections; MSH-10
rewritten so that every message of the run has a control id of its own), creates the dossiers
of their patients in a temporary DMP_HOME (one source declared, accepting any sender), starts
`dmp-ingest serve` there as a subprocess (DMP_MLLP_PORT=0), then for each concurrency level
opens that many keep-alive connections over loopback and sends `--messages` fresh messages,
split evenly between them; each connection sends a frame (VT msg FS CR), waits for its ACK
frame, then sends the next. Measured per level:

- ACKs per second (wall clock, first send to last ACK), p50 / p99 / max ACK latency (frame
  written -> ACK frame read), ACKs other than AA/CA;
- the ledger backlog (rows 'received' or 'processing' in $DMP_HOME/dmp.sqlite3) when the last
  ACK arrives, and how long the service's worker then takes to drain it;
- processing throughput: the level's messages over (sending + draining), and the backlog over
  the drain time alone; the outcome of every row of the level (deposited, quarantined...);
- CPU seconds used by the server process and by this client while sending (both share the
  machine's cores).

Each level waits for the previous one to be fully processed (rows left 'processing' under a
lease with nothing moving for --stall seconds are reported, not waited for). At the end the
server gets SIGTERM; its exit code, last line and ERROR log lines are printed.

The generator writes MSH-15/16 = AL/NE (enhanced mode): ACKs are then commit ACKs (CA) and, even
in application mode, processing is left to the worker. `--ack-request original` empties them
(the default with --ack-mode application) so that the ACK is an AA sent after processing.
`--no-process` runs `serve --no-process`: the listener alone, backlogs left undrained.
The server runs the code of the tree this script is in (PYTHONPATH), so a copy of this file
in a checkout of another commit measures that commit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VT, FS, CR = b"\x0b", b"\x1c", b"\r"
PENDING = ("received", "processing")
OBX_RANGE = (10, 20)
ACK_TIMEOUT = 120.0


# -- messages -------------------------------------------------------------------------------
def build_messages(total: int, seed: int, work: Path,
                   original: bool = False) -> tuple[list[bytes], Path, Path]:
    """``total`` ORU^R01 messages with 10-20 OBX and unique MSH-10, patients.csv, mappings/.
    ``original``: MSH-15/MSH-16 emptied (the generator writes AL/NE, enhanced mode)."""
    from samples.generate import Traffic, write_mappings, write_patients_csv

    traffic = Traffic(seed, patients=max(10, total // 3), duplicates=0.0, corrections=0.0,
                      eol="\r")
    messages: list[bytes] = []
    for data in traffic:
        if len(messages) >= total:
            break
        obx = data.count(b"\rOBX|")
        if not OBX_RANGE[0] <= obx <= OBX_RANGE[1]:
            continue
        # The generator numbers control ids per lab, so two labs may share one: make MSH-10
        # unique across the run (ST, at most 20 characters).
        msh, rest = data.split(b"\r", 1)
        fields = msh.split(b"|")
        fields[9] = f"MLLPB{seed % 1000:03d}{len(messages):09d}".encode("ascii")
        if original:
            fields[14] = fields[15] = b""
        messages.append(b"|".join(fields) + b"\r" + rest)
    work.mkdir(parents=True, exist_ok=True)
    patients_csv = work / "patients.csv"
    write_patients_csv(patients_csv, traffic.used_patients())
    mappings = work / "mappings"
    write_mappings(mappings)
    return messages, patients_csv, mappings


def code_version() -> str:
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# -- the server -----------------------------------------------------------------------------
def dmp_ingest() -> list[str]:
    script = Path(sys.executable).parent / "dmp-ingest"
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli"]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system


class Server:
    def __init__(self, home: Path, env: dict[str, str], extra: list[str]) -> None:
        self.home = home
        self.log_path = home / "serve.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(dmp_ingest() + ["serve", "--no-http", *extra], env=env,
                                     cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log)
        self.host, self.port = "127.0.0.1", 0
        self.lines: list[str] = []

    def wait_ready(self, timeout: float = 120.0) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode("utf-8", "replace").strip()
            if not line:
                if self.proc.poll() is not None:
                    break
                continue
            self.lines.append(line)
            if "MLLP on " in line:
                address = line.split("MLLP on ", 1)[1]
                host, _, port = address.rpartition(":")
                self.host, self.port = host, int(port)
                return
        self.log.flush()
        raise SystemExit(f"dmp-ingest serve did not start: {self.lines} "
                         f"{self.log_path.read_text(errors='replace')[-2000:]}")

    def stop(self, timeout: float = 120.0) -> tuple[int | None, float]:
        start = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.lines += out.decode("utf-8", "replace").splitlines()
        self.log.close()
        return self.proc.returncode, time.perf_counter() - start


# -- the ledger -----------------------------------------------------------------------------
def _query(db: Path | str, sql: str, *params: object) -> list[tuple]:
    """``db``: the SQLite file, or a database URL (--database-url)."""
    if isinstance(db, str):
        from sqlalchemy import text

        from dossiers.db import make_engine

        engine = _ENGINES.setdefault(db, make_engine(db))
        names = {f"p{i}": v for i, v in enumerate(params)}
        for i in range(len(params)):
            sql = sql.replace("?", f":p{i}", 1)
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), names)]
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


_ENGINES: dict = {}


def last_id(db: Path) -> int:
    return _query(db, "SELECT coalesce(max(id), 0) FROM imports")[0][0]


def level_counts(db: Path, after: int) -> Counter:
    """Ledger statuses of the rows written after row ``after`` (one level's messages)."""
    return Counter(dict(_query(db, "SELECT status, count(*) FROM imports WHERE id > ? "
                                   "GROUP BY status", after)))


def backlog(counts: Counter) -> int:
    return sum(counts[s] for s in PENDING)


def held_rows(db: Path, after: int) -> list[tuple]:
    """Rows still 'processing' (under a worker's lease): id, claimed_until, attempts."""
    return _query(db, "SELECT id, claimed_until, attempts FROM imports WHERE id > ? AND "
                      "status = 'processing' ORDER BY id", after)


# -- the client -----------------------------------------------------------------------------
def ack_code(frame: bytes) -> str:
    """MSA-1 of an ACK frame's payload."""
    for segment in frame.split(b"\r"):
        if segment.startswith(b"MSA"):
            parts = segment.split(segment[3:4])
            return parts[1].decode("ascii", "replace") if len(parts) > 1 else "?"
    return "no MSA"


@dataclass
class SenderResult:
    latencies: list[float] = field(default_factory=list)
    codes: Counter = field(default_factory=Counter)
    error: str | None = None


async def read_ack(reader: asyncio.StreamReader) -> bytes:
    data = await reader.readuntil(FS + CR)
    start = data.rfind(VT)
    return data[start + 1:-2] if start >= 0 else data[:-2]


async def sender(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 messages: list[bytes], go: asyncio.Event) -> SenderResult:
    reader, writer = conn
    result = SenderResult()
    clock = time.perf_counter
    await go.wait()
    try:
        for msg in messages:
            t0 = clock()
            writer.write(VT + msg + FS + CR)
            await writer.drain()
            ack = await asyncio.wait_for(read_ack(reader), ACK_TIMEOUT)
            result.latencies.append(clock() - t0)
            result.codes[ack_code(ack)] += 1
    except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    return result


@dataclass
class Level:
    senders: int
    messages: int
    wall: float = 0.0
    latencies: list[float] = field(default_factory=list)
    codes: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    backlog: int = 0
    drain: float = 0.0
    drained: bool = True
    drain_attempted: bool = True
    held: list[tuple] = field(default_factory=list)  # rows left 'processing' when we gave up
    outcomes: Counter = field(default_factory=Counter)
    server_cpu: float = 0.0
    client_cpu: float = 0.0

    @property
    def acked(self) -> int:
        return len(self.latencies)

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000

    @property
    def not_ok(self) -> int:
        return sum(n for code, n in self.codes.items() if code not in ("AA", "CA"))


async def run_level(server: Server, db: Path, n_senders: int, messages: list[bytes],
                    drain_timeout: float, stall: float, drain: bool = True) -> Level:
    level = Level(n_senders, len(messages), drain_attempted=drain)
    chunks = [messages[i::n_senders] for i in range(n_senders)]
    conns = [await asyncio.open_connection(server.host, server.port, limit=1 << 20)
             for _ in range(n_senders)]
    after = last_id(db)
    go = asyncio.Event()
    tasks = [asyncio.create_task(sender(c, chunk, go))
             for c, chunk in zip(conns, chunks, strict=True)]
    await asyncio.sleep(0)
    cpu0, own0 = cpu_seconds(server.proc.pid), own_cpu()
    start = time.perf_counter()
    go.set()
    results = await asyncio.gather(*tasks)
    end = time.perf_counter()
    level.wall = end - start
    level.server_cpu = cpu_seconds(server.proc.pid) - cpu0
    level.client_cpu = own_cpu() - own0
    counts = level_counts(db, after)
    level.backlog = backlog(counts)
    for r in results:
        level.latencies += r.latencies
        level.codes.update(r.codes)
        if r.error:
            level.errors.append(r.error)
    for _, writer in conns:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    # Drain: poll the ledger until none of this level's rows is waiting or being processed.
    # A row can stay 'processing' until its lease expires (600 s) when the worker's batch
    # failed: once nothing has moved for `stall` seconds and only leased rows are left, stop
    # waiting and report them.
    last_change, last_seen = time.perf_counter(), backlog(counts)
    while drain and backlog(counts) and time.perf_counter() - end < drain_timeout:
        await asyncio.sleep(0.05)
        counts = level_counts(db, after)
        now = time.perf_counter()
        if backlog(counts) != last_seen:
            last_change, last_seen = now, backlog(counts)
        elif counts["received"] == 0 and now - last_change > stall:
            break
    level.drained = backlog(counts) == 0
    level.drain = (last_change if not level.drained else time.perf_counter()) - end \
        if level.backlog and drain else 0.0
    if not level.drained and drain:
        level.held = held_rows(db, after)
    level.outcomes = counts
    return level


# -- output ---------------------------------------------------------------------------------
COLUMNS = [("senders", 7), ("msgs", 6), ("wall s", 7), ("ACK/s", 7), ("p50 ms", 7),
           ("p99 ms", 7), ("max ms", 7), ("non-AA", 6), ("backlog", 7), ("drain s", 7),
           ("proc/s", 7), ("drain/s", 7), ("srv CPU", 7), ("cli CPU", 7)]


def row(level: Level) -> list[str]:
    total = level.wall + level.drain
    processed = sum(n for s, n in level.outcomes.items() if s not in PENDING)
    return [
        str(level.senders), str(level.acked), f"{level.wall:.2f}",
        f"{level.acked / level.wall:,.0f}" if level.wall else "-",
        f"{level.pct(0.50):.1f}", f"{level.pct(0.99):.1f}",
        f"{max(level.latencies) * 1000:.1f}" if level.latencies else "-",
        str(level.not_ok), str(level.backlog),
        "-" if not level.drain_attempted else
        f"{level.drain:.2f}" + ("" if level.drained else "*"),
        f"{processed / total:,.0f}" if total else "-",
        f"{level.backlog / level.drain:,.0f}" if level.drain else "-",
        f"{level.server_cpu / level.wall:.0%}" if level.wall else "-",
        f"{level.client_cpu / level.wall:.0%}" if level.wall else "-",
    ]


def print_table(levels: list[Level]) -> None:
    print()
    print("  ".join(name.rjust(width) for name, width in COLUMNS))
    for level in levels:
        print("  ".join(v.rjust(w) for v, (_, w) in zip(row(level), COLUMNS, strict=True)))
    print()
    print("ACK/s: ACKs per second, wall clock; latency: frame written -> ACK read;\n"
          "non-AA: ACKs other than AA/CA; backlog: ledger rows received/processing at the last "
          "ACK;\ndrain s: time to process them ('*': some stuck, see below); proc/s: messages "
          "processed over (sending + draining);\ndrain/s: backlog / drain time; srv/cli CPU: "
          "CPU time of the server process / of this client\nover the sending wall time "
          "(100% = one core).")
    for level in levels:
        outcomes = ", ".join(f"{n} {s}" for s, n in sorted(level.outcomes.items()) if n)
        codes = ", ".join(f"{n} {c}" for c, n in sorted(level.codes.items()))
        print(f"{level.senders:>3} sender(s): ACKs {codes}; ledger rows: {outcomes}"
              + (f"; {len(level.errors)} connection error(s): {level.errors[0]}"
                 if level.errors else ""))
        if level.held:
            ids = ", ".join(str(h[0]) for h in level.held[:10])
            print(f"    {len(level.held)} row(s) left 'processing' under lease (ids {ids}"
                  f"{'...' if len(level.held) > 10 else ''}; lease until {level.held[0][1]} "
                  "UTC): the worker's batch failed, see the server log")


def warm_archive(root: Path) -> None:
    """The two levels of directories of pipelines.archive.DirectoryArchive, all of them."""
    for a in range(256):
        for b in range(256):
            os.makedirs(root / f"{a:02x}" / f"{b:02x}", exist_ok=True)
    os.sync()  # not left to the first group's flush


# -- main -----------------------------------------------------------------------------------
async def run(args: argparse.Namespace, server: Server, db: Path,
              batches: list[list[bytes]], senders: list[int]) -> list[Level]:
    levels = []
    for n, batch in zip(senders, batches, strict=True):
        level = await run_level(server, db, n, batch, args.drain_timeout, args.stall,
                                drain=not args.no_process)
        r = row(level)
        print(f"{n:>3} sender(s): {level.acked} ACKs in {r[2]} s = {r[3]}/s, p50 {r[4]} ms, "
              f"p99 {r[5]} ms, max {r[6]} ms, {level.not_ok} not AA; backlog {level.backlog}, "
              + (f"drained in {r[9]} s" if not args.no_process else "not processed")
              + (f" ({len(level.held)} row(s) stuck under lease)" if level.held else ""),
              flush=True)
        levels.append(level)
    return levels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="per concurrency level")
    parser.add_argument("--senders", default="1,8,32",
                        help="concurrency levels, comma-separated (default 1,8,32)")
    parser.add_argument("--ack-mode", choices=["accept", "application"], default="accept")
    parser.add_argument("--ack-request", choices=["enhanced", "original"],
                        help="MSH-15/16 of the messages: 'enhanced' as generated (AL/NE: a "
                        "commit ACK, CA, and processing left to the worker even in "
                        "application mode) or 'original' (emptied: one AA, after processing "
                        "in application mode); default: enhanced in accept mode, original "
                        "in application mode")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", help="store of the server (default: SQLite in its "
                        "temporary DMP_HOME), e.g. postgresql://postgres@127.0.0.1:5432/bench")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes of the server (DMP_WORKERS; default 1)")
    parser.add_argument("--worker-nice", type=int, default=None,
                        help="nice increment of the server's worker processes "
                        "(DMP_WORKER_NICE; default the server's)")
    parser.add_argument("--commit-every", type=int, default=None,
                        help="messages filed per processing transaction (DMP_COMMIT_EVERY; "
                        "default the server's)")
    parser.add_argument("--drain-timeout", type=float, default=600.0,
                        help="seconds to wait for the worker to drain a level's backlog")
    parser.add_argument("--no-process", action="store_true",
                        help="run `serve --no-process` (the listener alone, no ledger worker): "
                        "ACK figures without processing competing; backlogs are not drained")
    parser.add_argument("--stall", type=float, default=10.0,
                        help="stop waiting for a drain when only leased rows are left and "
                        "nothing moved for this many seconds")
    parser.add_argument("--warm-archive", action="store_true",
                        help="create the archive's 65,536 directories (ab/cd/) before starting, "
                        "as in an archive that has been receiving for a while: in a new one "
                        "nearly every message of a run this size creates a directory (a mkdir "
                        "costs about 0.2 ms of CPU here, more than the message's own write)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary DMP_HOME (printed) instead of deleting it")
    args = parser.parse_args()
    senders = [int(s) for s in args.senders.split(",") if s.strip()]
    if args.ack_request is None:
        args.ack_request = "original" if args.ack_mode == "application" else "enhanced"

    work = Path(tempfile.mkdtemp(prefix="dmp-bench-mllp-"))
    home = work / "home"
    home.mkdir()
    (home / "dmp.toml").write_text('[sources.bench]\nsending_application = "*"\n'
                                   'sending_facility = "*"\n', encoding="utf-8")
    total = args.messages * len(senders)
    t0 = time.perf_counter()
    messages, patients_csv, mappings = build_messages(total, args.seed, work / "data",
                                                     original=args.ack_request == "original")
    sizes = [len(m) for m in messages]
    obx = [m.count(b"\rOBX|") for m in messages]
    print(f"{len(messages)} messages generated in {time.perf_counter() - t0:.1f} s "
          f"({args.messages} per level, {sum(sizes) / len(sizes) / 1000:.1f} KB and "
          f"{sum(obx) / len(obx):.1f} OBX on average); {os.cpu_count()} cores, "
          f"python {sys.version.split()[0]}; code {code_version()}; ack mode {args.ack_mode}, "
          f"{args.ack_request} ACK requests; load average {os.getloadavg()[0]:.2f}"
          + ("; listener alone (--no-process)" if args.no_process else ""), flush=True)

    env = {k: v for k, v in os.environ.items() if not k.startswith("DMP_")}
    env.update(DMP_HOME=str(home), DMP_MLLP_PORT="0", DMP_MLLP_ACK_MODE=args.ack_mode,
               DMP_MAPPINGS_DIR=str(mappings),
               **({"DMP_DATABASE_URL": args.database_url} if args.database_url else {}),
               **({"DMP_WORKERS": str(args.workers)} if args.workers is not None else {}),
               **({"DMP_WORKER_NICE": str(args.worker_nice)}
                  if args.worker_nice is not None else {}),
               **({"DMP_COMMIT_EVERY": str(args.commit_every)}
                  if args.commit_every is not None else {}),
               # the server runs the code of the tree this script is in (a checkout of another
               # commit included), not whatever the venv's editable install points at
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    created = subprocess.run(dmp_ingest() + ["dossier", "create", "--from-csv",
                                             str(patients_csv), "--json"],
                             env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    import json

    print(f"{len(json.loads(created.stdout)['created'])} dossiers created", flush=True)

    if args.warm_archive:
        t1 = time.perf_counter()
        warm_archive(home / "archive")
        print(f"archive directories created in {time.perf_counter() - t1:.1f} s", flush=True)
    server = Server(home, env, ["--no-process"] if args.no_process else [])
    levels: list[Level] = []
    try:
        server.wait_ready()
        print(f"server pid {server.proc.pid} on {server.host}:{server.port}", flush=True)
        batches = [messages[i * args.messages:(i + 1) * args.messages]
                   for i in range(len(senders))]
        db = args.database_url or home / "dmp.sqlite3"
        levels = asyncio.run(run(args, server, db, batches, senders))
    finally:
        code, took = server.stop()
        print_table(levels)
        last = server.lines[-1] if server.lines else "(no output)"
        print(f"SIGTERM -> server exit code {code} after {took:.2f} s; last line: {last}")
        log = Path(server.log_path).read_text(errors="replace")
        errors = Counter(line.split(" ", 3)[3] for line in log.splitlines()
                         if " ERROR " in line and line[:2].isdigit())
        if errors:
            print(f"server log ({server.log_path.name}): {sum(errors.values())} ERROR line(s):")
            for text, n in errors.most_common(8):
                print(f"  {n} x {text}")
        if code != 0:
            print(log[-3000:])
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
