"""Documents carried in HL7v2, round 2: senders we have not seen (MDM triggers and TXA,
the ED and its escapes, the MetaDMPMSS flags, versions across messages and dossiers).

Why: each test pins what a real sender sends and what we must file for it; the ones marked
'was' failed before the fix of the same commit."""

from __future__ import annotations

import pytest

from normalizers.model import DOCUMENT, NormalizationError
from tests.test_documents_normalizer import NIR, b64, cda, mdm, norm, oru
from tests.test_documents_senders import _filed, _ingest, _mdm

DOC = b64(cda("DOC-1"))
DESTDMP = "OBX|{n}|CE|DESTDMP^Destinataire DMP^MetaDMPMSS||{v}^^HL70136||||||F"


def _flag(text: str, n: int, value: str) -> str:
    """``text`` with its DESTDMP flag (OBX ``n``) set to ``value``."""
    return text.replace(DESTDMP.format(n=n, v="Y"), DESTDMP.format(n=n, v=value))


# -- DESTDMP=N: the message is for MSSanté mailboxes, not for the dossier ------------------------
def test_a_document_not_addressed_to_the_dmp_is_refused_at_its_flag():
    """Was: filed in the dossier (DESTDMP kept as a masking flag nothing reads), shown to
    professionals and to the patient though the sender sent it to MSSanté recipients only."""
    text = oru("NW", "F", DOC)
    assert DESTDMP.format(n=4, v="Y") in text
    with pytest.raises(NormalizationError) as exc:
        norm(_flag(text, 4, "N"))
    assert (exc.value.code, exc.value.location) == ("CISIS_NOT_FOR_DMP", "OBX[10]-5")
    assert NIR not in str(exc.value)
    # the same for an MDM (CWE flags), and for a Y then an N (the N is kept: nowhere)
    m = mdm("T02", "F", DOC).replace("|CWE|DESTDMP^Destinataire DMP^MetaDMPMSS||Y",
                                     "|CWE|DESTDMP^Destinataire DMP^MetaDMPMSS||N")
    with pytest.raises(NormalizationError) as exc:
        norm(m)
    assert exc.value.code == "CISIS_NOT_FOR_DMP"
    twice = text.replace(DESTDMP.format(n=4, v="Y"),
                         DESTDMP.format(n=4, v="Y") + "\r" + DESTDMP.format(n=5, v="N"))
    with pytest.raises(NormalizationError) as exc:
        norm(twice)
    assert exc.value.location == "OBX[11]-5"
    # DESTDMP=Y, or no DESTDMP at all (the v1.x guides), files as before
    assert [e.type for e in norm(text).entries] == [DOCUMENT]
    bare = text.replace(DESTDMP.format(n=4, v="Y") + "\r", "")
    assert [e.type for e in norm(bare).entries] == [DOCUMENT]


def test_a_message_not_for_the_dmp_fails_on_the_ledger_and_files_nothing(sqlite_ctx):
    from dataclasses import replace
    sqlite_ctx.settings = replace(sqlite_ctx.settings, auto_create=True)
    row, = _ingest(sqlite_ctx, _flag(oru("NW", "F", DOC), 4, "N"))
    assert (row.status, row.error_code, row.error_location) == (
        "failed", "CISIS_NOT_FOR_DMP", "OBX[10]-5")
    assert _filed(sqlite_ctx) == []


# -- versions across messages and dossiers (checked right, pinned) ------------------------------
def _auto(ctx):  # noqa: ANN001, ANN202
    from dataclasses import replace
    ctx.settings = replace(ctx.settings, auto_create=True)
    return ctx


def _other_patient(text: str) -> str:
    """``text`` sent for another patient (another valid test INS): the PID replaced."""
    base = "1600175056123"
    nir = base + f"{97 - int(base) % 97:02d}"
    pid = (f"PID|||{nir}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS^^20101207||"
           "MARTIN^Loïc^^^^^L||19600101|M" + "|" * 24 + "VALI")
    return "\r".join(pid if ln.startswith("PID|") else ln for ln in text.split("\r"))


