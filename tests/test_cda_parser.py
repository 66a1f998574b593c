"""parsers.cda: the hardened CDA R2 parser, on the public corpus, hostile inputs and mutations.

The corpus tests check each document against an independent count made with lxml on the raw
file (every clinical statement found, every recorded path pointing at the right element), and
a few documents field by field. Hostile inputs must fail with their own code, quickly and
without touching files or the network; random mutations of a real document must never raise
anything but CdaParseError.
"""

from __future__ import annotations

import base64
import pickle
import re
import socket
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from parsers.cda import CdaParseError, iter_acts, iter_sections, parse_cda
from parsers.cda.errors import ERROR_CODES
from parsers.cda.model import (
    BL,
    CD,
    ED,
    II,
    IVL,
    PIVL_TS,
    PQ,
    RTO,
    ST,
    SXPR_TS,
    Act,
    AnyValue,
    Document,
    Observation,
    ObservationMedia,
    Organizer,
    SubstanceAdministration,
)
from tests.conftest import CORPUS, corpus_path

V3 = "urn:hl7-org:v3"
NS = {"v3": V3, "sdtc": "urn:hl7-org:sdtc", "xsl": "http://www.w3.org/1999/XSL/Transform",
      "data": "urn:asip-sante:ci-sis", "pharm": "urn:ihe:pharm:medication",
      "lab": "urn:oid:1.3.6.1.4.1.19376.1.3.2"}
STATEMENT_NAMES = ("observation", "act", "organizer", "substanceAdministration", "supply",
                   "procedure", "encounter", "observationMedia", "regionOfInterest")
CORPUS_FILES = sorted(p.relative_to(CORPUS).as_posix()
                      for p in [*CORPUS.glob("cda/*.xml"), *CORPUS.glob("intl/cda/*.xml")])
# Files of the corpus that are not CDA documents, with the code they must fail with.
EXPECTED_FAILURES = {
    # a C-CDA header fragment: <recordTarget> root, no namespace
    "intl/cda/Multiple_Patient_Identifiers_C-CDAR2.1.xml": "CDA_NOT_CDA",
}
FAST = 2.0  # seconds: hostile inputs are refused well under this


def _corpus(rel: str) -> bytes:
    return corpus_path(*rel.split("/")).read_bytes()


def _wrap(body: str, *, header: str = "", prolog: str = "") -> bytes:
    return (f'{prolog}<ClinicalDocument xmlns="urn:hl7-org:v3" '
            f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f'<id root="1.2.3"/>{header}{body}</ClinicalDocument>').encode()


def _error(data: bytes, **kwargs) -> CdaParseError:
    start = time.perf_counter()
    with pytest.raises(CdaParseError) as info:
        parse_cda(data, **kwargs)
    assert time.perf_counter() - start < FAST
    assert info.value.code in ERROR_CODES
    return info.value


# -- the public corpus ------------------------------------------------------------------------
@pytest.mark.corpus
@pytest.mark.parametrize("rel", CORPUS_FILES or ["cda/(corpus absent)"])
def test_corpus_document(rel: str) -> None:
    data = _corpus(rel)
    expected = EXPECTED_FAILURES.get(rel)
    if expected:
        assert _error(data).code == expected
        return
    doc = parse_cda(data)  # every ANS example parses
    h = doc.header
    assert h.id is not None and h.id.root
    assert h.code is not None and h.code.code
    assert h.record_targets and h.record_targets[0].ids
    assert doc.body_kind in ("structured", "nonXML")
    assert not [w for w in doc.warnings if w.code != "CDA_B64_PADDING"]
    if rel.startswith("cda/"):  # CI-SIS: HL7 France and CI-SIS templates on every document
        assert {"2.16.840.1.113883.2.8.2.1", "1.2.250.1.213.1.1.1.1"} <= h.template_roots
    _check_against_lxml(data, doc)


def _check_against_lxml(data: bytes, doc: Document) -> None:
    """Independent check on the raw tree: same number of clinical statements in the body, and
    every recorded path selects exactly the element it claims (kind and identifiers)."""
    tree = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    cda = tree if tree.tag == f"{{{V3}}}ClinicalDocument" else tree.find(
        "data:Contenu/v3:ClinicalDocument", NS)
    assert cda is not None
    base = tree.getroottree().getpath(cda)  # /xsl:stylesheet/data:Contenu/... or /*
    body = cda.find("v3:component/v3:structuredBody", NS)
    expected = 0 if body is None else sum(
        1 for el in body.iter(*(f"{{{V3}}}{n}" for n in STATEMENT_NAMES)))
    acts = [act for _, act in iter_acts(doc)]
    assert len(acts) == expected
    for act in acts:
        el = _select(cda, base, act.path)
        assert etree.QName(el).localname == act.kind
        assert [i.get("root", "") for i in el.findall("v3:id", NS)] == [i.root for i in act.ids]
    for section in iter_sections(doc):
        el = _select(cda, base, section.path)
        code = el.find("v3:code", NS)
        assert (code.get("code") if code is not None else None) == (
            section.code.code if section.code else None)


def _select(cda: etree._Element, base: str, path: str) -> etree._Element:
    assert path.startswith("/ClinicalDocument")
    steps = [s if ":" in s else f"v3:{s}" for s in path.split("/")[2:]]
    found = cda.xpath("/".join(["."] + steps), namespaces=NS)
    assert len(found) == 1, f"{base} {path}"
    return found[0]


@pytest.mark.corpus
def test_every_ans_example_is_in_the_corpus_run() -> None:
    corpus_path("cda")
    ans = [r for r in CORPUS_FILES if r.startswith("cda/")]
    assert len(ans) >= 50 and not set(ans) & set(EXPECTED_FAILURES)


