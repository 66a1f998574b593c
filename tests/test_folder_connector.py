"""The watched drop folder (connectors/folder.py) on the real file system: claims, settling,
races between pollers, crashes, store outages, odd names; settings; `serve` with a poller."""

from __future__ import annotations

import csv
import os
import socket
import stat
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.folder import CLAIMED, FolderPoller
from dossiers.schema import imports
from pipelines.archive import ArchiveError, DirectoryArchive, sha256_hex
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.process import drain
from pipelines.settings import FolderSource, SettingsError, load_settings
from tests.conftest import ROOT, SAMPLES, corpus_path, migrated_sqlite

HL7 = SAMPLES / "hl7v2"


def source(path: Path, **kw) -> FolderSource:  # noqa: ANN003
    kw.setdefault("settle_seconds", 0)
    return FolderSource(id="drop", path=path, **kw)


def ledger(engine) -> list[dict]:  # noqa: ANN001
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(imports).order_by(imports.c.id))]


def files_under(folder: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every regular file (and link, by its target's name), claim
    folders left out."""
    found = {}
    for path in folder.rglob("*"):
        if CLAIMED in path.relative_to(folder).parts:
            continue
        if path.is_symlink():
            found[path.relative_to(folder).as_posix()] = b"-> " + os.fsencode(os.readlink(path))
        elif path.is_file():
            found[path.relative_to(folder).as_posix()] = path.read_bytes()
    return found


def claimed_files(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / CLAIMED).rglob("*")
                  if (p.is_file() or p.is_symlink()) and p.name != ".lock")


class FlakyArchive:
    """A real directory archive that can be switched off (the archive disk or S3 down)."""

    def __init__(self, root: Path) -> None:
        self.inner = DirectoryArchive(root)
        self.down = False

    def put(self, data: bytes) -> str:
        sha = sha256_hex(data)
        self.put_many([(sha, data)])
        return sha

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        if self.down:
            raise ArchiveError("archive write failed (No space left on device)")
        self.inner.put_many(items)

    def get(self, sha: str) -> bytes:
        return self.inner.get(sha)


@pytest.fixture
def drop(tmp_path) -> Path:  # noqa: ANN001
    folder = tmp_path / "drop"
    folder.mkdir()
    return folder


# -- the basic path ---------------------------------------------------------------------------
def test_dropped_files_land_in_done_with_their_ledger_rows(ctx, drop) -> None:  # noqa: ANN001
    """HL7v2 and CDA files (a subfolder too) are recorded, moved to done/, and processed."""
    with (SAMPLES / "patients.csv").open(encoding="utf-8", newline="") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])
    nfs = (HL7 / "01_labm_nfs.hl7").read_bytes()
    (drop / "01_labm_nfs.hl7").write_bytes(nfs)
    (drop / "lab" / "2026").mkdir(parents=True)
    batch = (HL7 / "15_chu_batch.hl7").read_bytes()
    (drop / "lab" / "2026" / "batch.hl7").write_bytes(batch)
    cda_dir = corpus_path("cda")
    cda = sorted(cda_dir.glob("*.xml"))[0].read_bytes()
    (drop / "document.xml").write_bytes(cda)

    woken = []
    with FolderPoller(source(drop), ctx.engine, ctx.archive,
                      on_intake=lambda: woken.append(1)) as poller:
        result = poller.poll()
        assert result.error is None and result.taken == 3 and result.refused == 0
        assert woken
        assert files_under(drop) == {"done/01_labm_nfs.hl7": nfs,
                                     "done/lab/2026/batch.hl7": batch,
                                     "done/document.xml": cda}
        assert not claimed_files(drop)
        again = poller.poll()
        assert again.taken == 0 and not again.message_ids

    rows = ledger(ctx.engine)
    by_name = {r["file_name"]: r for r in rows if r["batch_of"] is None}
    assert set(by_name) == {"01_labm_nfs.hl7", "lab/2026/batch.hl7", "document.xml"}
    assert {(r["channel"], r["source"], r["peer"]) for r in rows} == {
        ("folder", "drop", str(drop.resolve()))}
    assert ctx.archive.get(by_name["01_labm_nfs.hl7"]["sha256"]) == nfs
    assert ctx.archive.get(by_name["document.xml"]["sha256"]) == cda
    assert by_name["lab/2026/batch.hl7"]["status"] == "split"  # FHS/BHS: one row per message
    assert sorted(result.message_ids) == sorted(r["id"] for r in rows if r["status"] != "split")

    drain(ctx)
    after = {r["id"]: r for r in ledger(ctx.engine)}
    assert after[by_name["01_labm_nfs.hl7"]["id"]]["status"] == "deposited"
    assert after[by_name["document.xml"]["id"]]["format"] == "cda"
    assert all(r["status"] in ("deposited", "duplicate", "failed", "quarantined", "split")
               for r in after.values())


def test_partial_uploads_are_not_taken(sqlite_ctx, drop) -> None:  # noqa: ANN001
    data = (HL7 / "05_chu_hba1c.hl7").read_bytes()
    for name in ("a.hl7.part", "b.tmp", "c.pdf.crdownload", "d.filepart", ".hidden.hl7",
                 "e.hl7~", "F.HL7.PART", "~$rapport.docx", "G.PDF.FILEPART", "Thumbs.db",
                 "desktop.ini"):
        (drop / name).write_bytes(data)
    (drop / ".cache").mkdir()
    (drop / ".cache" / "x.hl7").write_bytes(data)
    with FolderPoller(source(drop), sqlite_ctx.engine, sqlite_ctx.archive) as poller:
        assert poller.poll().taken == 0
        growing = drop / "growing.hl7"
        growing.write_bytes(data[:50])
        assert poller.poll().taken == 0  # first seen by this scan
        with growing.open("ab") as fh:
            fh.write(data[50:100])
        assert poller.poll().taken == 0  # size changed since the previous scan
        with growing.open("ab") as fh:
            fh.write(data[100:])
        os.utime(growing, ns=(time.time_ns(), time.time_ns() - 10**9))  # same size, new mtime
        assert poller.poll().taken == 0
        result = poller.poll()  # unchanged since the previous scan: settled
        assert result.taken == 1
    assert (drop / "done" / "growing.hl7").read_bytes() == data
    assert [r["file_name"] for r in ledger(sqlite_ctx.engine)] == ["growing.hl7"]
    assert (drop / "a.hl7.part").exists() and (drop / ".cache" / "x.hl7").exists()
    assert (drop / "~$rapport.docx").exists()  # Word's owner file, left to Word


def test_the_command_line_skips_the_same_names_as_the_poller(tmp_path) -> None:  # noqa: ANN001
    """`dmp-ingest ingest FOLDER` on a copy of a drop folder takes what a poller would."""
    from connectors.files import iter_files

    for name in ("a.hl7", "b.hl7.filepart", "~$c.docx", "D.TMP", ".e.hl7", "f.hl7~",
                 "Thumbs.db"):
        (tmp_path / name).write_bytes(b"MSH|^~\\&|A\r")
    assert [p.name for p in iter_files([tmp_path])] == ["a.hl7"]


def test_a_file_written_to_while_it_is_read_goes_back_to_settle(sqlite_ctx, drop,  # noqa: ANN001
                                                                 monkeypatch) -> None:
    """An upload over a network share can stall longer than settle_seconds, then go on: the
    sender still holds the file open and writes on after our rename. Its bytes changed while
    we read them: archiving what we read would file it cut short (a batch file without its
    last messages and no envelope to tell). It goes back where it was dropped, settles
    again, and is taken whole."""
    import connectors.folder as folder

    data = (HL7 / "05_chu_hba1c.hl7").read_bytes()
    slow = drop / "lent.hl7"
    slow.write_bytes(data[:120])
    past = time.time_ns() - 10 * 10**9
    os.utime(slow, ns=(past, past))
    real = folder._read_up_to
    writes = [data[120:]]

    def read_then_the_sender_writes_on(fd: int, limit: int) -> bytes:
        got = real(fd, limit)
        if writes:
            with open(os.readlink(f"/proc/self/fd/{fd}"), "ab") as fh:
                fh.write(writes.pop())
        return got

    monkeypatch.setattr(folder, "_read_up_to", read_then_the_sender_writes_on)
    with FolderPoller(source(drop, settle_seconds=0.05), sqlite_ctx.engine,
                      sqlite_ctx.archive) as poller:
        assert poller.poll().taken == 0  # changed while read: not recorded
        assert files_under(drop) == {"lent.hl7": data}  # back where it was dropped, whole
        assert ledger(sqlite_ctx.engine) == []
        past = time.time_ns() - 10 * 10**9
        os.utime(slow, ns=(past, past))
        assert poller.poll().taken == 0  # seen anew: it settles first
        time.sleep(0.1)
        assert poller.poll().taken == 1
    assert (drop / "done" / "lent.hl7").read_bytes() == data
    assert [r["size"] for r in ledger(sqlite_ctx.engine)] == [len(data)]


LOCKER = """
import fcntl, sys
kind, path = sys.argv[1], sys.argv[2]
fh = open(path, "r+b")
(fcntl.flock if kind == "flock" else fcntl.lockf)(fh, fcntl.LOCK_EX)
fh.seek(0, 2)
print("locked", flush=True)
sys.stdin.read()  # holds the lock until told to go on
fh.write(bytes.fromhex(sys.argv[3]))
fh.flush()
"""


@pytest.mark.parametrize(("kind", "when"), [("flock", "before"), ("lockf", "before"),
                                            ("flock", "after")])
def test_a_file_its_writer_holds_locked_is_left_until_released(sqlite_ctx, drop,  # noqa: ANN001
                                                                kind, when,
                                                                monkeypatch) -> None:
    """A writer (another process) holds an exclusive lock on a file whose size and mtime
    have not moved for longer than settle_seconds (a stalled upload): it was taken cut short.
    It is left in place until the lock is released, then taken whole. 'after': the lock is
    taken between our look and our claim (the read finds it and puts the file back)."""
    import subprocess
    import sys

    if when == "after":
        monkeypatch.setattr(FolderPoller, "_in_use", lambda *_: False)

    data = (HL7 / "05_chu_hba1c.hl7").read_bytes()
    slow = drop / "lent.hl7"
    slow.write_bytes(data[:120])
    (drop / "other.hl7").write_bytes(b"MSH|^~\\&|A\r")
    past = time.time_ns() - 10 * 10**9
    for path in (slow, drop / "other.hl7"):
        os.utime(path, ns=(past, past))
    writer = subprocess.Popen([sys.executable, "-c", LOCKER, kind, str(slow),
                               data[120:].hex()], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "locked\n"
        with FolderPoller(source(drop, settle_seconds=0.05), sqlite_ctx.engine,
                          sqlite_ctx.archive) as poller:
            result = poller.poll()
            assert (result.taken, result.error) == (1, None)  # the other file only
            time.sleep(0.1)
            assert poller.poll().taken == 0
            assert slow.read_bytes() == data[:120]  # where it was dropped
            writer.communicate("", timeout=10)  # writes the rest, lets go of the lock
            os.utime(slow, ns=(past, past))
            assert poller.poll().taken == 0  # changed: it settles first
            time.sleep(0.1)
            assert poller.poll().taken == 1
    finally:
        writer.kill()
        writer.wait()
    assert files_under(drop / "done") == {"lent.hl7": data, "other.hl7": b"MSH|^~\\&|A\r"}
    assert [r["size"] for r in ledger(sqlite_ctx.engine)] == [11, len(data)]


def test_a_recently_modified_file_waits_settle_seconds(sqlite_ctx, drop) -> None:  # noqa: ANN001
    """Both clocks must agree: unchanged for settle_seconds by ours, mtime that old too."""
    clock = [1000.0]
    poller = FolderPoller(source(drop, settle_seconds=60), sqlite_ctx.engine,
                          sqlite_ctx.archive, clock=lambda: clock[0])
    poller.scan()  # primed: the first poll does not wait
    fresh = drop / "fresh.hl7"
    fresh.write_bytes((HL7 / "01_labm_nfs.hl7").read_bytes())
    assert poller.poll().taken == 0
    clock[0] += 120  # observed unchanged for two minutes, but its mtime is seconds old
    assert poller.poll().taken == 0
    past = time.time_ns() - 120 * 10**9
    os.utime(fresh, ns=(past, past))  # mtime changed: observed anew
    assert poller.poll().taken == 0
    clock[0] += 30
    assert poller.poll().taken == 0
    clock[0] += 31
    assert poller.poll().taken == 1
    poller.close()


def test_non_recursive_folder_leaves_subfolders(sqlite_ctx, drop) -> None:  # noqa: ANN001
    (drop / "sub").mkdir()
    (drop / "sub" / "x.hl7").write_bytes(b"MSH|^~\\&|A|B\r")
    (drop / "top.hl7").write_bytes(b"MSH|^~\\&|A|C\r")
    with FolderPoller(source(drop, recursive=False), sqlite_ctx.engine,
                      sqlite_ctx.archive) as poller:
        assert poller.poll().taken == 1
    assert (drop / "sub" / "x.hl7").exists() and (drop / "done" / "top.hl7").exists()


# -- concurrency, crashes, outages ------------------------------------------------------------
def test_two_pollers_racing_take_each_file_once(sqlite_ctx, drop) -> None:  # noqa: ANN001
    n = 400
    template = (HL7 / "01_labm_nfs.hl7").read_bytes()
    for i in range(n):  # distinct bytes: a file taken twice would show as two non-repeats
        (drop / f"f{i:04d}.hl7").write_bytes(template.replace(b"|P|", f"|P|{i}".encode(), 1)
                                             + f"NTE|1||copy {i}\r".encode())
    pollers = [FolderPoller(source(drop), sqlite_ctx.engine, sqlite_ctx.archive,
                            name=f"p{k}") for k in (1, 2)]
    for p in pollers:
        p.scan()
    start = threading.Barrier(2)
    taken = [0, 0]

    def run(k: int) -> None:
        start.wait()
        for _ in range(5):
            taken[k] += pollers[k].poll().taken

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for p in pollers:
        p.close()
    assert sum(taken) == n
    done = files_under(drop / "done")
    assert sorted(done) == [f"f{i:04d}.hl7" for i in range(n)]  # no name.1.hl7: no re-take
    rows = ledger(sqlite_ctx.engine)
    assert len(rows) == n and all(r["status"] == "received" for r in rows)
    assert len({r["sha256"] for r in rows}) == n
    assert not claimed_files(drop) and not list((drop / CLAIMED).iterdir())


def test_files_left_claimed_by_a_crash_are_taken_again_first(sqlite_ctx, drop) -> None:  # noqa: ANN001
    """A poller killed after its claim: its claim folder (lock free) is adopted by the next
    poller, whose first poll records those files before anything new."""
    dead = drop / CLAIMED / "host-4242-deadbeef"
    (dead / "3" / "lab").mkdir(parents=True)
    (dead / ".lock").touch()
    left = (HL7 / "03_synlab_iono_creatinine.hl7").read_bytes()
    (dead / "3" / "lab" / "left.hl7").write_bytes(left)
    # a claim folder half made by a crash long ago
    old = drop / CLAIMED / ".new-host-1-00000000"
    old.mkdir()
    (old / ".lock").touch()
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    new = (HL7 / "04_synlab_bilan_hepatique.hl7").read_bytes()
    (drop / "new.hl7").write_bytes(new)

    with FolderPoller(source(drop), sqlite_ctx.engine, sqlite_ctx.archive) as poller:
        assert poller.poll().taken == 2
    rows = ledger(sqlite_ctx.engine)
    assert [r["file_name"] for r in rows] == ["lab/left.hl7", "new.hl7"]  # crash's first
    assert files_under(drop / "done") == {"lab/left.hl7": left, "new.hl7": new}
    assert not (drop / CLAIMED).exists() or not list((drop / CLAIMED).iterdir())


STUCK_POLLER = """
import sys, time
from pathlib import Path
from connectors.folder import FolderPoller
from dossiers.db import make_engine
from pipelines.settings import FolderSource

class StuckArchive:  # hangs in the write: the process is killed while holding its claims
    def put_many(self, items):
        print("claimed", flush=True)
        time.sleep(3600)

poller = FolderPoller(FolderSource(id="drop", path=Path(sys.argv[1]), settle_seconds=0),
                      make_engine(sys.argv[2]), StuckArchive(), name="doomed")
poller.poll()
"""


def test_a_poller_killed_with_sigkill_loses_nothing(sqlite_ctx, drop) -> None:  # noqa: ANN001
    """A real crash: the process holding the claim dies (SIGKILL); while it lives its claim
    is left alone, once it is dead the next poller takes the file."""
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    data = (HL7 / "05_chu_hba1c.hl7").read_bytes()
    (drop / "hba1c.hl7").write_bytes(data)
    proc = subprocess.Popen([sys.executable, "-c", STUCK_POLLER, str(drop),
                             str(sqlite_ctx.engine.url)], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "claimed"
        assert claimed_files(drop) == ["hba1c.hl7"]
        with FolderPoller(source(drop), sqlite_ctx.engine, sqlite_ctx.archive) as poller:
            assert poller.poll().taken == 0  # its poller is alive
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            result = poller.poll()
        assert result.taken == 1 and result.error is None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        proc.stdout.close()
    assert files_under(drop / "done") == {"hba1c.hl7": data}
    assert [r["file_name"] for r in ledger(sqlite_ctx.engine)] == ["hba1c.hl7"]
    assert not claimed_files(drop)


def test_a_live_pollers_claims_are_not_taken(sqlite_ctx, drop, tmp_path) -> None:  # noqa: ANN001
    """Store down: the file stays claimed by its poller (not taken by another one while it
    lives), no ledger row; taken at a later poll once the store is back; nothing deleted."""
    archive = FlakyArchive(tmp_path / "flaky")
    data = (HL7 / "06_bioazur_iono_vitd.hl7").read_bytes()
    (drop / "vitd.hl7").write_bytes(data)
    first = FolderPoller(source(drop), sqlite_ctx.engine, archive, name="first")
    other = FolderPoller(source(drop), sqlite_ctx.engine, archive, name="other")

    archive.down = True
    result = first.poll()
    assert result.taken == 0 and result.pending == 1
    assert "archive unavailable" in result.error and "drop" in result.error
    assert claimed_files(drop) == ["vitd.hl7"] and not (drop / "vitd.hl7").exists()
    assert ledger(sqlite_ctx.engine) == []
    assert first.poll().pending == 1  # retried, still down
    archive.down = False
    assert other.poll().taken == 0  # claimed by a live poller: not its to take
    assert claimed_files(drop) == ["vitd.hl7"]
    result = first.poll()
    assert result.taken == 1 and result.error is None
    assert files_under(drop / "done") == {"vitd.hl7": data}
    assert [r["file_name"] for r in ledger(sqlite_ctx.engine)] == ["vitd.hl7"]
    first.close()
    other.close()


def test_store_down_then_poller_stopped_the_next_poller_takes_over(sqlite_ctx, drop,  # noqa: ANN001
                                                                   tmp_path) -> None:
    archive = FlakyArchive(tmp_path / "flaky")
    data = (HL7 / "02_labm_lipides_glycemie.hl7").read_bytes()
    (drop / "x.hl7").write_bytes(data)
    archive.down = True
    with FolderPoller(source(drop), sqlite_ctx.engine, archive) as poller:
        assert poller.poll().pending == 1
    assert claimed_files(drop) == ["x.hl7"]  # closed: the file stays claimed
    archive.down = False
    with FolderPoller(source(drop), sqlite_ctx.engine, archive) as poller:
        assert poller.poll().taken == 1
    assert files_under(drop / "done") == {"x.hl7": data}


def test_store_down_database(tmp_path, drop) -> None:  # noqa: ANN001
    """The ledger's database unreachable (an OperationalError): the same, file kept claimed."""
    from dossiers.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'db.sqlite3'}")
    archive = DirectoryArchive(tmp_path / "archive")
    (drop / "x.hl7").write_bytes(b"MSH|^~\\&|A|B\r")
    with FolderPoller(source(drop), engine, archive) as poller:
        result = poller.poll()
    assert result.pending == 1 and "OperationalError" in result.error
    assert claimed_files(drop) == ["x.hl7"]


# -- names, links, refusals ---------------------------------------------------------------------
NAMES = ["compte rendu biologie.hl7", "Hélène Lefèvre – bilan.hl7", "tab\there.hl7",
         "ctrl\x01\x1b[31m.hl7", "new\nline.hl7", "曲 ü.hl7", "a" * 240 + ".hl7",
         "a..b.hl7", "-rf", "sub dir/é/x.hl7"]


def test_names_with_spaces_accents_and_control_characters(ctx, drop) -> None:  # noqa: ANN001
    expected = {}
    for i, name in enumerate(NAMES):
        path = drop / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = f"MSH|^~\\&|LAB|FAC|||20260101||ORU^R01|N{i}|P|2.5\r".encode()
        path.write_bytes(data)
        expected[name] = data
    latin1 = os.fsencode(drop) + b"/latin1-\xe9t\xe9.hl7"  # not UTF-8
    with open(latin1, "wb") as fh:
        fh.write(b"MSH|^~\\&|LAB|FAC|||20260101||ORU^R01|L1|P|2.5\r")
    with FolderPoller(source(drop), ctx.engine, ctx.archive) as poller:
        result = poller.poll()
    assert result.error is None and result.taken == len(NAMES) + 1
    assert files_under(drop / "done") == {
        **expected, os.fsdecode(b"latin1-\xe9t\xe9.hl7"):
            b"MSH|^~\\&|LAB|FAC|||20260101||ORU^R01|L1|P|2.5\r"}
    names = {r["file_name"] for r in ledger(ctx.engine)}
    assert names == set(NAMES) | {"latin1-\\xe9t\\xe9.hl7"}
    assert not claimed_files(drop)


def test_links_specials_and_large_files_go_to_failed_with_a_reason(sqlite_ctx, drop,  # noqa: ANN001
                                                                    tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.hl7"
    secret.write_bytes(b"MSH|^~\\&|SECRET\r")
    (outside / "deep.hl7").write_bytes(b"MSH|^~\\&|DEEP\r")
    (drop / "link.hl7").symlink_to(secret)
    (drop / "escape").symlink_to(outside, target_is_directory=True)
    (drop / "dangling").symlink_to(tmp_path / "nothing")
    os.mkfifo(drop / "pipe.hl7")
    big = b"MSH|^~\\&|BIG|" + b"x" * 5000 + b"\r"
    (drop / "big.hl7").write_bytes(big)
    (drop / "ok.hl7").write_bytes(b"MSH|^~\\&|OK\r")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(drop / "sock"))
        with FolderPoller(source(drop, max_bytes=1000), sqlite_ctx.engine,
                          sqlite_ctx.archive) as poller:
            result = poller.poll()
    assert result.taken == 7 and result.refused == 6 and result.error is None
    assert secret.read_bytes() == b"MSH|^~\\&|SECRET\r"  # not followed, not moved
    assert (outside / "deep.hl7").exists()
    failed = drop / "failed"
    assert (failed / "link.hl7").is_symlink() and (failed / "escape").is_symlink()
    assert stat.S_ISFIFO(os.lstat(failed / "pipe.hl7").st_mode)
    assert (failed / "big.hl7").read_bytes() == big  # whole, nothing lost
    assert (drop / "done" / "ok.hl7").exists()
    codes = {r["file_name"]: (r["status"], r["error_code"]) for r in ledger(sqlite_ctx.engine)}
    assert codes == {"link.hl7": ("failed", "FOLDER_SYMLINK"),
                     "escape": ("failed", "FOLDER_SYMLINK"),
                     "dangling": ("failed", "FOLDER_SYMLINK"),
                     "pipe.hl7": ("failed", "FOLDER_NOT_A_FILE"),
                     "sock": ("failed", "FOLDER_NOT_A_FILE"),
                     "big.hl7": ("failed", "FOLDER_FILE_TOO_LARGE"),
                     "ok.hl7": ("received", None)}
    big_row = next(r for r in ledger(sqlite_ctx.engine) if r["file_name"] == "big.hl7")
    assert sqlite_ctx.archive.get(big_row["sha256"]) == big[:65536]
    error = (failed / "big.hl7.error.txt").read_text()
    assert "FOLDER_FILE_TOO_LARGE" in error and f"imports show {big_row['id']}" in error
    assert "BIG" not in error and "xxx" not in error  # no content in the reason
    assert "SECRET" not in (failed / "link.hl7.error.txt").read_text()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_goes_to_failed(sqlite_ctx, drop) -> None:  # noqa: ANN001
    locked = drop / "locked.hl7"
    locked.write_bytes(b"MSH|^~\\&|A\r")
    locked.chmod(0)
    with FolderPoller(source(drop), sqlite_ctx.engine, sqlite_ctx.archive) as poller:
        assert poller.poll().refused == 1
    assert "FOLDER_FILE_UNREADABLE" in (drop / "failed" / "locked.hl7.error.txt").read_text()


def test_empty_files_are_refused_into_failed(sqlite_ctx, drop) -> None:  # noqa: ANN001
    """A zero-byte file went to done/ as received (then failed at parsing, and the next
    empty file of the source was a mere 'duplicate' of the first). Its sender wrote nothing or
    had not begun: it is refused with its own code and moved to failed/ with the reason."""
    for name in ("vide.hl7", "sub/vide2.pdf"):
        (drop / name).parent.mkdir(exist_ok=True)
        (drop / name).write_bytes(b"")
        os.utime(drop / name, (time.time() - 120,) * 2)  # round 8: empty for 2 minutes
    (drop / "ok.hl7").write_bytes(b"MSH|^~\\&|A\r")
    with FolderPoller(source(drop), sqlite_ctx.engine, sqlite_ctx.archive) as poller:
        result = poller.poll()
    assert (result.taken, result.refused, result.error) == (3, 2, None)
    rows = {r["file_name"]: (r["status"], r["error_code"]) for r in ledger(sqlite_ctx.engine)}
    assert rows == {"vide.hl7": ("failed", "FOLDER_EMPTY_FILE"),
                    "sub/vide2.pdf": ("failed", "FOLDER_EMPTY_FILE"),
                    "ok.hl7": ("received", None)}
    assert files_under(drop / "failed").keys() == {"vide.hl7", "vide.hl7.error.txt",
                                                   "sub/vide2.pdf", "sub/vide2.pdf.error.txt"}
    assert "FOLDER_EMPTY_FILE" in (drop / "failed" / "vide.hl7.error.txt").read_text()
    assert files_under(drop / "done") == {"ok.hl7": b"MSH|^~\\&|A\r"}


def test_same_name_again_is_kept_beside_never_replaced(sqlite_ctx, drop) -> None:  # noqa: ANN001
    first, second = b"MSH|^~\\&|A|1\r", b"MSH|^~\\&|A|2\r"
    with FolderPoller(source(drop), sqlite_ctx.engine, sqlite_ctx.archive) as poller:
        for data in (first, second, first):
            (drop / "results.hl7").write_bytes(data)
            poller.scan()
            assert poller.poll().taken == 1
    assert files_under(drop / "done") == {"results.hl7": first, "results.1.hl7": second,
                                          "results.2.hl7": first}
    rows = ledger(sqlite_ctx.engine)
    assert [r["status"] for r in rows] == ["received", "received", "duplicate"]


def test_names_at_the_length_limit_still_fit_beside_each_other(sqlite_ctx, drop) -> None:  # noqa: ANN001
    name = "é" * 125 + ".hl7"  # 254 bytes: name.1.hl7 would not fit
    with FolderPoller(source(drop, max_bytes=5), sqlite_ctx.engine,
                      sqlite_ctx.archive) as poller:
        for data in (b"MSH|1", b"MSH|2", b"MSH|too large"):
            (drop / name).write_bytes(data)
            poller.scan()
            assert poller.poll().taken == 1
    done = sorted(files_under(drop / "done").items(), key=lambda item: item[1])
    assert [(n, d) for n, d in done] == [(name, b"MSH|1"),
                                         ("é" * 124 + ".1.hl7", b"MSH|2")]
    failed = files_under(drop / "failed")
    error = next(n for n in failed if n.endswith(".error.txt"))
    assert set(failed) == {name, error} and len(os.fsencode(error)) <= 255
    assert "FOLDER_FILE_TOO_LARGE" in failed[error].decode()


def test_missing_folder_is_a_poll_error(sqlite_ctx, tmp_path) -> None:  # noqa: ANN001
    with FolderPoller(source(tmp_path / "absent"), sqlite_ctx.engine,
                      sqlite_ctx.archive) as poller:
        result = poller.poll()
    assert result.taken == 0 and "folder unusable" in result.error
    assert not (tmp_path / "absent").exists()


# -- settings -----------------------------------------------------------------------------------
def settings_from(tmp_path: Path, toml: str):  # noqa: ANN201
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "dmp.toml").write_text(toml, encoding="utf-8")
    return load_settings(env={"DMP_HOME": str(home)})


