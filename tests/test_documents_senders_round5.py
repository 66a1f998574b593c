"""Documents carried in HL7v2, round 5: what a document server says of a document's
availability for care (TXA-17, TXA-19), ...

Why: each test pins what a real sender sends and what we must file for it; the ones marked
'was' failed before the fix of the same commit."""

from __future__ import annotations

import base64

import pytest

from normalizers.model import ACTION_DELETE, NormalizationError
from tests.test_documents_normalizer import norm
from tests.test_documents_senders import _filed
from tests.test_documents_senders_round4 import PDF, _auto, _current_documents, _mdm, _through

SIGNED = "^TEXT^PLAIN^Base64^" + base64.b64encode(
    "IRM du genou droit : pas de lésion méniscale. Conclusion : examen normal. "
    "Compte rendu validé par le Dr Hélène Martin.".encode()).decode()
KEY = "document|{n}|&RIS-Y^IMAGERIE-EST"


# -- TXA-17, TXA-19: a document not for patient care yet is held back ----------------------------
@pytest.mark.parametrize("txa19", ["UN", "OB", "un"])
def test_a_document_unavailable_or_obsolete_for_care_is_held_back(txa19):
    """TXA-19 UN (unavailable for patient care) or OB (obsolete: replaced): nothing to file,
    at TXA-19. Was: filed current and final, with a warning."""
    with pytest.raises(NormalizationError) as exc:
        norm(_mdm("T02", "F", "CR-71", txa17="LA", txa19=txa19))
    assert (exc.value.code, exc.value.location) == ("MDM_NOT_AVAILABLE", "TXA[5]-19")
    assert f"({txa19.upper()})" in str(exc.value)


@pytest.mark.parametrize("txa17", ["DI", "IP", "IN", "PA", "DO"])
def test_an_unauthenticated_report_is_for_care_only_when_txa19_says_available(txa17):
    """v2.5 9.6.1.19: a document is used for patient care before its authentication only
    when TXA-19 says AV. Without it (TXA-19 empty, or UN) a dictated report is held back;
    with it, it is a preliminary version. Was: filed preliminary whatever TXA-19 said, and
    DO (documented: received, not yet in its final form, HL7 v3 DocumentCompletion) final."""
    for txa19, where in (("", "TXA[5]-17"), ("UN", "TXA[5]-19")):
        with pytest.raises(NormalizationError) as exc:
            norm(_mdm("T02", "F", "CR-72", txa17=txa17, txa19=txa19))
        assert (exc.value.code, exc.value.location) == ("MDM_NOT_AVAILABLE", where)
    doc, = norm(_mdm("T02", "F", "CR-72", txa17=txa17, txa19="AV")).entries
    assert doc.status == "preliminary"


@pytest.mark.parametrize("txa17, txa19", [("AU", ""), ("LA", ""), ("AU", "AV")])
def test_an_authenticated_report_is_filed_without_txa19(txa17, txa19):
    """The CI-SIS examples send TXA-17 LA and no TXA-19: final, as before."""
    doc, = norm(_mdm("T02", "F", "CR-73", txa17=txa17, txa19=txa19)).entries
    assert doc.status == "final"


def test_a_cancel_of_an_unavailable_document_still_withdraws_it():
    """MDM^T11 whose TXA-19 says UN (the cancelled document is unavailable): a withdrawal is
    never held back."""
    cancel, = norm(_mdm("T11", "", "CR-74", txa17="DI", txa19="UN")).entries
    assert (cancel.action, cancel.replaces_key) == (ACTION_DELETE, KEY.format(n="CR-74"))


