"""Operators' round 5: what an operator (CLI, admin API, console) or a FHIR consumer still
tripped on. The CLI in-process (its Prefect flows as plain functions), the API app
in-process; SQLite and PostgreSQL where the store is touched."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from dossiers.fhir import to_bundle
from pipelines.report import show_import
from tests.test_admin import BAD
from tests.test_api import api  # noqa: F401 (a fixture)
from tests.test_fhir_export import PATIENT, _fr_core_id, _resource, _row, by_entry_id, check_bundle
from tests.test_operators_round import _audit, no_prefect, run, store  # noqa: F401 (fixtures)
from tests.test_pipeline import ingest, make_patient, oru


def _latin9(message: bytes) -> bytes:
    """An ORU of a French lab that writes ISO-8859-15 (MSH-18 '8859/15', PAM France's
    default), accents and the euro sign as that charset has them."""
    return message.decode("utf-8").replace("UNICODE UTF-8", "8859/15").encode("iso-8859-15")


# -- the admin API edits as the CLI and the console do ----------------------------------------
def test_admin_api_edits_a_failed_message_into_a_new_import(api) -> None:  # noqa: ANN001, F811
    """The admin API could list a failed import, read its bytes and rerun it, but not
    correct it: `imports edit` was the CLI's and the console's only. POST
    /admin/imports/{id}/edit takes the corrected text (stored in the message's own charset,
    HL7v2 segments joined by CR) or its bytes in base64; the same rules (failed or
    quarantined only, a change required), the original kept, the same audit."""
    ctx = api.ctx
    make_patient(ctx)
    dep, fail = ingest(ctx, oru("E1"), _latin9(oru("E2", extra_obx=BAD)))
    original = ctx.archive.get(show_import(ctx.engine, fail)["sha256"])
    text = original.decode("iso-8859-15").replace("||abc|", "||6.1|").replace("\r", "\n")
    with api.client("admin", subject="alice") as c:
        r = c.post(f"/admin/imports/{fail}/edit", json={"reason": "ticket 91"})
        assert (r.status_code, r.json()["error"]) == (400, "BAD_EDIT")
        r = c.post(f"/admin/imports/{fail}/edit", json={"content_base64": "pas du base64!"})
        assert (r.status_code, r.json()["error"]) == (400, "BAD_EDIT")
        r = c.post(f"/admin/imports/{fail}/edit",
                   json={"content_base64": base64.b64encode(original).decode()})
        assert (r.status_code, r.json()["error"]) == (409, "ACTION_REFUSED")
        assert "unchanged" in r.json()["message"]
        r = c.post(f"/admin/imports/{dep}/edit", json={"content": "MSH|^~\\&|X"})
        assert (r.status_code, r.json()["error"]) == (409, "ACTION_REFUSED")
        assert "only failed or quarantined" in r.json()["message"]
        # refused before the deposited message's bytes were read (no import.raw for it)
        assert not [a for a in _audit(ctx) if a[1] == "import.raw" and a[2] == dep]
        r = c.post("/admin/imports/987654/edit", json={"content": "MSH|^~\\&|X"})
        assert (r.status_code, r.json()["error"]) == (404, "NOT_FOUND")
        r = c.post(f"/admin/imports/{fail}/edit",
                   json={"content": text, "reason": "ticket 91: glycémie corrigée",
                         "wait": True})
        assert r.status_code == 200, r.text
        done = r.json()
    (new,) = done["new_imports"]
    assert (done["import"], done["outcomes"]) == (fail, {"deposited": 1})
    edited = ctx.archive.get(show_import(ctx.engine, new)["sha256"])
    # the lab's charset kept (a UTF-8 'é' in an 8859/15 message would be read as 'Ã©')
    assert edited == original.replace(b"||abc|", b"||6.1|")
    old = show_import(ctx.engine, fail)
    assert (old["status"], old["edited_as"]) == ("discarded", [new])
    assert ctx.archive.get(old["sha256"]) == original
    assert show_import(ctx.engine, new)["edited_from"] == fail
    assert ("alice", "import.edit", fail, "ticket 91: glycémie corrigée") in _audit(ctx)
    with api.client("sender", source="lab") as c:
        r = c.post(f"/admin/imports/{new}/edit", json={"content": "x"})
        assert (r.status_code, r.json()["error"]) == (403, "WRONG_SCOPE")


def test_admin_api_edit_without_wait_leaves_the_new_import_to_the_workers(api) -> None:  # noqa: ANN001, F811
    ctx = api.ctx
    make_patient(ctx)
    (fail,) = ingest(ctx, oru("E3", extra_obx=BAD))
    fixed = oru("E3", extra_obx=BAD.replace("||abc|", "||5.9|"))
    with api.client("admin", subject="bob") as c:
        r = c.post(f"/admin/imports/{fail}/edit",
                   json={"content_base64": base64.b64encode(fixed).decode()})
    assert r.status_code == 202, r.text
    (new,) = r.json()["new_imports"]
    assert r.json()["processing"] == "queued"
    assert show_import(ctx.engine, new)["status"] == "received"
    assert ctx.archive.get(show_import(ctx.engine, new)["sha256"]) == fixed


# -- FHIR: a laboratory's FINESS as FR Core types it -------------------------------------------
ID_NAT_ST = "urn:oid:1.2.250.1.71.4.2.2"
FINESS_SYSTEM = "https://finess.esante.gouv.fr"


def _lab(ident: str, kind: str | None, name: str = "LABORATOIRE CERBALLIANCE LYON") -> dict:
    return {"performer": name, "details": {"performing_organization": {"name": name, "id": {
        "id": ident, "authority": "1.2.250.1.71.4.2.2", "type": kind}}}}


def _organizations(*rows: dict) -> list[dict | None]:
    bundle = to_bundle(PATIENT, list(rows))
    check_bundle(bundle)
    res = by_entry_id(bundle)
    return [_resource(bundle, res[r["id"]]["performer"][0]["reference"]) for r in rows]


def test_a_laboratory_s_finess_is_typed_and_found_by_either_number() -> None:
    """An HL7v2 lab gives its FINESS bare in XON.10 with XON.7 'FINEG' under the structures'
    OID; a CDA gives the idNatSt ('1' + FINESS) under the same OID. The Organization carried
    the bare number under the idNatSt's system with the sender's word as type text (a FR
    Core reader found no finess and a wrong idNatSt), and the two forms were two
    Organizations. Now one, with FR Core's idNatSt (IDNST, official) and finess (FINEG)."""
    hl7, cda = _organizations(_row(1, **_lab("690041132", "FINEG")),
                              _row(2, code="2823-3", **_lab("1690041132", "FINEG")))
    assert hl7 is cda or hl7 == cda
    assert hl7["identifier"] == [
        _fr_core_id("IDNST", ID_NAT_ST, "1690041132", use="official"),
        _fr_core_id("FINEG", FINESS_SYSTEM, "690041132")]
    (siret,) = _organizations(_row(3, **_lab("377568501900017", None, "SELAS BIOLAB")))
    assert siret["identifier"] == [
        _fr_core_id("IDNST", ID_NAT_ST, "377568501900017", use="official"),
        _fr_core_id("SIRET", "https://sirene.fr", "77568501900017")]


