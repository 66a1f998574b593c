"""An import's warnings on the ledger: one line per thing said, not one per place.

Why: a French LIS writing every value with a decimal comma got one ledger line per OBX (700
for a large message), drowning the warning that mattered. Was: every line kept."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from pipelines.warning_lines import KEEP_EACH, PLACES_NAMED, condensed
from tests.test_documents_normalizer import PID
from tests.test_documents_senders import _ingest

COMMA = "decimal comma read as a decimal point"


def test_few_lines_are_kept_as_they_are():
    lines = [f"OBX[{n}]-5: {COMMA}" for n in range(1, KEEP_EACH + 1)] + ["MSH-18: odd"]
    assert condensed(lines) == lines


def test_one_thing_said_at_many_places_is_one_line_where_it_was_first_said():
    lines = (["HL7_ODD_DELIMITERS: MSH-1/MSH-2 use non-ASCII delimiters"]
             + [f"OBX[{n}]-5: {COMMA}" for n in range(2, 702)]
             + ["OBX[40]-6: unit 'mmol/l' read as 'mmol/L'", "OBX[9]-5.2: other text"])
    assert condensed(lines) == [
        "HL7_ODD_DELIMITERS: MSH-1/MSH-2 use non-ASCII delimiters",
        f"OBX[2]-5, OBX[3]-5, OBX[4]-5 and 697 more places: {COMMA}",
        "OBX[40]-6: unit 'mmol/l' read as 'mmol/L'",
        "OBX[9]-5.2: other text"]


def test_cda_paths_pages_and_placeless_repeats():
    path = "/ClinicalDocument/component/structuredBody/component[2]/section/entry[{}]/observation"
    lines = [f"{path.format(n)}: unit 'UI/L' not mapped to UCUM" for n in range(1, 9)]
    lines += [f"page {n}: OCR confidence 71 %" for n in range(1, 8)]
    lines += ["the same words, no place"] * 6
    out = condensed(lines)
    assert out == [f"{path.format(1)}, {path.format(2)}, {path.format(3)} and 5 more places: "
                   "unit 'UI/L' not mapped to UCUM",
                   "page 1, page 2, page 3 and 4 more places: OCR confidence 71 %",
                   "the same words, no place (said 6 times)"]


_place = st.one_of(st.builds("OBX[{}]-{}".format, st.integers(1, 999), st.integers(1, 30)),
                   st.builds("page {}".format, st.integers(1, 40)), st.none())
_text = st.sampled_from([COMMA, "unit read as mmol/L", "value ' 5' trimmed", "odd: colon"])


@given(st.lists(st.tuples(_place, _text), max_size=60))
def test_nothing_said_is_lost_and_nothing_invented(pairs):
    lines = [f"{p}: {t}" if p else t for p, t in pairs]
    out = condensed(lines)
    assert len(out) <= len(lines)
    for text in {t for _, t in pairs}:  # every text said is still said
        assert any(line.endswith(text) or text in line for line in out)
    assert set(out) - set(lines) == {line for line in out if " more place" in line
                                     or line.endswith(" times)")}
    for text in {t for _, t in pairs}:  # a text said at few places keeps each of its lines
        mine = [line for line in lines if line == text or line.endswith(f": {text}")]
        if len(mine) <= KEEP_EACH:
            assert [line for line in out if line in mine] == mine
    named = [line for line in out if " more place" in line]
    assert all(line.count(", ") <= PLACES_NAMED - 1 + line.count("odd: colon")
               for line in named)


def test_a_lis_writing_decimal_commas_gets_one_ledger_line(sqlite_ctx):
    """30 results written '4,5': one condensed warning on the ledger, the 30 results filed
    with their values read."""
    obx = [f"OBX|{n}|NM|{code}^^LN||{n},5|mmol/L|||||F"
           for n, code in enumerate(["2345-7", "2823-3", "2951-2", "2160-0", "3094-0",
                                     "2075-0", "1742-6", "1920-8", "2324-2", "6768-6"] * 3,
                                    start=1)]
    msg = "\r".join([
        "MSH|^~\\&|LIS-Y|LABO-Y|DMP|GHT|202403151050||ORU^R01^ORU_R01|VIRG-1|P|2.5"
        "|||||FRA|UNICODE UTF-8", PID, "OBR|1|CMD-77^LIS|DOS-77^LIS|24326-1^Ionogramme^LN"
        "|||202403150810" + "|" * 18 + "F", *obx]) + "\r"
    row, = _ingest(replace(sqlite_ctx, settings=replace(sqlite_ctx.settings, auto_create=True)),
                   msg)
    assert row.status == "deposited"
    said = [w for w in row.warnings if COMMA in w]
    assert said == [f"OBX[4]-5, OBX[5]-5, OBX[6]-5 and 27 more places: {COMMA}"]
