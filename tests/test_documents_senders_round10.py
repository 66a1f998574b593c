"""Documents carried in HL7v2, round 10: a status change of a number filed as a CDA and its
PDF rendering, two CDAs sent under one number, a CI-SIS ORU whose document is only a
reference pointer.

Why: each test pins what a real sender sends and what we must file for it; the ones marked
'was' failed before the fix of the same commit."""

from __future__ import annotations

import pytest

from normalizers.model import DOCUMENT, NormalizationError
from pipelines.acknowledge import _verdict
from tests.test_documents_normalizer import PID, b64, norm
from tests.test_documents_senders import RP, _oru_of
from tests.test_documents_senders_round4 import _auto, _through
from tests.test_documents_senders_round9 import (
    CDA_KEY,
    PDF,
    _cda_obx,
    _documents,
    _mdm,
    _pdf_obx,
)

PDF_KEY = "document|CR-500|DPI-Y@CHU-EST"
SHARED = ": the number names 2 documents filed under their CDA ids (sent under this one number)"


# -- a status change of a number reaches the CDA and its PDF ---------------------------------------
@pytest.mark.parametrize("signed", [
    _mdm("T03", "CR-500^DPI-Y", [], txa17="LA"),
    # own gap: an MDM^T04 outside CI-SIS (status change with content) re-sending the signed
    # PDF alone. Was: the PDF final, the CDA preliminary
    _mdm("T04", "CR-500^DPI-Y", [_pdf_obx(1, PDF + b"%signed\n")], txa17="LA"),
])
def test_a_status_change_of_a_number_reaches_the_cda_and_its_pdf(sqlite_ctx, signed):
    """MDM^T02 carrying the CR-BIO and its PDF rendering under TXA-12 CR-500, TXA-17 PA
    (awaiting its author's signature, TXA-19 AV): both preliminary. The MDM^T03 saying the
    biologist signed it (TXA-17 LA) makes both final. Was: the PDF alone, the CDA stayed
    preliminary beside its final rendering."""
    ctx = _auto(sqlite_ctx)
    t02 = _mdm("T02", "CR-500^DPI-Y", [_cda_obx(1, "DOC-50"), _pdf_obx(2)], txa17="PA")
    rows = _through(ctx, t02)
    assert _documents(ctx) == {CDA_KEY: (True, "preliminary"), PDF_KEY: (True, "preliminary")}
    rows += _through(ctx, signed)
    assert [r.status for r in rows] == ["deposited", "deposited"]
    assert _documents(ctx) == {CDA_KEY: (True, "final"), PDF_KEY: (True, "final")}
    # the signed CDA keeps its content and says what the T03 said
    cda = next(e for e in _filtered(ctx) if e.key == CDA_KEY and e.current)
    assert cda.attachment_sha256 and cda.details["completion_status"] == "LA"
    assert cda.details["message_document_id"] == "CR-500|DPI-Y@CHU-EST"


def _filtered(ctx) -> list:  # noqa: ANN001
    from tests.test_documents_senders import _filed
    return [e for e in _filed(ctx) if e.type == DOCUMENT]


# -- two CDAs under one number, none held under the number itself ------------------------------
TWO = _mdm("T02", "CR-900^DPI-Y", [_cda_obx(1, "DOC-90"), _cda_obx(2, "DOC-81")], txa17="PA")
DOC_90, DOC_81 = "document|1.2.250.1.999.1.7^DOC-90", "document|1.2.250.1.999.1.7^DOC-81"


