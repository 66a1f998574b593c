"""HL7v2 lab results, round 7: what laboratory systems we have not seen yet send (IHE LAB-3
and US ELR/LRI 2.5.1 with SPM specimens and OBX-17/18/29, older v2.3 LIS, other
microbiology systems), each written here as such a sender writes it (French lab traffic,
invented patients) and compared with what a clinician expects to find filed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from normalizers.model import NormalizationError
from tests.test_lab_normalizer import ORC, norm, oru

V23 = ("MSH|^~\\&|SIL-V23|LABO-ANCIEN|DMP-INTAKE|GHT|200403151045||ORU^R01|MSG-23|P|2.3.1|||||"
       "FRA|8859/1")
ORC23 = "ORC|RE|CMD-1|04C0315-01^LABO-ANCIEN"
OBR23 = "OBR|1|CMD-1|04C0315-01^LABO-ANCIEN|HEMO^Hémogramme^L|||200403150810|||||||||||||||||F"


def by_ref(nm):
    return {e.source_ref: e for e in nm.entries}


def test_a_number_with_its_unit_written_in_the_value():
    """v2.3 LIS that print the result into OBX-5 with its unit and leave OBX-6 empty
    ('12,5 g/dL' under NM): the whole message failed OBX_BAD_NUMBER, the glucose beside it
    lost; under ST the haemoglobin was text, out of every trend. The number and the unit
    are read when the units table knows the unit; anything else is what it was."""
    nm = norm(oru("OBX|1|NM|HB^Hémoglobine^L||12,5 g/dL||12-16||||F",
                  "OBX|2|NM|GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||F",
                  "OBX|3|ST|PLQ^Plaquettes^L||245 G/L||150-400||||F",
                  "OBX|4|ST|CRP^CRP^L||< 5 mg/L||<5||||F",
                  "OBX|5|ST|ASP^Aspect^L||2 croix||||||F",
                  "OBX|6|SN|FER^Ferritine^L||>1500 µg/L||||||F",
                  "OBX|7|SN|TSH^TSH^L||<^0,01 mUI/L||||||F",
                  header=V23, order=(ORC23, OBR23)))
    hb, gly, plq, crp, croix, fer, tsh = nm.entries[1:]
    assert (tsh.value, tsh.value_num, tsh.comparator, tsh.unit) == ("<0,01", 0.01, "<", "m[IU]/L")
    assert (hb.value, hb.value_num, hb.unit, hb.unit_original, hb.value_type) == (
        "12,5", 12.5, "g/dL", "g/dL", "NM")
    assert hb.details["value_sent"] == "12,5 g/dL"
    assert (gly.value_num, gly.unit) == (5.4, "mmol/L")
    assert (plq.value, plq.value_num, plq.unit, plq.value_type) == ("245 G/L", 245.0,
                                                                     "10*9/L", "ST")
    assert (crp.value_num, crp.comparator, crp.unit) == (5.0, "<", "mg/L")
    assert (croix.value, croix.value_num, croix.unit) == ("2 croix", None, None)
    assert (fer.value, fer.value_num, fer.comparator, fer.unit) == (">1500", 1500.0, ">", "ug/L")
    assert "OBX[5]-5: unit written in the value after the number, read as the number and " \
           "its unit" in nm.warnings
    assert not any("12,5" in w or "croix" in w for w in nm.warnings)


def test_a_unit_in_the_value_that_obx6_contradicts_is_refused():
    """The same unit in OBX-5 and OBX-6 is read once; another one leaves the number in doubt
    (a factor of ten between g/dL and g/L): a specific error, never a guess."""
    same = norm(oru("OBX|1|NM|HB^Hémoglobine^L||12,5 g/dL|g/dl|12-16||||F",
                    header=V23, order=(ORC23, OBR23)))
    assert (same.entries[1].value_num, same.entries[1].unit) == (12.5, "g/dL")
    with pytest.raises(NormalizationError) as exc:
        norm(oru("OBX|1|NM|HB^Hémoglobine^L||12,5 g/dL|g/L|120-160||||F",
                 header=V23, order=(ORC23, OBR23)))
    assert (exc.value.code, exc.value.location) == ("OBX_UNIT_CONFLICT", "OBX[5]-6")
    assert "12,5" not in str(exc.value)
    with pytest.raises(NormalizationError) as exc:  # no unit the table knows: as before
        norm(oru("OBX|1|NM|HB^Hémoglobine^L||12,5 grammes||12-16||||F",
                 header=V23, order=(ORC23, OBR23)))
    assert exc.value.code == "OBX_BAD_NUMBER"


@settings(max_examples=60, deadline=None)
@given(st.decimals(min_value=0, max_value=99999, places=2, allow_nan=False),
       st.sampled_from(["g/dL", "mmol/L", "G/L", "µmol/l", "%", "UI/L"]),
       st.sampled_from(["", " ", "  "]), st.sampled_from(["NM", "ST", "SN"]))
def test_property_number_then_unit_reads_the_number(number, unit, gap, vtype):
    sent = f"{number}".replace(".", ",") + gap + unit
    nm = norm(oru(f"OBX|1|{vtype}|X^Analyse^L||{sent}||||||F", header=V23,
                  order=(ORC23, OBR23)))
    result = nm.entries[1]
    assert result.value_num == float(number)
    assert result.unit_original == unit and result.unit


MSH251 = ("MSH|^~\\&|LIS-LTW^1.2.250.1.999.7.1^ISO|LABO-LTW^1.2.250.1.999.7^ISO|DMP-INTAKE|GHT|"
          "20240315104500+0100||ORU^R01^ORU_R01|LTW-0001|P|2.5.1|||AL|NE|FRA|UNICODE UTF-8|||"
          "LAB-3^IHE")
ORC_HC = "ORC|RE|CMD-7^DPI|24H0315-02^LABO-LTW||CM"
OBR_HC = ("OBR|1|CMD-7^DPI|24H0315-02^LABO-LTW|600-7^Bacteria identified in Blood by Culture^LN"
          "|||202403150800|||||||||||||||||P")


def _spm(n: int, ident: str, code: str, name: str, collected: str) -> str:
    return f"SPM|{n}|{ident}&LABO-LTW||{code}^{name}^SCT" + "|" * 13 + collected


def test_each_specimen_group_observes_its_own_specimen():
    """v2.5.1 ORU_R01 (IHE LAB-3): OBR ... {OBX} {SPM {OBX}}, an OBX after an SPM is about
    that specimen (two blood culture bottles drawn 20 min apart, each with its growth). All
    results were given the order's first specimen and its time: the aerobic bottle's
    growth was filed as the first bottle's, 20 minutes early."""
    nm = norm(oru(
        "OBX|1|ST|600-7^Bacteria identified in Blood by Culture^LN|1|Voir flacons||||||P",
        _spm(1, "HC-AE", "119297000", "Hémoculture flacon aérobie", "202403150800"),
        "OBX|2|ST|600-7^Bacteria identified in Blood by Culture^LN|2|Cocci Gram + en amas"
        "||||||P",
        _spm(2, "HC-AN", "119297000", "Hémoculture flacon anaérobie", "202403150820"),
        "OBX|3|ST|600-7^Bacteria identified in Blood by Culture^LN|3|Pas de croissance à 48 h"
        "||||||P",
        header=MSH251, order=(ORC_HC, OBR_HC)))
    r = by_ref(nm)
    whole, aerobic, anaerobic = r["OBX[5]"], r["OBX[7]"], r["OBX[9]"]
    assert whole.details["specimen"]["display"] == "Hémoculture flacon aérobie"  # as before
    assert whole.specimen_time == "2024-03-15T08:00+01:00"
    assert aerobic.details["specimen"]["display"] == "Hémoculture flacon aérobie"
    assert aerobic.specimen_time == "2024-03-15T08:00+01:00"
    assert anaerobic.details["specimen"]["display"] == "Hémoculture flacon anaérobie"
    assert anaerobic.specimen_time == "2024-03-15T08:20+01:00"
    assert nm.entries[0].specimen_time == "2024-03-15T08:00+01:00"  # the order's: the first


