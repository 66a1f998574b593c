"""Structured numerics (SN, v2.5 2.A.71): comparator, numbers, separator, ratios and ranges."""

from __future__ import annotations

import re

from normalizers.fields import part, text
from normalizers.lab.common import NUMBER, Ctx
from normalizers.lab.numeric import (
    COMPARATORS,
    COMPARED,
    EXPONENT_DIGITS,
    POWER_OF_TEN,
    comparator_of,
    comparator_signs,
    fill_numeric,
    number_with_unit,
    parse_number,
    says_no_number,
    text_not_number,
)
from normalizers.model import Entry, NormalizationError

SN_SEPARATORS = frozenset({"-", "+", "/", ".", ":"})  # SN.3 (v2.5 2.A.71)


# A titre or a range typed as one text where SN wants its parts ('1:128', '1/64', '10-20'):
# unsigned numbers only, so that no signed number ('-5') is ever read as a range
_GLUED_RATIO = re.compile(r"\s*(\d+(?:[.,]\d+)?)\s*([:/-])\s*(\d+(?:[.,]\d+)?)\s*")


def structured_numeric(ctx: Ctx, c: list[str], entry: Entry, where: str) -> None:
    """SN = comparator ^ num1 ^ separator/suffix ^ num2. '<^0.5' -> comparator '<', 0.5;
    ratios and ranges ('1^:^128', '^10^-^20') are kept as text."""
    msg = ctx.msg
    if len(c) == 1:
        glued = _GLUED_RATIO.fullmatch(text(msg, c[0]))
        if glued is None:
            # No component at all: '182' or '<0.5' where '^182' or '<^0.5' was due. What a
            # sender means is clear, and it is what an NM value may hold: read the same way.
            fill_numeric(ctx, text(msg, c[0]), entry, where, "SN")
            return
        c = ["", *glued.groups()]
        ctx.warnings.append(f"{where}: SN ratio or range written without components, read as "
                            "num1^separator^num2")
    comparator, num1 = text(msg, part(c, 1)), text(msg, part(c, 2))
    separator, num2 = text(msg, part(c, 3)), text(msg, part(c, 4))
    if num1 and not separator and not num2 and (glued := _GLUED_RATIO.fullmatch(num1)):
        # '^1:128', '<^1:10': the ratio (or range) typed whole into num1
        num1, separator, num2 = glued.groups()
        ctx.warnings.append(f"{where}: SN ratio or range written whole in num1, read as "
                            "num1^separator^num2")
    if comparator in comparator_signs():  # '≤^0.25'
        comparator = comparator_of(ctx, comparator, where)
    if comparator and comparator not in COMPARATORS and len(c) < 4 \
            and num1 in SN_SEPARATORS and NUMBER.fullmatch(comparator):
        # '1^:^128' or '1^-^5' where '^1^:^128' was due (the empty comparator left out): a
        # number before a separator is num1, as unambiguous as a plain '182' is
        comparator, num1, separator, num2 = "", comparator, num1, separator
        ctx.warnings.append(f"{where}: SN without its comparator component, read as "
                            "num1^separator^num2")
    if not comparator and not num2 and num1:
        shifted = _comparator_in_num1(num1, separator)
        if shifted is not None:
            # '^>^100000' (one component too far), '^<=0.25' (glued to its number): the
            # comparator in num1's place. Read as such: the count or MIC is unambiguous, and
            # the whole message failed OBX_BAD_NUMBER with it
            comparator, num1 = shifted
            separator = ""
            if comparator in comparator_signs():
                comparator = comparator_of(ctx, comparator, where)
            ctx.warnings.append(f"{where}: SN comparator sent in the num1 component, read as "
                                "comparator^num1")
    if comparator and comparator not in COMPARATORS:
        raise NormalizationError("OBX_BAD_NUMBER", f"{where}: unknown SN comparator", where)
    if num2 and not separator:
        # '^1^^128': num2 comes after a separator (v2.5 2.A.71), which says whether the two
        # numbers are a ratio (a titre 1:128) or a range. Glued, the value was '1128'.
        raise NormalizationError("OBX_BAD_NUMBER", f"{where}: SN with a second number (num2) "
                                 "but no separator/suffix (':' or '/' of a ratio, '-' of a "
                                 "range): what the two numbers say is not told", where)
    if separator and separator not in SN_SEPARATORS and _sn_power(ctx, comparator, num1,
                                                                  separator, num2, entry, where):
        return
    shown = comparator if comparator != "=" else ""
    entry.value = f"{shown}{num1}{separator}{num2}" or None
    parsed = [parse_number(ctx, n, where) if n else None for n in (num1, num2)]
    if num1 and parsed[0] is None and not (separator or num2):
        # '<^5 mg/L': the unit typed after the number, as under NM ('number_with_unit')
        parsed[0] = number_with_unit(ctx, num1, entry, where)
        if parsed[0] is not None:
            entry.details["value_sent"] = entry.value
            entry.value = f"{shown}{num1[:len(num1) - len(entry.unit_original or '')].rstrip()}"
    if num1 and parsed[0] is None and not (comparator or separator or num2) \
            and says_no_number(num1):  # '^Voir commentaire': as under NM
        entry.value = num1
        text_not_number(ctx, entry, "SN", where)
        return
    for n, number in zip((num1, num2), parsed, strict=True):
        if n and number is None:
            raise NormalizationError("OBX_BAD_NUMBER", f"{where}: not a number (value type SN)",
                                     where)
    if separator or num2:
        entry.details["sn"] = {"comparator": comparator, "num1": num1, "separator": separator,
                               "num2": num2}
        return
    if num1:
        entry.value_num = parsed[0]  # parsed once: a decimal comma is warned about once
        entry.comparator = shown or None


