"""French CI-SIS documents of volets not seen before (round 18: eDISP, CR-ACP, VAC, OBP,
CSE, IPS-FR...). Each test builds a small invented document with one structure CDA R2 /
CI-SIS / the IHE PCC, PHARM and LAB templates allow, or runs an ANS example when
../shared/corpus is there, and checks what is filed against what a clinician reading the
document understands. The round found: the pharmacy that performed a dispense dropped;
entry references (IHE PCC internal reference, C-CDA 4.122) skipped, what they name lost;
a section's informant (who told the whole section) not read; an admission or discharge
diagnosis act placed outside its section read as any problem; the rapid test device a
TROD report names on its results act lost to its results."""

from __future__ import annotations

import pytest

from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from tests.conftest import corpus_path
from tests.test_cda_real_world import HEAD, TAIL, _entries

LOINC = 'codeSystem="2.16.840.1.113883.6.1"'


def _corpus(name: str):  # noqa: ANN202
    """The NormalizedMessage of one ANS example; the test skips when the corpus is absent."""
    data = corpus_path("cda", name).read_bytes()
    return normalize_cda(parse_cda(data), data, "corpus")


# -- a dispense says which pharmacy handed it out ------------------------------------------------
PHARMACIST = """<author><time value="20240412103000+0200"/><assignedAuthor>
  <id root="1.2.250.1.71.4.2.1" extension="810002345678"/>
  <code code="G15_21" codeSystem="1.2.250.1.213.1.1.4.5" displayName="Pharmacien"/>
  <assignedPerson><name><given>Amélie</given><family>Lefèvre</family></name></assignedPerson>
  <representedOrganization><id root="1.2.250.1.71.4.2.2" extension="1130456789"/>
  <name>Pharmacie de la Canebière</name></representedOrganization>
  </assignedAuthor></author>"""
SOFTWARE = """<author><time value="20240412103000+0200"/><assignedAuthor>
  <id root="1.2.250.1.999.18" extension="LGO-1"/>
  <assignedAuthoringDevice><softwareName>LGO Officine</softwareName>
  </assignedAuthoringDevice></assignedAuthor></author>"""
PERFORMER = """<performer typeCode="PRF"><assignedEntity>
  <id root="1.2.250.1.71.4.2.1" extension="810009876543"/>
  <representedOrganization><id root="1.2.250.1.71.4.2.2" extension="690123456"/>
  <name>Pharmacie des Terreaux</name></representedOrganization>
  </assignedEntity></performer>"""


def _dispense(inner: str = "") -> str:
    return f"""<entry><supply classCode="SPLY" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7.3"/>
  <templateId root="1.3.6.1.4.1.19376.1.9.1.3.4"/>
  <id root="1.2.250.1.999.18.2" extension="DISP-0412-1"/>
  <effectiveTime value="20240412103000+0200"/>
  <quantity value="2" unit="{{box}}"/>
  <product><manufacturedProduct><manufacturedMaterial>
    <code code="3400936404894" codeSystem="1.2.250.1.213.2.3.1"
      displayName="AMOXICILLINE BIOGARAN 1 g, comprimé dispersible"/>
  </manufacturedMaterial></manufacturedProduct></product>{inner}</supply></entry>"""


def _dispensation(section_author: str, entry: str) -> str:
    return (f'<component><section><code code="60590-7" {LOINC}/><title>Dispensation</title>'
            f"<text>Amoxicilline 1 g, 2 boîtes</text>{section_author}{entry}"
            "</section></component>")


def test_the_pharmacy_that_dispensed_is_kept_from_the_section_author() -> None:
    """CI-SIS eDISP (and IHE PHARM DIS) name the dispensing pharmacist, and the pharmacy
    he works for, as the author of the dispensation section: the dispense was filed
    without the pharmacy (recorded_by kept the pharmacist's RPPS, not the pharmacy's
    name). It says who dispensed now, the pharmacy with its FINESS and name."""
    (dispense,) = _entries(_dispensation(PHARMACIST, _dispense()))
    assert dispense.details["dispensed"] is True
    assert dispense.details["dispensed_by"] == {
        "ids": ["1.2.250.1.71.4.2.1^810002345678"],
        "organization": ["1.2.250.1.71.4.2.2^1130456789"],
        "organization_name": "Pharmacie de la Canebière"}


