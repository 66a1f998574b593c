"""Documents in HL7v2 as senders we have not seen write them: MetaDMPMSS flags in other case
and spelling, an ED split over several OBX, a reference pointer, empty or cancelled
documents, MDM triggers and TXA fields beyond the CI-SIS examples.

Why: each of these was read wrong (a masked document shown, a CDA filed as five broken
fragments, a cancellation dropped as a duplicate), and each is what a real sender sends."""

from __future__ import annotations

from pathlib import Path

import pytest

from normalizers.model import DOCUMENT, NormalizationError
from tests.test_documents_normalizer import b64, cda, mdm, norm, oru

DOC = b64(cda("DOC-1"))


def _meta(n: int, code: str, value: str, system: str = "MetaDMPMSS") -> str:
    return f"OBX|{n}|CE|{code}^Drapeau DMP^{system}||{value}^^HL70136||||||F"


def _oru_with(*extra: str) -> str:
    """The CI-SIS ORU of the normalizer tests, its MetaDMPMSS OBX replaced by ``extra``."""
    head = oru("NW", "F", DOC).split("\r")[:7]  # MSH to PRT
    return "\r".join([*head, *extra]) + "\r"


def _oru_of(*obx: str) -> str:
    """The CI-SIS ORU of the normalizer tests with ``obx`` as its observations."""
    lines = oru("NW", "F", DOC).split("\r")
    return "\r".join([*lines[:5], *obx, lines[6]]) + "\r"


def _doc(nm):  # noqa: ANN001, ANN202
    docs = [e for e in nm.entries if e.type == DOCUMENT]
    assert len(docs) == 1
    return docs[0]


# -- MetaDMPMSS ---------------------------------------------------------------------------------
def test_meta_codes_and_system_in_other_case_mask_the_document():
    nm = norm(_oru_with(_meta(2, "masque_ps", "Y"), _meta(3, "Invisible_Patient", "N"),
                        _meta(4, "DESTDMP", "Y", system="metadmpmss")))
    assert _doc(nm).masking == {"MASQUE_PS": True, "INVISIBLE_PATIENT": False, "DESTDMP": True}
    assert [e.type for e in nm.entries] == [DOCUMENT]  # no flag filed as a lab result


@pytest.mark.parametrize("value, masked", [
    ("1", True), ("0", False), ("true", True), ("FALSE", False), ("Oui", True), ("non", False),
    ("y", True)])
def test_meta_flag_values_other_than_y_n_are_read_with_a_warning(value, masked):
    nm = norm(_oru_with(_meta(2, "MASQUE_PS", value)))
    assert _doc(nm).masking == {"MASQUE_PS": masked}
    said = [w for w in nm.warnings if "MASQUE_PS" in w]
    if value.upper() in ("Y", "N"):
        assert said == []
    else:
        assert said and said[0].startswith("OBX[8]-5:") and "table 0136" in said[0]


def test_meta_flag_that_says_nothing_is_ignored_with_a_warning():
    nm = norm(_oru_with(_meta(2, "MASQUE_PS", "peut-être"), _meta(3, "INVISIBLE_PATIENT", "")))
    assert _doc(nm).masking == {}
    assert sum("is not Y or N, ignored" in w for w in nm.warnings) == 2


def test_meta_before_the_document_still_applies_to_it():
    lines = _oru_with().split("\r")
    lines.insert(5, _meta(1, "MASQUE_PS", "Y"))  # after the OBR, before the ED
    assert lines[6].startswith("OBX|1|ED|")
    nm = norm("\r".join(lines))
    assert _doc(nm).masking == {"MASQUE_PS": True}
    assert [e.type for e in nm.entries] == [DOCUMENT]


# -- a document cut over several OBX ------------------------------------------------------------
# A text PDF of the samples: these tests are about how the bytes travel in HL7v2, not about
# reading them (the corpus report they used is a scan, OCR'd again by every test, 3 s each,
# and they failed, not skipped, without ../shared/corpus).
PDF_REPORT = (Path(__file__).resolve().parents[1] / "samples" / "pdf"
              / "01_irm_genou_droit_K1_texte.pdf")
LONG_CDA = cda("DOC-12")


def _cut(data: bytes, size: int = 300) -> list[str]:
    text = b64(data)
    return [text[i:i + size] for i in range(0, len(text), size)]


def _ed(n: int, value: str, sub_id: str = "", vtype: str = "ED") -> str:
    return f"OBX|{n}|{vtype}|11502-2^CR d'examens biologiques^LN|{sub_id}|{value}||||||F"


