"""PDF reports (normalizers/report.py): identity, exam, modality, region, people, conclusion.

Documents are built directly as parsers/pdf objects: text-layer pages (confidence 100) and OCR
pages (lower word confidences, the usual OCR errors: O for 0, l for 1, broken spaces). The
corpus PDFs in ../shared/corpus/pdf, when present, are read with pdfplumber (text layer only).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from normalizers.model import NormalizationError
from normalizers.nir import nir_key
from normalizers.report import (
    IMAGING_REPORT,
    MODALITY_SYSTEM,
    NIR_KIND,
    NIR_OID,
    REPORT,
    TEXT_CAP,
    fold,
    normalize_report,
)
from normalizers.tabledata import table
from parsers.pdf.model import OCR, TEXT_LAYER, Page, PdfDocument, Word

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "pdf"
PDF = b"%PDF-1.7 synthetic"


def nir(base13: str) -> str:
    """A NIR with its right key (Corsica handled by normalizers.nir.nir_key)."""
    return f"{base13}{nir_key(base13):02d}"


def bad_key(base13: str) -> str:
    return f"{base13}{nir_key(base13) % 97 + 1:02d}"


def page(number: int, text: str, source: str = TEXT_LAYER, conf: float = 100.0,
         low: dict[str, float] | None = None) -> Page:
    """A page whose words carry ``conf`` (100 on the text layer), except the words in ``low``."""
    words: list[Word] = []
    for n, line in enumerate(text.splitlines()):
        x = 0.0
        for w in line.split():
            c = 100.0 if source == TEXT_LAYER else (low or {}).get(w, conf)
            words.append(Word(w, c, (x, n * 12.0, x + 6 * len(w), n * 12.0 + 10), n))
            x += 6 * len(w) + 4
    mean = sum(w.confidence for w in words) / len(words) if words else 0.0
    return Page(number, source, text, words, mean, 595.0, 842.0)


def doc(*pages: Page) -> PdfDocument:
    return PdfDocument(list(pages))


def assert_no_patient_data(msg, *secrets: str) -> None:  # noqa: ANN001
    said = " ".join(msg.warnings + msg.quarantine_reasons + msg.identity.warnings)
    for secret in secrets:
        assert fold(secret) not in fold(said), secret


# -- realistic reports --------------------------------------------------------------------------
NIR_DUPONT = nir("2680375123456")
ECHO = f"""CABINET DE RADIOLOGIE DU PARC
12 avenue Jean Jaurès 69007 LYON
Dr Claire FONTAINE - Radiologue
Lyon, le 15/03/2024
Patiente : Mme DUPONT Marie, née MARTIN
Née le 14/03/1968
N° SS : {NIR_DUPONT[0]} {NIR_DUPONT[1:3]} {NIR_DUPONT[3:5]} {NIR_DUPONT[5:7]} {NIR_DUPONT[7:10]} \
{NIR_DUPONT[10:13]} {NIR_DUPONT[13:]}
Prescripteur : Dr Paul LEROY
ÉCHOGRAPHIE ABDOMINALE
Examen du 12/03/2024
Indication : douleurs de l'hypochondre droit.
Résultats :
Foie de taille normale, d'échostructure homogène.
Vésicule biliaire alithiasique.
Conclusion :
Échographie abdominale normale.
Pas de lithiase vésiculaire.
Dr Claire FONTAINE
Compte rendu validé électroniquement"""

NIR_BERNARD = nir("1551178646123")
SCANNER = f"""CENTRE HOSPITALIER DE VERSAILLES - SERVICE D'IMAGERIE MÉDICALE
Nom : BERNARD
Prénom : Jean-Pierre
Date de naissance : 02.11.1955
Sexe : M
NIR : {NIR_BERNARD}
Demandé par : Dr Sophie MOREAU
Date de l'examen : 05-02-2024
SCANNER THORACIQUE SANS ET AVEC INJECTION
Technique : acquisition hélicoïdale du thorax après injection de produit de contraste.
Résultats : nodule du lobe supérieur droit de 8 mm.
CONCLUSION
Nodule pulmonaire lobaire supérieur droit de 8 mm, à contrôler à 3 mois.
Pas d'adénopathie médiastinale.
Compte rendu validé par Dr Antoine GIRARD, radiologue"""

NIR_PETIT = nir("190032A004123")  # born in Corse-du-Sud
IRM_OCR = f"""IRM DU GENOU DROIT
Patient : M. PETIT Lucas
Né le l4/O3/1990
N° sécu : 1 9O 03 2A OO4 l23 {NIR_PETIT[13:]}
Examen réalisé le 2O/O5/2024
Médecin prescripteur : Dr Hélène ROUX
Résultats : fissure horizontale de la corne postérieure du ménisque interne.
Conclusion : Fissure méniscale interne de grade 2. Pas de lésion ligamentaire.
Dr Marc BLANC
Radiologue"""

MAMMO = """Centre d'imagerie de la femme
Madame Sophie DURAND
Date de naissance : 3 avril 1972
MAMMOGRAPHIE BILATÉRALE ET ÉCHOGRAPHIE MAMMAIRE
Examen du 1er février 2024
Indication : dépistage organisé.
Résultats : seins de densité de type B, pas de foyer de microcalcifications suspect.
En conclusion : ACR 2 bilatéral. Contrôle dans 2 ans dans le cadre du dépistage.
Dr Anne LAMBERT, radiologue"""

RADIO = """Radiologie Saint-Michel
Nom d'usage : LEFEBVRE
Nom de naissance : GARNIER
Prénom(s) : Camille Louise
Date de naissance : 21-09-1985
Sexe : F
Dr Julien MERCIER (médecin prescripteur)
RADIOGRAPHIE DU THORAX DE FACE
Examen du 08/01/2024
Résultat :
Pas d'anomalie parenchymateuse pulmonaire décelable.
CONCLUSION :
Radiographie thoracique normale.
Dr Isabelle NOËL
Radiologue"""


def fields_of(msg):  # noqa: ANN001, ANN201
    return msg.entries[0].details["fields"]


def test_echographie_abdominale_every_field():
    msg = normalize_report(doc(page(1, ECHO)), PDF, "cabinet-du-parc")
    f = fields_of(msg)
    values = {k: v["value"] for k, v in f.items()}
    assert values["family"] == "DUPONT"
    assert values["given"] == "Marie"
    assert values["birth_family"] == "MARTIN"
    assert values["birth_date"] == "1968-03-14"
    assert values["sex"] == "F"
    assert values["nir"] == NIR_DUPONT and f["nir"]["key_valid"] is True
    assert values["exam_date"] == "2024-03-12"
    assert values["report_date"] == "2024-03-15"
    assert values["modality"] == "US"
    assert values["exam_type"] == "ÉCHOGRAPHIE ABDOMINALE"
    assert values["body_region"] == "abdomen"
    assert "laterality" not in f
    assert values["prescriber"] == "Dr Paul LEROY"
    assert values["radiologist"] == "Dr Claire FONTAINE"
    assert values["conclusion"] == "Échographie abdominale normale.\nPas de lithiase vésiculaire."
    for name, field in f.items():
        assert field["page"] == 1 and field["source"] == TEXT_LAYER, name
        assert field["confidence"] == 100.0, name

    ident = msg.identity
    assert (ident.family, ident.given, ident.birth_family, ident.birth_date, ident.sex) == \
        ("DUPONT", "Marie", "MARTIN", "1968-03-14", "F")
    assert ident.identity_status == ""
    assert msg.quarantine_reasons == []
    assert_no_patient_data(msg, "DUPONT", "Marie", "MARTIN", NIR_DUPONT, "1968")


def test_entry_shape_key_and_logical_id():
    pdf_doc = doc(page(1, ECHO))
    msg = normalize_report(pdf_doc, PDF, "cabinet-du-parc")
    assert len(msg.entries) == 1
    e = msg.entries[0]
    assert e.type == IMAGING_REPORT
    assert e.code == "US" and e.system == MODALITY_SYSTEM
    assert e.display == "ÉCHOGRAPHIE ABDOMINALE"
    assert e.value == "Échographie abdominale normale.\nPas de lithiase vésiculaire."
    assert e.effective == "2024-03-12"
    assert e.attachment is not None and e.attachment.data == PDF
    assert e.attachment.media_type == "application/pdf"
    assert e.performer == "Dr Claire FONTAINE"
    norm = " ".join(fold(e.value).split())
    digest = hashlib.sha256(norm.encode()).hexdigest()[:16]
    assert e.key == f"report|2024-03-12|US|abdomen|{digest}"
    full = " ".join(fold(pdf_doc.text).split())
    assert msg.logical_id == f"pdf|{hashlib.sha256(full.encode()).hexdigest()}"
    d = e.details
    assert d["text"] == pdf_doc.text
    assert d["pages"] == 1 and d["ocr_pages"] == [] and d["mean_confidence"] == 100.0
    # The same report read again (same text) is the same logical document and the same entry.
    again = normalize_report(doc(page(1, ECHO)), b"other bytes", "cabinet-du-parc")
    assert again.logical_id == msg.logical_id and again.entries[0].key == e.key


def test_scanner_thoracique_labelled_identity():
    msg = normalize_report(doc(page(1, SCANNER)), PDF, "ch-versailles")
    values = {k: v["value"] for k, v in fields_of(msg).items()}
    assert values["family"] == "BERNARD" and values["given"] == "Jean-Pierre"
    assert values["birth_date"] == "1955-11-02" and values["sex"] == "M"
    assert values["exam_date"] == "2024-02-05"
    assert values["modality"] == "CT" and values["body_region"] == "thorax"
    assert values["exam_type"] == "SCANNER THORACIQUE SANS ET AVEC INJECTION"
    assert values["prescriber"] == "Dr Sophie MOREAU"
    assert values["radiologist"] == "Dr Antoine GIRARD"
    assert values["conclusion"].startswith("Nodule pulmonaire lobaire supérieur droit")
    assert values["conclusion"].endswith("Pas d'adénopathie médiastinale.")
    assert "Compte rendu" not in values["conclusion"]
    assert msg.identity.ins[0].nir == NIR_BERNARD
    assert msg.quarantine_reasons == []
    assert msg.entries[0].key.startswith("report|2024-02-05|CT|thorax|")


def test_irm_genou_droit_ocr_with_errors_and_corsican_nir():
    p = page(1, IRM_OCR, OCR, conf=91.0, low={"DROIT": 85.0, "Fissure": 70.0})
    msg = normalize_report(doc(p), PDF, "imagerie-ajaccio")
    f = fields_of(msg)
    values = {k: v["value"] for k, v in f.items()}
    assert values["modality"] == "MR"
    assert values["body_region"] == "genou droit"
    assert values["laterality"] == "droit"
    assert values["exam_type"] == "IRM DU GENOU DROIT"
    assert values["family"] == "PETIT" and values["given"] == "Lucas" and values["sex"] == "M"
    assert values["birth_date"] == "1990-03-14"  # 'l4/O3/1990'
    assert values["exam_date"] == "2024-05-20"  # '2O/O5/2024'
    assert values["nir"] == NIR_PETIT and "2A" in NIR_PETIT  # 'O' read as 0, 'l' as 1
    assert f["nir"]["key_valid"] is True
    assert values["prescriber"] == "Dr Hélène ROUX"
    assert values["radiologist"] == "Dr Marc BLANC"
    assert values["conclusion"] == ("Fissure méniscale interne de grade 2. Pas de lésion "
                                    "ligamentaire.")
    for field in f.values():
        assert field["source"] == OCR and field["page"] == 1
    assert f["family"]["confidence"] == 91.0
    # 'IRM DU GENOU DROIT': three words at 91 and one at 85.
    assert f["exam_type"]["confidence"] == round((91 * 3 + 85) / 4, 1)
    assert f["conclusion"]["confidence"] == round((70 + 91 * 9) / 10, 1)  # 10 words
    assert msg.identity.ins and msg.identity.ins[0].nir == NIR_PETIT
    assert msg.quarantine_reasons == []  # 91 >= 80
    d = msg.entries[0].details
    assert d["ocr_pages"] == [1] and d["mean_confidence"] < 100


def test_mammographie_bilaterale_and_textual_dates():
    msg = normalize_report(doc(page(1, MAMMO)), PDF, "cif")
    values = {k: v["value"] for k, v in fields_of(msg).items()}
    assert values["modality"] == "MG"
    assert values["body_region"] == "seins" and values["laterality"] == "bilatéral"
    assert values["family"] == "DURAND" and values["given"] == "Sophie" and values["sex"] == "F"
    assert values["birth_date"] == "1972-04-03"
    assert values["exam_date"] == "2024-02-01"  # '1er février 2024'
    assert values["conclusion"] == ("ACR 2 bilatéral. Contrôle dans 2 ans dans le cadre du "
                                    "dépistage.")
    assert values["radiologist"] == "Dr Anne LAMBERT"
    assert "nir" not in values and msg.identity.ins == []


def test_radiographie_thorax_birth_and_used_names_and_prescriber_in_brackets():
    msg = normalize_report(doc(page(1, RADIO)), PDF, "st-michel")
    values = {k: v["value"] for k, v in fields_of(msg).items()}
    assert values["family"] == "LEFEBVRE" and values["birth_family"] == "GARNIER"
    assert values["given"] == "Camille Louise" and msg.identity.given == "Camille"
    assert values["birth_date"] == "1985-09-21" and values["sex"] == "F"
    assert values["modality"] == "XR" and values["body_region"] == "thorax"
    assert values["prescriber"] == "Dr Julien MERCIER"
    assert values["radiologist"] == "Dr Isabelle NOËL"
    assert values["conclusion"] == "Radiographie thoracique normale."
    assert values["exam_date"] == "2024-01-08"


def test_report_without_modality_is_a_plain_report():
    text = """Compte rendu de consultation de rhumatologie
