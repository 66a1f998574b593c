"""Consistency check of the store: ledger <-> archive <-> entries (`dmp-ingest check`).

Why: the pipeline promises that nothing acknowledged is lost and nothing is filed twice. This
module verifies it after the fact (after a crash, a restore, a fault-injection run) with a
handful of set-based queries, so that it stays fast on a ledger of 100k rows. Findings name
import ids, entry ids, sha256 and codes only, never patient data. It changes nothing: orphan
archive objects (bytes stored by an intake that died before its ledger commit, never
acknowledged) are counted, not deleted.

It also says what an operator on call must know that no error shows: the backlog (rows
waiting for a worker, the oldest one's age) and the sources silent longer than their
``max_silence`` (pipelines/silence.py). Each finding has a severity (tables/
check_severity.csv) so that monitoring reads one status: ok, warning or critical.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, and_, exists, func, not_, or_, select, union

from dossiers.deposit import FACT_TYPES
from dossiers.merged import tombstone_ids
from dossiers.schema import entries, imports, provenance
from normalizers.tabledata import read_csv_rows
from pipelines.archive import Archive, ArchiveError, ArchiveMissing, DirectoryArchive, sha256_hex
from pipelines.dashboard import backlog as backlog_summary
from pipelines.ledger import DEPOSITED, PROCESSING, RECEIVED, now
from pipelines.settings import Settings
from pipelines.silence import last_received, silent_sources

MAX_IDS = 20  # ids listed per finding; the count says how many there are in all
LEVELS = ("ok", "warning", "critical")  # a status's exit code is its index (Nagios)
_SEVERITY_TABLE = Path(__file__).with_name("tables") / "check_severity.csv"


@cache
def _severities() -> dict[str, str]:
    table = {r["code"]: r["severity"] for r in read_csv_rows(_SEVERITY_TABLE)}
    for code, level in table.items():
        if level not in LEVELS[1:]:
            raise ValueError(f"{_SEVERITY_TABLE.name}: {code}: severity {level!r} is "
                             "neither warning nor critical")
    return table


def severity(code: str) -> str:
    """'warning' or 'critical' for a finding's code; an unlisted code is critical."""
    return _severities().get(code, "critical")


@dataclass(slots=True)
class Finding:
    """One kind of inconsistency: a stable code, how many, and the first few ids."""

    code: str
    count: int
    ids: list = field(default_factory=list)
    what: str = ""  # what the ids are: import, entry, sha256, (patient, key)...
    severity: str = ""  # warning, critical ('' : the code's, from check_severity.csv)
    lines: list[str] = field(default_factory=list)  # one line per item, when ids say too little

    def __post_init__(self) -> None:
        if not self.severity:
            self.severity = severity(self.code)

    def as_dict(self) -> dict:
        return {"code": self.code, "count": self.count, "ids": self.ids, "what": self.what,
                "severity": self.severity}


@dataclass(slots=True)
class Report:
    findings: list[Finding]
    imports: int  # ledger rows looked at
    entries: int
    archive_objects_checked: int
    orphans: int | None  # archive objects no row references (None: not countable)
    backlog: dict = field(default_factory=dict)  # pipelines.dashboard.backlog's answer
    silent: list[dict] = field(default_factory=list)  # Silence.as_dict() of each
    archive_checked: bool = True  # False: check(archive_scan=False), nothing said of it

    @property
    def consistent(self) -> bool:
        return not self.findings

    @property
    def status(self) -> str:
        """'ok', 'warning' or 'critical': the worst finding's severity."""
        return max((f.severity for f in self.findings), key=LEVELS.index, default="ok")

    @property
    def exit_code(self) -> int:
        """0 ok, 1 warning, 2 critical (the Nagios/Icinga plugin convention)."""
        return LEVELS.index(self.status)

    def as_dict(self) -> dict:
        return {"status": self.status, "consistent": self.consistent,
                "imports": self.imports, "entries": self.entries,
                "archive_checked": self.archive_checked,
                "archive_objects_checked": self.archive_objects_checked,
                "orphans": self.orphans, "backlog": self.backlog, "silent": self.silent,
                "findings": [f.as_dict() for f in self.findings]}


