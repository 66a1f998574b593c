"""French CI-SIS documents from hospitals we have not seen (round 22). Each test builds a
small document the way a French hospital or laboratory writes one of the CI-SIS volets, with
their templateIds and national code systems, and checks what is filed against what a
clinician reading it understands.

Found wrong and fixed here: a VSM typed SYNTH (the ANS's TRE_A05 document types of JDV_J07)
was an unmapped local code, and failed CODE_UNMAPPED for a source whose codes must map; an
author whose idNatPS (RPPS) came after the hospital's own user id was filed as performed by
the local id; two isolates of the same germ with no specimen id (two strains of E. coli)
had one fact for each antibiotic (a later document's results of both strains were one
strain's), and the FHIR export made them members of one isolate; an isolate named by the CI-SIS
template alone was read as the results' specimen; a letter's recipients
(informationRecipient) were dropped; a problem, allergy, vital sign, vaccination or treatment
named by its CI-SIS template alone (FR-Probleme...) was typed by its section or structure,
and a FR-Prelevement named alone left its results without collection time nor specimen;
a letter whose FR-Statut-document says 'en cours' was filed final, with 'Statut du
document' as an observation of the patient."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from dossiers.deposit import fact_of
from dossiers.fhir import to_bundle
from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from pipelines.mapping_policy import unmapped_failure
from pipelines.settings import Settings
from tests.test_cda_real_world import HEAD, TAIL, _section
from tests.test_fhir_export import check_bundle

LN = 'codeSystem="2.16.840.1.113883.6.1"'
SNOMED = 'codeSystem="2.16.840.1.113883.6.96"'
PATIENT = {"id": 1, "family": "LEFÈVRE", "given": "Hélène", "birth_date": "1979-03-28",
           "sex": "F", "ins": None}


def _normalized(*sections: str, head: str = HEAD):  # noqa: ANN202
    data = (head + "".join(sections) + TAIL).encode()
    return normalize_cda(parse_cda(data), data, "test")


# -- document types of JDV_J07 that LOINC has no code for --------------------------------------
VSM_TYPE = ('<code code="SYNTH" codeSystem="1.2.250.1.213.1.1.4.12" '
            'displayName="Synthèse"/>')
HEAD_CODE = '<code code="34133-9" codeSystem="2.16.840.1.113883.6.1"/>'


def test_a_vsm_typed_synth_is_of_a_known_type() -> None:
    """A médecin traitant's Volet de Synthèse Médicale is typed SYNTH in TRE_A05
    (1.2.250.1.213.1.1.4.12), as JDV_J07 says: it was filed as an unmapped local code, shown
    '(unmapped)' in the dossier, and a source configured to require mapped codes failed it
    CODE_UNMAPPED ('local code SYNTH has no LOINC mapping'), a DMP document refused."""
    head = HEAD.replace(HEAD_CODE, VSM_TYPE)
    msg = _normalized(_section("11450-4", "Hypertension artérielle", ""), head=head)
    document = msg.entries[0]
    assert (document.code, document.system, document.mapped) == ("SYNTH", "CISIS-DOC", True)
    strict = Settings(home=Path("."), database_url="", archive_url="",
                      require_mapping=frozenset({"test"}))
    assert unmapped_failure(strict, "test", msg) is None


def test_a_senders_own_document_type_is_still_unmapped() -> None:
    """What the rule is not about: a type in the sender's own code system stays unmapped
    (and fails a strict source), a LOINC type stays mapped."""
    own = HEAD.replace(HEAD_CODE, '<code code="CRHOSP" codeSystem="1.2.250.1.999.4.1"/>')
    msg = _normalized(_section("11450-4", "x", ""), head=own)
    assert msg.entries[0].mapped is False
    strict = Settings(home=Path("."), database_url="", archive_url="",
                      require_mapping=frozenset({"test"}))
    failed = unmapped_failure(strict, "test", msg)
    assert failed is not None and failed.error_code == "CODE_UNMAPPED"
    assert _normalized(_section("11450-4", "x", "")).entries[0].mapped is True


# -- an author with a local id before the idNatPS ----------------------------------------------
ORIGINAL_AUTHOR = HEAD[HEAD.index("<author>"):HEAD.index("</author>") + len("</author>")]


def _authored_by(ids: str):  # noqa: ANN202
    author = f"""<author><time value="20240312101500+0100"/><assignedAuthor>{ids}
      <code code="10" displayName="Médecin" codeSystem="1.2.250.1.71.1.2.7"/>
      <assignedPerson><name><given>Hélène</given><family>Lefèvre</family></name>
      </assignedPerson><representedOrganization>
        <id root="1.2.250.1.71.4.2.2" extension="1330780038"/>
        <name>Assistance Publique – Hôpitaux de Marseille</name></representedOrganization>
    </assignedAuthor></author>"""
    head = HEAD.replace(ORIGINAL_AUTHOR, author)
    return _normalized(_section("11450-4", "Néant", ""), head=head).entries[0]


def test_the_rpps_after_a_local_id_is_the_documents_performer() -> None:
    """A hospital's software names its own user id first (assignedAuthor/id is 1..*) and
    the professional's idNatPS after it ('8' + RPPS under 1.2.250.1.71.4.2.1): the document
    was performed by 'MED0042' of the hospital's OID, which no other system knows; both ids
    stay on the author."""
    document = _authored_by('<id root="1.2.250.1.999.13.3.1" extension="MED0042"/>'
                            '<id root="1.2.250.1.71.4.2.1" extension="810101643087"/>')
    assert document.performer == "1.2.250.1.71.4.2.1^810101643087"
    assert document.details["authors"][0]["ids"] == [
        "1.2.250.1.999.13.3.1^MED0042", "1.2.250.1.71.4.2.1^810101643087"]


def test_an_author_with_one_id_is_performer_by_it_whatever_its_kind() -> None:
    """What the rule is not about: an ADELI ('0' + ADELI), an establishment's staff id
    ('3' + FINESS/number) or a local id alone are the performer as sent."""
    for ids, performer in [
            ('<id root="1.2.250.1.71.4.2.1" extension="0131234567"/>',
             "1.2.250.1.71.4.2.1^0131234567"),
            ('<id root="1.2.250.1.71.4.2.1" extension="31330780038/4512"/>',
             "1.2.250.1.71.4.2.1^31330780038/4512"),
            ('<id root="1.2.250.1.999.13.3.1" extension="MED0042"/>',
             "1.2.250.1.999.13.3.1^MED0042")]:
        assert _authored_by(ids).performer == performer


# -- two isolates of the same germ in a CR-BIO of microbiology ---------------------------------
def _isolate(number: str, mic: str, specimen_id: str = "") -> str:
    """A CI-SIS FR-Isolat-microbiologique (IHE LAB isolate organizer): the germ as its
    specimen, its antibiogram as a battery of FR-Resultat-examens-de-biologie-medicale."""
    return f"""<component><organizer classCode="CLUSTER" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.5"/><templateId root="1.2.250.1.213.1.1.3.79"/>
      <id root="1.2.250.1.999.21.7" extension="ECBU-2403-{number}"/>
      <statusCode code="completed"/><effectiveTime value="20240314155000+0100"/>
      <specimen typeCode="SPC"><specimenRole classCode="SPEC">{specimen_id}
        <specimenPlayingEntity classCode="MIC">
          <code code="112283007" {SNOMED} displayName="Escherichia coli"/>
        </specimenPlayingEntity></specimenRole></specimen>
      <component><organizer classCode="BATTERY" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.3.1.4"/>
        <templateId root="1.2.250.1.213.1.1.3.21"/>
        <code code="18769-0" {LN} displayName="Antibiogramme"/>
        <statusCode code="completed"/>
        <component><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
          <templateId root="1.2.250.1.213.1.1.3.21.1"/>
          <code code="18928-2" {LN} displayName="Gentamicine [Sensibilité]"/>
          <statusCode code="completed"/><effectiveTime value="20240314155000+0100"/>
          <value xsi:type="IVL_PQ"><high value="{mic}" unit="mg/L" inclusive="true"/></value>
          <interpretationCode code="S" codeSystem="2.16.840.1.113883.5.83"/>
        </observation></component></organizer></component></organizer></component>"""


def _urine_culture(*isolates: str) -> str:
    """The microbiology section of a CR-BIO: an ECBU with its isolates."""
    return f"""<component><section>
      <templateId root="1.3.6.1.4.1.19376.1.3.3.2.1"/>
      <code code="18725-2" {LN} displayName="Microbiologie"/><title>Microbiologie</title>
      <text>ECBU : Escherichia coli, deux souches (dont une BLSE).</text>
      <entry typeCode="DRIV"><act classCode="ACT" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.3.1"/>
        <code code="18725-2" {LN}/><statusCode code="completed"/>
        <entryRelationship typeCode="COMP"><organizer classCode="BATTERY" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.4"/>
          <code code="630-4" {LN} displayName="Bactéries identifiées, urine, culture"/>
          <statusCode code="completed"/>{"".join(isolates)}
        </organizer></entryRelationship></act></entry></section></component>"""


def test_two_strains_of_one_germ_keep_their_antibiograms_apart() -> None:
    """Two isolate organizers of E. coli without specimenRole/id (optional in
    FR-Isolat-microbiologique), each with 'gentamicin <= 1 mg/L: S': the two results had
    one fact (the same report sent again, both strains' results confirmed the first's).
    The first keeps the germ alone (as an ORU names it), the second its organizer's id."""
    first, second = _normalized(_urine_culture(_isolate("1", "1"),
                                               _isolate("2", "1"))).entries[1:]
    assert first.details["isolate"] == {"code": "112283007", "system": "SNOMED-CT",
                                        "display": "Escherichia coli"}
    assert second.details["isolate"]["id"] == "1.2.250.1.999.21.7^ECBU-2403-2"
    assert fact_of(first) != fact_of(second)


