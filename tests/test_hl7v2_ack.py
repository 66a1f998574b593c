r"""MSH reading (parsers/hl7v2/header.py) and ACK writing (parsers/hl7v2/ack.py).

Every ACK built here is read back by an independent parser, python-hl7 (``hl7.parse``), and the
assertions use its accessors, so that "the ACK parses" means a third party reads the fields we
meant; a v2.5 ACK with ERR is also parsed and strictly validated by hl7apy.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import hl7
import pytest
from hl7apy.parser import parse_message
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.hl7v2.ack import AckError, build_ack, build_batch_ack, new_control_id
from parsers.hl7v2.er7 import Delimiters, parse_text
from parsers.hl7v2.escape import unescape
from parsers.hl7v2.framing import outline, split_batch
from parsers.hl7v2.header import Header, occurrence_location, read_header

SENDER_APP = "LAB^1.2.250.1.213.1.4.2^ISO"
SENDER_FAC = "CERBALLIANCE_LYON^690041231^M"
RECEIVER_APP = "DMP^1.2.250.1.213.4.1^ISO"
RECEIVER_FAC = "ANS^^L"
NOW = datetime(2024, 3, 5, 14, 7, 9, tzinfo=timezone(timedelta(hours=1)))
ERROR = AckError("102", "HL7_BAD_VALUE: OBX-5 is not a number", "OBX[4]-5.1")


def message(*, version: str = "2.5", trigger: str = "R01", control_id: str = "MSG-0042",
            processing: str = "P", charset: str = "", accept: str = "", app: str = "",
            sending_app: str = SENDER_APP, sending_fac: str = SENDER_FAC,
            receiving_app: str = RECEIVER_APP, receiving_fac: str = RECEIVER_FAC,
            country: str = "", language: str = "", encoding: str = "ascii",
            msh13: str = "", msh14: str = "") -> bytes:
    msh = ["MSH", "^~\\&", sending_app, sending_fac, receiving_app, receiving_fac,
           "20240305140000", "", f"ORU^{trigger}^ORU_{trigger}" if trigger else "ORU",
           control_id, processing, version, msh13, msh14, accept, app, country, charset,
           language]
    while msh[-1] == "":
        msh.pop()
    text = "|".join(msh) + "\rPID|1||123^^^CHU^PI||DUPONT^JEAN\rOBX|1|NM|X||12\r"
    return text.encode(encoding)


def header_of(data: bytes) -> Header:
    header = read_header(data)
    assert header is not None
    return header


def ack_bytes(data: bytes | None, code: str = "AA", **kw) -> bytes:
    header = read_header(data) if data is not None else None
    kw.setdefault("now", NOW)
    return build_ack(header, code, **kw)


def parse(ack: bytes, encoding: str = "utf-8") -> hl7.Message:
    """python-hl7's reading of an ACK, after checking its overall shape."""
    assert ack.endswith(b"\r")
    assert b"\n" not in ack and b"\x0b" not in ack and b"\x1c" not in ack
    msg = hl7.parse(ack.decode(encoding))
    names = [str(seg[0]) for seg in msg]
    assert names[:2] == ["MSH", "MSA"]
    assert names in (["MSH", "MSA"], ["MSH", "MSA", "ERR"])
    return msg


def field(msg: hl7.Message, seg: str, n: int) -> str:
    """Field n of the first ``seg`` as written (escaped, with its components)."""
    segment = msg.segment(seg)
    return str(segment[n]) if n < len(segment) else ""


def unescaped(value: str, d: Delimiters = Delimiters()) -> str:  # noqa: B008
    return unescape(value, d)


# -- read_header -------------------------------------------------------------------------------

def test_header_fields():
    h = header_of(message(accept="AL", app="NE", charset="8859/15"))
    assert h.sender == ("LAB", "CERBALLIANCE_LYON")
    assert h.raw(4) == SENDER_FAC and h.get(4, comp=2) == "690041231"
    assert h.control_id == "MSG-0042"
    assert h.version == "2.5"
    assert h.enhanced is True
    assert h.codec == "iso-8859-15"
    assert h.delimiters == Delimiters()
    assert header_of(message()).enhanced is False
    assert header_of(message(app="AL")).enhanced is True


@pytest.mark.parametrize("prefix", [
    b"\x0b", b"\xef\xbb\xbf", b"\r\n\r\n", b"\n", b"  \t", b"\x0b\r\n", b"\x0b\xef\xbb\xbf",
    b"\xef\xbb\xbf\r\n",
])
def test_read_header_after_vt_bom_blank_lines(prefix):
    h = header_of(prefix + message())
    assert h.sender == ("LAB", "CERBALLIANCE_LYON")
    assert h.control_id == "MSG-0042"


@pytest.mark.parametrize("envelope", [
    b"FHS|^~\\&|LAB|CERB|DMP|ANS|20240305\r",
    b"BHS|^~\\&|LAB|CERB|DMP|ANS|20240305\r",
    b"FHS|^~\\&|LAB|CERB\rBHS|^~\\&|LAB|CERB\r",
    b"\x0bFHS|^~\\&|LAB\nBHS|^~\\&|LAB\n",
])
def test_read_header_after_a_batch_envelope(envelope):
    data = envelope + message() + message(control_id="SECOND") + b"BTS|2\rFTS|1\r"
    h = header_of(data)
    assert h.control_id == "MSG-0042"  # the first message's MSH, not the envelope's
    assert h.raw(0) == "MSH"


