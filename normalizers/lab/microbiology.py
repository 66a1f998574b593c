"""Microbiology: isolates (organisms) and susceptibilities linked to their parent result (OBR-26,
OBR-29)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from normalizers.codes import system_name
from normalizers.fields import comps, first_rep, part, sub, text
from normalizers.lab.groups import Group
from normalizers.model import LAB_RESULT, Entry
from normalizers.tabledata import table
from parsers.hl7v2.er7 import Message, Segment


@cache
def _organism_codes() -> frozenset[tuple[str, str]]:
    """(system, code) of the 'organism identified' observations (tables/
    organism_identification_codes.csv, shared with the CDA path)."""
    return frozenset((row["system"], row["code"])
                     for row in table("organism_identification_codes"))


def group_isolates(msg: Message, g: Group, results: list[Entry]) -> None:
    """A culture's results grouped by organism through OBX-4 (v2.5 7.4.2.4: the sub-id
    relates OBX of one order): the organism's identification under '1', its colony count
    and antibiotics under '1' too (US ELR) or '1.1', '1.2'... (dotted, French LIS). Each
    result of a group names its organism in ``details['isolate']`` ({code, system,
    display} or {text}), as a CR-BIO's isolate organizer does. Unsaid, two organisms'
    'amoxicillin S' were one fact (dedupe level 4): the second organism's, filed by a later
    message of the culture, was taken for the first's and never filed. A sub-id under two
    identifications names no single organism and is left alone; results sent before the
    first identification (the cytology of an ECBU, under a default sub-id '1') are no
    organism's."""
    codes = _organism_codes()
    found = [r for r in results if r.type == LAB_RESULT and (r.system or "", r.code or "")
             in codes]
    if not found:
        return
    organisms: dict[str, dict[str, str] | None] = {}
    sub_ids = {f"OBX[{obx.index}]": (obx.fields[4].strip() if len(obx.fields) > 4 else "")
               for obx, _ in g.observations}
    for r in found:
        sub_id = sub_ids.get(r.source_ref, "")
        if sub_id:
            organisms[sub_id] = None if sub_id in organisms else _germ_of(r)
    first = results.index(found[0])
    for r in results[first + 1:]:  # what follows the identification: a cytology sent
        # before it under the same default sub-id '1' is no result of the organism
        if r.type != LAB_RESULT or (r.system or "", r.code or "") in codes:
            continue
        sub_id = sub_ids.get(r.source_ref, "")
        while sub_id:
            if sub_id in organisms:
                germ = organisms[sub_id]
                if germ:
                    r.details["isolate"] = dict(germ)
                break
            sub_id = sub_id.rpartition(".")[0]


def _germ_of(result: Entry) -> dict[str, str] | None:
    """The organism an identification result names: its coded value ({code, system named
    as on every channel, display}) or its words ({text}); None when it names none (no
    value yet, several organisms in one value)."""
    coded = result.details.get("coded_value")
    if isinstance(coded, dict):
        if coded.get("code"):
            system = coded.get("system", "")
            return {"code": coded["code"], "system": system_name(system) if system else "",
                    "display": coded.get("display", "")}
        words = coded.get("display") or coded.get("original_text")
        return {"text": words} if words else None
    if coded is None and result.value and result.value_num is None:
        return {"text": result.value}
    return None


@dataclass(slots=True, frozen=True)
class _ParentResult:
    """OBR-26 (PRL): the parent's OBX-3 identifier, OBX-4 sub-id and OBX-5 value (text).

    A susceptibility panel names the organism it is about this way (v2.5 7.4.1.26, ELR
    microbiology); ``scope`` keeps the keys of two organisms' panels apart."""

    code: str
    sub_id: str
    value: str
    system: str = ""  # OBR-26.1.3, as sent: part of the parent's key, never of what is said

    @property
    def scope(self) -> str:
        if self.code and not self.sub_id and self.value:
            # PRL.2 left out ('600-7&Germe&LN^^Escherichia coli'): the isolate PRL.3 names
            # tells two organisms' panels apart. Keyed by the code alone, the second panel
            # was told from the first by its rank ('#2'), and a later message holding only
            # the second filed it over the first organism's antibiogram.
            return f"{self.code}^^{self.value[:64]}"
        if self.code or self.sub_id:
            return f"{self.code}^{self.sub_id}"
        return self.value

    def said(self) -> dict[str, str]:
        """What the sender said of the parent, for ``details['parent_result']``."""
        said = {"code": self.code, "sub_id": self.sub_id, "value": self.value}
        return {k: v for k, v in said.items() if v}