def check(engine: Engine, archive: Archive, *, backlog_minutes: float | None = None,
          verify_hashes: bool = True, workers: int = 8, settings: Settings | None = None,
          backlog_critical_minutes: float | None = None, archive_scan: bool = True) -> Report:
    """Run every check; ``verify_hashes`` re-reads every archived object (otherwise only
    its presence is checked); without ``archive_scan`` the archive is not looked at (a
    probe every few minutes: listing millions of objects is the nightly run's job). With
    ``settings``: its backlog thresholds (unless given here) and its sources'
    ``max_silence``."""
    if backlog_minutes is None:
        backlog_minutes = settings.backlog_minutes if settings is not None else 60.0
    if backlog_critical_minutes is None:
        backlog_critical_minutes = max(backlog_minutes, settings.backlog_critical_minutes
                                       if settings is not None else 240.0)
    findings: list[Finding] = []
    t = now()
    with engine.connect() as conn:
        n_imports = conn.execute(select(func.count()).select_from(imports)).scalar_one()
        n_entries = conn.execute(select(func.count()).select_from(entries)).scalar_one()
        # every sha256 the store names (loaded only when the archive is checked against it)
        referenced = set(conn.execute(union(
            select(imports.c.sha256),
            select(entries.c.attachment_sha256).where(
                entries.c.attachment_sha256.is_not(None)))).scalars()) if archive_scan else set()
        for code, what, query in _store_queries(t, backlog_minutes):
            ids = [tuple(r) if len(r) > 1 else r[0] for r in conn.execute(query)]
            if ids:
                findings.append(Finding(code, len(ids), ids[:MAX_IDS], what))
    waiting = backlog_summary(engine, warning_minutes=backlog_minutes,
                              critical_minutes=backlog_critical_minutes, at=t)
    for f in findings:
        if f.code == "BACKLOG" and waiting["level"] == "critical":
            f.severity = "critical"
    silent = silent_sources(engine, settings, t) if settings is not None else []
    if silent:
        findings.append(Finding("SILENT_SOURCE", len(silent), [s.source for s in silent],
                                "source", lines=[s.line() for s in silent]))
    if not archive_scan:
        return Report(findings, n_imports, n_entries, 0, None, waiting,
                      [s.as_dict() for s in silent], archive_checked=False)
    missing, corrupt, orphans = _check_archive(archive, referenced, verify_hashes, workers)
    for code, shas in (("ARCHIVE_MISSING", missing), ("ARCHIVE_CORRUPT", corrupt)):
        if shas:
            findings.insert(0, Finding(code, len(shas), sorted(shas)[:MAX_IDS], "sha256"))
    return Report(findings, n_imports, n_entries, len(referenced), orphans, waiting,
                  [s.as_dict() for s in silent])


def health(engine: Engine, settings: Settings) -> dict:
    """What an HTTP monitor polls every minute (GET /admin/health): the backlog and the
    silent sources, with the status ``check`` would give them, read in two small queries;
    none of check's scans of the store and the archive (those are `dmp-ingest check`'s, run
    less often)."""
    at = now()
    waiting = backlog_summary(engine, warning_minutes=settings.backlog_minutes,
                              critical_minutes=settings.backlog_critical_minutes, at=at)
    last = last_received(engine, settings)
    silent = silent_sources(engine, settings, at, last=last)
    levels = [waiting["level"]] + ([severity("SILENT_SOURCE")] if silent else [])
    return {"status": max(levels, key=LEVELS.index), "at": at.isoformat(),
            "backlog": waiting, "silent": [s.as_dict() for s in silent],
            "last_received": {k: v.isoformat() for k, v in sorted(last.items())}}


