"""Documents carried in HL7v2, round 4: bare document numbers of several senders in one
dossier, the same CDA by two channels, TXA-17/18/19 as document servers send them.

Why: each test pins what a real sender sends and what we must file for it; the ones marked
'was' failed before the fix of the same commit."""

from __future__ import annotations

from dataclasses import replace

import pytest

from normalizers.model import ACTION_DELETE, DOCUMENT
from tests.test_documents_normalizer import b64, norm, oru
from tests.test_documents_senders import PDF_REPORT, _filed

PDF = "^AP^PDF^Base64^" + b64(PDF_REPORT.read_bytes())
TEXT = "^TEXT^PLAIN^Base64^" + b64("IRM du genou droit : pas de lésion méniscale. "
                                   "Conclusion : examen normal.".encode())


def _mdm(trigger: str, obx11: str, number: str, app: str = "RIS-Y",
         facility: str = "IMAGERIE-EST", ed: str = TEXT, txa17: str = "LA",
         txa18: str = "", txa19: str = "AV", parent: str = "") -> str:
    """An MDM (v2.5) of an imaging centre's RIS or a hospital DPI: a CR-IMG (``ed``: its text
    by default, or the PDF), TXA-12
    a bare document number (no EI.2 nor EI.3), as many document servers write it."""
    pid = oru("NW", "F", "X").split("\r")[1]
    segs = [f"MSH|^~\\&|{app}|{facility}|DMP|GHT|202403151050||MDM^{trigger}^MDM_T02|"
            f"{app}-{trigger}-{number}-{obx11}|P|2.5|||||FRA|UNICODE UTF-8",
            "EVN||20240315105000", pid, "PV1|1|O",
            f"TXA|1|18748-4^CR d'imagerie médicale^LN|AP|202403151000||||||||{number}|"
            f"{parent}||||{txa17}|{txa18}|{txa19}"]
    if trigger != "T11":
        segs.append(f"OBX|1|ED|18748-4^CR d'imagerie médicale^LN||{ed}"
                    f"||||||{obx11}")
    return "\r".join(segs) + "\r"


def _auto(ctx):  # noqa: ANN001, ANN202
    ctx.settings = replace(ctx.settings, auto_create=True)
    return ctx


def _through(ctx, *messages: str, source: str = "mllp-ght") -> list:  # noqa: ANN001
    """Each message through intake and processing from one source (an MLLP listener that
    many senders share); the ledger rows in order."""
    from sqlalchemy import select

    from dossiers.schema import imports
    from pipelines.intake import Received, intake
    from pipelines.process import drain

    ids = []
    for n, text in enumerate(messages):
        ids += intake(ctx.engine, ctx.archive, [Received(text.encode(), source, "mllp",
                                                         file_name=f"{n}.hl7")])[0].message_ids
        drain(ctx)
    with ctx.engine.connect() as conn:
        return conn.execute(select(imports).where(imports.c.id.in_(ids))
                            .order_by(imports.c.id)).all()


def _current_documents(ctx) -> set[tuple[str, str]]:  # noqa: ANN001
    return {(e.key, e.status) for e in _filed(ctx) if e.type == DOCUMENT and e.current}


# -- a bare document number is its sender's -----------------------------------------------------
RIS_KEY = "document|100234|&RIS-Y^IMAGERIE-EST"
DPI_KEY = "document|100234|&DPI-Z^CHU-NORD"


def test_a_bare_txa12_is_scoped_by_its_sender():
    """TXA-12 '100234' (no EI.2, EI.3) from RIS-Y and from DPI-Z: two documents; the T11 of
    the DPI withdraws the DPI's. Was: both 'document|100234'."""
    ris = norm(_mdm("T02", "F", "100234")).entries[0]
    dpi = norm(_mdm("T02", "F", "100234", app="DPI-Z", facility="CHU-NORD")).entries[0]
    assert (ris.key, dpi.key) == (RIS_KEY, DPI_KEY)
    cancel, = norm(_mdm("T11", "", "100234", app="DPI-Z", facility="CHU-NORD")).entries
    assert (cancel.action, cancel.replaces_key) == (ACTION_DELETE, DPI_KEY)
    # a bare TXA-13 is the same sender's number
    t10 = norm(_mdm("T10", "C", "100235", parent="100234")).entries[0]
    assert t10.replaces_key == RIS_KEY


def test_a_bare_order_number_of_an_oru_document_is_scoped_by_its_sender():
    """A PDF in an ORU whose OBR-3 is a bare '1001-E1': keyed with the lab's MSH-3^MSH-4.
    Was: 'document|1001-E1||1', the same slot as any other lab's 1001-E1."""
    text = oru("NW", "F", b64(PDF_REPORT.read_bytes()), profile="").replace(
        "1001-E1^labo", "1001-E1").replace("^TEXT^XML^", "^AP^PDF^")
    doc = next(e for e in norm(text).entries if e.type == DOCUMENT)
    assert doc.key == "document|1001-E1|&SIL-Y^labo|1"


