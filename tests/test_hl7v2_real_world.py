"""What real senders send that the textbook examples do not, each with a fixture written here
(French lab traffic, invented patients): found by running messages collected from public HL7
v2 test suites and converters through the parser and the normalizer."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from normalizers.model import ACTION_DELETE, ACTION_NEW, NormalizationError
from tests.test_lab_normalizer import ORC, norm, oru


def by_ref(nm):
    return {e.source_ref: e for e in nm.entries}


def test_obx11_x_n_d_w_never_file_the_value():
    """HL7 v2.5 7.4.2.11: X 'results cannot be obtained', N 'not asked', D 'deletes the OBX
    record', W 'post original as wrong': whatever OBX-5 holds is not a result."""
    nm = norm(oru(
        "OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||F",
        "OBX|2|ST|HBA1C^Hémoglobine glyquée^L||Non réalisé : prélèvement coagulé||||||X",
        "OBX|3|NM|K^Potassium^L||6.1|mmol/L|3.5-5.1|H|||D",
        "OBX|4|NM|NA^Sodium^L||152|mmol/L|135-145|H|||W",
        "OBX|5|NM|CL^Chlorure^L||<1|mmol/L|||||N",
        "OBX|6|NM|CA^Calcium^L||||||||X",
    ))
    r = by_ref(nm)
    assert (r["OBX[5]"].value, r["OBX[5]"].value_num) == ("5.4", 5.4)
    hba1c, k, na, cl, ca = (r[f"OBX[{i}]"] for i in range(6, 11))
    for e in (hba1c, k, na, cl, ca):
        assert (e.value, e.value_num, e.comparator) == (None, None, None)
    assert hba1c.status == "cancelled" and hba1c.action == ACTION_NEW
    assert hba1c.details["value_withheld"] == "Non réalisé : prélèvement coagulé"
    assert (k.status, k.action, k.replaces_key) == ("entered-in-error", ACTION_DELETE, k.key)
    assert na.action == ACTION_DELETE and na.details["value_withheld"] == "152"
    assert cl.details["value_withheld"] == "<1"
    assert "value_withheld" not in ca.details  # nothing was sent: nothing to say
    warned = [w for w in nm.warnings if "not filed as a result" in w]
    assert [w.split(":")[0] for w in warned] == ["OBX[6]-5", "OBX[7]-5", "OBX[8]-5", "OBX[9]-5"]
    assert not any("coagulé" in w or "152" in w for w in nm.warnings)


def test_repeated_single_values_keep_the_others_apart():
    """OBX-5 may repeat, but an NM, SN or date is one value: the first one is the result, the
    others are kept (never silently dropped) and said."""
    nm = norm(oru("OBX|1|NM|FC^Fréquence cardiaque^L||72~118|/min|60-100|N~H|||F",
                  "OBX|2|SN|TIT^Titre rubéole^L||^1^:^40~^1^:^80||||||F",
                  "OBX|3|CE|ABO^Groupe^L||A^A^L~RH+^Rhésus positif^L||||||F"))
    r = by_ref(nm)
    fc, tit, abo = r["OBX[5]"], r["OBX[6]"], r["OBX[7]"]
    assert (fc.value, fc.value_num, fc.details["other_values"]) == ("72", 72.0, ["118"])
    assert fc.interpretation == "N,H"
    assert (tit.value, tit.details["other_values"]) == ("1:40", ["^1^:^80"])
    assert "other_values" not in abo.details and abo.value == "A; Rhésus positif"
    assert any(w.startswith("OBX[5]-5: 2 repetitions of a single NM") for w in nm.warnings)


def test_sn_without_components_reads_like_nm():
    """'182' or '>10' where '^182' or '>^10' was due: seen from older v2.3 senders."""
    nm = norm(oru("OBX|1|SN|GLY^Glycémie^L||182|mg/dL|70-105|H|||F",
                  "OBX|2|SN|AC^Anticorps anti-HBs^L||>1000|UI/L|>10||||F",
                  "OBX|3|SN|CRP^CRP^L||<0,5|mg/L|<5||||F"))
    r = by_ref(nm)
    assert (r["OBX[5]"].value_num, r["OBX[5]"].comparator) == (182.0, None)
    assert (r["OBX[6]"].value_num, r["OBX[6]"].comparator, r["OBX[6]"].value) == (
        1000.0, ">", ">1000")
    assert (r["OBX[7]"].value_num, r["OBX[7]"].comparator) == (0.5, "<")


def test_sn_without_components_that_is_no_number_fails_naming_sn():
    import pytest

    from normalizers.model import NormalizationError
    with pytest.raises(NormalizationError) as exc:
        norm(oru("OBX|1|SN|GLY^Glycémie^L||cinq|mg/dL|||||F"))
    assert (exc.value.code, str(exc.value)) == ("OBX_BAD_NUMBER",
                                                 "OBX[5]-5: not a number (value type SN)")


def test_narrative_lines_without_identifier_become_the_report_text():
    """A transcription system's report, one TX line per OBX and OBX-3 empty: no observation
    to file, but the text is the report's, in order, blank lines kept as paragraph breaks."""
    nm = norm(oru("OBX|1|TX|||ÉCHOGRAPHIE ABDOMINALE||||||F",
                  "OBX|2|TX|||||||||F",
                  "OBX|3|TX|||Foie de taille normale, \\T\\ homogène.||||||F",
                  "NTE|1||Dicté par le Dr Bérénice Lagarde",
                  "OBX|4|FT|^^L||Conclusion : examen normal.||||||F",
                  "OBX|5|NM|GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||F"))
    report, gly = nm.entries
    assert report.details["text"] == ("ÉCHOGRAPHIE ABDOMINALE\n\nFoie de taille normale, & "
                                      "homogène.\nDicté par le Dr Bérénice Lagarde\n"
                                      "Conclusion : examen normal.")
    assert gly.code == "2345-7" and gly.parent_key == report.key
    assert "OBR[4]: text lines without observation identifier (OBX-3) kept as the report's " \
           "text" in nm.warnings


def test_empty_notes_are_not_comments():
    nm = norm(oru("OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||F", "NTE|1||",
                  "NTE|2|L|   ", "OBX|2|NM|K^Potassium^L||4.1|mmol/L|||||F", "NTE|1|L|À jeun"))
    r = by_ref(nm)
    assert "comments" not in r["OBX[5]"].details
    assert r["OBX[8]"].details["comments"] == ["À jeun"]


def test_identifier_in_the_alternate_triplet_only():
    nm = norm(oru("OBX|1|NM|^^^2345-7^Glucose [Moles/volume] in Serum or Plasma^LN||5.4|mmol/L"
                  "|3.9-5.8|N|||F"))
    gly = nm.entries[1]
    assert (gly.code, gly.system, gly.value_num) == ("2345-7", "LN", 5.4)
    assert gly.key == "result|24C0315-07|LABO-DEMO|2345-7|LN|"


def test_unescaped_caret_in_a_unit_is_an_exponent():
    """'10^9/L' typed into OBX-6 without \\S\\: it arrives as code '10', text '9/L'."""
    nm = norm(oru("OBX|1|NM|LEUCO^Leucocytes^L||7.2|10^9/L|4.0-10.0|N|||F",
                  "OBX|2|NM|PLQ^Plaquettes^L||245|10^3/µL|150-400|N|||F",
                  "OBX|3|NM|HB^Hémoglobine^L||13.5|g/dL^grammes par décilitre^L|12-16|N|||F",
                  "OBX|4|NM|GR^Hématies^L||4.5|10\\S\\12/L|4.2-5.7|N|||F"))
    r = by_ref(nm)
    assert (r["OBX[5]"].unit, r["OBX[5]"].unit_original) == ("10*9/L", "10^9/L")
    assert (r["OBX[6]"].unit, r["OBX[6]"].unit_original) == ("10*3/uL", "10^3/µL")
    assert (r["OBX[7]"].unit, r["OBX[7]"].unit_original) == ("g/dL", "g/dL")
    assert (r["OBX[8]"].unit, r["OBX[8]"].unit_original) == ("10*12/L", "10^12/L")
    assert [w for w in nm.warnings if "exponent" in w] == [
        "OBX[5]-6: unescaped '^' inside the unit read as an exponent",
        "OBX[6]-6: unescaped '^' inside the unit read as an exponent"]


def test_missing_value_type_reads_a_plain_number_as_nm():
    nm = norm(oru("OBX|1||GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||F",
                  "OBX|2||ASP^Aspect du sérum^L||Lactescent||||||F",
                  "OBX|3||CRP^CRP^L||<5|mg/L|||||F"))
    r = by_ref(nm)
    assert (r["OBX[5]"].value_type, r["OBX[5]"].value_num) == ("NM", 5.4)
    assert (r["OBX[6]"].value_type, r["OBX[6]"].value) == ("ST", "Lactescent")
    assert (r["OBX[7]"].value_type, r["OBX[7]"].value) == ("ST", "<5")  # not guessed further
    assert "OBX[5]-2: no value type, numeric value read as NM" in nm.warnings
    assert "OBX[6]-2: no value type, value read as text" in nm.warnings


def test_reference_range_in_words_is_shortened_not_fatal():
    """OBX-7 is an ST of 60 characters in v2.5, but labs write hormone ranges out in full."""
    rng = ("Phase folliculaire : 2,5 à 10,2 UI/L ; pic ovulatoire : 3,4 à 33,4 UI/L ; "
           "phase lutéale : 1,5 à 9,1 UI/L ; ménopause : 23,0 à 116,3 UI/L")
    # two flags in words (one repeated is kept once since round 20)
    flags = "Anormalement élevé pour la phase du cycle~Anormalement élevé pour l'âge"
    nm = norm(oru(f"OBX|1|NM|FSH^Hormone folliculo-stimulante^L||5.1|UI/L|{rng}|{flags}|||F"))
    fsh = nm.entries[1]
    assert len(fsh.reference_range) == 120 and fsh.reference_range.endswith("…")
    assert fsh.reference_range[:-1] == rng[:119]
    assert fsh.details["full_text"]["reference_range"] == rng
    assert len(fsh.interpretation) == 60
    assert fsh.details["full_text"]["interpretation"].count("élevé") == 2
    assert "OBX[5]: reference_range longer than 120 characters, shortened (the whole text " \
           "is kept in details)" in nm.warnings
    assert fsh.value_num == 5.1


def test_explicit_null_fields_are_empty_not_text():
    """HL7 v2.5 2.5.3: "" (two double quotes) is an explicit null. Laboratory systems send it
    for every field they have no value for."""
    from normalizers.lab import normalize_message
    from parsers.hl7v2.er7 import parse_text
    from tests.test_lab_normalizer import MAPS, ORC
    obr = ("OBR|1|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO|BIOCHIMIE^Bilan biochimique^L|||"
           '202403150810|""||||||||^MARTIN^Paul^^^DR||||||202403151045|||""')
    text = oru('OBX|1|NM|GLY^Glycémie^L||""|""|""|""|||F|||""',
               'OBX|2|ST|COM^Commentaire^L||""||||||F', 'NTE|1|L|""',
               'OBX|3|NM|K^Potassium^L||4.1|mmol/L|3.5-5.1|""|||F',
               order=(ORC, obr))
    msg = parse_text(text)
    nm = normalize_message(msg, "demo-lab", MAPS)
    report, gly, com, k = nm.entries
    assert report.effective == "2024-03-15T08:10+01:00" and report.status == "final"
    assert (gly.value, gly.value_num, gly.unit, gly.reference_range, gly.interpretation) == (
        None, None, None, None, None)
    assert gly.effective == report.effective  # OBX-14 null: OBR-7
    assert com.value is None and "comments" not in com.details
    assert (k.value_num, k.interpretation) == (4.1, None)
    assert msg.get("OBX", 5) == '""'  # the parsed message itself stays as sent


_VALUES = st.one_of(
    st.from_regex(r"[<>]?=?-?[0-9]{1,4}([.,][0-9]{1,3})?", fullmatch=True),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzéèàçô ÉÈ:;.,'()-+", min_size=1, max_size=20),
    st.just('""'))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["NM", "SN", "ST", "TX", "CE", ""]), st.sampled_from("XNDWxndw"),
       st.lists(_VALUES, min_size=1, max_size=3))
def test_property_withdrawn_or_unobtained_results_never_carry_a_value(vtype, status, values):
    """Whatever OBX-2 and OBX-5 hold, OBX-11 X, N, D or W never files a value, never fails."""
    five = "~".join(v.replace("|", "").replace("^", "").replace("~", "") for v in values)
    nm = norm(oru(f"OBX|1|{vtype}|GLY^Glycémie^L||{five}|mmol/L|||||{status}"))
    result = nm.entries[1]
    assert (result.value, result.value_num, result.comparator) == (None, None, None)
    assert result.status in ("cancelled", "entered-in-error")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(['""', "", "5.4", "mmol/L", "3.9-5.8", "N", "F"]),
                min_size=12, max_size=20))
def test_property_explicit_null_is_never_text(fields):
    """An OBX whose fields are any mix of values and explicit nulls ("") never shows '""'."""
    fields[0:4] = ["1", "NM", "GLY^Glycémie^L", ""]
    fields[10] = "F"
    try:
        nm = norm(oru("OBX|" + "|".join(fields)))
    except NormalizationError as exc:  # a value that is no number (here 'mmol/L' in OBX-5)
        assert exc.code in ("OBX_BAD_NUMBER", "HL7_BAD_DATE")
        return
    result = nm.entries[1]
    shown = (result.value, result.unit, result.unit_original, result.reference_range,
             result.interpretation, result.effective, result.issued)
    assert not any(isinstance(v, str) and '""' in v for v in shown)


def test_reference_range_is_text_whole():
    """OBX-7 is an ST: an unescaped '&' (or '^') in it is text, not a subcomponent."""
    nm = norm(oru("OBX|1|NM|HB^Hémoglobine^L||13.5|g/dL|H & F adultes : 12-17|N|||F",
                  "OBX|2|NM|K^Potassium^L||4.1|mmol/L|3.5 \\T\\ 5.1~autre|N|||F"))
    r = by_ref(nm)
    assert r["OBX[5]"].reference_range == "H & F adultes : 12-17"
    assert r["OBX[6]"].reference_range == "3.5 & 5.1"


def test_coded_texts_keep_an_unescaped_ampersand():
    """CE/CWE texts are ST: 'anti-HBs & anti-HBc' is one text, not two subcomponents."""
    nm = norm(oru("OBX|1|CE|HBV^Sérologie hépatite B & C^L||POS^Anticorps anti-HBs & anti-HBc"
                  "^L||||||F"))
    hbv = nm.entries[1]
    assert hbv.display == "Sérologie hépatite B & C"
    assert hbv.value == "Anticorps anti-HBs & anti-HBc"
    assert hbv.details["coded_value"]["display"] == "Anticorps anti-HBs & anti-HBc"


