"""HL7v2 lab results, round 10: what laboratory systems and engines we have not seen yet
write in fields earlier rounds read past (SN ratios without their separator, OBX-8 coded as
the CWE of v2.7+, several reference ranges, date ranges, times after the message), each
written as such a sender writes it (French lab traffic, invented patients) and checked
against what must be filed."""

from __future__ import annotations

import pytest

from normalizers.model import NormalizationError
from tests.test_lab_normalizer import norm

MSH = ("MSH|^~\\&|SIL-BIO|LABO-DEMO|DMP-INTAKE|GHT|20240315104500||ORU^R01^ORU_R01|{}|P|2.5"
       "|||||FRA|UNICODE UTF-8")
PID = "PID|1||LD-778^^^LABO-DEMO&1.2.250.1.999.42&ISO^PI||LEFÈVRE^Hélène^^^^^L||19790328|F"
ORC = "ORC|RE|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO"


def _obr(n: int, code: str, status: str = "F", filler: str = "24C0315-07",
         collected: str = "202403150810") -> str:
    return (f"OBR|{n}|CMD-1^SERVICE-NEPHRO|{filler}^LABO-DEMO|{code}|||{collected}"
            + "|" * 18 + status)


def _oru(control_id: str, *segments: str, msh: str = MSH) -> str:
    return "\r".join([msh.format(control_id), PID, *segments]) + "\r"


# -- SN: a second number without its separator ------------------------------------------------
@pytest.mark.parametrize("value", ["^1^^128", "<^1^^16", "^1^^"])
def test_an_sn_whose_second_number_has_no_separator_is_refused(value):
    """SN '^1^^128' (v2.5 2.A.71: num2 comes after a separator/suffix, ':' or '/' for a
    ratio, '-' for a range): a converter that dropped the ':' of a titre 1:128. The value
    was filed as '1128', a number no one sent, ratio or range unknown. Refused naming the
    field, as an SN that is no number is; an empty num2 after an empty separator ('^1^^')
    is only trailing delimiters and reads '1', as before."""
    sent = _oru("SN-SEP-1", ORC, _obr(1, "SERO^Sérologie rubéole^L"),
                f"OBX|1|SN|22497-2^Rubéole IgG titre^LN||{value}||<1:16||||F")
    if value == "^1^^":
        assert norm(sent).entries[1].value == "1"
        return
    with pytest.raises(NormalizationError) as exc:
        norm(sent)
    assert (exc.value.code, str(exc.value)) == (
        "OBX_BAD_NUMBER", "OBX[5]-5: SN with a second number (num2) but no separator/suffix "
        "(':' or '/' of a ratio, '-' of a range): what the two numbers say is not told")


# -- OBX-8 coded as a CWE (v2.7+) -------------------------------------------------------------
def test_abnormal_flags_coded_as_cwe_keep_their_code_or_their_text():
    """v2.7 made OBX-8 a CWE: engines fill it as one ('H^Élevé^HL70078'), some in the
    alternate triplet only ('^^^HH^Critique haut^HL70078', a LIS code mapped by a bridge),
    or with the LIS's own code first and table 0078's second ('HAUT^Haut^L^H^High^HL70078').
    Only the first component was read: the alternate triplet's flag and a flag sent as words
    ('^Élevé') were lost without a word, and the LIS code was filed where 'H' was sent.
    Table 0078's code wherever it is in the CWE; else the first code; else the words, said."""
    nm = norm(_oru("FLAG-CWE-1", ORC, _obr(1, "BIO^Bilan^L"),
                   "OBX|1|NM|2823-3^Potassium^LN||6.9|mmol/L|3.5-5.1|^^^HH^Critique haut"
                   "^HL70078|||F",
                   "OBX|2|NM|2951-2^Sodium^LN||149|mmol/L|135-145|HAUT^Haut^L^H^High^HL70078"
                   "|||F",
                   "OBX|3|NM|2075-0^Chlorure^LN||111|mmol/L|98-107|^Élevé|||F",
                   "OBX|4|NM|1963-8^Bicarbonates^LN||20|mmol/L|22-29|L^Bas^HL70078~A^Anormal"
                   "^HL70078|||F"))
    k, na, cl, hco3 = nm.entries[1:]
    assert [e.interpretation for e in (k, na, cl, hco3)] == ["HH", "H", "Élevé", "L,A"]
    assert nm.warnings == ["OBX[7]-8: an abnormal flag sent as words, without a code: kept "
                           "as its words"]


