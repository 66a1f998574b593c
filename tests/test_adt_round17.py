"""Hospital ADT (IHE PAM France) from senders not seen before, round 17: a ZFA on a patient
found by demographics only, an EVN-2 after MSH-7 (a sender's wrong clock), the links A24 /
A37 and the account merge A35 accepted with no effect, A28 on a patient already held, and the
ZFA an A47 carries. Store rules run on SQLite and PostgreSQL (``ctx``); the many-case tables
on SQLite or without a store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from pipelines.acknowledge import APPLICATION, Frame, acknowledge
from pipelines.settings import Source
from tests.mllp_support import msa
from tests.test_adt_consent import SOURCE, adt, history, ledger, normalize, patient_row, zfa
from tests.test_pipeline import INS_OID, NIR, ingest, make_patient, statuses

CHU = "CHU-X&1.2.250.1.999.9&ISO"
INS = f"^^^ASIP-SANTE-INS-NIR&{INS_OID}&ISO^INS"


def _no_patient_data(*rows) -> None:  # noqa: ANN002
    """Ledger rows name fields, codes and dossier ids, never the patient."""
    text = repr([(r.error_message, r.warnings) for r in rows])
    for value in (NIR, "LEFÈVRE", "Lefèvre", "Hélène", "MARTIN", "19790328", "IPP0"):
        assert value not in text, value


def _warned(row, start: str) -> bool:  # noqa: ANN001
    return any(w.startswith(start) for w in row.warnings or [])


# -- a ZFA on a patient found by demographics only ------------------------------------------
def test_zfa_of_a_demographic_match_does_not_lift_the_opposition(ctx) -> None:  # noqa: ANN001
    """A look-alike (same name, birth date, sex; no INS, an IPP never seen) whose ADT says
    'does not object' lifted the real patient's opposition. Not applied now, warned
    ZFA_NOT_APPLIED; the same ZFA under her known IPP still applies."""
    pid = make_patient(ctx)
    ingest(ctx, adt("C1", "A31", zfa=zfa("ACTIF", "IO", "20240301")), source=SOURCE)
    assert patient_row(ctx, pid).opposed
    look_alike = adt("C2", "A08", pid32="PROV", local_id="IPP0777", evn="20240402090000",
                     zfa=zfa("ACTIF", "INO", "20240402", "IC", "20240402"))
    look_alike = look_alike.replace(f"~{NIR}{INS}".encode(), b"")
    ids = ingest(ctx, look_alike, source=SOURCE)
    row = ledger(ctx, ids[0])
    assert (row.status, row.patient_id) == ("deposited", pid)
    assert _warned(row, "ZFA_NOT_APPLIED: ") and "matched by demographics only" in repr(
        row.warnings)
    assert row.error_message == "ADT^A08 recorded, nothing to apply"
    kept = patient_row(ctx, pid)
    assert (kept.opposed, kept.consultation_consent) == (True, None)
    assert [h["opposition"] for h in history(ctx, pid)] == ["IO"]
    # her own hospital identifier: a trusted match, the choice applies
    ids = ingest(ctx, adt("C3", "A08", pid32="PROV", evn="20240403090000",
                          zfa=zfa("ACTIF", "INO", "20240403")), source=SOURCE)
    assert "consent applied: dmp_status, opposition" in ledger(ctx, ids[0]).error_message
    assert not patient_row(ctx, pid).opposed
    _no_patient_data(row, ledger(ctx, ids[0]))


# -- EVN-2 after MSH-7: a sender's wrong clock ---------------------------------------------
@pytest.mark.parametrize("evn,msh7,stated,warned", [
    ("20420306111154", "20240306111154", "2024-03-06T11:11:54+01:00", True),  # a wrong year
    ("20240306140000", "20240306111154", "2024-03-06T11:11:54+01:00", True),  # hours ahead
    ("20240306111900", "20240306111154", "2024-03-06T11:19:00+01:00", False),  # in tolerance
    ("20240305080000", "20240306111154", "2024-03-05T08:00:00+01:00", False),  # the usual
    ("202403061530", "20240306", "2024-03-06T15:30+01:00", False),  # MSH-7 to the day
    ("20240306111154+0000", "20240306111154+0100", "2024-03-06T11:11:54+01:00", True),
    ("20420306111154", "", "2042-03-06T11:11:54+01:00", False),  # no MSH-7: nothing to bound
])
def test_evn2_after_msh7_does_not_order_the_message(evn: str, msh7: str, stated: str,
                                                     warned: bool) -> None:
    n = normalize(adt("E1", "A31", evn=evn, msh7=msh7, zfa=zfa("ACTIF", "IO")))
    assert n.adt.stated_at == stated and n.adt.consent.stated_at == stated
    assert any(w.startswith("EVN-2: the event is recorded after the message was sent")
               for w in n.warnings) == warned


def test_a_wrong_clock_no_longer_locks_the_opposition(sqlite_ctx) -> None:  # noqa: ANN001
    """EVN-2 in 2042 (MSH-7 in March 2024): the opposition was the newest statement until
    2042, the patient's withdrawal in April filed as older, history only."""
    ctx = sqlite_ctx  # the consent store rules are run on both stores elsewhere
    pid = make_patient(ctx)
    ids = ingest(ctx, adt("W1", "A31", evn="20420306111154", msh7="20240306111154",
                          zfa=zfa("ACTIF", "IO")),
                 adt("W2", "A31", evn="20240402090000", zfa=zfa("ACTIF", "INO")),
                 source=SOURCE)
    assert statuses(ctx, ids) == ["deposited", "deposited"]
    assert not patient_row(ctx, pid).opposed
    assert _warned(ledger(ctx, ids[0]), "EVN-2: ")
    assert "consent applied: dmp_status, opposition" in ledger(ctx, ids[1]).error_message


