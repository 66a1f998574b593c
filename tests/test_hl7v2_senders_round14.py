"""HL7v2 lab results, round 14: results from senders we have not seen (French LIS, private
lab networks, hospital LIS), written as such a sender writes them (invented patients) and
checked against what must be filed.

What the round found:
- a power-of-ten unit written with its multiplication sign and its '^' left unescaped
  ('x10^9/l', 'x 10^12/L', '×10^3/µL') reached us as CE code 'x10', text '9/l': the unit
  'x10' was filed, unmapped, and the count lost its unit without a word (the bare '10^9/L'
  was already put back together);
- the multiplication sign '×' itself ('×10^9/L', '×10⁹/L', as the LIS prints it) was no
  spelling of the unit table: unmapped;
- French urinary ratios and osmolality with their denominator in words ('mg/mmol créat',
  'mOsm/kg H2O') and 'mUI/24h' were unmapped;
- a blood culture's organism identified under its bottle's LOINC (17928-3 aerobe, 17934-1
  anaerobe) or a CSF, stool, throat, sputum or wound culture's (606-4, 625-4, 626-2, 6460-0,
  6462-6) named no isolate: the antibiotics of a second organism, sent in a later message
  with the same interpretation, were taken for the first organism's and never filed;
- a result whose unit is of another kind than its LOINC code (25-OH vitamin D '75 nmol/L'
  under 1989-3 [Mass/volume], glucose in mmol/L under 2345-7, from the sender's table or
  ours) was filed without a word: read by its code, 75 is ng/mL. It is filed as sent, never
  converted, with a warning and details['unit_contradicts_code'];
- a cumulative report repeats the previous results of a test under the same code
  ('antériorités', each with its own OBX-14): they were keyed by rank ('#2', '#3'), so the
  order's next report listing one more previous result filed December's potassium as a
  correction of January's (January's superseded, never filed again). Each is now keyed by
  its observation time;
- a colony count written as HL7 wants it, its '^' escaped ('10\\S\\5' UFC/mL under NM,
  '>^10\\S\\5' under SN), failed the whole message OBX_BAD_NUMBER, where the same count
  with its '^' left unescaped was read as 100000; typed ST ('>10\\S\\5 UFC/mL', as most
  French LIS send a count) it was text alone, where '100000 UFC/mL' is read as a quantity;
- OBX-8 written as a French word ('Sensible', 'RÉSISTANT', '^Intermédiaire^HL70078', 'Haut')
  was kept as the word: an antibiogram's S/I/R no reader knew. The word is read as its table
  0078 code (tables/hl7_flag_words.csv), with a warning.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from dossiers.schema import entries
from normalizers.model import NormalizationError
from normalizers.units import to_ucum
from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.test_lab_normalizer import MSH, ORC, PID, norm, oru


def _result(*obx: str):  # noqa: ANN202
    """The lab results of one ORU^R01 holding these OBX, and the message's warnings."""
    n = norm(oru(*obx))
    return [e for e in n.entries if e.type == "lab_result"], n.warnings


# -- units split at an unescaped '^' ----------------------------------------------------------
@pytest.mark.parametrize("obx6, ucum", [
    ("x10^9/l", "10*9/L"),
    ("X10^9/L", "10*9/L"),
    ("x 10^12/L", "10*12/L"),
    ("x10^3/µL", "10*3/uL"),
    ("10^9/L", "10*9/L"),  # already read so: kept
])
def test_power_of_ten_unit_with_unescaped_caret_and_multiplication_sign(obx6: str, ucum: str):
    """OBX-6 is a CE: 'x10^9/l' unescaped is code 'x10', text '9/l'. No unit code is 'x10'
    followed by a text starting with a digit: it is one unit, as '10^9/L' is."""
    (wbc,), warnings = _result(f"OBX|1|NM|6690-2^Leucocytes^LN||7,2|{obx6}|4,0-10,0|N|||F")
    assert (wbc.value_num, wbc.unit, wbc.unit_original) == (7.2, ucum, obx6)
    assert "unit_unmapped" not in wbc.details
    assert "OBX[5]-6: unescaped '^' inside the unit read as an exponent" in warnings


def test_a_unit_code_with_its_text_is_not_read_as_a_power():
    """A LIS unit code beside its text ('U1^mmol/L^99LAB'): not a power, read as before."""
    (k,), _ = _result("OBX|1|NM|2823-3^Potassium^LN||4,1|U1^mmol/L^99LAB|3,5-5,1|N|||F")
    assert (k.unit, k.unit_original) == ("mmol/L", "mmol/L")