Patient : Mme ROUSSEL Jeanne
Date de naissance : 12/12/1949
Consultation du 03/04/2024
Conclusion : arthrose digitale, poursuite du traitement antalgique.
Dr Luc FABRE"""
    msg = normalize_report(doc(page(1, text)), PDF, "cabinet")
    e = msg.entries[0]
    assert e.type == REPORT and e.code is None and e.system is None
    assert e.key.startswith("report|nodate|||")
    assert e.value == "arthrose digitale, poursuite du traitement antalgique."


def test_conclusion_across_pages_and_multi_page_fields():
    p1 = page(1, "\n".join(SCANNER.splitlines()[:12]))
    p2 = page(2, "\n".join(SCANNER.splitlines()[12:]), OCR, conf=88.0)
    msg = normalize_report(doc(p1, p2), PDF, "ch-versailles")
    f = fields_of(msg)
    assert f["family"]["page"] == 1 and f["family"]["source"] == TEXT_LAYER
    assert f["conclusion"]["page"] == 2 and f["conclusion"]["source"] == OCR
    assert f["conclusion"]["confidence"] == 88.0
    assert f["radiologist"]["page"] == 2
    d = msg.entries[0].details
    assert d["pages"] == 2 and d["ocr_pages"] == [2]
    assert "\f" in d["text"]


# -- NIR ------------------------------------------------------------------------------------------
def with_nir(value: str, sex: str = "Mme", born: str = "14/03/1968") -> str:
    return f"""Patient : {sex} DUPONT Marie