def test_a_message_dated_after_its_reception_is_dated_by_it(sqlite_ctx) -> None:  # noqa: ANN001
    """EVN-2 and MSH-7 from one wrong clock (2042): MSH-7 cannot bound EVN-2. The statement
    and its ZFA-10 are dated by the reception time (the ledger row's) instead, warned; a
    resend is still a duplicate."""
    ctx = sqlite_ctx  # the consent store rules are run on both stores elsewhere
    pid = make_patient(ctx)
    data = adt("F1", "A31", evn="20420306111154", zfa=zfa("ACTIF", "IO", "20420306"))
    ids = ingest(ctx, data, data.replace(b"\r", b"\n"), source=SOURCE)
    assert statuses(ctx, ids) == ["deposited", "duplicate"]
    row = ledger(ctx, ids[0])
    assert _warned(row, "EVN-2/MSH-7: the message is dated after we received it")
    (held,) = history(ctx, pid)
    received = row.received_at.replace(tzinfo=row.received_at.tzinfo or UTC)
    assert (held["opposition"], held["opposition_date"]) == ("IO", None)
    assert datetime.fromisoformat(held["at"]) == received.replace(microsecond=0)
    assert patient_row(ctx, pid).opposed


# -- A24 / A37 (links) and A35 (account merge): accepted, nothing applied -------------------
def a24(control: str, trigger: str = "A24") -> bytes:
    """ADT^A24 structure (MSH EVN PID PD1 PV1 PID PD1 PV1): two patients, linked."""
    segs = [f"MSH|^~\\&|GAM|CHU-X|DPI|CHU-X|20240308101500||ADT^{trigger}^ADT_A24|{control}|P|"
            "2.5^FRA^2.11|||||FRA|UNICODE UTF-8|FR||2.11^IHE_FRANCE-2.11-PAM",
            "EVN||20240308101400",
            f"PID|1||IPP0042^^^{CHU}^PI~{NIR}{INS}||LEFÈVRE^Hélène^^^^^L||19790328|F"
            + "|" * 24 + "VALI", "PD1|||", "PV1|1|N",
            f"PID|2||IPP0043^^^{CHU}^PI||MARTIN^Aurélie^^^^^L||20010512|F", "PD1|||",
            "PV1|1|N"]
    return ("\r".join(segs) + "\r").encode()


def a35(control: str) -> bytes:
    """ADT^A35 (MSH EVN PID PD1 MRG): the account in MRG-3 merged into PID-18's."""
    segs = [f"MSH|^~\\&|GAM|CHU-X|DPI|CHU-X|20240308101500||ADT^A35^ADT_A30|{control}|P|"
            "2.5^FRA^2.11|||||FRA|UNICODE UTF-8",
            "EVN||20240308101400",
            f"PID|1||IPP0042^^^{CHU}^PI||LEFÈVRE^Hélène^^^^^L||19790328|F" + "|" * 10
            + "NDA778^^^CHU-X^AN", "PD1|||", "MRG|||NDA777^^^CHU-X^AN"]
    return ("\r".join(segs) + "\r").encode()