@pytest.mark.parametrize("sent, ucum", [
    ("×10^9/L", "10*9/L"), ("×10⁹/L", "10*9/L"), ("× 10^12/L", "10*12/L"),
    ("mg/mmol créat", "mg/mmol{creat}"), ("mg/mmol créatinine", "mg/mmol{creat}"),
    ("mmol/mmol créat", "mmol/mmol{creat}"), ("mOsm/kg H2O", "mosm/kg{H2O}"),
    ("mUI/24h", "m[IU]/(24.h)"),
])
def test_french_spellings_of_units_map_to_ucum(sent: str, ucum: str):
    assert to_ucum(sent) == (ucum, True)


def test_multiplication_sign_through_obx6_escaped():
    (plt,), warnings = _result("OBX|1|NM|777-3^Plaquettes^LN||245|×10\\S\\9/L|150-400|N|||F")
    assert (plt.unit, plt.unit_original) == ("10*9/L", "×10^9/L")
    assert warnings == []


# -- organisms identified under the culture's own LOINC ----------------------------------------
OXA = "18964-7"  # Oxacillin [Susceptibility]
SAUR, ECOLI = "3092008^Staphylococcus aureus^SCT", "112283007^Escherichia coli^SCT"


def _culture(control_id: str, culture: str, *obx: str) -> str:
    obr = (f"OBR|1|CMD-9^SERV-REA|24H0315-02^LABO-DEMO|{culture}^Culture^LN|||202403150730"
           + "|" * 14 + "202403161015|||P")
    return "\r".join([MSH.replace("MSG-0001", control_id), PID, ORC, obr, *obx]) + "\r"


def _germ(n: int, sub_id: str, culture: str, germ: str) -> str:
    return f"OBX|{n}|CWE|{culture}^Germe identifié^LN|{sub_id}|{germ}||||||P"


def _oxacillin(n: int, sub_id: str) -> str:
    return f"OBX|{n}|CWE|{OXA}^Oxacilline^LN|{sub_id}|S^Sensible^HL70078|||S|||P"


@pytest.mark.parametrize("culture", ["17928-3", "17934-1", "606-4", "625-4", "626-2", "6460-0",
                                     "6462-6"])
def test_each_organism_of_a_culture_names_its_antibiotics(culture: str):
    n = norm(_culture("MSG-1", culture, _germ(1, "1", culture, SAUR), _oxacillin(2, "1.1"),
                      _germ(3, "2", culture, ECOLI), _oxacillin(4, "2.1")))
    oxa = [e for e in n.entries if e.code == OXA]
    assert [e.details["isolate"]["code"] for e in oxa] == ["3092008", "112283007"]


def test_second_organism_sent_later_keeps_its_antibiogram(ctx) -> None:  # noqa: ANN001
    """Day 1 the aerobic bottle grows S. aureus (oxacillin S); day 2 the lab adds E. coli
    with its own oxacillin S. Without the isolate, day 2's was day 1's fact: never filed."""
    ctx.settings = replace(ctx.settings, auto_create=True)
    messages = [_culture("MSG-1", "17928-3", _germ(1, "1", "17928-3", SAUR), _oxacillin(2, "1.1")),
                _culture("MSG-2", "17928-3", _germ(1, "2", "17928-3", ECOLI), _oxacillin(2, "2.1"))]
    for n, text in enumerate(messages):
        intake(ctx.engine, ctx.archive, [Received(text.encode(), "demo-lab", "file",
                                                  file_name=f"{n}.hl7")])
        drain(ctx)
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(entries.c.details).where(entries.c.code == OXA)
                            .order_by(entries.c.id)).all()
    assert len(rows) == 2
    assert [r.details["isolate"]["display"] for r in rows] == ["Staphylococcus aureus",
                                                               "Escherichia coli"]


