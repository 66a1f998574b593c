"""PDF parser: text layer, OCR with the real tesseract ('fra'), limits and errors.

Scans are made here: French text drawn with a TrueType font on a white image at 300 dpi,
slightly rotated, blurred and noisy, saved as an image-only PDF by Pillow. Text pages are
hand-written PDFs (WinAnsi Helvetica), so every input's content is known.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import zlib
from functools import cache
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

import parsers.pdf as pdfmod
from parsers.pdf import OCR, TEXT_LAYER, PdfLimits, parse_pdf
from parsers.pdf import _ocr as ocrmod
from parsers.pdf.errors import (
    ERROR_CODES,
    PDF_CORRUPT,
    PDF_ENCRYPTED,
    PDF_NOT_PDF,
    PDF_OCR_UNAVAILABLE,
    PDF_PAGE_EMPTY,
    PDF_PAGE_TOO_LARGE,
    PDF_TIMEOUT,
    PDF_TOO_LARGE,
    PDF_TOO_MANY_PAGES,
    PdfParseError,
)
from tests.conftest import corpus_path

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract missing")

FONT_CANDIDATES = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                   "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
                   "/usr/share/fonts/TTF/DejaVuSans.ttf"]

REPORT_LINES = [
    "Compte rendu d'échographie abdominale",
    "Mme LEFÈVRE Hélène née BÉRANGER le 14/03/1968",
    "NIR 2 68 03 75 116 042 41",
    "Conclusion : foie de taille normale, pas de lésion",
    "Le médecin radiologue, Dr Gérard MARTIN",
]


def _font(size: int) -> ImageFont.FreeTypeFont:
    for path in FONT_CANDIDATES:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def make_scan(lines: list[str], *, dpi: int = 300, width_in: float = 8.27,
              seed: int = 1, rotate: float = 0.6) -> Image.Image:
    """A grayscale 'scan' of ``lines``: 11-pt text at ``dpi``, slightly rotated, blurred,
    with salt-and-pepper noise. Height fits the lines (a strip, to keep OCR quick)."""
    size = round(11 / 72 * dpi * 1.0)
    line_h = round(size * 1.8)
    width = round(width_in * dpi)
    height = line_h * (len(lines) + 2)
    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    font = _font(size)
    for n, line in enumerate(lines):
        draw.text((round(0.8 * dpi), line_h * (n + 1)), line, fill=20, font=font)
    img = img.rotate(rotate, resample=Image.BICUBIC, fillcolor=255, expand=False)
    img = img.filter(ImageFilter.GaussianBlur(0.7))
    rng = random.Random(seed)
    px = img.load()
    for _ in range(width * height // 400):
        x, y = rng.randrange(width), rng.randrange(height)
        px[x, y] = rng.choice((0, 255))
    return img


def image_pdf(images: list[Image.Image], dpi: int = 300, **info: str) -> bytes:
    out = io.BytesIO()
    images[0].save(out, "PDF", resolution=dpi, save_all=True, append_images=images[1:], **info)
    return out.getvalue()


def build_pdf(objects: list[bytes], trailer: bytes = b"") -> bytes:
    """A PDF from its numbered objects (1..n; object 1 the catalog) with a correct xref."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, trailer, xref)
    return bytes(out)


def text_pdf(pages: list[list[str]], mediabox: tuple[int, int] = (595, 842),
             trailer: bytes = b"", extra: list[bytes] | None = None) -> bytes:
    """Born-digital pages: each a list of lines in Helvetica 12 (WinAnsi, accents allowed)."""
    n = len(pages)
    kids = b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(n))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, n),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
               b"/Encoding /WinAnsiEncoding >>"]
    for i, lines in enumerate(pages):
        ops = [b"BT /F1 12 Tf 72 %d Td" % (mediabox[1] - 72)]
        for line in lines:
            escaped = line.encode("cp1252").replace(b"\\", b"\\\\").replace(
                b"(", b"\\(").replace(b")", b"\\)")
            ops.append(b"(" + escaped + b") Tj 0 -18 Td")
        ops.append(b"ET")
        stream = b"\n".join(ops)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources "
                       b"<< /Font << /F1 3 0 R >> >> /Contents %d 0 R >>"
                       % (mediabox[0], mediabox[1], 5 + 2 * i))
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream +
                       b"\nendstream")
    return build_pdf(objects + (extra or []), trailer)


