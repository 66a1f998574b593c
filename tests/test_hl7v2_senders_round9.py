"""HL7v2 lab results, round 9: what senders we have not seen write in the corners of the
standard (v2.7+ encoding characters, order identifiers coded in the alternate triplet,
results without a value type, Z segments anywhere), each written as such a sender writes
it (French lab traffic, invented patients) and checked against what must be filed."""

from __future__ import annotations

import pytest

from tests.test_lab_normalizer import norm

MSH = ("MSH|^~\\&|SIL-BIO|LABO-DEMO|DMP-INTAKE|GHT|20240315104500||ORU^R01^ORU_R01|{}|P|2.5"
       "|||||FRA|UNICODE UTF-8")
PID = "PID|1||LD-778^^^LABO-DEMO&1.2.250.1.999.42&ISO^PI||LEFÈVRE^Hélène^^^^^L||19790328|F"
ORC = "ORC|RE|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO"


def _obr(n: int, code: str, status: str = "F", filler: str = "24C0315-07") -> str:
    return (f"OBR|{n}|CMD-1^SERVICE-NEPHRO|{filler}^LABO-DEMO|{code}|||202403150810"
            + "|" * 18 + status)


def _oru(control_id: str, *segments: str, msh: str = MSH) -> str:
    return "\r".join([msh.format(control_id), PID, *segments]) + "\r"


# -- v2.7 truncation character ----------------------------------------------------------------
@pytest.mark.parametrize("msh2, version", [("^~\\&#", "2.7"), ("^~\\&#", "2.8.2"),
                                           ("^~\\&", "2.5")])
def test_an_escaped_truncation_character_is_that_character(msh2, version):
    """v2.7 2.7.1: \\P\\ is the truncation character MSH-2 declares in 5th place ('#'); a
    v2.7+ encoder escapes every '#' of a text that way ('Flacon \\P\\2'). It was read as
    '&': 'Flacon &2', 'Tube n&3'. The character it stands for, whatever the version; the
    5th encoding character splits nothing."""
    msh = MSH.replace("^~\\&", msh2).replace("|2.5|", f"|{version}|")
    nm = norm(_oru("TRUNC-1", ORC, _obr(1, "HC^Hémocultures^L"),
                   "OBX|1|ST|600-7^Germe^LN|1|Flacon \\P\\2 : Staphylococcus aureus||||||F",
                   "NTE|1||Tube n\\P\\3 \\T\\ n\\P\\4 reçus", msh=msh))
    germ = nm.entries[1]
    assert germ.value == "Flacon #2 : Staphylococcus aureus"
    assert germ.details["comments"] == ["Tube n#3 & n#4 reçus"]



@pytest.mark.parametrize("msh2, value, warned", [
    ("^~\\&#", "Anticorps anti-HLA de classe I et II détectés, voir le compte rendu d#", True),
    ("^~\\&#", "Lot \\P\\", False),  # a '#' of the text, escaped
    ("^~\\&", "Flacon #", False),  # no truncation character declared: a '#' is text
])
def test_a_text_cut_short_by_its_sender_is_said(msh2, value, warned):
    """v2.7 2.5.5.5: a sender that cuts a value longer than it can send ends it with the
    truncation character of MSH-2 ('#'). The comment was filed cut, as if whole, without a
    word. Filed as received, with a warning; an escaped '#' (\\P\\) or a '#' in a message
    declaring no truncation character is text."""
    msh = MSH.replace("^~\\&", msh2).replace("|2.5|", "|2.8|")
    nm = norm(_oru("CUT-1", ORC, _obr(1, "HLA^Recherche d'anticorps^L"),
                   f"OBX|1|TX|COM^Commentaire^L||{value}||||||F", msh=msh))
    said = [w for w in nm.warnings if "truncation character" in w]
    assert said == (["OBX[5]-5: the text ends with the truncation character MSH-2 declares: "
                     "the sender cut it short, filed as received"] if warned else [])
    assert nm.entries[1].value.endswith("#")


