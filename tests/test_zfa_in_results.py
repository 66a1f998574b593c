"""A ZFA carried by a lab result or a document message (not only by ADT) is obeyed.

Why: consent is applied to the dossier from IHE PAM France ADT, but some senders put the
patient's ZFA in their ORU or MDM. When it says the patient objects to the feeding of their
DMP (ZFA-9 IO) or that the DMP is closed (ZFA-1 FERME), filing that very message because no
ADT said so first would feed a DMP against the objection the message carries."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from dossiers.schema import entries, imports
from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.test_adt_consent import zfa
from tests.test_lab_normalizer import PID, norm, oru

OBX = "OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||F"


def with_zfa(status: str = "ACTIF", opposition: str = "") -> str:
    return oru(OBX, pid=PID + "\rZFA|" + zfa(status=status, opposition=opposition))


@pytest.mark.parametrize("status, opposition, code", [
    ("ACTIF", "IO", "OPPOSITION"), ("FERME", "", "DOSSIER_CLOSED"),
    ("ACTIF", "INO", None), ("ACTIF", "", None), ("INEXISTANT", "NA", None)])
def test_zfa_in_an_oru_holds_it_when_it_refuses_the_feeding(status, opposition, code):
    reasons = norm(with_zfa(status, opposition)).quarantine_reasons
    assert [r.split(" ", 1)[0] for r in reasons] == ([code] if code else [])
    assert all(r.split(" ", 2)[1].startswith("ZFA[3]-") for r in reasons)
    assert norm(oru(OBX)).quarantine_reasons == []


def test_zfa_in_an_mdm_holds_it() -> None:
    from normalizers.lab import normalize_message
    from parsers.hl7v2.er7 import parse_text
    from tests.test_lab_normalizer import MAPS

    text = "\r".join([
        "MSH|^~\\&|DPI|CHU-X|DMP|GHT|20240315110000||MDM^T02^MDM_T02|MDM-1|P|2.5|||AL|NE||"
        "UNICODE UTF-8", "EVN||20240315110000", PID, "ZFA|" + zfa(opposition="IO"), "PV1|1|O",
        "TXA|1|CR^Compte rendu^L|TX|202403151000||||||||CR-1^DPI||||AU",
        "OBX|1|TX|18748-4^Compte rendu^LN||Examen normal.||||||F"]) + "\r"
    nm = normalize_message(parse_text(text), "demo-lab", MAPS)
    assert [r.split(" ", 1)[0] for r in nm.quarantine_reasons] == ["OPPOSITION"]


def test_processing_quarantines_it_and_files_nothing(ctx) -> None:  # noqa: ANN001
    ctx.settings = replace(ctx.settings, auto_create=True)
    intake(ctx.engine, ctx.archive, [Received(with_zfa(opposition="IO").encode(), "demo-lab",
                                              "file")])
    drain(ctx)
    with ctx.engine.connect() as conn:
        row = conn.execute(select(imports)).one()
        filed = conn.execute(select(entries)).all()
    assert (row.status, row.error_code) == ("quarantined", "OPPOSITION")
    assert "ZFA-9 IO" in row.error_message and filed == []
    assert row.error_location.startswith("ZFA[") and row.error_location.endswith("]-9")