def test_a_dictated_report_is_filed_when_signed_and_a_draft_replaces_nothing(sqlite_ctx):
    """The transcription flow: T02 dictated (no TXA-19) is held back on the ledger; the
    T04 that signs it files the final report. A preliminary sent available (AV) is replaced
    by its signed T08; a later 'unavailable' status change leaves the signed report as it
    is. Was: the draft was filed, read by professionals as a report."""
    rows = _through(_auto(sqlite_ctx),
                    _mdm("T02", "F", "CR-75", txa17="DI", txa19=""),
                    _mdm("T04", "F", "CR-75", txa17="AU", txa19="AV", ed=SIGNED),
                    _mdm("T02", "F", "CR-76", txa17="IP", txa19="AV"),
                    _mdm("T08", "F", "CR-76", txa17="LA", txa19="AV", ed=SIGNED),
                    _mdm("T04", "F", "CR-76", txa17="LA", txa19="UN", ed=SIGNED))
    assert [(r.status, r.error_code) for r in rows] == [
        ("held", "MDM_NOT_AVAILABLE"), ("deposited", None), ("deposited", None),
        ("deposited", None), ("held", "MDM_NOT_AVAILABLE")]
    assert rows[0].error_location == "TXA[5]-17"
    assert _current_documents(sqlite_ctx) == {(KEY.format(n="CR-75"), "final"),
                                              (KEY.format(n="CR-76"), "final")}


def test_the_report_read_from_a_draft_pdf_is_a_draft_until_signed(sqlite_ctx):
    """A dictated CR-IMG sent available (TXA-17 DI, TXA-19 AV) as a PDF: the imaging report
    read from it is preliminary like its document, and the T04 that signs the same PDF
    makes both final. Was: the report filed final beside its preliminary document, read
    as a signed report."""
    _through(_auto(sqlite_ctx), _mdm("T02", "F", "CR-77", txa17="DI", txa19="AV", ed=PDF),
             _mdm("T04", "F", "CR-77", txa17="LA", txa19="AV", ed=PDF))
    versions = [(e.type, e.version, e.status, e.current) for e in _filed(sqlite_ctx)]
    assert sorted(versions) == [("document", 1, "preliminary", False),
                                ("document", 2, "final", True),
                                ("imaging_report", 1, "preliminary", False),
                                ("imaging_report", 2, "final", True)]


# -- MDM^T03 without content: the status of the document held changes ----------------------------
def _status_change(number: str, txa17: str, txa19: str = "AV") -> str:
    """MDM^T03 as a transcription system sends it when the radiologist signs: TXA alone."""
    return "\r".join(s for s in _mdm("T03", "F", number, txa17=txa17, txa19=txa19).split("\r")
                     if not s.startswith("OBX"))


def test_a_status_change_without_content_states_the_document_in_its_new_status():
    """v2.5 9.3.3: 'a document is authenticated'. Was: MDM_NOTIFICATION_ONLY."""
    doc, = norm(_status_change("CR-78", "LA")).entries
    assert (doc.key, doc.status, doc.action, doc.attachment) == (
        KEY.format(n="CR-78"), "final", "new", None)
    assert doc.details["status_change"] is True
    with pytest.raises(NormalizationError) as exc:  # no status stated: nothing to change
        norm(_status_change("CR-78", ""))
    assert exc.value.code == "MDM_NOTIFICATION_ONLY"
    with pytest.raises(NormalizationError) as exc:  # a draft not for care: held back
        norm(_status_change("CR-78", "DI", txa19=""))
    assert exc.value.code == "MDM_NOT_AVAILABLE"


def test_a_signature_sent_without_content_makes_the_draft_and_its_report_final(sqlite_ctx):
    """T02 of a dictated PDF sent available (preliminary, its report too), then the T03 that
    says it is legally authenticated: the document and its report are final, with the same
    file; the T03 sent again is a duplicate; a T03 for a document never received files
    nothing and says so. Was: the T03 refused, the draft left current."""
    rows = _through(_auto(sqlite_ctx),
                    _mdm("T02", "F", "CR-79", txa17="DI", txa19="AV", ed=PDF),
                    _status_change("CR-79", "LA"),
                    _status_change("CR-79", "LA").replace("RIS-Y-T03-CR-79", "RIS-Y-T03b-CR-79"),
                    _status_change("CR-80", "AU"))
    assert [(r.status, r.error_code) for r in rows] == [("deposited", None)] * 2 + [
        ("duplicate", None), ("deposited", None)]
    assert any("TXA[5]" in w and "does not hold" in w for w in rows[3].warnings)
    filed = _filed(sqlite_ctx)
    current = {e.type: e for e in filed if e.current}
    assert {(t, e.version, e.status) for t, e in current.items()} == {
        ("document", 2, "final"), ("imaging_report", 2, "final")}
    first = next(e for e in filed if e.type == "document" and e.version == 1)
    assert current["document"].attachment_sha256 == first.attachment_sha256
    assert current["document"].media_type == "application/pdf"
    assert current["imaging_report"].parent_id == current["document"].id
    assert current["document"].details["completion_status"] == "LA"
    assert KEY.format(n="CR-80") not in {e.key for e in filed}


