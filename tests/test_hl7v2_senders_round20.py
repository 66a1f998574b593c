"""HL7v2 lab results from senders we have not seen, round 20: what round 19 left (French dates
in a date-typed OBX-5, a result then its withdrawal in one message, repeated flags), checked
against what must be filed, warned about or refused (French lab traffic, invented patients).

What the round found:
- OBX-8 repeated with the same flag ('H~H', 'H~H^High^HL70078') was filed 'H,H', two
  interpretations where the lab gave one: kept once now, said (OBX[n]-8);
- a DT/TS/DTM OBX-5 written day first ('15/03/2024', '15/03/2024 08:30': a French LIS's
  date of last menstrual period), or month first to the month ('03/2024'), failed the whole
  message HL7_BAD_DATE, every other result lost: filed as text now (value type ST, the type
  sent kept), said with the form HL7 v2.5 expects; the date is not read (03/04 is
  ambiguous). Anything else that is no date, the dates a message is filed by (OBR-7,
  OBX-14, MSH-7, PID-7) and a DR's ends (round 10) still fail;
- a result then its withdrawal in one message (OBX F 4,1 then OBX W, same observation: the
  reverse of round 19's case) filed the F under the test's key and the W under '...#2', a
  tombstone of a key nobody sent: the result the lab withdrew stayed current. The W
  withdraws the F of the message now (not filed, said), under the test's key: what the
  dossier held is withdrawn, or a tombstone left;
- a W and its replacement in one message for a result the dossier never held (round 19
  files the replacement, the W left out) left no trace of the withdrawal: the original,
  arriving later (quarantined and rerun, or late on its way), became the current version
  over the replacement; so did the original sent again after a W and replacement for a
  result held. The replacement is marked now (details 'replaces_withdrawn'): a final
  arriving after it, not issued after it (OBX-19 / OBR-22), is filed as history;
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from dossiers.schema import entries, imports
from normalizers.model import NormalizationError
from pipelines.check import check
from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.test_lab_normalizer import MSH, OBR, ORC, PID, norm, oru

K = "OBX|2|NM|2823-3^Potassium^LN||4,1|mmol/L|3,5-5,1|N|||F|||202403150805"


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


# -- a date-typed OBX-5 written day first --------------------------------------------------
@pytest.mark.parametrize("vtype, sent", [
    ("DT", "15/03/2024"), ("TS", "15/03/2024 08:30"), ("DTM", "05/02/2024 08h30"),
    ("DT", "15.03.2024"), ("TS", "15-03-2024 08:30:12"), ("DT", "3/4/2024"),
    ("DT", "03/2024"),  # to the month: a last vaccination
])
def test_a_date_written_day_first_is_filed_as_text(vtype: str, sent: str) -> None:
    nm = norm(oru(f"OBX|1|{vtype}|8665-2^Date des dernières règles^LN||{sent}||||||F",
                  K.replace("4,1", "4.1")))
    ddr, k = _by_ref(nm)["OBX[5]"], _by_ref(nm)["OBX[6]"]
    assert (ddr.value, ddr.value_type, ddr.details["value_type_sent"]) == (sent, "ST", vtype)
    assert k.value == "4.1"
    assert nm.warnings == [
        f"OBX[5]-5: value type {vtype} but the date is written day or month first "
        "(DD/MM/YYYY, MM/YYYY), not "
        "as HL7 v2.5 writes it (YYYYMMDD[HHMM[SS]]): filed as text, the date not read"]


@pytest.mark.parametrize("obx", [
    "OBX|1|DT|8665-2^DDR^LN||20240230||||||F",  # an impossible date in the HL7 form
    "OBX|1|DT|8665-2^DDR^LN||15 mars 2024||||||F",  # words: no date form at all
    "OBX|1|DT|8665-2^DDR^LN||15/03/24||||||F",  # a two-digit year: which century?
    "OBX|1|DT|8665-2^DDR^LN||32/13/2024x||||||F",
    "OBX|1|DT|8665-2^DDR^LN||15/03-2024||||||F",  # two separators: no form at all
    "OBX|1|DT|8665-2^DDR^LN||3/2024||||||F",
    "OBX|1|NM|2823-3^Potassium^LN||4,1|mmol/L|||||F|||15/03/2024 08:05",  # OBX-14
    "OBX|1|DR|13362-9^Durée de recueil^LN||20240314^15 mars 2024||||||F",  # round 10
])
def test_other_dates_that_are_no_dates_still_fail(obx: str) -> None:
    with pytest.raises(NormalizationError) as exc:
        norm(oru(obx))
    assert exc.value.code == "HL7_BAD_DATE"
    assert "2024" not in str(exc.value) and "03" not in str(exc.value)


def test_an_order_time_written_day_first_still_fails() -> None:
    """OBR-7 dates the report: a date not read is no date to file it by."""
    obr = OBR.replace("|202403150810|", "|15/03/2024 08:10|")
    assert obr != OBR
    with pytest.raises(NormalizationError) as exc:
        norm(oru(K, order=(ORC, obr)))
    assert (exc.value.code, exc.value.location) == ("HL7_BAD_DATE", "OBR[4]-7")


def test_a_date_written_day_first_is_a_ledger_warning(sqlite_ctx) -> None:  # noqa: ANN001
    ((status, code, warnings),) = _file(sqlite_ctx, _message(
        "MSG-2001", "OBX|1|DT|8665-2^Date des dernières règles^LN||15/03/2024||||||F", K))
    assert (status, code) == ("deposited", None)
    assert any(w.startswith("OBX[5]-5: value type DT but the date is written day or month "
                                    "first")
               for w in warnings)
    assert _versions(sqlite_ctx, "8665-2") == [(1, True, "final", "15/03/2024")]
    assert _versions(sqlite_ctx, "2823-3") == [(1, True, "final", "4,1")]


# -- a result, then its withdrawal, in one message ----------------------------------------------
WRONG = K.replace("|N|||F|", "|N|||W|")
RIGHT = K.replace("4,1", "5,9").replace("|N|||F|", "|H|||F|").replace("OBX|2|", "OBX|3|")


@pytest.mark.parametrize("status", ["W", "D"])
def test_a_result_then_its_withdrawal_in_one_message_is_one_withdrawal(status: str) -> None:
    nm = norm(oru(K.replace("OBX|2|", "OBX|1|"), K.replace("|N|||F|", f"|N|||{status}|")))
    (k,) = [e for e in nm.entries if e.code == "2823-3"]
    assert (k.source_ref, k.key, k.replaces_key, k.action) == (
        "OBX[6]", "result|24C0315-07|LABO-DEMO|2823-3|LN|", k.key, "delete")
    assert ("OBX[6]: withdraws OBX[5], the same result sent earlier in the message (OBX-11 W "
            "or D): that result is not filed") in nm.warnings
    assert not any("key made unique" in w for w in nm.warnings)


def test_a_result_its_withdrawal_and_its_replacement_in_one_message() -> None:
    nm = norm(oru(K.replace("OBX|2|", "OBX|1|"), WRONG, RIGHT))
    (k,) = [e for e in nm.entries if e.code == "2823-3"]
    assert (k.source_ref, k.action, k.value) == ("OBX[7]", "replace", "5,9")


def test_a_previous_result_withdrawn_is_still_told_apart_by_its_time() -> None:
    """A cumulative report's previous potassium (OBX-14 of January) posted as wrong after
    today's: a withdrawal of January's result, not of today's."""
    january = WRONG.replace("|202403150805", "|202401100805").replace("OBX|2|", "OBX|3|")
    nm = norm(oru(K, january))
    today, jan = [e for e in nm.entries if e.code == "2823-3"]
    assert (today.action, today.value) == ("new", "4,1")
    assert (jan.action, jan.key) == ("delete", f"{today.key}@202401100805")