@pytest.mark.corpus
def test_cr_bio_self_presenting_results() -> None:
    """The CR-BIO in the CI-SIS XSL envelope: 11 results with LOINC codes, PQ values and
    UCUM units, secondary units as translations, reference ranges as IVL_PQ."""
    doc = parse_cda(_corpus("cda/BIO-CR-BIO_2021.01_Auto-Presentable.xml"))
    assert doc.envelope == "xsl:stylesheet"
    h = doc.header
    assert (h.code.code, h.code.code_system) == ("11502-2", "2.16.840.1.113883.6.1")
    assert h.effective_time.value == "20210401171000+0100"
    assert h.confidentiality_code.code == "N"
    assert (h.set_id.root, h.version_number) == ("1.2.250.1.213.1.1.1.55.2021.1", "1")
    patient = h.record_targets[0]
    assert [(i.root, i.extension) for i in patient.ids] == [
        ("1.2.250.1.213.1.4.10", "279035121518989"), ("1.2.3.4.567.8.9.10", "1234567890121")]
    name = patient.names[0]
    assert name.families("BR") == ["PAT-TROIS"] and name.families("CL") == ["PAT-TROIS"]
    assert [g.value for g in name.given] == ["DOMINIQUE MARIE-LOUISE", "DOMINIQUE", "DOMINIQUE"]
    assert patient.administrative_gender.code == "F" and patient.birth_time.value == "19790328"
    assert patient.birthplace.addr.get("county") == "51215"
    author = h.authors[0]
    assert author.time.value == "20210104160527+0100"
    assert [(i.root, i.extension) for i in author.entity.ids] == [
        ("1.2.250.1.71.4.2.1", "801234534765")]  # RPPS
    assert author.entity.organization.names == ["Laboratoire des charmes"]
    assert h.legal_authenticator.signature_code == "S"
    assert h.custodian.organization.ids[0].extension == "1120459876"
    assert h.encounter.effective_time.low.value == "202101040735+0100"
    assert h.encounter.location.code.code == "SA25"
    assert [se.code.code for se in h.documentation_of] == ["18719-5", "18727-8", "18718-7"]
    assert h.documentation_of[0].extensions[0].name == "statusCode"  # lab:statusCode kept
    assert [p.type_code for p in h.participants] == ["REF", "PRF", "INF"]

    results = [a for _, a in iter_acts(doc) if isinstance(a, Observation)]
    assert [(a.code.code, _show(a.values[0])) for a in results] == [
        ("2571-8", "0.62 g/L"), ("2093-3", "1.90 g/L"), ("2085-9", "0.73 g/L"),
        ("13457-7", "1.05 g/L"), ("53049-3", "0.88 g/L"), ("30239-8", "45 [IU]/L"),
        ("1743-4", "49 [IU]/L"), ("2324-2", "65 [IU]/L"), ("1988-5", "ED"),
        ("3016-3", "2.050 m[IU]/L"), ("3024-7", "7.67 pg/mL")]
    assert all(a.code.code_system == "2.16.840.1.113883.6.1" for a in results)
    assert [a.interpretation_codes[0].code for a in results] == list("NNNNNHNHNNL")
    tg = results[0]
    value = tg.values[0]
    assert isinstance(value, PQ) and value.xsi_type == "c:PQ" and str(value.number) == "0.62"
    assert [(t.value, t.code) for t in value.translations] == [("0.71", "mmol/L")]
    assert value.path == tg.path + "/value"
    assert tg.path == ("/ClinicalDocument/component/structuredBody/component/section/"
                       "component[1]/section/entry/act/entryRelationship/organizer/"
                       "component[1]/observation")
    rr = tg.reference_ranges[0]
    assert isinstance(rr.value, IVL) and rr.value.type == "IVL_PQ"
    assert (rr.value.low.value, rr.value.high.value, rr.value.low.unit) == ("0.50", "1.50", "g/L")
    assert rr.value.low_inclusive and rr.value.high_inclusive
    assert tg.effective_time.type == "IVL_TS" and tg.effective_time.value == "20140402145521+0200"
    assert tg.method_codes[0].original_text_reference == "#BL0002"
    section = doc.sections[0].sections[0]
    assert section.narrative_ids["BL0002"] == "...(Colorimétrie enzymatique)"
    assert "Triglycérides | | 0.62 | g/l | | (0.50 - 1.50)" in section.text.splitlines()
    battery = next(a for _, a in iter_acts(doc) if isinstance(a, Organizer))
    assert battery.class_code == "BATTERY" and len(battery.components) == 4
    ldl = results[3].reference_ranges[0].value
    assert ldl.low is None and ldl.high.value == "1.60"


def _show(v) -> str:
    return f"{v.value} {v.unit}" if isinstance(v, PQ) else v.type


@pytest.mark.corpus
def test_ldl_ses_problems_and_medications() -> None:
    doc = parse_cda(_corpus("cda/LDL-SES_2022.01.xml"))
    assert doc.header.code.code == "11490-0"
    acts = [a for _, a in iter_acts(doc)]
    assert sum(isinstance(a, Observation) for a in acts) == 13
    meds = [a for a in acts if isinstance(a, SubstanceAdministration)]
    assert len(meds) == 2
    solian = meds[0]
    assert (solian.consumable.code.code, solian.consumable.code.code_system) == (
        "60019927", "1.2.250.1.213.2.3.1")  # CIS
    assert solian.consumable.code.translations[0].code == "3400934874741"  # CIP
    assert solian.consumable.name == "SOLIAN 100 mg"
    period, frequency = solian.effective_times
    assert isinstance(period, IVL) and (period.low.value, period.high.value) == (
        "20180801", "20191029")
    assert isinstance(frequency, PIVL_TS) and frequency.operator == "A"
    assert (frequency.period.value, frequency.period.unit) == ("1", "d")
    assert solian.dose_quantity.type == "IVL_PQ" and solian.dose_quantity.low.unit == "{tbl}"
    assert solian.rate_quantity.high.value == "100"
    assert isinstance(solian.max_dose_quantity, RTO)
    assert (solian.max_dose_quantity.numerator.value,
            solian.max_dose_quantity.denominator.unit) == ("200", "d")
    allergy = next(a for a in acts if isinstance(a, Act) and "1.2.250.1.213.1.1.3.40"
                   in a.template_roots)
    assert allergy.code.null_flavor == "NA"
    rel = allergy.entry_relationships[0]
    assert (rel.type_code, rel.inversion_ind, rel.act.code.code) == ("SUBJ", "false", "416098002")
    typed = {type(v) for a in acts if isinstance(a, Observation) for v in a.values}
    assert {CD, ST, BL} <= typed


