"""Coded values (CE, CWE, CNE, CF in OBX-5) and whether a value codes anything."""

from __future__ import annotations

from normalizers.codes import text_in_system_slot
from normalizers.fields import comps, loc, part, reps, sub, text
from normalizers.lab.common import WORDS, Ctx, name_in_system_slot
from normalizers.model import Entry
from parsers.hl7v2.er7 import Message, Segment


def fill_coded(ctx: Ctx, obx: Segment, entry: Entry) -> None:
    """CE / CWE values: each repetition with its alternate triplet (CE.4-6) and, from v2.5,
    its original text (CWE.9). The value shown is the first of text, code, alternate text,
    alternate code, original text: public-health senders code the alternate triplet only
    ('^^^260373001^Detected^SCT') or send the original text alone, which was lost. A text
    sent in the coding-system slot ('POS^^Positif', as the same French LIS writes OBX-3)
    is the text (``name_in_system_slot``)."""
    msg = ctx.msg
    coded: list[dict[str, str]] = []
    system_only: list[str] = []
    for n, rep in enumerate(reps(msg, obx, 5), 1):
        if not rep.strip(msg.delimiters.component + " "):
            continue  # an empty repetition ('A^A^L~') codes nothing: it made the value 'A; '
        if not _rep_codes_anything(msg, rep):
            system_only.append(str(n))  # '^^99LAB~POS^Positif^L': it made the value '; Positif'
            continue
        c = comps(msg, rep)
        if len(c) == 1 and WORDS.search(c[0].strip()):
            # 'Escherichia coli', 'Pas de germe isolé': words alone where a CWE was due (a SIL
            # typing its free text CE). No code: its original text (CWE.9). Filed as the
            # code, it was a code no coding system has, exported as one.
            coded.append({"code": "", "display": "", "system": "",
                          "original_text": text(msg, c[0])})
            continue
        item = {"code": sub(msg, part(c, 1), 1), "display": text(msg, part(c, 2)),
                "system": sub(msg, part(c, 3), 1) or sub(msg, part(c, 14), 1)}  # 14: its OID
        if item["system"] and not item["display"] and text_in_system_slot(item["system"]):
            item["display"], item["system"] = name_in_system_slot(ctx, obx, 5, part(c, 3))
        if part(c, 4) or part(c, 5):
            item.update(alt_code=sub(msg, part(c, 4), 1), alt_display=text(msg, part(c, 5)),
                        alt_system=sub(msg, part(c, 6), 1) or sub(msg, part(c, 17), 1))
        original = text(msg, part(c, 9))
        if original:
            item["original_text"] = original
        coded.append(item)
    if system_only:
        ctx.warnings.append(f"{loc(obx, 5)}: repetition {', '.join(system_only)} holds a "
                            "coding system and no code nor text: left out of the value")
    if not coded:
        return
    entry.value = "; ".join(
        i["display"] or i["code"] or i.get("alt_display") or i.get("alt_code")
        or i.get("original_text", "") for i in coded) or None
    entry.details["coded_value"] = coded[0] if len(coded) == 1 else coded


class NothingCoded(Exception):
    """An OBX whose coded value (CE, CWE, CNE) names a coding system and nothing else: its
    message is the ledger warning."""


# CE / CWE components that say something: code, text, alternate code and text, original text
_CODED_SAYING = (1, 2, 4, 5, 9)


def _rep_codes_anything(msg: Message, rep: str) -> bool:
    """Whether one CE/CWE repetition holds a code or a text, not only coding systems.

    '^^L' or '^^99LAB' (a LIS's empty coded result, its table named and nothing picked from
    it) was filed as a coded result of empty code: a value no reader can show. A name sent in
    the coding-system slot ('^^Positif') is a text (``text_in_system_slot``)."""
    c = comps(msg, rep)
    if any(text(msg, part(c, i)).strip() for i in _CODED_SAYING):
        return True
    return text_in_system_slot(sub(msg, part(c, 3), 1))


def codes_anything(msg: Message, obx: Segment) -> bool:
    """Whether OBX-5, a coded value, holds a code or a text in any repetition (or nothing at
    all). Only the rare value starting with a delimiter is checked further: a plain code is
    read at once."""
    raw5 = obx.raw(5)
    d = msg.delimiters
    if raw5[:1] not in (d.component, d.repetition, d.subcomponent, " "):
        return True  # its first repetition starts with a code
    filled = [rep for rep in reps(msg, obx, 5) if rep.strip(d.component + " ")]
    # '^^~' holds nothing at all, as an empty OBX-5: filed so, as before
    return not filled or any(_rep_codes_anything(msg, rep) for rep in filled)
