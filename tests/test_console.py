"""The web console over real HTTP (uvicorn in `serve`, httpx), then end to end in headless
Chromium (Selenium, Debian's chromium and chromedriver).

Fast tests: login and logout, CSRF refusals, every page for every role and the pages each
role may not open, escaping of what messages carry, the French/English switch, the actions'
confirmation and a bulk rerun with its progress. The dashboard's aggregates run on SQLite and
PostgreSQL. The browser: an admin sees a quarantined import (unknown patient), the dossier is
created, the admin reruns it from the page and sees it deposited; an authorised professional
does not see a masked document, the médecin traitant does. Screenshots go to
var/test-artifacts/console/.

Without chromium the browser tests skip, unless DMP_REQUIRE_CHROMIUM=1 (`make test`), where
they fail: CI never silently tests less.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from dossiers import access
from dossiers.access import Principal
from dossiers.schema import imports
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.process import Context, drain
from pipelines.report import show_import
from tests.api_support import api_settings, running_api
from tests.conftest import ROOT, SAMPLES, migrated_sqlite

ARTIFACTS = ROOT / "var" / "test-artifacts" / "console"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
TREATING, TRUSTED = "10000000001", "10000000002"
SCRIPT = "<script>alert('x')</script>"
UNKNOWN = DossierInput(family="Le Bihan", given="Gaëlle", birth_date="1990-07-04", sex="F",
                       ins="290075626024810")  # the patient of samples/hl7v2/11


def _push(ctx: Context, source: str, data: bytes, name: str) -> int:
    result = intake(ctx.engine, ctx.archive, [Received(data=data, source=source,
                                                       channel="http", file_name=name)])[0]
    return result.message_ids[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory, sqlite_template):  # noqa: ANN001, ANN201
    """One service (SQLite) for the module: the sample dossiers, a deposited lab report, an
    unknown patient's message (quarantined), a broken message carrying a script (failed),
    K8's masked CDA, professionals, K8's médecin traitant and an authorised professional."""
    from pipelines.settings import load_settings

    tmp = tmp_path_factory.mktemp("console")
    settings = api_settings(load_settings(env={
        "DMP_HOME": str(tmp / "home"), "DMP_DATABASE_URL": migrated_sqlite(sqlite_template,
                                                                      tmp / "db.sqlite3"),
        "DMP_ARCHIVE_URL": str(tmp / "archive")}))
    ctx = Context.from_settings(settings)
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    ids = dict(zip([r["key"] for r in rows], create_dossiers(
        ctx.engine, [DossierInput.from_mapping(r) for r in rows]), strict=True))
    broken = (SAMPLES / "hl7v2" / "20_casse_nm_non_numerique.hl7").read_bytes() \
        .replace(b"||abc|", b"||" + SCRIPT.encode() + b"|")
    pushed = {
        "lab": _push(ctx, "labm", (SAMPLES / "hl7v2" / "01_labm_nfs.hl7").read_bytes(), "nfs.hl7"),
        "unknown": _push(ctx, "labm", (SAMPLES / "hl7v2" / "11_labm_patient_inconnu.hl7")
                         .read_bytes(), "inconnu.hl7"),
        "broken": _push(ctx, "labm", broken, "broken.hl7"),
        "masked": _push(ctx, "hospital", (SAMPLES / "cda" / "10_crbio_hcg_restreint.xml")
                        .read_bytes(), "hcg.xml"),
        "stranger": _push(ctx, "hospital", (SAMPLES / "cda" / "12_crbio_patient_inconnu.xml")
                          .read_bytes(), "inconnu.xml")}
    drain(ctx)
    statuses = {k: show_import(ctx.engine, i)["status"] for k, i in pushed.items()}
    assert statuses == {"lab": "deposited", "unknown": "quarantined", "broken": "failed",
                        "masked": "deposited", "stranger": "quarantined"}, statuses
    with ctx.engine.begin() as conn:  # what a page shows of a message is escaped
        conn.execute(update(imports).where(imports.c.id == pushed["broken"])
                     .values(error_message=f"bad value {SCRIPT}"))
    produced = show_import(ctx.engine, pushed["masked"])["produced"]
    masked_doc = min(e["entry_id"] for e in produced)
    k8 = str(ids["K8"])
    admin = Principal("admin", "alice")
    for rpps, family in ((TREATING, "Durand"), (TRUSTED, "Nguyen")):
        access.register_professional(ctx.engine, admin, rpps, family, "Anne", "médecin")
    patient = Principal("patient", k8)
    access.set_treating(ctx.engine, patient, k8, TREATING)
    access.grant(ctx.engine, patient, k8, TRUSTED)
    with running_api(ctx) as api:
        yield api, {"imports": pushed, "k1": str(ids["K1"]), "k8": k8,
                    "masked_doc": masked_doc}
    ctx.engine.dispose()


@contextmanager
def _login(api, scope: str, **claims: object) -> Iterator[httpx.Client]:  # noqa: ANN001
    """A browser-like client logged in through the login form."""
    with httpx.Client(base_url=api.url, timeout=60) as c:
        form = c.get("/console/login")
        nonce = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        r = c.post("/console/login", data={"csrf": nonce, "token": api.token(scope, **claims)})
        assert r.status_code == 303, r.text
        yield c


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


# -- login, CSRF, roles -------------------------------------------------------------------------
def test_login_logout_and_bad_tokens(world) -> None:  # noqa: ANN001
    api, _ = world
    with httpx.Client(base_url=api.url, timeout=60) as c:
        assert c.get("/console/dashboard").headers["location"] == "/console/login"
        form = c.get("/console/login")
        assert form.status_code == 200 and 'name="token"' in form.text
        cookie = form.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        nonce = _csrf(form.text)
        # no pre-login token: refused (nobody logs a victim into another session)
        r = c.post("/console/login", data={"token": api.token("admin", subject="a")})
        assert r.status_code == 403
        r = c.post("/console/login", data={"csrf": nonce, "token": "not.a.token"})
        assert r.status_code == 401 and "TOKEN_INVALID" in r.text
        expired = api.token("admin", subject="a", ttl=60, now=time.time() - 3600)
        r = c.post("/console/login", data={"csrf": nonce, "token": expired})
        assert r.status_code == 401 and "TOKEN_EXPIRED" in r.text
        r = c.post("/console/login", data={"csrf": nonce,
                                           "token": api.token("sender", source="labm")})
        assert r.status_code == 403
        r = c.post("/console/login", data={"csrf": nonce,
                                           "token": api.token("admin", subject="alice")})
        assert r.status_code == 303
        session = r.headers["set-cookie"]
        assert "dmp_console=" in session and "HttpOnly" in session
        assert "SameSite=strict" in session
        page = c.get("/console/dashboard")
        assert page.status_code == 200 and "alice" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        r = c.post("/console/logout", data={"csrf": _csrf(page.text)})
        assert r.status_code == 303
        assert c.get("/console/dashboard").status_code == 303
    # an expired session goes back to the login page, saying why
    with httpx.Client(base_url=api.url, timeout=60,
                      cookies={"dmp_console": expired}) as c:
        r = c.get("/console/imports")
        assert r.status_code == 303 and "expired=1" in r.headers["location"]


def test_posts_without_the_form_token_are_refused(world) -> None:  # noqa: ANN001
    api, data = world
    unknown = data["imports"]["unknown"]
    with _login(api, "admin", subject="alice") as c:
        for path, fields in ((f"/console/imports/{unknown}/rerun", {"confirmed": "1"}),
                             (f"/console/imports/{unknown}/discard",
                              {"confirmed": "1", "reason": "x"}),
                             ("/console/bulk-rerun", {"status": "failed", "confirmed": "1"}),
                             ("/console/logout", {})):
            for token in (None, "0" * 64):
                body = dict(fields, **({"csrf": token} if token else {}))
                r = c.post(path, data=body)
                assert r.status_code == 403 and "CSRF" in r.text, (path, token)
        assert show_import(api.ctx.engine, unknown)["status"] == "quarantined"
    with _login(api, "professional", rpps=TRUSTED, role="médecin") as c:
        r = c.post(f"/console/dossiers/{data['k8']}/break-glass",
                   data={"reason": "urgence", "confirmed": "1"})
        assert r.status_code == 403 and "CSRF" in r.text


ADMIN_PAGES = ("/console/dashboard", "/console/imports", "/console/imports?status=failed",
               "/console/imports?code=OBX_BAD_NUMBER&since=7d&source=labm&channel=http")
READER_PAGES = ("/console/dossier",)


def test_each_page_for_each_role(world) -> None:  # noqa: ANN001
    api, data = world
    k8, doc = data["k8"], data["masked_doc"]
    broken = data["imports"]["broken"]
    with _login(api, "admin", subject="alice") as c:
        for path in (*ADMIN_PAGES, f"/console/imports/{broken}",
                     f"/console/imports/{broken}?raw=1"):
            r = c.get(path)
            assert r.status_code == 200, (path, r.text[:500])
        assert c.get("/console/imports/999999").status_code == 404
        assert c.get("/console/imports?patient=999999999").status_code == 400
        for path in (f"/console/dossiers/{k8}", f"/console/dossiers/{k8}/audit",
                     f"/console/documents/{doc}", "/console/dossier"):
            assert c.get(path).status_code == 403, path
    with _login(api, "professional", rpps=TREATING, role="médecin") as c:
        assert c.get("/console/").headers["location"] == "/console/dossier"
        assert c.get(f"/console/dossier?ref={k8}").headers["location"] == \
            f"/console/dossiers/{k8}"
        page = c.get(f"/console/dossiers/{k8}")
        assert page.status_code == 200 and f'href="/console/documents/{doc}"' in page.text
        assert c.get(f"/console/documents/{doc}").status_code == 200
        for path in (*ADMIN_PAGES, f"/console/imports/{broken}",
                     f"/console/dossiers/{k8}/audit"):
            assert c.get(path).status_code == 403, path
    with _login(api, "patient", patient=k8) as c:
        assert c.get("/console/").headers["location"] == f"/console/dossiers/{k8}"
        page = c.get(f"/console/dossiers/{k8}")
        assert page.status_code == 200 and "masqué aux professionnels" in page.text
        audit = c.get(f"/console/dossiers/{k8}/audit")
        assert audit.status_code == 200 and 'data-action="authorization.grant"' in audit.text
        assert 'data-action="dossier.read"' in audit.text
        # in people's words, not the trail's codes: who (the patient is "vous") and what
        assert "a autorisé un professionnel" in audit.text
        assert "a déposé des éléments dans le dossier" in audit.text
        assert ">vous<" in audit.text and "source d&#39;envoi hospital" in audit.text
        assert ">authorization.grant<" not in audit.text and ">patient:" not in audit.text
        english = c.get(f"/console/dossiers/{k8}/audit?lang=en").text
        assert "authorised a professional" in english and ">you<" in english
        # another patient's dossier: refused by dossiers/access.py, shown as a page
        r = c.get(f"/console/dossiers/{data['k1']}?lang=fr")
        assert r.status_code == 403 and "ACCESS_DENIED" in r.text
        assert "Vous n&#39;avez pas accès à ce dossier." in r.text  # in the page's language
        r = c.get(f"/console/dossiers/{data['k1']}?lang=en")
        assert "You have no access to this dossier." in r.text
        for path in ADMIN_PAGES:
            assert c.get(path).status_code == 403, path


def test_masked_document_and_break_glass(world) -> None:  # noqa: ANN001
    """An authorised professional sees K8's dossier without the masked report (its page is
    404, like a document that does not exist); a stranger is refused and offered
    break-glass, which is confirmed, recorded, and then opens the dossier (masked still
    hidden)."""
    api, data = world
    k8, doc = data["k8"], data["masked_doc"]
    with _login(api, "professional", rpps=TRUSTED, role="infirmière") as c:
        page = c.get(f"/console/dossiers/{k8}")
        assert page.status_code == 200 and f"/console/documents/{doc}" not in page.text
        assert c.get(f"/console/documents/{doc}").status_code == 404
        assert c.get(f"/console/documents/{doc}/file").status_code == 404
    with _login(api, "professional", rpps="10000000009", role="médecin") as c:
        denied = c.get(f"/console/dossiers/{k8}")
        assert denied.status_code == 403 and "break-glass-form" in denied.text
        csrf = _csrf(denied.text)
        confirm = c.post(f"/console/dossiers/{k8}/break-glass",
                         data={"csrf": csrf, "reason": "patient inconscient aux urgences"})
        assert confirm.status_code == 200 and 'name="confirmed" value="1"' in confirm.text
        r = c.post(f"/console/dossiers/{k8}/break-glass",
                   data={"csrf": csrf, "reason": "patient inconscient aux urgences",
                         "confirmed": "1"})
        assert r.status_code == 303
        page = c.get(f"/console/dossiers/{k8}")
        assert page.status_code == 200 and "bris de glace" in page.text
        assert f"/console/documents/{doc}" not in page.text
    with _login(api, "patient", patient=k8) as c:  # the patient sees it, with its reason
        audit = c.get(f"/console/dossiers/{k8}/audit").text
        glass = re.search(r'<tr class="glass">(?:(?!</tr>).)*data-action="break_glass.open"'
                          r'(?:(?!</tr>).)*</tr>', audit, re.S)
        assert glass and "patient inconscient aux urgences" in glass.group(0)


def test_level1_cda_shows_the_pdf_it_carries(world) -> None:  # noqa: ANN001
    """A level-1 CDA (a PDF in its nonXMLBody): the document's page shows the CDA's header
    and the PDF itself in the browser's viewer; reading it goes through dossiers/access.py
    (audited, refused to whoever may not read the document). A structured CDA has none."""
    api, data = world
    import_id = _push(api.ctx, "hospital",
                      (SAMPLES / "cda" / "09_crbio_niveau1_pdf.xml").read_bytes(), "n1.xml")
    drain(api.ctx)
    info = show_import(api.ctx.engine, import_id)
    assert info["status"] == "deposited", info
    patient = str(info["patient_id"])
    doc = min(e["entry_id"] for e in info["produced"] if e["type"] == "document")
    with _login(api, "patient", patient=patient) as c:
        page = c.get(f"/console/documents/{doc}")
        assert page.status_code == 200 and 'id="cda"' in page.text
        assert f'src="/console/documents/{doc}/embedded.pdf"' in page.text
        r = c.get(f"/console/documents/{doc}/embedded.pdf")
        assert (r.status_code, r.headers["content-type"]) == (200, "application/pdf")
        assert r.content.startswith(b"%PDF") and b"Ferritine" in r.content
        audit = c.get(f"/console/dossiers/{patient}/audit").text
        assert audit.count('data-action="document.read"') == 2  # the page, then the PDF
    with _login(api, "professional", rpps=TRUSTED, role="médecin") as c:
        assert c.get(f"/console/documents/{doc}/embedded.pdf").status_code == 404
    with _login(api, "professional", rpps=TREATING, role="médecin") as c:
        r = c.get(f"/console/documents/{data['masked_doc']}/embedded.pdf")
        assert r.status_code == 404 and "NO_EMBEDDED_PDF" in r.text


def test_results_table_shows_ranges_and_flags(world) -> None:  # noqa: ANN001
    """The patient of the deposited blood count reads the results as a table: value, unit,
    reference range, flag; the low platelet count stands out."""
    api, data = world
    patient = str(show_import(api.ctx.engine, data["imports"]["lab"])["patient_id"])
    with _login(api, "patient", patient=patient) as c:
        page = c.get(f"/console/dossiers/{patient}").text
    table = re.search(r'<table class="results">(.*?)</table>', page, re.S).group(1)
    rows = {re.sub(r"<[^>]+>", "|", row) for row in re.findall(r"<tr[^>]*>.*?</tr>", table,
                                                                re.S)}
    platelets = next(r for r in rows if "Plaquettes" in r)
    assert "96" in platelets and "150-400" in platelets and "|L|" in platelets
    assert re.search(r'<tr class="abnormal"><td>[^<]*</td><td>Plaquettes', table)
    haemoglobin = next(r for r in rows if "Hémoglobine" in r)
    assert "12.0-16.0" in haemoglobin and "|N|" in haemoglobin
    assert not re.search(r'<tr class="abnormal"><td>[^<]*</td><td>Hémoglobine', table)


def test_what_messages_carry_is_escaped(world) -> None:  # noqa: ANN001
    api, data = world
    broken = data["imports"]["broken"]
    with _login(api, "admin", subject="alice") as c:
        for path in ("/console/imports?status=failed", f"/console/imports/{broken}?raw=1"):
            page = c.get(path).text
            assert SCRIPT not in page and "&lt;script&gt;" in page, path
        raw = c.get(f"/console/imports/{broken}?raw=1").text
        # the error's field (OBX[7]-5) highlighted in its segment
        assert re.search(r'class="line marked"[^\n]*<mark>&lt;script&gt;alert\(&#39;x&#39;\)'
                         r'&lt;/script&gt;</mark>', raw), raw
        # reading the raw message is in the audit trail
        assert any(e["action"] == "import.raw"
                   for e in show_import(api.ctx.engine, broken)["audit"])


def test_french_by_default_english_on_request(world) -> None:  # noqa: ANN001
    api, _ = world
    with httpx.Client(base_url=api.url, timeout=60) as c:
        assert "Connexion" in c.get("/console/login").text
        assert "Log in" in c.get("/console/login",
                                 headers={"Accept-Language": "en-GB,en;q=0.8"}).text
        r = c.get("/console/login?lang=en")
        assert "Log in" in r.text and "dmp_lang=en" in r.headers["set-cookie"]
        assert "Log in" in c.get("/console/login").text  # the cookie keeps it
        assert "Connexion" in c.get("/console/login?lang=fr").text
    with _login(api, "admin", subject="alice") as c:
        assert "Tableau de bord" in c.get("/console/dashboard").text
        assert "Dashboard" in c.get("/console/dashboard?lang=en").text


def test_imports_list_filters_and_pages(world, monkeypatch) -> None:  # noqa: ANN001
    """The list by status, source, channel, code, time and patient; pages (two rows a page
    here) that keep the filter, next and previous, every row once."""
    monkeypatch.setattr("api.console.web.PAGE", 2)
    api, data = world
    pushed = data["imports"]

    def ids(page: str) -> list[int]:
        return [int(i) for i in re.findall(r'<tr class="row-\w+" id="import-(\d+)"', page)]

    with _login(api, "admin", subject="alice") as c:
        seen, url = [], "/console/imports?channel=http&since=24h"
        while url:
            page = c.get(url).text
            assert len(ids(page)) <= 2 and not set(ids(page)) & set(seen)
            seen += ids(page)
            found = re.search(r'href="(\?[^"]*)" id="next-page"', page)
            url = "/console/imports" + html.unescape(found.group(1)) if found else None
            if url:
                assert "channel=http" in url and "since=24h" in url
        assert set(pushed.values()) <= set(seen) and len(seen) == len(set(seen)) >= 5
        assert "offset=" in page and ids(page)  # the last page links back
        assert ids(c.get("/console/imports?status=quarantined&source=labm").text) == [
            pushed["unknown"]]
        assert ids(c.get("/console/imports?source=hospital&code=IDENTITY_UNKNOWN_PATIENT")
                   .text) == [pushed["stranger"]]
        lab_patient = str(show_import(api.ctx.engine, pushed["lab"])["patient_id"])
        assert pushed["lab"] in ids(c.get(f"/console/imports?patient={lab_patient}").text)
        assert ids(c.get("/console/imports?until=2000-01-01").text) == []
        assert ids(c.get("/console/imports?channel=mllp").text) == []


def test_actions_are_confirmed_then_done(world) -> None:  # noqa: ANN001
    """Without JS: the first POST answers a confirmation page, the second acts. A discard
    without a reason is refused by pipelines/admin.py, shown as a page."""
    api, data = world
    broken = data["imports"]["broken"]
    with _login(api, "admin", subject="alice") as c:
        csrf = _csrf(c.get(f"/console/imports/{broken}").text)
        confirm = c.post(f"/console/imports/{broken}/rerun", data={"csrf": csrf})
        assert confirm.status_code == 200 and "confirm-form" in confirm.text
        r = c.post(f"/console/imports/{broken}/rerun", data={"csrf": csrf, "confirmed": "1"})
        assert r.status_code == 303 and "done=rerun" in r.headers["location"]
        info = show_import(api.ctx.engine, broken)
        assert info["status"] == "failed" and len(info["attempts"]) == 2
        assert any(e["action"] == "import.rerun" for e in info["audit"])
        r = c.post(f"/console/imports/{broken}/discard",
                   data={"csrf": csrf, "confirmed": "1", "reason": " "})
        assert r.status_code == 400 and "reason" in r.text


def test_discard_with_a_reason_from_the_page(world) -> None:  # noqa: ANN001
    """Discard: confirmed first, then done with its reason, shown on the page and in the
    audit trail under the logged-in admin."""
    api, _ = world
    junk = _push(api.ctx, "labm", b"neither HL7 nor CDA nor PDF", "junk.bin")
    drain(api.ctx)
    assert show_import(api.ctx.engine, junk)["status"] == "failed"
    with _login(api, "admin", subject="carol") as c:
        page = c.get(f"/console/imports/{junk}").text
        assert 'id="discard-form"' in page and 'data-confirm="' in page
        csrf = _csrf(page)
        confirm = c.post(f"/console/imports/{junk}/discard",
                         data={"csrf": csrf, "reason": "fichier de test du labo"})
        assert confirm.status_code == 200 and "fichier de test du labo" in confirm.text
        assert show_import(api.ctx.engine, junk)["status"] == "failed"  # not yet
        r = c.post(f"/console/imports/{junk}/discard",
                   data={"csrf": csrf, "confirmed": "1", "reason": "fichier de test du labo"})
        assert r.status_code == 303 and "done=discard" in r.headers["location"]
        assert "fichier de test du labo" in c.get(r.headers["location"]).text
    info = show_import(api.ctx.engine, junk)
    assert (info["status"], info["discard_reason"]) == ("discarded", "fichier de test du labo")
    assert [(e["action"], e["actor"], e["reason"]) for e in info["audit"]] == [
        ("import.discard", "carol", "fichier de test du labo")]


def test_archive_down_is_said_on_the_page(world, monkeypatch) -> None:  # noqa: ANN001
    """The raw message cannot be read (archive unreachable): the detail page still opens and
    says so in its language."""
    from pipelines.archive import ArchiveUnavailable

    def down(*args: object, **kwargs: object) -> None:
        raise ArchiveUnavailable("s3 unreachable")

    monkeypatch.setattr("api.console.web.read_raw", down)
    api, data = world
    with _login(api, "admin", subject="alice") as c:
        r = c.get(f"/console/imports/{data['imports']['lab']}?raw=1&lang=fr")
        assert r.status_code == 200 and "ne peut pas être lue pour le moment" in r.text
        r = c.get(f"/console/imports/{data['imports']['lab']}?raw=1&lang=en")
        assert "The archive cannot be read now." in r.text


def test_failed_pdf_opens_at_the_errors_page(world) -> None:  # noqa: ANN001
    """A PDF has no lines to highlight: the detail page shows it in the browser's viewer at
    the page the error names; reading it is audited."""
    import html

    from api.console.web import pdf_page
    from pipelines.advice import advice

    api, _ = world
    data = (SAMPLES / "pdf" / "14_radio_rachis_lombaire_K5_tronque.pdf").read_bytes()
    pdf = _push(api.ctx, "imaging", data, "tronque.pdf")
    with api.ctx.engine.begin() as conn:
        conn.execute(update(imports).where(imports.c.id == pdf).values(
            status="failed", error_code="PDF_CORRUPT", error_location="page 2"))
    with _login(api, "admin", subject="alice") as c:
        detail = c.get(f"/console/imports/{pdf}?raw=1")
        assert f'src="/console/imports/{pdf}/raw.pdf#page=2"' in detail.text
        # what to do about it, from pipelines/tables/error_advice.csv, as the CLI says it
        assert f'<td id="advice">{html.escape(advice("PDF_CORRUPT"), quote=False)}</td>' \
            in detail.text
        assert f'title="{html.escape(advice("PDF_CORRUPT"))}"' in c.get("/console/dashboard").text
        r = c.get(f"/console/imports/{pdf}/raw.pdf")
        assert (r.status_code, r.headers["content-type"], r.content) == (
            200, "application/pdf", data)
        lab = world[1]["imports"]["lab"]
        assert c.get(f"/console/imports/{lab}/raw.pdf").status_code == 404
    assert [a["action"] for a in show_import(api.ctx.engine, pdf)["audit"]] == [
        "import.raw", "import.raw"]
    assert (pdf_page("page 12"), pdf_page("OBX[4]-5"), pdf_page(None)) == (12, None, None)


def test_bulk_rerun_with_progress(world) -> None:  # noqa: ANN001
    api, _ = world
    with _login(api, "admin", subject="alice") as c:
        csrf = _csrf(c.get("/console/imports?status=failed").text)
        confirm = c.post("/console/bulk-rerun", data={"csrf": csrf, "status": "failed"})
        assert confirm.status_code == 200 and "1" in confirm.text
        r = c.post("/console/bulk-rerun", data={"csrf": csrf, "status": "failed",
                                                "confirmed": "1"})
        assert r.status_code == 303 and r.headers["location"].startswith("/console/jobs/")
        job = r.headers["location"]
        deadline = time.monotonic() + 60
        while True:
            state = c.get(job + ".json").json()
            if state["finished"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert state["finished"] and state["error"] is None
        assert state["percent"] == 100 and state["outcomes"] == {"failed": 1}
        page = c.get(job)
        assert page.status_code == 200 and "job-progress" in page.text
        assert "refresh" not in page.headers
        assert "en échec 1" in page.text  # outcomes in the page's language, not as codes
        names = json.loads(html.unescape(re.search(r"data-names='([^']*)'", page.text)
                                         .group(1)))
        assert names["failed"] == "en échec"  # ... also for the live (JS) updates


def test_assign_and_edit_from_the_page(world) -> None:  # noqa: ANN001
    """Assign a quarantined CDA to a dossier (then rerun): deposited there. Edit the broken
    message (the script replaced by a number): a new import, deposited; the original is
    closed as edited. Both in the audit trail, by the logged-in admin."""
    api, data = world
    stranger, broken = data["imports"]["stranger"], data["imports"]["broken"]
    with _login(api, "admin", subject="bob") as c:
        csrf = _csrf(c.get(f"/console/imports/{stranger}").text)
        r = c.post(f"/console/imports/{stranger}/assign",
                   data={"csrf": csrf, "confirmed": "1", "patient": data["k1"],
                         "reason": "identité vérifiée par téléphone"})
        assert r.status_code == 303 and "done=assign" in r.headers["location"]
        info = show_import(api.ctx.engine, stranger)
        assert (info["status"], str(info["patient_id"])) == ("deposited", data["k1"])
        assert {("import.assign", "bob")} <= {(e["action"], e["actor"])
                                              for e in info["audit"]}
        page = c.get(f"/console/imports/{broken}?raw=1").text
        text = re.search(r'<textarea name="content"[^>]*>(.*?)</textarea>', page, re.S).group(1)
        text = html.unescape(text)
        assert SCRIPT in text
        r = c.post(f"/console/imports/{broken}/edit",
                   data={"csrf": csrf, "confirmed": "1", "reason": "valeur corrigée",
                         "content": text.replace(SCRIPT, "13.2")})
        assert r.status_code == 303, r.text
        new_id = int(re.search(r"/console/imports/(\d+)", r.headers["location"]).group(1))
        assert new_id != broken
        assert show_import(api.ctx.engine, new_id)["status"] == "deposited"
        original = show_import(api.ctx.engine, broken)
        assert original["status"] == "discarded" and original["edited_as"] == [new_id]
        assert any(e["action"] == "import.edit" and e["actor"] == "bob"
                   for e in original["audit"])
        assert f"/console/imports/{new_id}" in c.get(f"/console/imports/{broken}").text


def test_dashboard_aggregates(ctx) -> None:  # noqa: ANN001
    """Per hour and per day, per source and status, on SQLite and PostgreSQL."""
    from pipelines.dashboard import backlog, per_source, timeline

    _push(ctx, "labm", (SAMPLES / "hl7v2" / "01_labm_nfs.hl7").read_bytes(), "a.hl7")
    _push(ctx, "labm", b"not a message at all", "b.hl7")
    _push(ctx, "hospital", (SAMPLES / "cda" / "10_crbio_hcg_restreint.xml").read_bytes(),
          "c.xml")
    assert backlog(ctx.engine)["received"] == 3
    drain(ctx)
    hourly = timeline(ctx.engine, hourly=True)
    assert len(hourly["labels"]) == 24 and hourly["sources"] == {"hospital": 1, "labm": 2}
    # no dossier in this store: both messages wait for their patient
    assert {s: sum(v) for s, v in hourly["series"].items()} == {"failed": 1,
                                                               "quarantined": 2}
    assert sum(hourly["series"]["failed"][-2:]) == 1  # this hour (or the previous one)
    daily = timeline(ctx.engine, hourly=False, source="labm")
    assert len(daily["labels"]) == 30
    assert {s: sum(v) for s, v in daily["series"].items()} == {"quarantined": 1, "failed": 1}
    assert per_source(ctx.engine) == [
        {"source": "hospital", "counts": {"quarantined": 1}, "total": 1},
        {"source": "labm", "counts": {"quarantined": 1, "failed": 1}, "total": 2}]
    assert backlog(ctx.engine)["received"] == 0


# -- end to end in headless Chromium ------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():  # noqa: ANN201
    """One headless Chromium for the module, driven through Debian's chromedriver (Selenium
    Manager is never asked to download anything)."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("DMP_REQUIRE_CHROMIUM") == "1":
            pytest.fail("chromium/chromedriver not found and DMP_REQUIRE_CHROMIUM=1")
        pytest.skip("chromium and chromium-driver not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--lang=fr-FR", "--no-first-run",
                "--disable-extensions", "--disable-background-networking"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": "fr-FR,fr"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver, name: str) -> Path:  # noqa: ANN001
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def _browser_login(driver, api, token: str) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(api.url + "/console/login")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "login-submit").click()