Date de naissance : {born}
NIR : {value}
IRM DU RACHIS LOMBAIRE
Examen du 02/02/2024
Conclusion : discopathie L4-L5."""


def test_valid_nir_is_a_plain_nir_not_a_trusted_ins():
    msg = normalize_report(doc(page(1, with_nir(NIR_DUPONT))), PDF, "s")
    assert len(msg.identity.ins) == 1
    ins = msg.identity.ins[0]
    assert (ins.nir, ins.oid, ins.kind, ins.key_valid) == (NIR_DUPONT, NIR_OID, NIR_KIND, True)
    assert ins.kind not in {"INS-NIR", "INS-NIA", "INS-NIR-TEST", "INS-NIR-DEMO"}
    assert msg.identity.identity_status == ""
    assert fields_of(msg)["body_region"]["value"] == "rachis lombaire"


@pytest.mark.parametrize("spell", [
    lambda n: n,
    lambda n: f"{n[0]} {n[1:3]} {n[3:5]} {n[5:7]} {n[7:10]} {n[10:13]} {n[13:]}",
    lambda n: f"{n[0]}{n[1:3]} {n[3:5]}{n[5:7]} {n[7:10]}{n[10:13]}  {n[13:]}",  # broken spaces
    lambda n: f"{n[0]}.{n[1:3]}.{n[3:5]}.{n[5:7]}.{n[7:10]}.{n[10:13]}.{n[13:]}",
    lambda n: n.replace("0", "O").replace("1", "l"),  # OCR
], ids=["plain", "grouped", "broken", "dotted", "ocr"])
def test_nir_spellings(spell):
    msg = normalize_report(doc(page(1, with_nir(spell(NIR_DUPONT)))), PDF, "s")
    assert fields_of(msg)["nir"]["value"] == NIR_DUPONT
    assert msg.identity.ins[0].nir == NIR_DUPONT


def test_invalid_nir_key_is_not_used_and_warned_without_the_number():
    wrong = bad_key("2680375123456")
    msg = normalize_report(doc(page(1, with_nir(wrong))), PDF, "s")
    assert msg.identity.ins == []
    f = fields_of(msg)["nir"]
    assert f["value"] == wrong and f["key_valid"] is False
    assert any(w.startswith("REPORT_NIR_INVALID_KEY") for w in msg.warnings)
    assert_no_patient_data(msg, wrong, wrong[:13], "DUPONT", "Marie")


def test_corsican_nirs_2a_2b():
    for base in ("168042A012345", "275112B054321"):
        value = nir(base)
        sex = "Mme" if base[0] == "2" else "M."
        born = f"01/{base[3:5]}/19{base[1:3]}"
        msg = normalize_report(doc(page(1, with_nir(value, sex, born))), PDF, "s")
        assert msg.identity.ins[0].nir == value
        assert fields_of(msg)["nir"]["key_valid"] is True
    # Lower-case 'a' (OCR) is the same department.
    lower = nir("168042A012345").replace("2A", "2a")
    msg = normalize_report(doc(page(1, with_nir(lower, "M.", "01/04/1968"))), PDF, "s")
    assert msg.identity.ins[0].nir == nir("168042A012345")


def test_nir_of_someone_else_is_not_used():
    father = nir("1450375123456")  # a man born 1945: not this woman born 1968
    msg = normalize_report(doc(page(1, with_nir(father))), PDF, "s")
    assert msg.identity.ins == []
    assert any(w.startswith("REPORT_NIR_MISMATCH") for w in msg.warnings)
    assert_no_patient_data(msg, father, "DUPONT", "1945", "1968")


def test_no_fifteen_digit_number_is_no_nir():
    text = with_nir("").replace("NIR : ", "Tél : 01 40 40 40 40 RPPS 10001234567")
    msg = normalize_report(doc(page(1, text)), PDF, "s")
    assert "nir" not in fields_of(msg) and msg.identity.ins == []


# -- identity uncertain -------------------------------------------------------------------------
def test_low_ocr_confidence_on_identity_quarantines_without_values():
    p = page(1, IRM_OCR, OCR, conf=93.0, low={"PETIT": 41.0, "l4/O3/1990": 55.0})
    msg = normalize_report(doc(p), PDF, "s")
    assert len(msg.quarantine_reasons) == 1
    reason = msg.quarantine_reasons[0]
    assert reason.startswith("IDENTITY_UNCERTAIN page 1: ")  # the code, then the location
    assert "family name" in reason and "41" in reason
    assert "birth date" in reason and "55" in reason
    assert "given name" not in reason
    assert_no_patient_data(msg, "PETIT", "Lucas", NIR_PETIT, "1990", "l4/O3")


def test_threshold_is_a_parameter():
    p = page(1, IRM_OCR, OCR, conf=75.0)
    assert normalize_report(doc(p), PDF, "s").quarantine_reasons
    assert normalize_report(doc(p), PDF, "s", min_identity_confidence=70).quarantine_reasons == []


def test_text_layer_is_never_uncertain_by_confidence():
    p = page(1, ECHO)
    p.confidence = 10.0  # ignored: the text layer is what the author wrote
    assert normalize_report(doc(p), PDF, "s").quarantine_reasons == []


def test_missing_family_or_birth_date_quarantines():
    text = "ÉCHOGRAPHIE PELVIENNE\nExamen du 02/02/2024\nConclusion : utérus normal."
    msg = normalize_report(doc(page(1, text)), PDF, "s")
    (reason,) = msg.quarantine_reasons
    # its own code: the document lacks the patient block (not a scan to look at again)
    assert reason.startswith("IDENTITY_NOT_FOUND page 1: ")
    assert "family name not found" in reason and "birth date not found" in reason
    assert fields_of(msg)["body_region"]["value"] == "pelvis"
    two = normalize_report(doc(page(1, text), page(2, "Suite du compte rendu.")), PDF, "s")
    assert two.quarantine_reasons[0].startswith("IDENTITY_NOT_FOUND pages 1-2: ")


def test_missing_birth_date_and_low_confidence_name_are_both_said():
    p = page(2, IRM_OCR.replace("14/03/1990", "").replace("l4/O3/1990", ""), OCR, conf=93.0,
             low={"PETIT": 41.0})
    msg = normalize_report(doc(page(1, "Centre d'imagerie"), p), PDF, "s")
    codes = [r.split(" ", 1)[0] for r in msg.quarantine_reasons]
    assert codes == ["IDENTITY_NOT_FOUND", "IDENTITY_UNCERTAIN"]  # the ledger shows the first
    assert msg.quarantine_reasons[0].startswith(
        "IDENTITY_NOT_FOUND pages 1-2: birth date not found")
    assert msg.quarantine_reasons[1].startswith("IDENTITY_UNCERTAIN page 2: family name read")
    assert_no_patient_data(msg, "PETIT", "Lucas", NIR_PETIT, "1990")


def test_title_case_name_order_is_not_guessed_silently():
    text = "Monsieur Antoine Bousicot\nné(e) le 16/06/1965\nRADIO DU BASSIN\nConclusion : RAS"
    msg = normalize_report(doc(page(1, text)), PDF, "s")
    (reason,) = msg.quarantine_reasons
    assert reason.startswith("IDENTITY_UNCERTAIN page 1: ") and "not told apart" in reason
    assert_no_patient_data(msg, "Antoine", "Bousicot")
    assert fields_of(msg)["birth_date"]["value"] == "1965-06-16"


def test_doctor_and_other_people_are_not_the_patient():
    text = """Préleveur MME Roberta BLEEDER
