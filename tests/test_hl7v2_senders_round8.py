"""HL7v2 lab results, round 8: message structures of senders we have not seen (batch files,
several patients in one ORU^R01, orders with and without ORC, comments and their owners,
parent and child orders, segment names in lower case, fragmented messages), each written as
such a sender writes it (French lab traffic, invented patients) and checked against what
must be filed: each result in its own patient's dossier, with its code, value and comments,
nothing invented and nothing dropped without a word."""

from __future__ import annotations

import pytest

from normalizers.model import NormalizationError
from tests.test_lab_normalizer import norm

V231 = ("MSH|^~\\&|SIL-V23|LABO-ANCIEN|DMP-INTAKE|GHT|20040315104500||ORU^R01|{}|P|2.3.1|||||"
        "FRA|8859/1")


def _order(n: int, glucose: str) -> list[str]:
    return [f"ORC|RE|CMD-{n}|04C0315-0{n}^LABO-ANCIEN",
            f"OBR|{n}|CMD-{n}|04C0315-0{n}^LABO-ANCIEN|GLY^Glycémie^L|||200403150810|||||||||||"
            "|||||||F",
            f"OBX|1|NM|2345-7^Glucose [Masse/Volume] Sérum^LN||{glucose}|mmol/L|3.9-5.8|N|||F"]


def _whose(nm) -> list[tuple[str, str, list[str]]]:  # noqa: ANN001
    """(PID location, family name, values of its results) of each patient of ``nm``."""
    out, start = [], 0
    for part in nm.patients:
        values = [e.value for e in nm.entries[start:start + part.entries]
                  if e.type == "lab_result"]
        out.append((part.location, part.identity.family, values))
        start += part.entries
    return out


# -- several patients in one ORU^R01 ---------------------------------------------------------
@pytest.mark.parametrize("pids", [
    # v2.3 senders that name the patient by PID-2 (external id), PID-3 left empty
    ("PID|1|EXT-111^^^LABO-ANCIEN|||DUPONT^Jean||19800101|M",
     "PID|2|EXT-222^^^LABO-ANCIEN|||MARTIN^Anne||19500202|F"),
    # by names and birth dates only
    ("PID|1||||DUPONT^Jean||19800101|M", "PID|2||||MARTIN^Anne||19500202|F"),
    # PID-3 explicitly null, PID-4 (alternate id) filled
    ('PID|1||""|ALT-1^^^LABO-ANCIEN|DUPONT^Jean||19800101|M',
     'PID|2||""|ALT-2^^^LABO-ANCIEN|MARTIN^Anne||19500202|F'),
])
def test_patients_without_pid3_are_told_apart_by_their_other_identifiers(pids):
    """Two PATIENT_RESULT groups were one patient whenever their PID-3 were equal, empty
    ones included: Anne MARTIN's glucose was filed in Jean DUPONT's dossier. Without PID-3,
    PID-2, PID-4 and the demographics say who is who."""
    nm = norm("\r".join([V231.format("MULTI-1"), pids[0], *_order(1, "5.4"), pids[1],
                         *_order(2, "7.9")]) + "\r")
    assert _whose(nm) == [("PID[2]", "DUPONT", ["5.4"]), ("PID[6]", "MARTIN", ["7.9"])]


def test_a_pid_repeated_for_the_same_patient_is_still_one_patient():
    """The same PID sent again before a second order (same PID-2, names, birth date) is the
    same patient, as with a PID-3: one part, both results."""
    pid = "PID|1|EXT-111^^^LABO-ANCIEN|||DUPONT^Jean||19800101|M"
    nm = norm("\r".join([V231.format("MULTI-2"), pid, *_order(1, "5.4"), pid,
                         *_order(2, "7.9")]) + "\r")
    assert not nm.patients
    assert [e.value for e in nm.entries if e.type == "lab_result"] == ["5.4", "7.9"]


