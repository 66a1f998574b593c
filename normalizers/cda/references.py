"""References between entries and to outside documents, media of the body, comments
and annotations."""

from __future__ import annotations

from typing import Any

from normalizers.cda.coded import coded_or_words, referenced_text
from normalizers.cda.common import BODY_TEXT_CAP, Ctx, is_placeholder, system_name
from normalizers.codes import LOINC
from normalizers.model import Entry
from parsers.cda.model import (
    ClinicalStatement,
    EntryRelationship,
    ObservationMedia,
    Organizer,
    Section,
)

INTERNAL_REFERENCE = "1.3.6.1.4.1.19376.1.5.3.1.4.4.1"  # IHE PCC (CI-SIS FR-Reference-interne)
EXTERNAL_REFERENCE = "1.3.6.1.4.1.19376.1.5.3.1.4.4"  # IHE PCC (CI-SIS FR-Reference-externe)
ENTRY_REFERENCES = frozenset({
    INTERNAL_REFERENCE,
    "2.16.840.1.113883.10.20.22.4.122",  # C-CDA Entry Reference
})
ENTRY_LINKS_KEPT = 20  # per entry: a reference list is no place for a document's worth


def entry_link(rel: EntryRelationship) -> dict[str, Any] | None:
    """What an entry reference nested in a statement names (IHE PCC internal reference,
    CI-SIS FR-Reference-interne, C-CDA Entry Reference 4.122: another entry of the same
    document, by its id): {type (the entryRelationship's typeCode: RSON, GEVL, SPRT...),
    id}; the key of the entry it names is added once the whole body is read
    (``resolve_entry_links``). It was skipped: a care plan's outcome lost the goal it
    evaluates, an intervention the concern it is for."""
    act = rel.act
    ids = [i.key for i in act.ids if i.root and not i.null_flavor] if act is not None else []
    if not ids:
        return None
    return {k: v for k, v in {"type": rel.type_code or None, "id": ids[0]}.items() if v}


def _entries_under(entries: list[Entry]) -> dict[str, list[str]]:
    """Each statement path -> the keys of the entries read from statements under it (one
    pass over the paths' steps: a hostile document's thousands of links cost no more)."""
    out: dict[str, list[str]] = {}
    for entry in entries:
        steps = entry.source_ref.split("/")
        for depth in range(2, len(steps)):
            held = out.setdefault("/".join(steps[:depth]), [])
            if len(held) <= ENTRY_LINKS_KEPT:
                held.append(entry.key)
    return out


def resolve_entry_links(entries: list[Entry], ctx: Ctx) -> None:
    """Each entry link gets the key of the entry of this document it names; one naming a
    statement that files no entry of its own but holds some (a problem concern, an
    organizer of measurements) gets theirs (``keys``). One naming nothing read here (an
    id mistyped, a statement not filed) keeps its id and is said once per document: what
    it points at is not in the dossier."""
    missing: list[str] = []
    under: dict[str, list[str]] | None = None  # statement path -> keys of entries under it
    for entry in entries:
        for link in entry.details.get("entry_links") or ():
            key = ctx.entry_ids.get(link["id"])
            path = ctx.statement_ids.get(link["id"]) if key is None else None
            if path and under is None:
                under = _entries_under(entries)
            held = [k for k in (under or {}).get(path or "", ())
                    if k != entry.key][:ENTRY_LINKS_KEPT]
            if key is not None and key != entry.key:
                link["key"] = key
            elif held:
                link["keys"] = held
            elif key is None:
                missing.append(entry.source_ref)
    if missing:
        ctx.warnings.append(f"CDA_ENTRY_REFERENCE_UNRESOLVED: {missing[0]}: entry reference "
                            "to an id no statement of this document files: kept as the id"
                            + (f" ({len(missing)} in the document)" if len(missing) > 1
                               else ""))
EXTERNAL_REFERENCES_KEPT = 20  # per statement (CDA allows any number)


def keep_references(details: dict[str, Any], act: ClinicalStatement,
                    section: Section) -> None:
    """details.external_references of an entry, with what ``act`` refers to."""
    kept = details.get("external_references") or []
    found = statement_references(act, kept, section)
    if found:
        details["external_references"] = [*kept, *found]


