"""HL7v2 hospital feeds, round 13: IHE PAM France ADT as a real GAM / EAI sends it.

What the round found:
- the movements of IHE PAM ITI-31 beyond A01-A13/A21/A22/A52/A53 (A54/A55 attending doctor,
  pending events A14-A16/A25-A27, tracking A09/A10/A32/A33, Z99 movement update) and PAM
  France's ward changes (Z80/Z81, Z84/Z85) failed HL7_UNSUPPORTED_EVENT: they are now read as
  any movement (acknowledged, their ZFA applied, no entry);
- a movement or an update without ZFA for a patient with no dossier here was quarantined
  (IDENTITY_UNKNOWN_PATIENT): every movement of every patient the hospital treats, work for
  nobody. It is now recorded (deposited, no dossier, no entry), and so is one that
  auto-creation could not make a dossier for (IDENTITY_INCOMPLETE); with a ZFA it waits;
- an A08/A31 naming only the used name (PID-5 typed 'D') overwrote the dossier's birth name
  and first given name with the used ones: both are now left as the dossier holds them;
- several ZFA segments: only the first was read, an empty one before the one stating the
  patient's opposition dropped it. Those stating something are read and must agree
  (ZFA_CONTRADICTORY otherwise), an empty one is passed over with a warning; a result
  message carrying ZFAs (round 8's rule) is held when any of them objects or says FERME;
- an A08/A31 whose birth date or sex contradicts the digits of the dossier's INS (a typo in
  the GAM, another person's traits) was applied: the dossier then contradicted its own INS.
  Nothing of that PID's identity is applied now, with a warning naming the trait;
- an A31 of a non-qualified identity (PID-32 PROV) found by its local id in a dossier
  holding an INS was told 'not matched by ... a known local identifier': it was; the
  warning of that match (qualified dossier, traits not applied) now stands alone.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from dossiers.schema import audit_log
from normalizers.model import NormalizationError
from tests.test_adt_consent import SOURCE, adt, ledger, normalize, patient_row, zfa
from tests.test_pipeline import ingest, make_patient, statuses

MOVEMENTS = ["A09", "A10", "A14", "A15", "A16", "A25", "A26", "A27", "A32", "A33", "A54",
             "A55", "Z80", "Z81", "Z84", "Z85", "Z99"]


def with_zbe(data: bytes, trigger: str) -> bytes:
    """The PAM France movement segment after PV1 (ZBE-1 movement id, ZBE-2 its date, ZBE-4
    the action: INSERT, UPDATE for Z99, CANCEL for a cancellation)."""
    action = "UPDATE" if trigger == "Z99" else ("CANCEL" if trigger in (
        "A25", "A26", "A27", "A32", "A33", "A55", "Z81", "Z85") else "INSERT")
    return data.replace(b"PV1|1|I|CHIR^^^CHU-X\r",
                        b"PV1|1|I|CHIR^^^CHU-X\rZBE|MVT-0042^CHU-X|20240306111154||"
                        + action.encode() + b"|N\r")


# -- every PAM movement is read ---------------------------------------------------------------
@pytest.mark.parametrize("trigger", MOVEMENTS)
def test_pam_movements_are_read_and_apply_their_zfa(trigger: str) -> None:
    n = normalize(with_zbe(adt("M1", trigger, zfa=zfa("ACTIF", "INO", "20240301")), trigger))
    assert n.entries == [] and n.adt.trigger == trigger and not n.adt.updates_identity
    assert (n.adt.consent.dmp_status, n.adt.consent.opposition) == ("ACTIF", "INO")


def test_a54_through_the_pipeline_records_and_applies_consent(ctx) -> None:  # noqa: ANN001
    pid = make_patient(ctx)
    ids = ingest(ctx, with_zbe(adt("M1", "A54", zfa=zfa("ACTIF", "IO", "20240306")), "A54"),
                 with_zbe(adt("M2", "Z99", evn="20240307080000"), "Z99"), source=SOURCE)
    assert statuses(ctx, ids) == ["deposited", "deposited"]
    assert patient_row(ctx, pid).opposed
    assert ledger(ctx, ids[1]).error_message == "ADT^Z99 recorded, nothing to apply"
    assert ledger(ctx, ids[1]).entries_count == 0


def test_links_and_identifier_moves_still_refused() -> None:
    with pytest.raises(NormalizationError) as exc:
        normalize(adt("M1", "A30"))  # (A37: no effect, ADT round 17; A43 read, round 20)
    assert exc.value.code == "HL7_UNSUPPORTED_EVENT"


# -- a patient without a dossier here -----------------------------------------------------------
@pytest.mark.parametrize("trigger", ["A03", "A31", "A55"])
def test_adt_without_zfa_for_unknown_patient_is_recorded(ctx, trigger: str) -> None:  # noqa: ANN001
    ids = ingest(ctx, adt("U1", trigger), source=SOURCE)
    row = ledger(ctx, ids[0])
    assert (row.status, row.stage, row.patient_id, row.entries_count) == (
        "deposited", "consent", None, 0)
    assert row.error_code is None
    assert row.error_message == (f"ADT^{trigger} recorded: no dossier for this patient here, "
                                 "nothing to apply")
    assert any("no dossier for this INS" in w for w in row.warnings)
    assert "Hélène" not in repr(row.warnings) and "LEFÈVRE" not in repr(row.warnings)
    # the same message again is a duplicate (dedupe level 2 holds without a dossier)
    again = ingest(ctx, adt("U1", trigger, eol="\n"), source=SOURCE)
    assert statuses(ctx, again) == ["duplicate"]


def test_adt_without_zfa_not_auto_created_for_want_of_traits_is_recorded(sqlite_ctx) -> None:  # noqa: ANN001
    ctx = sqlite_ctx  # logic, not the database: SQLite only
    ctx.settings = replace(ctx.settings, auto_create=True)
    ids = ingest(ctx, adt("U3", "A02", birth=""), source=SOURCE)  # no PID-7: no dossier made
    row = ledger(ctx, ids[0])
    assert (row.status, row.patient_id) == ("deposited", None)
    assert any("auto-creation needs" in w for w in row.warnings)
    ids = ingest(ctx, adt("U4", "A02", birth="", zfa=zfa("ACTIF", "IO")), source=SOURCE)
    assert (ledger(ctx, ids[0]).status, ledger(ctx, ids[0]).error_code) == (
        "quarantined", "IDENTITY_INCOMPLETE")


def test_adt_with_zfa_or_identity_problem_still_quarantined(sqlite_ctx) -> None:  # noqa: ANN001
    ctx = sqlite_ctx  # logic, not the database: SQLite only
    ids = ingest(ctx, adt("U1", "A01", zfa=zfa("ACTIF", "IO", "20240306")), source=SOURCE)
    assert (ledger(ctx, ids[0]).status, ledger(ctx, ids[0]).error_code) == (
        "quarantined", "IDENTITY_UNKNOWN_PATIENT")
    # an invalid INS key is an identity problem for an admin to see, ZFA or not
    ids = ingest(ctx, adt("U2", "A01", nir="279035121518988"), source=SOURCE)
    assert (ledger(ctx, ids[0]).status, ledger(ctx, ids[0]).error_code) == (
        "quarantined", "IDENTITY_INS_INVALID_KEY")


# -- PID-5: the used name alone does not replace the birth name -----------------------------
def _names(data: bytes, names: str) -> bytes:
    return data.replace("LEFÈVRE^Hélène^Hélène^^^^L".encode(), names.encode())


def test_a31_with_only_the_used_name_keeps_the_birth_name(sqlite_ctx) -> None:  # noqa: ANN001
    ctx = sqlite_ctx  # logic, not the database: SQLite only
    pid = make_patient(ctx)
    ingest(ctx, adt("N0", "A31"), source=SOURCE)  # born LEFÈVRE (PID-5 typed L)
    assert patient_row(ctx, pid).birth_family == "LEFÈVRE"
    # the used name and the used given name (prénom utilisé) only
    ids = ingest(ctx, _names(adt("N1", "A31", evn="20240401100000"),
                             "MARTIN^Léna^^^^^D"), source=SOURCE)
    assert statuses(ctx, ids) == ["deposited"]
    row = patient_row(ctx, pid)
    assert (row.family, row.birth_family, row.given) == ("MARTIN", "LEFÈVRE", "Hélène")
    assert ledger(ctx, ids[0]).error_message == "identity updated: family"
    with ctx.engine.connect() as conn:
        audit = conn.execute(select(audit_log).where(
            audit_log.c.action == "identity.update", audit_log.c.import_id == ids[0])).one()
    assert audit.details == {"fields": ["family"], "stated_at": "2024-04-01T10:00:00+02:00"}
    # both names typed the PAM France way: the birth name is stated, and applied (dated
    # after N1: an older statement no longer undoes a newer one, round 16)
    ingest(ctx, _names(adt("N2", "A31", evn="20240402100000"),
                       "MARTIN^Hélène^^^^^D~LEFEVRE-ROY^Hélène^^^^^L"), source=SOURCE)
    row = patient_row(ctx, pid)
    assert (row.family, row.birth_family) == ("MARTIN", "LEFEVRE-ROY")


def test_birth_name_stated_reads_name_types() -> None:
    only_used = normalize(_names(adt("N1", "A08"), "MARTIN^Hélène^^^^^D"))
    assert not only_used.adt.birth_name_stated
    assert only_used.identity.birth_family == "MARTIN"  # matching reads it as before
    for names in ("MARTIN^Hélène^^^^^D~LEFÈVRE^Hélène^^^^^L", "LEFÈVRE^Hélène",
                  "MARTIN^Hélène^^^^^L~LEFÈVRE^Hélène^^^^^M", "MARTIN ÉPOUSE LEFÈVRE^Hélène^^^^^D"):
        assert normalize(_names(adt("N1", "A08"), names)).adt.birth_name_stated, names


# -- PID-7/PID-8 against the dossier's INS ------------------------------------------------------
@pytest.mark.parametrize("birth,sex,trait", [("19800328", "F", "birth year"),
                                             ("19790428", "F", "birth month"),
                                             ("19790328", "M", "sex")])
def test_update_contradicting_the_ins_digits_not_applied(sqlite_ctx, birth, sex, trait) -> None:  # noqa: ANN001
    ctx = sqlite_ctx  # logic, not the database: SQLite only
    pid = make_patient(ctx)  # NIR 2 79 03...: a woman born in March 1979
    ids = ingest(ctx, adt("D1", "A31", birth=birth, sex=sex, family="MARTIN"), source=SOURCE)
    row = ledger(ctx, ids[0])
    assert (row.status, row.error_message) == ("deposited", "ADT^A31 recorded, nothing to apply")
    assert any(f"PID-7/PID-8 ({trait}) contradict" in w for w in row.warnings)
    assert birth not in repr(row.warnings)
    p = patient_row(ctx, pid)
    assert (p.birth_date, p.sex, p.family) == ("1979-03-28", "F", "Lefèvre")
    # the same patient's day of birth corrected (the NIR does not say the day): applied
    ids = ingest(ctx, adt("D2", "A31", birth="19790329"), source=SOURCE)
    assert "birth_date" in ledger(ctx, ids[0]).error_message
    assert patient_row(ctx, pid).birth_date == "1979-03-29"


def test_unqualified_identity_in_qualified_dossier_one_clear_warning(sqlite_ctx) -> None:  # noqa: ANN001
    ctx = sqlite_ctx  # logic, not the database: SQLite only
    pid = make_patient(ctx)
    ingest(ctx, adt("L1", "A31"), source=SOURCE)  # the hospital's id learnt with the INS
    ids = ingest(ctx, adt("L2", "A31", pid32="PROV", family="DUPONT"), source=SOURCE)
    row = ledger(ctx, ids[0])
    assert row.patient_id == pid and patient_row(ctx, pid).family == "LEFÈVRE"
    assert any("traits do not update the dossier" in w for w in row.warnings)
    assert not any("known local identifier" in w for w in row.warnings)


# -- several ZFA segments -------------------------------------------------------------------------
def _two_zfas(first: str, second: str) -> bytes:
    return adt("Z1", "A04", zfa=first) + f"ZFA|{second}\r".encode()


def test_empty_zfa_before_the_stating_one_is_passed_over() -> None:
    n = normalize(_two_zfas("||||||||||", zfa("ACTIF", "IO", "20240301")))
    assert (n.adt.consent.dmp_status, n.adt.consent.opposition) == ("ACTIF", "IO")
    assert any("2 ZFA segments (1 stating" in w and "ZFA[6] read" in w for w in n.warnings)
    same = normalize(_two_zfas(zfa("ACTIF", "IO", "20240301"), zfa("ACTIF", "IO", "20240301")))
    assert same.adt.consent.opposition == "IO"


def test_contradictory_zfas_fail_naming_the_second(sqlite_ctx) -> None:  # noqa: ANN001
    ctx = sqlite_ctx  # logic, not the database: SQLite only
    with pytest.raises(NormalizationError) as exc:
        normalize(_two_zfas(zfa("ACTIF", "INO", "20240301"), zfa("ACTIF", "IO", "20240301")))
    assert (exc.value.code, exc.value.location) == ("ZFA_CONTRADICTORY", "ZFA[6]")
    make_patient(ctx)
    ids = ingest(ctx, _two_zfas(zfa("ACTIF", "INO"), zfa("FERME")), source=SOURCE)
    row = ledger(ctx, ids[0])
    assert (row.status, row.error_code, row.error_location) == (
        "failed", "ZFA_CONTRADICTORY", "ZFA[6]")
    from pipelines.advice import advice

    assert "several ZFA segments" in advice("ZFA_CONTRADICTORY")


def test_oru_with_an_empty_zfa_before_the_objection_is_held() -> None:
    from tests.test_lab_normalizer import PID, norm, oru

    obx = "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L|3.9-5.8|N|||F"
    msg = oru(obx, pid=PID + "\rZFA|||||||||||\rZFA|" + zfa(opposition="IO"))
    reasons = norm(msg).quarantine_reasons
    assert [r.split(" ", 2)[:2] for r in reasons] == [["OPPOSITION", "ZFA[4]-9:"]]
