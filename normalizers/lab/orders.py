"""Order numbers (ORC/OBR placer and filler, their scope), parent orders, point-of-care sets and
priority."""

from __future__ import annotations

from functools import cache

from normalizers.fields import comps, first_rep, loc, part, sub, text, ts_field
from normalizers.identity import scoped_authority
from normalizers.lab.common import Ctx, field_ts
from normalizers.lab.groups import Group
from normalizers.lab.microbiology import parent_result
from normalizers.model import NormalizationError
from normalizers.tabledata import column_map
from parsers.hl7v2.er7 import Message, Segment

POINT_OF_CARE = frozenset({"R30", "R31", "R32"})  # ORU triggers of point-of-care results


def parent_order(msg: Message, obr: Segment) -> tuple[str, str, str] | None:
    """(number, namespace, scope) of the parent order OBR-29 names (EIP: placer ^ filler,
    each number & namespace & universal id), filler first as ``order_number`` keys an order;
    the namespace its child's documents are keyed by (``document_namespace``, as the parent's
    own: a namespace with no universal id scoped by MSH-4 since documents round 12); None if
    unsaid."""
    c29 = comps(msg, first_rep(msg, obr, 29))
    for i in (2, 1):
        number = sub(msg, part(c29, i), 1)
        if number:
            namespace, universal = sub(msg, part(c29, i), 2), sub(msg, part(c29, i), 3)
            return number, document_namespace(msg, namespace, universal), \
                order_scope(msg, namespace, universal)
    return None


def parent_order_said(msg: Message, obr: Segment) -> dict[str, str]:
    """OBR-29 (EIP: placer ^ filler, each number & namespace) as sent: the order this one
    was made from. A reflex test (a free T4 ordered by the laboratory after a high TSH) names
    its parent only there, OBR-26 empty; it was not read, and the report did not say which
    order it came from. Not part of any key."""
    c29 = comps(msg, first_rep(msg, obr, 29))
    said: dict[str, str] = {}
    for i, role in ((1, "placer"), (2, "filler")):
        number = sub(msg, part(c29, i), 1)
        if number:
            said[role] = number
            ns = sub(msg, part(c29, i), 2) or sub(msg, part(c29, i), 3)
            if ns:
                said[f"{role}_namespace"] = ns
    return said


def order_number(msg: Message, g: Group, ctx: Ctx) -> tuple[str, str, str]:
    """(number, namespace, scope): filler order (OBR-3, ORC-3) first, else placer (OBR-2,
    ORC-2); the namespace its documents are keyed by (``document_namespace``), the scope its
    assigning authority as the keys of its results and report name it (``order_scope``); for a
    point-of-care result sent without any number, see ``_point_of_care_set``.

    An ORC inherited from an earlier order (``Group.own_orc`` false) comes after the OBR's
    own numbers: its filler number is that other order's, and taking it first filed the
    results of an OBR sent with a placer number only under the previous order."""
    own = _own_number(msg, g)
    if own is not None:
        return own
    # A child order (OBR-26 set: a susceptibility panel) sent without numbers of its own is
    # filed under its parent's (OBR-29: placer&ns ^ filler&ns), the parent result in its key.
    if parent_result(msg, g.obr):
        parent = parent_order(msg, g.obr)
        if parent is not None:
            return parent
    where = loc(g.obr, 3)
    if msg.message_type[1].strip().upper() in POINT_OF_CARE:
        number, namespace, universal = _point_of_care_set(ctx, g, where)
        return number, _point_of_care_document_namespace(msg, namespace, universal), namespace
    raise NormalizationError("HL7_NO_ORDER_NUMBER",
                             f"{where}: no filler or placer order number (OBR-3, OBR-2, ORC)",
                             where)


def _own_number(msg: Message, g: Group) -> tuple[str, str, str] | None:
    """(number, namespace, scope) of the order's own number (see ``order_number``), None
    when it was sent without any."""
    if g.own_orc:
        candidates = [(g.obr, 3), (g.orc, 3), (g.obr, 2), (g.orc, 2)]
    else:
        candidates = [(g.obr, 3), (g.obr, 2), (g.orc, 3), (g.orc, 2)]
    for seg, n in candidates:
        if seg is None:
            continue
        c = comps(msg, first_rep(msg, seg, n))
        number = sub(msg, part(c, 1), 1)
        if number:
            namespace, universal = sub(msg, part(c, 2), 1), sub(msg, part(c, 3), 1)
            return number, document_namespace(msg, namespace, universal), \
                order_scope(msg, namespace, universal)
    return None