Monsieur le Docteur Jean VIDAL
Patiente :
Mme ARNAUD Léa
Date de naissance : 05/05/2005
Conclusion : normal."""
    values = {k: v["value"] for k, v in fields_of(
        normalize_report(doc(page(1, text)), PDF, "s")).items()}
    assert values["family"] == "ARNAUD" and values["given"] == "Léa" and values["sex"] == "F"


# -- errors, limits -----------------------------------------------------------------------------
def test_empty_document():
    for empty in (doc(), doc(page(1, "")), doc(page(1, "  \n\n "), page(2, "", OCR, 0.0))):
        with pytest.raises(NormalizationError) as err:
            normalize_report(empty, PDF, "s")
        assert err.value.code == "REPORT_EMPTY"
        # which pages, not 'pdf'; and why in words
        assert err.value.location == {0: "pdf", 1: "page 1", 2: "pages 1-2"}[len(empty.pages)]
        assert "OCR read nothing" in str(err.value)


def test_text_is_capped():
    big = ECHO + "\n" + ("Lorem ipsum dolor sit amet. " * 8000)
    msg = normalize_report(doc(page(1, big)), PDF, "s")
    d = msg.entries[0].details
    assert len(d["text"].encode()) <= TEXT_CAP and d["text_truncated"] is True
    assert any(w.startswith("REPORT_TEXT_TRUNCATED") for w in msg.warnings)


def test_page_without_words_uses_its_text_and_page_confidence():
    p = Page(1, OCR, IRM_OCR, [], 64.0)
    msg = normalize_report(doc(p), PDF, "s")
    f = fields_of(msg)
    assert f["family"]["confidence"] == 64.0 and f["family"]["source"] == OCR
    assert msg.quarantine_reasons  # 64 < 80


# -- tables ---------------------------------------------------------------------------------------
DICOM = {"XR", "US", "CT", "MR", "MG", "PT", "NM", "DXA", "XA", "RF", "PX"}


def test_modality_table():
    rows = table("imaging_modalities")
    terms = [" ".join(fold(r["term"]).split()) for r in rows]
    assert len(terms) == len(set(terms)), "a term twice after folding"
    assert {r["code"] for r in rows} - {""} <= DICOM
    regions = {r["region"] for r in table("body_regions")}
    assert {r["default_region"] for r in rows} - {""} <= regions
    expected = {"radiographie": "XR", "radio": "XR", "rx": "XR", "échographie": "US",
                "écho": "US", "scanner": "CT", "tdm": "CT", "tomodensitométrie": "CT",
                "irm": "MR", "mammographie": "MG", "tep": "PT", "tep-tdm": "PT", "pet": "PT",
                "scintigraphie": "NM", "ostéodensitométrie": "DXA", "dmo": "DXA",
                "angiographie": "XA"}
    by_term = {r["term"]: r["code"] for r in rows}
    for term, code in expected.items():
        assert by_term[term] == code, term


def test_region_table():
    rows = table("body_regions")
    terms = [" ".join(fold(r["term"]).split()) for r in rows]
    assert len(terms) == len(set(terms))
    assert {r["lateral"] for r in rows} <= {"0", "1"}
    by_term = {r["term"]: r["region"] for r in rows}
    for term in ("thorax", "abdomen", "pelvis", "crâne", "encéphale", "rachis cervical",
                 "rachis dorsal", "rachis lombaire", "genou", "épaule", "hanche", "seins",
                 "abdomino-pelvien"):
        assert term in by_term, term


@pytest.mark.parametrize(("title", "code", "region"), [
    ("TEP-TDM CORPS ENTIER", "PT", "corps entier"),
    ("Scintigraphie osseuse du squelette", "NM", "squelette"),
    ("Ostéodensitométrie (DMO)", "DXA", ""),
    ("Scanner abdomino-pelvien avec injection", "CT", "abdomen et pelvis"),
    ("TEP-TDM au 18F-FDG", "PT", "corps entier"),
    ("Radiographie du thorax et de l'abdomen", "XR", "thorax et abdomen"),
    ("Radio de l'épaule gauche", "XR", "épaule gauche"),
    ("ECHO-DOPPLER DES MEMBRES INFERIEURS", "US", "membre inférieur"),
    ("IRM cérébrale", "MR", "encéphale"),
    ("Radiographie des deux hanches", "XR", "hanche"),
    ("Rx rachis cervical", "XR", "rachis cervical"),
    ("Artériographie des membres inférieurs droite et gauche", "XA", "membre inférieur bilatéral"),
])
def test_titles(title, code, region):
    text = f"Mme DUPONT Marie\nDate de naissance : 14/03/1968\n{title}\nConclusion : RAS."
    f = fields_of(normalize_report(doc(page(1, text)), PDF, "s"))
    assert f["modality"]["value"] == code
    assert f.get("body_region", {}).get("value", "") == region


def test_radiology_centre_and_qr_hint_are_not_modalities():
    text = ("Centre de radiologie Ambroise\nMédecin - Radio-diagnostic\nINS à scanner\n"
            "Compte rendu\nConclusion : RAS.")
    e = normalize_report(doc(page(1, text)), PDF, "s").entries[0]
    assert e.type == REPORT and e.code is None


# -- the corpus (text layer) ------------------------------------------------------------------
def _pdfplumber_doc(path: Path) -> PdfDocument:
    pdfplumber = pytest.importorskip("pdfplumber")
    pages = []
    with pdfplumber.open(path) as pdf:
        for n, p in enumerate(pdf.pages, start=1):
            text = p.extract_text() or ""
            pages.append(Page(n, TEXT_LAYER, text, [], 100.0, float(p.width), float(p.height)))
    return PdfDocument(pages)


CORPUS_PDFS = sorted(CORPUS.glob("*.pdf")) if CORPUS.is_dir() else []


@pytest.mark.skipif(not CORPUS_PDFS, reason="../shared/corpus/pdf is absent")
@pytest.mark.parametrize("path", CORPUS_PDFS, ids=lambda p: p.name)
def test_corpus_pdfs(path):
    pdf_doc = _pdfplumber_doc(path)
    if not pdf_doc.text.strip():
        with pytest.raises(NormalizationError):
            normalize_report(pdf_doc, path.read_bytes(), "corpus")
        return
    msg = normalize_report(pdf_doc, path.read_bytes(), "corpus")
    f = fields_of(msg)
    lines = [fold(ln).strip() for ln in pdf_doc.text.splitlines()]
    has_conclusion = any(re.match(r"conclusion\b\W*\w", ln) or (
        re.fullmatch(r"conclusion\W*", ln) and i + 1 < len(lines) and lines[i + 1])
        for i, ln in enumerate(lines))
    if has_conclusion:
        assert "conclusion" in f
    if re.search(r"examen du \d|date de l'examen", fold(pdf_doc.text)):
        assert "exam_date" in f
    assert msg.logical_id.startswith("pdf|")
    for said in msg.warnings + msg.quarantine_reasons:
        assert not re.search(r"\d{13}", said)


KNOWN = {
    "IMG_CR_IMG_2024.01_CDA-R2-Niveau-1_15.pdf": ("CT", "tête et cou", "Lorem ipsum"),
    # the region is named in its 'Demande d'examen' section ('veines des membres inférieurs')
    "ANEST-CR-ANEST_2022.01_0.pdf": ("US", "membre inférieur", "Thrombose"),
}


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_corpus_imaging_reports(name):
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"{name} is not in the corpus")
    msg = normalize_report(_pdfplumber_doc(path), path.read_bytes(), "corpus")
    code, region, conclusion = KNOWN[name]
    e = msg.entries[0]
    assert e.type == IMAGING_REPORT and e.code == code
    assert fields_of(msg).get("body_region", {}).get("value", "") == region
    assert e.value.startswith(conclusion)


# -- properties -----------------------------------------------------------------------------------
FRAGMENTS = st.sampled_from([
    "Conclusion :", "CONCLUSION", "En conclusion", "Dr ", "Mme ", "M. ", "Monsieur ", "née ",
    "né(e) le ", "Date de naissance :", "14/03/1968", "l4/O3/l968", "31/02/2024", "1er mars ",
    "NIR : ", "2 68 03 75 123 456 ", "2A", "IRM ", "genou droit", "Scanner", "radiologue",
    "Prescripteur :", "(médecin prescripteur)", "Examen du ", "Nom :", "Prénom(s) :", "Patient :",
    "\n", " ", ",", "Sexe : F", "TEP-TDM", "bilatérale", "99/99/9999", "00.00.0000",
])
TEXTS = st.lists(FRAGMENTS | st.text(max_size=30), max_size=40).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(texts=["Nom :Conclusion :", "Nom :IRM "], ocr=False, conf=100.0)
@given(texts=st.lists(TEXTS, min_size=0, max_size=3),
       ocr=st.booleans(), conf=st.floats(allow_nan=True, allow_infinity=True))
def test_random_pages_raise_only_normalization_error(texts, ocr, conf):
    pages = [page(n, t, OCR if ocr else TEXT_LAYER, conf if ocr else 100.0)
             for n, t in enumerate(texts, start=1)]
    try:
        msg = normalize_report(doc(*pages), PDF, "s")
    except NormalizationError as err:
        assert err.code == "REPORT_EMPTY"
        return
    # one report, or several said so (a page that ends a report and a page that starts
    # another with its own patient block: PDF round 7 files them apart, as it found
    # ['Nom :Conclusion :', 'Nom :IRM '] here)
    assert msg.entries and msg.logical_id.startswith("pdf|")
    if len(msg.entries) > 1:
        assert any(w.startswith("REPORT_SEVERAL:") for w in msg.warnings)
    for entry in msg.entries:
        for field in entry.details["fields"].values():
            assert field["source"] in (TEXT_LAYER, OCR)
            assert 1 <= field["page"] <= len(pages)


# -- more shapes --------------------------------------------------------------------------------
def test_side_belongs_to_its_region():
    text = ("Mme DUPONT Marie\nDate de naissance : 14/03/1968\n"
            "RADIOGRAPHIE DU GENOU DROIT ET DE LA HANCHE GAUCHE\nConclusion : RAS.")
    f = fields_of(normalize_report(doc(page(1, text)), PDF, "s"))
    assert f["body_region"]["value"] == "genou droit et hanche gauche"
    assert f["laterality"]["value"] == "droit"  # the first region's


HEADER = "Mme DUPONT Marie\nDate de naissance : 14/03/1968\n"


def test_region_named_only_in_the_technique_section():
    text = (HEADER + "RADIOGRAPHIE\nExamen du 08/01/2024\nIndication :\nChute à ski.\n"
            "Technique :\nRadiographies du genou gauche de face et de profil.\n"
            "Résultats :\nPas de fracture du plateau tibial droit.\nConclusion : RAS.")
    msg = normalize_report(doc(page(1, text, OCR, 90.0, low={"genou": 70.0})), PDF, "s")
    f = fields_of(msg)
    assert f["modality"]["value"] == "XR"
    region = f["body_region"]
    assert (region["value"], region["page"], region["source"], region["found_in"]) == \
        ("genou gauche", 1, OCR, "technique")
    assert region["confidence"] == 70.0  # the words of the region named, as on a title
    assert f["laterality"]["value"] == "gauche" and f["laterality"]["found_in"] == "technique"
    assert "|XR|genou gauche|" in msg.entries[0].key


def test_region_from_the_indication_when_the_technique_names_none():
    text = (HEADER + "Radiographie\nIndication : traumatisme du coude droit.\n"
            "Technique : clichés de face et de profil.\nConclusion : RAS.")
    f = fields_of(normalize_report(doc(page(1, text)), PDF, "s"))
    assert f["body_region"]["value"] == "coude droit"
    assert f["body_region"]["found_in"] == "indication"
    assert f["body_region"]["source"] == TEXT_LAYER and f["body_region"]["confidence"] == 100.0


def test_a_speck_after_a_heading_still_ends_the_section_before_it():
    text = (HEADER + "Ostéodensitométrie\nIndication\nAntécédent de fracture du poignet.\n"
            "Technique he\nAbsorptiométrie du rachis lombaire.\nConclusion : ostéopénie.")
    f = fields_of(normalize_report(doc(page(1, text, OCR, 90.0)), PDF, "s"))
    assert f["body_region"]["value"] == "rachis lombaire"
    assert f["body_region"]["found_in"] == "technique"


def test_region_wrapped_in_the_technique_and_its_side_in_its_own_sentence():
    text = (HEADER + "Page 1\nIRM\nTechnique\nSéquences sagittales du rachis\nlombaire et de "
            "l'épaule. Pas d'injection à\ndroite.\nConclusion : RAS.")
    f = fields_of(normalize_report(doc(page(1, text), page(2, "Suite")), PDF, "s"))
    assert f["body_region"]["value"] == "rachis lombaire et épaule"
    assert "laterality" not in f


def test_title_and_modality_default_win_over_the_body():
    results = "Résultats : kyste du rein droit.\nConclusion : RAS."
    for title, technique, region in (
            ("Radiographie du poignet gauche", "clichés du coude droit.", "poignet gauche"),
            ("TEP-TDM au 18F-FDG", "acquisition du vertex à la mi-cuisse.", "corps entier"),
            ("Radiographie", "clichés de face.", "")):  # results are not read
        text = f"{HEADER}{title}\nTechnique : {technique}\n{results}"
        f = fields_of(normalize_report(doc(page(1, text)), PDF, "s"))
        assert f.get("body_region", {}).get("value", "") == region, title


def test_ocr_losing_the_space_after_dr_still_ends_the_conclusion():
    text = (HEADER + "Radiographie du thorax\nConclusion\nPas d'épanchement pleural.\n"
            "Dr.Isabelle FERRAND, radiologue (RPPS 80000518910)\nCompte rendu validé")
    f = fields_of(normalize_report(doc(page(1, text, OCR, 90.0)), PDF, "s"))
    assert f["conclusion"]["value"] == "Pas d'épanchement pleural."
    assert f["radiologist"]["value"] == "Dr.Isabelle FERRAND"


def test_exam_date_on_the_title_line_and_ocr_letters_in_labels():
    text = ("Mme DUPONT Marie\nDate de naissance : 14/03/1968\n"
            "ECHOGRAPHIE THYROIDIENNE DU 04/06/2024\nC0NCLUSI0N : nodule EU-TIRADS 3.")
    msg = normalize_report(doc(page(1, text, OCR, 90.0)), PDF, "s")
    f = fields_of(msg)
    assert f["exam_date"]["value"] == "2024-06-04" and f["body_region"]["value"] == "thyroïde"
    assert f["conclusion"]["value"] == "nodule EU-TIRADS 3."
    assert msg.entries[0].key.startswith("report|2024-06-04|US|thyroïde|")


def test_name_without_given_label_is_split_by_case():
    text = "Nom : DUPONT Marie\nDate de naissance : 14/03/1968\nConclusion : RAS."
    f = fields_of(normalize_report(doc(page(1, text)), PDF, "s"))
    assert f["family"]["value"] == "DUPONT" and f["given"]["value"] == "Marie"


def test_pdf_title_is_the_display_when_no_exam_title():
    d = doc(page(1, "Compte rendu\nConclusion : RAS."))
    d.metadata["Title"] = "CR consultation"
    e = normalize_report(d, PDF, "s").entries[0]
    assert e.display == "CR consultation" and e.type == REPORT


def test_odd_confidences_are_clamped():
    p = page(1, IRM_OCR, OCR, conf=250.0, low={"PETIT": float("nan"), "Lucas": -3.0})
    msg = normalize_report(doc(p), PDF, "s")
    f = fields_of(msg)
    assert 0 <= f["given"]["confidence"] <= 100 and f["exam_type"]["confidence"] == 100.0
    assert "given name" in msg.quarantine_reasons[0]


def test_ocr_capital_i_for_l_in_le():
    text = ("Patiente : Mme DUPONT Marie\nNée Ie 14/03/1968\nIRM DU GENOU GAUCHE\n"
            "Examen réalisé Ie 02/02/2024\nConclusion : RAS.")
    f = fields_of(normalize_report(doc(page(1, text, OCR, 90.0)), PDF, "s"))
    assert f["birth_date"]["value"] == "1968-03-14" and f["exam_date"]["value"] == "2024-02-02"
    assert "birth_family" not in f and f["body_region"]["value"] == "genou gauche"


def test_signer_after_the_conclusion_beats_the_header_list():
    text = """Dr Alain ROBERT - Dr Claire FONTAINE - Dr Marc BLANC
