"""Identity round 11: what French senders we had not seen send. An ADT under a fictitious or
doubtful identity (PID-32 FICTI, DOUTE...) no longer rewrites the dossier's traits. Invented
patients, INS with made-up digits and valid keys."""

from __future__ import annotations

import pytest

from dossiers.patients import add_identifier, create_patient
from normalizers.identity import read_identity_status
from tests.test_adt_consent import SOURCE, adt, ledger, patient_row
from tests.test_pipeline import ingest

GAM_IPP = "1.2.250.1.999.9"  # the IPP domain of tests.test_adt_consent's GAM (CHU-X)


# -- PID-32: an ADT whose traits are not stated as the patient's own ---------------------------
def known_by_ipp(ctx) -> int:  # noqa: ANN001
    """Mme Hélène Lefèvre's dossier, known by the GAM's IPP, without INS."""
    with ctx.engine.begin() as conn:
        patient = create_patient(conn, family="Lefèvre", given="Hélène",
                                 birth_date="1979-03-28", sex="F", birth_family="Lefèvre")
        add_identifier(conn, patient, GAM_IPP, "IPP0042", "PI")
    return patient


def a08(status: str) -> bytes:
    """The GAM's ADT^A08 for the IPP0042 patient under another name, 'DURAND Zoé' (as an
    'identité d'emprunt': a patient admitted under a made-up name), PID-32 ``status``."""
    return adt("C-A08", "A08", family="DURAND", given="Zoé", pid32=status)


@pytest.mark.parametrize("status", ["PROV~FICTI", "FICTI", "VALI~FICTI", "PROV~DOUTE", "DOUTE",
                                    "VIDE~USUR", "PROV~AL"])
def test_an_adt_under_a_fictitious_or_doubtful_identity_keeps_the_dossiers_traits(
        sqlite_ctx, status: str) -> None:  # noqa: ANN001
    """A GAM admits a patient under a made-up identity (PAM France PID-32 FICTI) or flags
    the identity as doubtful (DOUTE); its A08 reaches us with the hospital's IPP, which names
    the patient's dossier. Found by that IPP, the A08 was applied: the dossier took the
    made-up names. Its traits are not the patient's own: nothing applied, a warning says
    which status and why (no value), the A08 is still recorded on the dossier."""
    ctx = sqlite_ctx
    hers = known_by_ipp(ctx)
    (import_id,) = ingest(ctx, a08(status), source=SOURCE)
    row = ledger(ctx, import_id)
    assert (row.status, row.patient_id) == ("deposited", hers)
    assert row.error_message == "ADT^A08 recorded, nothing to apply"
    held = patient_row(ctx, hers)
    assert (held.family, held.given, held.birth_family) == ("Lefèvre", "Hélène", "Lefèvre")
    said = [w for w in row.warnings if w.startswith("identity not updated: the identity status")]
    assert len(said) == 1 and "not stated as the patient's own" in said[0], row.warnings
    assert "DURAND" not in said[0] and "Zoé" not in said[0]


@pytest.mark.parametrize("status", ["PROV", "VIDE", "PROV~HOMD", "RECUP"])
def test_an_adt_of_the_patients_own_traits_still_updates_the_dossier(sqlite_ctx,  # noqa: ANN001
                                                                     status: str) -> None:
    """The same A08 under a provisional identity, or a homonym flagged (the traits are the
    patient's own, shared with another): applied as before, found by the IPP."""
    ctx = sqlite_ctx
    hers = known_by_ipp(ctx)
    (import_id,) = ingest(ctx, a08(status), source=SOURCE)
    assert ledger(ctx, import_id).error_message.startswith("identity updated: family")
    assert patient_row(ctx, hers).family == "DURAND"


@pytest.mark.parametrize(("status", "doubted"), [
    ("FICTI", ("FICTI",)), ("VALI~DOUTE", ("DOUTE",)), ("QUAL~FICT~DOUT", ("FICT", "DOUT")),
    ("PROV~COLV", ("COLV",)), ("VALI~UD", ("UD",)), ("VALI", ()), ("PROV~HOMA", ()),
    ("VALI~US", ()), ("PROV~ZZZ", ()),  # an unknown code: the INS untrusted, traits as before
])
def test_which_statuses_say_the_traits_are_not_the_patients_own(status: str,
                                                                 doubted: tuple) -> None:
    assert read_identity_status(status).traits_doubted == doubted
