"""Dossier access, round 3 (dossiers/access.py, dossiers/versions.py, dossiers/deposit.py):
what the versions of a CDA document do to what each reader sees.

A CDA document's versions have document ids (keys) of their own, linked by setId, RPLC and
``superseded_by``; the results a new version confirms unchanged stay attached to the version
that brought them. Samples: the SYNLAB renal panel (samples/cda/02 v1, 03 v2 RPLC v1:
créatinine, DFG CKD-EPI, urée, ionogramme), filed through the pipeline, on SQLite and
PostgreSQL."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import pytest
from sqlalchemy import select, update

from dossiers import access
from dossiers.access import Principal
from dossiers.audit import verify
from dossiers.schema import audit_log, entries, imports
from pipelines.admin import read_raw
from pipelines.audit import Actor
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.conftest import SAMPLES

ADMIN = Principal("admin", "alice")
TREATING, NURSE = "10000000001", "10000000002"
V1 = "02_crbio_synlab_bilan_renal_v1.xml"
V2 = "03_crbio_synlab_bilan_renal_v2_rplc.xml"


def _v3_naming_v2() -> bytes:
    """Version 3 of the panel, RPLC naming version 2, which the dossier never received (the
    sender's v2 went to another system, or is still quarantined)."""
    data = (SAMPLES / "cda" / V2).read_text(encoding="utf-8")
    data = (data.replace('extension="SB25061039530-2"', 'extension="SB25061039530-3"')
                .replace('<versionNumber value="2"/>', '<versionNumber value="3"/>')
                .replace('<parentDocument>\n      <id root="2.999.250.1.2.10" '
                         'extension="SB25061039530-1"/>',
                         '<parentDocument>\n      <id root="2.999.250.1.2.10" '
                         'extension="SB25061039530-2"/>'))
    assert "SB25061039530-1" not in data
    return data.encode("utf-8")


def _v3_without_uree() -> bytes:
    """Version 3, RPLC naming version 2, which no longer states the urée (LOINC 22664-7)
    that v1 stated and v2 confirmed unchanged."""
    data = (SAMPLES / "cda" / V2).read_text(encoding="utf-8")
    start = data.index("<component>", data.rindex("<component>", 0,
                                                  data.index('code="22664-7"')) - 1)
    end = data.index("</component>", data.index('code="22664-7"')) + len("</component>")
    data = data[:start] + data[end:]
    data = (data.replace('extension="SB25061039530-2"', 'extension="SB25061039530-3"')
                .replace('<versionNumber value="2"/>', '<versionNumber value="3"/>')
                .replace('extension="SB25061039530-1"', 'extension="SB25061039530-2"'))
    assert "22664-7" not in data and "SB25061039530-2" in data
    return data.encode("utf-8")


def _file(ctx, data: bytes, name: str) -> None:  # noqa: ANN001
    intake(ctx.engine, ctx.archive, [Received(data, "synlab", "file", file_name=name)])
    drain(ctx)


@pytest.fixture
def panel(ctx):  # noqa: ANN001, ANN201
    """The patient of the renal panel with v1 filed, a médecin traitant and an authorised
    nurse."""
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])
    _file(ctx, (SAMPLES / "cda" / V1).read_bytes(), V1)
    with ctx.engine.connect() as conn:
        doc = conn.execute(select(entries).where(entries.c.type == "document")).one()
    for rpps, family, role in ((TREATING, "Durand", "médecin"),
                               (NURSE, "Nguyen", "infirmière")):
        access.register_professional(ctx.engine, ADMIN, rpps, family, "Anne", role)
    patient = Principal("patient", str(doc.patient_id))
    access.set_treating(ctx.engine, ADMIN, patient.subject, TREATING)
    access.grant(ctx.engine, patient, patient.subject, NURSE)
    return SimpleNamespace(ctx=ctx, engine=ctx.engine, patient=patient, pid=patient.subject,
                           v1=doc.id)


def _current(engine) -> list:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(select(entries).where(entries.c.current.is_(True))).all()