def test_isolates_told_apart_by_their_specimen_ids_are_unchanged() -> None:
    """What the rule is not about: isolates with specimenRole/id (the ANS's example) keep
    that id; one isolate alone keeps the germ alone."""
    ids = ['<id root="1.2.250.1.999.21.8" extension="S1"/>',
           '<id root="1.2.250.1.999.21.8" extension="S2"/>']
    got = _normalized(_urine_culture(_isolate("1", "1", ids[0]),
                                     _isolate("2", "1", ids[1]))).entries[1:]
    assert [e.details["isolate"]["id"] for e in got] == ["1.2.250.1.999.21.8^S1",
                                                         "1.2.250.1.999.21.8^S2"]
    (alone,) = _normalized(_urine_culture(_isolate("1", "1"))).entries[1:]
    assert "id" not in alone.details["isolate"]


IHE_ISOLATE = '<templateId root="1.3.6.1.4.1.19376.1.3.1.5"/>'


def test_an_isolate_named_by_the_ci_sis_template_alone_is_an_isolate() -> None:
    """A LIS naming only FR-Isolat-microbiologique (1.2.250.1.213.1.1.3.79), not the IHE
    LAB isolate template it builds on: the germ was read as the results' specimen (the
    urine become 'Escherichia coli'), and E. coli's and S. aureus's 'gentamicin <= 1 mg/L'
    were one fact."""
    coli = _isolate("1", "1").replace(IHE_ISOLATE, "")
    aureus = _isolate("2", "1").replace(IHE_ISOLATE, "").replace(
        "112283007", "3092008").replace("Escherichia coli", "Staphylococcus aureus")
    got = _normalized(_urine_culture(coli, aureus)).entries[1:]
    assert [e.details["isolate"]["display"] for e in got] == ["Escherichia coli",
                                                              "Staphylococcus aureus"]
    assert [e.details.get("specimen") for e in got] == [None, None]
    assert fact_of(got[0]) != fact_of(got[1])


