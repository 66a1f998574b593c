r"""The lazy ER7 parser against python-hl7 (the reference), escapes, errors, the real corpus.

The property test builds random messages from a model (segments, fields, repetitions,
components, subcomponents, values that contain delimiters only as \F\ \S\ \T\ \R\ \E\), with
random delimiter sets and random CR / LF / CRLF segment ends, and checks every leaf three ways:
our Message.get, python-hl7's extract_field, and the model itself.
"""

from __future__ import annotations

from pathlib import Path

import hl7
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.hl7v2 import HL7ParseError, parse_message, split_batch
from parsers.hl7v2.er7 import Delimiters, leaf, parse_text, split_segments
from parsers.hl7v2.escape import unescape

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
D = Delimiters()

# -- model of a message --------------------------------------------------------------------

# (field, component, repetition, escape, subcomponent): standard, and others senders use.
DELIMITER_SETS = ["|^~\\&", "|^~\\&", "#!@$%", "|^~!&", "|:~\\*"]
# Letters French names really hold, digits, punctuation that is never a delimiter here.
SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-/'éèêëàâçôîïùüÿœæÉÈÇ€"
ESCAPES = {"F": 0, "S": 1, "T": 4, "R": 2, "E": 3}  # escape letter -> index in the set string

text_chunk = st.text(alphabet=SAFE, min_size=1, max_size=8)
# A value is a list of tokens: plain text, or ("esc", letter).
token = st.one_of(text_chunk, st.sampled_from(sorted(ESCAPES)).map(lambda c: ("esc", c)))
value = st.lists(token, max_size=4)
component = st.lists(value, min_size=1, max_size=3)  # subcomponents
repetition = st.lists(component, min_size=1, max_size=3)  # components
field = st.lists(repetition, min_size=1, max_size=3)  # repetitions
segment = st.tuples(st.sampled_from(["PID", "PV1", "OBR", "OBX", "NTE", "ZFA"]),
                    st.lists(field, min_size=1, max_size=6))


def render_value(tokens: list, delims: str) -> tuple[str, str]:
    """(raw escaped text, expected unescaped text)."""
    raw, expected = [], []
    esc = delims[3]
    for t in tokens:
        if isinstance(t, tuple):
            raw.append(f"{esc}{t[1]}{esc}")
            expected.append(delims[ESCAPES[t[1]]])
        else:
            raw.append(t)
            expected.append(t)
    return "".join(raw), "".join(expected)


def render_field(f: list, delims: str) -> str:
    fs, cs, rs, es, ss = delims
    return rs.join(cs.join(ss.join(render_value(v, delims)[0] for v in comp) for comp in rep)
                   for rep in f)


@st.composite
def messages(draw):
    """(segment texts, model) for one message; the model maps (name, k, n) -> field model."""
    delims = draw(st.sampled_from(DELIMITER_SETS))
    fs = delims[0]
    control_id = draw(st.text(alphabet="0123456789", min_size=1, max_size=10))
    msh = fs.join(["MSH", delims[1:], "LAB", "FAC", "DMP", "DMP", "20240101120000", "",
                   "ORU^R01^ORU_R01".replace("^", delims[1]), control_id, "P", "2.5"])
    lines = [msh]
    model = {}
    counts: dict[str, int] = {}
    for name, fields in draw(st.lists(segment, min_size=1, max_size=6)):
        counts[name] = counts.get(name, 0) + 1
        for n, f in enumerate(fields, start=1):
            model[(name, counts[name], n)] = f
        lines.append(fs.join([name, *(render_field(f, delims) for f in fields)]))
    lines.append(fs.join(["ZZZ", "END"]))  # python-hl7 strips trailing whitespace of a message
    return delims, lines, model


def join_segments(lines: list[str], ends: list[str]) -> str:
    return "".join(line + end for line, end in zip(lines, ends, strict=True))