def test_an_mdm_naming_two_patients_without_pid3_is_refused():
    """One patient by its structure (MDM, ADT, ORU^R30): two PIDs without PID-3 naming two
    people are refused, naming the field that tells them apart, never merged."""
    msh = V231.format("MDM-1").replace("ORU^R01", "MDM^T02")
    with pytest.raises(NormalizationError) as exc:
        norm("\r".join([msh, "EVN|T02|200403151045", "PID|1||||DUPONT^Jean||19800101|M",
                        "PID|2||||MARTIN^Anne||19500202|F",
                        "TXA|1|CR|TX|200403151045||||||||DOC-1||||||AU",
                        "OBX|1|TX|11502-2^CR^LN||Compte rendu||||||F"]) + "\r")
    assert (exc.value.code, exc.value.location) == ("HL7_MULTIPLE_PATIENTS", "PID[4]-5")
    assert "MARTIN" not in str(exc.value)


# -- segment names in lower case -------------------------------------------------------------
MSH25 = ("MSH|^~\\&|SIL-BIO|LABO-DEMO|DMP-INTAKE|GHT|20240315104500||ORU^R01^ORU_R01|{}|P|2.5"
         "|||||FRA|UNICODE UTF-8")
PID = ("PID|1||LD-778^^^LABO-DEMO&1.2.250.1.999.42&ISO^PI||LEFÈVRE^Hélène^^^^^L||19790328|F")
ORDER = ("ORC|RE|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO",
         "OBR|1|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO|BIO^Bilan biochimique^L|||"
         "202403150810||||||||||||||||||F")


@pytest.mark.parametrize("end", ["\r", "\n", "\r\n"])
def test_segment_names_in_lower_case_are_read_with_a_warning(end):
    """A sender writing 'obx|' and 'nte|' (HL7 names are upper case): with CR ends the whole
    message failed HL7_BAD_SEGMENT; with LF ends each such line was taken for a line break
    inside the OBR, whose status became 'F\\nobx|1|NM...' (unknown) and whose results were
    lost. They are the segments they name, said in a warning."""
    from parsers.hl7v2.er7 import parse_text

    text = end.join([MSH25.format("LOW-1"), PID, *ORDER,
                     "obx|1|NM|2345-7^Glucose^LN||5.4|mmol/L|3.9-5.8|N|||F",
                     "nte|1||À jeun depuis 12 h",
                     "Obx|2|NM|2160-0^Créatinine^LN||78|umol/L|45-84|N|||F",
                     "zbx|1|INTERNE"]) + end
    msg = parse_text(text)
    assert [s.name for s in msg.segments] == ["MSH", "PID", "ORC", "OBR", "OBX", "NTE", "OBX",
                                              "ZBX"]
    assert "HL7_SEGMENT_NAME_CASE: 4 segment name(s) not in upper case (obx, nte, Obx, zbx) " \
           "read as the segment they name" in msg.warnings
    nm = norm(text)
    report, glucose, creatinine = nm.entries
    assert report.status == "final"
    assert (glucose.code, glucose.value_num, glucose.details["comments"]) == (
        "2345-7", 5.4, ["À jeun depuis 12 h"])
    assert (creatinine.code, creatinine.value_num) == ("2160-0", 78.0)


def test_lower_case_segments_read_the_same_fields_as_python_hl7():
    """The fields of a segment named in lower case are those python-hl7 reads (it keeps the
    name as sent)."""
    import hl7

    from parsers.hl7v2.er7 import parse_text

    text = "\r".join([MSH25.format("LOW-2"), PID, *ORDER,
                      "obx|1|SN|1988-5^CRP^LN||<^0.5&x|mg/L~mg/l|<5||||F"])
    ours, ref = parse_text(text), hl7.parse(text)
    leaves = [(3, 1, 1, 1), (3, 1, 2, 1), (5, 1, 1, 1), (5, 1, 2, 1), (5, 1, 2, 2),
              (6, 1, 1, 1), (6, 2, 1, 1), (7, 1, 1, 1), (11, 1, 1, 1)]
    assert [ours.get("OBX", *leaf) for leaf in leaves] == [
        ref.extract_field("obx", 1, *leaf) for leaf in leaves]
    assert ours.get("OBX", 6, 2) == "mg/l"