def test_a_result_then_its_withdrawal_leaves_the_key_withdrawn(sqlite_ctx) -> None:  # noqa: ANN001
    """Held from an earlier message, then sent again with its W in one message: withdrawn
    (the result was current beside a tombstone '#2'). Then the same for a sodium never held:
    a tombstone under its key, and the original sent later stays withdrawn."""
    na = K.replace("2823-3^Potassium", "2951-2^Sodium").replace("4,1", "139")
    rows = _file(sqlite_ctx, _message("MSG-2101", K),
                 _message("MSG-2102", K.replace("OBX|2|", "OBX|1|"), WRONG,
                          na.replace("OBX|2|", "OBX|3|"),
                          na.replace("OBX|2|", "OBX|4|").replace("|F|", "|W|")),
                 _message("MSG-2103", na))
    assert [r[0] for r in rows] == ["deposited"] * 3
    assert _versions(sqlite_ctx, "2823-3") == [(1, False, "final", "4,1"),
                                              (2, True, "withdrawn", "4,1")]
    assert [v[1:3] for v in _versions(sqlite_ctx, "2951-2") if v[1]] == [(True, "withdrawn")]


# -- the original after a W and its replacement ------------------------------------------------
@pytest.mark.parametrize("held", [False, True])
def test_the_original_after_a_withdrawal_and_its_replacement_is_history(
        sqlite_ctx, held: bool) -> None:  # noqa: ANN001
    """W 4,1 and F 5,9 in one message, then the original F 4,1 (never received before, or
    received before the W and sent again): the 4,1 was current over the 5,9."""
    first = [_message("MSG-2200", K)] if held else []
    rows = _file(sqlite_ctx, *first, _message("MSG-2201", WRONG, RIGHT),
                 _message("MSG-2202", K))
    current = [v for v in _versions(sqlite_ctx, "2823-3") if v[1]]
    assert current == [(1 + held, True, "final", "5,9")]
    assert rows[-1][0] in ("deposited", "duplicate")


