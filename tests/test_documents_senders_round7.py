"""Documents carried in HL7v2, round 7: ED components shifted the other way, MetaDMPMSS flags
coded in their alternate triplet, a TXA-13 written without the '.' of its CDA id, a CDA sent
as the MIME package of the CDA R2 standard (3.3).

Why: each test pins what a real sender sends (the ANS examples included) and what we must
file for it; the ones marked 'was' failed before the fix of the same commit."""

from __future__ import annotations

import pytest

from normalizers.model import ACTION_REPLACE, DOCUMENT, NormalizationError
from tests.test_documents_normalizer import DOC_ROOT, PID, b64, cda, norm
from tests.test_documents_senders import PDF_REPORT, _filed, _oru_of
from tests.test_documents_senders_round4 import _auto, _through

DOC = b64(cda("DOC-1"))
CDA_KEY = f"document|{DOC_ROOT}^DOC-1"


def _ed(value: str, n: int = 1) -> str:
    return f"OBX|{n}|ED|11502-2^CR d'examens biologiques^LN||{value}||||||F"


def _doc(nm):  # noqa: ANN001, ANN202
    docs = [e for e in nm.entries if e.type == DOCUMENT]
    assert len(docs) == 1
    return docs[0]


# -- ED components one or more places late ---------------------------------------------------
def test_components_before_the_type_of_data_are_read_past_with_a_warning():
    """'^^TEXT^XML^Base64^...' and the source application's HD written with '^': the CDA is
    read, keyed by its id. Was: ED_BAD_ENCODING 'XML' / 'TEXT', the document refused."""
    for value, extra in ((f"^^TEXT^XML^Base64^{DOC}", 1),
                         (f"SIL-Y^1.2.250.1.71.4.2.7^ISO^TEXT^XML^Base64^{DOC}", 2)):
        nm = norm(_oru_of(_ed(value)))
        doc = _doc(nm)
        assert (doc.key, doc.attachment.media_type) == (CDA_KEY, "text/xml")
        assert doc.attachment.data == cda("DOC-1")
        assert any(w.startswith("OBX[6]-5:") and f"read {extra} place(s) earlier" in w
                   for w in nm.warnings)


def test_a_last_empty_component_or_a_source_application_shifts_nothing():
    """ED.1 given as one component, or an empty component after ED.5: read as before."""
    for value in (f"SIL-Y^TEXT^XML^Base64^{DOC}", f"^TEXT^XML^Base64^{DOC}^"):
        nm = norm(_oru_of(_ed(value)))
        assert _doc(nm).key == CDA_KEY
        assert not any("place(s) earlier" in w for w in nm.warnings)


# -- MetaDMPMSS flags coded as engines map them -------------------------------------------------
def _flag(obx3: str, obx5: str, n: int = 2) -> str:
    return f"OBX|{n}|CWE|{obx3}||{obx5}||||||F"


def test_a_flag_coded_in_the_alternate_triplet_masks_the_document():
    """OBX-3 'MSQ^Masqué PS^L^MASQUE_PS^...^MetaDMPMSS' (the DPI's local code first) and
    '^^^INVISIBLE_PATIENT^...^MetaDMPMSS': flags, said on the ledger. Was: two lab results
    'MSQ' and '', the document shown to professionals and to the patient."""
    nm = norm(_oru_of(
        _ed(f"^TEXT^XML^Base64^{DOC}"),
        _flag("MSQ^Masqué aux professionnels de Santé^L^MASQUE_PS^Masqué aux professionnels "
              "de Santé^MetaDMPMSS", "Y^^HL70136"),
        _flag("^^^INVISIBLE_PATIENT^Document non visible par le patient^MetaDMPMSS",
              "Y^^HL70136", n=3)))
    assert [e.type for e in nm.entries] == [DOCUMENT]
    assert _doc(nm).masking == {"MASQUE_PS": True, "INVISIBLE_PATIENT": True}
    said = [w for w in nm.warnings if "alternate identifier (OBX-3.4)" in w]
    assert [w.split(":")[0] for w in said] == ["OBX[7]-3", "OBX[8]-3"]


def test_a_lab_result_with_a_local_code_and_a_loinc_alternate_stays_a_result():
    """'GLU^Glycémie^L^2345-7^Glucose^LN': no flag for all its alternate triplet."""
    nm = norm(_oru_of(_ed(f"^TEXT^XML^Base64^{DOC}"),
                      "OBX|2|NM|GLU^Glycémie^L^2345-7^Glucose^LN||5.4|mmol/L|||||F",
                      "OBX|3|NM|^^^2345-7^Glucose^LN||5.4|mmol/L|||||F"))
    assert [e.type for e in nm.entries].count("lab_result") == 2
    assert _doc(nm).masking == {}


