"""Deposit entries into a dossier: dedupe levels 3 and 4, versions, provenance.

Each entry carries a ``key`` naming the clinical fact inside the dossier. With what the
dossier already holds under that key:
- nothing -> a new entry (version 1);
- the same content -> no new row, one more provenance link ('confirmed'): a duplicate;
- other content (a correction, a final after a preliminary) -> a new version becomes current,
  the old one stays, marked superseded_by the new one (history kept);
- a delete action -> a new version with status 'withdrawn' becomes current.
Versions can arrive out of order (a message retried or rerun after a later one, two
channels, several workers). An earlier version arriving late is filed as history, never
current: a CDA document older (versionNumber, else effectiveTime) than a version of the same
setId the dossier holds, with everything read from it; an HL7v2 result whose status is an
earlier state (table status_order.csv: a preliminary after the final, a final after its
correction) than the current one, unless it says it was issued later. A document newer
than a version of its set the dossier holds supersedes that version (with what it no
longer states) even when its RPLC names another one.
A PDF report reissued with an addendum or as a rectification supersedes the report of that
exam the dossier holds, under its own key, when both PDFs say they are one exam's
(dossiers/report_reissue.py); that report arriving after it is history.
A withdrawal stays: a deletion of something the dossier does not hold yet (its original
quarantined, rerun later, or still on its way) is filed as a withdrawn entry under the key it
names (a tombstone), and an entry arriving where the dossier holds a withdrawn version (the
original after its deletion, a resend of it, a correction of it) is filed as history with
everything read from it, unless it says it was issued after the withdrawal (a re-issue). A
document deleted because it was filed in the wrong patient's dossier must not come back.
The caller runs this inside the message's transaction: all of a message or none of it.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import Connection, bindparam, select, text, update

from dossiers.db import allocate_ids, bulk_insert, insert_values
from dossiers.report_reissue import is_reissue, reissued_report
from dossiers.schema import entries, imports, provenance
from dossiers.versions import versions_of
from normalizers.model import (
    ACTION_DELETE,
    ACTION_NEW,
    ACTION_REPLACE,
    DOCUMENT,
    DOCUMENT_STATUS_DETAIL,
    LAB_RESULT,
    REPLACES_WITHDRAWN_DETAIL,
    STATUS_CHANGE_DETAIL,
    STATUS_CONTENT_DETAIL,
    Entry,
)
from normalizers.tabledata import read_csv_rows

_COMPARED = ("status", "code", "system", "value", "value_num", "comparator", "unit",
             "reference_range", "interpretation", "effective", "attachment_sha256",
             "masking")


_COLUMNS = [c.name for c in entries.columns]
# Entry types another channel may bring again as the same fact (dedupe level 4)
FACT_TYPES = frozenset({"lab_result", "vital_sign"})
# Reports read from PDFs: the same report scanned twice never has the same bytes nor quite the
# same OCR text. Their fact is the exam (type, date, modality, region); two reports of one
# exam are one when their texts are this similar (difflib ratio, normalised text).
REPORT_TYPES = frozenset({"report", "imaging_report"})
REPORT_SIMILARITY = 0.9


def fact_of(entry: Entry) -> str | None:
    """The channel-independent identity of a result: type, coding system and code, the
    instant (to the minute, in UTC), comparator, value and unit. None when one is missing
    (a fact we cannot recognise is never merged with another), and for a negated statement
    (CDA negationInd: 'HBs antigen: positive' negated says it is not; the same code and
    value from another channel says it is). For a report: the exam."""
    if entry.type in REPORT_TYPES and entry.action != ACTION_DELETE and entry.effective:
        field = (entry.details.get("fields") or {}).get("body_region") or {}
        region = str(field.get("value") or "") if isinstance(field, dict) else ""
        raw = "\x1f".join((entry.type, entry.effective[:10], entry.code or "", region))
        return hashlib.sha256(raw.encode()).hexdigest()[:32]
    if entry.type not in FACT_TYPES or entry.action == ACTION_DELETE or not entry.code \
            or entry.details.get("negated"):  # a CDA negationInd: the value is NOT the case
        return None
    when = _instant(entry.effective or entry.specimen_time)
    value = repr(entry.value_num) if entry.value_num is not None else (entry.value or "").strip()
    if not when or not value:
        return None
    raw = "\x1f".join((entry.type, entry.system or "", entry.code, when,
                       entry.comparator or "", value, entry.unit or ""))
    raw += _what_of(entry.details)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _what_of(details: dict) -> str:
    """What, beside its code and instant, tells a result apart from another one of the same
    code and instant (part of its fact, and of the test it is a value of: ``_test_of``)."""
    raw = ""
    parent = details.get("parent_result")
    if parent:  # an antibiotic tested on two organisms: two facts, never one merged
        raw += "\x1f" + "\x1e".join(str(parent.get(k, "")) for k in ("code", "sub_id", "value"))
    isolate = details.get("isolate")
    if isolate:  # the same in a CDA: the germ of the isolate organizer the result is of
        raw += "\x1f" + "\x1e".join(str(isolate.get(k, ""))
                                     for k in ("system", "code", "id", "text"))
    site = details.get("target_site")
    if isinstance(site, dict) and site.get("code"):  # CDA targetSiteCode: pain in the left
        # forearm and pain in the left thigh, the same day, are two facts
        raw += "\x1f" + "\x1e".join((str(site.get("system", "")), str(site["code"]),
                                      *map(str, site.get("qualifiers") or ())))
    group = details.get("group")
    if isinstance(group, dict) and (group.get("code") or group.get("text")):  # CDA: the
        # organizer's code says what was measured (IHE Eye Care: the same power under
        # 'lenses prescribed' and 'lenses delivered', acuity uncorrected or corrected)
        raw += "\x1fgroup\x1e" + "\x1e".join(
            (str(group.get("system", "")), str(group.get("code") or group.get("text")),
             *map(_qualifier_key, group.get("qualifiers") or ())))
    for key in ("code_qualifiers", "value_qualifiers"):
        qualifiers = details.get(key)
        if qualifiers:  # CDA: what the code asks or which side (two results of one
            # LOINC code, one per question or per eye, are two facts)
            raw += "\x1f" + key + "\x1e" + "\x1e".join(
                map(_qualifier_key, qualifiers))
    return raw


def _test_of(type_: str, system: str | None, code: str | None, effective: str | None,
             specimen_time: str | None, details: dict | None) -> tuple | None:
    """A result's fact without its value: which test, of which instant (to the minute, in
    UTC). What a correction sent by one channel has in common with the final it corrects,
    received by another. None when the instant or the code is missing, and for a negated
    statement."""
    details = details or {}
    when = _instant(effective or specimen_time)
    if type_ not in FACT_TYPES or not code or not when or details.get("negated"):
        return None
    return type_, system or "", code, when, _what_of(details)


def _qualifier_key(qualifier: object) -> str:
    """A CDA code qualifier ({name, value}, each {system, code} or {text}) as text."""
    if not isinstance(qualifier, dict):
        return str(qualifier)
    parts = []
    for side in ("name", "value"):
        coded = qualifier.get(side) or {}
        parts.append("\x1d".join(str(coded.get(k, "")) for k in ("system", "code", "text"))
                     if isinstance(coded, dict) else str(coded))
    return "\x1c".join(parts)


@lru_cache(maxsize=4096)
def _instant(iso: str | None) -> str | None:
    """'2025-01-13T10:47+01:00' and '2025-01-13T09:47:00Z' -> '2025-01-13T09:47Z'; a date
    stays a date; a time without offset stays as written, to the minute. A time to the hour
    (HL7 TS '2024031508+0100' -> '2024-03-15T08+01:00') keeps its precision: '2024-03-15T07Z'
    (``HOUR_ONLY`` after the minutes when the offset is not whole hours). Read as 08:00 it
    was one fact with a result of 08:00 to the minute, where a result to the day and one to
    the minute stay two: a precision is part of what was stated.

    Cached: the results of one message (and of one lab's day) share a few instants, and
    parsing plus strftime cost more than the fact's hash."""
    if not iso:
        return None
    if len(iso) <= 10:
        return iso
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    hour_only = len(iso) == 13 or iso[13] in "+-Z"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    suffix = "Z" if moment.tzinfo is not None else ""
    written = _minute(moment, suffix)
    if not hour_only:
        return written
    if moment.minute == 0:
        return written[:written.rindex(":")] + suffix
    return written + HOUR_ONLY


HOUR_ONLY = "/hour"  # an instant to the hour whose UTC minute is not 0 (offset +05:30)


def _minute(moment: datetime, suffix: str) -> str:
    """``moment.strftime('%Y-%m-%dT%H:%M') + suffix``, formatted by hand: in the preparing
    processes each document brings new instants just after its lxml parse, and the first
    strftime after a parse costs 0.03-0.8 ms in glibc depending on the load
    (bench/README.md, round 2), the f-string a microsecond. glibc writes a year under 1000
    unpadded: those keep strftime."""
    if moment.year < 1000:
        return moment.strftime("%Y-%m-%dT%H:%M") + suffix
    return (f"{moment.year}-{moment.month:02d}-{moment.day:02d}"
            f"T{moment.hour:02d}:{moment.minute:02d}{suffix}")


@dataclass(slots=True)
class DepositResult:
    created: int = 0  # new entries and new versions
    duplicates: int = 0  # facts we already held, unchanged
    superseded: int = 0  # earlier versions replaced or withdrawn
    missing_targets: int = 0  # corrections of something we never received
    history: int = 0  # of the created: earlier versions arrived late, filed not current
    tombstones: int = 0  # of the created: deletions of something not held yet, kept
    buried: int = 0  # of the created: withdrawn in the dossier already, filed not current
    stale: int = 0  # of the duplicates: facts held as a version superseded since
    crossed: int = 0  # corrections of a result the dossier holds from another channel
    gaps: int = 0  # documents replacing a version not held, superseding an earlier one
    # where a status change (MDM^T03, no content) names a document the dossier does not hold
    unheld_status_changes: list[str] = field(default_factory=list)
    # where (source_ref) a document replaces one the dossier never received (TXA-13, RPLC)
    missing_documents: list[str] = field(default_factory=list)
    # where an addendum took the masking of the document it adds to (held masked)
    masked_like_parent: list[str] = field(default_factory=list)
    # where a deletion names a document version the dossier holds as replaced by another
    deleted_replaced: list[str] = field(default_factory=list)
    # where a cancel, replacement or status change names a number under which the dossier
    # holds several documents (each by its CDA id) and acted on each: 'OBX[5]: ... 2'
    shared_numbers: list[str] = field(default_factory=list)
    # where a replacement names a version replaced since, and the current version it
    # replaces instead ('OBX[5]: replaces CR-981|DPI-Y': ``follow_replaced_versions``)
    replaced_versions: list[str] = field(default_factory=list)
    # where a reissued PDF report (addendum, rectification) supersedes nothing, and why
    reissue_doubts: list[str] = field(default_factory=list)
    # where a result withdrawn by its sender (OBX-11 W or D) came again with a new value,
    # filed current though not issued after the withdrawal (``_replaces_withdrawn``)
    after_withdrawal: list[str] = field(default_factory=list)


def _row(entry: Entry, patient_id: int, import_id: int, attachment_sha: str | None,
         now: datetime, fact: str | None) -> dict:
    return {
        "patient_id": patient_id, "type": entry.type, "key": entry.key,
        "status": entry.status, "code": entry.code, "system": entry.system,
        "display": entry.display, "mapped": entry.mapped, "value": entry.value,
        "value_type": entry.value_type, "value_num": entry.value_num,
        "comparator": entry.comparator, "unit": entry.unit,
        "unit_original": entry.unit_original, "reference_range": entry.reference_range,
        "interpretation": entry.interpretation, "effective": entry.effective,
        "issued": entry.issued, "specimen_time": entry.specimen_time,
        "performer": entry.performer, "attachment_sha256": attachment_sha,
        "media_type": entry.attachment.media_type if entry.attachment else None,
        "masking": entry.masking or None,
        "details": {**entry.details, "replaces": entry.replaces_key}
        if entry.type == DOCUMENT and entry.action == ACTION_REPLACE and entry.replaces_key
        else entry.details or None,
        "import_id": import_id, "created_at": now, "fact": fact,
        "mask_override": None, "withdrawn_by": None,
    }


def _same(new: dict, old) -> bool:  # noqa: ANN001
    """Whether ``new`` states what ``old`` holds. A comment the sender adds or changes (an
    NTE under a result sent again: 'contrôlé sur un second prélèvement, médecin prévenu')
    makes it another version: compared on the columns alone, the resend was a duplicate
    and the comment was lost. A resend without the comments (cumulative reports repeat
    the values, not always the notes) still states the same."""
    compared = _COMPARED_CARRIED if _carried_cda(new, old) else _COMPARED
    if not all(new[c] == getattr(old, c) for c in compared if c != "masking"):
        return False
    if new["type"] == DOCUMENT \
            and legally_authenticated_since(new["details"], getattr(old, "details", None)):
        return False
    if _hiding(new["masking"]) != _hiding(getattr(old, "masking", None)):
        return False
    said = (new["details"] or {}).get("comments")
    return not said or said == (getattr(old, "details", None) or {}).get("comments")


_COMPARED_CARRIED = tuple(c for c in _COMPARED if c != "attachment_sha256")
_VISIBILITY_FLAGS = Path(__file__).resolve().parent / "tables" / "visibility_flags.csv"


@lru_cache(maxsize=1)
def _hiding_flags() -> frozenset[str]:
    """The flags that hide a document from someone: MASQUE_PS (access.is_masked) and those of
    tables/visibility_flags.csv."""
    return frozenset({"MASQUE_PS"} | {r["flag"] for r in read_csv_rows(_VISIBILITY_FLAGS)})


def _hiding(masking: dict | None) -> frozenset[str]:
    """What a row's flags hide, the ground on which two statements of one fact differ.
    The CR-BIO a hospital dropped in a folder (no flags) and the same CR-BIO carried in
    the lab's CI-SIS ORU (MetaDMPMSS MASQUE_PS=N, DESTDMP=Y) state the same: compared on
    the flags as written, the second superseded every entry of the first with a copy (a
    new version of nothing), where it is a confirmation. Routing flags (DESTDMP...) and
    flags stated N hide nothing."""
    if not masking:
        return frozenset()
    hiding = _hiding_flags()
    return frozenset(k for k, v in masking.items() if v is True and k in hiding)


def legally_authenticated_since(new: dict | None, old: dict | None) -> bool:
    """Whether a document's TXA-17 now says it is legally authenticated ('LA') where the
    version held said it was authenticated otherwise ('AU': both final).

    Why: an MDM^T03 (v2.5 9.3.3, 'a document is authenticated'), or a T04 or T08 re-sending
    the same report, whose TXA-17 goes from AU to LA (the author's signature with legal
    value, the DMP's legalAuthenticator) changed neither the status (final) nor the
    content: it was a duplicate, and the dossier kept saying the report was authenticated
    only. A version held without TXA-17 (a CDA filed from a file, an ORU's document) or
    already LA is left as it is; a later message saying AU again does not undo it."""
    said = (new or {}).get("completion_status")
    held = (old or {}).get("completion_status")
    return said == _LEGALLY_AUTHENTICATED and bool(held) and held != _LEGALLY_AUTHENTICATED


_LEGALLY_AUTHENTICATED = "LA"  # HL7 table 0271 (normalizers/tables/txa_statuses.csv)


def _carried_cda(new: dict, old) -> bool:  # noqa: ANN001
    """Whether ``new`` and ``old`` are one CDA document (same ClinicalDocument/id: the key),
    of which one came carried by a PDF/A-3 report (``details['structured_copy']``,
    normalizers/pdf_embedded.py) and the other alone or carried otherwise: the files differ
    (the PDF people read, the XML), the document is the same. CDA R2 gives every version a
    new id, so the same id is never a new version: it was filed as version 2 of itself
    ('control id reused'), a second current copy of one report in the history."""
    if new["type"] != DOCUMENT or new["key"] != getattr(old, "key", None):
        return False
    mine, theirs = new["details"] or {}, getattr(old, "details", None) or {}
    # the carried one's key is its CDA's id (pdf_embedded files it through the CDA path):
    # the other, under the same key, is that CDA (a file, an HL7v2 ED, an MDM naming it)
    return ("structured_copy" in mine) != ("structured_copy" in theirs)


@dataclass(slots=True)
class DepositPlan:
    """What one message will write, decided against what the dossier holds."""

    import_id: int
    source: str
    result: DepositResult
    new_rows: list[dict]  # in message order; '_parent_key' links a result to its report
    supersedes: list[tuple[dict, int]]  # (new row, id of the version it replaces)
    links: list[tuple]  # provenance of existing entries (confirmed): ``_link`` tuples
    ids_by_key: dict[str, int]  # key -> id of the entry a child's parent_key points to


def keys_of(items: Sequence[tuple[Entry, str | None]]) -> set[str]:
    """Every key a message reads or writes (its own, the ones it replaces, its parents, the
    documents it is an addendum to)."""
    return {e.key for e, _ in items} | {e.replaces_key for e, _ in items if e.replaces_key} \
        | {e.parent_key for e, _ in items if e.parent_key} \
        | {k for e, _ in items for k in appended_to(e)}


def appended_to(entry: Entry) -> list[str]:
    """The keys of the documents a document entry is an addendum to (CDA relatedDocument
    APND, CDA R2 4.2.3.1; an MDM^T06's TXA-13)."""
    if entry.type != DOCUMENT or not entry.details:
        return []
    details = entry.details
    if details.get("addendum_to"):
        return [str(details["addendum_to"])]
    cda = details.get("cda") if isinstance(details.get("cda"), dict) else {}
    return [f"document|{i}" for r in (*(details.get("related") or ()),
                                      *(cda.get("related") or ()))
            if isinstance(r, dict) and r.get("type") == "APND"
            for i in (r.get("ids") or ([r["parent_id"]] if r.get("parent_id") else []))]


def document_aliases(items: Sequence[tuple[Entry, str | None]]) -> set[str]:
    """The other keys a replacement or cancel may name a document of these items by, and
    follow to it (``follow_document_numbers``): the message's own number beside a CDA id
    ('document|' + details.message_document_id) and a scoped number's unscoped form. Two
    messages of one batch meeting under one of them depend on each other as if they shared
    the key (pipelines.process.file_in_bulk)."""
    aliases: set[str] = set()
    for entry, _ in items:
        if entry.type != DOCUMENT:
            continue
        number = (entry.details or {}).get("message_document_id")
        if number:
            aliases.add(f"document|{number}")
        for key in (entry.key, entry.replaces_key):
            aliases.update(_unscoped_forms(key) if key else ())
            form = _child_form(key) if key else None
            if form is not None:
                aliases.update((form, *_unscoped_forms(form)))
    return aliases


# Lookups by (patient, something) pairs join the entries with the list of pairs, so that each
# pair is one index probe: two IN lists (patient_id IN ... AND key IN ...) would make the
# database try every patient with every key, half a second for a 500-message batch here. The
# pairs travel as one parameter, so the statement text never changes (compiled and parsed
# once): two arrays on PostgreSQL, a JSON list on SQLite (json_each, built in).
_PAIRS = {
    "postgresql": "SELECT * FROM unnest(CAST(:p AS bigint[]), CAST(:k AS text[]))",
    "sqlite": "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') "
              "FROM json_each(:pairs)",
}


def _pair_lookup(column: str, where: str = "") -> dict[str, object]:
    sql = (f"WITH wanted(p, k) AS ({{pairs}}) SELECT entries.* FROM entries JOIN wanted "
           f"ON entries.patient_id = wanted.p AND entries.{column} = wanted.k {where}")
    return {dialect: text(sql.format(pairs=pairs)).columns(*entries.c)
            for dialect, pairs in _PAIRS.items()}


_BY_KEY = _pair_lookup("key")
# Every version holding a fact, current or not: a result restated by another channel after
# it was corrected is the superseded version's fact, not a new one (see ``_stale_fact``).
_BY_FACT = _pair_lookup("fact")


def _rows_for_pairs(conn: Connection, statements: dict, pairs: set[tuple[int, str]]):  # noqa: ANN202
    ordered = sorted(pairs)
    if conn.dialect.name == "postgresql":
        return conn.execute(statements["postgresql"], {"p": [p for p, _ in ordered],
                                                       "k": [k for _, k in ordered]})
    return conn.execute(statements["sqlite"], {"pairs": json.dumps(ordered)})


def held_entries(conn: Connection, pairs: set[tuple[int, str]]) -> dict[tuple[int, str], list]:
    """Every stored version of these (patient, key) pairs."""
    found: dict[tuple[int, str], list] = {}
    if pairs:
        for row in _rows_for_pairs(conn, _BY_KEY, pairs):
            found.setdefault((row.patient_id, row.key), []).append(row)
    return found


def entry_facts(items: Sequence[tuple[Entry, str | None]]) -> list[str | None]:
    """``fact_of`` each entry, in order (computed once per message: hashing is not free)."""
    return [fact_of(e) for e, _ in items]


def facts_of(items: Sequence[tuple[Entry, str | None]],
             facts: Sequence[str | None] | None = None) -> set[str]:
    return {f for f in (facts if facts is not None else entry_facts(items)) if f}


def held_facts(conn: Connection, pairs: set[tuple[int, str]]) -> dict[tuple[int, str], list]:
    """The entries holding these (patient, fact) pairs, whatever their key: the current ones
    (level 4) and the versions superseded since (a value corrected since)."""
    found: dict[tuple[int, str], list] = {}
    if pairs:
        for row in _rows_for_pairs(conn, _BY_FACT, pairs):
            found.setdefault((row.patient_id, row.fact), []).append(row)
    return found


_BY_CODE = _pair_lookup("code", "WHERE entries.current AND entries.status <> 'withdrawn'")


def orphan_corrections(stored: dict[tuple[int, str], list],
                       targets: Sequence[tuple[int, Sequence[tuple[Entry, str | None]]]]
                       ) -> set[tuple[int, str]]:
    """(patient, code) of the results these messages correct that the dossier holds under
    no key they name (``stored``: ``held_entries`` of their keys): the final may have come
    through another channel, under its key (``held_by_code``, then plan_deposit)."""
    pairs: set[tuple[int, str]] = set()
    for patient_id, items in targets:
        for entry, _ in items:
            if entry.type in FACT_TYPES and entry.action == ACTION_REPLACE and entry.code \
                    and not any(r.current for k in {entry.replaces_key or entry.key, entry.key}
                                for r in stored.get((patient_id, k), ())):
                pairs.add((patient_id, entry.code))
    return pairs


def codes_of(items: Sequence[tuple[Entry, str | None]], corrections: bool = False) -> set[str]:
    """The codes of a message's results (``corrections``: of the ones it corrects)."""
    return {e.code for e, _ in items if e.type in FACT_TYPES and e.code
            and (not corrections or e.action == ACTION_REPLACE)}


def held_by_code(conn: Connection, pairs: set[tuple[int, str]]) -> dict[tuple[int, str], list]:
    """The current results (not withdrawn) of these (patient, code) pairs, whatever their key.
    Read for corrections only (``orphan_corrections``): the code is not indexed."""
    found: dict[tuple[int, str], list] = {}
    if pairs:
        for row in _rows_for_pairs(conn, _BY_CODE, pairs):
            if row.type in FACT_TYPES:
                found.setdefault((row.patient_id, row.code), []).append(row)
    return found


def _corrected_elsewhere(row: dict, candidates: Sequence, spoken_for: set) -> object | None:
    """The one current result of another key that ``row``, a correction, is a new value of:
    the same test (code, instant, what tells it apart: ``_test_of``). None when none or
    several are: a correction is never applied to a guess."""
    mine = _test_of(row["type"], row["system"], row["code"], row["effective"],
                    row["specimen_time"], row["details"])
    if mine is None:
        return None
    found = [c for c in candidates if c.key not in spoken_for and c.key != row["key"]
             and _test_of(c.type, c.system, c.code, c.effective, c.specimen_time,
                          c.details) == mine]
    return found[0] if len(found) == 1 else None


def _comparable(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c if c.isalnum() else " " for c in folded
                            if not unicodedata.combining(c)).split())


