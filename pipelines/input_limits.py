"""The largest input each format's parser takes, checked on the ledger row's size before the
archived bytes are read.

Why: a worker read an input whole from the archive before its parser refused it as too large
(PDF_TOO_LARGE, CDA_TOO_LARGE): a 2 GB scan dropped for `ingest` cost 2 GB of the worker's
memory to learn what the row's size already said. The limits are the parsers' own (one
source of truth), and the outcome is the one the parser gives (same stage, code and text),
so a rerun with tomorrow's limits decides again. An input of no known format over the
largest of them is refused as INPUT_TOO_LARGE (it would be read whole only to be described).
"""

from __future__ import annotations

from parsers.cda import DEFAULT_MAX_BYTES
from parsers.pdf import PdfLimits

INPUT_TOO_LARGE = "INPUT_TOO_LARGE"
PDF_MAX_BYTES = PdfLimits().max_bytes  # what process.py's parse_pdf takes (its default)
CDA_MAX_BYTES = DEFAULT_MAX_BYTES  # what process.py's parse_cda takes (its default)


def too_large(fmt: str, size: int) -> tuple[str, str] | None:
    """(code, message) when an input of this format and size is over its parser's limit,
    else None. HL7v2 rows are single messages (big files are cut at intake): not bounded
    here."""
    if fmt == "pdf":
        if size > PDF_MAX_BYTES:
            return ("PDF_TOO_LARGE", f"PDF of {size} bytes, over the limit of {PDF_MAX_BYTES} "
                    f"bytes")
    elif fmt == "cda":
        if size > CDA_MAX_BYTES:
            return "CDA_TOO_LARGE", f"document of {size} bytes over the limit of {CDA_MAX_BYTES}"
    elif fmt != "hl7v2":
        limit = max(PDF_MAX_BYTES, CDA_MAX_BYTES)
        if size > limit:
            return (INPUT_TOO_LARGE, f"input of {size} bytes of no format read here, over "
                    f"the limit of {limit} bytes of the largest format read (CDA, PDF)")
    return None
