"""Operators' round 6: the audit trail as a patient reads it, and the operators' reads and
actions it missed. The CLI in-process (its Prefect flows as plain functions), the API app
in-process; SQLite and PostgreSQL where the store is touched.

What the round found: the patient's trail came oldest first while the API said newest first
(a long trail never showed its recent reads; the console reversed the oldest page);
``imports show`` (CLI, API, console) listed the entries an import filed in a dossier without
a trace in the patient's trail; ``token mint`` handed out keys to dossiers unaudited; reruns
and edits of an import naming a patient were in no dossier's trail.
"""

from __future__ import annotations

import jwt
from sqlalchemy import select, update

from dossiers import access
from dossiers.access import Principal
from dossiers.audit import NO_DOSSIER, verify
from dossiers.schema import audit_log, imports, patients
from pipelines.admin import edit
from pipelines.audit import Actor
from pipelines.report import show_import
from tests.test_api import api  # noqa: F401 (a fixture)
from tests.test_operators_round import no_prefect, run, store  # noqa: F401 (fixtures)
from tests.test_pipeline import NIR_2, make_patient


def _rows(ctx, action: str) -> list:  # noqa: ANN001
    with ctx.engine.connect() as conn:
        return conn.execute(select(audit_log).where(audit_log.c.action == action)
                            .order_by(audit_log.c.id)).all()


# -- the patient's trail: newest first, everywhere -------------------------------------------
def test_the_patients_trail_is_newest_first_a_page_at_a_time(store) -> None:  # noqa: ANN001, F811
    """Hélène's dossier: two deposits, then her own reads. The first page is her latest
    events; the next page goes on backwards, with nothing missed or repeated."""
    ctx, _ = store
    me = Principal("patient", "1")
    for _ in range(3):
        access.read_dossier(ctx.engine, me, "1")
    first = access.read_audit(ctx.engine, me, "1", limit=2)["events"]
    with ctx.engine.connect() as conn:
        last = conn.execute(select(audit_log.c.seq).where(audit_log.c.chain == 1)
                            .order_by(audit_log.c.seq.desc())).scalars().first()
    # the audit.read being written is not in its own answer: the latest before it first
    assert [e["seq"] for e in first] == [last - 1, last - 2]
    assert [e["action"] for e in first] == ["dossier.read", "dossier.read"]
    everything = access.read_audit(ctx.engine, me, "1", limit=1000)["events"]
    seqs = [e["seq"] for e in everything]
    assert seqs == sorted(seqs, reverse=True) and seqs[-1] == 1
    assert everything[-1]["action"] == "dossier.deposit"
    # each read adds a row on top, which shifts an offset (a row twice per page): pages
    # follow ``next_before`` instead, down to the first event, each once
    paged, before = [], None
    while True:
        page = access.read_audit(ctx.engine, me, "1", limit=3, before=before)
        paged += [e["seq"] for e in page["events"]]
        if (before := page["next_before"]) is None:
            break
    assert paged == list(range(paged[0], 0, -1))


def test_the_audit_endpoint_says_and_does_newest_first(api) -> None:  # noqa: ANN001, F811
    pid = 1
    with api.client("patient", patient=str(pid)) as c:
        for _ in range(2):
            assert c.get(f"/dossiers/{pid}").status_code == 200
        events = c.get(f"/dossiers/{pid}/audit", params={"limit": 3}).json()["events"]
        seqs = [e["seq"] for e in events]
        assert seqs == sorted(seqs, reverse=True) and events[0]["action"] == "dossier.read"
        r = c.get(f"/dossiers/{pid}/audit", params={"limit": 3, "before": seqs[-1]}).json()
        assert [e["seq"] for e in r["events"]] == [seqs[-1] - 1, seqs[-1] - 2,
                                                   seqs[-1] - 3][:len(r["events"])]
        assert c.get(f"/dossiers/{pid}/audit", params={"before": 0}).status_code == 422
        doc = c.get("/openapi.json").json()["paths"]["/dossiers/{patient}/audit"]["get"]
    assert "newest first" in doc["summary"] and "newest first" in doc["description"]