def _stale_fact(row: dict, versions: list) -> object | None:
    """The latest superseded version of another key stating ``row``'s result (not a report:
    two scans of one exam are compared on their text, current ones only), when the dossier
    holds that result's key with a later version: a value corrected since."""
    if row["type"] in REPORT_TYPES:
        return None
    past = [r for r in versions if not r.current and r.superseded_by is not None
            and r.status != "withdrawn"]
    return max(past, key=lambda r: r.id) if past else None


def _reissue_target(row: dict, key: str, holding: list, has_children: bool) \
        -> tuple[object | None, str]:
    """The held report a reissued PDF report supersedes (dossiers/report_reissue.py), or
    None and why not. The held reports that are this reissue scanned again (a reissue too,
    REPORT_SIMILARITY alike) are left to level 4."""
    if has_children:
        return None, ("a reissued laboratory report: its results are filed by their own keys "
                      "and the report it reissues is not superseded")
    others = [h for h in holding if h.key != key
              and not (is_reissue(h) and _same_fact(row, [h]) is not None)]
    if len(others) < len(holding):
        return None, ""
    if not row.get("fact"):
        return None, "no exam date is read on it: which exam it reissues cannot be told"
    target, doubt = reissued_report(row, others)
    if target is None and not doubt:
        doubt = "the dossier holds no report of that exam (same date, modality and region)"
    return target, doubt


