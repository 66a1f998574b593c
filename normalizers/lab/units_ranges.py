"""Units (OBX-6, to UCUM, alternate units) and reference ranges (OBX-7), and the checks of a unit
against the value and the LOINC code."""

from __future__ import annotations

import re
from collections.abc import Callable

from normalizers.codes import system_name
from normalizers.fields import loc, part, text
from normalizers.lab.common import Ctx
from normalizers.loinc_units import PROPERTY_NAMES
from normalizers.model import Entry, NormalizationError
from normalizers.units import to_ucum
from parsers.hl7v2.er7 import Segment


def warn_unit_contradicts_code(ctx: Ctx, obx: Segment, entry: Entry,
                               clash: tuple[str, str]) -> None:
    """The unit is of another kind than the LOINC code says (normalizers/loinc_units.py):
    '75 nmol/L' under 1989-3, 25-OH vitamin D [Mass/volume]. Filed as sent, never
    converted; said, and kept in ``details['unit_contradicts_code']`` for whoever trends by
    code (read by the code, 75 is ng/mL: two and a half times the vitamin D measured)."""
    code_property, unit_property = clash
    entry.details["unit_contradicts_code"] = {"code_property": code_property,
                                              "unit_property": unit_property}
    ctx.warnings.append(
        f"{loc(obx, 6)}: the unit is a {PROPERTY_NAMES[unit_property]} concentration, the "
        f"LOINC code one of {PROPERTY_NAMES[code_property]}: filed as sent, not converted")


def reference_ranges(ctx: Ctx, obx: Segment, entry: Entry) -> None:
    """OBX-7 repeated ('H : 13-17~F : 12-16', a range per sex or per age): OBX-7 is one ST
    (v2.5 7.4.2.7), so the first filled one is the range, as before; the others go to
    ``details['other_reference_ranges']``, said. They were dropped without a word. Empty
    repetitions (a trailing '~') are no range."""
    msg = ctx.msg
    ranges = [r for r in (text(msg, x) for x in obx.fields[7].split(msg.delimiters.repetition))
              if r.strip()]
    entry.reference_range = ranges[0] if ranges else None
    if len(ranges) > 1:
        entry.details["other_reference_ranges"] = ranges[1:]
        ctx.warnings.append(f"{loc(obx, 7)}: {len(ranges)} reference ranges (OBX-7 repeated): "
                            "the first is the range, the others are kept apart")


def check_unit_in_value(obx: Segment, entry: Entry, in_value: str | None) -> None:
    """OBX-6 set beside a unit written in OBX-5 (``number_with_unit``): the same unit
    (UCUM) is said twice and read once; another one leaves the number's meaning in doubt
    (12,5 'g/dL' in OBX-5, 'g/L' in OBX-6): OBX_UNIT_CONFLICT, never a guess."""
    if in_value is None or entry.unit == in_value:
        return
    where = loc(obx, 6)
    raise NormalizationError("OBX_UNIT_CONFLICT", f"{where}: the unit written in the value "
                             "(OBX-5) is not the unit of OBX-6: which one the number is in "
                             "is not said", where)


def fill_unit(lf: Callable[[str], str], c: list[str], entry: Entry, warnings: list[str],
              obx: Segment, field: int = 6) -> None:
    """OBX-6 (CE: code ^ text ^ system) to UCUM; a unit already declared UCUM is kept.
    ``lf`` reads a leaf (see ``leaf_reader``); ``field`` is where the unit was sent, for
    the warnings (5: a CQ's units, ``composite_quantity``).

    '10^9/L' sent without escaping its '^' reaches us as code '10', text '9/L': no unit is a
    bare number and no unit's text starts with a digit, so the two are put back together
    (with a warning) rather than filing the unit '10'. The same holds for the power written
    with its multiplication sign ('x10^9/l', 'x 10^12/L', '×10^3/µL'): code 'x10' was filed
    as the unit, unmapped, and the '10*9/L' it meant lost."""
    if 1 < len(c) < 4 and _UNIT_POWER_HEAD.fullmatch(c[0]) and c[1][:1].isdigit() \
            and (len(c) == 2 or not c[2].strip()):
        c = [f"{c[0].strip()}^{c[1].strip()}"]
        warnings.append(f"{loc(obx, field)}: unescaped '^' inside the unit read as an exponent")
    if len(c) > 3 and lf(c[3]) and not _unit_reads(lf, c[:3]) \
            and (not lf(c[0]) or _unit_reads(lf, c[3:6])):
        c = _alternate_unit(lf, c, entry, warnings, f"{loc(obx, field)}: {_FIRST_NAMES_NONE}")
    elif _ucum_alternate_differs(lf, c):
        c = _alternate_unit(lf, c, entry, warnings, f"{loc(obx, field)}: {_FIRST_READS_OTHER}")
    sent = lf(c[0]) or (lf(c[1]) if len(c) > 1 else "")
    if not sent:
        return
    entry.unit_original = sent
    unit, mapped = to_ucum(sent)
    if len(c) > 2 and _declares_ucum(lf(c[2])):
        # Declared UCUM: kept as sent, unless it is a spelling the table reads as another
        # code ('µmol/L^^UCUM': UCUM writes micro 'u'; 'G/L^^UCUM', which UCUM would read
        # as gauss per litre). Kept, it was a unit no other channel's result ever met (the
        # CDA path maps every unit through the table) and no UCUM reader understood.
        entry.unit = unit if mapped else sent
        if mapped and unit.lower() != sent.lower():
            warnings.append(f"{loc(obx, field)}: unit declared UCUM is no UCUM code, read as "
                            "the UCUM unit it spells")
        return
    if not mapped and len(c) > 1 and sent == lf(c[0]):
        # '0004-17a0^°C^MDIL', '266016^mmHg^MDC': a monitor's or a LIS's own unit code, the
        # unit itself in the text (CE.2). The unit read is the text's; the code is kept
        # apart (details.unit_code). Filed as the unit, the code was no unit at all.
        said = lf(c[1])
        by_text = to_ucum(said) if said else None
        if by_text is not None and by_text.mapped:
            entry.unit, entry.unit_original = by_text.unit, said
            entry.details["unit_code"] = {"code": sent, "system": lf(c[2]) if len(c) > 2 else ""}
            return
    entry.unit = unit
    if not mapped:
        entry.details["unit_unmapped"] = True


