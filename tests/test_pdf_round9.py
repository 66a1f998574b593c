"""PDF reports (round 9): reissued reports, lab PDFs, PDFs we have not seen.

A report sent again with an addendum ('Compte rendu complémentaire') or as a rectification
('Rectificatif', 'Annule et remplace') was filed beside the report it reissues, both current:
it is now a new version of it (dedupe level 3, history kept) when the PDFs say they are one
exam's (same centre, date, modality, region, and the same exam number when printed), and a
doubt on the ledger otherwise, never a supersession on a guess.
Born-digital PDFs are written with samples/generate_pdf.py's writer, read by parsers.pdf and
normalized and filed as the pipeline does."""

from __future__ import annotations

import csv
import shutil
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from dossiers.report_reissue import reissued_report
from dossiers.schema import entries, imports
from normalizers.report import normalize_report
from parsers.pdf import OCR, TEXT_LAYER, PdfLimits, parse_pdf
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.process import drain
from samples import generate_pdf as g
from tests.conftest import SAMPLES
from tests.test_pdf_parser import build_pdf
from tests.test_pdf_round3 import _read

PARC = ("centre", "CENTRE D'IMAGERIE DU PARC - 12 avenue Jean Jaurès, 69007 Lyon")
LEFEVRE = [("label", "Patiente : Mme LEFÈVRE Hélène"), ("label", "Née le 14/03/1968")]
FIRST = "Pas d'anomalie de signal du parenchyme cérébral."
ADDENDUM = [("title", "COMPTE RENDU COMPLÉMENTAIRE"), ("label", "Le 02/04/2025"),
            ("body", "Après relecture avec les séquences de perfusion : petite lésion"),
            ("body", "de la substance blanche frontale gauche, à contrôler à 6 mois."),
            ("body", "Dr Paul RENAUD")]


def _irm(*after: tuple[str, str], number: str | None = None, day: str = "28/03/2025",
         banner: str | None = None, conclusion: str = FIRST) -> bytes:
    head = [("title", banner)] if banner else []
    exam = [("label", f"N° d'examen : {number}")] if number else []
    blocks = [PARC, *head, *LEFEVRE, *exam, ("title", "IRM CÉRÉBRALE SANS ET AVEC INJECTION"),
              ("label", f"Examen du {day}"), ("head", "Conclusion :"), ("body", conclusion),
              ("body", "Dr Paul RENAUD"), *after]
    return g.write_pdf(g.layout(blocks), title="Compte rendu")


def _details(data: bytes) -> dict:
    msg = _read(data)
    assert len(msg.entries) == 1
    return msg.entries[0].details


# -- what the PDF says --------------------------------------------------------------------------
def test_a_reissue_says_so_and_the_exam_number_is_read() -> None:
    """An addendum, an 'ANNULE ET REMPLACE' banner and a 'Rectificatif' heading mark the
    report as a reissue (with its kind); 'N° d'examen' is read; a plain report and a
    conclusion announcing a complement ('Compte rendu complémentaire à suivre.') are none."""
    plain = _details(_irm(number="2025-004512"))
    assert "reissue" not in plain
    assert plain["fields"]["exam_number"]["value"] == "2025-004512"
    assert _details(_irm(*ADDENDUM))["reissue"] == {"kind": "addendum", "page": 1}
    assert _details(_irm(banner="ANNULE ET REMPLACE LE COMPTE RENDU DU 28/03/2025")
                    )["reissue"]["kind"] == "rectification"
    assert _details(_irm(("head", "Rectificatif :"), ("body", "Lire « gauche » et non "
                         "« droite »."))) ["reissue"]["kind"] == "rectification"
    announced = _details(_irm(conclusion="Compte rendu complémentaire à suivre."))
    assert "reissue" not in announced and "exam_number" not in announced["fields"]