def test_a_specimen_group_after_the_results_keeps_the_results_specimen():
    """One order, its serum results, then the 24 h urine it also took with its volume: the
    volume is the urine's; the results before any SPM keep the order's first specimen."""
    nm = norm(oru(
        "OBX|1|NM|2160-0^Créatinine^LN||9.2|mg/L|6-11|N|||F",
        _spm(1, "S1", "119364003", "Sérum", "202403150800"),
        _spm(2, "U1", "276833005", "Urines de 24 h", "202403140800"),
        "OBX|2|NM|3167-4^Volume des urines de 24 h^LN||1.8|L|||||F",
        header=MSH251))
    crea, volume = nm.entries[1:]
    assert crea.details["specimen"]["display"] == "Sérum"
    assert volume.details["specimen"] == {"code": "276833005", "system": "SNOMED-CT",
                                          "display": "Urines de 24 h"}
    assert volume.specimen_time == "2024-03-14T08:00+01:00"


def _obx(n: int, vtype: str, code: str, value: str, unit: str = "", **more: str) -> str:
    """An OBX with fields set by number (f17='...'), the others empty: LRI's late fields
    (OBX-17 to OBX-29) are easy to misplace by hand."""
    fields = [""] * 30
    fields[1:7] = [str(n), vtype, code, "", value, unit]
    fields[11] = "F"
    for name, said in more.items():
        fields[int(name[1:])] = said
    return "OBX|" + "|".join(fields[1:]).rstrip("|")