@pytest.mark.parametrize(("follow", "expected"), [
    # T11: both withdrawn. Was: neither (a tombstone under the number), both current
    (_mdm("T11", "CR-900^DPI-Y", []),
     {DOC_90: (True, "withdrawn"), DOC_81: (True, "withdrawn")}),
    # T10 with a PDF under TXA-13 CR-900: it replaces both. Was: 'replaces a document the
    # dossier does not hold', three documents current
    (_mdm("T10", "CR-901^DPI-Y", [_pdf_obx(1, obx11="C")], txa13="CR-900^DPI-Y"),
     {DOC_90: (False, "preliminary"), DOC_81: (False, "preliminary"),
      "document|CR-901|DPI-Y@CHU-EST": (True, "corrected")}),
])
def test_a_number_sent_with_two_cdas_is_acted_on_whole(sqlite_ctx, follow, expected):
    """A DPI sends two CDAs in one MDM^T02 under TXA-12 CR-900 (two reports of one visit):
    each is its own document, filed under its CDA id (their setIds differ). A cancel, status
    change or replacement naming CR-900 alone acts on both, and the ledger says so."""
    ctx = _auto(sqlite_ctx)
    rows = _through(ctx, TWO, follow)
    assert [r.status for r in rows] == ["deposited", "deposited"]
    assert _documents(ctx) == expected
    said = [w for w in rows[1].warnings or [] if w.startswith("DOCUMENT_NUMBER_SHARED")]
    assert len(said) == 1 and SHARED in said[0]
    assert not any("does not hold" in w for w in rows[1].warnings)
    assert not any(w.startswith("DOCUMENT_NUMBER_SHARED") for w in rows[0].warnings or [])


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_status_change_reaches_every_document_of_a_number_on_postgresql(ctx):
    """The same rule on PostgreSQL (its JSON operator reads the message's number): a T03
    naming a number held as two CDAs makes both final. Was: 'status change of a document
    the dossier does not hold', both preliminary."""
    ctx = _auto(ctx)
    rows = _through(ctx, TWO, _mdm("T03", "CR-900^DPI-Y", [], txa17="LA"))
    assert [r.status for r in rows] == ["deposited"] * 2
    assert _documents(ctx) == {DOC_90: (True, "final"), DOC_81: (True, "final")}


# -- a CI-SIS ORU whose document is a reference pointer --------------------------------------
def test_a_cisis_oru_whose_document_is_only_a_pointer_is_refused(no_network):
    """ORU^R01 of the CI-SIS CDA transmission (MSH-21 CISIS_CDA_HL7_V2) with OBX-2 RP (the
    CR-BIO on the LIS's web server) instead of the ED: refused, AE 102, naming the OBX,
    never echoing the pointer. Was: deposited as a lab result holding the URL under the
    document's type code, no document in the dossier, answered AA."""
    pointer = "https://sil-y.example.fr/cr/CR_LEFEVRE_0412.pdf"
    with pytest.raises(NormalizationError) as exc:
        norm(_oru_of(RP.format(n=1, pointer=pointer)))
    assert (exc.value.code, exc.value.location) == ("CISIS_REFERENCE_ONLY", "OBX[6]-5")
    assert "LEFEVRE" not in str(exc.value) and "send the document itself" in str(exc.value)
    ack, err = _verdict(("failed", exc.value.code, str(exc.value), exc.value.location))
    assert (ack, err.hl7_code) == ("AE", "102")
    # a plain ORU (no MSH-21) pointing at its PDF beside its results: still a reference
    plain = _oru_of("OBX|1|NM|2345-7^Glucose^LN||5,4|mmol/L|3,9-5,8|N|||F",
                    RP.format(n=2, pointer=pointer)).replace("|||2.1^CISIS_CDA_HL7_V2", "")
    assert [e.value for e in norm(plain).entries if e.value_type == "RP"] == [pointer]