def test_one_senders_cancel_leaves_another_senders_same_number_alone(sqlite_ctx):
    """Through one MLLP listener: RIS-Y and DPI-Z each file their 100234, then DPI-Z cancels
    its own (T11). Was: one document, the DPI's T02 a new version of the RIS's report and its
    T11 withdrawing it."""
    ctx = _auto(sqlite_ctx)
    rows = _through(ctx, _mdm("T02", "F", "100234"),
                    _mdm("T02", "F", "100234", app="DPI-Z", facility="CHU-NORD"),
                    _mdm("T11", "", "100234", app="DPI-Z", facility="CHU-NORD"))
    assert [r.status for r in rows] == ["deposited"] * 3
    assert _current_documents(ctx) == {(RIS_KEY, "final"), (DPI_KEY, "withdrawn")}


def test_a_bare_number_filed_before_scoping_is_followed_for_its_own_sender_only(sqlite_ctx):
    """A dossier holding 'document|100234' from RIS-Y (filed before bare numbers were scoped):
    DPI-Z's T11 of its 100234, through the same listener, leaves it; RIS-Y's own T02 sent
    again is that document (a duplicate), and RIS-Y's T11 withdraws it."""
    from sqlalchemy import update

    from dossiers.schema import entries

    ctx = _auto(sqlite_ctx)
    _through(ctx, _mdm("T02", "F", "100234"))
    with ctx.engine.begin() as conn:  # as the code before scoping filed it
        conn.execute(update(entries).where(entries.c.key == RIS_KEY)
                     .values(key="document|100234"))
    _through(ctx, _mdm("T11", "", "100234", app="DPI-Z", facility="CHU-NORD"))
    assert ("document|100234", "final") in _current_documents(ctx)
    again = _mdm("T02", "F", "100234").replace("-T02-100234-F|", "-T02-100234-F-B|")
    row, = _through(ctx, again)
    assert row.status == "duplicate"
    _through(ctx, _mdm("T11", "", "100234"))
    assert ("document|100234", "withdrawn") in _current_documents(ctx)
    assert not any(key == RIS_KEY for key, _ in _current_documents(ctx))


# -- the same CDA by two channels is one document -----------------------------------------------
CR_BIO = "01_crbio_labm_lipides_glycemie.xml"
CR_BIO_KEY = "document|2.999.250.1.1.10^RB2502040000002"


def _cda_channels() -> dict[str, bytes]:
    """The LABM des Charmes CR-BIO (M. Le Goff) alone, attached to its PDF/A-3 print, and
    carried by the lab's CI-SIS ORU^R01."""
    from samples import generate_pdf as g
    from tests.conftest import SAMPLES
    from tests.test_pdf_round7 import LE_GOFF_PAGE, _lab_pdf_pages, _with_attachment

    cda = (SAMPLES / "cda" / CR_BIO).read_bytes()
    pdf = _with_attachment(g.write_pdf(_lab_pdf_pages(LE_GOFF_PAGE), title="CR"),
                           "LE_GOFF_CR-BIO.xml", cda)
    oru_msg = "\r".join([
        "MSH|^~\\&|SIL-CHARMES|LABM-CHARMES|DMP|GHT|202502041050||ORU^R01^ORU_R01|CH-77|P|2.5"
        "|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2",
        "PID|||155112923219071^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS||"
        "LE GOFF^Jérôme^^^^^L||19551102|M",
        "ORC|NW|98765431^Charmes|25B0204-11^SIL-CHARMES",
        "OBR|1|98765431^Charmes|25B0204-11^SIL-CHARMES|11502-2^CR d'examens biologiques^LN|||"
        "202502040830" + "|" * 18 + "F",
        f"OBX|1|ED|11502-2^CR d'examens biologiques^LN||^TEXT^XML^Base64^{b64(cda)}||||||F",
        ""])
    return {"xml": cda, "pdf": pdf, "oru": oru_msg.encode()}


def _le_goff(ctx) -> None:  # noqa: ANN001
    import csv

    from pipelines.dossier_admin import DossierInput, create_dossiers
    from tests.conftest import SAMPLES

    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)
                                     if r["key"] == "K2"])


def _document_and_links(ctx) -> tuple[list[tuple], set[int]]:  # noqa: ANN001
    from sqlalchemy import select

    from dossiers.schema import entries, provenance

    with ctx.engine.connect() as conn:
        docs = conn.execute(select(entries.c.id, entries.c.version, entries.c.current)
                            .where(entries.c.key == CR_BIO_KEY)).all()
        linked = {r.import_id for r in conn.execute(
            select(provenance.c.import_id).where(provenance.c.entry_id.in_([d.id for d in docs])))}
    return [tuple(d) for d in docs], linked