def test_the_supply_performer_is_the_dispenser_before_any_author() -> None:
    """C-CDA Medication Dispense and the IHE PCC Supply Entry name the pharmacy as the
    supply's performer: it is the dispenser, not the software that wrote the section."""
    (dispense,) = _entries(_dispensation(SOFTWARE, _dispense(PERFORMER)))
    assert dispense.details["dispensed_by"] == {
        "ids": ["1.2.250.1.71.4.2.1^810009876543"],
        "organization": ["1.2.250.1.71.4.2.2^690123456"],
        "organization_name": "Pharmacie des Terreaux"}


def test_software_is_not_a_dispenser() -> None:
    """A section written by the pharmacy's software alone says nobody dispensed it."""
    (dispense,) = _entries(_dispensation(SOFTWARE, _dispense()))
    assert "dispensed_by" not in dispense.details


def test_the_ans_edisp_example_names_its_pharmacy() -> None:
    msg = _corpus("eDISP-MED_2024.01.xml")
    dispensed = [e for e in msg.entries if e.details.get("dispensed")]
    assert dispensed
    assert {e.details["dispensed_by"]["organization_name"] for e in dispensed} == {
        "Pharmacie du village"}


# -- an entry reference is a link to the entry it names -----------------------------------------
def _problem(obs_id: str, code: str, display: str) -> str:
    return f"""<observation classCode="OBS" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/>
  <id root="{obs_id}"/><code code="55607006" codeSystem="2.16.840.1.113883.6.96"/>
  <statusCode code="completed"/><effectiveTime><low value="2019"/></effectiveTime>
  <value xsi:type="CD" code="{code}" codeSystem="2.16.840.1.113883.6.3"
    displayName="{display}"/></observation>"""


CONCERN = f"""<entry><act classCode="ACT" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5.1"/>
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5.2"/>
  <id root="6f1c2a4e-2b3d-4c5e-8f90-a1b2c3d4e5f6"/><code nullFlavor="NA"/>
  <statusCode code="active"/><effectiveTime><low value="2019"/></effectiveTime>
  <entryRelationship typeCode="SUBJ">{_problem("0a1b2c3d-1111-4e5f-9a8b-7c6d5e4f3a2b",
                                                "E11", "Diabète de type 2")}
  </entryRelationship></act></entry>"""


def _reference(type_code: str, ref_id: str, template: str) -> str:
    return f"""<entryRelationship typeCode="{type_code}"><act classCode="ACT" moodCode="EVN">
  <templateId root="{template}"/><id root="{ref_id}"/>
  <code nullFlavor="NP"/></act></entryRelationship>"""


IHE_INTERNAL = "1.3.6.1.4.1.19376.1.5.3.1.4.4.1"
CCDA_ENTRY_REFERENCE = "2.16.840.1.113883.10.20.22.4.122"


def _metformin(refs: str) -> str:
    return f"""<entry><substanceAdministration classCode="SBADM" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7"/>
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7.1"/>
  <id root="1.2.250.1.999.18.3" extension="MED-1"/><statusCode code="active"/>
  <effectiveTime xsi:type="IVL_TS"><low value="20230105"/></effectiveTime>
  <consumable><manufacturedProduct><manufacturedMaterial>
    <code code="3400930011574" codeSystem="1.2.250.1.213.2.3.1"
      displayName="METFORMINE ARROW 500 mg, comprimé pelliculé"/>
  </manufacturedMaterial></manufacturedProduct></consumable>{refs}
  </substanceAdministration></entry>"""


def _sections(problems: str, treatments: str) -> tuple:
    return (f'<component><section><code code="11450-4" {LOINC}/><title>Problèmes</title>'
            f"<text>Diabète de type 2</text>{problems}</section></component>",
            f'<component><section><code code="10160-0" {LOINC}/><title>Traitements</title>'
            f"<text>Metformine</text>{treatments}</section></component>")


