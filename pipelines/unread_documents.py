"""The documents of an HL7v2 message filed unread, as warning ERRs of its application ACK.

A CDA, PDF or image carried in an OBX (ED) that cannot be read (not XML, hostile XML, an
encrypted or broken PDF...) fails nothing: its bytes are filed as sent and the ledger row
gets a warning naming the OBX and the code (normalizers/documents.py: '<place>: the CDA body
could not be read (CDA_DTD_FORBIDDEN); ...'). The sender was answered a plain AA, and its
integration engineer never learnt that the document was not read. HL7 v2.5 2.14.5 (ERR-4
severity W: "transaction successful, but there may be issues") has the answer: AA, since it
was received and filed and a resend would be the same, with one ERR per unread document:
ERR-2 its OBX-5, ERR-3 the table 0357 code of tables/unread_document_codes.csv, ERR-4 W,
ERR-8 our code and what happened (no patient data: the warning texts hold none).
"""

from __future__ import annotations

import csv
import re
from functools import cache
from pathlib import Path

from parsers.hl7v2.ack import AckError
from parsers.hl7v2.header import occurrence_location

_TABLE = Path(__file__).parent / "tables" / "unread_document_codes.csv"

# '<places>: the <what> could not be read (<CODE>)<rest>', where <places> is one place
# ('OBX[7]') or, once condensed on the ledger (pipelines/warning_lines.py), several
# ('OBX[2], OBX[3], OBX[4] and 3 more places')
_UNREAD = re.compile(r"(?P<places>[A-Z][A-Z0-9]{2}\[\d+\][^:]*): (?P<text>the .{1,60}? could "
                     r"not be read \((?P<code>[A-Z][A-Z0-9_]{2,60})\).*)", re.S)
_PLACE = re.compile(r"([A-Z][A-Z0-9]{2})\[(\d+)\](-\d+)?")


@cache
def unread_codes(path: Path = _TABLE) -> dict[str, str]:
    """Warning code -> HL7 table 0357 code (a data file, not an if chain); '*' the default."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        return {r["warning_code"]: r["hl7_code"] for r in rows}


def unread_document_errors(warnings: list[str] | None, message: bytes) -> list[AckError]:
    """One warning ERR per document of ``message`` that its ledger ``warnings`` say was
    filed unread, located at the OBX carrying it ('OBX[1]-5': its occurrence among the OBX
    segments, as every ERR-2 is, ``occurrence_location``); [] when there is none."""
    out = []
    for line in warnings or ():
        found = _UNREAD.fullmatch(line)
        if found is None:
            continue
        code = found["code"]
        hl7_code = unread_codes().get(code) or unread_codes()["*"]
        text = f"{code}: {found['text'].replace(f' ({code})', '', 1)}"
        for segment, position, field in _PLACE.findall(found["places"]):
            where = f"{segment}[{position}]{field or ('-5' if segment == 'OBX' else '')}"
            out.append(AckError(hl7_code, text, occurrence_location(message, where),
                                severity="W"))
    return out
