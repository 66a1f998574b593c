"""Observation codes (OBX-3, OBR-4) to LOINC.

Order of trust: the sender's own LOINC (primary triplet, then the alternate triplet CE.4-6),
then the mapping tables (per source, then '*' for every source), else the local code is kept
as sent and flagged unmapped: design rule, unknown codes are never dropped.

The mapping tables are CSV data (tables/local_to_loinc.csv plus per-source files in a
directory chosen by the caller), loaded by ``load_mappings`` into a ``CodeMappings`` object
that the caller keeps and passes to every normalization (no global mutable state).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import NamedTuple

from normalizers.tabledata import TABLES_DIR, read_csv_rows, table

LOINC = "LN"
# tables/loinc_systems.csv: names under which every code is LOINC, and names under which a
# code of LOINC's form is (pCLOCD, the pan-Canadian database of LOINC and its own codes).
LOINC_SYSTEMS = frozenset(r["sent"].upper() for r in table("loinc_systems") if r["codes"] == "all")
_LOINC_FORM_SYSTEMS = frozenset(r["sent"].upper() for r in table("loinc_systems")
                                if r["codes"] == "form")
_LOINC_FORM = re.compile(r"(\d{1,7})-(\d)")
LOCAL = "L"
ANY_SOURCE = "*"
_COLUMNS = ("coding_system", "local_code", "loinc")


def is_loinc_system(system: str) -> bool:
    return system.upper() in LOINC_SYSTEMS


def is_loinc(code: str, system: str) -> bool:
    """Whether ``code`` sent under ``system`` is a LOINC code: every code of a LOINC system,
    a code of LOINC's form with its check digit under a system that mixes LOINC with codes
    of its own (``301.0500^WBC^00065227^6690-2^Leukocytes^pCLOCD``: the LOINC of the
    alternate triplet was lost, the result filed under the lab's code alone)."""
    upper = system.upper()
    if upper in LOINC_SYSTEMS:
        return True
    if upper not in _LOINC_FORM_SYSTEMS:
        return False
    m = _LOINC_FORM.fullmatch(code.strip())
    return m is not None and _mod10(m.group(1)) == int(m.group(2))


@lru_cache(maxsize=4096)
def loinc_check_fails(code: str) -> bool:
    """Whether ``code`` has LOINC's form (digits, '-', check digit) and a wrong check digit:
    a typo in the sender's table ('2823-4' for potassium's '2823-3'), which files the
    result under a code no other result has. Cached: a lab sends the same few codes."""
    m = _LOINC_FORM.fullmatch(code.strip())
    return m is not None and _mod10(m.group(1)) != int(m.group(2))


def _mod10(digits: str) -> int:
    """LOINC's check digit (the LOINC users' guide, 'Mod 10'): the Luhn digit of the number."""
    total = 0
    for i, c in enumerate(reversed(digits)):
        n = int(c) * (2 if i % 2 == 0 else 1)
        total += n // 10 + n % 10
    return (10 - total % 10) % 10


class CodeResult(NamedTuple):
    code: str
    system: str  # 'LN' when LOINC, else the sender's coding system ('L' when none given)
    display: str
    mapped: bool
    local: tuple[str, str, str] | None  # (code, system, display) as sent, when it was not LOINC


@dataclass(slots=True)
class CodeMappings:
    """(source, coding system, local code) -> (LOINC, display). Build with ``load_mappings``."""

    rows: dict[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def lookup(self, source: str | tuple[str, ...], system: str,
               code: str, also: str = "") -> tuple[str, str] | None:
        """``source`` may name several candidates, most specific first (the intake source id,
        then the sender MSH-3.1|MSH-4.1): local codes belong to the lab that sends them,
        whichever connector they came through. ``also``: a second coding system the same
        code may have been keyed under (see ``resolve_code``), tried for each source in turn
        so that a source's own row still wins over a '*' row."""
        rows = self.rows
        for name in (source,) if isinstance(source, str) else source:
            hit = rows.get((name, system, code))
            if hit is None and also:
                hit = rows.get((name, also, code))
            if hit is not None:
                return hit
        hit = rows.get((ANY_SOURCE, system, code))
        if hit is None and also:
            hit = rows.get((ANY_SOURCE, also, code))
        return hit

    def add_file(self, path: Path, default_source: str | None = None) -> None:
        """Add the rows of one CSV; later files win over earlier ones for the same key."""
        rows = read_csv_rows(path)
        if rows:
            missing = [c for c in _COLUMNS if c not in rows[0]]
            if missing:
                raise ValueError(f"mapping table {path.name} lacks column(s) {', '.join(missing)}")
        for row in rows:
            source = row.get("source") or default_source or ANY_SOURCE
            if not row["local_code"] or not row["loinc"]:
                continue
            key = (source, row["coding_system"] or LOCAL, row["local_code"])
            self.rows[key] = (row["loinc"], row.get("display", ""))
        self.files.append(path.name)


@cache
def _base() -> CodeMappings:
    base = CodeMappings()
    base.add_file(TABLES_DIR / "local_to_loinc.csv")
    return base


def tables_version(extra_dir: Path | None = None) -> tuple[tuple[str, int, int], ...]:
    """What identifies the per-source tables on disk (name, size, modification time of each
    CSV): two processes that read the same version have the same tables."""
    if extra_dir is None:
        return ()
    version = []
    for path in sorted(Path(extra_dir).glob("*.csv")):
        try:
            stat = path.stat()
        except OSError:
            continue
        version.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(version)


def load_mappings(extra_dir: Path | None = None) -> CodeMappings:
    """The shipped table plus every ``*.csv`` in ``extra_dir`` (sorted by name; a file without
    a 'source' column applies to the source named like the file). Call once, keep the result.
    """
    base = _base()
    maps = CodeMappings(dict(base.rows), list(base.files))
    if extra_dir is not None:
        for path in sorted(Path(extra_dir).glob("*.csv")):
            maps.add_file(path, default_source=path.stem)
    return maps


def resolve_code(code: str, display: str, system: str, alt_code: str = "", alt_display: str = "",
                 alt_system: str = "", *, source: str | tuple[str, ...] = "",
                 mappings: CodeMappings | None = None, sent_system: str = "") -> CodeResult:
    """Pick the LOINC for one coded element (CE/CWE triplet plus alternate triplet).

    ``sent_system``: what the coding-system slot held when the caller read it as the text
    (``text_in_system_slot``; ``system`` is then ''). A mapping row written before that
    reading, keyed by that text as the coding system, still maps the code."""
    if code and is_loinc(code, system):
        if alt_code and not is_loinc(alt_code, alt_system):
            # LOINC first and the lab's own code beside it ('25836-8^^LN^LPLOG^Log (Copies /
            # ml)^L', SoftLab): the local code and its text are what tell two results of one
            # LOINC apart (a viral load in copies and in log); both were dropped
            return CodeResult(code, LOINC, display or alt_display, True,
                              (alt_code, alt_system or LOCAL, alt_display))
        return CodeResult(code, LOINC, display, True, None)
    if alt_code and is_loinc(alt_code, alt_system):
        local = (code, system, display) if code else None
        return CodeResult(alt_code, LOINC, alt_display or display, True, local)
    if not code and alt_code:  # only the alternate triplet was filled
        code, display, system = alt_code, alt_display, alt_system
    local_system = system or LOCAL
    if mappings is not None and code:
        hit = mappings.lookup(source, local_system, code, sent_system)
        if hit is not None:
            return CodeResult(hit[0], LOINC, hit[1] or display, True, (code, local_system, display))
    return CodeResult(code, system_name(local_system), display, False, None)


@cache
def system_name(sent: str) -> str:
    """The name entries use for a coding system sent in an HL7v2 CE.3 (tables/
    coding_system_aliases.csv, or tables/code_systems.csv for an OID): the name the same
    terminology has in a CDA, so that one SNOMED CT or NABM code has one system on every
    channel (dedupe level 4 compares it). Anything else is kept as sent."""
    name = _system_aliases().get(sent.strip().upper())
    if name is None and _OID.fullmatch(sent.strip()):
        name = oid_names().get(sent.strip())
    return name or sent


_OID = re.compile(r"[0-2](?:\.\d+)+")


@cache
def _system_aliases() -> dict[str, str]:
    return {row["sent"].upper(): row["system"] for row in table("coding_system_aliases")}


@cache
def oid_names() -> dict[str, str]:
    """OID -> the short name entries use for that terminology (tables/code_systems.csv)."""
    return {row["oid"]: row["name"] for row in table("code_systems")}


# -- a test's name in the coding-system slot --------------------------------------------------
_NUMBERED_SYSTEM = re.compile(r"(?:HL7|ISO)\d+|99\w+", re.IGNORECASE)
_CAPITALISED_WORD = re.compile(r"[A-Z][a-z]+(?:[-'][a-z]+)*")
_OID_OR_URI = re.compile(r"[0-2](?:\.\d+)+|[A-Za-z][\w+.-]*:\S+")


@cache
def _coding_system_names() -> frozenset[str]:
    """Upper-case names a coding system is written with: tables/coding_system_names.csv (HL7
    table 0396 and spellings seen), the short names of tables/code_systems.csv, LOINC's."""
    names = {row["name"] for row in table("coding_system_names")}
    names.update(row["name"] for row in table("code_systems"))
    names.update(LOINC_SYSTEMS | _LOINC_FORM_SYSTEMS)
    return frozenset(n.upper() for n in names)


@lru_cache(maxsize=1024)
def text_in_system_slot(system: str) -> bool:
    """Whether what a CE/CWE sent in its coding-system slot (component 3), its text slot
    (component 2) left empty, is the element's text rather than a coding system.

    A French LIS (INLOG, on the IHE France laboratory list) writes OBX-3 'LEUUR^^Leucocytes':
    the test's name one slot too far. Filed as the coding system, the name was lost and a
    name became a terminology. A coding system name is an identifier: ASCII, no blanks,
    upper case ('LN', 'SCT', '99LAB', 'HL70078' in table 0396), an OID, a URI, or a camel-case
    name ('expandedYes-NoIndicator', what CI-SIS itself sends with the text slot empty:
    'Y^^expandedYes-NoIndicator'). Read as text is only what is no known name, no 99zzz local
    form, no OID or URI, and looks like words: a blank, a non-ASCII letter, or one
    capitalised word ('Leucocytes', 'ACIDE URIQUE', 'GLYCÉMIE', 'Nitrites'). A lone
    upper-case ('GLYCEMIE') or lower-case word is left as sent: it cannot be told from a
    system name. The caller checks that component 2 is empty (cached: one lab sends the same
    few hundred names)."""
    value = system.strip()
    if not value or not any(c.isalpha() for c in value):
        return False
    if value.upper() in _coding_system_names() or _NUMBERED_SYSTEM.fullmatch(value) \
            or _OID_OR_URI.fullmatch(value):
        return False
    return " " in value or not value.isascii() or _CAPITALISED_WORD.fullmatch(value) is not None
