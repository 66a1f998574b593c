"""CDA senders, round 24: data type names in the wrong case, scanned pages in a nonXMLBody,
the sender's own lab flag and its code system, the legal authenticator in the FHIR export.

Each case is what a real sender writes that the round before lost or misread; see the
docstrings for the input and why.
"""

from __future__ import annotations

import base64
import io
from dataclasses import asdict
from datetime import UTC, datetime

import pytest
from PIL import Image

from dossiers.fhir import to_bundle
from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from tests.test_cda_real_world import HEAD, TAIL, _section
from tests.test_documents_senders_round9 import _scanned_page
from tests.test_fhir_export import check_bundle
from tests.test_lab_normalizer import norm

PATIENT = {"id": 1, "family": "LEFÈVRE", "given": "Anaïs", "birth_date": "1978-09-02",
           "sex": "F", "ins": None}


def _normalized(*sections: str, head: str = HEAD):  # noqa: ANN202
    data = (head + "".join(sections) + TAIL).encode()
    return normalize_cda(parse_cda(data), data, "test")


def _bundle(entries: list) -> dict:
    return to_bundle(PATIENT, [{**asdict(e), "id": n} for n, e in enumerate(entries, 1)])


def _result(value: str, code: str = "2345-7", extra: str = "") -> str:
    return _section("30954-2", "Glycémie à jeun", f"""<entry>
      <observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
      <id root="1.2.250.1.999.13.4" extension="RES-{code}"/>
      <code code="{code}" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      <effectiveTime value="20240311080000+0100"/>{value}{extra}</observation></entry>""")


# -- data type names in lower case or under a prefix bound to the HL7 v3 namespace --------------
@pytest.mark.parametrize(("value", "filed", "warned"), [
    ('<value xsi:type="pq" value="5.4" unit="mmol/L"/>', ("5.4", 5.4, "mmol/L", "PQ"), True),
    ('<value xmlns:hl7="urn:hl7-org:v3" xsi:type="hl7:PQ" value="5.4" unit="mmol/L"/>',
     ("5.4", 5.4, "mmol/L", "PQ"), False),
    ('<value xmlns:v3="urn:hl7-org:v3" xsi:type="v3:pq" value="5.4" unit="mmol/L"/>',
     ("5.4", 5.4, "mmol/L", "PQ"), True),
    ('<value xsi:type="Ivl_Pq"><low value="3.9" unit="mmol/L"/></value>',
     (">=3.9", 3.9, "mmol/L", "IVL_PQ"), True),
    ('<value xmlns:v3="urn:hl7-org:v3" xsi:type="v3:cd" code="260385009" '
     'codeSystem="2.16.840.1.113883.6.96" displayName="Négatif"/>',
     ("Négatif", None, None, "CD"), True),
    # what the rule is not about: the right case; a type no case makes known
    ('<value xsi:type="PQ" value="5.4" unit="mmol/L"/>', ("5.4", 5.4, "mmol/L", "PQ"), False),
    ('<value xsi:type="xyz" value="5.4"/>', ("5.4", None, None, "xyz"), False)])
def test_a_data_type_in_the_wrong_case_keeps_its_value(value: str, filed: tuple,
                                                       warned: bool) -> None:
    """'pq' for PQ (seen from a LIS export written by hand-made templates) was read as a
    type we do not model: the number and unit were lost. Type names are read whatever
    their case, said as CDA_XSI_TYPE_CASE; a prefix bound to urn:hl7-org:v3 was already
    read, and stays without a warning."""
    msg = _normalized(_result(value))
    (result,) = msg.entries[1:]
    assert (result.value, result.value_num, result.unit, result.value_type) == filed
    assert any(w.startswith("CDA_XSI_TYPE_CASE") for w in msg.warnings) is warned
    assert not any(w.startswith("CDA_XSI_TYPE_NAMESPACE") for w in msg.warnings)
    check_bundle(_bundle(msg.entries))


# -- a lab's own flag: its code system kept, exported beside the standard one ------------------
V3 = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
SOURCE_FLAGS = "urn:dmp/CodeSystem/interpretation/labo-cerballiance"
LINK = [{"import_id": 7, "source": "labo-cerballiance", "relation": "created",
         "created_at": datetime(2024, 3, 12, 9, 5, tzinfo=UTC)}]


def _observation(entries: list) -> dict:
    rows = [{**asdict(e), "id": n} for n, e in enumerate(entries, 1)]
    bundle = to_bundle(PATIENT, rows, provenance={n: LINK for n in range(1, len(rows) + 1)})
    check_bundle(bundle)
    return next(e["resource"] for e in bundle["entry"]
                if e["resource"]["resourceType"] == "Observation")