def test_folder_settings(tmp_path) -> None:  # noqa: ANN001
    settings = settings_from(tmp_path, """
poll_interval = 5
[folders.scans]
path = "drops/scans"
settle_seconds = 1.5
max_bytes = 1000000
recursive = false
poll_interval = 30
[folders.labs]
path = "/srv/labs"
""")
    scans, labs = settings.folders
    assert scans == FolderSource(id="scans", path=(tmp_path / "home" / "drops" / "scans"),
                                 settle_seconds=1.5, max_bytes=1000000, recursive=False,
                                 poll_interval=30.0)
    assert labs.path == Path("/srv/labs") and labs.settle_seconds == 2.0 and labs.recursive
    assert labs.poll_interval is None and settings.poll_interval == 5.0
    assert settings_from(tmp_path, "").folders == ()


@pytest.mark.parametrize("toml, message", [
    ('[folders.a]\nsettle_seconds = 1', r"\[folders.a\] path: required"),
    ('[folders.a]\npath = ""', r"\[folders.a\] path: required"),
    ('[folders.a]\npath = 3', r"\[folders.a\] path: text expected"),
    ('[folders.a]\npath = "x"\nsettle_seconds = -1', r"settle_seconds: must be at least 0"),
    ('[folders.a]\npath = "x"\nsettle_seconds = "soon"', r"a number of seconds expected"),
    ('[folders.a]\npath = "x"\nmax_bytes = 0', r"max_bytes: a positive whole number"),
    ('[folders.a]\npath = "x"\nmax_bytes = "10MB"', r"max_bytes: a positive whole number"),
    ('[folders.a]\npath = "x"\nrecursive = "yes"', r"recursive: true or false"),
    ('[folders.a]\npath = "x"\npoll_interval = 0', r"poll_interval: must be above 0"),
    ('[folders.a]\npath = "x"\nsetle_seconds = 1', r"unknown setting 'setle_seconds'"),
    ('[folders.a]\npath = "x"\n[folders.b]\npath = "x/"', r"already watched by \[folders.a\]"),
    ('[folders.chu]\npath = "drop"\n[folders.labA]\npath = "drop/labA"',
     r"\[folders.labA\] path: inside the folder of \[folders.chu\] \(recursive\)"),
    ('folders = 3', r"\[folders\] must hold"),
    ('[folders]\na = 1', r"\[folders.a\] must be a table"),
    ('poll_interval = -2', r"poll_interval: must be above 0"),
])
def test_bad_folder_settings_are_one_line_errors(tmp_path, toml, message) -> None:  # noqa: ANN001
    with pytest.raises(SettingsError, match=message) as info:
        settings_from(tmp_path, toml)
    assert "\n" not in str(info.value)