def test_an_id_nat_st_without_its_register_type_or_an_unknown_form_is_not_guessed() -> None:
    """'1' + FINESS says FINESS, not whether géographique or juridique: without the
    sender's type only the idNatSt; a value of no known form stays as it was sent."""
    plain, odd, siren = _organizations(
        _row(1, **_lab("1750300550", None)),
        _row(2, code="2823-3", **_lab("ABC-42", "FINEG", "LABO DE QUARTIER")),
        _row(3, code="2951-2", **_lab("2775685019", None, "CENTRE DE BIOLOGIE")))
    assert plain["identifier"] == [_fr_core_id("IDNST", ID_NAT_ST, "1750300550",
                                               use="official")]
    assert odd["identifier"] == [{"type": {"text": "FINEG"}, "system": ID_NAT_ST,
                                  "value": "ABC-42"}]
    assert siren["identifier"] == [
        _fr_core_id("IDNST", ID_NAT_ST, "2775685019", use="official"),
        _fr_core_id("SIREN", "https://sirene.fr", "775685019")]


# -- FHIR: who ordered, as a ServiceRequest with its requester ---------------------------------
PRESCRIBER = ("10003791976^MARTIN^Paul^^^DR^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^"
              "RPPS")
IDNPS_MARTIN = _fr_core_id("IDNPS", "urn:oid:1.2.250.1.71.4.2.1", "810003791976")
RPPS_MARTIN = _fr_core_id("RPPS", "https://rpps.esante.gouv.fr", "10003791976")


