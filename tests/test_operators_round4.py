"""Operators' round 4: what an operator (CLI, admin API, console) or a FHIR consumer still
tripped on. The CLI in-process (its Prefect flows as plain functions), the API app
in-process; SQLite and PostgreSQL where the store is touched."""

from __future__ import annotations

import json

from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.conftest import ROOT
from tests.test_admin import BAD
from tests.test_api import api  # noqa: F401 (a fixture)
from tests.test_operators_round import _audit, no_prefect, run, store  # noqa: F401 (fixtures)
from tests.test_pipeline import ingest, make_patient, oru

# -- FHIR: one biologist, two senders --------------------------------------------------------
CDA_CRBIO = ROOT / "samples" / "cda" / "01_crbio_labm_lipides_glycemie.xml"
NIR_LE_GOFF = "155112923219071"  # the sample CR-BIO's patient (test INS-NIR OID)
# the CR-BIO's validating biologist (AUTHEN, idNatPS 808751632788) as a lab's SIL names
# her in OBX-16: the bare RPPS under ASIP-SANTE-PS
CREATININE_VALIDATED = ("OBX|4|NM|2160-0^Créatinine [Masse/Volume] Sérum^LN||9.2|mg/L|"
                        "7.0-12.0|N|||F|||20240315083000+0100||08751632788^CHAUVET^"
                        "Bénédicte^^^MME^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^RPPS")
FR_CORE_TYPES = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"


def test_one_biologist_from_hl7v2_and_cda_is_one_practitioner_with_both_ids(  # noqa: ANN001
        ctx, home, database_url, monkeypatch, capsys) -> None:
    """A lab's ORU names the biologist by her 11-digit RPPS (OBX-16), a hospital's CR-BIO by
    her national PS id ('8' + RPPS, participant AUTHEN). The export had one Practitioner
    carrying the idNatPS alone, typed with the sender's text 'RPPS' when the HL7v2 result
    came first and untyped when the CDA did: a consumer looking her up by RPPS found
    nothing. Now one Practitioner, the same whichever came first, with FR Core's idNatPs
    and rpps identifiers."""
    monkeypatch.setenv("DMP_DATABASE_URL", database_url)
    make_patient(ctx, NIR_LE_GOFF, family="Le Goff", given="Jérôme", birth_date="1955-11-02",
                 sex="M")
    hl7 = oru("BIO-1", nir=NIR_LE_GOFF, family="LE GOFF", given="Jérôme", birth="19551102",
              sex="M", extra_obx=CREATININE_VALIDATED)
    done = ingest(ctx, hl7, CDA_CRBIO.read_bytes())
    assert len(done) == 2
    code, out, _ = run(capsys, "dossier", "export", NIR_LE_GOFF, "--as", "carol")
    assert code == 0
    bundle = json.loads(out)
    # the biologist's (since operators' round 5 the CR-BIO's prescriber is one too)
    found = [e["resource"] for e in bundle["entry"]
             if e["resource"]["resourceType"] == "Practitioner" and
             any(i["value"] in ("808751632788", "08751632788")
                 for i in e["resource"]["identifier"])]
    assert len(found) == 1, [p["identifier"] for p in found]
    assert found[0]["identifier"] == [
        {"type": {"coding": [{"system": FR_CORE_TYPES, "code": "IDNPS"}]},
         "system": "urn:oid:1.2.250.1.71.4.2.1", "value": "808751632788"},
        {"type": {"coding": [{"system": FR_CORE_TYPES, "code": "RPPS"}]},
         "system": "https://rpps.esante.gouv.fr", "value": "08751632788"}]
    url = next(e["fullUrl"] for e in bundle["entry"] if e["resource"] is found[0])
    validated = {e["resource"]["code"]["coding"][0]["code"] for e in bundle["entry"]
                 if e["resource"]["resourceType"] == "Observation" and
                 {"reference": url} in [{"reference": p.get("reference")}
                                        for p in e["resource"].get("performer", [])]}
    assert "2160-0" in validated and len(validated) > 1  # the ORU's and the CR-BIO's


