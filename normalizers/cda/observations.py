"""Observation entries: results, vital signs, problems and other observations, with
their values, units, interpretation, reference range, onset and resolution."""

from __future__ import annotations

from dataclasses import replace

from normalizers.cda.allergies import allergen
from normalizers.cda.base import base_entry, set_period_end, statement_words, uncoded_name
from normalizers.cda.coded import (
    coded_or_words,
    mapped_code,
    original_text,
    qualify,
    referenced_text,
)
from normalizers.cda.common import (
    ALLERGY,
    FAMILY_HISTORY,
    OBSERVATION,
    PROBLEM,
    VITAL_SIGN,
    Ctx,
    is_placeholder,
    system_name,
)
from normalizers.cda.qualifiers import nested_qualifiers
from normalizers.cda.quantities import range_text
from normalizers.cda.results import device_kits
from normalizers.cda.tables import assertion_questions, interpretation_codes, template_units
from normalizers.cda.times import iso_value
from normalizers.cda.values import fill_value, untyped
from normalizers.model import LAB_RESULT, Entry
from normalizers.units import to_ucum
from parsers.cda.model import CD, ED, IVL, PQ, ST, TS, Observation, ReferenceRange, Section, Value


def observation_entry(act: Observation, kind: str, section: Section, ctx: Ctx,
                      parent_key: str | None) -> Entry | None:
    name = ""
    if act.code is None or (not act.code.code and not act.code.translations):
        # no code: a result named only in words (code nullFlavor + originalText) is still
        # one when it has a value; a problem is identified by its value (the diagnosis)
        name = uncoded_name(act, section) if act.values else ""
        if not name and not (kind in (PROBLEM, ALLERGY, FAMILY_HISTORY) and act.values):
            return None
    entry = base_entry(act, kind, section, ctx, parent_key)
    if name:
        entry.display, entry.mapped = name, False
    if act.code is not None and act.code.qualifiers:
        qualify(act.code, entry, "code_qualifiers", ctx, section)
    if act.values:
        value = untyped(act.values[0])
        if kind in (PROBLEM, FAMILY_HISTORY) and isinstance(value, CD) and value.code and \
                act.code is not None and value.code == act.code.code and \
                value.code_system == act.code.code_system:
            # the value repeats the question (code 'problem', value 'problem': Vitera) and
            # is no diagnosis; the translation or the words are (it was filed as 'Problem')
            value = replace(value, code="", display="")
        # an empty string as the value and no words in the statement's text either says
        # nothing. With words (the ANS's CR-GM and AVC examples: '<value xsi:type="ST"/>'
        # and '<text><reference value="#methodeExtractionADN"/></text>') it is filed as
        # before, without a value: those words are the answer in CR-GM, the exam's name
        # in AVC-EUNV, and cannot be told apart
        said = statement_words(act, section, named=True) if empty_string(act.values) \
            else None
        if placeholder_value(value, section) or said == "":
            if kind != ALLERGY:  # the value was all it said (an allergy still has its agent)
                return None
        else:
            fill_value(value, entry, ctx, section)
            if entry.unit_original and act.template_ids:
                _template_unit(act, entry, ctx)
        rest = [untyped(v) for v in act.values[1:]]
        if rest and "value_code" not in entry.details:
            # a score and its answer code (C-CDA assessment items: INT 3 and CO LA6555-2,
            # 'eye opening to verbal command'): the second value was dropped
            other = next((v for v in rest if isinstance(v, CD)), None)
            coded = mapped_code(other, ctx, section) if other is not None else None
            if coded:
                entry.details["value_code"] = {"code": coded[0], "system": coded[1],
                                               "display": coded[2]}
                rest = [v for v in rest if v is not other]
        if rest:
            _other_values(rest, act, entry, ctx, section)
        question = _assertion_question(act) if _asserts(act, kind) else None
        if question is not None:
            # C-CDA R1.1 smoking status (ASSERTION, value 'former smoker'): the question
            # R2.1 codes it with (LOINC 72166-2); it was filed under the value's code, the
            # same fact from an R2.1 document under another
            entry.details["observation_code"] = entry.code
            entry.details.pop("local_code", None)
            entry.details.pop("other_codes", None)
            entry.code, entry.system, entry.display = question
            entry.mapped = True
        elif isinstance(value, CD) and (kind in (PROBLEM, ALLERGY, FAMILY_HISTORY) or
                                        _asserts(act, kind)):
            # the diagnosis / allergy type is the value; the observation code only says
            # 'diagnosis' or 'assertion' (C-CDA Pregnancy Observation: ASSERTION, value
            # 'pregnant', was an observation 'ASSERTION')
            coded = mapped_code(value, ctx, section)
            if (coded and coded[0] or entry.value) and entry.code:
                entry.details["observation_code"] = entry.code
            entry.details.pop("local_code", None)  # the question's, not the value's
            entry.details.pop("other_codes", None)
            if coded and coded[0]:
                entry.code, entry.system, entry.display, entry.mapped = coded
            elif entry.value:  # not coded (nullFlavor OTH...): the sender's words are all
                # there is, and the observation code ('problem', 'symptom') is no diagnosis
                entry.code = entry.system = None
                entry.display, entry.mapped = entry.value, False
            elif kind == PROBLEM and value.null_flavor and uncoded_name(act, section):
                # value nullFlavor, the diagnosis in the statement's text only ('<text>
                # <reference value="#pb1"/>', C-CDA R2.1 3.79): the words are the diagnosis
                # (without them the problem names nothing and is not filed)
                entry.details["observation_code"] = entry.code
                entry.code = entry.system = None
                entry.value = entry.display = uncoded_name(act, section)
                entry.mapped = False
    if kind in (PROBLEM, ALLERGY, FAMILY_HISTORY) and isinstance(act.effective_time, IVL):
        _onset_and_resolution(act.effective_time, entry, ctx)
    elif kind == OBSERVATION and isinstance(act.effective_time, IVL) and \
            isinstance(act.effective_time.low, TS) and act.effective_time.low.value and \
            isinstance(act.effective_time.high, TS) and act.effective_time.high.value:
        # a period observed (C-CDA Tobacco Use: smoked daily from 1995 to 2015): its start
        # is the entry's time, its end was dropped
        end = act.effective_time.high
        entry.details["period_high"] = iso_value(end.value, ctx.warnings, end.path) or None
    elif kind in (LAB_RESULT, VITAL_SIGN):
        # a result of a collection over a period (IHE LAB / C-CDA Result Observation
        # effectiveTime IVL_TS: a 24-hour urine protein from 08:00 to 08:00 the next day, a
        # mean blood pressure over a 24-hour ambulatory recording): its end was dropped and
        # the day's collection read as an instant
        set_period_end(act, entry, ctx)
    if kind in (PROBLEM, ALLERGY) or (kind == OBSERVATION and act.entry_relationships):
        nested_qualifiers(act, entry, ctx, section)
    if kind == ALLERGY:
        allergen(act, entry, ctx, section)
    kits = device_kits(act, ctx, section)
    if kits:  # the instrument or test kit the result was obtained with (IHE LAB, CI-SIS
        # DEP-CCU: the HPV detection kit)
        entry.details["devices"] = kits
    methods = [m for m in (coded_or_words(c, ctx, section) for c in act.method_codes) if m]
    if methods:  # the technique or reagent (CI-SIS: ANSM common reagent table): results
        # by two methods are not comparable; it was dropped
        entry.details["method"] = methods
    if act.interpretation_codes:
        flags = [f for f in (_interpretation(c, section) for c in act.interpretation_codes) if f]
        if len(set(flags)) < len(flags):
            ctx.warnings.append(f"CDA_REPEATED_INTERPRETATION: {act.path}: the same "
                                "interpretation sent more than once: kept once")
        entry.interpretation = ",".join(_once(flags)) or None
        local = _once([c.code for c in act.interpretation_codes
                       if c.code and c.code_system != INTERPRETATION_SYSTEM and
                       any(t.code_system == INTERPRETATION_SYSTEM or
                           (t.code_system, t.code) in interpretation_codes()
                           for t in (c, *c.translations))])
        if local:
            entry.details["interpretation_local"] = local  # the lab's flag, as sent
        systems = _interpretation_systems(act.interpretation_codes)
        if systems:
            entry.details["interpretation_systems"] = systems
    if act.reference_ranges:
        _reference_range(act.reference_ranges, entry, ctx, section)
    if entry.code is None and entry.value is None:
        return None
    return entry


