"""HL7 v3 data types (R1, as CDA R2 uses them): one lxml element -> one model object.

Why direct child iteration and tag comparisons instead of XPath: a lab report has thousands of
small elements and XPath costs a compilation or a context per call; comparing Clark tags
('{urn:hl7-org:v3}low') is a string comparison. Nothing here raises on odd content: what
cannot be typed is kept as sent (AnyValue) with a warning.
"""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree

from parsers.cda.errors import (
    CDA_UNKNOWN_XSI_TYPE,
    CDA_XSI_TYPE_CASE,
    CDA_XSI_TYPE_NAMESPACE,
    ParseWarning,
)
from parsers.cda.model import (
    BL,
    CD,
    ED,
    EIVL_TS,
    II,
    INT,
    IVL,
    MO,
    PIVL_TS,
    PN,
    PQ,
    PQR,
    REAL,
    RTO,
    ST,
    SXPR_TS,
    TEL,
    TS,
    Addr,
    AnyValue,
    Extension,
    NamePart,
    Value,
    constructor,
)

# The model's classes built without type.__call__ (see model.constructor): the hot paths.
_new_BL = constructor(BL)
_new_CD = constructor(CD)
_new_ED = constructor(ED)
_new_EIVL_TS = constructor(EIVL_TS)
_new_II = constructor(II)
_new_INT = constructor(INT)
_new_IVL = constructor(IVL)
_new_MO = constructor(MO)
_new_PIVL_TS = constructor(PIVL_TS)
_new_PN = constructor(PN)
_new_PQ = constructor(PQ)
_new_PQR = constructor(PQR)
_new_REAL = constructor(REAL)
_new_RTO = constructor(RTO)
_new_ST = constructor(ST)
_new_SXPR_TS = constructor(SXPR_TS)
_new_TEL = constructor(TEL)
_new_TS = constructor(TS)
_new_Addr = constructor(Addr)
_new_AnyValue = constructor(AnyValue)
_new_Extension = constructor(Extension)
_new_NamePart = constructor(NamePart)

V3 = "urn:hl7-org:v3"
V = f"{{{V3}}}"
_VL = len(V)
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_PREFIXES = {
    "urn:hl7-org:sdtc": "sdtc",
    "urn:ihe:pharm:medication": "pharm",
    "urn:ihe:pharm": "pharm",
    "urn:oid:1.3.6.1.4.1.19376.1.3.2": "lab",
    "http://www.w3.org/2001/XMLSchema-instance": "xsi",
}
_WS = str.maketrans("\t\r\n", "   ")

T_ORIGINAL_TEXT = V + "originalText"
T_TRANSLATION = V + "translation"
T_QUALIFIER = V + "qualifier"
T_NAME = V + "name"
T_VALUE = V + "value"
T_REFERENCE = V + "reference"
T_LOW = V + "low"
T_HIGH = V + "high"
T_CENTER = V + "center"
T_WIDTH = V + "width"
T_PHASE = V + "phase"
T_PERIOD = V + "period"
T_EVENT = V + "event"
T_OFFSET = V + "offset"
T_COMP = V + "comp"
T_NUMERATOR = V + "numerator"
T_DENOMINATOR = V + "denominator"
T_THUMBNAIL = V + "thumbnail"


def local_name(tag: str) -> str:
    """'id' for an HL7 v3 element, 'sdtc:id' (a prefix) for any other namespace."""
    if tag.startswith(V):
        return tag[_VL:]
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return f"{_PREFIXES.get(ns, 'ns')}:{name}"
    return f"ns0:{tag}"  # no namespace at all: never mistaken for a CDA element


_NAMES: dict[str, str] = {}  # Clark tag -> name, for the CDA vocabulary (bounded below)