def test_method_equipment_and_observation_type_of_lri_senders():
    """US LRI / ELR 2.5.1 (and v2.8) senders say how a result was obtained: OBX-17 method
    (an LDL computed by Friedewald's formula, a cholesterol by an enzymatic technique),
    OBX-18 the analyser, OBX-29 whether the OBX is a result or the answer to a question
    asked at order entry (fasting). All three were dropped: a computed LDL read as measured,
    a 'fasting: yes' as a result of the lab."""
    nm = norm(oru(
        _obx(1, "CWE", "49541-6^Fasting status - Reported^LN", "Y^Yes^HL70136", f29="AOE"),
        _obx(2, "NM", "2093-3^Cholestérol total^LN", "1.95", "g/L",
             f17="0278^Enzymatique^99METH", f18="C702-1^ROCHE^1.2.250.1.999.7.9^ISO",
             f29="RSLT"),
        _obx(3, "NM", "13457-7^Cholestérol LDL calculé^LN", "1.21", "g/L",
             f17="FRIEDEWALD^Formule de Friedewald^L~CALC^Calculated^HL70936", f29="RSLT"),
        _obx(4, "NM", "2085-9^Cholestérol HDL^LN", "0.52", "g/L", f17="Précipitation au PTA",
             f29="XYZ"),
        header=MSH251))
    fasting, chol, ldl, hdl = nm.entries[1:]
    assert fasting.details["observation_type"] == "AOE" and fasting.value == "Yes"
    assert chol.details["method"] == {"code": "0278", "system": "99METH",
                                      "display": "Enzymatique"}
    assert chol.details["equipment"] == {"id": "C702-1", "namespace": "ROCHE",
                                         "universal_id": "1.2.250.1.999.7.9"}
    assert chol.details["observation_type"] == "RSLT"
    assert [m["code"] for m in ldl.details["method"]] == ["FRIEDEWALD", "CALC"]
    assert hdl.details["method"] == {"text": "Précipitation au PTA"}
    assert hdl.details["observation_type"] == "XYZ"
    assert "OBX[8]-29: observation type is none of HL7 table 0936 (tables/observation_types." \
           "csv): kept as sent" in nm.warnings
    plain = norm(oru(_obx(1, "NM", "2085-9^Cholestérol HDL^LN", "0.52", "g/L"))).entries[1]
    assert not {"method", "equipment", "observation_type"} & set(plain.details)


# A French LIS's urine culture, flat: no child OBR, each organism's count and antibiogram
# sent after it with its sub-id (OBX-4 '1', '1.1', '1.2'; '2', '2.1'...).
ECBU_OBR = ("OBR|1|CMD-5|24M0320-11^LABO-DEMO|ECBU^Examen cytobactériologique des urines^L|||"
            "202403200730|||||||||||||||202403211400|||F")
ECBU_1 = ("OBX|1|CWE|630-4^Bactérie identifiée^LN|1|112283007^Escherichia coli^SCT||||||F",
          "OBX|2|SN|564-5^Numération^LN|1.1|>^100000|{CFU}/mL^^UCUM|||||F",
          "OBX|3|ST|18862-3^Amoxicilline^LN|1.2|S||||||F",
          "OBX|4|ST|18906-8^Ciprofloxacine^LN|1.3|S||||||F")