def test_v21_oru_without_trigger_and_padded_msh9():
    from tests.test_lab_normalizer import MSH
    obx = "OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||F"
    nm = norm(oru(obx, header=MSH.replace("ORU^R01^ORU_R01", "ORU").replace("|2.5|", "|2.1|")))
    assert nm.entries[1].value_num == 5.4
    assert "MSH-9: no trigger event (v2.1 style), read as ORU^R01" in nm.warnings
    nm = norm(oru(obx, header=MSH.replace("ORU^R01^ORU_R01", "oru^r01 ")))
    assert nm.entries[1].value_num == 5.4


def test_an_order_without_its_own_orc_keeps_its_own_number():
    """ORC is optional in each ORDER_OBSERVATION group (v2.5 7.3.1). A second OBR sent with a
    placer number only, without ORC, was filed under the filler number of the first order's
    ORC; a new PID (another PATIENT_RESULT) inherits no ORC at all."""
    from tests.test_lab_normalizer import PID
    obr2 = ("OBR|2|CMD-2^SERVICE-NEPHRO||NFS^Numération formule sanguine^L|||202403150810"
            "||||||||||||||202403151045|||F")
    obr3 = ("OBR|3|CMD-3^SERVICE-NEPHRO||CRP^Protéine C réactive^L|||202403150810"
            "||||||||||||||202403151045|||F")
    nm = norm(oru("OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||F",
                  tail=(obr2, "OBX|1|NM|HB^Hémoglobine^L||13.5|g/dL|12-16|N|||F",
                        PID, obr3, "OBX|1|NM|CRP^CRP^L||3|mg/L|<5|N|||F")))
    r = by_ref(nm)
    assert r["OBR[4]"].key == "report|24C0315-07|LABO-DEMO|BIOCHIMIE"
    assert r["OBR[6]"].key == "report|CMD-2|SERVICE-NEPHRO|NFS"
    assert r["OBX[7]"].key == "result|CMD-2|SERVICE-NEPHRO|HB|L|"
    assert r["OBX[10]"].key == "result|CMD-3|SERVICE-NEPHRO|CRP|L|"
    assert not any("key made unique" in w for w in nm.warnings)


def test_coded_value_in_the_alternate_triplet_or_original_text_only():
    """CWE values coded in the alternate triplet only, or sent as original text (CWE.9, v2.5)
    alone, as public-health laboratory senders do: the value was None, the text lost."""
    nm = norm(oru("OBX|1|CWE|SARS^SARS-CoV-2 ARN^L||^^^260415000^Non détecté^SCT||||||F",
                  "OBX|2|CWE|GRP^Groupe sanguin^L||^^^^^^^^Groupe A rhésus positif||||||F",
                  "OBX|3|CWE|ABO^ABO^L||A^Groupe A^L^^^^^^A (saisie manuelle)||||||F"))
    r = by_ref(nm)
    assert r["OBX[5]"].value == "Non détecté"
    assert r["OBX[5]"].details["coded_value"]["alt_code"] == "260415000"
    assert r["OBX[6]"].value == "Groupe A rhésus positif"
    assert r["OBX[6]"].details["coded_value"]["original_text"] == "Groupe A rhésus positif"
    assert r["OBX[7]"].value == "Groupe A"
    assert r["OBX[7]"].details["coded_value"]["original_text"] == "A (saisie manuelle)"


def test_sn_decimal_comma_is_said_once():
    nm = norm(oru("OBX|1|SN|CRP^CRP^L||<^0,5|mg/L|<5||||F"))
    assert (nm.entries[1].value_num, nm.entries[1].comparator) == (0.5, "<")
    assert nm.warnings.count("OBX[5]-5: decimal comma read as a decimal point") == 1


def test_pdf_sent_without_encoding_or_subtype_is_recognised_by_its_content():
    """'^^^^JVBERi0x...' (ED.2-4 empty) and '^AP^^Base64^...' (no subtype) are how some
    laboratory systems send their PDF report: it was filed as text bytes, or as an
    application/octet-stream nobody opens. Text that merely looks like base64 stays text."""
    import base64

    from normalizers.model import DOCUMENT
    pdf = base64.b64encode(b"%PDF-1.4\n% compte rendu de biologie\n%%EOF\n").decode()
    nm = norm(oru(f"OBX|1|ED|CR^Compte rendu^L||^^^^{pdf}||||||F",
                  f"OBX|2|ED|CR2^Compte rendu^L||^AP^^Base64^{pdf}||||||F",
                  "OBX|3|ED|CR3^Note^L||^TEXT^PLAIN^^AbcdefghijklmnopQRSTUV||||||F"))
    r = by_ref(nm)
    for ref in ("OBX[5]", "OBX[6]"):
        doc = r[ref]
        assert doc.type == DOCUMENT
        assert doc.attachment.media_type == "application/pdf"
        assert doc.attachment.data.startswith(b"%PDF-1.4")
    assert r["OBX[7]"].attachment.data == b"AbcdefghijklmnopQRSTUV"
    assert r["OBX[7]"].attachment.media_type == "text/plain"
    assert ("OBX[5]-5: ED encoding (ED.4) missing: base64 data recognised by its content; "
            "media type application/pdf taken from the content (ED.2/ED.3 do not name it)"
            in nm.warnings)
    assert ("OBX[6]-5: media type application/pdf taken from the content (ED.2/ED.3 do not "
            "name it)" in nm.warnings)


def test_observation_time_falls_back_to_the_specimen_collection_time():
    """OBX-14, else OBR-7, else SPM-17 (v2.5.1): an OBR-7 left empty by a sender that
    fills the SPM segment left the report and its results without any time."""
    obr = ("OBR|1|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO|BIOCHIMIE^Bilan biochimique^L|||"
           "||||||||||||||202403151045|||F")
    nm = norm(oru("OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||F",
                  "OBX|2|NM|K^Potassium^L||4.1|mmol/L|3.5-5.1|N|||F|||202403150930",
                  "SPM|1|||SER^Sérum^HL70487|||||||||||||202403150812^202403150815",
                  order=("ORC|RE|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO", obr)))
    report, gly, k = nm.entries
    assert report.effective == gly.effective == "2024-03-15T08:12+01:00"
    assert k.effective == "2024-03-15T09:30+01:00"
    assert report.specimen_time == gly.specimen_time == "2024-03-15T08:12+01:00"


