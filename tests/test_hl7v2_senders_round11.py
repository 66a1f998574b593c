"""HL7v2 lab results, round 11: what senders we have not seen write that earlier rounds read
past (a CQ quantity carrying its own unit, TS with its v2.3 degree of precision, ISO 2022
charset switches inside a field, NTE-4 comment types), each written as such a sender writes it
(French lab traffic, invented patients) and checked against what must be filed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from normalizers.model import NormalizationError
from tests.test_lab_normalizer import norm

MSH = ("MSH|^~\\&|SIL-BIO|LABO-DEMO|DMP-INTAKE|GHT|20240315104500||ORU^R01^ORU_R01|{}|P|2.5"
       "|||||FRA|UNICODE UTF-8")
PID = "PID|1||LD-778^^^LABO-DEMO&1.2.250.1.999.42&ISO^PI||LEFÈVRE^Hélène^^^^^L||19790328|F"
ORC = "ORC|RE|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO"


def _obr(n: int, code: str, collected: str = "202403150810") -> str:
    return (f"OBR|{n}|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO|{code}|||{collected}"
            + "|" * 18 + "F")


def _oru(control_id: str, *segments: str, msh: str = MSH) -> str:
    return "\r".join([msh.format(control_id), PID, *segments]) + "\r"


# -- OBX-2 CQ: a quantity with its own unit ---------------------------------------------------
@pytest.mark.parametrize("value, obx6, number, unit", [
    ("5.4^mmol/L&&UCUM", "", 5.4, "mmol/L"),
    ("98^mg/dL&milligramme par décilitre&UCUM", "mg/dL^^UCUM", 98.0, "mg/dL"),
    ("78,5^µmol/l", "", 78.5, "umol/L"),
    ("4.1", "mmol/L", 4.1, "mmol/L"),
])
def test_a_composite_quantity_is_its_number_and_unit(value, obx6, number, unit):
    """CQ (v2.5 2.A.13): quantity ^ units, the units a CE in subcomponents ('5.4^mmol/L&&UCUM'),
    as US ELR 2.5.1 and v2.6+ engines type a quantity. It was kept as the text
    '5.4^mmol/L&&UCUM': no number, no unit, out of every trend and never the same result sent
    as NM. Read as the number and its unit (UCUM); OBX-6 may say the same unit again."""
    nm = norm(_oru("CQ-1", ORC, _obr(1, "BIO^Bilan^L"),
                   f"OBX|1|CQ|2345-7^Glucose^LN||{value}|{obx6}|3.9-5.8|N|||F"))
    result = nm.entries[1]
    assert (result.value_type, result.value_num, result.unit) == ("CQ", number, unit)
    assert result.value == value.split("^")[0]


def test_a_composite_quantity_whose_unit_obx6_contradicts_is_refused():
    """A CQ saying mg/dL and an OBX-6 saying g/L: which unit the number is in is not told."""
    with pytest.raises(NormalizationError) as exc:
        norm(_oru("CQ-2", ORC, _obr(1, "BIO^Bilan^L"),
                  "OBX|1|CQ|2345-7^Glucose^LN||98^mg/dL&&UCUM|g/L|||||F"))
    assert (exc.value.code, exc.value.location) == ("OBX_UNIT_CONFLICT", "OBX[5]-6")


def test_a_composite_quantity_that_is_no_number_is_refused():
    with pytest.raises(NormalizationError) as exc:
        norm(_oru("CQ-3", ORC, _obr(1, "BIO^Bilan^L"),
                  "OBX|1|CQ|2345-7^Glucose^LN||normal^mg/dL&&UCUM||||||F"))
    assert (exc.value.code, str(exc.value)) == (
        "OBX_BAD_NUMBER", "OBX[5]-5: not a number (value type CQ)")


# -- TS.2 degree of precision (v2.3 to v2.5, table 0529) --------------------------------------
@pytest.mark.parametrize("obr7, effective", [
    ("20240315000000^D", "2024-03-15"),
    ("202403151000^H", "2024-03-15T10+01:00"),
    ("20240315081000+0100^M", "2024-03-15T08:10+01:00"),
    ("20240315081012.25^S", "2024-03-15T08:10:12+01:00"),
    ("20240300000000^L", "2024-03"),
    ("20240315^S", "2024-03-15"),            # a degree finer than the value invents nothing
    ("202403150810^Q", "2024-03-15T08:10+01:00"),  # an unknown degree: the value as sent
])
def test_a_time_sent_with_its_degree_of_precision_keeps_that_precision(obr7, effective):
    """A v2.3.1 LIS pads every time to the second and says beside it how much of it holds
    (TS.2, HL7 table 0529: Y L D H M S): '20240315000000^D' is the 15th of March. Only the
    value was read, and the collection was filed at midnight, a time nobody measured."""
    nm = norm(_oru("TS2-1", ORC, _obr(1, "BIO^Bilan^L", collected=obr7),
                   "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.1|N|||F"))
    report, result = nm.entries
    assert (report.effective, result.effective) == (effective, effective)


def test_every_ts_of_a_result_honours_its_degree_of_precision():
    """OBX-14 and OBX-19 (TS), an OBX-5 of type TS, an SPM-17 start whose DTM and degree are
    subcomponents ('20240315000000&D', IHE LAB-TF's form) and a DR's ends."""
    nm = norm(_oru(
        "TS2-2", ORC, _obr(1, "BIO^Bilan^L", collected="202403150810"),
        "OBX|1|TS|33882-2^Date de prélèvement^LN||20240314000000^D||||||F|||202403150900^H"
        "|||||20240316120000^D",
        "OBX|2|DR|13362-9^Durée du recueil^LN||20240314080000&H^20240315080000&H||||||F",
        "SPM|1|||BLD^Sang^HL70487|||||||||||||20240315000000&D"))
    report, taken, period = nm.entries
    assert (taken.value, taken.effective, taken.issued) == (
        "2024-03-14", "2024-03-15T09+01:00", "2024-03-16")
    assert period.value == "2024-03-14T08+01:00/2024-03-15T08+01:00"
    assert taken.specimen_time == "2024-03-15"


# -- ISO 2022 character set switches inside a field (v2.5 2.7.4) ------------------------------
def _read(raw: bytes):
    from normalizers.lab import normalize_message
    from parsers.hl7v2 import parse_message

    msg = parse_message(raw)
    return msg, normalize_message(msg, "demo-lab")


def _jis(text: str) -> str:
    """``text`` as JIS X 0208 7-bit bytes written in an HL7 field (its '\\' and '|' escaped)."""
    pairs = text.encode("iso2022_jp")[3:-3].decode("ascii")
    return pairs.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\")


def test_a_switch_to_latin9_in_a_latin1_message_reads_its_text():
    """MSH-18 '8859/1~ISO IR203': latin-1, with Latin-9 (ISO-IR 203) switched to where
    latin-1 lacks a character. After '\\C2D62\\' the byte 0xBD is 'œ', not latin-1's '½';
    the switch was dropped and the comment filed as 'c½ur' without a word."""
    msh = MSH.replace("UNICODE UTF-8", "8859/1~ISO IR203")
    sent = _oru("ISO2022-1", ORC, _obr(1, "BIO^Bilan^L"),
                "OBX|1|ST|8251-1^Aspect^LN||Prélevé au \\C2D62\\c\xbdur\\C2D41\\ du caillot"
                "||||||F", msh=msh)
    msg, nm = _read(sent.encode("latin-1"))
    assert nm.entries[1].value == "Prélevé au cœur du caillot"
    assert not any("HL7_CHARSET_SWITCH" in w for w in msg.warnings)


def test_a_switch_to_jis_x_0208_reads_the_japanese_it_carries():
    """'\\M2442\\' (ESC $ B, ISO-IR 87) then 7-bit pairs, '\\C2842\\' back to ASCII, as
    Japanese HL7 senders write a name; the pairs hold '\\' and '|', which are escaped and are
    bytes of the text. Dropping the switches left the pairs as ASCII garbage ('F|K\\')."""
    sent = _oru("ISO2022-2", ORC, _obr(1, "BIO^Bilan^L"),
                f"OBX|1|ST|8251-1^Aspect^LN||Prélevé par \\M2442\\{_jis('日本')}\\C2842\\ "
                "(infirmière)||||||F")
    msg, nm = _read(sent.encode("utf-8"))
    assert nm.entries[1].value == "Prélevé par 日本 (infirmière)"
    assert not any("HL7_CHARSET_SWITCH" in w for w in msg.warnings)


@pytest.mark.parametrize("switch, run, said", [
    ("\\M242842\\", "0!", "a character set not read here (iso2022_escapes.csv)"),
    ("\\M2442\\", "café", "the text after it is no JIS X 0208 (G0) text"),
])
def test_a_switch_we_cannot_read_is_kept_as_sent_and_said_at_its_field(switch, run, said):
    """A switch to a set we do not read (JIS X 0213 plane, ESC $ ( B... here '\\M242842\\'),
    or text that is none in the set switched to: the text stays as sent, switch included,
    never read as other characters, and the import says so at the field (no text quoted)."""
    sent = _oru("ISO2022-3", ORC, _obr(1, "BIO^Bilan^L"),
                f"OBX|1|ST|8251-1^Aspect^LN||Voir {switch}{run}||||||F")
    msg, nm = _read(sent.encode("utf-8"))
    assert nm.entries[1].value == f"Voir {switch}{run}"
    code = switch.strip("\\")
    assert f"HL7_CHARSET_SWITCH: OBX[5]-5: ISO 2022 switch \\{code}\\: {said}, kept as sent" \
        in msg.warnings


def test_escapes_that_are_no_switch_read_as_before():
    """'\\S\\' before a 'C' ('Na\\S\\Cl') is no switch; '\\Zlocal\\' is a local sequence
    (no text); '\\C2D41\\' in a UTF-8 message has its characters already."""
    sent = _oru("ISO2022-4", ORC, _obr(1, "BIO^Bilan^L"),
                "OBX|1|ST|8251-1^Aspect^LN||Na\\S\\Cl\\Zlocal\\ \\C2D41\\hémolysé||||||F")
    msg, nm = _read(sent.encode("utf-8"))
    assert nm.entries[1].value == "Na^Cl hémolysé"
    assert msg.warnings == []


_KANJI = "日本語検査結果血液尿採取病院医師看護師山田花子佐藤太郎あいうえおカタカナ"


@given(st.text(alphabet=_KANJI, min_size=1, max_size=12))
@settings(max_examples=60, deadline=None)
def test_property_japanese_written_as_jis_switches_reads_back(name):
    """Any JIS X 0208 text written as a Japanese sender does (ESC $ B switch, 7-bit pairs with
    the delimiters among them escaped, back to ASCII) unescapes to that text."""
    from parsers.hl7v2.er7 import Delimiters
    from parsers.hl7v2.escape import unescape

    assert unescape(f"Dr \\M2442\\{_jis(name)}\\C2842\\ (CHU)", Delimiters()) == \
        f"Dr {name} (CHU)"


# -- NTE-4 comment type (table 0364) ----------------------------------------------------------
def test_the_type_of_each_comment_is_kept_beside_it():
    """NTE-4 (CE, table 0364, v2.4+) says what a note is: a remark on the result (RE), an
    instruction for the patient (PI), the reason the test was ordered (1R). It was dropped,
    and 'à jeun pour le prochain bilan' read as a remark on the potassium. The comments stay
    as they were; their types are kept beside them, the display from table 0364 when the
    sender gave the code alone; a note without NTE-4 has none."""
    nm = norm(_oru("NTE4-1", ORC, _obr(1, "BIO^Bilan^L"),
                   "NTE|1|L|Bilan de contrôle après traitement.|1R",
                   "OBX|1|NM|2823-3^Potassium^LN||5.9|mmol/L|3.5-5.1|H|||F",
                   "NTE|1|L|Résultat contrôlé sur un second prélèvement.|RE^Remarque^HL70364",
                   "NTE|2|L|Venir à jeun pour le prochain bilan.|PI",
                   "NTE|3|L|Hémolyse légère."))
    report, potassium = nm.entries
    assert potassium.details["comments"] == [
        "Résultat contrôlé sur un second prélèvement.", "Venir à jeun pour le prochain bilan.",
        "Hémolyse légère."]
    assert potassium.details["comment_types"] == [
        {"text": "Résultat contrôlé sur un second prélèvement.", "code": "RE",
         "display": "Remarque", "system": "HL70364"},
        {"text": "Venir à jeun pour le prochain bilan.", "code": "PI",
         "display": "Patient Instructions"}]
    assert report.details["comment_types"] == [
        {"text": "Bilan de contrôle après traitement.", "code": "1R",
         "display": "Primary Reason"}]


# -- CWE.14 / CWE.17: the coding system named by its OID (v2.7+) ------------------------------
def test_a_code_whose_system_is_named_by_its_oid_alone_is_read_in_that_system():
    """v2.7 added CWE.14 (coding system OID) and CWE.17 (the alternate's); FHIR-minded engines
    fill them and leave CWE.3 empty: '2823-3^Potassium^^^^^^^^^^^^2.16.840.1.113883.6.1'.
    The LOINC code was filed as a local code, unmapped, never the potassium of another
    channel. Read as the OID in CWE.3 is; a coded value keeps the system its OID names."""
    nm = norm(_oru("OID-1", ORC, _obr(1, "BIO^Bilan^L"),
                   "OBX|1|NM|2823-3^Potassium^^^^^^^^^^^^2.16.840.1.113883.6.1||4.1|mmol/L"
                   "|3.5-5.1|N|||F",
                   "OBX|2|CWE|5195-3^Antigène HBs^LN||260385009^Négatif^^NEG^Négatif^^^^^^^^^"
                   "2.16.840.1.113883.6.96^^^1.2.250.1.999.42.7||||||F"))
    potassium, hbs = nm.entries[1:]
    assert (potassium.code, potassium.system, potassium.mapped) == ("2823-3", "LN", True)
    coded = hbs.details["coded_value"]
    assert (coded["system"], coded["alt_system"]) == (
        "2.16.840.1.113883.6.96", "1.2.250.1.999.42.7")


# -- raw ISO 2022 switches (MSH-20 'ISO 2022-1994') --------------------------------------------
def _raw_iso2022(msh18: bytes) -> bytes:
    return (b"MSH|^~\\&|SIL|LABO-JP|DMP-INTAKE|GHT|20240315104500||ORU^R01^ORU_R01|JIS-1|P|2.5"
            b"|||||JPN|" + msh18 + b"||ISO 2022-1994\r"
            b"PID|1||LD-1^^^LABO-JP^PI||" + "山田".encode("iso2022_jp") + b"^Hanako||19790328|F\r"
            b"OBR|1|CMD-1|24C0315-07^LABO-JP|BIO^Bilan^L|||202403150810" + b"|" * 18 + b"F\r"
            b"OBX|1|ST|8251-1^Aspect^LN||" + "検査済".encode("iso2022_jp") + b"||||||F\r")


@pytest.mark.parametrize("msh18", [b"~ISO IR87", b"ISO IR6~ISO IR87", b"ASCII~ISO IR87"])
def test_raw_iso2022_switches_of_a_7bit_message_are_read(msh18):
    """v2.5 2.15.9.18/20: MSH-18's first repetition is the message's set (empty: ASCII), the
    others those ISO 2022 switches bring in, sent as raw ESC sequences (MSH-20 'ISO
    2022-1994'). Decoded as ASCII alone, the name and the value were filed as 'ESC $ B ;3ED'
    control garbage without a word; the message is now decoded as ISO 2022, as Japanese
    receivers do."""
    msg, nm = _read(_raw_iso2022(msh18))
    assert (msg.get("PID", 5), nm.entries[1].value) == ("山田", "検査済")
    assert msg.warnings == []


def test_raw_iso2022_switches_we_cannot_read_are_said_at_their_field():
    """An 8-bit message (8859/1) holding raw ESC switches: no codec reads latin-1 with JIS
    switched in. The text stays as sent, and the import says where (never what)."""
    msg, nm = _read(_raw_iso2022(b"8859/1~ISO IR87"))
    assert "\x1b" in nm.entries[1].value
    assert msg.warnings == [
        "HL7_CHARSET_SWITCH: PID[2]-5: 4 raw ISO 2022 escape(s) (ESC) that MSH-18 does not let "
        "us read (7-bit ASCII then the sets switched to, 'ISO IR6~ISO IR87'): the text after "
        "them is kept as sent"]
