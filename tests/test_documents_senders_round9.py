"""Documents carried in HL7v2, round 9: the cancel or replacement of a number filed as a CDA
and its PDF rendering, notification-only MDMs accepted, an MDM^T10 re-sending its own
TXA-12, a PDF too large for one MLLP frame, scanned pages sent as images.

Why: each test pins what a real sender sends and what we must file for it; the ones marked
'was' failed before the fix of the same commit."""

from __future__ import annotations

import io

import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select

from dossiers.schema import imports
from normalizers.model import DOCUMENT
from parsers.pdf.image import image_pdf
from pipelines.acknowledge import Frame, _too_large, _verdict
from pipelines.ledger import ImportFilter, where_filter
from samples.generate_pdf import find_fonts
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
    """The CR-BIO ``ext`` (its setId SET-<its number's tens>: DOC-50 and DOC-51 one set)."""
    data = cda(ext, parent).replace(b'extension="SET-1"', f'extension="SET-{ext[4]}"'.encode())
    return (f"OBX|{n}|ED|11502-2^CR d'examens biologiques^LN||^TEXT^XML^Base64^"
            f"{b64(data)}||||||{obx11}")


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
     {CDA_KEY: (True, "withdrawn"), "document|CR-500|DPI-Y@CHU-EST": (True, "withdrawn")}),
    # T10 with the PDF alone: the CDA it was filed with is superseded too. Was: still current
    (_mdm("T10", "CR-501^DPI-Y", [_pdf_obx(1, PDF + b"%v2\n", "C")], txa13="CR-500^DPI-Y"),
     {CDA_KEY: (False, "final"), "document|CR-500|DPI-Y@CHU-EST": (False, "final"),
      "document|CR-501|DPI-Y@CHU-EST": (True, "corrected")}),
    # T10 with a CDA naming no RPLC: it replaces the number, and the old CDA with it
    (_mdm("T10", "CR-501^DPI-Y", [_cda_obx(1, "DOC-51", obx11="C")], txa13="CR-500^DPI-Y"),
     {CDA_KEY: (False, "final"), "document|CR-500|DPI-Y@CHU-EST": (False, "final"),
      "document|1.2.250.1.999.1.7^DOC-51": (True, "corrected")}),
    # T10 with the new CDA alone, its RPLC naming the old CDA: the old PDF goes with it.
    # Was: the PDF rendering of the replaced version still current beside the new CDA
    (_mdm("T10", "CR-501^DPI-Y", [_cda_obx(1, "DOC-51", "DOC-50", "C")], txa13="CR-500^DPI-Y"),
     {CDA_KEY: (False, "final"), "document|CR-500|DPI-Y@CHU-EST": (False, "final"),
      "document|1.2.250.1.999.1.7^DOC-51": (True, "corrected")}),
    # unchanged: a T10 carrying both, its CDA's RPLC naming the old CDA
    (_mdm("T10", "CR-501^DPI-Y", [_cda_obx(1, "DOC-51", "DOC-50", "C"),
                                   _pdf_obx(2, PDF + b"%v2\n", "C")], txa13="CR-500^DPI-Y"),
     {CDA_KEY: (False, "final"), "document|CR-500|DPI-Y@CHU-EST": (False, "final"),
      "document|1.2.250.1.999.1.7^DOC-51": (True, "corrected"),
      "document|CR-501|DPI-Y@CHU-EST": (True, "corrected")}),
])
def test_a_cancel_or_replacement_of_a_number_reaches_the_cda_and_its_pdf(sqlite_ctx, follow,
                                                                          expected):
    """MDM^T02 carrying the CR-BIO and its PDF rendering under TXA-12 CR-500: the CDA is filed
    under its id, the PDF under the number. Whatever cancels or replaces CR-500 acts on both."""
    ctx = _auto(sqlite_ctx)
    rows = _through(ctx, T02, follow)
    assert [r.status for r in rows] == ["deposited", "deposited"]
    assert _documents(ctx) == expected


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_companions_of_a_number_are_reached_on_postgresql(ctx):
    """The same rule on PostgreSQL (its JSON operator reads the message's number): a T10
    carrying the new CDA alone (both queries of the rule: the number named, the number the
    named CDA was filed with)."""
    ctx = _auto(ctx)
    rows = _through(ctx, T02, _mdm("T10", "CR-501^DPI-Y", [_cda_obx(1, "DOC-51", "DOC-50", "C")],
                                   txa13="CR-500^DPI-Y"))
    assert [r.status for r in rows] == ["deposited"] * 2
    assert _documents(ctx) == {
        CDA_KEY: (False, "final"), "document|CR-500|DPI-Y@CHU-EST": (False, "final"),
        "document|1.2.250.1.999.1.7^DOC-51": (True, "corrected")}


