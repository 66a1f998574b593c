"""Documents carried in HL7v2, round 3: document numbers of several senders in one dossier,
deletions of a version already replaced, MetaDMPMSS flags nobody defined.

Why: each test pins what a real sender sends and what we must file for it; the ones marked
'was' failed before the fix of the same commit."""

from __future__ import annotations

from dataclasses import replace

from normalizers.model import ACTION_DELETE, ACTION_REPLACE, DOCUMENT
from tests.test_documents_normalizer import b64, norm, oru
from tests.test_documents_senders import PDF_REPORT, _filed, _ingest

PDF = b64(PDF_REPORT.read_bytes())


def _ris(trigger: str, obx11: str, number: str, parent: str = "", app: str = "RIS-Y",
         pdf: str = PDF) -> str:
    """A CI-SIS MDM (v2.6) of an imaging centre's RIS or a hospital DPI: a CR-IMG as a PDF,
    TXA-12 its own document number (EI.1 number, EI.2 the assigning application)."""
    pid = oru("NW", "F", "X").split("\r")[1]
    segs = [f"MSH|^~\\&|{app}|IMAGERIE-EST|DMP|GHT|202403151050||MDM^{trigger}^MDM_T02|"
            f"{app}-{trigger}-{number}|P|2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2",
            "EVN||20240315105000", pid, "PV1|1|O",
            f"TXA|1|18748-4^CR d'imagerie médicale^LN|AP|202403151000||||||||{number}^{app}|"
            f"{parent}||||LA||AV",
            f"OBX|1|ED|18748-4^CR d'imagerie médicale^LN||^AP^PDF^Base64^{pdf}||||||{obx11}"]
    return "\r".join(segs) + "\r"


def _auto(ctx):  # noqa: ANN001, ANN202
    ctx.settings = replace(ctx.settings, auto_create=True)
    return ctx


# -- a document number is unique within the application that assigned it ----------------------
def test_the_same_number_from_two_applications_names_two_documents():
    """TXA-12 '100234^RIS-Y' and '100234^DPI-Z': two documents. Was: both keyed
    'document|100234', one the other's new version."""
    ris = next(e for e in norm(_ris("T02", "F", "100234")).entries if e.type == DOCUMENT)
    dpi = next(e for e in norm(_ris("T02", "F", "100234", app="DPI-Z")).entries
               if e.type == DOCUMENT)
    # (a namespace with no OID: scoped by the sending facility, MSH-4, since round 10)
    assert (ris.key, dpi.key) == ("document|100234|RIS-Y@IMAGERIE-EST",
                                  "document|100234|DPI-Z@IMAGERIE-EST")
    # TXA-13 written without its namespace names a document of TXA-12's application
    t10 = next(e for e in norm(_ris("T10", "C", "100235", parent="100234")).entries
               if e.type == DOCUMENT)
    assert (t10.action, t10.replaces_key) == (ACTION_REPLACE,
                                              "document|100234|RIS-Y@IMAGERIE-EST")


def test_a_deletion_from_another_application_never_withdraws_the_document(sqlite_ctx):
    """The imaging centre files CR 100234; a hospital DPI deletes its own document 100234 of
    the same patient (never received here). Was: the imaging report withdrawn."""
    ctx = _auto(sqlite_ctx)
    rows = _ingest(ctx, _ris("T02", "F", "100234"),
                   _ris("T04", "D", "100234", app="DPI-Z", pdf=""))
    assert [r.status for r in rows] == ["deposited", "deposited"]
    filed = {(e.key, e.status, e.current) for e in _filed(ctx) if e.type == DOCUMENT}
    assert filed == {("document|100234|RIS-Y@IMAGERIE-EST", "final", True),
                     ("document|100234|DPI-Z@IMAGERIE-EST", "withdrawn", True)}
    # the centre's own deletion still withdraws it
    gone, = _ingest(ctx, _ris("T04", "D", "100234", pdf=""))
    assert gone.status == "deposited"
    current = {(e.key, e.status) for e in _filed(ctx) if e.type == DOCUMENT and e.current}
    assert ("document|100234|RIS-Y@IMAGERIE-EST", "withdrawn") in current
    deletion = next(e for e in norm(_ris("T04", "D", "100234", pdf="")).entries)
    assert deletion.action == ACTION_DELETE