def _pieced(kind: str, chunks: list[str]) -> list[str]:
    head = f"^TEXT^XML^Base64^{chunks[0]}"
    if kind == "same sub-id":
        return [_ed(n, f"^TEXT^XML^Base64^{c}", "1") for n, c in enumerate(chunks, start=1)]
    if kind == "dotted sub-ids":
        return [_ed(n, f"^TEXT^XML^Base64^{c}", f"1.{n}") for n, c in enumerate(chunks, start=1)]
    if kind == "data-only ED":
        return [_ed(1, head, "1")] + [_ed(n, f"^^^^{c}", "1")
                                      for n, c in enumerate(chunks[1:], start=2)]
    if kind == "ED then FT lines":
        return [_ed(1, head)] + [_ed(n, c, vtype="FT") for n, c in enumerate(chunks[1:], start=2)]
    assert kind == "repetitions"
    return [_ed(1, head + "".join(f"~^TEXT^XML^Base64^{c}" for c in chunks[1:]))]


@pytest.mark.parametrize("kind", ["same sub-id", "dotted sub-ids", "data-only ED",
                                  "ED then FT lines", "repetitions"])
def test_a_cda_cut_over_several_obx_is_one_document(kind):
    chunks = _cut(LONG_CDA)
    assert len(chunks) >= 4
    nm = norm(_oru_of(*_pieced(kind, chunks)))
    assert [e.type for e in nm.entries] == [DOCUMENT]  # no lab result of base64, no report
    doc = nm.entries[0]
    assert doc.attachment.data == LONG_CDA
    assert doc.key == "document|1.2.250.1.999.1.7^DOC-12"
    assert doc.details["cda"]["title"].startswith("Compte rendu")
    assert any("goes on in" in w and w.startswith("OBX[6]-5:") for w in nm.warnings)
    assert not any("not a CDA" in w for w in nm.warnings)


def test_a_pdf_cut_over_several_obx_in_an_mdm_is_one_document():
    pdf = PDF_REPORT.read_bytes()
    chunks = _cut(pdf, 1500)
    assert len(chunks) >= 3
    text = mdm("T02", "F", "X").split("\r")
    obx = [f"OBX|{n}|ED|18748-4^CR d'imagerie médicale^LN|1|^application^pdf^Base64^{c}||||||F"
           for n, c in enumerate(chunks, start=1)]
    text = "\r".join([*text[:5], *obx]) + "\r"
    nm = norm(text.replace("|2.1^CISIS_CDA_HL7_V2", ""))
    docs = [e for e in nm.entries if e.type == DOCUMENT]
    assert len(docs) == 1 and docs[0].attachment.data == pdf
    assert docs[0].attachment.media_type == "application/pdf"


def test_a_pdf_sent_without_its_value_type_is_filed_as_the_document_it_is():
    """OBX-2 is required when OBX-5 is valued; a sender that leaves it out still sends its
    report as an ED (^application^pdf^Base64^...). It was read as text with the rest: a
    result whose value was the report's base64, the report itself nowhere in the dossier."""
    pdf = PDF_REPORT.read_bytes()
    nm = norm(_oru_of(_ed(1, f"^application^pdf^Base64^{b64(pdf)}", vtype="")))
    assert _doc(nm).attachment.data == pdf
    assert _doc(nm).attachment.media_type == "application/pdf"
    assert not [e for e in nm.entries if "Base64" in (e.value or "")]
    assert any(w.startswith("OBX[6]-2: no value type, value with an ED's shape")
               for w in nm.warnings)
    # a coded value without OBX-2 is still read as one (round 9), not as a document
    coded = norm(_oru_of("OBX|1||664-3^Gram^LN||POS^Positif^L||||||F"))
    assert not [e for e in coded.entries if e.type == DOCUMENT]


def test_two_whole_documents_with_the_same_code_and_sub_id_stay_two():
    one, two = b64(cda("DOC-1")), b64(cda("DOC-2"))
    nm = norm(_oru_of(_ed(1, f"^TEXT^XML^Base64^{one}", "1"),
                        _ed(2, f"^TEXT^XML^Base64^{two}", "1")))
    assert sorted(e.key for e in nm.entries) == ["document|1.2.250.1.999.1.7^DOC-1",
                                                 "document|1.2.250.1.999.1.7^DOC-2"]
    assert not any("goes on in" in w for w in nm.warnings)


def test_a_comment_after_a_whole_pdf_is_no_piece_of_it():
    pdf = PDF_REPORT.read_bytes()
    nm = norm(_oru_of(_ed(1, f"^AP^PDF^Base64^{b64(pdf)}"),
                        _ed(2, "Voir le compte rendu joint", vtype="TX")))
    doc = next(e for e in nm.entries if e.type == DOCUMENT)
    assert doc.attachment.data == pdf
    assert any(e.value == "Voir le compte rendu joint" for e in nm.entries)


# -- a reference pointer (RP) -------------------------------------------------------------------
RP = "OBX|{n}|RP|11502-2^CR d'examens biologiques^LN||{pointer}^SIL-Y^AP^PDF||||||F"