# -- notification-only MDMs: accepted, nothing filed ---------------------------------------------
def test_a_notification_without_its_document_is_accepted_and_filed_nothing(sqlite_ctx):
    """MDM^T01 (and T03 stating no status, T05, T07, T09) with TXA alone: valid HL7, nothing
    to file. Recorded deposited with no entry, the code on the row, answered AA with a
    warning. Was: failed, AR 201, and a sender stopping its queue on AR blocked."""
    ctx = _auto(sqlite_ctx)
    brings = {"T01": "T02", "T03": "T04", "T05": "T06", "T07": "T08", "T09": "T10"}
    rows = _through(ctx, *(_mdm(trigger, f"CR-60{n}^DPI-Y", [], txa17="")
                           for n, trigger in enumerate(brings)))
    for row, content in zip(rows, brings.values(), strict=True):
        assert (row.status, row.stage, row.error_code, row.error_location,
                row.entries_count) == ("deposited", "notification", "MDM_NOTIFICATION_ONLY",
                                       "MSH-9", 0)
        assert f"the document content is expected in an MDM^{content}" in row.error_message
        ack, err = _verdict((row.status, row.error_code, row.error_message,
                             row.error_location))
        assert (ack, err.severity, err.hl7_code) == ("AA", "W", "0")
    assert _filed(ctx) == []
    with ctx.engine.connect() as conn:  # the admin finds them by code, or by stage
        for flt in (ImportFilter(error_code="MDM_NOTIFICATION_ONLY"),
                    ImportFilter(stage="notification")):
            assert conn.execute(where_filter(select(imports.c.id), flt)).scalars().all() \
                == [r.id for r in rows]


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
    assert _documents(ctx) == {"document|CR-700|DPI-Y@CHU-EST": (True, "corrected")}
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


# -- scanned reports sent as images ---------------------------------------------------------------
SCANNED = ("CABINET DE RADIOLOGIE DU PARC - 12 rue des Écoles, 69003 Lyon",
           "Compte rendu de radiographie du thorax",
           "Examen du 14/03/2024",
           "Indication : toux persistante depuis trois semaines.",
           "Technique : cliché de face en inspiration.",
           "Résultat : parenchyme pulmonaire sans opacité suspecte.",
           "Pas d'épanchement pleural. Silhouette cardiaque normale.",
           "Conclusion : radiographie thoracique normale.",
           "Dr Hélène Lefèvre")


