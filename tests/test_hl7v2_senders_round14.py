"""HL7v2 lab results, round 14: results from senders we have not seen (French LIS, private
lab networks, hospital LIS), written as such a sender writes them (invented patients) and
checked against what must be filed.

What the round found:
- a power-of-ten unit written with its multiplication sign and its '^' left unescaped
  ('x10^9/l', 'x 10^12/L', '×10^3/µL') reached us as CE code 'x10', text '9/l': the unit
  'x10' was filed, unmapped, and the count lost its unit without a word (the bare '10^9/L'
  was already put back together);
- the multiplication sign '×' itself ('×10^9/L', '×10⁹/L', as the LIS prints it) was no
  spelling of the unit table: unmapped;
- French urinary ratios and osmolality with their denominator in words ('mg/mmol créat',
  'mOsm/kg H2O') and 'mUI/24h' were unmapped.
"""

from __future__ import annotations

import pytest

from normalizers.units import to_ucum
from tests.test_lab_normalizer import norm, oru


def _result(*obx: str):  # noqa: ANN202
    """The lab results of one ORU^R01 holding these OBX, and the message's warnings."""
    n = norm(oru(*obx))
    return [e for e in n.entries if e.type == "lab_result"], n.warnings


# -- units split at an unescaped '^' ----------------------------------------------------------
@pytest.mark.parametrize("obx6, ucum", [
    ("x10^9/l", "10*9/L"),
    ("X10^9/L", "10*9/L"),
    ("x 10^12/L", "10*12/L"),
    ("x10^3/µL", "10*3/uL"),
    ("10^9/L", "10*9/L"),  # already read so: kept
])
def test_power_of_ten_unit_with_unescaped_caret_and_multiplication_sign(obx6: str, ucum: str):
    """OBX-6 is a CE: 'x10^9/l' unescaped is code 'x10', text '9/l'. No unit code is 'x10'
    followed by a text starting with a digit: it is one unit, as '10^9/L' is."""
    (wbc,), warnings = _result(f"OBX|1|NM|6690-2^Leucocytes^LN||7,2|{obx6}|4,0-10,0|N|||F")
    assert (wbc.value_num, wbc.unit, wbc.unit_original) == (7.2, ucum, obx6)
    assert "unit_unmapped" not in wbc.details
    assert "OBX[5]-6: unescaped '^' inside the unit read as an exponent" in warnings


def test_a_unit_code_with_its_text_is_not_read_as_a_power():
    """A LIS unit code beside its text ('U1^mmol/L^99LAB'): not a power, read as before."""
    (k,), _ = _result("OBX|1|NM|2823-3^Potassium^LN||4,1|U1^mmol/L^99LAB|3,5-5,1|N|||F")
    assert (k.unit, k.unit_original) == ("mmol/L", "mmol/L")


@pytest.mark.parametrize("sent, ucum", [
    ("×10^9/L", "10*9/L"), ("×10⁹/L", "10*9/L"), ("× 10^12/L", "10*12/L"),
    ("mg/mmol créat", "mg/mmol{creat}"), ("mg/mmol créatinine", "mg/mmol{creat}"),
    ("mmol/mmol créat", "mmol/mmol{creat}"), ("mOsm/kg H2O", "mosm/kg{H2O}"),
    ("mUI/24h", "m[IU]/(24.h)"),
])
def test_french_spellings_of_units_map_to_ucum(sent: str, ucum: str):
    assert to_ucum(sent) == (ucum, True)


def test_multiplication_sign_through_obx6_escaped():
    (plt,), warnings = _result("OBX|1|NM|777-3^Plaquettes^LN||245|×10\\S\\9/L|150-400|N|||F")
    assert (plt.unit, plt.unit_original) == ("10*9/L", "×10^9/L")
    assert warnings == []