@pytest.mark.parametrize("template", [IHE_INTERNAL, CCDA_ENTRY_REFERENCE])
def test_an_entry_reference_links_to_the_entry_it_names(template: str) -> None:
    """IHE PCC (CI-SIS FR-Reference-interne) and C-CDA (Entry Reference 4.122) name the
    problem a treatment is for by the id of its entry elsewhere in the document: it was
    skipped, the metformin filed for no reason. It is kept as a link to the problem's
    entry, found even when the problem is read after the treatment."""
    problems, treatments = _sections(
        f"<entry>{_problem('0a1b2c3d-1111-4e5f-9a8b-7c6d5e4f3a2b', 'E11', 'Diabète de type 2')}"
        "</entry>",
        _metformin(_reference("RSON", "0a1b2c3d-1111-4e5f-9a8b-7c6d5e4f3a2b", template)))
    for order in ((problems, treatments), (treatments, problems)):
        got = {e.type: e for e in _entries(*order)}
        assert got["medication"].details["entry_links"] == [
            {"type": "RSON", "id": "0a1b2c3d-1111-4e5f-9a8b-7c6d5e4f3a2b",
             "key": got["problem"].key}]


def test_a_reference_to_a_concern_links_to_the_problems_it_holds() -> None:
    """A concern (IHE PCC Problem Concern, as the ANS VSM names it from a treatment) files
    no entry of its own: the link names the problems it holds."""
    problems, treatments = _sections(CONCERN, _metformin(_reference(
        "RSON", "6f1c2a4e-2b3d-4c5e-8f90-a1b2c3d4e5f6", IHE_INTERNAL)))
    got = {e.type: e for e in _entries(problems, treatments)}
    (link,) = got["medication"].details["entry_links"]
    assert link["keys"] == [got["problem"].key] and "key" not in link


