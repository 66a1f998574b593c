"""Hostile inputs through the real pipeline, beyond what the parser and connector tests cover
(XXE, billion laughs, external DTD, deep nesting: test_cda_parser.py; PDF page and flate
bombs: test_pdf_parser.py; odd S3 keys: test_s3_connector.py; control characters in file
names: test_folder_connector.py; a sender claiming another's MSH-3/4:
test_mllp_service.py): SQL metacharacters in every field, NUL bytes, invalid UTF-8 under a
UTF-8 label, names that look like path traversal in a drop folder, zip and gzip bombs (on
SQLite and PostgreSQL), and a 1 GiB MLLP frame to the real listener."""

from __future__ import annotations

import functools
import gzip
import io
import os
import resource
import struct
import threading
import zipfile
import zlib
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, inspect, select

from connectors.folder import FolderPoller
from dossiers.schema import entries, imports, patients
from parsers.hl7v2 import HL7ParseError, parse_message
from pipelines.check import check
from pipelines.intake import Received, intake
from pipelines.ledger import FAILED, Outcome, claim_batch, record_outcomes
from pipelines.process import drain
from pipelines.settings import FolderSource, Source
from tests.conftest import SAMPLES, migrated_sqlite
from tests.mllp_support import (
    VT,
    Client,
    msa,
    read_frame,
    running_service,
    segment,
    wait_processed,
)
from tests.reliability_support import create_sample_dossiers
from tests.test_mllp_service import make_ctx, original_mode, sample

SQL = "x'); DROP TABLE entries; -- \" OR 1=1 /* %_ */ ; SELECT pg_sleep(30);"
# Where the payload goes: (segment, field) of the message below, MSH numbered from MSH-1.
FIELDS = [("MSH", n) for n in (3, 4, 5, 6, 10, 11, 12)] + \
    [("PID", n) for n in (2, 4, 6, 8, 11, 13, 18, 32)] + \
    [("OBR", n) for n in (2, 3, 4, 16, 25)] + \
    [("OBX", n) for n in (3, 4, 5, 6, 7, 8, 11, 14, 15, 16)]


def oru(control: str, obx5: str = "Hémolysé", *, charset: str = "UNICODE UTF-8") -> list[list]:
    """An ORU^R01 for patient K1 of samples/patients.csv, as fields (MSH-n at index n)."""
    return [
        ["MSH", "|", "^~\\&", "LABM", "CERBA", "DMP", "DMP", "20250114114200+0100", "",
         "ORU^R01^ORU_R01", control, "P", "2.5", "", "", "", "", "FRA", charset],
        ["PID", "1", "", "268036912354128^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS",
         "", "Béranger^Hélène^^^^^L~Lefèvre^Hélène^^^^^D", "", "19680314", "F",
         *[""] * 23, "VALI"],
        ["OBR", "1", "P-1", f"F-{control}", "58410-2^NFS^LN", "", "", "202501131047+0100"],
        ["OBX", "1", "ST", "8251-1^Commentaire^LN", "", obx5, "", "", "", "", "", "F", "", "",
         "202501131047+0100"],
    ]


def render(segments: list[list], encoding: str = "utf-8") -> bytes:
    lines = []
    for seg in segments:
        fields = [seg[0], *seg[2:]] if seg[0] == "MSH" else seg
        lines.append("|".join(fields))
    return ("\r".join(lines) + "\r").encode(encoding)


def put(segments: list[list], name: str, field: int, value: str) -> None:
    seg = next(s for s in segments if s[0] == name)
    seg.extend([""] * (field + 1 - len(seg)))
    seg[field] = value


def ingest(ctx, *blobs: bytes) -> list:  # noqa: ANN001
    results = intake(ctx.engine, ctx.archive, [Received(data=b, source="hostile",
                                                        channel="file", file_name=f"h{i}")
                                               for i, b in enumerate(blobs)])
    ids = [i for r in results for i in r.message_ids]
    drain(ctx, ids=ids)
    with ctx.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(imports).where(imports.c.id.in_(ids)))}
    return [rows[i] for i in ids]


@pytest.fixture
def store(ctx):  # noqa: ANN001, ANN201
    ctx.settings = replace(ctx.settings, mappings_dir=SAMPLES / "mappings")
    create_sample_dossiers(ctx)
    return ctx


