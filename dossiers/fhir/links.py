"""Links between the resources of a Bundle: results to their report, an organism's
susceptibilities, a result's parts, orders, visits, prescriptions and organizer groups."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from dossiers.fhir.codings import coded_concept, said_concept, system_uri
from dossiers.fhir.common import decoded_json, fhir_code, fhir_string, full_url, items
from dossiers.fhir.identifiers import entity_identifier
from dossiers.fhir.labs import LAB_RESULT, is_lab_result, organism_codes
from dossiers.fhir.masking import merge_security, security_labels
from dossiers.fhir.vital_signs import effective_start


def link(kept: Sequence[Mapping], resources: Mapping[int, dict], urls: Mapping[int, str],
         versions: Mapping[int, int]) -> None:
    """Links between the resources, each to a resource inside this Bundle. An entry's parent
    (parent_id) may be an earlier version of it (a result confirmed unchanged by a corrected
    report still names the report it came with): ``versions`` leads to the current one.
    Report -> its results (DiagnosticReport.result); document -> what was read from it
    (derivedFrom, evidence, report); an organism (an Observation) -> its susceptibility
    results, sent as a panel of their own (OBR-26/29, filed as a report whose parent is the
    organism) or directly under it (Observation.hasMember, as the HL7 laboratory report IG
    links an isolate to its susceptibilities)."""
    panels: dict[int, int] = {}  # a report's id -> the Observation it is about
    links = []
    for e in kept:
        parent_id = e.get("parent_id")
        parent_id = versions.get(parent_id, parent_id) if parent_id is not None else None
        if parent_id in resources and parent_id != e["id"]:
            links.append((e["id"], parent_id))
            if resources[e["id"]]["resourceType"] == "DiagnosticReport" \
                    and resources[parent_id]["resourceType"] == "Observation":
                panels[e["id"]] = parent_id
    for child_id, parent_id in links:
        parent, mine = resources[parent_id], resources[child_id]
        ref, me = {"reference": urls[parent_id]}, {"reference": urls[child_id]}
        if parent["resourceType"] == "DiagnosticReport" and mine["resourceType"] == "Observation":
            if not is_lab_result(mine):  # an AOE answer, a question: no result of the report
                continue
            parent.setdefault("result", []).append(me)
            if parent_id in panels and panels[parent_id] != child_id:
                resources[panels[parent_id]].setdefault("hasMember", []).append(me)
        elif parent["resourceType"] == "Observation" and mine["resourceType"] == "Observation":
            parent.setdefault("hasMember", []).append(me)
        elif parent["resourceType"] in ("DocumentReference", "DiagnosticReport"):
            if mine["resourceType"] in ("Observation", "MedicationStatement"):
                mine.setdefault("derivedFrom", []).append(ref)
            elif mine["resourceType"] in ("MedicationRequest", "MedicationDispense"):
                mine.setdefault("supportingInformation", []).append(ref)
            elif mine["resourceType"] == "Condition":
                mine.setdefault("evidence", []).append({"detail": [ref]})
            elif mine["resourceType"] == "Procedure":
                mine.setdefault("report", []).append(ref)
    _link_parts(kept, resources, urls)


def _link_parts(kept: Sequence[Mapping], resources: Mapping[int, dict],
                urls: Mapping[int, str]) -> None:
    """A CDA result's parts -> the result's Observation.hasMember, as an HL7 OBR-26 child
    panel is its organism's: the variant, reference sequence and exon of one gene (CR-GM),
    the size of an imaging finding, the items of a score (NIHSS). CDA files them under the
    document (parent_id), and details.parent_result names the result they are part of by
    its key: two genes' identical 'c.35G>A' are each their own gene's. A key naming a
    result of another code than the one said (the store gave that key to another entry)
    links nothing: a member is never guessed."""
    by_key = {str(e["key"]): e for e in kept if e.get("key")}
    for e in kept:
        details = decoded_json(e.get("details"))
        said = details.get("parent_result") if isinstance(details, Mapping) else None
        if not isinstance(said, Mapping) or not fhir_string(said.get("key")):
            continue  # HL7 OBR-26 says the organism, its report links it (link)
        parent = by_key.get(str(said["key"])) or _same_result(kept, e, said)
        if parent is None or parent["id"] == e["id"] \
                or (fhir_code(said.get("code")) or "") != (fhir_code(parent.get("code")) or ""):
            continue
        whole, me = resources[parent["id"]], {"reference": urls[e["id"]]}
        if whole["resourceType"] != "Observation" or \
                resources[e["id"]]["resourceType"] != "Observation":
            continue
        members = whole.setdefault("hasMember", [])
        if me not in members:
            members.append(me)


def _same_result(kept: Sequence[Mapping], part: Mapping, said: Mapping) -> Mapping | None:
    """The result a part's parent_result states, when the store holds it under another key:
    the same gene result sent in two documents is one fact (dedupe level 4), filed under
    the first document's key, and the second document's parts name the second's. Found by
    what parent_result says of it (code, system, value) and the part's time, only when one
    result says so; else none (never a guess between two)."""
    code, value = fhir_code(said.get("code")), fhir_string(said.get("value"))
    if not code or not value:
        return None
    found = [e for e in kept if e is not part and fhir_code(e.get("code")) == code
             and (fhir_string(e.get("system")) or "") == (fhir_string(said.get("system")) or "")
             and (fhir_string(e.get("value")) or "")[:200] == value
             and e.get("effective") == part.get("effective")]
    return found[0] if len(found) == 1 else None


def _germ_keys(said: Any) -> set[tuple[str, ...]]:  # noqa: ANN401
    """What names an organism: ('code', system, code) of a coded one, ('text', words)."""
    out: set[tuple[str, ...]] = set()
    for item in items(said):
        if not isinstance(item, Mapping):
            continue
        if fhir_code(item.get("code")):
            # by its URI: the identification's value keeps the system as sent ('SCT'),
            # details.isolate as named on every channel ('SNOMED-CT')
            out.add(("code", system_uri(item.get("system")) or "", fhir_code(item["code"]) or ""))
        for k in ("display", "text", "original_text"):
            if fhir_string(item.get(k)):
                out.add(("text", (fhir_string(item[k]) or "").casefold()))
    return out


def link_isolates(kept: Sequence[Mapping], resources: Mapping[int, dict],
                  urls: Mapping[int, str], versions: Mapping[int, int],
                  isolates: dict[str, dict] | None = None) -> None:
    """A culture's results about one organism (details.isolate: its colony count, its
    antibiogram, grouped by OBX-4 sub-id or a CDA isolate organizer) are members of that
    organism's identification (Observation.hasMember, as the HL7 laboratory and
    microbiology IGs link an isolate to what was measured on it): the organism of the same
    report whose value names the same germ (by code, else by words). They stood side by
    side, and which antibiogram was whose was said nowhere in the Bundle."""
    def scope(e: Mapping) -> tuple:
        parent = e.get("parent_id")
        parent = versions.get(parent, parent) if parent is not None else None
        return ("parent", parent) if parent is not None else ("import", e.get("import_id"))

    organisms: dict[tuple, list[tuple[int, set]]] = {}
    for e in kept:
        if (e.get("system") or "", e.get("code") or "") not in organism_codes():
            continue
        details = decoded_json(e.get("details"))
        details = details if isinstance(details, Mapping) else {}
        keys = _germ_keys(details.get("coded_value")) | _germ_keys(details.get("value_code"))
        if fhir_string(e.get("value")):
            keys.add(("text", (fhir_string(e["value"]) or "").casefold()))
        organisms.setdefault(scope(e), []).append((e["id"], keys))
    if not organisms and isolates is None:
        return
    for e in kept:
        details = decoded_json(e.get("details"))
        germ = details.get("isolate") if isinstance(details, Mapping) else None
        if not germ or resources[e["id"]]["resourceType"] != "Observation":
            continue
        wanted = _germ_keys(germ)
        coded = {k for k in wanted if k[0] == "code"}
        found = [i for i, keys in organisms.get(scope(e), []) if (coded or wanted) & keys
                 and i != e["id"]]
        me = {"reference": urls[e["id"]]}
        if not found and isolates is not None:
            _isolate_of(e, germ, scope(e), resources[e["id"]], isolates)["hasMember"].append(me)
            continue
        if len(found) != 1:  # two identifications of one germ: which one is unsaid
            continue
        members = resources[found[0]].setdefault("hasMember", [])
        if me not in members:
            members.append(me)


ISOLATE_CODE = {"text": "micro-organism isolated"}


def _isolate_of(entry: Mapping, germ: Any, scope: tuple, member: Mapping,  # noqa: ANN401
                isolates: dict[str, dict]) -> dict:
    """The Observation of an isolate that no identification result names: CI-SIS and IHE LAB
    isolate organizers give the germ as their specimen (details.isolate, with the isolate's
    id), not as an observation. One per isolate of a report, its value the germ, its members
    the results about it, labelled as they are; its code says what it is in words (the
    sender coded no observation)."""
    said = germ if isinstance(germ, Mapping) else {}
    name = fhir_string(said.get("id")) or "|".join(sorted(map(str, _germ_keys(germ))))
    url = full_url("isolate", f"{scope}/{name}")
    held = isolates.get(url)
    if held is None:
        held = isolates[url] = {
            "resourceType": "Observation", "status": member.get("status") or "unknown",
            "category": member.get("category") or [], "code": dict(ISOLATE_CODE),
            "subject": member.get("subject"),
            "effectiveDateTime": effective_start(member),
            "valueCodeableConcept": coded_concept(germ, "urn:dmp") or {"text": "isolate"},
            "identifier": [{"value": fhir_string(said.get("id"))}]
            if fhir_string(said.get("id")) else [],
            "hasMember": []}
    labels = held.setdefault("meta", {}).setdefault("security", [])
    for label in (member.get("meta") or {}).get("security") or ():
        if label not in labels:  # a masked result's organism is as masked
            labels.append(label)
    return held


def bundle_entry(url: str, resource: dict) -> dict:
    """fullUrl and resource, whose id is the uuid of its fullUrl (resourceType, id first)."""
    rest = {k: v for k, v in resource.items() if k not in ("resourceType", "id")}
    return {"fullUrl": url, "resource": {"resourceType": resource["resourceType"],
                                         "id": url.removeprefix("urn:uuid:"), **rest}}


def link_orders(kept: Sequence[Mapping], resources: Mapping[int, dict],
                versions: Mapping[int, int], extras: Mapping[str, dict]) -> None:
    """The orders a document answers (its ServiceRequests, DocumentReference.context
    .related: R4 gives a DocumentReference no basedOn) -> basedOn of the reports and lab
    results read from it, as R4 DiagnosticReport and Observation say it. Only the
    DocumentReference pointed at the CR-BIO's order: a reader of the results (a lab
    Observation is what FR Core and IPS look at) could not find what was prescribed nor by
    whom. An order the report already names (HL7v2 OBR) is kept, the document's added."""
    for e in kept:
        parent = e.get("parent_id")
        parent = versions.get(parent, parent) if parent is not None else None
        mine = resources[e["id"]]
        if parent not in resources or parent == e["id"] or \
                resources[parent]["resourceType"] != "DocumentReference" or not (
                    mine["resourceType"] == "DiagnosticReport" or
                    (e.get("type") == LAB_RESULT and is_lab_result(mine))):
            continue
        related = (resources[parent].get("context") or {}).get("related") or ()
        for ref in related:
            if (extras.get(ref.get("reference") or "") or {}).get("resourceType") \
                    == "ServiceRequest" and ref not in mine.get("basedOn", ()):
                mine.setdefault("basedOn", []).append(dict(ref))