def test_a_result_issued_after_the_replacement_is_current(sqlite_ctx) -> None:  # noqa: ANN001
    """A final that says (OBX-19) it was issued after the replacement is a new result."""
    replaced = "|202403150805|||||202403151100"
    _file(sqlite_ctx, _message("MSG-2301", WRONG.replace("|202403150805", replaced),
                               RIGHT.replace("|202403150805", replaced)),
          _message("MSG-2302", K.replace("4,1", "6,0").replace(
              "|202403150805", "|202403150805|||||202403151300")))
    assert [v for v in _versions(sqlite_ctx, "2823-3") if v[1]] == [(2, True, "final", "6,0")]


def test_the_next_correction_after_a_replacement_never_held_is_current(sqlite_ctx) -> None:  # noqa: ANN001
    _file(sqlite_ctx, _message("MSG-2401", WRONG, RIGHT),
          _message("MSG-2402", K.replace("4,1", "6,0").replace("|N|||F|", "|H|||C|")))
    assert [v for v in _versions(sqlite_ctx, "2823-3") if v[1]] == [
        (2, True, "corrected", "6,0")]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_original_after_a_replacement_on_postgresql(ctx) -> None:  # noqa: ANN001
    _file(ctx, _message("MSG-2501", WRONG, RIGHT), _message("MSG-2502", K))
    assert [v for v in _versions(ctx, "2823-3") if v[1]] == [(1, True, "final", "5,9")]
    assert [f.code for f in check(ctx.engine, ctx.archive).findings] == []


# -- OBX-8: the same flag repeated -------------------------------------------------------------
@pytest.mark.parametrize("flags, filed", [
    ("H~H", "H"), ("h~H", "H"), ("H~H^High^HL70078", "H"), ("HH~A~HH", "HH,A"),
    ("Haut~H", "H"),
])
def test_a_flag_repeated_is_kept_once(flags: str, filed: str) -> None:
    nm = norm(oru(f"OBX|1|NM|2823-3^Potassium^LN||6,2|mmol/L|3,5-5,1|{flags}|||F"))
    assert _by_ref(nm)["OBX[5]"].interpretation == filed
    assert "OBX[5]-8: the same abnormal flag sent more than once: kept once" in nm.warnings


@pytest.mark.parametrize("flags, filed", [("H~A", "H,A"), ("L~AA", "L,AA"), ("~H", "H")])
def test_different_flags_are_all_kept(flags: str, filed: str) -> None:
    nm = norm(oru(f"OBX|1|NM|2823-3^Potassium^LN||6,2|mmol/L|3,5-5,1|{flags}|||F"))
    assert _by_ref(nm)["OBX[5]"].interpretation == filed
    assert not any("-8:" in w for w in nm.warnings)