def _seen(p, who: Principal) -> set[int]:  # noqa: ANN001
    return {e["id"] for e in access.read_entries(p.engine, who, p.pid)["entries"]}


def pro(rpps: str) -> Principal:
    return Principal("professional", rpps, "médecin")


def test_results_a_new_cda_version_confirms_stay_visible_and_follow_it(panel) -> None:  # noqa: ANN001, E501
    """v2 corrects one result of v1 and confirms the others, which keep pointing at v1. They
    were read as following v1, no longer current: gone from every read, the patient's
    included (2 of 10 entries shown). They follow v2 now, and masking v2 masks them."""
    p = panel
    _file(p.ctx, (SAMPLES / "cda" / V2).read_bytes(), V2)
    current = _current(p.engine)
    kept = [r for r in current if r.parent_id == p.v1]
    assert kept, "the samples no longer exercise a result confirmed by a new version"
    everything = {r.id for r in current}
    assert _seen(p, p.patient) == everything
    assert _seen(p, pro(NURSE)) == everything
    assert access.read_dossier(p.engine, p.patient, p.pid)["counts"]["lab_result"] \
        == len(everything) - 1
    v2 = next(r.id for r in current if r.type == "document")
    bundle = access.export_fhir(p.engine, p.patient, p.pid)
    observations = [e["resource"] for e in bundle["entry"]
                    if e["resource"]["resourceType"] == "Observation"]
    assert len(observations) == len(everything) - 1
    assert all(o.get("derivedFrom") for o in observations)  # linked to v2, not to nothing
    assert access.set_mask(p.engine, p.patient, v2, True)["entries"] == len(everything)
    assert _seen(p, pro(NURSE)) == set()
    assert _seen(p, pro(TREATING)) == everything
    assert verify(p.engine).ok


def test_a_result_dropped_by_a_third_version_is_withdrawn(panel) -> None:  # noqa: ANN001
    """v1 states the urée, v2 confirms it (it stays attached to v1), v3 no longer states
    it. What a replaced document no longer says is withdrawn with it; the urée, hanging from
    v1, was not among v3's predecessor's results and stayed current."""
    p = panel
    _file(p.ctx, (SAMPLES / "cda" / V2).read_bytes(), V2)
    _file(p.ctx, _v3_without_uree(), "v3.xml")
    with p.engine.connect() as conn:
        uree = conn.execute(select(entries).where(entries.c.code == "22664-7",
                                                  entries.c.current.is_(True))).one()
    assert uree.status == "withdrawn"
    seen = access.read_entries(p.engine, p.patient, p.pid)["entries"]
    assert "22664-7" not in {e["code"] for e in seen} and len(seen) == 9


def test_a_version_naming_one_never_received_keeps_the_patients_mask(panel) -> None:  # noqa: ANN001, E501
    """The patient masked v1; v3 arrives naming v2, never received. v3 replaced v1 but was
    filed without the patient's mask: the document shown again to the nurse, and the
    results v3 confirms hidden from everyone, the patient included."""
    p = panel
    access.set_mask(p.engine, p.patient, p.v1, True)
    _file(p.ctx, _v3_naming_v2(), "v3.xml")
    current = _current(p.engine)
    v3 = next(r for r in current if r.type == "document")
    assert v3.id != p.v1 and v3.mask_override is True
    assert _seen(p, pro(NURSE)) == set()
    assert _seen(p, p.patient) == {r.id for r in current}
    assert _seen(p, pro(TREATING)) == {r.id for r in current}


def test_a_version_made_invisible_to_representatives_hides_its_earlier_ones(panel) -> None:  # noqa: ANN001, E501
    """v2 flagged INVISIBLE_REP_LEGAUX (a MODIF_CONF_CODE update): the representative's trail
    leaves out every version's events. By key alone v1 (its own key) and the results it
    brought stayed outside the secret."""
    p = panel
    _file(p.ctx, (SAMPLES / "cda" / V2).read_bytes(), V2)
    current = _current(p.engine)
    v2 = next(r.id for r in current if r.type == "document")
    with p.engine.begin() as conn:
        conn.execute(update(entries).where(entries.c.id == v2)
                     .values(masking={"INVISIBLE_REP_LEGAUX": True}))
        hidden = access.hidden_entries(conn, int(p.pid),
                                       access.hidden_flags("representative"))
    assert p.v1 in hidden and {r.id for r in current} <= hidden