def test_read_header_stops_at_the_end_of_the_msh_line():
    for end in (b"\r", b"\n", b"\x1c", b"\r\n"):
        data = b"MSH|^~\\&|A|B|C|D|20240101||ORU^R01|ID9|P|2.5" + end + b"PID|1|ID9|x\r"
        h = header_of(data)
        assert h.control_id == "ID9" and h.version == "2.5"
        assert h.raw(13) == ""


@pytest.mark.parametrize("data", [
    b"", b"\x0b\x1c\r", b"PID|1||42\r", b"garbage without any header",
    b"FHS|^~\\&|LAB\rBHS|^~\\&|LAB\rBTS|0\rFTS|1\r",
    b"\xff\xfe\x00\x01" * 10,
])
def test_no_msh_gives_none(data):
    assert read_header(data) is None


@pytest.mark.parametrize("data", [
    b"MSH", b"MSH|^~", b"MSHA^~\\&|x", b"\x0bMSH\r", b"FHS|^~\\&\rMSH|\r",
    b"MSH^^~\\&^A^B",  # a field separator that is also an encoding character
])
def test_broken_msh_gives_none(data):
    assert read_header(data) is None


@pytest.mark.parametrize("encoding", ["^~", "^^\\&", "^~\\A", "^", "ABCD", "^~~&"])
def test_unusable_encoding_characters_are_read_as_the_standard_ones_and_refused(encoding):
    """MSH-2 with a delimiter repeated, a letter or too few characters: no readable MSH was
    the answer, with an empty MSA-2 the sender cannot match. The header is now read with
    '^~\\&' and marked invalid; the refusal answers the sender's MSH-10 and says why."""
    data = message(charset="UNICODE UTF-8").replace(b"|^~\\&|", b"|" + encoding.encode() + b"|",
                                                    1)
    h = header_of(data)
    assert h.invalid is not None
    code, text, location = h.invalid
    assert (code, location) == ("HL7_BAD_ENCODING_CHARS", "MSH[1]-2")
    assert "MSH-2" in text
    assert (h.control_id, h.version, h.get(9, comp=2)) == ("MSG-0042", "2.5", "R01")
    assert h.sender == (SENDER_APP.split("^")[0], SENDER_FAC.split("^")[0])
    ack = build_ack(h, "AR", error=AckError("102", f"{code}: {text}", location), now=NOW)
    msg = parse(ack)
    assert field(msg, "MSH", 2) == "^~\\&"  # ours, standard: the sender's are unusable
    assert field(msg, "MSA", 2) == "MSG-0042"
    assert field(msg, "ERR", 2) == "MSH^1^2^1"


def test_valid_header_is_not_marked_invalid():
    assert header_of(message()).invalid is None


@pytest.mark.parametrize(("charset", "raw", "codec"), [
    ("UNICODE UTF-8", "CH Évian".encode("latin-1"), "latin-1"),  # declared UTF-8, latin-1
    ("ASCII", "CH Évian".encode("latin-1"), "latin-1"),
    ("KLINGON-1", "CH Évian".encode("latin-1"), "latin-1"),  # unknown MSH-18
    ("UNICODE UTF-8", b"CH \xff\xfe\xc3", "latin-1"),
])
def test_bytes_invalid_in_the_declared_charset_do_not_raise(charset, raw, codec):
    data = message(charset=charset).replace(b"CERBALLIANCE_LYON", raw)
    h = header_of(data)
    assert h.codec == codec
    assert h.control_id == "MSG-0042"
    # the ACK echoes the sender's bytes as they came; under a declared UTF-8 (connectors
    # round 9) it is written in UTF-8, valid in the charset it declares
    ack = build_ack(h, "AA", now=NOW)
    echoed = raw.decode(codec).encode("utf-8") if charset == "UNICODE UTF-8" else raw
    assert b"|" + echoed + b"^690041231^M|" in ack
    msg = parse(ack, "utf-8" if charset == "UNICODE UTF-8" else "latin-1")
    assert field(msg, "MSH", 18) == charset


def test_accented_msh_in_8859_1_and_utf_8():
    latin = message(charset="8859/1", sending_fac="CH Évian^690041231^M", encoding="latin-1")
    assert header_of(latin).get(4) == "CH Évian" and header_of(latin).codec == "iso-8859-1"
    utf8 = message(charset="UNICODE UTF-8", sending_fac="CH Évian^690041231^M",
                   encoding="utf-8")
    assert header_of(utf8).get(4) == "CH Évian" and header_of(utf8).codec == "utf-8"


# -- build_ack: the header ---------------------------------------------------------------------

def test_sender_and_receiver_swapped_components_kept():
    msg = parse(ack_bytes(message()))
    assert field(msg, "MSH", 3) == RECEIVER_APP
    assert field(msg, "MSH", 4) == RECEIVER_FAC
    assert field(msg, "MSH", 5) == SENDER_APP
    assert field(msg, "MSH", 6) == SENDER_FAC
    assert msg["MSH.F6.R1.C1"] == "CERBALLIANCE_LYON"
    assert msg["MSH.F6.R1.C2"] == "690041231"
    assert msg["MSH.F6.R1.C3"] == "M"
    assert msg["MSH.F5.R1.C2"] == "1.2.250.1.213.1.4.2"
    assert msg["MSH.F3.R1.C1"] == "DMP"


def test_empty_receiving_application_becomes_ours():
    msg = parse(ack_bytes(message(receiving_app="", receiving_fac="")))
    assert field(msg, "MSH", 3) == "DMP"
    assert field(msg, "MSH", 4) == ""
    msg = parse(build_ack(header_of(message(receiving_app="")), "AA", application="DMP-TEST"))
    assert field(msg, "MSH", 3) == "DMP-TEST"