ECBU_2 = ("OBX|5|CWE|630-4^Bactérie identifiée^LN|2|3092008^Staphylococcus aureus^SCT||||||F",
          "OBX|6|SN|564-5^Numération^LN|2.1|>^100000|{CFU}/mL^^UCUM|||||F",
          "OBX|7|ST|18862-3^Amoxicilline^LN|2.2|S||||||F",
          "OBX|8|ST|18906-8^Ciprofloxacine^LN|2.3|R||||||F")


def test_results_grouped_under_an_organism_by_sub_id_name_it():
    """OBX-4 groups a culture's results by organism ('1' the identification, '1.1' its
    count, '1.2' its antibiotics): each result of the group names its organism in
    details.isolate (as a CR-BIO's isolate organizer does), never the identification
    itself, and nothing outside a group (a result with no sub-id, another code family)."""
    nm = norm(oru("OBX|0|NM|LEUCO-U^Leucocytes^L|1|120|/mm3|<10|H|||F",
                  *ECBU_1, *ECBU_2, "OBX|9|ST|COM^Commentaire^L||Contamination probable"
                  "||||||F", order=(ORC, ECBU_OBR)))
    r = by_ref(nm)
    assert "isolate" not in r["OBX[5]"].details  # the cytology before the culture
    coli = {"code": "112283007", "system": "SNOMED-CT", "display": "Escherichia coli"}
    aureus = {"code": "3092008", "system": "SNOMED-CT", "display": "Staphylococcus aureus"}
    assert "isolate" not in r["OBX[6]"].details and "isolate" not in r["OBX[10]"].details
    assert [r[f"OBX[{i}]"].details["isolate"] for i in (7, 8, 9)] == [coli] * 3
    assert [r[f"OBX[{i}]"].details["isolate"] for i in (11, 12, 13)] == [aureus] * 3
    assert "isolate" not in r["OBX[14]"].details


def test_the_second_organisms_antibiogram_is_not_taken_for_the_firsts(ctx):  # noqa: ANN001
    """Through the store: the culture sent when E. coli is identified, then again when
    S. aureus is: S. aureus's 'amoxicillin S' has a key of its own but the same code, time
    and value as E. coli's, and was taken for the same fact (dedupe level 4): it was not
    filed, a link on E. coli's result stood for it."""
    from dataclasses import replace

    from pipelines.intake import Received, intake
    from pipelines.process import drain
    from pipelines.report import show_dossier, show_import
    from tests.test_lab_normalizer import MSH

    ctx.settings = replace(ctx.settings, auto_create=True)
    first = oru(*ECBU_1, order=(ORC, ECBU_OBR.replace("|||F", "|||P")))
    second = oru(*ECBU_1, *ECBU_2, order=(ORC, ECBU_OBR),
                 header=MSH.replace("MSG-0001", "MSG-0002"))
    ids = []
    for sent in (first, second):
        ids += intake(ctx.engine, ctx.archive, [Received(data=sent.encode(), source="demo-lab",
                                                         channel="file")])[0].message_ids
        drain(ctx)
    assert [show_import(ctx.engine, i)["status"] for i in ids] == ["deposited", "deposited"]
    patient = show_import(ctx.engine, ids[0])["patient_id"]
    entries = show_dossier(ctx.engine, str(patient))["entries"]
    amox = [e for e in entries if e["code"] == "18862-3"]
    assert len(amox) == 2
    assert sorted(e["key"].split("|")[5] for e in amox) == ["1.2", "2.2"]


def _seg(name: str, **fields: str) -> str:
    """A segment with fields set by number (f17='...'), the others empty."""
    top = max(int(k[1:]) for k in fields)
    values = [""] * (top + 1)
    for k, said in fields.items():
        values[int(k[1:])] = said
    return name + "|" + "|".join(values[1:])