def test_links_and_account_merges_are_accepted_with_no_effect(sqlite_ctx) -> None:  # noqa: ANN001
    """Answered AR (HL7_UNSUPPORTED_EVENT), they stopped the queue of a sender that stops on
    AR, every later message of every patient behind them. AA now, recorded with what they
    are, nothing of the dossier changed (a ZFA they carry neither); a resend is a
    duplicate."""
    ctx = sqlite_ctx
    pid = make_patient(ctx)
    ingest(ctx, adt("C1", "A31"), source=SOURCE)
    ctx.settings = replace(ctx.settings, sources=(Source(SOURCE),))
    sent = [(a24("L1"), "A24"), (a24("L2", "A37"), "A37"), (a35("L3"), "A35")]
    acks = acknowledge(ctx, [Frame(data, "127.0.0.1", datetime.now(UTC)) for data, _ in sent],
                       mode=APPLICATION)
    assert [msa(ack)[1] for (ack,) in acks] == ["AA"] * 3
    zfa_io = b"ZFA|ACTIF|20240308|||||||IO|20240308\r"
    with_zfa = [(data.replace(b"|L", b"|Z") + zfa_io, trigger) for data, trigger in sent]
    ids = ingest(ctx, *(data for data, _ in with_zfa), with_zfa[0][0], source=SOURCE)
    assert statuses(ctx, ids) == ["deposited"] * 3 + ["duplicate"]
    for import_id, (_, trigger) in zip(ids, with_zfa, strict=False):
        row = ledger(ctx, import_id)
        assert (row.stage, row.patient_id, row.entries_count, row.error_code) == (
            "consent", None, 0, None)
        assert row.error_message.startswith(f"ADT^{trigger} accepted, nothing applied: ")
        assert _warned(row, "ZFA[")
        _no_patient_data(row)
    kept = patient_row(ctx, pid)
    assert (kept.opposed, kept.family) == (False, "LEFÈVRE")
    assert history(ctx, pid) == []


# -- A28 (add person) naming a patient already held: an identity update, as A31 -----------
def test_a28_on_a_patient_held_updates_her_identity_as_a31(sqlite_ctx) -> None:  # noqa: ANN001
    """A GAM that sends A28 for every patient it registers, known to the DMP or not: her new
    name stated by an A28 was ignored. Applied now with A31's protections: an older
    statement, or traits contradicting the INS the dossier holds, change nothing."""
    ctx = sqlite_ctx  # the identity store rules are run on both stores elsewhere (A31)
    pid = make_patient(ctx)
    ids = ingest(ctx, adt("P1", "A28", family="MARTIN", evn="20240401090000"),
                 adt("P2", "A28", family="DURAND", evn="20240301090000"),  # older: history
                 adt("P3", "A28", family="DURAND", birth="19800328", evn="20240501090000"),
                 source=SOURCE)
    assert statuses(ctx, ids) == ["deposited"] * 3
    assert ledger(ctx, ids[0]).error_message == "identity updated: family, birth_family"
    row = patient_row(ctx, pid)
    assert (row.family, row.birth_date) == ("MARTIN", "1979-03-28")
    assert _warned(ledger(ctx, ids[1]), "identity not updated: the statement (EVN-2, else "
                   "MSH-7) is older")
    assert _warned(ledger(ctx, ids[2]), "identity not updated: PID-7/PID-8 (birth year")
    _no_patient_data(*(ledger(ctx, i) for i in ids[1:]))


# -- ADT^A47 carrying a ZFA ---------------------------------------------------------------
def a47(control: str, zfa_fields: str | None = None, ipp: str = "IPP0042") -> bytes:
    """The GAM says the INS it sent was not hers (MRG-1), PID-3 her IPP alone."""
    segs = [f"MSH|^~\\&|GAM|CHU-X|DPI|CHU-X|20240307090000||ADT^A47^ADT_A30|{control}|P|"
            "2.5^FRA^2.11|||||FRA|UNICODE UTF-8|FR||2.11^IHE_FRANCE-2.11-PAM",
            "EVN||20240307090000",
            f"PID|1||{ipp}^^^{CHU}^PI||LEFÈVRE^Hélène^^^^^L||19790328|F" + "|" * 24 + "PROV",
            f"MRG|{NIR}{INS}"]
    if zfa_fields is not None:
        segs.append(f"ZFA|{zfa_fields}")
    return ("\r".join(segs) + "\r").encode()


@pytest.mark.parametrize("known_ipp,applied", [(True, True), (False, False)])
def test_a47_applies_the_zfa_it_carries(sqlite_ctx, known_ipp: bool, applied: bool) -> None:  # noqa: ANN001
    """An A47 removing a wrong INS applied nothing of its ZFA: the opposition it stated was
    lost. Applied to the dossier PID-3's known IPP names; the INS MRG-1 removes alone is
    no trusted match (ZFA_NOT_APPLIED)."""
    ctx = sqlite_ctx  # the consent store rules are run on both stores elsewhere
    pid = make_patient(ctx)
    if known_ipp:
        ingest(ctx, adt("C1", "A31"), source=SOURCE)
    ids = ingest(ctx, a47("R1", zfa("ACTIF", "IO", "20240307")), source=SOURCE)
    row = ledger(ctx, ids[0])
    assert (row.status, row.patient_id) == ("deposited", pid)
    assert row.error_message.startswith("INS-NIR-TEST removed from the dossier (ADT^A47")
    assert patient_row(ctx, pid).ins is None
    assert patient_row(ctx, pid).opposed == applied
    assert ("consent applied: dmp_status, opposition" in row.error_message) == applied
    assert _warned(row, "ZFA_NOT_APPLIED: ") == (not applied)
    _no_patient_data(row)