def _reissued_since(row: dict, key: str, holding: list) -> object | None:
    """The one held reissue (addendum, rectification) of the report ``row`` is, by the rules
    a reissue supersedes a report by (dossiers/report_reissue.py), when ``row`` is none."""
    if is_reissue(row):
        return None
    found = [h for h in holding if h.key != key and is_reissue(h)
             and reissued_report({"details": h.details}, [SimpleNamespace(details=row["details"])]
                                 )[0] is not None]
    return found[0] if len(found) == 1 else None


def _same_fact(row: dict, held: list) -> object | None:
    """The held entry that states the same fact as ``row``: any of them for a result (the
    fact includes the value); for a report, one whose text is REPORT_SIMILARITY alike."""
    if row["type"] not in REPORT_TYPES:
        return held[0] if held else None
    mine = _comparable(str((row.get("details") or {}).get("text") or row.get("value") or ""))
    for other in held:
        theirs = _comparable(str((other.details or {}).get("text") or other.value or ""))
        matcher = difflib.SequenceMatcher(None, mine, theirs, autojunk=False)
        if mine and theirs and matcher.real_quick_ratio() >= REPORT_SIMILARITY \
                and matcher.quick_ratio() >= REPORT_SIMILARITY \
                and matcher.ratio() >= REPORT_SIMILARITY:
            return other
    return None


# The current documents of a set (CDA setId), whatever their document id: the versions of one
# document.
_SET_OF = {
    "postgresql": "coalesce(entries.details->>'set_id', entries.details->'cda'->>'set_id')",
    "sqlite": "coalesce(json_extract(entries.details, '$.set_id'), "
              "json_extract(entries.details, '$.cda.set_id'))",
}


def _current_documents_where(detail: dict[str, str]) -> dict:
    """Per dialect: the current documents of (patient, value) pairs whose ``detail`` (a
    JSON expression per dialect) is that value. Only document keys ('document|...', a range
    of the (patient, key) index) are read."""
    return {dialect: text(f"WITH wanted(p, k) AS ({_PAIRS[dialect]}) SELECT entries.* "
                          "FROM entries JOIN wanted ON entries.patient_id = wanted.p "
                          "AND entries.key >= 'document|' AND entries.key < 'document}' "
                          f"AND entries.current AND {detail[dialect]} = wanted.k")
            .columns(*entries.c) for dialect in _PAIRS}


_BY_SET = _current_documents_where(_SET_OF)


# The current documents a message filed under its CDA id while naming them by its own number
# (HL7v2 TXA-12, kept as details.message_document_id): what a later message naming that
# number alone (a cancel, a replacement without the CDA) is about.
_NUMBER_OF = {
    "postgresql": "entries.details->>'message_document_id'",
    "sqlite": "json_extract(entries.details, '$.message_document_id')",
}
_BY_NUMBER = _current_documents_where(_NUMBER_OF)


# The current documents that replaced another (MDM^T10 naming it in TXA-13, a CDA's RPLC), by
# the key of the one they replaced (details.replaces, written at deposit).
_REPLACED_OF = {
    "postgresql": "entries.details->>'replaces'",
    "sqlite": "json_extract(entries.details, '$.replaces')",
}
_BY_REPLACED = _current_documents_where(_REPLACED_OF)


def originals(stored: dict[tuple[int, str], list],
              targets: Sequence[tuple[int, Sequence[tuple[Entry, str | None]]]]
              ) -> set[tuple[int, str]]:
    """(patient, key) of the documents these messages file as originals (not replacing
    anything) of which the dossier holds no version: the replacement may be there already."""
    return {(patient_id, entry.key) for patient_id, items in targets for entry, _ in items
            if entry.type == DOCUMENT and entry.action == ACTION_NEW
            and not stored.get((patient_id, entry.key))}


def held_replacements(conn: Connection, pairs: set[tuple[int, str]]
                      ) -> dict[tuple[int, str], list]:
    """The current documents replacing these (patient, document key) pairs, by that pair."""
    found: dict[tuple[int, str], list] = {}
    if pairs:
        for row in _rows_for_pairs(conn, _BY_REPLACED, pairs):
            found.setdefault((row.patient_id, row.details["replaces"]), []).append(row)
    return found


def follow_document_numbers(conn: Connection, stored: dict[tuple[int, str], list],
                            targets: Sequence[tuple[int, Sequence[tuple[Entry, str | None]]]],
                            sources: Sequence[str] | None = None
                            ) -> dict[tuple[int, str], list[str]]:
    """A replacement, deletion or status change naming a document the dossier does not hold by
    that key, but holds under its CDA id with this number as the message's own
    (``message_document_id``): its ``replaces_key`` (a status change's ``key``) becomes
    that document's key, and that document's versions join
    ``stored`` (call before ``held_children``: what was read from it goes with it).

    Why: an MDM^T02 carrying a CDA is filed under the CDA's id, its TXA-12 kept beside it; the
    T11 that cancels it, sent without content, names the TXA-12 alone. It found nothing, and
    the cancelled document stayed current (a tombstone was filed under the number). One
    document, or none, must answer: two documents filed under one number are left as they
    are (not chosen between).

    ``sources``: the source of each target's message; given, a number scoped by its
    namespace ('document|100234|RIS-Y') also finds what was filed before numbers were scoped
    ('document|100234', or that number as ``message_document_id``) by the same source.

    Returns the companions of the numbers held by their own key: (patient, number key) ->
    the keys of the other current documents filed with that number as their message's own
    (``plan_deposit`` replaces or withdraws them with it). Why: an MDM^T02 carrying a CDA and
    its PDF rendering under one TXA-12 files the PDF under the number and the CDA under its
    id; the T11 cancelling that number withdrew the PDF alone, the CDA stayed current.
    """
    if sources is not None:
        _follow_unscoped_numbers(conn, stored, targets, sources)
        _follow_child_documents(conn, stored, targets, sources)
    acting = {(patient_id, entry.replaces_key or entry.key)
              for patient_id, items in targets for entry, _ in items if _acts_on_number(entry)}
    acting = {(p, k) for p, k in acting if k.startswith("document|")}
    if not acting:
        return {}
    # the keys named by a replacement, deletion or status change: followed to a document
    # filed under its CDA id when none is held under the number (a T04 with content only
    # reaches the companions of what it files)
    named = {(patient_id, entry.replaces_key or entry.key)
             for patient_id, items in targets for entry, _ in items if _names_one(entry)}
    found: dict[tuple[int, str], set[str]] = {}
    for row in _rows_for_pairs(conn, _BY_NUMBER, {(p, k[len("document|"):]) for p, k in acting}):
        number = (row.details or {}).get("message_document_id")
        found.setdefault((row.patient_id, f"document|{number}"), set()).add(row.key)
    companions = _number_companions(stored, targets, found)
    for pair, keys in _filed_with(conn, stored, targets).items():
        companions[pair] = sorted({*companions.get(pair, ()), *keys})
    real: dict[tuple[int, str], str] = {pair: min(keys) for pair, keys in found.items()
                                        if pair in named and not stored.get(pair)}
    for (p, number), keys in found.items():
        if len(keys) > 1 and (p, number) in real:
            # several CDAs filed under one number, none under the number itself: the first
            # (by key) is the one named, the others its companions (see _shared_number)
            companions[(p, real[(p, number)])] = sorted(keys - {real[(p, number)]})
            _shared_number(targets, p, number, len(keys))
    if companions:
        stored.update(held_entries(conn, {(p, k) for (p, _), keys in companions.items()
                                          for k in keys}))
    if not real:
        return companions
    for patient_id, items in targets:
        for entry, _ in items:
            named = (patient_id, entry.replaces_key or entry.key)
            if named in real and _names_one(entry):
                if entry.action == ACTION_NEW:  # a status change: it is that document
                    entry.key = real[named]
                else:
                    entry.replaces_key = real[named]
    stored.update(held_entries(conn, {(p, key) for (p, _), key in real.items()}))
    return companions


def follow_replaced_versions(conn: Connection, stored: dict[tuple[int, str], list],
                             targets: Sequence[tuple[int, Sequence[tuple[Entry, str | None]]]]
                             ) -> None:
    """A replacement (MDM^T10, ORU OBX-11 C, CDA RPLC) naming a version of a document that a
    later version has replaced already: its ``replaces_key`` becomes the key of that
    document's current version (followed through ``superseded_by``), whose versions join
    ``stored``; marked for the ledger's warning (``REPLACED_VERSION_DETAIL``). Call after
    ``follow_document_numbers``, before ``held_children``.

    Why: many DPIs put the first version's number in TXA-13 of every correction (the
    'original document' their screen shows), not the last one's. The second correction of a
    report found its named version superseded, was filed as a new document beside the
    first correction, both current (two versions of one report in the dossier), and the
    ledger said the named document was 'never received'. Left as before: a document of a
    CDA set (its set orders its versions, ``_versions_around``), a replacement issued
    (TXA-6, OBR-22) before the current version it would replace (a correction arriving
    after a later one is no newer than it), and a chain that does not end in one current
    document."""
    for patient_id, items in targets:
        for entry, _ in items:
            if entry.type != DOCUMENT or entry.action != ACTION_REPLACE \
                    or not entry.replaces_key or entry.replaces_key == entry.key \
                    or document_set(entry) is not None:
                continue
            versions = stored.get((patient_id, entry.replaces_key)) or ()
            if not versions or any(r.current for r in versions):
                continue
            last = max(versions, key=lambda r: r.version)
            end = _current_of_chain(conn, patient_id, last.superseded_by)
            if end is None or end.key == entry.key or end.type != DOCUMENT:
                continue
            sent, current = _aware(entry.issued), _aware(end.issued)
            if sent is not None and current is not None and sent < current:
                continue
            entry.details[REPLACED_VERSION_DETAIL] = end.key.removeprefix("document|")
            entry.replaces_key = end.key
            stored.update(held_entries(conn, {(patient_id, end.key)}))


# details key, never stored: the replacement names a version replaced since (its value: the
# number of the current version it replaces instead, 'CR-981|DPI-Y@CHU-EST')
REPLACED_VERSION_DETAIL = "_names_replaced_version"

_CHAIN_MAX = 16  # replacements followed at most (a chain that long is no DPI's)


def _current_of_chain(conn: Connection, patient_id: int, row_id: int | None):  # noqa: ANN202
    """The current version at the end of the replacements starting at entry ``row_id``: that
    entry when current, else the current version of its key, else the entry that replaced
    that key's last version, and so on; None when the chain ends in no current version."""
    seen: set[int] = set()
    while row_id is not None and row_id not in seen and len(seen) < _CHAIN_MAX:
        seen.add(row_id)
        row = conn.execute(select(entries).where(entries.c.id == row_id)).first()
        if row is None or row.patient_id != patient_id:
            return None
        if row.current:
            return row
        last = conn.execute(select(entries).where(entries.c.patient_id == patient_id,
                                                  entries.c.key == row.key)
                            .order_by(entries.c.version.desc()).limit(1)).first()
        if last.current:
            return last
        row_id = last.superseded_by
    return None


def _shared_number(targets: Sequence[tuple[int, Sequence[tuple[Entry, str | None]]]],
                   patient_id: int, number: str, count: int) -> None:
    """Mark the entries naming ``number`` (held as several CDAs under their ids, none under
    the number itself) for the ledger's warning (``SHARED_NUMBER_DETAIL``, taken off by
    ``plan_deposit``). Why: two CDAs sent under one TXA-12 (two reports of one visit, a
    DPI reusing its number) are kept as two documents; a cancel, replacement or status
    change naming the number alone chose neither (a tombstone was filed under the number
    and both stayed current). It now acts on each, and says so."""
    for pid, items in targets:
        for entry, _ in items:
            if pid == patient_id and _names_one(entry) \
                    and (entry.replaces_key or entry.key) == number:
                entry.details[SHARED_NUMBER_DETAIL] = count


# details key, never stored: how many documents the number an entry names is held under
SHARED_NUMBER_DETAIL = "_documents_under_number"


def _number_companions(stored: dict[tuple[int, str], list],
                       targets: Sequence[tuple[int, Sequence[tuple[Entry, str | None]]]],
                       found: dict[tuple[int, str], set[str]]
                       ) -> dict[tuple[int, str], list[str]]:
    """(patient, number key) -> the other documents filed under that number, for the
    replacements and deletions naming a number the dossier holds by its own key (a PDF
    rendering filed under TXA-12 beside the CDA filed under its id), and for the status
    changes (MDM^T03) naming one."""
    companions: dict[tuple[int, str], list[str]] = {}
    for patient_id, items in targets:
        for entry, _ in items:
            pair = (patient_id, entry.replaces_key or entry.key)
            if _acts_on_number(entry) and stored.get(pair) and found.get(pair):
                companions[pair] = sorted(found[pair] - {pair[1]})
    return {pair: keys for pair, keys in companions.items() if keys}