def python_hl7_leaf(ref, name: str, k: int, n: int, r: int, c: int, s: int) -> str:
    """python-hl7's value, with its "path deeper than the tree" errors read as absent."""
    try:
        return ref.extract_field(name, k, n, r, c, s)
    except IndexError:
        return ""


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages(), st.data())
def test_get_agrees_with_python_hl7_and_model(generated, data):
    delims, lines, model = generated
    ends = data.draw(st.lists(st.sampled_from(["\r", "\n", "\r\n"]), min_size=len(lines),
                              max_size=len(lines)))
    text = join_segments(lines, ends)
    msg = parse_text(text)
    ref = hl7.parse("\r".join(lines))
    assert [s.name for s in msg] == ["MSH", *(line[:3] for line in lines[1:])]
    assert msg.get("MSH", 1) == ref.extract_field("MSH", 1, 1) == delims[0]
    assert msg.get("MSH", 2) == ref.extract_field("MSH", 1, 2) == delims[1:]
    for n in range(3, 13):
        assert msg.get("MSH", n) == python_hl7_leaf(ref, "MSH", 1, n, 1, 1, 1)
    assert msg.message_type == ("ORU", "R01", "ORU_R01")
    for (name, k, n), f in model.items():
        seg = msg.all(name)[k - 1]
        for r in range(1, len(f) + 2):
            rep = f[r - 1] if r <= len(f) else []
            for c in range(1, len(rep) + 2):
                comp = rep[c - 1] if c <= len(rep) else []
                for s in range(1, len(comp) + 2):
                    expected = render_value(comp[s - 1], delims)[1] if s <= len(comp) else ""
                    ours = msg.get(seg, n, rep=r, comp=c, sub=s)
                    assert ours == expected, (name, k, n, r, c, s)
                    assert ours == python_hl7_leaf(ref, name, k, n, r, c, s), (name, k, n, r, c, s)
        # one past the last field: absent everywhere
        assert msg.get(seg, len(seg.fields), 1, 1, 1) == ""


@settings(max_examples=40, deadline=None)
@given(messages())
def test_reps_and_component_read_the_same_leaves(generated):
    delims, lines, model = generated
    msg = parse_text("\r".join(lines))
    for (name, k, n), f in model.items():
        seg = msg.all(name)[k - 1]
        reps = msg.reps(seg, n)
        assert len(reps) == len(f) or (not render_field(f, delims) and reps == [])
        for r, raw in enumerate(reps, start=1):
            for c in range(1, 4):
                for s in range(1, 4):
                    assert msg.component(raw, c, s) == msg.get(seg, n, r, c, s)


# -- escapes -----------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("a\\F\\b", "a|b"),
    ("a\\S\\b", "a^b"),
    ("a\\T\\b", "a&b"),
    ("a\\R\\b", "a~b"),
    ("a\\E\\b", "a\\b"),
    ("\\E\\F\\E\\ ", "\\F\\ "),  # an escaped escape does not start a sequence
    ("line 1\\X0D0A\\line 2", "line 1\r\nline 2"),
    ("line 1\\.br\\line 2", "line 1\nline 2"),
    ("Conclusion\\.sp2\\Avis", "Conclusion\n\nAvis"),  # end the line, skip 2 lines
    ("Conclusion\\.sp\\Avis", "Conclusion\nAvis"),
    ("Nom :\\.sk4\\Hélène", "Nom :    Hélène"),  # skip 4 spaces
    ("Titre\\.ce\\Centré", "Titre\nCentré"),  # .ce ends the line
    ("\\.in+4\\Retrait\\.ti-2\\\\.fi\\\\.nf\\", "Retrait"),  # no text of their own
    ("\\XC3A9\\", "é"),  # hex data that is UTF-8
    ("\\XE9\\", "é"),  # hex data that is not UTF-8: latin-1
    ("\\H\\important\\N\\", "important"),
    ("\\Zlocal\\x", "x"),
    ("\\Q\\", "\\Q\\"),  # unknown: kept verbatim
    ("\\XZZ\\", "\\XZZ\\"),  # bad hex: kept verbatim
    ("50\\ unterminated", "50\\ unterminated"),
    ("plain", "plain"),
])
def test_unescape(raw, expected):
    assert unescape(raw, D) == expected


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["sp", "sk", "br", "ce", "in", "ti"]),
       st.text(alphabet="0123456789+- ²", max_size=12), st.text(alphabet=SAFE, max_size=8))
def test_formatting_commands_never_blow_up(command, arg, tail):
    """Whatever number a formatting command carries, the text it becomes stays small."""
    out = unescape(f"a\\.{command}{arg}\\{tail}", D)
    assert out.startswith("a") and out.endswith(tail) and len(out) <= 1 + 20 + len(tail)


@pytest.mark.parametrize("raw", ["a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f",
                                 "\\E\\\\E\\ ", "x\\F\\\\S\\y"])
def test_unescape_matches_python_hl7_on_delimiter_escapes(raw):
    ref = hl7.parse("MSH|^~\\&|A\rNTE|1||" + raw)
    assert unescape(raw, D) == ref.unescape(raw)


def test_escapes_follow_custom_delimiters():
    msg = parse_text("MSH#!@$%#A\rNTE#1##a$F$b$S$c$E$d")
    assert msg.get("NTE", 3) == "a#b!c$d"


def test_get_unescapes_after_splitting():
    msg = parse_text("MSH|^~\\&|A\rPID|1||12\\S\\3^^^X\\T\\Y&1.2&ISO~9")
    assert msg.get("PID", 3) == "12^3"
    assert msg.get("PID", 3, comp=4) == "X&Y"
    assert msg.get("PID", 3, comp=4, sub=2) == "1.2"
    assert msg.get("PID", 3, rep=2) == "9"
    assert msg.get("PID", 3, rep=3) == ""