# -- what the dossier keeps ---------------------------------------------------------------------
def _file(ctx, *sent: tuple[bytes, str]) -> tuple[list[dict], list[dict]]:  # noqa: ANN001
    """File each (pdf, source) in turn into Mme Lefèvre's dossier: the report rows in id
    order, and the ledger rows."""
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)
                                     if r["key"] == "K1"])
    for data, source in sent:
        intake(ctx.engine, ctx.archive, [Received(data, source, "file", file_name="cr.pdf")])
        drain(ctx)
    with ctx.engine.connect() as conn:
        rows = [r._asdict() for r in conn.execute(
            select(entries.c.id, entries.c.current, entries.c.superseded_by, entries.c.version,
                   entries.c.value, entries.c.import_id).order_by(entries.c.id))]
        ledger = [r._asdict() for r in conn.execute(
            select(imports.c.id, imports.c.status, imports.c.warnings).order_by(imports.c.id))]
    return rows, ledger


def _warned(ledger: list[dict]) -> str:
    return "\n".join(w for row in ledger for w in row["warnings"] or [])


def test_an_addendum_and_a_rectification_supersede_the_report_of_that_exam(sqlite_ctx) -> None:  # noqa: ANN001
    """The report, then the same report with its addendum, then a rectification changing the
    conclusion, all of exam 2025-004512: the first reading was current beside each reissue.
    Each now supersedes the one before (one current, history kept, versions 1, 2, 3), and
    nothing is said on the ledger; the deposit is told by the ledger as before."""
    rectified = "Petite lésion de la substance blanche frontale droite, à contrôler à 6 mois."
    rows, ledger = _file(sqlite_ctx, (_irm(number="2025-004512"), "cim-parc"),
                         (_irm(*ADDENDUM, number="2025-004512"), "cim-parc"),
                         (_irm(number="2025-004512", conclusion=rectified,
                               banner="RECTIFICATIF - ANNULE ET REMPLACE"), "cim-parc"))
    assert [r["status"] for r in ledger] == ["deposited"] * 3
    assert [(r["current"], r["superseded_by"], r["version"]) for r in rows] == [
        (False, rows[1]["id"], 1), (False, rows[2]["id"], 2), (True, None, 3)]
    assert rows[2]["value"] == rectified
    assert "REPORT_REISSUE" not in _warned(ledger)


def test_a_reissue_arriving_before_its_report_keeps_the_report_as_history(sqlite_ctx) -> None:  # noqa: ANN001
    """The addendum filed first (the original quarantined and rerun, or slower): the original
    arriving after it was current beside it; it is history now, superseded by the addendum,
    and sent again it is one more provenance link, not a third row."""
    original = _irm(number="2025-004512")
    rows, ledger = _file(sqlite_ctx, (_irm(*ADDENDUM, number="2025-004512"), "cim-parc"),
                         (original, "cim-parc"), (original + b"\n%resent\n", "cim-parc"))
    assert [(r["current"], r["superseded_by"]) for r in rows] == [(True, None),
                                                                  (False, rows[0]["id"])]
    assert [r["status"] for r in ledger] == ["deposited", "deposited", "duplicate"]


def test_a_reissue_that_cannot_be_matched_is_filed_beside_and_said(sqlite_ctx) -> None:  # noqa: ANN001
    """Never a supersession on a guess: another exam number (a related report of the same day:
    filed beside it), a number printed on one report only, another source than the report
    held, or no report of that exam held: both stay current, REPORT_REISSUE_NOT_MATCHED says
    why on the reissue's ledger row (no value of the report)."""
    rows, ledger = _file(
        sqlite_ctx,
        (_irm(number="2025-004512"), "cim-parc"),
        (_irm(*ADDENDUM, number="2025-004513"), "cim-parc"),  # another exam number
        (_irm(day="29/03/2025", number="2025-004600"), "cim-parc"),
        (_irm(*ADDENDUM, day="29/03/2025"), "cim-parc"),  # the number on the first only
        (_irm(day="30/03/2025"), "cim-parc"),
        (_irm(*ADDENDUM, day="30/03/2025"), "cim-bellecour"),  # another centre
        (_irm(*ADDENDUM, day="31/03/2025"), "cim-parc"))  # nothing held of that exam
    assert [r["status"] for r in ledger] == ["deposited"] * 7
    assert all(r["current"] and r["superseded_by"] is None for r in rows)
    said = [row["warnings"] or [] for row in ledger]
    assert [len([w for w in ws if w.startswith("REPORT_REISSUE_NOT_MATCHED")]) for ws in said] \
        == [0, 1, 0, 1, 0, 1, 1]
    text = _warned(ledger)
    assert "another exam number" in text and "on one of them only" in text
    assert "another source" in text and "holds no report of that exam" in text
    assert "2025-0045" not in text and "LEFÈVRE" not in text and "lésion" not in text