_ENCOUNTER_DIAGNOSIS = {"coding": [{
    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
    "code": "encounter-diagnosis", "display": "Encounter Diagnosis"}]}


def link_visits(kept: Sequence[Mapping], resources: Mapping[int, dict],
                urls: Mapping[int, str]) -> None:
    """A problem diagnosed at a visit, or that the visit was for (details.visit: the
    encounter entry's key and the role, C-CDA Encounter Diagnosis or an RSON problem) ->
    Condition.encounter, and the Encounter's diagnosis or reasonReference (R4). The store
    said it, the Bundle did not: the diagnosis read as a problem found anywhere. An
    encounter the Bundle does not hold (masked, superseded) links nothing."""
    by_key = {str(e["key"]): e["id"] for e in kept if e.get("key")}
    for e in kept:
        details = decoded_json(e.get("details"))
        visit = details.get("visit") if isinstance(details, Mapping) else None
        if not isinstance(visit, Mapping) or not fhir_string(visit.get("key")):
            continue
        found = by_key.get(str(visit["key"]))
        mine = resources[e["id"]]
        if found is None or found == e["id"] or mine["resourceType"] != "Condition" or \
                resources[found]["resourceType"] != "Encounter":
            continue
        mine["encounter"] = {"reference": urls[found]}
        me = {"reference": urls[e["id"]]}
        if visit.get("role") == "reason":
            resources[found].setdefault("reasonReference", []).append(me)
        else:  # made at the visit: R4 condition-category says so
            resources[found].setdefault("diagnosis", []).append({"condition": me})
            mine.setdefault("category", []).append(_ENCOUNTER_DIAGNOSIS)


