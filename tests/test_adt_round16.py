"""Hospital ADT (IHE PAM France) from senders not seen before, round 16: the HL7 null in ZFA,
identity statements received out of order, the v2.3.1 / v2.4 merges A34 / A36, and merges of
patients who have no dossier here. Store rules run on SQLite and PostgreSQL (``ctx``); the
many-case tables on SQLite or without a store."""

from __future__ import annotations

import pytest

from normalizers.model import NormalizationError
from tests.test_adt_consent import (
    SOURCE,
    adt,
    history,
    ledger,
    normalize,
    patient_row,
    zfa,
)
from tests.test_pipeline import NIR, ingest, make_patient, statuses

CHU = "CHU-X&1.2.250.1.999.9&ISO"


def _no_patient_data(*rows) -> None:  # noqa: ANN002
    """Ledger rows name fields, codes and dossier ids, never the patient."""
    text = repr([(r.error_message, r.warnings) for r in rows])
    for value in (NIR, "LEFÈVRE", "Hélène", "MARTIN", "19790328", "IPP0"):
        assert value not in text, value


# -- ZFA fields sent as the HL7 null '""' ---------------------------------------------------
@pytest.mark.parametrize("fields,expected", [
    ('""|20240306111154|||||||INO|20240301|IC|20240302',
     (None, "INO", "2024-03-01", "IC", "2024-03-02")),
    ('ACTIF|20240306111154|||||||""|""|IC|20240302',
     ("ACTIF", None, None, "IC", "2024-03-02")),
    ('ACTIF|20240306111154|||||||INO|""|""|""', ("ACTIF", "INO", None, None, None)),
    ('actif|20240306111154|||||||ino|20240301|""|20240302',
     ("ACTIF", "INO", "2024-03-01", None, None)),
])
def test_zfa_hl7_null_states_nothing_for_its_field(fields: str, expected: tuple) -> None:
    """A GAM writing "" in every field it has no value for: the whole ADT failed as
    ZFA_UNKNOWN_CODE '""'. The null field states no choice (warned), the others apply."""
    n = normalize(adt("N1", "A08", zfa=fields))
    c = n.adt.consent
    assert (c.dmp_status, c.opposition, c.opposition_date, c.consultation,
            c.consultation_date) == expected
    assert any('HL7 null ("") in ZFA-' in w for w in n.warnings)


def test_zfa_all_null_states_nothing_and_a_null_date_is_no_date() -> None:
    n = normalize(adt("N1", "A01", zfa='""|""|""||||||""|""|""|""'))
    assert n.adt.consent is None
    assert any("states neither DMP status" in w for w in n.warnings)
    c = normalize(adt("N2", "A01", zfa='ACTIF||||||||IO|""||')).adt.consent
    assert (c.opposition, c.opposition_date) == ("IO", None)  # EVN-2 dates it
    with pytest.raises(NormalizationError) as exc:  # a real unknown code still fails
        normalize(adt("N3", "A01", zfa="ACTIF||||||||OUI|||"))
    assert (exc.value.code, exc.value.location) == ("ZFA_UNKNOWN_CODE", "ZFA[5]-9")


def test_zfa_null_keeps_the_opposition_and_applies_the_rest(ctx) -> None:  # noqa: ANN001
    pid = make_patient(ctx)
    ingest(ctx, adt("C1", "A31", zfa=zfa("ACTIF", "IO", "20240301")), source=SOURCE)
    assert patient_row(ctx, pid).opposed
    ids = ingest(ctx, adt("C2", "A08", family="MARTIN", evn="20240401100000",
                          zfa='ACTIF|20240401|||||||""|""|IC|20240401'), source=SOURCE)
    assert statuses(ctx, ids) == ["deposited"]
    row = patient_row(ctx, pid)
    assert (row.opposed, row.consultation_consent, row.family) == (True, "IC", "MARTIN")
    assert [(h["opposition"], h["consultation"]) for h in history(ctx, pid)] == [
        ("IO", None), (None, "IC")]
    got = ledger(ctx, ids[0])
    assert "identity updated: family" in got.error_message
    assert any("ZFA[5]-9" in w and "HL7 null" in w for w in got.warnings)
    _no_patient_data(got)