def test_the_file_of_a_report_holding_a_result_masked_from_the_reader_is_withheld(panel) -> None:  # noqa: ANN001, E501
    """The patient masks one result (the créatinine, LOINC 14682-9) of the renal panel, not
    the report. The nurse no longer sees the result, but downloaded the report's original
    CDA, which states it: the file is withheld from her now (no file, as for a document
    without one), and still given to the patient and the médecin traitant."""
    p = panel
    with p.engine.connect() as conn:
        creat = conn.execute(select(entries.c.id).where(
            entries.c.code == "14682-9", entries.c.current.is_(True))).scalar_one()
    access.set_mask(p.engine, p.patient, creat, True)
    nurse = pro(NURSE)
    shown = {e["id"]: e for e in access.read_entries(p.engine, nurse, p.pid)["entries"]}
    assert creat not in shown and shown[p.v1]["has_file"] is False
    with pytest.raises(access.NotFound) as refused:
        access.read_document(p.engine, nurse, p.v1)
    assert refused.value.code == "NO_FILE" and "masked" not in refused.value.message
    for who in (p.patient, pro(TREATING)):
        shown = {e["id"]: e for e in access.read_entries(p.engine, who, p.pid)["entries"]}
        assert creat in shown and shown[p.v1]["has_file"] is True
        assert access.read_document(p.engine, who, p.v1)["sha256"]
    access.set_mask(p.engine, p.patient, creat, False)
    assert access.read_document(p.engine, nurse, p.v1)["sha256"]


def test_reading_a_batch_file_raw_is_in_the_trail_of_every_patient_it_holds(
        panel, monkeypatch, capsys) -> None:  # noqa: ANN001
    """`imports show --raw` of an HL7v2 batch file (samples/hl7v2/15: three ORU^R01 of
    three patients) and of a duplicate (a copy of samples/hl7v2/02): the file-level row and
    the duplicate's row name no patient, so the reads were written in the trail of no
    dossier, and none of the patients whose results the admin read could see it."""
    from cli import main

    p = panel
    for name in ("15_chu_batch.hl7", "02_labm_lipides_glycemie.hl7",
                 "13_labm_lipides_glycemie_copie.hl7"):
        intake(p.engine, p.ctx.archive, [Received((SAMPLES / "hl7v2" / name).read_bytes(),
                                                  "labm", "file", file_name=name)])
        drain(p.ctx)
    with p.engine.connect() as conn:
        rows = conn.execute(select(imports).where(imports.c.source == "labm")
                            .order_by(imports.c.id)).all()
    batch = next(r for r in rows if r.status == "split")
    parts = {r.patient_id for r in rows if r.batch_of == batch.id}
    copy = next(r for r in rows if r.status == "duplicate")
    original = next(r for r in rows if r.id == copy.duplicate_of)
    assert len(parts) == 3 and None not in parts and copy.patient_id is None
    for var, value in (("DMP_HOME", str(p.ctx.settings.home)),
                       ("DMP_DATABASE_URL", p.ctx.settings.database_url),
                       ("DMP_ARCHIVE_URL", p.ctx.settings.archive_url)):
        monkeypatch.setenv(var, value)
    for row in (batch, copy):
        assert main(["imports", "show", str(row.id), "--raw", "--as", "alice",
                     "--reason", "ticket 4521"]) == 0
    capsys.readouterr()
    with p.engine.connect() as conn:
        read = {(r.patient_id, r.import_id) for r in conn.execute(
            select(audit_log).where(audit_log.c.action == "import.raw"))}
    assert {(pid, batch.id) for pid in parts} | {(original.patient_id, copy.id)} == read
    first = min(parts)
    trail = access.read_audit(p.engine, Principal("patient", str(first)), str(first))
    assert [e["reason"] for e in trail["events"] if e["action"] == "import.raw"] \
        == ["ticket 4521"] * (1 + (first == original.patient_id))
    assert verify(p.engine).ok