@pytest.mark.parametrize("first, then", [("xml", "pdf"), ("pdf", "xml"), ("oru", "pdf")])
def test_the_same_cda_alone_and_attached_to_its_pdf_is_one_document(sqlite_ctx, first, then):
    """The CR-BIO received alone (or in the lab's ORU) and again attached to its PDF/A-3
    print, in either order: one document, linked to both imports; the second import a
    duplicate, not 'control id reused'. Was: version 2 of itself, the first superseded."""
    _le_goff(sqlite_ctx)
    data = _cda_channels()
    from sqlalchemy import select

    from dossiers.schema import imports
    from pipelines.intake import Received, intake
    from pipelines.process import drain

    for n, kind in enumerate((first, then)):
        intake(sqlite_ctx.engine, sqlite_ctx.archive,
               [Received(data[kind], "labm-charmes", "file", file_name=f"{n}.{kind}")])
        drain(sqlite_ctx)
    with sqlite_ctx.engine.connect() as conn:
        rows = conn.execute(select(imports).order_by(imports.c.id)).all()
    assert [r.status for r in rows] == ["deposited", "duplicate"]
    assert not any("control id reused" in w for w in rows[1].warnings or [])
    docs, linked = _document_and_links(sqlite_ctx)
    assert [(v, c) for _, v, c in docs] == [(1, True)]
    assert linked == {rows[0].id, rows[1].id}


# -- TXA-17, TXA-18, TXA-19 as document servers send them ---------------------------------------
def test_txa18_very_restricted_masks_the_document_and_what_is_read_from_it():
    """A hospital document server's MDM^T02, TXA-18 'V' (HL7 table 0272, very restricted),
    a PDF without CDA: masked to professionals, the report read from the PDF with it. Was:
    'V' kept in details, the document shown to every professional."""
    nm = norm(_mdm("T02", "F", "CR-88", txa18="V", ed=PDF))
    assert [e.type for e in nm.entries] == [DOCUMENT, "imaging_report"]
    assert all(e.masking.get("MASQUE_PS") is True for e in nm.entries)
    usual = norm(_mdm("T02", "F", "CR-88", txa18="U"))
    assert not any(e.masking.get("MASQUE_PS") for e in usual.entries)


def test_txa18_restricted_overrules_a_masque_ps_n_and_an_unknown_code_is_said():
    """TXA-18 'R' with MetaDMPMSS MASQUE_PS=N: masked (masking wins), said; TXA-18 'X'
    (no table's code): masks nothing, said with its place."""
    flagged = _mdm("T02", "F", "CR-89", txa18="R") + \
        "OBX|2|CE|MASQUE_PS^^MetaDMPMSS||N||||||F\r"
    nm = norm(flagged)
    assert nm.entries[0].masking["MASQUE_PS"] is True
    assert any("TXA-18 'R' masks the document (MASQUE_PS)" in w for w in nm.warnings)
    odd = norm(_mdm("T02", "F", "CR-90", txa18="X"))
    assert not odd.entries[0].masking.get("MASQUE_PS")
    assert any(w.startswith("TXA[5]-18: document confidentiality status 'X'")
               for w in odd.warnings)


def test_txa17_canceled_withdraws_the_document():
    """MDM^T04 (v2.5: status change with content) whose TXA-17 is 'CA' (canceled, table 0271
    of v2.6+ that document servers send already): the document is withdrawn. Was: a new
    final version of it, current."""
    doc = norm(_mdm("T04", "F", "CR-91", txa17="CA")).entries[0]
    assert (doc.action, doc.replaces_key) == (ACTION_DELETE,
                                             "document|CR-91|&RIS-Y^IMAGERIE-EST")


# -- documents in another charset than UTF-8 ----------------------------------------------------
REPORT_TEXT = "Œdème osseux du condyle fémoral interne. Conclusion : contusion, pas de lésion."


@pytest.mark.parametrize("msh18, codec", [("8859/15", "iso8859-15"),
                                          ("UNICODE UTF-8", "cp1252"),
                                          ("UNICODE UTF-8", "utf-8")])
def test_a_plain_text_document_is_kept_in_utf8_whatever_charset_it_was_typed_in(msh18, codec):
    """A RIS's report as base64 text/plain, typed in ISO-8859-15 (the message's MSH-18) or in
    Windows-1252 under a UTF-8 message: kept in UTF-8, said. Was: kept in the sender's
    charset under 'text/plain', 'Œdème' and 'fémoral' unreadable as UTF-8."""
    from normalizers.lab import normalize_message
    from parsers.hl7v2 import parse_message
    from tests.test_documents_normalizer import MAPS

    ed = "^TEXT^PLAIN^Base64^" + b64(REPORT_TEXT.encode(codec))
    text = _mdm("T02", "F", "CR-92", ed=ed).replace("UNICODE UTF-8", msh18)
    data = text.encode("iso8859-15" if msh18 == "8859/15" else "utf-8")
    nm = normalize_message(parse_message(data), "ris-y", MAPS)
    doc = nm.entries[0]
    assert doc.attachment.data.decode("utf-8") == REPORT_TEXT
    assert any("not in UTF-8" in w for w in nm.warnings) is (codec != "utf-8")


