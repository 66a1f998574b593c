"""OCR quality on noisy scans: the conclusion read through parse_pdf + normalize_report (the
pipeline's path, the real tesseract with its French data) is compared with what the sample
generator printed, as a character error rate (bench/cer.py). Not timed: a regression in the
OCR call, the image handling or the conclusion's extraction shows as a higher CER.

bench/bench_ocr_cer.py measures the same on 24 documents (mean 0.5 % when written); these
three keep the test short. Also: the CER arithmetic itself, and the speck filter of
parsers/pdf/_ocr.py on a hand-made tesseract result.
"""

from __future__ import annotations

import shutil

import pytest

from bench.cer import cer, levenshtein, normalise_space
from normalizers.report import normalize_report
from parsers.pdf import OCR, PdfLimits, parse_pdf
from parsers.pdf._ocr import page_from_tesseract
from samples.generate_pdf import scan_set

# The target is 3 % on average; each document may have a bad word (a speck on
# 'secondaire' made it 'FES': 7 % of a short conclusion), so the bar per document is higher.
MEAN_CER = 0.05
DOCUMENT_CER = 0.10


@pytest.fixture(scope="module")
def read_scans() -> list[tuple[dict, dict]]:
    if shutil.which("tesseract") is None:
        pytest.skip("tesseract missing")
    out = []
    for _, data, truth in scan_set(3):  # IRM genou, TDM thorax, échographie abdominale
        doc = parse_pdf(data, PdfLimits(processes=1))
        assert all(p.source == OCR for p in doc.pages)
        out.append((normalize_report(doc, data, "test").entries[0].details["fields"], truth))
    return out


def test_conclusion_cer_on_noisy_scans(read_scans: list[tuple[dict, dict]]) -> None:
    rates = []
    for fields, truth in read_scans:
        assert "conclusion" in fields, truth["file"]
        assert fields["conclusion"]["source"] == OCR
        rate = cer(fields["conclusion"]["value"], truth["conclusion"])
        assert rate < DOCUMENT_CER, (truth["file"], rate, fields["conclusion"]["value"])
        rates.append(rate)
    assert sum(rates) / len(rates) < MEAN_CER, rates


def test_other_fields_of_noisy_scans(read_scans: list[tuple[dict, dict]]) -> None:
    for fields, truth in read_scans:
        assert fields["exam_date"]["value"] == truth["exam_date"], truth["file"]
        assert fields["modality"]["value"] == truth["modality"], truth["file"]
        assert fields["body_region"]["value"] == truth["body_region"], truth["file"]


def test_levenshtein_and_cer() -> None:
    assert levenshtein("", "") == 0 and levenshtein("abc", "") == 3
    assert levenshtein("", "ab") == 2
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("ménisque", "menisque") == 1  # a lost accent is an error
    assert levenshtein("Grade III", "Grade lil") == 3  # case counts too
    assert cer("Pas  de\nlésion.", "Pas de lésion.") == 0.0  # only white space is normalised
    assert cer("pas de lésion.", "Pas de lésion.") == pytest.approx(1 / 14)
    assert cer("", "abcd") == 1.0 and cer("", "") == 0.0 and cer("x", " ") == 1.0
    assert normalise_space(" a \f b\n") == "a b"


def _tesseract_dict(words: list[tuple[str, float, int]]) -> dict[str, list]:
    """image_to_data's dict for one line of (text, confidence, box height in px)."""
    n = len(words)
    left = [40 * i for i in range(n)]
    return {"text": [w[0] for w in words], "conf": [w[1] for w in words],
            "height": [w[2] for w in words], "width": [30] * n, "left": left, "top": [100] * n,
            "block_num": [1] * n, "par_num": [1] * n, "line_num": [1] * n}


def test_specks_of_dirt_are_not_words() -> None:
    d = _tesseract_dict([("Pas", 95, 30), ("de", 96, 30), ("lésion", 93, 31), ("-", 91, 4),
                         ("S", 18, 4), (".", 88, 3), ("à", 40, 22), ("droite.", 94, 30),
                         ("Le", 0, 8), ("ﬁbrose", 90, 30), ("", 95, 30), ("x", -1, 30)])
    page = page_from_tesseract(d, 1, 300, 595.0, 842.0)
    # kept: a sure dash (as flat as a speck), a doubtful word of letter size; dropped: a
    # doubtful tiny 'S' and 'Le', a lone full stop of speck size however sure
    assert page.text == "Pas de lésion - à droite. fibrose"
    assert [w.text for w in page.words][-1] == "fibrose"