def test_a_cancel_sent_for_another_patient_never_withdraws_the_document(sqlite_ctx):
    """A T11 whose PID is patient B names a report filed in patient A's dossier: A's report
    stays current. The cancel is quarantined (CORRECTION_OTHER_DOSSIER, at its TXA, naming
    the import of the original) for an operator to decide: filed as a tombstone in B's
    dossier (identity round 4 changed this), it was applied nowhere, said by a warning
    only, and the report B's cancel was about stayed shown in A's dossier."""
    ctx = _auto(sqlite_ctx)
    first = _mdm("T02", txa12="CR-777^RIS-Y")
    cancel = _other_patient(_mdm("T11", txa12="CR-777^RIS-Y", content=None))
    rows = _ingest(ctx, first, cancel)
    assert [r.status for r in rows] == ["deposited", "quarantined"]
    assert (rows[1].error_code, rows[1].error_location[:4]) == ("CORRECTION_OTHER_DOSSIER",
                                                                "TXA[")
    assert f"import {rows[0].id} filed in dossier {rows[0].patient_id}" in rows[1].error_message
    filed = [(e.patient_id, e.key, e.status, e.current) for e in _filed(ctx)]
    assert filed == [(rows[0].patient_id, "document|CR-777|RIS-Y@IMAGERIE-EST", "final", True)]


def test_a_replacement_before_its_original_leaves_the_original_as_history(sqlite_ctx):
    """T10 (v2, RPLC v1) first, T02 (v1) after: v2 stays the current version; v1 is history
    (it was never current beside v2)."""
    ctx = _auto(sqlite_ctx)
    v1 = mdm("T02", "F", b64(cda("DOC-9")))
    v2 = mdm("T10", "C", b64(cda("DOC-10", parent="DOC-9")),
             txa13="DOC-9^Organisation-Y^1.2.250.1.999.1.7").replace(
        "|DOC-9^Organisation-Y^1.2.250.1.999.1.7|DOC-9",
        "|DOC-10^Organisation-Y^1.2.250.1.999.1.7|DOC-9").replace("|MSG-43|", "|MSG-44|")
    rows = _ingest(ctx, v2, v1)
    assert [r.status for r in rows] == ["deposited", "deposited"]
    docs = [(e.key.rpartition("^")[2], e.status, e.current) for e in _filed(ctx)
            if e.type == DOCUMENT]
    assert docs == [("DOC-10", "corrected", True), ("DOC-9", "final", False)]
    assert any(w.startswith("OBX[6]: replaces a document the dossier does not hold")
               for w in rows[0].warnings)
    assert not any("correction(s)" in w for w in rows[0].warnings)
    assert any("filed as history" in w for w in rows[1].warnings)


# -- line breaks escaped inside the ED data (checked right, pinned) -----------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

BREAKS = ("\\.br\\", "\\X0D\\", "\\X0D0A\\", "\\X0A\\", "\\X0d0a\\")


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.tuples(st.integers(min_value=0, max_value=10_000),
                               st.sampled_from(BREAKS)), max_size=12),
       padded=st.booleans(), encoding=st.sampled_from(["Base64", "BASE64", "Hex"]))
def test_line_breaks_escaped_anywhere_in_the_data_are_no_part_of_it(cuts, padded, encoding):
    """A sender's engine breaks the encoded data into lines (\\.br\\, a CR or CRLF written as
    \\X0D\\ / \\X0D0A\\), with or without base64 '=' padding: the bytes read are the CDA's."""
    data = cda("DOC-Hélène")
    encoded = data.hex().upper() if encoding == "Hex" else b64(data)
    if not padded:
        encoded = encoded.rstrip("=")
    for at, brk in sorted(((at % (len(encoded) + 1), brk) for at, brk in cuts), reverse=True):
        encoded = encoded[:at] + brk + encoded[at:]  # from the end: no break inside another
    text = oru("NW", "F", "X").replace("^TEXT^XML^Base64^X", f"^TEXT^XML^{encoding}^{encoded}")
    docs = [e for e in norm(text).entries if e.type == DOCUMENT]
    assert len(docs) == 1 and docs[0].attachment.data == data
    assert docs[0].key == "document|1.2.250.1.999.1.7^DOC-Hélène"