def test_frame_with_several_messages_reports_the_one_that_failed(tmp_path, sqlite_template):
    """Two messages in one MLLP frame (a sender batching without envelope): both are stored
    and processed, and the one ACK (MSA-2 = the first MSH-10) said AA although the second
    failed. It now reports the first failure and where it is; what was filed stays filed."""
    from datetime import UTC, datetime

    from pipelines.acknowledge import APPLICATION, Frame, acknowledge
    from tests.conftest import migrated_sqlite
    from tests.mllp_support import msa, segment
    from tests.test_mllp_service import make_ctx, original_mode, sample

    ctx = make_ctx(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3"))
    good = original_mode(sample("01_labm_nfs.hl7"))
    bad = original_mode(sample("20_casse_nm_non_numerique.hl7"))
    now = datetime.now(UTC)
    try:
        (ack,), (alone,) = acknowledge(ctx, [Frame(good + bad, "127.0.0.1", now),
                                             Frame(good.replace(b"|RB25", b"|RC25"),
                                                   "127.0.0.1", now)], mode=APPLICATION)
    finally:
        ctx.engine.dispose()
    fields = msa(ack)
    assert fields[1:3] == ["AE", "RB2501140000001"]  # the frame's first MSH-10
    err = segment(ack, "ERR")
    assert err[2] == "OBX^2^5^1"  # the 2nd OBX of the second message, not of the frame
    assert err[8].startswith("OBX_BAD_NUMBER") and "message 2 of 2 in the frame" in err[8]
    assert msa(alone)[1] == "AA"


def test_ins_oid_as_namespace_or_urn_is_still_an_ins():
    """PID-3 with the INS OID written in CX.4.1 ('^^^1.2.250.1.213.1.4.8^INS') or as a URN
    ('&urn:oid:1.2.250.1.213.1.4.8&URI'): the INS was filed as a local identifier, with a
    warning saying its authority was no INS OID. A billing NIR (NH) stays local."""
    from tests.test_lab_normalizer import NIR, PID
    sent = f"{NIR}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS"
    obx = "OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||F"
    for cx4 in ("1.2.250.1.213.1.4.8", "&urn:oid:1.2.250.1.213.1.4.8&URI"):
        nm = norm(oru(obx, pid=PID.replace(sent, f"{NIR}^^^{cx4}^INS")))
        (ins,) = nm.identity.ins
        assert (ins.nir, ins.oid, ins.kind, ins.key_valid) == (
            NIR, "1.2.250.1.213.1.4.8", "INS-NIR", True)
        assert [x.value for x in nm.identity.local_ids] == ["LD-778"]
    assert "PID[2]-3 repetition 2: INS OID sent as the namespace (CX.4.1), not as the " \
           "universal id (CX.4.2)" in norm(oru(obx, pid=PID.replace(
               sent, f"{NIR}^^^1.2.250.1.213.1.4.8^INS"))).identity.warnings
    billing = norm(oru(obx, pid=PID.replace(sent, f"{NIR}^^^1.2.250.1.213.1.4.8^NH")))
    assert billing.identity.ins == []


def test_a_report_sent_one_line_per_obx_is_one_observation():
    """Radiology and transcription systems send a narrative (TX, FT) one line per OBX, each
    with the same identifier and sub-id: it was one result per line with made-up keys ('#2', '#3'),
    so that a corrected report with fewer lines left the old extra lines behind."""
    nm = norm(oru("OBX|1|TX|18748-4^Compte rendu^LN|1|ÉCHOGRAPHIE ABDOMINALE||||||F",
                  "OBX|2|TX|18748-4^Compte rendu^LN|1|||||||F",
                  "OBX|3|TX|18748-4^Compte rendu^LN|1|Foie de taille normale.||||||F",
                  "NTE|1||Dicté le 15/03",
                  "OBX|4|TX|18748-4^Compte rendu^LN|2|Conclusion : examen normal.||||||F",
                  "OBX|5|TX|COM^Commentaire^L||Hémolyse légère||||||F",
                  "OBX|6|TX|COM^Commentaire^L||Lipémie||||||X",
                  "OBX|7|TX|COM^Commentaire^L||non interprétable||||||X",
                  "OBX|8|ST|GERME^Germe identifié^L||Escherichia coli||||||F",
                  "OBX|9|ST|GERME^Germe identifié^L||Klebsiella pneumoniae||||||F"))
    report, text1, text2, com, withheld, germ1, germ2 = nm.entries
    assert (germ1.value, germ2.value) == ("Escherichia coli", "Klebsiella pneumoniae")
    assert text1.value == "ÉCHOGRAPHIE ABDOMINALE\n\nFoie de taille normale."
    assert text1.details["comments"] == ["Dicté le 15/03"]
    assert text1.key == "result|24C0315-07|LABO-DEMO|18748-4|LN|1"
    assert (text2.key, text2.value) == ("result|24C0315-07|LABO-DEMO|18748-4|LN|2",
                                        "Conclusion : examen normal.")
    assert com.value == "Hémolyse légère" and com.status == "final"  # another OBX-11
    assert withheld.value is None
    assert withheld.details["value_withheld"] == "Lipémie\nnon interprétable"
    assert [w for w in nm.warnings if "key made unique" in w] == [  # same code, other status
        "OBX[11]: same key as an earlier segment of the message; key made unique",
        "OBX[14]: same key as an earlier segment of the message; key made unique"]  # two ST


def test_units_of_other_senders_map_to_ucum():
    """Spellings met in the collected messages that were left unmapped: viral loads in
    'cp/mL', US 'x10^9/L', 'S/CO' ratios, kat units, vitals sent with the results."""
    from normalizers.units import to_ucum
    expected = {"cp/mL": "{copies}/mL", "log cp/mL": "{log_copies}/mL", "x10^9/L": "10*9/L",
                "x10E12/L": "10*12/L", "µU/mL": "uU/mL", "µkat/L": "ukat/L", "°C": "Cel",
                "kg/m²": "kg/m2", "S/CO": "{s_co_ratio}", "mmol/mol Hb": "mmol/mol{Hb}"}
    assert {u: to_ucum(u) for u in expected} == {u: (v, True) for u, v in expected.items()}


def test_facility_sent_by_its_universal_id_only_names_the_sender():
    """HD with HD.1 empty and HD.2 + HD.3 valued (``^2.16.840.1.114222.4.1.9999^ISO``, as CDC
    ELR senders write MSH-4): the universal id is the facility, in the logical id (the
    namespace of MSH-10 for dedupe level 2) and for the listener's source check alike."""
    from parsers.hl7v2 import parse_message
    from parsers.hl7v2.header import read_header

    header = "MSH|^~\\&|SIL^1.2.250.1.999.1^ISO|^1.2.250.1.999.2.7^ISO|DMP|DMP|" \
             "20240315103000||ORU^R01^ORU_R01|MSG-ELR-1|P|2.5|||AL|NE||UNICODE UTF-8"
    text = oru("OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||F", header=header)
    msg = parse_message(text.encode())
    assert msg.sender == "SIL|1.2.250.1.999.2.7"
    assert norm(text).logical_id == "SIL|1.2.250.1.999.2.7|MSG-ELR-1"
    assert read_header(text.encode()).sender == ("SIL", "1.2.250.1.999.2.7")
    other = text.replace("1.2.250.1.999.2.7", "1.2.250.1.999.2.8")
    assert norm(other).logical_id != norm(text).logical_id  # two labs, one control id


def test_hex_escape_is_read_in_the_message_charset():
    """\\Xhh\\ is data in the message's character set (v2.5 2.7.4): in an ISO 8859-15
    message \\XA4\\ is the euro sign ('¤' in latin-1); valid UTF-8 bytes stay UTF-8."""
    from parsers.hl7v2 import parse_message

    header = ("MSH|^~\\&|SIL-BIO|LABO-DEMO|DMP-INTAKE|GHT|20240315104500||ORU^R01^ORU_R01|"
              "MSG-HEX-1|P|2.5|||||FRA|8859/15")
    text = oru("OBX|1|ST|TARIF^Tarif^L||12 \\XA4\\ pour l'acte||||||F",
               "OBX|2|ST|COM^Commentaire^L||h\\XC3A9\\molys\\XE9\\||||||F", header=header)
    msg = parse_message(text.encode("iso-8859-15"))
    assert msg.charset == "iso-8859-15"
    obx = msg.all("OBX")
    assert msg.get(obx[0], 5) == "12 € pour l'acte"
    assert msg.get(obx[1], 5) == "hémolysé"


def test_explicit_nulls_in_pid_are_no_identity():
    """A PID sent with "" (HL7 explicit null, v2.5 2.5.3) in the usage name, the INS, the
    birth date, the sex or PID-32: none of them is the text '""' (an INS '""' had an invalid
    key and quarantined the message; the family name became '""')."""
    pid = ('PID|||LD-778^^^LABO-DEMO&1.2.250.1.999.42&ISO^PI~""^^^ASIP-SANTE-INS-NIR&'
           '1.2.250.1.213.1.4.10&ISO^INS||DUPONT^Marie^^^^^L~""^""^^^^^D||""|""'
           + "|" * 24 + '""')
    nm = norm(oru("OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||F", pid=pid))
    ident = nm.identity
    assert (ident.family, ident.given, ident.birth_family) == ("DUPONT", "Marie", "DUPONT")
    assert (ident.birth_date, ident.sex, ident.identity_status) == ("", "", "")
    assert ident.ins == [] and [li.value for li in ident.local_ids] == ["LD-778"]
    assert not ident.warnings and not any('""' in w for w in nm.warnings)


MICRO = (
    "OBR|1|PR-88^SIL|MB-88^LABO-DEMO|625-4^Bactéries identifiées^LN|||202403140800|||||||||||"
    "||||202403151000|||F",
    "OBX|1|CWE|625-4^Bactéries identifiées^LN|1|112283007^Escherichia coli^SCT||||||F",
    "OBX|2|CWE|625-4^Bactéries identifiées^LN|2|3092008^Staphylococcus aureus^SCT||||||F",
    "OBR|2|PR-88^SIL|MB-88^LABO-DEMO|29576-6^Antibiogramme^LN|||202403140800|||||||||||||||"
    "202403151000|||F|625-4&Bactéries identifiées&LN^1^Escherichia coli|||PR-88&SIL^MB-88&"
    "LABO-DEMO",
    "OBX|1|SN|18864-9^Ampicilline^LN||>=^32|mg/L||R|||F",
    "OBX|2|SN|18906-8^Ciprofloxacine^LN||<=^0.25|mg/L||S|||F",
    "OBR|3|||29576-6^Antibiogramme^LN|||202403140800|||||||||||||||202403151000|||F|"
    "625-4&Bactéries identifiées&LN^2^Staphylococcus aureus|||PR-88&SIL^MB-88&LABO-DEMO",
    "OBX|1|SN|18864-9^Ampicilline^LN||>=^32|mg/L||R|||F",
    "OBX|2|SN|18906-8^Ciprofloxacine^LN||<=^0.5|mg/L||S|||F",
)


def test_susceptibility_panels_are_keyed_by_the_organism_they_test():
    """Microbiology (v2.5 7.4.1.26/29, ELR): one susceptibility OBR per organism, each naming
    its organism in OBR-26 (parent OBX-3 ^ sub-id ^ text) under the same order number. The
    keys were the OBR and OBX codes alone: the second panel was told apart by its rank
    ('#2'), so a message resending only that organism's panel replaced the first organism's
    results; nothing said which organism a result was of. The child OBR sent with no number
    of its own (OBR-29 only) is filed under its parent's."""
    nm = norm(oru(*MICRO, order=()))
    r = by_ref(nm)
    culture, coli, aureus = r["OBR[3]"], r["OBX[4]"], r["OBX[5]"]
    panel1, amp1, panel2, amp2 = r["OBR[6]"], r["OBX[7]"], r["OBR[9]"], r["OBX[10]"]
    assert culture.key == "report|MB-88|LABO-DEMO|625-4"  # no parent: keys as before
    assert coli.key == "result|MB-88|LABO-DEMO|625-4|LN|1"
    assert panel1.key == "report|MB-88|LABO-DEMO|29576-6|625-4^1"
    assert panel2.key == "report|MB-88|LABO-DEMO|29576-6|625-4^2"
    assert (amp1.key, amp2.key) == ("result|MB-88|LABO-DEMO|18864-9|LN||625-4^1",
                                    "result|MB-88|LABO-DEMO|18864-9|LN||625-4^2")
    assert (panel1.parent_key, panel2.parent_key) == (coli.key, aureus.key)
    assert amp2.parent_key == panel2.key
    assert amp2.details["parent_result"] == panel2.details["parent_result"] == {
        "code": "625-4", "sub_id": "2", "value": "Staphylococcus aureus"}
    assert not any("key made unique" in w for w in nm.warnings)
    shifted = norm(oru("OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|||||F", order=(
        "OBR|1||FX-1^LABO-DEMO|GLY^Glycémie^L|||202403150810|||||||||||||||202403151045|||F|F",)))
    assert shifted.entries[0].key == "report|FX-1|LABO-DEMO|GLY"  # a lone 'F' is no parent
    assert "parent_result" not in shifted.entries[0].details
    coded = norm(oru(*MICRO[:3], MICRO[3].replace("^1^Escherichia coli",
                                                  "^1^112283007&Escherichia coli&SCT"),
                     *MICRO[4:6], order=()))
    assert coded.entries[4].details["parent_result"] == {
        "code": "625-4", "sub_id": "1", "value": "Escherichia coli"}


def test_one_organism_panel_resent_alone_leaves_the_other_organism_alone(ctx):  # noqa: ANN001
    """Through the store (SQLite and PostgreSQL): the S. aureus panel sent in a message of
    its own after the E. coli one is filed beside it; its ampicillin 'R >=32 mg/L' is not
    taken for the same fact as E. coli's (dedupe level 4) and replaces nothing."""
    from dataclasses import replace

    from pipelines.intake import Received, intake
    from pipelines.process import drain
    from pipelines.report import show_dossier, show_import
    from tests.test_lab_normalizer import MSH

    ctx.settings = replace(ctx.settings, auto_create=True)
    first = oru(*MICRO[:6], order=())
    second = oru(*MICRO[:3], *MICRO[6:], order=(),
                 header=MSH.replace("MSG-0001", "MSG-0002"))
    ids = []
    for text in (first, second):
        ids += intake(ctx.engine, ctx.archive, [Received(data=text.encode(), source="demo-lab",
                                                         channel="file")])[0].message_ids
        drain(ctx)
    assert [show_import(ctx.engine, i)["status"] for i in ids] == ["deposited", "deposited"]
    patient = show_import(ctx.engine, ids[0])["patient_id"]
    entries = show_dossier(ctx.engine, str(patient), history=True)["entries"]
    amp = [e for e in entries if e["code"] == "18864-9"]
    assert len(amp) == 2 and all(e["current"] for e in amp)
    assert [e["import_id"] for e in amp] == ids
    assert all(e["current"] for e in entries)


def test_times_without_offset_are_in_the_senders_zone_from_msh7():
    """v2.5 2.A.22: a time sent without offset is the sender's local time. A lab whose MSH-7
    says '-0400' (a US ELR sender) or '+0400' (La Réunion) had its OBR-7/OBX-14/OBX-19 read
    at Paris's offset, hours away from the OBR-22 it sent with its offset in the same
    message. A MSH-7 without offset, at Paris's offset or at +0000 (a server clock in UTC)
    keeps Paris's zone (summer time included), as before."""
    from normalizers.dates import sender_zone
    from tests.test_lab_normalizer import MSH

    obx = "OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||F|||202407150930|||||202407151012"
    reunion = norm(oru(obx, header=MSH.replace("|20240315104500|", "|20240715104500+0400|")))
    report, gly = reunion.entries
    assert report.effective == "2024-03-15T08:10+04:00"  # OBR-7
    assert (gly.effective, gly.issued) == ("2024-07-15T09:30+04:00", "2024-07-15T10:12+04:00")
    paris = norm(oru(obx, header=MSH.replace("|20240315104500|", "|20240715104500+0200|")))
    assert paris.entries[0].effective == "2024-03-15T08:10+01:00"  # winter time in Paris
    assert paris.entries[1].effective == "2024-07-15T09:30+02:00"
    plain = norm(oru(obx))
    assert (plain.entries[0].effective, plain.entries[1].effective) == (
        "2024-03-15T08:10+01:00", "2024-07-15T09:30+02:00")
    assert sender_zone("20200325081246.194-0400") == "-04:00"
    assert sender_zone("20240315104500+0100") == sender_zone("2024") == "Europe/Paris"
    assert sender_zone("not a time") == "Europe/Paris"
    assert sender_zone("20240315094500+0000") == "Europe/Paris"  # a server clock in UTC


def test_mdm_document_sent_as_text_lines_is_the_document():
    """MDM (v2.5 9.6) from transcription and radiology systems carries the report as text, one
    line per OBX (TX, FT), not as an ED: it was refused (MDM_NO_DOCUMENT). The lines are the
    document (text/plain, escapes read, empty OBX an empty line), keyed by TXA-12 like an ED
    one, T10 replacing TXA-13; an ED document still wins over text lines beside it."""
    msh = ("MSH|^~\\&|RIS-Y|CLINIQUE-Y|DMP|GHT|20240315110000||MDM^{t}^MDM_T02|MDM-{t}|P|2.5"
           "|||AL|NE||UNICODE UTF-8")
    from tests.test_lab_normalizer import PID

    def mdm(trigger: str, *obx: str, txa13: str = "") -> str:
        txa = f"TXA|1|CR^Compte rendu^L|TX|202403151000||||||||CR-{trigger}^RIS-Y|{txa13}||||AU"
        return "\r".join([msh.format(t=trigger), "EVN||20240315110000", PID, "PV1|1|O", txa,
                          *obx]) + "\r"

    lines = ("OBX|1|TX|18748-4^Compte rendu d'imagerie^LN||IRM DU GENOU DROIT||||||F",
             "OBX|2|TX|18748-4^Compte rendu d'imagerie^LN||||||||F",
             "OBX|3|FT|18748-4^Compte rendu d'imagerie^LN||Ménisques normaux.\\.br\\"
             "Conclusion : examen normal.~Dr Lagarde||||||F")
    (doc,) = norm(mdm("T02", *lines)).entries
    assert (doc.type, doc.key, doc.code, doc.system, doc.action) == (
        "document", "document|CR-T02|RIS-Y@CLINIQUE-Y", "18748-4", "LN", ACTION_NEW)
    assert doc.attachment.media_type == "text/plain" and doc.value_type == "TX"
    assert doc.attachment.data.decode() == ("IRM DU GENOU DROIT\n\nMénisques normaux.\n"
                                            "Conclusion : examen normal.\nDr Lagarde")
    assert "observations" not in doc.details
    (new,) = norm(mdm("T10", lines[0], txa13="CR-T02^RIS-Y")).entries
    assert (new.key, new.replaces_key) == ("document|CR-T10|RIS-Y@CLINIQUE-Y",
                                           "document|CR-T02|RIS-Y@CLINIQUE-Y")
    ed = "OBX|4|ED|18748-4^CR^LN||^text^plain^A^Texte joint||||||F"
    (only,) = norm(mdm("T02", lines[0], ed)).entries
    assert only.value_type == "ED" and only.attachment.data == b"Texte joint"
    assert only.details["observations"][0]["value"] == "IRM DU GENOU DROIT"
    import pytest
    with pytest.raises(NormalizationError) as exc:
        norm(mdm("T02", "OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|||||F"))
    assert exc.value.code == "MDM_NO_DOCUMENT" and "TX, FT or ST" in str(exc.value)


def test_point_of_care_results_are_read_like_r01():
    """ORU^R30/R31/R32 (v2.5 7.3.4-7.3.6: a blood gas or glucose meter result, with or
    without an order) share R01's PID, ORC, OBR, OBX layout: they were refused as
    HL7_UNSUPPORTED_TYPE. Another ORU trigger still is, naming itself."""
    import pytest

    from tests.test_lab_normalizer import MSH
    obx = "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L|3.9-5.8|N|||F"
    for trigger in ("R30", "R31", "R32"):
        nm = norm(oru(obx, header=MSH.replace("ORU^R01^ORU_R01", f"ORU^{trigger}^ORU_{trigger}")))
        assert [(e.code, e.value_num) for e in nm.entries] == [("BIOCHIMIE", None),
                                                               ("2345-7", 5.4)]
    with pytest.raises(NormalizationError) as exc:
        norm(oru(obx, header=MSH.replace("ORU^R01^ORU_R01", "ORU^R40^ORU_R40")))
    assert (exc.value.code, str(exc.value)) == (
        "HL7_UNSUPPORTED_EVENT", "message type ORU^R40 is not handled by this intake")


def test_sn_ratio_or_range_without_its_comparator_component():
    """'1^:^128' or '1^-^5' where '^1^:^128' was due: the number was read as an unknown
    comparator and the whole message failed (OBX_BAD_NUMBER). A number followed by an SN
    separator is num1, with a warning; anything else still fails naming the field."""
    import pytest
    nm = norm(oru("OBX|1|SN|TIT^Titre rubéole^L||1^:^128||||||F",
                  "OBX|2|SN|HEM^Hématies^L||1^-^5|/champ|||||F",
                  "OBX|3|SN|CRP^CRP^L||<^0.5|mg/L|||||F"))
    tit, hem, crp = nm.entries[1:]
    assert (tit.value, tit.value_num, tit.details["sn"]) == (
        "1:128", None, {"comparator": "", "num1": "1", "separator": ":", "num2": "128"})
    assert hem.value == "1-5" and (crp.value, crp.comparator) == ("<0.5", "<")
    assert [w for w in nm.warnings if "SN without" in w] == [
        "OBX[5]-5: SN without its comparator component, read as num1^separator^num2",
        "OBX[6]-5: SN without its comparator component, read as num1^separator^num2"]
    with pytest.raises(NormalizationError) as exc:
        norm(oru("OBX|1|SN|TIT^Titre^L||2^x^3||||||F"))
    assert str(exc.value) == "OBX[5]-5: unknown SN comparator"


def test_order_canceled_by_its_orc_without_results_or_obr25():
    """A lab cancelling an order sends its ORC-1 'OC' (order canceled) or 'CR' (canceled as
    requested), OBR-25 left empty (optional before v2.5) and no OBX: the report's status was
    'unknown'. OBR-25 and the results' statuses still win; an ORC inherited from an earlier
    order says nothing of this one."""
    obr = ("OBR|1|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO|BIOCHIMIE^Bilan^L|||202403150810|"
           "||||||||||||||202403151045|||{}")
    orc = "ORC|{}|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO"
    for code in ("OC", "CR", "CA", "OD"):
        assert norm(oru(order=(orc.format(code), obr.format("")))).entries[0].status == \
            "cancelled"
    assert norm(oru(order=(orc.format("OC"), obr.format("F")))).entries[0].status == "final"
    assert norm(oru(order=(orc.format("RE"), obr.format("")))).entries[0].status == "unknown"
    inherited = norm(oru(order=(orc.format("OC"), obr.format("X"),
                                obr.format("").replace("24C0315-07", "24C0315-08"))))
    assert [e.status for e in inherited.entries] == ["cancelled", "unknown"]


def test_oul_results_specimen_first_or_order_first():
    """OUL^R22 (IHE LTW: SPM, its own OBX, then its orders OBR, ORC, NTE, TQ1, OBX) and R24
    (OBR, ORC, SPM, OBX) were refused as HL7_UNSUPPORTED_TYPE. The ORC follows its OBR
    there: it is that order's, with the NTE after it; an SPM dates its orders (SPM-17)
    and its own OBX (a volume) are filed with its first order."""
    import pytest

    def oul(trigger: str, *segs: str) -> str:
        msh = (f"MSH|^~\\&|SIL-BIO|LABO-DEMO|DMP|GHT|20240315104500||OUL^{trigger}^OUL_"
               f"{trigger}|OUL-{trigger}|P|2.5|||||FRA|UNICODE UTF-8")
        return "\r".join([msh, "PID|1||LD-778^^^LABO-DEMO^PI||DUPONT^Marie||19790328|F",
                          "PV1|1|O", *segs]) + "\r"

    r22 = norm(oul(
        "R22", "SPM|1|S-1||SER^Sérum^HL70487|||||||||||||202403150805",
        "OBX|1|NM|VOL^Volume^L||5|mL|||||F",
        "OBR|1|PL-1|FI-1^LABO-DEMO|GLY^Glycémie^L|||||||||||||||||||||F",
        "ORC|SC|PL-1|FI-1^LABO-DEMO", "NTE|1||À jeun", "TQ1|1||||||202403150800||R",
        "OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||F",
        "SPM|2|S-2||SER^Sérum^HL70487|||||||||||||202403150930",
        "OBR|2|PL-2|FI-2^LABO-DEMO|K^Potassium^L|||||||||||||||||||||F",
        "ORC|SC|PL-2|FI-2^LABO-DEMO",
        "OBX|1|NM|K^Potassium^L||4.1|mmol/L|3.5-5.1|N|||F",
        "OBR|3|PL-3|FI-3^LABO-DEMO|NA^Sodium^L|||||||||||||||||||||F",
        "OBX|1|NM|NA^Sodium^L||140|mmol/L|135-145|N|||F"))
    gly_report, vol, gly, k_report, k, na_report, na = r22.entries
    assert (gly_report.key, gly_report.details["comments"]) == (
        "report|FI-1|LABO-DEMO|GLY", ["À jeun"])
    assert (vol.key, vol.value_num, vol.parent_key) == (
        "result|FI-1|LABO-DEMO|VOL|L|", 5.0, gly_report.key)
    assert gly.effective == "2024-03-15T08:05+01:00" and gly.value_num == 5.4
    assert (k_report.key, k.effective, k.value_num) == (
        "report|FI-2|LABO-DEMO|K", "2024-03-15T09:30+01:00", 4.1)
    assert (na_report.key, na.effective) == ("report|FI-3|LABO-DEMO|NA",
                                             "2024-03-15T09:30+01:00")
    r24 = norm(oul(
        "R24", "OBR|1|PL-1|FI-1^LABO-DEMO|GLY^Glycémie^L|||||||||||||||||||||F",
        "ORC|SC|PL-1|FI-1^LABO-DEMO", "SPM|1|S-1||SER^Sérum^HL70487|||||||||||||202403150805",
        "OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||F",
        "OBR|2|PL-2|FI-2^LABO-DEMO|K^Potassium^L|||||||||||||||||||||F",
        "ORC|SC|PL-2|FI-2^LABO-DEMO", "SPM|2|S-2||SER^Sérum^HL70487|||||||||||||202403150930",
        "OBX|1|NM|K^Potassium^L||4.1|mmol/L|3.5-5.1|N|||F"))
    assert [(e.key, e.effective) for e in r24.entries] == [
        ("report|FI-1|LABO-DEMO|GLY", "2024-03-15T08:05+01:00"),
        ("result|FI-1|LABO-DEMO|GLY|L|", "2024-03-15T08:05+01:00"),
        ("report|FI-2|LABO-DEMO|K", "2024-03-15T09:30+01:00"),
        ("result|FI-2|LABO-DEMO|K|L|", "2024-03-15T09:30+01:00")]
    with pytest.raises(NormalizationError) as exc:
        norm(oul("R22", "SPM|1|S-1||SER^Sérum^HL70487", "OBX|1|NM|VOL^Volume^L||5|mL|||||F"))
    assert (exc.value.code, exc.value.location) == ("HL7_OBX_WITHOUT_OBR", "OBX[5]")


def test_mdm_t04_outside_cisis_is_a_status_change_and_t11_a_cancel():
    """MDM^T04 deletes a document under CI-SIS (MSH-21 names the profile); in HL7 v2.5 (9.3.4)
    it is 'document status change notification and content': a transcription system sends it
    when the report is signed (TXA-17 'LA'). Outside CI-SIS it deleted the report it was
    sending; it is now a new version of it (an OBX-11 'D' still deletes). MDM^T11 (document
    cancel notification, TXA alone) withdraws the document TXA-12 names; it was refused."""
    from normalizers.model import ACTION_DELETE, ACTION_NEW
    from tests.test_lab_normalizer import PID

    def mdm(trigger: str, *obx: str) -> str:
        msh = (f"MSH|^~\\&|TRANSCRIPTION|CLINIQUE-Y|DMP|GHT|20240316110000||MDM^{trigger}^"
               f"MDM_T02|MDM-{trigger}|P|2.5|||AL|NE||UNICODE UTF-8")
        txa = "TXA|1|CR^Compte rendu^L|TX|202403151000||||||||CR-4471^TRANSCRIPTION||||||LA"
        return "\r".join([msh, "EVN||20240316110000", PID, "PV1|1|O", txa, *obx]) + "\r"

    ed = "OBX|1|ED|18748-4^CR d'imagerie^LN||^text^plain^A^Compte rendu signé||||||{}"
    (signed,) = norm(mdm("T04", ed.format("F"))).entries
    assert (signed.key, signed.action, signed.replaces_key) == (
        "document|CR-4471|TRANSCRIPTION@CLINIQUE-Y", ACTION_NEW, None)
    assert signed.attachment.data == "Compte rendu signé".encode()
    (deleted,) = norm(mdm("T04", ed.format("D"))).entries
    assert deleted.action == ACTION_DELETE
    (cancel,) = norm(mdm("T11")).entries
    assert (cancel.type, cancel.key, cancel.action, cancel.replaces_key, cancel.source_ref) == (
        "document", "document|CR-4471|TRANSCRIPTION@CLINIQUE-Y", ACTION_DELETE,
        "document|CR-4471|TRANSCRIPTION@CLINIQUE-Y", "TXA[5]")
    assert cancel.attachment is None


def test_international_unit_spellings_map_to_ucum():
    """US and ELR senders (CDC ELR Realm, Cerner, athenahealth samples) spell the units the
    French table knew in French ('mUI/mL', 'UI') in English, or write UCUM codes it lacked:
    all were filed as unmapped units."""
    from normalizers.units import to_ucum
    expected = {"mIU/mL": "m[IU]/mL", "IU/mL": "[IU]/mL", "IU": "[IU]", "uIU/mL": "u[IU]/mL",
                "kU/L": "kU/L", "ng/dL": "ng/dL", "mm/hr": "mm/h", "thou/uL": "10*3/uL",
                "x10E6/uL": "10*6/uL", "cells/uL": "{cells}/uL", "/HPF": "/[HPF]",
                "/hpf": "/[HPF]", "mg/g{creat}": "mg/g{creat}", "secs": "s",
                "umol/24h": "umol/(24.h)", "‰": "[ppth]"}
    assert {u: to_ucum(u) for u in expected} == {u: (v, True) for u, v in expected.items()}
    assert to_ucum("G/L") == ("10*9/L", True) and to_ucum("g/L") == ("g/L", True)


def test_adt_identifier_move_is_refused_saying_what_it_is():
    """An ADT^A43 or A24/A34-A51 (links, identifier moves) is refused on purpose; the
    error said only 'not handled', as for a message type nobody knows. It now says what the
    message is and why it is not applied; an unknown trigger keeps the short text."""
    import pytest

    from tests.test_lab_normalizer import PID

    def adt(trigger: str) -> str:
        return "\r".join([f"MSH|^~\\&|HIS|HOPITAL|DMP|GHT|20240315104500||ADT^{trigger}^ADT_A39|"
                          f"ADT-{trigger}|P|2.5|||AL|NE||UNICODE UTF-8",
                          "EVN|A40|20240315104400", PID,
                          "MRG|LD-0^^^LABO-DEMO&1.2.250.1.999.42&ISO^PI"]) + "\r"

    with pytest.raises(NormalizationError) as exc:
        norm(adt("A30"))  # A40/A18 merges read since identity round 6, A43 since ADT round 20
    assert (exc.value.code, exc.value.location) == ("HL7_UNSUPPORTED_EVENT", "MSH-9")
    assert str(exc.value).startswith("message type ADT^A30 (merge person information) is not "
                                     "applied by this intake")
    with pytest.raises(NormalizationError) as exc:
        norm(adt("A99"))
    assert str(exc.value) == "message type ADT^A99 is not handled by this intake"


def test_notes_on_the_patient_and_on_the_order_are_kept():
    """NTE in the PATIENT group (PID [PD1] [{NTE}], v2.5 7.3.1: 'patient on anticoagulant')
    were dropped, and so were NTE some senders put between ORC and OBR. The patient's go to
    every report of that patient (details.patient_comments), the order's to its report."""
    from tests.test_lab_normalizer import OBR, ORC, PID
    nm = norm(oru("OBX|1|NM|INR^INR^L||2.6||2-3|N|||F", pid=PID + "\rNTE|1|P|Patient sous AVK",
                  order=(ORC, "NTE|1|L|Prélèvement au domicile", OBR, "NTE|2|L|Hémolyse légère")))
    r = by_ref(nm)
    report = r["OBR[6]"]
    assert report.details["patient_comments"] == ["Patient sous AVK"]
    assert report.details["comments"] == ["Prélèvement au domicile", "Hémolyse légère"]
    assert "comments" not in r["OBX[8]"].details


def test_an_obx_without_identifier_nor_value_is_skipped_not_fatal():
    """A radiology system's empty placeholder 'OBX|1|RP|||||||||F' (seen in HAPI's test
    messages): nothing observed, nothing to key. It failed the whole message (OBX_NO_CODE)
    and every result beside it; now it is skipped and said. An OBX without identifier but
    with a value still fails: that value would be lost."""
    import pytest

    nm = norm(oru("OBX|1|RP|||||||||F",
                  "OBX|2|NM|GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||F",
                  "OBX|3|NM|||||||||X",
                  "NTE|1|L|Tube non reçu"))
    report, gly = nm.entries
    assert gly.value_num == 5.4 and gly.parent_key == report.key
    assert report.details["text"] == "Tube non reçu"
    said = [w for w in nm.warnings if "nor value" in w]
    assert said == ["OBX[5]: observation without identifier nor value, nothing to file",
                    "OBX[7]: observation without identifier nor value, nothing to file"]
    with pytest.raises(NormalizationError) as exc:
        norm(oru("OBX|1|NM|||5.4|mmol/L|||||F"))
    assert (exc.value.code, exc.value.location) == ("OBX_NO_CODE", "OBX[5]-3")


def test_a_number_sent_as_text_with_its_unit_is_a_quantity():
    """Blood gas analysers and some middleware type every value FT or ST (a Nova Prime sends
    'OBX|1|FT|^^^pCO2^pCO2^NOVABIO^M||40.0|mmHg|...'): read as text the result fell out of
    every trend and never met the same result sent as NM (dedupe level 4). With its unit,
    a number (or comparator and number) is read as one; the type stays as sent. Without a
    unit, or when the text is more than a number, it stays text."""
    nm = norm(oru("OBX|1|FT|^^^PCO2^pCO2^GAZO||5.33|kPa|4.67 to 6.00|N|||F",
                  "OBX|2|FT|^^^PH^pH^GAZO||7.415||7.35 to 7.45|N|||F",
                  "OBX|3|ST|CRP^CRP^L||<0,5|mg/L|<5|N|||F",
                  "OBX|4|ST|AGHBS^Antigène HBs^L||Négatif|UI/mL|||||F",
                  "OBX|5|TX|LCR^Aspect du LCR^L||12|/mm3|||||F",
                  "OBX|6|TX|LCR^Aspect du LCR^L||Liquide clair||||||F"))
    r = by_ref(nm)
    pco2, ph, crp, aghbs, lcr = (r[f"OBX[{i}]"] for i in range(5, 10))
    assert (pco2.value_type, pco2.value, pco2.value_num, pco2.unit) == ("FT", "5.33", 5.33, "kPa")
    assert (ph.value, ph.value_num) == ("7.415", None)
    assert (crp.value, crp.value_num, crp.comparator, crp.unit) == ("<0,5", 0.5, "<", "mg/L")
    assert (aghbs.value, aghbs.value_num) == ("Négatif", None)
    assert (lcr.value, lcr.value_num) == ("12\nLiquide clair", None)  # one text, no number
    assert "OBX[5]-5: number with a unit sent as FT, read as a number" in nm.warnings
    assert "OBX[7]-5: decimal comma read as a decimal point" in nm.warnings
    assert not any("Négatif" in w for w in nm.warnings)


def test_reference_pointer_value_is_the_pointer_and_what_it_points_at():
    """RP (v2.5 2.A.65): pointer ^ application ^ type ^ subtype, e.g. a lab system's PDF on a
    file server ('file:////data/pdf/...pdf^DGLab^AP^PDF') or a viewer URL. Kept whole as
    text, the value was the pointer glued to its other components; now the pointer is the
    value, escapes read (\\E\\ a backslash of a UNC path, \\T\\ or a raw '&' in a URL)."""
    nm = norm(oru("OBX|1|RP|CRPDF^Compte rendu PDF^L|1|https://resultats.labo-demo.fr/cr?id=24C"
                  "0315-07\\T\\fmt=pdf&v=2^SIL-BIO^AP^PDF||||||F",
                  "OBX|2|RP|ECG^Tracé ECG^L||\\E\\\\E\\srv-ecg\\E\\traces\\E\\0412.tif||||||F"))
    r = by_ref(nm)
    pdf, ecg = r["OBX[5]"], r["OBX[6]"]
    assert pdf.value_type == "RP"
    assert pdf.value == "https://resultats.labo-demo.fr/cr?id=24C0315-07&fmt=pdf&v=2"
    assert pdf.details["reference"] == {"pointer": pdf.value, "application": "SIL-BIO",
                                        "type_of_data": "AP", "subtype": "PDF",
                                        "media_type": "application/pdf"}
    assert ecg.value == "\\\\srv-ecg\\traces\\0412.tif"
    assert ecg.details["reference"] == {"pointer": ecg.value}


def test_units_of_length_time_and_power_of_ten_spellings_map_to_ucum():
    """'mm' (an ultrasound system's biometry), 'mo^month^ANSI' (CDC VAERS), 'x10p3/ml' (a
    French LIS writing 10 to the power 3 as 'p3', seen on the IHE France list), 'bpm^^ISO+'
    (a Cerner vital sign), 'DEG C' (OpenMRS) were filed as unmapped units. 'mM'
    (millimolar) folds like 'mm': it must never become a millimetre, nor 'MM' either."""
    from normalizers.units import to_ucum
    expected = {"mm": "mm", "mo": "mo", "wk": "wk", "d": "d", "/min": "/min",
                "x10p3/ml": "10*3/mL", "x10p9/l": "10*9/L", "mM": "mmol/L", "bpm": "/min",
                "DEG C": "Cel", "degC": "Cel"}
    assert {u: to_ucum(u) for u in expected} == {u: (v, True) for u, v in expected.items()}
    assert to_ucum("MM") == ("MM", False)
    nm = norm(oru("OBX|1|NM|BIP^Diamètre bipariétal^L|1|51|mm|||||F",
                  "OBX|2|NM|LEUCU^Leucocytes urinaires^L||15|x10p3/ml|<10|H|||F"))
    r = by_ref(nm)
    assert (r["OBX[5]"].unit, r["OBX[6]"].unit, r["OBX[6]"].unit_original) == \
        ("mm", "10*3/mL", "x10p3/ml")
    assert not any("unit_unmapped" in e.details for e in nm.entries)


def test_the_labs_own_code_beside_its_loinc_is_kept():
    """LOINC in the primary triplet and the lab's own code in the alternate one (SoftLab:
    '25836-8^^LN^LPLOG^Log (Copies / ml)^L'): the local code and its text were dropped, and
    with them what tells apart two results of one LOINC (a viral load in copies/mL and in
    log). Kept as the local code (as when the LOINC is the alternate), its text the display
    when the LOINC comes without one."""
    nm = norm(oru("OBX|1|NM|25836-8^^LN^CVVIH^Charge virale VIH (copies/mL)^L|1|1250|copies/mL"
                  "|||||F",
                  "OBX|2|NM|25836-8^^LN^CVLOG^Charge virale VIH (log)^L|2|3,10||||||F",
                  "OBX|3|NM|2345-7^Glucose^LN^GLY^Glycémie^L||5.4|mmol/L|||||F",
                  "OBX|4|NM|2160-0^Créatinine^LN||78|umol/L|||||F"))
    r = by_ref(nm)
    copies, log, gly, crea = (r[f"OBX[{i}]"] for i in range(5, 9))
    assert (copies.code, copies.system, copies.display) == \
        ("25836-8", "LN", "Charge virale VIH (copies/mL)")
    assert copies.details["local_code"] == {"code": "CVVIH", "system": "L",
                                            "display": "Charge virale VIH (copies/mL)"}
    assert log.display == "Charge virale VIH (log)" and log.details["local_code"]["code"] == \
        "CVLOG"
    assert copies.key != log.key and copies.mapped and log.mapped
    assert gly.display == "Glucose" and gly.details["local_code"]["code"] == "GLY"
    assert crea.display == "Créatinine" and "local_code" not in crea.details


def test_a_time_value_is_an_iso_time():
    """TM (v2.5 2.A.75: HH[MM[SS[.S]]][+/-ZZZZ]), e.g. the time a sample was taken at home or
    a clotting time of day: kept as the raw digits ('0830') it read as a number-like text
    nothing could compare. Now an ISO time, its precision and offset as sent; a value that
    is no time is kept as sent and said, not fatal."""
    nm = norm(oru("OBX|1|TM|HPRELEV^Heure du prélèvement^L||0830||||||F",
                  "OBX|2|TM|HINJ^Heure de l'injection^L||071530.5+0100~0915||||||F",
                  "OBX|3|TM|HREPAS^Heure du dernier repas^L||7h30||||||F"))
    r = by_ref(nm)
    assert r["OBX[5]"].value == "08:30"
    assert r["OBX[6]"].value == "07:15:30.5+01:00"
    assert r["OBX[6]"].details["other_values"] == ["0915"]
    assert (r["OBX[7]"].value_type, r["OBX[7]"].value) == ("TM", "7h30")
    assert "OBX[7]-5: not a valid HL7 time, kept as sent" in nm.warnings
    assert not any("7h30" in w for w in nm.warnings)


def test_a_missing_status_says_why():
    """OBX-11 empty failed with 'truncated message?' even when the segment went on: a sender
    that leaves out one field before it (OBX-10) puts the status in OBX-12. The error says
    which case it is, naming OBX-11, never a value."""
    import pytest

    cases = {"OBX|1|NM|VS^Vitesse de sédimentation^L||15|mm/h|0-12|H|": "missing; truncated",
             "OBX|1|CE|VS^Vitesse de sédimentation^L||15|mm/h|0-12|H||||F":
                 "empty and OBX-12 holds a result status",
             "OBX|1|NM|VS^Vitesse de sédimentation^L||15|mm/h|0-12|H||||20240315": "empty"}
    for obx, why in cases.items():
        with pytest.raises(NormalizationError) as exc:
            norm(oru(obx))
        assert (exc.value.code, exc.value.location) == ("OBX_NO_STATUS", "OBX[5]-11")
        assert str(exc.value).startswith(f"OBX[5]-11: observation result status (OBX-11) "
                                         f"is {why}")
        assert "15" not in str(exc.value)


def test_reference_ranges_of_other_spellings_have_their_limits_in_fhir():
    """OBX-7 is text and stays so; the FHIR export reads its limits. It knew 'low-high'
    only: one-sided ranges ('<5', '>= 60', the commonest in French reports), a Nova
    analyser's '7.35 to 7.45' and '3,5 à 5,0' were exported as text without low/high."""
    from dataclasses import asdict

    from dossiers.fhir.ranges import reference_range
    nm = norm(oru("OBX|1|NM|CRP^CRP^L||3|mg/L|< 5|N|||F",
                  "OBX|2|NM|DFG^DFG^L||72|mL/min/1.73m2|>= 60|N|||F",
                  "OBX|3|NM|PH^pH^L||7.41||7.35 to 7.45|N|||F",
                  "OBX|4|NM|K^Potassium^L||4,1|mmol/L|3,5 à 5,0|N|||F",
                  "OBX|5|NM|HB^Hémoglobine^L||13.5|g/dL|12-16|N|||F",
                  "OBX|6|NM|TSH^TSH^L||1.2|mUI/L|voir commentaire|N|||F"))
    limits = {e.source_ref: {k: v["value"] for k, v in reference_range(asdict(e))[0].items()
                             if k in ("low", "high")}
              for e in nm.entries if e.reference_range}
    assert limits == {"OBX[5]": {"high": 5.0}, "OBX[6]": {"low": 60.0},
                      "OBX[7]": {"low": 7.35, "high": 7.45},
                      "OBX[8]": {"low": 3.5, "high": 5.0},
                      "OBX[9]": {"low": 12.0, "high": 16.0}, "OBX[10]": {}}
    assert reference_range(asdict(nm.entries[1]))[0]["high"]["code"] == "mg/L"


def test_a_test_name_in_the_coding_system_slot_is_the_text(tmp_path):
    """INLOG (a French LIS, message posted on the IHE France laboratory list) writes OBX-3
    'LEUUR^^Leucocytes': the name one slot too far. It was filed as the coding system and
    the display was lost. Words there (blanks, lower case, accents), the text slot empty and
    no coding system of that name (table 0396, code_systems.csv, 99zzz, OIDs): the text, the
    code local. The key keeps OBX-3.3 as sent (a correction still replaces what was filed
    before), and a per-source mapping row keyed the old way ('Leucocytes' as the coding
    system) still maps; a row keyed 'L' wins. Coded values and OBR-4 alike."""
    from normalizers.codes import load_mappings, text_in_system_slot
    from parsers.hl7v2.er7 import parse_text

    words = ["Leucocytes", "ACIDE URIQUE", "GLYCÉMIE", "Hématies urinaires", "Positif",
             "Anti-thrombine"]
    systems = ["LN", "L", "SCT", "99LAB", "99zzz", "HL70078", "hl70136", "NABM", "Local",
               "loinc", "SNOMED CT", "1.2.250.1.213.2.7", "urn:oid:2.16.840.1.113883.6.1",
               "GLYCEMIE", "I10", "ISO+", "123", "expandedYes-NoIndicator", "MetaDMPMSS",
               "TRE_R38-SpecialiteOrdinale", "labo", "Expandedyesnoindicator2"]
    assert all(text_in_system_slot(w) for w in words)
    assert not any(text_in_system_slot(s) for s in systems)
    (tmp_path / "inlog-lab.csv").write_text(
        "coding_system,local_code,loinc,display\n"
        "Leucocytes,LEUUR,30405-5,Leucocytes [#/volume] in Urine\n"
        "L,HEMUR,30391-7,Erythrocytes [#/volume] in Urine\n"
        "Hématies urinaires,HEMUR,5821-4,(old row keyed the old way)\n", encoding="utf-8")
    maps = load_mappings(tmp_path)
    text = oru("OBX|1|NM|LEUUR^^Leucocytes||15|/mm3|< 10|H|||F",
               "OBX|2|NM|HEMUR^^Hématies urinaires||3|/mm3|< 10|N|||F",
               "OBX|3|CE|NITR^^Nitrites||NEG^^Négatif||||||F",
               "OBX|4|NM|GLY^Glycémie^L||5.4|mmol/L|||||F",
               "OBX|5|NM|PROT^^GLYCEMIE||0.1|g/L|||||F",
               "OBX|6|CE|JEUN^^A jeun||Y^^expandedYes-NoIndicator||||||F",
               order=("ORC|RE||24C1102-31^INLOG",
                      "OBR|1||24C1102-31^INLOG|CYTOU^^Cytologie urinaire|||202411020815||||||"
                      "|||||||||||F"))
    nm = normalize_message_as(parse_text(text), "inlog-lab", maps)
    report, leu, hem, nitr, gly, prot, jeun = nm.entries
    assert (report.code, report.system, report.display) == ("CYTOU", "L", "Cytologie urinaire")
    assert (leu.code, leu.system, leu.display, leu.mapped) == \
        ("30405-5", "LN", "Leucocytes [#/volume] in Urine", True)
    assert leu.details["local_code"] == {"code": "LEUUR", "system": "L",
                                         "display": "Leucocytes"}
    assert leu.key == "result|24C1102-31|INLOG|LEUUR|Leucocytes|"  # as before: as sent
    assert (hem.code, hem.mapped) == ("30391-7", True)  # keyed 'L' wins over the old key
    assert (nitr.code, nitr.display, nitr.value) == ("NITR", "Nitrites", "Négatif")
    assert nitr.details["coded_value"] == {"code": "NEG", "display": "Négatif", "system": ""}
    assert (gly.display, gly.system) == ("Glycémie", "L")  # a normal identifier: unchanged
    assert (prot.system, prot.display) == ("GLYCEMIE", None)  # one upper-case word: as sent
    assert (jeun.display, jeun.value) == ("A jeun", "Y")  # CI-SIS's camel-case system stays
    assert jeun.details["coded_value"]["system"] == "expandedYes-NoIndicator"
    said = sorted(w for w in nm.warnings if "name of the coding system" in w)
    assert said == [
        "OBR-4: name of the coding system holds words, text empty: read as the text, the "
        "code as local (first at OBR[4]-4)",
        "OBX-3: name of the coding system holds words, text empty: read as the text, the "
        "code as local (first at OBX[5]-3)",
        "OBX-5: name of the coding system holds words, text empty: read as the text, the "
        "code as local (first at OBX[7]-5)"]


def normalize_message_as(msg, source, maps):
    from normalizers.lab import normalize_message
    return normalize_message(msg, source, maps)


def test_oru_o01_is_read_as_r01_and_the_listener_agrees():
    """INLOG sends its results as ORU^O01, a trigger ORU does not have in v2.5 (O01 is
    ORM's, an order). tables/message_type_aliases.csv reads it as ORU^R01 with a warning;
    the MLLP listener's refusal of unsupported types reads the same table, so it accepts
    what processing accepts and still refuses ORM^O01, which processing refuses."""
    from normalizers.lab import handles_message_type
    from parsers.hl7v2.header import read_header
    from pipelines.acknowledge import _unsupported
    from tests.test_lab_normalizer import MSH

    o01 = MSH.replace("ORU^R01^ORU_R01", "ORU^O01")
    # GLY in g/L: the demo table maps it to 2345-7, Glucose [Mass/volume] (in mmol/L the
    # unit contradicts the code, a warning of its own since round 14)
    nm = norm(oru("OBX|1|NM|GLY^Glycémie^L||0.97|g/L|0.70-1.10|N|||F", header=o01))
    assert [e.type for e in nm.entries] == ["lab_report", "lab_result"]
    assert nm.warnings == ["MSH-9: ORU^O01 is no trigger of HL7 v2.5, read as ORU^R01"]
    for sent, read in (("ORU^O01", True), ("oru^o01 ", True), ("ORM^O01", False),
                       ("ORU^O02", False)):
        header = read_header(MSH.replace("ORU^R01^ORU_R01", sent).encode())
        assert handles_message_type(*sent.split("^")) is read
        assert (_unsupported(header) is None) is read
    import pytest
    with pytest.raises(NormalizationError) as exc:
        norm(oru("OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|||||F",
                 header=MSH.replace("ORU^R01^ORU_R01", "ORM^O01")))
    assert (exc.value.code, exc.value.location) == ("HL7_UNSUPPORTED_TYPE", "MSH-9")


def test_code_points_escaped_as_hex_are_text():
    """Interface engines escape what their charset lacks as the character's code point in
    four hex digits: 'µmol/l' sent '\\X00B5\\mol/l' (a French LIS behind an ASCII-only link).
    The zero byte made the whole sequence be kept as sent: the unit was '\\X00B5\\mol/l',
    unmapped. Read as UTF-16 when that is printable text, or line ends and tabs as '\\X0D\\'
    gives them ('\\X000D\\', as HAPI and IPF escape a CR); a real NUL ('\\X00\\',
    '\\X0000\\') or another control character still stays as sent."""
    from parsers.hl7v2.er7 import Delimiters
    from parsers.hl7v2.escape import unescape

    d = Delimiters()
    assert unescape("\\X00B5\\mol/l", d) == "µmol/l"
    assert unescape("Cr\\X00E9\\atinine \\X00B500E9\\", d) == "Créatinine µé"
    for kept in ("\\X00\\", "\\X0000\\", "\\X0001\\", "\\X00B5AB\\"):
        assert unescape(kept, d) == kept
    assert unescape("\\X000D\\", d) == unescape("\\X0D\\", d) == "\r"
    assert unescape("\\XC2B5\\", d) == unescape("\\XB5\\", d) == "µ"  # bytes, as before
    nm = norm(oru("OBX|1|NM|CREAT^Cr\\X00E9\\atinine^L||78|\\X00B5\\mol/l|45-84||||F"))
    crea = nm.entries[1]
    assert (crea.display, crea.unit, crea.unit_original) == ("Créatinine", "umol/L", "µmol/l")
    assert "unit_unmapped" not in crea.details


def test_french_unit_spellings_map_to_ucum():
    """Units French labs write that were filed unmapped: 'mn' (minutes), 'mm/1ère h' (a
    sedimentation rate), 'UA/ml' (arbitrary units of an immunoassay), 'mU/ml', 'UI/dl',
    'ng/ml FEU' (D-dimers in fibrinogen-equivalent units, LOINC's ng/mL{FEU}),
    'µmol/mmol', 'g/100 ml', durations ('jours', 'sem', 'mois', 'ans', 'SA' weeks of
    amenorrhoea). 'J' stays the joule's: no one-letter 'j' for days."""
    from normalizers.units import to_ucum
    expected = {"mn": "min", "mm/1ère h": "mm/h", "UA/ml": "[arb'U]/mL", "mU/ml": "mU/mL",
                "UI/dl": "[IU]/dL", "ng/ml FEU": "ng/mL{FEU}", "mg/l FEU": "mg/L{FEU}",
                "µmol/mmol": "umol/mmol", "mmol/mmol": "mmol/mmol", "g/100 ml": "g/dL",
                "jours": "d", "sem": "wk", "mois": "mo", "ans": "a", "SA": "wk"}
    assert {u: to_ucum(u) for u in expected} == {u: (v, True) for u, v in expected.items()}
    assert to_ucum("J") == ("J", False)
    nm = norm(oru("OBX|1|NM|DDI^D-Dimères^L||350|ng/ml FEU|< 500|N|||F",
                  "OBX|2|NM|TPOAC^Anticorps anti-TPO^L||12|UA/ml|< 34|N|||F",
                  "OBX|3|NM|VS1^Vitesse de sédimentation^L||12|mm/1ère h|< 20|N|||F"))
    assert [e.unit for e in nm.entries[1:]] == ["ng/mL{FEU}", "[arb'U]/mL", "mm/h"]
    assert not any("unit_unmapped" in e.details for e in nm.entries)


def test_one_sided_ranges_in_french_words_have_their_limit_in_fhir():
    """French labs print one-sided ranges in words: 'inf à 5', 'Inf. à 0,5', 'sup à 60',
    'supérieur ou égal à 60'. The text stays as sent; the FHIR export now reads its limit
    as it does for '< 5' (inf: high, sup: low). Words that only start alike stay text."""
    from dataclasses import asdict

    from dossiers.fhir.ranges import reference_range
    nm = norm(oru("OBX|1|NM|CRP^CRP^L||3|mg/l|inf à 5|N|||F",
                  "OBX|2|NM|TROP^Troponine^L||0,01|µg/l|Inf. à 0,5|N|||F",
                  "OBX|3|NM|DFG^DFG^L||72|ml/min/1,73m²|sup à 60|N|||F",
                  "OBX|4|NM|HDL^HDL^L||1,4|mmol/l|supérieur ou égal à 1,0|N|||F",
                  "OBX|5|ST|IMM^Immunité^L||Faible||infection à 5 ans|N|||F"))
    limits = {e.source_ref: {k: v["value"] for k, v in reference_range(asdict(e))[0].items()
                             if k in ("low", "high")}
              for e in nm.entries if e.reference_range}
    assert limits == {"OBX[5]": {"high": 5.0}, "OBX[6]": {"high": 0.5},
                      "OBX[7]": {"low": 60.0}, "OBX[8]": {"low": 1.0}, "OBX[9]": {}}
    assert nm.entries[1].reference_range == "inf à 5"  # the text as sent


def test_the_prescriber_from_orc12_and_with_its_rpps():
    """French SILs name the prescriber in ORC-12 and often leave OBR-16 empty (v2.5 says
    they are the same person): the report had no prescriber. And of an RPPS-identified
    prescriber ('10003791976^MARTIN^Paul^^^DR^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^
    RPPS') only the name was kept, which does not tell two Dr MARTIN apart: the
    identifier, its authority (the OID) and its type are kept beside it. An ORC inherited
    from an earlier order lends nothing; a lone value is a name, not an identifier."""
    rpps = "10003791976^MARTIN^Paul^^^DR^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^RPPS"
    nm = norm(oru("OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|||||F", order=(
        f"ORC|RE|P24-778^CABINET|24K0211-05^LBM||CM||||20241102103000|||{rpps}",
        "OBR|1|P24-778^CABINET|24K0211-05^LBM|GLYC^Glycémie^L|||20241102081500",
        "OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|||||F",
        "OBR|2|P24-779^CABINET|24K0211-06^LBM|CRP^CRP^L|||20241102081500",
        "OBX|1|NM|CRP^CRP^L||3|mg/L|||||F",
        "ORC|RE|P24-780^CABINET|24K0211-07^LBM||CM||||20241102103000|||DURAND",
        "OBR|3|P24-780^CABINET|24K0211-07^LBM|K^Potassium^L|||20241102081500")))
    reports = [e for e in nm.entries if e.type == "lab_report"]
    first, inherited, lone = (r.details for r in reports)
    assert first["ordering_provider"] == "DR Paul MARTIN"
    assert first["ordering_provider_id"] == {"id": "10003791976",
                                             "authority": "1.2.250.1.71.4.2.1", "type": "RPPS"}
    assert "ordering_provider" not in inherited
    assert lone["ordering_provider"] == "DURAND" and "ordering_provider_id" not in lone
    sample = norm(oru("OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|||||F"))  # OBR-16 name only
    assert "ordering_provider_id" not in sample.entries[0].details


def test_thousands_grouped_by_blanks_are_one_number():
    """French reports print counts with their thousands grouped by a blank ('12 000' urine
    leucocytes per mL, '250 000' platelets per mm3, a no-break space too): the NM failed as
    not a number and the whole message with it. Groups of exactly three digits read as one
    number, the value kept as sent and the reading said; a dot alone ('1.250') is never a
    thousands separator, and other texts still fail naming the field only."""
    import pytest
    nm = norm(oru("OBX|1|NM|LEUU^Leucocytes urinaires^L||12 000|/mL|< 10 000|H|||F",
                  "OBX|2|NM|PLAQ^Plaquettes^L||250\u00a0000|/mm3|||||F",
                  "OBX|3|NM|HEMU^Hématies urinaires^L||> 1 000|/mL|||||F",
                  "OBX|4|SN|VOL^Volume^L||^1 250,5|mL|||||F"))
    leu, plaq, hem, vol = nm.entries[1:]
    assert (leu.value, leu.value_num) == ("12 000", 12000.0)
    assert plaq.value_num == 250000.0
    assert (hem.value_num, hem.comparator) == (1000.0, ">")
    assert vol.value_num == 1250.5
    assert "OBX[5]-5: digits grouped by blanks read as one number" in nm.warnings
    for bad in ("12 00", "1 2345", "1.25 000"):
        with pytest.raises(NormalizationError) as exc:
            norm(oru(f"OBX|1|NM|PLAQ^Plaquettes^L||{bad}|/mm3|||||F"))
        assert exc.value.code == "OBX_BAD_NUMBER" and bad not in str(exc.value)


def test_result_status_spelt_out_as_a_word():
    """Some senders write OBX-11 as the word ('Final', 'Corrected'): it was filed with an
    unknown status and a warning, and a correction did not supersede."""
    ok = norm(oru("OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||Final"))
    assert ok.entries[1].status == "final"
    assert not any("unknown result status" in w for w in ok.warnings)
    fixed = norm(oru("OBX|1|NM|GLY^Glycémie^L||5.6|mmol/L|3.9-5.8|N|||Corrected"))
    assert (fixed.entries[1].status, fixed.entries[1].action) == ("corrected", "replace")


def test_note_right_after_the_specimen_is_the_orders_comment():
    """An NTE sent right after the SPM (not in v2.5's ORU, but sent: 'échantillon hémolysé',
    which says how far a potassium is to be trusted) was dropped without a word. It is now a
    comment of the order's report."""
    obx = "OBX|1|NM|2823-3^Potassium^LN||5.9|mmol/L|3.5-5.0|H|||F"
    nm = norm(oru(obx, tail=("SPM|1|||SER^Sérum^HL70487", "NTE|1||Échantillon hémolysé")))
    report, potassium = nm.entries
    assert report.details["comments"] == ["Échantillon hémolysé"]
    assert "comments" not in potassium.details


def test_numbers_in_scientific_notation_or_grouped_by_dots_or_commas():
    """A viral load printed '1.2E+03' by its analyser, a count '1.250,5' by a German-style
    export or '250,000,000' by a US one: each has one reading and failed the whole message
    (OBX_BAD_NUMBER). The value stays as sent; one group alone ('1.250', '1,250') is still
    a decimal, as a French lab means it."""
    nm = norm(oru("OBX|1|NM|CVVIH^Charge virale VIH^L||1.2E+03|copies/mL|||||F",
                  "OBX|2|NM|CVVHB^Charge virale VHB^L||3,5e-2|log|||||F",
                  "OBX|3|SN|CVVHC^Charge virale VHC^L||<^1.0E2|UI/mL|||||F",
                  "OBX|4|NM|PLQ^Plaquettes^L||1.250,5|G/L|||||F",
                  "OBX|5|NM|LEUUR^Leucocytes urinaires^L||1.250.000|/mL|||||F",
                  "OBX|6|NM|HEMUR^Hématies urinaires^L||1,250.5|/mL|||||F",
                  "OBX|7|NM|BACT^Numération bactérienne^L||250,000,000|UFC/mL|||||F",
                  "OBX|8|NM|CREA^Créatinine^L||1.250|mg/dL|||||F",
                  "OBX|9|NM|UREE^Urée^L||1,250|g/L|||||F",
                  "OBX|10|NM|K^Potassium^L||>1.0e+01|mmol/L|||||F"))
    r = by_ref(nm)
    got = [(r[f"OBX[{i}]"].value, r[f"OBX[{i}]"].value_num, r[f"OBX[{i}]"].comparator)
           for i in range(5, 15)]
    assert got == [("1.2E+03", 1200.0, None), ("3,5e-2", 0.035, None), ("<1.0E2", 100.0, "<"),
                   ("1.250,5", 1250.5, None), ("1.250.000", 1250000.0, None),
                   ("1,250.5", 1250.5, None), ("250,000,000", 250000000.0, None),
                   ("1.250", 1.25, None), ("1,250", 1.25, None), (">1.0e+01", 10.0, ">")]
    said = {w.split(": ", 1)[0]: w.split(": ", 1)[1] for w in nm.warnings}
    assert said["OBX[5]-5"] == "number in scientific notation read as one number"
    assert said["OBX[8]-5"] == "thousands grouped by dots read as one number"
    assert said["OBX[11]-5"] == "thousands grouped by commas read as one number"
    assert "OBX[12]-5" not in said


def test_numbers_that_are_no_number_still_fail_naming_the_field():
    import pytest
    for value in ("1.25.0", "12,50.3", "1E+999", "E5", "1.2E", "1.2,5"):
        with pytest.raises(NormalizationError) as exc:
            norm(oru(f"OBX|1|NM|PLQ^Plaquettes^L||{value}|G/L|||||F"))
        assert (exc.value.code, str(exc.value)) == ("OBX_BAD_NUMBER",
                                                     "OBX[5]-5: not a number (value type NM)")


def test_code_points_beyond_latin1_escaped_as_hex_are_text():
    """'\\X20AC\\' is the euro sign's code point as an engine writes what its charset lacks:
    read as bytes it was ' ¬' (a blank and a 'not' sign), '\\X2264\\' ('≤') was '"d'. Hex
    data whose bytes read only as printable ASCII or controls is no text anyone escapes; its
    code point reading is taken when printable. Bytes that are text stay bytes: UTF-8, the
    message's charset, line ends ('\\X0D0A\\'), latin-1 ('\\XC9C8\\' is 'ÉÈ')."""
    import dataclasses

    from parsers.hl7v2.er7 import Delimiters
    from parsers.hl7v2.escape import unescape

    utf8 = Delimiters()
    latin9 = dataclasses.replace(utf8, charset="iso-8859-15")
    for d in (utf8, latin9):
        assert unescape("12 \\X20AC\\", d) == "12 €"
        assert unescape("\\X2264\\ 5", d) == "≤ 5"
        assert unescape("c\\X0153\\ur, l\\X2019\\acte", d) == "cœur, l’acte"
        assert unescape("\\XE282AC\\", d) == "€"
        assert unescape("a\\X0D0A\\b\\X09\\c", d) == "a\r\nb\tc"
        assert unescape("\\XC9C8\\", d) == "ÉÈ"
        assert unescape("12\\XA0A0\\000", d) == "12\u00a0\u00a0000"  # no-break spaces
        assert unescape("\\X7C\\", d) == "|"  # one byte: no code point
        assert unescape("\\X1B2842\\", d) == "\x1b(B"
        # the message's delimiters escaped as hex rather than \F\ \S\: those characters,
        # not the code point U+7C5E they would spell together
        assert unescape("A\\X7C5E\\B", d) == "A|^B"
        assert unescape("\\X265C\\", d) == "&\\"
    assert unescape("\\XA4\\", latin9) == "€"
    for d in (utf8, latin9):  # a Windows sender's byte, a C1 control in ISO 8859
        assert unescape("c\\X9C\\ur \\X80\\", d) == "cœur €"
    nm = norm(oru("OBX|1|ST|TARIF^Tarif de l'acte^L||Dépassement : 12 \\X20AC\\||||||F",
                  "OBX|2|NM|ALB^Albumine urinaire^L||5|mg/L|\\X2264\\ 20||||F"))
    r = by_ref(nm)
    assert r["OBX[5]"].value == "Dépassement : 12 €"
    assert r["OBX[6]"].reference_range == "≤ 20"


def test_loinc_of_the_pan_canadian_database_is_loinc():
    """A Québec or British Columbia lab codes OBX-3 'local ^ text ^ its system ^ LOINC ^ text ^
    pCLOCD' (the pan-Canadian LOINC Observation Code Database: LOINC plus codes of its own).
    The LOINC was lost: the result was filed under the lab's code alone, unmapped. A code of
    LOINC's form with its check digit under pCLOCD (or LNC, the UMLS's name) is LOINC; any
    other stays as sent. The key keeps the code as sent."""
    obr = ("OBR|1|CMD-7^SERVICE-MED|24Q0315-07^CHU-QC|301.0100^Formule sanguine^00065227"
           "^57021-8^FSC et différentielle^pCLOCD|||202403150810|||||||||^TREMBLAY^Gisèle"
           "||||||202403151045|||F")
    nm = norm(oru("OBX|1|NM|301.0500^Leucocytes^00065227^6690-2^Leucocytes^pCLOCD|1|10.1|"
                  "10\\S\\9/L|3.1-9.7|H|||F",
                  "OBX|2|NM|301.0700^Hémoglobine^00065227^718-7^Hémoglobine^PCLOCD|1|140|g/L|||||F",
                  "OBX|3|NM|301.0900^Hématocrite^00065227^4544-4^Hématocrite^pCLOCD|1|0.34|L/L|||||F",
                  "OBX|4|ST|XQC001-2^Remarque^pCLOCD|1|Échantillon lipémique||||||F",
                  "OBX|5|NM|PLQ^Plaquettes^L^777-3^Plaquettes^LNC|1|125|10\\S\\9/L|||||F",
                  order=("ORC|RE|CMD-7^SERVICE-MED|24Q0315-07^CHU-QC", obr)))
    report, wbc, hb, hct, note, plq = nm.entries
    assert (report.code, report.system, report.mapped) == ("57021-8", "LN", True)
    assert (wbc.code, wbc.system, wbc.mapped) == ("6690-2", "LN", True)
    assert wbc.details["local_code"] == {"code": "301.0500", "system": "00065227",
                                         "display": "Leucocytes"}
    assert wbc.key == "result|24Q0315-07|CHU-QC|301.0500|00065227|1"
    assert (hb.code, hb.system) == ("718-7", "LN")
    assert (hct.code, hct.system, hct.mapped) == ("301.0900", "00065227", False)  # bad check
    assert (note.code, note.system, note.mapped) == ("XQC001-2", "pCLOCD", False)
    assert (plq.code, plq.system) == ("777-3", "LN")


def test_notes_after_the_visit_or_the_orders_timing_are_kept():
    """An NTE after the PV1 ('Renseignements cliniques', as LIS write what the prescriber
    said) is outside v2.5's ORU grammar and was dropped without a word; it speaks of the
    patient, as one after the PID does. One after the order's TQ1 or CTD is the order's,
    not dropped either."""
    from tests.test_lab_normalizer import MSH, OBR, ORC, PID
    text = "\r".join([
        MSH, PID, "PV1|1|E|URG^^^CHU-DEMO", "NTE|1||Renseignements cliniques : patiente sous AVK",
        ORC, OBR, "TQ1|1||||||202403150810||R", "NTE|1||Prélèvement différé : tube conservé à 4 °C",
        "OBX|1|NM|INR^INR^L||2.8||2.0-3.0|N|||F", "NTE|1||Résultat contrôlé",
    ]) + "\r"
    nm = norm(text)
    report, inr = nm.entries
    assert report.details["patient_comments"] == ["Renseignements cliniques : patiente sous AVK"]
    assert report.details["comments"] == ["Prélèvement différé : tube conservé à 4 °C"]
    assert inr.details["comments"] == ["Résultat contrôlé"]
    assert not any("AVK" in w or "4 °C" in w for w in nm.warnings)


def test_a_unit_sent_as_a_code_with_the_unit_in_its_text():
    """A French HIS relaying a bedside monitor (Mediboard: Philips MDIL codes) writes OBX-6
    '0004-17a0^°C^MDIL' (IEEE 11073 monitors '266016^mmHg^MDC'): the unit is CE.2, CE.1 the
    device's code for it. The code was filed as the unit, unmapped. When the code is no
    unit and the text is one, the text is the unit and the code is kept beside it; a unit
    code that maps still wins, and an unknown text leaves things as they were."""
    nm = norm(oru("OBX|1|NM|0002-4b60^Température centrale^MDIL|0|37.5|0004-17a0^°C^MDIL|||||F",
                  "OBX|2|NM|0002-4a15^PA systolique^MDIL|0|120|0004-0f20^mmHg^MDIL|||||F",
                  "OBX|3|NM|GLY^Glycémie^L||5.4|mmol/L^millimoles par litre^UCUM|||||F",
                  "OBX|4|NM|CREA^Créatinine^L||78|UMOLL^µmol/L^99LAB|||||F",
                  "OBX|5|NM|LEU^Leucocytes^L||7.2|GIGAL^giga par l^99LAB|||||F"))
    r = by_ref(nm)
    temp, pas, gly, crea, leu = (r[f"OBX[{i}]"] for i in range(5, 10))
    assert (temp.unit, temp.unit_original) == ("Cel", "°C")
    assert temp.details["unit_code"] == {"code": "0004-17a0", "system": "MDIL"}
    assert "unit_unmapped" not in temp.details
    assert (pas.unit, pas.unit_original) == ("mm[Hg]", "mmHg")
    assert (gly.unit, gly.unit_original) == ("mmol/L", "mmol/L") and "unit_code" not in gly.details
    assert (crea.unit, crea.unit_original) == ("umol/L", "µmol/L")
    assert (leu.unit, leu.unit_original, leu.details["unit_unmapped"]) == ("GIGAL", "GIGAL", True)


def test_windows_bytes_in_a_latin_message_are_their_characters():
    """A French LIS on Windows declares 8859/1 (or nothing) and writes cp1252: 'Œstradiol',
    'œdème', 'Bœuf' hold 0x8C / 0x9C, the euro 0x80, the apostrophe 0x92. Those bytes are C1
    controls in ISO 8859, never text: they were filed as controls in names and results
    (a name that then matched no one). They are read as the cp1252 characters they are,
    with the warning as before; the rest stays in the declared charset."""
    from normalizers.lab import normalize_message
    from parsers.hl7v2 import parse_message
    from tests.test_lab_normalizer import MSH

    pid = "PID|||LD-902^^^LABO-DEMO&1.2.250.1.999.42&ISO^PI||BŒUF^Maëlle^^^^^L||19850704|F"
    for label in ("8859/1", ""):
        header = MSH.replace("UNICODE UTF-8", label)
        text = oru("OBX|1|NM|E2^Œstradiol^L||152|pmol/L|||||F",
                   "OBX|2|ST|COM^Commentaire^L||Œdème, l’échantillon coûte 12 €||||||F",
                   header=header, pid=pid)
        msg = parse_message(text.encode("cp1252"))
        nm = normalize_message(msg, "demo-lab", None)
        r = by_ref(nm)
        assert nm.identity.family == "BŒUF"
        assert r["OBX[5]"].display == "Œstradiol"
        assert r["OBX[6]"].value == "Œdème, l’échantillon coûte 12 €"
        assert any("C1 bytes read as cp1252" in w for w in msg.warnings)
        assert not any("Œ" in w or "BŒUF" in w for w in msg.warnings + nm.warnings)


def test_an_nm_written_as_an_sn_or_with_empty_repetitions_keeps_its_number():
    """'^182' or '<^0.5' under OBX-2 NM (the SN layout of the standard's own glucose example,
    the type left at NM): the number in component 2 was lost without a word, and '<^0.5'
    failed the message. An empty repetition ('~5,4', '5.4~', as some exports pad) holds
    nothing: the value is the first one filled, and nothing is said about the empty one."""
    nm = norm(oru("OBX|1|NM|GLY^Glycémie^L||^182|mg/dL|70-105|H|||F",
                  "OBX|2|NM|CRP^Protéine C réactive^L||<^0.5|mg/L|<5||||F",
                  "OBX|3|NM|K^Potassium^L||~5,4|mmol/L|||||F",
                  "OBX|4|NM|NA^Sodium^L||140~|mmol/L|||||F",
                  "OBX|5|NM|HBA1C^Hémoglobine glyquée^L||48^48.0|mmol/mol|||||F"))
    r = by_ref(nm)
    got = [(r[f"OBX[{i}]"].value, r[f"OBX[{i}]"].value_num, r[f"OBX[{i}]"].comparator)
           for i in range(5, 10)]
    assert got == [("182", 182.0, None), ("<0.5", 0.5, "<"), ("5,4", 5.4, None),
                   ("140", 140.0, None), ("48", 48.0, None)]
    assert all("other_values" not in r[f"OBX[{i}]"].details for i in range(5, 10))
    said = [w for w in nm.warnings if "written as an SN" in w]
    assert [w.split(":")[0] for w in said] == ["OBX[5]-5", "OBX[6]-5"]
    assert not any("repetitions" in w for w in nm.warnings)


def test_a_coded_value_with_an_empty_repetition_is_the_one_code():
    """'POS^Positif^L~' (an export closing every repetition): the empty repetition made the
    value 'Positif; ' and the coded value a list of two, one of them empty, so that the
    one code was no longer read as the result's code."""
    nm = norm(oru("OBX|1|CWE|AGHBS^Antigène HBs^L||POS^Positif^L~||||||F",
                  "OBX|2|CE|ABO^Groupe sanguin^L||~A^A^L||||||F",
                  "OBX|3|CE|RH^Rhésus^L||^^~||||||F"))
    r = by_ref(nm)
    assert (r["OBX[5]"].value, r["OBX[5]"].details["coded_value"]) == (
        "Positif", {"code": "POS", "display": "Positif", "system": "L"})
    assert r["OBX[6]"].value == "A" and r["OBX[6]"].details["coded_value"]["code"] == "A"
    assert r["OBX[7]"].value is None and "coded_value" not in r["OBX[7]"].details


def test_a_number_in_scientific_notation_sent_as_text_with_its_unit():
    """A viral load typed ST by its analyser's middleware, '1.2E+03' with 'copies/mL': a
    number with its unit, as a plain '40.0' typed ST already is; without a unit it stays
    text."""
    nm = norm(oru("OBX|1|ST|CVVIH^Charge virale VIH^L||1.2E+03|copies/mL|||||F",
                  "OBX|2|ST|CVVHC^Charge virale VHC^L||<1,5E1|UI/mL|||||F",
                  "OBX|3|ST|LOT^Lot réactif^L||2E10||||||F"))
    r = by_ref(nm)
    assert (r["OBX[5]"].value, r["OBX[5]"].value_num, r["OBX[5]"].value_type) == (
        "1.2E+03", 1200.0, "ST")
    assert (r["OBX[6]"].value_num, r["OBX[6]"].comparator) == (15.0, "<")
    assert (r["OBX[7]"].value, r["OBX[7]"].value_num) == ("2E10", None)


def test_iso_8601_times_in_ts_fields_are_read():
    """FHIR-minded engines write TS fields in ISO 8601's extended form ('2024-03-15T08:10:00',
    with 'Z' or an offset): one reading only, and the whole message failed (HL7_BAD_DATE).
    Forms that can be read two ways ('15/03/2024') are still refused."""
    nm = norm(oru("OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||F|||2024-03-15T08:10:00"
                  "|||||2024-03-15T10:45:00Z"))  # OBX-14, OBX-19
    (gly,) = [e for e in nm.entries if e.code == "2345-7"]
    assert (gly.effective, gly.issued) == ("2024-03-15T08:10:00+01:00",
                                           "2024-03-15T10:45:00+00:00")
    import pytest
    with pytest.raises(NormalizationError) as exc:
        norm(oru("OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||F|||15/03/2024"))
    assert (exc.value.code, exc.value.location) == ("HL7_BAD_DATE", "OBX[5]-14")


def test_french_and_english_unit_spellings_of_counts_and_seconds():
    """'/mmc' (par millimètre cube, older French blood counts), '/nL', 'seconds': filed as
    unmapped units."""
    from normalizers.units import to_ucum
    assert [to_ucum(u) for u in ("/mmc", "/nL", "seconds")] == [
        ("/mm3", True), ("/nL", True), ("s", True)]


# -- round 6: French lab groups' and hospital SILs' messages ------------------------------------
def test_a_unit_declared_ucum_in_a_local_spelling_is_read_as_the_ucum_unit():
    """OBX-6 'µmol/L^^UCUM' (UCUM writes micro 'u') or 'G/L^^UCUM' (UCUM would read gauss per
    litre): filed as sent, the creatinine and the leucocytes were units no CDA lab report's
    result met (that path maps every unit through the table) and no UCUM reader understood.
    A UCUM code is kept as sent ('mmol/l' is UCUM too), an unknown one too."""
    nm = norm(oru("OBX|1|NM|CREA^Créatinine^L||78|µmol/L^^UCUM|45-84|N|||F",
                  "OBX|2|NM|LEUCO^Leucocytes^L||7,2|G/L^^UCUM|4.0-10.0|N|||F",
                  "OBX|3|NM|GLY^Glycémie^L||5.4|mmol/l^millimole par litre^UCUM|3.9-5.8|N|||F",
                  "OBX|4|NM|CRP^CRP^L||3|mg/L^^UCUM|<5||||F",
                  "OBX|5|NM|ECBU^Numération^L||5|{CFU}/mL^^UCUM|||||F",
                  "OBX|6|NM|AAA^Test maison^L||5|{bidule}^^UCUM|||||F"))
    r = by_ref(nm)
    assert [(r[f"OBX[{i}]"].unit, r[f"OBX[{i}]"].unit_original) for i in range(5, 11)] == [
        ("umol/L", "µmol/L"), ("10*9/L", "G/L"), ("mmol/L", "mmol/l"), ("mg/L", "mg/L"),
        ("{CFU}/mL", "{CFU}/mL"), ("{bidule}", "{bidule}")]
    assert not any("unit_unmapped" in r[f"OBX[{i}]"].details for i in range(5, 11))
    assert [w for w in nm.warnings if "declared UCUM" in w] == [
        "OBX[5]-6: unit declared UCUM is no UCUM code, read as the UCUM unit it spells",
        "OBX[6]-6: unit declared UCUM is no UCUM code, read as the UCUM unit it spells"]


def test_comparators_written_as_one_sign():
    """'≤0,25' (a MIC), '≥ 90' (an eGFR) from systems that print the signs: the whole message
    failed (OBX_BAD_NUMBER). Read as '<=' and '>=', with a warning; the value text as sent."""
    nm = norm(oru("OBX|1|NM|CIPRO^Ciprofloxacine CMI^L|1|≤0,25|mg/L||S|||F",
                  "OBX|2|SN|OXA^Oxacilline CMI^L|1|≤^0.25|mg/L||S|||F",
                  "OBX|3|ST|DFG^DFG CKD-EPI^L||≥ 90|mL/min/1,73m²|> 60||||F",
                  "OBX|4|ST|DFG2^DFG estimé^L||≥ 90||||||F"))
    r = by_ref(nm)
    assert [(r[f"OBX[{i}]"].value, r[f"OBX[{i}]"].value_num, r[f"OBX[{i}]"].comparator)
            for i in range(5, 9)] == [("≤0,25", 0.25, "<="), ("<=0.25", 0.25, "<="),
                                      ("≥ 90", 90.0, ">="), ("≥ 90", None, None)]
    assert r["OBX[7]"].unit == "mL/min/{1.73_m2}"
    said = [w for w in nm.warnings if "one sign" in w]
    assert said == ["OBX[5]-5: comparator written as one sign, read as <=",
                    "OBX[6]-5: comparator written as one sign, read as <=",
                    "OBX[7]-5: comparator written as one sign, read as >="]


def test_nm_value_with_components_loses_nothing_silently():
    """NM has no components. A power of ten typed with an unescaped '^' ('>10^3' copies/mL, a
    viral load over a thousand) arrived as '>10' and '3' and was filed as '>10', a thousand
    times less, without a word: it is the number it spells. Anything else after the number
    ('4.5^H') was dropped without a word: the number is still the first component, the value
    as sent is kept (details.value_sent), and said."""
    nm = norm(oru("OBX|1|NM|CVHIV^Charge virale VIH^L||>10^7|copies/mL|<20|H|||F",
                  "OBX|2|NM|CVHBV^Charge virale VHB^L||2,5x10^6|UI/mL|||||F",
                  "OBX|3|NM|CVHCV^Charge virale VHC^L||<10^1|UI/mL|||||F",
                  "OBX|4|NM|K^Potassium^L||4.5^H|mmol/L|3.5-5.1||||F",
                  "OBX|5|NM|NA^Sodium^L||140^^|mmol/L|135-145||||F"))
    r = by_ref(nm)
    got = [(r[f"OBX[{i}]"].value, r[f"OBX[{i}]"].value_num, r[f"OBX[{i}]"].comparator)
           for i in range(5, 10)]
    assert got == [(">10^7", 1e7, ">"), ("2,5x10^6", 2.5e6, None), ("<10^1", 10.0, "<"),
                   ("4.5", 4.5, None), ("140", 140.0, None)]
    assert r["OBX[8]"].details["value_sent"] == "4.5^H"
    assert "value_sent" not in r["OBX[9]"].details  # empty components say nothing
    assert [w.split(": ")[0] for w in nm.warnings if "power of ten" in w] == [
        "OBX[5]-5", "OBX[6]-5", "OBX[7]-5"]
    assert "OBX[8]-5: components after the first are no part of an NM value: the number is " \
        "the first, the value as sent is kept apart" in nm.warnings


def test_an_order_dated_only_by_the_end_of_its_collection():
    """v2.3 SILs that fill OBR-8 (end of the collection) and leave OBR-7 empty: the results
    were filed undated without a word. OBR-8 dates them, with a warning; an order with no
    time at all is said."""
    obr = ("OBR|1|CMD-1|24C0315-07^LABO-DEMO|PU24^Protéinurie des 24 heures^L|||"
           "|200403160800|||||200403160930|URI|^MARTIN^Paul||||||200403161044|||F")
    nm = norm(oru("OBX|1|NM|2889-4^Protéinurie des 24 h^LN||0,35|g/24h|<0,15|H|||F",
                  order=(ORC, obr)))
    report, result = nm.entries
    assert report.effective == result.effective == "2004-03-16T08:00+01:00"
    assert "OBR[4]-7: empty; the end of the observation (OBR-8) dates the order" in nm.warnings
    undated = obr.replace("|200403160800|", "||")
    nm = norm(oru("OBX|1|NM|2889-4^Protéinurie des 24 h^LN||0,35|g/24h|<0,15|H|||F",
                  "OBX|2|NM|2888-6^Protéinurie^LN||350|mg/24h|<150|H|||F|||200403160800",
                  order=(ORC, undated)))
    assert [e.effective for e in nm.entries] == [None, None, "2004-03-16T08:00+01:00"]
    assert "OBR[4]-7: no observation date/time for the order (OBR-7, SPM-17, OBR-8 empty) " \
        "nor for some of its results (OBX-14): they are filed without one" in nm.warnings


def test_report_status_told_by_mixed_result_statuses():
    """OBR-25 is optional before v2.5; the report's status was its results' when they agreed
    and 'unknown' otherwise: a validated potassium beside a pending sodium said nothing."""
    obr = ("OBR|1|CMD-1|24C0315-07^LABO-DEMO|IONO^Ionogramme^L|||202403150810|||||||||"
           "^MARTIN^Paul||||||202403151045|||")
    expected = {("F", "P"): "partial", ("F", "I"): "partial", ("F", "X"): "final",
                ("C", "F"): "corrected", ("P", "I"): "preliminary", ("F", "D"): "final",
                ("X", "N"): "cancelled", ("F", "F"): "final", ("F", "Z"): "unknown"}
    for (k, na), status in expected.items():
        nm = norm(oru(f"OBX|1|NM|2823-3^Potassium^LN||4.2|mmol/L|3.5-5.1|N|||{k}",
                      f"OBX|2|NM|2951-2^Sodium^LN||140|mmol/L|135-145|N|||{na}",
                      order=(ORC, obr)))
        assert (k, na, nm.entries[0].status) == (k, na, status)


def test_sn_colony_count_as_a_power_of_ten():
    """A urine culture's count typed '>^10^5' (10^5 with its '^' unescaped) arrives as
    comparator '>', num1 '10', separator '5': it was filed as the text '>105' without a word,
    a thousand times less than the lab meant. A separator/suffix that is none of HL7's is now
    read as the power of ten it spells, or kept as sent with a warning."""
    nm = norm(oru("OBX|1|SN|564-5^Numération bactérienne^LN|1|>^10^5|UFC/mL|<10^3||||F",
                  "OBX|2|SN|564-5^Numération bactérienne^LN|2|^1^E^4|UFC/mL|||||F",
                  "OBX|3|SN|5334-8^Rubéole IgG titre^LN||^1^:^128||||||F",
                  "OBX|4|SN|5767-9^Aspect^LN||^2^+||||||F",
                  "OBX|5|SN|ZZZ^Dilution^L||^5^x||||||F"))
    r = by_ref(nm)
    got = [(r[f"OBX[{i}]"].value, r[f"OBX[{i}]"].value_num, r[f"OBX[{i}]"].comparator)
           for i in range(5, 10)]
    assert got == [(">10^5", 1e5, ">"), ("1E4", 1e4, None), ("1:128", None, None),
                   ("2+", None, None), ("5x", None, None)]
    assert r["OBX[5]"].unit == "{CFU}/mL"
    assert r["OBX[9]"].details["sn"]["separator"] == "x"
    assert [w.split(": ")[0] for w in nm.warnings if "SN" in w] == [
        "OBX[5]-5", "OBX[6]-5", "OBX[9]-5"]


def test_a_loinc_with_a_wrong_check_digit_is_said():
    """'2823-4' for potassium's '2823-3' (a typo in the sender's table): the result is filed
    under a code no other result has, out of the patient's potassium trend. Filed as sent,
    now with a warning naming the field; valid LOINC codes say nothing."""
    nm = norm(oru("OBX|1|NM|2823-4^Potassium^LN||4.2|mmol/L|3.5-5.1|N|||F",
                  "OBX|2|NM|K^Potassium^L^2951-3^Sodium^LN||140|mmol/L|135-145|N|||F",
                  "OBX|3|NM|2951-2^Sodium^LN||140|mmol/L|135-145|N|||F",
                  "OBX|4|NM|1988-5^CRP^LN||3|mg/L|<5||||F"))
    assert [e.code for e in nm.entries[1:]] == ["2823-4", "2951-3", "2951-2", "1988-5"]
    assert [w for w in nm.warnings if "check digit" in w] == [
        "OBX[5]-3: LOINC code fails its check digit (a typo in the sender's table?): filed "
        "as sent",
        "OBX[6]-3: LOINC code fails its check digit (a typo in the sender's table?): filed "
        "as sent"]


def test_abnormal_flags_in_lower_case_are_read_as_their_codes():
    """A hospital LIS writing OBX-8 'hh' (a troponin far above the limit) or 'a': filed as
    sent, no HL7 table 0078 code, so no reader (the FHIR export among them) saw the panic
    value. Read as HH and A; what is no code stays as sent."""
    nm = norm(oru("OBX|1|NM|TROPO^Troponine T hs^L||45|ng/L|<14|hh|||F",
                  "OBX|2|CE|SARS^SARS-CoV-2 PCR^L||POS^Positif^L||NEG|a~pos|||F",
                  "OBX|3|NM|K^Potassium^L||4.2|mmol/L|3.5-5.1|N|||F",
                  "OBX|4|NM|NA^Sodium^L||150|mmol/L|135-145|+|||F",
                  "OBX|5|NM|CL^Chlorure^L||90|mmol/L|98-107|bas|||F"))
    # 'bas' (below the range: 90 under 98-107) is L since round 14: a French word of
    # tables/hl7_flag_words.csv, read as its code with a warning; '+' stays as sent
    assert [e.interpretation for e in nm.entries[1:]] == ["HH", "A,POS", "N", "+", "L"]


def test_observation_date_without_time_keeps_the_orders_time_of_that_day():
    """OBX-14 '20240315' (the day only) where OBR-7 says 08:10 that day: the result was filed
    on the day alone, its hour lost, never meeting the same potassium of a CDA lab report
    (dedupe level 4 compares the instant). Another day, or a time, is OBX-14's as sent."""
    nm = norm(oru("OBX|1|NM|K^Potassium^L||4.2|mmol/L|3.5-5.1|N|||F|||20240315",
                  "OBX|2|NM|NA^Sodium^L||140|mmol/L|135-145|N|||F|||20240314",
                  "OBX|3|NM|CL^Chlorure^L||100|mmol/L|98-107|N|||F|||202403150805"))
    assert [e.effective for e in nm.entries[1:]] == [
        "2024-03-15T08:10+01:00", "2024-03-14", "2024-03-15T08:05+01:00"]


def test_susceptibility_panel_names_its_organism_by_loinc():
    """OBR-26 '600-7&&LN^1' names the organism by the LOINC it is filed under, while its OBX-3
    was sent with the lab's code first ('GERME^Germe^L^600-7^^LN'): the panel was not linked
    to it (only the code as sent was compared)."""
    obr1 = "OBR|1|CMD-9|24M0412-01^LABO-DEMO|ECBU^ECBU^L|||202404120730|||||||||||||||" \
           "202404141000|||F"
    obr2 = ("OBR|2|CMD-9|24M0412-01-A^LABO-DEMO|ATB^Antibiogramme^L|||202404120730|||||||||"
            "||||||202404141000|||F|600-7&&LN^1^Escherichia coli|||CMD-9&LABO-DEMO^"
            "24M0412-01&LABO-DEMO")
    nm = norm(oru(order=(ORC, obr1, "OBX|1|CWE|GERME^Germe^L^600-7^^LN|1|ECOLI^Escherichia "
                         "coli^L||||||F", ORC, obr2,
                         "OBX|1|SN|AMX^Amoxicilline CMI^L|1|>^16|mg/L||R|||F")))
    _, germ, panel, _amx = nm.entries
    assert (germ.code, panel.parent_key) == ("600-7", germ.key)


def test_coded_value_sent_as_words_alone_is_text_not_a_code():
    """'Escherichia coli' or 'Pas de germe isolé' typed into a CE/CWE OBX-5 with no code: it
    was filed as a code without coding system, and exported as such a coding. It is the
    value's original text (CWE.9) now; a one-word code ('POS') stays a code."""
    from dossiers.fhir.values import observation_value
    nm = norm(oru("OBX|1|CWE|600-7^Bactérie identifiée^LN|1|Escherichia coli||||||F",
                  "OBX|2|CE|600-7^Bactérie identifiée^LN|2|Pas de germe isolé||||||F",
                  "OBX|3|CE|5195-3^Antigène HBs^LN||NEG||||||F"))
    germ, none, hbs = nm.entries[1:]
    assert (germ.value, germ.details["coded_value"]) == (
        "Escherichia coli", {"code": "", "display": "", "system": "",
                             "original_text": "Escherichia coli"})
    assert none.value == "Pas de germe isolé"
    # a coded value without its code: a CodeableConcept of text only (was a valueString)
    assert observation_value({"value": germ.value}, germ.details, "") == {
        "valueCodeableConcept": {"text": "Escherichia coli"}}
    assert (hbs.value, hbs.details["coded_value"]["code"]) == ("NEG", "NEG")


def test_pending_results_with_a_placeholder_text_do_not_fail_the_message():
    """OBX-11 I (specimen in lab, results pending) or O (order detail, no result) with 'En
    cours' or 'Résultat à suivre' under NM, SN or DT: read as a value, the whole message
    failed (OBX_BAD_NUMBER, HL7_BAD_DATE) and the sodium beside it with it. No result is
    due under those statuses: the text is kept apart (details.value_withheld), as for X."""
    nm = norm(oru("OBX|1|NM|NA^Sodium^L||140|mmol/L|135-145|N|||F",
                  "OBX|2|NM|K^Potassium^L||En cours|mmol/L|3.5-5.1||||I",
                  "OBX|3|SN|TIT^Titre rubéole^L||Résultat à suivre||||||I",
                  "OBX|4|DT|DDR^Date des dernières règles^L||A venir||||||O",
                  "OBX|5|NM|CL^Chlorure^L||||||||I"))
    na, k, tit, ddr, cl = nm.entries[1:]
    assert (na.value_num, na.status) == (140.0, "final")
    assert [(e.status, e.value, e.details.get("value_withheld")) for e in (k, tit, ddr, cl)] \
        == [("registered", None, "En cours"), ("registered", None, "Résultat à suivre"),
            ("registered", None, "A venir"), ("registered", None, None)]
    assert [w.split(":")[0] for w in nm.warnings if "not filed as a result" in w] == [
        "OBX[6]-5", "OBX[7]-5", "OBX[8]-5"]


def test_susceptibility_panel_without_its_organism_names_the_organisms_key():
    """A panel in a message of its own: its parent_key is the key its organism was filed
    under (OBR-29's filler order, OBR-26.1's code and coding system, OBR-26.2's sub-id), for
    deposit to find it in the dossier; without OBR-29 or a coding system, none."""
    obr = ("OBR|1|CMD-9-A|24M0412-01-A1^LABO-DEMO|29576-6^Antibiogramme^LN|||202404120730||||G"
           "|||||||||||202404151000|||F|600-7&Bactérie identifiée&LN^1^Escherichia coli|||"
           "CMD-9&LABO-DEMO^24M0412-01&LABO-DEMO")
    amx = "OBX|1|SN|18864-9^Ampicilline CMI^LN|1|>^16|mg/L||R|||F"
    panel = norm(oru(amx, order=(ORC, obr))).entries[0]
    assert panel.parent_key == "result|24M0412-01|LABO-DEMO|600-7|LN|1"
    unsaid = obr.replace("CMD-9&LABO-DEMO^24M0412-01&LABO-DEMO", "")
    assert norm(oru(amx, order=(ORC, unsaid))).entries[0].parent_key is None