@pytest.fixture
def no_network(monkeypatch):  # noqa: ANN001, ANN201
    """Any connection attempt fails the test: a pointer is never followed."""
    import socket

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("pointer", ["https://labo-bioest.example.fr/cr/CR_DURAND_0412.pdf",
                                     "file:////srv/cr/CR_DURAND_0412.pdf"])
def test_a_reference_pointer_in_an_oru_is_filed_as_a_reference_with_a_warning(pointer,
                                                                              no_network):
    nm = norm(_oru_of("OBX|1|NM|2345-7^Glucose^LN||5,4|mmol/L|3,9-5,8|N|||F",
                      RP.format(n=2, pointer=pointer)))
    ref = next(e for e in nm.entries if e.value_type == "RP")
    assert ref.value == pointer and ref.attachment is None
    said = [w for w in nm.warnings if "(RP)" in w]
    assert len(said) == 1 and said[0].startswith("OBX[7]-5:") and "not retrieved" in said[0]
    assert "DURAND" not in said[0]  # the pointer (a file name naming the patient) is not echoed


def test_an_mdm_whose_document_is_only_a_reference_is_refused_with_its_place(no_network):
    text = mdm("T02", "F", b64(cda("DOC-9"))).split("\r")
    rp = RP.format(n=1, pointer="https://ris.example.fr/cr/4711.pdf")
    with pytest.raises(NormalizationError) as exc:
        norm("\r".join([*text[:5], rp]) + "\r")
    assert (exc.value.code, exc.value.location) == ("MDM_REFERENCE_ONLY", "OBX[6]-5")
    assert "4711" not in str(exc.value)
    # with the document itself, the reference is an observation, with a warning
    nm = norm("\r".join([*text[:6], rp.replace("OBX|1|", "OBX|2|")]) + "\r")
    assert [e.type for e in nm.entries if e.type == DOCUMENT] == [DOCUMENT]
    assert any(w.startswith("OBX[7]-5: reference pointer (RP)") for w in nm.warnings)


# -- an empty ED ----------------------------------------------------------------------------------
def _ingest(ctx, *messages: str) -> list:  # noqa: ANN001
    """Each message through intake and processing, as a connector hands it over; the ledger
    rows in order."""
    from sqlalchemy import select

    from dossiers.schema import imports
    from pipelines.intake import Received, intake
    from pipelines.process import drain

    ids = []
    for n, text in enumerate(messages):
        ids += intake(ctx.engine, ctx.archive, [Received(text.encode(), "labo-y", "file",
                                                         file_name=f"{n}.hl7")])[0].message_ids
        drain(ctx)
    with ctx.engine.connect() as conn:
        return conn.execute(select(imports).where(imports.c.id.in_(ids))
                            .order_by(imports.c.id)).all()


def _filed(ctx) -> list:  # noqa: ANN001
    from sqlalchemy import select

    from dossiers.schema import entries
    with ctx.engine.connect() as conn:
        return conn.execute(select(entries).order_by(entries.c.id)).all()


@pytest.mark.parametrize("ed5", ["", "^TEXT^XML^Base64^", "^application^pdf^Base64^\\.br\\"])
def test_an_empty_document_is_refused_on_the_ledger_with_its_place(sqlite_ctx, ed5):
    from dataclasses import replace
    sqlite_ctx.settings = replace(sqlite_ctx.settings, auto_create=True)
    row, = _ingest(sqlite_ctx, _oru_of(_ed(1, ed5)))
    assert (row.status, row.error_code, row.error_location) == ("failed", "ED_EMPTY", "OBX[6]-5")
    assert _filed(sqlite_ctx) == []


def test_an_empty_ed_that_deletes_or_announces_a_pending_report_is_read():
    gone = norm(_oru_of(_ed(1, "")).replace("ORC|NW|", "ORC|CA|").replace("||||||F\r", "||||||D\r"))
    assert [(e.type, e.action) for e in gone.entries] == [(DOCUMENT, "delete")]
    pending = norm(_oru_of(_ed(1, "^AP^PDF^Base64^")).replace("||||||F\r", "||||||I\r"))
    doc = _doc(pending)
    assert doc.status == "registered" and any("empty document" in w for w in pending.warnings)


# -- MDM triggers beyond T02/T04/T10 ------------------------------------------------------------
def _mdm(trigger: str, txa12: str = "CR-100^RIS-Y", txa13: str = "", cisis: bool = False,
         content: str | None = "Scanner thoracique : pas de nodule suspect.") -> str:
    """An MDM of a radiology information system: the report as TX lines (or none)."""
    profile = "|||2.1^CISIS_CDA_HL7_V2" if cisis else ""
    segs = [f"MSH|^~\\&|RIS-Y|IMAGERIE-EST|DMP|GHT|202403151050||MDM^{trigger}^MDM_{trigger}|"
            f"M-{trigger}-{txa12[:6]}|P|2.5|||||FRA|UNICODE UTF-8{profile}",
            "EVN||20240315105000", oru("NW", "F", DOC).split("\r")[1], "PV1|1|O",
            f"TXA|1|CR^Compte rendu^L|TX|202403151000||||||||{txa12}|{txa13}||||AU||AV"]
    if content is not None:
        segs.append(f"OBX|1|TX|18748-4^CR d'imagerie^LN||{content}||||||F")
    return "\r".join(segs) + "\r"