def test_browser_admin_fixes_a_quarantined_import(world, browser) -> None:  # noqa: ANN001
    """Log in, see the quarantined import (unknown patient), create the missing dossier,
    rerun it from the page (JS confirm accepted), see it deposited."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    api, data = world
    unknown = data["imports"]["unknown"]
    wait = WebDriverWait(browser, 30)
    _browser_login(browser, api, api.token("admin", subject="alice"))
    wait.until(ec.presence_of_element_located((By.ID, "health")))
    assert "Tableau de bord" in browser.page_source
    _shot(browser, "01-dashboard")
    browser.get(api.url + "/console/imports?status=quarantined")
    row = browser.find_element(By.ID, f"import-{unknown}")
    assert "IDENTITY_UNKNOWN_PATIENT" in row.text
    _shot(browser, "02-imports-quarantined")
    row.find_element(By.LINK_TEXT, str(unknown)).click()
    wait.until(ec.presence_of_element_located((By.ID, "rerun")))
    badge = browser.find_element(By.ID, "import-status")
    assert (badge.get_attribute("data-status"), badge.text) == ("quarantined", "en quarantaine")
    browser.set_window_size(768, 1024)  # tablet width: still usable
    _shot(browser, "03-import-quarantined-tablet")
    browser.set_window_size(1280, 1000)
    create_dossiers(api.ctx.engine, [UNKNOWN])  # the fix: the missing dossier
    browser.find_element(By.ID, "rerun").click()
    wait.until(ec.alert_is_present()).accept()
    wait.until(ec.presence_of_element_located((By.ID, "done")))
    badge = browser.find_element(By.ID, "import-status")
    assert (badge.get_attribute("data-status"), badge.text) == ("deposited", "déposé")
    assert "deposited:1" in browser.find_element(By.ID, "done").text
    _shot(browser, "04-import-deposited")
    assert show_import(api.ctx.engine, unknown)["status"] == "deposited"
    # a failed message: its raw text with the error's field highlighted, the script inert
    browser.get(api.url + f"/console/imports/{data['imports']['broken']}")
    browser.find_element(By.ID, "show-raw").click()
    mark = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".line.marked mark")))
    assert mark.text == SCRIPT
    browser.execute_script("arguments[0].scrollIntoView()", mark)
    _shot(browser, "05-raw-message-highlighted")
    # a bulk rerun of a source's failed ones: confirmed on its page, then a progress bar to
    # the end, the outcomes in the page's language
    for i in range(3):
        _push(api.ctx, "bulk-lab", b"not a message %d" % i, f"junk{i}.txt")
    drain(api.ctx)
    browser.get(api.url + "/console/imports?status=failed&source=bulk-lab")
    browser.find_element(By.ID, "bulk-rerun").click()
    wait.until(ec.presence_of_element_located((By.ID, "confirm-yes"))).click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, '#job[data-finished="1"]')))
    assert browser.find_element(By.ID, "job-progress").get_attribute("value") == "100"
    assert browser.find_element(By.ID, "job-state").text == "Terminé"
    assert browser.find_element(By.ID, "job-outcomes").text.strip() == "en échec 3"
    _shot(browser, "05b-bulk-rerun-done")


def test_browser_masked_document(world, browser) -> None:  # noqa: ANN001
    """An authorised professional does not see K8's masked report; the médecin traitant
    sees it and reads it rendered."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    api, data = world
    k8, doc = data["k8"], data["masked_doc"]
    wait = WebDriverWait(browser, 30)
    _browser_login(browser, api, api.token("professional", rpps=TRUSTED, role="infirmière"))
    wait.until(ec.presence_of_element_located((By.ID, "pick-form")))
    browser.find_element(By.ID, "ref").send_keys(k8)
    browser.find_element(By.ID, "pick-open").click()
    wait.until(ec.presence_of_element_located((By.ID, "documents")))
    assert not browser.find_elements(By.ID, f"doc-{doc}")
    _shot(browser, "06-professional-without-masked")
    browser.get(api.url + f"/console/documents/{doc}")
    assert "NOT_FOUND" in browser.find_element(By.ID, "error-message").text
    _browser_login(browser, api, api.token("professional", rpps=TREATING, role="médecin"))
    wait.until(ec.presence_of_element_located((By.ID, "pick-form")))
    browser.get(api.url + f"/console/dossiers/{k8}")
    row = wait.until(ec.presence_of_element_located((By.ID, f"doc-{doc}")))
    assert "masqué" in row.text
    _shot(browser, "07-treating-with-masked")
    browser.set_window_size(768, 1024)
    _shot(browser, "07b-treating-with-masked-tablet")
    browser.set_window_size(1280, 1000)
    row.find_element(By.CLASS_NAME, "open-doc").click()
    cda = wait.until(ec.presence_of_element_located((By.ID, "cda")))
    assert cda.find_elements(By.TAG_NAME, "h3")
    _shot(browser, "08-treating-reads-the-cda")


