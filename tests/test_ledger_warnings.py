"""What the ledger says of an import it filed: each warning once.

Why: the identity's warnings (an INS whose OID was sent in the wrong component, a partial
birth date...) are part of the normalized message's warnings, and processing added them a
second time, so an admin read every identity warning twice."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from dossiers.schema import imports
from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.test_lab_normalizer import NIR, PID, oru


def test_identity_warnings_are_recorded_once(ctx) -> None:  # noqa: ANN001
    ctx.settings = replace(ctx.settings, auto_create=True)
    sent = f"{NIR}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS"
    pid = PID.replace(sent, f"{NIR}^^^1.2.250.1.213.1.4.8^INS")
    text = oru("OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||F", pid=pid)
    intake(ctx.engine, ctx.archive, [Received(text.encode(), "demo-lab", "file")])
    drain(ctx)
    with ctx.engine.connect() as conn:
        row = conn.execute(select(imports)).one()
    assert row.status == "deposited"
    said = [w for w in row.warnings if w.startswith("PID[2]")]
    assert said == ["PID[2]-3 repetition 2: INS OID sent as the namespace (CX.4.1), not as "
                    "the universal id (CX.4.2)"]
