"""PDF imaging reports (round 8): what French radiology centres print and we still read wrong.
A conclusion going over a page break under a bare 'Page 1/2' footer (cut at the footer: the
follow-up recommendation on page 2 lost); the ACR BI-RADS category of a breast report, per
breast and overall, never read (and, read now, never made of the density, of another *-RADS
scale, of an OCR misread or of an unsure OCR digit); an addendum ('Compte rendu
complémentaire') under the signed report dropped; the dose (PDL, CTDIvol, PDS) never read
(and, read now, never in another quantity's unit, of one acquisition among several, or unsure);
the CCAM codes of the acts never read; a conclusion line 'Signes d'arthrose ...' taken for the
signature.
Born-digital PDFs are written with samples/generate_pdf.py's writer, read by parsers.pdf and
normalized as the pipeline does."""

from __future__ import annotations

import shutil

import pytest

from normalizers.report import normalize_report
from parsers.pdf import OCR, PdfLimits, parse_pdf
from samples import generate_pdf as g
from tests.test_pdf_parser import image_pdf, make_scan
from tests.test_pdf_round3 import _read
from tests.test_report_normalizer import PDF, doc, page

PARC = ("centre", "CENTRE D'IMAGERIE DU PARC - 12 avenue Jean Jaurès, 69007 Lyon")
LEFEVRE = [("label", "Patiente : Mme LEFÈVRE Hélène"), ("label", "Née le 14/03/1968")]


def _pdf(*pages: list[tuple[str, str]]) -> bytes:
    out = []
    for blocks in pages:
        out += g.layout(blocks)
    return g.write_pdf(out, title="Compte rendu")


def _fields(msg, n: int = 0) -> dict:  # noqa: ANN001
    return {k: v["value"] for k, v in msg.entries[n].details["fields"].items()}


# -- a conclusion over a page break -------------------------------------------------------------
def test_a_conclusion_going_over_a_page_footer_is_read_whole() -> None:
    """A CT report whose conclusion starts at the foot of page 1, under it the bare footer
    'Page 1/2', and goes on page 2 after the repeated header: the conclusion stopped at
    'Page 1/2', the follow-up recommendation lost. A footer that is not the last page's is
    skipped; 'Page 2/2' still ends the conclusion."""
    page_1 = [PARC, *LEFEVRE, ("title", "SCANNER THORACIQUE SANS INJECTION"),
              ("label", "Examen du 28/03/2025"),
              ("head", "Technique :"), ("body", "Acquisition hélicoïdale basse dose."),
              ("head", "Conclusion :"),
              ("body", "Nodule pulmonaire solide lobaire supérieur droit de 8 mm."),
              ("small", "Page 1/2")]
    page_2 = [PARC, *LEFEVRE,
              ("body", "Contrôle scanographique à 3 mois recommandé (Fleischner 2017)."),
              ("small", "Page 2/2"), ("body", "Information au patient : résultats remis.")]
    msg = _read(_pdf(page_1, page_2))
    assert _fields(msg)["conclusion"] == (
        "Nodule pulmonaire solide lobaire supérieur droit de 8 mm.\n"
        "Contrôle scanographique à 3 mois recommandé (Fleischner 2017).")
    assert msg.entries[0].details["fields"]["conclusion"]["page"] == 1


# -- ACR / BI-RADS categories of a breast imaging report ----------------------------------------
MAMMO = [PARC, ("small", "Dr Sophie MARCHAND - Radiologue - RPPS 10003456789"), *LEFEVRE,
         ("title", "MAMMOGRAPHIE BILATÉRALE ET ÉCHOGRAPHIE MAMMAIRE"),
         ("label", "Examen du 28/03/2025"), ("head", "Indication :"),
         ("body", "Dépistage organisé, deuxième lecture."), ("head", "Résultats :"),
         ("body", "Seins de densité ACR 3 (type C), hétérogènes."),
         ("body", "Sein droit : kyste simple de 9 mm du QSE.")]