# -- serve ------------------------------------------------------------------------------------
def test_serve_polls_folders_and_processes(tmp_path, drop, sqlite_template) -> None:  # noqa: ANN001
    """The service's poller takes a dropped file, the ledger worker processes it at once;
    stopping finishes cleanly; --no-pollers leaves the folder alone."""
    from pipelines.process import Context
    from pipelines.settings import ListenerSettings
    from tests.mllp_support import running_service

    migrated_sqlite(sqlite_template, tmp_path / "home" / "dmp.sqlite3")  # the home's store
    settings = load_settings(env={"DMP_HOME": str(tmp_path / "home")},
                             listener=ListenerSettings(port=0), workers=0,
                             folders=(source(drop, poll_interval=0.2),), poll_interval=60)
    ctx = Context.from_settings(settings)
    with (SAMPLES / "patients.csv").open(encoding="utf-8", newline="") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])
    data = (HL7 / "01_labm_nfs.hl7").read_bytes()
    with running_service(ctx) as svc:
        # settle_seconds is 0 here: write under a hidden name then rename, as an uploader
        # should, or the poller may take the file between its creation and its write
        (drop / ".nfs.hl7").write_bytes(data)
        (drop / ".nfs.hl7").rename(drop / "nfs.hl7")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rows = ledger(ctx.engine)
            if rows and rows[0]["status"] == "deposited":
                break
            time.sleep(0.1)
        result = svc.stop()
    rows = ledger(ctx.engine)
    assert [r["status"] for r in rows] == ["deposited"], [
        (r["status"], r["stage"], r["error_code"], r["error_message"]) for r in rows]
    assert (drop / "done" / "nfs.hl7").read_bytes() == data
    assert result["polled"] == {"drop": 1}

    (drop / "later.hl7").write_bytes(data)
    import asyncio

    from connectors.service import serve

    async def briefly() -> dict:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(1.0, stop.set)
        return await serve(ctx, mllp=False, pollers=False, stop=stop)

    assert asyncio.run(briefly())["polled"] == {}
    assert (drop / "later.hl7").exists()
    ctx.engine.dispose()


