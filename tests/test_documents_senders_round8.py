"""Documents carried in HL7v2, round 8: a parent document number sent without the root its
replacement names, MetaDMPMSS flags of each order of an ORU carrying several documents,
base64 pieces encoded one by one, a text report sent one line per repetition of OBX-5, a
TXA-12 naming its assigning authority and no number.

Why: each test pins what a real sender sends and what we must file for it; the ones marked
'was' failed before the fix of the same commit."""

from __future__ import annotations

import base64

import pytest

from normalizers.documents import b64decode_lenient
from normalizers.model import ACTION_REPLACE, DOCUMENT, LAB_RESULT, NormalizationError
from tests.test_documents_normalizer import PID, b64, cda, norm
from tests.test_documents_senders import _filed
from tests.test_documents_senders_round4 import _auto, _through

ROOT = "1.2.250.1.71.4.2.2.120456789"  # the RIS's OID, as its CDA ids are rooted
REPORT = "^TEXT^PLAIN^Base64^" + b64("Échographie abdominale : foie de taille normale, "
                                     "pas de dilatation des voies biliaires.".encode())
FIXED = "^TEXT^PLAIN^Base64^" + b64("Échographie abdominale : foie de taille normale, "
                                    "vésicule alithiasique. Compte rendu corrigé.".encode())


def _mdm(trigger: str, txa12: str, txa13: str = "", ed: str = REPORT, obx11: str = "F") -> str:
    """An MDM (v2.5) of an imaging centre's RIS: the report as text, TXA-12 and TXA-13 as
    given, TXA-17 LA, TXA-19 AV."""
    segs = [f"MSH|^~\\&|RIS-Y|IMAGERIE-EST|DMP|GHT|202405061130||MDM^{trigger}^MDM_T02|"
            f"RIS-{trigger}-{len(txa12)}{obx11}|P|2.5|||||FRA|UNICODE UTF-8",
            "EVN||20240506113000", PID, "PV1|1|O",
            f"TXA|1|18748-4^CR d'imagerie médicale^LN|TX|202405061100||||||||{txa12}|{txa13}"
            "||||LA||AV",
            f"OBX|1|ED|18748-4^CR d'imagerie médicale^LN||{ed}||||||{obx11}"]
    return "\r".join(segs) + "\r"


def _doc(nm):  # noqa: ANN001, ANN202
    docs = [e for e in nm.entries if e.type == DOCUMENT]
    assert len(docs) == 1
    return docs[0]


# -- TXA-13 sent bare, TXA-12 under its assigning authority -------------------------------------
@pytest.mark.parametrize(("txa12", "txa13", "parent", "read"), [
    (f"CR-101^RIS-Y^{ROOT}^ISO", "CR-100", f"{ROOT}^CR-100", True),
    (f"CR-101^RIS-Y^{ROOT}^ISO", "CR-100^RIS-Y", f"{ROOT}^CR-100", True),
    (f"CR-101^{ROOT}", "CR-100", f"{ROOT}^CR-100", True),  # the OID in EI.2
    (f"{ROOT}.A71024000082", "A71024000081", f"{ROOT}^A71024000081", True),  # ANS dotted id
    # unchanged: another application's number, a root of its own, no root on TXA-12
    (f"CR-101^RIS-Y^{ROOT}^ISO", "CR-100^DPI-Z", "CR-100|DPI-Z@IMAGERIE-EST", False),
    (f"CR-101^RIS-Y^{ROOT}^ISO", "CR-100^^1.2.250.1.71.4.2.7^ISO", "1.2.250.1.71.4.2.7^CR-100",
     False),
    ("CR-101^RIS-Y", "CR-100", "CR-100|RIS-Y@IMAGERIE-EST", False),
])
def test_a_bare_parent_number_is_read_under_the_root_of_txa12(txa12, txa13, parent, read):
    """MDM^T10 'CR-101^RIS-Y^<OID>^ISO' replacing TXA-13 'CR-100': the parent is the RIS's
    CR-100, filed under its OID. Was: 'document|CR-100|RIS-Y', a document nobody filed."""
    nm = norm(_mdm("T10", txa12, txa13, FIXED, "C"))
    doc = _doc(nm)
    assert (doc.action, doc.replaces_key) == (ACTION_REPLACE, f"document|{parent}")
    said = [w for w in nm.warnings if w.startswith("TXA[5]-13: parent document number sent "
                                                   "without the assigning authority")]
    assert len(said) == read


