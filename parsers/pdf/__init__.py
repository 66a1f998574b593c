"""PDF reports -> PdfDocument: the text layer when the page has one, OCR when it is scanned.

``parse_pdf(data, limits)`` reads a PDF from bytes, page by page:

- a page whose text layer (pdfplumber) holds at least ``min_text_chars`` letters or digits
  (and is not a page-sized image with a stamped line of text, see SCAN_COVERAGE, nor one
  whose glyphs too often give no text, see GARBLED_GLYPHS) is read from it: words with their
  boxes, grouped into lines by their top, confidence 100, source TEXT_LAYER;
- any other page (scanned, image-only, text layer unreadable) is rasterised by pdfium at
  ``dpi`` and read by tesseract (``lang``, ``--psm 3``, Sauvola binarisation): words with
  tesseract's confidence (specks of dirt dropped), boxes converted back to points, lines in
  tesseract's reading order, source OCR; a page whose lines come back as column blocks side
  by side (a table) is read again by rows (``--psm 4``, _ocr.py's TABLE_*).

A page that draws nothing at all (no glyph, image, path nor annotation: a duplex print's blank
back) is empty at once, never rasterised. Mixed documents are handled page by page. When
several pages need OCR they run in parallel in a process pool reused across documents
(module level, one per worker count, started with 'forkserver' so that it is safe in a
threaded service), at most ``processes`` pages in flight:
each worker rasterises its own page from the PDF bytes, so memory stays bounded whatever the
page count. One page to OCR is read inline (no pool at all).

Limits (PdfLimits) are checked before the work they protect: bytes before opening, page count
after opening, each page's raster size (points x dpi) before rasterising it, the document's
time limit between pages and while waiting for OCR, each page's OCR time through tesseract's
own timeout (min(page_timeout_seconds, time left to the document)).

Errors are PdfParseError (see errors.py) with stable codes; warnings are 'CODE: text' strings
in PdfDocument.warnings; neither ever holds report text or metadata.
"""

from __future__ import annotations

import bisect
import io
import math
import multiprocessing
import os
import re
import sys
import threading
import time
import unicodedata
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import pdfplumber
import pdfplumber.page
import pypdfium2 as pdfium
import pytesseract
from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect
from pdfminer.pdftypes import resolve1
from pdfminer.utils import decode_text

from ._embedded import embedded_files
from ._inflate import DEFAULT_MAX_INFLATED, InflateLimit, budget, install
from ._ocr import PDFIUM_LOCK, ocr_page, worker_init
from .errors import (
    PDF_ATTACHMENTS,
    PDF_CORRUPT,
    PDF_ENCRYPTED,
    PDF_NOT_PDF,
    PDF_OCR_LOW_CONFIDENCE,
    PDF_OCR_UNAVAILABLE,
    PDF_PAGE_EMPTY,
    PDF_PAGE_TOO_LARGE,
    PDF_TEXT_LAYER_GARBLED,
    PDF_TEXT_LAYER_UNREADABLE,
    PDF_TIMEOUT,
    PDF_TOO_LARGE,
    PDF_TOO_MANY_PAGES,
    PdfParseError,
)
from .model import OCR, TEXT_LAYER, EmbeddedFile, Page, PdfDocument, Word

__all__ = ["OCR", "TEXT_LAYER", "EmbeddedFile", "Page", "PdfDocument", "PdfLimits",
           "PdfParseError", "Word", "parse_pdf"]

install()  # pdfminer inflates within PdfLimits.max_inflated_bytes (see _inflate.py)

MiB = 1024 * 1024
# A3 portrait at 300 dpi is 3508 x 4961 px = 17.4 Mpx (8-bit grayscale: 17.4 MB, tesseract
# holds a few copies). 18 Mpx lets A3 through with a few points of slack (scanner margins,
# Letter/A3 rounding) and refuses anything bigger at 300 dpi (A2 is 35 Mpx).
DEFAULT_MAX_PAGE_PIXELS = 18_000_000


@dataclass(frozen=True)
class PdfLimits:
    max_bytes: int = 50 * MiB
    max_pages: int = 100
    dpi: int = 300  # rasterisation for OCR
    max_page_pixels: int = DEFAULT_MAX_PAGE_PIXELS  # per page to OCR, at dpi (bomb guard)
    timeout_seconds: float = 120.0  # whole document
    page_timeout_seconds: float = 60.0  # one page's OCR (tesseract killed past it)
    lang: str = "fra"  # tesseract language(s), 'fra' or 'fra+eng'
    min_text_chars: int = 20  # fewer letters/digits in the text layer: the page is OCR'd
    processes: int = 0  # OCR worker processes; 0 = the CPUs available (os.cpu_count())
    low_confidence: float = 60.0  # OCR'd page mean confidence under it: a warning
    # what pdfminer may inflate (FlateDecode) for the whole document (bomb guard, _inflate.py)
    max_inflated_bytes: int = DEFAULT_MAX_INFLATED

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pages", "dpi", "max_page_pixels", "max_inflated_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"PdfLimits.{name} must be positive")
        if self.timeout_seconds <= 0 or self.page_timeout_seconds <= 0:
            raise ValueError("PdfLimits time limits must be positive")
        if self.processes < 0 or self.min_text_chars < 0:
            raise ValueError("PdfLimits.processes and min_text_chars must be >= 0")
        if not re.fullmatch(r"[A-Za-z_]+(\+[A-Za-z_]+)*", self.lang):
            raise ValueError("PdfLimits.lang must be tesseract language names joined by '+'")