def _birads(*conclusion: str) -> tuple[dict | None, list[str]]:
    msg = _read(_pdf([*MAMMO, ("head", "CONCLUSION :"),
                      *(("body", c) for c in conclusion), ("body", "Dr Sophie MARCHAND")]))
    return msg.entries[0].details["fields"].get("birads"), msg.warnings


def test_the_birads_category_of_each_breast_and_overall_is_read() -> None:
    """A screening mammogram and ultrasound whose conclusion classes each breast: no category
    was read at all (the dossier's most asked fact of a breast report). Each breast's is
    read ('Sein gauche : ... ACR 4b', 'ACR 2 à droite', '2 à droite et 4a à gauche'), the
    overall one is the breast's of highest rank in the atlas' order; the density 'ACR 3'
    before it is no category, nor 4 of 'ACR 4 à gauche' read '4a'."""
    found, warnings = _birads("Sein droit : kyste simple, ACR 2.",
                              "Sein gauche : masse spiculée de 12 mm du QSE, ACR 4b.",
                              "Microbiopsie sous échographie proposée.")
    assert (found["value"], found["by_side"], found["meaning"]) == (
        "4b", {"droit": "2", "gauche": "4b"}, "suspicion modérée de malignité")
    assert (found["page"], found["source"], found["confidence"]) == (1, "text", 100.0)
    assert warnings == []
    found, _ = _birads("Classification BI-RADS de l'ACR : 2 à droite et 4a à gauche.")
    assert (found["value"], found["by_side"]) == ("4a", {"droit": "2", "gauche": "4a"})
    found, _ = _birads("ACR 4 à gauche, ACR 0 à droite : compléter par une IRM.")
    assert (found["value"], found["by_side"]) == ("4", {"droit": "0", "gauche": "4"})
    found, _ = _birads("Pas d'anomalie suspecte. ACR 1 bilatéral.")
    assert (found["value"], found["by_side"]) == ("1", {"droit": "1", "gauche": "1"})
    found, _ = _birads("Seins de densité B. ACR 2 bilatéral.")
    assert (found["value"], found["by_side"]) == ("2", {"droit": "2", "gauche": "2"})
    found, _ = _birads("Examen rassurant classé BI-RADS 2.")
    assert found["value"] == "2" and "by_side" not in found
    # none in the conclusion: the one the description gives
    msg = _read(_pdf([*MAMMO[:-1], ("body", "Sein gauche : ganglion intramammaire, ACR 2."),
                      ("head", "Conclusion :"), ("body", "Examen bénin."), ("body", "Dr X")]))
    assert msg.entries[0].details["fields"]["birads"]["by_side"] == {"gauche": "2"}


def test_no_category_is_made_of_density_other_scales_or_non_breast_reports() -> None:
    """'Seins de densité ACR 2' / 'type ACR 3' is the density, PI-RADS and TI-RADS are other
    scales, and 'critères ACR 2010' of a rheumatology report is no breast's category."""
    assert _birads("Seins de densité ACR 2, sans anomalie.") == (None, [])
    assert _birads("Nodule thyroïdien TI-RADS 4, PI-RADS 3 non concerné.") == (None, [])
    msg = _read(_pdf([PARC, *LEFEVRE, ("title", "IRM DES MAINS ET DES POIGNETS"),
                      ("label", "Examen du 28/03/2025"), ("head", "Conclusion :"),
                      ("body", "Synovite compatible avec une PR (critères ACR 2010 à 6/10)."),
                      ("body", "ACR 2 non applicable."), ("body", "Dr Sophie MARCHAND")]))
    assert "birads" not in msg.entries[0].details["fields"] and msg.warnings == []


def test_two_categories_for_one_breast_are_said_and_not_coded() -> None:
    """'Sein gauche : ACR 4' then 'Sein gauche : ACR 3' (a copy-paste left in the report):
    which one holds cannot be told; a warning, no category for that breast (the other
    breast's kept)."""
    found, warnings = _birads("Sein droit : ACR 1.", "Sein gauche : ACR 4.",
                              "Sein gauche : ACR 3.")
    assert (found["value"], found["by_side"]) == ("1", {"droit": "1"})
    assert warnings == ["REPORT_BIRADS_CONFLICT: two different BI-RADS categories are printed "
                        "for the left breast (page 1); not coded"]