def test_specimen_collection_time_is_a_range_of_timestamps():
    """SPM-17 is a DR (start ^ end), each a TS whose time and degree of precision are
    subcomponents: '20240315080500&S' (IHE LAB-TF's examples) failed the whole message
    HL7_BAD_DATE; a range sent with its end alone ('^20240315081000') dated nothing."""
    obr = _seg("OBR", f1="1", f2="CMD-1", f3="24C0315-30^LABO-LTW",
               f4="2345-7^Glucose^LN", f25="F")
    obx = "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L|3.9-5.8|N|||F"
    spm = _seg("SPM", f1="1", f4="119364003^Sérum^SCT",
               f17="20240315080500&S^20240315081000&S", f18="20240315090000")
    nm = norm(oru(obx, spm, header=MSH251, order=(ORC, obr)))
    assert [e.effective for e in nm.entries] == ["2024-03-15T08:05:00+01:00"] * 2
    end_only = spm.replace("20240315080500&S^20240315081000&S", "^20240315081000")
    nm = norm(oru(obx, end_only, header=MSH251, order=(ORC, obr)))
    assert nm.entries[1].specimen_time == "2024-03-15T08:10:00+01:00"
    with pytest.raises(NormalizationError) as exc:
        norm(oru(obx, spm.replace("20240315080500&S", "15/03/2024"), header=MSH251,
                 order=(ORC, obr)))
    assert (exc.value.code, exc.value.location) == ("HL7_BAD_DATE", "SPM[6]-17")


def test_a_rejected_or_haemolysed_specimen_is_said_on_the_report_and_results():
    """SPM-21 (reject reason, table 0490) and SPM-24 (specimen condition, table 0493): an
    order cancelled because its tube broke said no why; a potassium measured on a
    haemolysed serum (falsely high) read like any other."""
    obr = _seg("OBR", f1="1", f2="CMD-1", f3="24C0315-31^LABO-LTW",
               f4="24326-1^Ionogramme^LN", f7="20240315080000", f25="F")
    spm = _seg("SPM", f1="1", f4="119364003^Sérum^SCT", f17="20240315080000",
               f24="HEM^Hémolysé^HL70493")
    nm = norm(oru("OBX|1|NM|2823-3^Potassium^LN||5.9|mmol/L|3.5-5.1|H|||F", spm,
                  header=MSH251, order=(ORC, obr)))
    report, k = nm.entries
    said = [{"code": "HEM", "system": "HL70493", "display": "Hémolysé"}]
    assert report.details["specimen_condition"] == k.details["specimen_condition"] == said
    cancelled = _seg("OBR", f1="1", f2="CMD-1", f3="24C0315-32^LABO-LTW",
                     f4="2823-3^Potassium^LN", f7="20240315080000", f25="X")
    broken = _seg("SPM", f1="1", f4="119364003^Sérum^SCT", f17="20240315080000", f20="N",
                  f21="RB^Tube cassé^HL70490~Quantité insuffisante")
    report = norm(oru(broken, header=MSH251, order=(ORC, cancelled))).entries[0]
    assert report.status == "cancelled"
    assert report.details["specimen_rejected"] == [
        {"code": "RB", "system": "HL70490", "display": "Tube cassé"},
        {"text": "Quantité insuffisante"}]
    plain = norm(oru("OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.1|N|||F",
                     _seg("SPM", f1="1", f4="119364003^Sérum^SCT"), header=MSH251))
    assert not {"specimen_condition", "specimen_rejected"} & set(plain.entries[1].details)


MSH28 = MSH251.replace("|2.5.1|", "|2.8|").replace("LAB-3^IHE", "")


