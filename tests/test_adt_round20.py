"""Hospital ADT (IHE PAM France) from senders not seen before, round 20: what MRG-1 warned of
reaches the ledger row of an identifier change, an ADT^A43 (move an identifier to another
patient) gets an outcome that does not stop the GAM's queue, a death and its correction are
ordered by EVN-2, and the sex and reduced-precision birth dates of PID-7 / PID-8 are pinned.
Store rules on SQLite and PostgreSQL (``ctx``); the many-case tables on SQLite or without a
store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from dossiers.schema import audit_log, imports
from normalizers.model import NormalizationError
from pipelines.acknowledge import APPLICATION, Frame, acknowledge
from pipelines.advice import advice
from pipelines.process import drain
from pipelines.settings import Source
from tests.mllp_support import msa
from tests.test_adt_consent import SOURCE, adt, ledger, normalize, patient_row
from tests.test_adt_round19 import CHU, CHU_OID, a47, identifiers
from tests.test_pipeline import ingest, make_patient, statuses


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
    # a merge (A40) carries its MRG-1's warnings too (pinned: read the same way)
    merge = normalize(a47("W3", f"IPP0777^^^{CHU}^PI", mrg1, "A40"))
    assert "MRG[5]-1 repetition 3: INS without OID, kind taken from its type code (CX.5)" \
        in merge.warnings


# -- ADT^A43: an identifier moved to another patient -----------------------------------------
def a43(control: str, pid3: str, mrg1: str, tail: str = "") -> bytes:
    """A plain HL7 v2.5 ADT^A43 (ADT_A43: MSH EVN {PID [PD1] MRG}) from an MPI: PID-3 the
    correct target patient, MRG-1 the identifier moved from the incorrect source patient."""
    segs = ["MSH|^~\\&|MPI|CHU-X|DPI|CHU-X|20240410083000||ADT^A43^ADT_A43|"
            f"{control}|P|2.5||||||UNICODE UTF-8",
            "EVN|A43|20240410082900",
            f"PID|1||{pid3}||MARTIN^Amélie^^^^^L||19850214|F",
            f"MRG|{mrg1}"]
    return ("\r".join(segs) + "\r" + tail).encode()


def test_a43_is_read_with_what_mrg1_warned_of_and_no_zfa() -> None:
    """Refused HL7_UNSUPPORTED_EVENT (AR 201) before; read now: each MRG-1's identifiers, its
    warnings, a ZFA warned about and not applied. Two PID-MRG pairs (ADT_A43 repeats them)
    are two moves, not HL7_MULTIPLE_PATIENTS; an MRG-1 naming nothing is refused with the
    A47's code, no MRG with HL7_NO_MRG."""
    n = normalize(a43("M1", f"IPP0500^^^{CHU}^PI", f"IPP0042^^^{CHU}^PI~NDA1^^^{CHU}^AN",
                      tail="ZFA|ACTIF||||||||IO|20240101\r"))
    assert [(m.where, [li.value for li in m.moved.local_ids],
             [li.value for li in m.target.local_ids]) for m in n.adt.moved] == [
        ("MRG[4]-1", ["IPP0042"], ["IPP0500"])]
    assert n.adt.consent is None and not n.adt.updates_identity
    assert any(w.startswith("MRG[4]-1 repetition 2: identifier of type AN") for w in n.warnings)
    assert any(w.startswith("ZFA[5]: ZFA not applied: ADT^A43") for w in n.warnings)
    two = normalize(a43("M2", f"IPP0500^^^{CHU}^PI", f"IPP0042^^^{CHU}^PI",
                        tail=f"PID|2||IPP0600^^^{CHU}^PI||DURAND^Noël||19600101|M\r"
                        f"MRG|IPP0043^^^{CHU}^PI\r"))
    assert [(m.where, m.target.local_ids[0].value) for m in two.adt.moved] == [
        ("MRG[4]-1", "IPP0500"), ("MRG[6]-1", "IPP0600")]
    for mrg1, code in (("^^^CHU-X", "ADT_CHANGE_NO_IDENTIFIER"), (None, "HL7_NO_MRG")):
        data = a43("M3", f"IPP0500^^^{CHU}^PI", mrg1 or "")
        if mrg1 is None:
            data = data.replace(b"MRG|\r", b"")
        with pytest.raises(NormalizationError) as exc:
            normalize(data)
        assert exc.value.code == code