OTHER_VALUES_KEPT = 10  # further values of one observation kept (CDA allows any number)
OTHER_VALUE_SIZE = 500  # characters of each kept


def _other_values(values: list[Value], act: Observation, entry: Entry, ctx: Ctx,
                  section: Section) -> None:
    """The values of an observation after its first (CDA R2 Observation.value is 0..*: a
    lab writing a result in two units as two PQ, a blood pressure 142 and 88 mm[Hg] under
    one code, a culture's two coded germs) in details.other_values, as HL7v2's OBX-5
    repetitions are, each read as the value is ('88 mm[Hg]', '<0.5 mg/L'), with a warning:
    the first is the value. Every one but a score's answer code was dropped without a
    word. The value itself is unchanged (which one is 'the' value is the sender's order)."""
    said = []
    for value in values:
        scratch = Entry(type=entry.type, key="", source_ref=value.path)
        fill_value(value, scratch, ctx, section)
        text = " ".join(filter(None, (scratch.value, scratch.unit_original)))
        if text:
            said.append(text[:OTHER_VALUE_SIZE])
    if said:
        entry.details["other_values"] = said[:OTHER_VALUES_KEPT]
        ctx.warnings.append(f"CDA_OTHER_VALUES: {act.path}: {len(values) + 1} values: the "
                            "first is the value, the others are kept apart "
                            f"({min(len(said), OTHER_VALUES_KEPT)} in details.other_values)")


