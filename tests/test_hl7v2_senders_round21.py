"""HL7v2 lab results from senders we have not seen, round 21: what round 20 left (a date
range written day first, a sender's flag listed twice) and what French laboratory systems
send beside it, checked against what must be filed, warned about or refused (French lab
traffic, invented patients).

What the round found:
- a DR OBX-5 (v2.5 2.A.20: range start ^ range end, each a TS) written with French dates
  ('01/03/2024^15/03/2024': the period of a treatment, of a 24-hour collection) failed
  the whole message HL7_BAD_DATE, every other result lost: filed as text now
  ('01/03/2024 - 15/03/2024', '..' for an open end), value type ST, the type sent kept,
  said as round 20 says a day-first DT; nothing read (03/04 is ambiguous). A range in the
  HL7 form, one bound only or an open one, is read as before; an end that is no date at
  all still fails;
- ``interpretation_local`` (the sender's own OBX-8 codes beside the table 0078 flag
  filed) listed a code twice when OBX-8 repeated it ('HAUT^^L^H^^HL70078' twice) or sent
  it in either triplet ('HAUT^^L^H^^HL70078~H^^HL70078^HAUT^^L'): one 'H' filed beside
  two 'HAUT', and FHIR paired no flag with its code. Each code once now, order kept;
- OBX-6 with the sender's own unit in CE.1-3 and its UCUM code in the alternate triplet
  (CE.4-6, declared UCUM, as LRI-style bridges and point-of-care middleware send it) was
  read from the first triplet even where it reads as another unit: 'G/L^^L^g/L^^UCUM', an
  albumin in grams per litre written in capitals, was filed 10*9/L (giga per litre, a cell
  count) and warned about as contradicting its LOINC code; 'mEq/L^^L^mmol/L^^UCUM' filed
  meq/L. The UCUM code is read now, the local one kept in details.unit_code, said; where
  both name the same unit ('µmol/l^^99LAB^umol/L^^UCUM') the first is read, as before;
- UCUM named by its OID (2.16.840.1.113883.6.8, as bridges fed from CDA or FHIR write a
  coding system) was taken for a sender's own system: 'G/L^^L^g/L^^2.16.840.1.113883.6.8'
  filed 10*9/L, 'U/g{Hb}^^2.16.840.1.113883.6.8' (G6PD activity) flagged unmapped. Read
  as 'UCUM' is now.
"""

from __future__ import annotations

from dataclasses import asdict, replace

import pytest
from sqlalchemy import select

from dossiers.fhir.interpretation import observation_interpretation
from dossiers.schema import entries, imports
from normalizers.model import NormalizationError
from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.test_lab_normalizer import MSH, OBR, ORC, PID, norm, oru

K = "OBX|2|NM|2823-3^Potassium^LN||4,1|mmol/L|3,5-5,1|N|||F|||202403150805"
DAY_FIRST = ("OBX[5]-5: value type DR but the date is written day or month first "
             "(DD/MM/YYYY, MM/YYYY), not as HL7 v2.5 writes it (YYYYMMDD[HHMM[SS]]): "
             "filed as text, the date not read")


def _by_ref(nm) -> dict:  # noqa: ANN001
    return {e.source_ref: e for e in nm.entries}


def _message(control: str, *segments: str, obr: str = OBR) -> bytes:
    return ("\r".join([MSH.replace("MSG-0001", control), PID, ORC, obr, *segments])
            + "\r").encode()


def _file(ctx, *messages: bytes) -> list[tuple]:  # noqa: ANN001
    """Each message through intake and processing: (status, error code, warnings) of its
    ledger row."""
    ctx.settings = replace(ctx.settings, auto_create=True)
    rows = []
    for data in messages:
        (result,) = intake(ctx.engine, ctx.archive, [Received(data, "demo-lab", "mllp")])
        drain(ctx)
        with ctx.engine.connect() as conn:
            rows.append(tuple(conn.execute(
                select(imports.c.status, imports.c.error_code, imports.c.warnings)
                .where(imports.c.id == result.message_ids[0])).one()))
    return rows


def _versions(ctx, code: str) -> list[tuple]:  # noqa: ANN001
    """(version, current, status, value) of every row of a result, oldest first."""
    with ctx.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(entries.c.version, entries.c.current, entries.c.status, entries.c.value)
            .where(entries.c.code == code).order_by(entries.c.version))]


