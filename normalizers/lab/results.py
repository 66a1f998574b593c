"""One OBX to one LAB_RESULT entry: identifier, value, units, flags, status, observers, keys."""

from __future__ import annotations

from functools import cache

from normalizers.codes import loinc_check_fails, resolve_code, text_in_system_slot
from normalizers.documents import obx_status
from normalizers.fields import comps, first_rep, loc, part, reps, split_field, text
from normalizers.lab.coded import NothingCoded, codes_anything
from normalizers.lab.common import (
    CODED_TYPES,
    NUMBER,
    TEXT_TYPES,
    WITHHELD_STATUSES,
    Ctx,
    coded_id,
    coded_item,
    field_ts,
    leaf_reader,
    name_in_system_slot,
)
from normalizers.lab.corrections import (
    empty_means_held,
    replacement_of,
    why_no_status,
    withdrawn_in_message,
    withhold,
)
from normalizers.lab.flags import coded_flags, flag_code, flag_codes, flag_origins
from normalizers.lab.keys import make_unique
from normalizers.lab.notes import keep_comment_types, note_texts
from normalizers.lab.people import organization_said, responsible_observer, result_performer
from normalizers.lab.units_ranges import (
    check_unit_in_value,
    fill_unit,
    reference_ranges,
    warn_unit_contradicts_code,
)
from normalizers.lab.values import fill_value
from normalizers.loinc_units import unit_contradicts_code
from normalizers.model import ACTION_DELETE, ACTION_REPLACE, LAB_RESULT, Entry, NormalizationError
from normalizers.tabledata import table
from parsers.hl7v2.er7 import Segment