@pytest.mark.parametrize("flag, read, said", [
    ("NCL", "NCL", False), ("IE", "IE", False), ("syn-r", "SYN-R", False), ("car", "CAR", False),
    ("H", "H", False), ("*", "*", True), ("+", "+", True), ("HIGH", "HIGH", True),
    ("H*", "H*", True), ("h~*", "H,*", True),
])
def test_abnormal_flags_of_v28_are_codes_and_others_are_said(flag, read, said):
    """Table 0078 grew in v2.7 to v2.9 (IE insufficient evidence and NCL no breakpoint of an
    antibiogram, SYN-R / SYN-S synergy, CAR carrier, E equivocal, EXP / UNE expected or
    not, HM hold for review): sent in lower case they were kept as sent, unlike the older
    codes. A flag of no table ('*' or '+' of a French LIS printing its report, 'HIGH') was
    filed as if it were a code, without a word: kept as sent, said (never the flag
    itself)."""
    nm = norm(_oru("FLAG-0078-1", ORC, _obr(1, "ATB^Antibiogramme^L"),
                   f"OBX|1|SN|18906-8^Ciprofloxacine CMI^LN||<=^0.25|mg/L||{flag}|||F"))
    assert nm.entries[1].interpretation == read
    warned = [w for w in nm.warnings if "OBX[5]-8" in w]
    assert warned == (["OBX[5]-8: an abnormal flag is no code of HL7 table 0078 "
                       "(interpretation codes): kept as sent"] if said else [])


# -- OBX-7 repeated ---------------------------------------------------------------------------
def test_reference_ranges_sent_as_repetitions_are_all_kept():
    """OBX-7 is one string (v2.5 7.4.2.7), but a LIS that prints a range per sex or per age
    repeats it ('13.0-17.0~12.0-16.0', 'H : 13-17~F : 12-16'): the first was filed as the
    range, the others dropped without a word, and a woman's haemoglobin of 12.5 read beside
    a man's range. The first stays the range (as before: the FHIR export reads its limits);
    the others are kept in details.other_reference_ranges, said. An empty repetition
    ('3.5-5.1~') is only a trailing delimiter."""
    nm = norm(_oru("RANGES-1", ORC, _obr(1, "NFS^Hémogramme^L"),
                   "OBX|1|NM|718-7^Hémoglobine^LN||12.5|g/dL|H : 13.0-17.0~F : 12.0-16.0~"
                   "Enfant : 11.0-14.0|N|||F",
                   "OBX|2|NM|789-8^Hématies^LN||4.2|T/L|3.8-5.9~|N|||F"))
    hb, rbc = nm.entries[1:]
    assert (hb.reference_range, hb.details["other_reference_ranges"]) == (
        "H : 13.0-17.0", ["F : 12.0-16.0", "Enfant : 11.0-14.0"])
    assert (rbc.reference_range, "other_reference_ranges" in rbc.details) == ("3.8-5.9", False)
    assert nm.warnings == ["OBX[5]-7: 3 reference ranges (OBX-7 repeated): the first is the "
                           "range, the others are kept apart"]