def test_the_replacement_of_a_report_filed_under_its_root_supersedes_it(sqlite_ctx):
    """The T02 then the T10 of one RIS, TXA-13 bare: one current version, the corrected one.
    Was: 'replaces a document the dossier does not hold', both versions current."""
    ctx = _auto(sqlite_ctx)
    rows = _through(ctx, _mdm("T02", f"CR-100^RIS-Y^{ROOT}^ISO"),
                    _mdm("T10", f"CR-101^RIS-Y^{ROOT}^ISO", "CR-100", FIXED, "C"))
    assert [r.status for r in rows] == ["deposited", "deposited"]
    assert not any("does not hold" in w for w in rows[1].warnings or [])
    docs = [(e.key, e.current) for e in _filed(ctx) if e.type == DOCUMENT]
    assert docs == [(f"document|{ROOT}^CR-100", False), (f"document|{ROOT}^CR-101", True)]


# -- MetaDMPMSS flags of each order of an ORU with several documents ----------------------------
def _order(n: int, ext: str, flags: dict[str, str], result: bool = False) -> list[str]:
    """One ORDER_OBSERVATION of a CI-SIS ORU: its CR-BIO (a CDA), a glucose result when
    ``result``, then its own MetaDMPMSS flags."""
    segs = [f"ORC|NW|9876543{n}^Nephro|100{n}-E1^labo",
            f"OBR|{n}|9876543{n}^Nephro|100{n}-E1^labo|11502-2^CR d'examens biologiques^LN|||"
            "202405060810" + "|" * 18 + "F",
            f"OBX|1|ED|11502-2^CR d'examens biologiques^LN||^TEXT^XML^Base64^{b64(cda(ext))}"
            "||||||F"]
    if result:
        segs.append("OBX|2|NM|2345-7^Glucose^LN||5,4|mmol/L|3,9-5,8|N|||F")
    segs += [f"OBX|{k}|CE|{code}^Drapeau^MetaDMPMSS||{value}^^HL70136||||||F"
             for k, (code, value) in enumerate(flags.items(), start=3)]
    return segs


def _oru(*orders: list[str]) -> str:
    head = ["MSH|^~\\&|SIL-Y|labo|PFI-X|Organisation-X|202405061050||ORU^R01^ORU_R01|MSG-81|P|"
            "2.5|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2", PID, "PV1|1|I|UFNEPH"]
    return "\r".join([*head, *(s for o in orders for s in o)]) + "\r"


def _masking(nm) -> dict[str, dict[str, bool]]:  # noqa: ANN001
    return {e.key.rpartition("^")[2]: e.masking for e in nm.entries if e.type == DOCUMENT}


def test_each_order_of_an_oru_is_masked_by_its_own_flags():
    """Two CR-BIO in one ORU, each in its order with its flags, MASQUE_PS N then Y: only the
    second is masked, the first's glucose is not. Was: both masked (Y kept, 'sent twice')."""
    nm = norm(_oru(_order(1, "DOC-1", {"MASQUE_PS": "N", "DESTDMP": "Y"}, result=True),
                   _order(2, "DOC-2", {"MASQUE_PS": "Y", "DESTDMP": "Y"})))
    assert _masking(nm) == {"DOC-1": {"MASQUE_PS": False, "DESTDMP": True},
                            "DOC-2": {"MASQUE_PS": True, "DESTDMP": True}}
    glucose, = (e for e in nm.entries if e.type == LAB_RESULT)
    assert glucose.masking["MASQUE_PS"] is False
    assert not any("sent twice" in w for w in nm.warnings)
    assert any(w.startswith("OBR[5], OBR[11]: each order carries its document(s) with "
                            "MetaDMPMSS flags of its own") for w in nm.warnings)