def merge(*docs: bytes) -> bytes:
    """One PDF of the pages of ``docs`` (pdfium import_pages + save)."""
    out = pdfium.PdfDocument.new()
    for data in docs:
        src = pdfium.PdfDocument(data)
        out.import_pages(src)
        src.close()
    buf = io.BytesIO()
    out.save(buf)
    out.close()
    return buf.getvalue()


TEXT_PAGE = ["Compte rendu de radiographie du thorax",
             "Indication : toux persistante depuis trois semaines",
             "Conclusion : pas d'anomalie pleuro-parenchymateuse décelée"]


@pytest.fixture(scope="module")
def scan_pdf() -> bytes:
    return image_pdf([make_scan(REPORT_LINES)], title="Échographie abdominale",
                     author="Centre d'imagerie")


def _err(excinfo) -> PdfParseError:  # noqa: ANN001
    assert excinfo.value.code in ERROR_CODES
    return excinfo.value


# -- text layer -------------------------------------------------------------------------------

def test_text_layer_page_lines_words_and_accents() -> None:
    doc = parse_pdf(text_pdf([TEXT_PAGE]))
    (page,) = doc.pages
    assert page.source == TEXT_LAYER and page.confidence == 100.0 and page.number == 1
    assert page.text.split("\n") == TEXT_PAGE
    assert (page.width, page.height) == (595.0, 842.0)
    first = page.words[0]
    assert first.text == "Compte" and first.line == 0 and first.confidence == 100.0
    x0, top, x1, bottom = first.bbox
    assert 71 < x0 < 73 and x1 > x0 and 60 < top < bottom < 80  # top-left origin, points
    assert {w.line for w in page.words} == {0, 1, 2}
    assert "décelée" in page.text
    assert doc.warnings == [] and doc.text == page.text


def test_too_little_text_goes_to_ocr() -> None:
    # 'Page 1' has 5 letters/digits < min_text_chars: treated as a scan, and OCR reads it.
    doc = parse_pdf(text_pdf([["Page 1"]]))
    assert doc.pages[0].source == OCR and doc.pages[0].text == "Page 1"
    assert doc.pages[0].words[0].confidence < 100
    # a page drawing nothing at all (round 7): empty without OCR (it took seconds), a warning
    doc = parse_pdf(text_pdf([[]]))
    assert doc.pages[0].source == TEXT_LAYER and doc.pages[0].words == []
    assert doc.pages[0].text == "" and doc.warnings == [f"{PDF_PAGE_EMPTY}: page 1 has no text"]
    doc = parse_pdf(text_pdf([["."]]))  # a mark but no text: OCR'd, nothing found, a warning
    assert doc.pages[0].source == OCR and doc.pages[0].words == [] and doc.pages[0].text == ""
    assert doc.warnings == [f"{PDF_PAGE_EMPTY}: page 1 has no text"]
    doc = parse_pdf(text_pdf([["Page 1"]]), PdfLimits(min_text_chars=3))
    assert doc.pages[0].source == TEXT_LAYER and doc.pages[0].text == "Page 1"


# -- OCR --------------------------------------------------------------------------------------