def test_escaped_sender_values_are_echoed_as_sent():
    data = message(sending_fac="LABO A\\T\\B^690041231^M", sending_app="X\\S\\Y")
    msg = parse(ack_bytes(data))
    assert field(msg, "MSH", 6) == "LABO A\\T\\B^690041231^M"
    assert msg.unescape(msg["MSH.F6.R1.C1"]) == "LABO A&B"
    assert field(msg, "MSH", 5) == "X\\S\\Y"


def test_msa_answers_the_received_control_id():
    for code in ("AA", "AE", "AR", "CA", "CE", "CR"):
        msg = parse(ack_bytes(message(control_id="20240305-000123"), code))
        assert field(msg, "MSA", 1) == code
        assert str(msg.segment("MSA")[2]) == "20240305-000123"
        assert field(msg, "MSA", 2) == "20240305-000123"


def test_new_control_id_in_msh_10():
    msg = parse(ack_bytes(message()))
    own = field(msg, "MSH", 10)
    assert own and own != "MSG-0042" and len(own) <= 20
    msg = parse(ack_bytes(message(), control_id="MINE-1"))
    assert field(msg, "MSH", 10) == "MINE-1"


def test_new_control_ids_are_unique_and_short():
    ids = [new_control_id() for _ in range(10_000)]
    assert len(set(ids)) == 10_000
    assert all(len(i) <= 20 and re.fullmatch(r"[A-Z0-9]+", i) for i in ids)
    acks = {field(parse(ack_bytes(message())), "MSH", 10) for _ in range(500)}
    assert len(acks) == 500


def test_timestamp_in_msh_7():
    msg = parse(ack_bytes(message(), now=NOW))
    assert field(msg, "MSH", 7) == "20240305140709+0100"
    assert field(msg, "MSH", 8) == ""
    stamp = field(parse(build_ack(header_of(message()), "AA")), "MSH", 7)
    assert re.fullmatch(r"\d{14}[+-]\d{4}", stamp)


@pytest.mark.parametrize(("version", "processing"), [
    ("2.5", "P"), ("2.5.1", "T"), ("2.3", "D"), ("2.4", "P^A"), ("2.6", "T^I"), ("2.3.1", "P"),
])
def test_version_and_processing_id_copied(version, processing):
    msg = parse(ack_bytes(message(version=version, processing=processing)))
    assert field(msg, "MSH", 12) == version
    assert field(msg, "MSH", 11) == processing


def test_version_with_components_copied_whole():
    msg = parse(ack_bytes(message(version="2.5^FRA^2.1")))
    assert field(msg, "MSH", 12) == "2.5^FRA^2.1"
    assert field(msg, "MSH", 9) == "ACK^R01^ACK"


def test_missing_processing_id_and_version_get_defaults():
    data = b"MSH|^~\\&|LAB|CERB|DMP|ANS|20240101||ORU^R01|C7\rPID|1\r"
    msg = parse(ack_bytes(data, "AA", error=ERROR))
    assert field(msg, "MSH", 11) == "P"
    assert field(msg, "MSH", 12) == "2.5"
    assert field(msg, "MSH", 9) == "ACK^R01^ACK"
    assert field(msg, "ERR", 3) == "102^Data type error^HL70357"  # the v2.5 form


def test_msh_13_to_16_not_echoed_17_to_19_are():
    data = message(msh13="77", msh14="CONT", accept="AL", app="NE", country="FRA",
                   charset="UNICODE UTF-8", language="FR")
    msg = parse(ack_bytes(data))
    for n in (13, 14, 15, 16):
        assert field(msg, "MSH", n) == ""
    assert field(msg, "MSH", 17) == "FRA"
    assert field(msg, "MSH", 18) == "UNICODE UTF-8"
    assert field(msg, "MSH", 19) == "FR"


def test_enhanced_only_message_ack_has_no_trailing_fields():
    msg = parse(ack_bytes(message(accept="AL", app="NE")))
    assert len(msg.segment("MSH")) == 13  # MSH-0 (name) to MSH-12, nothing after
    assert ack_bytes(message(accept="AL")).split(b"\r")[0].endswith(b"|2.5")


@pytest.mark.parametrize(("version", "trigger", "expected"), [
    ("2.5", "R01", "ACK^R01^ACK"), ("2.5.1", "R01", "ACK^R01^ACK"),
    ("2.4", "A01", "ACK^A01^ACK"), ("2.3.1", "R01", "ACK^R01^ACK"),
    ("2.3", "R01", "ACK^R01"), ("2.2", "A08", "ACK^A08"), ("2.5", "", "ACK"),
    ("2.3", "", "ACK"),
])
def test_message_type(version, trigger, expected):
    msg = parse(ack_bytes(message(version=version, trigger=trigger)))
    assert field(msg, "MSH", 9) == expected
    assert msg["MSH.F9.R1.C1"] == "ACK"


# -- build_ack: charset ------------------------------------------------------------------------

def test_ack_in_8859_1_has_the_latin_1_byte():
    data = message(charset="8859/1", sending_fac="CH Évian^690041231^M", encoding="latin-1")
    ack = ack_bytes(data, "AE", error=AckError("207", "Échec: réessayez"))
    assert b"\xe9" in ack and b"\xc3\xa9" not in ack  # é as one byte
    assert "Évian".encode("latin-1") in ack
    with pytest.raises(UnicodeDecodeError):
        ack.decode("utf-8")
    msg = parse(ack, "latin-1")
    assert field(msg, "MSH", 18) == "8859/1"
    assert msg["MSH.F6.R1.C1"] == "CH Évian"
    assert field(msg, "ERR", 8) == "Échec: réessayez"
    assert read_header(ack).get(6) == "CH Évian"  # our own reader agrees, from MSH-18