def _template_unit(act: Observation, entry: Entry, ctx: Ctx) -> None:
    """A measurement's unit read in the one its template defines when the sender wrote it
    otherwise (tables/cda_template_units.csv): a sphere power of '2.50 d' (IHE Eye Care,
    CI-SIS OPH-BRE) was filed as 2.5 days (UCUM d), beside the same power sent as
    '[diop]' for the other eye. Said once per document (CDA_UNIT_READ_AS)."""
    units = template_units()
    sent = (entry.unit_original or "").strip().lower()
    unit = next((units[(t.root, sent)] for t in act.template_ids if (t.root, sent) in units),
                None)
    if unit is None or unit == entry.unit:
        return
    seen = ctx.units_read.setdefault((entry.unit_original or "", unit), [0, act.path])
    seen[0] += 1
    entry.unit = unit


def _assertion_question(act: Observation) -> tuple[str, str, str] | None:
    """(code, system, display) of the question an ASSERTION observation answers, by its
    template (tables/cda_assertion_questions.csv); None for any other."""
    questions = assertion_questions()
    return next((questions[t.root] for t in act.template_ids if t.root in questions), None)


def _asserts(act: Observation, kind: str) -> bool:
    """An observation whose code is HL7 ActCode ASSERTION: its value is what it says."""
    return kind == OBSERVATION and act.code is not None and act.code.code == "ASSERTION" \
        and system_name(act.code.code_system) == "HL7-ACTCODE"


def placeholder_value(value: Value, section: Section) -> bool:
    """A value in words that is a template's placeholder ('(texte libre)' as a result, a
    problem, a comment observation: CI-SIS examples), not the author's."""
    if isinstance(value, ST):
        return is_placeholder(value.text)
    if isinstance(value, ED) and value.representation != "B64":
        return is_placeholder(value.text or referenced_text(value.reference, section))
    if isinstance(value, CD) and not value.code and \
            not any(t.code for t in value.translations):
        return is_placeholder(value.original_text or
                              referenced_text(value.original_text_reference, section))
    return False


def empty_string(values: list[Value]) -> bool:
    """A statement's one value an ST (or SC) with no text (empty, or blanks only: the
    parser collapses them), no reference to the narrative, no code nor nullFlavor: a
    result sent '<value xsi:type="ST"> </value>' says nothing by itself. It was filed as a
    result without a value: when its statement's text says nothing either, it is not
    filed, said (CDA_NOT_FILED). A value pointing at the narrative or with a nullFlavor
    is read as before."""
    if len(values) != 1:
        return False
    value = untyped(values[0])
    return isinstance(value, ST) and not value.text.strip() and not value.reference.strip() \
        and not (value.code is not None and value.code.code) and not value.null_flavor


RESOLVED_UNKNOWN = "UNK"  # the nullFlavor of effectiveTime/high of a problem that ended


def _onset_and_resolution(period: IVL, entry: Entry, ctx: Ctx) -> None:
    """A problem's or allergy's effectiveTime is its onset (low) and resolution (high): the
    resolution goes to details.resolved; when only it is given, it is no onset (it was
    filed as the problem's date). A high of nullFlavor UNK says the problem ended on a day
    nobody knows (IHE PCC Problem Entry, C-CDA 2.1 Problem Observation: 'if the problem is
    known to be resolved, but the date of resolution is not known, then the high element
    SHALL be present, and the nullFlavor attribute SHALL be set to UNK'):
    details.resolved_date_unknown. It was read as no end at all, and a resolved asthma
    under a concern still followed was exported active."""
    low, high = period.low, period.high
    if isinstance(high, TS) and not high.value.strip() and \
            high.null_flavor.strip().upper() == RESOLVED_UNKNOWN:
        entry.details["resolved_date_unknown"] = True
    if isinstance(high, TS) and high.value:
        resolved = iso_value(high.value, ctx.warnings, high.path)
        if resolved:
            entry.details["resolved"] = resolved
            if not (isinstance(low, TS) and low.value) and not period.value and \
                    entry.effective == resolved:
                entry.effective = None