def parse_pdf(data: bytes, limits: PdfLimits | None = None) -> PdfDocument:
    """Read a PDF report from its bytes; raises PdfParseError (stable ``code``)."""
    limits = limits or PdfLimits()
    started = time.monotonic()
    deadline = started + limits.timeout_seconds
    wall_deadline = time.time() + limits.timeout_seconds  # for worker processes
    data = bytes(data)
    if len(data) > limits.max_bytes:
        raise PdfParseError(PDF_TOO_LARGE, f"PDF of {len(data)} bytes, over the limit of "
                            f"{limits.max_bytes} bytes")
    if b"%PDF-" not in data[:1024]:
        raise PdfParseError(PDF_NOT_PDF, "no '%PDF-' header in the first 1024 bytes")

    sizes, metadata, attached = _open_with_pdfium(data, limits)
    warnings: list[str] = []
    pages: list[Page | None] = [None] * len(sizes)
    to_ocr: list[int] = []
    with budget(limits.max_inflated_bytes), _open_with_pdfminer(data, limits) as plumber:
        try:
            embedded, others = embedded_files(plumber.pdf.doc, limits.max_bytes)
        except InflateLimit:
            raise _inflate_error(limits, "embedded files") from None
        unread = max(attached - len(embedded), others)
        if unread:
            warnings.append(f"{PDF_ATTACHMENTS}: the PDF carries {unread} embedded file(s) "
                            "(attachments) that are no CDA document, not read: only its "
                            "pages are; if one is the report's structured copy (an HPRIM or "
                            "HL7 file), ask the sender to send that file itself")
        count = len(plumber.pages)
        for index in range(len(sizes)):
            _check_deadline(deadline, limits, index)
            if index >= count:  # pdfminer found fewer pages than pdfium (damaged page tree)
                to_ocr.append(index)
                continue
            ppage = plumber.pages[index]
            try:
                page = _text_layer_page(ppage, index + 1, limits.min_text_chars)
                if page is None and _draws_nothing(ppage):
                    page = Page(number=index + 1, source=TEXT_LAYER, text="", words=[],
                                width=float(ppage.width), height=float(ppage.height))
            except InflateLimit:
                raise _inflate_error(limits, f"page {index + 1}") from None
            except _GarbledTextLayer as garbled:
                warnings.append(f"{PDF_TEXT_LAYER_GARBLED}: page {index + 1} text layer gives "
                                f"no text for {garbled.unreadable} of its {garbled.glyphs} "
                                "glyphs (a font without a Unicode mapping, or mapped to "
                                "private-use codes), page OCR'd")
                page = None
            except Exception as exc:  # noqa: BLE001 (pdfminer raises anything on a broken stream)
                if isinstance(exc.__cause__ or exc.__context__, InflateLimit):
                    raise _inflate_error(limits, f"page {index + 1}") from None
                warnings.append(f"{PDF_TEXT_LAYER_UNREADABLE}: page {index + 1} text layer "
                                "could not be read, page OCR'd")
                page = None
            finally:
                ppage.close()
            if page is None:
                to_ocr.append(index)
            else:
                pages[index] = page

    for index in to_ocr:  # bomb guard, before anything is rasterised
        width, height = sizes[index]
        pixels = math.ceil(width * limits.dpi / 72) * math.ceil(height * limits.dpi / 72)
        if pixels > limits.max_page_pixels:
            raise PdfParseError(PDF_PAGE_TOO_LARGE, f"page of {width:.0f} x {height:.0f} pt "
                                f"would be {pixels} px at {limits.dpi} dpi, over the limit of "
                                f"{limits.max_page_pixels} px", f"page {index + 1}")
    if to_ocr:
        _require_tesseract(limits.lang)
        for page in _ocr_pages(data, to_ocr, limits, deadline, wall_deadline):
            pages[page.number - 1] = page

    done = [p for p in pages if p is not None]
    for page in done:
        if not page.words:
            warnings.append(f"{PDF_PAGE_EMPTY}: page {page.number} has no text")
        elif page.source == OCR and page.confidence < limits.low_confidence:
            warnings.append(f"{PDF_OCR_LOW_CONFIDENCE}: page {page.number} mean confidence "
                            f"{page.confidence:.0f}")
    return PdfDocument(pages=done, metadata=metadata, warnings=warnings, embedded=embedded)


# -- opening ----------------------------------------------------------------------------------

def _open_with_pdfium(data: bytes, limits: PdfLimits) -> tuple[list[tuple[float, float]],
                                                                 dict[str, str], int]:
    """Page sizes (points, as displayed), the info dictionary and how many files are
    embedded (attachments: read or said, so that nothing sent goes unseen); refuses
    encrypted, broken and over-long documents."""
    with PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            if getattr(exc, "err_code", None) == pdfium.raw.FPDF_ERR_PASSWORD:
                raise PdfParseError(PDF_ENCRYPTED, "the PDF is password-protected: it cannot be "
                                    "read here; send it without a password") from None
            if getattr(exc, "err_code", None) == pdfium.raw.FPDF_ERR_SECURITY:
                raise PdfParseError(PDF_ENCRYPTED, "the PDF uses an unsupported security "
                                    "handler") from None
            code = getattr(exc, "err_code", None)
            raise PdfParseError(PDF_CORRUPT, "the PDF cannot be opened: "
                                f"{_PDFIUM_ERRORS.get(code, 'an unknown error')} (pdfium "
                                f"error {code if code is not None else '?'}); send the "
                                "complete, unaltered file again") from None
        try:
            count = len(pdf)
            if count > limits.max_pages:
                raise PdfParseError(PDF_TOO_MANY_PAGES, f"{count} pages, over the limit of "
                                    f"{limits.max_pages}")
            if count == 0:
                raise PdfParseError(PDF_CORRUPT, "the PDF has no pages")
            sizes = []
            for index in range(count):
                try:
                    sizes.append(tuple(float(v) for v in pdf.get_page_size(index)))
                except pdfium.PdfiumError:
                    raise PdfParseError(PDF_CORRUPT, f"page {index + 1} of {count} cannot "
                                        "be read (damaged page object)",
                                        f"page {index + 1}") from None
            metadata = _metadata(pdf)
            try:
                attached = max(0, pdf.count_attachments())
            except Exception:  # noqa: BLE001 (a damaged name tree: no attachment said)
                attached = 0
        finally:
            pdf.close()
    return sizes, metadata, attached


