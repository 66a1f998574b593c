"""Legal representatives and the DMP's visibility flags (dossiers/access.py, round 2).

A minor's dossier (Maëlys, 15) holds four lab reports sent as CI-SIS CDA in HL7v2 ORU, each
with one β-hCG result: one plain, one INVISIBLE_REP_LEGAUX=Y, one sent in the DMP's secret
connection (CONNEXION_SECRETE=Y, INVISIBLE_REP_LEGAUX left N), one masked from professionals
(MASQUE_PS=Y). Her mother is declared as legal representative by an admin. What the mother,
the patient and professionals see is checked on every read path: counts, search, entries,
documents, FHIR export (with its provenance), audit trail; over HTTP and the CLI too.

One store for the module (filled once: the file must run in seconds); tests that change
access use representatives of their own, so that the others' reads stay as set up."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from api.app import create_app
from api.console.session import SESSION_COOKIE
from api.tokens import mint
from dossiers import access
from dossiers.access import AccessDenied, InvalidRequest, NotFound, Principal
from dossiers.audit import verify
from dossiers.schema import entries
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.process import Context, drain
from pipelines.settings import load_settings
from tests.conftest import SAMPLES, migrated_sqlite

NIR = "210096912345644"  # test INS-NIR (OID .4.10) of a girl born in September 2010
TEST_OID = "1.2.250.1.213.1.4.10"
ADMIN = Principal("admin", "alice")
MOTHER = Principal("representative", "rep-claire-dasilva")
TREATING, NURSE = "10000000001", "10000000002"
SECRET = "s" * 40
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _cda(ext: str, value: str) -> bytes:
    """samples/cda/10 (a β-hCG) for the minor: its own id, value, confidentiality N (the
    visibility then comes from the message's MetaDMPMSS flags alone)."""
    text = (SAMPLES / "cda" / "10_crbio_hcg_restreint.xml").read_text(encoding="utf-8")
    text = (text.replace('extension="RB250819731100"', f'extension="RB-{ext}"')
                .replace('extension="RBS74051280"', f'extension="RBS-{ext}"')
                .replace('<confidentialityCode code="R" displayName="Restreint"',
                         '<confidentialityCode code="N" displayName="Normal"')
                .replace('extension="295029712010115"', f'extension="{NIR}"')
                .replace('<birthTime value="19950211"/>', '<birthTime value="20100914"/>')
                .replace('value="1245" unit="[IU]/L"', f'value="{value}" unit="[IU]/L"'))
    return text.encode("utf-8")


def _oru(n: int, ext: str, value: str, **flags: str) -> bytes:
    """A CI-SIS ORU^R01 carrying one CDA and the MetaDMPMSS flags the guide requires (N unless
    given)."""
    stated = {"MASQUE_PS": "N", "INVISIBLE_PATIENT": "N", "INVISIBLE_REP_LEGAUX": "N",
              "CONNEXION_SECRETE": "N", "MODIF_CONF_CODE": "N", "DESTDMP": "Y", **flags}
    payload = base64.b64encode(_cda(ext, value)).decode()
    segs = [f"MSH|^~\\&|SIL-LBM|LBM-RHONE|PFI|GHT|20250819140{n}||ORU^R01^ORU_R01|RB-MSG-{n}|P|"
            "2.5|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2",
            f"PID|||{NIR}^^^ASIP-SANTE-INS-NIR&{TEST_OID}&ISO^INS||DA SILVA^Maëlys^^^^^L||"
            "20100914|F" + "|" * 24 + "VALI",
            "PV1|1|O",
            f"ORC|NW|CMD-{n}^SIL-LBM|RB-{ext}^LBM-RHONE",
            f"OBR|1|CMD-{n}^SIL-LBM|RB-{ext}^LBM-RHONE|11502-2^CR d'examens biologiques^LN|||"
            "202508190750" + "|" * 18 + "F",
            f"OBX|1|ED|11502-2^CR d'examens biologiques^LN||^TEXT^XML^Base64^{payload}||||||F",
            *(f"OBX|{i}|CE|{name}^{name}^MetaDMPMSS||{value}^^expandedYes-NoIndicator||||||F"
              for i, (name, value) in enumerate(stated.items(), start=2))]
    return ("\r".join(segs) + "\r").encode("utf-8")


@dataclass
class Minor:
    ctx: Context
    pid: str
    docs: dict[str, int]  # plain, invisible, secret, masked -> the document's entry id
    results: dict[str, int]  # the same -> its β-hCG result


def _file(ctx: Context, *messages: bytes) -> None:
    intake(ctx.engine, ctx.archive, [Received(m, "lbm-rhone", "mllp") for m in messages])
    drain(ctx)


@pytest.fixture(scope="module")
def minor(tmp_path_factory, sqlite_template) -> Minor:  # noqa: ANN001
    home = tmp_path_factory.mktemp("round2")
    url = migrated_sqlite(sqlite_template, home / "dmp.sqlite3")
    ctx = Context.from_settings(load_settings(env={"DMP_HOME": str(home),
                                                   "DMP_DATABASE_URL": url,
                                                   "DMP_API_SECRET": SECRET}))
    created = create_dossiers(ctx.engine, [DossierInput(
        family="Da Silva", given="Maëlys", birth_date="2010-09-14", sex="F", ins=NIR,
        ins_oid=TEST_OID)])
    assert created
    _file(ctx, _oru(1, "PLAIN", "3"), _oru(2, "INVIS", "1245", INVISIBLE_REP_LEGAUX="Y"),
          _oru(3, "SECRET", "5820", CONNEXION_SECRETE="Y"),
          _oru(4, "MASKED", "12", MASQUE_PS="Y"))
    docs, results = {}, {}
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(entries).where(entries.c.current.is_(True))).all()
    for name, ext in (("plain", "PLAIN"), ("invisible", "INVIS"), ("secret", "SECRET"),
                      ("masked", "MASKED")):
        doc = [r for r in rows if r.type == "document" and r.key.endswith(f"RB-{ext}")]
        assert len(doc) == 1, [r.key for r in rows]
        docs[name] = doc[0].id
        found = [r.id for r in rows if r.parent_id == doc[0].id and r.code == "21198-7"]
        assert len(found) == 1
        results[name] = found[0]
    pid = str(rows[0].patient_id)
    for rpps, family, role in ((TREATING, "Durand", "médecin"),
                               (NURSE, "Nguyen", "infirmière")):
        access.register_professional(ctx.engine, ADMIN, rpps, family, "Anne", role)
    access.set_treating(ctx.engine, ADMIN, pid, TREATING)
    access.grant(ctx.engine, Principal("patient", pid), pid, NURSE)
    access.declare_representative(ctx.engine, ADMIN, pid, subject=MOTHER.subject,
                                  family="Da Silva", given="Claire", quality="parent",
                                  valid_from="2010-09-14", valid_until="2028-09-14")
    yield Minor(ctx, pid, docs, results)
    ctx.engine.dispose()


