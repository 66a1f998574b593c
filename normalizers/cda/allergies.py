"""Allergy and intolerance observations: the allergen (participant or value) and the
reactions they caused."""

from __future__ import annotations

from typing import Any

from normalizers.cda.coded import mapped_code, original_text, referenced_text
from normalizers.cda.common import Ctx
from normalizers.cda.qualifiers import qualifier_values
from normalizers.cda.times import effective_time
from normalizers.cda.values import untyped
from normalizers.model import Entry
from parsers.cda.model import CD, Observation, Section


def allergen(act: Observation, entry: Entry, ctx: Ctx, section: Section) -> None:
    """The substance of an allergy: participant typeCode CSM / participantRole /
    playingEntity / code (C-CDA, IHE PCC, CI-SIS alike). The kind of reaction ('drug
    allergy', 'food intolerance') is the value in C-CDA (code ASSERTION), the code in IHE
    PCC / CI-SIS (value: a description, often empty). A coded substance becomes the
    entry's code, the kind going to details.allergy_type."""
    for part in act.participants:
        if part.type_code != "CSM" or part.entity is None or part.entity.player_code is None:
            continue
        agent = part.entity.player_code
        coded = mapped_code(agent, ctx, section)
        if coded and coded[0]:
            kind = (entry.code, entry.system, entry.display) if entry.code else None
            if kind is None and act.code is not None and act.code.code and \
                    act.code.code != "ASSERTION":
                own = mapped_code(act.code, ctx, section)
                kind = own[:3] if own else None
            if kind is not None:
                entry.details["allergy_type"] = dict(zip(("code", "system", "display"), kind,
                                                         strict=True))
            if entry.value is None and entry.display and not entry.code:
                entry.value = entry.display  # an uncoded description stays the value
            entry.code, entry.system, entry.display, entry.mapped = coded
        else:
            names = part.entity.player_names
            text = original_text(agent, section) or agent.display or (names[0] if names
                                                                      else "")
            if text:
                entry.details["allergen_text"] = text
        break
    if entry.code is None and act.code is not None and act.code.code and \
            act.code.code != "ASSERTION":
        # no substance coded and a description in words only (IHE PCC / CI-SIS: the code
        # is the kind, 'allergie alimentaire'; the CSE-CS24 example's value says 'Oui'):
        # the allergy was filed uncoded, named by its description ('Oui'); it is the kind
        # it says, the description stays its value
        own = mapped_code(act.code, ctx, section)
        if own and own[0]:
            entry.code, entry.system, entry.display, entry.mapped = own
    # every manifestation, also one written as a problem entry (IHE PCC, CI-SIS: the
    # reaction is an FR-Probleme under MFST; the allergy lost it)
    # A manifestation the sender negates ('no urticaria': negationInd, as the CI-SIS
    # LDL-EES and ANEST-CR-CPA examples send it) is no reaction: it was listed among them
    # (and exported as one); it is said apart, in absent_reactions
    said = [(rel.act.negation_ind == "true", allergy_reaction(rel.act, ctx, section))
            for rel in act.entry_relationships
            if rel.type_code == "MFST" and isinstance(rel.act, Observation)]
    reactions = [r for negated, r in said if r and not negated]
    absent = [r for negated, r in said if r and negated]
    if reactions:
        entry.details["reactions"] = reactions
    if absent:
        entry.details["absent_reactions"] = absent


def allergy_reaction(act: Observation, ctx: Ctx, section: Section) -> dict[str, Any] | None:
    """A reaction (manifestation) of an allergy: its coded value, else its words, its
    severity (C-CDA R2.1 Severity Observation 4.8 nested in the reaction, no longer in the
    allergy: 'hives, moderate', 'anaphylaxis, severe'; it was dropped) and when it began
    (its effectiveTime: its low, else its point)."""
    value = untyped(act.values[0]) if act.values else None
    coded = mapped_code(value, ctx, section) if isinstance(value, CD) else None
    out: dict[str, Any]
    if coded and coded[0]:
        out = {"code": coded[0], "system": coded[1], "display": coded[2]}
    else:
        text = (original_text(value, section) if isinstance(value, CD) else "") or \
            act.text or referenced_text(act.text_reference, section)
        if not text:
            return None
        out = {"text": text}
    if act.entry_relationships:
        severity = qualifier_values(act, ctx, section).get("severity")
        if severity:
            out["severity"] = severity
    onset = effective_time(act.effective_time, ctx) if act.effective_time is not None else ""
    if onset:  # when it happened (hives in 2010, anaphylaxis in 2019): dropped
        out["onset"] = onset
    return out
