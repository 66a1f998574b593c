"""Operators' round 5: what an operator (CLI, admin API, console) or a FHIR consumer still
tripped on. The CLI in-process (its Prefect flows as plain functions), the API app
in-process; SQLite and PostgreSQL where the store is touched."""

from __future__ import annotations

import base64

from pipelines.report import show_import
from tests.test_admin import BAD
from tests.test_api import api  # noqa: F401 (a fixture)
from tests.test_operators_round import _audit
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
