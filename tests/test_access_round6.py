"""Dossier access, round 6 (dossiers/access.py): an authorisation's end date, an admin's
corrected copy of a message hidden from the reader, what the trail's import events were
about.

Maëlys Da Silva (test INS-NIR, born 14 September 2010) receives β-hCG lab reports as CI-SIS
CDA in HL7v2 ORU (the builder of tests/test_access_round2.py); Dr Anne Durand is her médecin
traitant; Dr Kévin Nguyễn, a sports physician, is authorised for the season.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from sqlalchemy import select

import cli
from dossiers import access
from dossiers.access import Principal
from dossiers.schema import audit_log, imports
from pipelines.admin import assign, edit, read_raw
from pipelines.audit import Actor
from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.test_access_round2 import _oru
from tests.test_access_round5 import ADMIN, _code, _documents, _file, _maelys, pro

MOTHER = Principal("representative", "rep-claire-dasilva")
SPORT = "10000000017"  # Dr Kévin Nguyễn, médecine du sport (RPPS with its Luhn key)


def _with_sport_doctor(d) -> Principal:  # noqa: ANN001
    access.register_professional(d.engine, ADMIN, SPORT, "Nguyễn", "Kévin",
                                 "médecin du sport")
    return pro(SPORT)


def _trail(d, who: Principal | None = None) -> list[dict]:  # noqa: ANN001
    """The trail as the patient (or ``who``) reads it, oldest first."""
    who = who or d.patient
    return access.read_audit(d.engine, who, d.pid)["events"][::-1]


# -- an authorisation's end date -----------------------------------------------------------------
def test_an_authorisation_ends_on_its_end_date(ctx, monkeypatch) -> None:  # noqa: ANN001
    """Maëlys's mother (she is 16) authorises the sports physician until 15 December 2026
    (the end of the season): on the 14th he reads, not the report of the care Maëlys keeps
    secret from her parents; on the 15th he is refused AUTHORIZATION_ENDED, and the refusal
    is in her trail with its code. On SQLite and PostgreSQL: the store's rules (the end,
    the representative acting for a minor, who granted)."""
    d = _maelys(ctx)
    doctor = _with_sport_doctor(d)
    access.declare_representative(d.engine, ADMIN, d.pid, subject=MOTHER.subject,
                                  family="Da Silva", given="Claire", quality="parent",
                                  valid_from="2010-09-14")
    _file(ctx, _oru(1, "PLAIN", "3"), _oru(2, "SECRET", "5820", CONNEXION_SECRETE="Y"))
    plain, _ = sorted(r.id for r in _documents(ctx))
    monkeypatch.setattr(access, "local_today", lambda: "2026-11-27")
    granted = access.grant(d.engine, MOTHER, d.pid, SPORT, valid_until="2026-12-15")
    assert granted["valid_until"] == "2026-12-15"
    monkeypatch.setattr(access, "local_today", lambda: "2026-12-14")
    assert [e["id"] for e in access.read_entries(d.engine, doctor, d.pid,
                                                 type="document")["entries"]] == [plain]
    monkeypatch.setattr(access, "local_today", lambda: "2026-12-15")
    assert _code(access.read_entries, d.engine, doctor, d.pid) == "AUTHORIZATION_ENDED"
    denied = [e for e in _trail(d) if e["action"] == "access.denied"]
    assert [(e["actor"], e["details"]["code"]) for e in denied] == [
        (f"professional:{SPORT}", "AUTHORIZATION_ENDED")]


def test_authorisations_listed_with_their_end_refusals_and_renewal(sqlite_ctx, monkeypatch,  # noqa: ANN001, E501
                                                                   capsys) -> None:
    """The end is stated, shown (API for the patient, CLI for an operator), enforced on a
    document's read (404 to the reader, the real code in the trail), and a new grant after
    it begins a new authorisation while the ended one stays listed. A past or same-day end
    is refused; a revoked authorisation is refused ACCESS_DENIED as before; granting again
    a professional authorised sets the end of the one in force."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.tokens import mint

    ctx = sqlite_ctx
    ctx.settings = dataclasses.replace(ctx.settings, api_secret="s" * 64)
    d = _maelys(ctx)
    doctor = _with_sport_doctor(d)
    _file(ctx, _oru(1, "PLAIN", "3"))
    (doc,) = [r.id for r in _documents(ctx)]
    monkeypatch.setattr(access, "local_today", lambda: "2026-11-27")
    client = TestClient(create_app(ctx))
    mine = {"Authorization": "Bearer " + mint(ctx.settings, "patient", patient=d.pid)}
    for bad in ("2026-11-27", "2026-11-01", "15/12/2026"):
        answer = client.post(f"/dossiers/{d.pid}/authorizations", headers=mine,
                             json={"rpps": SPORT, "valid_until": bad})
        assert answer.status_code == 400, bad
        assert answer.json()["error"] in ("BAD_PERIOD", "BAD_DATE")
    answer = client.post(f"/dossiers/{d.pid}/authorizations", headers=mine,
                         json={"rpps": SPORT, "valid_until": "2026-12-01"})
    assert answer.status_code == 201
    # granted again while in force: the end moves (one authorisation, not two)
    access.grant(d.engine, d.patient, d.pid, SPORT, valid_until="2026-12-15")
    monkeypatch.setattr(access, "local_today", lambda: "2026-12-20")
    with pytest.raises(access.NotFound):
        access.read_document(d.engine, doctor, doc)
    listed = client.get(f"/dossiers/{d.pid}/authorizations", headers=mine).json()
    assert [(a["rpps"], a["name"], a["valid_until"], a["in_force"])
            for a in listed["authorizations"]] == [
        (SPORT, "Kévin Nguyễn", "2026-12-15", False)]
    access.grant(d.engine, d.patient, d.pid, SPORT)  # renewed, without an end this time
    assert access.read_dossier(d.engine, doctor, d.pid)["access"]["basis"] == "authorised"
    access.revoke(d.engine, d.patient, d.pid, SPORT)
    assert _code(access.read_dossier, d.engine, doctor, d.pid) == "ACCESS_DENIED"
    # an operator's listing (CLI), audited in her trail
    monkeypatch.setenv("DMP_HOME", str(ctx.settings.home))
    monkeypatch.setenv("DMP_DATABASE_URL", ctx.settings.database_url)
    monkeypatch.setenv("DMP_ADMIN", "alice")
    capsys.readouterr()
    assert cli.main(["dossier", "authorizations", d.pid, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["authorizations"]
    assert [(a["valid_until"], a["in_force"], a["revoked_at"] is not None)
            for a in listed] == [("2026-12-15", False, False), (None, False, True)]
    assert cli.main(["dossier", "authorizations", d.pid]) == 0
    assert "Kévin Nguyễn" in capsys.readouterr().out
    codes = [(e["action"], (e["details"] or {}).get("code")) for e in _trail(d)
             if e["action"] in ("access.denied", "authorization.list")]
    assert codes == [("access.denied", "AUTHORIZATION_ENDED"), ("authorization.list", None),
                     ("access.denied", "ACCESS_DENIED"), ("authorization.list", None),
                     ("authorization.list", None)]


# -- an admin's corrected copy of a message hidden from the reader ------------------------------
def test_the_original_of_a_corrected_copy_hidden_from_the_patient_leaves_her_trail(ctx) -> None:  # noqa: ANN001, E501
    """A β-hCG report sent with INVISIBLE_PATIENT=Y (awaiting its announcement consultation)
    while Maëlys opposed the feeding of her dossier: quarantined OPPOSITION, assigned to her
    dossier by an admin (still quarantined: she opposed), she lifts her opposition, the
    admin corrects the message id and files the corrected copy, then reads the original's
    bytes. The copy's filing was hidden from her; the original's assignment, edit and raw
    read (the same message) were shown, telling her of the result she may not see yet.
    On SQLite and PostgreSQL (the lineage is read from the store)."""
    d = _maelys(ctx)
    sent = _oru(1, "ANNONCE", "5820", INVISIBLE_PATIENT="Y")
    access.set_opposition(d.engine, d.patient, d.pid, True)
    (original,) = intake(d.engine, ctx.archive, [Received(sent, "lbm-rhone", "mllp")])[0] \
        .message_ids
    drain(ctx)
    assign(d.engine, original, d.pid, Actor("alice"), reason="ticket 811")
    drain(ctx)
    access.set_opposition(d.engine, d.patient, d.pid, False)
    (copy,) = edit(d.engine, ctx.archive, original, sent.replace(b"RB-MSG-1|", b"RB-MSG-1B|"),
                   Actor("alice"), reason="ticket 812")
    drain(ctx)
    read_raw(d.engine, ctx.archive, original, Actor("bruno"), reason="ticket 813")
    with d.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(imports).where(
            imports.c.id.in_((original, copy))))}
    assert (rows[original].status, rows[original].assigned_patient_id) == \
        ("discarded", int(d.pid))
    assert (rows[copy].status, rows[copy].edited_from) == ("deposited", original)
    with d.engine.connect() as conn:  # in her chain, all three, about the original
        assert conn.execute(select(audit_log.c.action).where(
            audit_log.c.chain == int(d.pid), audit_log.c.import_id == original)
            .order_by(audit_log.c.seq)).scalars().all() == \
            ["import.assign", "import.edit", "import.raw"]
    assert [e["action"] for e in _trail(d) if e["action"] != "audit.read"] == [
        "treating.set", "consent.update", "consent.update"]