def pro(rpps: str) -> Principal:
    return Principal("professional", rpps, "médecin")


def _seen(m: Minor, who: Principal, **filters: str) -> set[int]:
    return {e["id"] for e in access.read_entries(m.ctx.engine, who, m.pid,
                                                 **filters)["entries"]}


def _both(m: Minor, *names: str) -> set[int]:
    return {m.docs[n] for n in names} | {m.results[n] for n in names}


# -- what each reader sees -----------------------------------------------------------------
def test_representative_reads_as_the_patient_minus_what_is_invisible_to_them(minor) -> None:  # noqa: ANN001, E501
    m = minor
    everything = _both(m, "plain", "invisible", "secret", "masked")
    assert _seen(m, Principal("patient", m.pid)) >= everything
    mother = _seen(m, MOTHER)
    assert mother >= _both(m, "plain", "masked")  # the masked one too: as the patient
    assert not mother & _both(m, "invisible", "secret")
    assert _seen(m, pro(TREATING)) >= everything  # flags about representatives: not theirs
    assert not _seen(m, pro(NURSE)) & _both(m, "masked")
    read = access.read_dossier(m.ctx.engine, MOTHER, m.pid)
    assert read["access"] == {"basis": "representative", "break_glass": False}
    patient = access.read_dossier(m.ctx.engine, Principal("patient", m.pid), m.pid)
    assert read["counts"]["document"] == patient["counts"]["document"] - 2