@pytest.mark.parametrize(("sent", "filed", "details", "exported"), [
    # a lab's own flag translated to ObservationInterpretation: both codings
    ('<interpretationCode code="ELEVE" codeSystem="1.2.250.1.999.13.9" displayName="Élevé">'
     '<translation code="H" codeSystem="2.16.840.1.113883.5.83"/></interpretationCode>', "H",
     {"interpretation_local": ["ELEVE"],
      "interpretation_systems": {"ELEVE": "1.2.250.1.999.13.9"}},
     [{"coding": [{"system": V3, "code": "H"},
                  {"system": "urn:oid:1.2.250.1.999.13.9", "code": "ELEVE"}]}]),
    # a SNOMED CT qualifier read as H: SNOMED's system, by its FHIR URI
    ('<interpretationCode code="281302008" codeSystem="2.16.840.1.113883.6.96"/>', "H",
     {"interpretation_local": ["281302008"],
      "interpretation_systems": {"281302008": "SNOMED-CT"}},
     [{"coding": [{"system": V3, "code": "H"},
                  {"system": "http://snomed.info/sct", "code": "281302008"}]}]),
    # a lab's own flag alone: under its own system, no longer the source's guess
    ('<interpretationCode code="++" codeSystem="1.2.250.1.999.13.9"/>', "++",
     {"interpretation_systems": {"++": "1.2.250.1.999.13.9"}},
     [{"coding": [{"system": "urn:oid:1.2.250.1.999.13.9", "code": "++"}], "text": "++"}]),
    # what the rule is not about: a standard flag, nothing new
    ('<interpretationCode code="H" codeSystem="2.16.840.1.113883.5.83"/>', "H", {},
     [{"coding": [{"system": V3, "code": "H"}]}]),
    ('<interpretationCode code="L" codeSystem="2.16.840.1.113883.12.78"/>', "L", {},
     [{"coding": [{"system": V3, "code": "L"}]}])])
def test_a_cda_labs_own_flag_keeps_its_system_and_is_exported(sent: str, filed: str,
                                                             details: dict,
                                                             exported: list) -> None:
    """A CDA lab's interpretationCode in its own code system ('ELEVE' translated to H) was
    filed H with 'ELEVE' in details.interpretation_local, its codeSystem dropped, and the
    export said H alone. The system is kept (details.interpretation_systems, our name for
    it) and the lab's flag is a second coding of Observation.interpretation."""
    msg = _normalized(_result('<value xsi:type="PQ" value="7.9" unit="mmol/L"/>',
                              extra=sent))
    (result,) = msg.entries[1:]
    assert result.interpretation == filed
    assert {k: v for k, v in result.details.items()
            if k.startswith("interpretation")} == details
    assert _observation(msg.entries)["interpretation"] == exported


MSH = ("MSH|^~\\&|SIL-BIO|CERBALLIANCE|DMP-INTAKE|GHT|20240315104500||ORU^R01^ORU_R01|{}|P|2.5"
       "|||||FRA|UNICODE UTF-8")
PID = "PID|1||LD-778^^^CERBALLIANCE&1.2.250.1.999.42&ISO^PI||LEFÈVRE^Anaïs^^^^^L||19780902|F"


@pytest.mark.parametrize(("obx8", "filed", "details", "exported"), [
    ("HAUT^Haut^L^H^High^HL70078", "H",
     {"interpretation_local": ["HAUT"], "interpretation_systems": {"HAUT": "L"}},
     [{"coding": [{"system": V3, "code": "H"},
                  {"system": SOURCE_FLAGS, "code": "HAUT"}]}]),
    ("H^High^HL70078^281302008^Above reference range^SCT", "H",
     {"interpretation_local": ["281302008"],
      "interpretation_systems": {"281302008": "SNOMED-CT"}},
     [{"coding": [{"system": V3, "code": "H"},
                  {"system": "http://snomed.info/sct", "code": "281302008"}]}]),
    ("+^Positif^99CERB", "+", {"interpretation_systems": {"+": "99CERB"}},
     [{"coding": [{"system": SOURCE_FLAGS, "code": "+"}], "text": "+"}]),
    # not about it: table 0078 alone, a bare flag
    ("H^Élevé^HL70078", "H", {}, [{"coding": [{"system": V3, "code": "H"}]}]),
    ("H", "H", {}, [{"coding": [{"system": V3, "code": "H"}]}])])
def test_an_obx8_cwe_keeps_the_senders_code_and_system(obx8: str, filed: str, details: dict,
                                                       exported: list) -> None:
    """OBX-8 coded as a CWE (v2.7+) with the LIS code beside table 0078's: the LIS code and
    its coding system were lost at normalisation. Kept as a CDA lab's are, and exported as
    the second coding (a system name of the sender's own, 'L' or '99CERB', under the
    sender's flags system; SNOMED CT under its URI)."""
    sent = "\r".join([MSH.format("FLAG-SYS-1"), PID,
                      "ORC|RE|CMD-1^SERVICE-NEPHRO|24C0315-07^CERBALLIANCE",
                      "OBR|1|CMD-1^SERVICE-NEPHRO|24C0315-07^CERBALLIANCE|BIO^Bilan^L|||"
                      "202403150810" + "|" * 18 + "F",
                      f"OBX|1|NM|2951-2^Sodium^LN||149|mmol/L|135-145|{obx8}|||F"]) + "\r"
    nm = norm(sent)
    (result,) = nm.entries[1:]
    assert result.interpretation == filed
    assert {k: v for k, v in result.details.items()
            if k.startswith("interpretation")} == details
    assert _observation(nm.entries)["interpretation"] == exported


