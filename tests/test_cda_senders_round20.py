"""CDA R2, round 20: hostile, huge and odd documents, against issue 4's checklist.

Found wrong and fixed here: a UTF-32 CDA (which the parser reads) was 'binary content' of no
known format; UTF-8 bytes declared ISO-8859-1 were filed without a word, every accented letter
as two ('CholestÃ©rol'), and declared UTF-16 (.NET) refused; a million small sibling elements
under the size limit (24 MB) cost a worker 1 GB; a SOAP envelope and an IHE XDM package (the
DMP's media exchange) were refused in words that did not say what they were; a body rebound
to another namespace was reported missing; the same CR-BIO by folder then carried in the
lab's ORU superseded every entry; a value a CR-BIO v2 corrects stayed current when v1 had only
confirmed the lab's; an addendum to a masked report was shown to every professional.
Checked right and kept so: external parameter entities, internal-subset DOCTYPEs, XInclude
(never resolved), rebound prefixes, dedupe level 4 across units' case, precisions and zones,
an RPLC chain arriving v1, v3, v2."""

from __future__ import annotations

import base64
import codecs
import io
import zipfile

import pytest
from sqlalchemy import select

from dossiers.schema import entries, provenance
from normalizers.cda import normalize_cda
from parsers.cda import CdaParseError, parse_cda
from parsers.detect import detect_format, unknown_reason
from tests.conftest import SAMPLES
from tests.test_dedup_channels import cholesterol, cr_bio, file, links, oru

CRBIO = (SAMPLES / "cda" / "01_crbio_labm_lipides_glycemie.xml").read_bytes()
BODY = CRBIO.decode("utf-8").split("?>", 1)[1].lstrip()  # without its XML declaration
RENAL_V1 = (SAMPLES / "cda" / "02_crbio_synlab_bilan_renal_v1.xml").read_text("utf-8")
RENAL_V2 = (SAMPLES / "cda" / "03_crbio_synlab_bilan_renal_v2_rplc.xml").read_text("utf-8")


def _results(data: bytes) -> list[tuple]:
    doc = parse_cda(data)
    return sorted((e.code, e.value, e.unit) for e in normalize_cda(doc, data, "t").entries
                  if e.type == "lab_result")


# -- character encodings ------------------------------------------------------------------------
@pytest.mark.parametrize("codec", ["utf-32", "utf-32-le", "utf-32-be"])
def test_a_utf32_cda_is_detected_as_the_cda_it_is(codec: str) -> None:
    """XML 1.0 appendix F: UTF-32 with or without its BOM. The parser read it; format
    detection called it 'binary content that is neither HL7v2, CDA nor PDF'."""
    data = ('<?xml version="1.0" encoding="UTF-32"?>\n' + BODY).encode(codec)
    assert detect_format(data) == "cda"
    assert _results(data) == _results(CRBIO)


def test_utf8_bytes_under_an_iso_8859_1_declaration_are_read_as_utf8() -> None:
    """The declaration kept from an old template says ISO-8859-1, the engine writes UTF-8:
    read under the label, 'Cholestérol total' became 'CholestÃ©rol total' and the patient
    'JÃ©rÃ´me', filed without a warning. Valid UTF-8 sequences are no one-byte French text."""
    data = CRBIO.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"', 1)
    assert data != CRBIO
    doc = parse_cda(data)
    assert [w.code for w in doc.warnings] == ["CDA_ENCODING_MISMATCH"]
    assert "ISO-8859-1" in doc.warnings[0].message and "Jérôme" not in doc.warnings[0].message
    assert doc.header.title == parse_cda(CRBIO).header.title
    names = {e.display for e in normalize_cda(doc, data, "t").entries if e.display}
    assert "Cholestérol total" in names and not any("Ã" in n for n in names)
    # what the label says stays true of real ISO-8859-15 and windows-1252 bytes
    for label, codec in (("ISO-8859-15", "iso8859-15"), ("windows-1252", "cp1252")):
        real = ('<?xml version="1.0" encoding="' + label + '"?>\n' + BODY).encode(codec)
        doc = parse_cda(real)
        assert doc.warnings == [] and doc.header.title == parse_cda(CRBIO).header.title


