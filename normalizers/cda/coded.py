"""CD readers: a code resolved through the mapping tables, its other codes, its own words
(originalText and the narrative it references), catch-all codes, qualifiers as codes."""

from __future__ import annotations

import re

from normalizers.cda.common import (
    Ctx,
    all_translations,
    identifying_systems,
    is_placeholder,
    known_systems,
    placeholder_codes,
    system_name,
)
from normalizers.cda.tables import catch_all_codes
from normalizers.codes import LOINC, resolve_code
from normalizers.model import Entry
from parsers.cda.model import CD, Section


def qualify(code: CD, entry: Entry, key: str, ctx: Ctx, section: Section) -> None:
    """The qualifiers of a code or coded value (CD qualifier: name and/or value) into
    details[key], as [{name, value}] each {code, system, display} (or {text}). They say
    what was observed: CI-SIS asks one question per observation under one LOINC code
    ('mobility' qualified by 'fell in the last 6 months?'), or a side (laterality
    20228-3: right, left); dropped, two different results read as the same one."""
    found = []
    for name, value in code.qualifiers:
        item = {"name": coded_or_words(name, ctx, section) if name is not None else None,
                "value": coded_or_words(value, ctx, section) if value is not None else None}
        if item["name"] or item["value"]:
            found.append(item)
    if found:
        entry.details[key] = found


def coded_or_words(code: CD, ctx: Ctx, section: Section) -> dict[str, str] | None:
    """A code as {code, system, display}, else its words ({text}: CI-SIS lets a lab name a
    method it has no code for in originalText)."""
    coded = mapped_code(code, ctx, section)
    if coded:
        return {"code": coded[0], "system": coded[1], "display": coded[2]}
    text = original_text(code, section)
    return {"text": text} if text else None


VALUE_TRANSLATIONS_KEPT = 5  # a coded value's other codes kept (CDA allows any number)


def other_codes(value: CD, chosen: tuple[str, str, str, bool]) -> list[dict[str, str]]:
    """The codes of a coded value other than the one it is filed under: the same answer in
    another terminology ({code, system, display}: the ADICAP code of a pathology diagnosis
    beside its SNOMED CT one, CI-SIS CR-ACP; the lab's own code beside a standard one).
    They were dropped: only the chosen code was kept. Each with the value set it names
    (sdtc:valueSet, read on coded values only): the sent code's, when the entry is filed
    under its translation, stays with that code."""
    out: list[dict[str, str]] = []
    seen = {(chosen[0], chosen[1])}
    for c in (value, *all_translations(value)):
        if not c.code:
            continue
        system = system_name(c.code_system, c.code_system_name)
        if (c.code, system) in seen:
            continue
        seen.add((c.code, system))
        out.append({k: v for k, v in (("code", c.code), ("system", system),
                                      ("display", c.display), ("value_set", c.value_set[:64]),
                                      ("value_set_version", c.value_set_version[:40])) if v})
    return out[:VALUE_TRANSLATIONS_KEPT]


def mapped_code(code: CD, ctx: Ctx,
                section: Section | None = None) -> tuple[str, str, str, bool] | None:
    """(code, system, display, mapped): LOINC from the code or a translation, else the
    sender's code through the per-source mapping tables (as for HL7v2). The display falls
    back on the original text, read in the section narrative when it is only a '#ID'
    reference there (C-CDA's usual form)."""
    candidates = [code, *all_translations(code)]
    for c in candidates:
        if c.code and system_name(c.code_system) == LOINC:
            return (c.code, LOINC,
                    c.display or code.display or original_text(code, section), True)
    placeholders = placeholder_codes()
    main = next((c for c in candidates if c.code and c.code.lower() not in placeholders),
                None)
    if main is None:
        return None
    system = system_name(main.code_system, main.code_system_name)
    r = resolve_code(main.code, main.display, system, source=ctx.source, mappings=ctx.mappings)
    if r.system == LOINC:
        return r.code, r.system, r.display, True
    # not a result code: a diagnosis, a drug, an allergen is coded in its own system; it is
    # 'mapped' (a shared terminology) when that system is a known one, not a local code.
    # A local code whose translation is in a terminology that names things (SNOMED CT,
    # CIM-10, CCAM, ATC...; not NCI or HL7 attribute vocabularies) is filed under the
    # translation, as the LOINC of a result is (a local diagnosis code with its CIM-10
    # translation was filed as the local code, unmapped).
    known = system in known_systems()
    if not known and not r.mapped:
        identifying = identifying_systems()
        for t in candidates[1:]:
            if t.code and system_name(t.code_system, t.code_system_name) in identifying:
                main, system, known = t, system_name(t.code_system), True
                break
    display = main.display or (code.display if main is code or code.code.lower() not in
                               placeholders else "") or original_text(code, section)
    if _is_catch_all(system, main.code):
        display = _own_words(code, section) or display
    return main.code, system, display, known or r.mapped


def _is_catch_all(system: str, code: str) -> bool:
    """Whether a code only says 'other' (tables/cda_catch_all_codes.csv)."""
    exact, prefixes = catch_all_codes()
    return (system, code) in exact or any(
        system == s and (code == p or code.startswith(p + ".")) for s, p in prefixes)


_BRACKETED = re.compile(r"\(([^()]*)\)")


def _own_words(code: CD, section: Section | None) -> str:
    """The sender's words for an 'other' code (its originalText), unless they say nothing
    ('-') or are the template's ('Autre acte (texte libre)': a placeholder in brackets)."""
    words = original_text(code, section).strip()
    if not any(c.isalnum() for c in words) or \
            any(is_placeholder(f"({m})") for m in _BRACKETED.findall(words)):
        return ""  # '-', '(texte libre)': nothing said
    return words


def original_text(code: CD, section: Section | None) -> str:
    """The originalText of a coded value: as written inside it, else the narrative element
    its reference ('#ID') points at in the section text; '' when neither is there."""
    text = code.original_text or referenced_text(code.original_text_reference, section)
    return "" if is_placeholder(text) else text


def referenced_text(reference: str, section: Section | None) -> str:
    """The plain text of the narrative element a '#ID' reference points at in the section
    text; '' when there is no such reference or element. A bare ID without its '#'
    (reference value="poids": the ANS examples write a third of their references so, and
    senders copy them) is that element too when the section has one by that ID: its text
    was not found, a value or a name only in the narrative was lost."""
    if not reference or section is None:
        return ""
    # an xs:anyURI, whose blanks around it are no part of it (whiteSpace collapse): the
    # ' #pb1' of a template engine pointed at no element, its text was lost
    reference = reference.strip()
    key = reference[1:] if reference.startswith("#") else reference
    # the section's own narrative, else the element of that ID elsewhere in the document (a
    # parent or sibling section's: IDs are unique in a document; it read as no text)
    return section.narrative_ids.get(key) or section.document_ids.get(key, "")
