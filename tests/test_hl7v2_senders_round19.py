"""HL7v2 lab results from senders we have not seen, round 19: values, statuses and flags as
such senders write them (French lab traffic, invented patients), checked against what must
be filed, warned about or refused.

What the round found:
- a coded OBX-5 naming a coding system and nothing else ('^^L', '^^99LAB': a LIS's empty
  coded result, its table named and nothing picked from it) was filed as a coded result of
  empty code, no value, no warning: it is not filed now, said (OBX[n]-5), the rest of the
  message filed; a repetition of that kind beside a real one ('^^99LAB~POS^Positif^L')
  made the value '; Positif': left out, said;
- OBX-11 W ('post original as wrong', HL7 table 0085) and D withdraw the result held (its
  versions kept), or leave a tombstone said on the ledger when none is held: so they did.
  But the replacement W announces, sent next with OBR-22 unchanged or never filled (as many
  LIS do), was filed as history ('the original after its deletion'): the dossier showed no
  potassium at all. A result the dossier held before the withdrawal, coming again with a
  value never held and not issued before the withdrawal, is current now, said on the
  ledger; the original sent again, or a value issued before the W, stays history;
- a W and its replacement in one message (OBX W 4,1 then OBX F 5,9, same observation) made
  the replacement a second result of the test under a key of its own ('...#2'): current
  beside the key withdrawn, the lab's next correction (C, filed under the test's key) went
  to history and the dossier kept showing the corrected value. The replacement is now the
  new version of the result (a correction: versions kept), said on the ledger;
- OBX-8 repeated ('H~A', 'L~AA', 'N~R'), '>' and '<', v2.7 CWE flags ('H^High^HL70078'):
  every flag was already read and kept in the order sent (checked, pinned here);
- an order sent without any time (OBR-7, SPM-17 and OBR-8 empty) whose results all give
  one OBX-14 was filed as an undated report: dated by that time now, said; results
  observed at several times (a cumulative report's previous results) date nothing.
- a batch whose BTS-1 (v2.5 2.15.2: the count of messages in the batch), or a file whose
  FTS-1, announces fewer than were read failed the file's row HL7_BATCH_COUNT_MISMATCH
  ('truncated batch?'), every message filed all the same: a warning now
  (HL7_BATCH_COUNT_LOW, both counts named), the row split. A count above what was read
  still fails the row (a message may be lost in transit), naming both counts, every
  message read filed;
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from dossiers.schema import entries, imports
from parsers.hl7v2.framing import split_batch
from pipelines.check import check
from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.test_lab_normalizer import MSH, OBR, ORC, PID, norm, oru

K = "OBX|1|NM|2823-3^Potassium^LN||4,1|mmol/L|3,5-5,1|N|||F|||202403150805"


def _by_ref(nm) -> dict:  # noqa: ANN001
    return {e.source_ref: e for e in nm.entries}


def _message(control: str, *segments: str, obr: str = OBR) -> bytes:
    return ("\r".join([MSH.replace("MSG-0001", control), PID, ORC, obr, *segments])
            + "\r").encode()


def _file(ctx, *messages: bytes) -> list[tuple[str, list[str]]]:  # noqa: ANN001
    """Each message through intake and processing: (status, warnings) of its ledger row."""
    ctx.settings = replace(ctx.settings, auto_create=True)
    rows = []
    for data in messages:
        (result,) = intake(ctx.engine, ctx.archive, [Received(data, "demo-lab", "mllp")])
        drain(ctx)
        with ctx.engine.connect() as conn:
            rows.append(tuple(conn.execute(select(imports.c.status, imports.c.warnings)
                                           .where(imports.c.id == result.message_ids[0])).one()))
    return rows


def _versions(ctx, code: str) -> list[tuple]:  # noqa: ANN001
    """(version, current, status, value) of every row of a result, oldest first."""
    with ctx.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(entries.c.version, entries.c.current, entries.c.status, entries.c.value)
            .where(entries.c.code == code).order_by(entries.c.version))]


# -- a coded value naming only its coding system ---------------------------------------------
@pytest.mark.parametrize("value", ["^^L", "^^99LAB", "^^L^^^SCT", "^^L~^^99LAB", " ^^L"])
def test_a_coded_value_of_only_a_coding_system_is_not_filed(value: str) -> None:
    nm = norm(oru(f"OBX|1|CWE|5196-1^Antigène HBs^LN||{value}||||||F", K.replace("|1|", "|2|")))
    refs = _by_ref(nm)
    assert "OBX[5]" not in refs and refs["OBX[6]"].value == "4,1"
    assert ("OBX[5]-5: the coded value holds a coding system and no code nor text: the "
            "observation carries nothing, not filed") in nm.warnings


@pytest.mark.parametrize("value, shown", [
    ("^^L^^Détecté^SCT", "Détecté"),  # the alternate text
    ("^^L^^^^^^Présence", "Présence"),  # the original text (CWE.9)
    ("^^Positif", "Positif"),  # the text in the coding system's slot (round 14)
    ("^^~", None),  # delimiters only: an empty value, filed as before
])
def test_a_coded_value_saying_something_elsewhere_is_filed(value: str, shown: str | None) -> None:
    nm = norm(oru(f"OBX|1|CWE|5196-1^Antigène HBs^LN||{value}||||||F"))
    assert _by_ref(nm)["OBX[5]"].value == shown
    assert not any("not filed" in w for w in nm.warnings)


def test_a_repetition_of_only_a_coding_system_is_left_out_of_the_value() -> None:
    nm = norm(oru("OBX|1|CE|5196-1^Antigène HBs^LN||^^99LAB~POS^Positif^L||||||F"))
    hbs = _by_ref(nm)["OBX[5]"]
    assert (hbs.value, hbs.details["coded_value"]) == (
        "Positif", {"code": "POS", "display": "Positif", "system": "L"})
    assert nm.warnings == ["OBX[5]-5: repetition 1 holds a coding system and no code nor "
                           "text: left out of the value"]


def test_a_withheld_coded_value_of_only_a_coding_system_stays_withheld() -> None:
    """OBX-11 X: the result could not be obtained; the entry says so, as before."""
    nm = norm(oru("OBX|1|CWE|5196-1^Antigène HBs^LN||^^L||||||X"))
    assert _by_ref(nm)["OBX[5]"].status == "cancelled"


def test_an_empty_coded_result_is_a_ledger_warning_and_the_rest_is_filed(sqlite_ctx) -> None:  # noqa: ANN001
    ((status, warnings),) = _file(sqlite_ctx, _message(
        "MSG-0101", "OBX|1|CWE|5196-1^Antigène HBs^LN||^^L||||||F", K.replace("|1|", "|2|")))
    assert status == "deposited"
    assert any(w.startswith("OBX[5]-5: the coded value holds a coding system") for w in warnings)
    assert _versions(sqlite_ctx, "5196-1") == []
    assert _versions(sqlite_ctx, "2823-3") == [(1, True, "final", "4,1")]


# -- OBX-11 W and D: the earlier result withdrawn, the replacement current -------------------
WRONG = K.replace("|N|||F|", "|N|||W|")  # posted as wrong (HL7 table 0085)
RIGHT = K.replace("4,1", "5,9").replace("|N|||F|", "|H|||F|")  # the potassium re-measured


@pytest.mark.parametrize("status", ["W", "D", "W^Wrong^HL70085"])
def test_a_result_posted_as_wrong_or_deleted_withdraws_its_key(status: str) -> None:
    """W and D withdraw the result held under the key (the deposit as for D:
    tests/test_withdrawals.py); the value sent is kept apart, never filed as the result."""
    nm = norm(oru(K.replace("|N|||F|", f"|N|||{status}|")))
    k = _by_ref(nm)["OBX[5]"]
    assert (k.action, k.replaces_key, k.status, k.value) == ("delete", k.key,
                                                             "entered-in-error", None)
    assert k.details["value_withheld"] == "4,1"


def test_the_replacement_of_a_result_posted_as_wrong_is_current(sqlite_ctx) -> None:  # noqa: ANN001
    """F 4,1, then W, then F 5,9, none with an OBR-22 (nor OBX-19): the right potassium was
    filed as history ('the original after its deletion'), the dossier showing none."""
    obr = OBR.replace("|202403151045|", "||")
    rows = _file(sqlite_ctx, *(_message(f"MSG-022{n}", obx, obr=obr)
                               for n, obx in enumerate((K, WRONG, RIGHT))))
    assert _versions(sqlite_ctx, "2823-3") == [(1, False, "final", "4,1"),
                                              (2, False, "withdrawn", "4,1"),
                                              (3, True, "final", "5,9")]
    assert rows[2][0] == "deposited" and any(w.startswith(
        "OBX[5]: a result its sender withdrew (OBX-11 W or D), sent again with a value the "
        "dossier never held") for w in rows[2][1])


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_replacement_after_a_withdrawal_on_postgresql(ctx) -> None:  # noqa: ANN001
    """OBR-22 the same in all three (the W did not move it), on PostgreSQL, the store left
    consistent (one current version a key)."""
    _file(ctx, _message("MSG-0231", K), _message("MSG-0232", WRONG), _message("MSG-0233", RIGHT))
    assert _versions(ctx, "2823-3")[-1] == (3, True, "final", "5,9")
    assert [f.code for f in check(ctx.engine, ctx.archive).findings] == []


def test_the_original_after_its_withdrawal_stays_withdrawn(sqlite_ctx) -> None:  # noqa: ANN001
    """The potassium sent again as it was held, and a sodium whose value was never held but
    issued (OBX-19) before its W: an earlier version arriving late. Both stay withdrawn."""
    na = K.replace("2823-3^Potassium", "2951-2^Sodium").replace("OBX|1|", "OBX|2|")
    late = "|202403150805|||||202403151000"
    wrong = "|202403150805|||||202403151100"
    _file(sqlite_ctx, _message("MSG-0241", K, na),
          _message("MSG-0242", WRONG.replace("|202403150805", wrong),
                   na.replace("|F|", "|W|").replace("|202403150805", wrong)),
          _message("MSG-0243", K, na.replace("4,1", "4,3").replace("|202403150805", late)))
    for code in ("2823-3", "2951-2"):
        assert [v[1:3] for v in _versions(sqlite_ctx, code) if v[1]] == [(True, "withdrawn")]


# -- BTS-1 / FTS-1 and the messages actually read ----------------------------------------------
BHS, FHS = b"BHS|^~\\&|SIL-BIO|LABO-DEMO\r", b"FHS|^~\\&|SIL-BIO|LABO-DEMO\r"


def _batch_file(ctx, data: bytes) -> tuple[str, str | None, list[str], list[str]]:  # noqa: ANN001
    """(status, error code, warnings) of a file's row, and the statuses of its messages."""
    ctx.settings = replace(ctx.settings, auto_create=True)
    (result,) = intake(ctx.engine, ctx.archive, [Received(data, "demo-lab", "file",
                                                          file_name="CR_20240315.hl7")])
    drain(ctx)
    with ctx.engine.connect() as conn:
        row = conn.execute(select(imports.c.status, imports.c.error_code, imports.c.warnings)
                           .where(imports.c.id == result.batch_id)).one()
        states = conn.execute(select(imports.c.status).where(
            imports.c.id.in_(result.message_ids))).scalars().all()
    return (*row, states)