@pytest.mark.corpus
def test_vsm_problems_and_medications() -> None:
    doc = parse_cda(_corpus("cda/VSM_1.4_2022.01.xml"))
    acts = [(s.code.code, a) for s, a in iter_acts(doc)]
    problems = [a.values[0].code for code, a in acts
                if code in ("11450-4", "11348-0") and isinstance(a, Observation)]
    assert problems == ["G45.9", "I20.0", "N10", "I21.1"]  # ICD-10 in CD values
    meds = [a for _, a in acts if isinstance(a, SubstanceAdministration)]
    assert [m.consumable.code.code for m in meds] == ["63564053", "63245753"]
    assert [m.route_code.code for m in meds] == ["20053000", "20053000"]
    assert [m.effective_times[1].period.value for m in meds] == ["1", "6"]
    # the medication's indication: an RSON entryRelationship to an act coded in ICD-10
    assert meds[0].entry_relationships[0].act.code.code == "I20.0"


@pytest.mark.corpus
def test_structured_posology_time_expressions() -> None:
    doc = parse_cda(_corpus("cda/eP-MED-DM_2022.01_PosoStruct.xml"))
    times = [t for _, a in iter_acts(doc) if isinstance(a, SubstanceAdministration)
             for t in a.effective_times]
    sxpr = [t for t in times if isinstance(t, SXPR_TS)]
    assert len(sxpr) == 2
    start, every = sxpr[0].comps
    assert start.low.value == "20211201" and every.operator == "A"
    assert (every.period.value, every.period.unit) == ("8", "h")


@pytest.mark.corpus
@pytest.mark.parametrize("rel", [
    "cda/DOC_NON_STRUCTURE_CDA-R2-N1.xml", "cda/BIO-CR-BIO_2021.01_CDA-R2-Niveau-1.xml",
    "cda/IMG_CR_IMG_2024.01_CDA-R2-Niveau-1.xml", "intl/cda/Unstructured_Document_embed.xml"])
def test_non_xml_body_decodes_to_pdf(rel: str) -> None:
    doc = parse_cda(_corpus(rel))
    body = doc.non_xml_body
    assert doc.body_kind == "nonXML" and not doc.sections
    assert (body.media_type, body.representation) == ("application/pdf", "B64")
    assert body.data.startswith(b"%PDF") and body.decompressed() == body.data
    assert body.path == "/ClinicalDocument/component/nonXMLBody/text"


@pytest.mark.corpus
def test_non_xml_body_by_reference_is_not_fetched() -> None:
    doc = parse_cda(_corpus("intl/cda/Unstructured_Document_reference.xml"))
    assert doc.non_xml_body.reference == "UD_sample.pdf"
    assert doc.non_xml_body.data is None


@pytest.mark.corpus
def test_pdf_in_a_level_3_cr_bio() -> None:
    doc = parse_cda(_corpus("cda/BIO-CR-BIO_2021.01_CR-2nde-intention.xml"))
    media = [a for _, a in iter_acts(doc) if isinstance(a, ObservationMedia)]
    assert len(media) == 1 and media[0].value.media_type == "application/pdf"
    assert media[0].value.data().startswith(b"%PDF")


@pytest.mark.corpus
def test_replacement_and_sdtc_extensions() -> None:
    doc = parse_cda(_corpus("cda/BIO-CR-BIO_2021.01_Microbiologie_V2.xml"))
    rel = doc.header.related_documents[0]
    assert (rel.type_code, rel.ids[0].root) == ("RPLC", "1.2.250.1.213.1.1.1.55.12345.8")
    assert rel.path == "/ClinicalDocument/relatedDocument"
    doc = parse_cda(_corpus("cda/SDM-MR_2022.01.xml"))
    subjects = [a.subject for _, a in iter_acts(doc) if a.subject is not None]
    ext = [e for s in subjects for e in s.person.extensions]
    assert [(e.namespace, e.name, e.attributes["root"]) for e in ext] == [
        ("urn:hl7-org:sdtc", "id", "1.2.3.4.5.6.7.8.9.10")]
    assert ext[0].path.endswith("/relatedSubject/subject/sdtc:id")


# -- small synthetic documents ----------------------------------------------------------------
def cr_bio(results: int) -> bytes:
    """A CR-BIO-like document: one battery of ``results`` PQ results with reference ranges
    and a narrative table (100 results make about 60 KB)."""
    rows, obs = [], []
    for i in range(results):
        rows.append(f"<tr><td>Analyte {i}</td><td>{i}.5</td><td>mmol/L</td>"
                    f"<td>(1.0 - 9.0)</td></tr>")
        obs.append(
            f'<component><observation classCode="OBS" moodCode="EVN">'
            f'<templateId root="1.3.6.1.4.1.19376.1.3.1.6"/><id root="1.2.3.4" extension="{i}"/>'
            f'<code code="{1000 + i}-{i % 10}" codeSystem="2.16.840.1.113883.6.1"/>'
            f'<statusCode code="completed"/><effectiveTime value="20240102103000+0100"/>'
            f'<value xsi:type="PQ" value="{i}.5" unit="mmol/L"/>'
            f'<interpretationCode code="N" codeSystem="2.16.840.1.113883.5.83"/>'
            f'<referenceRange><observationRange><value xsi:type="IVL_PQ">'
            f'<low value="1.0" unit="mmol/L"/><high value="9.0" unit="mmol/L"/></value>'
            f'</observationRange></referenceRange></observation></component>')
    body = (
        '<component><structuredBody><component><section>'
        '<code code="18719-5" codeSystem="2.16.840.1.113883.6.1"/><title>Biochimie</title>'
        f'<text><table><tbody>{"".join(rows)}</tbody></table></text>'
        '<entry typeCode="DRIV"><act classCode="ACT" moodCode="EVN">'
        '<code code="18719-5" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>'
        '<entryRelationship typeCode="COMP"><organizer classCode="BATTERY" moodCode="EVN">'
        f'<statusCode code="completed"/>{"".join(obs)}</organizer></entryRelationship>'
        '</act></entry></section></component></structuredBody></component>')
    header = ('<code code="11502-2" codeSystem="2.16.840.1.113883.6.1"/>'
              '<effectiveTime value="20240102120000+0100"/>'
              '<recordTarget><patientRole><id root="1.2.250.1.213.1.4.10" '
              'extension="279035121518989"/></patientRole></recordTarget>')
    return _wrap(body, header=header, prolog='<?xml version="1.0" encoding="UTF-8"?>\n')


