"""Hospital ADT (IHE PAM France) from senders not seen before, round 19: identifier changes.
An ADT^A47 (and A46, its v2.3 form) that changes a local identifier (the IPP) is applied:
the dossier MRG-1's identifier names gets PID-3's in its place; refused clearly when PID-3's
identifier names another dossier or MRG-1's name several; an A47 changing the INS and the
IPP does both. The account and visit events (A41, A42, A44, A45, A48-A51) are accepted with
no effect: no dossier is keyed on them. Store rules on SQLite and PostgreSQL (``ctx``); the
many-case tables on SQLite or without a store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from dossiers.patients import add_identifier
from dossiers.schema import audit_log, imports, patient_identifiers
from normalizers.model import NormalizationError
from pipelines.acknowledge import APPLICATION, Frame, acknowledge
from pipelines.process import drain
from pipelines.settings import Source
from tests.mllp_support import msa
from tests.test_adt_consent import SOURCE, adt, ledger, normalize, patient_row
from tests.test_pipeline import INS_OID, NIR, ingest, make_patient, statuses

CHU = "CHU-X&1.2.250.1.999.9&ISO"
CHU_OID = "1.2.250.1.999.9"
INS = f"^^^ASIP-SANTE-INS-NIR&{INS_OID}&ISO^INS"


def a47(control: str, pid3: str, mrg1: str, trigger: str = "A47", pid32: str = "PROV",
        tail: str = "", pid2: str = "") -> bytes:
    """A PAM France ADT^A47 (ADT_A30 structure: MSH EVN PID PD1 MRG): PID-3 the patient's
    identifiers now, MRG-1 the old ones."""
    segs = [f"MSH|^~\\&|GAM|CHU-X|DPI|CHU-X|20240410083000||ADT^{trigger}^ADT_A30|{control}|P|"
            "2.5^FRA^2.11|||||FRA|UNICODE UTF-8|FR||2.11^IHE_FRANCE-2.11-PAM",
            "EVN||20240410082900",
            f"PID|1|{pid2}|{pid3}||LEFÈVRE^Hélène^^^^^L||19790328|F" + "|" * 24 + pid32,
            "PD1|||",
            f"MRG|{mrg1}"]
    return ("\r".join(segs) + "\r" + tail).encode()


def identifiers(ctx, pid: int) -> set[tuple[str, str]]:  # noqa: ANN001
    with ctx.engine.connect() as conn:
        return {(r.authority, r.value) for r in conn.execute(
            select(patient_identifiers).where(patient_identifiers.c.patient_id == pid))}


def _no_patient_data(*rows) -> None:  # noqa: ANN002
    """Ledger rows name fields, codes and dossier ids, never the patient's identifiers."""
    text = repr([(r.error_message, r.warnings) for r in rows])
    for value in (NIR, "LEFÈVRE", "Hélène", "19790328", "IPP0", "188102B17295165"):
        assert value not in text, value


