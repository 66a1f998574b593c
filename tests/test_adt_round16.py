"""Hospital ADT (IHE PAM France) from senders not seen before, round 16: the HL7 null in ZFA,
identity statements received out of order, the v2.3.1 / v2.4 merges A34 / A36, and merges of
patients who have no dossier here. Store rules run on SQLite and PostgreSQL (``ctx``); the
many-case tables on SQLite or without a store."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dossiers.schema import audit_log, patient_identifiers
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
from tests.test_pipeline import INS_OID, NIR, ingest, make_patient, statuses

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


def test_zfa_null_keeps_the_opposition_and_applies_the_rest(sqlite_ctx) -> None:  # noqa: ANN001
    ctx = sqlite_ctx  # store rules it uses are run on both stores elsewhere
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


@pytest.mark.parametrize("zfa10,zfa12,kept", [
    ("20420301", "20240306", (None, "2024-03-06")),  # a mistyped year
    ("20240307", "202403061500", (None, "2024-03-06T15:00+01:00")),  # the day after
    ("20240306", "2024", ("2024-03-06", "2024")),  # the message's day, a year: kept
])
def test_zfa_date_after_its_message_dates_nothing(zfa10: str, zfa12: str, kept: tuple) -> None:
    c = normalize(adt("N1", "A08", evn="20240306111154",
                      zfa=zfa("ACTIF", "IO", zfa10, "IC", zfa12))).adt.consent
    assert (c.opposition_date, c.consultation_date) == kept


def test_a_mistyped_future_date_does_not_lock_the_opposition(sqlite_ctx) -> None:  # noqa: ANN001
    """ZFA-10 '20420301' for 20240301: the opposition was the newest statement until 2042,
    and the patient's withdrawal in April was filed as older, history only: her dossier
    stayed closed to feeding. The opposition is now dated by its message."""
    ctx = sqlite_ctx  # store rules it uses are run on both stores elsewhere
    pid = make_patient(ctx)
    ids = ingest(ctx, adt("C1", "A08", evn="20240306111154", zfa=zfa("ACTIF", "IO", "20420301")),
                 adt("C2", "A08", evn="20240402090000", zfa=zfa("ACTIF", "INO", "20240402")),
                 source=SOURCE)
    assert statuses(ctx, ids) == ["deposited", "deposited"]
    assert not patient_row(ctx, pid).opposed
    first = ledger(ctx, ids[0])
    assert any(w.startswith("ZFA[5]-10: dated after the message") for w in first.warnings)
    assert [h["opposition_date"] for h in history(ctx, pid)] == [None, "2024-04-02"]
    _no_patient_data(first)


# -- several ZFA segments, each stating some of the choices ---------------------------------
def _two_zfas(first: str, second: str, control: str = "Z1") -> bytes:
    return adt(control, "A04", zfa=first) + f"ZFA|{second}\r".encode()


@pytest.mark.parametrize("first,second,expected", [
    # the GAM's status, the DPI's opposition and consent
    (zfa("ACTIF"), zfa("", "IO", "20240301", "IC", "20240302"),
     ("ACTIF", "IO", "2024-03-01", "IC", "2024-03-02")),
    # the same status in both, the opposition dated in one only
    (zfa("ACTIF", "IO"), zfa("ACTIF", "IO", "20240301"),
     ("ACTIF", "IO", "2024-03-01", None, None)),
    (zfa("", "", "", "INC", "20240305"), zfa("FERME"), ("FERME", None, None, "INC", "2024-03-05")),
])
def test_complementary_zfas_are_read_together(first: str, second: str,
                                              expected: tuple) -> None:
    """An EAI merging the GAM's ZFA (DMP status) with the DPI's (opposition, consent): the
    two were refused as ZFA_CONTRADICTORY, and the patient's opposition lost."""
    n = normalize(_two_zfas(first, second))
    c = n.adt.consent
    assert (c.dmp_status, c.opposition, c.opposition_date, c.consultation,
            c.consultation_date) == expected
    assert any("2 ZFA segments stating complementary choices" in w for w in n.warnings)