def _filed_with(conn: Connection, stored: dict[tuple[int, str], list],
                targets: Sequence[tuple[int, Sequence[tuple[Entry, str | None]]]]
                ) -> dict[tuple[int, str], set[str]]:
    """(patient, key of a held document a replacement or deletion names) -> the other current
    documents its message filed under the same number: the PDF rendering filed under TXA-12
    beside the CDA filed under its id. Why: an MDM^T10 carrying the new CDA alone, its RPLC
    naming the old CDA, superseded the old CDA and left the old PDF current beside it."""
    numbers: dict[tuple[int, str], str] = {}  # (patient, named key) -> the message's number
    for patient_id, items in targets:
        for entry, _ in items:
            pair = (patient_id, entry.replaces_key or entry.key)
            if not _acts_on_number(entry):
                continue
            held = next((r for r in stored.get(pair, ()) if r.current), None)
            number = (held.details or {}).get("message_document_id") if held else None
            if number:
                numbers[pair] = number
    if not numbers:
        return {}
    wanted = {(p, f"document|{n}") for (p, _), n in numbers.items()}
    keys: dict[tuple[int, str], set[str]] = {}  # (patient, number) -> current keys under it
    for (p, key), rows in held_entries(conn, wanted - set(stored)).items():
        stored[(p, key)] = rows
    for p, key in wanted:
        if any(r.current for r in stored.get((p, key), ())):
            keys.setdefault((p, key[len("document|"):]), set()).add(key)
    for row in _rows_for_pairs(conn, _BY_NUMBER, {(p, n) for (p, _), n in numbers.items()}):
        keys.setdefault((row.patient_id, row.details["message_document_id"]), set()).add(row.key)
    out = {pair: keys.get((pair[0], n), set()) - {pair[1]} for pair, n in numbers.items()}
    return {pair: found for pair, found in out.items() if found}


def _names_one(entry: Entry) -> bool:
    """A document entry naming one held (its TXA-12 may be the message's number of a document
    filed under its CDA id): a replacement, a deletion, a status change (MDM^T03)."""
    return entry.type == DOCUMENT and (entry.action in (ACTION_REPLACE, ACTION_DELETE)
                                       or bool(entry.details.get(STATUS_CHANGE_DETAIL)))


def _acts_on_number(entry: Entry) -> bool:
    """A document entry whose action reaches every document filed under its number (its
    companions): one naming a held document (``_names_one``), or a new version sent by a
    status change with content (MDM^T04 outside CI-SIS), whose status they take."""
    return _names_one(entry) or (entry.type == DOCUMENT
                                 and bool(entry.details.get(STATUS_CONTENT_DETAIL)))


def _unscoped(key: str) -> str | None:
    """'document|100234' for a key 'document|100234|RIS-Y' (a document number scoped by its
    namespace, normalizers.documents.ei_id) or 'document|100234|&DPI-Z^CHU' (a bare number
    scoped by its sender, normalizers.documents.sender_scope); 'document|77||1' for the
    document of an ORU 'document|77|&SIL^LAB|1' whose bare order number is scoped by its
    sender; 'document|100234|RIS-Y' for 'document|100234|RIS-Y@IMAGERIE-EST' (a namespace
    without a universal id scoped by the sending facility, MSH-4, since documents round 10:
    that key's own unscoped form is then 'document|100234'); 'document|77|LAB|1' for the
    ORU document 'document|77|LAB@LABO-NORD|1' (its order number's namespace scoped the
    same way since documents round 11; a child order's, keyed by its parent's OBR-29, and a
    point-of-care set's device, 'document|POC-...|GAZ-01^GEM@CHU-NORD|1', since round 12);
    None for any other key (a child order's six-part key since round 13 among them: its
    earlier forms are its parent's, followed only to the same child report,
    ``_follow_child_documents``)."""
    parts = key.split("|")
    if parts[0] != "document" or "^" in parts[1]:
        return None
    if len(parts) == 3 and _FACILITY_MARK in parts[2] and not parts[2].startswith("&"):
        return f"document|{parts[1]}|{parts[2].rpartition(_FACILITY_MARK)[0]}"
    if len(parts) == 3 and parts[2]:
        return f"document|{parts[1]}"
    if len(parts) == 4 and _FACILITY_MARK in parts[2] and not parts[2].startswith("&"):
        return f"document|{parts[1]}|{parts[2].rpartition(_FACILITY_MARK)[0]}|{parts[3]}"
    if len(parts) == 4 and parts[2].startswith("&"):
        return f"document|{parts[1]}||{parts[3]}"
    return None


_FACILITY_MARK = "@"  # normalizers.identity.SCOPE_MARK: 'RIS-Y@IMAGERIE-EST'


def _unscoped_forms(key: str) -> list[str]:
    """Every key a document was filed under before its number was scoped as ``key`` is, the
    nearest first: 'document|100234|RIS-Y' then 'document|100234' for
    'document|100234|RIS-Y@IMAGERIE-EST'."""
    forms: list[str] = []
    old = _unscoped(key)
    while old and len(forms) < 2:
        forms.append(old)
        old = _unscoped(old)
    return forms


def _from_scope_sender(key: str, logical_id: str) -> bool:
    """Whether an import (its logical id 'MSH-3|MSH-4|MSH-10') is of the sender a document
    key is scoped by: MSH-3 and MSH-4 for 'document|100234|&DPI-Z^CHU', MSH-4 for
    'document|100234|RIS-Y@IMAGERIE-EST' (and an ORU's 'document|77|LAB@LABO-NORD|1'); any
    import when the key names no sender (its namespace is the assigning application's
    alone)."""
    parts = key.split("|")
    scope = parts[2] if len(parts) > 2 else ""
    if scope.startswith("&"):
        return logical_id.startswith(scope[1:].replace("^", "|") + "|")
    if len(parts) in (3, 4) and _FACILITY_MARK in scope:
        return logical_id.split("|")[1:2] == [scope.rpartition(_FACILITY_MARK)[2]]
    return True


def _follow_unscoped_numbers(conn: Connection, stored: dict[tuple[int, str], list],
                             targets: Sequence[tuple[int, Sequence[tuple[Entry, str | None]]]],
                             sources: Sequence[str]) -> None:
    """A replacement or deletion naming 'document|100234|RIS-Y' that the dossier holds no
    version of, where the same source filed the document before numbers were scoped by
    their namespace ('document|100234', or '100234' as the message's own number beside a CDA
    id): it acts on that document. Only the same source's: another application's 100234 is
    another document (the reason numbers are scoped).

    The same holds for a document sent again as new (a T02 resent under another MSH-10, an
    old import rerun): it keeps the key its document was filed under, so that it is that
    document again (a duplicate, or its next version), not a second current copy of it.
    Only the unscoped key itself answers then, never a CDA filed with the number as its
    message's own."""
    # (patient, old key) -> (new key, source, the report the entry hangs from)
    named: dict[tuple[int, str], tuple[str, str, str | None]] = {}
    for (patient_id, items), source in zip(targets, sources, strict=True):
        for entry, _ in items:
            key = entry.replaces_key or entry.key
            if entry.type != DOCUMENT or stored.get((patient_id, key)):
                continue
            for old in _unscoped_forms(key):
                named[(patient_id, old)] = (key, source, entry.parent_key)
    if not named:
        return
    held = held_entries(conn, set(named))
    children = _child_order_documents(conn, held)
    for row in _rows_for_pairs(conn, _BY_NUMBER, {(p, k[len("document|"):]) for p, k in named}):
        number = f"document|{(row.details or {}).get('message_document_id')}"
        held.setdefault((row.patient_id, number), []).append(row)
    imports_of = {r.import_id for rows in held.values() for r in rows}
    of_import = {row.id: (row.source, row.logical_id or "") for row in conn.execute(
        select(imports.c.id, imports.c.source, imports.c.logical_id)
        .where(imports.c.id.in_(imports_of)))} if imports_of else {}
    real: dict[tuple[int, str], str] = {}  # (patient, scoped key) -> key held
    legacy: dict[tuple[int, str], str] = {}  # the same, the unscoped key itself only
    # the nearest form first ('document|100234|RIS-Y' before 'document|100234': the longer)
    for (patient_id, old), rows in sorted(held.items(), key=lambda kv: -len(kv[0][1])):
        key, source, report = named[(patient_id, old)]
        # a number scoped by its sender: only that sender's (MSH-3, MSH-4; MSH-4 for a
        # namespace without a universal id) filing is its own; one source (an MLLP
        # listener) carries many senders, who number alike. A child order's document
        # filed under its parent's numbers is another order's (``_child_order_documents``).
        keys = {r.key for r in rows
                if (imp := of_import.get(r.import_id)) is not None and imp[0] == source
                and _from_scope_sender(key, imp[1])
                and (r.id not in children or _same_report(children[r.id], report))}
        if len(keys) == 1 and (patient_id, key) not in real:
            real[(patient_id, key)] = next(iter(keys))
        if old in keys and (patient_id, key) not in legacy:
            legacy[(patient_id, key)] = old
    if not real:
        return
    for patient_id, items in targets:
        renamed = {}
        for entry, _ in items:
            if entry.type != DOCUMENT:
                continue
            pair = (patient_id, entry.replaces_key or entry.key)
            if entry.action in (ACTION_REPLACE, ACTION_DELETE) and pair in real:
                entry.replaces_key = real[pair]
            elif entry.action == ACTION_NEW and pair in legacy:
                renamed[entry.key] = legacy[pair]
                entry.key = legacy[pair]
        for entry, _ in items:  # what hangs from a renamed document follows it
            if entry.parent_key in renamed:
                entry.parent_key = renamed[entry.parent_key]
    stored.update(held_entries(conn, {(p, key) for (p, _), key in real.items()}))


def _child_form(key: str) -> str | None:
    """'document|24B0412-03|LAB@LABO-NORD|1', the key its parent's numbers gave it before
    documents round 13, for a child order's document key
    'document|24B0412-03|LAB@LABO-NORD|1|18769-0|600-7^1' (normalizers.lab.orders.
    child_document_id: the child's OBR-4 and parent result added); None for any other key
    (no other document key has six parts)."""
    if not key.startswith("document|"):
        return None
    parts = key.split("|")
    return "|".join(parts[:4]) if len(parts) == 6 else None


def _follow_child_documents(conn: Connection, stored: dict[tuple[int, str], list],
                            targets: Sequence[tuple[int, Sequence[tuple[Entry, str | None]]]],
                            sources: Sequence[str]) -> None:
    """A child order's document (an antibiogram's PDF, keyed by its parent's numbers and its
    own identity since documents round 13) the dossier holds no version of, filed before
    under its parent's form of the key ('document|24B0412-03|LAB@LABO-NORD|1', or that key's
    unscoped forms) by the same source and sender: its resend, correction or cancel acts on
    that document (a resend keeps its key, a correction or cancel names it), as
    ``_follow_unscoped_numbers`` does for scoped numbers.

    Only when the document held there is that child order's: its current (else last)
    version hangs from the same child report (``parent_key``: the child's OBR-4 and parent
    result are in its key). The parent's own document (the culture report PDF) is held under
    that same form: followed, the antibiogram would replace it again, the fault this round
    fixes. A document held without a report, sent by a child order without results, cannot
    be told from its parent's: left alone (the resend is filed beside it, nothing hidden)."""
    wanted: list[tuple[int, Entry, list[str], str]] = []  # (patient, entry, old forms, source)
    for (patient_id, items), source in zip(targets, sources, strict=True):
        for entry, _ in items:
            key = entry.replaces_key or entry.key
            if entry.type != DOCUMENT or not entry.parent_key or stored.get((patient_id, key)):
                continue
            form = _child_form(key)
            if form is not None:
                wanted.append((patient_id, entry, [form, *_unscoped_forms(form)], source))
    if not wanted:
        return
    held = held_entries(conn, {(p, f) for p, _, forms, _ in wanted for f in forms})
    if not held:
        return
    rows = [r for versions in held.values() for r in versions]
    report_ids = {r.parent_id for r in rows if r.parent_id is not None}
    reports = {row.id: row.key for row in conn.execute(
        select(entries.c.id, entries.c.key).where(entries.c.id.in_(report_ids)))} \
        if report_ids else {}
    imports_of = {r.import_id for r in rows}
    of_import = {row.id: (row.source, row.logical_id or "") for row in conn.execute(
        select(imports.c.id, imports.c.source, imports.c.logical_id)
        .where(imports.c.id.in_(imports_of)))}
    found: set[tuple[int, str]] = set()
    for patient_id, entry, forms, source in wanted:
        for form in forms:  # the nearest form first
            versions = [r for r in held.get((patient_id, form), ())
                        if (imp := of_import.get(r.import_id)) is not None
                        and imp[0] == source and _from_scope_sender(forms[0], imp[1])]
            if not versions:
                continue
            last = next((r for r in versions if r.current), None) \
                or max(versions, key=lambda r: r.version)
            if _same_report(reports.get(last.parent_id), entry.parent_key):
                if entry.action in (ACTION_REPLACE, ACTION_DELETE):
                    entry.replaces_key = form
                else:
                    entry.key = form
                found.add((patient_id, form))
                break
    stored.update(held_entries(conn, found))


