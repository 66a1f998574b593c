"""The committed PDF sample set (samples/pdf) and its generator (samples/generate_pdf.py).

Checks the files themselves, not the pipeline: regenerating gives the same bytes (the scans
only where Pillow and the font files are those recorded in truth.json, else the same pages and
text), text-layer PDFs read back with pdfplumber exactly as the truth says (accents, œ, NIR
groups, dates, conclusion), scans are image-only, every file has a truth row, NIR keys are
valid, the copy is byte-identical and the re-scan is not, and each broken file is broken in the
one way it claims.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
from pathlib import Path

import pdfplumber
import pytest
from pdfplumber.utils.exceptions import PdfminerException

from samples import generate_pdf
from samples.generate import nir_is_valid, nir_key
from tests.conftest import SAMPLES

PDF_DIR = SAMPLES / "pdf"
OUTCOMES = {("deposited", ""), ("duplicate", "DUPLICATE_BYTES"),
            ("duplicate", "DUPLICATE_CONTENT"), ("quarantined", "IDENTITY_UNKNOWN_PATIENT"),
            ("failed", "PDF_CORRUPT"), ("failed", "PDF_NOT_PDF"), ("failed", "PDF_ENCRYPTED")}
MODALITIES = {"XR", "US", "CT", "MR", "MG", "PT", "DXA"}


def truth_json() -> dict:
    return json.loads((PDF_DIR / "truth.json").read_text(encoding="utf-8"))


def truth_rows() -> list[dict]:
    return truth_json()["files"]


def csv_rows() -> list[dict[str, str]]:
    with (PDF_DIR / "truth.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def by_outcome(code: str) -> list[dict]:
    return [r for r in truth_rows() if r["code"] == code]


def readable(row: dict) -> bool:
    return row["form"] in ("text", "mixed") and row["code"] not in ("PDF_CORRUPT",
                                                                     "PDF_ENCRYPTED")


def norm(text: str) -> str:
    return " ".join(text.split())


def same_scan_environment() -> bool:
    return truth_json()["scan_environment"] == generate_pdf.scan_environment()


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pdf")
    generate_pdf.write_set(out)
    return out


# ------------------------------------------------------------------ determinism


@functools.cache
def _default_build() -> tuple[dict, list]:
    """One build of the default set for the module (3 s each; the tests only read it): the
    first of the two builds compared below, and the set the other seed is compared with."""
    return generate_pdf.build()


def test_generation_is_deterministic_in_process():
    files1, truth1 = _default_build()
    files2, truth2 = generate_pdf.build()
    assert files1 == files2
    assert truth1 == truth2


def test_regeneration_matches_the_committed_set(regenerated: Path):
    committed = {p.name for p in PDF_DIR.iterdir() if p.is_file()}
    assert {p.name for p in regenerated.iterdir()} == committed
    scans = {r["file"] for r in truth_rows() if r["form"] in ("scan", "mixed")}
    same_env = same_scan_environment()
    for name in sorted(committed):
        new, old = (regenerated / name).read_bytes(), (PDF_DIR / name).read_bytes()
        if name == "truth.json" and not same_env:
            a, b = json.loads(new), json.loads(old)
            a.pop("scan_environment"), b.pop("scan_environment")
            assert a == b
        elif name in scans and not same_env:
            # Another Pillow (JPEG encoder) or font: other pixels, same pages and same text.
            with pdfplumber.open(regenerated / name) as n, pdfplumber.open(PDF_DIR / name) as o:
                assert len(n.pages) == len(o.pages)
                assert [p.extract_text() for p in n.pages] == [p.extract_text() for p in o.pages]
        else:
            assert new == old, f"{name} differs from its regeneration"


def test_another_seed_gives_other_scans_same_shape():
    files, truth = generate_pdf.build(seed=7)
    committed, _ = _default_build()
    assert files.keys() == committed.keys()
    assert files["02_tdm_thorax_K2_scan.pdf"] != committed["02_tdm_thorax_K2_scan.pdf"]


# ------------------------------------------------------------------ truth file


def test_truth_rows_cover_every_file_once():
    files = sorted(p.name for p in PDF_DIR.glob("*.pdf"))
    names = [r["file"] for r in truth_rows()]
    assert sorted(names) == files and len(set(names)) == len(names)
    assert [r["file"] for r in csv_rows()] == names


def test_truth_csv_and_json_agree():
    for c, j in zip(csv_rows(), truth_rows(), strict=True):
        for k, v in c.items():
            assert v == str(j[k]), (c["file"], k)


def test_truth_fields_are_well_formed():
    for r in truth_rows():
        assert (r["outcome"], r["code"]) in OUTCOMES, r["file"]
        if r["form"] == "none":
            continue
        assert r["modality"] in MODALITIES
        assert r["sex"] in ("F", "M")
        assert len(r["birth_date"]) == 10 and len(r["exam_date"]) == 10
        assert r["prescriber"].startswith("Dr ") and r["radiologist"].startswith("Dr ")
        assert r["conclusion"] and len(r["page_texts"]) == r["pages"]
        assert r["finess"].isdigit() and len(r["finess"]) == 9


def test_every_sample_patient_and_one_unknown():
    with (SAMPLES / "patients.csv").open(encoding="utf-8", newline="") as fh:
        known = {p["key"]: p for p in csv.DictReader(fh)}
    rows = [r for r in truth_rows() if r["patient"]]
    assert {f"K{i}" for i in range(1, 9)} <= {r["patient"] for r in rows}
    for r in rows:
        if r["patient"] in known:
            p = known[r["patient"]]
            assert (r["family"], r["birth_family"], r["given"], r["birth_date"], r["sex"]) == (
                p["family"], p["birth_family"], p["given"], p["birth_date"], p["sex"])
            assert r["nir"] in ("", p["ins"])
            assert r["outcome"] != "quarantined"
        else:
            assert r["outcome"] == "quarantined" and r["code"] == "IDENTITY_UNKNOWN_PATIENT"
            assert r["nir"] and r["nir"] not in {p["ins"] for p in known.values()}


def test_nir_keys_are_valid():
    nirs = {r["nir"] for r in truth_rows() if r["nir"]}
    assert any(n[5:7] in ("2A", "2B") for n in nirs), "Corsica must be covered"
    for nir in nirs:
        assert nir_is_valid(nir), nir
        dept = nir[5:7].replace("2A", "19").replace("2B", "18")
        assert int(nir[13:]) == 97 - int(nir[:5] + dept + nir[7:13]) % 97
        assert nir_key(nir[:13]) == nir[13:]


# ------------------------------------------------------------------ the files


@pytest.mark.parametrize("row", [r for r in truth_rows() if readable(r)], ids=lambda r: r["file"])
def test_text_layer_reads_back_exactly(row: dict):
    text_pages = [int(i) for i in row["text_pages"].split(",")]
    with pdfplumber.open(PDF_DIR / row["file"]) as pdf:
        assert len(pdf.pages) == row["pages"]
        texts = [pdf.pages[i - 1].extract_text() for i in text_pages]
    for i, text in zip(text_pages, texts, strict=True):
        assert text == row["page_texts"][i - 1], f"page {i}"
    whole = "\n".join(texts)
    assert row["family"].upper() in whole and row["given"] in whole
    if row["birth_family"] != row["family"]:
        assert f"née {row['birth_family'].upper()}" in whole
    y, m, d = row["birth_date"].split("-")
    assert f"Date de naissance : {d}/{m}/{y}" in whole
    y, m, d = row["exam_date"].split("-")
    assert f"Examen du {d}/{m}/{y}" in whole
    assert norm(row["conclusion"]) in norm(whole)
    assert row["prescriber"] in whole and row["radiologist"] in whole
    if row["nir"]:
        n = row["nir"]
        assert (f"N° de sécurité sociale : {n[0]} {n[1:3]} {n[3:5]} {n[5:7]} {n[7:10]} "
                f"{n[10:13]} {n[13:]}") in whole
    else:
        assert "sécurité sociale" not in whole


def test_accents_and_ligature_survive_the_text_layer():
    with pdfplumber.open(PDF_DIR / "01_irm_genou_droit_K1_texte.pdf") as pdf:
        text = pdf.pages[0].extract_text()
    for s in ("LEFÈVRE Hélène, née BÉRANGER", "œdème", "Épanchement", "d'injection"):
        assert s in text


@pytest.mark.parametrize("row", [r for r in truth_rows() if r["form"] in ("scan", "mixed")],
                         ids=lambda r: r["file"])
def test_scanned_pages_are_image_only(row: dict):
    text_pages = {int(i) for i in row["text_pages"].split(",") if i}
    with pdfplumber.open(PDF_DIR / row["file"]) as pdf:
        assert len(pdf.pages) == row["pages"]
        for n, page in enumerate(pdf.pages, 1):
            if n in text_pages:
                continue
            assert page.chars == [] and (page.extract_text() or "") == ""
            assert len(page.images) == 1
            img = page.images[0]
            dpi = img["srcsize"][0] / (page.width / 72)
            assert 190 <= dpi <= 310


def test_a_three_page_scan_and_a_mixed_file():
    rows = truth_rows()
    assert any(r["form"] == "scan" and r["pages"] == 3 for r in rows)
    mixed = [r for r in rows if r["form"] == "mixed"]
    assert mixed and all(r["text_pages"] == "1" and r["pages"] == 2 for r in mixed)


def test_copy_is_byte_identical_and_rescan_is_not():
    (copy,) = by_outcome("DUPLICATE_BYTES")
    (rescan,) = by_outcome("DUPLICATE_CONTENT")
    assert copy["duplicate_of"] == rescan["duplicate_of"]
    original = (PDF_DIR / copy["duplicate_of"]).read_bytes()
    assert (PDF_DIR / copy["file"]).read_bytes() == original
    assert (PDF_DIR / rescan["file"]).read_bytes() != original
    orig_row = next(r for r in truth_rows() if r["file"] == copy["duplicate_of"])
    assert rescan["page_texts"] == orig_row["page_texts"]
    assert hashlib.sha256((PDF_DIR / rescan["file"]).read_bytes()).digest() != \
        hashlib.sha256(original).digest()


def test_encrypted_pdf_needs_its_password():
    (row,) = by_outcome("PDF_ENCRYPTED")
    path = PDF_DIR / row["file"]
    assert b"/Encrypt" in path.read_bytes()
    with pytest.raises(PdfminerException):
        with pdfplumber.open(path) as pdf:
            pdf.pages[0].extract_text()
    with pdfplumber.open(path, password=generate_pdf.USER_PASSWORD) as pdf:
        assert pdf.pages[0].extract_text() == row["page_texts"][0]


def test_truncated_pdf_is_corrupt():
    (row,) = by_outcome("PDF_CORRUPT")
    data = (PDF_DIR / row["file"]).read_bytes()
    assert data.startswith(b"%PDF-1.4") and b"%%EOF" not in data and b"xref" not in data
    with pytest.raises(PdfminerException):
        with pdfplumber.open(PDF_DIR / row["file"]) as pdf:
            pdf.pages[0].extract_text()


def test_not_a_pdf():
    (row,) = by_outcome("PDF_NOT_PDF")
    data = (PDF_DIR / row["file"]).read_bytes()
    assert row["file"].endswith(".pdf") and not data.startswith(b"%PDF")
    assert b"%PDF" not in data


def test_folder_stays_small():
    total = sum(p.stat().st_size for p in PDF_DIR.iterdir())
    assert total < 3 * 1024 * 1024