# -- a unit of another kind than its LOINC code ------------------------------------------------
@pytest.mark.parametrize("obx, code_property, unit_property", [
    ("OBX|1|NM|1989-3^25-OH vitamine D^LN||75|nmol/L|75-250|N|||F", "MCnc", "SCnc"),
    ("OBX|1|NM|2345-7^Glycémie^LN||5,4|mmol/L|3,9-5,8|N|||F", "MCnc", "SCnc"),
    ("OBX|1|NM|14682-9^Créatinine^LN||8,8|mg/L|6-12|N|||F", "SCnc", "MCnc"),
    ("OBX|1|NM|2093-3^Cholestérol total^LN||5,1|mmol/L|<5,2|N|||F", "MCnc", "SCnc"),
    ("OBX|1|NM|718-7^Hémoglobine^LN||8,4|mmol/L|7,5-10|N|||F", "MCnc", "SCnc"),
    ("OBX|1|NM|6690-2^Leucocytes^LN||7,2|g/L|4-10|N|||F", "NCnc", "MCnc"),
    # the demo table maps GLY to 2345-7, a mass concentration
    ("OBX|1|NM|GLY^Glycémie à jeun^L||5,4|mmol/L|3,9-5,8|N|||F", "MCnc", "SCnc"),
])
def test_a_unit_of_another_kind_than_the_loinc_code_is_said_never_converted(
        obx: str, code_property: str, unit_property: str):
    """25-OH vitamin D in nmol/L under 1989-3 ([Mass/volume]): read by its code, 75 is
    ng/mL, 187 nmol/L. Filed as sent (value, unit) and said; it was filed without a word."""
    (r,), warnings = _result(obx)
    value = obx.split("|")[5]
    assert (r.value, r.unit_original) == (value, obx.split("|")[6])
    assert r.details["unit_contradicts_code"] == {"code_property": code_property,
                                                  "unit_property": unit_property}
    assert any(w.startswith("OBX[5]-6: the unit is a ") and "not converted" in w
               for w in warnings)


@pytest.mark.parametrize("obx", [
    "OBX|1|NM|14635-7^25-OH vitamine D3^LN||75|nmol/L|75-250|N|||F",
    "OBX|1|NM|1989-3^25-OH vitamine D^LN||30|ng/mL|30-100|N|||F",
    "OBX|1|NM|14749-6^Glycémie^LN||5,4|mmol/L|3,9-5,8|N|||F",
    "OBX|1|NM|2160-0^Créatinine^LN||8,8|mg/L|6-12|N|||F",
    "OBX|1|NM|2951-2^Sodium^LN||140|mEq/L|135-145|N|||F",
    "OBX|1|NM|6690-2^Leucocytes^LN||7,2|G/L|4-10|N|||F",
    "OBX|1|NM|777-3^Plaquettes^LN||245000|/mm3|150000-400000|N|||F",
    "OBX|1|NM|1742-6^ALAT^LN||32|UI/L|<45|N|||F",  # enzymes: U/L or [IU]/L, not checked
    "OBX|1|NM|4548-4^HbA1c^LN||6,1|%|4-6|H|||F",
])
def test_a_unit_of_the_kind_of_its_code_is_filed_quietly(obx: str):
    (r,), warnings = _result(obx)
    assert "unit_contradicts_code" not in r.details
    assert not any("not converted" in w for w in warnings)


# -- cumulative reports: previous results of one test ('antériorités') -----------------------
K = "2823-3"  # Potassium [Moles/volume] in Serum or Plasma
TODAY = f"OBX|1|NM|{K}^Potassium^LN||4,3|mmol/L|3,5-5,1|N|||F|||202403150810"
JAN = f"OBX|2|NM|{K}^Potassium^LN||3,9|mmol/L|3,5-5,1|N|||F|||202401100805"
DEC = f"OBX|3|NM|{K}^Potassium^LN||4,0|mmol/L|3,5-5,1|N|||F|||202312050805"


def _report(control_id: str, obr25: str, *obx: str) -> str:
    obr = ("OBR|1|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO|IONO^Ionogramme^L|||202403150810"
           + "|" * 14 + f"202403151045|||{obr25}")
    return "\r".join([MSH.replace("MSG-0001", control_id), PID, ORC, obr, *obx]) + "\r"


def test_previous_results_are_keyed_by_their_observation_time():
    keys = {e.value: e.key for e in norm(_report("M1", "F", TODAY, DEC, JAN)).entries
            if e.type == "lab_result"}
    again = {e.value: e.key for e in norm(_report("M2", "F", TODAY, JAN, DEC)).entries
             if e.type == "lab_result"}
    assert keys == again  # listed in another order, each previous result keeps its key
    assert keys["3,9"].endswith("@202401100805") and keys["4,0"].endswith("@202312050805")
    assert "@" not in keys["4,3"]


def test_a_same_time_repeat_is_still_told_apart_by_rank():
    """Two results of one test at one time (a lab's dual report, a rerun on the same tube)
    are told apart by rank as before."""
    e = [x for x in norm(_report("M1", "F", TODAY, TODAY.replace("4,3", "4,4"))).entries
         if x.type == "lab_result"]
    assert [x.key.rsplit("|", 1)[1] for x in e] == ["", "#2"]


