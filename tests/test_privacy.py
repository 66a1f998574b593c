"""No patient data in logs or error texts: the whole sample set (HL7v2, CDA, every PDF:
text-layer, scanned and OCR'd, encrypted, broken) goes through the pipeline with logging at
DEBUG, and through one `serve` run (MLLP and a drop folder) at DMP_LOG_LEVEL=DEBUG; every log
line, ledger error message, warning and attempt text is searched for each patient's family
name, given name, birth name and NIR (samples/patients.csv, the PDF truth file, and the
PID/recordTarget of every sample)."""

from __future__ import annotations

import csv
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select

from dossiers.schema import import_attempts, imports
from tests.conftest import ROOT, SAMPLES, migrated_sqlite
from tests.mllp_support import Client
from tests.reliability_support import load_sample_set, sample_files

HL7_NS = {"h": "urn:hl7-org:v3"}


def patient_data() -> set[str]:
    """Every name and NIR the samples hold (3 characters at least, case-folded)."""
    found: set[str] = set()
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            found |= {r["family"], r["given"], r["birth_family"], r["ins"],
                      *r["given_all"].split()}
    with open(SAMPLES / "pdf" / "truth.csv", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            found |= {r["family"], r["birth_family"], r["given"], r["nir"]}
    for path in sorted((SAMPLES / "hl7v2").glob("*.hl7")):
        for line in re.split(rb"[\r\n]+", path.read_bytes()):
            if line.startswith(b"PID|"):
                fields = line.decode("utf-8", "replace").split("|")
                for name in fields[5].split("~") if len(fields) > 5 else []:
                    found |= set(name.split("^")[:2])
                found |= set(re.findall(r"\b[12]\d{12}\d{2}\b", fields[3] if len(fields) > 3
                                        else ""))
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    for path in sorted((SAMPLES / "cda").glob("*.xml")):
        try:
            root = etree.fromstring(path.read_bytes(), parser)
        except etree.XMLSyntaxError:
            continue
        for el in root.iterfind(".//h:recordTarget//h:patient/h:name/*", HL7_NS):
            found.add((el.text or "").strip())
    return {s.casefold() for s in found if s and len(s.strip()) >= 3}


NAMES = patient_data()


def hits(texts: list[str]) -> list[tuple[str, str]]:
    """(patient datum, the start of the text holding it)."""
    out = []
    for text in texts:
        folded = text.casefold()
        out += [(n, text[:200]) for n in NAMES if n in folded]
    return out


def ledger_texts(engine) -> list[str]:  # noqa: ANN001
    texts: list[str] = []
    with engine.connect() as conn:
        for r in conn.execute(select(imports.c.error_message, imports.c.error_location,
                                     imports.c.warnings, imports.c.discard_reason)):
            texts += [r.error_message or "", r.error_location or "", r.discard_reason or "",
                      *(r.warnings or [])]
        texts += [m or "" for m in conn.execute(select(import_attempts.c.error_message))
                  .scalars()]
    return [t for t in texts if t]


def test_the_names_list_is_not_empty() -> None:
    assert {"lefèvre", "hélène", "268036912354128"} <= NAMES and len(NAMES) > 30


@pytest.fixture
def debug_logging(caplog):  # noqa: ANN001, ANN201
    """Everything at DEBUG, as `DMP_LOG_LEVEL=DEBUG` configures it (pipelines/logs.py)."""
    from pipelines.logs import DATA_LOGGERS, cap_library_loggers

    saved = {n: logging.getLogger(n).level for n in DATA_LOGGERS}
    caplog.set_level(logging.DEBUG)
    cap_library_loggers()
    yield caplog
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def test_pipeline_logs_and_ledger_hold_no_patient_data(ctx, debug_logging) -> None:  # noqa: ANN001
    caplog = debug_logging
    load_sample_set(ctx, scanned=True)
    with ctx.engine.connect() as conn:
        statuses = set(conn.execute(select(imports.c.status)).scalars())
        pdfs = conn.execute(select(imports.c.id).where(imports.c.file_name.like("%.pdf"))).all()
    assert len(pdfs) == len([f for f in sample_files(scanned=True) if f.suffix == ".pdf"])
    assert {"deposited", "failed", "quarantined"} <= statuses  # errors were written
    texts = ledger_texts(ctx.engine)
    assert len(texts) > 20
    logs = [r.getMessage() for r in caplog.records]
    assert hits(texts) == []
    assert hits(logs) == []


def test_serve_stderr_at_debug_holds_no_patient_data(tmp_path, sqlite_template) -> None:  # noqa: ANN001
    home, drop = tmp_path / "home", tmp_path / "drop"
    home.mkdir()
    drop.mkdir()
    migrated_sqlite(sqlite_template, home / "dmp.sqlite3")  # the home's store, at head
    (home / "dmp.toml").write_text(
        'worker_id = "privacy"\n[sources.labs]\nsending_application = "*"\n'
        f'[folders.drop]\npath = "{drop}"\nsettle_seconds = 0\npoll_interval = 0.2\n')
    # the session's OCR memo kept (tests/conftest.py): the scans' pages other tests read are
    # not read again by tesseract (whose own output pytesseract captures; for a page read from
    # the memo only pytesseract's DEBUG line of the command, file names and options, is not
    # written)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DMP_") or k == "DMP_OCR_MEMO"}
    env.update(PYTHONPATH=str(ROOT), DMP_HOME=str(home), DMP_MLLP_PORT="0",
               DMP_MAPPINGS_DIR=str(SAMPLES / "mappings"), DMP_LOG_LEVEL="DEBUG")
    cli = [sys.executable, "-m", "cli"]
    subprocess.run([*cli, "dossier", "create", "--from-csv", str(SAMPLES / "patients.csv")],
                   env=env, cwd=ROOT, check=True, capture_output=True, timeout=120)
    log = tmp_path / "serve.log"
    with log.open("wb") as err:
        proc = subprocess.Popen([*cli, "serve", "--no-http"], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        line = proc.stdout.readline()
        assert "MLLP on" in line, log.read_text()[-2000:]
        port = int(line.rsplit(":", 1)[1])
        with Client(port) as client:
            for f in sorted((SAMPLES / "hl7v2").glob("*.hl7")):
                data = f.read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r")
                client.send(data, timeout=60)
        for f in sample_files(scanned=True):
            if f.suffix != ".hl7":
                shutil.copy(f, drop / f".{f.name}")
                (drop / f".{f.name}").rename(drop / f.name)
        _wait_done(drop, home, len([f for f in sample_files(scanned=True)
                                    if f.suffix != ".hl7"]))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    stderr = log.read_text(encoding="utf-8", errors="replace").splitlines()
    assert stderr, "DEBUG logging wrote nothing"
    assert hits(stderr) == []


def _wait_done(drop: Path, home: Path, n_files: int) -> None:
    """Until the dropped files are in done/ and the ledger has nothing pending (limit 120 s
    against a hang; not a timing assertion)."""
    from dossiers.db import make_engine

    engine = make_engine(f"sqlite:///{home / 'dmp.sqlite3'}")
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            done = [p for p in (drop / "done").rglob("*") if p.is_file()] \
                if (drop / "done").exists() else []
            with engine.connect() as conn:
                pending = conn.execute(select(imports.c.id).where(
                    imports.c.status.in_(("received", "processing")))).all()
            if len(done) >= n_files and not pending:
                return
            time.sleep(0.05)
        raise AssertionError("the service did not process the samples in 120 s")
    finally:
        engine.dispose()



def test_library_loggers_that_log_data_stay_at_warning(debug_logging) -> None:  # noqa: ANN001
    """SQLAlchemy logs statement parameters at INFO, pdfminer text tokens at DEBUG."""
    for name in ("sqlalchemy.engine.Engine", "pdfminer.psparser", "botocore.endpoint"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
    assert logging.getLogger("dmp.process").isEnabledFor(logging.DEBUG)


def test_a_listener_bug_is_logged_without_its_text(caplog) -> None:  # noqa: ANN001
    """A bug while storing MLLP frames was logged by log.exception, whose text is the
    exception's message: a database error quotes its statement's parameters (names, NIRs).
    Now its type and where it happened, as pipelines/process.py logs a bug."""
    import asyncio
    import socket

    from connectors.mllp.server import MLLPServer

    text = "INSERT ... parameters: ('Lefèvre', 'Hélène', '268036912354128')"

    def handler(frames):  # noqa: ANN001, ANN202
        raise RuntimeError(text)  # (a traceback shows this line: it holds no data itself)

    async def scenario() -> bytes:
        server = MLLPServer(handler, port=0)
        await server.start()
        try:
            def talk() -> bytes:
                with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
                    s.sendall(b"\x0bMSH|^~\\&|A|B|C|D|20250101||ORU^R01|1|P|2.5\r\x1c\r")
                    return s.recv(100)
            return await asyncio.get_running_loop().run_in_executor(None, talk)
        finally:
            await server.stop(grace=1)

    caplog.set_level(logging.ERROR, logger="dmp.mllp")
    assert asyncio.run(scenario()) == b""  # no ACK rather than a wrong one
    logs = [r.getMessage() + (str(r.exc_info[1]) if r.exc_info else "") for r in caplog.records]
    assert any("RuntimeError" in t and "server.py" in t for t in logs)
    assert hits(logs) == [] and not any("parameters" in t for t in logs)
