"""Read models for people and scripts: ingest summaries, import lists, dossiers.

Plain dicts with stable keys (documented in the README): cli.py prints them as tables or
JSON, and the HTTP API will serve the same dicts.
"""

from __future__ import annotations

import shlex
from datetime import datetime

from sqlalchemy import Engine, and_, func, or_, select

from dossiers.audit import iso_utc
from dossiers.merged import merged_into
from dossiers.patients import find_by_reference
from dossiers.schema import entries, import_attempts, imports, patients, provenance
from pipelines.advice import advice
from pipelines.audit import trail
from pipelines.ledger import (
    ADT_STAGE,
    COUNTED,
    ImportFilter,
    code_matches,
    has_warnings,
    where_filter,
)

# `imports list --sort`: a key, '-key' for descending.
SORTS = {"id": imports.c.id, "received": imports.c.received_at, "updated": imports.c.updated_at,
         "status": imports.c.status, "source": imports.c.source, "code": imports.c.error_code,
         "stage": imports.c.stage, "attempts": imports.c.attempts}


def _iso(value) -> str | None:  # noqa: ANN001
    """A ledger time as ISO text with its offset: SQLite gives it back naive (stored in UTC),
    and `imports list --json`, `show --json` and the admin API said '2026-11-25T07:30:00'
    there, '...+00:00' on PostgreSQL: a script could not tell 07:30 UTC from 07:30 Paris."""
    return iso_utc(value)


def _chunks(ids: list[int], size: int = 500):  # noqa: ANN202
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


def ingest_summary(engine: Engine, message_ids: list[int], batch_ids: list[int]) -> dict:
    """Counts of what became of the messages of one ingest run, per dossier and per problem.

    Aggregated by the database, chunk by chunk of ids: a batch file of hundreds of thousands
    of messages is summed without loading its ledger rows (which would cost more memory than
    the whole ingest)."""
    counts = dict.fromkeys(COUNTED, 0)
    per_patient: dict[int, dict] = {}
    problem_rows: list = []
    entries_total = 0
    adt = 0  # hospital ADT applied to dossiers (consent, identity): deposited, no entries
    wanted = (imports.c.status.in_(("failed", "quarantined")))
    with engine.connect() as conn:
        for chunk in _chunks(message_ids, 2000):
            mine = imports.c.id.in_(chunk)
            for status, n, filed in conn.execute(
                    select(imports.c.status, func.count(),
                           func.coalesce(func.sum(imports.c.entries_count), 0))
                    .where(mine).group_by(imports.c.status)):
                if status in counts:
                    counts[status] += n
                entries_total += filed
            adt += conn.execute(select(func.count()).select_from(imports).where(
                mine, imports.c.status == "deposited",
                imports.c.stage == ADT_STAGE)).scalar_one()
            for pid, n, filed, dups in conn.execute(
                    select(imports.c.patient_id, func.count(),
                           func.coalesce(func.sum(imports.c.entries_count), 0),
                           func.coalesce(func.sum(imports.c.duplicates_count), 0))
                    .where(mine, imports.c.patient_id.is_not(None),
                           imports.c.status.in_(("deposited", "duplicate")))
                    .group_by(imports.c.patient_id)):
                p = per_patient.setdefault(pid, {"patient": pid, "imports": 0, "entries": 0,
                                                 "duplicates": 0})
                p["imports"] += n
                p["entries"] += filed
                p["duplicates"] += dups
            problem_rows += conn.execute(select(imports).where(mine, wanted)).all()
        for chunk in _chunks(batch_ids, 2000):
            problem_rows += conn.execute(select(imports).where(
                imports.c.id.in_(chunk), imports.c.status == "failed")).all()
    pending = len(message_ids) - sum(counts.values())
    return {"received": len(message_ids), **counts, "pending": pending,
            "entries": entries_total, "adt": adt,
            "patients": [per_patient[k] for k in sorted(per_patient)],
            "problems": [_problem(r) for r in sorted(problem_rows, key=lambda r: r.id)]}


def _problem(r) -> dict:  # noqa: ANN001
    return {"id": r.id, "file": r.file_name, "part": r.part, "status": r.status,
            "stage": r.stage, "error_code": r.error_code, "error_location": r.error_location,
            "error_message": r.error_message, "advice": advice(r.error_code)}


def _advice(status: str, code: str | None) -> str | None:
    """What to do, for what waits on an admin (failed, quarantined), and why a held draft
    needs nothing (it waits for its signature); None otherwise."""
    return advice(code) if status in ("failed", "quarantined", "held") else None