# -- filters: a typo is said, not shown as an empty ledger ------------------------------------
def test_a_status_typo_is_refused_and_a_status_s_case_ignored(store, capsys) -> None:  # noqa: ANN001, F811
    """`--status quarantine` (for 'quarantined') or `--status error` selected nothing: an
    empty list, 'rerun' refusing 'nothing to rerun' at best, a script's 'all clear' at worst.
    The ledger's statuses are a closed set: another word is a user error naming them, and
    'Failed' is 'failed'."""
    _, (dep, warned, quar, fail) = store
    for argv in (("imports", "list", "--status", "quarantine"),
                 ("imports", "stats", "--status", "error"),
                 ("imports", "rerun", "--status", "echoue")):
        code, out, err = run(capsys, *argv)
        assert code == 1, argv
        assert err.startswith("dmp-ingest: unknown status ") and "quarantined" in err, argv
        assert err.count("\n") == 1 and out == "", argv
    code, out, _ = run(capsys, "imports", "list", "--status", " Failed ", "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [fail]


def test_a_channel_or_stage_no_import_had_is_said(store, capsys) -> None:  # noqa: ANN001, F811
    """`--channel hl7` (the ledger says 'file', 'mllp'...) or `--stage parsing` ('parse')
    listed nothing and said nothing, as `--code` did before round 3; a rerun by such a
    filter is refused as one by an unknown code is."""
    _, (dep, warned, quar, fail) = store
    code, out, err = run(capsys, "imports", "list", "--channel", "hl7", "--json")
    assert code == 0 and json.loads(out) == []
    assert err == "dmp-ingest: no import came in through channel 'hl7' (the ledger has: " \
        "file)\n"
    code, out, err = run(capsys, "imports", "rerun", "--stage", "parsing")
    assert code == 1 and out == ""
    assert "no import stopped at stage 'parsing'" in err and "normalize" in err
    code, out, err = run(capsys, "imports", "list", "--channel", "FILE", "--stage", "normalize",
                         "--json")  # as the ledger writes them, case ignored; no note
    assert code == 0 and [r["id"] for r in json.loads(out)] == [fail] and err == ""
    code, out, err = run(capsys, "imports", "list", "--channel", "mllp")
    assert code == 0 and "channel 'mllp'" in err


def test_admin_api_says_a_filter_s_typo(api) -> None:  # noqa: ANN001, F811
    ctx = api.ctx
    make_patient(ctx)
    ingest(ctx, oru("A1"), oru("A3", extra_obx=BAD))
    with api.client("admin", subject="alice") as c:
        r = c.get("/admin/imports", params={"status": "quarantine"})
        assert (r.status_code, r.json()["error"]) == (400, "BAD_FILTER")
        assert "quarantined" in r.json()["message"]
        page = c.get("/admin/imports", params={"channel": "hl7"}).json()
        assert page["total"] == 0 and "channel 'hl7'" in page["notes"][0]
        page = c.get("/admin/imports", params={"status": "FAILED"}).json()
        assert page["total"] == 1 and "notes" not in page
        r = c.post("/admin/imports/rerun", json={"filter": {"stage": "parsing"}})
        assert (r.status_code, r.json()["error"]) == (400, "NOTHING_TO_RERUN")
        assert "stage 'parsing'" in r.json()["message"]


# -- dossier create --from-csv: what spreadsheets write ----------------------------------------
def _dossiers(capsys, path) -> tuple[int, str, str]:  # noqa: ANN001
    return run(capsys, "dossier", "create", "--from-csv", str(path), "--json")


def test_dossiers_from_a_french_excel_csv_keep_their_ins(store, tmp_path, capsys) -> None:  # noqa: ANN001, F811
    """Excel 'CSV UTF-8' starts with a byte order mark: the first column read as
    '\\ufeffins', every dossier was created without its INS (and again at the next run, the
    existing ones found by INS). A French Excel separates with ';': one column, rows of empty
    fields refused as 'family and given names are required', no line said."""
    ctx, _ = store
    path = tmp_path / "patients.csv"
    path.write_bytes("ins;family;given;birth_date;sex\r\n"
                     "268036912354128;Lefèvre;Hélène;1968-03-14;F\r\n"
                     "155112923219071;Le Goff;Jérôme;1955-11-02;M\r\n".encode("utf-8-sig"))
    code, out, err = _dossiers(capsys, path)
    assert code == 0, err
    created = json.loads(out)["created"]
    assert len(created) == 2
    code, out, _ = run(capsys, "dossier", "show", "268036912354128", "--json")
    assert code == 0 and json.loads(out)["patient"]["id"] == created[0]
    code, out, _ = _dossiers(capsys, path)  # the same file again: nothing new
    assert code == 0 and json.loads(out)["created"] == []


def test_a_bad_dossier_csv_names_its_line_and_creates_none(store, tmp_path, capsys) -> None:  # noqa: ANN001, F811
    path = tmp_path / "patients.csv"
    path.write_text("ins,family,given,birth_date,sex\n"
                    "268036912354128,Lefèvre,Hélène,1968-03-14,F\n"
                    "\n"
                    "155112923219071,Le Goff,Jérôme,1955-02-30,M\n", encoding="utf-8")
    code, out, err = _dossiers(capsys, path)
    assert (code, out) == (1, "")
    assert err == "dmp-ingest: patients.csv line 4: birth date is not a calendar date\n"
    assert "Jérôme" not in err and "155112923219071" not in err  # no patient data
    path.write_text("nir,nom,prenom,naissance,sexe\n268036912354128,Lefèvre,Hélène,"
                    "1968-03-14,F\n", encoding="utf-8")
    code, out, err = _dossiers(capsys, path)
    assert code == 1 and "line 1: no column family, given, birth_date, sex" in err
    path.write_bytes("ins,family,given,birth_date,sex\n268036912354128,Lef\xe8vre,H\xe9l\xe8ne,"
                     "1968-03-14,F\n".encode("latin-1"))
    code, out, err = _dossiers(capsys, path)
    assert code == 1 and "not UTF-8" in err
    code, out, _ = run(capsys, "dossier", "show", "268036912354128")
    assert code == 1  # none of them created


# -- a rerun of an id not in the ledger --------------------------------------------------------
def test_a_rerun_of_one_mistyped_id_is_said_not_a_traceback(store, capsys) -> None:  # noqa: ANN001, F811
    """`imports rerun 987654` (one id, not in the ledger) wrote an audit row naming import
    987654: PostgreSQL's foreign key refused it, and the admin got a traceback. Now: exit 1
    'no import 987654', and the audit trail names only the imports that exist."""
    ctx, (_, _, _, fail) = store
    before = _audit(ctx)
    code, out, err = run(capsys, "imports", "rerun", "987654", "--as", "carol")
    assert code == 1 and err == "dmp-ingest: no import 987654\n"
    assert "not in the ledger: 987654" in out
    assert _audit(ctx) == before  # nothing was rerun: nothing audited
    code, out, err = run(capsys, "imports", "rerun", str(fail), "987654", "--as", "carol",
                         "--reason", "ticket 4602")
    assert code == 1 and "outcomes: 1 failed" in out
    assert _audit(ctx)[-1] == ("carol", "import.rerun", fail, "ticket 4602")


def test_admin_api_rerun_of_ids_not_in_the_ledger_is_404(api) -> None:  # noqa: ANN001, F811
    """POST /admin/imports/rerun {"ids": [987654]} answered 500 INTERNAL_ERROR on
    PostgreSQL (the audit row's foreign key), and 202 'queued' on SQLite for nothing."""
    ctx = api.ctx
    make_patient(ctx)
    (fail,) = ingest(ctx, oru("A3", extra_obx=BAD))
    with api.client("admin", subject="alice") as c:
        for body in ({"ids": [987654]}, {"ids": [987654, 987655], "wait": True}):
            r = c.post("/admin/imports/rerun", json=body)
            assert (r.status_code, r.json()["error"]) == (404, "NOT_FOUND"), body
            assert r.json()["message"].startswith("no import 987654")
        r = c.post("/admin/imports/rerun", json={"ids": [fail, 987654], "wait": True,
                                                 "reason": "ticket 4603"})
        assert r.status_code == 200 and r.json()["unknown"] == [987654]
        assert r.json()["outcomes"] == {"failed": 1}
    assert _audit(ctx)[-1] == ("alice", "import.rerun", fail, "ticket 4603")


# -- the audit trail names who acted, for the rerun an action starts too -----------------------
def test_assign_and_edit_as_someone_audit_their_rerun_under_that_name(
        store, tmp_path, capsys, monkeypatch) -> None:  # noqa: ANN001, F811
    """`imports assign ID --as carol` (and `imports edit --as carol`) audited the assignment
    under carol and the rerun it starts under DMP_ADMIN or the OS user: the trail said
    someone else replayed the patient's message. Both are carol's now, with her reason."""
    from tests.test_pipeline import NIR_2

    monkeypatch.setenv("DMP_ADMIN", "svc-batch")
    ctx, (_, _, quar, fail) = store
    santoni = make_patient(ctx, NIR_2, family="Santoni", given="Ange",
                           birth_date="1988-10-02", sex="M")
    code, out, err = run(capsys, "imports", "assign", str(quar), "--patient", str(santoni),
                         "--reason", "ticket 4711: identité vérifiée", "--as", "carol")
    assert code == 0, err
    assert _admin_actions(ctx)[-2:] == [
        ("carol", "import.assign", quar, "ticket 4711: identité vérifiée"),
        ("carol", "import.rerun", quar, "ticket 4711: identité vérifiée")]
    fixed = tmp_path / "m3.hl7"
    fixed.write_bytes(oru("M3", value="6.4", filler="CMD-3003"))
    code, out, err = run(capsys, "imports", "edit", str(fail), "--from-file", str(fixed),
                         "--reason", "ticket 4712", "--as", "dave")
    assert code == 0, err
    assert [(a, act) for a, act, _, _ in _admin_actions(ctx)[-2:]] == [
        ("dave", "import.edit"), ("dave", "import.rerun")]


def _admin_actions(ctx) -> list[tuple]:  # noqa: ANN001
    """The audit rows of admins' actions on imports (processing writes its own)."""
    return [row for row in _audit(ctx) if row[1] in ("import.assign", "import.edit",
                                                     "import.rerun", "import.discard")]


# -- the admin API resolves what it lists: assign, discard ------------------------------------
def test_admin_api_assigns_a_quarantined_import_and_discards_a_failed_one(api) -> None:  # noqa: ANN001, F811
    """The admin API listed quarantined and failed imports and could rerun them, but not
    resolve them: assign and discard were the CLI's and the console's only (a script or
    another console had no way to file a quarantined import). Same rules, same audit."""
    from tests.test_admin import UNKNOWN
    from tests.test_pipeline import NIR_2

    ctx = api.ctx
    make_patient(ctx)
    dep, quar, fail = ingest(ctx, oru("Q1"), oru("Q2", local_id="LAB00077", **UNKNOWN),
                             oru("Q3", extra_obx=BAD))
    santoni = make_patient(ctx, NIR_2, family="Santoni", given="Ange",
                           birth_date="1988-10-02", sex="M")
    with api.client("admin", subject="alice") as c:
        r = c.post(f"/admin/imports/{quar}/assign",
                   json={"patient": "279035121518989", "reason": " "})
        assert (r.status_code, r.json()["error"]) == (422, "INVALID_REQUEST")
        r = c.post(f"/admin/imports/{quar}/assign",
                   json={"patient": "188102B17295166", "reason": "ticket 88"})
        assert (r.status_code, r.json()["error"]) == (404, "NOT_FOUND")
        assert "188102B17295166" not in r.text  # a reference is patient data
        r = c.post(f"/admin/imports/{dep}/assign",
                   json={"patient": str(santoni), "reason": "ticket 88"})
        assert (r.status_code, r.json()["error"]) == (409, "ACTION_REFUSED")
        assert "not quarantined" in r.json()["message"]
        r = c.post(f"/admin/imports/{quar}/assign",
                   json={"patient": NIR_2, "reason": "ticket 88: identité vérifiée",
                         "wait": True})
        assert r.status_code == 200, r.text
        done = r.json()
        assert (done["patient_id"], done["outcomes"]) == (santoni, {"deposited": 1})
        r = c.post(f"/admin/imports/{fail}/discard", json={"reason": "resent as Q3 v2"})
        assert r.json() == {"import": fail, "discarded": True}
        r = c.post(f"/admin/imports/{fail}/discard", json={"reason": "again"})
        assert r.json() == {"import": fail, "discarded": False}
        r = c.post(f"/admin/imports/{dep}/discard", json={"reason": "x"})
        assert (r.status_code, r.json()["error"]) == (409, "ACTION_REFUSED")
        r = c.post("/admin/imports/987654/discard", json={"reason": "x"})
        assert (r.status_code, r.json()["error"]) == (404, "NOT_FOUND")
    with api.client("sender", source="lab") as c:
        r = c.post(f"/admin/imports/{dep}/discard", json={"reason": "x"})
        assert (r.status_code, r.json()["error"]) == (403, "WRONG_SCOPE")
    assert _admin_actions(ctx)[-2:] == [
        ("alice", "import.assign", quar, "ticket 88: identité vérifiée"),
        ("alice", "import.discard", fail, "resent as Q3 v2")]


def test_the_console_says_a_filter_s_typo_beside_the_empty_list(api) -> None:  # noqa: ANN001, F811
    """The console's channel and code fields are typed: 'hl7' or a code from a ticket
    showed 'nothing' as a filter that matched no failure would; it now says which word no
    import ever had, as the CLI and the API do."""
    import html

    from tests.test_console import _login

    make_patient(api.ctx)
    ingest(api.ctx, oru("C1"), oru("C3", extra_obx=BAD))
    with _login(api, "admin", subject="alice") as c:
        page = html.unescape(c.get("/console/imports?channel=hl7&code=OBX_BAD_NUMBR").text)
        assert 'id="filter-note-1">no import has error code OBX_BAD_NUMBR<' in page
        assert "no import came in through channel 'hl7' (the ledger has: file)" in page
        page = c.get("/console/imports?channel=FILE&code=obx_bad_number").text
        assert 'id="import-' in page and "filter-note" not in page


def test_a_page_past_what_the_database_counts_is_a_422_not_a_500(api) -> None:  # noqa: ANN001, F811
    """A patient's script paging its audit trail with a runaway offset
    (?offset=99999999999999999999) got 500 INTERNAL_ERROR: the number reached the database's
    OFFSET. Offsets are bounded as ids are (BIGINT): 422 INVALID_REQUEST, saying where."""
    from sqlalchemy import select

    from dossiers.schema import patients

    with api.ctx.engine.connect() as conn:
        patient = conn.execute(select(patients.c.id).order_by(patients.c.id)).scalar()
    with api.client("patient", patient=str(patient)) as c:
        for path in ("audit", "entries"):
            r = c.get(f"/dossiers/{patient}/{path}", params={"offset": "99999999999999999999"})
            assert (r.status_code, r.json()["error"]) == (422, "INVALID_REQUEST"), path
            assert "offset" in r.json()["message"]
        r = c.get(f"/dossiers/{patient}/audit", params={"offset": 0, "limit": 5})
        assert r.status_code == 200


def test_the_patient_s_ins_is_typed_as_fr_core_types_it() -> None:
    """The INS went out typed by a text ('INS-NIR'): a reader selecting FR Core's
    identifier[INS-NIR] slice (type fr-core-cs-v2-0203#INS-NIR) found no INS. The coded type
    now, the text kept; an INS-NIA is 'temp' as FR Core has it; a NIR used as a social
    security number (OID .4.13) is no INS: its text alone."""
    from dossiers.fhir import to_bundle
    from tests.test_fhir_export import check_bundle

    patient = {"id": 7, "ins": "268036912354128", "family": "Lefèvre", "given": "Hélène",
               "birth_date": "1968-03-14", "sex": "F"}
    found = {}
    for oid in ("1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.13"):
        bundle = to_bundle({**patient, "ins_oid": oid}, [])
        check_bundle(bundle)
        found[oid] = bundle["entry"][0]["resource"]["identifier"][0]
    assert found["1.2.250.1.213.1.4.8"] == {
        "use": "official", "system": "urn:oid:1.2.250.1.213.1.4.8", "value": "268036912354128",
        "type": {"coding": [{"system": FR_CORE_TYPES, "code": "INS-NIR"}], "text": "INS-NIR"}}
    assert found["1.2.250.1.213.1.4.9"]["use"] == "temp"
    assert found["1.2.250.1.213.1.4.9"]["type"]["coding"][0]["code"] == "INS-NIA"
    assert found["1.2.250.1.213.1.4.13"]["type"] == {"text": "NIR"}


def test_dossier_show_as_someone_is_audited_under_that_name(store, capsys) -> None:  # noqa: ANN001, F811
    """Every other command that reads patient data takes --as (imports show --raw, dossier
    export); `dossier show` refused it (exit 2), and its read was traced under DMP_ADMIN or
    the OS user whoever the operator was."""
    from sqlalchemy import select

    from dossiers.schema import audit_log
    from tests.test_pipeline import NIR

    ctx, _ = store
    code, _, err = run(capsys, "dossier", "show", NIR, "--as", "carol", "--json")
    assert code == 0, err
    with ctx.engine.connect() as conn:
        last = conn.execute(select(audit_log.c.actor, audit_log.c.action)
                            .order_by(audit_log.c.id.desc())).first()
    assert tuple(last) == ("carol", "dossier.show")


def test_admin_api_does_not_wait_for_a_rerun_too_big_for_a_request(api, monkeypatch) -> None:  # noqa: ANN001, F811
    """{"filter": ..., "wait": true} over thousands of imports processed them all inside the
    request: past any client or proxy timeout, and a client that retried asked for the
    same rerun again. Beyond MAX_WAITED: 400 TOO_MANY_TO_WAIT, nothing reopened or
    audited; without wait the workers take them (202)."""
    from api import admin

    monkeypatch.setattr(admin, "MAX_WAITED", 2)
    ctx = api.ctx
    make_patient(ctx)
    failed = ingest(ctx, *(oru(f"W{n}", filler=f"CMD-W{n}", extra_obx=BAD) for n in range(3)))
    before = _admin_actions(ctx)
    with api.client("admin", subject="alice") as c:
        body = {"filter": {"code": "OBX_BAD_NUMBER"}, "wait": True}
        r = c.post("/admin/imports/rerun", json=body)
        assert (r.status_code, r.json()["error"]) == (400, "TOO_MANY_TO_WAIT")
        assert r.json()["message"].startswith("3 imports: too many")
        assert _admin_actions(ctx) == before
        assert c.get("/admin/imports/stats").json()["by_status"]["failed"] == 3
        r = c.post("/admin/imports/rerun", json={"ids": failed[:2], "wait": True})
        assert r.status_code == 200 and r.json()["outcomes"] == {"failed": 2}
        r = c.post("/admin/imports/rerun", json={**body, "wait": False})
        assert r.status_code == 202


def test_the_console_finds_a_ticket_s_file_and_the_imports_with_warnings(api) -> None:  # noqa: ANN001, F811
    """A sender's ticket names a file; filed-with-warnings imports need a look: the CLI and
    the API filter by both (and by stage), the console's form could not, so its bulk rerun
    could not either."""
    import re

    from tests.test_console import _csrf, _login
    from tests.test_operators_round import DEBUGGING

    make_patient(api.ctx)
    items = [Received(b, "lab", "file", file_name=n) for b, n in (
        (oru("F1"), "CR_2026_11_Lefèvre.hl7"), (DEBUGGING, "debug.hl7"),
        (oru("F3", extra_obx=BAD), "CR_2026_12.hl7"))]
    ok, warned, bad = [i for r in intake(api.ctx.engine, api.ctx.archive, items)
                       for i in r.message_ids]
    drain(api.ctx)

    def ids(page: str) -> list[int]:
        return [int(i) for i in re.findall(r'<tr class="row-\w+" id="import-(\d+)"', page)]

    with _login(api, "admin", subject="alice") as c:
        assert sorted(ids(c.get("/console/imports?file=cr_2026_*").text)) == [ok, bad]
        assert ids(c.get("/console/imports?warnings=1").text) == [warned]
        assert ids(c.get("/console/imports?stage=normalize").text) == [bad]
        page = c.get("/console/imports?file=CR_2026_1%3F.hl7&stage=normalize").text
        assert ids(page) == [bad] and 'name="file" value="CR_2026_1?.hl7"' in page
        r = c.post("/console/bulk-rerun", data={"csrf": _csrf(page), "file": "CR_2026_1?.hl7",
                                                "stage": "normalize"})
        assert r.status_code == 200 and 'name="file" value="CR_2026_1?.hl7"' in r.text


def test_a_time_window_that_holds_nothing_is_refused(store, capsys) -> None:  # noqa: ANN001, F811
    """`--since 2026-11-25 --until 2026-11-24` (swapped), or `--until 7d` meant as 'the last
    7 days' beside `--since 24h`: an empty window, listed as 'no import', read as 'no
    failure'. Refused, saying which bound is which."""
    for argv in (("imports", "list", "--since", "2026-11-25", "--until", "2026-11-24"),
                 ("imports", "rerun", "--status", "failed", "--since", "24h", "--until", "7d"),
                 ("imports", "stats", "--since", "2026-11-25T08:00", "--until",
                  "2026-11-25T08:00")):
        code, out, err = run(capsys, *argv)
        assert code == 1 and out == "", argv
        assert "until (" in err and "is not after since (" in err, argv
    code, out, _ = run(capsys, "imports", "list", "--since", "7d", "--until", "2999-01-01",
                       "--json")
    assert code == 0 and len(json.loads(out)) == 4


def test_messages_say_what_was_wrong_with_what_was_given(store, tmp_path, capsys) -> None:  # noqa: ANN001, F811
    """`imports show ID --output FILE` without --raw exited 0 and wrote nothing (the option
    was silently ignored); `representative revoke --reason ok` was told 'a reason is
    required' though one was given (it is too short)."""
    from tests.test_pipeline import NIR

    _, (_, _, _, fail) = store
    target = tmp_path / "m3.hl7"
    code, out, err = run(capsys, "imports", "show", str(fail), "--output", str(target))
    assert (code, out) == (1, "") and "give --raw" in err and not target.exists()
    code, _, err = run(capsys, "imports", "show", str(fail), "--raw", "--output", str(target))
    assert code == 0 and target.read_bytes().startswith(b"MSH|")
    code, _, err = run(capsys, "dossier", "representative", "add", NIR, "--account", "m-dupont",
                       "--family", "Dupont", "--given", "Élise", "--quality", "tuteur")
    assert code == 0, err
    code, _, err = run(capsys, "dossier", "representative", "revoke", NIR, "--account",
                       "m-dupont", "--reason", "ok")
    assert code == 1 and "3 characters or more" in err


def test_a_cda_biologist_with_a_local_id_first_is_found_by_her_national_id() -> None:
    """A CR-BIO's AUTHEN participant with two ids, the hospital's own first, the national PS
    id second: the Practitioner was keyed and identified by the local id alone, two
    Practitioners beside the same biologist's HL7v2 result, none findable by RPPS."""
    from dossiers.fhir import to_bundle
    from tests.test_fhir_export import PATIENT, _row, by_entry_id, check_bundle

    cda = {"validated_by": {"ids": ["1.2.250.1.999.3.7^BIO-0042",
                                    "1.2.250.1.71.4.2.1^808751632788"]}}
    hl7 = {"responsible_observer": {"name": "MME Bénédicte CHAUVET", "id": {
        "id": "08751632788", "authority": "ASIP-SANTE-PS", "type": "RPPS"}}}
    bundle = to_bundle(PATIENT, [_row(1, details=cda), _row(2, code="2823-3", details=hl7)])
    check_bundle(bundle)
    refs = {n: r["performer"][-1]["reference"] for n, r in by_entry_id(bundle).items()}
    assert refs[1] == refs[2]
    (practitioner,) = [e["resource"] for e in bundle["entry"]
                       if e["resource"]["resourceType"] == "Practitioner"]
    assert [i["value"] for i in practitioner["identifier"]] == ["808751632788", "08751632788"]


def test_an_operator_creating_dossiers_is_in_their_audit_trails(store, tmp_path, capsys) -> None:  # noqa: ANN001, F811
    """Every write to a dossier is in the trail its patient reads, but `dossier create` (one,
    or a CSV of thousands) wrote none: who opened the dossier, and when, was nowhere. One
    'dossier.create' row per dossier created (none for one skipped as existing), under
    --as, in the creating transaction; the trail's hash chain stays intact."""
    from sqlalchemy import select

    from dossiers.schema import audit_log

    ctx, _ = store
    code, out, err = run(capsys, "dossier", "create", "--ins", "188102B17295165", "--family",
                         "Santoni", "--given", "Ange", "--birth-date", "1988-10-02", "--sex",
                         "M", "--as", "carol", "--json")
    assert code == 0, err
    (santoni,) = json.loads(out)["created"]
    path = tmp_path / "patients.csv"
    path.write_text("ins,family,given,birth_date,sex\n"
                    "188102B17295165,Santoni,Ange,1988-10-02,M\n"
                    "268036912354128,Lefèvre,Hélène,1968-03-14,F\n", encoding="utf-8")
    code, out, err = run(capsys, "dossier", "create", "--from-csv", str(path), "--as", "dave",
                         "--json")
    (lefevre,) = json.loads(out)["created"]
    with ctx.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(
            select(audit_log.c.actor, audit_log.c.patient_id, audit_log.c.details)
            .where(audit_log.c.action == "dossier.create").order_by(audit_log.c.id))]
    assert rows == [("carol", santoni, {"ins": True}), ("dave", lefevre, {"ins": True})]
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0 and "intact" in out


