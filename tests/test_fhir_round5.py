"""FHIR export round 5: what the stored entries hold that the Bundle did not say.

CDA round 12 stores where a vaccine was injected and a procedure's site (with its side),
where a transfer took the patient, which eye-care organizer a measurement belongs to
(lenses prescribed vs delivered, best corrected acuity) and a cancer's staging with its
T, N and M; each is read here from the public ANS documents (parser + normalizer, rows as
the store holds them: skipped when the corpus is absent) and from small hand-built rows.
Every Bundle is validated whole (check_bundle).
"""

from __future__ import annotations

from collections import Counter

from dossiers.export import load_dossier_rows, load_provenance
from dossiers.fhir import full_url, to_bundle
from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from tests.conftest import corpus_path
from tests.test_dedup_channels import CHOL, cholesterol, cr_bio, file, oru
from tests.test_fhir_export import (
    PATIENT,
    _resource,
    _row,
    _rows_read,
    by_entry_id,
    check_bundle,
)

FINESS = "urn:oid:1.2.250.1.71.4.2.2"
SCT = "http://snomed.info/sct"


def _corpus_bundle(name: str) -> tuple[dict, list[dict]]:
    """The Bundle of one ANS corpus document's entries (the document is row 1)."""
    data = corpus_path("cda", name).read_bytes()
    rows = _rows_read(normalize_cda(parse_cda(data), data, name).entries)
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    return bundle, rows


def _codes(concept: dict) -> list[str]:
    return [c["code"] for c in concept.get("coding", [])]


def _groups(bundle: dict) -> dict[str, dict]:
    """The grouping Observations (no entry of ours: no identifier) by their code."""
    return {_codes(e["resource"]["code"])[0]: e["resource"] for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Observation" and "hasMember" in
            e["resource"] and "identifier" not in e["resource"]}


# -- eye care: which eye, which lens, which acuity ------------------------------------------
def test_eye_care_measurements_say_their_eye_and_their_group() -> None:
    """OPH-BRE: the sphere power of the lenses prescribed (28866-2) and delivered (28868-8),
    of the right and the left eye, were Observations nothing told apart (same code, same
    value, no bodySite). Each now has its eye (bodySite with its side) and is a member of
    its organizer's grouping Observation; the acuity group says 'best corrected'."""
    bundle, rows = _corpus_bundle("OPH-BRE_2022.02.xml")
    res = by_entry_id(bundle)
    groups = _groups(bundle)
    assert {"28866-2", "28868-8", "28631-0", "70938-6"} <= set(groups)
    prescribed = {m["reference"] for m in groups["28866-2"]["hasMember"]}
    delivered = {m["reference"] for m in groups["28868-8"]["hasMember"]}
    assert prescribed and delivered and not prescribed & delivered
    addition = [r["id"] for r in rows if r["code"] == "28815-9"]  # 'Addition - Valeur'
    assert len(addition) == 4  # two eyes, prescribed and delivered
    said = Counter()
    for i in addition:
        url = full_url("entry", i)
        group = "prescribed" if url in prescribed else "delivered" if url in delivered \
            else None
        said[(group, res[i]["bodySite"]["text"])] += 1
    # the site's words since round 26 (its displayName was dropped)
    assert said == Counter({("prescribed", "lentille de contact, right"): 1,
                            ("prescribed", "lentille de contact, left"): 1,
                            ("delivered", "lentille de contact, right"): 1,
                            ("delivered", "lentille de contact, left"): 1})
    assert {_codes(res[i]["bodySite"])[0] for i in addition} == {"57368009"}  # contact lens
    acuity = groups["28631-0"]["component"]
    assert [(_codes(c["code"]), _codes(c["valueCodeableConcept"])) for c in acuity] == \
        [(["MED-1049"], ["MED-1048"])]  # observed acuity: best corrected