def test_an_addendum_printed_alone_or_over_another_conclusion_is_a_related_report(
        sqlite_ctx) -> None:  # noqa: ANN001
    """An addendum printed without the report (its heading, the exam, its text: no conclusion
    of its own) superseding the report hid the report's conclusion from every reader; one
    saying it only adds to the report over another conclusion than the held report's cannot
    be told a version of it. Both are filed beside the report, and said."""
    alone = g.write_pdf(g.layout([PARC, *LEFEVRE, ("title", "COMPTE RENDU COMPLÉMENTAIRE"),
                                  ("title", "IRM CÉRÉBRALE SANS ET AVEC INJECTION"),
                                  ("label", "Examen du 28/03/2025"), *ADDENDUM[2:]]),
                        title="Compte rendu")
    assert _details(alone)["reissue"]["kind"] == "addendum"
    rows, ledger = _file(
        sqlite_ctx, (_irm(), "cim-parc"), (alone, "cim-parc"),
        (_irm(day="29/03/2025"), "cim-parc"),
        (_irm(*ADDENDUM, day="29/03/2025", conclusion="Méningiome frontal droit de 12 mm."),
         "cim-parc"))
    assert [r["status"] for r in ledger] == ["deposited"] * 4
    assert all(r["current"] and r["superseded_by"] is None for r in rows)
    text = _warned(ledger)
    assert text.count("REPORT_REISSUE_NOT_MATCHED") == 2
    assert "prints no conclusion of its own" in text and "adds to the report" in text


# -- a text layer that gives no text ------------------------------------------------------------
def _tounicode(mapping: bytes) -> bytes:
    body = (b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CIDSystemInfo "
            b"<< /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def /CMapName /X def "
            b"/CMapType 2 def 1 begincodespacerange <00> <FF> endcodespacerange\n" + mapping
            + b"\nendcmap CMapName currentdict /CMap defineresource pop end end")
    return b"<< /Length %d >>\nstream\n" % len(body) + body + b"\nendstream"