def kids(el: etree._Element, path: str) -> list[tuple[str, etree._Element, str]]:
    """Element children as (name, element, path); ``[n]`` only where the name repeats.

    The hot loop of the parser (every element goes through it once): names come from a small
    cache, paths are built once, in one pass: a name seen again gets ``[n]`` and its first
    occurrence (remembered by position) is given its ``[1]`` then."""
    children = el[:]  # slicing collects the children in C: faster than iterating
    names = _NAMES
    if len(children) == 1:  # half the calls (entry, component, observationRange...)
        c = children[0]
        name = names.get(c.tag)
        if name is not None:
            return [(name, c, f"{path}/{name}")]
    out: list[tuple[str, etree._Element, str]] = []
    append = out.append
    prefix = path + "/"
    first: dict[str, int] = {}  # name -> position of its first occurrence in out
    repeats: dict[str, int] | None = None  # name -> last index given, for repeated names
    for c in children:
        tag = c.tag
        name = names.get(tag)
        if name is None:
            if tag.__class__ is not str:  # entity references (comments/PIs are removed)
                continue
            name = local_name(tag)
            if len(names) < 4096:  # hostile documents cannot grow it without bound
                names[tag] = name
        i = first.get(name)
        if i is None:
            first[name] = len(out)
            append((name, c, prefix + name))
            continue
        if repeats is None:
            repeats = {}
        n = repeats.get(name)
        if n is None:
            out[i] = (name, out[i][1], f"{prefix}{name}[1]")
            n = 2
        else:
            n += 1
        repeats[name] = n
        append((name, c, f"{prefix}{name}[{n}]"))
    return out


def collapse(text: str) -> str:
    """Whitespace runs to one space, trimmed: how titles and short texts read."""
    return " ".join(text.split())


def all_text(el: etree._Element) -> str:
    return "".join(el.itertext())


def text_and_reference(el: etree._Element) -> tuple[str, str]:
    """(collapsed text, reference/@value) of an element like originalText or an act's text."""
    ref = ""
    parts = [el.text or ""]
    for c in el:
        if c.tag == T_REFERENCE:
            ref = ref or c.get("value", "")
        elif type(c.tag) is str:
            parts.extend(c.itertext())
        parts.append(c.tail or "")
    return collapse("".join(parts)), ref


def extension(el: etree._Element, path: str) -> Extension:
    tag = el.tag
    ns, _, name = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    ext = _new_Extension(namespace=ns, name=name, attributes=dict(el.attrib),
                         text=(el.text or "").strip(), path=path)
    if len(el):
        ext.children = [extension(c, p) for _, c, p in kids(el, path)]
    return ext


# -- simple types -------------------------------------------------------------------------------
def ii(el: etree._Element, path: str = "") -> II:
    g = el.get
    return _new_II(root=g("root", ""), extension=g("extension", ""),
                   assigning_authority_name=g("assigningAuthorityName", ""),
                   null_flavor=g("nullFlavor", ""), path=path)


def cd(el: etree._Element, path: str = "", type_: str = "CD") -> CD:
    g = el.get
    # code and codeSystem are tokens (cs, uid): blanks around them are no part of the code
    # (' 2345-7 ' was filed as a code of its own, never equal to the HL7v2 '2345-7')
    c = _new_CD(type=type_, code=g("code", "").strip(), code_system=_uid(g("codeSystem", "")),
                code_system_name=g("codeSystemName", ""),
                code_system_version=g("codeSystemVersion", ""), display=g("displayName", ""),
                null_flavor=g("nullFlavor", ""), path=path)
    if len(el):
        for name, k, p in kids(el, path):
            if name == "originalText":
                c.original_text, c.original_text_reference = text_and_reference(k)
            elif name == "translation":
                c.translations.append(cd(k, p, "CD"))
            elif name == "qualifier":
                qn = qv = None
                for kn, q, qp in kids(k, p):
                    if kn == "name":
                        qn = cd(q, qp, "CV")
                    elif kn == "value":
                        qv = cd(q, qp, "CD")
                c.qualifiers.append((qn, qv))
    return c


def _uid(value: str) -> str:
    """A codeSystem as the uid it is: blanks around it dropped, and an OID written as a URN
    ('urn:oid:2.16.840.1.113883.6.96': FHIR's form, from senders converting from FHIR) as
    the bare OID, which every comparison with a known OID (UCUM, HL7 interpretation...)
    expects."""
    value = value.strip()
    return value[8:] if value[:8].lower() == "urn:oid:" else value


def ts(el: etree._Element, path: str = "") -> TS:
    return _new_TS(value=el.get("value", ""), null_flavor=el.get("nullFlavor", ""), path=path)


def tel(el: etree._Element) -> TEL:
    return _new_TEL(value=el.get("value", ""), use=el.get("use", ""),
                    null_flavor=el.get("nullFlavor", ""))