# -- OBR-4 coded in its alternate triplet only -----------------------------------------------
def test_an_order_coded_in_the_alternate_triplet_only_is_keyed_by_that_code():
    """OBR-4 '^^^24326-1^Électrolytes^LN' (a bridge that maps the LIS code to LOINC in the
    alternate triplet and leaves the first one empty): the report was coded by it, but its
    key had no code ('report|number|ns|'). Two panels under one filler number (French LIS
    number the sample, not the panel) were keyed by their rank in the message: when the
    electrolytes came alone in the final message, they took the haemogram's key and
    replaced its report. Keyed by the code, as OBX-3 is."""
    iono = _obr(2, "^^^24326-1^Électrolytes^LN", "P")
    first = norm(_oru("ALT-1", ORC, _obr(1, "^^^58410-2^NFS^LN", "P"),
                      "OBX|1|NM|718-7^Hémoglobine^LN||13.2|g/dL|12-16|N|||P", iono,
                      "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.1|N|||P"))
    final = norm(_oru("ALT-2", ORC, iono.replace("|P", "|F").replace("OBR|2", "OBR|1"),
                      "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.1|N|||F"))
    keys = [e.key for e in first.entries if e.type == "lab_report"]
    assert keys == ["report|24C0315-07|LABO-DEMO|58410-2",
                    "report|24C0315-07|LABO-DEMO|24326-1"]
    report = final.entries[0]
    assert (report.key, report.code, report.system) == (
        "report|24C0315-07|LABO-DEMO|24326-1", "24326-1", "LN")
    assert not any("same key" in w for w in first.warnings)


# -- OBX-2 left empty -------------------------------------------------------------------------
def test_a_value_with_components_and_no_value_type_is_read_by_its_components():
    """OBX-2 is required when OBX-5 is valued; v2.3 senders leave it out. A plain number was
    read as NM, anything else as ST: a coded Gram stain 'POS^Positif^L' was filed as the
    text 'POS^Positif^L' (no code, the sender's delimiters in the value), a CRP '<^0,5' as
    text, out of every trend. Components say CWE, or SN when a comparator (or nothing) comes
    before a number; said in a warning. Text and numbers without components as before; an
    ED's components (its type of encoding in the 4th) are the document it carries."""
    nm = norm(_oru("NOTYPE-1", ORC, _obr(1, "BIO^Bilan^L"),
                   "OBX|1||664-3^Coloration de Gram^LN||POS^Positif^L||||||F",
                   "OBX|2||1988-5^CRP^LN||<^0,5|mg/L|<5||||F",
                   "OBX|3||2345-7^Glucose^LN||^5.4|mmol/L|3.9-5.8||||F",
                   "OBX|4||5778-6^Couleur^LN||Jaune paille||||||F",
                   "OBX|5||2823-3^Potassium^LN||4.2|mmol/L|3.5-5.1||||F",
                   "OBX|6||11502-2^CR^LN||^AP^PDF^Base64^JVBERi0xLjQK||||||F"))
    gram, crp, glucose, colour, potassium, pdf = nm.entries[1:]
    assert (gram.value, gram.value_type, gram.details["coded_value"]) == (
        "Positif", "CWE", {"code": "POS", "display": "Positif", "system": "L"})
    assert (crp.value_type, crp.comparator, crp.value_num, crp.unit) == ("SN", "<", 0.5, "mg/L")
    assert (glucose.value_type, glucose.value_num) == ("SN", 5.4)
    assert (colour.value, colour.value_type) == ("Jaune paille", "ST")
    assert (potassium.value_type, potassium.value_num) == ("NM", 4.2)
    # an ED's shape is no coded value: it is the document it carries (stop 27; it was text,
    # the report's base64 filed as a result's value)
    assert (pdf.type, pdf.value, pdf.attachment.data) == ("document", None, b"%PDF-1.4\n")
    assert "OBX[5]-2: no value type, value with components read as CWE" in nm.warnings
    assert "OBX[6]-2: no value type, value with components read as SN" in nm.warnings


# -- line ends escaped as hex -----------------------------------------------------------------
@pytest.mark.parametrize("line_end", ["\\X0D\\", "\\X0D0A\\", "\\X0A\\", "\\X000d\\",
                                      "\\X000D000A\\", "\\.br\\"])
def test_a_line_end_escaped_in_a_text_is_a_line_end(line_end):
    """A comment of two lines, its line end escaped as engines do: '\\X0D\\' (a CR escaped
    as hex), '\\X0D0A\\' (a Windows sender), '\\X000d\\' (HAPI and IPF, the Java engines of
    IHE platforms, write a CR as its code point). '\\X000d\\' was kept as those 7 characters
    in the text; the others left a bare CR in it ('Ligne 1\\rLigne 2'), which a terminal
    prints over the line's start. Each is the '\\n' that \\.br\\ gives, in a result's text,
    in its NTE and in a value not filed (cancelled)."""
    nm = norm(_oru("EOL-1", ORC, _obr(1, "SERO^Sérologie^L"),
                   f"OBX|1|TX|COM^Commentaire^L||Sérologie de contrôle{line_end}"
                   f"à prévoir dans 3 semaines.||||||F",
                   f"NTE|1||Prélèvement reçu{line_end}à 18 h",
                   f"OBX|2|ST|22314-9^Hépatite A IgM^LN||Non fait{line_end}tube coagulé||||||X"))
    comment, cancelled = nm.entries[1:]
    assert comment.value == "Sérologie de contrôle\nà prévoir dans 3 semaines."
    assert comment.details["comments"] == ["Prélèvement reçu\nà 18 h"]
    assert cancelled.details["value_withheld"] == "Non fait\ntube coagulé"