def test_performers_named_by_prt_segments_of_v27_senders():
    """v2.7+ name who took part in PRT segments (table 0912) instead of OBX-15/16/23 and
    OBR-32: the laboratory a test was sent out to (PO) after its OBX, the biologist who
    validated it (RO), the report's interpreter (PI) after the OBR. Read from the old fields
    only, a v2.8 lab's results had no performer and a subcontracted test looked done
    in-house. The old fields, when sent, keep winning as before; the CI-SIS sender (SB) is
    no performer of a result."""
    obr = _seg("OBR", f1="1", f2="CMD-1", f3="24C0315-40^LABO-LTW",
               f4="24326-1^Ionogramme^LN", f7="20240315080000", f25="F")
    pi = _seg("PRT", f2="AD", f4="PI^Primary Interpreter^HL70912",
              f5="10003791976^LAGARDE^Bérénice^^^DR^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO")
    po = _seg("PRT", f2="AD", f4="PO^Performing Organization^HL70912",
              f8="LABORATOIRE CERBA^L^^^^ASIP-SANTE-ST&1.2.250.1.71.4.2.2&ISO^FINEG^^^"
                 "950010019")
    ro = _seg("PRT", f2="AD", f4="RO^Responsible Observer^HL70912",
              f5="10003791984^DURAND^Julie^^^DR")
    sb = _seg("PRT", f2="AD", f4="SB^Send by^HL70912", f5="^SECRETARIAT^Anne")
    nm = norm(oru(pi,
                  "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.1|N|||F", ro,
                  "NTE|1|L|Contrôlé sur un second tube",
                  "OBX|2|NM|1751-7^Albumine^LN||41|g/L|35-50|N|||F", po, ro,
                  "OBX|3|NM|2951-2^Sodium^LN||140|mmol/L|136-145|N|||F", sb,
                  _obx(4, "NM", "2075-0^Chlorure^LN", "101", "mmol/L",
                       f23="LABO DEMO^L^^^^&1.2.250.1.71.4.2.2&ISO^FINEG^^^750000001"), po,
                  header=MSH28, order=(ORC, obr)))
    report, k, alb, na, cl = nm.entries
    assert report.performer == "DR Bérénice LAGARDE"
    assert (k.performer, k.details["comments"]) == ("DR Julie DURAND",
                                                    ["Contrôlé sur un second tube"])
    assert alb.performer == "LABORATOIRE CERBA"
    assert na.performer is None
    assert cl.performer == "LABO DEMO"  # OBX-23 sent: as before
    said = norm(oru("OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.1|N|||F", header=MSH28,
                    order=(ORC, obr.replace("|F", "|F" + "|" * 7 + "L07&DURAND&Julie"))))
    assert said.entries[0].performer == "Julie DURAND"  # OBR-32: as before


def test_sn_comparator_sent_in_the_num1_component():
    """Colony counts and MICs from LIS that shift the comparator one component ('^>^100000')
    or glue it to the number ('^<=0.25'): the whole message failed OBX_BAD_NUMBER. Read as
    the comparator and number they spell, with a warning; a ratio stays a ratio."""
    nm = norm(oru("OBX|1|SN|564-5^Numération^LN|1|^>^100000|{CFU}/mL^^UCUM|||||F",
                  "OBX|2|SN|18906-8^Ciprofloxacine CMI^LN|1|^<=0.25|mg/L||S|||F",
                  "OBX|3|SN|18864-9^Ampicilline CMI^LN|1|^≥^32|mg/L||R|||F",
                  "OBX|4|SN|5334-8^Rubéole IgG titre^LN||^1^:^128||||||F"))
    count, cipro, amp, titre = nm.entries[1:]
    assert (count.value, count.value_num, count.comparator) == (">100000", 100000.0, ">")
    assert (cipro.value, cipro.value_num, cipro.comparator) == ("<=0.25", 0.25, "<=")
    assert (amp.value_num, amp.comparator) == (32.0, ">=")
    assert (titre.value, titre.value_num) == ("1:128", None)
    assert "OBX[5]-5: SN comparator sent in the num1 component, read as comparator^num1" \
        in nm.warnings
    with pytest.raises(NormalizationError) as exc:  # a comparator and no number: as before
        norm(oru("OBX|1|SN|564-5^Numération^LN|1|^>^beaucoup|{CFU}/mL|||||F"))
    assert exc.value.code == "OBX_BAD_NUMBER"


def test_performer_named_by_prt_in_an_oul_too():
    """OUL^R22 (specimen first, v2.8): the PRT after an OBX names its performer as in an
    ORU; the specimen's condition goes to its orders' results."""
    oul = MSH28.replace("ORU^R01^ORU_R01", "OUL^R22^OUL_R22")
    nm = norm(oru(_seg("SPM", f1="1", f4="119364003^Sérum^SCT", f17="20240315080000",
                       f24="HEM^Hémolysé^HL70493"),
                  _seg("OBR", f1="1", f2="CMD-1", f3="24C0315-50^LABO-LTW",
                       f4="2823-3^Potassium^LN", f25="F"),
                  "ORC|RE|CMD-1|24C0315-50^LABO-LTW",
                  "OBX|1|NM|2823-3^Potassium^LN||5.9|mmol/L|3.5-5.1|H|||F",
                  _seg("PRT", f4="PO^Performing Organization^HL70912",
                       f8="LABORATOIRE CERBA"),
                  header=oul, order=()))
    k = nm.entries[1]
    assert (k.performer, k.specimen_time) == ("LABORATOIRE CERBA", "2024-03-15T08:00:00+01:00")
    assert k.details["specimen_condition"][0]["code"] == "HEM"


