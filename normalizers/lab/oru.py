"""ORU and OUL results: the orders of one message read into LAB_REPORT, LAB_RESULT and DOCUMENT
entries."""

from __future__ import annotations

from normalizers.adt import feeding_refused
from normalizers.codes import CodeMappings
from normalizers.death import feeding_pid_death
from normalizers.documents import (
    OBX_DOCUMENT,
    OBX_PIECE,
    OBX_RESULT,
    DocumentContext,
    GroupFlags,
    MessageMeta,
    add_embedded_entries,
    apply_group_meta,
    classify_obx,
    collect_meta,
    continuations,
    document_entry,
    is_cisis,
    order_control_source,
    sender_performer,
    sender_scope,
)
from normalizers.fields import comps, first_rep, loc, logical_id, part, sub, text, ts_field, zone_of
from normalizers.identity import extract_identity, single_pid
from normalizers.lab.coded import NothingCoded
from normalizers.lab.common import TEXT_TYPES, Ctx
from normalizers.lab.groups import Group, order_groups
from normalizers.lab.keys import make_unique, order_time_key, order_time_sent, unique_key
from normalizers.lab.message_checks import (
    after_message,
    empty_documents,
    empty_request,
    fit_range_text,
    message_time,
    no_order,
    orders_without_request,
)
from normalizers.lab.microbiology import group_isolates, link_parent, parent_result
from normalizers.lab.notes import (
    continue_text,
    is_narrative,
    keep_comment_types,
    note_texts,
    untitled_text,
)
from normalizers.lab.orders import (
    child_document_id,
    keyed_by_parent,
    order_number,
    parent_order,
    parent_order_said,
)
from normalizers.lab.people import participants, report_performer_of
from normalizers.lab.reports import observation_end, report_entry, results_time
from normalizers.lab.results import result_entry
from normalizers.lab.specimens import (
    collection_time,
    own_specimens,
    patient_observations,
    specimen_site,
    specimen_states,
    specimen_type,
)
from normalizers.model import DOCUMENT, LAB_RESULT, Entry, NormalizationError, NormalizedMessage
from parsers.hl7v2.er7 import Message, Segment