@pytest.mark.parametrize("trigger", ["T01", "T03", "T05", "T07", "T09"])
def test_a_notification_without_its_document_says_so(trigger):
    # T03 with a TXA-17 (here AU) changes the status of the document held (round 5): the
    # notification only is a T03 stating none
    with pytest.raises(NormalizationError) as exc:
        norm(_with_txa(_mdm(trigger, content=None), 17, ""))
    assert (exc.value.code, exc.value.location) == ("MDM_NOTIFICATION_ONLY", "MSH-9")
    assert f"MDM^{trigger}" in str(exc.value)


def test_a_notification_carrying_its_document_is_read_as_the_trigger_with_content():
    new = norm(_mdm("T01"))
    assert [(e.key, e.action) for e in new.entries] == [
        ("document|CR-100|RIS-Y@IMAGERIE-EST", "new")]
    assert any(w.startswith("MSH-9: MDM^T01") and "read as MDM^T02" in w for w in new.warnings)
    replaced = norm(_mdm("T09", txa12="CR-101^RIS-Y", txa13="CR-100^RIS-Y"))
    doc = _doc(replaced)
    assert (doc.key, doc.action, doc.replaces_key) == (
        "document|CR-101|RIS-Y@IMAGERIE-EST", "replace", "document|CR-100|RIS-Y@IMAGERIE-EST")
    # a status change with content is a new version of the same document, even under CI-SIS
    # (where T04, and T04 only, deletes)
    for cisis in (False, True):
        changed = _doc(norm(_mdm("T03", cisis=cisis)))
        assert (changed.key, changed.action) == ("document|CR-100|RIS-Y@IMAGERIE-EST", "new")


def test_an_addendum_is_a_document_of_its_own_that_names_its_parent():
    doc = _doc(norm(_mdm("T06", txa12="CR-100-ADD1^RIS-Y", txa13="CR-100^RIS-Y",
                         content="Addendum : comparaison avec l'examen du 02/02/2024.")))
    assert (doc.key, doc.action, doc.replaces_key) == (
        "document|CR-100-ADD1|RIS-Y@IMAGERIE-EST", "new", None)
    assert doc.details["addendum_to"] == "document|CR-100|RIS-Y@IMAGERIE-EST"


def test_a_cancel_that_carries_the_document_withdraws_it(sqlite_ctx):
    from dataclasses import replace
    sqlite_ctx.settings = replace(sqlite_ctx.settings, auto_create=True)
    first, cancel = _ingest(sqlite_ctx, _mdm("T02"), _mdm("T11"))
    assert (first.status, cancel.status) == ("deposited", "deposited")
    versions = [(e.key, e.version, e.status, e.current) for e in _filed(sqlite_ctx)]
    assert versions == [("document|CR-100|RIS-Y@IMAGERIE-EST", 1, "final", False),
                        ("document|CR-100|RIS-Y@IMAGERIE-EST", 2, "withdrawn", True)]


# -- TXA-12, TXA-17, TXA-19 ---------------------------------------------------------------------
def _with_txa(text: str, field: int, value: str) -> str:
    lines = text.split("\r")
    n = next(i for i, ln in enumerate(lines) if ln.startswith("TXA|"))
    f = lines[n].split("|")
    f += [""] * (field + 1 - len(f))
    f[field] = value
    lines[n] = "|".join(f)
    return "\r".join(lines)


@pytest.mark.parametrize("completion, status", [("IP", "preliminary"), ("DI", "preliminary"),
                                                ("PA", "preliminary"), ("AU", "final"),
                                                ("LA", "final"), ("", "final")])
def test_a_report_still_being_written_is_no_final_document(completion, status):
    doc = _doc(norm(_with_txa(_mdm("T02"), 17, completion)))
    assert doc.status == status


def test_a_status_change_to_cancelled_withdraws_the_document(sqlite_ctx):
    from dataclasses import replace
    sqlite_ctx.settings = replace(sqlite_ctx.settings, auto_create=True)
    cancel = _with_txa(_mdm("T03", content=None), 19, "CA")
    changed = _with_txa(_mdm("T04"), 19, "CA").replace("|M-T04-", "|M-T04b-")
    first, gone, again = _ingest(sqlite_ctx, _mdm("T02"), cancel, changed)
    assert [r.status for r in (first, gone, again)] == ["deposited", "deposited", "duplicate"]
    versions = [(e.version, e.status, e.current) for e in _filed(sqlite_ctx)]
    assert versions == [(1, "final", False), (2, "withdrawn", True)]
    # a new document sent as deleted says two things: refused, naming both fields
    with pytest.raises(NormalizationError) as exc:
        norm(_with_txa(_mdm("T02"), 19, "CA"))
    assert exc.value.code == "CISIS_ACTION_MISMATCH" and "TXA[5]-19" in exc.value.location


