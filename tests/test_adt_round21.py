"""Hospital ADT (IHE PAM France) from senders not seen before, round 21: merges after merges.
A record the hospital merged into another (MRG-1 of an ADT^A40) is 'logically never
referenced in future transactions' (HL7 v2.5 3.3.40): its late A08 no longer rewrites the
surviving patient's traits, and an A40 merging again a record already merged away into a
patient we do not hold is held for an admin (ADT_MERGE_OTHER_RECORD) instead of joining two
of the hospital's records in one dossier; a chain of merges (A into B, then B into C) still
follows. Store rules on SQLite and PostgreSQL (``ctx``), the other case on SQLite."""

from __future__ import annotations

from sqlalchemy import select

from dossiers.patients import add_identifier
from dossiers.schema import audit_log
from pipelines.adt_identity import MERGED_AWAY_HELD
from pipelines.advice import advice
from tests.test_adt_consent import SOURCE, ledger, patient_row
from tests.test_adt_round16 import a40
from tests.test_adt_round19 import CHU, CHU_OID, identifiers
from tests.test_pipeline import ingest, make_patient, statuses


def a08(control: str, ipp: str, family: str, evn: str = "20240320094500") -> bytes:
    """A PAM France ADT^A08 naming the patient by the hospital's IPP only (PID-32 PROV: no
    qualified INS, as for most patients a GAM admits)."""
    segs = [f"MSH|^~\\&|GAM|CHU-X|DPI|CHU-X|{evn}||ADT^A08^ADT_A01|{control}|P|"
            "2.5^FRA^2.11|||||FRA|UNICODE UTF-8|FR||2.11^IHE_FRANCE-2.11-PAM",
            f"EVN||{evn}",
            f"PID|1||{ipp}^^^{CHU}^PI||{family}^Hélène^^^^^L||19790328|F" + "|" * 24 + "PROV",
            "PV1|1|N"]
    return ("\r".join(segs) + "\r").encode()


def _no_patient_data(*rows) -> None:  # noqa: ANN002
    """Ledger rows name fields, codes and dossier ids, never the patient's identifiers."""
    text = repr([(r.error_message, r.warnings) for r in rows])
    for value in ("LEFÈVRE", "LEFEBVRE", "Hélène", "19790328", "IPP0"):
        assert value not in text, value


def _merge_trail(ctx, pid: int) -> list[dict]:  # noqa: ANN001
    with ctx.engine.connect() as conn:
        return [d for (d,) in conn.execute(select(audit_log.c.details).where(
            audit_log.c.patient_id == pid, audit_log.c.action == "identity.merged")
            .order_by(audit_log.c.id))]


# -- the merged record's late A08 ------------------------------------------------------------
def test_a08_of_a_merged_record_does_not_rewrite_the_survivors_traits(ctx) -> None:  # noqa: ANN001
    """A GAM admitted Hélène Lefèvre twice, the second time misspelt LEFEBVRE (IPP0099), then
    merged IPP0099 into her record IPP0042 (A40). An A08 of IPP0099 recorded after her last
    update, reaching us after the merge (a second queue, a replay), matched the dossier by
    the merged IPP (a known local identifier, trusted) and rewrote her name with the
    duplicate's. Held now, warned; the survivor's own A08 still applies."""
    pid = make_patient(ctx, nir=None)
    ingest(ctx, a08("S1", "IPP0042", "LEFÈVRE"), source=SOURCE)  # the dossier learns IPP0042
    (merge,) = ingest(ctx, a40("M1", f"IPP0042^^^{CHU}^PI", f"IPP0099^^^{CHU}^PI"),
                      source=SOURCE)
    assert ledger(ctx, merge).error_message == ("ADT^A40 merge: 1 identifier(s) of MRG-1 "
                                                "now name the dossier")
    (trail,) = _merge_trail(ctx, pid)  # internal row ids, no identifier's value
    assert set(trail) == {"trigger", "identifiers", "merged_rows"}
    assert len(trail["merged_rows"]) == 1 and "IPP0099" not in repr(trail)
    (late,) = ingest(ctx, a08("S2", "IPP0099", "LEFEBVRE", "20240321094500"), source=SOURCE)
    row = ledger(ctx, late)
    assert (row.status, row.patient_id) == ("deposited", pid)
    assert row.warnings == [MERGED_AWAY_HELD]
    assert patient_row(ctx, pid).family == "Lefèvre"
    # the surviving record's own statement is applied as before
    (own,) = ingest(ctx, a08("S3", "IPP0042", "MARTIN", "20240322094500"), source=SOURCE)
    assert "identity updated: family" in ledger(ctx, own).error_message
    assert patient_row(ctx, pid).family == "MARTIN"
    _no_patient_data(row, ledger(ctx, merge))