Radiologues associés
Mme DUPONT Marie
Date de naissance : 14/03/1968
SCANNER CÉRÉBRAL
Conclusion : pas d'anomalie, à revoir avec le Dr Paul LEROY si besoin.
Copie : Dr Paul LEROY
Dr Marc BLANC"""
    f = fields_of(normalize_report(doc(page(1, text)), PDF, "s"))
    assert f["radiologist"]["value"] == "Dr Marc BLANC"
    assert f["body_region"]["value"] == "encéphale"
    assert f["conclusion"]["value"] == "pas d'anomalie, à revoir avec le Dr Paul LEROY si besoin."


def test_labels_and_values_on_consecutive_lines():
    text = """Nom de naissance
GARNIER
Prénom
Camille
Date de naissance
21/09/1985
Date de l'examen
08/01/2024
RADIOGRAPHIE DU BASSIN
Conclusion
Pas d'anomalie osseuse."""
    values = {k: v["value"] for k, v in fields_of(
        normalize_report(doc(page(1, text)), PDF, "s")).items()}
    assert values["family"] == "GARNIER" and values["birth_family"] == "GARNIER"
    assert values["given"] == "Camille" and values["birth_date"] == "1985-09-21"
    assert values["exam_date"] == "2024-01-08" and values["body_region"] == "bassin"
    assert values["conclusion"] == "Pas d'anomalie osseuse."