def keyed_by_parent(msg: Message, g: Group) -> bool:
    """Whether the order is a child order (OBR-26) sent without numbers of its own and keyed
    by its parent's (OBR-29), as ``order_number`` keys it: its documents then need the
    child's own identity in their key (``child_document_id``)."""
    return _own_number(msg, g) is None and parent_result(msg, g.obr) is not None \
        and parent_order(msg, g.obr) is not None


def child_document_id(number_id: str, service: str, parent_scope: str) -> str:
    """The id of a child order's document: the id its parent's numbers give it
    ('24B0412-03|LAB@LABO-NORD|1': number, namespace, OBX sub-id), then the child's
    universal service id (OBR-4) and the parent result it is about (OBR-26, as
    ``_ParentResult.scope`` keys its report): '24B0412-03|LAB@LABO-NORD|1|18769-0|600-7^1'.

    Why: an antibiogram sent as a child order (IHE LAB-3: OBR-29 the culture's numbers,
    OBR-26 the isolate) had its PDF at OBX-1 keyed exactly as the culture's own report PDF at
    OBX-1: whichever came second was filed as a new version of the other, the dossier's
    culture report 'replaced' by an antibiogram (and two isolates' antibiograms by each
    other). The same child order resent keeps its id; ``dossiers.deposit`` follows a
    document filed under the parent's form before (``child_document_form``)."""
    return f"{number_id}|{service}|{parent_scope}"


def document_namespace(msg: Message, namespace: str, universal: str) -> str:
    """The namespace an ORU's documents (OBX ED) are keyed by: EI.2, else EI.3, as sent; a
    namespace with no universal id scoped by the sending facility (MSH-4), 'LAB@LABO-NORD',
    as documents round 10 scopes a TXA-12 number (``identity.scoped_authority``).

    Why: a namespace without a universal id is only defined locally (v2.5 2.A.28). Two labs
    both sending filler numbers 'CR-100^LAB' had one document key, 'document|CR-100|LAB|1':
    the second lab's report was filed as a new version of the first's, and its cancel
    withdrew the other's. ``dossiers.deposit`` follows documents filed under 'LAB' before."""
    if namespace and not universal:
        return scoped_authority(namespace, msg.sender.partition("|")[2])
    return namespace or universal


def order_scope(msg: Message, namespace: str, universal: str) -> str:
    """The namespace part of an order's keys: who assigned its number (EI.2 namespace id,
    EI.3 universal id; v2.5 2.A.28), as ``dossiers.deposit.unscoped_order_key`` reads it.

    An order number is unique only within its assigning authority. Keyed by the namespace
    id alone, two laboratories giving the same number under one namespace name ('LAB',
    universal ids 1.2.250.1.999.1 and .2), or giving a bare number ('24C0315-07', no EI.2 nor
    EI.3, as many LIS write OBR-3), filed their results under one key: the potassium of one
    lab became a 'new version' of the other's, the first hidden from the dossier. Now: both
    ids when both are sent ('LAB&1.2.250.1.999.1', as an HD is written), either alone as
    before, and a bare number scoped by the application and facility that sent it (the
    filler of an ORU, v2.5 4.5.1.3: '&SIL-BIO^LABO-DEMO'). What comes before the '&' is the
    key's namespace as it was before: deposit follows results filed then."""
    if namespace and universal:
        return namespace if namespace == universal else f"{namespace}&{universal}"
    return namespace or universal or "&" + msg.sender.replace("|", "^")