SCANNED = """CABINET DE SÉNOLOGIE DU VIEUX-PORT
Patiente : Mme GARCIA Inès
Née le 21/09/1971
MAMMOGRAPHIE BILATÉRALE
Examen du 12/02/2025
Conclusion :
Sein droit : {right}.
Sein gauche : {left}.
Dr Marc BLANC"""


def test_a_scanned_category_misread_or_read_unsure_is_warned_never_coded() -> None:
    """A scan whose 'ACR 2' OCR made 'ACR Z' (and whose 'ACR 4' it read at confidence 52):
    a Z is no category, and a digit read that unsure may be another; each is warned about
    with its page and confidence (never its value) and not coded, the breast read well
    keeps its category."""
    text = SCANNED.format(right="ACR Z", left="ACR 4")
    msg = normalize_report(doc(page(1, text, OCR, conf=92.0, low={"4.": 52.0})), PDF, "s")
    assert "birads" not in msg.entries[0].details["fields"]
    assert msg.warnings == [
        "REPORT_BIRADS_UNREADABLE: a BI-RADS category on page 1 was read as a letter (OCR, "
        "confidence 92); not coded",
        "REPORT_BIRADS_UNCERTAIN: a BI-RADS category on page 1 was read by OCR with "
        "confidence 52 (below 80); not coded"]
    msg = normalize_report(doc(page(1, SCANNED.format(right="ACR 1", left="ACR Z"), OCR,
                                    conf=92.0)), PDF, "s")
    found = msg.entries[0].details["fields"]["birads"]
    assert (found["by_side"], found["source"], found["confidence"]) == ({"droit": "1"}, OCR,
                                                                         92.0)
    assert [w[:26] for w in msg.warnings] == ["REPORT_BIRADS_UNREADABLE: "]


# -- an addendum --------------------------------------------------------------------------------
def _irm(*after: tuple[str, str]) -> bytes:
    return _pdf([PARC, *LEFEVRE, ("title", "IRM CÉRÉBRALE SANS ET AVEC INJECTION"),
                 ("label", "Examen du 28/03/2025"), ("head", "Conclusion :"),
                 ("body", "Pas d'anomalie de signal du parenchyme cérébral."), *after])


def test_an_addendum_under_the_signature_is_read_into_what_the_dossier_shows() -> None:
    """'Compte rendu complémentaire' printed under the signed report (a second reading): it
    was dropped (the conclusion stops at the signature), the dossier showing the first
    reading only, and a PDF reissued with it was the same fact as the first (the key made of
    the conclusion alone). It is now the 'addendum' field (with its date) and follows the
    conclusion in the entry's value (and key); printed right under the conclusion, with no
    signature between, it is no part of the conclusion."""
    addendum = [("title", "COMPTE RENDU COMPLÉMENTAIRE"), ("label", "Le 02/04/2025"),
                ("body", "Après relecture avec les séquences de perfusion : petite lésion"),
                ("body", "de la substance blanche frontale gauche, à contrôler à 6 mois."),
                ("body", "Dr Paul RENAUD")]
    first = _read(_irm(("body", "Dr Paul RENAUD")))
    msg = _read(_irm(("body", "Dr Paul RENAUD"), *addendum))
    f = _fields(msg)
    assert f["conclusion"] == "Pas d'anomalie de signal du parenchyme cérébral."
    assert f["addendum"] == ("Après relecture avec les séquences de perfusion : petite lésion\n"
                             "de la substance blanche frontale gauche, à contrôler à 6 mois.")
    assert msg.entries[0].details["fields"]["addendum"]["date"] == "2025-04-02"
    assert msg.entries[0].value == (
        "Pas d'anomalie de signal du parenchyme cérébral.\n\n"
        "Compte rendu complémentaire du 02/04/2025 :\n" + f["addendum"])
    assert msg.entries[0].key != first.entries[0].key and len(msg.entries) == 1
    assert first.entries[0].value == "Pas d'anomalie de signal du parenchyme cérébral."
    unsigned = _fields(_read(_irm(("head", "Addendum du 02/04/2025 : lésion frontale gauche."),
                                  ("body", "Dr Paul RENAUD"))))
    assert unsigned["conclusion"] == "Pas d'anomalie de signal du parenchyme cérébral."
    assert unsigned["addendum"] == "lésion frontale gauche."
    # 'Complément d'examen ...' / 'Compte rendu complémentaire à suivre' in a conclusion: no
    # addendum heading
    plain = _fields(_read(_irm(("body", "Complément d'examen par IRM de diffusion souhaitable."),
                               ("body", "Compte rendu complémentaire à suivre."),
                               ("body", "Dr Paul RENAUD"))))
    assert "addendum" not in plain and plain["conclusion"].endswith("complémentaire à suivre.")


