"""ORU^R01 (v2.3 to v2.5.1 and later) to LAB_REPORT / LAB_RESULT / DOCUMENT entries.

One LAB_REPORT per OBR, one LAB_RESULT per OBX under it, one DOCUMENT per OBX of type ED (a CDA
or PDF report: never a result of type ED). Segments are grouped by position (an OBX belongs to
the OBR before it), which reads the v2.5 group structure and the flat v2.3 layout alike.

Keys are built from what the sender keeps stable across a resend or a correction: the order
number (filler, else placer), the observation code *as sent* (not its mapping, which may change
with the tables) and the sub-id. A correction (OBX-11 = C) replaces the same key; D / W delete it.

Speed matters (10,000 messages/s end to end): every field is split once, tables are dicts
built once, dates are cached, nothing is compiled per call.

The package, one job a module (each imports only those listed before it that it needs):
common (type and status sets, the message context ``Ctx``, small field readers), groups
(segments to orders), notes (NTE, text lines), people (providers, observers, performers), flags
(OBX-8), units_ranges (OBX-6, OBX-7), numeric (NM, CQ, comparators), quantities (numbers in
text), structured (SN), coded (CE/CWE), values (OBX-5 by data type), corrections (OBX-11, W/D),
keys (dedupe keys), results (one OBX), microbiology (isolates, parent results), orders (order
numbers, priority), reports (one OBR, its status and dates), specimens (SPM), message_checks
(message-wide warnings), oru (one ORU/OUL), dispatch (MSH-9). This module re-exports the
public names: import them from ``normalizers.lab``.
"""

from __future__ import annotations

from normalizers.lab.common import (
    CODED_TYPES,
    DATE_TYPES,
    NARRATIVE_TYPES,
    NO_VALUE_STATUSES,
    SINGLE_VALUE_TYPES,
    TEXT_TYPES,
    WITHHELD_STATUSES,
)
from normalizers.lab.dispatch import (
    handles_message_type,
    normalize_message,
    normalize_patients,
    normalize_results,
)
from normalizers.lab.groups import NULL
from normalizers.lab.numeric import COMPARATORS
from normalizers.lab.orders import POINT_OF_CARE, order_scope
from normalizers.lab.oru import normalize_oru
from normalizers.lab.structured import SN_SEPARATORS

__all__ = [
    "CODED_TYPES",
    "COMPARATORS",
    "DATE_TYPES",
    "NARRATIVE_TYPES",
    "NO_VALUE_STATUSES",
    "NULL",
    "POINT_OF_CARE",
    "SINGLE_VALUE_TYPES",
    "SN_SEPARATORS",
    "TEXT_TYPES",
    "WITHHELD_STATUSES",
    "handles_message_type",
    "normalize_message",
    "normalize_oru",
    "normalize_patients",
    "normalize_results",
    "order_scope",
]