def test_ack_in_utf_8_has_utf_8_bytes():
    data = message(charset="UNICODE UTF-8", sending_fac="CH Évian^690041231^M",
                   encoding="utf-8")
    ack = ack_bytes(data, "AE", error=AckError("207", "Échec: réessayez"))
    assert "Évian".encode() in ack and b"\xc3\x89" in ack
    msg = parse(ack, "utf-8")
    assert field(msg, "MSH", 18) == "UNICODE UTF-8"
    assert msg["MSH.F6.R1.C1"] == "CH Évian"
    assert field(msg, "MSA", 3) == "Échec: réessayez"


def test_ack_in_8859_15_and_repeated_msh_18():
    data = message(charset="8859/15~UNICODE UTF-8", sending_fac="Bœuf", encoding="iso-8859-15")
    ack = ack_bytes(data)
    assert b"B\xbduf" in ack
    msg = parse(ack, "iso-8859-15")
    assert field(msg, "MSH", 18) == "8859/15~UNICODE UTF-8"
    assert field(msg, "MSH", 6) == "Bœuf"


def test_text_not_in_the_charset_is_replaced_not_raised():
    data = message(charset="8859/1")
    ack = ack_bytes(data, "AE", error=AckError("207", "€ 日本"))
    msg = parse(ack, "latin-1")
    assert field(msg, "ERR", 8) == "? ??"


# -- build_ack: other delimiters ---------------------------------------------------------------

# field '#', component '$', repetition '*', escape '%', subcomponent '@'
ODD = Delimiters(field="#", component="$", repetition="*", escape="%", subcomponent="@")


def odd_message(version: str = "2.5") -> bytes:
    return (f"MSH#$*%@#LAB$1.2.3$ISO#CERBALLIANCE_LYON$690041231$M#DMP#ANS#20240305##"
            f"ORU$R01$ORU_R01#ODD-1#P#{version}####FRA#8859/1\rPID#1##42\r").encode("latin-1")


def test_non_default_delimiters_reused_in_the_ack():
    h = header_of(odd_message())
    assert h.delimiters == ODD
    text = "bad value 'a|b^c~d\\e&f' #1 $2 *3 %4 @5\r\nend"
    ack = build_ack(h, "AE", error=AckError("102", text, "OBX[4]-5.1"), now=NOW)
    assert ack.startswith(b"MSH#$*%@#DMP#ANS#LAB$1.2.3$ISO#CERBALLIANCE_LYON$690041231$M#")
    msg = parse(ack, "latin-1")
    assert msg.separators[1:] == "#*$@" and msg.esc == "%"
    assert field(msg, "MSH", 2) == "$*%@"
    assert field(msg, "MSH", 9) == "ACK$R01$ACK"
    assert msg["MSH.F6.R1.C2"] == "690041231"
    assert field(msg, "MSA", 2) == "ODD-1"
    assert field(msg, "ERR", 2) == "OBX$4$5$1$1"
    assert field(msg, "ERR", 3) == "102$Data type error$HL70357"
    err8 = field(msg, "ERR", 8)
    assert "%F%" in err8 and "%S%" in err8 and "%E%" in err8 and "%.br%" in err8
    assert "|" in err8 and "^" in err8  # not delimiters here: written as they are
    assert unescape(err8, ODD) == text.replace("\r", "\n")
    assert len(msg.segment("ERR")) == 9
    # our own reader too
    assert read_header(ack).delimiters == ODD


def test_non_default_delimiters_v23_eld():
    ack = build_ack(header_of(odd_message("2.3")), "AE", error=ERROR, now=NOW)
    msg = parse(ack, "latin-1")
    assert field(msg, "MSH", 9) == "ACK$R01"
    assert field(msg, "ERR", 1) == "OBX$4$5$102@Data type error@HL70357"


def test_three_encoding_characters_only():
    data = b"MSH|^~\\|LAB|CERB|DMP|ANS|20240101||ORU^R01|C9|P|2.3\rPID|1\r"
    ack = ack_bytes(data, "AE", error=ERROR)
    assert ack.startswith(b"MSH|^~\\|DMP|")
    msg = parse(ack)
    assert field(msg, "ERR", 1) == "OBX^4^5^102&Data type error&HL70357"


# -- build_ack: ERR ----------------------------------------------------------------------------

def test_err_v25():
    ack = ack_bytes(message(), "AE", error=ERROR)
    msg = parse(ack)
    assert len(msg) == 3
    err = msg.segment("ERR")
    assert field(msg, "ERR", 1) == ""  # ERR-1 is the pre-2.5 form
    assert field(msg, "ERR", 2) == "OBX^4^5^1^1"
    assert [str(c) for c in err[2][0]] == ["OBX", "4", "5", "1", "1"]
    assert field(msg, "ERR", 3) == "102^Data type error^HL70357"
    assert msg["ERR.F3.R1.C3"] == "HL70357"
    assert field(msg, "ERR", 4) == "E"
    assert field(msg, "ERR", 8) == ERROR.text
    assert len(err) == 9
    assert field(msg, "MSA", 1) == "AE" and field(msg, "MSA", 3) == ERROR.text