# -- an operator's look at an import is a read of the patient's dossier -----------------------
def test_imports_show_is_in_the_trail_of_the_patient_it_filed_for(store, capsys) -> None:  # noqa: ANN001, F811
    ctx, (dep, _, quar, fail) = store
    code, out, _ = run(capsys, "imports", "show", str(dep), "--as", "alice",
                       "--reason", "ticket 6101: résultat contesté")
    assert code == 0 and "Entries" in out
    (shown,) = _rows(ctx, "import.show")
    assert (shown.actor, shown.import_id, shown.patient_id, shown.chain, shown.reason) == (
        "alice", dep, 1, 1, "ticket 6101: résultat contesté")
    assert "import.show" in {a["action"] for a in show_import(ctx.engine, dep)["audit"]}
    # the patient sees it in her trail
    trail = access.read_audit(ctx.engine, Principal("patient", "1"), "1")["events"]
    assert [(e["actor"], e["action"]) for e in trail if e["action"] == "import.show"] == [
        ("alice", "import.show")]
    # a quarantined or failed message names no dossier: nothing of one shown, no row
    for other in (quar, fail):
        assert run(capsys, "imports", "show", str(other), "--json")[0] == 0
    assert len(_rows(ctx, "import.show")) == 1
    code, _, err = run(capsys, "imports", "show", "987654")
    assert code == 1 and "no import 987654" in err
    assert verify(ctx.engine).ok


def test_the_admin_api_show_is_in_the_patients_trail(api) -> None:  # noqa: ANN001, F811
    from tests.test_pipeline import ingest, oru
    ctx = api.ctx
    with ctx.engine.connect() as conn:
        pid = conn.execute(select(patients.c.id).where(
            patients.c.ins == "279035121518989")).scalar_one_or_none()
    if pid is None:
        pid = make_patient(ctx)
    (dep,) = ingest(ctx, oru("R6-API"))
    with api.client("admin", subject="bob") as c:
        r = c.get(f"/admin/imports/{dep}", params={"reason": "ticket 6102"})
        assert r.status_code == 200 and r.json()["produced"]
        assert c.get("/admin/imports/987654").status_code == 404
    (shown,) = _rows(ctx, "import.show")
    assert (shown.actor, shown.patient_id, shown.reason) == ("bob", pid, "ticket 6102")


# -- token mint --------------------------------------------------------------------------------
def test_token_mint_is_audited_in_the_dossier_it_opens(store, capsys) -> None:  # noqa: ANN001, F811
    ctx, _ = store
    code, out, _ = run(capsys, "token", "mint", "--scope", "patient", "--patient", "1",
                       "--as", "alice", "--ttl", "600")
    assert code == 0
    token = out.strip()
    code, _, _ = run(capsys, "token", "mint", "--scope", "professional", "--rpps",
                     "810001234567", "--role", "médecin", "--as", "alice")
    assert code == 0
    patient_row, pro_row = _rows(ctx, "token.mint")
    assert (patient_row.actor, patient_row.patient_id, patient_row.chain) == ("alice", 1, 1)
    assert patient_row.details["scope"] == "patient" and patient_row.details["sub"] == "1"
    assert patient_row.details["exp"].endswith("+00:00")
    assert token not in str(patient_row.details)  # the key itself is never kept
    assert jwt.get_unverified_header(token)  # a real token was printed
    assert (pro_row.patient_id, pro_row.chain) == (None, NO_DOSSIER)
    assert (pro_row.details["rpps"], pro_row.details["role"]) == ("10001234567", "médecin")
    # a refused mint prints no token and writes no row
    assert run(capsys, "token", "mint", "--scope", "sender", "--as", "alice")[0] == 1
    assert len(_rows(ctx, "token.mint")) == 2


# -- reruns and edits in the patient's trail --------------------------------------------------
def test_reruns_of_a_patients_imports_are_in_their_trail(store, capsys) -> None:  # noqa: ANN001, F811
    ctx, (dep, warned, quar, fail) = store
    assert run(capsys, "imports", "rerun", str(dep), "--as", "carol",
               "--reason", "ticket 6103: table LOINC corrigée")[0] == 0
    (one,) = _rows(ctx, "import.rerun")
    assert (one.import_id, one.patient_id, one.chain) == (dep, 1, 1)
    assert run(capsys, "imports", "rerun", str(dep), str(warned), str(fail), "--as", "carol",
               "--reason", "ticket 6104")[0] == 0
    summary, hers = _rows(ctx, "import.rerun")[1:]
    assert (summary.chain, summary.details["imports"]) == (NO_DOSSIER, [dep, warned, fail])
    assert (hers.chain, hers.details["imports"], hers.reason) == (1, [dep, warned],
                                                                   "ticket 6104")
    # the failed message names no dossier: its lone rerun stays in no dossier's trail
    assert run(capsys, "imports", "rerun", str(fail), "--as", "carol")[0] == 0
    assert _rows(ctx, "import.rerun")[-1].chain == NO_DOSSIER
    assert verify(ctx.engine).ok