@pytest.mark.parametrize("first,second", [
    (zfa("ACTIF", "INO"), zfa("FERME")),  # two statuses
    (zfa("ACTIF", "IO", "20240301"), zfa("", "IO", "20240302")),  # two dates of one choice
    (zfa("", "", "", "IC"), zfa("ACTIF", "", "", "INC")),  # two consents
])
def test_zfas_stating_one_field_twice_differently_still_contradict(first: str,
                                                                   second: str) -> None:
    with pytest.raises(NormalizationError) as exc:
        normalize(_two_zfas(first, second))
    assert (exc.value.code, exc.value.location) == ("ZFA_CONTRADICTORY", "ZFA[6]")


def test_complementary_zfas_apply_the_opposition(sqlite_ctx) -> None:  # noqa: ANN001
    ctx = sqlite_ctx  # store rules it uses are run on both stores elsewhere
    pid = make_patient(ctx)
    ids = ingest(ctx, _two_zfas(zfa("ACTIF"), zfa("", "IO", "20240301")), source=SOURCE)
    assert statuses(ctx, ids) == ["deposited"]
    row = patient_row(ctx, pid)
    assert (row.dmp_status, row.opposed) == ("ACTIF", True)


# -- identity statements received out of order ----------------------------------------------
def test_an_older_a08_does_not_undo_a_newer_a31(ctx) -> None:  # noqa: ANN001
    """An A31 recorded in June (married name MARTIN) reached us before an A08 recorded in
    January (still LEFÈVRE): the A08 put the old name back, and the next results under
    the new name no longer matched her traits. It is kept out now, with a warning."""
    pid = make_patient(ctx)
    ids = ingest(ctx, adt("C1", "A31", family="MARTIN", evn="20240601100000"),
                 adt("C2", "A08", family="LEFÈVRE", given="Hélène", evn="20240115100000"),
                 source=SOURCE)
    assert statuses(ctx, ids) == ["deposited", "deposited"]
    assert patient_row(ctx, pid).family == "MARTIN"
    late = ledger(ctx, ids[1])
    assert late.error_message == "ADT^A08 recorded, nothing to apply"
    assert any("older than the one the dossier's traits come from" in w
               for w in late.warnings)
    with ctx.engine.connect() as conn:
        trail = conn.execute(select(audit_log.c.import_id, audit_log.c.details).where(
            audit_log.c.action == "identity.update", audit_log.c.patient_id == pid)).all()
    assert trail == [(ids[0], {"fields": ["family", "birth_family"],
                               "stated_at": "2024-06-01T10:00:00+02:00"})]
    _no_patient_data(late)


def test_identity_statements_dated_later_or_alike_apply(sqlite_ctx) -> None:  # noqa: ANN001
    """A newer statement applies; one dated like the held one too (the sender's later word);
    a statement without EVN is dated by MSH-7."""
    ctx = sqlite_ctx
    pid = make_patient(ctx)
    ingest(ctx, adt("C1", "A31", family="MARTIN", evn="20240601100000"), source=SOURCE)
    ingest(ctx, adt("C2", "A08", family="MARTIN-ROY", evn="20240601100000"), source=SOURCE)
    assert patient_row(ctx, pid).family == "MARTIN-ROY"
    older = adt("C3", "A08", family="DURAND", msh7="20240501100000").replace(
        b"EVN||20240306111154||||20240306111154\r", b"")
    ids = ingest(ctx, older, source=SOURCE)
    assert patient_row(ctx, pid).family == "MARTIN-ROY"
    assert "older than" in " ".join(ledger(ctx, ids[0]).warnings)
    newer = adt("C4", "A08", family="DURAND", msh7="20240701100000").replace(
        b"EVN||20240306111154||||20240306111154\r", b"")
    ingest(ctx, newer, source=SOURCE)
    assert patient_row(ctx, pid).family == "DURAND"