# -- a trigger and OBX-11 that disagree: AE, ERR-2 naming both fields --------------------------
def test_an_action_mismatch_is_answered_ae_pointing_at_both_fields(tmp_path, sqlite_template):
    """MDM^T10 (replace) whose OBX-11 says F (initial): CI-SIS says reject. The ACK is AE
    103 and ERR-2 repeats, one location per field that disagrees. Was: ERR-2 'MSH^1^9^1'
    alone; the OBX-11 at fault was named only in the text."""
    from datetime import UTC, datetime

    from pipelines.acknowledge import APPLICATION, Frame, acknowledge
    from tests.conftest import migrated_sqlite
    from tests.mllp_support import msa, segment
    from tests.test_mllp_service import make_ctx

    ctx = make_ctx(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3"))
    t10 = _ris("T10", "F", "100235", parent="100234")  # MSH-15/16 empty: original mode
    try:
        (ack,), = acknowledge(ctx, [Frame(t10.encode(), "127.0.0.1", datetime.now(UTC))],
                              mode=APPLICATION)
    finally:
        ctx.engine.dispose()
    assert msa(ack)[1] == "AE"
    err = segment(ack, "ERR")
    assert err[2] == "MSH^1^9^1~OBX^1^11^1"  # its one OBX (was OBX^6, its segment)
    assert err[3].startswith("103^") and err[8].startswith("CISIS_ACTION_MISMATCH")
    assert "100235" not in err[8]


def test_a_deletion_naming_the_cda_id_with_its_root_in_ei_2_finds_the_document():
    """TXA-12 'A71024000081^1.2.250.1.71.4.2.2.120456789' (the OID in the namespace, not in
    EI.3) on a T04 whose OBX carries a placeholder: the document is the CDA of that id,
    filed as 'root^extension' (by an ORU, or a CDA dropped as a file)."""
    from tests.test_documents_normalizer import DOC_ROOT, cda, mdm

    initial = next(e for e in norm(mdm("T02", "F", b64(cda("A71024000081")))).entries)
    placeholder = b64("Document médical au format CDA".encode())
    deletion = next(e for e in norm(mdm("T04", "D", placeholder).replace(
        f"DOC-9^Organisation-Y^{DOC_ROOT}", f"A71024000081^{DOC_ROOT}")).entries)
    assert deletion.action == ACTION_DELETE
    assert deletion.replaces_key == initial.key == f"document|{DOC_ROOT}^A71024000081"


# -- MetaDMPMSS ---------------------------------------------------------------------------------
def test_a_flag_no_guide_defines_is_said_on_the_ledger():
    """'MASQUE_PATIENT' (no such flag: INVISIBLE_PATIENT is meant) under MetaDMPMSS. Was:
    stored silently as a flag nothing reads; the document shown to the patient without a
    word. Flags in any case, missing values and known flags read as before."""
    from tests.test_documents_senders import _meta, _oru_with

    nm = norm(_oru_with(_meta(2, "MASQUE_PATIENT", "Y"), _meta(3, "masque_ps", "y"),
                        _meta(4, "CONNEXION_SECRETE", ""), _meta(5, "DESTDMP", "Y")))
    doc = next(e for e in nm.entries if e.type == DOCUMENT)
    assert doc.masking == {"MASQUE_PATIENT": True, "MASQUE_PS": True, "DESTDMP": True}
    assert any(w.startswith("OBX[8]-5: 'MASQUE_PATIENT' is not a MetaDMPMSS flag")
               for w in nm.warnings)
    assert any(w.startswith("OBX[10]-5: MetaDMPMSS flag CONNEXION_SECRETE is not Y or N")
               for w in nm.warnings)
    assert not any("MASQUE_PS" in w and "not a MetaDMPMSS" in w for w in nm.warnings)


# -- a deletion of a version already replaced ----------------------------------------------------
def test_a_deletion_of_a_replaced_version_says_so_and_leaves_the_current_one(sqlite_ctx):
    """T02 of CR 100234, T10 of 100235 replacing it, then a T04 naming 100234. The current
    version (100235) stays filed; 100234 is recorded withdrawn. Was: the ledger said the
    dossier did not hold 100234 ('deletion(s) of entries the dossier does not hold yet'),
    which it did: an admin had no word that the report the sender deleted is still shown."""
    ctx = _auto(sqlite_ctx)
    rows = _ingest(ctx, _ris("T02", "F", "100234"),
                   _ris("T10", "C", "100235", parent="100234^RIS-Y"),
                   _ris("T04", "D", "100234", pdf=""))
    assert [r.status for r in rows] == ["deposited"] * 3
    current = {(e.key, e.status) for e in _filed(ctx) if e.type == DOCUMENT and e.current}
    assert ("document|100235|RIS-Y@IMAGERIE-EST", "corrected") in current
    assert ("document|100234|RIS-Y@IMAGERIE-EST", "final") not in current
    assert not any("TXA[5]-13" in w for w in rows[1].warnings or [])  # a PDF: no CDA parent
    assert any(w.startswith("OBX[6]: deletes a version of a document that a later version "
                            "has replaced") for w in rows[2].warnings)
    assert not any("does not hold yet" in w for w in rows[2].warnings)


# -- TXA-2, the document type ----------------------------------------------------------------------
def test_a_pdf_with_a_local_obx_3_takes_its_loinc_type_from_txa_2():
    """A DPI's discharge letter as a PDF: OBX-3 'PDF^Document PDF^L', TXA-2 the LOINC type
    (with or without its system, as the CI-SIS examples write '18748-4' alone). Was: filed
    under code 'PDF' (or none), unmapped. A table 0270 TXA-2 ('DS') changes nothing."""
    letter = _ris("T02", "F", "100234").replace(
        "TXA|1|18748-4^CR d'imagerie médicale^LN|", "TXA|1|11490-0^Lettre de liaison à la "
        "sortie d'un établissement de soins^LN|").replace(
        "OBX|1|ED|18748-4^CR d'imagerie médicale^LN|", "OBX|1|ED|PDF^Document PDF^L|")
    doc = next(e for e in norm(letter).entries if e.type == DOCUMENT)
    assert (doc.code, doc.system, doc.mapped) == ("11490-0", "LN", True)
    assert doc.display.startswith("Lettre de liaison")
    assert doc.details["obx_code"]["code"] == "PDF"
    bare = letter.replace("|11490-0^Lettre de liaison à la sortie d'un établissement de "
                          "soins^LN|", "|11490-0|").replace("|PDF^Document PDF^L|", "||")
    doc = next(e for e in norm(bare).entries if e.type == DOCUMENT)
    assert (doc.code, doc.system, doc.mapped) == ("11490-0", "LN", True)
    for txa2 in ("DS^Discharge summary^HL70270", "11490-1"):  # not LOINC; wrong check digit
        other = letter.replace("|11490-0^Lettre de liaison à la sortie d'un établissement de "
                               "soins^LN|", f"|{txa2}|")
        doc = next(e for e in norm(other).entries if e.type == DOCUMENT)
        assert (doc.code, doc.mapped) == ("PDF", False)


def test_a_mail_body_written_one_line_per_repetition_is_kept_whole():
    """CORPSMAIL_PATIENT as TX, a line per OBX-5 repetition, escapes inside. Was: the first
    line alone ('Cordialement' and the signature dropped)."""
    from tests.test_documents_senders import _oru_with

    nm = norm(_oru_with("OBX|2|TX|CORPSMAIL_PATIENT^Corps du mail pour le patient^MetaDMPMSS"
                        "||Bonjour Mme Lefèvre,\\.br\\Voici votre compte rendu \\T\\ vos "
                        "résultats.~~Cordialement,~Dr Thierry Diaz||||||F"))
    doc = next(e for e in nm.entries if e.type == DOCUMENT)
    assert doc.details["CORPSMAIL_PATIENT"] == (
        "Bonjour Mme Lefèvre,\nVoici votre compte rendu & vos résultats.\n\nCordialement,\n"
        "Dr Thierry Diaz")


# -- a replacement stating no flags ---------------------------------------------------------------
def test_a_replacement_without_flags_keeps_the_masking_of_the_version_it_replaces(sqlite_ctx):
    """T02 with MASQUE_PS=Y and INVISIBLE_PATIENT=Y, then its T10 through an engine that drops
    the MetaDMPMSS OBX. Was: the new version filed unmasked (shown to professionals, and to
    the patient before the announcement consultation). A T10 stating MASQUE_PS=N unmasks."""
    from tests.test_documents_senders import _meta

    ctx = _auto(sqlite_ctx)
    masked = _ris("T02", "F", "100234") + _meta(2, "MASQUE_PS", "Y").replace("|CE|", "|CWE|") \
        + "\r" + _meta(3, "INVISIBLE_PATIENT", "Y").replace("|CE|", "|CWE|") + "\r"
    rows = _ingest(ctx, masked, _ris("T10", "C", "100235", parent="100234"))
    assert [r.status for r in rows] == ["deposited", "deposited"]
    doc = next(e for e in _filed(ctx) if e.type == DOCUMENT and e.current)
    assert doc.key == "document|100235|RIS-Y@IMAGERIE-EST"
    assert doc.masking == {"MASQUE_PS": True, "INVISIBLE_PATIENT": True}
    unmask = _ris("T10", "C", "100236", parent="100235") \
        + _meta(2, "MASQUE_PS", "N").replace("|CE|", "|CWE|") + "\r"
    row, = _ingest(ctx, unmask)
    doc = next(e for e in _filed(ctx) if e.type == DOCUMENT and e.current)
    assert (doc.key, doc.masking) == ("document|100236|RIS-Y@IMAGERIE-EST",
                                      {"MASQUE_PS": False})


# -- TXA-12 left empty --------------------------------------------------------------------------
def test_an_empty_txa_12_is_read_from_the_carried_cda_and_refused_without_one():
    """An engine building the MDM from the CDA leaves TXA-12 empty. Was: refused
    (MDM_NO_DOCUMENT_ID) though the CDA's id names the document. Now filed under the CDA id,
    with a warning; a PDF or a cancel without TXA-12 is still refused at TXA-12."""
    import pytest

    from normalizers.model import NormalizationError
    from tests.test_documents_normalizer import DOC_ROOT, cda, mdm

    carried = mdm("T02", "F", b64(cda("DOC-9"))).replace(
        f"|DOC-9^Organisation-Y^{DOC_ROOT}|", "||")
    nm = norm(carried)
    assert [(e.key, e.action) for e in nm.entries] == [(f"document|{DOC_ROOT}^DOC-9", "new")]
    assert any(w.startswith("TXA[5]-12: no unique document number") for w in nm.warnings)
    for text in (_ris("T02", "F", "100234").replace("|100234^RIS-Y|", "||"),
                 _ris("T11", "", "100234").replace("|100234^RIS-Y|", "||").split("OBX|")[0]):
        with pytest.raises(NormalizationError) as exc:
            norm(text)
        assert (exc.value.code, exc.value.location) == ("MDM_NO_DOCUMENT_ID", "TXA[5]-12")


def test_a_document_filed_before_numbers_were_scoped_is_found_by_its_own_source(sqlite_ctx):
    """A dossier holding 'document|100234' (filed before TXA-12 was scoped by its namespace):
    a T10 naming '100234^RIS-Y' from another source does not replace it (another
    application's 100234); the T04 of '100234^RIS-Y' from its own source withdraws it."""
    from sqlalchemy import func, update

    from dossiers.schema import entries
    from pipelines.intake import Received, intake
    from pipelines.process import drain

    ctx = _auto(sqlite_ctx)
    _ingest(ctx, _ris("T02", "F", "100234"))
    with ctx.engine.begin() as conn:  # as the code before scoping filed it
        conn.execute(update(entries).values(
            key=func.replace(entries.c.key, "|RIS-Y@IMAGERIE-EST", "")))
    other = _ris("T10", "C", "100235", parent="100234^RIS-Y")
    intake(ctx.engine, ctx.archive, [Received(other.encode(), "dpi-z", "file",
                                              file_name="other.hl7")])
    drain(ctx)
    current = {(e.key, e.status) for e in _filed(ctx) if e.type == DOCUMENT and e.current}
    assert ("document|100234", "final") in current
    row, = _ingest(ctx, _ris("T04", "D", "100234", pdf=""))
    assert row.status == "deposited"
    current = {(e.key, e.status) for e in _filed(ctx) if e.type == DOCUMENT and e.current}
    assert ("document|100234", "withdrawn") in current
    assert not any("does not hold" in w for w in row.warnings or [])


def test_a_document_filed_before_numbers_were_scoped_sent_again_is_not_filed_twice(sqlite_ctx):
    """A dossier holding 'document|100234' (filed before TXA-12 was scoped): the same T02
    sent again under another MSH-10 (an engine's resend, an old import rerun) is that
    document again. Was: a second current copy under 'document|100234|RIS-Y'. Another
    source's T02 of its own 100234 stays another document."""
    from sqlalchemy import func, update

    from dossiers.schema import entries
    from pipelines.intake import Received, intake
    from pipelines.process import drain

    ctx = _auto(sqlite_ctx)
    _ingest(ctx, _ris("T02", "F", "100234"))
    with ctx.engine.begin() as conn:  # as the code before scoping filed it
        conn.execute(update(entries).values(
            key=func.replace(entries.c.key, "|RIS-Y@IMAGERIE-EST", "")))
    again = _ris("T02", "F", "100234").replace("|RIS-Y-T02-100234|", "|RIS-Y-T02-100234-B|")
    row, = _ingest(ctx, again)
    assert row.status == "duplicate"
    filed = sorted((e.key, e.current) for e in _filed(ctx) if e.type == DOCUMENT)
    assert filed == [("document|100234", True)]
    other = _ris("T02", "F", "100234").replace("|RIS-Y-T02-100234|", "|RIS-Y-T02-100234-C|")
    intake(ctx.engine, ctx.archive, [Received(other.encode(), "dpi-z", "file",
                                              file_name="other.hl7")])
    drain(ctx)
    filed = sorted((e.key, e.current) for e in _filed(ctx) if e.type == DOCUMENT)
    assert filed == [("document|100234", True), ("document|100234|RIS-Y@IMAGERIE-EST", True)]