# -- a document in another charset than the message's --------------------------------------------
HTML_REPORT = ("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; "
               "charset=windows-1252\"><title>Compte rendu</title></head><body><p>Échographie "
               "abdominale : pas d’épanchement, vésicule alithiasique.</p></body></html>")


@pytest.mark.parametrize("html, codec", [
    (HTML_REPORT, "cp1252"),  # declared: its meta charset is the one read, then rewritten
    (HTML_REPORT.replace(" http-equiv=\"Content-Type\" content=\"text/html; "
                         "charset=windows-1252\"", "").replace("’", "'"),
     "iso-8859-15")])  # undeclared
def test_an_html_report_in_a_single_byte_charset_is_kept_in_utf8(html, codec):
    """TEXT^HTML^Base64 of a report a Windows RIS wrote in Windows-1252 (or ISO-8859-15, no
    meta charset) in a UTF-8 message: kept in UTF-8, as it is served (text/html; charset
    utf-8), its declaration saying so. Was: kept in its charset, every accent broken
    ('\ufffdchographie'), and said 'not a CDA document'."""
    ed = "^TEXT^HTML^Base64^" + base64.b64encode(html.encode(codec)).decode()
    nm = norm(_mdm("T02", "F", "CR-81", ed=ed))
    doc, = nm.entries
    assert doc.attachment.media_type == "text/html"
    kept = doc.attachment.data.decode("utf-8")
    assert "Échographie abdominale : pas d" in kept and "vésicule" in kept
    assert kept == html.replace("windows-1252", "utf-8")
    assert not any("not a CDA document" in w for w in nm.warnings)
    assert any("read as" in w and "kept in UTF-8" in w for w in nm.warnings)


def test_a_status_change_naming_the_number_of_a_carried_cda_finds_it(sqlite_ctx):
    """An MDM^T02 carrying a CDA (filed under its ClinicalDocument/id, TXA-12 kept beside
    it) in progress but available (TXA-17 IP, TXA-19 AV), then the T03 naming TXA-12 alone
    when it is legally authenticated: that document becomes final. Was (before the T03
    was read): 'does not hold', the draft left current."""
    from tests.test_documents_normalizer import b64, cda, mdm

    sent = mdm("T02", "F", b64(cda("DOC-9"))).replace("|CISIS_CDA_HL7_V2", "|") \
        .replace("DOC-9^Organisation-Y^1.2.250.1.999.1.7", "CR-2024-0042^RIS-Y") \
        .replace("||||LA", "||||IP||AV")
    signed = "\r".join(s for s in sent.split("\r") if not s.startswith("OBX")) \
        .replace("MDM^T02", "MDM^T03").replace("|MSG-43|", "|MSG-44|") \
        .replace("||||IP||AV", "||||LA||AV")
    rows = _through(_auto(sqlite_ctx), sent, signed)
    assert [(r.status, r.error_code) for r in rows] == [("deposited", None)] * 2
    docs = [(e.key, e.version, e.status, e.current) for e in _filed(sqlite_ctx)
            if e.type == "document"]
    assert docs == [("document|1.2.250.1.999.1.7^DOC-9", 1, "preliminary", False),
                    ("document|1.2.250.1.999.1.7^DOC-9", 2, "final", True)]