def test_a_report_listing_one_more_previous_result_corrects_nothing(ctx) -> None:  # noqa: ANN001
    ctx.settings = replace(ctx.settings, auto_create=True)
    for n, text in enumerate([_report("M1", "P", TODAY, JAN), _report("M2", "F", TODAY, DEC, JAN)]):
        intake(ctx.engine, ctx.archive, [Received(text.encode(), "demo-lab", "file",
                                                  file_name=f"{n}.hl7")])
        drain(ctx)
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(entries.c.value, entries.c.current, entries.c.superseded_by)
                            .where(entries.c.code == K).order_by(entries.c.id)).all()
    assert sorted((r.value, r.current, r.superseded_by) for r in rows) == [
        ("3,9", True, None), ("4,0", True, None), ("4,3", True, None)]


# -- a power of ten with its '^' escaped --------------------------------------------------------
@pytest.mark.parametrize("vtype, value, shown, number, comparator", [
    ("NM", "10\\S\\5", "10^5", 1e5, None),
    ("NM", "<10\\S\\3", "<10^3", 1e3, "<"),
    ("NM", "2,5x10\\S\\6", "2,5x10^6", 2.5e6, None),
    ("SN", ">^10\\S\\5", ">10^5", 1e5, ">"),
    ("SN", ">=^10\\S\\5", ">=10^5", 1e5, ">="),
    ("SN", "^10\\S\\4", "10^4", 1e4, None),
])
def test_an_escaped_power_of_ten_is_the_number_it_spells(vtype: str, value: str, shown: str,
                                                         number: float, comparator: str | None):
    (count,), warnings = _result(f"OBX|1|{vtype}|564-5^Numération bactérienne^LN|1|{value}|"
                                 "UFC/mL|<10\\S\\3||||F")
    assert (count.value_num, count.comparator, count.unit) == (number, comparator, "{CFU}/mL")
    assert count.value == shown
    assert "OBX[5]-5: power of ten ('10^n') read as the number it spells" in warnings


def test_a_number_that_only_looks_like_a_power_still_fails():
    with pytest.raises(NormalizationError) as exc:
        _result("OBX|1|NM|564-5^Numération bactérienne^LN|1|10\\S\\beaucoup|UFC/mL|||||F")
    assert (exc.value.code, exc.value.location) == ("OBX_BAD_NUMBER", "OBX[5]-5")


@pytest.mark.parametrize("vtype, value, obx6, number, comparator, unit_original", [
    ("ST", ">10\\S\\5 UFC/mL", "", 1e5, ">", "UFC/mL"),
    ("ST", "<10\\S\\3 UFC/ml", "", 1e3, "<", "UFC/ml"),
    ("ST", "10\\S\\5", "UFC/mL", 1e5, None, "UFC/mL"),
    ("NM", "10\\S\\5 UFC/mL", "", 1e5, None, "UFC/mL"),
])
def test_a_colony_count_typed_as_text_is_a_quantity(vtype: str, value: str, obx6: str,
                                                    number: float, comparator: str | None,
                                                    unit_original: str):
    (count,), _ = _result(f"OBX|1|{vtype}|564-5^Numération bactérienne^LN|1|{value}|{obx6}"
                          "|||||F")
    assert (count.value_num, count.comparator, count.unit, count.unit_original) == (
        number, comparator, "{CFU}/mL", unit_original)


def test_text_that_only_starts_like_a_count_stays_text():
    (r,), _ = _result("OBX|1|ST|564-5^Numération bactérienne^LN|1|10\\S\\5 germes divers||"
                      "||||F")
    assert (r.value, r.value_num) == ("10^5 germes divers", None)


# -- OBX-8 written as a French word ---------------------------------------------------------------
@pytest.mark.parametrize("obx8, code", [
    ("Sensible", "S"), ("RÉSISTANT", "R"), ("résistant", "R"), ("Intermediaire", "I"),
    ("^Intermédiaire^HL70078", "I"), ("Haut", "H"), ("Bas~Anormal", "L,A"),
])
def test_a_flag_written_as_a_french_word_is_its_code(obx8: str, code: str):
    (r,), warnings = _result(f"OBX|1|SN|18862-3^Amoxicilline CMI^LN|1|<=^2|mg/L||{obx8}|||F")
    assert r.interpretation == code
    assert "OBX[5]-8: an abnormal flag written as a word, read as its code of HL7 table 0078" \
        in warnings


@pytest.mark.parametrize("obx8", ["Sensibilité diminuée", "++", "Elevé pour l'âge"])
def test_other_flag_words_stay_as_sent(obx8: str):
    (r,), warnings = _result(f"OBX|1|SN|18862-3^Amoxicilline CMI^LN|1|<=^2|mg/L||{obx8}|||F")
    assert r.interpretation == obx8
    assert not any("read as its code" in w for w in warnings)