def _overflow(driver) -> int:  # noqa: ANN001
    """How many CSS pixels the page is wider than the window (0: no sideways scrolling; wide
    tables and raw messages scroll inside their own box)."""
    return driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth")


def test_browser_pages_fit_1280_and_tablet(world, browser) -> None:  # noqa: ANN001
    """Every role's pages at 1280 px and at a tablet's width (768 px, portrait): nothing
    wider than the window, the navigation and the language links still there."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    api, data = world
    k8, doc = data["k8"], data["masked_doc"]
    broken = data["imports"]["broken"]
    wait = WebDriverWait(browser, 30)
    roles = (
        (api.token("admin", subject="alice"), "health",
         ("/console/dashboard", "/console/imports", f"/console/imports/{broken}?raw=1")),
        (api.token("professional", rpps=TREATING, role="médecin"), "pick-form",
         (f"/console/dossiers/{k8}", f"/console/documents/{doc}")),
        (api.token("patient", patient=k8), "documents",
         (f"/console/dossiers/{k8}", f"/console/dossiers/{k8}/audit")))
    try:
        for token, landing, paths in roles:
            _browser_login(browser, api, token)
            wait.until(ec.presence_of_element_located((By.ID, landing)))
            for width, height in ((1280, 1000), (768, 1024)):
                browser.set_window_size(width, height)
                for path in paths:
                    browser.get(api.url + path)
                    wait.until(ec.presence_of_element_located((By.TAG_NAME, "main")))
                    assert _overflow(browser) <= 0, (path, width, _overflow(browser))
                    assert browser.find_element(By.ID, "lang-en").is_displayed(), path
                    assert browser.find_element(By.ID, "logout").is_displayed(), path
                    loaded = browser.execute_script(
                        "return performance.getEntriesByType('resource').map(e => e.name)")
                    assert loaded and all(u.startswith(api.url + "/console/") for u in loaded), \
                        loaded  # the stylesheet and script, from here: no CDN
        _shot(browser, "09-patient-audit-tablet")
    finally:
        browser.set_window_size(1280, 1000)


def teardown_module() -> None:
    """Screenshots of a skipped run are not left half-made."""
    if ARTIFACTS.exists() and not any(ARTIFACTS.iterdir()):
        shutil.rmtree(ARTIFACTS, ignore_errors=True)


def test_cda_narrative_is_whitelisted_and_escaped() -> None:
    """A CDA's narrative keeps paragraphs, lists and tables; scripts, handlers, links and
    styles are dropped to their text; a DTD is never loaded."""
    from api.console.render import cda_view, raw_lines

    doc = b"""<?xml version="1.0"?>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>CR &lt;b&gt;</title><component>
