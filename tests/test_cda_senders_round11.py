"""CDA R2 documents the way other senders write them (round 11: the CI-SIS document types we
read least: CR-GM molecular genetics, anaesthesia, imaging reports, allergies in the LDL and
ANEST letters). Each test builds a small invented document with one structure the CI-SIS
templates allow (other optional elements filled in than the ANS examples) and checks what is
filed against what a clinician reading the document understands."""

from __future__ import annotations

import base64

import pytest

from dossiers.deposit import fact_of
from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from pipelines.documents import embedded_pdf
from tests.test_cda_real_world import _entries, _level1, _one, _section

LOINC = 'codeSystem="2.16.840.1.113883.6.1"'
SNOMED = 'codeSystem="2.16.840.1.113883.6.96"'


# -- CR-GM: a variant is a variant of its gene ------------------------------------------------
def _subordinate(ident: str, code: str, name: str, value: str) -> str:
    """CI-SIS FR-Observation-Anatomo-pathologique-subordonnee (1.2.250.1.213.1.1.3.170)."""
    return f"""<entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.2.250.1.213.1.1.3.170"/><id root="1.2.250.1.999.41" extension="{ident}"/>
      <code code="{code}" displayName="{name}" {LOINC}/><statusCode code="completed"/>
      <effectiveTime value="20240311143000+0100"/>
      <value xsi:type="ST">{value}</value></observation></entryRelationship>"""


def _gene(ident: str, gene: str, variant: str, protein: str) -> str:
    """A gene analysed (IHE APSR / CI-SIS FR-Observation-Anatomo-pathologique, HGNC value)
    with its reference sequence, variant (HGVS c.) and protein change (HGVS p.)."""
    return f"""<component typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.8.1.4.9"/><templateId root="1.2.250.1.213.1.1.3.102"/>
      <id root="1.2.250.1.999.41" extension="{ident}"/>
      <code code="48018-6" displayName="Gène étudié" {LOINC}/><statusCode code="completed"/>
      <effectiveTime value="20240311143000+0100"/>
      <value xsi:type="CD" code="{gene}" displayName="{gene}" codeSystem="2.16.840.1.113883.6.281"
        codeSystemName="HGNC"/>
      {_subordinate(ident + "-seq", "48013-7", "Séquence de référence", "NM_033360.4")}
      {_subordinate(ident + "-c", "48004-6", "Variant (HGVS c.)", variant)}
      {_subordinate(ident + "-p", "48005-3", "Altération protéique (HGVS p.)", protein)}
    </observation></component>"""


RAS_PANEL = f"""<entry><organizer classCode="BATTERY" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.19376.1.8.1.4.1"/><id root="1.2.250.1.999.41" extension="RAS"/>
  <code code="82120-7" displayName="Panel RAS" {LOINC}/><statusCode code="completed"/>
  <effectiveTime value="20240311143000+0100"/>
  {_gene("KRAS-1", "KRAS", "c.35G&gt;A", "p.Gly12Asp")}
  {_gene("NRAS-1", "NRAS", "c.35G&gt;A", "p.Gly12Asp")}
</organizer></entry>"""


def test_a_variant_says_which_gene_and_two_genes_variants_stay_two_facts() -> None:
    """A lung cancer panel finding G12D in KRAS and NRAS (c.35G>A in both: the same LOINC
    code, value and time) filed each variant as a result naming no gene, and their facts
    (dedupe level 4) were one: the dossier kept one 'c.35G>A' for two mutations. Each part
    now says the result it is part of (details.parent_result, as HL7v2 OBR-26 does)."""
    got = _entries(_section("83321-0", "Résultats des analyses génétiques", RAS_PANEL))
    variants = [e for e in got if e.code == "48004-6"]
    assert [v.value for v in variants] == ["c.35G>A", "c.35G>A"]
    assert [v.details["parent_result"]["value"] for v in variants] == ["KRAS", "NRAS"]
    assert {v.details["parent_result"]["code"] for v in variants} == {"48018-6"}
    genes = [e for e in got if e.code == "48018-6"]
    assert [v.details["parent_result"]["key"] for v in variants] == [g.key for g in genes]
    assert "parent_result" not in genes[0].details
    assert fact_of(variants[0]) != fact_of(variants[1])
    proteins = [e for e in got if e.code == "48005-3"]
    assert fact_of(proteins[0]) != fact_of(proteins[1])