def _three() -> list[bytes]:
    return [_message(f"MSG-030{n}", K, obr=OBR.replace("24C0315-07", f"24C0315-3{n}"))
            for n in range(3)]


def test_a_count_lower_than_what_was_read_is_a_warning(sqlite_ctx) -> None:  # noqa: ANN001
    """BTS-1 (v2.5 2.15.2, the count of messages in the batch) below what the batch holds:
    every message is there. The file's row failed HL7_BATCH_COUNT_MISMATCH ('truncated
    batch?'), an operator looking for a loss there was not."""
    raw = BHS + b"".join(_three()) + b"BTS|2\r"
    status, code, warnings, states = _batch_file(sqlite_ctx, raw)
    assert (status, code, states) == ("split", None, ["deposited"] * 3)
    assert warnings == [f"HL7_BATCH_COUNT_LOW: BTS-1 at byte {raw.rindex(b'BTS|')} announces "
                        "2 messages, 3 found: every message found was read, none is missing"]


def test_an_fts_count_lower_than_the_batches_read_is_a_note() -> None:
    m = _three()
    raw = FHS + BHS + m[0] + b"BTS|1\r" + BHS + m[1] + m[2] + b"BTS|2\rFTS|1\r"
    batch = split_batch(raw)
    assert (len(batch.messages), batch.problems) == (3, [])
    assert [(n.code, n.message) for n in batch.notes] == [(
        "HL7_BATCH_COUNT_LOW", f"FTS-1 at byte {raw.rindex(b'FTS|')} announces 1 batch, 2 "
        "found: every batch found was read, none is missing")]