# -- what an A47 / A46 changes, read without a store ----------------------------------------
@pytest.mark.parametrize(("trigger", "pid3", "mrg1", "changed", "warned"), [
    # the IPP alone changes (IHE PAM ITI-30): MRG-1 the old one, PID-3 the new one
    ("A47", f"IPP0777^^^{CHU}^PI", f"IPP0042^^^{CHU}^PI",
     [("IPP0042", "MRG[5]-1 repetition 1", "IPP0777", "PID[3]-3 repetition 1")], None),
    # the v2.3 form, from an older GAM: read the same way
    ("A46", f"IPP0777^^^{CHU}^PI", f"IPP0042^^^{CHU}^PI",
     [("IPP0042", "MRG[5]-1 repetition 1", "IPP0777", "PID[3]-3 repetition 1")], None),
    # MRG-1 the whole old list, the INS that stays included: only the IPP changes
    ("A47", f"IPP0777^^^{CHU}^PI~{NIR}{INS}", f"IPP0042^^^{CHU}^PI~{NIR}{INS}",
     [("IPP0042", "MRG[5]-1 repetition 1", "IPP0777", "PID[3]-3 repetition 1")],
     "MRG[5]-1: the INS it names, PID-3 still carries"),
    # MRG-1 repeating PID-3: nothing changes
    ("A47", f"IPP0042^^^{CHU}^PI", f"IPP0042^^^{CHU}^PI", [], None),
    # another domain's identifier in MRG-1: not the sender's to change
    ("A47", f"IPP0777^^^{CHU}^PI", "PAT-9^^^LABO-LYON&1.2.250.1.999.1&ISO^PI", [],
     "MRG[5]-1 repetition 1: PID-3 carries no identifier of its assigning authority"),
    # two identifiers of the authority in PID-3: which one replaces it is not said
    ("A47", f"IPP0777^^^{CHU}^PI~IPP0778^^^{CHU}^PI", f"IPP0042^^^{CHU}^PI",
     [("IPP0042", "MRG[5]-1 repetition 1", None, "PID[3]-3 repetitions 1, 2")], None),
    # a stay number (NDA) beside the IPP in MRG-1 names no patient: only the IPP changes
    ("A47", f"IPP0777^^^{CHU}^PI", f"IPP0042^^^{CHU}^PI~NDA77^^^{CHU}^AN",
     [("IPP0042", "MRG[5]-1 repetition 1", "IPP0777", "PID[3]-3 repetition 1")], None),
])
def test_what_an_identifier_change_changes(trigger: str, pid3: str, mrg1: str,
                                           changed: list, warned: str | None) -> None:
    n = normalize(a47("N1", pid3, mrg1, trigger))
    assert not n.adt.updates_identity and n.adt.removed_ins == []
    assert [(c.old.value, c.old_at, c.new and c.new.value, c.new_at)
            for c in n.adt.changed_ids] == changed
    assert all(c.old.authority == CHU_OID for c in n.adt.changed_ids)
    if warned:
        assert any(w.startswith(warned) for w in n.warnings), n.warnings


def test_a46_of_a_v23_sender_changes_its_external_id() -> None:
    """A v2.3 GAM sends its patient id in PID-2 (identity reads it as a local identifier) and
    the prior one in MRG-4, MRG-1 empty: the change was lost (refused as an unsupported
    event). Paired as MRG-1 with PID-3; an id repeated in PID-3 and PID-2 is one candidate."""
    n = normalize(a47("E1", "", f"|||IPP0042^^^{CHU}^PI", "A46", pid2=f"IPP0777^^^{CHU}^PI"))
    assert [(c.old.value, c.old_at, c.new.value, c.new_at) for c in n.adt.changed_ids] == [
        ("IPP0042", "MRG[5]-4 repetition 1", "IPP0777", "PID[3]-2 repetition 1")]
    n = normalize(a47("E2", f"IPP0777^^^{CHU}^PI", f"IPP0042^^^{CHU}^PI",
                      pid2=f"IPP0777^^^{CHU}^PI"))
    assert [(c.new.value, c.new_at) for c in n.adt.changed_ids] == [
        ("IPP0777", "PID[3]-3 repetition 1")]


def test_an_mrg_naming_no_identifier_is_refused_with_its_code() -> None:
    """Nothing says whose identifier changed: ADT_CHANGE_NO_IDENTIFIER (an ACK row, an advice),
    naming the field; not the HL7_UNSUPPORTED_TYPE (AR) that stopped the GAM's queue."""
    with pytest.raises(NormalizationError) as exc:
        normalize(a47("N2", f"IPP0777^^^{CHU}^PI", "^^^CHU-X"))
    assert (exc.value.code, exc.value.location) == ("ADT_CHANGE_NO_IDENTIFIER", "MRG[5]-1")


