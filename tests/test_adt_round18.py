"""Hospital ADT (IHE PAM France) from senders not seen before, round 18: no misleading
warning on a dossier auto-created from the ADT's own PID, the advice of error_advice.csv
checked against what is refused, a death dated after the reception time its statement was
pulled back to, the ACK of a death the message cannot state, and the encounter events
(cancellations, a discharge without its admission, PV1 classes and UF locations, ZBE):
acknowledged, recorded, nothing filed. The many-case tables run on SQLite or without a
store; the one store rule that differs by dialect (the death refused at filing) on both."""

from __future__ import annotations

import re
from dataclasses import replace

from tests.test_adt_consent import SOURCE, adt, ledger
from tests.test_pipeline import NIR, ingest, make_patient, statuses


def _nir(first13: str) -> str:
    """A NIR with its key (97 - first 13 digits mod 97)."""
    return f"{first13}{97 - int(first13) % 97:02d}"


def _no_patient_data(*rows) -> None:  # noqa: ANN002
    """Ledger rows name fields, codes and dossier ids, never the patient."""
    text = repr([(r.error_message, r.warnings) for r in rows])
    for value in (NIR, "LEFÈVRE", "Hélène", "GUÉRIN", "Anaïs", "Loïc", "19790328", "IPP0"):
        assert value not in text, value


def _warned(row, start: str) -> bool:  # noqa: ANN001
    return any(w.startswith(start) for w in row.warnings or [])


NOT_UPDATED = "identity not updated: the patient was not matched by a qualified INS"


# -- an identity ADT that auto-creates the dossier: no 'identity not updated' warning -------
def test_a_dossier_made_from_the_adt_is_not_warned_identity_not_updated(sqlite_ctx) -> None:  # noqa: ANN001
    """A28 (or A08/A31) of a patient the store did not hold, auto-creation on: the dossier is
    made from this very PID, yet the row said 'identity not updated: not matched by a
    qualified INS', and the admin of a GAM sending A28 for every new patient looked for a
    problem. No warning now; an A08 found by demographics only keeps it (there it is
    right: its PID's traits are not applied)."""
    ctx = sqlite_ctx  # no store rule: the warning is decided before any dialect matters
    ctx.settings = replace(ctx.settings, auto_create=True)
    sent = [("A28", "2850775056123", "19850715", "IPP0501"),
            ("A08", "2920169123045", "19920115", "IPP0502"),
            ("A31", "2010513055087", "20010512", "IPP0503")]
    ids = ingest(ctx, *(adt(f"N{n}", t, nir=_nir(nir), birth=birth, local_id=ipp,
                            family="GUÉRIN", given="Anaïs")
                        for n, (t, nir, birth, ipp) in enumerate(sent)), source=SOURCE)
    assert statuses(ctx, ids) == ["deposited"] * 3
    rows = [ledger(ctx, i) for i in ids]
    assert len({r.patient_id for r in rows}) == 3 and None not in {r.patient_id for r in rows}
    assert [_warned(r, NOT_UPDATED) for r in rows] == [False] * 3
    assert [r.error_message for r in rows] == [f"ADT^{t} recorded, nothing to apply"
                                               for t, *_ in sent]
    # a look-alike found by demographics only (no INS, an IPP never seen): still warned
    pid = make_patient(ctx)
    look_alike = adt("N9", "A08", pid32="PROV", local_id="IPP0777", evn="20240402090000")
    look_alike = re.sub(rb"~\d{15}\^\^\^ASIP-SANTE-INS-NIR&[0-9.]+&ISO\^INS", b"", look_alike)
    (one,) = ingest(ctx, look_alike, source=SOURCE)
    row = ledger(ctx, one)
    assert (row.status, row.patient_id) == ("deposited", pid)
    assert _warned(row, NOT_UPDATED)
    _no_patient_data(*rows, row)