@pytest.mark.parametrize("trailer, announced", [
    (b"BTS|4\r", "BTS-1 announces 4 messages, 3"),
    (b"BTS|3\rFTS|2\r", "FTS-1 announces 2 batches, 1"),
])
def test_a_count_higher_than_what_was_read_still_fails_naming_both(trailer: bytes,
                                                                  announced: str) -> None:
    """One may be lost in transit: a problem (the file's row fails, every message read is
    filed all the same: tests/test_pipeline.py), not a note."""
    head = FHS + BHS if trailer.endswith(b"FTS|2\r") else BHS
    batch = split_batch(head + b"".join(_three()) + trailer)
    assert len(batch.messages) == 3 and batch.notes == []
    assert [p.code for p in batch.problems] == ["HL7_BATCH_COUNT_MISMATCH"]
    assert batch.problems[0].message.startswith(announced)


# -- W and its replacement in one message -----------------------------------------------------
def test_a_result_posted_as_wrong_and_its_replacement_in_one_message_are_one_result() -> None:
    nm = norm(oru(WRONG, RIGHT.replace("OBX|1|", "OBX|2|")))
    (k,) = [e for e in nm.entries if e.code == "2823-3"]
    assert (k.source_ref, k.key, k.replaces_key, k.action, k.value) == (
        "OBX[6]", "result|24C0315-07|LABO-DEMO|2823-3|LN|", k.key, "replace", "5,9")
    assert ("OBX[6]: follows OBX[5], the same result withdrawn (OBX-11 W or D): filed as its "
            "replacement, the result held kept in its history") in nm.warnings


