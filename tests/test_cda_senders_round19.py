"""CDA R2 documents the way other senders write them (round 19). Each test builds a small
invented document with one structure CDA R2 / CI-SIS / IHE PCC / C-CDA 2.1 allows, or reads
the committed samples, and checks what is filed against what a clinician reading the
document understands. The round found: the sample generator's IHE internal references
(a treatment's reason) named ids no problem had."""

from __future__ import annotations

from pathlib import Path

import pytest

from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from tests.test_cda_real_world import HEAD, TAIL

LOINC = 'codeSystem="2.16.840.1.113883.6.1"'
SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "cda"


# -- the samples' internal references name the problems they are about ---------------------------
@pytest.mark.parametrize("name", ["05_ldl_ses_chu_bordeaux.xml", "06_vsm_medecin_traitant.xml"])
def test_a_samples_treatment_reason_names_its_problem(name: str) -> None:
    """IHE PCC internal reference (CI-SIS FR-Reference-interne) from a treatment to the
    problem it treats: the generator wrote a fresh id there, so every reason pointed at
    nothing (CDA_ENTRY_REFERENCE_UNRESOLVED on samples 05, 06 and 07). Each now names its
    problem observation, and the link carries the problem's key with the same code."""
    data = (SAMPLES / name).read_bytes()
    msg = normalize_cda(parse_cda(data), data, "samples")
    assert not [w for w in msg.warnings if "CDA_ENTRY_REFERENCE_UNRESOLVED" in w]
    problems = {e.key: e for e in msg.entries if e.type == "problem"}
    linked = 0
    for med in (e for e in msg.entries if e.type == "medication"):
        for link in med.details.get("entry_links") or ():
            assert link["type"] == "RSON"
            assert link["key"] in problems
            linked += 1
    assert linked == 3


# -- an entry reference read before what it names ------------------------------------------------
def _goal(reference: str) -> str:
    """A C-CDA Goal Observation (4.121): HbA1c at or below 7 %, for a health concern."""
    return f"""<component><section><templateId root="2.16.840.1.113883.10.20.22.2.60"/>
<code code="61146-7" {LOINC}/><title>Objectifs</title>
<text><paragraph ID="g1">HbA1c inférieure ou égale à 7 %</paragraph></text>
<entry><observation classCode="OBS" moodCode="GOL">
<templateId root="2.16.840.1.113883.10.20.22.4.121"/><id root="1.2.250.1.999.19" extension="OBJ-1"/>
<code code="4548-4" {LOINC}
  displayName="Hémoglobine A1c/hémoglobine totale [Fraction massique] Sang"/>
<text><reference value="#g1"/></text><statusCode code="active"/>
<effectiveTime><low value="20240301"/><high value="20240901"/></effectiveTime>
<value xsi:type="IVL_PQ"><high value="7" unit="%"/></value>{reference}</observation></entry>
</section></component>"""


CONCERN_REF = """<entryRelationship typeCode="RSON"><act classCode="ACT" moodCode="EVN">
<templateId root="2.16.840.1.113883.10.20.22.4.122"/>
<id root="1.2.250.1.999.19" extension="PREOC-1"/><code nullFlavor="NP"/>
<statusCode code="completed"/></act></entryRelationship>"""

HEALTH_CONCERN = f"""<component><section><templateId root="2.16.840.1.113883.10.20.22.2.58"/>
<code code="75310-3" {LOINC}/><title>Préoccupations</title><text>Diabète déséquilibré</text>
<entry><act classCode="ACT" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.132"/>
<id root="1.2.250.1.999.19" extension="PREOC-1"/><code code="75310-3" {LOINC}/>
<statusCode code="active"/>
<entryRelationship typeCode="REFR"><observation classCode="OBS" moodCode="EVN">
<templateId root="2.16.840.1.113883.10.20.22.4.4" extension="2015-08-01"/>
<id root="1.2.250.1.999.19" extension="PB-1"/>
<code code="55607006" codeSystem="2.16.840.1.113883.6.96"/><statusCode code="completed"/>
<effectiveTime><low value="2015"/></effectiveTime>
<value xsi:type="CD" code="E11.9" codeSystem="2.16.840.1.113883.6.3"
  displayName="Diabète sucré de type 2, sans complication"/></observation></entryRelationship>
</act></entry></section></component>"""


@pytest.mark.parametrize("goal_first", [True, False])
def test_a_reference_read_before_the_concern_it_names_links_to_its_problem(
        goal_first: bool) -> None:
    """C-CDA Care Plan: the goals section comes before the health concerns one (any order is
    allowed). The goal's Entry Reference (4.122) carries the concern's id; read first, it
    registered that id as its own statement, so the concern was never found
    (CDA_ENTRY_REFERENCE_UNRESOLVED, the problem lost to the goal). In either order the
    link now names the diabetes the concern holds."""
    sections = [_goal(CONCERN_REF), HEALTH_CONCERN]
    data = (HEAD + "".join(sections if goal_first else sections[::-1]) + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    assert not [w for w in msg.warnings if "CDA_ENTRY_REFERENCE_UNRESOLVED" in w]
    problem = next(e for e in msg.entries if e.type == "problem")
    goal = next(e for e in msg.entries if e.code == "4548-4")
    assert goal.details["entry_links"] == [
        {"type": "RSON", "id": "1.2.250.1.999.19^PREOC-1", "keys": [problem.key]}]


def test_a_reference_to_nothing_is_still_said_unresolved() -> None:
    """A reference whose id no statement has stays an id, with the warning (round 18)."""
    data = (HEAD + _goal(CONCERN_REF) + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    assert [w for w in msg.warnings if "CDA_ENTRY_REFERENCE_UNRESOLVED" in w]
    goal = next(e for e in msg.entries if e.code == "4548-4")
    assert goal.details["entry_links"] == [{"type": "RSON", "id": "1.2.250.1.999.19^PREOC-1"}]