# Where R4 lets a resource name what it rests on: (element, wraps in evidence.detail,
# only documents); R4 Procedure.report and Observation.derivedFrom take a DocumentReference,
# not an act; the others any resource
_REFERENCED_BY = {"DocumentReference": ("context.related", False),
                  "Procedure": ("report", True), "Observation": ("derivedFrom", True),
                  "Condition": ("evidence", False), "MedicationStatement": ("derivedFrom", False),
                  "MedicationRequest": ("supportingInformation", False),
                  "MedicationDispense": ("supportingInformation", False)}


def link_references(kept: Sequence[Mapping], resources: Mapping[int, dict],
                    extras: dict[str, dict], subject: dict, base_url: str) -> None:
    """What a fact or a document refers to (details.external_references, CDA
    act.reference: a procedure's report, the advance directives a DLU summarises, the
    guideline an IPS-FR problem follows, a document's external document) -> a reference
    where R4 gives one a place. A reference that says where it is (a URL) is a
    DocumentReference of its own, its attachment's url, as R4 says a document found at an
    address; one by id alone a logical reference by identifier. They were dropped: the
    dossier's reader could not find the document a fact rests on. Never fetched."""
    for e in kept:
        details = decoded_json(e.get("details"))
        said = details.get("external_references") if isinstance(details, Mapping) else None
        mine = resources[e["id"]]
        where = _REFERENCED_BY.get(mine["resourceType"])
        if not isinstance(said, list) or where is None:
            continue
        element, documents_only = where
        for ref in said:
            if not isinstance(ref, Mapping):
                continue
            if documents_only and ref.get("kind") != "externalDocument" and \
                    not fhir_string(ref.get("url")):
                continue
            found = _external_reference(ref, e, details, subject, base_url, extras)
            if found is None:
                continue
            if element == "context.related":
                mine.setdefault("context", {}).setdefault("related", []).append(found)
            elif element == "evidence":
                mine.setdefault("evidence", []).append({"detail": [found]})
            else:
                mine.setdefault(element, []).append(found)


