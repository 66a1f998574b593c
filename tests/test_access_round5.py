"""Dossier access, round 5 (dossiers/access.py): the patient's rights as they are exercised
over time. A minor comes of age; a result awaiting its announcement consultation
(INVISIBLE_PATIENT) is announced and unflagged.

Maëlys Da Silva (test INS-NIR, born 14 September 2010) receives β-hCG lab reports as CI-SIS
CDA in HL7v2 ORU (the builder of tests/test_access_round2.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import select, update

from dossiers import access
from dossiers.access import Principal
from dossiers.schema import entries, patients
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.test_access_round2 import NIR, TEST_OID, _oru

ADMIN = Principal("admin", "alice")
GYNECO = "10000000001"  # Dr Anne Durand, her médecin traitant
MOTHER = Principal("representative", "rep-claire-dasilva")
TUTOR = Principal("representative", "rep-odile-martin")


def pro(rpps: str) -> Principal:
    return Principal("professional", rpps, "médecin")


def _file(ctx, *messages: bytes) -> None:  # noqa: ANN001
    intake(ctx.engine, ctx.archive, [Received(m, "lbm-rhone", "mllp") for m in messages])
    drain(ctx)


def _documents(ctx) -> list:  # noqa: ANN001
    with ctx.engine.connect() as conn:
        return list(conn.execute(select(entries).where(entries.c.type == "document",
                                                       entries.c.current.is_(True))))


@pytest.fixture
def maelys(ctx):  # noqa: ANN001, ANN201
    """Her dossier, her médecin traitant registered and named; nothing filed yet."""
    return _maelys(ctx)


@pytest.fixture
def sqlite_maelys(sqlite_ctx):  # noqa: ANN001, ANN201
    """The same on SQLite alone: for what reads the trail rather than a store's rule."""
    return _maelys(sqlite_ctx)


def _maelys(ctx):  # noqa: ANN001, ANN202
    created = create_dossiers(ctx.engine, [DossierInput(
        family="Da Silva", given="Maëlys", birth_date="2010-09-14", sex="F", ins=NIR,
        ins_oid=TEST_OID)])
    pid = str(created[0])
    access.register_professional(ctx.engine, ADMIN, GYNECO, "Durand", "Anne", "médecin")
    access.set_treating(ctx.engine, ADMIN, pid, GYNECO)
    return SimpleNamespace(ctx=ctx, engine=ctx.engine, pid=pid,
                           patient=Principal("patient", pid))


def _basis(d, who: Principal) -> str:  # noqa: ANN001
    return access.read_dossier(d.engine, who, d.pid)["access"]["basis"]


def _code(call, *args, **kwargs) -> str:  # noqa: ANN001
    with pytest.raises(access.AccessError) as refused:
        call(*args, **kwargs)
    return refused.value.code


# -- a minor comes of age -------------------------------------------------------------------
def test_a_parent_stops_representing_on_the_minors_18th_birthday(maelys, monkeypatch) -> None:  # noqa: ANN001, E501
    """Her mother was declared without an end (the admin left valid_until empty): on
    14 September 2028 Maëlys is of age and her mother reads nothing more, masked documents
    included; a guardian declared without an end is not ended by age (the quality does not
    say a minor's guardianship from an adult's: the admin states the end)."""
    d = maelys
    _file(d.ctx, _oru(1, "PLAIN", "3"))
    access.declare_representative(d.engine, ADMIN, d.pid, subject=MOTHER.subject,
                                  family="Da Silva", given="Claire", quality="parent",
                                  valid_from="2010-09-14")
    access.declare_representative(d.engine, ADMIN, d.pid, subject=TUTOR.subject,
                                  family="Martin", given="Odile", quality="tuteur",
                                  valid_from="2020-01-01")
    assert _basis(d, MOTHER) == "representative"
    monkeypatch.setattr(access, "local_today", lambda: "2028-09-13")  # the eve: still a minor
    assert _basis(d, MOTHER) == "representative"
    monkeypatch.setattr(access, "local_today", lambda: "2028-09-14")
    assert _code(access.read_entries, d.engine, MOTHER, d.pid) == "ACCESS_DENIED"
    assert _code(access.read_audit, d.engine, MOTHER, d.pid) == "ACCESS_DENIED"
    assert _basis(d, TUTOR) == "representative"
    assert _basis(d, d.patient) == "patient"
    listed = access.list_representatives(d.engine, ADMIN, d.pid)
    assert listed["majority_day"] == "2028-09-14"
    assert {r["subject"]: r["in_force"] for r in listed["representatives"]} == \
        {MOTHER.subject: False, TUTOR.subject: True}
    # a parent declared on the dossier of an adult is refused, with its own code
    with pytest.raises(access.InvalidRequest) as refused:
        access.declare_representative(d.engine, ADMIN, d.pid, subject="rep-paulo-dasilva",
                                      family="Da Silva", given="Paulo", quality="parent")
    assert refused.value.code == "PATIENT_OF_AGE"
    assert "2010" not in refused.value.message and "09-14" not in refused.value.message


