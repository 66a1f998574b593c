"""The dossier's access rules (dossiers/access.py) on both stores: who reads what, masking,
authorisations, break-glass, withdrawal, and the hash-chained audit trail that records it all.

The same rules over real HTTP, role by role, are in tests/test_api.py; here they are called
directly, with samples filed through the pipeline."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import pytest
from sqlalchemy import select, text, update

from dossiers import access
from dossiers.access import AccessDenied, InvalidRequest, NotFound, Principal
from dossiers.audit import verify
from dossiers.schema import audit_log, entries, patients
from pipelines.check import check
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.conftest import SAMPLES

AUTHOR = "08751632788"  # the CDA author of samples/cda/09 and 10 (RPPS 8 + 11 digits)
TREATING, TRUSTED, STRANGER = "10000000001", "10000000002", "10000000003"
ADMIN = Principal("admin", "alice")


def _file(ctx, name: str) -> None:  # noqa: ANN001
    path = SAMPLES / "cda" / name
    intake(ctx.engine, ctx.archive, [Received(path.read_bytes(), "hospital", "file",
                                              file_name=name)])
    drain(ctx)


@pytest.fixture
def dossier(ctx):  # noqa: ANN001, ANN201
    """The patient of samples/cda/10 (a masked CR-BIO with one result), with a médecin
    traitant and one authorised professional; returns (ctx, patient principal, ids)."""
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])
    _file(ctx, "10_crbio_hcg_restreint.xml")
    with ctx.engine.connect() as conn:
        doc = conn.execute(select(entries).where(entries.c.type == "document")).one()
        result = conn.execute(select(entries.c.id).where(
            entries.c.parent_id == doc.id)).scalar_one()
    for rpps, family, role in ((AUTHOR, "Lefèvre", "biologiste"),
                               (TREATING, "Durand", "médecin"),
                               (TRUSTED, "Nguyen", "infirmière"),
                               (STRANGER, "Roussel", "médecin")):
        access.register_professional(ctx.engine, ADMIN, rpps, family, "Anne", role)
    patient = Principal("patient", str(doc.patient_id))
    access.set_treating(ctx.engine, ADMIN, str(doc.patient_id), TREATING)
    access.grant(ctx.engine, patient, str(doc.patient_id), TRUSTED)
    return SimpleNamespace(ctx=ctx, engine=ctx.engine, patient=patient,
                           pid=str(doc.patient_id), doc=doc.id, result=result)


def pro(rpps: str) -> Principal:
    return Principal("professional", rpps, "médecin")


def _seen(d, who: Principal) -> set[int]:  # noqa: ANN001
    return {e["id"] for e in access.read_entries(d.engine, who, d.pid)["entries"]}


def test_masked_document_is_seen_by_patient_treating_and_author_only(dossier) -> None:  # noqa: ANN001, E501
    d = dossier
    both = {d.doc, d.result}
    assert _seen(d, d.patient) == both
    assert _seen(d, pro(TREATING)) == both
    with pytest.raises(AccessDenied):  # not authorised: the author too needs access
        _seen(d, pro(AUTHOR))
    access.grant(d.engine, d.patient, d.pid, AUTHOR)
    assert _seen(d, pro("8" + AUTHOR)) == both  # the CDA form of the RPPS is the same person
    assert _seen(d, pro(TRUSTED)) == set()
    assert access.read_dossier(d.engine, pro(TRUSTED), d.pid)["access"]["basis"] == "authorised"
    with pytest.raises(NotFound):
        access.read_document(d.engine, pro(TRUSTED), d.doc)
    doc = access.read_document(d.engine, pro(TREATING), d.doc)
    assert doc["media_type"] == "text/xml" and len(doc["sha256"]) == 64


def test_stranger_is_refused_alike_for_existing_and_unknown_patients(dossier) -> None:  # noqa: ANN001, E501
    d = dossier
    answers = []
    for ref in (d.pid, "999999", "295029712010115", "123456789012345"):
        with pytest.raises(AccessDenied) as err:
            access.read_entries(d.engine, pro(STRANGER), ref)
        answers.append((err.value.code, err.value.message, err.value.status))
    assert len(set(answers)) == 1 and answers[0][2] == 403
    for who in (ADMIN, Principal("sender", "labm"), Principal("patient", "999")):
        with pytest.raises(AccessDenied):
            access.read_dossier(d.engine, who, d.pid)
    trail = access.read_audit(d.engine, d.patient, d.pid)["events"]
    denied = [e for e in trail if e["action"] == "access.denied"]
    assert {e["actor"] for e in denied} == {f"professional:{STRANGER}", "admin:alice",
                                            "sender:labm", "patient:999"}


def test_break_glass_reads_without_masked_items_and_is_traced(dossier) -> None:  # noqa: ANN001
    d = dossier
    with pytest.raises(InvalidRequest):
        access.open_break_glass(d.engine, pro(STRANGER), d.pid, "urgence")
    with pytest.raises(AccessDenied):  # same answer as a read: no existence leak
        access.open_break_glass(d.engine, pro(STRANGER), "999999", "patient inconscient")
    access.open_break_glass(d.engine, pro(STRANGER), d.pid, "patient inconscient aux urgences")
    read = access.read_entries(d.engine, pro(STRANGER), d.pid)
    assert read["access"] == {"basis": "break_glass", "break_glass": True}
    assert read["entries"] == []  # the only document is masked
    access.set_mask(d.engine, d.patient, d.doc, False)
    assert _seen(d, pro(STRANGER)) == {d.doc, d.result}
    events = access.read_audit(d.engine, d.patient, d.pid)["events"]
    glass = [e for e in events if e["break_glass"]]
    # newest first (round 6: the trail was oldest first while its docs said newest first)
    glass.reverse()
    assert [e["action"] for e in glass] == ["break_glass.open", "entries.read", "entries.read"]
    assert glass[0]["reason"] == "patient inconscient aux urgences"
    assert glass[0]["actor_name"] == "Anne Roussel (médecin)"
    with pytest.raises(AccessDenied):  # only the patient reads the trail
        access.read_audit(d.engine, pro(TREATING), d.pid)


def test_patient_masks_and_unmasks_and_revokes(dossier) -> None:  # noqa: ANN001
    d = dossier
    access.set_mask(d.engine, d.patient, d.doc, False)
    assert _seen(d, pro(TRUSTED)) == {d.doc, d.result}
    access.set_mask(d.engine, d.patient, d.doc, True)
    assert _seen(d, pro(TRUSTED)) == set()
    with pytest.raises(AccessDenied):
        access.set_mask(d.engine, pro(TREATING), d.doc, False)
    access.revoke(d.engine, d.patient, d.pid, TRUSTED)
    with pytest.raises(AccessDenied):
        access.read_entries(d.engine, pro(TRUSTED), d.pid)
    with pytest.raises(AccessDenied):
        access.grant(d.engine, pro(TREATING), d.pid, STRANGER)
    with pytest.raises(InvalidRequest):
        access.grant(d.engine, d.patient, d.pid, "19999999999")  # not registered


def test_author_withdraws_document_kept_for_audit(dossier) -> None:  # noqa: ANN001
    d = dossier
    with pytest.raises(AccessDenied):
        access.withdraw(d.engine, pro(TREATING), d.doc, "erreur de patient")
    access.grant(d.engine, d.patient, d.pid, AUTHOR)
    assert access.withdraw(d.engine, pro(AUTHOR), d.doc, "erreur de patient")["withdrawn"] == 2
    for who in (d.patient, pro(TREATING), pro(AUTHOR)):
        assert _seen(d, who) == set()
    with d.engine.connect() as conn:
        rows = conn.execute(select(entries).order_by(entries.c.id)).all()
    assert [(r.status == "withdrawn", r.current) for r in rows] == [
        (False, False), (False, False), (True, True), (True, True)]
    assert rows[2].withdrawn_by == f"professional:{AUTHOR}"
    assert rows[0].superseded_by == rows[2].id


def test_author_withdraws_without_access_to_the_dossier(dossier) -> None:  # noqa: ANN001
    """A document filed in the wrong dossier: its author, whom that patient never authorised,
    withdraws it all the same (and reads nothing); others are refused as before; the store
    stays consistent for `dmp-ingest check` (no import made the withdrawn versions)."""
    d = dossier
    with pytest.raises(AccessDenied):  # the author may not read this dossier...
        access.read_entries(d.engine, pro(AUTHOR), d.pid)
    with pytest.raises(NotFound) as refused:  # a stranger: as for an entry not there
        access.withdraw(d.engine, pro(STRANGER), d.doc, "erreur de patient")
    assert refused.value.code == "NOT_FOUND"
    with pytest.raises(AccessDenied) as refused:  # one who reads it, not its author
        access.withdraw(d.engine, pro(TREATING), d.doc, "erreur de patient")
    assert refused.value.code == "AUTHOR_ONLY"
    with pytest.raises(NotFound):  # the result inside it: not the author's own entry
        access.withdraw(d.engine, pro(TRUSTED), d.result, "erreur de patient")
    # ...but withdraws the document they wrote
    assert access.withdraw(d.engine, pro(AUTHOR), d.doc, "erreur de patient")["withdrawn"] == 2
    assert _seen(d, d.patient) == set() and _seen(d, pro(TREATING)) == set()
    with pytest.raises(NotFound):  # once withdrawn, no longer the author's to act on
        access.withdraw(d.engine, pro(AUTHOR), d.doc, "erreur de patient")
    trail = access.read_audit(d.engine, d.patient, d.pid)["events"]
    done = [e for e in trail if e["action"] == "document.withdraw"]
    assert [(e["actor"], e["details"]["basis"], e["reason"]) for e in done] == [
        (f"professional:{AUTHOR}", "author", "erreur de patient")]
    assert {e["actor"] for e in trail if e["action"] == "access.denied"} == {
        f"professional:{STRANGER}", f"professional:{AUTHOR}"}
    report = check(d.engine, d.ctx.archive)
    assert report.consistent, report.as_dict()["findings"]
    assert verify(d.engine).ok


def test_consent_refused_or_dossier_closed_leaves_break_glass_only(dossier) -> None:  # noqa: ANN001, E501
    d = dossier
    for column, value in (("consultation_consent", "INC"), ("dmp_status", "FERME")):
        with d.engine.begin() as conn:
            conn.execute(update(patients).values(consultation_consent=None, dmp_status=None))
            conn.execute(update(patients).values(**{column: value}))
        for rpps in (TREATING, TRUSTED):
            with pytest.raises(AccessDenied):
                access.read_dossier(d.engine, pro(rpps), d.pid)
        assert access.read_dossier(d.engine, d.patient, d.pid)["access"]["basis"] == "patient"
    access.open_break_glass(d.engine, pro(TRUSTED), d.pid, "détresse respiratoire")
    assert access.read_dossier(d.engine, pro(TRUSTED), d.pid)["access"]["break_glass"]


def test_filters_on_type_code_and_dates(dossier) -> None:  # noqa: ANN001
    d = dossier
    read = access.read_entries(d.engine, d.patient, d.pid, type="lab_result")
    assert [e["id"] for e in read["entries"]] == [d.result]
    code = read["entries"][0]["code"]
    effective = read["entries"][0]["effective"]
    assert access.read_entries(d.engine, d.patient, d.pid, code=code)["total"] == 1
    year = effective[:4]
    assert access.read_entries(d.engine, d.patient, d.pid, type="lab_result",
                               date_from=year, date_to=year)["total"] == 1
    assert access.read_entries(d.engine, d.patient, d.pid, date_to="1990")["total"] == 0
    with pytest.raises(InvalidRequest):
        access.read_entries(d.engine, d.patient, d.pid, date_from="yesterday")


def test_audit_chain_detects_edit_delete_and_insert(dossier) -> None:  # noqa: ANN001
    d = dossier
    access.read_dossier(d.engine, pro(TREATING), d.pid)
    access.read_dossier(d.engine, pro(TREATING), d.pid)
    checked = verify(d.engine)
    assert checked.ok and checked.rows >= 8 and checked.chains == 2
    with d.engine.begin() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.chain == int(d.pid))
                            .order_by(audit_log.c.seq)).all()
        conn.execute(update(audit_log).where(audit_log.c.id == rows[1].id)
                     .values(actor="professional:19999999999"))
    broken = verify(d.engine)
    assert [(b.seq, b.problem) for b in broken.breaks] == [(2, "edited")]
    with d.engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.id == rows[1].id)
                     .values(actor=rows[1].actor))
        conn.execute(text("DELETE FROM audit_log WHERE id = :i"), {"i": rows[2].id})
    assert [(b.seq, b.problem) for b in verify(d.engine).breaks] == [
        (4, "missing row"), (4, "reordered")]


def test_decide_matrix() -> None:
    """Every role against every state of the dossier, without a database."""
    def patient(**kw: object) -> SimpleNamespace:
        base = {"id": 7, "treating_rpps": TREATING, "dmp_status": "ACTIF",
                "consultation_consent": "IC"}
        return SimpleNamespace(**{**base, **kw})

    cases = [
        (Principal("patient", "7"), patient(), False, False, "patient"),
        (Principal("patient", "7"), patient(dmp_status="FERME"), False, False, "patient"),
        (Principal("patient", "8"), patient(), False, False, None),
        (pro(TREATING), patient(), False, False, "treating"),
        (pro(TREATING), patient(consultation_consent="INC"), False, False, None),
        (pro(TREATING), patient(consultation_consent="INC"), False, True, "break_glass"),
        (pro(TRUSTED), patient(), True, False, "authorised"),
        (pro(TRUSTED), patient(), True, True, "authorised"),
        (pro(TRUSTED), patient(dmp_status="FERME"), True, False, None),
        (pro(STRANGER), patient(), False, False, None),
        (pro(STRANGER), patient(), False, True, "break_glass"),
        (Principal("professional", "not-an-rpps"), patient(), True, True, None),
        (ADMIN, patient(), True, True, None),
        (Principal("sender", "labm"), patient(), True, True, None),
    ]
    for who, state, authorised, glass, expected in cases:
        if expected is None:
            with pytest.raises(AccessDenied):
                access.decide(who, state, authorised=authorised, break_glass_open=glass)
        else:
            assert access.decide(who, state, authorised=authorised,
                                 break_glass_open=glass) == expected


def test_rpps_forms() -> None:
    assert access.normalize_rpps("10001234567") == "10001234567"
    assert access.normalize_rpps("810001234567") == "10001234567"
    assert access.normalize_rpps("1.2.250.1.71.4.2.1^810001234567") == "10001234567"
    assert access.normalize_rpps("1.2.250.1.71.4.2.2^810001234567") is None  # a FINESS
    assert access.normalize_rpps("1000123456") is None


def test_audit_verify_command(dossier, monkeypatch, capsys) -> None:  # noqa: ANN001
    from cli import main

    d = dossier
    monkeypatch.setenv("DMP_HOME", str(d.ctx.settings.home))
    monkeypatch.setenv("DMP_DATABASE_URL", d.ctx.settings.database_url)
    monkeypatch.setenv("DMP_ARCHIVE_URL", d.ctx.settings.archive_url)
    assert main(["audit", "verify"]) == 0
    assert capsys.readouterr().out.strip().endswith("intact")
    with d.engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.chain == int(d.pid),
                                             audit_log.c.seq == 1).values(reason="forged"))
    assert main(["audit", "verify", "--patient", d.pid]) == 1
    out = capsys.readouterr().out
    assert f"broken: chain {d.pid} seq 1" in out and "TAMPERED: 1 break(s)" in out
    with d.engine.connect() as conn:  # the dossier named by its INS: the same chain
        ins = conn.execute(select(patients.c.ins).where(patients.c.id == int(d.pid))).scalar()
    assert main(["audit", "verify", "--patient", ins]) == 1
    assert f"broken: chain {d.pid} seq 1" in capsys.readouterr().out
    # an unknown dossier is an error, not an empty chain reported "intact"
    assert main(["audit", "verify", "--patient", "999999"]) == 1
    captured = capsys.readouterr()
    assert "intact" not in captured.out and "no dossier 999999" in captured.err


def test_deposits_are_in_the_patients_trail(dossier) -> None:  # noqa: ANN001
    d = dossier
    events = access.read_audit(d.engine, d.patient, d.pid)["events"][::-1]  # oldest first
    assert events[0]["action"] == "dossier.deposit" and events[0]["seq"] == 1
    assert events[0]["actor"] == "sender:hospital"
    assert events[0]["details"]["entries"] == 2 and len(events[0]["details"]["imports"]) == 1
    assert [e["action"] for e in events[1:]] == ["treating.set", "authorization.grant"]


def test_patients_mask_survives_a_new_version_of_the_document(ctx) -> None:  # noqa: ANN001
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])
    _file(ctx, "02_crbio_synlab_bilan_renal_v1.xml")
    with ctx.engine.connect() as conn:
        doc = conn.execute(select(entries).where(entries.c.type == "document")).one()
    patient = Principal("patient", str(doc.patient_id))
    access.set_mask(ctx.engine, patient, doc.id, True)
    _file(ctx, "03_crbio_synlab_bilan_renal_v2_rplc.xml")
    with ctx.engine.connect() as conn:
        current = conn.execute(select(entries).where(
            entries.c.type == "document", entries.c.current.is_(True))).one()
    assert current.id != doc.id and current.mask_override is True


def test_hl7v2_results_flagged_masque_ps_are_masked(ctx) -> None:  # noqa: ANN001
    """MetaDMPMSS MASQUE_PS=Y on a result message without document masks its results."""
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])
    name = "07_labm_crp_ferritine_masque.hl7"
    intake(ctx.engine, ctx.archive, [Received((SAMPLES / "hl7v2" / name).read_bytes(), "labm",
                                              "file", file_name=name)])
    drain(ctx)
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(entries)).all()
    assert rows and all(access.is_masked(r) for r in rows)


def test_professional_commands(ctx, monkeypatch, capsys) -> None:  # noqa: ANN001
    from cli import main

    monkeypatch.setenv("DMP_HOME", str(ctx.settings.home))
    monkeypatch.setenv("DMP_DATABASE_URL", ctx.settings.database_url)
    monkeypatch.setenv("DMP_ARCHIVE_URL", ctx.settings.archive_url)
    assert main(["professional", "add", "--rpps", "810001234567", "--family", "Lefèvre",
                 "--given", "Hélène", "--role", "médecin", "--as", "alice"]) == 0
    assert "professional 10001234567 registered" in capsys.readouterr().out
    assert main(["professional", "add", "--rpps", "123", "--family", "X",
                 "--role", "médecin"]) == 1
    assert "11 digits" in capsys.readouterr().err
    assert main(["professional", "list", "--json"]) == 0
    assert '"rpps": "10001234567"' in capsys.readouterr().out
    assert verify(ctx.engine).ok


def test_results_kept_by_a_corrected_report_stay_visible_and_follow_it(ctx) -> None:  # noqa: ANN001, E501
    """A correction supersedes the report; its unchanged results stay current, pointing at
    the first version: every reader still sees them, and masking the report masks them."""
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])
    for name in ("01_labm_nfs.hl7", "12_labm_nfs_correction.hl7"):
        intake(ctx.engine, ctx.archive, [Received((SAMPLES / "hl7v2" / name).read_bytes(),
                                                  "labm", "file", file_name=name)])
        drain(ctx)
    with ctx.engine.connect() as conn:
        current = conn.execute(select(entries).where(entries.c.current.is_(True))).all()
        stale = {r.id for r in conn.execute(select(entries.c.id).where(
            entries.c.current.is_(False)))}
    kept = [r for r in current if r.parent_id in stale]
    assert kept, "the sample no longer exercises this case"
    patient = Principal("patient", str(current[0].patient_id))
    report = next(r.id for r in current if r.type == "lab_report")
    seen = {e["id"] for e in access.read_entries(ctx.engine, patient, patient.subject)["entries"]}
    assert seen == {r.id for r in current}
    assert access.set_mask(ctx.engine, patient, report, True)["entries"] == len(current)
    access.register_professional(ctx.engine, ADMIN, TRUSTED, "Nguyen", "Anne", "infirmière")
    access.grant(ctx.engine, patient, patient.subject, TRUSTED)
    assert _seen(SimpleNamespace(engine=ctx.engine, pid=patient.subject), pro(TRUSTED)) == set()