def _comparator_in_num1(num1: str, separator: str) -> tuple[str, str] | None:
    """(comparator, number) of an SN whose comparator is in num1's place: num1 a comparator
    and the number after it ('^>^100000'), or num1 a comparator glued to a number with
    nothing after ('^<=0.25'); None for anything else."""
    if num1 in COMPARATORS or num1 in comparator_signs():
        return (num1, separator) if separator and _NUMBER_LIKE.fullmatch(separator) else None
    if separator:
        return None
    m = COMPARED.fullmatch(num1)
    return (m.group(1), m.group(2).strip()) if m is not None else None


_NUMBER_LIKE = re.compile(r"\s*[+-]?[\d.,][\d.,\s\u00a0\u202f]*(?:[eE][+-]?\d{1,2})?\s*")


def _sn_power(ctx: Ctx, comparator: str, num1: str, separator: str, num2: str, entry: Entry,
              where: str) -> bool:
    """An SN whose separator/suffix (SN.3) is none of HL7's (+ - / . :). A power of ten
    ('>^10^5', a colony count typed with its '^' unescaped; '^1^E^5') is the number it
    spells: it was filed as the text '>105', a thousand times less than meant, without a
    word. True when read so; else False, and the value is kept as sent, with a warning."""
    power = None
    if not num2 and EXPONENT_DIGITS.fullmatch(separator):
        m = POWER_OF_TEN.fullmatch(num1)
        if m is not None and not m.group(1):
            mantissa = float(m.group(2).replace(",", ".")) if m.group(2) else 1.0
            power = float(f"{mantissa!r}e{int(separator)}")
    elif separator in ("E", "e") and EXPONENT_DIGITS.fullmatch(num2):
        number = parse_number(ctx, num1, where) if num1 else None
        if number is not None:
            power = float(f"{number!r}e{int(num2)}")
    if power is None:
        ctx.warnings.append(f"{where}: SN separator/suffix is none of + - / . : (HL7 v2.5 "
                            "2.A.71), the value is kept as sent")
        return False
    shown = comparator if comparator != "=" else ""
    entry.value = f"{shown}{num1}{'^' if num2 == '' else ''}{separator}{num2}"
    entry.value_num = power
    entry.comparator = shown or None
    ctx.warnings.append(f"{where}: SN read as a power of ten (separator/suffix is no HL7 "
                        "separator)")
    return True