@pytest.mark.parametrize("label", [b"utf-16", b"UTF-16", b"UCS-2", b"UTF-32"])
def test_utf8_bytes_under_a_utf16_declaration_are_read_as_utf8(label: bytes) -> None:
    """.NET's XmlWriter over a StringWriter declares 'utf-16', the string is then saved as
    UTF-8: refused as 'not well-formed XML: Blank needed here'. A declaration readable one
    byte a character is in no 16/32-bit encoding."""
    data = CRBIO.replace(b'encoding="UTF-8"', b'encoding="' + label + b'"', 1)
    doc = parse_cda(data)
    assert [w.code for w in doc.warnings] == ["CDA_ENCODING_MISMATCH"]
    assert _results(data) == _results(CRBIO)

def test_iso_8859_1_bytes_under_a_utf8_declaration_stay_refused() -> None:
    data = ('<?xml version="1.0" encoding="UTF-8"?>\n' + BODY).encode("latin-1", "replace")
    with pytest.raises(CdaParseError) as err:
        parse_cda(data)
    assert err.value.code == "CDA_NOT_XML" and "character encoding" in err.value.message


# -- size --------------------------------------------------------------------------------------
def test_a_million_sibling_elements_under_the_size_limit_are_refused() -> None:
    """24 MB of '<templateId root="1.2.3"/>' was under the 50 MB limit and cost 1 GB and 7 s
    to read; more than 200,000 elements are refused before any tree is built."""
    data = CRBIO.replace(b"<title>", b"<title>" + b"<br/>" * 200_001, 1)
    with pytest.raises(CdaParseError) as err:
        parse_cda(data)
    assert (err.value.code, err.value.location) == ("CDA_TOO_MANY_ELEMENTS", "/ClinicalDocument")
    assert "200000" in err.value.message


def test_the_element_estimate_is_checked_before_refusing() -> None:
    """'<' inside CDATA and comments counts in the byte estimate, not in the document."""
    cdata = CRBIO.replace(b"</title>", b"<![CDATA[" + b"<" * 500 + b"]]></title>", 1)
    assert len(parse_cda(cdata, max_elements=1000).sections) == \
        len(parse_cda(CRBIO).sections)
    with pytest.raises(CdaParseError) as err:
        parse_cda(CRBIO, max_elements=100)
    assert err.value.code == "CDA_TOO_MANY_ELEMENTS"



def test_attributes_count_and_a_long_text_does_not_end_the_count() -> None:
    """Attributes are nodes too: 200,000 elements of 20 attributes fit in 50 MB. And a long
    base64 text (a level-1 PDF over 7.5 MB) made the count's parse fail, which let every
    element through."""
    many = b"".join(b"<br " + b" ".join(b"a%d='x'" % i for i in range(20)) + b"/>"
                    for _ in range(300))
    with pytest.raises(CdaParseError) as err:
        parse_cda(CRBIO.replace(b"<title>", b"<title>" + many, 1), max_elements=1000)
    assert (err.value.code, err.value.message) == (
        "CDA_TOO_MANY_ELEMENTS", "more than 5000 attributes in the document")
    long_text = CRBIO.replace(b"</title>", b"A" * 11_000_000 + b"</title>", 1)
    with pytest.raises(CdaParseError) as err:
        parse_cda(long_text, max_elements=100)
    assert err.value.message == "more than 100 elements in the document"