def test_two_strains_are_two_isolates_in_the_fhir_export() -> None:
    """The FHIR export makes one isolate Observation per isolate of a report, its members
    the results about it: the two strains' antibiograms were members of one E. coli, which
    result was whose said nowhere."""
    results = _normalized(_urine_culture(_isolate("1", "1"), _isolate("2", "2"))).entries[1:]
    bundle = to_bundle(PATIENT, [{**asdict(e), "id": n} for n, e in enumerate(results, 1)])
    check_bundle(bundle)
    isolates = [r["resource"] for r in bundle["entry"]
                if r["resource"].get("code") == {"text": "micro-organism isolated"}]
    assert [len(i["hasMember"]) for i in isolates] == [1, 1]
    assert [i["valueCodeableConcept"]["coding"][0]["code"] for i in isolates] == [
        "112283007", "112283007"]


# -- whom a discharge letter is addressed to ---------------------------------------------------
CUSTODIAN = "<custodian>"
RECIPIENTS = """<informationRecipient><intendedRecipient>
      <id root="1.2.250.1.71.4.2.1" extension="810002345672"/>
      <informationRecipient><name><prefix>DR</prefix><given>Benoît</given>
        <family>Gaillard</family></name></informationRecipient>
      <receivedOrganization><id root="1.2.250.1.71.4.2.2" extension="1120456789"/>
        <name>Cabinet médical des Arènes</name></receivedOrganization>
    </intendedRecipient></informationRecipient>
  <informationRecipient typeCode="TRC"><intendedRecipient>
      <id root="1.2.250.1.71.4.2.1" extension="810003456781"/>
      <informationRecipient><name><given>Élodie</given><family>Marchal</family></name>
      </informationRecipient></intendedRecipient></informationRecipient>
  <informationRecipient><intendedRecipient><informationRecipient><name><given>Anaïs</given>
      <family>Roux</family></name></informationRecipient></intendedRecipient>
  </informationRecipient>
  """