def _import_dict(r) -> dict:  # noqa: ANN001
    return {"id": r.id, "status": r.status, "stage": r.stage, "error_code": r.error_code,
            "error_location": r.error_location, "error_message": r.error_message,
            "source": r.source, "channel": r.channel, "file_name": r.file_name,
            "part": r.part, "received_at": _iso(r.received_at), "format": r.format,
            "sha256": r.sha256, "size": r.size, "logical_id": r.logical_id,
            "patient_id": r.patient_id, "entries": r.entries_count,
            "duplicates": r.duplicates_count, "duplicate_of": r.duplicate_of,
            "batch_of": r.batch_of, "attempts_count": r.attempts, "warnings": r.warnings,
            "assigned_patient_id": r.assigned_patient_id, "edited_from": r.edited_from,
            "discard_reason": r.discard_reason, "not_before": _iso(r.not_before),
            "retries": r.retries, "advice": _advice(r.status, r.error_code)}


def sort_order(sort: str) -> list:
    """ORDER BY for a --sort value ('received', '-code'); ties broken by id. ValueError if
    the key is unknown."""
    key = sort.lstrip("-")
    if key not in SORTS:
        raise ValueError(f"unknown sort key {key!r} (one of: {', '.join(SORTS)})")
    desc = sort.startswith("-")
    column = SORTS[key]
    order = [column.desc() if desc else column.asc()]
    if key != "id":
        order.append(imports.c.id.desc() if desc else imports.c.id.asc())
    return order


def list_imports(engine: Engine, flt: ImportFilter | None = None, *, status: str | None = None,
                 source: str | None = None, error_code: str | None = None,
                 sort: str = "-id", limit: int | None = 200, offset: int = 0) -> list[dict]:
    """Ledger rows matching a filter, sorted (newest first by default), at most ``limit``,
    the first ``offset`` skipped (by the database: a deep page does not load the rows before
    it). The order is total (ties broken by id), so pages neither repeat nor skip a row."""
    if flt is None:
        flt = ImportFilter(status=status, source=source, error_code=error_code)
    q = where_filter(select(imports).order_by(*sort_order(sort)), flt)
    return _page(engine, q, limit, offset)


def list_import_ids(engine: Engine, ids: list[int], *, sort: str = "-id",
                    limit: int | None = 200, offset: int = 0) -> list[dict]:
    """The ledger rows of these ids, sorted and paged as ``list_imports`` pages a filter's:
    for a selection the ledger cannot express (``imports list --resolvable``: the archived
    messages say it, pipelines/waiting.py). ``ids`` is bounded by its caller."""
    if not ids:
        return []
    q = select(imports).where(imports.c.id.in_(sorted(set(ids)))).order_by(*sort_order(sort))
    return _page(engine, q, limit, offset)


def _page(engine: Engine, q, limit: int | None, offset: int) -> list[dict]:  # noqa: ANN001
    """One page of a sorted ledger query, cut by the database (a deep page does not load
    the rows before it)."""
    if limit is not None:
        q = q.limit(limit)
    if offset:
        q = q.offset(offset)
    with engine.connect() as conn:
        return [_import_dict(r) for r in conn.execute(q)]


def code_seen(engine: Engine, code: str) -> bool:
    """Whether any import of the ledger ever ended with this error code: a filter on a code
    never seen (a typo, a code from another product's documentation) selects nothing, and
    the admin should be told so rather than shown an empty list. ``code`` may name a family
    ('CDA_*'): whether any import had one of its codes."""
    with engine.connect() as conn:
        return conn.execute(select(imports.c.id).where(code_matches(code))
                            .limit(1)).first() is not None


def unseen_words(engine: Engine, flt: ImportFilter) -> list[str]:
    """What a filter asks for that no import of the ledger ever had: its channel, its stage
    (a typo, 'hl7' for 'mllp', 'parsing' for 'parse'), said with the values there are. Such
    a filter selects nothing, and an empty list would read as 'nothing wrong there'."""
    said = []
    for column, value, what in ((imports.c.channel, flt.channel, "came in through channel"),
                                (imports.c.stage, flt.stage, "stopped at stage")):
        if value is None:
            continue
        with engine.connect() as conn:
            if conn.execute(select(imports.c.id).where(column == value).limit(1)).first():
                continue
            there = sorted(v for (v,) in conn.execute(select(column).distinct())
                           if v is not None)
        said.append(f"no import {what} {value!r} (the ledger has: "
                    f"{', '.join(there) or 'none'})")
    return said


def filter_notes(engine: Engine, flt: ImportFilter) -> list[str]:
    """Everything a filter names that no import ever had (error code, channel, stage), one
    line each: what the API and the console say beside an empty list."""
    said = unseen_words(engine, flt)
    if flt.error_code is not None and not code_seen(engine, flt.error_code):
        said.insert(0, f"no import has error code {flt.error_code}")
    return said


def count_imports(engine: Engine, flt: ImportFilter | None = None) -> int:
    """How many ledger rows a filter selects: what a page of ``list_imports`` is out of."""
    with engine.connect() as conn:
        return conn.execute(where_filter(select(func.count()).select_from(imports),
                                         flt or ImportFilter())).scalar_one()