def test_unavailable_for_patient_care_is_held_back():
    # was filed (current, final) with a warning: v2.5 9.6.1.19, a document not available
    # for patient care is not one a professional may read (round 5: MDM_NOT_AVAILABLE)
    with pytest.raises(NormalizationError) as exc:
        norm(_with_txa(_mdm("T02"), 19, "UN"))
    assert (exc.value.code, exc.value.location) == ("MDM_NOT_AVAILABLE", "TXA[5]-19")


def test_a_txa_12_that_is_not_the_cda_id_is_said():
    cdoc = b64(cda("DOC-9"))
    same = norm(mdm("T02", "F", cdoc))  # TXA-12 DOC-9^Organisation-Y^<root>: the CDA id
    assert not any("unique document number" in w for w in same.warnings)
    other = norm(mdm("T02", "F", cdoc).replace("DOC-9^Organisation-Y^", "CR-2024-0042^RIS^"))
    doc = _doc(other)
    assert doc.key == "document|1.2.250.1.999.1.7^DOC-9"
    assert doc.details["message_document_id"] == "1.2.250.1.999.1.7^CR-2024-0042"
    assert any(w.startswith("TXA[5]-12: the unique document number") for w in other.warnings)


# -- what the ED says against what it holds -----------------------------------------------------
def test_a_pdf_sent_as_xml_is_read_as_the_pdf_it_is():
    pdf = PDF_REPORT.read_bytes()
    nm = norm(_oru_of(_ed(1, f"^TEXT^XML^Base64^{b64(pdf)}")))
    doc = next(e for e in nm.entries if e.type == DOCUMENT)
    assert doc.attachment.media_type == "application/pdf"
    assert any(w.startswith("OBX[6]-5:") and "content is application/pdf" in w
               for w in nm.warnings)
    assert not any("not a CDA" in w for w in nm.warnings)
    # a CDA sent as a PDF was already told by its XML
    cda_as_pdf = norm(_oru_of(_ed(1, f"^AP^PDF^Base64^{DOC}")))
    assert _doc(cda_as_pdf).attachment.media_type == "text/xml"


# -- an ORU carrying its results and the CDA report of the same results -------------------------
def test_results_sent_as_obx_and_inside_the_carried_cda_are_filed_once(sqlite_ctx):
    """The lab's ORU: the lipid panel as NM OBX, and the CR-BIO of the same panel in an ED.
    Each cholesterol was filed twice, both current (level 4 held across messages only)."""
    from dataclasses import replace

    from tests.conftest import SAMPLES
    sqlite_ctx.settings = replace(sqlite_ctx.settings, auto_create=True)
    text = (SAMPLES / "hl7v2" / "02_labm_lipides_glycemie.hl7").read_bytes().decode()
    lines = [ln for ln in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if ln]
    report = b64((SAMPLES / "cda" / "01_crbio_labm_lipides_glycemie.xml").read_bytes())
    lines.insert(next(i for i, ln in enumerate(lines) if ln.startswith("OBX|4|NM|")) + 1,
                 f"OBX|5|ED|11502-2^CR d'examens biologiques^LN||^TEXT^XML^Base64^{report}"
                 "||||||F")
    row, = _ingest(sqlite_ctx, "\r".join(lines) + "\r")
    assert row.status == "deposited" and row.duplicates_count >= 4
    filed = _filed(sqlite_ctx)
    lipids = [(e.code, e.value, e.current) for e in filed
              if e.code in ("2093-3", "2571-8", "2085-9", "18262-6")]
    assert sorted(lipids) == [("18262-6", "1.11", True), ("2085-9", "0.48", True),
                              ("2093-3", "1.84", True), ("2571-8", "1.29", True)]
    doc = next(e for e in filed if e.type == DOCUMENT)
    assert doc.current and doc.media_type == "text/xml"  # the report itself is kept
    # one entry, two channels: created by its OBX, confirmed by the carried report
    from sqlalchemy import select

    from dossiers.schema import provenance
    total = next(e for e in filed if e.code == "2093-3")
    with sqlite_ctx.engine.connect() as conn:
        links = conn.execute(select(provenance.c.relation, provenance.c.source_ref)
                             .where(provenance.c.entry_id == total.id)).all()
    relations = sorted(r.relation for r in links)
    assert relations == ["confirmed", "created"]
    assert next(r.source_ref for r in links if r.relation == "created").startswith("OBX")
    assert next(r.source_ref for r in links if r.relation == "confirmed") != \
        next(r.source_ref for r in links if r.relation == "created")


