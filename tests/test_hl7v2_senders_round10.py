"""HL7v2 lab results, round 10: what laboratory systems and engines we have not seen yet
write in fields earlier rounds read past (SN ratios without their separator, OBX-8 coded as
the CWE of v2.7+, several reference ranges, date ranges, times after the message), each
written as such a sender writes it (French lab traffic, invented patients) and checked
against what must be filed."""

from __future__ import annotations

import pytest

from normalizers.model import NormalizationError
from tests.test_lab_normalizer import norm

MSH = ("MSH|^~\\&|SIL-BIO|LABO-DEMO|DMP-INTAKE|GHT|20240315104500||ORU^R01^ORU_R01|{}|P|2.5"
       "|||||FRA|UNICODE UTF-8")
PID = "PID|1||LD-778^^^LABO-DEMO&1.2.250.1.999.42&ISO^PI||LEFÈVRE^Hélène^^^^^L||19790328|F"
ORC = "ORC|RE|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO"


def _obr(n: int, code: str, status: str = "F", filler: str = "24C0315-07",
         collected: str = "202403150810") -> str:
    return (f"OBR|{n}|CMD-1^SERVICE-NEPHRO|{filler}^LABO-DEMO|{code}|||{collected}"
            + "|" * 18 + status)


def _oru(control_id: str, *segments: str, msh: str = MSH) -> str:
    return "\r".join([msh.format(control_id), PID, *segments]) + "\r"


# -- SN: a second number without its separator ------------------------------------------------
@pytest.mark.parametrize("value", ["^1^^128", "<^1^^16", "^1^^"])
def test_an_sn_whose_second_number_has_no_separator_is_refused(value):
    """SN '^1^^128' (v2.5 2.A.71: num2 comes after a separator/suffix, ':' or '/' for a
    ratio, '-' for a range): a converter that dropped the ':' of a titre 1:128. The value
    was filed as '1128', a number no one sent, ratio or range unknown. Refused naming the
    field, as an SN that is no number is; an empty num2 after an empty separator ('^1^^')
    is only trailing delimiters and reads '1', as before."""
    sent = _oru("SN-SEP-1", ORC, _obr(1, "SERO^Sérologie rubéole^L"),
                f"OBX|1|SN|22497-2^Rubéole IgG titre^LN||{value}||<1:16||||F")
    if value == "^1^^":
        assert norm(sent).entries[1].value == "1"
        return
    with pytest.raises(NormalizationError) as exc:
        norm(sent)
    assert (exc.value.code, str(exc.value)) == (
        "OBX_BAD_NUMBER", "OBX[5]-5: SN with a second number (num2) but no separator/suffix "
        "(':' or '/' of a ratio, '-' of a range): what the two numbers say is not told")
