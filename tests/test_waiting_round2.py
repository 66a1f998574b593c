"""Quarantined imports that can now be filed, round 2: found by the local identifiers they
state (PID-3 IPP), not only by their INS, and listed without knowing which dossier to ask
about (`imports list --resolvable`, `imports rerun --resolvable`).

Identity round 11 found the gap: a laboratory's result naming the patient by the hospital's
IPP alone arrives before the message that creates the dossier (an INS-bearing result
auto-creating it, teaching the IPP); it stayed quarantined IDENTITY_UNKNOWN_PATIENT and
nothing told the operator it could now be filed. Invented patients; INS with made-up
digits and valid keys. SQLite for the cases, PostgreSQL once, the CLI once through main.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

import api.admin  # noqa: F401 - the modules create_app imports: loaded once, at collection
import api.console.web  # noqa: F401
import api.dossiers  # noqa: F401
import cli
from api.app import create_app
from api.tokens import mint
from dossiers.patients import find_by_ins
from dossiers.schema import patient_identifiers
from pipelines.process import Context
from pipelines.report import show_import
from pipelines.settings import load_settings
from pipelines.waiting import resolvable_imports, resolvable_listing, waiting_for
from tests.conftest import migrated_sqlite
from tests.test_identity_round4 import nir, pid
from tests.test_operators_round import no_prefect  # noqa: F401 (a fixture)
from tests.test_pipeline import ingest

INS = "1.2.250.1.213.1.4.8"
NIR_MAELLE = nir("2840675056012")
NIR_JEROME = nir("1790213055004")
# The CHU de Rennes's lab (MSH-4 LABO_CHU) and RIS (RIS_CHU) number patients in one 'CHU'
# domain, declared shared by their source; other laboratories are undeclared sources.
SETTINGS = """
auto_create = true

[sources.chu-rennes]
sending_facility = "*"
shared_namespaces = ["CHU"]
"""
LYON_IPP, CHU_IPP = "770041^^^LABO^PI", "770041^^^CHU^PI"
IPP_ONLY = pid("{ipp}", "", birth="", sex="")  # the IPP alone: no traits to match
INS_ONLY = pid(f"{{nir}}^^^ASIP-SANTE-INS-NIR&{INS}&ISO^INS", "", birth="", sex="",
               status="VALI")  # too thin to create the dossier from
WITH_INS = pid(f"{{nir}}^^^ASIP-SANTE-INS-NIR&{INS}&ISO^INS~{{ipp}}",
               "LE BIHAN^Maëlle^^^^^L", status="VALI")


def oru(facility: str, pid_segment: str, n: int) -> bytes:
    """A potassium result from ``facility`` (MSH-4)."""
    return (f"MSH|^~\\&|SIL|{facility}|DMP|DMP|20261127093000+0100||ORU^R01^ORU_R01|"
            f"{facility}-{n}|P|2.5\r{pid_segment}\r"
            f"OBR|1|P-{n}|F-{n}^{facility}|2823-3^Potassium^LN|||20261127080000+0100\r"
            "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.1|N|||F\r").encode()


def a31(facility: str, pid_segment: str, n: int) -> bytes:
    """The hospital's GAM updating a patient (ADT^A31): what gives a dossier its IPP."""
    return (f"MSH|^~\\&|GAM|{facility}|DMP|DMP|20261127100000+0100||ADT^A31^ADT_A05|"
            f"{facility}-{n}|P|2.5\rEVN||20261127100000+0100\r{pid_segment}\rPV1|1|N\r").encode()


def context(tmp_path, url: str) -> Context:  # noqa: ANN001
    (tmp_path / "dmp.toml").write_text(SETTINGS, encoding="utf-8")
    return Context.from_settings(load_settings(env={
        "DMP_HOME": str(tmp_path), "DMP_DATABASE_URL": url,
        "DMP_CONFIG": str(tmp_path / "dmp.toml")}))


