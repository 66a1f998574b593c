"""Who took part: ordering provider, observers, performing organizations and participants (OBR-16,
OBX-15/16/23-25, PRT), read as identifiers (XCN, XON)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from normalizers.fields import comps, first_rep, leaf, organization, part, person_name, sub, text
from normalizers.identity import authority_of
from normalizers.lab.groups import Group
from normalizers.model import LAB_RESULT, Entry
from parsers.hl7v2.er7 import Delimiters, Message, Segment


def participants(msg: Message, g: Group, report: Entry | None,
                 results: list[Entry]) -> None:
    """Who performed and who interpreted, as v2.7+ senders say it: PRT segments (table 0912
    roles) in place of the fields v2.7 deprecates. A result's performer is the performing
    organization (PRT-4 'PO', PRT-8) unless OBX-23 names one, else the responsible observer
    (PRT 'RO', PRT-5) when OBX-15/16 name nobody; a report's is its principal interpreter
    (PRT 'PI') when OBR-32 is empty. They were read from the old fields only: a v2.8 lab's
    results had no performer, its subcontracted tests looked done in-house."""
    if report is not None and g.order_parts and not (len(g.obr.fields) > 32
                                                       and g.obr.fields[32]):
        name = _participant(msg, g.order_parts, "PI")
        if name:
            report.performer = name
    if report is not None and g.order_parts and "ordering_provider" not in report.details:
        _ordering_provider(msg, g.order_parts, report)
    if not g.result_parts:
        return
    by_ref = {r.source_ref: r for r in results if r.type == LAB_RESULT}
    for index, parts in g.result_parts.items():
        result = by_ref.get(f"OBX[{index}]")
        if result is None:
            continue
        obx = next(o for o, _ in g.observations if o.index == index)
        f = obx.fields
        org = _participant(msg, parts, "PO") if not (len(f) > 23 and f[23]) else None
        if org:
            result.performer = org
            said = next((organization_said(msg, first_rep(msg, prt, 8)) for prt in parts
                         if text(msg, part(comps(msg, first_rep(msg, prt, 4)), 1)).upper()
                         == "PO"), None)
            if said and said["name"] == org:
                result.details["performing_organization"] = said
        elif result.performer is None:
            result.performer = _participant(msg, parts, "RO")
        if "responsible_observer" not in result.details:
            for prt in parts:
                if text(msg, part(comps(msg, first_rep(msg, prt, 4)), 1)).upper() == "RO":
                    observer = responsible_observer(msg, first_rep(msg, prt, 5))
                    if observer:
                        result.details["responsible_observer"] = observer
                    break


def _ordering_provider(msg: Message, parts: list[Segment], report: Entry) -> None:
    """The ordering provider of a v2.7+ order: the PRT in role OP (table 0912) after its ORC
    or OBR, PRT-5 its person, read as OBR-16 and ORC-12 are (they win when sent). v2.7
    deprecates OBR-16 for it; a v2.8 lab's report did not say who had ordered the tests
    (the prescriber a result goes back to)."""
    for prt in parts:
        if text(msg, part(comps(msg, first_rep(msg, prt, 4)), 1)).upper() != "OP":
            continue
        rep = first_rep(msg, prt, 5)
        name = person_name(msg, rep) if rep else ""
        if name:
            report.details["ordering_provider"] = name
            said = provider_id(msg, rep)
            if said:
                report.details["ordering_provider_id"] = said
            return


def organization_said(msg: Message, rep: str) -> dict[str, Any] | None:
    """A performing laboratory (OBX-23, PRT-8: XON) with its identifier as sent: XON.10
    (XON.3 before v2.5), its assigning authority XON.6 (the OID when there is one: a FINESS
    under the ANS structures' 1.2.250.1.71.4.2.2) and its type XON.7 ('FINEG'). Only the
    name was kept, and two laboratories of one name were one. None without a name and an
    identifier (a name alone is the entry's performer already)."""
    c = comps(msg, rep)
    name = sub(msg, part(c, 1), 1)
    number = sub(msg, part(c, 10), 1) or sub(msg, part(c, 3), 1)
    if not name or not number:
        return None
    hd = part(c, 6)
    ident = {"id": number,
             "authority": authority_of(sub(msg, hd, 1), sub(msg, hd, 2), sub(msg, hd, 3)),
             "type": sub(msg, part(c, 7), 1)}
    return {"name": name, "id": {k: v for k, v in ident.items() if v}}


def _participant(msg: Message, parts: list[Segment], role: str) -> str | None:
    """The name of the first PRT of ``parts`` in ``role`` (PRT-4.1): its organization
    (PRT-8, XON) for an organization's role, else its person (PRT-5, XCN)."""
    for prt in parts:
        if text(msg, part(comps(msg, first_rep(msg, prt, 4)), 1)).upper() != role:
            continue
        org = first_rep(msg, prt, 8)
        name = (organization(msg, org) if org else "") if role == "PO" else ""
        person = first_rep(msg, prt, 5)
        name = name or (person_name(msg, person) if person else "") or \
            (organization(msg, org) if org else "")
        if name:
            return name
    return None


def report_performer_of(msg: Message, obr: Segment) -> str | None:
    """OBR-32 principal result interpreter, else the sending facility (MSH-4)."""
    rep = first_rep(msg, obr, 32)
    return (person_name(msg, rep) if rep else "") or msg.get(msg.msh, 4) or None


def provider_id(msg: Message, rep: str) -> dict[str, str] | None:
    """The identifier of an XCN (OBR-16, ORC-12) as sent: XCN.1, its assigning authority
    (XCN.9, the OID when there is one) and its type (XCN.13). French prescribers are named
    by their RPPS or ADELI number ('10003791976^MARTIN^Paul^^^DR^^^ASIP-SANTE-PS&1.2.250.1.
    71.4.2.1&ISO^D^^^RPPS'), what tells two Dr MARTIN apart; only the name was kept."""
    said = _xcn_id(msg.delimiters, rep)
    return dict(said) if said else None


@lru_cache(maxsize=1024)
def _xcn_id(d: Delimiters, rep: str) -> tuple[tuple[str, str], ...]:
    """``provider_id`` of the raw text alone (cached: a lab's reports name the same few
    prescribers). A lone value is the name's stand-in, not an identifier."""
    c = rep.split(d.component)
    number = leaf(d, c[0])
    if not number or len(c) < 2:
        return ()
    hd = [leaf(d, x) for x in part(c, 9).split(d.subcomponent)]
    said = (("id", number), ("authority", authority_of(part(hd, 1), part(hd, 2), part(hd, 3))),
            ("type", leaf(d, part(c, 13))))
    return tuple((k, v) for k, v in said if v)


def responsible_observer(msg: Message, rep: str) -> dict[str, Any] | None:
    """OBX-16 or a PRT-5 in role RO, the responsible observer (in France the biologist who
    validated the result), as {name, id: {id, authority, type}}: the RPPS number tells two
    Dr MARTIN apart. Only a name, and only when no organization was named, was kept."""
    name = person_name(msg, rep) if rep else ""
    said: dict[str, Any] = {"name": name} if name else {}
    ident = provider_id(msg, rep) if rep else None
    if ident:
        said["id"] = ident
    return said or None


def result_performer(msg: Message, obx: Segment) -> str | None:
    """OBX-23 performing organization, else OBX-15 producer, else OBX-16 responsible observer."""
    rep = first_rep(msg, obx, 23)
    if rep:
        name = organization(msg, rep)
        if name:
            return name
    c15 = comps(msg, first_rep(msg, obx, 15))
    producer = sub(msg, part(c15, 2), 1) or sub(msg, part(c15, 1), 1)
    if producer:
        return producer
    rep = first_rep(msg, obx, 16)
    return (person_name(msg, rep) or None) if rep else None