def test_a_text_line_in_lower_case_stays_text():
    """Only a segment id of the standard (or a Z segment) followed by the field separator is
    read as a segment: a comment line broken by an LF ('non', 'voir|...') stays in the value;
    with LF ends, one line alone that looks like a segment in lower case is the last line of
    such a value ('Var' as in 'originaire du Var'); an unknown name after a CR still fails
    naming its place."""
    from parsers.hl7v2 import HL7ParseError
    from parsers.hl7v2.er7 import parse_text

    msg = parse_text("\n".join([MSH25.format("LOW-3"), PID, *ORDER,
                                "OBX|1|TX|COM^Commentaire^L||Hémolyse :", "non",
                                "voir|ci-dessous||||||F"]))
    assert [s.name for s in msg.segments][-1] == "OBX"
    assert msg.get("OBX", 5) == "Hémolyse :\nnon\nvoir"
    assert not any("SEGMENT_NAME_CASE" in w for w in msg.warnings)
    msg = parse_text("\n".join([MSH25.format("LOW-3"), PID, *ORDER,
                                "OBX|1|TX|COM^Commentaire^L||Patiente originaire du",
                                "Var||||||F", "NTE|1||fin"]))
    assert [s.name for s in msg.segments] == ["MSH", "PID", "ORC", "OBR", "OBX", "NTE"]
    assert (msg.get("OBX", 5), msg.get("OBX", 11)) == ("Patiente originaire du\nVar", "F")
    with pytest.raises(HL7ParseError) as exc:
        parse_text("\r".join([MSH25.format("LOW-4"), PID, "abc|1|x"]))
    assert (exc.value.code, exc.value.position) == ("HL7_BAD_SEGMENT", 3)
    with pytest.raises(HL7ParseError) as exc:  # a header in lower case is not a header
        parse_text("\r".join([MSH25.format("LOW-5"), PID, "msh|^~\\&|X"]))
    assert exc.value.code == "HL7_BAD_SEGMENT"


# -- orders, fragments ------------------------------------------------------------------------
def _oru(control_id: str, *segments: str) -> str:
    return "\r".join([MSH25.format(control_id), PID, *segments]) + "\r"


def test_an_order_control_without_its_obr_is_said_not_dropped():
    """An ORC with no OBR after it (a cancellation 'CA' sent alone, an ORC left behind by
    the sender's template before the next one) files nothing: it was dropped without a
    word. The orders that have their OBR are read as before, each under its own numbers."""
    nm = norm(_oru("ORC-1", "ORC|CA|CMD-9^SERVICE-NEPHRO|24C0315-09^LABO-DEMO", *ORDER,
                   "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L|3.9-5.8|N|||F",
                   "ORC|RE|CMD-2^SERVICE-NEPHRO|24C0315-08^LABO-DEMO"))
    assert [(e.type, e.key) for e in nm.entries] == [
        ("lab_report", "report|24C0315-07|LABO-DEMO|BIO"),
        ("lab_result", "result|24C0315-07|LABO-DEMO|2345-7|LN|")]
    assert [w for w in nm.warnings if "order control" in w] == [
        "ORC[3]: order control 'CA' without an OBR (observation request) after it: nothing "
        "filed for it",
        "ORC[7]: order control 'RE' without an OBR (observation request) after it: nothing "
        "filed for it"]
    plain = norm(_oru("ORC-2", *ORDER, "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L||N|||F",
                      "OBR|2|CMD-1|24C0315-10^LABO-DEMO|HEMO^NFS^L|||202403150810|||||||||"
                      "||||||||F", "OBX|1|NM|718-7^Hémoglobine^LN||13.2|g/dL||N|||F"))
    assert not any("order control" in w for w in plain.warnings)  # an ORC for two OBR