# -- the store rule: the IPP replaced in the dossier it names -------------------------------
def test_a47_replaces_the_ipp_in_the_dossier_it_names(ctx) -> None:  # noqa: ANN001
    """Refused as HL7_UNSUPPORTED_TYPE (AR 200), the A47 stopped the GAM's queue and every
    later ADT of every patient waited behind it; her results under the new IPP were
    quarantined. Answered AA now: the old IPP no longer names her dossier, the new one does,
    audited without values; a resend is a duplicate."""
    pid = make_patient(ctx)
    ingest(ctx, adt("C1", "A31"), source=SOURCE)  # the dossier learns IPP0042
    ctx.settings = replace(ctx.settings, sources=(Source(SOURCE),))
    data = a47("C2", f"IPP0777^^^{CHU}^PI", f"IPP0042^^^{CHU}^PI")
    ((ack,),) = acknowledge(ctx, [Frame(data, "127.0.0.1", datetime.now(UTC))],
                            mode=APPLICATION)
    assert msa(ack)[1] == "AA"
    drain(ctx)
    assert statuses(ctx, ingest(ctx, data, source=SOURCE)) == ["duplicate"]
    assert identifiers(ctx, pid) == {(CHU_OID, "IPP0777")}
    with ctx.engine.connect() as conn:
        row = conn.execute(select(audit_log).where(
            audit_log.c.action == "identity.identifier_changed")).one()
        (filed,) = conn.execute(select(imports).where(
            imports.c.error_message.like("ADT^A47%"), imports.c.status == "deposited")).all()
    assert row.patient_id == pid and "IPP0" not in repr(row.details)
    assert row.details["authorities"] == [CHU_OID]
    assert (filed.patient_id, filed.error_message) == (
        pid, "ADT^A47: 1 identifier(s) of MRG-1 replaced by PID-3's in the dossier")
    # her next ADT under the new IPP alone (no INS) reaches her dossier
    later = ingest(ctx, adt("C3", "A08", pid32="PROV", local_id="IPP0777").replace(
        f"~{NIR}{INS}".encode(), b""), source=SOURCE)
    assert ledger(ctx, later[0]).patient_id == pid
    _no_patient_data(filed)


# -- refused clearly, or recorded with nothing changed --------------------------------------
def test_a47_refused_naming_positions_or_recorded_as_nothing_to_change(sqlite_ctx) -> None:  # noqa: ANN001
    """The new IPP already another dossier's: IDENTITY_CONFLICT naming both dossiers and the
    fields; MRG-1 naming two dossiers, or PID-3 two identifiers of the authority:
    IDENTITY_AMBIGUOUS; nothing changed. MRG-1's IPP unknown here: AA, recorded."""
    ctx = sqlite_ctx
    helene = make_patient(ctx)
    ange = make_patient(ctx, nir="188102B17295165", family="Santoni", given="Ange",
                        birth_date="1988-10-02", sex="M")
    ingest(ctx, adt("C1", "A31"), adt("C2", "A31", nir="188102B17295165", family="SANTONI",
                                      given="Ange", birth="19881002", sex="M",
                                      local_id="IPP0099"), source=SOURCE)
    before = (identifiers(ctx, helene), identifiers(ctx, ange))
    ids = ingest(ctx, a47("D1", f"IPP0099^^^{CHU}^PI", f"IPP0042^^^{CHU}^PI"),
                 a47("D2", f"IPP0777^^^{CHU}^PI~IPP0778^^^{CHU}^PI", f"IPP0042^^^{CHU}^PI"),
                 a47("D3", f"IPP0777^^^{CHU}^PI",
                     f"IPP0042^^^{CHU}^PI~IPP0099^^^CHU-X&1.2.250.1.999.9&ISO^PN"),
                 a47("D4", f"IPP0555^^^{CHU}^PI", f"IPP0444^^^{CHU}^PI"),
                 source=SOURCE)
    rows = [ledger(ctx, i) for i in ids]
    assert [(r.status, r.error_code, r.error_location) for r in rows] == [
        ("quarantined", "IDENTITY_CONFLICT", "PID[3]-3 repetition 1"),
        ("quarantined", "IDENTITY_AMBIGUOUS", "PID[3]-3 repetitions 1, 2"),
        ("quarantined", "IDENTITY_AMBIGUOUS", "MRG[5]-1 repetition 1"),
        ("deposited", None, None)]
    assert rows[0].error_message.startswith(
        f"PID[3]-3 repetition 1: the new identifier already names dossier {ange}, the old one "
        f"(MRG[5]-1 repetition 1) dossier {helene}")
    assert (f"MRG[5]-1 repetition 1 -> dossier {helene}; MRG[5]-1 repetition 2 -> dossier "
            f"{ange}") in rows[2].error_message
    assert rows[3].error_message == (
        "ADT^A47: the local identifier(s) of MRG-1 name no dossier here, nothing changed")
    assert (identifiers(ctx, helene), identifiers(ctx, ange)) == before
    _no_patient_data(*rows)