def test_a_previous_result_nested_in_a_result_is_not_a_part_of_it() -> None:
    """A previous result (entryRelationship REFR, as CR-BIO sends it) is a result of its
    own: no parent_result, its fact unchanged."""
    previous = """<entryRelationship typeCode="REFR"><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/><id root="1.2.250.1.999.5" extension="G0"/>
      <code code="2345-7" codeSystem="2.16.840.1.113883.6.1" displayName="Glucose"/>
      <statusCode code="completed"/><effectiveTime value="20231002083000+0200"/>
      <value xsi:type="PQ" value="5.1" unit="mmol/L"/></observation></entryRelationship>"""
    result = f"""<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/><id root="1.2.250.1.999.5" extension="G1"/>
      <code code="2345-7" {LOINC} displayName="Glucose"/><statusCode code="completed"/>
      <effectiveTime value="20240311083000+0100"/>
      <value xsi:type="PQ" value="6.4" unit="mmol/L"/>{previous}</observation></entry>"""
    now, before = _entries(_section("18719-5", "Biochimie", result))
    assert (now.value, before.value) == ("6.4", "5.1")
    assert "parent_result" not in before.details


# -- allergies: a reaction the sender negates is no reaction ------------------------------------
def _allergy(reaction_negated: str) -> str:
    """CI-SIS FR-Allergie-ou-hypersensibilite as the LDL-EES and ANEST-CR-CPA examples
    write it: the reaction an FR-Probleme under MFST, here with the negationInd given."""
    return f"""<entry><act classCode="ACT" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5.3"/><templateId root="1.2.250.1.213.1.1.3.40"/>
  <id root="1.2.250.1.999.42" extension="C1"/><code nullFlavor="NA"/><statusCode code="active"/>
  <effectiveTime><low value="20240110"/></effectiveTime>
  <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
    <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.6"/><templateId root="1.2.250.1.213.1.1.3.41"/>
    <id root="1.2.250.1.999.42" extension="A1"/>
    <code code="416098002" displayName="allergie médicamenteuse" {SNOMED}/>
    <statusCode code="completed"/><effectiveTime><low value="2019"/></effectiveTime>
    <value xsi:type="CD"/>
    <participant typeCode="CSM"><participantRole classCode="MANU"><playingEntity classCode="MMAT">
      <code code="J01CA04" codeSystem="2.16.840.1.113883.6.73" displayName="amoxicilline"/>
    </playingEntity></participantRole></participant>
    <entryRelationship typeCode="MFST"><observation classCode="OBS" moodCode="EVN"
        negationInd="{reaction_negated}">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/><templateId root="1.2.250.1.213.1.1.3.37"/>
      <id root="1.2.250.1.999.42" extension="R1"/>
      <code code="418799008" displayName="symptôme" {SNOMED}/><statusCode code="completed"/>
      <effectiveTime><low value="20190604"/></effectiveTime>
      <value xsi:type="CD" code="126485001" displayName="urticaire" {SNOMED}/>
    </observation></entryRelationship>
    <entryRelationship typeCode="MFST"><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/><templateId root="1.2.250.1.213.1.1.3.37"/>
      <id root="1.2.250.1.999.42" extension="R2"/>
      <code code="418799008" displayName="symptôme" {SNOMED}/><statusCode code="completed"/>
      <effectiveTime><low value="20190604"/></effectiveTime>
      <value xsi:type="CD" code="271807003" displayName="éruption cutanée" {SNOMED}/>
    </observation></entryRelationship>
  </observation></entryRelationship></act></entry>"""