def test_a_fragment_of_a_continued_message_is_refused():
    """v2.5 2.10.2 continuation: a DSC with its continuation pointer says the rest comes in
    another message, an ADD (after the next fragment's MSH, MSH-14 naming the pointer) that
    it continues a segment of the earlier one. A value may be cut anywhere ('Compte rendu :
    s' + 'uite...'): read alone, the first fragment was filed as if whole. Both are refused,
    saying why; a DSC with DSC-1 empty is read past."""
    body = (*ORDER, "OBX|1|TX|11502-2^Compte rendu^LN||Compte rendu : s||||||F")
    with pytest.raises(NormalizationError) as exc:
        norm(_oru("FRAG-1", *body, "DSC|CONT-0001|F"))
    assert (exc.value.code, exc.value.location) == ("HL7_FRAGMENTED_MESSAGE", "DSC[6]-1")
    second = MSH25.format("FRAG-2").split("|")
    second[13] = "CONT-0001"  # MSH-14, the continuation pointer
    with pytest.raises(NormalizationError) as exc:
        norm("\r".join(["|".join(second), "ADD|uite du compte rendu.||||||F"]) + "\r")
    assert (exc.value.code, exc.value.location) == ("HL7_FRAGMENTED_MESSAGE", "ADD[2]")
    whole = norm(_oru("FRAG-3", *body, "DSC||"))
    assert whole.entries[1].value == "Compte rendu : s"


# -- OBR-25 against OBX-11 --------------------------------------------------------------------
def _obr(status: str, filler: str = "24C0315-07") -> str:
    return (f"OBR|1|CMD-1|{filler}^LABO-DEMO|BIO^Bilan biochimique^L|||202403150810"
            + "|" * 18 + status)


@pytest.mark.parametrize("obr25, obx11, value, warned", [
    ("X", "F", "5.4", "'X' (cancelled) disagrees with its results: 1 of 2 carry a value"),
    ("I", "P", "5.4", "'I' (registered) disagrees with its results: 1 of 2 carry a value"),
    ("F", "P", "5.4", "'F' (final) disagrees with its results: 1 of 2 are still preliminary"),
    ("C", "I", "", "'C' (corrected) disagrees with its results: 1 of 2 are still preliminary"),
    ("X", "X", "Tube coagulé", None),
    ("P", "F", "5.4", None),
    ("F", "F", "5.4", None),
])
def test_an_order_status_its_results_contradict_is_said(obr25, obx11, value, warned):
    """OBR-25 is the report's status, OBX-11 each result's: an order said canceled (X) or
    without result (I) beside a valued glucose, or final beside a preliminary one, was read
    past. Each result keeps its own status and value; the contradiction is a warning."""
    nm = norm(_oru("ST-1", ORDER[0], _obr(obr25),
                   f"OBX|1|NM|2345-7^Glucose^LN||{value}|mmol/L|3.9-5.8||||{obx11}",
                   "OBX|2|NM|2160-0^Créatinine^LN||||||||X"))
    report, glucose, creatinine = nm.entries
    assert report.status == {"X": "cancelled", "I": "registered", "F": "final",
                             "C": "corrected", "P": "preliminary"}[obr25]
    assert glucose.status == {"F": "final", "P": "preliminary", "I": "registered",
                              "X": "cancelled"}[obx11]
    assert creatinine.status == "cancelled"
    if obx11 in ("F", "P"):
        assert glucose.value_num == 5.4
    said = [w for w in nm.warnings if "disagrees" in w]
    if warned is None:
        assert not said
    else:
        assert len(said) == 1 and said[0].startswith(f"OBR[4]-25: the order's status {warned}")
        assert "5.4" not in said[0]


def test_the_diagnostic_service_section_of_each_order_is_kept():
    """OBR-24 (table 0074: MB microbiology, HM haematology...) says which bench reports the
    order; it was not read at all. Kept on each report as sent, and only there."""
    obr = ("OBR|{n}|CMD-1|24C0315-0{n}^LABO-DEMO|{code}|||202403150810" + "|" * 17
           + "{section}|F")
    nm = norm(_oru("SEC-1", ORDER[0],
                   obr.format(n=1, code="630-4^Culture urine^LN", section="MB"),
                   "OBX|1|CWE|600-7^Germe^LN|1|112283007^Escherichia coli^SCT||||||F",
                   obr.format(n=2, code="HEMO^NFS^L", section="HM"),
                   "OBX|1|NM|718-7^Hémoglobine^LN||13.2|g/dL|12-16|N|||F",
                   obr.format(n=3, code="GLY^Glycémie^L", section="")))
    reports = [e for e in nm.entries if e.type == "lab_report"]
    assert [r.details.get("service_section") for r in reports] == ["MB", "HM", None]
    assert not any("service_section" in e.details for e in nm.entries
                   if e.type == "lab_result")


