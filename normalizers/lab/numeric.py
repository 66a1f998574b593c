"""Numbers (NM, CQ): reading a number as senders write it (grouped thousands, decimal commas,
powers of ten), comparators, and numbers written with their unit."""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from normalizers.fields import comps, part, text, unescaped
from normalizers.lab.common import NUMBER, Ctx, leaf_reader
from normalizers.lab.units_ranges import fill_unit
from normalizers.model import Entry, NormalizationError
from normalizers.tabledata import column_map, table
from normalizers.units import to_ucum
from parsers.hl7v2.er7 import Segment

_GROUPED = re.compile(r"[+-]?\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:[.,]\d+)?")
_BLANKS = re.compile(r"[ \u00a0\u202f]")
# Thousands grouped by the one mark and decimals after the other ('1.250,5' as a German or
# French export prints it, '1,250.5' as a US one), or grouped twice without decimals
# ('1.250.000', '250,000,000'): the only reading. One group alone stays a decimal ('1.250',
# '1,250' are one and a quarter, as a French lab means them).
_GROUPED_DOTS = re.compile(r"[+-]?\d{1,3}(?:(?:\.\d{3})+,\d+|(?:\.\d{3}){2,})")
_GROUPED_COMMAS = re.compile(r"[+-]?\d{1,3}(?:(?:,\d{3})+\.\d+|(?:,\d{3}){2,})")
# Scientific notation ('1.2E+03', '3,5e-2'): a viral load or a bacterial count as analysers
# print it. Not in the NM grammar (v2.5 2.A.47) but no other reading; the exponent is bounded
# so that no value reads as infinite.
EXPONENT = re.compile(r"([+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+))[eE]([+-]?\d{1,2})")
# A comparator and what follows it ('<0.5', '> 1 000', '<1.0E2', '≥ 60', '=<0,25'):
# parse_number reads the rest; a one-sign or reversed comparator (tables/
# comparator_signs.csv) is read by comparator_of.
COMPARED = re.compile(r"(<=|>=|=<|=>|<>|<|>|=|[\u2264\u2265\u2a7d\u2a7e])\s*([+\-\d.,].*)")
COMPARATORS = frozenset({"<", ">", "<=", ">=", "=", "<>"})


def parse_number(ctx: Ctx, value: str, where: str) -> float | None:
    if NUMBER.fullmatch(value):
        return float(value)
    if "," in value and "." not in value:
        dotted = value.replace(",", ".", 1)
        if NUMBER.fullmatch(dotted):
            ctx.warnings.append(f"{where}: decimal comma read as a decimal point")
            return float(dotted)
    if _GROUPED.fullmatch(value):
        # '12 000', '250 000', '1 250,5': thousands grouped by a blank, as French reports
        # print counts (a urine leucocyte count, platelets per mm3). Groups of exactly three
        # digits after the first: nothing else reads that way. A dot is never read as a
        # thousands separator ('1.250' is one and a quarter).
        ctx.warnings.append(f"{where}: digits grouped by blanks read as one number")
        return float(_BLANKS.sub("", value).replace(",", "."))
    if _GROUPED_DOTS.fullmatch(value):
        ctx.warnings.append(f"{where}: thousands grouped by dots read as one number")
        return float(value.replace(".", "").replace(",", "."))
    if _GROUPED_COMMAS.fullmatch(value):
        ctx.warnings.append(f"{where}: thousands grouped by commas read as one number")
        return float(value.replace(",", ""))
    m = EXPONENT.fullmatch(value)
    if m is not None:
        ctx.warnings.append(f"{where}: number in scientific notation read as one number")
        return float(f"{m.group(1).replace(',', '.')}e{m.group(2)}")
    m = POWER_TEXT.fullmatch(value)
    if m is not None:
        # '10\S\5' (a colony count, its '^' escaped as HL7 wants): the unescaped '10^5'
        # was read as a power of ten, this one failed the whole message (OBX_BAD_NUMBER)
        mantissa = float(m.group(1).replace(",", ".")) if m.group(1) else 1.0
        ctx.warnings.append(f"{where}: power of ten ('10^n') read as the number it spells")
        return float(f"{mantissa!r}e{int(m.group(2))}")
    return None


# A power of ten written out with its '^' escaped ('10\S\5', '2,5x10\S\6'): '10^5' once
# unescaped. Mantissa and its multiplication sign optional, as in ``POWER_OF_TEN``.
POWER_TEXT = re.compile(r"\s*(?:(\d+(?:[.,]\d+)?)\s*[x\u00d7*]\s*)?10\^([+-]?\d{1,2})\s*")


