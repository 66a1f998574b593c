"""HL7v2 lab results, round 16: results from senders we have not seen (French LIS, hospital
microbiology systems), written as such a sender writes them (invented patients) and checked
against what must be filed.

What the round found:
- a MIC printed with its comparator reversed ('=<0,25', '=>32', as microbiology systems print
  dilutions: MIMIC-IV's microbiology holds '=>') failed the whole message OBX_BAD_NUMBER under
  SN ('unknown SN comparator') and NM, and was text under ST: it is read as '<=' / '>=' with
  a warning (tables/comparator_signs.csv);
- an antibiogram's category as CA-SFM / EUCAST 2019 name it ('SFP', 'Sensible à forte
  posologie', 'Sensible à posologie standard': French LIS print them in OBX-8) was kept as
  sent, a flag no reader (nor the same result of a CR-BIO, coded I or S) knew: read as I and
  S (tables/hl7_flag_words.csv), with a warning;
- SPM-4 (the specimen type, a CWE) coded in its alternate triplet only ('^^^119297000^Sang
  veineux^SCT') or said in its original text only (CWE.9) named no specimen: the result was
  filed without one, silently; a code sent with its CWE.9 and no text lost the text;
- several order groups of one order number and code, each with its own OBR-7 and no OBX-14
  (a glucose tolerance test's T0, T60, T120 each in its OBR; serial troponins) were keyed
  by rank ('#2', '#3'): the order's next report with a time added between two others filed
  it as a new version of the later one, which was gone from the dossier. Reports and results
  after the first are now keyed by their OBR-7 ('@202403150900'), as round 14 keys a
  cumulative report's OBX by OBX-14;
- OBX-6 coded in its alternate triplet (CE.4-6, as v2.5.1 LRI / ELR senders put UCUM beside
  their own unit code: 'MMOLL^^99LAB^mmol/L^^UCUM', or the alternate alone) was read from its
  first triplet only: the unmapped 'MMOLL', or no unit at all. The alternate is read when
  the first names no unit we read, the local code kept in details['unit_code'];
- SPM-8 (specimen source site) and OBR-15.4 (its v2.3-2.4 place, the body site of the
  specimen source) were never read: a wound swab of the left foot and one of the right hand,
  a blood culture drawn through a catheter and one drawn peripherally, looked taken from
  nowhere in particular. In details['specimen_site'] now, and the FHIR Specimen's
  collection.bodySite; never part of a key or of the dedupe fact.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from dossiers.fhir import to_bundle
from dossiers.schema import entries
from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.test_fhir_export import PATIENT, _resource, _row, by_entry_id, check_bundle
from tests.test_lab_normalizer import MSH, OBR, ORC, PID, norm, oru

GLU = "2345-7"  # Glucose [Mass or Moles/volume] in Serum or Plasma


def _results(*obx: str, **kw):  # noqa: ANN202
    """The lab results of one ORU^R01 holding these OBX, and the message's warnings."""
    n = norm(oru(*obx, **kw))
    return [e for e in n.entries if e.type == "lab_result"], n.warnings


# -- MIC comparators written reversed --------------------------------------------------------
@pytest.mark.parametrize("vtype, value, comparator, number", [
    ("SN", "=<^0.25", "<=", 0.25),
    ("SN", "=>^32", ">=", 32.0),
    ("SN", "^=<0,5", "<=", 0.5),  # in num1's place, glued to its number
    ("NM", "=<0,25", "<=", 0.25),
    ("NM", "=>^16", ">=", 16.0),  # an SN's components under NM
    ("ST", "=> 16", ">=", 16.0),  # text with its unit in OBX-6: a quantity
])
def test_a_mic_with_its_comparator_reversed_is_read(vtype: str, value: str, comparator: str,
                                                    number: float) -> None:
    """v2.5 2.A.71 spells the SN comparator '<=' and '>='; a MIC printed '=<0,25' failed the
    whole message (every other antibiotic of the panel with it)."""
    (mic,), warnings = _results(
        f"OBX|1|{vtype}|18906-8^Ciprofloxacine [Susceptibilité] CMI^LN|1|{value}|mg/L||S|||F")
    assert (mic.comparator, mic.value_num, mic.unit) == (comparator, number, "mg/L")
    assert mic.interpretation == "S"
    sign = "=<" if comparator == "<=" else "=>"
    assert f"OBX[5]-5: comparator written reversed ({sign}), read as {comparator}" in warnings


def test_a_plain_equals_sign_is_still_no_comparator() -> None:
    """'=^16' says no more than the number: no comparator, no warning of a reversed one."""
    (mic,), warnings = _results("OBX|1|SN|18864-9^Ampicilline CMI^LN|1|=^16|mg/L||R|||F")
    assert (mic.comparator, mic.value_num) == (None, 16.0)
    assert not any("reversed" in w for w in warnings)