def test_admin_api_reads_what_was_received_and_audits_it(api) -> None:  # noqa: ANN001, F811
    """To fix a failed import one reads it: `imports show --raw` and the console do, with the
    read audited; the admin API had no way to. GET /admin/imports/{id}/raw: the bytes as
    received, their media type, the read in the audit trail with the reason."""
    from sqlalchemy import select

    from dossiers.schema import audit_log, imports

    ctx = api.ctx
    make_patient(ctx)
    sent = oru("R3", extra_obx=BAD)
    (fail,) = ingest(ctx, sent)
    with api.client("admin", subject="alice") as c:
        r = c.get(f"/admin/imports/{fail}/raw", params={"reason": "ticket 4720"})
        assert r.status_code == 200 and r.content == sent
        assert r.headers["content-type"] == "x-application/hl7-v2+er7"
        assert r.headers["x-dmp-charset"] == "utf-8"
        with ctx.engine.connect() as conn:
            last = conn.execute(select(audit_log.c.actor, audit_log.c.action,
                                       audit_log.c.import_id, audit_log.c.reason)
                                .order_by(audit_log.c.id.desc())).first()
        assert tuple(last) == ("alice", "import.raw", fail, "ticket 4720")
        r = c.get("/admin/imports/987654/raw")
        assert (r.status_code, r.json()["error"]) == (404, "NOT_FOUND")
        with ctx.engine.connect() as conn:
            sha = conn.execute(select(imports.c.sha256).where(imports.c.id == fail)).scalar()
        ctx.archive.path(sha).unlink()
        r = c.get(f"/admin/imports/{fail}/raw")
        assert (r.status_code, r.json()["error"]) == (500, "ARCHIVE_MISSING")