def _child_order_documents(conn: Connection, held: dict[tuple[int, str], list]
                           ) -> dict[int, str]:
    """id -> report key of the held documents that hang from a child order's report (its key
    ends with the parent result it is about, OBR-26: 'report|24B0412-03|LAB|18769-0|600-7^1').

    Why: before documents round 13 such a document (an antibiogram's PDF) was keyed by its
    parent's numbers, as the parent's own document (the culture report's PDF) still is: the
    parent's document, sent after the upgrade under the scoped form of that key, found the
    antibiogram filed under the unscoped form and was filed as its new version."""
    reports = {r.parent_id: r.id for rows in held.values() for r in rows
               if r.type == DOCUMENT and r.parent_id is not None}
    if not reports:
        return {}
    found: dict[int, str] = {}
    for row in conn.execute(select(entries.c.id, entries.c.key)
                            .where(entries.c.id.in_(set(reports)))):
        if row.key.startswith("report|") and len(row.key.split("|")) > 4:
            found.update({doc: row.key for doc in (r.id for rows in held.values()
                                                   for r in rows if r.parent_id == row.id)})
    return found


def _same_report(held: str | None, parent_key: str | None) -> bool:
    """Whether a held report key and a report key just read name one report, either possibly
    filed before its order number was scoped (``unscoped_order_key``)."""
    return held is not None and parent_key is not None \
        and (unscoped_order_key(held) or held) == (unscoped_order_key(parent_key) or parent_key)


_ORDER_KEY_TYPES = ("result|", "report|")  # the keys an order number is part of


def unscoped_order_key(key: str) -> str | None:
    """The key a result or report had before its order number was scoped by its assigning
    authority (normalizers.lab.order_scope): 'result|24C0315-07||2823-3|LN|' for
    'result|24C0315-07|&SIL-BIO^LABO-DEMO|2823-3|LN|', 'report|77|LAB|K' for
    'report|77|LAB&1.2.250.1.999.1|K'; None for any other key."""
    # most keys have no '&' at all (a namespace alone, another type): answered before the
    # split, for every key of every message filed
    if "&" not in key or not key.startswith(_ORDER_KEY_TYPES):
        return None
    parts = key.split("|")
    if len(parts) < 4 or "&" not in parts[2]:
        return None
    parts[2] = parts[2].partition("&")[0]
    return "|".join(parts)


def follow_order_scopes(conn: Connection, stored: dict[tuple[int, str], list],
                        targets: Sequence[tuple[int, Sequence[tuple[Entry, str | None]]]],
                        sources: Sequence[str]) -> None:
    """A result, report or correction keyed by its scoped order number that the dossier holds
    no version of, filed before numbers were scoped by the same sender (MSH-3/MSH-4, for a
    bare number scoped by it; whatever channel it came through) or, for a number scoped by
    namespace and universal id, through the same source: it keeps the key held, so that the
    final of a preliminary filed then replaces it instead of standing beside it, and a resend
    is a duplicate. Another sender's entry under the unscoped key is another laboratory's
    order (the reason numbers are scoped): left alone. Call right after ``held_entries``
    (the rows followed join ``stored``)."""
    # (patient, old key) -> {(scoped key, source)}: one batch may hold two labs' same number
    named: dict[tuple[int, str], set[tuple[str, str]]] = {}
    # Three keys of every entry filed; one without '&' has no scope (skipped without a
    # call). Each scoped key asked once: every result of an order names its report key as
    # parent. ``named`` is a dict of sets: the order they are asked in changes nothing.
    scoped = {(patient_id, key, source)
              for (patient_id, items), source in zip(targets, sources, strict=True)
              for entry, _ in items
              for key in (entry.key, entry.replaces_key, entry.parent_key)
              if key and "&" in key}
    for patient_id, key, source in scoped:
        old = unscoped_order_key(key)
        if old is not None and not stored.get((patient_id, key)):
            named.setdefault((patient_id, old), set()).add((key, source))
    if not named:
        return
    held = held_entries(conn, set(named))
    imports_of = {r.import_id for rows in held.values() for r in rows}
    if not imports_of:
        return
    of_import = {row.id: row for row in conn.execute(
        select(imports.c.id, imports.c.source, imports.c.logical_id)
        .where(imports.c.id.in_(imports_of)))}
    real: dict[tuple[int, str], str] = {}  # (patient, scoped key) -> unscoped key held
    for (patient_id, old), rows in held.items():
        for key, source in named[(patient_id, old)]:
            scope = key.split("|")[2]
            sender = scope[1:].replace("^", "|") + "|" if scope.startswith("&") else None
            if any((imp := of_import.get(r.import_id)) is not None
                   and (imp.source == source if sender is None
                        else (imp.logical_id or "").startswith(sender))
                   for r in rows):
                real[(patient_id, key)] = old
    if not real:
        return
    _rekey(targets, real, parents=True)
    followed = {(patient_id, old) for (patient_id, _), old in real.items()}
    stored.update({pair: rows for pair, rows in held.items() if pair in followed})


# OBX-4 (v2.5 7.4.2.4): 'use a null or 1 when there is no need for multiples': one sub-id,
# two spellings
_DEFAULT_SUB_IDS = {"": "1", "1": ""}


def _other_sub_id_spelling(key: str) -> str | None:
    """A result's key ('result|order|ns|code|system|sub-id[|scope]') with its default sub-id
    spelled the other way ('' for '1', '1' for ''); None for any other key (another sub-id,
    a key told apart by time or rank: '@...', '#n')."""
    parts = key.split("|")
    if parts[0] != "result" or len(parts) not in (6, 7) or parts[5] not in _DEFAULT_SUB_IDS \
            or "@" in parts[-1] or "#" in parts[-1]:
        return None
    parts[5] = _DEFAULT_SUB_IDS[parts[5]]
    return "|".join(parts)


def follow_sub_id_spellings(conn: Connection, stored: dict[tuple[int, str], list],
                            targets: Sequence[tuple[int, Sequence[tuple[Entry, str | None]]]]
                            ) -> None:
    """A result, or its correction or withdrawal, keyed with OBX-4 empty that the dossier
    holds no version of, held under OBX-4 '1' (or the reverse): HL7 v2.5 makes them one
    sub-id, and a laboratory's middleware and its LIS, or one LIS before and after an
    upgrade, write it each its own way. Keyed apart, a final stood beside the preliminary it
    completes, a second final beside the first, and a withdrawal (OBX-11 W) left a tombstone
    while the result withdrawn stayed current. It keeps the key held now. Not when the
    message itself sends both spellings (two results then, as before). Call right after
    ``held_entries`` (the rows followed join ``stored``)."""
    named: dict[tuple[int, str], str] = {}  # (patient, other spelling) -> key sent
    for patient_id, items in targets:
        own = {k for entry, _ in items for k in (entry.key, entry.replaces_key) if k}
        for entry, _ in items:
            for key in (entry.key, entry.replaces_key):
                other = _other_sub_id_spelling(key) if key else None
                if other is not None and other not in own \
                        and not stored.get((patient_id, key)):
                    named[(patient_id, other)] = key
    if not named:
        return
    held = {pair: rows for pair, rows in held_entries(conn, set(named)).items() if rows}
    if not held:
        return
    real = {(patient_id, named[(patient_id, other)]): other for patient_id, other in held}
    _rekey(targets, real, parents=False)
    stored.update(held)


def _rekey(targets: Sequence[tuple[int, Sequence[tuple[Entry, str | None]]]],
           real: dict[tuple[int, str], str], *, parents: bool) -> None:
    """The entries' keys (and the keys they replace, and with ``parents`` the key of the
    entry they hang from) taken as the dossier holds them: ``real`` maps (patient, key sent)
    to the key held."""
    for patient_id, items in targets:
        for entry, _ in items:
            entry.key = real.get((patient_id, entry.key), entry.key)
            if entry.replaces_key:
                entry.replaces_key = real.get((patient_id, entry.replaces_key),
                                              entry.replaces_key)
            if parents and entry.parent_key:
                entry.parent_key = real.get((patient_id, entry.parent_key), entry.parent_key)


def document_set(entry: Entry) -> tuple[str, str, str | None] | None:
    """(set id, version number, effective time) of a versioned document entry (a CDA, as a
    file or inside HL7v2); None for anything else."""
    if entry.type != DOCUMENT or not entry.details:
        return None
    return _set_version(entry.details, entry.effective)


def _set_version(details: dict | None, effective: str | None) -> tuple[str, str, str | None] | None:
    if not details:
        return None
    cda = details.get("cda") if isinstance(details.get("cda"), dict) else {}
    set_id = details.get("set_id") or cda.get("set_id")
    if not set_id or _adds_to_another(details, cda):
        return None
    return str(set_id), str(details.get("version") or cda.get("version_number") or ""), effective


def _adds_to_another(details: dict, cda: dict) -> bool:
    """An addendum or a transformation of another document (CDA relatedDocument APND, XFRM
    without RPLC; an MDM^T06 addendum): no version of its parent's set, whatever setId it
    carries (a CDA inside HL7v2 keeps the one it was sent with)."""
    if details.get("addendum_to"):
        return True
    kinds = {r.get("type") for r in (*(details.get("related") or ()),
                                      *(cda.get("related") or ())) if isinstance(r, dict)}
    return bool(kinds & {"APND", "XFRM"}) and "RPLC" not in kinds


def sets_of(items: Sequence[tuple[Entry, str | None]]) -> set[str]:
    """The document sets a message files a version of."""
    return {v[0] for e, _ in items if e.type == DOCUMENT and (v := document_set(e))}


def held_set_documents(conn: Connection, pairs: set[tuple[int, str]]
                       ) -> dict[tuple[int, str], list]:
    """The current documents of these (patient, set id) pairs, by (patient, key) like
    ``held_entries`` (merge them into its result: plan_deposit then sees the other versions
    of a document it files, and held_children what was read from them)."""
    found: dict[tuple[int, str], list] = {}
    if pairs:
        for row in _rows_for_pairs(conn, _BY_SET, pairs):
            found.setdefault((row.patient_id, row.key), []).append(row)
    return found


def _later(a: tuple[str, str, str | None], b: tuple[str, str, str | None]) -> bool | None:
    """Whether version ``a`` of a document set is later than ``b``: by versionNumber, else
    by effectiveTime (both with an offset); None when they cannot be ordered."""
    try:
        va, vb = int(a[1]), int(b[1])
    except ValueError:
        va = vb = None
    if va is not None and va != vb:
        return va > vb
    ta, tb = _aware(a[2]), _aware(b[2])
    if ta is None or tb is None or ta == tb:
        return None
    return ta > tb


def _aware(iso: str | None) -> datetime | None:
    if not iso or len(iso) <= 10:
        return None
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@lru_cache(maxsize=1)
def status_order() -> dict[str, int]:
    """Status -> rank in a result's life (dossiers/tables/status_order.csv)."""
    return {r["status"]: int(r["rank"])
            for r in read_csv_rows(Path(__file__).parent / "tables" / "status_order.csv")}


def _earlier_state(row: dict, old) -> bool:  # noqa: ANN001
    """An HL7v2 result arriving in an earlier state than the one held (a preliminary after
    the final, a final after its correction): a late message, unless it says it was issued
    (OBX-19 / OBR-22) after the one held."""
    order = status_order()
    new, held = order.get(row["status"]), order.get(old.status)
    if new is None or held is None or new >= held:
        return False
    sent, kept = _aware(row["issued"]), _aware(old.issued)
    return not (sent is not None and kept is not None and sent > kept)


def _before_replacement(entry: Entry, row: dict, old) -> bool:  # noqa: ANN001
    """A lab result (OBX-11 F or P, a new entry) arriving where the dossier holds the
    replacement its sender sent with the withdrawal of that result (W then F in one
    message, ``REPLACES_WITHDRAWN_DETAIL``): the original withdrawn, arriving late or sent
    again, unless it says it was issued (OBX-19 / OBR-22) after the replacement. Filed as a
    new version, it was current over the replacement: when the original had never been
    received, nothing (no tombstone: the W was its replacement's) told it was withdrawn."""
    if entry.type != LAB_RESULT or entry.action != ACTION_NEW \
            or not (old.details or {}).get(REPLACES_WITHDRAWN_DETAIL):
        return False
    sent, kept = _aware(row["issued"]), _aware(old.issued)
    return not (sent is not None and kept is not None and sent > kept)