def test_no_search_count_or_document_read_reaches_hidden_content(minor) -> None:  # noqa: ANN001
    m = minor
    found = access.read_entries(m.ctx.engine, MOTHER, m.pid, code="21198-7")
    assert {e["id"] for e in found["entries"]} == {m.results["plain"], m.results["masked"]}
    assert found["total"] == 2 and {e["value"] for e in found["entries"]} == {"3", "12"}
    for name in ("invisible", "secret"):
        for entry_id in (m.docs[name], m.results[name]):
            with pytest.raises(NotFound):  # the same answer as for an entry that is not there
                access.read_document(m.ctx.engine, MOTHER, entry_id)
    assert access.read_document(m.ctx.engine, MOTHER, m.docs["masked"])["sha256"]


def _without_uuids(text: str) -> str:
    """The export's text without its resource ids: they are UUIDs, and a hidden value's
    digits ("5820") turn up in one by chance (1 run in about a hundred)."""
    return UUID.sub("", text)


def test_fhir_export_of_a_representative_holds_nothing_hidden(minor) -> None:  # noqa: ANN001
    m = minor
    bundle = json.dumps(access.export_fhir(m.ctx.engine, MOTHER, m.pid), ensure_ascii=False)
    assert '"value": 3' in bundle and '"value": 12' in bundle
    assert "1245" not in _without_uuids(bundle) and "5820" not in _without_uuids(bundle)
    assert "RB-INVIS" not in bundle and "RB-SECRET" not in bundle


def test_a_fact_restated_in_a_secret_document_leaks_no_provenance(minor, tmp_path,  # noqa: ANN001
                                                                  sqlite_template) -> None:  # noqa: ANN001
    """The plain report's β-hCG sent again inside a secret document is one entry with two
    provenance links: the second one (a Provenance 'confirmed', its sender and time) told
    the reader that the secret document exists. It is left out for whoever may not see
    that document, a professional it is masked from as well as a representative."""
    url = migrated_sqlite(sqlite_template, tmp_path / "dmp.sqlite3")
    ctx = Context.from_settings(load_settings(env={"DMP_HOME": str(tmp_path),
                                                   "DMP_DATABASE_URL": url}))
    create_dossiers(ctx.engine, [DossierInput(family="Da Silva", given="Maëlys",
                                              birth_date="2010-09-14", sex="F", ins=NIR,
                                              ins_oid=TEST_OID)])
    _file(ctx, _oru(1, "PLAIN", "3"))
    _file(ctx, _oru(2, "AGAIN", "3", CONNEXION_SECRETE="Y", MASQUE_PS="Y"))
    with ctx.engine.connect() as conn:
        pid = str(conn.execute(select(entries.c.patient_id)).first()[0])
    access.register_professional(ctx.engine, ADMIN, NURSE, "Nguyen", "Anne", "infirmière")
    access.grant(ctx.engine, Principal("patient", pid), pid, NURSE)
    access.declare_representative(ctx.engine, ADMIN, pid, subject=MOTHER.subject,
                                  family="Da Silva", given="Claire", quality="parent")

    def provenances(who: Principal) -> list[dict]:
        bundle = access.export_fhir(ctx.engine, who, pid)
        return [e["resource"] for e in bundle["entry"]
                if e["resource"]["resourceType"] == "Provenance"]

    everything = provenances(Principal("patient", pid))
    assert {p["activity"]["text"] for p in everything} == {"created", "confirmed"}
    for who in (MOTHER, pro(NURSE)):
        assert {p["activity"]["text"] for p in provenances(who)} == {"created"}
    ctx.engine.dispose()


