"""Dossier access, round 4 (dossiers/access.py, dossiers/audit.py, cli.py, api/dossiers.py):
the patient's opposition to break-glass and to the SAMU regulating doctor (migration 0013),
break-glass by a professional outside the registry, the audit chains' anchor (a deleted
tail), and merged or deceased dossiers on every read path.

The dossier of K1 (Hélène Lefèvre, samples/patients.csv) holds the hCG CR-BIO of
samples/cda/10 (masked from professionals), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, text, update

from dossiers import access
from dossiers.access import AccessDenied, InvalidRequest, Merged, Principal
from dossiers.audit import verify
from dossiers.schema import audit_heads, audit_log, break_glass, entries, patients
from pipelines.audit import Actor
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.conftest import SAMPLES

ADMIN = Principal("admin", "alice")
TREATING = "10000000001"
URGENTISTE = "10003456786"  # registered, emergency physician (Luhn key right)
REGULATEUR = "10101010105"  # registered, SAMU-Centre 15 regulating doctor
OUTSIDER_OK = "10000000009"  # not registered, Luhn key right
OUTSIDER_TYPO = "10000000003"  # not registered, Luhn key wrong
EMERGENCY = "patient inconscient admis aux urgences, INR à contrôler"


def pro(rpps: str, role: str = "médecin") -> Principal:
    return Principal("professional", rpps, role)


@pytest.fixture
def dossier(ctx):  # noqa: ANN001, ANN201
    return _dossier(ctx)


@pytest.fixture
def sqlite_dossier(sqlite_ctx):  # noqa: ANN001, ANN201
    """The same on SQLite alone: for the HTTP API, the console and the CLI over it."""
    return _dossier(sqlite_ctx)


def _dossier(ctx):  # noqa: ANN001, ANN202
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])
    name = "10_crbio_hcg_restreint.xml"
    intake(ctx.engine, ctx.archive, [Received((SAMPLES / "cda" / name).read_bytes(),
                                              "hospital", "file", file_name=name)])
    drain(ctx)
    with ctx.engine.connect() as conn:
        doc = conn.execute(select(entries).where(entries.c.type == "document")).one()
    for rpps, family, role in ((TREATING, "Durand", "médecin"),
                               (URGENTISTE, "Moreau", "médecin urgentiste"),
                               (REGULATEUR, "Bénard", "Médecin régulateur")):
        access.register_professional(ctx.engine, ADMIN, rpps, family, "Claire", role)
    pid = str(doc.patient_id)
    access.set_treating(ctx.engine, ADMIN, pid, TREATING)
    return SimpleNamespace(ctx=ctx, engine=ctx.engine, pid=pid, doc=doc.id,
                           patient=Principal("patient", pid))


def _trail(d) -> list[dict]:  # noqa: ANN001
    return access.read_audit(d.engine, d.patient, d.pid)["events"][::-1]  # oldest first


def _code(call, *args, **kwargs) -> str:  # noqa: ANN001
    with pytest.raises(access.AccessError) as refused:
        call(*args, **kwargs)
    return refused.value.code


def test_rpps_key_and_regulation_mode() -> None:
    assert access.rpps_key_ok(URGENTISTE) and access.rpps_key_ok(OUTSIDER_OK)
    assert not access.rpps_key_ok(OUTSIDER_TYPO) and not access.rpps_key_ok("1000000000")
    assert access.emergency_mode(pro(REGULATEUR, "médecin régulateur")) == "regulation"
    assert access.emergency_mode(pro(REGULATEUR, "MEDECIN REGULATEUR")) == "regulation"
    assert access.emergency_mode(pro(URGENTISTE, "médecin urgentiste")) == "emergency"
    opposed = SimpleNamespace(id=7, treating_rpps=None, dmp_status="ACTIF",
                              consultation_consent="IC", break_glass_opposed=True,
                              regulation_opposed=None)
    with pytest.raises(AccessDenied) as refused:
        access.decide(pro(URGENTISTE), opposed, authorised=False, break_glass_open=True)
    assert refused.value.code == "BREAK_GLASS_OPPOSED"
    assert access.decide(pro(REGULATEUR, "médecin régulateur"), opposed, authorised=False,
                         break_glass_open=True) == "break_glass"
    # an authorised professional is not reading through break-glass: the opposition is moot
    assert access.decide(pro(URGENTISTE), opposed, authorised=True,
                         break_glass_open=True) == "authorised"


@given(st.text("0123456789", min_size=10, max_size=10), st.integers(0, 10),
       st.integers(1, 9))
def test_rpps_key_catches_every_single_digit_error(body: str, where: int, shift: int) -> None:
    """Exactly one check digit makes a valid RPPS, and a typo in any one digit of it is
    refused (what the key is for: a number typed into a token by hand)."""
    valid = [body + k for k in "0123456789" if access.rpps_key_ok(body + k)]
    assert len(valid) == 1
    digits = list(valid[0])
    digits[where] = str((int(digits[where]) + shift) % 10)
    assert not access.rpps_key_ok("".join(digits))


def test_opposition_refuses_break_glass_and_reads_through_one_already_open(dossier) -> None:  # noqa: ANN001, E501
    """A break-glass opened before the patient opposes no longer reads; a new one is
    refused BREAK_GLASS_OPPOSED; the regulating doctor, whose access the patient did not
    oppose, still opens one (mode 'regulation') until an admin records that opposition
    too. Every refusal and every change is in the patient's trail."""
    d = dossier
    urgentiste = pro(URGENTISTE, "médecin urgentiste")
    regulateur = pro(REGULATEUR, "Médecin régulateur")
    opened = access.open_break_glass(d.engine, urgentiste, d.pid, EMERGENCY)
    assert (opened["mode"], opened["registered"]) == ("emergency", True)
    assert access.read_dossier(d.engine, urgentiste, d.pid)["access"]["break_glass"]
    done = access.set_emergency_opposition(d.engine, d.patient, d.pid, break_glass=True)
    assert done == {"patient_id": int(d.pid), "break_glass_opposed": True,
                    "regulation_opposed": False, "changed": ["break_glass_opposed"]}
    assert _code(access.read_entries, d.engine, urgentiste, d.pid) == "BREAK_GLASS_OPPOSED"
    assert _code(access.open_break_glass, d.engine, urgentiste, d.pid,
                 EMERGENCY) == "BREAK_GLASS_OPPOSED"
    assert _code(access.read_document, d.engine, urgentiste, d.doc) == "NOT_FOUND"
    assert access.open_break_glass(d.engine, regulateur, d.pid, EMERGENCY)["mode"] \
        == "regulation"
    assert access.read_dossier(d.engine, regulateur, d.pid)["access"]["basis"] \
        == "break_glass"
    with pytest.raises(InvalidRequest):  # an admin says why
        access.set_emergency_opposition(d.engine, ADMIN, d.pid, regulation=True)
    access.set_emergency_opposition(d.engine, ADMIN, d.pid, regulation=True,
                                    reason="courrier de la patiente du 20/11")
    assert _code(access.read_dossier, d.engine, regulateur, d.pid) == "REGULATION_OPPOSED"
    # the treating doctor reads as before: oppositions are about emergency access only
    assert access.read_dossier(d.engine, pro(TREATING), d.pid)["access"]["basis"] == "treating"
    shown = access.read_dossier(d.engine, d.patient, d.pid)["patient"]
    assert (shown["break_glass_opposed"], shown["regulation_opposed"]) == (True, True)
    with d.engine.connect() as conn:  # the refused opening opened nothing
        assert conn.execute(select(func.count()).select_from(break_glass).where(
            break_glass.c.rpps == URGENTISTE)).scalar_one() == 1
    trail = _trail(d)
    assert [(e["actor"], e["details"]["code"], e["details"]["action"]) for e in trail
            if e["action"] == "access.denied"] == [
        (urgentiste.actor, "BREAK_GLASS_OPPOSED", "entries.read"),
        (urgentiste.actor, "BREAK_GLASS_OPPOSED", "break_glass.open"),
        (urgentiste.actor, "BREAK_GLASS_OPPOSED", "document.read"),
        (regulateur.actor, "REGULATION_OPPOSED", "dossier.read")]
    changes = [e for e in trail if e["action"] == "break_glass.opposition"]
    assert [(e["actor"], e["reason"], e["details"]["changed"]) for e in changes] == [
        (d.patient.actor, None, ["break_glass_opposed"]),
        ("admin:alice", "courrier de la patiente du 20/11", ["regulation_opposed"])]
    # the patient lifts it: break-glass opens again
    access.set_emergency_opposition(d.engine, d.patient, d.pid, break_glass=False)
    assert access.open_break_glass(d.engine, urgentiste, d.pid, EMERGENCY)["break_glass"]
    assert verify(d.engine).ok


