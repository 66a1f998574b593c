"""CDA documents over HL7v2 (CI-SIS): keys, versions, actions, MetaDMPMSS masking, corpus."""

from __future__ import annotations

import base64
import functools
import re
from pathlib import Path

import pytest

from normalizers.cda_header import read_cda_header
from normalizers.codes import load_mappings
from normalizers.documents import b64decode_lenient, media_type
from normalizers.lab import normalize_message
from normalizers.model import (
    ACTION_DELETE,
    ACTION_NEW,
    ACTION_REPLACE,
    DOCUMENT,
    NormalizationError,
)
from parsers.hl7v2.er7 import parse_text
from tests.conftest import CORPUS

MAPS = load_mappings(None)
NIR = "279035121518989"
TEST_OID = "1.2.250.1.213.1.4.10"
DOC_ROOT = "1.2.250.1.999.1.7"

PID = (f"PID|||{NIR}^^^ASIP-SANTE-INS-NIR&{TEST_OID}&ISO^INS^^20101207||"
       "LEFÈVRE-ÜNAL^Hélène^^^^^L||19790328|F" + "|" * 24 + "VALI")
META = (
    "OBX|{n}|CE|MASQUE_PS^Masqué aux professionnels de Santé^MetaDMPMSS||N^^HL70136||||||F",
    "OBX|{n}|CE|INVISIBLE_PATIENT^Document Non Visible par le patient^MetaDMPMSS||Y^^HL70136"
    "||||||F",
    "OBX|{n}|CE|DESTDMP^Destinataire DMP^MetaDMPMSS||Y^^HL70136||||||F",
    "OBX|{n}|CE|DESTMSSANTEPS^Destinataire PS^MetaDMPMSS||N^^HL70136||||||F",
    "OBX|{n}|ED|CORPSMAIL_PS^Corps du mail pour un PS^MetaDMPMSS||^TEXT^^Base64^"
    + base64.b64encode("Cher confrère, voici le CR.".encode()).decode() + "||||||F",
)


# A level-1 body read as the file path reads it (normalizers/cda level1_body_entries): text,
# the document's narrative. It was the 8 bytes '%PDF-1.4', no PDF anyone can read, which the
# carried CDA's body now is read as (a warning that the PDF could not be read).
TEXT_BODY = base64.b64encode("Bilan biologique : résultats joints.".encode()).decode()