def test_a_letters_recipients_are_kept_by_their_ids() -> None:
    """A LDL-SES addressed to the médecin traitant, 'copie à' the nurse (typeCode TRC): the
    informationRecipients were dropped, who the letter went to said only in the XML. A
    recipient named by name alone is not kept (no third party's name in the details)."""
    head = HEAD.replace(CUSTODIAN, RECIPIENTS + CUSTODIAN)
    document = _normalized(_section("11450-4", "Néant", ""), head=head).entries[0]
    assert document.details["recipients"] == [
        {"type": "PRCP", "ids": ["1.2.250.1.71.4.2.1^810002345672"],
         "organization": ["1.2.250.1.71.4.2.2^1120456789"],
         "organization_name": "Cabinet médical des Arènes"},
        {"type": "TRC", "ids": ["1.2.250.1.71.4.2.1^810003456781"]}]
    assert "Gaillard" not in str(document.details)
    assert "recipients" not in _normalized(_section("11450-4", "x", "")).entries[0].details


# -- CI-SIS entry templates named without the IHE PCC templates they build on ------------------
CIM10 = 'codeSystem="2.16.840.1.113883.6.3"'
FR_ALONE = {
    "FR-Probleme": ("11348-0", f"""<observation classCode="OBS" moodCode="EVN">
      <templateId root="1.2.250.1.213.1.1.3.37"/><id root="1.2.250.1.999.22.1" extension="P1"/>
      <code code="282291009" {SNOMED} displayName="Diagnostic"/><statusCode code="completed"/>
      <effectiveTime><low value="2019"/></effectiveTime>
      <value xsi:type="CD" code="44054006" {SNOMED} displayName="Diabète de type 2"/>
    </observation>""", ("problem", "44054006", "Diabète de type 2")),
    "FR-Allergie-ou-hypersensibilite": ("55752-0", f"""<observation classCode="OBS"
      moodCode="EVN"><templateId root="1.2.250.1.213.1.1.3.41"/>
      <id root="1.2.250.1.999.22.1" extension="A1"/>
      <code code="420134006" {SNOMED} displayName="Propension aux effets indésirables"/>
      <statusCode code="completed"/><effectiveTime><low value="2015"/></effectiveTime>
      <value xsi:type="CD" code="416098002" {SNOMED} displayName="Allergie médicamenteuse"/>
      <participant typeCode="CSM"><participantRole classCode="MANU">
        <playingEntity classCode="MMAT"><code code="J01CA04"
          codeSystem="2.16.840.1.113883.6.73" displayName="amoxicilline"/></playingEntity>
      </participantRole></participant></observation>""", ("allergy", "J01CA04", "amoxicilline")),
    "FR-Signe-vital-observe": ("29545-1", f"""<observation classCode="OBS" moodCode="EVN">
      <templateId root="1.2.250.1.213.1.1.3.50"/><id root="1.2.250.1.999.22.1" extension="V1"/>
      <code code="8302-2" {LN} displayName="Taille"/><statusCode code="completed"/>
      <effectiveTime value="20240312"/><value xsi:type="PQ" value="172" unit="cm"/>
    </observation>""", ("vital_sign", "8302-2", "Taille")),
    "FR-Vaccination": ("10160-0", """<substanceAdministration classCode="SBADM"
      moodCode="EVN"><templateId root="1.2.250.1.213.1.1.3.45"/>
      <id root="1.2.250.1.999.22.1" extension="VA1"/>
      <code code="IMMUNIZ" codeSystem="2.16.840.1.113883.5.4"/><statusCode code="completed"/>
      <effectiveTime value="20231015"/><consumable><manufacturedProduct><manufacturedMaterial>
        <code code="J07BB02" codeSystem="2.16.840.1.113883.6.73" displayName="Vaccin grippal"/>
        <lotNumberText>X4521</lotNumberText></manufacturedMaterial></manufacturedProduct>
      </consumable></substanceAdministration>""", ("immunization", "J07BB02", "Vaccin grippal")),
    "FR-Traitement": ("11369-6", """<substanceAdministration classCode="SBADM" moodCode="EVN">
      <templateId root="1.2.250.1.213.1.1.3.42"/><id root="1.2.250.1.999.22.1" extension="T1"/>
      <statusCode code="completed"/><effectiveTime xsi:type="IVL_TS"><low value="20231015"/>
      </effectiveTime><consumable><manufacturedProduct><manufacturedMaterial>
        <code code="60234100" codeSystem="1.2.250.1.213.2.3.1"
          displayName="DOLIPRANE 1000 mg, comprimé"/></manufacturedMaterial>
      </manufacturedProduct></consumable></substanceAdministration>""",
                      ("medication", "60234100", "DOLIPRANE 1000 mg, comprimé")),
}