# -- OBX-2 DR, a date/time range --------------------------------------------------------------
@pytest.mark.parametrize("sent, value, period, fhir", [
    ("20240314080000^20240315080000", "2024-03-14T08:00:00+01:00/2024-03-15T08:00:00+01:00",
     {"start": "2024-03-14T08:00:00+01:00", "end": "2024-03-15T08:00:00+01:00"},
     {"start": "2024-03-14T08:00:00+01:00", "end": "2024-03-15T08:00:00+01:00"}),
    ("202403140800+0100^202403150800+0100", "2024-03-14T08:00+01:00/2024-03-15T08:00+01:00",
     {"start": "2024-03-14T08:00+01:00", "end": "2024-03-15T08:00+01:00"},
     {"start": "2024-03-14T08:00:00+01:00", "end": "2024-03-15T08:00:00+01:00"}),
    ("20240301^", "2024-03-01/..", {"start": "2024-03-01"}, {"start": "2024-03-01"}),
    ("^202403", "../2024-03", {"end": "2024-03"}, {"end": "2024-03"}),
    ("2024031408^2024031508", "2024-03-14T08+01:00/2024-03-15T08+01:00",  # to the hour:
     {"start": "2024-03-14T08+01:00", "end": "2024-03-15T08+01:00"}, None),  # no FHIR time
])
def test_a_date_range_value_is_an_iso_interval(sent, value, period, fhir):
    """OBX-2 DR (v2.5 2.A.20: range start ^ range end, each a TS): the period of a 24-hour
    urine collection. It was kept as sent, '20240314080000^20240315080000', the sender's
    delimiter in the value and no date any reader took for one. An ISO 8601 interval
    ('start/end', '..' for an open end), each end read as a TS is (its precision kept, the
    sender's zone when it gave none), and details.period; exported as a FHIR valuePeriod
    when FHIR can hold its ends."""
    nm = norm(_oru("DR-1", ORC, _obr(1, "URI24^Urines de 24 h^L"),
                   f"OBX|1|DR|13362-9^Durée de recueil^LN||{sent}||||||F",
                   "OBX|2|NM|2889-4^Protéinurie des 24 h^LN||0.12|g/(24.h)|<0.15|N|||F"))
    collection = nm.entries[1]
    assert (collection.value, collection.value_type, collection.details["period"]) == (
        value, "DR", period)
    assert nm.warnings == []
    from dataclasses import asdict

    from dossiers.fhir.values import observation_value
    assert observation_value(asdict(collection), collection.details, "") == (
        {"valuePeriod": fhir} if fhir else {"valueString": value})


def test_a_date_range_that_is_no_date_is_refused():
    nm_text = _oru("DR-2", ORC, _obr(1, "URI24^Urines de 24 h^L"),
                   "OBX|1|DR|13362-9^Durée de recueil^LN||14 mars 2024^15 mars 2024||||||F")
    with pytest.raises(NormalizationError) as exc:
        norm(nm_text)
    assert (exc.value.code, exc.value.location) == ("HL7_BAD_DATE", "OBX[5]-5")


# -- times after the message was sent ---------------------------------------------------------
def test_times_after_the_message_was_sent_are_said():
    """A collection or observation time later than the message itself (MSH-7) cannot be: a
    typo in a year ('2042'), an instrument left on summer time, times written in UTC by one
    system and in Paris time by another. They were filed as sent, a result dated in 2042 on
    top of every trend, without a word. Filed as sent (nothing tells the true time), said
    once per field; a few minutes ahead (an instrument's clock) is not worth a word, nor
    is a date of the message's day."""
    nm = norm(_oru("LATE-1", ORC, _obr(1, "BIO^Bilan^L", collected="204203150810"),
                   "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.1|N|||F",
                   ORC, _obr(2, "NFS^Hémogramme^L", filler="24C0315-08"),
                   "OBX|1|NM|718-7^Hémoglobine^LN||13.2|g/dL|12-16|N|||F|||202403151545",
                   "OBX|2|NM|789-8^Hématies^LN||4.5|T/L|3.8-5.9|N|||F|||202403151050",
                   "OBX|3|NM|787-2^VGM^LN||88|fL|80-100|N|||F|||20240315",
                   "OBX|4|NM|785-6^TCMH^LN||29|pg|27-32|N|||F|||20240316"))
    assert [e.effective for e in nm.entries if e.code == "2823-3"] == ["2042-03-15T08:10+01:00"]
    assert nm.warnings == [
        f"{where}: later than the message itself (MSH-7): a typo, or a clock or time zone "
        "of the sender's that is wrong? filed as sent"
        for where in ("OBR[4]-7", "OBX[8]-14", "OBX[11]-14")]


