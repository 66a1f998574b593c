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