def test_a_parent_of_a_patient_who_died_an_adult_does_not_read_on(sqlite_maelys, monkeypatch) -> None:  # noqa: ANN001, E501
    """The after-death reading of parents (L1110-4 V) is for a minor child: a parent whose
    declaration never ended kept reading the dossier of a child who died at 30."""
    d = sqlite_maelys
    access.declare_representative(d.engine, ADMIN, d.pid, subject=MOTHER.subject,
                                  family="Da Silva", given="Claire", quality="parent",
                                  valid_from="2010-09-14")
    with d.engine.begin() as conn:
        conn.execute(update(patients).where(patients.c.id == int(d.pid))
                     .values(deceased=True, deceased_at="2040-05-02"))
    monkeypatch.setattr(access, "local_today", lambda: "2040-05-10")
    assert _code(access.read_dossier, d.engine, MOTHER, d.pid) == "ACCESS_DENIED"
    with d.engine.begin() as conn:  # died a minor: the parent reads on
        conn.execute(update(patients).where(patients.c.id == int(d.pid))
                     .values(deceased_at="2026-05-02"))
    assert _basis(d, MOTHER) == "representative"


def test_majority_day() -> None:
    assert access.majority_day("2010-09-14") == "2028-09-14"
    assert access.majority_day("2008-02-29") == "2026-03-01"
    assert access.majority_day("2010") is None and access.majority_day(None) is None


# -- INVISIBLE_PATIENT lifted after the announcement consultation ---------------------------
def test_once_announced_the_patient_sees_who_read_the_document(maelys) -> None:  # noqa: ANN001, E501
    """The positive β-hCG waits for the announcement consultation (INVISIBLE_PATIENT=Y); her
    gynaecologist reads it. After the consultation the laboratory lifts the flag
    (MODIF_CONF_CODE=Y, INVISIBLE_PATIENT=N): Maëlys reads the report, and her trail now
    shows who read it before her. It stayed hidden for good (the rule of the
    representatives' secrets, which outlive a later version)."""
    d = maelys
    _file(d.ctx, _oru(1, "HCG", "1245", INVISIBLE_PATIENT="Y"))
    doc = _documents(d.ctx)[0]
    access.read_document(d.engine, pro(GYNECO), doc.id)
    seen = {e["id"] for e in access.read_entries(d.engine, d.patient, d.pid)["entries"]}
    assert doc.id not in seen
    trail = access.read_audit(d.engine, d.patient, d.pid)["events"]
    assert not [e for e in trail if e["action"] in ("document.read", "dossier.deposit")]
    _file(d.ctx, _oru(2, "HCG", "1245", INVISIBLE_PATIENT="N", MODIF_CONF_CODE="Y"))
    now = _documents(d.ctx)[0]
    seen = {e["id"] for e in access.read_entries(d.engine, d.patient, d.pid)["entries"]}
    assert now.id in seen
    access.read_document(d.engine, d.patient, now.id)
    trail = access.read_audit(d.engine, d.patient, d.pid)["events"]
    reads = [(e["actor"], e["actor_name"]) for e in trail if e["action"] == "document.read"]
    assert reads == [(d.patient.actor, None),
                     (f"professional:{GYNECO}", "Anne Durand (médecin)")]
    assert len([e for e in trail if e["action"] == "dossier.deposit"]) == 2


def _deletion(n: int, ext: str, value: str, **flags: str) -> bytes:
    """The CI-SIS deletion of a document held: ORC-1 CA, OBX-11 D (flags as stated)."""
    lines = _oru(n, ext, value, **flags).decode().split("\r")
    lines = [ln.replace("ORC|NW|", "ORC|CA|") for ln in lines]
    lines[5] = lines[5][:-1] + "D"
    return "\r".join(lines).encode()


def test_a_document_deleted_before_its_announcement_keeps_its_trail_hidden(sqlite_maelys) -> None:  # noqa: ANN001, E501
    """The laboratory deletes the unannounced report (sent to the wrong dossier), its
    deletion stating INVISIBLE_PATIENT=N as the guide's messages do: the deleted version
    keeps the flag held, and the trail of the report stays hidden from the patient (the
    'current' rule of the flag does not open it)."""
    d = sqlite_maelys
    _file(d.ctx, _oru(1, "HCG", "1245", INVISIBLE_PATIENT="Y"))
    access.read_document(d.engine, pro(GYNECO), _documents(d.ctx)[0].id)
    _file(d.ctx, _deletion(2, "HCG", "1245"))
    assert [r.status for r in _documents(d.ctx)] == ["withdrawn"]
    assert access.read_entries(d.engine, d.patient, d.pid)["entries"] == []
    trail = access.read_audit(d.engine, d.patient, d.pid)["events"]
    assert {e["action"] for e in trail} == {"treating.set", "entries.read"}