def test_a_reaction_the_sender_negates_is_not_listed_among_the_reactions() -> None:
    """'Allergie à l'amoxicilline: éruption cutanée, pas d'urticaire': the urticaria
    (negationInd true) was listed among the allergy's reactions, read as present, and
    exported as a manifestation. It is in absent_reactions; its problem entry, as before,
    says negated."""
    got = _entries(_section("48765-2", "Allergies", _allergy("true")))
    allergy = next(e for e in got if e.type == "allergy")
    assert [r["code"] for r in allergy.details["reactions"]] == ["271807003"]
    assert [r["code"] for r in allergy.details["absent_reactions"]] == ["126485001"]
    urticaria = next(e for e in got if e.code == "126485001")
    assert urticaria.details["negated"] is True


def test_a_reaction_said_present_stays_a_reaction() -> None:
    got = _entries(_section("48765-2", "Allergies", _allergy("false")))
    allergy = next(e for e in got if e.type == "allergy")
    assert [r["code"] for r in allergy.details["reactions"]] == ["126485001", "271807003"]
    assert "absent_reactions" not in allergy.details



def test_an_allergy_without_substance_is_the_kind_its_code_says() -> None:
    """CSE-CS24 (24th-month certificate): 'Allergie alimentaire : oui', the kind in the code
    (IHE PCC / CI-SIS), no substance, the value only words. The allergy was filed uncoded
    and named 'Oui'; it is SNOMED CT 414285001 'allergie alimentaire', 'Oui' its value."""
    allergy = """<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.6"/><templateId root="1.2.250.1.213.1.1.3.41"/>
      <id root="1.2.250.1.999.44" extension="AL1"/>
      <code code="414285001" displayName="allergie alimentaire"
        codeSystem="2.16.840.1.113883.6.96"/>
      <statusCode code="completed"/><effectiveTime><low value="20230415"/></effectiveTime>
      <value xsi:type="CD"><originalText><reference value="#al1"/></originalText></value>
    </observation></entry>"""
    got = _one(_section("48765-2", '<content ID="al1">Oui, à l\'arachide</content>', allergy))
    assert (got.type, got.code, got.system) == ("allergy", "414285001", "SNOMED-CT")
    assert (got.display, got.value) == ("allergie alimentaire", "Oui, à l'arachide")

# -- ANEST: what an act found, negated --------------------------------------------------------
def test_a_negated_finding_of_an_act_says_so() -> None:
    """A CR-ANEST intubation: 'Cormack grade 3' and 'intubation difficile' negated (an
    FR-Simple-Observation under the act with negationInd: it was not difficult). The act's
    observations listed 'difficile' as found; it now says negated."""
    act = """<entry><procedure classCode="PROC" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.19"/><templateId root="1.2.250.1.213.1.1.3.62"/>
      <id root="1.2.250.1.999.43" extension="P1"/>
      <code code="GELD004" displayName="Intubation trachéale" codeSystem="1.2.250.1.215.300.1"/>
      <statusCode code="completed"/><effectiveTime value="20240311091500+0100"/>
      <entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN"
          negationInd="true">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/>
        <code code="GEN-023" displayName="Précision difficulté"
          codeSystem="1.2.250.1.213.1.1.4.322"/><statusCode code="completed"/>
        <value xsi:type="ST">intubation difficile</value></observation></entryRelationship>
      <entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/>
        <code code="MED-594" displayName="Score de Cormack"
          codeSystem="1.2.250.1.213.1.1.4.322"/><statusCode code="completed"/>
        <value xsi:type="ST">Grade 1</value></observation></entryRelationship>
    </procedure></entry>"""
    got = _one(_section("29554-3", "Actes", act))
    difficulty, cormack = got.details["observations"]
    assert (difficulty["value"], difficulty.get("negated")) == ("intubation difficile", True)
    assert (cormack["value"], "negated" in cormack) == ("Grade 1", False)