# A power of ten written with an unescaped '^' ('>10^3', '2,5x10^6', '1.2 x 10^5'): it reaches
# us as the components '>10' and '3'. Comparator, mantissa and 'x' optional.
POWER_OF_TEN = re.compile(r"(<=|>=|<|>|[\u2264\u2265\u2a7d\u2a7e])?"
                          r"\s*(?:(\d+(?:[.,]\d+)?)\s*[x\u00d7*]\s*)?10")
EXPONENT_DIGITS = re.compile(r"[+-]?\d{1,2}")


def nm_with_components(ctx: Ctx, first: str, c: list[str], head: str, entry: Entry,
                       where: str) -> None:
    """An NM value (no components in HL7) that arrives with some: what follows its first
    component was dropped without a word. A power of ten sent with an unescaped '^'
    ('>10^3' copies/mL: more than a thousand) was read as '>10', a thousand times less; it
    is now read as the number it spells. Anything else after the number ('4.5^H') is kept
    in details.value_sent (OBX-5 as sent), with a warning; the number is read as before."""
    msg = ctx.msg
    tail = text(msg, c[1]) if len(c) == 2 else ""
    m = POWER_OF_TEN.fullmatch(head) if tail else None
    if m is not None and EXPONENT_DIGITS.fullmatch(tail):
        mantissa = float(m.group(2).replace(",", ".")) if m.group(2) else 1.0
        entry.value = f"{head}^{tail}"
        entry.value_num = float(f"{mantissa!r}e{int(tail)}")
        entry.comparator = comparator_of(ctx, m.group(1), where) if m.group(1) else None
        ctx.warnings.append(f"{where}: unescaped '^' inside the value read as a power of ten")
        return
    entry.details["value_sent"] = unescaped(msg, first)
    ctx.warnings.append(f"{where}: components after the first are no part of an NM value: "
                        "the number is the first, the value as sent is kept apart")
    fill_numeric(ctx, head, entry, where)


def fill_numeric(ctx: Ctx, value: str, entry: Entry, where: str, vtype: str = "NM") -> None:
    if not value:
        return
    entry.value = value
    num = parse_number(ctx, value, where)
    if num is None:
        m = COMPARED.fullmatch(value)
        body = m.group(2) if m is not None else value
        if m is not None:  # '<0.5' sent as NM: unambiguous, accepted as SN would have been
            num = parse_number(ctx, body, where)
        if num is None:  # '12,5 g/dL', '< 0,5 mg/L': the unit typed after the number
            num = number_with_unit(ctx, body, entry, where)
            if num is not None:
                entry.details["value_sent"] = value
                entry.value = value[:len(value) - len(entry.unit_original or "")].rstrip()
        if m is not None and num is not None:
            comparator = comparator_of(ctx, m.group(1), where)
            if comparator != "=":
                entry.comparator = comparator
            ctx.warnings.append(f"{where}: comparator in an {vtype} value without components, "
                                "read as SN")
    if num is None and says_no_number(value):
        text_not_number(ctx, entry, vtype, where)
        return
    if num is None:
        raise NormalizationError("OBX_BAD_NUMBER", f"{where}: not a number (value type {vtype})",
                                 where)
    entry.value_num = num


_WORDS_OF = re.compile(r"[^\W\d_]+")


def says_no_number(value: str) -> bool:
    """Whether a value that reads as no number holds a word saying why (tables/
    numeric_text_words.csv), case- and accent-insensitively, and no digit: words around a
    number ('positif 1:128', 'environ 4,5') may hold the number a reader needs, and still
    fail as a number garbled (OBX_BAD_NUMBER) rather than hide it in text."""
    if any(ch.isdigit() for ch in value):
        return False
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", value.lower())
                     if not unicodedata.combining(ch))
    return any(w in _numeric_text_words() for w in _WORDS_OF.findall(folded))


@cache
def _numeric_text_words() -> frozenset[str]:
    return frozenset(row["word"].strip() for row in table("numeric_text_words"))


def text_not_number(ctx: Ctx, entry: Entry, vtype: str, where: str) -> None:
    """A numeric value type whose OBX-5 holds words ('voir commentaire', 'non réalisé',
    'ininterprétable', 'hémolysé'): the LIS's template types the test NM, the biologist
    wrote why there is no number (one of the words of tables/numeric_text_words.csv). It is
    filed as text (value type ST, the type sent in ``details['value_type_sent']``) with a
    warning; it failed the whole message (OBX_BAD_NUMBER), every other result of it lost.
    Anything else that reads as no number ('4,1,2', 'abc') still fails: a number mistyped
    or garbled is no text to show. OBX-11 X or N ('no result obtained') never reaches
    here: the value is withheld (``withhold``)."""
    entry.value_type = "ST"
    entry.value_num = None
    entry.details["value_type_sent"] = vtype
    ctx.warnings.append(f"{where}: value type {vtype} but the value is text, not a number: "
                        "filed as text")