# -- one OBX ------------------------------------------------------------------------------------
def result_entry(ctx: Ctx, obx: Segment, notes: list[Segment], order_no: str, ns: str,
                 obr_effective: str | None, obr_issued: str | None, specimen_time: str | None,
                 parent_key: str | None, scope: str = "") -> Entry | None:
    """One LAB_RESULT. Written flat on purpose: this runs for every OBX of every message.
    None for a text OBX without any identifier (see ``untitled_text``), and for an OBX
    with neither identifier nor value. ``scope``: the
    parent result of the OBR (OBR-26), part of the key: the same antibiotic tested on two
    organisms under one order number is two results, not one the second overwrites."""
    msg = ctx.msg
    d = msg.delimiters
    f = obx.fields
    nf = len(f)
    lf = leaf_reader(d, f)
    c3 = split_field(d, f[3]) if nf > 3 else [""]
    sent3 = c3
    n3 = len(c3)
    code = lf(c3[0])
    if not code and n3 > 3 and lf(c3[3]):
        # Only the alternate triplet (OBX-3.4-6) is filled: it is the identifier.
        c3 = c3[3:]
        n3 = len(c3)
        code = lf(c3[0])
    if not code:
        if (f[2] if nf > 2 else "").strip().upper() in TEXT_TYPES:
            return None  # a line of narrative text: the caller keeps it with the report
        if not (f[5].strip() if nf > 5 else ""):
            # 'OBX|1|RP|||||||||F' (a radiology system's empty placeholder): no identifier,
            # no value. Nothing is observed and nothing lost; failing the whole message for
            # it lost every other result. The caller says so.
            return None
        where = loc(obx, 3)
        said = "holds a name but no code" if any(x.strip() for x in c3) else "is empty"
        raise NormalizationError("OBX_NO_CODE", f"{where}: observation without identifier "
                                 f"(OBX-3 {said}: a result is filed under its test's code, "
                                 "LOINC or the laboratory's own)", where)
    display = text(msg, c3[1]) if n3 > 1 else ""  # ST: a raw '&' there is text
    system = lf(c3[2]) if n3 > 2 else ""  # as sent: part of the key
    if not system and n3 > 13:
        # CWE.14 (v2.7+), the coding system's OID, sent instead of its name in CWE.3
        # ('2823-3^Potassium^^^^^^^^^^^^2.16.840.1.113883.6.1'): read as an OID in CWE.3 is.
        # Without it the LOINC code was filed as a local one, unmapped.
        system = lf(c3[13])
    coding = system  # the coding system the code is read under
    if system and not display and text_in_system_slot(system):
        display, coding = name_in_system_slot(ctx, obx, 3, c3[2])
    if not display and len(sent3) > 8:
        display = text(msg, sent3[8])  # CWE.9, original text: see _original_text
    if coding == "LN" and (n3 < 4 or not c3[3]):  # the sender's own LOINC, alone
        r_code, r_system, r_display, mapped, local = code, "LN", display, True, None
    elif n3 > 3:
        r_code, r_system, r_display, mapped, local = resolve_code(
            code, display, coding, lf(c3[3]), text(msg, c3[4]) if n3 > 4 else "",
            (lf(c3[5]) if n3 > 5 else "") or (lf(c3[16]) if n3 > 16 else ""),  # CWE.17: OID
            source=ctx.source, mappings=ctx.mappings,
            sent_system=system if coding != system else "")
    else:
        r_code, r_system, r_display, mapped, local = resolve_code(
            code, display, coding, source=ctx.source, mappings=ctx.mappings,
            sent_system=system if coding != system else "")
    if r_system == "LN" and loinc_check_fails(r_code):
        ctx.warnings.append(f"{loc(obx, 3)}: LOINC code fails its check digit (a typo in the "
                            "sender's table?): filed as sent")
    sub_id = lf(f[4]) if nf > 4 else ""
    key = f"result|{order_no}|{ns}|{code}|{system}|{sub_id}"
    if scope:
        key = f"{key}|{scope}"
    status_code = lf(f[11]).upper() if nf > 11 else ""
    if status_code and d.component in f[11]:
        status_code = coded_id(ctx, obx, 11, "result status")
    if not status_code:
        # OBX-11 is required (v2.3 to v2.5.1); without it we cannot tell a final result from a
        # preliminary one, and it is what a message cut in transit loses first.
        where = loc(obx, 11)
        raise NormalizationError("OBX_NO_STATUS", f"{where}: observation result status "
                                 f"(OBX-11) is {why_no_status(f)}", where)
    status, action = obx_status(status_code)
    if status == "unknown":
        ctx.warnings.append(f"{loc(obx, 11)}: unknown result status, kept as unknown")
    withheld = status in WITHHELD_STATUSES
    if not withheld and nf > 5 and f[5] and (f[2] if nf > 2 else "").strip().upper() \
            in CODED_TYPES and not codes_anything(msg, obx):
        raise NothingCoded(f"{loc(obx, 5)}: the coded value holds a coding system and no "
                           "code nor text: the observation carries nothing, not filed")
    entry = Entry(type=LAB_RESULT, key=key, source_ref=f"OBX[{obx.index}]", code=r_code,
                  system=r_system, display=r_display or None, mapped=mapped,
                  status=status, specimen_time=specimen_time, parent_key=parent_key,
                  action=action)
    observed_sent = lf(f[14].split(d.component, 1)[0]) if nf > 14 and f[14] else ""
    if key in ctx.withdrawals and not withheld:
        replacement_of(ctx, entry, obx)
    elif action == ACTION_DELETE and key in ctx.filed \
            and observed_sent in ("", ctx.observed.get(key)):
        withdrawn_in_message(ctx, entry, obx)
    elif key in ctx.keys:
        make_unique(ctx, entry, obx, observed_sent)
    else:
        ctx.observed[key] = observed_sent
        ctx.ordered[key] = ctx.order_time
    ctx.keys.add(entry.key)
    if entry.key == key and not withheld and key not in ctx.filed:
        ctx.filed[key] = entry
    if action == ACTION_REPLACE or action == ACTION_DELETE:
        entry.replaces_key = entry.key
    if action == ACTION_DELETE and entry.key == key:
        ctx.withdrawals[key] = entry
    if local:
        lc, ls, ld = local
        entry.details["local_code"] = {"code": lc, "system": ls, "display": ld}
    vtype = f[2] if nf > 2 else ""
    raw5 = f[5] if nf > 5 else ""
    if withheld:
        entry.value_type = lf(vtype).upper() or None
        if raw5:
            withhold(ctx, obx, entry, status_code)
    elif vtype == "NM" and raw5 and NUMBER.fullmatch(raw5):  # the common case, inline
        entry.value_type, entry.value, entry.value_num = "NM", raw5, float(raw5)
    elif raw5:
        fill_value(ctx, obx, entry)
    else:
        entry.value_type = lf(vtype).upper() or None
        if status_code in empty_means_held():
            # OBX-11 U (v2.5 7.4.2.11): 'results status change to final without
            # retransmitting results already sent as preliminary'. The value is the one
            # held; deposit carries it over (dossiers/deposit.py). Filed as it came, the
            # final had no value and the potassium sent as preliminary was gone.
            entry.details["value_held"] = True
    if nf > 6 and f[6]:
        in_value = entry.unit if entry.details.get("unit_in_value") else None
        fill_unit(lf, split_field(d, f[6]), entry, ctx.warnings, obx)
        if in_value is not None:
            check_unit_in_value(obx, entry, in_value)
    if r_system == "LN" and entry.unit and (clash := unit_contradicts_code(r_code, entry.unit)):
        warn_unit_contradicts_code(ctx, obx, entry, clash)
    if nf > 7 and f[7]:
        # ST: no components, and a '&' there is text a sender left unescaped ('H & F : ...')
        if d.repetition in f[7]:
            reference_ranges(ctx, obx, entry)
        else:
            entry.reference_range = text(msg, f[7]) or None
    if nf > 8 and f[8]:
        raw8 = f[8]
        if d.repetition in raw8 or d.component in raw8:
            entry.interpretation = coded_flags(ctx, obx, raw8, lf)
            flag_origins(ctx, raw8, lf, entry)
        else:
            flag = lf(raw8)  # 'H', 'N': as nearly all send, one lookup
            entry.interpretation = (flag if flag in flag_codes() else flag_code(ctx, obx, flag)) \
                or None
    observed = field_ts(obx, 14, d, ctx.zone) if nf > 14 and f[14] else None
    if observed is not None and len(observed) <= 10 and obr_effective \
            and obr_effective.startswith(observed):
        # OBX-14 a date ('20240315') where OBR-7 has the time of that day: the time is kept.
        # Filed as the day only, the result lost its hour and never met the same result of
        # a CDA lab report (dedupe level 4 compares the instant)
        observed = obr_effective
    entry.effective = observed or obr_effective
    entry.issued = (field_ts(obx, 19, d, ctx.zone) if nf > 19 and f[19] else None) or obr_issued
    if nf > 23 and f[23]:  # performing organization (v2.5): XON.1 name, else its id
        org = split_field(d, f[23])
        entry.performer = lf(org[0]) or (lf(org[9]) if len(org) > 9 else "") or None
        said = organization_said(msg, first_rep(msg, obx, 23))
        if said and said["name"] == entry.performer:
            entry.details["performing_organization"] = said
    if entry.performer is None and nf > 15 and (f[15] or (nf > 16 and f[16])):
        entry.performer = result_performer(msg, obx)
    if nf > 16 and f[16]:
        observer = responsible_observer(msg, first_rep(msg, obx, 16))
        if observer:
            entry.details["responsible_observer"] = observer
    if nf > 17 and (f[17] or (nf > 18 and f[18]) or (nf > 29 and f[29])):
        _how_observed(ctx, obx, entry)
    comments = note_texts(msg, notes) if notes else None
    if comments:
        entry.details["comments"] = comments
        keep_comment_types(msg, notes, entry.details)
    return entry


