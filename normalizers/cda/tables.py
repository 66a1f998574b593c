"""Mapping tables (tables/*.csv) the readers look up, loaded once, and result statuses."""

from __future__ import annotations

from functools import cache

from normalizers.tabledata import column_map, table


@cache
def document_type_systems() -> frozenset[str]:
    """The code systems of the DMP's document types (tables/cda_document_type_systems.csv,
    JDV_J07): a VSM typed SYNTH (TRE_A05) was an unmapped local code, failed CODE_UNMAPPED
    for a source whose codes must be mapped and listed '(unmapped)' in the dossier."""
    return frozenset(row["system"] for row in table("cda_document_type_systems"))


@cache
def national_person_roots() -> frozenset[str]:
    """The roots of professionals' national ids (tables/cda_national_person_ids.csv)."""
    return frozenset(row["root"] for row in table("cda_national_person_ids"))


@cache
def diagnosis_role_table() -> dict[tuple[str, str], str]:
    return {(row["kind"], row["id"]): row["role"] for row in table("cda_diagnosis_roles")}


@cache
def document_statuses() -> dict[tuple[str, str], str]:
    """(value's system, code) -> document status (tables/cda_document_statuses.csv)."""
    return {(row["system"], row["code"]): row["status"]
            for row in table("cda_document_statuses")}


@cache
def result_statuses() -> dict[str, str]:
    """A laboratory result's ActStatus -> its result status where they differ
    (tables/cda_result_statuses.csv: active -> preliminary)."""
    return column_map("cda_result_statuses", "status_code", "status")


@cache
def group_organizers() -> frozenset[str]:
    return frozenset(row["template"] for row in table("cda_group_organizers"))


@cache
def instruction_sections() -> frozenset[str]:
    """The sections whose own Instruction entries are plans
    (tables/cda_instruction_sections.csv: plan of care, instructions, discharge)."""
    return frozenset(row["code"] for row in table("cda_instruction_sections"))


@cache
def organism_codes() -> frozenset[tuple[str, str]]:
    return frozenset((row["system"], row["code"])
                     for row in table("organism_identification_codes"))


@cache
def template_units() -> dict[tuple[str, str], str]:
    """(templateId, unit as sent, lower case) -> the UCUM unit it is read as."""
    return {(r["template"], r["sent"].strip().lower()): r["unit"]
            for r in table("cda_template_units")}


@cache
def assertion_questions() -> dict[str, tuple[str, str, str]]:
    return {row["template"]: (row["code"], row["system"], row["display"])
            for row in table("cda_assertion_questions")}


@cache
def interpretation_codes() -> dict[tuple[str, str], str]:
    """(code system OID, code) -> ObservationInterpretation (cda_interpretation_codes.csv)."""
    return {(row["system"], row["code"]): row["interpretation"]
            for row in table("cda_interpretation_codes")}


@cache
def repeat_keys() -> dict[str, str]:
    return column_map("cda_repeat_numbers", "template", "key")


@cache
def medication_parts() -> dict[str, tuple[str, str]]:
    return {row["template"]: (row["key"], row["reads"])
            for row in table("cda_medication_parts")}


@cache
def catch_all_codes() -> tuple[frozenset[tuple[str, str]], tuple[tuple[str, str], ...]]:
    """(exact, prefix) (system, code) pairs of tables/cda_catch_all_codes.csv."""
    rows = table("cda_catch_all_codes")
    return (frozenset((r["system"], r["code"]) for r in rows if r["match"] == "exact"),
            tuple((r["system"], r["code"]) for r in rows if r["match"] == "prefix"))


_STATUSES = {"completed": "final", "active": "active", "aborted": "cancelled",
             "cancelled": "cancelled", "suspended": "suspended", "new": "preliminary",
             "held": "preliminary", "nullified": "entered-in-error"}  # ActStatus


def status_of(code: str) -> str:
    return _STATUSES.get(code, code or "final")


@cache
def time_units() -> dict[str, tuple[str, int, bool]]:
    """A unit of time -> (how it is added: 'seconds' or 'months', how many of them, whether
    it is UCUM's) (tables/ucum_time_units.csv): the width of an IVL_TS."""
    return {row["unit"]: (row["add"], int(row["amount"]), row["ucum"] == "yes")
            for row in table("ucum_time_units")}