def pn(el: etree._Element) -> PN:
    name = _new_PN(use=el.get("use", ""), null_flavor=el.get("nullFlavor", ""))
    free = [el.text or ""]
    for c in el:
        tag = c.tag
        if type(tag) is str and tag.startswith(V):
            part = _new_NamePart(value=collapse(all_text(c)), qualifier=c.get("qualifier", ""))
            kind = tag[_VL:]
            if kind == "family":
                name.family.append(part)
            elif kind == "given":
                name.given.append(part)
            elif kind == "prefix":
                name.prefix.append(part)
            elif kind == "suffix":
                name.suffix.append(part)
            elif kind == "validTime":
                for bound in c:
                    if bound.tag == V + "high":
                        name.valid_until = (bound.get("value") or "").strip()
        free.append(c.tail or "")
    name.text = collapse("".join(free))
    return name


def addr(el: etree._Element) -> Addr:
    a = _new_Addr(use=el.get("use", ""), null_flavor=el.get("nullFlavor", ""))
    free = [el.text or ""]
    for c in el:
        tag = c.tag
        if type(tag) is str and tag.startswith(V) and tag != V + "useablePeriod":
            a.parts.append((tag[_VL:], collapse(all_text(c))))
        free.append(c.tail or "")
    a.text = collapse("".join(free))
    return a


# -- typed values (ANY and its specializations) -------------------------------------------------
def value(el: etree._Element, path: str, default: str,
          warnings: list[ParseWarning]) -> Value:
    """The value of ``el`` typed by its xsi:type, else by ``default`` (the schema's type for
    that element: 'IVL_PQ' for doseQuantity...). '' as default means ANY: an untyped value."""
    raw = el.get(XSI_TYPE)
    if raw:
        type_ = raw.strip()
        if ":" in type_:
            prefix, _, type_ = type_.partition(":")
            if el.nsmap.get(prefix) != V3:
                warnings.append(ParseWarning(
                    CDA_XSI_TYPE_NAMESPACE, "xsi:type prefix not bound to urn:hl7-org:v3",
                    path))
        type_ = _type_name(type_, path, warnings) or default
    else:
        raw = ""
        type_ = default
    reader = _READERS.get(type_)
    if reader is None:
        if type_.startswith("IVL_"):
            reader = _ivl
        elif type_.startswith("RTO"):
            reader = _rto
        else:
            reader = _any
            what = f"xsi:type {type_!r} not modelled" if type_ else "value without xsi:type"
            warnings.append(ParseWarning(CDA_UNKNOWN_XSI_TYPE, what, path))
            if not type_ and len(el) and el.get("value") is None and \
                    el.get("unit") is None and any(c.tag in _CD_CHILDREN for c in el):
                # no xsi:type, no value nor unit (a quantity's, whose translations are
                # other units), but the children of a coded value (an originalText pointing
                # into the narrative, translations): read as the CD it is (its words were
                # lost: AnyValue keeps no children); the warning stays
                reader, type_ = _cd, "CD"
    v = reader(el, path, type_, warnings)
    v.type = type_
    v.xsi_type = raw
    v.path = path
    if not v.null_flavor:
        null_flavor = el.get("nullFlavor")
        if null_flavor:
            v.null_flavor = null_flavor
    return v


def _type_name(type_: str, path: str, warnings: list[ParseWarning]) -> str:
    """The data type name as the schema spells it. Some senders write it in lower case
    ('pq', 'ivl_pq'): a value read as an unknown type lost its number, unit or code. Type
    names are upper case in the HL7 v3 data types, so a name known once upper-cased is that
    type (said as CDA_XSI_TYPE_CASE); a name unknown either way is kept as sent."""
    upper = type_.upper()
    if upper == type_:
        return type_
    if upper in _READERS or upper.startswith(("IVL_", "RTO")):
        warnings.append(ParseWarning(
            CDA_XSI_TYPE_CASE, f"xsi:type {type_!r} read as {upper!r}", path))
        return upper
    return type_


# sdtc:valueSet / sdtc:valueSetVersion (HL7 CDA R2 extensions, C-CDA; CI-SIS writes them on
# its coded values: the OID of the jeu de valeurs, JDV, the code was taken from)
_VALUE_SET = "{urn:hl7-org:sdtc}valueSet"
_VALUE_SET_VERSION = "{urn:hl7-org:sdtc}valueSetVersion"


def _cd(el: etree._Element, path: str, type_: str, warnings: list[ParseWarning]) -> Value:
    """A coded value (an observation's value...) with the value set it was taken from. Read
    here, not in ``cd`` for every code of the document: a namespaced attribute costs lxml a
    '{ns}name' split per lookup, 9-20 % of ``cd`` when asked of every code (about 0.2 ms
    of a CR-BIO's 20 ms parse), for what only an entry's value keeps."""
    c = cd(el, path, type_)
    _read_value_set(el, c)
    return c