@pytest.mark.parametrize("template", sorted(FR_ALONE))
def test_a_ci_sis_entry_template_named_alone_says_what_the_entry_is(template: str) -> None:
    """A hospital's software naming only the CI-SIS template of an entry, not the IHE PCC
    templates it builds on (the ANS's examples name both): a diabetes coded in SNOMED CT
    under FR-Probleme among the antecedents was an observation 'Diagnostic'; an allergy
    outside the allergy section, a height outside the vital signs section, observations;
    a flu vaccination outside the immunizations section a medication; a FR-Traitement among
    vaccinations a vaccination."""
    section, statement, expected = FR_ALONE[template]
    (entry,) = _normalized(_section(section, "Antécédents",
                                    f"<entry>{statement}</entry>")).entries[1:]
    assert (entry.type, entry.code, entry.display) == expected


def _collected_potassium(collection_templates: str, reception_templates: str) -> str:
    """A CR-BIO biochemistry entry (FR-Resultats-examens-de-biologie-medicale): its
    FR-Prelevement (serum taken at 07:35, received at 09:10) and a potassium."""
    return f"""<entry typeCode="DRIV"><act classCode="ACT" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1"/><templateId root="1.2.250.1.213.1.1.3.21"/>
      <code code="18719-5" {LN}/><statusCode code="completed"/>
      <entryRelationship typeCode="COMP"><procedure classCode="PROC" moodCode="EVN">
        {collection_templates}
        <code code="33882-2" {LN} displayName="Prélèvement"/>
        <effectiveTime><high value="202403140735+0100"/></effectiveTime>
        <participant typeCode="PRD"><participantRole classCode="SPEC">
          <id root="1.2.250.1.999.22.9" extension="ECH-5521"/>
          <playingEntity><code code="SER" codeSystem="2.16.840.1.113883.18.311"
            displayName="Sérum"/></playingEntity></participantRole></participant>
        <entryRelationship typeCode="COMP"><act classCode="ACT" moodCode="EVN">
          {reception_templates}<effectiveTime value="202403140910+0100"/></act>
        </entryRelationship></procedure></entryRelationship>
      <entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
        <templateId root="1.2.250.1.213.1.1.3.80"/>
        <code code="2823-3" {LN} displayName="Potassium [Moles/Volume] Sérum/Plasma"/>
        <statusCode code="completed"/><effectiveTime value="202403141012+0100"/>
        <value xsi:type="PQ" value="4.1" unit="mmol/L"/></observation></entryRelationship>
    </act></entry>"""