def test_synthetic_scan_is_ocred_with_accents(scan_pdf: bytes) -> None:
    doc = parse_pdf(scan_pdf)
    (page,) = doc.pages
    assert page.source == OCR
    text = page.text
    for word in ("Compte", "rendu", "échographie", "abdominale", "Conclusion", "foie",
                 "taille", "normale", "Hélène", "LEFÈVRE", "14/03/1968",
                 "2 68 03 75 116 042 41"):
        assert word in text, word
    assert "é" in text and "è" in text.lower()
    assert page.confidence > 60
    assert len(text.split("\n")) == len(REPORT_LINES)
    assert all(w.confidence >= 0 and w.text for w in page.words)
    word = next(w for w in page.words if w.text == "Conclusion")
    assert word.line == 3
    x0, top, x1, bottom = word.bbox  # points: the line starts 0.8 in from the left edge
    assert 50 < x0 < 65 and 0 < top < bottom < page.height and x1 - x0 > 40
    assert round(page.width) == 595
    assert doc.metadata["Title"] == "Échographie abdominale"
    assert doc.metadata["Author"] == "Centre d'imagerie"
    assert not any(w.startswith("PDF_OCR_LOW_CONFIDENCE") for w in doc.warnings)


def test_mixed_document_page_by_page(scan_pdf: bytes) -> None:
    doc = parse_pdf(merge(text_pdf([TEXT_PAGE]), scan_pdf, text_pdf([TEXT_PAGE[::-1]])))
    assert [p.source for p in doc.pages] == [TEXT_LAYER, OCR, TEXT_LAYER]
    assert [p.number for p in doc.pages] == [1, 2, 3]
    assert doc.pages[0].text.startswith("Compte rendu de radiographie")
    assert "foie" in doc.pages[1].text
    assert doc.pages[2].text.startswith("Conclusion")
    assert doc.text.count("\f") == 2


def test_several_scanned_pages_in_the_process_pool() -> None:
    lines = [["Premier feuillet du compte rendu opératoire"],
             ["Deuxième feuillet : suites opératoires simples"],
             ["Troisième feuillet : sortie prévue demain matin"]]
    data = image_pdf([make_scan(ls, dpi=200, width_in=6, seed=n) for n, ls in enumerate(lines)],
                     dpi=200)
    limits = PdfLimits(dpi=200, processes=2)
    doc = parse_pdf(data, limits)
    assert [p.source for p in doc.pages] == [OCR] * 3
    for page, word in zip(doc.pages, ("Premier", "Deuxième", "Troisième"), strict=True):
        assert word in page.text
    pool = pdfmod._pools[2][1]
    doc2 = parse_pdf(data, limits)  # the pool is reused, same result
    assert pdfmod._pools[2][1] is pool
    assert [p.text for p in doc2.pages] == [p.text for p in doc.pages]


def scan_with_stamp_pdf(stamp: list[str], dpi: int = 150) -> bytes:
    """A page-sized scan (image XObject) with a line of real text over it (a fax header)."""
    img = make_scan(REPORT_LINES, dpi=dpi)
    w_pt, h_pt = img.width * 72 / dpi, img.height * 72 / dpi
    raw = zlib.compress(img.tobytes())
    ops = [b"q %.2f 0 0 %.2f 0 0 cm /Im1 Do Q" % (w_pt, h_pt), b"BT /F1 8 Tf 20 %.2f Td"
           % (h_pt - 12)]
    ops += [b"(" + line.encode("cp1252") + b") Tj 0 -9 Td" for line in stamp] + [b"ET"]
    content = b"\n".join(ops)
    return build_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] /Resources << /Font "
        b"<< /F1 3 0 R >> /XObject << /Im1 6 0 R >> >> /Contents 5 0 R >>" % (w_pt, h_pt),
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n"
        % (img.width, img.height, len(raw)) + raw + b"\nendstream"])