def statement_references(act: ClinicalStatement, kept: list,
                         section: Section | None = None) -> list[dict[str, Any]]:
    """What a statement's reference elements point at (CDA R2 act.reference: an
    externalDocument, externalAct, externalObservation or externalProcedure): the
    advance directives an observation is the summary of (CI-SIS DLU), the prescription a
    dispense fulfils (eDISP typeCode XCRPT), the guideline a problem refers to (IPS-FR), the
    report of a procedure (C-CDA). They were dropped: the dossier could not find the
    document a fact came from or rests on. Kept as {kind, type, id, code, text, url, set_id,
    version}: identifiers and where it is, never fetched. A reference into the narrative
    ('#document-ref-1', as the CI-SIS PPS writes it) is no location: the words it points at
    are the text. Bounded with those ``kept``."""
    out: list[dict[str, Any]] = []
    for ref in act.references[:max(0, EXTERNAL_REFERENCES_KEPT - len(kept))]:
        ids = [i.key for i in ref.ids if i.root and not i.null_flavor]
        url, text = ref.text_reference.strip(), ref.text
        if url.startswith("#"):
            text = text or (referenced_text(url, section) if section is not None else "")
            url = ""
        said: dict[str, Any] = {
            "kind": ref.kind or None, "type": ref.type_code or None,
            "id": ids[0] if ids else None,
            "code": ({"code": ref.code.code, "system": system_name(ref.code.code_system),
                      **({"display": ref.code.display} if ref.code.display else {})}
                     if ref.code is not None and ref.code.code else None),
            "text": text[:500] or None, "url": url[:500] or None,
            "set_id": ref.set_id.key if ref.set_id is not None and ref.set_id.root else None,
            "version": ref.version_number.strip()[:20] or None}
        said = {k: v for k, v in said.items() if v is not None}
        if {"id", "url", "code", "text"} & said.keys():  # something that finds it
            out.append(said)
    return out


def parent_result(parent: Entry) -> dict[str, str]:
    """The result a nested result is part of, as ``details['parent_result']`` says it for
    HL7v2 (OBR-26: code, value; part of the fact, dossiers/deposit.fact_of), with its key."""
    said = {"code": parent.code or "", "system": parent.system or "",
            "value": (parent.value or "")[:200], "key": parent.key}  # a finding's prose: its
    # start names it
    return {k: v for k, v in said.items() if v}


MEDIA_KEPT = 50  # images of the body no entry holds, listed on the document


def media_ref(media: ObservationMedia) -> dict[str, Any]:
    """Where an image or file of the body is (CDA observationMedia: CI-SIS
    FR-Image-illustrative, an electrophoresis curve in its battery): its media type, ID
    (what the narrative's renderMultiMedia points at), path and size; the content stays in
    the document (its attachment), never copied into details. It was dropped."""
    value = media.value
    out: dict[str, Any] = {"media_type": (value.media_type or None) if value else None,
                           "id": media.xml_id or None, "ref": media.path}
    if value is not None and value.representation == "B64" and value.text:
        out["bytes"] = len("".join(value.text.split())) * 3 // 4  # about: not decoded
    elif value is not None and value.reference:
        out["reference"] = value.reference[:500]
    return {k: v for k, v in out.items() if v is not None}


def procedure_reference(rel: EntryRelationship, entry: Entry, ctx: Ctx,
                        section: Section) -> None:
    """An internal reference a procedure nests: to the problem it was done for (RSON:
    details.reasons, as a reason observation is read) or to what it used (the device of
    an anaesthesia, CI-SIS: details.references), by its code. Both were dropped."""
    act = rel.act
    if act is None or act.code is None:
        return
    found = coded_or_words(act.code, ctx, section)
    if not found:
        return
    if rel.type_code == "RSON":
        if "not_done_reason" not in entry.details:
            entry.details.setdefault("reasons", []).append({
                "code": found.get("code"), "system": found.get("system"),
                "display": found.get("display") or found.get("text"), "value": None,
                "unit": None})  # its system too: a CIM-10 reason was exported uncoded
    else:
        entry.details.setdefault("references", []).append(found)


COMMENT_TEMPLATES = frozenset({
    "1.3.6.1.4.1.19376.1.5.3.1.4.2",  # IHE PCC Comment (CI-SIS FR-Commentaire-ER)
    "2.16.840.1.113883.10.20.22.4.64",  # C-CDA Comment Activity
    "2.16.840.1.113883.10.20.1.40",  # CCD Comment
    "2.16.840.1.113883.10.20.22.4.202",  # C-CDA Note Activity (a clinician's note: on what
    # nests it, else the section's narrative holds it; it was 'of a kind not read here')
})
ANNOTATION_COMMENT = "48767-8"  # LOINC Annotation comment: the code of all three


def is_comment(act: ClinicalStatement) -> bool:
    return act.kind == "act" and (
        not COMMENT_TEMPLATES.isdisjoint(act.template_roots) or
        (act.code is not None and act.code.code == ANNOTATION_COMMENT and
         system_name(act.code.code_system) == LOINC))


def comment_text(act: ClinicalStatement, section: Section) -> str:
    """The words of a comment act: its text, inline or the narrative it references."""
    text = act.text.strip() or referenced_text(act.text_reference, section).strip()
    return "" if is_placeholder(text) else text[:BODY_TEXT_CAP]


def organizer_comments(act: ClinicalStatement, section: Section) -> list[str]:
    """The comments an organizer (a battery) holds, in order: as components (CI-SIS) or
    entryRelationships."""
    nested = [rel.act for rel in act.entry_relationships if rel.act is not None]
    if isinstance(act, Organizer):
        nested = [*act.components, *nested]
    notes = [comment_text(a, section) for a in nested if is_comment(a)]
    return [n for n in notes if n]