def _store_queries(t, backlog_minutes: float) -> list[tuple[str, str, object]]:  # noqa: ANN001
    """(code, what the ids are, query) for every check of the store; each query returns the
    offending ids, nothing when all is well."""
    e, i, p = entries.c, imports.c, provenance.c
    # An entry is born of an import ('created', or 'withdrew' for a sender's delete), or is
    # the 'withdrawn' version an author made through the API (dossiers/access.withdraw):
    # no import did that, who did is on the row (withdrawn_by) and in the audit trail.
    born = or_(exists().where(p.entry_id == e.id, p.relation.in_(("created", "withdrew"))),
               and_(e.status == "withdrawn", e.withdrawn_by.is_not(None)))
    linked = exists().where(p.import_id == i.id)
    current = entries.alias("cur")
    return [
        ("ENTRY_IMPORT_MISSING", "entry",
         select(e.id).where(not_(exists().where(i.id == e.import_id))).order_by(e.id)),
        ("PROVENANCE_IMPORT_MISSING", "provenance",
         select(p.id).where(not_(exists().where(i.id == p.import_id))).order_by(p.id)),
        ("ENTRY_WITHOUT_PROVENANCE", "entry",
         select(e.id).where(not_(born)).order_by(e.id)),
        ("DEPOSITED_WITHOUT_ENTRIES", "import",
         select(i.id).where(i.status == DEPOSITED,
                            i.entries_count + i.duplicates_count > 0,
                            not_(linked)).order_by(i.id)),
        ("ENTRIES_OF_UNDEPOSITED_IMPORT", "import",
         select(i.id).where(i.status.not_in((DEPOSITED, "duplicate", PROCESSING, RECEIVED)),
                            exists().where(e.import_id == i.id)).order_by(i.id)),
        ("TWO_CURRENT_VERSIONS", "patient, key",
         select(current.c.patient_id, current.c.key).where(current.c.current)
         .group_by(current.c.patient_id, current.c.key).having(func.count() > 1)
         .order_by(current.c.patient_id, current.c.key)),
        ("DUPLICATE_FACT", "patient, fact",
         select(current.c.patient_id, current.c.fact)
         .where(current.c.current, current.c.fact.is_not(None),
                current.c.status != "withdrawn", current.c.type.in_(sorted(FACT_TYPES)))
         .group_by(current.c.patient_id, current.c.fact).having(func.count() > 1)
         .order_by(current.c.patient_id, current.c.fact)),
        # filed in a dossier merged into another (a worker that resolved it just before the
        # merge committed): `dossier merge SURVIVOR MERGED` again moves them
        ("ENTRIES_IN_MERGED_DOSSIER", "patient",
         select(e.patient_id).where(e.patient_id.in_(tombstone_ids())).distinct()
         .order_by(e.patient_id)),
        ("LEASE_EXPIRED", "import",
         select(i.id).where(i.status == PROCESSING, i.claimed_until < t).order_by(i.id)),
        ("BACKLOG", "import",
         select(i.id).where(i.status == RECEIVED,
                            i.received_at < t - timedelta(minutes=backlog_minutes),
                            # a row waiting for its retry time is not stuck
                            and_(i.not_before.is_(None) | (i.not_before < t)))
         .order_by(i.id)),
    ]


def _check_archive(archive: Archive, referenced: set[str], verify_hashes: bool,
                   workers: int) -> tuple[list[str], list[str], int | None]:
    """(missing, corrupt, orphan count) for the referenced sha256s."""
    stored = _list_archive(archive)
    missing: list[str] = []
    corrupt: list[str] = []
    if stored is not None:
        missing = [s for s in referenced if s not in stored]
        todo = [s for s in referenced if s in stored] if verify_hashes else []
    else:
        todo = list(referenced)
    if todo:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for sha, state in zip(todo, pool.map(lambda s: _state(archive, s), todo,
                                                 chunksize=64), strict=True):
                if state == "missing":
                    missing.append(sha)
                elif state == "corrupt":
                    corrupt.append(sha)
    orphans = len(stored - referenced) if stored is not None else None
    return missing, corrupt, orphans


def _state(archive: Archive, sha: str) -> str:
    if isinstance(archive, DirectoryArchive):  # read the file, no exception per object
        try:
            with open(archive.path(sha), "rb") as fh:
                return "ok" if sha256_hex(fh.read()) == sha else "corrupt"
        except FileNotFoundError:
            return "missing"
    try:
        archive.get(sha)
    except ArchiveMissing:
        return "missing"
    except ArchiveError as exc:
        return "corrupt" if exc.code == "ARCHIVE_CORRUPT" else "unreadable"
    return "ok"


def _list_archive(archive: Archive) -> set[str] | None:
    """Every sha256 the archive holds (None when it cannot be listed)."""
    if isinstance(archive, DirectoryArchive):
        return set(_walk(str(archive.root)))
    client = getattr(archive, "client", None)
    if client is None:
        return None
    prefix = f"{archive.prefix}/" if archive.prefix else ""
    found: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=archive.bucket,
                                                                 Prefix=prefix):
        found.update(_sha_names(o["Key"].rsplit("/", 1)[-1] for o in page.get("Contents", [])))
    return found


def _walk(root: str) -> Iterator[str]:
    for top in _dirs(root):
        for mid in _dirs(top):
            with os.scandir(mid) as it:
                yield from _sha_names(entry.name for entry in it if entry.is_file())


def _dirs(path: str) -> list[str]:
    try:
        with os.scandir(path) as it:
            return [e.path for e in it if e.is_dir() and len(e.name) == 2]
    except FileNotFoundError:
        return []


def _sha_names(names: Iterable[str]) -> Iterator[str]:
    """Object names that are a sha256 (temporary files of an interrupted write are not)."""
    hexdigits = set("0123456789abcdef")
    for name in names:
        if len(name) == 64 and set(name) <= hexdigits:
            yield name