def _read_value_set(el: etree._Element, c: CD) -> None:
    """``c``'s sdtc:valueSet and valueSetVersion, and its translations' (a translation is a
    CD and may name the value set it was taken from: a lab's 'POS' translated into the
    SNOMED CT code of the CI-SIS JDV, the JDV written on the translation). Only the sent
    code's was read: a result filed under its translation lost the set it came from."""
    value_set = el.get(_VALUE_SET)
    if value_set:
        c.value_set = value_set.strip()
        c.value_set_version = el.get(_VALUE_SET_VERSION, "").strip()
    if c.translations:
        for t_el, t in zip(el.iterchildren(_TRANSLATION), c.translations, strict=False):
            _read_value_set(t_el, t)


_TRANSLATION = f"{{{V3}}}translation"


def _pq(el: etree._Element, path: str, type_: str, warnings: list[ParseWarning]) -> Value:
    q = _new_PQ(value=el.get("value", ""), unit=el.get("unit", ""))
    if len(el):
        for name, t, p in kids(el, path):
            if name == "translation":
                q.translations.append(_new_PQR(
                    value=t.get("value", ""), code=t.get("code", ""),
                    code_system=t.get("codeSystem", ""),
                    code_system_name=t.get("codeSystemName", ""),
                    display=t.get("displayName", ""), null_flavor=t.get("nullFlavor", ""),
                    original_text=_original_text(t), path=p))
            elif name == "originalText":
                q.original_text, q.original_text_reference = text_and_reference(t)
    return q


def _original_text(el: etree._Element) -> str:
    """The words of an element's originalText child ('' when it has none)."""
    ot = el.find(T_ORIGINAL_TEXT) if len(el) else None
    return text_and_reference(ot)[0] if ot is not None else ""


def _pqr(el: etree._Element, path: str, type_: str, warnings: list[ParseWarning]) -> Value:
    g = el.get
    return _new_PQR(value=g("value", ""), code=g("code", ""), code_system=g("codeSystem", ""),
                    code_system_name=g("codeSystemName", ""), display=g("displayName", ""))


_Reader = Callable[[etree._Element, str, str, list[ParseWarning]], Value]
_CD_CHILDREN = frozenset({T_ORIGINAL_TEXT, T_TRANSLATION, T_QUALIFIER})


def _simple(cls: type[INT | REAL | BL | TS]) -> _Reader:
    new = constructor(cls)

    def read(el: etree._Element, path: str, type_: str,
             warnings: list[ParseWarning]) -> Value:
        return new(value=el.get("value", ""))
    return read


def _mo(el: etree._Element, path: str, type_: str, warnings: list[ParseWarning]) -> Value:
    return _new_MO(value=el.get("value", ""), currency=el.get("currency", ""))


def _st(el: etree._Element, path: str, type_: str, warnings: list[ParseWarning]) -> Value:
    code = cd(el, path, "CD") if el.get("code") is not None else None
    ref = el.find(T_REFERENCE) if len(el) else None
    return _new_ST(text=all_text(el).strip(), code=code,
                   reference=ref.get("value", "") if ref is not None else "")


def _ed(el: etree._Element, path: str, type_: str, warnings: list[ParseWarning]) -> ED:
    g = el.get
    e = _new_ED(media_type=g("mediaType", ""), representation=g("representation", ""),
                compression=g("compression", ""), language=g("language", ""),
                charset=g("charset", ""))
    parts = [el.text or ""]
    for c in el:
        if c.tag == T_REFERENCE:
            e.reference = e.reference or c.get("value", "")
        elif type(c.tag) is str and c.tag != T_THUMBNAIL:
            parts.extend(c.itertext())
        parts.append(c.tail or "")
    text = "".join(parts)
    e.text = text.strip() if e.representation == "B64" or not text.strip() else text
    return e


def read_ed(el: etree._Element, path: str) -> ED:
    """An element read as ED whatever its xsi:type (nonXMLBody/text is an ED by schema)."""
    e = _ed(el, path, "ED", [])
    e.path, e.null_flavor = path, el.get("nullFlavor", "")
    return e


def _ii(el: etree._Element, path: str, type_: str, warnings: list[ParseWarning]) -> Value:
    return ii(el, path)


