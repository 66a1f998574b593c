"""HL7v2 lab results, round 8: message structures of senders we have not seen (batch files,
several patients in one ORU^R01, orders with and without ORC, comments and their owners,
parent and child orders, segment names in lower case, fragmented messages), each written as
such a sender writes it (French lab traffic, invented patients) and checked against what
must be filed: each result in its own patient's dossier, with its code, value and comments,
nothing invented and nothing dropped without a word."""

from __future__ import annotations

import pytest

from normalizers.model import NormalizationError
from tests.test_lab_normalizer import norm

V231 = ("MSH|^~\\&|SIL-V23|LABO-ANCIEN|DMP-INTAKE|GHT|20040315104500||ORU^R01|{}|P|2.3.1|||||"
        "FRA|8859/1")


def _order(n: int, glucose: str) -> list[str]:
    return [f"ORC|RE|CMD-{n}|04C0315-0{n}^LABO-ANCIEN",
            f"OBR|{n}|CMD-{n}|04C0315-0{n}^LABO-ANCIEN|GLY^Glycémie^L|||200403150810|||||||||||"
            "|||||||F",
            f"OBX|1|NM|2345-7^Glucose [Masse/Volume] Sérum^LN||{glucose}|mmol/L|3.9-5.8|N|||F"]


def _whose(nm) -> list[tuple[str, str, list[str]]]:  # noqa: ANN001
    """(PID location, family name, values of its results) of each patient of ``nm``."""
    out, start = [], 0
    for part in nm.patients:
        values = [e.value for e in nm.entries[start:start + part.entries]
                  if e.type == "lab_result"]
        out.append((part.location, part.identity.family, values))
        start += part.entries
    return out


# -- several patients in one ORU^R01 ---------------------------------------------------------
@pytest.mark.parametrize("pids", [
    # v2.3 senders that name the patient by PID-2 (external id), PID-3 left empty
    ("PID|1|EXT-111^^^LABO-ANCIEN|||DUPONT^Jean||19800101|M",
     "PID|2|EXT-222^^^LABO-ANCIEN|||MARTIN^Anne||19500202|F"),
    # by names and birth dates only
    ("PID|1||||DUPONT^Jean||19800101|M", "PID|2||||MARTIN^Anne||19500202|F"),
    # PID-3 explicitly null, PID-4 (alternate id) filled
    ('PID|1||""|ALT-1^^^LABO-ANCIEN|DUPONT^Jean||19800101|M',
     'PID|2||""|ALT-2^^^LABO-ANCIEN|MARTIN^Anne||19500202|F'),
])
def test_patients_without_pid3_are_told_apart_by_their_other_identifiers(pids):
    """Two PATIENT_RESULT groups were one patient whenever their PID-3 were equal, empty
    ones included: Anne MARTIN's glucose was filed in Jean DUPONT's dossier. Without PID-3,
    PID-2, PID-4 and the demographics say who is who."""
    nm = norm("\r".join([V231.format("MULTI-1"), pids[0], *_order(1, "5.4"), pids[1],
                         *_order(2, "7.9")]) + "\r")
    assert _whose(nm) == [("PID[2]", "DUPONT", ["5.4"]), ("PID[6]", "MARTIN", ["7.9"])]


def test_a_pid_repeated_for_the_same_patient_is_still_one_patient():
    """The same PID sent again before a second order (same PID-2, names, birth date) is the
    same patient, as with a PID-3: one part, both results."""
    pid = "PID|1|EXT-111^^^LABO-ANCIEN|||DUPONT^Jean||19800101|M"
    nm = norm("\r".join([V231.format("MULTI-2"), pid, *_order(1, "5.4"), pid,
                         *_order(2, "7.9")]) + "\r")
    assert not nm.patients
    assert [e.value for e in nm.entries if e.type == "lab_result"] == ["5.4", "7.9"]


def test_an_mdm_naming_two_patients_without_pid3_is_refused():
    """One patient by its structure (MDM, ADT, ORU^R30): two PIDs without PID-3 naming two
    people are refused, naming the field that tells them apart, never merged."""
    msh = V231.format("MDM-1").replace("ORU^R01", "MDM^T02")
    with pytest.raises(NormalizationError) as exc:
        norm("\r".join([msh, "EVN|T02|200403151045", "PID|1||||DUPONT^Jean||19800101|M",
                        "PID|2||||MARTIN^Anne||19500202|F",
                        "TXA|1|CR|TX|200403151045||||||||DOC-1||||||AU",
                        "OBX|1|TX|11502-2^CR^LN||Compte rendu||||||F"]) + "\r")
    assert (exc.value.code, exc.value.location) == ("HL7_MULTIPLE_PATIENTS", "PID[4]-5")
    assert "MARTIN" not in str(exc.value)
