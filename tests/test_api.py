"""The HTTP API over real HTTP: `serve` with uvicorn on a free port, httpx against it, on
SQLite and PostgreSQL.

Tokens (expired, forged, wrong algorithm or scope), senders pushing HL7v2, CDA and PDF
(durable before 202, then processed by the pipeline), the admin's imports list/show/rerun,
the OpenAPI document, and the permission matrix of the dossier: every role against masked and
unmasked documents, authorised or not, with and without break-glass, then masking,
revocation, withdrawal and the audit trail that records it all.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select, update

from dossiers.audit import verify
from dossiers.schema import break_glass, entries, imports, patients
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.process import Context, drain
from pipelines.settings import load_settings
from tests.api_support import SECRET, api_settings, running_api
from tests.conftest import ROOT, SAMPLES, migrated_sqlite
from tests.test_privacy import debug_logging, hits  # noqa: F401 (a fixture)

MAX_BODY = 512 * 1024


@pytest.fixture
def api(settings):  # noqa: ANN001, ANN201
    """The service (HTTP API only, no worker: tests process with pipelines/ directly),
    with the sample dossiers."""
    ctx = Context.from_settings(api_settings(settings, max_body=MAX_BODY))
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])
    with running_api(ctx) as running:
        yield running
    ctx.engine.dispose()


def _row(ctx, import_id: int):  # noqa: ANN001, ANN202
    with ctx.engine.connect() as conn:
        return conn.execute(select(imports).where(imports.c.id == import_id)).one()


def _push(api, source: str, path, **headers: str) -> dict:  # noqa: ANN001
    with api.client("sender", source=source) as c:
        r = c.post("/imports", content=path.read_bytes(), headers=headers)
    assert r.status_code == 202, r.text
    return r.json()


# -- tokens -----------------------------------------------------------------------------------
def test_tokens_missing_expired_forged_or_wrong_scope(api) -> None:  # noqa: ANN001
    def get(token: str | None, path: str = "/admin/imports"):  # noqa: ANN202
        with api.client(token=token) as c:
            return c.get(path)

    r = get(None)
    assert (r.status_code, r.json()["error"]) == (401, "TOKEN_MISSING")
    assert r.headers["www-authenticate"].startswith("Bearer")
    now = time.time()
    expired = api.token("admin", subject="alice", ttl=60, now=now - 3600)
    forged = jwt.encode({"sub": "alice", "scope": "admin", "iat": int(now),
                         "exp": int(now) + 60}, "another-key-of-at-least-32-characters!!",
                        algorithm="HS256")
    other_alg = jwt.encode({"sub": "alice", "scope": "admin", "iat": int(now),
                            "exp": int(now) + 60}, SECRET, algorithm="HS512")
    unsigned = jwt.encode({"sub": "alice", "scope": "admin", "iat": int(now),
                           "exp": int(now) + 60}, None, algorithm="none")
    no_scope = jwt.encode({"sub": "alice", "iat": int(now), "exp": int(now) + 60}, SECRET,
                          algorithm="HS256")
    no_rpps = jwt.encode({"sub": "x", "scope": "professional", "role": "médecin",
                          "iat": int(now), "exp": int(now) + 60}, SECRET, algorithm="HS256")
    cases = [(expired, "TOKEN_EXPIRED"), (forged, "TOKEN_INVALID"),
             (other_alg, "TOKEN_INVALID"), (unsigned, "TOKEN_INVALID"),
             (no_scope, "TOKEN_INVALID"), (no_rpps, "TOKEN_INVALID"),
             ("not.a.token", "TOKEN_INVALID"), (forged[:-3], "TOKEN_INVALID")]
    for token, code in cases:
        r = get(token)
        assert (r.status_code, r.json()["error"]) == (401, code), (code, r.text)
        assert set(r.json()) == {"error", "message"}
    assert get(api.token("admin", subject="alice")).status_code == 200
    for scope, claims, path in (("patient", {"patient": 1}, "/admin/imports"),
                                ("sender", {"source": "labm"}, "/dossiers/1"),
                                ("admin", {"subject": "alice"}, "/dossiers/1/entries"),
                                ("professional", {"rpps": "10000000001", "role": "médecin"},
                                 "/dossiers/1/audit")):
        r = get(api.token(scope, **claims), path)
        assert (r.status_code, r.json()["error"]) == (403, "WRONG_SCOPE"), (scope, r.text)
    with api.client("professional", rpps="10000000001", role="médecin") as c:
        r = c.post("/imports", content=b"MSH|^~\\&|")
    assert (r.status_code, r.json()["error"]) == (403, "WRONG_SCOPE")


# -- senders ----------------------------------------------------------------------------------
@pytest.mark.parametrize("source,path,content_type,fmt", [
    ("labm", SAMPLES / "hl7v2" / "01_labm_nfs.hl7", "x-application/hl7-v2+er7", "hl7v2"),
    ("hospital", SAMPLES / "cda" / "09_crbio_niveau1_pdf.xml", "application/xml", "cda"),
    # a wrong Content-Type: recorded only, the format comes from the bytes
    ("imaging", SAMPLES / "pdf" / "01_irm_genou_droit_K1_texte.pdf", "text/plain", "pdf"),
])
def test_push_is_durable_before_202_then_processed(api, source, path, content_type,  # noqa: ANN001
                                                   fmt) -> None:
    answer = _push(api, source, path, **{"Content-Type": content_type,
                                         "X-File-Name": f"../../in/{path.name}\x7f"})
    assert answer["status"] == "received" and answer["format"] == fmt
    assert answer["duplicate_of"] is None
    # durable: the row is committed and the archived bytes are there when 202 is received
    row = _row(api.ctx, answer["import_id"])
    assert (row.status, row.channel, row.source, row.format, row.peer, row.file_name) == (
        "received", "http", source, fmt, "127.0.0.1", path.name)
    assert api.ctx.archive.get(row.sha256) == path.read_bytes()
    assert drain(api.ctx).get("deposited") == 1
    row = _row(api.ctx, answer["import_id"])
    assert (row.status, row.error_code) == ("deposited", None)
    assert row.entries_count > 0
    again = _push(api, source, path)  # the sender retries after a lost answer
    assert (again["status"], again["duplicate_of"]) == ("duplicate", answer["import_id"])


def test_file_names_are_cleaned() -> None:
    from api.imports import clean_file_name

    assert clean_file_name("C:\\lab\\out\\cr_2025.hl7") == "cr_2025.hl7"
    assert clean_file_name("../../etc/passwd") == "passwd"
    assert clean_file_name("compte rendu é.pdf".encode().decode("latin-1")) == \
        "compte rendu é.pdf"
    assert clean_file_name("a\x00b;rm -rf $HOME|.xml") == "ab_rm -rf _HOME_.xml"
    assert clean_file_name("..") is None and clean_file_name("") is None
    assert len(clean_file_name("x" * 1000 + ".pdf")) == 200


def test_push_refused(api, monkeypatch) -> None:  # noqa: ANN001
    data = (SAMPLES / "hl7v2" / "01_labm_nfs.hl7").read_bytes()

    def count() -> int:
        with api.ctx.engine.connect() as conn:
            return len(conn.execute(select(imports.c.id)).all())

    for source, code in (("unknown-lab", "UNKNOWN_SOURCE"), ("fenced", "PEER_NOT_ALLOWED")):
        with api.client("sender", source=source) as c:
            r = c.post("/imports", content=data)
        assert (r.status_code, r.json()["error"]) == (403, code)
    with api.client("sender", source="labm") as c:
        r = c.post("/imports", content=b"x" * (MAX_BODY + 1))
        assert (r.status_code, r.json()["error"]) == (413, "TOO_LARGE")

        def chunks():  # noqa: ANN202
            for _ in range(MAX_BODY // 8192 + 2):
                yield b"y" * 8192

        r = c.post("/imports", content=chunks())  # chunked: no Content-Length to trust
        assert (r.status_code, r.json()["error"]) == (413, "TOO_LARGE")
        r = c.post("/imports", content=b"  \r\n")
        assert (r.status_code, r.json()["error"]) == (400, "EMPTY_BODY")
        assert count() == 0

        def down(*args: object, **kwargs: object) -> None:
            raise OSError("disk gone")

        monkeypatch.setattr(api.ctx.archive, "put_many", down)
        r = c.post("/imports", content=data)
        assert (r.status_code, r.json()["error"]) == (503, "STORE_UNAVAILABLE")
        assert count() == 0  # never 202 for what is not stored
        monkeypatch.undo()
        assert c.post("/imports", content=data).status_code == 202
    assert count() == 1


def _archived(api, import_id: int) -> bytes:  # noqa: ANN001
    return api.ctx.archive.get(_row(api.ctx, import_id).sha256)


def test_push_compressed_or_as_form_files(api) -> None:  # noqa: ANN001
    """Engines gzip large uploads, and an integrator's first try is `curl -F file=@...`: the
    compressed bytes or the whole multipart envelope were archived as they came and failed
    UNKNOWN_FORMAT. The message itself is now what is archived and processed; a
    decompression bomb is refused like an oversize body."""
    import gzip
    import zlib

    hl7 = (SAMPLES / "hl7v2" / "01_labm_nfs.hl7").read_bytes()
    crp = (SAMPLES / "hl7v2" / "03_synlab_iono_creatinine.hl7").read_bytes()
    pdf = (SAMPLES / "pdf" / "01_irm_genou_droit_K1_texte.pdf").read_bytes()
    cda = (SAMPLES / "cda" / "01_crbio_labm_lipides_glycemie.xml").read_bytes()
    with api.client("sender", source="labm") as c:
        r = c.post("/imports", content=gzip.compress(hl7),
                   headers={"Content-Encoding": "gzip", "X-File-Name": "nfs.hl7"})
        assert r.status_code == 202 and r.json()["format"] == "hl7v2", r.text
        assert _archived(api, r.json()["import_id"]) == hl7
        r = c.post("/imports", content=zlib.compress(cda),
                   headers={"Content-Encoding": "deflate"})
        assert r.status_code == 202 and r.json()["format"] == "cda", r.text
        form = [("file", ("nfs é.hl7", crp, "x-application/hl7-v2+er7")),
                ("comment", (None, b"envoi de test")),  # a form field: not a file
                ("file", ("thorax.pdf", pdf, "application/pdf"))]
        r = c.post("/imports", files=form)
        assert r.status_code == 202, r.text
        both = r.json()["files"]
        assert [(f["format"], _archived(api, f["import_id"])) for f in both] == [
            ("hl7v2", crp), ("pdf", pdf)]  # byte for byte: CR-ended segments, binary
        assert _row(api.ctx, both[1]["import_id"]).file_name == "thorax.pdf"
        assert _row(api.ctx, both[0]["import_id"]).file_name == "nfs é.hl7"
        bomb = gzip.compress(b"\0" * (MAX_BODY + 1))
        assert len(bomb) < MAX_BODY // 100
        for body, headers, expected in (
                (bomb, {"Content-Encoding": "gzip"}, (413, "TOO_LARGE")),
                (hl7, {"Content-Encoding": "gzip"}, (400, "BAD_ENCODING")),
                (gzip.compress(hl7)[:-20], {"Content-Encoding": "gzip"}, (400, "BAD_ENCODING")),
                (hl7, {"Content-Encoding": "br"}, (415, "UNSUPPORTED_ENCODING")),
                (b"--xyz\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--xyz--\r\n",
                 {"Content-Type": "multipart/form-data; boundary=xyz"}, (400, "NO_FILE_PART")),
                (b"--xyz\r\nContent-Disposition: form-data; name=f; filename=a.hl7\r\n\r\n"
                 + hl7, {"Content-Type": "multipart/form-data; boundary=xyz"},
                 (400, "BAD_MULTIPART")),  # cut before its closing boundary
                (hl7, {"Content-Type": "multipart/form-data"}, (400, "BAD_MULTIPART"))):
            r = c.post("/imports", content=body, headers=headers)
            assert (r.status_code, r.json()["error"]) == expected, (headers, r.text)
    token = api.token("sender", source="labm")
    done = subprocess.run(  # a client we did not write
        ["curl", "-sS", "-k", "-H", f"Authorization: Bearer {token}",
         "-F", "file=@" + str(SAMPLES / "hl7v2" / "02_labm_lipides_glycemie.hl7"),
         f"{api.url}/imports"], capture_output=True, timeout=60, check=True)
    answer = json.loads(done.stdout)
    assert answer["format"] == "hl7v2" and "files" not in answer
    assert _archived(api, answer["import_id"]) == \
        (SAMPLES / "hl7v2" / "02_labm_lipides_glycemie.hl7").read_bytes()
    assert _row(api.ctx, answer["import_id"]).file_name == "02_labm_lipides_glycemie.hl7"


# -- admin ------------------------------------------------------------------------------------
def test_admin_list_show_rerun(api) -> None:  # noqa: ANN001
    good = _push(api, "labm", SAMPLES / "hl7v2" / "02_labm_lipides_glycemie.hl7")
    bad = _push(api, "labm", SAMPLES / "hl7v2" / "17_casse_sans_msh.hl7")
    drain(api.ctx)
    with api.client("admin", subject="alice") as c:
        listed = c.get("/admin/imports", params={"channel": "http", "sort": "id"}).json()
        assert [r["id"] for r in listed["imports"]] == [good["import_id"], bad["import_id"]]
        failed = c.get("/admin/imports", params={"status": "failed"}).json()["imports"]
        assert [(r["id"], r["error_code"]) for r in failed] == [(bad["import_id"],
                                                                 "HL7_NO_MSH")]
        page = c.get("/admin/imports", params={"limit": 1, "offset": 1}).json()["imports"]
        assert [r["id"] for r in page] == [good["import_id"]]  # newest first
        for params, code in (({"sort": "colour"}, "BAD_SORT"),
                             ({"since": "yesterday"}, "BAD_FILTER"),
                             ({"patient": "999999"}, "BAD_FILTER")):
            r = c.get("/admin/imports", params=params)
            assert (r.status_code, r.json()["error"]) == (400, code)
        for params in ({"limit": 0}, {"patient": "9" * 20}):
            assert c.get("/admin/imports", params=params).status_code == 422
        shown = c.get(f"/admin/imports/{bad['import_id']}").json()
        assert shown["status"] == "failed" and len(shown["attempts"]) == 1
        r = c.get("/admin/imports/999999")
        assert (r.status_code, r.json()["error"]) == (404, "NOT_FOUND")
        assert c.get("/admin/imports/abc").status_code == 422
        assert c.get(f"/admin/imports/{2**64}").status_code == 422  # not a database error

        dry = c.post("/admin/imports/rerun", json={"filter": {"status": "failed"},
                                                   "dry_run": True}).json()
        assert dry["dry_run"] and dry["reopen"] == [bad["import_id"]]
        assert _row(api.ctx, bad["import_id"]).status == "failed"
        r = c.post(f"/admin/imports/{bad['import_id']}/rerun", json={"wait": True})
        assert r.status_code == 200 and r.json()["outcomes"] == {"failed": 1}
        assert len(c.get(f"/admin/imports/{bad['import_id']}").json()["attempts"]) == 2
        r = c.post("/admin/imports/rerun", json={"ids": [good["import_id"],
                                                         bad["import_id"], 424242]})
        assert r.status_code == 202 and r.json()["processing"] == "queued"
        assert r.json()["reopen"] == [bad["import_id"]] and r.json()["unknown"] == [424242]
        assert _row(api.ctx, bad["import_id"]).status == "received"  # the workers' now
        r = c.post("/admin/imports/rerun", json={})
        assert (r.status_code, r.json()["error"]) == (400, "NOTHING_TO_RERUN")
        r = c.post("/admin/imports/999999/rerun")
        assert r.status_code == 404


def test_openapi_docs_and_errors(api) -> None:  # noqa: ANN001
    with api.client() as c:
        schema = c.get("/openapi.json").json()
        for path in ("/imports", "/dossiers/{patient}", "/dossiers/{patient}/entries",
                     "/dossiers/{patient}/audit", "/dossiers/{patient}/fhir",
                     "/documents/{entry_id}", "/documents/{entry_id}/mask",
                     "/documents/{entry_id}/unmask", "/documents/{entry_id}/withdraw",
                     "/dossiers/{patient}/authorizations",
                     "/dossiers/{patient}/authorizations/{rpps}",
                     "/dossiers/{patient}/treating-doctor", "/dossiers/{patient}/break-glass",
                     "/dossiers/{patient}/opposition",
                     "/professionals", "/admin/imports", "/admin/imports/{import_id}",
                     "/admin/imports/rerun", "/admin/imports/{import_id}/rerun"):
            assert path in schema["paths"], path
        assert "HTTPBearer" in schema["components"]["securitySchemes"]
        docs = c.get("/docs")
        assert docs.status_code == 200 and "/dossiers/{patient}/break-glass" in docs.text
        assert "<script" not in docs.text and "cdn" not in docs.text.lower()
        r = c.get("/nowhere")
        assert (r.status_code, r.json()) == (404, {"error": "NOT_FOUND",
                                                   "message": "no such resource"})
        r = c.delete("/imports")
        assert (r.status_code, r.json()["error"]) == (405, "METHOD_NOT_ALLOWED")
        assert r.headers["cache-control"] == "no-store"


def test_serve_worker_processes_what_http_received(settings) -> None:  # noqa: ANN001
    """With its ledger worker, `serve` files an HTTP push without anyone calling pipelines/."""
    ctx = Context.from_settings(dataclasses.replace(api_settings(settings), workers=0))
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])
    with running_api(ctx, process=True) as running:
        answer = _push(running, "labm", SAMPLES / "hl7v2" / "05_chu_hba1c.hl7")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and \
                _row(ctx, answer["import_id"]).status != "deposited":
            time.sleep(0.1)
        assert _row(ctx, answer["import_id"]).status == "deposited"
    ctx.engine.dispose()


def test_https_with_the_listeners_certificate(tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """With the MLLP listener's certificate configured (and no http_tls_*), the API is
    served over TLS only."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
        "server.pem", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
        "subjectAltName=IP:127.0.0.1")
    migrated_sqlite(sqlite_template, tmp_path / "home" / "dmp.sqlite3")  # the home's store
    settings = load_settings(env={"DMP_HOME": str(tmp_path / "home"),
                                  "DMP_MLLP_TLS_CERT": str(tmp_path / "server.pem"),
                                  "DMP_MLLP_TLS_KEY": str(tmp_path / "server.key")})
    ctx = Context.from_settings(api_settings(settings))
    trust = ssl.create_default_context(cafile=str(tmp_path / "server.pem"))
    with running_api(ctx, verify=trust) as running:
        assert running.url.startswith("https://")
        with running.client("admin", subject="alice") as c:
            assert c.get("/admin/imports").status_code == 200
        plain = running.url.replace("https://", "http://")
        with pytest.raises(httpx.HTTPError):
            httpx.get(plain + "/openapi.json", timeout=5)
    ctx.engine.dispose()