# -- value types read as text with components -------------------------------------------------
def _with_delimiters(text: str, delimiters: str) -> str:
    """``text`` (written with |^~\\& and no escape) rewritten with other delimiters."""
    return text.translate(str.maketrans("|^~\\&", delimiters))


@pytest.mark.parametrize("delimiters", ["|^~\\&", "#!@$%", "|:~\\*"])
def test_composite_values_read_the_same_whatever_the_delimiters(delimiters):
    """An NA (numeric array: an ECG lead's samples), an MO (a price) and a CP, read as text
    with their components: unescaped whole, the value was written with the sender's own
    delimiters ('1.2!3.4!5.6' from a '#!@$%' sender), another value than the same result
    sent with ^. Written with the standard ones, whatever the sender's."""
    text = _oru("NA-1", *ORDER, "OBX|1|NA|ECG-II^Dérivation II^L||1.2^3.4^5.6|mV|||||F",
                "OBX|2|MO|FACT^Montant^L||12.50^EUR||||||F",
                "OBX|3|CP|PRIX^Prix^L||12.50&EUR^^1^10||||||F",
                "OBX|4|ID|SEXE^Sexe^L||F||||||F")
    nm = norm(_with_delimiters(text, delimiters))
    assert [e.value for e in nm.entries[1:]] == ["1.2^3.4^5.6", "12.50^EUR", "12.50&EUR^^1^10",
                                                 "F"]


def test_a_delimiter_escaped_inside_a_composite_value_stays_escaped():
    """'\\S\\' inside a component is a '^' of the text, not a component separator: written
    back escaped, it no longer reads as one more component. (An AD: since round 10 an XON
    is read as the organization's name, 'Bio & Co^Lyon'.)"""
    nm = norm(_oru("NA-2", *ORDER, "OBX|1|AD|LAB^Adresse^L||Bio \\T\\ Co\\S\\Lyon^L||||||F",
                   "OBX|2|XON|LAB^Laboratoire^L||Bio \\T\\ Co\\S\\Lyon^L||||||F"))
    assert nm.entries[1].value == "Bio \\T\\ Co\\S\\Lyon^L"
    assert nm.entries[2].value == "Bio & Co^Lyon"


# -- comments and what they are about ---------------------------------------------------------
def test_a_note_before_any_patient_is_the_messages_not_dropped():
    """OUL^R22/R24 have a message-level NTE (MSH [SFT] [NTE] [PATIENT]...), and ORU senders
    write one after their SFT: it was dropped without a word. Kept on each report as the
    message's comment, apart from the patient's and the order's."""
    oul = ("MSH|^~\\&|SIL-BIO|LABO-DEMO|DMP|GHT|20240315104500||OUL^R22^OUL_R22|OUL-1|P|2.5.1"
           "|||||FRA|UNICODE UTF-8")
    nm = norm("\r".join([oul, "SFT|Editeur SIL|5.2|SIL-BIO", "NTE|1||Envoi de nuit : "
                         "résultats validés par le biologiste de garde", PID,
                         "NTE|1||Patiente sous AVK", "SPM|1|S1&LABO||SER^Sérum^HL70487"
                         "|||||||||||||202403150800",
                         "OBR|1|CMD-1|24C0315-07^LABO-DEMO|INR^INR^L" + "|" * 21 + "F",
                         "ORC|RE|CMD-1|24C0315-07^LABO-DEMO", "NTE|1||Contrôle à J+2",
                         "OBX|1|NM|6301-6^INR^LN||2.8||2-3|N|||F"]) + "\r")
    report, inr = nm.entries
    assert report.details["message_comments"] == [
        "Envoi de nuit : résultats validés par le biologiste de garde"]
    assert report.details["patient_comments"] == ["Patiente sous AVK"]
    assert report.details["comments"] == ["Contrôle à J+2"]
    assert (inr.value_num, "comments" in inr.details) == (2.8, False)
    # an ORU of two patients: the message's note on each one's report, nothing else shared
    two = norm("\r".join([V231.format("MULTI-3"), "NTE|1||Résultats du 15/03",
                          "PID|1|EXT-111^^^LABO-ANCIEN|||DUPONT^Jean||19800101|M",
                          "NTE|1||Diabétique", *_order(1, "5.4"),
                          "PID|2|EXT-222^^^LABO-ANCIEN|||MARTIN^Anne||19500202|F",
                          *_order(2, "7.9")]) + "\r")
    reports = [e for e in two.entries if e.type == "lab_report"]
    assert [r.details.get("message_comments") for r in reports] == [
        ["Résultats du 15/03"], ["Résultats du 15/03"]]
    assert [r.details.get("patient_comments") for r in reports] == [["Diabétique"], None]