# -- the audit trail ---------------------------------------------------------------------------
def test_patient_sees_who_read_including_the_representative_by_name(minor) -> None:  # noqa: ANN001
    m = minor
    access.read_entries(m.ctx.engine, MOTHER, m.pid)
    events = access.read_audit(m.ctx.engine, Principal("patient", m.pid), m.pid)["events"]
    mine = [e for e in events if e["actor"] == MOTHER.actor and e["action"] == "entries.read"]
    assert mine and mine[-1]["actor_name"] == "Claire Da Silva (titulaire de l'autorité " \
        "parentale)"
    assert mine[-1]["details"]["basis"] == "representative"
    declared = [e for e in events if e["action"] == "representative.declare"]
    assert declared[0]["details"]["subject"] == MOTHER.subject
    assert "Claire" not in json.dumps(declared[0]["details"])  # names: never in the trail
    assert verify(m.ctx.engine).ok


def test_representative_trail_keeps_the_secret(minor) -> None:  # noqa: ANN001
    """The professional's read of the secret document, the filing of the hidden ones and the
    counts of other people's reads are not in the mother's trail; her own reads are."""
    m = minor
    _file(m.ctx, _oru(5, "PLAIN2", "3"))  # a visible filing of its own
    access.read_document(m.ctx.engine, pro(TREATING), m.docs["secret"])
    access.read_document(m.ctx.engine, pro(TREATING), m.docs["plain"])
    access.read_dossier(m.ctx.engine, Principal("patient", m.pid), m.pid)
    access.read_entries(m.ctx.engine, MOTHER, m.pid)
    patient = access.read_audit(m.ctx.engine, Principal("patient", m.pid), m.pid)["events"]
    mother = access.read_audit(m.ctx.engine, MOTHER, m.pid)["events"]
    read = {e["details"].get("entry") for e in mother if e["action"] == "document.read"}
    assert m.docs["plain"] in read and m.docs["secret"] not in read
    assert m.docs["secret"] in {e["details"].get("entry") for e in patient
                                if e["action"] == "document.read"}
    deposits = [e for e in mother if e["action"] == "dossier.deposit"]
    assert len(deposits) < len([e for e in patient if e["action"] == "dossier.deposit"])
    assert deposits and deposits[-1]["details"] is None  # who filed, not how many entries
    others = [e for e in mother if e["actor"] != MOTHER.actor and e["details"]]
    assert others and all("entries" not in e["details"] for e in others)
    own = [e for e in mother if e["actor"] == MOTHER.actor and e["action"] == "entries.read"]
    assert own and "entries" in own[-1]["details"]