def test_child_conclusion_punctuation_and_doctor_particles():
    text = """Patient : Enfant MÜLLER Zoé
Date de naissance : 30/09/2012
RADIOGRAPHIE DU POIGNET GAUCHE
Prescripteur : Dr Yann LE GALL
Conclusion
; Fracture en motte de beurre, non déplacée. : :
Dr Thibaut LE MOAL, radiologue"""
    values = {k: v["value"] for k, v in fields_of(
        normalize_report(doc(page(1, text, OCR, 90.0)), PDF, "s")).items()}
    assert values["family"] == "MÜLLER" and values["given"] == "Zoé" and "sex" not in values
    assert values["conclusion"] == "Fracture en motte de beurre, non déplacée."
    assert values["prescriber"] == "Dr Yann LE GALL"
    assert values["radiologist"] == "Dr Thibaut LE MOAL"
    assert values["body_region"] == "poignet gauche"


def test_sex_from_a_consistent_nir_when_no_civility_says_it():
    child = nir("2120967482755")
    text = ("Patient : Enfant MÜLLER Zoé\nDate de naissance : 30/09/2012\n"
            f"N° de sécurité sociale : {child}\nRADIOGRAPHIE DU POIGNET GAUCHE\nConclusion : RAS.")
    msg = normalize_report(doc(page(1, text)), PDF, "s")
    f = fields_of(msg)
    assert msg.identity.sex == "F" and f["sex"]["value"] == "F" and f["sex"]["from"] == "nir"
    parent = nir("1750967482755")  # a parent's number: says nothing of the child
    msg = normalize_report(doc(page(1, text.replace(child, parent))), PDF, "s")
    assert msg.identity.sex == "" and msg.identity.ins == []


def test_mammography_without_side_is_both_breasts():
    text = "Mme DUPONT Marie\nDate de naissance : 14/03/1968\nMAMMOGRAPHIE\nConclusion : ACR 1."
    f = fields_of(normalize_report(doc(page(1, text)), PDF, "s"))
    assert f["body_region"]["value"] == "seins" and f["body_region"]["implied_by"] == "modality"
    text = text.replace("MAMMOGRAPHIE", "MAMMOGRAPHIE DU SEIN GAUCHE")
    f = fields_of(normalize_report(doc(page(1, text)), PDF, "s"))
    assert f["body_region"]["value"] == "sein gauche"


def test_signed_by_needs_a_name_after_it():
    text = ("Mme DUPONT Marie\nDate de naissance : 14/03/1968\nÉCHOGRAPHIE HÉPATIQUE\n"
            "Conclusion : signe Murphy négatif.\nExamen validé par Dr Louis PERRIN")
    f = fields_of(normalize_report(doc(page(1, text)), PDF, "s"))
    assert f["radiologist"]["value"] == "Dr Louis PERRIN"
    assert f["conclusion"]["value"] == "signe Murphy négatif."


def test_particles_in_capitals_belong_to_the_family_name():
    text = ("Patiente : Mme DE SOUSA Ana, née LE GALL le 02/02/1980\nIRM PELVIENNE\n"
            "Conclusion : RAS.")
    values = {k: v["value"] for k, v in fields_of(
        normalize_report(doc(page(1, text)), PDF, "s")).items()}
    assert values["family"] == "DE SOUSA" and values["given"] == "Ana"
    assert values["birth_family"] == "LE GALL" and values["birth_date"] == "1980-02-02"