# -- DOC_NON_STRUCTURE (level 1): the body is what its bytes are ------------------------------
def _pdf() -> bytes:
    from samples.generate_cda import tiny_pdf

    return tiny_pdf(["Compte rendu de consultation de cardiologie",
                     "Souffle systolique éjectionnel"], title="CR", created="20240312101500")


def _level1_msg(text_element: str):  # noqa: ANN202
    data = _level1(text_element)
    return data, normalize_cda(parse_cda(data), data, "test")


@pytest.mark.parametrize("media_type", ["application/octet-stream", "application/x-pdf",
                                        "text/plain", None])
def test_a_pdf_body_under_another_media_type_is_read_as_the_pdf_it_is(
        media_type: str | None) -> None:
    """XDS-SD senders' PDFs said application/octet-stream, x-pdf, or with no mediaType (the
    ED default is text/plain): no report was made (the body was lost to search and to the
    PDF path), a 'text/plain' one had the PDF's bytes as its narrative. A body whose bytes
    are a PDF is read as one, with a warning; the console shows it."""
    attr = f' mediaType="{media_type}"' if media_type is not None else ""
    pdf = _pdf()
    data, msg = _level1_msg(f'<text{attr} representation="B64">'
                            f'{base64.b64encode(pdf).decode()}</text>')
    assert [e.type for e in msg.entries] == ["document", "report"]
    assert "éjectionnel" in msg.entries[1].details["text"]
    assert "sections" not in msg.entries[0].details
    assert [w.split(":")[0] for w in msg.warnings] == ["CDA_BODY_MEDIA_TYPE"]
    assert embedded_pdf(data) == pdf


def test_a_pdf_media_type_with_parameters_is_a_pdf_without_warning() -> None:
    data, msg = _level1_msg('<text mediaType="application/pdf; name=cr-echo.pdf" '
                            f'representation="B64">{base64.b64encode(_pdf()).decode()}</text>')
    assert [e.type for e in msg.entries] == ["document", "report"]
    assert msg.warnings == []


def test_a_text_body_is_read_in_its_charset() -> None:
    """A base64 text/plain body written by a Windows sender (ISO-8859-1 or Windows-1252,
    said in the ED charset or not at all) was decoded as UTF-8: every accented letter a
    U+FFFD ('�chographie'). It is read in the charset said, else Windows-1252 with a
    warning; UTF-8 stays as it was."""
    words = "Échographie : pas d'épanchement, vésicule alithiasique."
    for charset, encoded, warned in (("ISO-8859-1", words.encode("latin-1"), False),
                                     (None, words.encode("cp1252"), True),
                                     (None, words.encode("utf-8"), False)):
        attr = f' charset="{charset}"' if charset else ""
        _, msg = _level1_msg(f'<text mediaType="text/plain"{attr} representation="B64">'
                             f'{base64.b64encode(encoded).decode()}</text>')
        assert msg.entries[0].details["sections"][0]["text"] == words
        assert any(w.startswith("CDA_BODY_CHARSET") for w in msg.warnings) is warned


# -- 'Autre ...' codes: the sender's words say what ---------------------------------------------
def _other_act(words: str) -> str:
    return _section("47519-4", f'<content ID="acte-02">{words}</content>', """
      <entry><procedure classCode="PROC" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.19"/>
        <templateId root="1.2.250.1.213.1.1.3.62"/><id root="1.2.250.1.999.46" extension="P2"/>
        <code code="GEN-092.04.13" displayName="Autre acte" codeSystem="1.2.250.1.213.1.1.4.322"
          codeSystemName="TA_ASIP"><originalText><reference value="#acte-02"/></originalText>
        </code><statusCode code="completed"/><effectiveTime value="20161208"/>
      </procedure></entry>""")


