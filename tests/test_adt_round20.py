"""Hospital ADT (IHE PAM France) from senders not seen before, round 20: what MRG-1 warned of
reaches the ledger row of an identifier change, an ADT^A43 (move an identifier to another
patient) gets an outcome that does not stop the GAM's queue, a death and its correction are
ordered by EVN-2, and the sex and reduced-precision birth dates of PID-7 / PID-8 are pinned.
Store rules on SQLite and PostgreSQL (``ctx``); the many-case tables on SQLite or without a
store."""

from __future__ import annotations

from tests.test_adt_consent import SOURCE, adt, ledger, normalize
from tests.test_adt_round19 import CHU, CHU_OID, a47, identifiers
from tests.test_pipeline import ingest, make_patient


def _no_patient_data(*rows) -> None:  # noqa: ANN002
    """Ledger rows name fields, codes and dossier ids, never the patient's identifiers."""
    text = repr([(r.error_message, r.warnings) for r in rows])
    for value in ("LEFÈVRE", "Hélène", "19790328", "IPP0", "NDA1", "279037512345600"):
        assert value not in text, value


# -- MRG-1's own warnings on the A47 ledger row ----------------------------------------------
def test_a47_ledger_row_carries_what_reading_mrg1_warned_of(sqlite_ctx) -> None:  # noqa: ANN001
    """A GAM's MRG-1 holding the old IPP, a stay number (NDA, names no patient) and an INS
    without OID with a wrong key: the A47 paired the IPP by position and kept none of what
    reading MRG-1 warned of; the row said only '1 identifier(s) replaced', the NDA and the
    misread INS silently passed over. Each is on the row now, by repetition, no value."""
    ctx = sqlite_ctx
    pid = make_patient(ctx)
    ingest(ctx, adt("C1", "A31"), source=SOURCE)
    mrg1 = (f"IPP0042^^^{CHU}^PI~NDA1^^^{CHU}^AN~279037512345600^^^^INS-NIR"
            "~IPP0043^^^CHU-X&1.2.250.1.999.8&ISO^PI")
    (import_id,) = ingest(ctx, a47("W1", f"IPP0777^^^{CHU}^PI", mrg1), source=SOURCE)
    row = ledger(ctx, import_id)
    assert (row.status, row.patient_id) == ("deposited", pid)
    assert identifiers(ctx, pid) == {(CHU_OID, "IPP0777")}
    said = row.warnings
    assert any(w.startswith("MRG[5]-1 repetition 2: identifier of type AN does not name the "
                            "patient") for w in said), said
    assert "MRG[5]-1 repetition 3: INS without OID, kind taken from its type code (CX.5)" \
        in said
    assert any(w.startswith("MRG[5]-1 repetition 3: INS key is not valid") for w in said)
    _no_patient_data(row)
    # MRG-4 (a v2.3 sender's prior external id) is read alike
    n = normalize(a47("W2", "", f"|||IPP0042^^^{CHU}^PI~NDA1^^^{CHU}^AN", "A46",
                      pid2=f"IPP0777^^^{CHU}^PI"))
    assert any(w.startswith("MRG[5]-4 repetition 2: identifier of type AN") for w in n.warnings)
