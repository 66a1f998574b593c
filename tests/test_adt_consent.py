"""Consent from hospital ADT (IHE PAM France, ZFA): normalization, application to the dossier
(history, out-of-order statements, identity updates), and opposition refusing documents. The
pipeline tests run on SQLite and PostgreSQL (the ``ctx`` fixture)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from dossiers.consent import apply_consent, consent_history, instant
from dossiers.names import fold_name
from dossiers.schema import audit_log, consents, imports, patients
from normalizers.adt import adt_triggers
from normalizers.lab import normalize_message
from normalizers.model import ConsentStatement, NormalizationError
from parsers.hl7v2 import parse_message
from pipelines.identity import OPPOSITION
from pipelines.rerun import reopen
from tests.conftest import corpus_path
from tests.test_pipeline import INS_OID, NIR, ingest, make_patient, oru, statuses

SOURCE = "gam-chu"


def adt(control_id: str, trigger: str = "A31", *, zfa: str | None = None, nir: str = NIR,
        family: str = "LEFÈVRE", given: str = "Hélène", birth: str = "19790328",
        sex: str = "F", pid32: str = "VALI", local_id: str = "IPP0042",
        evn: str = "20240306111154", msh7: str | None = None,
        charset: str = "UNICODE UTF-8", eol: str = "\r") -> bytes:
    """A PAM France ADT like the SGL examples: MSH, EVN, PID, PV1, then ZFA when given.
    MSH-7 is EVN-2 unless given (a message is sent once its event is recorded: an EVN-2
    after MSH-7 is a wrong clock, not trusted since ADT round 17)."""
    msh7 = (evn or "20240306111154") if msh7 is None else msh7
    segs = [
        f"MSH|^~\\&|GAM|CHU-X|DPI|CHU-X|{msh7}||ADT^{trigger}^ADT_{trigger}|{control_id}|P|"
        f"2.5^FRA^2.11|||||FRA|{charset}|FR||2.11^IHE_FRANCE-2.11-PAM",
        f"EVN||{evn}||||{evn}",
        f"PID|1||{local_id}^^^CHU-X&1.2.250.1.999.9&ISO^PI~{nir}^^^ASIP-SANTE-INS-NIR&"
        f"{INS_OID}&ISO^INS||{family}^{given}^{given}^^^^L||{birth}|{sex}" + "|" * 24 + pid32,
        "PV1|1|I|CHIR^^^CHU-X",
    ]
    if zfa is not None:
        segs.append(f"ZFA|{zfa}")
    codec = "iso-8859-15" if charset == "8859/15" else "utf-8"
    return (eol.join(segs) + eol).encode(codec)


def zfa(status: str = "ACTIF", opposition: str = "", opposition_date: str = "",
        consultation: str = "", consultation_date: str = "") -> str:
    """ZFA-1 .. ZFA-12 (4 to 8 obsolete, left empty)."""
    return (f"{status}|20240306111154|||||||{opposition}|{opposition_date}|{consultation}|"
            f"{consultation_date}")


def normalize(data: bytes):  # noqa: ANN201
    return normalize_message(parse_message(data), SOURCE)


def patient_row(ctx, pid: int):  # noqa: ANN001, ANN201
    with ctx.engine.connect() as conn:
        return conn.execute(select(patients).where(patients.c.id == pid)).one()


def history(ctx, pid: int) -> list[dict]:  # noqa: ANN001
    with ctx.engine.connect() as conn:
        return consent_history(conn, pid)


def ledger(ctx, import_id: int):  # noqa: ANN001, ANN201
    with ctx.engine.connect() as conn:
        return conn.execute(select(imports).where(imports.c.id == import_id)).one()


# -- normalization ----------------------------------------------------------------------------
@pytest.mark.parametrize("trigger", ["A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08",
                                     "A11", "A12", "A13", "A28", "A31"])
def test_every_pam_trigger_is_read(trigger: str) -> None:
    n = normalize(adt("C1", trigger, zfa=zfa("ACTIF", "INO", "20240301", "IC", "20240302")))
    assert n.entries == [] and n.adt.trigger == trigger
    assert n.adt.updates_identity == (trigger in ("A08", "A28", "A31"))  # A28: round 17
    assert n.adt.consent == ConsentStatement(
        stated_at="2024-03-06T11:11:54+01:00", dmp_status="ACTIF", opposition="INO",
        opposition_date="2024-03-01", consultation="IC", consultation_date="2024-03-02")
    assert n.logical_id == "GAM|CHU-X|C1"


@pytest.mark.parametrize("field,value", [(1, "ACTIF"), (1, "FERME"), (1, "INEXISTANT"),
                                         (9, "NA"), (9, "IO"), (9, "INO"), (11, "NA"),
                                         (11, "INC"), (11, "IC")])
def test_every_zfa_code(field: int, value: str) -> None:
    kw = {1: {"status": value}, 9: {"status": "", "opposition": value},
          11: {"status": "", "consultation": value}}[field]
    consent = normalize(adt("C1", zfa=zfa(**kw))).adt.consent
    got = {1: consent.dmp_status, 9: consent.opposition, 11: consent.consultation}
    assert got == {n: (value if n == field else None) for n in (1, 9, 11)}


@pytest.mark.parametrize("field,kw", [(1, {"status": "OUVERT"}), (9, {"opposition": "OUI"}),
                                      (11, {"consultation": "C"})])
def test_unknown_zfa_code_names_field_and_value(field: int, kw: dict) -> None:
    with pytest.raises(NormalizationError) as exc:
        normalize(adt("C1", zfa=zfa(**kw)))
    assert exc.value.code == "ZFA_UNKNOWN_CODE"
    assert exc.value.location == f"ZFA[5]-{field}"
    assert repr(next(iter(kw.values()))) in str(exc.value)
    assert "Hélène" not in str(exc.value) and NIR not in str(exc.value)


def test_bad_zfa_date_and_unsupported_triggers() -> None:
    with pytest.raises(NormalizationError) as exc:
        normalize(adt("C1", zfa=zfa("ACTIF", "IO", "20241345")))
    assert (exc.value.code, exc.value.location) == ("HL7_BAD_DATE", "ZFA[5]-10")
    with pytest.raises(NormalizationError) as exc:
        normalize(adt("C1", "A30"))  # a person merge: not applied on a guess (A43: round 20)
    assert exc.value.code == "HL7_UNSUPPORTED_EVENT"
    assert "A30" not in adt_triggers()  # (A24 links: accepted with no effect, round 17)


def test_without_zfa_or_with_empty_zfa() -> None:
    n = normalize(adt("C1", "A08"))
    assert n.adt.consent is None and n.adt.updates_identity
    n = normalize(adt("C1", "A01", zfa="|20240306"))
    assert n.adt.consent is None and any("ZFA" in w for w in n.warnings)
    # no EVN: MSH-7 dates the statement
    data = adt("C1", zfa=zfa("ACTIF")).replace(b"EVN||20240306111154||||20240306111154\r", b"")
    assert normalize(data).adt.stated_at == "2024-03-06T11:11:54+01:00"


def test_corpus_sgl_admission_and_discharge() -> None:
    admission = normalize(corpus_path("hl7v2", "SGL_admission.er7").read_bytes())
    assert admission.adt.trigger == "A01"
    c = admission.adt.consent
    assert (c.dmp_status, c.opposition, c.consultation) == ("ACTIF", "INO", "IC")
    assert admission.identity.identity_status == "VALI"
    discharge = normalize(corpus_path("hl7v2", "SGL_sortie.er7").read_bytes())
    assert discharge.adt.trigger == "A03" and discharge.adt.consent is None


def test_corpus_sgl_through_the_pipeline(ctx) -> None:  # noqa: ANN001
    corpus = corpus_path("hl7v2")
    pid = make_patient(ctx, family="Pat-Trois", given="Dominique")
    ids = ingest(ctx, (corpus / "SGL_admission.er7").read_bytes(),
                 (corpus / "SGL_sortie.er7").read_bytes(), source=SOURCE)
    assert statuses(ctx, ids) == ["deposited", "deposited"]
    row = patient_row(ctx, pid)
    assert (row.dmp_status, row.opposed, row.consultation_consent) == ("ACTIF", False, "IC")
    assert [h["opposition"] for h in history(ctx, pid)] == ["INO"]
    assert ledger(ctx, ids[0]).stage == "consent"
    assert "consent applied" in ledger(ctx, ids[0]).error_message


# -- application to the dossier ---------------------------------------------------------------
def test_statements_history_audit_and_idempotent_rerun(ctx) -> None:  # noqa: ANN001
    pid = make_patient(ctx)
    first = ingest(ctx, adt("C1", "A28", zfa=zfa("ACTIF", "NA", "", "NA", "")), source=SOURCE)
    row = patient_row(ctx, pid)
    assert (row.dmp_status, row.opposed, row.consultation_consent) == ("ACTIF", False, "NA")
    later = ingest(ctx, adt("C2", evn="20240401100000",
                            zfa=zfa("ACTIF", "INO", "20240401", "IC", "20240401")),
                   adt("C3", evn="20240501100000", zfa=zfa("ACTIF", "NA", "", "NA", "")),
                   source=SOURCE)
    assert statuses(ctx, first + later) == ["deposited"] * 3
    row = patient_row(ctx, pid)
    assert (row.opposed, row.consultation_consent) == (False, "IC")  # NA changes nothing
    rows = history(ctx, pid)
    assert [(h["opposition"], h["consultation"], h["actor"]) for h in rows] == [
        ("NA", "NA", SOURCE), ("INO", "IC", SOURCE), ("NA", "NA", SOURCE)]
    assert [h["import_id"] for h in rows] == first + later
    # the same message again (other bytes, same MSH-10): duplicate, no second history row
    again = ingest(ctx, adt("C2", evn="20240401100000", eol="\n",
                            zfa=zfa("ACTIF", "INO", "20240401", "IC", "20240401")),
                   source=SOURCE)
    assert statuses(ctx, again) == ["duplicate"]
    assert len(history(ctx, pid)) == 3
    with ctx.engine.connect() as conn:
        audit = conn.execute(select(audit_log).where(audit_log.c.action == "consent.update",
                                                     audit_log.c.patient_id == pid)
                             .order_by(audit_log.c.id)).all()
    assert len(audit) == 3 and audit[1].actor == SOURCE
    assert audit[1].details["opposition"] == "INO"
    text = repr([a.details for a in audit])
    assert NIR not in text and "Hélène" not in text and "LEFÈVRE" not in text
    # applying the same import twice (a replayed batch) changes nothing
    with ctx.engine.begin() as conn:
        change = apply_consent(conn, pid, ConsentStatement(
            "2024-06-01T10:00+02:00", opposition="IO"), actor=SOURCE, import_id=later[0])
    assert not change.recorded and not patient_row(ctx, pid).opposed


def test_out_of_order_statement_kept_but_not_current(ctx) -> None:  # noqa: ANN001
    pid = make_patient(ctx)
    ids = ingest(ctx, adt("C1", evn="20240601100000", zfa=zfa("ACTIF", "IO", "20240601")),
                 adt("C2", evn="20240101100000", zfa=zfa("ACTIF", "INO", "20240101")),
                 source=SOURCE)
    assert statuses(ctx, ids) == ["deposited", "deposited"]
    assert patient_row(ctx, pid).opposed  # the newer IO stands
    assert [h["opposition"] for h in history(ctx, pid)] == ["IO", "INO"]
    assert "kept in its history only: dmp_status, opposition" in ledger(ctx, ids[1]).warnings[0]
    # without ZFA-10 the statement's time dates it: EVN-2 of July is newer
    ingest(ctx, adt("C3", evn="20240701100000", zfa=zfa("ACTIF", "INO")), source=SOURCE)
    assert not patient_row(ctx, pid).opposed


def test_identity_update_only_when_trusted(ctx) -> None:  # noqa: ANN001
    pid = make_patient(ctx)
    ids = ingest(ctx, adt("C1", "A08", family="MARTIN", given="Hélène"), source=SOURCE)
    assert statuses(ctx, ids) == ["deposited"]
    row = patient_row(ctx, pid)
    assert (row.family, row.birth_family, row.family_key) == ("MARTIN", "MARTIN",
                                                               fold_name("MARTIN"))
    assert "identity updated: family, birth_family" in ledger(ctx, ids[0]).error_message
    with ctx.engine.connect() as conn:
        audit = conn.execute(select(audit_log).where(
            audit_log.c.action == "identity.update")).one()
    assert audit.details == {"fields": ["family", "birth_family"],  # stated_at: round 16
                             "stated_at": "2024-03-06T11:11:54+01:00"}
    assert "MARTIN" not in repr(audit)
    # an A01 states nothing about identity; a PROV identity found by demographics is not
    # trusted (the INS is ignored, the local id is now known: a local-id match is trusted)
    ingest(ctx, adt("C2", "A01", family="DURAND"), source=SOURCE)
    assert patient_row(ctx, pid).family == "MARTIN"
    other = make_patient(ctx, nir="188102B17295165", family="Santoni", given="Ange",
                         birth_date="1988-10-02", sex="M")
    ids = ingest(ctx, adt("C3", "A31", nir="188102B17295165", family="SANTONI",
                          given="Ange", birth="19881002", sex="M", pid32="PROV",
                          local_id="IPP0099"), source=SOURCE)
    assert statuses(ctx, ids) == ["deposited"]
    assert "identity not updated" in " ".join(ledger(ctx, ids[0]).warnings)
    assert patient_row(ctx, other).family == "Santoni"


def test_unknown_patient_quarantined_or_auto_created_with_opposition(ctx) -> None:  # noqa: ANN001
    data = adt("C1", "A28", zfa=zfa("ACTIF", "IO", "20240306"))
    ids = ingest(ctx, data, source=SOURCE)
    assert statuses(ctx, ids) == ["quarantined"]
    assert ledger(ctx, ids[0]).error_code == "IDENTITY_UNKNOWN_PATIENT"
    ctx.settings = replace(ctx.settings, auto_create=True)
    reopen(ctx.engine, ids)
    from pipelines.process import drain

    drain(ctx)
    assert statuses(ctx, ids) == ["deposited"]
    pid = ledger(ctx, ids[0]).patient_id
    assert patient_row(ctx, pid).opposed  # recorded before any document arrived
    later = ingest(ctx, oru("MSG-1"))
    assert statuses(ctx, later) == ["quarantined"]
    assert ledger(ctx, later[0]).error_code == OPPOSITION


def test_opposition_then_document_then_lifted_and_rerun(ctx) -> None:  # noqa: ANN001
    pid = make_patient(ctx)
    assert statuses(ctx, ingest(ctx, oru("MSG-0", filler="CMD-0"))) == ["deposited"]
    ingest(ctx, adt("C1", zfa=zfa("ACTIF", "IO", "20240306")), source=SOURCE)
    refused = ingest(ctx, oru("MSG-1"))
    assert statuses(ctx, refused) == ["quarantined"]
    row = ledger(ctx, refused[0])
    assert (row.error_code, row.error_message) == (
        OPPOSITION, "the patient has opposed the feeding of their dossier")
    # even an admin's assignment does not feed an opposed dossier
    with ctx.engine.begin() as conn:
        conn.execute(imports.update().where(imports.c.id == refused[0])
                     .values(assigned_patient_id=pid))
    reopen(ctx.engine, refused)
    from pipelines.process import drain

    drain(ctx)
    assert ledger(ctx, refused[0]).error_code == OPPOSITION
    # the patient withdraws the opposition (INO, dated later): the rerun deposits
    ingest(ctx, adt("C2", evn="20240310090000", zfa=zfa("ACTIF", "INO", "20240310")),
           source=SOURCE)
    assert not patient_row(ctx, pid).opposed
    reopen(ctx.engine, refused)
    drain(ctx)
    assert statuses(ctx, refused) == ["deposited"]


def test_closed_dmp_refuses_documents(ctx) -> None:  # noqa: ANN001
    pid = make_patient(ctx)
    ingest(ctx, adt("C1", "A08", zfa=zfa("FERME")), source=SOURCE)
    assert patient_row(ctx, pid).dmp_status == "FERME"
    ids = ingest(ctx, oru("MSG-1"))
    assert statuses(ctx, ids) == ["quarantined"]
    assert ledger(ctx, ids[0]).error_code == "DOSSIER_CLOSED"
    # reopened later (ACTIF, a later EVN-2): the rerun deposits
    ingest(ctx, adt("C2", "A08", evn="20240401090000", zfa=zfa("ACTIF")), source=SOURCE)
    reopen(ctx.engine, ids)
    from pipelines.process import drain

    drain(ctx)
    assert statuses(ctx, ids) == ["deposited"]


def test_opposition_and_document_in_one_batch_keep_their_order(ctx) -> None:  # noqa: ANN001
    make_patient(ctx)
    ids = ingest(ctx, oru("MSG-0", filler="CMD-0"), adt("C1", zfa=zfa("ACTIF", "IO")),
                 oru("MSG-1"), source=SOURCE)
    assert statuses(ctx, ids) == ["deposited", "deposited", "quarantined"]


def test_unknown_code_fails_on_the_ledger(ctx) -> None:  # noqa: ANN001
    make_patient(ctx)
    ids = ingest(ctx, adt("C1", zfa=zfa("ACTIF", "OUI")), source=SOURCE)
    row = ledger(ctx, ids[0])
    assert (row.status, row.stage, row.error_code, row.error_location) == (
        "failed", "normalize", "ZFA_UNKNOWN_CODE", "ZFA[5]-9")


def test_latin9_adt_with_accents(ctx) -> None:  # noqa: ANN001
    pid = make_patient(ctx, family="Lefèvre")
    ids = ingest(ctx, adt("C1", "A31", family="LEFÈVRE-ŒUVRARD", charset="8859/15",
                          zfa=zfa("ACTIF", "INO", "", "IC", "")), source=SOURCE)
    assert statuses(ctx, ids) == ["deposited"]
    assert patient_row(ctx, pid).family == "LEFÈVRE-ŒUVRARD"


# -- property: the current state is the latest-dated statement, whatever the order ----------
_BASE = datetime(2024, 1, 1, tzinfo=UTC)
statement = st.tuples(st.sampled_from([None, "ACTIF", "FERME", "INEXISTANT"]),
                      st.sampled_from([None, "NA", "IO", "INO"]),
                      st.sampled_from([None, "NA", "INC", "IC"]))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), n=st.integers(min_value=1, max_value=6))
def test_current_state_is_the_latest_dated_statement(ctx, data, n: int) -> None:  # noqa: ANN001
    """Random valid statements applied in a random order: the dossier's current values are
    those of the latest-dated statement of each kind (the store is emptied per example)."""
    with ctx.engine.begin() as conn:
        conn.execute(consents.delete())
        conn.execute(audit_log.delete())
        conn.execute(patients.delete())
    pid = make_patient(ctx)
    # distinct days for each field: a tie would be decided by arrival, on purpose
    days = {k: data.draw(st.lists(st.integers(0, 400), min_size=n, max_size=n, unique=True))
            for k in ("at", "opp", "con")}
    values = data.draw(st.lists(statement, min_size=n, max_size=n))
    undated = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    stmts = []
    for i, (status, opp, con) in enumerate(values):
        at = _BASE + timedelta(days=days["at"][i], hours=10)
        opp_date = None if undated[i] or opp is None else (
            _BASE + timedelta(days=days["opp"][i])).date().isoformat()
        con_date = None if con is None else (
            _BASE + timedelta(days=days["con"][i], hours=12)).isoformat()
        stmts.append(ConsentStatement(at.isoformat(), dmp_status=status, opposition=opp,
                                      opposition_date=opp_date, consultation=con,
                                      consultation_date=con_date))
    order = data.draw(st.permutations(range(n)))
    for i in order:
        with ctx.engine.begin() as conn:
            apply_consent(conn, pid, stmts[i], actor=SOURCE)

    def latest(name: str, date, choices: tuple[str, ...]) -> str | None:  # noqa: ANN001
        """The value of the latest-dated statement that states one of ``choices`` (dates are
        distinct by construction); None when none does."""
        said = [s for s in stmts if getattr(s, name) in choices]
        return getattr(max(said, key=lambda s: instant(date(s))), name) if said else None

    row = patient_row(ctx, pid)
    assert row.dmp_status == latest("dmp_status", lambda s: s.stated_at,
                                    ("ACTIF", "FERME", "INEXISTANT"))
    assert row.opposed == (latest("opposition", lambda s: s.opposition_date or s.stated_at,
                                  ("IO", "INO")) == "IO")
    consultation = latest("consultation", lambda s: s.consultation_date, ("INC", "IC"))
    if consultation is None and any(s.consultation == "NA" for s in stmts):
        consultation = "NA"  # not asked: only ever the value when nothing else was said
    assert row.consultation_consent == consultation
    assert len(history(ctx, pid)) == n


# -- the committed sample set -------------------------------------------------------------
def test_sample_set_adt_story(ctx) -> None:  # noqa: ANN001
    """25: K3's consent state (A28, UTF-8); 26: K9 objects (A31, 8859/15); 27: her results
    are refused; 28: her married name (A08). 23: an A01 without ZFA, recorded."""
    import csv

    from tests.conftest import SAMPLES
    from tests.test_samples_e2e import load_samples

    ctx.settings = replace(ctx.settings, mappings_dir=SAMPLES / "mappings")
    by_file = load_samples(ctx)
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        ins = {r["key"]: r["ins"] for r in csv.DictReader(fh)}
    with ctx.engine.connect() as conn:
        people = {r.ins: r for r in conn.execute(select(patients))}
    k3, k9 = people[ins["K3"]], people[ins["K9"]]
    assert (k3.dmp_status, k3.opposed, k3.consultation_consent) == ("ACTIF", False, "IC")
    assert (k9.dmp_status, k9.opposed, k9.consultation_consent) == ("ACTIF", True, "NA")
    assert (k9.family, k9.birth_family, k9.given) == ("Fontaine", "Rousseau", "Léa")
    refused = by_file["27_labm_tsh_opposition.hl7"][0]
    assert (refused.status, refused.error_code) == ("quarantined", OPPOSITION)
    a01 = by_file["23_casse_adt_a01.hl7"][0]
    assert (a01.status, a01.stage, a01.entries_count) == ("deposited", "consent", 0)
    assert a01.error_message == "ADT^A01 recorded, nothing to apply"
    assert by_file["28_gam_annecy_a08_identite.hl7"][0].error_message == (
        "identity updated: family")
    assert [h["opposition"] for h in history(ctx, k9.id)] == ["IO"]


# -- ADT^A47: an INS that was not this patient's ------------------------------------------
def a47(control_id: str, wrong_nir: str = NIR, local_id: str = "IPP0042") -> bytes:
    """ADT^A47: PID-3 the patient's identifiers now (the local id, no INS, PID-32 PROV),
    MRG-1 the INS that was wrong."""
    segs = [
        f"MSH|^~\\&|GAM|CHU-X|DPI|CHU-X|20240307090000||ADT^A47^ADT_A30|{control_id}|P|"
        "2.5^FRA^2.11|||||FRA|UNICODE UTF-8|FR||2.11^IHE_FRANCE-2.11-PAM",
        "EVN||20240307090000",
        f"PID|1||{local_id}^^^CHU-X&1.2.250.1.999.9&ISO^PI||LEFÈVRE^Hélène^^^^^L||19790328|F"
        + "|" * 24 + "PROV",
        f"MRG|{wrong_nir}^^^ASIP-SANTE-INS-NIR&{INS_OID}&ISO^INS",
    ]
    return ("\r".join(segs) + "\r").encode()


def test_a47_removes_the_ins_named_in_mrg(ctx) -> None:  # noqa: ANN001
    pid = make_patient(ctx)
    ingest(ctx, adt("C1", "A31", zfa=zfa("ACTIF", "INO")), source=SOURCE)  # learns IPP0042
    ids = ingest(ctx, a47("C2"), source=SOURCE)
    assert statuses(ctx, ids) == ["deposited"]
    row = patient_row(ctx, pid)
    assert (row.ins, row.ins_oid) == (None, None)
    assert ledger(ctx, ids[0]).error_message == (
        "INS-NIR-TEST removed from the dossier (ADT^A47, MRG-1)")
    with ctx.engine.connect() as conn:
        audit = conn.execute(select(audit_log).where(
            audit_log.c.action == "identity.ins_removed")).one()
    assert audit.patient_id == pid and NIR not in repr(audit.details)
    # the same A47 again: duplicate; results with that INS no longer reach the dossier
    assert statuses(ctx, ingest(ctx, a47("C2"), source=SOURCE)) == ["duplicate"]
    assert statuses(ctx, ingest(ctx, oru("MSG-1", local_id="OTHER"))) == ["quarantined"]
    # the hospital's own id still does
    later = ingest(ctx, adt("C3", "A08", pid32="PROV"), source=SOURCE)
    assert ledger(ctx, later[0]).patient_id == pid


def test_a47_nothing_held_conflict_and_local_only(ctx) -> None:  # noqa: ANN001
    ids = ingest(ctx, a47("C1"), source=SOURCE)
    assert statuses(ctx, ids) == ["deposited"]
    assert "nothing removed" in ledger(ctx, ids[0]).error_message
    make_patient(ctx)
    make_patient(ctx, nir="188102B17295165", family="Santoni", given="Ange",
                 birth_date="1988-10-02", sex="M")
    ingest(ctx, adt("C2", "A31", nir="188102B17295165", family="SANTONI", given="Ange",
                    birth="19881002", sex="M", local_id="IPP0099"), source=SOURCE)
    ids = ingest(ctx, a47("C3", local_id="IPP0099"), source=SOURCE)  # NIR held by the other
    assert ledger(ctx, ids[0]).error_code == "IDENTITY_CONFLICT"
    data = a47("C4").replace(f"MRG|{NIR}^^^ASIP-SANTE-INS-NIR&{INS_OID}&ISO^INS".encode(),
                             b"MRG|OLD0001^^^CHU-X&1.2.250.1.999.9&ISO^PI")
    ids = ingest(ctx, data, source=SOURCE)
    row = ledger(ctx, ids[0])
    # a change of the local identifier (ADT round 19): applied, here to no dossier
    assert (row.status, row.error_code) == ("deposited", None)
    assert row.error_message.startswith(
        "ADT^A47: the local identifier(s) of MRG-1 name no dossier here, nothing changed")


def test_unknown_patient_assigned_by_an_admin_then_rerun(ctx) -> None:  # noqa: ANN001
    """The ADT names nobody the store knows (no auto-creation): quarantined; once an admin
    assigns the dossier, the rerun applies the consent, never the PID's demographics."""
    pid = make_patient(ctx, nir="188102B17295165", family="Santoni", given="Ange",
                       birth_date="1988-10-02", sex="M")
    ids = ingest(ctx, adt("C1", "A31", zfa=zfa("ACTIF", "IO")), source=SOURCE)
    assert ledger(ctx, ids[0]).error_code == "IDENTITY_UNKNOWN_PATIENT"
    with ctx.engine.begin() as conn:
        conn.execute(imports.update().where(imports.c.id == ids[0])
                     .values(assigned_patient_id=pid))
    reopen(ctx.engine, ids)
    from pipelines.process import drain

    drain(ctx)
    row = ledger(ctx, ids[0])
    assert (row.status, row.patient_id) == ("deposited", pid)
    assert "identity not updated" in " ".join(row.warnings)
    assert patient_row(ctx, pid).opposed and patient_row(ctx, pid).family == "Santoni"