def cda(ext: str, parent: str | None = None, nir: str = NIR, oid: str = TEST_OID,
        tail: str = "</ClinicalDocument>") -> bytes:
    related = (f'<relatedDocument typeCode="RPLC"><parentDocument><id root="{DOC_ROOT}" '
               f'extension="{parent}"/></parentDocument></relatedDocument>') if parent else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <templateId root="2.16.840.1.113883.2.8.2.1"/>
  <id root="{DOC_ROOT}" extension="{ext}"/>
  <code code="11502-2" codeSystem="2.16.840.1.113883.6.1" displayName="CR d'examens biologiques"/>
  <title>Compte rendu d'examens biologiques</title>
  <effectiveTime value="20240315104500+0100"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
  <languageCode code="fr-FR"/>
  <setId root="{DOC_ROOT}" extension="SET-1"/>
  <versionNumber value="{2 if parent else 1}"/>
  <recordTarget><patientRole><id root="{oid}" extension="{nir}"/>
    <patient><name><family>LEFÈVRE-ÜNAL</family><given>Hélène</given></name></patient>
  </patientRole></recordTarget>
  {related}
  <component><nonXMLBody><text mediaType="text/plain" representation="B64">{TEXT_BODY}
  </text></nonXMLBody></component>
{tail}""".encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def oru(orc1: str, obx11: str, payload: str, profile: str = "2.1^CISIS_CDA_HL7_V2") -> str:
    segs = [
        "MSH|^~\\&|SIL-Y|labo|PFI-X|Organisation-X|202403151050||ORU^R01^ORU_R01|MSG-42|P|2.5"
        f"|||||FRA|UNICODE UTF-8|||{profile}",
        PID,
        "PV1|1|I|UFNEPH",
        f"ORC|{orc1}|98765431^Nephro|1001-E1^labo",
        "OBR|1|98765431^Nephro|1001-E1^labo|11502-2^CR d'examens biologiques^LN|||202403150810"
        + "|" * 18 + "F",
        f"OBX|1|ED|11502-2^CR d'examens biologiques^LN||^TEXT^XML^Base64^{payload}||||||"
        f"{obx11}",
        "PRT||UC||SB^^participation|801234567866^DIAZ^Thierry^^^^^^ASIP-SANTE-PS&"
        "1.2.250.1.71.4.2.1&ISO^D^^^IDNPS",
        *(m.format(n=i) for i, m in enumerate(META, start=2)),
    ]
    return "\r".join(segs) + "\r"


def mdm(trigger: str, obx11: str, payload: str, txa13: str = "") -> str:
    segs = [
        f"MSH|^~\\&|RIS-Y|Organisation-Y|PFI-X|Organisation-X|202403151050||MDM^{trigger}^MDM_T02"
        "|MSG-43|P|2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2",
        "EVN||20240315105000",
        PID,
        "PV1|1|I|UFNEPH",
        f"TXA|1|18748-4|TEXT|202403151000||||||||DOC-9^Organisation-Y^{DOC_ROOT}|{txa13}||||LA",
        f"OBX|1|ED|18748-4^CR d'imagerie médicale^LN||^text^XML^Base64^{payload}||||||{obx11}",
        *(m.format(n=i).replace("|CE|", "|CWE|") for i, m in enumerate(META, start=2)),
    ]
    return "\r".join(segs) + "\r"


def norm(text: str):
    return normalize_message(parse_text(text), "labo-y", MAPS)


EXPECTED_MASKING = {"MASQUE_PS": False, "INVISIBLE_PATIENT": True, "DESTDMP": True,
                    "DESTMSSANTEPS": False}


def test_oru_initial_cda():
    nm = norm(oru("NW", "F", b64(cda("DOC-1"))))
    assert [e.type for e in nm.entries] == [DOCUMENT]  # no LAB_REPORT, no ED lab result
    doc = nm.entries[0]
    assert doc.key == f"document|{DOC_ROOT}^DOC-1"
    assert (doc.action, doc.replaces_key, doc.status) == (ACTION_NEW, None, "final")
    assert (doc.code, doc.system, doc.display) == ("11502-2", "LN",
                                                   "Compte rendu d'examens biologiques")
    assert doc.effective == "2024-03-15T10:45:00+01:00"
    assert doc.masking == EXPECTED_MASKING
    assert doc.details["CORPSMAIL_PS"] == "Cher confrère, voici le CR."
    assert doc.details["cda"]["set_id"] == f"{DOC_ROOT}^SET-1"
    assert doc.details["cda"]["confidentiality_code"] == "N"
    assert doc.attachment.media_type == "text/xml"
    assert doc.attachment.data.startswith(b"<?xml")
    assert doc.performer == "Thierry DIAZ"
    assert doc.source_ref == "OBX[6]" and doc.parent_key is None
    assert nm.quarantine_reasons == [] and nm.warnings == []


def test_oru_replace_points_at_the_parent():
    nm = norm(oru("RO", "C", b64(cda("DOC-2", parent="DOC-1"))))
    doc = nm.entries[0]
    assert doc.key == f"document|{DOC_ROOT}^DOC-2"
    assert (doc.action, doc.replaces_key, doc.status) == (
        ACTION_REPLACE, f"document|{DOC_ROOT}^DOC-1", "corrected")


def test_oru_delete_withdraws_the_document_itself():
    nm = norm(oru("CA", "D", b64(cda("DOC-2", parent="DOC-1"))))
    doc = nm.entries[0]
    assert (doc.action, doc.replaces_key, doc.status) == (ACTION_DELETE, doc.key,
                                                          "entered-in-error")
    assert doc.masking == EXPECTED_MASKING


@pytest.mark.parametrize(("orc1", "obx11"), [("NW", "D"), ("NW", "C"), ("RO", "F"), ("CA", "C")])
def test_oru_action_mismatch(orc1, obx11):
    with pytest.raises(NormalizationError) as exc:
        norm(oru(orc1, obx11, b64(cda("DOC-1"))))
    assert exc.value.code == "CISIS_ACTION_MISMATCH"
    assert "ORC[4]-1" in str(exc.value) and "OBX[6]-11" in str(exc.value)
    assert exc.value.location == "ORC[4]-1,OBX[6]-11"


def test_outside_cisis_order_control_does_not_decide():
    text = oru("NW", "C", b64(cda("DOC-2", parent="DOC-1")), profile="")
    nm = norm(text)
    assert nm.entries[0].action == ACTION_REPLACE and nm.warnings == []


def test_oru_sc_order_control_of_the_v20_examples_is_accepted_with_warning():
    nm = norm(oru("SC", "C", b64(cda("DOC-2", parent="DOC-1"))))
    assert nm.entries[0].action == ACTION_REPLACE
    assert any("ORC[4]-1" in w for w in nm.warnings)


def test_mdm_initial_replace_delete():
    new = norm(mdm("T02", "F", b64(cda("DOC-9"))))
    assert new.entries[0].action == ACTION_NEW
    placeholder = b64("Document médical au format CDA".encode())
    rep = norm(mdm("T10", "C", placeholder, txa13=f"DOC-8^Organisation-Y^{DOC_ROOT}"))
    doc = rep.entries[0]
    assert doc.key == f"document|{DOC_ROOT}^DOC-9"  # TXA-12, no CDA in the payload
    assert (doc.action, doc.replaces_key) == (ACTION_REPLACE, f"document|{DOC_ROOT}^DOC-8")
    assert any("OBX[6]-5" in w and "not a CDA" in w for w in rep.warnings)
    assert doc.masking == EXPECTED_MASKING and doc.effective == "2024-03-15T10:00+01:00"
    dele = norm(mdm("T04", "D", b64(cda("DOC-9"))))
    assert (dele.entries[0].action, dele.entries[0].replaces_key) == (ACTION_DELETE,
                                                                      dele.entries[0].key)


@pytest.mark.parametrize(("trigger", "obx11"), [("T02", "C"), ("T10", "F"), ("T04", "F"),
                                                ("T02", "D")])
def test_mdm_action_mismatch(trigger, obx11):
    with pytest.raises(NormalizationError) as exc:
        norm(mdm(trigger, obx11, b64(cda("DOC-9"))))
    assert exc.value.code == "CISIS_ACTION_MISMATCH"
    assert "MSH-9" in str(exc.value) and "OBX[6]-11" in str(exc.value)


def test_padding_repaired_and_bad_base64_rejected():
    raw = cda("DOC-1")
    while len(raw) % 3 == 0:
        raw += b"\n"
    data = b64(raw)
    assert data.endswith("=")
    nm = norm(oru("NW", "F", data.rstrip("=")))
    assert nm.entries[0].key == f"document|{DOC_ROOT}^DOC-1"
    assert nm.entries[0].attachment.encoding_note == "base64 padding repaired"
    assert any("padding" in w for w in nm.warnings)
    with pytest.raises(NormalizationError) as exc:
        norm(oru("NW", "F", "PD94bWw*!!"))
    assert (exc.value.code, exc.value.location) == ("ED_BAD_BASE64", "OBX[6]-5")


def test_lenient_base64_helper():
    assert b64decode_lenient("Q29ycHM") == (b"Corps", "base64 padding repaired")
    assert b64decode_lenient("Q29ycHM=") == (b"Corps", None)
    assert b64decode_lenient("Q29y\r\ncHM=") == (b"Corps", None)
    assert b64decode_lenient("Q29ycHMx")[0] == b"Corps1"
    assert b64decode_lenient("Q29ycHMxQ")[1].startswith("base64 data truncated")
    assert media_type("TEXT", "XML") == "text/xml"
    assert media_type("AP", "PDF") == "application/pdf"
    assert media_type("application", "pdf") == "application/pdf"
    assert media_type("TEXT", "") == "text/plain"
    assert media_type("??", "??") == "application/octet-stream"


def test_placeholder_payload_is_kept_with_a_warning():
    nm = norm(oru("NW", "F", b64(b"Document medcial au format CDA niveau 1")))
    doc = nm.entries[0]
    assert doc.key == "document|1001-E1|labo|1"  # filler order + OBX set id
    assert doc.attachment.data == b"Document medcial au format CDA niveau 1"
    assert any("payload is not a CDA document" in w for w in nm.warnings)


def test_replacement_without_cda_replaces_the_same_slot():
    nm = norm(oru("RO", "C", b64(b"placeholder")))
    doc = nm.entries[0]
    assert (doc.action, doc.replaces_key) == (ACTION_REPLACE, doc.key)


def test_cda_of_another_patient_goes_to_quarantine():
    other = "277076322082910"
    nm = norm(oru("NW", "F", b64(cda("DOC-1", nir=other, oid="1.2.250.1.213.1.4.8"))))
    assert nm.quarantine_reasons and nm.quarantine_reasons[0].startswith(
        "CISIS_PATIENT_MISMATCH OBX[6]-5")
    assert nm.entries[0].details["patient_mismatch"] is True
    assert all(other not in r and NIR not in r for r in nm.quarantine_reasons + nm.warnings)


def test_hostile_xml_is_not_expanded():
    xxe = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1.2" extension="&x;"/>'
           b"<title>&x;</title></ClinicalDocument>")
    nm = norm(oru("NW", "F", b64(xxe)))
    doc = nm.entries[0]
    assert b"root:" not in doc.attachment.data
    assert "root:" not in repr(doc.details)
    laughs = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
              b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
              b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
              b'<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1.2"/><title>&c;&c;</title>'
              b"</ClinicalDocument>")
    header = read_cda_header(laughs)
    assert header is None or "aaaa" not in header.title


def test_header_reader_stops_at_the_body():
    broken_body = cda("DOC-1", tail="</component><oops></ClinicalDocument>")
    header = read_cda_header(broken_body)
    assert header is not None and header.document_id == f"{DOC_ROOT}^DOC-1"
    assert header.patient_ids == [(TEST_OID, NIR)]
    assert read_cda_header(b"<html/>") is None
    assert read_cda_header(b"\xef\xbb\xbf  not xml") is None
    assert read_cda_header(b'<ClinicalDocument xmlns="urn:other"/>') is None


def test_v1_meta_codes_without_coding_system():
    text = oru("NW", "F", b64(cda("DOC-1")), profile="1.2^CISIS_CDA_HL7_V1")
    text = text.replace("^MetaDMPMSS", "").replace(
        "INVISIBLE_PATIENT^Document Non Visible par le patient",
        "INVISIBLE_REPRESENTANTS_LEGAUX^Non visible par les représentants légaux")
    doc = norm(text).entries[0]
    assert doc.masking["INVISIBLE_REP_LEGAUX"] is True and "INVISIBLE_PATIENT" not in doc.masking


def test_mdm_without_txa_or_document():
    with pytest.raises(NormalizationError) as exc:
        norm(re.sub(r"TXA\|[^\r]*\r", "", mdm("T02", "F", b64(cda("DOC-9")))))
    assert exc.value.code == "MDM_NO_TXA"
    with pytest.raises(NormalizationError) as exc:
        norm(re.sub(r"OBX\|1\|ED[^\r]*\r", "", mdm("T02", "F", b64(cda("DOC-9")))))
    assert exc.value.code == "MDM_NO_DOCUMENT"


# -- the ANS examples -----------------------------------------------------------------------------
ANS = CORPUS / "hl7v2"
_ACTIONS = {"Transmission_initiale": ACTION_NEW, "Remplacement": ACTION_REPLACE,
            "Suppression": ACTION_DELETE}


def _ans_messages() -> list[Path]:
    if not ANS.is_dir():
        return []
    return sorted(p for p in ANS.iterdir()
                  if p.suffix in (".er7", ".hl7") and "_ack" not in p.name
                  and ("_ORU_" in p.name or "_MDM_" in p.name))


@functools.cache
def _norm_ans(path: Path):  # noqa: ANN202
    """Each ANS example normalized once for the module (the tests only read the result): the
    ones carrying a scanned PDF cost seconds of OCR, and three are read by two tests."""
    return norm(path.read_text(encoding="utf-8"))


@pytest.mark.corpus
@pytest.mark.skipif(not ANS.is_dir(), reason="shared corpus absent")
@pytest.mark.parametrize("path", _ans_messages(), ids=lambda p: p.name[-60:])
def test_ans_example(path: Path):
    nm = _norm_ans(path)
    expected = next((a for k, a in _ACTIONS.items() if k in path.name), ACTION_NEW)
    docs = [e for e in nm.entries if e.type == DOCUMENT]
    assert docs  # the ED OBX are documents, never lab results of the message...
    doc_keys = {d.key for d in docs}
    for e in nm.entries:  # ...and what else there is comes from inside the CDA documents
        if e.type != DOCUMENT:
            assert e.parent_key in doc_keys and e.source_ref.startswith("/ClinicalDocument")
            assert e.masking == next(d.masking for d in docs if d.key == e.parent_key)
    for doc in docs:
        assert doc.action == expected
        assert doc.masking and set(doc.masking.values()) <= {True, False}
        assert doc.attachment is not None and doc.attachment.data
        if expected == ACTION_DELETE:
            assert doc.replaces_key == doc.key
    if expected == ACTION_REPLACE:
        assert any(d.replaces_key for d in docs)
    text = " ".join(nm.warnings + nm.quarantine_reasons)
    assert nm.identity.ins and nm.identity.ins[0].nir not in text
    assert nm.identity.family not in text


@pytest.mark.corpus
@pytest.mark.skipif(not ANS.is_dir(), reason="shared corpus absent")
def test_ans_cda_ids_and_versions():
    rplc = ANS / ("Volets_TRANS_DOC_CDA_HL7V2_V2.0_ORU_Remplacement_ORU_message_ORU_CR_Bio_"
                  "RPLC_N1_Base64_N3_Base64.er7")
    n1, n3 = [e for e in _norm_ans(rplc).entries if e.type == DOCUMENT]
    assert (n1.key, n1.replaces_key) == ("document|1.2.250.1.213.1.1.12",
                                         "document|1.2.250.1.213.1.1.10")
    assert n1.details["cda"]["version_number"] == "2"
    assert n3.key == "document|1.2.250.1.213.1.1.11"
    init = ANS / ("Volets_TRANS_DOC_CDA_HL7V2_V2.0_MDM_Transmission_initiale_MDM_message_MDM_CR_"
                  "Radio_INIT_N1_Base64.er7")
    doc = _norm_ans(init).entries[0]
    assert doc.key == "document|1.2.250.1.71.4.2.2.120456789^A71024000081"
    assert doc.masking == {"MASQUE_PS": False, "INVISIBLE_PATIENT": True,
                           "INVISIBLE_REP_LEGAUX": True, "CONNEXION_SECRETE": True,
                           "MODIF_CONF_CODE": False, "DESTDMP": True, "DESTMSSANTEPS": True,
                           "DESTMSSANTEPAT": False, "ACK_RECEPTION": False,
                           "ACK_LECTURE_MSS": False}
    assert doc.details["CORPSMAIL_PS"].startswith("Cher confrère")


@pytest.mark.corpus
@pytest.mark.skipif(not ANS.is_dir(), reason="shared corpus absent")
def test_ans_v21_examples_embed_another_patients_cda():
    # Surprising but true: the v2.1 ORU examples carry the v2.0 CDA (another test patient).
    path = ANS / ("Volets_TRANS_DOC_CDA_HL7V2_V2.1_ORU_Remplacement_ORU_message_ORU_CR_Bio_"
                  "RPLC_N1_Base64_N3_Base64.er7")
    nm = _norm_ans(path)
    assert len(nm.quarantine_reasons) == 2
    assert all(r.startswith("CISIS_PATIENT_MISMATCH") for r in nm.quarantine_reasons)


def test_mdm_carrying_a_pdf_report_adds_the_report_read_from_it():
    """An imaging report sent as a PDF in an MDM ED goes through the PDF path (text layer or
    OCR, then its fields): one report entry under the document, with the message's masking."""
    from tests.conftest import SAMPLES

    pdf = (SAMPLES / "pdf" / "01_irm_genou_droit_K1_texte.pdf").read_bytes()
    text = mdm("T02", "F", base64.b64encode(pdf).decode()).replace(
        "^text^XML^Base64^", "^AP^PDF^Base64^")
    nm = norm(text)
    docs = [e for e in nm.entries if e.type == DOCUMENT]
    reports = [e for e in nm.entries if e.type == "imaging_report"]
    assert len(docs) == 1 and docs[0].attachment.media_type == "application/pdf"
    assert len(reports) == 1
    report = reports[0]
    assert report.parent_key == docs[0].key and report.masking == docs[0].masking
    assert (report.code, report.effective) == ("MR", "2025-03-14")
    assert report.details["fields"]["conclusion"]["source"] == "text"


