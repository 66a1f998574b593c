"""The parsed form of one PDF report: its pages' text, from the text layer or from OCR.

Faithful, not interpreted: which words are the patient's name or the conclusion is the
normalizer's business (normalizers/report.py). What the normalizer needs from here is, for
every word, where it is (page, line, box) and how sure we are of it (OCR confidence), so that
every field it extracts can say its page, its source and its confidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TEXT_LAYER = "text"  # the PDF's own text (born-digital report): confidence 100
OCR = "ocr"  # the page had no usable text: rasterised and read by tesseract


@dataclass(slots=True)
class Word:
    text: str
    confidence: float  # 0-100 (tesseract's word confidence; 100 for the text layer)
    bbox: tuple[float, float, float, float]  # x0, top, x1, bottom in PDF points
    line: int  # line number on its page, 0-based, in reading order
    # Printed in a bold font (text layer only): some laboratories mark a result out of its
    # range by bold type alone, with no '*' or 'H' beside it
    bold: bool = False


@dataclass(slots=True)
class Page:
    number: int  # 1-based
    source: str  # TEXT_LAYER or OCR
    text: str  # the page's text, lines separated by '\n', in reading order
    words: list[Word] = field(default_factory=list)
    confidence: float = 100.0  # mean word confidence on the page
    width: float = 0.0  # points
    height: float = 0.0
    # Whether the words' type styles (bold) are seen: not by OCR, nor in a searchable scan's
    # invisible text (the scanner's OCR, in a font of its own); a lab marking an abnormal
    # result by bold alone is then not seen marking it
    styles_seen: bool = True


@dataclass(frozen=True, slots=True)
class EmbeddedFile:
    """A file the PDF carries (PDF/A-3: the report's structured copy, a CDA): its bytes as
    embedded, the /Subtype it is said to be ('text/xml', '' when none) and its
    /AFRelationship ('Alternative', 'Source', 'Data', ''). No name: it may be the patient's."""
    data: bytes
    media_type: str = ""
    relationship: str = ""


@dataclass(slots=True)
class PdfDocument:
    pages: list[Page]
    metadata: dict[str, str] = field(default_factory=dict)  # Title, Author, Producer...
    warnings: list[str] = field(default_factory=list)  # 'CODE: text', never content
    # the CDA documents embedded in the PDF (parsers/pdf/_embedded.py), for the pipeline to
    # read through the CDA path; other embedded files are only counted (PDF_ATTACHMENTS)
    embedded: list[EmbeddedFile] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The whole text, pages separated by a form feed line."""
        return "\n\f\n".join(p.text for p in self.pages)

    @property
    def page_count(self) -> int:
        return len(self.pages)
