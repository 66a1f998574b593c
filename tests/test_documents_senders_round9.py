"""Documents carried in HL7v2, round 9: the cancel or replacement of a number filed as a CDA
and its PDF rendering, notification-only MDMs accepted, an MDM^T10 re-sending its own
TXA-12, a PDF too large for one MLLP frame, scanned pages sent as images.

Why: each test pins what a real sender sends and what we must file for it; the ones marked
'was' failed before the fix of the same commit."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dossiers.schema import imports
from normalizers.model import DOCUMENT
from pipelines.acknowledge import Frame, _too_large, _verdict
from pipelines.ledger import ImportFilter, where_filter
from tests.conftest import migrated_sqlite
from tests.mllp_support import Client, msa, running_service, segment
from tests.test_documents_normalizer import PID, b64, cda, norm
from tests.test_documents_senders import _filed
from tests.test_documents_senders_round4 import _auto, _through
from tests.test_mllp_service import make_ctx

# a PDF rendering as a DPI sends it beside its CDA (a minimal one: its text is not read)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
CDA_KEY = "document|1.2.250.1.999.1.7^DOC-50"


def _mdm(trigger: str, txa12: str, obx: list[str], txa13: str = "", txa17: str = "LA") -> str:
    """An MDM (v2.5) of a hospital's DPI: TXA-12 and TXA-13 as given, then the OBX given."""
    segs = [f"MSH|^~\\&|DPI-Y|CHU-EST|DMP|GHT|202405061130||MDM^{trigger}^MDM_T02|"
            f"DPI-{trigger}-{len(obx)}|P|2.5|||||FRA|UNICODE UTF-8",
            "EVN||20240506113000", PID, "PV1|1|O",
            f"TXA|1|11502-2^CR d'examens biologiques^LN|TX|202405061100||||||||{txa12}|"
            f"{txa13}||||{txa17}||AV", *obx]
    return "\r".join(segs) + "\r"


def _cda_obx(n: int, ext: str, parent: str | None = None, obx11: str = "F") -> str:
    return (f"OBX|{n}|ED|11502-2^CR d'examens biologiques^LN||^TEXT^XML^Base64^"
            f"{b64(cda(ext, parent))}||||||{obx11}")


def _pdf_obx(n: int, data: bytes = PDF, obx11: str = "F") -> str:
    return f"OBX|{n}|ED|11502-2^CR d'examens biologiques^LN||^AP^PDF^Base64^{b64(data)}" \
           f"||||||{obx11}"


def _documents(ctx) -> dict[str, tuple[bool, str]]:  # noqa: ANN001
    """key -> (current, status) of each document's current version, else its last."""
    out: dict[str, tuple[bool, str]] = {}
    for e in _filed(ctx):
        if e.type == DOCUMENT and (e.current or e.key not in out):
            out[e.key] = (e.current, e.status)
    return out


# -- a cancel or replacement of a number reaches the CDA and its PDF ------------------------------
T02 = _mdm("T02", "CR-500^DPI-Y", [_cda_obx(1, "DOC-50"), _pdf_obx(2)])


@pytest.mark.parametrize(("follow", "expected"), [
    # T11: both withdrawn. Was: the PDF alone, the CDA current
    (_mdm("T11", "CR-500^DPI-Y", []),
     {CDA_KEY: (True, "withdrawn"), "document|CR-500|DPI-Y": (True, "withdrawn")}),
    # T10 with the PDF alone: the CDA it was filed with is superseded too. Was: still current
    (_mdm("T10", "CR-501^DPI-Y", [_pdf_obx(1, PDF + b"%v2\n", "C")], txa13="CR-500^DPI-Y"),
     {CDA_KEY: (False, "final"), "document|CR-500|DPI-Y": (False, "final"),
      "document|CR-501|DPI-Y": (True, "corrected")}),
    # T10 with a CDA naming no RPLC: it replaces the number, and the old CDA with it
    (_mdm("T10", "CR-501^DPI-Y", [_cda_obx(1, "DOC-51", obx11="C")], txa13="CR-500^DPI-Y"),
     {CDA_KEY: (False, "final"), "document|CR-500|DPI-Y": (False, "final"),
      "document|1.2.250.1.999.1.7^DOC-51": (True, "corrected")}),
    # unchanged: a T10 carrying both, its CDA's RPLC naming the old CDA
    (_mdm("T10", "CR-501^DPI-Y", [_cda_obx(1, "DOC-51", "DOC-50", "C"),
                                   _pdf_obx(2, PDF + b"%v2\n", "C")], txa13="CR-500^DPI-Y"),
     {CDA_KEY: (False, "final"), "document|CR-500|DPI-Y": (False, "final"),
      "document|1.2.250.1.999.1.7^DOC-51": (True, "corrected"),
      "document|CR-501|DPI-Y": (True, "corrected")}),
])
def test_a_cancel_or_replacement_of_a_number_reaches_the_cda_and_its_pdf(sqlite_ctx, follow,
                                                                          expected):
    """MDM^T02 carrying the CR-BIO and its PDF rendering under TXA-12 CR-500: the CDA is filed
    under its id, the PDF under the number. Whatever cancels or replaces CR-500 acts on both."""
    ctx = _auto(sqlite_ctx)
    rows = _through(ctx, T02, follow)
    assert [r.status for r in rows] == ["deposited", "deposited"]
    assert _documents(ctx) == expected


# -- notification-only MDMs: accepted, nothing filed ---------------------------------------------
@pytest.mark.parametrize(("trigger", "brings"), [
    ("T01", "T02"), ("T03", "T04"), ("T05", "T06"), ("T07", "T08"), ("T09", "T10")])