def _two_font_pdf(lines: list[tuple[str, float, str]], size: tuple[int, int],
                  f2_map: bytes) -> bytes:
    """One page of (font, x, text) lines: /F1 Helvetica that maps, /F2 Helvetica-Bold whose
    ToUnicode maps as ``f2_map`` says (pdfium draws both right: only the text layer lies)."""
    ops, y = [b"BT"], size[1] - 30
    for font, x, text in lines:
        if font == "F2+F1":  # a bullet in F2, then the line in F1, on one row
            ops.append(b"/F2 11 Tf 1 0 0 1 %d %d Tm (l) Tj" % (x, y))
            font, x = "F1", x + 14
        ops.append(b"/%s 11 Tf 1 0 0 1 %d %d Tm (" % (font.encode(), x, y)
                   + text.encode("cp1252") + b") Tj")
        y -= 16
    content = b"\n".join([*ops, b"ET"])
    return build_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /Font << /F1 3 0 R "
        b"/F2 6 0 R >> >> /Contents 5 0 R >>" % size,
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding "
        b"/ToUnicode 7 0 R >>", _tounicode(f2_map)])


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract not installed")
def test_a_text_layer_whose_title_and_conclusion_give_no_text_is_ocrd() -> None:
    """The header in a font that maps, the title and the conclusion in a bold font whose
    ToUnicode maps every glyph to private-use codes: the page had letters enough to be read
    from its text layer, and the exam and its conclusion were filed as U+E0xx characters.
    The page is OCR'd now (real tesseract, French), said by PDF_TEXT_LAYER_GARBLED."""
    data = _two_font_pdf([("F1", 30, "CENTRE D'IMAGERIE DU PARC"),
                          ("F1", 30, "Patiente : Mme LEFÈVRE Hélène"),
                          ("F1", 30, "Née le 14/03/1968"), ("F2", 30, "IRM CÉRÉBRALE"),
                          ("F1", 30, "Examen du 28/03/2025"),
                          ("F2", 30, "Conclusion : pas de lésion.")], (430, 150),
                         b"1 beginbfrange <20> <FF> <E020> endbfrange")
    doc = parse_pdf(data, PdfLimits(processes=1))
    assert doc.pages[0].source == OCR
    assert [w.split(":")[0] for w in doc.warnings] == ["PDF_TEXT_LAYER_GARBLED"]
    assert "LEFÈVRE" not in doc.warnings[0] and "lésion" not in doc.warnings[0]
    msg = normalize_report(doc, data, "cim-parc")
    fields = msg.entries[0].details["fields"]
    assert fields["modality"]["value"] == "MR"
    assert fields["conclusion"]["value"] == "pas de lésion."
    assert not any("\ue000" <= c <= "\uf8ff" for c in msg.entries[0].details["text"])


def test_word_bullets_in_a_symbol_font_keep_the_text_layer() -> None:
    """Word prints its bullets in Symbol, mapped to U+F0B7 (private use): a glyph alone as a
    word is no text lost, and such a report keeps its text layer (no OCR, no warning)."""
    bullets = [("F2+F1", 30, t) for t in (
        "Pas de lésion focale hépatique.", "Vésicule alithiasique.", "Reins sans dilatation.",
        "Rate homogène.", "Pancréas normal.", "Pas d'épanchement.", "Aorte de calibre normal.",
        "Pas d'adénopathie.", "Vessie en réplétion normale.", "Prostate homogène.")]
    data = _two_font_pdf([("F1", 30, "ÉCHOGRAPHIE ABDOMINALE"), *bullets], (430, 230),
                         b"1 beginbfchar <6C> <F0B7> endbfchar")
    doc = parse_pdf(data, PdfLimits(processes=1))
    assert doc.pages[0].source == TEXT_LAYER and doc.warnings == []
    assert doc.pages[0].text.count("\uf0b7") == 10


# -- lab reports --------------------------------------------------------------------------------
def test_a_result_marked_checked_says_so() -> None:
    """'5,80 H (contrôlé)', 'Contrôlé' after the value: the mark that the value was measured
    again before validation was dropped without a word; it is details.checked now, the value,
    unit, flag and the antériorité beside it read as before."""
    from tests.test_pdf_round3 import _lab_pdf, _row

    x = (40.0, 180.0, 300.0, 370.0, 480.0)
    msg = _read(_lab_pdf([("centre", "LABORATOIRE BIOMED - Biologie médicale"), *LEFEVRE,
                          ("label", "Prélèvement du 12/03/2026 à 08h15"), ("title", "BIOCHIMIE"),
                          _row(x, "", "Résultat", "Unité", "Valeurs de référence",
                               "Antériorités", style="label"),
                          _row(x, "Potassium", "5,80 H (contrôlé)", "mmol/L", "3,50 - 5,00",
                               "4,10"),
                          _row(x, "Calcium", "3,05 Contrôlé", "mmol/L", "2,20 - 2,60"),
                          _row(x, "Sodium", "139", "mmol/L", "136 - 145", "140"),
                          ("label", "Validé par Dr Anne MARTIN, biologiste")]))
    got = [(e.code, e.value, e.unit, e.interpretation, e.details.get("checked"),
            e.details.get("previous")) for e in msg.entries if e.type == "lab_result"]
    assert got == [("2823-3", "5,80", "mmol/L", "H", True, "4,10"),
                   ("2000-8", "3,05", "mmol/L", None, True, None),
                   ("2951-2", "139", "mmol/L", None, None, "140")]