@pytest.mark.parametrize("version", ["2.7", "2.7.1", "2.8", "2.9"])
def test_msa_3_left_empty_from_v27(version):
    """MSA-3 (text message) was withdrawn in v2.7: the error is the ERR segment's."""
    msg = parse(ack_bytes(message(version=version), "AE", error=ERROR))
    assert str(msg.segment("MSA")) == "MSA|AE|MSG-0042"
    assert field(msg, "ERR", 3) == "102^Data type error^HL70357"
    assert field(msg, "ERR", 8) == ERROR.text


def test_err_v25_parsed_and_validated_by_hl7apy():
    ack = ack_bytes(message(), "AE", error=ERROR).decode()
    strict = parse_message(ack, validation_level=1)
    strict.validate()  # raises on any structure, datatype or length violation
    m = parse_message(ack, validation_level=2, find_groups=False)
    assert m.msh.msh_9.to_er7() == "ACK^R01^ACK"
    assert m.msh.msh_5.to_er7() == SENDER_APP and m.msh.msh_6.to_er7() == SENDER_FAC
    assert m.msa.msa_1.to_er7() == "AE"
    assert m.msa.msa_2.to_er7() == "MSG-0042"
    assert m.err.err_2.err_2_1.to_er7() == "OBX"
    assert m.err.err_2.err_2_2.to_er7() == "4"
    assert m.err.err_2.err_2_3.to_er7() == "5"
    assert m.err.err_3.cwe_1.to_er7() == "102"
    assert m.err.err_3.cwe_3.to_er7() == "HL70357"
    assert m.err.err_4.to_er7() == "E"
    assert m.err.err_8.to_er7() == ERROR.text


def test_err_v25_with_delimiters_validated_by_hl7apy():
    # (no line break: hl7apy writes \.br\ back as \E\.br\E\)
    error = AckError("207", "DMP_X: value 'a|b^c~d&e' in OBX-5, see \\docs\\", "OBX[2]-5")
    ack = ack_bytes(message(version="2.5.1"), "AE", error=error).decode()
    parse_message(ack, validation_level=1).validate()
    m = parse_message(ack, validation_level=2, find_groups=False)
    assert m.err.err_8.to_er7() == field(parse(ack.encode()), "ERR", 8)
    assert m.err.err_2.to_er7() == "OBX^2^5^1"


@pytest.mark.parametrize(("location", "erl"), [
    ("OBX[4]-5.1", "OBX^4^5^1^1"),
    ("OBX[4]-5", "OBX^4^5^1"),
    ("PID", "PID^1"),
    ("PID-3", "PID^1^3^1"),
    ("PID[1]-3[2].4.2", "PID^1^3^2^4^2"),
    ("ZX1[12]-40.3", "ZX1^12^40^1^3"),
    # the two styles of the header's locations (normalizers 'MSH-9', parser 'MSH[1]-2') say
    # the same in ERR-2: unifying them later changes no ACK
    ("MSH-9", "MSH^1^9^1"),
    ("MSH[1]-9", "MSH^1^9^1"),
    ("", ""),
    ("not a location", ""),
])
def test_err_2_location(location, erl):
    msg = parse(ack_bytes(message(), "AE", error=AckError("101", "missing", location)))
    assert field(msg, "ERR", 2) == erl


def test_occurrence_location_of_both_styles():
    """What acknowledge.py does to a ledger location before ERR-2: a segment's position in
    the message becomes its occurrence ('OBX[3]' is the first OBX); 'MSH[1]-9' stays, and a
    location without position ('MSH-9', 'PID') is left as is (ERR-2 takes it as the first)."""
    data = message()
    assert occurrence_location(data, "OBX[3]-5") == "OBX[1]-5"
    assert occurrence_location(data, "MSH[1]-9") == "MSH[1]-9"
    assert occurrence_location(data, "PID[2]") == "PID[1]"
    assert occurrence_location(data, "MSH-9") == "MSH-9"
    assert occurrence_location(data, "PID") == "PID"


def test_err_severity_and_unknown_code():
    error = AckError("999", "odd", "PID-3", severity="W")
    msg = parse(ack_bytes(message(), "AE", error=error))
    assert field(msg, "ERR", 3) == "999^^HL70357"
    assert field(msg, "ERR", 4) == "W"


@pytest.mark.parametrize("version", ["2.3", "2.3.1", "2.4", "2.2"])
def test_err_before_v25_uses_eld(version):
    msg = parse(ack_bytes(message(version=version), "AE", error=ERROR))
    err = msg.segment("ERR")
    assert len(err) == 2  # ERR-1 only
    assert field(msg, "ERR", 1) == "OBX^4^5^102&Data type error&HL70357"
    assert msg["ERR.F1.R1.C4.S1"] == "102"
    assert msg["ERR.F1.R1.C4.S3"] == "HL70357"
    assert field(msg, "MSA", 3) == ERROR.text  # the text goes in MSA-3


def test_err_before_v25_parsed_by_hl7apy():
    ack = ack_bytes(message(version="2.4"), "AE", error=ERROR).decode()
    m = parse_message(ack, validation_level=2, find_groups=False)
    assert m.msa.msa_2.to_er7() == "MSG-0042"
    assert m.err.err_1.to_er7() == "OBX^4^5^102&Data type error&HL70357"


def test_no_error_no_err():
    msg = parse(ack_bytes(message(), "AA"))
    assert len(msg) == 2
    assert len(msg.segment("MSA")) == 3  # MSA-1, MSA-2, no MSA-3