def _report_order(bundle: dict) -> tuple[dict, dict]:
    (report,) = [e["resource"] for e in bundle["entry"]
                 if e["resource"]["resourceType"] == "DiagnosticReport"]
    (based,) = report["basedOn"]
    return report, _resource(bundle, based["reference"])


def test_a_lab_report_s_prescriber_is_its_service_request_s_requester(sqlite_ctx) -> None:  # noqa: ANN001
    """OBR-16 (or ORC-12 when OBR-16 is empty) names the prescriber with his RPPS; the
    normalizer kept it, the export dropped it, and basedOn was a logical reference to a
    ServiceRequest by placer number, resolved nowhere in the Bundle. Now the OBR's
    ServiceRequest (HL7 v2-to-FHIR) is in the Bundle: placer number, what was ordered,
    intent 'order', requester the prescriber's Practitioner with FR Core's ids."""
    from dossiers.export import load_dossier_rows

    make_patient(sqlite_ctx)
    with_obr16 = oru("P1").replace(
        b"|20240315083000+0100|||||||||", f"|20240315083000+0100|||||||||{PRESCRIBER}"
        .encode(), 1)
    with_orc12 = oru("P2", filler="CMD-2002").replace(
        b"ORC|RE|P-77|CMD-2002^LABO-LYON", f"ORC|RE|P-78|CMD-2002^LABO-LYON{'|' * 9}"
        f"{PRESCRIBER}".encode()).replace(b"OBR|1|P-77|", b"OBR|1|P-78|")
    ingest(sqlite_ctx, with_obr16)
    with sqlite_ctx.engine.connect() as conn:
        patient, rows = load_dossier_rows(conn, 1)
    bundle = to_bundle(patient, rows)
    check_bundle(bundle)
    report, order = _report_order(bundle)
    assert order["resourceType"] == "ServiceRequest"
    assert (order["status"], order["intent"]) == ("unknown", "order")
    assert order["identifier"][0]["value"] == "P-77"
    assert order["code"] == report["code"] and order["subject"] == report["subject"]
    prescriber = _resource(bundle, order["requester"]["reference"])
    assert prescriber["identifier"] == [IDNPS_MARTIN, RPPS_MARTIN]
    assert order["requester"]["display"] == prescriber["name"][0]["text"]
    assert "MARTIN" in prescriber["name"][0]["text"]
    ingest(sqlite_ctx, with_orc12)
    with sqlite_ctx.engine.connect() as conn:
        patient, rows = load_dossier_rows(conn, 1)
    bundle = to_bundle(patient, rows)
    check_bundle(bundle)
    orders = [e["resource"] for e in bundle["entry"]
              if e["resource"]["resourceType"] == "ServiceRequest"]
    assert sorted(o["identifier"][0]["value"] for o in orders) == ["P-77", "P-78"]
    # one prescriber, one Practitioner, whichever field named him
    assert len({o["requester"]["reference"] for o in orders}) == 1


def test_a_cr_bio_s_order_and_prescriber_are_its_document_s_context() -> None:
    """A CR-BIO's inFulfillmentOf (the order it answers) and its participant REF (the
    prescriber, idNatPS, with the prescription's date) were read and dropped: R4
    DocumentReference has no basedOn, so the ServiceRequest is its context.related, with
    its id, its requester (FR Core's idNatPs and rpps) and authoredOn."""
    from normalizers.cda import normalize_cda
    from parsers.cda import parse_cda
    from tests.conftest import ROOT
    from tests.test_fhir_export import _rows_read

    name = "01_crbio_labm_lipides_glycemie.xml"
    data = (ROOT / "samples" / "cda" / name).read_bytes()
    bundle = to_bundle(PATIENT, _rows_read(normalize_cda(parse_cda(data), data, name).entries))
    check_bundle(bundle)
    (doc,) = [e["resource"] for e in bundle["entry"]
              if e["resource"]["resourceType"] == "DocumentReference"]
    orders = [_resource(bundle, r["reference"]) for r in doc["context"]["related"]
              if "reference" in r]
    (order,) = [o for o in orders if o["resourceType"] == "ServiceRequest"]
    assert order["identifier"] == [{"system": "urn:oid:2.999.250.1.1.13", "value": "8127079"}]
    assert order["authoredOn"] == "2025-02-01T10:07:00+01:00"
    prescriber = _resource(bundle, order["requester"]["reference"])
    assert prescriber["identifier"] == [
        _fr_core_id("IDNPS", "urn:oid:1.2.250.1.71.4.2.1", "806790762954"),
        _fr_core_id("RPPS", "https://rpps.esante.gouv.fr", "06790762954")]


