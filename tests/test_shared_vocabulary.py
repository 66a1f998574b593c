"""HL7v2 coding systems and specimens are read as the CDA path reads them (tables/
coding_system_aliases.csv, code_systems.csv; details.specimen), so that one SNOMED CT or NABM
code has one `system` on every channel, and a result says what was sampled on every channel.

Why: dedupe level 4 compares the system: a result coded 'SCT' in an ORU and the same result
under SNOMED CT's OID in a CR-BIO ('SNOMED-CT') were two entries; NABM sent as its OID stayed
a bare OID in HL7v2 while the CDA path named it."""

from __future__ import annotations

import pytest

from normalizers.codes import system_name
from normalizers.tabledata import table
from tests.test_lab_normalizer import norm, oru


@pytest.mark.parametrize("sent, named", [
    ("SCT", "SNOMED-CT"), ("sct", "SNOMED-CT"), ("SNOMED CT", "SNOMED-CT"),
    ("2.16.840.1.113883.6.96", "SNOMED-CT"), ("I10", "CIM-10"),
    ("1.2.250.1.213.2.7", "NABM"), ("L", "L"), ("99LAB", "99LAB"), ("LOCAL", "LOCAL"),
    ("1.2.250.1.999.42", "1.2.250.1.999.42")])
def test_system_names(sent: str, named: str) -> None:
    assert system_name(sent) == named


def test_every_alias_names_a_system_the_cda_path_uses() -> None:
    cda_names = {row["name"] for row in table("code_systems")}
    assert {row["system"] for row in table("coding_system_aliases")} <= cda_names


def test_hl7v2_result_and_order_codes_use_the_cda_names() -> None:
    text = oru("OBX|1|CWE|260373001^Detected^SCT||POS^Positif^L||||||F",
               "OBX|2|NM|XQ7^Dosage local^L||5.4|mmol/L|3.9-5.8|N|||F")
    nm = norm(text.replace("BIOCHIMIE^Bilan biochimique^L", "0552^Glucose^1.2.250.1.213.2.7"))
    report, detected, glucose = nm.entries
    assert (report.code, report.system) == ("0552", "NABM")
    assert (detected.code, detected.system, detected.mapped) == ("260373001", "SNOMED-CT", False)
    assert (glucose.system, glucose.mapped) == ("L", False)  # a local code stays local
    # keys are built from what was sent: a result filed before keeps its key
    assert detected.key.endswith("|260373001|SCT|")


def test_specimen_type_from_spm4_else_obr15_like_the_cda_path() -> None:
    """SPM-4 (v2.5), else OBR-15.1 (v2.3-2.4), into details.specimen as a CR-BIO's specimen
    is filed: code, system by its shared name (HL7 table 0487), display; never in the fact."""
    from dossiers.deposit import fact_of
    from tests.test_lab_normalizer import OBR

    obx = "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.0||||F|||202403150810"
    spm = "SPM|1|||SER^Sérum^HL70487|||||||||||||202403150800"
    (_, k1) = norm(oru(obx, tail=(spm,))).entries
    assert k1.details["specimen"] == {"code": "SER", "system": "HL70487", "display": "Sérum"}
    obr15 = OBR.split("|")
    obr15[15] = "UR&Urine&HL70070"
    (_, k2) = norm(oru(obx, order=("ORC|RE|CMD-1", "|".join(obr15)))).entries
    assert k2.details["specimen"] == {"code": "UR", "system": "HL70070", "display": "Urine"}
    (_, k3) = norm(oru(obx)).entries
    assert "specimen" not in k3.details and fact_of(k1) == fact_of(k3)


def test_obr15_holding_no_specimen_code_is_not_a_specimen() -> None:
    """The HL7 textbook sample shifts its ordering provider into OBR-15 ('555-55-5555^
    PRIMARY^PATRICIA P'): no specimen is made of it."""
    from tests.test_lab_normalizer import OBR

    obx = "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.0||||F|||202403150810"
    obr = OBR.split("|")
    obr[15] = "555-55-5555^PRIMARY^PATRICIA P^^^^MD"
    (_, k) = norm(oru(obx, order=("ORC|RE|CMD-1", "|".join(obr)))).entries
    assert "specimen" not in k.details


@pytest.mark.parametrize(("obr15", "specimen"), [
    ("URI^Urine^HL70487", {"code": "URI", "system": "HL70487", "display": "Urine"}),
    ("BLD^Sang total^HL70070", {"code": "BLD", "system": "HL70070", "display": "Sang total"}),
    ("122575003^Urine^SCT", {"code": "122575003", "system": "SNOMED-CT", "display": "Urine"}),
    # v2.3's SPS: code, then additives (component 2): no table in the third place
    ("UR^HEP", {"code": "UR", "system": "", "display": ""}),
    ("UR&Urine&HL70070^^^", {"code": "UR", "system": "HL70070", "display": "Urine"})])
def test_obr15_written_as_a_cwe_keeps_its_name_and_table(obr15, specimen) -> None:
    """'URI^Urine^HL70487' in OBR-15 (the specimen as a CWE in the components, where SPS
    puts it in component 1's subcomponents): the name was read as SPS.2 and lost, and the
    table with it."""
    from tests.test_lab_normalizer import OBR

    obx = "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.0||||F|||202403150810"
    obr = OBR.split("|")
    obr[15] = obr15
    (_, k) = norm(oru(obx, order=("ORC|RE|CMD-1", "|".join(obr)))).entries
    assert k.details["specimen"] == specimen