# -- reference ranges printed in brackets -----------------------------------------------------
def test_reference_ranges_in_brackets_or_ascii_french_have_their_limits_in_fhir():
    """French LIS print a range as their paper report does: in brackets ('[3,5-5,1]',
    '(0,50 - 1,00)'), 'de 70 à 105', and ASCII-only converters write 'à' as 'a' ('3,5 a 5,1')
    and '≤' as '< ou =' ('< ou = 5'). The text stays as sent; the FHIR export exported it
    as text without its low and high, as it did for no other spelling of the same range.
    Text that only looks alike ('(voir commentaire)', '[A-B]') stays text."""
    from dataclasses import asdict

    from dossiers.fhir.ranges import reference_range
    nm = norm(_oru("BRACKETS-1", ORC, _obr(1, "BIO^Bilan^L"),
                   "OBX|1|NM|2823-3^Potassium^LN||4,1|mmol/L|[3,5-5,1]|N|||F",
                   "OBX|2|NM|2160-0^Créatinine^LN||0,8|mg/dL|(0,50 - 1,00)|N|||F",
                   "OBX|3|NM|2345-7^Glucose^LN||92|mg/dL|de 70 à 105|N|||F",
                   "OBX|4|NM|2951-2^Sodium^LN||140|mmol/L|135 a 145|N|||F",
                   "OBX|5|NM|1988-5^CRP^LN||2|mg/L|< ou = 5|N|||F",
                   "OBX|6|NM|14927-8^Triglycérides^LN||1,2|mmol/L|[< 1,7]|N|||F",
                   "OBX|7|NM|2085-9^HDL^LN||1,4|mmol/L|> ou = 1,0|N|||F",
                   "OBX|8|NM|1742-6^ALAT^LN||30|U/L|(voir commentaire)|N|||F"))
    limits = [{k: v["value"] for k, v in reference_range(asdict(e))[0].items()
               if k in ("low", "high")} for e in nm.entries[1:]]
    assert limits == [{"low": 3.5, "high": 5.1}, {"low": 0.5, "high": 1.0},
                      {"low": 70.0, "high": 105.0}, {"low": 135.0, "high": 145.0},
                      {"high": 5.0}, {"high": 1.7}, {"low": 1.0}, {}]
    assert nm.entries[1].reference_range == "[3,5-5,1]"  # the text as sent


@pytest.mark.parametrize("sent, unit, low, high", [
    ("35-45%", "%", 35.0, 45.0), ("3.5-5.1mmol/L", "mmol/L", 3.5, 5.1),
    ("<5mg/L", "mg/L", None, 5.0), ("[3,5-5,1] mmol/L", "mmol/L", 3.5, 5.1),
    ("4.0-10.0 10^9/L", "10*9/L", 4.0, 10.0),  # as before
    ("3.5-5.1mmol/L", "g/L", None, None),  # another unit than the result's: text alone
    ("150-400x10^9/L", "10*9/L", None, None),  # a power glued to the limit: not guessed
])
def test_a_unit_glued_to_the_range_is_read_as_its_unit(sent, unit, low, high):
    """'35-45%', '3.5-5.1mmol/L', '<5mg/L': the unit glued to the last limit, as a LIS
    prints it without a blank. The limits were read only with a blank before the unit; now
    glued too (the unit starting with a letter, '%' or '/'), and only when it is the
    result's unit, as before."""
    from dossiers.fhir.ranges import reference_range
    [rng] = reference_range({"reference_range": sent, "unit": unit, "unit_original": unit})
    assert (rng["text"], rng.get("low", {}).get("value"), rng.get("high", {}).get("value")) \
        == (sent, low, high)


# -- UCUM units the table did not know --------------------------------------------------------
@pytest.mark.parametrize("sent, ucum", [
    ("mg/mL", "mg/mL"), ("nmol/mmol", "nmol/mmol"), ("U", "U"), ("mL/s", "mL/s"),
    ("µmol/mL", "umol/mL"), ("mOsm/L", "mosm/L"), ("fmol/L", "fmol/L"), ("ng/mL/h", "ng/mL/h"),
    ("cm[H2O]", "cm[H2O]"), ("MG/ML", "mg/mL"),
])
def test_ucum_units_of_less_common_tests_are_ucum(sent, ucum):
    """Units of tests a hospital LIS sends beside the usual chemistry: a clearance in mL/s
    (SI), a deoxypyridinoline in nmol/mmol of creatinine, a renin activity in ng/mL/h, an
    osmolarity in mOsm/L, a factor in U. Valid UCUM, they were filed as units not mapped
    (details.unit_unmapped): the FHIR export gave them no UCUM system and code, and a unit
    sent in capitals was another unit."""
    nm = norm(_oru("UCUM-1", ORC, _obr(1, "BIO^Bilan^L"),
                   f"OBX|1|NM|X-1^Analyse^L||4.2|{sent}|||||F"))
    result = nm.entries[1]
    assert (result.unit, result.unit_original, "unit_unmapped" in result.details) == (
        ucum, sent, False)