# -- ORU ----------------------------------------------------------------------------------------
def normalize_oru(msg: Message, source: str, mappings: CodeMappings | None = None,
                  groups: list[Group] | None = None) -> NormalizedMessage:
    """ORU^R01 to entries. ``source`` is the intake source id (selects per-source mappings);
    ``groups``: the orders as ``oul_groups`` read them, for an OUL."""
    warnings: list[str] = []
    sender = msg.sender  # MSH-3|MSH-4: part of the logical id, and a mapping table candidate
    lid = logical_id(msg, sender)
    pid = single_pid(msg)
    identity = extract_identity(msg, pid)
    death = feeding_pid_death(msg, pid, identity.birth_date, warnings)
    if groups is None:
        groups = order_groups(msg)
    orders_without_request(msg, groups, warnings)
    groups = [g for g in groups if not empty_request(g, warnings)]
    for g in groups:
        if g.orc_before_patient and g.orc is not None:
            warnings.append(f"{loc(g.orc)}: order control sent before the patient (PID): read "
                            f"as {loc(g.obr)}'s, the message's only order control before it")
        warnings.extend(f"{loc(spm)}: specimen sent before its order's OBR (ORU_R01 has it "
                        f"after the OBR and its results): read as {loc(g.obr)}'s"
                        for spm in g.early_specimens)
    if not groups:
        no_order(msg, warnings)
    ctx = Ctx(msg, (source, sender), mappings, warnings, zone=zone_of(msg))
    ctx.sent_iso, ctx.sent_at = message_time(msg, ctx.zone)
    cisis = is_cisis(msg)
    meta = MessageMeta()
    quarantine: list[str] = [refused] if (refused := feeding_refused(msg)) else []
    entries: list[Entry] = []
    empty: list[NormalizationError] = []  # ED_EMPTY documents
    flags: list[GroupFlags] = []  # each order's MetaDMPMSS flags (documents.apply_group_meta)
    for g in groups:
        obr = g.obr
        gflags = GroupFlags(loc(obr))
        flags.append(gflags)
        start = len(entries)
        order_no, ns, scope_ns = order_number(msg, g, ctx)
        c4 = comps(msg, first_rep(msg, obr, 4))
        obr_code = sub(msg, part(c4, 1), 1)
        if not obr_code and sub(msg, part(c4, 4), 1):
            # Only the alternate triplet (OBR-4.4-6) is filled ('^^^24326-1^Iono^LN'): it is
            # the identifier, as for OBX-3. Read past, every such order of one filler number
            # had the key 'report|number|ns|', and a panel sent alone later replaced another.
            c4 = c4[3:]
            obr_code = sub(msg, part(c4, 1), 1)
        parent = parent_result(msg, obr)
        scope = parent.scope if parent is not None else ""
        report_key = f"report|{order_no}|{scope_ns}|{obr_code}"
        if scope:
            report_key = f"{report_key}|{scope}"
        ctx.order_time = order_time_sent(msg, obr)
        if report_key in ctx.keys:
            report_key = order_time_key(ctx, report_key, obr) \
                or unique_key(ctx, report_key, obr)
        else:
            ctx.ordered[report_key] = ctx.order_time
        ctx.keys.add(report_key)
        collected = collection_time(msg, g)
        # OBR-7, else the specimen's collection time (SPM-17, v2.5.1): the clinically
        # relevant time of the order, which senders that fill SPM leave out of OBR-7
        obr7 = ts_field(msg, obr, 7)
        effective = obr7 or collected or observation_end(ctx, obr)
        if effective is not None and ctx.sent_at is not None:
            after_message(ctx, effective, loc(obr, 7) if obr7 else loc(obr))
        issued = ts_field(msg, obr, 22)
        specimen_time = collected or effective
        kinds = [classify_obx(msg, obx) for obx, _ in g.observations]
        cut = continuations(msg, [obx for obx, _ in g.observations], kinds, warnings) \
            if OBX_DOCUMENT in kinds else {}
        if cut:
            pieced = {id(o) for p in cut.values() for o in p.segments}
            kinds = [OBX_PIECE if id(obx) in pieced else k
                     for (obx, _), k in zip(g.observations, kinds, strict=True)]
        with_report = not kinds or OBX_RESULT in kinds
        report_performer = report_performer_of(msg, obr)
        results: list[Entry] = []
        report_text: list[str] = []
        doc_ctx: DocumentContext | None = None
        child: bool | None = None  # keyed by its parent's numbers (read at its first document)
        last_text: tuple[tuple[str, str, str], Entry] | None = None
        for n, ((obx, notes), kind) in enumerate(zip(g.observations, kinds, strict=True)):
            if kind == OBX_PIECE:  # read with the document it continues
                continue
            if kind == OBX_RESULT:
                f = obx.fields  # (OBX-3, -4, -11) of a narrative line: see continue_text
                nf = len(f)
                line = (f[3], f[4], f[11].strip().upper() if nf > 11 else "") \
                    if nf > 4 and f[3] and is_narrative(f[2]) else None
                if line is not None and last_text is not None and last_text[0] == line:
                    continue_text(msg, last_text[1], obx, notes)
                    continue
                try:
                    result = result_entry(ctx, obx, notes, order_no, scope_ns, effective, issued,
                                          specimen_time, report_key if with_report else None, scope)
                except NothingCoded as said:  # its comments stay, as an empty OBX's
                    warnings.append(str(said))
                    report_text.extend(note_texts(msg, notes) if notes else ())
                    last_text = None
                    continue
                if result is None:  # a line of text without identifier: the report's
                    if (f[2] if nf > 2 else "").strip().upper() in TEXT_TYPES:
                        report_text.extend(untitled_text(msg, obx, notes))
                    else:  # an empty OBX: see result_entry
                        warnings.append(f"{loc(obx)}: observation without identifier nor "
                                        "value, nothing to file")
                        report_text.extend(note_texts(msg, notes) if notes else ())
                    last_text = None
                    continue
                if result.effective != effective and result.effective is not None \
                        and ctx.sent_at is not None:
                    after_message(ctx, result.effective, loc(obx, 14))
                results.append(result)
                last_text = (line, result) if line is not None else None
                continue
            last_text = None
            if kind == OBX_DOCUMENT:
                if doc_ctx is None:
                    doc_ctx = DocumentContext(
                        source=source, mappings=mappings, fallback_id="", fallback_is_slot=True,
                        action_sources=[order_control_source(msg, g.orc, cisis, warnings)],
                        effective=effective, issued=issued,
                        performer=sender_performer(msg) or report_performer,
                        parent_key=report_key if with_report else None)
                sub_id = text(msg, obx.raw(4)) or text(msg, obx.raw(1)) or str(obx.index)
                # a bare order number is scoped by its sender (documents.sender_scope):
                # two senders' '100234' were one document, the second replacing the first
                doc_ctx.fallback_id = f"{order_no}|{ns or sender_scope(msg)}|{sub_id}"
                if child is None:
                    child = keyed_by_parent(msg, g)
                if child:  # not its parent's documents: its own identity added
                    doc_ctx.fallback_id = child_document_id(doc_ctx.fallback_id, obr_code,
                                                            scope)
                try:
                    entry = document_entry(msg, obx, doc_ctx, identity, cisis, warnings,
                                           quarantine, pieces=cut.get(n))
                except NormalizationError as exc:
                    if exc.code != "ED_EMPTY":
                        raise
                    empty.append(exc)  # decided below, once the results are read
                    continue
                if entry.key in ctx.keys:
                    make_unique(ctx, entry, obx)
                ctx.keys.add(entry.key)
                if n in cut:  # and after the OBX that continue it
                    pieces = {id(p) for p in cut[n].segments if p is not obx}
                    notes = notes + [nte for o, said in g.observations if id(o) in pieces
                                     for nte in said]
                if notes:
                    # an NTE after the document's OBX ('compte rendu signé électroniquement')
                    # is the document's comment, as a result's: it was dropped
                    entry.details.setdefault("comments", []).extend(note_texts(msg, notes))
                    keep_comment_types(msg, notes, entry.details)
                results.append(entry)
            else:
                _collect_flags(msg, obx, meta, gflags, warnings)
        if report_text:
            warnings.append(f"{loc(obr)}: text lines without observation identifier (OBX-3) "
                            "kept as the report's text")
        if effective is None and any(r.effective is None for r in results
                                     if r.type == LAB_RESULT):
            warnings.append(f"{loc(obr, 7)}: no observation date/time for the order (OBR-7, "
                            "SPM-17, OBR-8 empty) nor for some of its results (OBX-14): they "
                            "are filed without one")
        if with_report:
            report = report_entry(ctx, g, report_key, c4, obr_code,
                                  effective or results_time(ctx, obr, results), issued,
                                  specimen_time, report_performer, results)
            if report_text:
                report.details["text"] = "\n".join(report_text).strip("\n")
            if parent is not None:
                link_parent(report, parent, entries, parent_order(msg, obr))
            if len(obr.fields) > 29 and obr.fields[29]:
                said_order = parent_order_said(msg, obr)
                if said_order:
                    report.details["parent_order"] = said_order
            entries.append(report)
        if len(results) > 1:
            group_isolates(msg, g, results)
        if g.result_parts or g.order_parts:
            participants(msg, g, entries[-1] if with_report else None, results)
        if parent is not None:
            said = parent.said()  # which organism a susceptibility is of, on each result
            for r in results:
                if r.type == LAB_RESULT:
                    r.details["parent_result"] = said
        if g.specimens or (len(obr.fields) > 15 and obr.fields[15]):
            specimen = specimen_type(msg, g)
            site = specimen_site(msg, g)
            for r in results:
                if r.type == LAB_RESULT:
                    if specimen:
                        r.details["specimen"] = dict(specimen)
                    if site:
                        r.details["specimen_site"] = dict(site)
            if len(g.specimens) > 1 and g.specimen_of:
                own_specimens(msg, g, results)
        if g.about_patient:
            patient_observations(g, results)
        if g.specimens:
            specimen_states(msg, g, entries[-1] if with_report else None, results)
        entries.extend(results)
        gflags.entries = {id(e) for e in entries[start:]}
        gflags.documents = any(e.type == DOCUMENT for e in entries[start:])
    if ctx.dropped:  # withdrawals their replacement follows (replacement_of)
        entries = [e for e in entries if id(e) not in ctx.dropped]
    empty_documents(empty, entries, warnings)
    if cisis:
        _reference_only(entries)
    add_embedded_entries(entries, source, mappings, warnings, msg.zone)
    entries = apply_group_meta(msg, entries, flags, meta, warnings)
    try:
        return NormalizedMessage(logical_id=lid, identity=identity, entries=entries,
                                 warnings=identity.warnings + warnings,
                                 quarantine_reasons=quarantine, death=death)
    except NormalizationError as exc:  # checked there once for all: nothing to pay before
        if exc.code != "FIELD_TOO_LONG":
            raise
        for entry in entries:
            if entry.type != DOCUMENT:
                fit_range_text(entry, warnings)
        return NormalizedMessage(logical_id=lid, identity=identity, entries=entries,
                                 warnings=identity.warnings + warnings,
                                 quarantine_reasons=quarantine, death=death)