# -- times and counts a script reads -----------------------------------------------------------
def test_ledger_times_carry_their_offset_on_every_store(store, capsys) -> None:  # noqa: ANN001, F811
    """`imports list --json` and `show --json` gave '2026-11-25T07:30:00.123' on SQLite
    (stored in UTC, read back naive) and '...+00:00' on PostgreSQL: a script comparing them
    with a Paris time was an hour off on one store and right on the other. Every ledger,
    attempt and audit time now says its offset; the table says its column is UTC."""
    ctx, (dep, warned, quar, fail) = store
    code, out, _ = run(capsys, "imports", "rerun", str(fail), "--reason", "ticket 12")
    assert code == 0
    code, out, _ = run(capsys, "imports", "list", "--json")
    assert code == 0
    for row in json.loads(out):
        assert datetime.fromisoformat(row["received_at"]).utcoffset() is not None
    code, out, _ = run(capsys, "imports", "show", str(fail), "--json")
    info = json.loads(out)
    stamps = [info["received_at"]] + [a["started_at"] for a in info["attempts"]] + \
        [a["finished_at"] for a in info["attempts"]] + [a["at"] for a in info["audit"]]
    assert len(stamps) > 3 and all(datetime.fromisoformat(t).utcoffset() is not None
                                   for t in stamps if t), stamps
    code, out, _ = run(capsys, "imports", "list")
    assert "received (UTC)" in out


def test_stats_of_a_code_no_import_had_says_so(store, capsys) -> None:  # noqa: ANN001, F811
    """`imports list --code OBX_BAD_NUMBR` said the code was never seen; `imports stats`
    with the same typo printed zero everywhere, which reads as 'no such failure'."""
    code, out, err = run(capsys, "imports", "stats", "--code", "OBX_BAD_NUMBR", "--json")
    assert code == 0 and json.loads(out)["total"] == 0
    assert err.startswith("dmp-ingest: no import has error code OBX_BAD_NUMBR")
    code, out, err = run(capsys, "imports", "stats", "--code", "OBX_BAD_NUMBER", "--json")
    assert code == 0 and json.loads(out)["total"] == 1 and err == ""


def test_admin_api_stats_say_a_filter_s_typo(api) -> None:  # noqa: ANN001, F811
    make_patient(api.ctx)
    ingest(api.ctx, oru("S1"), oru("S3", extra_obx=BAD))
    with api.client("admin", subject="alice") as c:
        stats = c.get("/admin/imports/stats", params={"channel": "hl7"}).json()
        assert stats["total"] == 0 and "channel 'hl7'" in stats["notes"][0]
        stats = c.get("/admin/imports/stats", params={"code": "obx_bad_number"}).json()
        assert stats["total"] == 1 and "notes" not in stats
        page = c.get("/admin/imports").json()
        assert all(datetime.fromisoformat(r["received_at"]).utcoffset() is not None
                   for r in page["imports"])
    from tests.test_console import _login

    with _login(api, "admin", subject="alice") as c:  # the console's times are UTC too
        assert "(UTC)</th>" in c.get("/console/imports").text