def test_a_status_change_of_confidentiality_masks_the_document_held(sqlite_ctx):
    """MDM^T03 whose TXA-18 becomes V (very restricted) for a signed report filed unmasked:
    a new version, same file, masked from professionals. Was: refused as a notification
    only, the report left readable by every authorised professional."""
    masked = _status_change("CR-82", "AU").replace("|AU||AV", "|AU|V|AV")
    rows = _through(_auto(sqlite_ctx), _mdm("T02", "F", "CR-82", txa17="AU"), masked)
    assert [r.status for r in rows] == ["deposited", "deposited"]
    first, second = _filed(sqlite_ctx)
    assert (first.current, first.masking) == (False, None)
    assert (second.version, second.current, second.status) == (2, True, "final")
    assert second.masking == {"MASQUE_PS": True}
    assert second.attachment_sha256 == first.attachment_sha256


def test_no_completion_and_availability_pair_files_an_unsigned_draft_as_final():
    """Every TXA-17 x TXA-19 of tables 0271 and 0273 (and empty, and a code of neither): a
    document is filed final only when its completion status is authenticated (AU, LA) or
    unstated and its availability is not UN/OB; an unauthenticated one is filed only with
    AV, and preliminary; a cancelled one is withdrawn or refused, never filed current."""
    for txa17 in ("", "AU", "LA", "DO", "PA", "DI", "IP", "IN", "CA", "ZZ"):
        for txa19 in ("", "AV", "UN", "OB", "CA", "ZZ"):
            try:
                nm = norm(_mdm("T02", "F", "CR-83", txa17=txa17, txa19=txa19))
            except NormalizationError as exc:
                assert exc.code in ("MDM_NOT_AVAILABLE", "CISIS_ACTION_MISMATCH"), (txa17, txa19)
                continue
            doc, = nm.entries
            assert txa19 not in ("UN", "OB") and "CA" not in (txa17, txa19), (txa17, txa19)
            if txa17 in ("", "AU", "LA", "ZZ"):
                assert doc.status == "final", (txa17, txa19)
                # a code of no table is said (it was read silently)
                assert ("ZZ" in (txa17, txa19)) == any(
                    "'ZZ' is not of HL7 table" in w for w in nm.warnings), (txa17, txa19)
            else:
                assert (doc.status, txa19) == ("preliminary", "AV"), (txa17, txa19)


def test_txa_statuses_written_as_coded_elements_are_read_by_their_code():
    """An engine writing every coded field as a CWE (v2.7+ style): TXA-17
    'DI^Dictated^HL70271', TXA-18 'V^Very restricted^HL70272', TXA-19
    'AV^Available for patient care^HL70273'. Was: read whole, no code of any table: the
    dictated report filed final and the very restricted one unmasked."""
    nm = norm(_mdm("T02", "F", "CR-84", txa17="DI^Dictated^HL70271",
                   txa18="V^Very restricted^HL70272",
                   txa19="AV^Available for patient care^HL70273"))
    doc, = nm.entries
    assert (doc.status, doc.masking.get("MASQUE_PS")) == ("preliminary", True)
    assert doc.details["completion_status"] == "DI"
    assert not any("not of HL7 table" in w for w in nm.warnings)
    with pytest.raises(NormalizationError) as exc:
        norm(_mdm("T02", "F", "CR-84", txa17="LA", txa19="UN^Unavailable^HL70273"))
    assert exc.value.code == "MDM_NOT_AVAILABLE"


def test_an_order_control_written_as_a_coded_element_speaks_for_the_action():
    """CI-SIS ORU whose ORC-1 is 'CA^Cancel order request^HL70119' (deletion) while OBX-11
    says F (new): the two disagree, refused naming both. Was: ORC-1 read whole, 'not
    NW/RO/CA', ignored with a warning, and the document filed as new."""
    from tests.test_documents_normalizer import b64, cda, oru

    with pytest.raises(NormalizationError) as exc:
        norm(oru("CA^Cancel order request^HL70119", "F", b64(cda("DOC-3"))))
    assert exc.value.code == "CISIS_ACTION_MISMATCH" and "ORC[4]-1" in exc.value.location
    doc, = norm(oru("NW^New order^HL70119", "F", b64(cda("DOC-3")))).entries
    assert doc.action == "new"