def test_restricted_cda_is_masked_whatever_the_message_flags_say():
    """A CDA whose confidentialityCode is R or V is masked to professionals when received as
    a file (tables/cda_confidentiality.csv); carried in HL7v2 it took only the MetaDMPMSS
    flags and was shown to every professional when they said nothing, or N."""
    restricted = cda("DOC-R").replace(b'<confidentialityCode code="N"',
                                      b'<confidentialityCode code="V"')
    flagged = norm(oru("NW", "F", b64(restricted)))
    assert flagged.entries[0].masking == {**EXPECTED_MASKING, "MASQUE_PS": True}
    assert any("confidentialityCode 'V'" in w for w in flagged.warnings)
    bare = "\r".join(s for s in oru("NW", "F", b64(restricted)).split("\r")
                     if "MetaDMPMSS" not in s)
    assert norm(bare).entries[0].masking == {"MASQUE_PS": True}
    assert norm(oru("NW", "F", b64(cda("DOC-N")))).entries[0].masking == EXPECTED_MASKING


def test_deletion_without_its_cda_finds_the_document_its_txa_names_root_dot_extension():
    """The ANS MDM examples write TXA-12 as the CDA id's root and extension joined by '.'
    (EI.1 alone). The initial T02 carried the CDA (key root^extension); the T04 deletion
    carried a placeholder, was keyed 'root.extension' and deleted nothing: the document
    stayed current. Such an id is read as the CDA II it is; a plain number is kept."""
    txa12 = f"DOC-9^Organisation-Y^{DOC_ROOT}"
    initial = norm(mdm("T02", "F", b64(cda("DOC-9")))).entries[0]
    placeholder = b64("Document médical au format CDA".encode())
    deletion = norm(mdm("T04", "D", placeholder).replace(
        txa12, f"{DOC_ROOT}.DOC-9^Organisation-Y")).entries[0]
    assert deletion.action == ACTION_DELETE
    assert deletion.replaces_key == deletion.key == initial.key
    local = norm(mdm("T02", "F", placeholder).replace(txa12, "20240315.42^Organisation-Y"))
    assert local.entries[0].key == "document|20240315.42|Organisation-Y"