def test_a_replacement_carrying_the_same_pdf_keeps_a_current_report(sqlite_ctx):
    """T10 re-sending the same PDF under a new TXA-12 (only the metadata changed): the new
    version's report was taken as the old one's (same fact), then withdrawn with the old
    version: the dossier showed the document and no report."""
    from dataclasses import replace

    from tests.conftest import SAMPLES
    sqlite_ctx.settings = replace(sqlite_ctx.settings, auto_create=True)
    pdf = b64((SAMPLES / "pdf" / "01_irm_genou_droit_K1_texte.pdf").read_bytes())
    ed = f"OBX|1|ED|18748-4^CR d'imagerie^LN||^application^pdf^Base64^{pdf}||||||F"
    first = _mdm("T02", content=None) + ed + "\r"
    second = _mdm("T10", txa12="CR-101^RIS-Y", txa13="CR-100^RIS-Y", content=None) + ed + "\r"
    rows = _ingest(sqlite_ctx, first, second)
    assert [r.status for r in rows] == ["deposited", "deposited"]
    current = {(e.type, e.key) for e in _filed(sqlite_ctx) if e.current
               and e.status != "withdrawn"}
    assert current == {("document", "document|CR-101|RIS-Y@IMAGERIE-EST"),
                       ("imaging_report", "document|CR-101|RIS-Y@IMAGERIE-EST|report")}


# -- masking of the results sent along with a masked report -------------------------------------
GLUCOSE = "OBX|1|NM|2345-7^Glucose^LN||5,4|mmol/L|3,9-5,8|N|||F"


def test_the_results_of_a_masked_report_are_masked_with_it():
    pdf = b64(PDF_REPORT.read_bytes())
    nm = norm(_oru_of(GLUCOSE, _ed(2, f"^AP^PDF^Base64^{pdf}"), _meta(3, "MASQUE_PS", "Y")))
    glucose = next(e for e in nm.entries if e.code == "2345-7")
    assert glucose.masking["MASQUE_PS"] is True
    assert all(e.masking.get("MASQUE_PS") is True for e in nm.entries)


def test_the_results_of_a_restricted_cda_are_masked_with_it():
    restricted = b64(cda("DOC-1").replace(b'<confidentialityCode code="N"',
                                          b'<confidentialityCode code="R"'))
    nm = norm(_oru_of(GLUCOSE, _ed(2, f"^TEXT^XML^Base64^{restricted}")))
    doc, glucose = _doc(nm), next(e for e in nm.entries if e.code == "2345-7")
    assert doc.masking.get("MASQUE_PS") is True
    assert glucose.masking == doc.masking
    # an unmasked report leaves its results as the message's flags say
    plain = norm(_oru_of(GLUCOSE, _ed(2, f"^TEXT^XML^Base64^{DOC}"), _meta(3, "DESTDMP", "Y")))
    assert next(e for e in plain.entries if e.code == "2345-7").masking == {"DESTDMP": True}


# -- ED.4 and the components' places --------------------------------------------------------------
@pytest.mark.parametrize("ed5", [f"TEXT^XML^Base64^{DOC}", f"^TEXT^XML^BASE-64^{DOC}",
                                 f"^TEXT^XML^base_64^{DOC}", f"^TEXT^XML^B64^{DOC}"])
def test_ed_variants_of_encoding_and_component_places_are_read(ed5):
    nm = norm(_oru_of(_ed(1, ed5)))
    doc = _doc(nm)
    assert doc.key == "document|1.2.250.1.999.1.7^DOC-1"
    assert doc.attachment.media_type == "text/xml"
    shifted = [w for w in nm.warnings if "ED.1 (source application) missing" in w]
    assert len(shifted) == (1 if ed5.startswith("TEXT") else 0)


def test_an_unknown_encoding_is_refused_without_echoing_the_data():
    with pytest.raises(NormalizationError) as exc:
        norm(_oru_of(_ed(1, f"^TEXT^XML^UUENCODE^{DOC}")))
    assert exc.value.code == "ED_BAD_ENCODING" and "'UUENCODE'" in str(exc.value)
    with pytest.raises(NormalizationError) as exc:
        norm(_oru_of(_ed(1, f"^XML^Base64^{DOC}^")))  # data in ED.4
    assert exc.value.code == "ED_BAD_ENCODING" and DOC[:8].upper() not in str(exc.value).upper()


@pytest.mark.parametrize("ed5, media", [
    (b64(PDF_REPORT.read_bytes()), "application/pdf"),  # the data alone, no components
    (DOC, "text/xml"),
    (f"^AP^PDF^A^{b64(PDF_REPORT.read_bytes())}", "application/pdf"),  # base64 said 'A'
    (f"^TEXT^XML^A^{DOC}", "text/xml")])