def link_prescriptions(kept: Sequence[Mapping], resources: Mapping[int, dict],
                       extras: dict[str, dict], subject: dict, base_url: str) -> None:
    """The prescription a dispense fulfils (details.prescription, CDA eDISP / IHE Pharm
    DIS: the prescription item's id, the prescription document by XCRPT) -> the
    MedicationDispense's authorizingPrescription (the MedicationRequest by its identifier)
    and supportingInformation (the document); a MedicationStatement's basedOn and
    derivedFrom. It was read by the CDA round and dropped here: a pharmacist's dispense
    named no prescription."""
    elements = {"MedicationDispense": ("authorizingPrescription", "supportingInformation"),
                "MedicationStatement": ("basedOn", "derivedFrom")}
    for e in kept:
        details = decoded_json(e.get("details"))
        said = details.get("prescription") if isinstance(details, Mapping) else None
        mine = resources[e["id"]]
        if not isinstance(said, Mapping) or mine["resourceType"] not in elements:
            continue
        based_on, derived_from = elements[mine["resourceType"]]
        item = entity_identifier(said.get("item"))
        if item is not None:
            mine.setdefault(based_on, []).append({"type": "MedicationRequest",
                                                  "identifier": item})
        for ref in said.get("documents") or ():
            found = _external_reference(ref, e, details, subject, base_url, extras) \
                if isinstance(ref, Mapping) else None
            if found is not None and found not in mine.get(derived_from, ()):
                mine.setdefault(derived_from, []).append(found)


