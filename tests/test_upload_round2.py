"""Senders pushing over HTTP, round 2: what an integration engineer trips on when their
engine or script posts HL7v2, CDA and PDF to POST /imports (the real `serve` HTTP port).

Found: `curl -d @file` (line breaks stripped) accepted then failed later with no hint.
"""

from __future__ import annotations

import csv
import subprocess

import pytest
from sqlalchemy import select

from dossiers.schema import imports
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.process import Context
from tests.api_support import api_settings, running_api
from tests.conftest import SAMPLES

MAX_BODY = 256 * 1024
HL7 = SAMPLES / "hl7v2" / "01_labm_nfs.hl7"
PDF = SAMPLES / "pdf" / "01_irm_genou_droit_K1_texte.pdf"
CDA = SAMPLES / "cda" / "01_crbio_labm_lipides_glycemie.xml"


@pytest.fixture
def api(settings):  # noqa: ANN001, ANN201
    ctx = Context.from_settings(api_settings(settings, max_body=MAX_BODY))
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])
    with running_api(ctx) as running:
        yield running
    ctx.engine.dispose()


def _count(api) -> int:  # noqa: ANN001
    with api.ctx.engine.connect() as conn:
        return len(conn.execute(select(imports.c.id)).all())


def _curl(api, *args: str) -> tuple[int, str]:  # noqa: ANN001
    token = api.token("sender", source="labm")
    done = subprocess.run(["curl", "-sS", "-H", f"Authorization: Bearer {token}",
                           "-w", "\n%{http_code}", *args, f"{api.url}/imports"],
                          capture_output=True, timeout=30, check=True, text=True)
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def test_curl_d_strips_line_breaks_and_is_told_so(api) -> None:  # noqa: ANN001
    """`curl -d @result.hl7` drops every CR/LF: the message was archived as one long MSH
    segment (and a PDF corrupted), 202, and failed later. It is now 400 with the fix;
    --data-binary and a CDA sent with -d (whose XML survives) are taken."""
    import json

    for path in (HL7, PDF):
        status, body = _curl(api, "-d", f"@{path}")
        assert (status, json.loads(body)["error"]) == (400, "LINE_BREAKS_STRIPPED"), body
        assert "--data-binary" in json.loads(body)["message"]
    assert _count(api) == 0
    status, body = _curl(api, "--data-binary", f"@{HL7}")
    assert status == 202 and json.loads(body)["format"] == "hl7v2", body
    status, body = _curl(api, "-d", f"@{CDA}")
    assert status == 202 and json.loads(body)["format"] == "cda", body
