"""Laboratory results context: the performing lab, kits, exam, result statuses, verifier,
privacy annotations and the unit given as a child observation."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from normalizers.cda.coded import coded_or_words
from normalizers.cda.common import Ctx, system_name
from normalizers.cda.header import performing_party
from normalizers.cda.references import organizer_comments
from normalizers.cda.times import end_of, iso_value
from normalizers.cda.values import untyped
from normalizers.cda_header import confidentiality_masking
from normalizers.model import Entry
from normalizers.tabledata import column_map
from normalizers.units import to_ucum
from parsers.cda.model import CD, IVL, TS, ClinicalStatement, Observation, Organizer, Section


@dataclass(frozen=True, slots=True)
class Lab:
    """What the laboratory says of the results under an act, battery or isolate: who
    performed them (``performer``, as Entry.performer) and who validated them
    (``validated_by``: ids and time), from the nearest act, battery or result naming them;
    the comments on the whole exam (``comments``: a comment act under the results act of a
    CR-BIO, 'commentaire sur l'ECBU', or under the act of an Italian CDA2 lab report), for
    every result of it; the status its report gives them (``status``: a C-CDA Laboratory
    Result Status among the organizer's components, as (code, system, entry status))."""

    performer: str | None = None
    validated_by: dict[str, Any] | None = None
    comments: tuple[str, ...] = ()
    status: tuple[str, str, str] | None = None
    # the test kits or instruments the act names for all its results (CI-SIS BIO-TROD: the
    # rapid test device, its UDI, on the results act), each as a result's own
    devices: tuple[dict[str, Any], ...] = ()


VERIFIER = "AUTHEN"  # IHE LAB Laboratory Result Verifier / CI-SIS FR-Participant


def device_kits(act: ClinicalStatement, ctx: Ctx, section: Section) -> list[dict[str, Any]]:
    """The devices a statement names as participants (typeCode DEV: an analyser, a test
    kit), each coded or in words, with the device's own ids when it has some (a UDI, GS1
    2.51.1.1: which kit and lot, CI-SIS BIO-TROD)."""
    out = []
    for part in act.participants:
        entity = part.entity
        if part.type_code != "DEV" or entity is None or entity.player_code is None:
            continue
        kit = coded_or_words(entity.player_code, ctx, section)
        if not kit:
            continue
        ids = [i.key for i in entity.ids if i.root and not i.null_flavor]
        out.append({**kit, "ids": ids[:5]} if ids else kit)
    return out


def lab_of(act: ClinicalStatement, inherited: Lab | None,
           warnings: list[str]) -> Lab | None:
    """The laboratory parties of ``act``: its own performer and verifier (participant
    AUTHEN: the biologist who validated the results, with when), else those of what holds
    it. The validation was dropped."""
    if not act.performers and not act.participants:  # most statements: nothing to read
        return inherited
    performer = _performing_lab(act)
    validator = next((v for v in (_verifier(p, warnings) for p in act.participants) if v),
                     None)
    if performer is None and validator is None:
        return inherited
    base = inherited or Lab()
    return replace(base, performer=performer or base.performer,
                   validated_by=validator or base.validated_by)


def exam_of(act: ClinicalStatement, lab: Lab | None, ctx: Ctx,
            section: Section) -> Lab | None:
    """``lab`` with what an act or organizer that is no entry of its own says of all the
    results it holds: its comments (not a battery's: those are its panel's) and the C-CDA
    Laboratory Result Status among its components. Both were dropped (the comment stayed
    in the narrative only; the status was skipped and a preliminary result filed final)."""
    notes = organizer_comments(act, section) if not (isinstance(act, Organizer) and
                                                     act.class_code == "BATTERY") else []
    status = lab_status(act.components, ctx) if isinstance(act, Organizer) else None
    if not notes and status is None:
        return lab
    base = lab or Lab()
    return replace(base, comments=base.comments + tuple(notes),
                   status=status or base.status)


REPORT_STATUS_TEMPLATE = "2.16.840.1.113883.10.20.22.4.418"  # C-CDA Laboratory Result Status
RESULT_STATUS_TEMPLATE = "2.16.840.1.113883.10.20.22.4.419"  # C-CDA Laboratory Observation
# Result Status. Their value: HL7 v2 table 0123 (OBR-25, the report) and 0085 (OBX-11, the
# result), read through the tables the HL7v2 path uses for OBR-25 and OBX-11.
_LAB_STATUS_TABLES = {REPORT_STATUS_TEMPLATE: "report_status",
                      RESULT_STATUS_TEMPLATE: "result_status"}
_STATUS_SYSTEM_TABLES = {"2.16.840.1.113883.18.51": "report_status",  # HL7 table 0123
                         "2.16.840.1.113883.12.123": "report_status",  # its v2 table OID
                         "2.16.840.1.113883.18.34": "result_status",  # HL7 table 0085
                         "2.16.840.1.113883.12.85": "result_status"}
# What a report status says of none of its results in particular: not applied to them
# (some results available, unknown order or patient); the results keep their statusCode's.
_NOT_A_RESULT_STATUS = frozenset({"partial", "unknown"})


def lab_status(nested: list[ClinicalStatement],
               ctx: Ctx) -> tuple[str, str, str] | None:
    """(code, code system, entry status) of the C-CDA laboratory status observation among
    ``nested`` (an organizer's components: 4.418, the report's; a result's entryRelationship
    statements: 4.419, its own), None when there is none or it says nothing of a result."""
    tables = _LAB_STATUS_TABLES
    for obs in nested:
        if not isinstance(obs, Observation) or not obs.values:
            continue
        table_name = ""
        for t in obs.template_ids:  # a plain loop: every result of a battery passes here
            if t.root in tables:
                table_name = tables[t.root]
                break
        if not table_name:
            continue
        value = untyped(obs.values[0])
        if not isinstance(value, CD) or not value.code:
            continue
        table_name = _STATUS_SYSTEM_TABLES.get(value.code_system, table_name)
        status = column_map(table_name, "code", "status").get(value.code.strip().upper())
        if status is None:
            ctx.warnings.append(f"CDA_UNKNOWN_RESULT_STATUS: {obs.path}: laboratory status "
                                f"{value.code[:8]!r} is not in table {table_name}; the "
                                "statusCode's kept")
            return None
        if status in _NOT_A_RESULT_STATUS:
            return None
        return value.code, system_name(value.code_system), status
    return None


def _verifier(part, warnings: list[str]) -> dict[str, Any] | None:  # noqa: ANN001
    if part.type_code != VERIFIER or part.entity is None:
        return None
    out: dict[str, Any] = {"ids": [i.key for i in part.entity.ids if i.root]}
    when = part.time
    # an interval: when it ended, a width's end computed ('around 14:00 over 30 min' was
    # read as its center)
    iso = end_of(when, warnings) if isinstance(when, IVL) else \
        iso_value(when.value) if isinstance(when, TS) and when.value else None
    if iso:
        out["time"] = iso
    out = {k: v for k, v in out.items() if v}
    return out or None


def _performing_lab(act: ClinicalStatement) -> str | None:
    """Who performed a result: the performer (IHE LAB Laboratory Performer, CI-SIS
    FR-Laboratoire-executant) of the observation or of the act, battery or isolate that
    holds it, as the HL7v2 path files OBX-23: the organization's name, else its id, else
    the person's id. A subcontracting laboratory's results read as the author's own."""
    for part in act.performers:
        entity = part.entity
        if entity is None:
            continue
        org = entity.organization
        names = [n for n in org.names if n] if org is not None else []
        ids = [i.key for i in (org.ids if org is not None else []) if i.root] or \
            [i.key for i in entity.ids if i.root]
        found = names[0] if names else ids[0] if ids else ""
        if found:
            return found[:300]
    return None


PRIVACY_ANNOTATION = "2.16.840.1.113883.3.3251.1.4"  # HL7 DS4P Privacy Annotation organizer
CONFIDENTIALITY_OBSERVATION = "2.16.840.1.113883.3.445.12"  # its confidentiality observation


def privacy_annotation(act: ClinicalStatement) -> dict[str, bool]:
    """The masking a DS4P Privacy Annotation nested in a statement gives it (its
    confidentiality security observation's value: R, V), through the table of the
    document's confidentialityCode. The annotation was skipped, and the statement filed
    as visible as the rest of its document."""
    flags: dict[str, bool] = {}
    for rel in act.entry_relationships:
        organizer = rel.act
        if not isinstance(organizer, Organizer) or \
                PRIVACY_ANNOTATION not in organizer.template_roots:
            continue
        for obs in organizer.components:
            if isinstance(obs, Observation) and obs.values and \
                    CONFIDENTIALITY_OBSERVATION in obs.template_roots:
                value = untyped(obs.values[0])
                found = confidentiality_masking(value.code) if isinstance(value, CD) and \
                    value.code else None
                flags.update({k: v for k, v in (found or {}).items() if v})
    return flags


def performer_of(act: ClinicalStatement) -> dict[str, Any] | None:
    """Who gave a vaccine or did a procedure (its performer: IHE PCC, CI-SIS FR-Vaccination,
    C-CDA; the primary one first), as ids: the person's (RPPS, NPI, GLN) and the
    organization's, with its name. It was dropped: a vaccination filed without its
    vaccinator. Not Entry.performer: dossiers/access.py reads that one as authorship (who
    may withdraw an entry), and the vaccinator did not write the document."""
    parts = sorted(act.performers, key=lambda p: p.type_code not in ("PPRF", "PRF", ""))
    return next((found for found in map(performing_party, parts) if found), None)


UNITS_CONCEPT = "246514001"  # SNOMED CT 'units': C-CDA puts a result's unit in such a child


def unit_of(act: ClinicalStatement, entry: Entry) -> bool:
    """True when ``act`` is the 'units' observation C-CDA nests in a result whose value
    cannot carry it (an ST 'Unable to calculate'; a unit translated from a non-UCUM one):
    its UCUM unit then goes on the result when the value gave none."""
    if not isinstance(act, Observation) or act.code is None or \
            act.code.code != UNITS_CONCEPT or system_name(act.code.code_system) != "SNOMED-CT":
        return False
    unit = act.values[0] if act.values else None
    if isinstance(unit, CD) and unit.code and not entry.unit:
        entry.unit_original = unit.original_text or unit.code
        entry.unit = to_ucum(unit.code).unit
    return True
