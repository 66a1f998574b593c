"""api/upload.py: the files of a POST /imports body, out of its HTTP wrappings, byte for byte
whatever they hold (CR-ended HL7 segments, binary PDF, bytes that look like delimiters)."""

from __future__ import annotations

import gzip
import zlib

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.upload import UploadError, decoded_body, uploaded_files

NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                min_size=1, max_size=40).filter(lambda s: s.strip() and '"' not in s
                                                 and "\\" not in s)


def _form(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://dmp.test/imports",
                            files=[("file", (name, data, "application/octet-stream"))
                                   for name, data in files])
    return request.read(), request.headers["content-type"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(NAMES, st.binary(min_size=1, max_size=300)
                          .filter(lambda b: b.strip())), min_size=1, max_size=4))
def test_every_file_comes_back_as_sent(files) -> None:  # noqa: ANN001
    body, content_type = _form(files)
    got = uploaded_files(body, content_type)
    assert [(f.file_name, f.data) for f in got] == files


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from(["gzip", "deflate", "x-gzip"]))
def test_compressed_bodies_come_back_as_sent(data: bytes, coding: str) -> None:
    packed = zlib.compress(data) if coding == "deflate" else gzip.compress(data)
    assert decoded_body(packed, coding, len(data)) == data
    if data:
        with pytest.raises(UploadError) as caught:
            decoded_body(packed, coding, len(data) - 1)
        assert caught.value.code == "TOO_LARGE"


def test_a_plain_body_is_one_file_and_the_wrappings_are_undone_in_order() -> None:
    msh = b"MSH|^~\\&|LABM|CERBALLIANCE|DMP|DMP|20250114||ORU^R01|1|P|2.5\r"
    assert [(f.data, f.file_name) for f in uploaded_files(msh, "x-application/hl7-v2+er7")] \
        == [(msh, None)]
    twice = gzip.compress(zlib.compress(msh))  # deflate applied first, then gzip
    assert decoded_body(twice, "deflate, gzip", 1000) == msh
    assert decoded_body(msh, "identity", 1000) == msh
    assert decoded_body(msh, None, 1000) == msh


def test_form_details_senders_use() -> None:
    """LF-only line ends (lax clients), a quoted boundary, a base64 part, an RFC 2231 file
    name, a multipart/mixed part without a disposition, and the preamble ignored."""
    pdf = b"%PDF-1.4\r\n\xe2\xe3\xcf\xd3\r\n%%EOF\r\n"
    body = (b"preamble, not a part\n--b o\n"
            b"Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''r%C3%A9sultat.pdf\n"
            b"Content-Transfer-Encoding: base64\n\n" + __import__("base64").encodebytes(pdf)
            + b"\n--b o--\n")
    (got,) = uploaded_files(body, 'multipart/form-data; boundary="b o"')
    assert (got.file_name, got.data) == ("résultat.pdf", pdf)
    mixed = b"--m\r\nContent-Type: application/pdf\r\n\r\n" + pdf + b"\r\n--m--"
    assert [f.data for f in uploaded_files(mixed, "multipart/mixed; boundary=m")] == [pdf]


FORM = "multipart/form-data; boundary=x"
PART = b"--x\r\nContent-Disposition: form-data; name=f; filename=a\r\n"


@pytest.mark.parametrize(("body", "content_type", "code"), [
    (PART + b"\r\nMSH", FORM, "BAD_MULTIPART"),  # cut before its closing boundary
    (PART + b"MSH|--x--", FORM, "BAD_MULTIPART"),  # no blank line after the headers
    (b"no delimiter at all", FORM, "BAD_MULTIPART"),
    (b"--x--", FORM, "NO_FILE_PART"),
    (PART + b"Content-Transfer-Encoding: base64\r\n\r\n!!!\r\n--x--", FORM, "BAD_MULTIPART"),
    (b"--x\r\n\r\nMSH", "multipart/form-data", "BAD_MULTIPART"),  # no boundary
])
def test_broken_forms_say_what_is_wrong(body: bytes, content_type: str, code: str) -> None:
    with pytest.raises(UploadError) as caught:
        uploaded_files(body, content_type)
    assert caught.value.code == code and caught.value.status == 400