# pdfium's FPDF_ERR_* when a document does not open (password and security: PDF_ENCRYPTED)
_PDFIUM_ERRORS = {
    pdfium.raw.FPDF_ERR_UNKNOWN: "an unknown error",
    pdfium.raw.FPDF_ERR_FILE: "the file cannot be read",
    pdfium.raw.FPDF_ERR_FORMAT: "it starts as a PDF but is damaged or truncated (its "
                                "cross-reference table or objects cannot be read)",
    pdfium.raw.FPDF_ERR_PAGE: "its pages cannot be found",
}

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _metadata(pdf: pdfium.PdfDocument) -> dict[str, str]:
    """The document info dictionary as strings (pdfium decodes PDFDocEncoding and UTF-16);
    empty values dropped, control characters removed, values capped at 1000 characters."""
    try:
        raw = pdf.get_metadata_dict(skip_empty=True)
    except Exception:  # noqa: BLE001 (metadata never fails a document)
        return {}
    out = {}
    for key, value in raw.items():
        if isinstance(value, str):
            value = _CONTROL.sub("", value).strip()[:1000]
            if value:
                out[str(key)] = value
    return out


def _inflate_error(limits: PdfLimits, location: str = "") -> PdfParseError:
    return PdfParseError(PDF_TOO_LARGE, "the PDF's compressed streams inflate to more than "
                         f"{limits.max_inflated_bytes} bytes", location)