def test_a43_of_an_identifier_held_here_is_quarantined_else_recorded(ctx) -> None:  # noqa: ANN001
    """An A43 whose moved identifier names no dossier here: AA, recorded with nothing applied
    (nothing here is keyed on it). Naming a dossier: held for an admin (AA, the GAM's queue
    goes on), ADT_MOVE_IDENTIFIER naming the dossier and the MRG field, nothing changed: the
    dossier's entries are not filed by identifier, so what goes with it is not known."""
    pid = make_patient(ctx)
    ingest(ctx, adt("C1", "A31"), source=SOURCE)  # the dossier learns IPP0042
    before = identifiers(ctx, pid)
    ctx.settings = replace(ctx.settings, sources=(Source(SOURCE),))
    unknown = a43("M1", f"IPP0500^^^{CHU}^PI", f"IPP0999^^^{CHU}^PI")
    held = a43("M2", f"IPP0500^^^{CHU}^PI", f"IPP0042^^^{CHU}^PI")
    acks = acknowledge(ctx, [Frame(d, "127.0.0.1", datetime.now(UTC)) for d in (unknown, held)],
                       mode=APPLICATION)
    drain(ctx)
    assert [msa(ack)[1] for (ack,) in acks] == ["AA", "AA"]
    with ctx.engine.connect() as conn:
        recorded, quarantined = conn.execute(select(imports).where(
            imports.c.logical_id.like("MPI|%")).order_by(imports.c.id)).all()
    assert (recorded.status, recorded.patient_id, recorded.error_message) == (
        "deposited", None,
        "ADT^A43 accepted, nothing applied: the identifier(s) MRG-1 moves name no dossier here")
    assert (quarantined.status, quarantined.error_code, quarantined.error_location) == (
        "quarantined", "ADT_MOVE_IDENTIFIER", "MRG[4]-1")
    assert f"(MRG[4]-1 -> dossier {pid})" in quarantined.error_message
    assert identifiers(ctx, pid) == before
    assert "ADT^A43" in advice("ADT_MOVE_IDENTIFIER")
    assert statuses(ctx, ingest(ctx, unknown, source=SOURCE)) == ["duplicate"]
    _no_patient_data(recorded, quarantined)


def test_a43_of_an_identifier_the_target_holds_already_is_recorded(sqlite_ctx) -> None:  # noqa: ANN001
    """The moved IPP names the dossier the target's own IPP (PID-3, the moved one listed
    too, as an MPI sends it once moved) names: the identifier is the target's here already,
    nothing to move: recorded on that dossier, not held for an admin. The target's IPP
    naming no dossier, or another one: held, as before."""
    ctx = sqlite_ctx
    pid = make_patient(ctx)
    ingest(ctx, adt("C1", "A31"), adt("C2", "A31", local_id="IPP0500"), source=SOURCE)
    before = identifiers(ctx, pid)
    done, held = (ledger(ctx, i) for i in ingest(
        ctx, a43("M1", f"IPP0500^^^{CHU}^PI~IPP0042^^^{CHU}^PI", f"IPP0042^^^{CHU}^PI"),
        a43("M2", f"IPP0600^^^{CHU}^PI~IPP0042^^^{CHU}^PI", f"IPP0042^^^{CHU}^PI"),
        source=SOURCE))
    assert (done.status, done.patient_id, done.error_message) == (
        "deposited", pid, "ADT^A43 accepted, nothing applied: the identifier(s) MRG-1 moves "
        "name the dossier PID-3's own identifiers name already")
    assert (held.status, held.error_code) == ("quarantined", "ADT_MOVE_IDENTIFIER")
    assert identifiers(ctx, pid) == before


# -- a death and its correction, ordered by EVN-2 whatever the order received ----------------
# (trigger, EVN-2, PID-29, PID-30) in the order received; the dossier's death after them
# (the A03 then its A13: tests/test_hl7v2_senders_round15.py; the A13 received first, then
# the older A03 it cancelled: test_an_a13_received_before_the_a03_it_cancels below)
_DEATH_ORDERS = [
    # a discharge by death stated after the cancellation is a new one: recorded
    ([("A13", "20240310100000", "", ""), ("A03", "20240310110000", "202403101045", "Y")],
     True),
    # the death, its correction (PID-30 N), then an older update saying it again
    ([("A03", "20240310090000", "202403100415", "Y"), ("A08", "20240311080000", "", "N"),
      ("A08", "20240310093000", "202403100415", "Y")], False),
    # the correction received before the death it corrects
    ([("A08", "20240311080000", "", "N"), ("A03", "20240310090000", "202403100415", "Y")],
     False),
]


def _death_statement(control: str, trigger: str, evn: str, time: str, indicator: str) -> bytes:
    data = adt(control, trigger, evn=evn, msh7=evn)
    old = b"|" * 24 + b"VALI"
    return data.replace(old, b"|" * 21 + f"{time}|{indicator}||".encode() + b"VALI")


@pytest.mark.parametrize(("received", "deceased"), _DEATH_ORDERS)
def test_the_death_follows_evn2_not_arrival(sqlite_ctx, received: list, deceased: bool) -> None:  # noqa: ANN001
    ctx = sqlite_ctx
    pid = make_patient(ctx)
    for n, statement in enumerate(received):
        ingest(ctx, _death_statement(f"D{n}", *statement), source=SOURCE)
    assert bool(patient_row(ctx, pid).deceased) is deceased