# -- the trail says what was read -----------------------------------------------------------
def test_the_trail_names_the_document_read_over_http_and_in_the_console(sqlite_ctx) -> None:  # noqa: ANN001, E501
    """Dr Durand read the plain β-hCG report; the patient's trail said 'document.read' with
    an internal entry id. It now names the document (type, title, date) when the reader may
    see it, and only then: not the one deleted since, nor to the mother the one she may
    not see."""
    import dataclasses

    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.console.session import SESSION_COOKIE
    from api.tokens import mint

    ctx = sqlite_ctx
    ctx.settings = dataclasses.replace(ctx.settings, api_secret="s" * 64)
    d = _maelys(ctx)
    _file(ctx, _oru(1, "PLAIN", "3"), _oru(2, "SECRET", "5820", CONNEXION_SECRETE="Y"))
    plain, secret = sorted(r.id for r in _documents(ctx))
    access.declare_representative(d.engine, ADMIN, d.pid, subject=MOTHER.subject,
                                  family="Da Silva", given="Claire", quality="parent",
                                  valid_from="2010-09-14")
    app = create_app(ctx)
    client = TestClient(app)

    def auth(scope: str, **claims: object) -> dict:
        return {"Authorization": "Bearer " + mint(ctx.settings, scope, **claims)}

    doctor = auth("professional", rpps=GYNECO, role="médecin")
    for doc in (plain, secret):
        assert client.get(f"/documents/{doc}", headers=doctor).status_code == 200
    mine = auth("patient", patient=d.pid)
    events = client.get(f"/dossiers/{d.pid}/audit", headers=mine).json()["events"]
    reads = {e["details"]["entry"]: e["document"] for e in events
             if e["action"] == "document.read"}
    assert reads[plain] == {"type": "document", "title": "Compte rendu d'examens biologiques",
                            "effective": "2025-08-19T13:53:00+02:00"}
    assert reads[secret]["type"] == "document"  # hers: she may see it
    mother = auth("representative", representative=MOTHER.subject)
    events = client.get(f"/dossiers/{d.pid}/audit", headers=mother).json()["events"]
    assert [e["document"]["title"] for e in events if e["action"] == "document.read"] == \
        ["Compte rendu d'examens biologiques"]
    page = TestClient(app, cookies={SESSION_COOKIE: mine[
        "Authorization"].removeprefix("Bearer ")}).get(f"/console/dossiers/{d.pid}/audit")
    assert page.status_code == 200
    assert "Compte rendu d&#39;examens biologiques (2025-08-19)" in page.text
    _file(ctx, _deletion(3, "PLAIN", "3"))  # the laboratory deletes it
    events = client.get(f"/dossiers/{d.pid}/audit", headers=mine).json()["events"]
    assert [e["document"] for e in events if e["action"] == "document.read"
            and e["details"]["entry"] == plain] == [None]


# -- emergency attempts the patient's opposition stopped ---------------------------------------
def test_refused_emergency_attempts_are_flagged_break_glass_in_the_trail(sqlite_maelys) -> None:  # noqa: ANN001, E501
    """Dr Moreau (urgentiste) breaks the glass and reads; Maëlys then opposes break-glass;
    his next read, and a new opening, are refused BREAK_GLASS_OPPOSED. Both refusals were in
    her trail as plain 'access.denied', not among the emergency events; they are flagged now.
    A refused ordinary read (a stranger's) stays unflagged."""
    d = sqlite_maelys
    urgentiste, stranger = Principal("professional", "10003456786", "médecin urgentiste"), \
        pro("10000000009")
    access.register_professional(d.engine, ADMIN, urgentiste.subject, "Moreau", "Luc",
                                 "médecin urgentiste")
    access.open_break_glass(d.engine, urgentiste, d.pid, "patiente inconsciente admise aux "
                            "urgences de Lyon Sud")
    access.read_entries(d.engine, urgentiste, d.pid)
    access.set_emergency_opposition(d.engine, d.patient, d.pid, break_glass=True)
    for call in (lambda: access.read_entries(d.engine, urgentiste, d.pid),
                 lambda: access.open_break_glass(d.engine, urgentiste, d.pid,
                                                 "nouvelle admission aux urgences"),
                 lambda: access.read_dossier(d.engine, stranger, d.pid)):
        with pytest.raises(access.AccessDenied):
            call()
    trail = access.read_audit(d.engine, d.patient, d.pid)["events"][::-1]
    flagged = [(e["action"], (e["details"] or {}).get("action")) for e in trail
               if e["break_glass"]]
    assert flagged == [("break_glass.open", None), ("entries.read", None),
                       ("access.denied", "entries.read"),
                       ("access.denied", "break_glass.open")]
    assert [e["break_glass"] for e in trail if e["actor"] == stranger.actor] == [False]