def test_replacement_without_a_parent_replaces_the_first_version_of_its_set():
    """A replacement (ORC RO, OBX-11 C) whose CDA has no relatedDocument RPLC (the ANS ORU
    examples' level-3 CR-BIO): the warning promised a match by setId that nothing made, and
    the first version stayed current beside the second. The first version of a document is
    identified by its setId: the replacement replaces it."""
    first = norm(oru("NW", "F", b64(cda("SET-1")))).entries[0]
    nm = norm(oru("RO", "C", b64(cda("DOC-2"))))
    second = nm.entries[0]
    assert (second.action, second.replaces_key) == (ACTION_REPLACE, first.key)
    assert any("first version of its set" in w for w in nm.warnings)


@pytest.mark.parametrize("declared", ["UTF-8", "ISO-8859-1"])
def test_cda_sent_as_text_is_read_in_the_encoding_it_declares(declared: str):
    """A CDA in OBX-5 as text (no base64), whose declaration says ISO-8859-1: read in the
    message's charset, it was written out as UTF-8 under that declaration and every accented
    word of the document and of its entries read 'hÃ©matologie'."""
    xml = cda("DOC-T").decode().replace('encoding="UTF-8"', f'encoding="{declared}"').replace(
        "Compte rendu d'examens biologiques", "Compte rendu d'hématologie")
    payload = xml.replace("\r", "").replace("\n", "\\X0A\\")
    doc = norm(oru("NW", "F", "X").replace("^TEXT^XML^Base64^X", "^TEXT^XML^^" + payload)
               ).entries[0]
    assert doc.display == "Compte rendu d'hématologie"
    assert doc.attachment.data.decode(declared).startswith("<?xml")