# -- a batch file through the pipeline --------------------------------------------------------
def test_a_batch_file_of_several_patients_files_each_result_in_its_own_dossier(sqlite_ctx):
    """A v2.3 LIS's night file: FHS/BHS, a BOM, LF line ends, no terminator after FTS, a
    BTS count that says 3 for 2 messages; one message names two patients by PID-2 and
    their demographics only, the other writes its segment names in lower case. Each
    glucose is in its own patient's dossier; the count and the names are said."""
    from pipelines.report import show_dossier, show_import
    from tests.test_pipeline import NIR, NIR_2, ingest, make_patient

    make_patient(sqlite_ctx)  # LEFÈVRE Hélène 1979-03-28 F
    make_patient(sqlite_ctx, NIR_2, family="Dupont", given="Jean", birth_date="1988-10-02",
                 sex="M")
    lefevre = "PID|1|EXT-111^^^LABO-ANCIEN|||LEFÈVRE^Hélène^^^^^L||19790328|F"
    dupont = "PID|2|EXT-222^^^LABO-ANCIEN|||DUPONT^Jean^^^^^L||19881002|M"
    two = [V231.format("NUIT-1"), lefevre, *_order(1, "5.4"), dupont, *_order(2, "7.9")]
    lower = [V231.format("NUIT-2"), dupont.replace("PID|2", "pid|1"),
             *(s[:3].lower() + s[3:] for s in _order(3, "6.6"))]
    data = "\n".join(["FHS|^~\\&|SIL-V23|LABO-ANCIEN", "BHS|^~\\&|SIL-V23|LABO-ANCIEN", *two,
                      *lower, "BTS|3", "FTS|1"])
    ids = ingest(sqlite_ctx, b"\xef\xbb\xbf" + data.encode("latin-1"))
    assert len(ids) == 2
    first, second = (show_import(sqlite_ctx.engine, i) for i in ids)
    assert (first["status"], second["status"]) == ("deposited", "deposited")
    assert any("SEGMENT_NAME_CASE" in w for w in second["warnings"])

    def glucose(nir: str) -> list[str]:
        return sorted(e["value"] for e in show_dossier(sqlite_ctx.engine, nir)["entries"]
                      if e["code"] == "2345-7")

    assert glucose(NIR) == ["5.4"]
    assert glucose(NIR_2) == ["6.6", "7.9"]


