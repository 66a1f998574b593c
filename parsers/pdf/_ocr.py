"""One scanned page: rasterised by pdfium, read by tesseract. Runs in the parent or in a worker.

Kept apart from ``__init__`` so that worker processes import only what they need (pypdfium2,
pytesseract, the model); the function takes the PDF bytes and a page index and rasterises its
own page, so the parent never holds more than the pages in flight.
"""

from __future__ import annotations

import os
import threading
import time

import pypdfium2 as pdfium
import pytesseract
from pytesseract import Output

from ..process_lifetime import die_with
from ._ocr_memo import keep, memo_file, recall
from .errors import PDF_CORRUPT, PDF_OCR_UNAVAILABLE, PDF_TIMEOUT, PdfParseError
from .model import OCR, Page, Word

# PDFium is not thread-safe: every call into it, in one process, goes under this lock.
PDFIUM_LOCK = threading.RLock()

# tesseract is built with OpenMP: left alone it spins a thread per core on every page, which
# on this 2-CPU machine took an A4 page at 300 dpi from 1.7 s to 13.5 s of wall time (12 s of
# CPU). One thread per tesseract; parallelism comes from pages (the pool). pytesseract passes
# os.environ to tesseract, so it is set here, unless the operator chose a value.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")


# Binarisation: tesseract's default is one Otsu threshold for the whole page; Sauvola's is
# local (tesseract >= 5), which copes with what scans of paper have and a single threshold
# does not: grey or yellowed paper, uneven lighting, a darker fold or edge, faint toner. On the
# bench's noisy scans (bench/bench_ocr_cer.py, 2 x 24 documents) it took the conclusions' CER
# from 0.71 % / 1.49 % to 0.49 % / 0.94 % and the full text's from 1.08 % / 0.75 % to
# 0.69 % / 0.59 %, for about 4 % more tesseract CPU time.
CONFIG = "-c thresholding_method=2"


def worker_init(owner_pid: int | None = None) -> None:
    """Pool worker start-up: tesseract single-threaded (the pool is the parallelism; OpenMP
    threads on top of it would oversubscribe the cores), and the worker ends when the pool's
    owner ``owner_pid`` ends (parsers/process_lifetime.py): a SIGKILLed owner leaves no OCR
    worker waiting forever for pages, nor, once they are gone, its forkserver."""
    os.environ["OMP_THREAD_LIMIT"] = "1"
    if owner_pid is not None:
        die_with(owner_pid)


def render_page(data: bytes, index: int, dpi: int):  # noqa: ANN201 (PIL.Image)
    """Page ``index`` (0-based) as a grayscale PIL image at ``dpi``, and its size in points."""
    with PDFIUM_LOCK:
        pdf = pdfium.PdfDocument(data)
        try:
            page = pdf[index]
            try:
                width, height = page.get_size()
                bitmap = page.render(scale=dpi / 72, grayscale=True)
                image = bitmap.to_pil().copy()  # own buffer: the bitmap is released below
                bitmap.close()
            finally:
                page.close()
        finally:
            pdf.close()
    return image, float(width), float(height)


def ocr_page(data: bytes, index: int, dpi: int, lang: str, page_timeout: float,
             deadline: float, psm: int = 3) -> Page:
    """Rasterise and OCR page ``index``; ``deadline`` is the document's (time.time() clock).

    tesseract is given min(page_timeout, time left to the document); pytesseract kills it when
    that runs out ('Tesseract process timeout') and we raise PDF_TIMEOUT for the page."""
    where = f"page {index + 1}"
    try:
        image, width, height = render_page(data, index, dpi)
    except pdfium.PdfiumError as exc:
        raise PdfParseError(PDF_CORRUPT, "pdfium could not render the page", where) from exc
    timeout = min(page_timeout, deadline - time.time())
    if timeout <= 0:  # pytesseract treats 0 as 'no timeout': never pass it
        raise PdfParseError(PDF_TIMEOUT, "document time limit exceeded before the page's OCR",
                            where)
    # pytesseract hands tesseract a temporary file in image.format (PNG when unset): PNG
    # compression of a 300-dpi page costs ~0.2 s, the uncompressed PGM ('PPM' for an 'L'
    # image) ~0.01 s, and leptonica reads it as fast. Same pixels, same OCR.
    image.format = "PPM"
    try:
        data_dict = _tesseract(image, lang, psm, timeout, timeout == page_timeout, where)
        page = page_from_tesseract(data_dict, index + 1, dpi, width, height)
        if page.confidence < REREAD_BELOW:
            page = _read_turned(image, page, lang, psm, dpi, (width, height), page_timeout,
                                deadline, where)
        if psm == 3 and _read_as_columns(page):
            page = _read_as_rows(image, page, lang, dpi, (width, height), page_timeout,
                                 deadline, where)
    finally:
        image.close()
    return page