def test_an_order_for_mssante_only_is_left_out_and_the_others_filed():
    """DESTDMP=N on the second order alone: its document is not filed, the first is. Was:
    the whole message refused (CISIS_NOT_FOR_DMP), the first document with it."""
    nm = norm(_oru(_order(1, "DOC-1", {"DESTDMP": "Y"}),
                   _order(2, "DOC-2", {"MASQUE_PS": "Y", "DESTDMP": "N"})))
    assert _masking(nm) == {"DOC-1": {"DESTDMP": True}}
    assert any(w.startswith("OBR[9]: CISIS_NOT_FOR_DMP at OBX[12]-5: this order's documents "
                            "are addressed to MSSanté recipients only") for w in nm.warnings)
    # every order for MSSanté only: refused as before; one set of flags: the message's
    with pytest.raises(NormalizationError) as exc:
        norm(_oru(_order(1, "DOC-1", {"DESTDMP": "N"}),
                  _order(2, "DOC-2", {"MASQUE_PS": "Y", "DESTDMP": "N"})))
    assert exc.value.code == "CISIS_NOT_FOR_DMP"
    nm = norm(_oru(_order(1, "DOC-1", {"MASQUE_PS": "Y"}), _order(2, "DOC-2", {})))
    assert _masking(nm) == {"DOC-1": {"MASQUE_PS": True}, "DOC-2": {"MASQUE_PS": True}}


# -- base64 pieces encoded one by one ----------------------------------------------------------
CDA_BYTES = cda("DOC-8")  # a CI-SIS CR-BIO, level 1
PIECES = [base64.b64encode(CDA_BYTES[i:i + 400]).decode()
          for i in range(0, len(CDA_BYTES), 400)]


def _ed_obx(n: int, value: str) -> str:
    return f"OBX|{n}|ED|18748-4^CR d'imagerie médicale^LN||{value}||||||F"


@pytest.mark.parametrize("layout", ["one field", "repetitions", "several OBX"])
def test_a_document_whose_pieces_were_encoded_one_by_one_is_read(layout):
    """An engine that cuts the CDA in 400-byte pieces, encodes each and joins them: '='
    padding inside the data. Was: ED_BAD_BASE64, the report refused."""
    assert any(p.endswith("=") for p in PIECES[:-1])
    if layout == "several OBX":
        obx = [_ed_obx(1, "^TEXT^XML^Base64^" + PIECES[0]),
               *(_ed_obx(k, "^^^^" + p) for k, p in enumerate(PIECES[1:], start=2))]
    else:
        obx = [_ed_obx(1, "^TEXT^XML^Base64^" + ("~" if layout == "repetitions" else "")
                       .join(PIECES))]
    text = _mdm("T02", "CR-200^RIS-Y").split("\r")[:5]
    doc = _doc(norm("\r".join([*text, *obx]) + "\r"))
    assert (doc.attachment.media_type, doc.attachment.data) == ("text/xml", CDA_BYTES)
    assert doc.key == "document|1.2.250.1.999.1.7^DOC-8"
    assert f"read as {len(PIECES)} pieces encoded apart" in doc.attachment.encoding_note


def test_padding_inside_a_quantum_is_still_no_base64():
    assert b64decode_lenient("Q29y\ncHM=MQ") == (b"Corps1", "base64 padding inside the "
                                                "data: read as 2 pieces encoded apart; base64 "
                                                "padding repaired")
    with pytest.raises(ValueError):
        b64decode_lenient("Q2=9ycHM=")  # padding after 3 characters: no piece


# -- a text ED whose OBX-5 repeats ---------------------------------------------------------------
LINES = ("Échographie abdominale : foie de taille normale, homogène.",
         "Vésicule alithiasique, voies biliaires non dilatées.",
         "Conclusion : examen normal. Dr Hélène Lefèvre")