def test_texts_with_delimiters_and_newlines_are_escaped():
    text = "a|b^c~d\\e&f\r\ng\rh\ni"
    for version in ("2.5", "2.3"):
        ack = ack_bytes(message(version=version), "AE", error=AckError("207", text))
        msg = parse(ack)
        assert len(msg) == 3
        assert len(msg.segment("MSA")) == 4
        assert unescaped(field(msg, "MSA", 3)) == "a|b^c~d\\e&f\n\ng\nh\ni"
        if version == "2.5":
            assert len(msg.segment("ERR")) == 9
            assert unescaped(field(msg, "ERR", 8)) == "a|b^c~d\\e&f\n\ng\nh\ni"
            assert msg.unescape(field(msg, "ERR", 8)).startswith("a|b^c~d\\e&f")


def test_msa_3_at_most_80_characters():
    long = "DMP_SOMETHING: " + "x" * 300
    msg = parse(ack_bytes(message(), "AE", error=AckError("207", long)))
    msa3 = field(msg, "MSA", 3)
    assert len(msa3) <= 80 and msa3.endswith("...")
    assert long.startswith(msa3[:-3])
    err8 = field(msg, "ERR", 8)  # ERR-8 is TX 250 (v2.5): cut there, not the whole text
    assert len(err8) == 250 and err8.endswith("...") and long.startswith(err8[:-3])
    exact = "y" * 80
    assert field(parse(ack_bytes(message(), "AE", error=AckError("207", exact))),
                 "MSA", 3) == exact


@pytest.mark.parametrize("text", [
    "|" * 200,
    "MSH-1/MSH-2 do not define valid delimiters ('|', '^~\\\\&') " * 3,
    "a\r\n" * 60,
    "x" * 78 + "|",
    "x" * 79 + "\n",
])
def test_msa_3_at_most_80_characters_once_escaped(text):
    msg = parse(ack_bytes(message(), "AE", error=AckError("207", text)))
    msa3 = field(msg, "MSA", 3)
    assert len(msa3) <= 80
    value = unescaped(msa3)
    # a prefix of the text (never a cut escape sequence), marked when cut
    expected = text.replace("\r", "\n")
    assert value == expected or (value.endswith("...") and expected.startswith(value[:-3]))


# -- build_ack without a header ----------------------------------------------------------------

@pytest.mark.parametrize("data", [b"PID|1||42\r", b"", b"MSH|^~", b"\xff\xfe garbage"])
def test_ack_for_a_frame_without_msh(data):
    assert read_header(data) is None
    ack = build_ack(None, "AR", error=AckError("100", "HL7_NO_MSH: no MSH segment"), now=NOW)
    msg = parse(ack)
    assert len(msg) == 3
    assert field(msg, "MSH", 2) == "^~\\&"
    assert field(msg, "MSH", 3) == "DMP"
    assert field(msg, "MSH", 7) == "20240305140709+0100"
    assert field(msg, "MSH", 9) == "ACK"
    assert len(field(msg, "MSH", 10)) <= 20 and field(msg, "MSH", 10)
    assert field(msg, "MSH", 11) == "P"
    assert field(msg, "MSH", 12) == "2.5"
    assert field(msg, "MSA", 1) == "AR"
    assert field(msg, "MSA", 2) == ""
    assert field(msg, "ERR", 3) == "100^Segment sequence error^HL70357"
    assert field(msg, "ERR", 8) == "HL7_NO_MSH: no MSH segment"
    parse_message(ack.decode(), validation_level=2, find_groups=False)
    # and our own reader finds its MSH
    assert header_of(ack).get(9) == "ACK"


def test_ack_without_header_nor_error():
    msg = parse(build_ack(None, "AA", control_id="C1", application="ME"))
    assert len(msg) == 2
    assert field(msg, "MSH", 3) == "ME"
    assert field(msg, "MSH", 10) == "C1"


def test_ack_of_the_ack_swaps_back():
    ack = ack_bytes(message(), "AA")
    h = header_of(ack)
    assert h.sender == ("DMP", "ANS")
    again = parse(build_ack(h, "AA", now=NOW))
    assert field(again, "MSH", 5) == RECEIVER_APP and field(again, "MSH", 6) == RECEIVER_FAC
    assert field(again, "MSH", 3) == SENDER_APP and field(again, "MSH", 4) == SENDER_FAC


# -- property ----------------------------------------------------------------------------------

error_texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)


@settings(max_examples=300, deadline=None)
@given(text=error_texts, code=st.sampled_from(["100", "102", "207", "999"]),
       location=st.sampled_from(["", "OBX[4]-5.1", "PID-3", "MSH-9.2"]),
       with_header=st.booleans())
def test_property_any_error_text_gives_a_parseable_ack(text, code, location, with_header):
    data = message(charset="UNICODE UTF-8") if with_header else None
    ack = ack_bytes(data, "AE", error=AckError(code, text, location))
    msg = parse(ack)
    assert [str(s[0]) for s in msg] == ["MSH", "MSA", "ERR"]
    assert len(msg.segment("ERR")) == 9
    assert field(msg, "MSA", 1) == "AE"
    assert field(msg, "ERR", 3).split("^")[::2] == [code, "HL70357"]
    expected = text.replace("\r", "\n")
    # python-hl7 strips whitespace at both ends of the message, so of the last field too
    got = unescaped(field(msg, "ERR", 8))
    assert expected.startswith(got) and got.rstrip() == expected.rstrip()
    # our own parser keeps it exactly
    ours = parse_text(ack.decode())
    assert ours.get("ERR", 8) == expected
    assert len(ours.segments) == 3
    # MSA-3 fits, and holds the start of the text
    msa3 = field(msg, "MSA", 3)
    assert len(msa3) <= 80
    short = unescaped(msa3)
    assert short == expected or (short.endswith("...") and expected.startswith(short[:-3]))