# -- parent and child orders ------------------------------------------------------------------
def test_a_reflex_test_names_the_order_it_was_made_from():
    """A TSH above the range, then the free T4 the laboratory added on its own (reflex):
    OBR-29 names the TSH order, OBR-26 is empty. It was not read: the T4 report did not say
    where it came from. Kept as sent; no key changes, the T4 is filed under its own order."""
    tsh_obr = ("OBR|1|CMD-1|24C0315-07^LABO-DEMO|3016-3^TSH^LN|||202403150810"
               + "|" * 18 + "F")
    t4_obr = ("OBR|2|CMD-1-R|24C0315-07R^LABO-DEMO|3024-7^T4 libre^LN|||202403150810"
              + "|" * 18 + "F|||" + "|CMD-1&SERVICE-ENDO^24C0315-07&LABO-DEMO")
    nm = norm(_oru("REFLEX-1", ORDER[0], tsh_obr, "OBX|1|NM|3016-3^TSH^LN||5.2|mU/L|0.4-4|H|||F",
                   "ORC|RE|CMD-1-R|24C0315-07R^LABO-DEMO", t4_obr,
                   "OBX|1|NM|3024-7^T4 libre^LN||9.1|pmol/L|9-19|N|||F"))
    tsh_report, tsh, t4_report, t4 = nm.entries
    assert t4_report.details["parent_order"] == {
        "placer": "CMD-1", "placer_namespace": "SERVICE-ENDO", "filler": "24C0315-07",
        "filler_namespace": "LABO-DEMO"}
    assert "parent_order" not in tsh_report.details
    assert (t4_report.key, t4.key) == ("report|24C0315-07R|LABO-DEMO|3024-7",
                                       "result|24C0315-07R|LABO-DEMO|3024-7|LN|")
    assert t4.value_num == 9.1 and t4_report.parent_key is None


@pytest.mark.parametrize("trigger", ["R22", "R24"])
def test_notes_after_the_specimen_of_an_oul_are_its_orders_comments(trigger):
    """OUL senders write what they saw of the specimen in an NTE after its SPM or its SAC
    ('hémolysé'), and the order's in an NTE after its TQ1: all were dropped without a word
    (an ORU's were kept). They are the comments of the specimen's orders (R22: each order
    of it), never of a result."""
    msh = (f"MSH|^~\\&|SIL-BIO|LABO-DEMO|DMP|GHT|20240315104500||OUL^{trigger}^OUL_{trigger}|"
           f"OUL-{trigger}|P|2.5.1|||||FRA|UNICODE UTF-8")
    spm = ("SPM|1|S1&LABO-DEMO||SER^Sérum^HL70487|||||||||||||202403150800",
           "NTE|1||Échantillon hémolysé", "SAC|||TUBE-0042", "NTE|1||Tube mal rempli")

    def obr(n: int) -> tuple[str, ...]:
        return (f"OBR|{n}|CMD-{n}|24C0315-0{n}^LABO-DEMO|BIO^Bilan^L" + "|" * 21 + "F",
                f"ORC|RE|CMD-{n}|24C0315-0{n}^LABO-DEMO", "TQ1|||||||202403150800",
                "NTE|1||Urgent", f"OBX|1|NM|2823-3^Potassium^LN||5.{n}|mmol/L|3.5-5|H|||F")

    body = [*spm, *obr(1), *obr(2)] if trigger == "R22" else [
        *obr(1)[:2], *spm, *obr(1)[2:], *obr(2)]
    nm = norm("\r".join([msh, PID, *body]) + "\r")
    reports = [e for e in nm.entries if e.type == "lab_report"]
    expected_2 = ["Échantillon hémolysé", "Tube mal rempli", "Urgent"] \
        if trigger == "R22" else ["Urgent"]
    assert [r.details.get("comments") for r in reports] == [
        ["Échantillon hémolysé", "Tube mal rempli", "Urgent"], expected_2]
    assert not any("comments" in e.details for e in nm.entries if e.type == "lab_result")


# -- framing ----------------------------------------------------------------------------------
@pytest.mark.parametrize("end", ["\r", "\n", "\r\n"])
def test_files_each_with_a_bom_concatenated_split_into_their_messages(end):
    """Export files that each begin with a UTF-8 BOM, concatenated into one ('cat *.hl7',
    or a batch whose BHS and messages were written one file at a time): the BOM before
    the second MSH hid it, which was read as lines of the first message's last segment and
    both failed (HL7_BAD_DATE on the first, nothing of the second). Each BOM now starts a
    message like the first one's; no byte of it stays in a message; nothing is garbage."""
    from parsers.hl7v2 import split_batch
    from tests.test_hl7v2_framing import _streamed

    def message(n: int, value: str) -> bytes:
        return (end.join([MSH25.format(f"BOM-{n}"), PID, *ORDER,
                          f"OBX|1|NM|2345-7^Glucose^LN||{value}|mmol/L|3.9-5.8|N|||F"]) + end
                ).encode()

    bom = b"\xef\xbb\xbf"
    data = bom + message(1, "5.4") + bom + message(2, "6.1") + bom + b"BHS|^~\\&|SIL" + \
        end.encode() + bom + message(3, "7.2") + bom + b"BTS|1" + end.encode()
    batch = split_batch(data)
    assert batch.problems == []
    assert batch.messages == [message(1, "5.4"), message(2, "6.1"), message(3, "7.2")]
    assert [norm(m.decode()).entries[1].value for m in batch.messages] == ["5.4", "6.1", "7.2"]
    for window in (5, 7, 4096):
        assert _streamed(data, window) == batch