# -- declaring, dates, revoking ------------------------------------------------------------------
def test_representation_holds_only_within_its_dates_and_until_revoked(minor) -> None:  # noqa: ANN001
    m = minor
    today = date.fromisoformat(access.local_today())  # the French day, not the UTC one
    father = Principal("representative", "rep-paulo-dasilva")
    with pytest.raises(AccessDenied):  # nobody declared: the same refusal as anyone's
        access.read_entries(m.ctx.engine, father, m.pid)
    access.declare_representative(m.ctx.engine, ADMIN, m.pid, subject=father.subject,
                                  family="Da Silva", given="Paulo", quality="parent",
                                  valid_from=(today + timedelta(days=2)).isoformat())
    with pytest.raises(AccessDenied):  # not yet
        access.read_dossier(m.ctx.engine, father, m.pid)
    with pytest.raises(InvalidRequest) as twice:
        access.declare_representative(m.ctx.engine, ADMIN, m.pid, subject=father.subject,
                                      family="Da Silva", given="Paulo", quality="parent")
    assert twice.value.code == "ALREADY_DECLARED"
    access.revoke_representative(m.ctx.engine, ADMIN, m.pid, father.subject,
                                 "déclaration anticipée par erreur")
    access.declare_representative(m.ctx.engine, ADMIN, m.pid, subject=father.subject,
                                  family="Da Silva", given="Paulo", quality="parent",
                                  valid_until=(today + timedelta(days=1)).isoformat())
    assert access.read_dossier(m.ctx.engine, father, m.pid)["access"]["basis"] == \
        "representative"
    with m.ctx.engine.begin() as conn:  # the term is reached (her 18th birthday)
        from dossiers.schema import legal_representatives as reps
        conn.execute(update(reps).where(reps.c.subject == father.subject,
                                        reps.c.revoked_at.is_(None))
                     .values(valid_until=today.isoformat(),
                             valid_from=(today - timedelta(days=30)).isoformat()))
    with pytest.raises(AccessDenied):
        access.read_dossier(m.ctx.engine, father, m.pid)
    listed = access.list_representatives(m.ctx.engine, ADMIN, m.pid)["representatives"]
    his = [r for r in listed if r["subject"] == father.subject]
    assert [(r["in_force"], r["revoked_at"] is not None) for r in his] == [(False, True),
                                                                           (False, False)]
    denied = [e for e in access.read_audit(m.ctx.engine, Principal("patient", m.pid),
                                           m.pid)["events"]
              if e["actor"] == father.actor and e["action"] == "access.denied"]
    assert len(denied) == 3


@pytest.mark.parametrize("field, value, code", [
    ("subject", "268036912354128 ", "BAD_SUBJECT"), ("subject", "Claire Da Silva", "BAD_SUBJECT"),
    ("quality", "voisine", "BAD_QUALITY"), ("valid_from", "14/09/2010", "BAD_DATE"),
    ("valid_until", "2009-01-01", "BAD_PERIOD")])
def test_bad_declarations_are_refused_with_a_code(minor, field, value, code) -> None:  # noqa: ANN001
    decl = {"subject": "rep-x", "family": "Da Silva", "given": "Claire", "quality": "parent",
            "valid_from": "2010-09-14", field: value}
    with pytest.raises(InvalidRequest) as exc:
        access.declare_representative(minor.ctx.engine, ADMIN, minor.pid, **decl)
    assert exc.value.code == code
    assert "268036912354128" not in exc.value.message


def test_only_an_admin_declares_and_a_representative_changes_nothing(minor) -> None:  # noqa: ANN001
    m = minor
    for who in (Principal("patient", m.pid), MOTHER, pro(TREATING)):
        with pytest.raises(AccessDenied):
            access.declare_representative(m.ctx.engine, who, m.pid, subject="rep-y",
                                          family="Y", given=None, quality="tuteur")
    # round 6: a minor's parent grants, revokes and masks (tests/test_access_round6.py);
    # unmasking stays the patient's
    with pytest.raises(AccessDenied):
        access.set_mask(m.ctx.engine, MOTHER, m.docs["plain"], False)