@pytest.mark.parametrize("xmlns", ['xmlns=""', 'xmlns="urn:hl7-org:sdtc"'])
def test_a_body_rebound_to_another_namespace_is_said_not_just_missing(xmlns: str) -> None:
    """'<structuredBody xmlns="">' deep in a document: no CDA body for the schema, filed
    without any result; the warning said 'no structuredBody', which the sender reads as
    false. It says where the body went (prefixes rebound to the CDA namespace read well)."""
    data = CRBIO.replace(b"<structuredBody>", f"<structuredBody {xmlns}>".encode(), 1)
    (warning,) = parse_cda(data).warnings
    assert warning.code == "CDA_NO_BODY" and "structuredBody is in" in warning.message
    rebound = CRBIO.replace(b"<structuredBody>", b'<v3:structuredBody xmlns:v3="urn:hl7-org:v3">',
                            1).replace(b"</structuredBody>", b"</v3:structuredBody>", 1)
    assert _results(rebound) == _results(CRBIO)

# -- wrappers ----------------------------------------------------------------------------------
SOAP = ('<?xml version="1.0" encoding="UTF-8"?>\n<soap:Envelope '
        'xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>'
        + BODY + "</soap:Body></soap:Envelope>").encode()


def _xdm() -> bytes:
    """An IHE XDM package as the DMP's media exchange writes it (ITI TF-3 4.2.1.1)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("README.TXT", "Dossier exporté")
        z.writestr("INDEX.HTM", "<html/>")
        z.writestr("IHE_XDM/SUBSET01/METADATA.XML", "<SubmitObjectsRequest/>")
        z.writestr("IHE_XDM/SUBSET01/DOC0001.XML", CRBIO)
    return buf.getvalue()


def test_a_soap_envelope_and_an_xdm_package_say_what_they_are() -> None:
    """Both were refused, neither said so: 'root element is Envelope' and 'a ZIP archive'."""
    with pytest.raises(CdaParseError) as err:
        parse_cda(SOAP)
    assert (err.value.code, err.value.location) == ("CDA_NOT_CDA", "/Envelope")
    assert err.value.message.startswith("a SOAP envelope")
    code, text, where = unknown_reason(_xdm())
    assert (code, where) == ("XDM_NOT_UNPACKED", "IHE_XDM/") and "XDM" in text


# -- the pipeline: each hostile input its code, the next one filed ------------------------------
def test_hostile_documents_each_fail_with_their_code_and_the_next_is_filed(sqlite_ctx) -> None:  # noqa: ANN001
    text = CRBIO.decode()
    head = '<?xml version="1.0"?>\n'
    hostile = {
        "parameter entity": (head + '<!DOCTYPE ClinicalDocument [<!ENTITY % p SYSTEM '
                             '"http://203.0.113.9/x.dtd"> %p;]>\n' + BODY).encode(),
        "internal subset": (head + "<!DOCTYPE ClinicalDocument [<!ELEMENT title ANY>]>\n"
                            + BODY).encode(),
        "utf-16 doctype": (head + '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]>' + BODY)
        .encode("utf-16"),
        "huge attribute": text.replace("<title>", '<title lang="' + "A" * 11_000_000 + '">',
                                       1).encode(),
        "siblings": text.replace("<title>", "<title>" + "<br/>" * 200_001, 1).encode(),
        "soap": SOAP,
        "xdm": _xdm(),
    }
    codes = {"parameter entity": "CDA_DTD_FORBIDDEN", "internal subset": "CDA_DTD_FORBIDDEN",
             "utf-16 doctype": "CDA_DTD_FORBIDDEN", "huge attribute": "CDA_TOO_LARGE",
             "siblings": "CDA_TOO_MANY_ELEMENTS", "soap": "CDA_NOT_CDA",
             "xdm": "XDM_NOT_UNPACKED"}
    for name, data in hostile.items():
        row = file(sqlite_ctx, data, "chu")
        assert (row.status, row.error_code) == ("failed", codes[name]), name
        assert "Jérôme" not in (row.error_message or "")
    xinclude = text.replace("<title>", '<title><xi:include xmlns:xi="http://www.w3.org/2001/'
                            'XInclude" href="file:///etc/passwd" parse="text"/>', 1)
    row = file(sqlite_ctx, xinclude.encode(), "chu")  # never resolved: read as it stands
    assert row.status == "deposited"
    utf32 = file(sqlite_ctx, codecs.BOM_UTF32_LE + "\n".encode("utf-32-le")
                 + CRBIO.decode().encode("utf-32-le"), "chu")
    # the same document id in other bytes: compared with what the first filed, nothing twice
    assert utf32.status == "deposited" and any("another form" in w for w in utf32.warnings)
    assert len(cholesterol(sqlite_ctx)) == 1
    with sqlite_ctx.engine.connect() as conn:
        values = conn.execute(select(entries.c.value, entries.c.details)).all()
    assert not any("root:" in str(v) for v in values)


# -- dedupe level 4 and versions: checked right -------------------------------------------------
@pytest.mark.parametrize(("lab", "hospital", "cda_first"), [
    ({"value": "4.75", "unit": "mmol/L"}, {"value": "4.75", "unit": "mmol/l"}, False),
    ({"value": "5", "obx14": "202502031007+0100"}, {"value": "5.0", "when": "20250203090700Z"},
     True),
])
def test_the_same_result_through_both_channels_is_one_entry(sqlite_ctx, lab: dict,  # noqa: ANN001
                                                           hospital: dict,
                                                           cda_first: bool) -> None:
    first, second = (cr_bio(**hospital), "chu"), (oru(**lab), "LABM")
    if not cda_first:
        first, second = second, first
    a, b = file(sqlite_ctx, *first), file(sqlite_ctx, *second)
    (entry,) = cholesterol(sqlite_ctx)
    assert links(sqlite_ctx, entry.id) == [(a.id, "created"), (b.id, "confirmed")]


def _v3() -> bytes:
    """The third version of the renal panel: potassium 4.5, replacing the second."""
    return (RENAL_V2.replace('extension="SB25061039530-2"', 'extension="SB25061039530-3"')
            .replace('<versionNumber value="2"/>', '<versionNumber value="3"/>')
            .replace('extension="SB25061039530-1"', 'extension="SB25061039530-2"')
            .replace('value="4.7" unit="mmol/L"', 'value="4.5" unit="mmol/L"')).encode()


@pytest.mark.parametrize("order", [(1, 3, 2)])
def test_an_rplc_chain_in_any_order_keeps_the_last_version_current(sqlite_ctx, order) -> None:  # noqa: ANN001
    file(sqlite_ctx, oru(control="OTHER"), "LABM")  # the dossiers and mappings
    versions = {1: RENAL_V1.encode(), 2: RENAL_V2.encode(), 3: _v3()}
    for n in order:
        assert file(sqlite_ctx, versions[n], "synlab").status == "deposited"
    with sqlite_ctx.engine.connect() as conn:
        current = conn.execute(select(entries.c.key).where(
            entries.c.type == "document", entries.c.current)).scalars().all()
        potassium = sorted(conn.execute(select(entries.c.value, entries.c.current).where(
            entries.c.code == "2823-3")).all())
    assert current == ["document|2.999.250.1.2.10^SB25061039530-3"]
    assert potassium == [("4.5", True), ("4.7", False), ("6.4", False)]


# -- one CR-BIO through two channels; a value its next version corrects -----------------------
PID = next(s for s in (SAMPLES / "hl7v2" / "02_labm_lipides_glycemie.hl7").read_bytes()
           .decode().split("\r") if s.startswith("PID|"))


def _carried(cda: bytes) -> bytes:
    """The CR-BIO carried in the lab's CI-SIS ORU^R01 (MSH-21 2.1^CISIS_CDA_HL7_V2), with the
    MetaDMPMSS flags the guide requires: MASQUE_PS=N, DESTDMP=Y."""
    segments = [
        "MSH|^~\\&|LABM|CERBALLIANCE_LYON^690041231^M|DMP-INTAKE|DMP|20250204100500+0100||"
        "ORU^R01^ORU_R01|CDA-RB2502040000002|P|2.5|||AL|NE|FRA|UNICODE UTF-8|||"
        "2.1^CISIS_CDA_HL7_V2", PID, "PV1|1|O", "ORC|NW|CMD-1^LABM|RB2502040000002^LABM",
        "OBR|1|CMD-1^LABM|RB2502040000002^LABM|11502-2^CR d'examens biologiques^LN|||"
        "202502031007+0100" + "|" * 18 + "F",
        "OBX|1|ED|11502-2^CR d'examens biologiques^LN||^TEXT^XML^Base64^"
        + base64.b64encode(cda).decode() + "||||||F",
        "OBX|2|CE|MASQUE_PS^MASQUE_PS^MetaDMPMSS||N^^expandedYes-NoIndicator||||||F",
        "OBX|3|CE|DESTDMP^DESTDMP^MetaDMPMSS||Y^^expandedYes-NoIndicator||||||F"]
    return ("\r".join(segments) + "\r").encode()


def _relations(ctx) -> dict[str, int]:  # noqa: ANN001
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(provenance.c.relation)).scalars().all()
    return {r: rows.count(r) for r in set(rows)}


@pytest.mark.parametrize("folder_first", [True, False])
def test_one_cr_bio_by_folder_and_carried_in_an_oru_is_filed_once(sqlite_ctx,  # noqa: ANN001
                                                                   folder_first: bool) -> None:
    """The hospital drops the CR-BIO in a folder (no flags); the lab's ORU carries the same
    document with MASQUE_PS=N, DESTDMP=Y. Carried second, it superseded all six entries of
    the first with copies (a version of nothing: the flags as written differed, what they
    hide did not); carried first, the folder's copy was a duplicate. Both orders now: six
    entries, each created once and confirmed once."""
    inputs = [(cr_bio(), "chu"), (_carried(cr_bio()), "LABM")]
    if not folder_first:
        inputs.reverse()
    first, second = (file(sqlite_ctx, *i) for i in inputs)
    assert (first.status, second.status) == ("deposited", "duplicate")
    with sqlite_ctx.engine.connect() as conn:
        filed = conn.execute(select(entries.c.current)).scalars().all()
    assert filed == [True] * 6
    assert _relations(sqlite_ctx) == {"created": 6, "confirmed": 6}


def _cr_bio_v2(value: str) -> bytes:
    """Version 2 of the hospital's CR-BIO (new id, RPLC of v1), cholesterol ``value``."""
    text = cr_bio(value=value).decode()
    v1_id = '<id root="2.999.250.1.1.10" extension="RB2502040000002"/>'
    text = text.replace(v1_id, v1_id.replace('RB2502040000002"', 'RB2502040000002-2"'), 1)
    text = text.replace('<versionNumber value="1"/>', '<versionNumber value="2"/>').replace(
        "<componentOf>", f'<relatedDocument typeCode="RPLC"><parentDocument>{v1_id}'
        "</parentDocument></relatedDocument><componentOf>", 1)
    assert "RB2502040000002-2" in text and "RPLC" in text
    return text.encode()


