"""Interpretation flags (OBX-8, HL7 table 0078): codes, words sent in their place, and who coded
them."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from functools import cache

from normalizers.codes import system_name
from normalizers.fields import loc, part, text
from normalizers.lab.common import Ctx
from normalizers.model import Entry
from normalizers.tabledata import column_map, table
from parsers.hl7v2.er7 import Segment


def flag_code(ctx: Ctx, obx: Segment, sent: str) -> str:
    """An OBX-8 flag as its HL7 table 0078 code: sent in lower case ('h', 'hh', 'syn-r', as
    some hospital LIS write them) it was filed as sent, no code any reader knew
    (tables/abnormal_flags.csv). Anything else is kept as sent and said: a '*' or a '+'
    of a LIS printing its report, 'HIGH', is no interpretation any reader knows, and was
    filed as if it were one. The warning never quotes the flag (it tells of the result)."""
    codes = flag_codes()
    if not sent or sent in codes:
        return sent
    code = codes.get(sent.upper())
    if code is None:
        code = _flag_word(ctx, obx, sent)
    if code is None:
        ctx.warnings.append(f"{loc(obx, 8)}: an abnormal flag is no code of HL7 table 0078 "
                            "(interpretation codes): kept as sent")
        return sent
    return code


def _flag_word(ctx: Ctx, obx: Segment, sent: str) -> str | None:
    """The table 0078 code of a flag written as a French word ('Sensible', 'RÉSISTANT',
    'Haut': tables/hl7_flag_words.csv), said; None for any other text. Kept as sent, an
    antibiogram's 'Sensible' was an interpretation no reader (nor the same result of a CDA,
    coded S) knew."""
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", sent.strip().lower())
                     if not unicodedata.combining(ch))
    code = _flag_words().get(folded)
    if code is not None:
        ctx.warnings.append(f"{loc(obx, 8)}: an abnormal flag written as a word, read as its "
                            "code of HL7 table 0078")
    return code


@cache
def _flag_words() -> dict[str, str]:
    return column_map("hl7_flag_words", "word", "interpretation")


def coded_flags(ctx: Ctx, obx: Segment, raw8: str, lf: Callable[[str], str]) -> str | None:
    """OBX-8 with repetitions or components: each repetition a flag. v2.7 made OBX-8 a CWE
    (code ^ text ^ system ^ alternate code ^ alternate text ^ alternate system ...): the
    flag is the code in table 0078's system wherever it is ('HAUT^Haut^L^H^High^HL70078':
    the LIS code first, the bridge's mapping second), else the first code of the two
    triplets ('^^^HH^Critique haut^HL70078'), else the words ('^Élevé'), kept as its words
    and said. Only CWE.1 was read: the alternate triplet's flag and the words were lost.
    A flag repeated ('H~H', 'H~H^High^HL70078': a bridge adding the code its LIS already
    sent) is one interpretation: kept once, said; it was filed 'H,H', two interpretations
    FHIR exported twice."""
    d = ctx.msg.delimiters
    said: list[str] = []
    repeated = False
    for rep in raw8.split(d.repetition):
        c = rep.split(d.component)
        if len(c) == 1:
            flag = flag_code(ctx, obx, lf(c[0]))
        else:
            codes = [(lf(part(c, i)), lf(part(c, i + 2)).upper()) for i in (1, 4)]
            standard = [code for code, system in codes if code and system in _FLAG_SYSTEMS]
            flag = next(iter(standard), "") or next((code for code, _ in codes if code), "")
            if flag:
                flag = flag_code(ctx, obx, flag)
            else:
                flag = text(ctx.msg, part(c, 2)) or text(ctx.msg, part(c, 5)) \
                    or text(ctx.msg, part(c, 9))
                word = _flag_word(ctx, obx, flag) if flag else None
                if word is not None:
                    flag = word
                elif flag:
                    ctx.warnings.append(f"{loc(obx, 8)}: an abnormal flag sent as words, "
                                        "without a code: kept as its words")
        if flag in said:
            repeated = True
        elif flag:
            said.append(flag)
    if repeated:
        ctx.warnings.append(f"{loc(obx, 8)}: the same abnormal flag sent more than once: "
                            "kept once")
    return ",".join(said) or None


def flag_origins(ctx: Ctx, raw8: str, lf: Callable[[str], str], entry: Entry) -> None:
    """The sender's own flags of a coded OBX-8 and their coding systems, in the details as
    a CDA's are: 'HAUT^Haut^L^H^High^HL70078' was filed 'H', the LIS code 'HAUT' and its
    system 'L' lost; '+^Positif^99LAB' kept '+' without '99LAB'. ``interpretation_local``
    lists a sender's codes sent beside a table 0078 one (the flag filed), and
    ``interpretation_systems`` maps each code outside table 0078 to its system (our name
    for it, ``system_name``). Nothing is added for flags of table 0078 alone. Each local
    code is listed once, in the order sent: a repeated OBX-8 ('HAUT^^L^H^^HL70078' twice)
    or the same code in either triplet ('HAUT^^L^H^^HL70078~H^^HL70078^HAUT^^L') listed it
    twice beside the one 'H' filed (round 20), and FHIR paired no flag with its code."""
    d = ctx.msg.delimiters
    local: list[str] = []
    systems: dict[str, str] = {}
    for rep in raw8.split(d.repetition):
        c = rep.split(d.component)
        codes = [(lf(part(c, i)), lf(part(c, i + 2))) for i in (1, 4)]
        standard = any(code and system.upper() in _FLAG_SYSTEMS for code, system in codes)
        for code, system in codes:
            if code and system and system.upper() not in _FLAG_SYSTEMS:
                systems[code] = system_name(system)
                if standard and code not in local:
                    local.append(code)
    if local:
        entry.details["interpretation_local"] = local
    if systems:
        entry.details["interpretation_systems"] = systems


# The coding system of table 0078 as senders name it in a CWE (v2.7+ OBX-8)
_FLAG_SYSTEMS = frozenset({"HL70078", "HL7-0078", "0078"})


@cache
def flag_codes() -> dict[str, str]:
    return {row["code"]: row["code"] for row in table("abnormal_flags")}