def test_cli_serve_has_no_pollers_option() -> None:
    import cli

    args = cli.build_parser().parse_args(["serve", "--no-pollers"])
    assert args.no_pollers is True
    assert cli.build_parser().parse_args(["serve"]).no_pollers is False



def test_a_folder_beside_a_non_recursive_one_may_be_inside_it(tmp_path) -> None:  # noqa: ANN001
    settings = settings_from(tmp_path, """
[folders.chu]
path = "drop"
recursive = false
[folders.labA]
path = "drop/labA"
""")
    assert [s.id for s in settings.folders] == ["chu", "labA"]


@pytest.fixture
def other_fs(tmp_path) -> Path:  # noqa: ANN001
    """A folder on another file system than tmp_path: tmpfs /dev/shm, or, when tmp_path is
    there already (tests/conftest.py), the system's temporary folder or this checkout."""
    import shutil
    import tempfile

    here = tmp_path.stat().st_dev
    places = [p for p in ("/dev/shm", tempfile.gettempdir(), str(ROOT))
              if os.path.isdir(p) and os.access(p, os.W_OK) and os.stat(p).st_dev != here]
    if not places:
        pytest.skip("no second file system here")
    folder = Path(tempfile.mkdtemp(dir=places[0], prefix="dmp-test-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_folder_archive_done_and_failed_on_different_file_systems(sqlite_ctx, tmp_path,  # noqa: ANN001
                                                                  other_fs) -> None:
    """The drop folder on one file system, the archive on another, and done/ and
    failed/ links an admin made to a third place on that other disk. A recorded file could
    not be moved (a hard link across file systems: EXDEV): it stayed claimed, logged at every
    poll and never reported. It is copied, synced, then the claimed file removed; a name
    already in done/ is kept beside, never replaced."""
    drop = other_fs / "drop"
    drop.mkdir()
    kept = tmp_path / "kept"
    for where in ("done", "failed"):
        (kept / where).mkdir(parents=True)
        (drop / where).symlink_to(kept / where, target_is_directory=True)
    (kept / "done" / "ok.hl7").write_bytes(b"earlier")
    (drop / "ok.hl7").write_bytes(b"MSH|^~\\&|OK\r")
    (drop / "sub").mkdir()
    (drop / "sub" / "big.hl7").write_bytes(b"MSH|^~\\&|" + b"x" * 2000 + b"\r")
    assert os.stat(drop).st_dev != os.stat(sqlite_ctx.archive.root).st_dev
    with FolderPoller(source(drop, max_bytes=1000), sqlite_ctx.engine,
                      sqlite_ctx.archive) as poller:
        result = poller.poll()
        assert (result.taken, result.refused, result.error) == (2, 1, None)
        assert poller.poll().taken == 0
    assert files_under(kept / "done") == {"ok.hl7": b"earlier", "ok.1.hl7": b"MSH|^~\\&|OK\r"}
    failed = files_under(kept / "failed")
    assert set(failed) == {"sub/big.hl7", "sub/big.hl7.error.txt"}
    assert "FOLDER_FILE_TOO_LARGE" in failed["sub/big.hl7.error.txt"].decode()
    assert not claimed_files(drop) and not list(kept.rglob(".dmp-copy-*"))
    rows = {r["file_name"]: r for r in ledger(sqlite_ctx.engine)}
    assert {n: r["status"] for n, r in rows.items()} == {"ok.hl7": "received",
                                                         "sub/big.hl7": "failed"}
    assert sqlite_ctx.archive.get(rows["ok.hl7"]["sha256"]) == b"MSH|^~\\&|OK\r"


def test_a_file_that_cannot_be_claimed_is_left_and_the_others_go_on(sqlite_ctx, drop,  # noqa: ANN001
                                                                   caplog) -> None:
    """Permission denied on one file (here the immutable flag, which root obeys too): it is
    left where it is, logged without its name, and does not fail the poll (a failed poll
    backs the poller off, delaying every other file); the others are taken."""
    import shutil
    import subprocess

    if shutil.which("chattr") is None:
        pytest.skip("no chattr")
    locked = drop / "Dupont Jean.hl7"
    locked.write_bytes(b"MSH|^~\\&|A|1\r")
    (drop / "b.hl7").write_bytes(b"MSH|^~\\&|A|2\r")
    if subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode:
        pytest.skip("the file system or the process cannot set the immutable flag")
    try:
        with FolderPoller(source(drop), sqlite_ctx.engine, sqlite_ctx.archive) as poller:
            result = poller.poll()
        assert (result.taken, result.error) == (1, None)
        assert locked.read_bytes() == b"MSH|^~\\&|A|1\r"
        assert [r["file_name"] for r in ledger(sqlite_ctx.engine)] == ["b.hl7"]
        assert "cannot be claimed (Operation not permitted)" in caplog.text
        assert "Dupont" not in caplog.text
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=False)