def test_a_value_the_next_cr_bio_version_corrects_is_versioned_not_left_current(
        sqlite_ctx) -> None:  # noqa: ANN001
    """The lab's ORU: cholesterol 1.84 g/L; the hospital's CR-BIO v1 says 1.84 too (level 4:
    one entry, two links); CR-BIO v2 (RPLC) says 1.90 for the same sample. The 1.90 was
    filed beside the 1.84, two current values of one test: v1 only confirmed the lab's
    entry, so replacing v1 did not reach it. The 1.84 is now history, superseded by 1.90."""
    lab = file(sqlite_ctx, oru(), "LABM")
    v1 = file(sqlite_ctx, cr_bio(), "chu")
    v2 = file(sqlite_ctx, _cr_bio_v2("1.90"), "chu")
    final, corrected = cholesterol(sqlite_ctx)
    assert (final.value, final.current, final.superseded_by) == ("1.84", False, corrected.id)
    assert (corrected.value, corrected.current, corrected.import_id) == ("1.90", True, v2.id)
    assert links(sqlite_ctx, final.id) == [(lab.id, "created"), (v1.id, "confirmed"),
                                           (v2.id, "superseded")]
    assert any("another channel" in w for w in v2.warnings)


def test_a_next_version_restating_a_confirmed_value_confirms_it_again(sqlite_ctx) -> None:  # noqa: ANN001
    """The same v2 saying 1.84 again confirms the lab's entry once more: no new version."""
    lab = file(sqlite_ctx, oru(), "LABM")
    file(sqlite_ctx, cr_bio(), "chu")
    file(sqlite_ctx, _cr_bio_v2("1.84"), "chu")
    (entry,) = cholesterol(sqlite_ctx)
    assert (entry.current, entry.import_id) == (True, lab.id)
    assert [r for _, r in links(sqlite_ctx, entry.id)] == ["created", "confirmed", "confirmed"]