def import_stats(engine: Engine, flt: ImportFilter | None = None) -> dict:
    """Counts per status and per (error code, status) over the rows a filter selects: what
    failed and why, at a glance, before a rerun by code; and how many carry warnings (filed
    imports among them: read, but something in them was doubtful)."""
    flt = flt or ImportFilter()
    with engine.connect() as conn:
        by_status = {s: n for s, n in conn.execute(where_filter(
            select(imports.c.status, func.count()).group_by(imports.c.status), flt))}
        by_code = [{"error_code": code, "status": status, "stage": stage, "count": n,
                    "advice": _advice(status, code)}
                   for code, status, stage, n in conn.execute(where_filter(
                       select(imports.c.error_code, imports.c.status, imports.c.stage,
                              func.count())
                       .where(imports.c.error_code.is_not(None))
                       .group_by(imports.c.error_code, imports.c.status, imports.c.stage),
                       flt))]
        warned = conn.execute(where_filter(
            select(func.count()).select_from(imports).where(has_warnings()), flt)).scalar_one()
    by_code.sort(key=lambda r: (-r["count"], r["error_code"], r["status"]))
    return {"total": sum(by_status.values()), "by_status": dict(sorted(by_status.items())),
            "by_code": by_code, "with_warnings": warned}


# `imports list --group-by`: a key -> (column, the filter option that selects its value)
GROUP_KEYS = {"code": (imports.c.error_code, "--code"), "source": (imports.c.source, "--source"),
              "status": (imports.c.status, "--status"), "stage": (imports.c.stage, "--stage"),
              "channel": (imports.c.channel, "--channel")}


def group_keys(text: str) -> list[str]:
    """'code,source' -> ['code', 'source']; ValueError naming the keys there are."""
    keys = [k.strip().lower() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in GROUP_KEYS]
    if not keys or unknown:
        raise ValueError(f"unknown group key {(unknown or [text])[0]!r} (one or more of: "
                         f"{', '.join(GROUP_KEYS)}, comma-separated)")
    return list(dict.fromkeys(keys))


def group_imports(engine: Engine, flt: ImportFilter | None, keys: list[str], *,
                  limit: int | None = None, offset: int = 0, coded: bool = False) -> dict:
    """The rows a filter selects, counted per value of ``keys`` (the database groups: a
    burst of 10,000 failures is one row), the largest group first, with when its first and
    last import came in, ``select``: the filter words that select that group alone (for
    `imports list` or `imports rerun --dry-run`) and ``filter``: the same as the API's
    filter fields; both None when a value cannot be selected (no error code). ``total``
    counts the imports, ``groups_total`` the groups. ``coded``: only imports that ended with
    an error code (the dashboard's bursts)."""
    flt = flt or ImportFilter()
    cols = [GROUP_KEYS[k][0] for k in keys]
    n = func.count().label("n")
    q = where_filter(select(*cols, n, func.min(imports.c.received_at),
                            func.max(imports.c.received_at)).group_by(*cols), flt)
    counted = where_filter(select(func.count()).select_from(imports), flt)
    if coded:
        q = q.where(imports.c.error_code.is_not(None))
        counted = counted.where(imports.c.error_code.is_not(None))
    page = q.order_by(n.desc(), *[c.asc() for c in cols])
    if limit is not None:
        page = page.limit(limit)
    if offset:
        page = page.offset(offset)
    with engine.connect() as conn:
        rows = conn.execute(page).all()
        groups_total = conn.execute(select(func.count()).select_from(q.subquery())).scalar_one()
        total = conn.execute(counted).scalar_one()
    groups = []
    for row in rows:
        values = dict(zip(keys, row[:len(keys)], strict=True))
        count, first, last = row[len(keys):]
        words = None if any(v is None for v in values.values()) else " ".join(
            f"{GROUP_KEYS[k][1]} {_shell_word(str(v))}" for k, v in values.items())
        groups.append({**values, "count": count, "first_received": _iso(first),
                       "last_received": _iso(last), "select": words,
                       "filter": None if words is None else values})
    return {"group_by": keys, "total": total, "groups_total": groups_total,
            "groups": groups}