def test_ten_thousand_files_oldest_first_in_bounded_polls(sqlite_ctx, drop) -> None:  # noqa: ANN001
    """A folder left to fill (a weekend's backlog): 10,000 files in per-sender subfolders.
    A poll takes at most max_files (5,000), oldest first by mtime (not by name), and the
    next takes the rest; a scan of the whole folder stays cheap."""
    n = 10_000
    base = time.time_ns() - 10**12
    for i in range(n):
        sub = drop / f"sender{i % 10}"
        sub.mkdir(exist_ok=True)
        path = sub / f"{i:05d}.hl7"
        path.write_bytes(f"MSH|^~\\&|L|F|||20260101||ORU^R01|P{i}|P|2.5\r".encode())
        stamp = base + (n - i) * 10**6  # the highest numbers are the oldest
        os.utime(path, ns=(stamp, stamp))
    with FolderPoller(source(drop), sqlite_ctx.engine, sqlite_ctx.archive) as poller:
        started = time.monotonic()
        poller.scan()
        assert time.monotonic() - started < 5
        first = poller.poll()
        second = poller.poll()
        assert time.monotonic() - started < 120
        assert (first.taken, second.taken, first.error, second.error) == (5000, 5000, None,
                                                                          None)
        assert poller.poll().taken == 0
    names = [r["file_name"] for r in ledger(sqlite_ctx.engine)]
    assert names == [f"sender{i % 10}/{i:05d}.hl7" for i in reversed(range(n))]
    assert len(list((drop / "done").rglob("*.hl7"))) == n and not claimed_files(drop)