# -- a document cut over several OBX numbered 1, 2, 3 or not at all -----------------------------
def _cut_over(sub_ids: list[str], typed: bool, data: bytes | None = None) -> str:
    """An MDM whose PDF is cut over len(sub_ids) OBX, each with that OBX-4; ``typed``: each
    piece an ED with its own type and encoding (else the data alone after the first)."""
    text = b64(data if data is not None else PDF_REPORT.read_bytes())
    size = -(-len(text) // len(sub_ids))
    chunks = [text[i:i + size] for i in range(0, len(text), size)]
    head = _mdm("T02", "F", "CR-93").split("OBX|")[0]
    segs = [f"OBX|{n}|ED|18748-4^CR d'imagerie médicale^LN|{sub_id}|"
            f"{'^AP^PDF^Base64^' if typed or n == 1 else ''}{chunk}||||||F"
            for n, (sub_id, chunk) in enumerate(zip(sub_ids, chunks, strict=True), start=1)]
    return head + "\r".join(segs) + "\r"


@pytest.mark.parametrize("sub_ids, typed", [(["1", "2", "3"], True), (["1", "2", "3"], False),
                                            (["", "", ""], True)])
def test_a_pdf_cut_over_obx_numbered_one_two_three_or_not_at_all_is_one_document(sub_ids,
                                                                                typed):
    """A document server cutting its PDF at 1.5 KB over three OBX, OBX-4 '1', '2', '3' or
    empty each time: one document, the whole PDF. Was: three documents, none readable."""
    nm = norm(_cut_over(sub_ids, typed))
    docs = [e for e in nm.entries if e.type == DOCUMENT]
    assert [d.attachment.data for d in docs] == [PDF_REPORT.read_bytes()]
    assert any("goes on in OBX[7], OBX[8]: read as one" in w for w in nm.warnings)


def test_a_truncated_pdf_then_another_pdf_numbered_on_stay_two_documents():
    """OBX-4 '1' a PDF cut short by the sender (no %%EOF), OBX-4 '2' a whole PDF: two
    documents; the second begins a PDF of its own and is no piece of the first."""
    pdf = PDF_REPORT.read_bytes()
    head = _mdm("T02", "F", "CR-94").split("OBX|")[0]
    text = head + (f"OBX|1|ED|18748-4^CR^LN|1|^AP^PDF^Base64^{b64(pdf[:1200])}||||||F\r"
                   f"OBX|2|ED|18748-4^CR^LN|2|^AP^PDF^Base64^{b64(pdf)}||||||F\r")
    docs = [e for e in norm(text).entries if e.type == DOCUMENT]
    assert [d.attachment.data for d in docs] == [pdf[:1200], pdf]


def test_an_oru_document_filed_before_scoping_gets_its_correction(sqlite_ctx):
    """A lab's PDF in an ORU with a bare OBR-3, filed before bare numbers were scoped
    ('document|1001-E1||1'): its correction (OBX-11 C) from the same lab supersedes it. Was
    (with the scoping alone): a second current report beside the first."""
    from sqlalchemy import update

    from dossiers.schema import entries

    ctx = _auto(sqlite_ctx)
    first = oru("NW", "F", b64(PDF_REPORT.read_bytes()), profile="").replace(
        "1001-E1^labo", "1001-E1").replace("^TEXT^XML^", "^AP^PDF^")
    _through(ctx, first)
    with ctx.engine.begin() as conn:  # as the code before scoping filed it
        conn.execute(update(entries).where(entries.c.key == "document|1001-E1|&SIL-Y^labo|1")
                     .values(key="document|1001-E1||1"))
    corrected = "\r".join(line[:-1] + "C" if line.startswith("OBX|1|") else line
                          for line in first.replace("|MSG-42|", "|MSG-43|").split("\r"))
    row, = _through(ctx, corrected.replace(b64(PDF_REPORT.read_bytes()),
                                           b64(PDF_REPORT.read_bytes() + b"\n")))
    assert row.status == "deposited"
    filed = [(e.key, e.status, e.current) for e in _filed(ctx) if e.type == DOCUMENT]
    assert filed == [("document|1001-E1||1", "final", False),
                     ("document|1001-E1|&SIL-Y^labo|1", "corrected", True)]