def test_one_organizer_code_in_two_documents_is_two_groups() -> None:
    """A group is one organizer: the lenses delivered in March and those of June (two
    documents, two parents) are two groups, not one holding both; a masked member's label
    is its group's."""
    group = {"code": "28868-8", "system": "LN", "display": "Lentilles délivrées"}
    site = {"code": "57368009", "system": "SNOMED-CT", "qualifiers": ["7771000"]}
    doc = {"type": "document", "code": "11488-4", "system": "LN", "display": "CR"}
    rows = [_row(1, **doc), _row(2, **doc),
            _row(3, type="observation", code="MED-1092", system="TA_ASIP", value_num=2.5,
                 unit="[diop]", parent_id=1, details={"group": group, "target_site": site}),
            _row(4, type="observation", code="MED-1092", system="TA_ASIP", value_num=2.75,
                 unit="[diop]", parent_id=2, details={"group": group, "target_site": site},
                 masking={"MASQUE_PS": True})]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    found = [e["resource"] for e in bundle["entry"] if "hasMember" in e["resource"]]
    assert sorted(m["reference"] for g in found for m in g["hasMember"]) == \
        sorted([full_url("entry", 3), full_url("entry", 4)])
    assert len(found) == 2
    assert [bool(g.get("meta", {}).get("security")) for g in found
            if g["hasMember"] == [{"reference": full_url("entry", 4)}]] == [True]
    rows[3] = {**rows[3], "parent_id": 1, "status": "preliminary"}  # one organizer again
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    (group,) = [e["resource"] for e in bundle["entry"] if "hasMember" in e["resource"]]
    assert group["status"] == "unknown"  # a final and a preliminary: the group is neither


# -- cancer staging ----------------------------------------------------------------------------
def test_a_cancers_staging_is_its_conditions_stage_with_t_n_m() -> None:
    """CANCER-PPS / CANCER-FRCP: the cancer's TNM staging (75620-5, stage IB as a qualifier
    of its value, TNM 7th edition, T1b N1 M0 as nested parts) was in the store only: the
    Condition said nothing of its stage. It has a stage now: IB as summary, the staging's
    code as type, and an assessment Observation with the edition and the T, N and M."""
    for name in ("CANCER-PPS_2022.01_Autopresentable.xml", "CANCER-FRCP_2022.01_Appareil.xml"):
        bundle, _ = _corpus_bundle(name)
        (cancer,) = [e["resource"] for e in bundle["entry"]
                     if e["resource"]["resourceType"] == "Condition" and
                     e["resource"].get("stage")]
        (stage,) = cancer["stage"]
        assert _codes(stage["summary"]) == ["IB"]
        assert _codes(stage["type"]) == ["75620-5"]
        staging = _resource(bundle, stage["assessment"][0]["reference"])
        parts = {_codes(c["code"])[0]: c for c in staging["component"]}
        assert {k: _codes(parts[k]["valueCodeableConcept"]) for k in
                ("21905-5", "21906-3", "21907-1", "21917-0")} == {
            "21905-5": ["T1b"], "21906-3": ["N1"], "21907-1": ["M0"], "21917-0": ["7"]}
        assert parts["21905-5"]["valueCodeableConcept"]["text"] == \
            "Tumeur envahissant la sous-muqueuse"
        assert cancer["bodySite"][0]["text"] == \
            "Tumeur maligne du quadrant supéro-interne du sein, right"  # C50.2 (round 26: words)


def test_observations_of_a_problem_that_stage_nothing_make_no_stage() -> None:
    """A problem's other observations (treatment follow-up 'actif', an anatomical location
    with its side: AVC-AUNV) are no staging: no stage, and the bundle stays valid; a masked
    cancer's staging Observation carries its label."""
    staging = {"code": "21908-9", "display": "Stage group.clinical Cancer", "value": "IIA",
               "unit": None, "value_code": {"code": "IIA", "system": "TNM-UICC"}}
    follow = {"code": "57189-3", "display": "Suivi du traitement", "value": "actif",
              "unit": None, "value_code": {"code": "55561003", "system": "SNOMED-CT"}}
    rows = [_row(1, type="problem", code="C34.1", system="CIM-10", display="Cancer du poumon",
                 masking={"MASQUE_PS": True}, details={"observations": [follow, staging]}),
            _row(2, type="problem", code="I10", system="CIM-10", display="HTA",
                 details={"observations": [follow]})]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    res = by_entry_id(bundle)
    assert "stage" not in res[2]
    (stage,) = res[1]["stage"]
    assert _codes(stage["summary"]) == ["IIA"]
    assessed = _resource(bundle, stage["assessment"][0]["reference"])
    assert assessed["meta"]["security"] == res[1]["meta"]["security"]