# -- a date range written day first -----------------------------------------------------------
@pytest.mark.parametrize("sent, value", [
    ("01/03/2024^15/03/2024", "01/03/2024 - 15/03/2024"),
    ("01/03/2024 08:00^02/03/2024 08h00", "01/03/2024 08:00 - 02/03/2024 08h00"),
    ("01/03/2024&D^15/03/2024&D", "01/03/2024 - 15/03/2024"),  # v2.3 degree of precision
    ("01/03/2024^", "01/03/2024 - .."),  # an open end
    ("^15/03/2024", ".. - 15/03/2024"),
    ("01/03/2024", "01/03/2024 - .."),  # the start alone
    ("20240301^15/03/2024", "20240301 - 15/03/2024"),  # one end each way: none read
    ("03/2024^04/2024", "03/2024 - 04/2024"),
])
def test_a_date_range_written_day_first_is_filed_as_text(sent: str, value: str) -> None:
    nm = norm(oru(f"OBX|1|DR|18630-4^Période de traitement^LN||{sent}||||||F",
                  K.replace("4,1", "4.1")))
    period, k = _by_ref(nm)["OBX[5]"], _by_ref(nm)["OBX[6]"]
    assert (period.value, period.value_type, period.details["value_type_sent"]) == (
        value, "ST", "DR")
    assert "period" not in period.details
    assert k.value == "4.1"
    assert nm.warnings == [DAY_FIRST]


@pytest.mark.parametrize("sent, value, period", [
    ("20240301^20240315", "2024-03-01/2024-03-15", {"start": "2024-03-01", "end": "2024-03-15"}),
    ("20240301^", "2024-03-01/..", {"start": "2024-03-01"}),
    ("^20240315", "../2024-03-15", {"end": "2024-03-15"}),
    ("20240301", "2024-03-01/..", {"start": "2024-03-01"}),
])
def test_a_date_range_in_the_hl7_form_is_still_read(sent: str, value: str, period: dict) -> None:
    nm = norm(oru(f"OBX|1|DR|18630-4^Période de traitement^LN||{sent}||||||F"))
    (dr,) = [e for e in nm.entries if e.code == "18630-4"]
    assert (dr.value, dr.value_type, dr.details["period"]) == (value, "DR", period)
    assert "value_type_sent" not in dr.details
    assert nm.warnings == []


@pytest.mark.parametrize("sent", [
    "01/03/2024^15 mars 2024",  # an end in words: no date form at all
    "01 mars 2024^15/03/2024",
    "01/03/24^15/03/24",  # a two-digit year
    "20240230^20240315",  # an impossible date in the HL7 form
])
def test_a_date_range_with_an_end_that_is_no_date_still_fails(sent: str) -> None:
    with pytest.raises(NormalizationError) as exc:
        norm(oru(f"OBX|1|DR|18630-4^Période de traitement^LN||{sent}||||||F"))
    assert (exc.value.code, exc.value.location) == ("HL7_BAD_DATE", "OBX[5]-5")
    assert "2024" not in str(exc.value) and "mars" not in str(exc.value)


def test_a_date_range_written_day_first_is_a_ledger_warning(sqlite_ctx) -> None:  # noqa: ANN001
    ((status, code, warnings),) = _file(sqlite_ctx, _message(
        "MSG-2101", "OBX|1|DR|18630-4^Période de traitement^LN||01/03/2024^15/03/2024||||||F",
        K))
    assert (status, code) == ("deposited", None)
    assert DAY_FIRST in warnings
    assert _versions(sqlite_ctx, "18630-4") == [(1, True, "final", "01/03/2024 - 15/03/2024")]
    assert _versions(sqlite_ctx, "2823-3") == [(1, True, "final", "4,1")]


# -- the sender's own flag listed once --------------------------------------------------------
@pytest.mark.parametrize("obx8, flags, local", [
    ("HAUT^Haut^L^H^High^HL70078~HAUT^Haut^L^H^High^HL70078", "H", ["HAUT"]),
    ("HAUT^^L^H^^HL70078~H^^HL70078^HAUT^^L", "H", ["HAUT"]),  # either triplet
    ("H^^HL70078^HAUT^^99LAB~HAUT^Haut^L^H^^HL70078", "H", ["HAUT"]),  # two systems
    ("HAUT^^L^H^^HL70078~HEMO^^L^A^^HL70078~HAUT^^L^H^^HL70078", "H,A", ["HAUT", "HEMO"]),
    ("TRESHAUT^^L^HH^^HL70078~HAUT^^L^H^^HL70078", "HH,H", ["TRESHAUT", "HAUT"]),
])
def test_a_local_flag_sent_twice_is_listed_once(obx8: str, flags: str, local: list) -> None:
    nm = norm(oru(f"OBX|1|NM|2823-3^Potassium^LN||5,9|mmol/L|3,5-5,1|{obx8}|||F"))
    (k,) = [e for e in nm.entries if e.code == "2823-3"]
    assert (k.interpretation, k.details["interpretation_local"]) == (flags, local)