# -- an A47 changing the INS and the IPP ------------------------------------------------------
def test_a47_changing_ins_and_ipp_does_both_or_says_why_not(sqlite_ctx) -> None:  # noqa: ANN001
    """MRG-1 her old list (a wrong INS, the old IPP), PID-3 the new IPP alone: the INS was
    removed and the new IPP added beside the old one, which went on naming her dossier.
    Both applied now; the INS and the IPP of MRG-1 naming two dossiers: nothing changed."""
    ctx = sqlite_ctx
    pid = make_patient(ctx)
    ingest(ctx, adt("C1", "A31"), source=SOURCE)
    ids = ingest(ctx, a47("B1", f"IPP0777^^^{CHU}^PI", f"IPP0042^^^{CHU}^PI~{NIR}{INS}"),
                 source=SOURCE)
    row = ledger(ctx, ids[0])
    assert (row.status, row.patient_id) == ("deposited", pid)
    assert row.error_message == ("ADT^A47: 1 identifier(s) of MRG-1 replaced by PID-3's in "
                                 "the dossier; INS-NIR-TEST removed from the dossier "
                                 "(ADT^A47, MRG-1)")
    assert patient_row(ctx, pid).ins is None
    assert identifiers(ctx, pid) == {(CHU_OID, "IPP0777")}
    # the INS held by another dossier than the one MRG-1's IPP names: nothing on a guess
    other = make_patient(ctx, nir="188102B17295165", family="Santoni", given="Ange",
                         birth_date="1988-10-02", sex="M")
    ids = ingest(ctx, a47("B2", f"IPP0888^^^{CHU}^PI",
                          f"IPP0777^^^{CHU}^PI~188102B17295165{INS}"), source=SOURCE)
    row = ledger(ctx, ids[0])
    assert (row.status, row.error_code, row.error_location) == (
        "quarantined", "IDENTITY_CONFLICT", "MRG[5]-1 repetition 1")
    assert row.error_message.startswith(f"MRG-1: its INS-NIR-TEST names dossier {other}, its "
                                        f"local identifier (MRG[5]-1 repetition 1) dossier {pid}")
    assert identifiers(ctx, pid) == {(CHU_OID, "IPP0777")}
    assert patient_row(ctx, other).ins == "188102B17295165"
    # an INS no dossier holds: the IPP change alone, the ledger naming the dossier it touched
    ids = ingest(ctx, a47("B3", f"IPP0888^^^{CHU}^PI",
                          f"IPP0777^^^{CHU}^PI~279037512345691{INS}"), source=SOURCE)
    done = ledger(ctx, ids[0])
    assert (done.status, done.patient_id) == ("deposited", pid)
    assert done.error_message.startswith("ADT^A47: 1 identifier(s) of MRG-1 replaced by "
                                         "PID-3's in the dossier; no dossier holds the INS")
    assert identifiers(ctx, pid) == {(CHU_OID, "IPP0888")}
    _no_patient_data(row, done)


# -- account and visit events: no dossier is keyed on them ----------------------------------
NO_EFFECT = ["A41", "A42", "A44", "A45", "A48", "A49", "A50", "A51"]