def test_vt_and_fs_in_a_text_never_reach_the_wire():
    text = "sender A\x0bB\x1cC is not allowed"
    ack = ack_bytes(message(), "AR", error=AckError("207", text))
    msg = parse(ack)  # checks: no VT, no FS, so the MLLP frame around the ACK holds
    assert "\\X0B\\" in field(msg, "ERR", 8) and "\\X1C\\" in field(msg, "MSA", 3)
    assert unescaped(field(msg, "ERR", 8)) == text
    assert unescaped(field(msg, "MSA", 3)) == text


@pytest.mark.parametrize(("msh9", "written"), [
    ("ORU^R\\F\\01", "ACK^R\\F\\01^ACK"),
    ("ORU^\\.br\\", "ACK^\\.br\\^ACK"),
    ("ORU^R01\\X0D\\", "ACK^R01\\.br\\^ACK"),
])
def test_escaped_trigger_event_stays_inside_msh_9(msh9, written):
    data = b"MSH|^~\\&|A|B|C|D|20240101||" + msh9.encode() + b"|ID7|T|2.5\rPID|1\r"
    msg = parse(ack_bytes(data, "AA"))
    assert field(msg, "MSH", 9) == written
    assert field(msg, "MSH", 10) != "ID7" and field(msg, "MSH", 11) == "T"
    assert field(msg, "MSH", 12) == "2.5"
    assert str(msg.segment("MSA")[2]) == "ID7"


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200), prefix=st.sampled_from([b"", b"MSH|^~\\&|", b"\x0bMSH|",
                                                             b"FHS|^~\\&\rMSH|^~\\&|"]))
def test_property_read_header_never_raises(data, prefix):
    h = read_header(prefix + data)
    if h is not None:
        assert h.raw(0) == "MSH"
        build_ack(h, "AA")  # and an answer can always be written


field_text = st.text(st.characters(blacklist_categories=("Cs",),
                                   blacklist_characters="\r\n\x0b\x1c"), max_size=20)


@settings(max_examples=300, deadline=None)
@given(fields=st.lists(field_text, min_size=17, max_size=17),
       version=st.sampled_from(["", "2.3", "2.4", "2.5", "2.5.1", "2.6"]))
def test_property_any_readable_header_gives_a_parseable_ack(fields, version):
    """Whatever the sender put in MSH-3 to MSH-19 (delimiters and escapes included), the ACK
    parses and echoes its fields in the right places."""
    fields[9] = version  # MSH-12
    data = ("MSH|^~\\&|" + "|".join(fields) + "\rPID|1\r").encode()
    h = read_header(data)
    assert h is not None
    ack = build_ack(h, "AE", error=ERROR, now=NOW)
    msg = parse(ack, h.codec)
    assert field(msg, "MSH", 3) == (h.raw(5) or "DMP")
    assert field(msg, "MSH", 4) == h.raw(6)
    assert field(msg, "MSH", 5) == h.raw(3)
    assert field(msg, "MSH", 6) == h.raw(4)
    assert field(msg, "MSH", 7) == "20240305140709+0100"
    assert msg["MSH.F9.R1.C1"] == "ACK"
    assert field(msg, "MSH", 11) == (h.raw(11) or "P")
    assert field(msg, "MSH", 12) == (h.raw(12) or "2.5")
    assert field(msg, "MSH", 18) == h.raw(18)
    assert str(msg.segment("MSA")[2]) == h.raw(10)
    assert [str(s[0]) for s in msg] == ["MSH", "MSA", "ERR"]


# -- build_batch_ack (v2.5 2.10.3.3) -----------------------------------------------------------

BHS = "BHS|^~\\&|LAB^1.2.3^ISO|CERBALLIANCE_LYON|DMP|ANS|20240305140000||||B-77"


def batch_of(*messages: bytes, header: str = BHS, trailer: str | None = None,
             encoding: str = "utf-8") -> bytes:
    """A BHS ... BTS batch around ``messages`` (BTS-1 their number unless ``trailer``)."""
    end = trailer if trailer is not None else f"BTS|{len(messages)}"
    return (header.encode(encoding) + b"\r" + b"".join(messages)
            + (end.encode() + b"\r" if end else b""))


def batch_ack(data: bytes, code: str = "AA", **kw) -> bytes:
    """Each message of ``data`` answered ``code``, in the batch build_batch_ack writes."""
    messages = split_batch(data).messages
    headers = [read_header(m) for m in messages]
    acks = [[build_ack(h, code, now=NOW)] for h in headers]
    kw.setdefault("now", NOW)
    return build_batch_ack(outline(data), acks, headers[0] if headers else None, **kw)


def read_batch(answer: bytes, encoding: str = "utf-8") -> hl7.Batch:
    """python-hl7's reading of a response batch, after checking its overall shape."""
    assert answer.endswith(b"\r") and b"\n" not in answer and b"\x0b" not in answer
    return hl7.parse_batch(answer.decode(encoding))


def test_batch_ack_holds_one_ack_per_message_in_order():
    data = batch_of(*(message(control_id=f"MSG-{n}") for n in range(3)))
    got = read_batch(batch_ack(data))
    assert [str(m.segment("MSA")) for m in got] == [f"MSA|AA|MSG-{n}" for n in range(3)]
    assert str(got.trailer) == "BTS|3"