def _collect_flags(msg: Message, obx: Segment, meta: MessageMeta, group: GroupFlags,
                   warnings: list[str]) -> None:
    """A MetaDMPMSS or mail OBX read for the message (``meta``, its warnings said) and for
    its order alone (``group``): what the message-wide reading says that the order's own
    does not (two orders' flags 'sent twice') is kept in ``group.cross``."""
    said: list[str] = []
    collect_meta(msg, obx, meta, said)
    own: list[str] = []
    collect_meta(msg, obx, group.meta, own)
    group.obx.append(obx)
    group.cross.update(set(said) - set(own))
    warnings.extend(said)


def _reference_only(entries: list[Entry]) -> None:
    """CISIS_REFERENCE_ONLY: an ORU^R01 of the CI-SIS CDA transmission (MSH-21
    CISIS_CDA_HL7_V2) whose document is only pointed at (OBX-2 RP: a URL, a file on the
    sender's server) and carried by no ED. The profile sends the CDA itself in OBX-5; the
    pointer is never fetched (the pipeline has no network to a sender's server). It was
    filed as a lab result holding the pointer under the document's type code: the message
    meant to feed the DMP a document and the dossier got none, the sender an AA. Refused,
    naming the OBX, when the pointer is all the message brings; beside results of their own
    (a glucose, and the report's URL), or in a plain ORU, it is kept as a reference, with
    its warning."""
    if any(e.type == DOCUMENT or (e.type == LAB_RESULT and e.value_type != "RP")
           for e in entries):
        return
    pointer = next((e for e in entries if e.value_type == "RP"), None)
    if pointer is None:
        return
    where = f"{pointer.source_ref}-5"
    raise NormalizationError(
        "CISIS_REFERENCE_ONLY", f"{where}: the CDA document of this CI-SIS message (MSH-21 "
        "CISIS_CDA_HL7_V2) is only pointed at (OBX-2 RP, a URL or a file of the sender), "
        "never fetched: nothing filed; send the document itself in an OBX of type ED", where)