def _external_reference(ref: Mapping, entry: Mapping, details: Mapping, subject: dict,
                        base_url: str, extras: dict[str, dict]) -> dict | None:
    """One act.reference as a Reference: with a URL, to a DocumentReference added to
    ``extras`` (one per id and URL, with the labels of the entries that name it); by id
    alone, logical (typed DocumentReference for an externalDocument)."""
    identifier = entity_identifier(ref.get("id"))
    url, text = fhir_string(ref.get("url")), fhir_string(ref.get("text"))
    code = ref.get("code") if isinstance(ref.get("code"), Mapping) else {}
    words = text or fhir_string(code.get("display"))
    if url:
        key = full_url("external-document", f"{ref.get('id') or ''}|{url}")
        held = extras.setdefault(key, {
            "resourceType": "DocumentReference", "meta": {"security": []},
            "identifier": [identifier] if identifier else [], "status": "current",
            "type": said_concept(code.get("code"), code.get("system"), code.get("display"),
                                 base_url), "subject": subject, "description": words,
            "content": [{"attachment": {"url": url, "title": words}}]})
        merge_security(held["meta"]["security"], security_labels(entry, details))
        return {"reference": key, "display": words}
    if identifier is None:
        return {"display": words} if words else None
    kind = "DocumentReference" if ref.get("kind") == "externalDocument" else None
    return {"type": kind, "identifier": identifier, "display": words}


def link_groups(kept: Sequence[Mapping], resources: Mapping[int, dict],
                urls: Mapping[int, str], versions: Mapping[int, int],
                extras: dict[str, dict], subject: dict, base_url: str) -> None:
    """Measurements an organizer says what they are of (details.group: IHE Eye Care /
    CI-SIS OPH-BRE 'lentilles prescrites' vs 'lentilles délivrées', a visual acuity 'best
    corrected' by its qualifier) -> members of one grouping Observation per organizer
    (Observation.hasMember, FHIR's own way of grouping measurements: the code is the
    organizer's, its qualifiers components). The same LOINC sphere power prescribed and
    delivered were two Observations nothing told apart; a reader now finds which is which
    by the group that has it, a panel reader shows them under it. One group per document
    (the scope isolates use) and group as sent."""
    groups: dict[tuple, dict] = {}
    for e in kept:
        details = decoded_json(e.get("details"))
        group = details.get("group") if isinstance(details, Mapping) else None
        if not isinstance(group, Mapping) or resources[e["id"]]["resourceType"] != \
                "Observation":
            continue
        parent = e.get("parent_id")
        parent = versions.get(parent, parent) if parent is not None else None
        scope = ("parent", parent) if parent is not None else ("import", e.get("import_id"))
        key = (scope, json.dumps(group, sort_keys=True, default=str))
        found = groups.get(key)
        if found is None:
            url = full_url("group", f"{scope}|{key[1]}")
            found = groups[key] = {
                "resourceType": "Observation",
                "status": resources[e["id"]].get("status") or "final",
                "code": said_concept(group.get("code"), group.get("system"),
                                     group.get("display"), base_url, group.get("text"))
                or {"text": "group"},
                "subject": subject,
                "effectiveDateTime": effective_start(resources[e["id"]]),
                "component": _group_components(group, base_url), "hasMember": [],
                "meta": {"security": []}}
            extras[url] = found
        found["hasMember"].append({"reference": urls[e["id"]]})
        if resources[e["id"]].get("status") != found["status"]:
            found["status"] = "unknown"  # members of several statuses: none is the group's
        for label in (resources[e["id"]].get("meta") or {}).get("security") or ():
            if label not in found["meta"]["security"]:
                found["meta"]["security"].append(label)


def _group_components(group: Mapping, base_url: str) -> list[dict]:
    """The qualifiers of a group's code ({name, value}: 'acuité visuelle observée' =
    'meilleure acuité visuelle corrigée') as components of its Observation."""
    out = []
    for q in group.get("qualifiers") or ():
        if not isinstance(q, Mapping):
            continue
        name = q.get("name") if isinstance(q.get("name"), Mapping) else {}
        value = q.get("value") if isinstance(q.get("value"), Mapping) else {}
        concept = said_concept(value.get("code"), value.get("system"), value.get("display"),
                               base_url, value.get("text"))
        code = said_concept(name.get("code"), name.get("system"), name.get("display"),
                            base_url, name.get("text"))
        if concept and code:
            out.append({"code": code, "valueCodeableConcept": concept})
    return out