def test_scan_with_a_stamped_text_line_is_ocred() -> None:
    data = scan_with_stamp_pdf(["Fax recu le 12/03/2024 a 10:42 de 01 45 67 89 10 page 1/1"])
    doc = parse_pdf(data, PdfLimits(dpi=150))
    page = doc.pages[0]
    assert page.source == OCR
    assert "foie de taille normale" in page.text and "Fax" in page.text
    # a searchable scan (an OCR text layer over the image): its text layer is kept
    layer = [f"Ligne {n} du compte rendu numerise avec sa couche de texte" for n in range(5)]
    doc = parse_pdf(scan_with_stamp_pdf(layer), PdfLimits(dpi=150))
    assert doc.pages[0].source == TEXT_LAYER and doc.pages[0].text.startswith("Ligne 0")


def test_worker_death_fails_the_document_and_the_pool_is_replaced() -> None:
    data = image_pdf([make_scan(REPORT_LINES * 6, seed=n) for n in range(2)])
    limits = PdfLimits(processes=2)
    parse_pdf(image_pdf([make_scan(["Mise en route"], dpi=100)] * 2, dpi=100),
              PdfLimits(dpi=100, processes=2))  # the pool is started
    pool = pdfmod._pools[2][1]
    victim = next(iter(pool._processes))
    threading.Timer(0.4, os.kill, (victim, signal.SIGKILL)).start()  # while its page is read
    with pytest.raises(PdfParseError) as excinfo:
        parse_pdf(data, limits)
    err = _err(excinfo)
    assert err.code == PDF_CORRUPT and "worker" in err.message and err.location.startswith("page")
    doc = parse_pdf(data, limits)  # a fresh pool
    assert pdfmod._pools[2][1] is not pool
    assert [p.source for p in doc.pages] == [OCR, OCR]
    # a worker killed while idle: noticed before the next document, which gets a new pool
    pool = pdfmod._pools[2][1]
    os.kill(next(iter(pool._processes)), signal.SIGKILL)
    for _ in range(100):
        if pool._broken:
            break
        time.sleep(0.05)
    assert parse_pdf(data, limits).page_count == 2
    assert pdfmod._pools[2][1] is not pool


OWNER_SCRIPT = """
import os, subprocess, sys, time
sys.path.insert(0, {root!r})
import parsers.pdf as pdfmod


def start_child() -> int:  # stands for a tesseract in flight in the worker
    return subprocess.Popen(["sleep", "600"]).pid


if __name__ == "__main__":
    pool = pdfmod._pool(2)
    for f in [pool.submit(time.sleep, 0.3) for _ in range(4)]:  # both workers started
        f.result()
    child = pool.submit(start_child).result()
    print(" ".join(map(str, [child, *pool._processes])), flush=True)
    time.sleep(600)
"""