_POINT = {"IVL_TS": "TS", "IVL_PQ": "PQ", "IVL_INT": "INT", "IVL_REAL": "REAL", "IVL_MO": "MO"}


def _ivl(el: etree._Element, path: str, type_: str, warnings: list[ParseWarning]) -> Value:
    point = _POINT.get(type_) or ("TS" if type_.endswith("_TS") else "PQ")
    i = _new_IVL(value=el.get("value", ""), unit=el.get("unit", ""),
                 operator=el.get("operator", ""))
    if len(el):
        for name, c, p in kids(el, path):
            if name == "low":
                i.low = value(c, p, point, warnings)
                i.low_inclusive = c.get("inclusive", "true").strip() != "false"
            elif name == "high":
                i.high = value(c, p, point, warnings)
                i.high_inclusive = c.get("inclusive", "true").strip() != "false"
            elif name == "center":
                i.center = value(c, p, point, warnings)
            elif name == "width":
                i.width = value(c, p, "PQ", warnings)
    return i


def _pivl(el: etree._Element, path: str, type_: str, warnings: list[ParseWarning]) -> Value:
    v = _new_PIVL_TS(value=el.get("value", ""), operator=el.get("operator", ""),
                     alignment=el.get("alignment", ""),
                     institution_specified=el.get("institutionSpecified", ""))
    for name, c, p in kids(el, path):
        if name == "phase":
            phase = value(c, p, "IVL_TS", warnings)
            v.phase = phase if isinstance(phase, IVL) else None
        elif name == "period":
            period = value(c, p, "PQ", warnings)
            # a PQ ('every 8 h'), or an IVL_PQ for a range ('every 4 to 6 h', C-CDA)
            v.period = period if isinstance(period, PQ | IVL) else None
    return v


def _eivl(el: etree._Element, path: str, type_: str, warnings: list[ParseWarning]) -> Value:
    v = _new_EIVL_TS(value=el.get("value", ""), operator=el.get("operator", ""))
    for name, c, p in kids(el, path):
        if name == "event":
            v.event = cd(c, p, "CE")
        elif name == "offset":
            offset = value(c, p, "IVL_PQ", warnings)
            v.offset = offset if isinstance(offset, IVL) else None
    return v


def _sxpr(el: etree._Element, path: str, type_: str, warnings: list[ParseWarning]) -> Value:
    v = _new_SXPR_TS(operator=el.get("operator", ""))
    for name, c, p in kids(el, path):
        if name == "comp":
            v.comps.append(value(c, p, "IVL_TS", warnings))
    return v


def _sxcm(el: etree._Element, path: str, type_: str, warnings: list[ParseWarning]) -> Value:
    # SXCM_TS is a TS with an operator; read as an interval so low/high survive if present
    return _ivl(el, path, "IVL_TS", warnings)


def _rto(el: etree._Element, path: str, type_: str, warnings: list[ParseWarning]) -> Value:
    kinds = type_.split("_")[1:3] if type_.count("_") >= 2 else ["PQ", "PQ"]
    num_type, den_type = (k if k != "QTY" else "PQ" for k in kinds)
    r = _new_RTO()
    for name, c, p in kids(el, path):
        if name == "numerator":
            r.numerator = value(c, p, num_type, warnings)
        elif name == "denominator":
            r.denominator = value(c, p, den_type, warnings)
    return r


def _any(el: etree._Element, path: str, type_: str, warnings: list[ParseWarning]) -> Value:
    attrs = {k: v for k, v in el.attrib.items() if k != XSI_TYPE}
    return _new_AnyValue(attributes=attrs, text=all_text(el).strip())


_READERS: dict[str, _Reader] = {
    "CD": _cd, "CE": _cd, "CV": _cd, "CO": _cd, "CS": _cd,
    "PQ": _pq, "PQR": _pqr,
    "INT": _simple(INT), "REAL": _simple(REAL), "BL": _simple(BL), "TS": _simple(TS),
    "MO": _mo, "ST": _st, "SC": _st, "ED": _ed, "II": _ii,
    "IVL_TS": _ivl, "IVL_PQ": _ivl, "IVL_INT": _ivl, "IVL_REAL": _ivl,
    "PIVL_TS": _pivl, "EIVL_TS": _eivl, "SXPR_TS": _sxpr, "SXCM_TS": _sxcm,
    "RTO": _rto, "RTO_PQ_PQ": _rto,
}