def _tesseract(image, lang: str, psm: int, timeout: float, page_limit: bool,  # noqa: ANN001
               where: str) -> dict:
    """tesseract's words of ``image`` (image_to_data), its failures as PdfParseErrors; from
    the memo when one is kept (_ocr_memo: the test suite's, never the service's)."""
    config = f"--psm {psm} {CONFIG}"
    memo = memo_file(image, lang, config)
    reading = recall(memo)
    if reading is not None:
        return reading
    try:
        reading = pytesseract.image_to_data(image, lang=lang, config=config,
                                            output_type=Output.DICT, timeout=timeout)
        keep(memo, reading)
        return reading
    except RuntimeError as exc:
        if "timeout" in str(exc).lower():
            limit = "page" if page_limit else "document"
            raise PdfParseError(PDF_TIMEOUT, f"OCR of the page killed by the {limit} time limit "
                                f"({timeout:.3g} s)", where) from None
        raise
    except pytesseract.TesseractNotFoundError:
        raise PdfParseError(PDF_OCR_UNAVAILABLE, "tesseract is not installed", where) from None
    except pytesseract.TesseractError as exc:
        if "language" in str(exc).lower() or "traineddata" in str(exc).lower():
            raise PdfParseError(PDF_OCR_UNAVAILABLE, f"tesseract has no '{lang}' language data",
                                where) from None
        raise PdfParseError(PDF_CORRUPT, f"tesseract failed on the page image (status "
                            f"{exc.status})", where) from None


# A page scanned sideways or upside down (a sheet fed the wrong way, a landscape page) is read
# as a few scraps of low confidence: the report was quarantined, nothing found. When a page's
# mean confidence is under REREAD_BELOW, tesseract's orientation detection (OSD, its 'osd'
# data) says which way is up; when it says the page is turned (OSD_MIN_CONFIDENCE: its
# confidence is low on a short page, 1.7 for eight lines at 150 dpi), the page is turned
# upright and read again, and that reading kept only when it is surer by REREAD_GAIN points
# of mean confidence (boxes then in the turned page's frame). A faint page that is upright
# costs one OSD, and keeps its reading.
REREAD_BELOW = 60.0
OSD_MIN_CONFIDENCE = 1.0
REREAD_GAIN = 10.0


def _read_turned(image, page: Page, lang: str, psm: int, dpi: int,  # noqa: ANN001
                 size: tuple[float, float], page_timeout: float, deadline: float,
                 where: str) -> Page:
    """``page`` read again from ``image`` turned upright, when OSD says it is turned and the
    new reading is the surer one; else ``page``."""
    timeout = min(page_timeout, deadline - time.time())
    if timeout <= 1:
        return page  # no time left for a second reading: the first one stands
    try:
        osd = pytesseract.image_to_osd(image, config="--psm 0", output_type=Output.DICT,
                                       timeout=timeout)
        turn = int(osd.get("rotate", 0)) % 360
        sure = float(osd.get("orientation_conf", 0.0)) >= OSD_MIN_CONFIDENCE
    except (RuntimeError, pytesseract.TesseractError, ValueError, TypeError):
        return page  # no 'osd' data, too little text to tell, or out of time
    if not turn or not sure:
        return page
    timeout = min(page_timeout, deadline - time.time())
    if timeout <= 1:
        return page
    turned = image.rotate(-turn, expand=True)  # OSD's 'rotate' is clockwise
    turned.format = "PPM"
    try:
        data_dict = _tesseract(turned, lang, psm, timeout, timeout == page_timeout, where)
    finally:
        turned.close()
    width, height = size if turn == 180 else size[::-1]
    again = page_from_tesseract(data_dict, page.number, dpi, width, height)
    return again if again.confidence >= page.confidence + REREAD_GAIN else page


# A table (a lab's results: analysis | result | unit | range) is read by --psm 3 as column
# blocks: each column's cells a line of their own, side by side, never one row; and a column
# it takes for a picture is dropped whole (the results' own, on a scanned lab report: every
# value lost). A page whose lines sit TABLE_ABREAST or more abreast on TABLE_ROWS rows or
# more is read again by rows (--psm 4: one column of lines of variable sizes, each line
# across the page, as a text layer's), and that reading kept when it reads as much (letters
# and digits: at least TABLE_TEXT_KEPT of the first reading's, a range '(150 - 400)' may be
# one word or three) at a mean confidence at most TABLE_CONFIDENCE_LOSS lower. A report in
# running text (a header in two blocks side by side at most) is read once.
TABLE_ABREAST = 3
TABLE_ROWS = 3
TABLE_PSM = 4
TABLE_TEXT_KEPT = 0.95
TABLE_CONFIDENCE_LOSS = 5.0