def test_synthetic_cr_bio_with_100_results() -> None:
    data = cr_bio(100)
    doc = parse_cda(data)
    results = [a for _, a in iter_acts(doc) if isinstance(a, Observation)]
    assert len(results) == 100
    assert [v.value for a in results for v in a.values][:3] == ["0.5", "1.5", "2.5"]
    assert len(doc.sections[0].text.splitlines()) == 100
    assert doc.sections[0].text.splitlines()[7] == "Analyte 7 | 7.5 | mmol/L | (1.0 - 9.0)"


def test_narrative_flattening() -> None:
    text = (
        '<text>Intro <content styleCode="Bold">gras</content> suite.'
        '<paragraph ID="p1">Premier\n      paragraphe<br/>ligne 2</paragraph>'
        '<list><item>un</item><item ID="i2">deux <sup>2</sup></item></list>'
        '<table><caption>Tableau</caption><thead><tr><th>A</th><th>B</th></tr></thead>'
        '<tbody><tr><td>1</td><td/></tr><tr><td/><td/></tr></tbody></table>'
        '<renderMultiMedia referencedObject="img1"/>fin</text>')
    body = ('<component><structuredBody><component><section><title> Mon\n titre </title>'
            f'{text}</section></component></structuredBody></component>')
    section = parse_cda(_wrap(body)).sections[0]
    assert section.title == "Mon titre"
    assert section.text.splitlines() == [
        "Intro gras suite.", "Premier paragraphe", "ligne 2", "un", "deux 2", "Tableau",
        "A | B", "1 |", "fin"]
    assert section.narrative_ids == {"p1": "Premier paragraphe\nligne 2", "i2": "deux 2"}


def test_values_typed_by_xsi_type_and_by_schema() -> None:
    obs = (
        '<observation classCode="OBS" moodCode="EVN" negationInd="true">'
        '<effectiveTime><low value="2024" inclusive="false"/></effectiveTime>'
        '<value xsi:type="INT" value="3"/><value xsi:type="REAL" value="1.5e2"/>'
        '<value xsi:type="ED" mediaType="text/plain">texte <b>libre</b></value>'
        '<value xsi:type="CV" code="X" nullFlavor="OTH"><originalText>autre</originalText>'
        '<qualifier><name code="q"/><value code="v"/></qualifier></value>'
        '<value xsi:type="RTO_INT_PQ"><numerator value="1"/><denominator value="2" unit="h"/>'
        '</value><value xsi:type="IVL_TS"><center value="20240101"/></value>'
        '<value xsi:type="v2:QTY" xmlns:v2="urn:other" value="1"/>'
        '<value code="no-type"/></observation>')
    body = ('<component><structuredBody><component><section>'
            f'<entry>{obs}</entry></section></component></structuredBody></component>')
    doc = parse_cda(_wrap(body))
    o = doc.sections[0].entries[0].act
    assert o.negation_ind == "true"
    assert o.effective_time.low.value == "2024" and not o.effective_time.low_inclusive
    i, r, ed, cv, rto, ivl, other, untyped = o.values
    assert i.number == 3 and str(r.number) == "1.5E+2"
    assert isinstance(ed, ED) and ed.text == "texte libre"
    assert (cv.type, cv.code, cv.null_flavor, cv.original_text) == ("CV", "X", "OTH", "autre")
    assert (cv.qualifiers[0][0].code, cv.qualifiers[0][1].code) == ("q", "v")
    assert isinstance(rto.numerator, type(i)) and rto.denominator.unit == "h"
    assert ivl.center.value == "20240101"
    assert isinstance(other, AnyValue) and other.type == "QTY" and other.xsi_type == "v2:QTY"
    assert isinstance(untyped, AnyValue) and untyped.attributes == {"code": "no-type"}
    assert [w.code for w in doc.warnings] == [
        "CDA_XSI_TYPE_NAMESPACE", "CDA_UNKNOWN_XSI_TYPE", "CDA_UNKNOWN_XSI_TYPE"]
    assert doc.warnings[-1].location.endswith("/observation/value[8]")


def test_frequency_period_given_as_an_interval_is_kept() -> None:
    """C-CDA 'every 4 to 6 hours': PIVL_TS/period as an IVL_PQ (was dropped as not a PQ)."""
    sa = ('<substanceAdministration classCode="SBADM" moodCode="EVN">'
          '<effectiveTime xsi:type="PIVL_TS" institutionSpecified="false" operator="A">'
          '<period xsi:type="IVL_PQ"><low value="4" unit="h"/><high value="6" unit="h"/>'
          '</period></effectiveTime><effectiveTime xsi:type="PIVL_TS">'
          '<period value="8" unit="h"/></effectiveTime></substanceAdministration>')
    body = ('<component><structuredBody><component><section>'
            f'<entry>{sa}</entry></section></component></structuredBody></component>')
    ranged, fixed = parse_cda(_wrap(body)).sections[0].entries[0].act.effective_times
    assert isinstance(ranged, PIVL_TS) and isinstance(ranged.period, IVL)
    assert (ranged.period.low.value, ranged.period.high.unit) == ("4", "h")
    assert isinstance(fixed.period, PQ) and fixed.period.value == "8"


def test_empty_body_is_a_warning_not_an_error() -> None:
    doc = parse_cda(_wrap(""))
    assert doc.body_kind == "none" and not doc.sections and doc.non_xml_body is None
    assert [w.code for w in doc.warnings] == ["CDA_NO_BODY"]
    doc = parse_cda(_wrap("<component/>"))
    assert [w.code for w in doc.warnings] == ["CDA_NO_BODY"]


def _level1(b64: str, extra: str = "") -> bytes:
    return _wrap(f'<component><nonXMLBody><text mediaType="application/pdf" '
                 f'representation="B64"{extra}>{b64}</text></nonXMLBody></component>')


