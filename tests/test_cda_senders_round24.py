"""CDA senders, round 24: data type names in the wrong case, scanned pages in a nonXMLBody,
the sender's own lab flag and its code system, the legal authenticator in the FHIR export.

Each case is what a real sender writes that the round before lost or misread; see the
docstrings for the input and why.
"""

from __future__ import annotations

from dataclasses import asdict

import pytest

from dossiers.fhir import to_bundle
from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from tests.test_cda_real_world import HEAD, TAIL, _section
from tests.test_fhir_export import check_bundle

PATIENT = {"id": 1, "family": "LEFÈVRE", "given": "Anaïs", "birth_date": "1978-09-02",
           "sex": "F", "ins": None}


def _normalized(*sections: str, head: str = HEAD):  # noqa: ANN202
    data = (head + "".join(sections) + TAIL).encode()
    return normalize_cda(parse_cda(data), data, "test")


def _bundle(entries: list) -> dict:
    return to_bundle(PATIENT, [{**asdict(e), "id": n} for n, e in enumerate(entries, 1)])


def _result(value: str, code: str = "2345-7", extra: str = "") -> str:
    return _section("30954-2", "Glycémie à jeun", f"""<entry>
      <observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
      <id root="1.2.250.1.999.13.4" extension="RES-{code}"/>
      <code code="{code}" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      <effectiveTime value="20240311080000+0100"/>{value}{extra}</observation></entry>""")


# -- data type names in lower case or under a prefix bound to the HL7 v3 namespace --------------
@pytest.mark.parametrize(("value", "filed", "warned"), [
    ('<value xsi:type="pq" value="5.4" unit="mmol/L"/>', ("5.4", 5.4, "mmol/L", "PQ"), True),
    ('<value xmlns:hl7="urn:hl7-org:v3" xsi:type="hl7:PQ" value="5.4" unit="mmol/L"/>',
     ("5.4", 5.4, "mmol/L", "PQ"), False),
    ('<value xmlns:v3="urn:hl7-org:v3" xsi:type="v3:pq" value="5.4" unit="mmol/L"/>',
     ("5.4", 5.4, "mmol/L", "PQ"), True),
    ('<value xsi:type="Ivl_Pq"><low value="3.9" unit="mmol/L"/></value>',
     (">=3.9", 3.9, "mmol/L", "IVL_PQ"), True),
    ('<value xmlns:v3="urn:hl7-org:v3" xsi:type="v3:cd" code="260385009" '
     'codeSystem="2.16.840.1.113883.6.96" displayName="Négatif"/>',
     ("Négatif", None, None, "CD"), True),
    # what the rule is not about: the right case; a type no case makes known
    ('<value xsi:type="PQ" value="5.4" unit="mmol/L"/>', ("5.4", 5.4, "mmol/L", "PQ"), False),
    ('<value xsi:type="xyz" value="5.4"/>', ("5.4", None, None, "xyz"), False)])
def test_a_data_type_in_the_wrong_case_keeps_its_value(value: str, filed: tuple,
                                                       warned: bool) -> None:
    """'pq' for PQ (seen from a LIS export written by hand-made templates) was read as a
    type we do not model: the number and unit were lost. Type names are read whatever
    their case, said as CDA_XSI_TYPE_CASE; a prefix bound to urn:hl7-org:v3 was already
    read, and stays without a warning."""
    msg = _normalized(_result(value))
    (result,) = msg.entries[1:]
    assert (result.value, result.value_num, result.unit, result.value_type) == filed
    assert any(w.startswith("CDA_XSI_TYPE_CASE") for w in msg.warnings) is warned
    assert not any(w.startswith("CDA_XSI_TYPE_NAMESPACE") for w in msg.warnings)
    check_bundle(_bundle(msg.entries))