def _read_as_columns(page: Page) -> bool:
    """Whether tesseract's lines on ``page`` sit TABLE_ABREAST abreast on TABLE_ROWS rows."""
    spans: dict[int, list[float]] = {}  # line: [top, bottom, x0, x1]
    for w in page.words:
        box = spans.setdefault(w.line, [w.bbox[1], w.bbox[3], w.bbox[0], w.bbox[2]])
        box[0], box[1] = min(box[0], w.bbox[1]), max(box[1], w.bbox[3])
        box[2], box[3] = min(box[2], w.bbox[0]), max(box[3], w.bbox[2])
    lines = list(spans.values())
    rows: set[float] = set()
    for top, bottom, x0, x1 in lines:
        mid = (top + bottom) / 2
        abreast = [o for o in lines if o[0] <= mid <= o[1] and (o[2] >= x1 or o[3] <= x0)]
        if len(abreast) + 1 >= TABLE_ABREAST and not any(abs(mid - r) < (bottom - top) / 2
                                                         for r in rows):
            rows.add(mid)
    return len(rows) >= TABLE_ROWS


def _letters(page: Page) -> int:
    return sum(c.isalnum() for w in page.words for c in w.text)


def _read_as_rows(image, page: Page, lang: str, dpi: int,  # noqa: ANN001
                  size: tuple[float, float], page_timeout: float, deadline: float,
                  where: str) -> Page:
    """``page`` read again by rows (TABLE_PSM), when that reading is the fuller one."""
    timeout = min(page_timeout, deadline - time.time())
    if timeout <= 1:
        return page  # no time left for a second reading: the first one stands
    data_dict = _tesseract(image, lang, TABLE_PSM, timeout, timeout == page_timeout, where)
    again = page_from_tesseract(data_dict, page.number, dpi, *size)
    if _letters(again) >= TABLE_TEXT_KEPT * _letters(page) \
            and again.confidence >= page.confidence - TABLE_CONFIDENCE_LOSS:
        return again
    return page


# A dust speck, a staple hole or a fleck of toner is read by tesseract as a 'word' of one or
# two characters ('.', 'S', '-', 'Le') with a box far smaller than the text around it and a
# low confidence; in running text it becomes a stray character (' S' after a conclusion).
# Such a 'word' is dropped when both hold: confidence under SPECK_CONFIDENCE, and a box
# shorter than SPECK_HEIGHT times the median height of the page's words (no letter or digit
# is that small; real punctuation is kept by its confidence: a dash is as flat as a speck but
# tesseract is sure of it). A mark that never stands alone between spaces in French text (a
# full stop, a comma, a quote: tesseract attaches real ones to their word) is a speck
# whatever its confidence, when it is that small.
SPECK_CONFIDENCE = 50.0
SPECK_HEIGHT = 0.4
LONE_MARKS = frozenset(".,'`\"‘’“”„·˙¸¨~_")


def _specks(d: dict) -> set[int]:
    """Indexes of the entries of ``d`` that are specks of dirt, not words (see above)."""
    heights = sorted(int(d["height"][i]) for i, t in enumerate(d["text"])
                     if (t or "").strip() and float(d["conf"][i]) >= SPECK_CONFIDENCE)
    if not heights:
        return set()
    limit = SPECK_HEIGHT * heights[len(heights) // 2]
    return {i for i, t in enumerate(d["text"])
            if (t or "").strip() and float(d["conf"][i]) >= 0 and int(d["height"][i]) < limit
            and (float(d["conf"][i]) < SPECK_CONFIDENCE or t.strip() in LONE_MARKS)}


# Typographic ligatures (U+FB00-FB06) that tesseract sometimes returns for a typeset 'fi' or
# 'fl': the letters they stand for, so that words are searchable ('conﬁrme' is 'confirme').
# 'œ' is a letter of French, not a ligature: kept.
LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl",
                           "ﬅ": "st", "ﬆ": "st"})


def page_from_tesseract(d: dict, number: int, dpi: int, width: float, height: float) -> Page:
    """tesseract's image_to_data dict -> Page: words with confidence (conf -1, empty entries
    and specks of dirt dropped, ligatures spelt out), boxes back in PDF points, lines numbered
    in tesseract's reading order (one line per (block_num, par_num, line_num))."""
    scale = 72.0 / dpi
    line_of: dict[tuple[int, int, int], int] = {}
    words: list[Word] = []
    lines: list[list[str]] = []
    specks = _specks(d)
    for i, raw in enumerate(d["text"]):
        text = (raw or "").strip()
        conf = float(d["conf"][i])
        if not text or conf < 0 or i in specks:
            continue
        text = text.translate(LIGATURES)
        key = (int(d["block_num"][i]), int(d["par_num"][i]), int(d["line_num"][i]))
        line = line_of.get(key)
        if line is None:
            line = line_of[key] = len(lines)
            lines.append([])
        lines[line].append(text)
        left, top = int(d["left"][i]), int(d["top"][i])
        right, bottom = left + int(d["width"][i]), top + int(d["height"][i])
        words.append(Word(text=text, confidence=conf,
                          bbox=(round(left * scale, 2), round(top * scale, 2),
                                round(right * scale, 2), round(bottom * scale, 2)),
                          line=line))
    confidence = round(sum(w.confidence for w in words) / len(words), 1) if words else 0.0
    return Page(number=number, source=OCR, text="\n".join(" ".join(ws) for ws in lines),
                words=words, confidence=confidence, width=width, height=height,
                styles_seen=False)