INTERPRETATION_SYSTEM = "2.16.840.1.113883.5.83"  # HL7 ObservationInterpretation
# ObservationInterpretation and HL7 table 0078 (whose codes are ObservationInterpretation's)
_STANDARD_FLAG_SYSTEMS = frozenset({INTERPRETATION_SYSTEM, "2.16.840.1.113883.12.78"})


def _once(codes: list[str]) -> list[str]:
    """Each code once, in the order sent: a lab repeating its interpretationCode ('HAUT'
    translated H, twice: one from its LIS, one added by its bridge), or sending the flag as
    a code and again as another interpretationCode's translation, had it listed twice
    ('H,H', two interpretations the FHIR export gave twice; 'HAUT' twice beside one 'H'),
    as the HL7v2 path did before round 21 (normalizers/lab/flags.py)."""
    return list(dict.fromkeys(codes))


def _interpretation_systems(codes: list[CD]) -> dict[str, str]:
    """Each flag sent outside ObservationInterpretation -> its code system, by our name
    (``system_name``: SNOMED-CT, else the OID as sent). A lab's own 'ELEVE' or '++' was kept
    without its system: the export could only guess it from the source, and the same code
    of two of a lab's terminologies read alike."""
    return {c.code: system_name(c.code_system) for c in codes
            if c.code and c.code_system and c.code_system not in _STANDARD_FLAG_SYSTEMS}


def _interpretation(code: CD, section: Section) -> str:
    """An interpretation as the HL7 ObservationInterpretation code (H, L, A, S, R...) when
    the code or one of its translations is one: a lab's own flag ('++', 'ELEVE') translated
    to HH was filed as '++', which no reader (nor the HL7v2 path's flags) knows. A SNOMED CT
    qualifier ('281302008 above reference range') is read as the code it means; one sent as
    words only (nullFlavor OTH, originalText 'Élevé') is kept in words, as an HL7v2 flag no
    table lists is (it was dropped, the result filed as said without a comment). Words with
    no nullFlavor stay unread: the ANS's family-history example (CANCER-D2LM-FIN) points an
    interpretationCode's originalText at a count of relatives, no interpretation."""
    for c in (code, *code.translations):
        if c.code and c.code_system == INTERPRETATION_SYSTEM:
            return c.code
    for c in (code, *code.translations):
        meant = interpretation_codes().get((c.code_system, c.code))
        if c.code and meant:
            return meant
    if not code.code and code.null_flavor:
        return original_text(code, section)
    return code.code


def _reference_range(ranges: list[ReferenceRange], entry: Entry, ctx: Ctx,
                     section: Section) -> None:
    """The normal range of a result. Several observationRanges may be sent, each with the
    interpretation that applies to values inside it (C-CDA: 'negative: normal', 'positive:
    abnormal'; titers by band): the normal one is the range interpreted N, else one
    without interpretation; the first was taken whatever it said. The range reads as its
    value (an interval, '<=5'; a coded value, 'Negative'), else its text, else an ST value
    (a coded range without text was lost)."""
    normal = next((r for r in ranges if r.interpretation_code is not None and
                   r.interpretation_code.code == "N"), None) or \
        next((r for r in ranges if r.interpretation_code is None or
              not r.interpretation_code.code), None) or ranges[0]
    value = untyped(normal.value) if normal.value is not None else None
    text = range_text(value)
    if text is None and isinstance(value, CD):
        coded = mapped_code(value, ctx, section)
        text = (coded[2] or coded[0]) if coded else original_text(value, section)
    if text and isinstance(value, IVL) and entry.unit:
        # a range in another unit than the result's (value in g/L, range in mmol/L: some
        # labs give the SI range beside a conventional value) read as the result's own: a
        # glucose of 1.05 g/L beside '3.9-5.8' read as low. Its unit is said then.
        unit = next((b.unit for b in (value.low, value.high, value.center)
                     if isinstance(b, PQ) and b.unit and b.unit != "1"), "")
        if unit and to_ucum(unit).unit != entry.unit:
            text = f"{text} {unit}"
    text = text or normal.text or referenced_text(normal.text_reference, section) or \
        (value.text if isinstance(value, ST) else "")
    entry.reference_range = text or None
    if len(ranges) > 1:
        entry.details["reference_ranges"] = len(ranges)