def parent_result(msg: Message, obr: Segment) -> _ParentResult | None:
    """OBR-26 when it is one: a PRL has components (identifier ^ sub-id ^ value) or at least
    a coded identifier (code&text&system); a lone value there ('F', a status shifted by one
    field) is no parent and changes no key."""
    f = obr.fields
    if len(f) <= 26 or not f[26]:
        return None
    d = msg.delimiters
    if d.component not in f[26] and d.subcomponent not in f[26]:
        return None
    c = comps(msg, first_rep(msg, obr, 26))
    value = part(c, 3)  # TX; ELR senders write the organism coded there: code&text&system
    value = (sub(msg, value, 2) or sub(msg, value, 1)) if d.subcomponent in value \
        else text(msg, value)
    parent = _ParentResult(sub(msg, part(c, 1), 1), sub(msg, part(c, 2), 1), value,
                           sub(msg, part(c, 1), 3))
    return parent if parent.scope else None


def link_parent(report: Entry, parent: _ParentResult, entries: list[Entry],
                parent_order: tuple[str, str, str] | None) -> None:
    """A child order (a susceptibility panel) points at the result it is about (the
    organism): ``details['parent_result']`` says which, as sent, and ``parent_key`` is that
    result's key: the last one of the message with that identifier and sub-id, else, when
    the organism came in an earlier message, the key it was filed under, built from OBR-29
    (the parent order: filler number and namespace) and OBR-26.1 (its OBX-3 code and coding
    system as sent). A panel sent the day after its organism (the usual course of a
    culture) was linked to nothing; deposit finds the organism in the dossier by that key
    (none held: no link, as before)."""
    report.details["parent_result"] = parent.said()
    if not parent.code:
        return
    if not parent.sub_id and parent.value:
        found = _isolate_result(parent, entries)
        if found is not None:
            report.parent_key = found.key
            return
    for entry in reversed(entries):
        if entry.type != LAB_RESULT:
            continue
        parts = entry.key.split("|")
        # OBR-26.1 names the parent by its OBX-3 as sent, or by the LOINC the result is filed
        # under ('600-7' for an organism sent 'GERME^Germe^L^600-7^^LN')
        if len(parts) > 5 and parts[5] == parent.sub_id \
                and (parts[3] == parent.code or entry.code == parent.code):
            report.parent_key = entry.key
            return
    if parent_order is not None and parent.system:
        number, _, scope = parent_order
        report.parent_key = f"result|{number}|{scope}|{parent.code}|{parent.system}|" \
                            f"{parent.sub_id}"


def _isolate_result(parent: _ParentResult, entries: list[Entry]) -> Entry | None:
    """The message's result a PRL without sub-id names by its isolate (PRL.3, its words or
    its code): the last one of OBR-26.1's identifier whose organism (``_germ_of``) is
    that one, whatever its OBX-4. Read by identifier and an empty sub-id, the panel was
    linked to no result (or to a key no result has)."""
    said = parent.value.strip().casefold()
    for entry in reversed(entries):
        parts = entry.key.split("|")
        if entry.type != LAB_RESULT or parent.code not in (parts[3] if len(parts) > 3 else "",
                                                           entry.code):
            continue
        germ = _germ_of(entry) or {}
        if said in {str(v).strip().casefold() for k, v in germ.items() if k != "system"}:
            return entry
    return None