# -- vaccinations and sites ----------------------------------------------------------------------
def test_a_vaccinations_site_and_dose_number_reach_the_immunization() -> None:
    """VAC: where each vaccine was injected (approachSiteCode, SNOMED CT) was dropped; the
    dose numbers (1, 1, 2, 1) were already exported and still are."""
    bundle, _ = _corpus_bundle("VAC_2023.01.xml")
    shots = [e["resource"] for e in bundle["entry"]
             if e["resource"]["resourceType"] == "Immunization"]
    assert [s["protocolApplied"][0]["doseNumberPositiveInt"] for s in shots] == [1, 1, 2, 1]
    assert {(s["site"]["coding"][0]["system"], s["site"]["coding"][0]["code"])
            for s in shots} == {(SCT, "16217701000119102")}


def test_sites_with_their_side_on_every_resource_that_has_one() -> None:
    """A C-CDA immunization in the left deltoid, a medication given in the right eye, a
    procedure on the left carotid by the right femoral artery: Immunization.site,
    Dosage.site, Procedure.bodySite (the target) and the way in as a note (R4 has no
    element for it)."""
    left_deltoid = {"code": "16217701000119102", "system": "SNOMED-CT",
                    "qualifiers": ["7771000"]}
    rows = [_row(1, type="immunization", code="3439191", system="CIS", display="PRIORIX",
                 details={"approach_site": left_deltoid, "dose_number": "rappel"}),
            _row(2, type="medication", code="3400930000000", system="CIP",
                 display="TIMOLOL 0,5 % collyre",
                 details={"approach_site": {"code": "81745001", "system": "SNOMED-CT",
                                            "qualifiers": ["C25228"]},
                          "frequency": "2 times a day"}),
            _row(3, type="procedure", code="EBFA012", system="CCAM",
                 display="Endartériectomie carotidienne",
                 details={"target_site": {"code": "69105007", "system": "SNOMED-CT",
                                          "qualifiers": ["7771000"]},
                          "approach_site": {"code": "7657000", "system": "SNOMED-CT",
                                            "qualifiers": ["24028007"]}})]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    res = by_entry_id(bundle)
    assert res[1]["site"] == {"coding": [{"system": SCT, "code": "16217701000119102"}],
                              "text": "laterality: left"}
    assert res[1]["protocolApplied"] == [{"doseNumberString": "rappel"}]
    dosage = (res[2].get("dosage") or res[2].get("dosageInstruction"))[0]
    assert dosage["site"]["text"] == "laterality: right"
    assert [_codes(s) for s in res[3]["bodySite"]] == [["69105007"]]
    assert res[3]["bodySite"][0]["text"] == "laterality: left"
    assert res[3]["note"] == [
        {"text": "approach site (CDA approachSiteCode): SNOMED-CT 7657000, right"}]


# -- transfers -----------------------------------------------------------------------------------
def test_a_transfer_says_where_the_patient_went() -> None:
    """DLU-EHPAD-FLUDR and CSE-CS8: 'Transfert du patient' encounters said nothing of where.
    Encounter.hospitalization.destination is a Location with its FINESS (under
    urn:oid:1.2.250.1.71.4.2.2), its kind and name; the service transferred to (a
    neonatal ICU, sent as the code's translation) is one of its types."""
    for name, finess, kind, service in (
            ("DLU-EHPAD-FLUDR_2022.01.xml", "1750803447", "SA17", None),
            ("CSE-CS8_2024.01.xml", "1750803447", "SA43", "405269005")):
        bundle, _ = _corpus_bundle(name)
        (transfer,) = [e["resource"] for e in bundle["entry"]
                       if e["resource"]["resourceType"] == "Encounter" and
                       "hospitalization" in e["resource"]]
        place = _resource(bundle, transfer["hospitalization"]["destination"]["reference"])
        assert place["resourceType"] == "Location"
        assert {"system": FINESS, "value": finess} in place["identifier"]
        assert place["name"] == transfer["hospitalization"]["destination"]["display"]
        types = [c for t in place["type"] for c in _codes(t)]
        assert types[0] == kind
        assert (service in types) if service else len(types) == 1