# -- structure and errors ---------------------------------------------------------------

def test_msh_1_and_2_are_returned_verbatim():
    msg = parse_text("MSH|^~\\&|APP\r")
    assert msg.get("MSH", 1) == "|"
    assert msg.get("MSH", 2) == "^~\\&"
    assert msg.get("MSH", 2, comp=2) == ""
    assert msg.get("MSH", 3) == "APP"


def test_split_segments_accepts_cr_lf_crlf_and_drops_blank_lines():
    assert split_segments("MSH|a\rPID|b\nOBR|c\r\nOBX|d\r\n\r\n  \n") == [
        "MSH|a", "PID|b", "OBR|c", "OBX|d"]
    assert split_segments("A\rB\rC") == ["A", "B", "C"]  # CR always ends a segment


def test_line_break_inside_a_value_stays_in_the_value():
    """CR ends a segment (v2.5 2.5.2); LF and CRLF are tolerated as segment ends only where a
    segment follows. Otherwise they are the line break of a comment a sender left unescaped."""
    text = ("MSH|^~\\&|LABO\rPID|1||LD-778^^^LABO^PI||LEFÈVRE^Hélène\r"
            "OBX|1|TX|COM^Commentaire^L||Prélèvement hémolysé,\n   à contrôler\r\n"
            "sur un nouveau tube.|||N|||F\r"
            "NTE|1|L|Appel du Dr Brémont\n\nle 15/03\rZBE|1\r")
    msg = parse_text(text)
    assert [s.name for s in msg] == ["MSH", "PID", "OBX", "NTE", "ZBE"]
    assert msg.get("OBX", 5) == "Prélèvement hémolysé,\n   à contrôler\nsur un nouveau tube."
    assert msg.get("OBX", 8) == "N" and msg.get("OBX", 11) == "F"
    assert msg.get("NTE", 3) == "Appel du Dr Brémont\nle 15/03"  # a blank line is no text
    assert msg.warnings == ["HL7_LINE_BREAK_IN_VALUE: 3 line break(s) not followed by a "
                            "segment read as text inside the value before them"]
    assert "Brémont" not in " ".join(msg.warnings)


def test_wrapped_segment_of_an_old_sender_is_joined():
    """A v2.2 sender wrapping long segments: the next line starts with a value, not a segment."""
    msg = parse_text("MSH|^~\\&|LCS|LCA|||199807311532||ORU^R01|3630|P|2.2\n"
                     "PID|3|2161348473|20923085580||DURAND^Gaëlle||19730204|\n"
                     "F|||^^^^75012\nPV1||I\n")
    assert [s.name for s in msg] == ["MSH", "PID", "PV1"]
    assert msg.get("PID", 8).strip() == "F" and msg.get("PID", 11, comp=5) == "75012"


_LINE = st.text(alphabet="abcdefghijklmnopqrstuvwxyz éèàçÉ0123456789.,:;'()-", min_size=1,
                max_size=20).filter(lambda s: s.strip())


@settings(max_examples=200, deadline=None)
@given(st.lists(_LINE, min_size=1, max_size=5), st.data())
def test_property_unescaped_line_breaks_never_cut_a_segment(lines, data):
    """Whatever the segment ends (CR, LF, CRLF) and the breaks inside an OBX-5 (LF, CRLF),
    the segments are the same and the value is its lines joined by a newline."""
    breaks = data.draw(st.lists(st.sampled_from(["\n", "\r\n"]), min_size=len(lines) - 1,
                                max_size=len(lines) - 1))
    value = lines[0] + "".join(b + line for b, line in zip(breaks, lines[1:], strict=True))
    ends = data.draw(st.lists(st.sampled_from(["\r", "\n", "\r\n"]), min_size=4, max_size=4))
    segments = ["MSH|^~\\&|LABO", "PID|1||LD-778", f"OBX|1|TX|COM^Comm^L||{value}||||||F",
                "NTE|1||fin"]
    msg = parse_text("".join(s + e for s, e in zip(segments, ends, strict=True)))
    assert [s.name for s in msg] == ["MSH", "PID", "OBX", "NTE"]
    assert msg.get("OBX", 5) == "\n".join(lines) and msg.get("OBX", 11) == "F"
    assert msg.get("NTE", 3) == "fin"


def test_leaf_absent_levels():
    assert leaf("", D, 2, 3, 4) == ""
    assert leaf("a^b", D, 1, 3) == ""
    assert leaf("a&b", D, 1, 1, 2) == "b"