def test_an_a13_received_before_the_a03_it_cancels(ctx) -> None:  # noqa: ANN001
    """The store rule on both databases: an A13 that finds no death records when it was
    stated, so the discharge by death it cancelled, arriving after it, is older (warned,
    not applied); a living patient's A13 still changes nothing else and writes no audit."""
    pid = make_patient(ctx)
    (cancel,) = ingest(ctx, _death_statement("D1", "A13", "20240310100000", "", ""),
                       source=SOURCE)
    assert ledger(ctx, cancel).error_message == "ADT^A13 recorded, nothing to apply"
    assert patient_row(ctx, pid).deceased is None
    (death,) = ingest(ctx, _death_statement("D2", "A03", "20240310090000", "202403100415",
                                            "Y"), source=SOURCE)
    assert patient_row(ctx, pid).deceased is None
    assert "death: older than what the dossier holds (EVN-2/MSH-7), not applied" in \
        ledger(ctx, death).warnings
    with ctx.engine.connect() as conn:
        assert conn.execute(select(audit_log).where(
            audit_log.c.action.like("patient.death%"))).all() == []


# -- PID-8 sex and PID-7 birth dates of reduced precision ------------------------------------
@pytest.mark.parametrize(("pid7", "pid8", "birth", "partial", "warned"), [
    # INS traits of a patient born abroad: day or day and month unknown, written '00'
    ("19790000", "U", "", "1979", "PID[3]-7: birth date with unknown month or day"),
    ("19790300", "A", "", "1979-03", "PID[3]-7: birth date with unknown month or day"),
    # HL7 DTM of reduced precision (v2.5 2.A.22): the year, the year and month
    ("1979", "O", "", "1979", "PID[3]-7: birth date is partial"),
    ("197903", "N", "", "1979-03", "PID[3]-7: birth date is partial"),
    # a HIS form's default: nothing known, not the year 0000
    ("00000000", "U", "", "", "PID[3]-7: birth date unknown (year 0000), kept empty"),
    ("19790328", "f", "1979-03-28", "", None),
])
def test_reduced_birth_dates_and_unknown_sexes_as_read(pid7: str, pid8: str, birth: str,
                                                       partial: str, warned: str | None) -> None:
    n = normalize(adt("B1", "A31", birth=pid7, sex=pid8))
    ident = n.identity
    assert (ident.birth_date, ident.birth_date_partial, ident.sex) == (birth, partial,
                                                                       pid8.upper())
    said = [w for w in n.warnings if w.startswith("PID[3]-7")]
    assert [w[:len(warned or "")] for w in said] == ([] if warned is None else [warned])


def test_an_unknown_sex_or_reduced_birth_date_keeps_the_dossiers_traits(sqlite_ctx) -> None:  # noqa: ANN001
    """The dossier (an INS whose digits say a woman born in March 1979; F, 1979-03-28) is
    found by its INS whatever PID-7/PID-8 say; an A31 stating sex U and the INS record's
    '19790000' updates her name and leaves her sex and birth date (a trait not known is no
    trait). '00000000' is no year: it was warned as 'another birth date than the dossier's'
    on every message; a year that is another (1980) still is. A PID-7 to the year
    contradicting the INS digits (1985): compared with them only when full, that PID's name
    was applied as hers; not applied now, warned with the trait."""
    ctx = sqlite_ctx
    pid = make_patient(ctx)
    sent = [adt("T1", "A31", sex="U", birth="19790000", family="LEFÈVRE-MARTIN"),
            adt("T2", "A31", sex="N", birth="00000000", family="LEFÈVRE-MARTIN"),
            adt("T3", "A31", sex="O", birth="1980", family="LEFÈVRE-MARTIN"),
            adt("T4", "A31", birth="1985", family="DURAND", evn="20240307090000")]
    rows = [ledger(ctx, i) for i in ingest(ctx, *sent, source=SOURCE)]
    assert [(r.status, r.patient_id) for r in rows] == [("deposited", pid)] * 4
    assert rows[0].error_message == "identity updated: family, birth_family"
    other_birth = "has another birth date than the message"
    assert [any(other_birth in w for w in r.warnings) for r in rows[:3]] == [False, False, True]
    assert "identity not updated: PID-7/PID-8 (birth year) contradict the digits of the INS " \
        "the dossier holds: not this person's traits" in rows[3].warnings
    row = patient_row(ctx, pid)
    assert (row.family, row.sex, row.birth_date) == ("LEFÈVRE-MARTIN", "F", "1979-03-28")
    _no_patient_data(*rows)
