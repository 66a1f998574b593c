"""HL7v2 coding systems are named as the CDA path names them (tables/coding_system_aliases.csv,
code_systems.csv), so that one SNOMED CT or NABM code has one `system` on every channel.

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