def held_children(conn: Connection, stored: dict[tuple[int, str], list]) -> dict[int, list]:
    """The current entries read from the documents among ``stored`` (parent_id), so that a
    document replaced or deleted takes along what it no longer states."""
    doc_ids = {r.id for rows in stored.values() for r in rows
               if r.current and r.type == DOCUMENT}
    found: dict[int, list] = {}
    if not doc_ids:
        return found
    # The results an earlier version stated and this one confirmed unchanged still hang from
    # that earlier version (a CDA version has its own id and key): grouped under the
    # current one, or a third version dropping them left them current, shown as its own.
    owner = versions_of(conn, doc_ids)
    ids = sorted(owner)
    for start in range(0, len(ids), 500):
        for row in conn.execute(select(entries).where(
                entries.c.parent_id.in_(ids[start:start + 500]), entries.c.current)):
            found.setdefault(owner[row.parent_id], []).append(row)
    return found


def held_confirmed(conn: Connection, stored: dict[tuple[int, str], list]) -> dict[int, list]:
    """The current results of other keys that the documents among ``stored`` (or their
    earlier versions) confirmed instead of filing them (level 4: a CR-BIO stating a result
    the lab's ORU brought first), under the current document's id. A new version of that
    document stating another value for the same test supersedes them (``plan_deposit``)."""
    docs = {r.id: r for rows in stored.values() for r in rows
            if r.current and r.type == DOCUMENT}
    found: dict[int, list] = {}
    if not docs:
        return found
    owner = versions_of(conn, docs)
    ids = sorted(owner)
    by_import: dict[tuple[int, int], set[int]] = {}  # (import, patient) -> current doc ids
    for start in range(0, len(ids), 500):
        for r in conn.execute(select(entries.c.id, entries.c.import_id, entries.c.patient_id)
                              .where(entries.c.id.in_(ids[start:start + 500]))):
            by_import.setdefault((r.import_id, r.patient_id), set()).add(owner[r.id])
    imported = sorted({i for i, _ in by_import})
    for start in range(0, len(imported), 500):
        for row in conn.execute(select(entries).join(
                provenance, provenance.c.entry_id == entries.c.id).where(
                provenance.c.import_id.in_(imported[start:start + 500]),
                provenance.c.relation == "confirmed", entries.c.current,
                entries.c.type.in_(sorted(FACT_TYPES)))
                .add_columns(provenance.c.import_id.label("confirmed_by"))):
            for doc_id in by_import.get((row.confirmed_by, row.patient_id), ()):
                found.setdefault(doc_id, []).append(row)
    return found


def deposit(conn: Connection, *, patient_id: int, import_id: int, source: str,
            items: Sequence[tuple[Entry, str | None]]) -> DepositResult:
    """Deposit (entry, attachment sha256) pairs of one message (one query, then a handful of
    multi-row statements whatever its number of results)."""
    mine = entry_facts(items)
    stored = held_entries(conn, {(patient_id, k) for k in keys_of(items)})
    stored.update(held_set_documents(conn, {(patient_id, s) for s in sets_of(items)}))
    follow_order_scopes(conn, stored, [(patient_id, items)], [source])
    follow_sub_id_spellings(conn, stored, [(patient_id, items)])
    companions = follow_document_numbers(conn, stored, [(patient_id, items)], [source])
    follow_replaced_versions(conn, stored, [(patient_id, items)])
    facts = held_facts(conn, {(patient_id, f) for f in facts_of(items, mine)})
    by_code = held_by_code(conn, orphan_corrections(stored, [(patient_id, items)]))
    replacements = held_replacements(conn, originals(stored, [(patient_id, items)]))
    plan = plan_deposit(stored, patient_id=patient_id, import_id=import_id, source=source,
                        items=items, facts=facts, children=held_children(conn, stored),
                        item_facts=mine, by_code=by_code, replacements=replacements,
                        confirmed=held_confirmed(conn, stored), companions=companions)
    write_deposits(conn, [plan])
    return plan.result