def _shell_word(text: str) -> str:
    """A value as one shell word (a source id with a space or a quote, pasted back)."""
    return shlex.quote(text)


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
        # What it filed or touched, through provenance: ids, types, codes, no values.
        info["produced"] = [
            {"entry_id": e.id, "patient_id": e.patient_id, "type": e.type, "code": e.code,
             "system": e.system, "version": e.version, "current": e.current,
             "status": e.status, "relation": e.relation, "source_ref": e.source_ref}
            for e in conn.execute(
                select(entries.c.id, entries.c.patient_id, entries.c.type, entries.c.code,
                       entries.c.system, entries.c.version, entries.c.current,
                       entries.c.status, provenance.c.relation, provenance.c.source_ref)
                .join(provenance, provenance.c.entry_id == entries.c.id)
                .where(provenance.c.import_id == import_id)
                .order_by(provenance.c.id))]
        info["edited_as"] = list(conn.execute(
            select(imports.c.id).where(imports.c.edited_from == import_id)
            .order_by(imports.c.id)).scalars())
        info["resent_as"] = _resent_as(conn, row)
        info["batch_messages"], info["batch_messages_count"] = _batch_messages(conn, row.id)
    info["audit"] = trail(engine, import_id=import_id)
    return info


BATCH_MESSAGES_SHOWN = 50  # message ids a batch file's `imports show` lists


def _batch_messages(conn, import_id: int) -> tuple[list[dict], int]:  # noqa: ANN001
    """A batch file's messages (their rows' ``batch_of`` is the file's row), the first
    ``BATCH_MESSAGES_SHOWN`` with their status, and how many there are: the file's row of a
    failed batch (HL7_BATCH_*) says its messages were processed on their own, and the
    operator follows them from there. Empty for any other import."""
    where = imports.c.batch_of == import_id
    count = conn.execute(select(func.count()).select_from(imports).where(where)).scalar_one()
    if not count:
        return [], 0
    rows = conn.execute(select(imports.c.id, imports.c.part, imports.c.status,
                               imports.c.error_code).where(where)
                        .order_by(imports.c.part, imports.c.id).limit(BATCH_MESSAGES_SHOWN))
    return [{"id": r.id, "part": r.part, "status": r.status, "error_code": r.error_code}
            for r in rows], count


def _resent_as(conn, row) -> list[dict]:  # noqa: ANN001
    """For a failed or quarantined import, the later imports of the same source that look
    like its resend and were filed (deposited, or found duplicate of something filed): the
    same logical message (sender + MSH-10, CDA id), or the same file name. The sender
    corrected and sent it again; this row then waits for nothing, and the admin closes it
    (discard) instead of rerunning it over and over. A hint, never acted upon here."""
    if row.status not in ("failed", "quarantined"):
        return []
    same = []
    if row.logical_id:
        same.append(imports.c.logical_id == row.logical_id)
    if row.file_name and row.batch_of is None:  # a batch's messages share its file name
        same.append(and_(imports.c.file_name == row.file_name, imports.c.batch_of.is_(None)))
    if not same:
        return []
    later = conn.execute(
        select(imports.c.id, imports.c.status, imports.c.file_name, imports.c.received_at)
        .where(imports.c.id > row.id, imports.c.source == row.source, or_(*same),
               imports.c.status.in_(("deposited", "duplicate")),
               or_(imports.c.edited_from.is_(None), imports.c.edited_from != row.id))
        .order_by(imports.c.id).limit(10))
    return [{"id": r.id, "status": r.status, "file_name": r.file_name,
             "received_at": _iso(r.received_at)} for r in later]


def rerun_progress(engine: Engine, since: datetime) -> int:
    """Attempts recorded by reruns since ``since``: a long rerun's progress bar."""
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(import_attempts).where(
            import_attempts.c.trigger == "rerun",
            import_attempts.c.finished_at >= since)).scalar_one()


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
            "masking": e.masking, "key": e.key, **_document_parties(e)}


# what a CDA document's details say beyond its author, shown with it (normalizers/cda/header.py)
DOCUMENT_SHOWN = ("data_enterer", "consents")


def _document_parties(e) -> dict:  # noqa: ANN001
    """Who keyed a document in and the consents it states (CDA dataEnterer, authorization
    /consent), for the dossier's reader: only the keys a document has, so that no other
    entry's output changes."""
    details = e.details if isinstance(e.details, dict) else {}
    return {k: details[k] for k in DOCUMENT_SHOWN if details.get(k)}


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
        merged = merged_into(conn, patient.id)
    return {"patient": {"id": row.id, "ins": row.ins, "ins_oid": row.ins_oid,
                        "family": row.family, "given": row.given,
                        "birth_family": row.birth_family, "birth_date": row.birth_date,
                        "sex": row.sex, "opposed": row.opposed, "created_by": row.created_by,
                        "dmp_status": row.dmp_status,
                        "consultation_consent": row.consultation_consent,
                        # a tombstone: the dossier that holds what this one held
                        "merged_into": merged,
                        "deceased": bool(row.deceased),
                        "deceased_at": row.deceased_at if row.deceased else None,
                        # the patient's oppositions to emergency access (migration 0013)
                        "break_glass_opposed": bool(row.break_glass_opposed),
                        "regulation_opposed": bool(row.regulation_opposed)},
            "entries": [_entry_dict(e) for e in rows]}