# -- one import edited twice at once -----------------------------------------------------------
def test_two_edits_of_one_import_at_once_file_one(sqlite_ctx, monkeypatch) -> None:  # noqa: ANN001
    """Two admins (or a console's double submit) editing the same failed import: both
    passed the 'failed or quarantined' check before either closed it, and both corrected
    messages were filed, the glucose twice. Now the edit's rows are held until the original
    is closed by that edit; the one that comes second is refused and its rows are closed,
    saying why, their bytes kept. No worker can take a held row meanwhile."""
    import pytest

    from pipelines import admin
    from pipelines.admin import AdminError, edit
    from pipelines.audit import Actor
    from pipelines.process import drain

    ctx = sqlite_ctx
    make_patient(ctx)
    (fail,) = ingest(ctx, oru("R1", extra_obx=BAD))
    first = oru("R1", extra_obx=BAD.replace("||abc|", "||6.1|"))
    second = oru("R1", extra_obx=BAD.replace("||abc|", "||6.2|"))
    real_intake, seen = admin.intake, {}

    def racing(*args, **kw):  # noqa: ANN002, ANN003, ANN202
        results = real_intake(*args, **kw)
        if not seen:  # the other admin's edit lands while this one is being stored
            seen["held"] = [show_import(ctx.engine, i)["status"]
                            for i in results[0].message_ids]
            seen["other"] = edit(ctx.engine, ctx.archive, fail, second, Actor("bob"))
        return results

    monkeypatch.setattr(admin, "intake", racing)
    with pytest.raises(AdminError, match="not applied"):
        edit(ctx.engine, ctx.archive, fail, first, Actor("alice"))
    assert seen["held"] == ["processing"]  # not 'received': no worker takes it
    (winner,) = seen["other"]
    assert drain(ctx) == {"deposited": 1}
    assert show_import(ctx.engine, winner)["status"] == "deposited"
    old = show_import(ctx.engine, fail)
    assert old["discard_reason"] == f"edited as import {winner}"
    (loser,) = [i for i in old["edited_as"] if i != winner]
    lost = show_import(ctx.engine, loser)
    assert lost["status"] == "discarded" and "not applied" in lost["discard_reason"]
    assert ctx.archive.get(lost["sha256"]) == first
    assert [(a, act) for a, act, i, _ in _audit(ctx) if act == "import.edit"] == [
        ("bob", "import.edit")]


def test_an_id_too_big_for_the_store_is_a_usage_error_not_a_traceback(store, capsys) -> None:  # noqa: ANN001, F811
    """An id pasted with extra digits (`imports show 99999999999999999999`, a page offset
    likewise) reached the database: an OverflowError traceback on SQLite, a driver error on
    PostgreSQL. It is bad usage now (exit 2), saying what was expected; 'no import 0' and a
    negative offset stay user errors (exit 1) as before."""
    import pytest

    huge = "99999999999999999999"
    for argv in (("imports", "show", huge), ("imports", "rerun", "1", huge),
                 ("imports", "discard", huge, "--reason", "x"),
                 ("imports", "edit", huge, "--from-file", "/dev/null"),
                 ("imports", "list", "--offset", huge), ("imports", "list", "--limit", huge)):
        with pytest.raises(SystemExit) as exit_:
            run(capsys, *argv)
        _, err = capsys.readouterr()
        assert exit_.value.code == 2, argv
        assert "expected, at most 9223372036854775807" in err and "Traceback" not in err, argv
    code, _, err = run(capsys, "imports", "show", "0")
    assert (code, err) == (1, "dmp-ingest: no import 0\n")


def test_a_clinic_named_by_reference_carries_its_typed_id_nat_st() -> None:
    """A procedure done on behalf of a clinic (CDA performer's representedOrganization,
    idNatSt '1' + FINESS) was a logical reference by an untyped identifier while the same
    idNatSt on an Organization is typed IDNST: now typed alike, so a reader matches them."""
    party = {"ids": ["1.2.250.1.71.4.2.1^810001234567"],
             "organization": ["1.2.250.1.71.4.2.2^1690000001"],
             "organization_name": "Clinique du Parc"}
    bundle = to_bundle(PATIENT, [_row(1, type="procedure", code="EBFA012", system="CCAM",
                                      details={"performed_by": party})])
    check_bundle(bundle)
    (done,) = by_entry_id(bundle)[1]["performer"]
    assert done["onBehalfOf"] == {
        "identifier": _fr_core_id("IDNST", ID_NAT_ST, "1690000001", use="official"),
        "display": "Clinique du Parc"}


def test_a_time_with_its_offset_in_an_unencoded_url_is_read(api) -> None:  # noqa: ANN001, F811
    """`curl '.../admin/imports?since=2026-11-25T08:00+01:00'`: the '+' of the offset, not
    percent-encoded, arrives as a space, and the filter was refused as 'not a date' (400).
    A space where only an offset can be is read as the '+' it was."""
    from datetime import UTC, timedelta, timezone

    make_patient(api.ctx)
    ingest(api.ctx, oru("T1"), oru("T3", extra_obx=BAD))
    paris = timezone(timedelta(hours=1))
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).astimezone(paris)
    since = hour_ago.strftime("%Y-%m-%dT%H:%M") + "+01:00"
    with api.client("admin", subject="alice") as c:
        r = c.get(f"/admin/imports?since={since}&status=failed")
        assert r.status_code == 200, r.text
        assert r.json()["total"] == 1
        r = c.get(f"/admin/imports/stats?until={since}")
        assert r.status_code == 200 and r.json()["total"] == 0