def plan_deposit(stored: dict[tuple[int, str], list], *, patient_id: int, import_id: int,
                 source: str, items: Sequence[tuple[Entry, str | None]],
                 facts: dict[tuple[int, str], list] | None = None,
                 children: dict[int, list] | None = None,
                 now: datetime | None = None,
                 item_facts: Sequence[str | None] | None = None,
                 by_code: dict[tuple[int, str], list] | None = None,
                 replacements: dict[tuple[int, str], list] | None = None,
                 confirmed: dict[int, list] | None = None,
                 companions: dict[tuple[int, str], list[str]] | None = None) -> DepositPlan:
    """Decide, without writing, what one message adds to a dossier given the stored versions
    of its keys (``held_entries``), the entries holding its facts (``held_facts``) and the
    entries read from the documents it replaces or deletes (``held_children``).
    ``item_facts``: ``entry_facts(items)`` when the caller has it already. ``by_code``: the
    ``held_by_code`` of its ``orphan_corrections``. ``replacements``: the
    ``held_replacements`` of its ``originals``. ``confirmed``: ``held_confirmed``.
    ``companions``: what ``follow_document_numbers`` returned."""
    facts = facts or {}
    children = children or {}
    replaced_docs: list[tuple[object, str]] = []  # (document row, source_ref of the action)
    stated = {e.key for e, _ in items}
    crossed: set[str] = set()  # keys of other channels' results this message corrects
    now = now or datetime.now(UTC)
    result = DepositResult()
    held: dict[str, object] = {}  # key -> current row
    latest: dict[str, int] = {}  # key -> highest version stored, current or not
    for (pid, key), rows in stored.items():
        if pid != patient_id:
            continue
        for row in rows:
            latest[key] = max(latest.get(key, 0), row.version)
            if row.current:
                held[key] = row
    ids_by_key: dict[str, int] = {k: r.id for k, r in held.items()}
    replaced_away = _replaced_away(stored, patient_id, held)
    doc = next((e for e, _ in items if document_set(e) is not None), None)
    newer, older = _versions_around(doc, held) if doc is not None else (None, [])
    buried = _buried(items, held)
    links: list[tuple] = []
    new_rows: list[dict] = []  # rows to insert, in message order
    supersedes: list[tuple[dict, int]] = []  # (new row, id of the version it replaces)
    taken: dict[str, dict] = {}  # keys given a new row by this message
    message_facts: dict[str, dict] = {}  # fact -> the row of this message first stating it
    parents = {e.parent_key for e, _ in items if e.parent_key}  # keys others hang from
    carried = {e.key for e, _ in items if e.type == DOCUMENT}  # entries read from one: its channel
    status_changed: list[tuple[object, str, str]] = []  # (document held, key, source_ref)

    if item_facts is None:
        item_facts = entry_facts(items)
    for (entry, sha), fact in zip(items, item_facts, strict=True):
        if SHARED_NUMBER_DETAIL in entry.details:
            shared = entry.details.pop(SHARED_NUMBER_DETAIL)
            result.shared_numbers.append(f"{entry.source_ref}: the number names {shared}")
        if REPLACED_VERSION_DETAIL in entry.details:
            current = entry.details.pop(REPLACED_VERSION_DETAIL)
            result.replaced_versions.append(f"{entry.source_ref}: replaces {current}")
        row = _row(entry, patient_id, import_id, sha, now, fact)
        row["_parent_key"] = entry.parent_key
        row["_ref"] = entry.source_ref
        if entry.type == DOCUMENT and entry.action == ACTION_NEW:
            _mask_like_parent(row, entry, held, result)
        if entry.action in (ACTION_REPLACE, ACTION_DELETE):
            old = held.get(entry.replaces_key or entry.key) or held.get(entry.key)
            if old is not None and entry.type == DOCUMENT and newer is None:
                replaced_docs.append((old, entry.source_ref))
        else:
            old = held.get(entry.key)
            if entry.type == DOCUMENT and entry.details.get(STATUS_CHANGE_DETAIL):
                if old is None or old.status == "withdrawn":
                    # nothing to change: never received, held back (not for care yet),
                    # or withdrawn; filing it would make an empty current document
                    result.unheld_status_changes.append(entry.source_ref)
                    continue
                _carry_held_document(row, old)
                status_changed.append((old, entry.key, entry.source_ref))
            if old is not None and entry.details.get("value_held"):
                _carry_held_value(row, old)
            if old is not None and not row["masking"] and old.masking:
                # Sent again stating no flags (the CDA an MDM carried with MetaDMPMSS
                # INVISIBLE_PATIENT=Y, received again as a file, which has none): the flags
                # held stay. It was a new version without them: the document shown to the
                # patient it was hidden from. Flags are changed by stating them, not by
                # leaving them out.
                row["masking"] = old.masking
        if entry.action == ACTION_DELETE:
            if old is None:
                # a tombstone: the deletion is kept under the key it names, withdrawn, so
                # that the original, arriving later, is not filed as current
                row.update(key=entry.replaces_key or entry.key, status="withdrawn", fact=None,
                           _parent_key=None, _withdraw=True)
                if entry.type == DOCUMENT and row["key"] in replaced_away:
                    # a version the dossier holds, replaced since (MDM^T04 naming the T02's
                    # document after its T10): said as 'not held yet', which it was; the
                    # current version stays, and the ledger says so
                    result.deleted_replaced.append(entry.source_ref)
                else:
                    result.tombstones += 1
            elif old.status == "withdrawn":
                result.duplicates += 1
                if old.import_id != import_id:
                    links.append(_link(old.id, import_id, source, entry.source_ref,
                                       "confirmed", now))
                continue
            else:
                row = {c.name: getattr(old, c.name) for c in entries.columns if c.name != "id"}
                row.update(status="withdrawn", import_id=import_id, created_at=now,
                           _parent_key=None, _ref=entry.source_ref, _withdraw=True)
                if entry.issued:  # when it was withdrawn: a later re-issue is told apart
                    row["issued"] = entry.issued
        elif old is None and entry.action == ACTION_REPLACE and newer is None \
                and entry is doc and older:
            # v3 naming v2 (RPLC), v2 never received: it supersedes the versions of its set
            # the dossier holds (v1). Said as 'filed as new entries', which it was not.
            result.gaps += 1
        elif old is None and entry.action == ACTION_REPLACE and newer is None:
            old = _corrected_elsewhere(row, by_code.get((patient_id, entry.code or ""), ()),
                                       stated | crossed) if by_code else None
            if old is None and entry.type == DOCUMENT:
                # said with its place: the parent document was never received (or is held
                # in no dossier of this patient); the replacement is filed as a new document
                result.missing_documents.append(entry.source_ref)
            elif old is None:
                result.missing_targets += 1  # a correction of something we never received
            else:
                # The final came through another channel (the hospital's CR-BIO), the
                # correction through the lab's ORU: filed as a new entry, both values were
                # current. The correction supersedes that final, history kept.
                crossed.add(old.key)
                result.crossed += 1
        key = row["key"]
        if key in taken:
            # a row this message planned already (two entries under one key): a dict
            if _same(row, SimpleNamespace(**taken[key])):
                result.duplicates += 1  # the same fact twice in one message
                continue
            # Two different facts under one key in one message: keep both, never drop data.
            row["key"] = key = f"{key}#{sum(1 for k in taken if k.startswith(key))}"
            old = None
        elif old is not None and old.key == key and entry.action != ACTION_DELETE \
                and _same(row, old):
            result.duplicates += 1
            ids_by_key[key] = old.id
            if old.import_id != import_id:  # a rerun of the same import adds no link
                links.append(_link(old.id, import_id, source, entry.source_ref, "confirmed",
                                   now))
            continue
        fact = row.get("fact")
        versions = facts.get((patient_id, fact)) if fact else None  # mostly none: no call
        holding = [r for r in versions if r.current and r.status != "withdrawn"] \
            if versions else None
        reissued = None
        if row["type"] in REPORT_TYPES and is_reissue(row) and entry.action == ACTION_NEW \
                and old is None and key not in held and key not in taken:
            # A report sent again with an addendum or as a rectification: a new version of
            # the report of that exam it reissues (level 3), history kept; filed beside it,
            # both were current, the first reading shown as if never added to nor corrected
            reissued, doubt = _reissue_target(row, key, holding or [], key in parents)
            if reissued is None and doubt:
                result.reissue_doubts.append(f"{entry.source_ref}: {doubt}")
        since = _reissued_since(row, key, holding) if holding and reissued is None \
            and old is None and key not in held and key not in parents and key not in taken \
            and entry.action == ACTION_NEW and row["type"] in REPORT_TYPES else None
        same = _same_fact(row, holding) if holding and reissued is None and since is None \
            else None
        if same is not None and any(c.id == same.id for d, _ in replaced_docs
                                    for c in children.get(d.id, ())):
            # what the document this message replaces said: the new version says it again
            # under its own key (the old one's is withdrawn with it below). Taken as the same
            # fact, the new version had no report and the old one's was withdrawn: none left.
            same = None
        if same is not None and old is None and key not in held and same.key != key:
            # The same result through another channel (HL7v2, then inside a CDA lab report),
            # the same report scanned again: one entry, one more provenance link (level 4).
            result.duplicates += 1
            ids_by_key[key] = same.id
            if same.import_id != import_id:
                links.append(_link(same.id, import_id, source, entry.source_ref, "confirmed",
                                   now))
            continue
        if since is not None:
            # the report an addendum or a rectification the dossier holds reissues, arriving
            # after it (a rerun, a slower channel): history, superseded by the reissue; it
            # was filed current beside it. Received again (a rerun, a rescan: other bytes, the
            # same text), one more link on that history
            past = [r for r in stored.get((patient_id, key), ()) if not r.current]
            kept = _in_history(row, past) or _same_fact(row, past)
            if kept is not None:
                result.duplicates += 1
                if kept.import_id != import_id:
                    links.append(_link(kept.id, import_id, source, entry.source_ref,
                                       "confirmed", now))
                continue
            row.update(version=latest.get(key, 0) + 1, current=False, superseded_by=since.id)
            taken[key] = row
            new_rows.append(row)
            result.history += 1
            continue
        stale = _stale_fact(row, versions) if versions and not holding else None
        if stale is not None and old is None and key not in held and stale.key != key \
                and entry.action == ACTION_NEW:
            # The same result through another channel as a version the dossier holds
            # superseded (the final, corrected since by the lab; the hospital's report
            # written before the correction says the final's value): one more link on that
            # version, which stays history. Filed as new, the value the correction replaced
            # was current again beside it.
            result.duplicates += 1
            result.stale += 1
            if stale.import_id != import_id:
                links.append(_link(stale.id, import_id, source, entry.source_ref, "confirmed",
                                   now))
            continue
        twin = message_facts.get(fact) if fact and row["type"] not in REPORT_TYPES else None
        if twin is not None and old is None and key not in held and twin["key"] != key \
                and entry.action != ACTION_DELETE and key not in parents \
                and (twin["_parent_key"] in carried) != (entry.parent_key in carried):
            # The same result through two channels of one message: an OBX, and the CDA lab
            # report an OBX of the same ORU carries. Filed once (level 4, as when they come
            # in two messages); it was filed twice, both current. Two orders of one message
            # repeating a result are not two channels: both stay. The second channel is a
            # provenance link of the one entry, as level 4 gives across messages.
            result.duplicates += 1
            twin.setdefault("_confirmed_by", []).append(entry.source_ref)
            continue
        row["version"] = latest.get(key, 0) + 1
        if reissued is not None:
            old = reissued
            row["version"] = max(row["version"], reissued.version + 1)
        if entry.action != ACTION_DELETE and (key in buried or entry.parent_key in buried):
            # withdrawn in this dossier: the original after its deletion, or sent again
            kept = _in_history(row, stored.get((patient_id, key), ()))
            if kept is not None:  # the version the withdrawal superseded, as it was
                result.duplicates += 1
                if kept.import_id != import_id:
                    links.append(_link(kept.id, import_id, source, entry.source_ref,
                                       "confirmed", now))
                continue
            withdrawn = held.get(key) if entry.key in buried else None
            if withdrawn is not None and _replaces_withdrawn(
                    entry, row, withdrawn, stored.get((patient_id, key), ())):
                # filed as any new version, current: see _replaces_withdrawn
                result.after_withdrawal.append(entry.source_ref)
            else:
                row["current"] = False
                row["superseded_by"] = withdrawn.id if withdrawn is not None else None
                taken[key] = row
                new_rows.append(row)
                result.buried += 1
                continue
        gone = replaced_away.get(key) if doc is None and old is None \
            and entry.action == ACTION_NEW else None
        if gone is None and old is None and key not in held and replacements \
                and entry.type == DOCUMENT and entry.action == ACTION_NEW and newer is None:
            # the original after its replacement (the T02 quarantined, rerun after the T10):
            # it was filed current beside the document that replaced it
            found = replacements.get((patient_id, key)) or ()
            gone = SimpleNamespace(superseded_by=found[0].id) if len(found) == 1 else None
        if newer is not None or gone is not None \
                or (doc is None and old is not None
                    and (_earlier_state(row, old) or _before_replacement(entry, row, old))):
            # an earlier version arriving late: history, superseded by what is held. Also a
            # document the dossier holds replaced by another (MDM^T10, TXA-13) sent again
            # (a T02 replayed by its sender, the same report by another interface): it was
            # current again beside its replacement.
            kept = _in_history(row, stored.get((patient_id, key), ()))
            if kept is not None:  # filed as history before (a rerun, a resend)
                result.duplicates += 1
                if kept.import_id != import_id:
                    links.append(_link(kept.id, import_id, source, entry.source_ref,
                                       "confirmed", now))
                continue
            later = old if old is not None else held.get(key)
            row["current"] = False
            row["superseded_by"] = later.id if later is not None else \
                gone.superseded_by if gone is not None else newer.id if entry is doc else None
            taken[key] = row
            new_rows.append(row)
            result.history += 1
            continue
        row["current"] = True
        taken[key] = row
        new_rows.append(row)
        if fact and entry.action != ACTION_DELETE:
            message_facts.setdefault(fact, row)
        if old is not None:
            supersedes.append((row, old.id))
        elif key in held:  # a replacement re-sent under its own key: one current version
            supersedes.append((row, held[key].id))
        earlier = old if old is not None else held.get(key)
        if earlier is None and entry is doc and older:
            # a new version of a set whose version it names was never received (v3 naming
            # v2, v1 held), or naming none: it replaces the newest held (below) and takes
            # its masking as any replacement does; it was filed with neither, the
            # document the patient had masked shown again to every professional
            earlier = _newest_of(older)
        if earlier is not None and earlier.parent_id is not None:
            # a new version whose parent is not found keeps its version's: a corrected
            # susceptibility panel sent without its organism stays linked to the organism
            row["_parent_id"] = earlier.parent_id
        if earlier is not None and earlier.mask_override is not None:
            row["mask_override"] = earlier.mask_override  # the patient's choice outlives v1
        if earlier is not None and not row["masking"] and earlier.masking \
                and entry.action == ACTION_REPLACE:
            # A replacement stating no flags (an MDM^T10 or ORU RO whose engine drops the
            # MetaDMPMSS OBX, a v1.x sender) of a document sent MASQUE_PS=Y or
            # INVISIBLE_PATIENT=Y: its new version was filed unmasked, shown to every
            # professional and to the patient before the announcement consultation. The
            # sender's flags stay until a message states others, as for a resend above.
            row["masking"] = earlier.masking
    if older and doc is not None and taken.get(doc.key, {}).get("current"):
        # earlier versions of its set held current (an RPLC naming another version, or none)
        done = {old_id for _, old_id in supersedes}
        for sibling in older:
            if sibling.id not in done:
                supersedes.append((taken[doc.key], sibling.id))
                replaced_docs.append((sibling, doc.source_ref))
    if companions:
        _reach_companions(items, patient_id, companions, held,
                          (taken, latest, new_rows, supersedes, replaced_docs), import_id, now)
        status_changed += _status_to_companions(
            items, patient_id, companions, held, (taken, latest, new_rows, supersedes),
            import_id, now)
    _supersede_confirmed(replaced_docs, confirmed or {}, new_rows, supersedes, result)
    # What a replaced or deleted document said and its new version no longer says is
    # withdrawn with it (a new version, history kept), not left current.
    for doc, ref in replaced_docs:
        for child in children.get(doc.id, []):
            if child.key in stated or child.key in taken or child.status == "withdrawn":
                continue
            row = {c.name: getattr(child, c.name) for c in entries.columns if c.name != "id"}
            row.update(status="withdrawn", import_id=import_id, created_at=now,
                       version=latest.get(child.key, child.version) + 1, current=True,
                       _parent_key=None, _ref=ref, _withdraw=True)
            taken[child.key] = row
            new_rows.append(row)
            supersedes.append((row, child.id))
    for doc, key, ref in status_changed:
        _carry_children_status(doc, taken.get(key), children.get(doc.id, ()), ref,
                               (stated, taken, latest, new_rows, supersedes), import_id, now)
    result.created = len(new_rows)
    result.superseded = len(supersedes)
    return DepositPlan(import_id, source, result, new_rows, supersedes, links, ids_by_key)


def _reach_companions(items: Sequence[tuple[Entry, str | None]], patient_id: int,
                      companions: dict[tuple[int, str], list[str]], held: dict[str, object],
                      plan: tuple[dict, dict, list, list, list], import_id: int,
                      now: datetime) -> None:
    """A replacement or deletion of a document number reaches every document filed under
    it: the CDA filed under its id beside the PDF rendering filed under the number is
    superseded by the replacement, or withdrawn (a new version, history kept) with the
    deletion. One this message files or supersedes already (a T10 carrying the new CDA
    whose RPLC names the old one) is left to it."""
    taken, latest, new_rows, supersedes, replaced_docs = plan
    done = {old_id for _, old_id in supersedes}
    for entry, _ in items:
        named = entry.replaces_key or entry.key
        if entry.action not in (ACTION_REPLACE, ACTION_DELETE):
            continue
        by = taken.get(named if entry.action == ACTION_DELETE else entry.key)
        if by is None or not by.get("current"):
            continue
        for key in companions.get((patient_id, named), ()):
            other = held.get(key)
            if other is None or other.id in done or key in taken \
                    or other.status == "withdrawn":
                continue
            done.add(other.id)
            replaced_docs.append((other, entry.source_ref))
            if entry.action == ACTION_REPLACE:
                supersedes.append((by, other.id))
                continue
            row = {c.name: getattr(other, c.name) for c in entries.columns if c.name != "id"}
            row.update(status="withdrawn", import_id=import_id, created_at=now,
                       version=latest.get(key, other.version) + 1, current=True,
                       _parent_key=None,
                       _ref=entry.source_ref, _withdraw=True)
            if entry.issued:
                row["issued"] = entry.issued
            taken[key] = row
            new_rows.append(row)
            supersedes.append((row, other.id))


# What a status change (MDM^T03) says of the documents under its number: their status and the
# TXA fields that state it, nothing of their content.
_STATUS_DETAILS = ("completion_status", "availability_status", "confidentiality_status",
                   STATUS_CHANGE_DETAIL, STATUS_CONTENT_DETAIL)


def _status_to_companions(items: Sequence[tuple[Entry, str | None]], patient_id: int,
                          companions: dict[tuple[int, str], list[str]],
                          held: dict[str, object], plan: tuple[dict, dict, list, list],
                          import_id: int, now: datetime) -> list[tuple[object, str, str]]:
    """A status change (MDM^T03, TXA-17 PA -> LA; or an MDM^T04 outside CI-SIS re-sending
    one of them with its content) of a document number reaches every document filed under
    it: the CDA filed under its id beside the PDF rendering filed under the number takes
    the new status too (a new version, its content carried). It reached the document named
    alone: the signed CDA stayed preliminary beside its final rendering. Returns the
    (document held, key, source_ref) whose read entries follow (``_carry_children_status``).
    A companion already in that status, withdrawn, or given a row by this message is left."""
    taken, latest, new_rows, supersedes = plan
    changed: list[tuple[object, str, str]] = []
    for entry, _ in items:
        if entry.type != DOCUMENT or entry.action != ACTION_NEW \
                or not (entry.details.get(STATUS_CHANGE_DETAIL)
                        or entry.details.get(STATUS_CONTENT_DETAIL)):
            continue
        for key in companions.get((patient_id, entry.key), ()):
            other = held.get(key)
            if other is None or key in taken or other.status == "withdrawn" \
                    or (other.status == entry.status
                        and not legally_authenticated_since(entry.details, other.details)):
                continue
            row = {c.name: getattr(other, c.name) for c in entries.columns if c.name != "id"}
            said = {k: v for k, v in entry.details.items() if k in _STATUS_DETAILS}
            row.update(status=entry.status, import_id=import_id, created_at=now,
                       version=latest.get(key, other.version) + 1, current=True,
                       details={**(other.details or {}), **said},
                       masking=entry.masking or other.masking,
                       _parent_key=None, _ref=entry.source_ref)
            taken[key] = row
            new_rows.append(row)
            supersedes.append((row, other.id))
            changed.append((other, key, entry.source_ref))
    return changed


