"""Sections walked into entries: each entry of a section read as a clinical statement,
with the section's informants and masking, nested sections included."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from normalizers.cda.attribution import attributed, diagnosis_roles
from normalizers.cda.common import RESULT_SECTIONS, Ctx, section_code
from normalizers.cda.organizers import relative_of
from normalizers.cda.statements import statement_entries
from normalizers.cda_header import confidentiality_masking
from normalizers.cda_sources import informants
from normalizers.model import Entry
from parsers.cda.model import Section


def section_entries(section: Section, ctx: Ctx, outer_code: str,
                    about: dict[str, Any] | None = None,
                    authors: tuple = (), told_by: tuple = ()) -> Iterator[Entry]:
    """``outer_code``: see ``_section_content``; ``about``: whom the enclosing section is
    about when it names a subject (see ``statement_entries``); ``authors``: the nearest enclosing
    section's authors (see ``attributed``); ``told_by`` its informants (see
    ``_section_informants``)."""
    if section.subject is not None:
        about = relative_of(section.subject)
    authors = tuple(section.authors) or authors
    told_by = tuple(section.informants) or told_by
    content = _section_informants(
        _section_content(section, ctx, outer_code, about, authors, told_by), told_by, ctx)
    masking = _section_masking(section, ctx) if section.confidentiality_code is not None \
        else None
    if masking is None:
        yield from content
        return
    document_masking, ctx.masking = ctx.masking, masking
    try:
        yield from content
    finally:
        ctx.masking = document_masking


def _section_informants(made: Iterator[Entry], told_by: tuple, ctx: Ctx) -> Iterator[Entry]:
    """Who gave the information of a whole section (CDA R2 Section.informant: the mother
    for a child's history, the patient for his own, the referring doctor) is the
    informant of each of its entries that names none of its own (context conduction, as
    for its author): it was not read, a history the mother told looked like one the
    clinician saw. The entry's own informant, or its concern's, stays."""
    said = informants(list(told_by), ctx.patient_ids) if told_by else []
    for entry in made:
        if said and "informants" not in entry.details:
            entry.details["informants"] = [dict(s) for s in said]
        yield entry


def _section_masking(section: Section, ctx: Ctx) -> dict[str, bool] | None:
    """The masking of a section's entries when its own confidentialityCode (CDA R2 section
    confidentiality; HL7 DS4P privacy segmented sections: a 42 CFR Part 2 section R in a
    document N) says more than the document's: ignored, an addiction-treatment section was
    filed as visible as the rest. None when it changes nothing."""
    code = section.confidentiality_code.code if section.confidentiality_code else ""
    if not code:
        return None
    flags = confidentiality_masking(code)
    if flags is None:
        ctx.warnings.append(f"CDA_UNKNOWN_CONFIDENTIALITY: {section.path}: section "
                            f"confidentialityCode {code[:16]!r} is not in table "
                            "cda_confidentiality; the document's masking applies")
        return None
    merged = {**ctx.masking, **{k: v for k, v in flags.items() if v}}
    return merged if merged != ctx.masking else None


def _section_content(section: Section, ctx: Ctx, outer_code: str,
                     about: dict[str, Any] | None, authors: tuple = (),
                     told_by: tuple = ()) -> Iterator[Entry]:
    """``outer_code``: the code of the nearest enclosing results section, else of the top
    section. A results section makes results of what its subsections hold at any depth: a
    '30954-2 Résultats' nested in a letter's 'Synthèse' passed on the top section's code,
    and the results of its own subsections ('Biochimie', coded locally) were filed as
    plain observations, those of the same section one level higher as results."""
    code = section_code(section)
    results_section = code in RESULT_SECTIONS or outer_code in RESULT_SECTIONS
    inner_code = code if code in RESULT_SECTIONS else outer_code
    for entry in section.entries:
        if entry.act is not None:
            made = list(statement_entries(entry.act, section, ctx, results_section, None,
                                          about=about))
            if made:
                attributed(entry.act, made, authors, ctx)
                diagnosis_roles(entry.act, made, section)
            yield from made
    for sub in section.sections:
        yield from section_entries(sub, ctx, inner_code, about, authors, told_by)