def test_a_reference_to_nothing_in_the_document_keeps_its_id_and_says_so() -> None:
    """An id no statement of the document has (the ANS CR-ANEST names its devices so):
    the link keeps the id, a warning says what it names is not here."""
    problems, treatments = _sections("", _metformin(_reference(
        "RSON", "99999999-2222-4e5f-9a8b-7c6d5e4f3a2b", CCDA_ENTRY_REFERENCE)))
    data = (HEAD + problems + treatments + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    (med,) = msg.entries[1:]
    assert med.details["entry_links"] == [{"type": "RSON",
                                           "id": "99999999-2222-4e5f-9a8b-7c6d5e4f3a2b"}]
    assert [w.split(":")[0] for w in msg.warnings
            if "ENTRY_REFERENCE" in w] == ["CDA_ENTRY_REFERENCE_UNRESOLVED"]


def test_thousands_of_links_to_a_concern_cost_one_pass() -> None:
    """Every treatment of a long list naming the same concern: what the concern holds is
    found once, not by rereading every entry for every link."""
    import time

    meds = "".join(_metformin(_reference("RSON", "6f1c2a4e-2b3d-4c5e-8f90-a1b2c3d4e5f6",
                                         IHE_INTERNAL)).replace("MED-1", f"MED-{n}")
                   for n in range(1500))
    problems, treatments = _sections(CONCERN, meds)
    started = time.perf_counter()
    got = _entries(problems, treatments)
    assert time.perf_counter() - started < 6
    problem = next(e for e in got if e.type == "problem")
    assert all(e.details["entry_links"][0]["keys"] == [problem.key]
               for e in got if e.type == "medication")


def test_the_procedure_reason_read_from_an_internal_reference_is_unchanged() -> None:
    """The IHE internal reference a procedure nests was already read, by its code, as the
    procedure's reason (details.reasons): it still is, the link beside it."""
    msg = _corpus("CARD-F-PRC-DCI_2022.01.xml")
    linked = [e for e in msg.entries if e.details.get("entry_links")]
    assert linked and all(e.details.get("reasons") for e in linked if e.type == "procedure")
    keys = {e.key for e in msg.entries}
    assert all(link["key"] in keys for e in linked for link in e.details["entry_links"])


# -- who gave the information of a whole section -------------------------------------------------
MOTHER_TELLS = """<informant><relatedEntity classCode="PRS"><code code="MTH"
  codeSystem="2.16.840.1.113883.5.111" displayName="mère"/>
  <relatedPerson><name><given>Odile</given><family>Lefèvre</family></name></relatedPerson>
  </relatedEntity></informant>"""
PATIENT_TELLS = '<informant><relatedEntity classCode="PAT"/></informant>'


def _history(section_informant: str, sub: str = "", own_informant: str = "") -> str:
    """A child's history (CSE: antécédents) told by whoever the section says."""
    asthma = f"""<entry><observation classCode="OBS" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/>
  <id root="1.2.250.1.999.18.4" extension="ATCD-1"/>
  <code code="55607006" codeSystem="2.16.840.1.113883.6.96"/><statusCode code="completed"/>
  <effectiveTime><low value="2021"/></effectiveTime>
  <value xsi:type="CD" code="J45.9" codeSystem="2.16.840.1.113883.6.3"
    displayName="Asthme, sans précision"/>{own_informant}</observation></entry>"""
    return (f'<component><section><code code="11348-0" {LOINC}/><title>Antécédents</title>'
            f"<text>Asthme depuis 2021</text>{section_informant}{asthma}{sub}"
            "</section></component>")


MOTHER = [{"source": "relative", "relationship": {
    "code": "MTH", "system": "HL7-ROLECODE", "display": "mère"}}]


def test_a_section_told_by_the_mother_says_so_on_its_entries() -> None:
    """CDA R2 Section.informant: the mother gave the child's whole history; it was not
    read, the asthma looked seen first-hand. Each entry says the mother told it (her name
    not kept), a subsection's entries too."""
    sub = _history("").replace("ATCD-1", "ATCD-2").replace("11348-0", "10157-6")
    first, second = _entries(_history(MOTHER_TELLS, sub=sub))
    assert first.details["informants"] == MOTHER == second.details["informants"]
    assert "Lefèvre" not in repr(first.details)


def test_an_entrys_own_informant_wins_over_its_sections() -> None:
    (asthma,) = _entries(_history(MOTHER_TELLS, own_informant=PATIENT_TELLS))
    assert asthma.details["informants"] == [{"source": "patient"}]


def test_a_subsections_informant_wins_over_the_enclosing_sections() -> None:
    sub = _history(PATIENT_TELLS).replace("ATCD-1", "ATCD-2").replace("11348-0", "10157-6")
    first, second = _entries(_history(MOTHER_TELLS, sub=sub))
    assert (first.details["informants"], second.details["informants"]) == (
        MOTHER, [{"source": "patient"}])


def test_a_section_without_informant_gives_none() -> None:
    (asthma,) = _entries(_history(""))
    assert "informants" not in asthma.details


# -- an admission or discharge diagnosis keeps its role wherever it is ---------------------------
def _stay_diagnosis(template: str, code: str, value: str, display: str) -> str:
    """A C-CDA Hospital Admission (4.34) / Discharge (4.33) Diagnosis act around a problem."""
    return f"""<entry><act classCode="ACT" moodCode="EVN">
  <templateId root="{template}" extension="2015-08-01"/>
  <id root="1.2.250.1.999.18.5" extension="DX-{value}"/>
  <code code="{code}" {LOINC}/><statusCode code="active"/>
  <effectiveTime><low value="20240305"/></effectiveTime>
  <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
    <templateId root="2.16.840.1.113883.10.20.22.4.4" extension="2015-08-01"/>
    <id root="1.2.250.1.999.18.6" extension="PB-{value}"/>
    <code code="282291009" codeSystem="2.16.840.1.113883.6.96" displayName="Diagnosis"/>
    <statusCode code="completed"/><effectiveTime><low value="20240305"/></effectiveTime>
    <value xsi:type="CD" code="{value}" codeSystem="2.16.840.1.113883.6.3"
      displayName="{display}"/></observation></entryRelationship></act></entry>"""


DISCHARGE = _stay_diagnosis("2.16.840.1.113883.10.20.22.4.33", "11535-2", "I21.4",
                            "Infarctus du myocarde sous-endocardique")
ADMISSION = _stay_diagnosis("2.16.840.1.113883.10.20.22.4.34", "46241-6", "R07.4",
                            "Douleur thoracique, sans précision")


def _problem_list(entries: str, code: str = "11450-4") -> str:
    return (f'<component><section><code code="{code}" {LOINC}/><title>Problèmes</title>'
            f"<text>IDM, douleur thoracique, HTA</text>{entries}</section></component>")


def test_stay_diagnoses_placed_in_the_problem_list_keep_their_role() -> None:
    """A discharge summary putting its C-CDA admission and discharge diagnosis acts in
    the problem list: only the section's code said the role, so both read as any problem.
    Each says its role now; a plain problem beside them says none."""
    hta = f"<entry>{_problem('1.2.250.1.999.18.7', 'I10', 'Hypertension essentielle')}</entry>"
    got = {e.code: e for e in _entries(_problem_list(DISCHARGE + ADMISSION + hta))}
    assert got["I21.4"].details["diagnosis_role"] == "discharge"
    assert got["R07.4"].details["diagnosis_role"] == "admission"
    assert "diagnosis_role" not in got["I10"].details


def test_a_problem_in_a_discharge_diagnosis_section_is_a_discharge_diagnosis() -> None:
    """IHE PCC / CI-SIS FR-Diagnostic-de-sortie-episode-de-soins (as in the ANS DLU-FLUDR):
    the section says the role of the problems it holds; a wrapping act says more."""
    hta = f"<entry>{_problem('1.2.250.1.999.18.7', 'I10', 'Hypertension essentielle')}</entry>"
    got = {e.code: e for e in _entries(_problem_list(hta + ADMISSION, code="11535-2"))}
    assert got["I10"].details["diagnosis_role"] == "discharge"
    assert got["R07.4"].details["diagnosis_role"] == "admission"  # its act's, nearer


def test_the_ans_examples_say_their_stay_diagnoses_and_not_the_signs_beside_them() -> None:
    fludr = _corpus("DLU-EHPAD-FLUDR_2022.01.xml")
    assert [(e.code, e.details["diagnosis_role"]) for e in fludr.entries
            if "diagnosis_role" in e.details] == [("J41.0", "discharge")]
    rare = _corpus("SDM-MR_2022.01.xml")  # its ataxia (R26.0) is a sign, not the diagnosis
    assert [(e.code, e.details["diagnosis_role"]) for e in rare.entries
            if "diagnosis_role" in e.details] == [("513", "admission")]


# -- the rapid test device (TROD) named on the results act -----------------------------------
def _trod(own_device: str = "") -> str:
    """A CI-SIS CR-BIO TROD (test rapide d'orientation diagnostique): the device used is a
    participant DEV of the results act (IHE PaLM Laboratory Report Data Processing Entry)."""
    return f"""<component><section><code code="18725-2" {LOINC}/><title>Microbiologie</title>
  <text><content ID="kit">Bionysex. | 8029 | B987654 | 31/12/2025</content></text>
  <entry typeCode="DRIV"><templateId root="1.3.6.1.4.1.19376.1.3.1"/>
  <act classCode="ACT" moodCode="EVN"><code code="18725-2" {LOINC}/>
  <statusCode code="completed"/>
  <participant typeCode="DEV"><participantRole classCode="MANU">
    <id root="2.51.1.1" extension="(01)03612345678903(17)251231(10)B987654"/>
    <playingDevice><code><originalText><reference value="#kit"/></originalText></code>
    </playingDevice></participantRole></participant>
  <entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
    <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
    <id root="1.2.250.1.999.18.8" extension="TROD-1"/>
    <code code="78012-2" {LOINC}
      displayName="Streptococcus pyogenes Ag [Présence] Gorge par immunoessai rapide"/>
    <statusCode code="completed"/><effectiveTime value="20240106113623+0100"/>
    <value xsi:type="CD" code="260385009" codeSystem="2.16.840.1.113883.6.96"
      displayName="négatif"/>{own_device}</observation></entryRelationship>
  </act></entry></section></component>"""


def test_a_rapid_tests_device_named_on_its_act_is_on_its_result() -> None:
    """The strep A rapid test's device (maker, reference, lot, expiry; its UDI) is named
    once on the results act: a device on the result itself was read, on the act it was
    lost. The result says which kit and lot it was obtained with."""
    (strep,) = _entries(_trod())
    assert strep.details["devices"] == [{
        "text": "Bionysex. | 8029 | B987654 | 31/12/2025",
        "ids": ["2.51.1.1^(01)03612345678903(17)251231(10)B987654"]}]


def test_a_results_own_device_wins_over_its_acts() -> None:
    own = """<participant typeCode="DEV"><participantRole>
      <playingDevice><code code="AUTRE-KIT" codeSystem="1.2.250.1.999.18.9"
      displayName="Autre bandelette"/></playingDevice></participantRole></participant>"""
    (strep,) = _entries(_trod(own))
    assert [d.get("display") for d in strep.details["devices"]] == ["Autre bandelette"]


def test_the_ans_trod_examples_name_their_device_on_each_result() -> None:
    msg = _corpus("BIO-TROD_2024.01_COVID-19_Grippe-A_Grippe-B.xml")
    results = [e for e in msg.entries if e.type == "lab_result"]
    assert len(results) == 3
    assert all(e.details["devices"][0]["ids"][0].startswith("2.51.1.1^(01)") for e in results)