@pytest.fixture
def no_network(monkeypatch):  # noqa: ANN001, ANN201
    """Any connection attempt fails the test: a pointer is never followed."""
    import socket

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# -- a namespace-only TXA-12 is scoped by the sending facility ----------------------------------
def _cr_img(facility: str, trigger: str, number: str = "CR-100", parent: str = "",
            text: str = "Échographie abdominale : foie de taille normale.") -> str:
    """An imaging centre's RIS (MSH-3 RIS, MSH-4 its facility) numbering its reports under
    the namespace 'RIS' alone, no OID (EI.3 empty), as two RIS sold by one vendor do."""
    report = "^TEXT^PLAIN^Base64^" + b64(text.encode())
    obx = [f"OBX|1|ED|18748-4^CR d'imagerie médicale^LN||{report}||||||"
           f"{'C' if trigger == 'T10' else 'F'}"] if trigger != "T11" else []
    segs = [f"MSH|^~\\&|RIS|{facility}|DMP|GHT|202405061130||MDM^{trigger}^MDM_T02|"
            f"{facility}-{trigger}-{number}|P|2.5|||||FRA|UNICODE UTF-8",
            "EVN||20240506113000", PID, "PV1|1|O",
            f"TXA|1|18748-4^CR d'imagerie médicale^LN|TX|202405061100||||||||{number}^RIS|"
            f"{parent}||||LA||AV", *obx]
    return "\r".join(segs) + "\r"


def test_two_facilities_numbering_under_one_namespace_keep_their_reports_apart(sqlite_ctx):
    """Two imaging centres (MSH-4 IMAGERIE-NORD, IMAGERIE-SUD) whose RIS both number
    'CR-100^RIS' (a namespace, no OID) send through one MLLP listener: two reports, and
    the second's T11 withdraws its own. Was: one key 'document|CR-100|RIS', the second
    report filed as the first's new version, its cancel withdrawing the other's."""
    ctx = _auto(sqlite_ctx)
    rows = _through(ctx, _cr_img("IMAGERIE-NORD", "T02"),
                    _cr_img("IMAGERIE-SUD", "T02", text="Radiographie thoracique : normale."),
                    _cr_img("IMAGERIE-SUD", "T11"))
    assert [r.status for r in rows] == ["deposited"] * 3
    assert _documents(ctx) == {"document|CR-100|RIS@IMAGERIE-NORD": (True, "final"),
                               "document|CR-100|RIS@IMAGERIE-SUD": (True, "withdrawn")}
    # TXA-13 is read under the facility too
    t10 = norm(_cr_img("IMAGERIE-SUD", "T10", "CR-101", "CR-100^RIS"))
    assert [e.replaces_key for e in t10.entries if e.type == DOCUMENT] == [
        "document|CR-100|RIS@IMAGERIE-SUD"]
    # a facility naming its domain after itself (MSH-4 'RIS'): nothing to scope
    nm = norm(_cr_img("RIS", "T02"))
    assert [e.key for e in nm.entries if e.type == DOCUMENT] == ["document|CR-100|RIS"]


def test_a_report_filed_before_facility_scoping_is_found_by_its_own_facility_only(sqlite_ctx):
    """A dossier holding 'document|CR-100|RIS' filed by IMAGERIE-NORD before this round: its
    own T11 withdraws it (the key it was filed under followed); IMAGERIE-SUD's T11 for its
    CR-100 does not (a tombstone under its own key)."""
    from sqlalchemy import func, update

    from dossiers.schema import entries
    ctx = _auto(sqlite_ctx)
    _through(ctx, _cr_img("IMAGERIE-NORD", "T02"))
    with ctx.engine.begin() as conn:  # as filed before the key named the facility
        conn.execute(update(entries).values(key=func.replace(entries.c.key, "@IMAGERIE-NORD",
                                                             "")))
    rows = _through(ctx, _cr_img("IMAGERIE-SUD", "T11"))
    assert _documents(ctx)["document|CR-100|RIS"] == (True, "final")
    rows += _through(ctx, _cr_img("IMAGERIE-NORD", "T11"))
    assert [r.status for r in rows] == ["deposited"] * 2
    assert _documents(ctx) == {"document|CR-100|RIS": (True, "withdrawn"),
                               "document|CR-100|RIS@IMAGERIE-SUD": (True, "withdrawn")}