# -- CA-SFM 2019 antibiogram categories -------------------------------------------------------
@pytest.mark.parametrize("obx8, flag", [
    ("SFP", "I"),
    ("sfp", "I"),
    ("Sensible à forte posologie", "I"),
    ("^Sensible à posologie standard", "S"),  # a CWE's text alone (v2.7+ OBX-8)
])
def test_casfm_susceptibility_categories_are_read_as_table_0078(obx8: str, flag: str) -> None:
    """Since CA-SFM 2019, 'I' reads 'sensible à forte posologie' (SFP, EUCAST's 'susceptible,
    increased exposure') and 'S' 'sensible à posologie standard'."""
    (amox,), warnings = _results(
        f"OBX|1|SN|18864-9^Amoxicilline CMI^LN|1|<=^2|mg/L||{obx8}|||F")
    assert amox.interpretation == flag
    assert "OBX[5]-8: an abnormal flag written as a word, read as its code of HL7 table " \
        "0078" in warnings


# -- SPM-4 specimen type in the alternate triplet or the original text -----------------------
@pytest.mark.parametrize("spm4, specimen", [
    ("^^^119297000^Sang veineux^SCT",
     {"code": "119297000", "system": "SNOMED-CT", "display": "Sang veineux"}),
    ("^^^^^^^^Sang veineux", {"text": "Sang veineux"}),
    ("119297000^^SCT^^^^^^Sang veineux",
     {"code": "119297000", "system": "SNOMED-CT", "display": "Sang veineux"}),
    ("SER^Sérum^HL70487^119364003^Serum specimen^SCT",  # both triplets: the first, as before
     {"code": "SER", "system": "HL70487", "display": "Sérum"}),
])
def test_spm4_coded_in_the_alternate_triplet_or_the_original_text(spm4: str,
                                                                  specimen: dict) -> None:
    spm = f"SPM|1|24C0315-07-1^LABO-DEMO||{spm4}" + "|" * 13 + "202403150805"
    (k,), _ = _results("OBX|1|NM|2823-3^Potassium^LN||4,1|mmol/L|3,5-5,1|N|||F", tail=(spm,))
    assert k.details["specimen"] == specimen
    assert k.specimen_time == "2024-03-15T08:05+01:00"


# -- order groups of one number told apart by their OBR-7 ---------------------------------------
def _hgpo(control_id: str, *times: tuple[str, str]) -> str:
    """One ORU^R01 of the glucose tolerance test 24C0315-07: an order group per (OBR-7,
    glucose in g/L), each under the same order number and code, OBX-14 empty."""
    segments = [MSH.replace("MSG-0001", control_id), PID, ORC]
    for n, (when, glucose) in enumerate(times, 1):
        segments += [f"OBR|{n}|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO|HGPO^Hyperglycémie "
                     f"provoquée par voie orale^L|||{when}" + "|" * 18 + "F",
                     f"OBX|1|NM|{GLU}^Glucose^LN||{glucose}|g/L|||||F"]
    return "\r".join(segments) + "\r"


T0, T30, T60 = ("202403150800", "0,92"), ("202403150830", "1,48"), ("202403150900", "1,31")


def test_order_groups_of_one_number_are_keyed_by_their_obr7() -> None:
    nm = norm(_hgpo("M1", T0, T60))
    keys = [e.key for e in nm.entries]
    assert keys == ["report|24C0315-07|LABO-DEMO|HGPO",
                    f"result|24C0315-07|LABO-DEMO|{GLU}|LN|",
                    "report|24C0315-07|LABO-DEMO|HGPO@202403150900",
                    f"result|24C0315-07|LABO-DEMO|{GLU}|LN|@202403150900"]
    assert nm.entries[3].parent_key == keys[2]
    assert "OBX[7]: same test as in an earlier order of the message, observed at another " \
        "time (OBR-7): told apart by that time" in nm.warnings
    # a time added between them changes no key the others had
    again = {e.value: e.key for e in norm(_hgpo("M2", T0, T30, T60)).entries if e.value}
    assert again["1,31"] == keys[3] and again["0,92"] == keys[1]


def test_order_groups_of_one_time_are_still_told_apart_by_rank() -> None:
    """Two groups of one order number, code and OBR-7 (a lab's dual report): by rank."""
    keys = [e.key for e in norm(_hgpo("M1", T0, (T0[0], "0,93"))).entries]
    assert keys[2:] == ["report|24C0315-07|LABO-DEMO|HGPO#2",
                        f"result|24C0315-07|LABO-DEMO|{GLU}|LN|#2"]