# -- the rule, whatever the reports held --------------------------------------------------------
_HELD = st.fixed_dictionaries({
    "source": st.sampled_from(["cim-parc", "cim-bellecour"]),
    "number": st.sampled_from([None, "2025-004512", "2025-004513"]),
    "unsure": st.booleans(),
    "conclusion": st.sampled_from([FIRST, "Méningiome frontal droit de 12 mm."]),
    "reissue": st.sampled_from([None, "addendum", "rectification"])})


def _report_details(d: dict) -> SimpleNamespace:
    fields = {"conclusion": {"value": d["conclusion"]}}
    if d["number"]:
        fields["exam_number"] = {"value": d["number"], **({"unsure": True} if d["unsure"]
                                                          else {})}
    details = {"source": d["source"], "fields": fields}
    if d["reissue"]:
        details["reissue"] = {"kind": d["reissue"], "page": 1}
    return SimpleNamespace(details=details)


@settings(max_examples=80, deadline=None)
@given(new=_HELD, held=st.lists(_HELD, max_size=3))
def test_a_reissue_supersedes_only_the_one_report_of_its_exam(new: dict, held: list) -> None:
    """Whatever the reports of that exam the dossier holds, a reissue supersedes one of them
    only when it is the only one from its source whose number agrees (both printed and read
    sure and equal, or neither printed) and, for an addendum, whose conclusion it repeats;
    never with a number on one side only or unsure; when it supersedes none, it says why."""
    new = {**new, "reissue": new["reissue"] or "addendum"}
    mine = _report_details(new)
    rows = [_report_details(h) for h in held]
    target, why = reissued_report({"details": mine.details}, rows)

    def agrees(h: dict) -> bool:
        return h["source"] == new["source"] and (
            (h["number"] is None and new["number"] is None)
            or (h["number"] is not None and new["number"] is not None and not h["unsure"]
                and not new["unsure"] and h["number"] == new["number"]))

    def doubtful(h: dict) -> bool:
        return h["source"] == new["source"] and (h["number"] is None) != (new["number"] is None) \
            or h["source"] == new["source"] and h["number"] is not None \
            and new["number"] is not None and (h["unsure"] or new["unsure"])

    fits = [h for h in held if agrees(h) and (new["reissue"] == "rectification"
                                             or h["conclusion"] == new["conclusion"])]
    clean = not any(doubtful(h) for h in held) and not any(
        agrees(h) and h["conclusion"] != new["conclusion"] for h in held
        if new["reissue"] == "addendum")
    if len(fits) == 1 and clean:
        assert target is rows[held.index(fits[0])] and why == ""
    else:
        assert target is None and (why or not held)


def test_exam_numbers_differing_by_what_ocr_confuses_are_a_doubt_not_two_exams() -> None:
    """The scanned addendum's 'MR25O3141757' (O for 0) beside the born-digital report's
    'MR2503141757' was two exams ('a related report'); it may be one number misread: a
    doubt. Two text layers printing those numbers are two exams."""
    def held(number: str, source: str) -> SimpleNamespace:
        return SimpleNamespace(details={"source": "cim-parc", "fields": {
            "conclusion": {"value": FIRST},
            "exam_number": {"value": number, "source": source}}})

    new = {"details": {**held("MR25O3141757", "ocr").details,
                       "reissue": {"kind": "addendum", "page": 1}}}
    target, why = reissued_report(new, [held("MR2503141757", "text")])
    assert target is None and "characters OCR confuses" in why
    new["details"]["fields"]["exam_number"]["source"] = "text"
    target, why = reissued_report(new, [held("MR2503141757", "text")])
    assert target is None and "another exam number" in why
    assert reissued_report(new, [held("MR25O3141757", "ocr")])[0] is not None