@pytest.mark.parametrize("text, code", [
    ("", "HL7_NO_MSH"),
    ("PID|1\r", "HL7_NO_MSH"),
    ("MSH|^~", "HL7_BAD_MSH"),
    ("MSHA^~\\&|x", "HL7_BAD_ENCODING_CHARS"),
    ("MSH|^^\\&|x", "HL7_BAD_ENCODING_CHARS"),
    ("MSH|^~\\&|x\rDUPONT^JEAN|1\r", "HL7_BAD_SEGMENT"),
    # a name in lower case that is no segment id ('pid|1' is read as PID since round 8:
    # tests/test_hl7v2_senders_round8.py)
    ("MSH|^~\\&|x\rpdi|1\r", "HL7_BAD_SEGMENT"),
])
def test_errors_have_codes(text, code):
    with pytest.raises(HL7ParseError) as e:
        parse_text(text)
    assert e.value.code == code


def test_no_msh_names_the_first_segment_never_a_line_of_data():
    with pytest.raises(HL7ParseError) as e:
        parse_text("PID|1||123\rOBR|1\r")
    assert str(e.value) == ("the message does not start with an MSH segment (it starts with "
                            "a PID segment: sent without its header?)")
    with pytest.raises(HL7ParseError) as e:
        parse_text("DUPONT JEAN 12/03/1960\rPID|1\r")
    assert str(e.value) == "the message does not start with an MSH segment"


def test_bad_delimiters_say_what_msh_2_must_hold():
    with pytest.raises(HL7ParseError) as e:
        parse_text("MSH|^^\\&|x\r")
    assert (e.value.code, e.value.location) == ("HL7_BAD_ENCODING_CHARS", "MSH[1]-2")
    assert "3 or 4 distinct encoding characters" in str(e.value)
    assert "usually ^~\\&" in str(e.value)


def test_bad_segment_error_names_the_position_not_the_content():
    with pytest.raises(HL7ParseError) as e:
        parse_text("MSH|^~\\&|x\rPID|1||123\rDUPONT MARIE née MARTIN|x\r")
    assert e.value.location == "?[3]"
    assert str(e.value).startswith("segment 3 (after PID[2]) has no valid segment name")
    assert "DUPONT" not in str(e.value) and "DUP" not in e.value.location


def test_non_ascii_delimiters_parse_with_a_warning():
    msg = parse_text("MSH|^\u02dc\\&|A\rPID|1||a\u02dcb~c\r")
    assert msg.get("PID", 3, rep=2) == "b~c"
    assert msg.warnings == ["HL7_ODD_DELIMITERS: MSH-1/MSH-2 use non-ASCII delimiters (U+02DC)"]
    assert parse_text("MSH|^~\\&|A\r").warnings == []


def test_segment_index_and_header_shortcuts():
    msg = parse_text("MSH|^~\\&|LAB|FAC|||20240101||ORU^R01^ORU_R01|C42|P|2.5\rPID|1\rOBX|1\r"
                     "OBX|2\r")
    assert [s.index for s in msg] == [1, 2, 3, 4]
    assert msg.control_id == "C42" and msg.version == "2.5" and msg.sender == "LAB|FAC"
    assert msg.first("ZZZ") is None and msg.get("ZZZ", 1) == ""
    assert [msg.get(s, 1) for s in msg.all("OBX")] == ["1", "2"]


# -- the real corpus -------------------------------------------------------------------------

def _corpus_hl7_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    files = [*(CORPUS / "hl7v2").glob("*"), *(CORPUS / "intl" / "hl7v2").glob("*")]
    return sorted(f for f in files if f.suffix.lower() in (".hl7", ".er7"))


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is absent")
@pytest.mark.parametrize("path", _corpus_hl7_files(), ids=lambda p: p.name)
def test_corpus_message_agrees_with_python_hl7(path: Path):
    """Every field of every real message, ours against python-hl7 (unescaping aside)."""
    for chunk in split_batch(path.read_bytes()).messages:
        msg = parse_message(chunk)
        text = chunk.decode(msg.charset).replace("\r\n", "\r").replace("\n", "\r")
        ref = hl7.parse(text)
        seen: dict[str, int] = {}
        for seg in msg:
            seen[seg.name] = seen.get(seg.name, 0) + 1
            ref_seg = ref.segments(seg.name)(seen[seg.name])
            for n in range(1, len(seg.fields)):
                assert seg.raw(n) == str(ref_seg(n)), (seg.name, seen[seg.name], n)
                if "\\X" not in seg.raw(n) and "\\." not in seg.raw(n):
                    ours = msg.get(seg, n)
                    assert ours == python_hl7_leaf(ref, seg.name, seen[seg.name], n, 1, 1, 1)