# A number then its unit in one value ('12,5 g/dL', '245 G/L', '1.2E+03 copies/mL'), as v2.3
# LIS print a result into OBX-5; the unit is read only when the units table knows it.
# A colony count '10^5 UFC/mL' (its '^' escaped: '10\S\5') is such a number: the power
# first, else '10' and the unit '^5 UFC/mL' were read
_NUMBER_THEN_UNIT = re.compile(r"((?:\d+(?:[.,]\d+)?\s*[x\u00d7*]\s*)?10\^[+-]?\d{1,2}"
                               r"|[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d{1,2})?)"
                               r"\s*([^\d\s.,+\-].*)")


def number_with_unit(ctx: Ctx, value: str, entry: Entry, where: str) -> float | None:
    """The number of a value that is a number followed by a unit the units table knows
    ('12,5 g/dL'), its unit set on ``entry`` (UCUM, as sent) and said; None otherwise.

    Why: older LIS write the unit into the value. Under NM the whole message failed
    (OBX_BAD_NUMBER) and every other result with it; under ST the haemoglobin was text, out
    of every trend. A unit that OBX-6 contradicts is refused by ``check_unit_in_value``.
    What follows the number must be a known unit ('2 croix', '3 colonies' stay what they
    were)."""
    m = _NUMBER_THEN_UNIT.fullmatch(value.strip())
    if m is None:
        return None
    unit, mapped = to_ucum(m.group(2))
    if not mapped:
        return None
    num = parse_number(ctx, m.group(1), where)
    if num is None:
        return None
    entry.unit, entry.unit_original = unit, m.group(2).strip()
    entry.details["unit_in_value"] = True
    ctx.warnings.append(f"{where}: unit written in the value after the number, read as the "
                        "number and its unit")
    return num


def composite_quantity(ctx: Ctx, obx: Segment, rep: str, entry: Entry, where: str) -> None:
    """CQ (v2.5 2.A.13): quantity (NM) ^ units (CE, its parts subcomponents:
    '12^mg&&UCUM', '5.4^mmol/L&millimole par litre&UCUM'), as US ELR and v2.6+ senders
    type a quantity that carries its own unit. It was kept as the composite text
    '5.4^mmol/L&&UCUM': no number, no unit, out of every trend. The number is read as an
    NM's is and the unit as OBX-6's is (UCUM, table mapping); an OBX-6 sent beside it must
    say the same unit (``check_unit_in_value``: OBX_UNIT_CONFLICT otherwise)."""
    msg = ctx.msg
    d = msg.delimiters
    c = comps(msg, rep)
    fill_numeric(ctx, text(msg, part(c, 1)), entry, where, "CQ")
    units = part(c, 2)
    if units.strip(d.subcomponent + " "):
        fill_unit(leaf_reader(d, obx.fields), units.split(d.subcomponent), entry, ctx.warnings,
                  obx, field=5)
        if entry.unit is not None:
            entry.details["unit_in_value"] = True


@cache
def comparator_signs() -> dict[str, str]:
    """'≤' -> '<=', '≥' -> '>=' (tables/comparator_signs.csv)."""
    return column_map("comparator_signs", "sign", "comparator")


def is_comparator(sent: str) -> bool:
    """Whether ``sent`` is an SN comparator, as HL7 writes it or as a sign or a reversed
    pair stands for one (tables/comparator_signs.csv)."""
    return sent in COMPARATORS or sent in comparator_signs()


def comparator_of(ctx: Ctx, sent: str, where: str) -> str:
    """The HL7 comparator (SN.1) ``sent`` is: itself, or the one a single sign stands for
    ('≤0,5', '≥ 60' from systems that print them), or the one a reversed pair stands for
    ('=<0,25', '=>32': microbiology systems print MICs so, MIMIC-IV's dilution comparisons
    hold '=>'); the whole message failed as OBX_BAD_NUMBER. Said in a warning."""
    comparator = comparator_signs().get(sent)
    if comparator is None:
        return sent
    how = "as one sign" if len(sent) == 1 else f"reversed ({sent})"
    ctx.warnings.append(f"{where}: comparator written {how}, read as {comparator}")
    return comparator