def test_account_and_visit_events_are_accepted_with_no_effect(sqlite_ctx) -> None:  # noqa: ANN001
    """Refused as HL7_UNSUPPORTED_EVENT (AR), a move of an account or a visit stopped the
    GAM's queue; the store keys nothing on an account or visit number (an NDA in PID-3 is
    never stored). AA now, recorded with why, the dossier unchanged."""
    ctx = sqlite_ctx
    pid = make_patient(ctx)
    ingest(ctx, adt("C1", "A31"), source=SOURCE)
    before = identifiers(ctx, pid)
    ctx.settings = replace(ctx.settings, sources=(Source(SOURCE),))
    sent = [a47(f"V{t}", f"IPP0042^^^{CHU}^PI~NDA778^^^{CHU}^AN", f"IPP0007^^^{CHU}^PI", t,
                tail=f"PV1|1|I|CHIR^^^CHU-X||||||||||||||||NDA777^^^{CHU}^AN\r")
            for t in NO_EFFECT]
    acks = acknowledge(ctx, [Frame(d, "127.0.0.1", datetime.now(UTC)) for d in sent],
                       mode=APPLICATION)
    drain(ctx)
    assert [msa(ack)[1] for (ack,) in acks] == ["AA"] * len(NO_EFFECT)
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(imports).order_by(
            imports.c.id.desc()).limit(len(NO_EFFECT))).all()
    for row, trigger in zip(reversed(rows), NO_EFFECT, strict=True):
        assert (row.status, row.patient_id, row.error_code) == ("deposited", None, None)
        assert row.error_message.startswith(f"ADT^{trigger} accepted, nothing applied: ")
        assert "keyed on" in row.error_message
    assert identifiers(ctx, pid) == before
    assert patient_row(ctx, pid).ins == NIR


# -- a namespace-only authority: scoped to the sending facility (identity round 9) ----------
def test_a47_finds_an_ipp_stored_before_scoping_and_keeps_domains_apart(sqlite_ctx) -> None:  # noqa: ANN001
    """A GAM naming its IPP domain 'PASTEL' (no OID): the dossier learnt her IPP before round
    9 scoped such namespaces to their facility ('PASTEL' as sent). The A47 finds it there,
    drops it, and the new IPP names the dossier under the scoped authority, as the next
    message will look it up. Another facility's 'PASTEL' IPP of the same number is another
    domain's: untouched."""
    ctx = sqlite_ctx
    helene = make_patient(ctx)
    ange = make_patient(ctx, nir="188102B17295165", family="Santoni", given="Ange",
                        birth_date="1988-10-02", sex="M")
    with ctx.engine.begin() as conn:
        add_identifier(conn, helene, "PASTEL", "IPP0042", "PI")  # stored before round 9
        add_identifier(conn, ange, "PASTEL@CH-ANNECY", "IPP0042", "PI")  # another facility's
    ids = ingest(ctx, a47("S1", "IPP0777^^^PASTEL^PI", "IPP0042^^^PASTEL^PI"), source=SOURCE)
    row = ledger(ctx, ids[0])
    assert (row.status, row.patient_id) == ("deposited", helene)
    assert identifiers(ctx, helene) == {("PASTEL@CHU-X", "IPP0777")}
    assert identifiers(ctx, ange) == {("PASTEL@CH-ANNECY", "IPP0042")}


def test_mrg1_naming_the_authority_by_namespace_only_is_paired_with_pid3s_oid(sqlite_ctx) -> None:  # noqa: ANN001
    """A GAM filling MRG-1 with 'IPP0042^^^CHU-X^PI' (namespace only) and PID-3 with
    CHU-X and its OID: one domain. Read as two, the change was dropped (PID-3 'carries no
    identifier of its assigning authority') and her new IPP found no dossier. Paired now,
    warned; two OIDs under the namespace are two domains: not guessed."""
    n = normalize(a47("W1", f"IPP0777^^^{CHU}^PI", "IPP0042^^^CHU-X^PI"))
    [change] = n.adt.changed_ids
    assert (change.old.authority, change.old.value, change.new.value) == (
        CHU_OID, "IPP0042", "IPP0777")
    assert any(w.startswith("MRG[5]-1 repetition 1: assigning authority sent as its namespace "
                            "only") for w in n.warnings)
    two = normalize(a47("W2", f"IPP0777^^^{CHU}^PI~IPP0778^^^CHU-X&1.2.250.1.999.8&ISO^PI",
                        "IPP0042^^^CHU-X^PI"))
    assert two.adt.changed_ids == []
    ctx = sqlite_ctx
    pid = make_patient(ctx)
    ingest(ctx, adt("C1", "A31"), source=SOURCE)  # learns IPP0042 under the OID
    ids = ingest(ctx, a47("W3", f"IPP0777^^^{CHU}^PI", "IPP0042^^^CHU-X^PI"), source=SOURCE)
    assert ledger(ctx, ids[0]).patient_id == pid
    assert identifiers(ctx, pid) == {(CHU_OID, "IPP0777")}