def _running(pid: int) -> bool:
    """Neither gone nor a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("PPid:"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux process lifetime")
def test_sigkilled_owner_leaves_no_ocr_worker_behind(tmp_path: Path) -> None:
    """The process owning an OCR pool is SIGKILLed (no clean-up runs): its pool's workers,
    the forkserver they were forked from and a child of a worker (a tesseract) all end."""
    script = tmp_path / "owner.py"
    script.write_text(OWNER_SCRIPT.format(root=str(Path(__file__).resolve().parents[1])))
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    pids: list[int] = []
    try:
        pids = [int(p) for p in owner.stdout.readline().split()]
        assert len(pids) == 3, pids
        pids.append(_parent(pids[1]))  # the forkserver
        assert pids[-1] != owner.pid and all(_running(p) for p in pids)
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(timeout=30)
        for _ in range(300):  # they go within milliseconds; a loaded machine gets 30 s
            if not any(_running(p) for p in pids):
                break
            time.sleep(0.1)
        assert [p for p in pids if _running(p)] == []
    finally:
        if owner.poll() is None:
            owner.kill()
        owner.stdout.close()
        for pid in pids:  # whatever survived a failure: ours to end
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def test_main_script_from_stdin_reads_pages_inline(tmp_path: Path) -> None:
    # forkserver workers cannot re-run a '<stdin>' main: parse_pdf reads the pages inline
    data = image_pdf([make_scan(["Page lue sans processus"], dpi=100, width_in=4)] * 2, dpi=100)
    (tmp_path / "scan.pdf").write_bytes(data)
    root, pdf = str(Path(__file__).resolve().parents[1]), str(tmp_path / "scan.pdf")
    script = (f"import sys; sys.path.insert(0, {root!r})\n"
              "from parsers.pdf import PdfLimits, parse_pdf\n"
              f"doc = parse_pdf(open({pdf!r}, 'rb').read(), PdfLimits(dpi=100, processes=2))\n"
              "print([p.source for p in doc.pages], 'processus' in doc.text)\n")
    done = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "['ocr', 'ocr'] True"


def test_tesseract_runs_single_threaded() -> None:
    # OpenMP threads per tesseract made a 300-dpi page 8 times slower on 2 CPUs
    assert os.environ.get("OMP_THREAD_LIMIT")


def test_low_confidence_warning(scan_pdf: bytes) -> None:
    doc = parse_pdf(scan_pdf, PdfLimits(low_confidence=99.9))  # any real scan is under it
    page = doc.pages[0]
    assert page.source == OCR and page.confidence < 99.9
    assert doc.warnings == [f"PDF_OCR_LOW_CONFIDENCE: page 1 mean confidence "
                            f"{page.confidence:.0f}"]


# -- corpus -----------------------------------------------------------------------------------

CORPUS_WORDS = {
    "ANEST-CR-ANEST_2022.01_0.pdf": ["Échographie-doppler", "Conclusion", "thrombose"],
    "IMG_CR_IMG_2024.01_CDA-R2-Niveau-1_15.pdf": ["Conclusion"],
    "BIO-CR-BIO_2021.01_CR-2nde-intention_4.pdf": [],
}
IMAGE_ONLY = "BIO-CR-BIO_2021.01_CDA-R2-Niveau-1_3.pdf"
# the image-only report, and two whose text layer is unmapped glyphs ('(cid:N)'): all
# others are born-digital and read from their text layer
OCR_EXPECTED = {IMAGE_ONLY, "DLU-EHPAD-FLUDR_2022.01_8.pdf", "DLU-EHPAD-FLUDR_2022.01_9.pdf"}


def _corpus_files() -> list[Path]:
    folder = corpus_path("pdf")
    return sorted(folder.glob("*.pdf"))


@cache
def _parsed_corpus_file(path: Path):  # noqa: ANN202
    """Each corpus PDF read once for the module: the image-only ones cost seconds of OCR."""
    return parse_pdf(path.read_bytes())


def test_corpus_every_file_parses() -> None:
    files = _corpus_files()
    assert files
    for path in files:
        doc = _parsed_corpus_file(path)
        assert doc.page_count >= 1, path.name
        assert all(p.text for p in doc.pages), path.name
        for page in doc.pages:
            if page.source == TEXT_LAYER:
                assert page.confidence == 100.0
            else:
                assert 0 < page.confidence <= 100, path.name
        ocr = any(p.source == OCR for p in doc.pages)
        assert ocr == (path.name in OCR_EXPECTED), path.name
        if path.name in CORPUS_WORDS:
            assert all(p.source == TEXT_LAYER for p in doc.pages), path.name
            for word in CORPUS_WORDS[path.name]:
                assert word in doc.text, (path.name, word)


def test_corpus_image_only_report_is_ocred() -> None:
    doc = _parsed_corpus_file(corpus_path("pdf", IMAGE_ONLY))
    assert [p.source for p in doc.pages] == [OCR, OCR]
    one, two = doc.pages[0].text, doc.pages[1].text
    for word in ("Laboratoire des charmes", "Compte rendu d'examens biologiques",
                 "BIOCHIMIE", "ELECTROPHORESE", "Triglycérides", "Cholestérol"):
        assert word in one, word
    for word in ("Glycémie", "Transaminases", "Objectifs thérapeutiques", "BILAN THYROIDIEN"):
        assert word in two, word
    assert all(p.confidence > 70 for p in doc.pages)
    assert doc.metadata.get("Producer", "").startswith("Microsoft")


def test_corpus_unmapped_glyphs_are_ocred() -> None:
    # A text layer of '(cid:N)' glyphs only (no ToUnicode): not text, the page is OCR'd.
    doc = _parsed_corpus_file(corpus_path("pdf", "DLU-EHPAD-FLUDR_2022.01_9.pdf"))
    assert doc.pages[0].source == OCR and "(cid:" not in doc.text
    assert doc.pages[0].confidence > 70


# -- limits and errors ------------------------------------------------------------------------

def test_not_a_pdf() -> None:
    for data in (b"", b"MSH|^~\\&|LAB", b"\x89PNG\r\n\x1a\n" + bytes(2000),
                 b" " * 1100 + b"%PDF-1.4\n"):
        with pytest.raises(PdfParseError) as excinfo:
            parse_pdf(data)
        assert _err(excinfo).code == PDF_NOT_PDF


def test_header_after_junk_within_1k_is_accepted() -> None:
    doc = parse_pdf(b"\x00junk\r\n" * 10 + text_pdf([TEXT_PAGE]))
    assert doc.pages[0].source == TEXT_LAYER


def test_too_large() -> None:
    data = text_pdf([TEXT_PAGE])
    with pytest.raises(PdfParseError) as excinfo:
        parse_pdf(data, PdfLimits(max_bytes=len(data) - 1))
    err = _err(excinfo)
    assert err.code == PDF_TOO_LARGE and str(len(data)) in err.message
    assert parse_pdf(data, PdfLimits(max_bytes=len(data))).page_count == 1


def test_too_many_pages() -> None:
    data = text_pdf([TEXT_PAGE] * 3)
    with pytest.raises(PdfParseError) as excinfo:
        parse_pdf(data, PdfLimits(max_pages=2))
    assert _err(excinfo).code == PDF_TOO_MANY_PAGES
    assert parse_pdf(data, PdfLimits(max_pages=3)).page_count == 3


def test_huge_page_refused_before_rasterising(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_render(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("rasterised")

    monkeypatch.setattr(ocrmod, "render_page", no_render)
    # 200 x 200 inches, no text but a mark (a page drawing nothing is not rasterised at all)
    data = text_pdf([["."]], mediabox=(200 * 72, 200 * 72))
    started = time.monotonic()
    with pytest.raises(PdfParseError) as excinfo:
        parse_pdf(data)
    err = _err(excinfo)
    assert err.code == PDF_PAGE_TOO_LARGE and err.location == "page 1"
    assert time.monotonic() - started < 2
    # the same page with text is read from its text layer: nothing to rasterise
    doc = parse_pdf(text_pdf([TEXT_PAGE], mediabox=(200 * 72, 200 * 72)))
    assert doc.pages[0].source == TEXT_LAYER


def _adler32_combine(first: int, second: int, second_len: int) -> int:
    """The Adler-32 of two byte strings one after the other, from theirs (zlib's
    adler32_combine, which Python's zlib does not offer)."""
    base = 65521
    rem = second_len % base
    a1, b1, a2, b2 = first & 0xFFFF, first >> 16, second & 0xFFFF, second >> 16
    return ((a1 + a2 + base - 1) % base) | ((rem * a1 + b1 + b2 + base - rem) % base) << 16


def flate_bomb(inflated: int, text: str = "Compte rendu") -> bytes:
    """A one-page PDF whose content stream is ``inflated`` bytes once inflated (blanks after
    one line of text): a few hundred bytes per megabyte.

    Each megabyte of blanks is compressed once: after a full flush the compressor starts
    afresh, so every megabyte compresses to the same bytes, repeated (compressing the
    gigabyte took seconds); the zlib trailer's checksum is combined the same way."""
    line = b"BT /F1 12 Tf 72 770 Td (%s) Tj ET\n" % text.encode()
    blanks = b" " * (1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate; zlib framing below
    head = packer.compress(line) + packer.flush(zlib.Z_FULL_FLUSH)
    megabyte = packer.compress(blanks) + packer.flush(zlib.Z_FULL_FLUSH)
    adler, adler_mb = zlib.adler32(line), zlib.adler32(blanks)
    for _ in range(inflated >> 20):
        adler = _adler32_combine(adler, adler_mb, len(blanks))
    packed = (b"\x78\xda" + head + megabyte * (inflated >> 20) + packer.flush()
              + adler.to_bytes(4, "big"))
    return build_pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                      b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
                      b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
                      b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources "
                      b"<< /Font << /F1 3 0 R >> >> /Contents 5 0 R >>",
                      b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed)
                      + packed + b"\nendstream"])