def test_sql_metacharacters_in_every_field(store) -> None:  # noqa: ANN001
    with store.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        n_patients = conn.execute(select(func.count()).select_from(patients)).scalar_one()
    blobs = []
    for n, (name, field) in enumerate(FIELDS):
        msg = oru(f"SQL{n}")
        put(msg, name, field, SQL)
        blobs.append(render(msg))
    rows = ingest(store, *blobs)
    for (name, field), row in zip(FIELDS, rows, strict=True):
        assert row.status in ("deposited", "duplicate", "failed", "quarantined"), (name, field)
        assert row.error_code != "INTERNAL_ERROR", (name, field, row.error_message)
    by_field = dict(zip(FIELDS, rows, strict=True))
    assert by_field[("OBX", 5)].status == "deposited"
    assert by_field[("MSH", 10)].logical_id.endswith("|" + SQL)  # control id round-trips
    with store.engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == tables
        assert conn.execute(select(func.count()).select_from(patients)).scalar_one() \
            == n_patients
        values = set(conn.execute(select(entries.c.value).where(
            entries.c.import_id == by_field[("OBX", 5)].id)).scalars())
        codes = set(conn.execute(select(entries.c.code).where(
            entries.c.import_id == by_field[("OBX", 3)].id)).scalars())
    assert SQL in values
    assert by_field[("OBX", 3)].status != "deposited" or SQL in codes
    assert check(store.engine, store.archive).consistent


def test_nul_bytes_are_refused_with_a_location(store) -> None:  # noqa: ANN001
    raw = oru("NUL1", obx5="avant\x00après")
    hexed = oru("NUL2", obx5="avant\\X00\\après")  # an escape that would decode to NUL
    in_msh = oru("NUL\x003")
    rows = ingest(store, render(raw), render(hexed), render(in_msh))
    assert [(r.status, r.error_code, r.error_location) for r in rows] == [
        (FAILED, "HL7_NUL_CHARACTER", "OBX[4]-5"), ("deposited", None, None),
        (FAILED, "HL7_NUL_CHARACTER", "MSH[1]-10")]
    with store.engine.connect() as conn:
        values = conn.execute(select(entries.c.value).where(
            entries.c.import_id == rows[1].id)).scalars().all()
    assert "avant\\X00\\après" in values  # kept as sent, never a NUL in the store
    # the field, not 'segment 4 holds a NUL character'; never the value
    assert rows[0].error_message.startswith("OBX[4]-5 holds a NUL character (byte 0x00)")
    assert "avant" not in rows[0].error_message
    with pytest.raises(HL7ParseError) as err:
        parse_message(render(raw))
    assert "après" not in str(err.value)


def test_a_nul_in_an_outcome_text_does_not_sink_the_batch(store) -> None:  # noqa: ANN001
    """PostgreSQL refuses NUL in text: one outcome quoting one must not fail the update of
    the whole batch (which would then be replayed forever)."""
    ids = [i for r in intake(store.engine, store.archive, [
        Received(data=render(oru(f"B{n}")), source="hostile", channel="file")
        for n in range(3)]) for i in r.message_ids]
    claimed = claim_batch(store.engine, limit=10, worker="t", ids=ids)
    started = datetime.now(UTC)
    with store.engine.begin() as conn:
        record_outcomes(conn, [(i, Outcome(FAILED, stage="parse", error_code="X",
                                           error_message="read \x00 here",
                                           warnings=["w\x00"]), started) for i in claimed],
                        code_version="t", trigger="t")
    with store.engine.connect() as conn:
        messages = set(conn.execute(select(imports.c.error_message)
                                    .where(imports.c.id.in_(ids))).scalars())
    assert messages == {"read \\x00 here"}


def test_invalid_utf8_under_a_utf8_label(store) -> None:  # noqa: ANN001
    msg = render(oru("BADUTF8", obx5="Hémolysé")).replace("é".encode(), b"\xe9\xff")
    (row,) = ingest(store, msg)
    assert (row.status, row.error_code) == (FAILED, "HL7_BAD_CHARSET")
    assert "Hélène" not in (row.error_message or "") and "Béranger" not in row.error_message


TRAVERSAL_NAMES = ["..\\..\\evil.hl7", "..%2f..%2fevil.hl7", "sub/..evil.hl7", "done/x.hl7",
                   "sub/done/y.hl7", "failed", "..hl7.", "-rf", "$(touch pwned).hl7",
                   "`id`.hl7", "a\x7fb.hl7"]