# -- the dose report ----------------------------------------------------------------------------
def _ct(*technique: str) -> dict:
    msg = _read(_pdf([PARC, *LEFEVRE, ("title", "SCANNER THORACO-ABDOMINO-PELVIEN"),
                      ("label", "Examen du 28/03/2025"), ("head", "Technique :"),
                      *(("body", t) for t in technique), ("head", "Conclusion :"),
                      ("body", "Pas de lésion secondaire."), ("body", "Dr Paul RENAUD")]))
    fields = msg.entries[0].details["fields"]
    return {k: (v["value"], v["unit"]) for k, v in fields.items() if k.startswith("dose_")}, \
        msg.warnings


def test_the_dose_printed_on_a_ct_report_is_read_with_its_unit() -> None:
    """The dose a French report must print ('PDL : 245 mGy.cm, CTDIvol 6,1 mGy', 'Produit
    Dose.Longueur (PDL) = 1 024,5 mGy x cm', 'Produit dose surface : 0,35 Gy.cm²') was never
    read. It is now, in UCUM with a full stop for decimals; of several acquisitions, the
    total printed."""
    assert _ct("Acquisition hélicoïdale. PDL : 245 mGy.cm, CTDIvol 6,1 mGy.") == (
        {"dose_dlp": ("245", "mGy.cm"), "dose_ctdivol": ("6.1", "mGy")}, [])
    assert _ct("Produit Dose.Longueur (PDL) = 1 024,5 mGy x cm") == (
        {"dose_dlp": ("1024.5", "mGy.cm")}, [])
    assert _ct("PDL sans injection : 245 mGy.cm", "PDL temps portal : 310 mGy.cm",
               "PDL total : 555 mGy.cm") == ({"dose_dlp": ("555", "mGy.cm")}, [])
    assert _ct("Produit dose surface : 0,35 Gy.cm²", "Dose efficace estimée : 2,3 mSv") == (
        {"dose_dap": ("0.35", "Gy.cm2"), "dose_effective": ("2.3", "mSv")}, [])


def test_a_dose_in_the_wrong_unit_several_without_total_or_unsure_is_said_not_read() -> None:
    """A PDL printed in mGy (a CTDIvol's unit), two acquisitions' PDL and no total, a scanned
    PDL read at confidence 48: each is warned about, with its page, and not read."""
    assert _ct("Dose délivrée : PDL = 245 mGy") == ({}, [
        "REPORT_DOSE_UNIT: a dose-length product on page 1 is printed in a unit of another "
        "quantity; not read"])
    assert _ct("PDL sans injection : 245 mGy.cm", "PDL temps portal : 310 mGy.cm") == ({}, [
        "REPORT_DOSE_SEVERAL: 2 different values of the dose-length product on page 1 and no "
        "total among them; not read"])
    text = SCANNED.format(right="ACR 1", left="ACR 1") + "\nPDS : 0,42 Gy.cm²"
    msg = normalize_report(doc(page(1, text, OCR, conf=91.0, low={"0,42": 48.0})), PDF, "s")
    assert "dose_dap" not in msg.entries[0].details["fields"]
    assert msg.warnings == ["REPORT_DOSE_UNCERTAIN: a dose-area product on page 1 was read by "
                            "OCR with confidence 48 (below 80); not read"]