# -- a level-1 CDA (a PDF inside) carried in HL7v2 -----------------------------------------------
def _level1(ext: str) -> bytes:
    """A level-1 CR-BIO: the text PDF of the samples in its nonXMLBody (no OCR)."""
    from tests.test_documents_senders import PDF_REPORT
    return cda(ext).replace(b'mediaType="text/plain"', b'mediaType="application/pdf"').replace(
        cda("X").split(b'representation="B64">')[1].split(b"\n")[0],
        b64(PDF_REPORT.read_bytes()).encode())


def test_a_level_1_cda_carried_in_an_oru_files_the_report_of_its_pdf_masked_with_it():
    """Was: the document alone; the same CDA received as a file files the report its PDF
    holds. Now the same entries by both channels, masked with the document."""
    from normalizers.cda import normalize_cda
    from parsers.cda import parse_cda
    from tests.test_documents_senders import _meta, _oru_with

    data = _level1("DOC-L1")
    assert b"%PDF" not in data and b'mediaType="application/pdf"' in data
    nm = norm(_oru_with(_meta(2, "MASQUE_PS", "Y"), _meta(3, "INVISIBLE_PATIENT", "Y"))
              .replace(DOC, b64(data)))
    doc = next(e for e in nm.entries if e.type == DOCUMENT)
    assert doc.key == "document|1.2.250.1.999.1.7^DOC-L1"
    reports = [e for e in nm.entries if e.type != DOCUMENT]
    assert len(reports) == 1 and reports[0].parent_key == doc.key
    assert reports[0].source_ref.startswith("/ClinicalDocument")
    assert reports[0].masking == doc.masking == {"MASQUE_PS": True, "INVISIBLE_PATIENT": True}
    as_file = normalize_cda(parse_cda(data), data, "labo-y")
    assert sorted(e.key for e in as_file.entries) == sorted(e.key for e in nm.entries)
    assert not any("could not be read" in w for w in nm.warnings)


# -- the same document again by another channel, stating no flags ------------------------------
def test_a_hidden_report_received_again_as_a_file_stays_hidden(sqlite_ctx):
    """The lab's CR-BIO carried in an ORU with INVISIBLE_PATIENT=Y (waiting for the
    announcement consultation), then the same CDA dropped as a file (no MetaDMPMSS there).
    Was: a new version of the document and of every result, without the flag: shown to the
    patient. Now a duplicate: the flags held stay, nothing filed twice."""
    from tests.conftest import SAMPLES
    from tests.test_documents_senders import _meta

    ctx = _auto(sqlite_ctx)
    report = (SAMPLES / "cda" / "01_crbio_labm_lipides_glycemie.xml").read_bytes()
    text = (SAMPLES / "hl7v2" / "02_labm_lipides_glycemie.hl7").read_bytes().decode()
    msh, pid = [ln for ln in text.replace("\r\n", "\r").replace("\n", "\r").split("\r")][:2]
    oru_text = "\r".join([
        msh + "|||2.1^CISIS_CDA_HL7_V2" if msh.count("|") == 17 else msh, pid, "PV1|1|O",
        "ORC|NW|8127079^LABM-PRE|RB2502040000002^LABM",
        "OBR|1|8127079^LABM-PRE|RB2502040000002^LABM|11502-2^CR d'examens biologiques^LN"
        "|||202502031007+0100" + "|" * 18 + "F",
        f"OBX|1|ED|11502-2^CR d'examens biologiques^LN||^TEXT^XML^Base64^{b64(report)}||||||F",
        _meta(2, "INVISIBLE_PATIENT", "Y"), _meta(3, "DESTDMP", "Y")]) + "\r"
    from pipelines.intake import Received, intake
    from pipelines.process import drain

    first, = _ingest(ctx, oru_text)
    assert first.status == "deposited"
    before = {(e.key, e.version) for e in _filed(ctx)}
    ids = intake(ctx.engine, ctx.archive, [Received(report, "labo-y", "file",
                                                    file_name="crbio.xml")])[0].message_ids
    drain(ctx)
    from sqlalchemy import select

    from dossiers.schema import imports
    with ctx.engine.connect() as conn:
        again = conn.execute(select(imports).where(imports.c.id == ids[0])).one()
    assert again.status == "duplicate"
    filed = _filed(ctx)
    assert {(e.key, e.version) for e in filed} == before  # no new version of anything
    doc = next(e for e in filed if e.type == DOCUMENT)
    assert doc.current and doc.masking["INVISIBLE_PATIENT"] is True