def test_break_glass_by_a_professional_outside_the_registry(dossier) -> None:  # noqa: ANN001
    """Allowed when the RPPS number's Luhn key is right, and flagged 'registered: false' in
    the patient's trail; a number with a wrong key is refused RPPS_KEY_INVALID, traced."""
    d = dossier
    assert _code(access.open_break_glass, d.engine, pro(OUTSIDER_TYPO), d.pid,
                 EMERGENCY) == "RPPS_KEY_INVALID"
    opened = access.open_break_glass(d.engine, pro(OUTSIDER_OK), d.pid, EMERGENCY)
    assert (opened["mode"], opened["registered"]) == ("emergency", False)
    assert access.read_dossier(d.engine, pro(OUTSIDER_OK), d.pid)["access"]["break_glass"]
    trail = _trail(d)
    glass = [e for e in trail if e["action"] == "break_glass.open"]
    assert [(e["actor"], e["actor_name"], e["details"]["registered"]) for e in glass] == [
        (f"professional:{OUTSIDER_OK}", None, False)]
    assert [e["details"]["code"] for e in trail if e["action"] == "access.denied"] == [
        "RPPS_KEY_INVALID"]


def test_a_deleted_tail_of_the_audit_trail_is_detected(dossier, capsys, monkeypatch) -> None:  # noqa: ANN001, E501
    """Deleting the last rows of a chain left a chain that verified intact; the anchor
    (audit_heads, written with the rows) shows it, as does a chain deleted whole and rows
    written around ``append``. `audit verify` exits 1 and names the chain."""
    from cli import main
    from dossiers import audit

    d = dossier
    for _ in range(3):
        access.read_dossier(d.engine, pro(TREATING), d.pid)
    intact = verify(d.engine)
    assert intact.ok and intact.chains == 2
    monkeypatch.setattr(audit, "COMPARE_EVERY", 1)  # every chain compared as it ends
    assert verify(d.engine, batch=2).ok
    assert verify(d.engine, batch=2).heads_digest() == intact.heads_digest()
    chain = int(d.pid)
    with d.engine.begin() as conn:
        last = conn.execute(select(func.max(audit_log.c.seq)).where(
            audit_log.c.chain == chain)).scalar_one()
        assert conn.execute(select(audit_heads.c.seq).where(
            audit_heads.c.chain == chain)).scalar_one() == last
        conn.execute(delete(audit_log).where(audit_log.c.chain == chain,
                                             audit_log.c.seq > last - 2))
    broken = verify(d.engine, batch=2)
    assert [(b.chain, b.seq) for b in broken.breaks] == [(chain, last - 2)]
    assert broken.heads_digest() != intact.heads_digest()
    assert broken.breaks[0].problem.startswith("missing tail")
    monkeypatch.setenv("DMP_HOME", str(d.ctx.settings.home))
    monkeypatch.setenv("DMP_DATABASE_URL", d.ctx.settings.database_url)
    assert main(["audit", "verify", "--patient", d.pid, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert [b["problem"][:12] for b in out["breaks"]] == ["missing tail"]
    with d.engine.begin() as conn:  # the whole chain gone
        conn.execute(delete(audit_log).where(audit_log.c.chain == chain))
    assert [b.problem[:12] for b in verify(d.engine, chain=chain).breaks] == ["missing tail"]
    with d.engine.begin() as conn:  # the anchor put back by hand; a row written around it
        conn.execute(delete(audit_heads).where(audit_heads.c.chain == chain))
        conn.execute(text("INSERT INTO audit_log (at, actor, action, patient_id, chain, seq,"
                          " prev_hash, hash) SELECT at, actor, action, patient_id, chain,"
                          " seq + 1000, prev_hash, hash FROM audit_log WHERE chain = 0"
                          " AND seq = 1"))
    assert any(b.problem.startswith("unanchored rows") for b in verify(d.engine).breaks)
    assert main(["audit", "verify"]) == 1
    assert "TAMPERED" in capsys.readouterr().out


def test_merged_dossier_refuses_break_glass_and_admin_changes(dossier) -> None:  # noqa: ANN001
    """A tombstone (a dossier merged into another) got a break-glass of its own, which read
    nothing (every read answers DOSSIER_MERGED) and left the survivor closed; an admin could
    name its médecin traitant and declare a representative on it. All DOSSIER_MERGED now,
    pointing at the survivor."""
    from pipelines.dossier_merge import merge_dossiers

    d = dossier
    twin = create_dossiers(d.engine, [DossierInput(family="LEFEVRE", given="Hélène",
                                                   birth_date="1968-03-14", sex="F")])[0]
    merge_dossiers(d.engine, d.pid, str(twin), Actor("alice"), "doublon créé aux urgences")
    for call, args in ((access.open_break_glass, (pro(URGENTISTE), str(twin), EMERGENCY)),
                       (access.set_treating, (ADMIN, str(twin), TREATING)),
                       (access.set_emergency_opposition, (ADMIN, str(twin)))):
        kwargs = {"break_glass": True, "reason": "demande écrite"} \
            if call is access.set_emergency_opposition else {}
        with pytest.raises(Merged) as refused:
            call(d.engine, *args, **kwargs)
        assert refused.value.code == "DOSSIER_MERGED" and d.pid in refused.value.message
    with pytest.raises(Merged):
        access.declare_representative(d.engine, ADMIN, str(twin), subject="rep-paul",
                                      family="Lefèvre", given="Paul", quality="tuteur")
    with d.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(break_glass)).scalar_one() == 0
    assert access.list_representatives(d.engine, ADMIN, str(twin))["representatives"] == []


def test_a_merge_does_not_lift_an_opposition_to_break_glass(dossier) -> None:  # noqa: ANN001
    """A dossier whose patient opposed break-glass merged into one without the opposition:
    its entries were open to the break-glass the patient had refused. The merge is refused
    MERGE_CONSENT_DIFFERS, as for the other choices, until the survivor carries it."""
    from pipelines.dossier_merge import MergeRefusedError, merge_dossiers

    d = dossier
    twin = str(create_dossiers(d.engine, [DossierInput(family="LEFEVRE", given="Hélène",
                                                       birth_date="1968-03-14", sex="F")])[0])
    access.set_emergency_opposition(d.engine, ADMIN, twin, regulation=True,
                                    reason="demande écrite de la patiente")
    with pytest.raises(MergeRefusedError) as refused:
        merge_dossiers(d.engine, d.pid, twin, Actor("alice"), "doublon créé aux urgences")
    assert refused.value.code == "MERGE_CONSENT_DIFFERS"
    assert "SAMU regulating doctor" in str(refused.value)
    access.set_emergency_opposition(d.engine, d.patient, d.pid, regulation=True)
    merge_dossiers(d.engine, d.pid, twin, Actor("alice"), "doublon créé aux urgences")
    regulateur = pro(REGULATEUR, "médecin régulateur")
    assert _code(access.open_break_glass, d.engine, regulateur, d.pid,
                 EMERGENCY) == "REGULATION_OPPOSED"


def test_a_deceased_patient_gets_the_same_code_on_every_read(dossier) -> None:  # noqa: ANN001
    """After the death, the patient's own document download answered NOT_FOUND (a document
    that does not exist) where every other read answers PATIENT_DECEASED."""
    d = dossier
    assert access.read_document(d.engine, d.patient, d.doc)["entry_id"] == d.doc
    with d.engine.begin() as conn:
        conn.execute(update(patients).where(patients.c.id == int(d.pid))
                     .values(deceased=True, deceased_at="2026-11-20"))
    codes = {_code(call, d.engine, d.patient, ref) for call, ref in (
        (access.read_dossier, d.pid), (access.read_entries, d.pid),
        (access.export_fhir, d.pid), (access.read_document, d.doc))}
    assert codes == {"PATIENT_DECEASED"}
    # another patient probing the id still gets a document that does not exist
    other = Principal("patient", str(int(d.pid) + 1))
    assert _code(access.read_document, d.engine, other, d.doc) == "NOT_FOUND"
    assert access.read_document(d.engine, pro(TREATING), d.doc)["entry_id"] == d.doc


def test_http_and_cli_set_the_opposition(sqlite_dossier, capsys, monkeypatch) -> None:  # noqa: ANN001
    """The patient over the API, an admin over the API and the CLI; the refusal's code in
    the API's answer."""
    import dataclasses

    from api.app import create_app
    from api.tokens import mint
    from cli import main

    d = sqlite_dossier
    d.ctx.settings = dataclasses.replace(d.ctx.settings, api_secret="s" * 64)
    client = TestClient(create_app(d.ctx))

    def auth(scope: str, **claims: object) -> dict:
        return {"Authorization": "Bearer " + mint(d.ctx.settings, scope, **claims)}

    url = f"/dossiers/{d.pid}/break-glass-opposition"
    r = client.put(url, headers=auth("patient", patient=d.pid), json={"break_glass": True})
    assert r.status_code == 200 and r.json()["break_glass_opposed"] is True, r.text
    r = client.put(url, headers=auth("professional", rpps=URGENTISTE, role="médecin"),
                   json={"break_glass": False})
    assert r.status_code == 403
    r = client.post(f"/dossiers/{d.pid}/break-glass", json={"reason": EMERGENCY},
                    headers=auth("professional", rpps=URGENTISTE, role="médecin urgentiste"))
    assert r.status_code == 403 and "BREAK_GLASS_OPPOSED" in r.text
    r = client.put(url, headers=auth("admin", subject="alice"), json={"regulation": True})
    assert r.status_code == 400 and "REASON_REQUIRED" in r.text
    monkeypatch.setenv("DMP_HOME", str(d.ctx.settings.home))
    monkeypatch.setenv("DMP_DATABASE_URL", d.ctx.settings.database_url)
    assert main(["dossier", "emergency-opposition", d.pid, "--break-glass", "no",
                 "--regulation", "yes", "--reason", "formulaire signé à l'accueil",
                 "--as", "bob"]) == 0
    assert "changed: break_glass_opposed, regulation_opposed" in capsys.readouterr().out
    assert main(["dossier", "show", d.pid]) == 0  # what the operator just recorded
    assert "the patient opposes emergency access: SAMU regulation" in capsys.readouterr().out
    assert main(["dossier", "emergency-opposition", "999999", "--break-glass", "no",
                 "--reason", "formulaire"]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err
    with d.engine.connect() as conn:
        row = conn.execute(select(patients.c.break_glass_opposed, patients.c.regulation_opposed)
                           .where(patients.c.id == int(d.pid))).one()
    assert (row.break_glass_opposed, row.regulation_opposed) == (False, True)


def test_console_does_not_offer_break_glass_the_patient_opposed(sqlite_dossier) -> None:  # noqa: ANN001
    """The console's refusal page offered the break-glass form on every 403: to a
    professional whose break-glass the patient opposed since it was opened (refused
    BREAK_GLASS_OPPOSED) it offered what would be refused again. It says the patient refused
    the emergency access now, in the reader's language."""
    import dataclasses

    from api.app import create_app
    from api.console.session import SESSION_COOKIE
    from api.tokens import mint

    d = sqlite_dossier
    d.ctx.settings = dataclasses.replace(d.ctx.settings, api_secret="s" * 64)
    token = mint(d.ctx.settings, "professional", rpps=URGENTISTE, role="médecin urgentiste")
    client = TestClient(create_app(d.ctx), cookies={SESSION_COOKIE: token})
    denied = client.get(f"/console/dossiers/{d.pid}?lang=fr")
    assert denied.status_code == 403 and "break-glass-form" in denied.text
    access.open_break_glass(d.engine, pro(URGENTISTE, "médecin urgentiste"), d.pid, EMERGENCY)
    assert client.get(f"/console/dossiers/{d.pid}").status_code == 200
    access.set_emergency_opposition(d.engine, d.patient, d.pid, break_glass=True)
    access.set_emergency_opposition(d.engine, d.patient, d.pid, break_glass=True)  # again
    opposed = client.get(f"/console/dossiers/{d.pid}?lang=fr")
    assert opposed.status_code == 403 and "BREAK_GLASS_OPPOSED" in opposed.text
    assert "break-glass-form" not in opposed.text
    assert "Le patient s&#39;oppose à l&#39;accès en mode « bris de glace »" in opposed.text
    trail = _trail(d)
    assert [e["details"]["changed"] for e in trail
            if e["action"] == "break_glass.opposition"] == [["break_glass_opposed"], []]
    mine = TestClient(create_app(d.ctx), cookies={SESSION_COOKIE: mint(
        d.ctx.settings, "patient", patient=d.pid)}).get(f"/console/dossiers/{d.pid}/audit?lang=fr")
    assert mine.status_code == 200
    assert mine.text.count("a enregistré l&#39;opposition du patient aux accès d&#39;urgence") == 2