# -- CCAM codes ---------------------------------------------------------------------------------
def test_the_ccam_codes_of_the_acts_printed_are_read_and_a_misread_one_is_said() -> None:
    """A mammography and a breast ultrasound in one report, 'Cotation : QEQK004 + QEQM001':
    the codes of the acts were never read (the entry's modality says the mammography only).
    They are now, in the order printed; a file number elsewhere ('Dossier : IMGP123') is
    none, and a code OCR read 'QEQK0O4' is warned about, not read."""
    msg = _read(_pdf([*MAMMO, ("label", "Dossier : IMGP123"),
                      ("label", "Cotation CCAM : QEQK004 + QEQM001 (ACR 2 à droite)"),
                      ("head", "Conclusion :"), ("body", "Examen bénin."),
                      ("body", "Dr Sophie MARCHAND")]))
    assert msg.entries[0].details["fields"]["ccam"]["value"] == ["QEQK004", "QEQM001"]
    text = SCANNED.format(right="ACR 1", left="ACR 1") + "\nActes CCAM : QEQK0O4"
    msg = normalize_report(doc(page(1, text, OCR, conf=91.0)), PDF, "s")
    assert "ccam" not in msg.entries[0].details["fields"]
    assert msg.warnings == ["REPORT_CCAM_UNREADABLE: a CCAM code on page 1 holds a character "
                            "OCR may have misread; not read"]


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is absent")
def test_a_scanned_mammography_gives_each_breasts_category_through_real_ocr() -> None:
    """One scanned strip (real tesseract, French): the categories come through OCR with
    their confidence, per breast, and the density before them is none."""
    lines = ["CABINET DE SÉNOLOGIE DU VIEUX-PORT", "Patiente : Mme GARCIA Inès",
             "Née le 21/09/1971", "MAMMOGRAPHIE BILATÉRALE", "Examen du 12/02/2025",
             "Conclusion :", "Seins de densité ACR 3.", "Sein droit : kyste simple, ACR 2.",
             "Sein gauche : masse spiculée, ACR 4b.", "Dr Marc BLANC"]
    data = image_pdf([make_scan(lines, dpi=200)], dpi=200)
    msg = normalize_report(parse_pdf(data, PdfLimits(processes=1)), data, "s")
    found = msg.entries[0].details["fields"]["birads"]
    assert (found["value"], found["by_side"], found["source"]) == (
        "4b", {"droit": "2", "gauche": "4b"}, OCR)
    assert found["confidence"] >= 80 and msg.warnings == []


# -- a conclusion line starting with 'Signes' ---------------------------------------------------
def test_a_conclusion_line_starting_with_signes_is_no_signature() -> None:
    """'Signes d'arthrose fémoro-tibiale interne modérée.' on the conclusion's second line:
    read as the signature block ('signe' at a line's start), the conclusion cut before it.
    Only 'Signé', 'Signé :', 'Signé électroniquement / par / le / Dr' end a conclusion."""
    blocks = [PARC, ("label", "Patient : M. LE GOFF Jérôme"), ("label", "Né le 02/11/1955"),
              ("title", "RADIOGRAPHIE DU GENOU DROIT EN CHARGE"),
              ("label", "Examen du 28/03/2025"), ("head", "Conclusion :"),
              ("body", "Pincement fémoro-tibial interne."),
              ("body", "Signes d'arthrose fémoro-tibiale interne modérée.")]
    for signature in ("Signé électroniquement par Dr Paul RENAUD", "Signé Dr Paul RENAUD",
                      "Signé le 29/03/2025"):
        msg = _read(_pdf([*blocks, ("body", signature)]))
        assert msg.entries[0].value == ("Pincement fémoro-tibial interne.\n"
                                        "Signes d'arthrose fémoro-tibiale interne modérée.")
