"""Read models for people and scripts: ingest summaries, import lists, dossiers.

Plain dicts with stable keys (documented in the README): cli.py prints them as tables or
JSON, and the HTTP API will serve the same dicts.
"""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from dossiers.patients import find_by_reference
from dossiers.schema import entries, import_attempts, imports, patients
from pipelines.ledger import COUNTED, where_filter


def _iso(value) -> str | None:  # noqa: ANN001
    return value.isoformat() if value is not None else None


def _chunks(ids: list[int], size: int = 500):  # noqa: ANN202
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


def ingest_summary(engine: Engine, message_ids: list[int], batch_ids: list[int]) -> dict:
    """Counts of what became of the messages of one ingest run, per dossier and per problem."""
    counts = dict.fromkeys(COUNTED, 0)
    per_patient: dict[int, dict] = {}
    problems: list[dict] = []
    entries_total = 0
    with engine.connect() as conn:
        rows = []
        for chunk in _chunks(message_ids + batch_ids):
            rows += conn.execute(select(imports).where(imports.c.id.in_(chunk))).all()
    batch_set = set(batch_ids)
    for r in sorted(rows, key=lambda r: r.id):
        if r.id in batch_set:
            if r.status == "failed":
                problems.append(_problem(r))
            continue
        if r.status in counts:
            counts[r.status] += 1
        entries_total += r.entries_count or 0
        if r.patient_id is not None and r.status in ("deposited", "duplicate"):
            p = per_patient.setdefault(r.patient_id, {"patient": r.patient_id, "imports": 0,
                                                      "entries": 0, "duplicates": 0})
            p["imports"] += 1
            p["entries"] += r.entries_count or 0
            p["duplicates"] += r.duplicates_count or 0
        if r.status in ("failed", "quarantined"):
            problems.append(_problem(r))
    pending = len(message_ids) - sum(counts.values())
    return {"received": len(message_ids), **counts, "pending": pending,
            "entries": entries_total,
            "patients": [per_patient[k] for k in sorted(per_patient)],
            "problems": problems}


def _problem(r) -> dict:  # noqa: ANN001
    return {"id": r.id, "file": r.file_name, "part": r.part, "status": r.status,
            "stage": r.stage, "error_code": r.error_code, "error_location": r.error_location,
            "error_message": r.error_message}


def _import_dict(r) -> dict:  # noqa: ANN001
    return {"id": r.id, "status": r.status, "stage": r.stage, "error_code": r.error_code,
            "error_location": r.error_location, "error_message": r.error_message,
            "source": r.source, "channel": r.channel, "file_name": r.file_name,
            "part": r.part, "received_at": _iso(r.received_at), "format": r.format,
            "sha256": r.sha256, "size": r.size, "logical_id": r.logical_id,
            "patient_id": r.patient_id, "entries": r.entries_count,
            "duplicates": r.duplicates_count, "duplicate_of": r.duplicate_of,
            "batch_of": r.batch_of, "attempts_count": r.attempts, "warnings": r.warnings}


def list_imports(engine: Engine, *, status: str | None = None, source: str | None = None,
                 error_code: str | None = None, limit: int = 200) -> list[dict]:
    q = where_filter(select(imports).order_by(imports.c.id.desc()).limit(limit),
                     status=status, source=source, error_code=error_code)
    with engine.connect() as conn:
        return [_import_dict(r) for r in conn.execute(q)]


def show_import(engine: Engine, import_id: int) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(select(imports).where(imports.c.id == import_id)).first()
        if row is None:
            return None
        info = _import_dict(row)
        info["attempts"] = [
            {"started_at": _iso(a.started_at), "finished_at": _iso(a.finished_at),
             "trigger": a.trigger, "code_version": a.code_version, "status": a.status,
             "error_code": a.error_code, "error_message": a.error_message}
            for a in conn.execute(select(import_attempts)
                                  .where(import_attempts.c.import_id == import_id)
                                  .order_by(import_attempts.c.id))]
        info["entries_produced"] = conn.execute(
            select(func.count()).select_from(entries)
            .where(entries.c.import_id == import_id)).scalar_one()
    return info


def _entry_dict(e) -> dict:  # noqa: ANN001
    return {"id": e.id, "type": e.type, "code": e.code, "system": e.system,
            "display": e.display, "mapped": e.mapped, "value": e.value,
            "value_type": e.value_type, "value_num": e.value_num, "comparator": e.comparator,
            "unit": e.unit, "unit_original": e.unit_original,
            "reference_range": e.reference_range, "interpretation": e.interpretation,
            "status": e.status, "effective": e.effective, "issued": e.issued,
            "specimen_time": e.specimen_time, "performer": e.performer,
            "parent_id": e.parent_id, "version": e.version, "current": e.current,
            "superseded_by": e.superseded_by, "import_id": e.import_id,
            "attachment_sha256": e.attachment_sha256, "media_type": e.media_type,
            "masking": e.masking, "key": e.key}


def show_dossier(engine: Engine, ref: str, *, history: bool = False) -> dict | None:
    with engine.connect() as conn:
        patient = find_by_reference(conn, ref)
        if patient is None:
            return None
        row = conn.execute(select(patients).where(patients.c.id == patient.id)).one()
        q = select(entries).where(entries.c.patient_id == patient.id)
        if not history:
            q = q.where(entries.c.current.is_(True))
        rows = conn.execute(q.order_by(entries.c.id)).all()
    return {"patient": {"id": row.id, "ins": row.ins, "ins_oid": row.ins_oid,
                        "family": row.family, "given": row.given,
                        "birth_family": row.birth_family, "birth_date": row.birth_date,
                        "sex": row.sex, "opposed": row.opposed, "created_by": row.created_by},
            "entries": [_entry_dict(e) for e in rows]}