def test_an_other_code_is_named_by_the_senders_words() -> None:
    """IPS-FR, LDL, FRCP: an act, treatment, device or problem outside the value set is sent
    as TA_ASIP 'Autre acte' (GEN-092.*) with the words in originalText. The dossier said
    'Autre acte' and the words were lost; they name the entry now, the code kept."""
    got = _one(_other_act("Séances de kinésithérapie respiratoire"))
    assert (got.code, got.system) == ("GEN-092.04.13", "TA_ASIP")
    assert got.display == "Séances de kinésithérapie respiratoire"


def test_an_other_code_with_the_templates_words_keeps_its_name() -> None:
    for words in ("Autre acte (texte libre)", "-", "(texte libre)"):
        assert _one(_other_act(words)).display == "Autre acte", words


# -- CR-IMG: a finding and its measurement -----------------------------------------------------
def test_a_measurement_says_which_imaging_finding_it_measures() -> None:
    """A CT report's findings (DICOM Part 20 Coded Observation / CI-SIS FR-DICOM-Observation)
    with their size (Quantity Measurement / FR-DICOM-Quantite, SPRT): 'longueur 8 mm' was
    filed as an observation of its own naming no finding; it says its finding now. The
    finding negated ('pas d'embolie pulmonaire') stays negated."""
    finding = """<entry><observation classCode="OBS" moodCode="EVN"{neg}>
      <templateId root="2.16.840.1.113883.10.20.6.2.13"/>
      <templateId root="1.2.250.1.213.1.1.3.150"/>
      <id root="1.2.250.1.999.47" extension="{ident}"/>
      <code code="121071" codeSystem="1.2.840.10008.2.16.4" displayName="Constatation"/>
      <statusCode code="completed"/><effectiveTime value="20240311101500+0100"/>
      <value xsi:type="CD" code="{code}" codeSystem="2.16.840.1.113883.6.96"
        displayName="{name}"/>
      <targetSiteCode code="39607008" codeSystem="2.16.840.1.113883.6.96" displayName="poumon"/>
      {size}</observation></entry>"""
    size = """<entryRelationship typeCode="SPRT"><observation classCode="OBS" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.6.2.14"/>
      <templateId root="1.2.250.1.213.1.1.3.154"/>
      <code code="410668003" codeSystem="2.16.840.1.113883.6.96" displayName="longueur"/>
      <statusCode code="completed"/><effectiveTime value="20240311101500+0100"/>
      <value xsi:type="PQ" value="8" unit="mm"/></observation></entryRelationship>"""
    nodule, length, embolism = _entries(_section("59776-5", "Résultats", "".join((
        finding.format(neg="", ident="F1", code="427359005", name="nodule pulmonaire solitaire",
                       size=size),
        finding.format(neg=' negationInd="true"', ident="F2", code="59282003",
                       name="embolie pulmonaire", size="")))))
    assert (length.value, length.unit) == ("8", "mm")
    assert length.details["parent_result"] == {
        "code": "121071", "system": "DCM", "value": "nodule pulmonaire solitaire",
        "key": nodule.key}
    assert "parent_result" not in nodule.details
    assert embolism.details["negated"] is True


# -- CR-IMG: the imaging acts the header names, and the one it does not -------------------------
def _imaging_act(ident: str, loinc: str, name: str, ccam: str, site: str) -> str:
    """CI-SIS FR-DICOM-Technique-imagerie (DICOM Part 20 Procedure Technique)."""
    return f"""<entry><procedure classCode="PROC" moodCode="EVN">
      <templateId root="1.2.840.10008.9.14"/><templateId root="1.2.250.1.213.1.1.3.153"/>
      <id root="1.2.250.1.999.48" extension="{ident}"/>
      <code code="{loinc}" displayName="{name}" {LOINC}>
        <translation code="{ccam}" codeSystem="1.2.250.1.215.300.1" codeSystemName="CCAM"/>
      </code><effectiveTime value="20240311101500+0100"/>
      <methodCode code="CT" displayName="Tomodensitométrie" codeSystem="1.2.840.10008.2.16.4"/>
      <targetSiteCode code="{site}" {SNOMED}/>
      <entryRelationship typeCode="SUBJ" inversionInd="true"><act classCode="ACT" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.2"/>
        <code code="48767-8" {LOINC}/><text>Scanner GE Revolution, 120 kV</text>
      </act></entryRelationship></procedure></entry>"""