def _scanned_page(lines: tuple[str, ...] = SCANNED, dpi: int = 200) -> Image.Image:
    """An A6 page of a radiologist's report as a scanner renders it (grayscale, 8 pt type)."""
    img = Image.new("L", (round(4.13 * dpi), round(5.83 * dpi)), 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(find_fonts()[0]["regular"], size=round(8 / 72 * dpi))
    for n, line in enumerate(lines):
        draw.text((round(0.3 * dpi), round((0.5 + 0.3 * n) * dpi)), line, fill=20, font=font)
    return img


def _saved(images: list[Image.Image], kind: str, **options: object) -> bytes:
    out = io.BytesIO()
    images[0].save(out, kind, save_all=len(images) > 1, append_images=images[1:], **options)
    return out.getvalue()


def test_a_scanned_report_sent_as_an_image_is_read_by_ocr():
    """'^IM^JPEG^Base64^' (a scanning station's page at 200 dpi), then the same page as a TIFF
    (its pixels the JPEG's): read as a scanned PDF is, its report entry filed under the
    document. Was: filed unread, no report entry and no word of it."""
    jpeg = _saved([_scanned_page()], "JPEG", quality=85, dpi=(200, 200))
    tiff = _saved([Image.open(io.BytesIO(jpeg)).convert("L")], "TIFF", dpi=(200, 200))
    for ed, media in ((f"^IM^JPEG^Base64^{b64(jpeg)}", "image/jpeg"),
                      (f"^IM^TIFF^Base64^{b64(tiff)}", "image/tiff")):
        nm = norm(_mdm("T02", "CR-900^DPI-Y", [f"OBX|1|ED|18748-4^CR d'imagerie^LN||{ed}||||||F"]))
        doc, report = nm.entries
        assert (doc.type, doc.attachment.media_type, doc.attachment.data) == (
            DOCUMENT, media, jpeg if media == "image/jpeg" else tiff)  # kept as sent
        assert (report.key, report.parent_key, report.source_ref) == (
            "document|CR-900|DPI-Y@CHU-EST|report", doc.key, "OBX[6] (image)")
        assert "radiographie thoracique normale" in report.value
        assert not nm.warnings


@pytest.mark.parametrize(("ed", "said"), [
    # a photograph (a dermatology picture, 4:3 at 72 dpi): no page, kept unread
    (f"^IM^JPEG^Base64^{b64(_saved([Image.new('L', (1600, 1200), 128)], 'JPEG', dpi=(72, 72)))}",
     "OBX[6]: IMAGE_NOT_A_PAGE: the image/jpeg image (1600 x 1200 px at 72 dpi) is not shaped "
     "as a "
     "document page (a photograph, a drawing, a thumbnail): kept unread, filed without its "
     "report entry"),
    # a thumbnail of a page at 300 dpi: 2 x 3 cm, no page either
    (f"^IM^PNG^Base64^{b64(_saved([Image.new('L', (236, 354), 255)], 'PNG', dpi=(300, 300)))}",
     "OBX[6]: IMAGE_NOT_A_PAGE: the image/png image (236 x 354 px at 300 dpi) is not shaped"),
    # said to be a JPEG, no image at all
    (f"^IM^JPEG^Base64^{b64('Compte rendu en pièce jointe'.encode())}",
     "OBX[6]: the image/jpeg image could not be read (PDF_CORRUPT): kept unread, filed "
     "without its report entry"),
])
def test_an_image_that_is_no_page_is_filed_unread_and_the_ledger_says_so(ed, said):
    nm = norm(_mdm("T02", "CR-901^DPI-Y", [f"OBX|1|ED|18748-4^CR d'imagerie^LN||{ed}||||||F"]))
    assert [e.type for e in nm.entries] == [DOCUMENT]
    assert [w for w in nm.warnings if w.startswith(said)]


def test_the_pages_of_a_fax_tiff_are_the_pages_of_the_pdf_read():
    """A fax's TIFF: bilevel pages (CCITT G4), no resolution stated. Every page is a page of
    the PDF read (the report's conclusion is often on the last), bilevel kept, A4-sized."""
    fax = [_scanned_page(dpi=200).point(lambda v: 255 if v > 128 else 0, "1"),
           _scanned_page(("Conclusion : radiographie thoracique normale.",), dpi=200)
           .point(lambda v: 255 if v > 128 else 0, "1")]
    shape, pdf = image_pdf(_saved(fax, "TIFF", compression="group4"))
    assert (shape.width, shape.height, shape.dpi, shape.frames, shape.is_page) == (
        826, 1166, None, 2, True)
    doc = pdfium.PdfDocument(pdf)
    assert len(doc) == 2 and round(doc[0].get_size()[1] / 72, 2) == 11.69  # A4's long side
    assert b"/CCITTFaxDecode" in pdf


def test_a_page_image_stating_its_orientation_is_read_upright():
    """A scanning app's JPEG: the sensor's pixels (the page on its side) and EXIF Orientation
    6 ('turn 90° clockwise to show'). The PDF read is the page upright. Was: the page read on
    its side (a low-confidence reading, then a second one turned, or nothing read)."""
    exif = Image.Exif()
    exif[0x0112] = 6  # EXIF Orientation
    sideways = _scanned_page().rotate(90, expand=True)
    shape, pdf = image_pdf(_saved([sideways], "JPEG", dpi=(200, 200), exif=exif))
    assert (shape.width, shape.height, shape.is_page) == (1166, 826, True)
    width, height = pdfium.PdfDocument(pdf)[0].get_size()
    assert (round(width / 72, 2), round(height / 72, 2)) == (4.13, 5.83)  # A6, upright
