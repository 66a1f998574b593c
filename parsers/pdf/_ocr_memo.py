"""tesseract's readings kept by page pixels, for the test suite and benches that read the same
pages again and again (``DMP_OCR_MEMO``: a folder; unset, nothing is kept).

The test suite reads the same few scanned pages in dozens of tests (the sample scans filed by
every end-to-end test, the ANS examples' PDFs in every corpus test): 127 tesseract runs of 31
distinct pages in the PDF tests alone, three quarters of their OCR time spent reading again a
page already read. A reading depends only on the page's pixels, the language, the page
segmentation mode, our tesseract options and tesseract's version: with those as the key, a
page read once is read from the memo by every later test, in any process (the prepare pool's
workers inherit the variable). The first reading of each page is still real tesseract.

Not an operator setting: a memo holds the text of patients' reports, so the service never
keeps one (the variable is read from the environment only, not from dmp.toml), and the
suite's folder is removed with the session. Tests of tesseract itself (its time limit, its
absence, a worker killed mid-page) run without it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

MEMO_ENV = "DMP_OCR_MEMO"


@functools.cache
def _tesseract_version() -> str:
    import pytesseract

    try:
        return str(pytesseract.get_tesseract_version())
    except Exception:  # noqa: BLE001 (no tesseract: the reading itself will say so)
        return "?"


def memo_file(image, lang: str, options: str) -> Path | None:  # noqa: ANN001 (PIL.Image)
    """Where the reading of ``image`` with ``lang`` and ``options`` is kept, or None when no
    memo is asked for."""
    folder = os.environ.get(MEMO_ENV)
    if not folder:
        return None
    digest = hashlib.sha256()
    for part in (image.mode, repr(image.size), lang, options, _tesseract_version()):
        digest.update(part.encode() + b"\0")
    digest.update(image.tobytes())
    return Path(folder) / f"{digest.hexdigest()}.json"


def recall(path: Path | None) -> dict | None:
    """The reading kept at ``path``, or None (none kept, or unreadable: read the page)."""
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def keep(path: Path | None, reading: dict) -> None:
    """Keep ``reading`` at ``path``, whole or not at all (written aside, then renamed: two
    processes reading the same page write the same bytes)."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f"{path.name}.{os.getpid()}.part")
        part.write_text(json.dumps(reading), encoding="utf-8")
        os.replace(part, path)
    except OSError:
        pass  # a memo that cannot be written costs a reading, nothing else