def test_path_traversal_like_names_stay_inside_the_drop_folder(store, tmp_path) -> None:  # noqa: ANN001
    parent = tmp_path / "outside"
    drop = parent / "drop"
    drop.mkdir(parents=True)
    for n, name in enumerate(TRAVERSAL_NAMES):
        path = drop / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(render(oru(f"T{n}")))
    source = FolderSource(id="drop", path=drop, settle_seconds=0)
    with FolderPoller(source, store.engine, store.archive) as poller:
        result = poller.poll()
    assert result.error is None
    assert sorted(os.listdir(parent)) == ["drop"]  # nothing written beside the folder
    assert not (tmp_path / "pwned").exists() and not os.path.exists("pwned")
    with store.engine.connect() as conn:
        names = set(conn.execute(select(imports.c.file_name)
                                 .where(imports.c.source == "drop")).scalars())
    # a top-level folder 'done' or 'failed' is the poller's own, hidden names ('.x') are
    # skipped: those stay where they are; a top-level *file* named 'failed' (a sender's batch
    # marker) is taken like any other (connectors round 4: skipped, no failed/ could be made)
    taken = {n for n in TRAVERSAL_NAMES
             if not ("/" in n and n.split("/")[0] in ("done", "failed"))
             and not any(part.startswith(".") for part in n.split("/"))}
    assert names == taken
    for name in taken:
        assert (drop / "done" / name).is_file(), name


def test_values_longer_than_their_column_are_refused_with_a_code(store) -> None:  # noqa: ANN001
    """Found by fuzzing on PostgreSQL: a 61-character unit failed the write (INTERNAL_ERROR),
    an over-long control id the whole batch's outcome update."""
    long_unit = oru("LONG1")
    put(long_unit, "OBX", 6, "u" * 61)
    long_id = oru("L" * 420)
    rows = ingest(store, render(long_unit), render(long_id), render(oru("FINE")))
    assert [(r.status, r.error_code) for r in rows] == [
        (FAILED, "FIELD_TOO_LONG"), (FAILED, "FIELD_TOO_LONG"), ("deposited", None)]
    assert rows[0].error_location == "OBX[4]" and "uuu" not in rows[0].error_message
    assert len(rows[1].logical_id) == 400
    long_local = oru("LONG3")
    put(long_local, "PID", 3, "268036912354128^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS"
        "~" + "9" * 101 + "^^^LAB&1.2.3&ISO^PI")  # learnt for K1: patient_identifiers.value
    (row,) = ingest(store, render(long_local))
    assert (row.status, row.error_code, row.error_location) == (FAILED, "FIELD_TOO_LONG", "PID")
    assert "999" not in row.error_message


def test_size_limits_match_the_schema() -> None:
    from dossiers.schema import logical_messages, provenance
    from normalizers.model import ENTRY_MAX, LOGICAL_ID_MAX

    for name, limit in ENTRY_MAX.items():
        column = provenance.c[name] if name == "source_ref" else entries.c[name]
        assert column.type.length == limit, name
    assert logical_messages.c.logical_id.type.length == LOGICAL_ID_MAX
    assert imports.c.logical_id.type.length == LOGICAL_ID_MAX