# -- the hour repeated when summer time ends --------------------------------------------------
@pytest.mark.parametrize("sent_at, collected, expected", [
    # 27 October 2024, 02:30 for the second time (+01:00): the message sent at night
    ("20241027023000+0100", "202410270145", "2024-10-27T01:45+02:00"),
    ("20241027023000+0100", "202410270330", "2024-10-27T03:30+01:00"),
    ("20241027023000+0200", "202410270145", "2024-10-27T01:45+02:00"),
    ("20240715104500+0100", "202407150810", "2024-07-15T08:10+01:00"),  # a fixed +01:00 zone
])
def test_a_message_sent_in_the_repeated_hour_reads_its_times_in_paris(sent_at, collected,
                                                                      expected):
    """MSH-7 '20241027023000+0100': 02:30 Paris time, the second time that night (summer
    time ends at 03:00 +02:00, back to 02:00 +01:00). Only the first occurrence's offset
    was Paris's, so the sender was taken to be in a fixed +01:00 zone: the order drawn at
    01:45 (still summer time, +02:00) was filed an hour late. Either offset of that hour is
    Paris's; a +01:00 in July still says a sender elsewhere, as before."""
    msh = MSH.replace("20240315104500", sent_at)
    nm = norm(_oru("DST-1", ORC, _obr(1, "GLY^Glycémie^L").replace("202403150810", collected),
                   "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L|3.9-5.8|N|||F", msh=msh))
    assert [e.effective for e in nm.entries] == [expected, expected]



# -- a results message without any order -----------------------------------------------------
@pytest.mark.parametrize("body, said", [
    (["NTE|1||Résultats à suivre : sérologies en cours"], "; its 1 comment(s) (NTE) are not filed"),
    (["PV1|1|O", "ZFU|1|INTERNE"], ""),
])
def test_a_results_message_without_any_obr_says_it_files_nothing(body, said):
    """An ORU^R01 holding a PID and a comment but no OBR ('Résultats à suivre', a LIS
    telling the ward the results are coming), or a PID alone: 'deposited, 0 entries',
    without a word, the comment lost. Said, naming the PID and how many comments are not
    filed, never their text."""
    nm = norm(_oru("NO-OBR-1", *body))
    assert nm.entries == []
    assert nm.warnings == ["PID[2]: no OBR (observation request) in the message: no order, no "
                           f"result, nothing filed{said}"]
    assert not any("suivre" in w for w in nm.warnings)


# -- the header in lower case -----------------------------------------------------------------
def test_a_message_whose_header_is_in_lower_case_is_read_with_a_warning():
    """A sender writing every segment name in lower case ('msh|^~\\&|...', 'pid|', 'obx|'):
    its other segments were read (round 8), but the message was refused as no HL7 at all
    (UNKNOWN_FORMAT: 'text that is neither HL7v2...'), and its latin-1 MSH-18 was not read.
    Read as the header it names, said with the other names; the MLLP listener reads it to
    answer. An 'msh' after the first segment still starts no message (round 8)."""
    from normalizers.lab import normalize_message
    from parsers.detect import detect_format
    from parsers.hl7v2 import parse_message, split_batch
    from parsers.hl7v2.header import read_header
    from tests.test_lab_normalizer import MAPS

    lines = [MSH.format("LOW-MSH-1").replace("UNICODE UTF-8", "8859/1"), PID, ORC,
             _obr(1, "GLY^Glycémie^L"), "OBX|1|NM|2345-7^Glucose^LN||5,4|mmol/L|3,9-5,8|N|||F",
             "NTE|1||Prélevé à jeun"]
    data = "\r".join(s[:3].lower() + s[3:] for s in lines).encode("latin-1") + b"\r"
    header = read_header(b"\x0b" + data + b"\x1c\r")
    assert header is not None and header.get(10) == "LOW-MSH-1"
    assert detect_format(data) == "hl7v2"
    [one] = split_batch(data).messages
    msg = parse_message(one)
    assert msg.charset == "iso-8859-1" and not any("CHARSET" in w for w in msg.warnings)
    assert msg.warnings == ["HL7_SEGMENT_NAME_CASE: 6 segment name(s) not in upper case (msh, "
                            "pid, orc, obr, obx, nte) read as the segment they name"]
    glucose = normalize_message(msg, "demo-lab", MAPS).entries[1]
    assert (glucose.code, glucose.value_num, glucose.details["comments"]) == (
        "2345-7", 5.4, ["Prélevé à jeun"])