# -- ADT^A47 changing the IPP, MRG-1 holding the whole old identifier list ----------------
def a47_ipp_change(control: str, mrg_ins: str = NIR) -> bytes:
    """The GAM changes her IPP (IPP0042 -> IPP0777): MRG-1 is her old identifier list, the
    INS included; PID-3 her list now, with the same INS."""
    ins = f"^^^ASIP-SANTE-INS-NIR&{INS_OID}&ISO^INS"
    segs = [f"MSH|^~\\&|GAM|CHU-X|DPI|CHU-X|20240307090000||ADT^A47^ADT_A30|{control}|P|"
            "2.5^FRA^2.11|||||FRA|UNICODE UTF-8|FR||2.11^IHE_FRANCE-2.11-PAM",
            "EVN||20240307090000",
            f"PID|1||IPP0777^^^{CHU}^PI~{NIR}{ins}||LEFÈVRE^Hélène^^^^^L||19790328|F"
            + "|" * 24 + "VALI",
            f"MRG|IPP0042^^^{CHU}^PI~{mrg_ins}{ins}"]
    return ("\r".join(segs) + "\r").encode()


def test_a47_changing_the_ipp_keeps_the_ins_pid3_still_carries(sqlite_ctx) -> None:  # noqa: ANN001
    """The INS in MRG-1 was read as 'removed': the patient lost her INS because her IPP
    changed, and her next results with that INS found no dossier. An INS that PID-3 still
    carries is not removed; the IPP change is applied since ADT round 19 (it was refused)."""
    ctx = sqlite_ctx
    pid = make_patient(ctx)
    ingest(ctx, adt("C1", "A31"), source=SOURCE)
    ids = ingest(ctx, a47_ipp_change("C2"), source=SOURCE)
    row = ledger(ctx, ids[0])
    assert (row.status, row.error_code, row.patient_id) == ("deposited", None, pid)
    assert row.error_message == (
        "ADT^A47: 1 identifier(s) of MRG-1 replaced by PID-3's in the dossier")
    assert any("PID-3 still carries" in w for w in row.warnings)
    assert patient_row(ctx, pid).ins == NIR
    # an INS in MRG-1 that PID-3 no longer carries is still removed
    n = normalize(a47_ipp_change("C3", mrg_ins="188102B17295165"))
    assert n.adt.removed_ins == [("188102B17295165", "INS-NIR-TEST")]
    _no_patient_data(row)


# -- merges of v2.3.1 / v2.4: A34, A36 -------------------------------------------------------
def merge_v231(trigger: str, control: str, pid3: str, mrg1: str) -> bytes:
    """An older GAM's merge (v2.3.1 structure: MSH EVN PID PD1 MRG, no PV1, no PID-32)."""
    segs = [f"MSH|^~\\&|PASTEL|CH-ANNECY|DPI|CH-ANNECY|20240312101500||ADT^{trigger}|"
            f"{control}|P|2.3.1|||AL|NE||8859/1",
            f"EVN|{trigger}|20240312101400",
            f"PID|1||{pid3}||LEFÈVRE^Hélène^^^^^L||19790328|F",
            "PD1|||",
            f"MRG|{mrg1}|||{mrg1.split('^')[0]}"]
    return ("\r".join(segs) + "\r").encode("iso-8859-1")


@pytest.mark.parametrize("trigger", ["A34", "A36"])
def test_a34_a36_are_read_as_merges(trigger: str) -> None:
    n = normalize(merge_v231(trigger, "M1", f"IPP0042^^^{CHU}^PI", f"IPP0007^^^{CHU}^PI"))
    assert n.adt.trigger == trigger and not n.adt.updates_identity
    [(where, merged)] = n.adt.merged
    assert where == "MRG[5]-1"
    assert [(li.value, li.type_code) for li in merged.local_ids] == [("IPP0007", "PI")]