def test_a_one_gibibyte_frame_is_refused_in_bounded_memory(tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """1 GiB in one MLLP frame to the real listener at its default limit (10 MiB): streamed
    through, never held (the service's memory grows by far less than the frame), answered
    AR MLLP_FRAME_TOO_LARGE, recorded as a failed import (its head archived); meanwhile
    another connection is served, and the same connection goes on afterwards."""
    gib, chunk = 1 << 30, b"x" * (1 << 20)
    head = original_mode(sample("01_labm_nfs.hl7")) + b"NTE|1||"
    ctx = make_ctx(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3"))
    assert ctx.settings.listener.max_frame_bytes == 10 * 1024 * 1024  # the default
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB; the listener is here
    try:
        with running_service(ctx) as svc, Client(svc.port) as big:
            def stream() -> None:
                big.sock.sendall(VT + head)
                for _ in range((gib - len(head)) // len(chunk)):
                    big.sock.sendall(chunk)
                big.sock.sendall(b"x" * ((gib - len(head)) % len(chunk)) + b"\x1c\r")

            sender = threading.Thread(target=stream, daemon=True)
            sender.start()
            with Client(svc.port) as other:  # served while the gigabyte comes in
                assert msa(other.send(original_mode(sample("03_synlab_iono_creatinine.hl7")),
                                      timeout=60))[1] == "AA"
            sender.join(600)
            assert not sender.is_alive(), "the listener stopped reading"
            ack = read_frame(big.sock, big.buffer, timeout=120)
            assert ack is not None and msa(ack)[1] == "AR"
            assert "MLLP_FRAME_TOO_LARGE" in segment(ack, "ERR")[8]
            assert msa(big.send(original_mode(sample("05_chu_hba1c.hl7")), timeout=60))[1] \
                == "AA"
            wait_processed(ctx, timeout=120)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak
        assert grown < 256 * 1024, f"peak memory grew by {grown} KiB"
        with ctx.engine.connect() as conn:
            refused = conn.execute(select(imports).where(
                imports.c.error_code == "MLLP_FRAME_TOO_LARGE")).one()
        # the ledger row is the archived head's (sha256, size); the message tells the size
        assert refused.status == FAILED and refused.size < (1 << 20)
        assert f"frame of {gib} bytes" in refused.error_message
        assert check(ctx.engine, ctx.archive).consistent
    finally:
        ctx.engine.dispose()


def _zip_bomb(inflated: int) -> bytes:
    """A zip archive of one member of ``inflated`` zero bytes (about 1/1000 of it).

    Written by hand (one local header, the deflated member, its central directory entry, the
    end record), as zipfile writes it, but the member's deflate data is one megabyte of
    zeros compressed once and repeated: after a full flush the compressor starts afresh, so
    every megabyte compresses to the same bytes (compressing the gigabyte took 7 s)."""
    zeros = b"\0" * (1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    megabyte = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    data = megabyte * (inflated >> 20) + packer.flush()
    crc = 0
    for _ in range(inflated >> 20):
        crc = zlib.crc32(zeros, crc)
    name = b"rapport.hl7"
    # version 2.0, no flags, deflated, 1980-01-01 00:00, CRC-32, sizes, name and extra lengths
    fields = struct.pack("<HHHHHIII", 20, 0, 8, 0, 0x21, crc, len(data), inflated)
    local = b"PK\x03\x04" + fields + struct.pack("<HH", len(name), 0) + name
    central = (b"PK\x01\x02" + struct.pack("<H", 20) + fields
               + struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0, 0) + name)
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, len(central),
                                         len(local) + len(data), 0)
    return local + data + central + end


@functools.cache
def _bombs() -> tuple[bytes, bytes]:
    """The zip and gzip bombs, built once for the module: compressing the gigabyte took 7 s,
    paid again by each store's run of the test below for the same bytes (deterministic:
    a zip member's default date is 1980-01-01)."""
    return _zip_bomb(1 << 30), gzip.compress(b"\0" * (64 << 20), compresslevel=9)


def test_zip_and_gzip_bombs_are_refused_without_inflating(store) -> None:  # noqa: ANN001
    """Nothing in the pipeline inflates an archive: a zip or gzip bomb (1 GiB of zeros) is an
    input of unknown format, failed with its code in the ledger, read by its first bytes
    only. (PDF bombs: tests/test_pdf_parser.py; a CDA's compressed nonXMLBody is kept as
    sent, and NonXmlBody.decompressed is bounded: tests/test_cda_parser.py.)"""
    zipped, gzipped = _bombs()
    assert len(zipped) < 2 * 1024 * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = ingest(store, zipped, gzipped)
    assert [(r.status, r.error_code) for r in rows] == [(FAILED, "UNKNOWN_FORMAT")] * 2
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 128 * 1024
    assert check(store.engine, store.archive).consistent


def test_a_message_claiming_another_sender_cannot_supersede_its_results(store) -> None:  # noqa: ANN001
    """A laboratory's drop folder holds a message claiming SYNLAB's MSH-3/MSH-4 and one of its
    control ids, with other values. Its folder is declared as LABM's: the message is refused
    (SENDER_NOT_SOURCE) and SYNLAB's results stay current; from SYNLAB's own source the same
    correction is filed. (Over MLLP: test_mllp_service.py, unknown sender and wrong peer.)"""
    import re

    store.settings = replace(store.settings, sources=(Source("labm", "LABM", "*"),
                                                      Source("synlab", "SYNLAB", "*")))
    real = (SAMPLES / "hl7v2" / "03_synlab_iono_creatinine.hl7").read_bytes()
    forged = re.sub(rb"(OBX\|\d+\|NM\|[^|]*\|[^|]*\|)([^|]*)", rb"\g<1>999", real)
    assert forged != real

    def received(data: bytes, source: str) -> list:
        results = intake(store.engine, store.archive,
                         [Received(data=data, source=source, channel="file", file_name="x")])
        ids = [i for r in results for i in r.message_ids]
        drain(store, ids=ids)
        with store.engine.connect() as conn:
            return conn.execute(select(imports).where(imports.c.id.in_(ids))).all()

    (genuine,) = received(real, "synlab")
    (spoof,) = received(forged, "labm")
    assert genuine.status == "deposited"
    assert (spoof.status, spoof.error_code, spoof.error_location) == (
        FAILED, "SENDER_NOT_SOURCE", "MSH")
    with store.engine.connect() as conn:
        current = set(conn.execute(select(entries.c.value).where(
            entries.c.current, entries.c.import_id == genuine.id)).scalars())
        forged_entries = conn.execute(select(func.count()).select_from(entries).where(
            entries.c.import_id == spoof.id)).scalar_one()
    assert "999" not in current and len(current) > 1 and forged_entries == 0
    # SYNLAB itself may send the correction
    (own,) = received(forged, "synlab")
    assert own.status == "deposited"
    assert check(store.engine, store.archive).consistent


def test_inputs_of_no_known_format_say_what_they_look_like(store) -> None:  # noqa: ANN001
    """Before, all were 'content is neither HL7v2 (MSH/FHS/BHS), CDA (ClinicalDocument) nor
    PDF': a sender could not tell an empty file from a proxy's error page or a CDA that lost
    its namespace. Now each says what it looks like, never quoting its content."""
    from tests.test_privacy import hits

    cda = (SAMPLES / "cda" / "01_crbio_labm_lipides_glycemie.xml").read_bytes()
    no_namespace = cda.replace(b' xmlns="urn:hl7-org:v3"', b"", 1)
    assert b"urn:hl7-org:v3" not in no_namespace
    html = b"<!DOCTYPE html>\n<html><body><h1>502 Bad Gateway</h1></body></html>"
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("a.hl7", "MSH|^~\\&|")
    rows = ingest(store, b"", html, no_namespace, b"<Bundle xmlns='http://hl7.org/fhir'/>",
                  zipped.getvalue(), "Jérôme Le Goff né le 02/11/1955".encode())
    assert [(r.status, r.error_code, r.error_location) for r in rows] == [
        (FAILED, "UNKNOWN_FORMAT", None), (FAILED, "UNKNOWN_FORMAT", None),
        (FAILED, "CDA_NOT_CDA", "/ClinicalDocument"), (FAILED, "CDA_NOT_CDA", "/Bundle"),
        (FAILED, "UNKNOWN_FORMAT", None), (FAILED, "UNKNOWN_FORMAT", None)]
    texts = [r.error_message for r in rows]
    assert texts[0] == "the input is empty (0 bytes)"
    assert texts[1].startswith("an HTML page")
    assert texts[2].startswith("ClinicalDocument in no namespace, expected 'urn:hl7-org:v3'")
    assert texts[3] == "XML whose root element is 'Bundle', not a CDA ClinicalDocument"
    assert texts[4].startswith("a ZIP archive")
    assert texts[5].startswith("text that is neither HL7v2")
    assert hits(texts) == [] and not any("1955" in t for t in texts)


def test_identity_quarantines_say_where_the_patient_is_named(store) -> None:  # noqa: ANN001
    """Before, an import quarantined for its patient had no location (only a message of
    several patients named its PID)."""
    from tests.test_privacy import hits

    rows = ingest(store, (SAMPLES / "hl7v2" / "11_labm_patient_inconnu.hl7").read_bytes(),
                  (SAMPLES / "cda" / "12_crbio_patient_inconnu.xml").read_bytes())
    assert [(r.status, r.stage, r.error_code, r.error_location) for r in rows] == [
        ("quarantined", "identity", "IDENTITY_UNKNOWN_PATIENT", "PID"),
        ("quarantined", "identity", "IDENTITY_UNKNOWN_PATIENT",
         "/ClinicalDocument/recordTarget/patientRole")]
    assert hits([r.error_message for r in rows]) == []
