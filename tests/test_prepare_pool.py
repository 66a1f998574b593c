"""The preparing pool (pipelines/prepare_pool.py) gives what preparing in this process gives,
and survives the death of its processes.

The bundled samples (HL7v2, CDA, PDF with a text layer, and bad inputs) are taken in together
so that one batch holds every format; their preparation in the pool is compared, message by
message, with their preparation inline: normalized content, entries, fingerprints, keys,
facts, warnings, and the outcomes decided before filing.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import signal
import threading
from pathlib import Path

import pytest

from pipelines import prepare_pool
from pipelines.intake import Received, intake
from pipelines.prepare_pool import start_preparing
from pipelines.process import Context, read_claimed
from pipelines.settings import load_settings
from tests.conftest import SAMPLES, migrated_sqlite

BAD = [b"MSH|^~\\&|LAB|FAC|DMP|DMP|20250101||ORU^R01|X1|P|2.5\rPID|||\rOBX|1|NM|",
       b"not a message at all", b"<?xml version='1.0'?><ClinicalDocument/>"]


# One scan is enough to cross the OCR pool; each more costs seconds of tesseract, twice.
SCANS_KEPT = {"04_radio_poignet_gauche_K4_scan.pdf"}


def _inputs() -> list[Received]:
    files = sorted(p for d in ("hl7v2", "cda", "pdf") for p in (SAMPLES / d).glob("*")
                   if p.is_file() and p.suffix in (".hl7", ".xml", ".pdf")
                   and (not _scanned(p) or p.name in SCANS_KEPT))
    received = [Received(p.read_bytes(), "samples", "file", file_name=p.name) for p in files]
    received += [Received(b, "samples", "file", file_name=f"bad{i}") for i, b in enumerate(BAD)]
    received.append(Received(_mdm_with_scan(), "samples", "file", file_name="mdm-scan.hl7"))
    assert len(received) >= prepare_pool.MIN_ROWS
    return received


def _scanned(path: Path) -> bool:
    return any(word in path.stem for word in ("scan", "mixte"))


def _mdm_with_scan() -> bytes:
    """An MDM carrying a scanned PDF: read by OCR while the message is normalized, in the
    preparing process (with an OCR pool of its own, it could not exit)."""
    from tests.test_documents_normalizer import mdm

    pdf = (SAMPLES / "pdf" / "02_tdm_thorax_K2_scan.pdf").read_bytes()
    text = mdm("T02", "F", base64.b64encode(pdf).decode()).replace(
        "^text^XML^Base64^", "^AP^PDF^Base64^")
    return text.encode()


@pytest.fixture
def rows_ctx(tmp_path: Path, sqlite_template: Path):  # noqa: ANN201
    migrated_sqlite(sqlite_template, tmp_path / "home" / "dmp.sqlite3")  # the home's store
    settings = load_settings(env={"DMP_HOME": str(tmp_path / "home")})
    ctx = Context.from_settings(dataclasses.replace(settings, prepare_processes=2))
    results = intake(ctx.engine, ctx.archive, _inputs())
    ids = [i for r in results for i in r.message_ids]
    yield ctx, read_claimed(ctx, ids)
    ctx.engine.dispose()


def _comparable(prepared, decided) -> tuple:  # noqa: ANN001
    items = [(p.row.id, p.normalized, p.items, p.fingerprint, p.warnings, p.keys, p.facts,
              p.item_facts) for p in prepared]
    outcomes = sorted((i, o) for i, (o, _) in decided.items())
    return items, outcomes


def _inline(ctx: Context, rows: list) -> tuple:
    off = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings,
                                                                prepare_processes=0))
    preparing = start_preparing(off, rows)
    assert not preparing.parallel
    return _comparable(*preparing.result())


def test_the_pool_prepares_every_format_as_this_process_does(rows_ctx) -> None:  # noqa: ANN001
    ctx, rows = rows_ctx
    assert {r.format for r in rows} >= {"hl7v2", "cda", "pdf"}
    preparing = start_preparing(ctx, rows)
    assert preparing.parallel
    here = [row for rows, future in preparing.parts if future is None for row in rows]
    assert {r.format for r in here} == {"pdf"}  # OCR has its own pool
    pooled = _comparable(*preparing.result())
    assert [item[0] for item in pooled[0]] == sorted(item[0] for item in pooled[0])
    assert pooled == _inline(ctx, rows)
    assert {o.error_code for _, o in pooled[1]} >= {"UNKNOWN_FORMAT"}


def test_a_killed_preparing_process_costs_nothing(rows_ctx) -> None:  # noqa: ANN001
    ctx, rows = rows_ctx
    # the pool is up (started with the messages that need no OCR: the scans are read below)
    start_preparing(ctx, [r for r in rows if r.format != "pdf"]).result()
    pool = prepare_pool._current[2]
    preparing = start_preparing(ctx, rows)
    for process in list(pool._processes.values()):
        os.kill(process.pid, signal.SIGKILL)
    expected = _inline(ctx, rows)
    assert _comparable(*preparing.result()) == expected
    again = start_preparing(ctx, rows)  # a new pool
    assert again.parallel and prepare_pool._current[2] is not pool
    assert _comparable(*again.result()) == expected


def test_small_batches_and_a_pool_turned_off_stay_in_this_process(rows_ctx) -> None:  # noqa: ANN001
    ctx, rows = rows_ctx
    assert not start_preparing(ctx, rows[:prepare_pool.MIN_ROWS - 1]).parallel
    off = dataclasses.replace(ctx.settings, prepare_processes=0)
    assert prepare_pool.pool_processes(off) == 0
    auto = dataclasses.replace(ctx.settings, prepare_processes=None, workers=1)
    cores = os.cpu_count() or 1
    assert prepare_pool.pool_processes(auto) == (0 if cores == 1 else min(cores, 8))
    shared = dataclasses.replace(auto, workers=cores)  # serve's workers, one per core
    assert prepare_pool.pool_processes(shared) == (0 if cores == 1 else 1)


def test_the_pool_stops_even_after_reading_pdfs_inside_messages(rows_ctx) -> None:  # noqa: ANN001
    """A preparing process reads a PDF carried in an HL7 message itself: an OCR pool inside
    it would keep it from exiting (a multiprocessing child waits for its children)."""
    ctx, rows = rows_ctx
    start_preparing(ctx, rows).result()
    stopping = threading.Thread(target=prepare_pool.shutdown_pool, daemon=True)
    stopping.start()
    stopping.join(60)
    assert not stopping.is_alive(), "the preparing processes did not stop"


def test_a_document_is_not_copied_to_the_filing_process(rows_ctx) -> None:  # noqa: ANN001
    """A CDA or PDF document entry's file is the received input, archived at intake: the
    prepared message carries its hash and media type, not its bytes (they would cross the
    process boundary for nothing), and filing leaves it where intake put it."""
    ctx, rows = rows_ctx
    prepared, _ = start_preparing(ctx, rows).result()
    own = [(p, e, sha) for p in prepared for e, sha in p.items if sha == p.row.sha256]
    assert {p.row.format for p, _, _ in own} >= {"cda", "pdf"}
    for _, entry, sha in own:
        assert entry.attachment.data == b"" and entry.attachment.media_type
        assert ctx.archive.get(sha)  # intake's object: what the dossier's document reads
    embedded = [(e, sha) for p in prepared for e, sha in p.items
                if sha is not None and sha != p.row.sha256]
    assert embedded and all(len(e.attachment.data) > 0 for e, _ in embedded)  # HL7 ED: kept


def test_the_filing_process_prepares_what_the_pool_has_not_started(rows_ctx) -> None:  # noqa: ANN001
    """While the part it needs is still in the pool (a pool starting, or behind), the filing
    process takes the last parts the pool has not started out of its queue and prepares them
    itself, rather than wait idle: each part is prepared once (taken parts are cancelled in
    the queue), the batch comes out in ledger order and as inline preparation gives it, and
    a part prepared ahead this way counts as ready for filing."""
    from concurrent.futures import Future

    from pipelines.process import prepare_rows

    ctx, rows = rows_ctx
    rows = [r for r in rows if r.format != "pdf"]  # no OCR: quick
    runs = [rows[i:i + 8] for i in range(0, len(rows), 8)]
    assert len(runs) >= 4
    futures: list[Future] = [Future() for _ in runs]
    futures[0].set_running_or_notify_cancel()  # the pool is at the first part: not taken
    first = prepare_rows(ctx, runs[0])

    def pool_ends_its_part() -> None:  # once this process has taken the second part
        for _ in range(1000):  # 10 s at most: without taking, the part would wait for ever
            if futures[1].cancelled():
                break
            threading.Event().wait(0.01)
        futures[0].set_result(first)

    threading.Thread(target=pool_ends_its_part, daemon=True).start()
    preparing = prepare_pool.Preparing(ctx, rows, list(zip(runs, futures, strict=True)))
    chunks = preparing.chunks()
    ahead = [_comparable(*next(chunks))]
    assert all(f.cancelled() for f in futures[1:])  # every later part taken, none prepared twice
    assert preparing.ready_ahead()  # the next part is prepared already
    ahead += [_comparable(*chunk) for chunk in chunks]
    prepared = [item for items, _ in ahead for item in items]
    assert [item[0] for item in prepared] == [r.id for r in rows if r.id in
                                              {item[0] for item in prepared}]
    assert (prepared, sorted(o for _, outcomes in ahead for o in outcomes)) == \
        _inline(ctx, rows)