def test_a_flag_value_in_the_alternate_identifier_or_the_text_is_read():
    """OBX-5 '^^^Y^Oui^HL70136' (an engine's mapping to its own table first, left empty) and
    '^Non' (the text alone). Was: 'not Y or N, ignored': MASQUE_PS=Y masked nothing."""
    nm = norm(_oru_of(_ed(f"^TEXT^XML^Base64^{DOC}"),
                      _flag("MASQUE_PS^Masqué aux professionnels de Santé^MetaDMPMSS",
                            "^^^Y^Oui^HL70136"),
                      _flag("INVISIBLE_PATIENT^Document non visible par le patient^MetaDMPMSS",
                            "^Non", n=3)))
    assert _doc(nm).masking == {"MASQUE_PS": True, "INVISIBLE_PATIENT": False}
    assert any(w.startswith("OBX[7]-5:") and "alternate identifier (OBX-5.4)" in w
               for w in nm.warnings)
    assert any(w.startswith("OBX[8]-5:") and "text (OBX-5.2)" in w for w in nm.warnings)
    assert not any("is not Y or N" in w for w in nm.warnings)


# -- TXA-13 written as the ANS example writes it -------------------------------------------------
ANS_ROOT = "1.2.250.1.71.4.2.2.120456789"  # the ANS MDM examples' CDA root (v2.0)
REPORT = "^text^plain^Base64^" + b64("IRM du genou droit : rupture du ménisque interne. "
                                      "Dr Thomas Éric, radiologue.".encode())


def _ans_mdm(trigger: str, obx11: str, txa12: str, txa13: str = "") -> str:
    """An MDM of the ANS examples' shape (v2.0, 'Remplacement'): TXA-12 and TXA-13 the CDA
    root and extension joined by '.', EI.2 the organisation."""
    segs = [f"MSH|^~\\&|RIS-Y|Organisation-Y|PFI-X|Organisation-X|202106060931||MDM^{trigger}"
            f"^MDM_T02|{trigger}-{txa12[-3:]}|P|2.6|||||FRA|UNICODE UTF-8|||2.0^CISIS_CDA_HL7_V2",
            "EVN||20211005152908", PID, "PV1|1|I|UFNEPH",
            f"TXA|1|18748-4|TEXT|202212160932||||||||{txa12}^Organisation-Y|"
            f"{txa13 and txa13 + '^Organisation-Y'}||||LA",
            f"OBX|1|ED|18748-4^CR d'imagerie médicale^LN||{REPORT}||||||{obx11}"]
    return "\r".join(segs) + "\r"


def test_a_parent_number_without_the_dot_of_its_root_is_read_on_txa12s_root():
    """TXA-13 '<root>A71024000081' (the ANS example's): the parent is '<root>^A71024000081',
    the document its T02 filed. Was: '1.2.250.1.71.4.2.2^120456789A71024000081', no one's."""
    nm = norm(_ans_mdm("T10", "C", f"{ANS_ROOT}.A71024000082", f"{ANS_ROOT}A71024000081"))
    doc = _doc(nm)
    assert (doc.action, doc.replaces_key) == (ACTION_REPLACE, f"document|{ANS_ROOT}^A71024000081")
    assert any(w.startswith("TXA[5]-13:") and "no '.' between them" in w for w in nm.warnings)


def test_a_parent_under_another_root_or_a_longer_oid_is_read_as_sent():
    """Nothing is run together: a parent with its '.', or another application's OID."""
    for parent, key in ((f"{ANS_ROOT}.A71024000081", f"{ANS_ROOT}^A71024000081"),
                        (f"{ANS_ROOT}7.A1", f"{ANS_ROOT}7^A1"),
                        ("1.2.250.1.99.7.B12", "1.2.250.1.99.7^B12")):
        nm = norm(_ans_mdm("T10", "C", f"{ANS_ROOT}.A71024000082", parent))
        assert _doc(nm).replaces_key == f"document|{key}"
        assert not any("no '.' between them" in w for w in nm.warnings)