def test_a34_makes_the_old_ipp_name_the_surviving_dossier(sqlite_ctx) -> None:  # noqa: ANN001
    """ADT^A34 was refused as HL7_UNSUPPORTED_EVENT (AR): the older GAM's merge was lost, and
    results still sent under the duplicate's IPP found no dossier."""
    ctx = sqlite_ctx  # store rules it uses are run on both stores elsewhere
    pid = make_patient(ctx)
    ingest(ctx, adt("C1", "A31"), source=SOURCE)  # the dossier learns IPP0042
    ids = ingest(ctx, merge_v231("A34", "M1", f"IPP0042^^^{CHU}^PI",
                                 f"IPP0007^^^{CHU}^PI"), source=SOURCE)
    row = ledger(ctx, ids[0])
    assert (row.status, row.patient_id) == ("deposited", pid)
    assert row.error_message == "ADT^A34 merge: 1 identifier(s) of MRG-1 now name the dossier"
    later = ingest(ctx, adt("C2", "A01", local_id="IPP0007", nir="", pid32="PROV"),
                   source=SOURCE)
    assert ledger(ctx, later[0]).patient_id == pid
    _no_patient_data(row)


# -- merges of patients who have no dossier here ---------------------------------------------
def a40(control: str, pid3: str, mrg1: str, zfa_fields: str | None = None) -> bytes:
    segs = [f"MSH|^~\\&|GAM|CHU-X|DPI|CHU-X|20240312101500||ADT^A40^ADT_A39|{control}|P|"
            "2.5^FRA^2.11|||||FRA|UNICODE UTF-8|FR||2.11^IHE_FRANCE-2.11-PAM",
            "EVN||20240312101400",
            f"PID|1||{pid3}||MARTIN^Hélène^^^^^L||19790328|F" + "|" * 24 + "PROV",
            f"MRG|{mrg1}"]
    if zfa_fields is not None:
        segs.append(f"ZFA|{zfa_fields}")
    return ("\r".join(segs) + "\r").encode()


def test_a40_of_patients_we_do_not_hold_is_recorded_not_quarantined(sqlite_ctx) -> None:  # noqa: ANN001
    """A GAM sends the merges of all its patients: each one whose patients have no dossier
    here was quarantined (IDENTITY_UNKNOWN_PATIENT), work for nobody. Recorded now, as any
    other ADT of an unknown patient; with a ZFA (a patient's choice) it stays quarantined."""
    ctx = sqlite_ctx  # store rules it uses are run on both stores elsewhere
    ids = ingest(ctx, a40("M1", f"IPP0100^^^{CHU}^PI", f"IPP0101^^^{CHU}^PI"),
                 a40("M2", f"IPP0102^^^{CHU}^PI", f"IPP0103^^^{CHU}^PI",
                     zfa("ACTIF", "IO", "20240312")), source=SOURCE)
    assert statuses(ctx, ids) == ["deposited", "quarantined"]
    recorded, with_zfa = (ledger(ctx, i) for i in ids)
    assert (recorded.stage, recorded.patient_id) == ("consent", None)
    assert recorded.error_message == ("ADT^A40 recorded: no dossier for this patient here, "
                                      "nothing to apply")
    assert with_zfa.error_code == "IDENTITY_UNKNOWN_PATIENT"
    # the same merge again: a duplicate (dedupe level 2), nothing else
    again = ingest(ctx, a40("M1", f"IPP0100^^^{CHU}^PI", f"IPP0101^^^{CHU}^PI")
                   .replace(b"\r", b"\n"), source=SOURCE)
    assert statuses(ctx, again) == ["duplicate"]
    _no_patient_data(recorded, with_zfa)


