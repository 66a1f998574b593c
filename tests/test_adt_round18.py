"""Hospital ADT (IHE PAM France) from senders not seen before, round 18: no misleading
warning on a dossier auto-created from the ADT's own PID (nor an older update overwriting
it), the advice of error_advice.csv
checked against what is refused, a death dated after the reception time its statement was
pulled back to, the ACK of a death the message cannot state, and the encounter events
(cancellations, a discharge without its admission, PV1 classes and UF locations, ZBE):
acknowledged, recorded, nothing filed. The many-case tables run on SQLite or without a
store; the one store rule that differs by dialect (the death refused at filing) on both."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from dossiers.schema import imports
from normalizers.model import NormalizationError
from pipelines.acknowledge import APPLICATION, Frame, ack_rules, acknowledge
from pipelines.advice import advice
from pipelines.intake import Received, intake
from pipelines.process import drain
from pipelines.settings import Source
from tests.mllp_support import msa, segment
from tests.test_adt_consent import SOURCE, adt, history, ledger, normalize, patient_row, zfa
from tests.test_hl7v2_senders_round15 import with_death
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


def test_an_older_update_does_not_overwrite_a_dossier_an_adt_created(ctx) -> None:  # noqa: ANN001
    """The A28 of June auto-created her dossier; the GAM's backlog then replayed an A08 of
    January: with no statement recorded for the dossier's traits, the older name was
    applied. The creating ADT's time is kept on the 'dossier.create' audit row now: the
    older A08 is history (warned), a later one applies."""
    ctx.settings = replace(ctx.settings, auto_create=True)
    nir = _nir("2850775056123")
    sent = [("A28", "GUÉRIN", "20240601090000"), ("A08", "ROUSSEL", "20240110090000"),
            ("A08", "MOREAU", "20240702090000")]
    ids = ingest(ctx, *(adt(f"H{n}", t, nir=nir, birth="19850715", local_id="IPP0501",
                            family=family, given="Anaïs", evn=evn)
                        for n, (t, family, evn) in enumerate(sent)), source=SOURCE)
    assert statuses(ctx, ids) == ["deposited"] * 3
    created, older, later = (ledger(ctx, i) for i in ids)
    assert _warned(older, "identity not updated: the statement (EVN-2, else MSH-7) is older")
    assert older.error_message == "ADT^A08 recorded, nothing to apply"
    assert later.error_message == "identity updated: family, birth_family"
    assert patient_row(ctx, created.patient_id).family == "MOREAU"
    _no_patient_data(created, older, later)


# -- error_advice.csv: the events each advice names, checked against what is done ---------
_EVENT = re.compile(r"\b(ADT|ORU|MDM|OUL)\^([AZRT]\d\d)\b")
_REFUSED_EXAMPLES = re.compile(r"such as ([^;:()]*)")


def _message(kind: str, trigger: str) -> bytes:
    """A PAM France-like message (MSH EVN PID PV1) of ``kind^trigger``."""
    return adt("V1", "A31").replace(b"ADT^A31^ADT_A31", f"{kind}^{trigger}".encode())


def _refused_code(kind: str, trigger: str) -> str | None:
    try:
        normalize(_message(kind, trigger))
    except NormalizationError as exc:
        return exc.code
    return None


def test_every_advice_names_events_as_the_code_treats_them() -> None:
    """HL7_UNSUPPORTED_EVENT's advice gave ADT^A40 as an example of a refused merge, though
    A40 is read since identity round 6: an admin told the hospital to stop sending the
    merges we apply. The events a 'such as' of that advice gives are refused with its code;
    every other event an advice names (the merges, MDM^T03...) is read, not refused."""
    with open("pipelines/tables/error_advice.csv", encoding="utf-8") as fh:
        rows = [line.split(",", 1) for line in fh if not line.startswith("#")][1:]
    refused_named, read_named = set(), set()
    for code, text in rows:
        examples = {e for clause in _REFUSED_EXAMPLES.findall(text)
                    for e in _EVENT.findall(clause)}
        if code == "HL7_UNSUPPORTED_EVENT":
            refused_named |= examples
            read_named |= set(_EVENT.findall(text)) - examples
        else:
            read_named |= set(_EVENT.findall(text))
    assert {("ADT", "A30"), ("ORU", "R40")} <= refused_named  # A43 read since ADT round 20
    assert {("ADT", "A40"), ("ADT", "A18"), ("ADT", "A34"), ("MDM", "T11")} <= read_named
    assert {e: _refused_code(*e) for e in refused_named} == {
        e: "HL7_UNSUPPORTED_EVENT" for e in refused_named}
    unsupported = ("HL7_UNSUPPORTED_EVENT", "HL7_UNSUPPORTED_TYPE")
    assert [e for e in sorted(read_named) if _refused_code(*e) in unsupported] == []
    # an A47 that changes only a local identifier is applied since ADT round 19: no advice
    # says it is refused any more
    assert "ADT^A47" not in advice("HL7_UNSUPPORTED_TYPE")
    assert "PID-29" in advice("ADT_DEATH_IN_FUTURE")


# -- a death after the reception time the statement was pulled back to --------------------
def _ingest_received(ctx, data: bytes, received: datetime) -> int:  # noqa: ANN001
    """One message through intake, its reception time set to ``received`` (a message
    waiting in a backlog, or rerun, is processed long after it was received)."""
    (result,) = intake(ctx.engine, ctx.archive, [Received(
        data=data, source=SOURCE, channel="mllp", received_at=received)])
    (import_id,) = result.message_ids
    drain(ctx)
    return import_id


def test_a_death_after_the_reception_time_is_refused(ctx) -> None:  # noqa: ANN001
    """EVN-2 and MSH-7 from a clock two days ahead (8 March), received on 6 March and
    processed later: the statement is dated by its reception, but its death of 7 March,
    after that reception, was recorded (checked only against EVN-2 and the processing
    time). Refused now as ADT_DEATH_IN_FUTURE (AE 102, not our 207); a death before the
    reception is recorded as before."""
    pid = make_patient(ctx)
    received = datetime(2024, 3, 6, 9, 0, tzinfo=UTC)
    ahead = adt("T1", "A03", evn="20240308090000")
    refused = _ingest_received(ctx, with_death(ahead, "202403071200"), received)
    row = ledger(ctx, refused)
    assert (row.status, row.error_code, row.error_location) == (
        "failed", "ADT_DEATH_IN_FUTURE", "PID[3]-30")
    assert _warned(row, "EVN-2/MSH-7: the message is dated after we received it")
    assert "dated after we received the message" in row.error_message
    assert patient_row(ctx, pid).deceased is None
    assert (ack_rules()["ADT_DEATH_IN_FUTURE"].ack,
            ack_rules()["ADT_DEATH_IN_FUTURE"].hl7_code) == ("AE", "102")
    recorded = _ingest_received(ctx, with_death(adt("T2", "A03", evn="20240308090000"),
                                                "202403060745"), received)
    assert "death recorded" in ledger(ctx, recorded).error_message
    assert patient_row(ctx, pid).deceased is True
    _no_patient_data(row, ledger(ctx, recorded))


@pytest.mark.parametrize("evn,msh7,death,code", [
    ("20420306111154", "20240306111154", "202403071200", "ADT_DEATH_IN_FUTURE"),  # by MSH-7
    ("20420306111154", "20240306111154", "202403061000", None),
    ("", "20240306111154", "202403061120", None),  # within the clock skew
])
def test_a_death_after_msh7_when_evn2_is_not_trusted(evn: str, msh7: str, death: str,
                                                      code: str | None) -> None:
    data = with_death(adt("T3", "A03", evn=evn, msh7=msh7), death)
    if code is None:
        assert normalize(data).adt.death.deceased
        return
    with pytest.raises(NormalizationError) as exc:
        normalize(data)
    assert exc.value.code == code


# -- encounter events: acknowledged AA, recorded, nothing of the movement filed ------------
ZBE = "ZBE|MVT{n}^CHU-X|20240306111154||{action}|N|{original}|CARDIOLOGIE^^^^^CHU-X^UF^^^3210"


def _movement(n: int, trigger: str, pv1_class: str, action: str = "INSERT",
              original: str = "", **kw) -> bytes:
    """A PAM France movement: PV1-2 the patient class, PV1-3 a UF location, then ZBE (its
    action, and for a cancellation the trigger cancelled in ZBE-6)."""
    data = adt(f"E{n}", trigger, **kw).replace(
        b"PV1|1|I|CHIR^^^CHU-X", f"PV1|1|{pv1_class}|UF3210^CH12^LIT3^CHU-X".encode())
    return data + (ZBE.format(n=n, action=action, original=original) + "\r").encode()


ENCOUNTERS = [("A11", "I", "CANCEL", "A01"), ("A12", "O", "CANCEL", "A02"),
              ("A13", "E", "CANCEL", "A03"), ("A38", "R", "CANCEL", "A05"),
              ("A03", "N", "INSERT", ""), ("A01", "U", "INSERT", ""), ("A04", "Z", "INSERT", "")]


def test_encounter_events_are_acknowledged_and_recorded_with_nothing_filed(sqlite_ctx) -> None:  # noqa: ANN001
    """A11 / A12 / A13 / A38 cancellations, an A03 with no A01 before it, every PV1-2 class
    (one no table holds) and a UF in PV1-3 with its ZBE: the dossier keeps no stay nor
    movement, so each is answered AA and recorded 'nothing to apply' (never AR, which
    stops a GAM's queue, nor an error that looks like ours); a patient without a dossier
    here too. A death the A03 cannot state is AE 102, no longer AE 207."""
    ctx = sqlite_ctx  # nothing is written for a movement: no dialect rule
    pid = make_patient(ctx)
    ctx.settings = replace(ctx.settings, sources=(Source(SOURCE),))
    frames = [_movement(n, t, c, action, original)
              for n, (t, c, action, original) in enumerate(ENCOUNTERS)]
    frames.append(_movement(20, "A11", "I", "CANCEL", "A01", nir=_nir("1920169123045"),
                            local_id="IPP0999", family="GUÉRIN", given="Loïc",
                            birth="19920115", sex="M"))
    frames.append(with_death(_movement(21, "A03", "I"), "19790327"))  # before the birth
    acks = acknowledge(ctx, [Frame(f, "127.0.0.1", datetime.now(UTC)) for f in frames],
                       mode=APPLICATION)
    assert [msa(ack)[1] for (ack,) in acks] == ["AA"] * (len(ENCOUNTERS) + 1) + ["AE"]
    assert segment(acks[-1][0], "ERR")[3].startswith("102^")
    with ctx.engine.connect() as conn:
        rows = conn.execute(imports.select().order_by(imports.c.id)).all()
    assert [(r.status, r.stage, r.entries_count) for r in rows[:-1]] == [
        ("deposited", "consent", 0)] * (len(ENCOUNTERS) + 1)
    assert [r.error_message for r in rows[:len(ENCOUNTERS)]] == [
        f"ADT^{t} recorded, nothing to apply" for t, *_ in ENCOUNTERS]
    assert {r.patient_id for r in rows[:len(ENCOUNTERS)]} == {pid}
    assert rows[len(ENCOUNTERS)].error_message == (
        "ADT^A11 recorded: no dossier for this patient here, nothing to apply")
    assert (rows[-1].status, rows[-1].error_code) == ("failed", "ADT_DEATH_BEFORE_BIRTH")
    kept = patient_row(ctx, pid)
    assert (kept.deceased, kept.opposed, kept.family) == (None, False, "Lefèvre")
    assert history(ctx, pid) == []
    _no_patient_data(*rows)


def test_a_cancellation_carrying_a_zfa_applies_it(sqlite_ctx) -> None:  # noqa: ANN001
    """The ZFA is the patient's, not the movement's: an A11 cancelling an admission still
    states her DMP choices (PAM France sends the ZFA on every message)."""
    ctx = sqlite_ctx  # the consent store rules are run on both stores elsewhere
    pid = make_patient(ctx)
    ids = ingest(ctx, _movement(1, "A11", "I", "CANCEL", "A01", zfa=zfa("ACTIF", "IO",
                                                                           "20240305")),
                 source=SOURCE)
    assert ledger(ctx, ids[0]).error_message == "consent applied: dmp_status, opposition"
    assert patient_row(ctx, pid).opposed