# -- the sample set (samples/pdf, born-digital ones: text layer read with pdfplumber) -----------
SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "pdf"


def _sample_rows() -> list[dict[str, str]]:
    truth = SAMPLES / "truth.csv"
    if not truth.exists():
        return []
    import csv

    with truth.open(encoding="utf-8", newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["form"] == "text"
                and r["outcome"] != "failed" and (SAMPLES / r["file"]).exists()]


@pytest.mark.skipif(not _sample_rows(), reason="samples/pdf is absent")
@pytest.mark.parametrize("row", _sample_rows(), ids=lambda r: r["file"])
def test_text_layer_samples_match_their_truth(row):
    path = SAMPLES / row["file"]
    msg = normalize_report(_pdfplumber_doc(path), path.read_bytes(), "samples")
    f = {k: str(v["value"]) for k, v in fields_of(msg).items()}
    for name in ("family", "given", "birth_date", "sex", "exam_date", "modality", "body_region",
                 "prescriber", "radiologist"):
        assert fold(f.get(name, "")) == fold(row[name]), name
    if row["birth_family"] != row["family"]:
        assert fold(f["birth_family"]) == fold(row["birth_family"])
    assert f.get("nir", "") == row["nir"]
    assert " ".join(f["conclusion"].split()) == row["conclusion"]
    assert msg.entries[0].type == IMAGING_REPORT and msg.entries[0].effective == row["exam_date"]
    assert msg.quarantine_reasons == []


# -- real-world layouts (invented, as French imaging centres and hospitals print them) ----------
def values_of(text: str, *more: str, source: str = TEXT_LAYER, conf: float = 100.0):  # noqa: ANN201
    msg = normalize_report(doc(*(page(n + 1, t, source, conf)
                                 for n, t in enumerate((text, *more)))), PDF, "s")
    return msg, {k: v["value"] for k, v in fields_of(msg).items()}


def test_layout_two_column_header_read_row_by_row():
    msg, v = values_of("""IMAGERIE MÉDICALE DES LILAS
Patient : Mme DURAND Claire Examen du 12/03/2025
Née le 03/07/1961 Médecin demandeur : Dr Paul ROCHE
IRM CEREBRALE SANS ET AVEC INJECTION
Technique : séquences T1, T2 FLAIR, diffusion, T1 après gadolinium.
CONCLUSION :
IRM cérébrale normale.
Dr Hélène VIDAL""")
    assert (v["family"], v["given"], v["sex"], v["birth_date"]) == \
        ("DURAND", "Claire", "F", "1961-07-03")
    assert (v["exam_date"], v["modality"], v["body_region"]) == ("2025-03-12", "MR", "encéphale")
    assert v["prescriber"] == "Dr Paul ROCHE" and v["radiologist"] == "Dr Hélène VIDAL"
    assert v["conclusion"] == "IRM cérébrale normale." and msg.quarantine_reasons == []


@pytest.mark.parametrize("label", ["Nom / Prénom :", "Nom/Prénom :", "Nom et prénom :",
                                   "Nom et prénom(s) :"])
def test_layout_name_and_given_under_one_label(label):
    msg, v = values_of(f"""{label} DURAND Claire
Date de naissance : 03/07/1961
ANGIOSCANNER DES ARTÈRES PULMONAIRES
Conclusion : pas d'embolie pulmonaire.""")
    # it was: 'Prénom :' read inside the label, the family name taken for the given name
    assert v["family"] == "DURAND" and v["given"] == "Claire" and msg.quarantine_reasons == []


@pytest.mark.parametrize("text", [
    "Madame Claire DURAND épouse MARTIN\nDate de naissance : 03-07-1961",
    "Mme DURAND Claire ép. MARTIN\nNé(e) le 03.07.1961",
    "Nom : DURAND épouse MARTIN\nPrénom(s) : Claire\nDate de naissance : 3 juillet 1961",
    "Nom : DURAND veuve MARTIN\nPrénom : Claire\nDDN : 03/07/1961",
])
def test_layout_spouse_name_is_the_name_used(text):
    msg, v = values_of(text + "\nRADIOGRAPHIE DU BASSIN DE FACE\nEN CONCLUSION\nCoxarthrose.")
    assert v["family"] == "MARTIN" and v["birth_family"] == "DURAND" and v["given"] == "Claire"
    assert v["birth_date"] == "1961-07-03" and v["body_region"] == "bassin"
    assert v["conclusion"] == "Coxarthrose." and msg.quarantine_reasons == []
    assert msg.identity.family == "MARTIN" and msg.identity.birth_family == "DURAND"


def test_layout_patient_only_in_the_footer_of_every_page():
    first = """CLINIQUE DU LAC - IMAGERIE
SCANOGRAPHIE THORACO-ABDOMINO-PELVIENNE
Date de l'examen : 05/05/2025
Technique : acquisition après injection.
DURAND Claire - née le 03/07/1961 - Page 1/2"""
    second = """Conclusion :
Pas de lésion secondaire.
Dr Hélène VIDAL
DURAND Claire - née le 03/07/1961 - Page 2/2"""
    msg, v = values_of(first, second)
    assert (v["family"], v["given"], v["birth_date"]) == ("DURAND", "Claire", "1961-07-03")
    assert fields_of(msg)["family"]["unlabelled"] is True
    assert (v["modality"], v["body_region"]) == ("CT", "thorax-abdomen-pelvis")
    assert v["conclusion"] == "Pas de lésion secondaire." and msg.quarantine_reasons == []
    # a footer name in Title case cannot be split: still quarantined
    msg, _ = values_of(first.replace("DURAND Claire", "Claire Durand"), second)
    assert any("not told apart" in r for r in msg.quarantine_reasons)
    # words before 'né le' that are not only a name are no patient
    msg, v = values_of("Vu ce jour pour douleur, né le 03/07/1961\nIRM DU GENOU\nConclusion : RAS.")
    assert "family" not in v and msg.quarantine_reasons


@pytest.mark.parametrize(("heading", "sep"), [
    ("CONCLUSION :", "\n"), ("Conclusion", "\n"), ("EN CONCLUSION", "\n"), ("Synthèse :", " "),
    ("SYNTHÈSE", "\n"), ("Au total :", " "), ("AU TOTAL", "\n")])
def test_layout_conclusion_headings(heading, sep):
    _, v = values_of(f"""Mlle PETIT Chloé
Née le 3 juillet 1998
TDM DES SINUS
Examen réalisé le 02/02/2025
Résultats : comblement du sinus maxillaire droit.
{heading}{sep}Sinusite maxillaire droite.
Compte rendu validé électroniquement par le Dr Marc LEBLANC""")
    assert v["conclusion"] == "Sinusite maxillaire droite."
    # 'validé électroniquement par le Dr X': the signer was missed because of 'le'
    assert v["radiologist"] == "Dr Marc LEBLANC"
    assert (v["family"], v["sex"], v["birth_date"]) == ("PETIT", "F", "1998-07-03")
    assert (v["modality"], v["body_region"], v["exam_date"]) == ("CT", "sinus", "2025-02-02")


def test_a_synthesis_title_is_no_conclusion_heading():
    _, v = values_of("Mme PETIT Chloé\nNée le 03/07/1998\nSynthèse du dossier médical\n"
                     "Antécédents : appendicectomie.")
    assert "conclusion" not in v