def _mask_like_parent(row: dict, entry: Entry, held: dict[str, object],
                      result: DepositResult) -> None:
    """An addendum (APND) to a document the dossier holds masked takes its parent's hiding
    flags when it states none that hide (and the patient's choice to mask it): the lab's
    addendum to a masked HIV or pregnancy test report, sent with confidentialityCode N, was
    shown to every professional, and with it what the masked report was about. An addendum
    is read with what it adds to; flags are lifted by stating them on the parent, as for a
    replacement (``plan_deposit``)."""
    if _hiding(row["masking"]):
        return
    for key in appended_to(entry):
        parent = held.get(key)
        if parent is None or parent.type != DOCUMENT:
            continue
        hiding = _hiding(parent.masking)
        if hiding:
            row["masking"] = {**(row["masking"] or {}), **{f: True for f in sorted(hiding)}}
        if parent.mask_override:
            row["mask_override"] = True
        if hiding or parent.mask_override:
            result.masked_like_parent.append(entry.source_ref)
            return


def _supersede_confirmed(replaced_docs: list[tuple[object, str]], confirmed: dict[int, list],
                         new_rows: list[dict], supersedes: list[tuple[dict, int]],
                         result: DepositResult) -> None:
    """A new version of a document correcting a result its earlier version only confirmed:
    the lab's ORU said cholesterol 1.84 g/L, the hospital's CR-BIO v1 said it too (one
    entry, two links), v2 (RPLC) says 1.90 for the same test and instant. The 1.90 was
    filed beside the 1.84, both current; the 1.84 is the version v2 corrects (history kept,
    as a correction by the other channel does). Only the one current result of that test
    is taken, never a guess; a result v2 no longer states stays: the lab still states it."""
    if not replaced_docs or not confirmed:
        return
    done = {old_id for _, old_id in supersedes}
    mine: dict[tuple, list[dict]] = {}
    for row in new_rows:
        if row.get("current") and row["type"] in FACT_TYPES and not row.get("_withdraw") \
                and row["status"] != "withdrawn":
            test = _test_of(row["type"], row["system"], row["code"], row["effective"],
                            row["specimen_time"], row["details"])
            if test is not None:
                mine.setdefault(test, []).append(row)
    if not mine:
        return
    for doc, _ in replaced_docs:
        for held in confirmed.get(doc.id, ()):
            if held.id in done:
                continue
            rows = mine.get(_test_of(held.type, held.system, held.code, held.effective,
                                     held.specimen_time, held.details), ())
            if len(rows) == 1 and rows[0]["fact"] != held.fact:
                supersedes.append((rows[0], held.id))
                done.add(held.id)
                result.crossed += 1


# What a result's value is made of: a status change sent without it (HL7v2 OBX-11 U) keeps
# the held version's.
_VALUE_COLUMNS = ("value", "value_type", "value_num", "comparator", "unit", "unit_original",
                  "reference_range", "interpretation")


def _carry_held_value(row: dict, old) -> None:  # noqa: ANN001
    """A result made final without its value sent again (OBX-11 U, HL7 v2.5 7.4.2.11: 'results
    status change to final without retransmitting results already sent as preliminary'):
    the new version keeps the held version's value, unit, range and flags, and its details
    under the new ones. Filed as sent, the final version had no value and the preliminary
    potassium vanished from the dossier. Nothing to carry from a version without a value
    (pending, cancelled) or withdrawn."""
    if row["value"] is not None or old.value is None or old.status == "withdrawn":
        return
    for column in _VALUE_COLUMNS:
        if row[column] is None:
            row[column] = getattr(old, column)
    row["details"] = {**(old.details or {}), **(row["details"] or {})}
    if row["effective"] == old.effective:
        row["fact"] = old.fact


# What a document's content is made of: a status change sent without it (MDM^T03) keeps the
# held version's.
_DOCUMENT_COLUMNS = ("code", "system", "display", "mapped", "value_type", "effective",
                     "issued", "performer", "attachment_sha256", "media_type", "fact")


def _carry_held_document(row: dict, old) -> None:  # noqa: ANN001
    """A document whose status alone changes (MDM^T03, v2.5 9.3.3: TXA-17 from
    pre-authenticated to authenticated, no content sent): the new version is the held
    one's content, code, dates and details (updated by the new TXA's) in the new status. A
    resend of the same status is then the same entry: a duplicate."""
    for column in _DOCUMENT_COLUMNS:
        row[column] = getattr(old, column)
    row["details"] = {**(old.details or {}), **(row["details"] or {})}


def _carry_children_status(doc, new_doc: dict | None, children: Sequence, ref: str,  # noqa: ANN001
                           plan: tuple, import_id: int, now: datetime) -> None:
    """The entries read from a document that took its status (the report of a preliminary
    PDF, ``DOCUMENT_STATUS_DETAIL``) follow the status change of their document: a new
    version in its new status, under the new version of the document. Left as they were,
    the report of a signed document stayed a draft. Entries with a status of their own (a
    CDA's results, preliminary as the CDA says) stay as they are."""
    stated, taken, latest, new_rows, supersedes = plan
    if new_doc is None or not new_doc.get("current") or new_doc.get("_withdraw"):
        return  # a duplicate (the same status again) or filed as history
    for child in children:
        if child.key in stated or child.key in taken \
                or not (child.details or {}).get(DOCUMENT_STATUS_DETAIL) \
                or child.status == new_doc["status"]:
            continue
        row = {c.name: getattr(child, c.name) for c in entries.columns if c.name != "id"}
        row.update(status=new_doc["status"], import_id=import_id, created_at=now,
                   version=latest.get(child.key, child.version) + 1, current=True,
                   _parent_key=new_doc["key"], _ref=ref)
        taken[child.key] = row
        new_rows.append(row)
        supersedes.append((row, child.id))


def _replaced_away(stored: dict[tuple[int, str], list], patient_id: int,
                   held: dict[str, object]) -> dict[str, object]:
    """Key -> its latest version, for the keys of ``patient_id`` the dossier holds no current
    version of, their latest superseded by an entry of another key: a document replaced by
    another (MDM^T10 naming it in TXA-13), a result corrected through another channel."""
    away: dict[str, object] = {}
    for (pid, key), rows in stored.items():
        if pid == patient_id and rows and key not in held:
            last = max(rows, key=lambda r: r.version)
            if last.superseded_by is not None and not last.current:
                away[key] = last
    return away


def _in_history(row: dict, versions: Sequence) -> object | None:
    """The version of its key, not current, with ``row``'s content: the same late version or
    withdrawn original filed as history before (a rerun, a resend), not to be filed twice."""
    return next((r for r in versions if not r.current and _same(row, r)), None)


def _replaces_withdrawn(entry: Entry, row: dict, withdrawn: object,
                        versions: Sequence) -> bool:
    """Whether a lab result the dossier holds withdrawn is the replacement its sender
    announced (HL7 table 0085 W: 'post original as wrong', the right result to follow), not
    the original arriving late.

    A sender that leaves OBR-22 and OBX-19 empty, or does not move OBR-22 between the W and
    the replacement, sends a replacement no later than the withdrawal by the times it
    gives: it was filed as history, and the right potassium was never shown. It is the
    replacement when the dossier held the result before the withdrawal (no tombstone: the
    original cannot be late), its value is none the dossier ever held for it, and it was
    not issued before the withdrawal. The original sent again has a value held (kept as
    history by ``_in_history``, or buried)."""
    if entry.type != LAB_RESULT or entry.action != ACTION_NEW or withdrawn.version < 2:
        return False
    sent, gone = _aware(entry.issued), _aware(withdrawn.issued)
    if sent is not None and gone is not None and sent < gone:
        return False
    return row["value"] is not None and all(
        (r.value, r.value_num) != (row["value"], row["value_num"]) for r in versions)


def _buried(items: Sequence[tuple[Entry, str | None]], held: dict[str, object]) -> set[str]:
    """Keys of the entries of a message that the dossier holds withdrawn (a tombstone, or a
    version withdrawn by its sender or author), with the entries read from them
    (``parent_key``): filed as history, not current. An entry issued after the withdrawal
    (both times known, with their offsets) is a re-issue, and is not buried."""
    keys: set[str] = set()
    for entry, _ in items:
        if entry.action == ACTION_DELETE:
            continue
        withdrawn = held.get(entry.key)
        if withdrawn is None and entry.action == ACTION_REPLACE and entry.replaces_key:
            withdrawn = held.get(entry.replaces_key)
        if withdrawn is None or withdrawn.status != "withdrawn":
            continue
        sent, gone = _aware(entry.issued), _aware(withdrawn.issued)
        if sent is None or gone is None or sent <= gone:
            keys.add(entry.key)
    if keys:
        for entry, _ in items:  # a report comes before the results read from it
            if entry.parent_key in keys and entry.action != ACTION_DELETE:
                keys.add(entry.key)
    return keys


def _newest_of(versions: Sequence) -> object:
    """The latest of held versions of one document set (arrival order when they cannot be
    ordered)."""
    newest = versions[0]
    for row in versions[1:]:
        later = _later(_set_version(row.details, row.effective),
                       _set_version(newest.details, newest.effective))
        if later or (later is None and row.id > newest.id):
            newest = row
    return newest


def _versions_around(doc: Entry, held: dict[str, object]) -> tuple[object | None, list]:
    """(the latest held version of ``doc``'s set when later than it, the held versions it
    is later than). Versions that cannot be ordered are neither: arrival order decides."""
    mine = document_set(doc)
    newer, older = None, []
    for key, row in held.items():
        if row.type != DOCUMENT or key == doc.key:
            continue
        theirs = _set_version(row.details, row.effective)
        if mine is None or theirs is None or theirs[0] != mine[0]:
            continue
        order = _later(theirs, mine)
        if order and (newer is None or _later(theirs, _set_version(newer.details,
                                                                   newer.effective))):
            newer = row
        elif order is False:
            older.append(row)
    return newer, older


def write_deposits(conn: Connection, plans: Sequence[DepositPlan]) -> None:
    """Write the plans of one or many messages (of different patients or keys): ids are
    allocated up front, so the entries (reports before the results that point at them) go in
    one executemany without RETURNING, then one multi-row update for superseded versions and
    one insert of provenance links. (Multi-row INSERT ... RETURNING costs psycopg a parse of
    a query with tens of thousands of placeholders per page: most of the time on PostgreSQL.)"""
    now = datetime.now(UTC)
    waves: tuple[list, list] = ([], [])
    for plan in plans:
        new_keys = {r["key"] for r in plan.new_rows}
        for r in plan.new_rows:
            waves[r["_parent_key"] in new_keys].append((plan, r))
    ordered = waves[0] + waves[1]
    links = [link for plan in plans for link in plan.links]
    for (plan, r), new_id in zip(ordered, allocate_ids(conn, entries, len(ordered)),
                                 strict=True):
        r["_id"] = new_id
        plan.ids_by_key[r["key"]] = new_id
    for plan, r in ordered:
        # every column in every row (a withdrawal copies its target's row, a new entry has
        # no superseded_by...): one column list for the whole executemany / COPY
        r["id"] = r["_id"]
        r["parent_id"] = (plan.ids_by_key.get(r["_parent_key"]) if r["_parent_key"] else None) \
            or r.get("_parent_id")
        r.setdefault("superseded_by", None)
        links.append(_link(r["_id"], plan.import_id, plan.source, r["_ref"],
                           "withdrew" if r.get("_withdraw") else "created", now))
        for ref in r.get("_confirmed_by", ()):  # the same fact through another channel
            links.append(_link(r["_id"], plan.import_id, plan.source, ref, "confirmed", now))
    bulk_insert(conn, entries, [r for _, r in ordered], columns=_COLUMNS)
    supersedes = [(plan, r, old_id) for plan in plans for r, old_id in plan.supersedes]
    if supersedes:
        conn.execute(_SUPERSEDE, [{"old_id": old_id, "new_id": r["_id"]}
                                  for _, r, old_id in supersedes])
        for plan, r, old_id in supersedes:
            links.append(_link(old_id, plan.import_id, plan.source, r["_ref"], "superseded",
                               now))
    insert_values(conn, provenance, _LINK_COLUMNS, links)


# A provenance link as the row it is written as (``insert_values``): built as a dict, then
# its values picked out again, a link cost about 1 us more, and a message has 15-30 links.
_LINK_COLUMNS = ("entry_id", "import_id", "source", "source_ref", "relation", "created_at")


# Built once (per call it was rebuilt, and SQLAlchemy's cache key computed anew).
_SUPERSEDE = (update(entries).where(entries.c.id == bindparam("old_id"))
              .values(current=False, superseded_by=bindparam("new_id")))


def _link(entry_id: int, import_id: int, source: str, ref: str, relation: str,
          now: datetime) -> tuple:
    return entry_id, import_id, source, ref, relation, now