<structuredBody><component><section><title>Conclusion<script>x()</script></title>
<text><paragraph onclick="x()">Normal <content styleCode="Bold">ici</content></paragraph>
<list><item>a</item></list><table><tr><td>1</td></tr></table>
<linkHtml href="javascript:x()">lien</linkHtml><renderMultiMedia referencedObject="i"/>
</text></section></component></structuredBody></component></ClinicalDocument>"""
    view = cda_view(doc)
    assert view.title == "CR <b>"
    heading, body = view.sections[0]
    assert heading == "Conclusion"
    assert str(body) == ("<p>Normal <span>ici</span></p>\n<ul><li>a</li></ul><table><tr><td>1"
                         "</td></tr></table>\nlien\n")
    with pytest.raises(ValueError):
        cda_view(b"<ClinicalDocument><unclosed></ClinicalDocument>")
    xml = "<a>\n<b>\n<recordTarget/>\n</b>\n</a>"
    assert [line.number for line in raw_lines(xml, "cda", "line 2, column 3")
            if line.marked] == [2]
    xml = "<ClinicalDocument>\n<b>\n</b>\n<recordTarget/>\n</ClinicalDocument>"
    assert [line.number for line in raw_lines(xml, "cda", "/ClinicalDocument/recordTarget")
            if line.marked] == [4]


def test_cda_error_path_is_found_in_the_document() -> None:
    """A CDA error's XPath-like location (local names, [n] among same-named siblings, as
    parsers/cda writes them) marks the line of the element it names, not the first element
    of that name, and highlights its start tag, also when the whole document is one line."""
    from api.console.render import raw_lines

    doc = ('<?xml version="1.0" encoding="ISO-8859-1"?>\r\n'
           '<ClinicalDocument xmlns="urn:hl7-org:v3">\r\n'
           '  <recordTarget><patientRole/></recordTarget>\r\n'
           '  <recordTarget><patientRole/></recordTarget>\r\n'
           '  <component><structuredBody>\r\n'
           '    <component><section><title>A</title></section></component>\r\n'
           '    <component>\r\n'
           '      <section ID="s2"><title>B</title></section>\r\n'
           '    </component>\r\n'
           '  </structuredBody></component>\r\n'
           '</ClinicalDocument>\r\n')

    def marked(text: str, location: str) -> list[tuple[int, list[str]]]:
        return [(line.number, [t for t, hit in line.parts if hit])
                for line in raw_lines(text, "cda", location) if line.marked]

    assert marked(doc, "/ClinicalDocument/recordTarget[2]") == [(4, ["<recordTarget>"])]
    assert marked(doc, "/ClinicalDocument/recordTarget[1]/patientRole") == [
        (3, ["<patientRole/>"])]
    assert marked(doc, "/ClinicalDocument/component/structuredBody/component[2]/section") \
        == [(8, ['<section ID="s2">'])]
    assert marked(doc, "/ClinicalDocument/component/structuredBody/component[2]/section/"
                  "@ID") == [(8, ['<section ID="s2">'])]
    one_line = doc.replace("\r\n", "")
    assert marked(one_line, "/ClinicalDocument/recordTarget[2]/patientRole") == [
        (1, ["<patientRole/>"])]
    lines = raw_lines(one_line, "cda", "/ClinicalDocument/recordTarget[2]/patientRole")
    before = "".join(t for t, hit in lines[0].parts[:1])
    assert before.count("<patientRole/>") == 1  # the second one is the highlighted one
    # a path naming nothing in the document: nothing marked rather than a wrong guess; a
    # text that is not XML (cut short): the first element of that name, at best
    assert marked(doc, "/ClinicalDocument/recordTarget[3]") == []
    assert marked(doc[:-30], "/ClinicalDocument/recordTarget[2]") == [(3, [])]


def test_cda_error_location_from_the_pipeline(ctx) -> None:  # noqa: ANN001
    """A CDA naming two patients fails with the second recordTarget's path: the detail
    page's raw view marks that element's line."""
    from api.console.render import raw_lines

    text = (SAMPLES / "cda" / "01_crbio_labm_lipides_glycemie.xml").read_text(encoding="utf-8")
    block = re.search(r"  <recordTarget>.*?</recordTarget>\n", text, re.S).group(0)
    twice = text.replace(block, block + block, 1)
    import_id = _push(ctx, "hospital", twice.encode("utf-8"), "deux.xml")
    drain(ctx)
    info = show_import(ctx.engine, import_id)
    assert (info["status"], info["error_code"]) == ("failed", "CDA_MULTIPLE_PATIENTS")
    second = twice[:twice.index(block) + len(block)].count("\n") + 1
    lines = raw_lines(twice, "cda", info["error_location"])
    assert [line.number for line in lines if line.marked] == [second], info["error_location"]
    assert lines[second - 1].parts[1] == ("<recordTarget>", True)


def test_dashboard_shows_the_services_health(tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """`serve` with its MLLP listener and a drop folder: the dashboard shows the listener's
    port and each poller's last poll."""
    import dataclasses

    from pipelines.settings import FolderSource, load_settings

    base = api_settings(load_settings(env={
        "DMP_HOME": str(tmp_path / "home"),
        "DMP_DATABASE_URL": migrated_sqlite(sqlite_template, tmp_path / "db.sqlite3"),
        "DMP_ARCHIVE_URL": str(tmp_path / "archive")}))
    (tmp_path / "drop").mkdir()
    settings = dataclasses.replace(
        base, listener=dataclasses.replace(base.listener, port=0),
        folders=(FolderSource(id="drop", path=tmp_path / "drop", settle_seconds=0,
                              poll_interval=0.2),))
    ctx = Context.from_settings(settings)
    try:
        with running_api(ctx, mllp=True, pollers=True) as api, \
                _login(api, "admin", subject="alice") as c:
            deadline = time.monotonic() + 30
            while True:
                page = c.get("/console/dashboard?lang=en").text
                if "last poll never" not in page or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        health = re.search(r'id="health">(.*?)</section>', page, re.S).group(1)
        assert "MLLP listener" in health and "not running" not in health
        assert re.search(r"port \d+", health) and "<b>drop</b>" in health
        assert "last poll never" not in health
    finally:
        ctx.engine.dispose()


