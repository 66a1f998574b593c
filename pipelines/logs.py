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