def test_a_note_after_a_document_is_its_comment():
    """An NTE after the OBX of a PDF report ('signé électroniquement par...'), or after the
    last OBX of a PDF cut over several, was dropped without a word (a result's is kept):
    it is the document's comment, once."""
    import base64
    from pathlib import Path

    pdf = (Path(__file__).resolve().parents[1] / "samples" / "pdf"
           / "01_irm_genou_droit_K1_texte.pdf").read_bytes()
    data = base64.b64encode(pdf).decode()
    note = "NTE|1||Compte rendu signé électroniquement par le Dr Bérénice Côté"
    whole = norm(_oru("DOC-1", *ORDER, "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L||N|||F",
                      f"OBX|2|ED|11502-2^CR^LN||^AP^PDF^Base64^{data}||||||F", note))
    doc = next(e for e in whole.entries if e.type == "document")
    assert doc.details["comments"] == [
        "Compte rendu signé électroniquement par le Dr Bérénice Côté"]
    assert "comments" not in whole.entries[1].details
    chunks = [data[i:i + 1500] for i in range(0, len(data), 1500)]
    pieced = norm(_oru("DOC-2", *ORDER, *(
        f"OBX|{n}|ED|11502-2^CR^LN|1|^AP^PDF^Base64^{c}||||||F"
        for n, c in enumerate(chunks, start=1)), note))
    docs = [e for e in pieced.entries if e.type == "document"]
    assert len(docs) == 1 and docs[0].attachment.data == pdf
    assert docs[0].details["comments"] == [
        "Compte rendu signé électroniquement par le Dr Bérénice Côté"]


def test_an_orc_sent_after_its_obr_in_an_oru_is_that_orders_own():
    """A sender writing its ORU in the OUL order (OBR, then its ORC, then its OBX): the ORC
    was kept for the next OBR, and a haemogram sent with its placer number only in OBR-2
    (its filler number in its own ORC-3) was filed under the glucose order's filler number,
    its NTE as that order's. Each ORC now numbers the OBR it follows when an OBX comes
    next; an ORC before its OBR is read as before."""
    obr = "OBR|{n}|CMD-{n}|{filler}|{code}|||202403150810" + "|" * 18 + "F"
    nm = norm(_oru("ORC-AFTER", obr.format(n=1, filler="24C0315-07^LABO-DEMO",
                                           code="GLY^Glycémie^L"),
                   "ORC|RE|CMD-1|24C0315-07^LABO-DEMO",
                   "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L|3.9-5.8|N|||F",
                   obr.format(n=2, filler="", code="HEMO^NFS^L"),
                   "ORC|RE|CMD-2|24C0315-08^LABO-DEMO", "NTE|1||Contrôle demandé",
                   "OBX|1|NM|718-7^Hémoglobine^LN||13.2|g/dL|12-16|N|||F"))
    assert [e.key for e in nm.entries] == [
        "report|24C0315-07|LABO-DEMO|GLY", "result|24C0315-07|LABO-DEMO|2345-7|LN|",
        "report|24C0315-08|LABO-DEMO|HEMO", "result|24C0315-08|LABO-DEMO|718-7|LN|"]
    assert nm.entries[2].details["comments"] == ["Contrôle demandé"]
    assert not any("order control" in w for w in nm.warnings)