# -- the flags through later versions ----------------------------------------------------------
def test_flags_stay_on_a_replacement_that_states_none(tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """A new version (RPLC) of the secret document sent by an engine that drops the
    MetaDMPMSS OBX keeps the flags held, as MASQUE_PS does; one that states them changes
    them."""
    url = migrated_sqlite(sqlite_template, tmp_path / "dmp.sqlite3")
    ctx = Context.from_settings(load_settings(env={"DMP_HOME": str(tmp_path),
                                                   "DMP_DATABASE_URL": url}))
    create_dossiers(ctx.engine, [DossierInput(family="Da Silva", given="Maëlys",
                                              birth_date="2010-09-14", sex="F", ins=NIR,
                                              ins_oid=TEST_OID)])
    _file(ctx, _oru(1, "V1", "5820", INVISIBLE_REP_LEGAUX="Y", CONNEXION_SECRETE="Y"))

    def replacement(n: int, ext: str, parent: str, *, flags: bool) -> bytes:
        """A CI-SIS replacement (ORC-1 RO, OBX-11 C) of ``parent``, with the MetaDMPMSS
        OBX (all N) or without them."""
        cda = _cda(ext, "5900").decode().replace(
            '<versionNumber value="1"/>',
            '<versionNumber value="2"/><relatedDocument typeCode="RPLC"><parentDocument>'
            f'<id root="2.999.250.1.1.10" extension="RB-{parent}"/></parentDocument>'
            '</relatedDocument>').replace(f'extension="RBS-{ext}"', 'extension="RBS-V1"')
        lines = _oru(n, ext, "5900").decode().split("\r")
        payload = base64.b64encode(cda.encode()).decode()
        lines = [ln.replace("ORC|NW|", "ORC|RO|") for ln in lines
                 if flags or "MetaDMPMSS" not in ln]
        lines[5] = (f"OBX|1|ED|11502-2^CR d'examens biologiques^LN||^TEXT^XML^Base64^"
                    f"{payload}||||||C")
        return "\r".join(lines).encode()

    def current() -> object:
        with ctx.engine.connect() as conn:
            return conn.execute(select(entries).where(entries.c.current.is_(True),
                                                      entries.c.type == "document")).one()

    _file(ctx, replacement(2, "V2", "V1", flags=False))
    doc = current()  # one current version: v2 replaced v1
    assert doc.key.endswith("RB-V2") or doc.version == 2
    assert doc.masking["CONNEXION_SECRETE"] and doc.masking["INVISIBLE_REP_LEGAUX"]
    pid = str(doc.patient_id)
    access.declare_representative(ctx.engine, ADMIN, pid, subject=MOTHER.subject,
                                  family="Da Silva", given="Claire", quality="parent")
    minor = Minor(ctx, pid, {}, {})
    assert _seen(minor, MOTHER) == set()
    _file(ctx, replacement(3, "V3", "V2", flags=True))  # the sender lifts the secret
    doc = current()
    assert not doc.masking["CONNEXION_SECRETE"] and not doc.masking["INVISIBLE_REP_LEGAUX"]
    assert doc.id in _seen(minor, MOTHER)
    ctx.engine.dispose()


def test_modif_conf_code_makes_a_document_held_invisible_and_its_past_reads_too(
        tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """MODIF_CONF_CODE=Y: the message updates the visibility of a document held (the CI-SIS
    guide). The plain report sent again with INVISIBLE_REP_LEGAUX=Y is a new version with the
    new flags; the mother, who read it before, no longer sees it, nor her past read of it."""
    url = migrated_sqlite(sqlite_template, tmp_path / "dmp.sqlite3")
    ctx = Context.from_settings(load_settings(env={"DMP_HOME": str(tmp_path),
                                                   "DMP_DATABASE_URL": url}))
    create_dossiers(ctx.engine, [DossierInput(family="Da Silva", given="Maëlys",
                                              birth_date="2010-09-14", sex="F", ins=NIR,
                                              ins_oid=TEST_OID)])
    _file(ctx, _oru(1, "PLAIN", "3"))
    with ctx.engine.connect() as conn:
        doc = conn.execute(select(entries).where(entries.c.type == "document")).one()
    pid = str(doc.patient_id)
    access.declare_representative(ctx.engine, ADMIN, pid, subject=MOTHER.subject,
                                  family="Da Silva", given="Claire", quality="parent")
    minor = Minor(ctx, pid, {}, {})
    assert doc.id in _seen(minor, MOTHER)
    access.read_document(ctx.engine, MOTHER, doc.id)
    _file(ctx, _oru(2, "PLAIN", "3", INVISIBLE_REP_LEGAUX="Y", MODIF_CONF_CODE="Y"))
    assert _seen(minor, MOTHER) == set()
    assert _seen(minor, Principal("patient", pid))  # the patient still reads it
    trail = access.read_audit(ctx.engine, MOTHER, pid)["events"]
    assert not [e for e in trail if e["action"] in ("document.read", "dossier.deposit")]
    ctx.engine.dispose()


# -- HTTP API, console and CLI --------------------------------------------------------------------
def test_http_admin_declares_and_the_representative_reads_over_the_api(minor) -> None:  # noqa: ANN001
    m = minor
    client = TestClient(create_app(m.ctx))

    def token(scope: str, **claims: object) -> dict:
        return {"Authorization": "Bearer " + mint(m.ctx.settings, scope, **claims)}

    admin, grandma = token("admin", subject="alice"), \
        token("representative", representative="rep-odette-martin")
    r = client.post(f"/dossiers/{m.pid}/representatives", headers=admin, json={
        "account": "rep-odette-martin", "family": "Martin", "given": "Odette",
        "quality": "tuteur", "valid_from": "2024-01-10"})
    assert r.status_code == 201, r.text
    r = client.post(f"/dossiers/{m.pid}/representatives", headers=grandma,
                    json={"account": "rep-z", "family": "Z", "quality": "parent"})
    assert r.status_code == 403
    r = client.get(f"/dossiers/{m.pid}/entries", headers=grandma, params={"code": "21198-7"})
    assert r.status_code == 200 and {e["value"] for e in r.json()["entries"]} == {"3", "12"}
    r = client.get(f"/dossiers/{m.pid}/fhir", headers=grandma)
    assert r.status_code == 200
    assert "5820" not in _without_uuids(r.text) and "1245" not in _without_uuids(r.text)
    assert client.get(f"/documents/{m.docs['secret']}", headers=grandma).status_code == 404
    assert client.get(f"/dossiers/{m.pid}/audit", headers=grandma).status_code == 200
    page = TestClient(create_app(m.ctx), cookies={SESSION_COOKIE: grandma[
        "Authorization"].removeprefix("Bearer ")}).get(f"/console/dossiers/{m.pid}")
    assert page.status_code == 200 and "5820" not in page.text and "1245" not in page.text
    assert f"/console/documents/{m.docs['plain']}" in page.text
    assert f"/console/documents/{m.docs['secret']}" not in page.text
    r = client.request("DELETE", f"/dossiers/{m.pid}/representatives/rep-odette-martin",
                       headers=admin, json={"reason": "mainlevée de la tutelle"})
    assert r.status_code == 200, r.text
    assert client.get(f"/dossiers/{m.pid}", headers=grandma).status_code == 403


def test_cli_declares_lists_and_revokes(minor, monkeypatch, capsys) -> None:  # noqa: ANN001
    import cli

    m = minor
    url = str(m.ctx.engine.url)
    monkeypatch.setenv("DMP_DATABASE_URL", url)
    monkeypatch.setenv("DMP_HOME", str(Path(url.removeprefix("sqlite:///")).parent))
    assert cli.main(["dossier", "representative", "add", m.pid, "--account", "rep-cli",
                     "--family", "Da Silva", "--given", "Claire", "--quality", "parent",
                     "--until", "2028-09-14", "--as", "alice", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["valid_until"] == "2028-09-14"
    assert cli.main(["dossier", "representative", "add", m.pid, "--account", "rep-cli",
                     "--family", "Da Silva", "--quality", "parent"]) == 1
    assert "already declared" in capsys.readouterr().err
    assert cli.main(["dossier", "representative", "revoke", m.pid, "--account", "rep-cli",
                     "--reason", "retrait de l'autorité parentale"]) == 0
    capsys.readouterr()
    assert cli.main(["dossier", "representative", "list", m.pid, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["representatives"]
    assert [r["in_force"] for r in listed if r["subject"] == "rep-cli"] == [False]
    assert cli.main(["dossier", "representative", "list", "999999"]) == 1


# -- a leak for the roles we had --------------------------------------------------------------
def test_an_entry_flagged_invisible_to_the_patient_in_a_visible_document_is_hidden(minor) -> None:  # noqa: ANN001, E501
    """A CDA section (or a DS4P-annotated statement) flagged INVISIBLE_PATIENT inside a
    document that is not: its entries were shown to the patient, who was read the
    document's flags only (professionals were read both)."""
    m = minor
    with m.ctx.engine.begin() as conn:
        held = conn.execute(select(entries.c.masking).where(
            entries.c.id == m.results["plain"])).scalar_one()
        conn.execute(update(entries).where(entries.c.id == m.results["plain"])
                     .values(masking={**held, "INVISIBLE_PATIENT": True}))
    try:
        patient = _seen(m, Principal("patient", m.pid))
        assert m.docs["plain"] in patient and m.results["plain"] not in patient
        assert m.results["plain"] not in _seen(m, MOTHER)
        assert m.results["plain"] in _seen(m, pro(TREATING))
        # nor does the professional's read of it count it in the patient's trail
        trail = access.read_audit(m.ctx.engine, Principal("patient", m.pid), m.pid)["events"]
        theirs = [e for e in trail if e["actor"] == pro(TREATING).actor
                  and e["action"] == "entries.read"]
        assert theirs and theirs[-1]["details"] == {"basis": "treating"}
    finally:
        with m.ctx.engine.begin() as conn:
            conn.execute(update(entries).where(entries.c.id == m.results["plain"])
                         .values(masking=held))


def test_masking_a_culture_masks_its_susceptibility_panel_too(minor) -> None:  # noqa: ANN001
    """An ECBU: the culture's report, its E. coli, and the susceptibility panel in a child
    order (OBR-26 names the organism, OBR-29 the parent order) with two antibiotics. The
    patient masks the culture's report: the panel hangs from the organism, not from the
    report, and its antibiotics stayed shown to the professional she authorised."""
    m = minor
    pid_segment = (f"PID|||{NIR}^^^ASIP-SANTE-INS-NIR&{TEST_OID}&ISO^INS||DA SILVA^Maëlys^^^^^L"
                   "||20100914|F" + "|" * 24 + "VALI")
    orc = "ORC|RE|CMD-77|25M0820-01^LBM-RHONE"
    message = "\r".join([
        "MSH|^~\\&|SIL-LBM|LBM-RHONE|PFI|GHT|20250821100000||ORU^R01^ORU_R01|MIC-77|P|2.5"
        "|||||FRA|UNICODE UTF-8", pid_segment, orc,
        "OBR|1|CMD-77|25M0820-01^LBM-RHONE|630-4^Bactéries identifiées, urine^LN|||"
        "202508200730|||||||202508200800|URI|||||||202508211000|||F",
        "OBX|1|CWE|600-7^Bactérie identifiée^LN|1|112283007^Escherichia coli^SCT||||||F",
        orc,
        "OBR|2|CMD-77|25M0820-01-A1^LBM-RHONE|29576-6^Antibiogramme^LN|||202508200730||||G"
        "|||||||||||202508211000|||F|600-7&Bactérie identifiée&LN^1^Escherichia coli|||"
        "CMD-77&LBM-RHONE^25M0820-01&LBM-RHONE",
        "OBX|1|SN|18864-9^Ampicilline CMI^LN|1|>^16|mg/L||R|||F",
        "OBX|2|SN|18906-8^Ciprofloxacine CMI^LN|1|<=^0.25|mg/L||S|||F"]) + "\r"
    _file(m.ctx, message.encode("utf-8"))
    with m.ctx.engine.connect() as conn:
        rows = {r.code: r for r in conn.execute(select(entries).where(
            entries.c.current.is_(True), entries.c.code.in_(
                ["630-4", "600-7", "29576-6", "18864-9", "18906-8"])))}
    assert len(rows) == 5 and rows["18864-9"].parent_id == rows["29576-6"].id
    antibiotics = {rows["18864-9"].id, rows["18906-8"].id}
    assert antibiotics <= _seen(m, pro(NURSE))
    done = access.set_mask(m.ctx.engine, Principal("patient", m.pid), rows["630-4"].id, True)
    assert done["entries"] == 5
    assert not {r.id for r in rows.values()} & _seen(m, pro(NURSE))
    assert antibiotics <= _seen(m, pro(TREATING)) and antibiotics <= _seen(m, MOTHER)