@pytest.fixture
def sctx(tmp_path, sqlite_template):  # noqa: ANN001, ANN201
    ctx = context(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3"))
    yield ctx
    ctx.engine.dispose()


def quarantined(ctx: Context, source: str, *blobs: bytes) -> list[int]:
    """Ingest ``blobs`` from ``source`` (one batch): each is quarantined, no dossier found."""
    ids = ingest(ctx, *blobs, source=source)
    for import_id in ids:
        row = show_import(ctx.engine, import_id)
        assert (row["status"], row["error_code"]) in (
            ("quarantined", "IDENTITY_UNKNOWN_PATIENT"), ("quarantined", "IDENTITY_INCOMPLETE"))
    return ids


def dossier_of(ctx: Context, nir_: str) -> int:
    with ctx.engine.connect() as conn:
        return find_by_ins(conn, nir_).id


# -- the cases, on SQLite ----------------------------------------------------------------------
def test_a_quarantined_import_is_found_by_what_names_the_dossier(sctx) -> None:  # noqa: ANN001
    """Results wait for dossiers that do not exist yet; then Jérôme's dossier is created by
    hand (`dossier create`), Maëlle's by the Lyon lab's INS-bearing result (auto-created,
    taught the lab's IPP), and the CHU's GAM gives it the CHU's IPP (ADT^A31). Found: what
    names a dossier as the identity rules would; not found: the same number under another
    facility's or source's namespace."""
    by_ins, same_lab, other_facility = quarantined(
        sctx, "labo-lyon", oru("LABO-LYON", INS_ONLY.format(nir=NIR_JEROME), 1),
        oru("LABO-LYON", IPP_ONLY.format(ipp=LYON_IPP), 2),
        # the same source, another facility: 'LABO' is each facility's unless declared shared
        oru("LABO-VILLEURBANNE", IPP_ONLY.format(ipp=LYON_IPP), 3))
    other_lab, other_chu = quarantined(
        # another laboratory's 'LABO' 770041: its own numbering, another patient
        sctx, "labo-sud", oru("LABO-SUD", IPP_ONLY.format(ipp=LYON_IPP), 4),
        # a laboratory elsewhere calling its numbers 'CHU' too is not the CHU de Rennes
        oru("LABO-SUD", IPP_ONLY.format(ipp=CHU_IPP), 6))
    # the CHU's lab and GAM share 'CHU' (declared): the GAM's A31 teaches the lab's IPP
    (shared,) = quarantined(sctx, "chu-rennes", oru("LABO_CHU", IPP_ONLY.format(ipp=CHU_IPP), 5))
    nothing_yet = resolvable_imports(sctx)
    assert (nothing_yet.found, nothing_yet.scanned) == ({}, 6)

    from pipelines.dossier_admin import DossierInput, create_dossiers

    (his,) = create_dossiers(sctx.engine, [DossierInput(
        ins=NIR_JEROME, ins_oid=INS, family="Rousseau", given="Jérôme",
        birth_date="1979-02-13", sex="M")])
    for message, source in ((oru, "labo-lyon"), (a31, "chu-rennes")):
        facility, ipp = ("LABO-LYON", LYON_IPP) if message is oru else ("CHU_GAM", CHU_IPP)
        (made,) = ingest(sctx, message(facility, WITH_INS.format(nir=NIR_MAELLE, ipp=ipp), 7),
                         source=source)
        assert show_import(sctx.engine, made)["status"] == "deposited"
    hers = dossier_of(sctx, NIR_MAELLE)
    with sctx.engine.connect() as conn:
        assert {r.authority for r in conn.execute(select(patient_identifiers).where(
            patient_identifiers.c.patient_id == hers))} == {"LABO@LABO-LYON",
                                                            "CHU@domain:chu-rennes"}
    assert resolvable_imports(sctx).found == {by_ins: [his], same_lab: [hers],
                                              shared: [hers]}
    assert waiting_for(sctx, [hers, his]) == {his: [by_ins], hers: [same_lab, shared]}
    for import_id in (by_ins, same_lab, other_facility, other_lab, shared, other_chu):
        assert show_import(sctx.engine, import_id)["status"] == "quarantined"  # a hint only


def test_the_listing_names_the_dossier_here_and_over_http(sctx, monkeypatch) -> None:  # noqa: ANN001
    """Two laboratories' results wait; one dossier comes, by the INS result of the lab of
    the first; the second still names no one. The listing shows the first with the dossier
    id, and nothing of the patient (no name, no INS, no IPP); the API the same."""
    (lyon,) = quarantined(sctx, "labo-lyon", oru("LABO-LYON", IPP_ONLY.format(ipp=LYON_IPP), 1))
    (sud,) = quarantined(sctx, "labo-sud",
                         oru("LABO-SUD", IPP_ONLY.format(ipp="880052^^^LABO^PI"), 2))
    ingest(sctx, oru("LABO-LYON", WITH_INS.format(nir=NIR_MAELLE, ipp=LYON_IPP), 3),
           source="labo-lyon")
    hers = dossier_of(sctx, NIR_MAELLE)
    listed = resolvable_listing(sctx)
    assert [(r["id"], r["dossiers"]) for r in listed["imports"]] == [(lyon, [hers])]
    assert (listed["total"], listed["scanned"], listed["truncated"]) == (1, 2, False)
    text = json.dumps(listed, ensure_ascii=False)
    assert "770041" not in text and NIR_MAELLE not in text and "BIHAN" not in text
    from pipelines.filters import build_filter

    assert resolvable_listing(sctx, build_filter(sctx.engine, source="labo-sud"))["total"] == 0
    assert sud not in resolvable_imports(sctx).found
    # more quarantined imports than SCAN_LIMIT: the most recent are read, and it is said
    import pipelines.waiting as waiting

    monkeypatch.setattr(waiting, "SCAN_LIMIT", 1)
    found = resolvable_imports(sctx)
    assert (found.found, found.scanned, found.truncated) == ({}, 1, True)  # LABO-SUD's alone
    monkeypatch.undo()

    # the API: GET /admin/imports?resolvable=true as listed above; the rerun takes the same
    # selection (the filter narrows it, never widens it to every unknown patient)
    sctx.settings = dataclasses.replace(sctx.settings, api_secret="s" * 64)
    client = TestClient(create_app(sctx), headers={
        "Authorization": "Bearer " + mint(sctx.settings, "admin", subject="alice")})
    r = client.get("/admin/imports", params={"resolvable": "true",
                                             "code": "IDENTITY_UNKNOWN_PATIENT"})
    assert r.status_code == 200, r.text
    assert [(i["id"], i["dossiers"]) for i in r.json()["imports"]] == [(lyon, [hers])]
    r = client.post("/admin/imports/rerun", json={
        "resolvable": True, "filter": {"code": "IDENTITY_UNKNOWN_PATIENT"}, "wait": True,
        "reason": "IPP appris du laboratoire"})
    assert r.status_code == 200, r.text
    assert [i["id"] for i in r.json()["results"]] == [lyon]
    assert show_import(sctx.engine, lyon)["patient_id"] == hers
    assert show_import(sctx.engine, sud)["status"] == "quarantined"
    r = client.post("/admin/imports/rerun", json={"resolvable": True})
    assert (r.status_code, r.json()["error"]) == (400, "NOTHING_TO_RERUN")
    r = client.get("/admin/imports", params={"resolvable": "true", "code": "IDENTITY_UNKNOWN"})
    assert r.json()["total"] == 0 and "IDENTITY_UNKNOWN" in r.json()["notes"][0]


# -- the store rule on PostgreSQL --------------------------------------------------------------
@pytest.fixture
def pg_ctx(tmp_path, postgres_server):  # noqa: ANN001, ANN201
    ctx = context(tmp_path, postgres_server.new_database())
    yield ctx
    ctx.engine.dispose()


def test_the_ipp_match_on_postgresql(pg_ctx) -> None:  # noqa: ANN001
    """The CHU's shared 'CHU' IPP matches; a laboratory's own 'CHU' does not."""
    (lab,) = quarantined(pg_ctx, "chu-rennes", oru("LABO_CHU", IPP_ONLY.format(ipp=CHU_IPP), 1))
    (other,) = quarantined(pg_ctx, "labo-sud", oru("LABO-SUD", IPP_ONLY.format(ipp=CHU_IPP), 2))
    ingest(pg_ctx, oru("RIS_CHU", WITH_INS.format(nir=NIR_MAELLE, ipp=CHU_IPP), 3),
           source="chu-rennes")
    hers = dossier_of(pg_ctx, NIR_MAELLE)
    assert resolvable_imports(pg_ctx).found == {lab: [hers]}
    assert waiting_for(pg_ctx, [hers]) == {hers: [lab]}
    assert other not in resolvable_imports(pg_ctx).found


# -- the CLI -----------------------------------------------------------------------------------
def test_list_then_rerun_resolvable_from_the_cli(tmp_path, sqlite_template, home, monkeypatch,  # noqa: ANN001
                                                 no_prefect, capsys) -> None:  # noqa: F811
    """The operator lists what can now be filed, with the dossier, then reruns exactly
    that: Maëlle's lab result is filed; Jérôme's, whose dossier does not exist, is left."""
    url = migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3")
    (tmp_path / "dmp.toml").write_text(SETTINGS, encoding="utf-8")
    monkeypatch.setenv("DMP_DATABASE_URL", url)
    monkeypatch.setenv("DMP_CONFIG", str(tmp_path / "dmp.toml"))
    ctx = Context.from_settings(load_settings())
    try:
        hers, his = quarantined(ctx, "labo-lyon",
                                oru("LABO-LYON", IPP_ONLY.format(ipp=LYON_IPP), 1),
                                oru("LABO-LYON", IPP_ONLY.format(ipp="990063^^^LABO^PI"), 2))
        ingest(ctx, oru("LABO-LYON", WITH_INS.format(nir=NIR_MAELLE, ipp=LYON_IPP),
                        3), source="labo-lyon")
        maelle = dossier_of(ctx, NIR_MAELLE)
        assert cli.main(["imports", "list", "--resolvable", "--code",
                         "IDENTITY_UNKNOWN_PATIENT", "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        assert [(r["id"], r["dossiers"]) for r in listed["imports"]] == [(hers, [maelle])]
        assert cli.main(["imports", "list", "--resolvable"]) == 0
        out = capsys.readouterr().out
        assert "imports rerun --resolvable" in out and str(maelle) in out
        assert cli.main(["imports", "list", "--resolvable", "--group-by", "code"]) == 1
        assert "does not group" in capsys.readouterr().err
        assert cli.main(["imports", "rerun", "--resolvable", "--code",
                         "IDENTITY_UNKNOWN_PATIENT", "--as", "alice", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["reopen"] == [hers]
        row = show_import(ctx.engine, hers)
        assert (row["status"], row["patient_id"]) == ("deposited", maelle)
        assert show_import(ctx.engine, his)["status"] == "quarantined"  # not rerun
        assert cli.main(["imports", "rerun", "--resolvable"]) == 1
        assert "none of the 1 quarantined imports read names a dossier" in \
            capsys.readouterr().err
        # a mistyped code selects nothing: said as a typo, not as 'nothing resolvable'
        assert cli.main(["imports", "rerun", "--resolvable", "--code",
                         "IDENTITY_UNKNOWN_PATIENTS"]) == 1
        assert "no import has error code IDENTITY_UNKNOWN_PATIENTS" in capsys.readouterr().err
    finally:
        ctx.engine.dispose()


def test_the_advice_names_the_new_way() -> None:
    from pipelines.advice import advice

    said = advice("IDENTITY_UNKNOWN_PATIENT") or ""
    assert "imports list --resolvable" in said and "imports rerun --resolvable" in said
