"""detect_format: from content only (file names lie), on the head of the input."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from parsers.detect import detect_format

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is absent")

CDA = (b'<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/'
       b'XMLSchema-instance"><realmCode code="FR"/></ClinicalDocument>')


@pytest.mark.parametrize("data", [
    b"MSH|^~\\&|LAB|FAC\rPID|1\r",
    b"\xef\xbb\xbfMSH|^~\\&|LAB\n",
    b"\x0bMSH|^~\\&|LAB\r\x1c\r",
    b"\r\n  MSH|^~\\&|LAB\r",
    b"FHS|^~\\&|LAB\rBHS|^~\\&\r",
    b"BHS|^~\\&|LAB\r",
    b"MSH#^~\\&#LAB\r",
    "MSH|^~\\&|LAB\r".encode("utf-16"),
    b"msh|^~\\&|LAB\r",  # a header in lower case: the parser reads it, with a warning
])
def test_hl7v2(data):
    assert detect_format(data) == "hl7v2"


@pytest.mark.parametrize("data", [
    b"MSHA|x", b"MSH", b"MSH |x", b"msha|x", b"",
    b"   \r\n", b"hello world", b"\x00\x01\x02",
])
def test_not_hl7v2(data):
    assert detect_format(data) == "unknown"


@pytest.mark.parametrize("data", [
    b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj",
    b"\n\n%PDF-1.4\n",
    b"\x00\x00garbage from a scanner%PDF-1.3\n",  # readers accept the header in 1024 bytes
])
def test_pdf(data):
    assert detect_format(data) == "pdf"


@pytest.mark.parametrize("data", [
    CDA,
    b'<?xml version="1.0" encoding="UTF-8"?>\n' + CDA,
    codecs.BOM_UTF8 + b'<?xml version="1.0"?>\r\n<?xml-stylesheet type="text/xsl" href="cda.xsl"?>'
    b"\r\n<!-- a comment with <ClinicalDocument> inside -->\n<!DOCTYPE ClinicalDocument>\n" + CDA,
    b'<cda:ClinicalDocument xmlns:cda="urn:hl7-org:v3">',  # prefixed; head cut mid-document
    b"<ClinicalDocument\n   xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance'\n"
    b"   xmlns='urn:hl7-org:v3'\n   classCode=\"DOCCLIN\">",
    ('<?xml version="1.0" encoding="UTF-16"?>' + CDA.decode()).encode("utf-16"),
    ("<!-- " + "x" * 3000 + " -->" + CDA.decode()).encode(),
])
def test_cda(data):
    assert detect_format(data) == "cda"


@pytest.mark.parametrize("data", [
    b'<?xml version="1.0"?><Bundle xmlns="http://hl7.org/fhir"/>',
    b"<ClinicalDocument><id/></ClinicalDocument>",  # no namespace: not a CDA
    b'<ClinicalDocument xmlns="urn:hl7-org:v2"/>',
    b'<cda:ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:cda="urn:other"/>',
    b'<ClinicalDocumentX xmlns="urn:hl7-org:v3"/>',
    b"<!-- only a comment -->",
    b"<html><body>MSH|^~\\&|</body></html>",
])
def test_other_xml_is_unknown(data):
    assert detect_format(data) == "unknown"


def test_content_decides_not_the_name(tmp_path):
    (tmp_path / "report.pdf").write_bytes(b"MSH|^~\\&|LAB\r")
    assert detect_format((tmp_path / "report.pdf").read_bytes()) == "hl7v2"


def _corpus(folder: str, *suffixes: str) -> list[Path]:
    base = CORPUS / folder
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.suffix.lower() in suffixes)


# ANS "auto-presentable" CDA: an XSL stylesheet that embeds the ClinicalDocument. The root is
# xsl:stylesheet, so it is not handed to the CDA parser as is.
AUTO_PRESENTABLE = {"BIO-CR-BIO_2021.01_Auto-Presentable.xml",
                    "BIO-CR-BIO_2021.01_Auto-Presentable_avec-image.xml",
                    "CANCER-PPS_2022.01_Autopresentable.xml"}


@pytest.mark.corpus
@needs_corpus
@pytest.mark.parametrize("path", [*_corpus("hl7v2", ".hl7", ".er7", ".xml"),
                                  *_corpus("intl/hl7v2", ".hl7"), *_corpus("cda", ".xml"),
                                  *_corpus("pdf", ".pdf")], ids=lambda p: p.name)
def test_corpus(path: Path):
    if path.suffix.lower() in (".hl7", ".er7"):
        expected = "hl7v2"
    elif path.suffix.lower() == ".pdf":
        expected = "pdf"
    else:
        expected = "unknown" if path.name in AUTO_PRESENTABLE else "cda"
    assert detect_format(path.read_bytes()) == expected


@pytest.mark.parametrize("data", [b"PID|1||x\r", b"BTS|1\r", b"OBX|1|NM|X||1\r"])
def test_headerless_segments_go_to_the_hl7_parser(data):
    """So that the sender is told 'no MSH segment', not 'unknown format'."""
    assert detect_format(data) == "hl7v2"
