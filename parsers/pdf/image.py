"""A scanned report sent as an image (JPEG, PNG, TIFF in an HL7 ED, IM^JPEG...): wrapped in a
PDF of its page(s), page size from the image's resolution, so that ``parse_pdf`` reads it by the
same OCR path (and limits) as a scanned PDF.

Why: document servers and scanning stations send a scanned report as the scanner's JPEG or
multi-page TIFF rather than a PDF. It was filed with no reading: no report entry, nothing
searchable, where the same page as a PDF was read. Only an image that looks like a document
page is read (``page_shape``); a photograph, a drawing or a thumbnail is kept as it is, and the
caller says so.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from .errors import PDF_CORRUPT, PdfParseError

IMAGE_NOT_A_PAGE = "IMAGE_NOT_A_PAGE"  # warning code: an image kept unread (not a page)

# A page: A6 to A3 (and Letter, Legal) upright or turned: the long side over the short one
# between these, and, when the image states a scanner's resolution, its long side this long.
PAGE_RATIO = (1.2, 1.75)
PAGE_LONG_INCHES = (5.5, 17.5)  # A6 long side 5.8 in, A3 16.5 in
SCANNER_MIN_DPI = 100  # 72 and 96 are screen and camera defaults, no scan's
MIN_LONG_PIXELS = 1000  # under this a page's text is too small for tesseract (a thumbnail)
A4_LONG_INCHES = 11.69  # the page size given to an image stating no resolution
MAX_PIXELS = 60_000_000  # a frame over this is refused unread (a decompression bomb guard)


@dataclass(frozen=True, slots=True)
class PageImage:
    """What the image is: its frames' size, resolution, and whether it is a page."""

    width: int
    height: int
    dpi: float | None  # as the image states it; None when it states none
    frames: int
    is_page: bool
    shape: str  # for the ledger: '2480 x 3508 px at 300 dpi'


def page_shape(width: int, height: int, dpi: float | None) -> bool:
    """Whether an image of ``width`` x ``height`` px at ``dpi`` looks like a document page."""
    long, short = max(width, height), min(width, height)
    if short <= 0 or long < MIN_LONG_PIXELS or not PAGE_RATIO[0] <= long / short <= PAGE_RATIO[1]:
        return False
    if dpi is not None and dpi < SCANNER_MIN_DPI:
        return False  # a camera's or a screen's picture (72, 96 dpi), no scanner's page
    return dpi is None or PAGE_LONG_INCHES[0] <= long / dpi <= PAGE_LONG_INCHES[1]


def image_pdf(data: bytes) -> tuple[PageImage, bytes | None]:
    """The image's shape, and its frames as a PDF when it is a page (else None). Raises
    PdfParseError(PDF_CORRUPT) when the bytes are no image Pillow reads."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise PdfParseError(PDF_CORRUPT, f"image of {image.width} x {image.height} px, "
                                    f"over {MAX_PIXELS} px: not read")
            dpi = _stated_dpi(image.info.get("dpi"))
            frames = getattr(image, "n_frames", 1)
            shape = f"{image.width} x {image.height} px" + (f" at {dpi:.0f} dpi" if dpi else "")
            found = PageImage(image.width, image.height, dpi, frames,
                              page_shape(image.width, image.height, dpi), shape)
            if not found.is_page:
                return found, None
            return found, _as_pdf(image, dpi or max(image.size) / A4_LONG_INCHES)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, PdfParseError):
            raise
        raise PdfParseError(PDF_CORRUPT, "the image could not be decoded "
                            f"({type(exc).__name__})") from None


def _stated_dpi(value: object) -> float | None:
    """The horizontal resolution an image states (None: none, or 0 as some writers put)."""
    try:
        dpi = float(value[0]) if isinstance(value, tuple) else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, IndexError):
        return None
    return dpi if dpi > 1 else None


def _as_pdf(image, dpi: float) -> bytes:  # noqa: ANN001 (PIL.Image)
    """Every frame of ``image`` as a page of a PDF at ``dpi``: a fax's bilevel frames as
    they are (CCITT G4, lossless), else every frame in grayscale (JPEG at quality 95: Pillow's
    default, 75, blurs small type)."""
    from PIL import ImageOps, ImageSequence

    # upright as the image says it is shown (EXIF Orientation: a phone or a scanning app
    # keeps the sensor's pixels and says 'turn 90°'): the page was OCR'd on its side
    frames = [ImageOps.exif_transpose(frame) for frame in ImageSequence.Iterator(image)]
    bilevel = all(frame.mode == "1" for frame in frames)
    pages = frames if bilevel else [frame.convert("L") for frame in frames]
    options = {} if bilevel else {"quality": 95}  # the encoder's own: G4 takes none
    out = io.BytesIO()
    pages[0].save(out, "PDF", resolution=dpi, save_all=True, append_images=pages[1:],
                  **options)
    return out.getvalue()
