"""ORU^R01 to lab entries: keys, typed values, units, codes, statuses, errors, corpus."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from normalizers.codes import load_mappings
from normalizers.lab import normalize_message, normalize_oru
from normalizers.model import (
    ACTION_DELETE,
    ACTION_NEW,
    ACTION_REPLACE,
    DOCUMENT,
    LAB_REPORT,
    LAB_RESULT,
    NormalizationError,
)
from parsers.hl7v2.er7 import parse_text
from tests.conftest import CORPUS

MAPS = load_mappings(None)
NIR = "279035121518989"  # ANS test INS (valid key)

MSH = ("MSH|^~\\&|SIL-BIO|LABO-DEMO|DMP-INTAKE|GHT|20240315104500||ORU^R01^ORU_R01|MSG-0001|"
       "P|2.5|||||FRA|UNICODE UTF-8")
PID = (f"PID|||LD-778^^^LABO-DEMO&1.2.250.1.999.42&ISO^PI~{NIR}^^^ASIP-SANTE-INS-NIR&"
       "1.2.250.1.213.1.4.10&ISO^INS||LEFÈVRE-ÜNAL^Hélène^^^^^D~MARTIN^Hélène^^^^^L||19790328|F"
       + "|" * 24 + "VALI")
ORC = "ORC|RE|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO"
OBR = ("OBR|1|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO|BIOCHIMIE^Bilan biochimique^L|||"
       "202403150810|||||||||^MARTIN^Paul^^^DR||||||202403151045|||F|||||||"
       "L07&DURAND&Julie")
PDF = base64.b64encode(b"%PDF-1.4\n% compte rendu n 1\n%%EOF\n").decode().rstrip("=")
assert len(PDF) % 4


def oru(*obx: str, header: str = MSH, pid: str = PID, order: tuple[str, ...] = (ORC, OBR),
        tail: tuple[str, ...] = ()) -> str:
    return "\r".join([header, pid, *order, *obx, *tail]) + "\r"


def norm(text: str, source: str = "demo-lab"):
    return normalize_message(parse_text(text), source, MAPS)


OBXS = (
    "OBX|1|NM|GLY^Glycémie à jeun^L||5.4|mmol/L|3.9-5.8|N|||F|||202403150810|||||202403151030"
    "||||LABO DEMO^^^^^&1.2.250.1.71.4.2.2&ISO^FINEG^^^750000001",
    "OBX|2|NM|CREA^Créatinine^L||78,5|µmol/l|45-84||||F",
    "OBX|3|SN|1988-5^CRP^LN||<^0.5|mg/L|<5||||F",
    "OBX|4|SN|5334-8^Rubéole IgG titre^LN||^1^:^128||||||F",
    "OBX|5|ST|GRP^Groupe sanguin^L||A Rh+ (positif)||||||F",
    "OBX|6|TX|COM^Commentaire^L||Prélèvement hémolysé.~À contrôler.||||||F",
    "OBX|7|CE|664-3^Gram stain^LN||POS^Positif^L||||||F",
    "OBX|8|DT|DDR^Date des dernières règles^L||20240201||||||F",
    "OBX|9|NM|LEUCO^Leucocytes^L^6690-2^Leukocytes^LN||7.2|G/L|4.0-10.0|N|||C",
    "OBX|10|NM|K^Potassium^L||6.1|mmol/L|3.5-5.1|H~A|||D",
    "OBX|11|NM|ZZZ^Analyse maison^99LAB||12|bidules/champ|||||X",
    "OBX|12|NM|XTRA^En cours^L||||||||I",
)


def test_report_and_results():
    nm = norm(oru(*OBXS, tail=("SPM|1|||BLD" + "|" * 13 + "202403150805",)))
    assert nm.logical_id == "SIL-BIO|LABO-DEMO|MSG-0001"
    report, *results = nm.entries
    assert report.type == LAB_REPORT and report.source_ref == "OBR[4]"
    assert report.key == "report|24C0315-07|LABO-DEMO|BIOCHIMIE"
    assert (report.code, report.system, report.mapped) == ("BIOCHIMIE", "L", False)
    assert report.effective == "2024-03-15T08:10+01:00"
    assert report.issued == "2024-03-15T10:45+01:00"
    assert report.specimen_time == "2024-03-15T08:05+01:00"  # SPM-17 wins over OBR-7
    assert report.status == "final" and report.performer == "Julie DURAND"
    assert report.details["ordering_provider"] == "DR Paul MARTIN"
    assert len(results) == 12 and all(r.type == LAB_RESULT for r in results)
    assert all(r.parent_key == report.key for r in results)
    by = {r.source_ref: r for r in results}

    gly = by["OBX[5]"]
    assert gly.key == "result|24C0315-07|LABO-DEMO|GLY|L|"
    assert (gly.code, gly.system, gly.mapped) == ("2345-7", "LN", True)  # demo-lab table
    assert gly.details["local_code"] == {"code": "GLY", "system": "L",
                                         "display": "Glycémie à jeun"}
    assert (gly.value, gly.value_num, gly.unit, gly.unit_original) == ("5.4", 5.4, "mmol/L",
                                                                        "mmol/L")
    assert (gly.reference_range, gly.interpretation, gly.status) == ("3.9-5.8", "N", "final")
    assert gly.effective == "2024-03-15T08:10+01:00"
    assert gly.issued == "2024-03-15T10:30+01:00"
    assert gly.performer == "LABO DEMO"

    crea = by["OBX[6]"]
    assert (crea.value_num, crea.unit, crea.unit_original) == (78.5, "umol/L", "µmol/l")
    assert any("OBX[6]-5" in w and "comma" in w for w in nm.warnings)
    assert crea.effective == report.effective  # OBX-14 absent: OBR-7

    crp = by["OBX[7]"]
    assert (crp.value, crp.comparator, crp.value_num, crp.system) == ("<0.5", "<", 0.5, "LN")
    titre = by["OBX[8]"]
    assert (titre.value, titre.value_num, titre.comparator) == ("1:128", None, None)
    assert by["OBX[9]"].value == "A Rh+ (positif)"
    assert by["OBX[10]"].value == "Prélèvement hémolysé.\nÀ contrôler."
    gram = by["OBX[11]"]
    assert gram.value == "Positif" and gram.details["coded_value"]["code"] == "POS"
    assert by["OBX[12]"].value == "2024-02-01"

    leuco = by["OBX[13]"]
    assert (leuco.code, leuco.system, leuco.unit) == ("6690-2", "LN", "10*9/L")
    assert leuco.key == "result|24C0315-07|LABO-DEMO|LEUCO|L|"  # key uses the code as sent
    assert (leuco.status, leuco.action, leuco.replaces_key) == ("corrected", ACTION_REPLACE,
                                                                leuco.key)
    k = by["OBX[14]"]
    assert (k.status, k.action, k.replaces_key, k.interpretation) == (
        "entered-in-error", ACTION_DELETE, k.key, "H,A")
    zzz = by["OBX[15]"]
    assert (zzz.code, zzz.system, zzz.mapped, zzz.status) == ("ZZZ", "99LAB", False, "cancelled")
    assert (zzz.unit, zzz.details["unit_unmapped"]) == ("bidules/champ", True)
    pending = by["OBX[16]"]
    assert (pending.value, pending.value_num, pending.status) == (None, None, "registered")
    assert all(r.action == ACTION_NEW for r in (gly, crea, crp, zzz))


def test_nothing_personal_in_warnings():
    nm = norm(oru(*OBXS))
    text = " ".join(nm.warnings)
    for secret in (NIR, "LEFÈVRE", "Hélène", "78,5", "1979"):
        assert secret not in text


@pytest.mark.parametrize(("obx", "code", "where"), [
    ("OBX|1|NM|GLY^Glycémie^L||cinq|mmol/L|||||F", "OBX_BAD_NUMBER", "OBX[5]-5"),
    ("OBX|1|NM|GLY^Glycémie^L||5.4.1|mmol/L|||||F", "OBX_BAD_NUMBER", "OBX[5]-5"),
    ("OBX|1|NM|GLY^Glycémie^L||nan|mmol/L|||||F", "OBX_BAD_NUMBER", "OBX[5]-5"),
    ("OBX|1|SN|GLY^Glycémie^L||≈^5|mmol/L|||||F", "OBX_BAD_NUMBER", "OBX[5]-5"),
    ("OBX|1|SN|GLY^Glycémie^L||<^abc|mmol/L|||||F", "OBX_BAD_NUMBER", "OBX[5]-5"),
    ("OBX|1|DT|DDR^DDR^L||20240230||||||F", "HL7_BAD_DATE", "OBX[5]-5"),
    ("OBX|1|NM|GLY^Glycémie^L||5|mmol/L|||||F|||2024031599", "HL7_BAD_DATE", "OBX[5]-14"),
    ("OBX|1|NM|^Glycémie^L||5|mmol/L|||||F", "OBX_NO_CODE", "OBX[5]-3"),
])
def test_errors_name_the_field_never_the_value(obx, code, where):
    with pytest.raises(NormalizationError) as exc:
        norm(oru(obx))
    assert exc.value.code == code and exc.value.location == where
    assert where in str(exc.value)
    for secret in ("cinq", "5.4.1", "abc", "20240230", "2024031599", NIR):
        assert secret not in str(exc.value)


def test_unknown_value_type_is_kept_as_text_with_a_warning():
    # before: filed as text without a word to the sender
    nm = norm(oru("OBX|1|XX|GLY^Glycémie^L||5,4|mmol/L|||||F"))
    assert nm.entries[-1].value == "5,4" and nm.entries[-1].value_num is None
    assert "OBX[5]-2: value type 'XX' is not an HL7 value type (table 0125): the value is " \
           "kept as text" in nm.warnings
    for known in ("ID", "IS", "HD", "CX"):
        nm = norm(oru(f"OBX|1|{known}|GLY^Glycémie^L||x||||||F"))
        assert not any("table 0125" in w for w in nm.warnings)


def test_empty_obx_3_says_what_is_missing():
    with pytest.raises(NormalizationError) as exc:
        norm(oru("OBX|1|NM|^Glycémie^L||5|mmol/L|||||F"))
    assert (exc.value.code, exc.value.location) == ("OBX_NO_CODE", "OBX[5]-3")
    # a name was sent, no code: said so (it read 'OBX-3 is empty', which the sender's
    # integrator, looking at '^Glycémie^L', could not understand)
    assert "OBX-3 holds a name but no code" in str(exc.value)
    assert "Glycémie" not in str(exc.value)
    with pytest.raises(NormalizationError) as exc:
        norm(oru("OBX|1|NM|||5|mmol/L|||||F"))
    assert "OBX-3 is empty" in str(exc.value)


def test_bad_obr_date_names_obr():
    bad = OBR.replace("202403150810", "20241315")
    with pytest.raises(NormalizationError) as exc:
        norm(oru(OBXS[0], order=(ORC, bad)))
    assert (exc.value.code, exc.value.location) == ("HL7_BAD_DATE", "OBR[4]-7")
    # the form expected, not only 'not a valid HL7 date/time'; never the value
    assert "YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ] expected" in str(exc.value)
    assert "20241315" not in str(exc.value)


def test_nm_with_comparator_is_accepted_with_warning():
    nm = norm(oru("OBX|1|NM|CRP^CRP^L||<0,5|mg/L|||||F"))
    r = nm.entries[1]
    assert (r.comparator, r.value_num, r.value) == ("<", 0.5, "<0,5")
    assert any("comparator" in w for w in nm.warnings)


def test_structural_errors():
    with pytest.raises(NormalizationError) as exc:
        norm(oru(OBXS[0], pid="ZZZ|1"))
    assert exc.value.code == "HL7_NO_PID"
    with pytest.raises(NormalizationError) as exc:
        norm(oru(order=(), tail=(OBXS[0],)))
    assert (exc.value.code, exc.value.location) == ("HL7_OBX_WITHOUT_OBR", "OBX[3]")
    assert str(exc.value).startswith("OBX[3]: observation before any OBR (each result")
    # an ADT is about one patient: a second one is refused (an ORU^R01 is split instead,
    # see the tests of several patients below)
    other = PID.replace("LD-778", "LD-999")
    adt = MSH.replace("ORU^R01^ORU_R01", "ADT^A08^ADT_A01")
    with pytest.raises(NormalizationError) as exc:
        norm("\r".join([adt, "EVN||20240315104500", PID, "PV1|1|O", other]) + "\r")
    assert (exc.value.code, exc.value.location) == ("HL7_MULTIPLE_PATIENTS", "PID[5]-3")
    no_order = "OBR|1|||GLY^Glycémie^L|||202403150810"
    with pytest.raises(NormalizationError) as exc:
        norm(oru(OBXS[0], order=(no_order,)))
    assert (exc.value.code, exc.value.location) == ("HL7_NO_ORDER_NUMBER", "OBR[3]-3")
    with pytest.raises(NormalizationError) as exc:
        norm(oru(OBXS[0], header=MSH.replace("MSG-0001", "")))
    assert exc.value.code == "HL7_NO_CONTROL_ID" and exc.value.location == "MSH-10"
    assert "acknowledgments and resends are matched on it" in str(exc.value)


def test_unsupported_type():
    # ADT^A30 (merge persons) is not applied: which dossier is which is an admin's call
    # (A43, an identifier move, is read since ADT round 20: tests/test_adt_round20.py;
    # the merges A40/A18 are read since identity round 6: tests/test_identity_round6.py;
    # the links A24 / A37 are accepted with no effect since ADT round 17)
    adt = MSH.replace("ORU^R01^ORU_R01", "ADT^A30^ADT_A30")
    with pytest.raises(NormalizationError) as exc:
        norm(oru(OBXS[0], header=adt))
    assert exc.value.code == "HL7_UNSUPPORTED_EVENT"  # ADT is read, its A30 is not (201)
    assert str(exc.value).startswith("message type ADT^A30 (merge person information) is "
                                     "not applied by this intake")


@pytest.mark.parametrize("msh9", ["", "^R01"])
def test_missing_message_type_says_so_rather_than_unsupported(msh9):
    # before: 'message type (none) is not handled by this intake', as if a type were refused
    with pytest.raises(NormalizationError) as exc:
        norm(oru(OBXS[0], header=MSH.replace("ORU^R01^ORU_R01", msh9)))
    assert (exc.value.code, exc.value.location) == ("HL7_UNSUPPORTED_TYPE", "MSH-9")
    assert str(exc.value).startswith("MSH-9 names no message type")


def test_same_patient_twice_is_fine_and_results_get_unique_keys():
    nm = norm(oru(OBXS[0], OBXS[0].replace("OBX|1", "OBX|2"), tail=(PID, ORC, OBR, OBXS[0])))
    keys = [e.key for e in nm.entries]
    assert len(keys) == len(set(keys))
    assert any(k.endswith("#2") for k in keys)


def test_v23_flat_oru_with_placer_only_and_no_obr25():
    text = ("MSH|^~\\&|LAB|HOPITAL|||20020215093000||ORU^R01|CNTRL-3456|P|2.3\r"
            "PID|||555-44-4444^^^HOPITAL^MR||DUPONT^Marie||19620320|F\r"
            "OBR|1|845439^HOPITAL||1554-5^GLUCOSE^LN|||200202150730\r"
            "OBX|1|NM|1554-5^GLUCOSE^LN||1.82|g/l|0.70-1.05|H|||F\r"
            "NTE|1||Patient non à jeun\r")
    nm = normalize_oru(parse_text(text), "any", MAPS)
    report, result = nm.entries
    assert report.key == "report|845439|HOPITAL|1554-5"
    assert report.status == "final"  # from the results when OBR-25 is absent
    assert (result.unit, result.value_num, result.effective) == ("g/L", 1.82,
                                                                 "2002-02-15T07:30+01:00")
    assert result.details["comments"] == ["Patient non à jeun"]


def test_pdf_report_in_oru_is_a_document_not_a_result():
    obx_pdf = f"OBX|2|ED|11502-2^CR d'examens biologiques^LN||^AP^PDF^Base64^{PDF}||||||F"
    nm = norm(oru(OBXS[0], obx_pdf))
    report, gly, doc = nm.entries
    assert doc.type == DOCUMENT and doc.parent_key == report.key
    assert doc.attachment.media_type == "application/pdf"
    assert doc.attachment.data.startswith(b"%PDF-1.4")
    assert doc.key == "document|24C0315-07|LABO-DEMO|2"
    assert any("padding" in w for w in nm.warnings)


@settings(max_examples=200)
@given(st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_any_decimal_number_parses(x):
    value = repr(float(x))
    if "e" in value or "inf" in value:
        value = f"{x:.6f}"
    nm = norm(oru(f"OBX|1|NM|GLY^Glycémie^L||{value}|mmol/L|||||F"))
    assert nm.entries[1].value_num == pytest.approx(float(value))


@settings(max_examples=200)
@given(st.text(alphabet=st.characters(blacklist_characters="|^~\\&\r\n", codec="utf-8"),
               min_size=1, max_size=12))
def test_garbage_numbers_fail_cleanly(value):
    text = oru(f"OBX|1|NM|GLY^Glycémie^L||{value}|mmol/L|||||F")
    try:
        nm = norm(text)
    except NormalizationError as exc:
        if exc.code == "OBX_UNIT_CONFLICT":
            # a number then a unit the table knows ('0S': 0 s, UCUM's case-insensitive
            # second) beside OBX-6 'mmol/L': refused as a conflict, naming OBX-6
            assert exc.location == "OBX[5]-6"
            return
        assert exc.code == "OBX_BAD_NUMBER" and exc.location == "OBX[5]-5"
        assert str(exc) == "OBX[5]-5: not a number (value type NM)"  # the value never shows
    else:
        # no value: blanks, or '""', HL7's explicit null (v2.5 2.5.3), read as empty; or
        # words saying why there is no number ('non', 'cf'), filed as text (round 18)
        result = nm.entries[1]
        assert result.value_num is not None or value.strip() in ("", '""') or (
            result.value_type == "ST" and result.details.get("value_type_sent") == "NM")


@pytest.mark.skipif(not (CORPUS / "intl" / "hl7v2").is_dir(), reason="shared corpus absent")
def test_corpus_fhir_converter_lab():
    text = (CORPUS / "intl" / "hl7v2" / "fhir-converter_LAB-ORU-1.hl7").read_text()
    nm = normalize_message(parse_text(text), "intl", MAPS)
    reports = [e for e in nm.entries if e.type == LAB_REPORT]
    results = [e for e in nm.entries if e.type == LAB_RESULT]
    assert len(reports) == 2 and len(results) == 10
    assert {r.unit for r in results if r.unit} == {"10*12/L", "%", "10*9/L"}
    assert all(r.specimen_time == "2014-10-06T05:35+02:00" for r in results)
    pending = [r for r in results if r.value is None]
    assert len(pending) == 2 and all(r.status == "registered" for r in pending)


@pytest.mark.skipif(not (CORPUS / "intl" / "hl7v2").is_dir(), reason="shared corpus absent")
def test_corpus_python_hl7_sample():
    text = (CORPUS / "intl" / "hl7v2" / "python-hl7_sample_hl7.hl7").read_text()
    nm = normalize_message(parse_text(text), "intl", MAPS)
    sn = nm.entries[1]
    assert (sn.value_num, sn.unit, sn.reference_range) == (182.0, "mg/dL", "70_105")
    assert nm.identity.birth_date == ""  # '196203520' is not a date


# -- several patients in one ORU^R01 (PATIENT_RESULT repeated) ----------------------------------
NIR_2 = "188102B17295165"  # Corsican department, valid key
PID_2 = (f"PID|||LD-900^^^LABO-DEMO&1.2.250.1.999.42&ISO^PI~{NIR_2}^^^ASIP-SANTE-INS-NIR&"
         "1.2.250.1.213.1.4.10&ISO^INS||DUPONT^Jean^^^^^L||19881002|M" + "|" * 24 + "VALI")
PID_3 = "PID|||LD-901^^^LABO-DEMO&1.2.250.1.999.42&ISO^PI||ROUX^Anne^^^^^L||19500101|F"
ORC_2 = "ORC|RE|CMD-2^SERVICE-NEPHRO|24C0315-08^LABO-DEMO"
OBR_2 = OBR.replace("CMD-1", "CMD-2").replace("24C0315-07", "24C0315-08")
ORC_3 = "ORC|RE|CMD-3^SERVICE-NEPHRO|24C0315-09^LABO-DEMO"
OBR_3 = OBR.replace("CMD-1", "CMD-3").replace("24C0315-07", "24C0315-09")


def _whose(nm) -> list[tuple[str, str, list[str]]]:  # noqa: ANN001
    """(PID location, INS, keys of the entries) of each patient of ``nm``."""
    out, start = [], 0
    for part in nm.patients:
        keys = [e.key for e in nm.entries[start:start + part.entries]]
        out.append((part.location, part.identity.ins[0].nir if part.identity.ins else "",
                    keys))
        start += part.entries
    assert start == len(nm.entries)
    return out


def test_two_patients_are_two_parts_each_with_its_own_entries():
    text = oru(OBXS[0], OBXS[1], tail=(PID_2, ORC_2, OBR_2, OBXS[2]))
    nm = norm(text)
    assert nm.identity.ins == [] and nm.identity.local_ids == []  # nothing to file on
    assert _whose(nm) == [
        ("PID[2]", NIR, ["report|24C0315-07|LABO-DEMO|BIOCHIMIE",
                         "result|24C0315-07|LABO-DEMO|GLY|L|",
                         "result|24C0315-07|LABO-DEMO|CREA|L|"]),
        ("PID[7]", NIR_2, ["report|24C0315-08|LABO-DEMO|BIOCHIMIE",
                           "result|24C0315-08|LABO-DEMO|1988-5|LN|"])]
    # provenance points into the message as received
    assert [e.source_ref for e in nm.entries] == ["OBR[4]", "OBX[5]", "OBX[6]", "OBR[9]",
                                                  "OBX[10]"]
    # each part is what the patient's message alone would give (same keys, same values)
    alone = norm(oru(OBXS[2], pid=PID_2, order=(ORC_2, OBR_2)))
    mine = nm.entries[3:]
    assert [(e.key, e.value, e.unit, e.effective, e.code) for e in mine] == \
        [(e.key, e.value, e.unit, e.effective, e.code) for e in alone.entries]


def test_three_patients_and_the_same_pid_repeated():
    # a PID repeated with the same PID-3 is still the same patient (PID[6]), as before
    text = oru(OBXS[0], tail=(PID, ORC, OBR.replace("24C0315-07", "24C0315-17"), OBXS[1],
                              PID_2, ORC_2, OBR_2, OBXS[2], PID_3, ORC_3, OBR_3, OBXS[4]))
    nm = norm(text)
    whose = _whose(nm)
    assert [(w[0], w[1], len(w[2])) for w in whose] == [("PID[2]", NIR, 4),
                                                         ("PID[10]", NIR_2, 2),
                                                         ("PID[14]", "", 2)]
    assert nm.patients[2].identity.local_ids[0].value == "LD-901"


def test_same_order_number_for_two_patients_gives_the_same_keys_as_apart():
    # keys are unique within a patient's part, not across the message: the second patient's
    # result keeps the key it has alone (no '#2'), so a later correction finds it
    text = oru(OBXS[0], tail=(PID_2, ORC, OBR, OBXS[0]))
    whose = _whose(norm(text))
    assert whose[0][2] == whose[1][2]
    assert not any("#" in k for _, _, keys in whose for k in keys)


def test_notes_stay_with_their_patient():
    text = oru(OBXS[0], "NTE|1||sous AVK", tail=(
        PID_2, "NTE|1||patient à jeun", ORC_2, OBR_2, "NTE|1||urgent", OBXS[2],
        "NTE|1||contrôlé"))
    nm = norm(text)
    first, second = nm.entries[:2], nm.entries[2:]
    assert first[1].details["comments"] == ["sous AVK"]
    assert "patient_comments" not in first[0].details
    assert second[0].details["patient_comments"] == ["patient à jeun"]
    assert second[0].details["comments"] == ["urgent"]
    assert second[1].details["comments"] == ["contrôlé"]


def test_a_patient_without_results_is_left_out_with_a_warning():
    # PID_2 with no order: nothing to file for them; the message is about one patient
    nm = norm(oru(OBXS[0], tail=(PID_2, "PV1|1|O")))
    assert nm.patients is None and nm.identity.ins[0].nir == NIR
    assert len(nm.entries) == 2
    assert any(w.startswith("PID[6]: patient 2 of 2 has no result") for w in nm.warnings)
    # ... and with three, the two that have results are the parts
    nm = norm(oru(OBXS[0], tail=(PID_3, PID_2, ORC_2, OBR_2, OBXS[2])))
    assert [p.location for p in nm.patients] == ["PID[2]", "PID[7]"]
    assert any(w.startswith("PID[6]: patient 2 of 3 has no result") for w in nm.warnings)


def test_an_error_in_one_patient_fails_the_message_naming_it():
    bad = OBXS[1].replace("78,5", "beaucoup")
    with pytest.raises(NormalizationError) as exc:
        norm(oru(OBXS[0], tail=(PID_2, ORC_2, OBR_2, bad)))
    assert (exc.value.code, exc.value.location) == ("OBX_BAD_NUMBER", "OBX[9]-5")
    assert str(exc.value).startswith("patient 2 of 2 (PID[6]): OBX[9]-5")
    assert NIR_2 not in str(exc.value) and "DUPONT" not in str(exc.value)


def test_an_identity_that_cannot_be_read_fails_the_message_naming_it():
    too_long = PID_2.replace("DUPONT", "D" * 300)
    with pytest.raises(NormalizationError) as exc:
        norm(oru(OBXS[0], tail=(too_long, ORC_2, OBR_2, OBXS[2])))
    assert exc.value.code == "FIELD_TOO_LONG"
    assert str(exc.value).startswith("patient 2 of 2 (PID[6]): ")


def test_results_before_the_first_of_several_patients_are_refused():
    text = "\r".join([MSH, ORC, OBR, OBXS[0], PID, ORC_2, OBR_2, OBXS[1], PID_2, ORC_3,
                      OBR_3, OBXS[2]]) + "\r"
    with pytest.raises(NormalizationError) as exc:
        norm(text)
    assert (exc.value.code, exc.value.location) == ("HL7_RESULTS_WITHOUT_PATIENT", "ORC[2]")
    # with one patient, as before: the order before the PID is that patient's
    one = "\r".join([MSH, ORC, OBR, OBXS[0], PID]) + "\r"
    assert norm(one).identity.ins[0].nir == NIR


def test_only_r01_is_split():
    # ORU^R30 (point of care) has one PATIENT group: two patients stay refused
    r30 = MSH.replace("ORU^R01^ORU_R01", "ORU^R30^ORU_R30")
    with pytest.raises(NormalizationError) as exc:
        norm(oru(OBXS[0], header=r30, tail=(PID_2, ORC_2, OBR_2, OBXS[2])))
    assert exc.value.code == "HL7_MULTIPLE_PATIENTS"