def test_a_collection_named_fr_prelevement_alone_dates_its_results() -> None:
    """A LIS naming only FR-Prelevement (1.2.250.1.213.1.1.3.77) and
    FR-Echantillon-date-reception (1.2.250.1.213.1.1.3.107), not the IHE LAB Specimen
    Collection and Specimen Received they build on: the potassium lost when the serum was
    taken and received (a specimen that waited looks fresh), and the collection was said
    not filed."""
    fr_only = _collected_potassium('<templateId root="1.2.250.1.213.1.1.3.77"/>',
                                   '<templateId root="1.2.250.1.213.1.1.3.107"/>')
    msg = _normalized(_section("18719-5", "Potassium 4,1 mmol/L", fr_only))
    (potassium,) = msg.entries[1:]
    assert potassium.specimen_time == "2024-03-14T07:35+01:00"
    assert potassium.details["specimen"] == {"code": "SER", "system": "HL70487",
                                             "display": "Sérum",
                                             "received": "2024-03-14T09:10+01:00"}
    assert msg.warnings == []
    both = _collected_potassium('<templateId root="1.3.6.1.4.1.19376.1.3.1.2"/>'
                                '<templateId root="1.2.250.1.213.1.1.3.77"/>',
                                '<templateId root="1.3.6.1.4.1.19376.1.3.1.3"/>'
                                '<templateId root="1.2.250.1.213.1.1.3.107"/>')
    (same,) = _normalized(_section("18719-5", "Potassium 4,1 mmol/L", both)).entries[1:]
    assert (same.specimen_time, same.details["specimen"]) == (
        potassium.specimen_time, potassium.details["specimen"])


# -- the CI-SIS 'Statut du document' of a discharge letter -------------------------------------
def _status_section(code: str, display: str) -> str:
    """A LDL-SES's section 33557-0 with its FR-Statut-document observation."""
    return _section("33557-0", f"Statut du document : {display}", f"""<entry>
      <observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/>
        <templateId root="1.2.250.1.213.1.1.3.48"/>
        <templateId root="1.2.250.1.213.1.1.3.48.16"/>
        <id root="1.2.250.1.999.22.4" extension="STATUT-1"/>
        <code code="GEN-065" displayName="Statut du document"
          codeSystem="1.2.250.1.213.1.1.4.322" codeSystemName="TA_ASIP"/>
        <statusCode code="completed"/><effectiveTime value="20240312"/>
        <value xsi:type="CD" code="{code}" displayName="{display}" {SNOMED}/>
      </observation></entry>""")


def test_a_letter_in_progress_is_a_preliminary_document_not_an_observation() -> None:
    """A LDL-SES whose FR-Statut-document says 'en cours d'exécution' (the provisional
    letter, before the final one): the document was filed final, and 'Statut du document:
    en cours d'exécution' was an observation in the patient's dossier."""
    msg = _normalized(_status_section("385651009", "en cours d'exécution"),
                      _section("11450-4", "Néant", ""))
    assert [e.type for e in msg.entries] == ["document"]
    document = msg.entries[0]
    assert document.status == "preliminary"
    assert document.details["document_status"] == {
        "code": "385651009", "system": "SNOMED-CT", "display": "en cours d'exécution"}


def test_an_approved_letter_stays_final_and_says_so() -> None:
    """'approuvé' (9571008): final, as before; and a document without the section is
    unchanged."""
    document = _normalized(_status_section("9571008", "approuvé")).entries[0]
    assert (document.status, document.details["document_status"]["code"]) == (
        "final", "9571008")
    plain = _normalized(_section("11450-4", "Néant", "")).entries[0]
    assert plain.status == "final" and "document_status" not in plain.details