# -- OBX-2 person and organization names ------------------------------------------------------
def test_a_person_or_organization_value_is_the_name_it_spells():
    """OBX-2 XCN, XPN, CN or XON: who collected the specimen ('Prélevé par'), the biologist
    who validated, the laboratory a test was sent to. The value was the composite as sent,
    '10003791976^MARTIN^Paul^^^DR^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO', the sender's
    delimiters and an RPPS number in what a reader sees. The name it spells, as OBR-16's
    prescriber is read (repetitions are lines); a person's identifier is kept in
    details.value_ids."""
    nm = norm(_oru("XCN-1", ORC, _obr(1, "BIO^Bilan^L"),
                   "OBX|1|XCN|PRELEV^Préleveur^L||10003791976^MARTIN^Paul^^^DR^^^ASIP-SANTE-PS"
                   "&1.2.250.1.71.4.2.1&ISO^^^^RPPS||||||F",
                   "OBX|2|XPN|VALID^Biologiste^L||DURAND^Anne^^^DR~LEBLANC^Éric||||||F",
                   "OBX|3|XON|SOUSTR^Laboratoire sous-traitant^L||CERBA^^^^^&1.2.250.1.71.4.2.2"
                   "&ISO^FINEG^^^950000001||||||F",
                   "OBX|4|CN|TECH^Technicien^L||T042^PETIT^Marc||||||F"))
    collector, biologists, lab, tech = nm.entries[1:]
    assert [e.value for e in (collector, biologists, lab, tech)] == [
        "DR Paul MARTIN", "DR Anne DURAND\nÉric LEBLANC", "CERBA", "Marc PETIT"]
    assert collector.details["value_ids"] == [
        {"id": "10003791976", "authority": "1.2.250.1.71.4.2.1", "type": "RPPS"}]
    assert tech.details["value_ids"] == [{"id": "T042"}]
    assert "value_ids" not in biologists.details and "value_ids" not in lab.details


@pytest.mark.parametrize("sent_at", ["2024031510", "20240315", "2024-03-15"])
def test_a_message_dated_to_the_hour_or_day_says_nothing_of_later_times(sent_at):
    """MSH-7 to the hour ('2024031510') may have been sent at 10:59: an order collected at
    10:30 is no later than it."""
    msh = MSH.replace("20240315104500", sent_at)
    nm = norm(_oru("LATE-2", ORC, _obr(1, "BIO^Bilan^L", collected="202403151030"),
                   "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.1|N|||F", msh=msh))
    assert not any("later than the message" in w for w in nm.warnings)


# -- a titre sent as text ---------------------------------------------------------------------
@pytest.mark.parametrize("sent, separator, num2, ratio", [
    ("1/160", "/", "160", True), ("1:128", ":", "128", True), ("1 / 64", "/", "64", True),
    ("1/0", None, None, False), ("12/160", None, None, False), ("<1/16", None, None, False),
    ("1/2 dilué", None, None, False),
])
def test_a_titre_sent_as_text_is_a_ratio(sent, separator, num2, ratio):
    """A serology's titre as a LIS prints it, under ST: '1/160', '1:128'. It was text
    alone, exported as a valueString that no trend reads, where the same titre sent as SN
    ('^1^/^160') is a valueRatio. Read as that ratio (details.sn), said; the value and its
    type stay as sent. A comparator before it, words after it, a zero dilution or another
    first number than 1 (not a titre) stay text."""
    from dataclasses import asdict

    from dossiers.fhir.values import observation_value
    nm = norm(_oru("TITRE-1", ORC, _obr(1, "SERO^Sérologie^L"),
                   f"OBX|1|ST|31017-7^Toxoplasma IgG titre^LN||{sent}||<1/16||||F"))
    titre = nm.entries[1]
    assert (titre.value, titre.value_type) == (sent, "ST")
    if not ratio:
        assert "sn" not in titre.details and nm.warnings == []
        return
    assert titre.details["sn"] == {"comparator": "", "num1": "1", "separator": separator,
                                   "num2": num2}
    assert nm.warnings == ["OBX[5]-5: a titre (1:n) sent as ST, read as a ratio (SN)"]
    exported = observation_value(asdict(titre), titre.details, "")["valueRatio"]
    assert (exported["numerator"]["value"], exported["denominator"]["value"]) == (1, int(num2))