def test_a_merge_of_a_record_the_dossier_held_already_marks_it(sqlite_ctx) -> None:  # noqa: ANN001
    """The duplicate record's identifier (IPP0099) was on her dossier before the hospital
    merged it (an admin put its messages there). The A40 learnt nothing and wrote nothing,
    so IPP0099 was not known as merged away: its late A08 rewrote her name. The merge now
    marks it (an audit row, 0 identifiers learnt), once: the same merge again writes none."""
    ctx = sqlite_ctx
    pid = make_patient(ctx, nir=None)
    ingest(ctx, a08("S1", "IPP0042", "LEFÈVRE"), source=SOURCE)
    with ctx.engine.begin() as conn:
        add_identifier(conn, pid, CHU_OID, "IPP0099", "PI")
    merges = ingest(ctx, a40("M1", f"IPP0042^^^{CHU}^PI", f"IPP0099^^^{CHU}^PI"),
                    a40("M2", f"IPP0042^^^{CHU}^PI", f"IPP0099^^^{CHU}^PI"), source=SOURCE)
    assert [ledger(ctx, i).error_message for i in merges] == [
        "ADT^A40 merge: the dossier held MRG-1's identifiers already"] * 2
    (trail,) = _merge_trail(ctx, pid)
    assert (trail["identifiers"], len(trail["merged_rows"])) == (0, 1)
    (late,) = ingest(ctx, a08("S2", "IPP0099", "LEFEBVRE", "20240321094500"), source=SOURCE)
    assert ledger(ctx, late).warnings == [MERGED_AWAY_HELD]
    assert patient_row(ctx, pid).family == "Lefèvre"


# -- merges after merges ---------------------------------------------------------------------
def test_a_record_merged_again_is_held_a_chain_is_followed(ctx) -> None:  # noqa: ANN001
    """IPP0042 fed the dossier; the GAM merged it into IPP0050 (A40, IPP0050 unknown here:
    the dossier learnt it). A second A40 merging IPP0042 again, into IPP0070 we do not hold,
    gave the dossier IPP0070 beside IPP0050: two live records of the hospital, which it
    never said are one patient, in one dossier, and every result of IPP0070 filed there.
    Quarantined now (ADT_MERGE_OTHER_RECORD), nothing changed. The chain IPP0050 into
    IPP0060 (IPP0042 merged away already) is followed as before."""
    pid = make_patient(ctx, nir=None)
    ingest(ctx, a08("S1", "IPP0042", "LEFÈVRE"), source=SOURCE)
    first, again, chain = ingest(
        ctx, a40("M1", f"IPP0050^^^{CHU}^PI", f"IPP0042^^^{CHU}^PI"),
        a40("M2", f"IPP0070^^^{CHU}^PI", f"IPP0042^^^{CHU}^PI"),
        a40("M3", f"IPP0060^^^{CHU}^PI", f"IPP0050^^^{CHU}^PI"), source=SOURCE)
    assert statuses(ctx, [first, again, chain]) == ["deposited", "quarantined", "deposited"]
    held = ledger(ctx, again)
    assert (held.error_code, held.error_location) == ("ADT_MERGE_OTHER_RECORD", "MRG-1")
    assert held.error_message.startswith(f"MRG-1: dossier {pid}, which MRG-1 names, also "
                                         "holds 1 other identifier(s) of the same assigning "
                                         "authority that this merge does not name")
    assert identifiers(ctx, pid) == {(CHU_OID, "IPP0042"), (CHU_OID, "IPP0050"),
                                     (CHU_OID, "IPP0060")}
    assert [d["identifiers"] for d in _merge_trail(ctx, pid)] == [1, 1]
    # the merge held names no patient data; an admin has its advice
    _no_patient_data(held, ledger(ctx, first), ledger(ctx, chain))
    assert "record merged twice" in advice("ADT_MERGE_OTHER_RECORD")
