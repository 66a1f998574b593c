"""MSH-18 and decoding: French names in 8859/15, 8859/1, UTF-8, cp1252, wrong labels."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from parsers.hl7v2 import HL7ParseError, parse_message
from parsers.hl7v2.charset import (
    BAD_CHARSET,
    CHARSETS,
    UNKNOWN_CHARSET,
    W_ALIAS,
    W_FALLBACK,
    W_GUESSED,
    W_MISMATCH,
    _load_table,
    byte_place,
    declared_charset,
    decode,
)

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"

# A real-looking French identity: accents, œ (8859/15 only), and a € amount in a note.
NAME = "LEFÈVRE^Hélène Françoise^Bœuf"
NOTE = "Reste à charge : 12 €"


def msg(charset: str, encoding: str = "ascii", name: str | None = None,
        note: str | None = None) -> bytes:
    """An ADT message declaring ``charset`` in MSH-18, encoded with ``encoding``; the French
    name and note unless the encoding is ASCII."""
    ascii_only = encoding == "ascii"
    name = name or ("DUPONT^JEAN" if ascii_only else NAME)
    note = note or ("ok" if ascii_only else NOTE)
    text = (f"MSH|^~\\&|GAM|CHU|DMP|DMP|20240101||ADT^A01^ADT_A01|42|P|2.5|||||FRA|{charset}\r"
            f"PID|1||123^^^CHU^PI||{name}||19800101|F\rNTE|1||{note}\r")
    return text.encode(encoding)


def test_msh18_is_read_from_the_raw_bytes():
    assert declared_charset(msg("8859/15", "iso-8859-15")) == "8859/15"
    assert declared_charset(msg("UNICODE UTF-8~8859/1", "utf-8")) == "UNICODE UTF-8"
    assert declared_charset(msg("8859/15^x", "iso-8859-15")) == "8859/15"
    assert declared_charset(msg(" UNICODE UTF-8 ", "utf-8")) == "UNICODE UTF-8"
    assert declared_charset(b"MSH|^~\\&|A|B\rPID|1\r") == ""
    assert declared_charset(b"\xef\xbb\xbf" + msg("ASCII")) == "ASCII"
    assert declared_charset(b"PID|1\r") == ""
    assert declared_charset(b"") == ""
    # MSH-18 is counted from MSH-1, whatever the field separator
    assert declared_charset(msg("8859/1").replace(b"|", b"#")) == "8859/1"


def test_8859_15_french_names_and_euro():
    text, codec, warnings = decode(msg("8859/15", "iso-8859-15"))
    assert codec == "iso-8859-15" and warnings == []
    assert NAME in text and NOTE in text


def test_euro_differs_between_8859_1_and_8859_15():
    data = msg("8859/1", "iso-8859-15", name="DUPONT^Hélène")
    text, codec, warnings = decode(data)
    assert codec == "iso-8859-1" and warnings == []
    assert "Hélène" in text  # same byte in both
    assert "12 ¤" in text and "€" not in text  # 0xA4 is ¤ in 8859/1: faithful to MSH-18


def test_utf8_declared_and_sent():
    for label in ("UNICODE UTF-8", "UNICODE"):
        text, codec, warnings = decode(msg(label, "utf-8"))
        assert codec == "utf-8" and warnings == [] and NAME in text


def test_declared_utf8_but_latin1_bytes_fails_with_offset_and_no_patient_data():
    data = msg("UNICODE UTF-8", "iso-8859-15")
    with pytest.raises(HL7ParseError) as e:
        decode(data)
    err = e.value
    assert err.code == BAD_CHARSET and err.location == "MSH[1]-18"
    offset = data.index("È".encode("iso-8859-15"))
    assert f"byte {offset}" in str(err) and "MSH-18" in str(err)
    assert "LEF" not in str(err) and "Hélène" not in str(err)
    # where the byte is, so that the integrator finds the field their system wrote
    assert "(in PID[2]-5)" in str(err) and "MSH-18" in str(err)


def test_the_place_of_an_undecodable_byte_is_named_by_segment_and_field():
    data = msg("UNICODE UTF-8", "iso-8859-15").replace(b"\r", b"\n")
    assert byte_place(data, data.index("È".encode("iso-8859-15"))) == "PID[2]-5"
    assert byte_place(data, data.index("€".encode("iso-8859-15"))) == "NTE[3]-3"
    assert byte_place(b"MSH|^~\\&|\xe9", 9) == "MSH[1]-3"
    assert byte_place(b"MSH|^~\\&|A\r\xe9x|1", 11) == "segment 2"  # a line that is no segment
    with pytest.raises(HL7ParseError) as e:
        decode(msg("", "iso-8859-15"), fallback="ascii")
    assert "(in PID[2]-5)" in str(e.value) and "Hélène" not in str(e.value)
    assert "(in PID[2]-5)" in decode(msg("", "iso-8859-15"))[2][0]


def test_declared_utf8_but_cp1252_bytes_with_source_fallback():
    data = msg("UNICODE UTF-8", "cp1252")
    text, codec, warnings = decode(data, fallback="cp1252")
    assert codec == "cp1252" and NAME in text and NOTE in text  # œ 0x9C, € 0x80 in cp1252
    assert len(warnings) == 1 and warnings[0].startswith(W_FALLBACK)
    assert "Hélène" not in warnings[0]


def test_fallback_that_fails_too_is_an_error():
    data = msg("UNICODE UTF-8", "ascii") + b"\x81"  # undefined in cp1252
    with pytest.raises(HL7ParseError) as e:
        decode(data, fallback="cp1252")
    assert e.value.code == BAD_CHARSET


def test_unknown_fallback_codec_is_a_configuration_error():
    with pytest.raises(LookupError):
        decode(msg("ASCII"), fallback="no-such-codec")


def test_ascii_declared_with_accents_fails_without_fallback():
    with pytest.raises(HL7ParseError) as e:
        decode(msg("ASCII", "iso-8859-15"))
    assert e.value.code == BAD_CHARSET
    text, codec, warnings = decode(msg("ASCII", "iso-8859-15"), fallback="iso-8859-15")
    assert NAME in text and codec == "iso-8859-15" and warnings[0].startswith(W_FALLBACK)


def test_unknown_msh18():
    with pytest.raises(HL7ParseError) as e:
        decode(msg("KLINGON-8"))
    assert e.value.code == UNKNOWN_CHARSET and e.value.field == 18
    text, codec, warnings = decode(msg("KLINGON-8", "cp1252"), fallback="cp1252")
    assert codec == "cp1252" and NAME in text and warnings[0].startswith(W_FALLBACK)


def test_empty_msh18_ascii_is_utf8_without_warning():
    text, codec, warnings = decode(msg(""))
    assert codec == "utf-8" and warnings == []


def test_empty_msh18_tries_utf8_strictly_first():
    text, codec, warnings = decode(msg("", "utf-8"))
    assert codec == "utf-8" and NAME in text
    assert len(warnings) == 1 and warnings[0].startswith(W_GUESSED)


def test_empty_msh18_latin_bytes_default_to_8859_15():
    text, codec, warnings = decode(msg("", "iso-8859-15"))
    assert codec == "iso-8859-15" and NAME in text and NOTE in text
    assert warnings[0].startswith(W_GUESSED)


def test_empty_msh18_uses_the_source_fallback_before_8859_15():
    text, codec, warnings = decode(msg("", "cp1252"), fallback="cp1252")
    assert codec == "cp1252" and NAME in text and NOTE in text
    assert "cp1252" in warnings[0]


def test_missing_msh18_field_is_like_empty():
    data = b"MSH|^~\\&|GAM|CHU|DMP|DMP|20240101||ADT^A01|1|P|2.5\rPID|1||1||" \
        + "Hélène".encode("iso-8859-15") + b"\r"
    text, codec, _ = decode(data)
    assert codec == "iso-8859-15" and "Hélène" in text


def test_alias_is_accepted_with_a_warning():
    text, codec, warnings = decode(msg("ISO-8859-15", "iso-8859-15"))
    assert codec == "iso-8859-15" and NAME in text
    assert warnings[0].startswith(W_ALIAS)
    _, codec, warnings = decode(msg("utf-8", "utf-8"))
    assert codec == "utf-8" and warnings[0].startswith(W_ALIAS)


def test_single_byte_label_on_utf8_bytes_is_read_as_utf8():
    text, codec, warnings = decode(msg("8859/15", "utf-8"))
    assert codec == "utf-8" and NAME in text
    assert warnings[0].startswith(W_MISMATCH)


def test_8859_label_on_cp1252_bytes():
    data = msg("8859/1", "cp1252")  # œ and € are C1 controls in 8859/1
    text, codec, warnings = decode(data, fallback="cp1252")
    assert codec == "cp1252" and NAME in text and NOTE in text
    assert warnings[0].startswith(W_FALLBACK)
    text, codec, warnings = decode(data)  # no fallback: MSH-18's, its C1 bytes cp1252's, said
    assert codec == "iso-8859-1" and warnings[0].startswith(W_MISMATCH)
    assert NAME in text and NOTE in text and "C1 bytes read as cp1252" in warnings[0]
    first_c1 = data.index("œ".encode("cp1252"))
    assert f"byte {first_c1}" in warnings[0]


def test_utf16_message():
    data = codecs.BOM_UTF16_LE + msg("UNICODE UTF-16", "utf-8").decode().encode("utf-16-le")
    text, codec, warnings = decode(data)
    assert text.startswith("MSH|") and codec == "utf-16" and warnings == [] and NOTE in text
    data = msg("UNICODE UTF-16", "utf-8").decode().encode("utf-16-be")
    text, codec, warnings = decode(data)
    assert codec == "utf-16-be" and NAME in text


def test_parse_message_on_utf16_big_endian():
    data = msg("UNICODE UTF-16", "utf-8").decode().encode("utf-16-be")
    m = parse_message(data)
    assert m.charset == "utf-16-be" and m.get("NTE", 3) == NOTE


def test_utf16_label_on_8bit_bytes():
    text, codec, warnings = decode(msg("UNICODE UTF-16", "utf-8"))
    assert codec == "utf-8" and NAME in text and warnings[0].startswith(W_MISMATCH)


def test_utf8_bom_is_dropped():
    text, codec, _ = decode(codecs.BOM_UTF8 + msg("UNICODE UTF-8", "utf-8"))
    assert text.startswith("MSH|") and codec == "utf-8"


def test_table_covers_hl7_0211_and_loads_valid_codecs(tmp_path):
    for name, codec in [("ASCII", "ascii"), ("8859/1", "iso-8859-1"), ("8859/15", "iso-8859-15"),
                        ("8859/2", "iso-8859-2"), ("8859/9", "iso-8859-9"),
                        ("UNICODE UTF-8", "utf-8"), ("UNICODE", "utf-8"), ("UTF-8", "utf-8"),
                        ("UNICODE UTF-16", "utf-16")]:
        assert CHARSETS[name][0] == codec
    bad = tmp_path / "bad.csv"
    bad.write_text("hl7_name,codec,standard\nX,no-such-codec,yes\n", encoding="utf-8")
    with pytest.raises(LookupError):
        _load_table(bad)


def test_parse_message_sets_charset_and_warnings():
    m = parse_message(msg("8859/15", "iso-8859-15"))
    assert m.charset == "iso-8859-15" and m.warnings == []
    assert m.get("PID", 5, comp=2) == "Hélène Françoise" and m.get("PID", 5, comp=3) == "Bœuf"
    m = parse_message(msg("UNICODE UTF-8", "cp1252"), fallback_charset="cp1252")
    assert m.charset == "cp1252" and m.get("NTE", 3) == NOTE
    assert m.warnings and m.warnings[0].startswith(W_FALLBACK)


def test_parse_message_tolerates_an_mllp_frame():
    m = parse_message(b"\x0b" + msg("UNICODE UTF-8", "utf-8") + b"\x1c\r")
    assert m.get("NTE", 3) == NOTE and [s.name for s in m] == ["MSH", "PID", "NTE"]


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is absent")
def test_corpus_charsets():
    """The ANS examples: UTF-8 with accents, 8859/15 acks, and '~' typed as U+02DC."""
    folder = CORPUS / "hl7v2"
    ack = parse_message((folder / "Volets_TRANS_DOC_CDA_HL7V2_V2.1_ORU_Remplacement_ORU_ack.er7")
                        .read_bytes())
    assert ack.charset == "iso-8859-15" and ack.get("MSA", 1) == "AA"
    oru = parse_message((folder / "Volets_TRANS_DOC_CDA_HL7V2_V2.0_ORU_Transmission_initiale_ORU"
                         "_message_ORU_CR_Bio_INIT_N1_N3.hl7").read_bytes())
    assert oru.charset == "utf-8" and oru.delimiters.repetition == "\u02dc"
    assert any(w.startswith("HL7_ODD_DELIMITERS") for w in oru.warnings)
    assert any("é" in s.raw(3) for s in oru.all("OBX"))


@pytest.mark.parametrize(("label", "encoding"), [
    ("ISO_IR 100", "iso-8859-1"), ("ISO IR 100", "iso-8859-1"), ("ISO 8859-1", "iso-8859-1"),
    ("ISO 8859-15", "iso-8859-15"), ("ISO_IR 192", "utf-8"), ("iso_ir 192", "utf-8"),
])
def test_dicom_and_iso_spellings_of_msh18(label, encoding):
    """What RIS/PACS interfaces write in MSH-18 (DICOM's Specific Character Set spellings)."""
    name, note = (NAME, NOTE) if encoding != "iso-8859-1" else ("LEFÈVRE^Hélène", "Déjà réglé")
    text, codec, warnings = decode(msg(label, encoding, name, note))
    assert name in text and note in text and codec == encoding
    assert len(warnings) == 1 and warnings[0].startswith(W_ALIAS)