def test_base64_of_a_known_format_sent_bare_or_as_a_is_decoded(ed5, media):
    nm = norm(_oru_of(_ed(1, ed5)))
    doc = next(e for e in nm.entries if e.type == DOCUMENT)
    assert doc.attachment.media_type == media
    assert doc.attachment.data.startswith(b"%PDF-" if media == "application/pdf" else b"<?xml")
    assert any("base64 data recognised by its content" in w for w in nm.warnings)


URL_SAFE_DOC = DOC.translate(str.maketrans("+/", "-_"))


@pytest.mark.parametrize("ed5, note", [
    (f"^TEXT^XML^Base64^data:text/xml;base64,{DOC}", "data: URI prefix removed"),
    (f"^TEXT^XML^Base64^DATA:text/xml;charset=UTF-8;base64,{DOC}", "data: URI prefix removed"),
    (f"^TEXT^XML^Base64^{URL_SAFE_DOC}", "URL-safe base64 alphabet read"),
    (f"^^^^data:text/xml;base64,{DOC}", "base64 data recognised by its content")])
def test_a_data_uri_or_the_url_safe_alphabet_is_decoded(ed5, note):
    """Engines that also speak FHIR or the web send a data: URI, or base64 in the URL-safe
    alphabet (RFC 4648 section 5): both failed the message with ED_BAD_BASE64 (or left the
    document as its base64 text)."""
    assert set("+/") & set(DOC), "the document's base64 must use the characters that differ"
    nm = norm(_oru_of(_ed(1, ed5)))
    doc = _doc(nm)
    assert doc.attachment.media_type == "text/xml" and doc.attachment.data.startswith(b"<?xml")
    assert doc.key == "document|1.2.250.1.999.1.7^DOC-1"
    assert any(note in w for w in nm.warnings), nm.warnings


def test_both_base64_alphabets_in_one_document_are_refused():
    mixed = DOC[:40] + "-_" + DOC[42:]
    assert set("+/") & set(mixed)
    with pytest.raises(NormalizationError) as exc:
        norm(_oru_of(_ed(1, f"^TEXT^XML^Base64^{mixed}")))
    assert exc.value.code == "ED_BAD_BASE64"


def test_a_flag_sent_twice_with_different_values_keeps_the_one_that_hides():
    for first, second in (("Y", "N"), ("N", "Y")):
        nm = norm(_oru_with(_meta(2, "MASQUE_PS", first), _meta(3, "MASQUE_PS", second),
                            _meta(4, "DESTMSSANTEPAT", first), _meta(5, "DESTMSSANTEPAT", second)))
        assert _doc(nm).masking == {"MASQUE_PS": True, "DESTMSSANTEPAT": False}
        assert sum("sent twice with different values" in w for w in nm.warnings) == 2


# -- property: however a document is cut, it is read back whole ---------------------------------
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(min_size=0, max_size=3000), size=st.integers(min_value=1, max_value=900),
       kind=st.sampled_from(["same sub-id", "dotted sub-ids", "data-only ED",
                             "ED then FT lines", "repetitions"]),
       pdf=st.booleans())
@example(body=b"\x00" * 33, size=64, kind="same sub-id", pdf=True)  # found in CI: the
# first 64 base64 characters were a whole PDF ending '%%EOF', its last '\n' ('Cg==') alone
# in the next OBX was filed as a second document
@example(body=b"", size=26, kind="same sub-id", pdf=False)  # found by a helper (stop 32):
# the first two pieces were the XML prolog alone, the third began '<ClinicalDocument' and
# was read as a second document
def test_a_document_cut_anywhere_is_read_back_whole(body, size, kind, pdf):
    data = (b"%PDF-1.4\n" + body + b"\n%%EOF\n") if pdf else cda(
        "DOC-" + body.hex()[:40])
    chunks = _cut(data, size)  # the ED says TEXT^XML: a PDF's signature wins (tested above)
    nm = norm(_oru_of(*_pieced(kind, chunks)))
    docs = [e for e in nm.entries if e.type == DOCUMENT]
    assert len(docs) == 1 and docs[0].attachment.data == data


def test_a_txa_13_that_is_not_the_cda_parent_is_said():
    v2 = b64(cda("DOC-10", parent="DOC-9"))
    agree = norm(mdm("T10", "C", v2, txa13=f"DOC-9^Organisation-Y^{'1.2.250.1.999.1.7'}"))
    assert _doc(agree).replaces_key == "document|1.2.250.1.999.1.7^DOC-9"
    assert not any("parent document number" in w for w in agree.warnings)
    other = norm(mdm("T10", "C", v2, txa13="CR-2023-0007^RIS"))
    assert _doc(other).replaces_key == "document|1.2.250.1.999.1.7^DOC-9"  # the CDA's
    assert any(w.startswith("TXA[5]-13: the parent document number") for w in other.warnings)