def test_a_dossier_auto_created_by_a_message_is_in_its_audit_trail(ctx) -> None:  # noqa: ANN001
    """With auto-creation on (as Mon Espace Santé opens one for every insured person), the
    first message of an unknown INS opened the dossier and wrote nothing about it in the
    trail the patient reads: the opening is there now, under the sender's source and the
    import that caused it."""
    import dataclasses

    from pipelines.process import Context
    from pipelines.report import show_import
    from tests.test_admin import UNKNOWN

    auto = Context(dataclasses.replace(ctx.settings, auto_create=True), ctx.engine,
                   ctx.archive)
    (imp,) = ingest(auto, oru("N1", local_id="LAB00078", **UNKNOWN))
    info = show_import(ctx.engine, imp)
    assert info["status"] == "deposited"
    opened = [(a, act, i) for a, act, i, _ in _audit(ctx) if act == "dossier.create"]
    assert opened == [("lab", "dossier.create", imp)]


def test_the_console_s_bulk_rerun_of_nothing_says_so_at_once(api) -> None:  # noqa: ANN001, F811
    """A bulk rerun whose filter matched nothing (a typed code, a past window) asked to
    confirm the rerun of 0 imports, then started a job of nothing: 'done'. Refused at once
    now, saying why the filter matched nothing when it can."""
    import html

    from tests.test_console import _csrf, _login

    make_patient(api.ctx)
    ingest(api.ctx, oru("B1"), oru("B3", extra_obx=BAD))
    with _login(api, "admin", subject="alice") as c:
        csrf = _csrf(c.get("/console/imports").text)
        r = c.post("/console/bulk-rerun", data={"csrf": csrf, "code": "OBX_BAD_NUMBR"})
        page = html.unescape(r.text)
        assert r.status_code == 400 and "NO_MATCH" in page
        assert "no import has error code OBX_BAD_NUMBR" in page
        assert "/console/imports?code=OBX_BAD_NUMBR" in page  # back to the same filter
        r = c.post("/console/bulk-rerun", data={"csrf": csrf, "code": "OBX_BAD_NUMBER"})
        assert r.status_code == 200 and 'name="confirmed"' in r.text