def test_an_edit_of_an_import_assigned_to_a_dossier_is_in_its_trail(store, capsys) -> None:  # noqa: ANN001, F811
    """Ange Santoni's result was quarantined (no dossier), assigned to his dossier once made,
    and quarantined again: he opposed to the feeding of his dossier. The admin corrects the
    message; the edit goes in his trail."""
    ctx, (_, _, quar, _) = store
    ange = make_patient(ctx, NIR_2, family="Santoni", given="Ange", birth_date="1988-10-02",
                        sex="M")
    with ctx.engine.begin() as conn:
        conn.execute(update(patients).where(patients.c.id == ange).values(opposed=True))
    assert run(capsys, "imports", "assign", str(quar), "--patient", NIR_2, "--as", "alice",
               "--reason", "identité vérifiée avec le laboratoire")[0] == 0
    row = show_import(ctx.engine, quar)
    assert (row["status"], row["assigned_patient_id"]) == ("quarantined", ange)
    data = ctx.archive.get(row["sha256"]).replace(b"|5.4|", b"|5.5|")
    edit(ctx.engine, ctx.archive, quar, data, Actor("alice"), reason="ticket 6105")
    (edited,) = _rows(ctx, "import.edit")
    assert (edited.patient_id, edited.chain, edited.reason) == (ange, ange, "ticket 6105")
    with ctx.engine.connect() as conn:
        assert conn.execute(select(imports.c.status).where(imports.c.id == quar)
                            ).scalar_one() == "discarded"
    assert verify(ctx.engine).ok


def test_token_mint_has_json_as_every_command(store, capsys) -> None:  # noqa: ANN001, F811
    """`token mint` was the one command without --json (scripts that provision senders
    parsed the bare token)."""
    import json
    ctx, _ = store
    code, out, _ = run(capsys, "token", "mint", "--scope", "sender", "--source", "lab",
                       "--ttl", "120", "--as", "alice", "--json")
    assert code == 0
    minted = json.loads(out)
    assert (minted["scope"], minted["subject"]) == ("sender", "lab")
    assert jwt.decode(minted["token"], options={"verify_signature": False})["source"] == "lab"
    assert minted["expires_at"].endswith("+00:00")
    assert _rows(ctx, "token.mint")[-1].details["source"] == "lab"


# -- a dossier created for a quarantined patient ----------------------------------------------
def test_dossier_create_tells_which_quarantined_imports_it_unblocks(store, capsys) -> None:  # noqa: ANN001, F811
    """Ange Santoni's result was quarantined IDENTITY_UNKNOWN_PATIENT (no dossier). The
    operator creates his dossier: the command names the import waiting for it (and files
    nothing); `imports rerun --waiting-for` reruns exactly that one."""
    import json
    ctx, (dep, _, quar, fail) = store
    code, out, _ = run(capsys, "dossier", "create", "--ins", NIR_2, "--family", "Santoni",
                       "--given", "Ange", "--birth-date", "1988-10-02", "--sex", "M",
                       "--as", "alice", "--json")
    assert code == 0, out
    made = json.loads(out)
    (ange,) = made["created"]
    assert made["waiting"] == {str(ange): [quar]}
    assert show_import(ctx.engine, quar)["status"] == "quarantined"  # nothing filed by it
    # Hélène's dossier existed: nothing waits for it
    code, _, err = run(capsys, "imports", "rerun", "--waiting-for", "1", "--as", "alice")
    assert code == 1 and "no quarantined import names the INS of dossier 1" in err
    code, out, _ = run(capsys, "imports", "rerun", "--waiting-for", NIR_2, "--as", "alice",
                       "--reason", "dossier créé", "--json")
    assert code == 0, out
    assert json.loads(out)["reopen"] == [quar]
    row = show_import(ctx.engine, quar)
    assert (row["status"], row["patient_id"]) == ("deposited", ange)
    assert show_import(ctx.engine, fail)["status"] == "failed"  # not touched
    code, _, err = run(capsys, "imports", "rerun", "--waiting-for", "424242")
    assert code == 1 and "no dossier 424242" in err