def test_results_trends_and_documents_are_grouped() -> None:
    """The viewer's layout of what access.read_entries returned: a code measured twice is a
    trend (an SVG with its reference range), files are documents, the rest per type."""
    from api.console.web import group_entries

    def entry(i: int, **kw: object) -> dict:
        base = {"id": i, "type": "lab_result", "code": "718-7", "unit": "g/dL",
                "display": "Hémoglobine", "value": None, "value_num": None,
                "reference_range": "12.0-16.0", "effective": f"2025-0{i}-01",
                "has_file": False, "masked": False}
        return {**base, **kw}

    grouped = group_entries([
        entry(1, value="13.1", value_num=13.1), entry(2, value="11.2", value_num=11.2),
        entry(3, code="2951-2", value="140", value_num=140.0),
        entry(4, type="document", code="11502-2", has_file=True),
        entry(5, type="problem", code="I10")])
    assert [r["id"] for r in grouped["results"]] == [3, 2, 1]
    (trend,) = grouped["trends"]
    assert (trend["code"], trend["count"], trend["last"]["id"]) == ("718-7", 2, 2)
    assert str(trend["chart"]).startswith("<svg") and "<rect" in str(trend["chart"])
    assert [d["id"] for d in grouped["documents"]] == [4]
    assert list(grouped["others"]) == ["problem"]