def test_flate_bomb_is_refused_while_inflating(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1 MB PDF whose content stream inflates to 1 GiB (pdfminer inflated it whole: 2 GB
    of memory) is refused once the document's inflate budget is spent, before any OCR."""
    import resource

    def no_render(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("rasterised")

    monkeypatch.setattr(ocrmod, "render_page", no_render)
    bomb = flate_bomb(1 << 30)
    assert len(bomb) < 2 * 1024 * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    with pytest.raises(PdfParseError) as excinfo:
        parse_pdf(bomb)
    err = _err(excinfo)
    assert err.code == PDF_TOO_LARGE and err.location == "page 1"
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak
    assert grown < 900 * 1024, f"{grown} KiB"  # the 256 MiB budget, not the gigabyte
    # under a budget the same document is read; the limit is the document's, not global
    small = flate_bomb(4 << 20, "Bilan sanguin normal, aucune anomalie")
    with pytest.raises(PdfParseError) as excinfo:
        parse_pdf(small, PdfLimits(max_inflated_bytes=1 << 20))
    assert _err(excinfo).code == PDF_TOO_LARGE
    doc = parse_pdf(small)
    assert doc.pages[0].source == TEXT_LAYER and "anomalie" in doc.pages[0].text


def lzw_bomb(rounds: int) -> bytes:
    """LZW codes (9 bits, PDF's early change) for ``rounds`` x 32,131 bytes of 'A': each round
    a clear code, 'A', then codes 258..509, each one byte longer than the last."""
    codes = [c for _ in range(rounds) for c in (256, 65, *range(258, 510))] + [257]
    packed = 0
    for code in codes:
        packed = (packed << 9) | code
    pad = -9 * len(codes) % 8
    return (packed << pad).to_bytes((9 * len(codes) + pad) // 8, "big")


def test_lzw_bomb_is_refused_and_lzw_still_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    from pdfminer.lzw import lzwdecode

    from parsers.pdf._inflate import bounded_lzwdecode

    small = lzw_bomb(2)
    assert bounded_lzwdecode(small) == lzwdecode(small) == b"A" * 2 * 32_131
    monkeypatch.setattr(ocrmod, "render_page", lambda *a, **k: pytest.fail("rasterised"))
    stream = lzw_bomb(200)  # 6.4 MB from 57 KB
    data = build_pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                      b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                      b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
                      b"<< /Length %d /Filter /LZWDecode >>\nstream\n" % len(stream) + stream
                      + b"\nendstream"])
    with pytest.raises(PdfParseError) as excinfo:
        parse_pdf(data, PdfLimits(max_inflated_bytes=1 << 20))
    assert _err(excinfo).code == PDF_TOO_LARGE


def test_a3_scan_is_within_the_default_pixel_limit() -> None:
    a3 = (842, 1191)
    limits = PdfLimits()
    assert (a3[0] * limits.dpi // 72 + 1) * (a3[1] * limits.dpi // 72 + 1) \
        <= limits.max_page_pixels


@pytest.mark.parametrize("cut", ["garbage", "truncated"])
def test_corrupt(cut: str) -> None:
    if cut == "garbage":
        data = b"%PDF-1.7\n" + bytes(range(256)) * 20
    else:
        data = text_pdf([TEXT_PAGE])[:30]
    with pytest.raises(PdfParseError) as excinfo:
        parse_pdf(data)
    assert _err(excinfo).code == PDF_CORRUPT
    # in words, not 'pdfium cannot read the PDF (error 3)'
    assert "damaged or truncated" in _err(excinfo).message
    assert "send the complete" in _err(excinfo).message


def test_damaged_xref_is_read_anyway() -> None:
    # Wrong startxref offset: both readers rebuild the cross-reference table.
    data = text_pdf([TEXT_PAGE])
    head, _, _ = data.rpartition(b"startxref\n")
    doc = parse_pdf(head + b"startxref\n12\n%%EOF\n")
    assert doc.pages[0].text.split("\n") == TEXT_PAGE


def test_encrypted_is_refused() -> None:
    # Standard security handler, RC4 40-bit: /U does not match the empty user password, so
    # the document needs a password we do not have (none is tried).
    encrypt = (b"<< /Filter /Standard /V 1 /R 2 /P -44 /O <" + b"3" * 64 + b"> /U <"
               + b"7" * 64 + b"> >>")
    trailer = b"/Encrypt 7 0 R /ID [<0123456789abcdef0123456789abcdef>" \
              b"<0123456789abcdef0123456789abcdef>] "
    data = text_pdf([TEXT_PAGE], trailer=trailer, extra=[b"null", encrypt])
    with pytest.raises(PdfParseError) as excinfo:
        parse_pdf(data)
    err = _err(excinfo)
    assert err.code == PDF_ENCRYPTED and "password" in err.message
    assert err.message.endswith("send it without a password")  # what the sender can do


def test_ocr_page_timeout(scan_pdf: bytes, real_ocr: None) -> None:  # noqa: ARG001
    with pytest.raises(PdfParseError) as excinfo:
        parse_pdf(scan_pdf, PdfLimits(page_timeout_seconds=0.001))
    err = _err(excinfo)
    assert err.code == PDF_TIMEOUT and err.location == "page 1"


def test_document_timeout() -> None:
    with pytest.raises(PdfParseError) as excinfo:
        parse_pdf(text_pdf([TEXT_PAGE] * 2), PdfLimits(timeout_seconds=1e-9))
    assert _err(excinfo).code == PDF_TIMEOUT


def test_ocr_unavailable(monkeypatch: pytest.MonkeyPatch, scan_pdf: bytes,
                         real_ocr: None) -> None:  # noqa: ARG001
    with pytest.raises(PdfParseError) as excinfo:
        parse_pdf(scan_pdf, PdfLimits(lang="xyz"))
    assert _err(excinfo).code == PDF_OCR_UNAVAILABLE and "xyz" in excinfo.value.message
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    monkeypatch.setattr(pdfmod, "_tesseract_ok", set())
    with pytest.raises(PdfParseError) as excinfo:
        parse_pdf(scan_pdf)
    assert _err(excinfo).code == PDF_OCR_UNAVAILABLE
    # a born-digital PDF needs no tesseract
    assert parse_pdf(text_pdf([TEXT_PAGE])).pages[0].source == TEXT_LAYER


def test_errors_hold_no_patient_data_and_pickle() -> None:
    import pickle

    err = PdfParseError(PDF_TIMEOUT, "OCR of the page killed", "page 2")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.code, copy.message, copy.location, str(copy)) == (
        PDF_TIMEOUT, "OCR of the page killed", "page 2", "OCR of the page killed")


def test_limits_validated() -> None:
    with pytest.raises(ValueError):
        PdfLimits(dpi=0)
    with pytest.raises(ValueError):
        PdfLimits(lang="fra; rm -rf /")
    with pytest.raises(ValueError):
        PdfLimits(timeout_seconds=0)