def test_two_transfers_to_one_facility_are_one_location_and_an_encounter_without_is_none(
        ) -> None:
    """Two stays ending in the same EHPAD (same FINESS, same words) point at one Location;
    an encounter without a destination has no hospitalization."""
    went = {"ids": ["1.2.250.1.71.4.2.2^640780417"], "name": "EHPAD LES OLIVIERS",
            "code": {"code": "SA17", "system": "1.2.250.1.71.4.2.4"}}
    rows = [_row(i, type="encounter", code="80413-8", system="LN",
                 display="Transfert du patient", effective=f"2025-03-0{i}",
                 details={"destination": went}) for i in (1, 2)]
    rows.append(_row(3, type="encounter", code="IMP", system="HL7-ACTCODE",
                     display="hospitalisation", effective="2025-02-01"))
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    res = by_entry_id(bundle)
    assert res[1]["hospitalization"] == res[2]["hospitalization"]
    assert "hospitalization" not in res[3]
    assert sum(e["resource"]["resourceType"] == "Location" for e in bundle["entry"]) == 1


# -- one fact, two channels ---------------------------------------------------------------------
def test_a_result_sent_by_hl7v2_and_in_a_cr_bio_is_one_observation(sqlite_ctx) -> None:  # noqa: ANN001
    """The cholesterol the lab sent by ORU and the hospital again in its CR-BIO is one entry
    with two provenance links: one Observation, which two Provenances target."""
    file(sqlite_ctx, oru(), "LABM")
    file(sqlite_ctx, cr_bio(value="1.840E0", unit="g/l"), "chu")
    (entry,) = cholesterol(sqlite_ctx)
    with sqlite_ctx.engine.connect() as conn:
        patient, rows = load_dossier_rows(conn, entry.patient_id)
        prov = load_provenance(conn, [r["id"] for r in rows])
    bundle = to_bundle(patient, rows, provenance=prov)
    check_bundle(bundle)
    found = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
             and CHOL in _codes(e["resource"]["code"])]
    assert len(found) == 1
    targets = [p["resource"] for p in bundle["entry"]
               if p["resource"]["resourceType"] == "Provenance" and
               {"reference": found[0]["fullUrl"]} in p["resource"]["target"]]
    assert len(targets) == 2


# -- who gave it, who made it, what the nested observations say ---------------------------------
def test_the_vaccinator_and_the_maker_are_the_immunizations() -> None:
    """VAC: the vaccinator's RPPS (details.performed_by, not the author) was dropped: now
    Immunization.performer, 'administering provider'; a C-CDA vaccine's manufacturer
    (details.manufacturer) is Immunization.manufacturer; a procedure's performer acts on
    behalf of its clinic."""
    bundle, _ = _corpus_bundle("VAC_2023.01.xml")
    shots = [e["resource"] for e in bundle["entry"]
             if e["resource"]["resourceType"] == "Immunization"]
    assert {(s["performer"][0]["actor"]["identifier"]["system"],
             s["performer"][0]["actor"]["identifier"]["value"],
             s["performer"][0]["function"]["coding"][0]["code"]) for s in shots} == {
        ("urn:oid:1.2.250.1.71.4.2.1", "801234567897", "AP")}
    party = {"ids": ["1.2.250.1.71.4.2.1^810001234567"],
             "organization": ["1.2.250.1.71.4.2.2^690000001"],
             "organization_name": "Clinique du Parc"}
    rows = [_row(1, type="immunization", code="3400936404649", system="CIP",
                 display="GARDASIL 9", details={"manufacturer": "MSD VACCINS"}),
            _row(2, type="procedure", code="EBFA012", system="CCAM",
                 display="Endartériectomie carotidienne", details={"performed_by": party})]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    res = by_entry_id(bundle)
    assert res[1]["manufacturer"] == {"display": "MSD VACCINS"}
    assert "performer" not in res[1]
    assert res[2]["performer"] == [{
        # typed as its Practitioner would be (round 6)
        "actor": {"type": "Practitioner", "identifier": {
            "type": {"coding": [{"system": "https://hl7.fr/ig/fhir/core/CodeSystem/"
                                           "fr-core-cs-v2-0203", "code": "IDNPS"}]},
            "system": "urn:oid:1.2.250.1.71.4.2.1", "value": "810001234567"}},
        "onBehalfOf": {"identifier": {"system": "urn:oid:1.2.250.1.71.4.2.2",
                                      "value": "690000001"}, "display": "Clinique du Parc"}}]