def test_an_entry_of_a_dossier_not_open_to_the_reader_is_not_found_like_a_hidden_one(
        panel) -> None:  # noqa: ANN001
    """The nurse reads the panel's dossier, where the patient masked the créatinine. Ids were
    an oracle: an entry of another dossier answered 403, a hidden one 404, so a 404 below the
    highest id told her what the dossier keeps from her. All three answer alike now, and the
    attempt on the other dossier is still in that patient's trail."""
    p = panel
    _file(p.ctx, (SAMPLES / "cda" / "01_crbio_labm_lipides_glycemie.xml").read_bytes(), "01")
    with p.engine.connect() as conn:
        creat = conn.execute(select(entries.c.id).where(
            entries.c.code == "14682-9", entries.c.current.is_(True))).scalar_one()
        other = conn.execute(select(entries).where(
            entries.c.type == "document", entries.c.patient_id != int(p.pid))).one()
        highest = conn.execute(select(entries.c.id).order_by(entries.c.id.desc())).first()[0]
    access.set_mask(p.engine, p.patient, creat, True)
    nurse = pro(NURSE)
    answers = []
    for entry_id in (creat, other.id, highest + 1000):
        for call in (lambda i: access.read_document(p.engine, nurse, i),
                     lambda i: access.withdraw(p.engine, nurse, i, "erreur de dossier")):
            with pytest.raises(access.AccessError) as refused:
                call(entry_id)
            answers.append((refused.value.status, refused.value.code,
                            refused.value.message.replace(str(entry_id), "N")))
    assert set(answers) == {(404, "NOT_FOUND", "no document N")}
    owner = Principal("patient", str(other.patient_id))
    trail = access.read_audit(p.engine, owner, owner.subject)["events"][::-1]  # oldest 1st
    assert [(e["actor"], e["details"]["action"]) for e in trail
            if e["action"] == "access.denied"] == [
        (f"professional:{NURSE}", "document.read"),
        (f"professional:{NURSE}", "document.withdraw")]


def test_a_raw_read_of_a_copy_of_a_message_invisible_to_the_patient_stays_out_of_their_trail(
        panel) -> None:  # noqa: ANN001
    """A SYNLAB ORU sent with INVISIBLE_PATIENT=Y (a blood count awaiting the announcement
    consultation), then again (a duplicate). Both raw reads now reach Hélène's dossier; the
    original's was left out of her trail (the import brought what she may not see), the
    duplicate's, the same bytes, told her of it."""
    p = panel
    data = (SAMPLES / "hl7v2" / "09_synlab_nfs_crp_groupe.hl7").read_bytes().replace(
        "Document Non Visible par le patient^MetaDMPMSS||N".encode("latin-1"),
        "Document Non Visible par le patient^MetaDMPMSS||Y".encode("latin-1"))
    assert b"patient^MetaDMPMSS||Y" in data
    for name in ("nfs.hl7", "nfs-renvoi.hl7"):
        intake(p.engine, p.ctx.archive, [Received(data, "synlab", "file", file_name=name)])
        drain(p.ctx)
    with p.engine.connect() as conn:
        rows = conn.execute(select(imports).where(imports.c.source == "synlab",
                                                  imports.c.file_name.like("nfs%"))
                            .order_by(imports.c.id)).all()
    assert [r.status for r in rows] == ["deposited", "duplicate"]
    assert rows[1].duplicate_of == rows[0].id
    for row in rows:
        read_raw(p.engine, p.ctx.archive, row.id, Actor("alice"), reason="ticket 4522")
    hélène = Principal("patient", str(rows[0].patient_id))
    trail = access.read_audit(p.engine, hélène, hélène.subject)["events"]
    assert [e for e in trail if e["action"] == "import.raw"] == []
    with p.engine.connect() as conn:
        assert conn.execute(select(audit_log.c.import_id).where(
            audit_log.c.action == "import.raw",
            audit_log.c.patient_id == rows[0].patient_id)).scalars().all() \
            == [rows[0].id, rows[1].id]