# -- what an import event was about -------------------------------------------------------------
def test_import_events_in_the_trail_say_what_the_import_brought(sqlite_ctx) -> None:  # noqa: ANN001
    """The laboratory files a β-hCG report, then a second one in a care kept secret from
    the parents (CONNEXION_SECRETE); an admin reads the first message's bytes (a support
    ticket). Maëlys's trail said 'import.raw, import N': it now says which report (type,
    title, date), as the filing does, over the API and in the console; her mother's trail
    describes the plain report only (the secret one's events are not in it)."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.console.session import SESSION_COOKIE
    from api.tokens import mint

    ctx = sqlite_ctx
    ctx.settings = dataclasses.replace(ctx.settings, api_secret="s" * 64)
    d = _maelys(ctx)
    mother = MOTHER
    access.declare_representative(d.engine, ADMIN, d.pid, subject=mother.subject,
                                  family="Da Silva", given="Claire", quality="parent",
                                  valid_from="2010-09-14")
    _file(ctx, _oru(1, "PLAIN", "3"))
    _file(ctx, _oru(2, "SECRET", "5820", CONNEXION_SECRETE="Y"))
    with d.engine.connect() as conn:
        plain, secret = conn.execute(select(imports.c.id).where(
            imports.c.status == "deposited").order_by(imports.c.id)).scalars().all()
    for import_id in (plain, secret):
        read_raw(d.engine, ctx.archive, import_id, Actor("bruno"), reason="ticket 4522")
    report = {"type": "document", "title": "Compte rendu d'examens biologiques",
              "effective": "2025-08-19T13:53:00+02:00"}
    assert [(e["action"], e["documents"]) for e in _trail(d)
            if e["action"] in ("import.raw", "dossier.deposit")] == [
        ("dossier.deposit", [report]), ("dossier.deposit", [report]),
        ("import.raw", [report]), ("import.raw", [report])]
    events = [e for e in _trail(d, mother) if e["documents"] is not None]
    assert [(e["action"], e["documents"]) for e in events] == [
        ("dossier.deposit", [report]), ("import.raw", [report])]
    assert [e["documents"] for e in _trail(d) if e["action"] == "treating.set"] == [None]
    token = mint(ctx.settings, "patient", patient=d.pid)
    page = TestClient(create_app(ctx), cookies={SESSION_COOKIE: token}).get(
        f"/console/dossiers/{d.pid}/audit")
    assert page.status_code == 200
    assert page.text.count("Compte rendu d&#39;examens biologiques (2025-08-19)") >= 4


# -- a minor's legal representatives act for her ------------------------------------------------
def test_a_minors_parent_grants_revokes_and_masks_within_the_minors_secret(sqlite_ctx, monkeypatch) -> None:  # noqa: ANN001, E501
    """Maëlys is 16 on 27 November 2026. Her mother (parent) authorises the sports
    physician: he reads her dossier but not the report of the care she keeps secret from
    her parents (CONNEXION_SECRETE), which her médecin traitant reads. The mother masks
    the plain report, may not unmask it, and cannot revoke the authorisation Maëlys gave
    herself. On her 18th birthday her mother acts no more; her guardian, declared for an
    adult measure too, reads on but does not act for an adult. (PostgreSQL: the first test
    of this file.)"""
    ctx = sqlite_ctx
    d = _maelys(ctx)
    doctor = _with_sport_doctor(d)
    mother = MOTHER
    tutor = Principal("representative", "rep-odile-martin")
    access.declare_representative(d.engine, ADMIN, d.pid, subject=mother.subject,
                                  family="Da Silva", given="Claire", quality="parent",
                                  valid_from="2010-09-14")
    access.declare_representative(d.engine, ADMIN, d.pid, subject=tutor.subject,
                                  family="Martin", given="Odile", quality="tuteur",
                                  valid_from="2020-01-01")
    _file(ctx, _oru(1, "PLAIN", "3"), _oru(2, "SECRET", "5820", CONNEXION_SECRETE="Y"))
    plain, secret = sorted(r.id for r in _documents(ctx))
    monkeypatch.setattr(access, "local_today", lambda: "2026-11-27")
    access.grant(d.engine, mother, d.pid, SPORT)
    seen = access.read_entries(d.engine, doctor, d.pid, type="document")
    assert (seen["access"]["basis"], [e["id"] for e in seen["entries"]]) == \
        ("authorised", [plain])
    assert [e["id"] for e in access.read_entries(d.engine, pro("10000000001"), d.pid,
                                                 type="document")["entries"]] == [plain, secret]
    with pytest.raises(access.NotFound):
        access.read_document(d.engine, doctor, secret)
    # she authorises him herself: her choice, which opens what she keeps from her parents
    access.grant(d.engine, d.patient, d.pid, SPORT)
    assert len(access.read_entries(d.engine, doctor, d.pid, type="document")["entries"]) == 2
    assert access.revoke(d.engine, mother, d.pid, SPORT)["authorised"] is False
    assert access.read_dossier(d.engine, doctor, d.pid)["access"]["basis"] == "authorised"
    assert access.set_mask(d.engine, mother, plain, True)["masked"] is True
    assert _code(access.set_mask, d.engine, mother, plain, False) == "PATIENT_ONLY"
    assert _code(access.set_treating, d.engine, mother, d.pid, SPORT) == "PATIENT_ONLY"
    listed = access.list_authorizations(d.engine, mother, d.pid)["authorizations"]
    assert [(a["granted_by"], a["in_force"]) for a in listed] == [(mother.actor, False)]
    assert len(access.list_authorizations(d.engine, d.patient, d.pid)["authorizations"]) == 2
    monkeypatch.setattr(access, "local_today", lambda: "2028-09-14")  # of age
    assert _code(access.grant, d.engine, mother, d.pid, SPORT) == "ACCESS_DENIED"
    assert access.read_dossier(d.engine, tutor, d.pid)["access"]["basis"] == "representative"
    assert _code(access.revoke, d.engine, tutor, d.pid, SPORT) == "PATIENT_ONLY"
    assert _code(access.set_mask, d.engine, tutor, plain, True) == "PATIENT_ONLY"


# -- a break-glass reason that says nothing ------------------------------------------------------
def test_a_break_glass_reason_must_say_something(sqlite_ctx) -> None:  # noqa: ANN001
    """'..........', '0000000000', 'xxxxxxxxxx' passed the 10-character rule: the trail
    showed an emergency access with no reason. Refused REASON_REQUIRED before anything is
    opened; reasons in words, short or with digits, still open."""
    d = _maelys(sqlite_ctx)  # an emergency physician not in the registry
    urgentiste = Principal("professional", SPORT, "médecin urgentiste")
    for junk in ("..........", "0000000000", "xxxxxxxxxx", "x x x x x x", "aaaa bbbb 12"):
        assert _code(access.open_break_glass, d.engine, urgentiste, d.pid, junk) \
            == "REASON_REQUIRED", junk
    assert not [e for e in _trail(d) if e["break_glass"]]
    for reason in ("AVP, polytraumatisée", "ACR récupéré, 2e épisode", "Glasgow 8 à l'arrivée"):
        assert access.open_break_glass(d.engine, urgentiste, d.pid, reason)["break_glass"]
