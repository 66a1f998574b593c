"""Logging set-up shared by the command and the worker processes.

Why: DMP_LOG_LEVEL=DEBUG is for our own loggers (``dmp.*``, which log ids and codes only).
Some libraries log the data they handle at DEBUG/INFO: SQLAlchemy the statements' parameters
(patient names, NIRs), pdfminer every text token of a report, botocore request bodies. Those
stay at WARNING whatever the level asked, unless DMP_LOG_LIBRARIES=1 (a developer's choice,
on synthetic data).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Hashable

# Loggers of libraries that may write patient data at DEBUG or INFO.
DATA_LOGGERS = ("sqlalchemy", "pdfminer", "pdfplumber", "PIL", "pytesseract", "botocore",
                "boto3", "s3transfer", "urllib3", "lxml", "hl7", "hl7apy", "moto", "httpx",
                "httpcore", "uvicorn.access")
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(level: str | int | None = None) -> None:
    """Root at ``level`` (default DMP_LOG_LEVEL or WARNING); data-bearing libraries capped."""
    level = level or os.environ.get("DMP_LOG_LEVEL", "WARNING")
    logging.basicConfig(level=level, format=FORMAT)
    cap_library_loggers()


def cap_library_loggers() -> None:
    if os.environ.get("DMP_LOG_LIBRARIES") == "1":
        return
    for name in DATA_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)


class Throttle:
    """At most ``burst`` log lines per key and window; the ones over it are held back and
    counted, and the count is said with the next line let through.

    Why: a sender whose engine resends a refused message every second (an unknown sender,
    a training message) wrote a warning per frame, 86,400 a day, drowning the others. The
    ledger still records every frame; the log says the first few and how many followed."""

    def __init__(self, window_seconds: float = 60.0, burst: int = 5, max_keys: int = 1024,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window_seconds
        self.burst = burst
        self.max_keys = max_keys
        self.clock = clock
        # key -> (start of its window, lines let through in it, lines held back)
        self._seen: dict[Hashable, tuple[float, int, int]] = {}

    def allow(self, key: Hashable) -> tuple[bool, int]:
        """(whether to log now, how many were held back before this line for ``key``)."""
        t = self.clock()
        start, told, held = self._seen.get(key, (t, 0, 0))
        if t - start >= self.window:  # a new window
            start, told = t, 0
        if told >= self.burst:
            self._seen[key] = (start, told, held + 1)
            return False, 0
        if key not in self._seen and len(self._seen) >= self.max_keys:  # bounded
            self._seen = {k: v for k, v in self._seen.items()
                          if t - v[0] < self.window or v[2]}
        self._seen[key] = (start, told + 1, 0)
        return True, held
