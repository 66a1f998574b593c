"""HL7 TS/DTM to ISO 8601 with the sender's precision and the right Paris offset."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from normalizers.dates import hl7_ts_to_iso


@pytest.mark.parametrize(("ts", "iso"), [
    ("2024", "2024"),
    ("202403", "2024-03"),
    ("20240315", "2024-03-15"),
    ("2024031512", "2024-03-15T12+01:00"),
    ("202403151230", "2024-03-15T12:30+01:00"),
    ("20240315123045", "2024-03-15T12:30:45+01:00"),
    ("20240315123045.1", "2024-03-15T12:30:45.1+01:00"),
    ("20240315123045.1234", "2024-03-15T12:30:45.1234+01:00"),
    ("202407151230", "2024-07-15T12:30+02:00"),  # summer time
    ("202403151230+0000", "2024-03-15T12:30+00:00"),
    ("202403151230-0500", "2024-03-15T12:30-05:00"),
    ("200801311600+0215", "2008-01-31T16:00+02:15"),
    ("20240315+0100", "2024-03-15"),  # a date has no zone
    ("202403151230^M", "2024-03-15T12:30+01:00"),  # v2.3 TS with degree of precision
    (" 20240315 ", "2024-03-15"),
    ("20240229", "2024-02-29"),
])
def test_examples(ts, iso):
    assert hl7_ts_to_iso(ts) == iso


def test_dst_switch_days():
    # Last Sunday of March 2024: 02:00 -> 03:00. Last Sunday of October: 03:00 -> 02:00.
    assert hl7_ts_to_iso("202403310159") == "2024-03-31T01:59+01:00"
    assert hl7_ts_to_iso("202403310300") == "2024-03-31T03:00+02:00"
    assert hl7_ts_to_iso("202410270400") == "2024-10-27T04:00+01:00"
    assert hl7_ts_to_iso("202403310230").startswith("2024-03-31T02:30+0")  # gap: no crash


def test_no_default_zone():
    assert hl7_ts_to_iso("202403151230", None) == "2024-03-15T12:30"
    assert hl7_ts_to_iso("202403151230", "America/Cayenne") == "2024-03-15T12:30-03:00"


@pytest.mark.parametrize("bad", ["", "24", "20241", "202413", "20240230", "20230229",
                                 "2024031524", "202403151260", "20240315123060", "15/03/2024",
                                 "20240315123045.", "20240315123045.12345", "202403151230+1500",
                                 "202403151230+01", "0000", "abc", "20240315T1230"])
def test_invalid_values_raise(bad):
    with pytest.raises(ValueError):
        hl7_ts_to_iso(bad)


_PRECISIONS = [4, 6, 8, 10, 12, 14]


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2099, 12, 31)),
       st.sampled_from(_PRECISIONS), st.sampled_from(["", "+0000", "+0100", "-0330"]))
def test_round_trip_keeps_digits_and_precision(dt, precision, offset):
    hl7 = dt.strftime("%Y%m%d%H%M%S")[:precision]
    if precision > 8:
        hl7 += offset
    iso = hl7_ts_to_iso(hl7)
    expected_len = {4: 4, 6: 7, 8: 10, 10: 13, 12: 16, 14: 19}[precision]
    body = iso[:expected_len]
    assert "".join(c for c in body if c.isdigit()) == hl7[:precision]  # same digits, no more
    assert body.count("-") == min(2, (precision - 4) // 2)
    if precision > 8:
        tail = iso[expected_len:]
        assert tail[0] in "+-" and tail[3] == ":"
        if offset:
            assert tail == f"{offset[:3]}:{offset[3:]}"
        else:
            local = datetime(dt.year, dt.month, dt.day, dt.hour, tzinfo=ZoneInfo("Europe/Paris"))
            minutes = int(local.utcoffset().total_seconds()) // 60
            assert tail == f"+{minutes // 60:02d}:{minutes % 60:02d}"
    else:
        assert iso == body


@pytest.mark.parametrize(("tm", "iso"), [
    ("08", "08"), ("0830", "08:30"), ("083015", "08:30:15"), ("083015.25", "08:30:15.25"),
    ("1230-0500", "12:30-05:00"), (" 2359 ", "23:59")])
def test_tm_examples(tm, iso):
    from normalizers.dates import hl7_tm_to_iso
    assert hl7_tm_to_iso(tm) == iso


@pytest.mark.parametrize("bad", ["", "8", "2400", "0860", "083060", "08:30", "0830+1500", "7h30"])
def test_tm_invalid_values_raise(bad):
    from normalizers.dates import hl7_tm_to_iso
    with pytest.raises(ValueError):
        hl7_tm_to_iso(bad)


@pytest.mark.parametrize("iso, expected", [
    ("2024-03-15", "2024-03-15"), ("2024-03", "2024-03"),
    ("2024-03-15T08:10", "2024-03-15T08:10+01:00"),
    ("2024-03-15T08:10:00Z", "2024-03-15T08:10:00+00:00"),
    ("2024-07-15 08:10:00.123456-04:00", "2024-07-15T08:10:00.1234-04:00")])
def test_iso_8601_extended_form_is_read(iso, expected):
    """Not HL7's form, but one reading only (FHIR-minded engines write it in TS fields)."""
    assert hl7_ts_to_iso(iso) == expected


@pytest.mark.parametrize("bad", ["2024-3-15", "2024-03-15T8:10", "2024-03-15T08", "2024-02-30",
                                 "2024-03-15T24:00", "2024-03-15T08:10+15:00"])
def test_iso_8601_out_of_range_or_partial_still_raises(bad):
    with pytest.raises(ValueError):
        hl7_ts_to_iso(bad)