def test_the_biologist_who_validated_is_kept_with_their_rpps():
    """OBX-16 (or a PRT in role RO): the responsible observer, in France the biologist who
    validated the result, named with their RPPS. It was read only as the performer's name,
    and only when no organization (OBX-23) was named: who validated was lost."""
    rpps = "10003791984^DURAND^Julie^^^DR^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^L^^^RPPS"
    nm = norm(oru(_obx(1, "NM", "2823-3^Potassium^LN", "4.1", "mmol/L", f16=rpps,
                       f23="LABO DEMO^L^^^^&1.2.250.1.71.4.2.2&ISO^FINEG^^^750000001"),
                  _obx(2, "NM", "2951-2^Sodium^LN", "140", "mmol/L"),
                  _seg("PRT", f4="RO^Responsible Observer^HL70912", f5=rpps),
                  _obx(3, "NM", "2075-0^Chlorure^LN", "101", "mmol/L", f16="^MARTIN^Paul")))
    k, na, cl = nm.entries[1:]
    validated = {"name": "DR Julie DURAND", "id": {"id": "10003791984",
                                                  "authority": "1.2.250.1.71.4.2.1",
                                                  "type": "RPPS"}}
    assert (k.performer, k.details["responsible_observer"]) == ("LABO DEMO", validated)
    assert (na.performer, na.details["responsible_observer"]) == ("DR Julie DURAND", validated)
    assert (cl.performer, cl.details["responsible_observer"]) == ("Paul MARTIN",
                                                                 {"name": "Paul MARTIN"})


def test_the_performing_laboratory_keeps_its_identifier():
    """OBX-23 (and PRT-8 in role PO) name the laboratory that performed a test with its
    identifier: XON.10 under the authority XON.6 (a FINESS under the ANS structures' OID
    1.2.250.1.71.4.2.2, or its namespace ASIP-SANTE-ST), XON.7 its type. Only the name
    (XON.1) was kept: two 'LABO DEMO' of two towns were one laboratory."""
    prt = _seg("PRT", f4="PO^Performing Organization^HL70912",
               f8="LABORATOIRE CERBA^L^^^^ASIP-SANTE-ST^FINEG^^^950010019")
    nm = norm(oru(_obx(1, "NM", "2823-3^Potassium^LN", "4.1", "mmol/L",
                       f23="LABO DEMO^L^^^^&1.2.250.1.71.4.2.2&ISO^FINEG^^^750000001"),
                  _obx(2, "NM", "2951-2^Sodium^LN", "140", "mmol/L"), prt,
                  _obx(3, "NM", "2075-0^Chlorure^LN", "101", "mmol/L", f23="LABO DEMO"),
                  _obx(4, "NM", "1751-7^Albumine^LN", "41", "g/L",
                       f23="LABO ANCIEN^L^750000002")))
    k, na, cl, alb = nm.entries[1:]
    assert (k.performer, k.details["performing_organization"]) == ("LABO DEMO", {
        "name": "LABO DEMO", "id": {"id": "750000001", "authority": "1.2.250.1.71.4.2.2",
                                    "type": "FINEG"}})
    assert (na.performer, na.details["performing_organization"]) == ("LABORATOIRE CERBA", {
        "name": "LABORATOIRE CERBA", "id": {"id": "950010019", "authority": "ASIP-SANTE-ST",
                                            "type": "FINEG"}})
    assert cl.performer == "LABO DEMO" and "performing_organization" not in cl.details
    # XON.3, where v2.3 senders put the id (withdrawn since v2.5): kept too
    assert alb.details["performing_organization"] == {"name": "LABO ANCIEN",
                                                      "id": {"id": "750000002"}}