def test_an_imaging_act_the_header_does_not_name_is_filed_as_a_procedure() -> None:
    """A RIS writing one documentationOf (the head CT) for a head and thorax exam: the
    thorax act in the body (a container: the exam the report is of, read in the header's
    service_events) was in no entry and said 'of a kind not read here' though the head act
    is read. The act the header names stays read there, without a warning; the other one
    is filed as a procedure with its modality and site."""
    from tests.test_cda_real_world import HEAD, TAIL

    service_event = f"""<documentationOf><serviceEvent classCode="ACT">
      <id root="1.2.250.1.999.48.1"/>
      <code code="24727-0" displayName="CT Head W contrast IV" {LOINC}>
        <translation code="ACQH004" codeSystem="1.2.250.1.215.300.1"/></code>
      <effectiveTime value="20240311101500+0100"/></serviceEvent></documentationOf>"""
    head = HEAD.replace("<component><structuredBody>",
                        service_event + "<component><structuredBody>")
    body = _section("55111-9", "Technique d'imagerie", "".join((
        _imaging_act("A1", "24727-0", "CT tête avec contraste IV", "ACQH004", "302548004"),
        _imaging_act("A2", "24979-7", "CT thorax avec contraste IV", "ZBQH001", "302551006"))))
    data = (head + body + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    document, *got = msg.entries
    assert [e.code for e in got] == ["24979-7"]
    thorax = got[0]
    assert (thorax.type, thorax.system, thorax.effective) == ("procedure", "LN",
                                                              "2024-03-11T10:15:00+01:00")
    assert thorax.details["method"] == [{"code": "CT", "system": "DCM",
                                         "display": "Tomodensitométrie"}]
    assert thorax.details["target_site"]["code"] == "302551006"
    assert thorax.details["comments"] == ["Scanner GE Revolution, 120 kV"]
    assert [e["code"] for e in document.details["service_events"]] == ["24727-0"]
    assert not [w for w in msg.warnings if w.startswith("CDA_NOT_FILED")], msg.warnings


# -- CR-IMG: the images the report is of -------------------------------------------------------
def test_the_dicom_object_catalog_says_which_images_the_report_is_of() -> None:
    """A CR-IMG's DICOM object catalog (CI-SIS FR-DICOM-Examen / Serie / Instance, DICOM
    Part 20 study, series and SOP instance): a knee MRI, two series, an instance with its
    WADO reference. It was skipped whole: the dossier knew none of the images a viewer could
    open. The document says them in details.dicom_studies."""
    from tests.test_cda_real_world import HEAD, TAIL

    def instance(uid: str) -> str:
        return f"""<entryRelationship typeCode="COMP"><observation classCode="DGIMG"
            moodCode="EVN"><templateId root="1.2.840.10008.9.18"/>
          <templateId root="1.2.250.1.213.1.1.3.157"/><id root="{uid}"/>
          <code code="1.2.840.10008.5.1.4.1.1.4" codeSystem="1.2.840.10008.2.6.1"
            displayName="MR Image Storage"/>
          <text mediaType="application/dicom"><reference
            value="https://pacs.exemple.fr/wado?requestType=WADO&amp;objectUID={uid}"/></text>
          <effectiveTime value="20240311094500+0100"/></observation></entryRelationship>"""

    def series(uid: str, *instances: str) -> str:
        return f"""<entryRelationship typeCode="COMP"><act classCode="ACT" moodCode="EVN">
          <templateId root="1.2.840.10008.9.17"/><templateId root="1.2.250.1.213.1.1.3.156"/>
          <id root="{uid}"/><code code="113015" codeSystem="1.2.840.10008.2.16.4">
            <qualifier><name code="121139" codeSystem="1.2.840.10008.2.16.4"/>
              <value code="MR" codeSystem="1.2.840.10008.2.16.4"/></qualifier></code>
          <effectiveTime value="20240311094000+0100"/>{"".join(instances)}
        </act></entryRelationship>"""

    catalog = f"""<entry><act classCode="ACT" moodCode="EVN">
      <templateId root="1.2.840.10008.9.16"/><templateId root="1.2.250.1.213.1.1.3.155"/>
      <id root="1.2.250.1.999.49.1"/><code code="113014" codeSystem="1.2.840.10008.2.16.4"/>
      <effectiveTime value="20240311093000+0100"/>
      {series("1.2.250.1.999.49.1.1", instance("1.2.250.1.999.49.1.1.1"))}
      {series("1.2.250.1.999.49.1.2")}
    </act></entry>"""
    data = (HEAD + _section("121181", "Catalogue d'objets DICOM", catalog) + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    assert len(msg.entries) == 1
    assert msg.entries[0].details["dicom_studies"] == [{
        "uid": "1.2.250.1.999.49.1", "time": "2024-03-11T09:30:00+01:00",
        "series": [
            {"uid": "1.2.250.1.999.49.1.1", "modality": "MR",
             "time": "2024-03-11T09:40:00+01:00",
             "instances": [{"uid": "1.2.250.1.999.49.1.1.1",
                            "sop_class": "1.2.840.10008.5.1.4.1.1.4",
                            "reference": "https://pacs.exemple.fr/wado?requestType=WADO"
                                         "&objectUID=1.2.250.1.999.49.1.1.1"}]},
            {"uid": "1.2.250.1.999.49.1.2", "modality": "MR",
             "time": "2024-03-11T09:40:00+01:00"}]}]
    assert not msg.warnings


def test_a_series_of_many_images_keeps_the_first_ones_and_the_count() -> None:
    """A CT series lists every slice (hundreds of instances): the document's details keep
    the first 20 and say how many there are."""
    from tests.test_cda_real_world import HEAD, TAIL

    instances = "".join(f"""<entryRelationship typeCode="COMP"><observation classCode="DGIMG"
        moodCode="EVN"><templateId root="1.2.840.10008.9.18"/><id root="1.2.250.1.999.50.1.1.{i}"/>
        <code code="1.2.840.10008.5.1.4.1.1.2" codeSystem="1.2.840.10008.2.6.1"/>
        </observation></entryRelationship>""" for i in range(1, 451))
    catalog = f"""<entry><act classCode="ACT" moodCode="EVN">
      <templateId root="1.2.840.10008.9.16"/><id root="1.2.250.1.999.50.1"/>
      <entryRelationship typeCode="COMP"><act classCode="ACT" moodCode="EVN">
        <templateId root="1.2.840.10008.9.17"/><id root="1.2.250.1.999.50.1.1"/>
        {instances}</act></entryRelationship></act></entry>"""
    data = (HEAD + _section("121181", "Catalogue d'objets DICOM", catalog) + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    series = msg.entries[0].details["dicom_studies"][0]["series"][0]
    assert len(series["instances"]) == 20
    assert series["instance_count"] == 450


def test_a_cr_img_carried_in_an_mdm_says_its_images_as_the_file_does() -> None:
    """The same CR-IMG received as a file and inside an MDM^T02 (CI-SIS CDA over HL7v2): the
    file's DOCUMENT entry listed its DICOM studies, the MDM's did not (its DOCUMENT entry is
    made from the OBX, the body read apart)."""
    from tests.conftest import corpus_path
    from tests.test_documents_normalizer import b64, mdm, norm

    data = corpus_path("cda", "IMG_CR_IMG_2024.01.xml").read_bytes()
    as_file = normalize_cda(parse_cda(data), data, "ris").entries[0]
    carried = norm(mdm("T02", "F", b64(data))).entries[0]
    assert as_file.details["dicom_studies"]
    assert carried.details.get("dicom_studies") == as_file.details["dicom_studies"]