class _Plumber:
    """pdfplumber.open as a context manager whose failures are PdfParseErrors."""

    def __init__(self, data: bytes, limits: PdfLimits) -> None:
        try:
            self.pdf = pdfplumber.open(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 (PdfminerException wraps anything)
            cause = exc.args[0] if exc.args else exc
            if isinstance(cause, InflateLimit) or isinstance(exc, InflateLimit):
                raise _inflate_error(limits) from None
            if isinstance(cause, (PDFPasswordIncorrect, PDFEncryptionError)) or isinstance(
                    exc, (PDFPasswordIncorrect, PDFEncryptionError)):
                raise PdfParseError(PDF_ENCRYPTED, "the PDF is password-protected: it cannot be "
                                    "read here; send it without a password") from None
            raise PdfParseError(PDF_CORRUPT, "the PDF's structure cannot be read, the file "
                                "is damaged or truncated (pdfminer: "
                                f"{type(cause).__name__}); send the complete file again"
                                ) from None
        try:
            self.pages = self.pdf.pages
        except Exception as exc:  # noqa: BLE001
            self.pdf.close()
            if isinstance(exc, InflateLimit) or isinstance(exc.__cause__, InflateLimit):
                raise _inflate_error(limits) from None
            raise PdfParseError(PDF_CORRUPT, "the PDF's page tree cannot be read, the file "
                                "is damaged or truncated (pdfminer: "
                                f"{type(exc).__name__}); send the complete file again"
                                ) from None

    def __enter__(self) -> _Plumber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pdf.close()


def _open_with_pdfminer(data: bytes, limits: PdfLimits) -> _Plumber:
    return _Plumber(data, limits)


# -- text layer -------------------------------------------------------------------------------

_CID = re.compile(r"\(cid:\d+\)")  # glyphs without a Unicode mapping: not text
# Glyphs a text layer gives no readable text for: a code with no Unicode mapping ('(cid:12)'),
# a private-use code point (a font whose ToUnicode maps its glyphs there), U+FFFD
_NO_TEXT = re.compile(r"\(cid:\d+\)|[\ue000-\uf8ff\ufffd\U000f0000-\U0010ffff]")
# A page whose words hold at least GARBLED_GLYPHS such glyphs, and at least GARBLED_SHARE of
# its glyphs, is OCR'd: its readable part (a header in a font that maps) reached
# min_text_chars and the rest (the title, the conclusion in a font that does not) was filed
# as private-use characters or dropped. A glyph alone as a word (a Symbol or Wingdings
# bullet, U+F0B7 in Word's PDFs) is no such glyph: bullets are no text to lose.
GARBLED_GLYPHS = 8
GARBLED_SHARE = 0.05


class _GarbledTextLayer(Exception):
    """A text layer too many of whose glyphs read as no text (see GARBLED_GLYPHS)."""

    def __init__(self, unreadable: int, glyphs: int) -> None:
        super().__init__(unreadable, glyphs)
        self.unreadable = unreadable
        self.glyphs = glyphs


def _unreadable_glyphs(chars: Iterable[dict]) -> tuple[int, int]:
    """(glyphs giving no text, glyphs) of one word; a word of one glyph gives (0, 1)."""
    texts = [str(c.get("text", "")) for c in chars]
    if len(texts) < 2:
        return 0, len(texts)
    return sum(bool(_NO_TEXT.search(t)) for t in texts), len(texts)
# A page mostly covered by images (>= SCAN_COVERAGE of its area) with a little text
# (< STAMP_CHARS letters/digits: a fax header, a scanner's banner, a page number) is a scan
# whose text is in the image: OCR'd. Searchable scans (an OCR text layer over the image)
# carry far more text and keep their text layer.
SCAN_COVERAGE = 0.5
STAMP_CHARS = 200


# Text render mode 3 (neither filled nor stroked: invisible), set in the page's content: what
# scanners and OCR tools (tesseract, ABBYY, Acrobat) lay over the page image of a searchable
# scan. That text layer is read, however short (a short report is no fax header), unless it
# is garbled.
_INVISIBLE_MODE = re.compile(rb"(?<![0-9.])3\s+Tr\b")
_VOWELS = frozenset("aeiouyàâäéèêëîïôöûüùÿœæ")


def _invisible_text(ppage) -> bool:  # noqa: ANN001
    """Whether the page's content sets text render mode 3 (invisible text)."""
    try:
        contents = resolve1(ppage.page_obj.attrs.get("Contents"))
        streams = [resolve1(s) for s in (contents if isinstance(contents, list)
                                         else [contents])]
        return any(_INVISIBLE_MODE.search(s.get_data()) for s in streams
                   if hasattr(s, "get_data"))
    except InflateLimit:
        raise
    except Exception:  # noqa: BLE001 (a broken stream: taken as no OCR layer)
        return False


def _garbled(texts: list[str]) -> bool:
    """Whether a scanner's OCR text layer is nonsense rather than text: under 60 % of its
    characters letters or digits ('~ï¿½ |\\l;'), or under half of its words of three letters
    or more with a vowel in them ('Xrtpq Mzzkl')."""
    chars = sum(len(t) for t in texts)
    alnum = sum(c.isalnum() for t in texts for c in t)
    if not chars or alnum < 0.6 * chars:
        return True
    wordy = [t.lower() for t in texts if sum(c.isalpha() for c in t) >= 3]
    voweled = sum(any(c in _VOWELS for c in t) for t in wordy)
    return bool(wordy) and voweled < 0.5 * len(wordy)


# What a page may draw that OCR could read: glyphs, images (inline ones too), paths (text
# converted to outlines is curves); annotations (a stamp's appearance) are rendered as well.
_DRAWN = ("char", "image", "curve", "line", "rect")


def _draws_nothing(ppage) -> bool:  # noqa: ANN001
    """Whether a page draws nothing at all: no glyph, image, path nor annotation (the blank
    back of a duplex print, a separator page). It is empty without OCR: rasterising and
    reading it took seconds a page (a batch of blank backs reached the time limit) and needed
    tesseract for nothing. A page drawing anything (a white rectangle included) is OCR'd."""
    try:
        objects = ppage.objects
        annots = ppage.annots
    except Exception:  # noqa: BLE001 (a damaged page: OCR decides)
        return False
    return not annots and not any(objects.get(kind) for kind in _DRAWN)


def _image_coverage(ppage) -> float:  # noqa: ANN001
    """Share of the page's area under its largest image (clipped to the page)."""
    width, height = float(ppage.width), float(ppage.height)
    best = 0.0
    for image in ppage.images:
        x0, x1 = max(0.0, float(image["x0"])), min(width, float(image["x1"]))
        top, bottom = max(0.0, float(image["top"])), min(height, float(image["bottom"]))
        best = max(best, max(0.0, x1 - x0) * max(0.0, bottom - top))
    return best / (width * height) if width and height else 0.0


def _text_direction(ppage) -> int:  # noqa: ANN001
    """The direction most of the page's characters run in, in degrees counter-clockwise as
    displayed (0, 90, 180, 270): 0 for text read left to right."""
    votes: dict[int, int] = {}
    for char in ppage.chars:
        angle = _char_angle(char)
        if angle is not None:
            votes[angle] = votes.get(angle, 0) + 1
    if not votes:
        return 0
    best = max(votes, key=votes.__getitem__)
    return best if votes[best] * 2 > sum(votes.values()) else 0


def _char_angle(char: dict) -> int | None:
    """The direction a character runs in (0, 90, 180, 270 degrees counter-clockwise, to the
    nearest quarter turn), None when its matrix says none."""
    a, b = float(char["matrix"][0]), float(char["matrix"][1])
    if not a and not b:
        return None
    return round(math.degrees(math.atan2(b, a)) / 90) % 4 * 90


# pdfplumber's reading of text that runs in another direction than the page's (angle: line
# and character directions, the '_rotated' ones for characters not upright)
_TURNED_READING = {90: {"line_dir_rotated": "ltr", "char_dir_rotated": "btt"},
                   270: {"line_dir_rotated": "rtl", "char_dir_rotated": "ttb"},
                   180: {"line_dir": "btt", "char_dir": "rtl"}}


def _aside_lines(ppage) -> list[list[tuple]]:  # noqa: ANN001
    """The lines of text running across the page's own (a margin note printed up the side:
    'Document imprimé le ... - Page 1/1', a reference, a signature stamp), each read in its
    own direction. Read with the page's lines, their letters became one-letter or reversed
    words wedged into every line they crossed ('tnemucoD', a date in the conclusion, 'Dr X'
    no longer starting its line); they come after the page's lines now, whole."""
    out: list[list[tuple]] = []
    for angle, reading in _TURNED_READING.items():
        chars = [c for c in ppage.chars if _char_angle(c) == angle]
        if not chars:
            continue
        sub = ppage.filter(lambda o, a=angle: o.get("object_type") != "char"
                           or _char_angle(o) == a)
        along = "top" if angle == 180 else "x0" if angle == 90 else "x1"
        lines: dict[int, list[tuple]] = {}
        for w in sub.extract_words(keep_blank_chars=False, use_text_flow=False, **reading):
            text = unicodedata.normalize("NFC", _CID.sub("", w["text"])).strip()
            if text:
                key = round(float(w[along]) / 2)  # one line: the same place across it
                lines.setdefault(key, []).append(
                    (float(w["top"]), float(w["bottom"]), float(w["x0"]), float(w["x1"]), text))
        out.extend(lines[key] for key in sorted(lines, reverse=angle != 90))
    return out


def _upright(ppage):  # noqa: ANN001, ANN202
    """The page turned so that most of its text runs left to right. A page whose /Rotate
    shows its text sideways or upside down (rotated in a viewer, a scanner's setting), and
    text drawn turned on a page without /Rotate (a landscape report printed on portrait
    paper), were read as a column of one-letter words: pdfplumber's words follow the page as
    displayed. Turning it is what a reader does with the paper."""
    turn = _text_direction(ppage)
    if not turn:
        return ppage
    obj = ppage.page_obj
    rotation = (ppage.rotation + turn) % 360
    obj.attrs = {**obj.attrs, "Rotate": rotation}
    obj.rotate = rotation
    return pdfplumber.page.Page(ppage.pdf, obj, page_number=ppage.page_number,
                                initial_doctop=ppage.initial_doctop)


def _visible(ppage):  # noqa: ANN001, ANN202
    """The page without the text outside its crop box: what a viewer or a printer shows.
    A page cut out of a larger one (one report of a sheet of two, a label cropped off) kept
    the hidden part's text, another patient's name in it."""
    x0, top, x1, bottom = (float(v) for v in ppage.cropbox)
    if (x0, top, x1, bottom) == tuple(float(v) for v in ppage.mediabox):
        return ppage

    def shown(obj: dict) -> bool:
        if obj.get("object_type") != "char":
            return True
        x, y = (obj["x0"] + obj["x1"]) / 2, (obj["top"] + obj["bottom"]) / 2
        return x0 <= x <= x1 and top <= y <= bottom
    return ppage.filter(shown)


_FIELD_HIDDEN = 2  # annotation flag: not shown, not printed
_FIELD_LINE = 12.0  # points between the lines of a multi-line field value


def _field_value(data: dict) -> str:
    """A text or choice field's value (/V, inherited from its parent field), as text."""
    kind = value = None
    node, depth = data, 0
    while isinstance(node, dict) and depth < 10:
        kind = kind or node.get("FT")
        value = value if value is not None else node.get("V")
        node, depth = node.get("Parent"), depth + 1
    if getattr(kind, "name", kind) not in ("Tx", "Ch"):
        return ""  # buttons (check boxes: /Yes, /Off) and signatures say no text
    if isinstance(value, list):  # several choices
        value = " ".join(decode_text(v) for v in value if isinstance(v, bytes))
    if isinstance(value, bytes):
        value = decode_text(value)
    return value if isinstance(value, str) else ""


def _form_field_words(ppage, words: list[tuple]) -> list[tuple]:  # noqa: ANN001
    """The values typed in the page's form fields (AcroForm widgets), as words where the
    field shows them: a filled-in form's content (the patient, the conclusion) is in its
    fields' values, drawn by viewers from the widgets, never in the page's own text, and
    was not read at all. A field whose box already holds text of the page (a form
    flattened but its widgets kept) is not read twice."""
    out: list[tuple] = []
    try:
        annots = ppage.annots
    except Exception:  # noqa: BLE001 (a damaged annotation array: the page's text alone)
        return out
    for annot in annots:
        data = annot.get("data") or {}
        if getattr(data.get("Subtype"), "name", None) != "Widget" \
                or int(data.get("F") or 0) & _FIELD_HIDDEN:
            continue
        value = unicodedata.normalize("NFC", _field_value(data))
        x0, top, x1, bottom = (float(annot[k]) for k in ("x0", "top", "x1", "bottom"))
        if not value.strip() or any(x0 <= (w[2] + w[3]) / 2 <= x1
                                    and top <= (w[0] + w[1]) / 2 <= bottom for w in words):
            continue
        rows = [r.split() for r in re.split(r"\r\n|\r|\n", value) if r.split()]
        height = min(10.0, bottom - top) if len(rows) == 1 else 10.0
        row_top = (top + bottom - height) / 2 if len(rows) == 1 else top + 1
        for row in rows:
            x = x0 + 2
            for text in row:
                width = 5.5 * len(text)
                out.append((row_top, row_top + height, x, x + width, text))
                x += width + 3
            row_top += _FIELD_LINE
    return out


# The font names of bold faces: 'Helvetica-Bold', 'ABCDEF+Arial-BoldMT', 'Arial,Bold',
# 'Calibri-Bold', 'Roboto-Black', 'OpenSans-ExtraBold', 'Segoe UI Semibold'
_BOLD_FONT = re.compile(r"(?i)bold|black|heavy")


def _bold(chars: Iterable[dict]) -> bool:
    """Whether every letter or digit of a word is in a bold face."""
    marks = [c for c in chars if str(c.get("text", "")).isalnum()]
    return bool(marks) and all(_BOLD_FONT.search(str(c.get("fontname", ""))) for c in marks)


def _grouped(words: list[tuple]) -> list[list[tuple]]:
    """(top, bottom, x0, x1, text) words as lines: sorted by top, a word joining the current
    line when its top is within max(1 pt, 40 % of the line's first word height) of that
    word's top; each line left to right."""
    words = sorted(words, key=lambda w: (w[0], w[2]))
    lines: list[list[tuple]] = []
    line_top = line_tol = 0.0
    for w in words:
        if not lines or w[0] - line_top > line_tol:
            lines.append([])
            line_top, line_tol = w[0], max(1.0, 0.4 * (w[1] - w[0]))
        lines[-1].append(w)
    for line in lines:
        line.sort(key=lambda w: w[2])
    return lines


# A letterhead's sidebar: a narrow column down the left of the page (the centre's
# radiologists, 'Anciens internes des Hôpitaux', its phone numbers, its modalities) in a
# smaller type beside the report. Grouped with the report's lines by their tops, its lines
# were wedged into the report's ('Dr Luc FABRE Pas d'épanchement', 'Radiologues IRM DU
# GENOU'): the conclusion cut at a sidebar's 'Dr', a sidebar name taken for the signer. A
# sidebar is read after the page's lines when, over a run of the page's height that no word
# crosses, the words left of a gutter at least SIDEBAR_GUTTER wide (its left edge within
# SIDEBAR_WIDTH of the page's width) stand on SIDEBAR_LINES lines or more, as do the words
# right of it beside them, and at least SIDEBAR_APART of the lines of each column stand
# between two consecutive lines of the other (their own leading: apart from the other
# column's baselines by more than SIDEBAR_ROW, a line's bottom being its baseline's place
# whatever the type's size). Cells and labels printed beside their values (a result table,
# 'Nom :   DURAND') share their rows' baselines, as do a sidebar and a report printed with
# one leading and one type size (told apart by nothing): never split; nor a form's labels
# down its left, not one block in one leading (_one_leading: SIDEBAR_STEP, SIDEBAR_REGULAR).
# A sidebar printed on the report's own baselines (its leading, or twice it) is told apart by
# its type: a block in one leading, SIDEBAR_SMALLER of the report's type size or smaller, no
# line of it a label ending in ':' (_smaller_column).
SIDEBAR_GUTTER = 12.0
SIDEBAR_WIDTH = 0.35
SIDEBAR_LINES = 4
SIDEBAR_APART = 0.5
SIDEBAR_ROW = 1.0
SIDEBAR_PITCH = 1.5
SIDEBAR_STEP = 0.25
SIDEBAR_REGULAR = 2 / 3
SIDEBAR_SMALLER = 0.9


def _sidebar(words: list[tuple], width: float) -> set[int]:
    """The ids of the (top, bottom, x0, x1, text) words of the page's left sidebar (see
    SIDEBAR_*), empty when it has none."""
    best: set[int] = set()
    edges: dict[int, float] = {}  # a gutter starts where a word ends: the last in 4 pt
    for w in words:
        if 0.08 * width <= w[3] <= SIDEBAR_WIDTH * width:
            edges[int(w[3] // 4)] = max(edges.get(int(w[3] // 4), 0.0), w[3])
    tried = 0
    for gutter in sorted(edges.values()):
        left = [w for w in words if w[3] <= gutter]
        if len(left) < SIDEBAR_LINES or len(left) <= len(best) or len(left) == tried:
            continue
        tried = len(left)  # a farther gutter leaving the same words left: the same columns
        crossing = sorted(w[0] for w in words if w[3] > gutter and w[2] < gutter + SIDEBAR_GUTTER)
        runs: dict[int, list[tuple]] = {}
        for w in words:
            if w[3] <= gutter or w[2] >= gutter + SIDEBAR_GUTTER:
                runs.setdefault(bisect.bisect_right(crossing, w[0]), []).append(w)
        for run in runs.values():
            side = [w for w in run if w[3] <= gutter]
            others = [w for w in run if w[3] > gutter]
            if len(side) > len(best) and min(len(side), len(others)) >= SIDEBAR_LINES \
                    and ((_off_rows(side, others) and _a_column_beside(side, others))
                         or _smaller_column(side, others)):
                best = {id(w) for w in side}
    return best


def _smaller_column(left: list[tuple], right: list[tuple]) -> bool:
    """Whether ``left`` (words) is a sidebar printed on the baselines of the report beside it
    (``right``): SIDEBAR_LINES lines or more beside the report's, one block in one leading,
    its median type size (a word's height) SIDEBAR_SMALLER of the report's or smaller, no
    line of it ending in ':' and the lines beside it no column of values (half of them or
    more starting with a number). The labels of a form end in ':' ('Nom :'), the names of a
    result table stand before their values, whatever their type: never taken for a sidebar
    by this."""
    left_lines, right_lines = _grouped(left), _grouped(right)
    if not _one_leading(left_lines) or any(line[-1][4].endswith(":") for line in left_lines):
        return False
    if sum(bool(_VALUE.match(line[0][4])) for line in right_lines) * 2 >= len(right_lines):
        return False
    beside, _ = _interleaved(left_lines, right_lines)
    if beside < SIDEBAR_LINES:
        return False
    return _median_size(left) <= SIDEBAR_SMALLER * _median_size(right)


_VALUE = re.compile(r"[<>≤≥]?\s*[-+]?[0-9]")  # a result's value: '141', '<0,5', '> 90'


def _median_size(words: list[tuple]) -> float:
    """The median height of (top, bottom, ...) words: their type size, in points."""
    sizes = sorted(w[1] - w[0] for w in words)
    return sizes[len(sizes) // 2]


def _off_rows(left: list[tuple], right: list[tuple]) -> bool:
    """A quick test before _a_column_beside: whether a quarter of the ``left`` words or more
    stand on no baseline of a ``right`` word (a table's cells all share their row's)."""
    bases = sorted(w[1] for w in right)
    off = 0
    for w in left:
        at = bisect.bisect_left(bases, w[1] - SIDEBAR_ROW)
        off += at == len(bases) or bases[at] > w[1] + SIDEBAR_ROW
    return off * 4 >= len(left)


def _a_column_beside(left: list[tuple], right: list[tuple]) -> bool:
    """Whether ``left`` and ``right`` (words) are columns of their own, each in its own
    leading: of the lines of each beside the other's (SIDEBAR_LINES or more), SIDEBAR_APART
    stand between two consecutive lines of the other."""
    left_lines, right_lines = _grouped(left), _grouped(right)
    if not _one_leading(left_lines):
        return False
    for lines, others in ((left_lines, right_lines), (right_lines, left_lines)):
        beside, apart = _interleaved(lines, others)
        if beside < SIDEBAR_LINES or apart < SIDEBAR_APART * beside:
            return False
    return True


def _one_leading(lines: list[list[tuple]]) -> bool:
    """Whether ``lines`` are one block of text in one leading, as a sidebar is (a blank line
    between its groups at most): SIDEBAR_REGULAR of the steps from a line's baseline to the
    next within SIDEBAR_STEP of their median. A form's labels down its left (a heading,
    'Patient', 'Nom de naissance', a date) stand as their rows fall: irregular."""
    bases = [line[0][1] for line in lines]
    steps = sorted(b - a for a, b in zip(bases, bases[1:], strict=False))
    if not steps:
        return False
    usual = steps[len(steps) // 2]
    regular = sum(abs(step - usual) <= SIDEBAR_STEP * usual for step in steps)
    return regular >= SIDEBAR_REGULAR * len(steps)


def _interleaved(lines: list[list[tuple]], others: list[list[tuple]]) -> tuple[int, int]:
    """(lines beside ``others``: their baselines within the others' first and last, those
    of them between two consecutive lines of ``others``: on none of their baselines, the
    other column's lines around them no further apart than SIDEBAR_PITCH times its usual
    leading). A label alone on its row of a table (a name printed on two rows) is between
    rows a row apart from it each side, two leadings: not between consecutive lines."""
    bases = sorted(line[0][1] for line in others)
    steps = sorted(b - a for a, b in zip(bases, bases[1:], strict=False) if b - a > SIDEBAR_ROW)
    if not steps:
        return 0, 0
    pitch = steps[len(steps) // 2]
    beside = apart = 0
    for line in lines:
        base = line[0][1]
        if not bases[0] - SIDEBAR_ROW <= base <= bases[-1] + SIDEBAR_ROW:
            continue
        beside += 1
        at = bisect.bisect_left(bases, base)
        above, below = bases[at - 1] if at else None, bases[at] if at < len(bases) else None
        if above is not None and below is not None and base - above > SIDEBAR_ROW \
                and below - base > SIDEBAR_ROW and below - above <= SIDEBAR_PITCH * pitch:
            apart += 1
    return beside, apart


def _text_layer_page(ppage, number: int, min_text_chars: int) -> Page | None:  # noqa: ANN001
    """The page from its text layer, or None when it has fewer than ``min_text_chars``
    letters/digits (scanned page, or a text layer of unmapped glyphs)."""
    ppage = _visible(_upright(ppage))
    aside = _aside_lines(ppage)
    main = ppage.filter(lambda o: o.get("object_type") != "char" or _char_angle(o) in (0, None)) \
        if aside else ppage
    words = []
    bold: set[tuple[float, float, float, float]] = set()
    unreadable = glyphs = 0
    for w in main.extract_words(keep_blank_chars=False, use_text_flow=False, return_chars=True):
        lost, count = _unreadable_glyphs(w.get("chars", ()))
        unreadable += lost
        glyphs += count
        # NFC: producers that map a glyph to a letter plus a combining accent ('e' U+0301:
        # macOS Quartz, some LaTeX and report engines) give the same text as precomposed
        # 'é' (canonical equivalence): what a reader sees, and what the labels are matched on
        text = unicodedata.normalize("NFC", _CID.sub("", w["text"])).strip()
        if text:
            box = (float(w["top"]), float(w["bottom"]), float(w["x0"]), float(w["x1"]))
            words.append((*box, text))
            if _bold(w.get("chars", ())):
                bold.add(box)
    words.extend(_form_field_words(ppage, words))
    meaningful = sum(ch.isalnum() for *_, text in words + [w for line in aside for w in line]
                     for ch in text)
    if meaningful < min_text_chars:
        return None
    if unreadable >= GARBLED_GLYPHS and unreadable >= GARBLED_SHARE * glyphs:
        raise _GarbledTextLayer(unreadable, glyphs)
    scan = _image_coverage(ppage) >= SCAN_COVERAGE
    ocr_layer = scan and _invisible_text(ppage)  # a searchable scan: the scanner's own OCR
    if ocr_layer and _garbled([w[4] for w in words]):
        return None  # the scanner's OCR read nonsense: read the image again
    if meaningful < STAMP_CHARS and scan and not ocr_layer:
        return None  # a scan with a stamped line of text (fax header, scanner banner)
    side = _sidebar(words, float(ppage.width))
    lines = _grouped([w for w in words if id(w) not in side])
    lines.extend(_grouped([w for w in words if id(w) in side]))  # the sidebar, after the page
    lines.extend(aside)  # already in their own reading order
    out: list[Word] = []
    texts = []
    for n, line in enumerate(lines):
        texts.append(" ".join(w[4] for w in line))
        out.extend(Word(text=w[4], confidence=100.0,
                        bbox=(round(w[2], 2), round(w[0], 2), round(w[3], 2), round(w[1], 2)),
                        line=n, bold=tuple(w[:4]) in bold) for w in line)
    return Page(number=number, source=TEXT_LAYER, text="\n".join(texts), words=out,
                confidence=100.0, width=float(ppage.width), height=float(ppage.height),
                styles_seen=not ocr_layer)


# -- OCR --------------------------------------------------------------------------------------

_tesseract_ok: set[str] = set()


def _require_tesseract(lang: str) -> None:
    """PDF_OCR_UNAVAILABLE unless tesseract runs and has every language of ``lang``
    (successes cached: installing tesseract later needs no restart)."""
    if lang in _tesseract_ok:
        return
    try:
        available = set(pytesseract.get_languages(config=""))
    except pytesseract.TesseractNotFoundError:
        raise PdfParseError(PDF_OCR_UNAVAILABLE, "tesseract is not installed") from None
    except Exception as exc:  # noqa: BLE001
        raise PdfParseError(PDF_OCR_UNAVAILABLE, "tesseract does not run "
                            f"({type(exc).__name__})") from None
    missing = [part for part in lang.split("+") if part not in available]
    if missing:
        raise PdfParseError(PDF_OCR_UNAVAILABLE, "tesseract has no language data for "
                            f"{', '.join(missing)}")
    _tesseract_ok.add(lang)


def _check_deadline(deadline: float, limits: PdfLimits, index: int | None) -> None:
    if time.monotonic() > deadline:
        raise PdfParseError(PDF_TIMEOUT, f"document time limit of {limits.timeout_seconds:g} s "
                            "exceeded", "" if index is None else f"page {index + 1}")


def _cpu_count() -> int:
    """The CPUs this process may run on (affinity/cpuset), else os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _workers_can_start() -> bool:
    """forkserver workers re-run the main script by its path (as spawn does): a main read
    from stdin ('<stdin>') has none, and every worker would die at start-up."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return main_file is None or os.path.exists(main_file)


_pool_allowed = True


def ocr_in_this_process() -> None:
    """Never start an OCR pool in this process: for a process that is itself one of a pool's
    workers (pipelines/prepare_pool.py). The cores are its pool's already, and a pool inside
    it would have to be stopped before it can exit (a multiprocessing child waits for its
    own children), which its pool's shutdown does not do."""
    global _pool_allowed
    _pool_allowed = False


def _ocr_pages(data: bytes, indexes: list[int], limits: PdfLimits, deadline: float,
               wall_deadline: float) -> list[Page]:
    args = (limits.dpi, limits.lang, limits.page_timeout_seconds, wall_deadline)
    workers = min(limits.processes or _cpu_count(), len(indexes))
    if workers <= 1 or not _pool_allowed or not _workers_can_start():  # inline
        out = []
        for index in indexes:
            _check_deadline(deadline, limits, index)
            out.append(ocr_page(data, index, *args))
        return out
    pool = _pool(workers)
    pending: dict[Future, int] = {}
    queue = iter(indexes)
    out = []

    def submit_next() -> None:
        index = next(queue, None)
        if index is not None:
            pending[pool.submit(ocr_page, data, index, *args)] = index

    current = indexes[0]
    try:
        for _ in range(workers):  # at most `workers` pages in flight
            submit_next()
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _check_deadline(deadline, limits, min(pending.values()))
            done, _ = wait(pending, timeout=max(remaining, 0), return_when=FIRST_COMPLETED)
            for future in sorted(done, key=pending.__getitem__):
                current = pending.pop(future)
                out.append(future.result())
                submit_next()
    except BrokenProcessPool:  # a worker died (pdfium crash, OOM kill): a fresh pool next time
        _discard_pool(workers, pool)
        raise PdfParseError(PDF_CORRUPT, "the OCR worker process died while rendering or "
                            "reading the page", f"page {current + 1}") from None
    finally:
        for future in pending:  # an error or the time limit: drop the pages not started
            future.cancel()
    return out


# Pools reused across documents, one per worker count; (pid, pool) so that a forked child
# never uses its parent's pool.
_pools: dict[int, tuple[int, ProcessPoolExecutor]] = {}
_pools_lock = threading.Lock()


def _pool(workers: int) -> ProcessPoolExecutor:
    with _pools_lock:
        entry = _pools.get(workers)
        if entry is not None and entry[0] == os.getpid():
            if not getattr(entry[1], "_broken", False):
                return entry[1]
            entry[1].shutdown(wait=False, cancel_futures=True)  # a worker died while idle
        context = multiprocessing.get_context("forkserver")
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                   initializer=worker_init, initargs=(os.getpid(),))
        _pools[workers] = (os.getpid(), pool)
        return pool


def _discard_pool(workers: int, pool: ProcessPoolExecutor) -> None:
    with _pools_lock:
        if _pools.get(workers, (None, None))[1] is pool:
            del _pools[workers]
    pool.shutdown(wait=False, cancel_futures=True)


def shutdown_pools() -> None:
    """Stop the OCR worker processes (they are also stopped at interpreter exit)."""
    with _pools_lock:
        pools = [pool for _, pool in _pools.values()]
        _pools.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)