def test_a40_whose_survivor_is_unknown_gives_its_ipp_to_the_merged_dossier(ctx) -> None:  # noqa: ANN001
    """The hospital's duplicate record (IPP0042) is the one that fed us; it is merged into a
    record we never heard of (IPP0104). The A40 was quarantined, and every result sent
    afterwards under IPP0104 too. IPP0104 now names her dossier, and the ZFA applies."""
    pid = make_patient(ctx)
    ingest(ctx, adt("C1", "A31"), source=SOURCE)  # the dossier learns IPP0042
    ids = ingest(ctx, a40("M3", f"IPP0104^^^{CHU}^PI", f"IPP0042^^^{CHU}^PI",
                          zfa("ACTIF", "INO", "20240312")), source=SOURCE)
    row = ledger(ctx, ids[0])
    assert (row.status, row.patient_id) == ("deposited", pid)
    assert row.error_message == (
        "ADT^A40 merge: the surviving patient (PID-3) had no dossier here; 1 identifier(s) "
        "of PID-3 now name the dossier MRG-1 names; consent applied: dmp_status, opposition")
    later = ingest(ctx, adt("C2", "A01", local_id="IPP0104", nir="", pid32="PROV"),
                   source=SOURCE)
    assert ledger(ctx, later[0]).patient_id == pid
    with ctx.engine.connect() as conn:
        trail = conn.execute(select(audit_log.c.details).where(
            audit_log.c.patient_id == pid, audit_log.c.action == "identity.merged")).scalar()
    merged_rows = trail.pop("merged_rows")  # round 21: MRG-1's rows, by internal id
    assert trail == {"trigger": "A40", "identifiers": 1, "surviving_unknown": True}
    assert len(merged_rows) == 1
    _no_patient_data(row)


@pytest.mark.parametrize("pid3,code", [
    # the survivor's qualified INS is another than the one the merged dossier holds
    (f"IPP0104^^^{CHU}^PI~188102B17295165^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS",
     "IDENTITY_CONFLICT"),
    # the survivor is named by another hospital's identifier only
    ("4100001953^^^CERBA-LYON&2.999.250.1.1&ISO^PI", "ADT_MERGE_NO_IDENTIFIER"),
])
def test_a40_whose_survivor_is_unknown_is_not_applied_on_a_guess(sqlite_ctx, pid3: str,  # noqa: ANN001
                                                                 code: str) -> None:
    ctx = sqlite_ctx
    make_patient(ctx)
    ingest(ctx, adt("C1", "A31"), source=SOURCE)
    ids = ingest(ctx, a40("M3", pid3, f"IPP0042^^^{CHU}^PI").replace(b"|PROV\r", b"|VALI\r"),
                 source=SOURCE)
    row = ledger(ctx, ids[0])
    assert (row.status, row.error_code, row.error_location) == ("quarantined", code, "PID-3")
    with ctx.engine.connect() as conn:  # nothing was learnt
        learnt = conn.execute(select(patient_identifiers.c.value)).scalars().all()
    assert sorted(learnt) == ["IPP0042"]
    _no_patient_data(row)


@pytest.mark.parametrize("cx5", ["NH", "INS"])
def test_a40_whose_mrg1_holds_a_billing_nir_names_no_dossier(sqlite_ctx, cx5: str) -> None:  # noqa: ANN001
    """MRG-1 holding a NIR used for billing (OID .4.13: the insured person's, a parent's for
    a child; some engines type it INS) is not the merged patient's identity: it names no
    dossier, so the dossier holding that number as its INS does not receive the survivor's
    IPP."""
    ctx = sqlite_ctx
    pid = make_patient(ctx)
    billing = f"{NIR}^^^ASIP-SANTE-NIR&1.2.250.1.213.1.4.13&ISO^{cx5}"
    ids = ingest(ctx, a40("M4", f"IPP0104^^^{CHU}^PI", billing), source=SOURCE)
    row = ledger(ctx, ids[0])
    assert (row.status, row.patient_id) == ("deposited", None)
    assert "no dossier for this patient here" in row.error_message
    with ctx.engine.connect() as conn:
        held = conn.execute(select(patient_identifiers.c.value).where(
            patient_identifiers.c.patient_id == pid)).scalars().all()
    assert held == []