# -- the legal authenticator in the FHIR export ------------------------------------------------
SIGNER = """<legalAuthenticator><time value="20240312120000+0100"/><signatureCode code="S"/>
  <assignedEntity>{ids}
    <assignedPerson><name><given>Hélène</given><family>Bérard</family></name></assignedPerson>
    <representedOrganization><id root="1.2.250.1.71.4.2.2" extension="1690012345"/>
      <name>Laboratoire Biologie Rhône-Saône</name></representedOrganization>
  </assignedEntity></legalAuthenticator>"""
RPPS = '<id root="1.2.250.1.71.4.2.1" extension="810003456789"/>'
LOCAL = '<id root="1.2.250.1.999.13.3.1" extension="BIO-0042"/>'


@pytest.mark.parametrize(("signer", "kind", "identifier"), [
    (SIGNER.format(ids=LOCAL + RPPS), "Practitioner", "810003456789"),
    (SIGNER.format(ids='<id nullFlavor="UNK"/>'), "Organization", "1690012345"),
    ("", None, None)])
def test_the_legal_authenticator_is_the_documentreference_authenticator(
        signer: str, kind: str | None, identifier: str | None) -> None:
    """The biologist who signed a CR-BIO (legalAuthenticator, kept in details since round
    23) was not in the export. DocumentReference.authenticator (R4 0..1) references her
    Practitioner in the Bundle, by her national PS id when she has a local one too; a
    signer without an id, the Organization she signs for. The other authenticators are
    not exported (no standard extension). No name of the signer is exported."""
    head = HEAD.replace("<custodian>", signer + "<custodian>")
    msg = _normalized(_section("11502-2", "Résultats", ""), head=head)
    bundle = _bundle(msg.entries)
    check_bundle(bundle)
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    (doc,) = [r for r in by_url.values() if r["resourceType"] == "DocumentReference"]
    if kind is None:
        assert "authenticator" not in doc
        return
    signed = by_url[doc["authenticator"]["reference"]]
    assert signed["resourceType"] == kind
    assert identifier in [i["value"] for i in signed["identifier"]]
    assert "Bérard" not in str(bundle)


# -- a scanned page in a nonXMLBody --------------------------------------------------------------
def _level1(media: str, content: bytes) -> bytes:
    head = HEAD.replace("<component><structuredBody>", "")
    return (head + f'<component><nonXMLBody><text mediaType="{media}" representation="B64">'
            f"{base64.b64encode(content).decode()}</text></nonXMLBody></component>"
            "</ClinicalDocument>").encode()


def _png(image: Image.Image, dpi: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", dpi=(dpi, dpi))
    return out.getvalue()


DICOM_FILE = bytes(128) + b"DICM" + bytes(64)  # a DICOM Part 10 file's preamble and prefix


@pytest.mark.parametrize(("media", "image", "said"), [
    # a scanning station's A6 page at 200 dpi: read by OCR, its report filed
    ("image/png", _scanned_page(), None),
    # a photograph (a dermatology picture, 4:3 at 72 dpi): kept unread, said
    ("image/png", Image.new("L", (1600, 1200), 128), "IMAGE_NOT_A_PAGE"),
    # the same page said application/octet-stream (an XDS-SD sender's default): its PNG
    # signature says what it is, read as such and said
    ("application/octet-stream", _scanned_page(), "CDA_BODY_MEDIA_TYPE"),
    # a format no reader takes: kept unread, said
    ("application/dicom", None, "CDA_BODY_NOT_READ")])
def test_a_scanned_page_in_a_nonxmlbody_is_read_by_ocr(media: str, image: Image.Image | None,
                                                      said: str | None) -> None:
    """An IHE XDS-SD scan sent as the scanner's image (image/png, image/jpeg, image/tiff)
    rather than a PDF: the document was filed with no report entry and no word of it.
    A page is read by the OCR path of an image in an HL7v2 ED (documents round 9); an
    image that is no page, or a body of a format we do not read, is kept and said."""
    dpi = 72 if said in ("IMAGE_NOT_A_PAGE", "CDA_BODY_NOT_READ") else 200
    data = _level1(media, _png(image, dpi) if image else DICOM_FILE)
    msg = normalize_cda(parse_cda(data), data, "test")
    if said in (None, "CDA_BODY_MEDIA_TYPE"):
        doc, report = msg.entries
        assert (report.type, report.parent_key) == ("imaging_report", doc.key)
        assert "radiographie thoracique normale" in report.value
        assert [w.split(":")[0] for w in msg.warnings] == ([said] if said else [])
    else:
        assert [e.type for e in msg.entries] == ["document"]
        assert [w for w in msg.warnings if said in w]
    check_bundle(_bundle(msg.entries))