def test_the_ans_replacement_supersedes_the_document_its_t02_filed(sqlite_ctx):
    """T02 then the T10 of the ANS example's TXA-13: one current document, the new one.
    Was: both current, the replaced report shown as if valid."""
    ctx = _auto(sqlite_ctx)
    rows = _through(ctx, _ans_mdm("T02", "F", f"{ANS_ROOT}.A71024000081"),
                    _ans_mdm("T10", "C", f"{ANS_ROOT}.A71024000082", f"{ANS_ROOT}A71024000081"))
    assert [r.status for r in rows] == ["deposited", "deposited"]
    docs = {(e.key, e.current) for e in _filed(ctx) if e.type == DOCUMENT}
    assert docs == {(f"document|{ANS_ROOT}^A71024000081", False),
                    (f"document|{ANS_ROOT}^A71024000082", True)}


# -- a MIME package in the ED (CDA R2 3.3) -------------------------------------------------------
CRLF = "\\X0D\\\\X0A\\"  # CR LF as HL7 escapes write them in a field
JPEG = bytes.fromhex("FFD8FFE000104A46494600010100000100010000FFD9")


def _mime(*parts: tuple[str, bytes]) -> str:
    """A MIME multipart package as CDA R2 3.3 lays it out, its parts base64, CR LF escaped."""
    lines = ["MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="HL7-CDA-boundary"',
             ""]
    for content_type, data in parts:
        lines += ["--HL7-CDA-boundary", f"Content-Type: {content_type}",
                  "Content-Transfer-Encoding: base64", "", b64(data)]
    lines.append("--HL7-CDA-boundary--")
    return CRLF.join(lines)


def test_a_cda_sent_as_the_mime_package_of_cda_r2_is_read_and_its_patient_checked():
    """'^multipart^-hl7-cda-level-one^A^MIME-Version: 1.0...': the CDA (first part) is the
    document, keyed by its id; its JPEG stays in the archived message. A package holding the
    CDA of another patient is quarantined. Was: an opaque application/octet-stream document,
    filed under the order number, its patient never checked."""
    package = _mime(("application/x-hl7-cda-level-one+xml", cda("DOC-1")), ("image/jpeg", JPEG))
    nm = norm(_oru_of(_ed(f"^multipart^-hl7-cda-level-one^A^{package}")))
    doc = _doc(nm)
    assert (doc.key, doc.attachment.media_type) == (CDA_KEY, "text/xml")
    assert doc.attachment.data == cda("DOC-1")
    assert doc.details["cda"]["title"] == "Compte rendu d'examens biologiques"
    assert any(w.startswith("OBX[6]-5: MIME package: its application/x-hl7-cda-level-one+xml")
               and "1 other part(s)" in w for w in nm.warnings)
    assert nm.quarantine_reasons == []
    other = _mime(("text/xml", cda("DOC-2", nir="180067512345678")))
    nm = norm(_oru_of(_ed(f"^multipart^x-hl7-cda-level-one^A^{other}")))
    assert [r.split()[0] for r in nm.quarantine_reasons] == ["CISIS_PATIENT_MISMATCH"]


def test_a_pdf_wrapped_in_mime_headers_under_a_base64_ed_is_read():
    """'^AP^PDF^Base64^Content-Type: application/pdf...' (an engine that wraps the document as
    a mail part), and base64 of a whole package: the PDF. Was: ED_BAD_BASE64 (the headers
    read as base64), and an opaque document."""
    pdf = PDF_REPORT.read_bytes()
    wrapped = CRLF.join(["Content-Type: application/pdf", "Content-Transfer-Encoding: base64",
                         "", b64(pdf)])
    for value in (f"^AP^PDF^Base64^{wrapped}",
                  "^multipart^related^Base64^" + b64(_mime(("application/pdf", pdf))
                                                      .replace(CRLF, "\r\n").encode())):
        nm = norm(_oru_of(_ed(value)))
        doc = _doc(nm)
        assert (doc.attachment.media_type, doc.attachment.data) == ("application/pdf", pdf)
        assert any("MIME package: its application/pdf part" in w for w in nm.warnings)


def test_a_package_without_a_body_part_fails_on_the_ledger_with_its_place(sqlite_ctx):
    """A multipart whose boundary never comes: ED_BAD_MIME at OBX[6]-5, AE 102 to the sender,
    nothing filed; no part of the data in the message."""
    from pipelines.acknowledge import ack_rules

    broken = CRLF.join(["MIME-Version: 1.0", "Content-Type: multipart/mixed; boundary=\"b\"",
                        "", "Dupont Hélène : CR sans pièce"])
    row, = _through(_auto(sqlite_ctx), _oru_of(_ed(f"^multipart^mixed^A^{broken}")))
    assert (row.status, row.error_code) == ("failed", "ED_BAD_MIME")
    assert "OBX[6]-5" in row.error_message and "Dupont" not in row.error_message
    assert _filed(sqlite_ctx) == []
    assert (ack_rules()["ED_BAD_MIME"].ack, ack_rules()["ED_BAD_MIME"].hl7_code) == ("AE", "102")