def test_batch_ack_header_swaps_sender_and_receiver_and_references_the_batch():
    bhs = read_batch(batch_ack(batch_of(message()))).header
    assert [str(bhs[n]) for n in (3, 4, 5, 6)] == ["DMP", "ANS", "LAB^1.2.3^ISO",
                                                   "CERBALLIANCE_LYON"]
    assert str(bhs[7]) == "20240305140709+0100"
    assert str(bhs[12]) == "B-77"  # BHS-12, reference batch control id = the received BHS-11
    assert re.fullmatch(r"A\d{19}", str(bhs[11]))  # a control id of ours, 20 characters


def test_batch_ack_header_falls_back_on_the_first_msh():
    """A BHS that names nobody (BHS|^~\\&): the first message's MSH-3..6, swapped."""
    answer = batch_ack(batch_of(message(), header="BHS|^~\\&"))
    bhs = read_batch(answer).header
    assert [str(bhs[n]) for n in (3, 4, 5, 6)] == [RECEIVER_APP, RECEIVER_FAC, SENDER_APP,
                                                   SENDER_FAC]
    assert len(bhs) == 12  # no BHS-12: the received batch had no control id


def test_batch_ack_counts_the_acks_not_the_messages():
    """A message answered by two ACKs (commit, application), one by none (MSH-15/16 asked
    for none): BTS-1 counts the ACK messages in the response."""
    data = batch_of(message(control_id="M1"), message(control_id="M2"))
    headers = [read_header(m) for m in split_batch(data).messages]
    acks = [[build_ack(headers[0], "CA", now=NOW), build_ack(headers[0], "AA", now=NOW)], []]
    got = read_batch(build_batch_ack(outline(data), acks, headers[0], now=NOW))
    assert [str(m.segment("MSA")) for m in got] == ["MSA|CA|M1", "MSA|AA|M1"]
    assert str(got.trailer) == "BTS|2"


def test_empty_batch_is_answered_with_an_empty_batch():
    answer = build_batch_ack(outline(batch_of(trailer="BTS|0")), [], None, now=NOW)
    assert answer.decode().split("\r")[1:] == ["BTS|0", ""]
    got = read_batch(answer)
    assert len(got) == 0 and str(got.header[12]) == "B-77"


def test_every_received_batch_gets_its_own_and_a_file_gets_no_fhs():
    """FHS, two batches and a message outside any: three response batches, each with its
    own ACKs and count, the third with no reference; no FHS/FTS (the module doc says why)."""
    data = (b"FHS|^~\\&|LAB\r" + batch_of(message(control_id="M1")) + b"BHS|^~\\&|LAB||||||||"
            b"B-78\r" + message(control_id="M2") + message(control_id="M3") + b"BTS|2\r"
            + message(control_id="M4") + b"FTS|3\r")
    text = batch_ack(data).decode()
    assert not text.startswith("FHS") and "FTS" not in text
    parts = [p for p in re.split(r"(?=BHS\|)", text) if p]
    assert len(parts) == 3
    got = [hl7.parse_batch(p) for p in parts]
    assert [[str(m.segment("MSA")[2]) for m in b] for b in got] == [["M1"], ["M2", "M3"],
                                                                    ["M4"]]
    assert [str(b.trailer) for b in got] == ["BTS|1", "BTS|2", "BTS|1"]
    assert [str(b.header[12]) if len(b.header) > 12 else "" for b in got] == [
        "B-77", "B-78", ""]


def test_batch_comment_is_escaped_and_cut_at_80():
    text = "HL7_BATCH_COUNT_MISMATCH: BTS-1 announces 3 messages, 2 found | " + "x" * 60
    answer = batch_ack(batch_of(message(), message(control_id="M2"), trailer="BTS|3"),
                       comments={0: text})
    got = read_batch(answer)
    for comment in (str(got.header[10]), str(got.trailer[2])):
        assert len(comment) <= 80 and comment.endswith("...")
        assert comment.startswith("HL7_BATCH_COUNT_MISMATCH: BTS-1 announces 3 messages")
    assert "\\F\\" in str(got.trailer[2])  # the '|' of the text, escaped


def test_batch_ack_in_the_first_message_charset_and_delimiters():
    """ISO 8859-1 message with '#' as field separator and its own encoding characters: the
    envelope uses them and the bytes are latin-1, like the ACK."""
    data = batch_of(message(charset="8859/1", sending_fac="CERBALLIANCE_LYON",
                            receiving_fac="SANTÉ", encoding="latin-1"),
                    header="BHS|^~\\&|LAB|CERBALLIANCE_LYON|DMP|SANTÉ", encoding="latin-1")
    answer = batch_ack(data)
    assert "BHS|^~\\&|DMP|SANTÉ|".encode("latin-1") in answer
    assert str(read_batch(answer, "latin-1").header[4]) == "SANTÉ"
    own = (b"BHS#$*!@#LAB\r" + message().replace(b"|", b"#").replace(b"^~\\&", b"$*!@")
           + b"BTS#1\r")
    text = batch_ack(own).decode()
    assert text.startswith("BHS#$*!@#") and "\rBTS#1\r" in text


def test_empty_batch_with_its_own_delimiters():
    answer = build_batch_ack(outline(b"BHS#$*!@#LAB#X\rBTS#0\r"), [], None, now=NOW)
    assert answer.startswith(b"BHS#$*!@#") and answer.endswith(b"\rBTS#0\r")