def _point_of_care_set(ctx: Ctx, g: Group, where: str) -> tuple[str, str, bool]:
    """(number, namespace, universal) of a point-of-care observation set sent without any
    order number; ``universal`` whether the device's identifier has a universal id (OBX-18.3).

    ORU^R30/R31/R32 (v2.5 7.3.4-7.3.6, IHE LPOCT): a glucose meter or blood gas analyser
    reports what it measured before any order exists; the order is made from the result, and
    many devices and data managers send neither OBR-2 nor OBR-3. Such a message was refused
    whole (HL7_NO_ORDER_NUMBER). What tells one reading from another is when it was observed
    (OBR-7, else the first OBX-14) and on which device (the first OBX-18 equipment instance,
    else the sending application and facility): the same reading sent again (a new MSH-10)
    gets the same keys and is a duplicate, its correction (OBX-11 C) replaces it, and a
    reading of another time or device is another result. Without any time nothing tells the
    readings apart: still refused, saying so."""
    msg = ctx.msg
    obr = g.obr
    observed = ts_field(msg, obr, 7)
    device = ""
    universal = False
    for obx, _ in g.observations:
        f = obx.fields
        if observed is None and len(f) > 14 and f[14]:
            observed = field_ts(obx, 14, msg.delimiters, ctx.zone)
        if not device and len(f) > 18 and f[18]:
            c = comps(msg, first_rep(msg, obx, 18))
            device = "^".join(x for x in (sub(msg, part(c, i), 1) for i in (1, 2, 3)) if x)
            universal = bool(sub(msg, part(c, 3), 1))
    if observed is None:
        raise NormalizationError(
            "HL7_NO_ORDER_NUMBER", f"{where}: point-of-care result without order number "
            "(OBR-3, OBR-2, ORC) nor observation time (OBR-7, OBX-14): nothing tells this "
            "reading from another", where)
    namespace = device or msg.sender.replace("|", "^")
    ctx.warnings.append(f"{where}: point-of-care result without order number (OBR-3, OBR-2, "
                        "ORC): identified by its observation time and "
                        + ("its device (OBX-18)" if device else "its sender (MSH-3, MSH-4)"))
    return f"POC-{observed}", namespace, universal and bool(device)


def _point_of_care_document_namespace(msg: Message, namespace: str, universal: bool) -> str:
    """The namespace a point-of-care set's documents (OBX ED: a blood gas printout) are keyed
    by: its device (OBX-18) scoped by the sending facility (MSH-4) when that device is named
    without a universal id (OBX-18.3), 'GAZ-01^GEM-PREMIER@CHU-NORD', as ``document_namespace``
    scopes an order's; as sent when a universal id names it, or when the set is named by its
    sender (MSH-3^MSH-4: already the facility's).

    Why: a device id without universal id is only the sending site's own (v2.5 2.A.28): two
    intensive care units' analysers both named 'GAZ-01' reading at the same minute had one
    document key, the second unit's printout filed as a new version of the first's."""
    if universal or namespace == msg.sender.replace("|", "^"):
        return namespace
    return scoped_authority(namespace, msg.sender.partition("|")[2])


def order_priority(ctx: Ctx, g: Group) -> dict[str, str] | None:
    """How urgently the order was to be done: TQ1-9 (CWE, table 0485, v2.5+), else the
    priority component of the order's TQ (OBR-27.6, ORC-7.6, v2.3-2.4), else OBR-5 (v2.3);
    as {code, meaning} (tables/order_priorities.csv; a code not listed kept alone). It was
    not read: a stat potassium looked like any routine one in the dossier."""
    msg = ctx.msg
    code = ""
    for tq1 in g.timing:
        code = text(msg, part(comps(msg, first_rep(msg, tq1, 9)), 1))
        if code:
            break
    if not code:
        for seg, n in ((g.obr, 27), (g.orc if g.own_orc else None, 7)):
            if seg is not None and len(seg.fields) > n and seg.fields[n]:
                code = text(msg, part(comps(msg, first_rep(msg, seg, n)), 6))
                if code:
                    break
    if not code and len(g.obr.fields) > 5 and g.obr.fields[5]:
        code = text(msg, first_rep(msg, g.obr, 5))
    if not code:
        return None
    code = code.upper()
    meaning = _priority_meanings().get(code)
    return {"code": code, "meaning": meaning} if meaning else {"code": code}


@cache
def _priority_meanings() -> dict[str, str]:
    return column_map("order_priorities", "code", "meaning")