# -- an addendum to a masked document ---------------------------------------------------------
@pytest.mark.parametrize("parent_code", ["V", "N"])
def test_an_addendum_to_a_masked_report_is_masked_as_its_parent(sqlite_ctx,  # noqa: ANN001
                                                                parent_code: str) -> None:
    """The renal panel sent restricted (confidentialityCode R or V: MASQUE_PS), then the
    lab's addendum to it (relatedDocument APND, potassium on a second sample) sent N, as
    its template writes every document. The addendum and its potassium were shown to every
    professional beside a report the patient's care team had masked. It is masked as its
    parent, and the ledger says so; an addendum to an unmasked report stays as sent."""
    file(sqlite_ctx, oru(control="OTHER"), "LABM")  # the dossiers and mappings
    parent = RENAL_V1.replace('<confidentialityCode code="N" displayName="Normal"',
                              f'<confidentialityCode code="{parent_code}"')
    assert parent != RENAL_V1 or parent_code == "N"
    first = file(sqlite_ctx, parent.encode(), "synlab")
    addendum = file(sqlite_ctx, RENAL_V2.replace('typeCode="RPLC"', 'typeCode="APND"').encode(),
                    "synlab")
    with sqlite_ctx.engine.connect() as conn:
        masking = dict(conn.execute(select(entries.c.import_id, entries.c.masking).where(
            entries.c.type == "document")).all())
    masked = parent_code != "N"
    assert bool((masking[first.id] or {}).get("MASQUE_PS")) is masked
    assert bool((masking[addendum.id] or {}).get("MASQUE_PS")) is masked
    assert any("addendum" in w for w in addendum.warnings or ()) is masked


