"""Documents in HL7v2 as senders we have not seen write them: MetaDMPMSS flags in other case
and spelling, an ED split over several OBX, a reference pointer, empty or cancelled
documents, MDM triggers and TXA fields beyond the CI-SIS examples.

Why: each of these was read wrong (a masked document shown, a CDA filed as five broken
fragments, a cancellation dropped as a duplicate), and each is what a real sender sends."""

from __future__ import annotations

import pytest

from normalizers.model import DOCUMENT
from tests.test_documents_normalizer import b64, cda, norm, oru

DOC = b64(cda("DOC-1"))


def _meta(n: int, code: str, value: str, system: str = "MetaDMPMSS") -> str:
    return f"OBX|{n}|CE|{code}^Drapeau DMP^{system}||{value}^^HL70136||||||F"


def _oru_with(*extra: str) -> str:
    """The CI-SIS ORU of the normalizer tests, its MetaDMPMSS OBX replaced by ``extra``."""
    head = oru("NW", "F", DOC).split("\r")[:7]  # MSH to PRT
    return "\r".join([*head, *extra]) + "\r"


def _doc(nm):  # noqa: ANN001, ANN202
    docs = [e for e in nm.entries if e.type == DOCUMENT]
    assert len(docs) == 1
    return docs[0]


# -- MetaDMPMSS ---------------------------------------------------------------------------------
def test_meta_codes_and_system_in_other_case_mask_the_document():
    nm = norm(_oru_with(_meta(2, "masque_ps", "Y"), _meta(3, "Invisible_Patient", "N"),
                        _meta(4, "DESTDMP", "Y", system="metadmpmss")))
    assert _doc(nm).masking == {"MASQUE_PS": True, "INVISIBLE_PATIENT": False, "DESTDMP": True}
    assert [e.type for e in nm.entries] == [DOCUMENT]  # no flag filed as a lab result


@pytest.mark.parametrize("value, masked", [
    ("1", True), ("0", False), ("true", True), ("FALSE", False), ("Oui", True), ("non", False),
    ("y", True)])
def test_meta_flag_values_other_than_y_n_are_read_with_a_warning(value, masked):
    nm = norm(_oru_with(_meta(2, "MASQUE_PS", value)))
    assert _doc(nm).masking == {"MASQUE_PS": masked}
    said = [w for w in nm.warnings if "MASQUE_PS" in w]
    if value.upper() in ("Y", "N"):
        assert said == []
    else:
        assert said and said[0].startswith("OBX[8]-5:") and "table 0136" in said[0]


def test_meta_flag_that_says_nothing_is_ignored_with_a_warning():
    nm = norm(_oru_with(_meta(2, "MASQUE_PS", "peut-être"), _meta(3, "INVISIBLE_PATIENT", "")))
    assert _doc(nm).masking == {}
    assert sum("is not Y or N, ignored" in w for w in nm.warnings) == 2


def test_meta_before_the_document_still_applies_to_it():
    lines = _oru_with().split("\r")
    lines.insert(5, _meta(1, "MASQUE_PS", "Y"))  # after the OBR, before the ED
    assert lines[6].startswith("OBX|1|ED|")
    nm = norm("\r".join(lines))
    assert _doc(nm).masking == {"MASQUE_PS": True}
    assert [e.type for e in nm.entries] == [DOCUMENT]