def test_non_xml_body_base64_rules() -> None:
    pdf = b"%PDF-1.4 tiny"
    doc = parse_cda(_level1(base64.b64encode(pdf).decode().rstrip("=")))
    assert doc.non_xml_body.data == pdf
    assert [w.code for w in doc.warnings] == ["CDA_B64_PADDING"]
    err = _error(_level1("JVBERi0x!!!not*base64"))
    assert err.code == "CDA_BAD_BASE64"
    assert err.location == "/ClinicalDocument/component/nonXMLBody/text"
    packed = zlib.compressobj(wbits=-15)
    deflated = packed.compress(b"x" * 100_000) + packed.flush()
    doc = parse_cda(_level1(base64.b64encode(deflated).decode(), ' compression="DF"'))
    assert doc.non_xml_body.decompressed() == b"x" * 100_000
    with pytest.raises(CdaParseError) as info:
        doc.non_xml_body.decompressed(max_bytes=1000)  # a compression bomb stays bounded
    assert info.value.code == "CDA_TOO_LARGE"


# -- hostile and broken inputs ----------------------------------------------------------------
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE ClinicalDocument [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&xxe;</title></ClinicalDocument>"""
LAUGHS = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
          + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;")
                                                 * 10) for i in range(1, 10))
          + b']>\n<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&lol9;</title>'
          b"</ClinicalDocument>")
EXTERNAL_DTD = (b'<?xml version="1.0"?>\n<!DOCTYPE ClinicalDocument SYSTEM '
                b'"http://127.0.0.1:9/cda.dtd">\n<ClinicalDocument xmlns="urn:hl7-org:v3"/>')
PARAMETER_ENTITY = (b'<!DOCTYPE x [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x">%remote;]>'
                    b'<ClinicalDocument xmlns="urn:hl7-org:v3"/>')


@pytest.mark.parametrize("data", [
    XXE, LAUGHS, EXTERNAL_DTD, PARAMETER_ENTITY, b"<!DOCTYPE html>",
    b"<!-- a comment first -->\n<?pi x?>\n<!DOCTYPE x []><ClinicalDocument/>",
    b'\xef\xbb\xbf<!ENTITY x "y"><ClinicalDocument xmlns="urn:hl7-org:v3"/>',
    XXE.decode().replace('"1.0"?>', '"1.0" encoding="UTF-16"?>').encode("utf-16"),
    XXE.decode().replace('<?xml version="1.0"?>', "").encode("utf-16-le"),
], ids=["xxe", "billion-laughs", "external-dtd", "parameter-entity", "doctype-only",
        "after-prolog", "entity-bom", "utf16-bom", "utf16-no-bom"])
def test_dtd_is_refused_before_parsing(data: bytes) -> None:
    err = _error(data)
    assert err.code == "CDA_DTD_FORBIDDEN"
    assert "root:" not in err.message  # nothing of /etc/passwd


def test_doctype_hidden_from_the_byte_scan_is_caught_after_the_parse(monkeypatch) -> None:
    from parsers.cda import reader
    monkeypatch.setattr(reader, "_refuse_dtd", lambda data: None)
    assert _error(XXE).code == "CDA_DTD_FORBIDDEN"
    assert _error(LAUGHS).code == "CDA_DTD_FORBIDDEN"


def test_too_deep() -> None:
    deep = _wrap("<component>" * 1000 + "</component>" * 1000)
    assert _error(deep).code == "CDA_TOO_DEEP"
    assert _error(_wrap("<a><b><c/></b></a>"), max_depth=3).code == "CDA_TOO_DEEP"
    parse_cda(_wrap("<a><b/></a>"), max_depth=3)


def test_deep_but_allowed_structures_do_not_exhaust_the_stack() -> None:
    """Nesting up to the limit in sections, entryRelationships and narrative: no RecursionError."""
    sections = ("<component><section>" * 120 + "</section></component>" * 120)
    nested = ('<entryRelationship typeCode="COMP"><act classCode="ACT" moodCode="EVN">' * 120
              + "</act></entryRelationship>" * 120)
    narrative = "<content>" * 240 + "x" + "</content>" * 240
    body = (f"<component><structuredBody><component><section><text>{narrative}</text>"
            f'<entry><act classCode="ACT" moodCode="EVN">{nested}</act></entry></section>'
            f"</component><component><section>{sections}</section></component>"
            "</structuredBody></component>")
    doc = parse_cda(_wrap(body))
    assert len(list(iter_acts(doc))) == 121
    assert len(list(iter_sections(doc))) == 122
    assert doc.sections[0].text == "x"


def test_too_large() -> None:
    big = _wrap("<component><nonXMLBody><text>" + "A" * (60 * 1024 * 1024)
                + "</text></nonXMLBody></component>")
    err = _error(big)
    assert err.code == "CDA_TOO_LARGE" and err.location == ""
    assert _error(_wrap("<title>x</title>" * 200), max_bytes=1024).code == "CDA_TOO_LARGE"


def test_level1_pdf_over_libxml2s_text_node_cap() -> None:
    """A base64 PDF of 8 MB is one text node over libxml2's 10 MB cap: read whole (a second
    parse without the cap), while the depth and DTD guards still hold for such documents."""
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * (8_000_000 // 256)
    doc = parse_cda(_level1(base64.b64encode(pdf).decode()))
    assert doc.non_xml_body.data == pdf
    deep = _wrap("<component>" * 300 + "</component>" * 300
                 + f"<text>{'A' * 10_500_000}</text>")
    assert _error(deep).code == "CDA_TOO_DEEP"
    assert _error(_wrap("<a><b><c/></b></a>" + f"<t>{'A' * 10_500_000}</t>"),
                  max_depth=2).code == "CDA_TOO_DEEP"
    hidden = XXE.replace(b"<title>", b"<text>" + b"A" * 10_500_000 + b"</text><title>")
    assert _error(hidden).code == "CDA_DTD_FORBIDDEN"


@pytest.mark.parametrize(("data", "code"), [
    (b"", "CDA_NOT_XML"),
    (b"\x00\x00\x00\x00", "CDA_NOT_XML"),
    (_wrap("<title>a\x00b</title>"), "CDA_NOT_XML"),
    (_wrap("<title>Fran</title>").replace(b"Fran", b"Fran\xe7ois\xff"), "CDA_NOT_XML"),
    (b"MSH|^~\\&|LAB|FAC|||20240101||ORU^R01|1|P|2.5\rPID|1||123\r", "CDA_NOT_XML"),
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", "CDA_NOT_XML"),
    (b"just some text", "CDA_NOT_XML"),
    (_wrap("<title>x</title>")[:-10], "CDA_NOT_XML"),
    (b'<ClinicalDocument xmlns="urn:hl7-org:v3"><a></b></ClinicalDocument>', "CDA_NOT_XML"),
    (b"<html><body>hello</body></html>", "CDA_NOT_CDA"),
    (b"<ClinicalDocument><id root='1'/></ClinicalDocument>", "CDA_NOT_CDA"),
    (b'<ClinicalDocument xmlns="urn:hl7-org:v2"/>', "CDA_NOT_CDA"),
    (b'<cda:ClinicalDocument xmlns:cda="urn:hl7-org:v3x"/>', "CDA_NOT_CDA"),
    (b'<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0"/>',
     "CDA_NOT_CDA"),
], ids=["empty", "nul-only", "nul-inside", "invalid-utf8", "hl7v2", "pdf", "text",
        "truncated", "mismatched-tags", "html", "no-namespace", "wrong-namespace",
        "wrong-namespace-prefixed", "xsl-without-cda"])
def test_not_a_cda(data: bytes, code: str) -> None:
    err = _error(data)
    assert err.code == code
    if code == "CDA_NOT_XML" and data:
        assert re.fullmatch(r"line \d+, column \d+", err.location)


def test_undecodable_bytes_say_the_encoding_is_wrong() -> None:
    # before: 'not well-formed XML: Invalid bytes in character encoding', libxml2's words only
    err = _error(_wrap("<title>Fran</title>").replace(b"Fran", "François".encode("latin-1")))
    assert err.code == "CDA_NOT_XML" and re.fullmatch(r"line \d+, column \d+", err.location)
    assert "not in the character encoding the XML declaration names" in err.message
    assert "ois" not in err.message
    unknown = _error(b'<?xml version="1.0" encoding="KLINGON"?><ClinicalDocument/>')
    assert "names an encoding this parser does not know" in unknown.message


def test_messages_carry_no_patient_data() -> None:
    data = _wrap('<recordTarget><patientRole><patient><name><family>DUPONT\xe9'
                 '</family></name></patient></patientRole></recordTarget>')
    data = data.replace(b"DUPONT\xc3\xa9", b"DUPONT\xe9\xe9\xe9")  # invalid UTF-8 in a name
    err = _error(data)
    assert err.code == "CDA_NOT_XML"
    assert "DUPONT" not in err.message and "0xE9" not in err.message.upper()


def test_prefixed_root_and_lxml_odd_inputs() -> None:
    doc = parse_cda(b'<?xml version="1.0" encoding="ISO-8859-1"?>\n'
                    b'<cda:ClinicalDocument xmlns:cda="urn:hl7-org:v3"><cda:title>Caf\xe9'
                    b'</cda:title></cda:ClinicalDocument>')
    assert doc.header.title == "Café"
    doc = parse_cda('<ClinicalDocument xmlns="urn:hl7-org:v3"><title>été</title>'
                    '</ClinicalDocument>'.encode("utf-16"))
    assert doc.header.title == "été"
    with pytest.raises(TypeError):
        parse_cda("<ClinicalDocument/>")  # type: ignore[arg-type]


def test_error_is_picklable_and_str_is_the_message() -> None:
    err = _error(b"<html/>")
    back = pickle.loads(pickle.dumps(err))
    assert (back.code, back.message, back.location) == (err.code, err.message, err.location)
    assert str(back) == err.message


# -- mutations of a real document -------------------------------------------------------------
_SEED = "cda/CSE-MDE_2023.01.xml"  # 24 KB, header + organizer + observations


def _seed() -> bytes:
    path = CORPUS / _SEED
    if path.exists():
        return path.read_bytes()
    return cr_bio(20)  # without the corpus, a synthetic document keeps the property tested


_SEED_BYTES = _seed()
_SEED_TREE = etree.fromstring(_SEED_BYTES)
_SEED_ELEMENTS = sum(1 for _ in _SEED_TREE.iter())
_HOSTILE = [b"<!DOCTYPE x>", b"&xxe;", b"\x00", b"\xff\xfe", b"<![CDATA[", b"]]>", b"<", b">",
            b'xsi:type="c:"', b'xsi:type="IVL_"', b'xsi:type="RTO_"', b'representation="B64"',
            b"</component>", b"<component>", b"<section>", b"&#0;", b"&#x110000;", b"\r\n"]


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(_SEED_BYTES)
    kind = draw(st.sampled_from(["flip", "truncate", "delete", "insert", "attribute", "mix"]))
    if kind in ("flip", "mix"):
        for _ in range(draw(st.integers(1, 8))):
            pos = draw(st.integers(0, len(data) - 1))
            data[pos] = draw(st.integers(0, 255))
    if kind in ("truncate", "mix"):
        data = data[: draw(st.integers(0, len(data)))]
    if kind in ("insert", "mix") and data:
        pos = draw(st.integers(0, len(data)))
        data[pos:pos] = draw(st.sampled_from(_HOSTILE))
    if kind == "delete":
        root = etree.fromstring(_SEED_BYTES)
        for _ in range(draw(st.integers(1, 4))):
            elements = [e for e in root.iter() if e.getparent() is not None]
            if not elements:
                break
            victim = elements[draw(st.integers(0, len(elements) - 1))]
            victim.getparent().remove(victim)
        data = bytearray(etree.tostring(root))
    if kind == "attribute":
        root = etree.fromstring(_SEED_BYTES)
        elements = [e for e in root.iter() if isinstance(e.tag, str) and e.attrib]
        victim = elements[draw(st.integers(0, len(elements) - 1))]
        name = draw(st.sampled_from(list(victim.attrib)
                                    + ["{http://www.w3.org/2001/XMLSchema-instance}type"]))
        victim.set(name, draw(st.sampled_from(
            ["", "PQ", "c:IVL_PQ", "RTO_PQ", "SXPR_TS", "ED", "B64", "x:y:z", "IVL_", "RTO_X",
             "ANY", "EIVL_TS", "PIVL_TS", "SXCM_TS", "CD", "false"])))
        data = bytearray(etree.tostring(root))
    return bytes(data)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutations_raise_only_cda_parse_errors(data: bytes) -> None:
    try:
        doc = parse_cda(data)
    except CdaParseError as err:
        assert err.code in ERROR_CODES
        return
    list(iter_acts(doc))  # a document that parses can be walked
    assert isinstance(doc.header.id, II | None)


def test_seed_parses() -> None:
    doc = parse_cda(_SEED_BYTES)
    assert list(iter_acts(doc)) and _SEED_ELEMENTS > 100


def test_parser_options_alone_never_read_files_nor_the_network(tmp_path: Path) -> None:
    """Even with the prolog check out of the way, the lxml options resolve no entity, load no
    DTD and open no connection: a local secret never shows up, a listening socket gets no
    visitor."""
    from parsers.cda.reader import hardened_parser

    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    dtd = tmp_path / "evil.dtd"
    dtd.write_text(f'<!ENTITY leak SYSTEM "file://{secret}">')
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.3)
        port = listener.getsockname()[1]
        hostile = [
            f'<!DOCTYPE x [<!ENTITY leak SYSTEM "file://{secret}">]><x>&leak;</x>',
            f'<!DOCTYPE x SYSTEM "file://{dtd}"><x>&leak;</x>',
            f'<!DOCTYPE x SYSTEM "http://127.0.0.1:{port}/x.dtd"><x>&leak;</x>',
            f'<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:{port}/p">%p;]><x/>',
            f'<!DOCTYPE x [<!ENTITY n SYSTEM "http://127.0.0.1:{port}/n">]><x>&n;</x>',
        ]
        for text in hostile:
            try:
                out = etree.tostring(etree.fromstring(text.encode(), hardened_parser()))
            except etree.XMLSyntaxError:
                out = b""
            assert b"TOP-SECRET" not in out
            assert _error(text.encode()).code == "CDA_DTD_FORBIDDEN"
        with pytest.raises(TimeoutError):
            listener.accept()


def test_xinclude_is_never_processed() -> None:
    doc = parse_cda(b'<ClinicalDocument xmlns="urn:hl7-org:v3" '
                    b'xmlns:xi="http://www.w3.org/2001/XInclude">'
                    b'<xi:include href="file:///etc/passwd" parse="text"/></ClinicalDocument>')
    assert doc.header.extensions[0].name == "include"  # kept as sent, never run


def test_header_sdtc_extensions_and_participations() -> None:
    header = (
        '<code code="11490-0" codeSystem="2.16.840.1.113883.6.1"/>'
        '<recordTarget><patientRole xmlns:sdtc="urn:hl7-org:sdtc">'
        '<id root="1.2.250.1.213.1.4.8" extension="188102B17295165"/>'
        '<id root="1.2.250.1.213.1.4.2" nullFlavor="UNK"/>'
        '<patient><name><family qualifier="BR">MARTIN</family><family qualifier="SP">DURAND'
        '</family><given>Anne Marie</given></name>'
        '<administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1"/>'
        '<birthTime value="1988"/><sdtc:birthTime value="19881002"/>'
        '<sdtc:raceCode code="2106-3" codeSystem="2.16.840.1.113883.6.238"/>'
        '<sdtc:deceasedInd value="true"/><sdtc:deceasedTime value="20240101"/>'
        '</patient></patientRole></recordTarget>'
        '<informant><relatedEntity classCode="PRS"><code code="MTH"/>'
        '<relatedPerson><name>Mère</name></relatedPerson></relatedEntity></informant>'
        '<informationRecipient><intendedRecipient><id root="1.2.250.1.71.4.2.1" extension="8"/>'
        '<informationRecipient><name><family>DOC</family></name></informationRecipient>'
        '</intendedRecipient></informationRecipient>'
        '<relatedDocument typeCode="APND"><parentDocument><id root="9.9" extension="p1"/>'
        '<setId root="9.9" extension="s1"/><versionNumber value="3"/></parentDocument>'
        '</relatedDocument>'
        '<authorization><consent><code code="INFA"/></consent></authorization>'
        '<inFulfillmentOf><order><id root="7.7" extension="o1"/></order></inFulfillmentOf>')
    body = ('<component><structuredBody><component><section ID="s1">'
            '<entry><observation classCode="OBS" moodCode="EVN" ID="o1" '
            'xmlns:sdtc="urn:hl7-org:sdtc"><sdtc:category code="x"/>'
            '<code code="A"><translation code="B"><translation code="C"/></translation></code>'
            '<specimen><specimenRole><specimenPlayingEntity><code code="BLD"/>'
            '</specimenPlayingEntity></specimenRole></specimen>'
            '<participant typeCode="CSM"><participantRole><playingEntity><code code="P"/>'
            '<name>Pollen</name></playingEntity></participantRole></participant>'
            '</observation></entry></section></component></structuredBody></component>')
    doc = parse_cda(_wrap(body, header=header))
    h = doc.header
    rt = h.record_targets[0]
    assert [(i.root, i.extension, i.null_flavor) for i in rt.ids] == [
        ("1.2.250.1.213.1.4.8", "188102B17295165", ""), ("1.2.250.1.213.1.4.2", "", "UNK")]
    assert rt.names[0].families("BR") == ["MARTIN"] and rt.names[0].families("SP") == ["DURAND"]
    assert rt.birth_time.value == "1988" and rt.deceased_ind == "true"
    assert rt.deceased_time.value == "20240101"
    ext = {e.name: e for e in rt.extensions}
    assert ext["birthTime"].attributes == {"value": "19881002"}
    assert ext["raceCode"].attributes["code"] == "2106-3"
    assert ext["raceCode"].path == (
        "/ClinicalDocument/recordTarget/patientRole/patient/sdtc:raceCode")
    assert h.informants[0].entity.person.names[0].text == "Mère"
    assert h.information_recipients[0].entity.person.names[0].families() == ["DOC"]
    rel = h.related_documents[0]
    assert (rel.type_code, rel.ids[0].key, rel.set_id.key, rel.version_number) == (
        "APND", "9.9^p1", "9.9^s1", "3")
    assert [c.code for c in h.authorizations] == ["INFA"]
    assert [i.key for i in h.in_fulfillment_of] == ["7.7^o1"]
    section = doc.sections[0]
    obs = section.entries[0].act
    assert (section.xml_id, obs.xml_id) == ("s1", "o1")
    assert obs.extensions[0].name == "category"
    assert obs.code.translations[0].translations[0].code == "C"
    assert obs.specimens[0].entity.player_code.code == "BLD"
    assert obs.participants[0].entity.player_names == ["Pollen"]


@pytest.mark.corpus
def test_depth_limit_below_the_parser_cap_on_a_real_document() -> None:
    data = _corpus("cda/OPH-BRE_2022.02.xml")
    parse_cda(data, max_depth=40)
    start = time.perf_counter()
    assert _error(data, max_depth=12).code == "CDA_TOO_DEEP"
    assert time.perf_counter() - start < 0.5


def test_paths_index_only_repeated_names_whatever_their_order() -> None:
    """kids() numbers a name from its second occurrence on, fixing up the first: interleaved
    repeats, a name seen three times and foreign namespaces all get XPath's indexes."""
    from parsers.cda.datatypes import kids

    root = etree.fromstring(
        b'<x xmlns="urn:hl7-org:v3" xmlns:sdtc="urn:hl7-org:sdtc"><a/><b/><a/><c/>'
        b'<sdtc:a/><b/><a/><sdtc:a/><d/></x>')
    got = [(n, p) for n, _, p in kids(root, "/x")]
    assert got == [("a", "/x/a[1]"), ("b", "/x/b[1]"), ("a", "/x/a[2]"), ("c", "/x/c"),
                   ("sdtc:a", "/x/sdtc:a[1]"), ("b", "/x/b[2]"), ("a", "/x/a[3]"),
                   ("sdtc:a", "/x/sdtc:a[2]"), ("d", "/x/d")]
    for _, el, path in kids(root, "/x"):
        step = path.removeprefix("/x/")
        step = step if ":" in step else f"v3:{step}"
        assert root.xpath(f"/v3:x/{step}", namespaces=NS) == [el]


