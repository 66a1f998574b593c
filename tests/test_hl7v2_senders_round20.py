"""HL7v2 lab results from senders we have not seen, round 20: what round 19 left (French dates
in a date-typed OBX-5, a result then its withdrawal in one message, repeated flags), checked
against what must be filed, warned about or refused (French lab traffic, invented patients).

What the round found:
- OBX-8 repeated with the same flag ('H~H', 'H~H^High^HL70078') was filed 'H,H', two
  interpretations where the lab gave one: kept once now, said (OBX[n]-8);
"""

from __future__ import annotations

import pytest

from tests.test_lab_normalizer import norm, oru


def _by_ref(nm) -> dict:  # noqa: ANN001
    return {e.source_ref: e for e in nm.entries}


# -- OBX-8: the same flag repeated -------------------------------------------------------------
@pytest.mark.parametrize("flags, filed", [
    ("H~H", "H"), ("h~H", "H"), ("H~H^High^HL70078", "H"), ("HH~A~HH", "HH,A"),
    ("Haut~H", "H"),
])
def test_a_flag_repeated_is_kept_once(flags: str, filed: str) -> None:
    nm = norm(oru(f"OBX|1|NM|2823-3^Potassium^LN||6,2|mmol/L|3,5-5,1|{flags}|||F"))
    assert _by_ref(nm)["OBX[5]"].interpretation == filed
    assert "OBX[5]-8: the same abnormal flag sent more than once: kept once" in nm.warnings


@pytest.mark.parametrize("flags, filed", [("H~A", "H,A"), ("L~AA", "L,AA"), ("~H", "H")])
def test_different_flags_are_all_kept(flags: str, filed: str) -> None:
    nm = norm(oru(f"OBX|1|NM|2823-3^Potassium^LN||6,2|mmol/L|3,5-5,1|{flags}|||F"))
    assert _by_ref(nm)["OBX[5]"].interpretation == filed
    assert not any("-8:" in w for w in nm.warnings)