def test_an_mdm_addendum_to_a_masked_report_is_masked_as_its_parent(sqlite_ctx) -> None:  # noqa: ANN001
    """The same through HL7v2: MDM^T02 of CR-100 with MetaDMPMSS MASQUE_PS=Y, then the
    MDM^T06 addendum CR-101 naming it in TXA-13, without the MetaDMPMSS OBX."""
    from dataclasses import replace

    from pipelines.intake import Received, intake
    from pipelines.process import drain
    from tests.test_documents_senders import _mdm

    sqlite_ctx.settings = replace(sqlite_ctx.settings, auto_create=True)
    flag = "OBX|2|CE|MASQUE_PS^MASQUE_PS^MetaDMPMSS||Y^^expandedYes-NoIndicator||||||F\r"
    for n, message in enumerate((
            _mdm("T02", "CR-100^RIS-Y") + flag,
            _mdm("T06", "CR-101^RIS-Y", "CR-100^RIS-Y",
                 content="Complément : nodule de 4 mm du lobe inférieur droit."))):
        intake(sqlite_ctx.engine, sqlite_ctx.archive, [Received(
            message.replace("|M-T", f"|M{n}-T").encode(), "ris", "file", file_name=f"{n}")])
        drain(sqlite_ctx)
    with sqlite_ctx.engine.connect() as conn:
        masking = dict(conn.execute(select(entries.c.key, entries.c.masking).where(
            entries.c.type == "document")).all())
    assert masking["document|CR-100|RIS-Y@IMAGERIE-EST"]["MASQUE_PS"] is True
    assert (masking["document|CR-101|RIS-Y@IMAGERIE-EST"] or {}).get("MASQUE_PS") is True