def test_the_next_correction_after_a_w_and_its_replacement_is_current(sqlite_ctx) -> None:  # noqa: ANN001
    """F 4,1; then W 4,1 with F 5,9 in one message; then C 6,0. The 5,9 was filed under a key
    of its own ('...#2'), current beside the key withdrawn, and the lab's correction went to
    that withdrawn key's history: the dossier showed 5,9, which the lab had corrected."""
    _file(sqlite_ctx, _message("MSG-0501", K),
          _message("MSG-0502", WRONG, RIGHT.replace("OBX|1|", "OBX|2|")),
          _message("MSG-0503", K.replace("4,1", "6,0").replace("|N|||F|", "|H|||C|")))
    assert _versions(sqlite_ctx, "2823-3") == [(1, False, "final", "4,1"),
                                              (2, False, "final", "5,9"),
                                              (3, True, "corrected", "6,0")]


def test_a_deletion_repeated_in_one_message_is_no_replacement() -> None:
    nm = norm(oru(WRONG, WRONG.replace("OBX|1|", "OBX|2|").replace("|W|", "|D|")))
    assert [e.action for e in nm.entries if e.code == "2823-3"] == ["delete", "delete"]



# -- OBX-8 flags repeated, and v2.7 coded ------------------------------------------------------
@pytest.mark.parametrize("flags, filed", [
    ("H~A", "H,A"), ("L~AA", "L,AA"), (">", ">"), ("<", "<"), ("N~R", "N,R"),
    ("H^High^HL70078", "H"), ("H^High^HL70078~A^Abnormal^HL70078", "H,A"), ("~H", "H"),
])
def test_every_flag_sent_is_read(flags: str, filed: str) -> None:
    """Each flag of a repeated OBX-8 is kept, in the order sent (as a CDA's interpretation
    codes are): FHIR exports one interpretation each. Checked this round: nothing dropped."""
    nm = norm(oru(f"OBX|1|NM|2823-3^Potassium^LN||6,2|mmol/L|3,5-5,1|{flags}|||F"))
    assert _by_ref(nm)["OBX[5]"].interpretation == filed
    assert not any("-8:" in w for w in nm.warnings)


# -- an order without any time, its results all observed at one --------------------------------
UNDATED = OBR.replace("|202403150810|", "||")


def test_an_undated_order_takes_its_results_one_observation_time() -> None:
    nm = norm(oru(K, "OBX|2|NM|2951-2^Sodium^LN||139|mmol/L|136-145|N|||F|||202403150805",
                  order=(ORC, UNDATED)))
    report = nm.entries[0]
    assert (report.type, report.effective) == ("lab_report", "2024-03-15T08:05+01:00")
    assert nm.warnings[-1] == ("OBR[4]-7: no observation date/time for the order (OBR-7, "
                               "SPM-17, OBR-8 empty): the report is dated by its results' "
                               "one observation time (OBX-14)")


@pytest.mark.parametrize("second", [
    "OBX|2|NM|2823-3^Potassium^LN||4,4|mmol/L|3,5-5,1|N|||F|||202401100805",  # a previous result
    "OBX|2|NM|2951-2^Sodium^LN||139|mmol/L|136-145|N|||F",  # no OBX-14
])
def test_an_undated_order_whose_results_disagree_stays_undated(second: str) -> None:
    nm = norm(oru(K, second, order=(ORC, UNDATED)))
    assert nm.entries[0].effective is None
    assert not any("dated by its results" in w for w in nm.warnings)


def test_a_dated_order_keeps_its_own_time() -> None:
    nm = norm(oru(K))
    assert nm.entries[0].effective == "2024-03-15T08:10+01:00"