def test_a_time_added_between_two_others_replaces_neither(sqlite_ctx) -> None:  # noqa: ANN001
    ctx = sqlite_ctx  # keys, not the database, decide
    ctx.settings = replace(ctx.settings, auto_create=True)
    for n, text in enumerate([_hgpo("M1", T0, T60), _hgpo("M2", T0, T30, T60)]):
        intake(ctx.engine, ctx.archive, [Received(text.encode(), "demo-lab", "file",
                                                  file_name=f"{n}.hl7")])
        drain(ctx)
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(entries.c.value, entries.c.effective, entries.c.current)
                            .where(entries.c.code == GLU)).all()
    assert sorted((r.value, r.effective[11:16], r.current) for r in rows) == [
        ("0,92", "08:00", True), ("1,31", "09:00", True), ("1,48", "08:30", True)]


# -- OBX-6 in its alternate triplet -----------------------------------------------------------
@pytest.mark.parametrize("obx6, unit_code", [
    ("^^^mmol/L^millimole par litre^UCUM", None),
    ("MMOLL^^99LAB^mmol/L^millimole par litre^UCUM", {"code": "MMOLL", "system": "99LAB"}),
    ("MMOLL^^99LAB^mmol/l^^L", {"code": "MMOLL", "system": "99LAB"}),  # a unit we know
])
def test_a_unit_in_the_alternate_triplet_is_read(obx6: str, unit_code: dict | None) -> None:
    (k,), warnings = _results(f"OBX|1|NM|2823-3^Potassium^LN||4,1|{obx6}|3,5-5,1|N|||F")
    assert (k.unit, k.details.get("unit_code")) == ("mmol/L", unit_code)
    assert "unit_unmapped" not in k.details
    assert "OBX[5]-6: unit read from its alternate triplet (CE.4-6): the first names none" \
        in warnings


@pytest.mark.parametrize("obx6, unit", [
    ("mmol/l^^L^MMOLL^^99LAB", "mmol/L"),  # the first reads: kept, as before
    ("MMOLL^^99LAB^MMOL2^^99LAB", "MMOLL"),  # two local codes: the first, as before
])
def test_a_first_triplet_that_reads_or_two_local_codes_stay_as_before(obx6: str,
                                                                      unit: str) -> None:
    (k,), warnings = _results(f"OBX|1|NM|2823-3^Potassium^LN||4,1|{obx6}|3,5-5,1|N|||F")
    assert k.unit == unit and "unit_code" not in k.details
    assert not any("alternate triplet" in w for w in warnings)


# -- SPM-8 and OBR-15.4: where the specimen was taken ------------------------------------------
STAPH = "OBX|1|CWE|6462-6^Germe identifié^LN|1|3092008^Staphylococcus aureus^SCT||||||F"


@pytest.mark.parametrize("spm8, site", [
    ("LFOOT^Pied gauche^L", {"code": "LFOOT", "system": "L", "display": "Pied gauche"}),
    ("^^^^^^^^Cathéter veineux central", {"text": "Cathéter veineux central"}),
])
def test_spm8_the_specimen_source_site_is_kept(spm8: str, site: dict) -> None:
    spm = f"SPM|1|||SWD^Écouvillonnage de plaie^HL70487||||{spm8}" + "|" * 9 + "202403150805"
    (germ,), _ = _results(STAPH, tail=(spm,))
    assert germ.details["specimen_site"] == site
    assert germ.details["specimen"]["display"] == "Écouvillonnage de plaie"
    assert germ.key == "result|24C0315-07|LABO-DEMO|6462-6|LN|1"  # no part of the key


def test_obr15_4_the_body_site_of_a_v23_sender_is_kept() -> None:
    obr = OBR.replace("|||||||^MARTIN", "||||||PLAIE&Plaie&L^^^MAIND&Main droite&L|^MARTIN")
    (germ,), _ = _results(STAPH, order=(ORC, obr))
    assert germ.details["specimen_site"] == {"code": "MAIND", "system": "L",
                                             "display": "Main droite"}
    assert germ.details["specimen"] == {"code": "PLAIE", "system": "L", "display": "Plaie"}


def test_the_site_is_the_fhir_specimens_body_site() -> None:
    site = {"code": "LFOOT", "system": "L", "display": "Pied gauche"}
    bundle = to_bundle(PATIENT, [_row(1, specimen_time="2024-03-15T08:05+01:00",
                                      details={"specimen_site": site})])
    check_bundle(bundle)
    specimen = _resource(bundle, by_entry_id(bundle)[1]["specimen"]["reference"])
    assert specimen["collection"]["bodySite"]["text"] == "Pied gauche"
    assert specimen["collection"]["bodySite"]["coding"][0]["code"] == "LFOOT"
