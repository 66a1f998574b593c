"""The entry every clinical statement starts from (kind, code, status, time, keys) and
the helpers that name a statement in words when its code does not."""

from __future__ import annotations

from typing import Any

from normalizers.cda.coded import mapped_code, original_text, other_codes, referenced_text
from normalizers.cda.common import Ctx, is_placeholder, placeholder_codes, section_code, system_name
from normalizers.cda.tables import result_statuses, status_of
from normalizers.cda.times import center_bounds, effective_time, iso_value, width_end
from normalizers.cda.values import TEXT_VALUE_SIZE
from normalizers.model import ENTRY_MAX, LAB_RESULT, Entry
from parsers.cda.model import CD, IVL, TS, ClinicalStatement, Section


def base_entry(act: ClinicalStatement, kind: str, section: Section, ctx: Ctx,
               parent_key: str | None) -> Entry:
    code = act.code
    coded = mapped_code(code, ctx, section) if code is not None else None
    own = next((i.key for i in act.ids if i.root and not i.null_flavor), "")
    key = f"cda|{ctx.set_key}|{kind}|{own or act.path}"
    if key in ctx.keys:  # two statements with one id: keep both
        key = f"{key}#{act.path}"
    ctx.keys.add(key)
    if own:
        ctx.entry_ids.setdefault(own, key)
    entry = Entry(type=kind, key=key, source_ref=act.path,
                  code=coded[0] if coded else None, system=coded[1] if coded else None,
                  display=coded[2] if coded else None, mapped=coded[3] if coded else True,
                  status=status_of(act.status_code), parent_key=parent_key or ctx.doc_key,
                  masking=dict(ctx.masking))
    if kind == LAB_RESULT:
        entry.status = result_statuses().get(act.status_code.strip(), entry.status)
    entry.effective = effective_time(act.effective_time, ctx) or None
    local = local_code(code, coded) if code is not None and coded else None
    if local:
        entry.details["local_code"] = local
    # the code's other translations (a C-CDA procedure coded nullFlavor OTH with its CPT
    # and its SNOMED CT: filed under the CPT, the SNOMED CT was dropped)
    others = [c for c in other_codes(code, coded) if local is None or
              (c.get("code"), c.get("system")) != (local.get("code"), local.get("system"))] \
        if code is not None and coded else None
    if others:
        entry.details["other_codes"] = others
    if section.code is not None and section.code.code:
        entry.details["section"] = section_code(section)
    if act.negation_ind == "true":
        entry.details["negated"] = True
    sites = getattr(act, "target_site_codes", None)
    if sites:  # where: body site, with laterality as a qualifier (C-CDA, IHE PCC)
        site = body_site(sites[0], section)
        if site:
            entry.details["target_site"] = site
    return entry


def local_code(code: CD, coded: tuple[str, str, str, bool]) -> dict[str, str] | None:
    """The sender's own code when the entry is filed under another one (its LOINC
    translation, a CCAM or SNOMED CT translation of a local act code, the per-source
    mapping table's LOINC): {code, system, display} as the HL7v2 path keeps OBX-3's local
    code in details.local_code. A lab's 'GLY' translated to 1558-6 lost 'GLY': the FHIR
    export could not give the sender's coding beside the LOINC, nor an admin find the
    result by the code the lab uses. None when the code is the one filed, or says nothing."""
    own = code.code.strip()
    if not own or own.lower() in placeholder_codes():
        return None
    system = system_name(code.code_system, code.code_system_name)
    if (own, system) == (coded[0], coded[1]):
        return None
    out = {"code": own, "system": system, "display": code.display}
    return {k: v for k, v in out.items() if v}


def body_site(site: CD, section: Section | None = None) -> dict[str, Any] | None:
    """A body site as {code, system, display} with its laterality (the values of its
    qualifiers: right, left) as ``qualifiers``; None when it has no code. The display is
    the code's displayName, else its originalText (read in the section narrative when a
    reference): like every other coded value's; the words were dropped, the export showed
    a bare SNOMED CT code."""
    if not site.code:
        return None
    out: dict[str, Any] = {"code": site.code, "system": system_name(site.code_system)}
    words = site.display.strip() or original_text(site, section).strip()
    if words:
        out["display"] = words
    laterality = [v.code for _, v in site.qualifiers if v is not None and v.code]
    if laterality:
        out["qualifiers"] = laterality
    return out


def uncoded_name(act: ClinicalStatement, section: Section) -> str:
    """The words an uncoded statement is named by: its code's originalText, else the
    statement's own text (inline, or the narrative its reference points at: C-CDA and IHE
    PCC's usual form for a free-text entry, '<code nullFlavor="UNK"/><text><reference
    value="#proc9"/></text>'; it was 'naming nothing' and not filed). Cut to the display's
    size: a long paragraph must not refuse the document."""
    words = original_text(act.code, section) if act.code is not None else ""
    if not words:
        words = act.text.strip() or referenced_text(act.text_reference, section).strip()
        words = "" if is_placeholder(words) else words
    return words[:ENTRY_MAX["display"]]


def set_period_end(act: ClinicalStatement, entry: Entry, ctx: Ctx) -> None:
    """The end of a procedure or a result over a period (effectiveTime low and high: an
    operation from 09:11 to 11:40, CI-SIS PPS chemotherapy from May to September, a 24-hour
    urine) in details.period_high; its start is the entry's time. The end was dropped."""
    period = act.effective_time
    if not isinstance(period, IVL):
        return
    end = period_end(period, entry.effective, ctx.warnings)
    if end:
        entry.details["period_high"] = end


def period_end(period: IVL, start: str | None, warnings: list[str]) -> str | None:
    """The end of a period that began at ``start`` (ISO, as ``effective_time`` read it): its
    high, else the end a start and a width say ('from 08:00 for 24 h': ``width_end``), or a
    center and a width (``center_bounds``: the start is center - width/2); None when it says
    no other end than its start. Shared by a statement's own period and by the organizer
    whose period its results without a time of their own inherit."""
    bounds = center_bounds(period, warnings)
    end = bounds[1] if bounds else None
    if isinstance(period.low, TS) and period.low.value:
        if not isinstance(period.high, TS) or not period.high.value:
            end = width_end(period, warnings) or end
        else:
            end = iso_value(period.high.value, warnings, period.high.path) or end
    return end if end and end != start else None


def statement_words(act: ClinicalStatement, section: Section, named: bool = False) -> str:
    """A statement's own text, inline or the narrative its reference points at, as what it
    observed; '' for none, a reference to nothing, a template's placeholder, or (unless
    ``named`` is accepted) the question's own name: the ANS's SDM-MR example points at
    the table cell 'Précision du mode de confirmation', the code's displayName, the
    answer being the next cell's '-'."""
    words = act.text.strip() or referenced_text(act.text_reference, section).strip()
    code = act.code
    names = {n.strip().casefold() for n in (code.display, code.original_text) if n} \
        if code is not None and not named else set()
    if is_placeholder(words) or words.casefold() in names:
        return ""
    return words[:TEXT_VALUE_SIZE]