def test_the_garbage_collector_is_left_as_it_was() -> None:
    """parse_cda pauses the cyclic GC during the walk: it is back on afterwards, errors
    raised during the walk included, and a caller that had it off finds it still off."""
    import gc

    assert gc.isenabled()
    parse_cda(_level1(base64.b64encode(b"%PDF-1.4 tiny").decode()))
    assert gc.isenabled()
    assert _error(_level1("JVBERi0x!!!not*base64")).code == "CDA_BAD_BASE64"
    assert gc.isenabled()
    gc.disable()
    try:
        parse_cda(_level1(base64.b64encode(b"%PDF-1.4 tiny").decode()))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_several_statements_in_one_entry_are_all_kept() -> None:
    """The schema allows one clinical statement per entry; eHDSI patient summaries put two
    observations in one: the second silently replaced the first. Each is an entry of its
    own (same entry path and templates), with a warning that says so."""
    from parsers.cda.errors import CDA_SEVERAL_STATEMENTS

    body = """<component><structuredBody><component><section>
      <code code="10162-6" codeSystem="2.16.840.1.113883.6.1"/>
      <entry typeCode="DRIV"><templateId root="1.2.250.1.999.8"/>
        <observation classCode="OBS" moodCode="EVN"><code code="281050002"
          codeSystem="2.16.840.1.113883.6.96"/><value xsi:type="INT" value="2"/></observation>
        <observation classCode="OBS" moodCode="EVN"><code code="57797005"
          codeSystem="2.16.840.1.113883.6.96"/><value xsi:type="INT" value="1"/></observation>
      </entry></section></component></structuredBody></component>"""
    xml = (f'<ClinicalDocument xmlns="urn:hl7-org:v3" '
           f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">{body}</ClinicalDocument>')
    doc = parse_cda(xml.encode())
    entries = doc.sections[0].entries
    assert [e.act.code.code for e in entries] == ["281050002", "57797005"]
    assert [e.type_code for e in entries] == ["DRIV", "DRIV"]
    assert entries[1].template_ids[0].root == "1.2.250.1.999.8"
    assert entries[1].act.path.endswith("/entry/observation[2]")
    assert [w.code for w in doc.warnings] == [CDA_SEVERAL_STATEMENTS]


def test_several_statements_in_one_entry_relationship_are_all_kept() -> None:
    """The same in an entryRelationship: a producer nesting a problem's status and its
    severity in one entryRelationship lost the status. Each statement is an
    entryRelationship of its own (same typeCode and path), with the same warning."""
    from parsers.cda.errors import CDA_SEVERAL_STATEMENTS

    body = """<component><structuredBody><component><section>
      <code code="11450-4" codeSystem="2.16.840.1.113883.6.1"/>
      <entry><observation classCode="OBS" moodCode="EVN"><code code="55607006"
          codeSystem="2.16.840.1.113883.6.96"/>
        <entryRelationship typeCode="REFR" inversionInd="true"><sequenceNumber value="1"/>
          <observation classCode="OBS" moodCode="EVN"><code code="33999-4"
            codeSystem="2.16.840.1.113883.6.1"/></observation>
          <observation classCode="OBS" moodCode="EVN"><code code="SEV"
            codeSystem="2.16.840.1.113883.5.4"/></observation>
        </entryRelationship></observation>
      </entry></section></component></structuredBody></component>"""
    xml = (f'<ClinicalDocument xmlns="urn:hl7-org:v3" '
           f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">{body}</ClinicalDocument>')
    doc = parse_cda(xml.encode())
    rels = doc.sections[0].entries[0].act.entry_relationships
    assert [r.act.code.code for r in rels] == ["33999-4", "SEV"]
    assert [(r.type_code, r.inversion_ind, r.sequence_number) for r in rels] == [
        ("REFR", "true", "1"), ("REFR", "true", "1")]
    assert rels[1].path == rels[0].path
    assert rels[1].act.path.endswith("/entryRelationship/observation[2]")
    assert [w.code for w in doc.warnings] == [CDA_SEVERAL_STATEMENTS]