def _how_observed(ctx: Ctx, obx: Segment, entry: Entry) -> None:
    """OBX-17 observation method (CWE, repeats: 'calculated by Friedewald', the enzymatic
    or immunoturbidimetric technique a French report prints beside the result), OBX-18
    equipment instance (EI: the analyser), OBX-29 observation type (table 0936: a result,
    or the answer to a question asked at order entry, 'fasting: yes'), in
    ``details['method']``, ``details['equipment']``, ``details['observation_type']``.
    US ELR and LRI 2.5.1 senders require them; they were dropped, and an LDL computed
    by formula read as one measured."""
    msg, f = ctx.msg, obx.fields
    methods = [m for m in (coded_item(msg, r) for r in reps(msg, obx, 17)) if m]
    if methods:
        entry.details["method"] = methods[0] if len(methods) == 1 else methods
    devices = []
    for rep in reps(msg, obx, 18) if len(f) > 18 and f[18] else ():
        c = comps(msg, rep)
        said = {"id": text(msg, part(c, 1)), "namespace": text(msg, part(c, 2)),
                "universal_id": text(msg, part(c, 3))}
        said = {k: v for k, v in said.items() if v}
        if said:
            devices.append(said)
    if devices:
        entry.details["equipment"] = devices[0] if len(devices) == 1 else devices
    kind = text(msg, part(comps(msg, first_rep(msg, obx, 29)), 1)).upper() \
        if len(f) > 29 and f[29] else ""
    if kind:
        entry.details["observation_type"] = kind
        if kind not in _observation_types():
            ctx.warnings.append(f"{loc(obx, 29)}: observation type is none of HL7 table 0936 "
                                "(tables/observation_types.csv): kept as sent")


@cache
def _observation_types() -> frozenset[str]:
    """OBX-29 codes of HL7 table 0936 (tables/observation_types.csv)."""
    return frozenset(row["code"] for row in table("observation_types"))
