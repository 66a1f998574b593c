"""Documents held back until signed: what links a held draft to the message that signs or
cancels it.

Why: HL7 v2.5 9.6.1.19 has a document read for patient care before its authentication only
when TXA-19 says AV; a dictated report without it is held back (the ledger outcome 'held',
MDM_NOT_AVAILABLE: accepted, nothing filed). Its signature then comes as an MDM^T03 (9.3.3,
'a document is authenticated') that carries no content: the content is the held import's,
whose bytes the archive keeps. So the ledger must find, from a document key, the held import
of that document; and, for a T03 that arrives before its T02 (two interfaces, two queues),
the status change that waits for it.

Where, without a migration: rows of ``logical_messages`` under a prefix that no logical id of
a message has ('held|', 'signed|' + the sha256 of the document key, so that a key of any
length fits), pointing at the import. The primary key makes the latest draft of a document
the one held (a T08 of the draft replaces the T02's content), and two workers cannot both
take one.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from sqlalchemy import Connection, and_, delete, insert, select, update

from dossiers.schema import imports, logical_messages
from normalizers.model import (
    DOCUMENT,
    DOCUMENT_STATUS_DETAIL,
    STATUS_CHANGE_DETAIL,
    Entry,
    NormalizedMessage,
    PatientIdentity,
)
from pipelines.ledger import DEPOSITED, HELD, PROCESSING, now

HELD_PREFIX = "held|"  # -> the held import (the latest draft of the document)
SIGNED_PREFIX = "signed|"  # -> a status change that came before the draft it signs


def _logical(prefix: str, key: str) -> str:
    return prefix + hashlib.sha256(key.encode("utf-8")).hexdigest()


def hold(conn: Connection, keys: list[str], import_id: int) -> None:
    """Record ``import_id`` as the held draft of each document ``keys`` (the latest one
    wins: a later draft of the same document replaces what an earlier one held)."""
    for key in dict.fromkeys(keys):
        logical = _logical(HELD_PREFIX, key)
        conn.execute(delete(logical_messages).where(logical_messages.c.logical_id == logical))
        conn.execute(insert(logical_messages).values(logical_id=logical, import_id=import_id))


def wait_for_draft(conn: Connection, keys: list[str], import_id: int) -> None:
    """Record ``import_id`` (a status change that found no document to change) as the
    signature of the drafts ``keys``, for when they come."""
    for key in dict.fromkeys(keys):
        logical = _logical(SIGNED_PREFIX, key)
        conn.execute(delete(logical_messages).where(logical_messages.c.logical_id == logical))
        conn.execute(insert(logical_messages).values(logical_id=logical, import_id=import_id))


def held_import(conn: Connection, key: str) -> int | None:
    """The import holding the draft of document ``key``: still held, not closed since (an
    admin may have discarded or rerun it). 'processing': held by an earlier message of the
    batch being filed (its outcome is recorded with the batch's)."""
    return conn.execute(select(imports.c.id).join(
        logical_messages, logical_messages.c.import_id == imports.c.id).where(
        logical_messages.c.logical_id == _logical(HELD_PREFIX, key),
        imports.c.status.in_((HELD, PROCESSING)),
        imports.c.discard_reason.is_(None))).scalar()


def waiting_signature(conn: Connection, key: str) -> int | None:
    """The status change (filed, its document not found then) that signs draft ``key``
    ('processing': an earlier message of the batch being filed)."""
    return conn.execute(select(imports.c.id).join(
        logical_messages, logical_messages.c.import_id == imports.c.id).where(
        logical_messages.c.logical_id == _logical(SIGNED_PREFIX, key),
        imports.c.status.in_((DEPOSITED, PROCESSING)))).scalar()


def forget(conn: Connection, keys: list[str], prefix: str = HELD_PREFIX) -> None:
    """The drafts ``keys`` are no longer held (released, cancelled), or their waiting
    signature was used."""
    ids = [_logical(prefix, k) for k in dict.fromkeys(keys)]
    if ids:
        conn.execute(delete(logical_messages).where(logical_messages.c.logical_id.in_(ids)))


def close_superseded(conn: Connection, filed: list[tuple[str, int]]) -> None:
    """The drafts held of documents just filed with their content by a later import (a T04
    or T08 signed, a preliminary sent available): closed as superseded, never filed (their
    signature would file an older content over the newer one). A signature waiting for its
    draft is spent too: it signed what was just filed, not a later draft of the document.
    One query per piece of 500 keys; nothing when no draft is held."""
    wanted = {_logical(prefix, key): (prefix, key, by) for key, by in filed
              for prefix in (HELD_PREFIX, SIGNED_PREFIX)}
    names = sorted(wanted)
    for i in range(0, len(names), 500):
        for row in conn.execute(select(logical_messages).where(
                logical_messages.c.logical_id.in_(names[i:i + 500]))).all():
            prefix, key, by = wanted[row.logical_id]
            if row.import_id >= by:
                continue
            forget(conn, [key], prefix)
            if prefix == HELD_PREFIX:
                close(conn, row.import_id, f"superseded: a later version of the document was "
                      f"filed by import {by}; this draft is not filed")


def close(conn: Connection, import_id: int, reason: str) -> None:
    """Say on the held row what became of it (it stays 'held': it was; the reason names the
    import that released or cancelled it)."""
    conn.execute(update(imports).where(and_(imports.c.id == import_id,
                                            imports.c.status == HELD)).values(
        discard_reason=reason, updated_at=now()))


# What a status change says of its document (TXA-17, 18, 19 as read): the signed version
# carries these, not the draft's.
TXA_STATUS_DETAILS = ("completion_status", "confidentiality_status", "availability_status")


def signed_content(normalized: NormalizedMessage, change: Entry) -> NormalizedMessage:
    """The held draft's content in the status its status change states: its document of
    ``change.key`` takes the change's status, TXA statuses and masking (flags stated by the
    T03 add to the draft's: a T03 making the report very restricted masks it), and the
    entries read from that document that took its status (the report of a dictated PDF,
    DOCUMENT_STATUS_DETAIL) follow it. Everything else is as the draft said."""
    entries: list[Entry] = []
    drafts: dict[str, str] = {}  # key -> the draft document's status
    stated = {k: v for k, v in change.details.items() if k in TXA_STATUS_DETAILS}
    for entry in normalized.entries:
        if entry.type == DOCUMENT and entry.key == change.key:
            drafts[entry.key] = entry.status
            details = {k: v for k, v in entry.details.items() if k not in TXA_STATUS_DETAILS}
            entry = replace(entry, status=change.status, details={**details, **stated},
                            masking={**entry.masking, **change.masking})
        entries.append(entry)
    for n, entry in enumerate(entries):
        if entry.parent_key in drafts and entry.details.get(DOCUMENT_STATUS_DETAIL) \
                and entry.status == drafts[entry.parent_key]:
            entries[n] = replace(entry, status=change.status)
    return replace(normalized, entries=entries)


def same_patient(draft: PatientIdentity, signature: PatientIdentity) -> bool:
    """Whether a draft and the message signing it may be about one patient: they share an
    INS when both state one (valid key), a local identifier when both state some. A
    signature naming another patient than its draft does not file that draft in the
    signature's dossier. Stating nothing to compare says nothing against it."""
    mine = {i.nir for i in draft.ins if i.key_valid}
    theirs = {i.nir for i in signature.ins if i.key_valid}
    if mine and theirs:
        return bool(mine & theirs)
    mine_local = {(i.authority, i.value) for i in draft.local_ids}
    theirs_local = {(i.authority, i.value) for i in signature.local_ids}
    return not (mine_local and theirs_local) or bool(mine_local & theirs_local)


def status_change(normalized: NormalizedMessage, key: str) -> Entry | None:
    """The status change of document ``key`` a message states (MDM^T03, no content)."""
    return next((e for e in normalized.entries if e.type == DOCUMENT and e.key == key
                 and e.details.get(STATUS_CHANGE_DETAIL)), None)
