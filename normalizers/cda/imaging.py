"""Imaging documents (CR-IMG): the DICOM study and series acts of the object catalog
and the exam the header says is reported."""

from __future__ import annotations

from typing import Any

from normalizers.cda.common import Ctx, system_name
from normalizers.cda.times import iso_value
from parsers.cda.model import ClinicalStatement

DICOM_STUDY = "1.2.840.10008.9.16"  # DICOM Part 20 Study Act (CI-SIS FR-DICOM-Examen)
DICOM_SERIES = "1.2.840.10008.9.17"  # Series Act (FR-DICOM-Serie)
DICOM_INSTANCE = "1.2.840.10008.9.18"  # SOP Instance Observation (FR-DICOM-Instance)
DICOM_INSTANCES_KEPT = 20  # per series, in the document's details


def dicom_study(act: ClinicalStatement) -> dict[str, Any]:
    """A study of a CR-IMG's DICOM object catalog (the images the report is of): its
    Study Instance UID, time, and series (UID, modality, time) with their instances (SOP
    Instance UID, SOP class, the WADO reference a viewer opens). It was skipped: the report
    said nothing of its images but the header's study id."""
    uid = next((i.root for i in act.ids if i.root and not i.null_flavor), "")
    study: dict[str, Any] = {"uid": uid} if uid else {}
    when = _dicom_time(act)
    if when:
        study["time"] = when
    series = [s for s in (_dicom_series(rel.act) for rel in act.entry_relationships
                          if rel.act is not None and DICOM_SERIES in rel.act.template_roots)
              if s]
    if series:
        study["series"] = series
    return study


def _dicom_series(act: ClinicalStatement) -> dict[str, Any]:
    """One series of a study (see ``dicom_study``)."""
    out: dict[str, Any] = {}
    uid = next((i.root for i in act.ids if i.root and not i.null_flavor), "")
    if uid:
        out["uid"] = uid
    modality = next((v.code for _, v in (act.code.qualifiers if act.code is not None else [])
                     if v is not None and v.code), "")
    if modality:
        out["modality"] = modality
    when = _dicom_time(act)
    if when:
        out["time"] = when
    instances = []
    for rel in act.entry_relationships:
        obs = rel.act
        if obs is None or DICOM_INSTANCE not in obs.template_roots:
            continue
        instance = {"uid": next((i.root for i in obs.ids if i.root and not i.null_flavor),
                                ""),
                    "sop_class": obs.code.code if obs.code is not None else "",
                    "reference": obs.text_reference if not
                    obs.text_reference.startswith("#") else ""}
        instance = {k: v[:500] for k, v in instance.items() if v}
        if instance:
            instances.append(instance)
    if instances:  # a CT series lists hundreds of slices: the first ones and the count
        out["instances"] = instances[:DICOM_INSTANCES_KEPT]
        if len(instances) > DICOM_INSTANCES_KEPT:
            out["instance_count"] = len(instances)
    return out


def _dicom_time(act: ClinicalStatement) -> str | None:
    """The time of a study or series (a TS, or an IVL_TS written with a value)."""
    value = getattr(act.effective_time, "value", "")
    return (iso_value(value) or None) if isinstance(value, str) and value else None


def exam_codes(header) -> frozenset[tuple[str, str]]:  # noqa: ANN001
    """(system, code) of every code and translation of the header's serviceEvents."""
    return frozenset((system_name(c.code_system), c.code)
                     for event in header.documentation_of if event.code is not None
                     for c in (event.code, *event.code.translations) if c.code)


def reported_exam(act: ClinicalStatement, ctx: Ctx) -> bool:
    """Whether an act is one of the exams the header's serviceEvents say (by a code or a
    translation in common)."""
    code = act.code
    return code is not None and any(
        (system_name(c.code_system), c.code) in ctx.exams
        for c in (code, *code.translations) if c.code)
