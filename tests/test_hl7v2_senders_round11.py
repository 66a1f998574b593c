"""HL7v2 lab results, round 11: what senders we have not seen write that earlier rounds read
past (a CQ quantity carrying its own unit, TS with its v2.3 degree of precision, ISO 2022
charset switches inside a field, NTE-4 comment types), each written as such a sender writes it
(French lab traffic, invented patients) and checked against what must be filed."""

from __future__ import annotations

import pytest

from normalizers.model import NormalizationError
from tests.test_lab_normalizer import norm

MSH = ("MSH|^~\\&|SIL-BIO|LABO-DEMO|DMP-INTAKE|GHT|20240315104500||ORU^R01^ORU_R01|{}|P|2.5"
       "|||||FRA|UNICODE UTF-8")
PID = "PID|1||LD-778^^^LABO-DEMO&1.2.250.1.999.42&ISO^PI||LEFÈVRE^Hélène^^^^^L||19790328|F"
ORC = "ORC|RE|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO"


def _obr(n: int, code: str, collected: str = "202403150810") -> str:
    return (f"OBR|{n}|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO|{code}|||{collected}"
            + "|" * 18 + "F")


def _oru(control_id: str, *segments: str, msh: str = MSH) -> str:
    return "\r".join([msh.format(control_id), PID, *segments]) + "\r"


# -- OBX-2 CQ: a quantity with its own unit ---------------------------------------------------
@pytest.mark.parametrize("value, obx6, number, unit", [
    ("5.4^mmol/L&&UCUM", "", 5.4, "mmol/L"),
    ("98^mg/dL&milligramme par décilitre&UCUM", "mg/dL^^UCUM", 98.0, "mg/dL"),
    ("78,5^µmol/l", "", 78.5, "umol/L"),
    ("4.1", "mmol/L", 4.1, "mmol/L"),
])
def test_a_composite_quantity_is_its_number_and_unit(value, obx6, number, unit):
    """CQ (v2.5 2.A.13): quantity ^ units, the units a CE in subcomponents ('5.4^mmol/L&&UCUM'),
    as US ELR 2.5.1 and v2.6+ engines type a quantity. It was kept as the text
    '5.4^mmol/L&&UCUM': no number, no unit, out of every trend and never the same result sent
    as NM. Read as the number and its unit (UCUM); OBX-6 may say the same unit again."""
    nm = norm(_oru("CQ-1", ORC, _obr(1, "BIO^Bilan^L"),
                   f"OBX|1|CQ|2345-7^Glucose^LN||{value}|{obx6}|3.9-5.8|N|||F"))
    result = nm.entries[1]
    assert (result.value_type, result.value_num, result.unit) == ("CQ", number, unit)
    assert result.value == value.split("^")[0]


def test_a_composite_quantity_whose_unit_obx6_contradicts_is_refused():
    """A CQ saying mg/dL and an OBX-6 saying g/L: which unit the number is in is not told."""
    with pytest.raises(NormalizationError) as exc:
        norm(_oru("CQ-2", ORC, _obr(1, "BIO^Bilan^L"),
                  "OBX|1|CQ|2345-7^Glucose^LN||98^mg/dL&&UCUM|g/L|||||F"))
    assert (exc.value.code, exc.value.location) == ("OBX_UNIT_CONFLICT", "OBX[5]-6")


def test_a_composite_quantity_that_is_no_number_is_refused():
    with pytest.raises(NormalizationError) as exc:
        norm(_oru("CQ-3", ORC, _obr(1, "BIO^Bilan^L"),
                  "OBX|1|CQ|2345-7^Glucose^LN||normal^mg/dL&&UCUM||||||F"))
    assert (exc.value.code, str(exc.value)) == (
        "OBX_BAD_NUMBER", "OBX[5]-5: not a number (value type CQ)")


# -- TS.2 degree of precision (v2.3 to v2.5, table 0529) --------------------------------------
@pytest.mark.parametrize("obr7, effective", [
    ("20240315000000^D", "2024-03-15"),
    ("202403151000^H", "2024-03-15T10+01:00"),
    ("20240315081000+0100^M", "2024-03-15T08:10+01:00"),
    ("20240315081012.25^S", "2024-03-15T08:10:12+01:00"),
    ("20240300000000^L", "2024-03"),
    ("20240315^S", "2024-03-15"),            # a degree finer than the value invents nothing
    ("202403150810^Q", "2024-03-15T08:10+01:00"),  # an unknown degree: the value as sent
])
def test_a_time_sent_with_its_degree_of_precision_keeps_that_precision(obr7, effective):
    """A v2.3.1 LIS pads every time to the second and says beside it how much of it holds
    (TS.2, HL7 table 0529: Y L D H M S): '20240315000000^D' is the 15th of March. Only the
    value was read, and the collection was filed at midnight, a time nobody measured."""
    nm = norm(_oru("TS2-1", ORC, _obr(1, "BIO^Bilan^L", collected=obr7),
                   "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.1|N|||F"))
    report, result = nm.entries
    assert (report.effective, result.effective) == (effective, effective)


def test_every_ts_of_a_result_honours_its_degree_of_precision():
    """OBX-14 and OBX-19 (TS), an OBX-5 of type TS, an SPM-17 start whose DTM and degree are
    subcomponents ('20240315000000&D', IHE LAB-TF's form) and a DR's ends."""
    nm = norm(_oru(
        "TS2-2", ORC, _obr(1, "BIO^Bilan^L", collected="202403150810"),
        "OBX|1|TS|33882-2^Date de prélèvement^LN||20240314000000^D||||||F|||202403150900^H"
        "|||||20240316120000^D",
        "OBX|2|DR|13362-9^Durée du recueil^LN||20240314080000&H^20240315080000&H||||||F",
        "SPM|1|||BLD^Sang^HL70487|||||||||||||20240315000000&D"))
    report, taken, period = nm.entries
    assert (taken.value, taken.effective, taken.issued) == (
        "2024-03-14", "2024-03-15T09+01:00", "2024-03-16")
    assert period.value == "2024-03-14T08+01:00/2024-03-15T08+01:00"
    assert taken.specimen_time == "2024-03-15"
