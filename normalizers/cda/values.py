"""Observation values (PQ/CD/ST/ED/IVL/RTO/TS/INT/REAL/BL/MO) read into an entry's value,
unit and text."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from normalizers.cda.coded import mapped_code, original_text, other_codes, qualify, referenced_text
from normalizers.cda.common import Ctx, all_translations, is_placeholder, system_name
from normalizers.cda.quantities import period_text, pq_parts, range_text, ratio_text
from normalizers.cda.times import iso_value
from normalizers.cda.timing import read_timing
from normalizers.cda_text_values import text_quantity, text_titre
from normalizers.model import ENTRY_MAX, Entry
from normalizers.units import to_ucum
from parsers.cda.errors import CdaParseError
from parsers.cda.model import (
    BL,
    CD,
    ED,
    EIVL_TS,
    INT,
    IVL,
    MO,
    PIVL_TS,
    PQ,
    REAL,
    RTO,
    ST,
    TS,
    AnyValue,
    Section,
    Value,
)

TEXT_VALUE_SIZE = 2000  # the most of a value in words kept (as ST, ED and CD words are)


def untyped(value: Value) -> Value:
    """A value sent without xsi:type (invalid, but some senders forget it) read as what its
    attributes say: a CD when it has a code, a PQ when it has a unit; else as it is. The
    parser kept it as AnyValue with a CDA_UNKNOWN_XSI_TYPE warning."""
    if not isinstance(value, AnyValue) or value.xsi_type:
        return value
    a = value.attributes
    if a.get("code") or a.get("codeSystem"):
        return CD(type="CD", code=a.get("code", ""), code_system=a.get("codeSystem", ""),
                  code_system_name=a.get("codeSystemName", ""),
                  display=a.get("displayName", ""), null_flavor=value.null_flavor,
                  path=value.path)
    if a.get("unit"):
        return PQ(type="PQ", value=a.get("value", ""), unit=a["unit"],
                  null_flavor=value.null_flavor, path=value.path)
    simple = _SIMPLE_TYPES.get(a.get("type", "").strip().upper())
    if simple is not None and a.get("value"):
        # the type written without its xsi: prefix (type="TS", eHDSI samples): a date was
        # kept as the raw '20230214'
        return simple(type=simple.__name__, value=a["value"], null_flavor=value.null_flavor,
                      path=value.path)
    return value


_SIMPLE_TYPES: dict[str, type[TS | INT | REAL | BL]] = {"TS": TS, "INT": INT, "REAL": REAL,
                                                         "BL": BL}


# Entry.value_type holds 10 characters (HL7v2 types are 2-3): a longer CDA xsi:type
# (RTO_QTY_QTY, RTO_INT_INT: a titre) is filed as its family, the whole type in details.
VALUE_TYPE_SIZE = 10


def fill_value(value: Value, entry: Entry, ctx: Ctx, section: Section | None = None) -> None:
    if isinstance(value, IVL) and value.value and value.low is None and \
            value.high is None and value.center is None and not value.type.endswith("_TS"):
        # an IVL_PQ given as a point (value and unit on the element itself, as IVL<T>
        # extends T: '<value xsi:type="IVL_PQ" value="5" unit="mg/L"/>') is that quantity:
        # it was filed as the text '5 mg/L' without unit nor number
        value = PQ(type=value.type, value=value.value, unit=value.unit,
                   null_flavor=value.null_flavor, path=value.path, xsi_type=value.xsi_type)
    if isinstance(value, PIVL_TS | EIVL_TS) and value.value.strip():
        # a date typed with a TS specialization (PIVL_TS and EIVL_TS extend TS and so have
        # its value: the CI-SIS PPS example dates its meeting with EIVL_TS, senders copy
        # it): filed as the TS it says, the type as sent in details; it was no value at all
        entry.details["xsi_type"] = value.type
        value = TS(type="TS", value=value.value, null_flavor=value.null_flavor,
                   path=value.path, xsi_type=value.xsi_type)
    entry.value_type = value.type or None
    if value.type and len(value.type) > VALUE_TYPE_SIZE:
        # the whole document was refused as FIELD_TOO_LONG for a titre sent as RTO_INT_INT
        entry.value_type = value.type.split("_", 1)[0][:VALUE_TYPE_SIZE]
        entry.details["xsi_type"] = value.type
    if isinstance(value, PQ):
        amount, number, unit = pq_parts(value)
        if not value.value and len(unit) > ENTRY_MAX["unit_original"]:
            # a unit in words (a translation's originalText) too long for the unit column:
            # kept in details rather than refusing the whole document as FIELD_TOO_LONG
            entry.details["unit_text"], unit = unit, ""
        entry.value = amount or None
        if amount and number is None:
            number = _decimal_comma(amount, value, ctx)
        if amount and number is None:
            number = _compared_number(amount, value, entry, ctx)
        entry.value_num = float(number) if number is not None else None
        if amount and number is None:
            _not_a_number(value, ctx)
        if unit and unit != "1":
            entry.unit_original = unit
            entry.unit = to_ucum(unit).unit
        if amount and not value.value:
            entry.details["value_translated"] = True  # the PQ itself was a nullFlavor
        others = [{"value": t.value, "unit": t.code or t.original_text}
                  for t in value.translations if t.value] if value.value else []
        if others:  # the same quantity in other units (CDA PQR): kept as sent
            entry.details["value_translations"] = others
        if not amount and value.null_flavor:
            _quantity_in_words(value, entry, ctx, section)
    elif isinstance(value, MO):
        _money(value, entry, ctx)
    elif isinstance(value, (INT, REAL)):
        entry.value = value.value.strip() or None
        number = value.number
        if entry.value and number is None and isinstance(value, REAL):
            number = _decimal_comma(entry.value, value, ctx)
        if entry.value and number is None:
            number = _compared_number(entry.value, value, entry, ctx)
        entry.value_num = float(number) if number is not None else None
        if entry.value and number is None:
            _not_a_number(value, ctx)
    elif isinstance(value, CD):
        coded = mapped_code(value, ctx, section)
        if coded:
            entry.value = coded[2] or coded[0]
            entry.details["value_code"] = {"code": coded[0], "system": coded[1]}
            chosen = _chosen_code(value, coded)
            if chosen is not None and chosen.value_set:
                _value_set(chosen, entry.details["value_code"])
            others = other_codes(value, coded)
            if others:
                entry.details["value_code"]["translations"] = others
            if not value.code and value.null_flavor:
                # no code of the sender's own (nullFlavor OTH), a standard one in translation:
                # the sender's words ('Non reactive' for 'Negative') were dropped
                words = original_text(value, section)[:500]
                if words and words != entry.value:
                    entry.details["value_text"] = words
        else:
            entry.value = original_text(value, section)[:2000] or None
        if value.qualifiers:
            qualify(value, entry, "value_qualifiers", ctx, section)
    elif isinstance(value, IVL) and value.type.endswith("_TS"):
        entry.value = period_text(value)
    elif isinstance(value, IVL):
        entry.value = range_text(value)
        low, high = value.low, value.high
        bound = next((b for b in (low, high, value.center) if isinstance(b, PQ) and b.unit),
                     None)
        if bound is not None and bound.unit != "1":
            entry.unit_original = bound.unit
            entry.unit = to_ucum(bound.unit).unit
        one = (low if not isinstance(high, (PQ, INT, REAL)) or not high.value else
               high if not isinstance(low, (PQ, INT, REAL)) or not low.value else None)
        center = value.center
        if isinstance(one, (PQ, INT, REAL)) and one.value:  # '<5', '>=100': one bound only
            number = one.number
            entry.value_num = float(number) if number is not None else None
            entry.comparator = (">" if one is low else "<") + \
                ("=" if (value.low_inclusive if one is low else value.high_inclusive) else "")
        elif one is None and isinstance(center, (PQ, INT, REAL)) and center.value and \
                not isinstance(low, (PQ, INT, REAL)):
            # an interval given by its centre only ('about 7 days'): the centre is the
            # value (it was lost: no bound, no point value)
            entry.value = center.value
            number = center.number
            entry.value_num = float(number) if number is not None else None
    elif isinstance(value, ST):
        # its text, else the narrative a reference in it points at (ST has none by schema,
        # but senders write one as in an ED: the result was filed without a value)
        entry.value = value.text or (referenced_text(value.reference, section)[:2000]
                                     if value.reference else "") or None
        if value.code is not None and value.code.code:  # SC: a string with a code
            entry.details["value_code"] = {"code": value.code.code,
                                           "system": system_name(value.code.code_system)}
        _text_as_quantity(value, entry, ctx)
    elif isinstance(value, ED):
        # inline text, else the narrative its reference points at (it read as ''); a B64
        # text (text/plain, possibly compressed) decoded: it was dropped with the binaries
        if value.representation == "B64":
            entry.value = _ed_text(value, ctx) or None
            if value.media_type:
                entry.details["value_media_type"] = value.media_type
        else:
            entry.value = (value.text[:2000] or
                           referenced_text(value.reference, section)[:2000]) or None
        _text_as_quantity(value, entry, ctx)
    elif isinstance(value, TS):
        # a date the sender did not write as an HL7 TS is kept as written, with a warning
        iso = iso_value(value.value)
        entry.value = iso or value.value.strip() or None
        if not iso and entry.value:
            ctx.warnings.append(f"CDA_BAD_DATE: {value.path}: a TS value that is not a valid "
                                "HL7 date/time, kept as written")
    elif isinstance(value, BL):
        entry.value = value.value.strip() or None
    elif isinstance(value, RTO):
        entry.value = ratio_text(value)
    elif isinstance(value, PIVL_TS | EIVL_TS):
        # a frequency ('every 2 wk': how often seizures come) or an event ('HS') as the
        # value, said as a medication's timing is: it was filed with no value at all
        said: dict[str, Any] = {}
        read_timing(value, said)
        entry.value = said.get("frequency") or said.get("event") or None
        if said.get("event_offset"):
            entry.details["event_offset"] = said["event_offset"]
    elif isinstance(value, AnyValue):  # an xsi:type we do not model: what it says, as sent
        entry.value = (value.attributes.get("value") or value.text)[:2000] or None
    if entry.value_num is not None and not math.isfinite(entry.value_num):
        entry.value_num = None  # '1e400' is a Decimal but no float
    if value.null_flavor and entry.value is None:
        # why there is no value: NA (pending, C-CDA), MSK (withheld), NAV, UNK, ASKU...;
        # the result read as one sent without a word
        entry.details["value_null_flavor"] = value.null_flavor[:8]


def _text_as_quantity(value: ST | ED, entry: Entry, ctx: Ctx) -> None:
    """A result written as text that is a comparator and a number ('<0,5', '< 0.5 mg/L',
    '≥ 60') or a number and a known unit (normalizers/cda_text_values.py): its number,
    comparator and unit, as an HL7v2 SN '<^0.5' gives them. It was text alone: no number,
    out of every trend, a valueString in the export. The text and its type stay as sent;
    said as CDA_TEXT_QUANTITY, by where it is (never the value)."""
    if not entry.value or len(entry.value) > 40:
        return
    titre = text_titre(entry.value)
    if titre is not None:  # a serology written '1/160': the ratio (valueRatio), said
        entry.details["sn"] = {"comparator": "", "num1": "1", "separator": titre[0],
                               "num2": titre[1]}
        ctx.warnings.append(f"CDA_TEXT_TITRE: {value.path}: a {value.type or 'text'} value "
                            "that is a titre (1:n), read as a ratio (the text kept as sent)")
        return
    said = text_quantity(entry.value)
    if said is None or not math.isfinite(said.number):
        return
    entry.value_num = float(said.number)
    entry.comparator = said.comparator
    if said.unit_sent:
        entry.unit, entry.unit_original = said.unit, said.unit_sent[:ENTRY_MAX["unit_original"]]
        entry.details["unit_in_value"] = True
    ctx.warnings.append(f"CDA_TEXT_QUANTITY: {value.path}: a {value.type or 'text'} value "
                        "that is a quantity, read as its number"
                        f"{', comparator' if said.comparator else ''}"
                        f"{' and unit' if said.unit_sent else ''} (the text kept as sent)")


_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+")


def _decimal_comma(amount: str, value: Value, ctx: Ctx) -> Decimal | None:
    """The number of a PQ or REAL written with a decimal comma ('7,2': a French sender's
    locale; CDA's xs:double has only the point), said as CDA_DECIMAL_COMMA; None for
    anything else. It was filed as text without a numeric value, while the same potassium
    of 7,2 sent in an HL7v2 OBX (read there with a warning) had one: the two were two facts
    in the dossier, never deduplicated across channels, and the CDA one had no number to
    compare or chart. The value as written is kept."""
    if not _DECIMAL_COMMA.fullmatch(amount):
        return None
    ctx.warnings.append(f"CDA_DECIMAL_COMMA: {value.path}: a {value.type} value with a "
                        "decimal comma, read as a decimal point")
    return Decimal(amount.replace(",", "."))


def _compared_number(amount: str, value: Value, entry: Entry, ctx: Ctx) -> Decimal | None:
    """The number of a PQ, INT or REAL whose value attribute starts with a comparator
    ('>60' for an eGFR, '<0,5': invalid for xs:double, but what LIS write when the result
    is beyond a limit and the type says a number), its comparator set on ``entry`` and
    said as CDA_COMPARATOR_IN_NUMBER; None for anything else (a unit or words after the
    number are not read here: the element has its own unit). It was filed as text without
    number, as CDA_BAD_NUMBER, while an IVL_PQ with one bound has both."""
    said = text_quantity(amount)
    if said is None or said.comparator is None or said.unit_sent is not None or \
            not said.number.is_finite():
        return None
    entry.comparator = said.comparator
    ctx.warnings.append(f"CDA_COMPARATOR_IN_NUMBER: {value.path}: a {value.type} value "
                        "written with a comparator, read as the comparator and the number")
    return said.number


def _quantity_in_words(value: PQ, entry: Entry, ctx: Ctx, section: Section | None) -> None:
    """A PQ that is a nullFlavor with no value in a translation: its words, when it says
    them (originalText inline or in the narrative: 'traces', 'inférieur au seuil de
    détection'), are the value, said as CDA_PQ_IN_WORDS; a translation giving neither
    value nor words is said as CDA_PQ_NO_QUANTITY. Both were filed without a word."""
    flavor = value.null_flavor.strip()[:8]
    words = value.original_text or referenced_text(value.original_text_reference, section)
    if words.strip() and not is_placeholder(words):
        entry.value = words.strip()[:TEXT_VALUE_SIZE]
        entry.details["value_in_words"] = True
        ctx.warnings.append(f"CDA_PQ_IN_WORDS: {value.path}: a PQ of nullFlavor {flavor!r} "
                            "said in words (originalText): filed as its words, no quantity")
    elif value.translations:
        ctx.warnings.append(f"CDA_PQ_NO_QUANTITY: {value.path}: a PQ of nullFlavor {flavor!r} "
                            "whose translations give no value: filed without a value")


def _money(value: MO, entry: Entry, ctx: Ctx) -> None:
    """A monetary amount (MO: a fee, the cost of a device left to the patient): its number
    and its currency (ISO 4217, 'EUR') as the unit, in details.currency too. It was filed
    without a value."""
    entry.value = value.value.strip() or None
    number = value.number
    entry.value_num = float(number) if number is not None else None
    if entry.value and number is None:
        _not_a_number(value, ctx)
    currency = value.currency.strip().upper()[:ENTRY_MAX["unit_original"]]
    if currency and entry.value:
        entry.unit = entry.unit_original = currency
        entry.details["currency"] = currency


def _not_a_number(value: Value, ctx: Ctx) -> None:
    """A PQ, INT or REAL whose value is no number ('1,8', 'positif'): filed as the text it
    is, without a numeric value; said, by where it is (never the value)."""
    ctx.warnings.append(f"CDA_BAD_NUMBER: {value.path}: a {value.type} value that is not a "
                        "number, filed as text without a numeric value")


def _ed_text(value: ED, ctx: Ctx, limit: int = 2000) -> str:
    """The text a B64 ED value carries when its media type is text (text/plain, text/html
    read as sent), inflated per its compression (bounded: 1 MB); '' for binaries (a PDF, an
    image) and for what does not decode (a warning with its code, never the content)."""
    if not value.media_type.strip().lower().startswith("text/"):
        return ""
    try:
        data = value.decompressed(max_bytes=1024 * 1024)
    except CdaParseError as exc:
        ctx.warnings.append(f"{exc.code}: {value.path}: {exc.message}")
        return ""
    if data is None:
        ctx.warnings.append(f"CDA_BAD_BASE64: {value.path}: a B64 value that does not decode")
        return ""
    return data.decode("utf-8", "replace")[:limit]


def _chosen_code(value: CD, coded: tuple[str, str, str, bool]) -> CD | None:
    """The CD, the sent code or one of its translations, a value is filed under (``coded``:
    its code and system), None when none is (a per-source mapping's code)."""
    if value.code == coded[0]:
        return value
    for c in all_translations(value):
        if c.code == coded[0] and coded[1] in (system_name(c.code_system),
                                               system_name(c.code_system, c.code_system_name)):
            return c
    return None


def _value_set(value: CD, coded: dict[str, Any]) -> None:
    """The value set a coded value was taken from (sdtc:valueSet and valueSetVersion: CI-SIS
    names the JDV of every coded value, C-CDA its value set OID), beside the code it
    qualifies: it said which list the sender chose the answer from (a JDV's 'Positif'
    against another's), and was not read. That of the code the value is filed under: the
    sent code's, or its translation's when filed under it (the sent code's set then stays
    with that code among the translations, ``other_codes``)."""
    coded["value_set"] = value.value_set[:64]
    if value.value_set_version:
        coded["value_set_version"] = value.value_set_version[:40]
