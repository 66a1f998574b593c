"""CDA R2 documents the way other senders write them (round 15: statements with no code
element, local codes with a standard translation, who stated a fact, encodings). Each test
builds a small invented document with one structure CDA R2 / CI-SIS / C-CDA allows and
checks what is filed against what a clinician reading the document understands."""

from __future__ import annotations

import pytest

from dossiers.fhir import to_bundle
from tests.test_cda_real_world import _entries, _section
from tests.test_fhir_export import PATIENT, _rows_read, check_bundle

LOINC = 'codeSystem="2.16.840.1.113883.6.1"'


def _bundle(entries: list) -> dict:  # noqa: ANN001
    """The FHIR Bundle of a document's body entries, checked against R4."""
    rows = _rows_read(entries)
    for row, entry in zip(rows, entries, strict=True):
        row["value_type"] = entry.value_type
        row["comparator"] = entry.comparator
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    return bundle


def _resources(bundle: dict, resource_type: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"]
            if e["resource"]["resourceType"] == resource_type]


# -- a procedure with no code element ----------------------------------------------------------
def _procedure(code: str, text: str) -> str:
    """A C-CDA / IHE PCC procedure entry as an EHR writes what the surgeon typed."""
    return f"""<entry><procedure classCode="PROC" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.14"/>
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.19"/>
      <id root="1.2.250.1.999.15" extension="PROC-1"/>{code}
      <text>{text}</text>
      <statusCode code="completed"/><effectiveTime value="20230411"/></procedure></entry>"""


@pytest.mark.parametrize("text", ["Appendicectomie sous cœlioscopie",
                                  '<reference value="#proc1"/>'])
def test_a_procedure_without_a_code_element_is_filed_by_its_text(text: str) -> None:
    """CDA R2 Procedure.code is 0..1: an appendectomy written with no code element at all,
    its name in the statement's text (inline or in the narrative), was dropped before its
    words were read (round 13 read them only under a code nullFlavor'd)."""
    narrative = '<paragraph ID="proc1">Appendicectomie sous cœlioscopie</paragraph>'
    (proc,) = _entries(_section("47519-4", narrative, _procedure("", text)))
    assert (proc.type, proc.code, proc.display, proc.mapped) == (
        "procedure", None, "Appendicectomie sous cœlioscopie", False)
    assert proc.effective == "2023-04-11"
    (resource,) = _resources(_bundle([proc]), "Procedure")
    assert resource["code"]["text"] == "Appendicectomie sous cœlioscopie"


def test_a_procedure_with_no_code_nor_text_is_still_not_filed() -> None:
    assert _entries(_section("47519-4", "", _procedure("", ""))) == []


# -- a local code with a standard translation -----------------------------------------------
def _glucose(code: str) -> str:
    return f"""<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.2"/>
      <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
      <id root="1.2.250.1.999.15" extension="GLY-1"/>{code}
      <statusCode code="completed"/><effectiveTime value="20230411080500+0200"/>
      <value xsi:type="PQ" value="5.4" unit="mmol/L"/></observation></entry>"""


LOCAL_GLUCOSE = """<code code="GLYJ" codeSystem="1.2.250.1.999.15.55"
  displayName="Glycémie à jeun"><translation code="1558-6" codeSystem="2.16.840.1.113883.6.1"
  displayName="Glucose à jeun [Moles/Volume] Sang"/></code>"""


def test_a_local_result_code_translated_into_loinc_keeps_the_labs_code() -> None:
    """A lab's own code with its LOINC in translation: filed under the LOINC (as before), the
    lab's code was dropped. It is kept in details.local_code, as the HL7v2 path keeps
    OBX-3's, and the export gives both codings."""
    (result,) = _entries(_section("30954-2", "Glycémie", _glucose(LOCAL_GLUCOSE)))
    assert (result.code, result.system, result.value) == ("1558-6", "LN", "5.4")
    assert result.details["local_code"] == {"code": "GLYJ", "system": "1.2.250.1.999.15.55",
                                            "display": "Glycémie à jeun"}
    (obs,) = _resources(_bundle([result]), "Observation")
    assert [c["code"] for c in obs["code"]["coding"]] == ["1558-6", "GLYJ"]


@pytest.mark.parametrize("code", [
    f'<code code="1558-6" {LOINC} displayName="Glucose à jeun"/>',
    f'<code code="1558-6" {LOINC}><translation code="GLYJ" codeSystem="1.2.250.1.999.15.55"/>'
    "</code>",
    f'<code nullFlavor="OTH"><translation code="1558-6" {LOINC}/></code>'])
def test_a_result_coded_in_loinc_has_no_local_code(code: str) -> None:
    (result,) = _entries(_section("30954-2", "Glycémie", _glucose(code)))
    assert result.code == "1558-6"
    assert "local_code" not in result.details