# -- XML text under an ED that says base64 --------------------------------------------------------
def _escaped(xml: bytes) -> str:
    """XML text as a field holds it: the delimiters escaped, line ends as \\X0A\\."""
    out = xml.decode("utf-8")
    for raw, esc in (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"),
                     ("~", "\\R\\"), ("\n", "\\X0A\\")):
        out = out.replace(raw, esc)
    return out


def test_the_cda_itself_under_a_base64_ed_is_read_as_text_with_a_warning():
    """'^TEXT^XML^Base64^<?xml version=...' (the engine's template, the CDA pasted as is): the
    CDA, keyed by its id, accents kept. Was: ED_BAD_BASE64, the document refused."""
    nm = norm(_oru_of(_ed(f"^TEXT^XML^Base64^{_escaped(cda('DOC-1'))}")))
    doc = _doc(nm)
    assert (doc.key, doc.attachment.data) == (CDA_KEY, cda("DOC-1"))
    assert doc.details["cda"]["title"] == "Compte rendu d'examens biologiques"
    assert any(w.startswith("OBX[6]-5:") and "the data is XML text" in w for w in nm.warnings)


def test_text_that_is_neither_base64_nor_xml_is_still_refused():
    """'Voir le compte rendu papier' under Base64: ED_BAD_BASE64 as before."""
    with pytest.raises(NormalizationError) as err:
        norm(_oru_of(_ed("^TEXT^XML^Base64^Voir le compte rendu papier <joint>")))
    assert (err.value.code, err.value.location) == ("ED_BAD_BASE64", "OBX[6]-5")


# -- base64 of base64 ---------------------------------------------------------------------------
def test_a_document_encoded_twice_in_base64_is_decoded_twice_and_its_patient_checked():
    """An engine that encodes again a CDA it got in base64: the CDA, keyed by its id, its
    patient checked. Was: its base64 text filed as text/xml, 'not a CDA document'."""
    nm = norm(_oru_of(_ed("^TEXT^XML^Base64^" + b64(DOC.encode()))))
    doc = _doc(nm)
    assert (doc.key, doc.attachment.data) == (CDA_KEY, cda("DOC-1"))
    assert any(w.startswith("OBX[6]-5:") and "encoded twice" in w for w in nm.warnings)
    other = b64(b64(cda("DOC-2", nir="180067512345678")).encode())
    nm = norm(_oru_of(_ed(f"^TEXT^XML^Base64^{other}")))
    assert [r.split()[0] for r in nm.quarantine_reasons] == ["CISIS_PATIENT_MISMATCH"]


def test_a_text_report_of_base64_letters_only_is_decoded_once():
    """A plain-text report whose words are all of the base64 alphabet stays that text."""
    words = b"Examen normal sans anomalie decelable ce jour"
    nm = norm(_oru_of(_ed("^TEXT^PLAIN^Base64^" + b64(words))))
    assert _doc(nm).attachment.data == words
    assert not any("encoded twice" in w for w in nm.warnings)


# -- a text ED with '^' unescaped in its data -----------------------------------------------------
def test_a_text_report_with_an_unescaped_caret_is_kept_whole():
    """'^TEXT^PLAIN^A^Kaliémie : 5^2 mmol/L...' (the sender escaped nothing): the whole report.
    Was: 'Kaliémie : 5', the rest dropped without a word."""
    report = "Kaliémie : 5^2 mmol/L (contrôle à 48 h)^Conclusion : hyperkaliémie modérée."
    nm = norm(_oru_of(_ed(f"^TEXT^PLAIN^A^{report}")))
    assert _doc(nm).attachment.data == report.encode("utf-8")
    assert any(w.startswith("OBX[6]-5:") and "component separator unescaped" in w
               for w in nm.warnings)
    nm = norm(_oru_of(_ed("^TEXT^PLAIN^A^Examen normal.^")))  # an empty last component
    assert _doc(nm).attachment.data == b"Examen normal."
    assert not any("unescaped" in w for w in nm.warnings)