def test_a_notification_without_its_document_is_accepted_and_filed_nothing(sqlite_ctx, trigger,
                                                                            brings):
    """MDM^T01 (and T03 stating no status, T05, T07, T09) with TXA alone: valid HL7, nothing
    to file. Recorded deposited with no entry, the code on the row, answered AA with a
    warning. Was: failed, AR 201, and a sender stopping its queue on AR blocked."""
    ctx = _auto(sqlite_ctx)
    row, = _through(ctx, _mdm(trigger, "CR-600^DPI-Y", [], txa17=""))
    assert (row.status, row.stage, row.error_code, row.error_location, row.entries_count) == (
        "deposited", "notification", "MDM_NOTIFICATION_ONLY", "MSH-9", 0)
    assert f"the document content is expected in an MDM^{brings}" in row.error_message
    assert _filed(ctx) == []
    ack, err = _verdict((row.status, row.error_code, row.error_message, row.error_location))
    assert (ack, err.severity, err.hl7_code) == ("AA", "W", "0")
    with ctx.engine.connect() as conn:  # the admin finds them by code, or by stage
        for flt in (ImportFilter(error_code="MDM_NOTIFICATION_ONLY"),
                    ImportFilter(stage="notification")):
            assert conn.execute(where_filter(select(imports.c.id), flt)).scalars().all() \
                == [row.id]


# -- MDM^T10 re-sending its own TXA-12, no TXA-13 ------------------------------------------------
def test_a_replacement_under_its_own_number_says_so(sqlite_ctx):
    """T02 then T10 under TXA-12 CR-700, TXA-13 empty: the T10 is the next version (as it was
    filed), and the ledger says so. Was: 'replacement names no parent document'."""
    ctx = _auto(sqlite_ctx)
    report = "Créatininémie : 84 µmol/L. Débit de filtration glomérulaire estimé > 90 mL/min."
    text = "^TEXT^PLAIN^Base64^" + b64(report.encode())
    fixed = "^TEXT^PLAIN^Base64^" + b64(f"{report} Compte rendu corrigé.".encode())
    rows = _through(ctx, _mdm("T02", "CR-700^DPI-Y", [f"OBX|1|ED|11502-2^CR^LN||{text}||||||F"]),
                    _mdm("T10", "CR-700^DPI-Y", [f"OBX|1|ED|11502-2^CR^LN||{fixed}||||||C"]))
    assert [r.status for r in rows] == ["deposited", "deposited"]
    assert not any("names no parent" in w for w in rows[1].warnings or [])
    assert any(w.startswith("TXA[5]-12: replacement with no parent number (TXA-13 empty) "
                            "under the document's own number") for w in rows[1].warnings)
    assert _documents(ctx) == {"document|CR-700|DPI-Y": (True, "corrected")}
    # a CDA with an id of its own and neither RPLC nor TXA-13 still names none
    nm = norm(_mdm("T10", "CR-701^DPI-Y", [_cda_obx(1, "DOC-70", obx11="C")]))
    assert any("replacement names no parent document" in w for w in nm.warnings)


# -- a PDF too large for one MLLP frame ------------------------------------------------------------
def test_a_pdf_over_the_frame_limit_is_refused_naming_the_limit_and_its_setting(tmp_path,
                                                                                sqlite_template):
    """An MDM^T02 carrying a 30 KB scanned PDF to a listener limited to 20 000 bytes (a 10 MB
    limit and an 8 MB PDF, scaled down): AR naming the limit, the setting and the OBX that
    carries the document. Was: the sizes alone, nothing about what to change."""
    scan = b"%PDF-1.4\n" + bytes(range(256)) * 120 + b"\n%%EOF\n"
    big = _mdm("T02", "CR-800^DPI-Y", [_pdf_obx(1, scan)]).encode()
    ctx = make_ctx(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3"),
                   max_frame_bytes=20_000)
    try:
        with running_service(ctx) as svc, Client(svc.port) as client:
            ack = client.send(big)
        with ctx.engine.connect() as conn:
            row = conn.execute(select(imports)).one()
    finally:
        ctx.engine.dispose()
    assert msa(ack)[1] == "AR"
    err = segment(ack, "ERR")
    assert err[2].startswith("OBX^6^5")
    assert err[8].startswith(f"MLLP_FRAME_TOO_LARGE: frame of {len(big)} bytes is over the "
                             "listener's limit of 20000 bytes (setting mllp_max_frame_bytes, "
                             "environment DMP_MLLP_MAX_FRAME_BYTES); OBX[6]-5 carries a "
                             "document in base64")
    assert (row.status, row.error_code) == ("failed", "MLLP_FRAME_TOO_LARGE")
    assert "documents over about 15 KiB do not fit; raise the limit above " \
           f"{len(big)} bytes" in row.error_message
    # the default limit: about 7.5 MiB of document; a frame of no document says no more
    code, text, where = _too_large(Frame(big[:5000], "peer", None, size=11_000_000),
                                   10 * 2**20)
    assert (code, where) == ("MLLP_FRAME_TOO_LARGE", "OBX[6]-5")
    assert "documents over about 7.5 MiB do not fit" in text
    lab = b"MSH|^~\\&|SIL|LABO|DMP|GHT|20240506||ORU^R01|M1|P|2.5\rOBX|1|NM|2345-7||5,4\r"
    assert _too_large(Frame(lab, "peer", None, size=11_000_000), 10 * 2**20)[1:] == (
        "frame of 11000000 bytes is over the listener's limit of 10485760 bytes (setting "
        "mllp_max_frame_bytes, environment DMP_MLLP_MAX_FRAME_BYTES); only its first "
        f"{len(lab)} bytes "
        "were kept", "")