NIR_DURAND = nir("2610775112034")


def test_layout_ins_style_labels_on_one_line_nir_in_groups_and_ipp():
    n = NIR_DURAND
    msg, v = values_of(f"""CENTRE HOSPITALIER DE MEAUX - IMAGERIE
Nom de naissance : MARTIN Nom d'usage : DURAND Prénom(s) : Claire Anne
Date de naissance : 03.07.1961 Sexe : Féminin
N° de sécurité sociale : {n[0]} {n[1:3]} {n[3:5]} {n[5:7]} {n[7:10]} {n[10:13]} {n[13:]}
IPP : 12345678
ECHO-DOPPLER DES TRONCS SUPRA-AORTIQUES
Date de l'examen : 14/03/2025
Conclusion
Absence de sténose significative des axes carotidiens.
Compte rendu validé électroniquement par le Dr Marc LEBLANC""")
    assert (v["family"], v["birth_family"], v["given"], v["sex"], v["birth_date"]) == \
        ("DURAND", "MARTIN", "Claire Anne", "F", "1961-07-03")
    assert v["nir"] == NIR_DURAND and [i.nir for i in msg.identity.ins] == [NIR_DURAND]
    assert msg.identity.given == "Claire"
    # the region was missing: 'troncs supra-aortiques' was in no table
    assert (v["modality"], v["body_region"]) == ("US", "troncs supra-aortiques")
    assert v["radiologist"] == "Dr Marc LEBLANC" and msg.quarantine_reasons == []
    assert_no_patient_data(msg, "DURAND", "MARTIN", NIR_DURAND)


@pytest.mark.parametrize(("title", "code", "region"), [
    ("ANGIOSCANNER DES ARTÈRES PULMONAIRES", "CT", "thorax"),
    ("Écho-doppler des TSA", "US", "troncs supra-aortiques"),
    ("IRM CEREBRALE SANS ET AVEC INJECTION", "MR", "encéphale"),
    ("RADIOGRAPHIE DU BASSIN DE FACE", "XR", "bassin"),
    ("Mammographie bilatérale + échographie", "MG", "seins"),
    ("SCANOGRAPHIE DU RACHIS LOMBAIRE", "CT", "rachis lombaire"),
    ("TDM THORACO-ABDOMINO-PELVIENNE", "CT", "thorax-abdomen-pelvis"),
])
def test_layout_exam_titles(title, code, region):
    _, v = values_of(f"Mme DURAND Claire\nNée le 03/07/1961\n{title}\nConclusion : RAS.")
    assert (v["modality"], v.get("body_region", "")) == (code, region)


def test_layout_region_named_in_the_request_section():
    # the ANS anaesthesia sample's layout: a bare modality title, the region in 'Demande d'examen'
    msg, v = values_of("""Service d'imagerie médicale
Échographie-doppler
Demande d'examen
Échographie-doppler des veines des membres inférieurs, recherche de thrombose veineuse.
Conclusion
Pas de thrombose veineuse profonde.
Dr Pierre LEMAIRE
Radiologue""")
    f = fields_of(msg)["body_region"]
    assert v["modality"] == "US" and f["value"] == "membre inférieur"
    assert f["found_in"] == "indication"
    assert any("family name not found" in r for r in msg.quarantine_reasons)


def test_layout_ocr_page_with_its_usual_errors():
    n = nir("1520775112034")
    msg, v = values_of(f"""CABINET D'lMAGERIE DU NORD
Patient : M. DUPONT Jean-Pierre
Né Ie O3/O7/l952
N° S.S. : l 52 O7 75 ll2 O34 {n[13:]}
Médecin traitant : Dr Luc HENRY
Adressé par le Dr Paul ROCHE
IRM DU RACHIS L0MBAIRE
Examen du l2/O3/2O25
C0NCLUSI0N :
Hernie discale L4-L5 paramédiane gauche.
Dr.Hélène VIDAL""", source=OCR, conf=91.0)
    assert (v["family"], v["given"], v["sex"], v["birth_date"], v["nir"]) == \
        ("DUPONT", "Jean-Pierre", "M", "1952-07-03", n)
    assert (v["modality"], v["body_region"], v["exam_date"]) == ("MR", "rachis lombaire",
                                                                  "2025-03-12")
    assert v["prescriber"] == "Dr Paul ROCHE" and v["radiologist"] == "Dr.Hélène VIDAL"
    assert v["conclusion"] == "Hernie discale L4-L5 paramédiane gauche."
    assert msg.quarantine_reasons == []


def test_layout_civility_age_and_exam_label():
    msg, v = values_of("""Monsieur DUPONT Jean-Pierre, 72 ans, né le 3 juillet 1952
Examen : IRM DU GENOU GAUCHE
Radiologue : Dr Hélène VIDAL
Conclusion : lésion méniscale.""")
    assert (v["family"], v["given"], v["sex"], v["birth_date"]) == \
        ("DUPONT", "Jean-Pierre", "M", "1952-07-03")
    # the title was 'Examen : IRM DU GENOU GAUCHE', label and all
    assert v["exam_type"] == "IRM DU GENOU GAUCHE" and v["body_region"] == "genou gauche"
    assert v["radiologist"] == "Dr Hélène VIDAL"


def test_layout_child_with_age_and_mademoiselle():
    _, v = values_of("Enfant Lucas PETIT (5 ans)\nDate de naissance : 10/01/2020\n"
                     "RADIOGRAPHIE DU THORAX\nConclusion : pas de foyer.")
    assert (v["family"], v["given"], v["birth_date"]) == ("PETIT", "Lucas", "2020-01-10")
    assert "sex" not in v
    _, v = values_of("Mlle PETIT Chloé\nDate de naissance : 03-07-1998\nRADIO DU GENOU DROIT")
    assert (v["family"], v["given"], v["sex"]) == ("PETIT", "Chloé", "F")


def test_layout_nee_says_a_woman_and_a_birth_name_in_brackets():
    # the ANS tele-medicine sample's layout: no civility, no 'Sexe', 'Née le'
    msg, v = values_of("Patient\nMarie DECOURCY\nNée le 31 Mai 1976\nScanner cérébral\n"
                       "Conclusion : RAS")
    assert v["sex"] == "F" and fields_of(msg)["sex"]["from"] == "nee" and msg.identity.sex == "F"
    _, v = values_of("Nom : DURAND Claire (née MARTIN)\nDate de naissance : 03/07/1961\n"
                     "Mammographie de dépistage\nConclusion : ACR 1.")
    assert (v["family"], v["birth_family"], v["sex"]) == ("DURAND", "MARTIN", "F")
    # 'Né le' is also the generic form of many templates, 'Né(e) le' says nothing
    for label in ("Né le", "Né(e) le", "Né(e) le :"):
        _, v = values_of(f"Patient\nMarie DECOURCY\n{label} 31/05/1976\nScanner cérébral")
        assert "sex" not in v and v["birth_date"] == "1976-05-31"


def test_layout_prescribed_on_a_date_by():
    # the ANS lab report's layout: 'prescrite le <date> par DR X'
    _, v = values_of("Demande d'examens 202111111123 prescrite le 01/01/2021 par DR Pascal "
                     "CHARLES (810002422979)\nNom de naissance DECOURCY\nPrénom(s) Marie\n"
                     "Date de naissance 31 Mai 1976")
    assert v["prescriber"] == "DR Pascal CHARLES"