# -- the carried CDA's own character set -----------------------------------------------------
_TITLED = cda("DOC-1").decode().replace("<title>Compte rendu d'examens biologiques</title>",
                                        "<title>Hématologie – numération sanguine</title>")


@pytest.mark.parametrize("charset", ["UTF-8 BOM", "ISO-8859-1", "UTF-16", "UTF-16BE BOM"])
def test_the_carried_cda_is_read_in_its_own_charset(charset):
    if charset == "UTF-8 BOM":
        data = b"\xef\xbb\xbf" + _TITLED.encode()
    elif charset == "ISO-8859-1":  # '–' is no Latin-1 character: a character reference
        data = _TITLED.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"').encode(
            "latin-1", "xmlcharrefreplace")
    else:
        text = _TITLED.replace('encoding="UTF-8"', 'encoding="UTF-16"')
        data = text.encode("utf-16") if charset == "UTF-16" else \
            b"\xfe\xff" + text.encode("utf-16-be")
    for ed5 in (f"^TEXT^XML^Base64^{b64(data)}", f"^AP^^Base64^{b64(data)}"):
        nm = norm(_oru_of(_ed(1, ed5)))
        doc = _doc(nm)
        assert doc.key == "document|1.2.250.1.999.1.7^DOC-1", charset
        assert doc.details["cda"]["title"] == "Hématologie – numération sanguine"
        assert doc.attachment.data == data  # the original bytes are what is kept


# -- a scanned or encrypted PDF carried in an MDM (checked right, pinned) ------------------------
@pytest.mark.parametrize("name, readable", [("02_tdm_thorax_K2_scan.pdf", True),
                                            ("13_irm_cerebrale_K3_chiffre.pdf", False)])
def test_a_scanned_pdf_goes_through_ocr_and_an_encrypted_one_is_filed_unread(name, readable):
    from tests.conftest import SAMPLES
    pdf = b64((SAMPLES / "pdf" / name).read_bytes())
    nm = norm(_mdm("T02", content=None)
              + f"OBX|1|ED|18748-4^CR d'imagerie^LN||^AP^PDF^Base64^{pdf}||||||F\r")
    doc = _doc(nm)
    assert doc.attachment.media_type == "application/pdf"
    reports = [e for e in nm.entries if e.parent_key == doc.key]
    if readable:
        assert len(reports) == 1 and reports[0].details["ocr_pages"]
    else:
        assert reports == []
        assert any(w.startswith("OBX[6]: the PDF could not be read (PDF_ENCRYPTED)")
                   for w in nm.warnings)


def test_an_empty_document_beside_results_files_the_results_with_a_warning():
    """A lab's ORU: the glucose as NM, and the report's PDF slot left empty by the SIL.
    Failing the whole message (ED_EMPTY) kept the glucose out of the dossier; the empty
    document is not filed, and the import says so at its place."""
    from normalizers.model import LAB_RESULT
    from tests.test_lab_normalizer import OBXS
    from tests.test_lab_normalizer import norm as lab_norm
    from tests.test_lab_normalizer import oru as lab_oru

    nm = lab_norm(lab_oru(OBXS[0], "OBX|2|ED|11502-2^CR d'examens biologiques^LN||"
                                   "^application^pdf^Base64^||||||F"))
    assert [e.code for e in nm.entries if e.type == LAB_RESULT] == ["2345-7"]
    assert not [e for e in nm.entries if e.type == DOCUMENT]
    assert any(w.startswith("OBX[6]-5: the document is empty") for w in nm.warnings)


def test_a_cancel_naming_the_sender_number_withdraws_the_document_filed_under_its_cda_id(ctx):  # noqa: ANN001
    """A RIS that is not CI-SIS: the T02 carries a CDA (filed under its ClinicalDocument/id,
    TXA-12 kept beside it), the T11 that cancels it, without content, names TXA-12 alone.
    It found nothing: a tombstone was filed under the number and the cancelled report stayed
    current, with what was read from it."""
    from dataclasses import replace

    ctx.settings = replace(ctx.settings, auto_create=True)
    ed = f"OBX|1|ED|18748-4^CR d'imagerie^LN||^TEXT^XML^Base64^{b64(cda('DOC-9'))}||||||F"
    first = _mdm("T02", txa12="CR-2024-0042^RIS-Y", content=None) + ed + "\r"
    cancel = _mdm("T11", txa12="CR-2024-0042^RIS-Y", content=None)
    rows = _ingest(ctx, first, cancel)
    assert [r.status for r in rows] == ["deposited", "deposited"]
    filed = _filed(ctx)
    shown = [e for e in filed if e.current and e.status != "withdrawn"]
    assert shown == []  # neither the report nor anything read from it
    doc = [e for e in filed if e.type == DOCUMENT]
    assert {e.key for e in doc} == {"document|1.2.250.1.999.1.7^DOC-9"}  # no tombstone
    assert [(e.status, e.current) for e in doc] == [("final", False), ("withdrawn", True)]