def _declares_ucum(system: str) -> bool:
    """Whether a unit's coding system (CE.3, CE.6) is UCUM: its HL7 table 0396 name
    ('UCUM', any case), or its OID (2.16.840.1.113883.6.8, as bridges fed from CDA or FHIR
    write it: tables/code_systems.csv). Named by its OID, a UCUM code was read as a unit
    of the sender's own: 'G/L^^L^g/L^^2.16.840.1.113883.6.8' filed 10*9/L."""
    return bool(system) and system_name(system).upper() == "UCUM"


def _unit_reads(lf: Callable[[str], str], triplet: list[str]) -> bool:
    """Whether a triplet of a unit (code ^ text ^ system) says a unit we read: declared
    UCUM, or its code or its text a unit the units table knows."""
    code, said = lf(part(triplet, 1)), lf(part(triplet, 2))
    if code and _declares_ucum(lf(part(triplet, 3))):
        return True
    return any(x and to_ucum(x).mapped for x in (code, said))


# Why the alternate triplet of a unit (CE.4-6) was read, said on the ledger
_FIRST_NAMES_NONE = "unit read from its alternate triplet (CE.4-6): the first names none"
_FIRST_READS_OTHER = ("the unit's first triplet reads as another unit than the UCUM code of "
                      "its alternate triplet (CE.4-6): the UCUM code read")


def _alternate_unit(lf: Callable[[str], str], c: list[str], entry: Entry,
                    warnings: list[str], said: str) -> list[str]:
    """The alternate triplet of a unit (CE.4-6, v2.5 2.A.8: the same concept in another
    coding system) read as the unit, the first's code kept apart (details.unit_code, as when
    its text says the unit: ``fill_unit``) and ``said`` warned. Two cases call it:

    - the first names no unit we read: empty ('^^^mmol/L^millimole par litre^UCUM'), or a
      LIS's own unit code beside a UCUM or known unit ('MMOLL^^99LAB^mmol/L^^UCUM', as
      v2.5.1 LRI and ELR senders send UCUM beside their local code). Only the first triplet
      was read: the potassium was filed without any unit, or under the unmapped 'MMOLL';
      two local codes stay the first, as before;
    - the sender's own unit of the first reads as another unit than the UCUM code of the
      alternate (``_ucum_alternate_differs``): 'G/L^^L^g/L^^UCUM' (an albumin in grams per
      litre written in capitals by a LIS, which the table reads as giga per litre, 10*9/L,
      a cell count), 'mEq/L^^L^mmol/L^^UCUM'. The UCUM one is the code the sender mapped
      for exchange, the first its label; the first was read, the albumin filed as a cell
      count. When both read as the same unit, the first is read, as before."""
    code = lf(c[0])
    if code:
        entry.details["unit_code"] = {"code": code, "system": lf(c[2])}
    warnings.append(said)
    return [c[3], part(c, 5), part(c, 6)]


def _read_as(lf: Callable[[str], str], triplet: list[str]) -> str | None:
    """The UCUM unit a triplet of a unit is read as, as ``fill_unit`` reads it: declared UCUM,
    its code (a spelling the table knows read as the code it spells); else its code, else
    its text, through the units table. None when neither reads."""
    code, said = lf(part(triplet, 1)), lf(part(triplet, 2))
    if code and _declares_ucum(lf(part(triplet, 3))):
        unit, mapped = to_ucum(code)
        return unit if mapped else code
    for sent in (code, said):
        if sent and (hit := to_ucum(sent)).mapped:
            return hit.unit
    return None


def _ucum_alternate_differs(lf: Callable[[str], str], c: list[str]) -> bool:
    """Whether a unit sent as the sender's own (CE.1-3, not UCUM) beside a UCUM code in its
    alternate triplet (CE.4-6, declared UCUM) reads as another unit than that UCUM code."""
    if len(c) < 6 or not lf(c[3]) or not _declares_ucum(lf(c[5])) \
            or _declares_ucum(lf(c[2])):
        return False
    first = _read_as(lf, c[:3])
    return first is not None and first != _read_as(lf, c[3:6])


# What the code of a unit split at an unescaped '^' is when the '^' was an exponent: a bare
# number ('10' of '10^9/L'), or ten after a multiplication sign ('x10' of 'x10^9/l').
_UNIT_POWER_HEAD = re.compile(r"\s*(?:\d+|[xX\u00d7*]\s*10)\s*")