@pytest.mark.parametrize(("ed", "expected"), [
    ("^TEXT^PLAIN^A^" + "~".join(LINES), "\n".join(LINES)),
    ("~".join("^TEXT^PLAIN^A^" + line for line in LINES), "\n".join(LINES)),
    ("^TEXT^HTML^^<p>" + LINES[0] + "</p>~<p>" + LINES[2] + "</p>",
     f"<p>{LINES[0]}</p>\n<p>{LINES[2]}</p>"),
    # a PDF after the text is another document, not a line of it
    (f"^TEXT^PLAIN^A^{LINES[0]}~^AP^PDF^Base64^JVBERi0xLjQK", LINES[0]),
])
def test_a_text_report_sent_one_line_per_repetition_is_read_whole(ed, expected):
    """'^TEXT^PLAIN^A^line 1~line 2~line 3' (or the ED repeated): the lines of the report,
    as a TX field's repetitions are. Was: the first line alone, the conclusion dropped."""
    nm = norm(_mdm("T02", "CR-300^RIS-Y", ed=ed))
    doc = _doc(nm)
    assert doc.attachment.data.decode("utf-8") == expected
    said = [w for w in nm.warnings if "more repetition(s) of OBX-5: read as its next" in w]
    assert len(said) == (expected != LINES[0])


# -- TXA-12 naming the assigning authority and no number -------------------------------------------
def test_a_document_number_of_an_authority_alone_is_no_number():
    """TXA-12 '^RIS-Y^<OID>^ISO' (an engine mapping TXA-12.1 from a field left empty): no
    document number. Was: every report of that RIS keyed 'document|<OID>', each a new version
    of the one before, hiding it."""
    with pytest.raises(NormalizationError) as exc:
        norm(_mdm("T02", f"^RIS-Y^{ROOT}^ISO"))
    assert (exc.value.code, exc.value.location) == ("MDM_NO_DOCUMENT_ID", "TXA[5]-12")
    # a carried CDA's id stands in, as for an empty TXA-12
    nm = norm(_mdm("T02", f"^RIS-Y^{ROOT}^ISO", ed="^TEXT^XML^Base64^" + b64(cda("DOC-31"))))
    assert _doc(nm).key == "document|1.2.250.1.999.1.7^DOC-31"
    assert any(w.startswith("TXA[5]-12: no unique document number") for w in nm.warnings)
    # a universal id alone (no namespace: an id written as a CDA II's root alone) stays one
    uuid = "2.25.329800735698586629295641978511506172918"
    assert _doc(norm(_mdm("T02", f"^^{uuid}^ISO"))).key == f"document|{uuid}"


# -- a text report in UTF-16 -----------------------------------------------------------------------
@pytest.mark.parametrize(("sub_type", "body", "expected"), [
    ("PLAIN", "Échographie : foie normal. Conclusion : pas de lésion.",
     "Échographie : foie normal. Conclusion : pas de lésion."),
    ("HTML", '<html><head><meta charset="utf-16"></head><body>Lésion bénigne</body></html>',
     '<html><head><meta charset="utf-8"></head><body>Lésion bénigne</body></html>'),
])
@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_a_text_report_in_utf16_is_kept_in_utf8(sub_type, body, expected, encoding):
    """A report a Windows application saved as 'Unicode' text (UTF-16 with its byte order
    mark), in base64: kept in UTF-8. Was: read as Windows-1252, 'ÿþÉ' then a NUL after
    every character."""
    data = "\ufeff".encode(encoding) + body.encode(encoding)
    nm = norm(_mdm("T02", "CR-400^RIS-Y", ed=f"^TEXT^{sub_type}^Base64^{b64(data)}"))
    doc = _doc(nm)
    assert doc.attachment.data.decode("utf-8") == expected
    assert doc.attachment.encoding_note == ("text document in UTF-16 (byte order mark): kept "
                                            "in UTF-8")