def test_dmp_ingest_serve_http_and_sigterm(tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """The real command: `serve --no-mllp --http-port 0` answers a sender, and SIGTERM
    (handled by the service, not by uvicorn) stops it with status 0."""
    home = tmp_path / "home"
    home.mkdir()
    migrated_sqlite(sqlite_template, home / "dmp.sqlite3")  # the home's store, at head
    (home / "dmp.toml").write_text('worker_id = "api-test"\n[sources.labm]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("DMP_")}
    env.update(PYTHONPATH=str(ROOT), DMP_HOME=str(home), DMP_WORKERS="0")
    cli = [sys.executable, "-m", "cli"]
    token = subprocess.run([*cli, "token", "mint", "--scope", "sender", "--source", "labm"],
                           env=env, cwd=ROOT, check=True, capture_output=True, text=True,
                           timeout=60).stdout.strip()
    proc = subprocess.Popen([*cli, "serve", "--no-mllp", "--http-port", "0"], env=env,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        url = next(line.split(" on ", 1)[1].strip() for line in lines if "HTTP API" in line)
        r = httpx.post(f"{url}/imports", headers={"Authorization": f"Bearer {token}"},
                       content=(SAMPLES / "hl7v2" / "01_labm_nfs.hl7").read_bytes())
        assert r.status_code == 202 and r.json()["import_id"] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "dmp-ingest serve: stopped" in out


def test_token_mint_command(tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    """`token mint` and `serve` agree on the key: the one kept in $DMP_HOME (0600)."""
    from api.tokens import principal_from, signing_key
    from cli import main
    from pipelines.settings import load_settings

    monkeypatch.setenv("DMP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DMP_API_SECRET", raising=False)
    monkeypatch.delenv("DMP_CONFIG", raising=False)
    assert main(["token", "mint", "--scope", "professional", "--rpps", "810001234567",
                 "--role", "médecin", "--ttl", "60"]) == 0
    token = capsys.readouterr().out.strip()
    key_file = tmp_path / "home" / "api_secret"
    assert key_file.stat().st_mode & 0o777 == 0o600
    who = principal_from(token, signing_key(load_settings()))
    assert (who.kind, who.subject, who.role) == ("professional", "10001234567", "médecin")
    assert main(["token", "mint", "--scope", "patient", "--patient", "12"]) == 0
    assert principal_from(capsys.readouterr().out.strip(),
                          signing_key(load_settings())).actor == "patient:12"
    assert main(["token", "mint", "--scope", "sender"]) == 1  # no --source
    assert "--source" in capsys.readouterr().err


# -- the permission matrix ----------------------------------------------------------------------
# K1 (samples/patients.csv): an unmasked lab report (HL7v2), a PDF imaging report (its file),
# a discharge letter masked by its confidentiality code V (CDA, authors below), and another
# lab report the patient may not see yet (INVISIBLE_PATIENT=Y).
AUTHOR = "16857987495"  # the author of samples/cda/11 (RPPS; "8" + it in the CDA)
TREATING, TRUSTED, STRANGER, REVOKED = "10000000001", "10000000002", "10000000003", \
    "10000000004"
UNKNOWN_INS = "295029712010115"[:-2] + "00"  # well-formed, in no dossier

# (who, rpps, authorised by the patient) -> what they see, without / with break-glass:
# "all" (masked too), "unmasked", or "denied" (403).
MATRIX = [
    ("treating", TREATING, False, "all", "all"),
    # not authorised: refused like anyone; through break-glass, their own masked document too
    # (authorised, they see it as well: checked after the matrix, once the patient grants)
    ("author", AUTHOR, False, "denied", "all"),
    ("professional", TRUSTED, True, "unmasked", "unmasked"),
    ("professional", STRANGER, False, "denied", "unmasked"),
]


@pytest.fixture
def k1(api):  # noqa: ANN001, ANN201
    """K1's dossier filled over HTTP by three senders, professionals registered by an admin,
    the médecin traitant named and authorisations granted by the patient over HTTP."""
    invisible = (SAMPLES / "hl7v2" / "09_synlab_nfs_crp_groupe.hl7").read_bytes()
    pushed = {}
    for name, source, data in (
            ("lab", "labm", (SAMPLES / "hl7v2" / "01_labm_nfs.hl7").read_bytes()),
            ("invisible", "labm", invisible),
            ("letter", "hospital",
             (SAMPLES / "cda" / "11_ldl_ses_tres_restreint.xml").read_bytes()),
            ("scan", "imaging",
             (SAMPLES / "pdf" / "01_irm_genou_droit_K1_texte.pdf").read_bytes())):
        with api.client("sender", source=source) as c:
            r = c.post("/imports", content=data)
        assert r.status_code == 202, r.text
        pushed[name] = r.json()["import_id"]
    assert drain(api.ctx) == {"deposited": 4}
    # INVISIBLE_PATIENT=Y (until the announcement consultation): no sample carries it (on a
    # lab ORU without document the MetaDMPMSS flags are ignored), so it is set on the rows
    with api.ctx.engine.begin() as conn:
        conn.execute(update(entries).where(entries.c.import_id == pushed["invisible"])
                     .values(masking={"INVISIBLE_PATIENT": True}))
    admin = api.client("admin", subject="alice")
    produced = {name: admin.get(f"/admin/imports/{i}").json()["produced"]
                for name, i in pushed.items()}
    pid = {e["patient_id"] for p in produced.values() for e in p}
    assert len(pid) == 1
    pid = str(pid.pop())
    ids = {name: {e["entry_id"] for e in p} for name, p in produced.items()}
    # the letter's CDA document (its entries below it) and the PDF report: each the first
    # entry its import created, and the one holding the original file
    docs = {name: min(ids[name]) for name in ("letter", "scan")}
    for rpps, family, role in ((AUTHOR, "Morel", "médecin"),
                               (TREATING, "Durand", "médecin"),
                               (TRUSTED, "Nguyen", "infirmière"),
                               (STRANGER, "Roussel", "médecin"),
                               (REVOKED, "Blanc", "kinésithérapeute")):
        r = admin.post("/professionals", json={"rpps": rpps, "family": family,
                                                "given": "Anne", "role": role})
        assert r.status_code == 201, r.text
    patient = api.client("patient", patient=pid)
    assert patient.put(f"/dossiers/{pid}/treating-doctor",
                       json={"rpps": TREATING}).json()["treating_rpps"] == TREATING
    for rpps in (TRUSTED, REVOKED):
        assert patient.post(f"/dossiers/{pid}/authorizations",
                            json={"rpps": rpps}).status_code == 201
    yield dataclasses.make_dataclass("K1", ["pid", "ids", "docs", "patient", "admin"])(
        pid, ids, docs, patient, admin)
    patient.close()
    admin.close()


def _pro(api, rpps: str):  # noqa: ANN001, ANN202
    return api.client("professional", rpps=rpps, role="médecin")


def _seen(client, pid: str) -> tuple[int, set[int] | dict]:  # noqa: ANN001
    r = client.get(f"/dossiers/{pid}/entries")
    if r.status_code != 200:
        return r.status_code, r.json()
    return 200, {e["id"] for e in r.json()["entries"]}


@pytest.mark.usefixtures("debug_logging")  # first: the fixtures' requests are logged too
def test_permission_matrix(caplog, api, k1) -> None:  # noqa: ANN001
    """Roles x masked/unmasked x authorised or not x break-glass, over HTTP; then the
    patient's mask, a revocation, a withdrawal, and the audit trail of it all. Logged at
    DEBUG meanwhile, without a patient's name or NIR."""
    unmasked = k1.ids["lab"] | k1.ids["scan"] | k1.ids["invisible"]
    everything = unmasked | k1.ids["letter"]
    expected_sets = {"all": everything, "unmasked": unmasked}
    letter, scan = k1.docs["letter"], k1.docs["scan"]

    # the patient: masked documents too, not what is invisible to them
    assert _seen(k1.patient, k1.pid) == (200, k1.ids["lab"] | k1.ids["scan"]
                                         | k1.ids["letter"])
    dossier = k1.patient.get(f"/dossiers/{k1.pid}").json()
    assert dossier["access"] == {"basis": "patient", "break_glass": False}
    assert k1.patient.get(f"/documents/{letter}").status_code == 200

    denied_bodies = set()
    for glass in (False, True):
        for role, rpps, authorised, plain, with_glass in MATRIX:
            expected = with_glass if glass else plain
            with _pro(api, rpps) as c:
                if glass:
                    r = c.post(f"/dossiers/{k1.pid}/break-glass",
                               json={"reason": "patient inconscient aux urgences"})
                    assert r.status_code == 201, r.text
                status, seen = _seen(c, k1.pid)
                where = (role, rpps, authorised, glass)
                if expected == "denied":
                    assert (status, seen["error"]) == (403, "ACCESS_DENIED"), where
                    for path in (f"/dossiers/{k1.pid}", f"/dossiers/{k1.pid}/fhir",
                                 f"/dossiers/{k1.pid}/entries?type=lab_result"):
                        r = c.get(path)
                        assert r.status_code == 403, (where, path)
                        denied_bodies.add(r.content)
                    # a document of a dossier they may not read: as one that does not exist
                    # (a 403 told it apart, and ids became an oracle)
                    for doc in (scan, letter):
                        r, gone = c.get(f"/documents/{doc}"), c.get(f"/documents/{doc + 10**6}")
                        assert (r.status_code, r.content.replace(str(doc).encode(), b"N")) == (
                            404, gone.content.replace(str(doc + 10**6).encode(), b"N")), where
                    continue
                assert (status, seen) == (200, expected_sets[expected]), where
                read = c.get(f"/dossiers/{k1.pid}").json()["access"]
                basis = ("treating" if role == "treating" else "authorised" if authorised
                         else "break_glass")
                assert read == {"basis": basis, "break_glass": basis == "break_glass"}, where
                r = c.get(f"/documents/{scan}")
                assert (r.status_code, r.headers["content-type"], r.content[:5]) == (
                    200, "application/pdf", b"%PDF-"), where
                r = c.get(f"/documents/{letter}")
                if expected == "all":
                    assert r.status_code == 200 and b"ClinicalDocument" in r.content, where
                else:  # masked: as if it did not exist
                    assert (r.status_code, r.json()["error"]) == (404, "NOT_FOUND"), where
                fhir = c.get(f"/dossiers/{k1.pid}/fhir")
                assert fhir.status_code == 200, where
                assert fhir.headers["content-type"] == "application/fhir+json"
                bundle = Bundle.model_validate(fhir.json())  # valid R4(B)
                # who sent each entry, never our import ids
                provenances = [e["resource"] for e in fhir.json()["entry"]
                               if e["resource"]["resourceType"] == "Provenance"]
                assert provenances and all("entity" not in p for p in provenances), where
                assert "/imports" not in fhir.text, where
                ids = {i.value for e in bundle.entry for i in
                       (getattr(e.resource, "identifier", None) or [])
                       if i.system and i.system.endswith("/entries")}
                assert (str(letter) in ids) == (expected == "all"), where
        if not glass:
            # an unauthorised professional learns nothing about existence: same answers
            with _pro(api, STRANGER) as c:
                for ref in ("999999", UNKNOWN_INS, "1" * 18):
                    for path in (f"/dossiers/{ref}", f"/dossiers/{ref}/entries",
                                 f"/dossiers/{ref}/fhir"):
                        r = c.get(path)
                        assert r.status_code == 403
                        denied_bodies.add(r.content)
                r = c.post("/dossiers/999999/break-glass",
                           json={"reason": "patient inconscient aux urgences"})
                assert r.status_code == 403
                denied_bodies.add(r.content)
                for ref in ("9" * 20, "not-a-ref", "%C2%B9"):  # not a reference at all
                    r = c.get(f"/dossiers/{ref}/entries")
                    assert (r.status_code, r.json()["error"]) == (422, "INVALID_REQUEST")
            assert len(denied_bodies) == 1, denied_bodies
            _mask_and_revoke(api, k1, scan)

    # the author, once authorised, reads on that basis and still sees their masked document
    assert k1.patient.post(f"/dossiers/{k1.pid}/authorizations",
                           json={"rpps": AUTHOR}).status_code == 201
    with _pro(api, AUTHOR) as c:
        assert _seen(c, k1.pid) == (200, everything)
        assert c.get(f"/dossiers/{k1.pid}").json()["access"]["basis"] == "authorised"

    # admins and senders do not read dossiers
    for client in (k1.admin, api.client("sender", source="labm")):
        assert client.get(f"/dossiers/{k1.pid}").status_code == 403

    # the patient reads the trail: every read, with break-glass shown as such
    events = k1.patient.get(f"/dossiers/{k1.pid}/audit").json()["events"]
    actions = {e["action"] for e in events}
    assert {"dossier.read", "entries.read", "document.read", "document.mask",
            "document.unmask", "authorization.grant", "authorization.revoke", "treating.set",
            "break_glass.open", "access.denied"} <= actions
    glass = [e for e in events if e["break_glass"]]
    assert {e["actor"] for e in glass if e["action"] == "break_glass.open"} == {
        f"professional:{r}" for _, r, *_ in MATRIX}
    assert any(e["actor"] == f"professional:{STRANGER}" and e["action"] == "entries.read"
               for e in glass)
    assert all(e["reason"] == "patient inconscient aux urgences"
               for e in glass if e["action"] == "break_glass.open")
    with _pro(api, TREATING) as c:
        assert c.get(f"/dossiers/{k1.pid}/audit").status_code == 403  # patient only

    _withdraw(api, k1, letter)
    assert verify(api.ctx.engine).ok
    # alembic's lines quote our migrations' docstrings (run in this setup when the test runs
    # first in its session): they hold example names, not this test's patients
    logs = [r.getMessage() for phase in ("setup", "call") for r in caplog.get_records(phase)
            if not r.name.startswith("alembic")]
    assert any("over HTTP" in line for line in logs)  # the intake lines were captured
    assert hits(logs) == []


def _mask_and_revoke(api, k1, scan: int) -> None:  # noqa: ANN001
    """The patient masks the PDF: an authorised professional no longer sees it, the médecin
    traitant does; unmasked, it is back. A revoked professional is refused."""
    with _pro(api, TRUSTED) as trusted, _pro(api, TREATING) as treating:
        assert trusted.post(f"/documents/{scan}/mask").status_code == 403  # patient only
        r = k1.patient.post(f"/documents/{scan}/mask")
        assert r.status_code == 200 and r.json()["masked"] is True
        assert not (_seen(trusted, k1.pid)[1] & k1.ids["scan"])
        assert trusted.get(f"/documents/{scan}").status_code == 404
        assert k1.ids["scan"] <= _seen(treating, k1.pid)[1]
        assert k1.patient.post(f"/documents/{scan}/unmask").json()["masked"] is False
        assert k1.ids["scan"] <= _seen(trusted, k1.pid)[1]
        assert trusted.get(f"/documents/{scan}").status_code == 200
    with _pro(api, REVOKED) as revoked:
        assert _seen(revoked, k1.pid)[0] == 200
        r = k1.patient.delete(f"/dossiers/{k1.pid}/authorizations/{REVOKED}")
        assert r.status_code == 200 and r.json()["authorised"] is False
        assert _seen(revoked, k1.pid) == (403, {"error": "ACCESS_DENIED",
                                                "message": "no access to this dossier"})
    r = k1.patient.post(f"/dossiers/{k1.pid}/authorizations", json={"rpps": "19999999999"})
    assert (r.status_code, r.json()["error"]) == (400, "UNKNOWN_PROFESSIONAL")


def _withdraw(api, k1, letter: int) -> None:  # noqa: ANN001
    """Only the author withdraws, even once the patient revoked their access (a document in
    the wrong dossier); then nobody sees the document, the patient included."""
    with _pro(api, TREATING) as treating, _pro(api, AUTHOR) as author:
        r = treating.post(f"/documents/{letter}/withdraw", json={"reason": "erreur"})
        assert (r.status_code, r.json()["error"]) == (403, "AUTHOR_ONLY")
        assert author.post(f"/documents/{letter}/withdraw", json={}).status_code == 422
        assert k1.patient.delete(f"/dossiers/{k1.pid}/authorizations/{AUTHOR}").status_code \
            == 200
        with api.ctx.engine.begin() as conn:  # and their break-glass of the matrix is over
            conn.execute(update(break_glass).where(break_glass.c.rpps == AUTHOR)
                         .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        assert _seen(author, k1.pid)[0] == 403
        r = author.post(f"/documents/{letter}/withdraw",
                        json={"reason": "erreur de patient"})
        assert r.status_code == 200 and r.json()["withdrawn"] == len(k1.ids["letter"])
        for c in (k1.patient, treating):
            assert not (_seen(c, k1.pid)[1] & k1.ids["letter"])
            assert c.get(f"/documents/{letter}").status_code == 404


def test_patient_opposes_feeding_over_http(api) -> None:  # noqa: ANN001
    """The patient states their opposition themselves: what is sent next is quarantined
    OPPOSITION, never deposited; lifted, a rerun files it. Only the patient may say so."""
    with api.ctx.engine.connect() as conn:
        pid = str(conn.execute(select(patients.c.id).where(
            patients.c.ins == "268036912354128")).scalar_one())  # K1 of samples/hl7v2/01
    path = f"/dossiers/{pid}/opposition"
    with _pro(api, TREATING) as pro:
        r = pro.put(path, json={"opposed": True})
        assert (r.status_code, r.json()["error"]) == (403, "WRONG_SCOPE")
    with api.client("patient", patient=int(pid) + 1) as other:
        r = other.put(path, json={"opposed": True})
        assert (r.status_code, r.json()["error"]) == (403, "ACCESS_DENIED")
    with api.client("patient", patient=pid) as patient, \
            api.client("admin", subject="alice") as admin:
        assert patient.put(path, json={"opposed": "maybe"}).status_code == 422
        r = patient.put(path, json={"opposed": True})
        assert r.status_code == 200 and r.json() == {"patient_id": int(pid), "opposed": True,
                                                     "applied": True}
        assert patient.get(f"/dossiers/{pid}").json()["patient"]["opposed"] is True
        pushed = _push(api, "labm", SAMPLES / "hl7v2" / "01_labm_nfs.hl7")["import_id"]
        drain(api.ctx)
        row = _row(api.ctx, pushed)
        assert (row.status, row.error_code, row.entries_count) == ("quarantined",
                                                                   "OPPOSITION", 0)
        with api.ctx.engine.connect() as conn:
            assert conn.execute(select(entries.c.id)).first() is None
        assert patient.put(path, json={"opposed": False}).json()["opposed"] is False
        r = admin.post(f"/admin/imports/{pushed}/rerun", json={"wait": True})
        assert r.json()["outcomes"] == {"deposited": 1}
        # newest first (round 6): read back oldest first
        trail = patient.get(f"/dossiers/{pid}/audit").json()["events"][::-1]
    mine = [e["details"]["opposition"] for e in trail
            if e["action"] == "consent.update" and e["actor"] == f"patient:{pid}"]
    assert mine == ["IO", "INO"]
    assert verify(api.ctx.engine).ok