def test_pages_on_postgresql(postgres_server, tmp_path) -> None:  # noqa: ANN001
    """The admin's pages and a dossier over the PostgreSQL store (its own date buckets)."""
    from pipelines.settings import load_settings

    settings = api_settings(load_settings(env={
        "DMP_HOME": str(tmp_path / "home"), "DMP_DATABASE_URL": postgres_server.new_database(),
        "DMP_ARCHIVE_URL": str(tmp_path / "archive")}))
    ctx = Context.from_settings(settings)
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])
    lab = _push(ctx, "labm", (SAMPLES / "hl7v2" / "01_labm_nfs.hl7").read_bytes(), "a.hl7")
    _push(ctx, "labm", b"not a message at all", "b.hl7")
    drain(ctx)
    patient = str(show_import(ctx.engine, lab)["patient_id"])
    try:
        with running_api(ctx) as api:
            with _login(api, "admin", subject="alice") as c:
                page = c.get("/console/dashboard")
                assert page.status_code == 200 and "<svg" in page.text
                assert "UNKNOWN_FORMAT" in page.text
                assert c.get("/console/imports?status=failed&since=1h").status_code == 200
                assert c.get(f"/console/imports/{lab}?raw=1").status_code == 200
            with _login(api, "patient", patient=patient) as c:
                page = c.get(f"/console/dossiers/{patient}")
                assert page.status_code == 200 and 'id="results"' in page.text
    finally:
        ctx.engine.dispose()