def test_what_nested_observations_say_is_noted_where_no_element_holds_it() -> None:
    """CSE-CS8 2025: the deafness screening's result ('audition à recontrôler'),
    ANEST-CR-ANEST: an intubation tube's size, AVC-AUNV: an infarct's location with its side
    were in the store only (details.observations, characteristics); now notes. A staging
    is the Condition's stage, never also a note; an empty slot says nothing."""
    bundle, _ = _corpus_bundle("CSE-CS8_2025.01.xml")
    notes = [n["text"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Procedure"
             for n in e["resource"].get("note", [])]
    assert "Résultat du dépistage de la surdité: Audition à recontrôler" in notes
    bundle, _ = _corpus_bundle("ANEST-CR-ANEST_2022.01.xml")
    sizes = [n["text"] for e in bundle["entry"]
             if e["resource"]["resourceType"] == "DeviceUseStatement"
             for n in e["resource"].get("note", [])]
    assert "Taille: 3" in sizes
    bundle, _ = _corpus_bundle("AVC-AUNV_2022.01.xml")
    notes = [n["text"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition"
             for n in e["resource"].get("note", [])]
    assert "Localisation anatomique: antérieur (Droit)" in notes
    bundle, _ = _corpus_bundle("CANCER-PPS_2022.01_Autopresentable.xml")
    notes = [n["text"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition"
             for n in e["resource"].get("note", [])]
    assert not [n for n in notes if "TNM" in n or "IB" in n.split()]
    plans = [n["text"] for e in bundle["entry"]
             if e["resource"]["resourceType"] == "ServiceRequest"
             for n in e["resource"].get("note", [])]
    assert "Mode: injection intradermique" in plans
    assert not [n for n in plans if n.startswith("Date(s) prévisionnelle(s)")]


def test_why_it_was_given_or_done_is_its_reason_code() -> None:
    """IPS-FR: the Levothyrox's indication 'thyroïdite auto-immune' (CIM-10 E06.3) and the
    coronary stent's 'infarctus transmural inférieur' (details.reasons) were in the store
    only; now MedicationStatement/Procedure.reasonCode (not also a note)."""
    bundle, _ = _corpus_bundle("IPS-FR_2024.01.xml")
    reasons = {(e["resource"]["resourceType"], c["code"])
               for e in bundle["entry"] for r in e["resource"].get("reasonCode", [])
               for c in r.get("coding", [])}
    assert {("MedicationStatement", "E06.3"), ("Procedure", "I21.1")} <= reasons
    assert not [n for e in bundle["entry"] for n in e["resource"].get("note", [])
                if n["text"].startswith("reason: ")]
    rows = [_row(1, type="plan", code="MED-572", system="TA_ASIP",
                 display="Soin oncologique de support", details={"mood": "INT", "reasons": [
                     {"code": "74011-8", "display": "Consommation tabagique", "value": "oui",
                      "value_code": {"code": "77176002", "system": "SNOMED-CT",
                                     "display": "fumeur"}}]})]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    assert by_entry_id(bundle)[1]["reasonCode"] == [
        {"coding": [{"system": SCT, "code": "77176002", "display": "fumeur"}],
         "text": "fumeur"}]


def test_how_an_eye_was_measured_is_its_method() -> None:
    """OPH-BRE: 'réfraction subjective' vs 'objective' (CDA methodCode, details.method) was
    exported for lab results only; every Observation has its method now."""
    bundle, rows = _corpus_bundle("OPH-BRE_2022.02.xml")
    res = by_entry_id(bundle)
    methods = Counter(c["code"] for r in rows if (r["details"] or {}).get("method")
                      for c in res[r["id"]]["method"]["coding"])
    assert methods["397277005"] > 0  # subjective refraction
    assert sum(methods.values()) == sum(1 for r in rows if (r["details"] or {}).get("method")
                                        and r["type"] == "observation")


def test_an_allergys_stated_kind_is_its_type_and_category() -> None:
    """ANEST-CR-CPA: 'allergie médicamenteuse' (SNOMED CT 416098002, details.allergy_type)
    was dropped: the paracetamol allergy had no type nor category. Now 'allergy' and
    'medication'; a food allergy is 'food'; a MedDRA reaction sent there (as CARD-F-PRC-AVK
    does: 'augmentation de l'INR') says neither and none is guessed."""
    bundle, _ = _corpus_bundle("ANEST-CR-CPA_2022.01.xml")
    (allergy,) = [e["resource"] for e in bundle["entry"]
                  if e["resource"]["resourceType"] == "AllergyIntolerance"]
    assert (allergy["type"], allergy["category"]) == ("allergy", ["medication"])
    rows = [_row(1, type="allergy", code="256350002", system="SNOMED-CT",
                 display="arachide", details={"allergy_type": {
                     "code": "414285001", "system": "SNOMED-CT",
                     "display": "allergie alimentaire"}}),
            _row(2, type="allergy", code="B01AA03", system="ATC", display="warfarine",
                 details={"allergy_type": {"code": "10022402", "system": "MEDDRA",
                                           "display": "Augmentation de l'INR"}})]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    res = by_entry_id(bundle)
    assert (res[1]["type"], res[1]["category"]) == ("allergy", ["food"])
    assert "type" not in res[2] and "category" not in res[2]


def test_the_qualifiers_of_a_code_or_a_value_are_noted() -> None:
    """CANCER-D2LM-FIDD: each breast's screening result says its side as a qualifier of its
    code ('latéralité: droit'), OPH-CR-RTN a retinopathy's eye as a qualifier of its value:
    both were dropped and the two sides' results read alike. Now a note; an empty qualifier
    slot (ANEST-CR-CPA 'risques sociaux' without a value) says nothing."""
    bundle, rows = _corpus_bundle("CANCER-D2LM-FIDD_2022.01.xml")
    res = by_entry_id(bundle)
    sided = [r["id"] for r in rows if (r["details"] or {}).get("code_qualifiers")
             and r["type"] == "lab_result"]
    assert sided
    sides = Counter(n["text"] for i in sided for n in res[i].get("note", [])
                    if n["text"].startswith("latéralité: "))
    assert sides["latéralité: droit"] > 0 and sides["latéralité: gauche"] > 0
    assert sum(sides.values()) == len(sided)
    bundle, _ = _corpus_bundle("OPH-CR-RTN_2022.01.xml")
    assert {n["text"] for e in bundle["entry"] for n in e["resource"].get("note", [])} >= {
        "Latéralité: gauche", "Latéralité: droit"}
    bundle, _ = _corpus_bundle("ANEST-CR-CPA_2022.01.xml")
    assert not [n for e in bundle["entry"] for n in e["resource"].get("note", [])
                if n["text"].startswith("Risques sociaux")]


def test_the_order_a_report_answers_and_a_results_other_values(sqlite_ctx) -> None:  # noqa: ANN001
    """The lab's ORU: OBR-2 placer order number (details.placer_order) was dropped; now
    DiagnosticReport.basedOn, a ServiceRequest by its placer identifier (PLAC). An OBX-5
    repeated ('positif~faible'): the further values were dropped; now a note."""
    file(sqlite_ctx, oru(), "LABM")
    (entry,) = cholesterol(sqlite_ctx)
    with sqlite_ctx.engine.connect() as conn:
        patient, rows = load_dossier_rows(conn, entry.patient_id)
    bundle = to_bundle(patient, rows)
    check_bundle(bundle)
    (report,) = [e["resource"] for e in bundle["entry"]
                 if e["resource"]["resourceType"] == "DiagnosticReport"]
    (based,) = report["basedOn"]
    # a ServiceRequest in the Bundle since operators' round 5 (its prescriber as requester),
    # no longer a logical reference by identifier
    order = next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == based["reference"])
    assert order["resourceType"] == "ServiceRequest"
    (placer,) = order["identifier"]
    assert placer["value"] == "8127079-1"
    assert placer["type"]["coding"][0]["code"] == "PLAC"
    rows = [_row(1, type="lab_result", code="5196-1", display="AgHBs", value="positif",
                 details={"other_values": ["faible"]}), _row(2, code="5195-3", value="négatif")]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    res = by_entry_id(bundle)
    assert res[1]["note"] == [{"text": "further values sent (OBX-5 repeated): faible"}]
    assert "note" not in res[2]