def test_a_local_flag_sent_twice_pairs_with_the_flag_in_fhir() -> None:
    """One 'H' filed, one 'HAUT' beside it: FHIR gives the lab's code as a second coding of
    the one interpretation (two 'HAUT' for one 'H' paired nothing)."""
    nm = norm(oru("OBX|1|NM|2823-3^Potassium^LN||5,9|mmol/L|3,5-5,1|"
                  "HAUT^^L^H^^HL70078~H^^HL70078^HAUT^^L|||F"))
    (k,) = [e for e in nm.entries if e.code == "2823-3"]
    (interpretation,) = observation_interpretation(asdict(k), "urn:oid:1.2.250.1.999.42.7")
    assert interpretation["coding"][1] == {"system": "urn:oid:1.2.250.1.999.42.7",
                                           "code": "HAUT"}


# -- a local unit beside its UCUM code ---------------------------------------------------------
UNIT_WARNING = ("OBX[5]-6: the unit's first triplet reads as another unit than the UCUM code "
                "of its alternate triplet (CE.4-6): the UCUM code read")


@pytest.mark.parametrize("obx, unit, unit_code", [
    ("OBX|1|NM|1751-7^Albumine^LN||40,2|G/L^^L^g/L^gramme par litre^UCUM|35-50|N|||F",
     "g/L", {"code": "G/L", "system": "L"}),
    ("OBX|1|NM|2823-3^Potassium^LN||4,1|mEq/L^milliéquivalents^99LAB^mmol/L^^UCUM|3,5-5,1|N"
     "|||F", "mmol/L", {"code": "mEq/L", "system": "99LAB"}),
    ("OBX|1|NM|1751-7^Albumine^LN||40,2|G/L^^L^g/L^^2.16.840.1.113883.6.8|35-50|N|||F",
     "g/L", {"code": "G/L", "system": "L"}),  # UCUM named by its OID
    ("OBX|1|NM|14749-6^Glucose^LN||5,2|MMOL/L^^L^mmol/L^^UCUM|4,1-5,9|N|||F",  # no change:
     "mmol/L", None),  # the first names the same unit
    ("OBX|1|NM|14749-6^Glucose^LN||5,2|µmol/l^^99LAB^umol/L^^UCUM||N|||F", "umol/L", None),
])
def test_a_local_unit_beside_a_ucum_code_is_read_as_the_ucum_code(obx: str, unit: str,
                                                                   unit_code: dict | None) -> None:
    nm = norm(oru(obx))
    (result,) = [e for e in nm.entries if e.source_ref == "OBX[5]"]
    assert (result.unit, result.details.get("unit_code")) == (unit, unit_code)
    assert "unit_contradicts_code" not in result.details
    assert (UNIT_WARNING in nm.warnings) == (unit_code is not None)


@pytest.mark.parametrize("obx6, unit", [
    ("g/L^^UCUM^G/L^^L", "g/L"),  # the first declared UCUM: read, as before
    ("mmol/l^^L^MMOLL^^99LAB", "mmol/L"),  # no UCUM alternate: the first, as before
    ("MMOLL^^99LAB^g/L^^UCUM", "g/L"),  # the first reads as nothing: round 16
])
def test_a_unit_without_a_local_and_ucum_pair_that_differ_reads_as_before(obx6: str,
                                                                          unit: str) -> None:
    nm = norm(oru(f"OBX|1|NM|1751-7^Albumine^LN||40,2|{obx6}|35-50|N|||F"))
    (result,) = [e for e in nm.entries if e.source_ref == "OBX[5]"]
    assert result.unit == unit
    assert UNIT_WARNING not in nm.warnings


def test_a_ucum_code_named_by_its_oid_is_declared_ucum() -> None:
    nm = norm(oru("OBX|1|NM|32546-4^G6PD^LN||12,1|U/g{Hb}^^2.16.840.1.113883.6.8|7-20|N|||F"))
    (result,) = [e for e in nm.entries if e.source_ref == "OBX[5]"]
    assert (result.unit, result.unit_original) == ("U/g{Hb}", "U/g{Hb}")
    assert "unit_unmapped" not in result.details
    assert nm.warnings == ["OBX[5]-5: decimal comma read as a decimal point"]


def test_a_local_unit_beside_a_ucum_code_on_the_ledger(sqlite_ctx) -> None:  # noqa: ANN001
    ((status, code, warnings),) = _file(sqlite_ctx, _message(
        "MSG-2102", "OBX|1|NM|1751-7^Albumine^LN||40,2|G/L^^L^g/L^^UCUM|35-50|N|||F"))
    assert (status, code) == ("deposited", None)
    assert UNIT_WARNING in warnings
    with sqlite_ctx.engine.connect() as conn:
        assert conn.execute(select(entries.c.unit, entries.c.value)
                            .where(entries.c.code == "1751-7")).one() == ("g/L", "40,2")
